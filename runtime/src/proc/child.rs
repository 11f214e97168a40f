//! The caller's handle to a worker process: [`Child`] owns it, kills it and reaps it, whether
//! this process forked it or the fork server did. Caller side.
//!
//! A `Child` belongs to the process that made it. In a copy of that process made by a raw
//! `fork()`, it is inert: it kills nothing, reaps nothing, and its drop only closes the copy's
//! descriptors (the pid is not that copy's child, and the worker is not its worker).

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};

use super::{held, oom, orphans};
use crate::server::{self, protocol};
use crate::sys::{self, Exit, Pid};

/// A worker process that is killed and reaped when dropped, unless it was reaped already.
#[derive(Debug)]
pub(crate) struct Child {
    pub(crate) pid: Pid,
    /// Refers to this process and no other, even once its pid is reused.
    pub(crate) pidfd: OwnedFd,
    pub(crate) exit: Option<Exit>,
    /// Whether the OOM killer ended it: known once it is reaped.
    oom_killed: bool,
    /// Whether we sent it `SIGKILL` (or asked the fork server to): a `SIGKILL` it dies of is
    /// then no news of the OOM killer.
    killed: AtomicBool,
    /// For a worker the fork server forked (and reaps): where the server reports its end.
    status: Option<File>,
    /// Let go by [`release`](Child::release): the fork server reaps it, and nobody waits.
    released: bool,
    /// The process that made this handle, the only one it acts in.
    owner: Pid,
    /// The key of this worker's descriptors in the process-wide list (`held.rs`).
    held: u64,
}

impl Child {
    /// A child this process forked and has not reaped. Fails (having killed and reaped it) when
    /// no pidfd can be opened for it.
    pub(super) fn adopt(pid: Pid) -> io::Result<Child> {
        Ok(Child {
            pid,
            pidfd: sys::child_pidfd(pid)?,
            exit: None,
            oom_killed: false,
            killed: AtomicBool::new(false),
            status: None,
            released: false,
            owner: sys::getpid(),
            held: held::NONE,
        })
    }

    /// A worker forked by the fork server, which sent a pidfd for it and reports its end on
    /// its status socket.
    pub(super) fn adopt_served(pid: Pid, pidfd: OwnedFd, status: File) -> Child {
        Child {
            pid,
            pidfd,
            exit: None,
            oom_killed: false,
            killed: AtomicBool::new(false),
            status: Some(status),
            released: false,
            owner: sys::getpid(),
            held: held::NONE,
        }
    }

    /// The status socket, for the list of this worker's descriptors.
    pub(super) fn status(&self) -> Option<&File> {
        self.status.as_ref()
    }

    /// Files this worker's descriptors under `key` (`held.rs`), taken off when it drops.
    pub(super) fn set_held(&mut self, key: u64) {
        self.held = key;
    }

    /// Whether this process made the handle (rather than being a forked copy of the one that
    /// did).
    pub(crate) fn is_ours(&self) -> bool {
        sys::getpid() == self.owner
    }

    /// Lets go of a worker the fork server forked, once its outcome is in hand: kills it, should
    /// it still be there (it exits right after sending its outcome), and leaves the reaping to
    /// the server without waiting for its exit record. The server reaps every worker it forks,
    /// so none is left a zombie. Returns `false`, and does nothing, for a worker this process
    /// forked itself: only a `wait` here reaps that one.
    pub(crate) fn release(&mut self) -> bool {
        if self.status.is_none() || self.exit.is_some() {
            return false;
        }
        let _ = self.kill();
        // Closing the status socket tells the server that nobody waits for the exit record
        // (and to kill the worker, should the kill above have been refused).
        self.status = None;
        self.released = true;
        true
    }

    /// Sends the worker `SIGKILL`: through its pidfd, or, where that is refused (a seccomp
    /// filter), by its pid, which names it alone while it is not reaped; for a worker of the
    /// fork server, which reaps it, the server sends it.
    pub(crate) fn kill(&self) -> io::Result<()> {
        if self.exit.is_some() {
            return Ok(());
        }
        if !self.is_ours() {
            return Err(io::Error::other(
                "the worker belongs to another process (this is a forked copy of its caller)",
            ));
        }
        self.killed.store(true, Ordering::Relaxed);
        match sys::pidfd_kill(self.pidfd.as_fd()) {
            Err(err) if sys::is_refused(&err) => match &self.status {
                Some(status) => protocol::ask_kill(status),
                // Not reaped yet (`exit` is `None`, and only this handle reaps it).
                None if !self.released => sys::kill_unreaped(self.pid),
                None => Ok(()),
            },
            killed => killed,
        }
    }

    /// A descriptor that is readable once [`reap`](Child::reap) will not block: the status socket
    /// of a worker the fork server reaps (its exit record has come), else the pidfd (the process
    /// has ended). Only an async waiter uses it.
    #[cfg(feature = "tokio")]
    pub(crate) fn exit_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        match &self.status {
            Some(status) => status.as_fd(),
            None => self.pidfd.as_fd(),
        }
    }

    /// Reaps the process, waiting for it to end.
    pub(crate) fn reap(&mut self) -> io::Result<Exit> {
        if let Some(exit) = self.exit {
            return Ok(exit);
        }
        if !self.is_ours() {
            return Err(io::Error::other(
                "the worker belongs to another process (this is a forked copy of its caller)",
            ));
        }
        let exit = match &mut self.status {
            Some(status) => protocol::read_exit(status).inspect_err(server::bury_if_gone)?,
            None => sys::wait(self.pid)?,
        };
        // Read only for a `SIGKILL` of nobody we know of, so that no other end costs more.
        self.oom_killed = exit == Exit::Signal(sys::SIGKILL)
            && !self.killed.load(Ordering::Relaxed)
            && oom::killed_one();
        self.exit = Some(exit);
        Ok(exit)
    }

    /// Whether the OOM killer ended the worker, once it has been [reaped](Child::reap).
    pub(crate) fn oom_killed(&self) -> bool {
        self.oom_killed
    }
}

/// Whether the calling thread runs async code, where a drop must not wait for a process: a
/// thread of a tokio runtime, or one inside its `block_on`. Without the `tokio` feature the
/// crate has no async side, and a drop may wait as a blocking `join` does.
fn in_async_context() -> bool {
    #[cfg(feature = "tokio")]
    {
        tokio::runtime::Handle::try_current().is_ok()
    }
    #[cfg(not(feature = "tokio"))]
    {
        false
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if !self.is_ours() {
            // A forked copy: the worker, the pid and the list of descriptors are the parent's.
            return;
        }
        // Before any of the worker's descriptors close (the holders' fields drop after this).
        held::remove(self.held);
        if self.exit.is_some() || self.released {
            return;
        }
        let _ = self.kill();
        if !in_async_context() {
            // Sync code: the kernel's teardown of a killed process, milliseconds (and, for a
            // worker of the fork server, the server's report of it).
            let _ = self.reap();
            return;
        }
        if self.status.take().is_none() {
            // Reaped on a blocking thread rather than here (see `orphans.rs`).
            orphans::adopt(self.pid);
            #[cfg(feature = "tokio")]
            drop(tokio::task::spawn_blocking(orphans::reap_all));
        }
        // Else the server reaps it: closing the status socket tells it that nobody waits (and
        // to kill the worker, should the kill above have been refused).
    }
}
