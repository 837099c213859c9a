//! Invoices: list, read, acknowledge (custom fields, exported), and payments.

use chrono::{DateTime, FixedOffset};
use coupa_doc::{Object, Value};
use reqwest::Method;
use rust_decimal::Decimal;

use super::Client;
use crate::domain::InvoiceId;
use crate::error::Error;
use crate::paging::Pager;
use crate::query::{Fields, Query};
use crate::transport::Request;
use crate::wire::Invoice;

const PATH: &str = "/api/invoices";
const ROOT: &str = "invoice-header";

/// One payment to add to an invoice (Coupa's `payments[]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewPayment {
    pub amount_paid: Decimal,
    pub payment_date: DateTime<FixedOffset>,
    /// Coupa keeps the check number here (`check-number` is deprecated into `notes`).
    pub notes: Option<String>,
}

impl NewPayment {
    fn to_value(&self) -> Value {
        let mut o = Object::new()
            .with("amount-paid", self.amount_paid)
            .with("payment-date", self.payment_date);
        if let Some(n) = &self.notes {
            o.insert("notes", n.as_str());
        }
        Value::Object(o)
    }
}

/// The header-level "paid in full" mark.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaidInFull {
    pub payment_date: DateTime<FixedOffset>,
    pub notes: Option<String>,
}

impl PaidInFull {
    fn fill(&self, o: &mut Object) {
        o.insert("paid", true);
        o.insert("payment-date", self.payment_date);
        if let Some(n) = &self.notes {
            o.insert("payment-notes", n.as_str());
        }
    }
}

/// What a payment write answers with: enough to verify it, not the whole invoice.
fn payment_fields() -> Fields {
    Fields::new(["id", "paid", "payment-date", "payment-notes", "status"]).nest(
        "payments",
        Fields::new(["id", "amount-paid", "notes", "payment-date", "created-at"]),
    )
}

pub struct Invoices<'a>(pub(super) &'a Client);

impl Invoices<'_> {
    /// Every invoice matching `query`, paged by id.
    pub fn list(&self, query: Query) -> Pager<Invoice> {
        self.0.pager(PATH, query)
    }

    pub async fn get(&self, id: InvoiceId, fields: Option<Fields>) -> Result<Invoice, Error> {
        let q = fields.map(|f| Query::new().fields(f)).unwrap_or_default();
        self.0
            .fetch(Request::new(Method::GET, format!("{PATH}/{id}")).query(q.pairs()))
            .await
    }

    /// Writes custom fields (`custom-fields` namespace). Setting a field to the same value
    /// again changes nothing, so this is safe to repeat.
    pub async fn set_custom_fields(
        &self,
        id: InvoiceId,
        fields: &[(&str, Value)],
    ) -> Result<Invoice, Error> {
        let mut cf = Object::new();
        for (name, value) in fields {
            cf.insert(*name, value.clone());
        }
        let body = Value::Object(Object::new().with("custom-fields", cf));
        let q = Query::new().fields(Fields::new(["id"]).all("custom-fields"));
        self.0
            .fetch(
                Request::new(Method::PUT, format!("{PATH}/{id}"))
                    .query(q.pairs())
                    .body(ROOT, body),
            )
            .await
    }

    /// Marks the invoice exported: its own request, as Coupa requires. Returns the flag
    /// Coupa reports afterwards.
    pub async fn mark_exported(&self, id: InvoiceId) -> Result<bool, Error> {
        self.set_exported(id, true).await
    }

    /// Sets the invoice's exported flag; `false` makes the export flows list it again (a
    /// person asked for a rejected invoice to be retried). Returns the flag Coupa reports.
    pub async fn set_exported(&self, id: InvoiceId, exported: bool) -> Result<bool, Error> {
        let q = Query::new()
            .eq("exported", exported)
            .fields(Fields::new(["id", "exported"]));
        let inv: Invoice = self
            .0
            .fetch(Request::new(Method::PUT, format!("{PATH}/{id}")).query(q.pairs()))
            .await?;
        Ok(inv.exported.unwrap_or(false))
    }

    /// Adds payments (and optionally the paid-in-full mark) in one PUT. Coupa does not
    /// de-duplicate payments, so this is never repeated blindly: when the answer is lost the
    /// error says the outcome is unknown ([`Error::outcome_unknown`]) and the caller must read
    /// the invoice's payments before trying again.
    pub async fn add_payments(
        &self,
        id: InvoiceId,
        payments: &[NewPayment],
        paid: Option<&PaidInFull>,
    ) -> Result<Invoice, Error> {
        let mut body = Object::new().with(
            "payments",
            Value::Array(payments.iter().map(NewPayment::to_value).collect()),
        );
        if let Some(p) = paid {
            p.fill(&mut body);
        }
        let q = Query::new().fields(payment_fields());
        self.0
            .fetch(
                Request::new(Method::PUT, format!("{PATH}/{id}"))
                    .query(q.pairs())
                    .body(ROOT, Value::Object(body))
                    .unsafe_to_repeat(),
            )
            .await
    }

    /// Sets `paid`, `payment-date` and `payment-notes` without adding a payment.
    pub async fn mark_paid(&self, id: InvoiceId, paid: &PaidInFull) -> Result<Invoice, Error> {
        let mut body = Object::new();
        paid.fill(&mut body);
        let q = Query::new().fields(payment_fields());
        self.0
            .fetch(
                Request::new(Method::PUT, format!("{PATH}/{id}"))
                    .query(q.pairs())
                    .body(ROOT, Value::Object(body)),
            )
            .await
    }
}
