//! Domain types used at the edge of the client: ids that cannot be mixed up, invoice numbers,
//! money with its currency, and statuses as enums that survive values Coupa adds later.

use std::fmt;

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer};

macro_rules! id_type {
    ($(#[$doc:meta] $name:ident),* $(,)?) => {$(
        #[$doc]
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub i64);

        impl $name {
            pub fn get(self) -> i64 {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<$name> for coupa_doc::Value {
            fn from(id: $name) -> Self {
                coupa_doc::Value::Int(id.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            // Coupa writes ids as numbers, but some nested ids arrive as strings
            // (`"payment-id": "3001"` in Coupa Pay details).
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                i64::deserialize(d).map($name)
            }
        }
    )*};
}

id_type! {
    /// `InvoiceHeader.id`.
    InvoiceId,
    /// `InvoiceLine.id`.
    InvoiceLineId,
    /// An invoice payment's id (`payments[].id`).
    PaymentId,
    /// `Supplier.id`.
    SupplierId,
    /// `Integration.id`.
    IntegrationId,
    /// `IntegrationContact.id`.
    IntegrationContactId,
    /// `IntegrationRun.id`.
    IntegrationRunId,
    /// `IntegrationHistoryRecord.id`.
    HistoryRecordId,
    /// `IntegrationError.id`.
    IntegrationErrorId,
    /// `CoupaPay::Payment.id`.
    PayPaymentId,
    /// `CoupaPay::PaymentDetail.id`.
    PaymentDetailId,
    /// `DataFileSource.id`.
    DataFileSourceId,
}

/// An invoice number as the supplier wrote it (Coupa's `invoice-number`, string(40)). Coupa's
/// own XML sometimes types it `integer`; it is text all the same, and leading zeros matter.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InvoiceNumber(pub String);

impl InvoiceNumber {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for InvoiceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for InvoiceNumber {
    fn from(s: &str) -> Self {
        InvoiceNumber(s.to_owned())
    }
}

impl<'de> Deserialize<'de> for InvoiceNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(InvoiceNumber)
    }
}

/// An amount in a currency. The amount keeps the scale Coupa sent (`"1187.16"` stays two
/// decimals); arithmetic is exact.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Money {
    pub amount: Decimal,
    /// ISO 4217 code as Coupa writes it (`currency.code`), e.g. `USD`.
    pub currency: String,
}

impl Money {
    pub fn new(amount: Decimal, currency: impl Into<String>) -> Self {
        Money {
            amount,
            currency: currency.into(),
        }
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount, self.currency)
    }
}

macro_rules! status_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $text:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum $name {
            $($variant,)*
            /// A value this version does not know; kept as Coupa sent it.
            Other(String),
        }

        impl $name {
            /// Reads Coupa's value; case and surrounding spaces are ignored.
            pub fn parse(s: &str) -> Self {
                let t = s.trim();
                $(if t.eq_ignore_ascii_case($text) {
                    return $name::$variant;
                })*
                $name::Other(t.to_owned())
            }

            /// The value as Coupa writes it.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)*
                    $name::Other(s) => s,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d).map(|s| $name::parse(&s))
            }
        }
    };
}

status_enum! {
    /// `InvoiceHeader.status` (R39 Swagger enum, plus `save_as_draft` from the CSV export).
    InvoiceStatus {
        New = "new",
        ApHold = "ap_hold",
        Draft = "draft",
        OnHold = "on_hold",
        PendingReceipt = "pending_receipt",
        Rejected = "rejected",
        Abandoned = "abandoned",
        Disputed = "disputed",
        PendingApproval = "pending_approval",
        BookingHold = "booking_hold",
        PendingAction = "pending_action",
        Approved = "approved",
        Voided = "voided",
        Processing = "processing",
        Invalid = "invalid",
        PayableAdjustment = "payable_adjustment",
        SaveAsDraft = "save_as_draft",
    }
}

status_enum! {
    /// `CoupaPay::Payment.status` (Compass lists these; `cancelled` is seen in clients).
    PayPaymentStatus {
        Draft = "draft",
        Approved = "approved",
        PaymentInitiated = "payment_initiated",
        PaymentInProgress = "payment_in_progress",
        CompletedSuccessfully = "completed_successfully",
        CompletedWithErrors = "completed_with_errors",
        Cancelled = "cancelled",
    }
}

status_enum! {
    /// `IntegrationRun.status`. Compass names both the action forms (`running`, `successful`)
    /// and the overview's `started`/`errored`; all are known here.
    RunStatus {
        Pending = "pending",
        Running = "running",
        Started = "started",
        Paused = "paused",
        Successful = "successful",
        Failed = "failed",
        Errored = "errored",
    }
}

status_enum! {
    /// `DataFileSource.status`; Coupa prints them capitalised in docs and lower-case in samples.
    DataFileStatus {
        Done = "done",
        Failed = "failed",
        Retrying = "retrying",
        Loading = "loading",
        SubmittedToResque = "submitted to resque",
        Pending = "pending",
        Uploading = "uploading",
        Paused = "paused",
        Stopped = "stopped",
    }
}

status_enum! {
    /// `contact-alert-type` on history records, errors and contacts.
    ContactAlertType {
        Technical = "Technical",
        Functional = "Functional",
        Both = "Both",
    }
}

impl RunStatus {
    /// The run has ended and accepts no more work.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            RunStatus::Successful | RunStatus::Failed | RunStatus::Errored
        )
    }
}

impl DataFileStatus {
    /// Coupa has finished with the file, one way or the other.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            DataFileStatus::Done | DataFileStatus::Failed | DataFileStatus::Stopped
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_parse_known_values_case_insensitively_and_keep_unknown_ones() {
        assert_eq!(InvoiceStatus::parse("Approved"), InvoiceStatus::Approved);
        assert_eq!(
            InvoiceStatus::parse("pending_three_way_match"),
            InvoiceStatus::Other("pending_three_way_match".into())
        );
        assert_eq!(
            DataFileStatus::parse("Submitted to Resque"),
            DataFileStatus::SubmittedToResque
        );
        assert_eq!(PayPaymentStatus::Cancelled.as_str(), "cancelled");
        assert!(RunStatus::parse("errored").is_final());
        assert!(!RunStatus::parse("running").is_final());
    }

    #[test]
    fn money_displays_amount_with_its_scale_and_currency() {
        let m = Money::new(Decimal::new(118716, 2), "USD");
        assert_eq!(m.to_string(), "1187.16 USD");
    }
}
