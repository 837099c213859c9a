//! `POST /api/erp/payments`: an ERP that would rather push its payments than have them read from
//! its tables delivers them here; they land in `erp_payments` as pending rows, exactly as an AP
//! clerk's would, and the payment push flow is woken to send them to Coupa at once.
//!
//! The body is a JSON array of payments, or `{"payments": [...]}`. Every row is validated on its
//! own and answered on its own (`recorded`, `already-recorded` or `rejected` with every problem,
//! each naming `payments[i].field`), so one bad row never holds back the good ones: those are
//! committed before the answer is sent. Delivery is idempotent by `payment_ref`: a sender that
//! lost our answer sends the batch again and is told `already-recorded`; the same reference with
//! another invoice, amount or currency is refused as a conflict.
//!
//! Amounts are read from the JSON number's own text (serde_json's `arbitrary_precision`), never
//! through `f64`, so `1234.50` is recorded as `1234.50`.
//!
//! The body must be sent as `application/json`: a browser sends that content type cross-site
//! only after a CORS preflight this server never grants, so a page elsewhere cannot use a
//! browser's remembered Basic credentials to post payments.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{Map, Value};

use super::WebState;
use crate::erp::NewErpPayment;
use crate::flows::FlowName;

/// The largest body taken.
pub const MAX_BODY_BYTES: usize = 5 * 1024 * 1024;
/// The most payments one request may carry: one ERP transaction per request stays short.
pub const MAX_ROWS: usize = 10_000;
/// The longest text value, in characters (the ERP's columns and Coupa's fields take this much).
pub const MAX_TEXT_CHARS: usize = 255;
/// How much of a bad value an error quotes.
const QUOTED_CHARS: usize = 64;

const FIELDS: [&str; 9] = [
    "payment_ref",
    "invoice_number",
    "amount",
    "currency",
    "payment_date",
    "supplier_name",
    "supplier_number",
    "check_number",
    "paid_in_full",
];

pub fn routes() -> Router<WebState> {
    Router::new().route(
        "/api/erp/payments",
        post(push).layer(DefaultBodyLimit::max(MAX_BODY_BYTES)),
    )
}

/// The answer to a batch that could be read.
#[derive(Debug, Serialize)]
struct Answer {
    /// Rows recorded now or already before.
    accepted: usize,
    rejected: usize,
    results: Vec<RowResult>,
}

#[derive(Debug, Serialize)]
struct RowResult {
    index: usize,
    /// As sent, when it was a string.
    payment_ref: Option<String>,
    /// `recorded`, `already-recorded` or `rejected`.
    status: &'static str,
    /// The ERP payment the row is.
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<String>,
}

async fn push(
    State(state): State<WebState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if !is_json(&headers) {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the payments as Content-Type: application/json".into(),
        );
    }
    let body = match body {
        Ok(body) => body,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "the body is over {} MB: send the payments in smaller batches",
                    MAX_BODY_BYTES / (1024 * 1024)
                ),
            );
        }
        Err(e) => return error(e.status(), format!("reading the body: {}", e.body_text())),
    };
    let rows = match parse_rows(&body) {
        Ok(rows) => rows,
        Err(response) => return *response,
    };
    if rows.len() > MAX_ROWS {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{} payments in one request, at most {MAX_ROWS} are taken: send them in smaller \
                 batches",
                rows.len()
            ),
        );
    }

    let mut results: Vec<RowResult> = Vec::with_capacity(rows.len());
    let mut good: Vec<(usize, NewErpPayment)> = Vec::new();
    let mut first_seen: HashMap<String, usize> = HashMap::with_capacity(rows.len());
    for (index, row) in rows.iter().enumerate() {
        let payment_ref = row
            .get("payment_ref")
            .and_then(Value::as_str)
            .map(str::to_owned);
        let mut checked = validate(index, row);
        if let Some(r) = payment_ref
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty())
        {
            if let Some(earlier) = first_seen.get(r) {
                let problem = format!(
                    "payments[{index}].payment_ref: {} appears earlier in this request, at \
                     payments[{earlier}]",
                    quote(r)
                );
                match &mut checked {
                    Ok(_) => checked = Err(vec![problem]),
                    Err(problems) => problems.push(problem),
                }
            } else {
                first_seen.insert(r.to_owned(), index);
            }
        }
        let errors = match checked {
            Ok(payment) => {
                good.push((index, payment));
                Vec::new()
            }
            Err(problems) => problems,
        };
        results.push(RowResult {
            index,
            payment_ref,
            status: "rejected",
            id: None,
            errors,
        });
    }

    let payments: Vec<NewErpPayment> = good.iter().map(|(_, p)| p.clone()).collect();
    let accepted = match state.connector.ledger.accept_payments(&payments).await {
        Ok(accepted) => accepted,
        Err(e) => {
            tracing::warn!(payments = payments.len(), error = %e, "ERP push: not recorded");
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{e}; nothing was recorded, send the batch again later"),
            );
        }
    };
    let mut recorded = 0;
    for ((index, _), outcome) in good.iter().zip(&accepted) {
        let result = &mut results[*index];
        match outcome.conflict() {
            Some(reason) => {
                result.errors = vec![format!("payments[{index}].payment_ref: {reason}")];
            }
            None => {
                result.id = Some(outcome.id());
                result.errors.clear();
                result.status = if outcome.is_new() {
                    recorded += 1;
                    "recorded"
                } else {
                    "already-recorded"
                };
            }
        }
    }
    let taken = results.iter().filter(|r| r.status != "rejected").count();
    let answer = Answer {
        accepted: taken,
        rejected: results.len() - taken,
        results,
    };
    tracing::info!(
        payments = answer.results.len(),
        recorded,
        already_recorded = taken - recorded,
        rejected = answer.rejected,
        "ERP push"
    );
    if recorded > 0 {
        state.triggers.trigger(FlowName::Payments);
    }
    (StatusCode::OK, axum::Json(answer)).into_response()
}

/// `application/json`, with or without parameters.
fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"))
}

/// The payment rows of a body: a JSON array, or an object whose only field is `payments`.
fn parse_rows(body: &[u8]) -> Result<Vec<Value>, Box<Response>> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        Box::new(
            (
                StatusCode::BAD_REQUEST,
                axum::Json(serde_json::json!({
                    "error": format!("the body is not valid JSON: {e}"),
                    "line": e.line(),
                    "column": e.column(),
                })),
            )
                .into_response(),
        )
    })?;
    let shape = |what: String| Box::new(error(StatusCode::BAD_REQUEST, what));
    match value {
        Value::Array(rows) => Ok(rows),
        Value::Object(mut top) => {
            let rows = top.shift_remove("payments");
            if let Some(other) = top.keys().next() {
                return Err(shape(format!(
                    "unknown top-level field {}: expected {{\"payments\": [...]}} or an array",
                    quote(other)
                )));
            }
            match rows {
                Some(Value::Array(rows)) => Ok(rows),
                Some(other) => Err(shape(format!(
                    "payments must be an array, is {}",
                    kind(&other)
                ))),
                None => Err(shape(
                    "no payments: expected {\"payments\": [...]} or an array".into(),
                )),
            }
        }
        other => Err(shape(format!(
            "expected an array of payments or {{\"payments\": [...]}}, got {}",
            kind(&other)
        ))),
    }
}

/// One row as a payment, or every problem it has, each starting `payments[index].field:`.
fn validate(index: usize, row: &Value) -> Result<NewErpPayment, Vec<String>> {
    let Some(row) = row.as_object() else {
        return Err(vec![format!(
            "payments[{index}]: expected an object, got {}",
            kind(row)
        )]);
    };
    let mut problems = Vec::new();
    let mut problem = |field: &str, what: String| {
        problems.push(format!("payments[{index}].{field}: {what}"));
    };
    for field in row.keys() {
        if !FIELDS.contains(&field.as_str()) {
            problem(field, "unknown field".into());
        }
    }
    let payment_ref = required_text(row, "payment_ref", &mut problem);
    let invoice_number = required_text(row, "invoice_number", &mut problem);
    let supplier_name = optional_text(row, "supplier_name", &mut problem);
    let supplier_number = optional_text(row, "supplier_number", &mut problem);
    let check_number = optional_text(row, "check_number", &mut problem);
    let amount = amount(row, &mut problem);

    let currency = required_text(row, "currency", &mut problem).filter(|c| {
        let ok = c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase());
        if !ok {
            problem(
                "currency",
                format!("{} is not a currency code (3 capital letters)", quote(c)),
            );
        }
        ok
    });
    let payment_date = required_text(row, "payment_date", &mut problem).and_then(|d| {
        let date = NaiveDate::parse_from_str(&d, "%Y-%m-%d")
            .ok()
            // chrono also takes `2026-1-5`; only the canonical form is a date here.
            .filter(|date| date.format("%Y-%m-%d").to_string() == d);
        if date.is_none() {
            problem(
                "payment_date",
                format!("{} is not a date (YYYY-MM-DD)", quote(&d)),
            );
        }
        date
    });
    let paid_in_full = match row.get("paid_in_full") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            problem(
                "paid_in_full",
                format!("expected true or false, got {}", kind(other)),
            );
            false
        }
    };
    // A bad supplier value was named already; "neither" is for when both are simply not given.
    let missing_supplier = matches!((&supplier_name, &supplier_number), (Some(None), Some(None)));
    if missing_supplier {
        problems.push(format!(
            "payments[{index}]: neither supplier_name nor supplier_number is set"
        ));
    }

    match (
        payment_ref,
        invoice_number,
        amount,
        currency,
        payment_date,
        problems.is_empty(),
    ) {
        (
            Some(payment_ref),
            Some(invoice_number),
            Some(amount),
            Some(currency),
            Some(payment_date),
            true,
        ) => Ok(NewErpPayment {
            payment_ref,
            invoice_number,
            supplier_name: supplier_name.flatten(),
            supplier_number: supplier_number.flatten(),
            amount,
            currency,
            payment_date,
            check_number: check_number.flatten(),
            paid_in_full,
        }),
        _ => Err(problems),
    }
}

/// A text field that must be there and not blank, trimmed; `None` (and a problem) otherwise.
fn required_text(
    row: &Map<String, Value>,
    field: &str,
    problem: &mut impl FnMut(&str, String),
) -> Option<String> {
    match text(row, field, problem) {
        Some(Some(v)) => Some(v),
        Some(None) => {
            problem(field, "must not be empty".into());
            None
        }
        None if row.get(field).is_none_or(Value::is_null) => {
            problem(field, "missing".into());
            None
        }
        None => None,
    }
}

/// A text field that may be absent, null or blank (all `Some(None)`); `None` when it is there
/// but bad (a problem was noted).
fn optional_text(
    row: &Map<String, Value>,
    field: &str,
    problem: &mut impl FnMut(&str, String),
) -> Option<Option<String>> {
    match row.get(field) {
        None | Some(Value::Null) => Some(None),
        Some(_) => text(row, field, problem),
    }
}

/// `Some(Some(trimmed))` for a non-blank string within [`MAX_TEXT_CHARS`], `Some(None)` for a
/// blank one, `None` when absent, null, or bad (a problem was noted for bad).
fn text(
    row: &Map<String, Value>,
    field: &str,
    problem: &mut impl FnMut(&str, String),
) -> Option<Option<String>> {
    match row.get(field)? {
        Value::Null => None,
        Value::String(s) => {
            let s = s.trim();
            if s.chars().count() > MAX_TEXT_CHARS {
                problem(field, format!("longer than {MAX_TEXT_CHARS} characters"));
                None
            } else if s.is_empty() {
                Some(None)
            } else {
                Some(Some(s.to_owned()))
            }
        }
        other => {
            problem(field, format!("expected a string, got {}", kind(other)));
            None
        }
    }
}

/// The amount, from a JSON string or a JSON number's own text: plain decimal notation, exact,
/// above zero.
fn amount(row: &Map<String, Value>, problem: &mut impl FnMut(&str, String)) -> Option<Decimal> {
    let text = match row.get("amount") {
        None | Some(Value::Null) => {
            problem("amount", "missing".into());
            return None;
        }
        Some(Value::String(s)) => s.trim().to_owned(),
        // With `arbitrary_precision` a number keeps the digits it was sent with.
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => {
            problem(
                "amount",
                format!("expected a decimal string or number, got {}", kind(other)),
            );
            return None;
        }
    };
    match plain_decimal(&text) {
        None => {
            problem("amount", format!("invalid decimal {}", quote(&text)));
            None
        }
        Some(a) if a <= Decimal::ZERO => {
            problem("amount", format!("must be above zero, is {text}"));
            None
        }
        Some(a) => Some(a),
    }
}

/// `s` as a decimal if it is plain notation (`12.50`, `-3`, no exponent, no separators) that a
/// [`Decimal`] holds exactly: money is read exactly or refused, never rounded.
fn plain_decimal(s: &str) -> Option<Decimal> {
    let unsigned = s.strip_prefix('-').unwrap_or(s);
    let (int, frac) = match unsigned.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (unsigned, None),
    };
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || frac.is_some_and(|f| !digits(f)) {
        return None;
    }
    Decimal::from_str_exact(s).ok()
}

/// A value as an error quotes it: a JSON string, cut after [`QUOTED_CHARS`] characters.
fn quote(s: &str) -> String {
    let cut: String = s.chars().take(QUOTED_CHARS).collect();
    let quoted = serde_json::to_string(&cut).unwrap_or_else(|_| format!("\"{cut}\""));
    if cut.len() < s.len() {
        format!("{quoted}...")
    } else {
        quoted
    }
}

/// What kind of JSON value `v` is, for "expected ..., got a number".
fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn error(status: StatusCode, message: String) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message }))).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(json: &str) -> Value {
        serde_json::from_str(json).expect("test JSON")
    }

    const GOOD: &str = r#"{"payment_ref": "P-1", "invoice_number": "INV-1",
        "supplier_number": "S-1", "amount": "12.50", "currency": "USD",
        "payment_date": "2026-03-31"}"#;

    #[test]
    fn a_good_row_is_a_payment() {
        let p = validate(0, &row(GOOD)).expect("good row");
        assert_eq!(p.payment_ref, "P-1");
        assert_eq!(p.amount.to_string(), "12.50");
        assert_eq!(p.supplier_number.as_deref(), Some("S-1"));
        assert_eq!(p.supplier_name, None);
        assert!(!p.paid_in_full);
        assert_eq!(p.check_number, None);
    }

    #[test]
    fn numbers_keep_their_digits() {
        let mut v = row(GOOD);
        v["amount"] = row("1234.50");
        assert_eq!(
            validate(0, &v).expect("good row").amount.to_string(),
            "1234.50"
        );
        v["amount"] = row("0.1000000000000000000000000001");
        assert_eq!(
            validate(0, &v).expect("good row").amount.to_string(),
            "0.1000000000000000000000000001"
        );
        for (bad, why) in [
            // serde_json keeps a number's digits but writes its exponent its own way.
            ("1e3", "payments[2].amount: invalid decimal \"1e+3\""),
            ("\"abc\"", "payments[2].amount: invalid decimal \"abc\""),
            ("\"1,50\"", "payments[2].amount: invalid decimal \"1,50\""),
            ("0", "payments[2].amount: must be above zero, is 0"),
            (
                "\"-5.00\"",
                "payments[2].amount: must be above zero, is -5.00",
            ),
            (
                "true",
                "payments[2].amount: expected a decimal string or number, got a boolean",
            ),
        ] {
            v["amount"] = row(bad);
            assert_eq!(validate(2, &v).expect_err(bad), vec![why.to_owned()]);
        }
    }

    #[test]
    fn every_problem_names_its_field() {
        let v = row(
            r#"{"payment_ref": "", "amount": "x", "currency": "usd", "payment_date": "2026-02-30",
               "check_number": 7, "paid_in_full": "yes", "memo": "hi"}"#,
        );
        assert_eq!(
            validate(4, &v).expect_err("bad row"),
            vec![
                "payments[4].memo: unknown field",
                "payments[4].payment_ref: must not be empty",
                "payments[4].invoice_number: missing",
                "payments[4].check_number: expected a string, got a number",
                "payments[4].amount: invalid decimal \"x\"",
                "payments[4].currency: \"usd\" is not a currency code (3 capital letters)",
                "payments[4].payment_date: \"2026-02-30\" is not a date (YYYY-MM-DD)",
                "payments[4].paid_in_full: expected true or false, got a string",
                "payments[4]: neither supplier_name nor supplier_number is set",
            ]
        );
        assert_eq!(
            validate(1, &row("[1]")).expect_err("not an object"),
            vec!["payments[1]: expected an object, got an array"]
        );
        let mut v = row(GOOD);
        v["check_number"] = Value::String("9".repeat(MAX_TEXT_CHARS + 1));
        assert_eq!(
            validate(0, &v).expect_err("too long"),
            vec!["payments[0].check_number: longer than 255 characters"]
        );
    }

    #[test]
    fn long_values_are_cut_in_errors() {
        let q = quote(&"a".repeat(1000));
        assert_eq!(q, format!("\"{}\"...", "a".repeat(QUOTED_CHARS)));
        assert_eq!(quote("say \"hi\""), "\"say \\\"hi\\\"\"");
    }
}
