//! Coupa documents as a typed tree, read and written the way Coupa writes them.
//!
//! Coupa speaks JSON and XML about the same resources, and the two disagree in small ways:
//! XML carries `type="integer|decimal|boolean|datetime|array"` attributes and `nil="true"`,
//! wraps lists in a plural element, and may wrap text in CDATA; JSON writes decimals as strings
//! and keys with dashes or underscores. This crate gives both one shape, [`Value`], so the
//! simulator and the client handle documents once, whatever the format on the wire.
//!
//! Layout:
//! - [`value`]: the tree ([`Value`], [`Object`]) and typed accessors.
//! - [`json`] and [`xml`]: read and write the tree; writers produce Coupa's own style.
//! - [`names`]: key normalisation (dashes vs underscores) and plural/singular element names.
//! - [`payment_csv`]: the columns of Coupa's invoice-payment import file.
//! - [`lenient`]: the permissive scalar parsers Coupa applies to incoming values (dates such as
//!   `9/12/2019`, quoted dates, `Yes`/`N` booleans, decimals sent as numbers or strings).

pub mod json;
pub mod lenient;
pub mod names;
pub mod payment_csv;
pub mod value;
pub mod xml;

pub use value::{Object, Value};

/// Why a document could not be read. Messages name the position or element that failed.
#[derive(Debug, thiserror::Error)]
pub enum DocError {
    #[error("invalid JSON: {0}")]
    Json(String),
    #[error("invalid XML at byte {position}: {message}")]
    Xml { position: u64, message: String },
    #[error("document nests deeper than {0} levels")]
    TooDeep(usize),
}

/// Deepest nesting a reader accepts. Coupa's own documents stay under 10 levels; the limit keeps
/// a hostile payload from exhausting the stack when the tree is dropped or written.
pub const MAX_DEPTH: usize = 64;
