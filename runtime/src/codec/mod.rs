//! The one place that knows the serialization formats, on both sides of the fork: the caller
//! encodes arguments and decodes results, a worker decodes arguments and encodes results.
//!
//! The default, [`Codec::MessagePack`] ([`msgpack`]), is self-describing and carries the whole
//! serde data model, with one exception that it shares with JSON: `Some(None)` reads back as
//! `None`. [`Codec::Bincode`] (cargo feature `bincode`) is there for the functions that choose
//! it. Values go through the adapters in [`ser`] and [`de`], which move byte vectors in one copy
//! instead of one serde call per byte, and bound what a payload may make the decoder allocate:
//! a payload is untrusted input, and a bad one is an error, never an abort.

#[cfg(feature = "bincode")]
mod bincode;
mod de;
mod msgpack;
mod ser;
#[cfg(test)]
mod tests;

use std::fmt;

use serde::de::DeserializeOwned;
use serde::Serialize;

/// A value could not be encoded or decoded. The message says why, in words; [`Codec`] adds
/// which type and which codec, so that it reads "`my::Event` in bincode: ...".
#[derive(Debug)]
pub(crate) struct CodecError(String);

impl CodecError {
    pub(crate) fn new(message: String) -> Self {
        CodecError(message)
    }

    /// The message, prefixed with the type `T` and the codec it went through.
    fn of<T: ?Sized>(self, codec: Codec) -> Self {
        let ty = std::any::type_name::<T>();
        CodecError(format!("`{ty}` in {}: {}", codec.name(), self.0))
    }
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A function's codec, as `#[lambda_parallel(codec = ...)]` names it in the code it generates
/// (through `__private`). Opaque: [`Codec`] itself stays private to the crate.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub struct CodecChoice(pub(crate) Codec);

impl CodecChoice {
    /// The default: `MessagePack`.
    pub const MSGPACK: CodecChoice = CodecChoice(Codec::MessagePack);
    /// bincode 2 (cargo feature `bincode`).
    #[cfg(feature = "bincode")]
    pub const BINCODE: CodecChoice = CodecChoice(Codec::Bincode);
}

/// A serialization format that values cross in. Each has a stable one-byte [`id`](Codec::id),
/// so that a frame can say which one encoded it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Codec {
    /// `MessagePack` through `rmp-serde`, structs as maps keyed by field name: the default.
    MessagePack,
    /// bincode 2 through serde, for `#[lambda_parallel(codec = bincode)]`.
    #[cfg(feature = "bincode")]
    Bincode,
}

impl Codec {
    /// The codec of a function that does not choose one.
    pub(crate) const DEFAULT: Codec = Codec::MessagePack;

    /// The byte that stands for this codec in a frame. Never reused for another format.
    pub(crate) const fn id(self) -> u8 {
        match self {
            Codec::MessagePack => 1,
            #[cfg(feature = "bincode")]
            Codec::Bincode => 2,
        }
    }

    /// The codec that `id` stands for, if this build has it.
    pub(crate) const fn from_id(id: u8) -> Option<Codec> {
        match id {
            1 => Some(Codec::MessagePack),
            #[cfg(feature = "bincode")]
            2 => Some(Codec::Bincode),
            _ => None,
        }
    }

    /// The codec's name, as `#[lambda_parallel(codec = ...)]` spells it.
    pub(crate) const fn name(self) -> &'static str {
        match self {
            Codec::MessagePack => "msgpack",
            #[cfg(feature = "bincode")]
            Codec::Bincode => "bincode",
        }
    }

    /// Appends the encoding of `value` to `out`. On error, `out` may hold a partial encoding,
    /// and the message names `T` and the codec.
    #[inline]
    pub(crate) fn encode_into<T: Serialize + ?Sized>(
        self,
        value: &T,
        out: &mut Vec<u8>,
    ) -> Result<(), CodecError> {
        match self {
            Codec::MessagePack => msgpack::encode_into(value, out),
            #[cfg(feature = "bincode")]
            Codec::Bincode => bincode::encode_into(value, out),
        }
        .map_err(|err| err.of::<T>(self))
    }

    /// Decodes a `T` that must fill `bytes` exactly. Nothing is allocated for a length that
    /// `bytes` does not hold (see [`de`]). On error, the message names `T` and the codec.
    #[inline]
    pub(crate) fn decode<T: DeserializeOwned>(self, bytes: &[u8]) -> Result<T, CodecError> {
        match self {
            Codec::MessagePack => msgpack::decode(bytes),
            #[cfg(feature = "bincode")]
            Codec::Bincode => bincode::decode(bytes),
        }
        .map_err(|err| err.of::<T>(self))
    }
}
