//! Coupa Pay payments (`/api/coupa_pay/payments`, XML `coupa-pay-payment`): the payment, its
//! accounts, payee, batch, check and the invoices it settles (`payment-details`).
//!
//! Field names follow the R39 Swagger `CoupaPay-Payment` and `CoupaPay-PaymentDetail` and the
//! examples Compass prints. Ids and references arrive as numbers or text (`"payment-id":
//! "776"`, `"external-ref-id": 883001`, `"check-number": 100248`); both are read.

use chrono::{DateTime, FixedOffset};
use rust_decimal::Decimal;
use serde::Deserialize;

use super::decode::lenient;
use super::invoice::{Currency, SupplierRef};
use crate::domain::{
    InvoiceId, InvoiceNumber, Money, PayPaymentId, PayPaymentStatus, PaymentDetailId,
};

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PayPayment {
    pub id: PayPaymentId,
    pub status: Option<PayPaymentStatus>,
    pub exported: Option<bool>,
    #[serde(default, deserialize_with = "lenient::datetime_opt")]
    pub last_exported_at: Option<DateTime<FixedOffset>>,
    #[serde(default, deserialize_with = "lenient::datetime_opt")]
    pub released_at: Option<DateTime<FixedOffset>>,
    /// A date in Swagger; Coupa writes it as midnight in the instance's zone.
    #[serde(default, deserialize_with = "lenient::datetime_opt")]
    pub requested_execution_date: Option<DateTime<FixedOffset>>,
    pub payment_batch_id: Option<i64>,
    #[serde(default, deserialize_with = "lenient::decimal_opt")]
    pub pay_from_total: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::decimal_opt")]
    pub pay_to_total: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::decimal_opt")]
    pub estimated_pay_from_total: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::decimal_opt")]
    pub reporting_pay_from_total: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::decimal_opt")]
    pub reporting_pay_to_total: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::decimal_opt")]
    pub exchange_rate: Option<Decimal>,
    pub pay_from_currency: Option<Currency>,
    pub pay_to_currency: Option<Currency>,
    pub reporting_currency: Option<Currency>,
    pub payment_identifier: Option<String>,
    pub transfer_type: Option<String>,
    /// `CoupaPay::Payment`.
    #[serde(rename = "type")]
    pub payment_type: Option<String>,
    /// An integer in Swagger, text in some payloads; kept as text.
    pub external_ref_id: Option<String>,
    pub legal_entity_name: Option<String>,
    pub description: Option<String>,
    pub error_text: Option<String>,
    pub source_name: Option<String>,
    pub source_reference: Option<String>,
    pub pay_from_account: Option<PayAccount>,
    pub pay_to_account: Option<PayAccount>,
    pub payee: Option<Payee>,
    pub digital_check: Option<DigitalCheck>,
    pub payment_batch: Option<PaymentBatch>,
    #[serde(default)]
    pub payment_details: Vec<PaymentDetail>,
    #[serde(default, deserialize_with = "lenient::datetime_opt")]
    pub created_at: Option<DateTime<FixedOffset>>,
    #[serde(default, deserialize_with = "lenient::datetime_opt")]
    pub updated_at: Option<DateTime<FixedOffset>>,
}

impl PayPayment {
    /// What left the paying account: `pay-from-total` in `pay-from-currency`.
    pub fn pay_from(&self) -> Option<Money> {
        money(self.pay_from_total, self.pay_from_currency.as_ref())
    }

    /// What the payee receives: `pay-to-total` in `pay-to-currency`.
    pub fn pay_to(&self) -> Option<Money> {
        money(self.pay_to_total, self.pay_to_currency.as_ref())
    }
}

fn money(amount: Option<Decimal>, currency: Option<&Currency>) -> Option<Money> {
    Some(Money::new(amount?, currency?.code.clone()))
}

/// `pay-from-account` (the company's) or `pay-to-account` (the supplier's or employee's).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PayAccount {
    pub id: Option<i64>,
    /// `CoupaPay::SupplierPaymentAccount`, `CoupaPay::EmployeePaymentAccount`, ...
    #[serde(rename = "type")]
    pub account_type: Option<String>,
    pub account_name: Option<String>,
    /// `virtual_card`, `digital_check`, `check`, `ach`, ...
    pub account_kind: Option<String>,
    pub currency: Option<Currency>,
    pub supplier: Option<SupplierRef>,
    pub payment_partner: Option<PaymentPartner>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PaymentPartner {
    pub id: Option<i64>,
    pub name: Option<String>,
    pub issuing_bank: Option<String>,
    /// `CoupaPay::VirtualCardPartner`, ...
    #[serde(rename = "type")]
    pub partner_type: Option<String>,
}

/// Who is paid. Swagger allows a supplier (`name`, `number`) or a user (`login`, `email`,
/// `fullname`) here; both shapes fit, with the other side's fields `None`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Payee {
    pub id: Option<i64>,
    pub name: Option<String>,
    pub number: Option<String>,
    pub login: Option<String>,
    pub email: Option<String>,
    pub fullname: Option<String>,
}

impl Payee {
    /// The payee as a person would name it: the supplier's name, else the user's full name,
    /// else the login.
    pub fn display_name(&self) -> Option<&str> {
        self.name
            .as_deref()
            .or(self.fullname.as_deref())
            .or(self.login.as_deref())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct DigitalCheck {
    pub id: Option<i64>,
    /// An integer in Swagger; kept as text, as check numbers are.
    pub check_number: Option<String>,
    pub status: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PaymentBatch {
    pub id: Option<i64>,
    pub status: Option<String>,
}

/// One invoice (or other payable) a payment settles.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PaymentDetail {
    pub id: Option<PaymentDetailId>,
    /// Text in Coupa's example (`"776"`).
    pub payment_id: Option<PayPaymentId>,
    pub payable_id: Option<i64>,
    /// `CoupaPay::Invoice`, ...
    pub payable_type: Option<String>,
    /// `InvoiceHeader` for invoice payments.
    pub source_transaction_type: Option<String>,
    /// The Coupa invoice id.
    pub source_transaction_id: Option<InvoiceId>,
    /// The invoice number.
    pub source_transaction_reference: Option<InvoiceNumber>,
    #[serde(default, deserialize_with = "lenient::decimal_opt")]
    pub transaction_total: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::decimal_opt")]
    pub discount_total: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::decimal_opt")]
    pub adjustment_total: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::decimal_opt")]
    pub payment_total: Option<Decimal>,
    pub currency: Option<Currency>,
}

impl PaymentDetail {
    /// `payment-total` in the detail's currency.
    pub fn payment(&self) -> Option<Money> {
        money(self.payment_total, self.currency.as_ref())
    }
}
