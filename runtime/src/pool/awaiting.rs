//! Pool calls awaited on tokio's reactor (the `tokio` feature): the futures of [`MapResult`]
//! and [`AsyncResult`], and [`Imap`] and [`ImapUnordered`] as streams. Caller's side.
//!
//! An awaited call waits as a blocking one does ([`Shared::turn`]), without blocking: it drives
//! a step of the engine that only looks ([`Driver::step_now`](super::engine::Driver::step_now)), then sleeps until the reactor
//! says a worker has news (the engine's epoll set of every worker's descriptors, which stays
//! readable while any of them is), until a task's timeout or the pool's deadline falls (a
//! tokio timer), or until another caller's step has news (its waker).

use std::collections::VecDeque;
use std::fmt;
use std::future::{Future, IntoFuture};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_core::Stream;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use super::engine::Shared;
use super::handles::{AsyncResult, Imap, ImapUnordered, MapResult};
use crate::error::{copy_io_error, Error, ErrorKind};
use crate::func::Wire;
use crate::proc::held::Kept;

/// How one awaited call waits for the pool.
#[derive(Default)]
pub(crate) struct Waiting {
    /// Keeps the duplicate out of every worker (before `watch`: it must go first).
    kept: Option<Kept>,
    /// A duplicate of the engine's epoll set, registered with the reactor.
    watch: Option<AsyncFd<OwnedFd>>,
    /// Wakes the call when a task's timeout or the pool's deadline falls.
    timer: Option<(Instant, Pin<Box<tokio::time::Sleep>>)>,
    /// This call drove the last step, which ended with the queue's push count given: look at
    /// the outcomes before driving another, unless batches were queued since.
    drove: Option<u64>,
}

impl fmt::Debug for Waiting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Waiting")
            .field("watching", &self.watch.is_some())
            .finish_non_exhaustive()
    }
}

impl Waiting {
    /// One turn of an awaited call that saw `epoch` when it last took its outcomes: `Ready`
    /// when it should look at them again, `Pending` when its waker is registered with the
    /// reactor, its timer or the pool.
    pub(crate) fn poll_turn(
        &mut self,
        cx: &mut Context<'_>,
        shared: &Shared,
        epoch: u64,
    ) -> Poll<io::Result<()>> {
        let looked = match self.drove.take() {
            // Batches queued since (by this call's own feed, say) go out with no step but one
            // this call drives: no worker has news of them.
            Some(pushes) => shared.state().jobs.pushes() == pushes,
            None => false,
        };
        if !looked {
            if let Some(mut driver) = shared.try_drive() {
                let stepped = driver.step_now();
                if self.watch.is_none() {
                    let fd = driver.watch()?;
                    self.kept = Some(Kept::new(&[fd.as_raw_fd()]));
                    // SAFETY: the registration owns the descriptor (its own duplicate of the
                    // epoll set's), so it stays open until the registration is dropped.
                    let watch = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) };
                    self.watch = Some(watch?);
                }
                drop(driver);
                self.drove = (!stepped.again).then_some(stepped.pushes);
                self.set_timer(stepped.expiry);
                return Poll::Ready(Ok(()));
            }
        }
        if let Some(watch) = &self.watch {
            if let Poll::Ready(guard) = watch.poll_read_ready(cx) {
                // Cleared before the step that reads: news after this wakes the reactor again.
                guard?.clear_ready();
                return Poll::Ready(Ok(()));
            }
        }
        if let Some((_, timer)) = &mut self.timer {
            if timer.as_mut().poll(cx).is_ready() {
                self.timer = None;
                return Poll::Ready(Ok(()));
            }
        }
        if shared.state().park_waker(epoch, cx.waker()) {
            Poll::Pending
        } else {
            // A step ended since the outcomes were taken: they may have come.
            Poll::Ready(Ok(()))
        }
    }

    fn set_timer(&mut self, expiry: Option<Instant>) {
        match expiry {
            None => self.timer = None,
            Some(at) if self.timer.as_ref().is_some_and(|(set, _)| *set == at) => {}
            Some(at) => {
                let sleep = tokio::time::sleep_until(tokio::time::Instant::from_std(at));
                self.timer = Some((at, Box::pin(sleep)));
            }
        }
    }
}

/// The future of `map_result.each()`: every task's outcome, in input order, as
/// [`MapResult::get_each`] returns them, waited for on tokio's reactor (the `tokio` feature).
///
/// Dropping it cancels the call, as dropping the [`MapResult`] does: tasks not yet started are
/// dropped, and those running finish and their results are discarded. To kill them instead,
/// give the pool a [`task_timeout`](crate::PoolBuilder::task_timeout) or a
/// [`deadline`](crate::Pool::set_deadline).
///
/// # Panics
///
/// Polling panics outside a tokio runtime with IO enabled, as tokio's own IO types do, and,
/// when the pool has a task timeout or a deadline, without its timer enabled (`enable_all`
/// enables both).
#[must_use = "futures do nothing unless you `.await` or poll them"]
pub struct EachFuture<R> {
    result: MapResult<R>,
    arrived: VecDeque<(usize, super::jobs::Outcome)>,
    waiting: Waiting,
}

impl<R> fmt::Debug for EachFuture<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EachFuture")
            .field("result", &self.result)
            .finish_non_exhaustive()
    }
}

// Nothing in it is pinned: the outcomes are moved about by value, never polled in place.
impl<R> Unpin for EachFuture<R> {}

impl<R> EachFuture<R> {
    pub(super) fn new(result: MapResult<R>) -> Self {
        EachFuture {
            result,
            arrived: VecDeque::new(),
            waiting: Waiting::default(),
        }
    }
}

impl<R: Wire> Future for EachFuture<R> {
    type Output = Vec<Result<R, Error>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        loop {
            let (done, epoch) = this.result.take(&mut this.arrived);
            this.result.decode(&mut this.arrived);
            if done {
                return Poll::Ready(this.result.finish());
            }
            match this.waiting.poll_turn(cx, &this.result.shared, epoch) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(err)) => {
                    // The reactor would not watch the pool: what has not arrived fails so.
                    let name = this.result.name;
                    let mut outcomes = this.result.finish();
                    for (index, outcome) in outcomes.iter_mut().enumerate() {
                        if outcome.as_ref().is_err_and(Error::is_closed) {
                            let kind = ErrorKind::Io(copy_io_error(&err));
                            *outcome = Err(Error::new(name, kind).with_task(index));
                        }
                    }
                    return Poll::Ready(outcomes);
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

/// The future of `map_result.await`: the results in input order, or the error of the
/// lowest-index task that failed, as [`MapResult::get`] (the `tokio` feature). See
/// [`EachFuture`] for dropping it, and for when polling panics.
#[must_use = "futures do nothing unless you `.await` or poll them"]
#[derive(Debug)]
pub struct MapFuture<R>(EachFuture<R>);

impl<R: Wire> Future for MapFuture<R> {
    type Output = Result<Vec<R>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let each = Pin::new(&mut self.get_mut().0);
        each.poll(cx).map(|outcomes| outcomes.into_iter().collect())
    }
}

/// `pool.map_async(f, inputs)?.await`: waits on tokio's reactor, with no thread blocked (the
/// `tokio` feature). The future owns the handle, so it is `Send + 'static` and can be
/// `tokio::spawn`ed; dropping it cancels the call. See [`EachFuture`].
///
/// ```
/// use std::future::IntoFuture;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
/// let pool = lambda_parallel::Pool::new(2)?;
/// let squares = pool.map_async(|x: u32| x * x, [1, 2, 3])?;
/// let squares = runtime.block_on(runtime.spawn(squares.into_future()))??;
/// assert_eq!(squares, [1, 4, 9]);
/// # Ok(())
/// # }
/// ```
impl<R: Wire> IntoFuture for MapResult<R> {
    type Output = Result<Vec<R>, Error>;
    type IntoFuture = MapFuture<R>;

    fn into_future(self) -> MapFuture<R> {
        MapFuture(self.each())
    }
}

/// The future of `async_result.await`: the task's result, as [`AsyncResult::get`] (the
/// `tokio` feature). See [`EachFuture`] for dropping it, and for when polling panics.
#[must_use = "futures do nothing unless you `.await` or poll them"]
#[derive(Debug)]
pub struct ApplyFuture<R>(EachFuture<R>);

impl<R: Wire> Future for ApplyFuture<R> {
    type Output = Result<R, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let each = Pin::new(&mut self.get_mut().0);
        each.poll(cx).map(|mut outcomes| {
            outcomes
                .pop()
                .unwrap_or_else(|| unreachable!("one task gives one outcome"))
        })
    }
}

/// `pool.apply_async(f, args)?.await`: waits on tokio's reactor (the `tokio` feature).
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
/// let pool = lambda_parallel::Pool::new(1)?;
/// let sum = runtime.block_on(async { pool.apply_async(|a: u32, b: u32| a + b, (2, 3))?.await })?;
/// assert_eq!(sum, 5);
/// # Ok(())
/// # }
/// ```
impl<R: Wire> IntoFuture for AsyncResult<R> {
    type Output = Result<R, Error>;
    type IntoFuture = ApplyFuture<R>;

    fn into_future(self) -> ApplyFuture<R> {
        ApplyFuture(self.inner.each())
    }
}

/// `pool.imap(f, inputs)` as a stream (the `tokio` feature): the same outcomes as the
/// iterator, in input order, waited for on the reactor. Inputs are read, and encoded, as the
/// stream is polled, with at most a few batches per worker in flight.
///
/// ```
/// use futures_core::Stream;
/// use std::pin::Pin;
/// use std::task::{Context, Poll};
///
/// /// `StreamExt::next`, without the dependency.
/// async fn next<S: Stream + Unpin>(stream: &mut S) -> Option<S::Item> {
///     std::future::poll_fn(|cx: &mut Context<'_>| Pin::new(&mut *stream).poll_next(cx)).await
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
/// let pool = lambda_parallel::Pool::new(2)?;
/// let mut squares = pool.imap(|x: u64| x * x, 1..=100);
/// let total = runtime.block_on(async {
///     let mut total = 0;
///     while let Some(square) = next(&mut squares).await {
///         total += square?;
///     }
///     Ok::<_, lambda_parallel::Error>(total)
/// })?;
/// assert_eq!(total, 338_350);
/// # Ok(())
/// # }
/// ```
impl<I: Iterator<Item = A> + Unpin, A: Wire, R: Wire> Stream for Imap<I, R> {
    type Item = Result<R, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut()
            .poll_outcome(cx, true)
            .map(|next| next.map(|(_, result)| result))
    }
}

/// `pool.imap_unordered(f, inputs)` as a stream (the `tokio` feature): `(input index,
/// outcome)` in the order tasks finish. See [`Imap`]'s stream.
impl<I: Iterator<Item = A> + Unpin, A: Wire, R: Wire> Stream for ImapUnordered<I, R> {
    type Item = (usize, Result<R, Error>);

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().0.poll_outcome(cx, false)
    }
}
