//! `/api/data_file_sources`: the CSV loads and their per-row errors (records are made by
//! [`crate::csv_loader`]).

use std::sync::Arc;

use axum::Router;

use super::{list_route, show_route};
use crate::SimState;
use crate::store::Resource;

const R: Resource = Resource::DataFileSources;

pub fn routes() -> Router<Arc<SimState>> {
    Router::new()
        .route("/api/data_file_sources", list_route(R))
        .route("/api/data_file_sources/{id}", show_route(R))
}
