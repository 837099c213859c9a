//! Fuzz body `payment_csv`: the connector's payment file writer
//! (`coupa_bridge::flows::payment_push::csv_file`) read back by Coupa's loader as the simulator
//! implements it (`coupa_sim::csv_loader`). Shared as is by `fuzz/fuzz_targets/payment_csv.rs`
//! and `crates/bridge/tests/fuzz_bridge.rs` (through `#[path]`).
//!
//! The round trip: rows within the loader's documented limits, written to files, loaded into an
//! instance holding one approved invoice per row, give every row back: each load `done` without
//! an error, each payment on its invoice with its amount, note and date, each paid-in-full mark
//! with its date and note. What the writer changes on purpose is expected: line breaks inside a
//! value become spaces and the loader trims every cell.

use chrono::{Datelike, NaiveDate};
use coupa_bridge::erp::ErpPayment;
use coupa_bridge::flows::payment_push::csv_file::{self, Row};
use coupa_doc::{Object, Value};
use coupa_sim::{SimConfig, SimState, csv_loader};
use rust_decimal::Decimal;

/// The loader's limits, in characters of the trimmed cell.
pub const MAX_SUPPLIER_NAME: usize = 100;
pub const MAX_SUPPLIER_NUMBER: usize = 255;
pub const MAX_INVOICE_NUMBER: usize = 40;
pub const MAX_NOTE: usize = 255;
/// `decimal(32,4)`: more places are refused.
pub const MAX_SCALE: u32 = 4;

/// A cell as the loader reads it back: line breaks written as spaces, trimmed, `None` if blank.
pub fn as_read(value: &str) -> Option<String> {
    let v = value.replace(['\r', '\n'], " ");
    let v = v.trim();
    (!v.is_empty()).then(|| v.to_owned())
}

fn fits(value: &str, max: usize) -> bool {
    as_read(value).is_none_or(|v| v.chars().count() <= max)
}

/// A key the loader matches on must not hold a line break (the writer writes it as a space,
/// so it would no longer be the invoice's own value).
fn key_fits(value: &str, max: usize) -> bool {
    !value.contains(['\r', '\n']) && fits(value, max)
}

/// Whether `row` is within the limits the loader documents, so the round trip must hold.
pub fn in_contract(row: &Row) -> bool {
    let p = &row.payment;
    let supplier = |v: &Option<String>, max| v.as_deref().is_none_or(|v| key_fits(v, max));
    as_read(&p.invoice_number).is_some()
        && key_fits(&p.invoice_number, MAX_INVOICE_NUMBER)
        && supplier(&p.supplier_name, MAX_SUPPLIER_NAME)
        && supplier(&p.supplier_number, MAX_SUPPLIER_NUMBER)
        && (p.supplier_name.as_deref().and_then(as_read).is_some()
            || p.supplier_number.as_deref().and_then(as_read).is_some())
        && p.amount > Decimal::ZERO
        && p.amount.normalize().scale() <= MAX_SCALE
        && (1000..=9999).contains(&p.payment_date.year())
        && fits(&csv_file_note(p), MAX_NOTE)
        && row.paid_note.as_deref().is_none_or(|n| fits(n, MAX_NOTE))
        && (row.add || row.paid_note.is_some())
}

/// The note the writer puts in `Check # / Note`: the check number, else the payment's reference.
fn csv_file_note(p: &ErpPayment) -> String {
    coupa_bridge::flows::payment_push::matching::notes(p)
}

/// Reads fuzzer bytes as a little program of rows, each brought within the contract.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        match self.0.split_first() {
            Some((b, rest)) => {
                self.0 = rest;
                *b
            }
            None => 0,
        }
    }

    fn u64(&mut self) -> u64 {
        (0..8).fold(0, |acc, _| (acc << 8) | u64::from(self.byte()))
    }

    /// Up to `max` bytes, as text (invalid UTF-8 replaced).
    fn text(&mut self, max: usize) -> String {
        let n = (usize::from(self.byte()) % (max + 1)).min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        String::from_utf8_lossy(head).into_owned()
    }

    fn maybe_text(&mut self, max: usize) -> Option<String> {
        (!self.byte().is_multiple_of(4)).then(|| self.text(max))
    }
}

fn truncate(value: &str, max: usize) -> String {
    value.chars().take(max).collect()
}

fn key(value: &str, max: usize) -> String {
    truncate(&value.replace(['\r', '\n'], ""), max)
}

/// Rows within the contract made from any bytes.
pub fn rows_from_bytes(data: &[u8]) -> Vec<Row> {
    let mut input = Input(data);
    let count = input.byte() % 9;
    (0..count)
        .map(|i| {
            let mut invoice_number = key(&input.text(60), MAX_INVOICE_NUMBER);
            if as_read(&invoice_number).is_none() {
                invoice_number = format!("INV-{i}");
            }
            let supplier_name = input
                .maybe_text(120)
                .map(|v| key(&v, MAX_SUPPLIER_NAME))
                .filter(|v| as_read(v).is_some());
            let mut supplier_number = input
                .maybe_text(255)
                .map(|v| key(&v, MAX_SUPPLIER_NUMBER))
                .filter(|v| as_read(v).is_some());
            if supplier_name.is_none() && supplier_number.is_none() {
                supplier_number = Some(format!("S-{i}"));
            }
            let mantissa = (input.u64() >> 1).max(1);
            let amount = Decimal::new(
                i64::try_from(mantissa).unwrap_or(i64::MAX),
                u32::from(input.byte()) % (MAX_SCALE + 1),
            );
            let year = 1000 + i32::from(u16::from_be_bytes([input.byte(), input.byte()]) % 9000);
            let day = 1 + u32::from(input.byte()) % 365;
            let payment_date = NaiveDate::from_yo_opt(year, day).unwrap_or(NaiveDate::MIN);
            let check_number = input.maybe_text(255).map(|v| truncate(&v, MAX_NOTE));
            let payment_ref = truncate(&input.text(64), MAX_NOTE);
            let flags = input.byte();
            let paid_note = (flags & 2 != 0).then(|| truncate(&input.text(255), MAX_NOTE));
            let add = flags & 1 != 0 || paid_note.is_none();
            Row {
                payment: ErpPayment {
                    id: i64::from(i) + 1,
                    payment_ref,
                    invoice_number,
                    supplier_name,
                    supplier_number,
                    amount,
                    currency: "USD".to_owned(),
                    payment_date,
                    check_number,
                    paid_in_full: paid_note.is_some(),
                },
                invoice_id: 0,
                add,
                paid_note,
            }
        })
        .collect()
}

/// One approved invoice per row, as Coupa would hold the invoice each row was matched to; sets
/// each row's `invoice_id`.
fn invoices_for(rows: &mut [Row]) -> coupa_sim::Db {
    let mut db = coupa_sim::Db::default();
    for (i, row) in rows.iter_mut().enumerate() {
        let p = &row.payment;
        let mut supplier = Object::new().with("id", 101 + i as i64);
        if let Some(name) = &p.supplier_name {
            supplier.insert("name", name.as_str());
        }
        if let Some(number) = &p.supplier_number {
            supplier.insert("number", number.as_str());
        }
        row.invoice_id = db.invoices.insert_with(|id| {
            Object::new()
                .with("id", id)
                .with("status", "approved")
                .with("invoice-number", p.invoice_number.as_str())
                .with("supplier", supplier)
                .with("payments", Value::Array(Vec::new()))
        });
    }
    db
}

/// Runs `f` on this thread's instance holding `db` (an instance is costly to make; the loader
/// reads and writes only its database).
fn with_instance<T>(db: coupa_sim::Db, f: impl FnOnce(&SimState) -> T) -> T {
    thread_local! {
        static STATE: SimState = SimState::new(SimConfig {
            invoices: 0,
            pay_payments: 0,
            ..SimConfig::default()
        });
    }
    STATE.with(|state| {
        *state.db.lock() = db;
        f(state)
    })
}

fn text(o: &Object, key: &str) -> Option<String> {
    o.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// Writes `rows` (each must be [`in_contract`]), loads the files and checks every row came back.
pub fn check(rows: &[Row]) {
    let mut rows = rows.to_vec();
    for row in &rows {
        assert!(
            in_contract(row),
            "a generated row is outside the contract: {row:?}"
        );
    }
    let db = invoices_for(&mut rows);
    with_instance(db, |state| {
        let files = csv_file::files(rows.clone());
        for (n, file) in files.iter().enumerate() {
            let name = csv_file::file_name(chrono::Utc::now(), n + 1);
            let id = csv_loader::load(state, &name, &file.bytes);
            let db = state.db.lock();
            let Some(record) = db.data_file_sources.get(id) else {
                panic!("load {id} is not recorded");
            };
            let errors = record.get("upload-errors").and_then(Value::as_array);
            assert!(
                text(record, "status").as_deref() == Some("done")
                    && errors.is_none_or(<[Value]>::is_empty),
                "the loader refused the writer's file: {record:?}\n{}",
                String::from_utf8_lossy(&file.bytes)
            );
        }
        let db = state.db.lock();
        for row in &rows {
            check_row(&db, row);
        }
    });
}

/// The invoice of `row` shows exactly what the row said.
fn check_row(db: &coupa_sim::Db, row: &Row) {
    let p = &row.payment;
    let Some(invoice) = db.invoices.get(row.invoice_id) else {
        panic!("invoice {} vanished", row.invoice_id);
    };
    let date = p.payment_date;
    let on_date = |v: Option<&Value>| v.and_then(Value::as_datetime).map(|d| d.date_naive());
    let payments: Vec<&Object> = invoice
        .get("payments")
        .and_then(Value::as_array)
        .unwrap_or_default()
        .iter()
        .filter_map(Value::as_object)
        .collect();
    if row.add {
        assert_eq!(payments.len(), 1, "row {row:?} gave payments {payments:?}");
        let got = payments[0];
        assert_eq!(
            got.get("amount-paid").and_then(Value::as_decimal),
            Some(p.amount),
            "{row:?}"
        );
        assert_eq!(text(got, "notes"), as_read(&csv_file_note(p)), "{row:?}");
        assert_eq!(on_date(got.get("payment-date")), Some(date), "{row:?}");
    } else {
        assert!(
            payments.is_empty(),
            "row {row:?} gave payments {payments:?}"
        );
    }
    match &row.paid_note {
        Some(note) => {
            assert_eq!(invoice.get("paid"), Some(&Value::Bool(true)), "{row:?}");
            assert_eq!(on_date(invoice.get("payment-date")), Some(date), "{row:?}");
            assert_eq!(text(invoice, "payment-notes"), as_read(note), "{row:?}");
        }
        None => assert!(invoice.get("paid").is_none(), "{row:?}: {invoice:?}"),
    }
}

/// Any bytes: the rows they describe survive the round trip.
pub fn run(data: &[u8]) {
    check(&rows_from_bytes(data));
}
