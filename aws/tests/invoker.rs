//! `LambdaInvoker` against a stand-in of Lambda's Invoke API on loopback: a small HTTP/1.1
//! server that answers each request with a canned response, as Lambda would, and counts the
//! requests, so that each check sees the SDK's real request, its real parsing of the answer,
//! the errors mapped, and exactly one request a call (the SDK's retries are off).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_lambda::config::{BehaviorVersion, Credentials, Region};
use lambda_parallel::fleet::{Invocation, Invoke, InvokeError};
use lambda_parallel_aws::LambdaInvoker;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One canned answer: status, extra headers, body.
type Canned = (u16, Vec<(&'static str, &'static str)>, &'static str);

/// Serves `canned` to every request on a loopback port; returns the port and the request count.
async fn serve(canned: Canned) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("a port");
    let port = listener.local_addr().expect("its address").port();
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&requests);
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let canned = canned.clone();
            let counted = Arc::clone(&counted);
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                // The head, then as much body as it announces.
                let body_start = loop {
                    let n = socket.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    if let Some(at) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                        break at + 4;
                    }
                };
                let head = String::from_utf8_lossy(&request[..body_start]).to_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|line| line.strip_prefix("content-length:"))
                    .and_then(|value| value.trim().parse().ok())
                    .unwrap_or(0);
                while request.len() < body_start + length {
                    let n = socket.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    request.extend_from_slice(&buf[..n]);
                }
                counted.fetch_add(1, Ordering::SeqCst);
                let (status, headers, body) = canned;
                let mut answer = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
                    body.len()
                );
                for (name, value) in headers {
                    answer.extend([name, ": ", value, "\r\n"]);
                }
                answer.push_str("\r\n");
                answer.push_str(body);
                let _ = socket.write_all(answer.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (port, requests)
}

/// An SDK client with a fixed region, static test credentials and `endpoint_url` at `port`.
fn invoker(port: u16) -> LambdaInvoker {
    let config = aws_sdk_lambda::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKIDTEST", "secret", None, None, "test"))
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .http_client(
            aws_smithy_http_client::Builder::new()
                .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                    aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
                ))
                .build_https(),
        )
        .build();
    LambdaInvoker::new(&aws_sdk_lambda::Client::from_conf(config))
}

fn invocation() -> Invocation {
    Invocation {
        function: "my-function".to_owned(),
        qualifier: Some("7".to_owned()),
        payload: br#"{"lambda_parallel_fleet":1}"#.to_vec(),
        timeout: Duration::from_secs(10),
    }
}

#[tokio::test]
async fn an_answer_carries_status_function_error_and_payload() {
    let (port, requests) = serve((
        200,
        vec![("x-amz-function-error", "Unhandled")],
        r#"{"errorMessage":"boom"}"#,
    ))
    .await;
    let answer = invoker(port).invoke(invocation()).await.expect("an answer");
    assert_eq!(answer.status, 200);
    assert_eq!(answer.function_error.as_deref(), Some("Unhandled"));
    assert_eq!(answer.payload, br#"{"errorMessage":"boom"}"#);
    assert_eq!(requests.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_throttle_is_throttled_with_its_retry_after_and_not_retried_by_the_sdk() {
    let (port, requests) = serve((
        429,
        // Lambda sends `retryAfterSeconds` as the `Retry-After` header, where the SDK reads it.
        vec![
            ("x-amzn-errortype", "TooManyRequestsException"),
            ("retry-after", "2"),
        ],
        r#"{"Type":"User","message":"Rate Exceeded.","Reason":"ConcurrentInvocationLimitExceeded"}"#,
    ))
    .await;
    let err = invoker(port)
        .invoke(invocation())
        .await
        .expect_err("throttled");
    assert_eq!(
        err,
        InvokeError::Throttled {
            retry_after: Some(Duration::from_secs(2))
        }
    );
    assert_eq!(requests.load(Ordering::SeqCst), 1, "the SDK retried");
}

#[tokio::test]
async fn a_request_too_large_is_payload_too_large() {
    let (port, _) = serve((
        413,
        vec![("x-amzn-errortype", "RequestTooLargeException")],
        r#"{"Type":"User","message":"Request must be smaller than 6291456 bytes for the InvokeFunction operation"}"#,
    ))
    .await;
    let err = invoker(port)
        .invoke(invocation())
        .await
        .expect_err("too large");
    assert_eq!(err, InvokeError::PayloadTooLarge);
}

#[tokio::test]
async fn another_service_error_is_transport_once() {
    let (port, requests) = serve((
        500,
        vec![("x-amzn-errortype", "ServiceException")],
        r#"{"Type":"Service","message":"internal failure"}"#,
    ))
    .await;
    let err = invoker(port)
        .invoke(invocation())
        .await
        .expect_err("failed");
    let InvokeError::Transport(message) = err else {
        panic!("not a transport error: {err:?}");
    };
    assert!(message.contains("ServiceException"), "{message}");
    assert_eq!(requests.load(Ordering::SeqCst), 1, "the SDK retried");
}
