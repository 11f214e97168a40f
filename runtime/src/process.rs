//! Worker processes: [`Child`] owns one and reaps it; [`PoolProcess`] is a persistent pool worker
//! and the loop it runs.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

use crate::sys::Pid;

use crate::child;
use crate::frame::{self, Fill, FrameReader, Tag};
use crate::ring::{RingReader, RingWriter, LINGER};
use crate::server;
use crate::sys::{self, Exit, Fork};
use crate::task::{Entry, Sink};

/// A worker process that is killed and reaped when dropped, unless it was reaped already.
#[derive(Debug)]
pub(crate) struct Child {
    pub(crate) pid: Pid,
    /// Refers to this process and no other, even once its pid is reused.
    pub(crate) pidfd: OwnedFd,
    pub(crate) exit: Option<Exit>,
    /// For a worker the fork server forked (and reaps): where the server reports its end.
    status: Option<File>,
    /// Let go by [`release`](Child::release): the fork server reaps it, and nobody waits.
    released: bool,
}

impl Child {
    pub(crate) fn adopt(pid: Pid) -> io::Result<Child> {
        Ok(Child {
            pid,
            pidfd: sys::child_pidfd(pid)?,
            exit: None,
            status: None,
            released: false,
        })
    }

    /// A worker forked by the fork server, which sent `pidfd` for it and reports its end on
    /// `status`.
    pub(crate) fn adopt_served(pid: Pid, pidfd: OwnedFd, status: File) -> Child {
        Child {
            pid,
            pidfd,
            exit: None,
            status: Some(status),
            released: false,
        }
    }

    /// Lets go of a worker the fork server forked, once its outcome is in hand: kills it, should
    /// it still be there (it exits right after sending its outcome), and leaves the reaping to
    /// the server without waiting for its exit record. The server reaps every worker it forks,
    /// so none is left a zombie. Returns `false`, and does nothing, for a worker this process
    /// forked itself: only a `wait` here reaps that one.
    pub(crate) fn release(&mut self) -> bool {
        if self.status.is_none() || self.exit.is_some() {
            return false;
        }
        let _ = self.kill();
        // Closing the status socket tells the server that nobody waits for the exit record.
        self.status = None;
        self.released = true;
        true
    }

    pub(crate) fn kill(&self) -> io::Result<()> {
        if self.exit.is_some() {
            return Ok(());
        }
        sys::pidfd_kill(self.pidfd.as_fd())
    }

    /// A descriptor that is readable once [`reap`](Child::reap) will not block: the status socket
    /// of a worker the fork server reaps (its exit record has come), else the pidfd (the process
    /// has ended). Only an async waiter uses it.
    #[cfg(feature = "tokio")]
    pub(crate) fn exit_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        match &self.status {
            Some(status) => status.as_fd(),
            None => self.pidfd.as_fd(),
        }
    }

    /// Reaps the process, waiting for it to end.
    pub(crate) fn reap(&mut self) -> io::Result<Exit> {
        if let Some(exit) = self.exit {
            return Ok(exit);
        }
        let exit = match &mut self.status {
            Some(status) => server::read_exit(status)?,
            None => sys::wait(self.pid)?,
        };
        self.exit = Some(exit);
        Ok(exit)
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.exit.is_none() && !self.released {
            let _ = self.kill();
            let _ = self.reap();
        }
    }
}

/// A persistent worker of a pool: it reads batches from `requests` and hands one outcome frame
/// per task to its ring or, failing that, `results` (see `ring.rs`).
#[derive(Debug)]
pub(crate) struct PoolProcess {
    pub(crate) child: Child,
    /// Our end of the request pipe (non-blocking).
    pub(crate) requests: OwnedFd,
    /// A read end of the request pipe that we keep, so that the pipe always has a reader: a
    /// write to the pipe of a worker that has died then neither fails with `EPIPE` nor raises
    /// `SIGPIPE`, which would kill a program that has not ignored it. (The worker's death is
    /// seen through its pidfd.)
    request_guard: OwnedFd,
    /// Our end of the result pipe (non-blocking).
    pub(crate) results: OwnedFd,
    /// The outcome ring; `None` where shared memory could not be had, and every outcome comes
    /// on the pipe.
    pub(crate) ring: Option<RingReader>,
}

/// The exit code of a pool worker that received something other than a batch.
const EXIT_PROTOCOL: i32 = 71;

impl PoolProcess {
    /// Forks a pool worker. `siblings` are descriptors of other workers, which the new worker
    /// closes at once: it must hold no copy of a sibling's pipes.
    pub(crate) fn spawn(siblings: &[RawFd]) -> io::Result<PoolProcess> {
        child::install_panic_hook();
        // Without shared memory (a kernel without `memfd`, say), outcomes take the pipe.
        let (ring, ring_fd) = RingReader::create().ok().unzip();
        if let Some(served) = server::spawn_worker(ring_fd.as_ref().map(AsFd::as_fd)) {
            let served = served?;
            sys::set_nonblocking(served.requests.as_fd())?;
            sys::set_nonblocking(served.results.as_fd())?;
            return Ok(PoolProcess {
                child: served.child,
                requests: served.requests,
                request_guard: served.request_guard,
                results: served.results,
                ring,
            });
        }
        server::warn_if_threaded();
        let (request_read, request_write) = sys::pipe()?;
        let (result_read, result_write) = sys::pipe()?;
        sys::set_nonblocking(request_write.as_fd())?;
        sys::set_nonblocking(result_read.as_fd())?;
        sys::grow_pipe(result_write.as_fd());
        sys::grow_pipe(request_write.as_fd());
        let die_with = sys::is_main_thread().then(sys::getpid);
        crate::spawn::flush_stdout();
        // SAFETY: the child runs `serve`, which ends in `_exit` and never returns here. Until a
        // batch calls the user's function it takes no lock and touches no state shared with
        // other threads: `close`, `prctl`, `read` and `write` on its own pipes, and memory it
        // allocates itself (glibc's allocator is reset for the child at fork). What the user's
        // function touches is the caller's to judge, as the crate's Safety section explains.
        match unsafe { sys::fork(siblings) }? {
            Fork::Child => {
                drop((request_write, result_read));
                serve(&request_read, result_write, ring_fd, die_with)
            }
            Fork::Parent(pid) => {
                drop((result_write, ring_fd));
                Ok(PoolProcess {
                    child: Child::adopt(pid)?,
                    requests: request_write,
                    request_guard: request_read,
                    results: result_read,
                    ring,
                })
            }
        }
    }

    /// The descriptors this worker's parent side holds, for [`PoolProcess::spawn`]'s `siblings`.
    pub(crate) fn fds(&self) -> [RawFd; 4] {
        [
            self.child.pidfd.as_raw_fd(),
            self.requests.as_raw_fd(),
            self.request_guard.as_raw_fd(),
            self.results.as_raw_fd(),
        ]
    }
}

/// The loop of a pool worker: run each batch as it arrives, until the parent goes away. After a
/// [`Tag::Once`] batch, the worker exits.
///
/// `ring` is the shared memory for outcomes (see `ring.rs`), if the pool has one.
///
/// `parent` is the process to die with, through the kernel's parent-death signal. That signal
/// comes when the *thread* that forked the worker ends, so it is asked for only where that thread
/// lives as long as its process: the fork server's, or the main thread of a program. Otherwise
/// (`None`) the worker ends when its request pipe reaches end-of-file, which happens when the
/// pool drops it or its process dies.
pub(crate) fn serve(
    requests: &OwnedFd,
    results: OwnedFd,
    ring: Option<OwnedFd>,
    parent: Option<Pid>,
) -> ! {
    let code = panic::catch_unwind(AssertUnwindSafe(|| {
        if parent.is_some_and(|parent| !sys::die_with_parent(parent)) {
            return 0;
        }
        let mut out = Outlet {
            pipe: File::from(results),
            // Unmapped, the pool still reads the pipe, where every worker starts.
            ring: ring.and_then(|fd| RingWriter::map(&fd).ok()),
            piped: true,
            requests: requests.as_fd(),
            buffer: Vec::new(),
        };
        let mut reader = FrameReader::default();
        let mut idle = Idle::default();
        loop {
            match reader.frame() {
                Ok(Some((tag @ (Tag::Batch | Tag::Once), payload))) => {
                    let Some((entry, tasks)) = payload.split_first_chunk::<8>() else {
                        return EXIT_PROTOCOL;
                    };
                    let Ok(entry) = usize::try_from(u64::from_le_bytes(*entry)) else {
                        return EXIT_PROTOCOL;
                    };
                    // SAFETY: the parent sends only addresses that `task::entry` returned, in
                    // the process image that this one is a fork of, over a pipe only the two of
                    // them hold; so this is the address of an `Entry` function, here as there.
                    let entry = unsafe { std::mem::transmute::<usize, Entry>(entry) };
                    if entry(tasks, &mut out).is_err() || tag == Tag::Once {
                        // Done, or the parent closed its end: the pool is gone.
                        return 0;
                    }
                    reader.consume();
                }
                Ok(Some(_)) | Err(_) => return EXIT_PROTOCOL,
                Ok(None) => match fill(&mut reader, requests.as_fd(), &out, &mut idle) {
                    Ok(Fill::Data | Fill::Drained | Fill::WouldBlock) => {}
                    Ok(Fill::Eof) | Err(_) => return 0,
                },
            }
        }
    }));
    sys::exit_now(code.unwrap_or(EXIT_PROTOCOL))
}

/// Where a pool worker's outcomes go: its ring while they fit, else its pipe (see `ring.rs`).
struct Outlet<'a> {
    pipe: File,
    ring: Option<RingWriter>,
    /// Whether outcomes go to the pipe now. Every worker starts there, so that one whose ring
    /// could not be mapped needs to tell nobody.
    piped: bool,
    /// The request pipe, whose hang-up says that the pool is gone.
    requests: BorrowedFd<'a>,
    /// The buffer that outcomes are encoded into, kept from batch to batch.
    buffer: Vec<u8>,
}

/// The largest outcome buffer a worker keeps for its next batch: enough for large values, and
/// little to hold on to.
const KEPT_BUFFER: usize = 8 << 20;

/// How long a worker waits for room in its ring before it checks that its pool still exists.
const PATIENCE: Duration = Duration::from_millis(100);

impl Sink for Outlet<'_> {
    fn buffer(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.buffer)
    }

    fn keep(&mut self, buffer: Vec<u8>) {
        if buffer.capacity() <= KEPT_BUFFER {
            self.buffer = buffer;
        }
    }

    fn outcome(&mut self, frame: &[u8]) -> io::Result<()> {
        let Some(ring) = &mut self.ring else {
            return self.pipe.write_all(frame);
        };
        if !RingWriter::could_fit(frame.len()) {
            if !self.piped {
                // `fits` left room for this header after the last frame.
                ring.push(&frame::empty(Tag::ToPipe));
                self.piped = true;
            }
            return self.pipe.write_all(frame);
        }
        while !ring.fits(frame.len()) {
            // The pool has fallen behind: wait for it, as a full pipe would make us.
            if !ring.wait_for_room(frame.len(), PATIENCE) && sys::hung_up(self.requests) {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
        }
        if self.piped {
            self.pipe.write_all(&frame::empty(Tag::ToRing))?;
            self.piped = false;
        }
        ring.push(frame);
        if ring.take_sleeping() {
            self.pipe.write_all(&frame::empty(Tag::Bell))?;
        }
        Ok(())
    }
}

/// How a pool worker waited for its last requests, to choose how to wait for the next.
#[derive(Default)]
struct Idle {
    /// Whether requests have lately come within [`LINGER`] of the worker's asking: then it
    /// watches for the next in shared memory for that long before it sleeps in `read`.
    lingering: bool,
    /// The ring's `posted` count just after the worker last read its pipe.
    seen: u32,
}

/// Reads more requests into `reader`, watching the ring for them first while they come quickly
/// (see `ring.rs`).
fn fill(
    reader: &mut FrameReader,
    requests: BorrowedFd<'_>,
    out: &Outlet<'_>,
    idle: &mut Idle,
) -> io::Result<Fill> {
    let Some(ring) = &out.ring else {
        return reader.fill(requests);
    };
    if idle.lingering {
        idle.lingering = ring.posted_since(idle.seen, LINGER);
    }
    let asked = Instant::now();
    let filled = reader.fill(requests);
    if !idle.lingering {
        idle.lingering = asked.elapsed() < LINGER && crate::ring::may_spin();
    }
    // What was posted so far has been read, or is about to be: wait for what comes next. (A
    // post that lands just after this read counts as new: one spin then ends early, and the
    // worker sleeps in `read` as it would have anyway.)
    idle.seen = ring.posted();
    filled
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dead_workers_request_pipe_still_takes_writes() {
        let mut worker = PoolProcess::spawn(&[]).unwrap();
        worker.child.kill().unwrap();
        worker.child.reap().unwrap();
        // The worker's read end is gone with it. Without the one we keep, this write would
        // fail with EPIPE (and raise SIGPIPE in a program that has not ignored it).
        assert_eq!(sys::write_some(worker.requests.as_fd(), b"x").unwrap(), 1);
    }
}
