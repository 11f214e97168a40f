//! A pool of persistent worker processes, with the interface of Python's `multiprocessing.Pool`.

mod builder;
mod call;
mod core;
mod handles;
mod job;
mod outbox;
mod slot;

use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

pub use self::builder::PoolBuilder;
use self::call::name;
use self::core::Core;
pub use self::handles::{AsyncResult, Imap, ImapUnordered, MapResult};
use crate::task::{self, TaskFn};
use crate::{Error, Wire};

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
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.lock().terminate();
    }
}
