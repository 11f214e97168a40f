//! The one error type, and what it says about each way a worker can fail.

use std::fmt;
use std::io;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::sys;

/// Why a worker did not hand back a value.
///
/// Every way a worker can fail is told apart, through predicates and accessors rather than
/// public variants (as in [`std::io::Error`]), so that new cases can be added without breaking
/// callers. A worker's own typed `Err` is not one of them: it arrives as the `Ok` value of
/// [`JoinHandle::join`](crate::JoinHandle::join), exactly as the function returned it.
///
/// | what happened | how to tell |
/// |---|---|
/// | the worker panicked | [`is_panic`](Error::is_panic), [`panic_message`](Error::panic_message), [`panic_location`](Error::panic_location) |
/// | a signal killed it (a crash, or [`kill`](crate::JoinHandle::kill)) | [`signal`](Error::signal), [`signal_name`](Error::signal_name) |
/// | the kernel's OOM killer killed it (`SIGKILL`) | [`is_oom`](Error::is_oom), and [`signal`](Error::signal) says 9 |
/// | it exited without a result | [`exit_code`](Error::exit_code) |
/// | it ran past its timeout and was killed | [`is_timeout`](Error::is_timeout) |
/// | its result could not be encoded, or decoded | [`is_codec`](Error::is_codec) |
/// | the pipe carried a bad or truncated frame | [`is_bad_frame`](Error::is_bad_frame) |
/// | the process or its pipe could not be created (`EAGAIN`, `EMFILE`, …) | [`is_spawn`](Error::is_spawn), [`io_error`](Error::io_error) |
/// | a system call failed while waiting for it | [`io_error`](Error::io_error) |
/// | the pool's initializer failed, so the task never ran | [`kind`](Error::kind) is [`Kind::Initializer`] |
/// | a fleet's invocation failed, was throttled, too large, refused or never sent (the `fleet` feature) | [`kind`](Error::kind), `function_error` |
///
/// [`kind`](Error::kind) gives the same answer as one [`Kind`] to `match` on.
///
/// `Display` is one clause about the worker; the operating system's error, where there is
/// one, is the [`source`](std::error::Error::source), not repeated in the text, so that error
/// reporters that print the chain (`anyhow`, `eyre`) print it once.
pub struct Error {
    inner: Box<Inner>,
}

struct Inner {
    worker: &'static str,
    /// The task's position in its batch (`map`'s input), for tasks of a pool.
    task: Option<usize>,
    kind: ErrorKind,
}

#[derive(Debug)]
pub(crate) enum ErrorKind {
    Spawn(io::Error),
    Io(io::Error),
    Panic(PanicReport),
    Signal(i32),
    /// The OOM killer sent the `SIGKILL` that ended the worker.
    OomKilled,
    Exit(i32),
    Timeout(Duration),
    /// The pool's deadline passed before the task finished.
    Deadline,
    Encode(String),
    Decode(String),
    DecodeArgs(String),
    EncodeArgs(String),
    Frame(String),
    Closed,
    /// The fork server could not be started.
    Init(String),
    /// The worker ended without a result, and how it ended could not be learnt.
    ExitLost(io::Error),
    /// A pool used in a forked copy of the process that built it.
    Foreign,
    /// The pool's initializer failed in the worker that was to run the task: how it failed.
    Initializer(String),
    /// A task of a fleet failed outside a worker of the remote pool (`fleet/`).
    #[cfg(feature = "fleet")]
    Fleet(FleetFailure),
}

/// How a task of a [`Fleet`](crate::fleet::Fleet) failed, beyond what a pool's tasks can do. A
/// failure inside the remote pool comes back as the pool's own (a panic is a panic), except those
/// that have no local form, which keep their kind and text in `Remote`.
#[cfg(feature = "fleet")]
#[derive(Debug)]
pub(crate) enum FleetFailure {
    /// A failure in the remote pool with no local form (a codec error there, a refused spawn).
    Remote { kind: Kind, message: String },
    /// The whole invocation failed: Lambda's `FunctionError` (`Unhandled`, `Runtime.ExitError`,
    /// `Sandbox.Timedout`, …) and the function's `errorMessage`.
    Function { error: String, message: String },
    /// Lambda kept refusing the invocation for want of concurrency (`TooManyRequestsException`).
    Throttled { throttles: u32 },
    /// The task's payload, alone, is over the fleet's size limit, or Lambda's (`limit: None`).
    PayloadTooLarge { bytes: usize, limit: Option<usize> },
    /// The invoke call itself failed (the network, the service, an answer that is no response).
    Transport(String),
    /// The invocation took longer than its timeout, and its answer was given up.
    InvocationTimeout(Duration),
    /// The fleet's deadline passed while the task's invocation was under way.
    Deadline,
    /// The fleet's deadline passed before the task was sent.
    NotAttempted,
    /// The function refused the envelope: another build, too deep, an unknown task.
    Refused(String),
}

/// What kind of failure an [`Error`] is, from [`Error::kind`]: the predicates' answers as one
/// value to `match` on. New kinds may be added, so a `match` needs a `_` arm.
///
/// ```
/// use lambda_parallel::{Kind, Pool};
///
/// fn halve(x: u32) -> u32 {
///     assert!(x % 2 == 0, "odd input {x}");
///     x / 2
/// }
///
/// # fn main() -> Result<(), lambda_parallel::Error> {
/// let pool = Pool::new(1)?;
/// for outcome in pool.map_each(halve, [2, 3]) {
///     match outcome.map_err(|err| err.kind()) {
///         Ok(half) => assert_eq!(half, 1),
///         Err(Kind::Panic) => {}
///         Err(other) => panic!("unexpected {other:?}"),
///     }
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Kind {
    /// The worker panicked: [`Error::panic_message`], [`Error::panic_location`].
    Panic,
    /// A signal killed the worker (a crash, or a kill): [`Error::signal`].
    Signal,
    /// The kernel's OOM killer killed the worker (`SIGKILL`), because the memory of its cgroup
    /// (on AWS Lambda, the function's memory size) or of the system ran out: [`Error::is_oom`].
    Oom,
    /// The worker exited without a result: [`Error::exit_code`].
    Exit,
    /// The task ran past its timeout, and its worker was killed.
    Timeout,
    /// The task did not finish before the pool's deadline ([`Pool::set_deadline`](crate::Pool::set_deadline)).
    Deadline,
    /// A value could not be encoded or decoded ([`Error::is_codec`]).
    Codec,
    /// The bytes from the worker were not a well-formed frame.
    Frame,
    /// The worker or its pipes could not be created (`EAGAIN`, `EMFILE`): [`Error::io_error`].
    Spawn,
    /// The task was submitted to a closed pool.
    Closed,
    /// The fork server ([`init`](crate::init)) is gone, or could not be started: no worker can
    /// be forked, and a task that ran on one of its workers when it died fails so too.
    ServerGone,
    /// A system call failed while the caller waited for the worker: [`Error::io_error`].
    Io,
    /// The task did not run: the pool's initializer
    /// ([`PoolBuilder::initializer`](crate::PoolBuilder::initializer)) failed in its worker.
    Initializer,
    /// A fleet's invocation failed as a whole, with Lambda's `FunctionError`
    /// (`Unhandled`, `Runtime.ExitError`, `Sandbox.Timedout`): `Error::function_error` (the `fleet` feature).
    FunctionError,
    /// A fleet's invocations were throttled (`TooManyRequestsException`) until it gave up.
    Throttled,
    /// A fleet's task was too large for one invocation's payload.
    PayloadTooLarge,
    /// A fleet's invoke call failed in transit, or its answer was not a fleet's response.
    Transport,
    /// A fleet's deadline passed before the task was sent.
    NotAttempted,
    /// The invoked function refused a fleet's envelope: it is another build, the fleet is
    /// nested too deep, or the function does not serve the task.
    Refused,
}

/// The error inside the `io::Error` of a fork server that is gone, so that [`Error::kind`] can
/// tell it from other failures to spawn.
#[derive(Debug)]
pub(crate) struct ServerGone;

impl fmt::Display for ServerGone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the fork server is gone")
    }
}

impl std::error::Error for ServerGone {}

/// A panic, as the worker reports it to its parent.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct PanicReport {
    pub(crate) message: String,
    pub(crate) location: Option<PanicLocation>,
}

/// Where a worker panicked: the file, line and column of the `panic!` (or the failed
/// `unwrap`, index, …), as [`std::panic::Location`] gives them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PanicLocation {
    file: String,
    line: u32,
    column: u32,
}

impl PanicLocation {
    pub(crate) fn from_std(location: &std::panic::Location<'_>) -> Self {
        PanicLocation {
            file: location.file().to_owned(),
            line: location.line(),
            column: location.column(),
        }
    }

    /// The source file, as `file!()` spells it.
    #[must_use]
    pub fn file(&self) -> &str {
        &self.file
    }

    /// The line, counted from 1.
    #[must_use]
    pub fn line(&self) -> u32 {
        self.line
    }

    /// The column, counted from 1.
    #[must_use]
    pub fn column(&self) -> u32 {
        self.column
    }
}

impl fmt::Display for PanicLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

impl Error {
    pub(crate) fn new(worker: &'static str, kind: ErrorKind) -> Self {
        Error {
            inner: Box::new(Inner {
                worker,
                task: None,
                kind,
            }),
        }
    }

    pub(crate) fn with_task(mut self, index: usize) -> Self {
        self.inner.task = Some(index);
        self
    }

    /// For a task of a [`Pool`](crate::Pool): its position among the inputs of the call
    /// (`map`'s, `imap`'s, …), counted from 0.
    #[must_use]
    pub fn task_index(&self) -> Option<usize> {
        self.inner.task
    }

    /// What kind of failure this is, to `match` on; see [`Kind`].
    ///
    /// ```
    /// # fn main() -> Result<(), lambda_parallel::Error> {
    /// let pool = lambda_parallel::Pool::new(1)?;
    /// pool.close();
    /// let err = pool.apply(|x: u32| x, (1,)).unwrap_err();
    /// assert_eq!(err.kind(), lambda_parallel::Kind::Closed);
    /// # Ok(())
    /// # }
    /// ```
    #[must_use]
    pub fn kind(&self) -> Kind {
        match &self.inner.kind {
            ErrorKind::Spawn(err) | ErrorKind::Io(err) | ErrorKind::ExitLost(err)
                if is_server_gone(err) =>
            {
                Kind::ServerGone
            }
            ErrorKind::Spawn(_) => Kind::Spawn,
            ErrorKind::Init(_) => Kind::ServerGone,
            // The wait for the worker failed (an exit status lost too), whatever the worker did.
            ErrorKind::Io(_) | ErrorKind::ExitLost(_) => Kind::Io,
            ErrorKind::Panic(_) => Kind::Panic,
            ErrorKind::Signal(_) => Kind::Signal,
            ErrorKind::OomKilled => Kind::Oom,
            ErrorKind::Exit(_) => Kind::Exit,
            ErrorKind::Timeout(_) => Kind::Timeout,
            ErrorKind::Deadline => Kind::Deadline,
            ErrorKind::Encode(_)
            | ErrorKind::Decode(_)
            | ErrorKind::EncodeArgs(_)
            | ErrorKind::DecodeArgs(_) => Kind::Codec,
            ErrorKind::Frame(_) => Kind::Frame,
            ErrorKind::Closed | ErrorKind::Foreign => Kind::Closed,
            ErrorKind::Initializer(_) => Kind::Initializer,
            #[cfg(feature = "fleet")]
            ErrorKind::Fleet(failure) => failure.kind(),
        }
    }

    /// The path of the worker function (`my_crate::hash_password`).
    #[must_use]
    pub fn worker(&self) -> &'static str {
        self.inner.worker
    }

    /// Whether the worker panicked.
    #[must_use]
    pub fn is_panic(&self) -> bool {
        matches!(self.inner.kind, ErrorKind::Panic(_))
    }

    /// The worker's panic message, if it panicked (`"<non-string panic payload>"` when the
    /// payload was neither a `&str` nor a `String`).
    #[must_use]
    pub fn panic_message(&self) -> Option<&str> {
        match &self.inner.kind {
            ErrorKind::Panic(report) => Some(&report.message),
            _ => None,
        }
    }

    /// Where the worker panicked, if it panicked and the location is known. It is unknown when
    /// the program replaced the panic hook after the first worker was spawned.
    #[must_use]
    pub fn panic_location(&self) -> Option<&PanicLocation> {
        match &self.inner.kind {
            ErrorKind::Panic(report) => report.location.as_ref(),
            _ => None,
        }
    }

    /// The signal that killed the worker (`9` for `SIGKILL`), if one did. A crash (`SIGSEGV`,
    /// `SIGABRT`, …), [`JoinHandle::kill`](crate::JoinHandle::kill) and the OOM killer
    /// ([`is_oom`](Error::is_oom)) all show here; a timeout does not, see
    /// [`is_timeout`](Error::is_timeout).
    #[must_use]
    pub fn signal(&self) -> Option<i32> {
        match self.inner.kind {
            ErrorKind::Signal(signal) => Some(signal),
            ErrorKind::OomKilled => Some(sys::SIGKILL),
            _ => None,
        }
    }

    /// Whether the kernel's OOM killer killed the worker, because memory ran out: on AWS
    /// Lambda, the function's memory size. The workers are the OOM killer's first choice, so
    /// that the caller lives on.
    ///
    /// The kernel says so by counting its kills, in the memory cgroup of the caller and its
    /// workers (or in the whole system, where there is no cgroup to read): a worker that a
    /// `SIGKILL` nobody of ours sent ended is taken for the OOM killer's victim when the count
    /// has risen. Where the count cannot be read, an OOM kill is a plain `SIGKILL`
    /// ([`signal`](Error::signal) 9).
    #[must_use]
    pub fn is_oom(&self) -> bool {
        matches!(self.inner.kind, ErrorKind::OomKilled)
    }

    /// The name of the signal that killed the worker (`"SIGSEGV"`), if one did.
    #[must_use]
    pub fn signal_name(&self) -> Option<&'static str> {
        self.signal().and_then(sys::signal_name)
    }

    /// The exit code, if the worker process exited (by `std::process::exit`, say) without
    /// sending a result.
    #[must_use]
    pub fn exit_code(&self) -> Option<i32> {
        match self.inner.kind {
            ErrorKind::Exit(code) => Some(code),
            _ => None,
        }
    }

    /// Whether the worker ran past its timeout. It has been killed and reaped.
    #[must_use]
    pub fn is_timeout(&self) -> bool {
        match &self.inner.kind {
            ErrorKind::Timeout(_) | ErrorKind::Deadline => true,
            #[cfg(feature = "fleet")]
            ErrorKind::Fleet(failure) => matches!(
                failure,
                FleetFailure::InvocationTimeout(_) | FleetFailure::Deadline
            ),
            _ => false,
        }
    }

    /// Whether the result could not be encoded in the worker or decoded in the caller, for
    /// example because its `Serialize` impl failed (a `PathBuf` that is not UTF-8), or because
    /// what arrived is not a value of its type.
    #[must_use]
    pub fn is_codec(&self) -> bool {
        matches!(
            self.inner.kind,
            ErrorKind::Encode(_)
                | ErrorKind::Decode(_)
                | ErrorKind::EncodeArgs(_)
                | ErrorKind::DecodeArgs(_)
        )
    }

    /// Whether the task was submitted to a [`Pool`](crate::Pool) that had been closed, or that
    /// belongs to another process (this one is a `fork` of the process that built it).
    #[must_use]
    pub fn is_closed(&self) -> bool {
        matches!(self.inner.kind, ErrorKind::Closed | ErrorKind::Foreign)
    }

    /// Whether the bytes from the worker were not a well-formed frame.
    ///
    /// A worker whose own code writes to its result pipe (a C library writing to a descriptor
    /// it does not own, say) breaks the protocol, and a pool replaces it. The task those bytes
    /// come before fails with this error; or, where the pool took that task's outcome from
    /// shared memory before it saw them, no task does, and the worker is replaced before it is
    /// given work again. A worker kept busy without a pause may run on until the pool next
    /// looks at its descriptors (within about a millisecond): then the task it runs fails.
    #[must_use]
    pub fn is_bad_frame(&self) -> bool {
        matches!(self.inner.kind, ErrorKind::Frame(_))
    }

    /// Whether the worker could not be started: `fork` or `pipe` failed, typically with
    /// `EAGAIN` (too many processes) or `EMFILE` (too many open files).
    #[must_use]
    pub fn is_spawn(&self) -> bool {
        matches!(self.inner.kind, ErrorKind::Spawn(_) | ErrorKind::Init(_))
    }

    /// For a task of a [`Fleet`](crate::fleet::Fleet) whose invocation failed as a whole,
    /// Lambda's `FunctionError`: `"Unhandled"`, `"Runtime.ExitError"`, `"Sandbox.Timedout"`, ….
    #[cfg(feature = "fleet")]
    #[must_use]
    pub fn function_error(&self) -> Option<&str> {
        match &self.inner.kind {
            ErrorKind::Fleet(FleetFailure::Function { error, .. }) => Some(error),
            _ => None,
        }
    }

    /// How long the task ran before its timeout killed it, for a fleet to send back.
    #[cfg(feature = "fleet")]
    pub(crate) fn timeout_after(&self) -> Option<Duration> {
        match self.inner.kind {
            ErrorKind::Timeout(after) => Some(after),
            _ => None,
        }
    }

    /// The operating system's error, when a system call failed.
    #[must_use]
    pub fn io_error(&self) -> Option<&io::Error> {
        match &self.inner.kind {
            ErrorKind::Spawn(err) | ErrorKind::Io(err) | ErrorKind::ExitLost(err) => Some(err),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let worker = Worker(&self.inner);
        match &self.inner.kind {
            // The `io::Error` is the source: reporters print it after this clause.
            ErrorKind::Spawn(err) if is_server_gone(err) => {
                write!(f, "failed to spawn {worker}: {ServerGone}")
            }
            ErrorKind::Io(err) if is_server_gone(err) => {
                write!(f, "failed to wait for {worker}: {ServerGone}")
            }
            ErrorKind::Spawn(_) => write!(f, "failed to spawn {worker}"),
            ErrorKind::Io(_) => write!(f, "failed to wait for {worker}"),
            ErrorKind::Panic(PanicReport {
                message,
                location: Some(location),
            }) => write!(f, "{worker} panicked at {location}: {message}"),
            ErrorKind::Panic(PanicReport {
                message,
                location: None,
            }) => write!(f, "{worker} panicked: {message}"),
            ErrorKind::Signal(signal) => match sys::signal_name(*signal) {
                Some(name) => write!(f, "{worker} was killed by signal {signal} ({name})"),
                None => write!(f, "{worker} was killed by signal {signal}"),
            },
            ErrorKind::OomKilled => write!(
                f,
                "{worker} was killed by the OOM killer (SIGKILL): memory ran out"
            ),
            ErrorKind::Exit(code) => {
                write!(f, "{worker} exited with code {code} without a result")
            }
            ErrorKind::Timeout(after) => {
                write!(f, "{worker} timed out after {after:?} and was killed")
            }
            ErrorKind::Deadline => write!(f, "{worker} did not finish before the pool's deadline"),
            ErrorKind::Encode(msg) => {
                write!(f, "{worker} could not encode its result: {msg}")
            }
            ErrorKind::Decode(msg) => {
                write!(f, "failed to decode the result of {worker}: {msg}")
            }
            ErrorKind::EncodeArgs(msg) => {
                write!(f, "failed to encode the arguments of {worker}: {msg}")
            }
            ErrorKind::DecodeArgs(msg) => {
                write!(f, "{worker} could not decode its arguments: {msg}")
            }
            ErrorKind::Frame(msg) => write!(f, "{worker} sent a bad frame: {msg}"),
            ErrorKind::Closed => write!(f, "failed to submit {worker}: the pool is closed"),
            ErrorKind::Init(msg) => write!(f, "failed to start the fork server: {msg}"),
            ErrorKind::ExitLost(err) => {
                write!(
                    f,
                    "{worker} ended without a result, and its exit status was lost: {err}"
                )
            }
            ErrorKind::Foreign => write!(
                f,
                "failed to submit {worker}: the pool belongs to another process (this one is a \
                 fork of it)"
            ),
            ErrorKind::Initializer(why) => {
                write!(
                    f,
                    "{worker} did not run: the pool's initializer failed: {why}"
                )
            }
            #[cfg(feature = "fleet")]
            ErrorKind::Fleet(failure) => failure.fmt(f, &worker),
        }
    }
}

#[cfg(feature = "fleet")]
impl FleetFailure {
    fn kind(&self) -> Kind {
        match self {
            FleetFailure::Remote { kind, .. } => *kind,
            FleetFailure::Function { .. } => Kind::FunctionError,
            FleetFailure::Throttled { .. } => Kind::Throttled,
            FleetFailure::PayloadTooLarge { .. } => Kind::PayloadTooLarge,
            FleetFailure::Transport(_) => Kind::Transport,
            FleetFailure::InvocationTimeout(_) => Kind::Timeout,
            FleetFailure::Deadline => Kind::Deadline,
            FleetFailure::NotAttempted => Kind::NotAttempted,
            FleetFailure::Refused(_) => Kind::Refused,
        }
    }

    fn fmt(&self, f: &mut fmt::Formatter<'_>, worker: &Worker<'_>) -> fmt::Result {
        match self {
            FleetFailure::Remote { message, .. } => {
                write!(f, "{worker} failed remotely: {message}")
            }
            FleetFailure::Function { error, message } => {
                write!(f, "the invocation of {worker} failed ({error}): {message}")
            }
            FleetFailure::Throttled { throttles } => {
                write!(
                    f,
                    "the invocation of {worker} was throttled {throttles} times"
                )
            }
            FleetFailure::PayloadTooLarge {
                bytes,
                limit: Some(limit),
            } => write!(
                f,
                "{worker} is too large for an invocation: {bytes} bytes, over the limit of {limit}"
            ),
            FleetFailure::PayloadTooLarge { bytes, limit: None } => write!(
                f,
                "{worker} is too large for an invocation: Lambda refused its {bytes} bytes"
            ),
            FleetFailure::Transport(msg) => write!(f, "failed to invoke {worker}: {msg}"),
            FleetFailure::InvocationTimeout(after) => {
                write!(f, "the invocation of {worker} timed out after {after:?}")
            }
            FleetFailure::Deadline => {
                write!(f, "{worker} did not finish before the fleet's deadline")
            }
            FleetFailure::NotAttempted => {
                write!(f, "{worker} was not attempted before the fleet's deadline")
            }
            FleetFailure::Refused(msg) => write!(f, "the function refused {worker}: {msg}"),
        }
    }
}

/// A copy of an `io::Error`, for each of the tasks it fails (`io::Error` is not `Clone`): the
/// same kind and text, and the fork server's absence kept as such.
pub(crate) fn copy_io_error(err: &io::Error) -> io::Error {
    if is_server_gone(err) {
        return io::Error::other(ServerGone);
    }
    match err.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(err.kind(), err.to_string()),
    }
}

/// Whether a failure (to spawn, to wait) is the fork server's absence.
pub(crate) fn is_server_gone(err: &io::Error) -> bool {
    err.get_ref()
        .is_some_and(<dyn std::error::Error + Send + Sync>::is::<ServerGone>)
}

/// "worker `name`", or "task 3 of worker `name`".
struct Worker<'a>(&'a Inner);

impl fmt::Display for Worker<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.task {
            Some(task) => write!(f, "task {task} of worker `{}`", self.0.worker),
            None => write!(f, "worker `{}`", self.0.worker),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("worker", &self.inner.worker)
            .field("task", &self.inner.task)
            .field("kind", &self.inner.kind)
            .finish()
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.inner.kind {
            // The fork server's absence is said in full by `Display`.
            ErrorKind::Spawn(err) | ErrorKind::Io(err) if is_server_gone(err) => None,
            ErrorKind::Spawn(err) | ErrorKind::Io(err) => Some(err),
            _ => None,
        }
    }
}

impl From<Error> for io::Error {
    /// Keeps the operating system's error where there is one (so `EAGAIN` stays `EAGAIN`), and
    /// wraps the rest as [`io::ErrorKind::Other`] (timeouts as [`io::ErrorKind::TimedOut`], OOM
    /// kills as [`io::ErrorKind::OutOfMemory`]).
    fn from(err: Error) -> Self {
        match err.inner.kind {
            ErrorKind::Spawn(err) | ErrorKind::Io(err) => err,
            ErrorKind::Timeout(_) | ErrorKind::Deadline => {
                io::Error::new(io::ErrorKind::TimedOut, err)
            }
            ErrorKind::OomKilled => io::Error::new(io::ErrorKind::OutOfMemory, err),
            _ => io::Error::other(err),
        }
    }
}
