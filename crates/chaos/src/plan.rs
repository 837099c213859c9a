//! The chaos schedule, drawn entirely from the seed before the run starts: fault episodes in the
//! simulator, SIGKILLs of workers (some restarted with a crash point armed), and the activity of
//! the people around the connector (the ERP paying invoices, Coupa Pay moving payments, clerks
//! resetting exports). The same seed gives the same schedule; what the connector is doing at
//! each instant is up to the operating system.

use std::time::Duration;

use coupa_sim::faults::{FaultKind, FaultRule};

use crate::rng::SplitMix;

/// The fault kinds, by the name the figures use.
pub const FAULT_KINDS: [&str; 7] = [
    "5xx",
    "429-retry-after",
    "429",
    "drop",
    "truncate",
    "expire-tokens",
    "delay",
];

/// Where faults land: the requests the three flows make (method, path prefix); `None` is any.
const TARGETS: &[(Option<&str>, Option<&str>)] = &[
    (Some("GET"), Some("/api/invoices")),
    (Some("PUT"), Some("/api/invoices")),
    (Some("GET"), Some("/api/integration_runs")),
    (Some("POST"), Some("/api/integration_runs")),
    (Some("PUT"), Some("/api/integration_runs")),
    (None, Some("/api/integration_history_records")),
    (None, Some("/api/integration_errors")),
    (Some("GET"), Some("/api/integrations")),
    (Some("GET"), Some("/api/coupa_pay/payments")),
    (Some("PUT"), Some("/api/coupa_pay/payments")),
    (Some("POST"), Some("/oauth2/token")),
    (None, Some("/api")),
    (None, Some("/api")),
    (None, None),
];
/// Only the CSV transport reads Coupa's load records.
const CSV_TARGETS: &[(Option<&str>, Option<&str>)] =
    &[(Some("GET"), Some("/api/data_file_sources"))];

/// Crash points of the invoice export and the Coupa Pay export (see `failpoint::hit` in the
/// bridge), armed on some restarts.
const FAILPOINTS_COMMON: &[&str] = &[
    "erp-done",
    "posted",
    "record-created",
    "recorded",
    "exported",
    "pay-booked",
    "pay-record-created",
    "pay-exported",
    "pay-watermark",
    "payments-settled",
];
const FAILPOINTS_API: &[&str] = &["payment-written"];
const FAILPOINTS_CSV: &[&str] = &["file-prepared", "file-renamed"];

/// How payments reach Coupa: it decides the crash points that apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Api,
    Csv,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Api => "api",
            Transport::Csv => "csv",
        }
    }

    /// The crash points a worker of this transport passes.
    pub fn failpoints(self) -> Vec<&'static str> {
        let extra = match self {
            Transport::Api => FAILPOINTS_API,
            Transport::Csv => FAILPOINTS_CSV,
        };
        FAILPOINTS_COMMON.iter().chain(extra).copied().collect()
    }
}

/// What the plan asks for.
#[derive(Clone, Debug)]
pub struct PlanSettings {
    pub seed: u64,
    pub duration: Duration,
    pub replicas: usize,
    pub transport: Transport,
    /// Arm crash points on restarts (off when a sabotage owns the failpoints).
    pub failpoints: bool,
}

/// One thing the harness does at an instant.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    /// Install `rules` (all of kind `kind`, one of [`FAULT_KINDS`]) for `lasts`, then clear
    /// them. Episodes never overlap, so faults served are counted per kind exactly.
    Faults {
        kind: &'static str,
        rules: Vec<FaultRule>,
        lasts: Duration,
    },
    /// SIGKILL worker `worker` (if it is up); start it again `restart_after` later, with
    /// `failpoint` (`name=n`) armed when set.
    Kill {
        worker: usize,
        restart_after: Duration,
        failpoint: Option<String>,
    },
    /// The ERP pays up to `invoices` of the invoices it booked, plus `unmatched` payments for
    /// invoices Coupa does not have.
    ErpPayments { invoices: usize, unmatched: usize },
    /// Coupa Pay moves up to `count` payments to a new status.
    PayChanges { count: usize },
    /// A clerk edits up to `count` exported invoices, which resets their export flag.
    ResetExports { count: usize },
}

/// An event at its offset from the start of the chaos.
#[derive(Clone, Debug, PartialEq)]
pub struct Timed {
    pub at: Duration,
    pub event: Event,
}

/// The whole schedule, by time.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    pub events: Vec<Timed>,
}

impl Plan {
    pub fn generate(s: &PlanSettings) -> Plan {
        let end = s.duration;
        let mut events = Vec::new();

        // Fault episodes, one after the other; kinds are dealt from a shuffled deck so every
        // kind comes up within each 7 episodes.
        let mut rng = SplitMix::stream(s.seed, 1);
        let mut deck: Vec<&'static str> = Vec::new();
        let mut at = rng.millis(200, 1_000);
        while at < end {
            if deck.is_empty() {
                deck = FAULT_KINDS.to_vec();
                rng.shuffle(&mut deck);
            }
            let kind = deck.pop().unwrap_or("5xx");
            let lasts = rng.millis(600, 2_500);
            let rules = (0..rng.between(1, 3))
                .map(|_| fault_rule(&mut rng, kind, s.transport))
                .collect();
            events.push(Timed {
                at,
                event: Event::Faults { kind, rules, lasts },
            });
            at += lasts + rng.millis(0, 800);
        }

        // SIGKILLs.
        let mut rng = SplitMix::stream(s.seed, 2);
        let points = s.transport.failpoints();
        let mut at = rng.millis(1_500, 3_000);
        while at < end {
            let failpoint = (s.failpoints && rng.chance(0.35))
                .then(|| {
                    rng.pick(&points)
                        .map(|p| format!("{p}={}", rng.between(1, 4)))
                })
                .flatten();
            events.push(Timed {
                at,
                event: Event::Kill {
                    worker: rng.below(s.replicas.max(1) as u64) as usize,
                    restart_after: rng.millis(100, 900),
                    failpoint,
                },
            });
            at += rng.millis(900, 3_200);
        }

        // The world around the connector.
        let mut rng = SplitMix::stream(s.seed, 3);
        let mut at = rng.millis(2_000, 4_000);
        while at < end {
            events.push(Timed {
                at,
                event: Event::ErpPayments {
                    invoices: rng.between(3, 25) as usize,
                    unmatched: rng.between(0, 2) as usize,
                },
            });
            at += rng.millis(2_000, 5_000);
        }
        let mut rng = SplitMix::stream(s.seed, 4);
        let mut at = rng.millis(3_000, 5_000);
        while at < end {
            events.push(Timed {
                at,
                event: Event::PayChanges {
                    count: rng.between(1, 6) as usize,
                },
            });
            at += rng.millis(3_000, 6_000);
        }
        let mut rng = SplitMix::stream(s.seed, 5);
        let mut at = rng.millis(3_000, 6_000);
        while at < end {
            events.push(Timed {
                at,
                event: Event::ResetExports {
                    count: rng.between(1, 4) as usize,
                },
            });
            at += rng.millis(3_000, 7_000);
        }

        // Stable: events at the same instant keep their stream order.
        events.sort_by_key(|e| e.at);
        Plan { events }
    }
}

fn fault_rule(rng: &mut SplitMix, kind: &str, transport: Transport) -> FaultRule {
    let fault = match kind {
        "5xx" => FaultKind::Status {
            status: *rng.pick(&[500u16, 502, 503, 504]).unwrap_or(&503),
        },
        "429-retry-after" => FaultKind::TooManyRequests {
            retry_after: Some(1),
        },
        "429" => FaultKind::TooManyRequests { retry_after: None },
        "drop" => FaultKind::Drop,
        "truncate" => FaultKind::Truncate,
        "expire-tokens" => FaultKind::ExpireTokens,
        _ => FaultKind::Delay {
            millis: rng.between(200, 1_500),
        },
    };
    let targets: Vec<_> = match transport {
        Transport::Api => TARGETS.to_vec(),
        Transport::Csv => TARGETS.iter().chain(CSV_TARGETS).copied().collect(),
    };
    let (method, path) = *rng.pick(&targets).unwrap_or(&(None, None));
    // Token expiry by share would expire every token all the time: by count only.
    let by_count = matches!(fault, FaultKind::ExpireTokens) || rng.chance(0.5);
    let (count, rate) = if by_count {
        (Some(rng.between(1, 8)), None)
    } else {
        (None, Some(0.05 + rng.unit() * 0.25))
    };
    FaultRule {
        kind: fault,
        method: method.map(str::to_owned),
        path: path.map(str::to_owned),
        count,
        rate,
        seed: rng.next_u64(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(seed: u64, secs: u64) -> PlanSettings {
        PlanSettings {
            seed,
            duration: Duration::from_secs(secs),
            replicas: 3,
            transport: Transport::Api,
            failpoints: true,
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_plan() {
        assert_eq!(
            Plan::generate(&settings(5, 30)),
            Plan::generate(&settings(5, 30))
        );
        assert_ne!(
            Plan::generate(&settings(5, 30)),
            Plan::generate(&settings(6, 30))
        );
    }

    #[test]
    fn a_short_plan_has_every_fault_kind_kills_and_activity_and_ends_in_time() {
        let s = settings(11, 25);
        let plan = Plan::generate(&s);
        let mut kinds = std::collections::BTreeSet::new();
        let (mut kills, mut armed, mut pays, mut moves, mut resets) = (0, 0, 0, 0, 0);
        let mut last = Duration::ZERO;
        for e in &plan.events {
            assert!(e.at >= last, "sorted");
            assert!(e.at < s.duration, "{e:?}");
            last = e.at;
            match &e.event {
                Event::Faults { kind, rules, .. } => {
                    kinds.insert(*kind);
                    assert!(!rules.is_empty());
                }
                Event::Kill {
                    worker, failpoint, ..
                } => {
                    assert!(*worker < 3);
                    kills += 1;
                    armed += usize::from(failpoint.is_some());
                }
                Event::ErpPayments { .. } => pays += 1,
                Event::PayChanges { .. } => moves += 1,
                Event::ResetExports { .. } => resets += 1,
            }
        }
        assert_eq!(kinds.len(), FAULT_KINDS.len(), "{kinds:?}");
        assert!(kills >= 6, "{kills} kills");
        assert!(armed >= 1, "{armed} armed restarts");
        assert!(
            pays >= 3 && moves >= 3 && resets >= 3,
            "{pays} {moves} {resets}"
        );
    }

    #[test]
    fn fault_episodes_never_overlap() {
        let plan = Plan::generate(&settings(2, 120));
        let mut free_at = Duration::ZERO;
        for e in &plan.events {
            if let Event::Faults { lasts, .. } = &e.event {
                assert!(e.at >= free_at, "episode at {:?} overlaps", e.at);
                free_at = e.at + *lasts;
            }
        }
    }
}
