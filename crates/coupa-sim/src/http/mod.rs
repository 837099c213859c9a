//! The simulator's HTTP application. (Placeholder.)
pub mod auth;
use std::sync::Arc;
use crate::SimState;
pub fn router(state: Arc<SimState>) -> axum::Router {
    axum::Router::new().with_state(state)
}
