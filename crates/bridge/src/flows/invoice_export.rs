//! Invoice export (seed 001): approved and voided Coupa invoices into the ERP, then Coupa is told
//! what happened, by one of Coupa's three monitoring options.
//!
//! Every invoice goes through the same steps, each recorded in the journal before the next
//! begins, so a crash anywhere is resumed without a second ERP posting and without a second
//! Coupa record:
//!
//! 1. **ERP** (`posted`): post an approved invoice, or cancel the ERP invoice of a voided one.
//!    The ERP is idempotent by Coupa invoice id, so even a crash before the journal write only
//!    gets back the same document number. An ERP outage stops here: the invoice stays
//!    unexported and is retried on the next pass.
//! 2. **Record** (`recording`, then `recorded`): write the outcome into Coupa (custom fields,
//!    history record, integration error with an alert). `recording` lists the unresolved
//!    records that existed before, so after a crash mid-creation the record the crashed attempt
//!    made is recognised (it is not in that list) and not created twice.
//! 3. **Acknowledge** (`exported`): mark the invoice exported, last, and only after the ERP has
//!    answered for good. Effect, then acknowledge.
//!
//! An invoice whose journal says `exported` but which Coupa lists as unexported again was reset
//! by a clerk: it starts a new cycle, and the old cycle's unresolved records are resolved.
//!
//! For speed, the work that can be done a page at a time is: the page's unresolved records,
//! journal entries and ERP postings (one ERP call for the page's new cycles) are read or made
//! while the previous page's last invoices are still in flight, and each invoice then runs the
//! steps above from `posted` on, up to `invoices.concurrency` at a time.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use coupa_api::client::{NewIntegration, NewMonitoringRecord};
use coupa_api::observe::CallContext;
use coupa_api::paging::Pager;
use coupa_api::paging::RecordError;
use coupa_api::query::{Fields, Query};
use coupa_api::wire::Invoice;
use coupa_api::{Client, ContactAlertType, IntegrationRunId, InvoiceId, InvoiceStatus};
use coupa_doc::Value;
use futures_util::{FutureExt, StreamExt};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::erp::{CancelOutcome, Erp, ErpInvoice, ErpInvoiceLine, PostOutcome};
use crate::failpoint;
use crate::flows::monitoring::{self, RecordKind, Unresolved};
use crate::flows::{FlowError, Pass, PassReport, StepFailure};
use crate::store::Store;

/// The flow's name in the state store, logs and metrics.
pub const FLOW: &str = "invoices";
const DOCUMENT_TYPE: &str = "InvoiceHeader";
/// Coupa custom fields are string(255) unless configured otherwise.
const CUSTOM_FIELD_MAX: usize = 255;

/// The flow's settings are the `[invoices]` section of the config.
pub use crate::config::{InvoicesConfig as Settings, Monitoring};

/// What the ERP answered for one invoice, as kept in the journal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum ErpOutcome {
    Posted {
        document_number: String,
        already_posted: bool,
    },
    Cancelled {
        document_number: String,
    },
    /// Voided before it ever reached the ERP.
    NothingToCancel,
    Rejected {
        reasons: Vec<String>,
    },
    /// Delivered to an ERP that answers later (journal step `sent`): nothing is told to Coupa
    /// until it has. `alerted` once the wait passed `invoices.answer_deadline_secs`.
    Awaiting {
        since: DateTime<Utc>,
        #[serde(default)]
        alerted: bool,
    },
}

impl ErpOutcome {
    pub(crate) fn document_number(&self) -> Option<&str> {
        match self {
            ErpOutcome::Posted {
                document_number, ..
            }
            | ErpOutcome::Cancelled { document_number } => Some(document_number),
            _ => None,
        }
    }

    fn is_rejection(&self) -> bool {
        matches!(self, ErpOutcome::Rejected { .. })
    }

    /// The sentence Coupa shows: "Success: ..." or "Failure: <ERP reasons>".
    pub fn status_text(&self) -> String {
        let text = match self {
            ErpOutcome::Posted {
                document_number,
                already_posted: false,
            } => format!("Success: posted to the ERP as {document_number}"),
            ErpOutcome::Posted {
                document_number,
                already_posted: true,
            } => format!("Success: already in the ERP as {document_number}"),
            ErpOutcome::Cancelled { document_number } => {
                format!("Success: ERP invoice {document_number} cancelled")
            }
            ErpOutcome::NothingToCancel => {
                "Success: voided before it reached the ERP; nothing to cancel".to_owned()
            }
            ErpOutcome::Rejected { reasons } => format!("Failure: {}", reasons.join("; ")),
            ErpOutcome::Awaiting { since, .. } => format!(
                "Waiting: sent to the ERP at {}, awaiting its answer",
                since.format("%Y-%m-%d %H:%M UTC")
            ),
        };
        truncate(&text, CUSTOM_FIELD_MAX)
    }
}

fn truncate(s: &str, max_chars: usize) -> String {
    if s.chars().count() <= max_chars {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max_chars.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// The journal's record of one invoice's cycle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Entry {
    /// The Coupa status the ERP outcome answers (a void after a crash needs a new answer).
    status: String,
    pub(crate) erp: ErpOutcome,
    /// Unresolved records that existed before this cycle created its own.
    #[serde(default)]
    before: Vec<i64>,
    #[serde(default)]
    record: Option<i64>,
}

mod step {
    /// Delivered to an ERP that answers later; asked again each pass until it has.
    pub const SENT: &str = "sent";
    pub const POSTED: &str = "posted";
    pub const RECORDING: &str = "recording";
    pub const RECORDED: &str = "recorded";
    pub const EXPORTED: &str = "exported";
}

pub(crate) fn key(id: InvoiceId) -> String {
    format!("invoice:{id}")
}

/// The fields the flow reads: everything the ERP needs, nothing else.
pub fn invoice_fields() -> Fields {
    Fields::new([
        "id",
        "invoice-number",
        "invoice-date",
        "status",
        "exported",
        "gross-total",
        "total-with-taxes",
    ])
    .nest("supplier", Fields::new(["id", "name", "number"]))
    .nest("currency", Fields::new(["code"]))
    .nest(
        "invoice-lines",
        Fields::new([
            "id",
            "line-num",
            "description",
            "quantity",
            "price",
            "total",
        ])
        .nest("account", Fields::new(["code"])),
    )
}

/// The flow's Integration in Coupa (options 2 and 3 file their records under it).
pub fn integration(settings: &Settings) -> NewIntegration {
    let code = &settings.integration_code;
    NewIntegration {
        name: format!("coupa-bridge: invoices to the ERP ({code})"),
        code: code.clone(),
        business_object: DOCUMENT_TYPE.into(),
        direction: "from_coupa".into(),
        end_system: "ERP".into(),
        end_system_type: "erp".into(),
        integration_type: Some("api".into()),
    }
}

/// Builds the ERP's view of an invoice, or says what is missing.
pub fn to_erp(inv: &Invoice) -> Result<ErpInvoice, Vec<String>> {
    let mut missing = Vec::new();
    let number = inv.invoice_number.as_ref().map(|n| n.as_str().to_owned());
    if number.is_none() {
        missing.push("invoice has no invoice number".to_owned());
    }
    let date = inv.invoice_date.map(|d| d.date_naive());
    if date.is_none() {
        missing.push("invoice has no invoice date".to_owned());
    }
    let currency = inv.currency.as_ref().map(|c| c.code.clone());
    if currency.as_deref().is_none_or(str::is_empty) {
        missing.push("invoice has no currency".to_owned());
    }
    let mut lines = Vec::with_capacity(inv.invoice_lines.len());
    for (i, l) in inv.invoice_lines.iter().enumerate() {
        let Some(total) = l.total else {
            missing.push(format!("invoice line {} has no total", i + 1));
            continue;
        };
        let quantity = l.quantity.unwrap_or(Decimal::ONE);
        lines.push(ErpInvoiceLine {
            coupa_line_id: l.id.map(|i| i.get()),
            line_num: l.line_num.unwrap_or(i as i64 + 1),
            description: l.description.clone().unwrap_or_default(),
            quantity,
            price: l.price.unwrap_or(total),
            total,
            account_code: l.account.as_ref().and_then(|a| a.code.clone()),
        });
    }
    let total = inv
        .total_with_taxes
        .or(inv.gross_total)
        .unwrap_or_else(|| lines.iter().map(|l| l.total).sum());
    match (number, date, currency) {
        (Some(invoice_number), Some(invoice_date), Some(currency)) if missing.is_empty() => {
            Ok(ErpInvoice {
                coupa_invoice_id: inv.id.get(),
                invoice_number,
                coupa_supplier_id: inv.supplier.as_ref().and_then(|s| s.id.map(|i| i.get())),
                supplier_number: inv.supplier.as_ref().and_then(|s| s.number.clone()),
                supplier_name: inv.supplier.as_ref().and_then(|s| s.name.clone()),
                invoice_date,
                currency,
                total,
                lines,
            })
        }
        _ => Err(missing),
    }
}

/// One pass of the flow.
pub struct InvoiceExport {
    client: Client,
    erp: Arc<dyn Erp>,
    store: Store,
    settings: Settings,
    /// Checked before each document: see [`Stop`](crate::flows::Stop).
    stop: crate::flows::Stop,
}

/// A listed invoice with what its page's queries found for it.
struct Prepared {
    id: Option<i64>,
    item: Result<Invoice, RecordError>,
    open: Unresolved,
    entry: Option<crate::store::JournalEntry>,
    /// The ERP's answer when the page's batch already posted it.
    erp: Option<Result<ErpOutcome, String>>,
}

/// What became of one listed invoice.
#[derive(Debug)]
enum Done {
    Exported(ErpOutcome),
    /// With the ERP, awaiting its answer; `Some(why)` once past the deadline.
    Awaiting(Option<String>),
    /// Left for the next pass, with why.
    Transient(String),
    /// A record without an id: nothing can be done with it but report it.
    Unreadable(String),
}

impl InvoiceExport {
    pub fn new(client: Client, erp: Arc<dyn Erp>, store: Store, settings: Settings) -> Self {
        InvoiceExport {
            client,
            erp,
            store,
            settings,
            stop: crate::flows::Stop::never(),
        }
    }

    /// Makes the pass stop taking new documents once `stop` is requested.
    pub fn with_stop(mut self, stop: crate::flows::Stop) -> Self {
        self.stop = stop;
        self
    }

    /// Runs one pass: every eligible invoice once. A fatal error (credentials, the state store)
    /// ends the pass early; the run is recorded either way.
    pub async fn run(&self) -> Result<PassReport, FlowError> {
        let mut pass = Pass::begin(&self.store, &self.client, FLOW).await?;
        let run = pass.run();
        let result = self.pass(&pass.client, run, &mut pass.report).await;
        pass.finish(&self.store, result).await
    }

    async fn pass(
        &self,
        client: &Client,
        run: i64,
        report: &mut PassReport,
    ) -> Result<(), FlowError> {
        let s = &self.settings;
        if s.monitoring != Monitoring::CustomFields {
            client.integrations().ensure(&integration(s)).await?;
        }
        let coupa_run = if s.monitoring == Monitoring::Runs {
            Some(self.open_coupa_run(client).await?)
        } else {
            None
        };
        report.coupa_run = coupa_run.map(IntegrationRunId::get);
        let result = self.export_all(client, run, coupa_run, report).await;
        if let Some(id) = coupa_run {
            let close = match &result {
                Ok(()) => client.runs().success(id).await,
                Err(_) => client.runs().fail(id).await,
            };
            // When closing fails the run stays open in Coupa; the next pass fails it.
            if let Err(e) = close {
                tracing::warn!(run = %id, error = %e, "could not close the integration run");
            }
        }
        result
    }

    pub(crate) fn eligible(&self) -> Query {
        Query::new()
            .eq("exported", false)
            .is_in("status", self.settings.statuses.iter().map(String::as_str))
    }

    /// Fails the runs a crashed pass left open (one pass of this flow runs at a time, so any
    /// open run of the integration is an orphan), then opens this pass's run with its total.
    async fn open_coupa_run(&self, client: &Client) -> Result<IntegrationRunId, FlowError> {
        let code = &self.settings.integration_code;
        crate::flows::fail_orphan_runs(client, code).await?;
        let mut total = 0u64;
        let mut ids = client
            .invoices()
            .list(self.eligible().fields(Fields::new(["id"])));
        while let Some(page) = ids.next_page().await? {
            total += page.len() as u64;
        }
        let created = client.runs().create(code).await?;
        client.runs().start(created.id, total).await?;
        Ok(created.id)
    }

    /// Every eligible invoice, page by page, as one stream: up to `concurrency` invoices are in
    /// flight, and the next page is read and prepared while the last invoices of the previous
    /// one are still going, so the pipeline does not drain at each page boundary. Paging by id
    /// keeps this skip-proof: the next page's cursor is the previous page's last id, whatever
    /// has been marked exported since.
    ///
    /// A fatal error (or an error reading a page) stops new invoices from starting; those in
    /// flight finish and are counted, then the first such error is returned.
    async fn export_all(
        &self,
        client: &Client,
        run: i64,
        coupa_run: Option<IntegrationRunId>,
        report: &mut PassReport,
    ) -> Result<(), FlowError> {
        let concurrency = self.settings.concurrency.max(1);
        let pager = client
            .invoices()
            .list(self.eligible().fields(invoice_fields()));
        let mut fetching = Some(self.next_page(client, pager).boxed());
        let mut queued: std::collections::VecDeque<Prepared> = Default::default();
        let mut in_flight = futures_util::stream::FuturesUnordered::new();
        let mut error: Option<FlowError> = None;
        loop {
            let stop = self.stop.requested();
            if error.is_some() || stop {
                // What has not started is left, untouched, for the next pass. A stop is checked
                // as each invoice starts: one already started runs to its end.
                if error.is_none() && (!queued.is_empty() || fetching.is_some()) {
                    report.stopped = true;
                }
                queued.clear();
                fetching = None;
            } else {
                while in_flight.len() < concurrency {
                    let Some(p) = queued.pop_front() else { break };
                    in_flight.push(self.start(client, run, coupa_run, p));
                }
            }
            if in_flight.is_empty() && fetching.is_none() {
                break;
            }
            // Read the next page only once this one's invoices have all started.
            let want_page = queued.is_empty() && fetching.is_some();
            tokio::select! {
                Some((id, done)) = in_flight.next(), if !in_flight.is_empty() => {
                    match done {
                        Ok(done) => count(report, id, done),
                        Err(e) => {
                            error.get_or_insert(e);
                        }
                    }
                }
                page = async {
                    match fetching.as_mut() {
                        Some(f) => f.await,
                        None => std::future::pending().await,
                    }
                }, if want_page => {
                    fetching = None;
                    match page {
                        Ok(Some((prepared, pager))) => {
                            queued.extend(prepared);
                            fetching = Some(self.next_page(client, pager).boxed());
                        }
                        Ok(None) => {}
                        Err(e) => {
                            error.get_or_insert(e);
                        }
                    }
                }
                else => break,
            }
        }
        match error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The next page of the listing, prepared; `None` after the last.
    async fn next_page(
        &self,
        client: &Client,
        mut pager: Pager<Invoice>,
    ) -> Result<Option<(Vec<Prepared>, Pager<Invoice>)>, FlowError> {
        match pager.next_page().await? {
            Some(page) => Ok(Some((self.prepare(client, page).await?, pager))),
            None => Ok(None),
        }
    }

    /// One invoice of a page, with its id for the report.
    async fn start(
        &self,
        client: &Client,
        run: i64,
        coupa_run: Option<IntegrationRunId>,
        p: Prepared,
    ) -> (Option<i64>, Result<Done, FlowError>) {
        let done = self
            .one(client, run, coupa_run, p.item, p.open, p.entry, p.erp)
            .await;
        (p.id, done)
    }

    /// What the invoices of one page need before they start: their unresolved records and their
    /// journal entries, one query each for the whole page.
    async fn prepare(
        &self,
        client: &Client,
        page: Vec<Result<Invoice, RecordError>>,
    ) -> Result<Vec<Prepared>, FlowError> {
        let ids: Vec<i64> = page
            .iter()
            .filter_map(|item| match item {
                Ok(inv) => Some(inv.id.get()),
                Err(RecordError { id, .. }) => *id,
            })
            .collect();
        let mut unresolved = self.unresolved(client, &ids).await?;
        let keys: Vec<String> = ids.iter().map(|i| key(InvoiceId(*i))).collect();
        let mut journal = self.store.journal_get_many(FLOW, &keys).await?;
        let mut prepared: Vec<Prepared> = page
            .into_iter()
            .map(|item| {
                let id = match &item {
                    Ok(inv) => Some(inv.id.get()),
                    Err(e) => e.id,
                };
                let open = id.and_then(|i| unresolved.remove(&i)).unwrap_or_default();
                let entry = id.and_then(|i| journal.remove(&key(InvoiceId(i))));
                Prepared {
                    id,
                    item,
                    open,
                    entry,
                    erp: None,
                }
            })
            .collect();
        self.post_page(&mut prepared).await;
        Ok(prepared)
    }

    /// Posts, in one ERP call, the page's invoices that start a new cycle with a posting, and
    /// keeps each answer for [`InvoiceExport::one`]. Posting ahead changes no guarantee: the
    /// ERP is idempotent by Coupa invoice id, and each invoice is still journaled `posted`
    /// before anything is written to Coupa, so an invoice posted here whose cycle never ran is
    /// simply answered "already posted" next time. Voided invoices and resumed cycles are left
    /// to `one`, as are all invoices once a stop is requested.
    async fn post_page(&self, prepared: &mut [Prepared]) {
        if self.stop.requested() {
            return;
        }
        // The sabotage acknowledges before the ERP effect, so nothing may be posted ahead.
        #[cfg(feature = "sabotage")]
        if crate::sabotage::ack_before_effect() {
            return;
        }
        let mut batch: Vec<(usize, ErpInvoice)> = Vec::new();
        for (i, p) in prepared.iter().enumerate() {
            let Ok(inv) = &p.item else { continue };
            let resumed = resume(p.entry.as_ref(), &status_of(inv));
            if inv.status == Some(InvoiceStatus::Voided)
                || resumed.is_some_and(|(stage, _)| stage != step::SENT)
            {
                continue;
            }
            if let Ok(erp_invoice) = to_erp(inv) {
                batch.push((i, erp_invoice));
            }
        }
        if batch.is_empty() {
            return;
        }
        let invoices: Vec<ErpInvoice> = batch.iter().map(|(_, inv)| inv.clone()).collect();
        let answers = self.erp.post_invoices(&invoices).await;
        for ((i, _), answer) in batch.into_iter().zip(answers) {
            prepared[i].erp = Some(post_outcome(answer));
        }
    }

    /// The unresolved history records (and, in runs, integration errors) of a page's invoices.
    async fn unresolved(
        &self,
        client: &Client,
        ids: &[i64],
    ) -> Result<HashMap<i64, Unresolved>, FlowError> {
        if self.settings.monitoring == Monitoring::CustomFields {
            return Ok(HashMap::new());
        }
        let with_errors = self.settings.monitoring == Monitoring::Runs;
        Ok(monitoring::unresolved(client, DOCUMENT_TYPE, ids, with_errors).await?)
    }

    /// One invoice, start to end of its cycle. `posted` is the ERP's answer when the page's
    /// batch already posted it.
    #[allow(clippy::too_many_arguments)]
    async fn one(
        &self,
        client: &Client,
        run: i64,
        coupa_run: Option<IntegrationRunId>,
        item: Result<Invoice, RecordError>,
        open: Unresolved,
        journal: Option<crate::store::JournalEntry>,
        posted: Option<Result<ErpOutcome, String>>,
    ) -> Result<Done, FlowError> {
        let (id, invoice) = match item {
            Ok(inv) => (inv.id, Ok(inv)),
            Err(RecordError {
                id: Some(id),
                error,
            }) => (InvoiceId(id), Err(error.to_string())),
            Err(e) => return Ok(Done::Unreadable(e.to_string())),
        };
        let client = client.with_context(CallContext {
            flow: FLOW.into(),
            run: Some(run),
            document: Some(key(id)),
        });
        let status = invoice.as_ref().map(status_of).unwrap_or_default();
        let k = key(id);
        let (stage, mut entry) = match resume(journal.as_ref(), &status) {
            Some((stage, entry)) if stage != step::SENT => (stage, entry),
            resumed => {
                // A new cycle, or one whose invoice the ERP has and has not answered for yet:
                // asking again delivers nothing twice (the ERP is idempotent by Coupa id).
                let sent = resumed.map(|(_, entry)| entry);
                // Deliberately broken for the chaos harness's tests: acknowledge first.
                #[cfg(feature = "sabotage")]
                if sent.is_none() && crate::sabotage::ack_before_effect() {
                    if let Err(e) = client.invoices().mark_exported(id).await {
                        return transient_or_fatal(e);
                    }
                    failpoint::hit(crate::sabotage::ACKED_FAILPOINT);
                }
                let erp = match posted {
                    Some(answer) => answer,
                    None => self.erp_step(id, &invoice).await,
                };
                let erp = match erp {
                    Ok(o) => o,
                    Err(why) => return Ok(Done::Transient(why)),
                };
                failpoint::hit("erp-done");
                if let ErpOutcome::Awaiting { .. } = erp {
                    return self.awaiting(run, &k, status, erp, sent).await;
                }
                let entry = Entry {
                    status: status.clone(),
                    erp,
                    before: Vec::new(),
                    record: None,
                };
                self.store
                    .journal_put(FLOW, &k, step::POSTED, &json(&entry), Some(run))
                    .await?;
                failpoint::hit("posted");
                (step::POSTED.to_owned(), entry)
            }
        };
        if stage != step::RECORDED {
            match self
                .record(
                    &client, run, coupa_run, id, &status, &open, &stage, &mut entry,
                )
                .await
            {
                Ok(()) => {}
                Err(e) => return transient_or_fatal(e),
            }
        }
        if let Err(e) = client.invoices().mark_exported(id).await {
            return transient_or_fatal(e);
        }
        failpoint::hit("exported");
        self.store
            .journal_put(FLOW, &k, step::EXPORTED, &json(&entry), Some(run))
            .await?;
        Ok(Done::Exported(entry.erp))
    }

    /// Journals an invoice the ERP has not answered for (step `sent`, kept from the first
    /// delivery so the wait is counted from then), and says whether the wait is past the
    /// deadline. The journal is written the first time and when the deadline passes.
    async fn awaiting(
        &self,
        run: i64,
        k: &str,
        status: String,
        outcome: ErpOutcome,
        sent: Option<Entry>,
    ) -> Result<Done, FlowError> {
        let first = sent.is_none();
        let mut entry = sent.unwrap_or(Entry {
            status,
            erp: outcome,
            before: Vec::new(),
            record: None,
        });
        let deadline = chrono::Duration::seconds(
            i64::try_from(self.settings.answer_deadline_secs).unwrap_or(i64::MAX / 1_000),
        );
        let mut overdue = None;
        let mut changed = first;
        if let ErpOutcome::Awaiting { since, alerted } = &mut entry.erp {
            let waited = Utc::now() - *since;
            if waited > deadline {
                overdue = Some(format!(
                    "sent to the ERP at {}, no answer after {} s (invoices.answer_deadline_secs \
                     = {})",
                    since.format("%Y-%m-%d %H:%M:%S UTC"),
                    waited.num_seconds(),
                    self.settings.answer_deadline_secs
                ));
                changed |= !*alerted;
                *alerted = true;
            }
        }
        if changed {
            self.store
                .journal_put(FLOW, k, step::SENT, &json(&entry), Some(run))
                .await?;
        }
        if first {
            failpoint::hit("sent");
        }
        Ok(Done::Awaiting(overdue))
    }

    /// Posts or cancels in the ERP. `Err` is an outage: try again next pass.
    async fn erp_step(
        &self,
        id: InvoiceId,
        invoice: &Result<Invoice, String>,
    ) -> Result<ErpOutcome, String> {
        let inv = match invoice {
            Ok(inv) => inv,
            Err(decode) => {
                return Ok(ErpOutcome::Rejected {
                    reasons: vec![format!("coupa-bridge could not read the invoice: {decode}")],
                });
            }
        };
        if inv.status == Some(InvoiceStatus::Voided) {
            return match self.erp.cancel_invoice(id.get()).await {
                Ok(CancelOutcome::Cancelled { document_number })
                | Ok(CancelOutcome::AlreadyCancelled { document_number }) => {
                    Ok(ErpOutcome::Cancelled { document_number })
                }
                Ok(CancelOutcome::NotPosted) => Ok(ErpOutcome::NothingToCancel),
                Ok(CancelOutcome::Pending) => Ok(awaiting_now()),
                Err(e) => Err(e.to_string()),
            };
        }
        let erp_invoice = match to_erp(inv) {
            Ok(e) => e,
            Err(reasons) => return Ok(ErpOutcome::Rejected { reasons }),
        };
        post_outcome(self.erp.post_invoice(&erp_invoice).await)
    }

    /// Tells Coupa the outcome, per the monitoring option.
    #[allow(clippy::too_many_arguments)]
    async fn record(
        &self,
        client: &Client,
        run: i64,
        coupa_run: Option<IntegrationRunId>,
        id: InvoiceId,
        status: &str,
        open: &Unresolved,
        stage: &str,
        entry: &mut Entry,
    ) -> Result<(), StepFailure> {
        let s = &self.settings;
        let k = key(id);
        let rejected = entry.erp.is_rejection();
        if s.monitoring == Monitoring::CustomFields {
            let mut fields = vec![(
                s.status_field.as_str(),
                Value::from(entry.erp.status_text()),
            )];
            if let Some(n) = entry.erp.document_number() {
                fields.push((s.erp_number_field.as_str(), Value::from(n)));
            }
            set_custom_fields(client, id, &fields).await?;
            failpoint::hit("record-created");
            return Ok(());
        }
        if stage == step::POSTED {
            entry.before = open.all();
            self.store
                .journal_put(FLOW, &k, step::RECORDING, &json(entry), Some(run))
                .await?;
        }
        if let Some(n) = entry.erp.document_number() {
            set_custom_fields(client, id, &[(s.erp_number_field.as_str(), Value::from(n))]).await?;
        }
        // An error for a rejection under option 3, a history record otherwise.
        let kind = match (rejected, s.monitoring) {
            (true, Monitoring::Runs) => RecordKind::ErrorAlert,
            (true, _) => RecordKind::HistoryAlert,
            (false, _) => RecordKind::History,
        };
        let record = NewMonitoringRecord {
            integration_code: s.integration_code.clone(),
            run: coupa_run,
            document_type: DOCUMENT_TYPE.into(),
            document_id: Some(id.get()),
            document_status: Some(status.to_owned()),
            contact_alert_type: if rejected {
                ContactAlertType::Functional
            } else {
                ContactAlertType::Technical
            },
            status: Some(if rejected { "Error" } else { "Success" }.into()),
            external_id: entry.erp.document_number().map(str::to_owned),
            responses: responses(&entry.erp),
        };
        let before = (stage == step::RECORDING).then_some(entry.before.as_slice());
        let record_id = monitoring::replace_records(client, open, before, kind, &record).await?;
        failpoint::hit("record-created");
        entry.record = Some(record_id);
        self.store
            .journal_put(FLOW, &k, step::RECORDED, &json(entry), Some(run))
            .await?;
        failpoint::hit("recorded");
        Ok(())
    }
}

/// Writes custom fields on an invoice. Coupa refusing a field by name (it is not defined on
/// invoice headers, or under another name) is the instance's setup, not this invoice: the pass
/// stops with one error that says so, instead of leaving every invoice with it.
async fn set_custom_fields(
    client: &Client,
    id: InvoiceId,
    fields: &[(&str, Value)],
) -> Result<(), StepFailure> {
    match client.invoices().set_custom_fields(id, fields).await {
        Ok(_) => Ok(()),
        Err(e) if e.class() == coupa_api::ErrorClass::Permanent => {
            let said = e.reason().to_lowercase();
            let named = fields
                .iter()
                .map(|(f, _)| *f)
                .find(|f| said.contains(&f.to_lowercase()) || said.contains(&f.replace('-', "_")));
            match named {
                Some(field) => Err(StepFailure::Setup(format!(
                    "Coupa refused the invoice custom field '{field}' ({}): define it under \
                     Setup > Custom Fields > Invoice Header, or name the existing field in \
                     [invoices] (erp_number_field, status_field); `coupa-bridge doctor` checks it",
                    e.reason()
                ))),
                None => Err(e.into()),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// The invoice's Coupa status, as the journal keeps it.
pub(crate) fn status_of(inv: &Invoice) -> String {
    inv.status
        .as_ref()
        .map(|s| s.as_str().to_owned())
        .unwrap_or_default()
}

/// Where to resume the invoice's cycle: the journal's step and entry, if the journal holds an
/// unfinished cycle for the same Coupa status (an exported cycle, or one for another status,
/// means a new cycle).
pub(crate) fn resume(
    journal: Option<&crate::store::JournalEntry>,
    status: &str,
) -> Option<(String, Entry)> {
    let j = journal?;
    if j.step == step::EXPORTED {
        return None;
    }
    serde_json::from_str::<Entry>(&j.detail)
        .ok()
        .filter(|e| e.status == status)
        .map(|e| (j.step.clone(), e))
}

/// The ERP's answer to a posting, as the journal keeps it; `Err` is an outage.
fn post_outcome(answer: Result<PostOutcome, crate::erp::ErpError>) -> Result<ErpOutcome, String> {
    match answer {
        Ok(PostOutcome::Accepted {
            document_number,
            already_posted,
        }) => Ok(ErpOutcome::Posted {
            document_number,
            already_posted,
        }),
        Ok(PostOutcome::Rejected { reasons }) => Ok(ErpOutcome::Rejected { reasons }),
        Ok(PostOutcome::Pending) => Ok(awaiting_now()),
        Err(e) => Err(e.to_string()),
    }
}

fn awaiting_now() -> ErpOutcome {
    ErpOutcome::Awaiting {
        since: Utc::now(),
        alerted: false,
    }
}

/// Adds one invoice's outcome to the pass report.
fn count(report: &mut PassReport, id: Option<i64>, done: Done) {
    report.listed += 1;
    match done {
        Done::Exported(outcome) => {
            report.exported += 1;
            match outcome {
                ErpOutcome::Rejected { reasons } => {
                    report
                        .rejected
                        .push((id.unwrap_or_default(), reasons.join("; ")));
                }
                ErpOutcome::Cancelled { .. } | ErpOutcome::NothingToCancel => {
                    report.cancelled += 1;
                }
                ErpOutcome::Posted { .. } => report.posted += 1,
                // Never exported while awaiting (`one` returns `Done::Awaiting`).
                ErpOutcome::Awaiting { .. } => {}
            }
        }
        Done::Awaiting(overdue) => {
            report.awaiting += 1;
            if let Some(why) = overdue {
                report.overdue.push((id.unwrap_or_default(), why));
            }
        }
        Done::Transient(why) => report.transient.push((id.unwrap_or_default(), why)),
        Done::Unreadable(why) => report.unreadable.push(why),
    }
}

/// `responses` of a history record or error: one per ERP reason.
fn responses(outcome: &ErpOutcome) -> Vec<(String, String)> {
    match outcome {
        ErpOutcome::Rejected { reasons } => reasons
            .iter()
            .map(|r| ("ERP-REJECTED".to_owned(), truncate(r, 1000)))
            .collect(),
        other => vec![(
            "Success".to_owned(),
            other
                .status_text()
                .trim_start_matches("Success: ")
                .to_owned(),
        )],
    }
}

fn json(entry: &Entry) -> String {
    // An Entry is plain data; serialising it cannot fail.
    serde_json::to_string(entry).unwrap_or_default()
}

fn transient_or_fatal(e: impl Into<StepFailure>) -> Result<Done, FlowError> {
    crate::flows::transient_or_fatal(e).map(Done::Transient)
}
