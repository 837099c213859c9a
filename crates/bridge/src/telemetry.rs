//! The connector's metrics, rendered for Prometheus at `/metrics`.
//!
//! One registry per [`crate::connector::Connector`] (not a process-wide recorder), so tests can
//! run several connectors in one process and read each one's figures.

use std::time::Duration;

use coupa_api::observe::{Attempt, Observer};

use crate::flows::{FlowError, FlowName, PassReport};

/// Counters and histograms fed by the Coupa client (every attempt) and by each pass.
#[derive(Debug, Default)]
pub struct Metrics {}

impl Metrics {
    /// Counts a finished pass: its documents by outcome, its duration, a failure.
    pub fn pass_finished(
        &self,
        _flow: FlowName,
        _result: &Result<PassReport, FlowError>,
        _took: Duration,
    ) {
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        String::new()
    }
}

impl Observer for Metrics {
    fn attempt(&self, _attempt: &Attempt) {}
}
