//! The caller's end of a pool worker's request pipe: the requests the worker has yet to read, the
//! frames of its newest batches, sent straight from
//! each batch's arguments rather than copied into a buffer first (for a large argument, that
//! copy cost as much as the pipe's own). Headers and small arguments are written with `writev`;
//! large arguments are lent to the pipe page by page (`vmsplice`), so the worker's read is the
//! only copy they make.

use std::collections::VecDeque;
use std::io::{self, ErrorKind, IoSlice};
use std::os::fd::BorrowedFd;

use crate::codec::Codec;
use crate::sys;
use crate::wire::batch::{self, Request, HEADER_AND_ENTRY_LEN};

/// A batch as the outbox sends it: the address of its entry point, and its tasks' arguments as
/// `wire::batch` lays them out. The outbox only reads them.
pub(crate) trait Outgoing {
    /// The entry point's address.
    fn entry(&self) -> u64;
    /// The fleet depth its tasks run at (`wire::batch`).
    fn depth(&self) -> u32;
    /// The codec of the tasks' arguments, which the request's header names.
    fn codec(&self) -> Codec;
    /// The tasks' arguments.
    fn args(&self) -> &[u8];
}

/// Batches one `writev` takes at most.
const BATCHES_PER_WRITE: usize = 4;

/// The smallest arguments that are lent to the pipe rather than copied into it. Smaller ones
/// go in the same `writev` as their header (one system call, not two), and a copy of a few
/// pages costs little.
const LEND_MIN: usize = 64 << 10;

/// Which of a worker's batches are not yet wholly on its pipe. The batches themselves stay
/// where they are, in the worker's queue (newest last), until their outcomes come back.
#[derive(Debug, Default)]
pub(crate) struct Outbox {
    /// How many of the queue's batches, counted from the newest, are not wholly on the pipe.
    unsent: usize,
    /// How many bytes of the oldest unsent batch's frame are on the pipe.
    written: usize,
    /// Whether the pipe refused lent pages once: from then on, everything is copied.
    copy_only: bool,
}

impl Outbox {
    /// Counts the batch just added to the back of the queue as unsent.
    pub(crate) fn push(&mut self) {
        self.unsent += 1;
    }

    /// Whether some batch is not wholly on the pipe yet.
    pub(crate) fn is_pending(&self) -> bool {
        self.unsent > 0
    }

    /// Writes what the pipe `fd` takes of the unsent batches of `batches`, without blocking;
    /// whether it wrote anything.
    pub(crate) fn write(&mut self, fd: BorrowedFd<'_>, batches: &VecDeque<impl Outgoing>) -> bool {
        let mut wrote_any = false;
        while self.unsent > 0 {
            let first = &batches[batches.len() - self.unsent];
            let lending = self.written >= HEADER_AND_ENTRY_LEN && self.lends(first);
            let wrote = if lending {
                sys::lend_to_pipe(fd, &first.args()[self.written - HEADER_AND_ENTRY_LEN..])
            } else {
                self.write_copies(fd, batches)
            };
            match wrote {
                Ok(n) => {
                    wrote_any = true;
                    self.advance(n, batches);
                }
                // Full (the worker is busy), or EPIPE (the worker is gone, which its pidfd is
                // about to say): either way, later.
                Err(err) if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::BrokenPipe) => {
                    return wrote_any;
                }
                // The pipe does not take lent pages here (vmsplice is filtered, say): copy.
                Err(_) if lending => self.copy_only = true,
                // Nothing else fails a write to a pipe whose reader lives; should it, the
                // worker's end is near, which its pidfd will say. Never spin on it here.
                Err(_) => return wrote_any,
            }
        }
        wrote_any
    }

    /// Whether `batch`'s arguments go to the pipe as lent pages rather than copies. Its pages
    /// stay unchanged until the worker has read them: a batch stays in the slot's queue, as it
    /// was, until its outcomes have come back, and they come after the worker read it whole.
    fn lends(&self, batch: &impl Outgoing) -> bool {
        !self.copy_only && batch.args().len() >= LEND_MIN
    }

    /// Writes (copies) what the pipe takes of the unsent batches, up to the arguments of the
    /// first batch whose arguments are lent instead.
    fn write_copies(
        &self,
        fd: BorrowedFd<'_>,
        batches: &VecDeque<impl Outgoing>,
    ) -> io::Result<usize> {
        let unsent = batches.range(batches.len() - self.unsent..);
        let mut headers = [[0; HEADER_AND_ENTRY_LEN]; BATCHES_PER_WRITE];
        for (header, batch) in headers.iter_mut().zip(unsent.clone()) {
            let tag = Request::Batch(batch.codec());
            *header = batch::header(tag, batch.entry(), batch.depth(), batch.args().len());
        }
        let mut parts = [IoSlice::new(&[]); 2 * BATCHES_PER_WRITE];
        let mut used = 0;
        let mut skip = self.written;
        for (header, batch) in headers.iter().zip(unsent) {
            let lent = self.lends(batch);
            let args: &[u8] = if lent { &[] } else { batch.args() };
            for part in [&header[..], args] {
                if skip >= part.len() {
                    skip -= part.len();
                } else {
                    parts[used] = IoSlice::new(&part[skip..]);
                    used += 1;
                    skip = 0;
                }
            }
            if lent {
                break;
            }
        }
        sys::write_vectored(fd, &parts[..used])
    }

    /// Accounts for `n` more bytes on the pipe.
    fn advance(&mut self, mut n: usize, batches: &VecDeque<impl Outgoing>) {
        while self.unsent > 0 {
            let batch = &batches[batches.len() - self.unsent];
            let left = HEADER_AND_ENTRY_LEN + batch.args().len() - self.written;
            if n < left {
                self.written += n;
                return;
            }
            n -= left;
            self.unsent -= 1;
            self.written = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::os::fd::AsFd;

    use crate::wire::frame::{Fill, FrameReader};

    struct Batch {
        entry: u64,
        args: Vec<u8>,
    }

    impl Outgoing for Batch {
        fn entry(&self) -> u64 {
            self.entry
        }

        fn depth(&self) -> u32 {
            u32::try_from(self.args.len() % 7).unwrap_or(0)
        }

        fn codec(&self) -> Codec {
            Codec::DEFAULT
        }

        fn args(&self) -> &[u8] {
            &self.args
        }
    }

    fn batch(len: usize) -> Batch {
        Batch {
            entry: 0x0123_4567_89ab_cdef ^ len as u64,
            args: (0..=250).cycle().take(len).collect(),
        }
    }

    /// Sends batches of many sizes from `write` to `read` (both non-blocking) and checks that
    /// they arrive as the frames `begin` and `finish` would make. Whatever is larger than the
    /// buffer between the two goes out in pieces, across writes that stop where it is full.
    fn delivers_whole_frames(read: BorrowedFd<'_>, write: BorrowedFd<'_>) -> Outbox {
        let mut batches = VecDeque::from([batch(3)]);
        let mut outbox = Outbox::default();
        outbox.push();
        for len in [300 << 10, 5, 1 << 20, LEND_MIN, LEND_MIN - 1, 70 << 10, 9] {
            batches.push_back(batch(len));
            outbox.push();
        }
        let mut reader = FrameReader::<Request>::default();
        let mut frames = Vec::new();
        loop {
            outbox.write(write, &batches);
            let fill = reader.fill(read).unwrap();
            if !outbox.is_pending() && fill == Fill::WouldBlock {
                break;
            }
            while let Some((tag, payload)) = reader.frame().unwrap() {
                frames.push((tag, payload.to_vec()));
                reader.consume();
            }
        }
        assert_eq!(frames.len(), batches.len());
        for ((tag, payload), batch) in frames.iter().zip(&batches) {
            let mut want = batch.entry.to_le_bytes().to_vec();
            want.extend_from_slice(&batch.depth().to_le_bytes());
            want.extend_from_slice(&batch.args);
            let tag_and_len = (Request::Batch(Codec::DEFAULT), want.len());
            assert_eq!((*tag, payload.len()), tag_and_len);
            assert!(*payload == want);
        }
        outbox
    }

    #[test]
    fn lends_large_arguments_to_a_pipe() {
        let (read, write) = sys::pipe().unwrap();
        sys::set_nonblocking(write.as_fd()).unwrap();
        sys::set_nonblocking(read.as_fd()).unwrap();
        let outbox = delivers_whole_frames(read.as_fd(), write.as_fd());
        assert!(!outbox.copy_only);
    }

    #[test]
    fn copies_where_pages_cannot_be_lent() {
        // vmsplice(2) takes only pipes.
        let (read, write) = std::os::unix::net::UnixStream::pair().unwrap();
        write.set_nonblocking(true).unwrap();
        read.set_nonblocking(true).unwrap();
        let outbox = delivers_whole_frames(read.as_fd(), write.as_fd());
        assert!(outbox.copy_only);
    }
}
