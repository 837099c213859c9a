//! Leases: which replica runs a tenant's flows when several `coupa-bridge run` processes share
//! one state store, and the fencing token that keeps a replica which lost its lease from writing.
//!
//! A lease is a row of `leases`: its holder, a token that grows by one at every change of
//! holder, and an expiry on the database's clock (so replicas whose clocks disagree still agree
//! on it). A holder renews well before expiry; a replica that dies stops renewing, and another
//! takes the lease once it has expired. Release (on a graceful stop) expires it at once.
//!
//! Fencing: a store opened by the holder carries its [`Fence`], and every journal write checks,
//! inside its own transaction, that the lease's token is still the fence's (PostgreSQL: with the
//! lease row share-locked, so a takeover waits for the write, or the write sees the takeover).
//! A replica that was paused past its expiry and resumes therefore cannot record a step, and a
//! flow records a step before every effect on Coupa or the ERP that could be repeated.

use std::time::Duration;

use sqlx::Row;

use super::{Store, StoreError};
use crate::db::{Backend, to_i64};

/// The lease of a tenant's flows; one per state store (each tenant has its own store).
pub const FLOWS_LEASE: &str = "flows";

/// Proof of holding a lease: its name, the holder and the token it was granted with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fence {
    pub lease: String,
    pub holder: String,
    pub token: i64,
    /// The term it is granted and renewed for.
    pub term: Duration,
}

/// A lease as the store has it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LeaseRow {
    pub name: String,
    pub holder: String,
    pub token: i64,
    /// Milliseconds left before it expires, on the database's clock (negative once expired).
    pub remaining_ms: i64,
}

impl Store {
    /// Takes lease `name` for `holder` for `ttl` when nobody holds it or its holder let it
    /// expire. `None` when another holder's lease is still running.
    pub async fn lease_acquire(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<Fence>, StoreError> {
        let now = self.db.dialect().now_millis();
        let what = || format!("taking lease '{name}'");
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO leases (name, holder, token, acquired_ms, expires_ms) \
             VALUES ($1, $2, 1, {now}, {now} + $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
             token = leases.token + 1, acquired_ms = excluded.acquired_ms, \
             expires_ms = excluded.expires_ms \
             WHERE leases.expires_ms < {now} \
             RETURNING token"
        )))
        .bind(name)
        .bind(holder)
        .bind(millis(ttl))
        .fetch_optional(self.db.pool())
        .await
        .map_err(StoreError::query(what()))?;
        granted(row, name, holder, ttl).map_err(StoreError::query(what()))
    }

    /// Takes lease `name` over from `from` (a holder known to be dead, see
    /// [`crate::daemon::replica`]) without waiting for its expiry; `None` when the lease has
    /// changed since `from` was read.
    pub async fn lease_take_over(
        &self,
        from: &LeaseRow,
        holder: &str,
        ttl: Duration,
    ) -> Result<Option<Fence>, StoreError> {
        let now = self.db.dialect().now_millis();
        let what = || format!("taking lease '{}' over from {}", from.name, from.holder);
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE leases SET holder = $1, token = token + 1, acquired_ms = {now}, \
             expires_ms = {now} + $2 WHERE name = $3 AND holder = $4 AND token = $5 \
             RETURNING token"
        )))
        .bind(holder)
        .bind(millis(ttl))
        .bind(&from.name)
        .bind(&from.holder)
        .bind(from.token)
        .fetch_optional(self.db.pool())
        .await
        .map_err(StoreError::query(what()))?;
        granted(row, &from.name, holder, ttl).map_err(StoreError::query(what()))
    }

    /// Extends `fence`'s lease by `ttl` from now. `false` when the lease has changed holder
    /// since (the fence is stale: stop writing).
    pub async fn lease_renew(&self, fence: &Fence, ttl: Duration) -> Result<bool, StoreError> {
        let now = self.db.dialect().now_millis();
        let done = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE leases SET expires_ms = {now} + $1 \
             WHERE name = $2 AND holder = $3 AND token = $4"
        )))
        .bind(millis(ttl))
        .bind(&fence.lease)
        .bind(&fence.holder)
        .bind(fence.token)
        .execute(self.db.pool())
        .await
        .map_err(StoreError::query(format!(
            "renewing lease '{}'",
            fence.lease
        )))?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives the lease up at once (another replica may take it right away). A stale fence
    /// changes nothing.
    pub async fn lease_release(&self, fence: &Fence) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE leases SET expires_ms = 0 WHERE name = $1 AND holder = $2 AND token = $3",
        )
        .bind(&fence.lease)
        .bind(&fence.holder)
        .bind(fence.token)
        .execute(self.db.pool())
        .await
        .map_err(StoreError::query(format!(
            "releasing lease '{}'",
            fence.lease
        )))?;
        Ok(())
    }

    /// Every lease, by name.
    pub async fn leases(&self) -> Result<Vec<LeaseRow>, StoreError> {
        let now = self.db.dialect().now_millis();
        let what = || "reading the leases".to_owned();
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT name, holder, token, expires_ms - {now} AS remaining_ms FROM leases \
             ORDER BY name"
        )))
        .fetch_all(self.db.pool())
        .await
        .map_err(StoreError::query(what()))?;
        rows.iter()
            .map(|r| {
                Ok(LeaseRow {
                    name: r.try_get("name")?,
                    holder: r.try_get("holder")?,
                    token: r.try_get("token")?,
                    remaining_ms: r.try_get("remaining_ms")?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::query(what()))
    }

    /// Records that replica `id` (on `host`) is alive, and returns how many replicas were seen
    /// within `window`, this one included.
    pub async fn replica_heartbeat(
        &self,
        id: &str,
        host: &str,
        window: Duration,
    ) -> Result<usize, StoreError> {
        let now = self.db.dialect().now_millis();
        let what = || "recording this replica's heartbeat".to_owned();
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO replicas (id, host, started_ms, seen_ms) VALUES ($1, $2, {now}, {now}) \
             ON CONFLICT (id) DO UPDATE SET seen_ms = excluded.seen_ms"
        )))
        .bind(id)
        .bind(host)
        .execute(self.db.pool())
        .await
        .map_err(StoreError::query(what()))?;
        // Replicas gone for a day are forgotten.
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM replicas WHERE seen_ms < {now} - 86400000"
        )))
        .execute(self.db.pool())
        .await
        .map_err(StoreError::query(what()))?;
        let live: i64 = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) AS n FROM replicas WHERE seen_ms >= {now} - $1"
        )))
        .bind(millis(window))
        .fetch_one(self.db.pool())
        .await
        .and_then(|r| r.try_get("n"))
        .map_err(StoreError::query(what()))?;
        Ok(usize::try_from(live).unwrap_or(1).max(1))
    }

    /// Forgets replica `id` (it is stopping).
    pub async fn replica_gone(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM replicas WHERE id = $1")
            .bind(id)
            .execute(self.db.pool())
            .await
            .map_err(StoreError::query("forgetting this replica"))?;
        Ok(())
    }

    /// This store, writing under `fence`: every journal write checks the lease is still its.
    /// Clones share the setting; `None` stops checking.
    pub fn set_fence(&self, fence: Option<Fence>) {
        *self.fence.lock().unwrap_or_else(|e| e.into_inner()) = fence;
    }

    /// The fence this store writes under, if any.
    pub fn fence(&self) -> Option<Fence> {
        self.fence.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Fails with [`StoreError::Fenced`] when this store writes under a fence whose lease has
    /// changed holder: for an effect that is not journaled, just before it.
    pub async fn check_lease(&self) -> Result<(), StoreError> {
        self.lease_term().await.map(|_| ())
    }

    /// What the write gate answers before a write to Coupa leaves: [`Store::check_lease`],
    /// and the instant until which the write may start. That is the lease's expiry less half
    /// its term, on this process's clock, counted from before the check was asked: another
    /// replica can take over only after the expiry, and by then whatever left before the
    /// instant has long reached Coupa. A holder too close to its expiry (its renewals are
    /// late) writes nothing. `None` when there is no fence.
    pub async fn lease_term(&self) -> Result<Option<std::time::Instant>, StoreError> {
        let Some(fence) = self.fence() else {
            return Ok(None);
        };
        let asked = std::time::Instant::now();
        let mut conn = self
            .db
            .pool()
            .acquire()
            .await
            .map_err(StoreError::query("checking the lease"))?;
        let remaining = self.check_fence(&mut conn).await?;
        Duration::from_millis(u64::try_from(remaining).unwrap_or(0))
            .checked_sub(fence.term / 2)
            .filter(|left| !left.is_zero())
            .map(|left| Some(asked + left))
            .ok_or_else(|| StoreError::Fenced {
                lease: fence.lease,
                token: fence.token,
                now: format!(
                    "its term ends in {remaining} ms, less than half of {} ms, too soon to \
                     start a write",
                    fence.term.as_millis()
                ),
            })
    }

    /// [`Store::check_lease`] on a connection; inside a write transaction, before its writes.
    /// The lease's remaining milliseconds on the database's clock (0 without a fence).
    pub(crate) async fn check_fence(
        &self,
        conn: &mut sqlx::AnyConnection,
    ) -> Result<i64, StoreError> {
        let Some(fence) = self.fence() else {
            return Ok(0);
        };
        let now = self.db.dialect().now_millis();
        let lock = match self.db.backend() {
            Backend::Postgres => " FOR SHARE",
            Backend::Sqlite => "",
        };
        let what = || format!("checking lease '{}'", fence.lease);
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT holder, token, expires_ms - {now} AS remaining_ms FROM leases \
             WHERE name = $1{lock}"
        )))
        .bind(&fence.lease)
        .fetch_optional(&mut *conn)
        .await
        .map_err(StoreError::query(what()))?;
        let current = row
            .map(|r| -> Result<(String, i64, i64), sqlx::Error> {
                Ok((
                    r.try_get("holder")?,
                    r.try_get("token")?,
                    r.try_get("remaining_ms")?,
                ))
            })
            .transpose()
            .map_err(StoreError::query(what()))?;
        match current {
            Some((holder, token, remaining)) if holder == fence.holder && token == fence.token => {
                Ok(remaining)
            }
            Some((holder, token, _)) => Err(StoreError::Fenced {
                lease: fence.lease,
                token: fence.token,
                now: format!("replica {holder} holds it with token {token}"),
            }),
            None => Err(StoreError::Fenced {
                lease: fence.lease,
                token: fence.token,
                now: "it no longer exists".into(),
            }),
        }
    }
}

/// The Coupa client asks the store before each write it sends: under a fence, the lease must
/// still be this replica's, and the write must leave within [`Store::lease_term`].
impl coupa_api::client::WriteGate for Store {
    fn check(
        &self,
    ) -> std::pin::Pin<
        Box<dyn Future<Output = Result<Option<std::time::Instant>, String>> + Send + '_>,
    > {
        Box::pin(async move { self.lease_term().await.map_err(|e| e.to_string()) })
    }
}

/// The fence of a grant: the token a `RETURNING token` row holds; `None` when no row came back.
fn granted(
    row: Option<sqlx::any::AnyRow>,
    lease: &str,
    holder: &str,
    term: Duration,
) -> Result<Option<Fence>, sqlx::Error> {
    row.map(|r| {
        Ok(Fence {
            lease: lease.to_owned(),
            holder: holder.to_owned(),
            token: r.try_get("token")?,
            term,
        })
    })
    .transpose()
}

fn millis(d: Duration) -> i64 {
    to_i64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
