//! The connector's metrics, rendered for Prometheus at `/metrics`.
//!
//! One registry per [`crate::connector::Connector`] (not a process-wide recorder), so tests can
//! run several connectors in one process and read each one's figures. The figures sit behind one
//! short mutex: [`Observer::attempt`] runs inline on every Coupa request, and a lock held for a
//! few map updates costs less than the request's own bookkeeping. Rendering is by hand in the
//! text exposition format 0.0.4, which is small enough not to need a metrics crate.
//!
//! Label values are bounded so a long-running daemon's series stay few: flows and outcomes are
//! fixed sets, Coupa paths lose their query and have their ids replaced by `{id}`
//! ([`endpoint_label`]), and past [`MAX_API_SERIES`] distinct call series any new one is counted
//! under the endpoint `other`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use coupa_api::observe::{Attempt, Observer};

use crate::flows::{FlowError, FlowName, PassReport};

/// Upper bounds of the pass duration buckets, in seconds: passes take from well under a second
/// (nothing to do) to minutes (a backlog).
const PASS_BUCKETS: &[f64] = &[0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0];
/// Upper bounds of the Coupa call duration buckets, in seconds.
const CALL_BUCKETS: &[f64] = &[0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];
/// Distinct (endpoint, method, status) series before new ones are folded into `other`.
pub const MAX_API_SERIES: usize = 256;

/// How a document of a pass ended, as the `outcome` label says it.
const OUTCOMES: [&str; 4] = ["ok", "rejected", "unreadable", "waiting"];
/// How a pass ended, as the `status` label says it (the store's run status).
const PASS_STATUSES: [&str; 3] = ["succeeded", "partial", "failed"];

/// Counters and histograms fed by the Coupa client (every attempt) and by each pass.
#[derive(Debug, Default)]
pub struct Metrics {
    inner: Mutex<Figures>,
}

#[derive(Debug, Default)]
struct Figures {
    documents: BTreeMap<(FlowName, &'static str), u64>,
    passes: BTreeMap<(FlowName, &'static str), u64>,
    pass_duration: BTreeMap<FlowName, Histogram>,
    last_pass: BTreeMap<FlowName, f64>,
    api_calls: BTreeMap<(String, String, &'static str), u64>,
    throttled: u64,
    retries: u64,
    rate_wait_seconds: f64,
    call_duration: Option<Histogram>,
}

/// A Prometheus histogram: per-bucket counts (not cumulative; summed when rendered), sum, count.
#[derive(Clone, Debug)]
struct Histogram {
    bounds: &'static [f64],
    /// One per bound, then one for +Inf.
    buckets: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            buckets: vec![0; bounds.len() + 1],
            sum: 0.0,
            count: 0,
        }
    }

    fn observe(&mut self, value: f64) {
        let i = self
            .bounds
            .iter()
            .position(|b| value <= *b)
            .unwrap_or(self.bounds.len());
        self.buckets[i] += 1;
        self.sum += value;
        self.count += 1;
    }

    /// `name_bucket{labels,le=...}`, `name_sum{labels}`, `name_count{labels}`.
    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            cumulative += n;
            let le = self
                .bounds
                .get(i)
                .map_or_else(|| "+Inf".to_owned(), |b| b.to_string());
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cumulative}"
            );
        }
        let braces = |s: &str| {
            if s.is_empty() {
                String::new()
            } else {
                format!("{{{s}}}")
            }
        };
        let _ = writeln!(out, "{name}_sum{} {}", braces(labels), self.sum);
        let _ = writeln!(out, "{name}_count{} {}", braces(labels), self.count);
    }
}

impl Metrics {
    /// The figures; a panic elsewhere while the lock was held leaves counters that are still
    /// worth reporting, so poisoning is ignored.
    fn figures(&self) -> MutexGuard<'_, Figures> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a finished pass: its documents by outcome, its duration, a failure.
    pub fn pass_finished(
        &self,
        flow: FlowName,
        result: &Result<PassReport, FlowError>,
        took: Duration,
    ) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let status = match result {
            Err(_) => "failed",
            Ok(r) if r.transient.is_empty() => "succeeded",
            Ok(_) => "partial",
        };
        let mut f = self.figures();
        if let Ok(r) = result {
            for (outcome, n) in [
                ("ok", r.ok()),
                ("rejected", r.rejected.len() as u64),
                ("unreadable", r.unreadable.len() as u64),
                ("waiting", r.transient.len() as u64),
            ] {
                *f.documents.entry((flow, outcome)).or_default() += n;
            }
        }
        *f.passes.entry((flow, status)).or_default() += 1;
        f.pass_duration
            .entry(flow)
            .or_insert_with(|| Histogram::new(PASS_BUCKETS))
            .observe(took.as_secs_f64());
        f.last_pass.insert(flow, now);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let f = self.figures();
        let mut out = String::with_capacity(4096);

        header(
            &mut out,
            "coupa_bridge_documents_total",
            "counter",
            "Documents handled by passes, by flow and outcome (ok: handled with nothing to fix; waiting: left for the next pass).",
        );
        for flow in FlowName::ALL {
            for outcome in OUTCOMES {
                let n = f.documents.get(&(flow, outcome)).copied().unwrap_or(0);
                let _ = writeln!(
                    out,
                    "coupa_bridge_documents_total{{flow=\"{flow}\",outcome=\"{outcome}\"}} {n}"
                );
            }
        }

        header(
            &mut out,
            "coupa_bridge_passes_total",
            "counter",
            "Passes run, by flow and how they ended.",
        );
        for flow in FlowName::ALL {
            for status in PASS_STATUSES {
                let n = f.passes.get(&(flow, status)).copied().unwrap_or(0);
                let _ = writeln!(
                    out,
                    "coupa_bridge_passes_total{{flow=\"{flow}\",status=\"{status}\"}} {n}"
                );
            }
        }

        header(
            &mut out,
            "coupa_bridge_pass_duration_seconds",
            "histogram",
            "How long passes took, by flow.",
        );
        let empty = Histogram::new(PASS_BUCKETS);
        for flow in FlowName::ALL {
            f.pass_duration.get(&flow).unwrap_or(&empty).render(
                &mut out,
                "coupa_bridge_pass_duration_seconds",
                &format!("flow=\"{flow}\""),
            );
        }

        header(
            &mut out,
            "coupa_bridge_last_pass_timestamp_seconds",
            "gauge",
            "When the last pass of a flow ended, in seconds since the Unix epoch.",
        );
        for (flow, at) in &f.last_pass {
            let _ = writeln!(
                out,
                "coupa_bridge_last_pass_timestamp_seconds{{flow=\"{flow}\"}} {at}"
            );
        }

        header(
            &mut out,
            "coupa_bridge_api_calls_total",
            "counter",
            "Coupa API attempts, by endpoint (ids replaced by {id}), method and status class.",
        );
        for ((endpoint, method, status), n) in &f.api_calls {
            let _ = writeln!(
                out,
                "coupa_bridge_api_calls_total{{endpoint=\"{}\",method=\"{}\",status=\"{status}\"}} {n}",
                escape(endpoint),
                escape(method)
            );
        }

        header(
            &mut out,
            "coupa_bridge_api_throttled_total",
            "counter",
            "Coupa API attempts answered 429 Too Many Requests.",
        );
        let _ = writeln!(out, "coupa_bridge_api_throttled_total {}", f.throttled);

        header(
            &mut out,
            "coupa_bridge_api_retries_total",
            "counter",
            "Coupa API attempts that repeated an earlier attempt of the same request.",
        );
        let _ = writeln!(out, "coupa_bridge_api_retries_total {}", f.retries);

        header(
            &mut out,
            "coupa_bridge_rate_wait_seconds_total",
            "counter",
            "Time Coupa API attempts waited for the client's rate governor.",
        );
        let _ = writeln!(
            out,
            "coupa_bridge_rate_wait_seconds_total {}",
            f.rate_wait_seconds
        );

        header(
            &mut out,
            "coupa_bridge_api_call_duration_seconds",
            "histogram",
            "How long Coupa API attempts took.",
        );
        f.call_duration
            .clone()
            .unwrap_or_else(|| Histogram::new(CALL_BUCKETS))
            .render(&mut out, "coupa_bridge_api_call_duration_seconds", "");
        out
    }
}

impl Observer for Metrics {
    fn attempt(&self, attempt: &Attempt) {
        // Worked out before taking the lock: the allocation is the costly part.
        let endpoint = endpoint_label(&attempt.path);
        let status = attempt.status_class();
        let mut f = self.figures();
        let key = (endpoint, attempt.method.clone(), status);
        let key = if f.api_calls.contains_key(&key) || f.api_calls.len() < MAX_API_SERIES {
            key
        } else {
            ("other".to_owned(), key.1, status)
        };
        *f.api_calls.entry(key).or_default() += 1;
        if attempt.status == Some(429) {
            f.throttled += 1;
        }
        if attempt.attempt > 1 {
            f.retries += 1;
        }
        f.rate_wait_seconds += attempt.waited.as_secs_f64();
        f.call_duration
            .get_or_insert_with(|| Histogram::new(CALL_BUCKETS))
            .observe(attempt.duration.as_secs_f64());
    }
}

/// The endpoint a path belongs to: without its query, with every all-digit segment (a Coupa id)
/// replaced by `{id}`: `/api/invoices/1042?fields=...` is `/api/invoices/{id}`.
pub fn endpoint_label(path: &str) -> String {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let mut out = String::with_capacity(path.len());
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        if !segment.is_empty() && segment.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str("{id}");
        } else {
            out.push_str(segment);
        }
    }
    out
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A label value as the text format wants it: backslash, double quote and newline escaped.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use coupa_api::observe::CallContext;

    use super::*;

    fn attempt(method: &str, path: &str, n: u32, status: Option<u16>) -> Attempt {
        Attempt {
            context: Arc::new(CallContext::default()),
            method: method.into(),
            path: path.into(),
            attempt: n,
            status,
            duration: Duration::from_millis(30),
            waited: Duration::from_millis(250),
            bytes_sent: 0,
            bytes_received: 0,
            error: None,
            retry_in: None,
        }
    }

    /// The value of the sample line that starts with `series ` exactly.
    fn sample(text: &str, series: &str) -> Option<String> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ').map(str::to_owned))
    }

    #[test]
    fn endpoints_lose_queries_and_ids() {
        assert_eq!(
            endpoint_label("/api/invoices?exported=false&offset=50"),
            "/api/invoices"
        );
        assert_eq!(
            endpoint_label("/api/invoices/1042?fields=[\"id\"]"),
            "/api/invoices/{id}"
        );
        assert_eq!(
            endpoint_label("/api/coupa_pay/payments/77"),
            "/api/coupa_pay/payments/{id}"
        );
        assert_eq!(
            endpoint_label("/api/integration_runs/5/success"),
            "/api/integration_runs/{id}/success"
        );
        assert_eq!(endpoint_label("/oauth2/token"), "/oauth2/token");
        // Only whole numeric segments are ids.
        assert_eq!(endpoint_label("/api/v2x/a1"), "/api/v2x/a1");
    }

    #[test]
    fn passes_count_documents_by_outcome_and_status() {
        let m = Metrics::default();
        // 11 listed: 7 fine, 2 rejected (acknowledged, so exported too), 1 left, 1 unreadable.
        let report = PassReport {
            listed: 11,
            exported: 9,
            rejected: vec![(1, "no".into()), (2, "no".into())],
            transient: vec![(3, "later".into())],
            unreadable: vec!["?".into()],
            ..PassReport::new("invoices", 1)
        };
        m.pass_finished(FlowName::Invoices, &Ok(report), Duration::from_millis(700));
        m.pass_finished(
            FlowName::Invoices,
            &Ok(PassReport::new("invoices", 2)),
            Duration::from_secs(400),
        );
        m.pass_finished(
            FlowName::Payments,
            &Err(FlowError::Sftp("refused".into())),
            Duration::from_millis(50),
        );
        let text = m.render();
        let docs = |flow: &str, outcome: &str| {
            sample(
                &text,
                &format!("coupa_bridge_documents_total{{flow=\"{flow}\",outcome=\"{outcome}\"}}"),
            )
        };
        assert_eq!(docs("invoices", "ok").as_deref(), Some("7"));
        assert_eq!(docs("invoices", "rejected").as_deref(), Some("2"));
        assert_eq!(docs("invoices", "unreadable").as_deref(), Some("1"));
        assert_eq!(docs("invoices", "waiting").as_deref(), Some("1"));
        assert_eq!(docs("payments", "ok").as_deref(), Some("0"));
        let passes = |flow: &str, status: &str| {
            sample(
                &text,
                &format!("coupa_bridge_passes_total{{flow=\"{flow}\",status=\"{status}\"}}"),
            )
        };
        assert_eq!(passes("invoices", "partial").as_deref(), Some("1"));
        assert_eq!(passes("invoices", "succeeded").as_deref(), Some("1"));
        assert_eq!(passes("payments", "failed").as_deref(), Some("1"));
        assert_eq!(passes("pay-payments", "failed").as_deref(), Some("0"));

        let bucket = |le: &str| {
            sample(
                &text,
                &format!(
                    "coupa_bridge_pass_duration_seconds_bucket{{flow=\"invoices\",le=\"{le}\"}}"
                ),
            )
        };
        assert_eq!(bucket("0.5").as_deref(), Some("0"));
        assert_eq!(bucket("1").as_deref(), Some("1"));
        assert_eq!(bucket("300").as_deref(), Some("1"));
        assert_eq!(bucket("+Inf").as_deref(), Some("2"));
        assert_eq!(
            sample(
                &text,
                "coupa_bridge_pass_duration_seconds_count{flow=\"invoices\"}"
            )
            .as_deref(),
            Some("2")
        );
        let sum: f64 = sample(
            &text,
            "coupa_bridge_pass_duration_seconds_sum{flow=\"invoices\"}",
        )
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1.0);
        assert!((sum - 400.7).abs() < 1e-9, "{sum}");
        assert!(
            sample(
                &text,
                "coupa_bridge_last_pass_timestamp_seconds{flow=\"payments\"}"
            )
            .and_then(|v| v.parse::<f64>().ok())
            .is_some_and(|t| t > 1.7e9)
        );
        assert!(
            sample(
                &text,
                "coupa_bridge_last_pass_timestamp_seconds{flow=\"pay-payments\"}"
            )
            .is_none(),
            "no pass, no timestamp"
        );
    }

    #[test]
    fn attempts_count_calls_throttling_retries_and_waits() {
        let m = Metrics::default();
        m.attempt(&attempt("GET", "/api/invoices?offset=0", 1, Some(429)));
        m.attempt(&attempt("GET", "/api/invoices?offset=0", 2, Some(503)));
        m.attempt(&attempt("GET", "/api/invoices?offset=0", 3, Some(200)));
        m.attempt(&attempt("PUT", "/api/invoices/17", 1, Some(200)));
        m.attempt(&attempt("PUT", "/api/invoices/18", 1, None));
        m.attempt(&attempt("POST", "/oauth2/token", 1, Some(401)));
        let text = m.render();
        let calls = |endpoint: &str, method: &str, status: &str| {
            sample(
                &text,
                &format!(
                    "coupa_bridge_api_calls_total{{endpoint=\"{endpoint}\",method=\"{method}\",status=\"{status}\"}}"
                ),
            )
        };
        assert_eq!(calls("/api/invoices", "GET", "429").as_deref(), Some("1"));
        assert_eq!(calls("/api/invoices", "GET", "5xx").as_deref(), Some("1"));
        assert_eq!(calls("/api/invoices", "GET", "2xx").as_deref(), Some("1"));
        assert_eq!(
            calls("/api/invoices/{id}", "PUT", "2xx").as_deref(),
            Some("1")
        );
        assert_eq!(
            calls("/api/invoices/{id}", "PUT", "error").as_deref(),
            Some("1")
        );
        assert_eq!(calls("/oauth2/token", "POST", "4xx").as_deref(), Some("1"));
        assert_eq!(
            sample(&text, "coupa_bridge_api_throttled_total").as_deref(),
            Some("1")
        );
        assert_eq!(
            sample(&text, "coupa_bridge_api_retries_total").as_deref(),
            Some("2")
        );
        assert_eq!(
            sample(&text, "coupa_bridge_rate_wait_seconds_total").as_deref(),
            Some("1.5")
        );
        assert_eq!(
            sample(
                &text,
                "coupa_bridge_api_call_duration_seconds_bucket{le=\"0.01\"}"
            )
            .as_deref(),
            Some("0")
        );
        assert_eq!(
            sample(
                &text,
                "coupa_bridge_api_call_duration_seconds_bucket{le=\"0.05\"}"
            )
            .as_deref(),
            Some("6")
        );
        assert_eq!(
            sample(&text, "coupa_bridge_api_call_duration_seconds_count").as_deref(),
            Some("6")
        );
    }

    #[test]
    fn call_series_are_bounded() {
        let m = Metrics::default();
        for i in 0..MAX_API_SERIES + 10 {
            m.attempt(&attempt("GET", &format!("/api/thing{i}"), 1, Some(200)));
        }
        let text = m.render();
        let series = text
            .lines()
            .filter(|l| l.starts_with("coupa_bridge_api_calls_total{"))
            .count();
        assert_eq!(series, MAX_API_SERIES + 1);
        assert_eq!(
            sample(
                &text,
                "coupa_bridge_api_calls_total{endpoint=\"other\",method=\"GET\",status=\"2xx\"}"
            )
            .as_deref(),
            Some("10")
        );
    }

    #[test]
    fn every_metric_has_help_and_type_and_labels_are_escaped() {
        let m = Metrics::default();
        m.attempt(&attempt("GET", "/api/a\"b\\c", 1, Some(200)));
        let text = m.render();
        assert!(text.contains("endpoint=\"/api/a\\\"b\\\\c\""), "{text}");
        let mut declared = Vec::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let name = rest.split(' ').next().unwrap_or_default();
                assert!(
                    text.contains(&format!("# HELP {name} ")),
                    "{name} has no HELP"
                );
                declared.push(name.to_owned());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().unwrap_or_default();
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s))
                    .filter(|base| declared.iter().any(|d| d == base))
                    .unwrap_or(name);
                assert!(
                    declared.iter().any(|d| d == family),
                    "{line}: sample before its TYPE"
                );
            }
        }
        assert_eq!(declared.len(), 9, "{declared:?}");
    }
}
