//! The checks on hand-made end states: each finds what it is for, and nothing in a clean world.

use chrono::{Duration, NaiveDate, TimeZone};

use super::*;

fn invoice(id: i64, status: &str, exported: bool) -> Object {
    Object::new()
        .with("id", id)
        .with("invoice-number", format!("INV-{id}"))
        .with("status", status)
        .with("exported", exported)
        .with("payments", Value::Array(Vec::new()))
}

fn record(code: &str, doc_type: &str, id: i64, resolved: bool) -> Object {
    Object::new()
        .with("document-type", doc_type)
        .with("document-id", id)
        .with("resolved", resolved)
        .with("integration", Object::new().with("code", code))
}

fn erp_invoice(id: i64, status: &str) -> ErpInvoiceRecord {
    ErpInvoiceRecord {
        document_number: format!("AP-{id}"),
        coupa_invoice_id: id,
        invoice_number: format!("INV-{id}"),
        supplier_number: None,
        supplier_name: None,
        invoice_date: NaiveDate::from_ymd_opt(2026, 1, 2).expect("date"),
        currency: "USD".into(),
        total: Decimal::new(10_000, 2),
        status: status.into(),
        created_at: Utc::now(),
    }
}

/// Three eligible invoices before the connector: 1 and 2 approved, 3 voided; 4 was exported
/// by someone else, 5 is pending approval.
fn before() -> SimSnapshot {
    let mut sim = SimSnapshot::default();
    for (id, status, exported) in [
        (1, "approved", false),
        (2, "approved", false),
        (3, "voided", false),
        (4, "approved", true),
        (5, "pending_approval", false),
    ] {
        sim.invoices.insert(id, invoice(id, status, exported));
    }
    sim
}

/// The end state a correct connector leaves: 1 posted, 2 rejected, 3 voided before the ERP.
fn clean() -> (Baseline, SimSnapshot, ErpSnapshot) {
    let base = Baseline::of(&before());
    let mut sim = before();
    for id in [1, 2, 3] {
        sim.invoices.insert(id, {
            let inv = &sim.invoices[&id];
            invoice(id, status(inv), true)
        });
    }
    sim.history_records = vec![
        record(INVOICES_INTEGRATION, "InvoiceHeader", 1, false),
        record(INVOICES_INTEGRATION, "InvoiceHeader", 3, false),
    ];
    sim.integration_errors = vec![record(INVOICES_INTEGRATION, "InvoiceHeader", 2, false)];
    let erp = ErpSnapshot {
        invoices: vec![erp_invoice(1, "open")],
        ..ErpSnapshot::default()
    };
    (base, sim, erp)
}

#[test]
fn a_clean_end_state_has_no_violation() {
    let (base, sim, erp) = clean();
    assert_eq!(base.eligible.len(), 3);
    let v = check_all(&base, &sim, &erp, &Activity::default());
    assert!(v.is_empty(), "{v:#?}");
}

fn invariants(v: &[Violation]) -> Vec<&'static str> {
    v.iter().map(|v| v.invariant).collect()
}

#[test]
fn an_invoice_acknowledged_before_its_effect_is_found() {
    let (base, sim, mut erp) = clean();
    erp.invoices.clear();
    let mut sim = sim;
    sim.history_records
        .retain(|r| r.get("document-id").and_then(Value::as_i64) != Some(1));
    let v = check_invoices(&base, &sim, &erp, &Activity::default());
    assert_eq!(
        invariants(&v),
        ["invoice-acked-without-effect", "invoice-recorded-once"],
        "{v:#?}"
    );
    assert!(v[0].detail.contains("not in the ERP"), "{}", v[0]);
}

#[test]
fn lost_twice_posted_orphaned_and_twice_recorded_invoices_are_found() {
    let (base, mut sim, mut erp) = clean();
    // 2 was reset and never exported again.
    sim.invoices.insert(2, invoice(2, "approved", false));
    // 1 posted twice (a broken ERP) and recorded twice.
    erp.invoices.push(ErpInvoiceRecord {
        document_number: "AP-1b".into(),
        ..erp_invoice(1, "open")
    });
    sim.history_records
        .push(record(INVOICES_INTEGRATION, "InvoiceHeader", 1, true));
    // An ERP invoice for a Coupa invoice that was never eligible.
    erp.invoices.push(erp_invoice(5, "open"));
    let v = check_invoices(&base, &sim, &erp, &Activity::default());
    let found = invariants(&v);
    for expected in [
        "invoice-posted-twice",
        "invoice-recorded-once",
        "invoice-lost",
        "erp-invoice-orphan",
    ] {
        assert!(found.contains(&expected), "{expected} in {v:#?}");
    }
    // A reset explains a second record.
    let activity = Activity {
        resets: [(1, 1)].into(),
        ..Activity::default()
    };
    let v = check_invoices(&base, &sim, &erp, &activity);
    assert!(
        !v.iter()
            .any(|v| v.invariant == "invoice-recorded-once" && v.detail.contains("for at most")),
        "{v:#?}"
    );
}

fn erp_payment(r: &str, invoice: &str, id: Option<i64>, status: &str) -> ErpPaymentRecord {
    ErpPaymentRecord {
        id: 1,
        payment_ref: r.into(),
        invoice_number: invoice.into(),
        supplier_name: None,
        supplier_number: None,
        amount: "40.00".into(),
        currency: "USD".into(),
        payment_date: "2026-02-01".into(),
        check_number: Some(format!("CHK-{r}")),
        paid_in_full: false,
        sync_status: status.into(),
        sync_error: (status == "failed").then(|| "no approved invoice".into()),
        coupa_invoice_id: id,
        synced_at: None,
    }
}

fn with_payments(inv: &Object, notes: &[&str]) -> Object {
    let mut inv = inv.clone();
    let list = notes
        .iter()
        .map(|n| {
            Value::from(
                Object::new()
                    .with("notes", *n)
                    .with("amount-paid", Decimal::new(4_000, 2)),
            )
        })
        .collect::<Vec<_>>();
    inv.insert("payments", Value::Array(list));
    inv
}

#[test]
fn payments_lost_applied_twice_pending_or_failed_but_applied_are_found() {
    let (base, mut sim, mut erp) = clean();
    erp.payments = vec![
        erp_payment("P1", "INV-1", Some(1), "synced"),
        erp_payment("P2", "INV-1", Some(1), "synced"),
        erp_payment("P3", "NO-SUCH", None, "failed"),
    ];
    sim.invoices
        .insert(1, with_payments(&sim.invoices[&1], &["CHK-P1", "CHK-P2"]));
    assert!(check_payments(&base, &sim, &erp).is_empty());

    sim.invoices.insert(
        1,
        with_payments(&sim.invoices[&1], &["CHK-P1", "CHK-P1", "CHK-P2"]),
    );
    assert!(invariants(&check_payments(&base, &sim, &erp)).contains(&"payment-applied-twice"));

    sim.invoices
        .insert(1, with_payments(&sim.invoices[&1], &["CHK-P1"]));
    assert!(invariants(&check_payments(&base, &sim, &erp)).contains(&"payment-lost"));

    sim.invoices
        .insert(1, with_payments(&sim.invoices[&1], &["CHK-P1", "CHK-P2"]));
    erp.payments
        .push(erp_payment("P4", "INV-1", None, "pending"));
    assert_eq!(
        invariants(&check_payments(&base, &sim, &erp)),
        ["payment-pending"]
    );

    erp.payments.pop();
    erp.payments
        .push(erp_payment("P5", "INV-1", Some(1), "failed"));
    sim.invoices.insert(
        1,
        with_payments(&sim.invoices[&1], &["CHK-P1", "CHK-P2", "CHK-P5"]),
    );
    let found = invariants(&check_payments(&base, &sim, &erp));
    assert!(found.contains(&"payment-failed-but-applied"), "{found:?}");
    assert!(found.contains(&"payment-applied-twice"), "{found:?}");
}

#[test]
fn a_payment_in_two_csv_files_is_found() {
    let (base, mut sim, erp) = clean();
    let row = "a,b,c,d,INV-1,f,g,h,i,40.00,CHK-1\n";
    let header = "c0,c1,c2,c3,c4,c5,c6,c7,c8,c9,c10\n";
    sim.archived_payment_files = vec![
        ("one.csv".into(), format!("{header}{row}").into_bytes()),
        ("two.csv".into(), format!("{header}{row}").into_bytes()),
    ];
    assert_eq!(
        invariants(&check_payments(&base, &sim, &erp)),
        ["payment-in-two-files"]
    );
}

fn pay(id: i64, status: &str, exported: bool, details: usize) -> Object {
    Object::new()
        .with("id", id)
        .with("status", status)
        .with("exported", exported)
        .with(
            "payment-details",
            Value::Array((0..details).map(|i| Value::from(i as i64)).collect()),
        )
}

fn erp_pay(id: i64, status: &str) -> ErpPayPaymentRecord {
    ErpPayPaymentRecord {
        coupa_payment_id: id,
        status: status.into(),
        payment_identifier: None,
        pay_from_total: None,
        pay_from_currency: None,
        pay_to_total: None,
        pay_to_currency: None,
        exchange_rate: None,
        payee_name: None,
        pay_to_account_type: None,
        error_text: None,
        updated_at: None,
        exported_at: None,
        changed_at: None,
    }
}

fn application(id: i64) -> ErpPaymentApplicationRecord {
    ErpPaymentApplicationRecord {
        coupa_payment_id: id,
        coupa_detail_id: None,
        source_type: None,
        coupa_invoice_id: None,
        invoice_number: None,
        amount: "1".into(),
        settled: None,
        discount: None,
        adjustment: None,
        currency: "USD".into(),
        applied: true,
        problem: None,
    }
}

#[test]
fn coupa_pay_stale_statuses_missing_bookings_and_lost_payments_are_found() {
    let mut before = SimSnapshot::default();
    before
        .pay_payments
        .insert(1, pay(1, "completed_successfully", false, 1));
    before
        .pay_payments
        .insert(2, pay(2, "payment_in_progress", false, 1));
    before
        .pay_payments
        .insert(3, pay(3, "completed_successfully", true, 1));
    let base = Baseline::of(&before);
    assert_eq!(base.foreign_pay, [3].into());
    let mut sim = before.clone();
    sim.pay_payments.insert(1, pay(1, "cancelled", true, 2));
    sim.history_records = vec![
        record(PAY_INTEGRATION, "CoupaPay::Payment", 1, true),
        record(PAY_INTEGRATION, "CoupaPay::Payment", 1, false),
    ];
    let mut erp = ErpSnapshot {
        pay_payments: vec![erp_pay(1, "cancelled")],
        applications: vec![application(1), application(1)],
        ..ErpSnapshot::default()
    };
    let activity = Activity {
        pay_changes: [(1, 1)].into(),
        ..Activity::default()
    };
    assert!(check_pay_payments(&base, &sim, &erp, &activity).is_empty());
    assert!(
        invariants(&check_pay_payments(&base, &sim, &erp, &Activity::default()))
            .contains(&"pay-recorded-once")
    );

    erp.pay_payments = vec![erp_pay(1, "completed_successfully")];
    assert_eq!(
        invariants(&check_pay_payments(&base, &sim, &erp, &activity)),
        ["pay-latest-status"]
    );
    erp.pay_payments.clear();
    erp.applications.clear();
    assert_eq!(
        invariants(&check_pay_payments(&base, &sim, &erp, &activity)),
        ["pay-acked-without-effect"]
    );
    sim.pay_payments
        .insert(2, pay(2, "completed_with_errors", false, 1));
    erp.pay_payments = vec![
        erp_pay(1, "cancelled"),
        erp_pay(3, "completed_successfully"),
    ];
    erp.applications = vec![application(1)];
    let found = invariants(&check_pay_payments(&base, &sim, &erp, &activity));
    for expected in ["pay-applications", "pay-lost", "pay-foreign-booked"] {
        assert!(found.contains(&expected), "{expected} in {found:?}");
    }
}

#[test]
fn open_integration_runs_are_found() {
    let sim = SimSnapshot {
        integration_runs: vec![
            Object::new().with("id", 1).with("status", "successful"),
            Object::new()
                .with("id", 2)
                .with("status", "running")
                .with("integration", Object::new().with("code", PAY_INTEGRATION)),
        ],
        ..SimSnapshot::default()
    };
    let v = check_integration_runs(&sim);
    assert_eq!(invariants(&v), ["integration-run-open"]);
    assert!(v[0].detail.contains("run 2 of ERP-COUPA-PAY"), "{}", v[0]);
}

fn run(id: i64, flow: &str, start: i64, end: Option<i64>) -> RunRecord {
    let t0 = Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("time");
    RunRecord {
        id,
        flow: flow.into(),
        started_at: t0 + Duration::seconds(start),
        finished_at: end.map(|e| t0 + Duration::seconds(e)),
        status: if end.is_some() {
            "succeeded"
        } else {
            "running"
        }
        .into(),
        documents_ok: 0,
        documents_failed: 0,
        documents_skipped: 0,
        api_calls: 0,
        error: None,
        replica: None,
    }
}

#[test]
fn overlapping_runs_of_a_flow_are_found_and_killed_runs_end_at_a_death() {
    let t0 = Utc
        .with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .expect("time");
    let at = |s: i64| t0 + Duration::seconds(s);
    // One after the other, a killed one ended by a death, other flows free to overlap.
    let fine = [
        run(1, "invoices", 0, Some(5)),
        run(2, "payments", 1, Some(9)),
        run(3, "invoices", 6, None),
        run(4, "invoices", 12, Some(14)),
    ];
    assert!(check_run_overlaps(&fine, &[at(10)]).is_empty());
    // Without the death, run 3 never ended.
    assert_eq!(
        invariants(&check_run_overlaps(&fine, &[])),
        ["run-unfinished"]
    );
    // Two replicas on one flow at once.
    let twice = [
        run(1, "invoices", 0, Some(5)),
        run(2, "invoices", 4, Some(8)),
    ];
    let v = check_run_overlaps(&twice, &[]);
    assert_eq!(invariants(&v), ["runs-overlap"]);
    assert!(v[0].detail.contains("runs 1 and 2"), "{}", v[0]);
    // A killed run overlaps when another starts before the first death after it.
    let killed = [run(1, "invoices", 0, None), run(2, "invoices", 3, Some(8))];
    assert_eq!(
        invariants(&check_run_overlaps(&killed, &[at(5)])),
        ["runs-overlap"]
    );
    assert!(check_run_overlaps(&killed, &[at(2)]).is_empty());
}
