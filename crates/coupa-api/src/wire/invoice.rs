//! Invoices (`/api/invoices`, XML `invoice-header`) and what they carry: lines, payments,
//! custom fields, the supplier and currency references.
//!
//! Field names follow the R39 Swagger `InvoiceHeader`, `InvoiceLine` and `Payment`. Almost every
//! field is optional: callers trim payloads with `fields=` and Coupa omits or nils what is unset.

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset};
use coupa_doc::{Value, names};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer};

use super::decode::{DecodeError, decode, lenient};
use super::integration::HistoryRecord;
use crate::domain::{
    InvoiceId, InvoiceLineId, InvoiceNumber, InvoiceStatus, Money, PaymentId, SupplierId,
};

/// An invoice header as `GET /api/invoices` returns it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Invoice {
    pub id: InvoiceId,
    pub invoice_number: Option<InvoiceNumber>,
    #[serde(default, deserialize_with = "lenient::datetime_opt")]
    pub invoice_date: Option<DateTime<FixedOffset>>,
    pub status: Option<InvoiceStatus>,
    pub document_type: Option<String>,
    pub is_credit_note: Option<bool>,
    pub original_invoice_number: Option<String>,
    /// Read-only in Coupa: set with `PUT /api/invoices/<id>?exported=true`.
    pub exported: Option<bool>,
    #[serde(default, deserialize_with = "lenient::datetime_opt")]
    pub last_exported_at: Option<DateTime<FixedOffset>>,
    pub paid: Option<bool>,
    #[serde(default, deserialize_with = "lenient::datetime_opt")]
    pub payment_date: Option<DateTime<FixedOffset>>,
    pub payment_notes: Option<String>,
    pub currency: Option<Currency>,
    pub supplier: Option<SupplierRef>,
    pub line_level_taxation: Option<bool>,
    #[serde(default, deserialize_with = "lenient::decimal_opt")]
    pub tax_amount: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::decimal_opt")]
    pub shipping_amount: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::decimal_opt")]
    pub handling_amount: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::decimal_opt")]
    pub misc_amount: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::decimal_opt")]
    pub gross_total: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::decimal_opt")]
    pub total_with_taxes: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::decimal_opt")]
    pub amount_due: Option<Decimal>,
    pub lock_version_key: Option<i64>,
    pub payment_term: Option<PaymentTerm>,
    pub account_type: Option<AccountType>,
    #[serde(default)]
    pub invoice_lines: Vec<InvoiceLine>,
    #[serde(default)]
    pub payments: Vec<InvoicePayment>,
    #[serde(default)]
    pub custom_fields: CustomFields,
    #[serde(default)]
    pub current_integration_history_records: Vec<HistoryRecord>,
    #[serde(default, deserialize_with = "lenient::datetime_opt")]
    pub created_at: Option<DateTime<FixedOffset>>,
    #[serde(default, deserialize_with = "lenient::datetime_opt")]
    pub updated_at: Option<DateTime<FixedOffset>>,
}

impl Invoice {
    /// `currency.code`, e.g. `USD`.
    pub fn currency_code(&self) -> Option<&str> {
        self.currency.as_ref().map(|c| c.code.as_str())
    }

    /// The invoice total with its currency: `total-with-taxes`, else `gross-total` (R39 has no
    /// header `total`). `None` when the amount or the currency is missing.
    pub fn total(&self) -> Option<Money> {
        let amount = self.total_with_taxes.or(self.gross_total)?;
        Some(Money::new(amount, self.currency_code()?))
    }

    pub fn supplier_name(&self) -> Option<&str> {
        self.supplier.as_ref()?.name.as_deref()
    }

    pub fn supplier_number(&self) -> Option<&str> {
        self.supplier.as_ref()?.number.as_deref()
    }

    /// Σ `amount-paid` over the invoice's payments (zero without payments). A sum beyond
    /// `Decimal`'s range (about 7.9e28, which no real invoice reaches) saturates instead of
    /// panicking on what Coupa sent.
    pub fn amount_paid(&self) -> Decimal {
        self.payments
            .iter()
            .filter_map(|p| p.amount_paid)
            .fold(Decimal::ZERO, Decimal::saturating_add)
    }
}

/// A currency reference (`currency`, `pay-from-currency`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Currency {
    pub id: Option<i64>,
    /// ISO 4217 code, string(6).
    pub code: String,
    pub decimals: Option<u32>,
}

/// The supplier as an invoice or payment account references it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct SupplierRef {
    pub id: Option<SupplierId>,
    pub name: Option<String>,
    pub number: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct PaymentTerm {
    pub id: Option<i64>,
    pub code: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct AccountType {
    pub id: Option<i64>,
    pub name: Option<String>,
}

/// One line of `invoice-lines`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct InvoiceLine {
    pub id: Option<InvoiceLineId>,
    pub line_num: Option<i64>,
    /// `InvoiceQuantityLine` or `InvoiceAmountLine`.
    #[serde(rename = "type")]
    pub line_type: Option<String>,
    pub description: Option<String>,
    #[serde(default, deserialize_with = "lenient::decimal_opt")]
    pub quantity: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::decimal_opt")]
    pub price: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::decimal_opt")]
    pub total: Option<Decimal>,
    #[serde(default, deserialize_with = "lenient::decimal_opt")]
    pub tax_amount: Option<Decimal>,
    pub status: Option<String>,
    pub po_number: Option<String>,
    pub uom: Option<Uom>,
    pub account: Option<Account>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Uom {
    pub code: Option<String>,
}

/// The accounting string of a line.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Account {
    pub id: Option<i64>,
    pub code: Option<String>,
    pub name: Option<String>,
}

/// One entry of an invoice's `payments` (Swagger `Payment`): what the ERP reported as paid.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct InvoicePayment {
    pub id: Option<PaymentId>,
    #[serde(default, deserialize_with = "lenient::decimal_opt")]
    pub amount_paid: Option<Decimal>,
    pub notes: Option<String>,
    /// Deprecated by Coupa ("stored in the notes field"), still sent by clients.
    pub check_number: Option<String>,
    #[serde(default, deserialize_with = "lenient::datetime_opt")]
    pub payment_date: Option<DateTime<FixedOffset>>,
    pub payable_type: Option<String>,
    pub payable_id: Option<i64>,
    /// `payment`, `discount`, `adjustment` or `credit` (read-only).
    pub category: Option<String>,
    #[serde(default, deserialize_with = "lenient::datetime_opt")]
    pub created_at: Option<DateTime<FixedOffset>>,
}

/// The payments in an invoice-header request body (`PUT /api/invoices/<id>`), in any of the
/// shapes Coupa accepts: XML `<payments type="array"><payment>...`, JSON `{"payments": [...]}`,
/// `{"payments": {"payment": {...}}}` and `{"payments": {"payment": [...]}}`, keys with dashes
/// or underscores. A body without payments gives none. Errors name the field
/// (`payments[1].amount-paid`).
pub fn payments_from_request(v: &Value) -> Result<Vec<InvoicePayment>, DecodeError> {
    #[derive(Deserialize)]
    struct Body {
        #[serde(default)]
        payments: Vec<InvoicePayment>,
    }
    decode::<Body>(v).map(|b| b.payments)
}

/// An invoice's `custom-fields`: name (canonical, dashed) to value. Values keep their JSON type
/// where serde's data model can carry it (text, integers, booleans, nested objects and lists);
/// decimals and datetimes arrive as their text.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CustomFields(pub BTreeMap<String, Value>);

impl CustomFields {
    /// The field in any spelling: `cf_erp_invoice_number`, `cf-erp-invoice-number`.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.0.get(names::canonical(name).as_ref())
    }

    /// The field as text: text as is, numbers and booleans rendered, a lookup value (an object)
    /// by its `name` or else `external-ref-num`. Blank, null, lists and other objects are `None`.
    pub fn text(&self, name: &str) -> Option<String> {
        fn render(v: &Value) -> Option<String> {
            match v {
                Value::Object(o) => ["name", "external-ref-num"]
                    .iter()
                    .find_map(|k| o.get(k).and_then(render)),
                Value::Array(_) | Value::Null => None,
                scalar => Some(scalar.to_plain_string()).filter(|s| !s.trim().is_empty()),
            }
        }
        render(self.get(name)?)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }
}

impl<'de> Deserialize<'de> for CustomFields {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = Option::<BTreeMap<String, Value>>::deserialize(d)?.unwrap_or_default();
        Ok(CustomFields(
            map.into_iter()
                .map(|(k, v)| (names::canonical(&k).into_owned(), v))
                .collect(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Format, parse};

    fn json(s: &str) -> Value {
        parse(Format::Json, s.as_bytes()).expect("test JSON")
    }

    #[test]
    fn total_prefers_total_with_taxes_and_needs_a_currency() {
        let i: Invoice = decode(&json(
            r#"{"id": 1, "gross-total": "10.00", "total-with-taxes": "10.80",
                "currency": {"code": "PLN"}}"#,
        ))
        .expect("decodes");
        assert_eq!(i.total(), Some(Money::new(Decimal::new(1080, 2), "PLN")));
        let i: Invoice = decode(&json(
            r#"{"id": 1, "gross-total": 5, "currency": {"id": 1, "code": "USD"}}"#,
        ))
        .expect("decodes");
        assert_eq!(i.total(), Some(Money::new(Decimal::from(5), "USD")));
        let i: Invoice = decode(&json(r#"{"id": 1, "gross-total": "5"}"#)).expect("decodes");
        assert_eq!(i.total(), None);
    }

    #[test]
    fn custom_fields_render_text_numbers_and_lookups() {
        let i: Invoice = decode(&json(
            r#"{"id": 1, "custom-fields": {
                "cf-erp-invoice-number": "ERP-1", "cf_integration_status": "  ",
                "cf-count": 3, "cf-amount": 12.50, "cf-flag": false,
                "cf-lookup": {"id": 9, "name": "Marketing", "external-ref-num": "MKT"},
                "cf-ref-only": {"external-ref-num": "R-7"}, "cf-none": null}}"#,
        ))
        .expect("decodes");
        let cf = &i.custom_fields;
        assert_eq!(cf.text("cf_erp_invoice_number").as_deref(), Some("ERP-1"));
        assert_eq!(cf.text("cf-integration-status"), None);
        assert_eq!(cf.text("cf-count").as_deref(), Some("3"));
        assert_eq!(cf.text("cf-amount").as_deref(), Some("12.50"));
        assert_eq!(cf.text("cf-flag").as_deref(), Some("false"));
        assert_eq!(cf.text("cf-lookup").as_deref(), Some("Marketing"));
        assert_eq!(cf.text("cf-ref-only").as_deref(), Some("R-7"));
        assert_eq!(cf.text("cf-none"), None);
        assert_eq!(cf.text("cf-missing"), None);
        assert_eq!(cf.get("CF_COUNT"), Some(&Value::Int(3)));

        let i: Invoice = decode(&json(r#"{"id": 1, "custom-fields": null}"#)).expect("null");
        assert!(i.custom_fields.is_empty());
    }

    #[test]
    fn payments_come_out_of_every_request_shape() {
        for body in [
            r#"{"payments": {"payment": {"amount_paid": "199.98"}}}"#,
            r#"{"payments": {"payment": [{"amount-paid": "199.98"}]}}"#,
            r#"{"payments": [{"AMOUNT_PAID": 199.98}]}"#,
        ] {
            let p = payments_from_request(&json(body)).expect(body);
            assert_eq!(p.len(), 1, "{body}");
            assert_eq!(p[0].amount_paid, Some(Decimal::new(19998, 2)), "{body}");
        }
        assert!(
            payments_from_request(&json(r#"{"paid": true}"#))
                .expect("none")
                .is_empty()
        );
        let e = payments_from_request(&json(r#"{"payments": [{"amount-paid": "1,5"}]}"#))
            .expect_err("comma");
        assert_eq!(e.path, "payments[0].amount-paid");
    }
}
