//! The untyped engine of a pool: worker processes, the queue of batches, and the loop that moves
//! bytes between them. It knows tasks only as encoded arguments and outcome frames; the typed
//! layer (`feed.rs`, `call.rs`, `handles.rs`) encodes and decodes.
//!
//! There is no background thread: whoever waits for an outcome drives the engine (`drive`), so
//! the process gains no thread of ours, and every fork happens on a thread of the caller's.

use std::io;
use std::os::fd::RawFd;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use super::jobs::{Batch, JobId, Jobs, Outcome};
use super::slot::{linger, Slot};
use crate::error::ErrorKind;
use crate::sys;
use crate::transport::ring::{self, LINGER};
use crate::wire::frame::{FrameReader, Payload};
use crate::wire::outcome::Status;
use crate::worker;

/// The settings a pool keeps for its life.
#[derive(Clone, Debug, Default)]
pub(crate) struct Settings {
    pub(crate) workers: usize,
    pub(crate) task_timeout: Option<Duration>,
    pub(crate) max_tasks_per_worker: Option<usize>,
    /// Tasks per batch, if the user chose; see `PoolBuilder::chunk_size`.
    pub(crate) chunk_size: Option<usize>,
}

/// The engine behind its lock, as a pool and the handles of its calls share it.
#[derive(Debug)]
pub(crate) struct Shared {
    core: Mutex<Core>,
}

impl Shared {
    pub(crate) fn new(settings: Settings) -> io::Result<Shared> {
        Ok(Shared {
            core: Mutex::new(Core::new(settings)?),
        })
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, Core> {
        // The engine keeps its own state consistent between calls, so a panic elsewhere while
        // the lock was held (in a user's `Serialize`, say) leaves nothing half-changed.
        self.core.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Batches a worker may hold at once: the one it runs and the next, so that it never waits for
/// the parent between two batches.
const BATCHES_PER_WORKER: usize = 2;

/// The engine. See the module documentation.
#[derive(Debug)]
pub(crate) struct Core {
    settings: Settings,
    /// A deadline for all work in the pool: tasks still running then are killed.
    deadline: Option<Instant>,
    slots: Vec<Slot>,
    /// Every call's tasks and outcomes, and the queue of batches not yet handed out.
    pub(crate) jobs: Jobs,
    closed: bool,
    /// Scratch space for `poll`.
    ready: Vec<bool>,
    /// Whether outcomes have lately come within [`LINGER`] of a wait: then the next wait spins
    /// for that long before it sleeps. Never on a single CPU, where the spin would only keep
    /// the worker it waits for from running.
    lingering: bool,
}

impl Core {
    pub(crate) fn new(settings: Settings) -> io::Result<Core> {
        // Inline mode (no workers) catches panics too, and needs the hook for their location.
        worker::install_panic_hook();
        // Worked out before the workers fork, so that they inherit the answer.
        ring::may_spin();
        let mut core = Core {
            settings,
            deadline: None,
            slots: Vec::new(),
            jobs: Jobs::default(),
            closed: false,
            ready: Vec::new(),
            lingering: false,
        };
        while core.slots.len() < core.settings.workers {
            core.add_worker()?;
        }
        Ok(core)
    }

    pub(crate) fn settings(&self) -> &Settings {
        &self.settings
    }

    pub(crate) fn set_deadline(&mut self, deadline: Option<Instant>) {
        self.deadline = deadline;
    }

    pub(crate) fn close(&mut self) {
        self.closed = true;
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    /// The pids of the live workers.
    pub(crate) fn pids(&self) -> Vec<u32> {
        self.slots
            .iter()
            .map(|slot| slot.child.pid.as_u32())
            .collect()
    }

    fn add_worker(&mut self) -> io::Result<()> {
        let siblings: Vec<RawFd> = self.slots.iter().flat_map(Slot::fds).collect();
        self.slots.push(Slot::spawn(&siblings)?);
        Ok(())
    }

    /// Whether a caller feeding tasks from an iterator should submit more before it waits: true
    /// while fewer batches are queued than the workers can take at once.
    pub(crate) fn wants_more(&self) -> bool {
        self.jobs.queued() < BATCHES_PER_WORKER * self.settings.workers.max(1)
    }

    /// Drives until no task is queued or running.
    pub(crate) fn finish(&mut self) {
        while self.jobs.queued() > 0 || self.slots.iter().any(|slot| !slot.idle()) {
            self.drive(None);
        }
    }

    /// Forgets a job: its queued tasks are dropped, and outcomes still to come are discarded.
    /// With `kill_running`, workers running one of its tasks are killed (and replaced);
    /// otherwise those tasks finish first.
    pub(crate) fn cancel(&mut self, id: JobId, kill_running: bool) {
        self.jobs.remove(id);
        if kill_running {
            for i in (0..self.slots.len()).rev() {
                if self.slots[i]
                    .batches
                    .front()
                    .is_some_and(|batch| batch.job == id)
                {
                    // The job is gone: the error given to its killed task is discarded.
                    self.remove_slot(i, |slot| slot.stuck(ErrorKind::Deadline));
                }
            }
        }
    }

    /// Moves work along until something happens or `until` passes: hands queued batches to
    /// workers, writes requests, reads outcomes, replaces dead or stuck workers.
    pub(crate) fn drive(&mut self, until: Option<Instant>) {
        if self.settings.workers == 0 {
            self.run_inline();
            return;
        }
        self.replenish();
        self.dispatch();
        self.wait(until);
        self.expire();
        self.retire();
        // Replace at once the workers that just ended, so that the pool is whole between calls.
        self.replenish();
    }

    /// With no workers, runs every queued batch here, in the caller's thread.
    fn run_inline(&mut self) {
        while let Some(batch) = self.jobs.pop_queued() {
            let mut out = Vec::new();
            // Writing to a `Vec` cannot fail.
            let _ = batch.entry.run(&batch.args, &mut out);
            let mut reader = FrameReader::<Status>::from_bytes(out);
            for index in batch.indices() {
                let outcome = match reader.frame() {
                    Ok(Some((status, payload))) => {
                        Outcome::Frame(status, Payload::copy_of(payload))
                    }
                    _ => Outcome::failed(ErrorKind::Frame("missing outcome".into())),
                };
                reader.consume();
                self.jobs.deliver(batch.job, index, outcome);
            }
        }
    }

    /// Starts workers until there are as many as configured. When none can be started and none
    /// is left, queued tasks fail with the reason rather than wait for ever.
    fn replenish(&mut self) {
        while self.slots.len() < self.settings.workers {
            let Err(err) = self.add_worker() else {
                continue;
            };
            if self.slots.is_empty() {
                self.jobs
                    .fail_queued(|| ErrorKind::Spawn(io::Error::new(err.kind(), err.to_string())));
            }
            return;
        }
    }

    /// Hands queued batches to workers with room, as far as recycling allows.
    fn dispatch(&mut self) {
        if self
            .deadline
            .is_some_and(|deadline| Instant::now() >= deadline)
        {
            // Past the deadline, queued tasks fail (in `expire`) rather than start to be killed.
            return;
        }
        let limit = self.settings.max_tasks_per_worker;
        // Each worker gets one batch before any gets a second: a call with as many tasks as
        // there are workers runs them all at once, not two after one another on one worker.
        for depth in 1..=BATCHES_PER_WORKER {
            for slot in &mut self.slots {
                while slot.batches.len() < depth {
                    let budget =
                        limit.map_or(usize::MAX, |limit| limit.saturating_sub(slot.assigned));
                    if budget == 0 {
                        break;
                    }
                    let Some(mut batch) = self.jobs.pop_queued() else {
                        return;
                    };
                    if let Some(rest) = batch.split_off(budget) {
                        self.jobs.requeue(rest);
                    }
                    slot.assign(batch);
                }
            }
        }
    }

    /// When the next task timeout or the pool's deadline falls, if either applies.
    fn next_expiry(&self) -> Option<Instant> {
        let busy = self.slots.iter().filter(|slot| !slot.idle());
        let timeouts = busy.filter_map(|slot| Some(slot.started + self.settings.task_timeout?));
        let working = self.jobs.queued() > 0 || self.slots.iter().any(|slot| !slot.idle());
        let deadline = self.deadline.filter(|_| working);
        timeouts.chain(deadline).min()
    }

    /// Writes requests, waits for the workers, then reads what they sent and buries the dead.
    fn wait(&mut self, until: Option<Instant>) {
        if self.slots.is_empty() {
            // No worker to wait for: none could be started (the fork server is gone, say), and
            // `replenish` has failed the queued tasks. A `poll` of nothing would sleep for ever.
            return;
        }
        for slot in &mut self.slots {
            slot.write();
        }
        let wake = match (until, self.next_expiry()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let mut timeout = wake.map(|wake| wake.saturating_duration_since(Instant::now()));
        let busy = self.slots.iter().any(|slot| !slot.idle());
        if self.lingering && busy {
            self.lingering = linger(&mut self.slots, LINGER);
        }
        // Ask every ring for a bell, and sleep only if none has news already.
        let mut waiting = false;
        for slot in &mut self.slots {
            waiting |= slot.sleep();
        }
        if waiting {
            timeout = Some(Duration::ZERO);
        }
        let fds: Vec<_> = self.slots.iter().flat_map(Slot::poll_fds).collect();
        let mut ready = std::mem::take(&mut self.ready);
        let slept = Instant::now();
        let polled = sys::poll_many(&fds, timeout, &mut ready);
        if !waiting && busy && ready.contains(&true) {
            self.lingering = slept.elapsed() < LINGER && ring::may_spin();
        }
        drop(fds);
        for slot in &self.slots {
            slot.wake();
        }
        if polled.is_err() {
            // Only ENOMEM; the next call tries again.
            self.ready = ready;
            return;
        }
        let mut dead = Vec::new();
        for (i, slot) in self.slots.iter_mut().enumerate() {
            let (readable, ended, writable) = (ready[3 * i], ready[3 * i + 1], ready[3 * i + 2]);
            if writable {
                slot.write();
            }
            // The ring is read every time: what it holds raises no descriptor.
            if let Err(err) = slot.read(&mut self.jobs, readable || ended) {
                dead.push((i, Some(err)));
                continue;
            }
            if ended {
                dead.push((i, None));
            }
        }
        self.ready = ready;
        for (i, bad_frame) in dead.into_iter().rev() {
            match bad_frame {
                None => self.remove_slot(i, Slot::crash),
                Some(err) => self.remove_slot(i, |slot| slot.stuck(ErrorKind::Frame(err))),
            }
        }
    }

    /// Kills workers whose task ran past its timeout, or past the pool's deadline, and fails
    /// queued tasks once the deadline has passed.
    fn expire(&mut self) {
        let now = Instant::now();
        let past_deadline = self.deadline.is_some_and(|deadline| now >= deadline);
        for i in (0..self.slots.len()).rev() {
            let slot = &self.slots[i];
            if slot.idle() {
                continue;
            }
            let ran = now.saturating_duration_since(slot.started);
            match self.settings.task_timeout {
                Some(timeout) if ran >= timeout => {
                    self.remove_slot(i, |slot| slot.stuck(ErrorKind::Timeout(timeout)));
                }
                _ if past_deadline => {
                    self.remove_slot(i, |slot| slot.stuck(ErrorKind::Deadline));
                }
                _ => {}
            }
        }
        if past_deadline {
            self.jobs.fail_queued(|| ErrorKind::Deadline);
        }
    }

    /// Replaces workers that have run as many tasks as they may.
    fn retire(&mut self) {
        let Some(limit) = self.settings.max_tasks_per_worker else {
            return;
        };
        for i in (0..self.slots.len()).rev() {
            if self.slots[i].idle() && self.slots[i].assigned >= limit {
                // Idle: no task receives the error.
                self.remove_slot(i, |slot| slot.stuck(ErrorKind::Deadline));
            }
        }
    }

    /// Takes a worker out of the pool and ends it. The task it was running (if any) fails with
    /// `why(slot)`; the tasks it had not started go back to the front of the queue.
    fn remove_slot(&mut self, i: usize, why: impl FnOnce(&mut Slot) -> ErrorKind) {
        let mut slot = self.slots.remove(i);
        let kind = why(&mut slot);
        let Some(mut current) = slot.batches.pop_front() else {
            return;
        };
        let index = current.first + slot.done;
        self.jobs.deliver(current.job, index, Outcome::failed(kind));
        let rest = current.split_off(slot.done + 1);
        let unstarted: Vec<Batch> = rest
            .into_iter()
            .chain(slot.batches.drain(..))
            .filter(|batch| self.jobs.contains(batch.job))
            .collect();
        for batch in unstarted.into_iter().rev() {
            self.jobs.requeue(batch);
        }
    }

    /// Kills every worker at once; queued and running tasks are dropped with their jobs.
    pub(crate) fn terminate(&mut self) {
        self.jobs.clear();
        // All are told first, so that they end together rather than one after another.
        for slot in &self.slots {
            let _ = slot.child.kill();
        }
        for mut slot in self.slots.drain(..) {
            let _ = slot.child.reap();
        }
    }
}
