//! [`SqlErp`], the embedded reference ERP: a small AP ledger in SQLite or PostgreSQL that
//! behaves like a real one where the flows care. It refuses invoices of unknown or inactive
//! suppliers and of closed periods (permanently, with every reason), numbers accepted invoices
//! `ERP-000001`, `ERP-000002`, ... without gaps, and is idempotent by Coupa invoice id even when
//! the same invoice is posted concurrently.

use std::collections::{BTreeSet, HashMap};
use std::str::FromStr;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::{
    BoxFuture, CancelOutcome, Erp, ErpError, ErpInvoice, ErpInvoiceLine, ErpInvoiceRecord,
    ErpPayPayment, ErpPayment, MalformedPayment, PayBooking, PaymentSync, PostOutcome, schema,
};
use crate::db::{self, Backend, Db, placeholders, timestamp};

/// Lines per `INSERT`: 7 parameters each (a power of two: see [`db::row_chunks`]).
const LINES_PER_INSERT: usize = 64;
/// Invoice headers per `INSERT`: 9 parameters each (a power of two).
const HEADERS_PER_INSERT: usize = 32;
/// Invoices per batch transaction (their ids, suppliers and periods are `IN` lists).
const INVOICES_PER_BATCH: usize = 256;
pub(super) const DATE_FORMAT: &str = "%Y-%m-%d";
const HEADER_COLUMNS: &str = "document_number, coupa_invoice_id, invoice_number, supplier_number, \
                              supplier_name, invoice_date, currency, total, status, created_at";

/// The embedded ERP. Cheap to clone; clones share one pool.
#[derive(Clone, Debug)]
pub struct SqlErp {
    db: Db,
}

pub(super) fn unavailable(what: impl Into<String>) -> impl FnOnce(sqlx::Error) -> ErpError {
    let what = what.into();
    move |e| ErpError::Unavailable(format!("{what}: {e}"))
}

/// The ERP's document number for counter value `n`.
pub fn document_number(n: i64) -> String {
    format!("ERP-{n:06}")
}

/// The accounting period (`YYYY-MM`) of a date.
pub fn period_of(date: NaiveDate) -> String {
    date.format("%Y-%m").to_string()
}

fn valid_period(period: &str) -> bool {
    NaiveDate::parse_from_str(&format!("{period}-01"), DATE_FORMAT).is_ok() && period.len() == 7
}

impl SqlErp {
    /// Connects to `url` (`sqlite://...`, `postgres://...`) and creates or updates the ledger's
    /// tables.
    pub async fn connect(url: &str) -> Result<SqlErp, ErpError> {
        let db = Db::connect(url)
            .await
            .map_err(|e| ErpError::Unavailable(e.to_string()))?;
        SqlErp::open(db).await
    }

    /// Connects to an ERP whose schema is current, creating and changing nothing: for what
    /// must leave the ERP as it found it (`sync --dry-run`). A missing or outdated schema is
    /// an error that says how to get it current.
    pub async fn connect_current(url: &str) -> Result<SqlErp, ErpError> {
        match SqlErp::schema_state(url).await? {
            db::SchemaState::Current { .. } => {}
            other => {
                return Err(ErpError::Unavailable(format!(
                    "{}: {other}; `coupa-bridge doctor --fix` (or any sync) brings it up to date",
                    db::redact_url(url)
                )));
            }
        }
        let db = Db::connect(url)
            .await
            .map_err(|e| ErpError::Unavailable(e.to_string()))?;
        Ok(SqlErp { db })
    }

    /// Where the ledger's schema stands at `url`, creating nothing (not even a SQLite file).
    /// `Err` when the database cannot be reached.
    pub async fn schema_state(url: &str) -> Result<db::SchemaState, ErpError> {
        let latest = schema::MIGRATIONS.last().map_or(0, |m| m.version);
        if db::sqlite_file(url).is_some_and(|path| !path.exists()) {
            return Ok(db::SchemaState::Missing { latest });
        }
        let db = Db::connect(url)
            .await
            .map_err(|e| ErpError::Unavailable(e.to_string()))?;
        let state = db
            .schema_state(schema::COMPONENT, schema::MIGRATIONS)
            .await
            .map_err(unavailable("reading the ERP's schema version"));
        db.close().await;
        state
    }

    /// Uses an existing pool (e.g. shared with the state store).
    pub async fn open(db: Db) -> Result<SqlErp, ErpError> {
        db.migrate(schema::COMPONENT, schema::MIGRATIONS)
            .await
            .map_err(|e| ErpError::Unavailable(e.to_string()))?;
        Ok(SqlErp { db })
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Adds a supplier to the master, or updates its name and active flag.
    pub async fn upsert_supplier(
        &self,
        number: &str,
        name: &str,
        active: bool,
    ) -> Result<(), ErpError> {
        self.upsert_suppliers(&[(number, name, active)]).await
    }

    /// [`SqlErp::upsert_supplier`] for many `(number, name, active)`, in one transaction.
    pub async fn upsert_suppliers(&self, suppliers: &[(&str, &str, bool)]) -> Result<(), ErpError> {
        let what = || format!("saving {} suppliers", suppliers.len());
        let mut tx = self.db.begin_write().await.map_err(unavailable(what()))?;
        for (number, name, active) in suppliers {
            sqlx::query(
                "INSERT INTO erp_suppliers (number, name, active) VALUES ($1, $2, $3) \
                 ON CONFLICT (number) DO UPDATE SET name = excluded.name, active = excluded.active",
            )
            .bind(*number)
            .bind(*name)
            .bind(*active)
            .execute(tx.conn())
            .await
            .map_err(unavailable(format!("saving supplier '{number}'")))?;
        }
        tx.commit().await.map_err(unavailable(what()))
    }

    /// Opens or closes the accounting period `YYYY-MM`.
    pub async fn set_period(&self, period: &str, open: bool) -> Result<(), ErpError> {
        if !valid_period(period) {
            return Err(ErpError::Unavailable(format!(
                "setting period '{period}': not a YYYY-MM period"
            )));
        }
        let what = || format!("setting period {period}");
        let mut tx = self.db.begin_write().await.map_err(unavailable(what()))?;
        sqlx::query(
            "INSERT INTO erp_periods (period, open) VALUES ($1, $2) \
             ON CONFLICT (period) DO UPDATE SET open = excluded.open",
        )
        .bind(period)
        .bind(open)
        .execute(tx.conn())
        .await
        .map_err(unavailable(what()))?;
        tx.commit().await.map_err(unavailable(what()))
    }

    /// Every invoice header, in posting order.
    pub async fn invoices(&self) -> Result<Vec<ErpInvoiceRecord>, ErpError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {HEADER_COLUMNS} FROM erp_invoices ORDER BY id"
        )))
        .fetch_all(self.db.pool())
        .await
        .map_err(unavailable("listing invoices"))?;
        rows.iter().map(read_header).collect()
    }

    /// The invoice header of one Coupa invoice, if the ERP has it.
    pub async fn invoice(
        &self,
        coupa_invoice_id: i64,
    ) -> Result<Option<ErpInvoiceRecord>, ErpError> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {HEADER_COLUMNS} FROM erp_invoices WHERE coupa_invoice_id = $1"
        )))
        .bind(coupa_invoice_id)
        .fetch_optional(self.db.pool())
        .await
        .map_err(unavailable(format!(
            "reading Coupa invoice {coupa_invoice_id}"
        )))?;
        row.as_ref().map(read_header).transpose()
    }

    /// The lines of one Coupa invoice, by line number (empty if the ERP does not have it).
    pub async fn invoice_lines(
        &self,
        coupa_invoice_id: i64,
    ) -> Result<Vec<ErpInvoiceLine>, ErpError> {
        let what = || format!("reading the lines of Coupa invoice {coupa_invoice_id}");
        let rows = sqlx::query(
            "SELECT l.line_num, l.description, l.quantity, l.price, l.total, l.account_code \
             FROM erp_invoice_lines l JOIN erp_invoices i ON i.id = l.invoice_id \
             WHERE i.coupa_invoice_id = $1 ORDER BY l.line_num",
        )
        .bind(coupa_invoice_id)
        .fetch_all(self.db.pool())
        .await
        .map_err(unavailable(what()))?;
        rows.iter()
            .map(|row| {
                let line_num: i64 = row.try_get("line_num").map_err(unavailable(what()))?;
                let what =
                    || format!("reading line {line_num} of Coupa invoice {coupa_invoice_id}");
                let amount = |col: &str| -> Result<Decimal, ErpError> {
                    let s: String = row.try_get(col).map_err(unavailable(what()))?;
                    parse_amount(&what(), col, &s)
                };
                Ok(ErpInvoiceLine {
                    coupa_line_id: None,
                    line_num,
                    description: row.try_get("description").map_err(unavailable(what()))?,
                    quantity: amount("quantity")?,
                    price: amount("price")?,
                    total: amount("total")?,
                    account_code: row.try_get("account_code").map_err(unavailable(what()))?,
                })
            })
            .collect()
    }

    /// Why the ERP would refuse `invoice` now (its supplier, its period), read without posting
    /// anything: empty when it would be accepted. What `sync --dry-run` shows.
    pub async fn refusals(&self, invoice: &ErpInvoice) -> Result<Vec<String>, ErpError> {
        let what = format!("judging invoice {}", invoice.invoice_number);
        let mut conn = self.db.pool().acquire().await.map_err(unavailable(&what))?;
        let (supplier, open) = master_data(&mut conn, invoice, &what).await?;
        Ok(judge(invoice, supplier, open).0)
    }

    async fn post(&self, invoice: &ErpInvoice) -> Result<PostOutcome, ErpError> {
        let id = invoice.coupa_invoice_id;
        let what = format!("posting invoice {} (Coupa id {id})", invoice.invoice_number);
        let mut tx = self.db.begin_write().await.map_err(unavailable(&what))?;

        if let Some(document_number) = existing(tx.conn(), id).await.map_err(unavailable(&what))? {
            tx.rollback().await.map_err(unavailable(&what))?;
            return Ok(PostOutcome::Accepted {
                document_number,
                already_posted: true,
            });
        }

        let (supplier, open) = master_data(tx.conn(), invoice, &what).await?;
        let (reasons, master_name) = judge(invoice, supplier, open);
        if !reasons.is_empty() {
            tx.rollback().await.map_err(unavailable(&what))?;
            return Ok(PostOutcome::Rejected { reasons });
        }

        let counter: i64 = sqlx::query(
            "UPDATE erp_counters SET value = value + 1 WHERE name = 'invoice' RETURNING value",
        )
        .fetch_one(tx.conn())
        .await
        .and_then(|row| row.try_get("value"))
        .map_err(unavailable(format!("{what}: numbering the document")))?;
        let document_number = document_number(counter);
        let now = timestamp(db::now());
        let inserted = sqlx::query(
            "INSERT INTO erp_invoices (document_number, coupa_invoice_id, invoice_number, \
             supplier_number, supplier_name, invoice_date, currency, total, status, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'open', $9, $9) \
             ON CONFLICT (coupa_invoice_id) DO NOTHING RETURNING id",
        )
        .bind(&document_number)
        .bind(id)
        .bind(&invoice.invoice_number)
        .bind(invoice.supplier_number.as_deref())
        .bind(invoice.supplier_name.as_deref().or(master_name.as_deref()))
        .bind(invoice.invoice_date.format(DATE_FORMAT).to_string())
        .bind(&invoice.currency)
        .bind(invoice.total.to_string())
        .bind(&now)
        .fetch_optional(tx.conn())
        .await
        .and_then(|row| row.map(|r| r.try_get::<i64, _>("id")).transpose());
        let invoice_id = match inserted {
            Ok(Some(invoice_id)) => invoice_id,
            // A concurrent post of the same invoice committed first (its row appeared after our
            // check): ours loses and answers with the winner's number.
            Ok(None) => return self.lost_race(tx, id, &what).await,
            Err(e) if db::is_unique_violation(&e) => return self.lost_race(tx, id, &what).await,
            Err(e) => {
                return Err(unavailable(format!("{what}: inserting {document_number}"))(
                    e,
                ));
            }
        };

        for chunk in db::row_chunks(&invoice.lines, LINES_PER_INSERT) {
            let rows: Vec<String> = (0..chunk.len())
                .map(|i| format!("({})", placeholders(1 + i * 7, 7)))
                .collect();
            let sql = format!(
                "INSERT INTO erp_invoice_lines (invoice_id, line_num, description, quantity, \
                 price, total, account_code) VALUES {}",
                rows.join(", ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for line in chunk {
                query = query
                    .bind(invoice_id)
                    .bind(line.line_num)
                    .bind(line.description.as_str())
                    .bind(line.quantity.to_string())
                    .bind(line.price.to_string())
                    .bind(line.total.to_string())
                    .bind(line.account_code.as_deref());
            }
            query.execute(tx.conn()).await.map_err(unavailable(format!(
                "{what}: inserting the lines of {document_number}"
            )))?;
        }
        // Coupa Pay payments booked before the ERP had this invoice apply to it now.
        self.apply_waiting(tx.conn(), invoice, &document_number)
            .await?;
        match tx.commit().await {
            Ok(()) => Ok(PostOutcome::Accepted {
                document_number,
                already_posted: false,
            }),
            Err(e) if db::is_unique_violation(&e) => self.answer_for_winner(id, &what).await,
            Err(e) => Err(unavailable(format!("{what}: committing {document_number}"))(e)),
        }
    }

    async fn lost_race(
        &self,
        tx: db::WriteTx,
        coupa_invoice_id: i64,
        what: &str,
    ) -> Result<PostOutcome, ErpError> {
        // Undo the counter increment so numbers stay gapless.
        tx.rollback().await.map_err(unavailable(what))?;
        self.answer_for_winner(coupa_invoice_id, what).await
    }

    async fn answer_for_winner(
        &self,
        coupa_invoice_id: i64,
        what: &str,
    ) -> Result<PostOutcome, ErpError> {
        let mut conn = self.db.pool().acquire().await.map_err(unavailable(what))?;
        match existing(&mut conn, coupa_invoice_id)
            .await
            .map_err(unavailable(what))?
        {
            Some(document_number) => Ok(PostOutcome::Accepted {
                document_number,
                already_posted: true,
            }),
            None => Err(ErpError::Unavailable(format!(
                "{what}: a conflicting invoice was reported but none is stored; try again"
            ))),
        }
    }

    /// [`Erp::post_invoices`]: on SQLite, the whole batch in one transaction (a handful of
    /// statements and one durable commit for up to [`INVOICES_PER_BATCH`] invoices, instead of
    /// about nine statements and a commit each). Each invoice gets the answer [`SqlErp::post`]
    /// would give it: the same checks and reasons, numbers in batch order without gaps. Anything
    /// unusual (a duplicate in the batch, a unique-constraint conflict) rolls the batch back and
    /// posts the invoices one by one, where those cases are handled. PostgreSQL posts one by
    /// one: there, concurrent writers and the advisory locks of Coupa Pay bookings are ordered
    /// per invoice.
    async fn post_many(&self, invoices: &[ErpInvoice]) -> Vec<Result<PostOutcome, ErpError>> {
        let mut out = Vec::with_capacity(invoices.len());
        if self.db.backend() != Backend::Sqlite || invoices.len() < 2 {
            for invoice in invoices {
                out.push(self.post(invoice).await);
            }
            return out;
        }
        for chunk in invoices.chunks(INVOICES_PER_BATCH) {
            match self.post_batch(chunk).await {
                Ok(Some(outcomes)) => out.extend(outcomes.into_iter().map(Ok)),
                Ok(None) => {
                    for invoice in chunk {
                        out.push(self.post(invoice).await);
                    }
                }
                Err(e) => out.extend(chunk.iter().map(|_| Err(e.clone()))),
            }
        }
        out
    }

    /// One transaction for `invoices` (see [`SqlErp::post_many`]); `None` when it was rolled
    /// back for the invoices to be posted one by one.
    async fn post_batch(
        &self,
        invoices: &[ErpInvoice],
    ) -> Result<Option<Vec<PostOutcome>>, ErpError> {
        let what = format!("posting {} invoices", invoices.len());
        let ids: BTreeSet<i64> = invoices.iter().map(|i| i.coupa_invoice_id).collect();
        if ids.len() != invoices.len() {
            return Ok(None);
        }
        let mut tx = self.db.begin_write().await.map_err(unavailable(&what))?;

        let ids: Vec<i64> = db::in_list(&ids.into_iter().collect::<Vec<_>>());
        let mut existing: HashMap<i64, String> = HashMap::new();
        let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT coupa_invoice_id, document_number FROM erp_invoices \
             WHERE coupa_invoice_id IN ({})",
            placeholders(1, ids.len())
        )));
        for id in &ids {
            query = query.bind(*id);
        }
        for row in query
            .fetch_all(tx.conn())
            .await
            .map_err(unavailable(format!("{what}: reading the invoices it has")))?
        {
            let read = || -> Result<(i64, String), sqlx::Error> {
                Ok((
                    row.try_get("coupa_invoice_id")?,
                    row.try_get("document_number")?,
                ))
            };
            let (id, number) = read().map_err(unavailable(format!("{what}: reading")))?;
            existing.insert(id, number);
        }

        let numbers: Vec<&str> = db::in_list(
            &invoices
                .iter()
                .filter_map(supplier_number)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect::<Vec<_>>(),
        );
        let mut suppliers: HashMap<String, (String, i64)> = HashMap::new();
        if !numbers.is_empty() {
            let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT number, name, CASE WHEN active THEN 1 ELSE 0 END AS active \
                 FROM erp_suppliers WHERE number IN ({})",
                placeholders(1, numbers.len())
            )));
            for number in &numbers {
                query = query.bind(*number);
            }
            for row in query
                .fetch_all(tx.conn())
                .await
                .map_err(unavailable(format!("{what}: reading the suppliers")))?
            {
                let read = || -> Result<(String, String, i64), sqlx::Error> {
                    Ok((
                        row.try_get("number")?,
                        row.try_get("name")?,
                        row.try_get("active")?,
                    ))
                };
                let (number, name, active) =
                    read().map_err(unavailable(format!("{what}: reading the suppliers")))?;
                suppliers.insert(number, (name, active));
            }
        }

        let periods: Vec<String> = db::in_list(
            &invoices
                .iter()
                .map(|i| period_of(i.invoice_date))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect::<Vec<_>>(),
        );
        let mut open: HashMap<String, i64> = HashMap::new();
        let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT period, CASE WHEN open THEN 1 ELSE 0 END AS open FROM erp_periods \
             WHERE period IN ({})",
            placeholders(1, periods.len())
        )));
        for period in &periods {
            query = query.bind(period.as_str());
        }
        for row in query
            .fetch_all(tx.conn())
            .await
            .map_err(unavailable(format!("{what}: reading the periods")))?
        {
            let read = || -> Result<(String, i64), sqlx::Error> {
                Ok((row.try_get("period")?, row.try_get("open")?))
            };
            let (period, flag) =
                read().map_err(unavailable(format!("{what}: reading the periods")))?;
            open.insert(period, flag);
        }

        // Each invoice's answer; `None` for those to insert, with the master's supplier name.
        let mut outcomes: Vec<Option<PostOutcome>> = Vec::with_capacity(invoices.len());
        let mut accepted: Vec<(usize, Option<String>)> = Vec::new();
        for (i, invoice) in invoices.iter().enumerate() {
            if let Some(number) = existing.get(&invoice.coupa_invoice_id) {
                outcomes.push(Some(PostOutcome::Accepted {
                    document_number: number.clone(),
                    already_posted: true,
                }));
                continue;
            }
            let supplier = supplier_number(invoice).and_then(|n| suppliers.get(n).cloned());
            let period_open = open.get(&period_of(invoice.invoice_date)).copied();
            let (reasons, master_name) = judge(invoice, supplier, period_open);
            if reasons.is_empty() {
                outcomes.push(None);
                accepted.push((i, master_name));
            } else {
                outcomes.push(Some(PostOutcome::Rejected { reasons }));
            }
        }
        if accepted.is_empty() {
            tx.rollback().await.map_err(unavailable(&what))?;
            return Ok(Some(outcomes.into_iter().flatten().collect()));
        }

        let count = i64::try_from(accepted.len()).unwrap_or(i64::MAX);
        let last: i64 = sqlx::query(
            "UPDATE erp_counters SET value = value + $1 WHERE name = 'invoice' RETURNING value",
        )
        .bind(count)
        .fetch_one(tx.conn())
        .await
        .and_then(|row| row.try_get("value"))
        .map_err(unavailable(format!("{what}: numbering the documents")))?;
        let now = timestamp(db::now());
        // Document numbers in batch order, from the first of the counter's new range.
        let numbered: Vec<(usize, Option<String>, String)> = accepted
            .into_iter()
            .zip(last - count + 1..)
            .map(|((i, name), n)| (i, name, document_number(n)))
            .collect();

        let mut row_ids: HashMap<i64, i64> = HashMap::new();
        for chunk in db::row_chunks(&numbered, HEADERS_PER_INSERT) {
            let rows: Vec<String> = (0..chunk.len())
                .map(|r| {
                    let p = |k: usize| format!("${}", 1 + r * 9 + k);
                    format!(
                        "({}, {}, {}, {}, {}, {}, {}, {}, 'open', {}, {})",
                        p(0),
                        p(1),
                        p(2),
                        p(3),
                        p(4),
                        p(5),
                        p(6),
                        p(7),
                        p(8),
                        p(8)
                    )
                })
                .collect();
            let sql = format!(
                "INSERT INTO erp_invoices (document_number, coupa_invoice_id, invoice_number, \
                 supplier_number, supplier_name, invoice_date, currency, total, status, \
                 created_at, updated_at) VALUES {} \
                 ON CONFLICT (coupa_invoice_id) DO NOTHING RETURNING id, coupa_invoice_id",
                rows.join(", ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (i, master_name, number) in chunk {
                let invoice = &invoices[*i];
                query = query
                    .bind(number.as_str())
                    .bind(invoice.coupa_invoice_id)
                    .bind(invoice.invoice_number.as_str())
                    .bind(invoice.supplier_number.as_deref())
                    .bind(invoice.supplier_name.as_deref().or(master_name.as_deref()))
                    .bind(invoice.invoice_date.format(DATE_FORMAT).to_string())
                    .bind(invoice.currency.as_str())
                    .bind(invoice.total.to_string())
                    .bind(now.as_str());
            }
            let rows = match query.fetch_all(tx.conn()).await {
                Ok(rows) => rows,
                // A document number already taken (the counter behind the table): the one by
                // one path reports it per invoice.
                Err(e) if db::is_unique_violation(&e) => {
                    tx.rollback().await.map_err(unavailable(&what))?;
                    return Ok(None);
                }
                Err(e) => return Err(unavailable(format!("{what}: inserting"))(e)),
            };
            for row in &rows {
                let read = || -> Result<(i64, i64), sqlx::Error> {
                    Ok((row.try_get("coupa_invoice_id")?, row.try_get("id")?))
                };
                let (coupa_id, row_id) =
                    read().map_err(unavailable(format!("{what}: inserting")))?;
                row_ids.insert(coupa_id, row_id);
            }
            if rows.len() != chunk.len() {
                // Another writer posted one of them meanwhile: one by one sorts it out.
                tx.rollback().await.map_err(unavailable(&what))?;
                return Ok(None);
            }
        }

        let mut lines: Vec<(i64, &ErpInvoiceLine)> = Vec::new();
        for (i, _, _) in &numbered {
            let invoice = &invoices[*i];
            let Some(row_id) = row_ids.get(&invoice.coupa_invoice_id) else {
                tx.rollback().await.map_err(unavailable(&what))?;
                return Ok(None);
            };
            lines.extend(invoice.lines.iter().map(|l| (*row_id, l)));
        }
        for chunk in db::row_chunks(&lines, LINES_PER_INSERT) {
            let rows: Vec<String> = (0..chunk.len())
                .map(|i| format!("({})", placeholders(1 + i * 7, 7)))
                .collect();
            let sql = format!(
                "INSERT INTO erp_invoice_lines (invoice_id, line_num, description, quantity, \
                 price, total, account_code) VALUES {}",
                rows.join(", ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (row_id, line) in chunk {
                query = query
                    .bind(*row_id)
                    .bind(line.line_num)
                    .bind(line.description.as_str())
                    .bind(line.quantity.to_string())
                    .bind(line.price.to_string())
                    .bind(line.total.to_string())
                    .bind(line.account_code.as_deref());
            }
            query
                .execute(tx.conn())
                .await
                .map_err(unavailable(format!("{what}: inserting the lines")))?;
        }

        // Coupa Pay payments booked before the ERP had these invoices apply to them now: the
        // same as `post` does per invoice, for those that have any waiting.
        let inserted: Vec<i64> = db::in_list(
            &numbered
                .iter()
                .map(|(i, _, _)| invoices[*i].coupa_invoice_id)
                .collect::<Vec<_>>(),
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT DISTINCT coupa_invoice_id FROM erp_payment_applications \
             WHERE coupa_invoice_id IN ({}) AND NOT applied AND problem IS NOT NULL",
            placeholders(1, inserted.len())
        )));
        for id in &inserted {
            query = query.bind(*id);
        }
        let waiting: BTreeSet<i64> = query
            .fetch_all(tx.conn())
            .await
            .map_err(unavailable(format!(
                "{what}: reading waiting Coupa Pay details"
            )))?
            .iter()
            .map(|row| row.try_get("coupa_invoice_id"))
            .collect::<Result<_, _>>()
            .map_err(unavailable(format!(
                "{what}: reading waiting Coupa Pay details"
            )))?;
        for (i, _, number) in &numbered {
            let invoice = &invoices[*i];
            if waiting.contains(&invoice.coupa_invoice_id) {
                self.apply_waiting(tx.conn(), invoice, number).await?;
            }
        }
        tx.commit()
            .await
            .map_err(unavailable(format!("{what}: committing")))?;

        for (i, _, number) in numbered {
            outcomes[i] = Some(PostOutcome::Accepted {
                document_number: number,
                already_posted: false,
            });
        }
        Ok(Some(outcomes.into_iter().flatten().collect()))
    }

    async fn cancel(&self, coupa_invoice_id: i64) -> Result<CancelOutcome, ErpError> {
        let what = format!("cancelling Coupa invoice {coupa_invoice_id}");
        let mut tx = self.db.begin_write().await.map_err(unavailable(&what))?;
        let row = sqlx::query(
            "SELECT document_number, status FROM erp_invoices WHERE coupa_invoice_id = $1",
        )
        .bind(coupa_invoice_id)
        .fetch_optional(tx.conn())
        .await
        .map_err(unavailable(&what))?;
        let Some(row) = row else {
            tx.rollback().await.map_err(unavailable(&what))?;
            return Ok(CancelOutcome::NotPosted);
        };
        let (document_number, status): (String, String) =
            (|| Ok::<_, sqlx::Error>((row.try_get("document_number")?, row.try_get("status")?)))()
                .map_err(unavailable(&what))?;
        if status == "cancelled" {
            tx.rollback().await.map_err(unavailable(&what))?;
            return Ok(CancelOutcome::AlreadyCancelled { document_number });
        }
        if status == "paid" {
            // The reference ERP follows Coupa: a voided invoice is cancelled even if the ERP
            // already paid it. Say so, since a real ERP would want a credit note.
            tracing::warn!(
                coupa_invoice_id, document_number = %document_number,
                "cancelling an ERP invoice that is already paid"
            );
        }
        sqlx::query("UPDATE erp_invoices SET status = 'cancelled', updated_at = $1 WHERE coupa_invoice_id = $2")
            .bind(timestamp(db::now()))
            .bind(coupa_invoice_id)
            .execute(tx.conn())
            .await
            .map_err(unavailable(format!("{what}: updating {document_number}")))?;
        tx.commit()
            .await
            .map_err(unavailable(format!("{what}: committing {document_number}")))?;
        Ok(CancelOutcome::Cancelled { document_number })
    }
}

impl Erp for SqlErp {
    fn post_invoice<'a>(
        &'a self,
        invoice: &'a ErpInvoice,
    ) -> BoxFuture<'a, Result<PostOutcome, ErpError>> {
        Box::pin(self.post(invoice))
    }

    fn post_invoices<'a>(
        &'a self,
        invoices: &'a [ErpInvoice],
    ) -> BoxFuture<'a, Vec<Result<PostOutcome, ErpError>>> {
        Box::pin(self.post_many(invoices))
    }

    fn cancel_invoice<'a>(
        &'a self,
        coupa_invoice_id: i64,
    ) -> BoxFuture<'a, Result<CancelOutcome, ErpError>> {
        Box::pin(self.cancel(coupa_invoice_id))
    }

    fn pending_payments(
        &self,
        after_id: i64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<Result<ErpPayment, MalformedPayment>>, ErpError>> {
        Box::pin(self.read_pending_payments(after_id, limit))
    }

    fn settle_payments<'a>(
        &'a self,
        outcomes: &'a [(i64, PaymentSync)],
    ) -> BoxFuture<'a, Result<(), ErpError>> {
        Box::pin(self.write_payment_outcomes(outcomes))
    }

    fn book_pay_payment<'a>(
        &'a self,
        payment: &'a ErpPayPayment,
    ) -> BoxFuture<'a, Result<PayBooking, ErpError>> {
        Box::pin(self.book_pay(payment))
    }

    fn pay_problems<'a>(
        &'a self,
        coupa_payment_ids: &'a [i64],
    ) -> BoxFuture<'a, Result<HashMap<i64, Vec<String>>, ErpError>> {
        Box::pin(self.read_pay_problems(coupa_payment_ids))
    }
}

/// The invoice's supplier number as the supplier master is searched by: trimmed, if any.
fn supplier_number(invoice: &ErpInvoice) -> Option<&str> {
    invoice
        .supplier_number
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
}

/// The supplier (name, active) and whether the invoice's period is open, as the ERP's master
/// data says: what [`judge`] decides on.
async fn master_data(
    conn: &mut sqlx::AnyConnection,
    invoice: &ErpInvoice,
    what: &str,
) -> Result<(Option<(String, i64)>, Option<i64>), ErpError> {
    let supplier = match supplier_number(invoice) {
        None => None,
        Some(number) => {
            let row = sqlx::query(
                "SELECT name, CASE WHEN active THEN 1 ELSE 0 END AS active \
                     FROM erp_suppliers WHERE number = $1",
            )
            .bind(number)
            .fetch_optional(&mut *conn)
            .await
            .map_err(unavailable(format!("{what}: reading supplier '{number}'")))?;
            row.map(|row| Ok::<_, sqlx::Error>((row.try_get("name")?, row.try_get("active")?)))
                .transpose()
                .map_err(unavailable(format!("{what}: reading supplier '{number}'")))?
        }
    };
    let period = period_of(invoice.invoice_date);
    let open: Option<i64> = sqlx::query(
        "SELECT CASE WHEN open THEN 1 ELSE 0 END AS open FROM erp_periods WHERE period = $1",
    )
    .bind(&period)
    .fetch_optional(&mut *conn)
    .await
    .and_then(|row| row.map(|r| r.try_get("open")).transpose())
    .map_err(unavailable(format!("{what}: reading period {period}")))?;
    Ok((supplier, open))
}

/// Every reason the ERP refuses `invoice` (none: it is accepted), and the supplier's name in
/// the master. `supplier` is the master's (name, active) for the invoice's supplier number,
/// `period_open` the period row's open flag (no row: open).
fn judge(
    invoice: &ErpInvoice,
    supplier: Option<(String, i64)>,
    period_open: Option<i64>,
) -> (Vec<String>, Option<String>) {
    let mut reasons = Vec::new();
    let mut master_name = None;
    match supplier_number(invoice) {
        None => reasons.push(
            "the invoice has no supplier number, so it matches no supplier in the ERP supplier master"
                .to_owned(),
        ),
        Some(number) => match supplier {
            None => reasons.push(format!(
                "supplier '{number}' is not in the ERP supplier master"
            )),
            Some((name, active)) => {
                if active == 0 {
                    reasons.push(format!(
                        "supplier '{number}' ({name}) is inactive in the ERP"
                    ));
                }
                master_name = Some(name);
            }
        },
    }
    if period_open == Some(0) {
        reasons.push(format!(
            "period {} is closed",
            period_of(invoice.invoice_date)
        ));
    }
    (reasons, master_name)
}

/// The document number of the ERP invoice of a Coupa invoice, if there is one.
async fn existing(
    conn: &mut sqlx::AnyConnection,
    coupa_invoice_id: i64,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query("SELECT document_number FROM erp_invoices WHERE coupa_invoice_id = $1")
        .bind(coupa_invoice_id)
        .fetch_optional(conn)
        .await?
        .map(|row| row.try_get("document_number"))
        .transpose()
}

fn parse_amount(what: &str, col: &str, s: &str) -> Result<Decimal, ErpError> {
    Decimal::from_str(s).map_err(|e| {
        ErpError::Unavailable(format!(
            "{what}: stored {col} '{s}' is not a decimal amount: {e}"
        ))
    })
}

fn read_header(row: &AnyRow) -> Result<ErpInvoiceRecord, ErpError> {
    let document_number: String = row
        .try_get("document_number")
        .map_err(unavailable("reading an invoice"))?;
    let what = || format!("reading invoice {document_number}");
    let text =
        |col: &str| -> Result<String, ErpError> { row.try_get(col).map_err(unavailable(what())) };
    let opt = |col: &str| -> Result<Option<String>, ErpError> {
        row.try_get(col).map_err(unavailable(what()))
    };
    let date = text("invoice_date")?;
    let created = text("created_at")?;
    Ok(ErpInvoiceRecord {
        coupa_invoice_id: row
            .try_get("coupa_invoice_id")
            .map_err(unavailable(what()))?,
        invoice_number: text("invoice_number")?,
        supplier_number: opt("supplier_number")?,
        supplier_name: opt("supplier_name")?,
        invoice_date: NaiveDate::parse_from_str(&date, DATE_FORMAT).map_err(|e| {
            ErpError::Unavailable(format!("{}: stored invoice_date '{date}': {e}", what()))
        })?,
        currency: text("currency")?,
        total: parse_amount(&what(), "total", &text("total")?)?,
        status: text("status")?,
        created_at: db::parse_timestamp(&created).map_err(|e| {
            ErpError::Unavailable(format!("{}: stored created_at '{created}': {e}", what()))
        })?,
        document_number,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_numbers_and_periods() {
        assert_eq!(document_number(1), "ERP-000001");
        assert_eq!(document_number(1_234_567), "ERP-1234567");
        let d = NaiveDate::from_ymd_opt(2025, 7, 31).expect("valid date");
        assert_eq!(period_of(d), "2025-07");
        assert!(valid_period("2025-07"));
        assert!(!valid_period("2025-7"));
        assert!(!valid_period("2025-13"));
        assert!(!valid_period("July"));
    }

    fn invoice(id: i64, supplier: Option<&str>, date: (i32, u32, u32)) -> ErpInvoice {
        ErpInvoice {
            coupa_invoice_id: id,
            coupa_supplier_id: None,
            invoice_number: format!("INV-{id}"),
            supplier_number: supplier.map(str::to_owned),
            supplier_name: None,
            invoice_date: NaiveDate::from_ymd_opt(date.0, date.1, date.2).expect("valid date"),
            currency: "USD".into(),
            total: Decimal::new(118_716, 2),
            lines: vec![ErpInvoiceLine {
                coupa_line_id: None,
                line_num: 1,
                description: "Paper".into(),
                quantity: Decimal::new(2, 0),
                price: Decimal::new(59_358, 2),
                total: Decimal::new(118_716, 2),
                account_code: Some("6100".into()),
            }],
        }
    }

    async fn erp() -> SqlErp {
        let erp = SqlErp::connect("sqlite::memory:")
            .await
            .expect("in-memory ERP");
        erp.upsert_suppliers(&[("SUP-1", "Acme", true), ("SUP-2", "Old Co", false)])
            .await
            .expect("suppliers");
        erp
    }

    #[tokio::test]
    async fn posts_once_and_reads_back_exactly() {
        let erp = erp().await;
        let inv = invoice(1042, Some("SUP-1"), (2025, 8, 1));
        let first = erp.post_invoice(&inv).await.expect("post");
        assert_eq!(
            first,
            PostOutcome::Accepted {
                document_number: "ERP-000001".into(),
                already_posted: false
            }
        );
        let again = erp.post_invoice(&inv).await.expect("re-post");
        assert_eq!(
            again,
            PostOutcome::Accepted {
                document_number: "ERP-000001".into(),
                already_posted: true
            }
        );
        let headers = erp.invoices().await.expect("list");
        assert_eq!(headers.len(), 1);
        assert_eq!(headers[0].total.to_string(), "1187.16");
        assert_eq!(headers[0].supplier_name.as_deref(), Some("Acme"));
        assert_eq!(erp.invoice_lines(1042).await.expect("lines"), inv.lines);
    }

    /// A Coupa Pay payment of all of Coupa invoice `invoice` (1187.16), which the ERP may not
    /// hold yet.
    fn pay_payment(id: i64, invoice: i64) -> super::super::ErpPayPayment {
        let total = Decimal::new(118_716, 2);
        super::super::ErpPayPayment {
            coupa_payment_id: id,
            status: super::super::PAY_STATUS_SETTLES.into(),
            payment_identifier: None,
            pay_from_total: Some(total),
            pay_from_currency: Some("USD".into()),
            pay_to_total: Some(total),
            pay_to_currency: Some("USD".into()),
            exchange_rate: None,
            payee_name: None,
            pay_to_account_type: None,
            error_text: None,
            coupa_updated_at: chrono::DateTime::from_timestamp(1_767_225_600, 0)
                .expect("valid instant"),
            applications: vec![super::super::PayApplication {
                coupa_detail_id: Some(id * 10),
                source_type: Some("InvoiceHeader".into()),
                coupa_invoice_id: Some(invoice),
                invoice_number: Some(format!("INV-{invoice}")),
                amount: total,
                settled: total,
                discount: Decimal::ZERO,
                adjustment: Decimal::ZERO,
                currency: "USD".into(),
            }],
        }
    }

    #[tokio::test]
    async fn a_batch_answers_and_stores_what_posting_one_by_one_would() {
        let (single, batch) = (erp().await, erp().await);
        for e in [&single, &batch] {
            e.set_period("2025-07", false).await.expect("close July");
            e.post_invoice(&invoice(3, Some("SUP-1"), (2025, 8, 2)))
                .await
                .expect("posted before");
            e.book_pay_payment(&pay_payment(900, 5))
                .await
                .expect("a payment waiting for invoice 5");
        }
        let mut trimmed = invoice(7, Some(" SUP-1 "), (2025, 8, 3));
        trimmed.lines.push(ErpInvoiceLine {
            coupa_line_id: None,
            line_num: 2,
            description: "Toner".into(),
            quantity: Decimal::ONE,
            price: Decimal::new(1_000, 2),
            total: Decimal::new(1_000, 2),
            account_code: None,
        });
        let invoices = vec![
            invoice(1, Some("SUP-1"), (2025, 8, 1)),
            invoice(2, Some("SUP-2"), (2025, 7, 15)),
            invoice(3, Some("SUP-1"), (2025, 8, 2)),
            invoice(4, None, (2025, 8, 1)),
            invoice(5, Some("SUP-1"), (2025, 8, 1)),
            invoice(6, Some("SUP-9"), (2025, 7, 1)),
            trimmed,
        ];
        let mut one_by_one = Vec::new();
        for inv in &invoices {
            one_by_one.push(single.post_invoice(inv).await.map_err(|e| e.to_string()));
        }
        let batched: Vec<_> = batch
            .post_invoices(&invoices)
            .await
            .into_iter()
            .map(|r| r.map_err(|e| e.to_string()))
            .collect();
        assert_eq!(batched, one_by_one);
        assert!(matches!(
            &batched[1],
            Ok(PostOutcome::Rejected { reasons }) if reasons.len() == 2
        ));
        // The same rows, numbers and lines; the waiting payment applied and the invoice paid.
        let rows = |e: &SqlErp| {
            let e = e.clone();
            async move {
                let mut out = Vec::new();
                for h in e.invoices().await.expect("list") {
                    let lines = e.invoice_lines(h.coupa_invoice_id).await.expect("lines");
                    out.push((
                        h.document_number,
                        h.coupa_invoice_id,
                        h.supplier_name,
                        h.status,
                        h.total,
                        lines,
                    ));
                }
                out
            }
        };
        let stored = rows(&batch).await;
        assert_eq!(stored, rows(&single).await);
        assert_eq!(stored.len(), 4, "{stored:?}");
        assert_eq!(stored[3].0, "ERP-000004", "numbers without gaps");
        let paid = stored.iter().find(|r| r.1 == 5).expect("invoice 5");
        assert_eq!(paid.3, "paid");
        assert_eq!(
            batch.pay_problems(&[900]).await.expect("problems")[&900],
            Vec::<String>::new()
        );
        // Twice the same invoice in a batch: answered as one by one would.
        let twice = [
            invoice(8, Some("SUP-1"), (2025, 8, 1)),
            invoice(8, Some("SUP-1"), (2025, 8, 1)),
        ];
        let answers: Vec<_> = batch
            .post_invoices(&twice)
            .await
            .into_iter()
            .map(|r| r.map_err(|e| e.to_string()))
            .collect();
        assert_eq!(
            answers,
            vec![
                Ok(PostOutcome::Accepted {
                    document_number: "ERP-000005".into(),
                    already_posted: false
                }),
                Ok(PostOutcome::Accepted {
                    document_number: "ERP-000005".into(),
                    already_posted: true
                }),
            ]
        );
    }

    #[tokio::test]
    async fn rejections_name_every_reason() {
        let erp = erp().await;
        erp.set_period("2025-07", false).await.expect("close July");
        let out = erp
            .post_invoice(&invoice(1, Some("SUP-2"), (2025, 7, 15)))
            .await
            .expect("post");
        assert_eq!(
            out,
            PostOutcome::Rejected {
                reasons: vec![
                    "supplier 'SUP-2' (Old Co) is inactive in the ERP".into(),
                    "period 2025-07 is closed".into()
                ]
            }
        );
        let out = erp
            .post_invoice(&invoice(2, None, (2025, 8, 1)))
            .await
            .expect("post");
        assert!(matches!(out, PostOutcome::Rejected { reasons } if reasons.len() == 1));
        assert!(erp.invoices().await.expect("list").is_empty());
        let err = erp
            .set_period("2025-7", true)
            .await
            .expect_err("bad period");
        assert!(err.to_string().contains("'2025-7'"), "{err}");
    }
}
