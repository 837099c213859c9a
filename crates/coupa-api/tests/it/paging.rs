//! The paging guarantee: a caller that marks `exported=false` records exported while it
//! iterates gets every record exactly once by id, and offset paging demonstrably skips.

use std::collections::BTreeSet;

use coupa_api::Format;
use coupa_api::query::{Fields, Query};
use coupa_doc::Value;
use coupa_sim::SimConfig;
use futures_util::StreamExt;

use crate::common::setup;

const RECORDS: usize = 1_000;

/// A simulator whose first 1,000 invoices are all unexported, so `exported=false` matches
/// exactly them.
async fn thousand_unexported(format: Format) -> (crate::common::Setup, BTreeSet<i64>) {
    let s = setup(
        format,
        SimConfig {
            invoices: RECORDS,
            pay_payments: 0,
            ..SimConfig::default()
        },
    )
    .await;
    let ids = {
        let mut db = s.sim.state.db.lock();
        db.invoices
            .rows_mut()
            .map(|r| {
                r.insert("exported", false);
                r.get("id").and_then(Value::as_i64).expect("id")
            })
            .collect::<BTreeSet<_>>()
    };
    assert_eq!(ids.len(), RECORDS);
    (s, ids)
}

fn unexported() -> Query {
    Query::new()
        .eq("exported", false)
        .fields(Fields::new(["id", "exported"]))
}

#[tokio::test]
async fn id_paging_sees_every_record_once_while_the_caller_marks_them_exported() {
    for format in [Format::Json, Format::Xml] {
        let (s, ids) = thousand_unexported(format).await;
        let mut seen = Vec::new();
        let mut stream = std::pin::pin!(s.client.invoices().list(unexported()).into_stream());
        while let Some(item) = stream.next().await {
            let inv = item.expect("page").expect("record");
            assert!(
                s.client
                    .invoices()
                    .mark_exported(inv.id)
                    .await
                    .expect("mark exported")
            );
            seen.push(inv.id.get());
        }
        let unique: BTreeSet<i64> = seen.iter().copied().collect();
        assert_eq!(unique.len(), seen.len(), "{format:?}: no record twice");
        assert_eq!(unique, ids, "{format:?}: every record once");
        let db = s.sim.state.db.lock();
        assert!(
            db.invoices
                .rows()
                .all(|r| r.get("exported").and_then(Value::as_bool) == Some(true))
        );
    }
}

#[tokio::test]
async fn offset_paging_skips_records_when_the_set_shrinks_under_it() {
    let (s, ids) = thousand_unexported(Format::Json).await;
    let mut seen = BTreeSet::new();
    let mut pager = s.client.invoices().list(unexported()).by_offset();
    while let Some(page) = pager.next_page().await.expect("page") {
        for item in page {
            let inv = item.expect("record");
            s.client
                .invoices()
                .mark_exported(inv.id)
                .await
                .expect("mark exported");
            seen.insert(inv.id.get());
        }
    }
    let skipped = ids.difference(&seen).count();
    // Page 1 takes 1-50 and exports them; offset 50 then lands on what was record 101, and
    // so on: half of every hundred is jumped over.
    assert_eq!(skipped, RECORDS / 2, "offset paging skips half the records");
    println!(
        "offset paging over {RECORDS} records while exporting saw {} and skipped {skipped}",
        seen.len()
    );
}
