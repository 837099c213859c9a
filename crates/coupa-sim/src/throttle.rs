//! Rate limiting. (Placeholder.)
use crate::config::RateLimit;
#[derive(Debug)]
pub struct Throttle {}
impl Throttle {
    pub fn new(_limit: Option<RateLimit>) -> Self {
        Throttle {}
    }
}
