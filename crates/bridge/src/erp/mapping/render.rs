//! Writing a canonical document (as its JSON value) in the ERP's fields and format.

use std::fmt::Write as _;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::{Decimal, RoundingStrategy};
use serde_json::{Map, Value};

use super::{DecimalFormat, FieldMap, Format, MapError, OutSection, Rendered, Source, Transform};

/// The document's fields nested by their dotted names; `Lines` is the list's place.
enum Node {
    Leaf(Value),
    Group(Vec<(String, Node)>),
    Lines(Vec<Vec<(String, Node)>>),
}

pub(super) fn render(
    file: &str,
    section: &OutSection,
    doc: &Value,
    list: Option<&str>,
) -> Result<Rendered, MapError> {
    let header = values(file, &section.fields, doc)?;
    let mut lines = Vec::new();
    let write_lines = list.is_some() && !section.line_fields.is_empty();
    if let Some(list) = list.filter(|_| write_lines) {
        for line in doc
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            lines.push(values(file, &section.line_fields, line)?);
        }
    }
    let bytes = match section.format {
        Format::Csv => csv(file, section, &header, &lines, write_lines)?,
        Format::Json => {
            let mut nodes = tree(header);
            if write_lines {
                let lines = lines.into_iter().map(tree).collect();
                insert(&mut nodes, &section.lines, Node::Lines(lines));
            }
            serde_json::to_vec(&json(nodes)).map_err(|e| MapError {
                field: String::new(),
                at: file.to_owned(),
                message: format!("the document does not serialize: {e}"),
            })?
        }
        Format::Xml => {
            let mut nodes = tree(header);
            if write_lines {
                let lines = lines.into_iter().map(tree).collect();
                insert(&mut nodes, &section.lines, Node::Lines(lines));
            }
            let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
            xml_element(&mut out, &section.root, &Node::Group(nodes), 0, section).map_err(
                |(field, message)| MapError {
                    at: at(file, &section.fields, &section.line_fields, &field),
                    field,
                    message,
                },
            )?;
            out.into_bytes()
        }
    };
    Ok(Rendered {
        format: section.format,
        bytes,
    })
}

fn at(file: &str, fields: &[FieldMap], line_fields: &[FieldMap], name: &str) -> String {
    let nested = format!(".{name}");
    match fields
        .iter()
        .chain(line_fields)
        .find(|f| f.name == name || f.name.ends_with(&nested))
    {
        Some(f) => format!("{file}:{}", f.line),
        None => file.to_owned(),
    }
}

fn values(file: &str, fields: &[FieldMap], obj: &Value) -> Result<Vec<(String, Value)>, MapError> {
    fields
        .iter()
        .map(|f| Ok((f.name.clone(), value(file, f, obj)?)))
        .collect()
}

/// The value an ERP field gets from the canonical document.
fn value(file: &str, f: &FieldMap, obj: &Value) -> Result<Value, MapError> {
    let raw = match &f.source {
        Source::Const(v) => return Ok(v.clone()),
        Source::From(path) => obj.get(path).cloned().unwrap_or(Value::Null),
    };
    if raw.is_null() {
        return Ok(f.default.clone().unwrap_or(Value::Null));
    }
    let err = |message: String| MapError {
        field: f.name.clone(),
        at: format!("{file}:{}", f.line),
        message,
    };
    let text = text(&raw);
    match &f.transform {
        Transform::None => Ok(raw),
        Transform::Date(pattern) => format_date(&text, pattern)
            .map(Value::String)
            .ok_or_else(|| err(format!("'{text}' cannot be written with \"{pattern}\""))),
        Transform::Decimal(format) => Decimal::from_str(&text)
            .map(|d| Value::String(format_decimal(d, format)))
            .map_err(|_| err(format!("'{text}' is not a decimal"))),
        Transform::Map(map) => match map.iter().find(|(k, _)| *k == text) {
            Some((_, v)) => Ok(v.clone()),
            None => f.default.clone().ok_or_else(|| {
                err(format!(
                    "no mapping for '{text}' (add it to the map, or give a default)"
                ))
            }),
        },
    }
}

/// A scalar as text: strings as they are, numbers as their own digits.
pub(super) fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A canonical date (`YYYY-MM-DD`) or timestamp (RFC 3339) in a strftime pattern; `None` when
/// it is neither, or the pattern needs what a date has not (a time).
pub(super) fn format_date(text: &str, pattern: &str) -> Option<String> {
    let mut out = String::new();
    if let Ok(d) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        write!(out, "{}", d.format(pattern)).ok()?;
    } else if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        write!(out, "{}", t.with_timezone(&Utc).format(pattern)).ok()?;
    } else {
        return None;
    }
    Some(out)
}

/// `places` rounds half away from zero and pads; `point` and `grouping` replace `.` and group
/// the integer digits by three.
pub(super) fn format_decimal(d: Decimal, f: &DecimalFormat) -> String {
    let d = match f.places {
        Some(places) => {
            let mut d = d.round_dp_with_strategy(places, RoundingStrategy::MidpointAwayFromZero);
            d.rescale(places);
            d
        }
        None => d,
    };
    let plain = d.to_string();
    let (sign, digits) = match plain.strip_prefix('-') {
        Some(rest) => ("-", rest),
        None => ("", plain.as_str()),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let mut out = String::from(sign);
    match f.grouping {
        Some(g) => {
            for (i, c) in int.chars().enumerate() {
                if i > 0 && (int.len() - i).is_multiple_of(3) {
                    out.push(g);
                }
                out.push(c);
            }
        }
        None => out.push_str(int),
    }
    if !frac.is_empty() {
        out.push(f.point);
        out.push_str(frac);
    }
    out
}

fn tree(values: Vec<(String, Value)>) -> Vec<(String, Node)> {
    let mut tree = Vec::new();
    for (name, v) in values {
        insert(&mut tree, &name, Node::Leaf(v));
    }
    tree
}

fn insert(tree: &mut Vec<(String, Node)>, path: &str, node: Node) {
    match path.split_once('.') {
        None => tree.push((path.to_owned(), node)),
        Some((head, rest)) => {
            let at = tree
                .iter()
                .position(|(n, child)| n == head && matches!(child, Node::Group(_)));
            let at = match at {
                Some(at) => at,
                None => {
                    tree.push((head.to_owned(), Node::Group(Vec::new())));
                    tree.len() - 1
                }
            };
            if let Some((_, Node::Group(children))) = tree.get_mut(at) {
                insert(children, rest, node);
            }
        }
    }
}

fn json(tree: Vec<(String, Node)>) -> Value {
    let mut map = Map::new();
    for (name, node) in tree {
        let v = match node {
            Node::Leaf(v) => v,
            Node::Group(children) => json(children),
            Node::Lines(lines) => Value::Array(lines.into_iter().map(json).collect()),
        };
        map.insert(name, v);
    }
    Value::Object(map)
}

/// Writes `<name>` holding `node`, indented by two spaces a level. `Err((field, why))` for text
/// XML 1.0 cannot carry (control characters).
fn xml_element(
    out: &mut String,
    name: &str,
    node: &Node,
    depth: usize,
    section: &OutSection,
) -> Result<(), (String, String)> {
    let indent = "  ".repeat(depth);
    match node {
        Node::Leaf(Value::Null) => {
            let _ = writeln!(out, "{indent}<{name}/>");
        }
        Node::Leaf(v) => {
            let t = text(v);
            if let Some(c) = t
                .chars()
                .find(|c| (c.is_control() && !matches!(c, '\t' | '\n' | '\r')) || *c == '\u{FFFE}')
            {
                return Err((
                    name.to_owned(),
                    format!("U+{:04X} cannot be written in XML", c as u32),
                ));
            }
            let _ = writeln!(
                out,
                "{indent}<{name}>{}</{name}>",
                quick_xml::escape::escape(&t)
            );
        }
        Node::Group(children) if children.is_empty() => {
            let _ = writeln!(out, "{indent}<{name}/>");
        }
        Node::Group(children) => {
            let _ = writeln!(out, "{indent}<{name}>");
            for (child, node) in children {
                xml_element(out, child, node, depth + 1, section)?;
            }
            let _ = writeln!(out, "{indent}</{name}>");
        }
        Node::Lines(lines) if lines.is_empty() => {
            let _ = writeln!(out, "{indent}<{name}/>");
        }
        Node::Lines(lines) => {
            let _ = writeln!(out, "{indent}<{name}>");
            for line in lines {
                let inner = "  ".repeat(depth + 1);
                let element = &section.line_element;
                if line.is_empty() {
                    let _ = writeln!(out, "{inner}<{element}/>");
                    continue;
                }
                let _ = writeln!(out, "{inner}<{element}>");
                for (child, node) in line {
                    xml_element(out, child, node, depth + 2, section)?;
                }
                let _ = writeln!(out, "{inner}</{element}>");
            }
            let _ = writeln!(out, "{indent}</{name}>");
        }
    }
    Ok(())
}

/// A header row, then one row per line with the header's fields repeated (one row when there
/// are no lines). Quoted only where needed; a cell starting with `=`, `+`, `-` or `@` is
/// written as it is (an ERP import is not a spreadsheet).
fn csv(
    file: &str,
    section: &OutSection,
    header: &[(String, Value)],
    lines: &[Vec<(String, Value)>],
    write_lines: bool,
) -> Result<Vec<u8>, MapError> {
    let fail = |e: csv::Error| MapError {
        field: String::new(),
        at: file.to_owned(),
        message: format!("the CSV cannot be written: {e}"),
    };
    let mut w = csv::WriterBuilder::new()
        .delimiter(section.delimiter)
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::new());
    let mut columns: Vec<&str> = header.iter().map(|(n, _)| n.as_str()).collect();
    if write_lines {
        columns.extend(section.line_fields.iter().map(|f| f.name.as_str()));
    }
    w.write_record(&columns).map_err(fail)?;
    let head: Vec<String> = header.iter().map(|(_, v)| text(v)).collect();
    if lines.is_empty() {
        let mut row = head.clone();
        if write_lines {
            row.extend(section.line_fields.iter().map(|_| String::new()));
        }
        w.write_record(&row).map_err(fail)?;
    }
    for line in lines {
        let mut row = head.clone();
        row.extend(line.iter().map(|(_, v)| text(v)));
        w.write_record(&row).map_err(fail)?;
    }
    w.into_inner().map_err(|e| MapError {
        field: String::new(),
        at: file.to_owned(),
        message: format!("the CSV cannot be written: {e}"),
    })
}
