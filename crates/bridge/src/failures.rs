//! The documents that need a person, across the flows, and "retry": what the dashboard's
//! failures page lists and what its button does.
//!
//! - invoices the ERP rejected (the journal's `exported` step with a rejection): retry sets the
//!   invoice's `exported` flag back to false in Coupa, so the next pass posts it again;
//! - ERP payments Coupa refused (`erp_payments.sync_status = 'failed'`): retry sets the row
//!   back to `pending`, so the next pass pushes it again;
//! - Coupa Pay payments the ERP could not apply in full or that Coupa sent unbookable
//!   (`done-unapplied`, `refused`): the flow looks at them on every pass anyway, so retry only
//!   asks for a pass now.
//!
//! The caller triggers the flow's pass after a retry (the daemon's [`crate::daemon::Triggers`]).

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use coupa_api::InvoiceId;
use coupa_api::observe::CallContext;
use serde::Deserialize;

use crate::connector::Connector;
use crate::flows::FlowName;
use crate::flows::invoice_export::ErpOutcome;

/// One document that needs a person.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    pub flow: FlowName,
    /// The journal key (`invoice:1042`, `payment:77`) or, for an ERP payment,
    /// `erp-payment:<payment_ref>`; what [`Connector::retry`] takes.
    pub key: String,
    /// What a person calls the document: `invoice 1042`, `ERP payment API-000012`.
    pub what: String,
    pub reason: String,
    pub at: DateTime<Utc>,
    /// The connector's run that recorded it, when known.
    pub run: Option<i64>,
}

const INVOICE: &str = "invoice:";
const PAY_PAYMENT: &str = "payment:";
const ERP_PAYMENT: &str = "erp-payment:";
/// The pay-payments journal steps that need a person (see `flows::pay_export`).
const PAY_STEPS: [&str; 2] = ["refused", "done-unapplied"];

/// The invoice journal's detail, as far as failures need it.
#[derive(Deserialize)]
struct InvoiceDetail {
    erp: ErpOutcome,
}

/// The Coupa Pay journal's detail of a `done-unapplied` payment.
#[derive(Deserialize)]
struct PayDetail {
    #[serde(default)]
    unapplied: Vec<String>,
}

impl Connector {
    /// Up to `limit` documents of each kind that need a person, newest first.
    pub async fn failures(&self, limit: usize) -> anyhow::Result<Vec<Failure>> {
        let mut out = Vec::new();
        let rejected = self
            .store
            .journal_find(
                FlowName::Invoices.as_str(),
                &["exported"],
                Some("\"outcome\":\"rejected\""),
                limit,
            )
            .await?;
        for (key, entry) in rejected {
            let reason = match serde_json::from_str::<InvoiceDetail>(&entry.detail) {
                Ok(InvoiceDetail {
                    erp: ErpOutcome::Rejected { reasons },
                }) => reasons.join("; "),
                // The text matched but the entry is something else: not a rejection.
                Ok(_) => continue,
                Err(e) => format!("(unreadable journal entry: {e})"),
            };
            out.push(Failure {
                flow: FlowName::Invoices,
                what: format!("invoice {}", key.trim_start_matches(INVOICE)),
                key,
                reason,
                at: entry.updated_at,
                run: entry.run,
            });
        }

        let stuck = self
            .store
            .journal_find(FlowName::PayPayments.as_str(), &PAY_STEPS, None, limit)
            .await?;
        for (key, entry) in stuck {
            let reason = if entry.step == "refused" {
                entry.detail.clone()
            } else {
                serde_json::from_str::<PayDetail>(&entry.detail)
                    .map(|d| d.unapplied.join("; "))
                    .unwrap_or_else(|e| format!("(unreadable journal entry: {e})"))
            };
            out.push(Failure {
                flow: FlowName::PayPayments,
                what: format!("Coupa Pay payment {}", key.trim_start_matches(PAY_PAYMENT)),
                key,
                reason,
                at: entry.updated_at,
                run: entry.run,
            });
        }

        let failed = self.ledger.payments_with_status("failed", limit).await?;
        for p in failed {
            out.push(Failure {
                flow: FlowName::Payments,
                key: format!("{ERP_PAYMENT}{}", p.payment_ref),
                what: format!(
                    "ERP payment {} (invoice {})",
                    p.payment_ref, p.invoice_number
                ),
                reason: p.sync_error.unwrap_or_default(),
                at: p
                    .synced_at
                    .as_deref()
                    .and_then(|t| crate::db::parse_timestamp(t).ok())
                    .unwrap_or_default(),
                run: None,
            });
        }
        out.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| a.key.cmp(&b.key)));
        Ok(out)
    }

    /// Makes one failed document go again at its flow's next pass; what was done, in a
    /// sentence for the page. An `Err` says why nothing was done (unknown document, not a
    /// failure, Coupa or the ERP unreachable).
    pub async fn retry(&self, flow: FlowName, key: &str) -> anyhow::Result<String> {
        match flow {
            FlowName::Invoices => {
                let id: i64 = key
                    .strip_prefix(INVOICE)
                    .and_then(|id| id.parse().ok())
                    .with_context(|| format!("'{key}' is not an invoice key (invoice:<id>)"))?;
                let entry = self
                    .store
                    .journal_get(flow.as_str(), key)
                    .await?
                    .with_context(|| format!("invoice {id} has not been exported"))?;
                let rejected = entry.step == "exported"
                    && matches!(
                        serde_json::from_str::<InvoiceDetail>(&entry.detail),
                        Ok(InvoiceDetail {
                            erp: ErpOutcome::Rejected { .. }
                        })
                    );
                if !rejected {
                    bail!(
                        "invoice {id} is not rejected (its last step is {})",
                        entry.step
                    );
                }
                let client = self.client.with_context(CallContext {
                    flow: flow.as_str().into(),
                    run: None,
                    document: Some(key.to_owned()),
                });
                client
                    .invoices()
                    .set_exported(InvoiceId(id), false)
                    .await
                    .with_context(|| format!("Coupa: resetting invoice {id}'s export flag"))?;
                Ok(format!(
                    "invoice {id} is marked not exported in Coupa: the next pass posts it again"
                ))
            }
            FlowName::Payments => {
                let payment_ref = key
                    .strip_prefix(ERP_PAYMENT)
                    .filter(|r| !r.is_empty())
                    .with_context(|| {
                        format!("'{key}' is not an ERP payment key (erp-payment:<payment_ref>)")
                    })?;
                if !self.ledger.retry_payment(payment_ref).await? {
                    bail!("ERP payment {payment_ref} is not failed");
                }
                Ok(format!(
                    "ERP payment {payment_ref} is pending again: the next pass pushes it"
                ))
            }
            FlowName::PayPayments => {
                let entry = self
                    .store
                    .journal_get(flow.as_str(), key)
                    .await?
                    .with_context(|| {
                        format!("'{key}' is not a Coupa Pay payment the connector knows")
                    })?;
                if !PAY_STEPS.contains(&entry.step.as_str()) {
                    bail!("'{key}' needs nothing (its last step is {})", entry.step);
                }
                Ok(format!(
                    "Coupa Pay payment {} is looked at again by the pass starting now",
                    key.trim_start_matches(PAY_PAYMENT)
                ))
            }
        }
    }
}
