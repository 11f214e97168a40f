//! A pool of persistent worker processes, with the interface of Python's `multiprocessing.Pool`:
//! [`Pool`] and [`PoolBuilder`] here, the handles of deferred calls in `handles.rs` (and their
//! awaitable forms, with the `tokio` feature, in `awaiting.rs`), the typed calls in `call.rs`
//! and `feed.rs`, and underneath them the untyped engine (`engine.rs`), its books (`jobs.rs`)
//! and its workers (`slot.rs`). All of it runs in the caller's process.

#[cfg(feature = "tokio")]
mod awaiting;
mod call;
mod engine;
mod feed;
mod handles;
mod jobs;
mod slot;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[cfg(feature = "tokio")]
pub use self::awaiting::{ApplyFuture, EachFuture, ImapStream, ImapUnorderedStream, MapFuture};
use self::engine::{Settings, Shared};
pub use self::handles::{AsyncResult, Imap, ImapUnordered, MapResult};
use self::slot::Initializer;
use crate::error::Error;
use crate::error::ErrorKind;
use crate::func::Wire;
use crate::func::{self, ByName, InitResult, TaskFn};
use crate::wire::batch;
use crate::worker;

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
/// | `initializer`, `initargs` | [`PoolBuilder::initializer`] |
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
/// # Sharing, threads and tasks
///
/// A `Pool` is a handle: [`Clone`] it (an `Arc` inside, so a clone is cheap) to use the same
/// workers from several threads or tokio tasks. Calls from any number of them proceed together:
/// each caller submits its tasks and waits for its own outcomes, and the workers are shared
/// batch by batch, round robin between the calls that have tasks queued, so a short call is not
/// held behind a long one. No thread of the pool's own runs in the background: whichever caller
/// is waiting moves the work along, one step at a time, while the others sleep until the step
/// ends (see the crate docs' "Async" section for awaited calls).
///
/// ```
/// use lambda_parallel::Pool;
///
/// # fn main() -> Result<(), lambda_parallel::Error> {
/// let pool = Pool::new(2)?;
/// let threads: Vec<_> = (0..3_u64)
///     .map(|t| {
///         let pool = pool.clone();
///         std::thread::spawn(move || pool.map(|x: u64| x * 2, [t, t + 1]))
///     })
///     .collect();
/// for (t, thread) in (0..3_u64).zip(threads) {
///     assert_eq!(thread.join().unwrap()?, [2 * t, 2 * t + 2]);
/// }
/// # Ok(())
/// # }
/// ```
///
/// # Drop
///
/// When the last clone of the pool, and the last handle of its calls ([`MapResult`],
/// [`AsyncResult`], [`Imap`], …, each of which owns a share), are dropped, the workers are
/// killed (`SIGKILL`) and reaped, at once: that never waits for a task and never leaves a
/// process behind. [`Pool::join`] first lets running tasks finish; [`Pool::terminate`] kills the
/// workers at once, for every clone.
#[derive(Clone)]
pub struct Pool {
    shared: Arc<Shared>,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("workers", &self.workers())
            .finish_non_exhaustive()
    }
}

impl Pool {
    /// A pool of `workers` worker processes, with default options; see [`PoolBuilder::workers`]
    /// for `0`.
    ///
    /// # Errors
    ///
    /// As [`PoolBuilder::build`].
    ///
    /// ```
    /// # fn main() -> Result<(), lambda_parallel::Error> {
    /// let pool = lambda_parallel::Pool::new(2)?;
    /// assert_eq!(pool.workers(), 2);
    /// assert_eq!(pool.map(|x: u8| x + 1, [1, 2])?, [2, 3]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn new(workers: usize) -> Result<Pool, Error> {
        Pool::builder().workers(workers).build()
    }

    /// Options for a pool.
    ///
    /// ```
    /// # fn main() -> Result<(), lambda_parallel::Error> {
    /// let pool = lambda_parallel::Pool::builder().workers(2).chunk_size(16).build()?;
    /// assert_eq!(pool.workers(), 2);
    /// # Ok(())
    /// # }
    /// ```
    pub fn builder() -> PoolBuilder {
        PoolBuilder::default()
    }

    /// The number of worker processes the pool keeps. Never waits, whatever runs.
    ///
    /// ```
    /// # fn main() -> Result<(), lambda_parallel::Error> {
    /// assert_eq!(lambda_parallel::Pool::new(3)?.workers(), 3);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn workers(&self) -> usize {
        self.shared.settings().workers
    }

    /// The process ids of the live workers, as of the end of the pool's last step.
    ///
    /// ```
    /// # fn main() -> Result<(), lambda_parallel::Error> {
    /// let pool = lambda_parallel::Pool::new(2)?;
    /// assert_eq!(pool.pids().len(), 2);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn pids(&self) -> Vec<u32> {
        self.shared.pids()
    }

    /// A deadline for all the pool's work, or none: tasks still running at the deadline are
    /// killed, and tasks not yet started fail, all with [`Error::is_timeout`]. On Lambda, set it
    /// from the invocation's deadline, less a margin, so that work is stopped and reported
    /// before Lambda stops the whole environment. It applies at once, also to calls already
    /// running, and never waits for one.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    ///
    /// # fn main() -> Result<(), lambda_parallel::Error> {
    /// let pool = lambda_parallel::Pool::new(1)?;
    /// pool.set_deadline(Some(Instant::now() + Duration::from_millis(100)));
    /// let err = pool.apply(|()| std::thread::sleep(Duration::MAX), ((),)).unwrap_err();
    /// assert_eq!(err.kind(), lambda_parallel::Kind::Deadline);
    /// # Ok(())
    /// # }
    /// ```
    pub fn set_deadline(&self, deadline: Option<Instant>) {
        self.shared.set_deadline(deadline);
    }

    /// Calls `f` on every input in the workers and returns the results in input order.
    ///
    /// ```
    /// # fn main() -> Result<(), lambda_parallel::Error> {
    /// let pool = lambda_parallel::Pool::new(2)?;
    /// assert_eq!(pool.map(|x: u32| x + 1, 0..3)?, [1, 2, 3]);
    /// # Ok(())
    /// # }
    /// ```
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
        let () = ByName::<F>::OK;
        call::run::<F, (A,), R>(&self.shared, inputs.into_iter().map(|a| (a,)), true)
            .into_iter()
            .collect()
    }

    /// Like [`map`](Pool::map), but runs every task and returns each one's outcome: what a
    /// Lambda handler needs to report partial batch failures (`batchItemFailures`).
    ///
    /// ```
    /// # fn main() -> Result<(), lambda_parallel::Error> {
    /// let pool = lambda_parallel::Pool::new(2)?;
    /// let outcomes = pool.map_each(|x: u32| 12 / x, [3, 0, 4]);
    /// assert_eq!(outcomes.iter().filter(|outcome| outcome.is_err()).count(), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub fn map_each<F, A, R, I>(&self, f: F, inputs: I) -> Vec<Result<R, Error>>
    where
        F: TaskFn<(A,), R>,
        A: Wire,
        R: Wire,
        I: IntoIterator<Item = A>,
    {
        let _ = f;
        let () = ByName::<F>::OK;
        call::run::<F, (A,), R>(&self.shared, inputs.into_iter().map(|a| (a,)), false)
    }

    /// Like [`map`](Pool::map), for functions of several arguments: each input is a tuple of
    /// them.
    ///
    /// ```
    /// # fn main() -> Result<(), lambda_parallel::Error> {
    /// let pool = lambda_parallel::Pool::new(2)?;
    /// assert_eq!(pool.starmap(|a: u32, b: u32| a * b, [(2, 3), (4, 5)])?, [6, 20]);
    /// # Ok(())
    /// # }
    /// ```
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
        let () = ByName::<F>::OK;
        call::run::<F, Args, R>(&self.shared, inputs.into_iter(), true)
            .into_iter()
            .collect()
    }

    /// Like [`map_each`](Pool::map_each), for functions of several arguments.
    ///
    /// ```
    /// # fn main() -> Result<(), lambda_parallel::Error> {
    /// let pool = lambda_parallel::Pool::new(2)?;
    /// let outcomes = pool.starmap_each(|a: u32, b: u32| a / b, [(6, 3), (1, 0)]);
    /// assert!(outcomes[0].is_ok() && outcomes[1].is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn starmap_each<F, Args, R, I>(&self, f: F, inputs: I) -> Vec<Result<R, Error>>
    where
        F: TaskFn<Args, R>,
        Args: Wire,
        R: Wire,
        I: IntoIterator<Item = Args>,
    {
        let _ = f;
        let () = ByName::<F>::OK;
        call::run::<F, Args, R>(&self.shared, inputs.into_iter(), false)
    }

    /// Calls `f` with `args` in a worker and returns its result.
    ///
    /// ```
    /// # fn main() -> Result<(), lambda_parallel::Error> {
    /// let pool = lambda_parallel::Pool::new(1)?;
    /// assert_eq!(pool.apply(|a: u32, b: u32| a + b, (2, 3))?, 5);
    /// # Ok(())
    /// # }
    /// ```
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
        let () = ByName::<F>::OK;
        let mut results = call::run::<F, Args, R>(&self.shared, std::iter::once(args), true);
        results
            .pop()
            .unwrap_or_else(|| unreachable!("one input gives one outcome"))
    }

    /// Submits one call of `f` and returns at once, with a handle to its result: block on it
    /// with [`AsyncResult::get`], or, with the `tokio` feature, `.await` it.
    ///
    /// ```
    /// # fn main() -> Result<(), lambda_parallel::Error> {
    /// let pool = lambda_parallel::Pool::new(1)?;
    /// let sum = pool.apply_async(|a: u32, b: u32| a + b, (2, 3))?;
    /// // ... other work, while a worker computes ...
    /// assert_eq!(sum.get()?, 5);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// Fails if the pool is closed ([`Error::is_closed`]) or the arguments cannot be encoded.
    pub fn apply_async<F, Args, R>(&self, f: F, args: Args) -> Result<AsyncResult<R>, Error>
    where
        F: TaskFn<Args, R>,
        Args: Wire,
        R: Wire,
    {
        let _ = f;
        let () = ByName::<F>::OK;
        let inner = call::submit_all::<F, Args, R>(&self.shared, std::iter::once(args))?;
        Ok(AsyncResult { inner })
    }

    /// Submits a call of `f` for every input and returns at once, with a handle to the results:
    /// block on it with [`MapResult::get`], or, with the `tokio` feature, `.await` it. The
    /// inputs are encoded now, all of them; [`imap`](Pool::imap) reads its input as it goes.
    ///
    /// ```
    /// # fn main() -> Result<(), lambda_parallel::Error> {
    /// let pool = lambda_parallel::Pool::new(2)?;
    /// let squares = pool.map_async(|x: u32| x * x, 1..=3)?;
    /// assert_eq!(squares.get()?, [1, 4, 9]);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// Awaited, on tokio's reactor, with no thread blocked:
    ///
    /// ```
    /// # #[cfg(feature = "tokio")]
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    /// let pool = lambda_parallel::Pool::new(2)?;
    /// let squares = runtime.block_on(async { pool.map_async(|x: u32| x * x, 1..=3)?.await })?;
    /// assert_eq!(squares, [1, 4, 9]);
    /// # Ok(())
    /// # }
    /// # #[cfg(not(feature = "tokio"))]
    /// # fn main() {}
    /// ```
    ///
    /// # Errors
    ///
    /// Fails if the pool is closed or an input cannot be encoded.
    pub fn map_async<F, A, R, I>(&self, f: F, inputs: I) -> Result<MapResult<R>, Error>
    where
        F: TaskFn<(A,), R>,
        A: Wire,
        R: Wire,
        I: IntoIterator<Item = A>,
    {
        let _ = f;
        let () = ByName::<F>::OK;
        call::submit_all::<F, (A,), R>(&self.shared, inputs.into_iter().map(|a| (a,)))
    }

    /// Like [`map_async`](Pool::map_async), for functions of several arguments: each input is
    /// a tuple of them.
    ///
    /// ```
    /// # fn main() -> Result<(), lambda_parallel::Error> {
    /// let pool = lambda_parallel::Pool::new(2)?;
    /// let products = pool.starmap_async(|a: u32, b: u32| a * b, [(2, 3), (4, 5)])?;
    /// assert_eq!(products.get()?, [6, 20]);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`map_async`](Pool::map_async).
    pub fn starmap_async<F, Args, R, I>(&self, f: F, inputs: I) -> Result<MapResult<R>, Error>
    where
        F: TaskFn<Args, R>,
        Args: Wire,
        R: Wire,
        I: IntoIterator<Item = Args>,
    {
        let _ = f;
        let () = ByName::<F>::OK;
        call::submit_all::<F, Args, R>(&self.shared, inputs.into_iter())
    }

    /// Calls `f` on every input and yields the outcomes in input order, as they arrive. Inputs
    /// are read as the workers need them, so an input far larger than memory works; outcomes
    /// that arrive ahead of their turn are held (a few batches' worth at most).
    ///
    /// Unless the pool has a [`chunk_size`](PoolBuilder::chunk_size), batches start at one task
    /// and are sized as outcomes come, so that a batch keeps a worker busy for about half a
    /// millisecond: slow tasks go one at a time, and tiny ones in batches of up to 1,024, which
    /// makes streaming them cost about what [`map`](Pool::map) does. The call then holds at most
    /// 4 batches a worker ahead of what it has yielded.
    ///
    /// ```
    /// # fn main() -> Result<(), lambda_parallel::Error> {
    /// let pool = lambda_parallel::Pool::new(2)?;
    /// let mut total = 0;
    /// for square in pool.imap(|x: u64| x * x, 1..=1_000) {
    ///     total += square?;
    /// }
    /// assert_eq!(total, 333_833_500);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// With the `tokio` feature, `Imap::into_stream` makes it a `futures_core::Stream`, which
    /// waits on the reactor.
    pub fn imap<F, A, R, I>(&self, f: F, inputs: I) -> Imap<I::IntoIter, R>
    where
        F: TaskFn<(A,), R>,
        A: Wire,
        R: Wire,
        I: IntoIterator<Item = A>,
    {
        let _ = f;
        let () = ByName::<F>::OK;
        Imap::new::<F>(&self.shared, inputs.into_iter(), true)
    }

    /// Like [`imap`](Pool::imap), but yields outcomes in the order they arrive, each with the
    /// index of its input.
    ///
    /// ```
    /// # fn main() -> Result<(), lambda_parallel::Error> {
    /// let pool = lambda_parallel::Pool::new(2)?;
    /// let mut seen: Vec<usize> = pool
    ///     .imap_unordered(|x: u32| x, [5, 6, 7])
    ///     .map(|(index, _)| index)
    ///     .collect();
    /// seen.sort_unstable();
    /// assert_eq!(seen, [0, 1, 2]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn imap_unordered<F, A, R, I>(&self, f: F, inputs: I) -> ImapUnordered<I::IntoIter, R>
    where
        F: TaskFn<(A,), R>,
        A: Wire,
        R: Wire,
        I: IntoIterator<Item = A>,
    {
        let _ = f;
        let () = ByName::<F>::OK;
        ImapUnordered(Imap::new::<F>(&self.shared, inputs.into_iter(), false))
    }

    /// Stops the pool, and every clone of it, from taking new tasks: later calls fail with
    /// [`Error::is_closed`]. Tasks already submitted still run.
    ///
    /// ```
    /// # fn main() -> Result<(), lambda_parallel::Error> {
    /// let pool = lambda_parallel::Pool::new(1)?;
    /// pool.close();
    /// assert!(pool.is_closed());
    /// assert!(pool.apply(|x: u32| x, (1,)).unwrap_err().is_closed());
    /// # Ok(())
    /// # }
    /// ```
    pub fn close(&self) {
        self.shared.close();
    }

    /// Whether [`close`](Pool::close) was called.
    ///
    /// ```
    /// # fn main() -> Result<(), lambda_parallel::Error> {
    /// assert!(!lambda_parallel::Pool::new(1)?.is_closed());
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.shared.state().is_closed()
    }

    /// Closes the pool, lets every task still queued or running finish (other clones' too),
    /// then ends the workers and reaps them.
    ///
    /// ```
    /// # fn main() -> Result<(), lambda_parallel::Error> {
    /// let pool = lambda_parallel::Pool::new(1)?;
    /// let pending = pool.map_async(|x: u32| x, [1, 2])?;
    /// pool.clone().join();
    /// assert_eq!(pending.get()?, [1, 2]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn join(self) {
        self.shared.close();
        self.shared.finish();
        self.shared.terminate();
    }

    /// Kills every worker at once and reaps it, for every clone of the pool, which is closed:
    /// calls waiting on it fail with [`Error::is_closed`].
    ///
    /// ```
    /// # fn main() -> Result<(), lambda_parallel::Error> {
    /// let pool = lambda_parallel::Pool::new(1)?;
    /// pool.clone().terminate();
    /// assert!(pool.pids().is_empty());
    /// # Ok(())
    /// # }
    /// ```
    pub fn terminate(self) {
        self.shared.terminate();
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
    /// The initializer, or, when its arguments did not encode, its name and why.
    initializer: Option<Result<Initializer, (&'static str, String)>>,
}

impl PoolBuilder {
    /// The number of worker processes; by default, the number of CPUs available
    /// ([`std::thread::available_parallelism`]). `0` runs every task inline, in the calling
    /// thread, still encoding and decoding arguments and results: a mode for unit tests, in
    /// which serialization mistakes show as they would with processes.
    ///
    /// ```
    /// # fn main() -> Result<(), lambda_parallel::Error> {
    /// // Inline: the task runs in this thread, its values still encoded and decoded.
    /// let pool = lambda_parallel::Pool::builder().workers(0).build()?;
    /// assert!(pool.pids().is_empty());
    /// assert_eq!(pool.apply(|x: u32| x * 2, (21,))?, 42);
    /// # Ok(())
    /// # }
    /// ```
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = Some(workers);
        self
    }

    /// Kills a worker whose task runs longer than `timeout`; the task fails with
    /// [`Error::is_timeout`] and a new worker takes the old one's place. Not enforced inline.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// # fn main() -> Result<(), lambda_parallel::Error> {
    /// let pool = lambda_parallel::Pool::builder()
    ///     .workers(1)
    ///     .task_timeout(Duration::from_millis(100))
    ///     .build()?;
    /// let err = pool.apply(|()| std::thread::sleep(Duration::MAX), ((),)).unwrap_err();
    /// assert!(err.is_timeout());
    /// // The pool goes on, with a fresh worker.
    /// assert_eq!(pool.apply(|x: u8| x, (7,))?, 7);
    /// # Ok(())
    /// # }
    /// ```
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
    ///
    /// ```
    /// # fn main() -> Result<(), lambda_parallel::Error> {
    /// let pool = lambda_parallel::Pool::builder()
    ///     .workers(1)
    ///     .chunk_size(1)
    ///     .max_tasks_per_worker(2)
    ///     .build()?;
    /// let pids = pool.map(|_: u8| std::process::id(), 0..4)?;
    /// assert_eq!(pids[0], pids[1]);
    /// assert_ne!(pids[1], pids[2], "a fresh worker after two tasks");
    /// # Ok(())
    /// # }
    /// ```
    pub fn max_tasks_per_worker(mut self, tasks: usize) -> Self {
        assert!(tasks > 0, "a worker must be allowed at least one task");
        self.max_tasks_per_worker = Some(tasks);
        self
    }

    /// Sends tasks to workers in batches of `tasks` (`chunksize`), fewer where a batch would
    /// exceed 1 MiB of arguments. By default a call whose input has a known length starts
    /// with batches of a quarter of it over the workers (as `multiprocessing.Pool.map` does)
    /// and makes each later batch a quarter of what is left over the workers, down to a
    /// sixteenth of the first, so that the workers finish together; one of unknown length
    /// goes one task at a time, and a stream ([`Pool::imap`]) sizes its batches by the rate
    /// at which its outcomes come.
    ///
    /// # Panics
    ///
    /// Panics if `tasks` is 0.
    ///
    /// ```
    /// # fn main() -> Result<(), lambda_parallel::Error> {
    /// let pool = lambda_parallel::Pool::builder().workers(2).chunk_size(3).build()?;
    /// let pids = pool.map(|_: u8| std::process::id(), 0..6)?;
    /// // A batch's tasks run one after another, on one worker.
    /// assert!(pids[..3].iter().all(|pid| *pid == pids[0]));
    /// assert!(pids[3..].iter().all(|pid| *pid == pids[3]));
    /// # Ok(())
    /// # }
    /// ```
    pub fn chunk_size(mut self, tasks: usize) -> Self {
        assert!(tasks > 0, "a batch must hold at least one task");
        self.chunk_size = Some(tasks);
        self
    }

    /// Runs `f` with `args` (a tuple of its arguments) once in each worker, after it is forked
    /// and before its first task, as Python's `Pool(initializer=, initargs=)`: to open a
    /// connection, load a model or seed a generator, kept in a `static` that the tasks read.
    /// It returns `()`, or `Result<(), E>` ([`InitResult`]); like a task, it is a function by
    /// name ([`TaskFn`]), typically a `#[lambda_parallel]` fn, and `args` crosses to each worker
    /// in its codec. A pool of no workers runs it once, in [`build`](PoolBuilder::build).
    ///
    /// ```
    /// use std::sync::OnceLock;
    ///
    /// use lambda_parallel::{lambda_parallel, Pool};
    ///
    /// static GREETING: OnceLock<String> = OnceLock::new();
    ///
    /// #[lambda_parallel]
    /// fn set_greeting(greeting: String) -> Result<(), String> {
    ///     GREETING.set(greeting).map_err(|_| "set twice".to_owned())
    /// }
    ///
    /// #[lambda_parallel]
    /// fn greet(name: String) -> String {
    ///     format!("{}, {name}", GREETING.get().map_or("?", String::as_str))
    /// }
    ///
    /// # fn main() -> Result<(), lambda_parallel::Error> {
    /// let pool = Pool::builder()
    ///     .workers(2)
    ///     .initializer(set_greeting, ("Hello".to_owned(),))
    ///     .build()?;
    /// assert_eq!(pool.map(greet, ["Ada".to_owned()])?, ["Hello, Ada"]);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # When it fails
    ///
    /// An initializer fails when it returns `Err`, panics, crashes, or runs past the
    /// [`task_timeout`](PoolBuilder::task_timeout) (which applies to it as to a task). Its
    /// worker then ends, having run none of its tasks: each of the tasks it had been given
    /// fails with [`Kind::Initializer`](crate::Kind::Initializer), and a message that names the
    /// initializer and says how it failed. That worker is not replaced, so that an initializer
    /// that always fails costs one fork per worker, never a fork per task: the pool goes on
    /// with the workers whose initializer succeeded, and once none is left, every task fails
    /// with the last initializer's error, at once. [`Pool::pids`] lists the workers left, while
    /// [`Pool::workers`] still says how many were asked for. (A worker that crashes later, in a
    /// task, is replaced as always, and its replacement runs the initializer again.)
    ///
    /// The pool's [deadline](Pool::set_deadline) is no failure of the initializer: it spares a
    /// worker that is running its initializer and holds no task yet, so that a slow initializer
    /// is not started over at every deadline, and kills one that holds tasks, as it would kill
    /// them running, so that their callers do not wait past it; that worker is replaced.
    #[allow(
        clippy::needless_pass_by_value,
        reason = "the arguments by value, as `Pool::apply` takes a task's: the same call shape"
    )]
    pub fn initializer<F, Args, R>(mut self, f: F, args: Args) -> Self
    where
        F: TaskFn<Args, R>,
        Args: Wire,
        R: InitResult,
    {
        let _ = f;
        let () = ByName::<F>::OK;
        let name = func::name::<F>();
        let entry = worker::init_entry::<F, Args, R>();
        let mut encoded = Vec::new();
        self.initializer = Some(
            match batch::append_args(entry.codec(), &args, &mut encoded) {
                Ok(()) => Ok(Initializer {
                    name,
                    entry,
                    args: encoded,
                }),
                Err(err) => Err((name, err.to_string())),
            },
        );
        self
    }

    /// Forks the workers.
    ///
    /// # Errors
    ///
    /// Fails with [`Error::is_spawn`] when a worker cannot be forked (`EAGAIN`) or its pipes
    /// cannot be made (`EMFILE`), and with [`Error::is_codec`] when the
    /// [`initializer`](PoolBuilder::initializer)'s arguments could not be encoded.
    ///
    /// ```
    /// # fn main() -> Result<(), lambda_parallel::Error> {
    /// let pool = lambda_parallel::Pool::builder().workers(3).build()?;
    /// assert_eq!(pool.pids().len(), 3);
    /// # Ok(())
    /// # }
    /// ```
    pub fn build(self) -> Result<Pool, Error> {
        let workers = match self.workers {
            Some(workers) => workers,
            None => std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        };
        let settings = Settings {
            workers,
            task_timeout: self.task_timeout,
            max_tasks_per_worker: self.max_tasks_per_worker,
            chunk_size: self.chunk_size,
            initializer: match self.initializer {
                Some(Err((name, err))) => return Err(Error::new(name, ErrorKind::EncodeArgs(err))),
                Some(Ok(initializer)) => Some(initializer),
                None => None,
            },
        };
        let shared =
            Shared::new(settings).map_err(|err| Error::new("pool", ErrorKind::Spawn(err)))?;
        Ok(Pool {
            shared: Arc::new(shared),
        })
    }
}
