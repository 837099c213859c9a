//! OAuth2. (Placeholder.)
#[derive(Debug, Default)]
pub struct Tokens {}
