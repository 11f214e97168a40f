//! What the batch tests share: the message body, the user's function, the events and
//! contexts a handler is given, and the handler itself. Each test binary that uses it compiles
//! its own copy (so each has the function in its own workers).
#![allow(dead_code, reason = "each binary uses its own part of it")]

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_parallel::lambda::{self, BatchProcessor};
use lambda_parallel::{lambda_parallel, Pool};
use lambda_runtime::{Context, LambdaEvent};
use serde::{Deserialize, Serialize};

/// The body of each test message.
#[derive(Debug, Serialize, Deserialize)]
pub struct Job {
    pub seq: u32,
    pub action: String,
    /// A file the worker appends `tag seq` to, to show the order records ran in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<String>,
    #[serde(default)]
    pub tag: String,
}

#[lambda_parallel]
pub fn run_job(job: Job) -> Result<u32, String> {
    if let Some(path) = &job.log {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        // One write(2) for the whole line: `writeln!` writes it in pieces, which another
        // worker appending at the same moment would cut into.
        file.write_all(format!("{} {}\n", job.tag, job.seq).as_bytes())
            .unwrap();
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

pub fn context(budget: Duration) -> Context {
    let mut context = Context::default();
    context.request_id = "8476a536-e9f4-11e8-9739-2dfe598c3fcd".into();
    context.invoked_function_arn = "arn:aws:lambda:us-east-2:123456789012:function:orders".into();
    let deadline = SystemTime::now().duration_since(UNIX_EPOCH).unwrap() + budget;
    context.deadline = u64::try_from(deadline.as_millis()).unwrap();
    context
}

/// An SQS message: its id, its FIFO group (`None`: a standard queue) and its body.
pub fn sqs_event(messages: &[(&str, Option<&str>, String)]) -> SqsEvent {
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

pub fn job(seq: u32, action: &str) -> String {
    serde_json::to_string(&Job {
        seq,
        action: action.into(),
        log: None,
        tag: String::new(),
    })
    .unwrap()
}

pub fn failed_ids(response: &SqsBatchResponse) -> Vec<String> {
    response
        .batch_item_failures
        .iter()
        .map(|failure| failure.item_identifier.clone())
        .collect()
}

pub fn processor() -> BatchProcessor {
    BatchProcessor::new(Pool::new(2).unwrap())
}

/// The user's handler, with `?` into `lambda_runtime::Error`, as `main` would serve it.
pub async fn handler(
    processor: &BatchProcessor,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    Ok(processor.sqs(event, lambda::json, run_job).await?)
}
