//! The reference ERP ([`SqlErp`]) behind HTTP: the peer the `http` adapter is shown and tested
//! against. It speaks the canonical model as JSON (no mapping) and checks what a careful ERP
//! checks: the authentication (and the HMAC signature, made as [`super::http`] documents it), an
//! idempotency key on every invoice, bodies up to 5 MiB.
//!
//! Routes:
//! - `POST /invoices`: an `ErpInvoice`; `201 {"document_number"}` when posted now, `200` when
//!   the ERP had it, `422 {"reasons": [..]}` when rejected, `400` without an idempotency key.
//! - `POST /invoices/{id}/cancel`: `200 {"document_number"}`, `409` already cancelled (with
//!   the number), `404` never posted.
//! - `POST /coupa-pay-payments`: an `ErpPayPayment`; `200` with the booking.
//! - `GET /payments?cursor=<last id>&limit=<n>`: the ERP's payments after the cursor as
//!   `{"items": [NewErpPayment..], "next_cursor": "<last id>" | null}` (`null` on an empty page).
//!
//! Test hooks ([`RunningStub::fail_next`], [`RunningStub::answer_next`],
//! [`RunningStub::delay_next`], [`RunningStub::requests`]) make outages, slow answers and repeated deliveries visible.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde_json::{Value, json};

use crate::config::HttpErpConfig;

use super::{
    CancelOutcome, Erp, ErpError, ErpInvoice, ErpPayPayment, NewErpPayment, PayBookingChange,
    PostOutcome, SqlErp,
};

/// The largest body the stub reads.
pub const MAX_BODY: usize = 5 * 1024 * 1024;
/// `GET /payments` page size without `limit`, and its most.
const PAGE: usize = 100;
const MAX_PAGE: usize = 1_000;

/// How the stub wants requests authenticated.
#[derive(Clone, Debug, Default)]
pub enum StubAuth {
    #[default]
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(String),
    /// `Authorization: Basic` of `user:password`.
    Basic(String, String),
    /// The signature header, HMAC-SHA256 keyed with this secret.
    Hmac(String),
}

/// The stub's settings. It reads the idempotency key and the HMAC signature from the headers
/// the adapter sends by default (`erp.http.idempotency_header`, `erp.http.hmac_header`).
#[derive(Clone, Debug, Default)]
pub struct StubOptions {
    pub auth: StubAuth,
}

/// One request the stub answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StubRequest {
    pub method: String,
    pub path: String,
    pub idempotency_key: Option<String>,
    /// The invoice a `POST /invoices` or a cancellation is about, when it could be read.
    pub coupa_invoice_id: Option<i64>,
    pub status: u16,
}

#[derive(Default)]
struct Faults {
    fail: Option<(u32, (StatusCode, Arc<Value>))>,
    delay: Option<(u32, Duration)>,
}

struct Shared {
    erp: Arc<SqlErp>,
    options: StubOptions,
    idempotency_header: String,
    hmac_header: String,
    faults: Mutex<Faults>,
    requests: Mutex<Vec<StubRequest>>,
}

/// Locks, taking over a lock a panicking test thread left: the data is plain counters.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    /// Takes one from a fault counter.
    fn take<T: Clone>(slot: &mut Option<(u32, T)>) -> Option<T> {
        let (n, v) = slot.as_mut()?;
        let value = v.clone();
        *n -= 1;
        if *n == 0 {
            *slot = None;
        }
        Some(value)
    }
}

/// A running stub; stopped by [`RunningStub::stop`] or when dropped.
pub struct RunningStub {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl RunningStub {
    /// The base URL, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers the next `n` requests with `status` (and does nothing else for them).
    pub fn fail_next(&self, n: u32, status: u16) {
        self.answer_next(n, status, json!({ "error": "injected by the test" }));
    }

    /// Answers the next `n` requests with `status` and `body` (and does nothing else for
    /// them): an ERP's odd answers, for the adapter's tests.
    pub fn answer_next(&self, n: u32, status: u16, body: Value) {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        lock(&self.shared.faults).fail = (n > 0).then_some((n, (status, Arc::new(body))));
    }

    /// Waits `delay` before answering each of the next `n` requests (then answers them as
    /// usual, as a slow ERP does after its client gave up).
    pub fn delay_next(&self, n: u32, delay: Duration) {
        lock(&self.shared.faults).delay = (n > 0).then_some((n, delay));
    }

    /// Every request answered so far, in order.
    pub fn requests(&self) -> Vec<StubRequest> {
        lock(&self.shared.requests).clone()
    }

    /// Forgets the requests answered so far.
    pub fn clear_requests(&self) {
        lock(&self.shared.requests).clear();
    }

    /// Stops serving and waits for the server to end.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for RunningStub {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Serves `erp` on 127.0.0.1 at a free port.
pub async fn start(erp: Arc<SqlErp>, options: StubOptions) -> std::io::Result<RunningStub> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let defaults = HttpErpConfig::default();
    let shared = Arc::new(Shared {
        erp,
        options,
        idempotency_header: defaults.idempotency_header,
        hmac_header: defaults.hmac_header,
        faults: Mutex::new(Faults::default()),
        requests: Mutex::new(Vec::new()),
    });
    let app = Router::new().fallback(handle).with_state(shared.clone());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await;
    });
    Ok(RunningStub {
        addr,
        shared,
        shutdown: Some(tx),
        task: Some(task),
    })
}

fn answer(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn reasons(status: StatusCode, reasons: &[String]) -> Response {
    answer(status, json!({ "reasons": reasons }))
}

fn unavailable(e: &ErpError) -> Response {
    match e {
        ErpError::Refused(why) => {
            reasons(StatusCode::UNPROCESSABLE_ENTITY, std::slice::from_ref(why))
        }
        ErpError::Unavailable(why) => {
            answer(StatusCode::SERVICE_UNAVAILABLE, json!({ "error": why }))
        }
    }
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let query = request.uri().query().unwrap_or("").to_owned();
    let headers = request.headers().clone();
    let key = headers
        .get(shared.idempotency_header.as_str())
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = axum::body::to_bytes(request.into_body(), MAX_BODY).await;
    // Answered in a task of its own: a client that gives up (a timeout) does not stop the ERP
    // from doing the work, as with a real ERP.
    let work = tokio::spawn(async move {
        let delay = Shared::take(&mut lock(&shared.faults).delay);
        if let Some(delay) = delay {
            tokio::time::sleep(delay).await;
        }
        let (response, invoice) = match body {
            Err(_) => (
                reasons(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &[format!("the body is over {MAX_BODY} bytes")],
                ),
                None,
            ),
            Ok(body) => {
                let invoice = invoice_of(&path, &body);
                let fail = Shared::take(&mut lock(&shared.faults).fail);
                let response = match fail {
                    Some((status, body)) => answer(status, (*body).clone()),
                    None => match authenticate(&shared, &headers, &body) {
                        Err(why) => answer(StatusCode::UNAUTHORIZED, json!({ "error": why })),
                        Ok(()) => {
                            route(&shared, &method, &path, &query, key.as_deref(), &body).await
                        }
                    },
                };
                (response, invoice)
            }
        };
        lock(&shared.requests).push(StubRequest {
            method: method.to_string(),
            path,
            idempotency_key: key,
            coupa_invoice_id: invoice,
            status: response.status().as_u16(),
        });
        response
    });
    work.await.unwrap_or_else(|_| {
        answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            json!({ "error": "the stub failed" }),
        )
    })
}

/// The invoice a request is about: the body's `coupa_invoice_id`, or the cancellation's path.
fn invoice_of(path: &str, body: &[u8]) -> Option<i64> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match segments.as_slice() {
        ["invoices", id, "cancel"] => id.parse().ok(),
        ["invoices"] => serde_json::from_slice::<Value>(body)
            .ok()?
            .get("coupa_invoice_id")?
            .as_i64(),
        _ => None,
    }
}

/// Checks the request's credentials; `Err` says what is wrong, never what was expected.
fn authenticate(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> Result<(), String> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let authorization = header("authorization");
    match &shared.options.auth {
        StubAuth::None => Ok(()),
        StubAuth::Bearer(token) => (authorization == Some(format!("Bearer {token}").as_str()))
            .then_some(())
            .ok_or_else(|| "a valid bearer token is required".to_owned()),
        StubAuth::Basic(user, password) => {
            let expected = format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            );
            (authorization == Some(expected.as_str()))
                .then_some(())
                .ok_or_else(|| "valid basic credentials are required".to_owned())
        }
        StubAuth::Hmac(secret) => {
            let Some(signature) = header(&shared.hmac_header) else {
                return Err(format!("the {} header is required", shared.hmac_header));
            };
            super::http::verify_signature(
                secret.as_bytes(),
                signature,
                body,
                chrono::Utc::now().timestamp(),
            )
            .map_err(|why| format!("bad signature: {why}"))
        }
    }
}

/// Answers an authenticated request.
async fn route(
    shared: &Shared,
    method: &Method,
    path: &str,
    query: &str,
    key: Option<&str>,
    body: &[u8],
) -> Response {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        (&Method::POST, ["invoices"]) => {
            let invoice: ErpInvoice = match serde_json::from_slice(body) {
                Ok(i) => i,
                Err(e) => {
                    return reasons(StatusCode::BAD_REQUEST, &[format!("not an invoice: {e}")]);
                }
            };
            if key.is_none_or(|k| k.trim().is_empty()) {
                let why = format!("the {} header is required", shared.idempotency_header);
                return reasons(StatusCode::BAD_REQUEST, &[why]);
            }
            match shared.erp.post_invoice(&invoice).await {
                Ok(PostOutcome::Accepted {
                    document_number,
                    already_posted,
                }) => answer(
                    if already_posted {
                        StatusCode::OK
                    } else {
                        StatusCode::CREATED
                    },
                    json!({ "document_number": document_number }),
                ),
                Ok(PostOutcome::Rejected { reasons: r }) => {
                    reasons(StatusCode::UNPROCESSABLE_ENTITY, &r)
                }
                Ok(PostOutcome::Pending) => answer(StatusCode::ACCEPTED, json!({})),
                Err(e) => unavailable(&e),
            }
        }
        (&Method::POST, ["invoices", id, "cancel"]) => {
            let Ok(id) = id.parse::<i64>() else {
                return reasons(StatusCode::BAD_REQUEST, &["not an invoice id".into()]);
            };
            match shared.erp.cancel_invoice(id).await {
                Ok(CancelOutcome::Cancelled { document_number }) => answer(
                    StatusCode::OK,
                    json!({ "document_number": document_number }),
                ),
                Ok(CancelOutcome::AlreadyCancelled { document_number }) => answer(
                    StatusCode::CONFLICT,
                    json!({ "document_number": document_number }),
                ),
                Ok(CancelOutcome::NotPosted) => reasons(
                    StatusCode::NOT_FOUND,
                    &[format!("invoice {id} was never posted")],
                ),
                Ok(CancelOutcome::Pending) => answer(StatusCode::ACCEPTED, json!({})),
                Err(e) => unavailable(&e),
            }
        }
        (&Method::POST, ["coupa-pay-payments"]) => {
            let payment: ErpPayPayment = match serde_json::from_slice(body) {
                Ok(p) => p,
                Err(e) => {
                    return reasons(
                        StatusCode::BAD_REQUEST,
                        &[format!("not a Coupa Pay payment: {e}")],
                    );
                }
            };
            match shared.erp.book_pay_payment(&payment).await {
                Ok(b) => {
                    let (change, previous) = match &b.change {
                        PayBookingChange::Inserted => ("inserted", None),
                        PayBookingChange::Updated { previous_status } => {
                            ("updated", Some(previous_status.clone()))
                        }
                        PayBookingChange::Unchanged => ("unchanged", None),
                    };
                    let unapplied: Vec<Value> = b
                        .unapplied
                        .iter()
                        .map(|(i, why)| json!({ "index": i, "reason": why }))
                        .collect();
                    answer(
                        StatusCode::OK,
                        json!({
                            "change": change,
                            "previous_status": previous,
                            "unapplied": unapplied,
                            "paid": b.paid,
                            "reopened": b.reopened,
                        }),
                    )
                }
                Err(e) => unavailable(&e),
            }
        }
        (&Method::GET, ["payments"]) => payments(shared, query).await,
        (_, ["invoices"] | ["invoices", _, "cancel"] | ["coupa-pay-payments"] | ["payments"]) => {
            reasons(
                StatusCode::METHOD_NOT_ALLOWED,
                &["method not allowed".into()],
            )
        }
        _ => reasons(StatusCode::NOT_FOUND, &[format!("no route {path}")]),
    }
}

/// `GET /payments`: a page of the ERP's payments after the cursor.
async fn payments(shared: &Shared, query: &str) -> Response {
    let mut cursor = 0_i64;
    let mut limit = PAGE;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        match name {
            "cursor" => match value.parse() {
                Ok(c) => cursor = c,
                Err(_) => {
                    return reasons(
                        StatusCode::BAD_REQUEST,
                        &[format!("cursor '{value}' is not a payment id")],
                    );
                }
            },
            "limit" => match value.parse::<usize>() {
                Ok(l) => limit = l.clamp(1, MAX_PAGE),
                Err(_) => {
                    return reasons(
                        StatusCode::BAD_REQUEST,
                        &[format!("limit '{value}' is not a number")],
                    );
                }
            },
            _ => {}
        }
    }
    let rows = match shared.erp.payments().await {
        Ok(rows) => rows,
        Err(e) => return unavailable(&e),
    };
    let page: Vec<_> = rows
        .into_iter()
        .filter(|r| r.id > cursor)
        .take(limit)
        .collect();
    let next = page.last().map(|r| r.id.to_string());
    // Rows the ERP itself cannot read as a payment are left out, as its export would.
    let items: Vec<NewErpPayment> = page
        .into_iter()
        .filter_map(|r| {
            Some(NewErpPayment {
                amount: r.amount.trim().parse::<Decimal>().ok()?,
                payment_date: NaiveDate::parse_from_str(r.payment_date.trim(), "%Y-%m-%d").ok()?,
                payment_ref: r.payment_ref,
                invoice_number: r.invoice_number,
                supplier_name: r.supplier_name,
                supplier_number: r.supplier_number,
                currency: r.currency,
                check_number: r.check_number,
                paid_in_full: r.paid_in_full,
            })
        })
        .collect();
    answer(
        StatusCode::OK,
        json!({ "items": items, "next_cursor": next }),
    )
}
