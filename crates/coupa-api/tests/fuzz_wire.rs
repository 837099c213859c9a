//! Fuzz smoke tests for the client's decoders: the cargo-fuzz target's own body
//! (`fuzz/bodies/wire.rs`) run on the committed corpus and on generated records shaped like the
//! ones the flows read (field names of the wire models, values in every form Coupa mixes), as
//! JSON and as XML. FUZZING.md has more.

#[path = "../../../fuzz/smoke.rs"]
mod smoke;
#[path = "../../../fuzz/bodies/wire.rs"]
mod wire_body;

use proptest::prelude::*;
use proptest::sample::select;

#[test]
fn wire_corpus_replays() {
    assert!(smoke::replay("wire", wire_body::run) >= 20);
}

/// Field names of the wire models (invoices, payments, Coupa Pay, monitoring, CSV loads).
const FIELDS: &[&str] = &[
    "id",
    "invoice-number",
    "invoice-date",
    "status",
    "exported",
    "total-with-taxes",
    "gross-total",
    "currency",
    "code",
    "decimals",
    "supplier",
    "name",
    "number",
    "payments",
    "amount-paid",
    "notes",
    "payment-date",
    "invoice-lines",
    "line-num",
    "quantity",
    "price",
    "total",
    "account",
    "custom-fields",
    "cf-erp-invoice-number",
    "external-ref-num",
    "pay-from-total",
    "pay-to-total",
    "pay-from-currency",
    "pay-to-currency",
    "exchange-rate",
    "payee",
    "login",
    "fullname",
    "payment-details",
    "payment-total",
    "transaction-total",
    "discount-total",
    "adjustment-total",
    "source-transaction-id",
    "source-transaction-reference",
    "digital-check",
    "check-number",
    "payment-batch",
    "document-id",
    "document-type",
    "resolved",
    "integration-run",
    "integration-run-id",
    "responses",
    "response-code",
    "flow",
    "upload-errors",
    "field-errors",
    "row",
    "created-at",
    "updated-at",
    "amount_paid",
    "payment_date",
    "invoice_lines",
    "payment",
];

#[derive(Debug, Clone)]
enum Doc {
    /// `(json, xml type, xml text)`: one scalar as each format writes it.
    Scalar(String, Option<&'static str>, Option<String>),
    Object(Vec<(String, Doc)>),
    List(Vec<Doc>),
}

fn scalar() -> impl Strategy<Value = Doc> {
    let int = select(vec![
        "0",
        "7",
        "-1",
        "1001",
        "9223372036854775807",
        "-9223372036854775808",
    ])
    .prop_map(|s| Doc::Scalar(s.to_owned(), Some("integer"), Some(s.to_owned())));
    let dec = (
        select(vec![
            "199.98",
            "0.1",
            "-5.00",
            "1e5",
            "79228162514264337593543950335",
            "-79228162514264337593543950335",
            "7922816251426433759354395033.5",
            "0.0000000000000000000000000001",
            "1,000",
            "989,00",
            "abc",
        ]),
        any::<bool>(),
    )
        .prop_map(|(s, quoted)| {
            let json = if quoted || s.contains(',') || s == "abc" {
                format!("\"{s}\"")
            } else {
                s.to_owned()
            };
            Doc::Scalar(json, Some("decimal"), Some(s.to_owned()))
        });
    let boolean = select(vec!["true", "false", "Yes", "N", "maybe"]).prop_map(|s| {
        let json = if s == "true" || s == "false" {
            s.to_owned()
        } else {
            format!("\"{s}\"")
        };
        Doc::Scalar(json, Some("boolean"), Some(s.to_owned()))
    });
    let date = select(vec![
        "2016-10-07T06:56:43-07:00",
        "2019-09-12",
        "9/12/2019",
        "'2019-09-12'",
        "2020-06-01T09:42:43.123+05:30",
        "2020-02-30",
        "+275760-09-13T00:00:00Z",
        "yesterday",
    ])
    .prop_map(|s| Doc::Scalar(format!("\"{s}\""), Some("datetime"), Some(s.to_owned())));
    let text = select(vec![
        "INV-1", "approved", "USD", "", " ", "a & b", "<x>", "💶", "001",
    ])
    .prop_map(|s| {
        let json = serde_json::Value::String(s.to_owned()).to_string();
        let xml = s.replace('&', "&amp;").replace('<', "&lt;");
        Doc::Scalar(json, None, Some(xml))
    });
    let null = Just(Doc::Scalar("null".to_owned(), None, None));
    prop_oneof![int, dec, boolean, date, text, null]
}

fn doc() -> impl Strategy<Value = Doc> {
    scalar().prop_recursive(4, 40, 6, |inner| {
        prop_oneof![
            // Most records carry an id, so decoding goes past the required field.
            (
                proptest::bool::weighted(0.7),
                proptest::collection::vec((select(FIELDS), inner.clone()), 0..6),
            )
                .prop_map(|(with_id, fields)| {
                    let id =
                        Doc::Scalar("1001".to_owned(), Some("integer"), Some("1001".to_owned()));
                    let id = with_id.then(|| ("id".to_owned(), id));
                    Doc::Object(
                        id.into_iter()
                            .chain(fields.into_iter().map(|(k, v)| (k.to_owned(), v)))
                            .collect(),
                    )
                }),
            proptest::collection::vec(inner, 0..4).prop_map(Doc::List),
        ]
    })
}

fn to_json(d: &Doc) -> String {
    match d {
        Doc::Scalar(json, _, _) => json.clone(),
        Doc::Object(fields) => {
            let body: Vec<String> = fields
                .iter()
                .map(|(k, v)| format!("\"{k}\":{}", to_json(v)))
                .collect();
            format!("{{{}}}", body.join(","))
        }
        Doc::List(items) => {
            let body: Vec<String> = items.iter().map(to_json).collect();
            format!("[{}]", body.join(","))
        }
    }
}

fn to_xml(name: &str, d: &Doc, out: &mut String) {
    match d {
        Doc::Scalar(_, _, None) => out.push_str(&format!("<{name} nil=\"true\" />")),
        Doc::Scalar(_, ty, Some(text)) => {
            let ty = ty.map(|t| format!(" type=\"{t}\"")).unwrap_or_default();
            out.push_str(&format!("<{name}{ty}>{text}</{name}>"));
        }
        Doc::Object(fields) => {
            out.push_str(&format!("<{name}>"));
            for (k, v) in fields {
                to_xml(k, v, out);
            }
            out.push_str(&format!("</{name}>"));
        }
        Doc::List(items) => {
            out.push_str(&format!("<{name} type=\"array\">"));
            let item = name.strip_suffix('s').unwrap_or("item");
            for v in items {
                to_xml(item, v, out);
            }
            out.push_str(&format!("</{name}>"));
        }
    }
}

fn xml_document(d: &Doc) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let root = if matches!(d, Doc::List(_)) {
        "invoice-headers"
    } else {
        "invoice-header"
    };
    to_xml(root, d, &mut out);
    out
}

proptest! {
    #![proptest_config(smoke::proptest_config(1000))]

    #[test]
    fn generated_records_never_panic_the_decoders(d in doc()) {
        wire_body::run(to_json(&d).as_bytes());
        wire_body::run(xml_document(&d).as_bytes());
    }
}

#[test]
fn generated_records_are_mostly_well_formed() {
    use proptest::strategy::ValueTree;
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let n = 300;
    let (mut json, mut xml) = (0, 0);
    for _ in 0..n {
        let d = doc()
            .new_tree(&mut runner)
            .expect("a generated record")
            .current();
        json += usize::from(
            coupa_api::wire::parse(coupa_api::Format::Json, to_json(&d).as_bytes()).is_ok(),
        );
        xml += usize::from(
            coupa_api::wire::parse(coupa_api::Format::Xml, xml_document(&d).as_bytes()).is_ok(),
        );
    }
    assert!(
        json * 2 > n,
        "only {json} of {n} generated JSON records parse"
    );
    assert!(xml * 2 > n, "only {xml} of {n} generated XML records parse");
}
