//! What a pass of each flow would do, computed without changing anything (`sync --dry-run`).
//!
//! Each preview lists what its pass lists, with the pass's own queries, and decides with the
//! pass's own functions (`to_erp`, the journal's resume, the payment matching and plan), so it
//! cannot drift from what the pass does. It only reads: Coupa through a client whose write gate
//! refuses every write ([`read_only_client`]), the ERP through read methods, the journal
//! through [`Store`] reads. No run is started, nothing is journaled, posted, recorded or marked.

use std::collections::{BTreeSet, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use coupa_api::observe::Observer;
use coupa_api::{Client, ClientConfig, InvoiceId, InvoiceStatus, PayPaymentId};
use rust_decimal::Decimal;

use crate::config::{Monitoring, PaymentTransport};
use crate::erp::sql::SqlErp;
use crate::erp::{Erp, PaymentSync};
use crate::flows::payment_push::files::{self, FileEntry, Files};
use crate::flows::payment_push::{Outcomes, csv_file, matching};
use crate::flows::{FlowError, FlowName, invoice_export, pay_export, payment_push};
use crate::sftp::SftpTarget;
use crate::store::{Store, StoreError};

/// What the dry run's Coupa client answers to any write it is asked to send.
pub const REFUSAL: &str = "dry run: coupa-bridge sends no write to Coupa";

/// A write gate that refuses every write: a bug that reached a write in the dry run fails
/// loudly instead of changing Coupa.
#[derive(Debug)]
pub struct RefuseWrites;

impl coupa_api::client::WriteGate for RefuseWrites {
    fn check(
        &self,
    ) -> Pin<Box<dyn Future<Output = Result<Option<std::time::Instant>, String>> + Send + '_>> {
        Box::pin(async { Err(REFUSAL.to_owned()) })
    }
}

/// The Coupa client of a dry run: no observer (so no call log written to the state store), and
/// every write refused before it is sent.
pub fn read_only_client(config: ClientConfig) -> Result<Client, coupa_api::Error> {
    let observers: Vec<Arc<dyn Observer>> = Vec::new();
    Ok(Client::new(config, Arc::new(observers))?.with_write_gate(Arc::new(RefuseWrites)))
}

/// The journal of a dry run, opened without creating anything: the state store when it exists,
/// else an empty in-memory one (no journal yet: every document is new). `bool`: it exists.
/// A store of an older or newer version is an error: reading it would need a migration.
pub async fn journal(url: &str) -> Result<(Store, bool), StoreError> {
    match Store::connect_current(url).await? {
        Some(store) => Ok((store, true)),
        None => Ok((Store::connect("sqlite::memory:").await?, false)),
    }
}

/// Lines per flow shown before "… and N more".
pub const SHOWN: usize = 20;

/// What one pass of a flow would do now.
#[derive(Clone, Debug, PartialEq)]
pub struct Preview {
    pub flow: FlowName,
    /// One line per document, in the pass's order.
    pub documents: Vec<String>,
    /// What the pass would do besides the documents (Integration, runs, records, files).
    pub notes: Vec<String>,
    /// `(what, how many)` for the summary, in a fixed order per flow.
    pub counts: Vec<(&'static str, u64)>,
    pub listed: u64,
}

impl Preview {
    fn new(flow: FlowName, kinds: &[&'static str]) -> Preview {
        Preview {
            flow,
            documents: Vec::new(),
            notes: Vec::new(),
            counts: kinds.iter().map(|k| (*k, 0)).collect(),
            listed: 0,
        }
    }

    /// One document: its line, counted under `kind`.
    fn add(&mut self, kind: &'static str, line: String) {
        self.listed += 1;
        self.documents.push(line);
        self.bump(kind);
    }

    fn bump(&mut self, kind: &'static str) {
        match self.counts.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => self.counts.push((kind, 1)),
        }
    }

    /// How many documents are counted under `kind`.
    pub fn count(&self, kind: &str) -> u64 {
        self.counts
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(0, |(_, n)| *n)
    }

    /// The summary line: `invoices: 57 listed; 50 to post, 3 to cancel, ...`.
    pub fn summary(&self) -> String {
        let counts: Vec<String> = self
            .counts
            .iter()
            .map(|(k, n)| format!("{n} {k}"))
            .collect();
        format!(
            "{}: {} listed; {}",
            self.flow,
            self.listed,
            counts.join(", ")
        )
    }
}

/// What the pass of `flow` would do.
pub async fn flow(
    flow: FlowName,
    config: &crate::config::Config,
    client: &Client,
    erp: &Arc<SqlErp>,
    store: &Store,
) -> Result<Preview, FlowError> {
    if !config.enabled(flow) {
        return Err(FlowError::Disabled(flow));
    }
    match flow {
        FlowName::Invoices => {
            // Only the reference ERP can be asked what it would do without sending it the
            // invoice; an external one is not asked at all.
            let reference = (config.erp.kind == crate::config::ErpKind::Sql).then_some(erp);
            invoices(client, erp, reference, store, &config.invoices).await
        }
        FlowName::Payments => payments(client, erp.clone(), store, &config.payments).await,
        FlowName::PayPayments => {
            pay_payments(client, erp.clone(), store, &config.pay_payments).await
        }
    }
}

/// A note when Coupa lacks the flow's Integration, which the pass would create.
async fn integration_note(client: &Client, code: &str) -> Result<Option<String>, FlowError> {
    Ok(match client.integrations().find_by_code(code).await? {
        Some(_) => None,
        None => Some(format!("would create the Integration '{code}' in Coupa")),
    })
}

/// The invoice export: the eligible invoices as the pass lists them, each decided from the
/// journal, `to_erp` and, for the reference ERP (`reference`), the ERP's own record of it.
pub async fn invoices(
    client: &Client,
    erp: &Arc<SqlErp>,
    reference: Option<&Arc<SqlErp>>,
    store: &Store,
    settings: &invoice_export::Settings,
) -> Result<Preview, FlowError> {
    const POST: &str = "to post";
    const ALREADY: &str = "already in the ERP";
    const CANCEL: &str = "to cancel";
    const REJECT: &str = "to reject";
    const RESUME: &str = "to resume";
    const UNREADABLE: &str = "unreadable";
    let mut out = Preview::new(
        FlowName::Invoices,
        &[POST, ALREADY, CANCEL, REJECT, RESUME, UNREADABLE],
    );
    let flow = invoice_export::InvoiceExport::new(
        client.clone(),
        erp.clone(),
        store.clone(),
        settings.clone(),
    );
    let mut pager = client
        .invoices()
        .list(flow.eligible().fields(invoice_export::invoice_fields()));
    // Records the pass would leave untouched: cycles resumed past their record.
    let mut recorded = 0u64;
    while let Some(page) = pager.next_page().await? {
        let keys: Vec<String> = page
            .iter()
            .filter_map(|item| match item {
                Ok(inv) => Some(inv.id.get()),
                Err(e) => e.id,
            })
            .map(|id| invoice_export::key(InvoiceId(id)))
            .collect();
        let journal = store.journal_get_many(invoice_export::FLOW, &keys).await?;
        for item in page {
            let inv = match item {
                Ok(inv) => inv,
                Err(e) => match e.id {
                    Some(id) => {
                        out.add(
                            REJECT,
                            format!(
                                "invoice {id}: would reject in Coupa: coupa-bridge could not \
                                 read the invoice: {}",
                                e.error
                            ),
                        );
                        continue;
                    }
                    None => {
                        out.add(UNREADABLE, format!("unreadable record: {}", e.error));
                        continue;
                    }
                },
            };
            let id = inv.id;
            let number = inv
                .invoice_number
                .as_ref()
                .map_or("(no number)", |n| n.as_str());
            let head = format!("invoice {id} {number}");
            let status = invoice_export::status_of(&inv);
            let entry = journal.get(&invoice_export::key(id));
            if let Some((stage, resumed)) = invoice_export::resume(entry, &status) {
                let answer = resumed.erp.status_text();
                let line = if stage == "sent" {
                    format!("{head}: {answer}: would look for the answer (nothing is sent twice)")
                } else if stage == "recorded" {
                    recorded += 1;
                    format!(
                        "{head}: would resume: recorded in Coupa already ({answer}), would mark \
                         exported"
                    )
                } else {
                    let what = match resumed.erp.document_number() {
                        Some(n) => format!("ERP already answered {n}"),
                        None => format!("ERP already answered: {answer}"),
                    };
                    format!("{head}: would resume: {what}, would record it and mark exported")
                };
                out.add(RESUME, line);
                continue;
            }
            let Some(erp) = reference else {
                let (bucket, what) = match (
                    inv.status == Some(InvoiceStatus::Voided),
                    invoice_export::to_erp(&inv),
                ) {
                    (true, _) => (
                        CANCEL,
                        "would send its cancellation to the ERP (voided)".to_owned(),
                    ),
                    (false, Ok(e)) => (
                        POST,
                        format!(
                            "would deliver to the ERP ({} {}, {} line{}); the ERP decides",
                            e.total,
                            e.currency,
                            e.lines.len(),
                            if e.lines.len() == 1 { "" } else { "s" }
                        ),
                    ),
                    (false, Err(reasons)) => (
                        REJECT,
                        format!("would reject in Coupa: {}", reasons.join("; ")),
                    ),
                };
                out.add(bucket, format!("{head}: {what}"));
                continue;
            };
            if inv.status == Some(InvoiceStatus::Voided) {
                let held = erp.invoice(id.get()).await?;
                let what = match held {
                    Some(h) if h.status == "cancelled" => {
                        format!("already cancelled as {}", h.document_number)
                    }
                    Some(h) => format!("ERP invoice {}", h.document_number),
                    None => "not in the ERP: nothing to cancel".to_owned(),
                };
                out.add(
                    CANCEL,
                    format!("{head}: would cancel in the ERP (voided; {what})"),
                );
                continue;
            }
            match invoice_export::to_erp(&inv) {
                Err(reasons) => out.add(
                    REJECT,
                    format!("{head}: would reject in Coupa: {}", reasons.join("; ")),
                ),
                Ok(e) => match erp.invoice(id.get()).await? {
                    Some(h) => out.add(
                        ALREADY,
                        format!(
                            "{head}: in the ERP already as {}: would record it and mark exported",
                            h.document_number
                        ),
                    ),
                    None => match erp.refusals(&e).await?.as_slice() {
                        [] => out.add(
                            POST,
                            format!(
                                "{head}: would post to the ERP ({} {}, {} line{})",
                                e.total,
                                e.currency,
                                e.lines.len(),
                                if e.lines.len() == 1 { "" } else { "s" }
                            ),
                        ),
                        reasons => out.add(
                            REJECT,
                            format!(
                                "{head}: the ERP would refuse it, rejected in Coupa: {}",
                                reasons.join("; ")
                            ),
                        ),
                    },
                },
            }
        }
    }
    let to_record = out.listed - out.count(UNREADABLE) - recorded;
    let alerts = out.count(REJECT);
    let code = &settings.integration_code;
    if settings.monitoring != Monitoring::CustomFields
        && let Some(note) = integration_note(client, code).await?
    {
        out.notes.push(note);
    }
    out.notes.push(match settings.monitoring {
        Monitoring::CustomFields => format!(
            "would set the custom fields '{}' and '{}' on {to_record} invoices",
            settings.status_field, settings.erp_number_field
        ),
        Monitoring::History => format!(
            "would create {to_record} history records under '{code}' ({alerts} of them \
             alerts for rejections)"
        ),
        Monitoring::Runs => format!(
            "would open an integration run of '{code}' for {} invoices, with {} history \
             records and {alerts} integration errors with alerts",
            out.listed,
            to_record - alerts.min(to_record)
        ),
    });
    out.notes.push(format!(
        "would mark {} invoices exported",
        out.listed - out.count(UNREADABLE)
    ));
    Ok(out)
}

/// The payment push: the ERP's pending payments, batch by batch as the pass reads them,
/// matched with the pass's own lookup and plan.
pub async fn payments(
    client: &Client,
    erp: Arc<SqlErp>,
    store: &Store,
    settings: &payment_push::Settings,
) -> Result<Preview, FlowError> {
    const ADD: &str = "to add";
    const ALREADY: &str = "already on Coupa";
    const FAIL: &str = "to fail";
    const LATER: &str = "left for later";
    let mut out = Preview::new(FlowName::Payments, &[ADD, ALREADY, FAIL, LATER]);
    let open = store
        .journal_at_steps(payment_push::FLOW, &files::step::OPEN)
        .await?;
    if !open.is_empty() {
        let names: Vec<String> = open
            .iter()
            .filter_map(|(_, j)| serde_json::from_str::<FileEntry>(&j.detail).ok())
            .map(|f| f.name)
            .collect();
        out.notes.push(format!(
            "would follow {} payment files earlier passes left: {}",
            open.len(),
            names.join(", ")
        ));
    }
    if open.is_empty() && erp.pending_payments(0, 1).await?.is_empty() {
        out.notes
            .push("nothing pending in the ERP: the pass would make no Coupa call".to_owned());
        return Ok(out);
    }
    let csv = settings.transport == PaymentTransport::Csv;
    let sftp = if csv {
        Some(SftpTarget::from_config(&settings.sftp).map_err(FlowError::Sftp)?)
    } else {
        None
    };
    let flow = payment_push::PaymentPush::new(
        client.clone(),
        erp.clone(),
        store.clone(),
        settings.clone(),
    );
    let in_flight: HashSet<i64> = Files::in_flight(store).await?;
    let batch_size = if csv {
        payment_push::CSV_BATCH
    } else {
        payment_push::API_BATCH
    };
    let (mut files, mut rows_in_files) = (0usize, 0usize);
    let mut after = 0;
    loop {
        let rows = erp.pending_payments(after, batch_size).await?;
        let Some(last) = rows.last() else { break };
        after = match last {
            Ok(p) => p.id,
            Err(m) => m.id,
        };
        let mut good = Vec::new();
        for row in rows {
            match row {
                Ok(p) if in_flight.contains(&p.id) => {}
                Err(m) if in_flight.contains(&m.id) => {}
                Ok(p) => match matching::check_limits(&p) {
                    Ok(()) => good.push(p),
                    Err(why) => out.add(FAIL, fail_line(&p.payment_ref, &why)),
                },
                Err(m) => out.add(
                    FAIL,
                    fail_line(
                        &m.payment_ref,
                        &format!("the ERP row is malformed: {}", m.reason),
                    ),
                ),
            }
        }
        let numbers: BTreeSet<String> = good
            .iter()
            .map(|p| p.invoice_number.trim().to_owned())
            .collect();
        let (candidates, failed) = flow.lookup(numbers).await?;
        let placed = matching::place(good, &candidates, &failed);
        for (p, why) in &placed.later {
            out.add(
                LATER,
                format!("payment {}: would stay pending: {why}", p.payment_ref),
            );
        }
        for (p, why) in &placed.failed {
            out.add(FAIL, fail_line(&p.payment_ref, why));
        }
        let per_invoice = placed.per_invoice;
        if csv {
            let mut settled = Outcomes::default();
            let rows = flow.csv_rows(per_invoice, &mut settled);
            for (id, s) in &settled.settled {
                match s {
                    PaymentSync::Synced { coupa_invoice_id } => out.add(
                        ALREADY,
                        format!(
                            "ERP payment {id}: already on invoice {coupa_invoice_id}, would \
                             mark synced"
                        ),
                    ),
                    PaymentSync::Failed { reason, .. } => {
                        out.add(FAIL, fail_line(&format!("{id}"), reason))
                    }
                }
            }
            for r in &rows {
                let p = &r.payment;
                let line = if r.add {
                    format!(
                        "payment {}: would add {} {} to invoice {} ({}) in a payment file",
                        p.payment_ref, p.amount, p.currency, p.invoice_number, r.invoice_id
                    )
                } else {
                    format!(
                        "payment {}: already on invoice {} ({}), would mark it paid in full \
                         in a payment file",
                        p.payment_ref, p.invoice_number, r.invoice_id
                    )
                };
                out.add(if r.add { ADD } else { ALREADY }, line);
            }
            let made = csv_file::files(rows);
            files += made.len();
            rows_in_files += made.iter().map(|f| f.rows.len()).sum::<usize>();
        } else {
            for (id, (inv, payments)) in per_invoice {
                let number = inv
                    .invoice_number
                    .as_ref()
                    .map_or(String::new(), |n| n.as_str().to_owned());
                let plan = matching::plan(&inv, payments);
                let paid = plan.paid.as_ref().map(|m| m.payment_id);
                for p in &plan.already {
                    let mark = if paid == Some(p.id) {
                        ", would mark the invoice paid in full"
                    } else {
                        ""
                    };
                    out.add(
                        ALREADY,
                        format!(
                            "payment {}: already on invoice {number} ({id}), would mark \
                             synced{mark}",
                            p.payment_ref
                        ),
                    );
                }
                for (p, why) in &plan.duplicates {
                    out.add(FAIL, fail_line(&p.payment_ref, why));
                }
                for p in &plan.send {
                    let mark = if paid == Some(p.id) {
                        " and mark it paid in full"
                    } else {
                        ""
                    };
                    out.add(
                        ADD,
                        format!(
                            "payment {}: would add {} {} to invoice {number} ({id}){mark}",
                            p.payment_ref, p.amount, p.currency
                        ),
                    );
                }
            }
        }
    }
    if let Some(target) = &sftp {
        out.notes.push(format!(
            "would upload {files} file{} of {rows_in_files} rows to {}:{} (SFTP not connected in a \
             dry run)",
            if files == 1 { "" } else { "s" },
            target.host,
            settings.sftp.incoming_dir
        ));
    }
    let failures = out.count(FAIL);
    if failures > 0 {
        if let Some(note) = integration_note(client, &settings.integration_code).await? {
            out.notes.push(note);
        }
        out.notes.push(format!(
            "would alert {failures} failures in Coupa (integration errors in a run of '{}')",
            settings.integration_code
        ));
    }
    let settled = if csv {
        out.count(ALREADY) + failures
    } else {
        out.count(ADD) + out.count(ALREADY) + failures
    };
    out.notes
        .push(format!("would write {settled} outcomes to the ERP"));
    Ok(out)
}

fn fail_line(payment_ref: &str, why: &str) -> String {
    format!("payment {payment_ref}: would fail: {why}")
}

/// The Coupa Pay export: the changes and new payments the pass would list, each told apart by
/// the journal and by whether the ERP holds the payment (`Erp::pay_problems`).
pub async fn pay_payments(
    client: &Client,
    erp: Arc<SqlErp>,
    store: &Store,
    settings: &pay_export::Settings,
) -> Result<Preview, FlowError> {
    const BOOK: &str = "to book";
    const UPDATE: &str = "to update";
    const REFUSE: &str = "to refuse";
    const RESOLVE: &str = "to resolve";
    const UNREADABLE: &str = "unreadable";
    let mut out = Preview::new(
        FlowName::PayPayments,
        &[BOOK, UPDATE, REFUSE, RESOLVE, UNREADABLE],
    );
    let flow =
        pay_export::PayExport::new(client.clone(), erp.clone(), store.clone(), settings.clone());
    if let Some(note) = integration_note(client, &settings.integration_code).await? {
        out.notes.push(note);
    }
    let watermark = flow.watermark().await?;
    let work = flow.find_work(client, watermark).await?;
    // Changes: payments this connector exported whose version the journal has not seen done.
    let keys: Vec<String> = work
        .changed
        .iter()
        .filter_map(pay_export::item_id)
        .map(|id| pay_export::key(PayPaymentId(id)))
        .collect();
    let journal = store.journal_get_many(pay_export::FLOW, &keys).await?;
    for item in &work.changed {
        let Some(id) = pay_export::item_id(item) else {
            continue;
        };
        let seen = journal
            .get(&pay_export::key(PayPaymentId(id)))
            .is_some_and(|j| pay_export::is_done(&j.step) && pay_export::same_version(j, item));
        if seen {
            continue;
        }
        let now = match item {
            Ok(p) => p.status.as_ref().map_or("?", |s| s.as_str()).to_owned(),
            Err(e) => format!("unreadable: {}", e.error),
        };
        out.add(
            UPDATE,
            format!("payment {id}: would update the ERP's payment (status changed, now {now})"),
        );
    }
    if work.new > 0 {
        let mut pager = client
            .pay_payments()
            .list(flow.new_payments().fields(pay_export::payment_fields()));
        while let Some(page) = pager.next_page().await? {
            let ids: Vec<i64> = page.iter().filter_map(pay_export::item_id).collect();
            let held = erp.pay_problems(&ids).await?;
            let keys: Vec<String> = ids
                .iter()
                .map(|id| pay_export::key(PayPaymentId(*id)))
                .collect();
            let journal = store.journal_get_many(pay_export::FLOW, &keys).await?;
            for item in page {
                let p = match item {
                    Ok(p) => p,
                    Err(e) => match e.id {
                        Some(id) => {
                            out.add(
                                REFUSE,
                                format!(
                                    "payment {id}: would refuse (alert, left unexported): \
                                     could not read it: {}",
                                    e.error
                                ),
                            );
                            continue;
                        }
                        None => {
                            out.add(UNREADABLE, format!("unreadable record: {}", e.error));
                            continue;
                        }
                    },
                };
                let id = p.id.get();
                let booking = match pay_export::to_erp(&p) {
                    Ok(b) => b,
                    Err(missing) => {
                        let why = format!("it cannot be booked: {}", missing.join("; "));
                        let alerted = journal.get(&pay_export::key(p.id)).is_some_and(|j| {
                            j.step == pay_export::step::REFUSED && j.detail == why
                        });
                        let alert = if alerted { "alerted before" } else { "alert" };
                        out.add(
                            REFUSE,
                            format!("payment {id}: would refuse ({alert}, left unexported): {why}"),
                        );
                        continue;
                    }
                };
                if held.contains_key(&id) {
                    out.add(
                        UPDATE,
                        format!(
                            "payment {id}: in the ERP already: would book or update it ({}), \
                             record it and mark it exported",
                            booking.status
                        ),
                    );
                } else {
                    let (amount, currency) = paid(&booking);
                    out.add(
                        BOOK,
                        format!(
                            "payment {id}: would book payment {id} {amount} {currency} ({}, {} \
                             invoice details)",
                            booking.status,
                            booking.applications.len()
                        ),
                    );
                }
            }
        }
    }
    // Payments exported with details the ERP could not apply, applied since.
    let waiting: Vec<i64> = store
        .journal_at_steps(pay_export::FLOW, &[pay_export::step::DONE_UNAPPLIED])
        .await?
        .iter()
        .filter_map(|(k, _)| k.strip_prefix(pay_export::KEY_PREFIX)?.parse().ok())
        .collect();
    if !waiting.is_empty() {
        let problems = erp.pay_problems(&waiting).await?;
        for id in waiting {
            if problems.get(&id).is_some_and(Vec::is_empty) {
                out.bump(RESOLVE);
                out.documents.push(format!(
                    "payment {id}: its details are applied in the ERP now: would record that \
                     (resolves its alert)"
                ));
            }
        }
    }
    let total = work.changed_versions + work.new;
    if total > 0 {
        out.notes.push(format!(
            "would open an integration run of '{}' for {total} payments, record each and mark \
             the new ones exported",
            settings.integration_code
        ));
    }
    Ok(out)
}

/// What a payment pays: the pay-to total, else the sum of its details.
fn paid(b: &crate::erp::ErpPayPayment) -> (Decimal, String) {
    match (b.pay_to_total, &b.pay_to_currency) {
        (Some(t), Some(c)) => (t, c.clone()),
        _ => (
            b.applications.iter().map(|a| a.amount).sum(),
            b.applications
                .first()
                .map(|a| a.currency.clone())
                .unwrap_or_default(),
        ),
    }
}
