//! The caller's side of the fork server: the control socket, and asking for a worker.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Mutex, Once, OnceLock, PoisonError};

use super::protocol;
use crate::sys::{self, Pid};

/// The caller's end of the control socket, once `init` has run.
static SERVER: OnceLock<Mutex<OwnedFd>> = OnceLock::new();

/// The server's pid, to reap it once it is gone.
static PID: OnceLock<Pid> = OnceLock::new();

/// Keeps the control socket of the server `init` started, and its pid. A single thread calls
/// it, once.
pub(super) fn connect(control: OwnedFd, pid: Pid) {
    let _ = PID.set(pid);
    let _ = SERVER.set(Mutex::new(control));
}

/// Reaps the server, once, if `err` says it is gone: it is this process's child, and would
/// otherwise stay a zombie for the rest of the program. It is ending, not running: the kernel
/// closed its sockets on its way out (hence `err`), so the wait is short.
pub(crate) fn bury_if_gone(err: &io::Error) {
    static BURIED: Once = Once::new();
    if !crate::error::is_server_gone(err) {
        return;
    }
    BURIED.call_once(|| {
        if let Some(pid) = PID.get() {
            // In a forked copy of the caller, the server is not its child: nothing to reap.
            let _ = sys::wait(*pid);
        }
    });
}

/// Whether workers are forked by the server.
pub(crate) fn is_running() -> bool {
    SERVER.get().is_some()
}

/// A worker the server forked: the process, its status socket, and our ends of its pipes.
#[derive(Debug)]
pub(crate) struct Served {
    pub(crate) pid: Pid,
    /// The server's own pidfd for the worker: it names that process even should it have died
    /// and been reaped by now, which a pidfd opened here from the pid would not.
    pub(crate) pidfd: OwnedFd,
    /// Where the server reports the worker's end.
    pub(crate) status: File,
    /// The write end of the request pipe.
    pub(crate) requests: OwnedFd,
    /// A read end of the request pipe, which the caller keeps (see `proc::launch`).
    pub(crate) request_guard: OwnedFd,
    /// The read end of the result pipe.
    pub(crate) results: OwnedFd,
    /// How many bytes of the `first` requests are on the request pipe already.
    pub(crate) first_sent: usize,
}

/// Asks the server for a worker, which runs `worker::serve` on its pipes and, if given, the
/// outcome ring in `ring`. `None` when there is no server (the caller forks directly).
///
/// `first`, the worker's first requests, goes on its request pipe before the server hears of
/// the worker, if the pipe holds it all (see [`Served::first_sent`]): the worker then finds
/// its task as it starts, rather than after the server has told the caller that it started
/// and the caller has written it, two wake-ups later.
pub(crate) fn request(ring: Option<BorrowedFd<'_>>, first: &[u8]) -> Option<io::Result<Served>> {
    let control = SERVER.get()?;
    Some(ask(control, ring, first).inspect_err(bury_if_gone))
}

fn ask(control: &Mutex<OwnedFd>, ring: Option<BorrowedFd<'_>>, first: &[u8]) -> io::Result<Served> {
    let (request_guard, requests) = sys::pipe()?;
    let (results, result_write) = sys::pipe()?;
    // A socket rather than a pipe, so that the worker's pidfd can come with its pid.
    let (status, worker_status) = sys::packet_pair()?;
    let room = sys::grow_pipe(requests.as_fd());
    sys::grow_pipe(results.as_fd());
    let mut first_sent = 0;
    if !first.is_empty() && first.len() <= room {
        // The pipe is empty and holds it all, so these writes do not block.
        while first_sent < first.len() {
            first_sent += sys::write_some(requests.as_fd(), &first[first_sent..])?;
        }
    }
    {
        let control = control.lock().unwrap_or_else(PoisonError::into_inner);
        protocol::send_request(
            control.as_fd(),
            request_guard.as_fd(),
            result_write.as_fd(),
            worker_status.as_fd(),
            ring,
        )?;
    }
    drop((result_write, worker_status));
    let status = File::from(status);
    let (pid, pidfd) = protocol::recv_spawned(&status)?;
    Ok(Served {
        pid,
        pidfd,
        status,
        requests,
        request_guard,
        results,
        first_sent,
    })
}
