//! The API call log: every Coupa attempt, written in batches (one transaction per batch),
//! filtered for the dashboard and the CLI, pruned by age.

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{CallFilter, CallRecord, Store, StoreError};
use crate::db::{self, placeholders, timestamp};

/// The status classes a call is filed under (`coupa_api::observe::Attempt::status_class`).
pub const STATUS_CLASSES: [&str; 6] = ["2xx", "3xx", "4xx", "429", "5xx", "error"];

/// Rows per `INSERT` (a power of two, see [`db::row_chunks`]): 14 parameters each, well under
/// both backends' bind limits.
const ROWS_PER_INSERT: usize = 128;
const COLUMNS: &str = "at, flow, run_id, document, method, path, status, status_class, \
                       duration_ms, waited_ms, attempt, bytes_sent, bytes_received, error";
const COLUMN_COUNT: usize = 14;

/// The class of an HTTP status, or `error` when no answer came.
pub fn status_class(status: Option<u16>) -> &'static str {
    match status {
        Some(200..=299) => "2xx",
        Some(300..=399) => "3xx",
        Some(429) => "429",
        Some(400..=499) => "4xx",
        Some(_) => "5xx",
        None => "error",
    }
}

impl Store {
    /// Appends `calls` in one transaction.
    pub async fn log_calls(&self, calls: &[CallRecord]) -> Result<(), StoreError> {
        if calls.is_empty() {
            return Ok(());
        }
        let what = || format!("logging {} API calls", calls.len());
        let mut tx = self
            .db
            .begin_write()
            .await
            .map_err(StoreError::query(what()))?;
        for chunk in db::row_chunks(calls, ROWS_PER_INSERT) {
            let rows: Vec<String> = (0..chunk.len())
                .map(|i| format!("({})", placeholders(1 + i * COLUMN_COUNT, COLUMN_COUNT)))
                .collect();
            let sql = format!(
                "INSERT INTO api_calls ({COLUMNS}) VALUES {}",
                rows.join(", ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for c in chunk {
                query = query
                    .bind(timestamp(c.at))
                    .bind(c.flow.as_str())
                    .bind(c.run)
                    .bind(c.document.as_deref())
                    .bind(c.method.as_str())
                    .bind(c.path.as_str())
                    .bind(c.status.map(i64::from))
                    .bind(status_class(c.status))
                    .bind(db::to_i64(c.duration_ms))
                    .bind(db::to_i64(c.waited_ms))
                    .bind(i64::from(c.attempt))
                    .bind(db::to_i64(c.bytes_sent))
                    .bind(db::to_i64(c.bytes_received))
                    .bind(c.error.as_deref());
            }
            query
                .execute(tx.conn())
                .await
                .map_err(StoreError::query(what()))?;
        }
        tx.commit().await.map_err(StoreError::query(what()))
    }

    /// The calls matching `filter`, newest first, at most `filter.limit`.
    pub async fn calls(&self, filter: &CallFilter) -> Result<Vec<CallRecord>, StoreError> {
        if let Some(class) = &filter.status_class
            && !STATUS_CLASSES.contains(&class.as_str())
        {
            return Err(StoreError::Invalid(format!(
                "status class '{class}' is not one of {}",
                STATUS_CLASSES.join(", ")
            )));
        }
        let mut conditions = Vec::new();
        let mut n = 0;
        let mut next = |cond: &str| {
            n += 1;
            conditions.push(cond.replace('?', &format!("${n}")));
        };
        if filter.flow.is_some() {
            next("flow = ?");
        }
        if filter.run.is_some() {
            next("run_id = ?");
        }
        if filter.document.is_some() {
            next("document = ?");
        }
        if filter.status_class.is_some() {
            next("status_class = ?");
        }
        if filter.since.is_some() {
            next("at >= ?");
        }
        let where_clause = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let sql = format!(
            "SELECT id, {COLUMNS} FROM api_calls {where_clause} ORDER BY at DESC, id DESC LIMIT ${}",
            conditions.len() + 1
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        if let Some(flow) = &filter.flow {
            query = query.bind(flow.as_str());
        }
        if let Some(run) = filter.run {
            query = query.bind(run);
        }
        if let Some(document) = &filter.document {
            query = query.bind(document.as_str());
        }
        if let Some(class) = &filter.status_class {
            query = query.bind(class.as_str());
        }
        if let Some(since) = filter.since {
            query = query.bind(timestamp(since));
        }
        let rows = query
            .bind(i64::try_from(filter.limit).unwrap_or(i64::MAX))
            .fetch_all(self.db.pool())
            .await
            .map_err(StoreError::query("listing API calls"))?;
        rows.iter().map(read_call).collect()
    }

    /// Deletes the calls that started before `older_than`; returns how many.
    pub async fn prune_calls(&self, older_than: DateTime<Utc>) -> Result<u64, StoreError> {
        let what = || format!("pruning API calls before {}", timestamp(older_than));
        let mut tx = self
            .db
            .begin_write()
            .await
            .map_err(StoreError::query(what()))?;
        let done = sqlx::query("DELETE FROM api_calls WHERE at < $1")
            .bind(timestamp(older_than))
            .execute(tx.conn())
            .await
            .map_err(StoreError::query(what()))?;
        tx.commit().await.map_err(StoreError::query(what()))?;
        Ok(done.rows_affected())
    }
}

fn read_call(row: &AnyRow) -> Result<CallRecord, StoreError> {
    let id: i64 = row
        .try_get("id")
        .map_err(StoreError::query("reading a logged call"))?;
    let what = || format!("reading logged call {id}");
    let corrupt = |detail: String| StoreError::Corrupt {
        what: what(),
        detail,
    };
    let int = |col: &str| -> Result<i64, StoreError> {
        row.try_get(col).map_err(StoreError::query(what()))
    };
    let count = |col: &str| -> Result<u64, StoreError> {
        let v = int(col)?;
        db::to_u64(v).ok_or_else(|| corrupt(format!("{col} is {v}")))
    };
    let at: String = row.try_get("at").map_err(StoreError::query(what()))?;
    let status: Option<i64> = row.try_get("status").map_err(StoreError::query(what()))?;
    let attempt = int("attempt")?;
    Ok(CallRecord {
        at: db::parse_timestamp(&at).map_err(|e| corrupt(format!("at '{at}': {e}")))?,
        flow: row.try_get("flow").map_err(StoreError::query(what()))?,
        run: row.try_get("run_id").map_err(StoreError::query(what()))?,
        document: row.try_get("document").map_err(StoreError::query(what()))?,
        method: row.try_get("method").map_err(StoreError::query(what()))?,
        path: row.try_get("path").map_err(StoreError::query(what()))?,
        status: status
            .map(|s| u16::try_from(s).map_err(|_| corrupt(format!("status is {s}"))))
            .transpose()?,
        duration_ms: count("duration_ms")?,
        waited_ms: count("waited_ms")?,
        attempt: u32::try_from(attempt).map_err(|_| corrupt(format!("attempt is {attempt}")))?,
        bytes_sent: count("bytes_sent")?,
        bytes_received: count("bytes_received")?,
        error: row.try_get("error").map_err(StoreError::query(what()))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_match_the_client() {
        assert_eq!(status_class(Some(200)), "2xx");
        assert_eq!(status_class(Some(304)), "3xx");
        assert_eq!(status_class(Some(404)), "4xx");
        assert_eq!(status_class(Some(429)), "429");
        assert_eq!(status_class(Some(503)), "5xx");
        assert_eq!(status_class(None), "error");
        for class in [status_class(Some(201)), status_class(None)] {
            assert!(STATUS_CLASSES.contains(&class));
        }
    }

    fn call(at: DateTime<Utc>, status: Option<u16>) -> CallRecord {
        CallRecord {
            at: db::truncate_micros(at),
            flow: "invoices".into(),
            run: Some(7),
            document: Some("invoice 1042".into()),
            method: "GET".into(),
            path: "/api/invoices?exported=false".into(),
            status,
            duration_ms: 12,
            waited_ms: 3,
            attempt: 1,
            bytes_sent: 0,
            bytes_received: 5_120,
            error: None,
        }
    }

    #[tokio::test]
    async fn calls_round_trip_newest_first_and_prune() {
        let store = Store::connect("sqlite::memory:")
            .await
            .expect("in-memory store");
        let now = db::now();
        let old = call(now - chrono::Duration::days(40), Some(200));
        let new = call(now, Some(429));
        store
            .log_calls(&[old.clone(), new.clone()])
            .await
            .expect("log");
        let all = store.calls(&CallFilter::default()).await.expect("list");
        assert_eq!(all, vec![new.clone(), old]);
        let removed = store
            .prune_calls(now - chrono::Duration::days(30))
            .await
            .expect("prune");
        assert_eq!(removed, 1);
        assert_eq!(
            store.calls(&CallFilter::default()).await.expect("list"),
            vec![new]
        );
        let err = store
            .calls(&CallFilter {
                status_class: Some("oops".into()),
                ..CallFilter::default()
            })
            .await
            .expect_err("bad class");
        assert!(err.to_string().contains("'oops'"), "{err}");
    }
}
