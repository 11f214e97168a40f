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

/// How much smaller than its first batches a call's last automatic batches may get: see
/// [`Guide`].
const GUIDED_SHRINK: usize = 16;

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

/// Shrinks a call's automatic batches as its inputs run out ("guided" scheduling), so that
/// its workers finish together.
///
/// A worker holds the batch it runs and the next one ([`BATCHES_PER_WORKER`]), so with batches
/// of a fixed size a call can end with one worker idle while another still has two batches to
/// go: an eighth of the call, at the default size of a quarter of the inputs over the workers.
/// Each batch is instead a quarter of what is left over the workers, never below the first
/// batch's size over [`GUIDED_SHRINK`] (so that tiny tasks still go in batches big enough to
/// keep the workers fed), and never above it. Only for a call whose length is known and whose
/// batch size the user did not choose.
///
/// [`BATCHES_PER_WORKER`]: super::engine::BATCHES_PER_WORKER
#[derive(Clone, Copy, Debug)]
struct Guide {
    workers: usize,
    floor: usize,
    ceiling: usize,
}

impl Guide {
    /// The next batch's size, with `left` inputs to go.
    fn chunk(self, left: usize) -> usize {
        left.div_ceil(4 * self.workers)
            .clamp(self.floor, self.ceiling)
    }
}

/// Encodes inputs into batches and submits them.
pub(super) struct Feed<I> {
    job: JobId,
    entry: Entry,
    chunk: usize,
    /// Set when the batches shrink as the inputs run out; see [`Guide`].
    guide: Option<Guide>,
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
        let settings = shared.settings();
        let hint = inputs.size_hint();
        let guided = chunk.is_none() && settings.chunk_size.is_none() && hint.1 == Some(hint.0);
        let chunk = chunk.unwrap_or_else(|| chunk_for(settings, hint));
        let mut state = shared.state();
        if state.is_closed() {
            return Err(inputs);
        }
        let job = state.jobs.new_job(ordered);
        drop(state);
        let mut feed = Feed::new(job, worker::entry::<F, Args, R>(), chunk, inputs);
        if guided {
            feed.guide = Some(Guide {
                workers: settings.workers.max(1),
                floor: chunk.div_ceil(GUIDED_SHRINK),
                ceiling: chunk,
            });
        }
        Ok(feed)
    }

    pub(super) fn new(job: JobId, entry: Entry, chunk: usize, inputs: I) -> Self {
        Feed {
            job,
            entry,
            chunk,
            guide: None,
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
        if let Some(guide) = self.guide {
            // The inputs' hint, exact at the start, stays exact as they are taken.
            self.chunk = guide.chunk(inputs.size_hint().0);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The sizes of the batches a guided call of `inputs` tasks on `workers` makes.
    fn guided(inputs: usize, workers: usize) -> Vec<usize> {
        let ceiling = inputs.div_ceil(4 * workers);
        let guide = Guide {
            workers,
            floor: ceiling.div_ceil(GUIDED_SHRINK),
            ceiling,
        };
        let (mut left, mut sizes) = (inputs, Vec::new());
        while left > 0 {
            let chunk = guide.chunk(left).min(left);
            sizes.push(chunk);
            left -= chunk;
        }
        sizes
    }

    #[test]
    fn guided_batches_shrink_to_a_floor_and_cover_every_input() {
        let sizes = guided(1_000, 2);
        assert_eq!(sizes.iter().sum::<usize>(), 1_000);
        assert_eq!(sizes[0], 125);
        assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "{sizes:?}");
        // The last batches are the floor, a sixteenth of the first: what one worker can be
        // left holding (two of them) while the other has run out is 16 tasks, not 250.
        assert_eq!(sizes[sizes.len() - 2], 8, "{sizes:?}");
        assert!(sizes.len() < 60, "{} batches", sizes.len());
    }

    #[test]
    fn guided_batches_of_tiny_inputs_are_single_tasks() {
        assert_eq!(guided(3, 2), [1, 1, 1]);
        assert_eq!(guided(1, 4), [1]);
    }
}
