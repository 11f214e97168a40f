//! The order-pricing Lambda function of a made-up shop, written as a user of lambda-parallel
//! writes one: its domain types, the `#[lambda_parallel]` functions that run in worker
//! processes, and the SQS handler that `main.rs` serves. Only `lambda_parallel::` public paths.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use chrono::{DateTime, Utc};
use lambda_parallel::lambda::{self, BatchProcessor};
use lambda_parallel::lambda_parallel;
use lambda_runtime::LambdaEvent;
use serde::{Deserialize, Serialize};

/// An order, as the shop's front end puts it on the queue (JSON).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub order_id: String,
    pub customer: Customer,
    pub lines: Vec<Line>,
    pub placed_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coupon: Option<String>,
    /// Whatever else the front end sent (tracking ids, A/B flags): kept as it came.
    #[serde(flatten)]
    pub extra: BTreeMap<String, serde_json::Value>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    pub id: u64,
    pub email: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

/// An order line: internally tagged, as the front end writes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Line {
    Item {
        sku: u32,
        quantity: u32,
        unit_cents: u64,
    },
    GiftCard {
        cents: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
    },
    Shipping {
        method: Shipping,
    },
}

/// A shipping method: a named one, or a carrier's own (untagged).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Shipping {
    Named(String),
    Custom { carrier: String, days: u8 },
}

/// What pricing an order gives back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Receipt {
    pub order_id: String,
    /// Micro-cents, summed in 128 bits (the shop's accountants insisted).
    pub total_micro_cents: u128,
    /// Quantity by SKU: a map whose keys are not strings.
    pub quantity_by_sku: HashMap<u32, u32>,
    pub placed_at: DateTime<Utc>,
    pub audit: serde_json::Value,
}

/// Why an order could not be priced: the worker's own, typed error.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OrderError {
    Empty { order_id: String },
    UnknownCoupon(String),
}

impl fmt::Display for OrderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OrderError::Empty { order_id } => write!(f, "order {order_id} has no lines"),
            OrderError::UnknownCoupon(coupon) => write!(f, "unknown coupon {coupon:?}"),
        }
    }
}

/// Prices an order. Panics on the SKU 666 (a bug in the pricing library, say), aborts on 999
/// (a C library's `abort`), and sleeps for `quantity` ms on the SKU 7 (a slow supplier API).
#[lambda_parallel]
pub fn price_order(order: Order) -> Result<Receipt, OrderError> {
    if order.lines.is_empty() {
        return Err(OrderError::Empty {
            order_id: order.order_id,
        });
    }
    let discount = match order.coupon.as_deref() {
        None => 0,
        Some("TENOFF") => 10,
        Some(other) => return Err(OrderError::UnknownCoupon(other.to_owned())),
    };
    let mut total: u128 = 0;
    let mut quantity_by_sku = HashMap::new();
    for line in &order.lines {
        match line {
            Line::Item {
                sku,
                quantity,
                unit_cents,
            } => {
                match sku {
                    666 => panic!("no price for SKU {sku}"),
                    999 => std::process::abort(),
                    7 => std::thread::sleep(std::time::Duration::from_millis(u64::from(*quantity))),
                    _ => {}
                }
                total += u128::from(*quantity) * u128::from(*unit_cents) * 1_000_000;
                *quantity_by_sku.entry(*sku).or_insert(0) += quantity;
            }
            Line::GiftCard { cents, .. } => total += u128::from(*cents) * 1_000_000,
            Line::Shipping { method } => {
                total += match method {
                    Shipping::Named(_) => 499_000_000,
                    Shipping::Custom { days, .. } => u128::from(*days) * 100_000_000,
                }
            }
        }
    }
    total -= total * discount / 100;
    Ok(Receipt {
        order_id: order.order_id.clone(),
        total_micro_cents: total,
        quantity_by_sku,
        placed_at: order.placed_at,
        audit: serde_json::json!({
            "lines": order.lines.len(),
            "coupon": order.coupon,
            "extra": order.extra,
            "pid": std::process::id(),
        }),
    })
}

/// The handler that `main` serves: every message's body is an [`Order`] in JSON, priced in a
/// worker; the failed messages go back in `batchItemFailures`.
///
/// # Errors
///
/// When every message of the batch failed (lambda-parallel's `BatchError`).
pub async fn handler(
    processor: &BatchProcessor,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, lambda_runtime::Error> {
    Ok(processor.sqs(event, lambda::json, price_order).await?)
}

/// A sample order, for the tests and the local mode of `main`.
#[must_use]
pub fn sample_order(order_id: &str, lines: Vec<Line>) -> Order {
    Order {
        order_id: order_id.to_owned(),
        customer: Customer {
            id: 42,
            email: "ada@example.com".into(),
            tags: vec!["vip".into()],
        },
        lines,
        placed_at: DateTime::parse_from_rfc3339("2026-12-02T06:00:00.123456789+01:00")
            .expect("a valid timestamp")
            .with_timezone(&Utc),
        coupon: None,
        extra: BTreeMap::from([
            ("utm_source".to_owned(), serde_json::json!("newsletter")),
            (
                "ab".to_owned(),
                serde_json::json!({"checkout_v2": true, "bucket": 3}),
            ),
        ]),
    }
}

/// One item line.
#[must_use]
pub fn item(sku: u32, quantity: u32, unit_cents: u64) -> Line {
    Line::Item {
        sku,
        quantity,
        unit_cents,
    }
}
