//! `coupa-bridge run`: the flows on their schedules, one pass of a flow at a time.

pub mod schedule;

use std::sync::Arc;

use tokio::sync::Notify;

use crate::flows::FlowName;

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
