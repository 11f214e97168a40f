//! What crosses in the default codec, as the README lists it: `serde_json::Value`, the
//! `aws_lambda_events` types, `flatten`, `skip_serializing_if`, tagged and untagged enums,
//! chrono, `u128`, maps with non-string keys, large byte vectors; and its two documented gaps.
//! Each type goes through `apply`, `map`, `f::TASK`, an inline pool and `f::spawn`.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::sync::OnceLock;

use aws_lambda_events::dynamodb;
use aws_lambda_events::kinesis::KinesisEvent;
use aws_lambda_events::sqs::SqsEvent;
use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, Utc};
use lambda_parallel::{lambda_parallel, Pool, TaskFn, Wire};
use outsider::{item, sample_order, Line, Order, Receipt, Shipping};
use serde::{Deserialize, Serialize};

fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| Pool::new(2).unwrap())
}

/// `value` through every pool entry point, with `f` an identity function.
fn crosses_the_pool<T, F>(f: F, value: &T)
where
    T: Wire + Clone + PartialEq + Debug,
    F: TaskFn<(T,), T>,
{
    assert_eq!(&pool().apply(f, (value.clone(),)).unwrap(), value);
    let both = pool().map(f, [value.clone(), value.clone()]).unwrap();
    assert_eq!(both, [value.clone(), value.clone()]);
    let inline = Pool::new(0).unwrap();
    assert_eq!(&inline.apply(f, (value.clone(),)).unwrap(), value);
}

/// A test that `$value: $ty` crosses unchanged, by every entry point.
macro_rules! crosses {
    ($test:ident: $ty:ty = $value:expr) => {
        mod $test {
            use super::*;

            #[lambda_parallel]
            fn echo(value: $ty) -> $ty {
                value
            }

            #[test]
            fn crosses_unchanged() {
                let value: $ty = $value;
                crosses_the_pool(echo, &value);
                crosses_the_pool(echo::TASK, &value);
                assert_eq!(echo::spawn(value.clone()).unwrap().join().unwrap(), value);
            }
        }
    };
}

crosses!(json_value: serde_json::Value = serde_json::json!({
    "id": "abc",
    "numbers": [1, -2, 3.5, u64::MAX, i64::MIN, 0.1],
    "nothing": null,
    "flags": {"a": true, "b": false},
    "nested": [[], {}, [{"deep": ["x"]}]],
    "text": "naïve – ünïcode ✓",
}));

crosses!(sqs_event: SqsEvent = serde_json::from_str(SQS_EVENT).unwrap());
crosses!(kinesis_event: KinesisEvent = serde_json::from_str(KINESIS_EVENT).unwrap());
crosses!(dynamodb_event: dynamodb::Event = serde_json::from_str(DYNAMODB_EVENT).unwrap());

crosses!(order: Order = {
    let mut order = sample_order(
        "o-1",
        vec![
            item(1, 2, 3),
            Line::GiftCard { cents: 500, message: None },
            Line::GiftCard { cents: 500, message: Some("happy birthday".into()) },
            Line::Shipping { method: Shipping::Named("express".into()) },
            Line::Shipping { method: Shipping::Custom { carrier: "ACME".into(), days: 3 } },
        ],
    );
    order.coupon = Some("TENOFF".into());
    order
});
crosses!(order_with_skipped_fields: Order = {
    let mut order = sample_order("o-2", vec![]);
    order.customer.tags.clear();
    order.extra.clear();
    order
});

crosses!(receipt: Receipt = Receipt {
    order_id: "r".into(),
    total_micro_cents: u128::MAX - 7,
    quantity_by_sku: HashMap::from([(1, 2), (u32::MAX, 0)]),
    placed_at: Utc::now(),
    audit: serde_json::json!([]),
});
crosses!(wide_integers: (u128, i128, u64, i8) = (u128::MAX, i128::MIN, u64::MAX, i8::MIN));

crosses!(tuple_keys: HashMap<(u8, String), Vec<u16>> = HashMap::from([
    ((1, "a".into()), vec![1, 2]),
    ((2, String::new()), vec![]),
]));
crosses!(integer_keys: BTreeMap<i64, Option<String>> =
    BTreeMap::from([(-1, None), (0, Some("zero".into())), (i64::MAX, Some(String::new()))]));
crosses!(date_keys: BTreeMap<NaiveDate, u32> =
    BTreeMap::from([(NaiveDate::from_ymd_opt(2026, 12, 2).unwrap(), 1)]));

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Times {
    utc: DateTime<Utc>,
    offset: DateTime<FixedOffset>,
    naive: NaiveDateTime,
    #[serde(with = "chrono::serde::ts_milliseconds")]
    millis: DateTime<Utc>,
}
crosses!(chrono_times: Times = Times {
    utc: DateTime::parse_from_rfc3339("2026-12-02T06:00:00.123456789Z").unwrap().into(),
    offset: DateTime::parse_from_rfc3339("1999-12-31T23:59:59.5-08:00").unwrap(),
    naive: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap().and_hms_nano_opt(1, 2, 3, 4).unwrap(),
    millis: DateTime::from_timestamp_millis(1_764_655_200_123).unwrap(),
});

/// Adjacently tagged, with every kind of variant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", content = "c")]
enum Event {
    Unit,
    Newtype(u32),
    Tuple(u8, String),
    Struct { x: f64, y: char },
}
crosses!(adjacently_tagged: Vec<Event> = vec![
    Event::Unit,
    Event::Newtype(7),
    Event::Tuple(1, "one".into()),
    Event::Struct { x: -0.0, y: 'λ' },
]);

crosses!(big_bytes: Vec<u8> = (0..32 << 20).map(|i: u32| (i % 251) as u8).collect());
crosses!(boxed_bytes: Box<[u8]> = vec![0xff; 70_000].into_boxed_slice());
crosses!(nested_bytes: Vec<(String, Vec<u8>)> = vec![("a".into(), vec![1; 300_000]), ("b".into(), vec![])]);

#[test]
fn some_none_reads_back_as_none_as_documented() {
    let outcomes = pool()
        .map(|v: Option<Option<u8>>| v, [Some(None), Some(Some(1)), None])
        .unwrap();
    assert_eq!(outcomes, [None, Some(Some(1)), None]);
}

/// A `u128` inside a flattened struct: documented not to decode.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Outer {
    name: String,
    #[serde(flatten)]
    inner: Inner,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Inner {
    amount: u128,
}

#[test]
fn a_u128_inside_flatten_is_a_codec_error_as_documented() {
    let value = Outer {
        name: "n".into(),
        inner: Inner { amount: 1 },
    };
    let err = pool().apply(|v: Outer| v, (value,)).unwrap_err();
    assert!(err.is_codec(), "{err}");
    // It names the type, so that a user can find it.
    assert!(err.to_string().contains("Outer"), "{err}");
}

#[test]
fn the_wrong_shape_of_json_in_a_value_still_crosses() {
    // A `Value` holding what the typed `Order` would refuse: the codec carries it as is.
    let value = serde_json::json!({"order_id": 5, "lines": "none"});
    assert_eq!(
        pool()
            .apply(|v: serde_json::Value| v, (value.clone(),))
            .unwrap(),
        value
    );
}

const SQS_EVENT: &str = r#"{"Records": [{
    "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
    "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a...",
    "body": "{\"order_id\": \"o-9\"}",
    "attributes": {
        "ApproximateReceiveCount": "1",
        "SentTimestamp": "1545082649183",
        "SenderId": "AIDAIENQZJOLO23YVJ4VO",
        "ApproximateFirstReceiveTimestamp": "1545082649185",
        "MessageGroupId": "g-1",
        "MessageDeduplicationId": "d-1"
    },
    "messageAttributes": {
        "trace": {"stringValue": "abc", "stringListValues": [], "binaryListValues": [], "dataType": "String"},
        "blob": {"binaryValue": "MTEwMA==", "stringListValues": ["x"], "binaryListValues": ["MA==", "MQ=="], "dataType": "Binary"},
        "count": {"stringValue": "123", "dataType": "Number"}
    },
    "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
    "eventSource": "aws:sqs",
    "eventSourceARN": "arn:aws:sqs:us-east-2:123456789012:orders.fifo",
    "awsRegion": "us-east-2"
}]}"#;

const KINESIS_EVENT: &str = r#"{"Records": [{
    "kinesis": {
        "kinesisSchemaVersion": "1.0",
        "partitionKey": "s1",
        "sequenceNumber": "49568167373333333333333333333333333333333333333333333333",
        "data": "SGVsbG8gV29ybGQ=",
        "approximateArrivalTimestamp": 1480641523.477
    },
    "eventSource": "aws:kinesis",
    "eventVersion": "1.0",
    "eventID": "shardId-000000000000:49568167373333333333333333333333333333333333333333333333",
    "eventName": "aws:kinesis:record",
    "invokeIdentityArn": "arn:aws:iam::123456789012:role/LambdaRole",
    "awsRegion": "us-east-1",
    "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/simple-stream"
}]}"#;

const DYNAMODB_EVENT: &str = r#"{"Records": [{
    "eventID": "c4ca4238a0b923820dcc509a6f75849b",
    "eventName": "MODIFY",
    "eventVersion": "1.1",
    "eventSource": "aws:dynamodb",
    "awsRegion": "us-east-1",
    "userIdentity": {"type": "Service", "principalId": "dynamodb.amazonaws.com"},
    "dynamodb": {
        "ApproximateCreationDateTime": 1480642020,
        "Keys": {"pk": {"S": "order#1"}, "sk": {"N": "101"}},
        "NewImage": {
            "pk": {"S": "order#1"},
            "sk": {"N": "101"},
            "blob": {"B": "AAEqQQ=="},
            "blobs": {"BS": ["AAEqQQ==", "QSoBAA=="]},
            "tags": {"SS": ["a", "b"]},
            "nums": {"NS": ["1", "2.5"]},
            "meta": {"M": {"ok": {"BOOL": true}, "gone": {"NULL": true}}},
            "list": {"L": [{"S": "x"}, {"N": "3"}]}
        },
        "OldImage": {"pk": {"S": "order#1"}, "sk": {"N": "101"}},
        "SequenceNumber": "111",
        "SizeBytes": 26,
        "StreamViewType": "NEW_AND_OLD_IMAGES"
    },
    "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/Orders/stream/2016-12-01T00:00:00.000"
}]}"#;
