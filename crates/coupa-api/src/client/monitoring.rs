//! Coupa's integration monitoring: runs, history records, integration errors (seed 001's
//! options 2 and 3). History records and errors share their shape, so one input type serves
//! both.

use chrono::{DateTime, FixedOffset};
use coupa_doc::{Object, Value};
use reqwest::Method;

use super::Client;
use crate::domain::{ContactAlertType, HistoryRecordId, IntegrationErrorId, IntegrationRunId};
use crate::error::Error;
use crate::paging::Pager;
use crate::query::Query;
use crate::transport::Request;
use crate::wire::{HistoryRecord, IntegrationError, IntegrationRun};

const RUNS: &str = "/api/integration_runs";
const HISTORY: &str = "/api/integration_history_records";
const ERRORS: &str = "/api/integration_errors";

/// A history record or integration error to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewMonitoringRecord {
    /// The Integration's code.
    pub integration_code: String,
    pub run: Option<IntegrationRunId>,
    /// `InvoiceHeader`, `CoupaPay::Payment`, ...
    pub document_type: String,
    /// The Coupa document concerned; history records need one, an error may have none (a
    /// payment the ERP made for an invoice Coupa does not have).
    pub document_id: Option<i64>,
    pub document_status: Option<String>,
    pub contact_alert_type: ContactAlertType,
    /// `Success` or `Error` on history records.
    pub status: Option<String>,
    /// The ERP's document number, when there is one.
    pub external_id: Option<String>,
    /// `(response-code, response-message)` pairs.
    pub responses: Vec<(String, String)>,
}

impl NewMonitoringRecord {
    fn to_value(&self) -> Value {
        let mut o = Object::new()
            .with("document-type", self.document_type.as_str())
            .with("contact-alert-type", self.contact_alert_type.as_str())
            .with(
                "integration",
                Object::new().with("code", self.integration_code.as_str()),
            );
        if let Some(id) = self.document_id {
            o.insert("document-id", id);
        }
        if let Some(run) = self.run {
            o.insert("integration-run", Object::new().with("id", run));
        }
        if let Some(s) = &self.document_status {
            o.insert("document-status", s.as_str());
        }
        if let Some(s) = &self.status {
            o.insert("status", s.as_str());
        }
        if let Some(s) = &self.external_id {
            o.insert("external-id", s.as_str());
        }
        if !self.responses.is_empty() {
            o.insert(
                "responses",
                Value::Array(
                    self.responses
                        .iter()
                        .map(|(code, msg)| {
                            Value::Object(
                                Object::new()
                                    .with("response-code", code.as_str())
                                    .with("response-message", msg.as_str()),
                            )
                        })
                        .collect(),
                ),
            );
        }
        Value::Object(o)
    }
}

pub struct Runs<'a>(pub(super) &'a Client);

impl Runs<'_> {
    pub fn list(&self, query: Query) -> Pager<IntegrationRun> {
        self.0.pager(RUNS, query)
    }

    pub async fn get(&self, id: IntegrationRunId) -> Result<IntegrationRun, Error> {
        self.0
            .fetch(Request::new(Method::GET, format!("{RUNS}/{id}")))
            .await
    }

    /// Creates a run (status `pending`) for the Integration with this code.
    pub async fn create(&self, integration_code: &str) -> Result<IntegrationRun, Error> {
        let body = Object::new().with("integration", Object::new().with("code", integration_code));
        self.0
            .fetch(Request::new(Method::POST, RUNS).body("integration-run", Value::Object(body)))
            .await
    }

    /// `PUT /{id}/run` with the number of records the run will process.
    pub async fn start(
        &self,
        id: IntegrationRunId,
        total_records: u64,
    ) -> Result<IntegrationRun, Error> {
        let body = Object::new().with("total-records", total_records);
        self.action(id, "run", Some(body)).await
    }

    /// Ends the run `successful` (or `errored` when it has unresolved errors).
    pub async fn success(&self, id: IntegrationRunId) -> Result<IntegrationRun, Error> {
        self.action(id, "success", None).await
    }

    /// Ends the run `failed`: a general failure of the pass.
    pub async fn fail(&self, id: IntegrationRunId) -> Result<IntegrationRun, Error> {
        self.action(id, "fail", None).await
    }

    /// Saves the run's high-water mark of exported `updated-at`.
    pub async fn set_max_updated_at(
        &self,
        id: IntegrationRunId,
        at: DateTime<FixedOffset>,
    ) -> Result<IntegrationRun, Error> {
        let body = Object::new().with("max-updated-at", at);
        self.action(id, "max_updated_at", Some(body)).await
    }

    async fn action(
        &self,
        id: IntegrationRunId,
        action: &str,
        body: Option<Object>,
    ) -> Result<IntegrationRun, Error> {
        let mut req = Request::new(Method::PUT, format!("{RUNS}/{id}/{action}"));
        if let Some(b) = body {
            req = req.body("integration-run", Value::Object(b));
        }
        self.0.fetch(req).await
    }
}

pub struct HistoryRecords<'a>(pub(super) &'a Client);

impl HistoryRecords<'_> {
    pub fn list(&self, query: Query) -> Pager<HistoryRecord> {
        self.0.pager(HISTORY, query)
    }

    /// The unresolved records of one document, which an acknowledgement resolves.
    pub fn unresolved_for(&self, document_type: &str, document_id: i64) -> Pager<HistoryRecord> {
        self.list(
            Query::new()
                .eq("resolved", false)
                .eq("document-type", document_type)
                .eq("document-id", document_id),
        )
    }

    pub async fn create(&self, record: &NewMonitoringRecord) -> Result<HistoryRecord, Error> {
        create(self.0, HISTORY, "", "integration-history-record", record).await
    }

    /// Creates the record and alerts the Integration's contacts.
    pub async fn create_alert(&self, record: &NewMonitoringRecord) -> Result<HistoryRecord, Error> {
        create(
            self.0,
            HISTORY,
            "/create_alert",
            "integration-history-record",
            record,
        )
        .await
    }

    pub async fn resolve(&self, id: HistoryRecordId) -> Result<HistoryRecord, Error> {
        self.0
            .fetch(Request::new(Method::PUT, format!("{HISTORY}/{id}/resolve")))
            .await
    }
}

pub struct IntegrationErrors<'a>(pub(super) &'a Client);

impl IntegrationErrors<'_> {
    pub fn list(&self, query: Query) -> Pager<IntegrationError> {
        self.0.pager(ERRORS, query)
    }

    pub async fn create(&self, record: &NewMonitoringRecord) -> Result<IntegrationError, Error> {
        create(self.0, ERRORS, "", "integration-error", record).await
    }

    /// Creates the error and alerts the Integration's contacts (Coupa's `create_alert`).
    pub async fn create_alert(
        &self,
        record: &NewMonitoringRecord,
    ) -> Result<IntegrationError, Error> {
        create(self.0, ERRORS, "/create_alert", "integration-error", record).await
    }

    pub async fn resolve(&self, id: IntegrationErrorId) -> Result<IntegrationError, Error> {
        self.0
            .fetch(Request::new(Method::PUT, format!("{ERRORS}/{id}/resolve")))
            .await
    }
}

async fn create<T: serde::de::DeserializeOwned>(
    client: &Client,
    path: &str,
    action: &str,
    root: &str,
    record: &NewMonitoringRecord,
) -> Result<T, Error> {
    client
        .fetch(Request::new(Method::POST, format!("{path}{action}")).body(root, record.to_value()))
        .await
}
