//! Every system call the runtime makes: the only module that names `nix` or `libc`, whose types
//! stay inside it (a [`Pid`] is ours, errors are `std::io::Error`). Both sides of the fork use it.

#[cfg(feature = "tokio")]
mod epoll;
mod fd;
mod memory;
mod oom;
mod poll;
mod process;
mod socket;

#[cfg(feature = "tokio")]
pub(crate) use epoll::Watch;
pub(crate) use fd::{
    grow_pipe, identify, lend_to_pipe, pipe, read_appending, set_nonblocking, write_some,
    write_vectored, FdId,
};
pub(crate) use memory::{futex_wait, futex_wake, map_shared, shared_memory, unmap};
pub(crate) use oom::OomKills;
pub(crate) use poll::{hung_up, poll, poll_many, Interest};
pub(crate) use process::{
    check_pidfd, child_pidfd, die_with_parent, exit_now, fork, getpid, ignore_sigpipe,
    is_main_thread, is_refused, keep_exit_statuses, kill_unreaped, pidfd_kill, prefer_for_oom_kill,
    rename_thread, restore_sigpipe, signal_name, thread_count, try_wait, wait, watch_parent, Exit,
    Fork, Pid, SigPipe, EIO, SIGKILL,
};
pub(crate) use socket::{packet_pair, recv_with_fds, send_with_fds};

fn io_err(errno: nix::errno::Errno) -> std::io::Error {
    std::io::Error::from_raw_os_error(errno as i32)
}
