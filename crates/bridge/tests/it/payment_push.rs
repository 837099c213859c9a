//! The payment push flow against the simulator, the reference ERP and the state store: ERP
//! payments onto their Coupa invoices by API (JSON and XML) and by CSV files over SFTP, with
//! Coupa failing in the ways it does, and a crash between steps.
//!
//! Every test records payments the way an AP clerk does (`SqlErp::record_payments`), for
//! approved invoices picked from the simulator's own data, runs passes, then reads back what the
//! simulator holds (the invoices' payments and header, integration errors, alerts, files, load
//! records) and what the ERP rows say.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{NaiveDate, NaiveTime};
use coupa_api::client::NewPayment;
use coupa_api::{Format, InvoiceId};
use coupa_bridge::config::{PaymentTransport, SftpConfig};
use coupa_bridge::erp::{ErpPayment, ErpPaymentRecord, NewErpPayment};
use coupa_bridge::flows::payment_push::files::{FileEntry, FileRow, step};
use coupa_bridge::flows::payment_push::{FLOW, PaymentPush, Settings, csv_file};
use coupa_bridge::flows::{FlowError, PassReport};
use coupa_doc::{Object, Value};
use coupa_sim::config::{DEFAULT_SFTP_PASSWORD, DEFAULT_SFTP_USER};
use coupa_sim::csv_loader::{ARCHIVE_DIR, COLUMNS, FILE_NAME_PREFIX, INCOMING_DIR};
use coupa_sim::faults::{FaultKind, FaultRule};
use coupa_sim::{SimConfig, SimHandle};
use rust_decimal::Decimal;
use secrecy::SecretString;

use crate::invoice_export::{Harness, client_config, harness_with};

/// The integration code failures are filed under (the flow's default).
const INTEGRATION_CODE: &str = "ERP-PAYMENTS";
/// How the simulator counts invoice writes, whatever the id.
const INVOICE_PUT: &str = "PUT /api/invoices/{id}";

// ---------------------------------------------------------------------------------------------
// Set-up

async fn api_harness(format: Format, invoices: usize) -> Harness {
    harness_with(
        SimConfig {
            invoices,
            pay_payments: 0,
            ..SimConfig::default()
        },
        |sim| client_config(sim, format),
    )
    .await
}

/// A simulator whose CSV loader looks at the incoming folder every `pickup`.
async fn csv_harness(invoices: usize, pickup: Duration) -> Harness {
    harness_with(
        SimConfig {
            invoices,
            pay_payments: 0,
            csv_pickup: pickup,
            ..SimConfig::default()
        },
        |sim| client_config(sim, Format::Json),
    )
    .await
}

fn api_settings() -> Settings {
    Settings::default()
}

fn csv_settings(sim: &SimHandle, host_key: String) -> Settings {
    Settings {
        transport: PaymentTransport::Csv,
        sftp: SftpConfig {
            host: Some("127.0.0.1".into()),
            port: sim.sftp_addr.port(),
            username: Some(DEFAULT_SFTP_USER.into()),
            password: Some(SecretString::from(DEFAULT_SFTP_PASSWORD.to_owned())),
            host_key: Some(host_key),
            result_timeout_secs: 30,
            ..SftpConfig::default()
        },
        ..Settings::default()
    }
}

fn flow(h: &Harness, settings: Settings) -> PaymentPush {
    PaymentPush::new(
        h.client.clone(),
        Arc::new(h.erp.clone()),
        h.store.clone(),
        settings,
    )
}

async fn pass(h: &Harness, settings: Settings) -> PassReport {
    flow(h, settings).run().await.expect("the pass")
}

// ---------------------------------------------------------------------------------------------
// The simulator's invoices

/// An approved invoice as the simulator holds it.
#[derive(Clone, Debug)]
struct Target {
    id: i64,
    number: String,
    supplier_name: String,
    supplier_number: String,
    currency: String,
    total: Decimal,
    payments: usize,
    paid: bool,
}

fn text(o: &Object, path: &[&str]) -> String {
    let (first, rest) = path.split_first().expect("a path");
    let v = o.get(first).expect("field");
    let v = if rest.is_empty() {
        v
    } else {
        v.pointer(rest).expect("nested field")
    };
    v.as_str().expect("text").to_owned()
}

fn read_target(inv: &Object) -> Target {
    Target {
        id: inv.get("id").and_then(Value::as_i64).expect("id"),
        number: text(inv, &["invoice-number"]),
        supplier_name: text(inv, &["supplier", "name"]),
        supplier_number: text(inv, &["supplier", "number"]),
        currency: text(inv, &["currency", "code"]),
        total: inv
            .get("total-with-taxes")
            .and_then(Value::as_decimal)
            .expect("total-with-taxes"),
        payments: inv
            .get("payments")
            .and_then(Value::as_array)
            .map_or(0, <[Value]>::len),
        paid: inv.get("paid").and_then(Value::as_bool) == Some(true),
    }
}

fn status(inv: &Object) -> &str {
    inv.get("status").and_then(Value::as_str).unwrap_or("")
}

/// Approved, unpaid invoices whose number no other approved invoice carries, by id: a payment
/// names each of them without doubt, by supplier name or number.
fn targets(sim: &SimHandle) -> Vec<Target> {
    let db = sim.state.db.lock();
    let approved: Vec<Target> = db
        .invoices
        .rows()
        .filter(|r| status(r) == "approved")
        .map(read_target)
        .collect();
    let mut per_number: BTreeMap<&str, usize> = BTreeMap::new();
    for t in &approved {
        *per_number.entry(t.number.as_str()).or_default() += 1;
    }
    approved
        .iter()
        .filter(|t| per_number[t.number.as_str()] == 1 && !t.paid)
        .cloned()
        .collect()
}

/// The invoice `id` as the simulator holds it now.
fn target(sim: &SimHandle, id: i64) -> Target {
    read_target(sim.state.db.lock().invoices.get(id).expect("invoice"))
}

/// Two approved invoices with one number and different suppliers: the "Acme Industrial" twins.
fn twin_pair(sim: &SimHandle) -> (Target, Target) {
    let db = sim.state.db.lock();
    let mut per_number: BTreeMap<String, Vec<Target>> = BTreeMap::new();
    for r in db.invoices.rows().filter(|r| status(r) == "approved") {
        let t = read_target(r);
        per_number.entry(t.number.clone()).or_default().push(t);
    }
    per_number
        .into_values()
        .find(|ts| ts.len() == 2 && ts[0].supplier_number != ts[1].supplier_number)
        .map(|mut ts| {
            let b = ts.pop().expect("two");
            let a = ts.pop().expect("two");
            (a, b)
        })
        .expect("the seed has twin invoices")
}

/// A payment as Coupa shows it on an invoice: amount, notes, and the day in UTC.
type CoupaPayment = (Decimal, Option<String>, Option<NaiveDate>);

fn payments_on(sim: &SimHandle, id: i64) -> Vec<CoupaPayment> {
    let db = sim.state.db.lock();
    let inv = db.invoices.get(id).expect("invoice");
    inv.get("payments")
        .and_then(Value::as_array)
        .unwrap_or_default()
        .iter()
        .map(|p| {
            (
                p.pointer(&["amount-paid"])
                    .and_then(Value::as_decimal)
                    .expect("amount-paid"),
                p.pointer(&["notes"])
                    .and_then(Value::as_str)
                    .map(str::to_owned),
                p.pointer(&["payment-date"])
                    .and_then(Value::as_datetime)
                    .map(|d| d.naive_utc().date()),
            )
        })
        .collect()
}

/// How many times the ERP payment `p` is on invoice `id`: same amount, check number, date.
fn times_on(sim: &SimHandle, id: i64, p: &NewErpPayment) -> usize {
    payments_on(sim, id)
        .iter()
        .filter(|(amount, notes, date)| {
            *amount == p.amount
                && notes.as_deref() == p.check_number.as_deref()
                && *date == Some(p.payment_date)
        })
        .count()
}

/// The invoice header's payment fields: paid, payment date (UTC day), payment notes.
fn header(sim: &SimHandle, id: i64) -> (bool, Option<NaiveDate>, Option<String>) {
    let db = sim.state.db.lock();
    let inv = db.invoices.get(id).expect("invoice");
    (
        inv.get("paid").and_then(Value::as_bool) == Some(true),
        inv.get("payment-date")
            .and_then(Value::as_datetime)
            .map(|d| d.naive_utc().date()),
        inv.get("payment-notes")
            .and_then(Value::as_str)
            .map(str::to_owned),
    )
}

fn invoice_puts(sim: &SimHandle) -> u64 {
    sim.state.stats.endpoint(INVOICE_PUT).calls
}

/// A fault on `method` requests to paths starting with `path`: the next `count`, or all.
fn arm(sim: &SimHandle, kind: FaultKind, method: &str, path: &str, count: Option<u64>) {
    sim.state.faults.add(FaultRule {
        kind,
        method: Some(method.into()),
        path: Some(path.into()),
        count,
        rate: None,
        seed: 0,
    });
}

/// The integration errors filed for ERP payment `payment_ref` (its `external-id`).
fn integration_errors(sim: &SimHandle, payment_ref: &str) -> Vec<Object> {
    sim.state
        .db
        .lock()
        .integration_errors
        .rows()
        .filter(|e| e.get("external-id").and_then(Value::as_str) == Some(payment_ref))
        .cloned()
        .collect()
}

fn has_integration(sim: &SimHandle, code: &str) -> bool {
    sim.state
        .db
        .lock()
        .integrations
        .rows()
        .any(|i| i.get("code").and_then(Value::as_str) == Some(code))
}

/// The failed row `payment_ref` got one integration error under [`INTEGRATION_CODE`] saying
/// `reason`, and an alert to the integration's contacts saying it too.
fn assert_alerted(sim: &SimHandle, payment_ref: &str, reason: &str) {
    let errors = integration_errors(sim, payment_ref);
    assert_eq!(errors.len(), 1, "one integration error for {payment_ref}");
    let e = &errors[0];
    assert_eq!(
        e.get("integration")
            .and_then(|i| i.pointer(&["code"]))
            .and_then(Value::as_str),
        Some(INTEGRATION_CODE),
        "{payment_ref}: {e:?}"
    );
    let message = e
        .get("responses")
        .and_then(Value::as_array)
        .and_then(|r| r.first())
        .and_then(|r| r.pointer(&["response-message"]))
        .and_then(Value::as_str);
    assert_eq!(message, Some(reason), "{payment_ref}");
    let db = sim.state.db.lock();
    let alerted = db.alerts.iter().any(|a| {
        a.get("message").and_then(Value::as_str) == Some(reason)
            && a.get("integration")
                .and_then(|i| i.pointer(&["code"]))
                .and_then(Value::as_str)
                == Some(INTEGRATION_CODE)
    });
    assert!(alerted, "an alert for {payment_ref}: {:?}", db.alerts);
}

// ---------------------------------------------------------------------------------------------
// The ERP

fn pay_date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 11, 2).expect("a date")
}

/// A payment of `amount` on invoice `t`, naming its supplier by name and number.
fn pay(t: &Target, payment_ref: &str, amount: Decimal, check: &str) -> NewErpPayment {
    NewErpPayment {
        payment_ref: payment_ref.into(),
        invoice_number: t.number.clone(),
        supplier_name: Some(t.supplier_name.clone()),
        supplier_number: Some(t.supplier_number.clone()),
        amount,
        currency: t.currency.clone(),
        payment_date: pay_date(),
        check_number: Some(check.into()),
        paid_in_full: false,
    }
}

/// `total` divided by `by`, to the cent: a partial payment.
fn part(total: Decimal, by: i64) -> Decimal {
    (total / Decimal::from(by)).round_dp(2)
}

/// One payment for `t[0]` (partial), two for `t[1]` (partial), one paying `t[2]` in full; and
/// the invoice each targets.
fn mixed_payments(t: &[Target]) -> (Vec<NewErpPayment>, [i64; 4]) {
    let (single, twice, full) = (&t[0], &t[1], &t[2]);
    let mut in_full = pay(full, "PAY-4", full.total, "CHK-4");
    in_full.paid_in_full = true;
    let payments = vec![
        pay(single, "PAY-1", part(single.total, 3), "CHK-1"),
        pay(twice, "PAY-2", part(twice.total, 4), "CHK-2"),
        pay(twice, "PAY-3", part(twice.total, 5), "CHK-3"),
        in_full,
    ];
    (payments, [single.id, twice.id, twice.id, full.id])
}

async fn record(h: &Harness, payments: &[NewErpPayment]) -> Vec<i64> {
    h.erp
        .record_payments(payments)
        .await
        .expect("recording ERP payments")
}

async fn erp_rows(h: &Harness) -> BTreeMap<String, ErpPaymentRecord> {
    h.erp
        .payments()
        .await
        .expect("ERP payments")
        .into_iter()
        .map(|r| (r.payment_ref.clone(), r))
        .collect()
}

fn assert_synced(rows: &BTreeMap<String, ErpPaymentRecord>, payment_ref: &str, invoice: i64) {
    let r = &rows[payment_ref];
    assert_eq!(
        (
            r.sync_status.as_str(),
            r.coupa_invoice_id,
            r.sync_error.as_deref()
        ),
        ("synced", Some(invoice), None),
        "{payment_ref}: {r:?}"
    );
    assert!(r.synced_at.is_some(), "{payment_ref}: {r:?}");
}

/// The row failed; its reason.
fn failed<'a>(rows: &'a BTreeMap<String, ErpPaymentRecord>, payment_ref: &str) -> &'a str {
    let r = &rows[payment_ref];
    assert_eq!(r.sync_status, "failed", "{payment_ref}: {r:?}");
    r.sync_error.as_deref().expect("a reason")
}

fn assert_pending(rows: &BTreeMap<String, ErpPaymentRecord>, payment_ref: &str) {
    let r = &rows[payment_ref];
    assert_eq!(
        (r.sync_status.as_str(), r.coupa_invoice_id),
        ("pending", None),
        "{payment_ref}: {r:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// The SFTP server

fn files_in(sim: &SimHandle, dir: &str) -> Vec<String> {
    sim.state
        .files
        .list_files(dir)
        .into_iter()
        .map(|(name, _)| name)
        .collect()
}

fn archived(sim: &SimHandle, name: &str) -> Vec<u8> {
    sim.state
        .files
        .read_file(&format!("{ARCHIVE_DIR}/{name}"))
        .expect("an archived file")
}

/// `payments_YYYYMMDD_HHMMSSZ_.csv`, or `..._<n>.csv` for a further file of the same second.
fn is_payment_file_name(name: &str) -> bool {
    let Some(rest) = name.strip_prefix("payments_") else {
        return false;
    };
    let Some((stamp, tail)) = rest.split_once("Z_") else {
        return false;
    };
    let b = stamp.as_bytes();
    let stamp_ok = b.len() == 15
        && b[8] == b'_'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 8 || c.is_ascii_digit());
    let n = tail.strip_suffix(".csv");
    stamp_ok && n.is_some_and(|n| n.is_empty() || n.bytes().all(|c| c.is_ascii_digit()))
}

/// The load records the simulator's loader made: (file name as dropped, status).
fn load_records(sim: &SimHandle) -> Vec<(String, String)> {
    sim.state
        .db
        .lock()
        .data_file_sources
        .rows()
        .map(|r| {
            let name = text(r, &["file-file-name"]);
            (
                name.strip_prefix(FILE_NAME_PREFIX)
                    .unwrap_or(&name)
                    .to_owned(),
                text(r, &["status"]),
            )
        })
        .collect()
}

/// Checks the bytes of a payment file: UTF-8 without a byte-order mark, CRLF lines, the
/// documented header, `rows` data rows, and every field in double quotes.
fn check_file_shape(bytes: &[u8], rows: usize) {
    assert!(!bytes.starts_with(b"\xEF\xBB\xBF"), "no byte-order mark");
    let text = std::str::from_utf8(bytes).expect("UTF-8");
    assert!(text.ends_with("\r\n"), "the last line ends in CRLF");
    assert_eq!(
        text.matches('\n').count(),
        text.matches("\r\n").count(),
        "every line ends in CRLF"
    );
    let lines: Vec<&str> = text.split_terminator("\r\n").collect();
    let header: Vec<String> = COLUMNS.iter().map(|c| format!("\"{c}\"")).collect();
    assert_eq!(lines[0], header.join(","), "the documented header");
    assert_eq!(lines.len(), rows + 1, "header and {rows} rows");
    for line in &lines {
        assert!(
            line.len() >= 2 && line.starts_with('"') && line.ends_with('"'),
            "{line}"
        );
        let cells: Vec<&str> = line[1..line.len() - 1].split("\",\"").collect();
        assert_eq!(cells.len(), COLUMNS.len(), "every field quoted: {line}");
        assert!(
            cells.iter().all(|c| !c.contains('"')),
            "no bare quote: {line}"
        );
    }
}

/// Waits (up to 20 s) until `found` gives something.
async fn wait_for<T>(what: &str, mut found: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = found() {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn journal_step(h: &Harness, name: &str) -> Option<String> {
    h.store
        .journal_get(FLOW, &format!("file:{name}"))
        .await
        .expect("journal")
        .map(|e| e.step)
}

async fn journal_file(h: &Harness, entry: &FileEntry, step: &str) {
    h.store
        .journal_put(
            FLOW,
            &format!("file:{}", entry.name),
            step,
            &serde_json::to_string(entry).expect("json"),
            None,
        )
        .await
        .expect("journal");
}

/// The journal's record of a file holding `payments` (ERP ids `ids`) for `invoices`.
fn file_entry(name: &str, payments: &[NewErpPayment], ids: &[i64], invoices: &[i64]) -> FileEntry {
    FileEntry {
        name: name.into(),
        rows: payments
            .iter()
            .zip(ids)
            .zip(invoices)
            .map(|((p, id), invoice)| FileRow {
                payment_id: *id,
                payment_ref: p.payment_ref.clone(),
                invoice_id: *invoice,
            })
            .collect(),
    }
}

// ---------------------------------------------------------------------------------------------
// API transport

/// Single payments, two payments for one invoice, a partial and a paid-in-full payment go onto
/// their invoices once each, in one PUT per invoice, in JSON and XML; the paid-in-full one marks
/// the header paid; the ERP rows are synced with their invoice; a second pass with nothing to do
/// makes no Coupa call.
#[tokio::test]
async fn api_payments_land_once_with_one_put_per_invoice_in_json_and_xml() {
    for format in [Format::Json, Format::Xml] {
        let h = api_harness(format, 120).await;
        let t = targets(&h.sim);
        let (single, twice, full) = (&t[0], &t[1], &t[2]);
        let (payments, invoice_of) = mixed_payments(&t);
        record(&h, &payments).await;
        let puts = invoice_puts(&h.sim);

        let report = pass(&h, api_settings()).await;

        assert_ne!(report.run, 0, "{format:?}");
        assert!(report.rejected.is_empty(), "{:?}", report.rejected);
        assert!(report.transient.is_empty(), "{:?}", report.transient);
        assert_eq!(
            (report.listed, report.exported, report.posted),
            (4, 4, 4),
            "{format:?}"
        );
        assert_eq!(
            invoice_puts(&h.sim) - puts,
            3,
            "{format:?}: one PUT per invoice"
        );
        let rows = erp_rows(&h).await;
        for (p, id) in payments.iter().zip(invoice_of) {
            assert_eq!(times_on(&h.sim, id, p), 1, "{format:?}: {p:?} once");
            assert_synced(&rows, &p.payment_ref, id);
        }
        for (t, added) in [(single, 1), (twice, 2), (full, 1)] {
            assert_eq!(
                target(&h.sim, t.id).payments,
                t.payments + added,
                "{format:?}: invoice {} got exactly its payments",
                t.id
            );
        }
        assert!(
            !header(&h.sim, single.id).0,
            "a partial payment pays nothing in full"
        );
        assert!(!header(&h.sim, twice.id).0, "nor do two");
        let (paid, date, notes) = header(&h.sim, full.id);
        assert!(paid, "{format:?}: paid in full");
        assert_eq!(date, Some(pay_date()), "{format:?}");
        let notes = notes.expect("payment notes");
        assert!(notes.contains("PAY-4"), "{format:?}: {notes}");

        // Nothing left: no run, no call.
        let calls = h.sim.state.stats.total_calls();
        let again = pass(&h, api_settings()).await;
        assert_eq!(again.run, 0, "{format:?}");
        assert_eq!(
            h.sim.state.stats.total_calls(),
            calls,
            "{format:?}: no call"
        );
        assert_eq!(erp_rows(&h).await, rows, "{format:?}: the ERP unchanged");
    }
}

/// A payment finds its invoice by supplier name (trimmed, any ASCII case) and by supplier
/// number (which wins over a wrong name); an unknown invoice number, a number two approved
/// invoices of same-named suppliers carry, and a currency mismatch fail with why, each with an
/// integration error and an alert under ERP-PAYMENTS (an integration the flow creates), and
/// nothing is added to any invoice for them.
///
/// The seed's "Acme Industrial" twins carry different supplier names, so a name alone is not
/// ambiguous there: the test renames the second twin's supplier on its invoice to the first's,
/// as two Coupa suppliers with one name would look.
#[tokio::test]
async fn api_matching_by_name_and_number_and_failures_with_alerts() {
    let h = api_harness(Format::Json, 200).await;
    let t = targets(&h.sim);
    let (by_name, by_number, other_currency) = (&t[0], &t[1], &t[2]);
    let (twin_a, twin_b) = twin_pair(&h.sim);
    {
        let mut db = h.sim.state.db.lock();
        let inv = db.invoices.get_mut(twin_b.id).expect("twin");
        inv.get_mut("supplier")
            .and_then(Value::as_object_mut)
            .expect("supplier")
            .insert("name", twin_a.supplier_name.as_str());
    }
    assert!(!has_integration(&h.sim, INTEGRATION_CODE));

    let mut name_only = pay(by_name, "PAY-NAME", part(by_name.total, 2), "CHK-N");
    name_only.supplier_number = None;
    name_only.supplier_name = Some(format!(
        "  {}  ",
        by_name.supplier_name.to_ascii_uppercase()
    ));
    let mut number_wins = pay(by_number, "PAY-NUMBER", part(by_number.total, 2), "CHK-U");
    number_wins.supplier_name = Some("Not The Supplier's Name".into());
    let mut unknown = pay(by_name, "PAY-UNKNOWN", Decimal::new(1000, 2), "CHK-X");
    unknown.invoice_number = "NO-SUCH-INVOICE-77".into();
    unknown.supplier_number = None;
    let mut ambiguous = pay(&twin_a, "PAY-AMBIGUOUS", Decimal::new(1000, 2), "CHK-A");
    ambiguous.supplier_number = None;
    let mut currency = pay(
        other_currency,
        "PAY-CURRENCY",
        part(other_currency.total, 2),
        "CHK-C",
    );
    currency.currency = if other_currency.currency == "JPY" {
        "CHF".into()
    } else {
        "JPY".into()
    };
    record(
        &h,
        &[
            name_only.clone(),
            number_wins.clone(),
            unknown.clone(),
            ambiguous.clone(),
            currency.clone(),
        ],
    )
    .await;

    let report = pass(&h, api_settings()).await;

    let rows = erp_rows(&h).await;
    assert_synced(&rows, "PAY-NAME", by_name.id);
    assert_synced(&rows, "PAY-NUMBER", by_number.id);
    assert_eq!(times_on(&h.sim, by_name.id, &name_only), 1);
    assert_eq!(times_on(&h.sim, by_number.id, &number_wins), 1);

    let why = failed(&rows, "PAY-UNKNOWN");
    assert!(
        why.starts_with(&format!(
            "no approved invoice 'NO-SUCH-INVOICE-77' for supplier '{}'",
            by_name.supplier_name
        )),
        "{why}"
    );
    let why = failed(&rows, "PAY-AMBIGUOUS");
    assert!(why.starts_with("2 approved invoices match"), "{why}");
    assert!(
        why.contains(&twin_a.id.to_string()) && why.contains(&twin_b.id.to_string()),
        "names both invoices: {why}"
    );
    let why = failed(&rows, "PAY-CURRENCY");
    assert!(
        why.starts_with(&format!(
            "payment is in {} but invoice '{}'",
            currency.currency, other_currency.number
        )),
        "{why}"
    );
    for r in ["PAY-UNKNOWN", "PAY-AMBIGUOUS", "PAY-CURRENCY"] {
        assert_alerted(&h.sim, r, failed(&rows, r));
    }
    for r in ["PAY-NAME", "PAY-NUMBER"] {
        assert!(integration_errors(&h.sim, r).is_empty(), "{r}");
    }
    assert!(
        has_integration(&h.sim, INTEGRATION_CODE),
        "created by the flow"
    );
    for t in [&twin_a, &twin_b, other_currency] {
        assert_eq!(
            target(&h.sim, t.id).payments,
            t.payments,
            "nothing added to invoice {}",
            t.id
        );
    }
    assert_eq!(report.rejected.len(), 3, "{:?}", report.rejected);
    assert_eq!(report.exported, 2);
}

/// A payment Coupa already has (same amount, day and check number, added beforehand through the
/// API) is synced without being sent again: no PUT, nothing posted, still one such payment.
#[tokio::test]
async fn api_a_payment_coupa_has_already_is_synced_without_a_write() {
    let h = api_harness(Format::Json, 80).await;
    let t = targets(&h.sim);
    let (known, fresh) = (&t[0], &t[1]);
    let there = pay(known, "PAY-THERE", part(known.total, 2), "CHK-THERE");
    h.client
        .invoices()
        .add_payments(
            InvoiceId(known.id),
            &[NewPayment {
                amount_paid: there.amount,
                payment_date: there
                    .payment_date
                    .and_time(NaiveTime::MIN)
                    .and_utc()
                    .fixed_offset(),
                notes: there.check_number.clone(),
            }],
            None,
        )
        .await
        .expect("adding the payment beforehand");
    assert_eq!(times_on(&h.sim, known.id, &there), 1);
    let new = pay(fresh, "PAY-NEW", part(fresh.total, 2), "CHK-NEW");
    record(&h, &[there.clone(), new.clone()]).await;
    let puts = invoice_puts(&h.sim);

    let report = pass(&h, api_settings()).await;

    let rows = erp_rows(&h).await;
    assert_synced(&rows, "PAY-THERE", known.id);
    assert_synced(&rows, "PAY-NEW", fresh.id);
    assert_eq!(times_on(&h.sim, known.id, &there), 1, "not sent again");
    assert_eq!(target(&h.sim, known.id).payments, known.payments + 1);
    assert_eq!(times_on(&h.sim, fresh.id, &new), 1);
    assert_eq!(
        invoice_puts(&h.sim) - puts,
        1,
        "only the new payment's invoice"
    );
    assert_eq!(report.posted, 1, "only the new payment was added");
    assert_eq!(report.exported, 2);
}

/// Coupa answering 400 to an invoice's PUT fails its payment with Coupa's error text (and an
/// alert); the other invoice's payment goes through.
#[tokio::test]
async fn api_a_400_fails_the_row_with_coupas_text() {
    let h = api_harness(Format::Json, 80).await;
    let t = targets(&h.sim);
    let (refused, fine) = (&t[0], &t[1]);
    let bad = pay(refused, "PAY-BAD", part(refused.total, 2), "CHK-BAD");
    let good = pay(fine, "PAY-GOOD", part(fine.total, 2), "CHK-GOOD");
    record(&h, &[bad.clone(), good.clone()]).await;
    arm(
        &h.sim,
        FaultKind::Status { status: 400 },
        "PUT",
        &format!("/api/invoices/{}", refused.id),
        Some(1),
    );

    let report = pass(&h, api_settings()).await;

    assert_eq!(h.sim.state.stats.faults(), 1, "the fault fired");
    let rows = erp_rows(&h).await;
    let why = failed(&rows, "PAY-BAD");
    assert!(why.contains("Bad Request (injected fault)"), "{why}");
    assert_eq!(rows["PAY-BAD"].coupa_invoice_id, Some(refused.id));
    assert_alerted(&h.sim, "PAY-BAD", why);
    assert_eq!(target(&h.sim, refused.id).payments, refused.payments);
    assert_synced(&rows, "PAY-GOOD", fine.id);
    assert_eq!(times_on(&h.sim, fine.id, &good), 1);
    assert!(report.transient.is_empty(), "{:?}", report.transient);
}

/// While every invoice PUT answers 503 the payments stay pending (reported transient), nothing
/// lands; once Coupa is back the next pass puts each payment on its invoice once.
#[tokio::test]
async fn api_an_outage_leaves_rows_pending_until_coupa_is_back() {
    let h = api_harness(Format::Json, 80).await;
    let t = targets(&h.sim);
    let payments = vec![
        pay(&t[0], "PAY-1", part(t[0].total, 2), "CHK-1"),
        pay(&t[1], "PAY-2", part(t[1].total, 2), "CHK-2"),
        pay(&t[1], "PAY-3", part(t[1].total, 3), "CHK-3"),
    ];
    let invoice_of = [t[0].id, t[1].id, t[1].id];
    let ids = record(&h, &payments).await;
    arm(
        &h.sim,
        FaultKind::Status { status: 503 },
        "PUT",
        "/api/invoices",
        None,
    );

    let report = pass(&h, api_settings()).await;

    let transient: BTreeSet<i64> = report.transient.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        transient,
        ids.iter().copied().collect(),
        "{:?}",
        report.transient
    );
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    let rows = erp_rows(&h).await;
    for p in &payments {
        assert_pending(&rows, &p.payment_ref);
    }
    for x in &t[..2] {
        assert_eq!(target(&h.sim, x.id).payments, x.payments, "nothing landed");
    }

    h.sim.state.faults.clear();
    let report = pass(&h, api_settings()).await;

    assert!(report.transient.is_empty(), "{:?}", report.transient);
    let rows = erp_rows(&h).await;
    for (p, id) in payments.iter().zip(invoice_of) {
        assert_synced(&rows, &p.payment_ref, id);
        assert_eq!(times_on(&h.sim, id, p), 1, "{p:?} once");
    }
    assert_eq!(target(&h.sim, t[1].id).payments, t[1].payments + 2);
}

/// Coupa takes a PUT but the answer is lost (connection dropped): the flow reads the invoice
/// again instead of re-sending, so the payment is on the invoice once and the row is synced in
/// the same pass.
#[tokio::test]
async fn api_a_lost_answer_is_checked_not_resent() {
    let h = api_harness(Format::Json, 80).await;
    let t = targets(&h.sim);
    let (lost, fine) = (&t[0], &t[1]);
    let p1 = pay(lost, "PAY-LOST", part(lost.total, 2), "CHK-LOST");
    let p2 = pay(fine, "PAY-FINE", part(fine.total, 2), "CHK-FINE");
    record(&h, &[p1.clone(), p2.clone()]).await;
    arm(
        &h.sim,
        FaultKind::Drop,
        "PUT",
        &format!("/api/invoices/{}", lost.id),
        Some(1),
    );

    let report = pass(&h, api_settings()).await;

    assert_eq!(h.sim.state.stats.faults(), 1, "the answer was dropped");
    assert!(report.transient.is_empty(), "{:?}", report.transient);
    let rows = erp_rows(&h).await;
    assert_synced(&rows, "PAY-LOST", lost.id);
    assert_synced(&rows, "PAY-FINE", fine.id);
    assert_eq!(times_on(&h.sim, lost.id, &p1), 1, "written once");
    assert_eq!(target(&h.sim, lost.id).payments, lost.payments + 1);
    assert_eq!(times_on(&h.sim, fine.id, &p2), 1);

    // A further pass has nothing to do and sends nothing again.
    assert_eq!(pass(&h, api_settings()).await.run, 0);
    assert_eq!(times_on(&h.sim, lost.id, &p1), 1);
}

/// A row a person typed wrong (amount 'abc') fails alone with a reason naming the column; the
/// good rows of the same pass are synced.
#[tokio::test]
async fn api_a_malformed_row_fails_alone() {
    let h = api_harness(Format::Json, 80).await;
    let t = targets(&h.sim);
    let before = pay(&t[0], "PAY-BEFORE", part(t[0].total, 2), "CHK-1");
    record(&h, std::slice::from_ref(&before)).await;
    sqlx::query(
        "INSERT INTO erp_payments (payment_ref, invoice_number, supplier_name, supplier_number, \
         amount, currency, payment_date, check_number, sync_status) \
         VALUES ($1, $2, $3, $4, 'abc', $5, $6, 'CHK-2', 'pending')",
    )
    .bind("PAY-MALFORMED")
    .bind(t[1].number.as_str())
    .bind(t[1].supplier_name.as_str())
    .bind(t[1].supplier_number.as_str())
    .bind(t[1].currency.as_str())
    .bind(pay_date().format("%Y-%m-%d").to_string())
    .execute(h.erp.db().pool())
    .await
    .expect("a malformed row");
    let after = pay(&t[2], "PAY-AFTER", part(t[2].total, 2), "CHK-3");
    record(&h, std::slice::from_ref(&after)).await;

    let report = pass(&h, api_settings()).await;

    let rows = erp_rows(&h).await;
    let why = failed(&rows, "PAY-MALFORMED");
    assert!(why.contains("amount") && why.contains("'abc'"), "{why}");
    assert_alerted(&h.sim, "PAY-MALFORMED", why);
    assert_eq!(target(&h.sim, t[1].id).payments, t[1].payments);
    assert_synced(&rows, "PAY-BEFORE", t[0].id);
    assert_synced(&rows, "PAY-AFTER", t[2].id);
    assert_eq!(times_on(&h.sim, t[0].id, &before), 1);
    assert_eq!(times_on(&h.sim, t[2].id, &after), 1);
    assert_eq!((report.listed, report.exported), (3, 2));
}

// ---------------------------------------------------------------------------------------------
// CSV transport

/// Payments for several invoices (one paid in full, two on one invoice) go out in one file
/// named as Coupa asks, which the loader archived and recorded; each payment is on its invoice
/// once and the paid-in-full mark is set; the ERP rows are synced. The file has no byte-order
/// mark, the documented header and every field quoted.
#[tokio::test]
async fn csv_payments_go_out_in_one_file_and_land_once() {
    let h = csv_harness(120, Duration::from_millis(100)).await;
    let settings = csv_settings(&h.sim, h.sim.sftp_host_key.clone());
    let t = targets(&h.sim);
    let (single, twice, full) = (&t[0], &t[1], &t[2]);
    let (payments, invoice_of) = mixed_payments(&t);
    record(&h, &payments).await;

    let report = pass(&h, settings.clone()).await;

    assert!(report.transient.is_empty(), "{:?}", report.transient);
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    let files = files_in(&h.sim, ARCHIVE_DIR);
    assert_eq!(files.len(), 1, "{files:?}");
    let name = &files[0];
    assert!(
        is_payment_file_name(name) && name.ends_with("Z_.csv"),
        "{name}"
    );
    assert!(files_in(&h.sim, INCOMING_DIR).is_empty());
    assert_eq!(
        load_records(&h.sim),
        vec![(name.clone(), "done".to_owned())]
    );
    check_file_shape(&archived(&h.sim, name), payments.len());

    let rows = erp_rows(&h).await;
    for (p, id) in payments.iter().zip(invoice_of) {
        assert_eq!(times_on(&h.sim, id, p), 1, "{p:?} once");
        assert_synced(&rows, &p.payment_ref, id);
    }
    assert_eq!(target(&h.sim, twice.id).payments, twice.payments + 2);
    let (paid, date, notes) = header(&h.sim, full.id);
    assert!(paid, "paid in full");
    assert_eq!(date, Some(pay_date()));
    assert!(notes.expect("payment notes").contains("PAY-4"));
    assert!(!header(&h.sim, single.id).0);

    let again = pass(&h, settings).await;
    assert_eq!(again.run, 0);
    assert_eq!(files_in(&h.sim, ARCHIVE_DIR).len(), 1, "no other file");
}

/// 5,200 payments in one pass go out in two files (Coupa takes at most 5,000 rows a file); all
/// rows are synced and each payment is on its invoice once.
#[tokio::test]
async fn csv_more_than_5000_payments_go_out_in_two_files() {
    const PAYMENTS: usize = 5_200;
    let h = csv_harness(2_000, Duration::from_millis(100)).await;
    let settings = csv_settings(&h.sim, h.sim.sftp_host_key.clone());
    let t = targets(&h.sim);
    assert!(t.len() > 500, "{} invoices to pay", t.len());
    let payments: Vec<NewErpPayment> = (0..PAYMENTS)
        .map(|i| {
            let n = i64::try_from(i).expect("small");
            pay(
                &t[i % t.len()],
                &format!("PAY-{i}"),
                Decimal::new(100 + n, 2),
                &format!("CHK-{i}"),
            )
        })
        .collect();
    record(&h, &payments).await;

    let report = pass(&h, settings).await;

    assert!(report.transient.is_empty(), "{:?}", report.transient);
    assert!(report.rejected.is_empty(), "{:?}", report.rejected);
    let files = files_in(&h.sim, ARCHIVE_DIR);
    assert_eq!(files.len(), 2, "{files:?}");
    assert!(files.iter().all(|f| is_payment_file_name(f)), "{files:?}");
    let records = load_records(&h.sim);
    assert_eq!(records.len(), 2, "{records:?}");
    assert!(records.iter().all(|(_, s)| s == "done"), "{records:?}");
    let sizes: Vec<usize> = files
        .iter()
        .map(|f| {
            String::from_utf8(archived(&h.sim, f))
                .expect("utf-8")
                .split_terminator("\r\n")
                .count()
                - 1
        })
        .collect();
    assert_eq!(sizes.iter().sum::<usize>(), PAYMENTS, "{sizes:?}");
    assert!(sizes.iter().all(|s| *s <= 5_000), "{sizes:?}");

    assert_eq!(
        h.erp.payment_counts().await.expect("counts"),
        (0, PAYMENTS as u64, 0)
    );
    let rows = erp_rows(&h).await;
    let mut added: BTreeMap<i64, usize> = BTreeMap::new();
    for (i, p) in payments.iter().enumerate() {
        let id = t[i % t.len()].id;
        *added.entry(id).or_default() += 1;
        assert_synced(&rows, &p.payment_ref, id);
    }
    for x in &t {
        let on = payments_on(&h.sim, x.id);
        assert_eq!(
            on.len(),
            x.payments + added.get(&x.id).copied().unwrap_or(0),
            "invoice {}",
            x.id
        );
    }
    for (i, p) in payments.iter().enumerate() {
        assert_eq!(times_on(&h.sim, t[i % t.len()].id, p), 1, "{p:?} once");
    }
}

/// A row Coupa's loader refuses though the flow's own checks passed: the invoice is voided after
/// the flow matched it and uploaded the file, before the loader picks the file up (the loader
/// runs only when the test says). The row fails with the loader's message and row number; the
/// other rows of the file are synced.
#[tokio::test]
async fn csv_a_row_the_loader_refuses_fails_with_its_message() {
    let h = csv_harness(120, Duration::from_secs(3_600)).await;
    let settings = csv_settings(&h.sim, h.sim.sftp_host_key.clone());
    let t = targets(&h.sim);
    let payments = vec![
        pay(&t[0], "PAY-1", part(t[0].total, 2), "CHK-1"),
        pay(&t[1], "PAY-VOIDED", part(t[1].total, 2), "CHK-VOIDED"),
        pay(&t[2], "PAY-3", part(t[2].total, 2), "CHK-3"),
    ];
    record(&h, &payments).await;
    let voided = t[1].id;

    let flow = flow(&h, settings);
    let clerk = async {
        let name = wait_for("the uploaded file", || {
            files_in(&h.sim, INCOMING_DIR)
                .into_iter()
                .find(|n| coupa_sim::csv_loader::is_pickup_candidate(n))
        })
        .await;
        let bytes = h
            .sim
            .state
            .files
            .read_file(&format!("{INCOMING_DIR}/{name}"))
            .expect("the file");
        let text = String::from_utf8(bytes).expect("utf-8");
        let row = text
            .split_terminator("\r\n")
            .position(|l| l.contains("\"CHK-VOIDED\""))
            .expect("the row")
            + 1;
        {
            let mut db = h.sim.state.db.lock();
            let now = h.sim.state.now();
            coupa_sim::clerk::set_invoice_status(&mut db, voided, "voided", now).expect("void");
        }
        coupa_sim::csv_loader::pickup_now(&h.sim.state);
        (name, row)
    };
    let (report, (name, row)) = tokio::join!(flow.run(), clerk);
    let report = report.expect("the pass");

    let rows = erp_rows(&h).await;
    let why = failed(&rows, "PAY-VOIDED");
    assert!(
        why.starts_with(&format!("Coupa's loader refused row {row} of {name}: ")),
        "{why}"
    );
    assert!(why.contains("No approved invoice"), "{why}");
    assert_eq!(rows["PAY-VOIDED"].coupa_invoice_id, Some(voided));
    assert_alerted(&h.sim, "PAY-VOIDED", why);
    assert_eq!(target(&h.sim, voided).payments, t[1].payments);
    assert_synced(&rows, "PAY-1", t[0].id);
    assert_synced(&rows, "PAY-3", t[2].id);
    assert_eq!(times_on(&h.sim, t[0].id, &payments[0]), 1);
    assert_eq!(times_on(&h.sim, t[2].id, &payments[2]), 1);
    assert!(report.transient.is_empty(), "{:?}", report.transient);
}

/// An SFTP server offering another host key than the pinned one ends the pass with an SFTP
/// error naming the mismatch; nothing is uploaded and the rows stay pending. With the right key
/// the next pass sends them, once.
#[tokio::test]
async fn csv_a_wrong_host_key_stops_the_pass_and_uploads_nothing() {
    let h = csv_harness(80, Duration::from_millis(100)).await;
    let wrong = coupa_sim::sftp::openssh_line(coupa_sim::sftp::host_key_for_seed(999).public_key());
    assert_ne!(wrong, h.sim.sftp_host_key);
    let t = targets(&h.sim);
    let payments = vec![
        pay(&t[0], "PAY-1", part(t[0].total, 2), "CHK-1"),
        pay(&t[1], "PAY-2", part(t[1].total, 2), "CHK-2"),
    ];
    record(&h, &payments).await;

    let result = flow(&h, csv_settings(&h.sim, wrong)).run().await;

    match result {
        Err(FlowError::Sftp(msg)) => {
            assert!(
                msg.contains("offered host key") && msg.contains("not the pinned"),
                "{msg}"
            );
        }
        other => panic!("expected an SFTP error, got {other:?}"),
    }
    assert!(files_in(&h.sim, INCOMING_DIR).is_empty());
    assert!(files_in(&h.sim, ARCHIVE_DIR).is_empty());
    assert!(load_records(&h.sim).is_empty());
    let rows = erp_rows(&h).await;
    for p in &payments {
        assert_pending(&rows, &p.payment_ref);
    }

    let report = pass(&h, csv_settings(&h.sim, h.sim.sftp_host_key.clone())).await;

    assert!(report.transient.is_empty(), "{:?}", report.transient);
    assert_eq!(files_in(&h.sim, ARCHIVE_DIR).len(), 1);
    let rows = erp_rows(&h).await;
    for (p, x) in payments.iter().zip(&t) {
        assert_synced(&rows, &p.payment_ref, x.id);
        assert_eq!(times_on(&h.sim, x.id, p), 1, "{p:?} once");
    }
}

/// A crash left a file journaled `prepared` that never reached the server: the next pass
/// abandons it and sends its payments in a new file, once.
#[tokio::test]
async fn csv_a_prepared_file_that_never_arrived_is_abandoned_and_resent_once() {
    let h = csv_harness(80, Duration::from_millis(100)).await;
    let settings = csv_settings(&h.sim, h.sim.sftp_host_key.clone());
    let t = targets(&h.sim);
    let payments = vec![
        pay(&t[0], "PAY-1", part(t[0].total, 2), "CHK-1"),
        pay(&t[1], "PAY-2", part(t[1].total, 2), "CHK-2"),
    ];
    let ids = record(&h, &payments).await;
    let lost = file_entry(
        "payments_20260101_000000Z_.csv",
        &payments,
        &ids,
        &[t[0].id, t[1].id],
    );
    journal_file(&h, &lost, step::PREPARED).await;

    let report = pass(&h, settings).await;

    assert!(report.transient.is_empty(), "{:?}", report.transient);
    assert_eq!(
        journal_step(&h, &lost.name).await.as_deref(),
        Some(step::ABANDONED)
    );
    let files = files_in(&h.sim, ARCHIVE_DIR);
    assert_eq!(files.len(), 1, "{files:?}");
    assert_ne!(files[0], lost.name, "a new file");
    let rows = erp_rows(&h).await;
    for (p, x) in payments.iter().zip(&t) {
        assert_synced(&rows, &p.payment_ref, x.id);
        assert_eq!(times_on(&h.sim, x.id, p), 1, "{p:?} once");
    }
}

/// The file the flow would have written for `payments` (ERP ids `ids`) on `invoices`.
fn payment_file(payments: &[NewErpPayment], ids: &[i64], invoices: &[i64]) -> Vec<u8> {
    let rows = payments
        .iter()
        .zip(ids)
        .zip(invoices)
        .map(|((p, id), invoice)| csv_file::Row {
            payment: ErpPayment {
                id: *id,
                payment_ref: p.payment_ref.clone(),
                invoice_number: p.invoice_number.clone(),
                supplier_name: p.supplier_name.clone(),
                supplier_number: p.supplier_number.clone(),
                amount: p.amount,
                currency: p.currency.clone(),
                payment_date: p.payment_date,
                check_number: p.check_number.clone(),
                paid_in_full: p.paid_in_full,
            },
            invoice_id: *invoice,
            add: true,
            paid_note: None,
        })
        .collect();
    let mut files = csv_file::files(rows);
    assert_eq!(files.len(), 1);
    files.pop().expect("one file").bytes
}

/// A crash after the upload but before the journal said so: the file reached Coupa (and was
/// loaded) while the journal still says `prepared`. The next pass finds it arrived, settles its
/// rows from the loader's record, and sends none of its payments again.
#[tokio::test]
async fn csv_a_prepared_file_that_did_arrive_is_not_sent_again() {
    let h = csv_harness(80, Duration::from_secs(3_600)).await;
    let settings = csv_settings(&h.sim, h.sim.sftp_host_key.clone());
    let t = targets(&h.sim);
    let payments = vec![
        pay(&t[0], "PAY-1", part(t[0].total, 2), "CHK-1"),
        pay(&t[1], "PAY-2", part(t[1].total, 2), "CHK-2"),
    ];
    let invoices = [t[0].id, t[1].id];
    let ids = record(&h, &payments).await;
    let entry = file_entry("payments_20260101_000000Z_.csv", &payments, &ids, &invoices);
    journal_file(&h, &entry, step::PREPARED).await;
    h.sim
        .state
        .files
        .write_file(
            &format!("{INCOMING_DIR}/{}", entry.name),
            payment_file(&payments, &ids, &invoices),
        )
        .expect("the upload");
    coupa_sim::csv_loader::pickup_now(&h.sim.state);
    for (p, id) in payments.iter().zip(invoices) {
        assert_eq!(times_on(&h.sim, id, p), 1, "the crashed upload was loaded");
    }

    let report = pass(&h, settings).await;

    assert!(report.transient.is_empty(), "{:?}", report.transient);
    assert_eq!(
        journal_step(&h, &entry.name).await.as_deref(),
        Some(step::SETTLED)
    );
    assert_eq!(
        files_in(&h.sim, ARCHIVE_DIR),
        vec![entry.name.clone()],
        "no new file"
    );
    assert_eq!(load_records(&h.sim).len(), 1);
    let rows = erp_rows(&h).await;
    for (p, id) in payments.iter().zip(invoices) {
        assert_synced(&rows, &p.payment_ref, id);
        assert_eq!(times_on(&h.sim, id, p), 1, "{p:?} once");
    }
}

/// A file an earlier pass uploaded, which Coupa's loader answers while this pass waits: its rows
/// are settled by this pass, and the pass does not also report them as left for the next one.
#[tokio::test]
async fn csv_a_file_answered_during_the_pass_is_not_reported_transient() {
    let h = csv_harness(80, Duration::from_secs(3_600)).await;
    let settings = csv_settings(&h.sim, h.sim.sftp_host_key.clone());
    let t = targets(&h.sim);
    let payments = vec![pay(&t[0], "PAY-1", part(t[0].total, 2), "CHK-1")];
    let invoices = [t[0].id];
    let ids = record(&h, &payments).await;
    let entry = file_entry("payments_20260101_000000Z_.csv", &payments, &ids, &invoices);
    h.sim
        .state
        .files
        .write_file(
            &format!("{INCOMING_DIR}/{}", entry.name),
            payment_file(&payments, &ids, &invoices),
        )
        .expect("the upload");
    journal_file(&h, &entry, step::UPLOADED).await;
    // A further payment for this pass to send, so it runs its own file through too.
    let more = pay(&t[1], "PAY-2", part(t[1].total, 2), "CHK-2");
    record(&h, std::slice::from_ref(&more)).await;

    let flow = flow(&h, settings);
    let loader = async {
        // Once this pass's own file is in, the loader takes both.
        wait_for("this pass's file", || {
            files_in(&h.sim, INCOMING_DIR)
                .into_iter()
                .find(|n| *n != entry.name && coupa_sim::csv_loader::is_pickup_candidate(n))
        })
        .await;
        coupa_sim::csv_loader::pickup_now(&h.sim.state);
    };
    let (report, ()) = tokio::join!(flow.run(), loader);
    let report = report.expect("the pass");

    let rows = erp_rows(&h).await;
    assert_synced(&rows, "PAY-1", t[0].id);
    assert_synced(&rows, "PAY-2", t[1].id);
    assert_eq!(times_on(&h.sim, t[0].id, &payments[0]), 1);
    assert_eq!(times_on(&h.sim, t[1].id, &more), 1);
    assert_eq!(
        journal_step(&h, &entry.name).await.as_deref(),
        Some(step::SETTLED)
    );
    assert_eq!(report.exported, 2);
    assert!(
        report.transient.is_empty(),
        "settled in this pass, yet reported transient: {:?}",
        report.transient
    );
}
