//! `/calls`: the Coupa API call log, newest first, narrowed by a GET form (flow, status class,
//! run, document, since) so every view is a link that can be shared.

use askama::Template;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::Deserialize;

use super::view::{self, PageResult};
use crate::flows::FlowName;
use crate::store::CallFilter;
use crate::store::calls::STATUS_CLASSES;
use crate::web::WebState;

const DEFAULT_LIMIT: usize = 100;
const MAX_LIMIT: usize = 1_000;

/// The form as sent: every field text, empty meaning "any".
#[derive(Debug, Default, Deserialize)]
pub struct CallsQuery {
    #[serde(default)]
    flow: String,
    #[serde(default)]
    class: String,
    #[serde(default)]
    run: String,
    #[serde(default)]
    document: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    limit: String,
}

#[derive(Template)]
#[template(path = "dashboard/calls.html")]
struct CallsPage {
    version: &'static str,
    form: CallsQuery,
    flows: Vec<(&'static str, &'static str)>,
    classes: &'static [&'static str],
    limit: usize,
    problems: Vec<String>,
    calls: Vec<CallRow>,
}

struct CallRow {
    at: String,
    flow: String,
    run: Option<i64>,
    document: Option<(String, String)>,
    method: String,
    path: String,
    status: String,
    badge: &'static str,
    ms: u64,
    waited: u64,
    attempt: u32,
    bytes: String,
    error: String,
}

pub async fn page(State(state): State<WebState>, Query(form): Query<CallsQuery>) -> PageResult {
    let (filter, problems) = parse(&form);
    let calls = if problems.is_empty() {
        state.connector.store.calls(&filter).await?
    } else {
        Vec::new()
    };
    let rows = calls
        .into_iter()
        .map(|c| {
            let class = crate::store::calls::status_class(c.status);
            CallRow {
                at: c.at.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
                document: c.document.map(|d| (view::document_link(&c.flow, &d), d)),
                flow: c.flow,
                run: c.run,
                method: c.method,
                path: c.path,
                status: c
                    .status
                    .map_or_else(|| "no answer".to_owned(), |s| s.to_string()),
                badge: view::badge(class),
                ms: c.duration_ms,
                waited: c.waited_ms,
                attempt: c.attempt,
                bytes: format!("{} / {}", c.bytes_sent, c.bytes_received),
                error: c.error.unwrap_or_default(),
            }
        })
        .collect();
    let bad = !problems.is_empty();
    let page = CallsPage {
        version: view::VERSION,
        flows: FlowName::ALL
            .iter()
            .map(|f| (f.as_str(), f.title()))
            .collect(),
        classes: &STATUS_CLASSES,
        limit: filter.limit,
        problems,
        calls: rows,
        form,
    };
    let response = view::render(&page);
    Ok(if bad {
        (StatusCode::BAD_REQUEST, response).into_response()
    } else {
        response
    })
}

/// The store's filter from the form, and what is wrong with the form (nothing is listed then).
fn parse(form: &CallsQuery) -> (CallFilter, Vec<String>) {
    let mut problems = Vec::new();
    let text = |s: &str| Some(s.trim().to_owned()).filter(|s| !s.is_empty());
    let flow = text(&form.flow);
    if let Some(f) = &flow
        && FlowName::parse(f).is_none()
    {
        problems.push(format!("flow: there is no flow '{f}'"));
    }
    let status_class = text(&form.class);
    if let Some(c) = &status_class
        && !STATUS_CLASSES.contains(&c.as_str())
    {
        problems.push(format!(
            "status: '{c}' is not one of {}",
            STATUS_CLASSES.join(", ")
        ));
    }
    let run = text(&form.run).and_then(|r| match r.trim_start_matches('#').parse::<i64>() {
        Ok(n) => Some(n),
        Err(_) => {
            problems.push(format!("run: '{r}' is not a run number"));
            None
        }
    });
    let since = text(&form.since).and_then(|s| match parse_since(&s) {
        Some(t) => Some(t),
        None => {
            problems.push(format!(
                "since: '{s}' is not a time (write 2026-11-21 06:00, in UTC, or RFC 3339)"
            ));
            None
        }
    });
    let limit = match text(&form.limit) {
        None => DEFAULT_LIMIT,
        Some(l) => match l.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
            _ => {
                problems.push(format!(
                    "limit: '{l}' is not a number from 1 to {MAX_LIMIT}"
                ));
                DEFAULT_LIMIT
            }
        },
    };
    let filter = CallFilter {
        flow,
        run,
        document: text(&form.document),
        status_class,
        since,
        limit,
    };
    (filter, problems)
}

/// RFC 3339, or a UTC date and time as people and `datetime-local` inputs write it
/// (`2026-11-21 06:00`, `2026-11-21T06:00:30`), or a date (midnight UTC).
fn parse_since(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    let s = s.trim_end_matches("UTC").trim_end_matches('Z').trim();
    for format in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, format) {
            return Some(t.and_utc());
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_becomes_a_filter() {
        let (filter, problems) = parse(&CallsQuery {
            flow: "invoices".into(),
            class: "429".into(),
            run: " 12 ".into(),
            document: "invoice:7".into(),
            since: "2026-11-21 06:00".into(),
            limit: "".into(),
        });
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(filter.flow.as_deref(), Some("invoices"));
        assert_eq!(filter.status_class.as_deref(), Some("429"));
        assert_eq!(filter.run, Some(12));
        assert_eq!(filter.document.as_deref(), Some("invoice:7"));
        assert_eq!(
            filter.since.map(|t| t.to_rfc3339()),
            Some("2026-11-21T06:00:00+00:00".to_owned())
        );
        assert_eq!(filter.limit, DEFAULT_LIMIT);

        let (empty, problems) = parse(&CallsQuery::default());
        assert!(problems.is_empty());
        assert_eq!(empty, CallFilter::default());
    }

    #[test]
    fn bad_fields_are_named() {
        let (_, problems) = parse(&CallsQuery {
            flow: "nope".into(),
            class: "6xx".into(),
            run: "x".into(),
            since: "yesterday".into(),
            limit: "5000".into(),
            ..CallsQuery::default()
        });
        let text = problems.join("\n");
        for field in ["flow:", "status:", "run:", "since:", "limit:"] {
            assert!(text.contains(field), "{field} in {text}");
        }
    }

    #[test]
    fn since_accepts_what_people_write() {
        for s in [
            "2026-11-21T06:00:00Z",
            "2026-11-21T07:00:00+01:00",
            "2026-11-21 06:00",
            "2026-11-21T06:00",
            "2026-11-21 06:00:00 UTC",
        ] {
            assert_eq!(
                parse_since(s).map(|t| t.to_rfc3339()),
                Some("2026-11-21T06:00:00+00:00".to_owned()),
                "{s}"
            );
        }
        assert!(parse_since("2026-11-21").is_some());
        assert!(parse_since("21/11/2026").is_none());
    }
}
