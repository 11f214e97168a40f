//! The invoke interface: what a [`Fleet`](super::Fleet) needs of Lambda's Invoke API, as a
//! small trait with no AWS dependency, so that the AWS SDK stays out of this crate (the
//! `lambda-parallel-aws` adapter implements it) and tests can answer in process
//! ([`Loopback`](super::Loopback)). Caller side.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// A boxed, sendable future, as [`Invoke::invoke`] returns (a trait object cannot return
/// `impl Future`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One synchronous invocation (`InvocationType=RequestResponse`) to make.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    /// The function's name or ARN.
    pub function: String,
    /// The version or alias (`None`: `$LATEST`, or whatever `function` names).
    pub qualifier: Option<String>,
    /// The JSON payload: a fleet's envelope.
    pub payload: Vec<u8>,
    /// How long the fleet waits for the answer; an invoker may use it for its own client's
    /// timeout. The fleet gives up on the call after it either way.
    pub timeout: Duration,
}

/// What the Invoke API answered, when it answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvokeResponse {
    /// The HTTP status (`StatusCode`): 200 when the function ran.
    pub status: u16,
    /// Lambda's `X-Amz-Function-Error` (`FunctionError`): `Unhandled`, `Runtime.ExitError`,
    /// `Sandbox.Timedout`, …, when the invocation failed as a whole.
    pub function_error: Option<String>,
    /// The function's answer, or Lambda's error document (`errorType`, `errorMessage`).
    pub payload: Vec<u8>,
}

/// Why an invoke call brought back no [`InvokeResponse`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvokeError {
    /// `TooManyRequestsException` (HTTP 429): no concurrency to run the function now. Lambda's
    /// `retryAfterSeconds`, when it says one, is the least time to wait. The fleet always
    /// retries these.
    Throttled {
        /// How long Lambda asked the caller to wait.
        retry_after: Option<Duration>,
    },
    /// `RequestTooLargeException` (HTTP 413): the payload is over the synchronous limit. The
    /// fleet splits the batch, or fails a task that is too large alone.
    PayloadTooLarge,
    /// Anything else: the connection, a timeout of the client, another service error. The work
    /// may or may not have run, so the fleet retries only idempotent tasks.
    Transport(String),
}

impl fmt::Display for InvokeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvokeError::Throttled {
                retry_after: Some(after),
            } => write!(f, "throttled, retry after {after:?}"),
            InvokeError::Throttled { retry_after: None } => f.write_str("throttled"),
            InvokeError::PayloadTooLarge => f.write_str("payload too large"),
            InvokeError::Transport(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for InvokeError {}

/// Lambda's Invoke API, as a [`Fleet`](super::Fleet) uses it: one synchronous call.
///
/// Implement it on whatever client reaches Lambda (the `lambda-parallel-aws` crate does, on
/// `aws-sdk-lambda`), with the client's own retries turned off: the fleet retries, knowing which
/// failures are safe to retry.
///
/// ```
/// use lambda_parallel::fleet::{BoxFuture, Invocation, Invoke, InvokeError, InvokeResponse};
///
/// /// Answers every invocation with a function error, as a function that cannot start would.
/// struct Broken;
///
/// impl Invoke for Broken {
///     fn invoke(&self, _: Invocation) -> BoxFuture<'_, Result<InvokeResponse, InvokeError>> {
///         Box::pin(async {
///             Ok(InvokeResponse {
///                 status: 200,
///                 function_error: Some("Runtime.ExitError".into()),
///                 payload: br#"{"errorMessage":"exit status 1"}"#.to_vec(),
///             })
///         })
///     }
/// }
/// ```
pub trait Invoke: Send + Sync + 'static {
    /// Invokes `invocation.function` once with `invocation.payload`, and returns its answer.
    ///
    /// # Errors
    ///
    /// [`InvokeError`]: throttled, payload too large, or any other failure of the call.
    fn invoke(&self, invocation: Invocation) -> BoxFuture<'_, Result<InvokeResponse, InvokeError>>;
}
