//! Every payload in `shared/coupa-samples/` reads, as Coupa's docs print it.

use std::path::PathBuf;

use coupa_doc::Value;

fn samples_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/coupa-samples")
}

/// The document inside a sample file: fragments (`"payee": {...},`) are wrapped into an
/// object; CSV-quoted XML (a header line, then one quoted cell) is unquoted.
fn document(name: &str, text: &str) -> String {
    if name.ends_with(".fragment.json") {
        let body = text.trim().trim_end_matches(',');
        return format!("{{{body}}}");
    }
    if name.ends_with(".csv-quoted.txt") {
        let cell = text.split_once('\n').map_or(text, |(_, rest)| rest).trim();
        return cell
            .strip_prefix('"')
            .and_then(|c| c.strip_suffix('"'))
            .unwrap_or(cell)
            .replace("\"\"", "\"");
    }
    // Coupa's docs elide parts of long samples with a line of dashes.
    text.lines()
        .filter(|l| !l.trim_start().starts_with("---"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_sample_reads() {
    let mut read = 0;
    for entry in std::fs::read_dir(samples_dir()).expect("shared/coupa-samples exists") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_owned();
        if name == "README.md" {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("utf-8 sample");
        let doc = document(&name, &text);
        let value = if doc.trim_start().starts_with('<') {
            coupa_doc::xml::parse(doc.as_bytes())
                .unwrap_or_else(|e| panic!("{name}: {e}"))
                .1
        } else {
            coupa_doc::json::parse(doc.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"))
        };
        assert!(
            !value.is_null() || name.starts_with("empty-list"),
            "{name} read as nothing"
        );
        read += 1;
    }
    assert!(read >= 28, "only {read} samples found");
}

#[test]
fn sample_quirks_read_as_coupa_means_them() {
    let text =
        std::fs::read_to_string(samples_dir().join("invoice-show-full.xml")).expect("sample");
    let (root, v) = coupa_doc::xml::parse(text.as_bytes()).expect("parses");
    assert_eq!(root, "invoice-header");
    // `invoice-number type="integer"`: an integer on the wire, text to a reader who asks.
    assert_eq!(v.pointer(&["invoice-number"]), Some(&Value::Int(500)));
    assert_eq!(v.pointer(&["supplier", "number"]), Some(&Value::Null));
    assert_eq!(v.pointer(&["payment-date"]), Some(&Value::Null));
    assert!(matches!(v.pointer(&["tax-rate"]), Some(Value::Decimal(_))));

    let text = std::fs::read_to_string(samples_dir().join("user-create-errors-400-cdata.xml"))
        .expect("sample");
    let (_, v) = coupa_doc::xml::parse(text.as_bytes()).expect("parses");
    assert_eq!(
        v,
        Value::Array(vec![
            Value::Text("Login has already been taken".into()),
            Value::Text("Email has already been taken".into()),
        ])
    );
    let text = std::fs::read_to_string(samples_dir().join("empty-list.json")).expect("sample");
    assert_eq!(
        coupa_doc::json::parse(text.as_bytes()).expect("parses"),
        Value::Array(vec![])
    );
}
