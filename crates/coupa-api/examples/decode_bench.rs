//! How fast the client turns a page of invoices into models: bytes -> `Value` -> `Vec<Invoice>`,
//! the path every list response takes (`wire::parse`, `wire::list_items`, `wire::decode` per
//! item).
//!
//! The page is the simulator's seeded data (full nested objects, as Coupa returns them without
//! `fields=`): the first 50 invoices, written as the simulator serves them, in JSON and in XML.
//!
//! ```text
//! cargo run --release -p coupa-api --example decode_bench [ITERATIONS]
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

use coupa_api::wire::{self, DecodeError, Format, Invoice};
use coupa_doc::Value;
use coupa_sim::{Resource, SimConfig};

const PAGE: usize = 50;

fn main() {
    let iterations = match std::env::args().nth(1) {
        None => 1000,
        Some(arg) => match arg.parse::<u32>() {
            Ok(n) if n > 0 => n,
            _ => {
                eprintln!("usage: decode_bench [ITERATIONS]  (a positive number, default 1000)");
                std::process::exit(2);
            }
        },
    };

    let db = coupa_sim::seed::generate(&SimConfig {
        invoices: PAGE,
        ..SimConfig::default()
    });
    let rows: Vec<Value> = db
        .table(Resource::Invoices)
        .rows()
        .take(PAGE)
        .map(|o| Value::Object(o.clone()))
        .collect();
    assert_eq!(rows.len(), PAGE, "the simulator seeds {PAGE} invoices");
    let pages = [
        (
            Format::Json,
            coupa_doc::json::to_vec(&Value::Array(rows.clone())),
        ),
        (
            Format::Xml,
            coupa_doc::xml::list_to_string(Resource::Invoices.list_element(), &rows).into_bytes(),
        ),
    ];

    println!(
        "decode_bench: {PAGE} invoices a page, {iterations} iterations per format, {} build",
        if cfg!(debug_assertions) {
            "DEBUG (numbers are not representative)"
        } else {
            "release"
        }
    );
    println!(
        "{:<6} {:>11} {:>9} {:>8} {:>11} {:>13} {:>14}",
        "format", "bytes/page", "pages/s", "MB/s", "invoices/s", "parse µs/page", "decode µs/page"
    );
    for (format, bytes) in &pages {
        // Once for correctness: every invoice decodes.
        let invoices = decode_page(*format, bytes).expect("the seeded page decodes");
        assert_eq!(invoices.len(), PAGE);

        let mut parse = Duration::ZERO;
        let mut decode = Duration::ZERO;
        let start = Instant::now();
        for _ in 0..iterations {
            let t0 = Instant::now();
            let value = wire::parse(*format, black_box(bytes)).expect("parses");
            let t1 = Instant::now();
            let invoices = decode_items(value).expect("decodes");
            let t2 = Instant::now();
            black_box(invoices);
            parse += t1 - t0;
            decode += t2 - t1;
        }
        let total = start.elapsed().as_secs_f64();
        let n = f64::from(iterations);
        let pages_per_s = n / total;
        println!(
            "{:<6} {:>11} {:>9.0} {:>8.1} {:>11.0} {:>13.0} {:>14.0}",
            format!("{format:?}"),
            bytes.len(),
            pages_per_s,
            pages_per_s * bytes.len() as f64 / 1e6,
            pages_per_s * PAGE as f64,
            parse.as_secs_f64() * 1e6 / n,
            decode.as_secs_f64() * 1e6 / n,
        );
    }
}

/// One page, the way the transport reads a list response.
fn decode_page(format: Format, bytes: &[u8]) -> Result<Vec<Invoice>, DecodeError> {
    decode_items(wire::parse(format, bytes)?)
}

fn decode_items(page: Value) -> Result<Vec<Invoice>, DecodeError> {
    wire::list_items(page)?.iter().map(wire::decode).collect()
}
