//! [`Connector`]: everything a pass needs, built once from the configuration, and the one place
//! a pass of a flow is run, so `sync`, `run`, the dashboard's retry and the demo's server all
//! record, count and notify the same way.

use std::sync::Arc;

use anyhow::Context;
use coupa_api::Client;
use coupa_api::observe::Observer;

use crate::config::Config;
use crate::erp::sql::SqlErp;
use crate::erp::{Erp, Opened};
use crate::flows::invoice_export::InvoiceExport;
use crate::flows::pay_export::PayExport;
use crate::flows::payment_push::PaymentPush;
use crate::flows::{FlowError, FlowName, PassReport, Stop};
use crate::notify::Notifier;
use crate::store::Store;
use crate::store::call_log::{CallLog, CallLogHandle, CallLogStats};
use crate::telemetry::Metrics;

/// The configured Coupa client, ERP and state store, with the observers every pass reports to.
pub struct Connector {
    pub config: Arc<Config>,
    pub store: Store,
    /// The adapter `erp.kind` names: what the flows post to and read from.
    pub erp: Arc<dyn Erp>,
    /// Where payments from the ERP wait for Coupa (for `sql`, the ERP itself): the push
    /// endpoint, the dashboard and "retry" work on it.
    pub ledger: Arc<SqlErp>,
    /// Reports each attempt to the call log and to [`Connector::metrics`].
    pub client: Client,
    pub metrics: Arc<Metrics>,
    pub notifier: Notifier,
    call_log: CallLogHandle,
}

impl Connector {
    /// Opens the state store and the ERP adapter (migrating both) and builds the Coupa client.
    pub async fn open(config: Config) -> anyhow::Result<Connector> {
        let store = Store::connect(&config.state.url)
            .await
            .context("cannot open the state store")?;
        let erp = crate::erp::open(&config)
            .await
            .context("cannot open the ERP")?;
        Connector::with_erp(config, store, erp, config_client)
    }

    /// Like [`Connector::open`] with an existing store and the reference ERP, and the client's
    /// settings from `client_config` (the demo turns the rate governor off for its unthrottled
    /// simulator).
    pub fn with(
        config: Config,
        store: Store,
        erp: SqlErp,
        client_config: impl FnOnce(&Config) -> coupa_api::ClientConfig,
    ) -> anyhow::Result<Connector> {
        let ledger = Arc::new(erp);
        let erp = Opened {
            erp: ledger.clone(),
            ledger,
        };
        Connector::with_erp(config, store, erp, client_config)
    }

    /// Like [`Connector::with`] with any ERP adapter.
    pub fn with_erp(
        config: Config,
        store: Store,
        erp: Opened,
        client_config: impl FnOnce(&Config) -> coupa_api::ClientConfig,
    ) -> anyhow::Result<Connector> {
        let (call_log, call_log_task) = CallLog::spawn(store.clone());
        let metrics = Arc::new(Metrics::default());
        let observers: Vec<Arc<dyn Observer>> = vec![Arc::new(call_log), metrics.clone()];
        // Writes to Coupa check the lease first (a no-op unless a replica holds one).
        let client = Client::new(client_config(&config), Arc::new(observers))
            .context("Coupa client")?
            .with_write_gate(Arc::new(store.clone()));
        let notifier = Notifier::new(&config.notify, store.clone());
        Ok(Connector {
            config: Arc::new(config),
            store,
            erp: erp.erp,
            ledger: erp.ledger,
            client,
            metrics,
            notifier,
            call_log: call_log_task,
        })
    }

    /// One pass of `flow`: runs it, counts it in the metrics, tells the notifier. A pass that
    /// sees `stop` finishes its documents in hand and ends early.
    pub async fn pass(&self, flow: FlowName, stop: &Stop) -> Result<PassReport, FlowError> {
        if !self.config.enabled(flow) {
            return Err(FlowError::Disabled(flow));
        }
        let started = std::time::Instant::now();
        let erp = self.erp.clone();
        let config = &self.config;
        let result = match flow {
            FlowName::Invoices => {
                InvoiceExport::new(
                    self.client.clone(),
                    erp,
                    self.store.clone(),
                    config.invoices.clone(),
                )
                .with_stop(stop.clone())
                .run()
                .await
            }
            FlowName::Payments => {
                PaymentPush::new(
                    self.client.clone(),
                    erp,
                    self.store.clone(),
                    config.payments.clone(),
                )
                .with_stop(stop.clone())
                .run()
                .await
            }
            FlowName::PayPayments => {
                PayExport::new(
                    self.client.clone(),
                    erp,
                    self.store.clone(),
                    config.pay_payments.clone(),
                )
                .with_stop(stop.clone())
                .run()
                .await
            }
        };
        self.metrics.pass_finished(flow, &result, started.elapsed());
        self.notifier.after_pass(flow, &result).await;
        result
    }

    /// Writes the call log's queue out; call before the process ends.
    pub async fn close(self) -> CallLogStats {
        let Connector {
            client, call_log, ..
        } = self;
        drop(client);
        call_log.flush().await
    }
}

fn config_client(config: &Config) -> coupa_api::ClientConfig {
    config.coupa_client_config()
}
