//! The Coupa Pay side of [`SqlErp`](super::SqlErp): booking Coupa Pay payments and applying
//! them to the ERP's invoices.
//!
//! A payment is one `erp_coupa_pay_payments` row, keyed by its Coupa id, and one
//! `erp_payment_applications` row per Coupa `payment-details` entry, in Coupa's order.
//! [`Erp::book_pay_payment`](super::Erp::book_pay_payment) compares before it writes: a version
//! older than the stored one, or one with the same content, changes nothing; otherwise the row is
//! inserted or updated and its applications replaced, all in one transaction.
//!
//! An invoice detail is *applied* when the ERP holds its invoice under the same number, in the
//! same currency, not cancelled; otherwise it is kept unapplied with its `problem`, and applied
//! when the invoice is posted later ([`SqlErp::apply_waiting`]). Other details (expense reports)
//! are kept, never applied and never a problem. An ERP invoice is `paid` when the applied details
//! of `completed_successfully` payments settle its total, `open` otherwise; every booking
//! recomputes the invoices it touches, so a cancelled or failed version reopens what an earlier
//! version paid.
//!
//! On PostgreSQL (read committed) concurrent writers are kept apart by locks: the stored payment
//! row is read `FOR UPDATE`, the ERP invoices a booking touches too, and a transaction-scoped
//! advisory lock per Coupa invoice id serialises a booking with the posting of that invoice (so
//! a detail booked while its invoice is being posted is applied by one or the other). On SQLite
//! the write lock of [`Db::begin_write`](crate::db::Db::begin_write) already serialises them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::str::FromStr;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::sql::unavailable;
use super::{
    ErpError, ErpInvoice, ErpPayPayment, ErpPayPaymentRecord, ErpPaymentApplicationRecord,
    PAY_STATUS_SETTLES, PayApplication, PayBooking, PayBookingChange, SqlErp,
};
use crate::db::{self, Backend, placeholders, timestamp};

const STATUS_OPEN: &str = "open";
const STATUS_PAID: &str = "paid";
const STATUS_CANCELLED: &str = "cancelled";

/// Parameters of one inserted application row, and rows per `INSERT` (a few hundred parameters
/// per statement suits SQLite, see `payments.rs`).
const APPLICATION_PARAMS: usize = 12;
const APPLICATIONS_PER_INSERT: usize = 20;
/// Ids per `IN (...)` list.
const IDS_PER_STATEMENT: usize = 250;
/// First key of the PostgreSQL advisory locks on Coupa invoice ids ("ERPI"). Two-key locks never
/// meet the one-key lock of the migrations.
const PG_INVOICE_LOCK_CLASS: i32 = 0x4552_5049;

const PAYMENT_COLUMNS: &str = "coupa_payment_id, status, payment_identifier, pay_from_total, \
    pay_from_currency, pay_to_total, pay_to_currency, exchange_rate, payee_name, \
    pay_to_account_type, error_text, updated_at, exported_at, changed_at";
const APPLICATION_COLUMNS: &str = "id, coupa_payment_id, coupa_detail_id, source_type, \
    coupa_invoice_id, invoice_number, amount, settled, discount, adjustment, currency, \
    CASE WHEN applied THEN 1 ELSE 0 END AS applied, problem";

/// Insert and update bind the same values in the same order: the Coupa payment id, the eleven
/// values of the version booked, then now. The insert also sets `exported_at`; both answer with
/// the row's id, so "no row" is seen the same way.
const INSERT_PAYMENT: &str = "INSERT INTO erp_coupa_pay_payments (coupa_payment_id, status, \
    payment_identifier, pay_from_total, pay_from_currency, pay_to_total, pay_to_currency, \
    exchange_rate, payee_name, pay_to_account_type, error_text, updated_at, exported_at, \
    changed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13) \
    ON CONFLICT (coupa_payment_id) DO NOTHING RETURNING id";
const UPDATE_PAYMENT: &str = "UPDATE erp_coupa_pay_payments SET status = $2, \
    payment_identifier = $3, pay_from_total = $4, pay_from_currency = $5, pay_to_total = $6, \
    pay_to_currency = $7, exchange_rate = $8, payee_name = $9, pay_to_account_type = $10, \
    error_text = $11, updated_at = $12, changed_at = $13 WHERE coupa_payment_id = $1 \
    RETURNING id";

/// What the checks of an invoice detail need of an ERP invoice.
#[derive(Clone, Debug, PartialEq, Eq)]
struct InvoiceState {
    document_number: String,
    invoice_number: String,
    currency: String,
    /// Decimal text as stored, parsed only when the status is recomputed.
    total: String,
    status: String,
}

/// One try at booking: a concurrent booking of the same new payment may win the insert.
enum Attempt {
    Booked(PayBooking),
    LostRace,
}

impl SqlErp {
    /// Every Coupa Pay payment the ERP holds, by Coupa payment id, values as stored.
    pub async fn pay_payments(&self) -> Result<Vec<ErpPayPaymentRecord>, ErpError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PAYMENT_COLUMNS} FROM erp_coupa_pay_payments ORDER BY coupa_payment_id"
        )))
        .fetch_all(self.db().pool())
        .await
        .map_err(unavailable("listing Coupa Pay payments"))?;
        rows.iter().map(read_payment).collect()
    }

    /// Every payment application, by Coupa payment id then in Coupa's order, values as stored.
    pub async fn payment_applications(&self) -> Result<Vec<ErpPaymentApplicationRecord>, ErpError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {APPLICATION_COLUMNS} FROM erp_payment_applications \
             ORDER BY coupa_payment_id, id"
        )))
        .fetch_all(self.db().pool())
        .await
        .map_err(unavailable("listing payment applications"))?;
        rows.iter().map(read_application).collect()
    }

    /// [`Erp::pay_problems`](super::Erp::pay_problems).
    pub(super) async fn read_pay_problems(
        &self,
        ids: &[i64],
    ) -> Result<HashMap<i64, Vec<String>>, ErpError> {
        let mut found: HashMap<i64, Vec<String>> = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(IDS_PER_STATEMENT) {
            let sql = format!(
                "SELECT p.coupa_payment_id, a.problem FROM erp_coupa_pay_payments p                  LEFT JOIN erp_payment_applications a                  ON a.coupa_payment_id = p.coupa_payment_id AND a.problem IS NOT NULL                  WHERE p.coupa_payment_id IN ({}) ORDER BY p.coupa_payment_id, a.id",
                placeholders(1, chunk.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                query = query.bind(*id);
            }
            let what = || format!("reading the problems of {} Coupa Pay payments", chunk.len());
            let rows = query
                .fetch_all(self.db().pool())
                .await
                .map_err(unavailable(what()))?;
            for row in &rows {
                let id: i64 = row
                    .try_get("coupa_payment_id")
                    .map_err(unavailable(what()))?;
                let problem: Option<String> =
                    row.try_get("problem").map_err(unavailable(what()))?;
                let entry = found.entry(id).or_default();
                entry.extend(problem);
            }
        }
        Ok(found)
    }

    /// [`Erp::book_pay_payment`](super::Erp::book_pay_payment). A booking that loses the insert
    /// to a concurrent booking of the same payment is run once more, and then finds the winner's
    /// row like any later booking would.
    pub(super) async fn book_pay(&self, payment: &ErpPayPayment) -> Result<PayBooking, ErpError> {
        let what = format!("booking Coupa Pay payment {}", payment.coupa_payment_id);
        for _ in 0..2 {
            if let Attempt::Booked(booking) = self.try_book_pay(payment, &what).await? {
                return Ok(booking);
            }
        }
        Err(ErpError::Unavailable(format!(
            "{what}: concurrent bookings of the same payment kept winning its insert; try again"
        )))
    }

    async fn try_book_pay(&self, p: &ErpPayPayment, what: &str) -> Result<Attempt, ErpError> {
        let id = p.coupa_payment_id;
        let mut tx = self.db().begin_write().await.map_err(unavailable(what))?;
        let stored = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PAYMENT_COLUMNS} FROM erp_coupa_pay_payments WHERE coupa_payment_id = $1{}",
            self.row_lock()
        )))
        .bind(id)
        .fetch_optional(tx.conn())
        .await
        .map_err(unavailable(format!("{what}: reading the stored payment")))?
        .as_ref()
        .map(read_payment)
        .transpose()?;
        let old_applications = match &stored {
            None => Vec::new(),
            Some(_) => {
                let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT {APPLICATION_COLUMNS} FROM erp_payment_applications \
                     WHERE coupa_payment_id = $1 ORDER BY id"
                )))
                .bind(id)
                .fetch_all(tx.conn())
                .await
                .map_err(unavailable(format!("{what}: reading its applications")))?;
                rows.iter()
                    .map(read_application)
                    .collect::<Result<Vec<_>, _>>()?
            }
        };
        if let Some(stored) = &stored
            && (is_older(p.coupa_updated_at, stored, what)?
                || same_content(stored, &old_applications, p))
        {
            tx.rollback().await.map_err(unavailable(what))?;
            // What the ERP holds still stands: its problems are the answer's.
            let unapplied = old_applications
                .iter()
                .enumerate()
                .filter_map(|(i, a)| a.problem.clone().map(|why| (i, why)))
                .collect();
            return Ok(Attempt::Booked(PayBooking {
                change: PayBookingChange::Unchanged,
                unapplied,
                paid: Vec::new(),
                reopened: Vec::new(),
            }));
        }

        // The invoices whose status may change: those the old version counted towards (only
        // applied details ever count) and those the new one names.
        let invoice_ids: BTreeSet<i64> = old_applications
            .iter()
            .filter(|a| a.applied)
            .filter_map(|a| a.coupa_invoice_id)
            .chain(
                p.applications
                    .iter()
                    .filter(|a| a.is_invoice())
                    .filter_map(|a| a.coupa_invoice_id),
            )
            .collect();
        self.lock_invoice_ids(tx.conn(), &invoice_ids, what).await?;
        let invoices = self.read_invoices(tx.conn(), &invoice_ids, what).await?;

        let mut unapplied = Vec::new();
        let mut outcomes: Vec<(bool, Option<String>)> = Vec::with_capacity(p.applications.len());
        for (i, a) in p.applications.iter().enumerate() {
            if !a.is_invoice() {
                outcomes.push((false, None));
                continue;
            }
            let invoice = a.coupa_invoice_id.and_then(|id| invoices.get(&id));
            match check_invoice_detail(
                a.coupa_invoice_id,
                a.invoice_number.as_deref(),
                &a.currency,
                invoice,
            ) {
                Ok(()) => outcomes.push((true, None)),
                Err(reason) => {
                    unapplied.push((i, reason.clone()));
                    outcomes.push((false, Some(reason)));
                }
            }
        }

        let now = timestamp(db::now());
        let written = sqlx::query(if stored.is_none() {
            INSERT_PAYMENT
        } else {
            UPDATE_PAYMENT
        })
        .bind(id)
        .bind(p.status.as_str())
        .bind(p.payment_identifier.as_deref())
        .bind(decimal_text(p.pay_from_total))
        .bind(p.pay_from_currency.as_deref())
        .bind(decimal_text(p.pay_to_total))
        .bind(p.pay_to_currency.as_deref())
        .bind(decimal_text(p.exchange_rate))
        .bind(p.payee_name.as_deref())
        .bind(p.pay_to_account_type.as_deref())
        .bind(p.error_text.as_deref())
        .bind(timestamp(p.coupa_updated_at))
        .bind(&now)
        .fetch_optional(tx.conn())
        .await;
        let change = match (&stored, written) {
            (None, Ok(Some(_))) => PayBookingChange::Inserted,
            (Some(stored), Ok(Some(_))) => PayBookingChange::Updated {
                previous_status: stored.status.clone(),
            },
            // A concurrent booking of the same payment committed its row after our read (or is
            // about to, and the unique index made us wait for it): start again and find it.
            (None, Ok(None)) => {
                tx.rollback().await.map_err(unavailable(what))?;
                return Ok(Attempt::LostRace);
            }
            (None, Err(e)) if db::is_unique_violation(&e) => {
                tx.rollback().await.map_err(unavailable(what))?;
                return Ok(Attempt::LostRace);
            }
            (Some(_), Ok(None)) => {
                return Err(ErpError::Unavailable(format!(
                    "{what}: the stored payment disappeared while it was being updated; try again"
                )));
            }
            (_, Err(e)) => return Err(unavailable(format!("{what}: writing the payment"))(e)),
        };

        sqlx::query("DELETE FROM erp_payment_applications WHERE coupa_payment_id = $1")
            .bind(id)
            .execute(tx.conn())
            .await
            .map_err(unavailable(format!(
                "{what}: removing its earlier applications"
            )))?;
        let rows: Vec<(&PayApplication, &(bool, Option<String>))> =
            p.applications.iter().zip(&outcomes).collect();
        for chunk in rows.chunks(APPLICATIONS_PER_INSERT) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| {
                    format!(
                        "({})",
                        placeholders(1 + i * APPLICATION_PARAMS, APPLICATION_PARAMS)
                    )
                })
                .collect();
            let sql = format!(
                "INSERT INTO erp_payment_applications (coupa_payment_id, coupa_detail_id, \
                 source_type, coupa_invoice_id, invoice_number, amount, settled, discount, \
                 adjustment, currency, applied, problem) VALUES {}",
                values.join(", ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (a, (applied, problem)) in chunk {
                query = query
                    .bind(id)
                    .bind(a.coupa_detail_id)
                    .bind(a.source_type.as_deref())
                    .bind(a.coupa_invoice_id)
                    .bind(a.invoice_number.as_deref())
                    .bind(a.amount.to_string())
                    .bind(a.settled.to_string())
                    .bind(a.discount.to_string())
                    .bind(a.adjustment.to_string())
                    .bind(a.currency.as_str())
                    .bind(*applied)
                    .bind(problem.as_deref());
            }
            query
                .execute(tx.conn())
                .await
                .map_err(unavailable(format!("{what}: writing its applications")))?;
        }

        let (paid, reopened) = recompute_statuses(tx.conn(), &invoices, &now, what).await?;
        tx.commit()
            .await
            .map_err(unavailable(format!("{what}: committing")))?;
        Ok(Attempt::Booked(PayBooking {
            change,
            unapplied,
            paid,
            reopened,
        }))
    }

    /// Applies the Coupa Pay details that waited for `invoice` (booked before the ERP had it),
    /// in the posting transaction, right after the invoice and its lines are inserted: each
    /// that matches it (number, currency) becomes applied and loses its problem, one that does
    /// not gets the reason it now fails for, and the invoice's status is recomputed (it is `paid`
    /// at once if the waiting details settle it). One query when nothing waits (two on
    /// PostgreSQL, with the lock that keeps a concurrent booking from missing the invoice).
    pub(super) async fn apply_waiting(
        &self,
        conn: &mut AnyConnection,
        invoice: &ErpInvoice,
        document_number: &str,
    ) -> Result<(), ErpError> {
        let coupa_invoice_id = invoice.coupa_invoice_id;
        let what = format!(
            "applying waiting Coupa Pay details to invoice '{}' (Coupa id {coupa_invoice_id})",
            invoice.invoice_number
        );
        self.lock_invoice_ids(conn, &BTreeSet::from([coupa_invoice_id]), &what)
            .await?;
        // An invoice detail that is not applied always has its problem; other details never
        // have one, so `problem IS NOT NULL` leaves expense reports with the same id alone.
        let rows = sqlx::query(
            "SELECT id, coupa_payment_id, invoice_number, currency, problem \
             FROM erp_payment_applications \
             WHERE coupa_invoice_id = $1 AND NOT applied AND problem IS NOT NULL ORDER BY id",
        )
        .bind(coupa_invoice_id)
        .fetch_all(&mut *conn)
        .await
        .map_err(unavailable(&what))?;
        if rows.is_empty() {
            return Ok(());
        }

        let state = InvoiceState {
            document_number: document_number.to_owned(),
            invoice_number: invoice.invoice_number.clone(),
            currency: invoice.currency.clone(),
            total: invoice.total.to_string(),
            status: STATUS_OPEN.to_owned(),
        };
        let mut applied = Vec::new();
        for row in &rows {
            let read = |e| unavailable(&what)(e);
            let row_id: i64 = row.try_get("id").map_err(read)?;
            let number: Option<String> = row.try_get("invoice_number").map_err(read)?;
            let currency: String = row.try_get("currency").map_err(read)?;
            let problem: Option<String> = row.try_get("problem").map_err(read)?;
            match check_invoice_detail(
                Some(coupa_invoice_id),
                number.as_deref(),
                &currency,
                Some(&state),
            ) {
                Ok(()) => applied.push(row_id),
                Err(reason) if Some(&reason) != problem.as_ref() => {
                    sqlx::query("UPDATE erp_payment_applications SET problem = $1 WHERE id = $2")
                        .bind(&reason)
                        .bind(row_id)
                        .execute(&mut *conn)
                        .await
                        .map_err(unavailable(format!(
                            "{what}: updating application {row_id}"
                        )))?;
                }
                Err(_) => {}
            }
        }
        for chunk in applied.chunks(IDS_PER_STATEMENT) {
            let sql = format!(
                "UPDATE erp_payment_applications SET applied = TRUE, problem = NULL \
                 WHERE id IN ({})",
                placeholders(1, chunk.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for row_id in chunk {
                query = query.bind(*row_id);
            }
            query
                .execute(&mut *conn)
                .await
                .map_err(unavailable(format!("{what}: applying")))?;
        }
        if applied.is_empty() {
            return Ok(());
        }
        let invoices = BTreeMap::from([(coupa_invoice_id, state)]);
        let now = timestamp(db::now());
        let (paid, _) = recompute_statuses(conn, &invoices, &now, &what).await?;
        tracing::info!(
            coupa_invoice_id,
            document_number,
            applied = applied.len(),
            paid = !paid.is_empty(),
            "applied Coupa Pay details that waited for the invoice"
        );
        Ok(())
    }

    /// ` FOR UPDATE` on PostgreSQL; nothing on SQLite, whose write transactions are serial.
    fn row_lock(&self) -> &'static str {
        match self.db().backend() {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        }
    }

    /// PostgreSQL: takes the transaction's advisory lock of each Coupa invoice id, in key order
    /// (so two bookings never wait for each other in a circle). Nothing on SQLite.
    async fn lock_invoice_ids(
        &self,
        conn: &mut AnyConnection,
        coupa_invoice_ids: &BTreeSet<i64>,
        what: &str,
    ) -> Result<(), ErpError> {
        if self.db().backend() != Backend::Postgres {
            return Ok(());
        }
        let keys: BTreeSet<i32> = coupa_invoice_ids.iter().map(|id| lock_key(*id)).collect();
        for key in keys {
            sqlx::query("SELECT 1 AS locked FROM pg_advisory_xact_lock($1, $2)")
                .bind(PG_INVOICE_LOCK_CLASS)
                .bind(key)
                .execute(&mut *conn)
                .await
                .map_err(unavailable(format!("{what}: locking the invoices")))?;
        }
        Ok(())
    }

    /// The ERP invoices of these Coupa invoice ids (those it has), locked on PostgreSQL so a
    /// concurrent cancel waits for the booking instead of being overwritten by it.
    async fn read_invoices(
        &self,
        conn: &mut AnyConnection,
        coupa_invoice_ids: &BTreeSet<i64>,
        what: &str,
    ) -> Result<BTreeMap<i64, InvoiceState>, ErpError> {
        let ids: Vec<i64> = coupa_invoice_ids.iter().copied().collect();
        let mut invoices = BTreeMap::new();
        for chunk in ids.chunks(IDS_PER_STATEMENT) {
            let sql = format!(
                "SELECT coupa_invoice_id, document_number, invoice_number, currency, total, \
                 status FROM erp_invoices WHERE coupa_invoice_id IN ({}) \
                 ORDER BY coupa_invoice_id{}",
                placeholders(1, chunk.len()),
                self.row_lock()
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for id in chunk {
                query = query.bind(*id);
            }
            let read = unavailable(format!("{what}: reading the ERP invoices"));
            let rows = query.fetch_all(&mut *conn).await.map_err(read)?;
            for row in &rows {
                let read = |e| unavailable(format!("{what}: reading the ERP invoices"))(e);
                invoices.insert(
                    row.try_get("coupa_invoice_id").map_err(read)?,
                    InvoiceState {
                        document_number: row.try_get("document_number").map_err(read)?,
                        invoice_number: row.try_get("invoice_number").map_err(read)?,
                        currency: row.try_get("currency").map_err(read)?,
                        total: row.try_get("total").map_err(read)?,
                        status: row.try_get("status").map_err(read)?,
                    },
                );
            }
        }
        Ok(invoices)
    }
}

/// Sets the status of each invoice from what the applied details of settling payments add up
/// to: `paid` when at least one settles it and together they reach its total, `open` otherwise;
/// a cancelled invoice stays cancelled. Returns the document numbers made `paid` and those made
/// `open` again from `paid`, each sorted. Sums are taken here, in `Decimal`, not in SQL (the
/// amounts are text).
async fn recompute_statuses(
    conn: &mut AnyConnection,
    invoices: &BTreeMap<i64, InvoiceState>,
    now: &str,
    what: &str,
) -> Result<(Vec<String>, Vec<String>), ErpError> {
    let ids: Vec<i64> = invoices
        .iter()
        .filter(|(_, inv)| inv.status != STATUS_CANCELLED)
        .map(|(id, _)| *id)
        .collect();
    let mut settled: BTreeMap<i64, Decimal> = BTreeMap::new();
    for chunk in ids.chunks(IDS_PER_STATEMENT) {
        let sql = format!(
            "SELECT a.id, a.coupa_payment_id, a.coupa_invoice_id, a.settled \
             FROM erp_payment_applications a \
             JOIN erp_coupa_pay_payments p ON p.coupa_payment_id = a.coupa_payment_id \
             WHERE a.applied AND p.status = $1 AND a.coupa_invoice_id IN ({})",
            placeholders(2, chunk.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(PAY_STATUS_SETTLES);
        for id in chunk {
            query = query.bind(*id);
        }
        let read = || unavailable(format!("{what}: reading what settles the invoices"));
        let rows = query.fetch_all(&mut *conn).await.map_err(read())?;
        for row in &rows {
            let (row_id, payment_id, invoice_id, text): (i64, i64, i64, Option<String>) = (|| {
                Ok::<_, sqlx::Error>((
                    row.try_get("id")?,
                    row.try_get("coupa_payment_id")?,
                    row.try_get("coupa_invoice_id")?,
                    row.try_get("settled")?,
                ))
            })(
            )
            .map_err(read())?;
            let bad = |why: String| {
                ErpError::Unavailable(format!(
                    "{what}: application {row_id} of Coupa Pay payment {payment_id}: {why}"
                ))
            };
            let text = text.ok_or_else(|| bad("it is applied but has no settled amount".into()))?;
            let amount = Decimal::from_str(&text)
                .map_err(|e| bad(format!("stored settled '{text}' is not a decimal: {e}")))?;
            let sum = settled.entry(invoice_id).or_insert(Decimal::ZERO);
            *sum = sum
                .checked_add(amount)
                .ok_or_else(|| bad(format!("adding settled {text} overflows")))?;
        }
    }

    let mut paid = Vec::new();
    let mut reopened = Vec::new();
    for id in ids {
        let Some(inv) = invoices.get(&id) else {
            continue;
        };
        let total = Decimal::from_str(&inv.total).map_err(|e| {
            ErpError::Unavailable(format!(
                "{what}: invoice {}: stored total '{}' is not a decimal: {e}",
                inv.document_number, inv.total
            ))
        })?;
        let status = match settled.get(&id) {
            Some(sum) if *sum >= total => STATUS_PAID,
            _ => STATUS_OPEN,
        };
        if status == inv.status {
            continue;
        }
        sqlx::query(
            "UPDATE erp_invoices SET status = $1, updated_at = $2 WHERE coupa_invoice_id = $3",
        )
        .bind(status)
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await
        .map_err(unavailable(format!(
            "{what}: setting invoice {} {status}",
            inv.document_number
        )))?;
        if status == STATUS_PAID {
            paid.push(inv.document_number.clone());
        } else if inv.status == STATUS_PAID {
            reopened.push(inv.document_number.clone());
        }
    }
    paid.sort();
    reopened.sort();
    Ok((paid, reopened))
}

/// Whether the incoming version is older than the stored one (by Coupa's `updated-at`, at the
/// microsecond precision it is stored with). A row without one is older than anything.
fn is_older(
    incoming: DateTime<Utc>,
    stored: &ErpPayPaymentRecord,
    what: &str,
) -> Result<bool, ErpError> {
    let Some(text) = stored.updated_at.as_deref() else {
        return Ok(false);
    };
    let stored_at = db::parse_timestamp(text)
        .map_err(|e| ErpError::Unavailable(format!("{what}: stored updated_at '{text}': {e}")))?;
    Ok(db::truncate_micros(incoming) < stored_at)
}

/// Whether the stored payment and applications say what `p` says, `coupa_updated_at` aside.
/// Decimals are compared as text: `Decimal::to_string` keeps the scale, so equal text is equal
/// value and equal scale, and `20000.0` against `20000.00` is a change (Coupa changed it).
/// Applications compare in order; `applied` and `problem` are the ERP's own, not content.
fn same_content(
    stored: &ErpPayPaymentRecord,
    applications: &[ErpPaymentApplicationRecord],
    p: &ErpPayPayment,
) -> bool {
    stored.status == p.status
        && stored.payment_identifier == p.payment_identifier
        && stored.pay_from_total == decimal_text(p.pay_from_total)
        && stored.pay_from_currency == p.pay_from_currency
        && stored.pay_to_total == decimal_text(p.pay_to_total)
        && stored.pay_to_currency == p.pay_to_currency
        && stored.exchange_rate == decimal_text(p.exchange_rate)
        && stored.payee_name == p.payee_name
        && stored.pay_to_account_type == p.pay_to_account_type
        && stored.error_text == p.error_text
        && applications.len() == p.applications.len()
        && applications
            .iter()
            .zip(&p.applications)
            .all(|(s, a)| same_application(s, a))
}

fn same_application(s: &ErpPaymentApplicationRecord, a: &PayApplication) -> bool {
    s.coupa_detail_id == a.coupa_detail_id
        && s.source_type == a.source_type
        && s.coupa_invoice_id == a.coupa_invoice_id
        && s.invoice_number == a.invoice_number
        && s.amount == a.amount.to_string()
        && s.settled == Some(a.settled.to_string())
        && s.discount == Some(a.discount.to_string())
        && s.adjustment == Some(a.adjustment.to_string())
        && s.currency == a.currency
}

fn decimal_text(d: Option<Decimal>) -> Option<String> {
    d.map(|d| d.to_string())
}

/// Why an invoice detail cannot be applied to `invoice` (the ERP invoice of its Coupa id, if
/// the ERP has one), or `Ok` when it can: same number (trimmed), same currency, not cancelled.
fn check_invoice_detail(
    coupa_invoice_id: Option<i64>,
    invoice_number: Option<&str>,
    currency: &str,
    invoice: Option<&InvoiceState>,
) -> Result<(), String> {
    let number = invoice_number.map(str::trim).filter(|n| !n.is_empty());
    let (id, number) = match (coupa_invoice_id, number) {
        (None, None) => {
            return Err(
                "the payment detail names neither a Coupa invoice id nor an invoice number".into(),
            );
        }
        (None, Some(number)) => {
            return Err(format!(
                "the payment detail for invoice '{number}' has no Coupa invoice id"
            ));
        }
        (Some(id), None) => {
            return Err(format!(
                "the payment detail for Coupa invoice {id} has no invoice number"
            ));
        }
        (Some(id), Some(number)) => (id, number),
    };
    let Some(invoice) = invoice else {
        return Err(format!(
            "invoice '{number}' (Coupa id {id}) is not in the ERP"
        ));
    };
    if invoice.invoice_number.trim() != number {
        return Err(format!(
            "Coupa invoice {id} is '{}' in the ERP, but the payment names '{number}'",
            invoice.invoice_number
        ));
    }
    if !invoice
        .currency
        .trim()
        .eq_ignore_ascii_case(currency.trim())
    {
        return Err(format!(
            "invoice '{number}' is in {} in the ERP, but the payment is in {}",
            invoice.currency, currency
        ));
    }
    if invoice.status == STATUS_CANCELLED {
        return Err(format!(
            "invoice '{number}' is cancelled in the ERP ({})",
            invoice.document_number
        ));
    }
    Ok(())
}

/// The second key of a Coupa invoice id's advisory lock: its 64 bits folded into 32. Two ids
/// sharing a key only wait for each other.
fn lock_key(coupa_invoice_id: i64) -> i32 {
    (coupa_invoice_id ^ (coupa_invoice_id >> 32)) as i32
}

fn read_payment(row: &AnyRow) -> Result<ErpPayPaymentRecord, ErpError> {
    let id: i64 = row
        .try_get("coupa_payment_id")
        .map_err(unavailable("reading a Coupa Pay payment"))?;
    let what = || format!("reading Coupa Pay payment {id}");
    let opt = |col: &str| -> Result<Option<String>, ErpError> {
        row.try_get(col).map_err(unavailable(what()))
    };
    Ok(ErpPayPaymentRecord {
        coupa_payment_id: id,
        status: row.try_get("status").map_err(unavailable(what()))?,
        payment_identifier: opt("payment_identifier")?,
        pay_from_total: opt("pay_from_total")?,
        pay_from_currency: opt("pay_from_currency")?,
        pay_to_total: opt("pay_to_total")?,
        pay_to_currency: opt("pay_to_currency")?,
        exchange_rate: opt("exchange_rate")?,
        payee_name: opt("payee_name")?,
        pay_to_account_type: opt("pay_to_account_type")?,
        error_text: opt("error_text")?,
        updated_at: opt("updated_at")?,
        exported_at: opt("exported_at")?,
        changed_at: opt("changed_at")?,
    })
}

fn read_application(row: &AnyRow) -> Result<ErpPaymentApplicationRecord, ErpError> {
    let id: i64 = row
        .try_get("id")
        .map_err(unavailable("reading a payment application"))?;
    let what = || format!("reading payment application {id}");
    let opt = |col: &str| -> Result<Option<String>, ErpError> {
        row.try_get(col).map_err(unavailable(what()))
    };
    let text =
        |col: &str| -> Result<String, ErpError> { row.try_get(col).map_err(unavailable(what())) };
    let int = |col: &str| -> Result<Option<i64>, ErpError> {
        row.try_get(col).map_err(unavailable(what()))
    };
    Ok(ErpPaymentApplicationRecord {
        coupa_payment_id: row
            .try_get("coupa_payment_id")
            .map_err(unavailable(what()))?,
        coupa_detail_id: int("coupa_detail_id")?,
        source_type: opt("source_type")?,
        coupa_invoice_id: int("coupa_invoice_id")?,
        invoice_number: opt("invoice_number")?,
        amount: text("amount")?,
        settled: opt("settled")?,
        discount: opt("discount")?,
        adjustment: opt("adjustment")?,
        currency: text("currency")?,
        applied: row
            .try_get::<i64, _>("applied")
            .map_err(unavailable(what()))?
            != 0,
        problem: opt("problem")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).expect("a decimal literal")
    }

    fn payment() -> ErpPayPayment {
        ErpPayPayment {
            coupa_payment_id: 7,
            status: PAY_STATUS_SETTLES.into(),
            payment_identifier: Some("PMT-7".into()),
            pay_from_total: Some(dec("20000.00")),
            pay_from_currency: Some("USD".into()),
            pay_to_total: Some(dec("18246.91")),
            pay_to_currency: Some("EUR".into()),
            exchange_rate: Some(dec("0.912345678")),
            payee_name: Some("Acme".into()),
            pay_to_account_type: Some("CoupaPay::SupplierPaymentAccount".into()),
            error_text: None,
            coupa_updated_at: DateTime::parse_from_rfc3339("2026-03-01T10:00:00Z")
                .expect("a timestamp literal")
                .with_timezone(&Utc),
            applications: vec![PayApplication {
                coupa_detail_id: Some(70),
                source_type: Some("InvoiceHeader".into()),
                coupa_invoice_id: Some(1001),
                invoice_number: Some("INV-1".into()),
                amount: dec("18246.91"),
                settled: dec("18246.91"),
                discount: dec("0"),
                adjustment: dec("0.00"),
                currency: "EUR".into(),
            }],
        }
    }

    /// The rows booking `p` writes, as they read back.
    fn stored(p: &ErpPayPayment) -> (ErpPayPaymentRecord, Vec<ErpPaymentApplicationRecord>) {
        let record = ErpPayPaymentRecord {
            coupa_payment_id: p.coupa_payment_id,
            status: p.status.clone(),
            payment_identifier: p.payment_identifier.clone(),
            pay_from_total: decimal_text(p.pay_from_total),
            pay_from_currency: p.pay_from_currency.clone(),
            pay_to_total: decimal_text(p.pay_to_total),
            pay_to_currency: p.pay_to_currency.clone(),
            exchange_rate: decimal_text(p.exchange_rate),
            payee_name: p.payee_name.clone(),
            pay_to_account_type: p.pay_to_account_type.clone(),
            error_text: p.error_text.clone(),
            updated_at: Some(timestamp(p.coupa_updated_at)),
            exported_at: Some("2026-03-01T10:05:00.000000Z".into()),
            changed_at: Some("2026-03-01T10:05:00.000000Z".into()),
        };
        let applications = p
            .applications
            .iter()
            .map(|a| ErpPaymentApplicationRecord {
                coupa_payment_id: p.coupa_payment_id,
                coupa_detail_id: a.coupa_detail_id,
                source_type: a.source_type.clone(),
                coupa_invoice_id: a.coupa_invoice_id,
                invoice_number: a.invoice_number.clone(),
                amount: a.amount.to_string(),
                settled: Some(a.settled.to_string()),
                discount: Some(a.discount.to_string()),
                adjustment: Some(a.adjustment.to_string()),
                currency: a.currency.clone(),
                applied: true,
                problem: None,
            })
            .collect();
        (record, applications)
    }

    #[test]
    fn same_content_ignores_the_version_and_the_erps_own_columns() {
        let p = payment();
        let (record, mut applications) = stored(&p);
        assert!(same_content(&record, &applications, &p));
        let mut later = p.clone();
        later.coupa_updated_at += chrono::Duration::hours(1);
        assert!(same_content(&record, &applications, &later));
        applications[0].applied = false;
        applications[0].problem = Some("invoice 'INV-1' (Coupa id 1001) is not in the ERP".into());
        assert!(same_content(&record, &applications, &p));
    }

    #[test]
    fn a_scale_change_is_a_change() {
        let p = payment();
        let (record, applications) = stored(&p);
        let mut rescaled = p.clone();
        rescaled.pay_from_total = Some(dec("20000.0"));
        assert_eq!(rescaled.pay_from_total, p.pay_from_total, "same value");
        assert!(!same_content(&record, &applications, &rescaled));

        let mut rescaled = p.clone();
        rescaled.applications[0].discount = dec("0.00");
        assert!(!same_content(&record, &applications, &rescaled));

        let mut status = p.clone();
        status.status = "cancelled".into();
        assert!(!same_content(&record, &applications, &status));

        let mut more = p.clone();
        more.applications.push(p.applications[0].clone());
        assert!(!same_content(&record, &applications, &more));

        // A row written before the columns existed has no settled amount: a change.
        let mut old = applications.clone();
        old[0].settled = None;
        assert!(!same_content(&record, &old, &p));
    }

    #[test]
    fn versions_compare_at_stored_precision() {
        let p = payment();
        let (record, _) = stored(&p);
        assert!(!is_older(p.coupa_updated_at, &record, "t").expect("readable"));
        let earlier = p.coupa_updated_at - chrono::Duration::microseconds(1);
        assert!(is_older(earlier, &record, "t").expect("readable"));
        // Nanoseconds below the stored microseconds are not "older".
        let nanos = p.coupa_updated_at + chrono::Duration::nanoseconds(999);
        assert!(!is_older(nanos, &record, "t").expect("readable"));
        let none = ErpPayPaymentRecord {
            updated_at: None,
            ..record.clone()
        };
        assert!(!is_older(earlier, &none, "t").expect("no version"));
        let bad = ErpPayPaymentRecord {
            updated_at: Some("yesterday".into()),
            ..record
        };
        let err = is_older(earlier, &bad, "booking 7").expect_err("bad text");
        assert!(err.to_string().contains("'yesterday'"), "{err}");
    }

    #[test]
    fn detail_checks_name_the_invoice() {
        let inv = InvoiceState {
            document_number: "ERP-000012".into(),
            invoice_number: "INV-9".into(),
            currency: "USD".into(),
            total: "100.00".into(),
            status: STATUS_OPEN.into(),
        };
        assert_eq!(
            check_invoice_detail(Some(123), Some(" INV-9 "), "usd", Some(&inv)),
            Ok(())
        );
        assert_eq!(
            check_invoice_detail(Some(123), Some("INV-9"), "USD", None),
            Err("invoice 'INV-9' (Coupa id 123) is not in the ERP".into())
        );
        assert_eq!(
            check_invoice_detail(
                Some(123),
                Some("INV-9"),
                "USD",
                Some(&InvoiceState {
                    invoice_number: "INV-8".into(),
                    ..inv.clone()
                })
            ),
            Err("Coupa invoice 123 is 'INV-8' in the ERP, but the payment names 'INV-9'".into())
        );
        assert_eq!(
            check_invoice_detail(Some(123), Some("INV-9"), "EUR", Some(&inv)),
            Err("invoice 'INV-9' is in USD in the ERP, but the payment is in EUR".into())
        );
        assert_eq!(
            check_invoice_detail(
                Some(123),
                Some("INV-9"),
                "USD",
                Some(&InvoiceState {
                    status: STATUS_CANCELLED.into(),
                    ..inv.clone()
                })
            ),
            Err("invoice 'INV-9' is cancelled in the ERP (ERP-000012)".into())
        );
        assert_eq!(
            check_invoice_detail(None, Some("INV-9"), "USD", Some(&inv)),
            Err("the payment detail for invoice 'INV-9' has no Coupa invoice id".into())
        );
        assert_eq!(
            check_invoice_detail(Some(123), Some("  "), "USD", Some(&inv)),
            Err("the payment detail for Coupa invoice 123 has no invoice number".into())
        );
        assert!(check_invoice_detail(None, None, "USD", None).is_err());
    }

    #[test]
    fn lock_keys_fold_both_halves() {
        assert_eq!(lock_key(42), 42);
        assert_ne!(lock_key(1 << 32), lock_key(0));
        assert_eq!(lock_key(-1), 0);
    }
}
