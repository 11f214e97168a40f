//! Everything that runs after the fork, in the worker: the loop of a worker that serves
//! requests ([`serve`]), the life of a one-off worker forked straight from the caller
//! ([`run_once`]), the batch runner (`task.rs`) and the panic hook (`panic.rs`).
//!
//! Nothing here may unwind into the code that called `fork`, which belongs to the parent: each
//! life ends in `sys::exit_now`, and a panic in our own code becomes an exit code that the
//! parent reports.

mod panic;
mod task;

use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

pub(crate) use self::panic::install_panic_hook;
pub(crate) use self::task::{address, entry, init_entry, run_one, Entry, RunBatch};
use crate::func::TaskFn;
use crate::func::Wire;
use crate::sys::{self, Pid};
use crate::transport::channel::{Sender, Sink};
use crate::transport::ring::{self, QUICK};
use crate::wire::batch::{self, Request};
use crate::wire::frame::{Fill, FrameReader};

/// The exit code of a worker that could not deliver its outcome (the pipe broke, or our own
/// code panicked): the parent then reports the missing or partial frame.
const EXIT_UNDELIVERED: i32 = 70;

/// The exit code of a worker that received something other than a request.
const EXIT_PROTOCOL: i32 = 71;

/// How deep in a fleet (`fleet/`) this worker's current batch runs: the depth its caller ran
/// at, which every request carries (`wire::batch`), so that a fleet started by a task in a
/// worker process is as deep as the envelope that task came from. 0 outside a fleet.
static BATCH_DEPTH: AtomicU32 = AtomicU32::new(0);

#[cfg(feature = "fleet")]
tokio::task_local! {
    /// The depth of the envelope that this tokio task serves (`fleet::FleetWorker`).
    pub(crate) static SERVED_DEPTH: u32;
}

/// How deep in a fleet the calling code runs: the envelope its tokio task serves, or, in a
/// worker process, the batch it runs (whichever is deeper); 0 outside a fleet. What a pool or
/// a one-off started here passes on to its workers.
pub(crate) fn fleet_depth() -> u32 {
    #[cfg(feature = "fleet")]
    let served = SERVED_DEPTH.try_with(|depth| *depth).unwrap_or(0);
    #[cfg(not(feature = "fleet"))]
    let served = 0;
    served.max(BATCH_DEPTH.load(Ordering::Relaxed))
}

/// In a worker: the depth of the batch it is about to run.
pub(crate) fn set_fleet_depth(depth: u32) {
    BATCH_DEPTH.store(depth, Ordering::Relaxed);
}

/// How a worker ends when its caller does, busy or idle.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Lifeline {
    /// The kernel kills the worker when this process ends (`PR_SET_PDEATHSIG`): for a worker
    /// forked by a thread that lives as long as its process (the fork server's, or a program's
    /// main thread).
    DieWith(Pid),
    /// A thread in the worker watches this process's pidfd and ends the worker with it: for a
    /// worker forked from any other thread, which may end before its process does.
    Watch(Pid),
    /// Arranged already: a spare of the fork server asked for the parent-death signal.
    Arranged,
}

impl Lifeline {
    /// For a worker forked straight from the caller `parent`, on its main thread or not.
    pub(crate) fn direct(parent: Pid, main_thread: bool) -> Lifeline {
        if main_thread {
            Lifeline::DieWith(parent)
        } else {
            Lifeline::Watch(parent)
        }
    }

    /// Sets it up; `false` when the caller is gone already, and the worker should end at once.
    fn hold(self) -> bool {
        match self {
            Lifeline::DieWith(parent) => sys::die_with_parent(parent),
            Lifeline::Watch(parent) => sys::watch_parent(parent),
            Lifeline::Arranged => true,
        }
    }
}

/// The life of a one-off worker forked straight from the caller: runs `f` on `args`, which it
/// has by `fork`, and writes its outcome to `results`. Never returns. The worker ends with its
/// caller, by `lifeline`.
pub(crate) fn run_once<F: TaskFn<Args, R>, Args: Wire, R: Wire>(
    f: F,
    args: Args,
    results: OwnedFd,
    lifeline: Lifeline,
) -> ! {
    let delivered = std::panic::catch_unwind(AssertUnwindSafe(|| {
        if !lifeline.hold() {
            return false;
        }
        let mut frame = Vec::new();
        run_one(
            crate::func::codec::<F, Args, R>(),
            || f.call(args),
            &mut frame,
        );
        std::fs::File::from(results).write_all(&frame).is_ok()
    }));
    sys::exit_now(match delivered {
        Ok(true) => 0,
        _ => EXIT_UNDELIVERED,
    })
}

/// The loop of a worker that serves requests: run each batch as it arrives, until the caller
/// goes away. After a [`Request::Once`] batch, the worker exits. Never returns.
///
/// `ring` is the shared memory for outcomes (`transport/ring.rs`), if the pool has one.
///
/// `lifeline` ends the worker when its caller ends, even in the middle of a task; an idle
/// worker also ends when its request pipe reaches end-of-file, which happens when the pool
/// drops it or its process dies.
pub(crate) fn serve(
    requests: &OwnedFd,
    results: OwnedFd,
    ring: Option<OwnedFd>,
    lifeline: Lifeline,
) -> ! {
    let code = std::panic::catch_unwind(AssertUnwindSafe(|| {
        if !lifeline.hold() {
            return 0;
        }
        let mut out = Sender::new(results, ring, requests.as_fd());
        let mut reader = FrameReader::<Request>::default();
        let mut idle = Idle::default();
        loop {
            match reader.frame() {
                Ok(Some((tag, payload))) => {
                    let Some((entry, depth, tasks)) = batch::parse(payload) else {
                        return EXIT_PROTOCOL;
                    };
                    set_fleet_depth(depth);
                    let Ok(entry) = usize::try_from(entry) else {
                        return EXIT_PROTOCOL;
                    };
                    // SAFETY: the caller sends only addresses that `task::address` took of an
                    // `Entry` that `task::entry` or `task::init_entry` returned, in the process
                    // image that this one is a fork of, over a pipe only the two of them hold;
                    // so this is the address of a `RunBatch` function, here as there.
                    let run = unsafe { std::mem::transmute::<usize, RunBatch>(entry) };
                    let ran = run(tag.codec(), tasks, &mut out).and_then(|()| out.batch_done());
                    if ran.is_err() || matches!(tag, Request::Once(_)) {
                        // Done, or the caller closed its end (the pool is gone), or the
                        // initializer failed.
                        return 0;
                    }
                    reader.consume();
                }
                Err(_) => return EXIT_PROTOCOL,
                Ok(None) => match fill(&mut reader, requests.as_fd(), &out, &mut idle) {
                    Ok(Fill::Data | Fill::Drained | Fill::WouldBlock) => {}
                    Ok(Fill::Eof) | Err(_) => return 0,
                },
            }
        }
    }));
    sys::exit_now(code.unwrap_or(EXIT_PROTOCOL))
}

/// How a worker waited for its last requests, to choose how to wait for the next.
#[derive(Default)]
struct Idle {
    /// Whether requests have lately come within [`QUICK`] of the worker's asking: then it
    /// watches for the next in shared memory for a moment (`ring::LINGER`, `ring::STRETCH`)
    /// before it sleeps in `read`.
    lingering: bool,
    /// The ring's `posted` count just after the worker last read its pipe.
    seen: u32,
}

/// Reads more requests into `reader`, watching the ring for them first while they come quickly
/// (see `transport/ring.rs`).
fn fill(
    reader: &mut FrameReader<Request>,
    requests: BorrowedFd<'_>,
    out: &Sender<'_>,
    idle: &mut Idle,
) -> std::io::Result<Fill> {
    let Some(ring) = out.ring() else {
        return reader.fill(requests);
    };
    if idle.lingering {
        idle.lingering = ring.posted_since(idle.seen);
    }
    let asked = Instant::now();
    let filled = reader.fill(requests);
    if !idle.lingering {
        idle.lingering = asked.elapsed() < QUICK && ring::may_spin();
    }
    // What was posted so far has been read, or is about to be: wait for what comes next. (A
    // post that lands just after this read counts as new: one spin then ends early, and the
    // worker sleeps in `read` as it would have anyway.)
    idle.seen = ring.posted();
    filled
}
