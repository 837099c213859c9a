use super::*;

/// `schemas/canonical.schema.json` is what the types say. `COUPA_BRIDGE_BLESS_SCHEMA=1`
/// rewrites it.
#[test]
fn the_committed_schema_is_the_types_schema() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas/canonical.schema.json");
    let mut want = serde_json::to_string_pretty(&canonical_schema()).expect("serializes");
    want.push('\n');
    if std::env::var_os("COUPA_BRIDGE_BLESS_SCHEMA").is_some_and(|v| v == "1") {
        std::fs::write(&path, &want).expect("schema written");
        return;
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "{} differs from the canonical types' schema: review the change, then run \
         COUPA_BRIDGE_BLESS_SCHEMA=1 cargo test -p coupa-bridge --lib \
         the_committed_schema_is_the_types_schema",
        path.display()
    );
}

use std::str::FromStr;

use chrono::{NaiveDate, TimeZone, Utc};
use rust_decimal::Decimal;

use crate::erp::{ErpAction, ErpInvoiceLine, PayApplication, PostOutcome};

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).expect("decimal")
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("date")
}

fn invoice() -> ErpInvoice {
    ErpInvoice {
        coupa_invoice_id: 4711,
        invoice_number: "INV-1".into(),
        coupa_supplier_id: Some(12),
        supplier_number: Some("V100".into()),
        supplier_name: Some("Müller & Söhne <GmbH>".into()),
        invoice_date: date("2026-03-05"),
        currency: "EUR".into(),
        total: dec("1234.505"),
        lines: vec![
            ErpInvoiceLine {
                coupa_line_id: Some(1),
                line_num: 1,
                description: "Paper; \"A4\"".into(),
                quantity: dec("2"),
                price: dec("500.25"),
                total: dec("1000.50"),
                account_code: Some("6000".into()),
            },
            ErpInvoiceLine {
                coupa_line_id: None,
                line_num: 2,
                description: "Toner".into(),
                quantity: dec("1"),
                price: dec("234.005"),
                total: dec("234.005"),
                account_code: None,
            },
        ],
    }
}

fn pay_payment() -> ErpPayPayment {
    ErpPayPayment {
        coupa_payment_id: 9,
        status: "completed_successfully".into(),
        payment_identifier: Some("P-9".into()),
        pay_from_total: Some(dec("100.00")),
        pay_from_currency: Some("EUR".into()),
        pay_to_total: None,
        pay_to_currency: None,
        exchange_rate: Some(dec("0.912345678")),
        payee_name: None,
        pay_to_account_type: None,
        error_text: None,
        coupa_updated_at: Utc
            .with_ymd_and_hms(2026, 3, 5, 10, 30, 0)
            .single()
            .expect("time"),
        applications: vec![PayApplication {
            coupa_detail_id: Some(3),
            source_type: Some("InvoiceHeader".into()),
            coupa_invoice_id: Some(4711),
            invoice_number: Some("INV-1".into()),
            amount: dec("100.00"),
            settled: dec("100.00"),
            discount: dec("0"),
            adjustment: dec("0"),
            currency: "EUR".into(),
        }],
    }
}

fn payment() -> NewErpPayment {
    NewErpPayment {
        payment_ref: "PAY-1".into(),
        invoice_number: "INV-1".into(),
        supplier_name: Some("Müller".into()),
        supplier_number: None,
        amount: dec("1234.50"),
        currency: "EUR".into(),
        payment_date: date("2026-03-31"),
        check_number: None,
        paid_in_full: true,
    }
}

fn parse(text: &str) -> Mapping {
    match Mapping::parse(text, "m.toml") {
        Ok(m) => m,
        Err(e) => panic!("mapping refused:\n{e}"),
    }
}

/// Every (line, message) of a refused mapping.
fn problems(text: &str) -> Vec<(usize, String)> {
    match Mapping::parse(text, "m.toml") {
        Ok(_) => panic!("mapping accepted:\n{text}"),
        Err(e) => e.0.into_iter().map(|e| (e.line, e.message)).collect(),
    }
}

fn has(problems: &[(usize, String)], line: usize, part: &str) {
    assert!(
        problems.iter().any(|(l, m)| *l == line && m.contains(part)),
        "no problem on line {line} with '{part}' in {problems:#?}"
    );
}

fn utf8(r: &Rendered) -> &str {
    std::str::from_utf8(&r.bytes).expect("utf-8")
}

#[test]
fn canonical_documents_round_trip() {
    let m = Mapping::canonical();
    let r = m.invoice(&invoice()).expect("invoice");
    assert_eq!(r.format, Format::Json);
    assert_eq!(
        serde_json::from_slice::<ErpInvoice>(&r.bytes).expect("json"),
        invoice()
    );
    assert!(utf8(&r).contains(r#""total":"1234.505""#), "{}", utf8(&r));
    let r = m
        .cancel(&ErpCancel {
            coupa_invoice_id: 7,
        })
        .expect("cancel");
    assert_eq!(r.bytes, br#"{"coupa_invoice_id":7}"#);
    let r = m.pay_payment(&pay_payment()).expect("pay payment");
    assert_eq!(
        serde_json::from_slice::<ErpPayPayment>(&r.bytes).expect("json"),
        pay_payment()
    );
    for doc in [Outbound::Invoice, Outbound::Cancel, Outbound::PayPayment] {
        assert_eq!(m.format_of(doc), Format::Json);
    }

    // Inbound: an object, an array, {"items": [...]}.
    let one = serde_json::to_vec(&payment()).expect("json");
    let got = m.read_payments(&one, "p.json").expect("read");
    assert_eq!(got, vec![Ok(payment())]);
    let many = serde_json::to_vec(&vec![payment(), payment()]).expect("json");
    assert_eq!(m.read_payments(&many, "p.json").expect("read").len(), 2);
    let items = serde_json::to_vec(&serde_json::json!({ "items": [payment()] })).expect("json");
    assert_eq!(
        m.read_payments(&items, "p.json").expect("read"),
        vec![Ok(payment())]
    );

    let results = vec![
        ErpResult {
            coupa_invoice_id: 1,
            action: ErpAction::Post,
            outcome: PostOutcome::Accepted {
                document_number: "5100000001".into(),
                already_posted: false,
            },
        },
        ErpResult {
            coupa_invoice_id: 2,
            action: ErpAction::Cancel,
            outcome: PostOutcome::Rejected {
                reasons: vec!["period closed".into(), "no vendor".into()],
            },
        },
        ErpResult {
            coupa_invoice_id: 3,
            action: ErpAction::Post,
            outcome: PostOutcome::Pending,
        },
    ];
    let bytes = serde_json::to_vec(&results).expect("json");
    let got: Vec<ErpResult> = m
        .read_results(&bytes, "r.json")
        .expect("read")
        .into_iter()
        .map(|r| r.expect("result"))
        .collect();
    assert_eq!(got, results);
    // A JSON number amount is read from its own digits.
    let body = br#"{"payment_ref":"P","invoice_number":"I","amount":12345678901234567.89,"currency":"EUR","payment_date":"2026-01-02"}"#;
    let got = m.read_payments(body, "p.json").expect("read");
    assert_eq!(
        got[0].as_ref().expect("payment").amount.to_string(),
        "12345678901234567.89"
    );
}

#[test]
fn sections_without_fields_write_the_canonical_fields() {
    let m = parse("[invoice]\nformat = \"json\"\n[cancel]\n[pay_payment]\n[payment]\n[result]\n");
    let canonical = Mapping::canonical();
    assert_eq!(
        m.invoice(&invoice()).expect("mapped").bytes,
        canonical.invoice(&invoice()).expect("canonical").bytes
    );
    assert_eq!(
        m.pay_payment(&pay_payment()).expect("mapped").bytes,
        canonical
            .pay_payment(&pay_payment())
            .expect("canonical")
            .bytes
    );
    let one = serde_json::to_vec(&payment()).expect("json");
    assert_eq!(
        m.read_payments(&one, "p").expect("read"),
        vec![Ok(payment())]
    );
}

#[test]
fn the_example_mapping_validates_and_writes_sap_rows() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/erp-mapping.toml");
    let m = match Mapping::load(&path) {
        Ok(m) => m,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(m.format_of(Outbound::Invoice), Format::Csv);
    let r = m.invoice(&invoice()).expect("rendered");
    assert_eq!(
        utf8(&r),
        "BUKRS;BLART;XBLNR;ZUONR;LIFNR;BLDAT;WAERS;WRBTR;BUZEI;SGTXT;MENGE;WRBTR_POS;HKONT\r\n\
         1000;KR;INV-1;4711;V100;05.03.2026;EUR;1.234,51;1;\"Paper; \"\"A4\"\"\";2,000;1000,50;600000\r\n\
         1000;KR;INV-1;4711;V100;05.03.2026;EUR;1.234,51;2;Toner;1,000;234,01;199999\r\n"
    );
    let r = m
        .cancel(&ErpCancel {
            coupa_invoice_id: 7,
        })
        .expect("cancel");
    assert_eq!(utf8(&r), "BUKRS;ZUONR;STGRD\r\n1000;7;01\r\n");
    let payments = "Zahlungsbeleg;Referenz;Kreditor;Name;Betrag;Waehrung;Zahlungsdatum;Schecknummer;Ausgeglichen\n\
                    1500000001;INV-1;;Müller;1.234,50;;31.03.2026;;X\n";
    assert_eq!(
        m.read_payments(payments.as_bytes(), "ZAHL.csv")
            .expect("read"),
        vec![Ok(NewErpPayment {
            payment_ref: "1500000001".into(),
            ..payment()
        })]
    );
}

#[test]
fn every_problem_is_reported_on_its_line() {
    let text = r#"[invoice]
format = "csv"
delimiter = ";;"
root = "X"

[invoice.fields]
A = "totl"
B = { from = "total", const = "1" }
C = { default = "x" }
D = { from = "currency", map = {} }
E = { from = "invoice_date", date = "%d.%Q" }
F = { from = "total", decimal = { places = 29 } }
G = { from = "total", decimal = { point = ",", grouping = "," } }
H = { from = "total", decimal = { point = ",," } }
I = "lines"
J = { from = "invoice_date", date = "%H:%M" }
K = { from = "currency", decimal = { places = 2 } }
L = { const = 1.5 }
M = { from = "total", colour = "red" }

[cancel]
format = "yaml"
line_fields = { X = "line_num" }

[cancel.fields]
"Header.Ref" = "coupa_invoice_id"

[payment]
format = "csv"
items = "data"

[payment.fields]
payment_ref = "Nr"
amount = { from = "Betrag", decimal = { point = "," } }
paid_in_full = { from = "Voll", map = { J = true, N = "nein" } }
paid = "X"

[result.fields]
coupa_invoice_id = "Id"
outcome = { from = "Status", map = { OK = "accepted", ERR = "refused" } }

[answer]
document_number = "data..docNo"
extra = "x"

[invoices]
"#;
    let p = problems(text);
    has(&p, 3, "delimiter \";;\" must be one ASCII character");
    has(
        &p,
        4,
        "root is the XML root element: it is for format = \"xml\"",
    );
    has(&p, 7, "unknown canonical field 'totl' for A");
    has(&p, 8, "B: give from or const, not both");
    has(&p, 9, "C: give from = \"<field>\"");
    has(&p, 10, "D: map is empty");
    has(&p, 11, "E: \"%d.%Q\" is not a valid date pattern");
    has(&p, 12, "decimal places must be an integer from 0 to 28");
    has(&p, 13, "decimal point and grouping are both ','");
    has(&p, 14, "decimal point must be one character");
    has(
        &p,
        15,
        "lines is a list: map its fields in [invoice.line_fields]",
    );
    has(&p, 16, "asks for a time, but the field is a date");
    has(
        &p,
        17,
        "K: decimal is for a decimal field; this one is a text",
    );
    has(&p, 18, "L: the const 1.5 is a float");
    has(&p, 19, "M: unknown key 'colour'");
    has(&p, 22, "unknown format \"yaml\" in [cancel]");
    has(&p, 23, "line_fields is for a document with a list");
    has(&p, 30, "items is for json and xml");
    has(
        &p,
        32,
        "[payment.fields] lacks invoice_number, currency, payment_date",
    );
    has(
        &p,
        35,
        "paid_in_full: the map's value for 'N' 'nein' is not true or false",
    );
    has(&p, 36, "unknown canonical field 'paid' in [payment.fields]");
    has(
        &p,
        40,
        "outcome: the map's value for 'ERR' 'refused' is not one of \"accepted\", \"rejected\", \"pending\"",
    );
    has(&p, 43, "'data..docNo' has an empty part");
    has(&p, 44, "unknown key 'extra' in [answer]");
    has(&p, 46, "unknown section [invoices]");
    // Nothing else: "Header.Ref" on line 26 is a nested name, fine.
    assert_eq!(p.len(), 25, "{p:#?}");
}

#[test]
fn a_toml_syntax_error_has_its_line() {
    let p = problems("[invoice]\nformat = \"csv\"\n[invoice.fields]\nA = \n");
    assert_eq!(p.len(), 1, "{p:?}");
    has(&p, 4, "TOML syntax");
    let e = Mapping::parse("[invoice]\nformat = csv\n", "erp-mapping.toml")
        .expect_err("refused")
        .to_string();
    assert!(e.starts_with("erp-mapping.toml:2: TOML syntax"), "{e}");
}

const SMALL: &str = r#"
[invoice.fields]
"Header.Ref" = "coupa_invoice_id"
"Header.Date" = { from = "invoice_date", date = "%d.%m.%Y" }
Company = { const = 1000 }
Vendor = { from = "supplier_name", default = "?" }
Amount = { from = "total", decimal = { places = 2, point = ",", grouping = "." } }
Currency = { from = "currency", map = { EUR = "978", USD = "840" } }
Posted = { const = false }

[invoice.line_fields]
No = "line_num"
Account = { from = "account_code", map = { "6000" = "600000" }, default = "199999" }
"#;

#[test]
fn json_writes_renames_constants_formats_maps_nested_names_and_lines() {
    let m = parse(&format!("[invoice]\nlines = \"Items\"\n{SMALL}"));
    let r = m.invoice(&invoice()).expect("rendered");
    assert_eq!(r.format, Format::Json);
    assert_eq!(
        utf8(&r),
        r#"{"Header":{"Ref":4711,"Date":"05.03.2026"},"Company":1000,"Vendor":"Müller & Söhne <GmbH>","Amount":"1.234,51","Currency":"978","Posted":false,"Items":[{"No":1,"Account":"600000"},{"No":2,"Account":"199999"}]}"#
    );
    // A missing value takes the default; rounding is half away from zero.
    let mut inv = invoice();
    inv.supplier_name = None;
    inv.total = dec("-0.005");
    let r = m.invoice(&inv).expect("rendered");
    assert!(
        utf8(&r).contains(r#""Vendor":"?","Amount":"-0,01""#),
        "{}",
        utf8(&r)
    );
    inv.total = dec("1234567.8");
    let r = m.invoice(&inv).expect("rendered");
    assert!(
        utf8(&r).contains(r#""Amount":"1.234.567,80""#),
        "{}",
        utf8(&r)
    );
}

#[test]
fn a_value_not_in_the_map_names_the_field_and_its_line() {
    let m = Mapping::parse(&format!("[invoice]\n{SMALL}"), "erp-mapping.toml").expect("valid");
    let mut inv = invoice();
    inv.currency = "GBP".into();
    let e = m.invoice(&inv).expect_err("GBP is not mapped");
    assert_eq!(e.field, "Currency");
    assert_eq!(e.at, "erp-mapping.toml:9");
    assert_eq!(
        e.to_string(),
        "Currency (erp-mapping.toml:9): no mapping for 'GBP' (add it to the map, or give a default)"
    );
}

#[test]
fn xml_writes_escaped_nested_elements_and_a_line_element_each() {
    let m = parse(&format!(
        "[invoice]\nformat = \"xml\"\nroot = \"Invoice\"\nlines = \"Items\"\nline_element = \"Item\"\n{SMALL}"
    ));
    let r = m.invoice(&invoice()).expect("rendered");
    assert_eq!(r.format, Format::Xml);
    assert_eq!(
        utf8(&r),
        r#"<?xml version="1.0" encoding="UTF-8"?>
<Invoice>
  <Header>
    <Ref>4711</Ref>
    <Date>05.03.2026</Date>
  </Header>
  <Company>1000</Company>
  <Vendor>Müller &amp; Söhne &lt;GmbH&gt;</Vendor>
  <Amount>1.234,51</Amount>
  <Currency>978</Currency>
  <Posted>false</Posted>
  <Items>
    <Item>
      <No>1</No>
      <Account>600000</Account>
    </Item>
    <Item>
      <No>2</No>
      <Account>199999</Account>
    </Item>
  </Items>
</Invoice>
"#
    );
    // XML cannot carry a control character: refused, not written broken.
    let mut inv = invoice();
    inv.supplier_name = Some("bad\u{1}".into());
    let e = m.invoice(&inv).expect_err("refused");
    assert!(e.message.contains("U+0001"), "{e}");
    assert_eq!(e.at, "m.toml:11", "{e}");
}

#[test]
fn csv_repeats_the_header_on_each_line_and_quotes_only_where_needed() {
    let m = parse(
        r#"[invoice]
format = "csv"
[invoice.fields]
Ref = "coupa_invoice_id"
Name = "supplier_name"
[invoice.line_fields]
Text = "description"
Total = "total"
"#,
    );
    let r = m.invoice(&invoice()).expect("rendered");
    assert_eq!(
        utf8(&r),
        "Ref,Name,Text,Total\r\n\
         4711,Müller & Söhne <GmbH>,\"Paper; \"\"A4\"\"\",1000.50\r\n\
         4711,Müller & Söhne <GmbH>,Toner,234.005\r\n"
    );
    // No lines: one row. A formula-like cell is written as it is.
    let mut inv = invoice();
    inv.lines.clear();
    inv.supplier_name = Some("=SUM(A1)".into());
    let r = m.invoice(&inv).expect("rendered");
    assert_eq!(utf8(&r), "Ref,Name,Text,Total\r\n4711,=SUM(A1),,\r\n");
    // An empty line_fields table: header only.
    let m = parse(
        "[invoice]\nformat = \"csv\"\n[invoice.fields]\nRef = \"coupa_invoice_id\"\n[invoice.line_fields]\n",
    );
    assert_eq!(
        utf8(&m.invoice(&invoice()).expect("rendered")),
        "Ref\r\n4711\r\n"
    );
}

#[test]
fn pay_payments_map_their_applications_and_timestamps() {
    let m = parse(
        r#"[pay_payment]
lines = "details"
[pay_payment.fields]
id = "coupa_payment_id"
when = { from = "coupa_updated_at", date = "%d.%m.%Y %H:%M" }
rate = { from = "exchange_rate", decimal = { places = 4 } }
[pay_payment.line_fields]
invoice = "invoice_number"
paid = { from = "amount", decimal = { point = "," } }
"#,
    );
    let r = m.pay_payment(&pay_payment()).expect("rendered");
    assert_eq!(
        utf8(&r),
        r#"{"id":9,"when":"05.03.2026 10:30","rate":"0.9123","details":[{"invoice":"INV-1","paid":"100,00"}]}"#
    );
}

#[test]
fn german_csv_payments_are_read_exactly() {
    let m = parse(
        r#"[payment]
format = "csv"
delimiter = ";"
[payment.fields]
payment_ref = "ZahlungsNr"
invoice_number = "Rechnung"
amount = { from = "Betrag", decimal = { point = ",", grouping = "." } }
currency = { from = "Waehrung", map = { "€" = "EUR" }, default = "EUR" }
payment_date = { from = "Datum", date = "%d.%m.%Y" }
paid_in_full = { from = "Voll", map = { J = true, N = false } }
supplier_name = "Name"
"#,
    );
    let file = "\u{feff}ZahlungsNr;Rechnung;Betrag;Waehrung;Datum;Voll;Name\r\n\
                Z-1;INV-1;1.234,50;€;31.03.2026;J;\"Müller; Söhne\"\r\n\
                Z-2;INV-2;99.999.999.999.999.999,99-;;01.04.2026;N;\r\n";
    let got = m.read_payments(file.as_bytes(), "ZAHL.csv").expect("read");
    assert_eq!(
        got,
        vec![
            Ok(NewErpPayment {
                payment_ref: "Z-1".into(),
                supplier_name: Some("Müller; Söhne".into()),
                ..payment()
            }),
            Ok(NewErpPayment {
                payment_ref: "Z-2".into(),
                invoice_number: "INV-2".into(),
                supplier_name: None,
                amount: dec("-99999999999999999.99"),
                payment_date: date("2026-04-01"),
                paid_in_full: false,
                ..payment()
            }),
        ]
    );
}

#[test]
fn a_bad_row_is_refused_alone_and_named() {
    let m = Mapping::parse(
        r#"[payment]
format = "csv"
[payment.fields]
payment_ref = "Ref"
invoice_number = "Inv"
amount = { from = "Amt", decimal = { point = ",", places = 2 } }
currency = "Cur"
payment_date = { from = "Date", date = "%d.%m.%Y" }
"#,
        "erp-mapping.toml",
    )
    .expect("valid");
    let file = "Ref,Inv,Amt,Cur,Date\n\
                A,I1,\"1,00\",EUR,01.02.2026\n\
                B,I2,\"1.000,00\",EUR,01.02.2026\n\
                C,I3,\"2,00\",EUR,31.02.2026\n\
                D,,\"3,00\",EUR,01.02.2026\n\
                E,I5,\"4,001\",EUR,01.02.2026\n\
                F,I6\n\
                G,I7,\"5,00\",EUR,01.02.2026\n";
    let got = m.read_payments(file.as_bytes(), "pay.csv").expect("read");
    let refs: Vec<Result<&str, &str>> = got
        .iter()
        .map(|r| {
            r.as_ref()
                .map(|p| p.payment_ref.as_str())
                .map_err(String::as_str)
        })
        .collect();
    assert_eq!(
        refs,
        vec![
            Ok("A"),
            Err(
                "pay.csv, line 3: amount (from 'Amt', erp-mapping.toml:6): '1.000,00' is not a decimal (digits and ',' as the decimal point)"
            ),
            Err(
                "pay.csv, line 4: payment_date (from 'Date', erp-mapping.toml:8): '31.02.2026' is not a date written \"%d.%m.%Y\""
            ),
            Err("pay.csv, line 5: invoice_number (from 'Inv', erp-mapping.toml:5): missing"),
            Err(
                "pay.csv, line 6: amount (from 'Amt', erp-mapping.toml:6): '4,001' has more than 2 decimals"
            ),
            Err("pay.csv, line 7: 2 fields where the header has 5"),
            Ok("G"),
        ]
    );
    // A column the mapping reads is not there: the whole file.
    let e = m
        .read_payments(b"Ref,Inv,Amt,Cur\nA,I,1,EUR\n", "pay.csv")
        .expect_err("no Date column");
    assert_eq!(
        e,
        "pay.csv: line 1: no column 'Date' (for payment_date, erp-mapping.toml:8); the columns \
         are: Ref, Inv, Amt, Cur"
    );
    // JSON: by index.
    let got = Mapping::canonical()
        .read_payments(br#"[{"payment_ref":"A"}, 3]"#, "p.json")
        .expect("read");
    assert_eq!(
        got,
        vec![
            Err("p.json, index 0: invoice_number: missing".to_owned()),
            Err("p.json, index 1: expected an object, found a number".to_owned()),
        ]
    );
    assert!(
        Mapping::canonical()
            .read_payments(b"{", "p.json")
            .expect_err("not json")
            .starts_with("p.json: not valid JSON")
    );
}

#[test]
fn result_rows_of_one_rejection_are_one_answer() {
    let m = parse(
        r#"[result]
format = "csv"
delimiter = ";"
[result.fields]
coupa_invoice_id = "CoupaId"
action = { from = "Art", map = { B = "post", S = "cancel" }, default = "post" }
outcome = { from = "Status", map = { OK = "accepted", ERR = "rejected", WAIT = "pending" } }
document_number = "Beleg"
reasons = "Meldung"
"#,
    );
    let file = "CoupaId;Art;Status;Beleg;Meldung\n\
                1;B;OK;5100000001;\n\
                2;B;ERR;;Periode geschlossen\n\
                3;;WAIT;;\n\
                2;B;ERR;;Kreditor gesperrt\n\
                2;S;ERR;;Storno nicht möglich\n\
                4;B;???;;\n\
                5;B;ERR;;\n";
    let got = m.read_results(file.as_bytes(), "RES.csv").expect("read");
    let accepted = |id, doc: &str| {
        Ok(ErpResult {
            coupa_invoice_id: id,
            action: ErpAction::Post,
            outcome: PostOutcome::Accepted {
                document_number: doc.into(),
                already_posted: false,
            },
        })
    };
    let rejected = |id, action, reasons: &[&str]| {
        Ok(ErpResult {
            coupa_invoice_id: id,
            action,
            outcome: PostOutcome::Rejected {
                reasons: reasons.iter().map(|r| (*r).to_owned()).collect(),
            },
        })
    };
    assert_eq!(
        got,
        vec![
            accepted(1, "5100000001"),
            rejected(2, ErpAction::Post, &["Periode geschlossen", "Kreditor gesperrt"]),
            Ok(ErpResult {
                coupa_invoice_id: 3,
                action: ErpAction::Post,
                outcome: PostOutcome::Pending,
            }),
            rejected(2, ErpAction::Cancel, &["Storno nicht möglich"]),
            Err("RES.csv, line 7: outcome (from 'Status', m.toml:7): no mapping for '???' (the map knows \"OK\", \"ERR\", \"WAIT\")".to_owned()),
            rejected(5, ErpAction::Post, &[]),
        ]
    );
    // JSON: a list of messages is several reasons; an accepted answer without its number is
    // refused.
    let m = parse(
        "[result]\nitems = \"results\"\n[result.fields]\ncoupa_invoice_id = \"id\"\noutcome = \"state\"\nreasons = \"errors[].text\"\ndocument_number = \"doc\"\n",
    );
    let body = br#"{"results":[{"id":7,"state":"rejected","errors":[{"text":"a"},{"text":"b"}]},{"id":8,"state":"accepted"}]}"#;
    let got = m.read_results(body, "r.json").expect("read");
    assert_eq!(got[0], rejected(7, ErpAction::Post, &["a", "b"]));
    assert!(
        got[1]
            .as_ref()
            .is_err_and(|e| e.starts_with("r.json, index 1: ") && e.contains("document_number")),
        "{got:?}"
    );
}

#[test]
fn xml_results_are_read_and_doctype_or_entities_refused() {
    let m = parse(
        r#"[result]
format = "xml"
items = "Result"
[result.fields]
coupa_invoice_id = "@id"
outcome = { from = "Status", map = { S = "accepted", E = "rejected" } }
document_number = "Doc"
reasons = "Messages.Message"
"#,
    );
    let file = r#"<?xml version="1.0"?>
<Results xmlns="urn:erp">
  <Result id="1"><Status>S</Status><Doc>51&amp;00</Doc></Result>
  <Result id="2"><Status>E</Status><Messages><Message>a &lt; b</Message><Message>c</Message></Messages></Result>
  <Result id="x"><Status>S</Status><Doc>1</Doc></Result>
</Results>"#;
    let got = m.read_results(file.as_bytes(), "r.xml").expect("read");
    assert_eq!(
        got[0],
        Ok(ErpResult {
            coupa_invoice_id: 1,
            action: ErpAction::Post,
            outcome: PostOutcome::Accepted {
                document_number: "51&00".into(),
                already_posted: false
            },
        })
    );
    assert_eq!(
        got[1],
        Ok(ErpResult {
            coupa_invoice_id: 2,
            action: ErpAction::Post,
            outcome: PostOutcome::Rejected {
                reasons: vec!["a < b".into(), "c".into()]
            },
        })
    );
    assert_eq!(
        got[2],
        Err(
            "r.xml, element 3: coupa_invoice_id (from '@id', m.toml:5): 'x' is not an integer"
                .to_owned()
        )
    );
    let doctype = r#"<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x "boom">]><Results><Result id="1"><Status>S</Status><Doc>&x;</Doc></Result></Results>"#;
    let e = m
        .read_results(doctype.as_bytes(), "r.xml")
        .expect_err("refused");
    assert!(e.contains("DOCTYPE is refused"), "{e}");
    let deep = format!("<a>{}{}</a>", "<b>".repeat(100), "</b>".repeat(100));
    let e = m
        .read_results(deep.as_bytes(), "r.xml")
        .expect_err("refused");
    assert!(e.contains("nested deeper than 64"), "{e}");
    let entity = r#"<Results><Result id="1"><Status>S</Status><Doc>&x;</Doc></Result></Results>"#;
    let e = m
        .read_results(entity.as_bytes(), "r.xml")
        .expect_err("refused");
    assert!(e.contains("the entity &x; is refused"), "{e}");
}

#[test]
fn payment_pages_give_records_and_the_next_cursor() {
    let m = parse(
        "[payment]\nitems = \"data.payments\"\nnext_cursor = \"meta.next\"\n[payment.fields]\npayment_ref = \"ref\"\ninvoice_number = \"inv\"\namount = \"amt\"\ncurrency = { const = \"EUR\" }\npayment_date = \"date\"\n",
    );
    let body = br#"{"data":{"payments":[{"ref":"P1","inv":"I","amt":10.5,"date":"2026-01-02"}]},"meta":{"next":42}}"#;
    let (records, next) = m.read_payments_page(body, "GET /payments").expect("page");
    assert_eq!(next.as_deref(), Some("42"));
    let p = records[0].as_ref().expect("payment");
    assert_eq!(
        (p.payment_ref.as_str(), p.amount, p.currency.as_str()),
        ("P1", dec("10.5"), "EUR")
    );
    let (records, next) = m
        .read_payments_page(br#"{"data":{"payments":[]},"meta":{"next":null}}"#, "GET")
        .expect("page");
    assert!(records.is_empty() && next.is_none());
    let e = m
        .read_payments_page(br#"{"payments":[]}"#, "GET /payments")
        .expect_err("no items");
    assert_eq!(
        e,
        "GET /payments: no 'data.payments' (the mapping's items) in the file"
    );
    // Canonical: `items` and `next_cursor`.
    let (_, next) = Mapping::canonical()
        .read_payments_page(br#"{"items":[],"next_cursor":"abc"}"#, "GET")
        .expect("page");
    assert_eq!(next.as_deref(), Some("abc"));
}

#[test]
fn answers_are_read_by_their_paths() {
    let body = serde_json::json!({
        "data": { "docNo": 5100000001_i64 },
        "errors": [{ "message": "period closed" }, { "message": "vendor blocked" }],
    });
    let m = parse("[answer]\ndocument_number = \"data.docNo\"\nreasons = \"errors[].message\"\n");
    assert_eq!(
        m.answer_document_number(&body).as_deref(),
        Some("5100000001")
    );
    assert_eq!(
        m.answer_reasons(&body),
        vec!["period closed", "vendor blocked"]
    );
    let canonical = serde_json::json!({ "outcome": "rejected", "reasons": ["a", "b"], "document_number": "D1" });
    let c = Mapping::canonical();
    assert_eq!(c.answer_document_number(&canonical).as_deref(), Some("D1"));
    assert_eq!(c.answer_reasons(&canonical), vec!["a", "b"]);
    assert_eq!(c.answer_document_number(&serde_json::json!({})), None);
    assert!(c.answer_reasons(&serde_json::json!({ "reasons": "one" })) == vec!["one"]);
}

#[test]
fn the_documented_examples_hold() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let doc = std::fs::read_to_string(root.join("docs/erp-mapping.md")).expect("docs");
    // Every TOML block of the documentation is a valid mapping.
    let blocks: Vec<&str> = doc
        .split("```toml\n")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .collect();
    assert!(blocks.len() >= 2, "{blocks:?}");
    for block in blocks {
        parse(block);
    }
    let m = Mapping::load(&root.join("examples/erp-mapping.toml")).expect("example");
    let mut inv = invoice();
    inv.currency = "JPY".into();
    assert_eq!(
        m.invoice(&inv).expect_err("JPY").to_string(),
        format!(
            "WAERS ({}:22): no mapping for 'JPY' (add it to the map, or give a default)",
            root.join("examples/erp-mapping.toml").display()
        )
    );
    let results = "Zuordnung;Vorgang;Status;Belegnummer;Meldung\n\
                   4711;BUCHUNG;S;5100000123;\n\
                   4712;BUCHUNG;E;;Buchungsperiode 03/2026 ist geschlossen\n\
                   4712;BUCHUNG;E;;Kreditor V200 ist gesperrt\n";
    let got = m.read_results(results.as_bytes(), "RES.csv").expect("read");
    assert_eq!(
        serde_json::to_string(&got[0].as_ref().expect("accepted")).expect("json"),
        r#"{"coupa_invoice_id":4711,"action":"post","outcome":"accepted","document_number":"5100000123","already_posted":false}"#
    );
    assert_eq!(got.len(), 2);
    assert_eq!(
        got[1],
        Ok(ErpResult {
            coupa_invoice_id: 4712,
            action: ErpAction::Post,
            outcome: PostOutcome::Rejected {
                reasons: vec![
                    "Buchungsperiode 03/2026 ist geschlossen".into(),
                    "Kreditor V200 ist gesperrt".into()
                ]
            },
        })
    );
    let bad = "Zahlungsbeleg;Referenz;Kreditor;Name;Betrag;Waehrung;Zahlungsdatum;Schecknummer;Ausgeglichen\n\
               1;INV-1;;;1;;31.03.2026;;X\n\
               2;INV-1;;;1;;31.03.2026;;X\n\
               3;INV-1;;;1;;31.03.2026;;X\n\
               4;INV-1;;;1.234,5x;;31.03.2026;;X\n";
    let got = m
        .read_payments(bad.as_bytes(), "ZAHL_0331.csv")
        .expect("read");
    let e = got[3].as_ref().expect_err("bad amount");
    assert!(
        e.ends_with(
            "'1.234,5x' is not a decimal (digits and ',' as the decimal point, '.' grouping)"
        ) && e.starts_with("ZAHL_0331.csv, line 5: amount (from 'Betrag', "),
        "{e}"
    );
}

#[test]
fn decimals_and_dates_edge_cases() {
    let german = DecimalFormat {
        places: None,
        point: ',',
        grouping: Some('.'),
    };
    let parse_de = |t: &str| read::parse_decimal(t, &german);
    assert_eq!(parse_de("1.234,50"), Ok(dec("1234.50")));
    assert_eq!(parse_de("100,00-"), Ok(dec("-100.00")));
    assert_eq!(parse_de("-0,5"), Ok(dec("-0.5")));
    assert_eq!(parse_de("7"), Ok(dec("7")));
    for bad in [
        "", "-", ",", "1,2,3", "1e5", "1_000", "--1", "1.234.50", "0x10", "١٢",
    ] {
        assert!(parse_de(bad).is_err(), "{bad} taken");
    }
    let f = DecimalFormat {
        places: Some(0),
        point: '.',
        grouping: Some('\''),
    };
    assert_eq!(render::format_decimal(dec("-1234567.5"), &f), "-1'234'568");
    assert_eq!(render::format_decimal(dec("999.4"), &f), "999");
    assert_eq!(
        render::format_date("2026-03-05", "%Y%m%d").as_deref(),
        Some("20260305")
    );
    assert_eq!(render::format_date("2026-03-05", "%H"), None);
    assert_eq!(render::format_date("nope", "%Y"), None);
}

#[test]
fn csv_without_fields_writes_every_canonical_column() {
    let m = parse("[invoice]\nformat = \"csv\"\n[pay_payment]\nformat = \"xml\"\n");
    let r = m.invoice(&invoice()).expect("rendered");
    let text = utf8(&r);
    assert!(
        text.starts_with(
            "coupa_invoice_id,invoice_number,coupa_supplier_id,supplier_number,supplier_name,\
             invoice_date,currency,total,lines.coupa_line_id,lines.line_num,lines.description,\
             lines.quantity,lines.price,lines.total,lines.account_code\r\n\
             4711,INV-1,12,V100,Müller & Söhne <GmbH>,2026-03-05,EUR,1234.505,1,1,"
        ),
        "{text}"
    );
    assert_eq!(text.lines().count(), 3);
    let r = m.pay_payment(&pay_payment()).expect("rendered");
    let text = utf8(&r);
    assert!(
        text.contains("<pay_payment>\n  <coupa_payment_id>9</coupa_payment_id>")
            && text.contains("<pay_to_total/>")
            && text
                .contains("<applications>\n    <line>\n      <coupa_detail_id>3</coupa_detail_id>"),
        "{text}"
    );
}
