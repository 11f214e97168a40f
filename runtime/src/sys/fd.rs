//! Descriptors: pipes, and reading and writing them without blocking.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd, RawFd};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};

use super::io_err;

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

/// Closes a descriptor that this process inherited but does not own (in a freshly forked child).
///
/// # Safety
///
/// Nothing in this process uses `fd` again, nor closes it again: an `OwnedFd` that owns it is
/// never dropped (the forked child ends with `exit_now`, which runs no destructor).
pub(super) unsafe fn close_raw(fd: RawFd) {
    // SAFETY: `close` is async-signal-safe; the caller promises that `fd` is not used again.
    unsafe { libc::close(fd) };
}

/// Makes a pipe's buffer 1 MiB (from 64 KiB), so that large values cross in fewer wake-ups,
/// and returns the bytes it holds. Where the system does not allow it, the pipe keeps its size;
/// nothing else changes.
pub(crate) fn grow_pipe(fd: BorrowedFd<'_>) -> usize {
    fcntl(fd, FcntlArg::F_SETPIPE_SZ(1 << 20))
        .or_else(|_| fcntl(fd, FcntlArg::F_GETPIPE_SZ))
        .ok()
        .and_then(|size| usize::try_from(size).ok())
        // A pipe holds at least a page, even for a user past the kernel's soft limit.
        .unwrap_or(4096)
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

/// What a descriptor number names: the file's device and inode, which no other open file
/// shares (a pipe's, a socket's, a pidfd's on Linux 6.9 and later), with the number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FdId {
    pub(crate) fd: RawFd,
    dev: u64,
    ino: u64,
}

/// The identity of `fd`, if it is open. Async-signal-safe (`fstat`), for a forked child.
pub(crate) fn identify(fd: RawFd) -> Option<FdId> {
    // SAFETY: all-zero is a valid `stat`, which `fstat` overwrites.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `fstat` writes into `stat`, and fails harmlessly on a closed descriptor.
    if unsafe { libc::fstat(fd, &raw mut stat) } != 0 {
        return None;
    }
    Some(FdId {
        fd,
        dev: stat.st_dev,
        ino: stat.st_ino,
    })
}
