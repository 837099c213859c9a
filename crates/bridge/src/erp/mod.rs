//! The ERP side of the connector: the [`Erp`] trait the flows post to, and [`sql::SqlErp`], the
//! embedded reference ERP (a small AP ledger in SQLite or PostgreSQL, `erp.kind = "sql"`).
//!
//! Real ERPs plug in by implementing [`Erp`]. The contract the flows rely on:
//! - posting is idempotent by Coupa invoice id, so a crash between "ERP accepted" and "Coupa
//!   marked exported" is repaired by posting again;
//! - a [`PostOutcome::Rejected`] is permanent (the flow records it and moves on);
//! - every [`ErpError`] is transient (the document stays for the next pass).

mod schema;
pub mod sql;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

pub use sql::SqlErp;

pub type BoxFuture<'a, T> = futures_util::future::BoxFuture<'a, T>;

/// An invoice as the ERP receives it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErpInvoice {
    pub coupa_invoice_id: i64,
    pub invoice_number: String,
    pub supplier_number: Option<String>,
    pub supplier_name: Option<String>,
    pub invoice_date: NaiveDate,
    pub currency: String,
    pub total: Decimal,
    pub lines: Vec<ErpInvoiceLine>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ErpInvoiceLine {
    pub line_num: i64,
    pub description: String,
    pub quantity: Decimal,
    pub price: Decimal,
    pub total: Decimal,
    pub account_code: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PostOutcome {
    /// The ERP holds the invoice under `document_number`; `already_posted` when it did before
    /// this call (nothing was posted now).
    Accepted {
        document_number: String,
        already_posted: bool,
    },
    /// Permanent: every reason the ERP refuses the invoice, for a person to fix in Coupa.
    Rejected { reasons: Vec<String> },
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
}

/// Every `ErpError` is transient: leave the document for the next pass.
#[derive(Debug, thiserror::Error)]
pub enum ErpError {
    #[error("ERP unavailable: {0}")]
    Unavailable(String),
}

pub trait Erp: Send + Sync {
    /// Idempotent by coupa_invoice_id: posting an invoice the ERP already has returns its
    /// document number with already_posted = true and posts nothing.
    fn post_invoice<'a>(
        &'a self,
        invoice: &'a ErpInvoice,
    ) -> BoxFuture<'a, Result<PostOutcome, ErpError>>;

    /// Cancels the ERP invoice of a voided Coupa invoice (status 'cancelled'); idempotent.
    fn cancel_invoice<'a>(
        &'a self,
        coupa_invoice_id: i64,
    ) -> BoxFuture<'a, Result<CancelOutcome, ErpError>>;
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
