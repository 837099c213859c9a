//! The connector's flows: one module per flow, each a pass over the documents it moves.

pub mod invoice_export;
mod monitoring;
pub mod pay_export;
pub mod payment_push;
pub mod preview;

use coupa_api::client::NewIntegration;
use coupa_api::query::{Fields, Query};
use coupa_api::{Client, ErrorClass, IntegrationRunId};

use chrono::{DateTime, Utc};
use coupa_api::observe::CallContext;

use crate::erp::ErpError;
use crate::store::{RunOutcome, Store, StoreError};

/// The three flows, by the name they carry in runs, the journal, logs and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FlowName {
    Invoices,
    Payments,
    PayPayments,
}

impl FlowName {
    /// In the order `sync all` runs them: invoices first, so the invoices a payment or a Coupa
    /// Pay payment settles are in the ERP.
    pub const ALL: [FlowName; 3] = [
        FlowName::Invoices,
        FlowName::Payments,
        FlowName::PayPayments,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            FlowName::Invoices => invoice_export::FLOW,
            FlowName::Payments => payment_push::FLOW,
            FlowName::PayPayments => pay_export::FLOW,
        }
    }

    pub fn parse(name: &str) -> Option<FlowName> {
        FlowName::ALL.into_iter().find(|f| f.as_str() == name)
    }

    /// Its section of the configuration.
    pub fn section(self) -> &'static str {
        match self {
            FlowName::Invoices => "invoices",
            FlowName::Payments => "payments",
            FlowName::PayPayments => "pay_payments",
        }
    }

    /// What a person calls it: "invoice export".
    pub fn title(self) -> &'static str {
        match self {
            FlowName::Invoices => "invoice export",
            FlowName::Payments => "payment push",
            FlowName::PayPayments => "Coupa Pay export",
        }
    }
}

impl std::fmt::Display for FlowName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Asks running passes to stop taking new documents: a pass that sees it finishes the documents
/// in hand (every step up to a final journal state), leaves the rest for the next pass, and ends
/// its run as usual. Cheap to clone; [`Stop::never`] for a pass nobody interrupts.
#[derive(Clone, Debug)]
pub struct Stop(tokio::sync::watch::Receiver<bool>);

/// The sending half of [`Stop`].
#[derive(Debug)]
pub struct StopHandle(tokio::sync::watch::Sender<bool>);

impl Stop {
    pub fn new() -> (StopHandle, Stop) {
        let (tx, rx) = tokio::sync::watch::channel(false);
        (StopHandle(tx), Stop(rx))
    }

    pub fn never() -> Stop {
        Stop::new().1
    }

    pub fn requested(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once a stop is requested (never, when the handle is gone without one).
    pub async fn wait(&self) {
        let mut rx = self.0.clone();
        if rx.wait_for(|stop| *stop).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

impl StopHandle {
    pub fn stop(&self) {
        self.0.send_replace(true);
    }

    pub fn subscribe(&self) -> Stop {
        Stop(self.0.subscribe())
    }
}

/// What stops a pass early: credentials, Coupa unreachable for the pass's own calls, the state
/// store. Per-document problems never do; they are counted in the [`PassReport`].
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("Coupa: {0}{fix}", fix = fix_for(.0))]
    Coupa(#[from] coupa_api::Error),
    #[error("state store: {0}")]
    Store(#[from] StoreError),
    #[error("ERP: {0}")]
    Erp(#[from] ErpError),
    /// SFTP refused for good (host key, credentials, configuration).
    #[error("SFTP: {0}")]
    Sftp(String),
    /// Something the flow needs is missing in Coupa (a custom field): one error for the pass,
    /// not one per document. `coupa-bridge doctor` checks the same things.
    #[error("Coupa is not set up for this flow: {0}")]
    Setup(String),
    /// The flow is switched off in the configuration.
    #[error("the {} is disabled ({}.enabled = false)", .0.title(), .0.section())]
    Disabled(FlowName),
}

/// The fix for the refusals a person must act on, after Coupa's own words: a token refused,
/// a scope missing. Every document would fail the same way, so the pass stops with this once.
fn fix_for(e: &coupa_api::Error) -> &'static str {
    match (&e.kind, e.status()) {
        (coupa_api::ErrorKind::Token(_), _) => {
            " (check coupa.client_id, the client secret and coupa.scopes against the OAuth2 \
             client under Setup > Integrations > OAuth2/OpenID Connect Clients; `coupa-bridge \
             doctor` tells which)"
        }
        (_, Some(403)) => {
            " (the OAuth2 client lacks a scope this flow needs: grant it under Setup > \
             Integrations > OAuth2/OpenID Connect Clients; `coupa-bridge doctor` lists each \
             flow's scopes)"
        }
        _ => "",
    }
}

/// What one pass did, for the summary, the exit code and the dashboard.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PassReport {
    pub flow: String,
    /// The connector's run id.
    pub run: i64,
    /// Coupa's integration run, under monitoring option 3.
    pub coupa_run: Option<i64>,
    pub listed: u64,
    /// Marked exported in Coupa: posted, cancelled or rejected and recorded.
    pub exported: u64,
    pub posted: u64,
    pub cancelled: u64,
    /// Documents the ERP already held and changed since (a Coupa Pay status change).
    pub updated: u64,
    /// Permanent rejections, recorded in Coupa: (document id, reasons).
    pub rejected: Vec<(i64, String)>,
    /// Left for the next pass: (document id, why).
    pub transient: Vec<(i64, String)>,
    /// Delivered to an ERP that answers later and not answered for yet (a normal state).
    pub awaiting: u64,
    /// Of those, the ones waiting longer than `invoices.answer_deadline_mins`: (document id,
    /// since when).
    pub overdue: Vec<(i64, String)>,
    /// Records that could not be read and carried no id: from Coupa, or payments the ERP sent
    /// (each naming its file and row, or page and item).
    pub unreadable: Vec<String>,
    /// The pass ended early because a stop was requested (shutdown): documents not started
    /// are left, untouched, for the next pass.
    pub stopped: bool,
    /// Coupa calls the pass made, retries and token requests included.
    pub api_calls: u64,
    pub seconds: f64,
}

impl PassReport {
    pub fn new(flow: &str, run: i64) -> Self {
        PassReport {
            flow: flow.into(),
            run,
            ..PassReport::default()
        }
    }

    /// Every listed document reached a final state (design.md: exit 0, else 1).
    pub fn complete(&self) -> bool {
        self.transient.is_empty()
            && self.unreadable.is_empty()
            && self.overdue.is_empty()
            && !self.stopped
    }

    /// Documents that ended well: handled, with nothing for a person to fix and nothing left
    /// for the next pass. The invoice and Coupa Pay flows acknowledge their rejections in Coupa
    /// too (so `exported` counts them), and a Coupa Pay status change is both `updated` and
    /// `exported`: counted from what was listed. The payment push's `exported` counts only the
    /// payments now on their invoices, including those a file of an earlier pass delivered.
    pub fn ok(&self) -> u64 {
        if self.flow == payment_push::FLOW {
            return self.exported;
        }
        self.listed.saturating_sub(
            (self.rejected.len() + self.transient.len() + self.unreadable.len()) as u64,
        )
    }

    /// The store's record of the pass: done documents are ok, permanent problems (rejected,
    /// unreadable) failed, documents left for the next pass skipped.
    pub fn outcome(&self, result: &Result<(), FlowError>) -> RunOutcome {
        RunOutcome {
            status: match (result, self.transient.is_empty()) {
                (Err(_), _) => "failed",
                (Ok(()), _) if self.stopped => "stopped",
                (Ok(()), true) => "succeeded",
                (Ok(()), false) => "partial",
            }
            .into(),
            documents_ok: self.ok(),
            documents_failed: (self.rejected.len() + self.unreadable.len()) as u64,
            documents_skipped: self.transient.len() as u64,
            api_calls: self.api_calls,
            error: result.as_ref().err().map(ToString::to_string),
        }
    }
}

/// The bookkeeping around every pass: a run in the state store, a client that counts the pass's
/// Coupa calls (and logs them under the run), and the report that ends the run.
pub(crate) struct Pass {
    pub client: Client,
    pub report: PassReport,
    started: DateTime<Utc>,
}

impl Pass {
    pub async fn begin(store: &Store, client: &Client, flow: &str) -> Result<Pass, FlowError> {
        let started = Utc::now();
        let run = store.start_run(flow).await?;
        let client = client.counted(CallContext {
            flow: flow.into(),
            run: Some(run),
            document: None,
        });
        Ok(Pass {
            client,
            report: PassReport::new(flow, run),
            started,
        })
    }

    /// The store's run id.
    pub fn run(&self) -> i64 {
        self.report.run
    }

    /// Records the pass's outcome on its run: every pass is recorded, failed ones too.
    pub async fn finish(
        mut self,
        store: &Store,
        result: Result<(), FlowError>,
    ) -> Result<PassReport, FlowError> {
        let report = &mut self.report;
        report.seconds = (Utc::now() - self.started).num_milliseconds().max(0) as f64 / 1000.0;
        report.api_calls = self.client.calls();
        store
            .finish_run(report.run, &report.outcome(&result))
            .await?;
        result.map(|()| self.report)
    }
}

/// A failure of one document's step, from Coupa or from the journal, or a gap in Coupa's
/// setup that every document would meet (it stops the pass).
pub(crate) enum StepFailure {
    Coupa(coupa_api::Error),
    Store(StoreError),
    Setup(String),
}

impl From<coupa_api::Error> for StepFailure {
    fn from(e: coupa_api::Error) -> Self {
        StepFailure::Coupa(e)
    }
}

impl From<StoreError> for StepFailure {
    fn from(e: StoreError) -> Self {
        StepFailure::Store(e)
    }
}

/// Failures that stop the whole pass (credentials, the state store) vs those that leave one
/// document for the next pass (outages, a refused write), with why to report.
pub(crate) fn transient_or_fatal(e: impl Into<StepFailure>) -> Result<String, FlowError> {
    match e.into() {
        StepFailure::Store(e) => Err(e.into()),
        StepFailure::Setup(why) => Err(FlowError::Setup(why)),
        StepFailure::Coupa(e) if e.class() == ErrorClass::Auth => Err(e.into()),
        StepFailure::Coupa(e) => Ok(e.to_string()),
    }
}

/// The Integrations the enabled flows of `config` file their runs, records and alerts under
/// (invoices only under monitoring options 2 and 3): what `doctor` checks and `doctor --fix`
/// creates, exactly as the flows would.
pub fn integrations(config: &crate::config::Config) -> Vec<(FlowName, NewIntegration)> {
    config
        .enabled_flows()
        .into_iter()
        .filter_map(|flow| {
            match flow {
                FlowName::Invoices => (config.invoices.monitoring
                    != crate::config::Monitoring::CustomFields)
                    .then(|| invoice_export::integration(&config.invoices)),
                FlowName::Payments => Some(payment_push::integration(&config.payments)),
                FlowName::PayPayments => Some(pay_export::integration(&config.pay_payments)),
            }
            .map(|i| (flow, i))
        })
        .collect()
}

/// A flow's Coupa integration run, noted in the journal (`coupa-run`) as it opens and closes, so
/// the next pass, busy or idle, closes the run a crashed pass left open.
pub(crate) struct RunNote<'a> {
    pub store: &'a Store,
    pub flow: &'static str,
    /// The store run the notes belong to.
    pub run: i64,
}

impl RunNote<'_> {
    const KEY: &'static str = "coupa-run";
    const OPENING: &'static str = "opening";
    const CLOSED: &'static str = "closed";

    async fn note(&self, step: &str, id: Option<IntegrationRunId>) -> Result<(), FlowError> {
        let detail = id.map(|i| i.to_string()).unwrap_or_default();
        self.store
            .journal_put(self.flow, Self::KEY, step, &detail, Some(self.run))
            .await?;
        Ok(())
    }

    /// Fails the run a crashed pass left open, if the journal says there is one.
    pub async fn close_orphan(&self, client: &Client, code: &str) -> Result<(), FlowError> {
        let Some(j) = self.store.journal_get(self.flow, Self::KEY).await? else {
            return Ok(());
        };
        if j.step == Self::CLOSED {
            return Ok(());
        }
        match j.detail.parse::<i64>() {
            Ok(id) => match client.runs().fail(IntegrationRunId(id)).await {
                Ok(_) => {}
                Err(e) if e.class() == ErrorClass::NotFound => {}
                Err(e) => return Err(e.into()),
            },
            // Crashed while creating it: find it by its integration.
            Err(_) => fail_orphan_runs(client, code).await?,
        }
        self.note(Self::CLOSED, None).await
    }

    /// Creates and starts a run of `code` with `total` documents, noted before and after.
    pub async fn open(
        &self,
        client: &Client,
        code: &str,
        total: u64,
    ) -> Result<IntegrationRunId, FlowError> {
        self.note(Self::OPENING, None).await?;
        let created = client.runs().create(code).await?;
        self.note(Self::OPENING, Some(created.id)).await?;
        client.runs().start(created.id, total).await?;
        Ok(created.id)
    }

    /// Notes that run `id` is closed in Coupa.
    pub async fn closed(&self, id: IntegrationRunId) -> Result<(), FlowError> {
        self.note(Self::CLOSED, Some(id)).await
    }
}

/// Fails the integration runs of `code` a crashed pass left open. One pass of a flow runs at a
/// time, so any open run of its integration is an orphan.
pub(crate) async fn fail_orphan_runs(client: &Client, code: &str) -> Result<(), FlowError> {
    let open = client
        .runs()
        .list(
            Query::new()
                .eq(["integration", "code"], code)
                .is_in("status", ["pending", "running"])
                .fields(Fields::new(["id", "status"])),
        )
        .collect_all()
        .await?;
    for run in open.into_iter().flatten() {
        tracing::info!(run = %run.id, "failing an integration run a crashed pass left open");
        client.runs().fail(run.id).await?;
    }
    Ok(())
}

/// The daemon spawns passes on the runtime, so their futures must be `Send` for any lifetime.
/// rustc loses that through some combinator chains (`stream::iter(..).map(..).buffer_unordered`
/// around borrowed data); this stops compiling when a change does it again.
#[cfg(test)]
#[allow(dead_code)]
fn passes_can_be_spawned(
    invoices: invoice_export::InvoiceExport,
    payments: payment_push::PaymentPush,
    pay_payments: pay_export::PayExport,
) {
    tokio::spawn(async move { invoices.run().await.map(|_| ()) });
    tokio::spawn(async move { pay_payments.run().await.map(|_| ()) });
    tokio::spawn(async move { payments.run().await.map(|_| ()) });
}
