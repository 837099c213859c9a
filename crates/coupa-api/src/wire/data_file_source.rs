//! CSV loads (`/api/data_file_sources`, XML `data-file-source`): how Coupa reports a flat file
//! it picked up from SFTP, row errors included.

use chrono::{DateTime, FixedOffset};
use serde::Deserialize;

use super::decode::lenient;
use crate::domain::{DataFileSourceId, DataFileStatus};

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct DataFileSource {
    pub id: DataFileSourceId,
    /// `BackgroundCsvFileLoad`, `DataFileSource`.
    #[serde(rename = "type")]
    pub source_type: Option<String>,
    /// What the file loads: `Payment`, `InvoiceHeader`, ...
    pub source_for: Option<String>,
    /// `_Incoming_InvoicePayments_<name>.csv`: the SFTP path with `/` turned into `_`.
    pub file_file_name: Option<String>,
    pub status: Option<DataFileStatus>,
    /// "4 rows processed, creating 0 new rows and updating 3 rows."
    pub result_text: Option<String>,
    /// An integer percentage in Swagger; kept as text.
    pub progress: Option<String>,
    #[serde(default, deserialize_with = "lenient::datetime_opt")]
    pub start_time: Option<DateTime<FixedOffset>>,
    #[serde(default, deserialize_with = "lenient::datetime_opt")]
    pub end_time: Option<DateTime<FixedOffset>>,
    #[serde(default, deserialize_with = "lenient::datetime_opt")]
    pub created_at: Option<DateTime<FixedOffset>>,
    #[serde(default, deserialize_with = "lenient::datetime_opt")]
    pub updated_at: Option<DateTime<FixedOffset>>,
    #[serde(default)]
    pub upload_errors: Vec<UploadError>,
}

/// One row (or header) the loader refused.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub struct UploadError {
    /// `UploadRowError` or `UploadHeaderError`.
    #[serde(rename = "type")]
    pub error_type: Option<String>,
    /// The file's row number, header included.
    pub row: Option<i64>,
    /// The row's first cell, to find it by eye.
    pub first_column: Option<String>,
    pub field_with_error: Option<String>,
    pub value: Option<String>,
    /// Swagger types this as one text; Compass and the simulator print a list. Both are read,
    /// as is a list of objects (their message).
    #[serde(default, deserialize_with = "lenient::text_list")]
    pub field_errors: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{Format, decode, parse};

    #[test]
    fn field_errors_are_read_as_a_list_a_text_or_objects() {
        for (body, want) in [
            (r#"{"field-errors": ["a", "b"]}"#, vec!["a", "b"]),
            (
                r#"{"field-errors": "Name has already been taken"}"#,
                vec!["Name has already been taken"],
            ),
            (r#"{"field-errors": [{"message": "a"}]}"#, vec!["a"]),
            (r#"{"field-errors": null}"#, vec![]),
            ("{}", vec![]),
        ] {
            let e: UploadError =
                decode(&parse(Format::Json, body.as_bytes()).expect("json")).expect(body);
            assert_eq!(e.field_errors, want, "{body}");
        }
    }
}
