//! An SQS consumer as a Rust Lambda function: each message's JSON body is a sign-up whose
//! password is hashed (PBKDF2) in a worker process; the messages whose body does not parse, whose
//! function fails, or whose worker panics, crashes or runs out of time come back as
//! `batchItemFailures`, and each is logged. FIFO queues keep each message group in order.
//!
//! `init()` comes first in `main`, before the async runtime starts its threads; the processor
//! and its pool live for the whole execution environment. With `#[tokio::main]` (tokio's
//! `macros` feature), put it on a function that `main` calls after `init()`:
//!
//! ```text
//! fn main() -> Result<(), Error> { lambda_parallel::init()?; serve() }
//! #[tokio::main(flavor = "current_thread")]
//! async fn serve() -> Result<(), Error> { /* the body of `block_on` below */ }
//! ```
//!
//! ```text
//! cargo lambda build --release --features lambda --example sqs_consumer   # to deploy
//! .ci/lambda-e2e                  # runs it against cargo-lambda's emulator, and checks it
//! ```

use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent};
use lambda_parallel::lambda::{self, BatchProcessor};
use lambda_parallel::{lambda_parallel, Pool};
use lambda_runtime::{service_fn, Diagnostic, Error, LambdaEvent};
use serde::{Deserialize, Serialize};

/// A message's body: `{"user": "ada", "password": "hunter2", "rounds": 10000}`.
#[derive(Serialize, Deserialize)]
struct SignUp {
    user: String,
    password: String,
    rounds: u32,
}

/// The PBKDF2-HMAC-SHA256 key of the password, salted with the user name.
#[lambda_parallel]
fn hash_password(sign_up: SignUp) -> Result<[u8; 32], String> {
    match sign_up.password.as_str() {
        "" => {
            eprintln!("worker {}: an empty password", std::process::id());
            return Err(format!("{}: the password is empty", sign_up.user));
        }
        "panic" => panic!("refusing to hash the password of {}", sign_up.user),
        "crash" => std::process::abort(),
        _ => {}
    }
    let mut key = [0_u8; 32];
    let (password, salt) = (sign_up.password.as_bytes(), sign_up.user.as_bytes());
    pbkdf2::pbkdf2_hmac::<sha2::Sha256>(password, salt, sign_up.rounds, &mut key);
    Ok(key)
}

/// A batch whose every message failed is an error (`BatchError`), which Lambda shows with
/// `errorType` `lambda_parallel::lambda::BatchError`; `Diagnostic` takes the handler's other
/// errors too.
async fn handler(
    processor: &BatchProcessor,
    event: LambdaEvent<SqsEvent>,
) -> Result<SqsBatchResponse, Diagnostic> {
    Ok(processor.sqs(event, lambda::json, hash_password).await?)
}

fn main() -> Result<(), Error> {
    // Before any thread exists: workers are forked from a single-threaded server.
    lambda_parallel::init()?;
    lambda_runtime::tracing::init_default_subscriber();
    let processor = BatchProcessor::new(Pool::builder().build()?);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(lambda_runtime::run(service_fn(|event| {
        handler(&processor, event)
    })))
}
