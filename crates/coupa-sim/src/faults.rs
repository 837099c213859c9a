//! Fault injection: rules that make chosen requests fail the way real networks and real Coupa
//! instances do.
//!
//! A rule matches by method and path prefix and fires either for the next `count` matching
//! requests, or for a share `rate` of them drawn from a seeded generator, so a chaos run is
//! reproducible request for request. The decision ([`Faults::decide`]) is separate from its
//! effect (the HTTP layer), and tested on its own.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What an injected fault does to the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum FaultKind {
    /// Answer this status (500, 502, 503...) with an error body, without running the request.
    Status { status: u16 },
    /// Answer 429, as the rate limit would; with `retry_after` seconds when set.
    TooManyRequests { retry_after: Option<u64> },
    /// Wait this long, then handle the request normally.
    Delay { millis: u64 },
    /// Run the request, then close the connection without answering: the client cannot know
    /// whether it took effect.
    Drop,
    /// Run the request, then send only the first half of the body and close the connection.
    Truncate,
    /// Expire every access token, then handle the request (which then answers 401).
    ExpireTokens,
}

/// One rule, as the admin API takes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FaultRule {
    #[serde(flatten)]
    pub kind: FaultKind,
    /// `GET`, `PUT`...; any method when absent.
    #[serde(default)]
    pub method: Option<String>,
    /// A path prefix such as `/api/invoices`; every path when absent.
    #[serde(default)]
    pub path: Option<String>,
    /// Fire for the next `count` matching requests.
    #[serde(default)]
    pub count: Option<u64>,
    /// Fire for this share (0 to 1) of matching requests, drawn from `seed`.
    #[serde(default)]
    pub rate: Option<f64>,
    #[serde(default)]
    pub seed: u64,
}

#[derive(Debug, Clone)]
struct Armed {
    rule: FaultRule,
    seen: u64,
    fired: u64,
}

/// The rules in force.
#[derive(Debug, Default)]
pub struct Faults {
    rules: parking_lot::Mutex<Vec<Armed>>,
}

impl Faults {
    pub fn add(&self, rule: FaultRule) {
        self.rules.lock().push(Armed {
            rule,
            seen: 0,
            fired: 0,
        });
    }

    pub fn clear(&self) {
        self.rules.lock().clear();
    }

    pub fn rules(&self) -> Vec<FaultRule> {
        self.rules.lock().iter().map(|a| a.rule.clone()).collect()
    }

    /// The fault to apply to a request, if any. The first rule that fires wins; a rule whose
    /// `count` is used up is removed.
    pub fn decide(&self, method: &str, path: &str) -> Option<FaultKind> {
        let mut rules = self.rules.lock();
        let mut fired = None;
        for (i, a) in rules.iter_mut().enumerate() {
            let r = &a.rule;
            if r.method
                .as_deref()
                .is_some_and(|m| !m.eq_ignore_ascii_case(method))
            {
                continue;
            }
            if r.path.as_deref().is_some_and(|p| !path.starts_with(p)) {
                continue;
            }
            let n = a.seen;
            a.seen += 1;
            let fire = match (r.count, r.rate) {
                (Some(count), _) => a.fired < count,
                (None, Some(rate)) => unit_interval(r.seed, n) < rate,
                (None, None) => true,
            };
            if fire {
                a.fired += 1;
                let spent = r.count.is_some_and(|c| a.fired >= c);
                fired = Some((i, r.kind.clone(), spent));
                break;
            }
        }
        let (i, kind, spent) = fired?;
        if spent {
            rules.remove(i);
        }
        Some(kind)
    }
}

impl FaultKind {
    pub fn delay(&self) -> Option<Duration> {
        match self {
            FaultKind::Delay { millis } => Some(Duration::from_millis(*millis)),
            _ => None,
        }
    }
}

/// A uniform draw in [0, 1) from (seed, n): SplitMix64, stable across versions and platforms.
fn unit_interval(seed: u64, n: u64) -> f64 {
    let mut z = seed
        .wrapping_add(n.wrapping_mul(0x9E37_79B9_7F4A_7C15))
        .wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(kind: FaultKind) -> FaultRule {
        FaultRule {
            kind,
            method: None,
            path: None,
            count: None,
            rate: None,
            seed: 0,
        }
    }

    #[test]
    fn count_rules_fire_that_many_times_then_go_away() {
        let f = Faults::default();
        f.add(FaultRule {
            count: Some(2),
            path: Some("/api/invoices".into()),
            method: Some("PUT".into()),
            ..rule(FaultKind::Status { status: 503 })
        });
        assert_eq!(f.decide("GET", "/api/invoices"), None);
        assert_eq!(f.decide("PUT", "/api/integration_runs/1"), None);
        assert_eq!(
            f.decide("put", "/api/invoices/5"),
            Some(FaultKind::Status { status: 503 })
        );
        assert_eq!(
            f.decide("PUT", "/api/invoices/6"),
            Some(FaultKind::Status { status: 503 })
        );
        assert_eq!(f.decide("PUT", "/api/invoices/7"), None);
        assert!(f.rules().is_empty());
    }

    #[test]
    fn rate_rules_fire_for_about_that_share_and_reproducibly() {
        let run = || {
            let f = Faults::default();
            f.add(FaultRule {
                rate: Some(0.2),
                seed: 42,
                ..rule(FaultKind::Drop)
            });
            (0..5000)
                .map(|_| f.decide("GET", "/api/invoices").is_some())
                .collect::<Vec<_>>()
        };
        let a = run();
        assert_eq!(a, run(), "same seed, same faults");
        let fired = a.iter().filter(|x| **x).count();
        assert!((900..1100).contains(&fired), "{fired} of 5000 fired");
    }

    #[test]
    fn rules_parse_from_the_admin_json() {
        let r: FaultRule = serde_json::from_str(
            r#"{"kind":"too_many_requests","retry_after":2,"path":"/api","count":3}"#,
        )
        .expect("parses");
        assert_eq!(
            r.kind,
            FaultKind::TooManyRequests {
                retry_after: Some(2)
            }
        );
        assert_eq!(r.count, Some(3));
    }
}
