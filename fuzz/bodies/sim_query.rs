//! Fuzz body `sim_query`: the simulator's query language, `coupa_sim::query`. Shared as is by
//! `fuzz/fuzz_targets/sim_query.rs` and `crates/coupa-sim/tests/fuzz_sim.rs` (through `#[path]`).

use std::collections::{BTreeMap, HashSet};
use std::sync::OnceLock;

use coupa_sim::config::ApiFilter;
use coupa_sim::{Db, Resource, SimConfig, query, seed};

/// A small seeded instance (every resource the query language serves has rows) and the
/// default named filters, built once.
fn instance() -> &'static (Db, BTreeMap<String, ApiFilter>) {
    static INSTANCE: OnceLock<(Db, BTreeMap<String, ApiFilter>)> = OnceLock::new();
    INSTANCE.get_or_init(|| {
        let config = SimConfig {
            invoices: 40,
            pay_payments: 12,
            ..SimConfig::default()
        };
        (seed::generate(&config), config.filters)
    })
}

/// Any bytes as a raw query string, against every resource, with and without a template row:
/// parsing answers a query or an error naming something, never a panic. A parsed index query
/// selects a page of at most `limit` (1 to 50) distinct rows that all meet its conditions, and
/// as many as the matching rows left after `offset` allow (so the id-range shortcut drops no
/// match); its projection applies to every row. Show/update projections parse and apply too.
pub fn run(data: &[u8]) {
    let raw = String::from_utf8_lossy(data);
    let (db, filters) = instance();
    for resource in Resource::ALL {
        let table = db.table(resource);
        for template in [table.rows().next(), None] {
            let q = match query::parse_list(&raw, resource, filters, template) {
                Ok(q) => q,
                Err(e) => {
                    assert!(!e.message.is_empty(), "an error without a message: {e:?}");
                    continue;
                }
            };
            assert!(
                (1..=query::MAX_LIMIT).contains(&q.limit),
                "limit {} out of range for {raw:?}",
                q.limit
            );
            let page = q.select(table);
            let matching = table.rows().filter(|r| q.matches(r)).count();
            assert_eq!(
                page.len(),
                matching.saturating_sub(q.offset).min(q.limit),
                "page size for {raw:?} on {resource:?} ({matching} rows match, offset {})",
                q.offset
            );
            let mut ids = HashSet::new();
            for row in page {
                assert!(q.matches(row), "a selected row does not match {raw:?}");
                assert!(
                    ids.insert(row.get("id").map(|v| v.to_plain_string())),
                    "a row selected twice for {raw:?}"
                );
                let _ = q.projection.apply(row);
            }
        }
        for allow_none in [false, true] {
            if let Ok(p) = query::parse_projection(&raw, resource, filters, allow_none) {
                for row in table.rows().take(3) {
                    let _ = p.apply(row);
                }
            }
        }
    }
}
