//! The fork server's messages, each written and read here: a caller's request for a worker, the
//! hand-over of a request to the spare, and the records on a worker's status socket.
//!
//! - Request (caller → server, on the control socket): one byte, with the worker's descriptors
//!   attached: the read end of its request pipe, the write end of its result pipe, its status
//!   socket, and its ring's memory if it has one.
//! - Hand-over (server → spare, on the spare's socket): one byte, with the request's descriptors
//!   but the status socket, which the server keeps.
//! - Records (server → caller, on the status socket): a tag byte and a little-endian `i32`.
//!   First [`Record::Spawned`] with the pid (and a pidfd attached) or [`Record::ForkFailed`]
//!   with the error number; once the worker has been reaped, [`Record::Exited`], or
//!   [`Record::ExitLost`] with the error number of the `wait` that failed.
//! - Kill (caller → server, on the status socket): one byte, [`KILL`], where the caller may not
//!   signal the worker itself (a seccomp filter refuses `pidfd_send_signal`, and the worker is
//!   not its child). The caller's closing its end asks the same: nobody wants the worker.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use crate::sys::{self, Exit, Pid};

/// A record on a worker's status socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Record {
    /// The worker runs, with this pid; a pidfd for it comes attached.
    Spawned(Pid),
    /// The worker could not be forked: the error number.
    ForkFailed(i32),
    /// The worker has ended and been reaped.
    Exited(Exit),
    /// The worker has ended, but its exit status could not be read: the error number.
    ExitLost(i32),
}

const EXIT_CODE: u8 = 0;
const EXIT_SIGNAL: u8 = 1;
const FORK_FAILED: u8 = 2;
const SPAWNED: u8 = 3;
const EXIT_LOST: u8 = 4;

/// The caller's request that the server kill its worker.
const KILL: u8 = b'k';

/// The length of a record on the wire.
const RECORD_LEN: usize = 5;

impl Record {
    fn to_bytes(self) -> [u8; RECORD_LEN] {
        let (tag, value) = match self {
            Record::Exited(Exit::Code(code)) => (EXIT_CODE, code),
            Record::Exited(Exit::Signal(signal)) => (EXIT_SIGNAL, signal),
            Record::ForkFailed(errno) => (FORK_FAILED, errno),
            Record::Spawned(pid) => (SPAWNED, pid.as_raw()),
            Record::ExitLost(errno) => (EXIT_LOST, errno),
        };
        let mut bytes = [tag, 0, 0, 0, 0];
        bytes[1..].copy_from_slice(&value.to_le_bytes());
        bytes
    }

    fn from_bytes(bytes: [u8; RECORD_LEN]) -> Option<Record> {
        let [tag, value @ ..] = bytes;
        let value = i32::from_le_bytes(value);
        match tag {
            EXIT_CODE => Some(Record::Exited(Exit::Code(value))),
            EXIT_SIGNAL => Some(Record::Exited(Exit::Signal(value))),
            FORK_FAILED => Some(Record::ForkFailed(value)),
            SPAWNED => Some(Record::Spawned(Pid::from_raw(value))),
            EXIT_LOST => Some(Record::ExitLost(value)),
            _ => None,
        }
    }
}

/// The error of every request once the server has died (the OOM killer, a stray `kill -9`):
/// the program then has no server, and it cannot fork a new one safely (it has threads by now).
pub(crate) fn server_gone() -> io::Error {
    io::Error::other(crate::error::ServerGone)
}

/// A worker's own descriptors, as the server and the spare receive them.
#[derive(Debug)]
pub(crate) struct Ends {
    /// The read end of the request pipe.
    pub(crate) requests: OwnedFd,
    /// The write end of the result pipe.
    pub(crate) results: OwnedFd,
    /// The outcome ring's memory, for a pool worker that has one.
    pub(crate) ring: Option<OwnedFd>,
}

impl Ends {
    fn raw(&self, status: Option<RawFd>) -> Vec<RawFd> {
        let pipes = [self.requests.as_raw_fd(), self.results.as_raw_fd()];
        let ring = self.ring.as_ref().map(AsRawFd::as_raw_fd);
        pipes.into_iter().chain(status).chain(ring).collect()
    }

    /// The ends from a message's descriptors, with the status socket (`with_status`) after the
    /// pipes; `None` if the message is malformed.
    fn from_fds(fds: Vec<OwnedFd>, with_status: bool) -> Option<(Ends, Option<OwnedFd>)> {
        let mut fds = fds.into_iter();
        let (requests, results) = (fds.next()?, fds.next()?);
        let status = if with_status { Some(fds.next()?) } else { None };
        let ring = fds.next();
        if fds.next().is_some() {
            return None;
        }
        let ends = Ends {
            requests,
            results,
            ring,
        };
        Some((ends, status))
    }
}

/// Sends the server a request for a worker on `ends`, whose status is reported on `status`.
pub(crate) fn send_request(
    control: BorrowedFd<'_>,
    requests: BorrowedFd<'_>,
    results: BorrowedFd<'_>,
    status: BorrowedFd<'_>,
    ring: Option<BorrowedFd<'_>>,
) -> io::Result<()> {
    let fds: Vec<RawFd> = [requests, results, status]
        .into_iter()
        .chain(ring)
        .map(|fd| fd.as_raw_fd())
        .collect();
    sys::send_with_fds(control, &[0], &fds).map_err(|err| match err.kind() {
        // The server's end of the control socket is closed: it has died.
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => server_gone(),
        _ => err,
    })
}

/// What the server read from its control socket.
pub(crate) enum Received {
    /// The program hung up: it has ended, or dropped its end.
    HungUp,
    /// A message that is not a request. Nobody can be told, and nobody waits on it.
    Malformed,
    /// A request: the worker's ends, and its status socket.
    Request(Ends, File),
}

/// Receives one request, waiting for it.
pub(crate) fn recv_request(control: BorrowedFd<'_>) -> Received {
    let mut kind = [0; 1];
    let Ok((len, fds)) = sys::recv_with_fds(control, &mut kind) else {
        return Received::HungUp;
    };
    if len == 0 && fds.is_empty() {
        return Received::HungUp;
    }
    match Ends::from_fds(fds, true) {
        Some((ends, Some(status))) => Received::Request(ends, File::from(status)),
        _ => Received::Malformed,
    }
}

/// Hands a request's ends to the spare worker on `link`.
pub(crate) fn hand_over(link: BorrowedFd<'_>, ends: &Ends) -> io::Result<()> {
    sys::send_with_fds(link, &[0], &ends.raw(None))
}

/// The spare's side of [`hand_over`]: waits for the ends; `None` if the server hung up (it is
/// ending) or sent something malformed.
pub(crate) fn take_over(link: BorrowedFd<'_>) -> Option<Ends> {
    let mut kind = [0; 1];
    let (_, fds) = sys::recv_with_fds(link, &mut kind).ok()?;
    Ends::from_fds(fds, false).map(|(ends, _)| ends)
}

/// Tells the caller its worker's pid, with a pidfd for it: a pid alone could name another
/// process by the time the caller opened one, should the worker die and be reaped first.
pub(crate) fn send_spawned(status: &File, pid: Pid, pidfd: &OwnedFd) -> io::Result<()> {
    let record = Record::Spawned(pid).to_bytes();
    sys::send_with_fds(status.as_fd(), &record, &[pidfd.as_raw_fd()])
}

/// The caller's side of [`send_spawned`]: the worker's pid and pidfd, or why it could not be
/// forked.
pub(crate) fn recv_spawned(status: &File) -> io::Result<(Pid, OwnedFd)> {
    let mut record = [0; RECORD_LEN];
    let (len, fds) = sys::recv_with_fds(status.as_fd(), &mut record)?;
    match (len, Record::from_bytes(record), fds.into_iter().next()) {
        (0, ..) => Err(server_gone()),
        (RECORD_LEN, Some(Record::Spawned(pid)), Some(pidfd)) => Ok((pid, pidfd)),
        (RECORD_LEN, Some(Record::ForkFailed(errno)), _) => {
            Err(io::Error::from_raw_os_error(errno))
        }
        _ => Err(io::Error::other("bad record from the fork server")),
    }
}

/// Writes a record that carries no descriptor: [`Record::ForkFailed`] or [`Record::Exited`].
/// Fails when the caller has closed its end (it has its outcome, and nobody waits).
pub(crate) fn write_record(status: &mut File, record: Record) -> io::Result<()> {
    status.write_all(&record.to_bytes())
}

/// Reads the exit record the server writes once it has reaped the worker, waiting for it.
pub(crate) fn read_exit(status: &mut File) -> io::Result<Exit> {
    let mut record = [0; RECORD_LEN];
    status
        .read_exact(&mut record)
        .map_err(|err| match err.kind() {
            io::ErrorKind::UnexpectedEof => server_gone(),
            _ => err,
        })?;
    match Record::from_bytes(record) {
        Some(Record::Exited(exit)) => Ok(exit),
        Some(Record::ExitLost(errno)) => Err(io::Error::other(format!(
            "the fork server could not read the exit status: {}",
            io::Error::from_raw_os_error(errno)
        ))),
        _ => Err(io::Error::other("bad exit record from the fork server")),
    }
}

/// Asks the server to kill the worker whose status socket is `status`.
pub(crate) fn ask_kill(status: &File) -> io::Result<()> {
    sys::send_with_fds(status.as_fd(), &[KILL], &[]).map_err(|err| match err.kind() {
        io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => server_gone(),
        _ => err,
    })
}

/// What the server heard on a worker's status socket that was readable.
pub(crate) enum Heard {
    /// The caller asked for the worker to be killed.
    Kill,
    /// The caller closed its end: it wants nothing more of the worker.
    HungUp,
    /// Something else, which means nothing.
    Nothing,
}

/// The server's side of [`ask_kill`]: reads what came on `status`.
pub(crate) fn hear(status: &File) -> Heard {
    let mut message = [0; RECORD_LEN];
    match sys::recv_with_fds(status.as_fd(), &mut message) {
        Ok((0, _)) | Err(_) => Heard::HungUp,
        Ok((1, _)) if message[0] == KILL => Heard::Kill,
        Ok(_) => Heard::Nothing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_record_reads_back() {
        for record in [
            Record::Spawned(Pid::from_raw(4242)),
            Record::ForkFailed(11),
            Record::Exited(Exit::Code(-1)),
            Record::Exited(Exit::Signal(9)),
            Record::ExitLost(10),
        ] {
            assert_eq!(Record::from_bytes(record.to_bytes()), Some(record));
        }
        assert_eq!(Record::from_bytes([9, 0, 0, 0, 0]), None);
    }
}
