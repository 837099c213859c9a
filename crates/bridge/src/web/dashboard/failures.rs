//! `/failures`: the documents that need a person, each with its reason and a "Retry" button,
//! and `POST /failures/retry`, what the button does.
//!
//! The button is a plain form (no JavaScript) carrying the server's CSRF token, so another site
//! cannot make a logged-in browser post it: the token is compared in constant time, and a
//! request that names its `Origin` must come from this server's own host. After a retry the
//! browser is sent back (303, post/redirect/get) to the list with what was done.

use askama::Template;
use axum::extract::rejection::FormRejection;
use axum::extract::{Form, Query, State};
use axum::http::HeaderMap;
use axum::http::header::{HOST, ORIGIN};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::view::{self, PageError, PageResult};
use crate::flows::FlowName;
use crate::web::WebState;

/// Failures listed per kind (rejected invoices, failed ERP payments, Coupa Pay payments).
const FAILURES_SHOWN: usize = 500;

#[derive(Template)]
#[template(path = "dashboard/failures.html")]
struct FailuresPage {
    version: &'static str,
    done: Option<String>,
    error: Option<String>,
    csrf: String,
    failures: Vec<FailureRow>,
    by_flow: Vec<(&'static str, usize)>,
}

struct FailureRow {
    flow: &'static str,
    flow_title: &'static str,
    key: String,
    link: String,
    what: String,
    reason: String,
    at: String,
    run: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Notice {
    done: Option<String>,
    error: Option<String>,
}

pub async fn page(State(state): State<WebState>, Query(notice): Query<Notice>) -> PageResult {
    let failures = state.connector.failures(FAILURES_SHOWN).await?;
    let by_flow = FlowName::ALL
        .iter()
        .map(|f| (f.title(), failures.iter().filter(|x| x.flow == *f).count()))
        .collect();
    let page = FailuresPage {
        version: view::VERSION,
        done: notice.done.filter(|m| !m.is_empty()),
        error: notice.error.filter(|m| !m.is_empty()),
        csrf: state.csrf.to_string(),
        failures: failures
            .into_iter()
            .map(|f| FailureRow {
                flow: f.flow.as_str(),
                flow_title: f.flow.title(),
                link: view::document_link(f.flow.as_str(), &f.key),
                key: f.key,
                what: f.what,
                reason: f.reason,
                at: view::time_if_known(f.at),
                run: f.run,
            })
            .collect(),
        by_flow,
    };
    Ok(view::render(&page))
}

/// The retry form. Every field defaults to empty, so a form without the token is refused as
/// forbidden rather than as malformed.
#[derive(Debug, Deserialize)]
pub struct RetryForm {
    #[serde(default)]
    flow: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    csrf: String,
}

pub async fn retry(
    State(state): State<WebState>,
    headers: HeaderMap,
    form: Result<Form<RetryForm>, FormRejection>,
) -> Response {
    if !same_origin(&headers) {
        return PageError::Forbidden(
            "This form can only be sent from the dashboard's own pages (the Origin header names another site).".into(),
        )
        .into_response();
    }
    let Form(form) = match form {
        Ok(form) => form,
        Err(e) => {
            return PageError::BadRequest(format!("The retry form is malformed: {e}"))
                .into_response();
        }
    };
    if !view::same_secret(form.csrf.as_bytes(), state.csrf.as_bytes()) {
        return PageError::Forbidden(
            "The form's security token is missing or out of date (the server restarted?): reload the failures page and press Retry again.".into(),
        )
        .into_response();
    }
    let Some(flow) = FlowName::parse(&form.flow) else {
        return PageError::BadRequest(format!("There is no flow '{}'.", form.flow)).into_response();
    };
    match state.connector.retry(flow, &form.key).await {
        Ok(done) => {
            tracing::info!(flow = %flow, key = %form.key, %done, "retry requested from the dashboard");
            state.triggers.trigger(flow);
            Redirect::to(&format!("/failures?done={}", view::url_part(&done))).into_response()
        }
        Err(e) => {
            let message = format!("Nothing was done for {}: {e:#}", form.key);
            tracing::warn!(flow = %flow, key = %form.key, error = %message, "retry refused");
            Redirect::to(&format!("/failures?error={}", view::url_part(&message))).into_response()
        }
    }
}

/// A request without `Origin` passes (same-origin form posts from older browsers, curl with
/// the token); one with `Origin` must name the host it was sent to.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(ORIGIN) else {
        return true;
    };
    let (Ok(origin), Some(host)) = (
        origin.to_str(),
        headers.get(HOST).and_then(|h| h.to_str().ok()),
    ) else {
        return false;
    };
    origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"))
        .is_some_and(|authority| authority.eq_ignore_ascii_case(host))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(origin: Option<&'static str>, host: Option<&'static str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(o) = origin {
            h.insert(ORIGIN, HeaderValue::from_static(o));
        }
        if let Some(host) = host {
            h.insert(HOST, HeaderValue::from_static(host));
        }
        h
    }

    #[test]
    fn origin_must_be_the_host_when_given() {
        assert!(same_origin(&headers(None, Some("127.0.0.1:8080"))));
        assert!(same_origin(&headers(
            Some("http://127.0.0.1:8080"),
            Some("127.0.0.1:8080")
        )));
        assert!(same_origin(&headers(
            Some("https://Bridge.example"),
            Some("bridge.example")
        )));
        assert!(!same_origin(&headers(
            Some("http://evil.example"),
            Some("127.0.0.1:8080")
        )));
        assert!(!same_origin(&headers(Some("null"), Some("127.0.0.1:8080"))));
        assert!(!same_origin(&headers(Some("http://127.0.0.1:8080"), None)));
        assert!(!same_origin(&headers(
            Some("http://127.0.0.1:8080.evil.example"),
            Some("127.0.0.1:8080")
        )));
    }
}
