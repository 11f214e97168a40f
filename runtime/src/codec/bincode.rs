//! bincode 2, for the functions that choose it with `#[lambda_parallel(codec = bincode)]`
//! (cargo feature `bincode`), on both sides of the fork.
//!
//! bincode is not self-describing: it writes no field names or types, so it cannot carry what
//! needs `deserialize_any` (`untagged`, internally tagged enums, `flatten`, `serde_json::Value`)
//! nor `skip_serializing_if`. Byte vectors go through the same adapters as the default codec;
//! both forms are the length then the raw bytes, so the bytes are exactly plain bincode's.

use super::de::{Limits, Seed};
use super::{ser, CodecError};

use bincode::error::{DecodeError, EncodeError};
use bincode::serde::{DecodeError as SerdeDecode, EncodeError as SerdeEncode};
use serde::de::DeserializeOwned;
use serde::Serialize;

fn config() -> impl bincode::config::Config {
    bincode::config::standard()
}

/// Appends the encoding of `value` to `out`. On error, `out` may hold a partial encoding.
pub(super) fn encode_into<T: Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    bincode::serde::encode_into_std_write(ser::Adapter(value), out, config())
        .map(drop)
        .map_err(|err| CodecError::new(encode_message(err)))
}

/// Decodes a `T` that must fill `bytes` exactly.
pub(super) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let limits = Limits::new(bytes.len(), false);
    let (value, read) = bincode::serde::seed_decode_from_slice(Seed::new(&limits), bytes, config())
        .map_err(|err| CodecError::new(decode_message(err)))?;
    if read == bytes.len() {
        Ok(value)
    } else {
        Err(CodecError::new(format!(
            "{} bytes left over after the value",
            bytes.len() - read
        )))
    }
}

/// What bincode cannot carry, and what to do about it.
const NOT_SELF_DESCRIBING: &str = "bincode cannot carry a type that needs `deserialize_any` \
     (`untagged` or internally tagged enums, `flatten`, `serde_json::Value`) or skips fields: \
     use the default codec for this function";

// bincode's own `Display` is its `Debug`: the common cases in words, the rest as it says them.
fn encode_message(err: EncodeError) -> String {
    match err {
        EncodeError::Serde(SerdeEncode::SequenceMustHaveLength) => format!(
            "a sequence or map did not say its length before it started; {NOT_SELF_DESCRIBING}"
        ),
        EncodeError::OtherString(message) => message,
        err => format!("bincode could not encode the value: {err}"),
    }
}

/// The likeliest cause of a payload that ends early, or of a variant that does not exist.
const SKIPPED_FIELD: &str = "with bincode, a field that `skip_serializing_if` (or `skip`) left \
     out shifts everything after it; use the default codec (MessagePack) for such a type";

fn decode_message(err: DecodeError) -> String {
    match err {
        // Both are also what a field skipped on one side (`skip_serializing_if`) looks like to
        // bincode, whose values say neither their length nor their names.
        DecodeError::UnexpectedEnd { additional } => format!(
            "the payload ends in the middle of a value ({additional} more bytes needed); \
             {SKIPPED_FIELD}"
        ),
        DecodeError::UnexpectedVariant {
            type_name, found, ..
        } => format!(
            "the payload holds variant {found} of `{type_name}`, which has no such variant; \
             {SKIPPED_FIELD}"
        ),
        DecodeError::Utf8 { inner } => format!("a string is not valid UTF-8: {inner}"),
        DecodeError::InvalidBooleanValue(byte) => format!("{byte} is not a boolean"),
        DecodeError::Serde(
            SerdeDecode::AnyNotSupported
            | SerdeDecode::IdentifierNotSupported
            | SerdeDecode::IgnoredAnyNotSupported,
        ) => NOT_SELF_DESCRIBING.into(),
        DecodeError::OtherString(message) => message,
        err => format!("bincode could not decode the value: {err}"),
    }
}
