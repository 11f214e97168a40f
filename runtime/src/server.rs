//! The fork server: a small single-threaded process, forked by [`init`] before the program starts
//! threads, from which every worker is then forked.
//!
//! Forking straight from a process with several threads leaves, in the child, every lock another
//! thread held at that moment locked for ever (stdout's, a `Mutex`, an async runtime's); a worker
//! that takes one hangs. The server has one thread, so its children inherit no such lock, and its
//! memory is what the program had at `init`, however large the program grows later.
//!
//! For each worker, the caller makes a request pipe, a result pipe and a *status* pipe (and, for a
//! pool worker, the shared memory of its outcome ring), and sends the worker's ends to the server
//! over the control socket. The server forks the worker, writes its pid to the status pipe, and,
//! once the worker has ended and been reaped, its exit status. The caller kills a worker through a pidfd, which
//! works for processes that are not its children. A caller that has a one-off worker's outcome
//! closes the status pipe without reading the exit record (`Child::release`): the server reaps
//! the worker all the same.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use nix::unistd::Pid;

use crate::error::ErrorKind;
use crate::process::{self, Child};
use crate::sys::{self, Exit, Fork, Interest, SigPipe};
use crate::Error;

/// The caller's end of the control socket, once [`init`] has run.
static SERVER: OnceLock<Mutex<OwnedFd>> = OnceLock::new();

/// Records on the status pipe: a tag byte, then a little-endian `i32`: first the worker's pid (or
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
    // Installed here, so that every worker the server forks has it.
    crate::child::install_panic_hook();
    let (ours, theirs) = sys::packet_pair()?;
    let parent = sys::getpid();
    crate::spawn::flush_stdout();
    // SAFETY: `init` checked that this process has one thread, so the child inherits no lock
    // held elsewhere. The child runs `serve`, which ends in `_exit` and never returns here.
    match unsafe { sys::fork() }? {
        Fork::Child => {
            drop(ours);
            serve(&theirs, parent)
        }
        Fork::Parent(_) => Ok(ours),
    }
}

/// A worker the server forked: the process, and our ends of its request and result pipes.
pub(crate) struct ServedWorker {
    pub(crate) child: Child,
    pub(crate) requests: OwnedFd,
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
    let (status, worker_status) = sys::pipe()?;
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
    drop((request_read, result_write, worker_status));
    let mut status = File::from(status);
    let (tag, value) = read_record(&mut status)?;
    match tag {
        SPAWNED => {}
        FORK_FAILED => return Err(io::Error::from_raw_os_error(value)),
        _ => return Err(io::Error::other("bad record from the fork server")),
    }
    let child = Child::adopt_served(Pid::from_raw(value), status)?;
    Ok(ServedWorker {
        child,
        requests,
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

/// Reads one record from a status pipe, waiting for it.
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

/// A worker the server forked and has not yet reaped.
struct Served {
    pid: Pid,
    pidfd: OwnedFd,
    status: File,
}

/// The server's loop: fork a worker for each request, report each worker's end, and end (with
/// every worker) when the program does. Never returns.
fn serve(control: &OwnedFd, parent: Pid) -> ! {
    let code = panic::catch_unwind(AssertUnwindSafe(|| {
        if !sys::die_with_parent(parent) {
            return 0;
        }
        // A caller that has its worker's outcome closes the status pipe without waiting for the
        // exit record (`Child::release`): writing that record must not kill the server.
        let sigpipe = sys::ignore_sigpipe().ok();
        let mut workers: Vec<Served> = Vec::new();
        let mut ready = Vec::new();
        loop {
            let mut fds = vec![(control.as_fd(), Interest::Read)];
            fds.extend(workers.iter().map(|w| (w.pidfd.as_fd(), Interest::Read)));
            if sys::poll_many(&fds, None, &mut ready).is_err() {
                continue;
            }
            drop(fds);
            for i in (0..workers.len()).rev() {
                if ready[i + 1] {
                    let mut worker = workers.swap_remove(i);
                    let record = match sys::wait(worker.pid) {
                        Ok(Exit::Code(code)) => (EXIT_CODE, code),
                        Ok(Exit::Signal(signal)) => (EXIT_SIGNAL, signal),
                        // Reaped by someone else, which cannot happen here: report a crash.
                        Err(_) => (EXIT_SIGNAL, libc::SIGKILL),
                    };
                    let _ = write_record(&mut worker.status, record);
                }
            }
            if ready[0] && !accept(control, &mut workers, sigpipe.as_ref()) {
                // The program has ended (or dropped its end): so do its workers.
                for worker in &workers {
                    let _ = sys::pidfd_kill(worker.pidfd.as_fd());
                }
                for worker in &workers {
                    let _ = sys::wait(worker.pid);
                }
                return 0;
            }
        }
    }));
    sys::exit_now(code.unwrap_or(70))
}

fn write_record(status: &mut File, (tag, value): (u8, i32)) -> io::Result<()> {
    let mut record = [tag, 0, 0, 0, 0];
    record[1..].copy_from_slice(&value.to_le_bytes());
    status.write_all(&record)
}

/// Takes one request from the control socket and forks its worker; false once the program has
/// hung up.
fn accept(control: &OwnedFd, workers: &mut Vec<Served>, sigpipe: Option<&SigPipe>) -> bool {
    let mut kind = [0; 1];
    let Ok((len, fds)) = sys::recv_with_fds(control.as_fd(), &mut kind) else {
        return false;
    };
    if len == 0 && fds.is_empty() {
        return false;
    }
    let mut fds = fds.into_iter();
    let (Some(requests), Some(results), Some(status), ring, None) =
        (fds.next(), fds.next(), fds.next(), fds.next(), fds.next())
    else {
        // A malformed request: nobody can be told, and nobody waits on it.
        return true;
    };
    let mut status = File::from(status);
    let inherited: Vec<RawFd> = std::iter::once(control.as_raw_fd())
        .chain(
            workers
                .iter()
                .flat_map(|w| [w.pidfd.as_raw_fd(), w.status.as_raw_fd()]),
        )
        .chain(std::iter::once(status.as_raw_fd()))
        .collect();
    let server = sys::getpid();
    // SAFETY: the server has one thread. The child runs `process::serve`, which ends in `_exit`.
    match unsafe { sys::fork() } {
        Ok(Fork::Child) => {
            for fd in inherited {
                sys::close_raw(fd);
            }
            std::mem::forget(status);
            std::mem::forget(std::mem::take(workers));
            if let Some(sigpipe) = sigpipe {
                sys::restore_sigpipe(sigpipe);
            }
            process::serve(&requests, results, ring, Some(server))
        }
        Ok(Fork::Parent(pid)) => {
            drop((requests, results, ring));
            match sys::pidfd_open(pid) {
                Ok(pidfd) => {
                    if write_record(&mut status, (SPAWNED, pid.as_raw())).is_ok() {
                        workers.push(Served { pid, pidfd, status });
                    } else {
                        // The caller is gone already: end the worker too.
                        let _ = sys::pidfd_kill(pidfd.as_fd());
                        let _ = sys::wait(pid);
                    }
                }
                Err(err) => {
                    sys::kill_pid(pid);
                    let _ = sys::wait(pid);
                    let errno = err.raw_os_error().unwrap_or(libc::EIO);
                    let _ = write_record(&mut status, (FORK_FAILED, errno));
                }
            }
        }
        Err(err) => {
            let errno = err.raw_os_error().unwrap_or(libc::EIO);
            let _ = write_record(&mut status, (FORK_FAILED, errno));
        }
    }
    true
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
