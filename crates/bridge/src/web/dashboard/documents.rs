//! `/documents/{flow}/{key}`: one document's timeline, its journal steps and the Coupa calls
//! made for it merged in time order, with where it stands now (and "Retry" when it failed).

use askama::Template;
use axum::extract::{Path, State};
use chrono::{DateTime, Utc};

use super::view::{self, Outcome, PageError, PageResult};
use crate::erp::ErpPaymentRecord;
use crate::flows::FlowName;
use crate::store::CallFilter;
use crate::web::WebState;

/// Calls shown on one document's timeline; a document needs a handful, retries included.
const CALLS_SHOWN: usize = 2_000;
const ERP_PAYMENT: &str = "erp-payment:";

#[derive(Template)]
#[template(path = "dashboard/document.html")]
struct DocumentPage {
    version: &'static str,
    flow: String,
    flow_title: &'static str,
    key: String,
    /// Where it stands: the last step's outcome, or the ERP row's status.
    state: String,
    badge: &'static str,
    summary: String,
    erp_payment: Option<ErpPaymentView>,
    retry: bool,
    csrf: String,
    timeline: Vec<Event>,
    steps: usize,
    calls: usize,
    calls_capped: bool,
}

struct ErpPaymentView {
    payment_ref: String,
    invoice_number: String,
    supplier: String,
    amount: String,
    payment_date: String,
    status: String,
    badge: &'static str,
    error: String,
    coupa_invoice: String,
}

/// One line of the timeline: a journal step or a call.
struct Event {
    at: DateTime<Utc>,
    at_text: String,
    kind: &'static str,
    what: String,
    run: Option<i64>,
    status: String,
    badge: &'static str,
    ms: String,
    attempt: String,
    detail: String,
}

pub async fn page(
    State(state): State<WebState>,
    Path((flow, key)): Path<(String, String)>,
) -> PageResult {
    let flow_name = FlowName::parse(&flow)
        .ok_or_else(|| PageError::NotFound(format!("There is no flow '{flow}'.")))?;
    let connector = &state.connector;
    let history = connector.store.journal_history(&flow, &key).await?;
    let calls = connector
        .store
        .calls(&CallFilter {
            flow: Some(flow.clone()),
            document: Some(key.clone()),
            limit: CALLS_SHOWN,
            ..CallFilter::default()
        })
        .await?;
    let erp_payment = match key.strip_prefix(ERP_PAYMENT) {
        Some(payment_ref) if flow_name == FlowName::Payments => connector
            .ledger
            .payments()
            .await?
            .into_iter()
            .find(|p| p.payment_ref == payment_ref),
        _ => None,
    };
    if history.is_empty() && calls.is_empty() && erp_payment.is_none() {
        return Err(PageError::NotFound(format!(
            "The {} flow has no record of document '{key}'.",
            flow_name.title()
        )));
    }

    let (mut state_text, mut badge, mut summary, mut failed) =
        ("no step recorded".to_owned(), "plain", String::new(), false);
    if let Some(last) = history.last() {
        let (outcome, text) = view::outcome(&flow, &key, &last.step, &last.detail);
        state_text = format!("{} (step {})", outcome.label(), last.step);
        badge = view::badge(outcome.label());
        summary = text;
        failed = outcome == Outcome::Failed;
    }
    if let Some(p) = &erp_payment {
        state_text = format!("ERP payment {}", p.sync_status);
        badge = view::badge(&p.sync_status);
        summary = p.sync_error.clone().unwrap_or_default();
        failed = p.sync_status == "failed";
    }

    let (steps, call_count) = (history.len(), calls.len());
    let mut timeline: Vec<Event> = calls
        .into_iter()
        .rev()
        .map(|c| {
            let status = c
                .status
                .map_or_else(|| "no answer".to_owned(), |s| s.to_string());
            let class = crate::store::calls::status_class(c.status);
            Event {
                at: c.at,
                at_text: precise(c.at),
                kind: "call",
                what: format!("{} {}", c.method, c.path),
                run: c.run,
                status,
                badge: view::badge(class),
                ms: format!("{} ms", c.duration_ms),
                attempt: c.attempt.to_string(),
                detail: c.error.unwrap_or_default(),
            }
        })
        .collect();
    timeline.extend(history.into_iter().map(|e| {
        let (outcome, text) = view::outcome(&flow, &key, &e.step, &e.detail);
        Event {
            at: e.updated_at,
            at_text: precise(e.updated_at),
            kind: "step",
            what: e.step,
            run: e.run,
            status: outcome.label().to_owned(),
            badge: view::badge(outcome.label()),
            ms: String::new(),
            attempt: String::new(),
            detail: text,
        }
    }));
    // Stable: at the same instant, the call that led to a step stays before it.
    timeline.sort_by_key(|e| e.at);

    let page = DocumentPage {
        version: view::VERSION,
        flow_title: flow_name.title(),
        flow,
        key,
        state: state_text,
        badge,
        summary,
        erp_payment: erp_payment.map(erp_view),
        retry: failed,
        csrf: state.csrf.to_string(),
        timeline,
        steps,
        calls: call_count,
        calls_capped: call_count == CALLS_SHOWN,
    };
    Ok(view::render(&page))
}

/// To the millisecond: a document's steps and calls are often within one second.
fn precise(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

fn erp_view(p: ErpPaymentRecord) -> ErpPaymentView {
    ErpPaymentView {
        badge: view::badge(&p.sync_status),
        supplier: view::supplier(p.supplier_name, p.supplier_number),
        amount: format!("{} {}", p.amount, p.currency),
        payment_ref: p.payment_ref,
        invoice_number: p.invoice_number,
        payment_date: p.payment_date,
        status: p.sync_status,
        error: p.sync_error.unwrap_or_default(),
        coupa_invoice: p
            .coupa_invoice_id
            .map(|i| i.to_string())
            .unwrap_or_default(),
    }
}
