//! The exactly-once invariants, checked on the final state of the simulator, the ERP and the
//! state store. Each check is a pure function over snapshots, so the crash tests and the chaos
//! harness share them and they are tested on hand-made states.
//!
//! - Invoices: every eligible invoice ends exported in Coupa, and is in the ERP exactly once or
//!   has its rejection recorded; nothing is exported without its effect ("acknowledged before
//!   the effect"); no ERP invoice without its Coupa invoice; one unresolved record each.
//! - ERP payments: synced (on their Coupa invoice exactly once) or failed with a reason, none
//!   pending; nothing on Coupa that no synced payment accounts for; no payment in two files.
//! - Coupa Pay: every eligible payment exported and booked once with Coupa's latest status, one
//!   application per detail, one unresolved record; the ERP holds only what was exported.
//! - Coupa integration runs: none left pending or running.
//! - State-store runs: no two runs of one flow overlapped in time (no duplicate work).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, Utc};
use coupa_bridge::erp::sql::SqlErp;
use coupa_bridge::erp::{
    ErpError, ErpInvoiceRecord, ErpPayPaymentRecord, ErpPaymentApplicationRecord, ErpPaymentRecord,
};
use coupa_bridge::store::RunRecord;
use coupa_doc::{Object, Value};
use rust_decimal::Decimal;
use serde::Serialize;

/// Coupa invoice statuses the invoice export takes (the default `invoices.statuses`).
pub const INVOICE_STATUSES: [&str; 2] = ["approved", "voided"];
/// Coupa Pay statuses the Coupa Pay export takes (the default `pay_payments.statuses`).
pub const PAY_STATUSES: [&str; 2] = ["completed_successfully", "completed_with_errors"];
/// The integrations the flows file their records and runs under (the defaults).
pub const INVOICES_INTEGRATION: &str = "ERP-INVOICES";
pub const PAYMENTS_INTEGRATION: &str = "ERP-PAYMENTS";
pub const PAY_INTEGRATION: &str = "ERP-COUPA-PAY";
/// Where Coupa's CSV loader archives the payment files it read.
pub const PAYMENT_ARCHIVE: &str = "/Archive/Incoming/InvoicePayments";

/// One broken promise.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// Which invariant, e.g. `invoice-acked-without-effect`.
    pub invariant: &'static str,
    /// Which document and what was found.
    pub detail: String,
}

impl Violation {
    pub fn new(invariant: &'static str, detail: impl Into<String>) -> Violation {
        Violation {
            invariant,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.invariant, self.detail)
    }
}

/// What the simulator holds, copied under its lock once.
#[derive(Clone, Debug, Default)]
pub struct SimSnapshot {
    pub invoices: BTreeMap<i64, Object>,
    pub history_records: Vec<Object>,
    pub integration_errors: Vec<Object>,
    pub integration_runs: Vec<Object>,
    pub pay_payments: BTreeMap<i64, Object>,
    /// The payment files Coupa's loader archived: (name, bytes).
    pub archived_payment_files: Vec<(String, Vec<u8>)>,
}

impl SimSnapshot {
    pub fn take(sim: &coupa_sim::RunningSim) -> SimSnapshot {
        let by_id = |t: &coupa_sim::store::Table| {
            t.rows()
                .filter_map(|r| Some((r.get("id").and_then(Value::as_i64)?, r.clone())))
                .collect()
        };
        let mut snap = {
            let db = sim.state.db.lock();
            SimSnapshot {
                invoices: by_id(&db.invoices),
                history_records: db.history_records.rows().cloned().collect(),
                integration_errors: db.integration_errors.rows().cloned().collect(),
                integration_runs: db.integration_runs.rows().cloned().collect(),
                pay_payments: by_id(&db.pay_payments),
                archived_payment_files: Vec::new(),
            }
        };
        for (name, _) in sim.state.files.list_files(PAYMENT_ARCHIVE) {
            if let Some(bytes) = sim
                .state
                .files
                .read_file(&format!("{PAYMENT_ARCHIVE}/{name}"))
            {
                snap.archived_payment_files.push((name, bytes));
            }
        }
        snap
    }
}

/// What the ERP holds.
#[derive(Clone, Debug, Default)]
pub struct ErpSnapshot {
    pub invoices: Vec<ErpInvoiceRecord>,
    pub payments: Vec<ErpPaymentRecord>,
    pub pay_payments: Vec<ErpPayPaymentRecord>,
    pub applications: Vec<ErpPaymentApplicationRecord>,
}

impl ErpSnapshot {
    pub async fn take(erp: &SqlErp) -> Result<ErpSnapshot, ErpError> {
        Ok(ErpSnapshot {
            invoices: erp.invoices().await?,
            payments: erp.payments().await?,
            pay_payments: erp.pay_payments().await?,
            applications: erp.payment_applications().await?,
        })
    }
}

/// The simulator before the connector ran: what the checks compare the end state with.
#[derive(Clone, Debug, Default)]
pub struct Baseline {
    /// Invoices the export takes: not exported, approved or voided; id -> status.
    pub eligible: BTreeMap<i64, String>,
    /// Invoices some other integration had exported.
    pub exported: BTreeSet<i64>,
    /// Payments each invoice already showed.
    pub payments_on_invoice: BTreeMap<i64, usize>,
    /// Coupa Pay payments other integrations had exported: never the connector's.
    pub foreign_pay: BTreeSet<i64>,
}

impl Baseline {
    pub fn of(sim: &SimSnapshot) -> Baseline {
        let mut b = Baseline::default();
        for (id, inv) in &sim.invoices {
            if exported(inv) {
                b.exported.insert(*id);
            } else if INVOICE_STATUSES.contains(&status(inv)) {
                b.eligible.insert(*id, status(inv).to_owned());
            }
            b.payments_on_invoice
                .insert(*id, array(inv, "payments").len());
        }
        b.foreign_pay = sim
            .pay_payments
            .iter()
            .filter(|(_, p)| exported(p))
            .map(|(id, _)| *id)
            .collect();
        b
    }
}

/// What the harness changed in Coupa while the connector ran.
#[derive(Clone, Debug, Default)]
pub struct Activity {
    /// Export resets per invoice (each may start a new cycle, with its own record).
    pub resets: BTreeMap<i64, usize>,
    /// Status changes per Coupa Pay payment (each may be a new version, with its own record).
    pub pay_changes: BTreeMap<i64, usize>,
}

fn status(o: &Object) -> &str {
    o.get("status").and_then(Value::as_str).unwrap_or("")
}

fn exported(o: &Object) -> bool {
    o.get("exported").and_then(Value::as_bool) == Some(true)
}

fn array<'a>(o: &'a Object, key: &str) -> &'a [Value] {
    o.get(key).and_then(Value::as_array).unwrap_or(&[])
}

fn text<'a>(o: &'a Object, key: &str) -> &'a str {
    o.get(key).and_then(Value::as_str).unwrap_or("")
}

fn integration_code(o: &Object) -> &str {
    o.pointer(&["integration", "code"])
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// A history record or integration error about one document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Record {
    error: bool,
    resolved: bool,
    /// A Coupa Pay record saying details left unapplied are now applied (the Coupa Pay export
    /// files one when the ERP applied them later, to resolve the alert): not a new version.
    applied_later: bool,
}

impl fmt::Display for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match (self.error, self.applied_later) {
            (true, _) => "error",
            (false, true) => "applied-later",
            (false, false) => "history",
        };
        let state = if self.resolved { "resolved" } else { "open" };
        write!(f, "{kind}/{state}")
    }
}

fn describe(records: &[Record]) -> String {
    records
        .iter()
        .map(Record::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Whether a record's responses say every detail is now applied (see [`Record`]).
fn says_applied_later(r: &Object) -> bool {
    array(r, "responses").iter().any(|resp| {
        resp.as_object()
            .is_some_and(|o| text(o, "response-message").contains("now applied"))
    })
}

/// Records of integration `code` about documents of `document_type`, by document id.
fn records(sim: &SimSnapshot, code: &str, document_type: &str) -> BTreeMap<i64, Vec<Record>> {
    let mut out: BTreeMap<i64, Vec<Record>> = BTreeMap::new();
    for (table, error) in [
        (&sim.history_records, false),
        (&sim.integration_errors, true),
    ] {
        for r in table {
            if integration_code(r) != code || text(r, "document-type") != document_type {
                continue;
            }
            if let Some(id) = r.get("document-id").and_then(Value::as_i64) {
                out.entry(id).or_default().push(Record {
                    error,
                    resolved: r.get("resolved").and_then(Value::as_bool) == Some(true),
                    applied_later: !error && says_applied_later(r),
                });
            }
        }
    }
    out
}

/// What is still to do, as short phrases (empty when the flows have nothing left): eligible
/// invoices not exported, eligible Coupa Pay payments not exported, exported ones whose latest
/// status the ERP does not have. ERP-side work (pending payments, open files) is the caller's.
pub fn pending_in_coupa(
    base: &Baseline,
    db: &coupa_sim::Db,
    erp_pay: &[ErpPayPaymentRecord],
) -> Vec<String> {
    let mut out = Vec::new();
    let unexported = db
        .invoices
        .rows()
        .filter(|r| !exported(r) && INVOICE_STATUSES.contains(&status(r)))
        .count();
    if unexported > 0 {
        out.push(format!("{unexported} eligible invoices not exported"));
    }
    let erp: BTreeMap<i64, &str> = erp_pay
        .iter()
        .map(|p| (p.coupa_payment_id, p.status.as_str()))
        .collect();
    let (mut new, mut stale) = (0, 0);
    for p in db.pay_payments.rows() {
        let Some(id) = p.get("id").and_then(Value::as_i64) else {
            continue;
        };
        if base.foreign_pay.contains(&id) {
            continue;
        }
        if !exported(p) {
            new += usize::from(PAY_STATUSES.contains(&status(p)));
        } else if erp.get(&id) != Some(&status(p)) {
            stale += 1;
        }
    }
    if new > 0 {
        out.push(format!("{new} eligible Coupa Pay payments not exported"));
    }
    if stale > 0 {
        out.push(format!("{stale} Coupa Pay statuses not yet in the ERP"));
    }
    out
}

/// Invoices: none lost, none posted twice, none acknowledged without its effect, each outcome
/// recorded once.
pub fn check_invoices(
    base: &Baseline,
    sim: &SimSnapshot,
    erp: &ErpSnapshot,
    activity: &Activity,
) -> Vec<Violation> {
    let mut v = Vec::new();
    let mut in_erp: BTreeMap<i64, Vec<&ErpInvoiceRecord>> = BTreeMap::new();
    for r in &erp.invoices {
        in_erp.entry(r.coupa_invoice_id).or_default().push(r);
    }
    let recs = records(sim, INVOICES_INTEGRATION, "InvoiceHeader");
    for (id, was) in &base.eligible {
        let Some(inv) = sim.invoices.get(id) else {
            v.push(Violation::new(
                "invoice-lost",
                format!("invoice {id} is gone from Coupa"),
            ));
            continue;
        };
        let number = text(inv, "invoice-number");
        let now = status(inv);
        let rows = in_erp.get(id).map_or(&[][..], Vec::as_slice);
        if rows.len() > 1 {
            let docs: Vec<&str> = rows.iter().map(|r| r.document_number.as_str()).collect();
            v.push(Violation::new(
                "invoice-posted-twice",
                format!(
                    "invoice {id} ({number}) is in the ERP {} times: {docs:?}",
                    rows.len()
                ),
            ));
        }
        let mine = recs.get(id).map_or(&[][..], Vec::as_slice);
        let open: Vec<&Record> = mine.iter().filter(|r| !r.resolved).collect();
        let open_errors = open.iter().filter(|r| r.error).count();
        if !exported(inv) {
            v.push(Violation::new(
                "invoice-lost",
                format!("invoice {id} ({number}, {now}) is still not exported in Coupa"),
            ));
            continue;
        }
        let posted = !rows.is_empty();
        let rejected = now == "approved" && !posted && open_errors > 0;
        let voided_done =
            now == "voided" && rows.iter().all(|r| r.status == "cancelled") && !open.is_empty();
        if now == "approved" && !posted && open_errors == 0 {
            v.push(Violation::new(
                "invoice-acked-without-effect",
                format!(
                    "invoice {id} ({number}) is exported in Coupa but is not in the ERP and has no \
                     rejection recorded"
                ),
            ));
        } else if now == "voided" && !voided_done {
            v.push(Violation::new(
                "invoice-acked-without-effect",
                format!(
                    "voided invoice {id} ({number}) is exported in Coupa without its cancellation \
                     done and recorded (ERP rows {:?}, {} unresolved records)",
                    rows.iter().map(|r| r.status.as_str()).collect::<Vec<_>>(),
                    open.len()
                ),
            ));
        } else if !matches!(now, "approved" | "voided") {
            v.push(Violation::new(
                "invoice-status",
                format!(
                    "invoice {id} ({number}) moved from {was} to {now}; the harness never does that"
                ),
            ));
        }
        // One unresolved record, of the outcome's kind; no more records than cycles.
        let expect_error = rejected;
        if open.len() != 1 || open[0].error != expect_error {
            v.push(Violation::new(
                "invoice-recorded-once",
                format!(
                    "invoice {id} ({number}): {} unresolved records ({}); expected one {}",
                    open.len(),
                    describe(mine),
                    if expect_error {
                        "integration error"
                    } else {
                        "history record"
                    }
                ),
            ));
        }
        let cycles = 1 + activity.resets.get(id).copied().unwrap_or(0);
        if mine.len() > cycles {
            v.push(Violation::new(
                "invoice-recorded-once",
                format!(
                    "invoice {id} ({number}): records {} for at most {cycles} export cycles",
                    describe(mine)
                ),
            ));
        }
    }
    for (id, rows) in &in_erp {
        if !base.eligible.contains_key(id) {
            let what = match sim.invoices.get(id) {
                None => "no such Coupa invoice".to_owned(),
                Some(inv) => format!(
                    "Coupa invoice {} was never eligible",
                    text(inv, "invoice-number")
                ),
            };
            for r in rows {
                v.push(Violation::new(
                    "erp-invoice-orphan",
                    format!(
                        "ERP invoice {} for Coupa invoice {id}: {what}",
                        r.document_number
                    ),
                ));
            }
        }
    }
    for (id, inv) in &sim.invoices {
        if !base.eligible.contains_key(id) && !base.exported.contains(id) && exported(inv) {
            v.push(Violation::new(
                "invoice-exported-not-eligible",
                format!(
                    "invoice {id} ({}) was exported though never eligible",
                    status(inv)
                ),
            ));
        }
    }
    v
}

/// Coupa's `notes` for an ERP payment: its check number, else its reference.
fn erp_note(r: &ErpPaymentRecord) -> String {
    r.check_number
        .clone()
        .unwrap_or_else(|| r.payment_ref.clone())
}

/// (note, amount) of each payment on a Coupa invoice.
fn coupa_payments(inv: &Object) -> Vec<(String, Option<Decimal>)> {
    array(inv, "payments")
        .iter()
        .filter_map(Value::as_object)
        .map(|p| {
            (
                text(p, "notes").trim().to_owned(),
                p.get("amount-paid").and_then(Value::as_decimal),
            )
        })
        .collect()
}

/// ERP payments: none pending, none lost, none applied twice, failures with a reason and not
/// on Coupa, each failure alerted; by CSV, no payment in two files.
pub fn check_payments(base: &Baseline, sim: &SimSnapshot, erp: &ErpSnapshot) -> Vec<Violation> {
    let mut v = Vec::new();
    let mut synced: BTreeMap<i64, Vec<&ErpPaymentRecord>> = BTreeMap::new();
    let by_number: BTreeMap<&str, i64> = sim
        .invoices
        .iter()
        .map(|(id, inv)| (text(inv, "invoice-number"), *id))
        .collect();
    for r in &erp.payments {
        match r.sync_status.as_str() {
            "synced" => match r.coupa_invoice_id {
                Some(id) => synced.entry(id).or_default().push(r),
                None => v.push(Violation::new(
                    "payment-lost",
                    format!(
                        "ERP payment {} is synced without its Coupa invoice",
                        r.payment_ref
                    ),
                )),
            },
            "failed" => {
                if r.sync_error.as_deref().is_none_or(|e| e.trim().is_empty()) {
                    v.push(Violation::new(
                        "payment-failed-without-reason",
                        format!("ERP payment {} failed without a reason", r.payment_ref),
                    ));
                }
                let amount: Option<Decimal> = r.amount.parse().ok();
                let note = erp_note(r);
                if let Some(inv) = by_number
                    .get(r.invoice_number.as_str())
                    .and_then(|id| sim.invoices.get(id))
                    && coupa_payments(inv)
                        .iter()
                        .any(|(n, a)| *n == note.trim() && *a == amount)
                {
                    v.push(Violation::new(
                        "payment-failed-but-applied",
                        format!(
                            "ERP payment {} is failed but is on Coupa invoice {}",
                            r.payment_ref, r.invoice_number
                        ),
                    ));
                }
            }
            other => v.push(Violation::new(
                "payment-pending",
                format!("ERP payment {} is still {other}", r.payment_ref),
            )),
        }
    }
    for (id, inv) in &sim.invoices {
        let before = base.payments_on_invoice.get(id).copied().unwrap_or(0);
        let on_coupa = coupa_payments(inv);
        let added = on_coupa.len().saturating_sub(before);
        let mine = synced.get(id).map_or(&[][..], Vec::as_slice);
        if added != mine.len() {
            let invariant = if added > mine.len() {
                "payment-applied-twice"
            } else {
                "payment-lost"
            };
            v.push(Violation::new(
                invariant,
                format!(
                    "Coupa invoice {id} ({}) got {added} payments for {} synced ERP payments {:?}",
                    text(inv, "invoice-number"),
                    mine.len(),
                    mine.iter()
                        .map(|r| r.payment_ref.as_str())
                        .collect::<Vec<_>>()
                ),
            ));
        }
        for r in mine {
            let note = erp_note(r);
            let amount: Option<Decimal> = r.amount.parse().ok();
            let same = on_coupa
                .iter()
                .filter(|(n, a)| *n == note.trim() && *a == amount)
                .count();
            if same != 1 {
                let invariant = if same == 0 {
                    "payment-lost"
                } else {
                    "payment-applied-twice"
                };
                v.push(Violation::new(
                    invariant,
                    format!(
                        "ERP payment {} (note {note}, {}) is on Coupa invoice {id} {same} times",
                        r.payment_ref, r.amount
                    ),
                ));
            }
        }
    }
    // Coupa's loader refuses a duplicate row, which would hide a payment sent twice from the
    // invoice check above: look at the files themselves.
    let mut seen: BTreeMap<(String, String, String), &str> = BTreeMap::new();
    for (name, bytes) in &sim.archived_payment_files {
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(bytes.as_slice());
        for rec in reader.records().flatten() {
            let (Some(invoice), Some(amount), Some(note)) = (rec.get(4), rec.get(9), rec.get(10))
            else {
                continue;
            };
            if amount.is_empty() {
                continue;
            }
            let key = (invoice.to_owned(), amount.to_owned(), note.to_owned());
            if let Some(first) = seen.insert(key.clone(), name) {
                v.push(Violation::new(
                    "payment-in-two-files",
                    format!("payment {key:?} was sent in {first} and again in {name}"),
                ));
            }
        }
    }
    v
}

/// Coupa Pay payments: every eligible one exported and booked once with Coupa's latest
/// status, one application per detail, one unresolved record; nothing else booked.
pub fn check_pay_payments(
    base: &Baseline,
    sim: &SimSnapshot,
    erp: &ErpSnapshot,
    activity: &Activity,
) -> Vec<Violation> {
    let mut v = Vec::new();
    let mut booked: BTreeMap<i64, &ErpPayPaymentRecord> = BTreeMap::new();
    for r in &erp.pay_payments {
        if booked.insert(r.coupa_payment_id, r).is_some() {
            v.push(Violation::new(
                "pay-booked-twice",
                format!(
                    "Coupa Pay payment {} is in the ERP twice",
                    r.coupa_payment_id
                ),
            ));
        }
    }
    let mut apps: BTreeMap<i64, usize> = BTreeMap::new();
    for a in &erp.applications {
        *apps.entry(a.coupa_payment_id).or_default() += 1;
    }
    let recs = records(sim, PAY_INTEGRATION, "CoupaPay::Payment");
    let mut ours = BTreeSet::new();
    for (id, p) in &sim.pay_payments {
        if base.foreign_pay.contains(id) {
            if booked.contains_key(id) {
                v.push(Violation::new(
                    "pay-foreign-booked",
                    format!(
                        "Coupa Pay payment {id}, exported by another integration, is in the ERP"
                    ),
                ));
            }
            continue;
        }
        let now = status(p);
        if !exported(p) {
            if PAY_STATUSES.contains(&now) {
                v.push(Violation::new(
                    "pay-lost",
                    format!("Coupa Pay payment {id} ({now}) is still not exported"),
                ));
            }
            if booked.contains_key(id) {
                v.push(Violation::new(
                    "pay-booked-not-exported",
                    format!(
                        "Coupa Pay payment {id} ({now}) is in the ERP but not exported in Coupa"
                    ),
                ));
            }
            continue;
        }
        ours.insert(*id);
        let Some(row) = booked.get(id) else {
            v.push(Violation::new(
                "pay-acked-without-effect",
                format!("Coupa Pay payment {id} ({now}) is exported in Coupa but not in the ERP"),
            ));
            continue;
        };
        if row.status != now {
            v.push(Violation::new(
                "pay-latest-status",
                format!(
                    "Coupa Pay payment {id} is {now} in Coupa but {} in the ERP",
                    row.status
                ),
            ));
        }
        let details = array(p, "payment-details").len();
        let applied = apps.get(id).copied().unwrap_or(0);
        if applied != details {
            v.push(Violation::new(
                "pay-applications",
                format!("Coupa Pay payment {id}: {applied} ERP applications for {details} details"),
            ));
        }
        let mine = recs.get(id).map_or(&[][..], Vec::as_slice);
        let open = mine.iter().filter(|r| !r.resolved).count();
        if open != 1 {
            v.push(Violation::new(
                "pay-recorded-once",
                format!(
                    "Coupa Pay payment {id}: {open} unresolved records, expected one ({})",
                    describe(mine)
                ),
            ));
        }
        let versions = 1 + activity.pay_changes.get(id).copied().unwrap_or(0);
        let per_version = mine.iter().filter(|r| !r.applied_later).count();
        let later = mine.len() - per_version;
        if per_version > versions || later > versions {
            v.push(Violation::new(
                "pay-recorded-once",
                format!(
                    "Coupa Pay payment {id}: records {} for at most {versions} versions",
                    describe(mine)
                ),
            ));
        }
    }
    for id in booked.keys() {
        if !sim.pay_payments.contains_key(id) {
            v.push(Violation::new(
                "pay-orphan",
                format!("the ERP holds Coupa Pay payment {id}, which Coupa does not have"),
            ));
        }
    }
    v
}

/// Coupa integration runs: none left pending or running.
pub fn check_integration_runs(sim: &SimSnapshot) -> Vec<Violation> {
    sim.integration_runs
        .iter()
        .filter(|r| matches!(status(r), "pending" | "running"))
        .map(|r| {
            Violation::new(
                "integration-run-open",
                format!(
                    "Coupa integration run {} of {} is left {} (created {}, updated {})",
                    r.get("id").and_then(Value::as_i64).unwrap_or_default(),
                    integration_code(r),
                    status(r),
                    r.get("created-at")
                        .map(Value::to_plain_string)
                        .unwrap_or_default(),
                    r.get("updated-at")
                        .map(Value::to_plain_string)
                        .unwrap_or_default(),
                ),
            )
        })
        .collect()
}

/// No two state-store runs of one flow overlapped: one pass of a flow at a time across every
/// replica. A run a killed process left `running` ended at the latest when a worker died after
/// it started; the earliest such death is taken, so the check never blames a dead run.
pub fn check_run_overlaps(runs: &[RunRecord], deaths: &[DateTime<Utc>]) -> Vec<Violation> {
    let mut v = Vec::new();
    let mut deaths = deaths.to_vec();
    deaths.sort();
    // Per flow: (start, end, run id).
    type Span = (DateTime<Utc>, DateTime<Utc>, i64);
    let mut by_flow: BTreeMap<&str, Vec<Span>> = BTreeMap::new();
    for r in runs {
        let end = match r.finished_at {
            Some(end) => end,
            None => match deaths.iter().find(|d| **d >= r.started_at) {
                Some(death) => *death,
                None => {
                    v.push(Violation::new(
                        "run-unfinished",
                        format!(
                            "{} run {} started at {} never finished, and no worker died after it",
                            r.flow, r.id, r.started_at
                        ),
                    ));
                    continue;
                }
            },
        };
        by_flow
            .entry(r.flow.as_str())
            .or_default()
            .push((r.started_at, end, r.id));
    }
    for (flow, mut spans) in by_flow {
        spans.sort();
        let mut latest: Option<(DateTime<Utc>, i64)> = None;
        for (start, end, id) in spans {
            if let Some((until, other)) = latest
                && start < until
            {
                v.push(Violation::new(
                    "runs-overlap",
                    format!(
                        "{flow} runs {other} and {id} overlapped ({id} started at {start}, {other} \
                         ran until {until}): duplicate work"
                    ),
                ));
            }
            if latest.is_none_or(|(until, _)| end > until) {
                latest = Some((end, id));
            }
        }
    }
    v
}

/// Every check but the runs' overlaps (which need the state store and the harness's deaths).
pub fn check_all(
    base: &Baseline,
    sim: &SimSnapshot,
    erp: &ErpSnapshot,
    activity: &Activity,
) -> Vec<Violation> {
    let mut v = check_invoices(base, sim, erp, activity);
    v.extend(check_payments(base, sim, erp));
    v.extend(check_pay_payments(base, sim, erp, activity));
    v.extend(check_integration_runs(sim));
    v
}

#[cfg(test)]
mod tests;
