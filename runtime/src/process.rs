//! Worker processes: [`Child`] owns one and reaps it.

use std::io;
use std::os::fd::{AsFd, OwnedFd};

use nix::unistd::Pid;

use crate::sys::{self, Exit};

/// A child process that is killed and reaped when dropped, unless it was reaped already.
#[derive(Debug)]
pub(crate) struct Child {
    pub(crate) pid: Pid,
    /// Refers to this process and no other, even once its pid is reused.
    pub(crate) pidfd: OwnedFd,
    pub(crate) exit: Option<Exit>,
}

impl Child {
    pub(crate) fn adopt(pid: Pid) -> io::Result<Child> {
        match sys::pidfd_open(pid) {
            Ok(pidfd) => Ok(Child {
                pid,
                pidfd,
                exit: None,
            }),
            Err(err) => {
                // No pidfd (EMFILE, say): the pid is still ours, since we have not reaped it.
                sys::kill_pid(pid);
                let _ = sys::wait(pid, true);
                Err(err)
            }
        }
    }

    pub(crate) fn kill(&self) -> io::Result<()> {
        if self.exit.is_some() {
            return Ok(());
        }
        sys::pidfd_kill(self.pidfd.as_fd())
    }

    /// Reaps the process, waiting for it to end.
    pub(crate) fn reap(&mut self) -> io::Result<Exit> {
        if let Some(exit) = self.exit {
            return Ok(exit);
        }
        let exit = sys::wait(self.pid, true)?
            .ok_or_else(|| io::Error::other("waitpid returned with the child still running"))?;
        self.exit = Some(exit);
        Ok(exit)
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.exit.is_none() {
            let _ = self.kill();
            let _ = self.reap();
        }
    }
}
