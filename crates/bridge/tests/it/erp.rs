//! The embedded reference ERP on SQLite and PostgreSQL: posting, idempotency (also under
//! concurrency), rejections, cancelling, reopening.

use std::collections::BTreeSet;
use std::str::FromStr;

use chrono::NaiveDate;
use coupa_bridge::erp::{CancelOutcome, Erp, ErpInvoice, ErpInvoiceLine, PostOutcome, SqlErp};
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
        invoice_number: format!("INV-{id}"),
        supplier_number: Some(supplier.into()),
        supplier_name: Some("Acme Office Supply".into()),
        invoice_date: date(invoice_date),
        currency: "USD".into(),
        total: dec("1187.16"),
        lines: vec![
            ErpInvoiceLine {
                line_num: 1,
                description: "Copy paper, A4, 80 g".into(),
                quantity: dec("12"),
                price: dec("42.50"),
                total: dec("510.00"),
                account_code: Some("6100-OFFICE".into()),
            },
            ErpInvoiceLine {
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
        assert_eq!(applied.len(), 1);

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
