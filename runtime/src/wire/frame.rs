//! Length-prefixed frames, the one framing of every byte stream between the caller and a worker
//! (pipes and the ring alike). Written by both sides of the fork, read by both.
//!
//! A frame is a 12-byte header and the payload. The header: [`MAGIC`], the tag byte, the codec
//! byte (the id of the codec that encoded the payload, `Codec::id`; 0 for frames whose payload
//! is not an encoded value), a check byte, and the payload's length as a little-endian `u64`.
//! Each family of tags says which codec bytes its tags take ([`Tag::from_bytes`]), so a frame
//! in a codec this build does not have is a [`FrameError`], and the reader of a value compares
//! the frame's codec with the one it expects before it decodes anything. The check byte is a hash of the
//! tag, codec and length: bytes a worker's own code writes to its pipe by mistake, or a stream
//! read out of step, fail the magic or the check (all but about one in 65,536 random headers),
//! rather than be taken for a frame that claims any length at all.

use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::os::fd::BorrowedFd;

use crate::codec::Codec;
use crate::sys;

pub(crate) const HEADER_LEN: usize = 12;

/// The first byte of every frame.
pub(crate) const MAGIC: u8 = 0xa7;

/// The check byte of a header: a hash of what the header says, position by position.
fn check(tag: u8, codec: u8, len: u64) -> u8 {
    let said = len ^ (u64::from(tag) << 56) ^ (u64::from(codec) << 48) ^ u64::from(MAGIC);
    // The top byte of a multiplicative (Fibonacci) hash depends on every bit of `said`.
    (said.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as u8
}

/// A whole header, for a frame of `len` payload bytes.
pub(crate) fn header(tag: impl Tag, len: u64) -> [u8; HEADER_LEN] {
    let (tag, codec) = tag.to_bytes();
    let mut header = [
        MAGIC,
        tag,
        codec,
        check(tag, codec, len),
        0,
        0,
        0,
        0,
        0,
        0,
        0,
        0,
    ];
    header[4..].copy_from_slice(&len.to_le_bytes());
    header
}

/// The largest payload a frame may announce. Anything larger is taken for a corrupt header
/// rather than allocated for: Lambda's largest function has 10 GiB of memory in all.
pub(crate) const MAX_PAYLOAD: u64 = 8 << 30;

/// The tag byte of one family of frames. Each direction has its own: requests to a worker
/// ([`Request`](super::batch::Request)), outcomes ([`Status`](super::outcome::Status)), and a
/// pool worker's channel, which carries outcomes and the signals of the ring/pipe protocol
/// (`transport::channel::Up`). Their bytes never overlap, so that a frame read in the wrong
/// place is an unknown tag, not a misreading.
///
/// A tag value holds the frame's codec too, where its frames carry an encoded value, so that
/// the codec travels with the frame wherever it is stored.
pub(crate) trait Tag: Copy + fmt::Debug + PartialEq {
    /// The tag that a header's tag and codec bytes stand for in this family.
    ///
    /// # Errors
    ///
    /// An unknown tag, or a codec byte the tag does not take.
    fn from_bytes(tag: u8, codec: u8) -> Result<Self, FrameError>;
    /// The tag and codec bytes on the wire.
    fn to_bytes(self) -> (u8, u8);
}

/// The tag that `tag` stands for, `known`, if any, for a tag whose frames hold no encoded value
/// (their codec byte is 0).
pub(crate) fn uncoded<T>(tag: u8, codec: u8, known: Option<T>) -> Result<T, FrameError> {
    match known {
        None => Err(FrameError::UnknownTag(tag)),
        Some(_) if codec != 0 => Err(FrameError::BadCodec { tag, codec }),
        Some(known) => Ok(known),
    }
}

/// The codec that a frame's codec byte names, for a tag whose frames hold an encoded value.
pub(crate) fn coded(tag: u8, codec: u8) -> Result<Codec, FrameError> {
    Codec::from_id(codec).ok_or(FrameError::BadCodec { tag, codec })
}

/// The bytes on a pipe do not form a frame.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum FrameError {
    /// The magic or the check byte is wrong: these bytes are not a header.
    BadHeader([u8; HEADER_LEN]),
    UnknownTag(u8),
    /// The codec byte is one the tag does not take, or names no codec this build has.
    BadCodec {
        tag: u8,
        codec: u8,
    },
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
            FrameError::BadHeader(bytes) => {
                write!(f, "bytes that are not a frame header: {bytes:02x?}")
            }
            FrameError::UnknownTag(tag) => write!(f, "unknown frame tag {tag:#04x}"),
            FrameError::BadCodec { tag, codec } => match Codec::from_id(*codec) {
                Some(codec) => write!(
                    f,
                    "a frame of tag {tag:#04x} says it is in {}, which that tag does not take",
                    codec.name()
                ),
                None => write!(
                    f,
                    "a frame of tag {tag:#04x} has codec byte {codec:#04x}, which names no codec \
                     of this build"
                ),
            },
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
    buf.extend_from_slice(&header(tag, 0));
    start
}

/// Writes the payload length, and so the check byte, into the header that [`begin`] started at
/// `start`.
pub(crate) fn finish(buf: &mut [u8], start: usize) {
    let len = (buf.len() - start - HEADER_LEN) as u64;
    let (tag, codec) = (buf[start + 1], buf[start + 2]);
    buf[start + 3] = check(tag, codec, len);
    buf[start + 4..start + HEADER_LEN].copy_from_slice(&len.to_le_bytes());
}

/// Reads a frame header: the tag, and the payload's length.
pub(crate) fn parse_header<T: Tag>(header: &[u8]) -> Result<(T, u64), FrameError> {
    let Some(header) = header.first_chunk::<HEADER_LEN>() else {
        return Err(FrameError::Truncated {
            have: header.len(),
            want: HEADER_LEN as u64,
        });
    };
    let [magic, tag, codec, checked, len @ ..] = *header;
    let len = u64::from_le_bytes(len);
    if magic != MAGIC || checked != check(tag, codec, len) {
        return Err(FrameError::BadHeader(*header));
    }
    let tag = T::from_bytes(tag, codec)?;
    if len > MAX_PAYLOAD {
        return Err(FrameError::TooLarge(len));
    }
    Ok((tag, len))
}

/// A frame with no payload, such as a bell (`transport::channel::Up::Bell`).
pub(crate) fn empty(tag: impl Tag) -> [u8; HEADER_LEN] {
    header(tag, 0)
}

/// A frame's payload, owned. Most outcomes are a few bytes, which are kept inline rather than
/// in an allocation of their own.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Payload {
    Inline(Inline),
    Heap(Vec<u8>),
}

/// The largest payload kept inline.
const INLINE: usize = 16;

/// A short payload, laid out in whole words: outcomes are moved by the thousand, and a value of
/// odd size and offsets is moved in overlapping pieces that stall the loads that follow.
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(C, align(8))]
pub(crate) struct Inline {
    bytes: [u8; INLINE],
    len: u8,
}

impl Payload {
    /// A payload of `len` bytes, which `fill` writes.
    pub(crate) fn filled(len: usize, fill: impl FnOnce(&mut [u8])) -> Payload {
        match u8::try_from(len) {
            Ok(short) if len <= INLINE => {
                let mut bytes = [0; INLINE];
                fill(&mut bytes[..len]);
                Payload::Inline(Inline { bytes, len: short })
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
            Payload::Inline(inline) => &inline.bytes[..usize::from(inline.len)],
            Payload::Heap(bytes) => bytes,
        }
    }
}

impl fmt::Debug for Payload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Payload({} bytes)", self.len())
    }
}

/// The most a reader reserves ahead of what has arrived of a frame, while less than that has.
const READ_AHEAD: u64 = 1 << 20;

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
            // Read the whole rest of the frame at once, but reserve no more ahead than has
            // arrived of it (or 1 MiB), so that a length no bytes back up costs little: the
            // reservation grows with the bytes, as a `Vec` grows by doubling.
            Ok(Some((_, len))) => {
                let total = HEADER_LEN as u64 + len;
                let arrived = self.buf.len() as u64;
                let ahead = arrived.max(READ_AHEAD);
                usize::try_from(total.saturating_sub(arrived).min(ahead)).unwrap_or(1 << 20)
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
        let start = begin(&mut buf, Status::Value(Codec::DEFAULT));
        buf.extend_from_slice(b"abc");
        finish(&mut buf, start);
        let reader = reader_with(&buf[..buf.len() - 1]);
        assert_eq!(reader.frame(), Ok(None));
        assert_eq!(
            reader.incomplete(),
            FrameError::Truncated { have: 14, want: 15 }
        );
    }

    /// A header of any tag and codec bytes, with a true check byte.
    #[derive(Clone, Copy, Debug, PartialEq)]
    struct Any(u8, u8);

    impl Tag for Any {
        fn from_bytes(tag: u8, codec: u8) -> Result<Any, FrameError> {
            Ok(Any(tag, codec))
        }

        fn to_bytes(self) -> (u8, u8) {
            (self.0, self.1)
        }
    }

    #[test]
    fn rejects_an_unknown_tag() {
        let reader = reader_with(&header(Any(7, 0), 0));
        assert_eq!(reader.frame(), Err(FrameError::UnknownTag(7)));
    }

    /// A value frame must name a codec, and only a value or panic frame may.
    #[test]
    fn rejects_a_codec_byte_its_tag_does_not_take() {
        let value = Status::Value(Codec::DEFAULT).to_bytes().0;
        let failed = Status::EncodeFailed.to_bytes().0;
        for (tag, codec) in [(value, 0), (value, 0xee), (failed, Codec::DEFAULT.id())] {
            let reader = reader_with(&header(Any(tag, codec), 0));
            assert_eq!(reader.frame(), Err(FrameError::BadCodec { tag, codec }));
        }
        let reader = reader_with(&header(Status::Value(Codec::DEFAULT), 0));
        let read = reader.frame().unwrap().unwrap();
        assert_eq!(read, (Status::Value(Codec::DEFAULT), &[][..]));
    }

    #[test]
    fn rejects_an_absurd_length() {
        let reader = reader_with(&header(Status::Value(Codec::DEFAULT), u64::MAX));
        assert_eq!(reader.frame(), Err(FrameError::TooLarge(u64::MAX)));
    }

    #[test]
    fn rejects_bytes_out_of_step() {
        let mut bytes = vec![0, 0, 0, 0];
        bytes.extend_from_slice(&empty(Status::Value(Codec::DEFAULT)));
        assert!(matches!(
            reader_with(&bytes).frame(),
            Err(FrameError::BadHeader(_))
        ));
        // Any one byte of a header changed is found out, but in the length's top bytes, where
        // the limit is.
        let good = header(Status::Panic, 1234);
        for at in 0..HEADER_LEN {
            for bit in 0..8 {
                let mut bad = good;
                bad[at] ^= 1 << bit;
                assert!(reader_with(&bad).frame().is_err(), "byte {at}, bit {bit}");
            }
        }
    }
}

#[cfg(test)]
mod properties {
    //! Whatever bytes arrive, the reader gives frames, waits for more, or fails: it never
    //! panics, and it never reserves much more than the bytes that have arrived.

    use std::io::Write;
    use std::os::fd::AsFd;

    use proptest::prelude::*;

    use super::*;
    use crate::wire::outcome::Status;

    /// Frames of random sizes, then some mutations and a cut: what a broken or hostile worker
    /// might write.
    fn stream() -> impl Strategy<Value = Vec<u8>> {
        let frames = prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..8);
        let flips = prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4);
        (frames, flips, any::<prop::sample::Index>()).prop_map(|(payloads, flips, cut)| {
            let mut bytes = Vec::new();
            for payload in payloads {
                let start = begin(&mut bytes, Status::Value(Codec::DEFAULT));
                bytes.extend_from_slice(&payload);
                finish(&mut bytes, start);
            }
            if !bytes.is_empty() {
                for (at, xor) in flips {
                    let at = at.index(bytes.len());
                    bytes[at] ^= xor;
                }
                bytes.truncate(cut.index(bytes.len() + 1));
            }
            bytes
        })
    }

    proptest! {
        #[test]
        fn frames_or_errors_never_a_panic(bytes in stream()) {
            let mut reader = FrameReader::<Status>::from_bytes(bytes.clone());
            let mut read = 0;
            loop {
                match reader.frame() {
                    Ok(Some((_, payload))) => {
                        read += HEADER_LEN + payload.len();
                        prop_assert!(read <= bytes.len());
                        reader.consume();
                    }
                    Ok(None) => {
                        let _ = reader.incomplete();
                        break;
                    }
                    Err(_) => break,
                }
            }
        }

        #[test]
        fn a_reader_reserves_no_more_than_what_arrived_allows(
            len in any::<u64>(),
            arrived in 0_usize..200_000,
        ) {
            let (read, write) = sys::pipe().unwrap();
            sys::set_nonblocking(read.as_fd()).unwrap();
            sys::grow_pipe(write.as_fd());
            let mut bytes = header(Status::Value(Codec::DEFAULT), len).to_vec();
            bytes.resize(HEADER_LEN + arrived.min(60_000), 0x5a);
            let mut write = std::fs::File::from(write);
            write.write_all(&bytes).unwrap();
            drop(write);
            let mut reader = FrameReader::<Status>::default();
            while matches!(reader.fill(read.as_fd()), Ok(Fill::Data | Fill::Drained)) {
                let _ = reader.frame();
            }
            let arrived = reader.buf.len();
            prop_assert!(
                reader.buf.capacity() <= (2 * arrived).max((1 << 20) + (64 << 10)),
                "{} bytes reserved for {arrived} arrived",
                reader.buf.capacity()
            );
        }
    }
}
