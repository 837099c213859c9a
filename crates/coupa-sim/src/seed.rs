//! Deterministic, realistic seed data. (Placeholder: being written.)

use crate::config::SimConfig;
use crate::store::Db;

/// Builds the instance's data from `config.seed`.
pub fn generate(_config: &SimConfig) -> Db {
    Db::default()
}
