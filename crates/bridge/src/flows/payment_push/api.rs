//! The API transport: one `PUT /api/invoices/{id}` per invoice carrying all its new payments,
//! and the paid-in-full mark when the ERP says so (seed 000, C-INVPAY).
//!
//! Coupa does not de-duplicate API payments, so the write is never repeated blindly: the plan
//! was made against the payments the invoice showed a moment ago, and when the answer to the
//! write is lost the invoice is read again; payments that are on it are synced, the others are
//! left pending and compared again on the next pass.

use coupa_api::client::{NewPayment, PaidInFull};
use coupa_api::query::Fields;
use coupa_api::wire::Invoice;
use coupa_api::{Client, ErrorClass, InvoiceId};

use super::Outcomes;
use super::matching::{InvoicePlan, coupa_date, notes, same_payment};
use crate::erp::{ErpPayment, PaymentSync};

/// Fields read back to verify a write.
fn verify_fields() -> Fields {
    Fields::new(["id", "paid", "payment-date", "payment-notes", "status"]).nest(
        "payments",
        Fields::new(["id", "amount-paid", "notes", "payment-date"]),
    )
}

/// Writes the plan of invoice `id` and says what became of each payment.
pub async fn write(client: &Client, id: InvoiceId, plan: InvoicePlan) -> Outcomes {
    let mut out = Outcomes::default();
    let synced = |p: &ErpPayment| {
        (
            p.id,
            PaymentSync::Synced {
                coupa_invoice_id: id.get(),
            },
        )
    };
    out.settled.extend(plan.already.iter().map(synced));
    out.settled.extend(plan.duplicates.iter().map(|(p, why)| {
        (
            p.id,
            PaymentSync::Failed {
                reason: why.clone(),
                coupa_invoice_id: Some(id.get()),
            },
        )
    }));
    let paid = plan.paid.as_ref().map(|m| PaidInFull {
        payment_date: coupa_date(m.date),
        notes: Some(m.note.clone()),
    });
    let result = if plan.send.is_empty() {
        match &paid {
            Some(p) => client.invoices().mark_paid(id, p).await.map(Some),
            None => return out,
        }
    } else {
        let new: Vec<NewPayment> = plan
            .send
            .iter()
            .map(|p| NewPayment {
                amount_paid: p.amount,
                payment_date: coupa_date(p.payment_date),
                notes: Some(notes(p)),
            })
            .collect();
        client
            .invoices()
            .add_payments(id, &new, paid.as_ref())
            .await
            .map(Some)
    };
    crate::failpoint::hit("payment-written");
    let answer: Result<Option<Invoice>, coupa_api::Error> = match result {
        // Only a 4xx says for sure that nothing was written; after anything else (a lost
        // answer, a 5xx, an unreadable body) look before anything is sent again.
        Err(e) if !e.status().is_some_and(|s| (400..500).contains(&s)) => {
            tracing::warn!(invoice = %id, error = %e, "payment write not confirmed; reading the invoice");
            client
                .invoices()
                .get(id, Some(verify_fields()))
                .await
                .map(Some)
        }
        other => other,
    };
    // Payments whose fate this write decides: the new ones, and the one whose paid-in-full
    // mark is being set (it stays pending until the mark is on the invoice).
    let mut affected: Vec<&ErpPayment> = plan.send.iter().collect();
    if let Some(m) = &plan.paid
        && let Some(p) = plan.already.iter().find(|p| p.id == m.payment_id)
    {
        out.settled.retain(|(pid, _)| *pid != p.id);
        affected.push(p);
    }
    match answer {
        Ok(Some(inv)) => {
            let paid_ok = plan.paid.is_none() || inv.paid == Some(true);
            let mut unclaimed: Vec<_> = inv.payments.iter().collect();
            for p in affected {
                let on_invoice = if plan.send.iter().any(|s| s.id == p.id) {
                    match unclaimed.iter().position(|c| same_payment(p, c)) {
                        Some(pos) => {
                            unclaimed.swap_remove(pos);
                            out.added += 1;
                            true
                        }
                        None => false,
                    }
                } else {
                    true
                };
                let mark_ok = paid_ok || plan.paid.as_ref().is_none_or(|m| m.payment_id != p.id);
                if on_invoice && mark_ok {
                    out.settled.push(synced(p));
                } else {
                    out.transient.push((
                        p.id,
                        format!(
                            "Coupa's invoice {id} does not show the payment{} yet; compared \
                             again next pass",
                            if mark_ok { "" } else { " as paid in full" }
                        ),
                    ));
                }
            }
        }
        Ok(None) => {}
        Err(e) => {
            let class = e.class();
            let ids: Vec<i64> = affected.iter().map(|p| p.id).collect();
            match class {
                ErrorClass::Permanent | ErrorClass::NotFound => {
                    let reason = if class == ErrorClass::NotFound {
                        format!("Coupa invoice {id} no longer exists ({})", e.reason())
                    } else {
                        format!("Coupa refused the payment: {}", e.reason())
                    };
                    out.settled.extend(ids.into_iter().map(|pid| {
                        (
                            pid,
                            PaymentSync::Failed {
                                reason: reason.clone(),
                                coupa_invoice_id: Some(id.get()),
                            },
                        )
                    }));
                }
                ErrorClass::Retryable => {
                    out.transient
                        .extend(ids.into_iter().map(|pid| (pid, e.to_string())));
                }
                ErrorClass::Auth => {
                    out.transient
                        .extend(ids.into_iter().map(|pid| (pid, e.to_string())));
                    out.fatal = Some(e.into());
                }
            }
        }
    }
    out
}
