//! `/runs/{id}`: one run's figures and every document it touched, each with the outcome the
//! run left it in (the reasons, for a failure) and a link to its timeline.

use askama::Template;
use axum::extract::{Path, State};
use chrono::Utc;

use super::view::{self, Outcome, PageError, PageResult, RunRow};
use crate::web::WebState;

#[derive(Template)]
#[template(path = "dashboard/run.html")]
struct RunPage {
    version: &'static str,
    run: RunRow,
    flow_name: String,
    finished: String,
    calls_link: String,
    calls_by_class: Vec<(String, u64, &'static str)>,
    /// Calls not made for one document: listing pages, tokens, the Coupa run.
    own_calls: u64,
    documents: Vec<DocumentRow>,
    counts: Vec<(&'static str, usize, &'static str)>,
}

struct DocumentRow {
    key: String,
    link: String,
    step: String,
    outcome: &'static str,
    badge: &'static str,
    summary: String,
    at: String,
    calls: u64,
    changes: u64,
}

pub async fn page(State(state): State<WebState>, Path(id): Path<String>) -> PageResult {
    let unknown = || PageError::NotFound(format!("There is no run {id}."));
    let id: i64 = id.trim().parse().map_err(|_| unknown())?;
    let store = &state.connector.store;
    let run = store.run(id).await?.ok_or_else(unknown)?;
    let calls = store.run_calls_by_document(id).await?;
    let by_class = store.run_calls_by_class(id).await?;
    let mut counts = [
        (Outcome::Ok, 0usize),
        (Outcome::Failed, 0),
        (Outcome::InProgress, 0),
    ];
    let documents: Vec<DocumentRow> = store
        .run_documents(id)
        .await?
        .into_iter()
        .map(|d| {
            let (outcome, summary) = view::outcome(&d.flow, &d.key, &d.step, &d.detail);
            if let Some(c) = counts.iter_mut().find(|(o, _)| *o == outcome) {
                c.1 += 1;
            }
            DocumentRow {
                link: view::document_link(&d.flow, &d.key),
                calls: calls.get(&Some(d.key.clone())).copied().unwrap_or(0),
                key: d.key,
                step: d.step,
                outcome: outcome.label(),
                badge: view::badge(outcome.label()),
                summary,
                at: view::time(d.at),
                changes: d.changes,
            }
        })
        .collect();
    let page = RunPage {
        version: view::VERSION,
        flow_name: run.flow.clone(),
        finished: run.finished_at.map(view::time).unwrap_or_default(),
        calls_link: format!("/calls?run={id}"),
        calls_by_class: by_class
            .into_iter()
            .map(|(c, n)| {
                let badge = view::badge(&c);
                (c, n, badge)
            })
            .collect(),
        own_calls: calls.get(&None).copied().unwrap_or(0),
        run: RunRow::new(&run, Utc::now()),
        documents,
        counts: counts
            .iter()
            .map(|(o, n)| (o.label(), *n, view::badge(o.label())))
            .collect(),
    };
    Ok(view::render(&page))
}
