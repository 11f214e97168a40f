//! An AWS Lambda function that hashes a batch of passwords on a pool of worker processes and
//! reports the items whose worker panicked, crashed or ran out of time as `batchItemFailures`,
//! while the other items succeed.
//!
//! The shape to copy: `lambda_parallel::init()` first thing in `main`, before the async runtime
//! starts its threads, so that workers are forked from a single-threaded server; one `Pool` for
//! the life of the execution environment (it survives warm invocations); a deadline for each
//! invocation from its `Context`, less a margin; `starmap_each` for every item's own outcome; and
//! all work joined before the handler returns, since Lambda freezes the environment afterwards.
//!
//! Event: `{"items": [{"id": "a", "password": "hunter2", "rounds": 10000}, ...]}`.
//! Response: `{"results": [{"id": "a", "hash": "<hex>"}, {"id": "b", "error": "..."}],
//! "batchItemFailures": [{"itemIdentifier": "b"}]}`. The hash is PBKDF2-HMAC-SHA256 salted with
//! `lambda-parallel/<id>`, in hex; the passwords `panic` and `crash` make their worker fail.
//!
//! ```text
//! .ci/lambda-e2e                  # all of the below, with checks of every answer
//! pip install cargo-lambda        # the Runtime API emulator, `invoke` and `build`
//! cargo lambda build --release --example lambda_handler  # to deploy (cross-compiles with zig)
//! cargo build --release --example lambda_handler
//! # `watch` wants a package with a binary, even with --only-lambda-apis: give it an empty one.
//! (cd "$(mktemp -d)" && cargo init -q --name emulator &&
//!     cargo lambda watch --only-lambda-apis --invoke-address 127.0.0.1 --invoke-port 9000) &
//! ../shared/tools/lambda-sandbox --memory 512 --runtime-api http://127.0.0.1:9000/.rt \
//!     -- target/release/examples/lambda_handler &
//! cargo lambda invoke --invoke-address 127.0.0.1 --invoke-port 9000 \
//!     --data-ascii '{"items": [{"id": "a", "password": "panic", "rounds": 1}]}'
//! ```

use std::fmt::Write as _;
use std::time::{Duration, Instant, SystemTime};

use lambda_parallel::{lambda_parallel, Pool};
use lambda_runtime::{service_fn, LambdaEvent};
use serde::{Deserialize, Serialize};

/// Time kept back from the invocation's deadline to kill late workers and send the response.
const MARGIN: Duration = Duration::from_millis(500);

#[derive(Deserialize)]
struct Batch {
    items: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    id: String,
    password: String,
    rounds: u32,
}

/// Every item's outcome, in order, and the failed ones again in Lambda's partial-batch shape.
#[derive(Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Response {
    results: Vec<ItemResult>,
    batch_item_failures: Vec<ItemFailure>,
}

#[derive(Serialize)]
struct ItemResult {
    id: String,
    #[serde(flatten)]
    outcome: Outcome,
}

/// Serialized as `"hash": "..."` or `"error": "..."` next to the item's id.
#[derive(Serialize)]
#[serde(rename_all = "lowercase")]
enum Outcome {
    Hash(String),
    Error(String),
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ItemFailure {
    item_identifier: String,
}

/// Derives a 32-byte PBKDF2-HMAC-SHA256 key from `password`, as lowercase hex.
#[lambda_parallel]
fn hash_password(password: String, salt: String, rounds: u32) -> String {
    match password.as_str() {
        "panic" => panic!("refusing to hash {password:?}"),
        "crash" => std::process::abort(),
        _ => {}
    }
    let mut key = [0_u8; 32];
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password.as_bytes(), salt.as_bytes(), rounds, &mut key);
    key.iter().fold(String::with_capacity(64), |mut hex, byte| {
        let _ = write!(hex, "{byte:02x}");
        hex
    })
}

/// Hashes every item on the pool and awaits them all: each item's outcome, in order.
async fn hash_all(
    pool: &Pool,
    items: Vec<Item>,
    deadline: Instant,
) -> Result<Response, lambda_parallel::Error> {
    pool.set_deadline(Some(deadline));
    let inputs = items.iter().map(|item| {
        let salt = format!("lambda-parallel/{}", item.id);
        (item.password.clone(), salt, item.rounds)
    });
    // Awaited on the reactor: no thread waits while the workers hash.
    let outcomes = pool.starmap_async(hash_password, inputs)?.each().await;
    pool.set_deadline(None);
    let mut response = Response::default();
    for (item, outcome) in items.into_iter().zip(outcomes) {
        let outcome = match outcome {
            Ok(hash) => Outcome::Hash(hash),
            Err(err) => {
                let item_identifier = item.id.clone();
                response
                    .batch_item_failures
                    .push(ItemFailure { item_identifier });
                Outcome::Error(err.to_string())
            }
        };
        response.results.push(ItemResult {
            id: item.id,
            outcome,
        });
    }
    Ok(response)
}

async fn handler(pool: Pool, event: LambdaEvent<Batch>) -> Result<Response, lambda_runtime::Error> {
    // Lambda sends the deadline as a wall-clock time; `cargo lambda watch` 1.9 sends one that is
    // long past (600000 ms after the epoch), so treat a past deadline as Lambda's longest timeout.
    let left = event.context.deadline().duration_since(SystemTime::now());
    let left = left.unwrap_or(Duration::from_secs(900));
    let deadline = Instant::now() + left.saturating_sub(MARGIN);
    let items = event.payload.items;
    Ok(hash_all(&pool, items, deadline).await?)
}

fn main() -> Result<(), lambda_runtime::Error> {
    // Before the runtime starts any thread: workers are forked from a single-threaded server.
    lambda_parallel::init()?;
    // One worker per CPU, kept for every invocation this environment serves.
    // A `Pool` is a handle: each invocation gets a clone of it.
    let pool = Pool::builder().build()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(lambda_runtime::run(service_fn(move |event| {
        handler(pool.clone(), event)
    })))
}
