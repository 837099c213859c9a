//! Coupa's invoice-payment CSV (coupa-api.md section 9, C-CSVPAY and C-USINGFF): the columns by
//! their documented header names, every field in double quotes (`"` doubled), CRLF line ends,
//! UTF-8 without a byte-order mark, at most [`MAX_ROWS`] data rows and [`MAX_BYTES`] per file.
//!
//! Line breaks inside a value are written as spaces: Coupa's error reports count rows, and a
//! file without embedded line breaks has row numbers that are line numbers for any reader.

use chrono::{DateTime, Utc};

use super::matching::{coupa_date, notes};
use crate::erp::ErpPayment;

pub use coupa_doc::payment_csv::COLUMNS;

/// Data rows per file, the header excluded (Coupa's limit).
pub const MAX_ROWS: usize = 5_000;
/// Bytes per file: Coupa's "8 MB", read as the smaller 8,000,000 so either reading holds.
pub const MAX_BYTES: usize = 8_000_000;

/// One line of a payment file, for one ERP payment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Row {
    pub payment: ErpPayment,
    /// The Coupa invoice it was matched to: the loader then considers only that invoice.
    pub invoice_id: i64,
    /// Add the payment (false: the payment is on the invoice already and the row only sets
    /// the paid-in-full mark).
    pub add: bool,
    /// Set the header's paid-in-full mark with this note.
    pub paid_note: Option<String>,
}

/// A file ready to upload. `rows[i]` is on CSV row `i + 2` (the header is row 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentFile {
    pub bytes: Vec<u8>,
    pub rows: Vec<Row>,
}

fn quoted(out: &mut Vec<u8>, cells: &[&str]) {
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'"');
        for ch in cell.chars() {
            match ch {
                '"' => out.extend_from_slice(b"\"\""),
                '\r' | '\n' => out.push(b' '),
                c => {
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
            }
        }
        out.push(b'"');
    }
    out.extend_from_slice(b"\r\n");
}

fn line(row: &Row) -> Vec<u8> {
    let p = &row.payment;
    let date = coupa_date(p.payment_date).to_rfc3339();
    let amount = p.amount.to_string();
    let note = notes(p);
    let invoice_id = row.invoice_id.to_string();
    let (paid, paid_date, paid_note) = match &row.paid_note {
        Some(n) => ("true", date.as_str(), n.as_str()),
        None => ("", "", ""),
    };
    let (amount, note, pay_date) = if row.add {
        (amount.as_str(), note.as_str(), date.as_str())
    } else {
        ("", "", "")
    };
    let mut out = Vec::with_capacity(256);
    quoted(
        &mut out,
        &[
            p.supplier_name.as_deref().unwrap_or(""),
            p.supplier_number.as_deref().unwrap_or(""),
            &p.invoice_number,
            "",
            &invoice_id,
            "",
            paid,
            paid_date,
            paid_note,
            amount,
            note,
            pay_date,
            if row.add { "payment" } else { "" },
        ],
    );
    out
}

fn header() -> Vec<u8> {
    let mut out = Vec::new();
    quoted(&mut out, &COLUMNS);
    out
}

/// Splits rows into files within Coupa's limits, in order.
pub fn files(rows: Vec<Row>) -> Vec<PaymentFile> {
    let header = header();
    let mut files = Vec::new();
    let mut current = PaymentFile {
        bytes: header.clone(),
        rows: Vec::new(),
    };
    for row in rows {
        let l = line(&row);
        let full = current.rows.len() == MAX_ROWS || current.bytes.len() + l.len() > MAX_BYTES;
        if full && !current.rows.is_empty() {
            files.push(std::mem::replace(
                &mut current,
                PaymentFile {
                    bytes: header.clone(),
                    rows: Vec::new(),
                },
            ));
        }
        current.bytes.extend_from_slice(&l);
        current.rows.push(row);
    }
    if !current.rows.is_empty() {
        files.push(current);
    }
    files
}

/// `payments_<YYYYMMDD_HHMMSSZ>_.csv` (C-SCHED), or `payments_<...>_<n>.csv` for the `n`th file
/// (n >= 2) made in the same second, which sorts after the first.
pub fn file_name(at: DateTime<Utc>, n: usize) -> String {
    let ts = at.format("%Y%m%d_%H%M%SZ");
    if n <= 1 {
        format!("payments_{ts}_.csv")
    } else {
        format!("payments_{ts}_{n}.csv")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, TimeZone};

    fn row(id: i64, note: Option<&str>) -> Row {
        Row {
            payment: ErpPayment {
                id,
                payment_ref: format!("PAY-{id}"),
                invoice_number: "INV-\"7\"".into(),
                supplier_name: Some("Acme, Inc.\nEurope".into()),
                supplier_number: None,
                amount: "1234.50".parse().expect("amount"),
                currency: "USD".into(),
                payment_date: NaiveDate::from_ymd_opt(2026, 11, 2).expect("date"),
                check_number: note.map(Into::into),
                paid_in_full: false,
            },
            invoice_id: 42,
            add: true,
            paid_note: None,
        }
    }

    #[test]
    fn every_field_quoted_no_bom_crlf_and_header_names() {
        let mut paid = row(2, None);
        paid.paid_note = Some("Paid in full (ERP payment PAY-2)".into());
        let f = files(vec![row(1, Some("10")), paid]);
        assert_eq!(f.len(), 1);
        let text = String::from_utf8(f[0].bytes.clone()).expect("utf-8");
        assert!(!text.starts_with('\u{feff}'));
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(
            lines.len(),
            4,
            "header, two rows, and the final empty piece"
        );
        assert_eq!(
            lines[0],
            "\"Supplier Name\",\"Supplier Number\",\"Invoice Number\",\"Invoice Date\",\
             \"Invoice ID\",\"Expense Report Id\",\"Paid\",\"Paid-in-Full Date\",\
             \"Paid-in-Full Note\",\"Check Amount Paid\",\"Check # / Note\",\
             \"Check Payment Date\",\"Category\""
        );
        assert_eq!(
            lines[1],
            "\"Acme, Inc. Europe\",\"\",\"INV-\"\"7\"\"\",\"\",\"42\",\"\",\"\",\"\",\"\",\
             \"1234.50\",\"10\",\"2026-11-02T00:00:00+00:00\",\"payment\""
        );
        assert!(lines[2].contains(
            "\"true\",\"2026-11-02T00:00:00+00:00\",\"Paid in full (ERP payment PAY-2)\",\"1234.50\",\"PAY-2\""
        ));
        assert_eq!(lines[3], "");
        // Read back by a CSV reader, the cells are the values.
        let mut r = csv::ReaderBuilder::new().from_reader(f[0].bytes.as_slice());
        let rec = r.records().next().expect("a row").expect("valid csv");
        assert_eq!(&rec[2], "INV-\"7\"");
    }

    #[test]
    fn splits_at_5000_rows_and_at_8_mb() {
        let rows: Vec<Row> = (1..=12_001).map(|i| row(i, Some("c"))).collect();
        let f = files(rows);
        assert_eq!(
            f.iter().map(|f| f.rows.len()).collect::<Vec<_>>(),
            vec![5_000, 5_000, 2_001]
        );
        assert_eq!(f[1].rows[0].payment.id, 5_001, "order kept across files");
        let long = "n".repeat(250);
        let big: Vec<Row> = (1..=5_000)
            .map(|i| {
                let mut r = row(i, Some(&long));
                r.payment.supplier_name = Some("s".repeat(1_500));
                r
            })
            .collect();
        let f = files(big);
        assert!(f.len() >= 2, "{} files", f.len());
        assert!(f.iter().all(|f| f.bytes.len() <= MAX_BYTES));
        assert_eq!(f.iter().map(|f| f.rows.len()).sum::<usize>(), 5_000);
    }

    #[test]
    fn names_follow_coupas_pattern_and_sort_in_order() {
        let at = Utc
            .with_ymd_and_hms(2026, 11, 21, 9, 5, 7)
            .single()
            .expect("time");
        assert_eq!(file_name(at, 1), "payments_20261121_090507Z_.csv");
        assert_eq!(file_name(at, 2), "payments_20261121_090507Z_2.csv");
        assert!(file_name(at, 1) < file_name(at, 2));
    }
}
