//! A call's tasks (in batches) and outcomes, and the engine's methods that keep track of them.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use super::core::Core;
use crate::error::ErrorKind;
use crate::frame::{Payload, Tag};
use crate::task::{self, Entry};

pub(crate) type JobId = u64;

/// The jobs of a pool, by id. Looked up once per outcome, so hashed cheaply: ids are handed
/// out in sequence and nobody else chooses them, so there is nothing to defend against.
pub(crate) type Jobs = HashMap<JobId, Job, BuildHasherDefault<IdHasher>>;

/// Hashes a [`JobId`] by one multiplication (Fibonacci hashing), which spreads sequential ids
/// over the high bits that the table looks at.
#[derive(Debug, Default)]
pub(crate) struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.write_u64(self.0 ^ u64::from(*byte));
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = id.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// What became of one task.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The worker's outcome frame: a value, a panic, a codec failure.
    Frame(Tag, Payload),
    /// No frame: the worker crashed or timed out while running the task, or the task was never
    /// run. Boxed: it is rare, and outcomes are moved about by the thousand.
    Failed(Box<ErrorKind>),
}

impl Outcome {
    pub(crate) fn failed(kind: ErrorKind) -> Outcome {
        Outcome::Failed(Box::new(kind))
    }
}

/// Consecutive tasks of one job that go to one worker together.
#[derive(Debug)]
pub(crate) struct Batch {
    pub(crate) job: JobId,
    /// The index of the first task within its job.
    pub(crate) first: usize,
    pub(crate) count: usize,
    pub(crate) entry: Entry,
    /// Each task's arguments, as `task::append_args` wrote them.
    pub(crate) args: Vec<u8>,
}

impl Batch {
    /// Splits off the tasks from the `skip`-th on, as a batch of their own.
    pub(super) fn split_off(&mut self, skip: usize) -> Option<Batch> {
        if skip >= self.count {
            return None;
        }
        let mut rest: &[u8] = &self.args;
        for _ in 0..skip {
            rest = task::split_args(rest).map_or(&[][..], |(_, rest)| rest);
        }
        let tail = Batch {
            job: self.job,
            first: self.first + skip,
            count: self.count - skip,
            entry: self.entry,
            args: rest.to_vec(),
        };
        self.args.truncate(self.args.len() - rest.len());
        self.count = skip;
        Some(tail)
    }
}

/// The results of one call (`map`, `apply_async`, `imap`, …), kept until its caller takes them.
#[derive(Debug)]
pub(crate) struct Job {
    /// Outcomes by task index, from `base` on; `None` while a task is outstanding.
    pub(super) outcomes: VecDeque<Option<Outcome>>,
    pub(super) base: usize,
    /// For unordered jobs, outcomes in the order they arrived.
    pub(super) arrived: VecDeque<(usize, Outcome)>,
    pub(super) ordered: bool,
    /// Tasks submitted whose outcome has not arrived.
    pub(super) outstanding: usize,
}

impl Core {
    pub(crate) fn new_job(&mut self, ordered: bool) -> JobId {
        let id = self.next_job;
        self.next_job += 1;
        self.jobs.insert(
            id,
            Job {
                outcomes: VecDeque::new(),
                base: 0,
                arrived: VecDeque::new(),
                ordered,
                outstanding: 0,
            },
        );
        id
    }

    /// Queues a batch; its outcomes arrive as the pool is driven.
    pub(crate) fn submit(&mut self, batch: Batch) {
        if let Some(job) = self.jobs.get_mut(&batch.job) {
            job.outstanding += batch.count;
            if job.ordered {
                let end = batch.first + batch.count - job.base;
                if job.outcomes.len() < end {
                    job.outcomes.resize_with(end, || None);
                }
            }
            self.queue.push_back(batch);
        }
    }

    /// Records a task's outcome as failed without running it.
    pub(crate) fn fail(&mut self, job: JobId, index: usize, kind: ErrorKind) {
        if let Some(job) = self.jobs.get_mut(&job) {
            job.outstanding += 1;
            if job.ordered && job.outcomes.len() <= index - job.base {
                job.outcomes.resize_with(index - job.base + 1, || None);
            }
        }
        deliver(&mut self.jobs, job, index, Outcome::failed(kind));
    }

    pub(crate) fn outstanding(&self, job: JobId) -> usize {
        self.jobs.get(&job).map_or(0, |job| job.outstanding)
    }

    /// The next outcome in task order, if it has arrived.
    pub(crate) fn take_next(&mut self, job: JobId) -> Option<(usize, Outcome)> {
        let job = self.jobs.get_mut(&job)?;
        if !matches!(job.outcomes.front(), Some(Some(_))) {
            return None;
        }
        let outcome = job.outcomes.pop_front().flatten()?;
        job.base += 1;
        Some((job.base - 1, outcome))
    }

    /// Any outcome that has arrived, for unordered jobs.
    pub(crate) fn take_any(&mut self, job: JobId) -> Option<(usize, Outcome)> {
        self.jobs.get_mut(&job)?.arrived.pop_front()
    }

    /// Every outcome that has arrived, for unordered jobs, moved to the back of `out`.
    pub(crate) fn take_arrived(&mut self, job: JobId, out: &mut VecDeque<(usize, Outcome)>) {
        if let Some(job) = self.jobs.get_mut(&job) {
            if out.is_empty() {
                // Trade buffers rather than move each outcome.
                std::mem::swap(out, &mut job.arrived);
            } else {
                out.append(&mut job.arrived);
            }
        }
    }

    /// Drops a job's queued tasks (they will have no outcome), keeping the job for the outcomes
    /// of its running tasks.
    pub(crate) fn drop_queued(&mut self, id: JobId) {
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        self.queue.retain(|batch| {
            let keep = batch.job != id;
            if !keep {
                job.outstanding -= batch.count;
            }
            keep
        });
    }
}

/// Records a task's outcome with its job, if the job still wants it.
pub(super) fn deliver(jobs: &mut Jobs, id: JobId, index: usize, outcome: Outcome) {
    if let Some(job) = jobs.get_mut(&id) {
        job.record(index, outcome);
    }
}

impl Job {
    /// Records the outcome of task `index`.
    pub(super) fn record(&mut self, index: usize, outcome: Outcome) {
        self.outstanding -= 1;
        if self.ordered {
            let at = index.checked_sub(self.base);
            if let Some(slot) = at.and_then(|at| self.outcomes.get_mut(at)) {
                *slot = Some(outcome);
            }
        } else {
            self.arrived.push_back((index, outcome));
        }
    }
}
