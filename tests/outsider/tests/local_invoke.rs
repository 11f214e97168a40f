//! The function's own `main` (`init`, then the runtime, then the handler), run as a process with
//! one SQS event on stdin by its `--local` mode.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use outsider::{item, sample_order, Order};

fn event(orders: &[(&str, Order)]) -> String {
    let records: Vec<_> = orders
        .iter()
        .map(|(id, order)| {
            serde_json::json!({
                "messageId": id,
                "receiptHandle": "h",
                "body": serde_json::to_string(order).unwrap(),
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:orders",
                "awsRegion": "us-east-1",
            })
        })
        .collect();
    serde_json::json!({ "Records": records }).to_string()
}

/// Runs `main --local <budget_ms>` on the event: its exit code, stdout and stderr.
fn invoke(event: &str, budget_ms: u64) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_outsider"))
        .args(["--local", &budget_ms.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(event.as_bytes())
        .unwrap();
    let output = child.wait_with_output().unwrap();
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).unwrap();
    (
        output.status.code().unwrap_or(-1),
        text(output.stdout),
        text(output.stderr),
    )
}

#[test]
fn main_answers_with_the_failed_messages() {
    let event = event(&[
        ("fine", sample_order("1", vec![item(1, 2, 3)])),
        ("empty", sample_order("2", vec![])),
        ("bug", sample_order("3", vec![item(666, 1, 1)])),
        ("crash", sample_order("4", vec![item(999, 1, 1)])),
    ]);
    let (code, stdout, stderr) = invoke(&event, 30_000);
    assert_eq!(code, 0, "{stderr}");
    let response: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        response,
        serde_json::json!({"batchItemFailures": [
            {"itemIdentifier": "empty"}, {"itemIdentifier": "bug"}, {"itemIdentifier": "crash"},
        ]})
    );
}

#[test]
fn main_answers_before_the_deadline() {
    // SKU 7 sleeps `quantity` ms: a minute, against a budget of 1.5 s less a 200 ms margin.
    let event = event(&[
        ("slow", sample_order("1", vec![item(7, 60_000, 1)])),
        ("fine", sample_order("2", vec![item(1, 1, 1)])),
    ]);
    let started = Instant::now();
    let (code, stdout, stderr) = invoke(&event, 1_500);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(code, 0, "{stderr}");
    let response: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        response["batchItemFailures"],
        serde_json::json!([{"itemIdentifier": "slow"}])
    );
}

#[test]
fn main_fails_a_batch_that_failed_whole() {
    let event = event(&[
        ("empty", sample_order("1", vec![])),
        ("bug", sample_order("2", vec![item(666, 1, 1)])),
    ]);
    let (code, stdout, stderr) = invoke(&event, 30_000);
    assert_eq!(code, 2, "{stdout}");
    assert!(
        stderr.contains("all 2 records of the batch failed"),
        "{stderr}"
    );
}
