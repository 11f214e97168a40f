//! The request format: a batch of tasks for a worker, as the caller writes it and the worker
//! reads it.
//!
//! A request frame's payload is the address of the batch's entry point (a little-endian `u64`:
//! the worker runs the function at that address in its copy of the program, see
//! `worker::task::Entry`), the fleet depth its tasks run at (a little-endian `u32`, 0 outside a
//! fleet: see `worker::fleet_depth`), then each task's arguments, as a `u32` length and the encoded
//! bytes, so that a worker that cannot decode one task's arguments can still skip to the next.
//! The frame's codec byte is the codec of every task's arguments in it, the batch's function's.

use super::frame::{self, FrameError, Tag, HEADER_LEN};
use crate::codec::{Codec, CodecError};
use crate::func::Wire;

/// The tag of a frame to a worker, with the codec of the arguments it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Request {
    /// A batch of tasks, after which the worker waits for the next (a pool worker).
    Batch(Codec),
    /// A batch, after which the worker exits (a one-off worker forked by the fork server).
    Once(Codec),
}

impl Request {
    /// The codec of the request's arguments.
    pub(crate) fn codec(self) -> Codec {
        match self {
            Request::Batch(codec) | Request::Once(codec) => codec,
        }
    }
}

impl Tag for Request {
    fn from_bytes(tag: u8, codec: u8) -> Result<Request, FrameError> {
        match tag {
            16 => frame::coded(tag, codec).map(Request::Batch),
            17 => frame::coded(tag, codec).map(Request::Once),
            _ => Err(FrameError::UnknownTag(tag)),
        }
    }

    fn to_bytes(self) -> (u8, u8) {
        match self {
            Request::Batch(codec) => (16, codec.id()),
            Request::Once(codec) => (17, codec.id()),
        }
    }
}

/// The length of a request frame's header and the entry address and depth that start its
/// payload.
pub(crate) const HEADER_AND_ENTRY_LEN: usize = HEADER_LEN + 12;

/// What precedes a batch's arguments on the wire: the same bytes as [`frame::begin`], the
/// entry's address, the depth and [`frame::finish`] would write, so that the arguments can be
/// sent from where they are.
pub(crate) fn header(
    tag: Request,
    entry: u64,
    depth: u32,
    args_len: usize,
) -> [u8; HEADER_AND_ENTRY_LEN] {
    let mut header = [0; HEADER_AND_ENTRY_LEN];
    header[..HEADER_LEN].copy_from_slice(&frame::header(tag, 12 + args_len as u64));
    header[HEADER_LEN..HEADER_LEN + 8].copy_from_slice(&entry.to_le_bytes());
    header[HEADER_LEN + 8..].copy_from_slice(&depth.to_le_bytes());
    header
}

/// A whole request frame of one task, its arguments in `codec`, for a one-off worker of the
/// fork server.
///
/// # Errors
///
/// When the arguments cannot be encoded.
pub(crate) fn once<Args: Wire>(
    entry: u64,
    depth: u32,
    codec: Codec,
    args: &Args,
) -> Result<Vec<u8>, CodecError> {
    let mut frame = header(Request::Once(codec), entry, depth, 0).to_vec();
    append_args(codec, args, &mut frame)?;
    frame::finish(&mut frame, 0);
    Ok(frame)
}

/// Splits a request's payload into the entry address, the depth and the tasks' arguments.
pub(crate) fn parse(payload: &[u8]) -> Option<(u64, u32, &[u8])> {
    let (entry, rest) = payload.split_first_chunk::<8>()?;
    let (depth, tasks) = rest.split_first_chunk::<4>()?;
    Some((
        u64::from_le_bytes(*entry),
        u32::from_le_bytes(*depth),
        tasks,
    ))
}

/// Appends one task's arguments, encoded in `codec`, to a batch.
pub(crate) fn append_args<Args: Wire>(
    codec: Codec,
    args: &Args,
    batch: &mut Vec<u8>,
) -> Result<(), CodecError> {
    let start = batch.len();
    batch.extend_from_slice(&[0; 4]);
    if let Err(err) = codec.encode_into(args, batch) {
        batch.truncate(start);
        return Err(err);
    }
    let Ok(len) = u32::try_from(batch.len() - start - 4) else {
        batch.truncate(start);
        let ty = std::any::type_name::<Args>();
        return Err(CodecError::new(format!(
            "`{ty}` in {}: the arguments take more than 4 GiB",
            codec.name()
        )));
    };
    batch[start..start + 4].copy_from_slice(&len.to_le_bytes());
    Ok(())
}

/// Splits the next task's arguments off a batch.
pub(crate) fn split_args(batch: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = batch.split_first_chunk::<4>()?;
    let len = usize::try_from(u32::from_le_bytes(*len)).ok()?;
    (len <= rest.len()).then(|| rest.split_at(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_is_what_begin_and_finish_write() {
        let mut buf = Vec::new();
        let start = frame::begin(&mut buf, Request::Batch(Codec::DEFAULT));
        buf.extend_from_slice(&0x0123_4567_89ab_cdef_u64.to_le_bytes());
        buf.extend_from_slice(&3_u32.to_le_bytes());
        buf.extend_from_slice(b"args");
        frame::finish(&mut buf, start);
        let header = header(Request::Batch(Codec::DEFAULT), 0x0123_4567_89ab_cdef, 3, 4);
        assert_eq!(buf[..HEADER_AND_ENTRY_LEN], header);
    }

    #[test]
    fn a_once_frame_holds_its_one_task() {
        let frame = once(42, 2, Codec::DEFAULT, &(7_u32, String::from("x"))).unwrap();
        let reader = frame::FrameReader::<Request>::from_bytes(frame);
        let (tag, payload) = reader.frame().unwrap().unwrap();
        assert_eq!(tag, Request::Once(Codec::DEFAULT));
        let (entry, depth, tasks) = parse(payload).unwrap();
        assert_eq!((entry, depth), (42, 2));
        let (args, rest) = split_args(tasks).unwrap();
        assert!(rest.is_empty());
        let decoded: (u32, String) = Codec::DEFAULT.decode(args).unwrap();
        assert_eq!(decoded, (7, "x".into()));
    }
}
