//! What the deferred calls return: `MapResult`, `AsyncResult`, `Imap` and `ImapUnordered`.

use std::fmt;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use super::engine::Shared;
use super::feed::{decode, Feed};
use super::jobs::JobId;
use crate::codec::Codec;
use crate::error::Error;
use crate::error::ErrorKind;
use crate::func::Wire;
use crate::worker::Entry;

/// A handle to the results of [`Pool::map_async`](crate::Pool::map_async).
#[must_use = "dropping the handle abandons the results"]
pub struct MapResult<'pool, R> {
    pub(super) shared: &'pool Shared,
    pub(super) job: JobId,
    pub(super) name: &'static str,
    /// The codec of the function's results.
    pub(super) codec: Codec,
    pub(super) results: Vec<Option<Result<R, Error>>>,
    pub(super) len: usize,
    pub(super) _output: PhantomData<fn() -> R>,
}

impl<R> fmt::Debug for MapResult<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MapResult")
            .field("worker", &self.name)
            .field("tasks", &self.len)
            .finish_non_exhaustive()
    }
}

impl<R: Wire> MapResult<'_, R> {
    /// Moves the pool's work along until every task is done or `until` passes; true if done.
    fn drive(&mut self, until: Option<Instant>) -> bool {
        let mut core = self.shared.lock();
        let mut driven = false;
        loop {
            while let Some((index, outcome)) = core.jobs.take_any(self.job) {
                if self.results.len() <= index {
                    self.results.resize_with(index + 1, || None);
                }
                self.results[index] = Some(decode(self.name, self.codec, index, outcome));
            }
            if core.jobs.outstanding(self.job) == 0 {
                return true;
            }
            // Drive at least once, so that `ready` (whose `until` is now) moves the work along.
            if driven && until.is_some_and(|until| Instant::now() >= until) {
                return false;
            }
            core.drive(until);
            driven = true;
        }
    }

    /// Whether every task is done (never blocks).
    pub fn ready(&mut self) -> bool {
        self.drive(Some(Instant::now()))
    }

    /// Waits at most `timeout` for every task to be done; true if they are.
    pub fn wait(&mut self, timeout: Duration) -> bool {
        self.drive(Some(Instant::now() + timeout))
    }

    /// Waits for every task and returns the results in input order.
    ///
    /// # Errors
    ///
    /// The error of the lowest-index task that failed.
    pub fn get(self) -> Result<Vec<R>, Error> {
        self.get_each().into_iter().collect()
    }

    /// Waits for every task and returns each one's outcome, in input order.
    #[must_use]
    pub fn get_each(mut self) -> Vec<Result<R, Error>> {
        self.drive(None);
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

    /// Waits at most `timeout`; if the tasks are not all done by then, kills the workers still
    /// running them and fails with [`Error::is_timeout`].
    ///
    /// # Errors
    ///
    /// As [`get`](MapResult::get), and a timeout.
    pub fn get_timeout(mut self, timeout: Duration) -> Result<Vec<R>, Error> {
        if self.wait(timeout) {
            return self.get();
        }
        self.shared.lock().cancel(self.job, true);
        Err(Error::new(self.name, ErrorKind::Timeout(timeout)))
    }
}

impl<R> Drop for MapResult<'_, R> {
    fn drop(&mut self) {
        // Queued tasks are dropped; running ones finish and their results are discarded.
        self.shared.lock().cancel(self.job, false);
    }
}

/// A handle to the result of [`Pool::apply_async`](crate::Pool::apply_async).
#[must_use = "dropping the handle abandons the result"]
#[derive(Debug)]
pub struct AsyncResult<'pool, R> {
    pub(super) inner: MapResult<'pool, R>,
}

impl<R: Wire> AsyncResult<'_, R> {
    /// Whether the task is done (never blocks).
    pub fn ready(&mut self) -> bool {
        self.inner.ready()
    }

    /// Waits at most `timeout` for the task; true if it is done.
    pub fn wait(&mut self, timeout: Duration) -> bool {
        self.inner.wait(timeout)
    }

    /// Waits for the task and returns its result.
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

/// Makes one-argument inputs into argument tuples.
type Tupled<I> = std::iter::Map<I, fn(<I as Iterator>::Item) -> (<I as Iterator>::Item,)>;

/// The iterator of [`Pool::imap`](crate::Pool::imap): each task's outcome, in input order.
#[must_use = "iterators do nothing unless consumed"]
pub struct Imap<'pool, I: Iterator, R> {
    shared: &'pool Shared,
    feed: Feed<Tupled<I>>,
    job: JobId,
    name: &'static str,
    /// The codec of the function's results.
    codec: Codec,
    /// Tasks yielded so far.
    yielded: usize,
    /// How far past the next outcome to yield the feed may run.
    window: usize,
    _output: PhantomData<fn() -> R>,
}

impl<I: Iterator, R> fmt::Debug for Imap<'_, I, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Imap")
            .field("worker", &self.name)
            .field("yielded", &self.yielded)
            .finish_non_exhaustive()
    }
}

impl<'pool, I: Iterator<Item = A>, A: Wire, R: Wire> Imap<'pool, I, R> {
    pub(super) fn new(
        shared: &'pool Shared,
        entry: Entry,
        inputs: I,
        ordered: bool,
        name: &'static str,
    ) -> Self {
        let mut core = shared.lock();
        let job = core.jobs.new_job(ordered);
        let workers = core.settings().workers.max(1);
        let chunk = core.settings().chunk_size.unwrap_or(1);
        if core.is_closed() {
            core.jobs.fail(job, 0, ErrorKind::Closed);
        }
        let closed = core.is_closed();
        drop(core);
        let tuple: fn(A) -> (A,) = |a| (a,);
        let mut feed = Feed::new(job, entry, chunk, inputs.map(tuple));
        if closed {
            feed.stop();
        }
        Imap {
            shared,
            feed,
            job,
            name,
            codec: entry.codec(),
            yielded: 0,
            window: 4 * workers * chunk,
            _output: PhantomData,
        }
    }
}

impl<I: Iterator<Item = A>, A: Wire, R: Wire> Imap<'_, I, R> {
    fn next_outcome(&mut self, ordered: bool) -> Option<(usize, Result<R, Error>)> {
        let mut core = self.shared.lock();
        loop {
            while self.feed.next < self.yielded + self.window
                && core.wants_more()
                && self.feed.feed(&mut core)
            {}
            let taken = if ordered {
                core.jobs.take_next(self.job)
            } else {
                core.jobs.take_any(self.job)
            };
            if let Some((index, outcome)) = taken {
                self.yielded += 1;
                return Some((index, decode(self.name, self.codec, index, outcome)));
            }
            if self.feed.is_done() && core.jobs.outstanding(self.job) == 0 {
                return None;
            }
            core.drive(None);
        }
    }
}

impl<I: Iterator<Item = A>, A: Wire, R: Wire> Iterator for Imap<'_, I, R> {
    type Item = Result<R, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_outcome(true).map(|(_, result)| result)
    }
}

impl<I: Iterator, R> Drop for Imap<'_, I, R> {
    fn drop(&mut self) {
        self.shared.lock().cancel(self.job, false);
    }
}

/// The iterator of [`Pool::imap_unordered`](crate::Pool::imap_unordered): `(input index, outcome)` in the order tasks finish.
#[must_use = "iterators do nothing unless consumed"]
#[derive(Debug)]
pub struct ImapUnordered<'pool, I: Iterator, R>(pub(super) Imap<'pool, I, R>);

impl<I: Iterator<Item = A>, A: Wire, R: Wire> Iterator for ImapUnordered<'_, I, R> {
    type Item = (usize, Result<R, Error>);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next_outcome(false)
    }
}
