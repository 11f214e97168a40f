//! One batch through the pool, whatever its event source: the deadline taken from the
//! invocation's `Context`, the rounds that keep each SQS FIFO message group in order and stop it
//! at its first failure, the one call into the pool, every failure logged, and the whole-batch
//! error. Runs in the caller's process; the records' functions run in the pool's workers.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use lambda_runtime::Context;

use super::record::RecordOutcome;
use crate::error::Error;
use crate::func::{TaskFn, Wire};
use crate::pool::Pool;

/// The options of a [`BatchProcessor`](super::BatchProcessor).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Settings {
    pub(crate) margin: Duration,
    pub(crate) raise_on_entire_batch_failure: bool,
    pub(crate) skip_group_on_error: bool,
}

/// A record, ready for the pool: what Lambda calls it, its FIFO message group, and the input its
/// function takes, or why none could be decoded.
pub(crate) struct Prepared<A> {
    pub(crate) id: String,
    pub(crate) group: Option<String>,
    pub(crate) input: Result<A, String>,
}

/// Why a record failed.
enum Failure {
    /// Its payload could not be decoded; it never ran.
    Decode(String),
    /// Its function returned an `Err`.
    Returned(String),
    /// Its worker panicked, crashed, exited, or ran past the deadline.
    Worker(Error),
    /// An earlier message of its FIFO group failed (the id), so it never ran.
    Skipped { group: String, after: String },
}

/// Every record of a batch failed (and the processor raises on that, as by default).
///
/// Returned as the handler's error, it makes Lambda retry the whole batch, as Powertools'
/// `BatchProcessingError` does. Each record's failure has been logged already.
///
/// It converts into [`lambda_runtime::Diagnostic`], the error a handler answers with: a handler
/// returning `Result<_, BatchError>` or `Result<_, Diagnostic>` (with `?`) reports `errorType`
/// `lambda_parallel::lambda::BatchError` and this error's message as `errorMessage`. Boxed into
/// `lambda_runtime::Error` instead, its `errorType` is the box's type name.
#[derive(Debug)]
pub struct BatchError {
    records: usize,
    first: String,
}

impl BatchError {
    /// The number of records in the batch, every one of which failed.
    #[must_use]
    pub fn records(&self) -> usize {
        self.records
    }
}

impl fmt::Display for BatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.records {
            1 => write!(f, "the batch's one record failed: {}", self.first),
            n => write!(
                f,
                "all {n} records of the batch failed (the first: {})",
                self.first
            ),
        }
    }
}

impl std::error::Error for BatchError {}

impl From<BatchError> for lambda_runtime::Diagnostic {
    fn from(err: BatchError) -> Self {
        lambda_runtime::Diagnostic {
            // The public path: the type's own name (`type_name`) goes through a private module.
            error_type: "lambda_parallel::lambda::BatchError".to_owned(),
            error_message: err.to_string(),
        }
    }
}

/// Runs every record through `f` on the pool and returns the positions of the failed ones, in
/// batch order; each failure is logged. All work is joined before this returns.
///
/// # Errors
///
/// [`BatchError`] when every record failed and the settings say to raise.
pub(crate) async fn run<F, A, R>(
    pool: &Arc<Pool>,
    settings: Settings,
    context: &Context,
    f: F,
    records: Vec<Prepared<A>>,
) -> Result<Vec<usize>, BatchError>
where
    F: TaskFn<(A,), R>,
    A: Wire,
    R: Wire + RecordOutcome,
{
    let deadline = deadline(context, settings.margin);
    let ids: Vec<String> = records.iter().map(|record| record.id.clone()).collect();
    let failures = rounds(pool, settings, deadline, f, records).await;
    let worker = std::any::type_name::<F>();
    let mut failed = Vec::new();
    for (index, failure) in failures.iter().enumerate() {
        if let Some(failure) = failure {
            log(index, &ids[index], worker, failure);
            failed.push(index);
        }
    }
    if !ids.is_empty() && failed.len() == ids.len() && settings.raise_on_entire_batch_failure {
        let first = failures.iter().flatten().next().map(reason);
        return Err(BatchError {
            records: ids.len(),
            first: first.unwrap_or_default(),
        });
    }
    Ok(failed)
}

/// The records of one FIFO message group, or a record without a group, still to run.
struct Lane {
    group: Option<String>,
    queue: VecDeque<usize>,
}

/// Each record's failure, if it failed, in batch order.
///
/// Records without a group run all at once, in one round. The messages of a FIFO group run one
/// after the other, in order, one a round, beside the other groups' messages; after a failure,
/// the rest of the group (or, unless `skip_group_on_error`, of every group) fails unrun.
async fn rounds<F, A, R>(
    pool: &Arc<Pool>,
    settings: Settings,
    deadline: Option<Instant>,
    f: F,
    records: Vec<Prepared<A>>,
) -> Vec<Option<Failure>>
where
    F: TaskFn<(A,), R>,
    A: Wire,
    R: Wire + RecordOutcome,
{
    let mut lanes = lanes(&records);
    let mut failures: Vec<Option<Failure>> = records.iter().map(|_| None).collect();
    let (ids, mut inputs): (Vec<String>, Vec<Option<Result<A, String>>>) = records
        .into_iter()
        .map(|record| (record.id, Some(record.input)))
        .unzip();
    while lanes.iter().any(|lane| !lane.queue.is_empty()) {
        let (mut indices, mut wave, mut failed) = (Vec::new(), Vec::new(), Vec::new());
        for lane in &mut lanes {
            let Some(index) = lane.queue.pop_front() else {
                continue;
            };
            match inputs[index].take() {
                Some(Ok(input)) => {
                    indices.push((index, lane.group.clone()));
                    wave.push(input);
                }
                Some(Err(why)) => {
                    failures[index] = Some(Failure::Decode(why));
                    failed.push((index, lane.group.clone()));
                }
                None => unreachable!("each record is taken from its lane once"),
            }
        }
        let outcomes = run_wave(pool, deadline, f, wave).await;
        for ((index, group), outcome) in indices.into_iter().zip(outcomes) {
            let failure = match outcome {
                Ok(value) => value.failure().map(Failure::Returned),
                Err(err) => Some(Failure::Worker(err)),
            };
            if failure.is_some() {
                failures[index] = failure;
                failed.push((index, group));
            }
        }
        for (index, group) in failed {
            let Some(group) = group else { continue };
            for lane in &mut lanes {
                let Some(lane_group) = &lane.group else {
                    continue;
                };
                if *lane_group == group || !settings.skip_group_on_error {
                    for skipped in lane.queue.drain(..) {
                        let (group, after) = (lane_group.clone(), ids[index].clone());
                        failures[skipped] = Some(Failure::Skipped { group, after });
                    }
                }
            }
        }
    }
    failures
}

/// The one call into the pool: a round of records, each one's outcome, in order, under the
/// deadline. Waiting for the pool blocks, so it runs on tokio's blocking threads.
async fn run_wave<F, A, R>(
    pool: &Arc<Pool>,
    deadline: Option<Instant>,
    f: F,
    inputs: Vec<A>,
) -> Vec<Result<R, Error>>
where
    F: TaskFn<(A,), R>,
    A: Wire,
    R: Wire,
{
    if inputs.is_empty() {
        return Vec::new();
    }
    let pool = Arc::clone(pool);
    let wave = tokio::task::spawn_blocking(move || {
        pool.set_deadline(deadline);
        let outcomes = pool.map_each(f, inputs);
        pool.set_deadline(None);
        outcomes
    });
    match wave.await {
        Ok(outcomes) => outcomes,
        Err(err) => match err.try_into_panic() {
            Ok(panic) => std::panic::resume_unwind(panic),
            // Only a runtime that is shutting down cancels a blocking task; our caller goes too.
            Err(err) => panic!("the batch's blocking task was cancelled: {err}"),
        },
    }
}

/// Each record's lane, in batch order: one for each FIFO group, and one for each record
/// without a group.
fn lanes<A>(records: &[Prepared<A>]) -> Vec<Lane> {
    let mut lanes: Vec<Lane> = Vec::new();
    for (index, record) in records.iter().enumerate() {
        let group = record.group.as_ref();
        match lanes
            .iter_mut()
            .find(|lane| group.is_some() && lane.group.as_ref() == group)
        {
            Some(lane) => lane.queue.push_back(index),
            None => lanes.push(Lane {
                group: record.group.clone(),
                queue: VecDeque::from([index]),
            }),
        }
    }
    lanes
}

/// The instant to stop the batch's work: the invocation's deadline less `margin`. None when the
/// deadline has passed already, which Lambda never sends but emulators do (`cargo lambda watch`
/// 1.9 sends 600 s after the epoch).
fn deadline(context: &Context, margin: Duration) -> Option<Instant> {
    let Ok(left) = context.deadline().duration_since(SystemTime::now()) else {
        tracing::warn!(
            deadline_ms = context.deadline,
            "the invocation's deadline has passed already; running the batch without one"
        );
        return None;
    };
    Some(Instant::now() + left.saturating_sub(margin))
}

/// One line, lowercase, for the whole-batch error.
fn reason(failure: &Failure) -> String {
    match failure {
        Failure::Decode(why) | Failure::Returned(why) => why.clone(),
        Failure::Worker(err) => err.to_string(),
        Failure::Skipped { group, after } => {
            format!("not run: message {after} of its group {group} failed first")
        }
    }
}

/// A `tracing` event for a failed record: its id and position (`task`), the function, and what
/// went wrong, with the panic's message and location, the signal or the exit code as fields.
fn log(task: usize, record_id: &str, worker: &str, failure: &Failure) {
    match failure {
        Failure::Worker(err) => tracing::warn!(
            record_id,
            task,
            worker = err.worker(),
            panic_message = err.panic_message(),
            panic_location = err.panic_location().map(tracing::field::display),
            signal = err.signal_name(),
            exit_code = err.exit_code(),
            timeout = err.is_timeout().then_some(true),
            error = %err,
            "record failed",
        ),
        Failure::Returned(why) => {
            tracing::warn!(record_id, task, worker, error = %why, "record failed");
        }
        Failure::Decode(why) => tracing::warn!(record_id, task, error = %why, "record failed"),
        Failure::Skipped { group, after } => tracing::warn!(
            record_id,
            task,
            group = %group,
            error = %reason(failure),
            after = %after,
            "record failed",
        ),
    }
}
