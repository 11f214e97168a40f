//! The control socket of the fork server: packets that carry descriptors.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};

use nix::errno::Errno;

use super::io_err;

/// A connected pair of Unix sequenced-packet sockets (each send arrives as one message, with
/// the descriptors it carries), closing on `exec`.
pub(crate) fn packet_pair() -> io::Result<(OwnedFd, OwnedFd)> {
    use nix::sys::socket::{socketpair, AddressFamily, SockFlag, SockType};
    let (a, b) = socketpair(
        AddressFamily::Unix,
        SockType::SeqPacket,
        None,
        SockFlag::SOCK_CLOEXEC,
    )
    .map_err(io_err)?;
    Ok((a, b))
}

/// Sends one message, with copies of `fds` attached. A peer that is gone is an `EPIPE` error,
/// never a `SIGPIPE`.
pub(crate) fn send_with_fds(socket: BorrowedFd<'_>, bytes: &[u8], fds: &[RawFd]) -> io::Result<()> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags, UnixAddr};
    let iov = [io::IoSlice::new(bytes)];
    let cmsgs = [ControlMessage::ScmRights(fds)];
    let flags = MsgFlags::MSG_NOSIGNAL;
    loop {
        match sendmsg::<UnixAddr>(socket.as_raw_fd(), &iov, &cmsgs, flags, None) {
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => {}
            Err(errno) => return Err(io_err(errno)),
        }
    }
}

/// Receives one message into `buf`, with the descriptors attached to it (at most four). `Ok(0)`
/// with no descriptors means the peer hung up.
pub(crate) fn recv_with_fds(
    socket: BorrowedFd<'_>,
    buf: &mut [u8],
) -> io::Result<(usize, Vec<OwnedFd>)> {
    use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags, UnixAddr};
    let mut space = nix::cmsg_space!([RawFd; 4]);
    let mut iov = [io::IoSliceMut::new(buf)];
    let msg = loop {
        match recvmsg::<UnixAddr>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut space),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(msg) => break msg,
            Err(Errno::EINTR) => {}
            Err(errno) => return Err(io_err(errno)),
        }
    };
    let mut fds = Vec::new();
    for cmsg in msg.cmsgs().map_err(io_err)? {
        if let ControlMessageOwned::ScmRights(raw) = cmsg {
            // SAFETY: the kernel installed these descriptors in this process for this message;
            // nothing else owns them.
            fds.extend(
                raw.into_iter()
                    .map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }),
            );
        }
    }
    Ok((msg.bytes, fds))
}
