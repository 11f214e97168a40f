//! The default codec: `MessagePack` through `rmp-serde`, on both sides of the fork.
//!
//! The format is self-describing, so everything of serde's data model crosses, including what
//! needs `deserialize_any` (`untagged`, internally and adjacently tagged enums, `flatten`,
//! `serde_json::Value`). Structs are written as maps keyed by field name (so that
//! `skip_serializing_if` and `default` fields work), and both ends say the format is
//! human-readable, as serde's own buffered content does, so that a type with a readable and a
//! compact form writes the one it will be read back in: `aws_lambda_events`' API Gateway
//! requests do not round trip otherwise.

use std::io;

use rmp_serde::{decode, encode};
use serde::de::{DeserializeOwned, DeserializeSeed, IgnoredAny};
use serde::{Deserialize, Serialize};

use super::de::{self, Limits, MAX_DEPTH};
use super::{ser, CodecError};

/// Appends the encoding of `value` to `out`. On error, `out` may hold a partial encoding.
#[inline]
pub(super) fn encode_into<T: Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    let mut serializer = rmp_serde::Serializer::new(out)
        .with_struct_map()
        .with_human_readable();
    ser::Adapter(value)
        .serialize(&mut serializer)
        .map_err(|err| CodecError::new(encode_message(err)))
}

/// Decodes a `T` that must fill `bytes` exactly.
#[inline]
pub(super) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let limits = Limits::new(bytes.len(), true);
    let mut deserializer = rmp_serde::Deserializer::from_read_ref(bytes).with_human_readable();
    let value = de::Seed::<T>::new(&limits)
        .deserialize(&mut deserializer)
        .map_err(|err| CodecError::new(decode_message(err)))?;
    // rmp-serde does not say where it stopped: what is left is whatever one more read finds.
    match IgnoredAny::deserialize(&mut deserializer) {
        Err(decode::Error::InvalidMarkerRead(err))
            if err.kind() == io::ErrorKind::UnexpectedEof =>
        {
            Ok(value)
        }
        _ => Err(CodecError::new("bytes left over after the value".into())),
    }
}

fn encode_message(err: encode::Error) -> String {
    match err {
        encode::Error::InvalidValueWrite(err) => format!("could not write the value: {err}"),
        encode::Error::UnknownLength => "a sequence or map did not say its length".into(),
        encode::Error::InvalidDataModel(what) => {
            format!("the value's `Serialize` impl broke serde's rules: {what}")
        }
        encode::Error::DepthLimitExceeded => "the value is nested too deeply to encode".into(),
        // serde's own messages (a `flatten` of something that is not a map, a skipped variant)
        // and those of `Serialize` impls: already in words.
        encode::Error::Syntax(message) => message,
    }
}

fn decode_message(err: decode::Error) -> String {
    match err {
        decode::Error::InvalidMarkerRead(err) | decode::Error::InvalidDataRead(err)
            if err.kind() == io::ErrorKind::UnexpectedEof =>
        {
            "the payload ends in the middle of a value".into()
        }
        decode::Error::InvalidMarkerRead(err) | decode::Error::InvalidDataRead(err) => {
            format!("could not read the payload: {err}")
        }
        decode::Error::TypeMismatch(marker) => format!(
            "the payload holds {} where the type expects another kind of value",
            describe(marker.to_u8())
        ),
        decode::Error::OutOfRange => "a number does not fit in its type".into(),
        decode::Error::LengthMismatch(len) => {
            format!("a sequence or map has a length its type does not take ({len})")
        }
        decode::Error::Utf8Error(err) => format!("a string is not valid UTF-8: {err}"),
        decode::Error::DepthLimitExceeded => {
            format!("values nested more than {MAX_DEPTH} levels deep")
        }
        // serde's own messages (`invalid type: string "a", expected u32`, `missing field `id``)
        // and the adapter's limits: already in words.
        decode::Error::Syntax(message) | decode::Error::Uncategorized(message) => message,
    }
}

/// What a msgpack value that starts with `marker` is, in serde's words.
fn describe(marker: u8) -> &'static str {
    match marker {
        0x00..=0x7f | 0xcc..=0xd3 | 0xe0..=0xff => "an integer",
        0x80..=0x8f | 0xde | 0xdf => "a map",
        0x90..=0x9f | 0xdc | 0xdd => "a sequence",
        0xa0..=0xbf | 0xd9..=0xdb => "a string",
        0xc0 => "nil (a unit or `None`)",
        0xc2 | 0xc3 => "a boolean",
        0xc4..=0xc6 => "bytes",
        0xc7..=0xc9 | 0xd4..=0xd8 => "a MessagePack extension",
        0xca | 0xcb => "a float",
        0xc1 => "the byte 0xc1, which MessagePack never uses",
    }
}
