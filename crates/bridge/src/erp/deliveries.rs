//! The ledger's record of what the `http` and `files` adapters delivered to an external ERP
//! (`erp_deliveries`) and where they stopped reading its feeds (`erp_cursors`). It lives in the
//! ledger database (`erp.url`) beside the payments received from the ERP.
//!
//! A delivery's states, in order: `staged` (the outbox file is written under its temporary
//! name, invisible to the ERP), `sent` (the ERP can see it, or its HTTP API took it), `answered`
//! (the ERP's answer is kept here: the result file that carried it can go). A state never goes
//! back; [`SqlErp::put_delivery`] refuses to.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::ErpError;
use super::sql::{SqlErp, unavailable};
use crate::db;

/// Where a delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DeliveryState {
    /// Written under its temporary name: the ERP cannot see it yet.
    Staged,
    /// The ERP has it.
    Sent,
    /// The ERP answered (`Delivery::answer`).
    Answered,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Staged => "staged",
            DeliveryState::Sent => "sent",
            DeliveryState::Answered => "answered",
        }
    }

    fn parse(s: &str) -> Option<DeliveryState> {
        match s {
            "staged" => Some(DeliveryState::Staged),
            "sent" => Some(DeliveryState::Sent),
            "answered" => Some(DeliveryState::Answered),
            _ => None,
        }
    }
}

/// One document delivered (or being delivered) to the ERP.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// `invoice:<coupa id>`, `cancel:<coupa id>`, `pay:<coupa payment id>`.
    pub document: String,
    /// What was delivered: Coupa's `updated-at` for a Coupa Pay payment; empty otherwise.
    pub version: String,
    pub state: DeliveryState,
    /// The outbox file's name (files adapter).
    pub file: Option<String>,
    /// The ERP's answer, canonical JSON (`PostOutcome` for invoices).
    pub answer: Option<String>,
    pub sent_at: Option<DateTime<Utc>>,
    pub answered_at: Option<DateTime<Utc>>,
}

impl Delivery {
    /// A new delivery of `document` in `state`.
    pub fn new(document: impl Into<String>, state: DeliveryState) -> Delivery {
        Delivery {
            document: document.into(),
            version: String::new(),
            state,
            file: None,
            answer: None,
            sent_at: None,
            answered_at: None,
        }
    }
}

const COLUMNS: &str = "document, version, state, file, answer, sent_at, answered_at";

fn read(row: &AnyRow) -> Result<Delivery, ErpError> {
    let bad = |what: &str| ErpError::Unavailable(format!("erp_deliveries: unreadable {what}"));
    let time = |col: &str| -> Result<Option<DateTime<Utc>>, ErpError> {
        let text: Option<String> = row.try_get(col).map_err(|_| bad(col))?;
        text.map(|t| db::parse_timestamp(&t).map_err(|_| bad(col)))
            .transpose()
    };
    let state: String = row.try_get("state").map_err(|_| bad("state"))?;
    Ok(Delivery {
        document: row.try_get("document").map_err(|_| bad("document"))?,
        version: row.try_get("version").map_err(|_| bad("version"))?,
        state: DeliveryState::parse(&state).ok_or_else(|| bad("state"))?,
        file: row.try_get("file").map_err(|_| bad("file"))?,
        answer: row.try_get("answer").map_err(|_| bad("answer"))?,
        sent_at: time("sent_at")?,
        answered_at: time("answered_at")?,
    })
}

impl SqlErp {
    /// The delivery of `document`, if any.
    pub async fn delivery(&self, document: &str) -> Result<Option<Delivery>, ErpError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM erp_deliveries WHERE document = $1"
        )))
        .bind(document)
        .fetch_optional(self.db().pool())
        .await
        .map_err(unavailable(format!("reading the delivery of {document}")))?;
        row.as_ref().map(read).transpose()
    }

    /// The deliveries of these documents, by document; those never delivered are absent.
    pub async fn deliveries(
        &self,
        documents: &[String],
    ) -> Result<HashMap<String, Delivery>, ErpError> {
        let mut out = HashMap::new();
        for chunk in db::row_chunks(documents, 256) {
            let sql = format!(
                "SELECT {COLUMNS} FROM erp_deliveries WHERE document IN ({})",
                db::placeholders(1, chunk.len())
            );
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for d in db::in_list(chunk) {
                q = q.bind(d);
            }
            let rows = q
                .fetch_all(self.db().pool())
                .await
                .map_err(unavailable("reading deliveries"))?;
            for row in &rows {
                let d = read(row)?;
                out.insert(d.document.clone(), d);
            }
        }
        Ok(out)
    }

    /// Records `d` (insert or replace), unless the ledger already holds the same document in a
    /// later state of the same version: a state never goes back. Returns the delivery as the
    /// ledger now holds it.
    pub async fn put_delivery(&self, d: &Delivery) -> Result<Delivery, ErpError> {
        let what = || format!("recording the delivery of {}", d.document);
        let mut tx = self.db().begin_write().await.map_err(unavailable(what()))?;
        let held = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM erp_deliveries WHERE document = $1"
        )))
        .bind(&d.document)
        .fetch_optional(tx.conn())
        .await
        .map_err(unavailable(what()))?;
        if let Some(row) = held {
            let held = read(&row)?;
            if held.version == d.version && held.state > d.state {
                tx.rollback().await.map_err(unavailable(what()))?;
                return Ok(held);
            }
        }
        let ts = |t: Option<DateTime<Utc>>| t.map(db::timestamp);
        sqlx::query(
            "INSERT INTO erp_deliveries \
             (document, version, state, file, answer, sent_at, answered_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (document) DO UPDATE SET version = excluded.version, \
             state = excluded.state, file = excluded.file, answer = excluded.answer, \
             sent_at = excluded.sent_at, answered_at = excluded.answered_at, \
             updated_at = excluded.updated_at",
        )
        .bind(&d.document)
        .bind(&d.version)
        .bind(d.state.as_str())
        .bind(d.file.as_deref())
        .bind(d.answer.as_deref())
        .bind(ts(d.sent_at))
        .bind(ts(d.answered_at))
        .bind(db::timestamp(db::now()))
        .execute(tx.conn())
        .await
        .map_err(unavailable(what()))?;
        tx.commit().await.map_err(unavailable(what()))?;
        Ok(d.clone())
    }

    /// The saved position of the feed `name`.
    pub async fn cursor(&self, name: &str) -> Result<Option<String>, ErpError> {
        let row = sqlx::query("SELECT value FROM erp_cursors WHERE name = $1")
            .bind(name)
            .fetch_optional(self.db().pool())
            .await
            .map_err(unavailable(format!("reading the cursor '{name}'")))?;
        row.map(|r| r.try_get::<String, _>("value"))
            .transpose()
            .map_err(unavailable(format!("reading the cursor '{name}'")))
    }

    /// Saves the position of the feed `name`.
    pub async fn set_cursor(&self, name: &str, value: &str) -> Result<(), ErpError> {
        let what = || format!("saving the cursor '{name}'");
        let mut tx = self.db().begin_write().await.map_err(unavailable(what()))?;
        sqlx::query(
            "INSERT INTO erp_cursors (name, value) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET value = excluded.value",
        )
        .bind(name)
        .bind(value)
        .execute(tx.conn())
        .await
        .map_err(unavailable(what()))?;
        tx.commit().await.map_err(unavailable(what()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn ledger() -> SqlErp {
        SqlErp::connect("sqlite::memory:")
            .await
            .expect("in-memory ledger")
    }

    #[tokio::test]
    async fn a_delivery_moves_forward_never_back() {
        let l = ledger().await;
        assert_eq!(l.delivery("invoice:1").await.expect("read"), None);
        let mut d = Delivery::new("invoice:1", DeliveryState::Staged);
        d.file = Some("invoice-1.json".into());
        l.put_delivery(&d).await.expect("staged");
        d.state = DeliveryState::Answered;
        d.answer = Some("{}".into());
        l.put_delivery(&d).await.expect("answered");
        // A late "sent" (a resumed attempt) does not undo the answer.
        let late = Delivery {
            state: DeliveryState::Sent,
            answer: None,
            ..d.clone()
        };
        let held = l.put_delivery(&late).await.expect("kept");
        assert_eq!(held.state, DeliveryState::Answered);
        let read = l.delivery("invoice:1").await.expect("read").expect("held");
        assert_eq!(read.answer.as_deref(), Some("{}"));
        // Another version starts over.
        let next = Delivery {
            version: "v2".into(),
            state: DeliveryState::Staged,
            answer: None,
            ..d
        };
        assert_eq!(
            l.put_delivery(&next).await.expect("new version").state,
            DeliveryState::Staged
        );
        let many = l
            .deliveries(&["invoice:1".into(), "invoice:2".into()])
            .await
            .expect("batch");
        assert_eq!(many.len(), 1);
        assert_eq!(many["invoice:1"].version, "v2");
    }

    #[tokio::test]
    async fn a_cursor_is_saved_and_replaced() {
        let l = ledger().await;
        assert_eq!(l.cursor("payments").await.expect("read"), None);
        l.set_cursor("payments", "10").await.expect("save");
        l.set_cursor("payments", "20").await.expect("save");
        assert_eq!(
            l.cursor("payments").await.expect("read").as_deref(),
            Some("20")
        );
    }
}
