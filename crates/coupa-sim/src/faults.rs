//! Fault injection. (Placeholder.)
#[derive(Debug, Default)]
pub struct Faults {}
