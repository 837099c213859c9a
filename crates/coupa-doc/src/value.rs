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
    fn empty_text_reads_as_none() {
        assert_eq!(Value::Text(String::new()).as_str(), None);
        assert_eq!(Value::Text("a".into()).as_str(), Some("a"));
    }
}
