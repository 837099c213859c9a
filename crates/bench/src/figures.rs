//! One scenario's figures, printed as one JSON object.

use std::collections::BTreeMap;

use serde::Serialize;

/// Calls a pass makes whatever its size: the token, the Integration's lookup (and creation, the
/// first time), the integration run's bookkeeping. The issue's per-document targets are "plus
/// the run's fixed calls".
const FIXED_ENDPOINTS: [&str; 7] = [
    "POST /oauth2/token",
    "GET /api/integrations",
    "POST /api/integrations",
    "GET /api/integration_runs",
    "POST /api/integration_runs",
    "PUT /api/integration_runs/{id}",
    "PUT /api/integration_runs/{id}/{action}",
];

#[derive(Debug, Serialize)]
pub struct Figures {
    pub scenario: &'static str,
    pub group: &'static str,
    pub quick: bool,
    /// What `documents` counts: `invoices`, `payments`, `pay-payments`.
    pub document_kind: &'static str,
    pub documents: u64,
    /// Coupa calls the simulator answered (429s included).
    pub api_calls: u64,
    pub calls_per_document: f64,
    /// Of `api_calls`, the pass's fixed ones ([`FIXED_ENDPOINTS`]).
    pub fixed_calls: u64,
    pub calls_per_document_excluding_fixed: f64,
    pub calls_by_endpoint: BTreeMap<String, u64>,
    /// From the connector process's start to its exit.
    pub wall_seconds: f64,
    pub documents_per_second: f64,
    pub throttled_429: u64,
    pub retries: u64,
    /// Peak resident set of the connector process.
    pub peak_rss_mb: f64,
    /// Under Coupa's limit: the floor and how close the run came to it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<Limit>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<Latency>,
    /// Anything else the scenario measured (e.g. the Coupa calls of idle daemon passes).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub extra: BTreeMap<&'static str, serde_json::Value>,
    pub connector: serde_json::Value,
    pub targets: Vec<Target>,
}

#[derive(Debug, Serialize)]
pub struct Limit {
    pub requests_per_second: u32,
    pub burst: u32,
    /// The shortest time Coupa's limit allows for the calls made: the burst at once, the rest
    /// at the sustained rate.
    pub floor_seconds: f64,
    /// `floor_seconds / wall_seconds`: the share of the request budget used.
    pub budget_used: f64,
    pub throttled_share: f64,
}

#[derive(Debug, Serialize)]
pub struct Latency {
    pub samples: usize,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Latency {
    /// Percentiles (nearest rank) of `ms`; `None` when empty.
    pub fn of(mut ms: Vec<f64>) -> Option<Latency> {
        if ms.is_empty() {
            return None;
        }
        ms.sort_by(f64::total_cmp);
        let rank = |p: f64| {
            let i = ((p / 100.0) * ms.len() as f64).ceil() as usize;
            ms[i.clamp(1, ms.len()) - 1]
        };
        Some(Latency {
            samples: ms.len(),
            p50: rank(50.0),
            p90: rank(90.0),
            p99: rank(99.0),
            max: ms[ms.len() - 1],
        })
    }
}

#[derive(Debug, Serialize)]
pub struct Target {
    pub what: &'static str,
    /// `<=` or `>=` and the bound, as the issue states it.
    pub target: String,
    pub value: f64,
    pub met: bool,
}

impl Target {
    pub fn at_most(what: &'static str, bound: f64, value: f64) -> Target {
        Target {
            what,
            target: format!("<= {bound}"),
            value: round(value),
            met: value <= bound,
        }
    }

    pub fn at_least(what: &'static str, bound: f64, value: f64) -> Target {
        Target {
            what,
            target: format!(">= {bound}"),
            value: round(value),
            met: value >= bound,
        }
    }
}

/// What a measured connector run left: counted by the simulator and the connector.
pub struct Measured {
    pub documents: u64,
    pub stats: serde_json::Value,
    pub throttled: u64,
    pub wall_seconds: f64,
    pub peak_rss: u64,
    pub retries: u64,
}

impl Figures {
    pub fn new(
        scenario: &crate::scenarios::Scenario,
        quick: bool,
        document_kind: &'static str,
        m: Measured,
        connector: serde_json::Value,
    ) -> Figures {
        let calls_by_endpoint: BTreeMap<String, u64> = m
            .stats
            .get("endpoints")
            .and_then(serde_json::Value::as_object)
            .map(|o| {
                o.iter()
                    .map(|(k, v)| {
                        let n = v.get("calls").and_then(serde_json::Value::as_u64);
                        (k.clone(), n.unwrap_or(0))
                    })
                    .collect()
            })
            .unwrap_or_default();
        let api_calls: u64 = calls_by_endpoint.values().sum();
        let fixed_calls: u64 = FIXED_ENDPOINTS
            .iter()
            .filter_map(|e| calls_by_endpoint.get(*e))
            .sum();
        let per = |n: u64| {
            if m.documents == 0 {
                0.0
            } else {
                round(n as f64 / m.documents as f64)
            }
        };
        Figures {
            scenario: scenario.name,
            group: scenario.group,
            quick,
            document_kind,
            documents: m.documents,
            api_calls,
            calls_per_document: per(api_calls),
            fixed_calls,
            calls_per_document_excluding_fixed: per(api_calls - fixed_calls),
            calls_by_endpoint,
            wall_seconds: round(m.wall_seconds),
            documents_per_second: round(m.documents as f64 / m.wall_seconds.max(1e-9)),
            throttled_429: m.throttled,
            retries: m.retries,
            peak_rss_mb: round(m.peak_rss as f64 / (1024.0 * 1024.0)),
            limit: None,
            latency_ms: None,
            extra: BTreeMap::new(),
            connector,
            targets: Vec::new(),
        }
    }

    /// Adds the floor Coupa's limit allows and the budget used.
    pub fn under_limit(&mut self, per_second: u32, burst: u32) {
        let floor =
            self.api_calls.saturating_sub(u64::from(burst)) as f64 / f64::from(per_second.max(1));
        let budget_used = floor / self.wall_seconds.max(1e-9);
        let throttled_share = if self.api_calls == 0 {
            0.0
        } else {
            self.throttled_429 as f64 / self.api_calls as f64
        };
        self.limit = Some(Limit {
            requests_per_second: per_second,
            burst,
            floor_seconds: round(floor),
            budget_used: round(budget_used),
            throttled_share: round(throttled_share),
        });
        self.targets.push(Target::at_least(
            "share of the request budget used",
            0.9,
            budget_used,
        ));
        self.targets.push(Target::at_most(
            "share of calls answered 429",
            0.01,
            throttled_share,
        ));
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// One line for the terminal.
    pub fn summary(&self) -> String {
        let missed: Vec<&str> = self
            .targets
            .iter()
            .filter(|t| !t.met)
            .map(|t| t.what)
            .collect();
        format!(
            "{}: {} {} in {:.2}s ({:.1}/s), {} calls ({:.2}/doc), {} 429s, peak RSS {:.1} MB; {}",
            self.scenario,
            self.documents,
            self.document_kind,
            self.wall_seconds,
            self.documents_per_second,
            self.api_calls,
            self.calls_per_document,
            self.throttled_429,
            self.peak_rss_mb,
            if missed.is_empty() {
                "every target met".to_owned()
            } else {
                format!("missed: {}", missed.join(", "))
            }
        )
    }
}

/// Three decimals: enough for every figure here, and readable JSON.
pub fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
