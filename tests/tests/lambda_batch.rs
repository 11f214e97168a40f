//! Lambda batch processing (`lambda_parallel::lambda`, the `lambda` feature) over events parsed
//! from the JSON samples in `tests/fixtures/lambda/`: SQS standard and FIFO, Kinesis, DynamoDB.
//!
//! Like a Lambda function, this binary calls `lambda_parallel::init()` before any thread exists
//! and then runs the processor on a tokio runtime, so it has a `main` of its own (no test
//! harness). Its `tracing` events are captured, so that each check reads the log lines of the
//! records that failed.

use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::dynamodb;
use aws_lambda_events::kinesis::KinesisEvent;
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_parallel::lambda::{self, BatchProcessor, DecodeError};
use lambda_parallel::{lambda_parallel, Pool};
use lambda_parallel_tests::checks::{expect, run, watchdog, Check};
use lambda_parallel_tests::{mark, TempDir};
use lambda_runtime::{Context, Diagnostic, LambdaEvent};
use serde::{Deserialize, Serialize, Serializer};

/// A record's body in every sample: what to do, and a name to mark it by.
#[derive(Debug, Serialize, Deserialize)]
struct Order {
    id: String,
    action: String,
}

/// An order and the directory where its worker marks that it ran.
#[derive(Debug, Serialize, Deserialize)]
struct Task {
    order: Order,
    dir: String,
}

/// Does what the order says, after marking that it ran.
#[lambda_parallel]
fn handle(task: Task) -> Result<u32, String> {
    mark(Path::new(&task.dir), &task.order.id);
    match task.order.action.as_str() {
        "fail" => Err(format!("{} was refused", task.order.id)),
        "panic" => panic!("cannot handle {}", task.order.id),
        "crash" => std::process::abort(),
        "exit" => std::process::exit(3),
        "hang" => loop {
            std::thread::sleep(Duration::from_secs(1));
        },
        _ => Ok(1),
    }
}

/// Takes an order as it is, in the worker: for the checks that need no marks.
#[lambda_parallel]
fn handle_order(order: Order) -> Result<(), String> {
    match order.action.as_str() {
        "ok" => Ok(()),
        other => Err(format!("{other}: not done")),
    }
}

/// An order that refuses to be encoded for its worker when its action is `unencodable`.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
struct Fussy {
    order: Order,
}

impl Serialize for Fussy {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if self.order.action == "unencodable" {
            return Err(serde::ser::Error::custom(
                "this order refuses to be encoded",
            ));
        }
        self.order.serialize(serializer)
    }
}

#[lambda_parallel]
fn handle_fussy(fussy: Fussy) -> Result<(), String> {
    handle_order(fussy.order)
}

static LOGS: Mutex<Vec<u8>> = Mutex::new(Vec::new());

fn logs() -> MutexGuard<'static, Vec<u8>> {
    LOGS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Where `tracing` writes: [`LOGS`].
struct Captured;

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        logs().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The captured log lines since the last call, emptied.
fn take_logs() -> String {
    String::from_utf8_lossy(&std::mem::take(&mut *logs())).into_owned()
}

fn main() {
    lambda_parallel::init().expect("init runs first thing in main");
    tracing_subscriber::fmt()
        .with_writer(|| Captured)
        .with_ansi(false)
        .without_time()
        .init();
    watchdog("lambda_batch", Duration::from_secs(300));
    let checks: [Check; 14] = [
        (
            "sqs_reports_each_failed_message",
            sqs_reports_each_failed_message,
        ),
        (
            "sqs_logs_each_failure_with_its_cause",
            sqs_logs_each_failure_with_its_cause,
        ),
        (
            "fifo_fails_the_rest_of_a_group_unrun",
            fifo_fails_the_rest_of_a_group_unrun,
        ),
        (
            "fifo_without_skip_group_stops_every_group",
            fifo_without_skip_group_stops_every_group,
        ),
        (
            "kinesis_reports_the_first_failure_as_checkpoint",
            kinesis_reports_the_first_failure_as_checkpoint,
        ),
        (
            "dynamodb_reports_the_first_failure_as_checkpoint",
            dynamodb_reports_the_first_failure_as_checkpoint,
        ),
        (
            "all_failed_is_an_error_unless_opted_out",
            all_failed_is_an_error_unless_opted_out,
        ),
        (
            "all_failed_answers_lambda_with_its_error_type",
            all_failed_answers_lambda_with_its_error_type,
        ),
        (
            "deadline_fails_late_records_and_kills_their_workers",
            deadline_fails_late_records_and_kills_their_workers,
        ),
        (
            "concurrent_calls_keep_their_own_deadlines",
            concurrent_calls_keep_their_own_deadlines,
        ),
        (
            "fifo_rounds_after_the_deadline_fail",
            fifo_rounds_after_the_deadline_fail,
        ),
        (
            "unencodable_input_fails_its_record_alone",
            unencodable_input_fails_its_record_alone,
        ),
        (
            "closed_pool_fails_every_record_unrun",
            closed_pool_fails_every_record_unrun,
        ),
        (
            "empty_batch_is_an_empty_response",
            empty_batch_is_an_empty_response,
        ),
    ];
    run("lambda_batch", &checks);
}

fn fixture<T: serde::de::DeserializeOwned>(name: &str) -> T {
    let path = format!("{}/fixtures/lambda/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path}: {err}"));
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("{path}: {err}"))
}

/// An invocation's context, with its deadline `left` from now (none: long past, as an
/// emulator's).
fn context(left: Option<Duration>) -> Context {
    let mut context = Context::default();
    if let Some(left) = left {
        let deadline = SystemTime::now() + left;
        let ms = deadline
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        context.deadline = u64::try_from(ms).unwrap_or(u64::MAX);
    }
    context
}

fn processor() -> BatchProcessor {
    BatchProcessor::new(Pool::new(2).expect("a pool of 2"))
}

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    runtime.expect("a tokio runtime").block_on(future)
}

/// Runs an SQS sample through [`handle`], marking into `dir`.
fn run_sqs(
    processor: &BatchProcessor,
    name: &str,
    dir: &TempDir,
) -> Result<SqsBatchResponse, String> {
    let event = LambdaEvent::new(
        fixture::<SqsEvent>(name),
        context(Some(Duration::from_secs(60))),
    );
    let dir = dir.path().display().to_string();
    let decode = |message: &_| -> Result<Task, DecodeError> {
        let order = lambda::json(message)?;
        Ok(Task {
            order,
            dir: dir.clone(),
        })
    };
    block_on(processor.sqs(event, decode, handle)).map_err(|err| err.to_string())
}

fn failures(response: &SqsBatchResponse) -> Vec<String> {
    let ids = response.batch_item_failures.iter();
    ids.map(|failure| failure.item_identifier.clone()).collect()
}

/// The message id of record `i` in the samples.
fn message_id(i: u32) -> String {
    format!("{i:08x}-6a4e-4c3d-9f1b-0c5e8d2f{i:04x}")
}

fn sqs_reports_each_failed_message() -> Result<(), String> {
    let dir = TempDir::new("lambda-sqs");
    let response = run_sqs(&processor(), "sqs.json", &dir)?;
    // Records 1 (Err), 3 (panic), 4 (abort), 5 (body not JSON), 6 (exit 3) fail; 0, 2, 7 succeed.
    let expected: Vec<String> = [1, 3, 4, 5, 6].map(message_id).to_vec();
    expect(
        failures(&response) == expected,
        format!("failures {:?}", failures(&response)),
    )?;
    let ran = dir.names();
    let expected_ran = [
        "order-0", "order-1", "order-2", "order-3", "order-4", "order-6", "order-7",
    ];
    expect(
        ran == expected_ran,
        format!("ran {ran:?}: the unparsable body must not run"),
    )
}

fn sqs_logs_each_failure_with_its_cause() -> Result<(), String> {
    let dir = TempDir::new("lambda-sqs-logs");
    take_logs();
    run_sqs(&processor(), "sqs.json", &dir)?;
    let logs = take_logs();
    let line = |i: u32| {
        let id = message_id(i);
        logs.lines()
            .find(|line| line.contains("record failed") && line.contains(&id))
            .map(str::to_owned)
    };
    let wants: [(u32, &[&str]); 5] = [
        (
            1,
            &["task=1", "order-1 was refused", "lambda_batch::handle"],
        ),
        (
            3,
            &[
                "task=3",
                "panic_message=\"cannot handle order-3\"",
                "panic_location=",
                "lambda_batch.rs:",
            ],
        ),
        (
            4,
            &[
                "task=4",
                "signal=\"SIGABRT\"",
                "worker=\"lambda_batch::handle\"",
            ],
        ),
        (5, &["task=5", "not the JSON expected"]),
        (6, &["task=6", "exit_code=3"]),
    ];
    for (i, wanted) in wants {
        let line = line(i).ok_or_else(|| format!("no log line for record {i} in:\n{logs}"))?;
        for want in wanted {
            expect(
                line.contains(want),
                format!("record {i}: no {want:?} in {line:?}"),
            )?;
        }
        expect(
            line.starts_with(" WARN"),
            format!("record {i}: not a warning: {line:?}"),
        )?;
    }
    let count = logs
        .lines()
        .filter(|line| line.contains("record failed"))
        .count();
    expect(count == 5, format!("{count} failure lines, not 5:\n{logs}"))
}

fn fifo_fails_the_rest_of_a_group_unrun() -> Result<(), String> {
    let dir = TempDir::new("lambda-fifo");
    take_logs();
    let response = run_sqs(&processor(), "sqs_fifo.json", &dir)?;
    // A: 10 ok, 12 fails, 14 and 18 unrun; B: 11, 15, 19 ok; C: 13 ok, 16 panics, 17 unrun.
    let expected: Vec<String> = [12, 14, 16, 17, 18].map(message_id).to_vec();
    expect(
        failures(&response) == expected,
        format!("failures {:?}", failures(&response)),
    )?;
    let ran = dir.names();
    let expected_ran = [
        "order-10", "order-11", "order-12", "order-13", "order-15", "order-16", "order-19",
    ];
    expect(ran == expected_ran, format!("ran {ran:?}"))?;
    let logs = take_logs();
    let skipped = logs
        .lines()
        .filter(|line| line.contains("not run: message"))
        .count();
    expect(
        skipped == 3,
        format!("{skipped} lines for unrun records, not 3:\n{logs}"),
    )
}

fn fifo_without_skip_group_stops_every_group() -> Result<(), String> {
    let dir = TempDir::new("lambda-fifo-stop");
    let response = run_sqs(
        &processor().skip_group_on_error(false),
        "sqs_fifo.json",
        &dir,
    )?;
    // Round 1 runs 10, 11, 13 (every group's first); round 2 runs 12 (fails), 15, 16 (panics);
    // then nothing more runs, in any group: B's 19 too fails unrun.
    let expected: Vec<String> = [12, 14, 16, 17, 18, 19].map(message_id).to_vec();
    expect(
        failures(&response) == expected,
        format!("failures {:?}", failures(&response)),
    )?;
    let ran = dir.names();
    let expected_ran = [
        "order-10", "order-11", "order-12", "order-13", "order-15", "order-16",
    ];
    expect(ran == expected_ran, format!("ran {ran:?}"))
}

fn kinesis_reports_the_first_failure_as_checkpoint() -> Result<(), String> {
    let event = LambdaEvent::new(fixture::<KinesisEvent>("kinesis.json"), context(None));
    take_logs();
    let response = block_on(processor().kinesis(event, lambda::json, handle_order));
    let response = response.map_err(|err| err.to_string())?;
    let ids: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    let checkpoint = "495903304081300981238322305941821984796274631202816002";
    expect(
        ids == [Some(checkpoint.to_owned())],
        format!("failures {ids:?}"),
    )?;
    // The failure of record 4 is logged too, though the checkpoint covers it.
    let logs = take_logs();
    let count = logs
        .lines()
        .filter(|line| line.contains("record failed"))
        .count();
    expect(count == 2, format!("{count} failure lines, not 2:\n{logs}"))
}

/// A DynamoDB record's `action`, from its new image.
fn new_action(record: &dynamodb::EventRecord) -> Result<Order, String> {
    let image = serde_json::to_value(&record.change.new_image).map_err(|err| err.to_string())?;
    let (id, action) = (&image["Id"]["S"], &image["action"]["S"]);
    match (id.as_str(), action.as_str()) {
        (Some(id), Some(action)) => Ok(Order {
            id: id.to_owned(),
            action: action.to_owned(),
        }),
        _ => Err(format!("no Id or action in {image}")),
    }
}

fn dynamodb_reports_the_first_failure_as_checkpoint() -> Result<(), String> {
    let event = LambdaEvent::new(fixture::<dynamodb::Event>("dynamodb.json"), context(None));
    let response = block_on(processor().dynamodb(event, new_action, handle_order));
    let response = response.map_err(|err| err.to_string())?;
    let ids: Vec<_> = response
        .batch_item_failures
        .iter()
        .map(|f| f.item_identifier.clone())
        .collect();
    let checkpoint = "31110000000001125544";
    expect(
        ids == [Some(checkpoint.to_owned())],
        format!("failures {ids:?}"),
    )
}

fn all_failed_is_an_error_unless_opted_out() -> Result<(), String> {
    let mut event: SqsEvent = fixture("sqs.json");
    event.records.retain(|m| {
        [1, 5]
            .map(message_id)
            .contains(m.message_id.as_ref().unwrap())
    });
    let invoke = |processor: BatchProcessor| {
        let event = LambdaEvent::new(event.clone(), context(None));
        block_on(processor.sqs(event, lambda::json, handle_order))
    };
    let err = match invoke(processor()) {
        Ok(response) => return Err(format!("an answer, not an error: {response:?}")),
        Err(err) => err,
    };
    expect(err.records() == 2, format!("{} records", err.records()))?;
    let message = err.to_string();
    expect(
        message.starts_with("all 2 records of the batch failed"),
        message.clone(),
    )?;
    let response = invoke(processor().raise_on_entire_batch_failure(false));
    let response = response.map_err(|err| err.to_string())?;
    let expected: Vec<String> = [1, 5].map(message_id).to_vec();
    expect(
        failures(&response) == expected,
        format!("failures {:?}", failures(&response)),
    )
}

/// A handler as a Lambda function writes one: its errors are `Diagnostic`s, which is what
/// `lambda_runtime` answers the Runtime API with.
async fn sqs_handler(
    processor: &BatchProcessor,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, Diagnostic> {
    Ok(processor.sqs(event, lambda::json, handle_order).await?)
}

fn all_failed_answers_lambda_with_its_error_type() -> Result<(), String> {
    let mut event: SqsEvent = fixture("sqs.json");
    event
        .records
        .retain(|m| m.message_id == Some(message_id(1)));
    let event = LambdaEvent::new(event, context(None));
    let diagnostic = match block_on(sqs_handler(&processor(), event)) {
        Ok(response) => return Err(format!("an answer, not an error: {response:?}")),
        Err(diagnostic) => diagnostic,
    };
    // What Lambda shows, and what `lambda_runtime` posts to the Runtime API.
    let posted = serde_json::to_value(&diagnostic).map_err(|err| err.to_string())?;
    let message = "the batch's one record failed: fail: not done";
    let expected = serde_json::json!({
        "errorType": "lambda_parallel::lambda::BatchError",
        "errorMessage": message,
    });
    expect(posted == expected, format!("{posted}"))
}

fn deadline_fails_late_records_and_kills_their_workers() -> Result<(), String> {
    let mut event: SqsEvent = fixture("sqs.json");
    event.records.truncate(3);
    event.records[1].body = Some(r#"{"id": "order-1", "action": "hang"}"#.to_owned());
    let processor = processor().margin(Duration::from_secs(1));
    let marks = TempDir::new("lambda-deadline");
    let dir = marks.path().display().to_string();
    let decode = |message: &_| -> Result<Task, DecodeError> {
        Ok(Task {
            order: lambda::json(message)?,
            dir: dir.clone(),
        })
    };
    take_logs();
    let before = processor.pool().expect("a pool processor").pids();
    let event = LambdaEvent::new(event, context(Some(Duration::from_secs(3))));
    let response = block_on(processor.sqs(event, decode, handle)).map_err(|err| err.to_string())?;
    expect(
        failures(&response) == [message_id(1)],
        format!("failures {:?}", failures(&response)),
    )?;
    let logs = take_logs();
    expect(
        logs.contains("timeout=true"),
        format!("no timeout in:\n{logs}"),
    )?;
    let after = processor.pool().expect("a pool processor").pids();
    let killed = before.iter().filter(|pid| !after.contains(pid)).count();
    expect(
        killed == 1,
        format!("workers {before:?} before the deadline, {after:?} after"),
    )?;
    // The pool is whole again, and serves the next invocation without a deadline.
    let event = LambdaEvent::new(fixture::<SqsEvent>("sqs.json"), context(None));
    let response = block_on(processor.sqs(event, lambda::json, handle_order));
    let response = response.map_err(|err| err.to_string())?;
    expect(
        failures(&response).len() == 5,
        format!("failures {:?}", failures(&response)),
    )
}

/// The first `n` records of the SQS sample, their bodies replaced by orders of `actions`.
fn sqs_orders(actions: &[&str]) -> SqsEvent {
    let mut event: SqsEvent = fixture("sqs.json");
    event.records.truncate(actions.len());
    for (i, (message, action)) in event.records.iter_mut().zip(actions).enumerate() {
        message.body = Some(format!(r#"{{"id": "order-{i}", "action": "{action}"}}"#));
    }
    event
}

fn concurrent_calls_keep_their_own_deadlines() -> Result<(), String> {
    let processor = processor().margin(Duration::from_secs(1));
    let marks = TempDir::new("lambda-concurrent");
    let dir = marks.path().display().to_string();
    let decode = |message: &_| -> Result<Task, DecodeError> {
        Ok(Task {
            order: lambda::json(message)?,
            dir: dir.clone(),
        })
    };
    // The first call's deadline falls in 2 s; the second's, which starts while the first runs,
    // in 59 s. Were the second's set over the first's, or lifted when it ended, the hanging
    // record would run on.
    let hurried = LambdaEvent::new(
        sqs_orders(&["ok", "hang"]),
        context(Some(Duration::from_secs(3))),
    );
    let patient = LambdaEvent::new(
        sqs_orders(&["ok", "ok"]),
        context(Some(Duration::from_secs(60))),
    );
    let (hurried, patient) = block_on(async {
        let hurried = processor.sqs(hurried, decode, handle);
        let patient = processor.sqs(patient, decode, handle);
        tokio::join!(
            tokio::time::timeout(Duration::from_secs(20), hurried),
            patient
        )
    });
    let Ok(hurried) = hurried else {
        return Err("the first call ran on past its deadline".to_owned());
    };
    let hurried = hurried.map_err(|err| err.to_string())?;
    let patient = patient.map_err(|err| err.to_string())?;
    expect(
        failures(&hurried) == [message_id(1)] && failures(&patient).is_empty(),
        format!(
            "failures {:?} and {:?}",
            failures(&hurried),
            failures(&patient)
        ),
    )
}

fn fifo_rounds_after_the_deadline_fail() -> Result<(), String> {
    let mut event: SqsEvent = fixture("sqs_fifo.json");
    for (n, message) in (10..).zip(&mut event.records) {
        let action = if n == 15 { "hang" } else { "ok" };
        message.body = Some(format!(r#"{{"id": "order-{n}", "action": "{action}"}}"#));
    }
    let processor = processor().margin(Duration::from_secs(1));
    let marks = TempDir::new("lambda-fifo-deadline");
    let dir = marks.path().display().to_string();
    let decode = |message: &_| -> Result<Task, DecodeError> {
        Ok(Task {
            order: lambda::json(message)?,
            dir: dir.clone(),
        })
    };
    take_logs();
    // Rounds: 10 11 13, then 12 15 16 (15, of group B, hangs until the deadline, 2 s away),
    // then 14 17: started after the deadline, they fail unrun, and with them the rest of
    // their groups (18), as the rest of B (19) after 15.
    let event = LambdaEvent::new(event, context(Some(Duration::from_secs(3))));
    let response = block_on(async {
        let call = processor.sqs(event, decode, handle);
        tokio::time::timeout(Duration::from_secs(20), call).await
    });
    let Ok(response) = response else {
        return Err("the batch ran on past its deadline".to_owned());
    };
    let response = response.map_err(|err| err.to_string())?;
    let expected: Vec<String> = [14, 15, 17, 18, 19].map(message_id).to_vec();
    expect(
        failures(&response) == expected,
        format!("failures {:?}", failures(&response)),
    )?;
    let ran = marks.names();
    let expected_ran = [
        "order-10", "order-11", "order-12", "order-13", "order-15", "order-16",
    ];
    expect(ran == expected_ran, format!("ran {ran:?}"))?;
    let logs = take_logs();
    let late = |n| {
        let id = message_id(n);
        logs.lines()
            .any(|line| line.contains(&id) && line.contains("timeout=true"))
    };
    expect(
        [14, 15, 17].into_iter().all(late),
        format!("14, 15 and 17 not all logged as late:\n{logs}"),
    )
}

fn unencodable_input_fails_its_record_alone() -> Result<(), String> {
    let event = sqs_orders(&["ok", "unencodable", "ok"]);
    let event = LambdaEvent::new(event, context(None));
    let decode = |message: &_| lambda::json(message).map(|order| Fussy { order });
    take_logs();
    let response = block_on(processor().sqs(event, decode, handle_fussy));
    let response = response.map_err(|err| err.to_string())?;
    expect(
        failures(&response) == [message_id(1)],
        format!("failures {:?}", failures(&response)),
    )?;
    let logs = take_logs();
    let line = logs.lines().find(|line| line.contains(&message_id(1)));
    expect(
        line.is_some_and(|line| {
            line.contains("failed to encode the arguments")
                && line.contains("this order refuses to be encoded")
        }),
        format!("no encoding failure in:\n{logs}"),
    )
}

fn closed_pool_fails_every_record_unrun() -> Result<(), String> {
    let processor = processor().raise_on_entire_batch_failure(false);
    processor.pool().expect("a pool processor").close();
    let event = LambdaEvent::new(sqs_orders(&["ok", "ok"]), context(None));
    take_logs();
    let response = block_on(processor.sqs(event, lambda::json, handle_order));
    let response = response.map_err(|err| err.to_string())?;
    expect(
        failures(&response) == [message_id(0), message_id(1)],
        format!("failures {:?}", failures(&response)),
    )?;
    let logs = take_logs();
    let refused = logs
        .lines()
        .filter(|line| line.contains("not run: the pool refused the round"))
        .count();
    expect(
        refused == 2,
        format!("{refused} refused records in:\n{logs}"),
    )
}

fn empty_batch_is_an_empty_response() -> Result<(), String> {
    let event = LambdaEvent::new(SqsEvent::default(), context(None));
    let response = block_on(processor().sqs(event, lambda::json, handle_order));
    let response = response.map_err(|err| err.to_string())?;
    expect(
        response.batch_item_failures.is_empty(),
        format!("{response:?}"),
    )
}
