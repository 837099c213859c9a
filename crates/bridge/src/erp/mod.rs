//! The ERP side of the connector: the [`Erp`] trait the flows post to, and [`sql::SqlErp`], the
//! embedded reference ERP (a small AP ledger in SQLite or PostgreSQL, `erp.kind = "sql"`).
//!
//! Three adapters implement [`Erp`] (`erp.kind`): `sql` (above), `http` ([`http::HttpErp`]: an
//! ERP's HTTP API) and `files` ([`files::FileErp`]: an outbox and an inbox folder, local or over
//! SFTP). The types below are the **canonical document model** every adapter speaks; its JSON
//! Schema is `schemas/canonical.schema.json` (kept true by a test), and [`mapping`] turns it into
//! an ERP's own field names and formats. The contract the flows rely on:
//! - posting is idempotent by Coupa invoice id, so a crash between "ERP accepted" and "Coupa
//!   marked exported" is repaired by posting again;
//! - a [`PostOutcome::Rejected`] is permanent (the flow records it and moves on);
//! - a [`PostOutcome::Pending`] means the ERP has the invoice and answers later (a file drop):
//!   the flow journals it "sent" and asks again on later passes with the same call, which writes
//!   nothing the second time and returns the answer once there is one;
//! - every [`ErpError`] is transient (the document stays for the next pass);
//! - payments to push to Coupa are read with [`Erp::pending_payments`] (in id order, a page at a
//!   time) and their fate written back with [`Erp::settle_payments`]; a row that is no longer
//!   pending is never changed again, so settling twice is harmless;
//! - a Coupa Pay payment is booked with [`Erp::book_pay_payment`], an upsert by Coupa payment id
//!   that compares before it writes: booking the same version again changes nothing, a newer
//!   version (a status change) updates the row and its applications, never adds a second one.
//! - payments the ERP made reach [`Erp::pending_payments`] through the ledger: the sql ERP's own
//!   `erp_payments` table, or, for `http` and `files`, the same table in the local ledger
//!   database (`erp.url`), filled by [`Erp::receive_payments`] and by the push endpoint.

mod coupa_pay;
mod deliveries;
pub mod files;
pub mod http;
pub mod mapping;
mod payments;
mod schema;
pub mod sql;
pub mod stub;

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use deliveries::{Delivery, DeliveryState};
pub use payments::Accepted;
pub use sql::SqlErp;

use crate::config::{Config, ErpKind};

pub type BoxFuture<'a, T> = futures_util::future::BoxFuture<'a, T>;

/// An approved Coupa invoice as the ERP receives it (canonical model). Amounts are decimal
/// strings (`"1234.50"`), dates `YYYY-MM-DD`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ErpInvoice {
    /// Coupa's invoice id: the idempotency key of every delivery.
    pub coupa_invoice_id: i64,
    /// The supplier's invoice number.
    pub invoice_number: String,
    /// Coupa's supplier id.
    #[serde(default)]
    pub coupa_supplier_id: Option<i64>,
    /// The supplier's number (the ERP's vendor number, as kept in Coupa).
    pub supplier_number: Option<String>,
    pub supplier_name: Option<String>,
    pub invoice_date: NaiveDate,
    /// ISO 4217 code.
    pub currency: String,
    /// The invoice total with taxes.
    pub total: Decimal,
    pub lines: Vec<ErpInvoiceLine>,
}

/// One invoice line (canonical model).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ErpInvoiceLine {
    /// Coupa's invoice line id.
    #[serde(default)]
    pub coupa_line_id: Option<i64>,
    pub line_num: i64,
    pub description: String,
    pub quantity: Decimal,
    pub price: Decimal,
    pub total: Decimal,
    /// The line's account code in Coupa (segments joined by Coupa).
    pub account_code: Option<String>,
}

/// The ERP's answer to an invoice (canonical model).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum PostOutcome {
    /// The ERP holds the invoice under `document_number`; `already_posted` when it did before
    /// this call (nothing was posted now).
    Accepted {
        document_number: String,
        #[serde(default)]
        already_posted: bool,
    },
    /// Permanent: every reason the ERP refuses the invoice, for a person to fix in Coupa.
    Rejected { reasons: Vec<String> },
    /// The ERP has the invoice and answers later (a file adapter's outbox, an HTTP 202):
    /// asking again with [`Erp::post_invoice`] writes nothing and returns the answer once the
    /// ERP gave it.
    Pending,
}

/// A voided Coupa invoice's cancellation, as an external ERP receives it (canonical model).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ErpCancel {
    pub coupa_invoice_id: i64,
}

/// What an answer of the ERP is about.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ErpAction {
    /// The posting of the invoice.
    #[default]
    Post,
    /// Its cancellation.
    Cancel,
}

/// One answer of an ERP that answers later: a record of a result file (canonical model).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ErpResult {
    pub coupa_invoice_id: i64,
    #[serde(default)]
    pub action: ErpAction,
    #[serde(flatten)]
    pub outcome: PostOutcome,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CancelOutcome {
    Cancelled {
        document_number: String,
    },
    AlreadyCancelled {
        document_number: String,
    },
    /// The ERP never had the invoice: nothing to cancel.
    NotPosted,
    /// The cancellation is delivered and the ERP answers later: asking again with
    /// [`Erp::cancel_invoice`] writes nothing and returns the answer once there is one.
    Pending,
}

/// Every `ErpError` is transient: leave the document for the next pass.
#[derive(Clone, Debug, thiserror::Error)]
pub enum ErpError {
    #[error("ERP unavailable: {0}")]
    Unavailable(String),
    /// The ERP refused something that is not the document's fault (credentials, an endpoint
    /// that is not there, a Coupa Pay payment it will not book): a person fixes the setup, and
    /// the document is tried again.
    #[error("the ERP refused: {0}")]
    Refused(String),
}

/// What [`Erp::receive_payments`] brought in.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Received {
    /// Payments new to the ledger.
    pub new: u64,
    /// Payments the ERP sent that could not be taken, each saying where it was (the file and
    /// row, or the page and index) and why; its source is kept for a person to fix.
    pub refused: Vec<String>,
}

/// A payment the ERP made, to put on its Coupa invoice: an `erp_payments` row of the ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErpPayment {
    /// The ERP's row id: orders the rows and pages through them.
    pub id: i64,
    /// The ERP's own reference, unique: the payment's identity.
    pub payment_ref: String,
    pub invoice_number: String,
    pub supplier_name: Option<String>,
    pub supplier_number: Option<String>,
    pub amount: Decimal,
    pub currency: String,
    pub payment_date: NaiveDate,
    pub check_number: Option<String>,
    /// The ERP considers the invoice paid in full with this payment.
    pub paid_in_full: bool,
}

/// A pending row the ERP holds but that cannot be read as a payment (a bad amount or date, a
/// missing invoice number): it is failed with `reason`, which names the column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MalformedPayment {
    pub id: i64,
    pub payment_ref: String,
    pub reason: String,
}

/// What became of a payment, written back to the ERP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PaymentSync {
    /// On its Coupa invoice (now, or already before).
    Synced { coupa_invoice_id: i64 },
    /// Permanently refused, with why; a person fixes the row and sets it pending again.
    Failed {
        reason: String,
        coupa_invoice_id: Option<i64>,
    },
}

/// A Coupa Pay payment as the ERP books it: one `erp_coupa_pay_payments` row and one
/// `erp_payment_applications` row per Coupa `payment-details` entry (canonical model).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ErpPayPayment {
    pub coupa_payment_id: i64,
    /// Coupa's status: `completed_successfully`, `completed_with_errors`, `cancelled`, ...
    pub status: String,
    pub payment_identifier: Option<String>,
    /// What left the paying account, in `pay_from_currency`.
    pub pay_from_total: Option<Decimal>,
    pub pay_from_currency: Option<String>,
    /// What the payee receives, in `pay_to_currency`.
    pub pay_to_total: Option<Decimal>,
    pub pay_to_currency: Option<String>,
    /// Pay-from units per pay-to unit, as Coupa gives it (up to 9 decimals).
    pub exchange_rate: Option<Decimal>,
    pub payee_name: Option<String>,
    /// `CoupaPay::SupplierPaymentAccount`, `CoupaPay::EmployeePaymentAccount`, ...
    pub pay_to_account_type: Option<String>,
    /// Coupa's `error-text` (set on `completed_with_errors`).
    pub error_text: Option<String>,
    /// Coupa's `updated-at` of the version booked: an older version never overwrites a newer.
    pub coupa_updated_at: DateTime<Utc>,
    pub applications: Vec<PayApplication>,
}

/// Coupa Pay settles ERP invoices only with this status; any other leaves them open.
pub const PAY_STATUS_SETTLES: &str = "completed_successfully";

/// One `payment-details` entry: what the payment pays of one invoice (or expense report).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PayApplication {
    pub coupa_detail_id: Option<i64>,
    /// `InvoiceHeader` for invoices; other kinds (`ExpenseReport`) are kept but never matched
    /// to an ERP invoice.
    pub source_type: Option<String>,
    /// `source-transaction-id`: the Coupa invoice id.
    pub coupa_invoice_id: Option<i64>,
    /// `source-transaction-reference`: the invoice number.
    pub invoice_number: Option<String>,
    /// `payment-total`: the cash paid for this invoice.
    pub amount: Decimal,
    /// `transaction-total`: how much of the invoice this settles (cash + discount − adjustment).
    pub settled: Decimal,
    pub discount: Decimal,
    pub adjustment: Decimal,
    pub currency: String,
}

impl PayApplication {
    /// Whether this detail pays an invoice (and so must match one in the ERP).
    pub fn is_invoice(&self) -> bool {
        self.source_type
            .as_deref()
            .is_none_or(|t| t == "InvoiceHeader")
    }
}

/// What booking a Coupa Pay payment changed in the ERP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PayBookingChange {
    /// New to the ERP.
    Inserted,
    /// The ERP held an earlier version; the row and its applications now show this one.
    Updated { previous_status: String },
    /// The ERP already holds this version, or a newer one: nothing was written.
    Unchanged,
}

/// The ERP's answer to [`Erp::book_pay_payment`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayBooking {
    pub change: PayBookingChange,
    /// Invoice details the ERP could not apply to one of its invoices, by index into
    /// `ErpPayPayment::applications`, with why (unknown invoice, number or currency mismatch,
    /// cancelled). They are kept unapplied, and applied when the invoice arrives. For
    /// `Unchanged`, the problems of the version the ERP holds.
    pub unapplied: Vec<(usize, String)>,
    /// ERP document numbers of invoices this booking made `paid`.
    pub paid: Vec<String>,
    /// ERP document numbers of invoices this booking made `open` again (a cancelled payment).
    pub reopened: Vec<String>,
}

pub trait Erp: Send + Sync {
    /// Idempotent by coupa_invoice_id: posting an invoice the ERP already has returns its
    /// document number with already_posted = true and posts nothing.
    fn post_invoice<'a>(
        &'a self,
        invoice: &'a ErpInvoice,
    ) -> BoxFuture<'a, Result<PostOutcome, ErpError>>;

    /// [`Erp::post_invoice`] for several invoices: one answer per invoice, in order, each
    /// exactly what posting that invoice alone would answer. An ERP that can take a batch in one
    /// go (one transaction, one durable write) overrides this; the default posts them one by
    /// one.
    fn post_invoices<'a>(
        &'a self,
        invoices: &'a [ErpInvoice],
    ) -> BoxFuture<'a, Vec<Result<PostOutcome, ErpError>>> {
        Box::pin(async move {
            let mut out = Vec::with_capacity(invoices.len());
            for invoice in invoices {
                out.push(self.post_invoice(invoice).await);
            }
            out
        })
    }

    /// Cancels the ERP invoice of a voided Coupa invoice (status 'cancelled'); idempotent.
    /// An ERP that answers later returns [`CancelOutcome::Pending`] until it has.
    fn cancel_invoice<'a>(
        &'a self,
        coupa_invoice_id: i64,
    ) -> BoxFuture<'a, Result<CancelOutcome, ErpError>>;

    /// Brings the payments the ERP made since the last call into the ledger that
    /// [`Erp::pending_payments`] reads (an HTTP endpoint read from a saved cursor, payment
    /// files), each committed before its source is let go: the number of payments new to the
    /// ledger. The sql ERP's table is its ledger: nothing to do.
    fn receive_payments(&self) -> BoxFuture<'_, Result<Received, ErpError>> {
        Box::pin(async { Ok(Received::default()) })
    }

    /// Up to `limit` pending payments with an id above `after_id`, in id order. A row that
    /// cannot be read comes back as `Err(MalformedPayment)`, never as an error of the call.
    fn pending_payments(
        &self,
        after_id: i64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<Result<ErpPayment, MalformedPayment>>, ErpError>>;

    /// Writes the outcome of each payment (by `ErpPayment::id`), all in one transaction. Rows no
    /// longer pending are left as they are.
    fn settle_payments<'a>(
        &'a self,
        outcomes: &'a [(i64, PaymentSync)],
    ) -> BoxFuture<'a, Result<(), ErpError>>;

    /// Books a Coupa Pay payment, idempotent by `coupa_payment_id`, in one transaction (see
    /// [`PayBooking`]). Invoices whose settled amount reaches their total become `paid`; an
    /// invoice a cancelled or failed payment no longer settles becomes `open` again.
    fn book_pay_payment<'a>(
        &'a self,
        payment: &'a ErpPayPayment,
    ) -> BoxFuture<'a, Result<PayBooking, ErpError>>;

    /// The unapplied reasons of each of these Coupa Pay payments the ERP holds (an empty list
    /// when all its details are applied, e.g. since their invoice arrived); payments the ERP
    /// does not hold are absent.
    fn pay_problems<'a>(
        &'a self,
        coupa_payment_ids: &'a [i64],
    ) -> BoxFuture<'a, Result<HashMap<i64, Vec<String>>, ErpError>>;
}

/// The configured adapter, and the ledger it keeps payments in (for `sql`, the same ERP): the
/// push endpoint, the dashboard and "retry" work on the ledger.
pub struct Opened {
    pub erp: Arc<dyn Erp>,
    pub ledger: Arc<SqlErp>,
}

/// Opens the adapter `config.erp` names (migrating the ledger).
pub async fn open(config: &Config) -> Result<Opened, ErpError> {
    let ledger = Arc::new(SqlErp::connect(&config.erp.url).await?);
    with_ledger(config, ledger).await
}

/// [`open`] over an existing ledger.
pub async fn with_ledger(config: &Config, ledger: Arc<SqlErp>) -> Result<Opened, ErpError> {
    let mapping = match &config.erp.mapping {
        // Validated with the config; read again here, so a file changed since is seen.
        Some(path) => Arc::new(
            mapping::Mapping::load(path)
                .map_err(|e| ErpError::Refused(format!("the ERP mapping: {e}")))?,
        ),
        None => Arc::new(mapping::Mapping::canonical()),
    };
    let erp: Arc<dyn Erp> = match config.erp.kind {
        ErpKind::Sql => ledger.clone(),
        ErpKind::Http => Arc::new(http::HttpErp::new(
            &config.erp.http,
            mapping,
            ledger.clone(),
        )?),
        ErpKind::Files => {
            Arc::new(files::FileErp::connect(&config.erp.files, mapping, ledger.clone()).await?)
        }
    };
    Ok(Opened { erp, ledger })
}

/// An invoice header as the embedded ERP stores it (`erp_invoices`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErpInvoiceRecord {
    pub document_number: String,
    pub coupa_invoice_id: i64,
    pub invoice_number: String,
    pub supplier_number: Option<String>,
    pub supplier_name: Option<String>,
    pub invoice_date: NaiveDate,
    pub currency: String,
    pub total: Decimal,
    /// `open`, `paid` or `cancelled`.
    pub status: String,
    pub created_at: DateTime<Utc>,
}

/// A payment the ERP made, as it delivers it (canonical model): pushed to `POST
/// /api/erp/payments`, read from its payments endpoint or a payment file, or entered by the
/// reference ERP's AP clerk ([`SqlErp::record_payments`]). Amounts are decimal strings, dates
/// `YYYY-MM-DD`; `payment_ref` is its identity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct NewErpPayment {
    pub payment_ref: String,
    pub invoice_number: String,
    #[serde(default)]
    pub supplier_name: Option<String>,
    #[serde(default)]
    pub supplier_number: Option<String>,
    pub amount: Decimal,
    pub currency: String,
    pub payment_date: NaiveDate,
    #[serde(default)]
    pub check_number: Option<String>,
    #[serde(default)]
    pub paid_in_full: bool,
}

/// One `erp_payments` row as stored, from [`SqlErp::payments`]. Values are the stored text, not
/// parsed, so a row [`Erp::pending_payments`] refuses as malformed can still be shown as it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErpPaymentRecord {
    pub id: i64,
    pub payment_ref: String,
    pub invoice_number: String,
    pub supplier_name: Option<String>,
    pub supplier_number: Option<String>,
    /// Decimal text, as stored.
    pub amount: String,
    pub currency: String,
    /// `YYYY-MM-DD` text, as stored.
    pub payment_date: String,
    pub check_number: Option<String>,
    pub paid_in_full: bool,
    /// `pending`, `synced` or `failed`.
    pub sync_status: String,
    pub sync_error: Option<String>,
    pub coupa_invoice_id: Option<i64>,
    /// When the outcome (synced or failed) was written: RFC 3339 UTC text (see
    /// [`crate::db::timestamp`]).
    pub synced_at: Option<String>,
}

/// One `erp_coupa_pay_payments` row as stored, from [`SqlErp::pay_payments`]. Amounts and the
/// exchange rate are the stored decimal text (scale kept: `20000.00`, `1500`, `0.912345678`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErpPayPaymentRecord {
    pub coupa_payment_id: i64,
    pub status: String,
    pub payment_identifier: Option<String>,
    pub pay_from_total: Option<String>,
    pub pay_from_currency: Option<String>,
    pub pay_to_total: Option<String>,
    pub pay_to_currency: Option<String>,
    pub exchange_rate: Option<String>,
    pub payee_name: Option<String>,
    pub pay_to_account_type: Option<String>,
    pub error_text: Option<String>,
    /// Coupa's `updated-at` of the version booked, RFC 3339 UTC text.
    pub updated_at: Option<String>,
    /// When the ERP first committed the row, RFC 3339 UTC text.
    pub exported_at: Option<String>,
    /// When the ERP last changed the row, RFC 3339 UTC text.
    pub changed_at: Option<String>,
}

/// One `erp_payment_applications` row as stored, from [`SqlErp::payment_applications`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErpPaymentApplicationRecord {
    pub coupa_payment_id: i64,
    pub coupa_detail_id: Option<i64>,
    pub source_type: Option<String>,
    pub coupa_invoice_id: Option<i64>,
    pub invoice_number: Option<String>,
    /// Coupa's payment-total (the cash), decimal text as stored.
    pub amount: String,
    /// Coupa's transaction-total (what it settles of the invoice), decimal text as stored.
    pub settled: Option<String>,
    pub discount: Option<String>,
    pub adjustment: Option<String>,
    pub currency: String,
    /// Matched to an ERP invoice (and so counted towards it when the payment settles).
    pub applied: bool,
    /// Why an invoice detail is not applied; `None` when applied or not an invoice.
    pub problem: Option<String>,
}
