//! Fuzz body `xml`: `coupa_doc::xml`. Shared as is by `fuzz/fuzz_targets/xml.rs` and
//! `crates/coupa-doc/tests/fuzz_doc.rs` (through `#[path]`), so both check the same thing.

use coupa_doc::xml;

/// Any bytes: the reader answers (a tree or an error) without panicking. A document it accepts
/// is written back and the writer's output reads again with the same root; from then on a write
/// and a read change nothing (the first read may normalise: trimmed text, `<x/>` as null).
pub fn run(data: &[u8]) {
    let Ok((root, value)) = xml::parse(data) else {
        return;
    };
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
