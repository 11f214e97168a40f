//! Process-parallel Rust for AWS Lambda: run ordinary functions in forked worker processes, with
//! arguments and results moved over pipes, so no `/dev/shm` is needed.
//!
//! A worker process isolates what threads cannot: a segfault, an abort or an allocation failure
//! in one task (often inside a C library) costs that task alone; a stuck task can be killed;
//! its memory goes back to the operating system when it ends; and libraries that are not
//! thread-safe can run in parallel. Python's `multiprocessing.Pool` fails on Lambda for want of
//! `/dev/shm`; this crate uses only `fork`, pipes and a pidfd, which Lambda has.
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
//! outlives its handle, and none is left a zombie.
//!
//! The child is a copy of the caller made by `fork`: the arguments are moved into it in memory,
//! and only the return value crosses a pipe, encoded with serde. Arguments and the return value
//! must nonetheless be [`Wire`] (`Serialize + DeserializeOwned + Send + 'static`), so that the
//! same function can also run in workers that were forked before the call.
//!
//! # Errors and panics
//!
//! A function that returns `Result<T, E>` hands back its own `Err(E)`, typed, as the `Ok` value
//! of `join`. Everything else that can go wrong is an [`Error`], and each case is told apart: a
//! panic (with its message and location), a crash (the signal, by number and name), an exit
//! without a result (the exit code), a timeout, a result that could not be encoded or decoded, a
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
//! writable file system, and each worker holds two file descriptors (a pipe and a pidfd) until it
//! is joined, so Lambda's 1024-descriptor limit allows hundreds of workers at once.
//!
//! # Safety
//!
//! After `fork`, the child has only the thread that called `spawn`. Any lock that another thread
//! of the caller held at that moment stays locked in the child forever. The runtime's own code in
//! the child takes no lock, but the worker function runs in that state: in a process with several
//! threads, a worker that prints to stdout, takes a `Mutex` shared with other threads, or uses an
//! async runtime of the parent can hang. Workers that only compute on their arguments, which is
//! what workers are for, are unaffected. Output that the caller had buffered on stdout is flushed
//! before each fork, so the child does not print it again; a worker's own output that does not
//! end in a newline may be lost when the worker exits.
//!
//! The kernel kills a worker when the thread that spawned it exits (`PR_SET_PDEATHSIG`), so
//! that workers die with a crashed caller: join a worker before the thread that spawned it ends.

mod child;
mod codec;
mod error;
mod frame;
mod outcome;
mod pool;
mod process;
mod server;
mod spawn;
mod sys;
mod task;
mod wire;
mod worker;

pub use crate::error::{Error, PanicLocation};
pub use crate::pool::{AsyncResult, Imap, ImapUnordered, MapResult, Pool, PoolBuilder};
pub use crate::server::init;
pub use crate::spawn::JoinHandle;
pub use crate::task::TaskFn;
pub use crate::wire::Wire;
pub use crate::worker::Worker;
pub use lambda_parallel_macros::lambda_parallel;

#[doc(hidden)]
pub mod __private {
    //! Used by code that `#[lambda_parallel]` generates. Not public API: may change in any release.

    pub use crate::spawn::spawn;
    pub use crate::{Error, JoinHandle, Wire, Worker};
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
