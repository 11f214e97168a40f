//! `#[lambda_parallel(codec = bincode)]` (lambda-parallel's feature `bincode`, this crate's
//! feature of the same name), as the README shows it: `spawn` and `f::TASK` in bincode, the
//! bare function in the default codec, and what bincode cannot carry.
#![cfg(feature = "bincode")]

use chrono::{DateTime, Utc};
use lambda_parallel::{lambda_parallel, Kind, Pool};
use outsider::{item, sample_order, Customer, Order};
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Reading {
    sensor: u32,
    at: DateTime<Utc>,
    values: Vec<f64>,
    raw: Vec<u8>,
    total: u128,
}

#[lambda_parallel(codec = bincode)]
fn scale(reading: Reading) -> Reading {
    Reading {
        values: reading.values.iter().map(|v| v * 2.0).collect(),
        total: reading.total * 2,
        ..reading
    }
}

#[lambda_parallel(codec = bincode)]
fn echo_json(value: serde_json::Value) -> serde_json::Value {
    value
}

#[lambda_parallel(codec = bincode)]
fn echo_order(order: Order) -> Order {
    order
}

#[lambda_parallel(codec = bincode)]
fn echo_customer(customer: Customer) -> Customer {
    customer
}

fn reading(sensor: u32) -> Reading {
    Reading {
        sensor,
        at: DateTime::from_timestamp(1_764_655_200, 5).unwrap(),
        values: vec![1.5, -0.25, f64::MAX],
        raw: vec![7; 100_000],
        total: u128::MAX / 3,
    }
}

#[test]
fn spawn_task_and_the_bare_function_agree() {
    let expected = scale(reading(1));
    assert_eq!(scale::spawn(reading(1)).unwrap().join().unwrap(), expected);
    let pool = Pool::new(2).unwrap();
    let inputs: Vec<Reading> = (0..10).map(reading).collect();
    let expected: Vec<Reading> = inputs.iter().cloned().map(scale).collect();
    assert_eq!(pool.map(scale::TASK, inputs.clone()).unwrap(), expected);
    assert_eq!(pool.map(scale, inputs.clone()).unwrap(), expected);
    assert_eq!(
        Pool::new(0).unwrap().map(scale::TASK, inputs).unwrap(),
        expected
    );
}

#[tokio::test]
async fn awaited_in_bincode() {
    let pool = Pool::new(2).unwrap();
    let scaled = pool
        .map_async(scale::TASK, [reading(3)])
        .unwrap()
        .await
        .unwrap();
    assert_eq!(scaled, [scale(reading(3))]);
    assert_eq!(
        scale::spawn(reading(4)).unwrap().await.unwrap(),
        scale(reading(4))
    );
}

#[test]
fn what_bincode_cannot_carry_is_a_codec_error_that_says_what_to_do() {
    let value = serde_json::json!({"a": [1, 2]});
    let err = echo_json::spawn(value.clone()).unwrap().join().unwrap_err();
    assert_eq!(err.kind(), Kind::Codec);
    let text = err.to_string();
    assert!(
        text.contains("bincode") && text.contains("serde_json::value::Value"),
        "{text}"
    );
    assert!(text.contains("use the default codec"), "{text}");

    let pool = Pool::new(1).unwrap();
    let err = pool.map(echo_json::TASK, [value.clone()]).unwrap_err();
    assert!(err.is_codec(), "{err}");
    // The bare function crosses in MessagePack, where a `Value` is at home.
    assert_eq!(pool.map(echo_json, [value.clone()]).unwrap(), [value]);

    // `flatten` and internally tagged enums need `deserialize_any` too.
    let order = sample_order("b", vec![item(1, 1, 1)]);
    let err = pool.apply(echo_order::TASK, (order.clone(),)).unwrap_err();
    assert!(err.is_codec(), "{err}");
    assert_eq!(pool.apply(echo_order, (order.clone(),)).unwrap(), order);
}

#[test]
fn a_skipped_field_fails_to_decode_rather_than_misreading() {
    let pool = Pool::new(1).unwrap();
    let customer = Customer {
        id: 7,
        email: "x@example.com".into(),
        tags: Vec::new(), // skipped when empty
    };
    match pool.apply(echo_customer::TASK, (customer.clone(),)) {
        Err(err) => assert!(err.is_codec(), "{err}"),
        Ok(back) => assert_eq!(back, customer, "bincode misread a skipped field"),
    }
    let tagged = Customer {
        tags: vec!["vip".into()],
        ..customer
    };
    assert_eq!(
        pool.apply(echo_customer::TASK, (tagged.clone(),)).unwrap(),
        tagged
    );
}
