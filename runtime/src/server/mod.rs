//! The fork server: a small single-threaded process, forked by [`init`] before the program starts
//! threads, from which every worker is then forked.
//!
//! Forking straight from a process with several threads leaves, in the child, every lock another
//! thread held at that moment locked for ever (stdout's, a `Mutex`, an async runtime's); a worker
//! that takes one hangs. The server has one thread, so its children inherit no such lock, and its
//! memory is what the program had at `init`, however large the program grows later.
//!
//! For each worker, the caller makes a request pipe, a result pipe and a *status* socket (and, for
//! a pool worker, the shared memory of its outcome ring), and sends the worker's ends to the
//! server over the control socket. The server starts the worker, sends its pid with a pidfd for
//! it on the status socket, and, once the worker has ended and been reaped, its exit status. The
//! caller kills a worker through that pidfd, which names the process and no other even once it
//! has been reaped. A caller that has a one-off worker's outcome closes the status socket without
//! reading the exit record (`Child::release`): the server reaps the worker all the same.
//!
//! `protocol.rs` holds every message, `client.rs` the caller's side, `serving.rs` the server's
//! own loop (which runs after the fork that starts it).
//!
//! The server keeps one worker forked ahead of need, the *spare*, which waits for a request's
//! descriptors on a socket of its own: a request then costs a hand-over rather than a fork, and
//! the server forks the next spare after the caller has its worker. A request that finds no
//! spare (several at once, or the spare was killed) gets a fresh fork, as it would without one.
//! The spare is one more small process, a copy of the server, for as long as the server lives.

mod client;
pub(crate) mod protocol;
mod serving;

use std::io;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};

pub(crate) use self::client::{bury_if_gone, is_running, request};
use crate::error::Error;
use crate::error::ErrorKind;
use crate::sys::{self, Fork, Pid};
use crate::transport::ring;
use crate::worker;

/// Starts the fork server, from which every worker of this process is then forked.
///
/// Call it first thing in `main`, before any thread exists (before building an async runtime):
/// see the crate documentation's Safety section for why. Workers then see the program as it was
/// at this call (its globals, its open files), not as it is when they are spawned; arguments and
/// results are passed explicitly, as always. Calling it again does nothing.
///
/// ```
/// fn main() -> Result<(), lambda_parallel::Error> {
///     lambda_parallel::init()?;
///     // ... build the async runtime, run the Lambda handler ...
///     # Ok(())
/// }
/// ```
///
/// # Errors
///
/// Fails when the process already has more than one thread or this is not its main thread
/// (the server would inherit another thread's locks, or die with the calling thread), when the
/// kernel lacks `pidfd_open` (Linux 5.3 or later is needed) or a filter refuses it, or when the
/// server cannot be forked.
///
/// Where the host set `SIGCHLD` to `SIG_IGN` (or installed a handler with `SA_NOCLDWAIT`), which
/// makes the kernel discard every child's exit status, `init` (or, without it, each spawn) puts
/// back the default action, which ignores the signal all the same but keeps the statuses: a
/// worker's end can be told only so. Children the host started in the hope that the kernel
/// reaps them are then the host's to `wait` for.
pub fn init() -> Result<(), Error> {
    let fail = |message: String| Err(Error::new("fork server", ErrorKind::Init(message)));
    if client::is_running() {
        return Ok(());
    }
    if !sys::is_main_thread() {
        return fail("`init` must be called from the main thread".into());
    }
    match sys::thread_count() {
        Ok(1) => {}
        Ok(threads) => {
            return fail(format!(
                "`init` must be called before any other thread starts, and this process has \
                 {threads} threads"
            ))
        }
        Err(err) => return fail(format!("cannot count this process's threads: {err}")),
    }
    // The server and every worker need pidfds: better to say so now than at the first spawn.
    if let Err(err) = sys::check_pidfd() {
        return fail(err.to_string());
    }
    // Before the fork, so that the server keeps its workers' exit statuses too.
    sys::keep_exit_statuses();
    match start() {
        Ok((control, pid)) => {
            // A single thread got here, so no other `init` raced this one.
            client::connect(control, pid);
            Ok(())
        }
        Err(err) => fail(err.to_string()),
    }
}

fn start() -> io::Result<(OwnedFd, Pid)> {
    // Installed here, so that every worker the server forks has it, and worked out here, so
    // that no worker works it out again.
    worker::install_panic_hook();
    ring::may_spin();
    let (ours, theirs) = sys::packet_pair()?;
    let parent = sys::getpid();
    // SAFETY: `init` checked that this process has one thread, so the child inherits no lock
    // held elsewhere. The child runs `serve`, which ends in `_exit` and never returns here.
    match unsafe { sys::fork(&[], &[]) }? {
        Fork::Child => {
            drop(ours);
            serving::serve(&theirs, parent)
        }
        Fork::Parent(pid) => Ok((ours, pid)),
    }
}

/// Warns, once per process, that a worker is about to be forked straight from a process with
/// several threads. Silenced by `LAMBDA_PARALLEL_NO_THREAD_WARNING=1`.
pub(crate) fn warn_if_threaded() {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if WARNED.load(Ordering::Relaxed) || is_running() {
        return;
    }
    let Ok(threads) = sys::thread_count() else {
        return;
    };
    if threads > 1 && !WARNED.swap(true, Ordering::Relaxed) {
        if std::env::var_os("LAMBDA_PARALLEL_NO_THREAD_WARNING").is_some_and(|v| v == "1") {
            return;
        }
        eprintln!(
            "lambda-parallel: forking a worker straight from a process with {threads} threads; \
             a worker that takes a lock another thread held (stdout, a Mutex, an async runtime) \
             can hang. Call `lambda_parallel::init()` first thing in `main` to fork workers from \
             a single-threaded server instead. (Shown once; LAMBDA_PARALLEL_NO_THREAD_WARNING=1 \
             silences it.)"
        );
    }
}
