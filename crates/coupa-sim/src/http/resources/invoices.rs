//! `/api/invoices`: index, show, and `PUT`/`PATCH /{id}`.
//!
//! An update is one of two things, as Coupa documents (coupa-api.md section 6):
//! - **mark exported**: `PUT /api/invoices/{id}?exported=true`. "Marking an object as exported
//!   requires its own request. Any other changes included may be ignored during the update":
//!   the body of such a request is ignored. It sets `exported` and `last-exported-at`.
//! - **anything else**: custom fields (`custom-fields`, only the ones defined on the instance),
//!   payments and the header payment fields (see [`crate::payments`]), and a few free-text
//!   header fields. `exported` in such a body is ignored: the flag moves only through its own
//!   request. Other keys (status, totals, lines, supplier...) are read-only here and ignored,
//!   as Coupa ignores attributes an API user may not change.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use coupa_doc::{Object, Value};

use super::{body_object, list_route, param, show_route, update};
use crate::SimState;
use crate::http::format::{ApiError, Format, Reply};
use crate::payments;
use crate::store::Resource;

const R: Resource = Resource::Invoices;

/// Header fields an API user may change on an invoice outside payments and custom fields.
const WRITABLE: &[&str] = &[
    "invoice-description",
    "internal-note",
    "supplier-note",
    "comments",
];

pub fn routes() -> Router<Arc<SimState>> {
    Router::new()
        .route("/api/invoices", list_route(R))
        .route("/api/invoices/{id}", show_route(R).put(put).patch(put))
}

async fn put(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Reply, ApiError> {
    let format = Format::of_accept(&headers);
    let q = q.as_deref();
    if let Some(flag) = param(q, "exported") {
        let exported = coupa_doc::lenient::parse_bool(&flag).ok_or_else(|| {
            ApiError::bad_request(
                format,
                format!("invalid value '{flag}' for 'exported': expected true or false"),
            )
        })?;
        let now = state.now();
        return update(&state, R, &headers, q, &id, |db, id| {
            if let Some(row) = db.invoices.get_mut(id) {
                row.insert("exported", exported);
                if exported {
                    row.insert("last-exported-at", now);
                }
            }
            Ok(())
        });
    }
    let body = body_object(&headers, &body, R)?;
    let now = state.now();
    update(&state, R, &headers, q, &id, |db, id| {
        let mut errors = Vec::new();
        let payment_update = match payments::parse(&body, id) {
            Ok(u) => u,
            Err(mut e) => {
                errors.append(&mut e);
                None
            }
        };
        let custom = match body.get("custom-fields") {
            None | Some(Value::Null) => None,
            Some(Value::Object(fields)) => {
                for k in fields.keys() {
                    if !db.invoice_custom_fields.iter().any(|f| f == k) {
                        errors.push(format!("Unknown custom field '{k}' on invoice headers"));
                    }
                }
                Some(fields.clone())
            }
            Some(_) => {
                errors.push("custom-fields must be an object".to_owned());
                None
            }
        };
        if !errors.is_empty() {
            return Err(errors);
        }
        if let Some(u) = payment_update {
            db.add_payments(id, &u.payments, &u.header, now)
                .map_err(|e| vec![e.to_string()])?;
        }
        let Some(row) = db.invoices.get_mut(id) else {
            return Err(vec![format!("invoice {id} vanished")]);
        };
        if let Some(fields) = custom {
            let mut merged = match row.remove("custom-fields") {
                Some(Value::Object(o)) => o,
                _ => Object::new(),
            };
            for (k, v) in fields {
                merged.insert(k, v);
            }
            row.insert("custom-fields", merged);
        }
        for k in WRITABLE {
            if let Some(v) = body.get(k) {
                row.insert(*k, v.clone());
            }
        }
        Ok(())
    })
}
