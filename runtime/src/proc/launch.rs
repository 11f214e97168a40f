//! Starting a worker process, the one way every worker starts: from the fork server when
//! [`init`](crate::init) has run, else by forking the caller. Caller side, up to the fork.

use std::convert::Infallible;
use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use super::child::Child;
use super::held::Held;
use super::{oom, orphans};
use crate::server;
use crate::sys::{self, Fork, Pid};
use crate::worker;

/// A worker just started, and the caller's ends of its pipes. They block; each kind of caller
/// makes non-blocking the ends it waits on.
#[derive(Debug)]
pub(crate) struct Launched {
    pub(crate) child: Child,
    /// The write end of the request pipe.
    pub(crate) requests: OwnedFd,
    /// A read end of the request pipe that the caller keeps, so that the pipe always has a
    /// reader: a write to the pipe of a worker that has died then neither fails with `EPIPE`
    /// nor raises `SIGPIPE`, which would kill a program that has not ignored it. (The worker's
    /// death is seen through its pidfd.)
    pub(crate) request_guard: OwnedFd,
    /// The read end of the result pipe.
    pub(crate) results: OwnedFd,
    /// Whether the fork server forked it: it then runs [`worker::serve`], and waits for a
    /// request on its pipe, where a worker forked here runs what the caller gave [`launch`].
    pub(crate) served: bool,
    /// How many bytes of the `first` requests given to [`launch`] are on the request pipe
    /// already (of a served worker; 0 for one forked here).
    pub(crate) first_sent: usize,
}

/// What a worker forked straight from the caller starts with, in the child.
pub(crate) struct Direct {
    /// The read end of the request pipe.
    pub(crate) requests: OwnedFd,
    /// The write end of the result pipe.
    pub(crate) results: OwnedFd,
    /// The outcome ring's memory, if the caller made one.
    pub(crate) ring: Option<OwnedFd>,
    /// The caller.
    pub(crate) parent: Pid,
    /// Whether the caller forked from its main thread, whose end is the process's end: only
    /// then may the worker ask to die with the thread that forked it (`PR_SET_PDEATHSIG`);
    /// otherwise it watches the caller's pidfd (`sys::watch_parent`).
    pub(crate) main_thread: bool,
}

impl Launched {
    /// Lists the caller's descriptors of this worker, which every later fork closes in its
    /// child (`held.rs`), until the worker's `Child` drops.
    fn hold(mut self, held: &mut Held) -> Launched {
        let mut fds = vec![
            self.child.pidfd.as_raw_fd(),
            self.requests.as_raw_fd(),
            self.request_guard.as_raw_fd(),
            self.results.as_raw_fd(),
        ];
        fds.extend(self.child.status().map(AsRawFd::as_raw_fd));
        let key = held.add(&fds);
        self.child.set_held(key);
        self
    }
}

/// Starts a worker: asks the fork server for one, or, without a server, forks this process and
/// runs `direct_body` in the child (it never returns: it ends the process, hence `Infallible`).
/// `ring` is the outcome ring's memory for a pool worker; `first`, the requests a served
/// worker should start with, which go out with it where they fit ([`Launched::first_sent`]
/// says how much did; the caller sends the rest). A worker forked here closes at once
/// the caller's descriptors of every other live worker (`held.rs`): it must hold no copy of
/// another worker's pipes. (The server's workers hold none to begin with.)
///
/// # Safety
///
/// `direct_body` runs in the forked child and must meet [`sys::fork`]'s contract: touch nothing
/// another thread of the caller may have been using, and end with `sys::exit_now`.
#[allow(
    unreachable_code,
    reason = "rustc takes the call of `direct_body`, which returns `Infallible`, for the end"
)]
pub(crate) unsafe fn launch(
    ring: Option<OwnedFd>,
    first: &[u8],
    direct_body: impl FnOnce(Direct) -> Infallible,
) -> io::Result<Launched> {
    worker::install_panic_hook();
    orphans::reap_ended();
    oom::watch();
    if let Some(served) = server::request(ring.as_ref().map(AsFd::as_fd), first) {
        let served = served?;
        let launched = Launched {
            child: Child::adopt_served(served.pid, served.pidfd, served.status),
            requests: served.requests,
            request_guard: served.request_guard,
            results: served.results,
            served: true,
            first_sent: served.first_sent,
        };
        // Not listed: the caller no longer forks (`held.rs`).
        return Ok(launched);
    }
    server::warn_if_threaded();
    // The host may have set `SIGCHLD` to `SIG_IGN`, or do so later: checked at every fork.
    sys::keep_exit_statuses();
    // Held until this worker's own descriptors are listed: another thread's fork then neither
    // copies them unlisted nor forks half-way through this.
    let mut held = Held::lock();
    let (request_read, request_write) = sys::pipe()?;
    let (result_read, result_write) = sys::pipe()?;
    sys::grow_pipe(result_write.as_fd());
    sys::grow_pipe(request_write.as_fd());
    let parent = sys::getpid();
    let main_thread = sys::is_main_thread();
    let others = held.all();
    // SAFETY: the caller's contract covers `direct_body`; before it, the child only drops
    // descriptors it owns, and its copy of the list's lock, which its one thread holds.
    match unsafe { sys::fork(&[], &others) }? {
        Fork::Child => {
            // The user's function may start workers of its own (a pool, a one-off), which
            // lists theirs.
            held.release_in_child();
            drop((request_write, result_read));
            sys::prefer_for_oom_kill();
            let direct = Direct {
                requests: request_read,
                results: result_write,
                ring,
                parent,
                main_thread,
            };
            match direct_body(direct) {}
        }
        Fork::Parent(pid) => {
            drop((result_write, ring));
            let launched = Launched {
                child: Child::adopt(pid)?,
                requests: request_write,
                request_guard: request_read,
                results: result_read,
                served: false,
                first_sent: 0,
            };
            Ok(launched.hold(&mut held))
        }
    }
}
