//! Which Coupa invoice an ERP payment belongs to, and which of its payments Coupa already has.
//! Pure functions over what one batched lookup returned, so every rule has a unit test.
//!
//! - **Target.** The approved invoice with the payment's invoice number and supplier: by
//!   supplier number when the ERP row has one, else by supplier name (trimmed, case-insensitive).
//!   Exactly one, or the payment fails with why. Its currency must be the payment's.
//! - **Identity.** A Coupa payment is "the same" as an ERP payment when the amount is equal, the
//!   notes are the payment's [`notes`] (its check number, else its ERP reference), and the date
//!   is the same calendar day, read in the offset Coupa wrote or in UTC (Coupa may shift a
//!   midnight-UTC date into the instance's zone). Each Coupa payment vouches for one ERP payment.

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveTime};
use coupa_api::wire::{Invoice, InvoicePayment};

use crate::erp::ErpPayment;

/// Coupa's `notes` of a payment: string(255), and where Coupa keeps the check number.
pub const NOTES_MAX: usize = 255;

/// What the payment is written with in Coupa's `notes` (and the CSV's `Check # / Note`): the
/// check number, or the ERP's reference when there is no check, so every payment can be
/// recognised on the invoice.
pub fn notes(p: &ErpPayment) -> String {
    p.check_number
        .clone()
        .unwrap_or_else(|| p.payment_ref.clone())
}

/// The payment date as sent to Coupa: midnight UTC of the ERP's date.
pub fn coupa_date(date: NaiveDate) -> DateTime<FixedOffset> {
    date.and_time(NaiveTime::MIN).and_utc().fixed_offset()
}

/// `supplier 'Acme'` or `supplier number 'S-1'`, as the ERP row names it.
pub fn supplier_label(p: &ErpPayment) -> String {
    match (&p.supplier_number, &p.supplier_name) {
        (Some(n), _) => format!("supplier number '{n}'"),
        (None, Some(n)) => format!("supplier '{n}'"),
        (None, None) => "no supplier".to_owned(),
    }
}

fn same_text(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

fn supplier_matches(p: &ErpPayment, inv: &Invoice) -> bool {
    match (&p.supplier_number, &p.supplier_name) {
        (Some(n), _) => inv.supplier_number().is_some_and(|s| same_text(s, n)),
        (None, Some(n)) => inv.supplier_name().is_some_and(|s| same_text(s, n)),
        (None, None) => false,
    }
}

fn number_matches(p: &ErpPayment, inv: &Invoice) -> bool {
    inv.invoice_number
        .as_ref()
        .is_some_and(|n| n.as_str().trim() == p.invoice_number.trim())
}

/// A batch of payments placed: grouped by the invoice each pays, or why it cannot be placed.
#[derive(Debug, Default)]
pub struct Placed {
    /// By Coupa invoice id: the invoice as looked up, and the payments for it, in batch order.
    pub per_invoice: std::collections::BTreeMap<i64, (Invoice, Vec<ErpPayment>)>,
    /// The lookup of their invoice number failed for now: (payment, why).
    pub later: Vec<(ErpPayment, String)>,
    /// No one approved invoice to pay, for good: (payment, why).
    pub failed: Vec<(ErpPayment, String)>,
}

/// Places each payment on its [`target`] among what the lookup found for its invoice number
/// (`found`), unless that lookup failed (`lookup_failed`, by number).
pub fn place(
    payments: Vec<ErpPayment>,
    found: &std::collections::HashMap<String, Vec<Invoice>>,
    lookup_failed: &std::collections::HashMap<String, String>,
) -> Placed {
    let mut placed = Placed::default();
    for p in payments {
        let number = p.invoice_number.trim();
        if let Some(why) = lookup_failed.get(number) {
            placed.later.push((p, why.clone()));
            continue;
        }
        let list = found.get(number).map(Vec::as_slice).unwrap_or(&[]);
        match target(&p, list) {
            Ok(inv) => {
                let id = inv.id.get();
                let inv = inv.clone();
                placed
                    .per_invoice
                    .entry(id)
                    .or_insert_with(|| (inv, Vec::new()))
                    .1
                    .push(p);
            }
            Err(why) => placed.failed.push((p, why)),
        }
    }
    placed
}

/// The one approved invoice among `candidates` (what the lookup returned for the payment's
/// invoice number) the payment targets, or the reason there is none.
pub fn target<'a>(p: &ErpPayment, candidates: &'a [Invoice]) -> Result<&'a Invoice, String> {
    let numbered: Vec<&Invoice> = candidates
        .iter()
        .filter(|inv| number_matches(p, inv))
        .filter(|inv| {
            inv.status
                .as_ref()
                .is_some_and(|s| s.as_str() == "approved")
        })
        .collect();
    let matching: Vec<&Invoice> = numbered
        .iter()
        .copied()
        .filter(|inv| supplier_matches(p, inv))
        .collect();
    let who = supplier_label(p);
    let number = &p.invoice_number;
    let inv = match matching.as_slice() {
        [one] => *one,
        [] if numbered.is_empty() => {
            return Err(format!("no approved invoice '{number}' for {who}"));
        }
        [] => {
            return Err(format!(
                "no approved invoice '{number}' for {who} ({} approved invoice{} with that \
                 number belong{} to another supplier)",
                numbered.len(),
                if numbered.len() == 1 { "" } else { "s" },
                if numbered.len() == 1 { "s" } else { "" },
            ));
        }
        many => {
            let ids: Vec<String> = many.iter().map(|i| i.id.to_string()).collect();
            return Err(format!(
                "{} approved invoices match '{number}' for {who} (Coupa ids {}); pay them \
                 in Coupa or make the ERP's supplier more precise",
                many.len(),
                ids.join(", ")
            ));
        }
    };
    match inv.currency_code() {
        Some(code) if !code.eq_ignore_ascii_case(&p.currency) => Err(format!(
            "payment is in {} but invoice '{number}' (Coupa id {}) is in {code}",
            p.currency, inv.id
        )),
        _ => Ok(inv),
    }
}

/// Whether the Coupa payment `c` is the ERP payment `p` (see the module doc).
pub fn same_payment(p: &ErpPayment, c: &InvoicePayment) -> bool {
    let amount = c.amount_paid.is_some_and(|a| a == p.amount);
    let note = c
        .notes
        .as_deref()
        .or(c.check_number.as_deref())
        .is_some_and(|n| n.trim() == notes(p).trim());
    let date = c.payment_date.is_some_and(|d| {
        d.date_naive() == p.payment_date || d.to_utc().date_naive() == p.payment_date
    });
    amount && note && date
}

/// The header's "paid in full" mark to set, from the payment that completed the invoice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaidMark {
    /// The ERP payment that says the invoice is paid in full.
    pub payment_id: i64,
    pub date: NaiveDate,
    pub note: String,
}

/// What to do for one invoice: the payments to add, those Coupa already has, the payments that
/// repeat another one of the same batch, and whether to set the paid-in-full mark.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InvoicePlan {
    pub send: Vec<ErpPayment>,
    pub already: Vec<ErpPayment>,
    /// (payment, why): the same amount, date and check number as another payment of this
    /// batch for the same invoice; sending it would be indistinguishable from a double.
    pub duplicates: Vec<(ErpPayment, String)>,
    pub paid: Option<PaidMark>,
}

/// Plans the payments of one invoice (in ERP id order) against what Coupa shows on it.
pub fn plan(invoice: &Invoice, payments: Vec<ErpPayment>) -> InvoicePlan {
    let mut unclaimed: Vec<&InvoicePayment> = invoice.payments.iter().collect();
    let mut out = InvoicePlan::default();
    for p in payments {
        if let Some(pos) = unclaimed.iter().position(|c| same_payment(&p, c)) {
            unclaimed.swap_remove(pos);
            out.already.push(p);
        } else if let Some(first) = out.send.iter().find(|q| same_key(q, &p)) {
            let why = format!(
                "same amount, date and check number / note as ERP payment '{}' for the same \
                 invoice; Coupa could not tell them apart",
                first.payment_ref
            );
            out.duplicates.push((p, why));
        } else {
            out.send.push(p);
        }
    }
    if invoice.paid != Some(true) {
        out.paid = out
            .send
            .iter()
            .chain(&out.already)
            .filter(|p| p.paid_in_full)
            .max_by_key(|p| (p.payment_date, p.id))
            .map(|p| PaidMark {
                payment_id: p.id,
                date: p.payment_date,
                note: format!("Paid in full (ERP payment {})", p.payment_ref),
            });
    }
    out
}

fn same_key(a: &ErpPayment, b: &ErpPayment) -> bool {
    a.amount == b.amount && a.payment_date == b.payment_date && notes(a).trim() == notes(b).trim()
}

/// Checks Coupa's limits before anything is sent: 4 decimal places (decimal(32,4)) and notes
/// of at most 255 characters.
pub fn check_limits(p: &ErpPayment) -> Result<(), String> {
    if p.amount.normalize().scale() > 4 {
        return Err(format!(
            "amount {} has more than the 4 decimal places Coupa keeps",
            p.amount
        ));
    }
    if notes(p).chars().count() > NOTES_MAX {
        return Err(format!(
            "check number / note is longer than Coupa's {NOTES_MAX} characters"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use coupa_doc::Value;
    use rust_decimal::Decimal;

    fn pay(
        id: i64,
        number: &str,
        supplier: (Option<&str>, Option<&str>),
        amount: &str,
    ) -> ErpPayment {
        ErpPayment {
            id,
            payment_ref: format!("PAY-{id}"),
            invoice_number: number.into(),
            supplier_name: supplier.0.map(Into::into),
            supplier_number: supplier.1.map(Into::into),
            amount: amount.parse().expect("amount"),
            currency: "USD".into(),
            payment_date: NaiveDate::from_ymd_opt(2026, 3, 14).expect("date"),
            check_number: Some(format!("CHK-{id}")),
            paid_in_full: false,
        }
    }

    fn invoice(json: &str) -> Invoice {
        let v: Value = coupa_doc::json::parse(json.as_bytes()).expect("json");
        coupa_api::wire::decode(&v).expect("invoice")
    }

    fn inv(id: i64, number: &str, supplier: &str, sup_no: &str, status: &str) -> Invoice {
        invoice(&format!(
            r#"{{"id":{id},"invoice-number":"{number}","status":"{status}",
                "currency":{{"code":"USD"}},
                "supplier":{{"name":"{supplier}","number":"{sup_no}"}},"payments":[]}}"#
        ))
    }

    #[test]
    fn one_approved_invoice_of_the_supplier_is_the_target() {
        let cands = vec![
            inv(1, "INV-1", "Acme", "S-1", "approved"),
            inv(2, "INV-1", "Globex", "S-2", "approved"),
            inv(3, "INV-1", "Acme", "S-1", "voided"),
        ];
        let by_name = pay(1, "INV-1", (Some(" acme "), None), "10");
        assert_eq!(target(&by_name, &cands).map(|i| i.id.get()), Ok(1));
        let by_number = pay(2, "INV-1", (Some("Wrong Name"), Some("S-2")), "10");
        assert_eq!(target(&by_number, &cands).map(|i| i.id.get()), Ok(2));
    }

    #[test]
    fn no_match_and_ambiguity_say_why() {
        let cands = vec![
            inv(1, "INV-1", "Acme", "S-1", "approved"),
            inv(2, "INV-1", "Acme", "S-1", "approved"),
            inv(3, "INV-2", "Acme", "S-1", "approved"),
        ];
        let none = pay(1, "INV-9", (Some("Acme"), None), "10");
        assert_eq!(
            target(&none, &cands).map(|i| i.id.get()),
            Err("no approved invoice 'INV-9' for supplier 'Acme'".to_owned())
        );
        let other = pay(1, "INV-2", (Some("Globex"), None), "10");
        let err = target(&other, &cands).expect_err("another supplier's invoice");
        assert!(
            err.contains("1 approved invoice with that number belongs to another supplier"),
            "{err}"
        );
        let two = pay(1, "INV-1", (None, Some("S-1")), "10");
        let err = target(&two, &cands).expect_err("ambiguous");
        assert!(
            err.starts_with(
                "2 approved invoices match 'INV-1' for supplier number 'S-1' (Coupa ids 1, 2)"
            ),
            "{err}"
        );
    }

    #[test]
    fn a_currency_mismatch_is_refused() {
        let cands = vec![inv(1, "INV-1", "Acme", "S-1", "approved")];
        let mut p = pay(1, "INV-1", (Some("Acme"), None), "10");
        p.currency = "EUR".into();
        let err = target(&p, &cands).expect_err("currency");
        assert_eq!(
            err,
            "payment is in EUR but invoice 'INV-1' (Coupa id 1) is in USD"
        );
    }

    #[test]
    fn an_existing_payment_is_recognised_in_any_offset_once() {
        let p = pay(7, "INV-1", (Some("Acme"), None), "100.5");
        let i = invoice(
            r#"{"id":1,"invoice-number":"INV-1","status":"approved","payments":[
                {"amount-paid":"100.50","notes":"CHK-7","payment-date":"2026-03-13T17:00:00-07:00"},
                {"amount-paid":"100.50","notes":"CHK-8","payment-date":"2026-03-14"}]}"#,
        );
        assert!(same_payment(&p, &i.payments[0]), "same day in UTC");
        assert!(!same_payment(&p, &i.payments[1]), "another check");
        let mut q = p.clone();
        q.amount = Decimal::new(1005, 1) + Decimal::ONE;
        assert!(!same_payment(&q, &i.payments[0]), "another amount");
        let mut r = p.clone();
        r.payment_date = NaiveDate::from_ymd_opt(2026, 3, 16).expect("date");
        assert!(!same_payment(&r, &i.payments[0]), "another date");

        // One Coupa payment vouches for one ERP payment; the repeat in the batch is held back.
        let mut twin = p.clone();
        twin.id = 8;
        twin.payment_ref = "PAY-8".into();
        let mut fresh = p.clone();
        fresh.id = 9;
        fresh.check_number = Some("CHK-9".into());
        let mut fresh_twin = fresh.clone();
        fresh_twin.id = 10;
        let plan = plan(
            &i,
            vec![p.clone(), twin.clone(), fresh.clone(), fresh_twin.clone()],
        );
        assert_eq!(plan.already, vec![p]);
        assert_eq!(plan.send, vec![twin, fresh]);
        assert_eq!(plan.duplicates.len(), 1);
        assert_eq!(plan.duplicates[0].0.id, 10);
    }

    #[test]
    fn paid_in_full_marks_the_header_unless_coupa_has_it() {
        let mut p = pay(1, "INV-1", (Some("Acme"), None), "10");
        p.paid_in_full = true;
        let open = inv(1, "INV-1", "Acme", "S-1", "approved");
        let mark = plan(&open, vec![p.clone()]).paid.expect("paid mark");
        assert_eq!(mark.payment_id, 1);
        assert_eq!(mark.note, "Paid in full (ERP payment PAY-1)");
        let mut paid = open.clone();
        paid.paid = Some(true);
        assert_eq!(plan(&paid, vec![p]).paid, None);
    }

    #[test]
    fn limits_are_checked_before_sending() {
        let p = pay(1, "INV-1", (Some("Acme"), None), "10.12345");
        assert!(
            check_limits(&p)
                .expect_err("scale")
                .contains("4 decimal places")
        );
        let ok = pay(1, "INV-1", (Some("Acme"), None), "10.1200000");
        assert_eq!(check_limits(&ok), Ok(()));
        let mut long = ok.clone();
        long.check_number = Some("x".repeat(256));
        assert!(check_limits(&long).is_err());
    }

    #[test]
    fn notes_and_dates_as_sent() {
        let mut p = pay(3, "INV-1", (Some("Acme"), None), "1");
        assert_eq!(notes(&p), "CHK-3");
        p.check_number = None;
        assert_eq!(notes(&p), "PAY-3");
        assert_eq!(
            coupa_date(p.payment_date).to_rfc3339(),
            "2026-03-14T00:00:00+00:00"
        );
    }
}
