//! What the deferred calls return: `MapResult`, `AsyncResult`, `Imap` and `ImapUnordered`.
//! Each owns a share of its pool (an `Arc`), so it can outlive the `Pool` value it came from
//! and move to another thread or task; their awaitable forms are in `awaiting.rs`.

use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::engine::Shared;
use super::feed::{decode, Feed};
use super::jobs::{JobId, Outcome};
use crate::codec::Codec;
use crate::error::Error;
use crate::error::ErrorKind;
use crate::func::TaskFn;
use crate::func::Wire;

/// A handle to the results of [`Pool::map_async`](crate::Pool::map_async) and
/// [`Pool::starmap_async`](crate::Pool::starmap_async): wait for them with
/// [`get`](MapResult::get), or, with the `tokio` feature, `.await` it.
///
/// It owns a share of the pool, so it is `Send + 'static` and keeps the workers alive.
/// Dropping it cancels the call: tasks not yet started are dropped, and those running finish
/// and their results are discarded.
#[must_use = "dropping the handle abandons the results"]
pub struct MapResult<R> {
    pub(super) shared: Arc<Shared>,
    pub(super) job: JobId,
    pub(super) name: &'static str,
    /// The codec of the function's results.
    pub(super) codec: Codec,
    pub(super) results: Vec<Option<Result<R, Error>>>,
    pub(super) len: usize,
    pub(super) _output: PhantomData<fn() -> R>,
}

impl<R> fmt::Debug for MapResult<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MapResult")
            .field("worker", &self.name)
            .field("tasks", &self.len)
            .finish_non_exhaustive()
    }
}

impl<R: Wire> MapResult<R> {
    /// Takes the outcomes that have arrived (with the state locked: no decoding) and says
    /// whether all have, and the epoch it saw.
    pub(super) fn take(&self, arrived: &mut VecDeque<(usize, Outcome)>) -> (bool, u64) {
        let mut state = self.shared.state();
        state.jobs.take_arrived(self.job, arrived);
        (state.jobs.outstanding(self.job) == 0, state.epoch())
    }

    /// Decodes outcomes that [`take`](MapResult::take) took.
    pub(super) fn decode(&mut self, arrived: &mut VecDeque<(usize, Outcome)>) {
        for (index, outcome) in arrived.drain(..) {
            if self.results.len() <= index {
                self.results.resize_with(index + 1, || None);
            }
            self.results[index] = Some(decode(self.name, self.codec, index, outcome));
        }
    }

    /// Moves the pool's work along until every task is done or `until` passes; true if done.
    fn drive(&mut self, until: Option<Instant>) -> bool {
        let mut arrived = VecDeque::new();
        let mut turned = false;
        loop {
            let (done, epoch) = self.take(&mut arrived);
            self.decode(&mut arrived);
            if done {
                return true;
            }
            // A turn at least, so that `ready` (whose `until` is now) moves the work along.
            if turned && until.is_some_and(|until| Instant::now() >= until) {
                return false;
            }
            self.shared.turn(epoch, until);
            turned = true;
        }
    }

    /// Whether every task is done (never blocks for long: it may drive one step of the pool
    /// that looks and does not sleep).
    ///
    /// ```
    /// # fn main() -> Result<(), lambda_parallel::Error> {
    /// let pool = lambda_parallel::Pool::new(2)?;
    /// let mut result = pool.map_async(|x: u32| x + 1, [1, 2])?;
    /// while !result.ready() {
    ///     std::thread::yield_now();
    /// }
    /// assert_eq!(result.get()?, [2, 3]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn ready(&mut self) -> bool {
        self.drive(Some(Instant::now()))
    }

    /// Waits at most `timeout` for every task to be done; true if they are.
    ///
    /// ```
    /// # fn main() -> Result<(), lambda_parallel::Error> {
    /// let pool = lambda_parallel::Pool::new(2)?;
    /// let mut result = pool.map_async(|x: u32| x + 1, [1, 2])?;
    /// assert!(result.wait(std::time::Duration::from_secs(60)));
    /// # Ok(())
    /// # }
    /// ```
    pub fn wait(&mut self, timeout: Duration) -> bool {
        self.drive(Some(Instant::now() + timeout))
    }

    /// Waits for every task and returns the results in input order.
    ///
    /// ```
    /// # fn main() -> Result<(), lambda_parallel::Error> {
    /// let pool = lambda_parallel::Pool::new(2)?;
    /// let squares = pool.map_async(|x: u32| x * x, [1, 2, 3])?;
    /// assert_eq!(squares.get()?, [1, 4, 9]);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// The error of the lowest-index task that failed.
    pub fn get(self) -> Result<Vec<R>, Error> {
        self.get_each().into_iter().collect()
    }

    /// Waits for every task and returns each one's outcome, in input order.
    ///
    /// ```
    /// # fn main() -> Result<(), lambda_parallel::Error> {
    /// let pool = lambda_parallel::Pool::new(2)?;
    /// let outcomes = pool.map_async(|x: u32| 10 / x, [1, 0])?.get_each();
    /// assert_eq!(*outcomes[0].as_ref().unwrap(), 10);
    /// assert!(outcomes[1].as_ref().unwrap_err().is_panic());
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn get_each(mut self) -> Vec<Result<R, Error>> {
        self.drive(None);
        self.finish()
    }

    /// Every outcome, once all have arrived: a task with none (the pool was terminated)
    /// fails as closed.
    pub(super) fn finish(&mut self) -> Vec<Result<R, Error>> {
        let mut results = std::mem::take(&mut self.results);
        results.resize_with(self.len, || None);
        let name = self.name;
        results
            .into_iter()
            .enumerate()
            .map(|(index, result)| {
                result.unwrap_or_else(|| Err(Error::new(name, ErrorKind::Closed).with_task(index)))
            })
            .collect()
    }

    #[cfg(feature = "tokio")]
    /// The awaitable form of [`get_each`](MapResult::get_each): every task's outcome, in input
    /// order (the `tokio` feature). `.await` on the handle itself is that of
    /// [`get`](MapResult::get).
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    /// let pool = lambda_parallel::Pool::new(2)?;
    /// let outcomes = runtime.block_on(async { pool.map_async(|x: u32| 12 / x, [4, 0]).map(|r| r.each()) })?;
    /// let outcomes = runtime.block_on(outcomes);
    /// assert!(outcomes[0].is_ok() && outcomes[1].is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn each(self) -> super::awaiting::EachFuture<R> {
        super::awaiting::EachFuture::new(self)
    }

    /// Waits at most `timeout`; if the tasks are not all done by then, kills the workers still
    /// running them and fails with [`Error::is_timeout`].
    ///
    /// ```
    /// # fn main() -> Result<(), lambda_parallel::Error> {
    /// let pool = lambda_parallel::Pool::new(1)?;
    /// let stuck = pool.map_async(|()| std::thread::sleep(std::time::Duration::MAX), [()])?;
    /// let err = stuck.get_timeout(std::time::Duration::from_millis(50)).unwrap_err();
    /// assert!(err.is_timeout());
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`get`](MapResult::get), and a timeout.
    pub fn get_timeout(mut self, timeout: Duration) -> Result<Vec<R>, Error> {
        if self.wait(timeout) {
            return self.get();
        }
        self.shared.cancel(self.job, true);
        Err(Error::new(self.name, ErrorKind::Timeout(timeout)))
    }
}

impl<R> Drop for MapResult<R> {
    fn drop(&mut self) {
        // Queued tasks are dropped; running ones finish and their results are discarded.
        self.shared.cancel(self.job, false);
    }
}

/// A handle to the result of [`Pool::apply_async`](crate::Pool::apply_async): wait for it
/// with [`get`](AsyncResult::get), or, with the `tokio` feature, `.await` it. Owned, and
/// cancelled when dropped, as a [`MapResult`].
#[must_use = "dropping the handle abandons the result"]
#[derive(Debug)]
pub struct AsyncResult<R> {
    pub(super) inner: MapResult<R>,
}

impl<R: Wire> AsyncResult<R> {
    /// Whether the task is done (never blocks for long).
    ///
    /// ```
    /// # fn main() -> Result<(), lambda_parallel::Error> {
    /// let pool = lambda_parallel::Pool::new(1)?;
    /// let mut result = pool.apply_async(|x: u32| x + 1, (1,))?;
    /// while !result.ready() {
    ///     std::thread::yield_now();
    /// }
    /// assert_eq!(result.get()?, 2);
    /// # Ok(())
    /// # }
    /// ```
    pub fn ready(&mut self) -> bool {
        self.inner.ready()
    }

    /// Waits at most `timeout` for the task; true if it is done.
    ///
    /// ```
    /// # fn main() -> Result<(), lambda_parallel::Error> {
    /// let pool = lambda_parallel::Pool::new(1)?;
    /// let mut result = pool.apply_async(|x: u32| x + 1, (1,))?;
    /// assert!(result.wait(std::time::Duration::from_secs(60)));
    /// # Ok(())
    /// # }
    /// ```
    pub fn wait(&mut self, timeout: Duration) -> bool {
        self.inner.wait(timeout)
    }

    /// Waits for the task and returns its result.
    ///
    /// ```
    /// # fn main() -> Result<(), lambda_parallel::Error> {
    /// let pool = lambda_parallel::Pool::new(1)?;
    /// assert_eq!(pool.apply_async(|a: u32, b: u32| a * b, (6, 7))?.get()?, 42);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// When the task failed: see [`Error`].
    pub fn get(self) -> Result<R, Error> {
        let mut results = self.inner.get_each();
        results
            .pop()
            .unwrap_or_else(|| unreachable!("one task gives one outcome"))
    }

    /// Waits at most `timeout`; if the task is not done by then, kills the worker running it and
    /// fails with [`Error::is_timeout`].
    ///
    /// ```
    /// # fn main() -> Result<(), lambda_parallel::Error> {
    /// let pool = lambda_parallel::Pool::new(1)?;
    /// let stuck = pool.apply_async(|()| std::thread::sleep(std::time::Duration::MAX), ((),))?;
    /// assert!(stuck.get_timeout(std::time::Duration::from_millis(50)).unwrap_err().is_timeout());
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`get`](AsyncResult::get), and a timeout.
    pub fn get_timeout(self, timeout: Duration) -> Result<R, Error> {
        let mut results = self.inner.get_timeout(timeout)?;
        results
            .pop()
            .ok_or_else(|| unreachable!("one task gives one outcome"))
    }
}

/// How long a batch of a stream (`imap`, `imap_unordered`) should keep a worker busy, when the
/// user did not choose a batch size; see [`Imap::adapt`].
const STREAM_BATCH_TIME: Duration = Duration::from_micros(500);

/// The largest batch a stream grows to, which bounds what it holds ahead of its consumer.
const MAX_STREAM_CHUNK: usize = 1024;

/// Makes one-argument inputs into argument tuples.
type Tupled<I> = std::iter::Map<I, fn(<I as Iterator>::Item) -> (<I as Iterator>::Item,)>;

/// The iterator of [`Pool::imap`](crate::Pool::imap): each task's outcome, in input order.
/// With the `tokio` feature, `into_stream` makes it a `futures_core::Stream` of the same items, which waits on the reactor; either way, at most a
/// few batches per worker are in flight.
///
/// It owns a share of the pool. Dropping it cancels the tasks not yet started.
#[must_use = "iterators do nothing unless consumed"]
pub struct Imap<I: Iterator, R> {
    pub(super) shared: Arc<Shared>,
    pub(super) feed: Feed<Tupled<I>>,
    job: JobId,
    name: &'static str,
    /// The codec of the function's results.
    codec: Codec,
    /// Tasks yielded so far.
    yielded: usize,
    /// How far past the next outcome to yield the feed may run.
    window: usize,
    /// When the call started, to size batches by the rate of outcomes; `None` when the user
    /// chose the batch size.
    adapting: Option<Instant>,
    /// How the stream form waits on the reactor.
    #[cfg(feature = "tokio")]
    pub(super) waiting: super::awaiting::Waiting,
    _output: PhantomData<fn() -> R>,
}

impl<I: Iterator, R> fmt::Debug for Imap<I, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Imap")
            .field("worker", &self.name)
            .field("yielded", &self.yielded)
            .finish_non_exhaustive()
    }
}

impl<I: Iterator<Item = A>, A: Wire, R: Wire> Imap<I, R> {
    pub(super) fn new<F: TaskFn<(A,), R>>(shared: &Arc<Shared>, inputs: I, ordered: bool) -> Self {
        let workers = shared.settings().workers.max(1);
        let chosen = shared.settings().chunk_size;
        let chunk = chosen.unwrap_or(1);
        let tuple: fn(A) -> (A,) = |a| (a,);
        let feed = match Feed::start::<F, R>(shared, inputs.map(tuple), ordered, Some(chunk)) {
            Ok(feed) => feed,
            Err(inputs) => {
                // One failure, then the end: a job of its own holds it.
                let mut state = shared.state();
                let job = state.jobs.new_job(ordered);
                state.jobs.fail(job, 0, ErrorKind::Closed);
                drop(state);
                let mut feed = Feed::new(job, crate::worker::entry::<F, (A,), R>(), 1, inputs);
                feed.stop();
                feed
            }
        };
        Imap {
            shared: Arc::clone(shared),
            job: feed.job(),
            feed,
            name: crate::func::name::<F>(),
            codec: crate::func::codec::<F, (A,), R>(),
            yielded: 0,
            window: 4 * workers * chunk,
            adapting: chosen.is_none().then(Instant::now),
            #[cfg(feature = "tokio")]
            waiting: super::awaiting::Waiting::default(),
            _output: PhantomData,
        }
    }

    /// Feeds what the window allows, then takes the next outcome (in input order if
    /// `ordered`) if it has arrived; else says whether the call is over, and the epoch seen.
    pub(super) fn try_next(
        &mut self,
        ordered: bool,
    ) -> Result<(usize, Result<R, Error>), (bool, u64)> {
        while self.feed.next < self.yielded + self.window && self.shared.wants_more(self.job) {
            // Once a batch, not once an outcome: it reads the clock.
            self.adapt();
            if !self.feed.feed(&self.shared) {
                break;
            }
        }
        let mut state = self.shared.state();
        let taken = if ordered {
            state.jobs.take_next(self.job)
        } else {
            state.jobs.take_any(self.job)
        };
        if let Some((index, outcome)) = taken {
            drop(state);
            self.yielded += 1;
            return Ok((index, decode(self.name, self.codec, index, outcome)));
        }
        let over = self.feed.is_done() && state.jobs.outstanding(self.job) == 0;
        Err((over, state.epoch()))
    }

    /// Sizes the next batches by the rate at which outcomes have come: a batch should keep a
    /// worker busy for about [`STREAM_BATCH_TIME`], so that its own cost (a request, a
    /// wake-up) is small beside its tasks' while the first outcomes still come soon and no
    /// worker is left with a long batch when the others are done. The window (what the call
    /// holds ahead of its consumer) grows with the batches, up to 4 batches of
    /// [`MAX_STREAM_CHUNK`] tasks a worker.
    fn adapt(&mut self) {
        let Some(started) = self.adapting else {
            return;
        };
        if self.yielded == 0 {
            return;
        }
        let workers = self.shared.settings().workers.max(1);
        // Tasks a worker runs in the batch time, at the rate seen so far (the time a worker
        // spends on a task, as far as the caller can tell: pessimistic while the workers
        // start, or when the consumer is slower than they are).
        let spent = started.elapsed().as_nanos() * workers as u128;
        let chunk = (STREAM_BATCH_TIME.as_nanos() * self.yielded as u128)
            .checked_div(spent)
            .map_or(MAX_STREAM_CHUNK, |chunk| {
                usize::try_from(chunk).unwrap_or(MAX_STREAM_CHUNK)
            });
        let chunk = chunk.clamp(1, MAX_STREAM_CHUNK);
        self.feed.set_chunk(chunk);
        self.window = 4 * workers * chunk;
    }

    /// The stream form's `poll_next`: [`try_next`](Imap::try_next), or a turn on the reactor.
    #[cfg(feature = "tokio")]
    pub(super) fn poll_outcome(
        &mut self,
        cx: &mut std::task::Context<'_>,
        ordered: bool,
    ) -> std::task::Poll<Option<(usize, Result<R, Error>)>> {
        loop {
            let epoch = match self.try_next(ordered) {
                Ok(next) => return std::task::Poll::Ready(Some(next)),
                Err((true, _)) => {
                    self.waiting.stop();
                    return std::task::Poll::Ready(None);
                }
                Err((false, epoch)) => epoch,
            };
            match self.waiting.poll_turn(cx, &self.shared, epoch) {
                std::task::Poll::Ready(Ok(())) => {}
                std::task::Poll::Ready(Err(err)) => {
                    // The reactor would not watch the pool: the stream ends with the reason.
                    self.feed.stop();
                    self.shared.cancel(self.job, false);
                    let err = Error::new(self.name, ErrorKind::Io(err));
                    return std::task::Poll::Ready(Some((self.yielded, Err(err))));
                }
                std::task::Poll::Pending => return std::task::Poll::Pending,
            }
        }
    }

    fn next_outcome(&mut self, ordered: bool) -> Option<(usize, Result<R, Error>)> {
        loop {
            match self.try_next(ordered) {
                Ok(next) => return Some(next),
                Err((true, _)) => return None,
                Err((false, epoch)) => self.shared.turn(epoch, None),
            }
        }
    }
}

impl<I: Iterator<Item = A>, A: Wire, R: Wire> Iterator for Imap<I, R> {
    type Item = Result<R, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_outcome(true).map(|(_, result)| result)
    }
}

impl<I: Iterator, R> Drop for Imap<I, R> {
    fn drop(&mut self) {
        self.shared.cancel(self.job, false);
    }
}

/// The iterator of [`Pool::imap_unordered`](crate::Pool::imap_unordered): `(input index, outcome)` in the order tasks finish.
#[must_use = "iterators do nothing unless consumed"]
#[derive(Debug)]
pub struct ImapUnordered<I: Iterator, R>(pub(super) Imap<I, R>);

impl<I: Iterator<Item = A>, A: Wire, R: Wire> Iterator for ImapUnordered<I, R> {
    type Item = (usize, Result<R, Error>);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next_outcome(false)
    }
}
