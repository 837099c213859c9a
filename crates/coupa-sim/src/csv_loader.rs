//! The CSV payment loader. (Placeholder: being written.)

use std::future::Future;
use std::sync::Arc;

use crate::SimState;

pub async fn run(_state: Arc<SimState>, shutdown: impl Future<Output = ()>) {
    shutdown.await;
}
