//! The Coupa resources under `/api`, one module each, and what they share: listing, showing,
//! reading ids and bodies, and resolving references such as `"integration": {"code": "X"}`.

mod data_file_sources;
mod history;
mod integrations;
mod invoices;
mod pay_payments;
mod runs;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{MethodRouter, get, post, put};
use coupa_doc::{Object, Value};

use super::format::{ApiError, Format, Reply, read_body};
use crate::SimState;
use crate::query;
use crate::store::{Db, Resource};

/// Every `/api` route.
pub fn routes() -> Router<Arc<SimState>> {
    Router::new()
        .merge(invoices::routes())
        .merge(integrations::routes())
        .merge(runs::routes())
        .merge(history::routes())
        .merge(pay_payments::routes())
        .merge(data_file_sources::routes())
}

/// `GET /api/<resource>`, served by [`index`].
pub(crate) fn list_route(resource: Resource) -> MethodRouter<Arc<SimState>> {
    get(
        move |State(s): State<Arc<SimState>>, h: HeaderMap, RawQuery(q): RawQuery| async move {
            index(&s, resource, &h, q.as_deref())
        },
    )
}

/// `GET /api/<resource>/{id}`, served by [`show`].
pub(crate) fn show_route(resource: Resource) -> MethodRouter<Arc<SimState>> {
    get(
        move |State(s): State<Arc<SimState>>,
              h: HeaderMap,
              RawQuery(q): RawQuery,
              Path(id): Path<String>| async move { show(&s, resource, &h, q.as_deref(), &id) },
    )
}

/// `POST /api/<resource>`: creates a record with `build`, see [`create`].
pub(crate) fn create_route(
    resource: Resource,
    build: fn(&mut Db, Object) -> Result<Object, Vec<String>>,
) -> MethodRouter<Arc<SimState>> {
    post(
        move |State(s): State<Arc<SimState>>, h: HeaderMap, RawQuery(q): RawQuery, b: Bytes| async move {
            create(&s, resource, &h, q.as_deref(), &b, build)
        },
    )
}

/// `PUT` and `PATCH /api/<resource>/{id}`: reads the body, then applies `change(db, id, body)`
/// through [`update`].
pub(crate) fn put_route(
    resource: Resource,
    change: fn(&mut Db, i64, &Object) -> Result<(), Vec<String>>,
) -> MethodRouter<Arc<SimState>> {
    let handler = move |State(s): State<Arc<SimState>>,
                        h: HeaderMap,
                        RawQuery(q): RawQuery,
                        Path(id): Path<String>,
                        b: Bytes| async move {
        let body = body_object(&h, &b, resource)?;
        update(&s, resource, &h, q.as_deref(), &id, |db, id| {
            change(db, id, &body)
        })
    };
    put(handler).patch(handler)
}

/// `GET /api/<resource>`: the page of records the query selects.
pub(crate) fn index(
    state: &SimState,
    resource: Resource,
    headers: &HeaderMap,
    raw_query: Option<&str>,
) -> Result<Reply, ApiError> {
    let format = Format::of_accept(headers);
    let rows = {
        let db = state.db.lock();
        let table = db.table(resource);
        let q = query::parse_list(
            raw_query.unwrap_or(""),
            resource,
            &state.config.filters,
            table.rows().next(),
        )
        .map_err(|e| ApiError::bad_request(format, e.message))?;
        q.select(table)
            .into_iter()
            .filter_map(|row| q.projection.apply(row))
            .collect::<Vec<_>>()
    };
    Ok(Reply::list(format, resource, rows))
}

/// `GET /api/<resource>/{id}`.
pub(crate) fn show(
    state: &SimState,
    resource: Resource,
    headers: &HeaderMap,
    raw_query: Option<&str>,
    id: &str,
) -> Result<Reply, ApiError> {
    let format = Format::of_accept(headers);
    let id = parse_id(format, resource, id)?;
    let projection = projection(state, resource, format, raw_query, false)?;
    let db = state.db.lock();
    let row = db
        .table(resource)
        .get(id)
        .ok_or_else(|| ApiError::not_found(format, resource, id))?;
    let row = projection.apply(row);
    drop(db);
    Ok(Reply::maybe(format, resource, row))
}

/// The record projection asked for by `fields`, `filter` or `return_object`.
pub(crate) fn projection(
    state: &SimState,
    resource: Resource,
    format: Format,
    raw_query: Option<&str>,
    allow_none: bool,
) -> Result<query::Projection, ApiError> {
    query::parse_projection(
        raw_query.unwrap_or(""),
        resource,
        &state.config.filters,
        allow_none,
    )
    .map_err(|e| ApiError::bad_request(format, e.message))
}

/// Ids that are not numbers address nothing: 404, as Coupa answers.
pub(crate) fn parse_id(format: Format, resource: Resource, raw: &str) -> Result<i64, ApiError> {
    raw.parse::<i64>().map_err(|_| {
        let mut e = ApiError::new(
            StatusCode::NOT_FOUND,
            format,
            format!("Couldn't find {} with 'id'={raw}", resource.error_key()),
        );
        e.key = Some(resource.error_key());
        e
    })
}

/// The parameters of a request's query string that are not about the reply's shape.
pub(crate) fn param(raw_query: Option<&str>, name: &str) -> Option<String> {
    let name = coupa_doc::names::canonical(name);
    query::params(raw_query.unwrap_or(""))
        .into_iter()
        .find(|(k, _)| coupa_doc::names::canonical(k) == name)
        .map(|(_, v)| v)
}

/// Reads a request body for `resource`, answering 400 when it is not a readable object.
pub(crate) fn body_object(
    headers: &HeaderMap,
    body: &[u8],
    resource: Resource,
) -> Result<Object, ApiError> {
    read_body(headers, body, Format::of_accept(headers), resource)
}

/// Resolves `"integration": {"code": "X"}` (or `{"id": N}`, `{"name": ..}`, or the flat
/// `integration-id` / `integration-code`) to the integration as other records embed it.
pub(crate) fn integration_ref(db: &Db, body: &Object) -> Result<Option<Object>, String> {
    let (key, wanted) = match body.get("integration") {
        Some(Value::Object(o)) => match (o.get("id"), o.get("code"), o.get("name")) {
            (Some(id), _, _) if !id.is_null() => ("id", id.clone()),
            (_, Some(code), _) if !code.is_null() => ("code", code.clone()),
            (_, _, Some(name)) if !name.is_null() => ("name", name.clone()),
            _ => return Err("Integration must be given by id, code or name".to_owned()),
        },
        Some(Value::Null) | None => {
            match (body.get("integration-id"), body.get("integration-code")) {
                (Some(id), _) if !id.is_null() => ("id", id.clone()),
                (_, Some(code)) if !code.is_null() => ("code", code.clone()),
                _ => return Ok(None),
            }
        }
        Some(other) => ("code", other.clone()),
    };
    let found = db.integrations.rows().find(|row| match key {
        "id" => row.get("id").and_then(Value::as_i64) == wanted.as_i64(),
        _ => row
            .get(key)
            .and_then(Value::as_str)
            .zip(wanted.as_str())
            .is_some_and(|(a, b)| a.eq_ignore_ascii_case(b)),
    });
    match found {
        Some(row) => Ok(Some(embedded_integration(row))),
        None => Err(format!(
            "Integration with {key} '{}' does not exist",
            wanted.to_plain_string()
        )),
    }
}

/// An integration as other records embed it.
pub(crate) fn embedded_integration(row: &Object) -> Object {
    let mut o = Object::new();
    for k in ["id", "name", "code"] {
        o.insert(k, row.get(k).cloned().unwrap_or_default());
    }
    o
}

/// Resolves `"integration-run": {"id": N}` or the flat `"integration-run-id": "N"`.
pub(crate) fn run_ref(db: &Db, body: &Object) -> Result<Option<i64>, String> {
    let raw = match body.get("integration-run") {
        Some(Value::Object(o)) => o.get("id").cloned(),
        Some(Value::Null) | None => body.get("integration-run-id").cloned(),
        Some(other) => Some(other.clone()),
    };
    let Some(raw) = raw.filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let id = raw
        .as_i64()
        .ok_or_else(|| format!("Integration run '{}' is not an id", raw.to_plain_string()))?;
    if db.integration_runs.get(id).is_none() {
        return Err(format!("Integration run {id} does not exist"));
    }
    Ok(Some(id))
}

/// Inserts a new record built by `build` and answers 201 with it.
pub(crate) fn create(
    state: &SimState,
    resource: Resource,
    headers: &HeaderMap,
    raw_query: Option<&str>,
    body: &[u8],
    build: impl FnOnce(&mut Db, Object) -> Result<Object, Vec<String>>,
) -> Result<Reply, ApiError> {
    let format = Format::of_accept(headers);
    let projection = projection(state, resource, format, raw_query, true)?;
    let body = body_object(headers, body, resource)?;
    let now = state.now();
    let mut db = state.db.lock();
    let row = build(&mut db, body).map_err(|m| ApiError::invalid(format, resource, m))?;
    let user = db.api_user();
    let id = db.table_mut(resource).insert_with(|_| {
        let mut row = row;
        for (k, v) in [
            ("created-at", Value::from(now)),
            ("updated-at", Value::from(now)),
            ("created-by", user.clone()),
            ("updated-by", user),
        ] {
            row.insert(k, v);
        }
        row
    });
    let row = db.table(resource).get(id).and_then(|r| projection.apply(r));
    drop(db);
    Ok(Reply::maybe(format, resource, row).with_status(StatusCode::CREATED))
}

/// Applies `change` to one record and answers with it. The change returns the validation
/// messages that refuse it; on success `updated-at` and `updated-by` move.
pub(crate) fn update(
    state: &SimState,
    resource: Resource,
    headers: &HeaderMap,
    raw_query: Option<&str>,
    id: &str,
    change: impl FnOnce(&mut Db, i64) -> Result<(), Vec<String>>,
) -> Result<Reply, ApiError> {
    let format = Format::of_accept(headers);
    let id = parse_id(format, resource, id)?;
    let projection = projection(state, resource, format, raw_query, true)?;
    let now = state.now();
    let mut db = state.db.lock();
    if db.table(resource).get(id).is_none() {
        return Err(ApiError::not_found(format, resource, id));
    }
    change(&mut db, id).map_err(|m| ApiError::invalid(format, resource, m))?;
    let user = db.api_user();
    if let Some(row) = db.table_mut(resource).get_mut(id) {
        row.insert("updated-at", now);
        row.insert("updated-by", user);
    }
    let row = db.table(resource).get(id).and_then(|r| projection.apply(r));
    drop(db);
    Ok(Reply::maybe(format, resource, row))
}

/// Copies the writable fields of `body` onto `row`: everything except identity, audit and the
/// keys in `read_only`. Values keep the type the row already has where they can be read as it.
pub(crate) fn merge_fields(row: &mut Object, body: &Object, read_only: &[&str]) {
    const ALWAYS: &[&str] = &["id", "created-at", "updated-at", "created-by", "updated-by"];
    for (k, v) in body.iter() {
        if ALWAYS.contains(&k) || read_only.contains(&k) {
            continue;
        }
        let typed = match (row.get(k), v) {
            (_, Value::Null) => Value::Null,
            (Some(Value::Int(_)), v) => v.as_i64().map_or_else(|| v.clone(), Value::Int),
            (Some(Value::Bool(_)), v) => v.as_bool().map_or_else(|| v.clone(), Value::Bool),
            (Some(Value::Decimal(_)), v) => {
                v.as_decimal().map_or_else(|| v.clone(), Value::Decimal)
            }
            (Some(Value::DateTime(_)), v) => {
                v.as_datetime().map_or_else(|| v.clone(), Value::DateTime)
            }
            _ => v.clone(),
        };
        row.insert(k, typed);
    }
}

/// The value of a required text field, or the message Coupa gives when it is missing.
pub(crate) fn required_text(
    body: &Object,
    key: &str,
    label: &str,
    errors: &mut Vec<String>,
) -> String {
    match body.get(key).map(Value::to_plain_string) {
        Some(s) if !s.trim().is_empty() => s,
        _ => {
            errors.push(format!("{label} can't be blank"));
            String::new()
        }
    }
}

/// A value that must be one of `allowed` (compared without case); answers the allowed
/// spelling, or records why not.
pub(crate) fn one_of(
    body: &Object,
    key: &str,
    allowed: &[&'static str],
    label: &str,
    errors: &mut Vec<String>,
) -> &'static str {
    let value = body
        .get(key)
        .map(Value::to_plain_string)
        .unwrap_or_default();
    let value = value.trim();
    if let Some(a) = allowed.iter().find(|a| a.eq_ignore_ascii_case(value)) {
        return a;
    }
    if value.is_empty() {
        errors.push(format!("{label} can't be blank"));
    } else {
        errors.push(format!(
            "{label} '{value}' is not one of {}",
            allowed.join(", ")
        ));
    }
    ""
}
