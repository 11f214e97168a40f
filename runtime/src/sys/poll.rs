//! Waiting on descriptors: `poll(2)`, for one or two descriptors or many.

use std::io;
use std::os::fd::BorrowedFd;
use std::time::Duration;

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout};

use super::io_err;

/// What [`poll`] saw.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ready {
    /// The first descriptor can be read (or has hung up).
    pub(crate) first: bool,
    /// The second descriptor can be read (for a pidfd: the process has ended).
    pub(crate) second: bool,
}

/// Waits until `first` or `second` is readable or `timeout` passes (`None`: no limit).
pub(crate) fn poll(
    first: BorrowedFd<'_>,
    second: BorrowedFd<'_>,
    timeout: Option<Duration>,
) -> io::Result<Ready> {
    let wanted = PollFlags::POLLIN;
    let mut fds = [PollFd::new(first, wanted), PollFd::new(second, wanted)];
    poll_fds(&mut fds, timeout)?;
    Ok(Ready {
        first: is_ready(&fds[0]),
        second: is_ready(&fds[1]),
    })
}

/// The one `poll(2)` of this crate, over freshly made `fds`. A wait that a signal interrupts
/// returns with nothing ready (the kernel leaves `revents` as it was: empty), and the caller,
/// which loops anyway, looks again.
fn poll_fds(fds: &mut [PollFd<'_>], timeout: Option<Duration>) -> io::Result<()> {
    match nix::poll::poll(fds, poll_timeout(timeout)) {
        Ok(_) | Err(Errno::EINTR) => Ok(()),
        Err(errno) => Err(io_err(errno)),
    }
}

/// Whether `poll` reported anything for `fd`: readable, writable, hung up or in error (so that
/// the caller looks, and sees which).
fn is_ready(fd: &PollFd<'_>) -> bool {
    fd.revents().is_some_and(|revents| !revents.is_empty())
}

/// A poll timeout that never ends a wait before `timeout` has passed (it rounds up to the next
/// millisecond), so that a deadline is never missed by a wait that then spins.
fn poll_timeout(timeout: Option<Duration>) -> PollTimeout {
    match timeout {
        None => PollTimeout::NONE,
        Some(timeout) => {
            let ms = timeout.as_nanos().div_ceil(1_000_000);
            i32::try_from(ms).map_or(PollTimeout::MAX, |ms| {
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
            })
        }
    }
}

/// What to wait for on one descriptor, for [`poll_many`].
#[derive(Clone, Copy, Debug)]
pub(crate) enum Interest {
    Read,
    Write,
}

/// Waits until one of `fds` is ready or `timeout` passes (`None`: no limit), and says for each
/// whether it is ready (hang-ups and errors count as ready, so that the caller looks and sees).
pub(crate) fn poll_many(
    fds: &[(BorrowedFd<'_>, Interest)],
    timeout: Option<Duration>,
    ready: &mut Vec<bool>,
) -> io::Result<()> {
    let mut polled: Vec<PollFd<'_>> = fds
        .iter()
        .map(|(fd, interest)| {
            let flags = match interest {
                Interest::Read => PollFlags::POLLIN,
                Interest::Write => PollFlags::POLLOUT,
            };
            PollFd::new(*fd, flags)
        })
        .collect();
    poll_fds(&mut polled, timeout)?;
    ready.clear();
    ready.extend(polled.iter().map(is_ready));
    Ok(())
}

/// Whether every writer of the pipe whose read end is `fd` has closed it.
pub(crate) fn hung_up(fd: BorrowedFd<'_>) -> bool {
    let mut fds = [PollFd::new(fd, PollFlags::empty())];
    poll_fds(&mut fds, Some(Duration::ZERO)).is_ok()
        && fds[0]
            .revents()
            .is_some_and(|events| events.contains(PollFlags::POLLHUP))
}
