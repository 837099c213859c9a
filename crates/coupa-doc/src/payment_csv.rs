//! Coupa's invoice-payment import file (coupa-api.md section 9, C-CSVPAY): its columns, by the
//! header names Coupa documents, in the documented order. The connector writes these headers and
//! the simulator's loader reads them; one list keeps the two from drifting apart.

/// The documented columns, in order; `Category` was added by release R35.
pub const COLUMNS: [&str; 13] = [
    "Supplier Name",
    "Supplier Number",
    "Invoice Number",
    "Invoice Date",
    "Invoice ID",
    "Expense Report Id",
    "Paid",
    "Paid-in-Full Date",
    "Paid-in-Full Note",
    "Check Amount Paid",
    "Check # / Note",
    "Check Payment Date",
    "Category",
];
