//! Every operation the three flows need, in JSON and in XML, against the simulator; the
//! simulator's own records are the evidence of each write.

use chrono::{FixedOffset, TimeZone};
use coupa_api::client::{NewIntegration, NewMonitoringRecord, NewPayment, PaidInFull};
use coupa_api::query::{Fields, Op, Query};
use coupa_api::{
    ContactAlertType, ErrorClass, Format, InvoiceId, InvoiceStatus, PayPaymentStatus, RunStatus,
};
use coupa_doc::Value;
use rust_decimal::Decimal;
use std::str::FromStr;

use crate::common::{BOTH, setup, small_sim};

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).expect("decimal literal")
}

fn when(y: i32, m: u32, d: u32) -> chrono::DateTime<FixedOffset> {
    FixedOffset::west_opt(7 * 3600)
        .expect("offset")
        .with_ymd_and_hms(y, m, d, 0, 0, 0)
        .single()
        .expect("date")
}

/// An approved, unexported invoice of the simulator, straight from its store.
fn approved_unexported(sim: &coupa_sim::SimHandle) -> i64 {
    let db = sim.state.db.lock();
    db.invoices
        .rows()
        .find(|r| {
            r.get("status").and_then(Value::as_str) == Some("approved")
                && r.get("exported").and_then(Value::as_bool) == Some(false)
        })
        .and_then(|r| r.get("id").and_then(Value::as_i64))
        .expect("the seed has approved unexported invoices")
}

#[tokio::test]
async fn invoices_list_with_filters_and_fields_decode_the_same_in_both_formats() {
    let mut seen = Vec::new();
    for format in BOTH {
        let s = setup(format, small_sim()).await;
        let expected: Vec<i64> = {
            let db = s.sim.state.db.lock();
            db.invoices
                .rows()
                .filter(|r| {
                    matches!(
                        r.get("status").and_then(Value::as_str),
                        Some("approved" | "voided")
                    ) && r.get("exported").and_then(Value::as_bool) == Some(false)
                })
                .filter_map(|r| r.get("id").and_then(Value::as_i64))
                .collect()
        };
        assert!(
            expected.len() > 5,
            "seed gives a handful: {}",
            expected.len()
        );
        let q = Query::new()
            .eq("exported", false)
            .is_in("status", ["approved", "voided"])
            .fields(
                Fields::new(["id", "invoice-number", "invoice-date", "status", "exported"])
                    .nest("supplier", Fields::new(["id", "name", "number"]))
                    .nest("currency", Fields::new(["code"]))
                    .nest(
                        "invoice-lines",
                        Fields::new(["line-num", "description", "quantity", "price", "total"]),
                    )
                    .all("custom-fields"),
            )
            .limit(7);
        let items = s
            .client
            .invoices()
            .list(q)
            .collect_all()
            .await
            .expect("listing works");
        let invoices: Vec<_> = items
            .into_iter()
            .map(|i| i.expect("every record decodes"))
            .collect();
        let ids: Vec<i64> = invoices.iter().map(|i| i.id.get()).collect();
        assert_eq!(ids, expected, "{format:?}: every match, in id order");
        for inv in &invoices {
            assert!(matches!(
                inv.status,
                Some(InvoiceStatus::Approved | InvoiceStatus::Voided)
            ));
            assert_eq!(inv.exported, Some(false));
            assert!(inv.invoice_number.is_some() && inv.supplier.is_some());
            assert!(
                !inv.invoice_lines.is_empty(),
                "{format:?} lines of {}",
                inv.id
            );
            for l in &inv.invoice_lines {
                assert!(l.total.is_some() && l.quantity.is_some());
            }
            // Not asked for, so not there.
            assert!(inv.payments.is_empty() && inv.amount_due.is_none());
        }
        // Pages of 7: one request per page, the last one short.
        let pages = s
            .recorder
            .attempts()
            .iter()
            .filter(|a| a.path.starts_with("/api/invoices?"))
            .count();
        // A full last page needs one more (empty) request to know it was the last.
        assert_eq!(pages, expected.len() / 7 + 1);
        seen.push(
            invoices
                .iter()
                .map(|i| {
                    (
                        i.id,
                        i.invoice_number.clone(),
                        i.invoice_lines.iter().map(|l| l.total).collect::<Vec<_>>(),
                    )
                })
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(seen[0], seen[1], "JSON and XML decode to the same values");
}

#[tokio::test]
async fn invoice_read_acknowledge_and_pay_in_both_formats() {
    for format in BOTH {
        let s = setup(format, small_sim()).await;
        let id = InvoiceId(approved_unexported(&s.sim));
        let inv = s.client.invoices().get(id, None).await.expect("get");
        assert_eq!(inv.id, id);
        let total = inv.total().expect("a full invoice has a total");
        assert!(total.amount > Decimal::ZERO && !total.currency.is_empty());

        // Option 1's acknowledgement: custom fields, then exported.
        let after = s
            .client
            .invoices()
            .set_custom_fields(
                id,
                &[
                    ("cf-erp-invoice-number", Value::from("ERP-000123")),
                    ("cf-integration-status", Value::from("Success: posted")),
                ],
            )
            .await
            .expect("custom fields");
        assert_eq!(
            after.custom_fields.text("cf-erp-invoice-number").as_deref(),
            Some("ERP-000123")
        );
        assert!(s.client.invoices().mark_exported(id).await.expect("export"));
        {
            let db = s.sim.state.db.lock();
            let row = db.invoices.get(id.get()).expect("row");
            assert_eq!(row.get("exported").and_then(Value::as_bool), Some(true));
            assert_eq!(
                row.pointer(&["custom-fields", "cf-integration-status"])
                    .and_then(Value::as_str),
                Some("Success: posted")
            );
        }

        // Payments, with the paid-in-full mark in the same request.
        let before = inv.payments.len();
        let paid = s
            .client
            .invoices()
            .add_payments(
                id,
                &[
                    NewPayment {
                        amount_paid: dec("100.25"),
                        payment_date: when(2026, 11, 2),
                        notes: Some("CHK-1001".into()),
                    },
                    NewPayment {
                        amount_paid: dec("0.75"),
                        payment_date: when(2026, 11, 3),
                        notes: Some("CHK-1002".into()),
                    },
                ],
                Some(&PaidInFull {
                    payment_date: when(2026, 11, 3),
                    notes: Some("Paid by coupa-bridge".into()),
                }),
            )
            .await
            .expect("payments");
        assert_eq!(paid.payments.len(), before + 2, "{format:?}");
        let last = paid.payments.last().expect("payment");
        assert_eq!(last.amount_paid, Some(dec("0.75")));
        assert_eq!(last.notes.as_deref(), Some("CHK-1002"));
        assert_eq!(paid.paid, Some(true));
        assert_eq!(paid.payment_notes.as_deref(), Some("Paid by coupa-bridge"));

        let again = s
            .client
            .invoices()
            .mark_paid(
                id,
                &PaidInFull {
                    payment_date: when(2026, 11, 4),
                    notes: None,
                },
            )
            .await
            .expect("mark paid");
        assert_eq!(
            again.payments.len(),
            before + 2,
            "mark_paid adds no payment"
        );
        assert_eq!(
            again.payment_date.map(|d| d.date_naive()),
            Some(when(2026, 11, 4).date_naive())
        );
    }
}

#[tokio::test]
async fn a_rejected_write_is_permanent_and_carries_coupas_messages() {
    for format in BOTH {
        let s = setup(format, small_sim()).await;
        let draft = {
            let db = s.sim.state.db.lock();
            db.invoices
                .rows()
                .find(|r| !matches!(r.get("status").and_then(Value::as_str), Some("approved")))
                .and_then(|r| r.get("id").and_then(Value::as_i64))
                .expect("a non-approved invoice")
        };
        let err = s
            .client
            .invoices()
            .add_payments(
                InvoiceId(draft),
                &[NewPayment {
                    amount_paid: dec("1.00"),
                    payment_date: when(2026, 11, 2),
                    notes: None,
                }],
                None,
            )
            .await
            .expect_err("payments need an approved invoice");
        assert_eq!(err.status(), Some(400), "{format:?}: {err}");
        assert_eq!(err.class(), ErrorClass::Permanent);
        assert!(!err.messages().is_empty(), "{format:?}: {err}");
        assert!(err.to_string().contains(&format!("/api/invoices/{draft}")));

        let missing = s
            .client
            .invoices()
            .get(InvoiceId(999_999), None)
            .await
            .expect_err("no such invoice");
        assert_eq!(missing.class(), ErrorClass::NotFound);
    }
}

#[tokio::test]
async fn integrations_runs_history_records_and_errors_in_both_formats() {
    for format in BOTH {
        let s = setup(format, small_sim()).await;
        let c = &s.client;
        assert!(
            c.integrations()
                .find_by_code("ERP-INVOICES")
                .await
                .expect("lookup")
                .is_none()
        );
        let integ = c
            .integrations()
            .create(&NewIntegration {
                name: "coupa-bridge invoices to ERP".into(),
                code: "ERP-INVOICES".into(),
                business_object: "InvoiceHeader".into(),
                direction: "from_coupa".into(),
                end_system: "Reference ERP".into(),
                end_system_type: "erp".into(),
                integration_type: Some("api".into()),
            })
            .await
            .expect("create integration");
        assert_eq!(integ.code.as_deref(), Some("ERP-INVOICES"));
        let found = c
            .integrations()
            .find_by_code("ERP-INVOICES")
            .await
            .expect("lookup")
            .expect("found");
        assert_eq!(found.id, integ.id);

        // A seeded integration has a contact.
        let seeded = c
            .integrations()
            .list(Query::new().filter("code", Op::NotEq, "ERP-INVOICES"))
            .collect_all()
            .await
            .expect("list");
        let first = seeded
            .into_iter()
            .next()
            .expect("seeded integrations")
            .expect("decodes");
        let contacts = c.integrations().contacts(first.id).await.expect("contacts");
        assert_eq!(contacts.len(), 1, "{format:?}");
        assert!(contacts[0].contact_alert_type.is_some());

        let run = c.runs().create("ERP-INVOICES").await.expect("run");
        assert_eq!(run.status, Some(RunStatus::Pending));
        let run = c.runs().start(run.id, 2).await.expect("start");
        assert_eq!(run.status, Some(RunStatus::Running));
        assert_eq!(run.total_records, Some(2));

        let record = NewMonitoringRecord {
            integration_code: "ERP-INVOICES".into(),
            run: Some(run.id),
            document_type: "InvoiceHeader".into(),
            document_id: Some(1001),
            document_status: Some("approved".into()),
            contact_alert_type: ContactAlertType::Functional,
            status: Some("Success".into()),
            external_id: Some("ERP-000001".into()),
            responses: vec![("Success-1".into(), "Posted as ERP-000001".into())],
        };
        let h = c.history_records().create(&record).await.expect("history");
        assert_eq!(h.document_id, Some(1001));
        assert_eq!(h.responses.len(), 1);
        assert_eq!(
            h.responses[0].response_message.as_deref(),
            Some("Posted as ERP-000001")
        );
        let open = c
            .history_records()
            .unresolved_for("InvoiceHeader", 1001)
            .collect_all()
            .await
            .expect("unresolved");
        assert!(open.iter().any(|r| r.as_ref().is_ok_and(|r| r.id == h.id)));
        let resolved = c.history_records().resolve(h.id).await.expect("resolve");
        assert_eq!(resolved.resolved, Some(true));
        let open = c
            .history_records()
            .unresolved_for("InvoiceHeader", 1001)
            .collect_all()
            .await
            .expect("unresolved");
        assert!(!open.iter().any(|r| r.as_ref().is_ok_and(|r| r.id == h.id)));

        let failure = NewMonitoringRecord {
            document_id: Some(1002),
            contact_alert_type: ContactAlertType::Both,
            status: Some("Error".into()),
            external_id: None,
            responses: vec![("ERP-REJECTED".into(), "Supplier SUP-9 is unknown".into())],
            ..record.clone()
        };
        let e = c
            .integration_errors()
            .create_alert(&failure)
            .await
            .expect("error with alert");
        assert_eq!(e.resolved, Some(false));
        assert_eq!(
            s.sim.state.db.lock().alerts.len(),
            1,
            "{format:?}: one alert raised"
        );
        // An unresolved error ends the run `errored`.
        let ended = c.runs().success(run.id).await.expect("success");
        assert_eq!(ended.status, Some(RunStatus::Errored));
        assert!(ended.end_time.is_some());
        let e = c.integration_errors().resolve(e.id).await.expect("resolve");
        assert_eq!(e.resolved, Some(true));

        let run2 = c.runs().create("ERP-INVOICES").await.expect("run 2");
        c.runs().start(run2.id, 0).await.expect("start 2");
        let failed = c.runs().fail(run2.id).await.expect("fail");
        assert_eq!(failed.status, Some(RunStatus::Failed));
        let fetched = c.runs().get(run2.id).await.expect("get run");
        assert_eq!(fetched.status, Some(RunStatus::Failed));
        let listed = c
            .runs()
            .list(Query::new().eq(["integration", "code"], "ERP-INVOICES"))
            .collect_all()
            .await
            .expect("runs");
        assert_eq!(listed.len(), 2);
    }
}

#[tokio::test]
async fn coupa_pay_payments_list_filter_read_and_mark_exported_in_both_formats() {
    for format in BOTH {
        let s = setup(format, small_sim()).await;
        let q = Query::new()
            .eq("exported", false)
            .is_in(
                "status",
                ["completed_successfully", "completed_with_errors"],
            )
            .eq(
                ["pay_to_account", "type"],
                "CoupaPay::SupplierPaymentAccount",
            );
        let items = s
            .client
            .pay_payments()
            .list(q)
            .collect_all()
            .await
            .expect("list");
        let payments: Vec<_> = items.into_iter().map(|p| p.expect("decodes")).collect();
        assert!(!payments.is_empty(), "{format:?}: the seed has some");
        for p in &payments {
            assert_eq!(p.exported, Some(false));
            assert!(matches!(
                p.status,
                Some(
                    PayPaymentStatus::CompletedSuccessfully | PayPaymentStatus::CompletedWithErrors
                )
            ));
            let to = p.pay_to().expect("pay-to total and currency");
            assert!(to.amount > Decimal::ZERO);
            assert!(!p.payment_details.is_empty());
            let sum: Decimal = p
                .payment_details
                .iter()
                .filter_map(|d| d.payment_total)
                .sum();
            assert_eq!(sum, to.amount, "{format:?}: details add up for {}", p.id);
            for d in &p.payment_details {
                assert!(d.source_transaction_id.is_some());
                assert!(d.source_transaction_reference.is_some());
            }
        }
        let id = payments[0].id;
        let one = s.client.pay_payments().get(id, None).await.expect("get");
        assert_eq!(one.id, id);
        assert!(
            s.client
                .pay_payments()
                .mark_exported(id)
                .await
                .expect("export")
        );
        let db = s.sim.state.db.lock();
        let row = db.pay_payments.get(id.get()).expect("row");
        assert_eq!(row.get("exported").and_then(Value::as_bool), Some(true));
    }
}

#[tokio::test]
async fn an_empty_listing_is_empty_in_both_formats_including_xmls_404() {
    for format in BOTH {
        let s = setup(format, small_sim()).await;
        let items = s
            .client
            .data_file_sources()
            .list(Query::new())
            .collect_all()
            .await
            .expect("an empty result is not an error");
        assert!(items.is_empty());
        let none = s
            .client
            .invoices()
            .list(Query::new().eq("invoice-number", "NO-SUCH-NUMBER"))
            .collect_all()
            .await
            .expect("empty");
        assert!(none.is_empty());
        let statuses: Vec<_> = s
            .recorder
            .attempts()
            .iter()
            .filter(|a| a.path.starts_with("/api/"))
            .map(|a| a.status)
            .collect();
        let expected = if format == Format::Xml { 404 } else { 200 };
        assert_eq!(statuses, vec![Some(expected); 2]);
    }
}
