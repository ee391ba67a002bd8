//! Keeping a failing `Serialize`/`Deserialize` impl's own message.
//!
//! A user's impl fails by calling `S::Error::custom(message)` on the error
//! type of the serializer it was given. Postcard's `Error::custom` drops the
//! message (its error is a fieldless enum: "Serde Serialization Error"), and
//! `CodecError::message` promises the impl's text. So every value is encoded
//! and decoded through a thin wrapper around postcard's serializer and
//! deserializer whose error type is [`Captured`]: its `custom` keeps the
//! message. Where a wrapped call returns to postcard (which needs its own
//! error type) the message is recorded in a thread-local, and the codec
//! reads it back when postcard reports a custom error ([`capture`]).
//!
//! The wrappers only forward: each method calls the same method of the
//! wrapped serializer (or deserializer), wrapping every nested value (or
//! seed, visitor, access) on the way down, so an impl at any depth is seen.
//! This is the shape of `serde_path_to_error`, keeping a message instead of
//! a path.

use std::cell::RefCell;
use std::fmt::{self, Display};

use serde::de::{self, DeserializeSeed, Deserializer, Visitor};
use serde::ser::{self, Serialize, Serializer};

thread_local! {
    /// The message of the last custom error raised through a wrapper.
    static MESSAGE: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Runs one encode or decode and returns its result, with the message of a
/// custom error raised by a user's impl meanwhile (if any).
///
/// Captures nest: a user's impl may encode on this thread while it runs
/// (by submitting to a pool, say), after an element of its own failed and
/// left its message here. So the message found on entry is put back on the
/// way out (a panic included), and the outer capture still reads it.
pub(crate) fn capture<T>(run: impl FnOnce() -> T) -> (T, Option<String>) {
    let outer = Restore(MESSAGE.with(|m| m.borrow_mut().take()));
    let out = run();
    let mine = MESSAGE.with(|m| m.borrow_mut().take());
    drop(outer);
    (out, mine)
}

/// Puts an outer capture's message back when dropped (see [`capture`]).
struct Restore(Option<String>);

impl Drop for Restore {
    fn drop(&mut self) {
        let outer = self.0.take();
        MESSAGE.with(|m| *m.borrow_mut() = outer);
    }
}

/// The error of the wrappers: the wrapped serializer's own, or a custom
/// message from a user's impl.
#[derive(Debug)]
pub(crate) enum Captured<E> {
    Inner(E),
    Custom(String),
}

impl<E: ser::Error> Captured<E> {
    /// Back to the wrapped error type, recording a custom message first.
    fn into_ser(self) -> E {
        match self {
            Captured::Inner(e) => e,
            Captured::Custom(m) => E::custom(record(m)),
        }
    }
}

impl<E: de::Error> Captured<E> {
    fn into_de(self) -> E {
        match self {
            Captured::Inner(e) => e,
            Captured::Custom(m) => E::custom(record(m)),
        }
    }
}

/// Records `message` as the latest custom error (the innermost one wins:
/// an outer impl that wraps an inner failure records its own text last).
fn record(message: String) -> String {
    MESSAGE.with(|m| *m.borrow_mut() = Some(message.clone()));
    message
}

impl<E: Display> Display for Captured<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Captured::Inner(e) => e.fmt(f),
            Captured::Custom(m) => f.write_str(m),
        }
    }
}

impl<E: fmt::Debug + Display> std::error::Error for Captured<E> {}

impl<E: ser::Error> ser::Error for Captured<E> {
    fn custom<T: Display>(msg: T) -> Self {
        Captured::Custom(msg.to_string())
    }
}

impl<E: de::Error> de::Error for Captured<E> {
    fn custom<T: Display>(msg: T) -> Self {
        Captured::Custom(msg.to_string())
    }
}

// ---------------------------------------------------------------------------
// Serializing.

/// A value serialized through the wrapper.
pub(crate) struct Val<'a, T: ?Sized>(pub &'a T);

impl<T: Serialize + ?Sized> Serialize for Val<'_, T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(Ser(s)).map_err(Captured::into_ser)
    }
}

struct Ser<S>(S);

/// A compound serializer (sequence, map, struct...) through the wrapper.
struct Compound<C>(C);

macro_rules! forward_ser {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {
        $(fn $method(self, $($arg: $ty),*) -> Result<S::Ok, Self::Error> {
            self.0.$method($($arg),*).map_err(Captured::Inner)
        })*
    };
}

macro_rules! forward_compound {
    ($($method:ident($($arg:ident: $ty:ty),*) -> $out:ty;)*) => {
        $(fn $method(self, $($arg: $ty),*) -> Result<$out, Self::Error> {
            self.0.$method($($arg),*).map(Compound).map_err(Captured::Inner)
        })*
    };
}

impl<S: Serializer> Serializer for Ser<S> {
    type Ok = S::Ok;
    type Error = Captured<S::Error>;
    type SerializeSeq = Compound<S::SerializeSeq>;
    type SerializeTuple = Compound<S::SerializeTuple>;
    type SerializeTupleStruct = Compound<S::SerializeTupleStruct>;
    type SerializeTupleVariant = Compound<S::SerializeTupleVariant>;
    type SerializeMap = Compound<S::SerializeMap>;
    type SerializeStruct = Compound<S::SerializeStruct>;
    type SerializeStructVariant = Compound<S::SerializeStructVariant>;

    forward_ser! {
        serialize_bool(v: bool);
        serialize_i8(v: i8);
        serialize_i16(v: i16);
        serialize_i32(v: i32);
        serialize_i64(v: i64);
        serialize_i128(v: i128);
        serialize_u8(v: u8);
        serialize_u16(v: u16);
        serialize_u32(v: u32);
        serialize_u64(v: u64);
        serialize_u128(v: u128);
        serialize_f32(v: f32);
        serialize_f64(v: f64);
        serialize_char(v: char);
        serialize_str(v: &str);
        serialize_bytes(v: &[u8]);
        serialize_none();
        serialize_unit();
        serialize_unit_struct(name: &'static str);
        serialize_unit_variant(name: &'static str, index: u32, variant: &'static str);
    }

    forward_compound! {
        serialize_seq(len: Option<usize>) -> Self::SerializeSeq;
        serialize_tuple(len: usize) -> Self::SerializeTuple;
        serialize_tuple_struct(name: &'static str, len: usize) -> Self::SerializeTupleStruct;
        serialize_tuple_variant(name: &'static str, index: u32, variant: &'static str, len: usize)
            -> Self::SerializeTupleVariant;
        serialize_map(len: Option<usize>) -> Self::SerializeMap;
        serialize_struct(name: &'static str, len: usize) -> Self::SerializeStruct;
        serialize_struct_variant(name: &'static str, index: u32, variant: &'static str, len: usize)
            -> Self::SerializeStructVariant;
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<S::Ok, Self::Error> {
        self.0.serialize_some(&Val(value)).map_err(Captured::Inner)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<S::Ok, Self::Error> {
        self.0
            .serialize_newtype_struct(name, &Val(value))
            .map_err(Captured::Inner)
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<S::Ok, Self::Error> {
        self.0
            .serialize_newtype_variant(name, index, variant, &Val(value))
            .map_err(Captured::Inner)
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

/// Implements a compound trait whose element method takes one value.
macro_rules! compound {
    ($trait:ident, $element:ident) => {
        impl<C: ser::$trait> ser::$trait for Compound<C> {
            type Ok = C::Ok;
            type Error = Captured<C::Error>;
            fn $element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Self::Error> {
                self.0.$element(&Val(value)).map_err(Captured::Inner)
            }
            fn end(self) -> Result<C::Ok, Self::Error> {
                self.0.end().map_err(Captured::Inner)
            }
        }
    };
}

compound!(SerializeSeq, serialize_element);
compound!(SerializeTuple, serialize_element);
compound!(SerializeTupleStruct, serialize_field);
compound!(SerializeTupleVariant, serialize_field);

/// Implements a compound trait whose fields have names.
macro_rules! named_compound {
    ($trait:ident) => {
        impl<C: ser::$trait> ser::$trait for Compound<C> {
            type Ok = C::Ok;
            type Error = Captured<C::Error>;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), Self::Error> {
                self.0
                    .serialize_field(key, &Val(value))
                    .map_err(Captured::Inner)
            }
            fn skip_field(&mut self, key: &'static str) -> Result<(), Self::Error> {
                self.0.skip_field(key).map_err(Captured::Inner)
            }
            fn end(self) -> Result<C::Ok, Self::Error> {
                self.0.end().map_err(Captured::Inner)
            }
        }
    };
}

named_compound!(SerializeStruct);
named_compound!(SerializeStructVariant);

impl<C: ser::SerializeMap> ser::SerializeMap for Compound<C> {
    type Ok = C::Ok;
    type Error = Captured<C::Error>;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Self::Error> {
        self.0.serialize_key(&Val(key)).map_err(Captured::Inner)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Self::Error> {
        self.0.serialize_value(&Val(value)).map_err(Captured::Inner)
    }
    fn end(self) -> Result<C::Ok, Self::Error> {
        self.0.end().map_err(Captured::Inner)
    }
}

// ---------------------------------------------------------------------------
// Deserializing.

/// A seed (or, through `PhantomData`, a plain `Deserialize` type) read
/// through the wrapper.
pub(crate) struct Seed<T>(pub T);

impl<'de, T: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<T> {
    type Value = T::Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<T::Value, D::Error> {
        self.0.deserialize(De(d)).map_err(Captured::into_de)
    }
}

struct De<D>(D);

macro_rules! forward_de {
    ($($method:ident($($arg:ident: $ty:ty),*);)*) => {
        $(fn $method<V: Visitor<'de>>(self, $($arg: $ty,)* visitor: V) -> Result<V::Value, Self::Error> {
            self.0.$method($($arg,)* Vis(visitor)).map_err(Captured::Inner)
        })*
    };
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for De<D> {
    type Error = Captured<D::Error>;

    forward_de! {
        deserialize_any();
        deserialize_bool();
        deserialize_i8();
        deserialize_i16();
        deserialize_i32();
        deserialize_i64();
        deserialize_i128();
        deserialize_u8();
        deserialize_u16();
        deserialize_u32();
        deserialize_u64();
        deserialize_u128();
        deserialize_f32();
        deserialize_f64();
        deserialize_char();
        deserialize_str();
        deserialize_string();
        deserialize_bytes();
        deserialize_byte_buf();
        deserialize_option();
        deserialize_unit();
        deserialize_unit_struct(name: &'static str);
        deserialize_newtype_struct(name: &'static str);
        deserialize_seq();
        deserialize_tuple(len: usize);
        deserialize_tuple_struct(name: &'static str, len: usize);
        deserialize_map();
        deserialize_struct(name: &'static str, fields: &'static [&'static str]);
        deserialize_enum(name: &'static str, variants: &'static [&'static str]);
        deserialize_identifier();
        deserialize_ignored_any();
    }

    fn is_human_readable(&self) -> bool {
        self.0.is_human_readable()
    }
}

/// A user's visitor, called with the wrapper's error type so that its
/// `custom` errors are kept, and handed wrapped accessors.
struct Vis<V>(V);

macro_rules! forward_visit {
    ($($method:ident($ty:ty);)*) => {
        $(fn $method<E: de::Error>(self, v: $ty) -> Result<V::Value, E> {
            self.0.$method::<Captured<E>>(v).map_err(Captured::into_de)
        })*
    };
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Vis<V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.expecting(f)
    }

    forward_visit! {
        visit_bool(bool);
        visit_i8(i8);
        visit_i16(i16);
        visit_i32(i32);
        visit_i64(i64);
        visit_i128(i128);
        visit_u8(u8);
        visit_u16(u16);
        visit_u32(u32);
        visit_u64(u64);
        visit_u128(u128);
        visit_f32(f32);
        visit_f64(f64);
        visit_char(char);
        visit_str(&str);
        visit_borrowed_str(&'de str);
        visit_string(String);
        visit_bytes(&[u8]);
        visit_borrowed_bytes(&'de [u8]);
        visit_byte_buf(Vec<u8>);
    }

    fn visit_none<E: de::Error>(self) -> Result<V::Value, E> {
        self.0
            .visit_none::<Captured<E>>()
            .map_err(Captured::into_de)
    }

    fn visit_unit<E: de::Error>(self) -> Result<V::Value, E> {
        self.0
            .visit_unit::<Captured<E>>()
            .map_err(Captured::into_de)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.0.visit_some(De(d)).map_err(Captured::into_de)
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<V::Value, D::Error> {
        self.0
            .visit_newtype_struct(De(d))
            .map_err(Captured::into_de)
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<V::Value, A::Error> {
        self.0.visit_seq(Access(seq)).map_err(Captured::into_de)
    }

    fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.0.visit_map(Access(map)).map_err(Captured::into_de)
    }

    fn visit_enum<A: de::EnumAccess<'de>>(self, data: A) -> Result<V::Value, A::Error> {
        self.0.visit_enum(Access(data)).map_err(Captured::into_de)
    }
}

/// A sequence, map, enum or variant accessor through the wrapper.
struct Access<A>(A);

impl<'de, A: de::SeqAccess<'de>> de::SeqAccess<'de> for Access<A> {
    type Error = Captured<A::Error>;
    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Self::Error> {
        self.0
            .next_element_seed(Seed(seed))
            .map_err(Captured::Inner)
    }
    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: de::MapAccess<'de>> de::MapAccess<'de> for Access<A> {
    type Error = Captured<A::Error>;
    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        self.0.next_key_seed(Seed(seed)).map_err(Captured::Inner)
    }
    fn next_value_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<T::Value, Self::Error> {
        self.0.next_value_seed(Seed(seed)).map_err(Captured::Inner)
    }
    fn size_hint(&self) -> Option<usize> {
        self.0.size_hint()
    }
}

impl<'de, A: de::EnumAccess<'de>> de::EnumAccess<'de> for Access<A> {
    type Error = Captured<A::Error>;
    type Variant = Access<A::Variant>;
    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, Self::Variant), Self::Error> {
        self.0
            .variant_seed(Seed(seed))
            .map(|(value, variant)| (value, Access(variant)))
            .map_err(Captured::Inner)
    }
}

impl<'de, A: de::VariantAccess<'de>> de::VariantAccess<'de> for Access<A> {
    type Error = Captured<A::Error>;
    fn unit_variant(self) -> Result<(), Self::Error> {
        self.0.unit_variant().map_err(Captured::Inner)
    }
    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, Self::Error> {
        self.0
            .newtype_variant_seed(Seed(seed))
            .map_err(Captured::Inner)
    }
    fn tuple_variant<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0
            .tuple_variant(len, Vis(visitor))
            .map_err(Captured::Inner)
    }
    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0
            .struct_variant(fields, Vis(visitor))
            .map_err(Captured::Inner)
    }
}
