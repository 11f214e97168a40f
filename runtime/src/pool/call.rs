//! How a call runs: its inputs encoded into batches for the engine, its outcomes decoded.

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::time::Instant;

use super::core::Core;
use super::handles::MapResult;
use super::job::{Batch, JobId, Outcome};
use super::Pool;
use crate::error::ErrorKind;
use crate::outcome;
use crate::task::{self, Entry, TaskFn};
use crate::{Error, Wire};

/// The most argument bytes one batch carries: larger tasks go one to a batch, and the memory a
/// pool holds for queued work stays in proportion to its workers rather than to its input.
const BATCH_BYTES: usize = 1 << 20;

/// The largest automatic batch, in tasks.
const MAX_AUTO_CHUNK: usize = 1 << 14;

impl Pool {
    fn chunk_for(&self, workers: usize, hint: (usize, Option<usize>)) -> usize {
        if let Some(chunk) = self.chunk_size {
            return chunk;
        }
        let known = hint.1.unwrap_or(hint.0);
        if known == 0 {
            return 1;
        }
        known.div_ceil(4 * workers.max(1)).clamp(1, MAX_AUTO_CHUNK)
    }

    /// Runs every input to an outcome, stopping early (after the running tasks) on the first
    /// failure if `fail_fast`: then the result holds only that failure.
    pub(super) fn run<F, Args, R>(
        &self,
        inputs: impl Iterator<Item = Args>,
        fail_fast: bool,
    ) -> Vec<Result<R, Error>>
    where
        F: TaskFn<Args, R>,
        Args: Wire,
        R: Wire,
    {
        let name = name::<F>();
        let mut core = self.lock();
        if core.is_closed() {
            drop(core);
            return closed_outcomes(name, inputs, fail_fast);
        }
        let job = core.new_job(false);
        let hint = inputs.size_hint();
        let chunk = self.chunk_for(core.settings().workers, hint);
        let mut feed = Feed::new(job, task::entry::<F, Args, R>(), chunk, inputs);
        // Room for every result at once (growing by doubling would copy them, and fault in
        // fresh pages, several times over); a hint beyond reason is not taken at its word.
        let mut results: Vec<Option<Result<R, Error>>> = Vec::with_capacity(hint.0.min(1 << 20));
        let mut arrived = VecDeque::new();
        let mut first_failure: Option<usize> = None;
        loop {
            while (!fail_fast || first_failure.is_none())
                && core.wants_more()
                && feed.feed(&mut core)
            {}
            core.take_arrived(job, &mut arrived);
            for (index, outcome) in arrived.drain(..) {
                let result = decode(name, index, outcome);
                if result.is_err() && first_failure.is_none_or(|first| index < first) {
                    first_failure = Some(index);
                }
                if results.len() <= index {
                    results.resize_with(index + 1, || None);
                }
                results[index] = Some(result);
            }
            if fail_fast && first_failure.is_some() {
                // Start nothing more; what runs finishes, so that no work goes on behind the
                // caller's back.
                feed.stop();
                core.drop_queued(job);
            }
            if feed.is_done() && core.outstanding(job) == 0 {
                break;
            }
            core.drive(None);
        }
        core.cancel(job, false);
        drop(core);
        match first_failure {
            Some(index) if fail_fast => match results.swap_remove(index) {
                Some(err) => vec![err],
                None => unreachable!("the failure was recorded"),
            },
            _ => results.into_iter().flatten().collect(),
        }
    }

    pub(super) fn submit_all<F, Args, R>(
        &self,
        inputs: impl Iterator<Item = Args>,
    ) -> Result<MapResult<'_, R>, Error>
    where
        F: TaskFn<Args, R>,
        Args: Wire,
        R: Wire,
    {
        let name = name::<F>();
        let mut core = self.lock();
        if core.is_closed() {
            return Err(Error::new(name, ErrorKind::Closed));
        }
        let job = core.new_job(false);
        let chunk = self.chunk_for(core.settings().workers, inputs.size_hint());
        let mut feed = Feed::new(job, task::entry::<F, Args, R>(), chunk, inputs);
        while feed.feed(&mut core) {}
        if let Some(index) = feed.encode_failure {
            core.cancel(job, false);
            let kind = ErrorKind::EncodeArgs(feed.encode_message.unwrap_or_default());
            return Err(Error::new(name, kind).with_task(index));
        }
        // Hand the tasks to idle workers now, so that they run while the caller goes on.
        core.drive(Some(Instant::now()));
        let len = feed.next;
        drop(core);
        Ok(MapResult {
            pool: self,
            job,
            name,
            results: Vec::new(),
            len,
            _output: PhantomData,
        })
    }
}

/// What a call on a closed pool gives: its one failure if `fail_fast`, else one per input.
fn closed_outcomes<R>(
    name: &'static str,
    inputs: impl Iterator,
    fail_fast: bool,
) -> Vec<Result<R, Error>> {
    let closed = || Error::new(name, ErrorKind::Closed);
    if fail_fast {
        return vec![Err(closed())];
    }
    // One outcome per input, as `map_each` promises.
    (0..inputs.count())
        .map(|index| Err(closed().with_task(index)))
        .collect()
}

/// The name errors give a task's function.
pub(super) fn name<F>() -> &'static str {
    std::any::type_name::<F>()
}

/// A task's result, or why there is none.
pub(super) fn decode<R: Wire>(
    name: &'static str,
    index: usize,
    outcome: Outcome,
) -> Result<R, Error> {
    let result = match outcome {
        Outcome::Frame(tag, payload) => outcome::decode(tag, &payload),
        Outcome::Failed(kind) => Err(*kind),
    };
    result.map_err(|kind| Error::new(name, kind).with_task(index))
}

/// Encodes inputs into batches and submits them.
pub(super) struct Feed<I> {
    job: JobId,
    entry: Entry,
    chunk: usize,
    inputs: Option<I>,
    pub(super) next: usize,
    encode_failure: Option<usize>,
    encode_message: Option<String>,
}

impl<I: Iterator<Item = Args>, Args: Wire> Feed<I> {
    pub(super) fn new(job: JobId, entry: Entry, chunk: usize, inputs: I) -> Self {
        Feed {
            job,
            entry,
            chunk,
            inputs: Some(inputs),
            next: 0,
            encode_failure: None,
            encode_message: None,
        }
    }

    pub(super) fn is_done(&self) -> bool {
        self.inputs.is_none()
    }

    pub(super) fn stop(&mut self) {
        self.inputs = None;
    }

    /// Submits one batch; false once the inputs are exhausted.
    pub(super) fn feed(&mut self, core: &mut Core) -> bool {
        let (job, entry) = (self.job, self.entry);
        let Some(inputs) = &mut self.inputs else {
            return false;
        };
        let empty = |first| Batch {
            job,
            first,
            count: 0,
            entry,
            args: Vec::new(),
        };
        let mut batch = empty(self.next);
        let mut exhausted = false;
        while batch.count < self.chunk && batch.args.len() < BATCH_BYTES {
            let Some(args) = inputs.next() else {
                exhausted = true;
                break;
            };
            let index = self.next;
            self.next += 1;
            if let Err(err) = task::append_args(&args, &mut batch.args) {
                // This task fails alone; the batch so far goes now, the next starts after it.
                let message = err.to_string();
                self.encode_failure.get_or_insert(index);
                self.encode_message.get_or_insert_with(|| message.clone());
                let before = std::mem::replace(&mut batch, empty(index + 1));
                if before.count > 0 {
                    core.submit(before);
                }
                core.fail(job, index, ErrorKind::EncodeArgs(message));
                continue;
            }
            batch.count += 1;
        }
        if batch.count > 0 {
            core.submit(batch);
        }
        if exhausted {
            self.inputs = None;
        }
        !exhausted
    }
}
