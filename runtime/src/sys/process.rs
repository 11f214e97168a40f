//! Processes: fork, exit, pids and pidfds, reaping, signals, and what a process knows of itself.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Mutex, PoisonError};

use nix::errno::Errno;
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::ForkResult;

use super::fd::FdId;
use super::io_err;

/// A process id. Ours, so that no type of `nix` crosses this module's border.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pid(libc::pid_t);

impl Pid {
    pub(crate) fn from_raw(pid: i32) -> Pid {
        Pid(pid)
    }

    pub(crate) fn as_raw(self) -> i32 {
        self.0
    }

    /// The pid as the public API gives it (`JoinHandle::pid`, `Pool::pids`).
    pub(crate) fn as_u32(self) -> u32 {
        self.0.unsigned_abs()
    }

    fn to_nix(self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(self.0)
    }
}

/// How a child process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exit {
    /// It called `exit` or `_exit` with this code.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
}

/// The signal that kills outright: what the OOM killer sends, and what we kill workers with.
pub(crate) const SIGKILL: i32 = libc::SIGKILL;

/// The error number for an I/O failure that has no number of its own.
pub(crate) const EIO: i32 = libc::EIO;

pub(crate) enum Fork {
    Child,
    Parent(Pid),
}

/// Held by a thread of ours that forks, and by one that makes a mapping that children must not
/// inherit ([`map_shared`](super::map_shared)): between `mmap` and `madvise`, a fork from another
/// thread would copy the mapping into a child that has no business with it.
pub(super) static FORKING: Mutex<()> = Mutex::new(());

/// Forks the calling process. The child first closes `close_in_child`: descriptors it inherits
/// but must not hold (another worker's pipes, say).
///
/// Stdout is flushed first. The child inherits stdout's buffer: were a partial line waiting in
/// it, the child's first `println!` would print it a second time. (Python's multiprocessing
/// flushes before it forks, too.)
///
/// The child may allocate: glibc's `malloc` takes every arena's lock around `fork` (its `atfork`
/// handlers) and resets them in the child, so the child's allocator is consistent and unlocked
/// even when another thread was allocating at the moment of the fork. (musl's does the same
/// since 1.2.1.) Locks of anything else are not reset: hence the contract below.
///
/// # Safety
///
/// In the child only the calling thread exists. Every lock another thread held at the time of
/// the fork (but the allocator's) stays held forever, and data another thread was changing is
/// left half-changed. Until it ends, the child must touch nothing that another thread of the
/// parent may have been using; and it must end with [`exit_now`], never by returning into code
/// that expects the parent's threads to exist. Nothing in the child may use a descriptor of
/// `close_in_child` again, nor close one (the `OwnedFd`s that own them in the parent must not be
/// dropped there: the child ends with `exit_now`, which runs no destructor).
///
/// `close_if_same` are descriptors the child closes too, each only if its number still names
/// the file it named when it was identified ([`FdId`]): a list kept by other threads may hold
/// a number closed since, and perhaps reused for a descriptor the child needs.
pub(crate) unsafe fn fork(close_in_child: &[RawFd], close_if_same: &[FdId]) -> io::Result<Fork> {
    let _ = io::Write::flush(&mut io::stdout());
    let forking = FORKING.lock().unwrap_or_else(PoisonError::into_inner);
    // SAFETY: the caller upholds the contract above, which is `nix::unistd::fork`'s.
    let forked = unsafe { nix::unistd::fork() };
    // In the child too: the lock is a copy there, held by its one thread.
    drop(forking);
    match forked.map_err(io_err)? {
        ForkResult::Child => {
            for fd in close_in_child {
                // SAFETY: the caller's contract: nothing in this child uses these again.
                unsafe { super::fd::close_raw(*fd) };
            }
            for id in close_if_same {
                if super::fd::identify(id.fd) == Some(*id) {
                    // SAFETY: as above; and the number still names the file listed.
                    unsafe { super::fd::close_raw(id.fd) };
                }
            }
            Ok(Fork::Child)
        }
        ForkResult::Parent { child } => Ok(Fork::Parent(Pid(child.as_raw()))),
    }
}

/// Ends the calling process at once: no destructors, no `atexit` handlers, no stdio flush
/// (a forked child must not flush buffers it inherited from its parent, or they print twice).
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: `_exit` is async-signal-safe and has no preconditions.
    unsafe { libc::_exit(code) }
}

pub(crate) fn getpid() -> Pid {
    Pid(nix::unistd::getpid().as_raw())
}

/// Asks the kernel to kill this process when its parent dies; returns `false` when the parent
/// (`parent`) is already gone, in which case the caller should end at once.
pub(crate) fn die_with_parent(parent: Pid) -> bool {
    // The death signal is set after the fork: if the parent died in between, the child has been
    // re-parented and no signal will come, hence the check of `getppid` afterwards.
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).is_ok()
        && nix::unistd::getppid() == parent.to_nix()
}

/// A file descriptor that refers to `pid` for as long as it is open, even after the process
/// ends, so signals sent through it never reach a recycled pid. Linux 5.3 and later.
fn pidfd_open(pid: Pid) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and a flags word and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.0, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(|_| io::Error::other("pidfd_open returned a bad fd"))?;
    // SAFETY: the kernel just returned this new descriptor, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `pidfd_open`'s error, saying what it means where the kernel lacks the call or a filter
/// (seccomp) refuses it: the runtime cannot work without it.
fn pidfd_open_error(err: io::Error) -> io::Error {
    match err.raw_os_error() {
        Some(libc::ENOSYS | libc::EPERM | libc::EACCES) => io::Error::new(
            io::ErrorKind::Unsupported,
            format!(
                "`pidfd_open` is not available ({err}): lambda-parallel needs Linux 5.3 or later, \
                 with `pidfd_open` allowed by any seccomp filter"
            ),
        ),
        _ => err,
    }
}

/// Whether this process can open pidfds: `Err` says why not, as [`child_pidfd`] would.
pub(crate) fn check_pidfd() -> io::Result<()> {
    pidfd_open(getpid()).map(drop).map_err(pidfd_open_error)
}

/// A pidfd for `pid`, a child of this process that has not been reaped. Where none can be
/// opened (`EMFILE`, say), the child is killed and reaped, so that nothing is left behind
/// unowned, and the error returned.
pub(crate) fn child_pidfd(pid: Pid) -> io::Result<OwnedFd> {
    pidfd_open(pid).map_err(pidfd_open_error).inspect_err(|_| {
        // The pid is still ours, since we have not reaped it: it names no other process.
        let _ = nix::sys::signal::kill(pid.to_nix(), Signal::SIGKILL);
        let _ = wait(pid);
    })
}

/// Sends SIGKILL to `pid`, a child of this process that has not been reaped: its pid then
/// names it and no other process (a pid is reused only once reaped), so this is as safe as a
/// pidfd. Where a pidfd cannot carry the signal ([`pidfd_kill`] refused by a seccomp filter).
/// Killing a process that has already ended is not an error.
pub(crate) fn kill_unreaped(pid: Pid) -> io::Result<()> {
    match nix::sys::signal::kill(pid.to_nix(), Signal::SIGKILL) {
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        Err(errno) => Err(io_err(errno)),
    }
}

/// Whether a failure of [`pidfd_kill`] means the call itself is refused (a seccomp filter, a
/// kernel without it), rather than a failure to signal this process.
pub(crate) fn is_refused(err: &io::Error) -> bool {
    matches!(err.raw_os_error(), Some(libc::ENOSYS | libc::EPERM))
}

/// Sends SIGKILL through a pidfd. Killing a process that has already ended is not an error.
pub(crate) fn pidfd_kill(pidfd: BorrowedFd<'_>) -> io::Result<()> {
    // SAFETY: pidfd_send_signal takes a pidfd, a signal, a null siginfo and zero flags.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    match ret {
        0 => Ok(()),
        _ => match io::Error::last_os_error() {
            err if err.raw_os_error() == Some(libc::ESRCH) => Ok(()),
            err => Err(err),
        },
    }
}

/// Reaps `pid`, waiting for it to end.
pub(crate) fn wait(pid: Pid) -> io::Result<Exit> {
    loop {
        return match waitpid(pid.to_nix(), None) {
            Ok(WaitStatus::Exited(_, code)) => Ok(Exit::Code(code)),
            Ok(WaitStatus::Signaled(_, signal, _)) => Ok(Exit::Signal(signal as i32)),
            // Stopped or continued (not reported without WUNTRACED or WCONTINUED), or EINTR.
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(errno) => Err(io_err(errno)),
        };
    }
}

/// Reaps `pid` if it has ended, without waiting: `None` if it still runs.
pub(crate) fn try_wait(pid: Pid) -> io::Result<Option<Exit>> {
    loop {
        return match waitpid(pid.to_nix(), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(_, code)) => Ok(Some(Exit::Code(code))),
            Ok(WaitStatus::Signaled(_, signal, _)) => Ok(Some(Exit::Signal(signal as i32))),
            Ok(WaitStatus::StillAlive) => Ok(None),
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(errno) => Err(io_err(errno)),
        };
    }
}

/// Makes the kernel keep the exit statuses of this process's children for `wait`, whatever the
/// host did with `SIGCHLD`. With `SIGCHLD` set to `SIG_IGN` (or a handler installed with
/// `SA_NOCLDWAIT`), the kernel reaps every child by itself and discards its status: a worker's
/// end could then not be told, and its pid could be reused while the caller still means it.
/// `SIG_DFL` ignores the signal all the same, so only that changes; children the host started
/// expecting to be reaped by the kernel are then left for it to `wait` for. Returns whether
/// anything changed.
pub(crate) fn keep_exit_statuses() -> bool {
    // SAFETY: all-zero is a valid `sigaction` (no handler, empty mask), overwritten below.
    let mut previous: libc::sigaction = unsafe { std::mem::zeroed() };
    // SAFETY: a null new action only reads the current one into `previous`.
    if unsafe { libc::sigaction(libc::SIGCHLD, std::ptr::null(), &raw mut previous) } != 0 {
        return false;
    }
    let ignored = previous.sa_sigaction == libc::SIG_IGN;
    if !ignored && previous.sa_flags & libc::SA_NOCLDWAIT == 0 {
        return false;
    }
    let mut kept = previous;
    if ignored {
        kept.sa_sigaction = libc::SIG_DFL;
    }
    kept.sa_flags &= !libc::SA_NOCLDWAIT;
    // SAFETY: the host's own disposition, with the default action for `SIG_IGN` and without
    // the flag that discards exit statuses; a handler it names is this image's code.
    unsafe { libc::sigaction(libc::SIGCHLD, &raw const kept, std::ptr::null_mut()) == 0 }
}

/// The exit code of a worker whose watchdog saw its caller end ([`watch_parent`]).
const EXIT_ORPHANED: i32 = 72;

/// The watchdog thread of [`watch_parent`]: waits for the pidfd `fd` to say the parent has
/// ended, then ends this process.
extern "C" fn watch(fd: *mut libc::c_void) -> *mut libc::c_void {
    let fd = i32::try_from(fd as usize).unwrap_or(-1);
    let mut pollfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `pollfd` is one valid entry; `poll` and `_exit` are async-signal-safe.
    unsafe {
        while libc::poll(&raw mut pollfd, 1, -1) < 0 {}
        libc::_exit(EXIT_ORPHANED)
    }
}

/// Starts a thread in this (freshly forked) process that ends the process as soon as `parent`
/// ends, for a worker that cannot use [`die_with_parent`] (the thread that forked it may end
/// before its process does). Returns `false` when the parent is gone already, in which case
/// the caller should end at once. Where the parent cannot be watched (no pidfd, no thread),
/// nothing is started, and the worker relies on its pipes' end-of-file.
///
/// The thread is a bare `pthread` running a few system calls, not a `std::thread`: in a child
/// forked from a process with threads, it touches nothing another thread might have held.
pub(crate) fn watch_parent(parent: Pid) -> bool {
    let pidfd = pidfd_open(parent);
    // Opened before this check, the pidfd names the parent: had the parent died first, this
    // process would have been re-parented, and its pid could name another process by now.
    if nix::unistd::getppid() != parent.to_nix() {
        return false;
    }
    let Ok(pidfd) = pidfd else {
        return true;
    };
    let fd = usize::try_from(pidfd.as_raw_fd()).unwrap_or(usize::MAX);
    // SAFETY: all-zero memory is what `pthread_attr_init` overwrites; the attributes are
    // initialized before use and destroyed after; `watch` takes the descriptor's number, which
    // stays open for the process's life (forgotten below on success).
    unsafe {
        let mut attr: libc::pthread_attr_t = std::mem::zeroed();
        let mut thread: libc::pthread_t = std::mem::zeroed();
        if libc::pthread_attr_init(&raw mut attr) != 0 {
            return false;
        }
        libc::pthread_attr_setdetachstate(&raw mut attr, libc::PTHREAD_CREATE_DETACHED);
        libc::pthread_attr_setstacksize(&raw mut attr, libc::PTHREAD_STACK_MIN + (64 << 10));
        let started = libc::pthread_create(
            &raw mut thread,
            &raw const attr,
            watch,
            fd as *mut libc::c_void,
        ) == 0;
        libc::pthread_attr_destroy(&raw mut attr);
        if started {
            std::mem::forget(pidfd);
        }
    }
    true
}

/// What `SIGPIPE` did in this process before [`ignore_sigpipe`].
pub(crate) struct SigPipe(nix::sys::signal::SigAction);

/// Makes a write to a pipe that nobody reads any more fail with `EPIPE`, instead of killing this
/// process; returns what `SIGPIPE` did before, for [`restore_sigpipe`].
pub(crate) fn ignore_sigpipe() -> io::Result<SigPipe> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet};
    let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
    // SAFETY: ignoring a signal installs no handler, so nothing can run at an awkward moment.
    unsafe { sigaction(Signal::SIGPIPE, &ignore) }
        .map(SigPipe)
        .map_err(io_err)
}

/// Gives `SIGPIPE` back what it did before [`ignore_sigpipe`] (in a child forked since).
pub(crate) fn restore_sigpipe(previous: &SigPipe) {
    use nix::sys::signal::{sigaction, SigHandler};
    if matches!(previous.0.handler(), SigHandler::SigIgn) {
        return;
    }
    // SAFETY: this is the disposition the process had; a handler it names is code of this
    // process image, which a forked child shares.
    let _ = unsafe { sigaction(Signal::SIGPIPE, &previous.0) };
}

/// The name of a signal (`"SIGKILL"`), if it has one.
pub(crate) fn signal_name(signal: i32) -> Option<&'static str> {
    Signal::try_from(signal).ok().map(Signal::as_str)
}

/// Names the calling thread (and so, for a process's only thread, the process, as `ps` shows
/// it) `name`, at most 15 bytes; returns the name it had, if that could be read.
pub(crate) fn rename_thread(name: &std::ffi::CStr) -> Option<std::ffi::CString> {
    let previous = nix::sys::prctl::get_name().ok();
    let _ = nix::sys::prctl::set_name(name);
    previous
}

/// Makes this process the kernel's first choice when memory runs out (`oom_score_adj` 1000, the
/// most; raising it needs no privilege), so that a worker that exhausts the memory limit is
/// killed rather than the caller, which on AWS Lambda is the whole environment. Processes
/// forked later inherit it. Where `/proc` cannot be written, nothing changes.
pub(crate) fn prefer_for_oom_kill() {
    let _ = std::fs::write("/proc/self/oom_score_adj", b"1000");
}

/// The number of threads this process has.
pub(crate) fn thread_count() -> io::Result<usize> {
    Ok(std::fs::read_dir("/proc/self/task")?.count())
}

/// Whether the calling thread is the process's main thread.
pub(crate) fn is_main_thread() -> bool {
    nix::unistd::gettid() == nix::unistd::getpid()
}
