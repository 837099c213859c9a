//! Fuzz body `csv_loader`: the simulator's reader of Coupa's invoice-payment CSV,
//! `coupa_sim::csv_loader::load`. Shared as is by `fuzz/fuzz_targets/csv_loader.rs` and
//! `crates/coupa-sim/tests/fuzz_sim.rs` (through `#[path]`).

use std::sync::OnceLock;

use coupa_doc::lenient::parse_datetime;
use coupa_doc::{Object, Value};
use coupa_sim::{Db, SimConfig, SimState, csv_loader};

/// The invoices a file may pay: numbers the committed corpus uses, a number two suppliers
/// share, one with CSV's special characters, and one that is not approved.
pub const INVOICES: &[(&str, &str, &str, &str)] = &[
    ("INV-1", "Acme", "S-1", "approved"),
    ("INV-2", "Acme", "S-1", "approved"),
    ("INV-2", "Beta GmbH", "S-2", "approved"),
    ("INV,\"7\"", "Acme, Inc.", "S-3", "approved"),
    ("DRAFT-1", "Acme", "S-1", "pending_approval"),
];

fn prototype() -> &'static Db {
    static DB: OnceLock<Db> = OnceLock::new();
    DB.get_or_init(|| {
        let mut db = Db::default();
        let date = parse_datetime("2025-01-15").map_or(Value::Null, Value::DateTime);
        for (i, (number, name, supplier_number, status)) in INVOICES.iter().enumerate() {
            db.invoices.insert_with(|id| {
                Object::new()
                    .with("id", id)
                    .with("status", *status)
                    .with("invoice-number", *number)
                    .with("invoice-date", date.clone())
                    .with(
                        "supplier",
                        Object::new()
                            .with("id", 101 + i as i64)
                            .with("name", *name)
                            .with("number", *supplier_number),
                    )
                    .with("payments", Value::Array(Vec::new()))
            });
        }
        db
    })
}

/// Runs `f` on this thread's instance, reset to hold only [`INVOICES`] (an instance is costly
/// to make; the loader reads and writes only its database).
pub fn with_instance<T>(f: impl FnOnce(&SimState) -> T) -> T {
    thread_local! {
        static STATE: SimState = SimState::new(SimConfig {
            invoices: 0,
            pay_payments: 0,
            ..SimConfig::default()
        });
    }
    STATE.with(|state| {
        *state.db.lock() = prototype().clone();
        f(state)
    })
}

/// Any bytes as a payment file: the loader records the load (`done` or `failed`, with a result
/// text) without panicking, and a file it rejects as a whole changes no invoice.
pub fn run(data: &[u8]) {
    with_instance(|state| {
        let before: Vec<Object> = state.db.lock().invoices.rows().cloned().collect();
        let id = csv_loader::load(state, "payments.csv", data);
        let db = state.db.lock();
        let Some(record) = db.data_file_sources.get(id) else {
            panic!("load {id} is not recorded");
        };
        let status = record.get("status").and_then(Value::as_str);
        let result = record
            .get("result-text")
            .and_then(Value::as_str)
            .unwrap_or_default();
        assert!(
            !result.is_empty(),
            "a load without a result text: {record:?}"
        );
        match status {
            Some("done") => {}
            Some("failed") => {
                let after: Vec<Object> = db.invoices.rows().cloned().collect();
                assert!(
                    after == before,
                    "a rejected file changed invoices: {result}"
                );
            }
            other => panic!("load status {other:?}: {record:?}"),
        }
    });
}
