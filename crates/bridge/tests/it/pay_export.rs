//! The Coupa Pay export flow against the simulator, the reference ERP and the state store, in
//! JSON and XML: which payments a pass takes, how the ERP books them (one row per payment, one
//! application per detail, invoices paid only by `completed_successfully`), details whose
//! invoice the ERP does not have, status changes after export, idle passes and an ERP outage.

use std::collections::{BTreeMap, BTreeSet};
use std::str::FromStr;
use std::sync::Arc;

use coupa_api::Format;
use coupa_bridge::commands::demo::sqlite_url;
use coupa_bridge::erp::{
    BoxFuture, CancelOutcome, Erp, ErpError, ErpInvoice, ErpPayPayment, ErpPayPaymentRecord,
    ErpPayment, ErpPaymentApplicationRecord, MalformedPayment, PayBooking, PaymentSync,
    PostOutcome,
};
use coupa_bridge::flows::PassReport;
use coupa_bridge::flows::invoice_export::Monitoring;
use coupa_bridge::flows::pay_export::{PayExport, Settings};
use coupa_doc::{Object, Value};
use coupa_sim::SimConfig;
use rust_decimal::Decimal;

use crate::invoice_export::{Harness, client_config, harness_with};

const DOCUMENT_TYPE: &str = "CoupaPay::Payment";
const SUPPLIER: &str = "CoupaPay::SupplierPaymentAccount";
const EMPLOYEE: &str = "CoupaPay::EmployeePaymentAccount";
const SETTLES: &str = "completed_successfully";
const WITH_ERRORS: &str = "completed_with_errors";
const MARK_EXPORTED: &str = "PUT /api/coupa_pay/payments/{id}";
const FORMATS: [Format; 2] = [Format::Json, Format::Xml];

// ---------------------------------------------------------------------------------------------
// Set-up

/// A small instance (seed 1: 200 invoices, 40 Coupa Pay payments) with nothing exported yet.
async fn bare(format: Format) -> Harness {
    harness_with(
        SimConfig {
            invoices: 200,
            pay_payments: 40,
            ..SimConfig::default()
        },
        |sim| client_config(sim, format),
    )
    .await
}

/// Runs the invoice export, so the invoices the payments settle are in the ERP.
async fn export_invoices(h: &Harness) -> PassReport {
    let report = h
        .flow(Monitoring::Runs)
        .run()
        .await
        .expect("invoice export");
    assert!(report.complete(), "{:?}", report.transient);
    assert!(report.posted > 0, "the invoice export posted invoices");
    report
}

/// [`bare`] with the invoices exported.
async fn harness(format: Format) -> Harness {
    let h = bare(format).await;
    export_invoices(&h).await;
    h
}

fn pay_flow(h: &Harness, settings: Settings) -> PayExport {
    PayExport::new(
        h.client.clone(),
        Arc::new(h.erp.clone()),
        h.store.clone(),
        settings,
    )
}

fn every_kind() -> Settings {
    Settings {
        pay_to_account_type: String::new(),
        ..Settings::default()
    }
}

// ---------------------------------------------------------------------------------------------
// The simulator's side

fn sim_payments(h: &Harness) -> BTreeMap<i64, Object> {
    let db = h.sim.state.db.lock();
    db.pay_payments
        .rows()
        .map(|r| (id_of(r), r.clone()))
        .collect()
}

fn id_of(o: &Object) -> i64 {
    o.get("id").and_then(Value::as_i64).expect("an id")
}

fn text(o: &Object, path: &[&str]) -> Option<String> {
    o.pointer(path)
        .filter(|v| !v.is_null())
        .map(Value::to_plain_string)
}

fn status(o: &Object) -> String {
    text(o, &["status"]).expect("a status")
}

fn is_exported(o: &Object) -> bool {
    o.get("exported").and_then(Value::as_bool) == Some(true)
}

fn kind(o: &Object) -> String {
    text(o, &["pay-to-account", "type"]).expect("a pay-to account type")
}

fn details(o: &Object) -> Vec<Object> {
    o.get("payment-details")
        .and_then(Value::as_array)
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_object)
        .cloned()
        .collect()
}

fn detail_invoice(d: &Object) -> i64 {
    d.get("source-transaction-id")
        .and_then(Value::as_i64)
        .expect("source-transaction-id")
}

/// How many payments name each source transaction id in their details.
fn payments_per_invoice(pays: &BTreeMap<i64, Object>) -> BTreeMap<i64, usize> {
    let mut n = BTreeMap::new();
    for p in pays.values() {
        for d in details(p) {
            *n.entry(detail_invoice(&d)).or_default() += 1;
        }
    }
    n
}

/// The Coupa Pay payment records of `table` about payment `id`: (id, resolved, status).
fn records(h: &Harness, errors: bool, id: i64) -> Vec<(i64, bool, String)> {
    let db = h.sim.state.db.lock();
    let table = if errors {
        &db.integration_errors
    } else {
        &db.history_records
    };
    table
        .rows()
        .filter(|r| r.get("document-type").and_then(Value::as_str) == Some(DOCUMENT_TYPE))
        .filter(|r| r.get("document-id").and_then(Value::as_i64) == Some(id))
        .map(|r| {
            (
                id_of(r),
                r.get("resolved").and_then(Value::as_bool).unwrap_or(false),
                text(r, &["status"]).unwrap_or_default(),
            )
        })
        .collect()
}

/// Messages of the alerts sent about payment `id`.
fn alerts(h: &Harness, id: i64) -> Vec<String> {
    let db = h.sim.state.db.lock();
    db.alerts
        .iter()
        .filter(|a| a.get("document-type").and_then(Value::as_str) == Some(DOCUMENT_TYPE))
        .filter(|a| a.get("document-id").and_then(Value::as_i64) == Some(id))
        .map(|a| text(a, &["message"]).unwrap_or_default())
        .collect()
}

/// (history records, integration errors, integration runs, alerts) the simulator holds.
fn monitoring_counts(h: &Harness) -> (usize, usize, usize, usize) {
    let db = h.sim.state.db.lock();
    (
        db.history_records.len(),
        db.integration_errors.len(),
        db.integration_runs.len(),
        db.alerts.len(),
    )
}

/// The payments the default settings export: unexported completed supplier payments.
fn default_eligible(pays: &BTreeMap<i64, Object>) -> BTreeSet<i64> {
    pays.values()
        .filter(|p| {
            !is_exported(p)
                && kind(p) == SUPPLIER
                && matches!(status(p).as_str(), SETTLES | WITH_ERRORS)
        })
        .map(id_of)
        .collect()
}

fn mark_exported_calls(h: &Harness) -> u64 {
    h.sim.state.stats.endpoint(MARK_EXPORTED).calls
}

// ---------------------------------------------------------------------------------------------
// The ERP's side

/// The ERP's Coupa Pay payments by Coupa id; fails when one is there twice.
async fn erp_payments(h: &Harness) -> BTreeMap<i64, ErpPayPaymentRecord> {
    let rows = h.erp.pay_payments().await.expect("ERP pay payments");
    let n = rows.len();
    let map: BTreeMap<i64, ErpPayPaymentRecord> =
        rows.into_iter().map(|r| (r.coupa_payment_id, r)).collect();
    assert_eq!(map.len(), n, "one ERP row per Coupa Pay payment");
    map
}

async fn erp_applications(h: &Harness) -> BTreeMap<i64, Vec<ErpPaymentApplicationRecord>> {
    let mut map: BTreeMap<i64, Vec<ErpPaymentApplicationRecord>> = BTreeMap::new();
    for a in h.erp.payment_applications().await.expect("applications") {
        map.entry(a.coupa_payment_id).or_default().push(a);
    }
    map
}

/// ERP invoice status and total by Coupa invoice id.
async fn erp_invoices(h: &Harness) -> BTreeMap<i64, (String, Decimal)> {
    h.erp
        .invoices()
        .await
        .expect("ERP invoices")
        .into_iter()
        .map(|r| (r.coupa_invoice_id, (r.status, r.total)))
        .collect()
}

/// The ERP row and applications of payment `p` say exactly what Coupa says: status, totals and
/// rate as text (scale kept), currencies, one application per detail in order.
fn assert_booked_as_in_coupa(
    p: &Object,
    row: &ErpPayPaymentRecord,
    apps: &[ErpPaymentApplicationRecord],
) {
    let id = id_of(p);
    assert_eq!(row.status, status(p), "payment {id}: status");
    assert_eq!(
        row.payment_identifier,
        text(p, &["payment-identifier"]),
        "payment {id}"
    );
    assert_eq!(
        row.pay_from_total,
        text(p, &["pay-from-total"]),
        "payment {id}: pay-from-total"
    );
    assert_eq!(
        row.pay_to_total,
        text(p, &["pay-to-total"]),
        "payment {id}: pay-to-total"
    );
    assert_eq!(
        row.exchange_rate,
        text(p, &["exchange-rate"]),
        "payment {id}: exchange-rate"
    );
    assert_eq!(
        row.pay_from_currency,
        text(p, &["pay-from-currency", "code"]),
        "payment {id}"
    );
    assert_eq!(
        row.pay_to_currency,
        text(p, &["pay-to-currency", "code"]),
        "payment {id}"
    );
    assert_eq!(
        row.pay_to_account_type,
        Some(kind(p)),
        "payment {id}: pay-to account type"
    );
    let ds = details(p);
    assert_eq!(
        apps.len(),
        ds.len(),
        "payment {id}: one application per detail"
    );
    for (a, d) in apps.iter().zip(&ds) {
        assert_eq!(
            a.coupa_detail_id,
            d.get("id").and_then(Value::as_i64),
            "payment {id}"
        );
        assert_eq!(
            a.source_type,
            text(d, &["source-transaction-type"]),
            "payment {id}"
        );
        assert_eq!(a.coupa_invoice_id, Some(detail_invoice(d)), "payment {id}");
        assert_eq!(
            a.invoice_number,
            text(d, &["source-transaction-reference"]),
            "payment {id}"
        );
        assert_eq!(
            Some(a.amount.clone()),
            text(d, &["payment-total"]),
            "payment {id}: amount is the detail's payment-total, decimals kept"
        );
        assert_eq!(
            a.settled,
            text(d, &["transaction-total"]),
            "payment {id}: settled is the detail's transaction-total"
        );
        assert_eq!(
            Some(a.currency.clone()),
            text(d, &["currency", "code"]),
            "payment {id}"
        );
    }
}

/// Checks every payment the ERP holds against the simulator's current data.
async fn assert_erp_mirrors_coupa(h: &Harness) -> usize {
    let sim = sim_payments(h);
    let rows = erp_payments(h).await;
    let apps = erp_applications(h).await;
    for (id, row) in &rows {
        let p = sim.get(id).expect("the ERP holds only Coupa's payments");
        assert_booked_as_in_coupa(p, row, apps.get(id).map_or(&[], Vec::as_slice));
    }
    rows.len()
}

/// A listed pass with nothing left for later and nothing unreadable.
fn assert_complete(report: &PassReport) {
    assert!(
        report.complete(),
        "transient {:?}, unreadable {:?}",
        report.transient,
        report.unreadable
    );
}

// ---------------------------------------------------------------------------------------------
// Tests

/// By default only payments to suppliers are exported; with every kind, employee expense
/// reimbursements are booked too, their ExpenseReport details kept but never unapplied.
#[tokio::test]
async fn supplier_payments_by_default_employee_payments_on_request() {
    for format in FORMATS {
        let h = harness(format).await;
        let before = sim_payments(&h);
        let completed = |p: &Object| matches!(status(p).as_str(), SETTLES | WITH_ERRORS);
        let eligible = |k: &str| -> BTreeSet<i64> {
            before
                .values()
                .filter(|p| !is_exported(p) && completed(p) && kind(p) == k)
                .map(id_of)
                .collect()
        };
        let (suppliers, employees) = (eligible(SUPPLIER), eligible(EMPLOYEE));
        assert!(
            !suppliers.is_empty() && !employees.is_empty(),
            "the seed has both"
        );

        let report = pay_flow(&h, Settings::default()).run().await.expect("pass");
        assert_complete(&report);
        let after = sim_payments(&h);
        let newly: BTreeSet<i64> = before
            .iter()
            .filter(|(id, p)| !is_exported(p) && is_exported(&after[*id]))
            .map(|(id, _)| *id)
            .collect();
        assert_eq!(
            newly, suppliers,
            "{format:?}: exactly the supplier payments"
        );
        for id in &employees {
            assert!(
                !is_exported(&after[id]),
                "{format:?}: employee payment {id}"
            );
        }
        assert_eq!(report.exported as usize, suppliers.len(), "{format:?}");
        assert_eq!(report.posted as usize, suppliers.len(), "{format:?}");
        assert_eq!(report.listed as usize, suppliers.len(), "{format:?}");
        let rows = erp_payments(&h).await;
        assert_eq!(
            rows.keys().copied().collect::<BTreeSet<_>>(),
            suppliers,
            "{format:?}"
        );
        assert!(
            rows.values()
                .all(|r| r.pay_to_account_type.as_deref() == Some(SUPPLIER))
        );
        assert_erp_mirrors_coupa(&h).await;

        let report = pay_flow(&h, every_kind()).run().await.expect("pass");
        assert_complete(&report);
        assert_eq!(report.exported as usize, employees.len(), "{format:?}");
        assert_eq!(report.posted as usize, employees.len(), "{format:?}");
        assert!(
            report.rejected.is_empty(),
            "{format:?}: {:?}",
            report.rejected
        );
        let after = sim_payments(&h);
        let rows = erp_payments(&h).await;
        let apps = erp_applications(&h).await;
        for id in &employees {
            assert!(is_exported(&after[id]), "{format:?}: employee payment {id}");
            assert_eq!(
                rows[id].pay_to_account_type.as_deref(),
                Some(EMPLOYEE),
                "{format:?}"
            );
            let a = &apps[id];
            assert!(!a.is_empty());
            for app in a {
                assert_eq!(app.source_type.as_deref(), Some("ExpenseReport"), "{app:?}");
                assert!(!app.applied, "an expense report is never applied: {app:?}");
                assert_eq!(app.problem, None, "nor a problem: {app:?}");
            }
            assert!(
                records(&h, true, *id).is_empty(),
                "{format:?}: no error for {id}"
            );
            assert!(alerts(&h, *id).is_empty(), "{format:?}: no alert for {id}");
            let history = records(&h, false, *id);
            assert_eq!(history.len(), 1, "{format:?}: one history record for {id}");
            assert_eq!((history[0].1, history[0].2.as_str()), (false, "Success"));
        }
        assert_eq!(
            assert_erp_mirrors_coupa(&h).await,
            suppliers.len() + employees.len()
        );
    }
}

/// Each status is booked as it is; by default only the two completed ones are exported; ERP
/// invoices are paid only by `completed_successfully` payments.
#[tokio::test]
async fn each_status_is_booked_as_coupa_has_it() {
    for format in FORMATS {
        let h = harness(format).await;
        let before = sim_payments(&h);
        let report = pay_flow(&h, every_kind()).run().await.expect("pass");
        assert_complete(&report);
        let after = sim_payments(&h);
        for (id, p) in &before {
            if is_exported(p) {
                continue;
            }
            let completed = matches!(status(p).as_str(), SETTLES | WITH_ERRORS);
            assert_eq!(
                is_exported(&after[id]),
                completed,
                "{format:?}: payment {id} ({}) exported only when completed",
                status(p)
            );
        }
        let rows = erp_payments(&h).await;
        assert!(
            rows.values()
                .all(|r| matches!(r.status.as_str(), SETTLES | WITH_ERRORS)),
            "{format:?}"
        );

        let all = Settings {
            statuses: coupa_sim::clerk::PAY_STATUSES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            ..every_kind()
        };
        let report = pay_flow(&h, all).run().await.expect("pass");
        assert_complete(&report);
        let after = sim_payments(&h);
        let rows = erp_payments(&h).await;
        let mut seen = BTreeSet::new();
        for (id, p) in &before {
            if is_exported(p) {
                assert!(
                    !rows.contains_key(id),
                    "{format:?}: exported by others: {id}"
                );
                continue;
            }
            assert!(is_exported(&after[id]), "{format:?}: payment {id}");
            let row = rows.get(id).expect("booked");
            assert_eq!(row.status, status(p), "{format:?}: payment {id}");
            seen.insert(row.status.clone());
        }
        assert_eq!(
            seen,
            coupa_sim::clerk::PAY_STATUSES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            "{format:?}: every status booked"
        );
        assert_erp_mirrors_coupa(&h).await;

        // An ERP invoice is paid exactly when applied details of completed_successfully
        // payments settle its total.
        let apps = erp_applications(&h).await;
        let invoices = erp_invoices(&h).await;
        let mut settled: BTreeMap<i64, Decimal> = BTreeMap::new();
        let mut other: BTreeSet<i64> = BTreeSet::new();
        for (id, list) in &apps {
            for a in list.iter().filter(|a| a.applied) {
                let inv = a.coupa_invoice_id.expect("applied to an invoice");
                if rows[id].status == SETTLES {
                    let amount =
                        Decimal::from_str(a.settled.as_deref().expect("settled")).expect("decimal");
                    *settled.entry(inv).or_default() += amount;
                } else {
                    other.insert(inv);
                }
            }
        }
        let mut paid = 0;
        for (inv, (st, total)) in &invoices {
            let reached = settled.get(inv).is_some_and(|s| s >= total);
            assert_eq!(
                st == "paid",
                reached,
                "{format:?}: invoice {inv} is {st}, settled {:?} of {total}",
                settled.get(inv)
            );
            paid += usize::from(reached);
        }
        assert!(paid > 0, "{format:?}: some invoices are paid");
        let only_other: Vec<i64> = other
            .iter()
            .filter(|i| !settled.contains_key(i))
            .copied()
            .collect();
        assert!(
            !only_other.is_empty(),
            "{format:?}: some invoices have only payments that do not settle"
        );
        for inv in only_other {
            assert_eq!(invoices[&inv].0, "open", "{format:?}: invoice {inv}");
        }
    }
}

/// A payment of several invoices is one ERP row with one application per invoice, the amounts
/// as Coupa has them, every invoice paid; a payment in another currency keeps Coupa's totals,
/// currencies and rate exactly.
#[tokio::test]
async fn a_payment_settling_several_invoices_and_one_in_another_currency() {
    for format in FORMATS {
        let h = harness(format).await;
        let before = sim_payments(&h);
        let in_erp = erp_invoices(&h).await;
        let candidates = || {
            before.values().filter(|p| {
                !is_exported(p)
                    && status(p) == SETTLES
                    && kind(p) == SUPPLIER
                    && details(p)
                        .iter()
                        .all(|d| in_erp.contains_key(&detail_invoice(d)))
            })
        };
        let multi = candidates()
            .filter(|p| details(p).len() >= 2)
            .max_by_key(|p| details(p).len())
            .expect("a supplier payment of several invoices")
            .clone();
        let foreign = candidates()
            .find(|p| {
                text(p, &["pay-from-currency", "code"]) != text(p, &["pay-to-currency", "code"])
            })
            .expect("a payment in another currency")
            .clone();
        let report = pay_flow(&h, Settings::default()).run().await.expect("pass");
        assert_complete(&report);
        let rows = erp_payments(&h).await;
        let apps = erp_applications(&h).await;
        let invoices = erp_invoices(&h).await;

        let id = id_of(&multi);
        let list = &apps[&id];
        assert_booked_as_in_coupa(&multi, &rows[&id], list);
        assert!(
            list.iter().all(|a| a.applied && a.problem.is_none()),
            "{list:?}"
        );
        let ids: BTreeSet<i64> = list.iter().filter_map(|a| a.coupa_invoice_id).collect();
        assert_eq!(
            ids.len(),
            details(&multi).len(),
            "{format:?}: distinct invoices"
        );
        for inv in &ids {
            assert_eq!(invoices[inv].0, "paid", "{format:?}: invoice {inv} of {id}");
        }
        let sum: Decimal = list
            .iter()
            .map(|a| Decimal::from_str(&a.amount).expect("decimal"))
            .sum();
        assert_eq!(
            Some(sum.to_string()),
            text(&multi, &["pay-to-total"]),
            "{format:?}: the applications add up to what the payee got"
        );

        let id = id_of(&foreign);
        let row = &rows[&id];
        assert_booked_as_in_coupa(&foreign, row, &apps[&id]);
        assert_ne!(row.pay_from_currency, row.pay_to_currency);
        assert!(
            row.exchange_rate
                .as_deref()
                .is_some_and(|r| r != "1.000000")
        );
        for a in &apps[&id] {
            assert!(a.applied, "{format:?}: {a:?}");
            assert_eq!(Some(&a.currency), row.pay_to_currency.as_ref());
        }
    }
}

/// A copy of detail `template` with id `detail_id`, naming `invoice` `number` for `amount`.
fn extra_detail(
    template: &Object,
    detail_id: i64,
    invoice: i64,
    number: &str,
    amount: Decimal,
) -> Value {
    let mut d = template.clone();
    d.insert("id", detail_id);
    d.insert("payable-id", invoice);
    d.insert("source-transaction-id", invoice);
    d.insert("source-transaction-reference", number);
    d.insert("transaction-total", amount);
    d.insert("discount-total", Decimal::new(0, 2));
    d.insert("adjustment-total", Decimal::new(0, 2));
    d.insert("payment-total", amount);
    Value::Object(d)
}

/// A payment with one detail the ERP can apply, one for a Coupa invoice the ERP does not have
/// yet and one for an invoice nobody knows: it is booked and exported, the unknown details kept
/// unapplied with a reason naming the invoice, an integration error with an alert; the rest of
/// the pass goes on. When the missing invoice reaches the ERP, its detail is applied.
#[tokio::test]
async fn a_detail_for_an_invoice_the_erp_lacks_is_kept_and_alerted() {
    for format in FORMATS {
        let h = bare(format).await;
        let before = sim_payments(&h);
        let per_invoice = payments_per_invoice(&before);
        // The payment: a supplier's, completed, one detail. The late invoice: approved, of the
        // same supplier (so the same currency), paid by no payment; hidden from the invoice
        // export for now.
        let (payment, late, late_number, late_total) = {
            let mut db = h.sim.state.db.lock();
            let found = before
                .values()
                .filter(|p| {
                    !is_exported(p)
                        && status(p) == SETTLES
                        && kind(p) == SUPPLIER
                        && details(p).len() == 1
                        && per_invoice[&detail_invoice(&details(p)[0])] == 1
                })
                .find_map(|p| {
                    let known = db.invoices.get(detail_invoice(&details(p)[0]))?;
                    let supplier = text(known, &["supplier", "id"]);
                    let late = db.invoices.rows().find(|i| {
                        text(i, &["status"]).as_deref() == Some("approved")
                            && !is_exported(i)
                            && !per_invoice.contains_key(&id_of(i))
                            && text(i, &["supplier", "id"]) == supplier
                            && text(i, &["invoice-date"]).is_some_and(|d| d.as_str() >= "2025-08")
                    })?;
                    Some((p.clone(), id_of(late)))
                });
            let (payment, late) =
                found.expect("a payment of one invoice whose supplier has another");
            let row = db.invoices.get_mut(late).expect("invoice");
            row.insert("exported", true);
            let number = text(row, &["invoice-number"]).expect("number");
            let total = row
                .get("total-with-taxes")
                .and_then(Value::as_decimal)
                .expect("total");
            (payment, late, number, total)
        };
        let pid = id_of(&payment);
        let known = detail_invoice(&details(&payment)[0]);
        let made_up = "NO-SUCH-INVOICE-4711";
        {
            let mut db = h.sim.state.db.lock();
            let row = db.pay_payments.get_mut(pid).expect("payment");
            let template = details(row)[0].clone();
            let mut list: Vec<Value> = details(row).into_iter().map(Value::Object).collect();
            list.push(extra_detail(
                &template,
                99_001,
                late,
                &late_number,
                late_total,
            ));
            list.push(extra_detail(
                &template,
                99_002,
                987_654,
                made_up,
                Decimal::new(12_345, 2),
            ));
            row.insert("payment-details", Value::Array(list));
        }
        export_invoices(&h).await;
        let in_erp = erp_invoices(&h).await;
        assert!(
            in_erp.contains_key(&known),
            "{format:?}: the known invoice is in the ERP"
        );
        assert!(
            !in_erp.contains_key(&late),
            "{format:?}: the late one is not"
        );

        let report = pay_flow(&h, Settings::default()).run().await.expect("pass");
        assert_complete(&report);
        let after = sim_payments(&h);
        assert!(
            is_exported(&after[&pid]),
            "{format:?}: exported all the same"
        );
        let rejected: BTreeMap<i64, String> = report.rejected.iter().cloned().collect();
        assert_eq!(
            rejected.keys().copied().collect::<Vec<_>>(),
            vec![pid],
            "{format:?}: only the crafted payment has problems"
        );
        assert!(
            rejected[&pid].contains(&late_number) && rejected[&pid].contains(made_up),
            "{format:?}: {}",
            rejected[&pid]
        );
        let rows = erp_payments(&h).await;
        let apps = erp_applications(&h).await;
        assert_booked_as_in_coupa(&after[&pid], &rows[&pid], &apps[&pid]);
        let list = &apps[&pid];
        assert_eq!(list.len(), 3);
        assert!(
            list[0].applied && list[0].problem.is_none(),
            "{:?}",
            list[0]
        );
        assert!(!list[1].applied, "{:?}", list[1]);
        assert!(
            list[1]
                .problem
                .as_deref()
                .is_some_and(|p| p.contains(&late_number)),
            "{:?}",
            list[1]
        );
        assert!(!list[2].applied, "{:?}", list[2]);
        assert!(
            list[2]
                .problem
                .as_deref()
                .is_some_and(|p| p.contains(made_up)),
            "{:?}",
            list[2]
        );
        assert_eq!(
            erp_invoices(&h).await[&known].0,
            "paid",
            "{format:?}: the known invoice is paid"
        );
        // Coupa: an unresolved integration error, with an alert naming the invoices.
        let errors = records(&h, true, pid);
        assert_eq!(errors.len(), 1, "{format:?}: {errors:?}");
        assert!(!errors[0].1, "unresolved");
        assert!(
            records(&h, false, pid).is_empty(),
            "{format:?}: no success record"
        );
        let messages = alerts(&h, pid);
        assert_eq!(messages.len(), 1, "{format:?}: {messages:?}");
        assert!(
            messages[0].contains(&late_number) && messages[0].contains(made_up),
            "{messages:?}"
        );
        // Every other payment went on as usual.
        for (id, p) in &before {
            if *id == pid || is_exported(p) || kind(p) != SUPPLIER {
                continue;
            }
            if !matches!(status(p).as_str(), SETTLES | WITH_ERRORS) {
                continue;
            }
            assert!(is_exported(&after[id]), "{format:?}: payment {id}");
            assert!(
                apps[id].iter().all(|a| a.applied),
                "{format:?}: {:?}",
                apps[id]
            );
            assert!(records(&h, true, *id).is_empty());
            assert_eq!(records(&h, false, *id).len(), 1, "{format:?}: payment {id}");
        }

        // The late invoice reaches the ERP: the waiting detail is applied, the invoice paid.
        {
            let mut db = h.sim.state.db.lock();
            let now = h.sim.state.now();
            coupa_sim::clerk::reset_export(&mut db, late, now).expect("reset");
        }
        let invoices = h
            .flow(Monitoring::Runs)
            .run()
            .await
            .expect("invoice export");
        assert_eq!(invoices.posted, 1, "{format:?}");
        let list = &erp_applications(&h).await[&pid];
        assert!(
            list[1].applied && list[1].problem.is_none(),
            "{:?}",
            list[1]
        );
        assert!(!list[2].applied, "{:?}", list[2]);
        assert_eq!(erp_invoices(&h).await[&late].0, "paid", "{format:?}");
        // And the next Coupa Pay pass has nothing to do.
        let again = pay_flow(&h, Settings::default()).run().await.expect("pass");
        assert_eq!((again.listed, again.posted, again.updated), (0, 0, 0));
    }
}

/// Two supplier payments of invoices no other payment pays, all in the ERP.
fn two_lone_payments(
    before: &BTreeMap<i64, Object>,
    in_erp: &BTreeMap<i64, (String, Decimal)>,
) -> (i64, i64) {
    let per_invoice = payments_per_invoice(before);
    let lone: Vec<i64> = before
        .values()
        .filter(|p| {
            !is_exported(p)
                && status(p) == SETTLES
                && kind(p) == SUPPLIER
                && details(p).iter().all(|d| {
                    let inv = detail_invoice(d);
                    per_invoice[&inv] == 1 && in_erp.contains_key(&inv)
                })
        })
        .map(id_of)
        .collect();
    assert!(lone.len() >= 2, "{lone:?}");
    (lone[0], lone[1])
}

fn invoices_of(p: &Object) -> Vec<i64> {
    details(p).iter().map(detail_invoice).collect()
}

/// Status changes after export: the ERP row is updated, never duplicated; invoices paid on a
/// later completion and reopened on a cancellation; a new history record per change, the
/// earlier one resolved; no payment marked exported again.
#[tokio::test]
async fn status_changes_after_export_update_the_erp() {
    for format in FORMATS {
        let h = harness(format).await;
        let before = sim_payments(&h);
        let (a, b) = two_lone_payments(&before, &erp_invoices(&h).await);
        // `a` failed partly at first; `b` completed.
        {
            let mut db = h.sim.state.db.lock();
            let now = h.sim.state.now();
            coupa_sim::clerk::set_pay_status(&mut db, a, WITH_ERRORS, now).expect("status");
        }
        let first = pay_flow(&h, Settings::default()).run().await.expect("pass");
        assert_complete(&first);
        let rows = erp_payments(&h).await;
        assert_eq!(rows[&a].status, WITH_ERRORS);
        assert_eq!(rows[&b].status, SETTLES);
        let invoices = erp_invoices(&h).await;
        for inv in invoices_of(&before[&a]) {
            assert_eq!(invoices[&inv].0, "open", "{format:?}: invoice {inv} of {a}");
        }
        for inv in invoices_of(&before[&b]) {
            assert_eq!(invoices[&inv].0, "paid", "{format:?}: invoice {inv} of {b}");
        }
        let apps_before = erp_applications(&h).await;
        let rows_before = rows;
        let marks = mark_exported_calls(&h);
        assert!(marks >= first.exported, "the sim counts the marks");

        {
            let mut db = h.sim.state.db.lock();
            let now = h.sim.state.now();
            coupa_sim::clerk::set_pay_status(&mut db, a, SETTLES, now).expect("status");
            coupa_sim::clerk::set_pay_status(&mut db, b, "cancelled", now).expect("status");
        }
        let second = pay_flow(&h, Settings::default()).run().await.expect("pass");
        assert_complete(&second);
        assert_eq!(second.updated, 2, "{format:?}: {second:?}");
        assert_eq!((second.posted, second.exported), (0, 0), "{format:?}");
        assert_eq!(second.listed, 2, "{format:?}");
        assert!(second.coupa_run.is_some(), "a run for the changes");
        assert_eq!(mark_exported_calls(&h), marks, "{format:?}: no mark again");

        let sim = sim_payments(&h);
        let rows = erp_payments(&h).await;
        let apps = erp_applications(&h).await;
        assert_eq!(rows.len(), rows_before.len(), "{format:?}: no new row");
        assert_eq!(rows[&a].status, SETTLES, "{format:?}");
        assert_eq!(rows[&b].status, "cancelled", "{format:?}");
        for (id, row) in &rows {
            if *id == a || *id == b {
                assert_eq!(apps[id].len(), apps_before[id].len(), "not duplicated");
                assert_booked_as_in_coupa(&sim[id], row, &apps[id]);
            } else {
                assert_eq!(row, &rows_before[id], "{format:?}: payment {id} untouched");
                assert_eq!(apps[id], apps_before[id]);
            }
        }
        let invoices = erp_invoices(&h).await;
        for inv in invoices_of(&before[&a]) {
            assert_eq!(invoices[&inv].0, "paid", "{format:?}: invoice {inv} of {a}");
        }
        for inv in invoices_of(&before[&b]) {
            assert_eq!(invoices[&inv].0, "open", "{format:?}: invoice {inv} of {b}");
        }
        for id in [a, b] {
            assert!(is_exported(&sim[&id]), "{format:?}: still exported");
            let mut history = records(&h, false, id);
            history.sort();
            assert_eq!(history.len(), 2, "{format:?}: {history:?}");
            assert!(history[0].1, "{format:?}: the first record resolved");
            assert_eq!((history[1].1, history[1].2.as_str()), (false, "Success"));
            assert!(records(&h, true, id).is_empty());
        }
        // A third pass has nothing new.
        let third = pay_flow(&h, Settings::default()).run().await.expect("pass");
        assert_eq!((third.listed, third.updated, third.exported), (0, 0, 0));
    }
}

/// A second pass right after the first does nothing: no booking, no record, no run, no mark.
#[tokio::test]
async fn a_second_pass_does_nothing() {
    for format in FORMATS {
        let h = harness(format).await;
        let first = pay_flow(&h, every_kind()).run().await.expect("pass");
        assert_complete(&first);
        assert!(first.exported > 0 && first.coupa_run.is_some());
        let rows = h.erp.pay_payments().await.expect("rows");
        let apps = h.erp.payment_applications().await.expect("apps");
        let invoices = h.erp.invoices().await.expect("invoices");
        let counts = monitoring_counts(&h);
        let marks = mark_exported_calls(&h);
        let sim = sim_payments(&h);

        let second = pay_flow(&h, every_kind()).run().await.expect("pass");
        assert_complete(&second);
        assert_eq!(
            (
                second.listed,
                second.posted,
                second.updated,
                second.exported
            ),
            (0, 0, 0, 0),
            "{format:?}: {second:?}"
        );
        assert!(second.rejected.is_empty());
        assert_eq!(
            second.coupa_run, None,
            "{format:?}: no run for an idle pass"
        );
        assert_eq!(monitoring_counts(&h), counts, "{format:?}");
        assert_eq!(mark_exported_calls(&h), marks, "{format:?}");
        assert_eq!(
            h.erp.pay_payments().await.expect("rows"),
            rows,
            "{format:?}"
        );
        assert_eq!(h.erp.payment_applications().await.expect("apps"), apps);
        assert_eq!(h.erp.invoices().await.expect("invoices"), invoices);
        assert_eq!(sim_payments(&h), sim, "{format:?}: Coupa unchanged");
    }
}

/// An ERP that is down.
struct DownErp;

fn down<T>() -> Result<T, ErpError> {
    Err(ErpError::Unavailable("connection refused".into()))
}

impl Erp for DownErp {
    fn post_invoice<'a>(
        &'a self,
        _: &'a ErpInvoice,
    ) -> BoxFuture<'a, Result<PostOutcome, ErpError>> {
        Box::pin(async { down() })
    }

    fn cancel_invoice<'a>(&'a self, _: i64) -> BoxFuture<'a, Result<CancelOutcome, ErpError>> {
        Box::pin(async { down() })
    }

    fn pending_payments(
        &self,
        _: i64,
        _: usize,
    ) -> BoxFuture<'_, Result<Vec<Result<ErpPayment, MalformedPayment>>, ErpError>> {
        Box::pin(async { down() })
    }

    fn settle_payments<'a>(
        &'a self,
        _: &'a [(i64, PaymentSync)],
    ) -> BoxFuture<'a, Result<(), ErpError>> {
        Box::pin(async { down() })
    }

    fn book_pay_payment<'a>(
        &'a self,
        _: &'a ErpPayPayment,
    ) -> BoxFuture<'a, Result<PayBooking, ErpError>> {
        Box::pin(async { down() })
    }

    fn pay_problems<'a>(
        &'a self,
        _: &'a [i64],
    ) -> BoxFuture<'a, Result<std::collections::HashMap<i64, Vec<String>>, ErpError>> {
        Box::pin(async { down() })
    }
}

/// An ERP outage leaves every payment unexported and reported for the next pass, which exports
/// them all once the ERP is back.
#[tokio::test]
async fn an_erp_outage_leaves_payments_for_the_next_pass() {
    for format in FORMATS {
        let h = harness(format).await;
        let before = sim_payments(&h);
        let eligible = default_eligible(&before);
        assert!(!eligible.is_empty());
        let flow = PayExport::new(
            h.client.clone(),
            Arc::new(DownErp),
            h.store.clone(),
            Settings::default(),
        );
        let report = flow.run().await.expect("the pass itself completes");
        assert!(!report.complete());
        let transient: BTreeSet<i64> = report.transient.iter().map(|(id, _)| *id).collect();
        assert_eq!(transient, eligible, "{format:?}");
        assert!(
            report
                .transient
                .iter()
                .all(|(_, why)| why.contains("ERP unavailable")),
            "{:?}",
            report.transient
        );
        assert_eq!((report.exported, report.posted), (0, 0));
        assert_eq!(
            sim_payments(&h),
            before,
            "{format:?}: nothing marked exported"
        );
        assert!(erp_payments(&h).await.is_empty());
        for id in &eligible {
            assert!(records(&h, false, *id).is_empty() && records(&h, true, *id).is_empty());
        }

        let report = pay_flow(&h, Settings::default()).run().await.expect("pass");
        assert_complete(&report);
        assert_eq!(report.exported as usize, eligible.len(), "{format:?}");
        assert_eq!(report.posted as usize, eligible.len(), "{format:?}");
        let after = sim_payments(&h);
        for id in &eligible {
            assert!(is_exported(&after[id]), "{format:?}: payment {id}");
            assert_eq!(records(&h, false, *id).len(), 1, "{format:?}: payment {id}");
        }
        assert_eq!(assert_erp_mirrors_coupa(&h).await, eligible.len());
    }
}

/// `coupa-bridge sync pay-payments` against the harness's simulator, ERP and state store.
fn sync_pay(h: &Harness, format: Format) -> std::process::Command {
    let dir = h._dir.path();
    let config = dir.join(format!("pay-{format:?}.toml"));
    std::fs::write(
        &config,
        format!(
            "[coupa]\nbase_url = \"{}\"\nclient_id = \"coupa-bridge\"\nformat = \"{}\"\n\
             insecure_http_simulator_only = true\n\
             requests_per_second = 2000\nburst = 200\n\n\
             [state]\nurl = \"{}\"\n\n[erp]\nkind = \"sql\"\nurl = \"{}\"\n",
            h.sim.base_url(),
            if format == Format::Xml { "xml" } else { "json" },
            sqlite_url(&dir.join("state.db")),
            sqlite_url(&dir.join("erp.db")),
        ),
    )
    .expect("config");
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_coupa-bridge"));
    c.args(["sync", "pay-payments", "--config"])
        .arg(config)
        .env(
            "COUPA_BRIDGE__COUPA__CLIENT_SECRET",
            coupa_sim::config::DEFAULT_CLIENT_SECRET,
        )
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    c
}

/// A pass that marks every payment exported and dies before it saves its watermark, then a pass
/// that finds nothing new: a status change Coupa Pay makes afterwards still reaches the ERP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pass_dying_before_its_watermark_loses_no_later_status_change() {
    for format in FORMATS {
        let h = harness(format).await;
        let eligible: Vec<i64> = default_eligible(&sim_payments(&h)).into_iter().collect();
        assert!(!eligible.is_empty());
        // Aborts right after the last payment is marked exported.
        let exit = sync_pay(&h, format)
            .env(
                coupa_bridge::failpoint::ENV,
                format!("pay-exported={}", eligible.len()),
            )
            .status()
            .expect("binary runs");
        assert!(!exit.success(), "{format:?}: the failpoint aborts the pass");
        let sim = sim_payments(&h);
        assert!(
            eligible.iter().all(|id| is_exported(&sim[id])),
            "{format:?}"
        );
        let exit = sync_pay(&h, format).status().expect("binary runs");
        assert!(exit.success(), "{format:?}: a pass with nothing new");

        let cancelled = *eligible
            .iter()
            .find(|id| status(&sim[id]) == SETTLES)
            .expect("a completed payment");
        {
            let mut db = h.sim.state.db.lock();
            let now = h.sim.state.now();
            coupa_sim::clerk::set_pay_status(&mut db, cancelled, "cancelled", now).expect("status");
        }
        let exit = sync_pay(&h, format).status().expect("binary runs");
        assert!(exit.success(), "{format:?}");
        let rows = erp_payments(&h).await;
        assert_eq!(
            rows[&cancelled].status, "cancelled",
            "{format:?}: Coupa Pay cancelled payment {cancelled} after its export"
        );
        let history = records(&h, false, cancelled);
        assert_eq!(history.len(), 2, "{format:?}: {history:?}");
    }
}

/// A payment whose only invoice reaches the ERP after the payment: alerted at first; once the
/// invoice export brings the invoice (and the ERP applies the waiting detail), the next Coupa
/// Pay pass resolves the alert's error with a history record saying so, once.
#[tokio::test]
async fn an_alert_is_resolved_once_the_late_invoice_is_applied() {
    for format in FORMATS {
        let h = bare(format).await;
        let before = sim_payments(&h);
        let per_invoice = payments_per_invoice(&before);
        let (pid, late) = before
            .values()
            .filter(|p| {
                !is_exported(p)
                    && status(p) == SETTLES
                    && kind(p) == SUPPLIER
                    && details(p).len() == 1
                    && per_invoice[&detail_invoice(&details(p)[0])] == 1
            })
            .map(|p| (id_of(p), detail_invoice(&details(p)[0])))
            .next()
            .expect("a completed supplier payment of one invoice");
        // The invoice is held back from the invoice export for now.
        h.sim
            .state
            .db
            .lock()
            .invoices
            .get_mut(late)
            .expect("invoice")
            .insert("exported", true);
        export_invoices(&h).await;
        let first = pay_flow(&h, Settings::default()).run().await.expect("pass");
        assert_complete(&first);
        assert_eq!(
            first.rejected.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
            vec![pid],
            "{format:?}"
        );
        let errors = records(&h, true, pid);
        assert_eq!(errors.len(), 1, "{format:?}: {errors:?}");
        assert!(!errors[0].1, "{format:?}: the error is open");

        {
            let mut db = h.sim.state.db.lock();
            let now = h.sim.state.now();
            coupa_sim::clerk::reset_export(&mut db, late, now).expect("reset");
        }
        let invoices = h
            .flow(Monitoring::Runs)
            .run()
            .await
            .expect("invoice export");
        assert_eq!(invoices.posted, 1, "{format:?}");
        assert_eq!(erp_invoices(&h).await[&late].0, "paid", "{format:?}");

        let second = pay_flow(&h, Settings::default()).run().await.expect("pass");
        assert_complete(&second);
        assert_eq!(second.updated, 1, "{format:?}: {second:?}");
        assert!(second.rejected.is_empty(), "{format:?}: {second:?}");
        let errors = records(&h, true, pid);
        assert_eq!(errors.len(), 1, "{format:?}: no new error");
        assert!(errors[0].1, "{format:?}: the error is resolved");
        let history = records(&h, false, pid);
        assert_eq!(history.len(), 1, "{format:?}: {history:?}");
        assert_eq!((history[0].1, history[0].2.as_str()), (false, "Success"));

        let third = pay_flow(&h, Settings::default()).run().await.expect("pass");
        assert_eq!(
            (third.listed, third.posted, third.updated),
            (0, 0, 0),
            "{format:?}"
        );
        assert_eq!(records(&h, false, pid).len(), 1, "{format:?}: once");
    }
}
