//! One pool worker as the engine sees it: starting it, what it holds, and reading, writing and
//! ending it.

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::time::{Duration, Instant};

use super::jobs::{Batch, JobId, Jobs, Outcome};
use crate::codec::Codec;
use crate::error::{Error, ErrorKind};
use crate::proc::child::Child;
use crate::proc::launch::{self, Direct};
use crate::sys;
use crate::transport::channel::Receiver;
use crate::transport::outbox::Outbox;
use crate::transport::ring::RingReader;
use crate::transport::ring::Wake;
use crate::wire::frame::{Fill, Payload};
use crate::wire::outcome::{self, Status};
use crate::worker::{self, Entry, Lifeline};

/// A pool's initializer, as each new worker is sent it: its first batch, of one task.
#[derive(Clone, Debug)]
pub(crate) struct Initializer {
    pub(crate) name: &'static str,
    pub(crate) entry: Entry,
    /// Its arguments, as `wire::batch::append_args` wrote them.
    pub(crate) args: Vec<u8>,
}

/// The job of an initializer's batch, which no call has: its outcome is the slot's.
const INIT_JOB: JobId = JobId::MAX;

/// Where a worker's initializer stands.
#[derive(Debug)]
enum Init {
    /// It succeeded, or the pool has none.
    Done,
    /// It runs, or waits to, as the worker's first batch; the initializer's name.
    Running(&'static str),
    /// It failed: how, in a clause that names it.
    Failed(String),
}

/// One live worker process and what it is doing.
#[derive(Debug)]
pub(super) struct Slot {
    pub(super) child: Child,
    /// Our end of the request pipe (non-blocking).
    requests: OwnedFd,
    /// A read end of the request pipe that we keep (see `proc::launch::Launched`).
    _request_guard: OwnedFd,
    /// Where the worker's outcomes come from.
    channel: Receiver,
    /// Which of `batches` are not yet wholly written to the worker's pipe.
    out: Outbox,
    /// Batches sent to this worker, oldest first; outcomes arrive in this order.
    pub(super) batches: VecDeque<Batch>,
    /// Outcomes received for the oldest batch.
    pub(super) done: usize,
    /// When the task the worker runs now started (roughly: when the outcome before it arrived).
    pub(super) started: Instant,
    /// Tasks given to this worker over its life, for recycling.
    pub(super) assigned: usize,
    /// Whether outcomes have come in the ring since the pipe was last read dry with nothing
    /// left to come: bytes the worker's own code wrote to the pipe meanwhile, out of turn, show
    /// only there, and `poll` reports them only when the pool sleeps. See
    /// [`inspect`](Slot::inspect).
    unchecked: bool,
    init: Init,
}

impl Slot {
    /// Starts a pool worker. A worker forked here closes at once every other worker's
    /// descriptors (`proc::launch`).
    pub(super) fn spawn(init: Option<&Initializer>) -> io::Result<Slot> {
        // Without shared memory (a kernel without `memfd`, say), outcomes take the pipe.
        let (ring, ring_fd) = RingReader::create().ok().unzip();
        let body = |direct: Direct| {
            let lifeline = Lifeline::direct(direct.parent, direct.main_thread);
            worker::serve(&direct.requests, direct.results, direct.ring, lifeline)
        };
        // SAFETY: `worker::serve` ends in `_exit` and never returns here. Until a batch calls the
        // user's function it takes no lock and touches no state shared with other threads:
        // `prctl`, `read` and `write` on its own pipes, and memory it allocates itself (see
        // `sys::fork` for why that is safe). What the user's function touches is the caller's
        // to judge, as the crate's Safety section explains.
        let launched = unsafe { launch::launch(ring_fd, &[], body) }?;
        sys::set_nonblocking(launched.requests.as_fd())?;
        sys::set_nonblocking(launched.results.as_fd())?;
        let mut slot = Slot {
            child: launched.child,
            requests: launched.requests,
            _request_guard: launched.request_guard,
            channel: Receiver::new(launched.results, ring),
            out: Outbox::default(),
            batches: VecDeque::new(),
            done: 0,
            started: Instant::now(),
            assigned: 0,
            unchecked: false,
            init: Init::Done,
        };
        if let Some(init) = init {
            // Before any task, and not counted among them (`assigned`).
            slot.batches.push_back(Batch {
                job: INIT_JOB,
                first: 0,
                count: 1,
                entry: init.entry,
                depth: 0,
                args: init.args.clone(),
            });
            slot.out.push();
            slot.init = Init::Running(init.name);
        }
        Ok(slot)
    }

    /// Whether the worker runs its initializer, or waits to, and holds no task yet.
    pub(super) fn only_initializing(&self) -> bool {
        matches!(self.init, Init::Running(_)) && self.batches.len() == 1
    }

    /// Whether the worker's initializer has said that it failed.
    pub(super) fn init_failed(&self) -> bool {
        matches!(self.init, Init::Failed(_))
    }

    /// For a worker being taken out of the pool, whose running task (if any) fails with
    /// `kind`: `Err` with how its initializer failed, if it did (it said so, or the worker
    /// ended, timed out or sent a bad frame while it ran; not the pool's deadline, which is no
    /// fault of the initializer), else `Ok(kind)`.
    pub(super) fn settle_init(&mut self, kind: ErrorKind) -> Result<ErrorKind, String> {
        match std::mem::replace(&mut self.init, Init::Done) {
            Init::Failed(why) => Err(why),
            Init::Running(name) if !matches!(kind, ErrorKind::Deadline) => {
                Err(Error::new(name, kind).to_string())
            }
            Init::Running(_) | Init::Done => Ok(kind),
        }
    }

    /// Fails every task the worker holds with `kind()`, none of which it started: its
    /// initializer failed.
    pub(super) fn fail_all(&mut self, jobs: &mut Jobs, kind: impl Fn() -> ErrorKind) {
        for batch in self.batches.drain(..) {
            for index in batch.indices() {
                jobs.deliver(batch.job, index, Outcome::failed(kind()));
            }
        }
        self.done = 0;
    }

    /// What an epoll set watches for reading: the result pipe and the pidfd.
    #[cfg(feature = "tokio")]
    pub(super) fn watched(&self) -> [BorrowedFd<'_>; 2] {
        [self.channel.pipe(), self.child.pidfd.as_fd()]
    }

    /// Every descriptor an epoll set may watch, to forget them before the slot goes.
    #[cfg(feature = "tokio")]
    pub(super) fn watched_all(&self) -> [BorrowedFd<'_>; 3] {
        [
            self.channel.pipe(),
            self.child.pidfd.as_fd(),
            self.requests.as_fd(),
        ]
    }

    /// The request pipe, while requests wait to be written to it.
    #[cfg(feature = "tokio")]
    pub(super) fn pending_requests(&self) -> Option<BorrowedFd<'_>> {
        self.out.is_pending().then(|| self.requests.as_fd())
    }

    pub(super) fn idle(&self) -> bool {
        self.batches.is_empty()
    }

    /// Gives the worker a batch, after those it holds.
    pub(super) fn assign(&mut self, batch: Batch) {
        if self.idle() {
            self.started = Instant::now();
        }
        self.assigned += batch.count;
        self.batches.push_back(batch);
        self.out.push();
    }

    /// The descriptors to `poll` for this worker: the result pipe, the pidfd, and the request
    /// pipe while requests wait to be written (else the pidfd again, so that every worker has
    /// three entries).
    pub(super) fn poll_fds(&self) -> [(BorrowedFd<'_>, sys::Interest); 3] {
        let pidfd = (self.child.pidfd.as_fd(), sys::Interest::Read);
        let requests = if self.out.is_pending() {
            (self.requests.as_fd(), sys::Interest::Write)
        } else {
            pidfd
        };
        [(self.channel.pipe(), sys::Interest::Read), pidfd, requests]
    }

    /// Asks for a bell before the pool sleeps, with the outcome `wake` says; whether outcomes
    /// wait already.
    pub(super) fn sleep(&mut self, wake: Wake) -> bool {
        self.channel.sleep(wake)
    }

    /// The pool is awake: no more bells.
    pub(super) fn wake(&self) {
        self.channel.wake();
    }

    /// The worker a task ran on died: why, as the task's error.
    pub(super) fn crash(&mut self) -> ErrorKind {
        match self.child.reap() {
            Ok(_) if self.child.oom_killed() => ErrorKind::OomKilled,
            Ok(exit) => outcome::missing(exit, self.channel.partial()),
            Err(err) => ErrorKind::ExitLost(err),
        }
    }

    /// Kills a worker (one that ran a task for too long, or is no longer wanted); `kind` is the
    /// error of the task it was running.
    pub(super) fn stuck(&mut self, kind: ErrorKind) -> ErrorKind {
        let _ = self.child.kill();
        let _ = self.child.reap();
        kind
    }

    /// Delivers each outcome the worker has sent, from its ring and its pipe, in order. Reads
    /// the pipe only when `pipe_ready` (`poll` said so): a read that would find nothing is a
    /// wasted system call. Fails when the bytes are not frames, or a frame comes that no task
    /// waits for.
    pub(super) fn read(&mut self, jobs: &mut Jobs, pipe_ready: bool) -> Result<(), String> {
        let mut fill = pipe_ready;
        let done_before = (self.batches.len(), self.done);
        self.channel.refresh();
        let result = loop {
            match self.channel.next() {
                Ok(Some((status, payload))) => {
                    if let Err(err) = self.deliver(jobs, status, payload) {
                        break Err(err);
                    }
                    continue;
                }
                Ok(None) => {}
                Err(err) => break Err(err),
            }
            if !fill {
                break Ok(());
            }
            match self.channel.fill() {
                Ok(Fill::Data) => {}
                // Deliver what came; `poll` says when more does.
                Ok(Fill::Drained) => fill = false,
                // EOF comes with the pidfd's news of the worker's end, which buries it.
                Ok(Fill::WouldBlock | Fill::Eof) => break Ok(()),
                Err(err) => break Err(err),
            }
        };
        let result = result.and_then(|()| self.channel.verify());
        self.channel.release();
        if (self.batches.len(), self.done) != done_before {
            self.unchecked |= !self.channel.on_pipe();
            // The next task started when the last outcome was handed over: as far as the parent
            // can tell, now. Once per read, not once per outcome.
            self.started = Instant::now();
        }
        result
    }

    /// Before an idle worker is given work: reads its pipe if outcomes came in its ring since it
    /// was last read, and fails if it holds what the worker had no turn to send. A task that
    /// writes stray bytes to the pipe and then returns has its outcome published in the ring
    /// after those bytes are written, so they are there by now: the worker is retired before it
    /// gets another task, rather than whenever the pool next sleeps (and with the task it then
    /// runs). A read of an empty pipe costs one system call, and only when the worker is idle.
    pub(super) fn inspect(&mut self, jobs: &mut Jobs) -> Result<(), String> {
        if !self.unchecked() {
            return Ok(());
        }
        // An idle worker has no outcome to send: `read` takes any frame as one for no task.
        self.read(jobs, true)?;
        self.unchecked = false;
        Ok(())
    }

    /// Whether [`inspect`](Slot::inspect) would read the pipe.
    pub(super) fn unchecked(&self) -> bool {
        self.unchecked && self.idle()
    }

    /// Gives the oldest waiting task its outcome, and the tasks after it in its batch theirs, as
    /// far as they have come.
    fn deliver(&mut self, jobs: &mut Jobs, status: Status, payload: Payload) -> Result<(), String> {
        let Some(batch) = self.batches.front() else {
            return Err("an outcome arrived for no task".into());
        };
        if batch.job == INIT_JOB {
            self.init_outcome(status, &payload);
            self.batches.pop_front();
            return Ok(());
        }
        let (first, count) = (batch.first, batch.count);
        // One lookup for the outcomes of this batch that are here, not one each.
        let mut job = jobs.get_mut(batch.job);
        let mut outcome = Some((status, payload));
        while let Some((status, payload)) = outcome.take() {
            if let Some(job) = job.as_deref_mut() {
                job.record(first + self.done, Outcome::Frame(status, payload));
            }
            self.done += 1;
            if self.done == count {
                self.batches.pop_front();
                self.done = 0;
                break;
            }
            outcome = self.channel.next()?;
        }
        Ok(())
    }

    /// Records the outcome of the worker's initializer.
    fn init_outcome(&mut self, status: Status, payload: &[u8]) {
        if let Init::Running(name) = self.init {
            self.init = init_failure(name, status, payload).map_or(Init::Done, Init::Failed);
        }
    }

    /// Writes what the pipe takes of the worker's pending requests, without blocking.
    pub(super) fn write(&mut self) {
        if self.out.write(self.requests.as_fd(), &self.batches) {
            self.channel.post();
        }
    }

    /// The tasks the worker holds that have not come back.
    pub(super) fn in_flight(&self) -> usize {
        let held: usize = self.batches.iter().map(|batch| batch.count).sum();
        held.saturating_sub(self.done)
    }

    /// Tells the worker whether it holds the pool's single task in flight (`ring::STRETCH`).
    pub(super) fn single(&self, single: bool) {
        self.channel.single(single);
    }

    /// Whether the worker's outcomes come on its pipe now, where a spin cannot see them.
    pub(super) fn on_pipe(&self) -> bool {
        self.channel.on_pipe()
    }
}

/// How the initializer `name` failed, by its outcome frame; `None` if it succeeded.
pub(super) fn init_failure(name: &'static str, status: Status, payload: &[u8]) -> Option<String> {
    match outcome::decode::<Option<String>>(Codec::DEFAULT, status, payload) {
        Ok(None) => None,
        Ok(Some(err)) => Some(format!("worker `{name}` returned an error: {err}")),
        Err(kind) => Some(Error::new(name, kind).to_string()),
    }
}

/// Spins for at most `limit` until a worker's ring holds an outcome; whether one does.
///
/// Cheaper than sleeping when outcomes come that fast: no bell for the worker to write, no
/// wake-up for the pool. The engine does it only while waits have lately been that short.
pub(super) fn linger(slots: &mut [Slot], limit: Duration) -> bool {
    let until = Instant::now() + limit;
    loop {
        for slot in &mut *slots {
            if slot.channel.pending() {
                return true;
            }
        }
        if Instant::now() >= until {
            return false;
        }
        std::hint::spin_loop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_workers_request_pipe_still_takes_writes() {
        let mut worker = Slot::spawn(None).unwrap();
        worker.child.kill().unwrap();
        worker.child.reap().unwrap();
        // The worker's read end is gone with it. Without the one we keep, this write would
        // fail with EPIPE (and raise SIGPIPE in a program that has not ignored it).
        assert_eq!(sys::write_some(worker.requests.as_fd(), b"x").unwrap(), 1);
    }
}
