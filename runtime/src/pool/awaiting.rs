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
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
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

/// The pool's registration with one runtime's reactor: a duplicate of the engine's epoll set,
/// shared by every awaited call of the pool on that runtime. One a call would not do: Linux
/// lets an epoll set (the reactor's) hold only about 500 registrations of nested epoll sets
/// that lead to one descriptor, and the 501st call's would fail with `EINVAL`.
///
/// The pool keeps it only while some call holds it, so that a runtime that ends takes its
/// registration with it. A readiness wakes only the call that polled it last; that call steps, and the step wakes
/// every other call that waits (as any step with news does). A call that stops waiting, done
/// or dropped, wakes the others, so that one of them polls the registration again.
pub(crate) struct Registration {
    runtime: tokio::runtime::Id,
    /// The call that polled the readiness last, which the reactor wakes ([`Waiting::id`]);
    /// locked around each poll, so that it names the call whose waker the reactor holds.
    listener: std::sync::Mutex<u64>,
    /// Keeps the duplicate out of every worker (before `watch`: it must go first).
    _kept: Kept,
    watch: AsyncFd<OwnedFd>,
}

impl Registration {
    fn listener(&self) -> std::sync::MutexGuard<'_, u64> {
        self.listener
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("runtime", &self.runtime)
            .finish_non_exhaustive()
    }
}

/// The registration of `shared`'s epoll set with the current runtime's reactor, made on first
/// use; `driver` has the engine, for its epoll set.
fn registration(
    shared: &Shared,
    driver: &mut super::engine::Driver<'_>,
) -> io::Result<Arc<Registration>> {
    let runtime = tokio::runtime::Handle::current().id();
    let mut registrations = shared.registrations();
    registrations.retain(|known| known.strong_count() > 0);
    let known = registrations.iter().filter_map(std::sync::Weak::upgrade);
    if let Some(known) = known.into_iter().find(|known| known.runtime == runtime) {
        return Ok(known);
    }
    let fd = driver.watch()?;
    let kept = Kept::new(&[fd.as_raw_fd()]);
    // SAFETY: the registration owns the descriptor (its own duplicate of the epoll set's), so
    // it stays open until the registration is dropped.
    let watch = unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }?;
    let registration = Arc::new(Registration {
        runtime,
        listener: std::sync::Mutex::new(0),
        _kept: kept,
        watch,
    });
    registrations.push(Arc::downgrade(&registration));
    Ok(registration)
}

/// How one awaited call waits for the pool.
#[derive(Default)]
pub(crate) struct Waiting {
    /// The pool, once this call has waited on it: to wake the other calls when it stops.
    shared: Option<Arc<Shared>>,
    /// Names this call to the registration (never 0).
    id: u64,
    /// The pool's registration with this runtime's reactor.
    watch: Option<Arc<Registration>>,
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

impl Drop for Waiting {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Waiting {
    /// One turn of an awaited call that saw `epoch` when it last took its outcomes: `Ready`
    /// when it should look at them again, `Pending` when its waker is registered with the
    /// reactor, its timer or the pool.
    pub(crate) fn poll_turn(
        &mut self,
        cx: &mut Context<'_>,
        shared: &Arc<Shared>,
        epoch: u64,
    ) -> Poll<io::Result<()>> {
        if self.shared.is_none() {
            static NEXT: AtomicU64 = AtomicU64::new(1);
            self.shared = Some(Arc::clone(shared));
            self.id = NEXT.fetch_add(1, Ordering::Relaxed);
        }
        let looked = match self.drove.take() {
            // Batches queued since (by this call's own feed, say) go out with no step but one
            // this call drives: no worker has news of them.
            Some(pushes) => shared.state().jobs.pushes() == pushes,
            None => false,
        };
        if !looked {
            if let Some(driver) = shared.try_drive() {
                return self.step(shared, driver);
            }
        }
        if let Some(registration) = &self.watch {
            let polled = {
                let mut listener = registration.listener();
                *listener = self.id;
                registration.watch.poll_read_ready(cx)
            };
            match polled {
                Poll::Ready(Ok(mut guard)) => {
                    if let Some(driver) = shared.try_drive() {
                        // Cleared before the step that reads: news after this wakes the
                        // reactor again.
                        guard.clear_ready();
                        return self.step(shared, driver);
                    }
                    // Another caller steps, and may have looked before this news came: the
                    // readiness stays set, and that driver wakes every awaited call when it
                    // lets go, so that one steps for it.
                    drop(guard);
                    let mut state = shared.state();
                    state.unread = true;
                    return if state.park_waker(epoch, cx.waker()) {
                        Poll::Pending
                    } else {
                        Poll::Ready(Ok(()))
                    };
                }
                Poll::Ready(Err(_)) => {
                    // Its runtime is gone (a runtime's id is another's once it ends, and a call
                    // may hold the registration a while): the next turn steps, and registers
                    // with this call's runtime, or fails with why it cannot.
                    shared.forget_registration(registration);
                    self.watch = None;
                    return Poll::Ready(Ok(()));
                }
                Poll::Pending => {}
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

    /// Steps with `driver` (without sleeping), registering the pool with this runtime's reactor
    /// the first time; always `Ready`, for the caller to take its outcomes.
    fn step(
        &mut self,
        shared: &Shared,
        mut driver: super::engine::Driver<'_>,
    ) -> Poll<io::Result<()>> {
        let stepped = driver.step_now();
        if self.watch.is_none() {
            self.watch = Some(registration(shared, &mut driver)?);
        }
        drop(driver);
        self.drove = (!stepped.again).then_some(stepped.pushes);
        self.set_timer(stepped.expiry);
        Poll::Ready(Ok(()))
    }

    /// The call stops waiting (it is done, or dropped): if it was the one the reactor would
    /// have woken, the other calls wake, and one of them polls the registration in its place.
    pub(crate) fn stop(&mut self) {
        if let (Some(shared), Some(registration)) = (self.shared.take(), self.watch.take()) {
            if *registration.listener() == self.id {
                shared.wake_awaited();
            }
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
                this.waiting.stop();
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

/// `pool.imap(f, inputs).into_stream()`: the same outcomes as the iterator, in input order,
/// waited for on tokio's reactor (the `tokio` feature). Inputs are read, and encoded, as the
/// stream is polled, with at most a few batches per worker in flight. Dropping it cancels the
/// tasks not yet started, as dropping the [`Imap`] does.
///
/// A stream of its own rather than a second trait on [`Imap`]: with `StreamExt` in scope, a
/// type that is both an `Iterator` and a `Stream` makes every method they share ambiguous, and
/// without it `imap.next()` in async code would be the blocking `Iterator::next`.
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
/// let mut squares = pool.imap(|x: u64| x * x, 1..=100).into_stream();
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
#[must_use = "streams do nothing unless polled"]
#[derive(Debug)]
pub struct ImapStream<I: Iterator, R>(Imap<I, R>);

/// `pool.imap_unordered(f, inputs).into_stream()`: `(input index, outcome)` in the order tasks
/// finish, waited for on tokio's reactor (the `tokio` feature). See [`ImapStream`].
#[must_use = "streams do nothing unless polled"]
#[derive(Debug)]
pub struct ImapUnorderedStream<I: Iterator, R>(ImapUnordered<I, R>);

impl<I: Iterator, R> Imap<I, R> {
    /// The same call as a `futures_core::Stream`, which waits on tokio's reactor instead of
    /// blocking (the `tokio` feature); see [`ImapStream`].
    pub fn into_stream(self) -> ImapStream<I, R> {
        ImapStream(self)
    }
}

impl<I: Iterator, R> ImapUnordered<I, R> {
    /// The same call as a `futures_core::Stream`, which waits on tokio's reactor instead of
    /// blocking (the `tokio` feature); see [`ImapUnorderedStream`].
    ///
    /// ```
    /// use futures_core::Stream;
    /// use std::pin::Pin;
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    /// let pool = lambda_parallel::Pool::new(2)?;
    /// let mut doubled = pool.imap_unordered(|x: u32| 2 * x, [1, 2, 3]).into_stream();
    /// let mut seen = runtime.block_on(async {
    ///     let mut seen = Vec::new();
    ///     while let Some((index, outcome)) =
    ///         std::future::poll_fn(|cx| Pin::new(&mut doubled).poll_next(cx)).await
    ///     {
    ///         seen.push((index, outcome?));
    ///     }
    ///     Ok::<_, lambda_parallel::Error>(seen)
    /// })?;
    /// seen.sort_unstable();
    /// assert_eq!(seen, [(0, 2), (1, 4), (2, 6)]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn into_stream(self) -> ImapUnorderedStream<I, R> {
        ImapUnorderedStream(self)
    }
}

impl<I: Iterator<Item = A> + Unpin, A: Wire, R: Wire> Stream for ImapStream<I, R> {
    type Item = Result<R, Error>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut()
            .0
            .poll_outcome(cx, true)
            .map(|next| next.map(|(_, result)| result))
    }
}

impl<I: Iterator<Item = A> + Unpin, A: Wire, R: Wire> Stream for ImapUnorderedStream<I, R> {
    type Item = (usize, Result<R, Error>);

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().0 .0.poll_outcome(cx, false)
    }
}
