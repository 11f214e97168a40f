//! A pool of persistent worker processes, with the interface of Python's `multiprocessing.Pool`.

mod core;

use std::fmt;
use std::marker::PhantomData;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use self::core::{Batch, Core, JobId, Outcome, Settings};
use crate::error::ErrorKind;
use crate::outcome;
use crate::task::{self, Entry, TaskFn};
use crate::{Error, Wire};

/// The most argument bytes one batch carries: larger tasks go one to a batch, and the memory a
/// pool holds for queued work stays in proportion to its workers rather than to its input.
const BATCH_BYTES: usize = 1 << 20;

/// The largest automatic batch, in tasks.
const MAX_AUTO_CHUNK: usize = 1 << 14;

/// A pool of persistent worker processes.
///
/// Workers are forked when the pool is built and serve task after task; each task's arguments
/// and result cross a pipe. A worker that crashes costs only the task it was running, which
/// fails with the signal or exit code; a new worker takes its place and the other tasks go on.
/// With a task timeout, a task that runs too long is killed the same way.
///
/// | `multiprocessing.Pool` | `Pool` |
/// |---|---|
/// | `Pool(processes)` | [`Pool::new`], [`Pool::builder`] |
/// | `Pool(0)` (inline, in `lambda_multiprocessing`) | [`Pool::new(0)`](Pool::new) |
/// | `maxtasksperchild` | [`PoolBuilder::max_tasks_per_worker`] |
/// | `map(func, iterable, chunksize)` | [`Pool::map`] (fail-fast), [`Pool::map_each`] (every outcome), [`PoolBuilder::chunk_size`] |
/// | `starmap` | [`Pool::starmap`], [`Pool::starmap_each`] |
/// | `apply` | [`Pool::apply`] |
/// | `apply_async`, `map_async` | [`Pool::apply_async`], [`Pool::map_async`] |
/// | `AsyncResult.ready`, `.wait`, `.get` | [`AsyncResult::ready`], [`AsyncResult::wait`], [`AsyncResult::get`], [`AsyncResult::get_timeout`] |
/// | `imap`, `imap_unordered` | [`Pool::imap`], [`Pool::imap_unordered`] |
/// | `close`, `join`, `terminate` | [`Pool::close`], [`Pool::join`], [`Pool::terminate`], and `Drop` |
///
/// Functions are passed by name: a function item (a `#[lambda_parallel]` function, or any
/// other whose arguments and result are [`Wire`]) or a closure that captures nothing; see
/// [`TaskFn`].
///
/// ```
/// use lambda_parallel::Pool;
///
/// fn square(x: u64) -> u64 {
///     x * x
/// }
///
/// # fn main() -> Result<(), lambda_parallel::Error> {
/// let pool = Pool::new(2)?;
/// assert_eq!(pool.map(square, 1..=4)?, [1, 4, 9, 16]);
/// # Ok(())
/// # }
/// ```
///
/// # Threads
///
/// A pool is `Send + Sync`; calls from several threads are served one at a time. No thread of
/// the pool's own runs in the background: the caller that waits moves the work along.
///
/// # Drop
///
/// Dropping the pool kills its workers (`SIGKILL`) and reaps them, at once: it never waits for
/// a task and never leaves a process behind. [`Pool::join`] first lets running tasks finish.
pub struct Pool {
    core: Mutex<Core>,
    chunk_size: Option<usize>,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("workers", &self.workers())
            .finish_non_exhaustive()
    }
}

/// Options for a [`Pool`], from [`Pool::builder`].
#[derive(Clone, Debug, Default)]
#[must_use = "a builder does nothing until `build` is called"]
pub struct PoolBuilder {
    workers: Option<usize>,
    task_timeout: Option<Duration>,
    max_tasks_per_worker: Option<usize>,
    chunk_size: Option<usize>,
}

impl PoolBuilder {
    /// The number of worker processes; by default, the number of CPUs available
    /// ([`std::thread::available_parallelism`]). `0` runs every task inline, in the calling
    /// thread, still encoding and decoding arguments and results: a mode for unit tests, in
    /// which serialization mistakes show as they would with processes.
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = Some(workers);
        self
    }

    /// Kills a worker whose task runs longer than `timeout`; the task fails with
    /// [`Error::is_timeout`] and a new worker takes the old one's place. Not enforced inline.
    pub fn task_timeout(mut self, timeout: Duration) -> Self {
        self.task_timeout = Some(timeout);
        self
    }

    /// Replaces each worker with a fresh one after it has run `tasks` tasks, to bound what a
    /// leaky library can accumulate (`maxtasksperchild`).
    ///
    /// # Panics
    ///
    /// Panics if `tasks` is 0.
    pub fn max_tasks_per_worker(mut self, tasks: usize) -> Self {
        assert!(tasks > 0, "a worker must be allowed at least one task");
        self.max_tasks_per_worker = Some(tasks);
        self
    }

    /// Sends tasks to workers in batches of `tasks` (`chunksize`), fewer where a batch would
    /// exceed 1 MiB of arguments. By default a call whose input has a known length splits it
    /// into about four batches per worker (as `multiprocessing.Pool.map` does), and one of
    /// unknown length goes one task at a time.
    ///
    /// # Panics
    ///
    /// Panics if `tasks` is 0.
    pub fn chunk_size(mut self, tasks: usize) -> Self {
        assert!(tasks > 0, "a batch must hold at least one task");
        self.chunk_size = Some(tasks);
        self
    }

    /// Forks the workers.
    ///
    /// # Errors
    ///
    /// Fails with [`Error::is_spawn`] when a worker cannot be forked (`EAGAIN`) or its pipes
    /// cannot be made (`EMFILE`).
    pub fn build(self) -> Result<Pool, Error> {
        let workers = match self.workers {
            Some(workers) => workers,
            None => std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        };
        let settings = Settings {
            workers,
            task_timeout: self.task_timeout,
            max_tasks_per_worker: self.max_tasks_per_worker,
        };
        let core = Core::new(settings).map_err(|err| Error::new("pool", ErrorKind::Spawn(err)))?;
        Ok(Pool {
            core: Mutex::new(core),
            chunk_size: self.chunk_size,
        })
    }
}

impl Pool {
    /// A pool of `workers` worker processes, with default options; see [`PoolBuilder::workers`]
    /// for `0`.
    ///
    /// # Errors
    ///
    /// As [`PoolBuilder::build`].
    pub fn new(workers: usize) -> Result<Pool, Error> {
        Pool::builder().workers(workers).build()
    }

    /// Options for a pool.
    pub fn builder() -> PoolBuilder {
        PoolBuilder::default()
    }

    fn lock(&self) -> MutexGuard<'_, Core> {
        // The engine keeps its own state consistent between calls, so a panic elsewhere while
        // the lock was held (in a user's `Serialize`, say) leaves nothing half-changed.
        self.core.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The number of worker processes the pool keeps.
    #[must_use]
    pub fn workers(&self) -> usize {
        self.lock().settings().workers
    }

    /// The process ids of the live workers.
    #[must_use]
    pub fn pids(&self) -> Vec<u32> {
        self.lock().pids()
    }

    /// A deadline for all the pool's work, or none: tasks still running at the deadline are
    /// killed, and tasks not yet started fail, all with [`Error::is_timeout`]. On Lambda, set it
    /// from the invocation's deadline, less a margin, so that work is stopped and reported
    /// before Lambda stops the whole environment.
    pub fn set_deadline(&self, deadline: Option<Instant>) {
        self.lock().set_deadline(deadline);
    }

    /// Calls `f` on every input in the workers and returns the results in input order.
    ///
    /// # Errors
    ///
    /// Fails fast: when a task fails (panics, crashes, times out, or its value cannot cross the
    /// pipe), no more tasks are handed to workers, the tasks they already hold (at most two
    /// batches each) finish, and then the error of the lowest-index failed task is returned
    /// ([`Error::task_index`]): no work goes on behind the caller's back. A worker's own typed
    /// `Err` is a value, not a failure. [`Pool::map_each`] returns every outcome instead.
    pub fn map<F, A, R, I>(&self, f: F, inputs: I) -> Result<Vec<R>, Error>
    where
        F: TaskFn<(A,), R>,
        A: Wire,
        R: Wire,
        I: IntoIterator<Item = A>,
    {
        let _ = f;
        self.run::<F, (A,), R>(inputs.into_iter().map(|a| (a,)), true)
            .into_iter()
            .collect()
    }

    /// Like [`map`](Pool::map), but runs every task and returns each one's outcome: what a
    /// Lambda handler needs to report partial batch failures (`batchItemFailures`).
    pub fn map_each<F, A, R, I>(&self, f: F, inputs: I) -> Vec<Result<R, Error>>
    where
        F: TaskFn<(A,), R>,
        A: Wire,
        R: Wire,
        I: IntoIterator<Item = A>,
    {
        let _ = f;
        self.run::<F, (A,), R>(inputs.into_iter().map(|a| (a,)), false)
    }

    /// Like [`map`](Pool::map), for functions of several arguments: each input is a tuple of
    /// them.
    ///
    /// # Errors
    ///
    /// As [`map`](Pool::map).
    pub fn starmap<F, Args, R, I>(&self, f: F, inputs: I) -> Result<Vec<R>, Error>
    where
        F: TaskFn<Args, R>,
        Args: Wire,
        R: Wire,
        I: IntoIterator<Item = Args>,
    {
        let _ = f;
        self.run::<F, Args, R>(inputs.into_iter(), true)
            .into_iter()
            .collect()
    }

    /// Like [`map_each`](Pool::map_each), for functions of several arguments.
    pub fn starmap_each<F, Args, R, I>(&self, f: F, inputs: I) -> Vec<Result<R, Error>>
    where
        F: TaskFn<Args, R>,
        Args: Wire,
        R: Wire,
        I: IntoIterator<Item = Args>,
    {
        let _ = f;
        self.run::<F, Args, R>(inputs.into_iter(), false)
    }

    /// Calls `f` with `args` in a worker and returns its result.
    ///
    /// # Errors
    ///
    /// When the task fails: see [`Error`].
    pub fn apply<F, Args, R>(&self, f: F, args: Args) -> Result<R, Error>
    where
        F: TaskFn<Args, R>,
        Args: Wire,
        R: Wire,
    {
        let _ = f;
        let mut results = self.run::<F, Args, R>(std::iter::once(args), true);
        results
            .pop()
            .unwrap_or_else(|| unreachable!("one input gives one outcome"))
    }

    /// Submits one call of `f` and returns at once, with a handle to its result.
    ///
    /// # Errors
    ///
    /// Fails if the pool is closed ([`Error::is_closed`]) or the arguments cannot be encoded.
    pub fn apply_async<F, Args, R>(&self, f: F, args: Args) -> Result<AsyncResult<'_, R>, Error>
    where
        F: TaskFn<Args, R>,
        Args: Wire,
        R: Wire,
    {
        let _ = f;
        let inner = self.submit_all::<F, Args, R>(std::iter::once(args))?;
        Ok(AsyncResult { inner })
    }

    /// Submits a call of `f` for every input and returns at once, with a handle to the results.
    /// The inputs are encoded now, all of them; [`imap`](Pool::imap) reads its input as it goes.
    ///
    /// # Errors
    ///
    /// Fails if the pool is closed or an input cannot be encoded.
    pub fn map_async<F, A, R, I>(&self, f: F, inputs: I) -> Result<MapResult<'_, R>, Error>
    where
        F: TaskFn<(A,), R>,
        A: Wire,
        R: Wire,
        I: IntoIterator<Item = A>,
    {
        let _ = f;
        self.submit_all::<F, (A,), R>(inputs.into_iter().map(|a| (a,)))
    }

    /// Calls `f` on every input and yields the outcomes in input order, as they arrive. Inputs
    /// are read as the workers need them, so an input far larger than memory works; outcomes
    /// that arrive ahead of their turn are held (a few batches' worth at most).
    pub fn imap<F, A, R, I>(&self, f: F, inputs: I) -> Imap<'_, I::IntoIter, R>
    where
        F: TaskFn<(A,), R>,
        A: Wire,
        R: Wire,
        I: IntoIterator<Item = A>,
    {
        let _ = f;
        Imap::new(
            self,
            task::entry::<F, (A,), R>(),
            inputs.into_iter(),
            true,
            name::<F>(),
        )
    }

    /// Like [`imap`](Pool::imap), but yields outcomes in the order they arrive, each with the
    /// index of its input.
    pub fn imap_unordered<F, A, R, I>(&self, f: F, inputs: I) -> ImapUnordered<'_, I::IntoIter, R>
    where
        F: TaskFn<(A,), R>,
        A: Wire,
        R: Wire,
        I: IntoIterator<Item = A>,
    {
        let _ = f;
        let entry = task::entry::<F, (A,), R>();
        ImapUnordered(Imap::new(
            self,
            entry,
            inputs.into_iter(),
            false,
            name::<F>(),
        ))
    }

    /// Stops the pool from taking new tasks: later calls fail with [`Error::is_closed`]. Tasks
    /// already submitted still run.
    pub fn close(&self) {
        self.lock().close();
    }

    /// Whether [`close`](Pool::close) was called.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.lock().is_closed()
    }

    /// Closes the pool, lets every task still running finish, then ends the workers and reaps
    /// them.
    pub fn join(self) {
        let mut core = self.lock();
        core.close();
        core.finish();
        core.terminate();
    }

    /// Kills every worker at once and reaps it, as dropping the pool does.
    pub fn terminate(self) {
        drop(self);
    }

    fn chunk_for(&self, workers: usize, hint: (usize, Option<usize>)) -> usize {
        if let Some(chunk) = self.chunk_size {
            return chunk;
        }
        let known = hint.1.unwrap_or(hint.0);
        if known == 0 {
            return 1;
        }
        known.div_ceil(4 * workers.max(1)).clamp(1, MAX_AUTO_CHUNK)
    }

    /// Runs every input to an outcome, stopping early (after the running tasks) on the first
    /// failure if `fail_fast`: then the result holds only that failure.
    fn run<F, Args, R>(
        &self,
        inputs: impl Iterator<Item = Args>,
        fail_fast: bool,
    ) -> Vec<Result<R, Error>>
    where
        F: TaskFn<Args, R>,
        Args: Wire,
        R: Wire,
    {
        let name = name::<F>();
        let mut core = self.lock();
        if core.is_closed() {
            drop(core);
            let closed = || Error::new(name, ErrorKind::Closed);
            if fail_fast {
                return vec![Err(closed())];
            }
            // One outcome per input, as `map_each` promises.
            return (0..inputs.count())
                .map(|index| Err(closed().with_task(index)))
                .collect();
        }
        let job = core.new_job(false);
        let chunk = self.chunk_for(core.settings().workers, inputs.size_hint());
        let mut feed = Feed::new(job, task::entry::<F, Args, R>(), chunk, inputs);
        let mut results: Vec<Option<Result<R, Error>>> = Vec::new();
        let mut first_failure: Option<usize> = None;
        loop {
            while (!fail_fast || first_failure.is_none())
                && core.wants_more()
                && feed.feed(&mut core)
            {}
            while let Some((index, outcome)) = core.take_any(job) {
                let result = decode(name, index, outcome);
                if result.is_err() && first_failure.is_none_or(|first| index < first) {
                    first_failure = Some(index);
                }
                if results.len() <= index {
                    results.resize_with(index + 1, || None);
                }
                results[index] = Some(result);
            }
            if fail_fast && first_failure.is_some() {
                // Start nothing more; what runs finishes, so that no work goes on behind the
                // caller's back.
                feed.stop();
                core.drop_queued(job);
            }
            if feed.is_done() && core.outstanding(job) == 0 {
                break;
            }
            core.drive(None);
        }
        core.cancel(job, false);
        drop(core);
        match first_failure {
            Some(index) if fail_fast => match results.swap_remove(index) {
                Some(err) => vec![err],
                None => unreachable!("the failure was recorded"),
            },
            _ => results.into_iter().flatten().collect(),
        }
    }

    fn submit_all<F, Args, R>(
        &self,
        inputs: impl Iterator<Item = Args>,
    ) -> Result<MapResult<'_, R>, Error>
    where
        F: TaskFn<Args, R>,
        Args: Wire,
        R: Wire,
    {
        let name = name::<F>();
        let mut core = self.lock();
        if core.is_closed() {
            return Err(Error::new(name, ErrorKind::Closed));
        }
        let job = core.new_job(false);
        let chunk = self.chunk_for(core.settings().workers, inputs.size_hint());
        let mut feed = Feed::new(job, task::entry::<F, Args, R>(), chunk, inputs);
        while feed.feed(&mut core) {}
        if let Some(index) = feed.encode_failure {
            core.cancel(job, false);
            let kind = ErrorKind::EncodeArgs(feed.encode_message.unwrap_or_default());
            return Err(Error::new(name, kind).with_task(index));
        }
        // Hand the tasks to idle workers now, so that they run while the caller goes on.
        core.drive(Some(Instant::now()));
        let len = feed.next;
        drop(core);
        Ok(MapResult {
            pool: self,
            job,
            name,
            results: Vec::new(),
            len,
            _output: PhantomData,
        })
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.lock().terminate();
    }
}

/// The name errors give a task's function.
fn name<F>() -> &'static str {
    std::any::type_name::<F>()
}

/// A task's result, or why there is none.
fn decode<R: Wire>(name: &'static str, index: usize, outcome: Outcome) -> Result<R, Error> {
    let result = match outcome {
        Outcome::Frame(tag, payload) => outcome::decode(tag, &payload),
        Outcome::Failed(kind) => Err(kind),
    };
    result.map_err(|kind| Error::new(name, kind).with_task(index))
}

/// Encodes inputs into batches and submits them.
struct Feed<I> {
    job: JobId,
    entry: Entry,
    chunk: usize,
    inputs: Option<I>,
    next: usize,
    encode_failure: Option<usize>,
    encode_message: Option<String>,
}

impl<I: Iterator<Item = Args>, Args: Wire> Feed<I> {
    fn new(job: JobId, entry: Entry, chunk: usize, inputs: I) -> Self {
        Feed {
            job,
            entry,
            chunk,
            inputs: Some(inputs),
            next: 0,
            encode_failure: None,
            encode_message: None,
        }
    }

    fn is_done(&self) -> bool {
        self.inputs.is_none()
    }

    fn stop(&mut self) {
        self.inputs = None;
    }

    /// Submits one batch; false once the inputs are exhausted.
    fn feed(&mut self, core: &mut Core) -> bool {
        let (job, entry) = (self.job, self.entry);
        let Some(inputs) = &mut self.inputs else {
            return false;
        };
        let empty = |first| Batch {
            job,
            first,
            count: 0,
            entry,
            args: Vec::new(),
        };
        let mut batch = empty(self.next);
        let mut exhausted = false;
        while batch.count < self.chunk && batch.args.len() < BATCH_BYTES {
            let Some(args) = inputs.next() else {
                exhausted = true;
                break;
            };
            let index = self.next;
            self.next += 1;
            if let Err(err) = task::append_args(&args, &mut batch.args) {
                // This task fails alone; the batch so far goes now, the next starts after it.
                let message = err.to_string();
                self.encode_failure.get_or_insert(index);
                self.encode_message.get_or_insert_with(|| message.clone());
                let before = std::mem::replace(&mut batch, empty(index + 1));
                if before.count > 0 {
                    core.submit(before);
                }
                core.fail(job, index, ErrorKind::EncodeArgs(message));
                continue;
            }
            batch.count += 1;
        }
        if batch.count > 0 {
            core.submit(batch);
        }
        if exhausted {
            self.inputs = None;
        }
        !exhausted
    }
}

/// A handle to the results of [`Pool::map_async`].
#[must_use = "dropping the handle abandons the results"]
pub struct MapResult<'pool, R> {
    pool: &'pool Pool,
    job: JobId,
    name: &'static str,
    results: Vec<Option<Result<R, Error>>>,
    len: usize,
    _output: PhantomData<fn() -> R>,
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
        let mut core = self.pool.lock();
        let mut driven = false;
        loop {
            while let Some((index, outcome)) = core.take_any(self.job) {
                if self.results.len() <= index {
                    self.results.resize_with(index + 1, || None);
                }
                self.results[index] = Some(decode(self.name, index, outcome));
            }
            if core.outstanding(self.job) == 0 {
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
        self.pool.lock().cancel(self.job, true);
        Err(Error::new(self.name, ErrorKind::Timeout(timeout)))
    }
}

impl<R> Drop for MapResult<'_, R> {
    fn drop(&mut self) {
        // Queued tasks are dropped; running ones finish and their results are discarded.
        self.pool.lock().cancel(self.job, false);
    }
}

/// A handle to the result of [`Pool::apply_async`].
#[must_use = "dropping the handle abandons the result"]
#[derive(Debug)]
pub struct AsyncResult<'pool, R> {
    inner: MapResult<'pool, R>,
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

/// The iterator of [`Pool::imap`]: each task's outcome, in input order.
#[must_use = "iterators do nothing unless consumed"]
pub struct Imap<'pool, I: Iterator, R> {
    pool: &'pool Pool,
    feed: Feed<Tupled<I>>,
    job: JobId,
    name: &'static str,
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
    fn new(pool: &'pool Pool, entry: Entry, inputs: I, ordered: bool, name: &'static str) -> Self {
        let mut core = pool.lock();
        let job = core.new_job(ordered);
        let workers = core.settings().workers.max(1);
        let chunk = pool.chunk_size.unwrap_or(1);
        if core.is_closed() {
            core.fail(job, 0, ErrorKind::Closed);
        }
        let closed = core.is_closed();
        drop(core);
        let tuple: fn(A) -> (A,) = |a| (a,);
        let mut feed = Feed::new(job, entry, chunk, inputs.map(tuple));
        if closed {
            feed.stop();
        }
        Imap {
            pool,
            feed,
            job,
            name,
            yielded: 0,
            window: 4 * workers * chunk,
            _output: PhantomData,
        }
    }
}

impl<I: Iterator<Item = A>, A: Wire, R: Wire> Imap<'_, I, R> {
    fn next_outcome(&mut self, ordered: bool) -> Option<(usize, Result<R, Error>)> {
        let mut core = self.pool.lock();
        loop {
            while self.feed.next < self.yielded + self.window
                && core.wants_more()
                && self.feed.feed(&mut core)
            {}
            let taken = if ordered {
                core.take_next(self.job)
            } else {
                core.take_any(self.job)
            };
            if let Some((index, outcome)) = taken {
                self.yielded += 1;
                return Some((index, decode(self.name, index, outcome)));
            }
            if self.feed.is_done() && core.outstanding(self.job) == 0 {
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
        self.pool.lock().cancel(self.job, false);
    }
}

/// The iterator of [`Pool::imap_unordered`]: `(input index, outcome)` in the order tasks finish.
#[must_use = "iterators do nothing unless consumed"]
#[derive(Debug)]
pub struct ImapUnordered<'pool, I: Iterator, R>(Imap<'pool, I, R>);

impl<I: Iterator<Item = A>, A: Wire, R: Wire> Iterator for ImapUnordered<'_, I, R> {
    type Item = (usize, Result<R, Error>);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next_outcome(false)
    }
}
