//! Per-endpoint call counts. (Placeholder.)
#[derive(Debug, Default)]
pub struct Stats {}
