//! Every system call the runtime makes, with nix and libc types kept inside this module.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use nix::sys::signal::Signal;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{ForkResult, Pid};

mod memory;
mod socket;

pub(crate) use memory::{futex_wait, futex_wake, map_shared, shared_memory, unmap};
pub(crate) use socket::{packet_pair, recv_with_fds, send_with_fds};

/// How a child process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Exit {
    /// It called `exit` or `_exit` with this code.
    Code(i32),
    /// A signal killed it.
    Signal(i32),
}

pub(crate) enum Fork {
    Child,
    Parent(Pid),
}

fn io_err(errno: Errno) -> io::Error {
    io::Error::from_raw_os_error(errno as i32)
}

/// A pipe whose ends close on `exec`, as `(read, write)`.
pub(crate) fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(io_err)
}

/// Makes reads from `fd` return `WouldBlock` instead of waiting.
pub(crate) fn set_nonblocking(fd: BorrowedFd<'_>) -> io::Result<()> {
    let flags = fcntl(fd, FcntlArg::F_GETFL).map_err(io_err)?;
    let flags = OFlag::from_bits_retain(flags) | OFlag::O_NONBLOCK;
    fcntl(fd, FcntlArg::F_SETFL(flags)).map_err(io_err)?;
    Ok(())
}

/// Held by a thread of ours that forks, and by one that makes a mapping that children must not
/// inherit ([`map_shared`]): between `mmap` and `madvise`, a fork from another thread would copy
/// the mapping into a child that has no business with it.
static FORKING: Mutex<()> = Mutex::new(());

/// Forks the calling process.
///
/// # Safety
///
/// In the child only the calling thread exists. Every lock another thread held at the time of
/// the fork stays held forever, and data another thread was changing is left half-changed. Until
/// it ends, the child must touch nothing that another thread of the parent may have been using;
/// and it must end with [`exit_now`], never by returning into code that expects the parent's
/// threads to exist.
pub(crate) unsafe fn fork() -> io::Result<Fork> {
    let forking = FORKING.lock().unwrap_or_else(PoisonError::into_inner);
    // SAFETY: the caller upholds the contract above, which is `nix::unistd::fork`'s.
    let forked = unsafe { nix::unistd::fork() };
    // In the child too: the lock is a copy there, held by its one thread.
    drop(forking);
    match forked.map_err(io_err)? {
        ForkResult::Child => Ok(Fork::Child),
        ForkResult::Parent { child } => Ok(Fork::Parent(child)),
    }
}

/// Ends the calling process at once: no destructors, no `atexit` handlers, no stdio flush
/// (a forked child must not flush buffers it inherited from its parent, or they print twice).
pub(crate) fn exit_now(code: i32) -> ! {
    // SAFETY: `_exit` is async-signal-safe and has no preconditions.
    unsafe { libc::_exit(code) }
}

pub(crate) fn getpid() -> Pid {
    nix::unistd::getpid()
}

/// Asks the kernel to kill this process when its parent dies; returns `false` when the parent
/// (`parent`) is already gone, in which case the caller should end at once.
pub(crate) fn die_with_parent(parent: Pid) -> bool {
    // The death signal is set after the fork: if the parent died in between, the child has been
    // re-parented and no signal will come, hence the check of `getppid` afterwards.
    nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).is_ok() && nix::unistd::getppid() == parent
}

/// A file descriptor that refers to `pid` for as long as it is open, even after the process
/// ends, so signals sent through it never reach a recycled pid. Linux 5.3 and later.
pub(crate) fn pidfd_open(pid: Pid) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and a flags word and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid.as_raw(), 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    let fd = i32::try_from(fd).map_err(|_| io::Error::other("pidfd_open returned a bad fd"))?;
    // SAFETY: the kernel just returned this new descriptor, and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
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

/// Reaps `pid`, waiting for it to end.
pub(crate) fn wait(pid: Pid) -> io::Result<Exit> {
    loop {
        return match waitpid(pid, None) {
            Ok(WaitStatus::Exited(_, code)) => Ok(Exit::Code(code)),
            Ok(WaitStatus::Signaled(_, signal, _)) => Ok(Exit::Signal(signal as i32)),
            // Stopped or continued (not reported without WUNTRACED or WCONTINUED), or EINTR.
            Ok(_) | Err(Errno::EINTR) => continue,
            Err(errno) => Err(io_err(errno)),
        };
    }
}

/// What [`poll`] saw.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ready {
    /// The first descriptor can be read (or has hung up).
    pub(crate) first: bool,
    /// The second descriptor can be read (for a pidfd: the process has ended).
    pub(crate) second: bool,
}

/// Waits until `first` or `second` is readable or `timeout` passes (`None`: no limit).
pub(crate) fn poll(
    first: BorrowedFd<'_>,
    second: BorrowedFd<'_>,
    timeout: Option<Duration>,
) -> io::Result<Ready> {
    let wanted = PollFlags::POLLIN;
    let mut fds = [PollFd::new(first, wanted), PollFd::new(second, wanted)];
    poll_fds(&mut fds, timeout)?;
    Ok(Ready {
        first: is_ready(&fds[0]),
        second: is_ready(&fds[1]),
    })
}

/// The one `poll(2)` of this crate, over freshly made `fds`. A wait that a signal interrupts
/// returns with nothing ready (the kernel leaves `revents` as it was: empty), and the caller,
/// which loops anyway, looks again.
fn poll_fds(fds: &mut [PollFd<'_>], timeout: Option<Duration>) -> io::Result<()> {
    match nix::poll::poll(fds, poll_timeout(timeout)) {
        Ok(_) | Err(Errno::EINTR) => Ok(()),
        Err(errno) => Err(io_err(errno)),
    }
}

/// Whether `poll` reported anything for `fd`: readable, writable, hung up or in error (so that
/// the caller looks, and sees which).
fn is_ready(fd: &PollFd<'_>) -> bool {
    fd.revents().is_some_and(|revents| !revents.is_empty())
}

/// A poll timeout that never ends a wait before `timeout` has passed (it rounds up to the next
/// millisecond), so that a deadline is never missed by a wait that then spins.
fn poll_timeout(timeout: Option<Duration>) -> PollTimeout {
    match timeout {
        None => PollTimeout::NONE,
        Some(timeout) => {
            let ms = timeout.as_nanos().div_ceil(1_000_000);
            i32::try_from(ms).map_or(PollTimeout::MAX, |ms| {
                PollTimeout::try_from(ms).unwrap_or(PollTimeout::MAX)
            })
        }
    }
}

/// The name of a signal (`"SIGKILL"`), if it has one.
pub(crate) fn signal_name(signal: i32) -> Option<&'static str> {
    Signal::try_from(signal).ok().map(Signal::as_str)
}

/// Reads at most `max` bytes from `fd` into the spare capacity of `buf`, after its contents.
pub(crate) fn read_appending(
    fd: BorrowedFd<'_>,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<usize> {
    buf.reserve(max);
    let spare = buf.spare_capacity_mut();
    let len = spare.len().min(max);
    // SAFETY: `spare` is writable memory of at least `len` bytes that `buf` owns; `read` writes
    // at most `len` bytes into it and does not read it, so it may be uninitialized.
    let read = unsafe { libc::read(fd.as_raw_fd(), spare.as_mut_ptr().cast(), len) };
    let Ok(read) = usize::try_from(read) else {
        return Err(io::Error::last_os_error());
    };
    // SAFETY: the kernel initialized the first `read` bytes of the spare capacity.
    unsafe { buf.set_len(buf.len() + read) };
    Ok(read)
}

/// Sends SIGKILL by pid: only for a child that has not been reaped, whose pid cannot have been
/// reused.
pub(crate) fn kill_pid(pid: Pid) {
    let _ = nix::sys::signal::kill(pid, Signal::SIGKILL);
}

/// Closes a descriptor that this process inherited but does not own (in a freshly forked child).
pub(crate) fn close_raw(fd: RawFd) {
    // SAFETY: `close` is async-signal-safe; the caller names a descriptor that nothing in this
    // process will use again.
    unsafe { libc::close(fd) };
}

/// Makes a pipe's buffer 1 MiB (from 64 KiB), so that large values cross in fewer wake-ups.
/// Where the system does not allow it, the pipe keeps its size; nothing else changes.
pub(crate) fn grow_pipe(fd: BorrowedFd<'_>) {
    let _ = fcntl(fd, FcntlArg::F_SETPIPE_SZ(1 << 20));
}

/// What to wait for on one descriptor, for [`poll_many`].
#[derive(Clone, Copy, Debug)]
pub(crate) enum Interest {
    Read,
    Write,
}

/// Waits until one of `fds` is ready or `timeout` passes (`None`: no limit), and says for each
/// whether it is ready (hang-ups and errors count as ready, so that the caller looks and sees).
pub(crate) fn poll_many(
    fds: &[(BorrowedFd<'_>, Interest)],
    timeout: Option<Duration>,
    ready: &mut Vec<bool>,
) -> io::Result<()> {
    let mut polled: Vec<PollFd<'_>> = fds
        .iter()
        .map(|(fd, interest)| {
            let flags = match interest {
                Interest::Read => PollFlags::POLLIN,
                Interest::Write => PollFlags::POLLOUT,
            };
            PollFd::new(*fd, flags)
        })
        .collect();
    poll_fds(&mut polled, timeout)?;
    ready.clear();
    ready.extend(polled.iter().map(is_ready));
    Ok(())
}

/// Writes what `fd` takes of `bytes` now.
pub(crate) fn write_some(fd: BorrowedFd<'_>, bytes: &[u8]) -> io::Result<usize> {
    loop {
        match nix::unistd::write(fd, bytes) {
            Err(Errno::EINTR) => {}
            result => return result.map_err(io_err),
        }
    }
}

/// Writes what `fd` takes now of `parts`, in order, with one system call.
pub(crate) fn write_vectored(fd: BorrowedFd<'_>, parts: &[io::IoSlice<'_>]) -> io::Result<usize> {
    loop {
        match nix::sys::uio::writev(fd, parts) {
            Err(Errno::EINTR) => {}
            result => return result.map_err(io_err),
        }
    }
}

/// Lends the pipe `fd` the pages that hold `bytes`, as far as it has room now, instead of
/// copying them into it (`vmsplice(2)`); returns how many bytes it took. The reader copies
/// them from those very pages when it reads them, so until then the caller must leave the
/// bytes as they are: not written, and not freed (the allocator could hand the memory out and
/// it would be written). Once the reader cannot read them any more (it has, or it is gone),
/// they are the caller's again: the pipe's references only keep the pages alive.
pub(crate) fn lend_to_pipe(fd: BorrowedFd<'_>, bytes: &[u8]) -> io::Result<usize> {
    let iov = libc::iovec {
        iov_base: bytes.as_ptr().cast_mut().cast(),
        iov_len: bytes.len(),
    };
    loop {
        // SAFETY: `iov` describes `bytes`, readable memory for the length of the call. Without
        // `SPLICE_F_GIFT` the kernel never writes to the pages: it only takes references.
        let lent =
            unsafe { libc::vmsplice(fd.as_raw_fd(), &raw const iov, 1, libc::SPLICE_F_NONBLOCK) };
        match usize::try_from(lent) {
            Ok(lent) => return Ok(lent),
            Err(_) => match io::Error::last_os_error() {
                err if err.kind() == io::ErrorKind::Interrupted => {}
                err => return Err(err),
            },
        }
    }
}

/// Names the calling thread (and so, for a process's only thread, the process, as `ps` shows
/// it) `name`, at most 15 bytes; returns the name it had, if that could be read.
pub(crate) fn rename_thread(name: &std::ffi::CStr) -> Option<std::ffi::CString> {
    let previous = nix::sys::prctl::get_name().ok();
    let _ = nix::sys::prctl::set_name(name);
    previous
}

/// The number of threads this process has.
pub(crate) fn thread_count() -> io::Result<usize> {
    Ok(std::fs::read_dir("/proc/self/task")?.count())
}

/// Whether the calling thread is the process's main thread.
pub(crate) fn is_main_thread() -> bool {
    nix::unistd::gettid() == getpid()
}

/// Whether every writer of the pipe whose read end is `fd` has closed it.
pub(crate) fn hung_up(fd: BorrowedFd<'_>) -> bool {
    let mut fds = [PollFd::new(fd, PollFlags::empty())];
    poll_fds(&mut fds, Some(Duration::ZERO)).is_ok()
        && fds[0]
            .revents()
            .is_some_and(|events| events.contains(PollFlags::POLLHUP))
}
