//! Coupa JSON: decimals as strings, datetimes with their offset, keys with dashes.

use chrono::{DateTime, FixedOffset};
use rust_decimal::Decimal;
use serde::ser::{SerializeMap, SerializeSeq};
use std::str::FromStr;

use crate::value::{Object, Value};
use crate::{DocError, MAX_DEPTH, names};

/// Reads a JSON document. Keys are canonicalised (`amount_paid` -> `amount-paid`); numbers
/// become [`Value::Int`] or, exactly, [`Value::Decimal`]; strings stay text (callers decide
/// whether a string is a date or an amount, as Coupa does per field).
pub fn parse(bytes: &[u8]) -> Result<Value, DocError> {
    let raw: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| DocError::Json(e.to_string()))?;
    convert(raw, 0)
}

fn convert(v: serde_json::Value, depth: usize) -> Result<Value, DocError> {
    if depth > MAX_DEPTH {
        return Err(DocError::TooDeep(MAX_DEPTH));
    }
    Ok(match v {
        serde_json::Value::Null => Value::Null,
        serde_json::Value::Bool(b) => Value::Bool(b),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) => Value::Int(i),
            None => {
                let text = n.to_string();
                Decimal::from_str(&text)
                    .or_else(|_| Decimal::from_scientific(&text))
                    .map(Value::Decimal)
                    .map_err(|_| DocError::Json(format!("number {text} is out of range")))?
            }
        },
        serde_json::Value::String(s) => Value::Text(s),
        serde_json::Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|i| convert(i, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        serde_json::Value::Object(map) => {
            let mut o = Object::with_capacity(map.len());
            for (k, v) in map {
                o.insert(names::canonical(&k).into_owned(), convert(v, depth + 1)?);
            }
            Value::Object(o)
        }
    })
}

/// Writes compact JSON, as Coupa's API does.
pub fn to_vec(v: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    // Writing to a Vec cannot fail and Value's Serialize impl has no error path.
    let _ = serde_json::to_writer(&mut out, v);
    out
}

/// Writes indented JSON, for people.
pub fn to_vec_pretty(v: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    let _ = serde_json::to_writer_pretty(&mut out, v);
    out
}

/// `2020-06-01T09:42:43-07:00`: seconds precision with the offset, as Coupa writes datetimes.
pub fn format_datetime(d: &DateTime<FixedOffset>) -> String {
    d.format("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

impl serde::Serialize for Value {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => s.serialize_unit(),
            Value::Bool(b) => s.serialize_bool(*b),
            Value::Int(i) => s.serialize_i64(*i),
            Value::Decimal(d) => s.collect_str(d),
            Value::DateTime(d) => s.serialize_str(&format_datetime(d)),
            Value::Text(t) => s.serialize_str(t),
            Value::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for i in items {
                    seq.serialize_element(i)?;
                }
                seq.end()
            }
            Value::Object(o) => o.serialize(s),
        }
    }
}

impl serde::Serialize for Object {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.len()))?;
        for (k, v) in self.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_read_exactly() {
        let v = parse(br#"{"a": 199.98, "b": 7, "c": 0.1, "d": 12345678901234567890.123456789}"#)
            .expect("parses");
        let o = v.as_object().expect("object");
        assert_eq!(
            o.get("a"),
            Some(&Value::Decimal(Decimal::from_str("199.98").expect("d")))
        );
        assert_eq!(o.get("b"), Some(&Value::Int(7)));
        assert_eq!(
            o.get("c"),
            Some(&Value::Decimal(Decimal::from_str("0.1").expect("d")))
        );
        assert_eq!(
            o.get("d")
                .and_then(Value::as_decimal)
                .map(|d| d.to_string()),
            Some("12345678901234567890.123456789".to_owned())
        );
    }

    #[test]
    fn writes_decimals_as_strings_and_keeps_key_order() {
        let v = Value::Object(
            Object::new()
                .with("id", Value::Int(5))
                .with("total", Value::Decimal(Decimal::new(49900, 2)))
                .with("exported", false)
                .with("payment-date", Value::Null),
        );
        assert_eq!(
            String::from_utf8(to_vec(&v)).expect("utf8"),
            r#"{"id":5,"total":"499.00","exported":false,"payment-date":null}"#
        );
    }

    #[test]
    fn keys_are_canonicalised() {
        let v = parse(br#"{"amount_paid": "1.00"}"#).expect("parses");
        assert!(v.as_object().expect("obj").keys().eq(["amount-paid"]));
    }

    #[test]
    fn deep_nesting_is_refused() {
        let doc = "[".repeat(100) + &"]".repeat(100);
        assert!(parse(doc.as_bytes()).is_err());
    }
}
