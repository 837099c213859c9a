//! Declarative field mapping between the canonical model (`schemas/canonical.schema.json`) and
//! an ERP's own field names and formats. SKELETON: being written.

use std::path::Path;

use super::{ErpCancel, ErpInvoice, ErpPayPayment, ErpResult, NewErpPayment};

/// How a document is written or read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Format {
    #[default]
    Json,
    Csv,
    Xml,
}

impl Format {
    /// The file extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Csv => "csv",
            Format::Xml => "xml",
        }
    }

    /// The HTTP content type.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Csv => "text/csv",
            Format::Xml => "application/xml",
        }
    }
}

/// The documents the connector sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outbound {
    Invoice,
    Cancel,
    PayPayment,
}

/// A problem in the mapping file, with the line it is on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct MappingError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// Every problem of a mapping file, one per line of the message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"))]
pub struct MappingErrors(pub Vec<MappingError>);

/// A document the mapping could not be applied to: the ERP field, the mapping line, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field} ({at}): {message}")]
pub struct MapError {
    pub field: String,
    /// `file:line` of the field's mapping.
    pub at: String,
    pub message: String,
}

/// A document as the ERP gets it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    pub format: Format,
    pub bytes: Vec<u8>,
}

/// A loaded, validated mapping.
#[derive(Clone, Debug, Default)]
pub struct Mapping {}

impl Mapping {
    /// No mapping: every document is its canonical JSON.
    pub fn canonical() -> Mapping {
        Mapping {}
    }

    pub fn load(_path: &Path) -> Result<Mapping, MappingErrors> {
        todo!()
    }

    pub fn parse(_text: &str, _file: &str) -> Result<Mapping, MappingErrors> {
        todo!()
    }

    pub fn format_of(&self, _doc: Outbound) -> Format {
        todo!()
    }

    pub fn invoice(&self, _invoice: &ErpInvoice) -> Result<Rendered, MapError> {
        todo!()
    }

    pub fn cancel(&self, _cancel: &ErpCancel) -> Result<Rendered, MapError> {
        todo!()
    }

    pub fn pay_payment(&self, _payment: &ErpPayPayment) -> Result<Rendered, MapError> {
        todo!()
    }

    #[allow(clippy::type_complexity)]
    pub fn read_results(
        &self,
        _bytes: &[u8],
        _source: &str,
    ) -> Result<Vec<Result<ErpResult, String>>, String> {
        todo!()
    }

    #[allow(clippy::type_complexity)]
    pub fn read_payments(
        &self,
        _bytes: &[u8],
        _source: &str,
    ) -> Result<Vec<Result<NewErpPayment, String>>, String> {
        todo!()
    }

    #[allow(clippy::type_complexity)]
    pub fn read_payments_page(
        &self,
        _body: &[u8],
        _source: &str,
    ) -> Result<(Vec<Result<NewErpPayment, String>>, Option<String>), String> {
        todo!()
    }

    pub fn answer_document_number(&self, _body: &serde_json::Value) -> Option<String> {
        todo!()
    }

    pub fn answer_reasons(&self, _body: &serde_json::Value) -> Vec<String> {
        todo!()
    }
}
