//! What the people around the connector do during the chaos, as pure choices over the current
//! data: the ERP's AP clerk pays invoices the ERP booked (and enters a few payments for invoices
//! Coupa does not have), Coupa Pay moves payments through their statuses, a Coupa clerk edits
//! exported invoices (which resets their export flag).

use std::collections::BTreeSet;

use chrono::Days;
use coupa_bridge::erp::{ErpInvoiceRecord, NewErpPayment};
use rust_decimal::Decimal;

use crate::rng::SplitMix;

/// The ERP's payments, unique across a run: every reference and check number is new, and an
/// invoice is paid by one round only, so no two ERP payments can be mistaken for each other.
#[derive(Debug, Default)]
pub struct Payer {
    round: u64,
    next: u64,
    /// ERP invoices (Coupa ids) a round already paid.
    pub paid: BTreeSet<i64>,
}

impl Payer {
    /// Payments for up to `invoices` of `booked` (open, positive, not paid before): in full
    /// with a check, or in two parts (the second without a check number, so its note is its
    /// reference); then `unmatched` payments for invoice numbers Coupa does not have.
    pub fn round(
        &mut self,
        rng: &mut SplitMix,
        booked: &[ErpInvoiceRecord],
        invoices: usize,
        unmatched: usize,
    ) -> Vec<NewErpPayment> {
        self.round += 1;
        let open: Vec<&ErpInvoiceRecord> = booked
            .iter()
            .filter(|i| {
                i.status == "open"
                    && i.total > Decimal::ZERO
                    && !self.paid.contains(&i.coupa_invoice_id)
            })
            .collect();
        let mut out = Vec::new();
        for inv in rng.sample(&open, invoices) {
            self.paid.insert(inv.coupa_invoice_id);
            if rng.chance(0.7) {
                let mut p = self.payment(inv, inv.total);
                p.paid_in_full = true;
                out.push(p);
            } else {
                let first = (inv.total * Decimal::new(4, 1)).round_dp(inv.total.scale());
                out.push(self.payment(inv, first));
                let mut second = self.payment(inv, inv.total - first);
                second.check_number = None;
                second.paid_in_full = true;
                out.push(second);
            }
        }
        if let Some(template) = open.first().copied().or(booked.first()) {
            for k in 1..=unmatched {
                let mut missing = template.clone();
                missing.invoice_number = format!("NO-SUCH-{}-{k}", self.round);
                out.push(self.payment(&missing, Decimal::new(10_000, 2)));
            }
        }
        out
    }

    fn payment(&mut self, inv: &ErpInvoiceRecord, amount: Decimal) -> NewErpPayment {
        self.next += 1;
        NewErpPayment {
            payment_ref: format!("CHAOS-{:06}", self.next),
            invoice_number: inv.invoice_number.clone(),
            supplier_name: inv.supplier_name.clone(),
            supplier_number: inv.supplier_number.clone(),
            amount,
            currency: inv.currency.clone(),
            payment_date: inv
                .invoice_date
                .checked_add_days(Days::new(30))
                .unwrap_or(inv.invoice_date),
            check_number: Some(format!("CHK{:07}", self.next)),
            paid_in_full: false,
        }
    }
}

/// The status Coupa Pay moves a payment to, from `status` (`exported` by the connector or
/// not), or `None` when it does not move from there.
pub fn pay_move(rng: &mut SplitMix, status: &str, exported: bool) -> Option<&'static str> {
    const SETTLES: &str = "completed_successfully";
    const WITH_ERRORS: &str = "completed_with_errors";
    match (status, exported) {
        (SETTLES, true) => Some(if rng.chance(0.5) {
            "cancelled"
        } else {
            WITH_ERRORS
        }),
        (WITH_ERRORS, true) | ("cancelled", true) => Some(SETTLES),
        ("payment_initiated" | "payment_in_progress", false) => Some(if rng.chance(0.8) {
            SETTLES
        } else {
            WITH_ERRORS
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, Utc};

    fn invoice(id: i64, total: i64, status: &str) -> ErpInvoiceRecord {
        ErpInvoiceRecord {
            document_number: format!("AP-{id}"),
            coupa_invoice_id: id,
            invoice_number: format!("INV-{id}"),
            supplier_number: Some("S1".into()),
            supplier_name: Some("Acme".into()),
            invoice_date: NaiveDate::from_ymd_opt(2026, 1, 2).expect("date"),
            currency: "USD".into(),
            total: Decimal::new(total, 2),
            status: status.into(),
            created_at: Utc::now(),
        }
    }

    #[test]
    fn rounds_never_pay_an_invoice_twice_and_never_reuse_a_reference() {
        let booked: Vec<_> = (1..=40)
            .map(|i| invoice(i, 10_000 + i, if i % 7 == 0 { "cancelled" } else { "open" }))
            .collect();
        let mut payer = Payer::default();
        let mut rng = SplitMix::new(9);
        let mut refs = BTreeSet::new();
        let mut checks = BTreeSet::new();
        let mut per_invoice: std::collections::BTreeMap<String, Decimal> = Default::default();
        for _ in 0..6 {
            for p in payer.round(&mut rng, &booked, 8, 1) {
                assert!(refs.insert(p.payment_ref.clone()), "{p:?}");
                if let Some(c) = &p.check_number {
                    assert!(checks.insert(c.clone()), "{p:?}");
                }
                *per_invoice.entry(p.invoice_number.clone()).or_default() += p.amount;
            }
        }
        for inv in &booked {
            if let Some(paid) = per_invoice.get(&inv.invoice_number) {
                assert_eq!(inv.status, "open", "{inv:?}");
                assert_eq!(*paid, inv.total, "{inv:?} paid exactly its total, once");
            }
        }
        assert!(per_invoice.keys().any(|k| k.starts_with("NO-SUCH-")));
        assert_eq!(
            per_invoice.keys().filter(|k| k.starts_with("INV-")).count(),
            booked.iter().filter(|i| i.status == "open").count().min(48)
        );
    }

    #[test]
    fn pay_moves_follow_coupa_pay() {
        let mut rng = SplitMix::new(1);
        assert_eq!(
            pay_move(&mut rng, "completed_with_errors", true),
            Some("completed_successfully")
        );
        assert_eq!(pay_move(&mut rng, "payment_initiated", true), None);
        assert_eq!(pay_move(&mut rng, "draft", false), None);
        assert!(pay_move(&mut rng, "payment_in_progress", false).is_some());
    }
}
