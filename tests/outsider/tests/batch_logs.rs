//! The `record failed` WARN events of `lambda::BatchProcessor`, caught with a `tracing`
//! subscriber. Alone in its binary: `tracing` caches each callsite's interest process-wide, so
//! a thread-local subscriber (`with_default`) misses events while other tests run at once.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_parallel::lambda::{self, BatchProcessor};
use lambda_parallel::{lambda_parallel, Pool};
use lambda_runtime::{Context, LambdaEvent};
use serde::{Deserialize, Serialize};

/// The body of each test message.
#[derive(Debug, Serialize, Deserialize)]
struct Job {
    seq: u32,
    action: String,
    /// A file the worker appends `tag seq` to, to show the order records ran in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    log: Option<String>,
    #[serde(default)]
    tag: String,
}

#[lambda_parallel]
fn run_job(job: Job) -> Result<u32, String> {
    if let Some(path) = &job.log {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        writeln!(file, "{} {}", job.tag, job.seq).unwrap();
    }
    match job.action.as_str() {
        "ok" => Ok(job.seq),
        "fail" => Err(format!("job {} refused", job.seq)),
        "panic" => panic!("job {} hit a bug", job.seq),
        "abort" => std::process::abort(),
        nap if nap.starts_with("sleep ") => {
            std::thread::sleep(Duration::from_millis(nap[6..].parse().unwrap()));
            Ok(job.seq)
        }
        other => Err(format!("unknown action {other}")),
    }
}

fn context(budget: Duration) -> Context {
    let mut context = Context::default();
    context.request_id = "8476a536-e9f4-11e8-9739-2dfe598c3fcd".into();
    context.invoked_function_arn = "arn:aws:lambda:us-east-2:123456789012:function:orders".into();
    let deadline = SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + budget;
    context.deadline = u64::try_from(deadline.as_millis()).unwrap();
    context
}

/// An SQS message: its id, its FIFO group (`None`: a standard queue) and its body.
fn sqs_event(messages: &[(&str, Option<&str>, String)]) -> SqsEvent {
    let fifo = messages.iter().any(|(_, group, _)| group.is_some());
    let arn = if fifo {
        "arn:aws:sqs:us-east-2:123456789012:orders.fifo"
    } else {
        "arn:aws:sqs:us-east-2:123456789012:orders"
    };
    let records: Vec<serde_json::Value> = messages
        .iter()
        .map(|(id, group, body)| {
            let mut attributes = serde_json::json!({
                "ApproximateReceiveCount": "1",
                "SentTimestamp": "1545082649183",
                "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                "ApproximateFirstReceiveTimestamp": "1545082649185",
            });
            if let Some(group) = group {
                attributes["MessageGroupId"] = (*group).into();
                attributes["SequenceNumber"] = "18849496460467696128".into();
                attributes["MessageDeduplicationId"] = (*id).into();
            }
            serde_json::json!({
                "messageId": id,
                "receiptHandle": format!("handle-{id}"),
                "body": body,
                "attributes": attributes,
                "messageAttributes": {
                    "trace": {"stringValue": "t-1", "stringListValues": [], "binaryListValues": [], "dataType": "String"}
                },
                "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
                "eventSource": "aws:sqs",
                "eventSourceARN": arn,
                "awsRegion": "us-east-2",
            })
        })
        .collect();
    serde_json::from_value(serde_json::json!({ "Records": records })).unwrap()
}

fn job(seq: u32, action: &str) -> String {
    serde_json::to_string(&Job {
        seq,
        action: action.into(),
        log: None,
        tag: String::new(),
    })
    .unwrap()
}

fn failed_ids(response: &SqsBatchResponse) -> Vec<String> {
    response
        .batch_item_failures
        .iter()
        .map(|failure| failure.item_identifier.clone())
        .collect()
}

fn processor() -> BatchProcessor {
    BatchProcessor::new(Pool::new(2).unwrap())
}

/// The user's handler, with `?` into `lambda_runtime::Error`, as `main` would serve it.
async fn handler(
    processor: &BatchProcessor,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    Ok(processor.sqs(event, lambda::json, run_job).await?)
}

/// A `tracing` writer that keeps what it is given.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn every_failure_is_a_warn_event_with_its_fields() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let event = sqs_event(&[
        ("good", None, job(1, "ok")),
        ("bug", None, job(2, "panic")),
        ("crash", None, job(3, "abort")),
        ("refused", None, job(4, "fail")),
    ]);
    let response = tracing::subscriber::with_default(subscriber, || {
        runtime.block_on(handler(
            &processor(),
            LambdaEvent::new(event, context(Duration::from_secs(60))),
        ))
    })
    .unwrap();
    assert_eq!(failed_ids(&response), ["bug", "crash", "refused"]);
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<&str> = logs
        .lines()
        .filter(|line| line.contains("record failed"))
        .collect();
    assert_eq!(lines.len(), 3, "{logs}");
    assert!(lines.iter().all(|line| line.contains("WARN")), "{logs}");
    let bug = lines
        .iter()
        .find(|line| line.contains("record_id=\"bug\""))
        .expect(&logs);
    assert!(
        bug.contains("job 2 hit a bug") && bug.contains("task=1"),
        "{bug}"
    );
    assert!(
        bug.contains(&format!("panic_location={}:", file!())),
        "{bug}"
    );
    let crash = lines
        .iter()
        .find(|line| line.contains("record_id=\"crash\""))
        .expect(&logs);
    assert!(crash.contains("SIGABRT"), "{crash}");
    let refused = lines
        .iter()
        .find(|line| line.contains("record_id=\"refused\""))
        .expect(&logs);
    assert!(
        refused.contains("job 4 refused") && refused.contains("run_job"),
        "{refused}"
    );
}
