//! Coupa Pay export (seed 002): payments Coupa Pay executed are booked in the ERP against the
//! invoices they settle, then marked exported in Coupa; status changes that happen after the
//! export are found again and applied to the ERP's row.
//!
//! A pass lists two things, both paged by id (skip-proof while the pass marks payments exported):
//! - **changes**: payments already exported whose `updated-at` is above the last pass's newest
//!   (less `overlap_secs`), whatever their status now, as Compass advises ("use updated-at to
//!   make sure all payment status change captured"). Only payments this connector exported are
//!   taken (the journal knows them); Coupa also lists payments other integrations exported.
//! - **new**: `exported=false` payments with a configured status, pay-to account type and
//!   issuing bank.
//!
//! Every payment goes through the same steps, each journaled before the next begins:
//! 1. **ERP** (`booked`): [`Erp::book_pay_payment`] upserts by Coupa payment id and compares
//!    before it writes, so the same version twice changes nothing and a newer one updates the
//!    row: never a second row. Details whose invoice the ERP cannot take are kept unapplied and
//!    reported; they do not hold the rest back. An ERP outage leaves the payment for next pass.
//! 2. **Record** (`recording`, `recorded`): one history record per new version in the pass's
//!    integration run, or an integration error with an alert to the contacts when details are
//!    unapplied; the records of earlier versions are resolved (see [`super::monitoring`]).
//! 3. **Acknowledge** (`done`): mark exported, last. Effect, then acknowledge.
//!
//! The watermark (the newest `updated-at` the changes listing saw) is saved in the state store,
//! and on the Coupa run as `max-updated-at`, only once every change listed reached the ERP, so a
//! change the ERP could not take yet is listed again. The first one is saved before the first
//! payment is ever exported (see `work`), so no later change can fall below it. The overlap re-lists a few payments each pass;
//! the ERP's comparison makes them no-ops. A payment Coupa sends that cannot be read (no status,
//! a detail without amount) is alerted once and left unexported: nothing is booked from half a
//! payment and nothing is lost.

use std::sync::Arc;

use chrono::{DateTime, FixedOffset, Utc};
use coupa_api::client::{NewIntegration, NewMonitoringRecord};
use coupa_api::observe::CallContext;
use coupa_api::paging::{Item, RecordError};
use coupa_api::query::{Fields, Query};
use coupa_api::wire::{Currency, PayPayment};
use coupa_api::{Client, ContactAlertType, IntegrationRunId, PayPaymentId};
use futures_util::StreamExt;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::erp::{Erp, ErpPayPayment, PayApplication, PayBookingChange};
use crate::failpoint;
use crate::flows::RunNote;
use crate::flows::monitoring::{self, RecordKind, Unresolved};
use crate::flows::{FlowError, Pass, PassReport, StepFailure, transient_or_fatal};
use crate::store::{JournalEntry, Store};

/// The flow's name in the state store, logs and metrics.
pub const FLOW: &str = "pay-payments";
const DOCUMENT_TYPE: &str = "CoupaPay::Payment";
/// The journal key of the watermark: the newest `updated-at` a completed pass saw.
const WATERMARK: &str = "watermark";

/// The flow's settings are the `[pay_payments]` section of the config.
pub use crate::config::PayPaymentsConfig as Settings;

pub(crate) mod step {
    pub const BOOKED: &str = "booked";
    pub const RECORDING: &str = "recording";
    pub const RECORDED: &str = "recorded";
    pub const DONE: &str = "done";
    /// Done, with details the ERP kept unapplied: looked at again each pass.
    pub const DONE_UNAPPLIED: &str = "done-unapplied";
    /// Coupa sent the payment in a form that cannot be booked; alerted once.
    pub const REFUSED: &str = "refused";
    pub const WATERMARK: &str = "updated-at";
}

pub(crate) const KEY_PREFIX: &str = "payment:";

pub(crate) fn key(id: PayPaymentId) -> String {
    format!("{KEY_PREFIX}{id}")
}

pub(crate) fn is_done(step: &str) -> bool {
    step == step::DONE || step == step::DONE_UNAPPLIED
}

/// `Entry::change` of the version that records details applied after the export.
const APPLIED_LATER: &str = "applied later";

/// The journal's record of one payment's current version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Entry {
    /// The Coupa status this version has: a new status is a new version.
    status: String,
    #[serde(default)]
    error_text: Option<String>,
    /// What booking it changed in the ERP: `inserted`, `updated from <status>`, `unchanged`.
    change: String,
    /// Details the ERP kept unapplied, with why.
    #[serde(default)]
    unapplied: Vec<String>,
    #[serde(default)]
    paid: Vec<String>,
    #[serde(default)]
    reopened: Vec<String>,
    /// Unresolved records that existed before this version's record was created.
    #[serde(default)]
    before: Vec<i64>,
    #[serde(default)]
    record: Option<i64>,
}

/// The fields the flow reads: what the ERP books, nothing else (the default payload embeds
/// accounts, partners, users and batches in full).
pub fn payment_fields() -> Fields {
    let currency = || Fields::new(["code", "decimals"]);
    Fields::new([
        "id",
        "status",
        "exported",
        "updated-at",
        "payment-identifier",
        "pay-from-total",
        "pay-to-total",
        "exchange-rate",
        "error-text",
    ])
    .nest("pay-from-currency", currency())
    .nest("pay-to-currency", currency())
    .nest("pay-to-account", Fields::new(["id", "type"]))
    .nest(
        "payee",
        Fields::new(["id", "name", "number", "login", "fullname"]),
    )
    .nest(
        "payment-details",
        Fields::new([
            "id",
            "source-transaction-type",
            "source-transaction-id",
            "source-transaction-reference",
            "transaction-total",
            "discount-total",
            "adjustment-total",
            "payment-total",
        ])
        .nest("currency", currency()),
    )
}

/// `amount` written with its currency's decimals (`20000` in USD is `20000.00`). Digits beyond
/// the currency's are kept, never rounded away.
pub fn with_decimals(amount: Decimal, currency: Option<&Currency>) -> Decimal {
    let Some(decimals) = currency.and_then(|c| c.decimals) else {
        return amount;
    };
    let mut scaled = amount;
    scaled.rescale(decimals);
    if scaled == amount { scaled } else { amount }
}

/// The ERP's view of a payment, or everything that keeps it from being booked.
pub fn to_erp(p: &PayPayment) -> Result<ErpPayPayment, Vec<String>> {
    let mut missing = Vec::new();
    let status = p.status.as_ref().map(|s| s.as_str().to_owned());
    if status.as_deref().is_none_or(str::is_empty) {
        missing.push("the payment has no status".to_owned());
    }
    if p.updated_at.is_none() {
        missing.push("the payment has no updated-at".to_owned());
    }
    let mut applications = Vec::with_capacity(p.payment_details.len());
    for (i, d) in p.payment_details.iter().enumerate() {
        let n = i + 1;
        let currency = d.currency.as_ref().or(p.pay_to_currency.as_ref());
        let Some(code) = currency.map(|c| c.code.trim()).filter(|c| !c.is_empty()) else {
            missing.push(format!("payment detail {n} has no currency"));
            continue;
        };
        let Some(amount) = d.payment_total else {
            missing.push(format!("payment detail {n} has no payment-total"));
            continue;
        };
        let discount = d.discount_total.unwrap_or_default();
        let adjustment = d.adjustment_total.unwrap_or_default();
        // payment-total = transaction-total - discount-total + adjustment-total
        let settled = d
            .transaction_total
            .unwrap_or(amount + discount - adjustment);
        applications.push(PayApplication {
            coupa_detail_id: d.id.map(|id| id.get()),
            source_type: d.source_transaction_type.clone(),
            coupa_invoice_id: d.source_transaction_id.map(|id| id.get()),
            invoice_number: d
                .source_transaction_reference
                .as_ref()
                .map(|n| n.as_str().trim().to_owned())
                .filter(|n| !n.is_empty()),
            amount: with_decimals(amount, currency),
            settled: with_decimals(settled, currency),
            discount: with_decimals(discount, currency),
            adjustment: with_decimals(adjustment, currency),
            currency: code.to_owned(),
        });
    }
    match (status, p.updated_at) {
        (Some(status), Some(updated)) if missing.is_empty() => Ok(ErpPayPayment {
            coupa_payment_id: p.id.get(),
            status,
            payment_identifier: p.payment_identifier.clone(),
            pay_from_total: p
                .pay_from_total
                .map(|t| with_decimals(t, p.pay_from_currency.as_ref())),
            pay_from_currency: p.pay_from_currency.as_ref().map(|c| c.code.clone()),
            pay_to_total: p
                .pay_to_total
                .map(|t| with_decimals(t, p.pay_to_currency.as_ref())),
            pay_to_currency: p.pay_to_currency.as_ref().map(|c| c.code.clone()),
            exchange_rate: p.exchange_rate,
            payee_name: p
                .payee
                .as_ref()
                .and_then(|payee| payee.display_name())
                .map(str::to_owned),
            pay_to_account_type: p
                .pay_to_account
                .as_ref()
                .and_then(|a| a.account_type.clone()),
            error_text: p.error_text.clone().filter(|t| !t.trim().is_empty()),
            coupa_updated_at: updated.with_timezone(&Utc),
            applications,
        }),
        _ => Err(missing),
    }
}

/// The flow's Integration in Coupa: each pass opens its run under it.
pub fn integration(settings: &Settings) -> NewIntegration {
    let code = &settings.integration_code;
    NewIntegration {
        name: format!("coupa-bridge: Coupa Pay payments to the ERP ({code})"),
        code: code.clone(),
        business_object: DOCUMENT_TYPE.into(),
        direction: "from_coupa".into(),
        end_system: "ERP".into(),
        end_system_type: "erp".into(),
        integration_type: Some("api".into()),
    }
}

/// One pass of the flow.
pub struct PayExport {
    client: Client,
    erp: Arc<dyn Erp>,
    store: Store,
    settings: Settings,
    /// Checked before each document: see [`Stop`](crate::flows::Stop).
    stop: crate::flows::Stop,
}

/// What became of one listed payment.
#[derive(Debug)]
enum Done {
    /// The ERP holds this version and Coupa knows it is exported.
    Booked {
        change: PayBookingChange,
        /// Marked exported by this pass.
        acknowledged: bool,
        problems: Vec<String>,
    },
    /// Nothing new: the ERP and the journal already had this version.
    Seen,
    /// Coupa sent a payment that cannot be booked: alerted, left unexported.
    Refused(String),
    /// Left for the next pass, with why.
    Transient(String),
    /// A record without an id: nothing can be done with it but report it.
    Unreadable(String),
    /// A stop was requested before it started: left as it is for the next pass.
    NotStarted,
}

/// What the pass found to do.
pub(crate) struct Work {
    /// Exported payments updated since the watermark, this connector's only.
    pub(crate) changed: Vec<Item<PayPayment>>,
    /// How many of those have a version the journal has not seen done (the rest are the
    /// overlap's re-lists, and the pass's own acknowledgements of the last pass).
    pub(crate) changed_versions: u64,
    /// How many `exported=false` payments there are now.
    pub(crate) new: u64,
    /// The newest `updated-at` the changes listing saw.
    pub(crate) newest: Option<DateTime<FixedOffset>>,
}

impl PayExport {
    pub fn new(client: Client, erp: Arc<dyn Erp>, store: Store, settings: Settings) -> Self {
        PayExport {
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

    /// Runs one pass. A fatal error (credentials, the state store) ends it early; the run is
    /// recorded either way.
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
        client
            .integrations()
            .ensure(&integration(&self.settings))
            .await?;
        let note = RunNote {
            store: &self.store,
            flow: FLOW,
            run,
        };
        note.close_orphan(client, &self.settings.integration_code)
            .await?;
        let watermark = self.watermark().await?;
        let mut work = self.find_work(client, watermark).await?;
        let total = work.changed_versions + work.new;
        // An idle pass leaves no trace in Coupa: a run is opened only when there is work.
        let coupa_run = if total > 0 {
            crate::flows::fail_orphan_runs(client, &self.settings.integration_code).await?;
            Some(
                note.open(client, &self.settings.integration_code, total as u64)
                    .await?,
            )
        } else {
            None
        };
        report.coupa_run = coupa_run.map(IntegrationRunId::get);
        let changed = std::mem::take(&mut work.changed);
        let mut result = self
            .work(
                client, run, coupa_run, changed, watermark, &mut work, report,
            )
            .await;
        if result.is_ok()
            && let Err(e) = self.recheck_unapplied(client, run, coupa_run, report).await
        {
            result = Err(e);
        }
        if let Some(id) = coupa_run {
            if let Ok(Some(at)) = &result
                && let Err(e) = client.runs().set_max_updated_at(id, *at).await
            {
                tracing::warn!(run = %id, error = %e, "could not note the watermark on the run");
            }
            let close = match &result {
                Ok(_) => client.runs().success(id).await,
                Err(_) => client.runs().fail(id).await,
            };
            // When closing fails the run stays open in Coupa; the next pass fails it.
            match close {
                Ok(_) => note.closed(id).await?,
                Err(e) => {
                    tracing::warn!(run = %id, error = %e, "could not close the integration run")
                }
            }
        }
        result.map(|_| ())
    }

    /// The newest `updated-at` of the last pass that left no change behind.
    pub(crate) async fn watermark(&self) -> Result<Option<DateTime<FixedOffset>>, FlowError> {
        let Some(entry) = self.store.journal_get(FLOW, WATERMARK).await? else {
            return Ok(None);
        };
        match DateTime::parse_from_rfc3339(&entry.detail) {
            Ok(at) => Ok(Some(at)),
            Err(e) => {
                // Only this flow writes it; an unreadable one is re-learnt, not fatal.
                tracing::warn!(value = %entry.detail, error = %e, "ignoring an unreadable watermark");
                Ok(None)
            }
        }
    }

    /// The configured filters that never change for a payment: account type and bank.
    fn scope(&self) -> Query {
        let s = &self.settings;
        let mut q = Query::new();
        if let Some(kind) = s.pay_to_account_type_filter() {
            q = q.eq(["pay_to_account", "type"], kind);
        }
        if let Some(bank) = s.issuing_bank.as_deref() {
            q = q.eq(["payment-partner", "issuing-bank"], bank);
        }
        q
    }

    pub(crate) fn new_payments(&self) -> Query {
        self.scope()
            .eq("exported", false)
            .is_in("status", self.settings.statuses.iter().map(String::as_str))
    }

    pub(crate) async fn find_work(
        &self,
        client: &Client,
        watermark: Option<DateTime<FixedOffset>>,
    ) -> Result<Work, FlowError> {
        let mut work = Work {
            changed: Vec::new(),
            changed_versions: 0,
            new: 0,
            newest: None,
        };
        if let Some(w) = watermark {
            let since = w - chrono::Duration::seconds(self.settings.overlap_secs as i64);
            let mut pager = client.pay_payments().list(
                self.scope()
                    .eq("exported", true)
                    .gt("updated-at", since)
                    .fields(payment_fields()),
            );
            while let Some(page) = pager.next_page().await? {
                note_newest(&mut work.newest, &page);
                let keys: Vec<String> = page
                    .iter()
                    .filter_map(item_id)
                    .map(|id| key(PayPaymentId(id)))
                    .collect();
                let known = self.store.journal_get_many(FLOW, &keys).await?;
                for item in page {
                    let Some(j) = item_id(&item).and_then(|id| known.get(&key(PayPaymentId(id))))
                    else {
                        continue;
                    };
                    if !(is_done(&j.step) && same_version(j, &item)) {
                        work.changed_versions += 1;
                    }
                    work.changed.push(item);
                }
            }
        }
        let mut ids = client
            .pay_payments()
            .list(self.new_payments().fields(Fields::new(["id"])));
        while let Some(page) = ids.next_page().await? {
            work.new += page.len() as u64;
        }
        Ok(work)
    }

    /// Works through the changes, then every new payment, a page at a time. Returns the
    /// watermark as it now stands.
    ///
    /// The watermark moves past the changes once every one of them reached the ERP. With no
    /// watermark yet (nothing exported before), one is saved before the first new payment is
    /// exported: any later change to a payment exported from then on has an `updated-at` after
    /// it. New payments never move it otherwise: a payment listed as new may have been updated
    /// after a change this pass did not list, and its own export mark is found by the next
    /// pass's changes listing anyway.
    #[allow(clippy::too_many_arguments)]
    async fn work(
        &self,
        client: &Client,
        run: i64,
        coupa_run: Option<IntegrationRunId>,
        changed: Vec<Item<PayPayment>>,
        watermark: Option<DateTime<FixedOffset>>,
        work: &mut Work,
        report: &mut PassReport,
    ) -> Result<Option<DateTime<FixedOffset>>, FlowError> {
        let mut saved = watermark;
        for chunk in chunks(changed, coupa_api::paging::MAX_PAGE as usize) {
            self.page(client, run, coupa_run, chunk, report).await?;
        }
        if report.stopped {
            return Ok(saved);
        }
        if report.transient.is_empty()
            && let Some(newest) = work.newest
            && saved.is_none_or(|w| newest > w)
        {
            self.save_watermark(run, newest).await?;
            saved = Some(newest);
        }
        if work.new == 0 {
            return Ok(saved);
        }
        let mut pager = client
            .pay_payments()
            .list(self.new_payments().fields(payment_fields()));
        while let Some(page) = pager.next_page().await? {
            if saved.is_none() {
                let mut first = None;
                note_newest(&mut first, &page);
                if let Some(at) = first {
                    self.save_watermark(run, at).await?;
                    saved = Some(at);
                }
            }
            self.page(client, run, coupa_run, page, report).await?;
            if self.stop.requested() {
                report.stopped = true;
                break;
            }
        }
        Ok(saved)
    }

    async fn save_watermark(&self, run: i64, at: DateTime<FixedOffset>) -> Result<(), FlowError> {
        self.store
            .journal_put(
                FLOW,
                WATERMARK,
                step::WATERMARK,
                &at.to_rfc3339(),
                Some(run),
            )
            .await?;
        failpoint::hit("pay-watermark");
        Ok(())
    }

    async fn page(
        &self,
        client: &Client,
        run: i64,
        coupa_run: Option<IntegrationRunId>,
        page: Vec<Item<PayPayment>>,
        report: &mut PassReport,
    ) -> Result<(), FlowError> {
        let keys: Vec<String> = page
            .iter()
            .filter_map(item_id)
            .map(|id| key(PayPaymentId(id)))
            .collect();
        let journal = self.store.journal_get_many(FLOW, &keys).await?;
        // The records of the payments that may get a new one (not those the journal shows as
        // done with the status Coupa lists now): one listing per kind for the page.
        let maybe_new: Vec<i64> = page
            .iter()
            .filter_map(|item| {
                let id = item_id(item)?;
                let seen = journal
                    .get(&key(PayPaymentId(id)))
                    .is_some_and(|j| is_done(&j.step) && same_version(j, item));
                (!seen).then_some(id)
            })
            .collect();
        let unresolved = monitoring::unresolved(client, DOCUMENT_TYPE, &maybe_new, true).await?;
        let results: Vec<(Option<i64>, Result<Done, FlowError>)> = futures_util::stream::iter(page)
            .map(|item| {
                let id = item_id(&item);
                let open = id.map(|i| unresolved.get(&i).cloned().unwrap_or_default());
                let open = open.filter(|_| id.is_some_and(|i| maybe_new.contains(&i)));
                let entry = id.and_then(|i| journal.get(&key(PayPaymentId(i))).cloned());
                async move {
                    // Checked as each payment starts: one already started runs to its end.
                    if self.stop.requested() {
                        return (id, Ok(Done::NotStarted));
                    }
                    (
                        id,
                        self.one(client, run, coupa_run, item, open, entry).await,
                    )
                }
            })
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;
        for (id, done) in results {
            let id = id.unwrap_or_default();
            match done? {
                Done::Booked {
                    change,
                    acknowledged,
                    problems,
                } => {
                    report.listed += 1;
                    match change {
                        PayBookingChange::Inserted => report.posted += 1,
                        PayBookingChange::Updated { .. } => report.updated += 1,
                        PayBookingChange::Unchanged => {}
                    }
                    if acknowledged {
                        report.exported += 1;
                    }
                    if !problems.is_empty() {
                        report.rejected.push((id, problems.join("; ")));
                    }
                }
                Done::Seen => {}
                Done::NotStarted => report.stopped = true,
                Done::Refused(why) => {
                    report.listed += 1;
                    report.rejected.push((id, why));
                }
                Done::Transient(why) => {
                    report.listed += 1;
                    report.transient.push((id, why));
                }
                Done::Unreadable(why) => {
                    report.listed += 1;
                    report.unreadable.push(why);
                }
            }
        }
        Ok(())
    }

    /// One payment, start to end of its current version. `open` is its unresolved records when
    /// the page listed them (else they are listed here if a record is needed).
    async fn one(
        &self,
        client: &Client,
        run: i64,
        coupa_run: Option<IntegrationRunId>,
        item: Item<PayPayment>,
        open: Option<Unresolved>,
        journal: Option<JournalEntry>,
    ) -> Result<Done, FlowError> {
        let (id, payment) = match item {
            Ok(p) => (p.id, Ok(p)),
            Err(RecordError {
                id: Some(id),
                error,
            }) => (PayPaymentId(id), Err(format!("could not read it: {error}"))),
            Err(e) => return Ok(Done::Unreadable(e.to_string())),
        };
        let client = client.with_context(CallContext {
            flow: FLOW.into(),
            run: Some(run),
            document: Some(key(id)),
        });
        let k = key(id);
        let exported = payment.as_ref().is_ok_and(|p| p.exported == Some(true));
        let booking = payment
            .and_then(|p| to_erp(&p).map_err(|m| format!("it cannot be booked: {}", m.join("; "))));
        let booking = match booking {
            Ok(b) => b,
            Err(why) => {
                return self.refuse(&client, run, coupa_run, id, why, journal).await;
            }
        };
        let previous = journal.as_ref().and_then(|j| {
            serde_json::from_str::<Entry>(&j.detail)
                .ok()
                .map(|e| (j.step.clone(), e))
        });
        let answer = match self.erp.book_pay_payment(&booking).await {
            Ok(a) => a,
            Err(e) => return Ok(Done::Transient(e.to_string())),
        };
        failpoint::hit("pay-booked");
        let same_version = previous
            .filter(|(_, e)| e.status == booking.status && e.error_text == booking.error_text);
        let (stage, mut entry) = match (&answer.change, same_version) {
            // The ERP and the journal already know this version: resume where it stopped.
            (PayBookingChange::Unchanged, Some(resumed)) => resumed,
            (change, _) => {
                let entry = Entry {
                    status: booking.status.clone(),
                    error_text: booking.error_text.clone(),
                    change: match change {
                        PayBookingChange::Inserted => "inserted".to_owned(),
                        PayBookingChange::Updated { previous_status } => {
                            format!("updated from {previous_status}")
                        }
                        PayBookingChange::Unchanged => "unchanged".to_owned(),
                    },
                    unapplied: answer.unapplied.iter().map(|(_, r)| r.clone()).collect(),
                    paid: answer.paid.clone(),
                    reopened: answer.reopened.clone(),
                    before: Vec::new(),
                    record: None,
                };
                self.store
                    .journal_put(FLOW, &k, step::BOOKED, &json(&entry), Some(run))
                    .await?;
                (step::BOOKED.to_owned(), entry)
            }
        };
        if is_done(&stage) && exported {
            return Ok(Done::Seen);
        }
        if stage == step::BOOKED || stage == step::RECORDING {
            let open = match open {
                Some(o) => o,
                None => {
                    match monitoring::unresolved(&client, DOCUMENT_TYPE, &[id.get()], true).await {
                        Ok(mut map) => map.remove(&id.get()).unwrap_or_default(),
                        Err(e) => return transient(e),
                    }
                }
            };
            if let Err(e) = self
                .record(&client, run, coupa_run, id, &stage, &open, &mut entry)
                .await
            {
                return transient(e);
            }
        }
        let mut acknowledged = false;
        if !exported {
            match client.pay_payments().mark_exported(id).await {
                Ok(true) => acknowledged = true,
                Ok(false) => {
                    return Ok(Done::Transient(
                        "Coupa did not mark the payment exported".into(),
                    ));
                }
                Err(e) => return transient(e),
            }
            failpoint::hit("pay-exported");
        }
        self.store
            .journal_put(FLOW, &k, done_step(&entry), &json(&entry), Some(run))
            .await?;
        Ok(Done::Booked {
            change: answer.change,
            acknowledged,
            problems: entry.unapplied,
        })
    }

    /// Writes this version's record into Coupa: an integration error with an alert when the
    /// ERP left details unapplied, a history record otherwise.
    #[allow(clippy::too_many_arguments)]
    async fn record(
        &self,
        client: &Client,
        run: i64,
        coupa_run: Option<IntegrationRunId>,
        id: PayPaymentId,
        stage: &str,
        open: &Unresolved,
        entry: &mut Entry,
    ) -> Result<(), StepFailure> {
        let k = key(id);
        if stage == step::BOOKED {
            entry.before = open.all();
            self.store
                .journal_put(FLOW, &k, step::RECORDING, &json(entry), Some(run))
                .await?;
        }
        let problems = !entry.unapplied.is_empty();
        let record = NewMonitoringRecord {
            integration_code: self.settings.integration_code.clone(),
            run: coupa_run,
            document_type: DOCUMENT_TYPE.into(),
            document_id: Some(id.get()),
            document_status: Some(entry.status.clone()),
            contact_alert_type: if problems {
                ContactAlertType::Functional
            } else {
                ContactAlertType::Technical
            },
            status: Some(if problems { "Error" } else { "Success" }.into()),
            external_id: None,
            responses: responses(entry),
        };
        let kind = if problems {
            RecordKind::ErrorAlert
        } else {
            RecordKind::History
        };
        let before = (stage == step::RECORDING).then_some(entry.before.as_slice());
        entry.record =
            Some(monitoring::replace_records(client, open, before, kind, &record).await?);
        failpoint::hit("pay-record-created");
        self.store
            .journal_put(FLOW, &k, step::RECORDED, &json(entry), Some(run))
            .await?;
        Ok(())
    }

    /// Payments exported with details the ERP could not apply, whose invoices have reached the
    /// ERP since (it applied the waiting details): each gets a history record saying so, which
    /// resolves its alert. One ERP query per pass; Coupa is called only for those resolved.
    async fn recheck_unapplied(
        &self,
        client: &Client,
        run: i64,
        coupa_run: Option<IntegrationRunId>,
        report: &mut PassReport,
    ) -> Result<(), FlowError> {
        let steps = [step::DONE_UNAPPLIED, step::RECORDING, step::RECORDED];
        let mut check = Vec::new();
        let mut due = Vec::new();
        for (k, j) in self.store.journal_at_steps(FLOW, &steps).await? {
            let Some(id) = k.strip_prefix(KEY_PREFIX).and_then(|n| n.parse().ok()) else {
                continue;
            };
            let Ok(entry) = serde_json::from_str::<Entry>(&j.detail) else {
                continue;
            };
            if j.step == step::DONE_UNAPPLIED {
                check.push((id, entry));
            } else if entry.change == APPLIED_LATER {
                // A crashed earlier recheck: resume it where it stopped.
                due.push((id, j.step, entry));
            }
        }
        if !check.is_empty() {
            let ids: Vec<i64> = check.iter().map(|(id, _)| *id).collect();
            let problems = match self.erp.pay_problems(&ids).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(error = %e, "could not look at unapplied Coupa Pay details");
                    return Ok(());
                }
            };
            for (id, entry) in check {
                if problems.get(&id).is_some_and(Vec::is_empty) {
                    let entry = Entry {
                        change: APPLIED_LATER.to_owned(),
                        unapplied: Vec::new(),
                        paid: Vec::new(),
                        reopened: Vec::new(),
                        before: Vec::new(),
                        record: None,
                        ..entry
                    };
                    due.push((id, step::BOOKED.to_owned(), entry));
                }
            }
        }
        if due.is_empty() {
            return Ok(());
        }
        let ids: Vec<i64> = due.iter().map(|(id, _, _)| *id).collect();
        let open = monitoring::unresolved(client, DOCUMENT_TYPE, &ids, true).await?;
        for (id, stage, mut entry) in due {
            let id = PayPaymentId(id);
            let client = client.with_context(CallContext {
                flow: FLOW.into(),
                run: Some(run),
                document: Some(key(id)),
            });
            if stage != step::RECORDED {
                let open = open.get(&id.get()).cloned().unwrap_or_default();
                if let Err(e) = self
                    .record(&client, run, coupa_run, id, &stage, &open, &mut entry)
                    .await
                {
                    report.transient.push((id.get(), transient_or_fatal(e)?));
                    continue;
                }
            }
            self.store
                .journal_put(FLOW, &key(id), step::DONE, &json(&entry), Some(run))
                .await?;
            report.updated += 1;
        }
        Ok(())
    }

    /// A payment Coupa sent that cannot be booked: one alert per reason, and it stays
    /// unexported so nothing is lost.
    async fn refuse(
        &self,
        client: &Client,
        run: i64,
        coupa_run: Option<IntegrationRunId>,
        id: PayPaymentId,
        why: String,
        journal: Option<JournalEntry>,
    ) -> Result<Done, FlowError> {
        let alerted = journal.is_some_and(|j| j.step == step::REFUSED && j.detail == why);
        if !alerted {
            let record = NewMonitoringRecord {
                integration_code: self.settings.integration_code.clone(),
                run: coupa_run,
                document_type: DOCUMENT_TYPE.into(),
                document_id: Some(id.get()),
                document_status: None,
                contact_alert_type: ContactAlertType::Technical,
                status: Some("Error".into()),
                external_id: None,
                responses: vec![("COUPA-PAYLOAD".into(), why.clone())],
            };
            if let Err(e) = client.integration_errors().create_alert(&record).await {
                return transient(e);
            }
            self.store
                .journal_put(FLOW, &key(id), step::REFUSED, &why, Some(run))
                .await?;
        }
        Ok(Done::Refused(why))
    }
}

/// `responses` of a payment's record: each unapplied detail, or what the booking did.
fn responses(entry: &Entry) -> Vec<(String, String)> {
    if !entry.unapplied.is_empty() {
        return entry
            .unapplied
            .iter()
            .map(|r| ("ERP-UNAPPLIED".to_owned(), r.clone()))
            .collect();
    }
    let mut text = match entry.change.as_str() {
        "inserted" => format!("booked in the ERP as {}", entry.status),
        APPLIED_LATER => "every detail is now applied to its invoice in the ERP".to_owned(),
        "unchanged" => format!("already in the ERP as {}", entry.status),
        other => format!("ERP booking {other} to {}", entry.status),
    };
    if !entry.paid.is_empty() {
        text.push_str(&format!("; paid: {}", entry.paid.join(", ")));
    }
    if !entry.reopened.is_empty() {
        text.push_str(&format!("; open again: {}", entry.reopened.join(", ")));
    }
    vec![("Success".to_owned(), text)]
}

fn done_step(entry: &Entry) -> &'static str {
    if entry.unapplied.is_empty() {
        step::DONE
    } else {
        step::DONE_UNAPPLIED
    }
}

pub(crate) fn item_id(item: &Item<PayPayment>) -> Option<i64> {
    match item {
        Ok(p) => Some(p.id.get()),
        Err(e) => e.id,
    }
}

/// Whether the journal's version is the one Coupa lists now.
pub(crate) fn same_version(j: &JournalEntry, item: &Item<PayPayment>) -> bool {
    let Ok(p) = item else { return false };
    serde_json::from_str::<Entry>(&j.detail).is_ok_and(|e| {
        p.status.as_ref().map(|s| s.as_str()) == Some(e.status.as_str())
            && p.error_text.clone().filter(|t| !t.trim().is_empty()) == e.error_text
    })
}

fn note_newest(newest: &mut Option<DateTime<FixedOffset>>, page: &[Item<PayPayment>]) {
    for p in page.iter().flatten() {
        if let Some(at) = p.updated_at
            && newest.is_none_or(|n| at > n)
        {
            *newest = Some(at);
        }
    }
}

fn chunks<T>(items: Vec<T>, size: usize) -> Vec<Vec<T>> {
    let mut out = Vec::new();
    let mut it = items.into_iter().peekable();
    while it.peek().is_some() {
        out.push(it.by_ref().take(size).collect());
    }
    out
}

fn transient(e: impl Into<StepFailure>) -> Result<Done, FlowError> {
    transient_or_fatal(e).map(Done::Transient)
}

fn json(entry: &Entry) -> String {
    // An Entry is plain data; serialising it cannot fail.
    serde_json::to_string(entry).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;

    fn usd(decimals: Option<u32>) -> Currency {
        Currency {
            id: None,
            code: "USD".into(),
            decimals,
        }
    }

    #[test]
    fn amounts_take_their_currency_decimals_without_rounding() {
        let d = |s: &str| Decimal::from_str(s).expect("decimal literal");
        assert_eq!(
            with_decimals(d("20000"), Some(&usd(Some(2)))).to_string(),
            "20000.00"
        );
        assert_eq!(
            with_decimals(d("1500.000"), Some(&usd(Some(0)))).to_string(),
            "1500"
        );
        // Digits the currency does not have are kept, not rounded away.
        assert_eq!(
            with_decimals(d("10.125"), Some(&usd(Some(2)))).to_string(),
            "10.125"
        );
        assert_eq!(
            with_decimals(d("10.1"), Some(&usd(None))).to_string(),
            "10.1"
        );
        assert_eq!(with_decimals(d("10.1"), None).to_string(), "10.1");
    }

    #[test]
    fn chunks_keep_order_and_size() {
        let c = chunks((1..=7).collect(), 3);
        assert_eq!(c, vec![vec![1, 2, 3], vec![4, 5, 6], vec![7]]);
        assert!(chunks(Vec::<i32>::new(), 3).is_empty());
    }
}
