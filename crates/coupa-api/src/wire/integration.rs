//! Coupa's integration monitoring resources: integrations, their contacts, runs, history
//! records and errors (`/api/integrations`, `/api/integration_contacts`,
//! `/api/integration_runs`, `/api/integration_history_records`, `/api/integration_errors`).
//!
//! Field names follow the R39 Core Platform Swagger. A record's run is written either as
//! `"integration-run": {"id": R}` (Swagger, responses) or `"integration-run-id": R` (the
//! `create_alert` body in Coupa's invoice playbook, and a Swagger field of its own); both are
//! read, and [`HistoryRecord::run_id`] / [`IntegrationError::run_id`] give whichever is set.

use chrono::{DateTime, FixedOffset};
use serde::Deserialize;

use super::decode::lenient;
use crate::domain::{
    ContactAlertType, HistoryRecordId, IntegrationContactId, IntegrationErrorId, IntegrationId,
    IntegrationRunId, RunStatus,
};

/// How one record points at an integration: `{"code": "..."}` in requests, with `id` and
/// `name` in responses.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct IntegrationRef {
    pub id: Option<IntegrationId>,
    pub code: Option<String>,
    pub name: Option<String>,
}

/// `"integration-run": {"id": R}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct RunRef {
    pub id: IntegrationRunId,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct Integration {
    pub id: IntegrationId,
    pub name: Option<String>,
    pub code: Option<String>,
    pub business_object: Option<String>,
    /// `to_coupa` or `from_coupa`.
    pub direction: Option<String>,
    pub end_system: Option<String>,
    /// `internal`, `payroll`, `erp`, `hr`, `third_party_partner`, `third_party_vendor`, `other`.
    pub end_system_type: Option<String>,
    /// `flat_file`, `api`, `corporate_credit_card_file`, `json`, `xml`, `original_format`.
    pub integration_type: Option<String>,
    pub standard: Option<bool>,
    #[serde(default, deserialize_with = "lenient::datetime_opt")]
    pub created_at: Option<DateTime<FixedOffset>>,
    #[serde(default, deserialize_with = "lenient::datetime_opt")]
    pub updated_at: Option<DateTime<FixedOffset>>,
}

/// Who is alerted about an integration.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct IntegrationContact {
    pub id: IntegrationContactId,
    pub contact_alert_type: Option<ContactAlertType>,
    /// `User`, `UserGroup`, `ApprovalGroup`, `Supplier` or `SupplierUser`.
    pub contactable_type: Option<String>,
    pub contactable_id: Option<i64>,
    pub integration: Option<IntegrationRef>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct IntegrationRun {
    pub id: IntegrationRunId,
    pub status: Option<RunStatus>,
    pub total_records: Option<i64>,
    pub records_processed: Option<i64>,
    #[serde(default, deserialize_with = "lenient::datetime_opt")]
    pub start_time: Option<DateTime<FixedOffset>>,
    #[serde(default, deserialize_with = "lenient::datetime_opt")]
    pub end_time: Option<DateTime<FixedOffset>>,
    pub integration: Option<IntegrationRef>,
    /// Swagger declares a `Flow` object; its name (or code) is kept, or the text if a plain
    /// string arrives.
    #[serde(default, deserialize_with = "lenient::name_or_text_opt")]
    pub flow: Option<String>,
    #[serde(default, deserialize_with = "lenient::datetime_opt")]
    pub created_at: Option<DateTime<FixedOffset>>,
    #[serde(default, deserialize_with = "lenient::datetime_opt")]
    pub updated_at: Option<DateTime<FixedOffset>>,
}

/// One `responses` entry of a history record or integration error.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct HistoryResponse {
    pub response_code: Option<String>,
    pub response_message: Option<String>,
}

/// An integration history record or integration error: the outcome of one document in one
/// integration. Coupa gives both resources the same fields; only the id type tells them apart.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct MonitoringRecord<Id> {
    pub id: Id,
    /// `InvoiceHeader`, `CoupaPay::Payment`, ...
    pub document_type: Option<String>,
    pub document_id: Option<i64>,
    pub document_status: Option<String>,
    /// Free text; Coupa's examples use `Success` and `Error`.
    pub status: Option<String>,
    pub contact_alert_type: Option<ContactAlertType>,
    pub external_id: Option<String>,
    pub resolved: Option<bool>,
    pub integration: Option<IntegrationRef>,
    pub integration_run: Option<RunRef>,
    /// The flat form of `integration-run`; see [`MonitoringRecord::run_id`].
    pub integration_run_id: Option<IntegrationRunId>,
    #[serde(default)]
    pub responses: Vec<HistoryResponse>,
    #[serde(default, deserialize_with = "lenient::datetime_opt")]
    pub created_at: Option<DateTime<FixedOffset>>,
    #[serde(default, deserialize_with = "lenient::datetime_opt")]
    pub updated_at: Option<DateTime<FixedOffset>>,
}

impl<Id> MonitoringRecord<Id> {
    /// The run, from `integration-run.id` or else `integration-run-id`.
    pub fn run_id(&self) -> Option<IntegrationRunId> {
        self.integration_run
            .as_ref()
            .map(|r| r.id)
            .or(self.integration_run_id)
    }
}

/// `/api/integration_history_records`.
pub type HistoryRecord = MonitoringRecord<HistoryRecordId>;

/// `/api/integration_errors`: a record that also alerts the contacts and counts against its run.
pub type IntegrationError = MonitoringRecord<IntegrationErrorId>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Format, decode, parse};

    #[test]
    fn the_run_is_read_in_either_form() {
        let nested: HistoryRecord = decode(
            &parse(
                Format::Json,
                br#"{"id": 1, "integration-run": {"id": 501}}"#,
            )
            .expect("json"),
        )
        .expect("decodes");
        assert_eq!(nested.run_id(), Some(IntegrationRunId(501)));
        let flat: IntegrationError = decode(
            &parse(Format::Json, br#"{"id": 2, "integration-run-id": "501"}"#).expect("json"),
        )
        .expect("decodes");
        assert_eq!(flat.run_id(), Some(IntegrationRunId(501)));
    }

    #[test]
    fn a_flow_object_is_read_by_name() {
        let run: IntegrationRun = decode(
            &parse(
                Format::Json,
                br#"{"id": 1, "status": "running", "flow": {"id": 3, "name": "Invoices"}}"#,
            )
            .expect("json"),
        )
        .expect("decodes");
        assert_eq!(run.flow.as_deref(), Some("Invoices"));
        assert_eq!(run.status, Some(RunStatus::Running));
    }
}
