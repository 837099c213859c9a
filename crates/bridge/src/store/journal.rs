//! The per-document journal: which step each document of a flow reached. One current row per
//! (flow, key) in `journal`; every change is also appended to `journal_history`, in the same
//! transaction, so the audit trail never misses a step the current row shows.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use sqlx::Row;
use sqlx::any::{Any, AnyArguments, AnyRow};
use sqlx::query::Query;
use tokio::sync::oneshot;

use super::{JournalEntry, Store, StoreError};
use crate::db::{self, placeholders, timestamp};

/// Keys per `IN (...)` list (a power of two: lists are padded to one, see [`db::in_list`]):
/// well under SQLite's and PostgreSQL's bind-parameter limits.
const KEYS_PER_QUERY: usize = 512;
/// Journal rows per `INSERT` (6 parameters each, a power of two: see [`db::row_chunks`]),
/// under both backends' parameter limits.
const PUTS_PER_STATEMENT: usize = 256;

/// One journal change, owned so that whichever caller leads the group commit can write it.
#[derive(Debug)]
struct Put {
    flow: String,
    key: String,
    step: String,
    detail: String,
    run: Option<i64>,
    at: String,
}

#[derive(Debug)]
struct Pending {
    id: u64,
    put: Put,
    done: oneshot::Sender<Result<(), StoreError>>,
}

/// The journal changes waiting for the next group commit (see [`Store::journal_put`]).
/// Shared by the clones of a store.
#[derive(Debug, Default)]
pub(crate) struct JournalQueue {
    pending: Mutex<Vec<Pending>>,
    /// Held by the caller (then its write task) writing a batch; the next holder takes all
    /// that queued meanwhile.
    leader: Arc<tokio::sync::Mutex<()>>,
    next_id: AtomicU64,
}

impl JournalQueue {
    fn push(&self, put: Put, done: oneshot::Sender<Result<(), StoreError>>) -> Queued<'_> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.lock().push(Pending { id, put, done });
        Queued { queue: self, id }
    }

    fn take_all(&self) -> Vec<Pending> {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Pending>> {
        // The list stays consistent whatever panicked while holding it.
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A queued put: dropped (its caller cancelled) before a leader took it, it is withdrawn, so a
/// cancelled put is never written later behind its caller's back.
struct Queued<'a> {
    queue: &'a JournalQueue,
    id: u64,
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.queue.lock().retain(|p| p.id != self.id);
    }
}

fn interrupted(flow: &str, key: &str, step: &str) -> StoreError {
    StoreError::Invalid(format!(
        "recording {flow} document '{key}' at step {step}: the write was interrupted \
         (its outcome is unknown)"
    ))
}

/// `($1, ..., $6), ($7, ..., $12), ...` for `rows` rows.
fn rows_of_six(rows: usize) -> String {
    (0..rows)
        .map(|i| format!("({})", placeholders(1 + i * 6, 6)))
        .collect::<Vec<_>>()
        .join(", ")
}

fn bind_puts<'q>(
    mut query: Query<'q, Any, AnyArguments>,
    puts: &'q [&Put],
) -> Query<'q, Any, AnyArguments> {
    for p in puts {
        query = query
            .bind(p.flow.as_str())
            .bind(p.key.as_str())
            .bind(p.step.as_str())
            .bind(p.detail.as_str())
            .bind(p.run)
            .bind(p.at.as_str());
    }
    query
}

impl Store {
    /// Sets the current step of document `key` of `flow`, and appends the change to the history.
    /// Returns once the change is committed.
    ///
    /// Puts made while another is being written are committed together, in one transaction
    /// (group commit): a pass with many documents in flight pays one commit (and, on SQLite, one
    /// `fsync`) for all the steps that were ready, instead of one each. Each caller still returns
    /// only after its own step is durable, so the journal-before-effect order is unchanged.
    pub async fn journal_put(
        &self,
        flow: &str,
        key: &str,
        step: &str,
        detail: &str,
        run: Option<i64>,
    ) -> Result<(), StoreError> {
        let put = Put {
            flow: flow.to_owned(),
            key: key.to_owned(),
            step: step.to_owned(),
            detail: detail.to_owned(),
            run,
            at: timestamp(db::now()),
        };
        let queue = &self.journal_queue;
        let (done, mut answer) = oneshot::channel();
        let queued = queue.push(put, done);
        let leader = Arc::clone(&queue.leader).lock_owned().await;
        match answer.try_recv() {
            // An earlier leader wrote it while this one waited for its turn.
            Ok(result) => return result,
            Err(oneshot::error::TryRecvError::Closed) => return Err(interrupted(flow, key, step)),
            Err(oneshot::error::TryRecvError::Empty) => {}
        }
        let batch = queue.take_all();
        // From here the batch is written whatever becomes of this caller: the write runs as its
        // own task, holding the leader lock, so a caller dropped mid-write (a pass cancelled)
        // neither loses the others' steps nor leaves them not knowing whether they were written.
        drop(queued);
        let store = self.clone();
        tokio::spawn(async move {
            let _leader = leader;
            store.write_batch(batch).await;
        });
        answer
            .await
            .unwrap_or_else(|_| Err(interrupted(flow, key, step)))
    }

    /// Writes a batch of puts in one transaction and answers each; if the transaction fails,
    /// each put is tried on its own so that each caller gets its own answer.
    async fn write_batch(&self, batch: Vec<Pending>) {
        if batch.is_empty() {
            return;
        }
        let puts: Vec<&Put> = batch.iter().map(|p| &p.put).collect();
        if batch.len() > 1 && self.write_puts(&puts).await.is_ok() {
            for p in batch {
                let _ = p.done.send(Ok(()));
            }
            return;
        }
        for p in batch {
            let result = self.write_puts(&[&p.put]).await;
            let _ = p.done.send(result);
        }
    }

    /// One transaction: the fence checked, the current rows set (the last put of a document
    /// wins, as if the puts had been made one after another), every put appended to the history.
    async fn write_puts(&self, puts: &[&Put]) -> Result<(), StoreError> {
        let what = || match puts {
            [p] => format!(
                "recording {} document '{}' at step {}",
                p.flow, p.key, p.step
            ),
            _ => format!("recording {} journal steps", puts.len()),
        };
        let mut tx = self
            .db
            .begin_write()
            .await
            .map_err(StoreError::query(what()))?;
        self.check_fence(tx.conn()).await?;
        // PostgreSQL refuses an upsert touching one row twice: only each document's last put.
        let mut last: Vec<&Put> = Vec::with_capacity(puts.len());
        for (i, p) in puts.iter().enumerate() {
            if !puts[i + 1..]
                .iter()
                .any(|q| q.flow == p.flow && q.key == p.key)
            {
                last.push(p);
            }
        }
        for chunk in db::row_chunks(&last, PUTS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO journal (flow, doc_key, step, detail, run_id, updated_at) \
                 VALUES {} \
                 ON CONFLICT (flow, doc_key) DO UPDATE SET step = excluded.step, \
                 detail = excluded.detail, run_id = excluded.run_id, \
                 updated_at = excluded.updated_at",
                rows_of_six(chunk.len())
            );
            bind_puts(sqlx::query(sqlx::AssertSqlSafe(sql)), chunk)
                .execute(tx.conn())
                .await
                .map_err(StoreError::query(what()))?;
        }
        for chunk in db::row_chunks(puts, PUTS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO journal_history (flow, doc_key, step, detail, run_id, at) VALUES {}",
                rows_of_six(chunk.len())
            );
            bind_puts(sqlx::query(sqlx::AssertSqlSafe(sql)), chunk)
                .execute(tx.conn())
                .await
                .map_err(StoreError::query(what()))?;
        }
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
            let chunk = db::in_list(chunk);
            let sql = format!(
                "SELECT doc_key, step, detail, run_id, updated_at FROM journal \
                 WHERE flow = $1 AND doc_key IN ({})",
                placeholders(2, chunk.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(flow);
            for key in &chunk {
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

    /// A file store: several connections, as in production (`sqlite::memory:` has one).
    async fn file_store(dir: &tempfile::TempDir) -> Store {
        Store::connect(&format!(
            "sqlite://{}",
            dir.path().join("state.db").display()
        ))
        .await
        .expect("file store")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_puts_are_all_committed_with_their_history_in_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = file_store(&dir).await;
        let steps = ["posted", "recording", "recorded", "exported"];
        let tasks: Vec<_> = (0..40)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    for step in steps {
                        store
                            .journal_put("invoices", &format!("invoice:{i}"), step, "", Some(i))
                            .await
                            .expect("put");
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("task");
        }
        let keys: Vec<String> = (0..40).map(|i| format!("invoice:{i}")).collect();
        let current = store
            .journal_get_many("invoices", &keys)
            .await
            .expect("get");
        assert_eq!(current.len(), 40);
        assert!(current.values().all(|e| e.step == "exported"));
        for key in &keys {
            let history: Vec<String> = store
                .journal_history("invoices", key)
                .await
                .expect("history")
                .into_iter()
                .map(|e| e.step)
                .collect();
            assert_eq!(history, steps, "{key}");
        }
    }

    #[tokio::test]
    async fn the_last_put_of_a_document_in_a_batch_wins() {
        let store = Store::connect("sqlite::memory:").await.expect("store");
        let put = |step: &str, detail: &str| Put {
            flow: "invoices".into(),
            key: "invoice:1".into(),
            step: step.into(),
            detail: detail.into(),
            run: None,
            at: timestamp(db::now()),
        };
        let (a, b, c) = (
            put("posted", "1"),
            put("recording", "2"),
            put("recorded", "3"),
        );
        store.write_puts(&[&a, &b, &c]).await.expect("batch");
        let entry = store
            .journal_get("invoices", "invoice:1")
            .await
            .expect("get")
            .expect("entry");
        assert_eq!(
            (entry.step.as_str(), entry.detail.as_str()),
            ("recorded", "3")
        );
        assert_eq!(
            store
                .journal_history("invoices", "invoice:1")
                .await
                .expect("history")
                .len(),
            3
        );
    }

    #[tokio::test]
    async fn a_put_cancelled_while_queued_is_never_written() {
        let store = Store::connect("sqlite::memory:").await.expect("store");
        // Another write in progress: the put queues behind it.
        let leader = Arc::clone(&store.journal_queue.leader).lock_owned().await;
        {
            let put = store.journal_put("invoices", "invoice:1", "posted", "", None);
            let mut put = std::pin::pin!(put);
            assert!(futures_util::poll!(put.as_mut()).is_pending());
            assert_eq!(store.journal_queue.lock().len(), 1, "queued");
        }
        assert!(
            store.journal_queue.lock().is_empty(),
            "withdrawn when dropped"
        );
        drop(leader);
        store
            .journal_put("invoices", "invoice:2", "posted", "", None)
            .await
            .expect("put");
        assert_eq!(
            store
                .journal_get("invoices", "invoice:1")
                .await
                .expect("get"),
            None
        );
        assert!(
            store
                .journal_get("invoices", "invoice:2")
                .await
                .expect("get")
                .is_some()
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_fenced_batch_writes_nothing_and_fails_every_caller() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = file_store(&dir).await;
        store.set_fence(Some(super::super::Fence {
            lease: "flows".into(),
            holder: "replica-a".into(),
            token: 7,
            term: std::time::Duration::from_secs(10),
        }));
        let tasks: Vec<_> = (0..10)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .journal_put("invoices", &format!("invoice:{i}"), "posted", "", None)
                        .await
                })
            })
            .collect();
        for t in tasks {
            let e = t.await.expect("task").expect_err("no lease, no write");
            assert!(matches!(e, StoreError::Fenced { .. }), "{e}");
        }
        store.set_fence(None);
        let keys: Vec<String> = (0..10).map(|i| format!("invoice:{i}")).collect();
        assert!(
            store
                .journal_get_many("invoices", &keys)
                .await
                .expect("get")
                .is_empty()
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
