//! An epoll set: one descriptor that is readable while any descriptor in it is ready, so that
//! tokio's reactor can watch a pool's changing set of workers through one registration. The
//! caller's side only (the `tokio` feature).

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use nix::errno::Errno;
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags};

use super::io_err;

/// An epoll set whose members are level-triggered, except for writability, which is armed
/// once at a time ([`Watch::arm_write`]).
#[derive(Debug)]
pub(crate) struct Watch(Epoll);

impl Watch {
    pub(crate) fn new() -> io::Result<Watch> {
        Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)
            .map(Watch)
            .map_err(io_err)
    }

    /// The set's own descriptor, to give to the reactor (or to a forked child to close).
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.0 .0.as_fd()
    }

    /// Watches `fd` for reading (and hang-ups), until [`forget`](Watch::forget).
    pub(crate) fn add(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
        let event = EpollEvent::new(EpollFlags::EPOLLIN, 0);
        match self.0.add(fd, event) {
            Ok(()) | Err(Errno::EEXIST) => Ok(()),
            Err(errno) => Err(io_err(errno)),
        }
    }

    /// Watches `fd` until it can be written once; after that event, it is watched no more
    /// until armed again.
    pub(crate) fn arm_write(&self, fd: BorrowedFd<'_>) -> io::Result<()> {
        let flags = EpollFlags::EPOLLOUT | EpollFlags::EPOLLONESHOT;
        match self.0.add(fd, EpollEvent::new(flags, 0)) {
            Err(Errno::EEXIST) => {
                let mut event = EpollEvent::new(flags, 0);
                self.0.modify(fd, &mut event).map_err(io_err)
            }
            other => other.map_err(io_err),
        }
    }

    /// Stops watching `fd`; one that is not watched is no error.
    pub(crate) fn forget(&self, fd: BorrowedFd<'_>) {
        let _ = self.0.delete(fd);
    }
}
