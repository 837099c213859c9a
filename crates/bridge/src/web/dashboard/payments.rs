//! `/payments`: the ERP payments not (yet) on their Coupa invoice: failed ones first, with the
//! reason Coupa or the matching gave, then pending ones; and how many are synced.

use askama::Template;
use axum::extract::State;

use super::view::{self, PageResult};
use crate::erp::ErpPaymentRecord;
use crate::flows::FlowName;
use crate::web::WebState;

#[derive(Template)]
#[template(path = "dashboard/payments.html")]
struct PaymentsPage {
    version: &'static str,
    pending: u64,
    synced: u64,
    failed: u64,
    rows: Vec<PaymentRow>,
}

struct PaymentRow {
    payment_ref: String,
    link: String,
    invoice_number: String,
    supplier: String,
    amount: String,
    payment_date: String,
    status: String,
    badge: &'static str,
    reason: String,
}

/// Rows shown of each status; the counts above them are exact.
const ROWS: usize = 500;

pub async fn page(State(state): State<WebState>) -> PageResult {
    let erp = &state.connector.ledger;
    let (pending, synced, failed) = erp.payment_counts().await?;
    // Failed first (they need a person), the latest first; then pending, oldest first.
    let mut open: Vec<ErpPaymentRecord> = erp.payments_with_status("failed", ROWS).await?;
    open.extend(erp.payments_with_status("pending", ROWS).await?);
    let rows = open
        .into_iter()
        .map(|p| PaymentRow {
            link: view::document_link(
                FlowName::Payments.as_str(),
                &format!("erp-payment:{}", p.payment_ref),
            ),
            badge: view::badge(&p.sync_status),
            supplier: view::supplier(p.supplier_name, p.supplier_number),
            amount: format!("{} {}", p.amount, p.currency),
            payment_ref: p.payment_ref,
            invoice_number: p.invoice_number,
            payment_date: p.payment_date,
            status: p.sync_status,
            reason: p.sync_error.unwrap_or_default(),
        })
        .collect();
    let page = PaymentsPage {
        version: view::VERSION,
        pending,
        synced,
        failed,
        rows,
    };
    Ok(view::render(&page))
}
