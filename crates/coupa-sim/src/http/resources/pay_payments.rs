//! `/api/coupa_pay/payments`: "GET; PUT (only to mark exported)" (coupa-api.md section 8).
//!
//! Marking exported works in the three documented ways: `PUT /{id}?exported=true`, `PUT /{id}`
//! with a body `<coupa-pay-payment><exported>true</exported></coupa-pay-payment>` (or its JSON
//! twin), and `PUT /{id}/export`. Any other field in the body is ignored; a PUT that does not
//! say `exported` is refused, since there is nothing else an API user may change.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::routing::put;

use super::{body_object, list_route, param, show_route, update};
use crate::SimState;
use crate::http::format::{ApiError, Format, Reply};
use crate::store::Resource;

const R: Resource = Resource::PayPayments;

pub fn routes() -> Router<Arc<SimState>> {
    Router::new()
        .route("/api/coupa_pay/payments", list_route(R))
        .route(
            "/api/coupa_pay/payments/{id}",
            show_route(R).put(mark).patch(mark),
        )
        .route(
            "/api/coupa_pay/payments/{id}/export",
            put(
                |State(s): State<Arc<SimState>>,
                 h: HeaderMap,
                 RawQuery(q): RawQuery,
                 Path(id): Path<String>| async move {
                    set_exported(&s, &h, q.as_deref(), &id, true)
                },
            ),
        )
}

async fn mark(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Reply, ApiError> {
    let format = Format::of_accept(&headers);
    let q = q.as_deref();
    let flag = match param(q, "exported") {
        Some(flag) => flag,
        None => body_object(&headers, &body, R)?
            .get("exported")
            .map(coupa_doc::Value::to_plain_string)
            .ok_or_else(|| {
                ApiError::invalid(
                    format,
                    R,
                    vec![
                        "Coupa Pay payments can only be marked exported: send exported=true"
                            .to_owned(),
                    ],
                )
            })?,
    };
    let exported = coupa_doc::lenient::parse_bool(&flag).ok_or_else(|| {
        ApiError::bad_request(
            format,
            format!("invalid value '{flag}' for 'exported': expected true or false"),
        )
    })?;
    set_exported(&state, &headers, q, &id, exported)
}

fn set_exported(
    state: &SimState,
    headers: &HeaderMap,
    q: Option<&str>,
    id: &str,
    exported: bool,
) -> Result<Reply, ApiError> {
    let now = state.now();
    update(state, R, headers, q, id, |db, id| {
        if let Some(row) = db.pay_payments.get_mut(id) {
            row.insert("exported", exported);
            if exported {
                row.insert("last-exported-at", now);
            }
        }
        Ok(())
    })
}
