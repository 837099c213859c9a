//! Coupa-like throttling: a sustained rate with a burst allowance, answered with 429.
//!
//! The decision is a pure function of the limiter's state and the current time (the generic
//! cell rate algorithm), so it is tested with made-up instants; [`Throttle`] feeds it the real
//! clock. "25 requests per second with bursts of 20" reads as: 20 requests may arrive at once,
//! and the allowance refills at 25 per second.

use std::time::{Duration, Instant};

use crate::config::RateLimit;

/// State of one limiter: the theoretical arrival time of the next request, as an offset from
/// the limiter's epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Gcra {
    tat: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Refused; the request would have been accepted this much later.
    Reject {
        retry_after: Duration,
    },
}

impl Gcra {
    /// Decides a request arriving at `now` (time since the epoch) under `limit`.
    pub fn decide(&mut self, limit: RateLimit, now: Duration) -> Decision {
        let per_second = limit.per_second.max(1);
        let interval = Duration::from_nanos(1_000_000_000 / u64::from(per_second));
        let tolerance = interval * limit.burst.max(1).saturating_sub(1);
        let tat = self.tat.max(now);
        if tat > now + tolerance {
            return Decision::Reject {
                retry_after: tat - now - tolerance,
            };
        }
        self.tat = tat + interval;
        Decision::Allow
    }
}

/// The simulator's limiter; the limit can be changed while it runs (admin API).
#[derive(Debug)]
pub struct Throttle {
    epoch: Instant,
    inner: parking_lot::Mutex<(Option<RateLimit>, Gcra)>,
}

impl Throttle {
    pub fn new(limit: Option<RateLimit>) -> Self {
        Throttle {
            epoch: Instant::now(),
            inner: parking_lot::Mutex::new((limit, Gcra::default())),
        }
    }

    /// Decides the request arriving now.
    pub fn check(&self) -> Decision {
        let mut inner = self.inner.lock();
        let (limit, gcra) = &mut *inner;
        match limit {
            None => Decision::Allow,
            Some(limit) => gcra.decide(*limit, self.epoch.elapsed()),
        }
    }

    pub fn limit(&self) -> Option<RateLimit> {
        self.inner.lock().0
    }

    pub fn set_limit(&self, limit: Option<RateLimit>) {
        *self.inner.lock() = (limit, Gcra::default());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const COUPA: RateLimit = RateLimit {
        per_second: 25,
        burst: 20,
        retry_after: false,
    };

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn a_burst_passes_then_the_next_request_is_refused() {
        let mut g = Gcra::default();
        for i in 0..20 {
            assert_eq!(g.decide(COUPA, ms(0)), Decision::Allow, "request {i}");
        }
        match g.decide(COUPA, ms(0)) {
            Decision::Reject { retry_after } => assert_eq!(retry_after, ms(40)),
            Decision::Allow => panic!("21st request in the same instant passed"),
        }
        // One interval later there is room for exactly one more.
        assert_eq!(g.decide(COUPA, ms(40)), Decision::Allow);
        assert!(matches!(g.decide(COUPA, ms(40)), Decision::Reject { .. }));
    }

    #[test]
    fn a_steady_rate_at_the_limit_is_never_refused() {
        let mut g = Gcra::default();
        for i in 0..1000 {
            assert_eq!(g.decide(COUPA, ms(40 * i)), Decision::Allow, "request {i}");
        }
    }

    #[test]
    fn over_one_second_at_most_rate_plus_burst_pass() {
        let mut g = Gcra::default();
        let mut passed = 0;
        for i in 0..1000 {
            if g.decide(COUPA, ms(i)) == Decision::Allow {
                passed += 1;
            }
        }
        // 20 at once plus 25/s refill over the second (the first refill is at 40 ms).
        assert!((44..=45).contains(&passed), "{passed} passed");
    }
}
