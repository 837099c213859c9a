//! Invoice semantics: the export flag, custom fields, payments in every documented shape.

use coupa_doc::Value;
use reqwest::StatusCode;
use rust_decimal::Decimal;
use std::str::FromStr;

use crate::common::{BOTH, Fmt, empty_sim};

fn samples(name: &str) -> String {
    let path = format!(
        "{}/../../../shared/coupa-samples/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[tokio::test]
async fn mark_exported_is_its_own_request_and_ignores_the_body() {
    let t = empty_sim().await;
    for fmt in BOTH {
        let id = t.add_invoice("INV-EXP", "approved", "Acme", "S1");
        let before = t.invoice(id);
        let body = match fmt {
            Fmt::Json => r#"{"custom-fields":{"cf-erp-invoice-number":"ERP-1"}}"#,
            Fmt::Xml => {
                "<invoice-header><custom-fields><cf-erp-invoice-number>ERP-1</cf-erp-invoice-number></custom-fields></invoice-header>"
            }
        };
        let a = t
            .put(
                &format!("/api/invoices/{id}?exported=true&fields=[\"id\",\"exported\"]"),
                fmt,
                body,
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
        let o = a.object();
        assert_eq!(o.keys().collect::<Vec<_>>(), ["id", "exported"], "{fmt:?}");
        assert_eq!(o.get("exported").and_then(Value::as_bool), Some(true));
        let after = t.invoice(id);
        assert!(after.get("last-exported-at").is_some_and(|v| !v.is_null()));
        assert_ne!(after.get("updated-at"), before.get("updated-at"));
        assert_eq!(
            after.pointer(&["custom-fields", "cf-erp-invoice-number"]),
            Some(&Value::Null),
            "the body of a mark-exported request is ignored"
        );
    }
}

#[tokio::test]
async fn exported_in_an_update_body_is_ignored_but_custom_fields_apply() {
    let t = empty_sim().await;
    let id = t.add_invoice("INV-CF", "approved", "Acme", "S1");
    let a = t
        .put(
            &format!("/api/invoices/{id}?fields=[\"id\",\"exported\",{{\"custom_fields\":{{}}}}]"),
            Fmt::Json,
            r#"{"id": 1, "exported": true, "custom-fields": {"cf-erp-invoice-number": "ERP-77", "cf-integration-status": "Success: replicated"}}"#,
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let o = a.object();
    assert_eq!(o.get("exported").and_then(Value::as_bool), Some(false));
    assert_eq!(
        o.pointer(&["custom-fields", "cf-erp-invoice-number"])
            .and_then(Value::as_str),
        Some("ERP-77")
    );
    assert_eq!(t.invoice(id).get("id").and_then(Value::as_i64), Some(id));
}

#[tokio::test]
async fn unknown_custom_fields_are_refused_in_both_formats() {
    let t = empty_sim().await;
    let id = t.add_invoice("INV-X", "approved", "Acme", "S1");
    for (fmt, body) in [
        (Fmt::Json, r#"{"custom-fields":{"cf-nope":"x"}}"#),
        (
            Fmt::Xml,
            "<invoice-header><custom-fields><cf-nope>x</cf-nope></custom-fields></invoice-header>",
        ),
    ] {
        let a = t.put(&format!("/api/invoices/{id}"), fmt, body).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST);
        assert!(a.errors()[0].contains("cf-nope"), "{:?}", a.errors());
        if fmt == Fmt::Json {
            assert!(a.body.contains("\"invoice_header\""), "{}", a.body);
        }
    }
}

#[tokio::test]
async fn the_underscore_key_sample_updates_the_description() {
    let t = empty_sim().await;
    let id = t.add_invoice("INV-D", "approved", "Acme", "S1");
    let a = t
        .put(
            &format!("/api/invoices/{id}"),
            Fmt::Xml,
            &samples("invoice-update-underscore-key.xml"),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(
        t.invoice(id)
            .get("invoice-description")
            .and_then(Value::as_str),
        Some("Invoice Test Description")
    );
}

#[tokio::test]
async fn unknown_and_malformed_ids_are_404() {
    let t = empty_sim().await;
    for fmt in BOTH {
        for path in ["/api/invoices/999999", "/api/invoices/abc"] {
            let a = t.get(path, fmt).await;
            assert_eq!(a.status, StatusCode::NOT_FOUND, "{path}");
            assert!(!a.errors().is_empty());
        }
    }
}

/// A documented payment payload: name, format, body, and the (amount, notes) it must append.
type Payload = (&'static str, Fmt, String, Vec<(&'static str, &'static str)>);

fn payment_payloads() -> Vec<Payload> {
    let seed_000 = r#"<?xml version="1.0" encoding="UTF-8"?>
<invoice-header>
  <paid type="boolean">true</paid>
  <payment-date type="datetime">2016-06-23T00:00:00-08:00</payment-date>
  <payment-notes>ADAMTEST|#10|USD|1.00|FULLY PAID|</payment-notes>
  <payments>
    <payment>
      <amount-paid>1.00</amount-paid>
      <notes>10</notes>
      <payment-date>2016-06-23</payment-date>
    </payment>
  </payments>
</invoice-header>"#;
    vec![
        (
            "format 1",
            Fmt::Json,
            samples("payment-put-format1-object.json"),
            vec![("199.98", "1234567")],
        ),
        (
            "format 2",
            Fmt::Json,
            samples("payment-put-format2-array-in-object.json"),
            vec![("510", "test_check_number"), ("53", "test_check_number")],
        ),
        (
            "format 3",
            Fmt::Json,
            samples("payment-put-format3-array.json"),
            vec![("510", "test_check_number"), ("53", "test_check_number")],
        ),
        (
            "legacy and array",
            Fmt::Xml,
            samples("payment-put-legacy-and-array.xml"),
            vec![("989.00", "1003")],
        ),
        (
            "multiple",
            Fmt::Xml,
            samples("payment-put-multiple.xml"),
            vec![("4.00", "1003"), ("5.00", "1004")],
        ),
        (
            "nil attributes",
            Fmt::Xml,
            samples("payment-put-nil-attributes.xml"),
            vec![("100.23", "232"), ("9032.32", "233")],
        ),
        (
            "quoted invoice date",
            Fmt::Xml,
            samples("payment-put-invoice-date-quoted.xml"),
            vec![("5.00", "1003")],
        ),
        (
            "seed 000",
            Fmt::Xml,
            seed_000.to_owned(),
            vec![("1.00", "10")],
        ),
    ]
}

#[tokio::test]
async fn every_documented_payment_payload_is_accepted_and_appended() {
    let t = empty_sim().await;
    for (name, fmt, body, want) in payment_payloads() {
        let id = t.add_invoice(&format!("INV-{name}"), "approved", "Acme", "S1");
        // Put the payload twice: payments are appended, never replaced.
        for round in 1..=2 {
            let a = t.put(&format!("/api/invoices/{id}"), fmt, &body).await;
            assert_eq!(a.status, StatusCode::OK, "{name}: {}", a.body);
            let payments = t
                .invoice(id)
                .get("payments")
                .and_then(Value::as_array)
                .map(<[Value]>::to_vec)
                .unwrap_or_default();
            assert_eq!(payments.len(), want.len() * round, "{name} round {round}");
            for (p, (amount, notes)) in payments.iter().zip(want.iter()) {
                assert_eq!(
                    p.pointer(&["amount-paid"]).and_then(Value::as_decimal),
                    Decimal::from_str(amount).ok(),
                    "{name}"
                );
                assert_eq!(
                    p.pointer(&["notes"]).and_then(Value::as_str),
                    Some(*notes),
                    "{name}"
                );
            }
        }
    }
    // Format 4 names the invoice it pays.
    let id = t.add_invoice("INV-F4", "approved", "Acme", "S1");
    let body = samples("payment-put-format4-dashed-payable.json").replace("4835", &id.to_string());
    let a = t
        .put(&format!("/api/invoices/{id}"), Fmt::Json, &body)
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let inv = t.invoice(id);
    assert_eq!(
        inv.get("payments")
            .and_then(Value::as_array)
            .map(<[Value]>::len),
        Some(2)
    );
    assert_eq!(inv.get("paid").and_then(Value::as_bool), Some(true));
    assert_eq!(
        inv.get("payment-notes").and_then(Value::as_str),
        Some("eProc Voucher#TRM-19-0009584-PV/THB")
    );
}

#[tokio::test]
async fn payments_on_unapproved_invoices_and_bad_values_are_400() {
    let t = empty_sim().await;
    let draft = t.add_invoice("INV-DRAFT", "draft", "Acme", "S1");
    let approved = t.add_invoice("INV-OK", "approved", "Acme", "S1");
    for fmt in BOTH {
        let (body_ok, body_bad_amount, body_bad_date) = match fmt {
            Fmt::Json => (
                r#"{"payments":[{"amount-paid":"5.00","notes":"1"}]}"#.to_owned(),
                r#"{"payments":[{"amount-paid":"five","notes":"1"}]}"#.to_owned(),
                r#"{"payments":[{"amount-paid":"5.00","payment-date":"31/31/2020"}]}"#.to_owned(),
            ),
            Fmt::Xml => (
                "<invoice-header><payments type=\"array\"><payment><amount-paid>5.00</amount-paid></payment></payments></invoice-header>".to_owned(),
                "<invoice-header><payments type=\"array\"><payment><amount-paid>five</amount-paid></payment></payments></invoice-header>".to_owned(),
                "<invoice-header><payments type=\"array\"><payment><amount-paid>5</amount-paid><payment-date>31/31/2020</payment-date></payment></payments></invoice-header>".to_owned(),
            ),
        };
        let a = t
            .put(&format!("/api/invoices/{draft}"), fmt, &body_ok)
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.body);
        assert!(a.errors()[0].contains("approved"), "{:?}", a.errors());
        let a = t
            .put(&format!("/api/invoices/{approved}"), fmt, &body_bad_amount)
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST);
        assert!(a.errors()[0].contains("five"), "{:?}", a.errors());
        let a = t
            .put(&format!("/api/invoices/{approved}"), fmt, &body_bad_date)
            .await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST);
        assert!(a.errors()[0].contains("31/31/2020"), "{:?}", a.errors());
    }
    assert_eq!(
        t.invoice(approved).get("payments"),
        Some(&Value::Array(vec![]))
    );
}
