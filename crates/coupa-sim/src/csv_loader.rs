//! Coupa's invoice-payment CSV loader (`coupa-api.md` section 9, C-CSVPAY, C-USINGFF, C-FLAT).
//!
//! [`run`] wakes every `config.csv_pickup` (Coupa: every 3 to 6 minutes, not configurable) and
//! makes one pass, the same as [`pickup_now`]. A pass takes the files in
//! `/Incoming/InvoicePayments`:
//!
//! - **Which files.** Every file in the folder (not sub-folders), in alphanumeric order (byte order
//!   of the names, so `payments_20250101_...` sorts by time). Names starting with `.` or ending
//!   in `.tmp` or `.part` (any case) are left alone: clients upload under such a temporary name
//!   and rename when the upload is complete. A file some SFTP handle still holds open is also left
//!   for the next pass, so a client writing under the final name is not read half-written.
//! - **Archive first.** Each file is moved to `/Archive/Incoming/InvoicePayments/` *before* it is
//!   processed, as Coupa does. If the archive already holds that name, the file is archived as
//!   `<stem>_1.<ext>`, `<stem>_2.<ext>`, ... (the first free one). The move is what claims a file,
//!   so two passes running at once never load the same file twice.
//! - **One record per file.** Each file creates one `data_file_sources` record (see [`load`]),
//!   `status` `done`, or `failed` when the file as a whole is rejected.
//!
//! The rules of a file, in the order they are checked:
//!
//! 1. **Size.** More than [`MAX_FILE_BYTES`] (8 MB, taken as 8 MiB) rejects the file.
//! 2. **Encoding.** UTF-8; a leading byte-order mark is stripped (Coupa asks for none, Excel
//!    writes one). Other bytes reject the file.
//! 3. **CSV.** RFC 4180 with a comma: fields may be quoted, `""` is a quote inside a quoted
//!    field, quoted fields may hold newlines, lines end in LF or CRLF. Rows whose cells are all
//!    empty are skipped and not counted.
//! 4. **Rows.** More than [`MAX_ROWS`] (5,000) data rows, excluding the header, rejects the file.
//! 5. **Header.** The first row names the columns, in any order; names are matched trimmed and
//!    case-insensitively (inner runs of spaces count as one) against [`COLUMNS`]. An unknown name
//!    gives an `UploadHeaderError` "Column header X is not valid.", a repeated one "Column
//!    header X is duplicated.", and a missing `Invoice Number` column "Column header Invoice
//!    Number is required."; any of them rejects the file. A rejected file changes nothing.
//!
//! Then each data row on its own; a failing row gets `UploadRowError`s and changes nothing, the
//! other rows still apply. All rows of a file run under one lock of the database, so the file is
//! applied as one transaction as far as API readers can tell.
//!
//! - **Row numbers.** `row` counts CSV records: the header is row 1 and the first data row is
//!   row 2. For a file without newlines inside quoted fields this is the file's line number.
//! - **Shape.** A row with a different number of cells than the header is rejected.
//! - **Required.** `Invoice Number` (at most 40 characters) and at least one of `Supplier Name`
//!   (100) and `Supplier Number` (255). `Check # / Note` and `Paid-in-Full Note` hold at most
//!   255 characters.
//! - **Values.** `Check Amount Paid` is a decimal ([`lenient::parse_decimal`]: no thousands
//!   separators) with at most 4 decimal places (decimal(32,4)); `Invoice Date`, `Paid-in-Full
//!   Date` and `Check Payment Date` are dates or datetimes ([`lenient::parse_datetime`]);
//!   `Paid` is `true/false`, `yes/no`, `y/n`, `t/f` ([`lenient::parse_bool`]); `Invoice ID` is an
//!   integer; `Category` (R35) is one of `payment`, `discount`, `adjustment`, `credit`.
//!   `Expense Report Id` is accepted and ignored. A bad value is a row error naming the field.
//! - **Something to apply.** A row needs `Check Amount Paid`, or at least one of `Paid`,
//!   `Paid-in-Full Date`, `Paid-in-Full Note`.
//! - **Matching**: only invoices in `approved` status are in scope. With an
//!   `Invoice ID`, only that invoice is considered, and its number must equal `Invoice Number`;
//!   otherwise the invoices with that number (exact, trimmed). A supplier filters when it is found
//!   (an invoice or supplier record with that number, else that name, case-insensitively);
//!   an unknown supplier is ignored. `Invoice Date` keeps the invoices dated that calendar date.
//!   Exactly one invoice must remain, else the row fails with "No approved invoice matches
//!   invoice number 'X'..." or "N approved invoices match invoice number 'X'; add the supplier
//!   or invoice date".
//! - **Void.** A negative amount voids a check: it is appended as a negative payment and its
//!   note gets " Void" appended (unless it already ends in "Void"). Payments "can't be updated
//!   via Integration", so nothing else changes.
//! - **Duplicates.** When the matched invoice already has a payment with the same payment date
//!   (calendar date, each as written in its own offset; two missing dates are the same), the same
//!   note (after the void suffix; empty and missing are the same) and the same amount, the row is
//!   not applied and fails with a message starting with [`DUPLICATE_PREFIX`]:
//!   `Duplicate payment: invoice 'X' (id N) already has a payment of A dated D with check number
//!   / note 'C'.` A connector that re-sends a file can treat such rows as already applied. Rows
//!   earlier in the same file count, so a row repeated within a file is a duplicate too.
//! - **Apply.** `Check Amount Paid`, `Check # / Note` and `Check Payment Date` make one payment;
//!   `Paid`, `Paid-in-Full Date` and `Paid-in-Full Note` set the invoice header's `paid`,
//!   `payment-date` and `payment-notes`. A row without an amount updates only the header. A
//!   `Category` is recorded on the payment (default `payment`).
//!
//! `result-text` reads "N rows processed, creating C new rows and updating U rows." with " F
//! rows failed." appended when some failed: a row that adds a payment counts as creating, a
//! header-only row as updating.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, NaiveDate};
use coupa_doc::{Object, Value, lenient};
use rust_decimal::Decimal;

use crate::SimState;
use crate::store::{Db, NewPayment, PaymentHeader};
use crate::vfs::{self, Vfs, VfsError};

/// Where clients drop payment files.
pub const INCOMING_DIR: &str = "/Incoming/InvoicePayments";
/// Where each file is moved before it is processed.
pub const ARCHIVE_DIR: &str = "/Archive/Incoming/InvoicePayments";
/// Most data rows a file may hold (header excluded).
pub const MAX_ROWS: usize = 5_000;
/// Largest file accepted: 8 MB, read as 8 MiB.
pub const MAX_FILE_BYTES: usize = 8 * 1024 * 1024;
/// How a duplicate row's error message starts.
pub const DUPLICATE_PREFIX: &str = "Duplicate payment";
/// `file-file-name` is this followed by the file's name, as Coupa names loads from SFTP.
pub const FILE_NAME_PREFIX: &str = "_Incoming_InvoicePayments_";

/// The columns of the payment import, as documented (the last one from R35).
pub const COLUMNS: &[&str] = &coupa_doc::payment_csv::COLUMNS;

/// Categories of the R35 `Category` column.
const CATEGORIES: &[&str] = &["payment", "discount", "adjustment", "credit"];

/// Column positions in [`COLUMNS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Col {
    SupplierName = 0,
    SupplierNumber,
    InvoiceNumber,
    InvoiceDate,
    InvoiceId,
    ExpenseReportId,
    Paid,
    PaidInFullDate,
    PaidInFullNote,
    CheckAmountPaid,
    CheckNote,
    CheckPaymentDate,
    Category,
}

impl Col {
    const ALL: [Col; 13] = [
        Col::SupplierName,
        Col::SupplierNumber,
        Col::InvoiceNumber,
        Col::InvoiceDate,
        Col::InvoiceId,
        Col::ExpenseReportId,
        Col::Paid,
        Col::PaidInFullDate,
        Col::PaidInFullNote,
        Col::CheckAmountPaid,
        Col::CheckNote,
        Col::CheckPaymentDate,
        Col::Category,
    ];

    fn name(self) -> &'static str {
        COLUMNS[self as usize]
    }

    /// The column a header cell names: trimmed, case-insensitive, inner spaces collapsed.
    fn from_header(h: &str) -> Option<Col> {
        let key = header_key(h);
        Col::ALL.into_iter().find(|c| header_key(c.name()) == key)
    }
}

fn header_key(h: &str) -> String {
    h.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Checks `/Incoming/InvoicePayments` every `config.csv_pickup` until `shutdown` completes.
pub async fn run(state: Arc<SimState>, shutdown: impl Future<Output = ()>) {
    // A zero interval would make tokio's timer panic and the loop spin.
    let period = state.config.csv_pickup.max(Duration::from_millis(10));
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            _ = ticker.tick() => {
                // A pass holds the database lock while it parses up to 8 MB: keep it off the
                // async workers.
                let st = state.clone();
                if let Err(e) = tokio::task::spawn_blocking(move || pickup_now(&st)).await {
                    tracing::error!(error = %e, "CSV payment loader pass panicked");
                }
            }
        }
    }
}

/// Processes every pending file in `/Incoming/InvoicePayments` now (one pass, see the module
/// doc) and returns the ids of the `data_file_sources` records created, in processing order.
pub fn pickup_now(state: &SimState) -> Vec<i64> {
    let mut ids = Vec::new();
    for (name, _) in state.files.list_files(INCOMING_DIR) {
        if !is_pickup_candidate(&name) {
            continue;
        }
        let src = vfs::join(INCOMING_DIR, &name);
        if state.files.is_open(&src) {
            tracing::debug!(file = %name, "payment file still open; left for the next pass");
            continue;
        }
        let Some(archived) = archive(&state.files, &src, &name) else {
            continue;
        };
        // Gone between the move and the read only if a client removed it from the archive.
        let Some(bytes) = state.files.read_file(&archived) else {
            continue;
        };
        ids.push(load(state, &name, &bytes));
    }
    ids
}

/// Whether the loader takes a file of this name (temporary upload names are skipped).
pub fn is_pickup_candidate(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    !(name.starts_with('.') || lower.ends_with(".tmp") || lower.ends_with(".part"))
}

/// Moves `src` into the archive under `name` or the first free suffixed name; `None` if the
/// file vanished (another pass or the client took it).
fn archive(files: &Vfs, src: &str, name: &str) -> Option<String> {
    for n in 0..10_000u32 {
        let target = vfs::join(ARCHIVE_DIR, &archive_name(name, n));
        match files.rename(src, &target) {
            Ok(()) => return Some(target),
            Err(VfsError::AlreadyExists(_)) => continue,
            Err(e) => {
                tracing::debug!(file = %name, error = %e, "payment file not archived");
                return None;
            }
        }
    }
    tracing::warn!(file = %name, "no free archive name for payment file");
    None
}

/// `name` for `n == 0`, else `<stem>_<n>.<ext>` (or `<name>_<n>` without an extension).
fn archive_name(name: &str, n: u32) -> String {
    if n == 0 {
        return name.to_owned();
    }
    match name.rfind('.') {
        Some(dot) if dot > 0 => format!("{}_{n}{}", &name[..dot], &name[dot..]),
        _ => format!("{name}_{n}"),
    }
}

/// Loads one file's content as the loader does (the rules of the module doc) and records the
/// load in `data_file_sources`; returns the record's id. `name` is the file's name as dropped
/// in `/Incoming/InvoicePayments`.
pub fn load(state: &SimState, name: &str, bytes: &[u8]) -> i64 {
    let mut db = state.db.lock();
    let start = state.now();
    let outcome = process(&mut db, bytes, start);
    let end = state.now();
    tracing::info!(
        file = %name,
        status = outcome.status(),
        result = %outcome.result_text,
        "CSV payment file loaded"
    );
    let errors: Vec<Value> = outcome.errors.iter().map(UploadError::to_value).collect();
    db.data_file_sources.insert_with(|id| {
        Object::new()
            .with("id", id)
            .with("created-at", start)
            .with("updated-at", end)
            .with("type", "BackgroundCsvFileLoad")
            .with("source-for", "Payment")
            .with("file-file-name", format!("{FILE_NAME_PREFIX}{name}"))
            .with("status", outcome.status())
            .with("progress", 100)
            .with("start-time", start)
            .with("end-time", end)
            .with("result-text", outcome.result_text.clone())
            .with("upload-errors", Value::Array(errors))
    })
}

/// What loading one file came to.
#[derive(Debug)]
struct Outcome {
    /// The file as a whole was rejected; nothing was applied.
    rejected: bool,
    result_text: String,
    errors: Vec<UploadError>,
}

impl Outcome {
    fn status(&self) -> &'static str {
        if self.rejected { "failed" } else { "done" }
    }

    fn reject(reason: impl Into<String>, errors: Vec<UploadError>) -> Self {
        Outcome {
            rejected: true,
            result_text: format!("File rejected: {} No rows were processed.", reason.into()),
            errors,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ErrorKind {
    Row,
    Header,
}

/// One `upload-errors` item.
#[derive(Debug, Clone)]
struct UploadError {
    kind: ErrorKind,
    row: usize,
    first_column: String,
    field: String,
    value: String,
    messages: Vec<String>,
}

impl UploadError {
    fn to_value(&self) -> Value {
        let kind = match self.kind {
            ErrorKind::Row => "UploadRowError",
            ErrorKind::Header => "UploadHeaderError",
        };
        Value::Object(
            Object::new()
                .with("type", kind)
                .with("row", i64::try_from(self.row).unwrap_or(i64::MAX))
                .with("first-column", self.first_column.as_str())
                .with("field-with-error", self.field.as_str())
                .with("value", self.value.as_str())
                .with(
                    "field-errors",
                    Value::Array(
                        self.messages
                            .iter()
                            .map(|m| Value::from(m.as_str()))
                            .collect(),
                    ),
                ),
        )
    }
}

/// A field of a row that is wrong: (column, value as written, message).
type FieldError = (&'static str, String, String);

/// Applies a file's rows to `db`, or rejects the file (module doc, rules 1 to 5).
fn process(db: &mut Db, bytes: &[u8], now: DateTime<FixedOffset>) -> Outcome {
    if bytes.len() > MAX_FILE_BYTES {
        return Outcome::reject(
            format!(
                "the file is {} bytes; the limit is {MAX_FILE_BYTES} bytes (8 MB) per file.",
                bytes.len()
            ),
            Vec::new(),
        );
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            return Outcome::reject(
                format!(
                    "the file is not valid UTF-8 (invalid byte at offset {}).",
                    e.valid_up_to()
                ),
                Vec::new(),
            );
        }
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut header: Option<csv::StringRecord> = None;
    // (row number, record): row 1 is the header.
    let mut rows: Vec<(usize, csv::StringRecord)> = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                return Outcome::reject(format!("the file is not valid CSV: {e}."), Vec::new());
            }
        };
        if header.is_none() {
            header = Some(record);
            continue;
        }
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        rows.push((i + 1, record));
    }
    let Some(header) = header else {
        return Outcome::reject("the file is empty.", Vec::new());
    };
    if rows.len() > MAX_ROWS {
        return Outcome::reject(
            format!(
                "the file has {} rows; the limit is {MAX_ROWS} rows per file.",
                rows.len()
            ),
            Vec::new(),
        );
    }
    let columns = match Columns::from_header(&header) {
        Ok(c) => c,
        Err(errors) => return Outcome::reject("invalid column headers.", errors),
    };

    let index = Index::build(db);
    let (mut created, mut updated, mut failed) = (0usize, 0usize, 0usize);
    let mut errors = Vec::new();
    for (row_no, record) in &rows {
        let first_column = record.get(0).unwrap_or_default().to_owned();
        match apply_row(db, &index, &columns, header.len(), record, now) {
            Ok(Applied::Created) => created += 1,
            Ok(Applied::Updated) => updated += 1,
            Err(field_errors) => {
                failed += 1;
                errors.extend(field_errors.into_iter().map(|(field, value, message)| {
                    UploadError {
                        kind: ErrorKind::Row,
                        row: *row_no,
                        first_column: first_column.clone(),
                        field: field.to_owned(),
                        value,
                        messages: vec![message],
                    }
                }));
            }
        }
    }
    let mut result_text = format!(
        "{} processed, creating {} and updating {}.",
        rows_n(rows.len()),
        rows_n_new(created),
        rows_n(updated)
    );
    if failed > 0 {
        result_text.push_str(&format!(" {} failed.", rows_n(failed)));
    }
    Outcome {
        rejected: false,
        result_text,
        errors,
    }
}

fn rows_n(n: usize) -> String {
    if n == 1 {
        "1 row".to_owned()
    } else {
        format!("{n} rows")
    }
}

fn rows_n_new(n: usize) -> String {
    if n == 1 {
        "1 new row".to_owned()
    } else {
        format!("{n} new rows")
    }
}

/// Where each known column sits in the file.
#[derive(Debug)]
struct Columns {
    pos: HashMap<Col, usize>,
}

impl Columns {
    /// Reads the header row (module doc, rule 5); header errors reject the file.
    fn from_header(header: &csv::StringRecord) -> Result<Columns, Vec<UploadError>> {
        let first_column = header.get(0).unwrap_or_default().to_owned();
        let header_error = |cell: &str, message: String| UploadError {
            kind: ErrorKind::Header,
            row: 1,
            first_column: first_column.clone(),
            field: cell.trim().to_owned(),
            value: cell.to_owned(),
            messages: vec![message],
        };
        let mut pos = HashMap::new();
        let mut errors = Vec::new();
        for (i, cell) in header.iter().enumerate() {
            match Col::from_header(cell) {
                None => errors.push(header_error(
                    cell,
                    format!("Column header {} is not valid.", cell.trim()),
                )),
                Some(col) if pos.contains_key(&col) => errors.push(header_error(
                    cell,
                    format!("Column header {} is duplicated.", cell.trim()),
                )),
                Some(col) => {
                    pos.insert(col, i);
                }
            }
        }
        if !pos.contains_key(&Col::InvoiceNumber) {
            let name = Col::InvoiceNumber.name();
            errors.push(UploadError {
                value: String::new(),
                ..header_error(name, format!("Column header {name} is required."))
            });
        }
        if errors.is_empty() {
            Ok(Columns { pos })
        } else {
            Err(errors)
        }
    }

    /// The trimmed cell of `col`, `None` when the column is absent or the cell empty.
    fn cell<'r>(&self, record: &'r csv::StringRecord, col: Col) -> Option<&'r str> {
        let i = *self.pos.get(&col)?;
        record.get(i).map(str::trim).filter(|s| !s.is_empty())
    }
}

/// One data row, read and checked.
#[derive(Debug)]
struct Row {
    supplier_name: Option<String>,
    supplier_number: Option<String>,
    invoice_number: String,
    invoice_date: Option<NaiveDate>,
    invoice_id: Option<i64>,
    paid: Option<bool>,
    paid_date: Option<DateTime<FixedOffset>>,
    paid_note: Option<String>,
    amount: Option<Decimal>,
    check_note: Option<String>,
    payment_date: Option<DateTime<FixedOffset>>,
    category: Option<String>,
}

/// Reads a data row's cells into a [`Row`], collecting every bad field.
fn read_row(
    columns: &Columns,
    header_len: usize,
    record: &csv::StringRecord,
) -> Result<Row, Vec<FieldError>> {
    if record.len() != header_len {
        return Err(vec![(
            Col::InvoiceNumber.name(),
            columns
                .cell(record, Col::InvoiceNumber)
                .unwrap_or_default()
                .to_owned(),
            format!(
                "The row has {} columns but the header has {header_len}.",
                record.len()
            ),
        )]);
    }
    let mut errors: Vec<FieldError> = Vec::new();
    let cell = |col| columns.cell(record, col);
    let text = |col: Col, max: usize, errors: &mut Vec<FieldError>| -> Option<String> {
        let v = cell(col)?;
        if v.chars().count() > max {
            errors.push((
                col.name(),
                v.to_owned(),
                format!("{} is too long (maximum is {max} characters)", col.name()),
            ));
        }
        Some(v.to_owned())
    };
    // Parses a cell; a value that does not parse is a field error.
    fn typed<T>(
        cell: Option<&str>,
        col: Col,
        what: &str,
        parse: impl FnOnce(&str) -> Option<T>,
        errors: &mut Vec<FieldError>,
    ) -> Option<T> {
        let v = cell?;
        let parsed = parse(v);
        if parsed.is_none() {
            errors.push((
                col.name(),
                v.to_owned(),
                format!("{} '{v}' is not a valid {what}", col.name()),
            ));
        }
        parsed
    }

    let supplier_name = text(Col::SupplierName, 100, &mut errors);
    let supplier_number = text(Col::SupplierNumber, 255, &mut errors);
    let invoice_number = text(Col::InvoiceNumber, 40, &mut errors);
    let paid_note = text(Col::PaidInFullNote, 255, &mut errors);
    let check_note = text(Col::CheckNote, 255, &mut errors);
    if invoice_number.is_none() {
        errors.push((
            Col::InvoiceNumber.name(),
            String::new(),
            "Invoice Number can't be blank".to_owned(),
        ));
    }
    if supplier_name.is_none() && supplier_number.is_none() {
        errors.push((
            Col::SupplierName.name(),
            String::new(),
            "Supplier Name or Supplier Number is required".to_owned(),
        ));
    }
    let date = |col: Col, errors: &mut Vec<FieldError>| {
        typed(cell(col), col, "date", lenient::parse_datetime, errors)
    };
    let invoice_date = date(Col::InvoiceDate, &mut errors).map(|d| d.date_naive());
    let paid_date = date(Col::PaidInFullDate, &mut errors);
    let payment_date = date(Col::CheckPaymentDate, &mut errors);
    let invoice_id = typed(
        cell(Col::InvoiceId),
        Col::InvoiceId,
        "integer",
        |v| v.parse::<i64>().ok(),
        &mut errors,
    );
    let paid = typed(
        cell(Col::Paid),
        Col::Paid,
        "boolean (true/false, yes/no, y/n, t/f)",
        lenient::parse_bool,
        &mut errors,
    );
    let amount = typed(
        cell(Col::CheckAmountPaid),
        Col::CheckAmountPaid,
        "decimal",
        lenient::parse_decimal,
        &mut errors,
    );
    if let (Some(d), Some(v)) = (amount, cell(Col::CheckAmountPaid)) {
        // decimal(32,4): more places would be rounded away, and money is not rounded silently.
        if d.normalize().scale() > 4 {
            errors.push((
                Col::CheckAmountPaid.name(),
                v.to_owned(),
                "Check Amount Paid has more than 4 decimal places".to_owned(),
            ));
        }
    }
    let category = typed(
        cell(Col::Category),
        Col::Category,
        "category (payment, discount, adjustment, credit)",
        |v| {
            let c = v.to_ascii_lowercase();
            CATEGORIES.contains(&c.as_str()).then_some(c)
        },
        &mut errors,
    );
    // Judged on the cells as written, so a bad date does not also report "nothing to apply".
    let applies = [
        Col::CheckAmountPaid,
        Col::Paid,
        Col::PaidInFullDate,
        Col::PaidInFullNote,
    ]
    .into_iter()
    .any(|c| cell(c).is_some());
    if !applies {
        errors.push((
            Col::CheckAmountPaid.name(),
            String::new(),
            "Nothing to apply: give Check Amount Paid, or Paid, Paid-in-Full Date or \
             Paid-in-Full Note"
                .to_owned(),
        ));
    }
    match invoice_number {
        Some(invoice_number) if errors.is_empty() => Ok(Row {
            supplier_name,
            supplier_number,
            invoice_number,
            invoice_date,
            invoice_id,
            paid,
            paid_date,
            paid_note,
            amount,
            check_note,
            payment_date,
            category,
        }),
        _ => Err(errors),
    }
}

enum Applied {
    /// A payment was added (and maybe the header updated).
    Created,
    /// Only the header's payment fields were updated.
    Updated,
}

/// Reads, matches, checks for a duplicate and applies one data row.
fn apply_row(
    db: &mut Db,
    index: &Index,
    columns: &Columns,
    header_len: usize,
    record: &csv::StringRecord,
    now: DateTime<FixedOffset>,
) -> Result<Applied, Vec<FieldError>> {
    let row = read_row(columns, header_len, record)?;
    let number_error = |message: String| {
        vec![(
            Col::InvoiceNumber.name(),
            row.invoice_number.clone(),
            message,
        )]
    };
    let invoice_id = index.find(db, &row).map_err(number_error)?;

    let payment = row.amount.map(|amount| {
        let mut notes = row.check_note.clone();
        if amount < Decimal::ZERO {
            notes = Some(void_note(notes.as_deref()));
        }
        NewPayment {
            amount_paid: amount,
            notes,
            payment_date: row.payment_date,
        }
    });
    if let Some(p) = &payment
        && let Some(message) = duplicate_of(db, invoice_id, &row.invoice_number, p)
    {
        return Err(vec![(
            Col::CheckNote.name(),
            row.check_note.clone().unwrap_or_default(),
            message,
        )]);
    }
    let header = PaymentHeader {
        paid: row.paid,
        payment_date: row.paid_date,
        payment_notes: row.paid_note.clone(),
    };
    let payments: Vec<NewPayment> = payment.into_iter().collect();
    db.add_payments(invoice_id, &payments, &header, now)
        .map_err(|e| number_error(e.to_string()))?;
    if payments.is_empty() {
        return Ok(Applied::Updated);
    }
    // `add_payments` records every payment as category `payment`; the R35 column may say
    // otherwise, and the payment just appended is the last one.
    if let Some(category) = &row.category {
        let last = db
            .invoices
            .get_mut(invoice_id)
            .and_then(|inv| match inv.get_mut("payments") {
                Some(Value::Array(list)) => list.last_mut(),
                _ => None,
            })
            .and_then(Value::as_object_mut);
        if let Some(p) = last {
            p.insert("category", category.as_str());
        }
    }
    Ok(Applied::Created)
}

/// The note of a voiding (negative) payment: " Void" appended once.
fn void_note(note: Option<&str>) -> String {
    match note.map(str::trim).filter(|n| !n.is_empty()) {
        None => "Void".to_owned(),
        Some(n) if n.to_ascii_lowercase().ends_with("void") => n.to_owned(),
        Some(n) => format!("{n} Void"),
    }
}

/// The duplicate message when `invoice_id` already has a payment like `p` (module doc).
fn duplicate_of(db: &Db, invoice_id: i64, number: &str, p: &NewPayment) -> Option<String> {
    let invoice = db.invoices.get(invoice_id)?;
    let existing = invoice.get("payments").and_then(Value::as_array)?;
    let date = p.payment_date.map(|d| d.date_naive());
    let note = p.notes.as_deref().map(str::trim).unwrap_or_default();
    let same = existing.iter().filter_map(Value::as_object).any(|e| {
        e.get("amount-paid").and_then(Value::as_decimal) == Some(p.amount_paid)
            && e.get("payment-date")
                .and_then(Value::as_datetime)
                .map(|d| d.date_naive())
                == date
            && e.get("notes")
                .and_then(Value::as_str)
                .map(str::trim)
                .unwrap_or_default()
                == note
    });
    same.then(|| {
        let date = date.map_or_else(|| "(none)".to_owned(), |d| d.to_string());
        format!(
            "{DUPLICATE_PREFIX}: invoice '{number}' (id {invoice_id}) already has a payment of \
             {} dated {date} with check number / note '{note}'.",
            p.amount_paid
        )
    })
}

/// Lookups built once per file: invoices by number, and the suppliers the instance knows.
/// Loading a file changes no invoice number or supplier, so the index stays valid for the
/// whole file; it keeps matching linear in the file's size rather than rows x invoices.
#[derive(Debug, Default)]
struct Index {
    by_number: HashMap<String, Vec<i64>>,
    /// Lower-cased supplier names and numbers seen on invoices or supplier records.
    supplier_names: HashSet<String>,
    supplier_numbers: HashSet<String>,
}

fn supplier_field(supplier: Option<&Value>, key: &str) -> Option<String> {
    let s = supplier?.as_object()?.get(key)?.to_plain_string();
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_lowercase())
}

impl Index {
    fn build(db: &Db) -> Index {
        let mut index = Index::default();
        let mut note_supplier = |s: Option<&Value>| {
            if let Some(n) = supplier_field(s, "name") {
                index.supplier_names.insert(n);
            }
            if let Some(n) = supplier_field(s, "number") {
                index.supplier_numbers.insert(n);
            }
        };
        for row in db.suppliers.rows() {
            let s = Value::Object(row.clone());
            note_supplier(Some(&s));
        }
        for inv in db.invoices.rows() {
            note_supplier(inv.get("supplier"));
        }
        for inv in db.invoices.rows() {
            let (Some(id), Some(number)) = (
                inv.get("id").and_then(Value::as_i64),
                inv.get("invoice-number").map(Value::to_plain_string),
            ) else {
                continue;
            };
            index
                .by_number
                .entry(number.trim().to_owned())
                .or_default()
                .push(id);
        }
        index
    }

    /// The one approved invoice a row designates (module doc, "Matching"), or why there is
    /// none or more than one.
    fn find(&self, db: &Db, row: &Row) -> Result<i64, String> {
        let number = row.invoice_number.as_str();
        let mut candidates: Vec<(i64, &Object)> = match row.invoice_id {
            Some(id) => db
                .invoices
                .get(id)
                .filter(|inv| {
                    inv.get("invoice-number")
                        .map(|n| n.to_plain_string().trim() == number)
                        .unwrap_or(false)
                })
                .map(|inv| (id, inv))
                .into_iter()
                .collect(),
            None => self
                .by_number
                .get(number)
                .into_iter()
                .flatten()
                .filter_map(|id| db.invoices.get(*id).map(|inv| (*id, inv)))
                .collect(),
        };
        candidates.retain(|(_, inv)| inv.get("status").and_then(Value::as_str) == Some("approved"));

        // The number is the more specific key, so it wins when both are known.
        let supplier_number = row
            .supplier_number
            .as_deref()
            .map(str::to_lowercase)
            .filter(|n| self.supplier_numbers.contains(n));
        let supplier_name = row
            .supplier_name
            .as_deref()
            .map(str::to_lowercase)
            .filter(|n| self.supplier_names.contains(n));
        let mut qualifiers = String::new();
        if let Some(n) = &supplier_number {
            candidates.retain(|(_, inv)| {
                supplier_field(inv.get("supplier"), "number").as_deref() == Some(n)
            });
            qualifiers.push_str(&format!(
                " for supplier number '{}'",
                row.supplier_number.as_deref().unwrap_or_default()
            ));
        } else if let Some(n) = &supplier_name {
            candidates.retain(|(_, inv)| {
                supplier_field(inv.get("supplier"), "name").as_deref() == Some(n)
            });
            qualifiers.push_str(&format!(
                " for supplier '{}'",
                row.supplier_name.as_deref().unwrap_or_default()
            ));
        }
        if let Some(date) = row.invoice_date {
            candidates.retain(|(_, inv)| {
                inv.get("invoice-date")
                    .and_then(Value::as_datetime)
                    .map(|d| d.date_naive())
                    == Some(date)
            });
            qualifiers.push_str(&format!(" dated {date}"));
        }
        if let Some(id) = row.invoice_id {
            qualifiers.push_str(&format!(" with invoice ID {id}"));
        }
        match candidates.as_slice() {
            [(id, _)] => Ok(*id),
            [] => Err(format!(
                "No approved invoice matches invoice number '{number}'{qualifiers}"
            )),
            many => Err(format!(
                "{} approved invoices match invoice number '{number}'; add the supplier or \
                 invoice date",
                many.len()
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;
    use crate::SimConfig;
    use crate::store::Table;

    const HEADER: &str = "Supplier Name,Supplier Number,Invoice Number,Invoice Date,Invoice ID,\
                          Paid,Paid-in-Full Date,Paid-in-Full Note,Check Amount Paid,\
                          Check # / Note,Check Payment Date";

    fn state() -> SimState {
        let state = SimState::new(SimConfig {
            invoices: 0,
            pay_payments: 0,
            ..Default::default()
        });
        {
            // Whatever the seed generator puts there, these tests own the data they match on.
            let mut db = state.db.lock();
            db.invoices = Table::new(1001);
            db.suppliers = Table::new(101);
            db.data_file_sources = Table::new(401);
        }
        state
    }

    fn dt(s: &str) -> DateTime<FixedOffset> {
        lenient::parse_datetime(s).unwrap_or_else(|| panic!("bad test date {s}"))
    }

    fn dec(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap_or_else(|_| panic!("bad test decimal {s}"))
    }

    fn add_invoice(
        state: &SimState,
        number: &str,
        supplier: (&str, &str),
        date: &str,
        status: &str,
    ) -> i64 {
        let mut db = state.db.lock();
        let supplier_id = 101 + db.invoices.len() as i64;
        db.invoices.insert_with(|id| {
            Object::new()
                .with("id", id)
                .with("status", status)
                .with("invoice-number", number)
                .with("invoice-date", dt(date))
                .with(
                    "supplier",
                    Object::new()
                        .with("id", supplier_id)
                        .with("name", supplier.0)
                        .with("number", supplier.1),
                )
                .with("payments", Value::Array(Vec::new()))
        })
    }

    /// Drops `content` as `name` in the incoming folder and runs a pass; returns the records.
    fn drop_and_load(state: &SimState, name: &str, content: &str) -> Vec<Object> {
        state
            .files
            .write_file(&vfs::join(INCOMING_DIR, name), content)
            .expect("test file written");
        let ids = pickup_now(state);
        let db = state.db.lock();
        ids.iter()
            .map(|id| {
                db.data_file_sources
                    .get(*id)
                    .cloned()
                    .expect("record exists")
            })
            .collect()
    }

    fn load_one(state: &SimState, content: &str) -> Object {
        let mut records = drop_and_load(state, "payments.csv", content);
        assert_eq!(records.len(), 1);
        records.remove(0)
    }

    fn text<'a>(o: &'a Object, key: &str) -> &'a str {
        o.get(key).and_then(Value::as_str).unwrap_or_default()
    }

    fn errors(record: &Object) -> Vec<Object> {
        record
            .get("upload-errors")
            .and_then(Value::as_array)
            .unwrap_or_default()
            .iter()
            .filter_map(|v| v.as_object().cloned())
            .collect()
    }

    fn messages(record: &Object) -> Vec<String> {
        errors(record)
            .iter()
            .flat_map(|e| {
                e.get("field-errors")
                    .and_then(Value::as_array)
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|m| m.as_str().map(str::to_owned))
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    fn payments(state: &SimState, id: i64) -> Vec<Object> {
        let db = state.db.lock();
        db.invoices
            .get(id)
            .and_then(|inv| inv.get("payments"))
            .and_then(Value::as_array)
            .unwrap_or_default()
            .iter()
            .filter_map(|v| v.as_object().cloned())
            .collect()
    }

    fn invoice(state: &SimState, id: i64) -> Object {
        state
            .db
            .lock()
            .invoices
            .get(id)
            .cloned()
            .expect("invoice exists")
    }

    #[test]
    fn a_valid_row_creates_a_payment_and_a_done_record() {
        let st = state();
        let id = add_invoice(&st, "INV-1", ("Acme Corp", "S-1"), "2025-01-15", "approved");
        let rec = load_one(
            &st,
            &format!("{HEADER}\nAcme Corp,S-1,INV-1,,,,,,100.50,CHK-1,2025-02-01\n"),
        );
        assert_eq!(text(&rec, "type"), "BackgroundCsvFileLoad");
        assert_eq!(text(&rec, "source-for"), "Payment");
        assert_eq!(
            text(&rec, "file-file-name"),
            "_Incoming_InvoicePayments_payments.csv"
        );
        assert_eq!(text(&rec, "status"), "done");
        assert_eq!(rec.get("progress"), Some(&Value::Int(100)));
        assert!(matches!(rec.get("start-time"), Some(Value::DateTime(_))));
        assert!(matches!(rec.get("end-time"), Some(Value::DateTime(_))));
        assert!(matches!(rec.get("created-at"), Some(Value::DateTime(_))));
        assert!(matches!(rec.get("updated-at"), Some(Value::DateTime(_))));
        assert!(matches!(rec.get("id"), Some(Value::Int(401))));
        assert_eq!(
            text(&rec, "result-text"),
            "1 row processed, creating 1 new row and updating 0 rows."
        );
        assert!(errors(&rec).is_empty());
        let p = payments(&st, id);
        assert_eq!(p.len(), 1);
        assert_eq!(
            p[0].get("amount-paid"),
            Some(&Value::Decimal(dec("100.50")))
        );
        assert_eq!(text(&p[0], "notes"), "CHK-1");
        assert_eq!(
            p[0].get("payment-date").and_then(Value::as_datetime),
            Some(dt("2025-02-01"))
        );
        assert_eq!(text(&p[0], "category"), "payment");
    }

    #[test]
    fn files_are_archived_before_processing_in_name_order_and_temp_names_are_skipped() {
        let st = state();
        add_invoice(&st, "INV-1", ("Acme", "S-1"), "2025-01-15", "approved");
        let row = format!("{HEADER}\nAcme,,INV-1,,,,,,1,A,2025-02-01\n");
        for name in ["b.csv", "a.csv", ".hidden.csv", "c.csv.tmp", "d.csv.PART"] {
            st.files
                .write_file(&vfs::join(INCOMING_DIR, name), row.as_str())
                .expect("written");
        }
        let ids = pickup_now(&st);
        assert_eq!(ids.len(), 2);
        let names: Vec<String> = {
            let db = st.db.lock();
            ids.iter()
                .map(|id| {
                    db.data_file_sources
                        .get(*id)
                        .map(|r| text(r, "file-file-name").to_owned())
                        .unwrap_or_default()
                })
                .collect()
        };
        assert_eq!(
            names,
            [
                "_Incoming_InvoicePayments_a.csv",
                "_Incoming_InvoicePayments_b.csv"
            ]
        );
        let left: Vec<String> = st
            .files
            .list_files(INCOMING_DIR)
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(left, [".hidden.csv", "c.csv.tmp", "d.csv.PART"]);
        let archived: Vec<String> = st
            .files
            .list_files(ARCHIVE_DIR)
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(archived, ["a.csv", "b.csv"]);
        // b.csv repeats a.csv: its row is a duplicate.
        let db = st.db.lock();
        let b = db.data_file_sources.get(ids[1]).expect("record");
        assert_eq!(
            text(b, "result-text"),
            "1 row processed, creating 0 new rows and updating 0 rows. 1 row failed."
        );
        // A second pass finds nothing.
        drop(db);
        assert!(pickup_now(&st).is_empty());
    }

    #[test]
    fn an_archived_name_in_use_gets_a_suffix() {
        let st = state();
        st.files
            .write_file(&vfs::join(ARCHIVE_DIR, "p.csv"), "old")
            .expect("written");
        st.files
            .write_file(&vfs::join(ARCHIVE_DIR, "p_1.csv"), "old")
            .expect("written");
        let recs = drop_and_load(&st, "p.csv", HEADER);
        assert_eq!(
            text(&recs[0], "file-file-name"),
            "_Incoming_InvoicePayments_p.csv"
        );
        assert_eq!(
            st.files.read_file(&vfs::join(ARCHIVE_DIR, "p_2.csv")),
            Some(HEADER.as_bytes().to_vec())
        );
        assert_eq!(archive_name("noext", 3), "noext_3");
    }

    #[test]
    fn a_file_still_open_is_left_for_the_next_pass() {
        let st = state();
        let path = vfs::join(INCOMING_DIR, "p.csv");
        let handle = st
            .files
            .open(
                &path,
                vfs::OpenOptions {
                    create: true,
                    ..Default::default()
                },
            )
            .expect("opens");
        assert!(pickup_now(&st).is_empty());
        assert!(st.files.exists(&path));
        st.files.close(handle);
        assert_eq!(pickup_now(&st).len(), 1);
        assert!(!st.files.exists(&path));
    }

    #[test]
    fn rfc4180_quotes_newlines_bom_crlf_and_header_spelling() {
        let st = state();
        let id = add_invoice(
            &st,
            "INV,\"7\"",
            ("Acme, Inc.", "S-1"),
            "2025-01-15",
            "approved",
        );
        let csv = "\u{feff}\"  supplier   NAME \",\"INVOICE NUMBER\",\"check amount paid\",\"Check # / Note\"\r\n\
                   \"Acme, Inc.\",\"INV,\"\"7\"\"\",\"10.00\",\"line one\nline two\"\r\n";
        let rec = load_one(&st, csv);
        assert_eq!(text(&rec, "status"), "done", "{rec:?}");
        assert!(errors(&rec).is_empty(), "{rec:?}");
        let p = payments(&st, id);
        assert_eq!(p.len(), 1);
        assert_eq!(text(&p[0], "notes"), "line one\nline two");
        assert_eq!(p[0].get("amount-paid"), Some(&Value::Decimal(dec("10.00"))));
    }

    #[test]
    fn an_unknown_header_rejects_the_file() {
        let st = state();
        let id = add_invoice(&st, "INV-1", ("Acme", "S-1"), "2025-01-15", "approved");
        let rec = load_one(
            &st,
            "Supplier Name,Invoice Number,Check Amount Paid,Active\nAcme,INV-1,5,x\n",
        );
        assert_eq!(text(&rec, "status"), "failed");
        assert!(text(&rec, "result-text").starts_with("File rejected: invalid column headers."));
        let errs = errors(&rec);
        assert_eq!(errs.len(), 1);
        assert_eq!(text(&errs[0], "type"), "UploadHeaderError");
        assert_eq!(errs[0].get("row"), Some(&Value::Int(1)));
        assert_eq!(text(&errs[0], "first-column"), "Supplier Name");
        assert_eq!(text(&errs[0], "field-with-error"), "Active");
        assert_eq!(messages(&rec), ["Column header Active is not valid."]);
        assert!(payments(&st, id).is_empty());
    }

    #[test]
    fn a_missing_invoice_number_column_or_a_repeated_column_rejects_the_file() {
        let st = state();
        let rec = load_one(&st, "Supplier Name,Check Amount Paid\nAcme,5\n");
        assert_eq!(text(&rec, "status"), "failed");
        assert_eq!(
            messages(&rec),
            ["Column header Invoice Number is required."]
        );

        let rec = load_one(
            &st,
            "Supplier Name,Invoice Number,Supplier name\nAcme,INV-1,Acme\n",
        );
        assert_eq!(text(&rec, "status"), "failed");
        assert_eq!(
            messages(&rec),
            ["Column header Supplier name is duplicated."]
        );
    }

    #[test]
    fn the_category_column_and_expense_report_id_are_accepted() {
        let st = state();
        let id = add_invoice(&st, "INV-1", ("Acme", "S-1"), "2025-01-15", "approved");
        let rec = load_one(
            &st,
            "Supplier Name,Invoice Number,Expense Report Id,Check Amount Paid,Category\n\
             Acme,INV-1,ER-9,5,Discount\n\
             Acme,INV-1,,6,bonus\n",
        );
        assert_eq!(text(&rec, "status"), "done");
        assert_eq!(text(&payments(&st, id)[0], "category"), "discount");
        assert_eq!(
            messages(&rec),
            ["Category 'bonus' is not a valid category (payment, discount, adjustment, credit)"]
        );
    }

    #[test]
    fn more_than_5000_rows_rejects_the_file() {
        let st = state();
        let id = add_invoice(&st, "INV-1", ("Acme", "S-1"), "2025-01-15", "approved");
        let mut csv =
            String::from("Supplier Name,Invoice Number,Check Amount Paid,Check # / Note\n");
        for i in 0..=MAX_ROWS {
            csv.push_str(&format!("Acme,INV-1,1,C{i}\n"));
        }
        let rec = load_one(&st, &csv);
        assert_eq!(text(&rec, "status"), "failed");
        assert_eq!(
            text(&rec, "result-text"),
            "File rejected: the file has 5001 rows; the limit is 5000 rows per file. No rows were processed."
        );
        assert!(payments(&st, id).is_empty());
    }

    #[test]
    fn exactly_5000_rows_are_accepted_and_blank_rows_do_not_count() {
        let st = state();
        let ids: Vec<i64> = (0..MAX_ROWS)
            .map(|i| {
                add_invoice(
                    &st,
                    &format!("INV-{i}"),
                    ("Acme", "S-1"),
                    "2025-01-15",
                    "approved",
                )
            })
            .collect();
        let mut csv =
            String::from("Supplier Name,Invoice Number,Check Amount Paid,Check # / Note\n");
        for i in 0..MAX_ROWS {
            csv.push_str(&format!("Acme,INV-{i},1,C{i}\n,,,\n"));
        }
        let rec = load_one(&st, &csv);
        assert_eq!(text(&rec, "status"), "done");
        assert_eq!(
            text(&rec, "result-text"),
            "5000 rows processed, creating 5000 new rows and updating 0 rows."
        );
        assert_eq!(payments(&st, ids[4999]).len(), 1);
    }

    #[test]
    fn more_than_8_mb_rejects_the_file() {
        let st = state();
        let id = add_invoice(&st, "INV-1", ("Acme", "S-1"), "2025-01-15", "approved");
        let mut csv =
            String::from("Supplier Name,Invoice Number,Check Amount Paid,Check # / Note\n");
        csv.push_str("Acme,INV-1,1,");
        csv.push_str(&"x".repeat(MAX_FILE_BYTES));
        csv.push('\n');
        let rec = load_one(&st, &csv);
        assert_eq!(text(&rec, "status"), "failed");
        assert!(text(&rec, "result-text").contains("limit is 8388608 bytes (8 MB)"));
        assert!(payments(&st, id).is_empty());
    }

    #[test]
    fn invalid_utf8_and_empty_files_are_rejected() {
        let st = state();
        st.files
            .write_file(
                &vfs::join(INCOMING_DIR, "latin1.csv"),
                b"Invoice Number\n\xE9\n".to_vec(),
            )
            .expect("written");
        let ids = pickup_now(&st);
        let rec = st
            .db
            .lock()
            .data_file_sources
            .get(ids[0])
            .cloned()
            .expect("record");
        assert_eq!(text(&rec, "status"), "failed");
        assert!(text(&rec, "result-text").contains("not valid UTF-8"));

        let rec = load_one(&st, "");
        assert_eq!(text(&rec, "status"), "failed");
        assert!(text(&rec, "result-text").contains("empty"));
    }

    #[test]
    fn a_row_needs_a_supplier_name_or_number_and_an_invoice_number() {
        let st = state();
        let id = add_invoice(&st, "INV-1", ("Acme", "S-1"), "2025-01-15", "approved");
        let rec = load_one(
            &st,
            &format!("{HEADER}\n,,INV-1,,,,,,5,C,\nAcme,,,,,,,,5,C,\n"),
        );
        assert_eq!(text(&rec, "status"), "done");
        let errs = errors(&rec);
        assert_eq!(errs.len(), 2);
        assert_eq!(text(&errs[0], "type"), "UploadRowError");
        assert_eq!(errs[0].get("row"), Some(&Value::Int(2)));
        assert_eq!(text(&errs[0], "field-with-error"), "Supplier Name");
        assert_eq!(errs[1].get("row"), Some(&Value::Int(3)));
        assert_eq!(text(&errs[1], "first-column"), "Acme");
        assert_eq!(text(&errs[1], "field-with-error"), "Invoice Number");
        assert_eq!(
            messages(&rec),
            [
                "Supplier Name or Supplier Number is required",
                "Invoice Number can't be blank"
            ]
        );
        assert!(payments(&st, id).is_empty());
    }

    #[test]
    fn a_row_with_a_wrong_number_of_cells_or_nothing_to_apply_fails() {
        let st = state();
        add_invoice(&st, "INV-1", ("Acme", "S-1"), "2025-01-15", "approved");
        let rec = load_one(
            &st,
            "Supplier Name,Invoice Number,Check Amount Paid\nAcme,INV-1,5,extra\nAcme,INV-1,\n",
        );
        assert_eq!(
            messages(&rec),
            [
                "The row has 4 columns but the header has 3.",
                "Nothing to apply: give Check Amount Paid, or Paid, Paid-in-Full Date or \
                 Paid-in-Full Note"
            ]
        );
    }

    #[test]
    fn long_values_are_refused() {
        let st = state();
        let long = "N".repeat(41);
        let rec = load_one(
            &st,
            &format!("Supplier Name,Invoice Number,Check Amount Paid\nAcme,{long},5\n"),
        );
        assert_eq!(
            messages(&rec),
            ["Invoice Number is too long (maximum is 40 characters)"]
        );
    }

    #[test]
    fn only_approved_invoices_are_in_scope() {
        let st = state();
        let id = add_invoice(
            &st,
            "INV-1",
            ("Acme", "S-1"),
            "2025-01-15",
            "pending_approval",
        );
        let rec = load_one(
            &st,
            "Supplier Name,Invoice Number,Check Amount Paid\nAcme,INV-1,5\n",
        );
        assert_eq!(
            messages(&rec),
            ["No approved invoice matches invoice number 'INV-1' for supplier 'Acme'"]
        );
        let errs = errors(&rec);
        assert_eq!(text(&errs[0], "field-with-error"), "Invoice Number");
        assert_eq!(text(&errs[0], "value"), "INV-1");
        assert!(payments(&st, id).is_empty());
    }

    #[test]
    fn an_invoice_id_designates_that_invoice_only() {
        let st = state();
        let a = add_invoice(&st, "INV-1", ("Acme", "S-1"), "2025-01-15", "approved");
        let b = add_invoice(&st, "INV-1", ("Acme", "S-1"), "2025-01-15", "approved");
        let c = add_invoice(&st, "INV-3", ("Acme", "S-1"), "2025-01-15", "voided");
        let rec = load_one(
            &st,
            &format!(
                "Supplier Name,Invoice Number,Invoice ID,Check Amount Paid\n\
                 Acme,INV-1,{b},5\n\
                 Acme,INV-2,{a},5\n\
                 Acme,INV-3,{c},5\n\
                 Acme,INV-1,x1,5\n"
            ),
        );
        assert_eq!(payments(&st, a).len(), 0);
        assert_eq!(payments(&st, b).len(), 1);
        assert_eq!(
            messages(&rec),
            [
                format!(
                    "No approved invoice matches invoice number 'INV-2' for supplier 'Acme' with invoice ID {a}"
                ),
                format!(
                    "No approved invoice matches invoice number 'INV-3' for supplier 'Acme' with invoice ID {c}"
                ),
                "Invoice ID 'x1' is not a valid integer".to_owned(),
            ]
        );
    }

    #[test]
    fn a_known_supplier_filters_and_an_unknown_one_is_ignored() {
        let st = state();
        let acme = add_invoice(&st, "INV-1", ("Acme", "S-1"), "2025-01-15", "approved");
        let globex = add_invoice(&st, "INV-1", ("Globex", "S-2"), "2025-01-15", "approved");
        let solo = add_invoice(&st, "INV-9", ("Globex", "S-2"), "2025-01-15", "approved");
        let rec = load_one(
            &st,
            "Supplier Name,Supplier Number,Invoice Number,Check Amount Paid,Check # / Note\n\
             ACME,,INV-1,1,A\n\
             ,s-2,INV-1,2,B\n\
             Acme,S-2,INV-1,3,C\n\
             Nobody,,INV-1,4,D\n\
             Nobody,,INV-9,5,E\n\
             Acme,,INV-9,6,F\n",
        );
        // Row 2 by name, row 3 by number, row 4: the number wins over the name; row 5: the
        // unknown supplier is ignored and two invoices remain.
        assert_eq!(payments(&st, acme).len(), 1);
        assert_eq!(payments(&st, globex).len(), 2);
        // Row 6: unknown supplier ignored, one INV-9 exists; row 7: Acme has no INV-9.
        assert_eq!(payments(&st, solo).len(), 1);
        assert_eq!(
            messages(&rec),
            [
                "2 approved invoices match invoice number 'INV-1'; add the supplier or invoice date",
                "No approved invoice matches invoice number 'INV-9' for supplier 'Acme'",
            ]
        );
        assert_eq!(
            text(&rec, "result-text"),
            "6 rows processed, creating 4 new rows and updating 0 rows. 2 rows failed."
        );
    }

    #[test]
    fn a_supplier_record_without_invoices_still_filters() {
        let st = state();
        add_invoice(&st, "INV-1", ("Acme", "S-1"), "2025-01-15", "approved");
        st.db.lock().suppliers.insert_with(|id| {
            Object::new()
                .with("id", id)
                .with("name", "Initech")
                .with("number", "S-3")
        });
        let rec = load_one(
            &st,
            "Supplier Name,Invoice Number,Check Amount Paid\nInitech,INV-1,5\n",
        );
        assert_eq!(
            messages(&rec),
            ["No approved invoice matches invoice number 'INV-1' for supplier 'Initech'"]
        );
    }

    #[test]
    fn an_invoice_date_narrows_to_that_calendar_date() {
        let st = state();
        let old = add_invoice(
            &st,
            "INV-1",
            ("Acme", "S-1"),
            "2024-01-15T00:00:00-07:00",
            "approved",
        );
        let new = add_invoice(
            &st,
            "INV-1",
            ("Acme", "S-1"),
            "2025-01-15T00:00:00-07:00",
            "approved",
        );
        let rec = load_one(
            &st,
            "Supplier Name,Invoice Number,Invoice Date,Check Amount Paid\n\
             Acme,INV-1,2025-01-15,1\n\
             Acme,INV-1,1/15/2024,2\n\
             Acme,INV-1,2023-01-15,3\n\
             Acme,INV-1,,4\n",
        );
        assert_eq!(payments(&st, new).len(), 1);
        assert_eq!(payments(&st, old).len(), 1);
        assert_eq!(
            messages(&rec),
            [
                "No approved invoice matches invoice number 'INV-1' for supplier 'Acme' dated 2023-01-15",
                "2 approved invoices match invoice number 'INV-1'; add the supplier or invoice date",
            ]
        );
    }

    #[test]
    fn bad_values_name_their_field() {
        let st = state();
        let id = add_invoice(&st, "INV-1", ("Acme", "S-1"), "2025-01-15", "approved");
        let rec = load_one(
            &st,
            &format!(
                "{HEADER}\n\
                 Acme,,INV-1,,,,,,\"1,000\",C1,\n\
                 Acme,,INV-1,,,,,,10,C2,31/31/2025\n\
                 Acme,,INV-1,,,maybe,,,10,C3,\n\
                 Acme,,INV-1,someday,,,,,10,C4,\n\
                 Acme,,INV-1,,,,never,,,,\n\
                 Acme,,INV-1,,,,,,1.23456,C5,\n"
            ),
        );
        let fields: Vec<(String, String)> = errors(&rec)
            .iter()
            .map(|e| {
                (
                    text(e, "field-with-error").to_owned(),
                    text(e, "value").to_owned(),
                )
            })
            .collect();
        assert_eq!(
            fields,
            [
                ("Check Amount Paid".to_owned(), "1,000".to_owned()),
                ("Check Payment Date".to_owned(), "31/31/2025".to_owned()),
                ("Paid".to_owned(), "maybe".to_owned()),
                ("Invoice Date".to_owned(), "someday".to_owned()),
                ("Paid-in-Full Date".to_owned(), "never".to_owned()),
                ("Check Amount Paid".to_owned(), "1.23456".to_owned()),
            ]
        );
        assert_eq!(
            messages(&rec)[0],
            "Check Amount Paid '1,000' is not a valid decimal"
        );
        assert_eq!(
            messages(&rec)[2],
            "Paid 'maybe' is not a valid boolean (true/false, yes/no, y/n, t/f)"
        );
        assert!(payments(&st, id).is_empty());
        assert_eq!(
            text(&rec, "result-text"),
            "6 rows processed, creating 0 new rows and updating 0 rows. 6 rows failed."
        );
    }

    #[test]
    fn duplicates_are_refused_with_a_recognisable_message() {
        let st = state();
        let id = add_invoice(&st, "INV-1", ("Acme", "S-1"), "2025-01-15", "approved");
        let file = format!("{HEADER}\nAcme,,INV-1,,,,,,100.5,CHK-1,2025-02-01\n");
        load_one(&st, &file);
        let rec = load_one(
            &st,
            &format!(
                "{HEADER}\n\
                 Acme,,INV-1,,,,,,100.50,CHK-1,2025-02-01T15:30:00Z\n\
                 Acme,,INV-1,,,,,,100.51,CHK-1,2025-02-01\n\
                 Acme,,INV-1,,,,,,100.5,CHK-2,2025-02-01\n\
                 Acme,,INV-1,,,,,,100.5,CHK-1,2025-02-02\n\
                 Acme,,INV-1,,,,,,100.5,CHK-2,2025-02-01\n"
            ),
        );
        let msgs = messages(&rec);
        assert_eq!(msgs.len(), 2, "{msgs:?}");
        assert_eq!(
            msgs[0],
            format!(
                "Duplicate payment: invoice 'INV-1' (id {id}) already has a payment of 100.50 \
                 dated 2025-02-01 with check number / note 'CHK-1'."
            )
        );
        // Row 6 repeats row 4 of the same file.
        assert!(msgs[1].starts_with(DUPLICATE_PREFIX));
        assert_eq!(errors(&rec)[1].get("row"), Some(&Value::Int(6)));
        assert_eq!(payments(&st, id).len(), 4);
        assert_eq!(
            text(&rec, "result-text"),
            "5 rows processed, creating 3 new rows and updating 0 rows. 2 rows failed."
        );
    }

    #[test]
    fn a_negative_amount_is_a_void() {
        let st = state();
        let id = add_invoice(&st, "INV-1", ("Acme", "S-1"), "2025-01-15", "approved");
        let rec = load_one(
            &st,
            &format!(
                "{HEADER}\n\
                 Acme,,INV-1,,,,,,100,CHK-1,2025-02-01\n\
                 Acme,,INV-1,,,,,,-100,CHK-1,2025-02-03\n\
                 Acme,,INV-1,,,,,,-5,CHK-2 VOID,2025-02-03\n\
                 Acme,,INV-1,,,,,,-100,CHK-1,2025-02-03\n"
            ),
        );
        let p = payments(&st, id);
        assert_eq!(p.len(), 3);
        assert_eq!(p[1].get("amount-paid"), Some(&Value::Decimal(dec("-100"))));
        assert_eq!(text(&p[1], "notes"), "CHK-1 Void");
        assert_eq!(text(&p[2], "notes"), "CHK-2 VOID");
        // Sending the void again is a duplicate of the void.
        assert_eq!(messages(&rec).len(), 1);
        assert!(messages(&rec)[0].starts_with("Duplicate payment"));
        assert_eq!(void_note(None), "Void");
    }

    #[test]
    fn paid_without_an_amount_updates_only_the_header() {
        let st = state();
        let id = add_invoice(&st, "INV-1", ("Acme", "S-1"), "2025-01-15", "approved");
        let rec = load_one(
            &st,
            &format!("{HEADER}\nAcme,,INV-1,,,Yes,2025-03-01T00:00:00-08:00,Paid in full,,,\n"),
        );
        assert_eq!(
            text(&rec, "result-text"),
            "1 row processed, creating 0 new rows and updating 1 row."
        );
        let inv = invoice(&st, id);
        assert_eq!(inv.get("paid"), Some(&Value::Bool(true)));
        assert_eq!(
            inv.get("payment-date").and_then(Value::as_datetime),
            Some(dt("2025-03-01T00:00:00-08:00"))
        );
        assert_eq!(text(&inv, "payment-notes"), "Paid in full");
        assert!(payments(&st, id).is_empty());
    }

    #[test]
    fn paid_with_an_amount_sets_both() {
        let st = state();
        let id = add_invoice(&st, "INV-1", ("Acme", "S-1"), "2025-01-15", "approved");
        load_one(
            &st,
            &format!("{HEADER}\nAcme,,INV-1,,,T,2025-03-01,,250,CHK-9,2025-03-01\n"),
        );
        let inv = invoice(&st, id);
        assert_eq!(inv.get("paid"), Some(&Value::Bool(true)));
        assert_eq!(payments(&st, id).len(), 1);
    }

    #[test]
    fn the_documented_example_result_text() {
        let st = state();
        let id = add_invoice(&st, "INV-1", ("Acme", "S-1"), "2025-01-15", "approved");
        let rec = load_one(
            &st,
            &format!(
                "{HEADER}\n\
                 Acme,,INV-1,,,,,,1,A,2025-02-01\n\
                 Acme,,INV-1,,,,,,2,B,2025-02-01\n\
                 Acme,,INV-404,,,,,,3,C,2025-02-01\n\
                 Acme,,INV-1,,,,,,4,D,2025-02-01\n"
            ),
        );
        assert_eq!(
            text(&rec, "result-text"),
            "4 rows processed, creating 3 new rows and updating 0 rows. 1 row failed."
        );
        let errs = errors(&rec);
        assert_eq!(errs[0].get("row"), Some(&Value::Int(4)));
        assert_eq!(payments(&st, id).len(), 3);
    }

    #[test]
    fn the_row_number_counts_records_not_lines() {
        let st = state();
        add_invoice(&st, "INV-1", ("Acme", "S-1"), "2025-01-15", "approved");
        let rec = load_one(
            &st,
            "Supplier Name,Invoice Number,Check Amount Paid,Check # / Note\n\
             Acme,INV-1,1,\"two\nlines\"\n\
             Acme,INV-2,1,x\n",
        );
        assert_eq!(errors(&rec)[0].get("row"), Some(&Value::Int(3)));
    }

    #[tokio::test]
    async fn run_picks_files_up_on_its_own_and_stops_on_shutdown() {
        let st = Arc::new(SimState::new(SimConfig {
            invoices: 0,
            pay_payments: 0,
            csv_pickup: Duration::from_millis(20),
            ..Default::default()
        }));
        let before = st.db.lock().data_file_sources.len();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(run(st.clone(), async move {
            let _ = rx.await;
        }));
        st.files
            .write_file(&vfs::join(INCOMING_DIR, "p.csv"), HEADER)
            .expect("written");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while st.db.lock().data_file_sources.len() == before {
            assert!(
                tokio::time::Instant::now() < deadline,
                "file never picked up"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(st.files.list_files(INCOMING_DIR).is_empty());
        let _ = tx.send(());
        tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("loader stops")
            .expect("loader task ok");
    }
}
