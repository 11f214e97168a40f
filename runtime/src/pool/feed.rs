//! The typed edge of the engine: a call's inputs encoded into batches ([`Feed`]), and its
//! outcomes decoded ([`decode`]).

use super::engine::{Settings, Shared};
use super::jobs::{Batch, JobId, Outcome};
use crate::codec::Codec;
use crate::error::Error;
use crate::error::ErrorKind;
use crate::func::TaskFn;
use crate::func::Wire;
use crate::wire::{batch, outcome};
use crate::worker::{self, Entry};

/// The most argument bytes one batch carries: larger tasks go one to a batch, and the memory a
/// pool holds for queued work stays in proportion to its workers rather than to its input.
const BATCH_BYTES: usize = 1 << 20;

/// The largest automatic batch, in tasks.
const MAX_AUTO_CHUNK: usize = 1 << 14;

/// The tasks per batch of a call whose input's length hint is `hint`.
pub(super) fn chunk_for(settings: &Settings, hint: (usize, Option<usize>)) -> usize {
    if let Some(chunk) = settings.chunk_size {
        return chunk;
    }
    let known = hint.1.unwrap_or(hint.0);
    if known == 0 {
        return 1;
    }
    known
        .div_ceil(4 * settings.workers.max(1))
        .clamp(1, MAX_AUTO_CHUNK)
}

/// A task's result, or why there is none; `codec` is its function's.
pub(super) fn decode<R: Wire>(
    name: &'static str,
    codec: Codec,
    index: usize,
    outcome: Outcome,
) -> Result<R, Error> {
    let result = match outcome {
        Outcome::Frame(status, payload) => outcome::decode(codec, status, &payload),
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
    /// The index of the next input.
    pub(super) next: usize,
    /// The first input whose arguments could not be encoded, and the codec's message.
    pub(super) encode_failure: Option<usize>,
    pub(super) encode_message: Option<String>,
}

impl<I: Iterator<Item = Args>, Args: Wire> Feed<I> {
    /// A new job of `F` on `shared`, fed from `inputs` in batches of `chunk` (by default,
    /// sized from their length hint); or, if the pool is closed, the inputs back.
    pub(super) fn start<F: TaskFn<Args, R>, R: Wire>(
        shared: &Shared,
        inputs: I,
        ordered: bool,
        chunk: Option<usize>,
    ) -> Result<Self, I> {
        let chunk = chunk.unwrap_or_else(|| chunk_for(shared.settings(), inputs.size_hint()));
        let mut state = shared.state();
        if state.is_closed() {
            return Err(inputs);
        }
        let job = state.jobs.new_job(ordered);
        drop(state);
        Ok(Feed::new(job, worker::entry::<F, Args, R>(), chunk, inputs))
    }

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

    pub(super) fn job(&self) -> JobId {
        self.job
    }

    pub(super) fn is_done(&self) -> bool {
        self.inputs.is_none()
    }

    /// Makes the next batches of `chunk` tasks.
    pub(super) fn set_chunk(&mut self, chunk: usize) {
        self.chunk = chunk.max(1);
    }

    pub(super) fn stop(&mut self) {
        self.inputs = None;
    }

    /// Encodes one batch, with the state unlocked, and submits it; false once the inputs are
    /// exhausted.
    pub(super) fn feed(&mut self, shared: &Shared) -> bool {
        let (job, entry) = (self.job, self.entry);
        let Some(inputs) = &mut self.inputs else {
            return false;
        };
        let depth = worker::fleet_depth();
        let empty = |first| Batch {
            job,
            first,
            count: 0,
            entry,
            depth,
            args: Vec::new(),
        };
        let mut tasks = empty(self.next);
        let mut exhausted = false;
        // What goes to the books, once the lock is taken: the batch, split where a task's
        // arguments could not be encoded, and those tasks' failures.
        let mut batches = Vec::new();
        let mut failures = Vec::new();
        while tasks.count < self.chunk && tasks.args.len() < BATCH_BYTES {
            let Some(args) = inputs.next() else {
                exhausted = true;
                break;
            };
            let index = self.next;
            self.next += 1;
            if let Err(err) = batch::append_args(entry.codec(), &args, &mut tasks.args) {
                // This task fails alone; the batch so far goes now, the next starts after it.
                let message = err.to_string();
                self.encode_failure.get_or_insert(index);
                self.encode_message.get_or_insert_with(|| message.clone());
                let before = std::mem::replace(&mut tasks, empty(index + 1));
                if before.count > 0 {
                    batches.push(before);
                }
                failures.push((index, message));
                continue;
            }
            tasks.count += 1;
        }
        if tasks.count > 0 {
            batches.push(tasks);
        }
        if !batches.is_empty() || !failures.is_empty() {
            let mut state = shared.state();
            for batch in batches {
                state.jobs.submit(batch);
            }
            for (index, message) in failures {
                state.jobs.fail(job, index, ErrorKind::EncodeArgs(message));
            }
            shared.nudge(&state);
        }
        if exhausted {
            self.inputs = None;
        }
        !exhausted
    }
}
