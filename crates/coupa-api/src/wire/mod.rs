//! Wire models: Coupa's resources as they travel, decoded from JSON or XML through one path.
//!
//! A body is first read into a [`coupa_doc::Value`] (which already smooths over XML's type
//! attributes, `nil="true"`, CDATA, list wrappers and dashed/underscored keys), then a serde
//! deserializer over that tree ([`decode`]) fills the typed structs, coercing the scalar forms
//! Coupa mixes (ids as strings, decimals as strings or numbers, `integer`-typed invoice numbers).
//! Unknown fields are ignored: Coupa adds fields every release.
//!
//! - [`decode`](mod@decode): [`parse`], [`decode()`], [`encode`], [`list_items`], [`DecodeError`]
//!   and the `deserialize_with` helpers in [`decode::lenient`].
//! - [`invoice`], [`integration`], [`pay_payment`], [`data_file_source`]: one module per
//!   resource, re-exported here.
//! - [`errors`]: the messages of every error envelope Coupa sends.

pub mod data_file_source;
pub mod decode;
pub mod errors;
pub mod integration;
pub mod invoice;
pub mod pay_payment;

pub use data_file_source::*;
pub use decode::{DecodeError, decode, encode, list_items, parse};
pub use errors::{NO_RESULTS, error_messages, is_no_results};
pub use integration::*;
pub use invoice::*;
pub use pay_payment::*;

/// The body format spoken with Coupa. Both `Accept` and `Content-Type` carry it.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Deserialize, serde::Serialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    #[default]
    Json,
    Xml,
}

impl Format {
    pub fn mime(self) -> &'static str {
        match self {
            Format::Json => "application/json",
            Format::Xml => "application/xml",
        }
    }
}
