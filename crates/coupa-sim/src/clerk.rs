//! What a person in Coupa's UI does to the data, which the API cannot: reset an invoice's export
//! flag by editing it, void or approve an invoice, move a Coupa Pay payment through its
//! statuses. The admin API and in-process tests call these.

use chrono::{DateTime, FixedOffset};
use coupa_doc::Value;

use crate::store::Db;

/// Invoice statuses of R39 Swagger (and `save_as_draft` from the CSV export doc).
pub const INVOICE_STATUSES: &[&str] = &[
    "new",
    "ap_hold",
    "draft",
    "on_hold",
    "pending_receipt",
    "rejected",
    "abandoned",
    "disputed",
    "pending_approval",
    "booking_hold",
    "pending_action",
    "approved",
    "voided",
    "processing",
    "invalid",
    "payable_adjustment",
    "save_as_draft",
];

/// Coupa Pay payment statuses seen in Coupa's docs and clients.
pub const PAY_STATUSES: &[&str] = &[
    "draft",
    "approved",
    "payment_initiated",
    "payment_in_progress",
    "completed_successfully",
    "completed_with_errors",
    "cancelled",
];

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClerkError {
    #[error("no {0} with id {1}")]
    NotFound(&'static str, i64),
    #[error("'{0}' is not a known status; expected one of {1}")]
    BadStatus(String, String),
}

/// A UI edit with "Reset Invoice last exported at for every change" enabled: the invoice comes
/// back as not exported, `last-exported-at` keeps the previous export's time.
pub fn reset_export(db: &mut Db, id: i64, now: DateTime<FixedOffset>) -> Result<(), ClerkError> {
    let row = db
        .invoices
        .get_mut(id)
        .ok_or(ClerkError::NotFound("invoice", id))?;
    row.insert("exported", false);
    row.insert("updated-at", now);
    Ok(())
}

/// Moves an invoice to `status` (voiding or approving it, typically). Only a void touches the
/// export flag, see below.
pub fn set_invoice_status(
    db: &mut Db,
    id: i64,
    status: &str,
    now: DateTime<FixedOffset>,
) -> Result<(), ClerkError> {
    if !INVOICE_STATUSES.contains(&status) {
        return Err(ClerkError::BadStatus(
            status.to_owned(),
            INVOICE_STATUSES.join(", "),
        ));
    }
    let row = db
        .invoices
        .get_mut(id)
        .ok_or(ClerkError::NotFound("invoice", id))?;
    let was = row
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    row.insert("status", status);
    row.insert("updated-at", now);
    // Voiding an exported invoice makes it eligible again, as Coupa's invoice export captures
    // voids ("a void is the only change the export captures").
    if status == "voided" && was != "voided" {
        row.insert("exported", false);
    }
    Ok(())
}

/// Moves a Coupa Pay payment to `status`; `updated-at` moves, `exported` does not (status
/// changes after export are found by `updated-at`, as Coupa advises).
pub fn set_pay_status(
    db: &mut Db,
    id: i64,
    status: &str,
    now: DateTime<FixedOffset>,
) -> Result<(), ClerkError> {
    if !PAY_STATUSES.contains(&status) {
        return Err(ClerkError::BadStatus(
            status.to_owned(),
            PAY_STATUSES.join(", "),
        ));
    }
    let row = db
        .pay_payments
        .get_mut(id)
        .ok_or(ClerkError::NotFound("Coupa Pay payment", id))?;
    row.insert("status", status);
    row.insert("updated-at", now);
    if status == "completed_with_errors" && row.get("error-text").is_none_or(Value::is_null) {
        row.insert(
            "error-text",
            "Payment partner reported an error for one or more lines",
        );
    }
    Ok(())
}
