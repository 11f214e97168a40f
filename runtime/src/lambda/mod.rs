//! Lambda batch processing (the `lambda` feature): SQS, Kinesis and DynamoDB stream events
//! through a [`Pool`], each record in a worker process, answered with the partial batch
//! response that makes Lambda retry only the failed records. [`BatchProcessor`] here, each
//! event source's records and the decoders in `record.rs`, the batch itself in `batch.rs`. All
//! of it runs in the caller's process and uses the pool only through its public API.
//!
//! ```no_run
//! // no_run: `lambda_runtime::run` polls a Lambda Runtime API, which a doctest has not.
//! use aws_lambda_events::sqs::SqsEvent;
//! use lambda_parallel::lambda::{self, BatchProcessor};
//! use lambda_parallel::{lambda_parallel, Pool};
//! use lambda_runtime::{service_fn, LambdaEvent};
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize)]
//! struct Order {
//!     id: u64,
//!     quantity: u32,
//! }
//!
//! #[lambda_parallel]
//! fn process_order(order: Order) -> Result<(), String> {
//!     if order.quantity == 0 {
//!         return Err(format!("order {} is empty", order.id));
//!     }
//!     Ok(())
//! }
//!
//! fn main() -> Result<(), lambda_runtime::Error> {
//!     lambda_parallel::init()?;
//!     let processor = BatchProcessor::new(Pool::builder().build()?);
//!     let processor = &processor;
//!     tokio::runtime::Builder::new_current_thread()
//!         .enable_all()
//!         .build()?
//!         .block_on(lambda_runtime::run(service_fn(
//!             // The all-failed `BatchError` is a `lambda_runtime::Diagnostic` too.
//!             |event: LambdaEvent<SqsEvent>| async move {
//!                 processor.sqs(event, lambda::json, process_order).await
//!             },
//!         )))
//! }
//! ```
//!
//! | Powertools (batch utility) | lambda-parallel |
//! |---|---|
//! | `BatchProcessor(EventType.SQS)`, `process_partial_response` | [`BatchProcessor::sqs`] |
//! | `BatchProcessor(EventType.KinesisDataStreams)` | [`BatchProcessor::kinesis`] |
//! | `BatchProcessor(EventType.DynamoDBStreams)` | [`BatchProcessor::dynamodb`] |
//! | `AsyncBatchProcessor`, `async_process_partial_response` | the same calls: each awaits the pool on tokio's reactor |
//! | `SqsFifoPartialProcessor` | [`BatchProcessor::sqs`] on a queue whose ARN ends in `.fifo` |
//! | `skip_group_on_error` | [`BatchProcessor::skip_group_on_error`] (default `true`) |
//! | `raise_on_entire_batch_failure` | [`BatchProcessor::raise_on_entire_batch_failure`] |
//! | `BatchProcessingError` | [`BatchError`], a [`lambda_runtime::Diagnostic`] |
//! | the record handler | a [`TaskFn`] (a `#[lambda_parallel]` function), run in a worker |
//! | `model=` (Pydantic parsing of the body) | the decoder: [`json`], [`body`], [`bytes`], or a closure |
//! | `context.get_remaining_time_in_millis()` | [`BatchProcessor::margin`]: late records fail, their workers killed |

mod batch;
mod record;

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::dynamodb::{self, EventRecord};
use aws_lambda_events::kinesis::{KinesisEvent, KinesisEventRecord};
use aws_lambda_events::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use aws_lambda_events::streams::{
    DynamoDbBatchItemFailure, DynamoDbEventResponse, KinesisEventResponse,
};
use lambda_runtime::{Context, LambdaEvent};

/// The event types this module takes and returns come from these crates: name them through
/// here (`lambda_parallel::lambda::aws_lambda_events::sqs::SqsEvent`), or depend on the same
/// major versions yourself (`aws_lambda_events` 1, `lambda_runtime` 1), so that they match.
pub use {aws_lambda_events, lambda_runtime};

pub use self::batch::BatchError;
use self::batch::{Prepared, Settings};
pub use self::record::{body, bytes, json, DecodeError, HasBody, Record, RecordOutcome};
use crate::func::{TaskFn, Wire};
use crate::pool::Pool;

/// Processes Lambda batch events on a pool of worker processes, one record a task, and returns
/// the partial batch response (`batchItemFailures`) that names the records to retry.
///
/// Each call takes the event, a *decoder*, which turns each record into the input of the
/// function in the parent process ([`json`], [`body`], [`bytes`], or a closure), and the
/// function, which runs in a worker. A record fails when it cannot be decoded (it then never
/// runs), when its function returns an `Err`, or when its worker panics, crashes, exits or is
/// still running at the deadline; every failure is logged as a `tracing` event at `WARN`
/// (`record failed`, with `record_id`, `task`, `worker`, and the panic's message and location,
/// the signal or the exit code). A worker's own stderr goes to the function's log as it is.
///
/// The deadline is the invocation's ([`lambda_runtime::Context::deadline`]) less a
/// [margin](BatchProcessor::margin): records still running then are killed and fail, so that
/// the response goes out before Lambda's own timeout. Every call joins all of its work before it
/// returns, since Lambda freezes the environment once the handler has answered.
///
/// Build one in `main`, after [`init`](crate::init), and keep it for every invocation: it owns
/// the pool, whose workers survive warm invocations. Cloning it is cheap and shares the pool.
/// The pool's deadline is its own for the length of a call, so two calls at once on one
/// processor (Lambda's multi-concurrency) are served one after the other.
///
/// The calls wait for the pool on tokio's reactor, with no thread blocked. Dropping a call's
/// future before it is done (Lambda's runtime never does; a timeout around it would) cancels
/// its records not yet started and lifts its deadline, so the records already running finish
/// unkilled, as with any awaited pool call.
#[derive(Clone, Debug)]
pub struct BatchProcessor {
    runner: batch::Runner,
    /// Held for the length of a call: the pool's deadline is that call's alone.
    calls: Arc<tokio::sync::Mutex<()>>,
    settings: Settings,
}

impl BatchProcessor {
    /// A processor on `pool`, with a margin of 500 ms, raising on a batch whose records all
    /// failed, and skipping only the failed message's group of an SQS FIFO batch.
    #[must_use]
    pub fn new(pool: Pool) -> Self {
        BatchProcessor::on(batch::Runner::Pool(pool))
    }

    /// A processor whose records run across a [`Fleet`](crate::fleet::Fleet) of invocations
    /// rather than on this environment's pool (the `fleet` feature), with the same defaults as
    /// [`new`](BatchProcessor::new): each record's outcome comes back as a pool's would, and
    /// the invocation's deadline, less the margin, bounds the fleet's call.
    #[cfg(feature = "fleet")]
    #[must_use]
    pub fn with_fleet(fleet: crate::fleet::Fleet) -> Self {
        BatchProcessor::on(batch::Runner::Fleet(fleet))
    }

    fn on(runner: batch::Runner) -> Self {
        BatchProcessor {
            runner,
            calls: Arc::default(),
            settings: Settings {
                margin: Duration::from_millis(500),
                raise_on_entire_batch_failure: true,
                skip_group_on_error: true,
            },
        }
    }

    /// The time kept back from the invocation's deadline, to kill late workers and send the
    /// response (default 500 ms).
    #[must_use]
    pub fn margin(mut self, margin: Duration) -> Self {
        self.settings.margin = margin;
        self
    }

    /// Whether a batch whose every record failed is an error ([`BatchError`]) rather than a
    /// response listing them all, as Powertools does by default (default `true`). Either way
    /// Lambda retries every record; the error also counts towards the function's errors.
    #[must_use]
    pub fn raise_on_entire_batch_failure(mut self, raise: bool) -> Self {
        self.settings.raise_on_entire_batch_failure = raise;
        self
    }

    /// For SQS FIFO queues: after a message fails, whether only the rest of its message group
    /// fails unrun (`true`, the default), or the rest of every group (`false`, Powertools'
    /// default for `SqsFifoPartialProcessor`). Other event sources have no groups.
    #[must_use]
    pub fn skip_group_on_error(mut self, skip: bool) -> Self {
        self.settings.skip_group_on_error = skip;
        self
    }

    /// The pool the records run on; `None` for a processor on a fleet.
    #[must_use]
    pub fn pool(&self) -> Option<&Pool> {
        match &self.runner {
            batch::Runner::Pool(pool) => Some(pool),
            #[cfg(feature = "fleet")]
            batch::Runner::Fleet(_) => None,
        }
    }

    /// Processes an SQS batch, each message's input decoded by `decode` and run through `f`;
    /// the failed messages' ids are the response's `batchItemFailures`.
    ///
    /// A queue whose ARN ends in `.fifo` keeps its order: the messages of a group run one after
    /// the other (groups side by side), and after a failure the rest of the group fails without
    /// running (see [`skip_group_on_error`](BatchProcessor::skip_group_on_error)).
    ///
    /// # Errors
    ///
    /// [`BatchError`] when every message failed, unless
    /// [`raise_on_entire_batch_failure(false)`](BatchProcessor::raise_on_entire_batch_failure).
    pub async fn sqs<D, A, E, F, R>(
        &self,
        event: LambdaEvent<SqsEvent>,
        decode: D,
        f: F,
    ) -> Result<SqsBatchResponse, BatchError>
    where
        D: FnMut(&SqsMessage) -> Result<A, E>,
        E: std::fmt::Display,
        F: TaskFn<(A,), R>,
        A: Wire,
        R: Wire + RecordOutcome,
    {
        let group = |message: &SqsMessage| record::fifo_group(message).map(str::to_owned);
        let (records, context) = (event.payload.records, event.context);
        let prepared = prepare(&records, decode, group);
        let failed = self.run(&context, f, prepared).await?;
        let mut response = SqsBatchResponse::default();
        for index in failed {
            response.add_failure(records[index].item_identifier());
        }
        Ok(response)
    }

    /// Processes a Kinesis batch, each record's input decoded by `decode` (from its data,
    /// base64-decoded already) and run through `f`. The response names the first failed record
    /// in batch order, Lambda's checkpoint: it and every record after it are sent again.
    ///
    /// # Errors
    ///
    /// As [`sqs`](BatchProcessor::sqs).
    pub async fn kinesis<D, A, E, F, R>(
        &self,
        event: LambdaEvent<KinesisEvent>,
        decode: D,
        f: F,
    ) -> Result<KinesisEventResponse, BatchError>
    where
        D: FnMut(&KinesisEventRecord) -> Result<A, E>,
        E: std::fmt::Display,
        F: TaskFn<(A,), R>,
        A: Wire,
        R: Wire + RecordOutcome,
    {
        let (records, context) = (event.payload.records, event.context);
        let prepared = prepare(&records, decode, |_| None);
        let failed = self.run(&context, f, prepared).await?;
        let mut response = KinesisEventResponse::default();
        if let Some(&first) = failed.first() {
            response.add_failure(records[first].item_identifier());
        }
        Ok(response)
    }

    /// Processes a DynamoDB stream batch, each record's input decoded by `decode` (from its
    /// keys and images, say) and run through `f`. The response names the first failed record
    /// by its sequence number, the checkpoint, as [`kinesis`](BatchProcessor::kinesis) does.
    ///
    /// # Errors
    ///
    /// As [`sqs`](BatchProcessor::sqs).
    pub async fn dynamodb<D, A, E, F, R>(
        &self,
        event: LambdaEvent<dynamodb::Event>,
        decode: D,
        f: F,
    ) -> Result<DynamoDbEventResponse, BatchError>
    where
        D: FnMut(&EventRecord) -> Result<A, E>,
        E: std::fmt::Display,
        F: TaskFn<(A,), R>,
        A: Wire,
        R: Wire + RecordOutcome,
    {
        let (records, context) = (event.payload.records, event.context);
        let prepared = prepare(&records, decode, |_| None);
        let failed = self.run(&context, f, prepared).await?;
        let mut response = DynamoDbEventResponse::default();
        if let Some(&first) = failed.first() {
            // `#[non_exhaustive]`, and without the `add_failure` of the other two responses.
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = Some(records[first].item_identifier().to_owned());
            response.batch_item_failures.push(failure);
        }
        Ok(response)
    }
}

impl BatchProcessor {
    /// One batch, its records prepared, one call at a time: see [`batch::run`].
    async fn run<F, A, R>(
        &self,
        context: &Context,
        f: F,
        records: Vec<Prepared<A>>,
    ) -> Result<Vec<usize>, BatchError>
    where
        F: TaskFn<(A,), R>,
        A: Wire,
        R: Wire + RecordOutcome,
    {
        batch::run(
            &self.runner,
            &self.calls,
            self.settings,
            context,
            f,
            records,
        )
        .await
    }
}

/// Each record's identifier, group and decoded input, in the caller's process.
fn prepare<T: Record, A, E: std::fmt::Display>(
    records: &[T],
    mut decode: impl FnMut(&T) -> Result<A, E>,
    group: impl Fn(&T) -> Option<String>,
) -> Vec<Prepared<A>> {
    let prepare = |record: &T| Prepared {
        id: record.item_identifier().to_owned(),
        group: group(record),
        input: decode(record).map_err(|err| err.to_string()),
    };
    records.iter().map(prepare).collect()
}
