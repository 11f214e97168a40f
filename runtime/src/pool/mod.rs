//! A pool of persistent worker processes, with the interface of Python's `multiprocessing.Pool`:
//! [`Pool`] and [`PoolBuilder`] here, the handles of deferred calls in `handles.rs`, the typed
//! calls in `call.rs` and `feed.rs`, and underneath them the untyped engine (`engine.rs`), its
//! books (`jobs.rs`) and its workers (`slot.rs`). All of it runs in the caller's process.

mod call;
mod engine;
mod feed;
mod handles;
mod jobs;
mod slot;

use std::fmt;
use std::time::{Duration, Instant};

use self::engine::{Settings, Shared};
pub use self::handles::{AsyncResult, Imap, ImapUnordered, MapResult};
use crate::error::Error;
use crate::error::ErrorKind;
use crate::func::Wire;
use crate::func::{self, TaskFn};
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
    shared: Shared,
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
    pub fn new(workers: usize) -> Result<Pool, Error> {
        Pool::builder().workers(workers).build()
    }

    /// Options for a pool.
    pub fn builder() -> PoolBuilder {
        PoolBuilder::default()
    }

    /// The number of worker processes the pool keeps.
    #[must_use]
    pub fn workers(&self) -> usize {
        self.shared.lock().settings().workers
    }

    /// The process ids of the live workers.
    #[must_use]
    pub fn pids(&self) -> Vec<u32> {
        self.shared.lock().pids()
    }

    /// A deadline for all the pool's work, or none: tasks still running at the deadline are
    /// killed, and tasks not yet started fail, all with [`Error::is_timeout`]. On Lambda, set it
    /// from the invocation's deadline, less a margin, so that work is stopped and reported
    /// before Lambda stops the whole environment.
    pub fn set_deadline(&self, deadline: Option<Instant>) {
        self.shared.lock().set_deadline(deadline);
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
        call::run::<F, (A,), R>(&self.shared, inputs.into_iter().map(|a| (a,)), true)
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
        call::run::<F, (A,), R>(&self.shared, inputs.into_iter().map(|a| (a,)), false)
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
        call::run::<F, Args, R>(&self.shared, inputs.into_iter(), true)
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
        call::run::<F, Args, R>(&self.shared, inputs.into_iter(), false)
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
        let mut results = call::run::<F, Args, R>(&self.shared, std::iter::once(args), true);
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
        let inner = call::submit_all::<F, Args, R>(&self.shared, std::iter::once(args))?;
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
        call::submit_all::<F, (A,), R>(&self.shared, inputs.into_iter().map(|a| (a,)))
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
            &self.shared,
            worker::entry::<F, (A,), R>(),
            inputs.into_iter(),
            true,
            func::name::<F>(),
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
        let entry = worker::entry::<F, (A,), R>();
        ImapUnordered(Imap::new(
            &self.shared,
            entry,
            inputs.into_iter(),
            false,
            func::name::<F>(),
        ))
    }

    /// Stops the pool from taking new tasks: later calls fail with [`Error::is_closed`]. Tasks
    /// already submitted still run.
    pub fn close(&self) {
        self.shared.lock().close();
    }

    /// Whether [`close`](Pool::close) was called.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.shared.lock().is_closed()
    }

    /// Closes the pool, lets every task still running finish, then ends the workers and reaps
    /// them.
    pub fn join(self) {
        let mut core = self.shared.lock();
        core.close();
        core.finish();
        core.terminate();
    }

    /// Kills every worker at once and reaps it, as dropping the pool does.
    pub fn terminate(self) {
        drop(self);
    }

    /// Runs `f` with this pool on tokio's blocking threads and returns what it returns: the
    /// awaitable form of any pool call (available with the `tokio` feature).
    ///
    /// ```
    /// use std::sync::Arc;
    /// use lambda_parallel::{Error, Pool};
    ///
    /// fn square(x: u64) -> u64 {
    ///     x * x
    /// }
    ///
    /// # #[cfg(feature = "tokio")]
    /// async fn handler(pool: Arc<Pool>, inputs: Vec<u64>) -> Vec<Result<u64, Error>> {
    ///     pool.unblock(move |pool| pool.map_each(square, inputs)).await
    /// }
    ///
    /// # #[cfg(feature = "tokio")]
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    /// let pool = Arc::new(Pool::new(2)?);
    /// let outcomes = runtime.block_on(handler(pool, vec![1, 2, 3]));
    /// assert_eq!(outcomes.into_iter().collect::<Result<Vec<_>, _>>()?, [1, 4, 9]);
    /// # Ok(())
    /// # }
    /// # #[cfg(not(feature = "tokio"))]
    /// # fn main() {}
    /// ```
    ///
    /// The pool's worker processes do the work; the blocking thread only waits for them (and
    /// encodes and decodes), so the runtime's own threads stay free. The pool serves calls one
    /// at a time, as always: concurrent `unblock` calls each hold a blocking thread while they
    /// wait their turn. With [`Pool::new(0)`](Pool::new), tasks run on the blocking thread.
    ///
    /// The name is that of the `blocking` crate's function that does the same. The pool's
    /// `_async` methods ([`Pool::map_async`]) keep Python's meaning, submit now and get later;
    /// and in this crate `spawn` forks a worker, hence not `spawn_blocking`.
    ///
    /// `f` and its result move between threads, so they must be `Send + 'static`: move the
    /// inputs into it. The future owns a clone of the `Arc`, so it can be `tokio::spawn`ed.
    ///
    /// # Cancellation
    ///
    /// A blocking call cannot be interrupted: dropping the future (on a `tokio::time::timeout`,
    /// say) lets the call run to its end, and its result is dropped. To bound the work itself,
    /// give the pool a [`PoolBuilder::task_timeout`](crate::PoolBuilder::task_timeout), or call
    /// [`Pool::set_deadline`] (inside `f`, or before).
    ///
    /// # Panics
    ///
    /// A panic in `f` resumes in the task that awaits. Polling panics outside a tokio runtime,
    /// and if the runtime shuts down before `f` has run (the blocking task is then cancelled).
    #[cfg(feature = "tokio")]
    pub fn unblock<F, R>(
        self: &std::sync::Arc<Self>,
        f: F,
    ) -> impl std::future::Future<Output = R> + Send + 'static
    where
        F: FnOnce(&Pool) -> R + Send + 'static,
        R: Send + 'static,
    {
        let pool = std::sync::Arc::clone(self);
        async move {
            match tokio::task::spawn_blocking(move || f(&pool)).await {
                Ok(value) => value,
                Err(err) => match err.try_into_panic() {
                    Ok(payload) => std::panic::resume_unwind(payload),
                    Err(err) => panic!("the pool call did not run: {err}"),
                },
            }
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shared.lock().terminate();
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
            chunk_size: self.chunk_size,
        };
        let shared =
            Shared::new(settings).map_err(|err| Error::new("pool", ErrorKind::Spawn(err)))?;
        Ok(Pool { shared })
    }
}
