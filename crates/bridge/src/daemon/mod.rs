//! `coupa-bridge run`: the flows on their schedules, one pass of a flow at a time.
//!
//! [`run`] is the daemon as a library call: the connector, the [`Triggers`] the web server
//! shares, the schedules and clock ([`DaemonOptions`]) and a shutdown signal, so `main`, the
//! tests and the demo start it the same way. The loop itself is in `runner.rs`; when a flow is
//! due is `schedule.rs`.

pub mod replica;
mod runner;
pub mod schedule;

use std::future::Future;
use std::sync::Arc;

use tokio::sync::Notify;

use crate::config::Config;
use crate::connector::Connector;
use crate::flows::FlowName;

pub use runner::{DaemonReport, PRUNE_EVERY};
use schedule::{Schedule, SharedClock, SystemClock};

/// What the daemon runs and when.
#[derive(Clone)]
pub struct DaemonOptions {
    /// The scheduled flows. A flow not listed still runs when triggered (the ERP's push, the
    /// dashboard's retry), never on its own.
    pub schedules: Vec<(FlowName, Schedule)>,
    pub clock: SharedClock,
    /// How long the API call log keeps a call; `None` keeps calls forever.
    pub retention: Option<chrono::Duration>,
}

impl DaemonOptions {
    /// The `[schedule]` and `[log]` sections on the wall clock. Flows whose schedule is empty are
    /// left out (triggers only), and so are disabled flows (a trigger finds them disabled).
    pub fn from_config(config: &Config) -> Result<DaemonOptions, String> {
        let mut schedules = Vec::new();
        for flow in FlowName::ALL {
            let (key, expression) = match flow {
                FlowName::Invoices => ("schedule.invoices", &config.schedule.invoices),
                FlowName::Payments => ("schedule.payments", &config.schedule.payments),
                FlowName::PayPayments => ("schedule.pay_payments", &config.schedule.pay_payments),
            };
            if expression.trim().is_empty() || !config.enabled(flow) {
                continue;
            }
            let schedule = Schedule::parse(expression).map_err(|e| format!("{key}: {e}"))?;
            schedules.push((flow, schedule));
        }
        let days = config.log.retention_days;
        Ok(DaemonOptions {
            schedules,
            clock: Arc::new(SystemClock),
            retention: (days > 0).then(|| chrono::Duration::days(i64::from(days))),
        })
    }
}

impl std::fmt::Debug for DaemonOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let schedules: Vec<(FlowName, &str)> = self
            .schedules
            .iter()
            .map(|(flow, s)| (*flow, s.expression()))
            .collect();
        f.debug_struct("DaemonOptions")
            .field("schedules", &schedules)
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

/// Runs the flows on their schedules and on triggers until `shutdown` resolves; then asks the
/// passes in flight to stop (they finish the documents in hand) and returns once every one has
/// ended. One pass of a flow at a time; different flows may overlap. A trigger that arrives
/// during a pass makes one more pass right after it; instants that fall due during a pass are
/// skipped, not piled up. With a retention, the call log is pruned at start and hourly.
pub async fn run(
    connector: Arc<Connector>,
    triggers: Triggers,
    options: DaemonOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> DaemonReport {
    runner::run(
        connector,
        triggers,
        options.schedules,
        options.clock,
        options.retention,
        shutdown,
    )
    .await
}

/// Asks the daemon to run a flow's pass now rather than at its next scheduled time: the ERP
/// pushed payments, a person pressed "retry". Triggers that arrive while a pass runs make one
/// more pass right after it. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Triggers {
    flows: Arc<[Notify; 3]>,
}

impl Triggers {
    pub fn trigger(&self, flow: FlowName) {
        self.slot(flow).notify_one();
    }

    /// Resolves at the next trigger of `flow` (at once when one is pending).
    pub async fn triggered(&self, flow: FlowName) {
        self.slot(flow).notified().await;
    }

    fn slot(&self, flow: FlowName) -> &Notify {
        &self.flows[match flow {
            FlowName::Invoices => 0,
            FlowName::Payments => 1,
            FlowName::PayPayments => 2,
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_leave_out_unscheduled_flows_and_read_the_retention() {
        let mut config = Config::default();
        config.schedule.payments = "  ".into();
        let options = DaemonOptions::from_config(&config).expect("defaults are valid");
        let flows: Vec<FlowName> = options.schedules.iter().map(|(f, _)| *f).collect();
        assert_eq!(flows, [FlowName::Invoices, FlowName::PayPayments]);
        assert_eq!(options.retention, Some(chrono::Duration::days(30)));

        config.log.retention_days = 0;
        config.schedule.invoices = "every hour".into();
        let e = DaemonOptions::from_config(&config).expect_err("bad cron");
        assert!(e.starts_with("schedule.invoices: "), "{e}");
        config.schedule.invoices = String::new();
        let options = DaemonOptions::from_config(&config).expect("valid");
        assert_eq!(options.retention, None);
        assert_eq!(options.schedules.len(), 1);
    }
}
