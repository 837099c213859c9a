//! `/api/integration_history_records` and `/api/integration_errors` (coupa-api.md section 7,
//! seed 001 options 2 and 3). Both share their shape and actions:
//! - create by `POST` (Swagger) or `PUT` on the collection (Coupa's orchestration guide), 201;
//! - `create_alert` (POST or PUT): create, and raise an alert to the integration's contacts
//!   whose alert type matches (`Both` matches either); alerts are kept in [`Db::alerts`];
//! - `PUT /{id}/resolve` and `/unresolve`, answered as a one-element list, as Coupa's guide
//!   prints the response (`[{"id":..,"resolved":true}]`);
//! - index, show, `PUT`/`PATCH /{id}`.
//!
//! History records require `document-type`, `document-id` and `contact-alert-type`; errors
//! require `contact-alert-type` and an integration run (nested `{"integration-run":{"id":..}}`
//! or the flat `"integration-run-id"` of Coupa's own example), and take their integration from
//! the run when none is given.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::routing::{MethodRouter, put};
use coupa_doc::{Object, Value};

use super::integrations::CONTACT_ALERT_TYPES;
use super::{
    create, embedded_integration, integration_ref, list_route, merge_fields, one_of, put_route,
    required_text, run_ref, show_route, update,
};
use crate::SimState;
use crate::http::format::{ApiError, Body, Reply};
use crate::store::{Db, Resource};

/// What the handlers below answer: they do no I/O, so their futures are ready at once.
type Answer = std::future::Ready<Result<Reply, ApiError>>;

pub fn routes() -> Router<Arc<SimState>> {
    let mut router = Router::new();
    for r in [Resource::HistoryRecords, Resource::IntegrationErrors] {
        let base = format!("/api/{}", r.path());
        router = router
            .route(
                &base,
                list_route(r).post(creator(r, false)).put(creator(r, false)),
            )
            .route(
                &format!("{base}/create_alert"),
                MethodRouter::new()
                    .post(creator(r, true))
                    .put(creator(r, true)),
            )
            .route(
                &format!("{base}/{{id}}"),
                show_route(r).merge(put_route(
                    r,
                    if r == Resource::HistoryRecords {
                        update_history
                    } else {
                        update_error
                    },
                )),
            )
            .route(&format!("{base}/{{id}}/resolve"), put(resolver(r, true)))
            .route(&format!("{base}/{{id}}/unresolve"), put(resolver(r, false)));
    }
    router
}

fn creator(
    r: Resource,
    alert: bool,
) -> impl Fn(State<Arc<SimState>>, HeaderMap, RawQuery, Bytes) -> Answer + Clone + Send + 'static {
    move |State(s), h, RawQuery(q), b| {
        std::future::ready(create(&s, r, &h, q.as_deref(), &b, |db, body| {
            let row = build(db, r, body)?;
            if alert {
                raise_alert(db, r, &row);
            }
            Ok(row)
        }))
    }
}

/// `PUT /{id}`: free fields change; resolution, integration and run have their own ways.
fn update_in(db: &mut Db, r: Resource, id: i64, body: &Object) -> Result<(), Vec<String>> {
    if let Some(row) = db.table_mut(r).get_mut(id) {
        merge_fields(row, body, &["resolved", "integration", "integration-run"]);
    }
    Ok(())
}

fn update_history(db: &mut Db, id: i64, body: &Object) -> Result<(), Vec<String>> {
    update_in(db, Resource::HistoryRecords, id, body)
}

fn update_error(db: &mut Db, id: i64, body: &Object) -> Result<(), Vec<String>> {
    update_in(db, Resource::IntegrationErrors, id, body)
}

fn resolver(
    r: Resource,
    resolved: bool,
) -> impl Fn(State<Arc<SimState>>, HeaderMap, RawQuery, Path<String>) -> Answer + Clone + Send + 'static
{
    move |State(s), h, RawQuery(q), Path(id)| {
        let reply = update(&s, r, &h, q.as_deref(), &id, |db, id| {
            if let Some(row) = db.table_mut(r).get_mut(id) {
                row.insert("resolved", resolved);
            }
            Ok(())
        })
        .map(as_list);
        std::future::ready(reply)
    }
}

/// Coupa's guide prints the resolve response as an array of the one record.
fn as_list(one: Reply) -> Reply {
    let Reply {
        status,
        format,
        body,
    } = one;
    match body {
        Body::One(r, row) => Reply::list(format, r, vec![row]).with_status(status),
        body => Reply {
            status,
            format,
            body,
        },
    }
}

fn build(db: &mut Db, r: Resource, body: Object) -> Result<Object, Vec<String>> {
    let mut errors = Vec::new();
    let alert_type = one_of(
        &body,
        "contact-alert-type",
        CONTACT_ALERT_TYPES,
        "Contact alert type",
        &mut errors,
    );
    let history = r == Resource::HistoryRecords;
    if history {
        required_text(&body, "document-type", "Document type", &mut errors);
    }
    let document_id = match body.get("document-id").filter(|v| !v.is_null()) {
        Some(v) => match v.as_i64() {
            Some(id) => Some(id),
            None => {
                errors.push(format!(
                    "Document id '{}' is not a number",
                    v.to_plain_string()
                ));
                None
            }
        },
        None => {
            if history {
                errors.push("Document id can't be blank".to_owned());
            }
            None
        }
    };
    let run = match run_ref(db, &body) {
        Ok(run) => run,
        Err(e) => {
            errors.push(e);
            None
        }
    };
    if !history && run.is_none() && errors.iter().all(|e| !e.starts_with("Integration run")) {
        errors.push("Integration run can't be blank".to_owned());
    }
    let mut integration = match integration_ref(db, &body) {
        Ok(i) => i,
        Err(e) => {
            errors.push(e);
            None
        }
    };
    if integration.is_none() {
        integration = run
            .and_then(|id| db.integration_runs.get(id))
            .and_then(|run| run.get("integration"))
            .and_then(Value::as_object)
            .and_then(|i| i.get("id").and_then(Value::as_i64))
            .and_then(|id| db.integrations.get(id))
            .map(embedded_integration);
    }
    let responses = responses(body.get("responses"), &mut errors);
    if !errors.is_empty() {
        return Err(errors);
    }
    if let Some(run) = run.and_then(|id| db.integration_runs.get_mut(id)) {
        let n = run
            .get("records-processed")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        run.insert("records-processed", n + 1);
    }
    let text = |k: &str| {
        body.get(k)
            .filter(|v| !v.is_null())
            .map(Value::to_plain_string)
    };
    Ok(Object::new()
        .with("document-type", text("document-type"))
        .with("document-id", document_id)
        .with("document-status", text("document-status"))
        .with("document-revision", text("document-revision"))
        .with("status", text("status"))
        .with("external-id", text("external-id"))
        .with("contact-alert-type", alert_type)
        .with("resolved", false)
        .with(
            "creation-method",
            text("creation-method").unwrap_or_else(|| "API".to_owned()),
        )
        .with("integration-filename", text("integration-filename"))
        .with("integration", integration)
        .with(
            "integration-run",
            run.map(|id| Object::new().with("id", id)),
        )
        .with("responses", Value::Array(responses)))
}

/// `responses` as a list of `{response-code, response-message}`, whatever the wrapping.
fn responses(raw: Option<&Value>, errors: &mut Vec<String>) -> Vec<Value> {
    let items: Vec<&Value> = match raw {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(a)) => a.iter().collect(),
        Some(Value::Object(o)) => match o.get("response") {
            Some(Value::Array(a)) => a.iter().collect(),
            Some(one) => vec![one],
            None => vec![raw.unwrap_or(&Value::Null)],
        },
        Some(other) => vec![other],
    };
    items
        .into_iter()
        .enumerate()
        .filter_map(|(i, item)| match item.as_object() {
            Some(o) => Some(Value::Object(
                Object::new()
                    .with(
                        "response-code",
                        o.get("response-code").cloned().unwrap_or_default(),
                    )
                    .with(
                        "response-message",
                        o.get("response-message").cloned().unwrap_or_default(),
                    ),
            )),
            None => {
                errors.push(format!(
                    "Response {} must be an object with response-code and response-message",
                    i + 1
                ));
                None
            }
        })
        .collect()
}

/// Records the alert Coupa would send to the integration's contacts.
fn raise_alert(db: &mut Db, r: Resource, row: &Object) {
    let alert_type = row
        .get("contact-alert-type")
        .and_then(Value::as_str)
        .unwrap_or("");
    let integration_id = row.pointer(&["integration", "id"]).and_then(Value::as_i64);
    let recipients: Vec<Value> = db
        .integration_contacts
        .rows()
        .filter(|c| c.pointer(&["integration", "id"]).and_then(Value::as_i64) == integration_id)
        .filter(|c| {
            let t = c
                .get("contact-alert-type")
                .and_then(Value::as_str)
                .unwrap_or("");
            t == "Both" || alert_type == "Both" || t == alert_type
        })
        .filter_map(|c| c.get("id").cloned())
        .collect();
    let message = row
        .get("responses")
        .and_then(Value::as_array)
        .unwrap_or_default()
        .iter()
        .filter_map(|r| r.pointer(&["response-message"]).map(Value::to_plain_string))
        .collect::<Vec<_>>()
        .join("; ");
    let n = db.alerts.len() as i64 + 1;
    db.alerts.push(
        Object::new()
            .with("id", n)
            .with("source", r.error_key())
            .with(
                "integration",
                row.get("integration").cloned().unwrap_or_default(),
            )
            .with("contact-alert-type", alert_type)
            .with(
                "document-type",
                row.get("document-type").cloned().unwrap_or_default(),
            )
            .with(
                "document-id",
                row.get("document-id").cloned().unwrap_or_default(),
            )
            .with("recipients", Value::Array(recipients))
            .with("message", message),
    );
}
