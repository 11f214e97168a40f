//! One batch through the pool, whatever its event source: the deadline taken from the
//! invocation's `Context`, the rounds that keep each SQS FIFO message group in order and stop it
//! at its first failure, the one call into the pool, every failure logged, and the whole-batch
//! error. Runs in the caller's process; the records' functions run in the pool's workers.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant, SystemTime};

use lambda_runtime::Context;

use super::record::RecordOutcome;
use crate::error::{Error, ErrorKind};
use crate::func::{self, TaskFn, Wire};
use crate::pool::Pool;
use crate::wire::batch;

/// Where a processor's records run: a pool here, or a fleet of invocations (the `fleet`
/// feature), whose outcomes are the same.
#[derive(Clone)]
pub(crate) enum Runner {
    Pool(Pool),
    #[cfg(feature = "fleet")]
    Fleet(crate::fleet::Fleet),
}

impl fmt::Debug for Runner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Runner::Pool(pool) => f.debug_tuple("Pool").field(pool).finish(),
            #[cfg(feature = "fleet")]
            Runner::Fleet(_) => f.write_str("Fleet"),
        }
    }
}

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
    /// The pool refused its round (why), so it never ran.
    NotRun(String),
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
    runner: &Runner,
    calls: &tokio::sync::Mutex<()>,
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
    let ids: Vec<String> = records.iter().map(|record| record.id.clone()).collect();
    let failures = {
        // Another call's deadline would be lifted, or moved, under this one's records.
        let _alone = calls.lock().await;
        let deadline = deadline(context, settings.margin);
        rounds(runner, settings, deadline, f, records).await
    };
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
    runner: &Runner,
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
        let outcomes = run_wave(runner, deadline, f, wave).await;
        for ((index, group), outcome) in indices.into_iter().zip(outcomes) {
            let failure = match outcome {
                Ok(value) => value.failure().map(Failure::Returned),
                Err(failure) => Some(failure),
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
/// deadline, awaited on tokio's reactor (no thread blocks).
///
/// `map_async` refuses a whole call when one input cannot be encoded, so each input is first
/// encoded here, with its function's codec, as the pool would: one that cannot be is that
/// record's failure alone, and the others go to the pool. That encodes each input twice, which
/// is cheap beside an invocation (Lambda's payloads are 6 MB at most). Should the pool still
/// refuse the round (it was closed), its records fail unrun.
async fn run_wave<F, A, R>(
    runner: &Runner,
    deadline: Option<Instant>,
    f: F,
    inputs: Vec<A>,
) -> Vec<Result<R, Failure>>
where
    F: TaskFn<(A,), R>,
    A: Wire,
    R: Wire,
{
    let (name, codec) = (func::name::<F>(), func::codec::<F, (A,), R>());
    let mut outcomes: Vec<Option<Result<R, Failure>>> = Vec::with_capacity(inputs.len());
    let (mut sent, mut positions) = (Vec::new(), Vec::new());
    let mut scratch = Vec::new();
    for (index, input) in inputs.into_iter().enumerate() {
        scratch.clear();
        let args = (input,);
        match batch::append_args(codec, &args, &mut scratch) {
            Ok(()) => {
                sent.push(args.0);
                positions.push(index);
                outcomes.push(None);
            }
            Err(err) => {
                let err = Error::new(name, ErrorKind::EncodeArgs(err.to_string()));
                outcomes.push(Some(Err(Failure::Worker(err.with_task(index)))));
            }
        }
    }
    if !sent.is_empty() {
        match runner {
            Runner::Pool(pool) => {
                let _deadline = Deadline::set(pool, deadline);
                match pool.map_async(f, sent) {
                    Ok(call) => {
                        for (index, outcome) in positions.into_iter().zip(call.each().await) {
                            outcomes[index] = Some(outcome.map_err(Failure::Worker));
                        }
                    }
                    Err(err) => {
                        let why = format!("not run: the pool refused the round: {err}");
                        for index in positions {
                            outcomes[index] = Some(Err(Failure::NotRun(why.clone())));
                        }
                    }
                }
            }
            #[cfg(feature = "fleet")]
            Runner::Fleet(fleet) => {
                // The fleet's own deadline bounds every invocation; what it has not sent by
                // then fails as not attempted.
                let done = match deadline {
                    Some(deadline) => fleet.with_deadline(deadline).map_each(f, sent).await,
                    None => fleet.map_each(f, sent).await,
                };
                for (index, outcome) in positions.into_iter().zip(done) {
                    outcomes[index] = Some(outcome.map_err(Failure::Worker));
                }
            }
        }
    }
    let every = |outcome: Option<_>| outcome.unwrap_or_else(|| unreachable!("one each"));
    outcomes.into_iter().map(every).collect()
}

/// The pool's deadline for the length of a round: lifted when the round ends, or when its
/// future is dropped.
struct Deadline<'a>(&'a Pool);

impl<'a> Deadline<'a> {
    fn set(pool: &'a Pool, deadline: Option<Instant>) -> Self {
        pool.set_deadline(deadline);
        Deadline(pool)
    }
}

impl Drop for Deadline<'_> {
    fn drop(&mut self) {
        self.0.set_deadline(None);
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
        Failure::Decode(why) | Failure::Returned(why) | Failure::NotRun(why) => why.clone(),
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
        Failure::Returned(why) | Failure::NotRun(why) => {
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
