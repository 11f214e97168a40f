//! The outcome format: what became of one task, as the worker writes it and the caller reads it.
//!
//! An outcome frame's tag is its [`Status`]; the payload is the encoded value, the encoded
//! [`PanicReport`], or the codec's message. No frame at all is an outcome too: [`missing`] says
//! what a worker's end without one means.

use super::frame::{self, Tag};
use crate::codec;
use crate::error::{ErrorKind, PanicReport};
use crate::func::Wire;
use crate::sys::Exit;

/// The tag of an outcome frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    /// The encoded return value.
    Value = 0,
    /// The worker panicked: an encoded [`PanicReport`].
    Panic = 1,
    /// The worker returned but its value could not be encoded: the codec's message.
    EncodeFailed = 2,
    /// A pool worker could not decode a task's arguments: the codec's message.
    DecodeFailed = 3,
}

impl Tag for Status {
    fn from_byte(byte: u8) -> Option<Status> {
        [
            Status::Value,
            Status::Panic,
            Status::EncodeFailed,
            Status::DecodeFailed,
        ]
        .into_iter()
        .find(|tag| *tag as u8 == byte)
    }

    fn to_byte(self) -> u8 {
        self as u8
    }
}

/// Appends the outcome frame of a task that returned `value`, or, should the value not encode,
/// the frame that says why.
pub(crate) fn append_value<R: Wire>(value: &R, buf: &mut Vec<u8>) {
    let start = frame::begin(buf, Status::Value);
    match codec::encode_into(value, buf) {
        Ok(()) => frame::finish(buf, start),
        Err(err) => {
            buf.truncate(start);
            append_message(Status::EncodeFailed, &err.to_string(), buf);
        }
    }
}

/// Appends the outcome frame of a task that panicked.
pub(crate) fn append_panic(report: &PanicReport, buf: &mut Vec<u8>) {
    let start = frame::begin(buf, Status::Panic);
    if codec::encode_into(report, buf).is_err() {
        // A `String` and three integers always encode; should that ever change, the parent
        // reads the missing frame as a failure.
        buf.truncate(start);
        return;
    }
    frame::finish(buf, start);
}

/// Appends the outcome frame of a task whose arguments could not be decoded.
pub(crate) fn append_decode_failed(message: &str, buf: &mut Vec<u8>) {
    append_message(Status::DecodeFailed, message, buf);
}

fn append_message(status: Status, message: &str, buf: &mut Vec<u8>) {
    let start = frame::begin(buf, status);
    buf.extend_from_slice(message.as_bytes());
    frame::finish(buf, start);
}

/// Reads an outcome frame: the value, or why there is none.
pub(crate) fn decode<T: Wire>(status: Status, payload: &[u8]) -> Result<T, ErrorKind> {
    match status {
        Status::Value => codec::decode(payload).map_err(|err| ErrorKind::Decode(err.to_string())),
        Status::Panic => match codec::decode::<PanicReport>(payload) {
            Ok(report) => Err(ErrorKind::Panic(report)),
            Err(err) => Err(ErrorKind::Frame(format!("bad panic report: {err}"))),
        },
        Status::EncodeFailed => Err(ErrorKind::Encode(text(payload))),
        Status::DecodeFailed => Err(ErrorKind::DecodeArgs(text(payload))),
    }
}

fn text(payload: &[u8]) -> String {
    String::from_utf8_lossy(payload).into_owned()
}

/// Why no outcome arrived from a worker that ended as `exit`; `partial` is what was wrong with
/// the bytes that did arrive, if any did.
pub(crate) fn missing(exit: Exit, partial: Option<String>) -> ErrorKind {
    match (exit, partial) {
        (Exit::Signal(signal), _) => ErrorKind::Signal(signal),
        // The worker ended normally but its frame is partial: a transport failure.
        (Exit::Code(0), Some(partial)) => ErrorKind::Frame(partial),
        (Exit::Code(code), _) => ErrorKind::Exit(code),
    }
}
