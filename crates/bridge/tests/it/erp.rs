//! The embedded reference ERP on SQLite and PostgreSQL: posting, idempotency (also under
//! concurrency), rejections, cancelling, reopening; payments recorded, read a page at a time
//! (malformed rows named) and settled once; Coupa Pay payments booked once per version, applied
//! to the ERP's invoices (also when the invoice arrives later), paying and reopening them.

use std::collections::BTreeSet;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use coupa_bridge::db;
use coupa_bridge::erp::{
    CancelOutcome, Erp, ErpInvoice, ErpInvoiceLine, ErpPayPayment, ErpPayment,
    ErpPaymentApplicationRecord, ErpPaymentRecord, MalformedPayment, NewErpPayment,
    PAY_STATUS_SETTLES, PayApplication, PayBooking, PayBookingChange, PaymentSync, PostOutcome,
    SqlErp,
};
use rust_decimal::Decimal;

use crate::pg::each_backend;

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).expect("a decimal literal")
}

fn date(s: &str) -> NaiveDate {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").expect("a date literal")
}

fn invoice(id: i64, supplier: &str, invoice_date: &str) -> ErpInvoice {
    ErpInvoice {
        coupa_invoice_id: id,
        coupa_supplier_id: None,
        invoice_number: format!("INV-{id}"),
        supplier_number: Some(supplier.into()),
        supplier_name: Some("Acme Office Supply".into()),
        invoice_date: date(invoice_date),
        currency: "USD".into(),
        total: dec("1187.16"),
        lines: vec![
            ErpInvoiceLine {
                coupa_line_id: None,
                line_num: 1,
                description: "Copy paper, A4, 80 g".into(),
                quantity: dec("12"),
                price: dec("42.50"),
                total: dec("510.00"),
                account_code: Some("6100-OFFICE".into()),
            },
            ErpInvoiceLine {
                coupa_line_id: None,
                line_num: 2,
                description: "Toner 'XL' — black".into(),
                quantity: dec("3.5"),
                price: dec("193.4742857"),
                total: dec("677.16"),
                account_code: None,
            },
        ],
    }
}

async fn erp(url: &str) -> SqlErp {
    let erp = SqlErp::connect(url).await.expect("connecting the ERP");
    erp.upsert_suppliers(&[
        ("SUP-1", "Acme", true),
        ("SUP-2", "Globex", true),
        ("SUP-3", "Initech", false),
    ])
    .await
    .expect("supplier master");
    erp
}

fn accepted(n: &str, already_posted: bool) -> PostOutcome {
    PostOutcome::Accepted {
        document_number: n.into(),
        already_posted,
    }
}

#[tokio::test]
async fn erp_posts_with_increasing_numbers_and_exact_lines() {
    each_backend("erp_post", |url| async move {
        let erp = erp(&url).await;
        let mut third = invoice(3003, "SUP-2", "2025-09-30");
        third.total = dec("0.0001");
        third.lines = Vec::new();
        third.supplier_name = None;
        let invoices = [
            invoice(1001, "SUP-1", "2025-08-01"),
            invoice(2002, "SUP-1", "2025-08-15"),
            third,
        ];
        for (i, inv) in invoices.iter().enumerate() {
            let out = erp.post_invoice(inv).await.expect("post");
            assert_eq!(out, accepted(&format!("ERP-{:06}", i + 1), false));
        }
        let headers = erp.invoices().await.expect("list");
        assert_eq!(headers.len(), 3);
        for (h, inv) in headers.iter().zip(&invoices) {
            assert_eq!(h.coupa_invoice_id, inv.coupa_invoice_id);
            assert_eq!(h.invoice_number, inv.invoice_number);
            assert_eq!(h.invoice_date, inv.invoice_date);
            assert_eq!(h.total, inv.total);
            // Scale kept: the amount reads back exactly as written.
            assert_eq!(h.total.to_string(), inv.total.to_string());
            assert_eq!(h.status, "open");
            assert_eq!(h.supplier_number, inv.supplier_number);
            assert!(h.created_at <= chrono::Utc::now());
        }
        assert_eq!(
            headers[0].supplier_name.as_deref(),
            Some("Acme Office Supply")
        );
        assert_eq!(
            headers[2].supplier_name.as_deref(),
            Some("Globex"),
            "the master's name when the invoice has none"
        );
        let lines = erp.invoice_lines(1001).await.expect("lines");
        assert_eq!(lines, invoices[0].lines);
        let texts: Vec<String> = lines.iter().map(|l| l.price.to_string()).collect();
        assert_eq!(texts, vec!["42.50", "193.4742857"]);
        assert!(erp.invoice_lines(3003).await.expect("lines").is_empty());
        assert!(erp.invoice_lines(9999).await.expect("lines").is_empty());
        let one = erp.invoice(2002).await.expect("read").expect("present");
        assert_eq!(one.document_number, "ERP-000002");
        assert_eq!(erp.invoice(9999).await.expect("read"), None);
    })
    .await;
}

#[tokio::test]
async fn erp_repost_is_idempotent() {
    each_backend("erp_repost", |url| async move {
        let erp = erp(&url).await;
        let inv = invoice(1042, "SUP-1", "2025-08-01");
        assert_eq!(
            erp.post_invoice(&inv).await.expect("post"),
            accepted("ERP-000001", false)
        );
        // Even with different content: the Coupa id decides.
        let mut changed = inv.clone();
        changed.total = dec("1.00");
        changed.lines.truncate(1);
        for again in [&inv, &changed] {
            assert_eq!(
                erp.post_invoice(again).await.expect("re-post"),
                accepted("ERP-000001", true)
            );
        }
        let headers = erp.invoices().await.expect("list");
        assert_eq!(headers.len(), 1);
        assert_eq!(headers[0].total, dec("1187.16"));
        assert_eq!(erp.invoice_lines(1042).await.expect("lines").len(), 2);
        // The next new invoice continues the numbering without a gap.
        assert_eq!(
            erp.post_invoice(&invoice(1043, "SUP-1", "2025-08-01"))
                .await
                .expect("post"),
            accepted("ERP-000002", false)
        );
    })
    .await;
}

#[tokio::test]
async fn erp_rejects_with_every_reason() {
    each_backend("erp_reject", |url| async move {
        let erp = erp(&url).await;
        erp.set_period("2025-07", false).await.expect("close July");
        erp.set_period("2025-08", true).await.expect("open August");

        let unknown_and_closed = erp
            .post_invoice(&invoice(1, "SUP-9001", "2025-07-31"))
            .await
            .expect("post");
        assert_eq!(
            unknown_and_closed,
            PostOutcome::Rejected {
                reasons: vec![
                    "supplier 'SUP-9001' is not in the ERP supplier master".into(),
                    "period 2025-07 is closed".into(),
                ]
            }
        );
        let inactive = erp
            .post_invoice(&invoice(2, "SUP-3", "2025-08-01"))
            .await
            .expect("post");
        assert_eq!(
            inactive,
            PostOutcome::Rejected {
                reasons: vec!["supplier 'SUP-3' (Initech) is inactive in the ERP".into()]
            }
        );
        let mut no_supplier = invoice(3, "SUP-1", "2025-07-01");
        no_supplier.supplier_number = None;
        match erp.post_invoice(&no_supplier).await.expect("post") {
            PostOutcome::Rejected { reasons } => {
                assert_eq!(reasons.len(), 2, "{reasons:?}");
                assert!(reasons[0].contains("no supplier number"), "{reasons:?}");
                assert_eq!(reasons[1], "period 2025-07 is closed");
            }
            other => panic!("expected a rejection, got {other:?}"),
        }
        assert!(
            erp.invoices().await.expect("list").is_empty(),
            "nothing posted"
        );

        // A period missing from the table is open; fixing the data lets the invoice through,
        // and rejections did not consume document numbers.
        assert_eq!(
            erp.post_invoice(&invoice(4, "SUP-1", "2031-01-01"))
                .await
                .expect("post"),
            accepted("ERP-000001", false)
        );
        erp.upsert_supplier("SUP-3", "Initech", true)
            .await
            .expect("reactivate");
        erp.set_period("2025-07", true).await.expect("reopen July");
        assert_eq!(
            erp.post_invoice(&invoice(1, "SUP-3", "2025-07-31"))
                .await
                .expect("post"),
            accepted("ERP-000002", false)
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn erp_concurrent_posts_of_one_invoice_post_it_once() {
    each_backend("erp_concurrent", |url| async move {
        let erp = erp(&url).await;
        let inv = invoice(5150, "SUP-1", "2025-08-01");
        let tasks: Vec<_> = (0..16)
            .map(|_| {
                let erp = erp.clone();
                let inv = inv.clone();
                tokio::spawn(async move { erp.post_invoice(&inv).await })
            })
            .collect();
        let mut numbers = BTreeSet::new();
        let mut fresh = 0;
        for t in tasks {
            match t.await.expect("task").expect("post") {
                PostOutcome::Accepted {
                    document_number,
                    already_posted,
                } => {
                    numbers.insert(document_number);
                    fresh += usize::from(!already_posted);
                }
                other => panic!("expected acceptance, got {other:?}"),
            }
        }
        assert_eq!(numbers.into_iter().collect::<Vec<_>>(), vec!["ERP-000001"]);
        assert_eq!(fresh, 1, "exactly one post was new");
        assert_eq!(erp.invoices().await.expect("list").len(), 1);
        assert_eq!(erp.invoice_lines(5150).await.expect("lines").len(), 2);

        // Different invoices at once: unique, gapless numbers.
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let erp = erp.clone();
                let inv = invoice(6000 + i, "SUP-2", "2025-08-02");
                tokio::spawn(async move { erp.post_invoice(&inv).await })
            })
            .collect();
        let mut numbers = BTreeSet::new();
        for t in tasks {
            if let PostOutcome::Accepted {
                document_number, ..
            } = t.await.expect("task").expect("post")
            {
                numbers.insert(document_number);
            }
        }
        let expected: BTreeSet<String> = (2..=17).map(|n| format!("ERP-{n:06}")).collect();
        assert_eq!(numbers, expected);
    })
    .await;
}

/// The unique constraint on coupa_invoice_id is the last line of defence: a post that passed
/// its "already posted?" check while another poster's insert was still uncommitted must answer
/// with the winner's number, not fail. (On SQLite the writer lock makes the post wait for the
/// other transaction instead, so its check sees the row; the answer is the same.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erp_post_losing_a_race_answers_with_the_winners_number() {
    each_backend("erp_race", |url| async move {
        let erp = erp(&url).await;
        let mut winner = erp.db().begin_write().await.expect("begin");
        sqlx::query(
            "INSERT INTO erp_invoices (document_number, coupa_invoice_id, invoice_number, \
             invoice_date, currency, total, status, created_at, updated_at) VALUES \
             ('ERP-900001', 42, 'INV-42', '2025-08-01', 'USD', '1187.16', 'open', \
             '2025-08-01T00:00:00.000000Z', '2025-08-01T00:00:00.000000Z')",
        )
        .execute(winner.conn())
        .await
        .expect("the winner's insert");

        let post = {
            let erp = erp.clone();
            tokio::spawn(async move { erp.post_invoice(&invoice(42, "SUP-1", "2025-08-01")).await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(!post.is_finished(), "the post waits for the winner");
        winner.commit().await.expect("the winner commits");

        let out = post.await.expect("task").expect("no error");
        assert_eq!(out, accepted("ERP-900001", true));
        assert_eq!(erp.invoices().await.expect("list").len(), 1);
        assert!(erp.invoice_lines(42).await.expect("lines").is_empty());
        // The loser's counter increment was rolled back: no gap.
        assert_eq!(
            erp.post_invoice(&invoice(43, "SUP-1", "2025-08-01"))
                .await
                .expect("post"),
            accepted("ERP-000001", false)
        );
    })
    .await;
}

#[tokio::test]
async fn erp_cancel_is_idempotent() {
    each_backend("erp_cancel", |url| async move {
        let erp = erp(&url).await;
        assert_eq!(
            erp.cancel_invoice(77).await.expect("cancel"),
            CancelOutcome::NotPosted
        );
        erp.post_invoice(&invoice(77, "SUP-1", "2025-08-01"))
            .await
            .expect("post");
        assert_eq!(
            erp.cancel_invoice(77).await.expect("cancel"),
            CancelOutcome::Cancelled {
                document_number: "ERP-000001".into()
            }
        );
        assert_eq!(
            erp.cancel_invoice(77).await.expect("cancel again"),
            CancelOutcome::AlreadyCancelled {
                document_number: "ERP-000001".into()
            }
        );
        let h = erp.invoice(77).await.expect("read").expect("present");
        assert_eq!(h.status, "cancelled");
        // Posting a cancelled invoice again still posts nothing.
        assert_eq!(
            erp.post_invoice(&invoice(77, "SUP-1", "2025-08-01"))
                .await
                .expect("re-post"),
            accepted("ERP-000001", true)
        );
    })
    .await;
}

#[tokio::test]
async fn erp_reopen_keeps_data_and_does_not_migrate_again() {
    each_backend("erp_reopen", |url| async move {
        let first = erp(&url).await;
        first
            .post_invoice(&invoice(1, "SUP-1", "2025-08-01"))
            .await
            .expect("post");
        let applied = first
            .db()
            .applied_migrations("erp")
            .await
            .expect("migrations");
        assert_eq!(
            applied.iter().map(|m| m.0).collect::<Vec<_>>(),
            vec![1, 2, 3],
            "{applied:?}"
        );

        let second = SqlErp::connect(&url).await.expect("reopen");
        let again = second
            .db()
            .applied_migrations("erp")
            .await
            .expect("migrations");
        assert_eq!(applied, again, "same versions, same applied_at");
        assert_eq!(second.invoices().await.expect("list").len(), 1);
        assert_eq!(
            second
                .post_invoice(&invoice(2, "SUP-2", "2025-08-01"))
                .await
                .expect("post"),
            accepted("ERP-000002", false),
            "suppliers and the counter survived"
        );
        // Both pools work on the same database at once.
        assert_eq!(first.invoices().await.expect("list").len(), 2);
    })
    .await;
}

#[tokio::test]
async fn erp_bad_stored_amount_names_the_row() {
    each_backend("erp_bad_amount", |url| async move {
        let erp = erp(&url).await;
        erp.post_invoice(&invoice(1, "SUP-1", "2025-08-01"))
            .await
            .expect("post");
        sqlx::query("UPDATE erp_invoices SET total = 'twelve' WHERE coupa_invoice_id = 1")
            .execute(erp.db().pool())
            .await
            .expect("corrupting by hand");
        let err = erp.invoices().await.expect_err("bad amount");
        let msg = err.to_string();
        assert!(
            msg.contains("ERP-000001") && msg.contains("'twelve'"),
            "{msg}"
        );
    })
    .await;
}

// ---- Payments (erp_payments): recorded by the AP clerk, read and settled by the push flow ----

/// A distinct, valid payment; `n` varies every field that can vary.
fn payment(n: u32) -> NewErpPayment {
    NewErpPayment {
        payment_ref: format!("PAY-{n:06}"),
        invoice_number: format!("INV-{n}"),
        supplier_name: (n % 3 != 1).then(|| format!("Supplier {n}")),
        supplier_number: (n % 3 != 2).then(|| format!("SUP-{n}")),
        // Scale two, kept as written (12.50, not 12.5).
        amount: dec("12.50") + Decimal::new(i64::from(n), 2),
        currency: if n.is_multiple_of(2) { "USD" } else { "EUR" }.into(),
        payment_date: date("2026-03-01") + chrono::Days::new(u64::from(n % 28)),
        check_number: (!n.is_multiple_of(4)).then(|| format!("CHK-{n}")),
        paid_in_full: n.is_multiple_of(2),
    }
}

/// What `pending_payments` must answer for a recorded payment.
fn as_read(id: i64, p: &NewErpPayment) -> Result<ErpPayment, MalformedPayment> {
    Ok(ErpPayment {
        id,
        payment_ref: p.payment_ref.clone(),
        invoice_number: p.invoice_number.clone(),
        supplier_name: p.supplier_name.clone(),
        supplier_number: p.supplier_number.clone(),
        amount: p.amount,
        currency: p.currency.clone(),
        payment_date: p.payment_date,
        check_number: p.check_number.clone(),
        paid_in_full: p.paid_in_full,
    })
}

fn ids_of(page: &[Result<ErpPayment, MalformedPayment>]) -> Vec<i64> {
    page.iter()
        .map(|r| match r {
            Ok(p) => p.id,
            Err(m) => m.id,
        })
        .collect()
}

fn by_id(records: &[ErpPaymentRecord], id: i64) -> &ErpPaymentRecord {
    records
        .iter()
        .find(|r| r.id == id)
        .unwrap_or_else(|| panic!("payment row {id} is missing"))
}

#[tokio::test]
async fn erp_payments_page_in_id_order_and_settle_once() {
    each_backend("erp_payments_settle", |url| async move {
        let erp = SqlErp::connect(&url).await.expect("connecting the ERP");
        assert!(
            erp.pending_payments(0, 10)
                .await
                .expect("empty ledger")
                .is_empty()
        );
        assert_eq!(erp.payment_counts().await.expect("counts"), (0, 0, 0));

        let recorded: Vec<NewErpPayment> = (1..=5).map(payment).collect();
        let ids = erp.record_payments(&recorded).await.expect("record");
        assert_eq!(ids.len(), recorded.len());
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids ascend: {ids:?}");

        // As stored: the text the clerk's values were written as, all pending.
        let stored = erp.payments().await.expect("list");
        assert_eq!(stored.iter().map(|r| r.id).collect::<Vec<_>>(), ids);
        for (r, p) in stored.iter().zip(&recorded) {
            assert_eq!(r.payment_ref, p.payment_ref);
            assert_eq!(r.invoice_number, p.invoice_number);
            assert_eq!(r.supplier_name, p.supplier_name);
            assert_eq!(r.supplier_number, p.supplier_number);
            assert_eq!(r.amount, p.amount.to_string());
            assert_eq!(r.currency, p.currency);
            assert_eq!(
                r.payment_date,
                p.payment_date.format("%Y-%m-%d").to_string()
            );
            assert_eq!(r.check_number, p.check_number);
            assert_eq!(r.paid_in_full, p.paid_in_full);
            assert_eq!(r.sync_status, "pending");
            assert_eq!(
                (&r.sync_error, r.coupa_invoice_id, &r.synced_at),
                (&None, None, &None)
            );
        }
        assert_eq!(erp.payment_counts().await.expect("counts"), (5, 0, 0));

        // Paging: after_id and limit, in id order, until nothing is left.
        let expected: Vec<_> = ids
            .iter()
            .zip(&recorded)
            .map(|(id, p)| as_read(*id, p))
            .collect();
        let mut pages = Vec::new();
        let mut after = 0;
        loop {
            let page = erp.pending_payments(after, 2).await.expect("page");
            if page.is_empty() {
                break;
            }
            assert!(page.len() <= 2, "{page:?}");
            after = *ids_of(&page).last().expect("a non-empty page");
            pages.push(page);
        }
        assert_eq!(
            pages.iter().map(Vec::len).collect::<Vec<_>>(),
            vec![2, 2, 1]
        );
        assert_eq!(pages.concat(), expected);
        assert_eq!(
            erp.pending_payments(ids[1], 100)
                .await
                .expect("after the second"),
            expected[2..].to_vec()
        );
        assert!(
            erp.pending_payments(0, 0)
                .await
                .expect("limit 0")
                .is_empty()
        );

        // Settle three: one synced, two failed (with and without a Coupa invoice).
        let before = db::now();
        let outcomes = vec![
            (
                ids[0],
                PaymentSync::Synced {
                    coupa_invoice_id: 9001,
                },
            ),
            (
                ids[2],
                PaymentSync::Failed {
                    reason: "no Coupa invoice INV-3 for this supplier".into(),
                    coupa_invoice_id: None,
                },
            ),
            (
                ids[3],
                PaymentSync::Failed {
                    reason: "the invoice is voided in Coupa".into(),
                    coupa_invoice_id: Some(9004),
                },
            ),
        ];
        erp.settle_payments(&outcomes).await.expect("settle");
        assert_eq!(
            erp.pending_payments(0, 100).await.expect("pending"),
            vec![expected[1].clone(), expected[4].clone()]
        );
        assert_eq!(erp.payment_counts().await.expect("counts"), (2, 1, 2));

        let settled = erp.payments().await.expect("list");
        let synced = by_id(&settled, ids[0]);
        assert_eq!(synced.sync_status, "synced");
        assert_eq!(synced.sync_error, None);
        assert_eq!(synced.coupa_invoice_id, Some(9001));
        let at = db::parse_timestamp(synced.synced_at.as_deref().expect("synced_at is set"))
            .expect("synced_at is RFC 3339");
        assert!(
            before <= at && at <= db::now(),
            "{at} not in [{before}, now]"
        );
        let failed = by_id(&settled, ids[2]);
        assert_eq!(failed.sync_status, "failed");
        assert_eq!(
            failed.sync_error.as_deref(),
            Some("no Coupa invoice INV-3 for this supplier")
        );
        // The time the outcome was written is kept for failures too (the dashboard shows it).
        assert_eq!(
            (failed.coupa_invoice_id, &failed.synced_at),
            (None, &synced.synced_at)
        );
        let failed = by_id(&settled, ids[3]);
        assert_eq!(failed.sync_status, "failed");
        assert_eq!(
            failed.sync_error.as_deref(),
            Some("the invoice is voided in Coupa")
        );
        assert_eq!(failed.coupa_invoice_id, Some(9004));
        for untouched in [ids[1], ids[4]] {
            assert_eq!(by_id(&settled, untouched).sync_status, "pending");
        }

        // Settling the same rows again, even with other outcomes, changes nothing.
        let contrary = vec![
            (
                ids[0],
                PaymentSync::Failed {
                    reason: "late".into(),
                    coupa_invoice_id: None,
                },
            ),
            (
                ids[2],
                PaymentSync::Synced {
                    coupa_invoice_id: 1,
                },
            ),
            (
                ids[3],
                PaymentSync::Synced {
                    coupa_invoice_id: 2,
                },
            ),
        ];
        erp.settle_payments(&outcomes).await.expect("settle again");
        erp.settle_payments(&contrary)
            .await
            .expect("settle contrary");
        erp.settle_payments(&[]).await.expect("settle nothing");
        assert_eq!(erp.payments().await.expect("list"), settled);
        assert_eq!(erp.payment_counts().await.expect("counts"), (2, 1, 2));
    })
    .await;
}

#[tokio::test]
async fn erp_settle_leaves_rows_a_person_changed() {
    each_backend("erp_payments_by_hand", |url| async move {
        let erp = SqlErp::connect(&url).await.expect("connecting the ERP");
        let ids = erp
            .record_payments(&(1..=4).map(payment).collect::<Vec<_>>())
            .await
            .expect("record");
        // While the flow talks to Coupa, AP fails the second row by hand.
        sqlx::query(
            "UPDATE erp_payments SET sync_status = 'failed', sync_error = 'voided by AP' \
             WHERE id = $1",
        )
        .bind(ids[1])
        .execute(erp.db().pool())
        .await
        .expect("failing a row by hand");
        let unknown_id = ids[3] + 1000;
        // The third row twice, failed first: the first outcome counts, as if each were written
        // on its own (after it, the row is no longer pending).
        let outcomes: Vec<(i64, PaymentSync)> = [(
            ids[2],
            PaymentSync::Failed {
                reason: "the first answer".into(),
                coupa_invoice_id: None,
            },
        )]
        .into_iter()
        .chain([ids[0], ids[1], ids[2], unknown_id].map(|id| {
            (
                id,
                PaymentSync::Synced {
                    coupa_invoice_id: 500 + id,
                },
            )
        }))
        .collect();
        erp.settle_payments(&outcomes).await.expect("settle");

        let rows = erp.payments().await.expect("list");
        assert_eq!(rows.len(), 4, "no row appeared for the unknown id");
        let by_hand = by_id(&rows, ids[1]);
        assert_eq!(by_hand.sync_status, "failed");
        assert_eq!(by_hand.sync_error.as_deref(), Some("voided by AP"));
        assert_eq!(
            (by_hand.coupa_invoice_id, &by_hand.synced_at),
            (None, &None)
        );
        let synced = by_id(&rows, ids[0]);
        assert_eq!(synced.sync_status, "synced");
        assert_eq!(synced.coupa_invoice_id, Some(500 + ids[0]));
        let first_answer = by_id(&rows, ids[2]);
        assert_eq!(first_answer.sync_status, "failed");
        assert_eq!(first_answer.sync_error.as_deref(), Some("the first answer"));
        assert_eq!(first_answer.coupa_invoice_id, None);
        assert_eq!(by_id(&rows, ids[3]).sync_status, "pending");
        assert_eq!(erp.payment_counts().await.expect("counts"), (1, 1, 2));

        // A person fixes the failed row and sets it pending again: it is read and settled anew.
        sqlx::query("UPDATE erp_payments SET sync_status = 'pending' WHERE id = $1")
            .bind(ids[1])
            .execute(erp.db().pool())
            .await
            .expect("setting a row pending by hand");
        assert_eq!(
            ids_of(&erp.pending_payments(0, 10).await.expect("pending")),
            vec![ids[1], ids[3]]
        );
        erp.settle_payments(&[(
            ids[1],
            PaymentSync::Synced {
                coupa_invoice_id: 77,
            },
        )])
        .await
        .expect("settle the fixed row");
        let fixed = by_id(&erp.payments().await.expect("list"), ids[1]).clone();
        assert_eq!(fixed.sync_status, "synced");
        assert_eq!(fixed.sync_error, None, "the old error is cleared");
        assert_eq!(fixed.coupa_invoice_id, Some(77));
    })
    .await;
}

/// A row as a person might type it straight into the ERP, bypassing `record_payments`.
struct Typed {
    payment_ref: &'static str,
    invoice_number: &'static str,
    supplier_name: Option<&'static str>,
    supplier_number: Option<&'static str>,
    amount: &'static str,
    currency: &'static str,
    payment_date: &'static str,
    check_number: Option<String>,
}

impl Typed {
    fn good(payment_ref: &'static str) -> Typed {
        Typed {
            payment_ref,
            invoice_number: "INV-1",
            supplier_name: Some("Acme"),
            supplier_number: Some("SUP-1"),
            amount: "12.50",
            currency: "USD",
            payment_date: "2026-03-01",
            check_number: None,
        }
    }

    async fn insert(&self, erp: &SqlErp) -> i64 {
        use sqlx::Row;
        sqlx::query(
            "INSERT INTO erp_payments (payment_ref, invoice_number, supplier_name, \
             supplier_number, amount, currency, payment_date, check_number, paid_in_full) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(self.payment_ref)
        .bind(self.invoice_number)
        .bind(self.supplier_name)
        .bind(self.supplier_number)
        .bind(self.amount)
        .bind(self.currency)
        .bind(self.payment_date)
        .bind(self.check_number.as_deref())
        .bind(true)
        .fetch_one(erp.db().pool())
        .await
        .and_then(|row| row.try_get("id"))
        .unwrap_or_else(|e| panic!("inserting {} by hand: {e}", self.payment_ref))
    }
}

#[tokio::test]
async fn erp_malformed_payment_rows_are_named_while_good_rows_read() {
    each_backend("erp_payments_malformed", |url| async move {
        let erp = SqlErp::connect(&url).await.expect("connecting the ERP");
        let first = payment(1);
        let first_id = erp
            .record_payments(std::slice::from_ref(&first))
            .await
            .expect("record")[0];

        let good = Typed::good;
        // Each with what its reason must say.
        let bad = [
            (
                Typed {
                    amount: "12,50",
                    ..good("BAD-AMOUNT")
                },
                "amount '12,50' is not a decimal",
            ),
            (
                Typed {
                    payment_date: "2026-13-01",
                    ..good("BAD-DATE")
                },
                "payment_date '2026-13-01' is not a date (YYYY-MM-DD)",
            ),
            (
                Typed {
                    invoice_number: "   ",
                    ..good("NO-INVOICE")
                },
                "invoice_number is empty",
            ),
            (
                Typed {
                    supplier_name: Some(" "),
                    supplier_number: None,
                    ..good("NO-SUPPLIER")
                },
                "neither supplier_name nor supplier_number is set",
            ),
            (
                Typed {
                    amount: "-5",
                    ..good("NEGATIVE")
                },
                "amount must be above zero, is -5",
            ),
            (
                Typed {
                    amount: "0.00",
                    ..good("ZERO")
                },
                "amount must be above zero, is 0.00",
            ),
            (
                Typed {
                    currency: "",
                    ..good("NO-CURRENCY")
                },
                "currency is empty",
            ),
            (
                Typed {
                    check_number: Some("9".repeat(256)),
                    ..good("LONG-CHECK")
                },
                "check_number is longer than 255 characters",
            ),
        ];
        let mut bad_ids = Vec::new();
        for (typed, _) in &bad {
            bad_ids.push(typed.insert(&erp).await);
        }
        // A hand-typed row that is fine once trimmed reads as a payment.
        let typed_id = Typed {
            payment_ref: " TYPED ",
            invoice_number: " INV-9 ",
            supplier_name: Some(" "),
            supplier_number: Some(" SUP-9 "),
            amount: " 7.5 ",
            currency: " USD ",
            payment_date: " 2026-03-02 ",
            check_number: Some("  ".into()),
        }
        .insert(&erp)
        .await;
        let last = payment(2);
        let last_id = erp
            .record_payments(std::slice::from_ref(&last))
            .await
            .expect("record")[0];

        let page = erp
            .pending_payments(0, 100)
            .await
            .expect("no error for bad rows");
        let mut want_ids = vec![first_id];
        want_ids.extend(&bad_ids);
        want_ids.extend([typed_id, last_id]);
        assert_eq!(ids_of(&page), want_ids, "every pending row, in id order");
        assert_eq!(page[0], as_read(first_id, &first));
        for (((typed, reason), id), got) in bad.iter().zip(&bad_ids).zip(&page[1..]) {
            match got {
                Err(m) => {
                    assert_eq!((m.id, m.payment_ref.as_str()), (*id, typed.payment_ref));
                    assert!(
                        m.reason.contains(reason),
                        "{}: {}",
                        typed.payment_ref,
                        m.reason
                    );
                }
                Ok(p) => panic!("{} should be malformed, read as {p:?}", typed.payment_ref),
            }
        }
        assert_eq!(
            page[page.len() - 2],
            Ok(ErpPayment {
                id: typed_id,
                payment_ref: "TYPED".into(),
                invoice_number: "INV-9".into(),
                supplier_name: None,
                supplier_number: Some("SUP-9".into()),
                amount: dec("7.5"),
                currency: "USD".into(),
                payment_date: date("2026-03-02"),
                check_number: None,
                paid_in_full: true,
            })
        );
        assert_eq!(page[page.len() - 1], as_read(last_id, &last));

        // A page starting inside the bad rows reads the same rows the same way.
        let from_middle = erp.pending_payments(bad_ids[2], 3).await.expect("page");
        assert_eq!(from_middle, page[4..7].to_vec());

        // The listing shows malformed rows exactly as stored.
        let stored = erp.payments().await.expect("list");
        assert_eq!(by_id(&stored, bad_ids[0]).amount, "12,50");
        assert_eq!(by_id(&stored, bad_ids[1]).payment_date, "2026-13-01");
        assert_eq!(by_id(&stored, typed_id).payment_ref, " TYPED ");

        // Failing the malformed rows with their reasons takes them out of the queue.
        let outcomes: Vec<(i64, PaymentSync)> = page
            .iter()
            .filter_map(|r| r.as_ref().err())
            .map(|m| {
                let reason = m.reason.clone();
                (
                    m.id,
                    PaymentSync::Failed {
                        reason,
                        coupa_invoice_id: None,
                    },
                )
            })
            .collect();
        assert_eq!(outcomes.len(), bad.len());
        erp.settle_payments(&outcomes).await.expect("settle");
        assert_eq!(
            ids_of(&erp.pending_payments(0, 100).await.expect("pending")),
            vec![first_id, typed_id, last_id]
        );
        let stored = erp.payments().await.expect("list");
        for ((_, reason), id) in bad.iter().zip(&bad_ids) {
            let r = by_id(&stored, *id);
            assert_eq!(r.sync_status, "failed");
            assert!(
                r.sync_error.as_deref().is_some_and(|e| e.contains(reason)),
                "{r:?}"
            );
        }
        let failed = bad.len() as u64;
        assert_eq!(erp.payment_counts().await.expect("counts"), (3, 0, failed));

        // SQLite keeps a blob typed into a text column as a blob: that row is malformed too,
        // and the rows before it still read.
        if url.starts_with("sqlite") {
            let blob_id = Typed::good("BLOB-AMOUNT").insert(&erp).await;
            sqlx::query("UPDATE erp_payments SET amount = X'FF00' WHERE id = $1")
                .bind(blob_id)
                .execute(erp.db().pool())
                .await
                .expect("storing a blob by hand");
            let page = erp.pending_payments(0, 100).await.expect("no error");
            assert_eq!(ids_of(&page), vec![first_id, typed_id, last_id, blob_id]);
            match &page[3] {
                Err(m) => {
                    assert_eq!(m.payment_ref, "BLOB-AMOUNT");
                    assert!(
                        m.reason.starts_with("amount cannot be read"),
                        "{}",
                        m.reason
                    );
                }
                Ok(p) => panic!("a blob amount read as {p:?}"),
            }
        }
    })
    .await;
}

#[tokio::test]
async fn erp_record_payments_refuses_known_refs_and_records_nothing() {
    each_backend("erp_payments_duplicate", |url| async move {
        let erp = SqlErp::connect(&url).await.expect("connecting the ERP");
        let first = erp.record_payments(&[payment(1)]).await.expect("record");
        let before = erp.payments().await.expect("list");

        let err = erp
            .record_payments(&[payment(2), payment(1), payment(3)])
            .await
            .expect_err("PAY-000001 is recorded already");
        let msg = err.to_string();
        assert!(
            msg.contains("'PAY-000001'") && msg.contains("already recorded"),
            "{msg}"
        );
        assert!(
            !msg.contains("PAY-000002"),
            "only the clash is named: {msg}"
        );

        // The same ref twice in one batch is refused too.
        let mut twin = payment(5);
        twin.amount = dec("1.00");
        let err = erp
            .record_payments(&[payment(4), payment(5), twin])
            .await
            .expect_err("PAY-000005 twice");
        assert!(err.to_string().contains("'PAY-000005'"), "{err}");

        // The clash sits past the first INSERT of a large batch: the rows before it go too.
        let mut many: Vec<NewErpPayment> = (10..2_510).map(payment).collect();
        many.push(payment(1));
        let err = erp
            .record_payments(&many)
            .await
            .expect_err("a clash at the end");
        assert!(err.to_string().contains("'PAY-000001'"), "{err}");

        assert_eq!(
            erp.payments().await.expect("list"),
            before,
            "nothing was recorded"
        );
        assert_eq!(erp.payment_counts().await.expect("counts"), (1, 0, 0));
        assert_eq!(
            ids_of(&erp.pending_payments(0, 10).await.expect("pending")),
            first
        );

        // Without the clash the same payments record, after the first one.
        let ids = erp
            .record_payments(&[payment(2), payment(3)])
            .await
            .expect("record");
        assert!(first[0] < ids[0] && ids[0] < ids[1], "{first:?} {ids:?}");
        assert!(erp.record_payments(&[]).await.expect("nothing").is_empty());
        assert_eq!(erp.payment_counts().await.expect("counts"), (3, 0, 0));
    })
    .await;
}

/// Batches cross the per-statement chunk sizes: every row is recorded, read and settled once.
#[tokio::test]
async fn erp_payments_in_bulk_keep_order_and_settle_in_one_call() {
    each_backend("erp_payments_bulk", |url| async move {
        let erp = SqlErp::connect(&url).await.expect("connecting the ERP");
        let recorded: Vec<NewErpPayment> = (1..=2_345).map(payment).collect();
        let ids = erp.record_payments(&recorded).await.expect("record");
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids ascend");
        let stored = erp.payments().await.expect("list");
        let refs: Vec<&str> = stored.iter().map(|r| r.payment_ref.as_str()).collect();
        let want: Vec<&str> = recorded.iter().map(|p| p.payment_ref.as_str()).collect();
        assert_eq!(refs, want, "rows in the given order");

        let mut read = Vec::new();
        let mut after = 0;
        loop {
            let page = erp.pending_payments(after, 1_000).await.expect("page");
            let Some(last) = ids_of(&page).last().copied() else {
                break;
            };
            after = last;
            read.extend(page);
        }
        let expected: Vec<_> = ids
            .iter()
            .zip(&recorded)
            .map(|(id, p)| as_read(*id, p))
            .collect();
        assert_eq!(read, expected);

        // Every third fails, the rest sync: one call, over several UPDATE chunks.
        let outcomes: Vec<(i64, PaymentSync)> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let outcome = if i % 3 == 0 {
                    PaymentSync::Failed {
                        reason: format!("reason {i}"),
                        coupa_invoice_id: None,
                    }
                } else {
                    PaymentSync::Synced {
                        coupa_invoice_id: 10_000 + id,
                    }
                };
                (*id, outcome)
            })
            .collect();
        erp.settle_payments(&outcomes).await.expect("settle");
        let failed = outcomes
            .iter()
            .filter(|(_, o)| matches!(o, PaymentSync::Failed { .. }))
            .count() as u64;
        assert_eq!(
            erp.payment_counts().await.expect("counts"),
            (0, ids.len() as u64 - failed, failed)
        );
        for (r, (id, outcome)) in erp.payments().await.expect("list").iter().zip(&outcomes) {
            assert_eq!(r.id, *id);
            match outcome {
                PaymentSync::Synced { coupa_invoice_id } => {
                    assert_eq!(
                        (r.sync_status.as_str(), r.coupa_invoice_id),
                        ("synced", Some(*coupa_invoice_id))
                    );
                }
                PaymentSync::Failed { reason, .. } => {
                    assert_eq!(
                        (r.sync_status.as_str(), r.sync_error.as_deref()),
                        ("failed", Some(reason.as_str()))
                    );
                }
            }
        }
        assert!(
            erp.pending_payments(0, 10)
                .await
                .expect("pending")
                .is_empty()
        );
    })
    .await;
}

// ---- Coupa Pay payments (erp_coupa_pay_payments, erp_payment_applications): booked once per
// version, applied to the ERP's invoices, paying and reopening them ----

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s)
        .expect("a timestamp literal")
        .with_timezone(&Utc)
}

/// A detail paying `amount` of Coupa invoice `id` (`INV-{id}` in USD, see [`invoice`]), all of
/// it settling the invoice.
fn detail(id: i64, amount: &str) -> PayApplication {
    PayApplication {
        coupa_detail_id: Some(id * 10),
        source_type: Some("InvoiceHeader".into()),
        coupa_invoice_id: Some(id),
        invoice_number: Some(format!("INV-{id}")),
        amount: dec(amount),
        settled: dec(amount),
        discount: dec("0.00"),
        adjustment: dec("0.00"),
        currency: "USD".into(),
    }
}

/// An invoice's total (see [`invoice`]).
const FULL: &str = "1187.16";

fn pay_payment(
    id: i64,
    status: &str,
    updated_at: &str,
    applications: Vec<PayApplication>,
) -> ErpPayPayment {
    let total: Decimal = applications.iter().map(|a| a.amount).sum();
    ErpPayPayment {
        coupa_payment_id: id,
        status: status.into(),
        payment_identifier: Some(format!("PMT-{id}")),
        pay_from_total: Some(total),
        pay_from_currency: Some("USD".into()),
        pay_to_total: Some(total),
        pay_to_currency: Some("USD".into()),
        exchange_rate: Some(dec("1.0")),
        payee_name: Some("Acme Office Supply".into()),
        pay_to_account_type: Some("CoupaPay::SupplierPaymentAccount".into()),
        error_text: None,
        coupa_updated_at: at(updated_at),
        applications,
    }
}

fn booked(
    change: PayBookingChange,
    unapplied: &[(usize, &str)],
    paid: &[&str],
    reopened: &[&str],
) -> PayBooking {
    let texts = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    PayBooking {
        change,
        unapplied: unapplied.iter().map(|(i, r)| (*i, r.to_string())).collect(),
        paid: texts(paid),
        reopened: texts(reopened),
    }
}

fn unchanged() -> PayBooking {
    booked(PayBookingChange::Unchanged, &[], &[], &[])
}

fn updated(previous_status: &str) -> PayBookingChange {
    PayBookingChange::Updated {
        previous_status: previous_status.into(),
    }
}

/// An ERP with the supplier master and Coupa invoices `ids` posted in that order (so the n-th is
/// `ERP-00000n`), each `INV-{id}` over 1187.16 USD.
async fn erp_with_invoices(url: &str, ids: &[i64]) -> SqlErp {
    let erp = erp(url).await;
    for (n, id) in ids.iter().enumerate() {
        assert_eq!(
            erp.post_invoice(&invoice(*id, "SUP-1", "2025-08-01"))
                .await
                .expect("post"),
            accepted(&format!("ERP-{:06}", n + 1), false)
        );
    }
    erp
}

async fn status_of(erp: &SqlErp, coupa_invoice_id: i64) -> String {
    erp.invoice(coupa_invoice_id)
        .await
        .expect("read")
        .unwrap_or_else(|| panic!("invoice {coupa_invoice_id} is missing"))
        .status
}

async fn applications_of(erp: &SqlErp, coupa_payment_id: i64) -> Vec<ErpPaymentApplicationRecord> {
    erp.payment_applications()
        .await
        .expect("list applications")
        .into_iter()
        .filter(|a| a.coupa_payment_id == coupa_payment_id)
        .collect()
}

/// (applied, problem) of each application of a payment, in order.
async fn applied_of(erp: &SqlErp, coupa_payment_id: i64) -> Vec<(bool, Option<String>)> {
    applications_of(erp, coupa_payment_id)
        .await
        .into_iter()
        .map(|a| (a.applied, a.problem))
        .collect()
}

#[tokio::test]
async fn erp_pay_booking_a_version_twice_books_it_once() {
    each_backend("erp_pay_twice", |url| async move {
        let erp = erp_with_invoices(&url, &[1001, 1002]).await;
        let p = pay_payment(
            501,
            PAY_STATUS_SETTLES,
            "2026-03-01T10:00:00.123456Z",
            vec![detail(1001, FULL), detail(1002, "100.00")],
        );
        let before = db::now();
        assert_eq!(
            erp.book_pay_payment(&p).await.expect("book"),
            booked(PayBookingChange::Inserted, &[], &["ERP-000001"], &[])
        );
        let stored = erp.pay_payments().await.expect("list");
        assert_eq!(stored.len(), 1);
        let row = &stored[0];
        assert_eq!(row.coupa_payment_id, 501);
        assert_eq!(row.status, PAY_STATUS_SETTLES);
        assert_eq!(row.payment_identifier.as_deref(), Some("PMT-501"));
        assert_eq!(row.pay_from_total.as_deref(), Some("1287.16"));
        assert_eq!(row.payee_name.as_deref(), Some("Acme Office Supply"));
        assert_eq!(
            row.pay_to_account_type.as_deref(),
            Some("CoupaPay::SupplierPaymentAccount")
        );
        assert_eq!(row.error_text, None);
        assert_eq!(
            row.updated_at.as_deref(),
            Some("2026-03-01T10:00:00.123456Z"),
            "Coupa's updated-at of the version booked"
        );
        let exported = db::parse_timestamp(row.exported_at.as_deref().expect("exported_at"))
            .expect("RFC 3339");
        assert!(before <= exported && exported <= db::now(), "{exported}");
        assert_eq!(row.changed_at, row.exported_at);
        let applications = applications_of(&erp, 501).await;
        assert_eq!(
            applications
                .iter()
                .map(|a| (a.coupa_detail_id, a.coupa_invoice_id, a.amount.as_str()))
                .collect::<Vec<_>>(),
            vec![
                (Some(10010), Some(1001), "1187.16"),
                (Some(10020), Some(1002), "100.00")
            ]
        );
        assert!(
            applications
                .iter()
                .all(|a| a.applied && a.problem.is_none())
        );

        // Again, and again with only a later updated-at: nothing is written.
        assert_eq!(erp.book_pay_payment(&p).await.expect("again"), unchanged());
        let mut later = p.clone();
        later.coupa_updated_at = at("2026-03-02T00:00:00Z");
        assert_eq!(
            erp.book_pay_payment(&later).await.expect("later"),
            unchanged()
        );
        assert_eq!(erp.pay_payments().await.expect("list"), stored);
        assert_eq!(applications_of(&erp, 501).await, applications);
        assert_eq!(status_of(&erp, 1001).await, "paid");
        assert_eq!(status_of(&erp, 1002).await, "open");
    })
    .await;
}

#[tokio::test]
async fn erp_pay_newer_version_updates_in_place_and_older_is_ignored() {
    each_backend("erp_pay_versions", |url| async move {
        let erp = erp_with_invoices(&url, &[1001, 1002]).await;
        let v1 = pay_payment(
            502,
            "processing",
            "2026-03-01T10:00:00Z",
            vec![detail(1001, FULL), detail(1002, FULL)],
        );
        assert_eq!(
            erp.book_pay_payment(&v1).await.expect("v1"),
            booked(PayBookingChange::Inserted, &[], &[], &[])
        );
        let first = erp.pay_payments().await.expect("list");
        assert_eq!(
            status_of(&erp, 1001).await,
            "open",
            "processing settles nothing"
        );

        let mut v2 = pay_payment(
            502,
            PAY_STATUS_SETTLES,
            "2026-03-01T11:00:00Z",
            vec![detail(1001, FULL)],
        );
        v2.applications[0].coupa_detail_id = Some(777);
        assert_eq!(
            erp.book_pay_payment(&v2).await.expect("v2"),
            booked(updated("processing"), &[], &["ERP-000001"], &[])
        );
        let rows = erp.pay_payments().await.expect("list");
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0].status, PAY_STATUS_SETTLES);
        assert_eq!(rows[0].pay_from_total.as_deref(), Some(FULL));
        assert_eq!(
            rows[0].updated_at.as_deref(),
            Some("2026-03-01T11:00:00.000000Z")
        );
        assert_eq!(
            rows[0].exported_at, first[0].exported_at,
            "first committed, kept"
        );
        assert!(
            rows[0].changed_at > first[0].changed_at,
            "{rows:?} {first:?}"
        );
        let applications = applications_of(&erp, 502).await;
        assert_eq!(
            applications
                .iter()
                .map(|a| (a.coupa_detail_id, a.coupa_invoice_id))
                .collect::<Vec<_>>(),
            vec![(Some(777), Some(1001))],
            "replaced, not added to"
        );
        assert_eq!(erp.payment_applications().await.expect("all").len(), 1);
        assert_eq!(
            (status_of(&erp, 1001).await, status_of(&erp, 1002).await),
            ("paid".to_owned(), "open".to_owned())
        );

        // An older version arriving late changes nothing.
        let old = pay_payment(502, "cancelled", "2026-03-01T10:30:00Z", vec![]);
        assert_eq!(erp.book_pay_payment(&old).await.expect("old"), unchanged());
        assert_eq!(erp.pay_payments().await.expect("list"), rows);
        assert_eq!(applications_of(&erp, 502).await, applications);
        assert_eq!(status_of(&erp, 1001).await, "paid");

        // The same updated-at with other content is a change (Coupa edited it in place).
        let mut same_time = v2.clone();
        same_time.payee_name = Some("Acme Office Supply Inc.".into());
        assert_eq!(
            erp.book_pay_payment(&same_time).await.expect("same time"),
            booked(updated(PAY_STATUS_SETTLES), &[], &[], &[])
        );
        let rows = erp.pay_payments().await.expect("list");
        assert_eq!(
            rows[0].payee_name.as_deref(),
            Some("Acme Office Supply Inc.")
        );
        assert_eq!(status_of(&erp, 1001).await, "paid", "still settled");
    })
    .await;
}

#[tokio::test]
async fn erp_pay_settles_invoices_in_full_and_leaves_partial_ones_open() {
    each_backend("erp_pay_settle", |url| async move {
        let erp = erp_with_invoices(&url, &[1001, 1002, 1003]).await;
        // Listed out of order: `paid` comes back sorted.
        let both = pay_payment(
            601,
            PAY_STATUS_SETTLES,
            "2026-03-01T10:00:00Z",
            vec![detail(1002, FULL), detail(1001, FULL)],
        );
        assert_eq!(
            erp.book_pay_payment(&both).await.expect("book"),
            booked(
                PayBookingChange::Inserted,
                &[],
                &["ERP-000001", "ERP-000002"],
                &[]
            )
        );
        assert_eq!(status_of(&erp, 1001).await, "paid");
        assert_eq!(status_of(&erp, 1002).await, "paid");
        let (created, changed): (String, String) = {
            let row = sqlx::query(
                "SELECT created_at, updated_at FROM erp_invoices WHERE coupa_invoice_id = 1001",
            )
            .fetch_one(erp.db().pool())
            .await
            .expect("read");
            use sqlx::Row;
            (row.get("created_at"), row.get("updated_at"))
        };
        assert!(
            changed > created,
            "updated_at moves with the status: {created} {changed}"
        );

        // Part of the third: open.
        let part = pay_payment(
            602,
            PAY_STATUS_SETTLES,
            "2026-03-01T10:00:00Z",
            vec![detail(1003, "500.00")],
        );
        assert_eq!(
            erp.book_pay_payment(&part).await.expect("book"),
            booked(PayBookingChange::Inserted, &[], &[], &[])
        );
        assert_eq!(status_of(&erp, 1003).await, "open");

        // The rest: 600.00 of cash and an 87.16 discount settle 687.16, and the invoice with it.
        let mut rest = detail(1003, "600.00");
        rest.discount = dec("87.16");
        rest.settled = dec("687.16");
        let rest = pay_payment(603, PAY_STATUS_SETTLES, "2026-03-01T10:00:00Z", vec![rest]);
        assert_eq!(
            erp.book_pay_payment(&rest).await.expect("book"),
            booked(PayBookingChange::Inserted, &[], &["ERP-000003"], &[])
        );
        assert_eq!(status_of(&erp, 1003).await, "paid");
        let stored = applications_of(&erp, 603).await;
        assert_eq!(
            (
                stored[0].amount.as_str(),
                stored[0].settled.as_deref(),
                stored[0].discount.as_deref(),
                stored[0].adjustment.as_deref()
            ),
            ("600.00", Some("687.16"), Some("87.16"), Some("0.00"))
        );
    })
    .await;
}

#[tokio::test]
async fn erp_pay_failed_then_successful_then_cancelled() {
    each_backend("erp_pay_lifecycle", |url| async move {
        let erp = erp_with_invoices(&url, &[1001, 1002]).await;
        let mut failed = pay_payment(
            701,
            "completed_with_errors",
            "2026-03-01T10:00:00Z",
            vec![detail(1001, FULL), detail(1002, FULL)],
        );
        failed.error_text = Some("Bank rejected the transfer: account closed".into());
        assert_eq!(
            erp.book_pay_payment(&failed).await.expect("failed"),
            booked(PayBookingChange::Inserted, &[], &[], &[])
        );
        assert_eq!(status_of(&erp, 1001).await, "open");
        assert_eq!(status_of(&erp, 1002).await, "open");
        assert_eq!(
            applied_of(&erp, 701).await,
            vec![(true, None), (true, None)],
            "applied, but a failed payment settles nothing"
        );
        assert_eq!(
            erp.pay_payments().await.expect("list")[0]
                .error_text
                .as_deref(),
            Some("Bank rejected the transfer: account closed")
        );

        let mut succeeded = failed.clone();
        succeeded.status = PAY_STATUS_SETTLES.into();
        succeeded.error_text = None;
        succeeded.coupa_updated_at = at("2026-03-02T10:00:00Z");
        assert_eq!(
            erp.book_pay_payment(&succeeded).await.expect("succeeded"),
            booked(
                updated("completed_with_errors"),
                &[],
                &["ERP-000001", "ERP-000002"],
                &[]
            )
        );
        assert_eq!(status_of(&erp, 1001).await, "paid");
        assert_eq!(erp.pay_payments().await.expect("list")[0].error_text, None);

        // Three invoices paid, one of them (1003) since cancelled in the ERP.
        let mut third = succeeded.clone();
        third.applications.push(detail(1003, FULL));
        third.coupa_updated_at = at("2026-03-02T11:00:00Z");
        erp.post_invoice(&invoice(1003, "SUP-1", "2025-08-01"))
            .await
            .expect("post");
        assert_eq!(
            erp.book_pay_payment(&third).await.expect("third"),
            booked(updated(PAY_STATUS_SETTLES), &[], &["ERP-000003"], &[])
        );
        erp.cancel_invoice(1003).await.expect("cancel");

        let mut cancelled = third.clone();
        cancelled.status = "cancelled".into();
        cancelled.coupa_updated_at = at("2026-03-03T10:00:00Z");
        assert_eq!(
            erp.book_pay_payment(&cancelled).await.expect("cancelled"),
            booked(
                updated(PAY_STATUS_SETTLES),
                &[(2, "invoice 'INV-1003' is cancelled in the ERP (ERP-000003)")],
                &[],
                &["ERP-000001", "ERP-000002"]
            )
        );
        assert_eq!(status_of(&erp, 1001).await, "open");
        assert_eq!(status_of(&erp, 1002).await, "open");
        assert_eq!(status_of(&erp, 1003).await, "cancelled", "left alone");
        assert_eq!(
            erp.pay_payments().await.expect("list")[0].status,
            "cancelled"
        );
        assert_eq!(applications_of(&erp, 701).await.len(), 3);
    })
    .await;
}

#[tokio::test]
async fn erp_pay_detail_of_an_unknown_invoice_waits_until_it_is_posted() {
    each_backend("erp_pay_waiting", |url| async move {
        let erp = erp_with_invoices(&url, &[1001]).await;
        let p = pay_payment(
            801,
            PAY_STATUS_SETTLES,
            "2026-03-01T10:00:00Z",
            vec![detail(1001, FULL), detail(1077, FULL)],
        );
        let unknown = "invoice 'INV-1077' (Coupa id 1077) is not in the ERP";
        assert_eq!(
            erp.book_pay_payment(&p).await.expect("book"),
            booked(
                PayBookingChange::Inserted,
                &[(1, unknown)],
                &["ERP-000001"],
                &[]
            )
        );
        assert_eq!(
            applied_of(&erp, 801).await,
            vec![(true, None), (false, Some(unknown.to_owned()))]
        );

        // Two more wait: one for part of an invoice, one naming the wrong number.
        let part = pay_payment(
            802,
            PAY_STATUS_SETTLES,
            "2026-03-01T10:00:00Z",
            vec![detail(1078, "100.00")],
        );
        erp.book_pay_payment(&part).await.expect("book");
        let mut wrong = detail(1079, FULL);
        wrong.invoice_number = Some("INV-WRONG".into());
        let wrong = pay_payment(803, PAY_STATUS_SETTLES, "2026-03-01T10:00:00Z", vec![wrong]);
        assert_eq!(
            erp.book_pay_payment(&wrong).await.expect("book").unapplied,
            vec![(
                0,
                "invoice 'INV-WRONG' (Coupa id 1079) is not in the ERP".to_owned()
            )]
        );
        // What each payment still waits for; a payment the ERP does not hold is absent.
        let problems = erp.pay_problems(&[801, 803, 999]).await.expect("problems");
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert_eq!(problems[&801], vec![unknown.to_owned()]);
        assert_eq!(problems[&803].len(), 1, "{problems:?}");

        // The invoice arrives: the waiting detail applies and settles it at once.
        assert_eq!(
            erp.post_invoice(&invoice(1077, "SUP-1", "2025-08-01"))
                .await
                .expect("post"),
            accepted("ERP-000002", false)
        );
        assert_eq!(
            applied_of(&erp, 801).await,
            vec![(true, None), (true, None)]
        );
        assert_eq!(status_of(&erp, 1077).await, "paid");
        let problems = erp.pay_problems(&[801]).await.expect("problems");
        assert_eq!(
            problems[&801],
            Vec::<String>::new(),
            "nothing waits any more"
        );
        // Booking the same version again is still no change.
        assert_eq!(erp.book_pay_payment(&p).await.expect("again"), unchanged());

        // Part of an invoice: applied, the invoice stays open.
        erp.post_invoice(&invoice(1078, "SUP-1", "2025-08-01"))
            .await
            .expect("post");
        assert_eq!(applied_of(&erp, 802).await, vec![(true, None)]);
        assert_eq!(status_of(&erp, 1078).await, "open");

        // The wrong number stays unapplied, now with the reason that holds.
        erp.post_invoice(&invoice(1079, "SUP-1", "2025-08-01"))
            .await
            .expect("post");
        assert_eq!(
            applied_of(&erp, 803).await,
            vec![(
                false,
                Some(
                    "Coupa invoice 1079 is 'INV-1079' in the ERP, but the payment names 'INV-WRONG'"
                        .to_owned()
                )
            )]
        );
        assert_eq!(status_of(&erp, 1079).await, "open");
    })
    .await;
}

#[tokio::test]
async fn erp_pay_mismatches_are_named_and_expense_reports_never_apply() {
    each_backend("erp_pay_mismatch", |url| async move {
        let erp = erp_with_invoices(&url, &[1001]).await;
        let mut in_euro = invoice(1002, "SUP-1", "2025-08-01");
        in_euro.currency = "EUR".into();
        assert_eq!(
            erp.post_invoice(&in_euro).await.expect("post"),
            accepted("ERP-000002", false)
        );
        erp.post_invoice(&invoice(1003, "SUP-1", "2025-08-01"))
            .await
            .expect("post");
        erp.cancel_invoice(1003).await.expect("cancel");

        let mut wrong_number = detail(1001, FULL);
        wrong_number.invoice_number = Some(" INV-9 ".into());
        // An expense report whose id is also an ERP invoice's Coupa id: never matched to it.
        let expense = PayApplication {
            source_type: Some("ExpenseReport".into()),
            invoice_number: Some("ER-55".into()),
            ..detail(1001, FULL)
        };
        let mut no_number = detail(1001, FULL);
        no_number.invoice_number = None;
        let mut no_id = detail(1001, FULL);
        no_id.coupa_invoice_id = None;
        let p = pay_payment(
            901,
            PAY_STATUS_SETTLES,
            "2026-03-01T10:00:00Z",
            vec![
                wrong_number,
                detail(1002, FULL),
                detail(1003, FULL),
                expense,
                no_number,
                no_id,
            ],
        );
        let reasons = [
            "Coupa invoice 1001 is 'INV-1001' in the ERP, but the payment names 'INV-9'",
            "invoice 'INV-1002' is in EUR in the ERP, but the payment is in USD",
            "invoice 'INV-1003' is cancelled in the ERP (ERP-000003)",
            "the payment detail for Coupa invoice 1001 has no invoice number",
            "the payment detail for invoice 'INV-1001' has no Coupa invoice id",
        ];
        assert_eq!(
            erp.book_pay_payment(&p).await.expect("book"),
            booked(
                PayBookingChange::Inserted,
                &[
                    (0, reasons[0]),
                    (1, reasons[1]),
                    (2, reasons[2]),
                    (4, reasons[3]),
                    (5, reasons[4])
                ],
                &[],
                &[]
            )
        );
        let some = |r: &str| Some(r.to_owned());
        assert_eq!(
            applied_of(&erp, 901).await,
            vec![
                (false, some(reasons[0])),
                (false, some(reasons[1])),
                (false, some(reasons[2])),
                (false, None),
                (false, some(reasons[3])),
                (false, some(reasons[4])),
            ]
        );
        assert_eq!(
            applications_of(&erp, 901).await[3].source_type.as_deref(),
            Some("ExpenseReport")
        );
        assert_eq!(
            status_of(&erp, 1001).await,
            "open",
            "the expense report paid nothing"
        );
        assert_eq!(status_of(&erp, 1002).await, "open");
        assert_eq!(status_of(&erp, 1003).await, "cancelled");

        // An invoice posted under an expense report's id leaves the expense report alone.
        let report = PayApplication {
            source_type: Some("ExpenseReport".into()),
            ..detail(1099, FULL)
        };
        let expenses = pay_payment(
            902,
            PAY_STATUS_SETTLES,
            "2026-03-01T10:00:00Z",
            vec![report],
        );
        assert_eq!(
            erp.book_pay_payment(&expenses).await.expect("book"),
            booked(PayBookingChange::Inserted, &[], &[], &[])
        );
        erp.post_invoice(&invoice(1099, "SUP-1", "2025-08-01"))
            .await
            .expect("post");
        assert_eq!(applied_of(&erp, 902).await, vec![(false, None)]);
        assert_eq!(status_of(&erp, 1099).await, "open");
    })
    .await;
}

#[tokio::test]
async fn erp_pay_decimals_are_kept_as_text() {
    each_backend("erp_pay_decimals", |url| async move {
        let erp = erp_with_invoices(&url, &[1001]).await;
        let yen = PayApplication {
            coupa_detail_id: Some(1),
            source_type: Some("InvoiceHeader".into()),
            coupa_invoice_id: Some(5005),
            invoice_number: Some("JP-1".into()),
            amount: dec("1500"),
            settled: dec("1500"),
            discount: dec("0"),
            adjustment: dec("0.000"),
            currency: "JPY".into(),
        };
        let mut p = pay_payment(950, PAY_STATUS_SETTLES, "2026-03-01T10:00:00Z", vec![yen]);
        p.pay_from_total = Some(dec("20000.00"));
        p.pay_to_total = Some(dec("18246.91"));
        p.pay_to_currency = Some("EUR".into());
        p.exchange_rate = Some(dec("0.912345678"));
        erp.book_pay_payment(&p).await.expect("book");
        let row = &erp.pay_payments().await.expect("list")[0];
        assert_eq!(
            (
                row.pay_from_total.as_deref(),
                row.pay_to_total.as_deref(),
                row.exchange_rate.as_deref()
            ),
            (Some("20000.00"), Some("18246.91"), Some("0.912345678"))
        );
        let a = &applications_of(&erp, 950).await[0];
        assert_eq!(
            (
                a.amount.as_str(),
                a.settled.as_deref(),
                a.discount.as_deref(),
                a.adjustment.as_deref(),
                a.currency.as_str()
            ),
            ("1500", Some("1500"), Some("0"), Some("0.000"), "JPY")
        );

        // The same value at another scale is a change, and is stored as given.
        let mut rescaled = p.clone();
        rescaled.pay_from_total = Some(dec("20000.0"));
        assert_eq!(
            erp.book_pay_payment(&rescaled).await.expect("rescaled"),
            booked(
                updated(PAY_STATUS_SETTLES),
                &[(0, "invoice 'JP-1' (Coupa id 5005) is not in the ERP")],
                &[],
                &[]
            )
        );
        assert_eq!(
            erp.pay_payments().await.expect("list")[0]
                .pay_from_total
                .as_deref(),
            Some("20000.0")
        );

        // A settled amount that cannot be read is an error naming the row, and nothing is
        // booked.
        let good = pay_payment(
            951,
            PAY_STATUS_SETTLES,
            "2026-03-01T10:00:00Z",
            vec![detail(1001, "1.00")],
        );
        erp.book_pay_payment(&good).await.expect("book");
        sqlx::query(
            "UPDATE erp_payment_applications SET settled = 'lots' WHERE coupa_payment_id = 951",
        )
        .execute(erp.db().pool())
        .await
        .expect("corrupting by hand");
        let other = pay_payment(
            952,
            PAY_STATUS_SETTLES,
            "2026-03-01T10:00:00Z",
            vec![detail(1001, "2.00")],
        );
        let err = erp
            .book_pay_payment(&other)
            .await
            .expect_err("bad stored amount");
        let msg = err.to_string();
        assert!(
            msg.contains("Coupa Pay payment 952")
                && msg.contains("Coupa Pay payment 951")
                && msg.contains("'lots'"),
            "{msg}"
        );
        assert_eq!(
            erp.pay_payments()
                .await
                .expect("list")
                .iter()
                .map(|r| r.coupa_payment_id)
                .collect::<Vec<_>>(),
            vec![950, 951]
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn erp_pay_concurrent_bookings_of_one_new_payment_book_it_once() {
    each_backend("erp_pay_concurrent", |url| async move {
        let erp = erp_with_invoices(&url, &[1001, 1002]).await;
        let p = pay_payment(
            990,
            PAY_STATUS_SETTLES,
            "2026-03-01T10:00:00Z",
            vec![detail(1001, FULL), detail(1002, "1.00")],
        );
        let (a, b) = tokio::join!(erp.book_pay_payment(&p), erp.book_pay_payment(&p));
        let mut answers = vec![a.expect("first"), b.expect("second")];
        answers.sort_by_key(|b| b.change != PayBookingChange::Inserted);
        assert_eq!(
            answers,
            vec![
                booked(PayBookingChange::Inserted, &[], &["ERP-000001"], &[]),
                unchanged()
            ]
        );
        assert_eq!(erp.pay_payments().await.expect("list").len(), 1);
        assert_eq!(applications_of(&erp, 990).await.len(), 2, "not doubled");
        assert_eq!(status_of(&erp, 1001).await, "paid");

        // Many at once, on tasks of their own, for a payment without ERP invoices (nothing to
        // lock: only the unique index keeps them apart).
        let expenses = pay_payment(
            991,
            PAY_STATUS_SETTLES,
            "2026-03-01T10:00:00Z",
            vec![PayApplication {
                source_type: Some("ExpenseReport".into()),
                ..detail(77, "12.34")
            }],
        );
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let erp = erp.clone();
                let p = expenses.clone();
                tokio::spawn(async move { erp.book_pay_payment(&p).await })
            })
            .collect();
        let mut inserted = 0;
        for t in tasks {
            let booking = t.await.expect("task").expect("book");
            match booking.change {
                PayBookingChange::Inserted => inserted += 1,
                PayBookingChange::Unchanged => {}
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(inserted, 1);
        assert_eq!(erp.pay_payments().await.expect("list").len(), 2);
        assert_eq!(applications_of(&erp, 991).await.len(), 1);
    })
    .await;
}

/// A payment booked while its invoice is being posted is applied by one or the other, whichever
/// commits second: the invoice always ends up paid.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn erp_pay_booking_while_the_invoice_is_posted_still_applies() {
    each_backend("erp_pay_meets_post", |url| async move {
        let erp = erp(&url).await;
        for round in 0..25 {
            let id = 3000 + round;
            let p = pay_payment(
                4000 + round,
                PAY_STATUS_SETTLES,
                "2026-03-01T10:00:00Z",
                vec![detail(id, FULL)],
            );
            let inv = invoice(id, "SUP-1", "2025-08-01");
            let (booking, post) = tokio::join!(erp.book_pay_payment(&p), erp.post_invoice(&inv));
            booking.expect("book");
            post.expect("post");
            assert_eq!(
                applied_of(&erp, p.coupa_payment_id).await,
                vec![(true, None)],
                "round {round}"
            );
            assert_eq!(status_of(&erp, id).await, "paid", "round {round}");
        }
    })
    .await;
}

/// A booking of a new payment whose insert meets another one's row, inserted after its check and
/// not yet committed, starts again once that commits and books over it as over any earlier
/// version. (On SQLite the writer lock makes the booking wait before its check instead; the
/// answer is the same.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erp_pay_booking_losing_the_insert_race_books_over_the_winner() {
    each_backend("erp_pay_race", |url| async move {
        let erp = erp_with_invoices(&url, &[1001]).await;
        let mut winner = erp.db().begin_write().await.expect("begin");
        sqlx::query(
            "INSERT INTO erp_coupa_pay_payments (coupa_payment_id, status, updated_at, \
             exported_at, changed_at) VALUES (995, 'processing', '2026-03-01T09:00:00.000000Z', \
             '2026-03-01T09:00:01.000000Z', '2026-03-01T09:00:01.000000Z')",
        )
        .execute(winner.conn())
        .await
        .expect("the winner's insert");

        let p = pay_payment(
            995,
            PAY_STATUS_SETTLES,
            "2026-03-01T10:00:00Z",
            vec![PayApplication {
                source_type: Some("ExpenseReport".into()),
                ..detail(5, "5.00")
            }],
        );
        let booking = {
            let erp = erp.clone();
            let p = p.clone();
            tokio::spawn(async move { erp.book_pay_payment(&p).await })
        };
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert!(!booking.is_finished(), "the booking waits for the winner");
        winner.commit().await.expect("the winner commits");

        assert_eq!(
            booking.await.expect("task").expect("no error"),
            booked(updated("processing"), &[], &[], &[])
        );
        let rows = erp.pay_payments().await.expect("list");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].status, PAY_STATUS_SETTLES);
        assert_eq!(
            rows[0].exported_at.as_deref(),
            Some("2026-03-01T09:00:01.000000Z"),
            "the winner's row, updated"
        );
        assert_eq!(applications_of(&erp, 995).await.len(), 1);
    })
    .await;
}
