//! Process-parallel Rust for AWS Lambda: run ordinary functions in forked worker processes, with
//! arguments and results moved over pipes and `memfd` shared memory, so no `/dev/shm` is needed.
//!
//! A worker process isolates what threads cannot: a segfault, an abort or an allocation failure
//! in one task (often inside a C library) costs that task alone; a stuck task can be killed;
//! its memory goes back to the operating system when it ends; and libraries that are not
//! thread-safe can run in parallel. Python's `multiprocessing.Pool` fails on Lambda for want of
//! `/dev/shm`; this crate uses only `fork`, pipes, a pidfd and `memfd_create`, which Lambda has.
//!
//! # Example
//!
//! ```
//! use lambda_parallel::lambda_parallel;
//!
//! /// Counts the primes below `limit`.
//! #[lambda_parallel]
//! fn count_primes(limit: u32) -> usize {
//!     (2..limit).filter(|n| (2..*n).take_while(|d| d * d <= *n).all(|d| n % d != 0)).count()
//! }
//!
//! # fn main() -> Result<(), lambda_parallel::Error> {
//! // The plain call is unchanged.
//! assert_eq!(count_primes(100), 25);
//!
//! // The same function, in a forked worker process.
//! let handle = count_primes::spawn(100)?;
//! assert_eq!(handle.join()?, 25);
//! # Ok(())
//! # }
//! ```
//!
//! # Workers
//!
//! [`#[lambda_parallel]`](lambda_parallel) leaves the function as it is and adds, under the same
//! name, `spawn`: it takes the function's arguments, forks a child process that calls the
//! function, and returns a [`JoinHandle`]. [`JoinHandle::join`] waits for the child and returns
//! what the function returned; [`JoinHandle::join_timeout`] gives up after a while, killing the
//! child; [`JoinHandle::kill`] kills it; dropping the handle kills and reaps it. A worker never
//! outlives its handle, and none is left a zombie (a fork server's worker, once its outcome has
//! arrived, is reaped by the server: see [`JoinHandle::join`]).
//!
//! The child is a copy of the caller made by `fork`: the arguments are moved into it in memory,
//! and only the return value crosses a pipe, encoded with serde. Arguments and the return value
//! must nonetheless be [`Wire`] (`Serialize + DeserializeOwned + Send + 'static`), so that the
//! same function can also run in workers that were forked before the call.
//!
//! Byte vectors (`Vec<u8>`, `Box<[u8]>`, wherever they sit in a value) are copied in bulk,
//! not byte by byte as serde would hand them over.
//!
//! # Pools
//!
//! A [`Pool`] keeps worker processes for task after task, with the interface of Python's
//! `multiprocessing.Pool` (the table in its documentation maps one to the other): `map`,
//! `starmap`, `apply`, their `_async` forms, `imap` and `imap_unordered`, and
//! [`map_each`](Pool::map_each) for every task's own outcome, as a Lambda handler reporting
//! `batchItemFailures` needs. Functions go to a pool by name; small tasks travel in batches.
//!
//! ```
//! use lambda_parallel::{lambda_parallel, Pool};
//!
//! #[lambda_parallel]
//! fn word_count(text: String) -> usize {
//!     text.split_whitespace().count()
//! }
//!
//! # fn main() -> Result<(), lambda_parallel::Error> {
//! let pool = Pool::new(2)?;
//! let texts = ["a b c", "d e", ""].map(String::from);
//! assert_eq!(pool.map(word_count, texts)?, [3, 2, 0]);
//! # Ok(())
//! # }
//! ```
//!
//! A crash costs only the task that was running: it fails with the signal or exit code, a new
//! worker takes the dead one's place, and the other tasks go on. A task timeout
//! ([`PoolBuilder::task_timeout`]) or a deadline ([`Pool::set_deadline`]) kills a stuck worker
//! the same way. Each task yields exactly one outcome.
//!
//! # Async (the `tokio` feature)
//!
//! With the `tokio` feature, a [`JoinHandle`] can be `.await`ed: the task waits on tokio's
//! reactor for the worker's result, and no thread blocks. Dropping the future kills the worker,
//! as dropping the handle does, so `tokio::time::timeout(limit, handle)` is the async
//! `join_timeout`.
//!
//! So can a pool call: [`Pool::map_async`], [`Pool::starmap_async`] and [`Pool::apply_async`]
//! return owned handles ([`MapResult`], [`AsyncResult`]) that are `IntoFuture`, `Send` and
//! `'static`, so they can be `tokio::spawn`ed; `MapResult::each` awaits every outcome, and
//! [`Imap`] and [`ImapUnordered`] become `futures_core::Stream`s with `into_stream()`
//! (`ImapStream`, `ImapUnorderedStream`). An awaited call drives the
//! pool a step at a time without sleeping, and between steps waits on the reactor, which watches
//! the workers through one epoll set, so any number of calls can be awaited on one runtime
//! thread, together with calls from other threads. Dropping the future cancels the call: its
//! queued tasks are dropped, and those running finish and are discarded (a task timeout or a
//! deadline kills them). A pool with no workers runs its tasks in the polling thread.
//!
//! Many one-off workers are awaited together in a `JoinSet`, in the order they finish, as
//! `tokio::task::JoinSet` does for tasks; dropping the set kills the workers still in it.
//!
//! ```
//! use lambda_parallel::{lambda_parallel, Pool};
//!
//! #[lambda_parallel]
//! fn square(x: u64) -> u64 {
//!     x * x
//! }
//!
//! # #[cfg(feature = "tokio")]
//! async fn handler(pool: Pool) -> Result<u64, lambda_parallel::Error> {
//!     let one = square::spawn(3)?.await?;
//!     let many = pool.map_async(square, 1..=3)?.await?;
//!     Ok(one + many.iter().sum::<u64>())
//! }
//!
//! # #[cfg(feature = "tokio")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! let pool = Pool::new(2)?; // cheap to clone: one per handler invocation
//! assert_eq!(runtime.block_on(handler(pool.clone()))?, 9 + 14);
//! # Ok(())
//! # }
//! # #[cfg(not(feature = "tokio"))]
//! # fn main() {}
//! ```
//!
//! # Beyond one execution environment (the `fleet` feature)
//!
//! One Lambda execution environment has at most 6 vCPUs. With the `fleet` feature, a
//! `fleet::Fleet` runs the same function across many: it invokes the function itself (by
//! default) through Lambda's Invoke API, a batch of items an invocation, and each invoked
//! environment runs its share on its own pool behind a `fleet::FleetWorker`.
//! `fleet.map_each(f, inputs).await` gives the same outcomes as [`Pool::map_each`], with the
//! ways an invocation fails (throttled, too large, a function error, the deadline) typed as
//! [`Kind`]s. The invoker is a trait, so no AWS dependency enters this crate.
//!
//! # Errors and panics
//!
//! A function that returns `Result<T, E>` hands back its own `Err(E)`, typed, as the `Ok` value
//! of `join`. Everything else that can go wrong is an [`Error`], and each case is told apart: a
//! panic (with its message and location), a crash (the signal, by number and name), a kill by
//! the kernel's OOM killer (where the kernel's count of OOM kills says so), an exit without a
//! result (the exit code), a timeout, a result that could not be encoded or decoded, a
//! malformed frame on the pipe, and a failure to create the process or its pipe (`EAGAIN`,
//! `EMFILE`). A worker's panic is caught in the worker and never unwinds into the caller's code.
//!
//! The first `spawn` installs a panic hook that records where a worker panicked and passes every
//! other panic on to the hook that was there before. A hook that the program sets later replaces
//! it: worker panics then still report their message, but not their location.
//!
//! # Platform support
//!
//! Linux 5.3 or later (for `pidfd_open`), as on AWS Lambda. Nothing needs `/dev/shm` or a
//! writable file system. Each live pool worker costs the caller four or five file descriptors
//! (its pipes, a pidfd, and with the fork server a status socket), so Lambda's limit of 1024
//! allows about two hundred workers at once; a pool's descriptors do not grow with the number
//! of tasks.
//!
//! A pool worker hands its outcomes back through 256 KiB of shared memory (a `memfd`, mapped by
//! the worker and the pool), so that a small task costs no system call; a crash still fails only
//! the task that crashed, because an outcome in shared memory outlives its worker. That memory
//! counts towards the function's memory once used, like any other. Where `memfd_create` is
//! refused, outcomes take the pipe, more slowly, and nothing else changes. While work comes
//! quickly, the pool and its workers spin for up to 20 µs before they sleep (200 µs while a single
//! task is in flight, as in a loop of `apply`; never on a single CPU), so that a quick round trip
//! wakes nobody; a pool that waits for long tasks sleeps. A blocking `join` of a one-off worker
//! likewise watches for its outcome for up to 200 µs before it sleeps (one thread of the process
//! at a time; never on a single CPU, and never when awaited).
//!
//! # Safety
//!
//! After `fork`, the child has only the thread that forked it. Any lock that another thread held
//! at that moment stays locked in the child for ever: a worker that then prints to stdout, takes
//! a `Mutex` shared with other threads, or touches an async runtime of the parent can hang. A
//! Lambda function written in Rust always has several threads by the time it handles an event.
//!
//! So call [`init`] first thing in `main`, before any thread starts (before building the tokio
//! runtime). It forks a small single-threaded *fork server*, and every worker is then forked
//! from it: workers inherit no lock, fork cheaply however large the program has grown, and see
//! the program as it was at `init` (its globals and open files), not as it is when they are
//! spawned; arguments and results are passed explicitly, as always.
//!
//! ```
//! fn main() -> Result<(), Box<dyn std::error::Error>> {
//!     lambda_parallel::init()?;
//!     let pool = lambda_parallel::Pool::builder().build()?;
//!     // ... build the tokio runtime and run the Lambda handler, which uses `pool` ...
//!     # drop(pool);
//!     Ok(())
//! }
//! ```
//!
//! Without `init`, workers are forked straight from the calling process. That is safe while it
//! has one thread. With several threads, the runtime's own code in the child still takes no
//! lock, so workers that only compute on their arguments are unaffected, but the first such fork
//! prints a warning naming `init` (`LAMBDA_PARALLEL_NO_THREAD_WARNING=1` silences it). A
//! one-off worker spawned that way also dies when the thread that spawned it ends (the kernel's
//! parent-death signal, `PR_SET_PDEATHSIG`, follows threads): join it before that thread ends.
//! Pool workers are not affected: off the main thread they do without the signal and end when
//! their pool, or the program, is gone. Output the caller had buffered on stdout is flushed before each fork, so no
//! worker prints it again; a worker's own output that does not end in a newline may be lost when
//! the worker exits.

// docs.rs marks the items behind the `tokio` feature (`doc_cfg` now includes `doc_auto_cfg`).
#![cfg_attr(docsrs, feature(doc_cfg))]

// The modules, from the bottom up: each uses only those above it. `sys` and `codec` know the
// operating system and the byte format of values; `wire` and `transport` are the byte streams
// between the caller and a worker; `worker` is everything after the fork; `proc` and `server`
// start workers and own them; `spawn`, `pool` and `tokio` are the public face, and `lambda` is
// a layer over the pool's public API.
mod codec;
mod error;
mod func;
mod sys;
mod wire;

mod transport;
mod worker;

mod proc;
mod server;

#[cfg(feature = "tokio")]
mod join_set;
mod pool;
mod spawn;
#[cfg(feature = "tokio")]
mod tokio;

#[cfg(feature = "fleet")]
pub mod fleet;
#[cfg(feature = "lambda")]
pub mod lambda;

pub use crate::error::{Error, Kind, PanicLocation};
pub use crate::func::{InitResult, TaskFn, Wire};
#[cfg(feature = "tokio")]
pub use crate::join_set::JoinSet;
#[cfg(feature = "tokio")]
pub use crate::pool::{ApplyFuture, EachFuture, ImapStream, ImapUnorderedStream, MapFuture};
pub use crate::pool::{AsyncResult, Imap, ImapUnordered, MapResult, Pool, PoolBuilder};
pub use crate::server::init;
pub use crate::spawn::JoinHandle;
#[cfg(feature = "tokio")]
pub use crate::tokio::JoinFuture;
pub use lambda_parallel_macros::lambda_parallel;

#[doc(hidden)]
pub mod __private {
    //! Used by code that `#[lambda_parallel]` generates. Not public API: may change in any release.

    pub use crate::codec::CodecChoice;
    /// The seal of `TaskFn`, which a companion struct implements with the function's codec.
    pub use crate::func::sealed::Sealed as SealedTaskFn;
    pub use crate::spawn::spawn;
    pub use crate::{Error, JoinHandle, TaskFn, Wire};
    pub use ::core::result::Result;

    /// Fails to compile, under the user's type, unless `T` can cross a pipe.
    #[must_use]
    pub const fn assert_wire<T: Wire>() -> bool {
        true
    }

    /// `<T as Checked<{ assert_wire::<A>() & ... }>>::Type` is `T` once every check compiles.
    ///
    /// When one fails, the const and so the type are errors, and rustc says nothing more about the
    /// items that use the type: the user sees only `assert_wire`'s error, under their type.
    pub trait Checked<const OK: bool> {
        type Type;
    }

    impl<T> Checked<true> for T {
        type Type = T;
    }
}
