//! The per-document journal: which step each document of a flow reached. One current row per
//! (flow, key) in `journal`; every change is also appended to `journal_history`, in the same
//! transaction, so the audit trail never misses a step the current row shows.

use std::collections::HashMap;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{JournalEntry, Store, StoreError};
use crate::db::{self, placeholders, timestamp};

/// Keys per `IN (...)` list: well under SQLite's and PostgreSQL's bind-parameter limits.
const KEYS_PER_QUERY: usize = 500;

impl Store {
    /// Sets the current step of document `key` of `flow`, and appends the change to the history.
    pub async fn journal_put(
        &self,
        flow: &str,
        key: &str,
        step: &str,
        detail: &str,
        run: Option<i64>,
    ) -> Result<(), StoreError> {
        let what = || format!("recording {flow} document '{key}' at step {step}");
        let at = timestamp(db::now());
        let mut tx = self
            .db
            .begin_write()
            .await
            .map_err(StoreError::query(what()))?;
        self.check_fence(tx.conn()).await?;
        sqlx::query(
            "INSERT INTO journal (flow, doc_key, step, detail, run_id, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (flow, doc_key) DO UPDATE SET step = excluded.step, \
             detail = excluded.detail, run_id = excluded.run_id, updated_at = excluded.updated_at",
        )
        .bind(flow)
        .bind(key)
        .bind(step)
        .bind(detail)
        .bind(run)
        .bind(&at)
        .execute(tx.conn())
        .await
        .map_err(StoreError::query(what()))?;
        sqlx::query(
            "INSERT INTO journal_history (flow, doc_key, step, detail, run_id, at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(flow)
        .bind(key)
        .bind(step)
        .bind(detail)
        .bind(run)
        .bind(&at)
        .execute(tx.conn())
        .await
        .map_err(StoreError::query(what()))?;
        tx.commit().await.map_err(StoreError::query(what()))
    }

    /// The current journal row of one document.
    pub async fn journal_get(
        &self,
        flow: &str,
        key: &str,
    ) -> Result<Option<JournalEntry>, StoreError> {
        let what = || format!("reading the journal of {flow} document '{key}'");
        let row = sqlx::query(
            "SELECT doc_key, step, detail, run_id, updated_at FROM journal \
             WHERE flow = $1 AND doc_key = $2",
        )
        .bind(flow)
        .bind(key)
        .fetch_optional(self.db.pool())
        .await
        .map_err(StoreError::query(what()))?;
        row.as_ref()
            .map(|r| read_entry(r, "updated_at").map(|(_, e)| e))
            .transpose()
    }

    /// The current journal rows of many documents, by key; keys without a row are absent.
    pub async fn journal_get_many(
        &self,
        flow: &str,
        keys: &[String],
    ) -> Result<HashMap<String, JournalEntry>, StoreError> {
        let mut found = HashMap::with_capacity(keys.len());
        for chunk in keys.chunks(KEYS_PER_QUERY) {
            let sql = format!(
                "SELECT doc_key, step, detail, run_id, updated_at FROM journal \
                 WHERE flow = $1 AND doc_key IN ({})",
                placeholders(2, chunk.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(flow);
            for key in chunk {
                query = query.bind(key.as_str());
            }
            let rows = query
                .fetch_all(self.db.pool())
                .await
                .map_err(StoreError::query(format!(
                    "reading the journal of {} {flow} documents",
                    chunk.len()
                )))?;
            for row in &rows {
                let (key, entry) = read_entry(row, "updated_at")?;
                found.insert(key, entry);
            }
        }
        Ok(found)
    }

    /// The documents of `flow` whose current step is one of `steps`, by key: the work a crashed
    /// or unfinished pass left (e.g. payment files not yet confirmed by Coupa).
    pub async fn journal_at_steps(
        &self,
        flow: &str,
        steps: &[&str],
    ) -> Result<Vec<(String, JournalEntry)>, StoreError> {
        if steps.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT doc_key, step, detail, run_id, updated_at FROM journal \
             WHERE flow = $1 AND step IN ({}) ORDER BY doc_key",
            placeholders(2, steps.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(flow);
        for step in steps {
            query = query.bind((*step).to_owned());
        }
        let rows = query
            .fetch_all(self.db.pool())
            .await
            .map_err(StoreError::query(format!(
                "reading the unfinished {flow} documents"
            )))?;
        rows.iter().map(|r| read_entry(r, "updated_at")).collect()
    }

    /// Up to `limit` documents of `flow` at one of `steps` whose detail contains
    /// `detail_contains` (every one when `None`), most recently changed first: the documents
    /// that need a person, for the dashboard.
    pub async fn journal_find(
        &self,
        flow: &str,
        steps: &[&str],
        detail_contains: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, JournalEntry)>, StoreError> {
        if steps.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        // Steps from $2, then the detail filter, then the limit.
        let n = steps.len();
        let (filter, limit_at) = match detail_contains {
            Some(_) => (format!("AND detail LIKE '%' || ${} || '%'", 2 + n), 3 + n),
            None => (String::new(), 2 + n),
        };
        let sql = format!(
            "SELECT doc_key, step, detail, run_id, updated_at FROM journal \
             WHERE flow = $1 AND step IN ({}) {filter} \
             ORDER BY updated_at DESC, doc_key LIMIT ${limit_at}",
            placeholders(2, n),
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(flow);
        for step in steps {
            query = query.bind((*step).to_owned());
        }
        if let Some(text) = detail_contains {
            query = query.bind(text.to_owned());
        }
        let rows = query
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(self.db.pool())
            .await
            .map_err(StoreError::query(format!("finding {flow} documents")))?;
        rows.iter().map(|r| read_entry(r, "updated_at")).collect()
    }

    /// Every recorded change of one document, oldest first (`updated_at` is when the change was
    /// made).
    pub async fn journal_history(
        &self,
        flow: &str,
        key: &str,
    ) -> Result<Vec<JournalEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT doc_key, step, detail, run_id, at FROM journal_history \
             WHERE flow = $1 AND doc_key = $2 ORDER BY id",
        )
        .bind(flow)
        .bind(key)
        .fetch_all(self.db.pool())
        .await
        .map_err(StoreError::query(format!(
            "reading the journal history of {flow} document '{key}'"
        )))?;
        rows.iter()
            .map(|r| read_entry(r, "at").map(|(_, e)| e))
            .collect()
    }
}

fn read_entry(row: &AnyRow, time_col: &str) -> Result<(String, JournalEntry), StoreError> {
    let key: String = row
        .try_get("doc_key")
        .map_err(StoreError::query("reading a journal row"))?;
    let what = || format!("reading the journal row of '{key}'");
    let at: String = row.try_get(time_col).map_err(StoreError::query(what()))?;
    let entry = JournalEntry {
        step: row.try_get("step").map_err(StoreError::query(what()))?,
        detail: row.try_get("detail").map_err(StoreError::query(what()))?,
        run: row.try_get("run_id").map_err(StoreError::query(what()))?,
        updated_at: db::parse_timestamp(&at).map_err(|e| StoreError::Corrupt {
            what: what(),
            detail: format!("{time_col} '{at}': {e}"),
        })?,
    };
    Ok((key, entry))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_overwrites_the_current_row_and_keeps_history() {
        let store = Store::connect("sqlite::memory:")
            .await
            .expect("in-memory store");
        assert_eq!(
            store.journal_get("invoices", "1042").await.expect("get"),
            None
        );
        store
            .journal_put("invoices", "1042", "posting", "", Some(1))
            .await
            .expect("put");
        store
            .journal_put("invoices", "1042", "posted", "ERP-000001", Some(1))
            .await
            .expect("put");
        let current = store
            .journal_get("invoices", "1042")
            .await
            .expect("get")
            .expect("present");
        assert_eq!(
            (current.step.as_str(), current.detail.as_str()),
            ("posted", "ERP-000001")
        );
        assert_eq!(current.run, Some(1));
        let steps: Vec<String> = store
            .journal_history("invoices", "1042")
            .await
            .expect("history")
            .into_iter()
            .map(|e| e.step)
            .collect();
        assert_eq!(steps, vec!["posting", "posted"]);
        // Another flow with the same key is another document.
        assert_eq!(
            store.journal_get("payments", "1042").await.expect("get"),
            None
        );
    }

    #[tokio::test]
    async fn get_many_spans_chunks() {
        let store = Store::connect("sqlite::memory:")
            .await
            .expect("in-memory store");
        for i in (0..1_200).step_by(3) {
            store
                .journal_put("invoices", &i.to_string(), "posted", "", None)
                .await
                .expect("put");
        }
        let keys: Vec<String> = (0..1_200).map(|i: i32| i.to_string()).collect();
        let found = store
            .journal_get_many("invoices", &keys)
            .await
            .expect("get many");
        assert_eq!(found.len(), 400);
        assert!(found.contains_key("1197") && !found.contains_key("1198"));
        assert!(
            store
                .journal_get_many("invoices", &[])
                .await
                .expect("empty")
                .is_empty()
        );
    }

    #[tokio::test]
    async fn at_steps_finds_unfinished_documents_of_one_flow() {
        let store = Store::connect("sqlite::memory:")
            .await
            .expect("in-memory store");
        for (flow, key, step) in [
            ("payments", "file:b", "uploaded"),
            ("payments", "file:a", "prepared"),
            ("payments", "file:c", "settled"),
            ("invoices", "file:d", "uploaded"),
        ] {
            store
                .journal_put(flow, key, step, "", None)
                .await
                .expect("put");
        }
        let found: Vec<String> = store
            .journal_at_steps("payments", &["prepared", "uploaded"])
            .await
            .expect("at steps")
            .into_iter()
            .map(|(k, e)| format!("{k}={}", e.step))
            .collect();
        assert_eq!(found, vec!["file:a=prepared", "file:b=uploaded"]);
        assert!(
            store
                .journal_at_steps("payments", &[])
                .await
                .expect("none")
                .is_empty()
        );
    }
}
