//! The invoice payment payloads Coupa accepts on `PUT /api/invoices/{id}` (seed 004, seed
//! 000, coupa-api.md section 6).
//!
//! Accepted shapes, all read into one [`PaymentUpdate`]:
//! - XML `<invoice-header><payments type="array"><payment>...` (with or without
//!   `type="array"`, with `nil="true"` on elements that carry values);
//! - JSON `{"payments":{"payment":{...}}}` (format 1), `{"payments":{"payment":[...]}}`
//!   (formats 2 and 4), `{"payments":[...]}` (format 3);
//! - keys with dashes or underscores; amounts as strings or numbers; the date forms of
//!   [`coupa_doc::lenient::parse_datetime`]; booleans as `true`/`"false"`.
//!
//! `check-number` is deprecated: "any data sent to the deprecated tag will be stored in the
//! notes field". When a payment carries both, the check number is what lands in `notes`
//! (it is the field the CSV loader's duplicate check and ERPs key on).

use coupa_doc::{Object, Value};

use crate::store::{NewPayment, PaymentHeader};

/// Payments to append and header fields to set.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PaymentUpdate {
    pub payments: Vec<NewPayment>,
    pub header: PaymentHeader,
}

/// The keys of a body that belong to payments; the invoice handler leaves them to this module.
pub const PAYMENT_KEYS: &[&str] = &["payments", "paid", "payment-date", "payment-notes"];

/// Reads the payment part of an invoice update. `None` when the body has no payment fields.
/// Errors name the payment (1-based, in the order sent) and the field.
pub fn parse(body: &Object, invoice_id: i64) -> Result<Option<PaymentUpdate>, Vec<String>> {
    if !PAYMENT_KEYS.iter().any(|k| body.contains_key(k)) {
        return Ok(None);
    }
    let mut errors = Vec::new();
    let mut update = PaymentUpdate::default();

    match body.get("paid") {
        None | Some(Value::Null) => {}
        Some(v) => match v.as_bool() {
            Some(b) => update.header.paid = Some(b),
            None => errors.push(format!(
                "Paid '{}' is not true or false",
                v.to_plain_string()
            )),
        },
    }
    match body.get("payment-date") {
        None | Some(Value::Null) => {}
        Some(v) => match v.as_datetime() {
            Some(d) => update.header.payment_date = Some(d),
            None => errors.push(format!(
                "Payment date '{}' is not a valid date",
                v.to_plain_string()
            )),
        },
    }
    if let Some(v) = body.get("payment-notes").filter(|v| !v.is_null()) {
        update.header.payment_notes = Some(v.to_plain_string());
    }

    for (i, p) in payment_items(body.get("payments")).into_iter().enumerate() {
        let n = i + 1;
        let Some(p) = p.as_object() else {
            errors.push(format!("Payment {n} is not an object"));
            continue;
        };
        let amount = match p.get("amount-paid") {
            None | Some(Value::Null) => {
                errors.push(format!("Payment {n}: Amount paid can't be blank"));
                None
            }
            Some(v) => {
                let d = v.as_decimal();
                if d.is_none() {
                    errors.push(format!(
                        "Payment {n}: Amount paid '{}' is not a number",
                        v.to_plain_string()
                    ));
                }
                d
            }
        };
        let date = match p.get("payment-date") {
            None | Some(Value::Null) => None,
            Some(v) => {
                let d = v.as_datetime();
                if d.is_none() {
                    errors.push(format!(
                        "Payment {n}: Payment date '{}' is not a valid date",
                        v.to_plain_string()
                    ));
                }
                d
            }
        };
        if let Some(pid) = p.get("payable-id").filter(|v| !v.is_null())
            && pid.as_i64() != Some(invoice_id)
        {
            errors.push(format!(
                "Payment {n}: payable-id {} is not invoice {invoice_id}",
                pid.to_plain_string()
            ));
        }
        let text = |key: &str| {
            p.get(key)
                .filter(|v| !v.is_null())
                .map(Value::to_plain_string)
                .filter(|s| !s.is_empty())
        };
        let notes = text("check-number").or_else(|| text("notes"));
        if let Some(amount) = amount {
            update.payments.push(NewPayment {
                amount_paid: amount,
                notes,
                payment_date: date,
            });
        }
    }
    if errors.is_empty() {
        Ok(Some(update))
    } else {
        Err(errors)
    }
}

/// The payment objects of every accepted `payments` shape.
fn payment_items(payments: Option<&Value>) -> Vec<&Value> {
    match payments {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.iter().collect(),
        Some(Value::Object(o)) => match o.get("payment") {
            Some(Value::Array(items)) => items.iter().collect(),
            Some(one @ Value::Object(_)) => vec![one],
            // A bare payment object without the `payment` wrapper.
            _ => vec![payments.unwrap_or(&Value::Null)],
        },
        Some(other) => vec![other],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;
    use std::str::FromStr;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).expect("decimal")
    }

    fn json(s: &str) -> Object {
        match coupa_doc::json::parse(s.as_bytes()).expect("json") {
            Value::Object(o) => o,
            other => panic!("not an object: {other:?}"),
        }
    }

    #[test]
    fn format_1_single_object_with_check_number() {
        let body = json(
            r#"{"payments":{"payment":{"check_number":"1234567","amount_paid":"199.98","notes":"String","payment_date":"9/12/2019"}},"paid":"false","payment_date":"9/11/2019","payment_notes":"Partial"}"#,
        );
        let u = parse(&body, 1).expect("valid").expect("has payments");
        assert_eq!(u.payments.len(), 1);
        assert_eq!(u.payments[0].amount_paid, dec("199.98"));
        assert_eq!(u.payments[0].notes.as_deref(), Some("1234567"));
        assert_eq!(
            u.payments[0]
                .payment_date
                .map(|d| d.date_naive().to_string()),
            Some("2019-09-12".to_owned())
        );
        assert_eq!(u.header.paid, Some(false));
        assert_eq!(u.header.payment_notes.as_deref(), Some("Partial"));
    }

    #[test]
    fn format_4_checks_the_payable_id() {
        let body = json(
            r#"{"payments":{"payment":[{"payable-type":"InvoiceHeader","payable-id":"4835","amount-paid":"49.00","notes":"X","payment-date":"2019-08-13T00:00:00Z"}]}}"#,
        );
        assert!(parse(&body, 4835).is_ok());
        let err = parse(&body, 4836).expect_err("wrong invoice");
        assert!(err[0].contains("payable-id 4835"), "{err:?}");
    }

    #[test]
    fn bad_amounts_and_dates_are_named() {
        let body = json(
            r#"{"payments":[{"amount_paid":"abc"},{"amount-paid":"1","payment-date":"someday"},{}]}"#,
        );
        let err = parse(&body, 1).expect_err("invalid");
        assert_eq!(err.len(), 3, "{err:?}");
        assert!(
            err[0].starts_with("Payment 1: Amount paid 'abc'"),
            "{err:?}"
        );
        assert!(
            err[1].starts_with("Payment 2: Payment date 'someday'"),
            "{err:?}"
        );
        assert!(
            err[2].starts_with("Payment 3: Amount paid can't be blank"),
            "{err:?}"
        );
    }

    #[test]
    fn bodies_without_payment_fields_are_not_payment_updates() {
        assert_eq!(parse(&json(r#"{"invoice_description":"x"}"#), 1), Ok(None));
    }
}
