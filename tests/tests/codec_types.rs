//! Every family of serde's data model that a Lambda handler holds crosses to a worker and back
//! unchanged: as an argument, as a result and as both, through `Pool::map`, `map_each` and
//! `apply` on forked workers and on an inline `Pool::new(0)`, and through `spawn(..).join()`.
//!
//! Each family gets three functions: `echo` (argument and result), `is_sample` (the argument
//! alone: the worker compares it with its own copy) and `make` (the result alone).

use std::collections::{BTreeMap, HashMap};

use aws_lambda_events::event::apigw::{ApiGatewayProxyRequest, ApiGatewayV2httpRequest};
use aws_lambda_events::event::dynamodb::Event as DynamoDbEvent;
use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::event::s3::S3Event;
use aws_lambda_events::event::sqs::SqsEvent;
use lambda_parallel::{lambda_parallel, Pool};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Parses one of the samples in `fixtures/`.
fn fixture<T: serde::de::DeserializeOwned>(name: &str) -> T {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{path}: {err}"));
    serde_json::from_str(&text).unwrap_or_else(|err| panic!("{path}: {err}"))
}

macro_rules! families {
    ($($(#[$meta:meta])* $family:ident: $ty:ty = $sample:expr;)*) => {$(
        $(#[$meta])*
        mod $family {
            #[allow(clippy::wildcard_imports, reason = "each family uses a few of the imports")]
            use super::*;

            fn sample() -> $ty {
                $sample
            }

            #[lambda_parallel]
            fn echo(value: $ty) -> $ty {
                value
            }

            #[lambda_parallel]
            fn is_sample(value: $ty) -> bool {
                value == sample()
            }

            #[lambda_parallel]
            fn make(_task: u32) -> $ty {
                sample()
            }

            #[test]
            fn crosses_as_argument_and_result() {
                let value = sample();
                for pool in [Pool::new(2).unwrap(), Pool::new(0).unwrap()] {
                    let three = vec![value.clone(); 3];
                    assert_eq!(pool.map(echo, three.clone()).unwrap(), three);
                    for outcome in pool.map_each(echo, three.clone()) {
                        assert_eq!(outcome.unwrap(), value);
                    }
                    assert_eq!(pool.apply(echo, (value.clone(),)).unwrap(), value);
                    assert_eq!(pool.map(is_sample, three).unwrap(), [true; 3]);
                    assert!(pool.apply(is_sample, (value.clone(),)).unwrap());
                    assert_eq!(pool.map(make, 0..2).unwrap(), vec![value.clone(); 2]);
                    for outcome in pool.map_each(make, 0..2) {
                        assert_eq!(outcome.unwrap(), value);
                    }
                }
                assert_eq!(echo::spawn(value.clone()).unwrap().join().unwrap(), value);
                assert!(is_sample::spawn(value.clone()).unwrap().join().unwrap());
                assert_eq!(make::spawn(0).unwrap().join().unwrap(), value);
            }
        }
    )*};
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Sparse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    absent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    present: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    empty: Vec<u32>,
    #[serde(skip)]
    skipped: u8,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Flattened {
    id: u32,
    #[serde(flatten)]
    meta: Meta,
    #[serde(flatten)]
    extra: HashMap<String, Value>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Meta {
    version: u16,
    blob: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
enum Untagged {
    Number(u64),
    Text(String),
    Pair(i32, bool),
    Record { name: String, bytes: Vec<u8> },
    Nothing,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Internal {
    Created { id: u64, payload: Vec<u8> },
    Renamed { from: String, to: String },
    Wrapped(Meta),
    Deleted,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", content = "c")]
enum Adjacent {
    Unit,
    Newtype(Vec<u8>),
    Tuple(u8, String),
    Struct { x: i64 },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
enum External {
    Unit,
    Newtype(Option<u8>),
    Tuple(u8, Vec<u8>),
    Struct { inner: Box<External> },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Wide {
    unsigned: u128,
    signed: i128,
    small: (u8, i8, u16, i16, u32, i32, u64, i64),
    floats: (f32, f64),
    character: char,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Keys {
    numbers: HashMap<u64, String>,
    tuples: BTreeMap<(u8, bool), Vec<i16>>,
    chars: HashMap<char, bool>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Times {
    chrono_utc: chrono::DateTime<chrono::Utc>,
    chrono_offset: chrono::DateTime<chrono::FixedOffset>,
    chrono_naive: chrono::NaiveDateTime,
    chrono_date: chrono::NaiveDate,
    time_offset: time::OffsetDateTime,
    time_date: time::Date,
    time_duration: time::Duration,
    std_duration: std::time::Duration,
}

/// Types with a human-readable and a compact form, where serde buffers content.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
enum TimesInUntagged {
    Stamp { at: time::OffsetDateTime },
    Date { on: time::Date },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Bytes {
    plain: Vec<u8>,
    boxed: Box<[u8]>,
    maybe: Option<Vec<u8>>,
    nested: Vec<Vec<u8>>,
    keyed: BTreeMap<String, Vec<u8>>,
    array: [u8; 4],
    empty: Vec<u8>,
}

fn times() -> Times {
    use chrono::TimeZone;
    let utc = chrono::Utc
        .with_ymd_and_hms(2024, 2, 29, 23, 59, 58)
        .unwrap()
        + chrono::TimeDelta::nanoseconds(123_456_789);
    let offset = chrono::FixedOffset::east_opt(5 * 3600 + 1800).unwrap();
    Times {
        chrono_utc: utc,
        chrono_offset: utc.with_timezone(&offset),
        chrono_naive: utc.naive_utc(),
        chrono_date: utc.date_naive(),
        time_offset: time::macros::datetime!(2024-02-29 23:59:58.123456789 +05:30),
        time_date: time::macros::date!(1999 - 12 - 31),
        time_duration: time::Duration::new(-3, 500),
        std_duration: std::time::Duration::new(7, 8),
    }
}

fn mib() -> Vec<u8> {
    (0..=250).cycle().take(1 << 20).collect()
}

families! {
    json_value: Value = json!({
        "null": null, "bool": true, "max": u64::MAX, "min": i64::MIN, "float": 0.1,
        "text": "ünïcödé ✓", "array": [1, "two", [3.5, {"four": []}], {}],
        "nested": {"deeper": {"deepest": [null, false]}},
    });
    skip_serializing_if: Vec<Sparse> = vec![
        Sparse { absent: None, present: Some("here".into()), empty: Vec::new(), skipped: 0 },
        Sparse { absent: None, present: None, empty: vec![1, 2], skipped: 0 },
    ];
    flatten: Flattened = Flattened {
        id: 7,
        meta: Meta { version: 2, blob: vec![0, 1, 255] },
        extra: HashMap::from([
            ("trace".into(), json!("abc")),
            ("count".into(), json!(3)),
            ("tags".into(), json!(["a", "b"])),
        ]),
    };
    untagged: Vec<Untagged> = vec![
        Untagged::Number(u64::MAX),
        Untagged::Text("text".into()),
        Untagged::Pair(-5, true),
        Untagged::Record { name: "r".into(), bytes: (0..=255).collect() },
        Untagged::Nothing,
    ];
    internally_tagged: Vec<Internal> = vec![
        Internal::Created { id: 1, payload: vec![9; 300] },
        Internal::Renamed { from: "a".into(), to: "b".into() },
        Internal::Wrapped(Meta { version: 1, blob: Vec::new() }),
        Internal::Deleted,
    ];
    adjacently_tagged: Vec<Adjacent> = vec![
        Adjacent::Unit,
        Adjacent::Newtype(vec![1, 2, 3]),
        Adjacent::Tuple(4, "four".into()),
        Adjacent::Struct { x: -1 },
    ];
    externally_tagged: Vec<External> = vec![
        External::Unit,
        External::Newtype(Some(3)),
        External::Newtype(None),
        External::Tuple(1, vec![2; 40]),
        External::Struct { inner: Box::new(External::Unit) },
    ];
    wide_integers: Wide = Wide {
        unsigned: u128::MAX,
        signed: i128::MIN,
        small: (u8::MAX, i8::MIN, u16::MAX, i16::MIN, u32::MAX, i32::MIN, u64::MAX, i64::MIN),
        floats: (f32::MIN_POSITIVE, -f64::MAX),
        character: '∀',
    };
    non_string_keys: Keys = Keys {
        numbers: HashMap::from([(0, "zero".into()), (u64::MAX, "max".into())]),
        tuples: BTreeMap::from([((1, true), vec![-1, 1]), ((2, false), Vec::new())]),
        chars: HashMap::from([('k', true)]),
    };
    chrono_and_time: Times = times();
    time_inside_untagged: Vec<TimesInUntagged> = vec![
        TimesInUntagged::Stamp { at: times().time_offset },
        TimesInUntagged::Date { on: times().time_date },
    ];
    byte_vectors: Bytes = Bytes {
        plain: mib(),
        boxed: vec![7; 5000].into(),
        maybe: Some(vec![1, 2, 3]),
        nested: vec![vec![], vec![0], vec![255; 70_000]],
        keyed: BTreeMap::from([("k".into(), b"value".to_vec())]),
        array: [1, 2, 3, 4],
        empty: Vec::new(),
    };
    sqs_event: SqsEvent = fixture("sqs-event-ten-records.json");
    kinesis_event: KinesisEvent = fixture("kinesis-event.json");
    dynamodb_event: DynamoDbEvent = fixture("dynamodb-event.json");
    dynamodb_images: DynamoDbEvent = fixture("dynamodb-modify-with-images.json");
    s3_event: S3Event = fixture("s3-event.json");
    eventbridge_event: EventBridgeEvent<Value> = fixture("eventbridge-event-obj.json");
    api_gateway_request: ApiGatewayProxyRequest = fixture("apigw-request.json");
    api_gateway_v2_request: ApiGatewayV2httpRequest =
        fixture("apigw-v2-request-jwt-authorizer.json");
}

#[test]
fn the_sqs_sample_has_ten_records_with_attributes() {
    let event: SqsEvent = fixture("sqs-event-ten-records.json");
    assert_eq!(event.records.len(), 10);
    for record in &event.records {
        assert!(!record.attributes.is_empty());
        assert!(!record.message_attributes.is_empty());
        let body: Value = serde_json::from_str(record.body.as_deref().unwrap()).unwrap();
        assert!(body["items"].is_array());
    }
    let binary = &event.records[0].message_attributes["Signature"];
    let expected: Vec<u8> = (0..32).collect();
    assert_eq!(binary.binary_value.as_deref(), Some(&expected));
}

#[test]
fn the_dynamodb_sample_has_old_and_new_images() {
    let event: DynamoDbEvent = fixture("dynamodb-modify-with-images.json");
    let change = &event.records[0].change;
    assert_eq!(change.old_image.len(), 10);
    assert_eq!(change.new_image.len(), 9);
}

/// `Some(None)` is written as nil, as in JSON, and read back as `None`.
#[allow(clippy::option_option, reason = "the nesting is what is tested")]
type Nested = Option<Option<u8>>;

#[lambda_parallel]
fn nested_option(value: Nested) -> Nested {
    value
}

#[test]
fn some_none_reads_back_as_none() {
    let pool = Pool::new(1).unwrap();
    assert_eq!(
        pool.apply(nested_option, (Some(Some(1)),)).unwrap(),
        Some(Some(1))
    );
    assert_eq!(pool.apply(nested_option, (Some(None),)).unwrap(), None);
}
