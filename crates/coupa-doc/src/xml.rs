//! Coupa XML.
//!
//! Writing follows Coupa's style: `type="integer|decimal|boolean|datetime|array"` attributes,
//! `nil="true"` for nulls, plural wrappers for lists with one singular element per item, two-space
//! indentation.
//!
//! Reading accepts what Coupa and its clients send: `datetime` and `dateTime`, `float`,
//! `nil="true"` on empty elements (and, as Coupa's own payment example does, on elements that do
//! carry a value: the value wins), CDATA, lists with or without `type="array"` (a `<payments>`
//! whose children are all `<payment>` is a list), untyped text. Only the five predefined entities
//! and character references are expanded: a DTD or any other entity is refused, so entity
//! expansion attacks have nothing to work with.

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use crate::value::{Object, Value};
use crate::{DocError, MAX_DEPTH, json, lenient, names};

/// Writes `value` as the document element `root` (e.g. `invoice-header`), with the XML
/// declaration Coupa sends.
pub fn to_string(root: &str, value: &Value) -> String {
    let mut out = String::with_capacity(1024);
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    write_element(&mut out, root, value, 0);
    out
}

/// Writes a list as Coupa does: `<invoice-headers type="array"><invoice-header>...`.
pub fn list_to_string(root: &str, items: &[Value]) -> String {
    let mut out = String::with_capacity(1024 * items.len().max(1));
    out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    write_list(&mut out, root, items, 0);
    out
}

/// Coupa's error envelope: `<errors><error>message</error>...</errors>`.
pub fn errors_to_string<S: AsRef<str>>(messages: &[S]) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<errors>\n");
    for m in messages {
        out.push_str("  <error>");
        escape_into(&mut out, m.as_ref());
        out.push_str("</error>\n");
    }
    out.push_str("</errors>\n");
    out
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

fn write_element(out: &mut String, name: &str, value: &Value, depth: usize) {
    indent(out, depth);
    let (ty, text): (Option<&str>, Option<std::borrow::Cow<'_, str>>) = match value {
        Value::Null => {
            out.push('<');
            out.push_str(name);
            out.push_str(" nil=\"true\" />\n");
            return;
        }
        Value::Array(items) => {
            write_list_body(out, name, items, depth);
            return;
        }
        Value::Object(o) => {
            if o.is_empty() {
                out.push('<');
                out.push_str(name);
                out.push_str(" />\n");
                return;
            }
            out.push('<');
            out.push_str(name);
            out.push_str(">\n");
            for (k, v) in o.iter() {
                write_element(out, k, v, depth + 1);
            }
            indent(out, depth);
            out.push_str("</");
            out.push_str(name);
            out.push_str(">\n");
            return;
        }
        Value::Bool(b) => (
            Some("boolean"),
            Some(if *b { "true" } else { "false" }.into()),
        ),
        Value::Int(i) => (Some("integer"), Some(i.to_string().into())),
        Value::Decimal(d) => (Some("decimal"), Some(d.to_string().into())),
        Value::DateTime(d) => (Some("datetime"), Some(json::format_datetime(d).into())),
        Value::Text(t) => (None, Some(t.as_str().into())),
    };
    out.push('<');
    out.push_str(name);
    if let Some(ty) = ty {
        out.push_str(" type=\"");
        out.push_str(ty);
        out.push('"');
    }
    out.push('>');
    if let Some(text) = text {
        escape_into(out, &text);
    }
    out.push_str("</");
    out.push_str(name);
    out.push_str(">\n");
}

fn write_list(out: &mut String, name: &str, items: &[Value], depth: usize) {
    indent(out, depth);
    write_list_body(out, name, items, depth);
}

fn write_list_body(out: &mut String, name: &str, items: &[Value], depth: usize) {
    out.push('<');
    out.push_str(name);
    if items.is_empty() {
        out.push_str(" type=\"array\" />\n");
        return;
    }
    out.push_str(" type=\"array\">\n");
    let item = names::singular(name);
    for v in items {
        write_element(out, &item, v, depth + 1);
    }
    indent(out, depth);
    out.push_str("</");
    out.push_str(name);
    out.push_str(">\n");
}

fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
}

/// One element being read.
struct Frame {
    name: String,
    ty: Option<String>,
    nil: bool,
    text: String,
    children: Vec<(String, Value)>,
}

impl Frame {
    fn open(e: &BytesStart<'_>, position: u64) -> Result<Self, DocError> {
        if !is_xml_name(e.name().as_ref().as_bytes()) {
            return Err(DocError::Xml {
                position,
                message: format!("<{}> is not an XML element name", e.name().as_ref()),
            });
        }
        let name = names::canonical(e.name().as_ref()).into_owned();
        let mut ty = None;
        let mut nil = false;
        for attr in e.attributes() {
            let attr = attr.map_err(|err| DocError::Xml {
                position,
                message: format!("bad attribute on <{name}>: {err}"),
            })?;
            // Only `type` and `nil` are read, whose values never need unescaping.
            let value = attr.value;
            match attr.key.as_ref() {
                "type" => ty = Some(value.to_ascii_lowercase()),
                "nil" | "xsi:nil" => nil = value.eq_ignore_ascii_case("true"),
                _ => {}
            }
        }
        Ok(Frame {
            name,
            ty,
            nil,
            text: String::new(),
            children: Vec::new(),
        })
    }

    fn close(self) -> (String, Value) {
        let Frame {
            name,
            ty,
            nil,
            text,
            children,
        } = self;
        let value = if ty.as_deref() == Some("array") {
            Value::Array(children.into_iter().map(|(_, v)| v).collect())
        } else if !children.is_empty() {
            let same_name = children.iter().all(|(k, _)| *k == children[0].0);
            if same_name && (children.len() > 1 || names::is_plural_of(&name, &children[0].0)) {
                Value::Array(children.into_iter().map(|(_, v)| v).collect())
            } else {
                let mut o = Object::with_capacity(children.len());
                for (k, v) in children {
                    if o.contains_key(&k) {
                        o.insert(k, v);
                    } else {
                        o.push_unchecked(k, v);
                    }
                }
                Value::Object(o)
            }
        } else {
            leaf(ty.as_deref(), nil, text.trim())
        };
        (name, value)
    }
}

fn leaf(ty: Option<&str>, nil: bool, text: &str) -> Value {
    if text.is_empty() {
        // `nil="true"`, `<x />` and `<x></x>` all mean "no value" in Coupa's documents.
        let _ = nil;
        return Value::Null;
    }
    let typed = match ty {
        Some("integer") => text.parse().ok().map(Value::Int),
        Some("decimal" | "float" | "double") => lenient::parse_decimal(text).map(Value::Decimal),
        Some("boolean") => lenient::parse_bool(text).map(Value::Bool),
        Some("datetime" | "date") => lenient::parse_datetime(text).map(Value::DateTime),
        _ => None,
    };
    // A value that does not match its declared type stays text, so the reader of the field can
    // say what was wrong with it instead of the whole document failing here.
    typed.unwrap_or_else(|| Value::Text(text.to_owned()))
}

/// Reads an XML document into its root element name and value.
pub fn parse(bytes: &[u8]) -> Result<(String, Value), DocError> {
    let text = std::str::from_utf8(bytes).map_err(|e| DocError::Xml {
        position: e.valid_up_to() as u64,
        message: "document is not UTF-8".into(),
    })?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<(String, Value)> = None;
    loop {
        let position = reader.buffer_position();
        let err = |message: String| DocError::Xml { position, message };
        let event = reader
            .read_event()
            .map_err(|e| err(format!("malformed XML: {e}")))?;
        match event {
            Event::Start(e) => {
                if root.is_some() {
                    return Err(err("content after the document element".into()));
                }
                if stack.len() >= MAX_DEPTH {
                    return Err(DocError::TooDeep(MAX_DEPTH));
                }
                stack.push(Frame::open(&e, position)?);
            }
            Event::Empty(e) => {
                if root.is_some() {
                    return Err(err("content after the document element".into()));
                }
                let done = Frame::open(&e, position)?.close();
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => root = Some(done),
                }
            }
            Event::End(_) => {
                let frame = stack
                    .pop()
                    .ok_or_else(|| err("closing tag without an opening one".into()))?;
                let done = frame.close();
                match stack.last_mut() {
                    Some(parent) => parent.children.push(done),
                    None => root = Some(done),
                }
            }
            Event::Text(t) => {
                let content = t.xml10_content();
                match stack.last_mut() {
                    Some(top) => top.text.push_str(&content),
                    None if content.trim().is_empty() => {}
                    None => return Err(err("text outside the document element".into())),
                }
            }
            Event::CData(c) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&c.into_inner());
                }
            }
            Event::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref() {
                    Ok(Some(c)) => c,
                    Ok(None) => match r.into_inner().as_ref() {
                        "amp" => '&',
                        "lt" => '<',
                        "gt" => '>',
                        "quot" => '"',
                        "apos" => '\'',
                        other => {
                            return Err(err(format!("entity &{other}; is not allowed")));
                        }
                    },
                    Err(e) => return Err(err(format!("bad character reference: {e}"))),
                };
                if let Some(top) = stack.last_mut() {
                    top.text.push(resolved);
                }
            }
            Event::DocType(_) => return Err(err("DOCTYPE declarations are not allowed".into())),
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if !stack.is_empty() {
        return Err(DocError::Xml {
            position: reader.buffer_position(),
            message: format!("document ends inside <{}>", stack[stack.len() - 1].name),
        });
    }
    root.ok_or(DocError::Xml {
        position: 0,
        message: "no document element".into(),
    })
}

/// An XML `Name` (XML 1.0 section 2.3; every non-ASCII character allowed): what the writer can
/// write back, so a name it could not is refused on reading.
fn is_xml_name(name: &[u8]) -> bool {
    let start = |b: u8| b.is_ascii_alphabetic() || b == b'_' || b == b':' || !b.is_ascii();
    name.first().is_some_and(|b| start(*b))
        && name
            .iter()
            .all(|b| start(*b) || b.is_ascii_digit() || *b == b'-' || *b == b'.')
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;

    #[test]
    fn reads_types_nil_and_lists() {
        let doc = br#"<?xml version="1.0" encoding="UTF-8"?>
<invoice-header>
  <id type="integer">106</id>
  <paid type="boolean">true</paid>
  <payment-date type="datetime" />
  <created-at type="dateTime">2016-10-07T06:56:43-07:00</created-at>
  <tax-rate type="float">8.25</tax-rate>
  <number nil="true" />
  <notes>a &amp; b &#65;</notes>
  <payments>
    <payment><amount-paid type="decimal" nil="true">100.23</amount-paid></payment>
  </payments>
  <tax-lines type="array" />
  <custom-fields><sap-error>false</sap-error></custom-fields>
</invoice-header>"#;
        let (root, v) = parse(doc).expect("parses");
        assert_eq!(root, "invoice-header");
        let o = v.as_object().expect("object");
        assert_eq!(o.get("id"), Some(&Value::Int(106)));
        assert_eq!(o.get("paid"), Some(&Value::Bool(true)));
        assert_eq!(o.get("payment-date"), Some(&Value::Null));
        assert!(matches!(o.get("created-at"), Some(Value::DateTime(_))));
        assert_eq!(
            o.get("tax-rate"),
            Some(&Value::Decimal(Decimal::new(825, 2)))
        );
        assert_eq!(o.get("number"), Some(&Value::Null));
        assert_eq!(o.get("notes"), Some(&Value::Text("a & b A".into())));
        let payments = o.get("payments").and_then(Value::as_array).expect("list");
        assert_eq!(
            payments[0].pointer(&["amount-paid"]),
            Some(&Value::Decimal(Decimal::new(10023, 2)))
        );
        assert_eq!(o.get("tax-lines"), Some(&Value::Array(vec![])));
        assert!(o.get("custom-fields").and_then(Value::as_object).is_some());
    }

    #[test]
    fn cdata_errors_are_trimmed() {
        let doc = b"<errors>\n<error>\n<![CDATA[Login has already been taken]]>\n</error>\n<error>x</error></errors>";
        let (root, v) = parse(doc).expect("parses");
        assert_eq!(root, "errors");
        assert_eq!(
            v,
            Value::Array(vec![
                Value::Text("Login has already been taken".into()),
                Value::Text("x".into())
            ])
        );
    }

    #[test]
    fn entities_and_doctypes_are_refused() {
        let bomb = br#"<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]><a>&lol;</a>"#;
        assert!(parse(bomb).is_err());
        assert!(parse(b"<a>&lol;</a>").is_err());
    }

    #[test]
    fn malformed_documents_name_the_position() {
        let e = parse(b"<a><b>1</a>").expect_err("mismatched");
        assert!(e.to_string().contains("byte"), "{e}");
        assert!(parse(b"<a>").is_err());
        assert!(parse(b"").is_err());
    }

    #[test]
    fn writes_coupa_style_and_reads_it_back() {
        let v = Value::Object(
            Object::new()
                .with("id", Value::Int(1))
                .with("total", Value::Decimal(Decimal::new(49900, 2)))
                .with("exported", false)
                .with("number", Value::Null)
                .with("name", "A & B <c>")
                .with(
                    "invoice-lines",
                    Value::Array(vec![Value::Object(Object::new().with("line-num", 1))]),
                )
                .with("tax-lines", Value::Array(vec![])),
        );
        let xml = to_string("invoice-header", &v);
        assert!(xml.contains(r#"<id type="integer">1</id>"#), "{xml}");
        assert!(
            xml.contains(r#"<total type="decimal">499.00</total>"#),
            "{xml}"
        );
        assert!(xml.contains(r#"<number nil="true" />"#), "{xml}");
        assert!(xml.contains(r#"<invoice-lines type="array">"#), "{xml}");
        assert!(xml.contains("<invoice-line>"), "{xml}");
        assert!(xml.contains(r#"<tax-lines type="array" />"#), "{xml}");
        let (root, back) = parse(xml.as_bytes()).expect("round trip");
        assert_eq!(root, "invoice-header");
        assert_eq!(back, v);
    }

    #[test]
    fn lists_round_trip() {
        let items = vec![
            Value::Object(Object::new().with("id", 1)),
            Value::Object(Object::new().with("id", 2)),
        ];
        let xml = list_to_string("invoice-headers", &items);
        assert!(xml.contains(r#"<invoice-headers type="array">"#));
        let (_, back) = parse(xml.as_bytes()).expect("parses");
        assert_eq!(back, Value::Array(items));
    }
}
