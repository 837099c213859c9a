//! `/`: each flow's latest runs, totals by outcome, what needs a person, and charts of
//! documents, API calls and errors per hour.
//!
//! The window is the last 24 hours, or, when nothing happened in them, the 24 hours up to the
//! latest thing recorded, so a store from a demo run days ago still shows its data.

use askama::Template;
use axum::extract::State;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};

use super::charts::{self, Chart, Series, palette};
use super::view::{self, PageResult, RunRow};
use crate::db::timestamp;
use crate::flows::FlowName;
use crate::store::dashboard::{HOUR_CHARS, HourCalls, HourRuns};
use crate::web::WebState;

/// Runs shown per flow.
const RUNS_PER_FLOW: usize = 5;
/// Unfinished runs listed under "needs attention".
const UNFINISHED_SHOWN: usize = 20;
/// Failures counted per kind for the overview's figure.
const FAILURES_COUNTED: usize = 1_000;
const HOURS: i64 = 24;

#[derive(Template)]
#[template(path = "dashboard/overview.html")]
struct Overview {
    version: &'static str,
    window: String,
    totals: Vec<Figure>,
    runs_by_status: Vec<(String, u64, &'static str)>,
    flows: Vec<FlowSection>,
    incidents: Vec<IncidentRow>,
    failures: usize,
    erp_pending: u64,
    erp_failed: u64,
    erp_synced: u64,
    running: Vec<RunRow>,
    all_clear: bool,
    charts: Vec<String>,
}

struct Figure {
    n: u64,
    label: &'static str,
}

struct FlowSection {
    title: &'static str,
    name: &'static str,
    runs: Vec<RunRow>,
}

struct IncidentRow {
    flow: String,
    kind: String,
    opened: String,
    last_seen: String,
    count: u64,
    detail: String,
}

/// The 24 one-hour buckets the overview shows, and how to name them.
pub(crate) struct Window {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// True when the window ends now; false when it was moved back to the latest data.
    pub current: bool,
}

impl Window {
    /// The last 24 hours up to the end of the current hour, unless nothing was recorded in them
    /// and something was recorded before: then the 24 hours up to the latest record.
    pub fn new(now: DateTime<Utc>, latest: Option<DateTime<Utc>>) -> Window {
        let day = TimeDelta::hours(HOURS);
        let (reference, current) = match latest {
            Some(t) if t < now - day => (t, false),
            _ => (now, true),
        };
        let hour = TimeDelta::hours(1);
        let end = reference.duration_trunc(hour).unwrap_or(reference) + hour;
        Window {
            start: end - day,
            end,
            current,
        }
    }

    /// The buckets' keys (`2026-11-21T06`, the store's hour prefix) and labels (`06:00`).
    pub fn buckets(&self) -> Vec<(String, String)> {
        (0..HOURS)
            .map(|h| {
                let t = self.start + TimeDelta::hours(h);
                let key = timestamp(t)[..HOUR_CHARS].to_owned();
                (key, t.format("%H:00").to_string())
            })
            .collect()
    }

    fn describe(&self) -> String {
        if self.current {
            "the last 24 hours".to_owned()
        } else {
            format!(
                "the 24 hours up to {} (the latest data; nothing happened since)",
                view::time(self.end)
            )
        }
    }
}

pub async fn page(State(state): State<WebState>) -> PageResult {
    let connector = &state.connector;
    let store = &connector.store;
    let now = Utc::now();
    let window = Window::new(now, store.latest_activity().await?);

    let mut flows = Vec::new();
    for flow in FlowName::ALL {
        let runs = store.flow_runs(flow.as_str(), RUNS_PER_FLOW).await?;
        flows.push(FlowSection {
            title: flow.title(),
            name: flow.as_str(),
            runs: runs.iter().map(|r| RunRow::new(r, now)).collect(),
        });
    }
    let totals = store.run_totals(window.start, window.end).await?;
    let incidents: Vec<IncidentRow> = store
        .open_incidents()
        .await?
        .into_iter()
        .map(|i| IncidentRow {
            flow: view::flow_title(&i.flow),
            kind: i.kind,
            opened: view::time(i.opened_at),
            last_seen: view::time(i.last_seen_at),
            count: i.count,
            detail: i.detail,
        })
        .collect();
    let failures = connector.failures(FAILURES_COUNTED).await?.len();
    let (erp_pending, erp_synced, erp_failed) = connector.ledger.payment_counts().await?;
    let running: Vec<RunRow> = store
        .unfinished_runs(UNFINISHED_SHOWN)
        .await?
        .iter()
        .map(|r| RunRow::new(r, now))
        .collect();

    let run_hours = store.runs_by_hour(window.start, window.end).await?;
    let call_hours = store.calls_by_hour(window.start, window.end).await?;
    let charts = draw_charts(&window, &run_hours, &call_hours);

    let all_clear = incidents.is_empty()
        && failures == 0
        && erp_failed == 0
        && erp_pending == 0
        && running.is_empty();
    let page = Overview {
        version: view::VERSION,
        window: window.describe(),
        totals: vec![
            Figure {
                n: totals.runs(),
                label: "runs",
            },
            Figure {
                n: totals.documents_ok,
                label: "documents ok",
            },
            Figure {
                n: totals.documents_failed,
                label: "documents failed",
            },
            Figure {
                n: totals.documents_skipped,
                label: "left for a later pass",
            },
            Figure {
                n: totals.api_calls,
                label: "API calls",
            },
        ],
        runs_by_status: totals
            .runs_by_status
            .iter()
            .map(|(s, n)| (s.clone(), *n, view::badge(s)))
            .collect(),
        flows,
        incidents,
        failures,
        erp_pending,
        erp_failed,
        erp_synced,
        running,
        all_clear,
        charts,
    };
    Ok(view::render(&page))
}

/// The overview's three charts, over the window's buckets (hours without data count 0).
pub(crate) fn draw_charts(window: &Window, runs: &[HourRuns], calls: &[HourCalls]) -> Vec<String> {
    let buckets = window.buckets();
    let labels: Vec<String> = buckets.iter().map(|(_, l)| l.clone()).collect();
    let run = |key: &str| runs.iter().find(|h| h.hour == key);
    let call = |key: &str| calls.iter().find(|h| h.hour == key);
    let per_run = |f: fn(&HourRuns) -> u64| -> Vec<f64> {
        buckets
            .iter()
            .map(|(k, _)| run(k).map_or(0.0, |h| f(h) as f64))
            .collect()
    };
    let per_call = |classes: &[&str]| -> Vec<f64> {
        buckets
            .iter()
            .map(|(k, _)| {
                call(k).map_or(0.0, |h| {
                    classes.iter().map(|c| h.class(c)).sum::<u64>() as f64
                })
            })
            .collect()
    };
    let documents = Chart {
        id: "chart-documents".into(),
        title: "Documents per hour".into(),
        unit: "documents".into(),
        labels: labels.clone(),
        series: vec![
            Series::new("ok", palette::GREEN, per_run(|h| h.documents_ok)),
            Series::new(
                "failed",
                palette::VERMILLION,
                per_run(|h| h.documents_failed),
            ),
            Series::new(
                "left for a later pass",
                palette::ORANGE,
                per_run(|h| h.documents_skipped),
            ),
        ],
    };
    let api = Chart {
        id: "chart-calls".into(),
        title: "Coupa API calls per hour".into(),
        unit: "calls".into(),
        labels: labels.clone(),
        series: vec![
            Series::new("answered", palette::BLUE, per_call(&["2xx", "3xx"])),
            Series::new("429 throttled", palette::ORANGE, per_call(&["429"])),
            Series::new(
                "errors",
                palette::VERMILLION,
                per_call(&["4xx", "5xx", "error"]),
            ),
        ],
    };
    let errors = Chart {
        id: "chart-errors".into(),
        title: "Errors per hour".into(),
        unit: "errors".into(),
        labels,
        series: vec![
            Series::new(
                "failed documents",
                palette::VERMILLION,
                per_run(|h| h.documents_failed),
            ),
            Series::new("failed runs", palette::PURPLE, per_run(|h| h.runs_failed)),
            Series::new(
                "API errors",
                palette::SKY,
                per_call(&["4xx", "5xx", "error"]),
            ),
            Series::new("429s", palette::ORANGE, per_call(&["429"])),
        ],
    };
    vec![
        charts::stacked_bars(&documents),
        charts::stacked_bars(&api),
        charts::lines(&errors),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        crate::db::parse_timestamp(s).expect("literal")
    }

    #[test]
    fn the_window_follows_the_data_when_it_is_old() {
        let now = at("2026-11-21T06:30:00Z");
        let recent = Window::new(now, Some(at("2026-11-21T01:00:00Z")));
        assert!(recent.current);
        assert_eq!(recent.end, at("2026-11-21T07:00:00Z"));
        assert_eq!(recent.start, at("2026-11-20T07:00:00Z"));
        let buckets = recent.buckets();
        assert_eq!(buckets.len(), 24);
        assert_eq!(buckets[0], ("2026-11-20T07".to_owned(), "07:00".to_owned()));
        assert_eq!(buckets[23].0, "2026-11-21T06");

        let old = Window::new(now, Some(at("2026-11-02T13:12:00Z")));
        assert!(!old.current);
        assert_eq!(old.end, at("2026-11-02T14:00:00Z"));
        assert_eq!(old.buckets()[23].0, "2026-11-02T13");
        assert!(Window::new(now, None).current);
    }

    #[test]
    fn charts_put_each_hour_in_its_bucket() {
        let window = Window::new(at("2026-11-21T06:30:00Z"), None);
        let runs = [HourRuns {
            hour: "2026-11-21T05".into(),
            runs: 2,
            runs_failed: 1,
            documents_ok: 40,
            documents_failed: 3,
            documents_skipped: 0,
        }];
        let calls = [HourCalls {
            hour: "2026-11-21T06".into(),
            by_class: [("2xx".to_owned(), 90), ("429".to_owned(), 5)].into(),
        }];
        let svgs = draw_charts(&window, &runs, &calls);
        assert_eq!(svgs.len(), 3);
        assert!(svgs[0].contains("Documents from 07:00 to 06:00: 40 ok, 3 failed, 0 left"));
        assert!(svgs[1].contains(r#"data-value="90""#));
        assert!(svgs[2].contains("1 failed runs"));
    }
}
