//! The AWS side of `lambda-parallel`'s fleets: [`LambdaInvoker`] implements
//! [`lambda_parallel::fleet::Invoke`] on the official SDK's Lambda client (`aws-sdk-lambda`),
//! with the SDK's own retries turned off, since the fleet retries and knows which failures are
//! safe to retry, and the SDK's errors mapped to what the fleet tells apart: a throttle
//! (`TooManyRequestsException`, with its `retryAfterSeconds`), a payload too large
//! (`RequestTooLargeException`), and everything else.
//!
//! A crate of its own because the SDK declares a newer Rust (1.94) than `lambda-parallel`
//! (1.85), and brings about a hundred crates that the core does without.
//!
//! ```no_run
//! // no_run: it would invoke a real function, with this environment's credentials.
//! use lambda_parallel::fleet::{Fleet, RetryPolicy};
//! use lambda_parallel::lambda_parallel;
//! use lambda_parallel_aws::LambdaInvoker;
//!
//! #[lambda_parallel]
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // On Lambda: the region and the role's credentials from the environment; the function
//! // invoked is this one, at this version.
//! let fleet = Fleet::builder(LambdaInvoker::from_env()?)
//!     .max_in_flight(50)
//!     .retry(RetryPolicy::default())
//!     .build()?;
//! let squares = fleet.map_each(square, 0..10_000).await;
//! # Ok(())
//! # }
//! ```
//!
//! # HTTP and TLS
//!
//! The SDK's default features are off: its default HTTPS client uses rustls on `aws-lc`, whose
//! build needs cmake. This crate gives the client hyper 1 and rustls on `ring` instead
//! (`aws-smithy-http-client`'s `rustls-ring`), the lightest TLS stack the SDK offers. A client
//! built elsewhere ([`LambdaInvoker::new`]) keeps its own HTTP client.

use std::fmt;
use std::time::Duration;

use aws_sdk_lambda::config::retry::RetryConfig;
use aws_sdk_lambda::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_lambda::error::{DisplayErrorContext, SdkError};
use aws_sdk_lambda::operation::invoke::InvokeError as SdkInvokeError;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};
use lambda_parallel::fleet::{BoxFuture, Invocation, Invoke, InvokeError, InvokeResponse};

/// A fleet's invoker on `aws-sdk-lambda`: each invocation is one synchronous `Invoke`
/// (`RequestResponse`), never retried by the SDK.
#[derive(Clone)]
pub struct LambdaInvoker {
    client: aws_sdk_lambda::Client,
}

impl fmt::Debug for LambdaInvoker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LambdaInvoker")
            .field("region", &self.client.config().region())
            .finish_non_exhaustive()
    }
}

/// The environment lacks what [`LambdaInvoker::from_env`] needs: the message says which
/// variable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvError(String);

impl fmt::Display for EnvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for EnvError {}

impl LambdaInvoker {
    /// An invoker on `client`'s configuration, with its retries turned off (the SDK's retries
    /// would hide throttles from the fleet, and retry work that may have run).
    #[must_use]
    pub fn new(client: &aws_sdk_lambda::Client) -> Self {
        let config = client
            .config()
            .to_builder()
            .retry_config(RetryConfig::disabled())
            .build();
        LambdaInvoker {
            client: aws_sdk_lambda::Client::from_conf(config),
        }
    }

    /// An invoker configured from the environment as Lambda sets it, with no credential
    /// chain to load (no `aws-config`): the region from `AWS_REGION` (or
    /// `AWS_DEFAULT_REGION`), the credentials from `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`, and an endpoint from
    /// `AWS_ENDPOINT_URL_LAMBDA` (or `AWS_ENDPOINT_URL`) when one is set, as for an emulator.
    /// Elsewhere, build the client with `aws-config` and use [`new`](LambdaInvoker::new).
    ///
    /// # Errors
    ///
    /// [`EnvError`] when the region or a key is missing.
    pub fn from_env() -> Result<Self, EnvError> {
        let var = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
        let region = var("AWS_REGION")
            .or_else(|| var("AWS_DEFAULT_REGION"))
            .ok_or_else(|| EnvError("no region: set `AWS_REGION`".to_owned()))?;
        let key = |name: &str| var(name).ok_or_else(|| EnvError(format!("`{name}` is not set")));
        let credentials = Credentials::new(
            key("AWS_ACCESS_KEY_ID")?,
            key("AWS_SECRET_ACCESS_KEY")?,
            var("AWS_SESSION_TOKEN"),
            None,
            "environment",
        );
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
            .build_https();
        let mut config = aws_sdk_lambda::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new(region))
            .credentials_provider(credentials)
            .http_client(http)
            .retry_config(RetryConfig::disabled());
        if let Some(endpoint) = var("AWS_ENDPOINT_URL_LAMBDA").or_else(|| var("AWS_ENDPOINT_URL")) {
            config = config.endpoint_url(endpoint);
        }
        Ok(LambdaInvoker {
            client: aws_sdk_lambda::Client::from_conf(config.build()),
        })
    }

    /// The client the invocations go through.
    #[must_use]
    pub fn client(&self) -> &aws_sdk_lambda::Client {
        &self.client
    }
}

impl Invoke for LambdaInvoker {
    fn invoke(&self, invocation: Invocation) -> BoxFuture<'_, Result<InvokeResponse, InvokeError>> {
        Box::pin(async move {
            let output = self
                .client
                .invoke()
                .function_name(invocation.function)
                .set_qualifier(invocation.qualifier)
                .invocation_type(InvocationType::RequestResponse)
                .payload(Blob::new(invocation.payload))
                .send()
                .await
                .map_err(|err| map_error(&err))?;
            Ok(InvokeResponse {
                status: u16::try_from(output.status_code()).unwrap_or(0),
                function_error: output.function_error().map(str::to_owned),
                payload: output.payload.map(Blob::into_inner).unwrap_or_default(),
            })
        })
    }
}

/// The SDK's error as the fleet tells failures apart.
fn map_error<R: fmt::Debug>(err: &SdkError<SdkInvokeError, R>) -> InvokeError {
    if let SdkError::ServiceError(context) = err {
        match context.err() {
            SdkInvokeError::TooManyRequestsException(throttle) => {
                return InvokeError::Throttled {
                    retry_after: throttle.retry_after_seconds().and_then(parse_seconds),
                };
            }
            SdkInvokeError::RequestTooLargeException(_)
            | SdkInvokeError::SerializedRequestEntityTooLargeException(_) => {
                return InvokeError::PayloadTooLarge;
            }
            _ => {}
        }
    }
    InvokeError::Transport(DisplayErrorContext(err).to_string())
}

/// `retryAfterSeconds`, a string of whole (or fractional) seconds.
fn parse_seconds(text: &str) -> Option<Duration> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|seconds| seconds.is_finite() && *seconds >= 0.0)
        .map(Duration::from_secs_f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_whole_and_fractional_seconds() {
        assert_eq!(parse_seconds("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_seconds(" 0.5 "), Some(Duration::from_millis(500)));
        assert_eq!(parse_seconds("soon"), None);
        assert_eq!(parse_seconds("-1"), None);
    }
}
