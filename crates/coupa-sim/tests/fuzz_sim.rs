//! Fuzz smoke tests for the simulator's parsers: the cargo-fuzz targets' own bodies
//! (`fuzz/bodies/sim_query.rs`, `fuzz/bodies/csv_loader.rs`) run on the committed corpora and on
//! generated query strings and payment files. FUZZING.md has more.

#[path = "../../../fuzz/bodies/csv_loader.rs"]
mod csv_loader_body;
#[path = "../../../fuzz/bodies/sim_query.rs"]
mod sim_query_body;
#[path = "../../../fuzz/smoke.rs"]
mod smoke;

use proptest::prelude::*;
use proptest::sample::select;

#[test]
fn sim_query_corpus_replays() {
    assert!(smoke::replay("sim_query", sim_query_body::run) >= 20);
}

#[test]
fn csv_loader_corpus_replays() {
    assert!(smoke::replay("csv_loader", csv_loader_body::run) >= 10);
}

fn segment() -> impl Strategy<Value = &'static str> {
    select(vec![
        "id",
        "status",
        "invoice-number",
        "invoice_number",
        "supplier",
        "name",
        "number",
        "invoice-lines",
        "account",
        "code",
        "updated-at",
        "created_at",
        "invoice-date",
        "exported",
        "payments",
        "amount-paid",
        "custom-fields",
        "cf-erp-invoice-number",
        "document-id",
        "document-type",
        "resolved",
        "pay_to_account",
        "type",
        "payment-partner",
        "payment-partner-id",
        "supplier_id",
        "total-with-taxes",
        "integration",
        "file-file-name",
        "nope",
        "",
    ])
}

fn operator() -> impl Strategy<Value = &'static str> {
    select(vec![
        "in",
        "not_in",
        "gt",
        "lt",
        "gt_or_eq",
        "lt_or_eq",
        "not_eq",
        "contains",
        "starts_with",
        "ends_with",
        "blank",
        "GT",
        "not-eq",
        "Not_In",
        "bogus",
    ])
}

fn condition_key() -> impl Strategy<Value = String> {
    (
        proptest::collection::vec(segment(), 1..4),
        proptest::option::of(operator()),
        select(vec!["", "", "", "[", "]", "[]"]),
    )
        .prop_map(|(path, op, junk)| {
            let mut key = path[0].to_owned();
            for seg in &path[1..] {
                key.push_str(&format!("[{seg}]"));
            }
            if let Some(op) = op {
                key.push_str(&format!("[{op}]"));
            }
            key.push_str(junk);
            key
        })
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        select(vec![
            "",
            "0",
            "1",
            "-1",
            "50",
            "51",
            "1001",
            "1005",
            "9223372036854775807",
            "-9223372036854775808",
            "99999999999999999999",
            "1.5",
            "-0.01",
            "1e5",
            "79228162514264337593543950336",
            "true",
            "false",
            "Yes",
            "N",
            "maybe",
            "asc",
            "DESC",
            "approved",
            "approved,voided",
            " a , ,b ",
            "INV",
            "2026-03-01",
            "9/12/2019",
            "2026-03-01T17:44:14+02:00",
            "2026-03-01T17:44:14 02:00",
            "limited",
            "shallow",
            "none",
            "default_invoices_filter",
            "[\"id\"]",
            "[\"id\",{\"supplier\":[\"id\",\"name\"]}]",
            "[{\"custom-fields\":{}}]",
            "[{\"invoice_lines\":[{\"account\":[]}]}]",
            "[",
            "{}",
            "[1]",
            "supplier[name]",
            "supplier.name",
            "invoice_date",
            "%",
            "%ZZ",
            "a=b",
        ])
        .prop_map(str::to_owned),
        "[ -~]{0,12}",
    ]
}

fn pair() -> impl Strategy<Value = (String, String)> {
    let reserved = select(vec![
        "limit",
        "offset",
        "order_by",
        "dir",
        "fields",
        "filter",
        "return_object",
    ])
    .prop_map(str::to_owned);
    (prop_oneof![reserved, condition_key()], value())
}

/// A query string as a client writes it, each piece perhaps percent-encoded or mangled.
fn query_string() -> impl Strategy<Value = String> {
    proptest::collection::vec((pair(), 0..5u8), 0..7).prop_map(|pairs| {
        let pieces: Vec<String> = pairs
            .into_iter()
            .map(|((k, v), how)| match how {
                0 => format!("{}={}", encode(&k), encode(&v)),
                1 => k,
                2 => format!("{k}={}", v.replace(' ', "+")),
                _ => format!("{k}={v}"),
            })
            .collect();
        pieces.join("&")
    })
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// A cell: from the columns' own vocabulary, the test invoices, or anything.
fn cell() -> impl Strategy<Value = String> {
    let known: Vec<String> = csv_loader_body::INVOICES
        .iter()
        .flat_map(|(number, name, supplier, _)| [*number, *name, *supplier])
        .map(str::to_owned)
        .collect();
    prop_oneof![
        3 => select(known),
        3 => select(vec![
            "", " ", "10.00", "-5", "0", "1.23456", "1e3", "1,000", "79228162514264337593543950336",
            "true", "Yes", "n", "maybe", "2025-01-15", "9/12/2019", "2025-02-30",
            "2025-01-15T00:00:00+00:00", "1001", "1003", "abc", "payment", "Credit", "bonus",
            "line one\nline two", "a \"quoted\" note",
        ])
        .prop_map(str::to_owned),
        1 => "[ -~]{0,20}",
    ]
}

fn header_cell() -> impl Strategy<Value = String> {
    prop_oneof![
        8 => select(coupa_doc::payment_csv::COLUMNS.to_vec()).prop_map(str::to_owned),
        1 => select(vec!["  supplier   NAME ", "INVOICE NUMBER", "Active", ""]).prop_map(str::to_owned),
    ]
}

fn csv_field(value: &str, quote: bool) -> String {
    if quote || value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

/// A payment file: a header of known columns (sometimes not), rows of cells (sometimes the
/// wrong number of them), quoting, line ends and a byte-order mark varied.
fn payment_file() -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::collection::vec(header_cell(), 1..8),
        proptest::collection::vec(proptest::collection::vec(cell(), 0..9), 0..6),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(header, rows, quote, crlf, bom)| {
            let end = if crlf { "\r\n" } else { "\n" };
            let line = |cells: &[String]| {
                let fields: Vec<String> = cells.iter().map(|c| csv_field(c, quote)).collect();
                fields.join(",") + end
            };
            let mut out = String::new();
            if bom {
                out.push('\u{feff}');
            }
            out.push_str(&line(&header));
            for row in &rows {
                // Most rows have as many cells as the header.
                let mut row = row.clone();
                if row.len() > header.len() + 1 || row.len() + 1 < header.len() {
                    row.resize(header.len(), String::new());
                }
                out.push_str(&line(&row));
            }
            out.into_bytes()
        })
}

proptest! {
    #![proptest_config(smoke::proptest_config(600))]

    #[test]
    fn generated_queries_never_panic_and_select_consistently(q in query_string()) {
        sim_query_body::run(q.as_bytes());
    }

    #[test]
    fn generated_payment_files_never_panic_the_loader(file in payment_file()) {
        csv_loader_body::run(&file);
    }
}
