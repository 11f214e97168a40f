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
//! The server keeps one worker forked ahead of need, the *spare*, which waits for a request's
//! descriptors on a socket of its own: a request then costs a hand-over rather than a fork, and
//! the server forks the next spare after the caller has its worker. A request that finds no
//! spare (several at once, or the spare was killed) gets a fresh fork, as it would without one.
//! The spare is one more small process, a copy of the server, for as long as the server lives.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use crate::sys::Pid;

use crate::error::ErrorKind;
use crate::process::Child;
use crate::sys::{self, Exit, Fork};
use crate::Error;

mod serving;

/// The caller's end of the control socket, once [`init`] has run.
static SERVER: OnceLock<Mutex<OwnedFd>> = OnceLock::new();

/// Records on the status socket: a tag byte, then a little-endian `i32`: first the worker's pid (or
/// why it could not be forked), later how it ended.
const EXIT_CODE: u8 = 0;
const EXIT_SIGNAL: u8 = 1;
const FORK_FAILED: u8 = 2;
const SPAWNED: u8 = 3;

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
/// (the server would inherit another thread's locks, or die with the calling thread), or when
/// the server cannot be forked.
pub fn init() -> Result<(), Error> {
    let fail = |message: String| Err(Error::new("fork server", ErrorKind::Init(message)));
    if SERVER.get().is_some() {
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
    match start() {
        Ok(control) => {
            // A single thread got here, so no other `init` raced this one.
            let _ = SERVER.set(Mutex::new(control));
            Ok(())
        }
        Err(err) => fail(err.to_string()),
    }
}

/// Whether workers are forked by the server.
pub(crate) fn is_running() -> bool {
    SERVER.get().is_some()
}

fn start() -> io::Result<OwnedFd> {
    // Installed here, so that every worker the server forks has it, and worked out here, so
    // that no worker works it out again.
    crate::child::install_panic_hook();
    crate::ring::may_spin();
    let (ours, theirs) = sys::packet_pair()?;
    let parent = sys::getpid();
    crate::spawn::flush_stdout();
    // SAFETY: `init` checked that this process has one thread, so the child inherits no lock
    // held elsewhere. The child runs `serve`, which ends in `_exit` and never returns here.
    match unsafe { sys::fork(&[]) }? {
        Fork::Child => {
            drop(ours);
            serving::serve(&theirs, parent)
        }
        Fork::Parent(_) => Ok(ours),
    }
}

/// A worker the server forked: the process, and our ends of its request and result pipes.
pub(crate) struct ServedWorker {
    pub(crate) child: Child,
    pub(crate) requests: OwnedFd,
    /// A read end of the request pipe, kept by the caller (see [`process::PoolProcess`]).
    pub(crate) request_guard: OwnedFd,
    pub(crate) results: OwnedFd,
}

/// Asks the server for a worker, which runs [`process::serve`] on its pipes and, if given, the
/// outcome ring in `ring`. `None` when there is no server (the caller forks directly).
pub(crate) fn spawn_worker(ring: Option<BorrowedFd<'_>>) -> Option<io::Result<ServedWorker>> {
    let control = SERVER.get()?;
    Some(request(control, ring))
}

fn request(control: &Mutex<OwnedFd>, ring: Option<BorrowedFd<'_>>) -> io::Result<ServedWorker> {
    let (request_read, requests) = sys::pipe()?;
    let (results, result_write) = sys::pipe()?;
    // A socket rather than a pipe, so that the worker's pidfd can come with its pid.
    let (status, worker_status) = sys::packet_pair()?;
    sys::grow_pipe(requests.as_fd());
    sys::grow_pipe(results.as_fd());
    {
        let control = control.lock().unwrap_or_else(PoisonError::into_inner);
        let mut fds = vec![
            request_read.as_raw_fd(),
            result_write.as_raw_fd(),
            worker_status.as_raw_fd(),
        ];
        fds.extend(ring.map(|fd| fd.as_raw_fd()));
        sys::send_with_fds(control.as_fd(), &[0], &fds)?;
    }
    drop((result_write, worker_status));
    let mut record = [0; 5];
    let (len, fds) = sys::recv_with_fds(status.as_fd(), &mut record)?;
    let [tag, value @ ..] = record;
    let value = i32::from_le_bytes(value);
    let pidfd = match (len, tag, fds.into_iter().next()) {
        (0, ..) => return Err(io::Error::other("the fork server is gone")),
        (5, SPAWNED, Some(pidfd)) => pidfd,
        (5, FORK_FAILED, _) => return Err(io::Error::from_raw_os_error(value)),
        _ => return Err(io::Error::other("bad record from the fork server")),
    };
    // The server's own pidfd for the worker: it names that process even should it have died
    // and been reaped by now, which a pidfd opened here from the pid would not.
    let child = Child::adopt_served(Pid::from_raw(value), pidfd, File::from(status));
    Ok(ServedWorker {
        child,
        requests,
        request_guard: request_read,
        results,
    })
}

/// Reads the exit record the server writes once it has reaped the worker.
pub(crate) fn read_exit(status: &mut File) -> io::Result<Exit> {
    let (tag, value) = read_record(status)?;
    match tag {
        EXIT_CODE => Ok(Exit::Code(value)),
        EXIT_SIGNAL => Ok(Exit::Signal(value)),
        _ => Err(io::Error::other("bad exit record from the fork server")),
    }
}

/// Reads one record from a status socket, waiting for it.
fn read_record(status: &mut File) -> io::Result<(u8, i32)> {
    let mut record = [0; 5];
    status
        .read_exact(&mut record)
        .map_err(|err| match err.kind() {
            io::ErrorKind::UnexpectedEof => io::Error::other("the fork server is gone"),
            _ => err,
        })?;
    let [tag, value @ ..] = record;
    Ok((tag, i32::from_le_bytes(value)))
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
