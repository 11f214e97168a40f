//! Length-prefixed frames, the one framing of every byte stream between the caller and a worker
//! (pipes and the ring alike): a tag byte, the payload's length as a little-endian `u64`, the
//! payload. Written by both sides of the fork, read by both.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::os::fd::BorrowedFd;

use crate::sys;

pub(crate) const HEADER_LEN: usize = 9;

/// The largest payload a frame may announce. Anything larger is taken for a corrupt header
/// rather than allocated for: Lambda's largest function has 10 GiB of memory in all.
pub(crate) const MAX_PAYLOAD: u64 = 8 << 30;

/// The tag byte of one family of frames. Each direction has its own: requests to a worker
/// ([`Request`](super::batch::Request)), outcomes ([`Status`](super::outcome::Status)), and a
/// pool worker's channel, which carries outcomes and the signals of the ring/pipe protocol
/// (`transport::channel::Up`). Their bytes never overlap, so that a frame read in the wrong
/// place is an unknown tag, not a misreading.
pub(crate) trait Tag: Copy + fmt::Debug + PartialEq {
    /// The tag a byte stands for in this family, if any.
    fn from_byte(byte: u8) -> Option<Self>;
    /// The byte on the wire.
    fn to_byte(self) -> u8;
}

/// The bytes on a pipe do not form a frame.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FrameError {
    UnknownTag(u8),
    TooLarge(u64),
    Truncated {
        have: usize,
        want: u64,
    },
    /// A worker's ring claims more bytes published than it holds.
    Overfull(u64),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::UnknownTag(tag) => write!(f, "unknown frame tag {tag:#04x}"),
            FrameError::TooLarge(len) => write!(
                f,
                "frame announces {len} bytes, more than the limit of {MAX_PAYLOAD}"
            ),
            FrameError::Truncated { have, want } => {
                write!(f, "truncated frame: {have} of {want} bytes")
            }
            FrameError::Overfull(len) => write!(
                f,
                "the shared-memory ring claims {len} bytes of frames, more than it holds"
            ),
        }
    }
}

/// Starts a frame at the end of `buf`, to be completed by [`finish`] once the payload is written
/// after it. Returns where the frame starts.
pub(crate) fn begin(buf: &mut Vec<u8>, tag: impl Tag) -> usize {
    let start = buf.len();
    buf.push(tag.to_byte());
    buf.extend_from_slice(&[0; HEADER_LEN - 1]);
    start
}

/// Writes the payload length into the header that [`begin`] started at `start`.
pub(crate) fn finish(buf: &mut [u8], start: usize) {
    let len = (buf.len() - start - HEADER_LEN) as u64;
    buf[start + 1..start + HEADER_LEN].copy_from_slice(&len.to_le_bytes());
}

/// Reads a frame header: the tag, and the payload's length.
pub(crate) fn parse_header<T: Tag>(header: &[u8]) -> Result<(T, u64), FrameError> {
    let (&tag, len) = header.split_first().ok_or(FrameError::Truncated {
        have: 0,
        want: HEADER_LEN as u64,
    })?;
    let tag = T::from_byte(tag).ok_or(FrameError::UnknownTag(tag))?;
    let len = len.first_chunk::<8>().ok_or(FrameError::Truncated {
        have: header.len(),
        want: HEADER_LEN as u64,
    })?;
    let len = u64::from_le_bytes(*len);
    if len > MAX_PAYLOAD {
        return Err(FrameError::TooLarge(len));
    }
    Ok((tag, len))
}

/// A frame with no payload, such as a bell (`transport::channel::Up::Bell`).
pub(crate) fn empty(tag: impl Tag) -> [u8; HEADER_LEN] {
    let mut frame = [0; HEADER_LEN];
    frame[0] = tag.to_byte();
    frame
}

/// A frame's payload, owned. Most outcomes are a few bytes, which are kept inline rather than
/// in an allocation of their own.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Payload {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(Vec<u8>),
}

/// The largest payload kept inline: as much as fits in the size of a `Vec`.
const INLINE: usize = 22;

impl Payload {
    /// A payload of `len` bytes, which `fill` writes.
    pub(crate) fn filled(len: usize, fill: impl FnOnce(&mut [u8])) -> Payload {
        match u8::try_from(len) {
            Ok(short) if len <= INLINE => {
                let mut bytes = [0; INLINE];
                fill(&mut bytes[..len]);
                Payload::Inline { len: short, bytes }
            }
            _ => {
                let mut bytes = vec![0; len];
                fill(&mut bytes);
                Payload::Heap(bytes)
            }
        }
    }

    pub(crate) fn copy_of(bytes: &[u8]) -> Payload {
        Payload::filled(bytes.len(), |out| out.copy_from_slice(bytes))
    }
}

impl std::ops::Deref for Payload {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Payload::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Payload::Heap(bytes) => bytes,
        }
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Payload({} bytes)", self.len())
    }
}

/// Collects frames of the family `T` from a pipe as bytes arrive.
#[derive(Debug)]
pub(crate) struct FrameReader<T> {
    buf: Vec<u8>,
    /// Where the first frame not yet consumed starts in `buf`.
    start: usize,
    _tags: PhantomData<fn() -> T>,
}

impl<T> Default for FrameReader<T> {
    fn default() -> Self {
        FrameReader {
            buf: Vec::new(),
            start: 0,
            _tags: PhantomData,
        }
    }
}

/// What one [`FrameReader::fill`] saw.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Fill {
    /// Bytes arrived, as many as were asked for: more may be waiting.
    Data,
    /// Bytes arrived, fewer than were asked for: the pipe held no more, so reading again now
    /// would only return `WouldBlock` (a wasted system call; `poll` tells when more comes).
    Drained,
    /// Nothing is available yet.
    WouldBlock,
    /// The writer closed its end.
    Eof,
}

impl<T: Tag> FrameReader<T> {
    /// A reader over bytes already at hand.
    pub(crate) fn from_bytes(buf: Vec<u8>) -> Self {
        FrameReader {
            buf,
            start: 0,
            _tags: PhantomData,
        }
    }

    /// Reads what the pipe has (without blocking, if the pipe does not block).
    pub(crate) fn fill(&mut self, fd: BorrowedFd<'_>) -> io::Result<Fill> {
        if self.start > 0 {
            // Move what is left of the consumed frames' bytes to the front, once per read rather
            // than once per frame.
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let want = match self.header() {
            // Read the whole rest of the frame at once, but reserve at most 64 MiB ahead, so
            // that a corrupt length costs no more than that before it is found out.
            Ok(Some((_, len))) => {
                let total = HEADER_LEN as u64 + len;
                let want = total.saturating_sub(self.buf.len() as u64).min(64 << 20);
                usize::try_from(want).unwrap_or(64 << 20)
            }
            // No header yet: enough for a small frame whole. Kept under glibc's threshold for
            // mapping an allocation of its own, so that a fresh reader (each one-off spawn has
            // two) costs no `mmap`, no page faults in fresh pages and no `munmap`.
            _ => 64 << 10,
        };
        let want = want.max(1);
        match sys::read_appending(fd, &mut self.buf, want) {
            Ok(0) => Ok(Fill::Eof),
            Ok(read) if read < want => Ok(Fill::Drained),
            Ok(_) => Ok(Fill::Data),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => Ok(Fill::WouldBlock),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => Ok(Fill::Data),
            Err(err) => Err(err),
        }
    }

    fn header(&self) -> Result<Option<(T, u64)>, FrameError> {
        match self.buf.get(self.start..self.start + HEADER_LEN) {
            Some(header) => parse_header(header).map(Some),
            None => Ok(None),
        }
    }

    /// The first complete frame, if one has arrived.
    pub(crate) fn frame(&self) -> Result<Option<(T, &[u8])>, FrameError> {
        let Some((tag, len)) = self.header()? else {
            return Ok(None);
        };
        let body = self.start + HEADER_LEN;
        match usize::try_from(len).map(|len| body + len) {
            Ok(end) if end <= self.buf.len() => Ok(Some((tag, &self.buf[body..end]))),
            _ => Ok(None),
        }
    }

    /// Why the bytes so far are not a frame, once no more will come.
    pub(crate) fn incomplete(&self) -> FrameError {
        match self.header() {
            Err(err) => err,
            Ok(Some((_, len))) => FrameError::Truncated {
                have: self.buf.len() - self.start,
                want: HEADER_LEN as u64 + len,
            },
            Ok(None) => FrameError::Truncated {
                have: self.buf.len() - self.start,
                want: HEADER_LEN as u64,
            },
        }
    }

    /// Drops the first frame, which [`FrameReader::frame`] returned.
    pub(crate) fn consume(&mut self) {
        if let Ok(Some((_, payload))) = self.frame() {
            self.start += HEADER_LEN + payload.len();
        }
    }

    /// Whether no byte of an unconsumed frame has arrived.
    pub(crate) fn is_empty(&self) -> bool {
        self.buf.len() == self.start
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::outcome::Status;

    fn reader_with(bytes: &[u8]) -> FrameReader<Status> {
        FrameReader::from_bytes(bytes.to_vec())
    }

    #[test]
    fn reads_back_a_frame() {
        let mut buf = Vec::new();
        let start = begin(&mut buf, Status::Panic);
        buf.extend_from_slice(b"boom");
        finish(&mut buf, start);
        let reader = reader_with(&buf);
        assert_eq!(reader.frame(), Ok(Some((Status::Panic, &b"boom"[..]))));
    }

    #[test]
    fn waits_for_the_rest_of_a_frame() {
        let mut buf = Vec::new();
        let start = begin(&mut buf, Status::Value);
        buf.extend_from_slice(b"abc");
        finish(&mut buf, start);
        let reader = reader_with(&buf[..buf.len() - 1]);
        assert_eq!(reader.frame(), Ok(None));
        assert_eq!(
            reader.incomplete(),
            FrameError::Truncated { have: 11, want: 12 }
        );
    }

    #[test]
    fn rejects_an_unknown_tag() {
        let reader = reader_with(&[7, 0, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(reader.frame(), Err(FrameError::UnknownTag(7)));
    }

    #[test]
    fn rejects_an_absurd_length() {
        let mut bytes = vec![0];
        bytes.extend_from_slice(&u64::MAX.to_le_bytes());
        assert_eq!(
            reader_with(&bytes).frame(),
            Err(FrameError::TooLarge(u64::MAX))
        );
    }
}
