//! The outcome format: what became of one task, as the worker writes it and the caller reads it.
//!
//! An outcome frame's tag is its [`Status`]; the payload is the encoded value, the encoded
//! [`PanicReport`], or the codec's message. No frame at all is an outcome too: [`missing`] says
//! what a worker's end without one means.

use super::frame::{self, FrameError, Tag};
use crate::codec::Codec;
use crate::error::{ErrorKind, PanicReport};
use crate::func::Wire;
use crate::sys::Exit;

/// The tag of an outcome frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    /// The return value, encoded in the codec it names (the frame's codec byte).
    Value(Codec),
    /// The worker panicked: a [`PanicReport`], encoded in the default codec whatever the
    /// function's (the frame says so), so that it reads the same from every function.
    Panic,
    /// The worker returned but its value could not be encoded: the codec's message.
    EncodeFailed,
    /// A pool worker could not decode a task's arguments: the codec's message.
    DecodeFailed,
}

impl Tag for Status {
    fn from_bytes(tag: u8, codec: u8) -> Result<Status, FrameError> {
        match tag {
            0 => frame::coded(tag, codec).map(Status::Value),
            1 if codec == Codec::DEFAULT.id() => Ok(Status::Panic),
            1 => Err(FrameError::BadCodec { tag, codec }),
            2 => frame::uncoded(tag, codec, Some(Status::EncodeFailed)),
            3 => frame::uncoded(tag, codec, Some(Status::DecodeFailed)),
            _ => Err(FrameError::UnknownTag(tag)),
        }
    }

    fn to_bytes(self) -> (u8, u8) {
        match self {
            Status::Value(codec) => (0, codec.id()),
            Status::Panic => (1, Codec::DEFAULT.id()),
            Status::EncodeFailed => (2, 0),
            Status::DecodeFailed => (3, 0),
        }
    }
}

/// Appends the outcome frame of a task that returned `value`, encoded in `codec`, or, should
/// the value not encode, the frame that says why.
pub(crate) fn append_value<R: Wire>(codec: Codec, value: &R, buf: &mut Vec<u8>) {
    let start = frame::begin(buf, Status::Value(codec));
    match codec.encode_into(value, buf) {
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
    if Codec::DEFAULT.encode_into(report, buf).is_err() {
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

/// Reads an outcome frame of a task whose function's codec is `codec`: the value, or why there
/// is none. A value in another codec is a bad frame, not something to decode.
pub(crate) fn decode<T: Wire>(
    codec: Codec,
    status: Status,
    payload: &[u8],
) -> Result<T, ErrorKind> {
    match status {
        Status::Value(said) if said == codec => codec
            .decode(payload)
            .map_err(|err| ErrorKind::Decode(err.to_string())),
        Status::Value(said) => Err(ErrorKind::Frame(format!(
            "its result is in {}, but the function's codec is {}",
            said.name(),
            codec.name()
        ))),
        Status::Panic => match Codec::DEFAULT.decode::<PanicReport>(payload) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::frame::FrameReader;

    fn frame_of(buf: Vec<u8>) -> (Status, Vec<u8>) {
        let reader = FrameReader::<Status>::from_bytes(buf);
        let (status, payload) = reader.frame().unwrap().unwrap();
        (status, payload.to_vec())
    }

    #[test]
    fn a_value_frame_names_its_codec_and_a_panic_the_default() {
        let mut buf = Vec::new();
        append_value(Codec::DEFAULT, &7_u64, &mut buf);
        assert_eq!(buf[2], Codec::DEFAULT.id());
        let (status, payload) = frame_of(buf);
        assert_eq!(decode::<u64>(Codec::DEFAULT, status, &payload).unwrap(), 7);
        let mut buf = Vec::new();
        let report = PanicReport {
            message: "boom".into(),
            location: None,
        };
        append_panic(&report, &mut buf);
        assert_eq!(buf[2], Codec::DEFAULT.id());
        let mut buf = Vec::new();
        append_decode_failed("no", &mut buf);
        assert_eq!(buf[2], 0);
    }

    #[cfg(feature = "bincode")]
    #[test]
    fn a_value_in_another_codec_than_the_functions_is_a_bad_frame() {
        let mut buf = Vec::new();
        append_value(Codec::Bincode, &7_u64, &mut buf);
        assert_eq!(buf[2], Codec::Bincode.id());
        let (status, payload) = frame_of(buf);
        assert_eq!(status, Status::Value(Codec::Bincode));
        let Err(ErrorKind::Frame(message)) = decode::<u64>(Codec::MessagePack, status, &payload)
        else {
            panic!("not a bad frame");
        };
        assert_eq!(
            message,
            "its result is in bincode, but the function's codec is msgpack"
        );
        let panic = PanicReport {
            message: "boom".into(),
            location: None,
        };
        let mut buf = Vec::new();
        append_panic(&panic, &mut buf);
        let (status, payload) = frame_of(buf);
        // A bincode function's panic report reads in the default codec.
        let read = decode::<u64>(Codec::Bincode, status, &payload);
        assert!(matches!(read, Err(ErrorKind::Panic(report)) if report.message == "boom"));
    }
}
