//! The Lambda function: `lambda_parallel::init()` first, then the tokio runtime, then
//! `lambda_runtime::run` with the SQS handler of `lib.rs`, as the README's Lambda section shows.
//!
//! `outsider --local <ms>` instead reads one `SqsEvent` as JSON from stdin, handles it with a
//! `Context` whose deadline is `<ms>` from now, and prints the response as JSON (or the error
//! on stderr, exit code 2): how `tests/local_invoke.rs` runs the very same `main`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lambda_events::sqs::SqsEvent;
use lambda_parallel::lambda::BatchProcessor;
use lambda_parallel::Pool;
use lambda_runtime::{service_fn, Context, LambdaEvent};

fn main() -> Result<(), lambda_runtime::Error> {
    // Before any thread exists: every worker is forked from the fork server this starts.
    lambda_parallel::init()?;
    let processor =
        BatchProcessor::new(Pool::builder().workers(2).build()?).margin(Duration::from_millis(200));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let mut args = std::env::args().skip(1);
    if args.next().as_deref() == Some("--local") {
        let budget: u64 = args.next().map_or(Ok(30_000), |ms| ms.parse())?;
        let event: SqsEvent = serde_json::from_reader(std::io::stdin().lock())?;
        let mut context = Context::default();
        context.request_id = "local-invoke".into();
        let now = SystemTime::now().duration_since(UNIX_EPOCH)?;
        context.deadline = u64::try_from((now + Duration::from_millis(budget)).as_millis())?;
        let invoked = runtime.block_on(outsider::handler(
            &processor,
            LambdaEvent::new(event, context),
        ));
        match invoked {
            Ok(response) => println!("{}", serde_json::to_string(&response)?),
            Err(err) => {
                eprintln!("handler failed: {err}");
                std::process::exit(2);
            }
        }
        return Ok(());
    }
    runtime.block_on(lambda_runtime::run(service_fn(|event| {
        outsider::handler(&processor, event)
    })))
}
