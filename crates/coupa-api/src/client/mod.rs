//! [`Client`]: one per Coupa instance, cheap to clone, shared by every task. Operations are
//! grouped by resource ([`Client::invoices`], [`Client::runs`], ...); each knows its path,
//! its request body and whether repeating it is safe.

mod data_file_sources;
mod integrations;
mod invoices;
mod monitoring;
mod pay_payments;

use std::sync::Arc;

use coupa_doc::Value;
use reqwest::Method;
use serde::de::DeserializeOwned;

pub use data_file_sources::DataFileSources;
pub use integrations::{Integrations, NewIntegration};
pub use invoices::{Invoices, NewPayment, PaidInFull};
pub use monitoring::{HistoryRecords, IntegrationErrors, NewMonitoringRecord, Runs};
pub use pay_payments::PayPayments;

use crate::auth::{Auth, Credentials};
use crate::error::{Error, ErrorKind};
use crate::observe::{CallContext, Observer};
use crate::paging::{Item, Pager, RecordError};
use crate::query::Query;
use crate::rate::{Governor, RateConfig};
use crate::retry::RetryPolicy;
pub use crate::transport::WriteGate;
use crate::transport::{Caller, HttpSettings, Limits, Request, Response, Transport};
use crate::wire::{self, Format};

/// Everything a client needs to talk to one Coupa instance.
#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// `https://acme.coupahost.com`, without `/api`.
    pub base_url: String,
    pub credentials: Credentials,
    pub format: Format,
    /// `None` turns the governor off (tests and benchmarks against an unthrottled simulator).
    pub rate: Option<RateConfig>,
    pub retry: RetryPolicy,
    pub http: HttpSettings,
    /// Accept a plain `http://` base URL: for the Coupa simulator only (the connector's
    /// `coupa.insecure_http_simulator_only`). Off (the default), the client speaks HTTPS only,
    /// redirects included. Certificate verification is on either way: no setting turns it off.
    pub insecure_http_simulator_only: bool,
    /// The largest response body read, in bytes ([`DEFAULT_MAX_RESPONSE_BYTES`] by default). A
    /// larger answer is refused, whatever its `Content-Length` says, and not asked for again.
    pub max_response_bytes: usize,
}

/// 64 MiB: far above any page of 50 Coupa records, far below what exhausts the process.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

impl ClientConfig {
    pub fn new(base_url: impl Into<String>, credentials: Credentials) -> Self {
        ClientConfig {
            base_url: base_url.into(),
            credentials,
            format: Format::Json,
            rate: Some(RateConfig::default()),
            retry: RetryPolicy::default(),
            http: HttpSettings::default(),
            insecure_http_simulator_only: false,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
        }
    }
}

/// A Coupa client. Clones share the connection pool, token cache and rate governor.
#[derive(Clone)]
pub struct Client {
    transport: Arc<Transport>,
    caller: Caller,
    /// Codes of the Integrations known to exist, so a long-running process looks each up once
    /// (see [`Integrations::ensure`]). Shared by every handle derived from this one.
    known_integrations: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("format", &self.transport.format())
            .field("context", &self.caller.context)
            .finish_non_exhaustive()
    }
}

impl Client {
    pub fn new(config: ClientConfig, observer: Arc<dyn Observer>) -> Result<Self, Error> {
        let base = config.base_url.trim().trim_end_matches('/').to_owned();
        let base = base.strip_suffix("/api").unwrap_or(&base).to_owned();
        let invalid = |message: String| Error::new("", "", ErrorKind::Invalid(message));
        let https = base.starts_with("https://") && base.len() > "https://".len();
        let http = base.starts_with("http://") && base.len() > "http://".len();
        if http && !config.insecure_http_simulator_only {
            return Err(invalid(format!(
                "base URL '{base}' is plain http://: Coupa is reached over https:// only. \
                 insecure_http_simulator_only (coupa.insecure_http_simulator_only in the \
                 connector's config) accepts http:// and is for the simulator only"
            )));
        }
        if !(https || http) {
            return Err(invalid(format!(
                "base URL '{base}' must start with https:// (e.g. https://acme.coupahost.com)"
            )));
        }
        if config.insecure_http_simulator_only {
            tracing::warn!(
                base_url = %base,
                "coupa.insecure_http_simulator_only is on: plain HTTP is accepted, without TLS; \
                 this is for the Coupa simulator only, never for a real Coupa instance"
            );
        }
        let auth = Auth::new(config.credentials, &base);
        let governor = config.rate.map_or_else(Governor::unlimited, Governor::new);
        let transport = Transport::new(
            base,
            config.format,
            auth,
            governor,
            config.retry,
            &config.http,
            Limits {
                // Only an accepted http:// base lifts it: an https:// instance stays HTTPS-only
                // even with the simulator switch on.
                https_only: https,
                max_response_bytes: config.max_response_bytes,
            },
            observer,
        )?;
        Ok(Client {
            transport: Arc::new(transport),
            caller: Caller::default(),
            known_integrations: Arc::default(),
        })
    }

    /// A handle whose calls are reported with this context (flow, run, document). Its calls
    /// still count towards this handle's [`Client::calls`].
    pub fn with_context(&self, context: CallContext) -> Client {
        Client {
            transport: self.transport.clone(),
            caller: Caller {
                context: Arc::new(context),
                calls: self.caller.calls.clone(),
                gate: self.caller.gate.clone(),
            },
            known_integrations: self.known_integrations.clone(),
        }
    }

    /// A handle (and the handles derived from it) whose writes pass `gate` first, just before
    /// they are sent.
    pub fn with_write_gate(&self, gate: Arc<dyn WriteGate>) -> Client {
        Client {
            transport: self.transport.clone(),
            caller: Caller {
                context: self.caller.context.clone(),
                calls: self.caller.calls.clone(),
                gate: Some(gate),
            },
            known_integrations: self.known_integrations.clone(),
        }
    }

    /// A handle with its own call counter, starting at zero (shared by the handles derived
    /// from it): what a pass uses to count its calls.
    pub fn counted(&self, context: CallContext) -> Client {
        Client {
            transport: self.transport.clone(),
            caller: Caller {
                context: Arc::new(context),
                calls: Arc::default(),
                gate: self.caller.gate.clone(),
            },
            known_integrations: self.known_integrations.clone(),
        }
    }

    /// Attempts made through this handle and those derived from it (retries and token
    /// requests included).
    pub fn calls(&self) -> u64 {
        self.caller.calls.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn context(&self) -> &CallContext {
        &self.caller.context
    }

    pub fn format(&self) -> Format {
        self.transport.format()
    }

    /// Obtains a token now, when none is cached (nothing to do with an API key): a first call
    /// that tells whether the credentials and scopes are accepted, before any resource is asked.
    pub async fn authenticate(&self) -> Result<(), Error> {
        self.transport.authenticate(&self.caller).await
    }

    /// The scopes the last token was granted, when the token endpoint said.
    pub fn granted_scopes(&self) -> Option<Vec<String>> {
        self.transport.auth().granted_scopes()
    }

    /// The rate governor's current requests per second (lower after 429s).
    pub fn effective_rate(&self) -> f64 {
        self.transport.governor().effective_rate()
    }

    pub fn invoices(&self) -> Invoices<'_> {
        Invoices(self)
    }

    pub fn integrations(&self) -> Integrations<'_> {
        Integrations(self)
    }

    pub fn runs(&self) -> Runs<'_> {
        Runs(self)
    }

    pub fn history_records(&self) -> HistoryRecords<'_> {
        HistoryRecords(self)
    }

    pub fn integration_errors(&self) -> IntegrationErrors<'_> {
        IntegrationErrors(self)
    }

    pub fn pay_payments(&self) -> PayPayments<'_> {
        PayPayments(self)
    }

    pub fn data_file_sources(&self) -> DataFileSources<'_> {
        DataFileSources(self)
    }

    /// Sends a request as is: the escape hatch for calls this crate has no operation for.
    pub async fn send(&self, req: &Request) -> Result<Response, Error> {
        self.transport.send(&self.caller, req).await
    }

    /// Sends a request and decodes its one-record answer. A one-element list (Coupa answers
    /// `resolve` that way) is accepted as its element.
    pub(crate) async fn fetch<T: DeserializeOwned>(&self, req: Request) -> Result<T, Error> {
        let resp = self.send(&req).await?;
        let fail = |e: wire::DecodeError| {
            Error::new(req.method.as_str(), req.target(), ErrorKind::Decode(e))
        };
        let value = wire::parse(self.format(), &resp.body).map_err(fail)?;
        let value = match value {
            Value::Array(mut items) if items.len() == 1 => items.remove(0),
            other => other,
        };
        wire::decode(&value).map_err(fail)
    }

    /// Lists one page. Each record is decoded on its own, so one broken record does not sink
    /// its page; its id comes along for the cursor and the error report. Coupa's XML answers
    /// an empty result with 404 "No results match your search criteria": that is an empty page.
    pub(crate) async fn fetch_list<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &Query,
    ) -> Result<Vec<(Option<i64>, Item<T>)>, Error> {
        let req = Request::new(Method::GET, path).query(query.pairs());
        let resp = match self.send(&req).await {
            Ok(r) => r,
            Err(e) if is_empty_result(&e) => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let fail = |e| Error::new("GET", req.target(), ErrorKind::Decode(e));
        let value = wire::parse(self.format(), &resp.body).map_err(fail)?;
        let items = wire::list_items(value).map_err(fail)?;
        Ok(items
            .into_iter()
            .map(|v| {
                let id = v
                    .as_object()
                    .and_then(|o| o.get("id"))
                    .and_then(Value::as_i64);
                let item = wire::decode::<T>(&v).map_err(|error| RecordError { id, error });
                (id, item)
            })
            .collect())
    }

    /// A skip-proof pager over a listing.
    pub(crate) fn pager<T: DeserializeOwned + Send + 'static>(
        &self,
        path: &str,
        query: Query,
    ) -> Pager<T> {
        Pager::new(self.clone(), path, query)
    }
}

fn is_empty_result(e: &Error) -> bool {
    e.status() == Some(404)
        && e.messages()
            .iter()
            .any(|m| m.to_ascii_lowercase().contains("no results match"))
}
