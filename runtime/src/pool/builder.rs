//! `PoolBuilder`: a pool's options, and building the pool from them.

use std::sync::Mutex;
use std::time::Duration;

use super::core::Core;
use super::Pool;
use crate::error::ErrorKind;
use crate::Error;

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

/// The settings a pool keeps for its life.
#[derive(Clone, Debug, Default)]
pub(crate) struct Settings {
    pub(crate) workers: usize,
    pub(crate) task_timeout: Option<Duration>,
    pub(crate) max_tasks_per_worker: Option<usize>,
}
