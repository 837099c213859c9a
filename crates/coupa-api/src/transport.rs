//! One request and its attempts. The loop stays small because every decision is made
//! elsewhere: the rate governor says when to send, [`crate::retry::decide`] says whether to try
//! again, [`crate::auth`] supplies the header. What happens here is I/O and reporting: every
//! attempt goes to the observer, whatever its outcome.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use coupa_doc::Value;
use reqwest::Method;
use reqwest::header::{ACCEPT, CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use secrecy::SecretString;
use tokio::time::Instant;

use crate::auth::{Auth, AuthHeader, read_token};
use crate::error::{Error, ErrorKind};
use crate::observe::{Attempt, CallContext, Observer};
use crate::query::render_pairs;
use crate::rate::Governor;
use crate::retry::{self, Decision, Idempotency, Outcome, RetryAfter, RetryPolicy};
use crate::wire::{self, Format};

/// A request, before it is sent.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: Method,
    /// Path under the instance, starting with `/api/`.
    pub path: String,
    pub query: Vec<(String, String)>,
    /// Root element name (for XML) and the document.
    pub body: Option<(String, Value)>,
    pub idempotency: Idempotency,
}

impl Request {
    pub fn new(method: Method, path: impl Into<String>) -> Self {
        let idempotency = if method == Method::POST {
            Idempotency::Unsafe
        } else {
            Idempotency::Idempotent
        };
        Request {
            method,
            path: path.into(),
            query: Vec::new(),
            body: None,
            idempotency,
        }
    }

    pub fn query(mut self, pairs: Vec<(String, String)>) -> Self {
        self.query = pairs;
        self
    }

    pub fn body(mut self, root: impl Into<String>, value: Value) -> Self {
        self.body = Some((root.into(), value));
        self
    }

    /// Marks a request whose repetition could apply it twice (a PUT that appends payments).
    pub fn unsafe_to_repeat(mut self) -> Self {
        self.idempotency = Idempotency::Unsafe;
        self
    }

    /// Path and query as logged and as sent.
    pub fn target(&self) -> String {
        if self.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, render_pairs(&self.query))
        }
    }
}

/// A successful answer.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    pub body: Bytes,
}

/// Timeouts and identity of the HTTP client.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    /// Whole request, headers to last body byte.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub user_agent: String,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(10),
            user_agent: concat!("coupa-bridge/", env!("CARGO_PKG_VERSION")).into(),
        }
    }
}

/// What the client refuses to do, whatever the server says.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    /// Refuse any `http://` URL, redirects included (off only for the simulator's http://).
    pub https_only: bool,
    /// The largest response body read.
    pub max_response_bytes: usize,
}

pub(crate) struct Transport {
    http: reqwest::Client,
    max_response_bytes: usize,
    base_url: String,
    format: Format,
    auth: Auth,
    governor: Governor,
    policy: RetryPolicy,
    observer: Arc<dyn Observer>,
    user_agent: String,
}

/// What one attempt produced, before the retry decision.
struct Answer {
    outcome: Outcome,
    body: Bytes,
    error: Option<String>,
    /// An answer that must not be asked for again within this call, whatever the retry policy
    /// says of its outcome.
    refused: Option<Refusal>,
}

/// Why an attempt's answer was refused outright.
#[derive(Clone, Debug)]
enum Refusal {
    /// The server's certificate did not verify: asking again meets the same certificate.
    Certificate(String),
    /// A success whose body is larger than the limit: asking again brings the same body.
    TooLarge(String),
    /// The write gate's term ran out before the body left: nothing Coupa could act on went.
    Late(String),
}

impl Refusal {
    fn message(&self) -> &str {
        match self {
            Refusal::Certificate(m) | Refusal::TooLarge(m) | Refusal::Late(m) => m,
        }
    }

    /// The error the call ends with. A certificate failure happened before anything was sent:
    /// a transport failure, retryable on a later pass once the certificate is fixed; so did a
    /// body that was too late for the write gate's term. A success
    /// too large to read is unreadable for a safe request; for an unsafe one, Coupa acted on it
    /// and the caller must look before trying again.
    fn into_kind(self, idempotency: Idempotency) -> ErrorKind {
        match (self, idempotency) {
            (Refusal::Certificate(m) | Refusal::Late(m), _) => ErrorKind::Transport(m),
            (Refusal::TooLarge(m), Idempotency::Idempotent) => {
                ErrorKind::Decode(wire::DecodeError::at_root(m))
            }
            (Refusal::TooLarge(m), Idempotency::Unsafe) => ErrorKind::Unknown(m),
        }
    }
}

impl Transport {
    // Each is one piece of the client's configuration; a struct to carry them would only
    // rename `ClientConfig`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        base_url: String,
        format: Format,
        auth: Auth,
        governor: Governor,
        policy: RetryPolicy,
        settings: &HttpSettings,
        limits: Limits,
        observer: Arc<dyn Observer>,
    ) -> Result<Self, Error> {
        // TLS is rustls with the platform's roots, and certificate and host name verification
        // stay on: nothing here (or anywhere in the workspace) calls `tls_danger_*`. Redirects
        // are not followed: Coupa's API answers in place, and a redirected token request would
        // carry the client secret to another host.
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(60))
            .https_only(limits.https_only)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::new("", "", ErrorKind::Invalid(format!("HTTP client: {e}"))))?;
        Ok(Transport {
            user_agent: settings.user_agent.clone(),
            max_response_bytes: limits.max_response_bytes,
            http,
            base_url,
            format,
            auth,
            governor,
            policy,
            observer,
        })
    }

    pub fn format(&self) -> Format {
        self.format
    }

    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    pub fn governor(&self) -> &Governor {
        &self.governor
    }

    /// Sends `req`, retrying as the policy allows. `Ok` only for a 2xx answer.
    pub async fn send(&self, caller: &Caller, req: &Request) -> Result<Response, Error> {
        let target = req.target();
        let method = req.method.as_str().to_owned();
        let fail = |kind| Error::new(method.clone(), target.clone(), kind);
        let body = req
            .body
            .as_ref()
            .map(|(root, v)| Bytes::from(wire::encode(self.format, root, v)));
        let url = format!("{}{}", self.base_url, target);
        let mut attempt = 1;
        let mut reminted = false;
        loop {
            let waited = self.governor.acquire().await;
            let header = self.auth_header(caller).await?;
            // Asked last, so that nothing but the send itself lies between the answer and
            // the request leaving; the body then refuses to leave after the answer's term.
            let term = match &caller.gate {
                Some(gate) if req.method != Method::GET => gate
                    .check()
                    .await
                    .map_err(|why| fail(ErrorKind::Transport(format!("not sent: {why}"))))?,
                _ => None,
            };
            let started = Instant::now();
            let answer = self
                .attempt(&req.method, &url, &header, body.clone(), term)
                .await;
            let duration = started.elapsed();
            let status = match answer.outcome {
                Outcome::Status { status, .. } => Some(status),
                _ => None,
            };
            let messages = match status {
                Some(s) if s >= 400 => error_messages(self.format, &answer.body),
                _ => Vec::new(),
            };
            if let Outcome::Status {
                status: 429,
                retry_after,
            } = &answer.outcome
            {
                // Capped like the retry's own wait: a bogus hour-long Retry-After must not
                // hold every task for an hour.
                self.governor.throttled(retry_after.map(|r| {
                    r.delay_from(SystemTime::now())
                        .min(self.policy.retry_after_cap)
                }));
            }
            // A refused token is re-minted once per request: the token may have been revoked
            // or expired early. A second 401 is an answer.
            let retry_in = if answer.refused.is_some() {
                None
            } else if status == Some(401) && self.auth.is_oauth() && !reminted {
                reminted = true;
                self.auth.invalidate(header.generation);
                Some(Duration::ZERO)
            } else {
                match retry::decide(
                    &self.policy,
                    req.idempotency,
                    &answer.outcome,
                    attempt,
                    retry::jitter(),
                    SystemTime::now(),
                ) {
                    Decision::Retry { after, .. } => Some(after),
                    Decision::Done | Decision::GiveUp { .. } => None,
                }
            };
            let error = answer
                .refused
                .as_ref()
                .map(|r| r.message().to_owned())
                .or_else(|| answer.error.clone())
                .or_else(|| status.filter(|s| *s >= 400).map(|s| describe(s, &messages)));
            self.report(
                caller,
                Attempt {
                    context: caller.context.clone(),
                    method: method.clone(),
                    path: target.clone(),
                    attempt,
                    status,
                    duration,
                    waited,
                    bytes_sent: body.as_ref().map_or(0, Bytes::len),
                    bytes_received: answer.body.len(),
                    error,
                    retry_in,
                },
            );
            match retry_in {
                Some(after) => {
                    if !after.is_zero() {
                        tokio::time::sleep(after).await;
                    }
                    attempt += 1;
                }
                None => {
                    if let Some(refused) = answer.refused {
                        return Err(fail(refused.into_kind(req.idempotency)));
                    }
                    return match (answer.outcome, req.idempotency) {
                        (Outcome::Status { status, .. }, _) if (200..300).contains(&status) => {
                            Ok(Response {
                                status,
                                body: answer.body,
                            })
                        }
                        (Outcome::Status { status, .. }, _) => {
                            Err(fail(ErrorKind::Status { status, messages }))
                        }
                        (Outcome::Connect, _) | (_, Idempotency::Idempotent) => {
                            Err(fail(ErrorKind::Transport(answer.error.unwrap_or_default())))
                        }
                        (Outcome::Timeout | Outcome::Dropped, Idempotency::Unsafe) => {
                            Err(fail(ErrorKind::Unknown(answer.error.unwrap_or_default())))
                        }
                    };
                }
            }
        }
    }

    async fn attempt(
        &self,
        method: &Method,
        url: &str,
        header: &AuthHeader,
        body: Option<Bytes>,
        term: Option<std::time::Instant>,
    ) -> Answer {
        let late = Arc::new(AtomicBool::new(false));
        let mut rb = self
            .http
            .request(method.clone(), url)
            .header(ACCEPT, self.format.mime())
            .header(USER_AGENT, &self.user_agent)
            .header(header.name.clone(), header.value.clone());
        let bodyless = body.is_none();
        if let Some(b) = body {
            rb = rb.header(CONTENT_TYPE, self.format.mime());
            rb = match term {
                Some(until) => rb.body(reqwest::Body::wrap(Punctual {
                    body: Some(b),
                    until,
                    late: late.clone(),
                })),
                None => rb.body(b),
            };
        }
        // A write without a body (a PUT that sets a flag: harmless if it lands twice) is
        // checked here, as late as this side of the connection allows.
        let on_time = !bodyless || term.is_none_or(|until| std::time::Instant::now() < until);
        let sent = if on_time { Some(rb.send().await) } else { None };
        match sent {
            Some(sent) if !late.load(Ordering::SeqCst) => {
                read_answer(sent, self.max_response_bytes).await
            }
            _ => Answer {
                outcome: Outcome::Connect,
                body: Bytes::new(),
                error: None,
                refused: Some(Refusal::Late(format!("not sent: {TermRanOut}"))),
            },
        }
    }

    /// A token minted now unless one is cached: see [`crate::Client::authenticate`].
    pub async fn authenticate(&self, caller: &Caller) -> Result<(), Error> {
        self.auth_header(caller).await.map(|_| ())
    }

    async fn auth_header(&self, caller: &Caller) -> Result<AuthHeader, Error> {
        self.auth.header(|| self.mint(caller)).await
    }

    /// Mints a token. Minting has no side effect in Coupa, so failures without an answer and
    /// 5xx/429 are retried like any idempotent request.
    async fn mint(
        &self,
        caller: &Caller,
    ) -> Result<(SecretString, Duration, Option<String>), Error> {
        let url = self.auth.token_url().to_owned();
        let path = "/oauth2/token".to_owned();
        let fail = |kind| Error::new("POST", path.clone(), kind);
        let Some(tr) = self.auth.token_request() else {
            return Err(fail(ErrorKind::Invalid("no OAuth2 credentials".into())));
        };
        let mut attempt = 1;
        loop {
            // The token request counts against the instance's budget like any other: left out,
            // a pass's first burst is one request over Coupa's and meets a 429.
            let waited = self.governor.acquire().await;
            let started = Instant::now();
            let mut rb = self
                .http
                .post(&url)
                .header(ACCEPT, "application/json")
                .form(&tr.form());
            if tr.basic_auth {
                rb = rb.basic_auth(
                    tr.client_id,
                    Some(secrecy::ExposeSecret::expose_secret(tr.client_secret)),
                );
            }
            let answer = read_answer(rb.send().await, self.max_response_bytes).await;
            let status = match answer.outcome {
                Outcome::Status { status, .. } => Some(status),
                _ => None,
            };
            let decision = if answer.refused.is_some() {
                Decision::Done
            } else {
                retry::decide(
                    &self.policy,
                    Idempotency::Idempotent,
                    &answer.outcome,
                    attempt,
                    retry::jitter(),
                    SystemTime::now(),
                )
            };
            let result = match (&answer.refused, status) {
                (Some(refused), _) => Some(Err(refused.clone().into_kind(Idempotency::Idempotent))),
                (None, Some(200..=299)) => Some(read_token(&answer.body)),
                (None, Some(s)) => Some(Err(ErrorKind::Token(describe(
                    s,
                    &oauth_messages(&answer.body),
                )))),
                (None, None) => None,
            };
            self.report(
                caller,
                Attempt {
                    context: caller.context.clone(),
                    method: "POST".into(),
                    path: path.clone(),
                    attempt,
                    status,
                    duration: started.elapsed(),
                    waited,
                    // The form carries the secret: its size is reported, never its content.
                    bytes_sent: 0,
                    bytes_received: answer.body.len(),
                    error: match &result {
                        Some(Err(e)) => Some(e.to_string()),
                        _ => answer.error.clone(),
                    },
                    retry_in: match &decision {
                        Decision::Retry { after, .. } => Some(*after),
                        _ => None,
                    },
                },
            );
            match decision {
                Decision::Retry { after, .. } => {
                    tokio::time::sleep(after).await;
                    attempt += 1;
                }
                _ => {
                    return match result {
                        Some(r) => r.map_err(fail),
                        None => Err(fail(ErrorKind::Transport(answer.error.unwrap_or_default()))),
                    };
                }
            }
        }
    }
}

/// Who a request is sent for: its context, and the counter of attempts made on its behalf
/// (a pass counts its own calls through it).
#[derive(Clone, Debug, Default)]
pub(crate) struct Caller {
    pub context: Arc<CallContext>,
    pub calls: Arc<AtomicU64>,
    pub gate: Option<Arc<dyn WriteGate>>,
}

/// Asked just before each request that changes something in Coupa (any method but GET) is
/// sent, after the rate governor's wait: an `Err` (saying why) keeps it unsent, and the call
/// fails as a transport error, to be tried again later. `Ok(Some(until))` lets it go only if
/// its body starts to leave before `until` (the body itself checks, as the connection asks for
/// it); later, it is not sent and the call fails the same way. `Ok(None)`: no limit.
///
/// The connector's gate checks that its replica still holds the lease and answers with the
/// lease's term less a margin, so a replica that froze anywhere between the check and the
/// socket, for longer than that, does not write after another has taken over.
pub trait WriteGate: Send + Sync + std::fmt::Debug {
    #[allow(clippy::type_complexity)]
    fn check(
        &self,
    ) -> std::pin::Pin<
        Box<dyn Future<Output = Result<Option<std::time::Instant>, String>> + Send + '_>,
    >;
}

/// A request body that will not leave after `until`: when the connection asks for it later
/// than that, it fails (so the request is abandoned before its body is written) and raises
/// `late`. Its exact size keeps the `Content-Length` header.
struct Punctual {
    body: Option<Bytes>,
    until: std::time::Instant,
    late: Arc<AtomicBool>,
}

/// Why a [`Punctual`] body refused to leave.
#[derive(Debug)]
struct TermRanOut;

impl std::fmt::Display for TermRanOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the write gate's term ran out before the body could leave")
    }
}

impl std::error::Error for TermRanOut {}

impl http_body::Body for Punctual {
    type Data = Bytes;
    type Error = TermRanOut;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, TermRanOut>>> {
        let Some(body) = self.body.take() else {
            return std::task::Poll::Ready(None);
        };
        if std::time::Instant::now() >= self.until {
            self.late.store(true, Ordering::SeqCst);
            return std::task::Poll::Ready(Some(Err(TermRanOut)));
        }
        std::task::Poll::Ready(Some(Ok(http_body::Frame::data(body))))
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_none()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.body.as_ref().map_or(0, |b| b.len() as u64))
    }
}

impl Transport {
    fn report(&self, caller: &Caller, attempt: Attempt) {
        caller.calls.fetch_add(1, Ordering::Relaxed);
        self.observer.attempt(&attempt);
    }
}

/// Turns reqwest's result into an outcome, reading the whole body (a body that breaks off is
/// a dropped connection, not an answer) up to `limit` bytes. A success larger than that is
/// refused, told by its `Content-Length` or, when that is absent or lies, by counting while
/// reading; an error answer larger than that keeps its status and only its first `limit` bytes.
/// A certificate that does not verify is refused too.
async fn read_answer(sent: Result<reqwest::Response, reqwest::Error>, limit: usize) -> Answer {
    let mut resp = match sent {
        Ok(r) => r,
        Err(e) => {
            let error = describe_transport(&e);
            let refused = is_certificate_error(&error).then(|| {
                Refusal::Certificate(format!(
                    "TLS: the server's certificate was not accepted (certificate verification \
                     is always on): {error}"
                ))
            });
            return Answer {
                outcome: classify(&e),
                body: Bytes::new(),
                error: Some(error),
                refused,
            };
        }
    };
    let status = resp.status().as_u16();
    let success = (200..300).contains(&status);
    let retry_after = resp
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(RetryAfter::parse);
    let outcome = Outcome::Status {
        status,
        retry_after,
    };
    let too_large = |how: String| Answer {
        outcome,
        body: Bytes::new(),
        error: None,
        refused: Some(Refusal::TooLarge(format!(
            "HTTP {status}: response body {how} the limit of {limit} bytes (max_response_bytes); \
             not read"
        ))),
    };
    let declared = resp.content_length();
    if let Some(length) = declared
        && length > limit as u64
    {
        if success {
            return too_large(format!("of {length} bytes (Content-Length) exceeds"));
        }
        // An error answer's body only carries messages: its status is what counts.
        return Answer {
            outcome,
            body: Bytes::new(),
            error: None,
            refused: None,
        };
    }
    // Sized from the header, but a header alone (the body may never come) reserves at most 1 MiB.
    let reserve = declared.map_or(0, |l| l.min(1 << 20) as usize);
    let mut body = bytes::BytesMut::with_capacity(reserve);
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > limit {
                    if success {
                        return too_large("exceeds".to_owned());
                    }
                    let room = limit - body.len();
                    body.extend_from_slice(&chunk[..room]);
                    break;
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => {
                return Answer {
                    outcome: if e.is_timeout() {
                        Outcome::Timeout
                    } else {
                        Outcome::Dropped
                    },
                    body: Bytes::new(),
                    error: Some(format!(
                        "HTTP {status}, body broke off: {}",
                        describe_transport(&e)
                    )),
                    refused: None,
                };
            }
        }
    }
    Answer {
        outcome,
        body: body.freeze(),
        error: None,
        refused: None,
    }
}

/// rustls says "invalid peer certificate: UnknownIssuer", "... NotValidForName", "received
/// fatal alert: BadCertificate": a TLS failure that names the certificate.
fn is_certificate_error(description: &str) -> bool {
    description.to_ascii_lowercase().contains("certificate")
}

fn classify(e: &reqwest::Error) -> Outcome {
    if e.is_timeout() {
        Outcome::Timeout
    } else if e.is_connect() {
        Outcome::Connect
    } else {
        Outcome::Dropped
    }
}

/// reqwest's message plus its causes, which say what actually happened ("connection reset").
/// URLs carry no secrets (tokens travel in headers), so nothing needs redacting.
fn describe_transport(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        s.push_str(": ");
        s.push_str(&cause.to_string());
        source = cause.source();
    }
    s
}

fn describe(status: u16, messages: &[String]) -> String {
    if messages.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {}", messages.join("; "))
    }
}

/// Coupa's error messages from an error body, whichever format it came in (a proxy may answer
/// HTML; then there are none).
fn error_messages(format: Format, body: &[u8]) -> Vec<String> {
    let parsed = wire::parse(format, body).or_else(|_| {
        let other = match format {
            Format::Json => Format::Xml,
            Format::Xml => Format::Json,
        };
        wire::parse(other, body)
    });
    parsed.map(|v| wire::error_messages(&v)).unwrap_or_default()
}

fn oauth_messages(body: &[u8]) -> Vec<String> {
    error_messages(Format::Json, body)
}
