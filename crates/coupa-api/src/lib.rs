//! A typed, async client for Coupa's REST API, as the connector's three flows use it.
//!
//! Most Coupa connectors in the wild go wrong in the same places: offset paging that skips
//! records while the caller marks them exported, blind retries that melt the rate limit, XML
//! quirks, API keys. This crate is where those are got right once.
//!
//! Layout, from the wire up:
//! - [`wire`]: the wire models (kebab-case, Option-heavy) decoded from JSON or XML through one
//!   path ([`coupa_doc::Value`] then serde), with field paths in decode errors.
//! - [`domain`]: ids, [`InvoiceNumber`], [`Money`], statuses with an `Other` escape.
//! - [`query`]: the filter/`fields`/order builder that renders Coupa's query strings.
//! - [`auth`]: OAuth2 client credentials with a shared token cache, or a legacy API key.
//! - [`rate`] and [`retry`]: the shared rate governor and the pure retry decision.
//! - [`transport`]: one request, with its attempts: governor, auth, timeouts, retries, and an
//!   [`observe::Observer`] that sees every attempt (secrets redacted).
//! - [`paging`]: the skip-proof record stream (by id) and, for comparison, offset paging.
//! - [`client`]: [`Client`] and the operations the flows call, per resource.
//! - [`error`]: one error type with a classification callers act on.

pub mod auth;
pub mod client;
pub mod domain;
pub mod error;
pub mod observe;
pub mod paging;
pub mod query;
pub mod rate;
pub mod retry;
pub mod transport;
pub mod wire;

pub use client::{Client, ClientConfig, DEFAULT_MAX_RESPONSE_BYTES};
pub use domain::*;
pub use error::{Error, ErrorClass, ErrorKind};
pub use secrecy::SecretString;
pub use wire::Format;
