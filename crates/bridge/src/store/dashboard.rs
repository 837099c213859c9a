//! Read-only queries for the dashboard: figures per hour for the charts, totals over a window,
//! each flow's latest runs and the documents one run touched.
//!
//! Timestamps are fixed-width RFC 3339 text (see [`crate::db::timestamp`]), so an hour is the
//! first 13 characters (`2026-11-21T06`) on SQLite and PostgreSQL alike, and a window is a plain
//! text comparison. Sums are cast to `BIGINT` because PostgreSQL sums `BIGINT` into `NUMERIC`,
//! which the `Any` driver cannot read.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use sqlx::Row;

use super::{RunRecord, Store, StoreError};
use crate::db::{self, timestamp};

/// Characters of a stored timestamp that name its hour: `2026-11-21T06`.
pub const HOUR_CHARS: usize = 13;

/// What the runs that started in one hour did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HourRuns {
    /// `2026-11-21T06`.
    pub hour: String,
    pub runs: u64,
    /// Runs that ended `failed` (stopped by credentials, an outage, the store).
    pub runs_failed: u64,
    pub documents_ok: u64,
    pub documents_failed: u64,
    pub documents_skipped: u64,
}

/// The Coupa calls made in one hour, by status class (`2xx`, `429`, ... as in
/// [`super::calls::STATUS_CLASSES`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HourCalls {
    pub hour: String,
    pub by_class: BTreeMap<String, u64>,
}

impl HourCalls {
    pub fn total(&self) -> u64 {
        self.by_class.values().sum()
    }

    pub fn class(&self, class: &str) -> u64 {
        self.by_class.get(class).copied().unwrap_or(0)
    }
}

/// Totals of the runs that started in a window.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunTotals {
    /// Runs by status (`running`, `succeeded`, `partial`, `failed`).
    pub runs_by_status: BTreeMap<String, u64>,
    pub documents_ok: u64,
    pub documents_failed: u64,
    pub documents_skipped: u64,
    pub api_calls: u64,
}

impl RunTotals {
    pub fn runs(&self) -> u64 {
        self.runs_by_status.values().sum()
    }
}

/// One document a run touched, as that run left it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunDocument {
    pub flow: String,
    /// The journal key: `invoice:1042`, `payment:77`, `file:payments-1.csv`.
    pub key: String,
    /// The last step the run recorded for it.
    pub step: String,
    pub detail: String,
    pub at: DateTime<Utc>,
    /// Journal changes the run made to it.
    pub changes: u64,
}

impl Store {
    /// The newest instant anything was recorded: a run started or a call made. `None` on an
    /// empty store.
    pub async fn latest_activity(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let what = "finding the latest activity";
        let row = sqlx::query(
            "SELECT (SELECT MAX(started_at) FROM runs) AS runs, \
             (SELECT MAX(at) FROM api_calls) AS calls",
        )
        .fetch_one(self.db.pool())
        .await
        .map_err(StoreError::query(what))?;
        let mut latest = None;
        for col in ["runs", "calls"] {
            let text: Option<String> = row.try_get(col).map_err(StoreError::query(what))?;
            if let Some(text) = text {
                let t = parse(what, col, &text)?;
                latest = latest.max(Some(t));
            }
        }
        Ok(latest)
    }

    /// Figures of the runs that started in `[from, to)`, per hour, oldest first; hours without
    /// a run are absent.
    pub async fn runs_by_hour(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<HourRuns>, StoreError> {
        let what = "counting runs per hour";
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT substr(started_at, 1, {HOUR_CHARS}) AS hour, COUNT(*) AS runs, \
             CAST(COALESCE(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0) AS BIGINT) \
             AS runs_failed, \
             CAST(COALESCE(SUM(documents_ok), 0) AS BIGINT) AS ok, \
             CAST(COALESCE(SUM(documents_failed), 0) AS BIGINT) AS failed, \
             CAST(COALESCE(SUM(documents_skipped), 0) AS BIGINT) AS skipped \
             FROM runs WHERE started_at >= $1 AND started_at < $2 \
             GROUP BY substr(started_at, 1, {HOUR_CHARS}) ORDER BY hour"
        )))
        .bind(timestamp(from))
        .bind(timestamp(to))
        .fetch_all(self.db.pool())
        .await
        .map_err(StoreError::query(what))?;
        rows.iter()
            .map(|row| {
                Ok(HourRuns {
                    hour: row.try_get("hour").map_err(StoreError::query(what))?,
                    runs: count(row, what, "runs")?,
                    runs_failed: count(row, what, "runs_failed")?,
                    documents_ok: count(row, what, "ok")?,
                    documents_failed: count(row, what, "failed")?,
                    documents_skipped: count(row, what, "skipped")?,
                })
            })
            .collect()
    }

    /// The calls made in `[from, to)`, per hour and status class, oldest first; hours without a
    /// call are absent.
    pub async fn calls_by_hour(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<HourCalls>, StoreError> {
        let what = "counting API calls per hour";
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT substr(at, 1, {HOUR_CHARS}) AS hour, status_class, COUNT(*) AS n \
             FROM api_calls WHERE at >= $1 AND at < $2 \
             GROUP BY substr(at, 1, {HOUR_CHARS}), status_class ORDER BY hour"
        )))
        .bind(timestamp(from))
        .bind(timestamp(to))
        .fetch_all(self.db.pool())
        .await
        .map_err(StoreError::query(what))?;
        let mut hours: Vec<HourCalls> = Vec::new();
        for row in &rows {
            let hour: String = row.try_get("hour").map_err(StoreError::query(what))?;
            let class: String = row
                .try_get("status_class")
                .map_err(StoreError::query(what))?;
            let n = count(row, what, "n")?;
            match hours.last_mut() {
                Some(last) if last.hour == hour => {
                    last.by_class.insert(class, n);
                }
                _ => hours.push(HourCalls {
                    hour,
                    by_class: BTreeMap::from([(class, n)]),
                }),
            }
        }
        Ok(hours)
    }

    /// Totals of the runs that started in `[from, to)`.
    pub async fn run_totals(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<RunTotals, StoreError> {
        let what = "totalling runs";
        let rows = sqlx::query(
            "SELECT status, COUNT(*) AS runs, \
             CAST(COALESCE(SUM(documents_ok), 0) AS BIGINT) AS ok, \
             CAST(COALESCE(SUM(documents_failed), 0) AS BIGINT) AS failed, \
             CAST(COALESCE(SUM(documents_skipped), 0) AS BIGINT) AS skipped, \
             CAST(COALESCE(SUM(api_calls), 0) AS BIGINT) AS calls \
             FROM runs WHERE started_at >= $1 AND started_at < $2 GROUP BY status",
        )
        .bind(timestamp(from))
        .bind(timestamp(to))
        .fetch_all(self.db.pool())
        .await
        .map_err(StoreError::query(what))?;
        let mut totals = RunTotals::default();
        for row in &rows {
            let status: String = row.try_get("status").map_err(StoreError::query(what))?;
            totals
                .runs_by_status
                .insert(status, count(row, what, "runs")?);
            totals.documents_ok += count(row, what, "ok")?;
            totals.documents_failed += count(row, what, "failed")?;
            totals.documents_skipped += count(row, what, "skipped")?;
            totals.api_calls += count(row, what, "calls")?;
        }
        Ok(totals)
    }

    /// The latest `limit` runs of `flow`, newest first.
    pub async fn flow_runs(&self, flow: &str, limit: usize) -> Result<Vec<RunRecord>, StoreError> {
        let ids = self
            .run_ids(
                "SELECT id FROM runs WHERE flow = $1 ORDER BY id DESC LIMIT $2",
                Some(flow),
                limit,
                &format!("listing the runs of {flow}"),
            )
            .await?;
        self.runs_by_id(ids).await
    }

    /// Runs not finished (yet): a pass in progress, or one a crash cut short. Oldest first.
    pub async fn unfinished_runs(&self, limit: usize) -> Result<Vec<RunRecord>, StoreError> {
        let ids = self
            .run_ids(
                "SELECT id FROM runs WHERE status = 'running' ORDER BY id LIMIT $1",
                None,
                limit,
                "listing unfinished runs",
            )
            .await?;
        self.runs_by_id(ids).await
    }

    /// The documents run `run` touched, each as the run left it (its last step in that run),
    /// in the order the run first touched them. The journal's bookkeeping rows (watermarks,
    /// the Coupa run in progress) have keys without a `:` and are not documents.
    pub async fn run_documents(&self, run: i64) -> Result<Vec<RunDocument>, StoreError> {
        let what = format!("listing the documents of run {run}");
        let rows = sqlx::query(
            "SELECT flow, doc_key, step, detail, at FROM journal_history \
             WHERE run_id = $1 AND doc_key LIKE '%:%' ORDER BY id",
        )
        .bind(run)
        .fetch_all(self.db.pool())
        .await
        .map_err(StoreError::query(what.clone()))?;
        let mut docs: Vec<RunDocument> = Vec::new();
        let mut index: BTreeMap<(String, String), usize> = BTreeMap::new();
        for row in &rows {
            let get = |col: &str| -> Result<String, StoreError> {
                row.try_get(col).map_err(StoreError::query(what.clone()))
            };
            let (flow, key) = (get("flow")?, get("doc_key")?);
            let at = parse(&what, "at", &get("at")?)?;
            let (step, detail) = (get("step")?, get("detail")?);
            match index.get(&(flow.clone(), key.clone())) {
                Some(&i) => {
                    let doc = &mut docs[i];
                    doc.step = step;
                    doc.detail = detail;
                    doc.at = at;
                    doc.changes += 1;
                }
                None => {
                    index.insert((flow.clone(), key.clone()), docs.len());
                    docs.push(RunDocument {
                        flow,
                        key,
                        step,
                        detail,
                        at,
                        changes: 1,
                    });
                }
            }
        }
        Ok(docs)
    }

    /// Calls run `run` made, by document (`None`: the run's own calls: listing, tokens).
    pub async fn run_calls_by_document(
        &self,
        run: i64,
    ) -> Result<BTreeMap<Option<String>, u64>, StoreError> {
        let what = format!("counting the calls of run {run}");
        let rows = sqlx::query(
            "SELECT document, COUNT(*) AS n FROM api_calls WHERE run_id = $1 GROUP BY document",
        )
        .bind(run)
        .fetch_all(self.db.pool())
        .await
        .map_err(StoreError::query(what.clone()))?;
        rows.iter()
            .map(|row| {
                let document: Option<String> = row
                    .try_get("document")
                    .map_err(StoreError::query(what.clone()))?;
                Ok((document, count(row, &what, "n")?))
            })
            .collect()
    }

    /// Calls run `run` made, by status class.
    pub async fn run_calls_by_class(&self, run: i64) -> Result<BTreeMap<String, u64>, StoreError> {
        let what = format!("counting the calls of run {run} by status");
        let rows = sqlx::query(
            "SELECT status_class, COUNT(*) AS n FROM api_calls WHERE run_id = $1 \
             GROUP BY status_class",
        )
        .bind(run)
        .fetch_all(self.db.pool())
        .await
        .map_err(StoreError::query(what.clone()))?;
        rows.iter()
            .map(|row| {
                let class: String = row
                    .try_get("status_class")
                    .map_err(StoreError::query(what.clone()))?;
                Ok((class, count(row, &what, "n")?))
            })
            .collect()
    }

    async fn run_ids(
        &self,
        sql: &'static str,
        flow: Option<&str>,
        limit: usize,
        what: &str,
    ) -> Result<Vec<i64>, StoreError> {
        let mut query = sqlx::query(sql);
        if let Some(flow) = flow {
            query = query.bind(flow.to_owned());
        }
        let rows = query
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(self.db.pool())
            .await
            .map_err(StoreError::query(what))?;
        rows.iter()
            .map(|r| r.try_get("id").map_err(StoreError::query(what)))
            .collect()
    }

    /// Reads each run through [`Store::run`], so a run reads the same everywhere; the lists
    /// here are a few rows long.
    async fn runs_by_id(&self, ids: Vec<i64>) -> Result<Vec<RunRecord>, StoreError> {
        let mut runs = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(run) = self.run(id).await? {
                runs.push(run);
            }
        }
        Ok(runs)
    }
}

fn count(row: &sqlx::any::AnyRow, what: &str, col: &str) -> Result<u64, StoreError> {
    let v: i64 = row.try_get(col).map_err(StoreError::query(what))?;
    db::to_u64(v).ok_or_else(|| StoreError::Corrupt {
        what: what.to_owned(),
        detail: format!("{col} is {v}"),
    })
}

fn parse(what: &str, col: &str, text: &str) -> Result<DateTime<Utc>, StoreError> {
    db::parse_timestamp(text).map_err(|e| StoreError::Corrupt {
        what: what.to_owned(),
        detail: format!("{col} '{text}': {e}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{CallRecord, RunOutcome};

    async fn store() -> Store {
        Store::connect("sqlite::memory:")
            .await
            .expect("in-memory store")
    }

    fn call(at: DateTime<Utc>, status: Option<u16>, run: i64) -> CallRecord {
        CallRecord {
            at: db::truncate_micros(at),
            flow: "invoices".into(),
            run: Some(run),
            document: Some("invoice:1".into()),
            method: "GET".into(),
            path: "/api/invoices".into(),
            status,
            duration_ms: 5,
            waited_ms: 0,
            attempt: 1,
            bytes_sent: 0,
            bytes_received: 10,
            error: None,
        }
    }

    #[tokio::test]
    async fn figures_per_hour_and_totals() {
        let store = store().await;
        assert_eq!(store.latest_activity().await.expect("latest"), None);
        let a = store.start_run("invoices").await.expect("start");
        store
            .finish_run(
                a,
                &RunOutcome {
                    status: "partial".into(),
                    documents_ok: 7,
                    documents_failed: 2,
                    documents_skipped: 1,
                    api_calls: 30,
                    error: None,
                },
            )
            .await
            .expect("finish");
        let b = store.start_run("payments").await.expect("start");
        let now = db::now();
        store
            .log_calls(&[
                call(now, Some(200), a),
                call(now, Some(429), a),
                call(now, Some(200), b),
                call(now - chrono::Duration::hours(3), None, b),
            ])
            .await
            .expect("log");
        let latest = store.latest_activity().await.expect("latest");
        assert!(latest.is_some_and(|t| t >= now - chrono::Duration::seconds(5)));

        let (from, to) = (
            now - chrono::Duration::hours(24),
            now + chrono::Duration::hours(1),
        );
        let hours = store.runs_by_hour(from, to).await.expect("runs per hour");
        let total_ok: u64 = hours.iter().map(|h| h.documents_ok).sum();
        let total_runs: u64 = hours.iter().map(|h| h.runs).sum();
        assert_eq!((total_ok, total_runs), (7, 2));
        assert!(hours.iter().all(|h| h.hour.len() == HOUR_CHARS));

        let calls = store.calls_by_hour(from, to).await.expect("calls per hour");
        let sum = |class: &str| calls.iter().map(|h| h.class(class)).sum::<u64>();
        assert_eq!((sum("2xx"), sum("429"), sum("error")), (2, 1, 1));
        assert!(calls.len() >= 2, "two distinct hours: {calls:?}");

        let totals = store.run_totals(from, to).await.expect("totals");
        assert_eq!(totals.runs(), 2);
        assert_eq!(totals.runs_by_status.get("running"), Some(&1));
        assert_eq!(
            (
                totals.documents_ok,
                totals.documents_failed,
                totals.documents_skipped,
                totals.api_calls
            ),
            (7, 2, 1, 30)
        );
        // A window without runs.
        let empty = store
            .run_totals(from - chrono::Duration::days(9), from)
            .await
            .expect("totals");
        assert_eq!(empty, RunTotals::default());

        let unfinished = store.unfinished_runs(10).await.expect("unfinished");
        assert_eq!(unfinished.iter().map(|r| r.id).collect::<Vec<_>>(), vec![b]);
        let runs = store.flow_runs("invoices", 5).await.expect("flow runs");
        assert_eq!(runs.iter().map(|r| r.id).collect::<Vec<_>>(), vec![a]);
        let by_class = store.run_calls_by_class(a).await.expect("by class");
        assert_eq!(by_class.get("429"), Some(&1));
        let by_doc = store.run_calls_by_document(b).await.expect("by document");
        assert_eq!(by_doc.get(&Some("invoice:1".to_owned())), Some(&2));
    }

    #[tokio::test]
    async fn a_runs_documents_are_its_last_steps_without_bookkeeping() {
        let store = store().await;
        let run = store.start_run("invoices").await.expect("start");
        let other = store.start_run("invoices").await.expect("start");
        for (key, step, r) in [
            ("invoice:1", "posted", run),
            ("invoice:2", "posted", run),
            ("invoice:1", "exported", run),
            ("watermark", "updated-at", run),
            ("invoice:2", "exported", other),
        ] {
            store
                .journal_put("invoices", key, step, "", Some(r))
                .await
                .expect("put");
        }
        let docs = store.run_documents(run).await.expect("documents");
        let got: Vec<(&str, &str, u64)> = docs
            .iter()
            .map(|d| (d.key.as_str(), d.step.as_str(), d.changes))
            .collect();
        assert_eq!(
            got,
            vec![("invoice:1", "exported", 2), ("invoice:2", "posted", 1)]
        );
    }
}
