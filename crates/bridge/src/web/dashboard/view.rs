//! What every page shares: rendering a template into a response, the error pages, and the
//! small formatting rules (times, durations, links, outcomes of documents) that make the pages
//! read the same everywhere.
//!
//! Templates only loop and print: every value they show is prepared here or in the page's
//! module as text, so formatting is plain Rust, unit-tested, and askama's escaping applies to
//! all of it.

use askama::Template;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::flows::FlowName;
use crate::flows::invoice_export::ErpOutcome;
use crate::store::RunRecord;

/// The version shown in every page's footer.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Renders `page`, or the error page when the template fails (it cannot, short of a bug).
pub fn render(page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "a dashboard template failed to render");
            PageError::Internal(format!("rendering the page: {e}")).into_response()
        }
    }
}

/// Why a page cannot be shown; rendered as a page of the dashboard with the matching status.
#[derive(Debug)]
pub enum PageError {
    NotFound(String),
    BadRequest(String),
    Forbidden(String),
    /// The store, the ERP or Coupa failed; the message names the operation.
    Internal(String),
}

impl PageError {
    fn parts(&self) -> (StatusCode, &'static str, &str) {
        match self {
            PageError::NotFound(m) => (StatusCode::NOT_FOUND, "Not found", m),
            PageError::BadRequest(m) => (StatusCode::BAD_REQUEST, "Bad request", m),
            PageError::Forbidden(m) => (StatusCode::FORBIDDEN, "Forbidden", m),
            PageError::Internal(m) => (StatusCode::INTERNAL_SERVER_ERROR, "Something failed", m),
        }
    }
}

#[derive(Template)]
#[template(path = "dashboard/error.html")]
struct ErrorPage<'a> {
    version: &'static str,
    status: u16,
    heading: &'a str,
    message: &'a str,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, heading, message) = self.parts();
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            tracing::error!(error = %message, "a dashboard page failed");
        }
        let page = ErrorPage {
            version: VERSION,
            status: status.as_u16(),
            heading,
            message,
        };
        // The error page has no fallible parts; plain text if it fails all the same.
        let body = page
            .render()
            .unwrap_or_else(|_| format!("{heading}: {message}"));
        (status, Html(body)).into_response()
    }
}

impl From<crate::store::StoreError> for PageError {
    fn from(e: crate::store::StoreError) -> Self {
        PageError::Internal(e.to_string())
    }
}

impl From<crate::erp::ErpError> for PageError {
    fn from(e: crate::erp::ErpError) -> Self {
        PageError::Internal(e.to_string())
    }
}

impl From<anyhow::Error> for PageError {
    fn from(e: anyhow::Error) -> Self {
        PageError::Internal(format!("{e:#}"))
    }
}

pub type PageResult = Result<Response, PageError>;

/// `2026-11-21 06:30:11 UTC`.
pub fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// [`time`], or "not recorded" for the Unix epoch, which stands in for a missing instant.
pub fn time_if_known(t: DateTime<Utc>) -> String {
    if t.timestamp() == 0 {
        "not recorded".to_owned()
    } else {
        time(t)
    }
}

/// `850 ms`, `12.4 s`, `3 min 05 s`, `2 h 04 min`.
pub fn duration(d: chrono::Duration) -> String {
    let ms = d.num_milliseconds().max(0);
    if ms < 1_000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else if ms < 3_600_000 {
        format!("{} min {:02} s", ms / 60_000, (ms % 60_000) / 1000)
    } else {
        format!("{} h {:02} min", ms / 3_600_000, (ms % 3_600_000) / 60_000)
    }
}

/// Percent-encodes `s` for a URL path segment or a query value: everything but the unreserved
/// characters and `:` (kept so document keys read as they are: `invoice:1042`).
pub fn url_part(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b':') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn run_link(run: i64) -> String {
    format!("/runs/{run}")
}

pub fn document_link(flow: &str, key: &str) -> String {
    format!("/documents/{}/{}", url_part(flow), url_part(key))
}

/// The title of a flow named in the store, or the name itself when it is not one we know.
pub fn flow_title(flow: &str) -> String {
    FlowName::parse(flow).map_or_else(|| flow.to_owned(), |f| f.title().to_owned())
}

/// A supplier as a person reads it: `Name (number)`, or whichever of the two the ERP row has.
pub fn supplier(name: Option<String>, number: Option<String>) -> String {
    match (name, number) {
        (Some(name), Some(number)) => format!("{name} ({number})"),
        (Some(name), None) => name,
        (None, Some(number)) => number,
        (None, None) => String::new(),
    }
}

/// The CSS class of a status badge, from a closed list so stored text never becomes markup.
pub fn badge(status: &str) -> &'static str {
    match status {
        "succeeded" | "ok" | "synced" | "2xx" | "3xx" => "good",
        "partial" | "pending" | "in progress" | "running" | "429" | "left" => "warn",
        "failed" | "4xx" | "5xx" | "error" => "bad",
        _ => "plain",
    }
}

/// One run as a row of a table.
#[derive(Clone, Debug)]
pub struct RunRow {
    pub id: i64,
    pub link: String,
    pub flow: String,
    pub started: String,
    pub status: String,
    pub badge: &'static str,
    pub ok: u64,
    pub failed: u64,
    pub skipped: u64,
    pub calls: u64,
    pub duration: String,
    pub error: String,
}

impl RunRow {
    pub fn new(run: &RunRecord, now: DateTime<Utc>) -> RunRow {
        let duration = match run.finished_at {
            Some(end) => duration(end - run.started_at),
            None => format!("{} so far", self::duration(now - run.started_at)),
        };
        RunRow {
            id: run.id,
            link: run_link(run.id),
            flow: flow_title(&run.flow),
            started: time(run.started_at),
            status: run.status.clone(),
            badge: badge(&run.status),
            ok: run.documents_ok,
            failed: run.documents_failed,
            skipped: run.documents_skipped,
            calls: run.api_calls,
            duration,
            error: run.error.clone().unwrap_or_default(),
        }
    }
}

/// Where a document stands after a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Reached a final state that needs nobody.
    Ok,
    /// Reached a final state that needs a person (rejected, refused, abandoned).
    Failed,
    /// Between steps: the next pass carries it on.
    InProgress,
}

impl Outcome {
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::InProgress => "in progress",
        }
    }
}

/// What a journal step means for the document, and the detail in a sentence (the reasons of a
/// failure, the ERP document number of a success).
pub fn outcome(flow: &str, key: &str, step: &str, detail: &str) -> (Outcome, String) {
    let summary = summarise(detail);
    let outcome = match (flow, step) {
        // Only the last step is final: a rejection on its way to Coupa is still in progress.
        ("invoices", "exported") if invoice_rejected(detail) => Outcome::Failed,
        ("invoices", "exported") => Outcome::Ok,
        ("pay-payments", "done" | "done-unapplied") => Outcome::Ok,
        ("pay-payments", "refused") => Outcome::Failed,
        ("payments", "settled") if key.starts_with("file:") => Outcome::Ok,
        ("payments", "abandoned") => Outcome::Failed,
        _ => Outcome::InProgress,
    };
    (outcome, summary)
}

fn invoice_rejected(detail: &str) -> bool {
    serde_json::from_str::<Value>(detail)
        .ok()
        .and_then(|v| serde_json::from_value::<ErpOutcome>(v.get("erp")?.clone()).ok())
        .is_some_and(|o| matches!(o, ErpOutcome::Rejected { .. }))
}

/// Longest summary of a journal detail shown in a table.
const SUMMARY_MAX: usize = 300;

/// A journal detail in a sentence: the ERP's answer of an invoice, the changes of a Coupa Pay
/// payment, the rows of a payment file; other text as it is, cut to a readable length.
pub fn summarise(detail: &str) -> String {
    let detail = detail.trim();
    let Ok(Value::Object(obj)) = serde_json::from_str::<Value>(detail) else {
        return cut(detail);
    };
    let mut parts = Vec::new();
    if let Some(erp) = obj.get("erp")
        && let Ok(o) = serde_json::from_value::<ErpOutcome>(erp.clone())
    {
        parts.push(match o {
            ErpOutcome::Rejected { reasons } => format!("rejected: {}", reasons.join("; ")),
            other => other
                .status_text()
                .trim_start_matches("Success: ")
                .to_owned(),
        });
    }
    let text = |k: &str| obj.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    let list = |k: &str| -> Vec<String> {
        obj.get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    if parts.is_empty()
        && let Some(status) = text("status")
    {
        parts.push(format!("status {status}"));
    }
    if let Some(change) = text("change") {
        parts.push(change.to_owned());
    }
    if let Some(error) = text("error_text") {
        parts.push(format!("Coupa error: {error}"));
    }
    for (k, label) in [
        ("unapplied", "unapplied"),
        ("paid", "paid"),
        ("reopened", "reopened"),
    ] {
        let items = list(k);
        if !items.is_empty() {
            parts.push(format!("{label}: {}", items.join("; ")));
        }
    }
    if let Some(rows) = obj.get("rows").and_then(Value::as_array) {
        parts.push(format!(
            "{} payment{} in the file",
            rows.len(),
            if rows.len() == 1 { "" } else { "s" }
        ));
    }
    if let Some(record) = obj.get("record").and_then(Value::as_i64) {
        parts.push(format!("Coupa record {record}"));
    }
    if parts.is_empty() {
        return cut(detail);
    }
    cut(&parts.join("; "))
}

fn cut(s: &str) -> String {
    if s.chars().count() <= SUMMARY_MAX {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(SUMMARY_MAX - 1).collect();
    out.push('…');
    out
}

/// Compares two secrets in time that does not depend on where they differ.
pub fn same_secret(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        let ms = chrono::Duration::milliseconds;
        assert_eq!(duration(ms(850)), "850 ms");
        assert_eq!(duration(ms(12_400)), "12.4 s");
        assert_eq!(duration(ms(185_000)), "3 min 05 s");
        assert_eq!(duration(ms(7_440_000)), "2 h 04 min");
        assert_eq!(duration(ms(-5)), "0 ms");
    }

    #[test]
    fn links_encode_what_is_not_plain() {
        assert_eq!(
            document_link("invoices", "invoice:1042"),
            "/documents/invoices/invoice:1042"
        );
        assert_eq!(
            document_link("payments", "erp-payment:A/B <x>"),
            "/documents/payments/erp-payment:A%2FB%20%3Cx%3E"
        );
        assert_eq!(url_part("é"), "%C3%A9");
    }

    #[test]
    fn outcomes_of_journal_steps() {
        let rejected = r#"{"status":"approved","erp":{"outcome":"rejected","reasons":["supplier S-9 unknown","period 2024-01 closed"]},"before":[]}"#;
        assert_eq!(
            outcome("invoices", "invoice:1", "exported", rejected),
            (
                Outcome::Failed,
                "rejected: supplier S-9 unknown; period 2024-01 closed".to_owned()
            )
        );
        let posted = r#"{"status":"approved","erp":{"outcome":"posted","document_number":"ERP-000007","already_posted":false},"record":12}"#;
        assert_eq!(
            outcome("invoices", "invoice:2", "exported", posted),
            (
                Outcome::Ok,
                "posted to the ERP as ERP-000007; Coupa record 12".to_owned()
            )
        );
        assert_eq!(
            outcome("invoices", "invoice:2", "posted", posted).0,
            Outcome::InProgress
        );
        assert_eq!(
            outcome("invoices", "invoice:1", "recorded", rejected).0,
            Outcome::InProgress,
            "rejected, not yet acknowledged"
        );
        assert_eq!(
            outcome("pay-payments", "payment:3", "refused", "no pay-to account"),
            (Outcome::Failed, "no pay-to account".to_owned())
        );
        let pay = r#"{"status":"completed_successfully","change":"inserted","unapplied":["detail 4: invoice INV-1 not in the ERP"]}"#;
        assert_eq!(
            outcome("pay-payments", "payment:3", "done-unapplied", pay),
            (
                Outcome::Ok,
                "status completed_successfully; inserted; unapplied: detail 4: invoice INV-1 not in the ERP"
                    .to_owned()
            )
        );
        let file = r#"{"name":"p.csv","rows":[{"payment_id":1,"payment_ref":"R","invoice_id":2}]}"#;
        assert_eq!(
            outcome("payments", "file:p.csv", "settled", file),
            (Outcome::Ok, "1 payment in the file".to_owned())
        );
        let long = "x".repeat(1000);
        assert_eq!(summarise(&long).chars().count(), SUMMARY_MAX);
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret(b"abc", b"abc"));
        assert!(!same_secret(b"abc", b"abd"));
        assert!(!same_secret(b"abc", b"abcd"));
        assert!(!same_secret(b"", b"a"));
    }

    #[test]
    fn badges_come_from_a_closed_list() {
        assert_eq!(badge("failed"), "bad");
        assert_eq!(badge("<script>"), "plain");
    }
}
