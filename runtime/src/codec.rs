//! The one place that knows the serialization format (bincode 2 through serde), so that it can
//! be swapped without touching the rest of the runtime.

use std::fmt;

use serde::de::DeserializeOwned;
use serde::Serialize;

/// A value could not be encoded or decoded. The message is the codec's own.
#[derive(Debug)]
pub(crate) struct CodecError(String);

impl CodecError {
    pub(crate) fn new(message: String) -> Self {
        CodecError(message)
    }
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn config() -> impl bincode::config::Config {
    bincode::config::standard()
}

/// Appends the encoding of `value` to `out`. On error, `out` may hold a partial encoding.
pub(crate) fn encode_into<T: Serialize + ?Sized>(
    value: &T,
    out: &mut Vec<u8>,
) -> Result<(), CodecError> {
    bincode::serde::encode_into_std_write(value, out, config())
        .map(drop)
        .map_err(|err| CodecError(err.to_string()))
}

/// Decodes a `T` that must fill `bytes` exactly.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (value, read) = bincode::serde::decode_from_slice(bytes, config())
        .map_err(|err| CodecError(err.to_string()))?;
    if read == bytes.len() {
        Ok(value)
    } else {
        Err(CodecError(format!(
            "{} bytes left over after the value",
            bytes.len() - read
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_a_value() {
        let mut bytes = Vec::new();
        encode_into(&(7_u64, String::from("seven")), &mut bytes).unwrap();
        assert_eq!(
            decode::<(u64, String)>(&bytes).unwrap(),
            (7, "seven".into())
        );
    }

    #[test]
    fn rejects_trailing_bytes() {
        let mut bytes = Vec::new();
        encode_into(&7_u64, &mut bytes).unwrap();
        bytes.push(0);
        let err = decode::<u64>(&bytes).unwrap_err();
        assert_eq!(err.to_string(), "1 bytes left over after the value");
    }

    #[test]
    fn rejects_truncated_input() {
        let mut bytes = Vec::new();
        encode_into(&String::from("seven"), &mut bytes).unwrap();
        bytes.pop();
        assert!(decode::<String>(&bytes).is_err());
    }
}
