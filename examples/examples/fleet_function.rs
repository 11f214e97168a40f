//! A Lambda function whose every copy serves a fleet's envelopes on its own pool, and which,
//! given `{"count": N, "millis": M}`, fans `N` items (each `M` ms of work) out across the
//! other copies through the Invoke API, and answers with a summary. `.ci/fleet-e2e` runs
//! several copies against cargo-lambda's emulator and checks the summary.
//!
//! ```text
//! cargo build --features fleet-function --example fleet_function
//! ```

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use lambda_parallel::fleet::{Fleet, FleetWorker};
use lambda_parallel::{lambda_parallel, Pool};
use lambda_parallel_aws::LambdaInvoker;
use lambda_runtime::{service_fn, Error, LambdaEvent};
use serde::Deserialize;
use serde_json::{json, Value};

/// This copy's identity, drawn before `init`, so that its workers inherit it.
static COPY: OnceLock<u64> = OnceLock::new();

/// `x²`, after `millis` of work, with the copy and the worker process that computed it.
#[lambda_parallel]
fn square(x: u64, millis: u64) -> (u64, u64, u32) {
    std::thread::sleep(Duration::from_millis(millis));
    (x * x, COPY.get().copied().unwrap_or(0), std::process::id())
}

#[derive(Deserialize)]
struct Batch {
    count: u64,
    millis: u64,
    items_per_invocation: usize,
    max_in_flight: usize,
}

/// The batch across the fleet (every copy of this function), and what came back.
async fn fan_out(batch: Batch) -> Result<Value, Error> {
    let fleet = Fleet::builder(LambdaInvoker::from_env()?)
        .items_per_invocation(batch.items_per_invocation)
        .max_in_flight(batch.max_in_flight)
        .idempotent(true)
        .invocation_timeout(Duration::from_secs(10))
        .deadline(Instant::now() + Duration::from_secs(120))
        .build()?;
    let inputs = (0..batch.count).map(|x| (x, batch.millis));
    let outcomes = fleet.starmap_outcomes(square, inputs).await;
    let (mut copies, mut workers, mut failures) = (HashSet::new(), HashSet::new(), Vec::new());
    let mut in_order = true;
    for (x, outcome) in (0..).zip(&outcomes) {
        match outcome.result() {
            Ok((square, copy, pid)) => {
                in_order &= *square == x * x;
                copies.insert(*copy);
                workers.insert((*copy, *pid));
            }
            Err(err) => failures.push(format!("{x}: {:?}: {err}", err.kind())),
        }
    }
    Ok(json!({
        "items": outcomes.len(),
        "in_order": in_order,
        "failures": failures,
        "retried": outcomes.iter().filter(|o| o.attempts() > 1).count(),
        "copies": copies.len(),
        "workers": workers.len(),
        "caller": COPY.get(),
        "caller_served": copies.contains(&COPY.get().copied().unwrap_or(0)),
    }))
}

fn main() -> Result<(), Error> {
    let _ = COPY.set(RandomState::new().hash_one(std::process::id()));
    lambda_parallel::init()?;
    let worker = FleetWorker::new(Pool::builder().build()?).task(square);
    let worker = &worker;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(lambda_runtime::run(service_fn(
            |event: LambdaEvent<Value>| async move {
                let items = event.payload["items"].as_array().map(Vec::len);
                let envelope = FleetWorker::is_envelope(&event.payload);
                if envelope {
                    // `.ci/fleet-e2e` reads these to know which batch a killed copy had.
                    eprintln!("serving {} items", items.unwrap_or(0));
                }
                let answer = worker
                    .handle(event.payload, |payload| async move {
                        fan_out(serde_json::from_value(payload)?).await
                    })
                    .await;
                if envelope {
                    eprintln!("served");
                }
                answer
            },
        )))
}
