//! The codecs' unit tests: round trips, the byte fast path, and forged payloads.

use super::*;

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt::Debug;

use serde::Deserialize;

/// Appends the encoding of `value` in the default codec to `out`. An error is the codec's own
/// words, without the type that [`Codec`] puts before them.
fn encode_into<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) -> Result<(), CodecError> {
    msgpack::encode_into(value, out)
}

/// Decodes a `T` in the default codec that must fill `bytes` exactly, as [`encode_into`].
fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    msgpack::decode(bytes)
}

#[test]
fn a_codec_error_names_the_type_and_the_codec() {
    let err = Codec::DEFAULT.decode::<u64>(&[0xc1]).unwrap_err();
    assert!(
        err.to_string()
            .starts_with("`u64` in msgpack: the payload holds"),
        "{err}"
    );
    let name: std::ffi::OsString = std::os::unix::ffi::OsStringExt::from_vec(vec![0xff]);
    let path = std::path::PathBuf::from(name);
    let err = Codec::DEFAULT
        .encode_into(&path, &mut Vec::new())
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "`std::path::PathBuf` in msgpack: path contains invalid UTF-8 characters"
    );
}

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

fn ours<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut bytes = Vec::new();
    encode_into(value, &mut bytes).unwrap();
    bytes
}

fn plain<T: Serialize>(value: &T) -> Vec<u8> {
    rmp_serde::to_vec_named(value).unwrap()
}

/// Round trips through the default codec, and plain `rmp-serde` reads what it writes and the
/// other way round (it writes byte vectors as sequences of integers).
fn check<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T) {
    let encoded = ours(value);
    assert_eq!(&decode::<T>(&encoded).unwrap(), value);
    assert_eq!(&decode::<T>(&plain(value)).unwrap(), value);
    let back: T = rmp_serde::from_slice(&encoded).unwrap();
    assert_eq!(&back, value);
    #[cfg(feature = "bincode")]
    check_bincode(value);
}

/// Round trips through bincode, whose bytes are exactly plain bincode's.
#[cfg(feature = "bincode")]
fn check_bincode<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T) {
    let config = ::bincode::config::standard();
    let mut encoded = Vec::new();
    Codec::Bincode.encode_into(value, &mut encoded).unwrap();
    let plain = ::bincode::serde::encode_to_vec(value, config).unwrap();
    assert_eq!(encoded, plain, "encoding differs from plain bincode");
    assert_eq!(&Codec::Bincode.decode::<T>(&encoded).unwrap(), value);
}

fn sample() -> Vec<u8> {
    (0..=255).cycle().take(1000).collect()
}

#[test]
fn byte_vectors_are_one_bin() {
    let mib: Vec<u8> = (0..=255).cycle().take(1 << 20).collect();
    // bin 32: the marker, the length, then the bytes as they are.
    let encoded = ours(&mib);
    assert_eq!(encoded[0], 0xc6);
    assert_eq!(encoded.len(), 5 + mib.len());
    assert_eq!(&encoded[5..], &mib[..]);
    assert_eq!(ours(&sample())[0], 0xc5);
    check(&mib);
    check(&sample());
    check(&Vec::<u8>::new());
    check(&Box::<[u8]>::from(sample()));
    let slice: &[u8] = &[1, 2, 3];
    assert_eq!(ours(&slice), [0xc4, 3, 1, 2, 3]);
}

#[test]
fn nested_byte_vectors_round_trip() {
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
fn other_sequences_round_trip() {
    check(&vec![1_u16, 256, 65535]);
    check(&vec![String::from("x"), String::new()]);
    check(&VecDeque::from(sample()));
    check(&vec![true, false]);
    check(&[1_u8, 2, 3]);
}

#[test]
fn a_sequence_of_small_integers_decodes_into_a_byte_vector() {
    // What another msgpack writer may send for a `Vec<u8>`: an array of integers.
    let array = rmp_serde::to_vec(&vec![1_u16, 2, 255]).unwrap();
    assert_eq!(array[0], 0x93);
    assert_eq!(decode::<Vec<u8>>(&array).unwrap(), [1, 2, 255]);
    let too_big = rmp_serde::to_vec(&vec![1_u16, 256]).unwrap();
    assert!(decode::<Vec<u8>>(&too_big).is_err());
}

#[test]
fn serdes_visitors_are_recognised() {
    assert!(de::byte_vec_visitor().is_some());
    assert!(de::content_visitor().is_some());
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct WithFlatten {
    serial: u32,
    #[serde(flatten)]
    inner: Inner,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
enum Untagged {
    Number(u64),
    Bytes { bytes: Vec<u8> },
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
enum Internal {
    Data { data: Vec<u8> },
    Nothing,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", content = "c")]
enum Adjacent {
    Data(Vec<u8>),
    Nothing,
}

#[test]
fn byte_vectors_round_trip_where_serde_buffers_content() {
    check_self_describing(&WithFlatten {
        serial: 3,
        inner: Inner {
            id: 4,
            data: sample(),
        },
    });
    check_self_describing(&Untagged::Bytes { bytes: sample() });
    check_self_describing(&Untagged::Number(5));
    check_self_describing(&Internal::Data { data: sample() });
    check_self_describing(&Internal::Nothing);
    check_self_describing(&Adjacent::Data(sample()));
    check_self_describing(&Adjacent::Nothing);
}

/// A round trip through the default codec only: bincode cannot carry these.
fn check_self_describing<T: Serialize + DeserializeOwned + PartialEq + Debug>(value: &T) {
    assert_eq!(&decode::<T>(&ours(value)).unwrap(), value);
    assert_eq!(&decode::<T>(&plain(value)).unwrap(), value);
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Sparse {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    maybe: Option<String>,
    wide: u128,
    negative: i128,
    keys: BTreeMap<u32, String>,
}

#[test]
fn the_data_model_round_trips() {
    for maybe in [None, Some(String::from("here"))] {
        check_self_describing(&Sparse {
            maybe,
            wide: u128::MAX,
            negative: i128::MIN,
            keys: BTreeMap::from([(1, "one".into()), (u32::MAX, String::new())]),
        });
    }
    check(&(u128::MAX, i128::MIN, 'λ', -1.5_f64, f32::MAX, ()));
    check(&HashMap::from([((1_u8, false), vec![Some(2_i8)])]));
}

/// serde's buffered content has no 128-bit integers: documented in the README as the one gap
/// besides `Some(None)`.
#[test]
fn wide_integers_inside_untagged_enums_do_not_decode() {
    #[derive(Debug, Serialize, Deserialize)]
    #[serde(untagged)]
    enum Wide {
        Number(u128),
    }
    assert!(decode::<Wide>(&ours(&Wide::Number(1))).is_err());
    assert_eq!(
        decode::<Option<Option<u8>>>(&ours(&Some(None::<u8>))).unwrap(),
        None
    );
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
fn round_trips_a_value() {
    assert_eq!(
        decode::<(u64, String)>(&ours(&(7_u64, String::from("seven")))).unwrap(),
        (7, "seven".into())
    );
}

#[test]
fn rejects_trailing_bytes() {
    let mut bytes = ours(&7_u64);
    bytes.push(0);
    let err = decode::<u64>(&bytes).unwrap_err();
    assert_eq!(err.to_string(), "bytes left over after the value");
    // A partial value after the value is left over too, not a truncated value.
    let mut bytes = ours(&7_u64);
    bytes.push(0xcd);
    assert_eq!(
        decode::<u64>(&bytes).unwrap_err().to_string(),
        "bytes left over after the value"
    );
}

#[test]
fn rejects_truncated_input() {
    for value in [String::from("seven"), "x".repeat(300)] {
        let mut bytes = ours(&value);
        bytes.pop();
        let err = decode::<String>(&bytes).unwrap_err();
        assert_eq!(err.to_string(), "the payload ends in the middle of a value");
    }
    let mut bytes = ours(&sample());
    bytes.pop();
    assert!(decode::<Vec<u8>>(&bytes).is_err());
    assert!(decode::<u64>(&[]).is_err());
}

#[test]
fn errors_are_in_words() {
    let err = decode::<u64>(&ours("seven")).unwrap_err().to_string();
    assert_eq!(err, "invalid type: string \"seven\", expected u64");
    let err = decode::<Inner>(&ours(&BTreeMap::from([("id", 1)]))).unwrap_err();
    assert_eq!(err.to_string(), "missing field `data`");
    let err = decode::<u8>(&ours(&300_u16)).unwrap_err();
    assert_eq!(err.to_string(), "invalid value: integer `300`, expected u8");
    let err = decode::<(u8, u8)>(&ours(&(1, 2, 3))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "a sequence or map has a length its type does not take (2)"
    );
    let err = decode::<String>(&[0xc1]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "the payload holds the byte 0xc1, which MessagePack never uses where the type expects \
         another kind of value"
    );
}

/// A msgpack header: `marker`, then `len` as a big-endian `u32`.
fn header(marker: u8, len: u32) -> Vec<u8> {
    let mut bytes = vec![marker];
    bytes.extend_from_slice(&len.to_be_bytes());
    bytes
}

#[test]
fn forged_lengths_are_errors_without_allocating() {
    // str 32, bin 32, array 32 and map 32 of u32::MAX, each followed by three bytes.
    for marker in [0xdb, 0xc6, 0xdd, 0xdf] {
        let mut forged = header(marker, u32::MAX);
        forged.extend_from_slice(&[1, 2, 3]);
        assert!(decode::<String>(&forged).is_err());
        assert!(decode::<Vec<u8>>(&forged).is_err());
        assert!(decode::<Vec<u64>>(&forged).is_err());
        assert!(decode::<Vec<String>>(&forged).is_err());
        assert!(decode::<VecDeque<u8>>(&forged).is_err());
        assert!(decode::<HashMap<u8, u8>>(&forged).is_err());
        assert!(decode::<BTreeMap<String, Vec<u8>>>(&forged).is_err());
        assert!(decode::<Outer>(&forged).is_err());
        assert!(decode::<Untagged>(&forged).is_err());
        assert!(decode::<Internal>(&forged).is_err());
        assert!(decode::<WithFlatten>(&forged).is_err());
    }
}

/// Each level holds a sequence of levels.
#[derive(Debug, Deserialize)]
struct Nest(#[allow(dead_code, reason = "only decoded")] Vec<Nest>);

/// Counts the elements that length hints promise, to see that the budget holds.
#[test]
fn length_hints_add_up_to_at_most_the_payload() {
    // Every level claims u32::MAX elements: without the budget, serde would reserve 1 MiB a level.
    let mut forged = Vec::new();
    for _ in 0..200 {
        forged.extend(header(0xdd, u32::MAX));
    }
    let limits = de::Limits::new(forged.len(), true);
    let mut deserializer = rmp_serde::Deserializer::from_read_ref(&forged);
    let result =
        serde::de::DeserializeSeed::deserialize(de::Seed::<Nest>::new(&limits), &mut deserializer);
    assert!(result.is_err());
    assert_eq!(limits.left(), 0, "the whole budget may be spent, no more");
}

#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    // In a thread with a small stack, so that an unbounded recursion would overflow it.
    let result = std::thread::Builder::new()
        .stack_size(1 << 20)
        .spawn(|| {
            let forged = vec![0x91; 1 << 20];
            decode::<Nest>(&forged).map(drop).map_err(|e| e.to_string())
        })
        .unwrap()
        .join()
        .unwrap();
    assert_eq!(
        result.unwrap_err(),
        format!("values nested more than {} levels deep", de::MAX_DEPTH)
    );
    let nested = (0..de::MAX_DEPTH - 1).fold(Nest(Vec::new()), |inner, _| Nest(vec![inner]));
    assert!(decode::<Nest>(&ours(&NestOut(&nested))).is_ok());
}

/// Writes a [`Nest`] back.
struct NestOut<'a>(&'a Nest);

impl Serialize for NestOut<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0 .0.iter().map(NestOut))
    }
}

/// A small deterministic PRNG (xorshift64*), so that a failure can be replayed.
struct Prng(u64);

impl Prng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next().to_le_bytes()[0]).collect()
    }
}

#[test]
fn random_and_mutated_payloads_do_not_panic() {
    let mut prng = Prng(0x9e37_79b9_7f4a_7c15);
    let valid = ours(&Outer {
        name: "outer".into(),
        payload: sample(),
        inner: Inner {
            id: 7,
            data: vec![1, 2, 3],
        },
        boxed: vec![9; 30].into(),
        words: vec![1, 300, 65535],
    });
    for round in 0..20_000 {
        let bytes = if round % 2 == 0 {
            let len = usize::try_from(prng.next() % 64).unwrap();
            prng.bytes(len)
        } else {
            let mut bytes = valid.clone();
            for _ in 0..=prng.next() % 4 {
                let at = usize::try_from(prng.next()).unwrap() % bytes.len();
                bytes[at] = prng.bytes(1)[0];
            }
            bytes
        };
        let _ = decode::<Outer>(&bytes);
        let _ = decode::<Vec<u8>>(&bytes);
        let _ = decode::<String>(&bytes);
        let _ = decode::<Untagged>(&bytes);
        let _ = decode::<Internal>(&bytes);
        let _ = decode::<WithFlatten>(&bytes);
        let _ = decode::<BTreeMap<String, Vec<u64>>>(&bytes);
        let _ = decode::<Nest>(&bytes);
        #[cfg(feature = "bincode")]
        {
            let _ = Codec::Bincode.decode::<Outer>(&bytes);
            let _ = Codec::Bincode.decode::<Vec<String>>(&bytes);
        }
    }
}

#[test]
fn codec_ids_are_stable() {
    assert_eq!(Codec::DEFAULT, Codec::MessagePack);
    assert_eq!(Codec::MessagePack.id(), 1);
    assert_eq!(Codec::from_id(1), Some(Codec::MessagePack));
    assert_eq!(Codec::MessagePack.name(), "msgpack");
    assert_eq!(Codec::from_id(0), None);
    #[cfg(feature = "bincode")]
    {
        assert_eq!(Codec::Bincode.id(), 2);
        assert_eq!(Codec::from_id(2), Some(Codec::Bincode));
    }
    #[cfg(not(feature = "bincode"))]
    assert_eq!(Codec::from_id(2), None);
}

#[cfg(feature = "bincode")]
mod bincode {
    use super::*;

    #[test]
    fn a_forged_string_length_is_an_error_not_an_abort() {
        // The length 2^58 as a varint (marker 253, then a little-endian u64), then three bytes.
        let mut forged = vec![253];
        forged.extend_from_slice(&(1_u64 << 58).to_le_bytes());
        forged.extend_from_slice(b"abc");
        let err = Codec::Bincode.decode::<String>(&forged).unwrap_err();
        let want = "`alloc::string::String` in bincode: the payload ends";
        assert!(err.to_string().starts_with(want), "{err}");
        assert!(Codec::Bincode.decode::<Vec<u8>>(&forged).is_err());
        assert!(Codec::Bincode.decode::<Vec<u64>>(&forged).is_err());
        assert!(Codec::Bincode.decode::<Inner>(&[7, 253]).is_err());
    }

    #[test]
    fn what_bincode_cannot_carry_says_so() {
        let bytes = ours(&Untagged::Number(1));
        let err = Codec::Bincode.decode::<Untagged>(&bytes).unwrap_err();
        assert!(err.to_string().contains("use the default codec"), "{err}");
    }

    #[test]
    fn rejects_trailing_bytes() {
        let mut bytes = Vec::new();
        Codec::Bincode.encode_into(&7_u64, &mut bytes).unwrap();
        bytes.push(0);
        let err = Codec::Bincode.decode::<u64>(&bytes).unwrap_err();
        assert_eq!(
            err.to_string(),
            "`u64` in bincode: 1 bytes left over after the value"
        );
    }
}
