//! The simulator's data: one table of documents per resource, behind one lock.
//!
//! Rows are [`Object`]s with Coupa's own (dashed) field names, so what is stored is what is
//! served: the query engine filters and projects them, the formats write them as they are.
//! One mutex over the whole database keeps every request atomic, as a Coupa transaction is;
//! requests hold it for microseconds, so it is not the bottleneck (see BENCHMARKS.md).

use std::collections::BTreeMap;

use chrono::{DateTime, FixedOffset};
use coupa_doc::{Object, Value};
use rust_decimal::Decimal;

/// The resources the simulator serves, with the names Coupa gives them on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Resource {
    Invoices,
    Integrations,
    IntegrationContacts,
    IntegrationRuns,
    HistoryRecords,
    IntegrationErrors,
    PayPayments,
    DataFileSources,
}

impl Resource {
    pub const ALL: [Resource; 8] = [
        Resource::Invoices,
        Resource::Integrations,
        Resource::IntegrationContacts,
        Resource::IntegrationRuns,
        Resource::HistoryRecords,
        Resource::IntegrationErrors,
        Resource::PayPayments,
        Resource::DataFileSources,
    ];

    /// Path under `/api/`.
    pub fn path(self) -> &'static str {
        match self {
            Resource::Invoices => "invoices",
            Resource::Integrations => "integrations",
            Resource::IntegrationContacts => "integration_contacts",
            Resource::IntegrationRuns => "integration_runs",
            Resource::HistoryRecords => "integration_history_records",
            Resource::IntegrationErrors => "integration_errors",
            Resource::PayPayments => "coupa_pay/payments",
            Resource::DataFileSources => "data_file_sources",
        }
    }

    /// XML element of one record (Swagger `xml.name`).
    pub fn element(self) -> &'static str {
        match self {
            Resource::Invoices => "invoice-header",
            Resource::Integrations => "integration",
            Resource::IntegrationContacts => "integration-contact",
            Resource::IntegrationRuns => "integration-run",
            Resource::HistoryRecords => "integration-history-record",
            Resource::IntegrationErrors => "integration-error",
            Resource::PayPayments => "coupa-pay-payment",
            Resource::DataFileSources => "data-file-source",
        }
    }

    /// XML list root, written with `type="array"`.
    pub fn list_element(self) -> &'static str {
        match self {
            Resource::Invoices => "invoice-headers",
            Resource::Integrations => "integrations",
            Resource::IntegrationContacts => "integration-contacts",
            Resource::IntegrationRuns => "integration-runs",
            Resource::HistoryRecords => "integration-history-records",
            Resource::IntegrationErrors => "integration-errors",
            Resource::PayPayments => "coupa-pay-payments",
            Resource::DataFileSources => "data-file-sources",
        }
    }

    /// Key of the JSON error envelope: `{"errors":{"<key>":[...]}}`.
    pub fn error_key(self) -> &'static str {
        match self {
            Resource::Invoices => "invoice_header",
            Resource::Integrations => "integration",
            Resource::IntegrationContacts => "integration_contact",
            Resource::IntegrationRuns => "integration_run",
            Resource::HistoryRecords => "integration_history_record",
            Resource::IntegrationErrors => "integration_error",
            Resource::PayPayments => "coupa_pay_payment",
            Resource::DataFileSources => "data_file_source",
        }
    }

    /// OAuth scope needed to read.
    pub fn read_scope(self) -> &'static str {
        match self {
            Resource::Invoices => "core.invoice.read",
            Resource::Integrations
            | Resource::IntegrationContacts
            | Resource::IntegrationRuns
            | Resource::HistoryRecords
            | Resource::IntegrationErrors => "core.integration.read",
            Resource::PayPayments => "core.pay.payments.read",
            Resource::DataFileSources => "core.common.read",
        }
    }

    /// OAuth scope needed to change.
    pub fn write_scope(self) -> &'static str {
        match self {
            Resource::Invoices => "core.invoice.write",
            Resource::Integrations
            | Resource::IntegrationContacts
            | Resource::IntegrationRuns
            | Resource::HistoryRecords
            | Resource::IntegrationErrors => "core.integration.write",
            Resource::PayPayments => "core.pay.payments.write",
            Resource::DataFileSources => "core.common.write",
        }
    }

    /// The resource whose admin or `fields` name is `name` (`invoices`, `coupa_pay_payments`).
    pub fn from_name(name: &str) -> Option<Resource> {
        let name = coupa_doc::names::canonical(name);
        Resource::ALL.into_iter().find(|r| {
            coupa_doc::names::canonical(&r.path().replace('/', "_")) == name
                || r.list_element() == name
        })
    }
}

/// Rows of one resource, by id.
#[derive(Debug, Clone)]
pub struct Table {
    rows: BTreeMap<i64, Object>,
    next_id: i64,
}

impl Table {
    /// An empty table whose first row gets `first_id` (real instances do not start at 1, and
    /// different resources having different ids catches mixed-up ids in tests).
    pub fn new(first_id: i64) -> Self {
        Table {
            rows: BTreeMap::new(),
            next_id: first_id,
        }
    }

    /// Inserts a row built from its new id; the row's `id` field is set to that id.
    pub fn insert_with(&mut self, build: impl FnOnce(i64) -> Object) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        let mut row = build(id);
        row.insert("id", Value::Int(id));
        self.rows.insert(id, row);
        id
    }

    pub fn get(&self, id: i64) -> Option<&Object> {
        self.rows.get(&id)
    }

    pub fn get_mut(&mut self, id: i64) -> Option<&mut Object> {
        self.rows.get_mut(&id)
    }

    /// Rows in id order.
    pub fn rows(&self) -> impl DoubleEndedIterator<Item = &Object> {
        self.rows.values()
    }

    /// Rows whose id is `id` or more, in id order, found by range so paging with `id[gt]` does
    /// not walk the rows before the page.
    pub fn rows_from(&self, id: i64) -> impl Iterator<Item = &Object> {
        self.rows.range(id..).map(|(_, row)| row)
    }

    pub fn rows_mut(&mut self) -> impl Iterator<Item = &mut Object> {
        self.rows.values_mut()
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

/// Everything the simulated instance holds.
#[derive(Debug, Clone)]
pub struct Db {
    pub invoices: Table,
    pub integrations: Table,
    pub integration_contacts: Table,
    pub integration_runs: Table,
    pub history_records: Table,
    pub integration_errors: Table,
    pub pay_payments: Table,
    pub data_file_sources: Table,
    /// Reference data, not served as resources but embedded in documents and used to match
    /// CSV rows: suppliers and users.
    pub suppliers: Table,
    pub users: Table,
    /// Alerts raised by `create_alert` calls: what a Coupa integration contact would receive.
    pub alerts: Vec<Object>,
    /// The user the API acts as (`created-by` / `updated-by` of API changes).
    pub api_user: Object,
    /// Custom fields defined on invoice headers (Setup > Custom Fields). A PUT naming another
    /// one is refused, as Coupa refuses unknown attributes.
    pub invoice_custom_fields: Vec<String>,
}

impl Default for Db {
    fn default() -> Self {
        Db {
            invoices: Table::new(1001),
            integrations: Table::new(11),
            integration_contacts: Table::new(31),
            integration_runs: Table::new(501),
            history_records: Table::new(7001),
            integration_errors: Table::new(9001),
            pay_payments: Table::new(3001),
            data_file_sources: Table::new(401),
            suppliers: Table::new(101),
            users: Table::new(1),
            alerts: Vec::new(),
            api_user: Object::new()
                .with("id", 1)
                .with("login", "api-integration")
                .with("email", "api-integration@example.com"),
            invoice_custom_fields: vec![
                "cf-erp-invoice-number".to_owned(),
                "cf-integration-status".to_owned(),
            ],
        }
    }
}

impl Db {
    /// Defines the invoice header custom fields (Setup > Custom Fields), as an administrator
    /// adding or deleting one: every invoice then shows exactly these in `custom-fields`, a
    /// field it has no value for as `null`, as Coupa shows every field defined.
    pub fn define_invoice_custom_fields(&mut self, fields: Vec<String>) {
        for row in self.invoices.rows_mut() {
            let mut old = match row.remove("custom-fields") {
                Some(Value::Object(o)) => o,
                _ => Object::new(),
            };
            let mut shown = Object::with_capacity(fields.len());
            for f in &fields {
                shown.insert(f.clone(), old.remove(f).unwrap_or(Value::Null));
            }
            row.insert("custom-fields", shown);
        }
        self.invoice_custom_fields = fields;
    }

    pub fn table(&self, r: Resource) -> &Table {
        match r {
            Resource::Invoices => &self.invoices,
            Resource::Integrations => &self.integrations,
            Resource::IntegrationContacts => &self.integration_contacts,
            Resource::IntegrationRuns => &self.integration_runs,
            Resource::HistoryRecords => &self.history_records,
            Resource::IntegrationErrors => &self.integration_errors,
            Resource::PayPayments => &self.pay_payments,
            Resource::DataFileSources => &self.data_file_sources,
        }
    }

    pub fn table_mut(&mut self, r: Resource) -> &mut Table {
        match r {
            Resource::Invoices => &mut self.invoices,
            Resource::Integrations => &mut self.integrations,
            Resource::IntegrationContacts => &mut self.integration_contacts,
            Resource::IntegrationRuns => &mut self.integration_runs,
            Resource::HistoryRecords => &mut self.history_records,
            Resource::IntegrationErrors => &mut self.integration_errors,
            Resource::PayPayments => &mut self.pay_payments,
            Resource::DataFileSources => &mut self.data_file_sources,
        }
    }

    /// The user as embedded in `created-by` / `updated-by`.
    pub fn api_user(&self) -> Value {
        Value::Object(self.api_user.clone())
    }

    /// Appends payments to an invoice and applies the header fields, as
    /// `PUT /api/invoices/{id}` with a payments payload and the CSV loader both do.
    ///
    /// Payments are appended, never replaced (Coupa does not de-duplicate API payments; the CSV
    /// loader checks duplicates itself before calling this). Only approved invoices take
    /// payments. On error nothing is changed and the messages say why.
    pub fn add_payments(
        &mut self,
        invoice_id: i64,
        payments: &[NewPayment],
        header: &PaymentHeader,
        now: DateTime<FixedOffset>,
    ) -> Result<(), PaymentError> {
        let user = self.api_user();
        let invoice = self
            .invoices
            .get_mut(invoice_id)
            .ok_or(PaymentError::NotFound)?;
        let status = invoice
            .get("status")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        if status != "approved" && !payments.is_empty() {
            return Err(PaymentError::Invalid(vec![format!(
                "Payments can only be recorded on approved invoices; invoice {invoice_id} is {status}"
            )]));
        }
        let mut list = match invoice.remove("payments") {
            Some(Value::Array(items)) => items,
            _ => Vec::new(),
        };
        let first = list.len() as i64 + 1;
        for (i, p) in payments.iter().enumerate() {
            list.push(payment_record(invoice_id, first + i as i64, p, now, &user));
        }
        invoice.insert("payments", Value::Array(list));
        if let Some(paid) = header.paid {
            invoice.insert("paid", paid);
        }
        if let Some(date) = header.payment_date {
            invoice.insert("payment-date", date);
        }
        if let Some(notes) = &header.payment_notes {
            invoice.insert("payment-notes", notes.as_str());
        }
        invoice.insert("updated-at", now);
        invoice.insert("updated-by", user);
        Ok(())
    }
}

/// A payment as an invoice carries it (R39 `Payment`). Its id is derived from the invoice's and
/// its position, so seeded and appended payments never collide.
pub fn payment_record(
    invoice_id: i64,
    position: i64,
    p: &NewPayment,
    at: DateTime<FixedOffset>,
    user: &Value,
) -> Value {
    Value::Object(
        Object::with_capacity(11)
            .with("id", invoice_id * 1000 + position)
            .with("created-at", at)
            .with("updated-at", at)
            .with("amount-paid", p.amount_paid)
            .with("notes", p.notes.clone())
            .with("payment-date", p.payment_date)
            .with("payable-type", "InvoiceHeader")
            .with("payable-id", invoice_id)
            .with("category", "payment")
            .with("created-by", user.clone())
            .with("updated-by", user.clone()),
    )
}

/// One payment line to append to an invoice.
#[derive(Debug, Clone, PartialEq)]
pub struct NewPayment {
    pub amount_paid: Decimal,
    /// The check number or note (`check-number` is stored here, as Coupa does).
    pub notes: Option<String>,
    pub payment_date: Option<DateTime<FixedOffset>>,
}

/// The invoice header's own payment fields.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PaymentHeader {
    pub paid: Option<bool>,
    pub payment_date: Option<DateTime<FixedOffset>>,
    pub payment_notes: Option<String>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PaymentError {
    #[error("invoice not found")]
    NotFound,
    #[error("{}", .0.join("; "))]
    Invalid(Vec<String>),
}
