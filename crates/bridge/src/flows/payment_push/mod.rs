//! Payment push (seeds 000 and 004): payments the ERP made, onto their Coupa invoices, by API
//! or by CSV over SFTP (`[payments] transport`).
//!
//! A pass reads the ERP's pending payments a batch at a time, in id order, and for each batch:
//!
//! 1. **Match** ([`matching`]): one lookup per 50 invoice numbers
//!    (`invoice-number[in]=...&status=approved`, with the invoices' suppliers and payments),
//!    then each payment to exactly one approved invoice of its supplier, or failed with why.
//! 2. **Compare**: payments already on the invoice (same amount, date, check number) are synced
//!    without a write; this is what makes a retry or a crash harmless.
//! 3. **Write**: [`api`] puts all new payments of an invoice in one PUT; [`files`] writes them
//!    into payment files and follows the files to Coupa's loader results.
//! 4. **Tell**: failures go to the Integration's contacts (an integration error with an alert,
//!    in an integration run opened only for passes with failures), then every outcome is written
//!    to the ERP. A crash between the two alerts again; it never loses a failure.
//!
//! A pass with nothing pending costs one ERP query, one state-store query and no Coupa call.

mod api;
pub mod csv_file;
pub mod files;
pub mod matching;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use coupa_api::client::{NewIntegration, NewMonitoringRecord};
use coupa_api::observe::CallContext;
use coupa_api::query::{Fields, Query};
use coupa_api::wire::Invoice;
use coupa_api::{Client, ContactAlertType, ErrorClass, IntegrationRunId, InvoiceId};
use futures_util::StreamExt;

use crate::config::PaymentTransport;
use crate::erp::{Erp, ErpPayment, MalformedPayment, PaymentSync};
use crate::flows::RunNote;
use crate::flows::{FlowError, PassReport};
use crate::sftp::SftpTarget;
use crate::store::Store;
use files::{FileEntry, Files};

/// The flow's name in the state store, logs and metrics.
pub const FLOW: &str = "payments";
const DOCUMENT_TYPE: &str = "InvoiceHeader";
/// Invoice numbers per lookup: one page of answers when each has one invoice.
const NUMBERS_PER_LOOKUP: usize = 50;
/// ERP rows per batch: one lookup's worth (API), so a crash costs at most one batch of
/// re-comparison; one full file (CSV).
pub(crate) const API_BATCH: usize = NUMBERS_PER_LOOKUP;
pub(crate) const CSV_BATCH: usize = csv_file::MAX_ROWS;
/// The journal key of the flow's current Coupa run, and its steps.
/// Coupa's `response-message` is text; long reasons are cut for the alert.
const REASON_MAX: usize = 1_000;

/// The flow's settings are the `[payments]` section of the config.
pub use crate::config::PaymentsConfig as Settings;

/// What happened to a set of payments, gathered before it is written to the ERP.
#[derive(Debug, Default)]
pub struct Outcomes {
    /// Final outcomes, by ERP payment id.
    pub settled: Vec<(i64, PaymentSync)>,
    /// Payments this pass added to Coupa.
    pub added: u64,
    /// Left pending for the next pass: (ERP payment id, why).
    pub transient: Vec<(i64, String)>,
    /// ERP references of the payments, for the alerts.
    pub refs: HashMap<i64, String>,
    /// Payment files whose rows `settled` answers: marked settled once the ERP has them.
    pub files_done: Vec<FileEntry>,
    /// Credentials refused: the pass stops after writing what it has.
    pub fatal: Option<FlowError>,
}

impl Outcomes {
    fn fail(&mut self, id: i64, reason: String, invoice: Option<i64>) {
        self.settled.push((
            id,
            PaymentSync::Failed {
                reason,
                coupa_invoice_id: invoice,
            },
        ));
    }

    fn merge(&mut self, other: Outcomes) {
        self.settled.extend(other.settled);
        self.added += other.added;
        self.transient.extend(other.transient);
        self.refs.extend(other.refs);
        self.files_done.extend(other.files_done);
        if self.fatal.is_none() {
            self.fatal = other.fatal;
        }
    }
}

/// The fields a lookup reads: enough to match and to compare payments.
pub fn lookup_fields() -> Fields {
    Fields::new(["id", "invoice-number", "status", "paid"])
        .nest("supplier", Fields::new(["id", "name", "number"]))
        .nest("currency", Fields::new(["code"]))
        .nest(
            "payments",
            Fields::new(["id", "amount-paid", "notes", "payment-date"]),
        )
}

/// The flow's Integration in Coupa: failures are reported to its contacts.
pub fn integration(settings: &Settings) -> NewIntegration {
    let code = &settings.integration_code;
    NewIntegration {
        name: format!("coupa-bridge: ERP payments to Coupa ({code})"),
        code: code.clone(),
        business_object: DOCUMENT_TYPE.into(),
        direction: "to_coupa".into(),
        end_system: "ERP".into(),
        end_system_type: "erp".into(),
        integration_type: Some(
            match settings.transport {
                PaymentTransport::Api => "api",
                PaymentTransport::Csv => "flat_file",
            }
            .into(),
        ),
    }
}

/// One pass of the flow.
pub struct PaymentPush {
    client: Client,
    erp: Arc<dyn Erp>,
    store: Store,
    settings: Settings,
    /// Checked before each document: see [`Stop`](crate::flows::Stop).
    stop: crate::flows::Stop,
}

impl PaymentPush {
    pub fn new(client: Client, erp: Arc<dyn Erp>, store: Store, settings: Settings) -> Self {
        PaymentPush {
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

    /// The pass's own invoice lookup, which only reads: for `sync --dry-run`.
    pub(crate) async fn lookup(
        &self,
        numbers: BTreeSet<String>,
    ) -> Result<(HashMap<String, Vec<Invoice>>, HashMap<String, String>), FlowError> {
        self.bystander().candidates(numbers).await
    }

    /// The pass's own CSV rows for matched payments (pure): for `sync --dry-run`.
    pub(crate) fn csv_rows(
        &self,
        per_invoice: BTreeMap<i64, (Invoice, Vec<ErpPayment>)>,
        out: &mut Outcomes,
    ) -> Vec<csv_file::Row> {
        self.bystander().csv_rows(per_invoice, out)
    }

    /// A pass that has started nothing (no run), for the read-only helpers above.
    fn bystander(&self) -> Pass<'_> {
        Pass {
            flow: self,
            client: &self.client,
            run: 0,
            coupa_run: None,
            alerting_failed: false,
        }
    }

    /// Runs one pass. A pass that finds nothing to do records no run (its report's `run` is 0)
    /// and makes no Coupa call.
    pub async fn run(&self) -> Result<PassReport, FlowError> {
        let open = self
            .store
            .journal_at_steps(FLOW, &files::step::OPEN)
            .await?;
        // Payments the ERP made since the last pass, into the ledger first (an HTTP feed,
        // payment files). An ERP that cannot be read holds nothing back: what the ledger holds
        // is still pushed, and the problem is reported as documents waiting.
        let (refused, unreachable) = match self.erp.receive_payments().await {
            Ok(received) => (received.refused, None),
            Err(e) => (
                Vec::new(),
                Some(format!("reading the ERP's new payments: {e}")),
            ),
        };
        if open.is_empty() && self.erp.pending_payments(0, 1).await?.is_empty() {
            let mut report = PassReport::new(FLOW, 0);
            report.unreadable = refused;
            report.transient.extend(unreachable.map(|why| (0, why)));
            return Ok(report);
        }
        let mut bookkeeping = crate::flows::Pass::begin(&self.store, &self.client, FLOW).await?;
        bookkeeping.report.unreadable = refused;
        bookkeeping
            .report
            .transient
            .extend(unreachable.map(|why| (0, why)));
        let run = bookkeeping.run();
        let client = bookkeeping.client.clone();
        let mut pass = Pass {
            flow: self,
            client: &client,
            run,
            coupa_run: None,
            alerting_failed: false,
        };
        let code = self.settings.integration_code.clone();
        let result = match pass.run_note().close_orphan(&client, &code).await {
            Ok(()) => pass.all(&mut bookkeeping.report).await,
            Err(e) => Err(e),
        };
        if let Some(id) = pass.coupa_run {
            match client.runs().success(id).await {
                Ok(_) => pass.run_note().closed(id).await?,
                // Left open in Coupa; the next pass closes it.
                Err(e) => {
                    tracing::warn!(run = %id, error = %e, "could not close the integration run")
                }
            }
        }
        bookkeeping.finish(&self.store, result).await
    }
}

/// The state of one pass.
struct Pass<'a> {
    flow: &'a PaymentPush,
    client: &'a Client,
    run: i64,
    /// The integration run failures are filed under, opened at the first failure.
    coupa_run: Option<IntegrationRunId>,
    /// Alerting failed once this pass: do not try for every payment.
    alerting_failed: bool,
}

impl Pass<'_> {
    fn settings(&self) -> &Settings {
        &self.flow.settings
    }

    fn files(&self, sftp: Option<&SftpTarget>, wait: Duration) -> Files {
        Files {
            client: self.client.clone(),
            store: self.flow.store.clone(),
            sftp: sftp.cloned(),
            incoming_dir: self.settings().sftp.incoming_dir.clone(),
            run: self.run,
            wait,
            stop: self.flow.stop.clone(),
        }
    }

    async fn all(&mut self, report: &mut PassReport) -> Result<(), FlowError> {
        let csv = self.settings().transport == PaymentTransport::Csv;
        let sftp = if csv {
            Some(SftpTarget::from_config(&self.settings().sftp).map_err(FlowError::Sftp)?)
        } else {
            SftpTarget::from_config(&self.settings().sftp).ok()
        };
        // Files earlier passes left: settle what Coupa answered, free what never arrived. What
        // is still awaited is followed again at the end of the pass, and reported then.
        let mut earlier = self.files(sftp.as_ref(), Duration::ZERO).follow().await?;
        earlier.transient.clear();
        self.finish(earlier, report).await?;

        let in_flight = Files::in_flight(&self.flow.store).await?;
        let batch_size = if csv { CSV_BATCH } else { API_BATCH };
        let mut after = 0;
        loop {
            let rows = self.flow.erp.pending_payments(after, batch_size).await?;
            let Some(last) = rows.last() else { break };
            after = match last {
                Ok(p) => p.id,
                Err(m) => m.id,
            };
            let rows: Vec<_> = rows
                .into_iter()
                .filter(|r| !in_flight.contains(&row_id(r)))
                .collect();
            report.listed += rows.len() as u64;
            let out = self.batch(rows, sftp.as_ref()).await?;
            self.finish(out, report).await?;
            // Between batches: a batch started is written and settled in full.
            if self.flow.stop.requested() {
                report.stopped = true;
                break;
            }
        }
        let wait = if csv {
            Duration::from_secs(self.settings().sftp.result_timeout_secs)
        } else {
            Duration::ZERO
        };
        let answered = self.files(sftp.as_ref(), wait).follow().await?;
        self.finish(answered, report).await?;
        Ok(())
    }

    /// Matches, compares and writes (API) or uploads (CSV) one batch of ERP rows.
    async fn batch(
        &mut self,
        rows: Vec<Result<ErpPayment, MalformedPayment>>,
        sftp: Option<&SftpTarget>,
    ) -> Result<Outcomes, FlowError> {
        let mut out = Outcomes::default();
        let mut good = Vec::with_capacity(rows.len());
        for row in rows {
            match row {
                Ok(p) => {
                    out.refs.insert(p.id, p.payment_ref.clone());
                    match matching::check_limits(&p) {
                        Ok(()) => good.push(p),
                        Err(why) => out.fail(p.id, why, None),
                    }
                }
                Err(m) => {
                    out.refs.insert(m.id, m.payment_ref.clone());
                    out.fail(
                        m.id,
                        format!("the ERP row is malformed: {}", m.reason),
                        None,
                    );
                }
            }
        }
        let numbers: BTreeSet<String> = good
            .iter()
            .map(|p| p.invoice_number.trim().to_owned())
            .collect();
        let (candidates, lookup_failed) = self.candidates(numbers).await?;
        let placed = matching::place(good, &candidates, &lookup_failed);
        for (p, why) in placed.later {
            out.transient.push((p.id, why));
        }
        for (p, why) in placed.failed {
            out.fail(p.id, why, None);
        }
        let per_invoice = placed.per_invoice;
        // Payment writes are not journaled one by one (Coupa's invoice is compared instead), so
        // the lease is checked here, after the comparison's read and before any write.
        self.flow.store.check_lease().await?;
        match sftp {
            Some(target) if self.settings().transport == PaymentTransport::Csv => {
                let rows = self.csv_rows(per_invoice, &mut out);
                let files = csv_file::files(rows);
                self.files(Some(target), Duration::ZERO)
                    .upload(files)
                    .await?;
            }
            _ => out.merge(self.write_all(per_invoice).await),
        }
        Ok(out)
    }

    /// API: one PUT per invoice, a few invoices at a time.
    async fn write_all(&self, per_invoice: BTreeMap<i64, (Invoice, Vec<ErpPayment>)>) -> Outcomes {
        let results: Vec<Outcomes> = futures_util::stream::iter(per_invoice)
            .map(|(id, (inv, payments))| async move {
                let client = self.client.with_context(CallContext {
                    flow: FLOW.into(),
                    run: Some(self.run),
                    document: Some(format!("invoice:{id}")),
                });
                api::write(&client, InvoiceId(id), matching::plan(&inv, payments)).await
            })
            .buffer_unordered(self.settings().concurrency.max(1))
            .collect()
            .await;
        let mut out = Outcomes::default();
        for r in results {
            out.merge(r);
        }
        out
    }

    /// CSV: the rows to upload; payments Coupa has already, and repeats, are settled here.
    fn csv_rows(
        &self,
        per_invoice: BTreeMap<i64, (Invoice, Vec<ErpPayment>)>,
        out: &mut Outcomes,
    ) -> Vec<csv_file::Row> {
        let mut rows = Vec::new();
        for (id, (inv, payments)) in per_invoice {
            let plan = matching::plan(&inv, payments);
            let paid_by = plan.paid.as_ref().map(|m| (m.payment_id, m.note.clone()));
            let note_for = |pid: i64| {
                paid_by
                    .as_ref()
                    .filter(|(p, _)| *p == pid)
                    .map(|(_, n)| n.clone())
            };
            for p in plan.already {
                match note_for(p.id) {
                    // On the invoice already, but the paid-in-full mark is not: a header row.
                    Some(note) => rows.push(csv_file::Row {
                        payment: p,
                        invoice_id: id,
                        add: false,
                        paid_note: Some(note),
                    }),
                    None => out.settled.push((
                        p.id,
                        PaymentSync::Synced {
                            coupa_invoice_id: id,
                        },
                    )),
                }
            }
            for (p, why) in plan.duplicates {
                out.fail(p.id, why, Some(id));
            }
            for p in plan.send {
                let paid_note = note_for(p.id);
                rows.push(csv_file::Row {
                    payment: p,
                    invoice_id: id,
                    add: true,
                    paid_note,
                });
            }
        }
        rows
    }

    /// The approved invoices carrying `numbers`, by number; and the numbers whose lookup
    /// failed, with why (their payments stay pending).
    async fn candidates(
        &self,
        numbers: BTreeSet<String>,
    ) -> Result<(HashMap<String, Vec<Invoice>>, HashMap<String, String>), FlowError> {
        let mut found: HashMap<String, Vec<Invoice>> = HashMap::new();
        let mut failed: HashMap<String, String> = HashMap::new();
        // Coupa's `[in]` splits on commas and trims: such numbers are looked up one by one.
        let (listable, single): (Vec<String>, Vec<String>) = numbers
            .into_iter()
            .partition(|n| !n.contains(',') && !n.is_empty());
        let mut groups: Vec<(Query, Vec<String>)> = listable
            .chunks(NUMBERS_PER_LOOKUP)
            .map(|chunk| {
                (
                    Query::new().is_in("invoice-number", chunk.iter().map(String::as_str)),
                    chunk.to_vec(),
                )
            })
            .collect();
        groups.extend(
            single
                .into_iter()
                .map(|n| (Query::new().eq("invoice-number", n.as_str()), vec![n])),
        );
        for (query, chunk) in groups {
            let query = query.eq("status", "approved").fields(lookup_fields());
            let why = match self.client.invoices().list(query).collect_all().await {
                Ok(items) => {
                    let mut unreadable = None;
                    for item in items {
                        match item {
                            Ok(inv) => {
                                let n = inv
                                    .invoice_number
                                    .as_ref()
                                    .map(|n| n.as_str().trim().to_owned())
                                    .unwrap_or_default();
                                found.entry(n).or_default().push(inv);
                            }
                            Err(e) => unreadable = Some(e.to_string()),
                        }
                    }
                    // An invoice that cannot be read might be the one a payment targets, or
                    // make its match ambiguous: match none of the chunk rather than guess.
                    unreadable.map(|e| format!("Coupa sent an invoice that could not be read: {e}"))
                }
                Err(e) if e.class() == ErrorClass::Auth => return Err(e.into()),
                Err(e) => Some(format!("looking up the invoices: {e}")),
            };
            if let Some(why) = why {
                for n in chunk {
                    found.remove(&n);
                    failed.insert(n, why.clone());
                }
            }
        }
        Ok((found, failed))
    }

    /// Alerts the failures, writes every outcome to the ERP, marks answered files settled and
    /// counts it all in the report.
    async fn finish(&mut self, out: Outcomes, report: &mut PassReport) -> Result<(), FlowError> {
        let failures: Vec<(i64, Option<i64>, String)> = out
            .settled
            .iter()
            .filter_map(|(id, s)| match s {
                PaymentSync::Failed {
                    reason,
                    coupa_invoice_id,
                } => Some((*id, *coupa_invoice_id, reason.clone())),
                PaymentSync::Synced { .. } => None,
            })
            .collect();
        for (id, invoice, reason) in &failures {
            let payment_ref = out.refs.get(id).map(String::as_str).unwrap_or("");
            tracing::warn!(payment = %payment_ref, invoice = ?invoice, %reason, "ERP payment failed");
            self.alert(payment_ref, *invoice, reason).await;
        }
        if !out.settled.is_empty() {
            self.flow.erp.settle_payments(&out.settled).await?;
            crate::failpoint::hit("payments-settled");
        }
        for entry in &out.files_done {
            // A FileEntry is plain data; serialising it cannot fail.
            let detail = serde_json::to_string(entry).unwrap_or_default();
            self.flow
                .store
                .journal_put(
                    FLOW,
                    &format!("file:{}", entry.name),
                    files::step::SETTLED,
                    &detail,
                    Some(self.run),
                )
                .await?;
        }
        report.posted += out.added;
        report.exported += (out.settled.len() - failures.len()) as u64;
        report
            .rejected
            .extend(failures.into_iter().map(|(id, _, why)| (id, why)));
        report.transient.extend(out.transient);
        match out.fatal {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Tells the Integration's contacts about one failed payment. Never fails the pass: a
    /// failing alert is logged, and the failure is in the ERP row either way.
    async fn alert(&mut self, payment_ref: &str, invoice: Option<i64>, reason: &str) {
        if self.alerting_failed {
            return;
        }
        let code = self.settings().integration_code.clone();
        let run = match self.coupa_run {
            Some(r) => r,
            None => match self.open_coupa_run(&code).await {
                Ok(r) => {
                    self.coupa_run = Some(r);
                    r
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot alert payment failures in Coupa");
                    self.alerting_failed = true;
                    return;
                }
            },
        };
        let record = NewMonitoringRecord {
            integration_code: code,
            run: Some(run),
            document_type: DOCUMENT_TYPE.into(),
            document_id: invoice,
            document_status: None,
            contact_alert_type: ContactAlertType::Functional,
            status: Some("Error".into()),
            external_id: Some(payment_ref.to_owned()),
            responses: vec![(
                "ERP-PAYMENT-FAILED".into(),
                reason.chars().take(REASON_MAX).collect(),
            )],
        };
        let client = self.client.with_context(CallContext {
            flow: FLOW.into(),
            run: Some(self.run),
            document: Some(format!("erp-payment:{payment_ref}")),
        });
        if let Err(e) = client.integration_errors().create_alert(&record).await {
            tracing::warn!(payment = %payment_ref, error = %e, "could not alert a payment failure in Coupa");
        }
    }

    fn run_note(&self) -> RunNote<'_> {
        RunNote {
            store: &self.flow.store,
            flow: FLOW,
            run: self.run,
        }
    }

    async fn open_coupa_run(&self, code: &str) -> Result<IntegrationRunId, FlowError> {
        self.client
            .integrations()
            .ensure(&integration(self.settings()))
            .await?;
        self.run_note().open(self.client, code, 0).await
    }
}

fn row_id(r: &Result<ErpPayment, MalformedPayment>) -> i64 {
    match r {
        Ok(p) => p.id,
        Err(m) => m.id,
    }
}
