//! The typed edge of the engine: a call's inputs encoded into batches ([`Feed`]), and its
//! outcomes decoded ([`decode`]).

use super::engine::{Core, Settings};
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
fn chunk_for(settings: &Settings, hint: (usize, Option<usize>)) -> usize {
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
    /// A new unordered job of `F` on `core`, fed from `inputs` in batches sized from their
    /// length hint.
    pub(super) fn start<F: TaskFn<Args, R>, R: Wire>(core: &mut Core, inputs: I) -> Self {
        let job = core.jobs.new_job(false);
        let chunk = chunk_for(core.settings(), inputs.size_hint());
        Feed::new(job, worker::entry::<F, Args, R>(), chunk, inputs)
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
        let mut tasks = empty(self.next);
        let mut exhausted = false;
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
                    core.jobs.submit(before);
                }
                core.jobs.fail(job, index, ErrorKind::EncodeArgs(message));
                continue;
            }
            tasks.count += 1;
        }
        if tasks.count > 0 {
            core.jobs.submit(tasks);
        }
        if exhausted {
            self.inputs = None;
        }
        !exhausted
    }
}
