//! What the notifier remembers between passes and processes: open and closed incidents (one
//! outage of one kind in one flow), every send attempt, and the rejections already reported.
//!
//! Deciding whether a message is due and recording that it is due happen in one write
//! transaction (or one conditional `UPDATE`), so a cron `sync` and the daemon noticing the same
//! outage send one message between them, and a restart does not send it again. A message is
//! marked due *before* it is sent: a channel that is down is recorded as failed and the incident
//! moves on, rather than the message being resent every pass.

use std::collections::HashSet;

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError};
use crate::db::{self, placeholders, timestamp};

/// One outage of one kind (`pass-failed`, `documents-waiting`) in one flow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncidentRecord {
    pub id: i64,
    pub flow: String,
    pub kind: String,
    pub opened_at: DateTime<Utc>,
    /// The latest pass that had the problem.
    pub last_seen_at: DateTime<Utc>,
    /// The latest message about it (problem or reminder); `None` while no channel is configured.
    pub last_sent_at: Option<DateTime<Utc>>,
    /// Failed passes (`pass-failed`) or documents left for a later pass, summed over passes
    /// (`documents-waiting`).
    pub count: u64,
    /// The latest error text or reason.
    pub detail: String,
    pub closed_at: Option<DateTime<Utc>>,
}

/// One attempt to send one message on one channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotificationRecord {
    pub id: i64,
    pub at: DateTime<Utc>,
    /// `email` or `webhook`.
    pub channel: String,
    pub flow: String,
    /// `problem`, `reminder`, `recovered` or `rejected`.
    pub kind: String,
    pub subject: String,
    /// `sent` or `failed`.
    pub status: String,
    pub error: Option<String>,
}

/// A send attempt to record with [`Store::record_notification`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewNotification {
    pub at: DateTime<Utc>,
    pub channel: String,
    pub flow: String,
    pub kind: String,
    pub subject: String,
    /// `None`: sent; `Some(why)`: failed.
    pub error: Option<String>,
    pub incident: Option<i64>,
}

/// A problem one pass had, for [`Store::incident_seen`].
#[derive(Clone, Copy, Debug)]
pub struct Sighting<'a> {
    pub flow: &'a str,
    /// `pass-failed` or `documents-waiting`.
    pub kind: &'a str,
    /// What to add to the incident's count.
    pub count: u64,
    pub detail: &'a str,
    pub at: DateTime<Utc>,
}

/// What [`Store::incident_seen`] did with a problem a pass had.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IncidentStep {
    /// No incident of this key was open: this one is new and its first message is due.
    Opened(IncidentRecord),
    /// Still open and a reminder is due (already marked sent at `now`).
    Reminder(IncidentRecord),
    /// Still open; nothing to send yet.
    Ongoing(IncidentRecord),
}

impl IncidentStep {
    pub fn incident(&self) -> &IncidentRecord {
        match self {
            IncidentStep::Opened(i) | IncidentStep::Reminder(i) | IncidentStep::Ongoing(i) => i,
        }
    }
}

/// How many incidents an observation may race against before giving up: the only loop is the
/// partial unique index turning a concurrent open into a join.
const OPEN_ATTEMPTS: usize = 3;
const INCIDENT_COLUMNS: &str =
    "id, flow, kind, opened_at, last_seen_at, last_sent_at, count, detail, closed_at";
const NOTIFICATION_COLUMNS: &str = "id, at, channel, flow, kind, subject, status, error";
/// Rows per `INSERT` of reported rejections: 5 parameters each.
const REJECTIONS_PER_INSERT: usize = 200;

/// Whether a reminder is due for `incident` at `now`: `every` since its latest message (or since
/// it opened, when nothing was sent yet). A zero interval never reminds.
pub fn reminder_due(incident: &IncidentRecord, now: DateTime<Utc>, every: Duration) -> bool {
    if every <= Duration::zero() {
        return false;
    }
    let since = incident.last_sent_at.unwrap_or(incident.opened_at);
    now - since >= every
}

impl Store {
    /// The incidents not closed yet, oldest first.
    pub async fn open_incidents(&self) -> Result<Vec<IncidentRecord>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {INCIDENT_COLUMNS} FROM notify_incidents WHERE closed_at IS NULL \
             ORDER BY opened_at, id"
        )))
        .fetch_all(self.db.pool())
        .await
        .map_err(StoreError::query("listing open incidents"))?;
        rows.iter().map(read_incident).collect()
    }

    /// The latest `limit` incidents, open or closed, newest first.
    pub async fn incidents(&self, limit: usize) -> Result<Vec<IncidentRecord>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {INCIDENT_COLUMNS} FROM notify_incidents ORDER BY id DESC LIMIT $1"
        )))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(self.db.pool())
        .await
        .map_err(StoreError::query("listing incidents"))?;
        rows.iter().map(read_incident).collect()
    }

    /// The open incident of (`flow`, `kind`), if any.
    pub async fn open_incident(
        &self,
        flow: &str,
        kind: &str,
    ) -> Result<Option<IncidentRecord>, StoreError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {INCIDENT_COLUMNS} FROM notify_incidents \
             WHERE flow = $1 AND kind = $2 AND closed_at IS NULL"
        )))
        .bind(flow)
        .bind(kind)
        .fetch_optional(self.db.pool())
        .await
        .map_err(StoreError::query(format!(
            "reading the open {kind} incident of {flow}"
        )))?;
        row.as_ref().map(read_incident).transpose()
    }

    /// Records that a pass had a problem: opens an incident (count `seen.count`) when none of
    /// its (flow, kind) is open, else adds `seen.count` to the open one and takes `seen.detail`
    /// as its latest. When `sending` (some channel is configured), the message the step calls
    /// for is marked sent at `seen.at` here, so exactly one caller gets
    /// [`IncidentStep::Opened`] or [`IncidentStep::Reminder`] for it.
    pub async fn incident_seen(
        &self,
        seen: &Sighting<'_>,
        remind_every: Duration,
        sending: bool,
    ) -> Result<IncidentStep, StoreError> {
        let Sighting {
            flow,
            kind,
            count,
            detail,
            ..
        } = *seen;
        let now = db::truncate_micros(seen.at);
        let what = || format!("recording a {kind} incident of {flow}");
        for _ in 0..OPEN_ATTEMPTS {
            if let Some(open) = self.open_incident(flow, kind).await? {
                let seen = Sighting { at: now, ..*seen };
                if let Some(step) = self
                    .incident_again(&open, &seen, remind_every, sending)
                    .await?
                {
                    return Ok(step);
                }
                // Closed meanwhile by another process's good pass: open a new one.
                continue;
            }
            let mut tx = self
                .db
                .begin_write()
                .await
                .map_err(StoreError::query(what()))?;
            let sent = sending.then(|| timestamp(now));
            let inserted = sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO notify_incidents \
                 (flow, kind, opened_at, last_seen_at, last_sent_at, count, detail) \
                 VALUES ($1, $2, $3, $3, $4, $5, $6) RETURNING {INCIDENT_COLUMNS}"
            )))
            .bind(flow)
            .bind(kind)
            .bind(timestamp(now))
            .bind(sent)
            .bind(db::to_i64(count))
            .bind(detail)
            .fetch_one(tx.conn())
            .await;
            match inserted {
                Ok(row) => {
                    let incident = read_incident(&row)?;
                    tx.commit().await.map_err(StoreError::query(what()))?;
                    return Ok(IncidentStep::Opened(incident));
                }
                // Another process opened it between our read and our insert: join it.
                Err(e) if db::is_unique_violation(&e) => {
                    tx.rollback().await.map_err(StoreError::query(what()))?;
                }
                Err(e) => return Err(StoreError::query(what())(e)),
            }
        }
        Err(StoreError::Invalid(format!(
            "{}: the open incident kept changing under us",
            what()
        )))
    }

    /// `None` when `open` was closed meanwhile.
    async fn incident_again(
        &self,
        open: &IncidentRecord,
        seen: &Sighting<'_>,
        remind_every: Duration,
        sending: bool,
    ) -> Result<Option<IncidentStep>, StoreError> {
        let id = open.id;
        let now = seen.at;
        let what = || format!("updating incident {id}");
        let mut tx = self
            .db
            .begin_write()
            .await
            .map_err(StoreError::query(what()))?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE notify_incidents SET count = count + $1, detail = $2, last_seen_at = $3 \
             WHERE id = $4 AND closed_at IS NULL RETURNING {INCIDENT_COLUMNS}"
        )))
        .bind(db::to_i64(seen.count))
        .bind(seen.detail)
        .bind(timestamp(now))
        .bind(id)
        .fetch_optional(tx.conn())
        .await
        .map_err(StoreError::query(what()))?;
        let Some(row) = row else {
            tx.rollback().await.map_err(StoreError::query(what()))?;
            return Ok(None);
        };
        let mut incident = read_incident(&row)?;
        let mut reminder = false;
        if sending && reminder_due(&incident, now, remind_every) {
            // Compare-and-set on the previous value: of two processes deciding at once, one
            // updates the row and sends; the other sees no row changed.
            let claimed = sqlx::query(
                "UPDATE notify_incidents SET last_sent_at = $1 \
                 WHERE id = $2 AND COALESCE(last_sent_at, '') = $3",
            )
            .bind(timestamp(now))
            .bind(id)
            .bind(incident.last_sent_at.map(timestamp).unwrap_or_default())
            .execute(tx.conn())
            .await
            .map_err(StoreError::query(what()))?;
            if claimed.rows_affected() == 1 {
                incident.last_sent_at = Some(now);
                reminder = true;
            }
        }
        tx.commit().await.map_err(StoreError::query(what()))?;
        Ok(Some(if reminder {
            IncidentStep::Reminder(incident)
        } else {
            IncidentStep::Ongoing(incident)
        }))
    }

    /// Closes the open incident of (`flow`, `kind`) at `now`; returns it closed, or `None` when
    /// none was open (or another process closed it first, and sends the message).
    pub async fn close_incident(
        &self,
        flow: &str,
        kind: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<IncidentRecord>, StoreError> {
        let now = db::truncate_micros(now);
        let what = || format!("closing the {kind} incident of {flow}");
        let mut tx = self
            .db
            .begin_write()
            .await
            .map_err(StoreError::query(what()))?;
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE notify_incidents SET closed_at = $1 \
             WHERE flow = $2 AND kind = $3 AND closed_at IS NULL RETURNING {INCIDENT_COLUMNS}"
        )))
        .bind(timestamp(now))
        .bind(flow)
        .bind(kind)
        .fetch_optional(tx.conn())
        .await
        .map_err(StoreError::query(what()))?;
        let closed = row.as_ref().map(read_incident).transpose()?;
        tx.commit().await.map_err(StoreError::query(what()))?;
        Ok(closed)
    }

    /// Records one send attempt; returns its id.
    pub async fn record_notification(&self, n: &NewNotification) -> Result<i64, StoreError> {
        let what = || format!("recording a {} {} notification", n.channel, n.kind);
        let mut tx = self
            .db
            .begin_write()
            .await
            .map_err(StoreError::query(what()))?;
        let id: i64 = sqlx::query(
            "INSERT INTO notifications \
             (at, channel, flow, kind, subject, status, error, incident_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(timestamp(n.at))
        .bind(n.channel.as_str())
        .bind(n.flow.as_str())
        .bind(n.kind.as_str())
        .bind(n.subject.as_str())
        .bind(if n.error.is_none() { "sent" } else { "failed" })
        .bind(n.error.as_deref())
        .bind(n.incident)
        .fetch_one(tx.conn())
        .await
        .and_then(|row| row.try_get("id"))
        .map_err(StoreError::query(what()))?;
        tx.commit().await.map_err(StoreError::query(what()))?;
        Ok(id)
    }

    /// The latest `limit` send attempts, newest first.
    pub async fn notifications(&self, limit: usize) -> Result<Vec<NotificationRecord>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {NOTIFICATION_COLUMNS} FROM notifications ORDER BY id DESC LIMIT $1"
        )))
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(self.db.pool())
        .await
        .map_err(StoreError::query("listing notifications"))?;
        rows.iter().map(read_notification).collect()
    }

    /// Of `items` (document, reason) rejected in `flow`, the ones never reported before, in
    /// their order and without repeats; they are recorded as reported at `now` in the same
    /// statement, so a concurrent caller does not report them too.
    pub async fn claim_rejections(
        &self,
        flow: &str,
        items: &[(String, String)],
        now: DateTime<Utc>,
    ) -> Result<Vec<(String, String)>, StoreError> {
        let mut seen = HashSet::new();
        let unique: Vec<(&(String, String), String)> = items
            .iter()
            .map(|item| (item, digest(&item.1)))
            .filter(|(item, d)| seen.insert((item.0.clone(), d.clone())))
            .collect();
        if unique.is_empty() {
            return Ok(Vec::new());
        }
        let what = || format!("recording {} reported rejections of {flow}", unique.len());
        let mut tx = self
            .db
            .begin_write()
            .await
            .map_err(StoreError::query(what()))?;
        let mut new = HashSet::new();
        for chunk in unique.chunks(REJECTIONS_PER_INSERT) {
            let rows: Vec<String> = (0..chunk.len())
                .map(|i| format!("({})", placeholders(1 + i * 5, 5)))
                .collect();
            let sql = format!(
                "INSERT INTO notify_rejections_sent \
                 (flow, document, reason_digest, reason, sent_at) VALUES {} \
                 ON CONFLICT (flow, document, reason_digest) DO NOTHING \
                 RETURNING document, reason_digest",
                rows.join(", ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for ((document, reason), d) in chunk {
                query = query
                    .bind(flow)
                    .bind(document.as_str())
                    .bind(d.as_str())
                    .bind(reason.as_str())
                    .bind(timestamp(now));
            }
            let returned = query
                .fetch_all(tx.conn())
                .await
                .map_err(StoreError::query(what()))?;
            for row in returned {
                let document: String = row.try_get(0).map_err(StoreError::query(what()))?;
                let d: String = row.try_get(1).map_err(StoreError::query(what()))?;
                new.insert((document, d));
            }
        }
        tx.commit().await.map_err(StoreError::query(what()))?;
        Ok(unique
            .into_iter()
            .filter(|((document, _), d)| new.contains(&(document.clone(), d.clone())))
            .map(|(item, _)| item.clone())
            .collect())
    }
}

/// The key a reason is remembered by: SHA-256, lowercase hex.
fn digest(reason: &str) -> String {
    Sha256::digest(reason.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn read_incident(row: &AnyRow) -> Result<IncidentRecord, StoreError> {
    let id: i64 = row
        .try_get("id")
        .map_err(StoreError::query("reading an incident"))?;
    let what = || format!("reading incident {id}");
    let text = |col: &str| -> Result<String, StoreError> {
        row.try_get(col).map_err(StoreError::query(what()))
    };
    let opt = |col: &str| -> Result<Option<String>, StoreError> {
        row.try_get(col).map_err(StoreError::query(what()))
    };
    let time = |col: &str, s: &str| {
        db::parse_timestamp(s).map_err(|e| StoreError::Corrupt {
            what: what(),
            detail: format!("{col} '{s}': {e}"),
        })
    };
    let count: i64 = row.try_get("count").map_err(StoreError::query(what()))?;
    Ok(IncidentRecord {
        id,
        flow: text("flow")?,
        kind: text("kind")?,
        opened_at: time("opened_at", &text("opened_at")?)?,
        last_seen_at: time("last_seen_at", &text("last_seen_at")?)?,
        last_sent_at: opt("last_sent_at")?
            .map(|s| time("last_sent_at", &s))
            .transpose()?,
        count: db::to_u64(count).ok_or_else(|| StoreError::Corrupt {
            what: what(),
            detail: format!("count is {count}"),
        })?,
        detail: text("detail")?,
        closed_at: opt("closed_at")?
            .map(|s| time("closed_at", &s))
            .transpose()?,
    })
}

fn read_notification(row: &AnyRow) -> Result<NotificationRecord, StoreError> {
    let id: i64 = row
        .try_get("id")
        .map_err(StoreError::query("reading a notification"))?;
    let what = || format!("reading notification {id}");
    let text = |col: &str| -> Result<String, StoreError> {
        row.try_get(col).map_err(StoreError::query(what()))
    };
    let at = text("at")?;
    Ok(NotificationRecord {
        id,
        at: db::parse_timestamp(&at).map_err(|e| StoreError::Corrupt {
            what: what(),
            detail: format!("at '{at}': {e}"),
        })?,
        channel: text("channel")?,
        flow: text("flow")?,
        kind: text("kind")?,
        subject: text("subject")?,
        status: text("status")?,
        error: row.try_get("error").map_err(StoreError::query(what()))?,
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

    fn seen<'a>(
        flow: &'a str,
        kind: &'a str,
        count: u64,
        detail: &'a str,
        at: DateTime<Utc>,
    ) -> Sighting<'a> {
        Sighting {
            flow,
            kind,
            count,
            detail,
            at,
        }
    }

    fn t(minutes: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + Duration::days(20_000) + Duration::minutes(minutes)
    }

    #[tokio::test]
    async fn an_incident_opens_once_reminds_on_time_and_closes() {
        let store = store().await;
        let hour = Duration::minutes(60);
        let first = store
            .incident_seen(
                &seen("invoices", "pass-failed", 1, "down", t(0)),
                hour,
                true,
            )
            .await
            .expect("open");
        assert!(matches!(first, IncidentStep::Opened(_)), "{first:?}");
        for m in 1..60 {
            let step = store
                .incident_seen(
                    &seen("invoices", "pass-failed", 1, "still down", t(m)),
                    hour,
                    true,
                )
                .await
                .expect("again");
            assert!(matches!(step, IncidentStep::Ongoing(_)), "{m}: {step:?}");
        }
        let step = store
            .incident_seen(
                &seen("invoices", "pass-failed", 1, "down again", t(60)),
                hour,
                true,
            )
            .await
            .expect("again");
        let IncidentStep::Reminder(i) = step else {
            panic!("reminder due at 60 min: {step:?}")
        };
        assert_eq!((i.count, i.detail.as_str()), (61, "down again"));
        assert_eq!(i.last_sent_at, Some(t(60)));
        // The other kind and other flows are separate incidents.
        let other = store
            .incident_seen(&seen("payments", "pass-failed", 1, "x", t(61)), hour, true)
            .await
            .expect("other flow");
        assert!(matches!(other, IncidentStep::Opened(_)));
        assert_eq!(store.open_incidents().await.expect("list").len(), 2);

        let closed = store
            .close_incident("invoices", "pass-failed", t(70))
            .await
            .expect("close")
            .expect("was open");
        assert_eq!(closed.closed_at, Some(t(70)));
        assert_eq!(closed.opened_at, t(0));
        assert_eq!(
            store
                .close_incident("invoices", "pass-failed", t(71))
                .await
                .expect("close"),
            None
        );
        let again = store
            .incident_seen(
                &seen("invoices", "pass-failed", 1, "down", t(80)),
                hour,
                true,
            )
            .await
            .expect("reopen");
        assert!(matches!(again, IncidentStep::Opened(ref i) if i.id != closed.id && i.count == 1));
        assert_eq!(store.incidents(10).await.expect("all").len(), 3);
    }

    #[tokio::test]
    async fn without_channels_nothing_is_marked_sent() {
        let store = store().await;
        let hour = Duration::minutes(60);
        let step = store
            .incident_seen(
                &seen("invoices", "documents-waiting", 5, "ERP down", t(0)),
                hour,
                false,
            )
            .await
            .expect("open");
        assert_eq!(step.incident().last_sent_at, None);
        let step = store
            .incident_seen(
                &seen("invoices", "documents-waiting", 5, "ERP down", t(90)),
                hour,
                false,
            )
            .await
            .expect("again");
        assert!(matches!(step, IncidentStep::Ongoing(ref i) if i.count == 10));
    }

    #[tokio::test]
    async fn rejections_are_claimed_once() {
        let store = store().await;
        let items = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        let first = store
            .claim_rejections(
                "pay-payments",
                &items(&[
                    ("1", "closed period"),
                    ("2", "bad account"),
                    ("1", "closed period"),
                ]),
                t(0),
            )
            .await
            .expect("claim");
        assert_eq!(
            first,
            items(&[("1", "closed period"), ("2", "bad account")])
        );
        let second = store
            .claim_rejections(
                "pay-payments",
                &items(&[
                    ("1", "closed period"),
                    ("1", "unknown supplier"),
                    ("3", "x"),
                ]),
                t(1),
            )
            .await
            .expect("claim");
        assert_eq!(second, items(&[("1", "unknown supplier"), ("3", "x")]));
        // Another flow's identical rejection is its own.
        let other = store
            .claim_rejections("invoices", &items(&[("1", "closed period")]), t(2))
            .await
            .expect("claim");
        assert_eq!(other.len(), 1);
    }

    #[tokio::test]
    async fn notifications_are_listed_newest_first() {
        let store = store().await;
        for (i, error) in [None, Some("554 refused".to_string())]
            .into_iter()
            .enumerate()
        {
            store
                .record_notification(&NewNotification {
                    at: t(i as i64),
                    channel: "email".into(),
                    flow: "invoices".into(),
                    kind: "problem".into(),
                    subject: format!("s{i}"),
                    error,
                    incident: None,
                })
                .await
                .expect("record");
        }
        let got = store.notifications(10).await.expect("list");
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].subject, "s1");
        assert_eq!(got[0].status, "failed");
        assert_eq!(got[0].error.as_deref(), Some("554 refused"));
        assert_eq!(got[1].status, "sent");
        assert_eq!(got[1].at, t(0));
        assert_eq!(store.notifications(1).await.expect("list").len(), 1);
    }
}
