//! `lambda::BatchProcessor` as a handler calls it: SQS (standard and FIFO) with a
//! `lambda_runtime::Context`, Kinesis and DynamoDB streams, the partial batch responses, the
//! whole-batch error, the invocation's deadline, and the `record failed` log lines.

use std::time::{Duration, Instant};

use aws_lambda_events::dynamodb;
use aws_lambda_events::kinesis::KinesisEvent;
use aws_lambda_events::sqs::SqsEvent;
use lambda_parallel::lambda::{self, DecodeError};
use lambda_runtime::LambdaEvent;

mod common;

use common::*;

#[tokio::test]
async fn sqs_reports_exactly_the_failed_messages() {
    let event = sqs_event(&[
        ("m1", None, job(1, "ok")),
        ("m2", None, "{not json".into()),
        ("m3", None, job(3, "fail")),
        ("m4", None, job(4, "panic")),
        ("m5", None, job(5, "abort")),
        ("m6", None, job(6, "ok")),
        ("m7", None, r#"{"seq": "seven", "action": "ok"}"#.into()),
    ]);
    let response = handler(
        &processor(),
        LambdaEvent::new(event, context(Duration::from_secs(60))),
    )
    .await
    .unwrap();
    assert_eq!(failed_ids(&response), ["m2", "m3", "m4", "m5", "m7"]);
    // What Lambda reads back.
    let json = serde_json::to_value(&response).unwrap();
    assert_eq!(json["batchItemFailures"][0]["itemIdentifier"], "m2");
}

#[tokio::test]
async fn the_users_own_order_handler() {
    use outsider::{item, sample_order};
    let orders = [
        ("ok", sample_order("1", vec![item(1, 1, 100)])),
        ("empty", sample_order("2", vec![])),
        ("bug", sample_order("3", vec![item(666, 1, 1)])),
    ];
    let messages: Vec<_> = orders
        .iter()
        .map(|(id, order)| (*id, None, serde_json::to_string(order).unwrap()))
        .collect();
    let event = LambdaEvent::new(sqs_event(&messages), context(Duration::from_secs(60)));
    let response = outsider::handler(&processor(), event).await.unwrap();
    assert_eq!(failed_ids(&response), ["empty", "bug"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_batch_is_an_empty_response() {
    let event = LambdaEvent::new(sqs_event(&[]), context(Duration::from_secs(60)));
    let response = handler(&processor(), event).await.unwrap();
    assert!(response.batch_item_failures.is_empty());
}

fn log_path(name: &str) -> String {
    let path = std::env::temp_dir().join(format!("outsider-{}-{name}.log", std::process::id()));
    let _ = std::fs::remove_file(&path);
    path.to_string_lossy().into_owned()
}

fn logged_job(seq: u32, action: &str, tag: &str, log: &str) -> String {
    serde_json::to_string(&Job {
        seq,
        action: action.into(),
        log: Some(log.into()),
        tag: tag.into(),
    })
    .unwrap()
}

fn fifo_event(log: &str) -> SqsEvent {
    sqs_event(&[
        ("a1", Some("A"), logged_job(1, "sleep 30", "A", log)),
        ("b1", Some("B"), logged_job(1, "ok", "B", log)),
        ("a2", Some("A"), logged_job(2, "fail", "A", log)),
        ("b2", Some("B"), logged_job(2, "ok", "B", log)),
        ("a3", Some("A"), logged_job(3, "ok", "A", log)),
        ("b3", Some("B"), logged_job(3, "ok", "B", log)),
        ("a4", Some("A"), logged_job(4, "ok", "A", log)),
        ("b4", Some("B"), logged_job(4, "ok", "B", log)),
    ])
}

fn ran(log: &str, tag: &str) -> Vec<u32> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.strip_prefix(&format!("{tag} ")))
        .map(|seq| seq.parse().unwrap())
        .collect()
}

#[tokio::test]
async fn fifo_groups_run_in_order_and_a_failure_skips_the_rest_of_its_group() {
    let log = log_path("fifo");
    let event = LambdaEvent::new(fifo_event(&log), context(Duration::from_secs(60)));
    let response = handler(&processor(), event).await.unwrap();
    assert_eq!(failed_ids(&response), ["a2", "a3", "a4"]);
    assert_eq!(ran(&log, "A"), [1, 2], "group A after its failure");
    assert_eq!(ran(&log, "B"), [1, 2, 3, 4], "group B in order");
    let _ = std::fs::remove_file(&log);
}

#[tokio::test]
async fn fifo_without_skip_group_on_error_stops_every_group() {
    let log = log_path("fifo-all");
    let processor = processor().skip_group_on_error(false);
    let event = LambdaEvent::new(fifo_event(&log), context(Duration::from_secs(60)));
    let response = handler(&processor, event).await.unwrap();
    // a2 fails in the second round, beside b2; everything after that round fails unrun.
    assert_eq!(failed_ids(&response), ["a2", "a3", "b3", "a4", "b4"]);
    assert_eq!(ran(&log, "A"), [1, 2]);
    assert_eq!(ran(&log, "B"), [1, 2]);
    let _ = std::fs::remove_file(&log);
}

#[tokio::test]
async fn a_batch_that_fails_whole_is_an_error_unless_told_otherwise() {
    let messages = [("x1", None, job(1, "fail")), ("x2", None, "nope".into())];
    let event = LambdaEvent::new(sqs_event(&messages), context(Duration::from_secs(60)));
    let err = processor()
        .sqs(event, lambda::json, run_job)
        .await
        .unwrap_err();
    assert_eq!(err.records(), 2);
    assert!(err.to_string().contains("job 1 refused"), "{err}");
    // and it goes through `?` into the handler's error.
    let event = LambdaEvent::new(sqs_event(&messages), context(Duration::from_secs(60)));
    let err = handler(&processor(), event).await.unwrap_err();
    assert!(err.to_string().contains("all 2 records"), "{err}");

    let processor = processor().raise_on_entire_batch_failure(false);
    let event = LambdaEvent::new(sqs_event(&messages), context(Duration::from_secs(60)));
    let response = processor.sqs(event, lambda::json, run_job).await.unwrap();
    assert_eq!(failed_ids(&response), ["x1", "x2"]);
}

#[tokio::test]
async fn records_still_running_at_the_deadline_fail_and_the_answer_comes_in_time() {
    let processor = processor().margin(Duration::from_millis(500));
    let messages = [
        ("fast", None, job(1, "ok")),
        ("slow", None, job(2, "sleep 60000")),
        ("fast-too", None, job(3, "sleep 10")),
    ];
    let event = LambdaEvent::new(sqs_event(&messages), context(Duration::from_millis(1500)));
    let started = Instant::now();
    let response = handler(&processor, event).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(1400),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(failed_ids(&response), ["slow"]);
    // The pool is whole again, and has no deadline left over.
    let pool = processor.pool().expect("a processor on a pool");
    assert_eq!(pool.pids().len(), 2);
    assert_eq!(
        pool.apply(
            run_job,
            (Job {
                seq: 9,
                action: "sleep 1200".into(),
                log: None,
                tag: String::new()
            },)
        )
        .unwrap(),
        Ok(9)
    );
}

#[tokio::test]
async fn a_decoder_of_the_users_own() {
    // Bodies as plain text, `seq:action`.
    let decode = |message: &aws_lambda_events::sqs::SqsMessage| -> Result<Job, DecodeError> {
        let body = message.body.as_deref().unwrap_or_default();
        let (seq, action) = body
            .split_once(':')
            .ok_or_else(|| DecodeError::new("no colon"))?;
        let seq = seq.parse().map_err(DecodeError::new)?;
        Ok(Job {
            seq,
            action: action.into(),
            log: None,
            tag: String::new(),
        })
    };
    let messages = [
        ("t1", None, "1:ok".into()),
        ("t2", None, "two:ok".into()),
        ("t3", None, "3:fail".into()),
    ];
    let event = LambdaEvent::new(sqs_event(&messages), context(Duration::from_secs(60)));
    let response = processor().sqs(event, decode, run_job).await.unwrap();
    assert_eq!(failed_ids(&response), ["t2", "t3"]);

    // `lambda::body` hands the body over as it is.
    let messages = [("u1", None, "hello".into())];
    let event = LambdaEvent::new(sqs_event(&messages), context(Duration::from_secs(60)));
    let response = processor()
        .sqs(event, lambda::body, |body: String| {
            if body == "hello" {
                Ok(())
            } else {
                Err(format!("unexpected body {body:?}"))
            }
        })
        .await
        .unwrap();
    assert!(response.batch_item_failures.is_empty());
}

fn kinesis_event(jobs: &[(&str, String)]) -> KinesisEvent {
    use base64_data as b64;
    let records: Vec<serde_json::Value> = jobs
        .iter()
        .map(|(sequence, data)| {
            serde_json::json!({
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": "orders",
                    "sequenceNumber": sequence,
                    "data": b64::encode(data.as_bytes()),
                    "approximateArrivalTimestamp": 1_480_641_523.477,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": format!("shardId-000000000000:{sequence}"),
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::123456789012:role/LambdaRole",
                "awsRegion": "us-east-1",
                "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/orders",
            })
        })
        .collect();
    serde_json::from_value(serde_json::json!({ "Records": records })).unwrap()
}

/// Base64, as Kinesis sends record data, by hand: the test needs no crate for it.
mod base64_data {
    pub(super) fn encode(bytes: &[u8]) -> String {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}

#[tokio::test]
async fn kinesis_answers_with_the_first_failed_sequence_number() {
    let event = kinesis_event(&[
        (
            "49590338271490256608559692538361571095921575989136588801",
            job(1, "ok"),
        ),
        (
            "49590338271490256608559692538361571095921575989136588802",
            job(2, "panic"),
        ),
        (
            "49590338271490256608559692538361571095921575989136588803",
            job(3, "fail"),
        ),
        (
            "49590338271490256608559692538361571095921575989136588804",
            job(4, "ok"),
        ),
    ]);
    let event = LambdaEvent::new(event, context(Duration::from_secs(60)));
    let response = processor()
        .kinesis(event, lambda::json, run_job)
        .await
        .unwrap();
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(
        response.batch_item_failures[0].item_identifier.as_deref(),
        Some("49590338271490256608559692538361571095921575989136588802")
    );

    // All fine: nothing to retry.
    let event = kinesis_event(&[("1", job(1, "ok"))]);
    let event = LambdaEvent::new(event, context(Duration::from_secs(60)));
    let response = processor()
        .kinesis(event, lambda::json, run_job)
        .await
        .unwrap();
    assert!(response.batch_item_failures.is_empty());
}

fn dynamodb_event(actions: &[(&str, &str)]) -> dynamodb::Event {
    let records: Vec<serde_json::Value> = actions
        .iter()
        .enumerate()
        .map(|(n, (sequence, action))| {
            serde_json::json!({
                "eventID": format!("event-{n}"),
                "eventName": "INSERT",
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": "us-east-1",
                "dynamodb": {
                    "ApproximateCreationDateTime": 1_480_642_020,
                    "Keys": {"pk": {"S": format!("job#{n}")}},
                    "NewImage": {
                        "pk": {"S": format!("job#{n}")},
                        "seq": {"N": n.to_string()},
                        "action": {"S": action},
                        "payload": {"B": "AAEqQQ=="},
                    },
                    "SequenceNumber": sequence,
                    "SizeBytes": 26,
                    "StreamViewType": "NEW_IMAGE",
                },
                "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/Jobs/stream/2016-12-01T00:00:00.000",
            })
        })
        .collect();
    serde_json::from_value(serde_json::json!({ "Records": records })).unwrap()
}

#[tokio::test]
async fn dynamodb_answers_with_the_first_failed_sequence_number() {
    // The decoder reads the new image, as a user's would, through its JSON form.
    let decode = |record: &dynamodb::EventRecord| -> Result<Job, String> {
        let image = serde_json::to_value(&record.change.new_image).map_err(|e| e.to_string())?;
        let action = image["action"]["S"].as_str().ok_or("no action")?;
        let seq = image["seq"]["N"]
            .as_str()
            .ok_or("no seq")?
            .parse()
            .map_err(|_| "bad seq")?;
        Ok(Job {
            seq,
            action: action.into(),
            log: None,
            tag: String::new(),
        })
    };
    let event = dynamodb_event(&[
        ("100", "ok"),
        ("200", "ok"),
        ("300", "abort"),
        ("400", "fail"),
    ]);
    let event = LambdaEvent::new(event, context(Duration::from_secs(60)));
    let response = processor().dynamodb(event, decode, run_job).await.unwrap();
    assert_eq!(response.batch_item_failures.len(), 1);
    assert_eq!(
        response.batch_item_failures[0].item_identifier.as_deref(),
        Some("300")
    );

    // A whole DynamoDB record crosses to a worker too.
    let event = dynamodb_event(&[("500", "ok")]);
    let event = LambdaEvent::new(event, context(Duration::from_secs(60)));
    let response = processor()
        .dynamodb(
            event,
            |record: &dynamodb::EventRecord| Ok::<_, String>(record.clone()),
            |record: dynamodb::EventRecord| {
                if record.change.sequence_number.as_deref() == Some("500") {
                    Ok(())
                } else {
                    Err("the record arrived changed".to_owned())
                }
            },
        )
        .await
        .unwrap();
    assert!(response.batch_item_failures.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_invocations_at_once_on_one_processor_keep_their_own_deadlines() {
    // Lambda's multi-concurrency: "two calls at once on one processor are served one after
    // the other", so neither's deadline may cut the other's records short.
    let processor = processor().margin(Duration::from_millis(100));
    let short = {
        let processor = processor.clone();
        tokio::spawn(async move {
            let event = sqs_event(&[("short-slow", None, job(1, "sleep 60000"))]);
            let event = LambdaEvent::new(event, context(Duration::from_millis(700)));
            processor.sqs(event, lambda::json, run_job).await
        })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let long = {
        let processor = processor.clone();
        tokio::spawn(async move {
            let messages = [
                ("long-1", None, job(1, "sleep 1000")),
                ("long-2", None, job(2, "ok")),
            ];
            let event = LambdaEvent::new(sqs_event(&messages), context(Duration::from_secs(30)));
            processor.sqs(event, lambda::json, run_job).await
        })
    };
    let short = tokio::time::timeout(Duration::from_secs(20), short)
        .await
        .unwrap()
        .unwrap();
    // Its only record ran out of time: the whole batch failed.
    assert_eq!(short.unwrap_err().records(), 1);
    let long = tokio::time::timeout(Duration::from_secs(20), long)
        .await
        .unwrap()
        .unwrap();
    assert!(long.unwrap().batch_item_failures.is_empty());
}
