//! Runs: one row per pass of a flow, `running` from [`Store::start_run`] until
//! [`Store::finish_run`] records its outcome.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{RunOutcome, RunRecord, Store, StoreError};
use crate::db::{self, timestamp};

/// The statuses a finished run may have: `stopped` is a pass that ended early on a shutdown.
pub const FINAL_STATUSES: [&str; 4] = ["succeeded", "partial", "failed", "stopped"];

const COLUMNS: &str = "id, flow, started_at, finished_at, status, documents_ok, documents_failed, \
                       documents_skipped, api_calls, error, replica";

impl Store {
    /// Records the start of a run of `flow`; returns its id.
    pub async fn start_run(&self, flow: &str) -> Result<i64, StoreError> {
        let what = || format!("starting a run of {flow}");
        let mut tx = self
            .db
            .begin_write()
            .await
            .map_err(StoreError::query(what()))?;
        self.check_fence(tx.conn()).await?;
        let id: i64 = sqlx::query(
            "INSERT INTO runs (flow, started_at, status, replica) \
             VALUES ($1, $2, 'running', $3) RETURNING id",
        )
        .bind(flow)
        .bind(timestamp(db::now()))
        .bind(self.fence().map(|f| f.holder))
        .fetch_one(tx.conn())
        .await
        .and_then(|row| row.try_get("id"))
        .map_err(StoreError::query(what()))?;
        tx.commit().await.map_err(StoreError::query(what()))?;
        Ok(id)
    }

    /// Records how run `run` ended. Finishing a run twice overwrites the first outcome.
    pub async fn finish_run(&self, run: i64, outcome: &RunOutcome) -> Result<(), StoreError> {
        if !FINAL_STATUSES.contains(&outcome.status.as_str()) {
            return Err(StoreError::Invalid(format!(
                "finishing run {run}: status '{}' is not one of {}",
                outcome.status,
                FINAL_STATUSES.join(", ")
            )));
        }
        let what = || format!("finishing run {run}");
        let mut tx = self
            .db
            .begin_write()
            .await
            .map_err(StoreError::query(what()))?;
        let done = sqlx::query(
            "UPDATE runs SET finished_at = $1, status = $2, documents_ok = $3, \
             documents_failed = $4, documents_skipped = $5, api_calls = $6, error = $7 \
             WHERE id = $8",
        )
        .bind(timestamp(db::now()))
        .bind(&outcome.status)
        .bind(db::to_i64(outcome.documents_ok))
        .bind(db::to_i64(outcome.documents_failed))
        .bind(db::to_i64(outcome.documents_skipped))
        .bind(db::to_i64(outcome.api_calls))
        .bind(outcome.error.as_deref())
        .bind(run)
        .execute(tx.conn())
        .await
        .map_err(StoreError::query(what()))?;
        if done.rows_affected() == 0 {
            return Err(StoreError::UnknownRun(run));
        }
        tx.commit().await.map_err(StoreError::query(what()))
    }

    /// The latest `limit` runs of all flows, newest first.
    pub async fn runs(&self, limit: usize) -> Result<Vec<RunRecord>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM runs ORDER BY id DESC LIMIT $1"
        )))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(self.db.pool())
        .await
        .map_err(StoreError::query("listing runs"))?;
        rows.iter().map(read_run).collect()
    }

    /// One run by id.
    pub async fn run(&self, run: i64) -> Result<Option<RunRecord>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM runs WHERE id = $1"
        )))
        .bind(run)
        .fetch_optional(self.db.pool())
        .await
        .map_err(StoreError::query(format!("reading run {run}")))?;
        row.as_ref().map(read_run).transpose()
    }
}

fn read_run(row: &AnyRow) -> Result<RunRecord, StoreError> {
    let id: i64 = row
        .try_get("id")
        .map_err(StoreError::query("reading a run"))?;
    let what = || format!("reading run {id}");
    let get_text = |col: &str| -> Result<String, StoreError> {
        row.try_get(col).map_err(StoreError::query(what()))
    };
    let get_opt = |col: &str| -> Result<Option<String>, StoreError> {
        row.try_get(col).map_err(StoreError::query(what()))
    };
    let get_count = |col: &str| -> Result<u64, StoreError> {
        let v: i64 = row.try_get(col).map_err(StoreError::query(what()))?;
        db::to_u64(v).ok_or_else(|| StoreError::Corrupt {
            what: what(),
            detail: format!("{col} is {v}"),
        })
    };
    let time = |col: &str, s: &str| {
        db::parse_timestamp(s).map_err(|e| StoreError::Corrupt {
            what: what(),
            detail: format!("{col} '{s}': {e}"),
        })
    };
    let started_at = get_text("started_at")?;
    let finished_at = get_opt("finished_at")?;
    Ok(RunRecord {
        id,
        flow: get_text("flow")?,
        started_at: time("started_at", &started_at)?,
        finished_at: finished_at.map(|s| time("finished_at", &s)).transpose()?,
        status: get_text("status")?,
        documents_ok: get_count("documents_ok")?,
        documents_failed: get_count("documents_failed")?,
        documents_skipped: get_count("documents_skipped")?,
        api_calls: get_count("api_calls")?,
        error: get_opt("error")?,
        replica: get_opt("replica")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store() -> Store {
        Store::connect("sqlite::memory:")
            .await
            .expect("in-memory store")
    }

    #[tokio::test]
    async fn a_run_is_running_until_finished() {
        let store = store().await;
        let id = store.start_run("invoices").await.expect("start");
        let running = store.run(id).await.expect("read").expect("exists");
        assert_eq!(running.status, "running");
        assert_eq!(running.finished_at, None);

        let outcome = RunOutcome {
            status: "partial".into(),
            documents_ok: 3,
            documents_failed: 1,
            documents_skipped: 2,
            api_calls: 17,
            error: Some("1 invoice rejected".into()),
        };
        store.finish_run(id, &outcome).await.expect("finish");
        let done = store.run(id).await.expect("read").expect("exists");
        assert_eq!(done.status, "partial");
        assert_eq!(
            (
                done.documents_ok,
                done.documents_failed,
                done.documents_skipped,
                done.api_calls
            ),
            (3, 1, 2, 17)
        );
        assert_eq!(done.error.as_deref(), Some("1 invoice rejected"));
        let finished = done.finished_at.expect("finished_at set");
        assert!(finished >= done.started_at);
    }

    #[tokio::test]
    async fn bad_status_and_unknown_run_are_refused() {
        let store = store().await;
        let id = store.start_run("payments").await.expect("start");
        let bad = RunOutcome {
            status: "done".into(),
            ..RunOutcome::default()
        };
        let err = store.finish_run(id, &bad).await.expect_err("bad status");
        assert!(err.to_string().contains("'done'"), "{err}");
        let ok = RunOutcome {
            status: "succeeded".into(),
            ..RunOutcome::default()
        };
        let err = store.finish_run(id + 100, &ok).await.expect_err("no run");
        assert!(matches!(err, StoreError::UnknownRun(_)), "{err}");
    }
}
