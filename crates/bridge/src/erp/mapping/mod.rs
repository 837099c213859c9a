//! Declarative field mapping between the canonical model (`schemas/canonical.schema.json`) and
//! an ERP's own field names and formats (docs/erp-mapping.md). A mapping file is TOML: each
//! section says how one document is written (`[invoice]`, `[cancel]`, `[pay_payment]`) or read
//! (`[payment]`, `[result]`, `[answer]`); a missing section means the canonical JSON. The file is
//! checked whole when loaded ([`Mapping::load`]), every problem with its line, so a mistake
//! stops the start-up rather than the first invoice.

mod canon;
mod load;
mod read;
mod render;
#[cfg(test)]
mod tests;

use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use super::{ErpCancel, ErpInvoice, ErpPayPayment, ErpResult, NewErpPayment};

pub use canon::canonical_schema;

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

/// A loaded, validated mapping. `Default` is [`Mapping::canonical`].
#[derive(Clone, Debug, Default)]
pub struct Mapping {
    file: String,
    invoice: Option<OutSection>,
    cancel: Option<OutSection>,
    pay_payment: Option<OutSection>,
    payment: Option<InSection>,
    result: Option<InSection>,
    answer: Answer,
}

/// How one outbound document is written.
#[derive(Clone, Debug)]
struct OutSection {
    format: Format,
    /// XML root element.
    root: String,
    /// JSON field / XML wrapper element of the lines.
    lines: String,
    /// XML element of one line.
    line_element: String,
    /// CSV delimiter.
    delimiter: u8,
    fields: Vec<FieldMap>,
    /// Empty: the lines are not written (also for a document without a list).
    line_fields: Vec<FieldMap>,
}

/// How one inbound document is read.
#[derive(Clone, Debug)]
struct InSection {
    format: Format,
    /// JSON/XML path to the records.
    items: Option<String>,
    /// JSON path of the next page's cursor (payments endpoint).
    next_cursor: Option<String>,
    delimiter: u8,
    fields: Vec<FieldMap>,
}

/// `[answer]`: where an HTTP answer body holds what the connector needs.
#[derive(Clone, Debug, Default)]
struct Answer {
    document_number: Option<String>,
    reasons: Option<String>,
}

/// One mapped field: `name` is the field written (the ERP's outbound, the canonical inbound).
#[derive(Clone, Debug)]
struct FieldMap {
    name: String,
    /// Line of the mapping file.
    line: usize,
    source: Source,
    transform: Transform,
    /// Written when the value is missing or null, or not in `map`.
    default: Option<Value>,
    /// Named in the file (not the canonical name standing for itself): a CSV column it reads
    /// must be there.
    explicit: bool,
}

#[derive(Clone, Debug)]
enum Source {
    From(String),
    Const(Value),
}

#[derive(Clone, Debug)]
enum Transform {
    None,
    /// A chrono strftime pattern.
    Date(String),
    Decimal(DecimalFormat),
    /// Value as text -> value.
    Map(Vec<(String, Value)>),
}

#[derive(Clone, Debug)]
struct DecimalFormat {
    places: Option<u32>,
    point: char,
    grouping: Option<char>,
}

impl Mapping {
    /// No mapping: every document is its canonical JSON.
    pub fn canonical() -> Mapping {
        Mapping::default()
    }

    /// Reads and checks a mapping file.
    pub fn load(path: &Path) -> Result<Mapping, MappingErrors> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            MappingErrors(vec![MappingError {
                file: file.clone(),
                line: 0,
                message: format!("cannot read the mapping file: {e}"),
            }])
        })?;
        Mapping::parse(&text, &file)
    }

    /// Checks a mapping file's text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Mapping, MappingErrors> {
        load::parse(text, file)
    }

    /// The format a document is written in.
    pub fn format_of(&self, doc: Outbound) -> Format {
        self.out_section(doc).map_or(Format::Json, |s| s.format)
    }

    fn out_section(&self, doc: Outbound) -> Option<&OutSection> {
        match doc {
            Outbound::Invoice => self.invoice.as_ref(),
            Outbound::Cancel => self.cancel.as_ref(),
            Outbound::PayPayment => self.pay_payment.as_ref(),
        }
    }

    pub fn invoice(&self, invoice: &ErpInvoice) -> Result<Rendered, MapError> {
        self.render(Outbound::Invoice, invoice)
    }

    pub fn cancel(&self, cancel: &ErpCancel) -> Result<Rendered, MapError> {
        self.render(Outbound::Cancel, cancel)
    }

    pub fn pay_payment(&self, payment: &ErpPayPayment) -> Result<Rendered, MapError> {
        self.render(Outbound::PayPayment, payment)
    }

    fn render<T: Serialize>(&self, doc: Outbound, value: &T) -> Result<Rendered, MapError> {
        let whole = |e: serde_json::Error| MapError {
            field: String::new(),
            at: self.file.clone(),
            message: format!("the document does not serialize: {e}"),
        };
        match self.out_section(doc) {
            None => Ok(Rendered {
                format: Format::Json,
                bytes: serde_json::to_vec(value).map_err(whole)?,
            }),
            Some(section) => {
                let value = serde_json::to_value(value).map_err(whole)?;
                let list = match doc {
                    Outbound::Invoice => canon::shape_of(canon::Doc::Invoice),
                    Outbound::Cancel => canon::shape_of(canon::Doc::Cancel),
                    Outbound::PayPayment => canon::shape_of(canon::Doc::PayPayment),
                }
                .list
                .as_ref()
                .map(|(name, _)| name.as_str());
                render::render(&self.file, section, &value, list)
            }
        }
    }

    /// The records of a result file; see [`Mapping::read_payments`] for the errors. Rejections
    /// of the same invoice and action on several records (a CSV row per message) are one answer
    /// with all their reasons.
    #[allow(clippy::type_complexity)]
    pub fn read_results(
        &self,
        bytes: &[u8],
        source: &str,
    ) -> Result<Vec<Result<ErpResult, String>>, String> {
        read::results(self, bytes, source)
    }

    /// The records of a payment file: `Err` when the file cannot be read at all, otherwise one
    /// entry per record, an `Err` naming the source, the record (CSV line, JSON index, XML
    /// element), the field and why.
    #[allow(clippy::type_complexity)]
    pub fn read_payments(
        &self,
        bytes: &[u8],
        source: &str,
    ) -> Result<Vec<Result<NewErpPayment, String>>, String> {
        read::payments(self, bytes, source)
    }

    /// A page of the ERP's payments endpoint (JSON): its records and the next page's cursor
    /// (`None` at the end).
    #[allow(clippy::type_complexity)]
    pub fn read_payments_page(
        &self,
        body: &[u8],
        source: &str,
    ) -> Result<(Vec<Result<NewErpPayment, String>>, Option<String>), String> {
        read::payments_page(self, body, source)
    }

    /// The document number in an HTTP answer body (`[answer] document_number`).
    pub fn answer_document_number(&self, body: &Value) -> Option<String> {
        let path = self
            .answer
            .document_number
            .as_deref()
            .unwrap_or("document_number");
        read::select(body, path)
            .into_iter()
            .filter_map(read::scalar_text)
            .find(|t| !t.trim().is_empty())
    }

    /// The reasons in an HTTP answer body (`[answer] reasons`): each string found, a list's
    /// strings each.
    pub fn answer_reasons(&self, body: &Value) -> Vec<String> {
        let path = self.answer.reasons.as_deref().unwrap_or("reasons");
        let mut out = Vec::new();
        for v in read::select(body, path) {
            match v {
                Value::Array(items) => out.extend(items.iter().map(read::any_text)),
                Value::Null => {}
                other => out.push(read::any_text(other)),
            }
        }
        out.retain(|r| !r.trim().is_empty());
        out
    }
}
