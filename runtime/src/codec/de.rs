//! The deserializing half of the byte fast path, and the bounds on what a payload may make the
//! decoder allocate. Both sides of the fork run it: the caller on results, a worker on arguments.
//!
//! serde deserializes `Vec<u8>` with `deserialize_seq`, one element at a time. [`Seed`] wraps the
//! codec's deserializer so that wherever serde's own `Vec<u8>` visitor asks for a sequence, at any
//! depth, the bytes are read at once with `deserialize_bytes`; a genuine sequence of small
//! integers is still accepted there.
//!
//! The payload comes from another process and is checked as untrusted input ([`Limits`]): the
//! length hints that sequences and maps give their visitors add up to at most one element per
//! payload byte, values may nest at most [`MAX_DEPTH`] deep (deeper recursion would overflow the
//! stack, which aborts), and owned strings and byte buffers are read through the borrowed forms,
//! which check a length against the bytes that are left before anything is allocated.

use std::any::TypeId;
use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::mem::ManuallyDrop;
use std::sync::OnceLock;

use serde::de::value::SeqDeserializer;
use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};
use serde::Deserialize;

/// How deep values may nest: sequences, maps, enums and options each count one level (a type
/// can only recurse through one of them and still have values). 128 is `serde_json`'s default
/// limit. A level takes about 5 KiB of stack in a debug build and 0.5 KiB in a release build, so
/// the deepest value needs less than 1 MiB of the decoding thread's stack.
pub(super) const MAX_DEPTH: u32 = 128;

/// What one decode may still reserve, and how deep it is.
pub(super) struct Limits {
    /// Elements that length hints may still promise, in total. Every element of a sequence and
    /// every entry of a map takes at least one byte in the self-describing format, so a valid
    /// payload never runs out: only a forged length is cut down.
    budget: Cell<usize>,
    depth: Cell<u32>,
    /// Whether the format says what each value is (`deserialize_any`). Then numbers and booleans
    /// are read with `deserialize_any`, so that a mismatch is reported by the type's own
    /// visitor, which says what it expected (`invalid type: string "a", expected u64`).
    self_describing: bool,
}

impl Limits {
    /// The limits for decoding a payload of `len` bytes.
    pub(super) fn new(len: usize, self_describing: bool) -> Self {
        Limits {
            budget: Cell::new(len),
            depth: Cell::new(0),
            self_describing,
        }
    }

    /// What is left of the budget.
    #[cfg(test)]
    pub(super) fn left(&self) -> usize {
        self.budget.get()
    }

    /// A length hint, cut down to what is left of the budget, and charged to it.
    fn hint(&self, hint: Option<usize>) -> Option<usize> {
        let left = self.budget.get();
        let hint = hint?.min(left);
        self.budget.set(left - hint);
        Some(hint)
    }

    /// Runs `visit` one level deeper, or fails if that is deeper than [`MAX_DEPTH`].
    fn nested<T, E: de::Error>(&self, visit: impl FnOnce() -> Result<T, E>) -> Result<T, E> {
        let depth = self.depth.get();
        if depth >= MAX_DEPTH {
            return Err(E::custom(format_args!(
                "values nested more than {MAX_DEPTH} levels deep"
            )));
        }
        self.depth.set(depth + 1);
        let result = visit();
        self.depth.set(depth);
        result
    }
}

/// Deserializes a `T` with the byte fast path, within `limits`.
pub(super) struct Seed<'l, T> {
    limits: &'l Limits,
    marker: PhantomData<T>,
}

impl<'l, T> Seed<'l, T> {
    pub(super) fn new(limits: &'l Limits) -> Self {
        Seed {
            limits,
            marker: PhantomData,
        }
    }
}

impl<'de, T: Deserialize<'de>> DeserializeSeed<'de> for Seed<'_, T> {
    type Value = T;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<T, D::Error> {
        T::deserialize(DeAdapter {
            inner: deserializer,
            limits: self.limits,
        })
    }
}

/// A deserializer that forwards to `D`, keeping every nested value on the adapter.
struct DeAdapter<'l, D> {
    inner: D,
    limits: &'l Limits,
}

/// Wraps a visitor, an access or a seed so that what it hands on stays on the adapter.
struct Wrap<'l, T> {
    inner: T,
    limits: &'l Limits,
}

impl<'l, T> Wrap<'l, T> {
    fn new(inner: T, limits: &'l Limits) -> Self {
        Wrap { inner, limits }
    }
}

macro_rules! forward_deserialize {
    ($($method:ident($($arg:ident: $ty:ty),*) => $to:ident),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(
            self,
            $($arg: $ty,)*
            visitor: V,
        ) -> Result<V::Value, D::Error> {
            self.inner.$to($($arg,)* Wrap::new(visitor, self.limits))
        }
    )*};
}

macro_rules! deserialize_primitive {
    ($($method:ident),* $(,)?) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
            let visitor = Wrap::new(visitor, self.limits);
            if self.limits.self_describing {
                self.inner.deserialize_any(visitor)
            } else {
                self.inner.$method(visitor)
            }
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for DeAdapter<'_, D> {
    type Error = D::Error;

    deserialize_primitive!(
        deserialize_bool,
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64,
        deserialize_u8,
        deserialize_u16,
        deserialize_u32,
        deserialize_u64,
        deserialize_f32,
        deserialize_f64,
    );

    forward_deserialize!(
        deserialize_any() => deserialize_any,
        deserialize_i128() => deserialize_i128,
        deserialize_u128() => deserialize_u128,
        deserialize_char() => deserialize_char,
        deserialize_str() => deserialize_str,
        // bincode sizes an owned string or buffer from its length prefix before it reads a byte;
        // its borrowed forms check the length against the input first. A visitor that takes a
        // `String` or a `Vec<u8>` also takes a `&str` or a `&[u8]` (serde's defaults forward).
        deserialize_string() => deserialize_str,
        deserialize_bytes() => deserialize_bytes,
        deserialize_byte_buf() => deserialize_bytes,
        deserialize_option() => deserialize_option,
        deserialize_unit() => deserialize_unit,
        deserialize_unit_struct(name: &'static str) => deserialize_unit_struct,
        deserialize_newtype_struct(name: &'static str) => deserialize_newtype_struct,
        deserialize_tuple(len: usize) => deserialize_tuple,
        deserialize_tuple_struct(name: &'static str, len: usize) => deserialize_tuple_struct,
        deserialize_map() => deserialize_map,
        deserialize_struct(name: &'static str, fields: &'static [&'static str])
            => deserialize_struct,
        deserialize_enum(name: &'static str, variants: &'static [&'static str])
            => deserialize_enum,
        deserialize_identifier() => deserialize_identifier,
        deserialize_ignored_any() => deserialize_ignored_any,
    );

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        if typeid::of::<V::Value>() == TypeId::of::<Vec<u8>>()
            && Some(typeid::of::<V>()) == probed().byte_vec
        {
            let visitor = ByteVecVisitor(self.limits);
            let bytes = ManuallyDrop::new(self.inner.deserialize_bytes(visitor)?);
            // SAFETY: the type ids are equal, so `V::Value` is `Vec<u8>` (which has no lifetimes
            // to differ in). The original is never dropped, so the buffer has one owner.
            return Ok(unsafe { std::ptr::read(std::ptr::from_ref(&*bytes).cast::<V::Value>()) });
        }
        self.inner.deserialize_seq(Wrap::new(visitor, self.limits))
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}

/// The type ids of serde's own visitors that the adapter treats specially, found by asking
/// serde's `Deserialize` impls what they pass to a [`Probe`].
#[derive(Default)]
struct Probed {
    /// The visitor that `Vec<u8>` passes to `deserialize_seq`: only that one is given the fast
    /// path, since another visitor producing a `Vec<u8>` may read a sequence of something else.
    byte_vec: Option<TypeId>,
    /// The visitor with which serde buffers a value whose type it does not know yet (`untagged`
    /// and internally tagged enums, `flatten`). It keeps bytes as bytes, which serde's `Vec<u8>`
    /// then refuses, so bytes are handed to it as the sequence of integers they stand for.
    content: Option<TypeId>,
}

fn probed() -> &'static Probed {
    static PROBED: OnceLock<Probed> = OnceLock::new();
    PROBED.get_or_init(|| {
        /// Deserialized only by the probe, to see how serde buffers an untagged enum.
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Buffered {
            #[allow(dead_code, reason = "only its deserialization is looked at")]
            Unit(()),
        }
        let mut probed = Probed::default();
        // The probes always fail: all they do is record the visitor's type.
        let _ = Vec::<u8>::deserialize(Probe(&mut probed));
        let _ = Buffered::deserialize(Probe(&mut probed));
        probed
    })
}

/// The type id of the visitor that serde's `Vec<u8>` passes to `deserialize_seq`, if it does.
#[cfg(test)]
pub(super) fn byte_vec_visitor() -> Option<TypeId> {
    probed().byte_vec
}

/// The type id of the visitor with which serde buffers untagged content, if it has one.
#[cfg(test)]
pub(super) fn content_visitor() -> Option<TypeId> {
    probed().content
}

/// A deserializer that records the visitors it is given, then fails.
struct Probe<'a>(&'a mut Probed);

#[derive(Debug)]
struct ProbeError;

impl fmt::Display for ProbeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("probe")
    }
}

impl std::error::Error for ProbeError {}

impl de::Error for ProbeError {
    fn custom<T: fmt::Display>(_: T) -> Self {
        ProbeError
    }
}

impl<'de> Deserializer<'de> for Probe<'_> {
    type Error = ProbeError;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, ProbeError> {
        self.0.content = Some(typeid::of::<V>());
        Err(ProbeError)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, _: V) -> Result<V::Value, ProbeError> {
        self.0.byte_vec = Some(typeid::of::<V>());
        Err(ProbeError)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct tuple tuple_struct map struct enum identifier
        ignored_any
    }
}

/// Takes the bytes however the deserializer offers them. Borrowed bytes were checked against
/// what is left of the input; a sequence is sized from a hint within the [`Limits`].
struct ByteVecVisitor<'l>(&'l Limits);

impl<'de> Visitor<'de> for ByteVecVisitor<'_> {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sequence of bytes")
    }

    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
        Ok(v.to_vec())
    }

    fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
        Ok(v)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
        let mut bytes = Vec::with_capacity(self.0.hint(seq.size_hint()).unwrap_or(0));
        while let Some(byte) = seq.next_element()? {
            bytes.push(byte);
        }
        Ok(bytes)
    }
}

macro_rules! forward_visit {
    ($($method:ident($ty:ty)),* $(,)?) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<V::Value, E> {
            self.inner.$method(v)
        }
    )*};
}

macro_rules! visit_bytes {
    ($($method:ident($ty:ty)),* $(,)?) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<V::Value, E> {
            if Some(typeid::of::<V>()) == probed().content {
                return self.inner.visit_seq(SeqDeserializer::new(v.iter().copied()));
            }
            self.inner.$method(v)
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Wrap<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    forward_visit!(
        visit_bool(bool),
        visit_i8(i8),
        visit_i16(i16),
        visit_i32(i32),
        visit_i64(i64),
        visit_i128(i128),
        visit_u8(u8),
        visit_u16(u16),
        visit_u32(u32),
        visit_u64(u64),
        visit_u128(u128),
        visit_f32(f32),
        visit_f64(f64),
        visit_char(char),
        visit_str(&str),
        visit_borrowed_str(&'de str),
        visit_string(String),
    );

    visit_bytes!(
        visit_bytes(&[u8]),
        visit_borrowed_bytes(&'de [u8]),
        visit_byte_buf(Vec<u8>),
    );

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_none()
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<V::Value, D::Error> {
        let limits = self.limits;
        limits.nested(|| {
            self.inner.visit_some(DeAdapter {
                inner: deserializer,
                limits,
            })
        })
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.inner.visit_unit()
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<V::Value, D::Error> {
        self.inner.visit_newtype_struct(DeAdapter {
            inner: deserializer,
            limits: self.limits,
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        let limits = self.limits;
        limits.nested(|| self.inner.visit_seq(Wrap::new(seq, limits)))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        let limits = self.limits;
        limits.nested(|| self.inner.visit_map(Wrap::new(map, limits)))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        let limits = self.limits;
        limits.nested(|| self.inner.visit_enum(Wrap::new(data, limits)))
    }
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Wrap<'_, S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<S::Value, D::Error> {
        self.inner.deserialize(DeAdapter {
            inner: deserializer,
            limits: self.limits,
        })
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Wrap<'_, A> {
    type Error = A::Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, A::Error> {
        self.inner.next_element_seed(Wrap::new(seed, self.limits))
    }

    fn size_hint(&self) -> Option<usize> {
        self.limits.hint(self.inner.size_hint())
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Wrap<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        self.inner.next_key_seed(Wrap::new(seed, self.limits))
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<T::Value, A::Error> {
        self.inner.next_value_seed(Wrap::new(seed, self.limits))
    }

    fn size_hint(&self) -> Option<usize> {
        self.limits.hint(self.inner.size_hint())
    }
}

impl<'de, 'l, A: EnumAccess<'de>> EnumAccess<'de> for Wrap<'l, A> {
    type Error = A::Error;
    type Variant = Wrap<'l, A::Variant>;

    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, Self::Variant), A::Error> {
        let (value, variant) = self.inner.variant_seed(Wrap::new(seed, self.limits))?;
        Ok((value, Wrap::new(variant, self.limits)))
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Wrap<'_, A> {
    type Error = A::Error;

    fn unit_variant(self) -> Result<(), A::Error> {
        self.inner.unit_variant()
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, A::Error> {
        self.inner
            .newtype_variant_seed(Wrap::new(seed, self.limits))
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, A::Error> {
        self.inner
            .tuple_variant(len, Wrap::new(visitor, self.limits))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, A::Error> {
        self.inner
            .struct_variant(fields, Wrap::new(visitor, self.limits))
    }
}
