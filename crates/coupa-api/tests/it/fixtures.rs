//! Coupa's own payloads, decoded into the wire models with their values checked.
//!
//! Two sources:
//! - `shared/coupa-samples/`: payloads exactly as Compass prints them. Every file there must be
//!   handled here ([`every_sample_file_is_covered`] fails on a new one).
//! - `tests/fixtures/seeds/`: every JSON/XML payload example for the resources the client uses
//!   found in `shared/seeds/*.txt` (`000-`..`004-`) and `shared/coupa-api.md` (`api-`), one
//!   file each, named `<source>-<n>-<what>`. Identical payloads printed more than once are kept
//!   once (noted below). Fixes made to the copies, and nothing else was changed:
//!   - seed 000: `type=”integer”` (typographic quotes) and `</name?` repaired;
//!   - seed 001: bare placeholders replaced by numbers (`<Invoice id>` 1001, `<Integration Run
//!     ID>` 501, old/new history record 7001/7002, old/new integration error 9001/9002,
//!     `<Total Number of Invoices from Step 2>` 3, and `"<Integration Run ID>"` in the
//!     `create_alert` body by `"501"`, kept a string as printed); `...` elision lines removed
//!     with the comma they left dangling; `”InvoiceHeader”` quotes repaired. String placeholders
//!     (`"<Invoice status>"`, `"{{Integration_Code}}"`) are valid JSON and kept;
//!   - seeds 002 and 003: indentation made of non-breaking spaces (a web-page artefact that no
//!     JSON reader accepts) turned into spaces;
//!   - coupa-api.md: `…` placeholders in the one-line examples replaced by values (`N` 1001,
//!     `R` 501, the resolved record 7001, the RTF_Code payment body 100.00 on
//!     2016-06-23T00:00:00-08:00) except where `…` is itself valid text.
//!
//!   Seeds 003 and 004 are machine translations (German) of 002 and of the payment page whose
//!   English originals are in `coupa-samples`. They are kept verbatim and must be **refused**
//!   with a precise error: translated keys, typographic quotes, `wahr` for true and decimal
//!   commas (`989,00`) are exactly the inputs the decoder must not guess at.
//!
//! Request bodies (no `id`: it travels in the URL) are decoded into the resource type after
//! [`with_id`] adds one.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use chrono::{DateTime, FixedOffset};
use coupa_api::domain::{
    ContactAlertType, HistoryRecordId, IntegrationErrorId, IntegrationRunId, InvoiceId,
    InvoiceNumber, InvoiceStatus, Money, PayPaymentId, PaymentDetailId, RunStatus,
};
use coupa_api::wire::{
    self, Currency, DecodeError, Format, HistoryRecord, IntegrationError, IntegrationRun, Invoice,
    PayAccount, PayPayment, Payee, PaymentBatch, PaymentDetail, decode::lenient,
};
use coupa_doc::{Object, Value};
use rust_decimal::Decimal;
use serde::Deserialize;

// ---------------------------------------------------------------------------------------------
// Helpers

fn samples_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/coupa-samples");
    assert!(
        dir.is_dir(),
        "Coupa sample payloads not found at {}: the fixture tests need /work/shared next to the \
         workspace",
        dir.display()
    );
    dir
}

fn seeds_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/seeds");
    assert!(dir.is_dir(), "seed fixtures not found at {}", dir.display());
    dir
}

fn read(dir: &Path, name: &str) -> Vec<u8> {
    let path = dir.join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

fn format_of(name: &str) -> Format {
    if name.ends_with(".xml") {
        Format::Xml
    } else if name.ends_with(".json") {
        Format::Json
    } else {
        panic!("{name}: neither JSON nor XML")
    }
}

fn parse_file(dir: &Path, name: &str) -> Value {
    wire::parse(format_of(name), &read(dir, name))
        .unwrap_or_else(|e| panic!("{name} does not parse: {e}"))
}

fn sample(name: &str) -> Value {
    parse_file(&samples_dir(), name)
}

fn seed(name: &str) -> Value {
    parse_file(&seeds_dir(), name)
}

/// A fragment as Compass prints it (`"payee": {...},`) made a document (`{"payee": {...}}`).
fn fragment_text(text: &str) -> String {
    format!("{{{}}}", text.trim().trim_end_matches(','))
}

fn json_fragment(dir: &Path, name: &str) -> Result<Value, DecodeError> {
    let text = String::from_utf8(read(dir, name)).expect("fragment is UTF-8");
    wire::parse(Format::Json, fragment_text(&text).as_bytes())
}

/// The one entry of a wrapped fragment.
fn fragment_entry(v: &Value, key: &str) -> Value {
    v.as_object()
        .and_then(|o| o.get(key))
        .cloned()
        .unwrap_or_else(|| panic!("fragment has no {key}"))
}

/// A request body with the `id` its URL would carry.
fn with_id(v: Value, id: i64) -> Value {
    match v {
        Value::Object(mut o) => {
            if !o.contains_key("id") {
                o.insert("id", id);
            }
            Value::Object(o)
        }
        other => panic!("a request body is an object, not {other:?}"),
    }
}

fn decode<T: serde::de::DeserializeOwned>(what: &str, v: &Value) -> T {
    wire::decode(v).unwrap_or_else(|e| panic!("{what}: {e}"))
}

fn decode_list<T: serde::de::DeserializeOwned>(what: &str, v: Value) -> Vec<T> {
    wire::list_items(v)
        .unwrap_or_else(|e| panic!("{what}: {e}"))
        .iter()
        .map(|item| decode(what, item))
        .collect()
}

fn dec(s: &str) -> Decimal {
    s.parse().expect("test decimal")
}

fn dt(s: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(s).expect("test datetime")
}

fn usd(amount: &str) -> Money {
    Money::new(dec(amount), "USD")
}

/// Decoding the same invoice after writing it in either format gives the same model: what
/// the simulator and the client write, they read back.
fn assert_round_trips(what: &str, v: &Value) {
    let want = format!("{:?}", decode::<Invoice>(what, v));
    for format in [Format::Json, Format::Xml] {
        let bytes = wire::encode(format, "invoice-header", v);
        let back = wire::parse(format, &bytes).unwrap_or_else(|e| panic!("{what}: {e}"));
        let got = format!("{:?}", decode::<Invoice>(what, &back));
        assert_eq!(got, want, "{what} changed through {format:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// coupa-samples

/// Every file in `coupa-samples`, each handled by a test below.
const SAMPLES: &[&str] = &[
    "account-show.json",
    "account-show.xml",
    "address-show.json",
    "address-show.xml",
    "coupa-pay-pay-from-account.fragment.json",
    "coupa-pay-pay-to-account.fragment.json",
    "coupa-pay-payee.fragment.json",
    "coupa-pay-payment-batch.fragment.json",
    "coupa-pay-payment-details.fragment.json",
    "empty-list-404.xml",
    "empty-list.json",
    "invoice-advance-payment.csv-quoted.txt",
    "invoice-create-draft-with-line.xml",
    "invoice-create-eu-fields.xml",
    "invoice-reference-number.csv-quoted.txt",
    "invoice-show-full.xml",
    "invoice-update-underscore-key.xml",
    "payment-put-format1-object.json",
    "payment-put-format2-array-in-object.json",
    "payment-put-format3-array.json",
    "payment-put-format4-dashed-payable.json",
    "payment-put-invoice-date-quoted.xml",
    "payment-put-legacy-and-array.xml",
    "payment-put-multiple.xml",
    "payment-put-nil-attributes.xml",
    "user-create-errors-400-cdata.xml",
    "user-create-errors-400.json",
    "validation-error-400.json",
    "validation-error-400.xml",
];

fn file_names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|e| {
            e.expect("directory entry")
                .file_name()
                .into_string()
                .expect("UTF-8 file name")
        })
        .collect()
}

#[test]
fn every_sample_file_is_covered() {
    let mut on_disk = file_names(&samples_dir());
    on_disk.remove("README.md");
    let known: BTreeSet<String> = SAMPLES.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(
        on_disk, known,
        "coupa-samples changed: give each new payload a decoding test"
    );
}

#[test]
fn invoice_show_full_xml_decodes_every_field_the_flows_use() {
    let v = sample("invoice-show-full.xml");
    let i: Invoice = decode("invoice-show-full.xml", &v);
    assert_eq!(i.id, InvoiceId(1));
    // `<invoice-number type="integer">500</invoice-number>`: text all the same.
    assert_eq!(i.invoice_number, Some(InvoiceNumber("500".into())));
    assert_eq!(i.invoice_date, Some(dt("2008-10-28T00:00:00-07:00")));
    assert_eq!(i.status, Some(InvoiceStatus::Approved));
    assert_eq!(i.exported, Some(false));
    assert_eq!(i.paid, Some(false));
    assert_eq!(i.payment_date, None, "<payment-date type=\"datetime\" />");
    assert_eq!(i.payment_notes, None, "<payment-notes />");
    assert_eq!(i.line_level_taxation, Some(false));
    assert_eq!(i.tax_amount, Some(dec("35.14")));
    assert_eq!(i.shipping_amount, Some(dec("0.0")));
    assert_eq!(i.handling_amount, Some(dec("0.0")));
    assert_eq!(i.misc_amount, Some(dec("0.0")));
    // The 2008 sample predates `gross-total` / `total-with-taxes`: no header total.
    assert_eq!((i.gross_total, i.total_with_taxes), (None, None));
    assert_eq!(i.total(), None);
    assert_eq!(
        i.currency,
        Some(Currency {
            id: Some(1),
            code: "USD".into(),
            decimals: None
        })
    );
    assert_eq!(i.currency_code(), Some("USD"));
    let supplier = i.supplier.as_ref().expect("supplier");
    assert_eq!(supplier.id.map(|s| s.get()), Some(17));
    assert_eq!(i.supplier_name(), Some("Insight"));
    assert_eq!(i.supplier_number(), None, "<number nil=\"true\" />");
    let account_type = i.account_type.as_ref().expect("account type");
    assert_eq!(
        (account_type.id, account_type.name.as_deref()),
        (Some(1), Some("Ace Corporate"))
    );
    assert_eq!(i.created_at, Some(dt("2008-10-28T11:19:49-07:00")));
    assert_eq!(i.updated_at, Some(dt("2008-10-28T11:24:44-07:00")));
    assert!(i.payments.is_empty());
    assert!(i.custom_fields.is_empty());
    assert!(i.current_integration_history_records.is_empty());

    assert_eq!(i.invoice_lines.len(), 1);
    let line = &i.invoice_lines[0];
    assert_eq!(line.id.map(|l| l.get()), Some(1));
    assert_eq!(line.line_num, Some(1));
    assert_eq!(line.line_type.as_deref(), Some("InvoiceQuantityLine"));
    assert_eq!(
        line.description.as_deref(),
        Some("Adobe Acrobat Professional -( v. 9 ) -complete package")
    );
    // `<quantity type="float">1.0</quantity>`: read exactly, not as a float.
    assert_eq!(line.quantity, Some(dec("1.0")));
    assert_eq!(line.price, Some(dec("425.99")));
    assert_eq!(line.total, Some(dec("425.99")));
    assert_eq!(line.tax_amount, Some(dec("0.00")));
    assert_eq!(line.status.as_deref(), Some("matched"));
    assert_eq!(
        line.uom.as_ref().and_then(|u| u.code.as_deref()),
        Some("EA")
    );
    let account = line.account.as_ref().expect("account");
    assert_eq!(account.id, Some(18));
    assert_eq!(account.code.as_deref(), Some("SF-IT-Assets"));
    assert_eq!(account.name.as_deref(), Some("San Francisco -IT, Assets"));

    assert_round_trips("invoice-show-full.xml", &v);
}

#[test]
fn invoice_create_draft_with_line_decodes() {
    let v = with_id(sample("invoice-create-draft-with-line.xml"), 320_001);
    let i: Invoice = decode("invoice-create-draft-with-line.xml", &v);
    assert_eq!(i.invoice_number, Some(InvoiceNumber("320".into())));
    assert_eq!(i.status, Some(InvoiceStatus::Draft));
    assert_eq!(i.invoice_lines.len(), 1);
    let line = &i.invoice_lines[0];
    assert_eq!(line.id, None);
    assert_eq!(
        (line.price, line.quantity, line.total, line.tax_amount),
        (
            Some(dec("499.00")),
            Some(dec("1.0")),
            Some(dec("499.00")),
            Some(dec("0.00"))
        )
    );
    assert_eq!(line.status.as_deref(), Some("new"));
    let account = line.account.as_ref().expect("account");
    assert_eq!(account.code.as_deref(), Some("HQ-IT-Assets"));
    assert_eq!(account.name.as_deref(), Some("HQ - IT, Assets"));
    assert_round_trips("invoice-create-draft-with-line.xml", &v);
}

#[test]
fn invoice_create_eu_fields_decodes_untyped_xml() {
    // No type attributes at all: dates, booleans and amounts arrive as text.
    let v = with_id(sample("invoice-create-eu-fields.xml"), 77);
    let i: Invoice = decode("invoice-create-eu-fields.xml", &v);
    assert_eq!(i.invoice_number, Some(InvoiceNumber("DEMO-PL-01".into())));
    assert_eq!(i.invoice_date, Some(dt("2025-11-06T00:00:00-08:00")));
    assert_eq!(i.line_level_taxation, Some(true));
    assert_eq!(i.total_with_taxes, Some(dec("10.80")));
    assert_eq!(i.gross_total, Some(dec("10.80")));
    assert_eq!(i.tax_amount, Some(dec("0.80")));
    assert_eq!(i.amount_due, Some(dec("10.80")));
    assert_eq!(i.total(), Some(Money::new(dec("10.80"), "PLN")));
    assert_eq!(i.supplier_name(), Some("Hg-Demo"));
    assert_eq!(
        i.payment_term.as_ref().and_then(|t| t.code.as_deref()),
        Some("NET 120")
    );
    assert_eq!(
        i.account_type.as_ref().and_then(|t| t.name.as_deref()),
        Some("COA Poland")
    );
    let cf = &i.custom_fields;
    assert_eq!(cf.len(), 3);
    assert_eq!(
        cf.text("supplier_invoice_date").as_deref(),
        Some("2025-11-06T00:00:00-08:00")
    );
    assert_eq!(cf.text("sap-error").as_deref(), Some("false"));
    assert_eq!(cf.text("is-this-blanket-order").as_deref(), Some("false"));

    let line = &i.invoice_lines[0];
    assert_eq!(line.description.as_deref(), Some("Demo Line 1"));
    assert_eq!(line.line_num, Some(1));
    assert_eq!(
        (line.price, line.quantity, line.tax_amount, line.total),
        (
            Some(dec("10.00")),
            Some(dec("1.0")),
            Some(dec("0.80")),
            Some(dec("10.00"))
        )
    );
    assert_eq!(
        line.uom.as_ref().and_then(|u| u.code.as_deref()),
        Some("EA")
    );
    assert_eq!(
        line.account.as_ref().and_then(|a| a.code.as_deref()),
        Some("100")
    );
    assert_round_trips("invoice-create-eu-fields.xml", &v);
}

#[test]
fn invoice_update_with_an_underscored_key_decodes() {
    let v = sample("invoice-update-underscore-key.xml");
    assert_eq!(
        v.pointer(&["invoice-description"]),
        Some(&Value::Text("Invoice Test Description".into())),
        "`invoice_description` is read under its canonical name"
    );
    let i: Invoice = decode("invoice-update-underscore-key.xml", &with_id(v, 5));
    assert_eq!(i.id, InvoiceId(5));
}

/// The XML inside a CSV cell as the docs print it: a first line `XML`, then the document in
/// double quotes with inner quotes doubled.
fn csv_quoted_xml(name: &str) -> Value {
    let text = String::from_utf8(read(&samples_dir(), name)).expect("UTF-8");
    let cell = text
        .trim()
        .strip_prefix("XML")
        .map(str::trim)
        .and_then(|t| t.strip_prefix('"'))
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or_else(|| panic!("{name}: not an XML CSV cell"));
    wire::parse(Format::Xml, cell.replace("\"\"", "\"").as_bytes())
        .unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn invoice_xml_quoted_in_csv_cells_decodes() {
    #[derive(Deserialize)]
    #[serde(rename_all = "kebab-case")]
    struct AdvancePayment {
        #[serde(default, deserialize_with = "lenient::decimal_opt")]
        advance_payment_received_amount: Option<Decimal>,
        #[serde(default, deserialize_with = "lenient::decimal_opt")]
        exchange_rate: Option<Decimal>,
        #[serde(default, deserialize_with = "lenient::datetime_opt")]
        customs_declaration_date: Option<DateTime<FixedOffset>>,
        #[serde(default, deserialize_with = "lenient::datetime_opt")]
        pre_payment_date: Option<DateTime<FixedOffset>>,
        credit_reason: Option<String>,
    }
    let v = with_id(csv_quoted_xml("invoice-advance-payment.csv-quoted.txt"), 1);
    let i: Invoice = decode("invoice-advance-payment", &v);
    assert_eq!(i.id, InvoiceId(1));
    let a: AdvancePayment = decode("invoice-advance-payment", &v);
    assert_eq!(a.advance_payment_received_amount, Some(dec("1000")));
    assert_eq!(a.exchange_rate, Some(dec("1.0")));
    assert_eq!(a.customs_declaration_date, Some(dt("2021-01-01T00:00:00Z")));
    assert_eq!(a.pre_payment_date, Some(dt("2025-10-01T00:00:00Z")));
    assert_eq!(a.credit_reason.as_deref(), Some("CREDIT-REASON"));

    let v = with_id(csv_quoted_xml("invoice-reference-number.csv-quoted.txt"), 2);
    assert_eq!(
        v.pointer(&["invoice-reference-number"]),
        Some(&Value::Text("TOTAL-64-CHARS".into()))
    );
    let i: Invoice = decode("invoice-reference-number", &v);
    // `<invoice-lines><invoice-line>` without `type="array"` is still a list of one.
    assert_eq!(i.invoice_lines.len(), 1);
    assert_eq!(i.invoice_lines[0].line_num, None);
}

/// `(amount, notes, check number, payment date)` of each payment.
type PaymentRow = (
    Decimal,
    Option<String>,
    Option<String>,
    DateTime<FixedOffset>,
);

fn payment_rows(i: &Invoice) -> Vec<PaymentRow> {
    i.payments
        .iter()
        .map(|p| {
            (
                p.amount_paid.expect("amount-paid"),
                p.notes.clone(),
                p.check_number.clone(),
                p.payment_date.expect("payment-date"),
            )
        })
        .collect()
}

fn row(amount: &str, notes: &str, check: Option<&str>, date: &str) -> PaymentRow {
    (
        dec(amount),
        Some(notes.to_owned()),
        check.map(str::to_owned),
        dt(date),
    )
}

/// Decodes a payment request body both ways: as an invoice (with the id its URL carries) and
/// through `payments_from_request`; both must agree.
fn payment_request(name: &str, v: Value) -> Invoice {
    let from_request = wire::payments_from_request(&v).unwrap_or_else(|e| panic!("{name}: {e}"));
    let i: Invoice = decode(name, &with_id(v, 4835));
    assert_eq!(
        format!("{from_request:?}"),
        format!("{:?}", i.payments),
        "{name}: payments_from_request disagrees with Invoice"
    );
    i
}

#[test]
fn payment_json_shape_1_object_in_object() {
    let i = payment_request(
        "payment-put-format1-object.json",
        sample("payment-put-format1-object.json"),
    );
    assert_eq!(
        payment_rows(&i),
        [row(
            "199.98",
            "String",
            Some("1234567"),
            "2019-09-12T00:00:00Z"
        )]
    );
    assert_eq!(i.paid, Some(false), r#""paid": "false""#);
    assert_eq!(i.payment_date, Some(dt("2019-09-11T00:00:00Z")));
    assert_eq!(
        i.payment_notes.as_deref(),
        Some("Partial payment with one payment check.")
    );
}

#[test]
fn payment_json_shape_2_array_in_object() {
    let i = payment_request(
        "payment-put-format2-array-in-object.json",
        sample("payment-put-format2-array-in-object.json"),
    );
    assert_eq!(
        payment_rows(&i),
        [
            row(
                "510",
                "A payment note",
                Some("test_check_number"),
                "2019-09-12T00:00:00Z"
            ),
            row(
                "53",
                "A payment note",
                Some("test_check_number"),
                "2019-09-11T00:00:00Z"
            ),
        ]
    );
    assert_eq!(i.amount_paid(), dec("563"));
    assert_eq!(i.paid, Some(false));
}

#[test]
fn payment_json_shape_3_array() {
    let i = payment_request(
        "payment-put-format3-array.json",
        sample("payment-put-format3-array.json"),
    );
    assert_eq!(
        payment_rows(&i),
        [
            row(
                "510",
                "payment_note",
                Some("test_check_number"),
                "2019-09-12T00:00:00Z"
            ),
            row(
                "53",
                "payment_note",
                Some("test_check_number"),
                "2019-09-11T00:00:00Z"
            ),
        ]
    );
    assert_eq!(
        i.payment_notes.as_deref(),
        Some("Two payments with two checks.")
    );
}

#[test]
fn payment_json_shape_4_dashed_with_payable() {
    let i = payment_request(
        "payment-put-format4-dashed-payable.json",
        sample("payment-put-format4-dashed-payable.json"),
    );
    assert_eq!(
        payment_rows(&i),
        [
            row("49.00", "TRM-19-0009584-PV", None, "2019-08-13T00:00:00Z"),
            row("51.00", "TRM-19-0009584-PV", None, "2019-08-13T00:00:00Z"),
        ]
    );
    for p in &i.payments {
        assert_eq!(p.payable_type.as_deref(), Some("InvoiceHeader"));
        assert_eq!(p.payable_id, Some(4835), r#""payable-id": "4835""#);
    }
    assert_eq!(i.paid, Some(true));
    assert_eq!(i.payment_date, Some(dt("2019-08-13T00:00:00Z")));
    assert_eq!(
        i.payment_notes.as_deref(),
        Some("eProc Voucher#TRM-19-0009584-PV/THB")
    );
}

#[test]
fn payment_xml_with_a_quoted_invoice_date() {
    let i = payment_request(
        "payment-put-invoice-date-quoted.xml",
        sample("payment-put-invoice-date-quoted.xml"),
    );
    // `<invoice-date type="datetime">"2019-10-22 00:00:00 -0900"</invoice-date>`
    assert_eq!(i.invoice_date, Some(dt("2019-10-22T00:00:00-09:00")));
    assert_eq!(
        i.invoice_number,
        Some(InvoiceNumber("Invoice_Number_1571292051.310760975".into()))
    );
    assert_eq!(
        payment_rows(&i),
        [row("5.00", "1003", None, "2019-10-22T00:00:00Z")]
    );
}

#[test]
fn payment_xml_legacy_header_fields_and_array() {
    let i = payment_request(
        "payment-put-legacy-and-array.xml",
        sample("payment-put-legacy-and-array.xml"),
    );
    assert_eq!(i.paid, Some(true));
    assert_eq!(i.payment_date, Some(dt("2009-06-23T00:00:00-08:00")));
    assert_eq!(
        i.payment_notes.as_deref(),
        Some("CHECK|#1003|USD|989.00|FULLY PAID|")
    );
    assert_eq!(
        payment_rows(&i),
        [row("989.00", "1003", None, "2009-06-23T00:00:00Z")]
    );
}

#[test]
fn payment_xml_multiple() {
    let i = payment_request(
        "payment-put-multiple.xml",
        sample("payment-put-multiple.xml"),
    );
    assert_eq!(
        payment_rows(&i),
        [
            row("4.00", "1003", None, "2009-06-23T00:00:00Z"),
            row("5.00", "1004", None, "2009-06-23T00:00:00Z"),
        ]
    );
    assert_eq!(i.amount_paid(), dec("9.00"));
}

#[test]
fn payment_xml_with_nil_attributes_on_values() {
    // `<amount-paid type="decimal" nil="true">100.23</amount-paid>`: the value wins.
    let i = payment_request(
        "payment-put-nil-attributes.xml",
        sample("payment-put-nil-attributes.xml"),
    );
    assert_eq!(
        payment_rows(&i),
        [
            row("100.23", "232", None, "2010-09-25T02:22:11Z"),
            row("9032.32", "233", None, "2010-09-25T02:22:11Z"),
        ]
    );
}

/// The five Coupa Pay fragments of one payment object, as Compass prints them.
fn pay_fragments(dir: &Path, names: [&str; 5]) -> Object {
    let keys = [
        "payment-details",
        "pay-from-account",
        "pay-to-account",
        "payee",
        "payment-batch",
    ];
    let mut o = Object::new();
    for (name, key) in names.iter().zip(keys) {
        let v = json_fragment(dir, name).unwrap_or_else(|e| panic!("{name}: {e}"));
        o.insert(key, fragment_entry(&v, key));
    }
    o
}

fn check_pay_fragments(what: &str, parts: &Object) {
    let details: Vec<PaymentDetail> = decode(what, parts.get("payment-details").expect("details"));
    assert_eq!(details.len(), 1);
    let d = &details[0];
    assert_eq!(d.id, Some(PaymentDetailId(848)));
    assert_eq!(
        d.payment_id,
        Some(PayPaymentId(776)),
        r#""payment-id": "776""#
    );
    assert_eq!(d.payable_id, Some(940));
    assert_eq!(d.payable_type.as_deref(), Some("CoupaPay::Invoice"));
    assert_eq!(d.source_transaction_type.as_deref(), Some("InvoiceHeader"));
    assert_eq!(d.source_transaction_id, Some(InvoiceId(940)));
    assert_eq!(
        d.source_transaction_reference,
        Some(InvoiceNumber("100223".into()))
    );
    assert_eq!(d.transaction_total, Some(dec("20000.00")));
    assert_eq!(d.discount_total, Some(dec("0.00")));
    assert_eq!(d.adjustment_total, Some(dec("0.00")));
    assert_eq!(d.payment_total, Some(dec("20000.00")));
    assert_eq!(d.payment(), Some(usd("20000.00")));
    assert_eq!(
        d.currency,
        Some(Currency {
            id: Some(1),
            code: "USD".into(),
            decimals: Some(2)
        })
    );

    let from: PayAccount = decode(what, parts.get("pay-from-account").expect("from"));
    assert_eq!(from.id, Some(654));
    assert_eq!(
        from.account_name.as_deref(),
        Some("Conferma - WEX Virtual Card")
    );
    assert_eq!(from.account_kind.as_deref(), Some("virtual_card"));
    assert_eq!(from.account_type, None);
    assert_eq!(from.currency.as_ref().map(|c| c.code.as_str()), Some("USD"));
    let partner = from.payment_partner.as_ref().expect("payment partner");
    assert_eq!(partner.id, Some(14));
    assert_eq!(partner.name.as_deref(), Some("Conferma - WEX"));
    assert_eq!(partner.issuing_bank.as_deref(), Some("WEX"));
    assert_eq!(
        partner.partner_type.as_deref(),
        Some("CoupaPay::VirtualCardPartner")
    );

    let to: PayAccount = decode(what, parts.get("pay-to-account").expect("to"));
    assert_eq!(to.id, Some(1446));
    assert_eq!(to.account_kind.as_deref(), Some("virtual_card"));
    assert!(to.currency.is_none(), r#""currency": null"#);
    let supplier = to.supplier.as_ref().expect("supplier");
    assert_eq!(supplier.id.map(|s| s.get()), Some(1538));
    assert_eq!(supplier.name.as_deref(), Some("Supplier Inc."));
    assert_eq!(supplier.number, None);

    let payee: Payee = decode(what, parts.get("payee").expect("payee"));
    assert_eq!(payee.id, Some(1638));
    assert_eq!(payee.name.as_deref(), Some("Supplier Name Inc."));
    assert_eq!(payee.display_name(), Some("Supplier Name Inc."));
    // A supplier payee: the user fields are absent (the e-mail is the contact's, nested).
    assert_eq!(
        (payee.login, payee.email, payee.fullname),
        (None, None, None)
    );

    let batch: PaymentBatch = decode(what, parts.get("payment-batch").expect("batch"));
    assert_eq!(batch.id, Some(232));
    assert_eq!(batch.status.as_deref(), Some("approved"));

    // Put together, the fragments make a payment.
    let mut payment = parts
        .clone()
        .with("id", 776i64)
        .with("status", "completed_successfully")
        .with("pay-to-total", "20000.00")
        .with("external-ref-id", 883001i64);
    payment.insert(
        "pay-to-currency",
        Object::new()
            .with("id", 1i64)
            .with("code", "USD")
            .with("decimals", 2i64),
    );
    let p: PayPayment = decode(what, &Value::Object(payment));
    assert_eq!(p.id, PayPaymentId(776));
    assert_eq!(p.pay_to(), Some(usd("20000.00")));
    assert_eq!(p.pay_from(), None, "no pay-from-total in the fragments");
    assert_eq!(p.external_ref_id.as_deref(), Some("883001"));
    assert_eq!(p.payment_details.len(), 1);
    assert_eq!(
        p.payee.and_then(|p| p.name).as_deref(),
        Some("Supplier Name Inc.")
    );
}

#[test]
fn coupa_pay_fragments_decode_into_their_types() {
    check_pay_fragments(
        "coupa-pay fragments",
        &pay_fragments(
            &samples_dir(),
            [
                "coupa-pay-payment-details.fragment.json",
                "coupa-pay-pay-from-account.fragment.json",
                "coupa-pay-pay-to-account.fragment.json",
                "coupa-pay-payee.fragment.json",
                "coupa-pay-payment-batch.fragment.json",
            ],
        ),
    );
}

#[test]
fn error_samples_give_their_messages_in_both_formats() {
    let json = wire::error_messages(&sample("user-create-errors-400.json"));
    let xml = wire::error_messages(&sample("user-create-errors-400-cdata.xml"));
    assert_eq!(
        json,
        [
            "Login has already been taken",
            "Email has already been taken"
        ]
    );
    assert_eq!(xml, json, "the same failure reads the same in JSON and XML");

    assert_eq!(
        wire::error_messages(&sample("validation-error-400.json")),
        ["Segment 1 - Cost Center can't be blank"]
    );
    // Coupa's own XML copy of the same error ends with a full stop.
    assert_eq!(
        wire::error_messages(&sample("validation-error-400.xml")),
        ["Segment 1 - Cost Center can't be blank."]
    );
}

#[test]
fn empty_list_samples_are_empty_lists() {
    let empty = sample("empty-list.json");
    assert!(wire::list_items(empty).expect("empty JSON list").is_empty());

    let not_found = sample("empty-list-404.xml");
    assert_eq!(wire::error_messages(&not_found), [wire::NO_RESULTS]);
    assert!(wire::is_no_results(&not_found));
    assert!(
        wire::list_items(not_found)
            .expect("the 404 envelope")
            .is_empty()
    );
}

#[test]
fn account_and_address_samples_decode() {
    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "kebab-case")]
    struct Account {
        id: i64,
        name: Option<String>,
        code: Option<String>,
        active: Option<bool>,
        segment_1: Option<String>,
        segment_2: Option<String>,
        #[serde(default, deserialize_with = "lenient::datetime_opt")]
        created_at: Option<DateTime<FixedOffset>>,
    }
    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "kebab-case")]
    struct Address {
        id: i64,
        street1: Option<String>,
        postal_code: Option<String>,
        location_code: Option<String>,
        /// Text in the JSON sample, an object in the XML one.
        #[serde(default, deserialize_with = "lenient::name_or_text_opt")]
        country: Option<String>,
    }
    for name in [
        "account-show.json",
        "account-show.xml",
        "address-show.json",
        "address-show.xml",
    ] {
        let v = sample(name);
        let _: serde::de::IgnoredAny = decode(name, &v);
        assert!(v.as_object().is_some_and(|o| !o.is_empty()), "{name}");
    }

    let a: Account = decode("account-show.json", &sample("account-show.json"));
    assert_eq!(a.id, 43);
    assert_eq!(a.name.as_deref(), Some("account_1475848721.456090234"));
    assert_eq!(a.code.as_deref(), Some("segment11475848721222"));
    assert_eq!(a.segment_1, a.code);
    assert_eq!(a.active, Some(true));
    assert_eq!(a.created_at, Some(dt("2016-10-07T06:59:46-07:00")));

    // `type="dateTime"`, `nil="true"`, and a stray `-----` line the reader ignores.
    let a: Account = decode("account-show.xml", &sample("account-show.xml"));
    assert_eq!(a.id, 41);
    assert_eq!(a.created_at, Some(dt("2016-10-07T06:56:43-07:00")));
    assert_eq!(a.active, Some(true));
    assert_eq!(a.segment_2, None);

    let a: Address = decode("address-show.json", &sample("address-show.json"));
    assert_eq!(a.id, 99);
    assert_eq!(a.postal_code.as_deref(), Some("94404"), "`postal_code`");
    assert_eq!(a.country.as_deref(), Some("United States"));
    let a: Address = decode("address-show.xml", &sample("address-show.xml"));
    assert_eq!(a.id, 97);
    assert_eq!(a.street1.as_deref(), Some("2 W 5th Ave"));
    assert_eq!(a.location_code, None);
    assert_eq!(a.country.as_deref(), Some("United States"));
}

// ---------------------------------------------------------------------------------------------
// Seeds

#[test]
fn every_seed_fixture_is_covered() {
    let on_disk = file_names(&seeds_dir());
    let known: BTreeSet<String> = SEED_FIXTURES.iter().map(|s| (*s).to_owned()).collect();
    assert_eq!(on_disk, known, "give each seed fixture a decoding test");
}

const SEED_FIXTURES: &[&str] = &[
    "000-1-invoice-show-response.xml",
    "000-2-invoice-payment-request.xml",
    "001-01-invoice-mark-exported-response.json",
    "001-02-invoice-custom-fields-success.json",
    "001-03-invoice-custom-fields-failure-request.json",
    "001-04-invoice-custom-fields-error-response.json",
    "001-05-history-records-unresolved-response.json",
    "001-06-history-records-resolved-response.json",
    "001-07-invoice-erp-number-request.json",
    "001-08-invoice-erp-number-response.json",
    "001-09-history-record-success-request.json",
    "001-10-history-record-success-response.json",
    "001-11-history-record-create-alert-request.json",
    "001-12-history-record-create-alert-response.json",
    "001-13-integration-run-create-request.json",
    "001-14-integration-run-response.json",
    "001-15-integration-run-start-request.json",
    "001-16-integration-errors-unresolved-response.json",
    "001-17-integration-errors-resolved-response.json",
    "001-18-history-record-with-run-request.json",
    "001-19-integration-error-create-alert-request.json",
    "001-20-integration-error-create-alert-response.json",
    "001-21-integration-run-success-response.json",
    "001-22-integration-run-fail-response.json",
    "002-1-pay-payment-mark-exported-request.xml",
    "002-2-payment-details.fragment.json",
    "002-3-pay-from-account.fragment.json",
    "002-4-pay-to-account.fragment.json",
    "002-5-payee.fragment.json",
    "002-6-payment-batch.fragment.json",
    "003-1-pay-payment-mark-exported-request.xml",
    "003-2-payment-details.fragment.json",
    "003-3-pay-from-account.fragment.json",
    "003-4-pay-to-account.fragment.json",
    "003-5-payee.fragment.json",
    "003-6-payment-batch.fragment.json",
    "004-1-invoice-payment-legacy-and-array.xml",
    "004-2-invoice-payment-invoice-date-quoted.xml",
    "004-3-invoice-payment-multiple.xml",
    "004-4-invoice-payment-nil-attributes.xml",
    "004-5-payment-format1-object.json",
    "004-6-payment-format2-array-in-object.json",
    "004-7-payment-format3-array.json",
    "004-8-payment-format4-dashed-payable.json",
    "api-01-return-object-limited.json",
    "api-02-history-record-create-request.json",
    "api-03-history-record-resolve-response.json",
    "api-04-invoice-custom-fields.fragment.json",
    "api-05-invoice-custom-fields.fragment.xml",
    "api-06-invoice-payment-request.xml",
    "api-07-invoice-paid-flag.fragment.xml",
    "api-08-errors-envelope.xml",
    "api-09-errors-cdata.fragment.xml",
    "api-10-errors-with-warnings.json",
];

#[test]
fn seed_000_invoice_lookup_and_payment_post() {
    // The `...` elision lines of the printed response sit between elements; the reader skips
    // text next to child elements, so they are kept.
    let i: Invoice = decode("000-1", &seed("000-1-invoice-show-response.xml"));
    assert_eq!(i.id, InvoiceId(106));
    assert_eq!(i.invoice_number, Some(InvoiceNumber("test1234536".into())));
    assert_eq!(i.supplier_name(), Some("12345"));

    let v = seed("000-2-invoice-payment-request.xml");
    let i = payment_request("000-2", v);
    assert_eq!(i.paid, Some(true));
    assert_eq!(i.payment_date, Some(dt("2016-06-23T00:00:00-08:00")));
    assert_eq!(
        i.payment_notes.as_deref(),
        Some("ADAMTEST|#10|USD|1.00|FULLY PAID|")
    );
    // `<payments><payment>` without `type="array"`: still a list.
    assert_eq!(
        payment_rows(&i),
        [row("1.00", "10", None, "2016-06-23T00:00:00Z")]
    );
}

#[test]
fn seed_001_invoice_payloads() {
    let i: Invoice = decode(
        "001-01",
        &seed("001-01-invoice-mark-exported-response.json"),
    );
    assert_eq!((i.id, i.exported), (InvoiceId(1001), Some(true)));
    assert!(i.invoice_lines.is_empty() && i.custom_fields.is_empty());

    let i: Invoice = decode("001-02", &seed("001-02-invoice-custom-fields-success.json"));
    assert_eq!(i.exported, Some(true));
    assert_eq!(
        i.custom_fields.text("cf_erp_invoice_number").as_deref(),
        Some("<Invoice number in the ERP>")
    );
    assert_eq!(
        i.custom_fields.text("cf-integration-status").as_deref(),
        Some("Success: The Invoice was replicated in your ERP")
    );

    let v = with_id(
        seed("001-03-invoice-custom-fields-failure-request.json"),
        1001,
    );
    let i: Invoice = decode("001-03", &v);
    assert_eq!(i.exported, None);
    assert_eq!(
        i.custom_fields.text("cf-integration-status").as_deref(),
        Some("Failure: The Invoice could not be replicated in your ERP")
    );

    let i: Invoice = decode(
        "001-04",
        &seed("001-04-invoice-custom-fields-error-response.json"),
    );
    assert_eq!(
        i.custom_fields.get("cf-erp-invoice-number"),
        Some(&Value::Null)
    );
    assert_eq!(i.custom_fields.text("cf-erp-invoice-number"), None);
    assert_eq!(
        i.custom_fields.text("cf-integration-status").as_deref(),
        Some("Error[2] : The Invoice was properly replicated in your ERP")
    );

    let v = with_id(seed("001-07-invoice-erp-number-request.json"), 1001);
    let request: Invoice = decode("001-07", &v);
    let response: Invoice = decode("001-08", &seed("001-08-invoice-erp-number-response.json"));
    assert_eq!(request.custom_fields, response.custom_fields);
    assert_eq!(
        response
            .custom_fields
            .text("cf-erp-invoice-number")
            .as_deref(),
        Some("<Invoice number in the ERP>")
    );
    assert_eq!(response.exported, Some(true));
}

#[test]
fn seed_001_history_records() {
    for (name, resolved) in [
        ("001-05-history-records-unresolved-response.json", false),
        ("001-06-history-records-resolved-response.json", true),
    ] {
        let records: Vec<HistoryRecord> = decode_list(name, seed(name));
        assert_eq!(records.len(), 1, "{name}");
        let r = &records[0];
        assert_eq!(r.id, HistoryRecordId(7001));
        assert_eq!(r.document_id, Some(1001));
        assert_eq!(r.status.as_deref(), Some("Error"));
        assert_eq!(r.resolved, Some(resolved), "{name}");
    }

    let success: HistoryRecord = decode(
        "001-09",
        &with_id(seed("001-09-history-record-success-request.json"), 7002),
    );
    assert_eq!(success.document_type.as_deref(), Some("InvoiceHeader"));
    assert_eq!(success.document_id, Some(1001));
    assert_eq!(success.document_status.as_deref(), Some("<Invoice status>"));
    assert_eq!(
        success.contact_alert_type,
        Some(ContactAlertType::Functional)
    );
    assert_eq!(success.status.as_deref(), Some("Success"));
    assert_eq!(
        success.integration.as_ref().and_then(|i| i.code.as_deref()),
        Some("<Customer Integration id>")
    );
    assert_eq!(success.run_id(), None);
    assert_eq!(success.responses.len(), 1);
    assert_eq!(
        success.responses[0].response_code.as_deref(),
        Some("Success-1234")
    );
    assert_eq!(
        success.responses[0].response_message.as_deref(),
        Some("The integration in the ERP went well")
    );

    for (name, status) in [
        ("001-10-history-record-success-response.json", "Success"),
        ("001-12-history-record-create-alert-response.json", "Error"),
    ] {
        let r: HistoryRecord = decode(name, &seed(name));
        assert_eq!(r.id, HistoryRecordId(7002), "{name}");
        assert_eq!(r.document_id, Some(1001));
        assert_eq!(r.status.as_deref(), Some(status));
    }

    let alert: HistoryRecord = decode(
        "001-11",
        &with_id(
            seed("001-11-history-record-create-alert-request.json"),
            7002,
        ),
    );
    assert_eq!(alert.status.as_deref(), Some("Error"));
    let messages: Vec<_> = alert
        .responses
        .iter()
        .map(|r| (r.response_code.as_deref(), r.response_message.as_deref()))
        .collect();
    assert_eq!(
        messages,
        [
            (
                Some("Failure-CC"),
                Some("Header: Period is currently closed for Booking")
            ),
            (
                Some("Failure-CC"),
                Some("Line 1: Cost center CA234 is closed for invoicing")
            ),
        ]
    );

    let with_run: HistoryRecord = decode(
        "001-18",
        &with_id(seed("001-18-history-record-with-run-request.json"), 7003),
    );
    assert_eq!(with_run.run_id(), Some(IntegrationRunId(501)));
    assert_eq!(with_run.integration_run_id, None);
}

#[test]
fn seed_001_integration_runs() {
    let create: IntegrationRun = decode(
        "001-13",
        &with_id(seed("001-13-integration-run-create-request.json"), 501),
    );
    assert_eq!(
        create.integration.as_ref().and_then(|i| i.code.as_deref()),
        Some("{{Integration_Code}}")
    );
    assert_eq!(create.status, None);

    let created: IntegrationRun = decode("001-14", &seed("001-14-integration-run-response.json"));
    assert_eq!(created.id, IntegrationRunId(501));

    // `{"total_records": 3}`: an underscored key, read as `total-records`.
    let start: IntegrationRun = decode(
        "001-15",
        &with_id(seed("001-15-integration-run-start-request.json"), 501),
    );
    assert_eq!(start.total_records, Some(3));

    for (name, status) in [
        (
            "001-21-integration-run-success-response.json",
            RunStatus::Successful,
        ),
        (
            "001-22-integration-run-fail-response.json",
            RunStatus::Failed,
        ),
    ] {
        let run: IntegrationRun = decode(name, &seed(name));
        assert_eq!(run.id, IntegrationRunId(501));
        assert_eq!(run.status.as_ref(), Some(&status), "{name}");
        assert!(status.is_final());
    }
}

#[test]
fn seed_001_integration_errors() {
    for (name, resolved, document_type) in [
        (
            "001-16-integration-errors-unresolved-response.json",
            false,
            Some("InvoiceHeader"),
        ),
        (
            "001-17-integration-errors-resolved-response.json",
            true,
            None,
        ),
    ] {
        let errors: Vec<IntegrationError> = decode_list(name, seed(name));
        assert_eq!(errors.len(), 1);
        let e = &errors[0];
        assert_eq!(e.id, IntegrationErrorId(9001));
        assert_eq!(e.document_id, Some(1001));
        assert_eq!(e.document_type.as_deref(), document_type);
        assert_eq!(e.resolved, Some(resolved), "{name}");
    }

    // The flat `"integration-run-id": "501"` (a string, as printed) of the create_alert body.
    let alert: IntegrationError = decode(
        "001-19",
        &with_id(
            seed("001-19-integration-error-create-alert-request.json"),
            9002,
        ),
    );
    assert_eq!(alert.integration_run_id, Some(IntegrationRunId(501)));
    assert!(alert.integration_run.is_none());
    assert_eq!(alert.run_id(), Some(IntegrationRunId(501)));
    assert_eq!(alert.responses.len(), 2);
    assert_eq!(alert.contact_alert_type, Some(ContactAlertType::Functional));

    let created: IntegrationError = decode(
        "001-20",
        &seed("001-20-integration-error-create-alert-response.json"),
    );
    assert_eq!(created.id, IntegrationErrorId(9002));
    assert_eq!(created.status.as_deref(), Some("Error"));
}

#[test]
fn seed_002_coupa_pay_payloads() {
    let p: PayPayment = decode(
        "002-1",
        &with_id(seed("002-1-pay-payment-mark-exported-request.xml"), 776),
    );
    assert_eq!((p.id, p.exported), (PayPaymentId(776), Some(true)));

    // The same fragments as coupa-samples, with the page's indentation.
    check_pay_fragments(
        "seed 002 fragments",
        &pay_fragments(
            &seeds_dir(),
            [
                "002-2-payment-details.fragment.json",
                "002-3-pay-from-account.fragment.json",
                "002-4-pay-to-account.fragment.json",
                "002-5-payee.fragment.json",
                "002-6-payment-batch.fragment.json",
            ],
        ),
    );
}

#[test]
fn seed_003_machine_translation_is_refused() {
    let e = wire::decode::<PayPayment>(&with_id(
        seed("003-1-pay-payment-mark-exported-request.xml"),
        776,
    ))
    .expect_err("`wahr` is not a boolean");
    assert_eq!(e.to_string(), r#"at exported: invalid boolean "wahr""#);

    for name in [
        "003-2-payment-details.fragment.json",
        "003-3-pay-from-account.fragment.json",
        "003-4-pay-to-account.fragment.json",
        "003-5-payee.fragment.json",
        "003-6-payment-batch.fragment.json",
    ] {
        let e = json_fragment(&seeds_dir(), name).expect_err("typographic quotes");
        assert_eq!(e.path, ".", "{name}");
        assert!(e.message.starts_with("unreadable JSON body"), "{name}: {e}");
    }
}

#[test]
fn seed_004_machine_translation_is_refused_with_the_field_named() {
    let cases = [
        (
            "004-1-invoice-payment-legacy-and-array.xml",
            r#"at paid: invalid boolean "wahr""#,
            r#"at payments[0].amount-paid: invalid decimal "989,00""#,
        ),
        (
            // The translated `invoice-date` (`"22.10.2019 00:00:00 -0900"`) is still a date,
            // and the stray `Rechnungsnummer_` text is skipped; the amount is not a number.
            "004-2-invoice-payment-invoice-date-quoted.xml",
            r#"at payments[0].amount-paid: invalid decimal "5,00""#,
            r#"at payments[0].amount-paid: invalid decimal "5,00""#,
        ),
        (
            "004-3-invoice-payment-multiple.xml",
            r#"at payments[0].amount-paid: invalid decimal "4,00""#,
            r#"at payments[0].amount-paid: invalid decimal "4,00""#,
        ),
        (
            // `type="decimal"` on `100,23`: the reader keeps the text, the decoder names it.
            "004-4-invoice-payment-nil-attributes.xml",
            r#"at paid: invalid boolean "wahr""#,
            r#"at payments[0].amount-paid: invalid decimal "100,23""#,
        ),
    ];
    for (name, as_invoice, as_payments) in cases {
        let v = seed(name);
        let e = wire::decode::<Invoice>(&with_id(v.clone(), 1)).expect_err(name);
        assert_eq!(e.to_string(), as_invoice, "{name}");
        let e = wire::payments_from_request(&v).expect_err(name);
        assert_eq!(e.to_string(), as_payments, "{name}");
    }
    let i = seed("004-2-invoice-payment-invoice-date-quoted.xml");
    assert_eq!(
        i.pointer(&["invoice-date"]).and_then(Value::as_datetime),
        Some(dt("2019-10-22T00:00:00-09:00"))
    );

    for name in [
        "004-5-payment-format1-object.json",
        "004-6-payment-format2-array-in-object.json",
        "004-7-payment-format3-array.json",
    ] {
        let e = wire::parse(Format::Json, &read(&seeds_dir(), name)).expect_err(name);
        assert!(e.message.starts_with("unreadable JSON body"), "{name}: {e}");
    }

    // Format 4 survived translation as valid JSON, with the amount key translated away
    // (`"bezahlter Betrag": "49.00"`): the payments decode, but without an amount, and
    // `"paid": "wahr"` is refused. Callers must treat a payment without an amount as invalid.
    let v = seed("004-8-payment-format4-dashed-payable.json");
    let e = wire::decode::<Invoice>(&with_id(v.clone(), 4835)).expect_err("wahr");
    assert_eq!(e.to_string(), r#"at paid: invalid boolean "wahr""#);
    let payments = wire::payments_from_request(&v).expect("structurally valid");
    assert_eq!(payments.len(), 2);
    assert!(
        payments
            .iter()
            .all(|p| p.amount_paid.is_none() && p.payment_date.is_none())
    );
    assert!(payments.iter().all(|p| p.payable_id == Some(4835)));
}

#[test]
fn coupa_api_md_examples() {
    // `return_object=limited`: ids only.
    let i: Invoice = decode("api-01", &seed("api-01-return-object-limited.json"));
    assert_eq!(i.id, InvoiceId(1));
    assert!(i.invoice_number.is_none() && i.status.is_none() && i.invoice_lines.is_empty());

    let r: HistoryRecord = decode(
        "api-02",
        &with_id(seed("api-02-history-record-create-request.json"), 7001),
    );
    assert_eq!(r.document_id, Some(1001));
    assert_eq!(r.document_status.as_deref(), Some("approved"));
    assert_eq!(r.run_id(), Some(IntegrationRunId(501)));
    assert_eq!(
        r.responses[0].response_code.as_deref(),
        Some("Success-1234")
    );

    let resolved: Vec<HistoryRecord> = decode_list(
        "api-03",
        seed("api-03-history-record-resolve-response.json"),
    );
    assert_eq!(resolved.len(), 1);
    assert_eq!(
        (resolved[0].id, resolved[0].resolved),
        (HistoryRecordId(7001), Some(true))
    );

    let v = json_fragment(&seeds_dir(), "api-04-invoice-custom-fields.fragment.json")
        .expect("fragment");
    let i: Invoice = decode("api-04", &with_id(v, 1));
    assert_eq!(
        i.custom_fields.text("cf-erp-invoice-number").as_deref(),
        Some("...")
    );
    assert_eq!(i.custom_fields.len(), 2);

    let wrap = |name: &str, root: &str| {
        let text = String::from_utf8(read(&seeds_dir(), name)).expect("UTF-8");
        wire::parse(Format::Xml, format!("<{root}>{text}</{root}>").as_bytes())
            .unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let i: Invoice = decode(
        "api-05",
        &with_id(
            wrap(
                "api-05-invoice-custom-fields.fragment.xml",
                "invoice-header",
            ),
            1,
        ),
    );
    assert_eq!(i.custom_fields.text("custom_field_1").as_deref(), Some("…"));

    // RTF_Code's body: single-quoted attributes.
    let i = payment_request("api-06", seed("api-06-invoice-payment-request.xml"));
    assert_eq!(
        payment_rows(&i),
        [row("100.00", "check#", None, "2016-06-23T00:00:00-08:00")]
    );
    let i: Invoice = decode(
        "api-07",
        &with_id(
            wrap("api-07-invoice-paid-flag.fragment.xml", "invoice-header"),
            1,
        ),
    );
    assert_eq!(i.paid, Some(true));

    assert_eq!(
        wire::error_messages(&seed("api-08-errors-envelope.xml")),
        ["…"]
    );
    assert_eq!(
        wire::error_messages(&wrap("api-09-errors-cdata.fragment.xml", "errors")),
        ["Login has already been taken"]
    );
    assert_eq!(
        wire::error_messages(&seed("api-10-errors-with-warnings.json")),
        ["Login has already been taken"]
    );
}

// ---------------------------------------------------------------------------------------------
// What the simulator emits

mod simulator {
    use super::*;
    use coupa_api::domain::{DataFileStatus, PayPaymentStatus};
    use coupa_api::wire::{DataFileSource, Integration, IntegrationContact};
    use coupa_sim::config::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET};
    use coupa_sim::{Resource, SimConfig};

    fn page(db: &coupa_sim::Db, resource: Resource, format: Format) -> Value {
        let rows: Vec<Value> = db
            .table(resource)
            .rows()
            .map(|o| Value::Object(o.clone()))
            .collect();
        let bytes = wire::encode(format, resource.list_element(), &Value::Array(rows));
        wire::parse(format, &bytes).expect("the simulator's own output parses")
    }

    /// Every seeded record, written as the simulator serves it, decodes in both formats.
    #[test]
    fn seeded_records_decode_in_both_formats() {
        let config = SimConfig::default();
        let db = coupa_sim::seed::generate(&config);
        for format in [Format::Json, Format::Xml] {
            let invoices: Vec<Invoice> =
                decode_list("invoices", page(&db, Resource::Invoices, format));
            assert_eq!(invoices.len(), config.invoices, "{format:?}");
            for i in &invoices {
                assert!(i.invoice_number.is_some() && i.status.is_some(), "{i:?}");
                assert!(i.total().is_some(), "invoice {} has a total", i.id);
                assert!(!i.invoice_lines.is_empty(), "invoice {} has lines", i.id);
                for line in &i.invoice_lines {
                    assert!(line.total.is_some() && line.quantity.is_some());
                }
                if i.paid == Some(true) {
                    assert!(i.amount_paid() > Decimal::ZERO, "invoice {}", i.id);
                }
            }
            assert!(invoices.iter().any(|i| !i.payments.is_empty()));

            let payments: Vec<PayPayment> =
                decode_list("pay payments", page(&db, Resource::PayPayments, format));
            assert_eq!(payments.len(), config.pay_payments, "{format:?}");
            for p in &payments {
                assert!(p.status.is_some() && p.pay_to().is_some(), "{p:?}");
                let details: Decimal = p
                    .payment_details
                    .iter()
                    .filter_map(|d| d.payment_total)
                    .sum();
                assert_eq!(Some(details), p.pay_to_total, "payment {}", p.id);
                for d in &p.payment_details {
                    assert_eq!(d.payment_id, Some(p.id));
                    assert!(d.source_transaction_id.is_some());
                }
            }
            assert!(
                payments
                    .iter()
                    .any(|p| p.payee.as_ref().is_some_and(|payee| payee.login.is_some())),
                "an employee payee is seeded"
            );
            assert!(
                payments
                    .iter()
                    .any(|p| matches!(p.status, Some(PayPaymentStatus::CompletedSuccessfully)))
            );

            let integrations: Vec<Integration> =
                decode_list("integrations", page(&db, Resource::Integrations, format));
            assert!(!integrations.is_empty());
            assert!(integrations.iter().all(|i| i.code.is_some()));
            let contacts: Vec<IntegrationContact> =
                decode_list("contacts", page(&db, Resource::IntegrationContacts, format));
            assert!(
                contacts
                    .iter()
                    .all(|c| c.contact_alert_type.is_some() && c.integration.is_some())
            );
        }
    }

    async fn call(
        http: &reqwest::Client,
        method: reqwest::Method,
        url: String,
        token: &str,
        format: Format,
        body: Option<&str>,
    ) -> (u16, Value) {
        let mut request = http
            .request(method, url)
            .bearer_auth(token)
            .header("Accept", format.mime());
        if let Some(body) = body {
            request = request
                .header("Content-Type", Format::Json.mime())
                .body(body.to_owned());
        }
        let response = request.send().await.expect("simulator answers");
        let status = response.status().as_u16();
        let bytes = response.bytes().await.expect("body");
        (
            status,
            wire::parse(format, &bytes).expect("the simulator's body parses"),
        )
    }

    /// The records the flows create at run time (runs, history records, errors, CSV loads) and
    /// the simulator's error bodies, read back over HTTP in both formats.
    #[tokio::test]
    async fn runtime_records_and_errors_decode_in_both_formats() {
        use reqwest::Method;
        let sim = coupa_sim::spawn(SimConfig {
            invoices: 5,
            pay_payments: 2,
            ..SimConfig::default()
        })
        .await
        .expect("simulator starts");
        let base = sim.base_url();
        let api = |path: &str| format!("{base}/api/{path}");
        let http = reqwest::Client::new();

        let response = http
            .post(format!("{base}/oauth2/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", DEFAULT_CLIENT_ID),
                ("client_secret", DEFAULT_CLIENT_SECRET),
            ])
            .send()
            .await
            .expect("token");
        let body = response.bytes().await.expect("token body");
        let token = wire::parse(Format::Json, &body)
            .expect("token JSON")
            .pointer(&["access-token"])
            .and_then(Value::as_str)
            .map(str::to_owned)
            .expect("access_token");

        let json = Format::Json;
        let (status, _) = call(&http, Method::POST, api("integrations"), &token, json, Some(
            r#"{"name": "Invoices to ERP", "code": "ERP-INVOICES", "business-object": "InvoiceHeader",
                "direction": "from_coupa", "end-system": "ERP", "end-system-type": "erp",
                "integration-type": "api"}"#,
        ))
        .await;
        assert_eq!(status, 201);
        let (status, run) = call(
            &http,
            Method::POST,
            api("integration_runs"),
            &token,
            json,
            Some(r#"{"integration": {"code": "ERP-INVOICES"}}"#),
        )
        .await;
        assert_eq!(status, 201);
        let run: IntegrationRun = decode("created run", &run);
        assert_eq!(run.status, Some(RunStatus::Pending));
        let r = run.id.get();
        let (_, started) = call(
            &http,
            Method::PUT,
            api(&format!("integration_runs/{r}/run")),
            &token,
            json,
            Some(r#"{"total_records": 2}"#),
        )
        .await;
        let started: IntegrationRun = decode("started run", &started);
        assert_eq!(started.status, Some(RunStatus::Running));
        assert_eq!(started.total_records, Some(2));
        assert!(started.start_time.is_some());

        let record = format!(
            r#"{{"document-type": "InvoiceHeader", "document-id": 1001, "document-status": "approved",
                "contact-alert-type": "Functional", "status": "Success",
                "integration": {{"code": "ERP-INVOICES"}}, "integration-run": {{"id": {r}}},
                "responses": [{{"response-code": "Success-1", "response-message": "ok"}}]}}"#
        );
        let (status, _) = call(
            &http,
            Method::POST,
            api("integration_history_records"),
            &token,
            json,
            Some(&record),
        )
        .await;
        assert_eq!(status, 201);
        let alert = format!(
            r#"{{"document-type": "InvoiceHeader", "document-id": 1002, "document-status": "approved",
                "contact-alert-type": "Functional", "status": "Error", "integration-run-id": "{r}",
                "responses": [{{"response-code": "Failure-CC", "response-message": "Period closed"}}]}}"#
        );
        let (status, _) = call(
            &http,
            Method::POST,
            api("integration_errors/create_alert"),
            &token,
            json,
            Some(&alert),
        )
        .await;
        assert_eq!(status, 201);

        let csv = concat!(
            r##""Supplier Name","Supplier Number","Invoice Number","Invoice Date","Invoice ID","##,
            r##""Expense Report Id","Paid","Paid-in-Full Date","Paid-in-Full Note","##,
            r##""Check Amount Paid","Check # / Note","Check Payment Date""##,
            "\n",
            r##""Nobody","SUP-99999","NOPE-1","","","","Y","","","10.00","55002","##,
            r##""2026-11-20T00:00:00-07:00""##,
            "\n",
        );
        let load = coupa_sim::csv_loader::load(&sim.state, "payments_fixture_.csv", csv.as_bytes());

        for format in [Format::Json, Format::Xml] {
            let get = |path: &str| call(&http, Method::GET, api(path), &token, format, None);
            let (_, runs) = get("integration_runs").await;
            let runs: Vec<IntegrationRun> = decode_list("runs", runs);
            let run = runs
                .iter()
                .find(|x| x.id == run.id)
                .expect("the run is listed");
            assert_eq!(run.total_records, Some(2), "{format:?}");
            assert_eq!(
                run.integration.as_ref().and_then(|i| i.code.as_deref()),
                Some("ERP-INVOICES")
            );

            let (_, records) = get("integration_history_records").await;
            let records: Vec<HistoryRecord> = decode_list("records", records);
            let rec = records
                .iter()
                .find(|x| x.document_id == Some(1001))
                .expect("record");
            assert_eq!(rec.run_id(), Some(run.id), "{format:?}");
            assert_eq!(rec.resolved, Some(false));
            assert_eq!(rec.responses.len(), 1);
            assert!(rec.created_at.is_some());

            let (_, errors) = get("integration_errors").await;
            let errors: Vec<IntegrationError> = decode_list("errors", errors);
            let err = errors
                .iter()
                .find(|x| x.document_id == Some(1002))
                .expect("error");
            assert_eq!(err.run_id(), Some(run.id), "{format:?}");
            assert_eq!(err.contact_alert_type, Some(ContactAlertType::Functional));
            assert_eq!(
                err.responses[0].response_message.as_deref(),
                Some("Period closed")
            );

            let (_, loads) = get("data_file_sources").await;
            let loads: Vec<DataFileSource> = decode_list("loads", loads);
            let l = loads.iter().find(|x| x.id.get() == load).expect("the load");
            assert_eq!(l.source_for.as_deref(), Some("Payment"), "{format:?}");
            assert_eq!(l.source_type.as_deref(), Some("BackgroundCsvFileLoad"));
            assert!(l.status.as_ref().is_some_and(DataFileStatus::is_final));
            assert!(
                l.file_file_name
                    .as_deref()
                    .is_some_and(|n| n.ends_with("payments_fixture_.csv"))
            );
            assert!(l.progress.is_some());
            assert_eq!(l.upload_errors.len(), 1, "{format:?}");
            let e = &l.upload_errors[0];
            assert_eq!(e.error_type.as_deref(), Some("UploadRowError"));
            assert_eq!(e.row, Some(2));
            assert_eq!(e.value.as_deref(), Some("NOPE-1"));
            assert_eq!(e.field_errors.len(), 1);

            // Error bodies: a refused create, and an empty XML list (404).
            let (status, refused) = call(
                &http,
                Method::POST,
                api("integration_runs"),
                &token,
                format,
                Some(r#"{"integration": {"code": "NOPE"}}"#),
            )
            .await;
            assert_eq!(status, 400);
            let messages = wire::error_messages(&refused);
            assert_eq!(messages.len(), 1, "{format:?}: {messages:?}");
            assert!(messages[0].contains("NOPE"), "{messages:?}");
            let (_, none) = get("integration_runs?status=no_such_status").await;
            assert!(
                wire::list_items(none).expect("empty").is_empty(),
                "{format:?}"
            );
        }

        let response = http
            .post(format!("{base}/oauth2/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", DEFAULT_CLIENT_ID),
                ("client_secret", "wrong"),
            ])
            .send()
            .await
            .expect("token");
        let body = response.bytes().await.expect("token body");
        assert_eq!(
            wire::error_messages(&wire::parse(Format::Json, &body).expect("OAuth error JSON")),
            ["invalid_client: Client authentication failed"]
        );
    }
}
