//! `/api/integration_runs` (coupa-api.md section 7, seed 001 option 3).
//!
//! A run is created `pending` and moved by actions: `run` (with `total_records`) makes it
//! `running`, `pause` `paused`, `pending` `pending`, `fail` `failed`, and `success` or `finish`
//! end it. Swagger describes both as "set status as successful if no errors exist"; what they do
//! otherwise is undocumented. The simulator's choice: a run with unresolved integration errors
//! ends `errored` (a status Coupa's overview names), a run without ends `successful`. Repeating
//! the action that ended a run is harmless (the run is returned unchanged); moving an ended run
//! back to `running`, `paused` or `pending` is refused with a 400. `records-processed` counts the
//! history records and integration errors created for the run.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::routing::put;
use coupa_doc::{Object, Value};

use super::{
    body_object, create_route, integration_ref, list_route, merge_fields, put_route, show_route,
    update,
};
use crate::SimState;
use crate::http::format::{ApiError, Reply};
use crate::store::{Db, Resource};

const R: Resource = Resource::IntegrationRuns;
const ENDED: &[&str] = &["successful", "failed", "errored"];

pub fn routes() -> Router<Arc<SimState>> {
    Router::new()
        .route(
            "/api/integration_runs",
            list_route(R).merge(create_route(R, build)),
        )
        .route(
            "/api/integration_runs/{id}",
            show_route(R).merge(put_route(R, update_run)),
        )
        .route("/api/integration_runs/{id}/{action}", put(action))
}

fn build(db: &mut Db, body: Object) -> Result<Object, Vec<String>> {
    let integration = match integration_ref(db, &body) {
        Ok(Some(i)) => i,
        Ok(None) => return Err(vec!["Integration can't be blank".to_owned()]),
        Err(e) => return Err(vec![e]),
    };
    let mut row = Object::new()
        .with("status", "pending")
        .with("total-records", Value::Null)
        .with("records-processed", 0)
        .with("start-time", Value::Null)
        .with("end-time", Value::Null)
        .with("max-updated-at", Value::Null)
        .with("flow", Value::Null);
    merge_fields(
        &mut row,
        &body,
        &["status", "integration", "records-processed"],
    );
    row.insert("integration", integration);
    Ok(row)
}

fn update_run(db: &mut Db, id: i64, body: &Object) -> Result<(), Vec<String>> {
    if let Some(row) = db.integration_runs.get_mut(id) {
        merge_fields(row, body, &["status", "integration"]);
    }
    Ok(())
}

async fn action(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    Path((id, action)): Path<(String, String)>,
    body: Bytes,
) -> Result<Reply, ApiError> {
    let body = body_object(&headers, &body, R)?;
    let now = state.now();
    let known = [
        "run",
        "pause",
        "pending",
        "success",
        "finish",
        "fail",
        "max_updated_at",
    ];
    if !known.contains(&action.as_str()) {
        return Err(ApiError::new(
            axum::http::StatusCode::NOT_FOUND,
            crate::http::format::Format::of_accept(&headers),
            format!("No route matches PUT /api/integration_runs/{id}/{action}"),
        ));
    }
    update(&state, R, &headers, q.as_deref(), &id, |db, id| {
        let unresolved_errors = db.integration_errors.rows().any(|e| {
            e.pointer(&["integration-run", "id"])
                .and_then(Value::as_i64)
                == Some(id)
                && e.get("resolved").and_then(Value::as_bool) == Some(false)
        });
        let Some(row) = db.integration_runs.get_mut(id) else {
            return Err(vec![format!("run {id} vanished")]);
        };
        let status = row
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or("pending")
            .to_owned();
        let ended = ENDED.contains(&status.as_str());
        let next = match action.as_str() {
            "max_updated_at" => {
                let v = body.get("max-updated-at").cloned().unwrap_or_default();
                let v = v.as_datetime().map_or(v, Value::DateTime);
                row.insert("max-updated-at", v);
                return Ok(());
            }
            "run" => "running",
            "pause" => "paused",
            "pending" => "pending",
            "fail" => "failed",
            _ if unresolved_errors => "errored",
            _ => "successful",
        };
        if ended {
            if ENDED.contains(&next) {
                return Ok(());
            }
            return Err(vec![format!(
                "Integration run {id} has ended ({status}) and cannot become {next}"
            )]);
        }
        let total = match body.get("total-records").filter(|_| next == "running") {
            None => None,
            Some(v) => match v.as_i64() {
                Some(n) if n >= 0 => Some(n),
                _ => {
                    return Err(vec![format!(
                        "Total records '{}' is not a number",
                        v.to_plain_string()
                    )]);
                }
            },
        };
        row.insert("status", next);
        if let Some(n) = total {
            row.insert("total-records", n);
        }
        if next == "running" && row.get("start-time").is_none_or(Value::is_null) {
            row.insert("start-time", now);
        }
        if ENDED.contains(&next) {
            row.insert("end-time", now);
        }
        Ok(())
    })
}
