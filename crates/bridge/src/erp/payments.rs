//! The payments side of [`SqlErp`]: the `erp_payments` rows an AP clerk enters, read by the
//! payment push flow a page at a time ([`Erp::pending_payments`](super::Erp::pending_payments))
//! and settled once Coupa has answered
//! ([`Erp::settle_payments`](super::Erp::settle_payments)).
//!
//! Rows are typed by people, so reading one never fails the call: a row that cannot be read as a
//! payment comes back as a [`MalformedPayment`] whose reason names the column and the value, for
//! the flow to fail that row alone while the good rows around it go through.

use std::collections::{HashMap, HashSet};

use chrono::NaiveDate;
use rust_decimal::Decimal;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::sql::{DATE_FORMAT, unavailable};
use super::{
    ErpError, ErpPayment, ErpPaymentRecord, MalformedPayment, NewErpPayment, PaymentSync, SqlErp,
};
use crate::db::{self, Backend, placeholders, timestamp};

/// The longest check number passed on; a longer one is refused here, naming the ERP row to fix,
/// rather than cut short or refused further downstream where the row is harder to find.
const MAX_CHECK_NUMBER_CHARS: usize = 255;
/// Parameters per statement when many rows go in one. SQLite looks each `$N` parameter up by
/// name in a linear list, so binding costs the square of a statement's parameters: a few hundred
/// is its sweet spot (measured: 100,000 payments recorded in under a second at 250, in 15 s at
/// 9,000). PostgreSQL binds by position, so there larger statements just save round trips, far
/// under its limit of 65,535.
const SQLITE_PARAMS_PER_STATEMENT: usize = 250;
const PG_PARAMS_PER_STATEMENT: usize = 9_000;
/// How many offending payment_refs an error quotes; the rest are counted.
const REFS_QUOTED: usize = 5;

const PENDING_COLUMNS: &str = "id, payment_ref, invoice_number, supplier_name, supplier_number, \
    amount, currency, payment_date, check_number, \
    CASE WHEN paid_in_full THEN 1 ELSE 0 END AS paid_in_full";

/// The columns of one pending row as stored, before any validation.
#[derive(Clone, Debug)]
struct StoredPayment {
    id: i64,
    payment_ref: String,
    invoice_number: String,
    supplier_name: Option<String>,
    supplier_number: Option<String>,
    amount: String,
    currency: String,
    payment_date: String,
    check_number: Option<String>,
    paid_in_full: bool,
}

impl SqlErp {
    /// Records payments as pending, in one transaction, in the given order (ids ascend in that
    /// order), so the demo and the tests fill the table exactly as an AP clerk would. A
    /// payment_ref that is already recorded, or that appears twice in `payments`, is an error
    /// naming it, and nothing is recorded: the caller learns of the clash instead of silently
    /// losing a payment. Returns the new rows' ids, one per payment, in the given order.
    pub async fn record_payments(&self, payments: &[NewErpPayment]) -> Result<Vec<i64>, ErpError> {
        if payments.is_empty() {
            return Ok(Vec::new());
        }
        let what = format!("recording {} payments", payments.len());
        let mut seen = HashSet::with_capacity(payments.len());
        let twice: Vec<&str> = payments
            .iter()
            .map(|p| p.payment_ref.as_str())
            .filter(|r| !seen.insert(*r))
            .collect();
        if !twice.is_empty() {
            return Err(ErpError::Unavailable(format!(
                "{what}: {} more than once in the batch; nothing was recorded",
                quote_refs(&twice)
            )));
        }

        let mut tx = self.db().begin_write().await.map_err(unavailable(&what))?;
        // DO NOTHING rather than failing on the unique index: the refs that clash are then
        // known (they are missing from what was inserted) and can be named.
        let all: Vec<&NewErpPayment> = payments.iter().collect();
        let ids = self.insert_new(&mut tx, &all, &what).await?;
        let mut recorded = Vec::with_capacity(payments.len());
        let mut clashes = Vec::new();
        for p in payments {
            match ids.get(&p.payment_ref) {
                Some(id) => recorded.push(*id),
                None => clashes.push(p.payment_ref.as_str()),
            }
        }
        if !clashes.is_empty() {
            tx.rollback().await.map_err(unavailable(&what))?;
            return Err(ErpError::Unavailable(format!(
                "{what}: {} already recorded; nothing was recorded",
                quote_refs(&clashes)
            )));
        }
        tx.commit().await.map_err(unavailable(&what))?;
        Ok(recorded)
    }

    /// Every payment row, by id, exactly as stored (malformed rows included), for the demo's
    /// and the tests' view of what the flow did.
    pub async fn payments(&self) -> Result<Vec<ErpPaymentRecord>, ErpError> {
        let rows = sqlx::query(
            "SELECT id, payment_ref, invoice_number, supplier_name, supplier_number, amount, \
             currency, payment_date, check_number, \
             CASE WHEN paid_in_full THEN 1 ELSE 0 END AS paid_in_full, sync_status, sync_error, \
             coupa_invoice_id, synced_at FROM erp_payments ORDER BY id",
        )
        .fetch_all(self.db().pool())
        .await
        .map_err(unavailable("listing payments"))?;
        rows.iter().map(read_record).collect()
    }

    /// Counts of rows by sync_status: (pending, synced, failed). One aggregate query, so a
    /// progress display need not list 100,000 rows.
    pub async fn payment_counts(&self) -> Result<(u64, u64, u64), ErpError> {
        let what = "counting payments";
        let rows =
            sqlx::query("SELECT sync_status, COUNT(*) AS n FROM erp_payments GROUP BY sync_status")
                .fetch_all(self.db().pool())
                .await
                .map_err(unavailable(what))?;
        let (mut pending, mut synced, mut failed) = (0, 0, 0);
        for row in &rows {
            let (status, n): (String, i64) =
                (|| Ok::<_, sqlx::Error>((row.try_get("sync_status")?, row.try_get("n")?)))()
                    .map_err(unavailable(what))?;
            let n = db::to_u64(n).unwrap_or(0);
            match status.as_str() {
                "pending" => pending = n,
                "synced" => synced = n,
                "failed" => failed = n,
                // The CHECK constraint allows no other status; nothing to count if one appears.
                _ => {}
            }
        }
        Ok((pending, synced, failed))
    }

    /// [`Erp::pending_payments`](super::Erp::pending_payments): one query on the
    /// `(sync_status, id)` index, so polling an idle ledger costs next to nothing.
    pub(super) async fn read_pending_payments(
        &self,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<Result<ErpPayment, MalformedPayment>>, ErpError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let what = format!("reading pending payments after id {after_id}");
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {PENDING_COLUMNS} FROM erp_payments \
             WHERE sync_status = 'pending' AND id > $1 ORDER BY id LIMIT $2"
        )))
        .bind(after_id)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(self.db().pool())
        .await
        .map_err(unavailable(&what))?;
        rows.iter()
            .map(|row| Ok(read_stored(row)?.and_then(validate)))
            .collect()
    }

    /// [`Erp::settle_payments`](super::Erp::settle_payments). The `sync_status = 'pending'`
    /// guard is what makes settling idempotent and keeps a person's own change to a row (say,
    /// failing it by hand while the flow was talking to Coupa) from being overwritten.
    pub(super) async fn write_payment_outcomes(
        &self,
        outcomes: &[(i64, PaymentSync)],
    ) -> Result<(), ErpError> {
        if outcomes.is_empty() {
            return Ok(());
        }
        // The first outcome of an id wins, as it would if each were written on its own: after
        // it, the row is no longer pending. (One UPDATE meeting an id twice would pick either.)
        let mut seen = HashSet::with_capacity(outcomes.len());
        let mut synced: Vec<(i64, i64)> = Vec::new();
        let mut failed: Vec<(i64, &str, Option<i64>)> = Vec::new();
        for (id, outcome) in outcomes {
            if !seen.insert(*id) {
                continue;
            }
            match outcome {
                PaymentSync::Synced { coupa_invoice_id } => synced.push((*id, *coupa_invoice_id)),
                PaymentSync::Failed {
                    reason,
                    coupa_invoice_id,
                } => failed.push((*id, reason.as_str(), *coupa_invoice_id)),
            }
        }

        let what = format!("settling {} payments", outcomes.len());
        let mut tx = self.db().begin_write().await.map_err(unavailable(&what))?;
        let now = timestamp(db::now());
        // `UPDATE ... FROM (VALUES ...)`: one statement for many rows, each with its own values,
        // on both backends (both name the VALUES columns column1, column2, ...).
        for chunk in synced.chunks(self.rows_per_statement(2)) {
            let rows: Vec<String> = (0..chunk.len())
                .map(|i| format!("({})", placeholders(2 + i * 2, 2)))
                .collect();
            let sql = format!(
                "UPDATE erp_payments SET sync_status = 'synced', sync_error = NULL, \
                 coupa_invoice_id = v.column2, synced_at = $1 FROM (VALUES {}) AS v \
                 WHERE erp_payments.id = v.column1 AND erp_payments.sync_status = 'pending'",
                rows.join(", ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now.as_str());
            for (id, coupa_invoice_id) in chunk {
                query = query.bind(*id).bind(*coupa_invoice_id);
            }
            query
                .execute(tx.conn())
                .await
                .map_err(unavailable(format!("{what}: marking payments synced")))?;
        }
        for chunk in failed.chunks(self.rows_per_statement(3)) {
            let rows: Vec<String> = (0..chunk.len())
                .map(|i| format!("({})", placeholders(2 + i * 3, 3)))
                .collect();
            let sql = format!(
                "UPDATE erp_payments SET sync_status = 'failed', sync_error = v.column2, \
                 coupa_invoice_id = v.column3, synced_at = $1 FROM (VALUES {}) AS v \
                 WHERE erp_payments.id = v.column1 AND erp_payments.sync_status = 'pending'",
                rows.join(", ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(now.as_str());
            for (id, reason, coupa_invoice_id) in chunk {
                query = query.bind(*id).bind(*reason).bind(*coupa_invoice_id);
            }
            query
                .execute(tx.conn())
                .await
                .map_err(unavailable(format!("{what}: marking payments failed")))?;
        }
        tx.commit().await.map_err(unavailable(&what))
    }

    /// How many rows of `params_per_row` parameters one statement takes on this backend.
    fn rows_per_statement(&self, params_per_row: usize) -> usize {
        let params = match self.db().backend() {
            Backend::Sqlite => SQLITE_PARAMS_PER_STATEMENT,
            Backend::Postgres => PG_PARAMS_PER_STATEMENT,
        };
        (params / params_per_row).max(1)
    }
}

/// `payment_ref 'A' is` / `payment_refs 'A', 'B' (and 3 more) are`, for the errors of
/// [`SqlErp::record_payments`].
fn quote_refs(refs: &[&str]) -> String {
    let quoted: Vec<String> = refs
        .iter()
        .take(REFS_QUOTED)
        .map(|r| format!("'{r}'"))
        .collect();
    let more = match refs.len().saturating_sub(REFS_QUOTED) {
        0 => String::new(),
        n => format!(" (and {n} more)"),
    };
    if refs.len() == 1 {
        format!("payment_ref {} is", quoted.join(", "))
    } else {
        format!("payment_refs {}{more} are", quoted.join(", "))
    }
}

/// The stored columns of a pending row. A value the driver cannot decode (say, a blob a person
/// wrote into a text column on SQLite) is a problem of that row, not of the database, so it makes
/// the row malformed; only a failure to find the columns at all, or the row's id, is an error.
fn read_stored(row: &AnyRow) -> Result<Result<StoredPayment, MalformedPayment>, ErpError> {
    let id: i64 = row
        .try_get("id")
        .map_err(unavailable("reading a pending payment"))?;
    let what = || format!("reading pending payment {id}");
    let mut problems = Vec::new();
    let mut text = |col: &str| -> Result<Option<String>, ErpError> {
        match row.try_get::<Option<String>, _>(col) {
            Ok(v) => Ok(v),
            Err(e @ sqlx::Error::ColumnDecode { .. }) => {
                problems.push(format!("{col} cannot be read as text: {e}"));
                Ok(None)
            }
            Err(e) => Err(unavailable(what())(e)),
        }
    };
    let stored = StoredPayment {
        id,
        payment_ref: text("payment_ref")?.unwrap_or_default(),
        invoice_number: text("invoice_number")?.unwrap_or_default(),
        supplier_name: text("supplier_name")?,
        supplier_number: text("supplier_number")?,
        amount: text("amount")?.unwrap_or_default(),
        currency: text("currency")?.unwrap_or_default(),
        payment_date: text("payment_date")?.unwrap_or_default(),
        check_number: text("check_number")?,
        paid_in_full: row
            .try_get::<i64, _>("paid_in_full")
            .map_err(unavailable(what()))?
            != 0,
    };
    if problems.is_empty() {
        Ok(Ok(stored))
    } else {
        Ok(Err(MalformedPayment {
            id,
            payment_ref: stored.payment_ref.trim().to_owned(),
            reason: problems.join("; "),
        }))
    }
}

/// A stored row as a payment, or every reason it is not one (each naming its column and, where
/// there is one, the bad value), so the person fixing the row sees all of it at once.
fn validate(stored: StoredPayment) -> Result<ErpPayment, MalformedPayment> {
    let mut problems = Vec::new();
    let required = |col: &str, value: &str, problems: &mut Vec<String>| -> String {
        let value = value.trim();
        if value.is_empty() {
            problems.push(format!("{col} is empty"));
        }
        value.to_owned()
    };
    let optional = |value: Option<&str>| -> Option<String> {
        value
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };

    let payment_ref = required("payment_ref", &stored.payment_ref, &mut problems);
    let invoice_number = required("invoice_number", &stored.invoice_number, &mut problems);
    let supplier_name = optional(stored.supplier_name.as_deref());
    let supplier_number = optional(stored.supplier_number.as_deref());
    if supplier_name.is_none() && supplier_number.is_none() {
        problems.push("neither supplier_name nor supplier_number is set".to_owned());
    }

    let amount_text = stored.amount.trim();
    let amount = match plain_decimal(amount_text) {
        None => {
            problems.push(format!("amount '{amount_text}' is not a decimal"));
            None
        }
        Some(a) if a <= Decimal::ZERO => {
            problems.push(format!("amount must be above zero, is {amount_text}"));
            None
        }
        Some(a) => Some(a),
    };

    let currency = required("currency", &stored.currency, &mut problems);

    let date_text = stored.payment_date.trim();
    let payment_date = NaiveDate::parse_from_str(date_text, DATE_FORMAT)
        .ok()
        // chrono also accepts `2026-1-5` and `+2026-01-05`; only the canonical form is a date
        // here, as the column promises.
        .filter(|d| d.format(DATE_FORMAT).to_string() == date_text);
    if payment_date.is_none() {
        problems.push(format!(
            "payment_date '{date_text}' is not a date (YYYY-MM-DD)"
        ));
    }

    let check_number = optional(stored.check_number.as_deref());
    if check_number
        .as_deref()
        .is_some_and(|c| c.chars().count() > MAX_CHECK_NUMBER_CHARS)
    {
        problems.push(format!(
            "check_number is longer than {MAX_CHECK_NUMBER_CHARS} characters"
        ));
    }

    match (amount, payment_date) {
        (Some(amount), Some(payment_date)) if problems.is_empty() => Ok(ErpPayment {
            id: stored.id,
            payment_ref,
            invoice_number,
            supplier_name,
            supplier_number,
            amount,
            currency,
            payment_date,
            check_number,
            paid_in_full: stored.paid_in_full,
        }),
        _ => Err(MalformedPayment {
            id: stored.id,
            payment_ref,
            reason: problems.join("; "),
        }),
    }
}

/// `s` as an amount if it is plain decimal notation (`-12.50`, `7`) that fits a [`Decimal`]
/// exactly. Stricter than `Decimal::from_str`, which also takes `1_000` and rounds digits past
/// its precision: money a person typed is either read exactly or refused.
fn plain_decimal(s: &str) -> Option<Decimal> {
    let unsigned = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (int, frac) = match unsigned.split_once('.') {
        Some((int, frac)) => (int, Some(frac)),
        None => (unsigned, None),
    };
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if !digits(int) || frac.is_some_and(|f| !digits(f)) {
        return None;
    }
    Decimal::from_str_exact(s).ok()
}

/// One row for [`SqlErp::payments`]. Unlike the pending read, a value that cannot be decoded is
/// an error here: this listing shows rows, it does not route them.
fn read_record(row: &AnyRow) -> Result<ErpPaymentRecord, ErpError> {
    let id: i64 = row.try_get("id").map_err(unavailable("listing payments"))?;
    let what = || format!("reading payment {id}");
    let text =
        |col: &str| -> Result<String, ErpError> { row.try_get(col).map_err(unavailable(what())) };
    let opt = |col: &str| -> Result<Option<String>, ErpError> {
        row.try_get(col).map_err(unavailable(what()))
    };
    Ok(ErpPaymentRecord {
        id,
        payment_ref: text("payment_ref")?,
        invoice_number: text("invoice_number")?,
        supplier_name: opt("supplier_name")?,
        supplier_number: opt("supplier_number")?,
        amount: text("amount")?,
        currency: text("currency")?,
        payment_date: text("payment_date")?,
        check_number: opt("check_number")?,
        paid_in_full: row
            .try_get::<i64, _>("paid_in_full")
            .map_err(unavailable(what()))?
            != 0,
        sync_status: text("sync_status")?,
        sync_error: opt("sync_error")?,
        coupa_invoice_id: row
            .try_get("coupa_invoice_id")
            .map_err(unavailable(what()))?,
        synced_at: opt("synced_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn good() -> StoredPayment {
        StoredPayment {
            id: 7,
            payment_ref: "PAY-7".into(),
            invoice_number: "INV-1".into(),
            supplier_name: Some("Acme".into()),
            supplier_number: Some("SUP-1".into()),
            amount: "1187.16".into(),
            currency: "USD".into(),
            payment_date: "2026-03-31".into(),
            check_number: Some("100234".into()),
            paid_in_full: true,
        }
    }

    fn reason(stored: StoredPayment) -> String {
        match validate(stored) {
            Ok(p) => panic!("expected a malformed payment, got {p:?}"),
            Err(m) => m.reason,
        }
    }

    #[test]
    fn a_good_row_reads_exactly() {
        let p = validate(good()).expect("a good row");
        assert_eq!(
            p,
            ErpPayment {
                id: 7,
                payment_ref: "PAY-7".into(),
                invoice_number: "INV-1".into(),
                supplier_name: Some("Acme".into()),
                supplier_number: Some("SUP-1".into()),
                amount: Decimal::new(118_716, 2),
                currency: "USD".into(),
                payment_date: NaiveDate::from_ymd_opt(2026, 3, 31).expect("valid date"),
                check_number: Some("100234".into()),
                paid_in_full: true,
            }
        );
        // The scale is kept: 12.50 stays 12.50, not 12.5.
        let p = validate(StoredPayment {
            amount: "12.50".into(),
            ..good()
        })
        .expect("a good row");
        assert_eq!(p.amount.to_string(), "12.50");
    }

    #[test]
    fn text_is_trimmed_and_empty_optionals_are_none() {
        let p = validate(StoredPayment {
            payment_ref: "  PAY-7\t".into(),
            invoice_number: " INV-1 ".into(),
            supplier_name: Some("   ".into()),
            supplier_number: Some(" SUP-1 ".into()),
            amount: " 5 ".into(),
            currency: " EUR ".into(),
            payment_date: " 2026-01-05 ".into(),
            check_number: Some("".into()),
            paid_in_full: false,
            ..good()
        })
        .expect("a good row");
        assert_eq!(p.payment_ref, "PAY-7");
        assert_eq!(p.invoice_number, "INV-1");
        assert_eq!(p.supplier_name, None);
        assert_eq!(p.supplier_number.as_deref(), Some("SUP-1"));
        assert_eq!(p.amount, Decimal::new(5, 0));
        assert_eq!(p.currency, "EUR");
        assert_eq!(
            p.payment_date,
            NaiveDate::from_ymd_opt(2026, 1, 5).expect("valid date")
        );
        assert_eq!(p.check_number, None);
        assert!(!p.paid_in_full);

        let only_name = validate(StoredPayment {
            supplier_number: None,
            ..good()
        })
        .expect("a name alone is enough");
        assert_eq!(only_name.supplier_name.as_deref(), Some("Acme"));
    }

    #[test]
    fn bad_amounts_name_the_value() {
        for bad in [
            "12,50", "twelve", "", "1e3", "1_000", ".5", "5.", "--5", "1.2.3",
        ] {
            let amount = bad.to_owned();
            assert_eq!(
                reason(StoredPayment { amount, ..good() }),
                format!("amount '{bad}' is not a decimal"),
                "{bad:?}"
            );
        }
        // Beyond what a Decimal holds exactly: refused, not rounded.
        let too_precise = format!("0.{}1", "0".repeat(30));
        assert!(
            reason(StoredPayment {
                amount: too_precise.clone(),
                ..good()
            })
            .contains(&too_precise)
        );
        for not_positive in ["-5", "0", "0.00", "-0.01"] {
            assert_eq!(
                reason(StoredPayment {
                    amount: not_positive.into(),
                    ..good()
                }),
                format!("amount must be above zero, is {not_positive}")
            );
        }
    }

    #[test]
    fn bad_dates_name_the_value() {
        for bad in [
            "2026-13-01",
            "2026-02-30",
            "2026-1-05",
            "31/03/2026",
            "2026-03-31T00:00:00Z",
            "",
        ] {
            assert_eq!(
                reason(StoredPayment {
                    payment_date: bad.into(),
                    ..good()
                }),
                format!("payment_date '{bad}' is not a date (YYYY-MM-DD)"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn missing_values_name_the_column() {
        assert_eq!(
            reason(StoredPayment {
                invoice_number: "  ".into(),
                ..good()
            }),
            "invoice_number is empty"
        );
        assert_eq!(
            reason(StoredPayment {
                currency: String::new(),
                ..good()
            }),
            "currency is empty"
        );
        assert_eq!(
            reason(StoredPayment {
                payment_ref: " ".into(),
                ..good()
            }),
            "payment_ref is empty"
        );
        assert_eq!(
            reason(StoredPayment {
                supplier_name: Some(" ".into()),
                supplier_number: None,
                ..good()
            }),
            "neither supplier_name nor supplier_number is set"
        );
    }

    #[test]
    fn check_numbers_are_limited_in_characters_not_bytes() {
        let longest = "é".repeat(MAX_CHECK_NUMBER_CHARS);
        let p = validate(StoredPayment {
            check_number: Some(longest.clone()),
            ..good()
        })
        .expect("255 characters fit");
        assert_eq!(p.check_number, Some(longest));
        assert_eq!(
            reason(StoredPayment {
                check_number: Some("7".repeat(MAX_CHECK_NUMBER_CHARS + 1)),
                ..good()
            }),
            "check_number is longer than 255 characters"
        );
    }

    #[test]
    fn every_problem_of_a_row_is_named_with_its_id_and_ref() {
        let m = validate(StoredPayment {
            id: 42,
            payment_ref: " PAY-42 ".into(),
            invoice_number: String::new(),
            amount: "12,50".into(),
            payment_date: "2026-13-01".into(),
            ..good()
        })
        .expect_err("three problems");
        assert_eq!(m.id, 42);
        assert_eq!(m.payment_ref, "PAY-42");
        assert_eq!(
            m.reason,
            "invoice_number is empty; amount '12,50' is not a decimal; \
             payment_date '2026-13-01' is not a date (YYYY-MM-DD)"
        );
    }

    #[test]
    fn clashing_refs_are_quoted_then_counted() {
        assert_eq!(quote_refs(&["A"]), "payment_ref 'A' is");
        assert_eq!(quote_refs(&["A", "B"]), "payment_refs 'A', 'B' are");
        assert_eq!(
            quote_refs(&["A", "B", "C", "D", "E", "F", "G"]),
            "payment_refs 'A', 'B', 'C', 'D', 'E' (and 2 more) are"
        );
    }
}

/// What the dashboard needs of the payments table.
impl SqlErp {
    /// Up to `limit` payments with `sync_status` (`pending`, `synced`, `failed`), the most
    /// recently settled first, then by id (pending rows have no settlement time).
    pub async fn payments_with_status(
        &self,
        status: &str,
        limit: usize,
    ) -> Result<Vec<ErpPaymentRecord>, ErpError> {
        let rows = sqlx::query(
            "SELECT id, payment_ref, invoice_number, supplier_name, supplier_number, amount, \
             currency, payment_date, check_number, \
             CASE WHEN paid_in_full THEN 1 ELSE 0 END AS paid_in_full, sync_status, sync_error, \
             coupa_invoice_id, synced_at FROM erp_payments WHERE sync_status = $1 \
             ORDER BY synced_at DESC, id LIMIT $2",
        )
        .bind(status)
        .bind(i64::try_from(limit).unwrap_or(i64::MAX))
        .fetch_all(self.db().pool())
        .await
        .map_err(unavailable(&format!("listing {status} payments")))?;
        rows.iter().map(read_record).collect()
    }

    /// Sets a failed payment back to `pending` (a person fixed what Coupa refused, or wants it
    /// tried again); false when no failed payment has that reference.
    pub async fn retry_payment(&self, payment_ref: &str) -> Result<bool, ErpError> {
        let done = sqlx::query(
            "UPDATE erp_payments SET sync_status = 'pending', sync_error = NULL \
             WHERE payment_ref = $1 AND sync_status = 'failed'",
        )
        .bind(payment_ref)
        .execute(self.db().pool())
        .await
        .map_err(unavailable(&format!("retrying payment {payment_ref}")))?;
        Ok(done.rows_affected() > 0)
    }
}

/// What [`SqlErp::accept_payments`] did with one payment. (Not re-exported by `erp` yet: use its
/// methods, or match on it inside this module.)
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Accepted {
    /// New: recorded now as ERP payment `id`, pending.
    Recorded { id: i64 },
    /// The same payment (same payment_ref, invoice, amount and currency) is recorded as `id`: a
    /// re-delivery, nothing was written.
    AlreadyRecorded { id: i64 },
    /// The payment_ref is recorded as `id` with another invoice, amount or currency: nothing was
    /// written; `reason` names what differs.
    Conflict { id: i64, reason: String },
}

impl Accepted {
    /// The ERP payment the row is (or clashes with).
    pub fn id(&self) -> i64 {
        match self {
            Accepted::Recorded { id }
            | Accepted::AlreadyRecorded { id }
            | Accepted::Conflict { id, .. } => *id,
        }
    }

    /// Recorded by this call.
    pub fn is_new(&self) -> bool {
        matches!(self, Accepted::Recorded { .. })
    }

    /// Why the payment was refused, when it clashes with a recorded one.
    pub fn conflict(&self) -> Option<&str> {
        match self {
            Accepted::Conflict { reason, .. } => Some(reason),
            _ => None,
        }
    }
}

/// What the ERP push endpoint needs of the payments table.
impl SqlErp {
    /// Records payments an outside system delivers, idempotently by payment_ref, all in one
    /// transaction committed before this returns; one [`Accepted`] per payment, in order.
    ///
    /// Unlike [`SqlErp::record_payments`] a known payment_ref is no error: a sender that lost our
    /// answer delivers again, and learns the payment is [`Accepted::AlreadyRecorded`]. Only a
    /// payment_ref recorded with another invoice, amount (compared as a number: 12.5 is 12.50) or
    /// currency is an [`Accepted::Conflict`], since one of the two deliveries is wrong and a
    /// person must say which. A payment_ref repeated within `payments` is compared with its first
    /// occurrence the same way.
    pub async fn accept_payments(
        &self,
        payments: &[NewErpPayment],
    ) -> Result<Vec<Accepted>, ErpError> {
        if payments.is_empty() {
            return Ok(Vec::new());
        }
        let what = format!("accepting {} payments", payments.len());
        // The first occurrence of each payment_ref is the one written.
        let mut first: HashMap<&str, usize> = HashMap::with_capacity(payments.len());
        let mut unique: Vec<&NewErpPayment> = Vec::with_capacity(payments.len());
        for (i, p) in payments.iter().enumerate() {
            if let std::collections::hash_map::Entry::Vacant(slot) =
                first.entry(p.payment_ref.as_str())
            {
                slot.insert(i);
                unique.push(p);
            }
        }

        let mut tx = self.db().begin_write().await.map_err(unavailable(&what))?;
        let inserted = self.insert_new(&mut tx, &unique, &what).await?;

        // The rows that were there before: what they hold decides re-delivery or conflict.
        let known: Vec<&str> = unique
            .iter()
            .map(|p| p.payment_ref.as_str())
            .filter(|r| !inserted.contains_key(*r))
            .collect();
        let mut stored: HashMap<String, (i64, String, String, String)> =
            HashMap::with_capacity(known.len());
        for chunk in known.chunks(self.rows_per_statement(1)) {
            let sql = format!(
                "SELECT id, payment_ref, invoice_number, amount, currency FROM erp_payments \
                 WHERE payment_ref IN ({})",
                placeholders(1, chunk.len())
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for r in chunk {
                query = query.bind(*r);
            }
            for row in query
                .fetch_all(tx.conn())
                .await
                .map_err(unavailable(&what))?
            {
                let read = || {
                    Ok::<_, sqlx::Error>((
                        row.try_get::<String, _>("payment_ref")?,
                        (
                            row.try_get("id")?,
                            row.try_get("invoice_number")?,
                            row.try_get("amount")?,
                            row.try_get("currency")?,
                        ),
                    ))
                };
                let (payment_ref, values) = read().map_err(unavailable(&what))?;
                stored.insert(payment_ref, values);
            }
        }

        let mut out: Vec<Accepted> = Vec::with_capacity(payments.len());
        for (i, p) in payments.iter().enumerate() {
            let first_index = first.get(p.payment_ref.as_str()).copied().unwrap_or(i);
            let result = if first_index < i {
                let earlier = &payments[first_index];
                let id = out.get(first_index).map_or(0, Accepted::id);
                let differs = differences(
                    &earlier.invoice_number,
                    &earlier.amount.to_string(),
                    &earlier.currency,
                    p,
                );
                if differs.is_empty() {
                    Accepted::AlreadyRecorded { id }
                } else {
                    Accepted::Conflict {
                        id,
                        reason: format!(
                            "payment_ref '{}' appears earlier in the batch with {}",
                            p.payment_ref,
                            differs.join(", ")
                        ),
                    }
                }
            } else if let Some(id) = inserted.get(&p.payment_ref) {
                Accepted::Recorded { id: *id }
            } else if let Some((id, invoice, amount, currency)) = stored.get(&p.payment_ref) {
                let differs = differences(invoice, amount, currency, p);
                if differs.is_empty() {
                    Accepted::AlreadyRecorded { id: *id }
                } else {
                    Accepted::Conflict {
                        id: *id,
                        reason: format!(
                            "payment_ref '{}' is already recorded as ERP payment {id} with {}",
                            p.payment_ref,
                            differs.join(", ")
                        ),
                    }
                }
            } else {
                // Neither inserted nor there: only a concurrent delete (by hand) does this.
                return Err(ErpError::Unavailable(format!(
                    "{what}: payment_ref '{}' was neither recorded nor found; nothing was recorded",
                    p.payment_ref
                )));
            };
            out.push(result);
        }
        tx.commit().await.map_err(unavailable(&what))?;
        Ok(out)
    }
}

/// What differs between a recorded payment (its invoice number, amount text and currency) and
/// `p`, each as `another amount (100.00, not 99.00)`; empty when they are the same payment.
fn differences(invoice: &str, amount: &str, currency: &str, p: &NewErpPayment) -> Vec<String> {
    let mut out = Vec::new();
    if invoice.trim() != p.invoice_number {
        out.push(format!(
            "another invoice_number ('{}', not '{}')",
            invoice.trim(),
            p.invoice_number
        ));
    }
    if plain_decimal(amount.trim()) != Some(p.amount) {
        out.push(format!(
            "another amount ({}, not {})",
            amount.trim(),
            p.amount
        ));
    }
    if currency.trim() != p.currency {
        out.push(format!(
            "another currency ({}, not {})",
            currency.trim(),
            p.currency
        ));
    }
    out
}

#[cfg(test)]
mod accept_tests {
    use super::*;

    fn payment(payment_ref: &str, amount: Decimal) -> NewErpPayment {
        NewErpPayment {
            payment_ref: payment_ref.into(),
            invoice_number: "INV-1".into(),
            supplier_name: Some("Acme".into()),
            supplier_number: None,
            amount,
            currency: "USD".into(),
            payment_date: NaiveDate::from_ymd_opt(2026, 3, 31).expect("valid date"),
            check_number: None,
            paid_in_full: false,
        }
    }

    #[tokio::test]
    async fn accepting_is_idempotent_by_ref_and_names_conflicts() {
        let erp = SqlErp::connect("sqlite::memory:").await.expect("erp");
        let first = erp
            .accept_payments(&[
                payment("A", Decimal::new(1000, 2)),
                payment("B", Decimal::new(5, 0)),
            ])
            .await
            .expect("accepted");
        assert!(first.iter().all(Accepted::is_new), "{first:?}");
        let (a, b) = (first[0].id(), first[1].id());

        let mut other_invoice = payment("B", Decimal::new(5, 0));
        other_invoice.invoice_number = "INV-2".into();
        let again = erp
            .accept_payments(&[
                // 10.0 is the 10.00 recorded: the same payment.
                payment("A", Decimal::new(100, 1)),
                other_invoice,
                payment("C", Decimal::new(7, 0)),
                payment("C", Decimal::new(7, 0)),
                payment("C", Decimal::new(8, 0)),
            ])
            .await
            .expect("accepted");
        assert_eq!(again[0], Accepted::AlreadyRecorded { id: a });
        assert_eq!(again[1].id(), b);
        assert_eq!(
            again[1].conflict(),
            Some(
                "payment_ref 'B' is already recorded as ERP payment 2 with another \
                 invoice_number ('INV-1', not 'INV-2')"
            )
        );
        assert!(again[2].is_new());
        let c = again[2].id();
        assert_eq!(again[3], Accepted::AlreadyRecorded { id: c });
        assert_eq!(
            again[4].conflict(),
            Some("payment_ref 'C' appears earlier in the batch with another amount (7, not 8)")
        );

        let rows = erp.payments().await.expect("rows");
        let refs: Vec<(&str, &str, &str)> = rows
            .iter()
            .map(|r| {
                (
                    r.payment_ref.as_str(),
                    r.amount.as_str(),
                    r.invoice_number.as_str(),
                )
            })
            .collect();
        assert_eq!(
            refs,
            vec![
                ("A", "10.00", "INV-1"),
                ("B", "5", "INV-1"),
                ("C", "7", "INV-1")
            ]
        );
        assert!(rows.iter().all(|r| r.sync_status == "pending"));
    }
}

impl SqlErp {
    /// Inserts the payments whose payment_ref is not recorded yet, as pending, in `tx`; the ids
    /// of those inserted, by payment_ref (a ref already recorded is absent).
    async fn insert_new(
        &self,
        tx: &mut db::WriteTx,
        payments: &[&NewErpPayment],
        what: &str,
    ) -> Result<HashMap<String, i64>, ErpError> {
        let mut inserted = HashMap::with_capacity(payments.len());
        for chunk in payments.chunks(self.rows_per_statement(9)) {
            let rows: Vec<String> = (0..chunk.len())
                .map(|i| format!("({}, 'pending')", placeholders(1 + i * 9, 9)))
                .collect();
            let sql = format!(
                "INSERT INTO erp_payments (payment_ref, invoice_number, supplier_name, \
                 supplier_number, amount, currency, payment_date, check_number, paid_in_full, \
                 sync_status) VALUES {} ON CONFLICT (payment_ref) DO NOTHING \
                 RETURNING id, payment_ref",
                rows.join(", ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for p in chunk {
                query = query
                    .bind(p.payment_ref.as_str())
                    .bind(p.invoice_number.as_str())
                    .bind(p.supplier_name.as_deref())
                    .bind(p.supplier_number.as_deref())
                    .bind(p.amount.to_string())
                    .bind(p.currency.as_str())
                    .bind(p.payment_date.format(DATE_FORMAT).to_string())
                    .bind(p.check_number.as_deref())
                    .bind(p.paid_in_full);
            }
            for row in query
                .fetch_all(tx.conn())
                .await
                .map_err(unavailable(what))?
            {
                let (id, payment_ref): (i64, String) =
                    (|| Ok::<_, sqlx::Error>((row.try_get("id")?, row.try_get("payment_ref")?)))()
                        .map_err(unavailable(what))?;
                inserted.insert(payment_ref, id);
            }
        }
        Ok(inserted)
    }
}
