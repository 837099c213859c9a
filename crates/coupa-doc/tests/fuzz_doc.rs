//! Fuzz smoke tests for coupa-doc's readers and writers: the cargo-fuzz targets' own bodies
//! (`fuzz/bodies/xml.rs`, `fuzz/bodies/json.rs`) run on the committed corpora and on generated
//! XML-ish and JSON-ish documents, some of them then broken on purpose. FUZZING.md has more.

#[path = "../../../fuzz/bodies/json.rs"]
mod json_body;
#[path = "../../../fuzz/smoke.rs"]
mod smoke;
#[path = "../../../fuzz/bodies/xml.rs"]
mod xml_body;

use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::ValueTree;

#[test]
fn xml_corpus_replays() {
    assert!(smoke::replay("xml", xml_body::run) >= 10);
}

#[test]
fn json_corpus_replays() {
    assert!(smoke::replay("json", json_body::run) >= 10);
}

/// Text from characters that matter to the readers: markup, quotes, whitespace, multi-byte.
fn text(max: usize) -> impl Strategy<Value = String> {
    let chars = select(vec![
        'a', 'Z', '0', '7', ' ', '\t', '\n', '\r', '-', '.', ',', ':', '/', '<', '>', '&', '"',
        '\'', ';', '#', ']', '[', '{', '}', '\\', 'é', '€', '💶', '\u{a0}', '\u{feff}', '\u{0}',
        '\u{1}',
    ]);
    proptest::collection::vec(chars, 0..max).prop_map(String::from_iter)
}

/// Scalar text Coupa's documents carry, typed or not.
fn scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        select(vec![
            "106",
            "-5",
            "+7",
            "0",
            "9223372036854775807",
            "9223372036854775808",
            "1.50",
            "199.98",
            "-0",
            "1e5",
            "1,000",
            "79228162514264337593543950335",
            "79228162514264337593543950336",
            "0.00000000000000000000000000001",
            "true",
            "false",
            "Yes",
            "N",
            "2016-10-07T06:56:43-07:00",
            "2019-09-12",
            "9/12/2019",
            "2020-06-01T09:42:43.123456+05:30",
            "2020-02-30",
            "'2019-09-12'",
            "",
        ])
        .prop_map(str::to_owned),
        text(12),
    ]
}

fn element_name() -> impl Strategy<Value = String> {
    select(vec![
        "invoice-header",
        "invoice-headers",
        "payments",
        "payment",
        "amount-paid",
        "amount_paid",
        "id",
        "invoice-lines",
        "invoice-line",
        "errors",
        "error",
        "supplier",
        "custom-fields",
        "tax-lines",
        "a",
        "xsi:x",
        "_b",
        "item1",
        "items",
        "invoice_description",
    ])
    .prop_map(str::to_owned)
}

fn attributes() -> impl Strategy<Value = String> {
    let ty = select(vec![
        "integer", "decimal", "float", "double", "boolean", "datetime", "dateTime", "date",
        "array", "ARRAY", "bogus",
    ]);
    (
        proptest::option::of(ty),
        proptest::option::of(select(vec!["true", "false", "TRUE"])),
    )
        .prop_map(|(ty, nil)| {
            let mut out = String::new();
            if let Some(ty) = ty {
                out.push_str(&format!(" type=\"{ty}\""));
            }
            if let Some(nil) = nil {
                out.push_str(&format!(" nil=\"{nil}\""));
            }
            out
        })
}

/// Escaped text, CDATA, references (known, numeric, unknown) or a comment.
fn content() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => scalar().prop_map(|s| s.replace('&', "&amp;").replace('<', "&lt;")),
        1 => text(10).prop_map(|s| format!("<![CDATA[{}]]>", s.replace("]]>", ""))),
        1 => select(vec!["&amp;", "&lt;", "&#65;", "&#x1F4B6;", "&#0;", "&#xFFFFFFFF;", "&lol;", "&"])
            .prop_map(str::to_owned),
        1 => Just("<!-- note -->".to_owned()),
    ]
}

fn element() -> impl Strategy<Value = String> {
    let leaf = (
        element_name(),
        attributes(),
        proptest::collection::vec(content(), 0..3),
    )
        .prop_map(|(name, attrs, parts)| {
            if parts.is_empty() {
                format!("<{name}{attrs} />")
            } else {
                format!("<{name}{attrs}>{}</{name}>", parts.concat())
            }
        });
    leaf.prop_recursive(5, 48, 6, |inner| {
        (
            element_name(),
            attributes(),
            proptest::collection::vec(inner, 0..6),
        )
            .prop_map(|(name, attrs, children)| {
                format!("<{name}{attrs}>\n  {}\n</{name}>", children.join("\n  "))
            })
    })
}

/// A document, then one time in three broken: cut short, or a fragment spliced in somewhere.
fn damaged(
    doc: impl Strategy<Value = String>,
    junk: Vec<&'static str>,
) -> impl Strategy<Value = Vec<u8>> {
    (doc, 0..6u8, any::<prop::sample::Index>(), select(junk)).prop_map(|(doc, how, at, junk)| {
        let mut bytes = doc.into_bytes();
        let at = at.index(bytes.len() + 1);
        match how {
            0 => bytes.truncate(at),
            1 => {
                bytes.splice(at..at, junk.bytes());
            }
            _ => {}
        }
        bytes
    })
}

fn xml_document() -> impl Strategy<Value = Vec<u8>> {
    let doc = (any::<bool>(), element()).prop_map(|(decl, root)| {
        let decl = if decl {
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        } else {
            ""
        };
        format!("{decl}{root}")
    });
    damaged(
        doc,
        vec![
            "<!DOCTYPE lolz [<!ENTITY lol \"lol\">]>",
            "&lol;",
            "</a>",
            "<",
            "<a>",
            "]]>",
            "<?pi x?>",
            "\u{feff}",
            "\u{0}",
            "<b></c>",
            "text",
            "<a b=\"1\" b=\"2\"/>",
            "\u{80}",
        ],
    )
}

fn json_key() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => select(vec![
            "id", "amount_paid", "amount-paid", "invoice-number", "payments", "payment",
            "custom_fields", "Total", "", " ", "a_b-c", "__", "-",
        ])
        .prop_map(str::to_owned),
        1 => text(6),
    ]
}

/// `s` as a JSON string literal.
fn json_string(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

fn json_scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        select(vec![
            "null",
            "true",
            "false",
            "0",
            "-0",
            "7",
            "199.98",
            "1e400",
            "-1e400",
            "1.5e-30",
            "1E+2",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775809",
            "79228162514264337593543950335",
            "79228162514264337593543950336",
            "123456789012345678901234567890.5",
            "0.00000000000000000000000000001",
            "\"\\u0000\"",
            "\"\\ud800\"",
            "\"\\ud83d\\udcb6\"",
            "\"9/12/2019\"",
        ])
        .prop_map(str::to_owned),
        scalar().prop_map(|s| json_string(&s)),
    ]
}

fn json_value() -> impl Strategy<Value = String> {
    json_scalar().prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6)
                .prop_map(|items| format!("[{}]", items.join(","))),
            proptest::collection::vec((json_key(), inner), 0..6).prop_map(|pairs| {
                let body: Vec<String> = pairs
                    .iter()
                    .map(|(k, v)| format!("{}:{v}", json_string(k)))
                    .collect();
                format!("{{{}}}", body.join(","))
            }),
        ]
    })
}

fn json_document() -> impl Strategy<Value = Vec<u8>> {
    damaged(
        json_value(),
        vec![
            "}", "]", ",", "\"", "{", "[", "1e999", "\u{0}", "\u{feff}", "NaN", "//", "\\",
        ],
    )
}

proptest! {
    #![proptest_config(smoke::proptest_config(1000))]

    #[test]
    fn generated_xml_never_panics_and_round_trips(doc in xml_document()) {
        xml_body::run(&doc);
    }

    #[test]
    fn generated_json_never_panics_and_round_trips(doc in json_document()) {
        json_body::run(&doc);
    }
}

#[test]
fn deep_documents_are_refused_not_overflowing() {
    let xml = "<a>".repeat(100_000);
    xml_body::run(xml.as_bytes());
    let json = "[".repeat(100_000);
    json_body::run(json.as_bytes());
    assert!(coupa_doc::xml::parse(xml.as_bytes()).is_err());
    assert!(coupa_doc::json::parse(json.as_bytes()).is_err());
}

/// Share of `n` generated documents that `accepts`: the generators must mostly reach the
/// round-trip checks, not only the readers' error paths.
fn accepted_share<S: Strategy<Value = Vec<u8>>>(strategy: S, accepts: fn(&[u8]) -> bool) -> f64 {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let n = 300;
    let accepted = (0..n)
        .filter(|_| {
            let doc = strategy
                .new_tree(&mut runner)
                .expect("a generated document")
                .current();
            accepts(&doc)
        })
        .count();
    accepted as f64 / f64::from(n)
}

#[test]
fn generated_documents_mostly_parse() {
    let xml = accepted_share(xml_document(), |d| coupa_doc::xml::parse(d).is_ok());
    let json = accepted_share(json_document(), |d| coupa_doc::json::parse(d).is_ok());
    eprintln!("accepted: xml {xml:.2}, json {json:.2}");
    assert!(xml > 0.3, "only {xml:.2} of generated XML parses");
    assert!(json > 0.3, "only {json:.2} of generated JSON parses");
}
