//! The daemon's HTTP server (axum): the dashboard, `/metrics`, `/healthz`, `/readyz` and the ERP
//! push endpoint.
//!
//! [`router`] builds the whole application from a [`WebState`]; [`serve`] runs it on a listener
//! the caller bound (port 0 in tests) until `shutdown` resolves. One module per concern:
//! [`auth`] (the server token, checked by a middleware around the whole router, so a route added
//! later is protected without anyone remembering to), [`health`], [`metrics`], [`push`] (the ERP
//! push endpoint) and [`dashboard`].

pub mod auth;
pub mod dashboard;
pub mod health;
pub mod metrics;
pub mod push;

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use secrecy::SecretString;

use crate::connector::Connector;
use crate::daemon::Triggers;

/// What every handler can reach. Cheap to clone.
#[derive(Clone)]
pub struct WebState {
    pub connector: Arc<Connector>,
    /// Runs a flow's pass now (the push endpoint, "retry").
    pub triggers: Triggers,
    /// `server.token`: required on every request but the health checks, when set.
    pub token: Option<SecretString>,
    /// The secret the dashboard's forms carry, so another site cannot post them.
    pub csrf: Arc<str>,
}

impl WebState {
    pub fn new(connector: Arc<Connector>, triggers: Triggers) -> WebState {
        let token = connector.config.server.token.clone();
        WebState {
            connector,
            triggers,
            token,
            csrf: random_token().into(),
        }
    }
}

/// 32 random bytes, hex.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    // Without an OS random source nothing else here would be safe either.
    if getrandom::fill(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        bytes[..16].copy_from_slice(&nanos.to_le_bytes());
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The whole application.
pub fn router(state: WebState) -> Router {
    Router::new()
        .merge(dashboard::routes())
        .merge(health::routes())
        .merge(metrics::routes())
        .merge(push::routes())
        // Around everything, unknown paths included, so a 404 tells a stranger nothing either.
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .with_state(state)
}

/// Serves [`router`] on `listener` until `shutdown` resolves, then lets requests in flight end.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: WebState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
}
