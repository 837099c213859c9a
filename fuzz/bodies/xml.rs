//! Fuzz body `xml`: `coupa_doc::xml`. Shared as is by `fuzz/fuzz_targets/xml.rs` and
//! `crates/coupa-doc/tests/fuzz_doc.rs` (through `#[path]`), so both check the same thing.

use coupa_doc::{Value, xml};

/// Any bytes: the reader answers (a tree or an error) without panicking. A document it accepts
/// whose element names are XML names is written back and the writer's output reads again with
/// the same root; from then on a write and a read change nothing (the first read may normalise:
/// trimmed text, `<x/>` as null). (The reader also takes names such as `"` that the writer
/// cannot write: FUZZING.md, findings.)
pub fn run(data: &[u8]) {
    let Ok((root, value)) = xml::parse(data) else {
        return;
    };
    if !is_name(&root) || !names_are_xml_names(&value) {
        return;
    }
    let written = xml::to_string(&root, &value);
    let (root_again, once) = match xml::parse(written.as_bytes()) {
        Ok(read) => read,
        Err(e) => panic!("the writer's output does not read back: {e}\n{written}"),
    };
    assert_eq!(root_again, root, "the root element changed:\n{written}");
    let rewritten = xml::to_string(&root, &once);
    let twice = match xml::parse(rewritten.as_bytes()) {
        Ok((_, v)) => v,
        Err(e) => panic!("the writer's output does not read back: {e}\n{rewritten}"),
    };
    assert_eq!(
        twice, once,
        "a second write and read changed the tree:\n{rewritten}"
    );
}

/// An XML `Name` (XML 1.0 section 2.3), with every non-ASCII character allowed.
fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    let start = |c: char| c.is_ascii_alphabetic() || c == '_' || c == ':' || !c.is_ascii();
    chars.next().is_some_and(start)
        && chars.all(|c| start(c) || c.is_ascii_digit() || c == '-' || c == '.')
}

fn names_are_xml_names(value: &Value) -> bool {
    match value {
        Value::Object(o) => o.iter().all(|(k, v)| is_name(k) && names_are_xml_names(v)),
        Value::Array(items) => items.iter().all(names_are_xml_names),
        _ => true,
    }
}
