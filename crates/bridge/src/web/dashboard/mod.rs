//! The dashboard: server-rendered pages, usable without JavaScript and without any external
//! asset (inline CSS, SVG charts drawn on the server by [`charts`]).
//!
//! One module per page; [`view`] holds what they share (rendering, error pages, formatting).
//! Templates live in `templates/dashboard/` (askama, HTML-escaped by default). The server's
//! middleware (token) wraps these routes; the one form that changes anything, "Retry", carries
//! the server's CSRF token and is checked in [`failures`].

mod calls;
pub mod charts;
mod documents;
mod failures;
mod overview;
mod payments;
mod runs;
pub mod view;

use axum::Router;
use axum::routing::{get, post};

use super::WebState;

pub fn routes() -> Router<WebState> {
    Router::new()
        .route("/", get(overview::page))
        .route("/runs/{id}", get(runs::page))
        // A wildcard: a document key may hold anything, a `/` included (payment file names).
        .route("/documents/{flow}/{*key}", get(documents::page))
        .route("/failures", get(failures::page))
        .route("/failures/retry", post(failures::retry))
        .route("/payments", get(payments::page))
        .route("/calls", get(calls::page))
}
