//! The pool's books: each call's tasks (queued in batches) and outcomes, by job. Data and the
//! methods that keep it consistent; the engine (`engine.rs`) decides what happens to it.
//!
//! Each job queues its own batches, and [`Jobs::pop_queued`] takes them round robin between
//! the jobs that have any: of several concurrent calls, each gets a worker in turn, and a call
//! of a million tasks submitted first does not hold back one of ten submitted after it.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};

use crate::codec::Codec;
use crate::error::ErrorKind;
use crate::transport::outbox::Outgoing;
use crate::wire::batch;
use crate::wire::frame::Payload;
use crate::wire::outcome::Status;
use crate::worker::{self, Entry};

pub(crate) type JobId = u64;

/// Hashes a [`JobId`] by one multiplication (Fibonacci hashing), which spreads sequential ids
/// over the high bits that the table looks at. Ids are handed out in sequence and nobody else
/// chooses them, so there is nothing to defend against.
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
    Frame(Status, Payload),
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
    /// The fleet depth its tasks run at: the caller's ([`worker::fleet_depth`]).
    pub(crate) depth: u32,
    /// Each task's arguments, as `wire::batch::append_args` wrote them.
    pub(crate) args: Vec<u8>,
}

impl Batch {
    /// Splits off the tasks from the `skip`-th on, as a batch of their own.
    pub(crate) fn split_off(&mut self, skip: usize) -> Option<Batch> {
        if skip >= self.count {
            return None;
        }
        let mut rest: &[u8] = &self.args;
        for _ in 0..skip {
            rest = batch::split_args(rest).map_or(&[][..], |(_, rest)| rest);
        }
        let tail = Batch {
            job: self.job,
            first: self.first + skip,
            count: self.count - skip,
            entry: self.entry,
            depth: self.depth,
            args: rest.to_vec(),
        };
        self.args.truncate(self.args.len() - rest.len());
        self.count = skip;
        Some(tail)
    }

    /// The task indices the batch holds.
    pub(crate) fn indices(&self) -> std::ops::Range<usize> {
        self.first..self.first + self.count
    }
}

impl Outgoing for Batch {
    fn entry(&self) -> u64 {
        worker::address(self.entry)
    }

    fn depth(&self) -> u32 {
        self.depth
    }

    fn codec(&self) -> Codec {
        self.entry.codec()
    }

    fn args(&self) -> &[u8] {
        &self.args
    }
}

/// The results of one call (`map`, `apply_async`, `imap`, …), kept until its caller takes them.
#[derive(Debug)]
pub(crate) struct Job {
    /// Outcomes by task index, from `base` on; `None` while a task is outstanding.
    outcomes: VecDeque<Option<Outcome>>,
    base: usize,
    /// For unordered jobs, outcomes in the order they arrived.
    arrived: VecDeque<(usize, Outcome)>,
    ordered: bool,
    /// Tasks submitted whose outcome has not arrived.
    outstanding: usize,
    /// The job's batches not yet handed to a worker, in order.
    queue: VecDeque<Batch>,
}

impl Job {
    /// Records the outcome of task `index`.
    #[inline]
    pub(crate) fn record(&mut self, index: usize, outcome: Outcome) {
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

    /// Makes room for the outcomes of tasks up to `end` (exclusive), for an ordered job.
    fn expect(&mut self, end: usize) {
        if self.ordered && self.outcomes.len() < end - self.base {
            self.outcomes.resize_with(end - self.base, || None);
        }
    }
}

/// Every job of a pool, by id, and whose turn it is to hand a batch to a worker.
#[derive(Debug, Default)]
pub(crate) struct Jobs {
    by_id: HashMap<JobId, Job, BuildHasherDefault<IdHasher>>,
    /// The jobs with queued batches, each once, the next to be served first.
    rota: VecDeque<JobId>,
    /// Batches queued, over all jobs.
    queued: usize,
    /// Times an outcome was recorded, or a job taken to record some ([`Jobs::visits`]).
    visits: u64,
    /// Times a batch was queued, or put back ([`Jobs::pushes`]).
    pushes: u64,
    next: JobId,
}

impl Jobs {
    pub(crate) fn new_job(&mut self, ordered: bool) -> JobId {
        let id = self.next;
        self.next += 1;
        let job = Job {
            outcomes: VecDeque::new(),
            base: 0,
            arrived: VecDeque::new(),
            ordered,
            outstanding: 0,
            queue: VecDeque::new(),
        };
        self.by_id.insert(id, job);
        id
    }

    /// The job `id`, if it still wants its outcomes: how a worker's reader records them.
    pub(crate) fn get_mut(&mut self, id: JobId) -> Option<&mut Job> {
        self.visits += 1;
        self.by_id.get_mut(&id)
    }

    /// Moves whenever outcomes may have been recorded: a step that leaves it unchanged brought
    /// no news, and wakes no awaited call.
    pub(crate) fn visits(&self) -> u64 {
        self.visits
    }

    /// Moves whenever a batch is queued or put back in the queue: a step that saw another count
    /// has not dispatched what is queued now.
    pub(crate) fn pushes(&self) -> u64 {
        self.pushes
    }

    pub(crate) fn contains(&self, id: JobId) -> bool {
        self.by_id.contains_key(&id)
    }

    /// Queues a batch; its outcomes arrive as the pool is driven.
    pub(crate) fn submit(&mut self, batch: Batch) {
        if let Some(job) = self.by_id.get_mut(&batch.job) {
            job.outstanding += batch.count;
            job.expect(batch.first + batch.count);
            if job.queue.is_empty() {
                self.rota.push_back(batch.job);
            }
            job.queue.push_back(batch);
            self.queued += 1;
            self.pushes += 1;
        }
    }

    /// Records a task's outcome as failed without running it.
    pub(crate) fn fail(&mut self, id: JobId, index: usize, kind: ErrorKind) {
        if let Some(job) = self.by_id.get_mut(&id) {
            job.outstanding += 1;
            job.expect(index + 1);
        }
        self.deliver(id, index, Outcome::failed(kind));
    }

    /// Records a task's outcome with its job, if the job still wants it.
    pub(crate) fn deliver(&mut self, id: JobId, index: usize, outcome: Outcome) {
        self.visits += 1;
        if let Some(job) = self.by_id.get_mut(&id) {
            job.record(index, outcome);
        }
    }

    /// Fails every queued task with `kind()`, emptying the queue.
    pub(crate) fn fail_queued(&mut self, kind: impl Fn() -> ErrorKind) {
        while let Some(batch) = self.pop_queued() {
            for index in batch.indices() {
                self.deliver(batch.job, index, Outcome::failed(kind()));
            }
        }
    }

    pub(crate) fn outstanding(&self, id: JobId) -> usize {
        self.by_id.get(&id).map_or(0, |job| job.outstanding)
    }

    /// The next outcome in task order, if it has arrived.
    pub(crate) fn take_next(&mut self, id: JobId) -> Option<(usize, Outcome)> {
        let job = self.by_id.get_mut(&id)?;
        if !matches!(job.outcomes.front(), Some(Some(_))) {
            return None;
        }
        let outcome = job.outcomes.pop_front().flatten()?;
        job.base += 1;
        Some((job.base - 1, outcome))
    }

    /// Any outcome that has arrived, for unordered jobs.
    pub(crate) fn take_any(&mut self, id: JobId) -> Option<(usize, Outcome)> {
        self.by_id.get_mut(&id)?.arrived.pop_front()
    }

    /// Every outcome that has arrived, for unordered jobs, moved to the back of `out`.
    pub(crate) fn take_arrived(&mut self, id: JobId, out: &mut VecDeque<(usize, Outcome)>) {
        if let Some(job) = self.by_id.get_mut(&id) {
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
        let Some(job) = self.by_id.get_mut(&id) else {
            return;
        };
        self.queued -= job.queue.len();
        for batch in job.queue.drain(..) {
            job.outstanding -= batch.count;
        }
        self.rota.retain(|queued| *queued != id);
    }

    /// Forgets a job: its queued tasks are dropped, and outcomes still to come are discarded.
    pub(crate) fn remove(&mut self, id: JobId) {
        if let Some(job) = self.by_id.remove(&id) {
            if !job.queue.is_empty() {
                self.queued -= job.queue.len();
                self.rota.retain(|queued| *queued != id);
            }
        }
    }

    /// The next queued batch, to hand to a worker: the oldest of the job whose turn it is.
    pub(crate) fn pop_queued(&mut self) -> Option<Batch> {
        let id = self.rota.pop_front()?;
        let job = self.by_id.get_mut(&id)?;
        let batch = job.queue.pop_front()?;
        if !job.queue.is_empty() {
            self.rota.push_back(id);
        }
        self.queued -= 1;
        Some(batch)
    }

    /// Puts a batch back at the front of its job's queue, and that job first in turn: it goes
    /// to a worker next.
    pub(crate) fn requeue(&mut self, batch: Batch) {
        let Some(job) = self.by_id.get_mut(&batch.job) else {
            return;
        };
        if !job.queue.is_empty() {
            self.rota.retain(|queued| *queued != batch.job);
        }
        self.rota.push_front(batch.job);
        job.queue.push_front(batch);
        self.queued += 1;
        self.pushes += 1;
    }

    /// How many batches are queued, over all jobs.
    pub(crate) fn queued(&self) -> usize {
        self.queued
    }

    /// How many of job `id`'s batches are queued.
    pub(crate) fn queued_of(&self, id: JobId) -> usize {
        self.by_id.get(&id).map_or(0, |job| job.queue.len())
    }
}
