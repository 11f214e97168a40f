//! The serializing half of the byte fast path.
//!
//! serde serializes `Vec<u8>`, `[u8]` and `VecDeque<u8>` through `collect_seq`, one element at a
//! time. [`Adapter`] wraps the codec's serializer so that such a sequence, at any depth, is
//! written with one `serialize_bytes` instead: a msgpack `bin` (which [`de`](super::de) and
//! plain `rmp-serde` read back into a `Vec<u8>` too), or in bincode the length then the raw bytes,
//! byte for byte what the plain serializer writes.

use std::mem::ManuallyDrop;

use serde::ser::{
    Serialize, SerializeMap, SerializeSeq, SerializeStruct, SerializeStructVariant, SerializeTuple,
    SerializeTupleStruct, SerializeTupleVariant, Serializer,
};

/// Serializes the wrapped value with the byte fast path.
pub(super) struct Adapter<T>(pub(super) T);

impl<T: Serialize> Serialize for Adapter<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(SerAdapter(serializer))
    }
}

/// A serializer that forwards to `S`, keeping every nested value on the adapter.
struct SerAdapter<S>(S);

/// A compound serializer that forwards to `C`, keeping every element on the adapter.
struct Compound<C>(C);

macro_rules! forward_values {
    ($($method:ident($ty:ty)),* $(,)?) => {$(
        fn $method(self, v: $ty) -> Result<S::Ok, S::Error> {
            self.0.$method(v)
        }
    )*};
}

impl<S: Serializer> Serializer for SerAdapter<S> {
    type Ok = S::Ok;
    type Error = S::Error;
    type SerializeSeq = Compound<S::SerializeSeq>;
    type SerializeTuple = Compound<S::SerializeTuple>;
    type SerializeTupleStruct = Compound<S::SerializeTupleStruct>;
    type SerializeTupleVariant = Compound<S::SerializeTupleVariant>;
    type SerializeMap = Compound<S::SerializeMap>;
    type SerializeStruct = Compound<S::SerializeStruct>;
    type SerializeStructVariant = Compound<S::SerializeStructVariant>;

    forward_values!(
        serialize_bool(bool),
        serialize_i8(i8),
        serialize_i16(i16),
        serialize_i32(i32),
        serialize_i64(i64),
        serialize_i128(i128),
        serialize_u8(u8),
        serialize_u16(u16),
        serialize_u32(u32),
        serialize_u64(u64),
        serialize_u128(u128),
        serialize_f32(f32),
        serialize_f64(f64),
        serialize_char(char),
        serialize_str(&str),
        serialize_bytes(&[u8]),
        serialize_unit_struct(&'static str),
    );

    fn serialize_none(self) -> Result<S::Ok, S::Error> {
        self.0.serialize_none()
    }

    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<S::Ok, S::Error> {
        self.0.serialize_some(&Adapter(value))
    }

    fn serialize_unit(self) -> Result<S::Ok, S::Error> {
        self.0.serialize_unit()
    }

    fn serialize_unit_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
    ) -> Result<S::Ok, S::Error> {
        self.0.serialize_unit_variant(name, index, variant)
    }

    fn serialize_newtype_struct<T: ?Sized + Serialize>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        self.0.serialize_newtype_struct(name, &Adapter(value))
    }

    fn serialize_newtype_variant<T: ?Sized + Serialize>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<S::Ok, S::Error> {
        self.0
            .serialize_newtype_variant(name, index, variant, &Adapter(value))
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<Self::SerializeSeq, S::Error> {
        self.0.serialize_seq(len).map(Compound)
    }

    fn serialize_tuple(self, len: usize) -> Result<Self::SerializeTuple, S::Error> {
        self.0.serialize_tuple(len).map(Compound)
    }

    fn serialize_tuple_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleStruct, S::Error> {
        self.0.serialize_tuple_struct(name, len).map(Compound)
    }

    fn serialize_tuple_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeTupleVariant, S::Error> {
        self.0
            .serialize_tuple_variant(name, index, variant, len)
            .map(Compound)
    }

    fn serialize_map(self, len: Option<usize>) -> Result<Self::SerializeMap, S::Error> {
        self.0.serialize_map(len).map(Compound)
    }

    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStruct, S::Error> {
        self.0.serialize_struct(name, len).map(Compound)
    }

    fn serialize_struct_variant(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<Self::SerializeStructVariant, S::Error> {
        self.0
            .serialize_struct_variant(name, index, variant, len)
            .map(Compound)
    }

    fn collect_seq<I>(self, iter: I) -> Result<S::Ok, S::Error>
    where
        I: IntoIterator,
        I::Item: Serialize,
    {
        let iter = iter.into_iter();
        if typeid::of::<I::IntoIter>() == typeid::of::<std::slice::Iter<'_, u8>>() {
            let iter = ManuallyDrop::new(iter);
            // SAFETY: the type ids are equal, so `I::IntoIter` is `slice::Iter<'a, u8>` for some
            // `'a` (lifetimes do not change layout). The bytes it borrows outlive this call, and
            // the original is never used again nor dropped (it has no drop glue anyway).
            let bytes: std::slice::Iter<'_, u8> = unsafe { std::mem::transmute_copy(&*iter) };
            return self.0.serialize_bytes(bytes.as_slice());
        }
        if typeid::of::<I::Item>() == typeid::of::<&u8>() {
            // bincode rejects a sequence of unknown length: only take the fast path where it
            // would have succeeded, so that errors stay the same.
            if let (lower, Some(upper)) = iter.size_hint() {
                if lower == upper {
                    let mut bytes = Vec::with_capacity(lower);
                    bytes.extend(iter.map(|item| {
                        let item = ManuallyDrop::new(item);
                        // SAFETY: the type ids are equal, so `I::Item` is `&'a u8` for some `'a`
                        // (lifetimes do not change layout), and the byte is read at once, while
                        // the collection it borrows from is still alive.
                        let byte: &u8 = unsafe { std::mem::transmute_copy(&*item) };
                        *byte
                    }));
                    return self.0.serialize_bytes(&bytes);
                }
            }
        }
        self.0.collect_seq(iter.map(Adapter))
    }

    fn collect_map<K, V, I>(self, iter: I) -> Result<S::Ok, S::Error>
    where
        K: Serialize,
        V: Serialize,
        I: IntoIterator<Item = (K, V)>,
    {
        self.0
            .collect_map(iter.into_iter().map(|(k, v)| (Adapter(k), Adapter(v))))
    }

    fn collect_str<T: ?Sized + std::fmt::Display>(self, value: &T) -> Result<S::Ok, S::Error> {
        self.0.collect_str(value)
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

macro_rules! forward_compound {
    ($($trait:ident { $($method:ident($($arg:ident: $ty:ty),*);)* } $(+ $skip:ident)?)*) => {$(
        impl<C: $trait> $trait for Compound<C> {
            type Ok = C::Ok;
            type Error = C::Error;

            $(
                fn $method<T: ?Sized + Serialize>(
                    &mut self,
                    $($arg: $ty,)*
                    value: &T,
                ) -> Result<(), C::Error> {
                    self.0.$method($($arg,)* &Adapter(value))
                }
            )*

            $(
                fn $skip(&mut self, key: &'static str) -> Result<(), C::Error> {
                    self.0.$skip(key)
                }
            )?

            fn end(self) -> Result<C::Ok, C::Error> {
                self.0.end()
            }
        }
    )*};
}

forward_compound! {
    SerializeSeq { serialize_element(); }
    SerializeTuple { serialize_element(); }
    SerializeTupleStruct { serialize_field(); }
    SerializeTupleVariant { serialize_field(); }
    SerializeMap { serialize_key(); serialize_value(); }
    SerializeStruct { serialize_field(key: &'static str); } + skip_field
    SerializeStructVariant { serialize_field(key: &'static str); } + skip_field
}
