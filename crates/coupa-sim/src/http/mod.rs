//! The simulator's HTTP application.
//!
//! Every `/api` request passes, outermost first: statistics (what was answered, including
//! 429s and faults), the rate limit, fault injection, authentication and scope, then the
//! resource's handler. `/oauth2/token` gets statistics and faults; the admin API under
//! `/__sim` gets neither, so observing a run does not change it.
//!
//! The server loop is hyper's own rather than `axum::serve` so that an injected "dropped
//! connection" can really close the socket without an answer.

pub mod admin;
pub mod auth;
pub mod format;
pub mod resources;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures_util::StreamExt;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::SimState;
use crate::faults::FaultKind;
use crate::throttle::Decision;
use format::{ApiError, Format};

/// The whole application.
pub fn router(state: Arc<SimState>) -> Router {
    let api = resources::routes()
        .route_layer(middleware::from_fn_with_state(state.clone(), auth::require))
        .route_layer(middleware::from_fn_with_state(state.clone(), inject_faults))
        .route_layer(middleware::from_fn_with_state(state.clone(), throttle))
        .route_layer(middleware::from_fn_with_state(state.clone(), count));
    let oauth = Router::new()
        .route("/oauth2/token", post(auth::token))
        .route_layer(middleware::from_fn_with_state(state.clone(), inject_faults))
        .route_layer(middleware::from_fn_with_state(state.clone(), count));
    Router::new()
        .merge(api)
        .merge(oauth)
        .nest("/__sim", admin::routes())
        .fallback(not_found)
        .with_state(state)
}

async fn not_found(req: Request) -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        Format::of_accept(req.headers()),
        format!("No route matches {} {}", req.method(), req.uri().path()),
    )
    .into_response()
}

/// Records each answered request by route template (`GET /api/invoices/{id}`).
async fn count(State(state): State<Arc<SimState>>, req: Request, next: Next) -> Response {
    let endpoint = format!(
        "{} {}",
        req.method(),
        req.extensions()
            .get::<MatchedPath>()
            .map_or(req.uri().path(), MatchedPath::as_str)
    );
    let resp = next.run(req).await;
    state.stats.record(endpoint, resp.status().as_u16());
    resp
}

fn too_many_requests(format: Format, retry_after: Option<u64>) -> Response {
    let mut e = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        format,
        "Rate limit exceeded. Please retry later.",
    );
    if let Some(secs) = retry_after {
        e = e.with_header(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    e.into_response()
}

async fn throttle(State(state): State<Arc<SimState>>, req: Request, next: Next) -> Response {
    match state.throttle.check() {
        Decision::Allow => next.run(req).await,
        Decision::Reject { retry_after } => {
            state.stats.record_throttled();
            let with_header = state.throttle.limit().is_some_and(|l| l.retry_after);
            // Retry-After is whole seconds; a wait under a second rounds up to 1.
            let secs = with_header.then(|| retry_after.as_secs_f64().ceil().max(1.0) as u64);
            too_many_requests(Format::of_accept(req.headers()), secs)
        }
    }
}

/// Marks a response whose connection must be closed without sending it.
#[derive(Clone, Copy, Debug)]
struct DropConnection;

async fn inject_faults(State(state): State<Arc<SimState>>, req: Request, next: Next) -> Response {
    let Some(fault) = state.faults.decide(req.method().as_str(), req.uri().path()) else {
        return next.run(req).await;
    };
    state.stats.record_fault();
    let format = Format::of_accept(req.headers());
    match fault {
        FaultKind::Status { status } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let reason = status.canonical_reason().unwrap_or("Error");
            ApiError::new(status, format, format!("{reason} (injected fault)")).into_response()
        }
        FaultKind::TooManyRequests { retry_after } => {
            state.stats.record_throttled();
            too_many_requests(format, retry_after)
        }
        FaultKind::Delay { millis } => {
            tokio::time::sleep(std::time::Duration::from_millis(millis)).await;
            next.run(req).await
        }
        FaultKind::ExpireTokens => {
            state.tokens.expire_all();
            next.run(req).await
        }
        FaultKind::Drop => {
            let mut resp = next.run(req).await;
            resp.extensions_mut().insert(DropConnection);
            resp
        }
        FaultKind::Truncate => {
            let resp = next.run(req).await;
            let (parts, body) = resp.into_parts();
            let bytes = axum::body::to_bytes(body, usize::MAX)
                .await
                .unwrap_or_default();
            let half = bytes.slice(..bytes.len() / 2);
            let total = bytes.len();
            // The first half is flushed before the connection breaks, so the client sees a
            // 200 whose body ends early rather than no answer at all.
            let stream = futures_util::stream::iter([Ok::<_, std::io::Error>(half)]).chain(
                futures_util::stream::once(async {
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionAborted,
                        "truncated by fault injection",
                    ))
                }),
            );
            let mut resp = Response::from_parts(parts, Body::from_stream(stream));
            resp.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(total));
            resp
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then lets open requests finish.
pub async fn serve(listener: TcpListener, app: Router, shutdown: impl Future<Output = ()>) {
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let app = app.clone();
        let service =
            hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let app = app.clone();
                async move {
                    let resp = match app.oneshot(req.map(Body::new)).await {
                        Ok(resp) => resp,
                        Err(never) => match never {},
                    };
                    if resp.extensions().get::<DropConnection>().is_some() {
                        // An error from the service makes hyper close the connection unanswered.
                        return Err(std::io::Error::other(
                            "connection dropped by fault injection",
                        ));
                    }
                    Ok::<_, std::io::Error>(resp)
                }
            });
        let conn = hyper::server::conn::http1::Builder::new()
            .keep_alive(true)
            .serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
    graceful.shutdown().await;
}
