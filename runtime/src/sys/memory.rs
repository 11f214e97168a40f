//! Memory shared between processes: a worker's outcome ring (`transport/ring.rs`) and the futex that a
//! worker waiting for room in it sleeps on.

use std::io;
use std::num::NonZeroUsize;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::AtomicU32;
use std::sync::PoisonError;
use std::time::Duration;

use nix::fcntl::{fcntl, FcntlArg};

use super::io_err;
use super::process::FORKING;

/// A shared-memory file of `len` zero bytes that can be neither grown nor shrunk (so that no
/// process holding a mapping of it can be made to fault by another resizing it), closing on
/// `exec`. It needs no file system: AWS Lambda has no `/dev/shm`.
pub(crate) fn shared_memory(len: usize) -> io::Result<OwnedFd> {
    use nix::fcntl::SealFlag;
    use nix::sys::memfd::{memfd_create, MFdFlags};
    let fd = memfd_create(
        c"lambda-parallel",
        MFdFlags::MFD_CLOEXEC | MFdFlags::MFD_ALLOW_SEALING,
    )
    .map_err(io_err)?;
    let len = i64::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    nix::unistd::ftruncate(&fd, len).map_err(io_err)?;
    let seals = SealFlag::F_SEAL_GROW | SealFlag::F_SEAL_SHRINK | SealFlag::F_SEAL_SEAL;
    fcntl(&fd, FcntlArg::F_ADD_SEALS(seals)).map_err(io_err)?;
    Ok(fd)
}

/// Maps the first `len` bytes of `fd` readable and writable, shared with every other process
/// that maps it. With `inherit: false`, processes forked later do not inherit the mapping.
pub(crate) fn map_shared(
    fd: BorrowedFd<'_>,
    len: NonZeroUsize,
    inherit: bool,
) -> io::Result<NonNull<u8>> {
    use nix::sys::mman::{madvise, mmap, MapFlags, MmapAdvise, ProtFlags};
    let prot = ProtFlags::PROT_READ | ProtFlags::PROT_WRITE;
    let _forking = (!inherit).then(|| FORKING.lock().unwrap_or_else(PoisonError::into_inner));
    // SAFETY: a fresh mapping at an address the kernel picks aliases no Rust object; the caller
    // owns it from here and unmaps it with `unmap`.
    let map = unsafe { mmap(None, len, prot, MapFlags::MAP_SHARED, fd, 0) }.map_err(io_err)?;
    if !inherit {
        // SAFETY: `madvise` only changes how a fork treats the mapping just made.
        if let Err(errno) = unsafe { madvise(map, len.get(), MmapAdvise::MADV_DONTFORK) } {
            // SAFETY: the mapping was made above, and nothing refers to it yet.
            unsafe { unmap(map.cast(), len) };
            return Err(io_err(errno));
        }
    }
    Ok(map.cast())
}

/// Unmaps what [`map_shared`] mapped.
///
/// # Safety
///
/// `map` and `len` are a mapping that `map_shared` returned, and nothing refers to it any more.
pub(crate) unsafe fn unmap(map: NonNull<u8>, len: NonZeroUsize) {
    // SAFETY: the caller's contract.
    let _ = unsafe { nix::sys::mman::munmap(map.cast(), len.get()) };
}

/// Sleeps while `word` holds `expected`, for at most `timeout`, or until [`futex_wake`] is called
/// on it (from any process that maps the same memory). May return early for no reason.
#[allow(
    clippy::unnecessary_fallible_conversions,
    reason = "`c_long` is 32 bits wide on 32-bit targets"
)]
pub(crate) fn futex_wait(word: &AtomicU32, expected: u32, timeout: Duration) {
    let timeout = libc::timespec {
        tv_sec: libc::time_t::try_from(timeout.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: libc::c_long::try_from(timeout.subsec_nanos()).unwrap_or(0),
    };
    // SAFETY: `word` is a live, aligned `u32` for the duration of the call, and the timeout a
    // valid `timespec`; `FUTEX_WAIT` (not private: the word is in memory shared between
    // processes) only reads them. Its outcome (woken, timed out, interrupted, or the word had
    // changed) needs no handling: the caller looks again either way.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT,
            expected,
            &raw const timeout,
        );
    }
}

/// Wakes every process sleeping in [`futex_wait`] on `word`.
pub(crate) fn futex_wake(word: &AtomicU32) {
    // SAFETY: `word` is a live, aligned `u32`; `FUTEX_WAKE` does not touch its memory.
    unsafe {
        libc::syscall(libc::SYS_futex, word.as_ptr(), libc::FUTEX_WAKE, i32::MAX);
    }
}
