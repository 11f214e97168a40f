//! Awaiting workers from tokio (the `tokio` feature): `handle.await` runs a [`JoinFuture`], which
//! waits on the reactor, not on a thread. Caller's side. (Awaited pool calls are in
//! `pool/awaiting.rs`, with the rest of the pool.)

use std::fmt;
use std::future::{Future, IntoFuture};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use crate::error::Error;
use crate::error::ErrorKind;
use crate::func::Wire;
use crate::spawn::JoinHandle;
use crate::sys::Exit;

/// A descriptor that a [`JoinHandle`] owns, lent to tokio's reactor to watch. It never closes
/// the descriptor: the handle does, after the watch has ended.
#[derive(Debug)]
struct Lent(RawFd);

impl AsRawFd for Lent {
    fn as_raw_fd(&self) -> RawFd {
        self.0
    }
}

/// Registers `fd` with the reactor, unless `slot` holds its registration already.
///
/// # Safety
///
/// `fd` must stay open, and refer to the same file, until the registration in `slot` is
/// dropped.
unsafe fn watch<'a>(
    slot: &'a mut Option<AsyncFd<Lent>>,
    fd: BorrowedFd<'_>,
) -> io::Result<&'a AsyncFd<Lent>> {
    let watched = match slot.take() {
        Some(watched) => watched,
        // SAFETY: the caller keeps `fd` open and unchanged while the registration lives.
        None => unsafe {
            AsyncFd::register_with_interest(Lent(fd.as_raw_fd()), Interest::READABLE)?
        },
    };
    Ok(slot.insert(watched))
}

/// The future of `handle.await`, from a [`JoinHandle`] (available with the `tokio` feature).
///
/// It resolves to what [`JoinHandle::join`] would return, without blocking a thread: tokio's
/// reactor tells it when the worker's result pipe has bytes and when the worker has ended.
///
/// ```
/// use lambda_parallel::lambda_parallel;
///
/// #[lambda_parallel]
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// # #[cfg(feature = "tokio")]
/// async fn handler() -> Result<u64, lambda_parallel::Error> {
///     let a = square::spawn(3)?;
///     let b = square::spawn(4)?;
///     Ok(a.await? + b.await?)
/// }
///
/// # #[cfg(feature = "tokio")]
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
/// assert_eq!(runtime.block_on(handler())?, 25);
/// # Ok(())
/// # }
/// # #[cfg(not(feature = "tokio"))]
/// # fn main() {}
/// ```
///
/// # Dropping and timeouts
///
/// Dropping the future kills the worker, as dropping the handle does. So
/// `tokio::time::timeout(limit, handle)` is the async [`JoinHandle::join_timeout`]: when the time
/// is up, the worker is killed. The drop does not wait for the kernel to tear the killed
/// process down: on a runtime, it is reaped on one of tokio's blocking threads (or, for a
/// worker of the fork server, by the server), so for a few milliseconds after the drop it may
/// still show in `/proc`. A future that completed has reaped its worker already, having waited
/// on the reactor for that too; or, for a worker of the fork server whose outcome arrived, left
/// it to the server to reap, as [`JoinHandle::join`] does.
///
/// # Panics
///
/// Polling panics outside a tokio runtime with IO enabled (`enable_io`, or `enable_all`), as
/// tokio's own IO types do.
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct JoinFuture<T> {
    // The registrations come before `handle`, so they drop first: each is taken off the reactor
    // while the handle still holds its descriptor open.
    pipe: Option<AsyncFd<Lent>>,
    pidfd: Option<AsyncFd<Lent>>,
    /// The status socket of a worker the fork server reaps (see `Child::exit_fd`).
    status: Option<AsyncFd<Lent>>,
    /// The pidfd has been readable: the worker has ended.
    ended: bool,
    /// What receiving gave, once it is over; then the future waits to reap the worker.
    received: Option<Result<bool, ErrorKind>>,
    handle: JoinHandle<T>,
}

impl<T> fmt::Debug for JoinFuture<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinFuture")
            .field("handle", &self.handle)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

/// `my_fn::spawn(x)?.await`: waits for the worker without blocking a thread. Available with
/// the `tokio` feature; see [`JoinFuture`].
impl<T: Wire> IntoFuture for JoinHandle<T> {
    type Output = Result<T, Error>;
    type IntoFuture = JoinFuture<T>;

    fn into_future(self) -> JoinFuture<T> {
        JoinFuture {
            pipe: None,
            pidfd: None,
            status: None,
            ended: false,
            received: None,
            handle: self,
        }
    }
}

impl<T: Wire> Future for JoinFuture<T> {
    type Output = Result<T, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let received = match this.received.take() {
            Some(received) => received,
            None => ready!(this.poll_receive(cx)),
        };
        if let Some(joined) = this.handle.finish_early(&received) {
            return Poll::Ready(joined);
        }
        match this.poll_reap(cx) {
            Poll::Ready(Ok(exit)) => Poll::Ready(this.handle.finish(received, exit)),
            Poll::Ready(Err(err)) => Poll::Ready(Err(this.handle.error(ErrorKind::ExitLost(err)))),
            Poll::Pending => {
                this.received = Some(received);
                Poll::Pending
            }
        }
    }
}

impl<T> JoinFuture<T> {
    /// The handle this future joins: to kill its worker (`JoinSet::abort_all`).
    pub(crate) fn handle_mut(&mut self) -> &mut JoinHandle<T> {
        &mut self.handle
    }
}

impl<T: Wire> JoinFuture<T> {
    /// [`JoinHandle::receive`], with the reactor in place of `poll`.
    fn poll_receive(&mut self, cx: &mut Context<'_>) -> Poll<Result<bool, ErrorKind>> {
        let JoinFuture {
            pipe,
            pidfd,
            ended,
            handle,
            ..
        } = self;
        // SAFETY: the descriptor is the handle's, which this future owns; it drops the
        // registrations before the handle (field order), and the handle never replaces it.
        let pipe = unsafe { watch(pipe, handle.pipe.as_fd()) }.map_err(ErrorKind::Io)?;
        // SAFETY: as for the pipe.
        let pidfd = unsafe { watch(pidfd, handle.child.pidfd.as_fd()) }.map_err(ErrorKind::Io)?;
        loop {
            // Readiness is taken before the read, so that clearing it after a read that found
            // the pipe empty cannot lose the news of bytes that came after that read.
            let readable = match pipe.poll_read_ready(cx) {
                Poll::Ready(guard) => Some(guard.map_err(ErrorKind::Io)?),
                Poll::Pending => None,
            };
            // An ended process stays ended: this readiness is never cleared.
            if !*ended && pidfd.poll_read_ready(cx).is_ready() {
                *ended = true;
            }
            if let Some(received) = handle.receive_step(*ended)? {
                return Poll::Ready(Ok(received));
            }
            match readable {
                Some(mut guard) => guard.clear_ready(),
                // Both descriptors were pending, so the task is woken when either is readable.
                None => return Poll::Pending,
            }
        }
    }

    /// Waits, on the reactor, until reaping will not block, then reaps.
    fn poll_reap(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Exit>> {
        let JoinFuture {
            pidfd,
            status,
            handle,
            ..
        } = self;
        if let Some(exit) = handle.child.exit {
            return Poll::Ready(Ok(exit));
        }
        let exit_fd = handle.child.exit_fd();
        let slot = if exit_fd.as_raw_fd() == handle.child.pidfd.as_raw_fd() {
            pidfd
        } else {
            status
        };
        // Readable once the process has ended (a pidfd) or its exit record has come (the fork
        // server's status socket); it stays so until the reap, so the readiness is not cleared.
        // SAFETY: as in `poll_receive`: the handle's descriptor outlives the registration.
        let watched = unsafe { watch(slot, exit_fd) }?;
        let _readable = ready!(watched.poll_read_ready(cx))?;
        Poll::Ready(handle.child.reap())
    }
}
