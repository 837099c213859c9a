//! `/healthz` and `/readyz`, for whatever supervises the daemon (systemd, Kubernetes, a load
//! balancer). Both are open without the server token (see [`super::auth::OPEN_PATHS`]).
//!
//! Liveness asks only that the process serves; readiness that both databases answer a trivial
//! query now, so a daemon whose state store or ERP is down is taken out of rotation rather than
//! restarted. The answer names which database failed; the database's own error, which may name
//! hosts and users, goes to the log only, since these paths are open to anyone.

use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;

use super::WebState;
use crate::db::Db;

/// How long a readiness query may take before the database counts as not ready: probes time out
/// after a few seconds themselves.
const READY_TIMEOUT: Duration = Duration::from_secs(5);

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<WebState>) -> impl IntoResponse {
    let connector = &state.connector;
    let (store, erp) = tokio::join!(
        probe("state store", connector.store.db()),
        probe("ERP", connector.ledger.db())
    );
    let line =
        |name: &str, ok: bool| format!("{name}: {}\n", if ok { "ok" } else { "unavailable" });
    let body = line("state store", store) + &line("ERP", erp);
    let status = if store && erp {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, body)
}

/// Whether `db` answers `SELECT 1` within [`READY_TIMEOUT`]; logs why not.
async fn probe(name: &str, db: &Db) -> bool {
    let query = sqlx::query("SELECT 1 AS ready").fetch_one(db.pool());
    match tokio::time::timeout(READY_TIMEOUT, query).await {
        Ok(Ok(_)) => true,
        Ok(Err(e)) => {
            tracing::warn!(database = name, url = db.url(), error = %e, "not ready");
            false
        }
        Err(_) => {
            tracing::warn!(
                database = name,
                url = db.url(),
                timeout_secs = READY_TIMEOUT.as_secs(),
                "not ready: no answer in time"
            );
            false
        }
    }
}
