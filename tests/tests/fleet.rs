//! A fleet (`lambda_parallel::fleet`, the `fleet` feature) end to end in one process: the
//! envelopes go through the real `FleetWorker` and its pool by way of `Loopback`, and an
//! invoker around it injects each fault that Lambda can answer with, in a fixed order: a
//! throttle with `retryAfterSeconds`, each function error, a payload too large, an answer lost
//! after the work ran, an invocation that never answers, another build, too deep an envelope.
//!
//! Like a Lambda function, this binary calls `lambda_parallel::init()` before any thread exists,
//! so it has a `main` of its own (no test harness).

use std::collections::{BTreeMap, VecDeque};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use lambda_parallel::fleet::{
    BoxFuture, Fleet, FleetWorker, Invocation, Invoke, InvokeError, InvokeResponse, Loopback,
    Outcome, RetryPolicy,
};
use lambda_parallel::{lambda_parallel, Kind, Pool};
use lambda_parallel_tests::checks::{expect, run, watchdog, Check};
use lambda_parallel_tests::TempDir;
use serde_json::{json, Value};

/// Doubles `x`; fails for a number ending in 3, and panics at 42.
#[lambda_parallel]
fn check(x: u64) -> Result<u64, String> {
    assert!(x != 42, "the answer");
    if x % 10 == 3 {
        return Err(format!("{x} ends in 3"));
    }
    Ok(x * 2)
}

/// Appends `x` to `dir/runs` (one short `O_APPEND` write, whole), then returns it.
#[lambda_parallel]
fn record(dir: String, x: u64) -> u64 {
    let mut runs = OpenOptions::new()
        .create(true)
        .append(true)
        .open(Path::new(&dir).join("runs"))
        .expect("the runs file opens");
    runs.write_all(format!("{x}\n").as_bytes())
        .expect("the run is recorded");
    x
}

/// Aborts the first time it runs for `x` (a crash of the remote worker), returns `x` after.
#[lambda_parallel]
fn crash_once(dir: String, x: u64) -> u64 {
    let marker = Path::new(&dir).join(x.to_string());
    if OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&marker)
        .is_ok()
    {
        std::process::abort();
    }
    x
}

/// The length of `bytes`.
#[lambda_parallel]
fn len(bytes: Vec<u8>) -> usize {
    bytes.len()
}

/// In a worker of the serving pool, fans out again: a fleet of its own (over a loopback, with
/// the default guard of 1) on `check`. What that nested call got, by kind: the guard must stop
/// it, since the task runs at depth 1 and its fleet would send depth 2.
#[lambda_parallel]
fn fan_out_again(x: u64) -> String {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime in the worker");
    runtime.block_on(async {
        let worker = FleetWorker::new(Pool::new(1).expect("a pool in the worker")).task(check);
        let fleet = Fleet::builder(Loopback::new(worker))
            .function("loopback")
            .build()
            .expect("a fleet in the worker");
        match fleet.map_each(check, [x]).await.remove(0) {
            Ok(value) => format!("ran: {value:?}"),
            Err(err) => format!("{:?}: {err}", err.kind()),
        }
    })
}

/// What the injecting invoker does to one invocation.
#[derive(Clone, Debug)]
enum Fault {
    /// `TooManyRequestsException`, with `retryAfterSeconds`.
    Throttle(Duration),
    /// The invocation fails as a whole, with this `FunctionError`, without running.
    FunctionError(&'static str),
    /// The work runs, and then the answer is lost in transit.
    LoseAnswer,
    /// No answer, ever.
    Hang,
    /// The envelope arrives with this depth, as a fleet nested that deep would send it.
    Depth(u64),
}

/// One invocation, as the invoker saw it.
#[derive(Clone, Debug)]
struct Sent {
    at: Instant,
    attempt: u64,
    items: usize,
    bytes: usize,
}

/// An invoker that serves through a [`Loopback`], after the fault scripted for each invocation.
struct Faulty {
    loopback: Loopback,
    /// Taken one an invocation, in order; then `always`, if set.
    faults: Mutex<VecDeque<Fault>>,
    always: Option<Fault>,
    /// Payloads over this many bytes are `RequestTooLargeException`.
    limit: usize,
    sent: Arc<Mutex<Vec<Sent>>>,
    /// Invocations wait here, in groups of its size, before they are served: so they overlap.
    gate: Option<tokio::sync::Barrier>,
    in_flight: AtomicUsize,
    most_in_flight: Arc<AtomicUsize>,
}

impl Faulty {
    fn new(worker: FleetWorker) -> Self {
        Faulty {
            loopback: Loopback::new(worker),
            faults: Mutex::new(VecDeque::new()),
            always: None,
            limit: usize::MAX,
            sent: Arc::default(),
            gate: None,
            in_flight: AtomicUsize::new(0),
            most_in_flight: Arc::default(),
        }
    }

    fn gate(mut self, group: usize) -> Self {
        self.gate = Some(tokio::sync::Barrier::new(group));
        self
    }

    fn then(self, fault: Fault) -> Self {
        lock(&self.faults).push_back(fault);
        self
    }

    fn always(mut self, fault: Fault) -> Self {
        self.always = Some(fault);
        self
    }

    fn limit(mut self, bytes: usize) -> Self {
        self.limit = bytes;
        self
    }

    /// The invocations made, shared with the test after the fleet takes the invoker.
    fn log(&self) -> Arc<Mutex<Vec<Sent>>> {
        Arc::clone(&self.sent)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Invoke for Faulty {
    fn invoke(&self, invocation: Invocation) -> BoxFuture<'_, Result<InvokeResponse, InvokeError>> {
        Box::pin(async move {
            let envelope: Value = serde_json::from_slice(&invocation.payload).expect("JSON");
            lock(&self.sent).push(Sent {
                at: Instant::now(),
                attempt: envelope["attempt"].as_u64().expect("an attempt"),
                items: envelope["items"].as_array().map_or(0, Vec::len),
                bytes: invocation.payload.len(),
            });
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.most_in_flight.fetch_max(now, Ordering::SeqCst);
            if let Some(gate) = &self.gate {
                gate.wait().await;
            }
            let answer = self.answer(invocation, envelope).await;
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            answer
        })
    }
}

impl Faulty {
    async fn answer(
        &self,
        mut invocation: Invocation,
        envelope: Value,
    ) -> Result<InvokeResponse, InvokeError> {
        {
            if invocation.payload.len() > self.limit {
                return Err(InvokeError::PayloadTooLarge);
            }
            let fault = lock(&self.faults).pop_front().or(self.always.clone());
            match fault {
                None => self.loopback.invoke(invocation).await,
                Some(Fault::Throttle(after)) => Err(InvokeError::Throttled {
                    retry_after: Some(after),
                }),
                Some(Fault::FunctionError(error)) => Ok(InvokeResponse {
                    status: 200,
                    function_error: Some(error.to_owned()),
                    payload: serde_json::to_vec(&json!({
                        "errorType": error,
                        "errorMessage": "injected",
                    }))
                    .expect("JSON"),
                }),
                Some(Fault::LoseAnswer) => {
                    self.loopback.invoke(invocation).await?;
                    Err(InvokeError::Transport("connection reset".to_owned()))
                }
                Some(Fault::Hang) => std::future::pending().await,
                Some(Fault::Depth(depth)) => {
                    let mut envelope = envelope;
                    envelope["depth"] = json!(depth);
                    invocation.payload = serde_json::to_vec(&envelope).expect("JSON");
                    self.loopback.invoke(invocation).await
                }
            }
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("the runtime starts")
}

fn worker() -> FleetWorker {
    FleetWorker::new(Pool::new(2).expect("a pool of 2"))
        .task(check)
        .task(record)
        .task(crash_once)
        .task(len)
}

/// A fleet on `invoker` with short waits between retries, so that the checks run quickly.
fn builder(invoker: Faulty) -> lambda_parallel::fleet::FleetBuilder {
    Fleet::builder(invoker).function("loopback").retry(
        RetryPolicy::default()
            .base_delay(Duration::from_millis(1))
            .max_delay(Duration::from_millis(5)),
    )
}

fn sent(log: &Mutex<Vec<Sent>>) -> Vec<Sent> {
    lock(log).clone()
}

/// How many times each number was recorded in `dir/runs`.
fn runs(dir: &TempDir) -> BTreeMap<u64, usize> {
    let text = std::fs::read_to_string(dir.path().join("runs")).unwrap_or_default();
    let mut runs = BTreeMap::new();
    for line in text.lines() {
        *runs.entry(line.parse().expect("a number")).or_default() += 1;
    }
    runs
}

fn attempts<R>(outcomes: &[Outcome<R>]) -> Vec<u32> {
    outcomes.iter().map(Outcome::attempts).collect()
}

fn kinds<R>(outcomes: &[Outcome<R>]) -> Vec<Option<Kind>> {
    outcomes
        .iter()
        .map(|outcome| {
            outcome
                .result()
                .as_ref()
                .err()
                .map(lambda_parallel::Error::kind)
        })
        .collect()
}

fn every_outcome_arrives_in_order_and_typed() -> Result<(), String> {
    let invoker = Faulty::new(worker());
    let log = invoker.log();
    let fleet = builder(invoker)
        .items_per_invocation(7)
        .max_in_flight(4)
        .build()
        .map_err(|err| err.to_string())?;
    let outcomes = runtime().block_on(fleet.map_outcomes(check, 0..500));
    expect(outcomes.len() == 500, "one outcome an input")?;
    for (x, outcome) in (0u64..).zip(&outcomes) {
        match (x, outcome.result()) {
            (42, Err(err)) => {
                expect(err.panic_message() == Some("the answer"), format!("{err}"))?;
                expect(
                    err.task_index() == Some(42),
                    "the panic's index is the input's",
                )?;
            }
            (x, Ok(Err(msg))) if x % 10 == 3 => expect(*msg == format!("{x} ends in 3"), msg)?,
            (x, Ok(Ok(double))) => expect(*double == 2 * x, format!("{x}: {double}"))?,
            (x, other) => return Err(format!("{x}: {other:?}")),
        }
    }
    expect(
        attempts(&outcomes).iter().all(|&n| n == 1),
        "each in one attempt",
    )?;
    let invocations = sent(&log);
    expect(
        invocations.len() == 500usize.div_ceil(7),
        format!("{} invocations", invocations.len()),
    )?;
    expect(
        invocations.iter().all(|s| s.items <= 7),
        "at most 7 items an invocation",
    )
}

fn throttles_are_retried_after_retry_after() -> Result<(), String> {
    let after = Duration::from_millis(80);
    let invoker = Faulty::new(worker()).then(Fault::Throttle(after));
    let log = invoker.log();
    // Not idempotent: a throttle is retried all the same, since the work never ran.
    let fleet = builder(invoker)
        .max_in_flight(1)
        .build()
        .map_err(|e| e.to_string())?;
    let outcomes = runtime().block_on(fleet.map_outcomes(check, [1, 2, 4]));
    expect(
        kinds(&outcomes) == [None, None, None],
        format!("{outcomes:?}"),
    )?;
    expect(
        attempts(&outcomes) == [2, 2, 2],
        format!("{:?}", attempts(&outcomes)),
    )?;
    let invocations = sent(&log);
    expect(invocations.len() == 2, format!("{invocations:?}"))?;
    expect(
        invocations[1].attempt == 2,
        "the retry says it is the second attempt",
    )?;
    let waited = invocations[1].at - invocations[0].at;
    expect(
        waited >= after,
        format!("retried after {waited:?}, before {after:?}"),
    )
}

fn throttles_past_the_limit_fail_as_throttled() -> Result<(), String> {
    let invoker = Faulty::new(worker()).always(Fault::Throttle(Duration::from_millis(1)));
    let fleet = builder(invoker)
        .retry(
            RetryPolicy::default()
                .max_throttles(2)
                .base_delay(Duration::from_millis(1))
                .max_delay(Duration::from_millis(2)),
        )
        .build()
        .map_err(|e| e.to_string())?;
    let outcomes = runtime().block_on(fleet.map_outcomes(check, [1]));
    expect(
        kinds(&outcomes) == [Some(Kind::Throttled)],
        format!("{outcomes:?}"),
    )?;
    expect(
        attempts(&outcomes) == [3],
        format!("{:?}", attempts(&outcomes)),
    )
}

fn function_errors_are_typed_and_retried_only_when_idempotent() -> Result<(), String> {
    for error in ["Unhandled", "Runtime.ExitError", "Sandbox.Timedout"] {
        let invoker = Faulty::new(worker()).then(Fault::FunctionError(error));
        let fleet = builder(invoker).build().map_err(|e| e.to_string())?;
        let outcomes = runtime().block_on(fleet.map_outcomes(check, [1, 2]));
        expect(
            kinds(&outcomes) == [Some(Kind::FunctionError); 2],
            format!("{error}: {outcomes:?}"),
        )?;
        let err = outcomes[0].result().as_ref().expect_err("failed");
        expect(err.function_error() == Some(error), format!("{err}"))?;
        expect(err.to_string().contains("injected"), format!("{err}"))?;
        expect(
            attempts(&outcomes) == [1, 1],
            format!("{error}: not retried"),
        )?;

        let invoker = Faulty::new(worker()).then(Fault::FunctionError(error));
        let fleet = builder(invoker)
            .idempotent(true)
            .build()
            .map_err(|e| e.to_string())?;
        let outcomes = runtime().block_on(fleet.map_outcomes(check, [1, 2]));
        expect(
            kinds(&outcomes) == [None, None],
            format!("{error}: {outcomes:?}"),
        )?;
        expect(
            attempts(&outcomes) == [2, 2],
            format!("{error}: retried once"),
        )?;
    }
    Ok(())
}

fn too_large_batches_split_and_an_item_too_large_alone_fails() -> Result<(), String> {
    // Five items of 1,000 bytes (1,336 as base64) in one batch of up to 5 MiB; the function
    // takes no payload over 3,000 bytes, so the batch halves until each part fits, except the
    // item of 4,000 bytes, which fails alone.
    let invoker = Faulty::new(worker()).limit(3_000);
    let log = invoker.log();
    let fleet = builder(invoker)
        .max_in_flight(1)
        .build()
        .map_err(|e| e.to_string())?;
    let mut inputs = vec![vec![7u8; 1_000]; 5];
    inputs[3] = vec![7u8; 4_000];
    let outcomes = runtime().block_on(fleet.map_outcomes(len, inputs));
    let results: Vec<_> = outcomes
        .iter()
        .map(|o| o.result().as_ref().ok().copied())
        .collect();
    expect(
        results == [Some(1_000), Some(1_000), Some(1_000), None, Some(1_000)],
        format!("{outcomes:?}"),
    )?;
    expect(
        kinds(&outcomes)[3] == Some(Kind::PayloadTooLarge),
        format!("{outcomes:?}"),
    )?;
    let invocations = sent(&log);
    expect(
        invocations.iter().all(|s| s.items >= 1),
        "no empty invocation",
    )?;
    // Its own limit: an item over `max_payload_bytes` is never sent.
    let invoker = Faulty::new(worker());
    let log = invoker.log();
    let fleet = builder(invoker)
        .max_payload_bytes(2_000)
        .build()
        .map_err(|e| e.to_string())?;
    let outcomes = runtime().block_on(fleet.map_outcomes(len, [vec![1u8; 4_000], vec![1u8; 10]]));
    expect(
        kinds(&outcomes) == [Some(Kind::PayloadTooLarge), None],
        format!("{outcomes:?}"),
    )?;
    expect(
        attempts(&outcomes) == [0, 1],
        format!("{:?}", attempts(&outcomes)),
    )?;
    expect(sent(&log).len() == 1, "only the small item was sent")
}

fn a_lost_answer_is_retried_when_idempotent_and_the_work_runs_twice() -> Result<(), String> {
    let dir = TempDir::new("fleet-lost");
    let inputs = || (0..6).map(|x| (dir.path().display().to_string(), x));
    // Two invocations of three; the first one's answer is lost after its work ran.
    let invoker = Faulty::new(worker()).then(Fault::LoseAnswer);
    let fleet = builder(invoker)
        .items_per_invocation(3)
        .max_in_flight(1)
        .idempotent(true)
        .build()
        .map_err(|e| e.to_string())?;
    let outcomes = runtime().block_on(fleet.starmap_outcomes(record, inputs()));
    let values: Vec<_> = outcomes
        .iter()
        .map(|o| o.result().as_ref().ok().copied())
        .collect();
    expect(
        values == (0..6).map(Some).collect::<Vec<_>>(),
        format!("{outcomes:?}"),
    )?;
    expect(
        attempts(&outcomes) == [2, 2, 2, 1, 1, 1],
        format!("{:?}", attempts(&outcomes)),
    )?;
    let expected: BTreeMap<u64, usize> = [(0, 2), (1, 2), (2, 2), (3, 1), (4, 1), (5, 1)].into();
    expect(
        runs(&dir) == expected,
        format!("at least once: {:?}", runs(&dir)),
    )?;

    // Not idempotent: the lost answer is the items' outcome, and the work ran once.
    let dir = TempDir::new("fleet-lost-once");
    let inputs = (0..3).map(|x| (dir.path().display().to_string(), x));
    let invoker = Faulty::new(worker()).then(Fault::LoseAnswer);
    let fleet = builder(invoker).build().map_err(|e| e.to_string())?;
    let outcomes = runtime().block_on(fleet.starmap_outcomes(record, inputs));
    expect(
        kinds(&outcomes) == [Some(Kind::Transport); 3],
        format!("{outcomes:?}"),
    )?;
    expect(attempts(&outcomes) == [1, 1, 1], "tried once")?;
    let expected: BTreeMap<u64, usize> = [(0, 1), (1, 1), (2, 1)].into();
    expect(
        runs(&dir) == expected,
        format!("ran once: {:?}", runs(&dir)),
    )
}

fn a_remote_crash_is_retried_only_when_idempotent() -> Result<(), String> {
    let dir = TempDir::new("fleet-crash");
    let inputs = |dir: &TempDir| [(dir.path().display().to_string(), 5u64)];
    let fleet_of = |idempotent| {
        builder(Faulty::new(worker()))
            .idempotent(idempotent)
            .build()
            .map_err(|e| e.to_string())
    };
    let outcomes = runtime().block_on(fleet_of(false)?.starmap_outcomes(crash_once, inputs(&dir)));
    let err = outcomes[0].result().as_ref().expect_err("crashed");
    expect(err.signal_name() == Some("SIGABRT"), format!("{err}"))?;
    expect(outcomes[0].attempts() == 1, "not retried")?;

    let dir = TempDir::new("fleet-crash-retried");
    let outcomes = runtime().block_on(fleet_of(true)?.starmap_outcomes(crash_once, inputs(&dir)));
    expect(
        outcomes[0].result().as_ref().ok() == Some(&5),
        format!("{outcomes:?}"),
    )?;
    expect(outcomes[0].attempts() == 2, "retried once")
}

fn an_invocation_past_the_deadline_fails_and_the_rest_are_not_attempted() -> Result<(), String> {
    // One invocation at a time, two batches: the first never answers.
    let invoker = Faulty::new(worker()).then(Fault::Hang);
    let log = invoker.log();
    let start = Instant::now();
    let fleet = builder(invoker)
        .items_per_invocation(2)
        .max_in_flight(1)
        .idempotent(true)
        .deadline(start + Duration::from_millis(300))
        .build()
        .map_err(|e| e.to_string())?;
    let outcomes = runtime().block_on(fleet.map_outcomes(check, [1, 2, 4, 5]));
    let took = start.elapsed();
    expect(
        kinds(&outcomes)
            == [
                Some(Kind::Deadline),
                Some(Kind::Deadline),
                Some(Kind::NotAttempted),
                Some(Kind::NotAttempted),
            ],
        format!("{outcomes:?}"),
    )?;
    expect(
        attempts(&outcomes) == [1, 1, 0, 0],
        format!("{:?}", attempts(&outcomes)),
    )?;
    expect(
        outcomes[0]
            .result()
            .as_ref()
            .is_err_and(lambda_parallel::Error::is_timeout),
        "a timeout",
    )?;
    expect(sent(&log).len() == 1, "the second batch was never sent")?;
    expect(
        took < Duration::from_secs(30),
        format!("returned after {took:?}"),
    )
}

fn another_build_is_refused_and_not_retried() -> Result<(), String> {
    let invoker = Faulty::new(worker().build_id("another build"));
    let fleet = builder(invoker)
        .idempotent(true)
        .build()
        .map_err(|e| e.to_string())?;
    let outcomes = runtime().block_on(fleet.map_outcomes(check, [1, 2]));
    expect(
        kinds(&outcomes) == [Some(Kind::Refused); 2],
        format!("{outcomes:?}"),
    )?;
    let err = outcomes[0].result().as_ref().expect_err("refused");
    expect(err.to_string().contains("another binary"), format!("{err}"))?;
    expect(attempts(&outcomes) == [1, 1], "not retried")?;
    // The same identity on both sides is served.
    let invoker = Faulty::new(worker().build_id("v1"));
    let fleet = builder(invoker)
        .build_id("v1")
        .build()
        .map_err(|e| e.to_string())?;
    let outcomes = runtime().block_on(fleet.map_outcomes(check, [1]));
    expect(kinds(&outcomes) == [None], format!("{outcomes:?}"))
}

fn envelopes_deeper_than_the_guard_are_refused() -> Result<(), String> {
    // A fleet nested once (depth 2) against the default guard of 1.
    let invoker = Faulty::new(worker()).then(Fault::Depth(2));
    let fleet = builder(invoker).build().map_err(|e| e.to_string())?;
    let outcomes = runtime().block_on(fleet.map_outcomes(check, [1]));
    expect(
        kinds(&outcomes) == [Some(Kind::Refused)],
        format!("{outcomes:?}"),
    )?;
    let err = outcomes[0].result().as_ref().expect_err("refused");
    expect(err.to_string().contains("depth 2"), format!("{err}"))?;
    // A top-level fleet sends depth 1, which a guard of 0 refuses.
    let invoker = Faulty::new(worker().max_depth(0));
    let fleet = builder(invoker).build().map_err(|e| e.to_string())?;
    let outcomes = runtime().block_on(fleet.map_outcomes(check, [1]));
    expect(
        kinds(&outcomes) == [Some(Kind::Refused)],
        format!("{outcomes:?}"),
    )
}

fn a_task_that_fans_out_from_its_worker_is_stopped_by_the_guard() -> Result<(), String> {
    // The depth travels with each batch to the pool worker that runs the task, so a fleet
    // started there is as deep as its envelope, and a loop of fleets ends at the guard.
    let worker = worker().task(fan_out_again);
    let fleet = builder(Faulty::new(worker))
        .build()
        .map_err(|e| e.to_string())?;
    let outcomes = runtime().block_on(fleet.map_each(fan_out_again, [5]));
    let nested = outcomes[0].as_ref().map_err(ToString::to_string)?;
    expect(
        nested.starts_with("Refused") && nested.contains("depth 2"),
        format!("the nested fleet got {nested}"),
    )
}

fn a_batch_processor_runs_its_records_across_a_fleet() -> Result<(), String> {
    use aws_lambda_events::sqs::SqsEvent;
    use lambda_parallel::lambda::{self, BatchProcessor};
    use lambda_runtime::{Context, LambdaEvent};
    use std::time::{SystemTime, UNIX_EPOCH};

    // The same outcomes as on a pool: a value, the function's own Err, a panic.
    let fleet = builder(Faulty::new(worker()))
        .build()
        .map_err(|e| e.to_string())?;
    let processor = BatchProcessor::with_fleet(fleet);
    let record = |id: &str, body: &str| json!({"messageId": id, "body": body, "eventSourceARN": "arn:aws:sqs:us-east-1:1:jobs"});
    let event: SqsEvent = serde_json::from_value(json!({"Records": [
        record("m1", "1"), record("m2", "13"), record("m3", "42"), record("m4", "4"),
    ]}))
    .map_err(|e| e.to_string())?;
    let mut context = Context::default();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|e| e.to_string())?;
    context.deadline = u64::try_from(now.as_millis()).map_err(|e| e.to_string())? + 60_000;
    let response = runtime()
        .block_on(processor.sqs(LambdaEvent::new(event, context), lambda::json, check))
        .map_err(|e| e.to_string())?;
    let failed: Vec<String> = response
        .batch_item_failures
        .iter()
        .map(|failure| failure.item_identifier.clone())
        .collect();
    expect(processor.pool().is_none(), "a fleet processor has no pool")?;
    expect(failed == ["m2", "m3"], format!("{failed:?}"))
}

fn the_unordered_stream_yields_each_item_once() -> Result<(), String> {
    use std::future::poll_fn;
    use std::pin::Pin;

    use futures_core::Stream;

    let fleet = builder(Faulty::new(worker()))
        .items_per_invocation(3)
        .max_in_flight(3)
        .build()
        .map_err(|e| e.to_string())?;
    let seen = runtime().block_on(async {
        let mut stream = fleet.map_unordered(check, 0..40);
        let mut seen = Vec::new();
        while let Some((index, outcome)) = poll_fn(|cx| Pin::new(&mut stream).poll_next(cx)).await {
            seen.push((index, outcome.into_result().map_err(|e| e.kind())));
        }
        seen
    });
    let mut indices: Vec<usize> = seen.iter().map(|(index, _)| *index).collect();
    indices.sort_unstable();
    expect(
        indices == (0..40).collect::<Vec<_>>(),
        format!("{indices:?}"),
    )?;
    let (_, outcome) = seen.iter().find(|(index, _)| *index == 21).expect("21");
    expect(*outcome == Ok(Ok(42)), format!("{outcome:?}"))
}

fn the_worker_hands_other_events_to_the_handler_and_refuses_bad_envelopes() -> Result<(), String> {
    let worker = worker();
    let runtime = runtime();
    let handler = |event: Value| async move { Ok::<_, String>(json!({ "handled": event })) };
    let answer = runtime.block_on(worker.handle(json!({ "Records": [] }), handler))?;
    expect(
        answer == json!({ "handled": { "Records": [] } }),
        answer.to_string(),
    )?;
    let refusals = [
        (json!({ "lambda_parallel_fleet": 2 }), "version"),
        (
            json!({ "lambda_parallel_fleet": 1, "task": 3 }),
            "bad envelope",
        ),
    ];
    for (event, why) in refusals {
        let answer = runtime.block_on(worker.handle(event, handler))?;
        let refused = answer["refused"].as_str().unwrap_or_default();
        expect(refused.contains(why), answer.to_string())?;
    }
    // A task nobody registered.
    let fleet = builder(Faulty::new(FleetWorker::new(
        Pool::new(1).map_err(|e| e.to_string())?,
    )))
    .build()
    .map_err(|e| e.to_string())?;
    let outcomes = runtime.block_on(fleet.map_outcomes(check, [1]));
    let err = outcomes[0].result().as_ref().expect_err("refused");
    expect(
        err.kind() == Kind::Refused && err.to_string().contains("serves no task"),
        format!("{err}"),
    )
}

fn invocations_in_flight_reach_the_bound_and_never_pass_it() -> Result<(), String> {
    // Nine invocations of one item, three at a time: each waits until three are in flight, so
    // the bound is reached (a lower one would never open the gate) and cannot be passed.
    let invoker = Faulty::new(worker()).gate(3);
    let most = Arc::clone(&invoker.most_in_flight);
    let fleet = builder(invoker)
        .items_per_invocation(1)
        .max_in_flight(3)
        .build()
        .map_err(|e| e.to_string())?;
    let outcomes = runtime().block_on(fleet.map_outcomes(check, 0..9));
    expect(kinds(&outcomes) == [None; 9], format!("{outcomes:?}"))?;
    let most = most.load(Ordering::SeqCst);
    expect(most == 3, format!("{most} invocations in flight at once"))
}

fn batches_stay_within_the_byte_limit() -> Result<(), String> {
    // Items of 1,000 bytes cross as 1,336 bytes of base64 (and a few of MessagePack): three fit
    // in 5,000 bytes with the envelope's head, four do not.
    let invoker = Faulty::new(worker());
    let log = invoker.log();
    let fleet = builder(invoker)
        .max_payload_bytes(5_000)
        .build()
        .map_err(|e| e.to_string())?;
    let outcomes = runtime().block_on(fleet.map_outcomes(len, vec![vec![0u8; 1_000]; 10]));
    expect(kinds(&outcomes) == [None; 10], format!("{outcomes:?}"))?;
    let invocations = sent(&log);
    // The batches are cut in order; they arrive in any order, up to ten at once.
    let mut items: Vec<usize> = invocations.iter().map(|s| s.items).collect();
    items.sort_unstable();
    expect(
        items == [1, 3, 3, 3],
        format!("items an invocation: {items:?}"),
    )?;
    let most = invocations.iter().map(|s| s.bytes).max().unwrap_or(0);
    expect(most <= 5_000, format!("a payload of {most} bytes"))
}

fn an_invocation_past_its_timeout_is_retried_only_when_idempotent() -> Result<(), String> {
    let timed_out = |idempotent| {
        let invoker = Faulty::new(worker()).then(Fault::Hang);
        let fleet = builder(invoker)
            .invocation_timeout(Duration::from_millis(200))
            .idempotent(idempotent)
            .build()
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(runtime().block_on(fleet.map_outcomes(check, [1])))
    };
    let outcomes = timed_out(false)?;
    expect(
        kinds(&outcomes) == [Some(Kind::Timeout)],
        format!("{outcomes:?}"),
    )?;
    let err = outcomes[0].result().as_ref().expect_err("timed out");
    expect(
        err.is_timeout() && err.to_string().contains("200ms"),
        format!("{err}"),
    )?;
    let outcomes = timed_out(true)?;
    expect(kinds(&outcomes) == [None], format!("{outcomes:?}"))?;
    expect(attempts(&outcomes) == [2], "retried once")
}

fn a_fleet_call_can_be_spawned() -> Result<(), String> {
    let fleet = builder(Faulty::new(worker()))
        .build()
        .map_err(|e| e.to_string())?;
    let outcomes = runtime()
        .block_on(
            async move { tokio::spawn(async move { fleet.map_each(check, [4]).await }).await },
        )
        .map_err(|e| e.to_string())?;
    expect(
        matches!(outcomes.as_slice(), [Ok(Ok(8))]),
        format!("{outcomes:?}"),
    )
}

fn main() {
    lambda_parallel::init().expect("init runs first thing in main");
    watchdog("fleet", Duration::from_secs(300));
    let checks: [Check; 18] = [
        (
            "invocations_in_flight_reach_the_bound_and_never_pass_it",
            invocations_in_flight_reach_the_bound_and_never_pass_it,
        ),
        (
            "batches_stay_within_the_byte_limit",
            batches_stay_within_the_byte_limit,
        ),
        (
            "an_invocation_past_its_timeout_is_retried_only_when_idempotent",
            an_invocation_past_its_timeout_is_retried_only_when_idempotent,
        ),
        ("a_fleet_call_can_be_spawned", a_fleet_call_can_be_spawned),
        (
            "a_batch_processor_runs_its_records_across_a_fleet",
            a_batch_processor_runs_its_records_across_a_fleet,
        ),
        (
            "a_task_that_fans_out_from_its_worker_is_stopped_by_the_guard",
            a_task_that_fans_out_from_its_worker_is_stopped_by_the_guard,
        ),
        (
            "every_outcome_arrives_in_order_and_typed",
            every_outcome_arrives_in_order_and_typed,
        ),
        (
            "throttles_are_retried_after_retry_after",
            throttles_are_retried_after_retry_after,
        ),
        (
            "throttles_past_the_limit_fail_as_throttled",
            throttles_past_the_limit_fail_as_throttled,
        ),
        (
            "function_errors_are_typed_and_retried_only_when_idempotent",
            function_errors_are_typed_and_retried_only_when_idempotent,
        ),
        (
            "too_large_batches_split_and_an_item_too_large_alone_fails",
            too_large_batches_split_and_an_item_too_large_alone_fails,
        ),
        (
            "a_lost_answer_is_retried_when_idempotent_and_the_work_runs_twice",
            a_lost_answer_is_retried_when_idempotent_and_the_work_runs_twice,
        ),
        (
            "a_remote_crash_is_retried_only_when_idempotent",
            a_remote_crash_is_retried_only_when_idempotent,
        ),
        (
            "an_invocation_past_the_deadline_fails_and_the_rest_are_not_attempted",
            an_invocation_past_the_deadline_fails_and_the_rest_are_not_attempted,
        ),
        (
            "another_build_is_refused_and_not_retried",
            another_build_is_refused_and_not_retried,
        ),
        (
            "envelopes_deeper_than_the_guard_are_refused",
            envelopes_deeper_than_the_guard_are_refused,
        ),
        (
            "the_unordered_stream_yields_each_item_once",
            the_unordered_stream_yields_each_item_once,
        ),
        (
            "the_worker_hands_other_events_to_the_handler_and_refuses_bad_envelopes",
            the_worker_hands_other_events_to_the_handler_and_refuses_bad_envelopes,
        ),
    ];
    run("fleet", &checks);
}
