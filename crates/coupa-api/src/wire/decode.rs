//! From bytes to typed wire models: [`parse`] reads a body into a [`Value`], [`decode`] fills a
//! serde type from it, and [`encode`] writes a body back.
//!
//! The deserializer over [`Value`] is lenient where Coupa is inconsistent and strict where a
//! guess could corrupt data:
//! - integers (ids, counts) accept numbers, numeric text (`"3001"`, `" 7 "`) and whole decimals;
//! - strings accept text and render numbers, booleans and datetimes (`invoice-number` typed
//!   `integer` in XML, `external-ref-id` a number in some payloads and text in others);
//! - booleans accept `true`/`false` and the spellings of [`coupa_doc::lenient::parse_bool`];
//! - `Option`s read `null`, a missing field and empty or blank text as `None`;
//! - lists read `null` as empty, and `{"payment": [...]}` / `{"payment": {...}}` under a field
//!   named `payments` as the list it wraps (the request shapes Coupa accepts for payments);
//! - decimals and datetimes go through the helpers in [`lenient`], used with
//!   `#[serde(deserialize_with = ...)]`: exact decimals from numbers or text (never through
//!   `f64`), and every date form Coupa accepts. `1,000` or `989,00` is an error, not a guess.
//!
//! Errors carry the path of the field that failed (`invoice-lines[0].quantity`), so one broken
//! record can be reported precisely and skipped without sinking its page.

use std::fmt;

use coupa_doc::{DocError, Object, Value, json, names};
use serde::de::value::BorrowedStrDeserializer;
use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, EnumAccess, IntoDeserializer, MapAccess,
    SeqAccess, VariantAccess, Visitor,
};

use super::Format;

/// A body that could not be read, or a field that did not fit its type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("at {path}: {message}")]
pub struct DecodeError {
    /// Where in the document: `invoice-lines[0].quantity`, or `.` for the document itself.
    pub path: String,
    /// What was wrong, e.g. `invalid decimal "abc"`.
    pub message: String,
}

impl DecodeError {
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        DecodeError {
            path: path.into(),
            message: message.into(),
        }
    }

    /// An error about the document as a whole.
    pub fn at_root(message: impl Into<String>) -> Self {
        DecodeError::new(".", message)
    }

    /// A body that is not well-formed JSON or XML.
    pub fn syntax(format: Format, err: DocError) -> Self {
        let name = match format {
            Format::Json => "JSON",
            Format::Xml => "XML",
        };
        DecodeError::at_root(format!("unreadable {name} body: {err}"))
    }
}

impl de::Error for DecodeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DecodeError::at_root(msg.to_string())
    }
}

/// Reads a body. The XML document element's name (`invoice-header`, `invoice-headers`) is
/// dropped: the value is the same shape JSON gives.
pub fn parse(format: Format, bytes: &[u8]) -> Result<Value, DecodeError> {
    match format {
        Format::Json => json::parse(bytes),
        Format::Xml => coupa_doc::xml::parse(bytes).map(|(_, v)| v),
    }
    .map_err(|e| DecodeError::syntax(format, e))
}

/// Writes a body: JSON as the value itself, XML as the document element `root`
/// (e.g. `invoice-header`) around it.
pub fn encode(format: Format, root: &str, value: &Value) -> Vec<u8> {
    match format {
        Format::Json => json::to_vec(value),
        Format::Xml => coupa_doc::xml::to_string(root, value).into_bytes(),
    }
}

/// Fills `T` from a document tree; the error names the field path that failed.
pub fn decode<T: DeserializeOwned>(v: &Value) -> Result<T, DecodeError> {
    serde_path_to_error::deserialize(ValueDeserializer::new(v)).map_err(|e| {
        let path = e.path().to_string();
        let mut err = e.into_inner();
        err.path = path;
        err
    })
}

/// The items of a list response: a JSON array or an XML `type="array"` root. `null` and the
/// "No results match your search criteria." envelope (Coupa's XML answer to an empty query,
/// with status 404) are an empty list. Items are returned undecoded so the caller can decode
/// each on its own and keep the good ones when one is broken.
pub fn list_items(v: Value) -> Result<Vec<Value>, DecodeError> {
    if super::errors::is_no_results(&v) {
        return Ok(Vec::new());
    }
    match v {
        Value::Array(items) => Ok(items),
        Value::Null => Ok(Vec::new()),
        other => Err(DecodeError::at_root(format!(
            "expected a list of records, found {}",
            describe(&other)
        ))),
    }
}

/// A short description of a value for error messages: `text "abc"`, `an object with keys
/// [payment]`.
fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".to_owned(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Int(i) => format!("integer {i}"),
        Value::Decimal(d) => format!("decimal {d}"),
        Value::DateTime(d) => format!("datetime {}", json::format_datetime(d)),
        Value::Text(s) => format!("text {s:?}"),
        Value::Array(a) => format!("a list of {} items", a.len()),
        Value::Object(o) => {
            let keys: Vec<&str> = o.keys().take(8).collect();
            let more = if o.len() > keys.len() { ", ..." } else { "" };
            format!("an object with keys [{}{more}]", keys.join(", "))
        }
    }
}

fn mismatch(expected: &str, found: &Value) -> DecodeError {
    DecodeError::at_root(format!("expected {expected}, found {}", describe(found)))
}

fn blank(v: &Value) -> bool {
    matches!(v, Value::Text(s) if s.trim().is_empty())
}

/// A serde deserializer over a borrowed [`Value`] with Coupa's coercions (see the module docs).
/// [`decode`] is the usual entry point; this is public for callers that drive serde themselves.
#[derive(Clone, Copy)]
pub struct ValueDeserializer<'de> {
    value: &'de Value,
    /// The key this value sits under, if any: lets a list field recognise its own wrapper.
    field: Option<&'de str>,
}

impl<'de> ValueDeserializer<'de> {
    pub fn new(value: &'de Value) -> Self {
        ValueDeserializer { value, field: None }
    }

    fn int(&self) -> Result<i64, DecodeError> {
        match self.value {
            Value::Int(i) => Ok(*i),
            Value::Text(s) => {
                let t = s.trim();
                t.parse::<i64>()
                    .ok()
                    .or_else(|| {
                        coupa_doc::lenient::parse_decimal(t)
                            .filter(|d| d.fract().is_zero())
                            .and_then(|d| i64::try_from(d).ok())
                    })
                    .ok_or_else(|| DecodeError::at_root(format!("invalid integer {s:?}")))
            }
            Value::Decimal(d) if d.fract().is_zero() => i64::try_from(*d)
                .map_err(|_| DecodeError::at_root(format!("integer {d} is out of range"))),
            Value::Decimal(d) => Err(DecodeError::at_root(format!(
                "invalid integer {d}: it has a fraction"
            ))),
            other => Err(mismatch("an integer", other)),
        }
    }

    /// The items a list field holds, or why it holds none.
    fn items(&self) -> Result<&'de [Value], DecodeError> {
        match self.value {
            Value::Array(items) => Ok(items),
            Value::Null => Ok(&[]),
            v if blank(v) => Ok(&[]),
            Value::Object(o) => self
                .wrapped_items(o)
                .ok_or_else(|| mismatch("a list", self.value)),
            other => Err(mismatch("a list", other)),
        }
    }

    /// `payments: {"payment": [...]}` or `payments: {"payment": {...}}`: a list written the way
    /// XML nests it, as Coupa's payment request shapes do in JSON.
    fn wrapped_items(&self, o: &'de Object) -> Option<&'de [Value]> {
        let field = self.field?;
        let mut entries = o.iter();
        let (key, inner) = entries.next()?;
        if entries.next().is_some() || !names::is_plural_of(field, key) {
            return None;
        }
        match inner {
            Value::Array(items) => Some(items),
            Value::Null => Some(&[]),
            one => Some(std::slice::from_ref(one)),
        }
    }
}

impl<'de> IntoDeserializer<'de, DecodeError> for &'de Value {
    type Deserializer = ValueDeserializer<'de>;
    fn into_deserializer(self) -> ValueDeserializer<'de> {
        ValueDeserializer::new(self)
    }
}

macro_rules! forward_int {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
            visitor.visit_i64(self.int()?)
        }
    )*};
}

impl<'de> Deserializer<'de> for ValueDeserializer<'de> {
    type Error = DecodeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        match self.value {
            Value::Null => visitor.visit_unit(),
            Value::Bool(b) => visitor.visit_bool(*b),
            Value::Int(i) => visitor.visit_i64(*i),
            // As text, so `String` fields and exact decimal parsers both read it unchanged.
            Value::Decimal(d) => visitor.visit_string(d.to_string()),
            Value::DateTime(d) => visitor.visit_string(json::format_datetime(d)),
            Value::Text(s) => visitor.visit_borrowed_str(s),
            Value::Array(items) => visitor.visit_seq(SeqDe::new(items)),
            Value::Object(o) => visitor.visit_map(MapDe::new(o.iter(), o.len())),
        }
    }

    forward_int! {
        deserialize_i8 deserialize_i16 deserialize_i32 deserialize_i64 deserialize_i128
        deserialize_u8 deserialize_u16 deserialize_u32 deserialize_u64 deserialize_u128
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        let b = match self.value {
            Value::Bool(b) => *b,
            Value::Int(0) => false,
            Value::Int(1) => true,
            Value::Text(s) => coupa_doc::lenient::parse_bool(s)
                .ok_or_else(|| DecodeError::at_root(format!("invalid boolean {s:?}")))?,
            other => return Err(mismatch("a boolean", other)),
        };
        visitor.visit_bool(b)
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        use rust_decimal::prelude::ToPrimitive;
        let f = match self.value {
            Value::Int(i) => *i as f64,
            Value::Decimal(d) => d.to_f64().ok_or_else(|| mismatch("a number", self.value))?,
            Value::Text(s) => s
                .trim()
                .parse::<f64>()
                .map_err(|_| DecodeError::at_root(format!("invalid number {s:?}")))?,
            other => return Err(mismatch("a number", other)),
        };
        visitor.visit_f64(f)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        match self.value {
            Value::Text(s) => visitor.visit_borrowed_str(s),
            Value::Int(i) => visitor.visit_string(i.to_string()),
            Value::Decimal(d) => visitor.visit_string(d.to_string()),
            Value::Bool(b) => visitor.visit_borrowed_str(if *b { "true" } else { "false" }),
            Value::DateTime(d) => visitor.visit_string(json::format_datetime(d)),
            other => Err(mismatch("text", other)),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        match self.value {
            Value::Text(s) => visitor.visit_borrowed_bytes(s.as_bytes()),
            _ => self.deserialize_any(visitor),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        // Coupa writes "no value" as null, `nil="true"`, an empty element or an empty string.
        if self.value.is_null() || blank(self.value) {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        if self.value.is_null() || blank(self.value) {
            visitor.visit_unit()
        } else {
            Err(mismatch("nothing", self.value))
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_seq(SeqDe::new(self.items()?))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        match self.value {
            Value::Object(o) => visitor.visit_map(MapDe::new(o.iter(), o.len())),
            // An absent map (`"custom-fields": null`, `<custom-fields />`) is an empty one.
            v if v.is_null() || blank(v) => visitor.visit_map(MapDe::new(std::iter::empty(), 0)),
            other => Err(mismatch("an object", other)),
        }
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        // A null where a record is required is an error; an optional record never gets here
        // (`deserialize_option` answers `None` first).
        match self.value {
            Value::Object(o) => visitor.visit_map(MapDe::new(o.iter(), o.len())),
            other => Err(mismatch("an object", other)),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        match self.value {
            Value::Text(s) => visitor.visit_enum(BorrowedStrDeserializer::new(s.trim())),
            Value::Object(o) if o.len() == 1 => visitor.visit_enum(EnumDe { object: o }),
            other => Err(mismatch("a variant name", other)),
        }
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        self.deserialize_str(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DecodeError> {
        visitor.visit_unit()
    }
}

struct SeqDe<'de> {
    items: std::slice::Iter<'de, Value>,
}

impl<'de> SeqDe<'de> {
    fn new(items: &'de [Value]) -> Self {
        SeqDe {
            items: items.iter(),
        }
    }
}

impl<'de> SeqAccess<'de> for SeqDe<'de> {
    type Error = DecodeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DecodeError> {
        self.items
            .next()
            .map(|v| seed.deserialize(ValueDeserializer::new(v)))
            .transpose()
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

struct MapDe<'de, I> {
    entries: I,
    pending: Option<(&'de str, &'de Value)>,
    remaining: usize,
}

impl<'de, I: Iterator<Item = (&'de str, &'de Value)>> MapDe<'de, I> {
    fn new(entries: I, len: usize) -> Self {
        MapDe {
            entries,
            pending: None,
            remaining: len,
        }
    }
}

impl<'de, I: Iterator<Item = (&'de str, &'de Value)>> MapAccess<'de> for MapDe<'de, I> {
    type Error = DecodeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DecodeError> {
        let Some((key, value)) = self.entries.next() else {
            return Ok(None);
        };
        self.remaining = self.remaining.saturating_sub(1);
        self.pending = Some((key, value));
        seed.deserialize(BorrowedStrDeserializer::new(key))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(
        &mut self,
        seed: V,
    ) -> Result<V::Value, DecodeError> {
        let (key, value) = self
            .pending
            .take()
            .ok_or_else(|| DecodeError::at_root("a map value was asked for before its key"))?;
        seed.deserialize(ValueDeserializer {
            value,
            field: Some(key),
        })
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.remaining)
    }
}

/// `{"variant": content}` as an externally tagged enum.
struct EnumDe<'de> {
    object: &'de Object,
}

impl<'de> EnumAccess<'de> for EnumDe<'de> {
    type Error = DecodeError;
    type Variant = ValueDeserializer<'de>;

    fn variant_seed<V: DeserializeSeed<'de>>(
        self,
        seed: V,
    ) -> Result<(V::Value, Self::Variant), DecodeError> {
        let (key, value) = self
            .object
            .iter()
            .next()
            .ok_or_else(|| DecodeError::at_root("expected a variant, found an empty object"))?;
        let variant = seed.deserialize(BorrowedStrDeserializer::<DecodeError>::new(key))?;
        Ok((
            variant,
            ValueDeserializer {
                value,
                field: Some(key),
            },
        ))
    }
}

impl<'de> VariantAccess<'de> for ValueDeserializer<'de> {
    type Error = DecodeError;

    fn unit_variant(self) -> Result<(), DecodeError> {
        de::Deserialize::deserialize(self)
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, DecodeError> {
        seed.deserialize(self)
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        self.deserialize_seq(visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DecodeError> {
        self.deserialize_map(visitor)
    }
}

/// `deserialize_with` helpers for the scalars serde cannot coerce by type alone. They work with
/// any self-describing deserializer, not only [`ValueDeserializer`].
///
/// ```
/// use coupa_api::wire::decode::lenient;
/// use rust_decimal::Decimal;
///
/// #[derive(serde::Deserialize)]
/// struct Payment {
///     #[serde(default, deserialize_with = "lenient::decimal_opt")]
///     amount_paid: Option<Decimal>,
/// }
///
/// let p: Payment = serde_json::from_str(r#"{"amount_paid": " 12.50 "}"#).expect("lenient");
/// assert_eq!(p.amount_paid, Some(Decimal::new(1250, 2)));
/// ```
pub mod lenient {
    use std::fmt;

    use chrono::{DateTime, FixedOffset};
    use coupa_doc::Value;
    use rust_decimal::Decimal;
    use serde::de::{self, Deserialize, Deserializer, Visitor};

    /// An exact decimal from a decimal, an integer or text (`"20000.00"`, `" 12.5 "`, `"1e3"`);
    /// null, a missing field and blank text are `None`.
    pub fn decimal_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        d.deserialize_option(OptVisitor(DecimalVisitor))
    }

    /// As [`decimal_opt`], for a field that must be present.
    pub fn decimal<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        decimal_opt(d)?.ok_or_else(|| de::Error::custom("expected a decimal, found nothing"))
    }

    /// A datetime in any form Coupa writes or accepts: RFC 3339 with an offset, a date alone
    /// (`2019-08-13`, `9/12/2019`, `22.10.2019`, read as midnight UTC), quoted
    /// (`"2019-10-22 00:00:00 -0900"`); null, missing and blank are `None`.
    pub fn datetime_opt<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<DateTime<FixedOffset>>, D::Error> {
        d.deserialize_option(OptVisitor(DateTimeVisitor))
    }

    /// As [`datetime_opt`], for a field that must be present.
    pub fn datetime<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<FixedOffset>, D::Error> {
        datetime_opt(d)?.ok_or_else(|| de::Error::custom("expected a datetime, found nothing"))
    }

    /// Text, or the `name` (else `code`, else `id`) of an object where Swagger declares an
    /// association but payloads also carry plain text (`integration-run.flow`).
    pub fn name_or_text_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        let v = Option::<Value>::deserialize(d)?;
        Ok(v.as_ref().and_then(name_or_text))
    }

    fn name_or_text(v: &Value) -> Option<String> {
        match v {
            Value::Object(o) => ["name", "code", "id"]
                .iter()
                .find_map(|k| o.get(k).and_then(name_or_text)),
            Value::Array(_) | Value::Null => None,
            scalar => Some(scalar.to_plain_string()).filter(|s| !s.trim().is_empty()),
        }
    }

    /// A list of messages from a list of texts, a list of objects (their message), a single
    /// text, or null (`upload-errors[].field-errors`, which Swagger types as one text and
    /// Coupa's examples print as a list).
    pub fn text_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        let v = Option::<Value>::deserialize(d)?;
        Ok(v.map(|v| super::super::errors::texts(&v))
            .unwrap_or_default())
    }

    /// Accepts `None` for null, unit, missing and blank text; otherwise hands over to `T`.
    struct OptVisitor<T>(T);

    impl<'de, T: Visitor<'de>> Visitor<'de> for OptVisitor<T> {
        type Value = Option<T::Value>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            self.0.expecting(f)
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_any(self)
        }

        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            self.0.visit_bool(v).map(Some)
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            self.0.visit_i64(v).map(Some)
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            self.0.visit_u64(v).map(Some)
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
            self.0.visit_f64(v).map(Some)
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            if v.trim().is_empty() {
                Ok(None)
            } else {
                self.0.visit_str(v).map(Some)
            }
        }

        fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            self.0.visit_map(map).map(Some)
        }

        fn visit_seq<A: de::SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            self.0.visit_seq(seq).map(Some)
        }
    }

    /// `serde_json`'s `arbitrary_precision` numbers arrive as a map with this one key.
    const JSON_NUMBER_TOKEN: &str = "$serde_json::private::Number";

    struct DecimalVisitor;

    impl<'de> Visitor<'de> for DecimalVisitor {
        type Value = Decimal;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a decimal")
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Decimal, E> {
            Ok(Decimal::from(v))
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Decimal, E> {
            Ok(Decimal::from(v))
        }

        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Decimal, E> {
            // Only other deserializers get here (ours never hands out floats). The shortest
            // round-trip text of the float is what the sender wrote.
            self.visit_str(&v.to_string())
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Decimal, E> {
            coupa_doc::lenient::parse_decimal(v)
                .ok_or_else(|| E::custom(format!("invalid decimal {v:?}")))
        }

        fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Decimal, A::Error> {
            match map.next_key::<String>()? {
                Some(k) if k == JSON_NUMBER_TOKEN => {
                    let text: String = map.next_value()?;
                    self.visit_str(&text)
                }
                _ => Err(de::Error::custom("expected a decimal, found an object")),
            }
        }

        fn visit_seq<A: de::SeqAccess<'de>>(self, _seq: A) -> Result<Decimal, A::Error> {
            Err(de::Error::custom("expected a decimal, found a list"))
        }

        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Decimal, E> {
            Err(E::custom(format!("expected a decimal, found boolean {v}")))
        }
    }

    struct DateTimeVisitor;

    impl<'de> Visitor<'de> for DateTimeVisitor {
        type Value = DateTime<FixedOffset>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a datetime")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            coupa_doc::lenient::parse_datetime(v)
                .ok_or_else(|| E::custom(format!("invalid datetime {v:?}")))
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
            // `20190813` (a date written as a number) is one of the forms Coupa's loader takes.
            self.visit_str(&v.to_string())
        }

        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
            self.visit_str(&v.to_string())
        }

        fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
            Err(E::custom(format!("expected a datetime, found boolean {v}")))
        }

        fn visit_map<A: de::MapAccess<'de>>(self, _map: A) -> Result<Self::Value, A::Error> {
            Err(de::Error::custom("expected a datetime, found an object"))
        }

        fn visit_seq<A: de::SeqAccess<'de>>(self, _seq: A) -> Result<Self::Value, A::Error> {
            Err(de::Error::custom("expected a datetime, found a list"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, FixedOffset};
    use coupa_doc::Object;
    use rust_decimal::Decimal;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "kebab-case")]
    struct Line {
        #[serde(default)]
        line_num: Option<i64>,
        #[serde(default, deserialize_with = "lenient::decimal_opt")]
        quantity: Option<Decimal>,
        #[serde(default)]
        description: Option<String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "kebab-case")]
    struct Doc {
        id: i64,
        #[serde(default)]
        number: Option<String>,
        #[serde(default)]
        paid: Option<bool>,
        #[serde(default, deserialize_with = "lenient::datetime_opt")]
        payment_date: Option<DateTime<FixedOffset>>,
        #[serde(default)]
        invoice_lines: Vec<Line>,
        #[serde(default)]
        payments: Vec<Line>,
    }

    fn json(s: &str) -> Value {
        json::parse(s.as_bytes()).expect("test JSON parses")
    }

    fn dec(s: &str) -> Decimal {
        s.parse().expect("test decimal")
    }

    #[test]
    fn scalars_are_coerced_the_way_coupa_mixes_them() {
        let d: Doc = decode(&json(
            r#"{"id": " 42 ", "number": 500, "paid": "Yes", "payment-date": "9/12/2019",
                "invoice-lines": [{"line-num": "3", "quantity": " 12.5 "},
                                  {"line-num": 4.0, "quantity": 7},
                                  {"quantity": "20000.00", "description": 12.50}]}"#,
        ))
        .expect("decodes");
        assert_eq!(d.id, 42);
        assert_eq!(d.number.as_deref(), Some("500"));
        assert_eq!(d.paid, Some(true));
        assert_eq!(
            d.payment_date.map(|t| t.to_rfc3339()).as_deref(),
            Some("2019-09-12T00:00:00+00:00")
        );
        assert_eq!(d.invoice_lines[0].line_num, Some(3));
        assert_eq!(d.invoice_lines[0].quantity, Some(dec("12.5")));
        assert_eq!(d.invoice_lines[1].line_num, Some(4));
        assert_eq!(d.invoice_lines[1].quantity, Some(Decimal::from(7)));
        assert_eq!(d.invoice_lines[2].quantity, Some(dec("20000.00")));
        // A decimal read into a string keeps its scale.
        assert_eq!(d.invoice_lines[2].description.as_deref(), Some("12.50"));
    }

    #[test]
    fn decimals_keep_their_scale_and_never_pass_through_floats() {
        let d: Line = decode(&json(r#"{"quantity": 0.1}"#)).expect("decodes");
        assert_eq!(d.quantity, Some(dec("0.1")));
        let d: Line =
            decode(&json(r#"{"quantity": 12345678901234567890.123456789}"#)).expect("decodes");
        assert_eq!(
            d.quantity.map(|q| q.to_string()).as_deref(),
            Some("12345678901234567890.123456789")
        );
        let (_, x) =
            coupa_doc::xml::parse(br#"<line><quantity type="decimal">1187.160</quantity></line>"#)
                .expect("xml");
        let d: Line = decode(&x).expect("decodes");
        assert_eq!(
            d.quantity.map(|q| q.to_string()).as_deref(),
            Some("1187.160")
        );
    }

    #[test]
    fn errors_name_the_field_path() {
        let e = decode::<Doc>(&json(
            r#"{"id": 1, "invoice-lines": [{"quantity": "1"}, {"quantity": "abc"}]}"#,
        ))
        .expect_err("bad quantity");
        assert_eq!(e.path, "invoice-lines[1].quantity");
        assert_eq!(e.message, r#"invalid decimal "abc""#);
        assert_eq!(
            e.to_string(),
            r#"at invoice-lines[1].quantity: invalid decimal "abc""#
        );

        let e = decode::<Doc>(&json(r#"{"id": "x1"}"#)).expect_err("bad id");
        assert_eq!(e.path, "id");
        assert_eq!(e.message, r#"invalid integer "x1""#);

        let e = decode::<Doc>(&json(r#"{"id": 1, "paid": "maybe"}"#)).expect_err("bad bool");
        assert_eq!(e.to_string(), r#"at paid: invalid boolean "maybe""#);

        let e = decode::<Doc>(&json(r#"{"id": 1, "payment-date": "13/45/2019"}"#))
            .expect_err("bad date");
        assert_eq!(e.path, "payment-date");
        assert_eq!(e.message, r#"invalid datetime "13/45/2019""#);

        let e = decode::<Doc>(&json(r#"{"number": "1"}"#)).expect_err("no id");
        assert_eq!(e.path, ".");
        assert!(e.message.contains("missing field `id`"), "{e}");

        let e = decode::<Doc>(&json(r#"{"id": 2.5}"#)).expect_err("fraction");
        assert!(e.message.contains("fraction"), "{e}");
    }

    #[test]
    fn money_with_a_decimal_comma_is_refused_not_guessed() {
        let e = decode::<Line>(&json(r#"{"quantity": "989,00"}"#)).expect_err("comma");
        assert_eq!(e.to_string(), r#"at quantity: invalid decimal "989,00""#);
    }

    #[test]
    fn empty_text_and_null_are_none() {
        let d: Doc = decode(&json(
            r#"{"id": 1, "number": "  ", "paid": null, "payment-date": "",
                "invoice-lines": [{"quantity": "", "line-num": null, "description": ""}]}"#,
        ))
        .expect("decodes");
        assert_eq!(d.number, None);
        assert_eq!(d.paid, None);
        assert_eq!(d.payment_date, None);
        assert_eq!(d.invoice_lines[0].quantity, None);
        assert_eq!(d.invoice_lines[0].line_num, None);
        assert_eq!(d.invoice_lines[0].description, None);

        // XML: `nil="true"`, `<x />` and typed-but-empty elements.
        let (_, x) = coupa_doc::xml::parse(
            br#"<doc><id type="integer">1</id><number nil="true" /><paid type="boolean" />
                <payment-date type="datetime"></payment-date></doc>"#,
        )
        .expect("xml");
        let d: Doc = decode(&x).expect("decodes");
        assert_eq!((d.number, d.paid, d.payment_date), (None, None, None));
    }

    #[test]
    fn lists_read_null_as_empty_and_refuse_plain_objects() {
        let d: Doc = decode(&json(r#"{"id": 1, "invoice-lines": null}"#)).expect("decodes");
        assert!(d.invoice_lines.is_empty());
        let d: Doc = decode(&json(r#"{"id": 1}"#)).expect("decodes");
        assert!(d.invoice_lines.is_empty());

        let e = decode::<Doc>(&json(r#"{"id": 1, "invoice-lines": {"line-num": 1}}"#))
            .expect_err("object for a list");
        assert_eq!(e.path, "invoice-lines");
        assert_eq!(
            e.message,
            "expected a list, found an object with keys [line-num]"
        );
        let e = decode::<Doc>(&json(r#"{"id": 1, "invoice-lines": "x"}"#)).expect_err("text");
        assert_eq!(e.message, r#"expected a list, found text "x""#);
    }

    #[test]
    fn a_list_wrapped_in_its_singular_element_is_unwrapped() {
        let one: Doc = decode(&json(
            r#"{"id": 1, "payments": {"payment": {"quantity": "199.98"}}}"#,
        ))
        .expect("one");
        assert_eq!(one.payments.len(), 1);
        assert_eq!(one.payments[0].quantity, Some(dec("199.98")));
        let two: Doc = decode(&json(
            r#"{"id": 1, "payments": {"payment": [{"quantity": "510"}, {"quantity": "53"}]}}"#,
        ))
        .expect("two");
        assert_eq!(two.payments.len(), 2);
        let e = decode::<Doc>(&json(
            r#"{"id": 1, "payments": {"payment": [{"quantity": "5"}, {"quantity": "x"}]}}"#,
        ))
        .expect_err("bad");
        assert_eq!(e.path, "payments[1].quantity");
        // Only the field's own singular name unwraps.
        assert!(decode::<Doc>(&json(r#"{"id": 1, "payments": {"line": {}}}"#)).is_err());
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let d: Doc = decode(&json(
            r#"{"id": 1, "brand-new-field": {"deep": [1, 2]}, "created-by": null}"#,
        ))
        .expect("decodes");
        assert_eq!(d.id, 1);
    }

    #[test]
    fn a_required_record_cannot_be_null() {
        let e = decode::<Doc>(&Value::Null).expect_err("null");
        assert_eq!(e.to_string(), "at .: expected an object, found null");
    }

    #[test]
    fn maps_and_values_decode_from_the_tree() {
        use std::collections::BTreeMap;
        let m: BTreeMap<String, Value> =
            decode(&json(r#"{"a": 1, "b": "x", "c": null}"#)).expect("map");
        assert_eq!(m.get("a"), Some(&Value::Int(1)));
        assert_eq!(m.get("c"), Some(&Value::Null));
        let m: BTreeMap<String, Value> = decode(&Value::Null).expect("null map");
        assert!(m.is_empty());
        let v: Value = decode(&json(r#"{"a": [true, 2]}"#)).expect("value");
        assert_eq!(v, json(r#"{"a": [true, 2]}"#));
        serde::de::IgnoredAny::deserialize(ValueDeserializer::new(&json("[1]"))).expect("ignored");
    }

    #[test]
    fn parse_drops_the_xml_root_and_reports_syntax_errors() {
        let v = parse(
            Format::Xml,
            b"<invoice-header><id type=\"integer\">7</id></invoice-header>",
        )
        .expect("xml");
        assert_eq!(v, Value::Object(Object::new().with("id", 7i64)));
        let e = parse(Format::Json, b"{\"id\": ").expect_err("truncated");
        assert_eq!(e.path, ".");
        assert!(e.message.starts_with("unreadable JSON body: "), "{e}");
        let e = parse(Format::Xml, b"<a><b></a>").expect_err("mismatched");
        assert!(e.message.starts_with("unreadable XML body: "), "{e}");
    }

    #[test]
    fn encode_writes_both_formats_and_reads_back() {
        let v = Value::Object(
            Object::new()
                .with("exported", true)
                .with("amount-paid", Value::Decimal(dec("49.00"))),
        );
        assert_eq!(
            encode(Format::Json, "invoice-header", &v),
            br#"{"exported":true,"amount-paid":"49.00"}"#
        );
        let xml = encode(Format::Xml, "invoice-header", &v);
        let text = String::from_utf8(xml.clone()).expect("utf8");
        assert!(text.contains("<invoice-header>"), "{text}");
        assert_eq!(parse(Format::Xml, &xml).expect("reads back"), v);
    }

    #[test]
    fn list_items_accepts_lists_null_and_the_no_results_envelope() {
        assert_eq!(
            list_items(json("[{\"id\": 1}, {\"id\": 2}]"))
                .expect("list")
                .len(),
            2
        );
        assert!(list_items(json("[ ]")).expect("empty").is_empty());
        assert!(list_items(Value::Null).expect("null").is_empty());
        let none = parse(
            Format::Xml,
            b"<errors><error>No results match your search criteria.</error></errors>",
        )
        .expect("xml");
        assert!(list_items(none).expect("no results").is_empty());
        let e = list_items(json(r#"{"id": 1}"#)).expect_err("object");
        assert_eq!(
            e.to_string(),
            "at .: expected a list of records, found an object with keys [id]"
        );
    }
}
