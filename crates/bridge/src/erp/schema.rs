//! The embedded ERP's tables (names and key columns are part of the contract, design.md
//! section 2), as migrations applied under the component name `erp`. Amounts are decimal text,
//! dates `YYYY-MM-DD`, timestamps RFC 3339 UTC text (see [`crate::db`]).

use crate::db::Migration;

pub(crate) const COMPONENT: &str = "erp";

pub(crate) const MIGRATIONS: &[Migration] = &[AP_LEDGER, COUPA_PAY_APPLICATIONS, DELIVERIES];

const AP_LEDGER: Migration = Migration {
    version: 1,
    name: "AP ledger: suppliers, periods, invoices, payments, Coupa Pay",
    statements: &[
        "CREATE TABLE erp_suppliers (
            number TEXT PRIMARY KEY,
            name TEXT NOT NULL,
            active {bool} NOT NULL DEFAULT TRUE
        )",
        // 'YYYY-MM'; a period without a row is open.
        "CREATE TABLE erp_periods (
            period TEXT PRIMARY KEY,
            open {bool} NOT NULL
        )",
        // Document numbers come from here, incremented in the posting transaction.
        "CREATE TABLE erp_counters (
            name TEXT PRIMARY KEY,
            value {int} NOT NULL
        )",
        "INSERT INTO erp_counters (name, value) VALUES ('invoice', 0)",
        "CREATE TABLE erp_invoices (
            id {id},
            document_number TEXT NOT NULL UNIQUE,
            coupa_invoice_id {int} NOT NULL UNIQUE,
            invoice_number TEXT NOT NULL,
            supplier_number TEXT,
            supplier_name TEXT,
            invoice_date TEXT NOT NULL,
            currency TEXT NOT NULL,
            total TEXT NOT NULL,
            status TEXT NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'paid', 'cancelled')),
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )",
        "CREATE TABLE erp_invoice_lines (
            invoice_id {int} NOT NULL REFERENCES erp_invoices (id),
            line_num {int} NOT NULL,
            description TEXT NOT NULL,
            quantity TEXT NOT NULL,
            price TEXT NOT NULL,
            total TEXT NOT NULL,
            account_code TEXT
        )",
        "CREATE INDEX erp_invoice_lines_invoice ON erp_invoice_lines (invoice_id, line_num)",
        // Payments made in the ERP, to push to Coupa (payment push flow).
        "CREATE TABLE erp_payments (
            id {id},
            payment_ref TEXT NOT NULL UNIQUE,
            invoice_number TEXT NOT NULL,
            supplier_name TEXT,
            supplier_number TEXT,
            amount TEXT NOT NULL,
            currency TEXT NOT NULL,
            payment_date TEXT NOT NULL,
            check_number TEXT,
            paid_in_full {bool} NOT NULL DEFAULT FALSE,
            sync_status TEXT NOT NULL DEFAULT 'pending'
                CHECK (sync_status IN ('pending', 'synced', 'failed')),
            sync_error TEXT,
            coupa_invoice_id {int},
            synced_at TEXT
        )",
        "CREATE INDEX erp_payments_sync ON erp_payments (sync_status, id)",
        // Coupa Pay payments committed to the ERP (Coupa Pay export flow). `updated_at` is
        // Coupa's; `exported_at` is when the ERP committed the row.
        "CREATE TABLE erp_coupa_pay_payments (
            id {id},
            coupa_payment_id {int} NOT NULL UNIQUE,
            status TEXT NOT NULL,
            payment_identifier TEXT,
            pay_from_total TEXT,
            pay_from_currency TEXT,
            pay_to_total TEXT,
            pay_to_currency TEXT,
            exchange_rate TEXT,
            payee_name TEXT,
            updated_at TEXT,
            exported_at TEXT
        )",
        "CREATE TABLE erp_payment_applications (
            id {id},
            coupa_payment_id {int} NOT NULL REFERENCES erp_coupa_pay_payments (coupa_payment_id),
            coupa_invoice_id {int},
            invoice_number TEXT,
            amount TEXT NOT NULL,
            currency TEXT NOT NULL
        )",
        "CREATE INDEX erp_payment_applications_payment ON erp_payment_applications (coupa_payment_id)",
        "CREATE INDEX erp_payment_applications_invoice ON erp_payment_applications (coupa_invoice_id)",
    ],
};

const COUPA_PAY_APPLICATIONS: Migration = Migration {
    version: 2,
    name: "Coupa Pay: error text, account type, applications applied or not",
    // One column per statement: SQLite's ALTER TABLE adds one at a time.
    statements: &[
        // Coupa's `error-text` and pay-to account type. `changed_at` is when the ERP last
        // changed the row; `exported_at` stays when it first committed it, and `updated_at`
        // holds Coupa's `updated-at` of the version booked.
        "ALTER TABLE erp_coupa_pay_payments ADD COLUMN error_text TEXT",
        "ALTER TABLE erp_coupa_pay_payments ADD COLUMN pay_to_account_type TEXT",
        "ALTER TABLE erp_coupa_pay_payments ADD COLUMN changed_at TEXT",
        // One row per Coupa `payment-details` entry: `amount` is its payment-total (cash),
        // `settled` its transaction-total (what it settles of the invoice). `applied` when it
        // matched an ERP invoice (number, currency, not cancelled); otherwise `problem` says
        // why (NULL for details that are not invoices, which are never matched).
        "ALTER TABLE erp_payment_applications ADD COLUMN coupa_detail_id {int}",
        "ALTER TABLE erp_payment_applications ADD COLUMN source_type TEXT",
        "ALTER TABLE erp_payment_applications ADD COLUMN settled TEXT",
        "ALTER TABLE erp_payment_applications ADD COLUMN discount TEXT",
        "ALTER TABLE erp_payment_applications ADD COLUMN adjustment TEXT",
        "ALTER TABLE erp_payment_applications ADD COLUMN applied {bool} NOT NULL DEFAULT FALSE",
        "ALTER TABLE erp_payment_applications ADD COLUMN problem TEXT",
    ],
};

const DELIVERIES: Migration = Migration {
    version: 3,
    name: "Ledger of the http and files adapters: deliveries and read cursors",
    statements: &[
        // One row per document delivered to an external ERP (`invoice:<id>`, `cancel:<id>`,
        // `pay:<id>`): `version` is what was delivered (Coupa's updated-at for a Coupa Pay
        // payment), `state` `staged` (the outbox file is written under its temporary name),
        // `sent` (visible to the ERP) or `answered` (`answer`: the ERP's answer, canonical JSON).
        "CREATE TABLE erp_deliveries (
            document TEXT PRIMARY KEY,
            version TEXT NOT NULL DEFAULT '',
            state TEXT NOT NULL CHECK (state IN ('staged', 'sent', 'answered')),
            file TEXT,
            answer TEXT,
            sent_at TEXT,
            answered_at TEXT,
            updated_at TEXT NOT NULL
        )",
        // Where reading an ERP's feed stopped (the payments endpoint's cursor).
        "CREATE TABLE erp_cursors (
            name TEXT PRIMARY KEY,
            value TEXT NOT NULL
        )",
    ],
};
