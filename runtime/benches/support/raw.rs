//! The `raw pipe` and raw fork baselines: `fork`, `pipe`, `read`, `write` and `waitpid` by hand,
//! with no framing, no codec and no error reporting beyond `io::Error`. They are the physical
//! limit of the transport on this machine.
//!
//! A child here runs only `read`, `write` and `_exit` on memory it inherited: it allocates
//! nothing and takes no lock, so forking it from a process that has other threads (rayon's) is
//! sound.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

/// A pre-forked child that echoes fixed-size messages over two pipes, until it reads EOF.
/// Dropping it kills and reaps the child.
pub(crate) struct EchoChild {
    pid: libc::pid_t,
    to_child: File,
    from_child: File,
}

impl EchoChild {
    /// Forks a child that echoes messages of `message_len` bytes. With `pipe_size`, both pipes
    /// are grown to that many bytes, as the runtime grows its own.
    pub(crate) fn spawn(
        message_len: usize,
        pipe_size: Option<libc::c_int>,
    ) -> io::Result<EchoChild> {
        let (down_read, down_write) = pipe()?;
        let (up_read, up_write) = pipe()?;
        if let Some(size) = pipe_size {
            grow(&down_write, size);
            grow(&up_write, size);
        }
        // Allocated before the fork, so that the child does not allocate.
        let mut buffer = vec![0_u8; message_len];
        match fork()? {
            None => {
                drop((down_write, up_read));
                let mut input = File::from(down_read);
                let mut output = File::from(up_write);
                while input.read_exact(&mut buffer).is_ok() {
                    if output.write_all(&buffer).is_err() {
                        break;
                    }
                }
                exit_child()
            }
            Some(pid) => Ok(EchoChild {
                pid,
                to_child: File::from(down_write),
                from_child: File::from(up_read),
            }),
        }
    }

    /// The child's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.pid.unsigned_abs()
    }

    /// Sends `message` and reads its echo into `reply` (of the same length).
    pub(crate) fn round_trip(&mut self, message: &[u8], reply: &mut [u8]) -> io::Result<()> {
        self.to_child.write_all(message)?;
        self.from_child.read_exact(reply)
    }
}

impl Drop for EchoChild {
    fn drop(&mut self) {
        // SAFETY: `kill` has no memory effects; the child is ours and not yet reaped, so its pid
        // cannot name another process.
        unsafe { libc::kill(self.pid, libc::SIGKILL) };
        let _ = wait(self.pid);
    }
}

/// One raw one-off worker: a pipe, a fork, a child that writes 8 bytes and exits, a read, and a
/// `waitpid`. Returns what the child wrote.
pub(crate) fn fork_write_wait(value: u64) -> io::Result<u64> {
    let (read, write) = pipe()?;
    match fork()? {
        None => {
            drop(read);
            let _ = File::from(write).write_all(&(value + 1).to_le_bytes());
            exit_child()
        }
        Some(pid) => {
            drop(write);
            let mut bytes = [0_u8; 8];
            let read = File::from(read).read_exact(&mut bytes);
            wait(pid)?;
            read.map(|()| u64::from_le_bytes(bytes))
        }
    }
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two descriptors for `pipe2` to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `pipe2` succeeded, so both descriptors are open and owned by no one else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Grows a pipe's buffer where the system allows it, as the runtime does; otherwise it stays.
fn grow(fd: &OwnedFd, size: libc::c_int) {
    // SAFETY: `F_SETPIPE_SZ` on a descriptor we own has no memory effects.
    unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETPIPE_SZ, size) };
}

/// `None` in the child, `Some(pid)` in the parent.
fn fork() -> io::Result<Option<libc::pid_t>> {
    // SAFETY: every caller's child only reads, writes and `_exit`s (the module docs), on memory
    // allocated before the fork: it needs no lock that another thread might have held.
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(None),
        pid => Ok(Some(pid)),
    }
}

/// Ends a raw child without running the parent's exit handlers or destructors.
fn exit_child() -> ! {
    // SAFETY: `_exit` is async-signal-safe and never returns.
    unsafe { libc::_exit(0) }
}

fn wait(pid: libc::pid_t) -> io::Result<()> {
    loop {
        let mut status = 0;
        // SAFETY: `status` is a valid place for `waitpid` to write to.
        if unsafe { libc::waitpid(pid, &raw mut status, 0) } == pid {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}
