//! The messages in Coupa's error bodies, whatever the envelope.
//!
//! Coupa answers a failed request with one of:
//! - XML `<errors><error>message</error>...</errors>`, messages possibly in CDATA (read by
//!   [`super::parse`] as a list of texts, or one text);
//! - JSON `{"errors": {"<resource>": ["msg", ...]}}`, sometimes with `"warnings": null`;
//! - JSON `{"errors": ["msg"]}` or `{"errors": "msg"}` (seen in clients and older releases);
//! - OAuth's `{"error": "invalid_client", "error_description": "..."}`.
//!
//! Messages from the keyed JSON form are returned **without** their key. The key names the
//! resource (`user`, `account`, `invoice_header`, `base`), not the field: Rails-style full
//! messages already name the field ("Login has already been taken"), and without the prefix the
//! JSON and XML bodies of the same failure give the same messages, which Coupa's own paired
//! samples (`user-create-errors-400.json` / `-cdata.xml`) show, so logs and alerts do not depend
//! on the configured format. OAuth errors keep their code: `invalid_client: Client
//! authentication failed`.

use coupa_doc::Value;

/// Coupa's answer to a query that matched nothing, sent in XML with status 404.
pub const NO_RESULTS: &str = "No results match your search criteria.";

/// Every message in an error body, in document order; empty if the body has none.
pub fn error_messages(v: &Value) -> Vec<String> {
    match v {
        Value::Object(o) => {
            if let Some(errors) = o.get("errors") {
                return texts(errors);
            }
            if let Some(code) = o.get("error").and_then(message_text) {
                // OAuth 2 (RFC 6749 section 5.2).
                return vec![match o.get("error-description").and_then(message_text) {
                    Some(description) => format!("{code}: {description}"),
                    None => code,
                }];
            }
            // `<errors>` with children other than `<error>` (kept as an object by the reader),
            // or an unknown envelope: whatever messages it holds.
            o.iter()
                .filter(|(k, _)| !matches!(*k, "warnings" | "status"))
                .flat_map(|(_, v)| texts(v))
                .collect()
        }
        other => texts(other),
    }
}

/// Whether a body is Coupa's "No results match your search criteria." envelope: an empty list,
/// not a failure. Cheap on a real list: it looks no further than the first item.
pub fn is_no_results(v: &Value) -> bool {
    let is_it = |m: &Value| {
        matches!(m, Value::Text(t)
            if t.trim().trim_end_matches('.').eq_ignore_ascii_case(NO_RESULTS.trim_end_matches('.')))
    };
    match v {
        Value::Array(items) => items.len() == 1 && is_it(&items[0]),
        Value::Text(_) => is_it(v),
        Value::Object(o) if o.contains_key("errors") => {
            let messages = error_messages(v);
            messages.len() == 1 && is_it(&Value::Text(messages[0].clone()))
        }
        _ => false,
    }
}

/// The messages a value holds: one per text, lists flattened, keyed maps read value by value.
pub(crate) fn texts(v: &Value) -> Vec<String> {
    let mut out = Vec::new();
    collect(v, &mut out);
    out
}

fn collect(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| collect(i, out)),
        Value::Object(o) => match message_text(v) {
            Some(m) => out.push(m),
            // `{"user": [...], "account": [...]}`: the messages of every key, keys dropped.
            None => o.iter().for_each(|(_, v)| collect(v, out)),
        },
        other => out.extend(message_text(other)),
    }
}

/// One message from one value: trimmed text, a rendered scalar, or the message field of an
/// object (`message`, `error`, `field-error`, ...). `None` for blanks and other objects.
pub(crate) fn message_text(v: &Value) -> Option<String> {
    match v {
        Value::Null | Value::Array(_) => None,
        Value::Text(t) => Some(t.trim().to_owned()).filter(|t| !t.is_empty()),
        Value::Object(o) => [
            "message",
            "full-message",
            "error-message",
            "field-error",
            "error",
            "description",
        ]
        .iter()
        .find_map(|k| o.get(k).and_then(message_text)),
        scalar => Some(scalar.to_plain_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Format, parse};

    fn json(s: &str) -> Value {
        parse(Format::Json, s.as_bytes()).expect("test JSON")
    }

    fn xml(s: &str) -> Value {
        parse(Format::Xml, s.as_bytes()).expect("test XML")
    }

    #[test]
    fn every_envelope_gives_its_messages() {
        let cases: &[(Value, &[&str])] = &[
            (
                xml("<errors><error>Segment 1 - Cost Center can't be blank.</error></errors>"),
                &["Segment 1 - Cost Center can't be blank."],
            ),
            (
                xml(
                    "<errors>\n<error>\n<![CDATA[Login has already been taken]]>\n</error>\n\
                     <error><![CDATA[Email has already been taken]]></error></errors>",
                ),
                &[
                    "Login has already been taken",
                    "Email has already been taken",
                ],
            ),
            (
                json(
                    r#"{"errors": {"user": ["Login has already been taken", "Email has already been taken"]}, "warnings": null}"#,
                ),
                &[
                    "Login has already been taken",
                    "Email has already been taken",
                ],
            ),
            (
                json(r#"{"errors": {"user": ["a"], "account": ["b"]}}"#),
                &["a", "b"],
            ),
            (json(r#"{"errors": ["a", "b"]}"#), &["a", "b"]),
            (json(r#"{"errors": "a"}"#), &["a"]),
            (
                json(r#"{"errors": [{"message": "a"}, {"error": "b"}]}"#),
                &["a", "b"],
            ),
            (
                json(
                    r#"{"error": "invalid_client", "error_description": "Client authentication failed"}"#,
                ),
                &["invalid_client: Client authentication failed"],
            ),
            (json(r#"{"error": "invalid_grant"}"#), &["invalid_grant"]),
            (json(r#"{"errors": {"base": []}, "warnings": null}"#), &[]),
            (Value::Null, &[]),
        ];
        for (v, want) in cases {
            assert_eq!(error_messages(v), *want, "{v:?}");
        }
    }

    #[test]
    fn no_results_is_recognised_only_as_an_envelope() {
        assert!(is_no_results(&xml(
            "<errors><error>No results match your search criteria.</error></errors>"
        )));
        assert!(is_no_results(&json(
            r#"{"errors": {"invoice_header": ["No results match your search criteria."]}}"#
        )));
        assert!(!is_no_results(&xml(
            "<errors><error>Segment 1 - Cost Center can't be blank.</error></errors>"
        )));
        assert!(!is_no_results(&json(r#"[{"id": 1}]"#)));
        assert!(!is_no_results(&json("[]")));
    }
}
