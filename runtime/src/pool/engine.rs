//! The untyped engine of a pool: worker processes, the queue of batches, and the loop that moves
//! bytes between them. It knows tasks only as encoded arguments and outcome frames; the typed
//! layer (`feed.rs`, `call.rs`, `handles.rs`) encodes and decodes.
//!
//! There is no background thread: whoever waits for an outcome drives the engine, one step at
//! a time ([`Driver::step`]), so the process gains no thread of ours, and every fork happens on
//! a thread of the caller's.
//!
//! # Locks
//!
//! Two of them, taken in this order. The *engine* (the workers) is held by the one caller that
//! drives, for one step: hand queued batches to workers, write requests, wait in `poll` until a
//! worker has news, read it. The *state* (the books: every call's queued batches and outcomes,
//! the deadline) is held for a few microseconds at a time: to submit a batch, take outcomes,
//! or record what a step read. So `workers()`, `set_deadline()` and submitting never wait for
//! a task, and no caller waits for another's whole call: a waiter that finds the engine taken
//! sleeps until the step ends (on a condvar, or, for an awaited call, with its waker), takes
//! its outcomes, and drives the next step itself if nobody else does.
//!
//! A driver asleep in `poll` also watches a *bell* (a pipe): whoever queues work, sets a
//! deadline or dooms a job while it sleeps writes a byte there, so the new work goes out at
//! once rather than at the driver's next outcome.
//!
//! A batch queued while nobody sleeps in `poll` goes out only with a step that someone drives,
//! and no worker's news prompts one when every worker is idle. The queue counts its pushes
//! ([`Jobs::pushes`]) so that no such batch is stranded: an awaited call that has just driven
//! drives again before it sleeps if the count moved, and a driver that does not sleep wakes
//! every awaited call when it lets go if the count moved while it held the engine.
//!
//! Fairness: batches go to workers round robin between the calls that have any queued
//! ([`Jobs::pop_queued`]), so concurrent calls share the workers batch by batch.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError, TryLockError};
use std::task::Waker;
use std::time::{Duration, Instant};

use super::jobs::{Batch, JobId, Jobs, Outcome};
use super::slot::{self, linger, Initializer, Slot};
use crate::error::ErrorKind;
use crate::proc::held::Kept;
use crate::sys;
use crate::transport::ring::{self, Wake, LINGER, QUICK, STRETCH};
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
    /// Run first in each worker; see `PoolBuilder::initializer`.
    pub(crate) initializer: Option<Initializer>,
}

impl Settings {
    /// Which outcome should wake the pool from a sleep: each one when tasks have a timeout,
    /// since a task's clock starts when the outcome before it arrives; otherwise a batch's
    /// last, for a batch's outcomes are read together when it ends (or sooner, should the
    /// pool be awake for another reason).
    fn wake(&self) -> Wake {
        if self.task_timeout.is_some() {
            Wake::EachOutcome
        } else {
            Wake::BatchEnd
        }
    }
}

/// The longest a pool whose spins keep finding outcomes in the rings goes without polling its
/// workers' descriptors: how late, at most, it then hears of a worker's death, or of outcomes
/// that came on a pipe, while another worker keeps it busy.
const LOOK_AROUND: Duration = Duration::from_millis(1);

/// Batches a worker may hold at once: the one it runs and the next, so that it never waits for
/// the parent between two batches.
pub(super) const BATCHES_PER_WORKER: usize = 2;

/// The engine and its books, as a pool and the handles of its calls share them.
#[derive(Debug)]
pub(crate) struct Shared {
    settings: Settings,
    state: Mutex<State>,
    engine: Mutex<Engine>,
    /// Where blocking waiters that do not drive sleep until a step ends.
    stepped: Condvar,
    /// The epoll set's registrations with tokio's reactors, one a runtime, for as long as an
    /// awaited call holds each.
    #[cfg(feature = "tokio")]
    registrations: Mutex<Vec<std::sync::Weak<super::awaiting::Registration>>>,
    /// Keeps the bell out of every worker (before `bell`: it must go first).
    _bell_kept: Kept,
    /// The bell's read end, which a sleeping driver polls, and its write end.
    bell: (OwnedFd, OwnedFd),
}

/// The books, behind the short lock.
#[derive(Debug)]
#[allow(
    clippy::struct_excessive_bools,
    reason = "four independent flags, each set and cleared by its own event"
)]
pub(crate) struct State {
    /// Every call's tasks and outcomes, and the queue of batches not yet handed out.
    pub(crate) jobs: Jobs,
    /// A deadline for all work in the pool: tasks still running then are killed.
    deadline: Option<Instant>,
    closed: bool,
    /// Set by `terminate`: no worker is started again.
    terminated: bool,
    pids: Vec<u32>,
    /// Workers holding a batch, as of the last step.
    busy: usize,
    /// Counts the ends of steps: a waiter sleeps until it moves.
    epoch: u64,
    /// Blocking waiters asleep on `stepped`.
    parked: usize,
    /// Awaited calls to wake when a step has news.
    wakers: Vec<Waker>,
    /// A driver sleeps in `poll`, listening for the bell.
    listening: bool,
    /// An awaited call heard from the reactor that a worker has news, but found the engine
    /// taken: the driver that lets go next wakes every awaited call, so that one steps for it
    /// (the step that held the engine may have looked before the news came).
    pub(crate) unread: bool,
    /// Jobs whose running tasks the next step kills.
    doomed: Vec<JobId>,
}

impl State {
    /// Counts the ends of steps; see [`Shared::turn`].
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed
    }

    /// Whether a caller feeding job `id` from an iterator should submit more before it waits:
    /// true while it has fewer batches queued than the workers can take at once.
    pub(crate) fn wants_more(&self, id: JobId, workers: usize) -> bool {
        self.jobs.queued_of(id) < BATCHES_PER_WORKER * workers.max(1)
    }

    /// Registers an awaited call's waker, to be woken when a step has news, unless a step has
    /// ended since the caller saw `epoch` (then it should look again); whether it was
    /// registered.
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn park_waker(&mut self, epoch: u64, waker: &Waker) -> bool {
        if self.epoch != epoch {
            return false;
        }
        if !self.wakers.iter().any(|known| known.will_wake(waker)) {
            self.wakers.push(waker.clone());
        }
        true
    }
}

/// The workers, behind the lock a driver holds.
#[derive(Debug)]
struct Engine {
    slots: Vec<Slot>,
    /// Scratch space for `poll`.
    ready: Vec<bool>,
    /// Whether outcomes have lately come within [`QUICK`] of a wait: then the next wait spins
    /// for [`LINGER`] (or [`STRETCH`]) before it sleeps. Never on a single CPU, where the spin
    /// would only keep the worker it waits for from running.
    lingering: bool,
    /// When the last wait polled the workers' descriptors; see [`LOOK_AROUND`].
    polled: Instant,
    /// Keeps the epoll set out of every worker (before `watch`: it must go first).
    #[cfg(feature = "tokio")]
    watch_kept: Option<Kept>,
    /// The epoll set that awaited calls watch, once one has asked.
    #[cfg(feature = "tokio")]
    watch: Option<sys::Watch>,
    /// Workers whose initializer failed, which are not replaced: so a failing initializer
    /// costs at most one fork per worker the pool keeps, not a fork per task.
    given_up: usize,
    /// How the last initializer that failed did, for the tasks that no worker is left to run.
    init_failed: Option<String>,
}

impl Shared {
    pub(crate) fn new(settings: Settings) -> io::Result<Shared> {
        // Inline mode (no workers) catches panics too, and needs the hook for their location.
        worker::install_panic_hook();
        // Worked out before the workers fork, so that they inherit the answer.
        ring::may_spin();
        let bell = sys::pipe()?;
        sys::set_nonblocking(bell.0.as_fd())?;
        sys::set_nonblocking(bell.1.as_fd())?;
        let shared = Shared {
            settings,
            state: Mutex::new(State {
                jobs: Jobs::default(),
                deadline: None,
                closed: false,
                terminated: false,
                pids: Vec::new(),
                busy: 0,
                epoch: 0,
                parked: 0,
                wakers: Vec::new(),
                listening: false,
                unread: false,
                doomed: Vec::new(),
            }),
            engine: Mutex::new(Engine {
                slots: Vec::new(),
                ready: Vec::new(),
                lingering: false,
                polled: Instant::now(),
                #[cfg(feature = "tokio")]
                watch_kept: None,
                #[cfg(feature = "tokio")]
                watch: None,
                given_up: 0,
                init_failed: None,
            }),
            stepped: Condvar::new(),
            #[cfg(feature = "tokio")]
            registrations: Mutex::new(Vec::new()),
            _bell_kept: Kept::new(&[bell.0.as_raw_fd(), bell.1.as_raw_fd()]),
            bell,
        };
        {
            let mut engine = shared.engine();
            let init = shared.settings.initializer.as_ref();
            while engine.slots.len() < shared.settings.workers {
                engine.add_worker(init)?;
            }
            if let (0, Some(init)) = (shared.settings.workers, init) {
                engine.init_failed = Engine::init_inline(init);
            }
            shared.state().pids = engine.pids();
        }
        Ok(shared)
    }

    pub(crate) fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The books. Held for microseconds: never across a wait, an encode of more than a batch,
    /// or a decode.
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        // The books are kept consistent between calls, so a panic elsewhere while the lock was
        // held (in a user's `Serialize`, say) leaves nothing half-changed.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn engine(&self) -> MutexGuard<'_, Engine> {
        self.engine.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Rings the bell if a driver sleeps, so that what was just queued goes out now. Called
    /// with the state lock held, which orders it with the driver's `listening`.
    pub(crate) fn nudge(&self, state: &State) {
        if state.listening {
            // A full pipe has rung already.
            let _ = sys::write_some(self.bell.1.as_fd(), &[1]);
        }
    }

    /// Whether a caller feeding job `id` from an iterator should submit more before it waits.
    pub(crate) fn wants_more(&self, id: JobId) -> bool {
        self.state().wants_more(id, self.settings.workers)
    }

    pub(crate) fn set_deadline(&self, deadline: Option<Instant>) {
        let mut state = self.state();
        state.deadline = deadline;
        self.nudge(&state);
        drop(state);
        // An awaited call sleeps until its timer, set for the deadline it last saw: each looks
        // again, and sets it anew.
        self.wake_awaited();
    }

    /// Wakes every awaited call that waits.
    pub(crate) fn wake_awaited(&self) {
        let wakers = std::mem::take(&mut self.state().wakers);
        for waker in wakers {
            waker.wake();
        }
    }

    /// The registrations of the epoll set with tokio's reactors; see
    /// [`Registration`](super::awaiting::Registration).
    #[cfg(feature = "tokio")]
    pub(crate) fn registrations(
        &self,
    ) -> MutexGuard<'_, Vec<std::sync::Weak<super::awaiting::Registration>>> {
        self.registrations
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Forgets a registration whose runtime is gone.
    #[cfg(feature = "tokio")]
    pub(crate) fn forget_registration(&self, gone: &super::awaiting::Registration) {
        self.registrations()
            .retain(|known| !std::ptr::eq(known.as_ptr(), gone));
    }

    pub(crate) fn close(&self) {
        self.state().closed = true;
    }

    pub(crate) fn pids(&self) -> Vec<u32> {
        self.state().pids.clone()
    }

    /// Forgets a job: its queued tasks are dropped, and outcomes still to come are discarded.
    /// With `kill_running`, workers running one of its tasks are killed (and replaced) by the
    /// next step, driven here if nobody else drives; otherwise those tasks finish first.
    pub(crate) fn cancel(&self, id: JobId, kill_running: bool) {
        let mut state = self.state();
        state.jobs.remove(id);
        if !kill_running {
            return;
        }
        state.doomed.push(id);
        self.nudge(&state);
        let epoch = state.epoch;
        drop(state);
        if let Some(mut driver) = self.try_drive() {
            driver.step_until(epoch, Some(Instant::now()));
        }
    }

    /// The engine, if nobody drives it now.
    pub(crate) fn try_drive(&self) -> Option<Driver<'_>> {
        let engine = match self.engine.try_lock() {
            Ok(engine) => engine,
            Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
            Err(TryLockError::WouldBlock) => return None,
        };
        Some(Driver {
            shared: self,
            engine: Some(engine),
            wake_all: false,
            pushes: None,
        })
    }

    /// One turn of a blocking waiter that saw `epoch` when it last took its outcomes: drives a
    /// step if nobody else does, or else sleeps until the current step ends, or `until`.
    pub(crate) fn turn(&self, epoch: u64, until: Option<Instant>) {
        if let Some(mut driver) = self.try_drive() {
            driver.step_until(epoch, until);
            return;
        }
        let mut state = self.state();
        state.parked += 1;
        while state.epoch == epoch {
            state = match until {
                None => self
                    .stepped
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner),
                Some(until) => {
                    let left = until.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        break;
                    }
                    self.stepped
                        .wait_timeout(state, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0
                }
            };
        }
        state.parked -= 1;
    }

    /// Drives until no task is queued or running.
    pub(crate) fn finish(&self) {
        loop {
            let state = self.state();
            if state.jobs.queued() == 0 && state.busy == 0 {
                return;
            }
            let epoch = state.epoch;
            drop(state);
            self.turn(epoch, None);
        }
    }

    /// Kills every worker at once and starts no other; queued and running tasks fail as
    /// closed. Outcomes that have arrived stay for their callers.
    pub(crate) fn terminate(&self) {
        {
            let mut state = self.state();
            state.closed = true;
            state.terminated = true;
            // A driver asleep in `poll` lets go of the engine.
            self.nudge(&state);
        }
        let mut driver = Driver {
            shared: self,
            engine: Some(self.engine()),
            wake_all: true,
            pushes: None,
        };
        let engine = driver.engine_mut();
        let mut state = self.state();
        state.jobs.fail_queued(|| ErrorKind::Closed);
        for slot in &engine.slots {
            let mut done = slot.done;
            for batch in &slot.batches {
                for index in batch.indices().skip(done) {
                    state
                        .jobs
                        .deliver(batch.job, index, Outcome::failed(ErrorKind::Closed));
                }
                done = 0;
            }
        }
        state.pids.clear();
        state.busy = 0;
        drop(state);
        engine.terminate();
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        let engine = self
            .engine
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner);
        engine.terminate();
    }
}

/// What a non-blocking step ([`Driver::step_now`]) found.
#[derive(Debug)]
#[cfg_attr(not(feature = "tokio"), allow(dead_code))]
pub(crate) struct Stepped {
    /// Outcomes are waiting already: step again rather than wait.
    pub(crate) again: bool,
    /// When the next task timeout or the deadline falls, which a timer must wake the caller
    /// for.
    pub(crate) expiry: Option<Instant>,
    /// The queue's [`Jobs::pushes`] when the step ended: while it has not moved, whatever is
    /// queued waits for room on a worker, and the worker's news wakes the caller.
    pub(crate) pushes: u64,
}

/// The right to drive the engine, held for one step. Letting go of it ends the step: the
/// epoch moves, and the waiters that may have news wake.
#[derive(Debug)]
pub(crate) struct Driver<'a> {
    shared: &'a Shared,
    engine: Option<MutexGuard<'a, Engine>>,
    /// Wake every awaited call when letting go, for news or so that one drives next.
    wake_all: bool,
    /// The queue's [`Jobs::pushes`] when a step that does not sleep ended: a batch queued since
    /// then, while this driver held the engine, went out with no step, so letting go wakes
    /// every awaited call, one of which drives.
    pushes: Option<u64>,
}

impl Driver<'_> {
    fn engine_mut(&mut self) -> &mut Engine {
        match &mut self.engine {
            Some(engine) => engine,
            None => unreachable!("the engine is held until the driver is dropped"),
        }
    }

    /// A step that may sleep until a worker has news, the bell rings, or `until`, unless a step
    /// has ended since the caller saw `epoch` (it should look at its outcomes first).
    pub(crate) fn step_until(&mut self, epoch: u64, until: Option<Instant>) {
        if self.shared.state().epoch != epoch {
            return;
        }
        // A blocking driver wakes the awaited calls when it lets go: they may drive next.
        self.wake_all = true;
        self.step(Wait::Until(until));
    }

    /// A step that does not sleep, and that leaves the workers' bells asked for, so that the
    /// reactor hears of the next outcome ([`Driver::watch`]).
    #[cfg_attr(not(feature = "tokio"), allow(dead_code))]
    pub(crate) fn step_now(&mut self) -> Stepped {
        let news = self.step(Wait::Now);
        self.wake_all |= news;
        let shared = self.shared;
        let engine = self.engine_mut();
        let mut again = false;
        let wake = shared.settings.wake();
        for slot in &mut engine.slots {
            again |= slot.sleep(wake);
        }
        #[cfg(feature = "tokio")]
        if let Some(watch) = &engine.watch {
            // A worker whose requests wait for room in its pipe is watched until it has some;
            // should that fail, the next outcome wakes the reactor anyway.
            for slot in &engine.slots {
                if let Some(requests) = slot.pending_requests() {
                    let _ = watch.arm_write(requests);
                }
            }
        }
        let state = shared.state();
        let queued = state.jobs.queued() > 0;
        // Batches a worker has room for, queued after this step dispatched (by a caller whose
        // own turn found the engine taken) or put back by it (a worker died, or was retired):
        // they go out with the next step, which nobody else may drive.
        again |= queued && engine.has_room(state.deadline, &shared.settings);
        let expiry = engine.next_expiry(state.deadline, queued, &shared.settings);
        let pushes = state.jobs.pushes();
        drop(state);
        self.pushes = Some(pushes);
        Stepped {
            again,
            expiry,
            pushes,
        }
    }

    /// One step: hands queued batches to workers, writes requests, waits for news, reads it,
    /// replaces dead or stuck workers. Whether any task's outcome arrived.
    fn step(&mut self, wait: Wait) -> bool {
        let shared = self.shared;
        let engine = self.engine_mut();
        if shared.settings.workers == 0 {
            if let Some(why) = &engine.init_failed {
                let mut state = shared.state();
                let queued = state.jobs.queued() > 0;
                state
                    .jobs
                    .fail_queued(|| ErrorKind::Initializer(why.clone()));
                return queued;
            }
            return Engine::run_inline(shared);
        }
        if engine
            .slots
            .first()
            .is_some_and(|slot| !slot.child.is_ours())
        {
            // A forked copy of the pool's process: the workers are the parent's. Every task
            // fails, rather than one of theirs run here or this call wait for ever.
            engine.disown(&mut shared.state().jobs);
            return true;
        }
        engine.inspect(shared);
        let mut news = engine.replenish(shared);
        let (deadline, queued) = {
            let mut state = shared.state();
            for id in std::mem::take(&mut state.doomed) {
                engine.kill_job(id, &mut state.jobs);
            }
            let deadline = state.deadline;
            engine.dispatch(&mut state.jobs, deadline, &shared.settings);
            state.busy = engine.busy();
            state.listening = matches!(wait, Wait::Until(_));
            (state.deadline, state.jobs.queued() > 0)
        };
        let expiry = engine.next_expiry(deadline, queued, &shared.settings);
        engine.wait(shared, wait, expiry);
        news |= {
            let mut state = shared.state();
            state.listening = false;
            let before = state.jobs.visits();
            engine.read(&mut state.jobs);
            engine.expire(&mut state.jobs, deadline, &shared.settings);
            engine.retire(&mut state.jobs, &shared.settings);
            state.busy = engine.busy();
            state.pids = engine.pids();
            state.jobs.visits() != before
        };
        // Replace at once the workers that just ended, so that the pool is whole between calls.
        news | engine.replenish(shared)
    }
}

#[cfg(feature = "tokio")]
impl Driver<'_> {
    /// The epoll set of every worker's descriptors, made on first use and kept in step with the
    /// workers from then on: readable when a worker has news. Watch a duplicate of it.
    pub(crate) fn watch(&mut self) -> io::Result<OwnedFd> {
        let engine = self.engine_mut();
        if engine.watch.is_none() {
            let watch = sys::Watch::new()?;
            for slot in &engine.slots {
                for fd in slot.watched() {
                    watch.add(fd)?;
                }
            }
            engine.watch_kept = Some(Kept::new(&[watch.fd().as_raw_fd()]));
            engine.watch = Some(watch);
        }
        let Some(watch) = &engine.watch else {
            unreachable!("made above")
        };
        for slot in &engine.slots {
            if let Some(requests) = slot.pending_requests() {
                watch.arm_write(requests)?;
            }
        }
        watch.fd().try_clone_to_owned()
    }
}

impl Drop for Driver<'_> {
    fn drop(&mut self) {
        // The engine first, so that whoever wakes can drive.
        drop(self.engine.take());
        let mut state = self.shared.state();
        state.epoch += 1;
        if self
            .pushes
            .is_some_and(|pushes| pushes != state.jobs.pushes())
            || !state.doomed.is_empty()
            || std::mem::take(&mut state.unread)
        {
            // Work or news came while this driver held the engine, after it looked: its caller
            // may not drive again, so every awaited call wakes, and the first to find the
            // engine free steps.
            self.wake_all = true;
        }
        let wakers = if self.wake_all {
            std::mem::take(&mut state.wakers)
        } else {
            Vec::new()
        };
        if state.parked > 0 {
            self.shared.stepped.notify_all();
        }
        drop(state);
        for waker in wakers {
            waker.wake();
        }
    }
}

/// Why a step takes a worker out of the pool.
#[derive(Debug)]
enum Dead {
    /// Its process ended.
    Ended,
    /// It sent what is not frames, or a frame that no task waits for.
    BadFrame(String),
    /// Its initializer failed.
    InitFailed,
}

/// How many more tasks a worker may be given before it is recycled.
fn budget(slot: &Slot, settings: &Settings) -> usize {
    settings
        .max_tasks_per_worker
        .map_or(usize::MAX, |limit| limit.saturating_sub(slot.assigned))
}

/// How a step waits for the workers.
#[derive(Clone, Copy, Debug)]
enum Wait {
    /// Sleeps in `poll` until news, the bell, or the instant (none: no limit).
    Until(Option<Instant>),
    /// Looks, and does not sleep.
    Now,
}

impl Engine {
    /// The pids of the live workers.
    fn pids(&self) -> Vec<u32> {
        self.slots
            .iter()
            .map(|slot| slot.child.pid.as_u32())
            .collect()
    }

    fn busy(&self) -> usize {
        self.slots.iter().filter(|slot| !slot.idle()).count()
    }

    /// Whether the pool has a single task in flight: then it and the worker that holds the task
    /// wait only on each other, and spin for [`STRETCH`]. (With more in flight, a spin that
    /// long could take a CPU that another worker needs.)
    fn single(&self) -> bool {
        let mut busy = self.slots.iter().filter(|slot| !slot.idle());
        match (busy.next(), busy.next()) {
            (Some(slot), None) => slot.in_flight() == 1,
            _ => false,
        }
    }

    /// In a forked copy of the pool's process, fails every task, queued or held by a worker,
    /// with [`ErrorKind::Foreign`]; the workers are left to the process that made them.
    fn disown(&mut self, jobs: &mut Jobs) {
        jobs.fail_queued(|| ErrorKind::Foreign);
        for slot in &mut self.slots {
            let done = std::mem::take(&mut slot.done);
            for (n, batch) in slot.batches.drain(..).enumerate() {
                let skip = if n == 0 { done } else { 0 };
                for index in batch.indices().skip(skip) {
                    jobs.deliver(batch.job, index, Outcome::failed(ErrorKind::Foreign));
                }
            }
        }
    }

    fn add_worker(&mut self, init: Option<&Initializer>) -> io::Result<()> {
        // The new worker holds none of the other workers' descriptors, nor the bell or the
        // epoll set: `proc::held` lists them all, and every fork closes what it lists.
        let slot = Slot::spawn(init)?;
        #[cfg(feature = "tokio")]
        if let Some(watch) = &self.watch {
            for fd in slot.watched() {
                watch.add(fd)?;
            }
        }
        self.slots.push(slot);
        Ok(())
    }

    /// With no workers, runs every queued batch here, in the caller's thread, with the state
    /// unlocked while a batch runs.
    fn run_inline(shared: &Shared) -> bool {
        let mut news = false;
        loop {
            let Some(batch) = shared.state().jobs.pop_queued() else {
                return news;
            };
            let mut out = Vec::new();
            // Writing to a `Vec` cannot fail.
            let _ = batch.entry.run(&batch.args, &mut out);
            let mut reader = FrameReader::<Status>::from_bytes(out);
            let mut state = shared.state();
            for index in batch.indices() {
                let outcome = match reader.frame() {
                    Ok(Some((status, payload))) => {
                        Outcome::Frame(status, Payload::copy_of(payload))
                    }
                    _ => Outcome::failed(ErrorKind::Frame("missing outcome".into())),
                };
                reader.consume();
                state.jobs.deliver(batch.job, index, outcome);
            }
            news = true;
        }
    }

    /// Runs the initializer of a pool with no workers, here, once; how it failed, if it did.
    fn init_inline(init: &Initializer) -> Option<String> {
        let mut out = Vec::new();
        // Writing to a `Vec` cannot fail; the initializer's own failure is in its outcome.
        let _ = init.entry.run(&init.args, &mut out);
        let reader = FrameReader::<Status>::from_bytes(out);
        match reader.frame() {
            Ok(Some((status, payload))) => slot::init_failure(init.name, status, payload),
            _ => Some(format!("worker `{}` sent no outcome", init.name)),
        }
    }

    /// Starts workers until there are as many as configured, less those given up on (their
    /// initializer failed). When none can be started and none is left, queued tasks fail with
    /// the reason rather than wait for ever. Whether it failed any.
    fn replenish(&mut self, shared: &Shared) -> bool {
        let wanted = shared.settings.workers.saturating_sub(self.given_up);
        if let (Some(why), true) = (&self.init_failed, self.slots.is_empty() && wanted == 0) {
            let mut state = shared.state();
            let queued = state.jobs.queued() > 0;
            state
                .jobs
                .fail_queued(|| ErrorKind::Initializer(why.clone()));
            state.pids.clear();
            return queued;
        }
        if self.slots.len() >= wanted || shared.state().terminated {
            return false;
        }
        let mut failed = false;
        while self.slots.len() < wanted {
            let Err(err) = self.add_worker(shared.settings.initializer.as_ref()) else {
                continue;
            };
            if self.slots.is_empty() {
                let mut state = shared.state();
                failed = state.jobs.queued() > 0;
                state
                    .jobs
                    .fail_queued(|| ErrorKind::Spawn(crate::error::copy_io_error(&err)));
            }
            break;
        }
        shared.state().pids = self.pids();
        failed
    }

    /// Retires the idle workers that sent what they had no turn to send, before work is handed
    /// out (see [`Slot::inspect`]); none of their tasks is running, so none fails.
    fn inspect(&mut self, shared: &Shared) {
        if !self.slots.iter().any(Slot::unchecked) {
            return;
        }
        let mut state = shared.state();
        if state.jobs.queued() == 0 {
            return;
        }
        for i in (0..self.slots.len()).rev() {
            if let Err(err) = self.slots[i].inspect(&mut state.jobs) {
                self.remove_slot(i, &mut state.jobs, |slot| slot.stuck(ErrorKind::Frame(err)));
            }
        }
    }

    /// Kills the workers running a task of job `id`, which is gone; they are replaced.
    fn kill_job(&mut self, id: JobId, jobs: &mut Jobs) {
        for i in (0..self.slots.len()).rev() {
            if self.slots[i]
                .batches
                .front()
                .is_some_and(|batch| batch.job == id)
            {
                // The job is gone: the error given to its killed task is discarded.
                self.remove_slot(i, jobs, |slot| slot.stuck(ErrorKind::Deadline));
            }
        }
    }

    /// Hands queued batches to workers with room, as far as recycling allows.
    fn dispatch(&mut self, jobs: &mut Jobs, deadline: Option<Instant>, settings: &Settings) {
        if deadline.is_some_and(|deadline| Instant::now() >= deadline) {
            // Past the deadline, queued tasks fail (in `expire`) rather than start to be killed.
            return;
        }
        // Each worker gets one batch before any gets a second: a call with as many tasks as
        // there are workers runs them all at once, not two after one another on one worker.
        for depth in 1..=BATCHES_PER_WORKER {
            for slot in &mut self.slots {
                while slot.batches.len() < depth {
                    let budget = budget(slot, settings);
                    if budget == 0 {
                        break;
                    }
                    let Some(mut batch) = jobs.pop_queued() else {
                        return;
                    };
                    if let Some(rest) = batch.split_off(budget) {
                        jobs.requeue(rest);
                    }
                    slot.assign(batch);
                }
            }
        }
    }

    /// Whether [`dispatch`](Engine::dispatch) would hand a queued batch to some worker now.
    fn has_room(&self, deadline: Option<Instant>, settings: &Settings) -> bool {
        let past_deadline = deadline.is_some_and(|deadline| Instant::now() >= deadline);
        !past_deadline
            && self
                .slots
                .iter()
                .any(|slot| slot.batches.len() < BATCHES_PER_WORKER && budget(slot, settings) > 0)
    }

    /// When the next task timeout or the pool's deadline falls, if either applies.
    fn next_expiry(
        &self,
        deadline: Option<Instant>,
        queued: bool,
        settings: &Settings,
    ) -> Option<Instant> {
        let busy = self.slots.iter().filter(|slot| !slot.idle());
        let timeouts = busy.filter_map(|slot| Some(slot.started + settings.task_timeout?));
        // A worker running its initializer with no task yet is no work of the deadline's.
        let working = queued
            || self
                .slots
                .iter()
                .any(|slot| !slot.idle() && !slot.only_initializing());
        timeouts.chain(deadline.filter(|_| working)).min()
    }

    /// Writes requests, then waits for the workers (or only looks, for [`Wait::Now`]), with
    /// the state unlocked. What the wait saw is in `ready`, for [`Engine::read`].
    fn wait(&mut self, shared: &Shared, wait: Wait, expiry: Option<Instant>) {
        self.ready.clear();
        if self.slots.is_empty() {
            // No worker to wait for: none could be started (the fork server is gone, say), and
            // `replenish` has failed the queued tasks. A `poll` of nothing would sleep for ever.
            return;
        }
        let single = self.single();
        for slot in &mut self.slots {
            slot.single(single && !slot.idle());
            slot.write();
        }
        let busy = self.slots.iter().any(|slot| !slot.idle());
        let until = match wait {
            Wait::Until(until) => until,
            Wait::Now => Some(Instant::now()),
        };
        let wake = match (until, expiry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let mut timeout = wake.map(|wake| wake.saturating_duration_since(Instant::now()));
        let sleeping = matches!(wait, Wait::Until(_)) && timeout != Some(Duration::ZERO);
        let mut waiting = false;
        if sleeping {
            // A spin sees outcomes in the rings only; those that come on a pipe wake the `poll`.
            let spinnable =
                |slots: &[Slot]| slots.iter().any(|slot| !slot.idle() && !slot.on_pipe());
            if self.lingering && spinnable(&self.slots) {
                let limit = if single { STRETCH } else { LINGER };
                self.lingering = linger(&mut self.slots, limit);
                if self.lingering && self.polled.elapsed() < LOOK_AROUND {
                    // The spin saw news in a ring, which `read` takes without a system call;
                    // the descriptors (deaths, pipes, the bell) wait for the next `poll`.
                    return;
                }
            }
            // Ask every ring for a bell, and sleep only if none has news already.
            let wake = shared.settings.wake();
            for slot in &mut self.slots {
                waiting |= slot.sleep(wake);
            }
            if waiting {
                timeout = Some(Duration::ZERO);
            }
        }
        let mut fds: Vec<_> = self.slots.iter().flat_map(Slot::poll_fds).collect();
        fds.push((shared.bell.0.as_fd(), sys::Interest::Read));
        let mut ready = std::mem::take(&mut self.ready);
        let slept = Instant::now();
        let polled = sys::poll_many(&fds, timeout, &mut ready);
        self.polled = Instant::now();
        let news = ready
            .split_last()
            .is_some_and(|(_, slots)| slots.contains(&true));
        if sleeping && !waiting && busy && news {
            self.lingering = slept.elapsed() < QUICK && ring::may_spin();
        }
        drop(fds);
        if sleeping {
            for slot in &self.slots {
                slot.wake();
            }
        }
        if polled.is_err() {
            // Only ENOMEM; the next step tries again (the rings are still read).
            ready.clear();
        } else if ready.last() == Some(&true) {
            let mut drained = Vec::new();
            while sys::read_appending(shared.bell.0.as_fd(), &mut drained, 64).is_ok_and(|n| n > 0)
            {
                drained.clear();
            }
        }
        self.ready = ready;
    }

    /// Reads what the workers sent, as the last wait saw it, and buries the dead.
    fn read(&mut self, jobs: &mut Jobs) {
        let mut dead = Vec::new();
        for (i, slot) in self.slots.iter_mut().enumerate() {
            let seen = |at: usize| self.ready.get(3 * i + at).copied().unwrap_or(false);
            let (readable, ended, writable) = (seen(0), seen(1), seen(2));
            if writable {
                slot.write();
            }
            // The ring is read every time: what it holds raises no descriptor.
            if let Err(err) = slot.read(jobs, readable || ended) {
                dead.push((i, Dead::BadFrame(err)));
                continue;
            }
            if slot.init_failed() {
                dead.push((i, Dead::InitFailed));
            } else if ended {
                dead.push((i, Dead::Ended));
            }
        }
        for (i, dead) in dead.into_iter().rev() {
            match dead {
                Dead::Ended => self.remove_slot(i, jobs, Slot::crash),
                Dead::BadFrame(err) => {
                    self.remove_slot(i, jobs, |slot| slot.stuck(ErrorKind::Frame(err)));
                }
                // The worker is ending on its own; the error is the initializer's (the kind
                // given here is not used).
                Dead::InitFailed => {
                    self.remove_slot(i, jobs, |slot| slot.stuck(ErrorKind::Closed));
                }
            }
        }
    }

    /// Kills workers whose task (or initializer) ran past its timeout, or whose task ran past
    /// the pool's deadline, and fails queued tasks once the deadline has passed.
    fn expire(&mut self, jobs: &mut Jobs, deadline: Option<Instant>, settings: &Settings) {
        let now = Instant::now();
        let past_deadline = deadline.is_some_and(|deadline| now >= deadline);
        for i in (0..self.slots.len()).rev() {
            let slot = &self.slots[i];
            if slot.idle() {
                continue;
            }
            let ran = now.saturating_duration_since(slot.started);
            match settings.task_timeout {
                Some(timeout) if ran >= timeout => {
                    self.remove_slot(i, jobs, |slot| slot.stuck(ErrorKind::Timeout(timeout)));
                }
                // The deadline is the tasks': a worker that holds none, still running its
                // initializer, is spared (one holding tasks is not: they must fail now).
                _ if past_deadline && !slot.only_initializing() => {
                    self.remove_slot(i, jobs, |slot| slot.stuck(ErrorKind::Deadline));
                }
                _ => {}
            }
        }
        if past_deadline {
            jobs.fail_queued(|| ErrorKind::Deadline);
        }
    }

    /// Replaces workers that have run as many tasks as they may.
    fn retire(&mut self, jobs: &mut Jobs, settings: &Settings) {
        let Some(limit) = settings.max_tasks_per_worker else {
            return;
        };
        for i in (0..self.slots.len()).rev() {
            if self.slots[i].idle() && self.slots[i].assigned >= limit {
                // Idle: no task receives the error.
                self.remove_slot(i, jobs, |slot| slot.stuck(ErrorKind::Deadline));
            }
        }
    }

    /// Takes a worker out of the pool and ends it. The task it was running (if any) fails with
    /// `why(slot)`; the tasks it had not started go back to the front of the queue.
    fn remove_slot(&mut self, i: usize, jobs: &mut Jobs, why: impl FnOnce(&mut Slot) -> ErrorKind) {
        let mut slot = self.slots.remove(i);
        #[cfg(feature = "tokio")]
        if let Some(watch) = &self.watch {
            for fd in slot.watched_all() {
                watch.forget(fd);
            }
        }
        let kind = why(&mut slot);
        let kind = match slot.settle_init(kind) {
            Ok(kind) => kind,
            Err(why) => {
                // The worker started none of its tasks, and is not replaced.
                self.given_up += 1;
                slot.fail_all(jobs, || ErrorKind::Initializer(why.clone()));
                self.init_failed = Some(why);
                return;
            }
        };
        let Some(mut current) = slot.batches.pop_front() else {
            return;
        };
        let index = current.first + slot.done;
        jobs.deliver(current.job, index, Outcome::failed(kind));
        let rest = current.split_off(slot.done + 1);
        let unstarted: Vec<Batch> = rest
            .into_iter()
            .chain(slot.batches.drain(..))
            .filter(|batch| jobs.contains(batch.job))
            .collect();
        for batch in unstarted.into_iter().rev() {
            jobs.requeue(batch);
        }
    }

    /// Kills every worker at once and reaps it.
    fn terminate(&mut self) {
        // All are told first, so that they end together rather than one after another.
        for slot in &self.slots {
            let _ = slot.child.kill();
        }
        for mut slot in self.slots.drain(..) {
            let _ = slot.child.reap();
        }
    }
}
