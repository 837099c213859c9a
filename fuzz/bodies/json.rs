//! Fuzz body `json`: `coupa_doc::json`. Shared as is by `fuzz/fuzz_targets/json.rs` and
//! `crates/coupa-doc/tests/fuzz_doc.rs` (through `#[path]`).

use coupa_doc::json;

/// Any bytes: the reader answers without panicking. A document it accepts is written (compact
/// and pretty) and the compact output reads again and writes to the same bytes: after one read
/// (keys canonicalised, decimals written as strings) writing is stable.
pub fn run(data: &[u8]) {
    let Ok(value) = json::parse(data) else {
        return;
    };
    let written = json::to_vec(&value);
    let _ = json::to_vec_pretty(&value);
    let again = match json::parse(&written) {
        Ok(v) => v,
        Err(e) => panic!(
            "the writer's output does not read back: {e}\n{}",
            String::from_utf8_lossy(&written)
        ),
    };
    let rewritten = json::to_vec(&again);
    assert!(
        rewritten == written,
        "a second write differs:\n{}\n{}",
        String::from_utf8_lossy(&written),
        String::from_utf8_lossy(&rewritten)
    );
}
