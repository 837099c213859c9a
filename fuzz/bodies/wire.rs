//! Fuzz body `wire`: the client's decoders, `coupa_api::wire`. Shared as is by
//! `fuzz/fuzz_targets/wire.rs` and `crates/coupa-api/tests/fuzz_wire.rs` (through `#[path]`).

use coupa_api::wire::{self, Format};
use coupa_doc::Value;

/// Any bytes, read as a JSON body and as an XML body: parsing, the error envelope, the empty
/// list test, list items and the decoding of every model the flows read (invoices, Coupa Pay
/// payments, CSV loads, runs, history records, integration errors, payment requests) answer
/// without panicking, and so do the models' accessors (totals, amounts paid, money).
pub fn run(data: &[u8]) {
    for format in [Format::Json, Format::Xml] {
        let Ok(value) = wire::parse(format, data) else {
            continue;
        };
        let _ = wire::error_messages(&value);
        let _ = wire::is_no_results(&value);
        decode_all(&value);
        if let Ok(items) = wire::list_items(value) {
            for item in &items {
                decode_all(item);
            }
        }
    }
}

fn decode_all(v: &Value) {
    if let Ok(invoice) = wire::decode::<wire::Invoice>(v) {
        let _ = invoice.total();
        let _ = invoice.amount_paid();
        let _ = (invoice.supplier_name(), invoice.supplier_number());
        for name in invoice.custom_fields.0.keys() {
            let _ = invoice.custom_fields.text(name);
        }
    }
    if let Ok(payment) = wire::decode::<wire::PayPayment>(v) {
        let _ = (payment.pay_from(), payment.pay_to());
        let _ = payment.payee.as_ref().map(wire::Payee::display_name);
        for detail in &payment.payment_details {
            let _ = detail.payment();
        }
    }
    if let Ok(record) = wire::decode::<wire::HistoryRecord>(v) {
        let _ = record.run_id();
    }
    if let Ok(record) = wire::decode::<wire::IntegrationError>(v) {
        let _ = record.run_id();
    }
    let _ = wire::decode::<wire::DataFileSource>(v);
    let _ = wire::decode::<wire::IntegrationRun>(v);
    let _ = wire::payments_from_request(v);
}
