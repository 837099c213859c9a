//! The connector's state store: what it has done and where each document stands, in SQLite or
//! PostgreSQL (chosen by URL, see [`crate::db`]).
//!
//! - [`runs`]: one row per pass of a flow (`started_at`, outcome, counts).
//! - [`journal`]: the per-document journal, one current row per (flow, document key) plus an
//!   append-only history for audit.
//! - [`calls`]: every Coupa API attempt (the seeds' "logging engine"), filtered and pruned here;
//!   [`call_log::CallLog`] feeds it from the client's observer without blocking requests.
//! - [`notifications`]: the notifier's incidents (one open per flow and kind) and every message
//!   it sent or failed to send.
//! - [`dashboard`]: the read-only aggregates the dashboard draws.
//! - [`leases`]: which replica runs a tenant's flows, and the fence a journal write checks.
//!
//! [`Store`] is `Clone`; clones share one connection pool, so tasks take their own copy.

pub mod call_log;
pub mod calls;
pub mod dashboard;
pub mod journal;
pub mod leases;
pub mod notifications;
pub mod runs;
mod schema;

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

use crate::db::{Db, DbError, Durability};

pub use call_log::{CallLog, CallLogHandle, CallLogStats};
pub use leases::{FLOWS_LEASE, Fence};

/// The state store. See the module doc.
#[derive(Clone, Debug)]
pub struct Store {
    db: Db,
    /// The lease this store writes under (see [`leases`]); shared by clones.
    fence: Arc<Mutex<Option<Fence>>>,
    /// Journal changes waiting for their group commit; shared by clones.
    journal_queue: Arc<journal::JournalQueue>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Connecting or migrating (boxed: it is large and rare).
    #[error("state store: {0}")]
    Db(Box<DbError>),
    /// `what` names the operation and its subject (`finishing run 42`).
    #[error("state store: {what}: {cause}")]
    Query { what: String, cause: sqlx::Error },
    /// A stored value that cannot be read back (edited by hand, or a bug).
    #[error("state store: {what}: bad stored value: {detail}")]
    Corrupt { what: String, detail: String },
    /// The caller passed something the store does not accept.
    #[error("state store: {0}")]
    Invalid(String),
    #[error("state store: run {0} does not exist")]
    UnknownRun(i64),
    /// This replica's lease changed holder: it must stop writing.
    #[error(
        "state store: lease '{lease}' was taken over ({now}; this replica had token {token}): \
         stopping here, the holder carries on"
    )]
    Fenced {
        lease: String,
        token: i64,
        now: String,
    },
}

impl From<DbError> for StoreError {
    fn from(e: DbError) -> Self {
        StoreError::Db(Box::new(e))
    }
}

impl StoreError {
    pub(crate) fn query(what: impl Into<String>) -> impl FnOnce(sqlx::Error) -> StoreError {
        let what = what.into();
        move |cause| StoreError::Query { what, cause }
    }
}

/// How a run ended: passed to [`Store::finish_run`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunOutcome {
    /// `succeeded`, `partial` or `failed`.
    pub status: String,
    pub documents_ok: u64,
    pub documents_failed: u64,
    pub documents_skipped: u64,
    pub api_calls: u64,
    pub error: Option<String>,
}

/// One run as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunRecord {
    pub id: i64,
    pub flow: String,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    /// `running` until finished, then the outcome's status.
    pub status: String,
    pub documents_ok: u64,
    pub documents_failed: u64,
    pub documents_skipped: u64,
    pub api_calls: u64,
    pub error: Option<String>,
    /// The `coupa-bridge run` replica that ran it (holding the tenant's lease); `None` for
    /// `sync` and the demo.
    pub replica: Option<String>,
}

/// The current journal row of one document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalEntry {
    pub step: String,
    /// Free text, e.g. the ERP document number or rejection reasons as JSON.
    pub detail: String,
    pub run: Option<i64>,
    pub updated_at: DateTime<Utc>,
}

/// One Coupa API attempt as logged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallRecord {
    /// When the attempt started. Stored to the microsecond.
    pub at: DateTime<Utc>,
    pub flow: String,
    pub run: Option<i64>,
    pub document: Option<String>,
    pub method: String,
    pub path: String,
    pub status: Option<u16>,
    pub duration_ms: u64,
    pub waited_ms: u64,
    pub attempt: u32,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    pub error: Option<String>,
}

/// Which calls [`Store::calls`] returns; every field set narrows the result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallFilter {
    pub flow: Option<String>,
    pub run: Option<i64>,
    pub document: Option<String>,
    /// `2xx`, `3xx`, `4xx`, `429`, `5xx` or `error` (no answer), as
    /// `coupa_api::observe::Attempt::status_class` names them. `4xx` excludes 429.
    pub status_class: Option<String>,
    /// Calls at or after this instant.
    pub since: Option<DateTime<Utc>>,
    pub limit: usize,
}

impl Default for CallFilter {
    fn default() -> Self {
        CallFilter {
            flow: None,
            run: None,
            document: None,
            status_class: None,
            since: None,
            limit: 100,
        }
    }
}

impl Store {
    /// Connects to `url` (`sqlite://...`, `postgres://...`) and brings the schema up to date.
    /// On SQLite, commits are durable against the process being killed, not against a power
    /// cut ([`Durability::ProcessCrash`]): every promise the journal keeps is about the
    /// connector's process, and what must survive more (the ERP's acceptance) is the ERP's.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        let db = Db::connect_with(url, Durability::ProcessCrash).await?;
        Store::open(db).await
    }

    /// Opens the store at `url` only when it exists at this version, creating and changing
    /// nothing: `None` when there is no store yet (no SQLite file, or no schema), an error when
    /// its schema is older or newer than this coupa-bridge's (a migration would change it).
    pub async fn connect_current(url: &str) -> Result<Option<Store>, StoreError> {
        if crate::db::sqlite_file(url).is_some_and(|path| !path.exists()) {
            return Ok(None);
        }
        let db = Db::connect_with(url, Durability::ProcessCrash).await?;
        let state = db
            .schema_state(schema::COMPONENT, schema::MIGRATIONS)
            .await
            .map_err(StoreError::query(
                "reading the state store's schema version",
            ))?;
        match state {
            crate::db::SchemaState::Current { .. } => Ok(Some(Store {
                db,
                fence: Arc::default(),
                journal_queue: Arc::default(),
            })),
            crate::db::SchemaState::Missing { .. } => {
                db.close().await;
                Ok(None)
            }
            other => {
                db.close().await;
                Err(StoreError::Invalid(format!(
                    "{}: {other}; a sync (not a dry run) brings it up to date",
                    crate::db::redact_url(url)
                )))
            }
        }
    }

    /// Uses an existing pool (e.g. shared with the ERP when both live in one database).
    pub async fn open(db: Db) -> Result<Store, StoreError> {
        db.migrate(schema::COMPONENT, schema::MIGRATIONS).await?;
        Ok(Store {
            db,
            fence: Arc::default(),
            journal_queue: Arc::default(),
        })
    }

    /// The underlying pool.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Whether the store takes a write: one journal row written and rolled back, so a store
    /// that opens but refuses writes (a read-only file or user) is found before a pass is.
    pub async fn probe_write(&self) -> Result<(), StoreError> {
        let what = "probing a write";
        let mut tx = self
            .db
            .begin_write()
            .await
            .map_err(StoreError::query(what))?;
        sqlx::query(
            "INSERT INTO journal (flow, doc_key, step, detail, run_id, updated_at) \
             VALUES ('doctor', 'probe', 'probe', '', NULL, $1)",
        )
        .bind(crate::db::timestamp(crate::db::now()))
        .execute(tx.conn())
        .await
        .map_err(StoreError::query(what))?;
        tx.rollback().await.map_err(StoreError::query(what))
    }
}
