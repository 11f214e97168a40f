//! The one place that knows the serialization format (bincode 2 through serde), so that it can
//! be swapped without touching the rest of the runtime.
//!
//! Values go through the adapters in [`ser`] and [`de`], which move byte vectors in one copy
//! instead of one serde call per byte; the bytes on the wire are exactly plain bincode's.

mod de;
mod ser;

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
    bincode::serde::encode_into_std_write(ser::Adapter(value), out, config())
        .map(drop)
        .map_err(|err| CodecError(err.to_string()))
}

/// Decodes a `T` that must fill `bytes` exactly.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (value, read) = bincode::serde::seed_decode_from_slice(de::Seed::new(), bytes, config())
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

    use std::collections::{BTreeMap, VecDeque};
    use std::fmt::Debug;

    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Inner {
        id: u32,
        data: Vec<u8>,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Outer {
        name: String,
        payload: Vec<u8>,
        inner: Inner,
        boxed: Box<[u8]>,
        words: Vec<u16>,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Message {
        Empty,
        Bytes(Vec<u8>),
        Pair(u8, Vec<u8>),
        Named { tag: String, body: Vec<u8> },
    }

    fn plain<T: Serialize>(value: &T) -> Vec<u8> {
        bincode::serde::encode_to_vec(value, config()).unwrap()
    }

    fn ours<T: Serialize>(value: &T) -> Vec<u8> {
        let mut bytes = Vec::new();
        encode_into(value, &mut bytes).unwrap();
        bytes
    }

    /// Same bytes as plain bincode, and every pairing of the two codecs round trips.
    fn check<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T) {
        let encoded = ours(value);
        assert_eq!(encoded, plain(value), "encoding differs from plain bincode");
        assert_eq!(&decode::<T>(&encoded).unwrap(), value);
        assert_eq!(&decode::<T>(&plain(value)).unwrap(), value);
        let (back, read) = bincode::serde::decode_from_slice::<T, _>(&encoded, config()).unwrap();
        assert_eq!((&back, read), (value, encoded.len()));
    }

    fn sample() -> Vec<u8> {
        (0..=255).cycle().take(1000).collect()
    }

    #[test]
    fn byte_vectors_match_plain_bincode() {
        check(&sample());
        check(&Vec::<u8>::new());
        check(&(0..=255).cycle().take(1 << 20).collect::<Vec<u8>>());
        check(&Box::<[u8]>::from(sample()));
    }

    #[test]
    fn nested_byte_vectors_match_plain_bincode() {
        check(&Outer {
            name: "outer".into(),
            payload: sample(),
            inner: Inner {
                id: 7,
                data: vec![1, 2, 3],
            },
            boxed: vec![9; 300].into(),
            words: vec![1, 300, 65535],
        });
        check(&Some(sample()));
        check(&None::<Vec<u8>>);
        check(&vec![sample(), Vec::new(), vec![5; 200]]);
        check(&(7_u32, sample(), String::from("seven")));
        check(&BTreeMap::from([
            (String::from("a"), sample()),
            (String::from("b"), Vec::new()),
        ]));
        for message in [
            Message::Empty,
            Message::Bytes(sample()),
            Message::Pair(4, vec![4; 4]),
            Message::Named {
                tag: "t".into(),
                body: sample(),
            },
        ] {
            check(&message);
        }
    }

    #[test]
    fn other_sequences_match_plain_bincode() {
        check(&vec![1_u16, 256, 65535]);
        check(&vec![String::from("x"), String::new()]);
        check(&VecDeque::from(sample()));
        check(&vec![true, false]);
        check(&[1_u8, 2, 3]);
        let slice: &[u8] = &[1, 2, 3];
        assert_eq!(ours(&slice), plain(&slice));
    }

    #[test]
    fn serdes_byte_vector_visitor_is_recognised() {
        assert!(de::byte_vec_visitor().is_some());
    }

    /// Bytes sent as a sequence of `u16`, read back by a visitor that also produces a `Vec<u8>`:
    /// only serde's own `Vec<u8>` visitor may take the fast path.
    #[derive(Debug, PartialEq)]
    struct Widened(Vec<u8>);

    impl Serialize for Widened {
        fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.collect_seq(self.0.iter().map(|&b| u16::from(b) * 257))
        }
    }

    impl<'de> Deserialize<'de> for Widened {
        fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            struct Narrowing;
            impl<'de> serde::de::Visitor<'de> for Narrowing {
                type Value = Vec<u8>;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str("a sequence of u16")
                }
                fn visit_seq<A: serde::de::SeqAccess<'de>>(
                    self,
                    mut seq: A,
                ) -> Result<Vec<u8>, A::Error> {
                    let mut bytes = Vec::new();
                    while let Some(word) = seq.next_element::<u16>()? {
                        bytes.push(u8::try_from(word / 257).map_err(serde::de::Error::custom)?);
                    }
                    Ok(bytes)
                }
            }
            deserializer.deserialize_seq(Narrowing).map(Widened)
        }
    }

    #[test]
    fn other_visitors_producing_byte_vectors_read_a_sequence() {
        check(&Widened(vec![0, 1, 200, 255]));
        check(&vec![Widened(sample()), Widened(Vec::new())]);
    }

    #[test]
    fn byte_vector_with_corrupt_length_is_an_error() {
        // Length u64::MAX, then 3 bytes: must fail without trying to allocate.
        let mut bytes = vec![253];
        bytes.extend_from_slice(&u64::MAX.to_le_bytes());
        bytes.extend_from_slice(&[1, 2, 3]);
        assert!(decode::<Vec<u8>>(&bytes).is_err());
    }

    #[test]
    fn truncated_byte_vector_is_an_error() {
        let mut bytes = ours(&sample());
        bytes.pop();
        assert!(decode::<Vec<u8>>(&bytes).is_err());
    }

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
