//! Integration tests of the Coupa client against the in-process simulator, plus fixture tests
//! of Coupa's own payloads.

mod auth;
mod common;
mod fixtures;
mod limits;
mod operations;
mod paging;
mod resilience;
