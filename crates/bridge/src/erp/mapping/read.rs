//! Reading what the ERP sends (payment files and pages, result files) into the canonical model.
//! Amounts are parsed from their text (never through a float); every value is trimmed, and an
//! empty one is missing.

use chrono::{DateTime, NaiveDate};
use quick_xml::events::Event;
use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::canon::{self, Doc, Kind, Shape};
use super::render::text;
use super::{
    DecimalFormat, ErpResult, FieldMap, Format, InSection, Mapping, NewErpPayment, Source,
    Transform,
};
use crate::erp::PostOutcome;

/// The values at a dotted path; a segment ending in `[]` walks the array it names.
pub(super) fn select<'a>(v: &'a Value, path: &str) -> Vec<&'a Value> {
    let mut current = vec![v];
    for segment in path.split('.') {
        let (name, each) = match segment.strip_suffix("[]") {
            Some(name) => (name, true),
            None => (segment, false),
        };
        let mut next = Vec::new();
        for c in current {
            let found = if name.is_empty() {
                Some(c)
            } else {
                c.get(name)
            };
            match found {
                Some(Value::Array(items)) if each => next.extend(items),
                Some(x) => next.push(x),
                None => {}
            }
        }
        current = next;
    }
    current
}

/// A string, number or boolean as text.
pub(super) fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(_) | Value::Number(_) | Value::Bool(_) => Some(text(v)),
        _ => None,
    }
}

/// Any value as text: scalars as they are, anything else as its JSON.
pub(super) fn any_text(v: &Value) -> String {
    scalar_text(v).unwrap_or_else(|| v.to_string())
}

/// One record of a file: where it is (`line 3`, `index 0`, `element 2`) and its values (a CSV
/// row as column -> text).
struct Record {
    at: String,
    values: Result<Value, String>,
    csv: bool,
}

pub(super) fn payments(
    mapping: &Mapping,
    bytes: &[u8],
    source: &str,
) -> Result<Vec<Result<NewErpPayment, String>>, String> {
    let section = section(mapping.payment.as_ref(), Doc::Payment);
    let records = records(Doc::Payment, &mapping.file, &section, bytes, source)?;
    Ok(records
        .into_iter()
        .map(|r| document::<NewErpPayment>(mapping, &section, Doc::Payment, r, source))
        .collect())
}

#[allow(clippy::type_complexity)]
pub(super) fn payments_page(
    mapping: &Mapping,
    body: &[u8],
    source: &str,
) -> Result<(Vec<Result<NewErpPayment, String>>, Option<String>), String> {
    let section = section(mapping.payment.as_ref(), Doc::Payment);
    if section.format != Format::Json {
        return Err(format!(
            "{source}: the payments endpoint is read as JSON, but [payment] format is {}",
            section.format.extension()
        ));
    }
    let root = json(body, source)?;
    let records = json_records(&root, section.items.as_deref(), source)?;
    let cursor = select(
        &root,
        section.next_cursor.as_deref().unwrap_or("next_cursor"),
    )
    .into_iter()
    .filter_map(scalar_text)
    .find(|c| !c.trim().is_empty());
    let payments = records
        .into_iter()
        .map(|r| document::<NewErpPayment>(mapping, &section, Doc::Payment, r, source))
        .collect();
    Ok((payments, cursor))
}

pub(super) fn results(
    mapping: &Mapping,
    bytes: &[u8],
    source: &str,
) -> Result<Vec<Result<ErpResult, String>>, String> {
    let section = section(mapping.result.as_ref(), Doc::Result);
    let records = records(Doc::Result, &mapping.file, &section, bytes, source)?;
    let mut out: Vec<Result<ErpResult, String>> = Vec::new();
    for r in records {
        let result = document::<ErpResult>(mapping, &section, Doc::Result, r, source);
        // Rejections of one invoice and action over several records: one answer.
        if let Ok(ErpResult {
            coupa_invoice_id,
            action,
            outcome: PostOutcome::Rejected { reasons },
        }) = &result
        {
            let earlier = out.iter_mut().find_map(|o| match o {
                Ok(ErpResult {
                    coupa_invoice_id: id,
                    action: a,
                    outcome: PostOutcome::Rejected { reasons },
                }) if id == coupa_invoice_id && a == action => Some(reasons),
                _ => None,
            });
            if let Some(earlier) = earlier {
                earlier.extend(reasons.iter().cloned());
                continue;
            }
        }
        out.push(result);
    }
    Ok(out)
}

/// The configured section, or the canonical JSON.
fn section(configured: Option<&InSection>, doc: Doc) -> InSection {
    match configured {
        Some(s) => s.clone(),
        None => InSection {
            format: Format::Json,
            items: None,
            next_cursor: None,
            delimiter: b',',
            fields: identity(canon::shape_of(doc), 0),
        },
    }
}

/// Every canonical field under its own name.
pub(super) fn identity(shape: &Shape, line: usize) -> Vec<FieldMap> {
    shape
        .fields
        .iter()
        .filter(|f| f.kind != Kind::List)
        .map(|f| FieldMap {
            name: f.name.clone(),
            line,
            source: Source::From(f.name.clone()),
            transform: Transform::None,
            default: None,
            explicit: false,
        })
        .collect()
}

fn json(bytes: &[u8], source: &str) -> Result<Value, String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    serde_json::from_slice(bytes).map_err(|e| format!("{source}: not valid JSON: {e}"))
}

fn json_records(root: &Value, items: Option<&str>, source: &str) -> Result<Vec<Record>, String> {
    let values: Vec<&Value> = match items {
        Some(path) => {
            let found = select(root, path);
            if found.is_empty() {
                return Err(format!(
                    "{source}: no '{path}' (the mapping's items) in the file"
                ));
            }
            found
                .into_iter()
                .flat_map(|v| match v {
                    Value::Array(items) => items.iter().collect::<Vec<_>>(),
                    Value::Null => Vec::new(),
                    other => vec![other],
                })
                .collect()
        }
        None => match root {
            Value::Array(items) => items.iter().collect(),
            Value::Object(o) => match o.get("items") {
                Some(Value::Array(items)) => items.iter().collect(),
                _ => vec![root],
            },
            other => {
                return Err(format!(
                    "{source}: expected an object, an array of objects or {{\"items\": [...]}}, \
                     found {}",
                    kind_of(other)
                ));
            }
        },
    };
    Ok(values
        .into_iter()
        .enumerate()
        .map(|(i, v)| Record {
            at: format!("index {i}"),
            values: match v {
                Value::Object(_) => Ok(v.clone()),
                other => Err(format!("expected an object, found {}", kind_of(other))),
            },
            csv: false,
        })
        .collect())
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn records(
    doc: Doc,
    file: &str,
    section: &InSection,
    bytes: &[u8],
    source: &str,
) -> Result<Vec<Record>, String> {
    match section.format {
        Format::Json => json_records(&json(bytes, source)?, section.items.as_deref(), source),
        Format::Csv => csv_records(doc, file, section, bytes, source),
        Format::Xml => {
            let root = xml(bytes, source)?;
            xml_records(&root, section.items.as_deref(), source)
        }
    }
}

fn csv_records(
    doc: Doc,
    file: &str,
    section: &InSection,
    bytes: &[u8],
    source: &str,
) -> Result<Vec<Record>, String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(section.delimiter)
        .has_headers(true)
        .from_reader(bytes);
    let headers: Vec<String> = reader
        .headers()
        .map_err(|e| format!("{source}: line 1: the header row cannot be read: {e}"))?
        .iter()
        .map(|h| h.trim().to_owned())
        .collect();
    for f in &section.fields {
        if let Source::From(column) = &f.source
            && f.default.is_none()
            && !headers.contains(column)
        {
            let required = canon::shape_of(doc)
                .field(&f.name)
                .is_some_and(|c| c.required);
            if f.explicit || required {
                return Err(format!(
                    "{source}: line 1: no column '{column}' (for {}, {file}:{}); the columns \
                     are: {}",
                    f.name,
                    f.line,
                    headers.join(", ")
                ));
            }
        }
    }
    let mut out = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        let line = reader.position().line() + 1;
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record.position().map_or(line, |p| p.line());
                if record.iter().all(|c| c.trim().is_empty()) {
                    continue;
                }
                let mut values = Map::new();
                for (h, cell) in headers.iter().zip(record.iter()) {
                    values.insert(h.clone(), Value::String(cell.to_owned()));
                }
                out.push(Record {
                    at: format!("line {line}"),
                    values: Ok(Value::Object(values)),
                    csv: true,
                });
            }
            Err(e) => {
                let line = e.position().map_or(line, |p| p.line());
                let why = match e.kind() {
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => format!("{len} fields where the header has {expected_len}"),
                    csv::ErrorKind::Utf8 { .. } => "not UTF-8 text".to_owned(),
                    _ => e.to_string(),
                };
                let fatal = !matches!(
                    e.kind(),
                    csv::ErrorKind::UnequalLengths { .. } | csv::ErrorKind::Utf8 { .. }
                );
                if fatal {
                    return Err(format!("{source}: line {line}: {why}"));
                }
                out.push(Record {
                    at: format!("line {line}"),
                    values: Err(why),
                    csv: true,
                });
            }
        }
    }
    Ok(out)
}

/// An XML element as JSON: a leaf is its text; otherwise an object of its attributes (`@name`)
/// and children (repeated names become arrays).
struct Element {
    name: String,
    attributes: Vec<(String, String)>,
    children: Vec<Element>,
    text: String,
}

impl Element {
    fn into_value(self) -> Value {
        if self.children.is_empty() && self.attributes.is_empty() {
            return Value::String(self.text);
        }
        let mut map = Map::new();
        for (k, v) in self.attributes {
            map.insert(format!("@{k}"), Value::String(v));
        }
        if !self.text.trim().is_empty() {
            map.insert("#text".into(), Value::String(self.text));
        }
        for child in self.children {
            let name = child.name.clone();
            let v = child.into_value();
            match map.get_mut(&name) {
                Some(Value::Array(items)) => items.push(v),
                Some(existing) => {
                    let first = existing.take();
                    *existing = Value::Array(vec![first, v]);
                }
                None => {
                    map.insert(name, v);
                }
            }
        }
        Value::Object(map)
    }
}

/// Deeper is no ERP's answer; the tree is walked recursively.
const MAX_XML_DEPTH: usize = 64;

/// Parses a document, refusing DOCTYPE and entities other than XML's five and character
/// references (no entity expansion, no external entities).
fn xml(bytes: &[u8], source: &str) -> Result<Element, String> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = std::str::from_utf8(bytes)
        .map_err(|e| format!("{source}: not UTF-8 XML (byte {})", e.valid_up_to()))?;
    let mut reader = quick_xml::Reader::from_str(text);
    let line = |at: u64| {
        let at = usize::try_from(at).unwrap_or(text.len()).min(text.len());
        text.as_bytes()[..at]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    };
    let mut stack: Vec<Element> = Vec::new();
    let mut root = None;
    let open = |e: &quick_xml::events::BytesStart<'_>, at: u64| -> Result<Element, String> {
        let name = e.local_name().as_ref().to_owned();
        let mut attributes = Vec::new();
        for a in e.attributes() {
            let a = a.map_err(|err| format!("{source}: line {}: {err}", line(at)))?;
            let key = a.key.local_name().as_ref().to_owned();
            if a.key.as_ref().starts_with("xmlns") {
                continue;
            }
            let value = a
                .normalized_value(quick_xml::XmlVersion::Explicit1_0)
                .map_err(|err| format!("{source}: line {}: {err}", line(at)))?;
            attributes.push((key, value.into_owned()));
        }
        Ok(Element {
            name,
            attributes,
            children: Vec::new(),
            text: String::new(),
        })
    };
    loop {
        let at = reader.buffer_position();
        let event = reader
            .read_event()
            .map_err(|e| format!("{source}: line {}: {e}", line(reader.error_position())))?;
        match event {
            Event::DocType(_) => {
                return Err(format!(
                    "{source}: line {}: a DOCTYPE is refused (no DTDs or entities)",
                    line(at)
                ));
            }
            Event::Start(e) => {
                if stack.len() >= MAX_XML_DEPTH {
                    return Err(format!(
                        "{source}: line {}: elements nested deeper than {MAX_XML_DEPTH}",
                        line(at)
                    ));
                }
                stack.push(open(&e, at)?);
            }
            Event::Empty(e) => {
                let el = open(&e, at)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None if root.is_none() => root = Some(el),
                    None => return Err(format!("{source}: line {}: a second root", line(at))),
                }
            }
            Event::End(_) => {
                let Some(el) = stack.pop() else {
                    return Err(format!("{source}: line {}: unexpected end tag", line(at)));
                };
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None if root.is_none() => root = Some(el),
                    None => return Err(format!("{source}: line {}: a second root", line(at))),
                }
            }
            Event::Text(t) => {
                if let Some(el) = stack.last_mut() {
                    el.text.push_str(&t.xml10_content());
                }
            }
            Event::CData(t) => {
                if let Some(el) = stack.last_mut() {
                    el.text.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                let resolved = if r.is_char_ref() {
                    r.resolve_char_ref().ok().flatten()
                } else {
                    match r.xml10_content().as_ref() {
                        "lt" => Some('<'),
                        "gt" => Some('>'),
                        "amp" => Some('&'),
                        "apos" => Some('\''),
                        "quot" => Some('"'),
                        _ => None,
                    }
                };
                let Some(c) = resolved else {
                    return Err(format!(
                        "{source}: line {}: the entity &{}; is refused (only XML's own and \
                         character references)",
                        line(at),
                        r.xml10_content()
                    ));
                };
                if let Some(el) = stack.last_mut() {
                    el.text.push(c);
                }
            }
            Event::Eof => break,
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
        }
    }
    if !stack.is_empty() {
        return Err(format!("{source}: the document ends inside an element"));
    }
    root.ok_or_else(|| format!("{source}: no root element"))
}

fn xml_records(root: &Element, items: Option<&str>, source: &str) -> Result<Vec<Record>, String> {
    let values: Vec<Value> = match items {
        None => root
            .children
            .iter()
            .map(|c| clone_element(c).into_value())
            .collect(),
        Some(path) => {
            let root = clone_element(root).into_value();
            let found: Vec<Value> = select(&root, path).into_iter().cloned().collect();
            if found.is_empty() {
                return Err(format!(
                    "{source}: no '{path}' (the mapping's items) in the file"
                ));
            }
            found
                .into_iter()
                .flat_map(|v| match v {
                    Value::Array(items) => items,
                    other => vec![other],
                })
                .collect()
        }
    };
    Ok(values
        .into_iter()
        .enumerate()
        .map(|(i, v)| Record {
            at: format!("element {}", i + 1),
            values: Ok(v),
            csv: false,
        })
        .collect())
}

fn clone_element(e: &Element) -> Element {
    Element {
        name: e.name.clone(),
        attributes: e.attributes.clone(),
        children: e.children.iter().map(clone_element).collect(),
        text: e.text.clone(),
    }
}

/// One record as a canonical document.
fn document<T: DeserializeOwned>(
    mapping: &Mapping,
    section: &InSection,
    doc: Doc,
    record: Record,
    source: &str,
) -> Result<T, String> {
    let at = &record.at;
    let values = record
        .values
        .map_err(|why| format!("{source}, {at}: {why}"))?;
    let shape = canon::shape_of(doc);
    let mut out = Map::new();
    for f in &section.fields {
        let Some(canonical) = shape.field(&f.name) else {
            continue;
        };
        let erp = match &f.source {
            Source::From(name) if f.explicit => format!("from '{name}', "),
            Source::From(_) => String::new(),
            Source::Const(_) => String::new(),
        };
        let place = if mapping.file.is_empty() || !f.explicit {
            erp.trim_end_matches(", ").to_owned()
        } else {
            format!("{erp}{}:{}", mapping.file, f.line)
        };
        let fail = |why: String| {
            if place.is_empty() {
                format!("{source}, {at}: {}: {why}", f.name)
            } else {
                format!("{source}, {at}: {} ({place}): {why}", f.name)
            }
        };
        let v = value(f, &values, record.csv).map_err(fail)?;
        let v = match v {
            Value::Null if canonical.required => return Err(fail("missing".into())),
            Value::Null => continue,
            v => conform(&canonical.kind, v).map_err(fail)?,
        };
        out.insert(f.name.clone(), v);
    }
    if doc == Doc::Result
        && out.get("outcome").and_then(Value::as_str) == Some("rejected")
        && !out.contains_key("reasons")
    {
        out.insert("reasons".into(), Value::Array(Vec::new()));
    }
    serde_json::from_value(Value::Object(out)).map_err(|e| format!("{source}, {at}: {e}"))
}

/// The canonical value of one field of a record: looked up, defaulted, transformed.
fn value(f: &FieldMap, record: &Value, csv: bool) -> Result<Value, String> {
    let raw = match &f.source {
        Source::Const(v) => return Ok(v.clone()),
        Source::From(name) if csv => record.get(name).cloned().unwrap_or(Value::Null),
        Source::From(path) => {
            let mut found: Vec<Value> = select(record, path).into_iter().cloned().collect();
            match found.len() {
                0 => Value::Null,
                1 => found.remove(0),
                _ => Value::Array(found),
            }
        }
    };
    let raw = match raw {
        Value::String(s) if s.trim().is_empty() => Value::Null,
        Value::String(s) => Value::String(s.trim().to_owned()),
        other => other,
    };
    if raw.is_null() {
        return Ok(f.default.clone().unwrap_or(Value::Null));
    }
    let Some(t) = scalar_text(&raw) else {
        return match f.transform {
            Transform::None => Ok(raw),
            _ => Err(format!("expected one value, found {}", kind_of(&raw))),
        };
    };
    match &f.transform {
        Transform::None => Ok(raw),
        Transform::Date(pattern) => NaiveDate::parse_from_str(&t, pattern)
            .map(|d| Value::String(d.format("%Y-%m-%d").to_string()))
            .map_err(|_| format!("'{t}' is not a date written \"{pattern}\"")),
        Transform::Decimal(format) => parse_decimal(&t, format)
            .map(|d| Value::String(d.to_string()))
            .map_err(|why| format!("'{t}' {why}")),
        Transform::Map(map) => match map.iter().find(|(k, _)| *k == t) {
            Some((_, v)) => Ok(v.clone()),
            None => f.default.clone().ok_or_else(|| {
                format!(
                    "no mapping for '{t}' (the map knows {})",
                    canon::quoted(&map.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>())
                )
            }),
        },
    }
}

const PLAIN: DecimalFormat = DecimalFormat {
    places: None,
    point: '.',
    grouping: None,
};

/// A decimal from its text in the ERP's format: digits, the `point`, optional `grouping`
/// characters, a leading or (SAP style) trailing minus. Exact: no float on the way; more
/// decimals than `places` are refused rather than rounded.
pub(super) fn parse_decimal(text: &str, f: &DecimalFormat) -> Result<Decimal, String> {
    let t = text.trim();
    let (negative, t) = match (t.strip_prefix('-'), t.strip_suffix('-')) {
        (Some(rest), _) => (true, rest),
        (None, Some(rest)) => (true, rest),
        (None, None) => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let mut plain = String::with_capacity(t.len() + 1);
    if negative {
        plain.push('-');
    }
    let mut points = 0;
    for c in t.chars() {
        if c.is_ascii_digit() {
            plain.push(c);
        } else if c == f.point {
            points += 1;
            plain.push('.');
        } else if Some(c) == f.grouping {
        } else {
            return Err(format!(
                "is not a decimal (digits and '{}' as the decimal point{})",
                f.point,
                f.grouping
                    .map(|g| format!(", '{g}' grouping"))
                    .unwrap_or_default()
            ));
        }
    }
    if let Some(g) = f.grouping
        && t.contains(g)
    {
        // Grouping only in the integer part, every three digits: "1.234.50" is not 123450.
        let int = t.split(f.point).next().unwrap_or_default();
        let groups: Vec<&str> = int.split(g).collect();
        let fine = t.split(f.point).nth(1).is_none_or(|frac| !frac.contains(g))
            && groups
                .first()
                .is_some_and(|first| (1..=3).contains(&first.len()))
            && groups[1..].iter().all(|group| group.len() == 3);
        if !fine {
            return Err(format!(
                "is not a decimal ('{g}' groups the integer digits by three, '{}' is the \
                 decimal point)",
                f.point
            ));
        }
    }
    if points > 1 || !plain.chars().any(|c| c.is_ascii_digit()) {
        return Err(format!(
            "is not a decimal (digits and '{}' as the decimal point)",
            f.point
        ));
    }
    let d = Decimal::from_str_exact(&plain).map_err(|e| format!("is not a decimal: {e}"))?;
    if let Some(places) = f.places
        && d.scale() > places
    {
        return Err(format!("has more than {places} decimals"));
    }
    Ok(d)
}

/// A value as the canonical field's kind wants it.
pub(super) fn conform(kind: &Kind, v: Value) -> Result<Value, String> {
    let t = scalar_text(&v);
    let need_scalar = || format!("expected {}, found {}", kind.describe(), kind_of(&v));
    match kind {
        Kind::Int => match &v {
            Value::Number(n) if n.as_i64().is_some() => Ok(v),
            _ => {
                let t = t.ok_or_else(need_scalar)?;
                t.parse::<i64>()
                    .map(Value::from)
                    .map_err(|_| format!("'{t}' is not an integer"))
            }
        },
        Kind::Bool => match (&v, t.as_deref()) {
            (Value::Bool(_), _) => Ok(v),
            (_, Some("true")) => Ok(Value::Bool(true)),
            (_, Some("false")) => Ok(Value::Bool(false)),
            (_, Some(t)) => Err(format!(
                "'{t}' is not true or false (map the ERP's values, e.g. map = {{ J = true, N = \
                 false }})"
            )),
            _ => Err(need_scalar()),
        },
        Kind::Decimal => {
            let t = t.ok_or_else(need_scalar)?;
            parse_decimal(&t, &PLAIN)
                .map(|d| Value::String(d.to_string()))
                .map_err(|why| {
                    format!("'{t}' {why}; for another format give decimal = {{ point = \",\" }}")
                })
        }
        Kind::Date => {
            let t = t.ok_or_else(need_scalar)?;
            NaiveDate::parse_from_str(&t, "%Y-%m-%d")
                .map(|_| Value::String(t.clone()))
                .map_err(|_| {
                    format!(
                        "'{t}' is not a date YYYY-MM-DD; for another format give date = \
                         \"%d.%m.%Y\" (a chrono pattern)"
                    )
                })
        }
        Kind::DateTime => {
            let t = t.ok_or_else(need_scalar)?;
            DateTime::parse_from_rfc3339(&t)
                .map(|_| Value::String(t.clone()))
                .map_err(|_| format!("'{t}' is not an RFC 3339 timestamp"))
        }
        Kind::Text => t.map(Value::String).ok_or_else(need_scalar),
        Kind::Texts => match v {
            Value::Array(items) => Ok(Value::Array(
                items
                    .iter()
                    .map(any_text)
                    .filter(|s| !s.trim().is_empty())
                    .map(Value::String)
                    .collect(),
            )),
            other => Ok(Value::Array(vec![Value::String(any_text(&other))])),
        },
        Kind::Choice(values) => {
            let t = t.ok_or_else(need_scalar)?;
            if values.contains(&t) {
                Ok(Value::String(t))
            } else {
                Err(format!(
                    "'{t}' is not {} (map the ERP's values with map = {{ ... }})",
                    kind.describe()
                ))
            }
        }
        Kind::List => Err("a list cannot be read here".into()),
    }
}
