//! The caller's handle to a worker process: [`Child`] owns it, kills it and reaps it, whether
//! this process forked it or the fork server did.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};

use crate::server::protocol;
use crate::sys::{self, Exit, Pid};

/// A worker process that is killed and reaped when dropped, unless it was reaped already.
#[derive(Debug)]
pub(crate) struct Child {
    pub(crate) pid: Pid,
    /// Refers to this process and no other, even once its pid is reused.
    pub(crate) pidfd: OwnedFd,
    pub(crate) exit: Option<Exit>,
    /// For a worker the fork server forked (and reaps): where the server reports its end.
    status: Option<File>,
    /// Let go by [`release`](Child::release): the fork server reaps it, and nobody waits.
    released: bool,
}

impl Child {
    /// A child this process forked and has not reaped. Fails (having killed and reaped it) when
    /// no pidfd can be opened for it.
    pub(crate) fn adopt(pid: Pid) -> io::Result<Child> {
        Ok(Child {
            pid,
            pidfd: sys::child_pidfd(pid)?,
            exit: None,
            status: None,
            released: false,
        })
    }

    /// A worker forked by the fork server, which sent a pidfd for it and reports its end on
    /// its status socket.
    pub(crate) fn adopt_served(pid: Pid, pidfd: OwnedFd, status: File) -> Child {
        Child {
            pid,
            pidfd,
            exit: None,
            status: Some(status),
            released: false,
        }
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
        // Closing the status socket tells the server that nobody waits for the exit record.
        self.status = None;
        self.released = true;
        true
    }

    pub(crate) fn kill(&self) -> io::Result<()> {
        if self.exit.is_some() {
            return Ok(());
        }
        sys::pidfd_kill(self.pidfd.as_fd())
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
        let exit = match &mut self.status {
            Some(status) => protocol::read_exit(status)?,
            None => sys::wait(self.pid)?,
        };
        self.exit = Some(exit);
        Ok(exit)
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.exit.is_none() && !self.released {
            let _ = self.kill();
            let _ = self.reap();
        }
    }
}
