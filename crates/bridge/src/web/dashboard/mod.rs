//! The dashboard: server-rendered pages, usable without JavaScript.

use axum::Router;

use super::WebState;

pub fn routes() -> Router<WebState> {
    Router::new()
}
