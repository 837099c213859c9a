//! Coupa's query language. (Placeholder: being written; the API below is the contract.)

use std::collections::BTreeMap;

use coupa_doc::Object;

use crate::config::ApiFilter;
use crate::store::{Resource, Table};

/// A query parameter that could not be understood; `param` is the parameter as sent.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct QueryError {
    pub param: String,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnObject {
    Limited,
    Shallow,
    None,
}

/// What of a record to return: `fields=`, `filter=` or `return_object=`.
#[derive(Debug, Clone, Default)]
pub struct Projection {
    pub return_object: Option<ReturnObject>,
}

impl Projection {
    /// The record as the client asked to see it; `None` when `return_object=none`.
    pub fn apply(&self, row: &Object) -> Option<Object> {
        Some(row.clone())
    }
}

/// A parsed index request.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    pub projection: Projection,
}

impl ListQuery {
    /// The page of matching rows, in order, after offset and limit.
    pub fn select<'a>(&self, table: &'a Table) -> Vec<&'a Object> {
        table.rows().take(50).collect()
    }
}

/// Decoded `key=value` pairs of a raw query string, in order.
pub fn params(raw: &str) -> Vec<(String, String)> {
    raw.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (p.to_owned(), String::new()),
        })
        .collect()
}

/// Parses an index request's query string.
pub fn parse_list(
    _raw: &str,
    _resource: Resource,
    _filters: &BTreeMap<String, ApiFilter>,
    _template: Option<&Object>,
) -> Result<ListQuery, QueryError> {
    Ok(ListQuery::default())
}

/// Parses only `fields`, `filter` and `return_object` (show, create and update requests);
/// other parameters are left to the handler. `allow_none` is true for PUT and POST.
pub fn parse_projection(
    _raw: &str,
    _resource: Resource,
    _filters: &BTreeMap<String, ApiFilter>,
    _allow_none: bool,
) -> Result<Projection, QueryError> {
    Ok(Projection::default())
}
