//! The fork server's own side: its loop, which forks a worker for each request and reports each
//! worker's end, and the spare worker it keeps forked ahead of need.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::panic::{self, AssertUnwindSafe};

use super::protocol::{self, Ends, Heard, Received, Record};
use crate::sys::{self, Fork, Interest, Pid, SigPipe};
use crate::worker::{self, Lifeline};

/// A worker the server forked and has not yet reaped.
struct Served {
    pid: Pid,
    pidfd: OwnedFd,
    status: File,
    /// The caller closed its end of `status`: it is no longer watched.
    hung_up: bool,
}

impl Served {
    fn kill(&self) {
        kill(self.pid, &self.pidfd);
    }
}

/// Kills a child of the server: through its pidfd, or, where a filter refuses that, by its
/// pid, which names it alone until the server reaps it.
fn kill(pid: Pid, pidfd: &OwnedFd) {
    if let Err(err) = sys::pidfd_kill(pidfd.as_fd()) {
        if sys::is_refused(&err) {
            let _ = sys::kill_unreaped(pid);
        }
    }
}

/// The state of the server process.
struct Server<'a> {
    /// The server's end of the control socket, on which requests come.
    control: &'a OwnedFd,
    workers: Vec<Served>,
    /// The next worker, forked already; `None` when it could not be forked or has died, until
    /// the next request forks another.
    spare: Option<Spare>,
    /// What `SIGPIPE` did in the program, for the workers.
    sigpipe: Option<SigPipe>,
}

/// The server's loop: fork a worker for each request, report each worker's end, and end (with
/// every worker) when the program does. Never returns.
pub(super) fn serve(control: &OwnedFd, parent: Pid) -> ! {
    let code = panic::catch_unwind(AssertUnwindSafe(|| {
        if !sys::die_with_parent(parent) {
            return 0;
        }
        // Inherited by every worker the server forks: a worker that exhausts the memory is the
        // OOM killer's choice, then the server, never the program.
        sys::prefer_for_oom_kill();
        let mut server = Server {
            control,
            workers: Vec::new(),
            spare: None,
            // A caller that has its worker's outcome closes the status socket without waiting for
            // the exit record (`Child::release`): writing that record must not kill the server.
            sigpipe: sys::ignore_sigpipe().ok(),
        };
        server.fork_spare();
        server.run();
        0
    }));
    sys::exit_now(code.unwrap_or(70))
}

impl Server<'_> {
    /// Serves requests until the program hangs up, then ends every worker.
    fn run(&mut self) {
        let mut ready = Vec::new();
        loop {
            let workers = self.workers.len();
            let mut fds = vec![(self.control.as_fd(), Interest::Read)];
            fds.extend(
                self.workers
                    .iter()
                    .map(|w| (w.pidfd.as_fd(), Interest::Read)),
            );
            fds.extend(self.spare.iter().map(|s| (s.pidfd.as_fd(), Interest::Read)));
            // The status sockets last, for the callers' kill requests and hang-ups.
            let spare = usize::from(self.spare.is_some());
            let watched: Vec<usize> = (0..workers).filter(|&i| !self.workers[i].hung_up).collect();
            fds.extend(
                watched
                    .iter()
                    .map(|&i| (self.workers[i].status.as_fd(), Interest::Read)),
            );
            if sys::poll_many(&fds, None, &mut ready).is_err() {
                continue;
            }
            drop(fds);
            for (k, &i) in watched.iter().enumerate() {
                if ready[1 + workers + spare + k] {
                    self.hear(i);
                }
            }
            if self.spare.is_some() && ready[1 + workers] {
                // Killed from outside: the next request forks its worker, and a new spare.
                if let Some(spare) = self.spare.take() {
                    spare.end();
                }
            }
            self.reap(&ready[1..=workers]);
            if ready[0] && !self.accept() {
                break;
            }
        }
        // The program has ended (or dropped its end): so do its workers.
        for worker in &self.workers {
            worker.kill();
        }
        for worker in &self.workers {
            let _ = sys::wait(worker.pid);
        }
        if let Some(spare) = self.spare.take() {
            spare.end();
        }
    }

    /// Reads what the caller of worker `i` sent: a kill request, or its hang-up, after which
    /// nobody wants the worker (its outcome is in, or its handle was dropped), so it is killed
    /// too. The worker stays listed until its pidfd says it has ended.
    fn hear(&mut self, i: usize) {
        let worker = &mut self.workers[i];
        match protocol::hear(&worker.status) {
            Heard::Kill => worker.kill(),
            Heard::HungUp => {
                worker.hung_up = true;
                worker.kill();
            }
            Heard::Nothing => {}
        }
    }

    /// Reaps the workers that `ended` says have ended, and reports how on their status sockets.
    fn reap(&mut self, ended: &[bool]) {
        for i in (0..ended.len()).rev() {
            if ended[i] {
                let mut worker = self.workers.swap_remove(i);
                let record = match sys::wait(worker.pid) {
                    Ok(exit) => Record::Exited(exit),
                    // Never reported as a signal the worker did not receive: the caller says
                    // that its exit status was lost, and why.
                    Err(err) => Record::ExitLost(err.raw_os_error().unwrap_or(sys::EIO)),
                };
                // Fails when the caller has its outcome and closed the pipe: nobody waits.
                let _ = protocol::write_record(&mut worker.status, record);
            }
        }
    }

    /// The server's descriptors that a child it forks must close, with `extra`.
    fn inherited(&self, extra: Option<RawFd>) -> Vec<RawFd> {
        std::iter::once(self.control.as_raw_fd())
            .chain(
                self.workers
                    .iter()
                    .flat_map(|w| [w.pidfd.as_raw_fd(), w.status.as_raw_fd()]),
            )
            .chain(self.spare.iter().flat_map(Spare::fds))
            .chain(extra)
            .collect()
    }

    fn fork_spare(&mut self) {
        if self.spare.is_none() {
            self.spare = Spare::fork(&self.inherited(None), self.sigpipe.as_ref()).ok();
        }
    }

    /// Takes one request from the control socket and starts its worker: the spare, or a fresh
    /// fork. False once the program has hung up.
    fn accept(&mut self) -> bool {
        let (ends, mut status) = match protocol::recv_request(self.control.as_fd()) {
            Received::HungUp => return false,
            Received::Malformed => return true,
            Received::Request(ends, status) => (ends, status),
        };
        let started = match self.spare.take().and_then(|spare| spare.hand_over(&ends)) {
            Some(started) => {
                // Closed before the next fork: only the worker may hold its pipes.
                drop(ends);
                Ok(started)
            }
            None => self.fork_worker(ends, &status),
        };
        match started {
            Ok((pid, pidfd)) => {
                if protocol::send_spawned(&status, pid, &pidfd).is_ok() {
                    self.workers.push(Served {
                        pid,
                        pidfd,
                        status,
                        hung_up: false,
                    });
                } else {
                    // The caller is gone already: end the worker too.
                    kill(pid, &pidfd);
                    let _ = sys::wait(pid);
                }
            }
            Err(err) => {
                let errno = err.raw_os_error().unwrap_or(sys::EIO);
                let _ = protocol::write_record(&mut status, Record::ForkFailed(errno));
            }
        }
        // The caller, woken by the record, often waits for this very CPU (the kernel woke the
        // server where the caller ran): let it take its worker first, and fork the next spare,
        // which takes a while, after.
        std::thread::yield_now();
        self.fork_spare();
        true
    }

    /// Forks a worker on `ends`, and closes them here.
    fn fork_worker(&self, ends: Ends, status: &File) -> io::Result<(Pid, OwnedFd)> {
        let inherited = self.inherited(Some(status.as_raw_fd()));
        let server = sys::getpid();
        // SAFETY: the server has one thread. The child runs `worker::serve`, which ends in
        // `_exit`.
        let pid = match unsafe { fork_child(&inherited, self.sigpipe.as_ref()) }? {
            Fork::Child => become_worker(ends, Lifeline::DieWith(server)),
            Fork::Parent(pid) => pid,
        };
        drop(ends);
        sys::child_pidfd(pid).map(|pidfd| (pid, pidfd))
    }
}

/// Forks a child of the server, which closes the server's `inherited` descriptors and gives
/// `SIGPIPE` back what it did in the program.
///
/// # Safety
///
/// As [`sys::fork`]'s.
unsafe fn fork_child(inherited: &[RawFd], sigpipe: Option<&SigPipe>) -> io::Result<Fork> {
    // SAFETY: the caller's contract.
    let forked = unsafe { sys::fork(inherited, &[]) }?;
    if let (Fork::Child, Some(sigpipe)) = (&forked, sigpipe) {
        sys::restore_sigpipe(sigpipe);
    }
    Ok(forked)
}

/// Runs [`worker::serve`] on a request's ends. Never returns.
fn become_worker(ends: Ends, lifeline: Lifeline) -> ! {
    worker::serve(&ends.requests, ends.results, ends.ring, lifeline)
}

/// A worker forked ahead of need. It waits on a socket of its own for the descriptors of the
/// next request, so that a request does not wait for a fork: the server hands them over, and
/// forks the next spare once the caller has its worker.
struct Spare {
    pid: Pid,
    pidfd: OwnedFd,
    /// The server's end of the spare's socket.
    link: OwnedFd,
}

impl Spare {
    /// Forks a spare, which closes the server's `inherited` descriptors at once.
    fn fork(inherited: &[RawFd], sigpipe: Option<&SigPipe>) -> io::Result<Spare> {
        let (link, theirs) = sys::packet_pair()?;
        let server = sys::getpid();
        // SAFETY: the server has one thread. The child runs `wait_for_work`, which ends in
        // `_exit`.
        match unsafe { fork_child(inherited, sigpipe) }? {
            Fork::Child => {
                drop(link);
                wait_for_work(theirs, server)
            }
            Fork::Parent(pid) => {
                drop(theirs);
                let pidfd = sys::child_pidfd(pid)?;
                Ok(Spare { pid, pidfd, link })
            }
        }
    }

    /// Makes the spare the worker of `ends` (the caller closes them). `None` if the spare has
    /// died (it is then reaped); its pid and pidfd otherwise.
    fn hand_over(self, ends: &Ends) -> Option<(Pid, OwnedFd)> {
        if protocol::hand_over(self.link.as_fd(), ends).is_err() {
            self.end();
            return None;
        }
        Some((self.pid, self.pidfd))
    }

    /// Kills and reaps the spare.
    fn end(self) {
        kill(self.pid, &self.pidfd);
        let _ = sys::wait(self.pid);
    }

    fn fds(&self) -> [RawFd; 2] {
        [self.pidfd.as_raw_fd(), self.link.as_raw_fd()]
    }
}

/// What a spare worker is called while it waits (`/proc/<pid>/comm`).
const SPARE_NAME: &std::ffi::CStr = c"lp-spare";

/// The spare's life until the server hands it a request. Never returns.
fn wait_for_work(link: OwnedFd, server: Pid) -> ! {
    if !sys::die_with_parent(server) {
        sys::exit_now(0);
    }
    // Named apart while it waits, so that `ps` (and a count of a function's busy workers) can
    // tell it from the workers; it takes the program's name back when it becomes one.
    let name = sys::rename_thread(SPARE_NAME);
    // The server hung up (it is ending), or the request is malformed: nothing to do.
    let Some(ends) = protocol::take_over(link.as_fd()) else {
        sys::exit_now(0)
    };
    drop(link);
    if let Some(name) = name {
        sys::rename_thread(&name);
    }
    // The parent-death signal is set already, for the server.
    become_worker(ends, Lifeline::Arranged)
}
