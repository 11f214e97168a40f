//! What a worker's outcome frame, or its absence, means to the caller.

use crate::codec;
use crate::error::{ErrorKind, PanicReport};
use crate::frame::Tag;
use crate::sys::Exit;
use crate::Wire;

/// Reads an outcome frame: the value, or why there is none.
pub(crate) fn decode<T: Wire>(tag: Tag, payload: &[u8]) -> Result<T, ErrorKind> {
    match tag {
        Tag::Value => codec::decode(payload).map_err(|err| ErrorKind::Decode(err.to_string())),
        Tag::Panic => match codec::decode::<PanicReport>(payload) {
            Ok(report) => Err(ErrorKind::Panic(report)),
            Err(err) => Err(ErrorKind::Frame(format!("bad panic report: {err}"))),
        },
        Tag::EncodeFailed => Err(ErrorKind::Encode(text(payload))),
        Tag::DecodeFailed => Err(ErrorKind::DecodeArgs(text(payload))),
        Tag::Batch | Tag::Once | Tag::Bell | Tag::ToPipe | Tag::ToRing => Err(ErrorKind::Frame(
            format!("unexpected {tag:?} frame from a worker"),
        )),
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
