//! One-off workers: [`spawn`] starts a worker for one call, [`JoinHandle`] waits for its outcome.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::codec::Codec;
use crate::error::Error;
use crate::error::ErrorKind;
use crate::func::Wire;
use crate::func::{self, TaskFn};
use crate::proc::child::Child;
use crate::proc::launch::{self, Direct};
use crate::server;
use crate::sys::{self, Exit};
use crate::transport::ring::{self, STRETCH};
use crate::wire::batch;
use crate::wire::frame::{Fill, FrameReader};
use crate::wire::outcome::{self, Status};
use crate::worker::{self, Lifeline};

/// Runs `f` with `args` in a worker process of its own.
///
/// This is what `my_fn::spawn(..)` calls. Forked straight from the caller, the worker has the
/// arguments by `fork`, in memory; from the fork server, they cross its request pipe.
///
/// # Errors
///
/// Fails with [`Error::is_spawn`] when the pipe or the process cannot be created, typically
/// with `EMFILE` (too many open files) or `EAGAIN` (too many processes).
pub fn spawn<F, Args, R>(f: F, args: Args) -> Result<JoinHandle<R>, Error>
where
    F: TaskFn<Args, R>,
    Args: Wire,
    R: Wire,
{
    let name = func::name::<F>();
    let codec = func::codec::<F, Args, R>();
    let spawn_error = |err| Error::new(name, ErrorKind::Spawn(err));
    let depth = worker::fleet_depth();
    // A worker of the fork server gets its task over its request pipe, which the task goes
    // on before the server starts the worker, so that the worker finds it there at once.
    // Encoded first, so that arguments that cannot be encoded start no worker.
    let task = if server::is_running() {
        let entry = worker::address(worker::entry::<F, Args, R>());
        batch::once(entry, depth, codec, &args)
            .map_err(|err| Error::new(name, ErrorKind::EncodeArgs(err.to_string())))?
    } else {
        Vec::new()
    };
    let mut args = Some(args);
    let body = |direct: Direct| match args.take() {
        Some(args) => {
            worker::set_fleet_depth(depth);
            let lifeline = Lifeline::direct(direct.parent, direct.main_thread);
            worker::run_once(f, args, direct.results, lifeline)
        }
        None => sys::exit_now(0),
    };
    // SAFETY: `worker::run_once` ends in `_exit` and never returns here. Until it calls the
    // user's function it takes no lock and touches no state shared with other threads: `prctl`,
    // `getppid` and thread-locals of its own thread. What the user's function itself may touch
    // is the caller's to judge, as the crate documentation's Safety section explains.
    let launched = unsafe { launch::launch(None, &task, body) }.map_err(spawn_error)?;
    if launched.served {
        if task.is_empty() {
            unreachable!("the fork server was running, and a worker once started keeps it");
        }
        // The request pipe keeps a reader of ours (`request_guard`) while the task goes out, so
        // that a worker already dead makes this write neither fail nor raise SIGPIPE.
        send_rest(name, &task[launched.first_sent..], &launched.requests)?;
    }
    drop((launched.requests, launched.request_guard));
    sys::set_nonblocking(launched.results.as_fd()).map_err(spawn_error)?;
    Ok(JoinHandle {
        child: launched.child,
        pipe: launched.results,
        reader: FrameReader::default(),
        worker: name,
        codec,
        _output: PhantomData,
    })
}

/// Sends a worker forked by the fork server what of its one task did not go out with it.
fn send_rest(name: &'static str, mut rest: &[u8], link: &OwnedFd) -> Result<(), Error> {
    while !rest.is_empty() {
        match sys::write_some(link.as_fd(), rest) {
            Ok(n) => rest = &rest[n..],
            // The worker died before it read its task: `join` reports how.
            Err(err) if err.kind() == io::ErrorKind::BrokenPipe => break,
            Err(err) => return Err(Error::new(name, ErrorKind::Spawn(err))),
        }
    }
    Ok(())
}

/// An owned permission to join a worker process, returned by `my_fn::spawn(..)`.
///
/// Dropping the handle kills the worker (`SIGKILL`) and reaps it: a worker never outlives its
/// handle, and no zombie is left behind. (A worker of the fork server ([`init`](crate::init))
/// whose outcome [`join`](JoinHandle::join) has received is killed too, but the server reaps
/// it, without the caller waiting.)
///
/// With the `tokio` feature, `handle.await` joins without blocking a thread (`JoinFuture`).
pub struct JoinHandle<T> {
    pub(crate) child: Child,
    pub(crate) pipe: OwnedFd,
    reader: FrameReader<Status>,
    worker: &'static str,
    /// The codec of the function's result, which the worker's frame must be in.
    codec: Codec,
    _output: PhantomData<fn() -> T>,
}

impl<T> fmt::Debug for JoinHandle<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinHandle")
            .field("worker", &self.worker)
            .field("pid", &self.child.pid.as_raw())
            .finish_non_exhaustive()
    }
}

impl<T: Wire> JoinHandle<T> {
    /// Waits for the worker to finish and returns what its function returned.
    ///
    /// # Errors
    ///
    /// Fails when the worker did not return a value: it panicked, a signal killed it, it exited
    /// without a result, its result could not be moved back, or waiting failed. [`Error`]
    /// tells these apart. A worker function that returns `Result<T, E>` hands back its own
    /// `Err(E)` as `Ok(Err(E))`.
    ///
    /// A worker forked by the fork server ([`init`](crate::init)) is done once its outcome has
    /// arrived: it exits right after sending it. `join` then returns at once, without waiting
    /// for the server to report the exit: it sends the worker `SIGKILL`, in case it is still
    /// there, and the server reaps it, so no zombie is left. Otherwise (the worker is this
    /// process's child, or it sent no outcome) `join` reaps the worker before it returns.
    ///
    /// ```
    /// # use lambda_parallel::lambda_parallel;
    /// #[lambda_parallel]
    /// fn increment(x: u8) -> u8 {
    ///     x + 1
    /// }
    ///
    /// #[lambda_parallel]
    /// fn crash() {
    ///     std::process::abort()
    /// }
    ///
    /// # fn main() -> Result<(), lambda_parallel::Error> {
    /// assert_eq!(increment::spawn(1)?.join()?, 2);
    /// assert_eq!(crash::spawn()?.join().unwrap_err().signal_name(), Some("SIGABRT"));
    /// # Ok(())
    /// # }
    /// ```
    pub fn join(self) -> Result<T, Error> {
        self.wait(None)
    }

    /// Like [`join`](JoinHandle::join), but gives up after `timeout`: the worker is then killed
    /// and reaped, and the error says so ([`Error::is_timeout`]).
    ///
    /// # Errors
    ///
    /// As [`join`](JoinHandle::join), and a timeout.
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// # use lambda_parallel::lambda_parallel;
    /// #[lambda_parallel]
    /// fn stuck() {
    ///     std::thread::sleep(Duration::MAX)
    /// }
    ///
    /// # fn main() -> Result<(), lambda_parallel::Error> {
    /// let err = stuck::spawn()?.join_timeout(Duration::from_millis(50)).unwrap_err();
    /// assert!(err.is_timeout());
    /// # Ok(())
    /// # }
    /// ```
    pub fn join_timeout(self, timeout: Duration) -> Result<T, Error> {
        self.wait(Some(timeout))
    }

    /// The process id of the worker.
    ///
    /// ```
    /// # use lambda_parallel::lambda_parallel;
    /// #[lambda_parallel]
    /// fn own_pid() -> u32 {
    ///     std::process::id()
    /// }
    ///
    /// # fn main() -> Result<(), lambda_parallel::Error> {
    /// let handle = own_pid::spawn()?;
    /// let pid = handle.pid();
    /// assert_eq!(handle.join()?, pid);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn pid(&self) -> u32 {
        self.child.pid.as_u32()
    }

    /// Kills the worker with `SIGKILL`, if it is still running. A later
    /// [`join`](JoinHandle::join) reports the signal, unless the worker had already finished.
    ///
    /// # Errors
    ///
    /// Fails if the signal cannot be sent.
    ///
    /// ```
    /// # use lambda_parallel::lambda_parallel;
    /// #[lambda_parallel]
    /// fn stuck() {
    ///     std::thread::sleep(std::time::Duration::MAX)
    /// }
    ///
    /// # fn main() -> Result<(), lambda_parallel::Error> {
    /// let mut stuck = stuck::spawn()?;
    /// stuck.kill()?;
    /// assert_eq!(stuck.join().unwrap_err().signal(), Some(9));
    /// # Ok(())
    /// # }
    /// ```
    pub fn kill(&mut self) -> Result<(), Error> {
        self.child
            .kill()
            .map_err(|err| self.error(ErrorKind::Io(err)))
    }

    /// Whether the worker process has ended (successfully or not); [`join`](JoinHandle::join)
    /// will then not block.
    ///
    /// ```
    /// # use lambda_parallel::lambda_parallel;
    /// #[lambda_parallel]
    /// fn echo(x: u8) -> u8 {
    ///     x
    /// }
    ///
    /// # fn main() -> Result<(), lambda_parallel::Error> {
    /// let quick = echo::spawn(3)?;
    /// while !quick.is_finished() {
    ///     std::thread::yield_now();
    /// }
    /// assert_eq!(quick.join()?, 3);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn is_finished(&self) -> bool {
        self.child.exit.is_some()
            || sys::poll(
                self.child.pidfd.as_fd(),
                self.child.pidfd.as_fd(),
                Some(Duration::ZERO),
            )
            .is_ok_and(|ready| ready.first)
    }

    pub(crate) fn error(&self, kind: ErrorKind) -> Error {
        Error::new(self.worker, kind)
    }

    fn wait(mut self, timeout: Option<Duration>) -> Result<T, Error> {
        let deadline = timeout.map(|timeout| (Instant::now() + timeout, timeout));
        let received = self.receive(deadline);
        if let Err(ErrorKind::Timeout(_)) = &received {
            let _ = self.child.kill();
        }
        if let Some(joined) = self.finish_early(&received) {
            return joined;
        }
        // The worker writes its frame and then exits at once, so this does not wait long; for a
        // worker that sent a bad frame or timed out, it has been killed.
        let exit = match self.child.reap() {
            Ok(exit) => exit,
            // The outcome came whole: how the process ended after sending it changes nothing.
            Err(_) if matches!(received, Ok(true)) => {
                return self.outcome().map_err(|kind| self.error(kind))
            }
            Err(err) => return Err(self.error(ErrorKind::ExitLost(err))),
        };
        self.finish(received, exit)
    }

    /// The result of a join whose worker's outcome has arrived, when the fork server forked it:
    /// the server reaps it, so the join need not wait for that (see [`Child::release`]). `None`
    /// when the join must still reap the worker, and [`finish`](JoinHandle::finish) once it has.
    pub(crate) fn finish_early(
        &mut self,
        received: &Result<bool, ErrorKind>,
    ) -> Option<Result<T, Error>> {
        if !matches!(received, Ok(true)) || !self.child.release() {
            return None;
        }
        Some(self.outcome().map_err(|kind| self.error(kind)))
    }

    /// The result of a join, once [`receive`](JoinHandle::receive) (or the async path) has
    /// `received` and the worker has been reaped with `exit`.
    pub(crate) fn finish(&self, received: Result<bool, ErrorKind>, exit: Exit) -> Result<T, Error> {
        match received {
            Ok(true) => self.outcome().map_err(|kind| self.error(kind)),
            Ok(false) => Err(self.error(self.missing_outcome(exit))),
            Err(kind) => Err(self.error(kind)),
        }
    }

    /// Reads until a whole frame has arrived (`true`) or the worker has ended without one
    /// (`false`).
    fn receive(&mut self, deadline: Option<(Instant, Duration)>) -> Result<bool, ErrorKind> {
        let mut ended = false;
        let mut spin = Spin::start(deadline.map(|(at, _)| at));
        loop {
            if let Some(received) = self.receive_step(ended)? {
                return Ok(received);
            }
            if spin.as_mut().is_some_and(Spin::pause) {
                continue;
            }
            // Lets another join spin.
            spin = None;
            let remaining = match deadline {
                None => None,
                Some((at, timeout)) => match at.checked_duration_since(Instant::now()) {
                    Some(remaining) if !remaining.is_zero() => Some(remaining),
                    _ => return Err(ErrorKind::Timeout(timeout)),
                },
            };
            let ready = sys::poll(self.pipe.as_fd(), self.child.pidfd.as_fd(), remaining)
                .map_err(ErrorKind::Io)?;
            ended |= ready.second;
        }
    }

    /// Reads what the pipe holds now, without blocking: `Some(true)` once a whole frame has
    /// arrived, `Some(false)` if the worker has `ended` without one, `None` when the pipe is
    /// empty and the caller must wait until it is readable or the pidfd says the worker ended.
    pub(crate) fn receive_step(&mut self, ended: bool) -> Result<Option<bool>, ErrorKind> {
        loop {
            match self.reader.frame() {
                Ok(Some(_)) => return Ok(Some(true)),
                Ok(None) => {}
                Err(err) => {
                    let _ = self.child.kill();
                    return Err(ErrorKind::Frame(err.to_string()));
                }
            }
            match self.reader.fill(self.pipe.as_fd()).map_err(ErrorKind::Io)? {
                // Once the process has ended, read on until the pipe is empty.
                Fill::Data | Fill::Drained if ended => {}
                Fill::Data => {}
                Fill::Eof => return Ok(Some(false)),
                // Look for a whole frame in what came, then wait for more.
                Fill::Drained => {
                    if matches!(self.reader.frame(), Ok(Some(_)) | Err(_)) {
                        continue;
                    }
                    return Ok(None);
                }
                // Once the process has ended, all it wrote is in the pipe: a missing frame
                // will not come, even if a copy of the pipe's write end, inherited by a
                // sibling forked at the same moment, keeps EOF away.
                Fill::WouldBlock if ended => return Ok(Some(false)),
                Fill::WouldBlock => return Ok(None),
            }
        }
    }

    fn outcome(&self) -> Result<T, ErrorKind> {
        match self.reader.frame() {
            Ok(Some((tag, payload))) => outcome::decode(self.codec, tag, payload),
            _ => unreachable!("`receive` returned true, so a whole frame has arrived"),
        }
    }

    /// Why no outcome arrived, given how the worker ended.
    fn missing_outcome(&self, exit: Exit) -> ErrorKind {
        if self.child.oom_killed() {
            return ErrorKind::OomKilled;
        }
        let partial = (!self.reader.is_empty()).then(|| self.reader.incomplete().to_string());
        outcome::missing(exit, partial)
    }
}

/// Whether a thread of this process spins in [`Spin`] now.
static SPINNING: AtomicBool = AtomicBool::new(false);

/// A blocking join's watch of its worker's pipe before it sleeps in `poll`, for up to
/// [`STRETCH`] (or the join's deadline, if sooner), looking about once a microsecond.
///
/// A quick task then comes back without a wake-up of the caller's CPU, which the sleep would
/// cost: on a virtual machine (AWS Lambda's Firecracker, or the development machine) that takes
/// 30 µs and more, a third of a one-off's spawn and join (W5 139–146 µs → 107–110 in alternated
/// runs of the benchmark). A task that runs longer costs the caller's thread this much CPU
/// before it sleeps, once. Only where there is more than one CPU (`ring::may_spin`), as the
/// pool's spins, and only one thread of the process at a time, so that many joins at once do
/// not take the CPUs that their workers need. (A fork taken while a thread spins leaves the
/// child's joins without spins: slower, never wrong.) The awaited join (`tokio.rs`) never spins.
struct Spin {
    until: Instant,
    /// The flag this spin holds: [`SPINNING`] (another in tests).
    flag: &'static AtomicBool,
}

impl Spin {
    /// The spin of a join whose deadline is `deadline`; `None` where it may not spin, or
    /// another thread spins now.
    fn start(deadline: Option<Instant>) -> Option<Spin> {
        Spin::holding(&SPINNING, deadline)
    }

    /// As [`start`](Spin::start), with `flag` standing for [`SPINNING`].
    fn holding(flag: &'static AtomicBool, deadline: Option<Instant>) -> Option<Spin> {
        if !ring::may_spin() || flag.swap(true, Ordering::Acquire) {
            return None;
        }
        let until = Instant::now() + STRETCH;
        Some(Spin {
            until: deadline.map_or(until, |deadline| deadline.min(until)),
            flag,
        })
    }

    /// Waits about a microsecond before the next look; false once the spin is over.
    fn pause(&mut self) -> bool {
        let now = Instant::now();
        if now >= self.until {
            return false;
        }
        let next = now + Duration::from_micros(1);
        while Instant::now() < next {
            std::hint::spin_loop();
        }
        true
    }
}

impl Drop for Spin {
    fn drop(&mut self) {
        self.flag.store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_thread_spins_at_a_time_and_never_past_the_deadline() {
        static FLAG: AtomicBool = AtomicBool::new(false);
        let Some(mut first) = Spin::holding(&FLAG, None) else {
            // A single CPU: no join spins.
            assert!(!ring::may_spin());
            return;
        };
        assert!(Spin::holding(&FLAG, None).is_none(), "a second spinner");
        drop(first);
        let deadline = Instant::now();
        first = Spin::holding(&FLAG, Some(deadline)).expect("the flag was let go");
        assert_eq!(first.until, deadline);
        // Past its deadline, the spin is over at once.
        assert!(!first.pause());
        drop(first);
        let mut spin = Spin::holding(&FLAG, None).expect("the flag was let go");
        assert!(spin.until <= Instant::now() + STRETCH);
        while spin.pause() {}
        assert!(Instant::now() >= spin.until, "a spin ends only at its end");
    }
}
