//! The clerk's API, under `/__sim` (a prefix no Coupa path uses). JSON in and out, no
//! authentication: the simulator binds to loopback and this API is for the person or test
//! driving it. Documented in `crates/coupa-sim/README.md`.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use coupa_doc::{Object, Value};
use serde::Deserialize;
use serde_json::json;

use crate::config::RateLimit;
use crate::faults::FaultRule;
use crate::store::Resource;
use crate::{SimState, clerk, csv_loader, seed};

type Answer = Result<Json<serde_json::Value>, (StatusCode, String)>;

fn bad(status: StatusCode, message: impl Into<String>) -> (StatusCode, String) {
    (status, message.into())
}

fn to_json(v: &Value) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

pub fn routes() -> Router<Arc<SimState>> {
    Router::new()
        .route("/health", get(|| async { Json(json!({"ok": true})) }))
        .route(
            "/stats",
            get(|State(s): State<Arc<SimState>>| async move { Json(s.stats.to_json()) }).delete(
                |State(s): State<Arc<SimState>>| async move {
                    s.stats.reset();
                    Json(json!({"ok": true}))
                },
            ),
        )
        .route(
            "/faults",
            get(|State(s): State<Arc<SimState>>| async move { Json(json!(s.faults.rules())) })
                .post(
                    |State(s): State<Arc<SimState>>, Json(rule): Json<FaultRule>| async move {
                        s.faults.add(rule);
                        Json(json!(s.faults.rules()))
                    },
                )
                .delete(|State(s): State<Arc<SimState>>| async move {
                    s.faults.clear();
                    Json(json!([]))
                }),
        )
        .route("/rate-limit", get(get_rate_limit).put(put_rate_limit))
        .route(
            "/tokens/expire",
            post(|State(s): State<Arc<SimState>>| async move {
                s.tokens.expire_all();
                Json(json!({"ok": true}))
            }),
        )
        .route("/records/{resource}", get(list_records).post(insert_record))
        .route("/records/{resource}/{id}", get(show_record))
        .route("/invoices/{id}/reset-export", post(reset_export))
        .route("/invoices/{id}/status", post(invoice_status))
        .route("/pay-payments/{id}/status", post(pay_status))
        .route(
            "/invoice-custom-fields",
            get(|State(s): State<Arc<SimState>>| async move {
                Json(json!(s.db.lock().invoice_custom_fields))
            })
            .put(
                |State(s): State<Arc<SimState>>, Json(fields): Json<Vec<String>>| async move {
                    let fields: Vec<String> = fields
                        .iter()
                        .map(|f| coupa_doc::names::canonical(f).into_owned())
                        .collect();
                    s.db.lock().define_invoice_custom_fields(fields.clone());
                    Json(json!(fields))
                },
            ),
        )
        .route(
            "/alerts",
            get(|State(s): State<Arc<SimState>>| async move {
                let alerts: Vec<serde_json::Value> =
                    s.db.lock()
                        .alerts
                        .iter()
                        .map(|a| to_json(&Value::Object(a.clone())))
                        .collect();
                Json(json!(alerts))
            }),
        )
        .route("/files", get(list_files))
        .route(
            "/csv/pickup",
            post(|State(s): State<Arc<SimState>>| async move {
                Json(json!({"data_file_sources": csv_loader::pickup_now(&s)}))
            }),
        )
        .route("/reseed", post(reseed))
}

fn resource(name: &str) -> Result<Resource, (StatusCode, String)> {
    Resource::from_name(name).ok_or_else(|| {
        bad(
            StatusCode::NOT_FOUND,
            format!("unknown resource '{name}'; use invoices, integrations, integration_contacts, integration_runs, integration_history_records, integration_errors, coupa_pay_payments or data_file_sources"),
        )
    })
}

async fn list_records(State(s): State<Arc<SimState>>, Path(name): Path<String>) -> Answer {
    let r = resource(&name)?;
    let db = s.db.lock();
    let rows: Vec<serde_json::Value> = db
        .table(r)
        .rows()
        .map(|row| to_json(&Value::Object(row.clone())))
        .collect();
    Ok(Json(json!(rows)))
}

async fn show_record(
    State(s): State<Arc<SimState>>,
    Path((name, id)): Path<(String, i64)>,
) -> Answer {
    let r = resource(&name)?;
    let db = s.db.lock();
    let row = db
        .table(r)
        .get(id)
        .ok_or_else(|| bad(StatusCode::NOT_FOUND, format!("no {name} with id {id}")))?;
    Ok(Json(to_json(&Value::Object(row.clone()))))
}

/// Inserts a document as given (keys canonicalised; text that reads as an RFC 3339 datetime
/// becomes a datetime so queries compare it as one). The id is assigned.
async fn insert_record(
    State(s): State<Arc<SimState>>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Answer {
    let r = resource(&name)?;
    let doc =
        coupa_doc::json::parse(&body).map_err(|e| bad(StatusCode::BAD_REQUEST, e.to_string()))?;
    let Value::Object(doc) = type_datetimes(doc) else {
        return Err(bad(
            StatusCode::BAD_REQUEST,
            "the record must be a JSON object",
        ));
    };
    let mut db = s.db.lock();
    let id = db.table_mut(r).insert_with(|_| doc);
    let row = db.table(r).get(id).cloned().unwrap_or_default();
    Ok(Json(to_json(&Value::Object(row))))
}

fn type_datetimes(v: Value) -> Value {
    match v {
        Value::Text(t) => match chrono::DateTime::parse_from_rfc3339(&t) {
            Ok(d) => Value::DateTime(d),
            Err(_) => Value::Text(t),
        },
        Value::Array(items) => Value::Array(items.into_iter().map(type_datetimes).collect()),
        Value::Object(o) => Value::Object(
            o.into_iter()
                .map(|(k, v)| (k, type_datetimes(v)))
                .collect::<Object>(),
        ),
        other => other,
    }
}

fn clerk_answer(result: Result<(), clerk::ClerkError>) -> Answer {
    match result {
        Ok(()) => Ok(Json(json!({"ok": true}))),
        Err(e @ clerk::ClerkError::NotFound(..)) => Err(bad(StatusCode::NOT_FOUND, e.to_string())),
        Err(e) => Err(bad(StatusCode::BAD_REQUEST, e.to_string())),
    }
}

async fn reset_export(State(s): State<Arc<SimState>>, Path(id): Path<i64>) -> Answer {
    let now = s.now();
    clerk_answer(clerk::reset_export(&mut s.db.lock(), id, now))
}

#[derive(Deserialize)]
struct StatusBody {
    status: String,
}

async fn invoice_status(
    State(s): State<Arc<SimState>>,
    Path(id): Path<i64>,
    Json(b): Json<StatusBody>,
) -> Answer {
    let now = s.now();
    clerk_answer(clerk::set_invoice_status(
        &mut s.db.lock(),
        id,
        &b.status,
        now,
    ))
}

async fn pay_status(
    State(s): State<Arc<SimState>>,
    Path(id): Path<i64>,
    Json(b): Json<StatusBody>,
) -> Answer {
    let now = s.now();
    clerk_answer(clerk::set_pay_status(&mut s.db.lock(), id, &b.status, now))
}

async fn get_rate_limit(State(s): State<Arc<SimState>>) -> Json<serde_json::Value> {
    Json(match s.throttle.limit() {
        Some(l) => {
            json!({"per_second": l.per_second, "burst": l.burst, "retry_after": l.retry_after})
        }
        None => serde_json::Value::Null,
    })
}

#[derive(Deserialize)]
struct RateLimitBody {
    per_second: u32,
    burst: u32,
    #[serde(default)]
    retry_after: bool,
}

/// `{"per_second":25,"burst":20,"retry_after":false}` sets the limit; `null` turns it off.
async fn put_rate_limit(
    State(s): State<Arc<SimState>>,
    Json(body): Json<Option<RateLimitBody>>,
) -> Json<serde_json::Value> {
    s.throttle.set_limit(body.map(|b| RateLimit {
        per_second: b.per_second,
        burst: b.burst,
        retry_after: b.retry_after,
    }));
    get_rate_limit(State(s)).await
}

#[derive(Deserialize)]
struct FilesQuery {
    dir: String,
}

async fn list_files(
    State(s): State<Arc<SimState>>,
    Query(q): Query<FilesQuery>,
) -> Json<serde_json::Value> {
    let files: Vec<serde_json::Value> = s
        .files
        .list_files(&q.dir)
        .into_iter()
        .map(|(name, size)| json!({"name": name, "size": size}))
        .collect();
    Json(json!(files))
}

#[derive(Deserialize)]
struct ReseedBody {
    seed: Option<u64>,
    invoices: Option<usize>,
    pay_payments: Option<usize>,
}

/// Replaces every record with freshly generated data.
async fn reseed(
    State(s): State<Arc<SimState>>,
    Json(b): Json<ReseedBody>,
) -> Json<serde_json::Value> {
    let mut config = s.config.clone();
    config.seed = b.seed.unwrap_or(config.seed);
    config.invoices = b.invoices.unwrap_or(config.invoices);
    config.pay_payments = b.pay_payments.unwrap_or(config.pay_payments);
    let db = seed::generate(&config);
    let counts = json!({"invoices": db.invoices.len(), "pay_payments": db.pay_payments.len()});
    *s.db.lock() = db;
    Json(counts)
}
