//! The document tree.

use chrono::{DateTime, FixedOffset};
use rust_decimal::Decimal;

use crate::names;

/// One node of a Coupa document. Scalars keep the type Coupa gives them in XML
/// (`integer`, `decimal`, `boolean`, `datetime`); text is everything else.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Int(i64),
    Decimal(Decimal),
    DateTime(DateTime<FixedOffset>),
    Text(String),
    Array(Vec<Value>),
    Object(Object),
}

/// An object with its keys in insertion order (Coupa's order is stable and readers diff it).
/// Keys are stored in canonical form: lower case, dashes (see [`names::canonical`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Object {
    entries: Vec<(String, Value)>,
}

impl Object {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_capacity(n: usize) -> Self {
        Self {
            entries: Vec::with_capacity(n),
        }
    }

    /// Looks a key up in any spelling (`amount_paid`, `amount-paid`, `Amount-Paid`).
    pub fn get(&self, key: &str) -> Option<&Value> {
        let key = names::canonical(key);
        self.entries
            .iter()
            .find(|(k, _)| *k == *key)
            .map(|(_, v)| v)
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut Value> {
        let key = names::canonical(key);
        self.entries
            .iter_mut()
            .find(|(k, _)| *k == *key)
            .map(|(_, v)| v)
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Sets `key`, replacing an existing value in place so the key keeps its position.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<Value>) {
        let key = key.into();
        let key = match names::canonical(&key) {
            std::borrow::Cow::Borrowed(_) => key,
            std::borrow::Cow::Owned(k) => k,
        };
        let value = value.into();
        match self.entries.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.entries.push((key, value)),
        }
    }

    /// Builder form of [`Object::insert`].
    pub fn with(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.insert(key, value);
        self
    }

    pub fn remove(&mut self, key: &str) -> Option<Value> {
        let key = names::canonical(key);
        let pos = self.entries.iter().position(|(k, _)| *k == *key)?;
        Some(self.entries.remove(pos).1)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.entries.iter().map(|(k, _)| k.as_str())
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Follows a path of keys through nested objects, starting at this object.
    pub fn pointer(&self, path: &[&str]) -> Option<&Value> {
        let (first, rest) = path.split_first()?;
        let v = self.get(first)?;
        if rest.is_empty() {
            Some(v)
        } else {
            v.pointer(rest)
        }
    }

    /// Keeps the entries for which `keep` answers true.
    pub fn retain(&mut self, mut keep: impl FnMut(&str, &Value) -> bool) {
        self.entries.retain(|(k, v)| keep(k, v));
    }

    /// Pushes without looking for an existing key. Readers use it: they build objects from
    /// documents whose keys are already unique, and a lookup per key would make reading
    /// quadratic in the number of fields.
    pub(crate) fn push_unchecked(&mut self, key: String, value: Value) {
        self.entries.push((key, value));
    }
}

impl IntoIterator for Object {
    type Item = (String, Value);
    type IntoIter = std::vec::IntoIter<(String, Value)>;
    fn into_iter(self) -> Self::IntoIter {
        self.entries.into_iter()
    }
}

impl FromIterator<(String, Value)> for Object {
    fn from_iter<T: IntoIterator<Item = (String, Value)>>(iter: T) -> Self {
        let mut o = Object::new();
        for (k, v) in iter {
            o.insert(k, v);
        }
        o
    }
}

impl Value {
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn as_object(&self) -> Option<&Object> {
        match self {
            Value::Object(o) => Some(o),
            _ => None,
        }
    }

    pub fn as_object_mut(&mut self) -> Option<&mut Object> {
        match self {
            Value::Object(o) => Some(o),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Value]> {
        match self {
            Value::Array(a) => Some(a),
            _ => None,
        }
    }

    /// Text of a text node; `None` for other kinds and for the empty string, which Coupa
    /// uses interchangeably with nil.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Text(s) if !s.is_empty() => Some(s),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Text(s) => s.trim().parse().ok(),
            Value::Decimal(d) if d.fract().is_zero() => i64::try_from(*d).ok(),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            Value::Text(s) => crate::lenient::parse_bool(s),
            _ => None,
        }
    }

    pub fn as_decimal(&self) -> Option<Decimal> {
        match self {
            Value::Decimal(d) => Some(*d),
            Value::Int(i) => Some(Decimal::from(*i)),
            Value::Text(s) => crate::lenient::parse_decimal(s),
            _ => None,
        }
    }

    pub fn as_datetime(&self) -> Option<DateTime<FixedOffset>> {
        match self {
            Value::DateTime(d) => Some(*d),
            Value::Text(s) => crate::lenient::parse_datetime(s),
            _ => None,
        }
    }

    /// Follows a path of keys through nested objects: `v.pointer(&["supplier", "name"])`.
    pub fn pointer(&self, path: &[&str]) -> Option<&Value> {
        let mut cur = self;
        for key in path {
            cur = cur.as_object()?.get(key)?;
        }
        Some(cur)
    }

    /// The value's text as a query or a CSV cell would show it.
    pub fn to_plain_string(&self) -> String {
        match self {
            Value::Null => String::new(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Decimal(d) => d.to_string(),
            Value::DateTime(d) => crate::json::format_datetime(d),
            Value::Text(s) => s.clone(),
            Value::Array(_) | Value::Object(_) => String::new(),
        }
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}
impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Value::Int(i64::from(v))
    }
}
impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Value::Int(i64::from(v))
    }
}
impl From<Decimal> for Value {
    fn from(v: Decimal) -> Self {
        Value::Decimal(v)
    }
}
impl From<DateTime<FixedOffset>> for Value {
    fn from(v: DateTime<FixedOffset>) -> Self {
        Value::DateTime(v)
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(v)
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(v.to_owned())
    }
}
impl From<Object> for Value {
    fn from(v: Object) -> Self {
        Value::Object(v)
    }
}
impl From<Vec<Value>> for Value {
    fn from(v: Vec<Value>) -> Self {
        Value::Array(v)
    }
}
impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

/// Reads any self-describing serde format into a tree: strings stay text, integers become
/// [`Value::Int`], floats become [`Value::Decimal`] (text if no decimal can hold them), and map
/// keys are canonicalised as the JSON and XML readers do. Numbers that `serde_json` delivers in
/// its `arbitrary_precision` form are read exactly.
impl<'de> serde::Deserialize<'de> for Value {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

/// The key under which `serde_json`'s `arbitrary_precision` feature hands over a number.
const JSON_NUMBER_TOKEN: &str = "$serde_json::private::Number";

struct ValueVisitor;

impl<'de> serde::de::Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any Coupa value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(match i64::try_from(v) {
            Ok(i) => Value::Int(i),
            Err(_) => Value::Decimal(Decimal::from(v)),
        })
    }

    fn visit_i128<E>(self, v: i128) -> Result<Value, E> {
        Ok(match i64::try_from(v) {
            Ok(i) => Value::Int(i),
            Err(_) => Decimal::try_from_i128_with_scale(v, 0)
                .map_or_else(|_| Value::Text(v.to_string()), Value::Decimal),
        })
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        // `to_string` gives the shortest text that reads back as the same float, which is what
        // the sender wrote in all but contrived cases; parsing it avoids binary noise digits.
        let text = v.to_string();
        Ok(text
            .parse::<Decimal>()
            .ok()
            .or_else(|| Decimal::try_from(v).ok())
            .map_or(Value::Text(text), Value::Decimal))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Text(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::Text(v))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        serde::Deserialize::deserialize(d)
    }

    fn visit_newtype_struct<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        serde::Deserialize::deserialize(d)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut o = Object::with_capacity(map.size_hint().unwrap_or(0).min(1024));
        while let Some(key) = map.next_key::<String>()? {
            if key == JSON_NUMBER_TOKEN {
                let text: String = map.next_value()?;
                return Ok(number_from_text(text));
            }
            let value: Value = map.next_value()?;
            o.insert(key, value);
        }
        Ok(Value::Object(o))
    }
}

fn number_from_text(text: String) -> Value {
    if let Ok(i) = text.parse::<i64>() {
        return Value::Int(i);
    }
    text.parse::<Decimal>()
        .ok()
        .or_else(|| Decimal::from_scientific(&text).ok())
        .map_or(Value::Text(text), Value::Decimal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_found_in_any_spelling_and_keep_their_position() {
        let mut o = Object::new()
            .with("amount_paid", Value::Int(1))
            .with("notes", "x");
        assert_eq!(o.get("amount-paid"), Some(&Value::Int(1)));
        assert_eq!(o.get("Amount_Paid"), Some(&Value::Int(1)));
        o.insert("amount-paid", Value::Int(2));
        assert_eq!(o.keys().collect::<Vec<_>>(), ["amount-paid", "notes"]);
        assert_eq!(o.get("amount_paid"), Some(&Value::Int(2)));
        assert_eq!(o.remove("AMOUNT-PAID"), Some(Value::Int(2)));
        assert_eq!(o.len(), 1);
    }

    #[test]
    fn deserializes_from_serde_json_exactly_with_canonical_keys() {
        let v: Value = serde_json::from_str(
            r#"{"Amount_Paid": 199.98, "n": 7, "big": 12345678901234567890.5,
                "s": "x", "a": [null, true], "o": {"line_num": 1}}"#,
        )
        .expect("deserializes");
        let o = v.as_object().expect("object");
        assert!(o.keys().eq(["amount-paid", "n", "big", "s", "a", "o"]));
        assert_eq!(
            o.get("amount-paid"),
            Some(&Value::Decimal(Decimal::new(19998, 2)))
        );
        assert_eq!(o.get("n"), Some(&Value::Int(7)));
        assert_eq!(
            o.get("big")
                .and_then(Value::as_decimal)
                .map(|d| d.to_string()),
            Some("12345678901234567890.5".to_owned())
        );
        assert_eq!(o.get("s"), Some(&Value::Text("x".into())));
        assert_eq!(
            o.get("a"),
            Some(&Value::Array(vec![Value::Null, Value::Bool(true)]))
        );
        assert_eq!(v.pointer(&["o", "line-num"]), Some(&Value::Int(1)));
    }

    #[test]
    fn floats_become_decimals_without_binary_noise() {
        use serde::de::IntoDeserializer;
        let d: serde::de::value::F64Deserializer<serde::de::value::Error> =
            0.1f64.into_deserializer();
        let v = <Value as serde::Deserialize>::deserialize(d).expect("float");
        assert_eq!(v, Value::Decimal(Decimal::new(1, 1)));
        let d: serde::de::value::F64Deserializer<serde::de::value::Error> =
            f64::NAN.into_deserializer();
        let v = <Value as serde::Deserialize>::deserialize(d).expect("nan");
        assert_eq!(v, Value::Text("NaN".into()));
    }

    #[test]
    fn empty_text_reads_as_none() {
        assert_eq!(Value::Text(String::new()).as_str(), None);
        assert_eq!(Value::Text("a".into()).as_str(), Some("a"));
    }
}
