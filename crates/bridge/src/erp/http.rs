//! The `http` adapter (`erp.kind = "http"`): an ERP reached through its HTTP API.
//!
//! Every document is the canonical model put through the mapping ([`Mapping`]) and POSTed as
//! JSON: invoices to `invoices_url`, cancellations to `cancel_url` (`{coupa_invoice_id}`
//! replaced), Coupa Pay payments to `pay_payments_url`. Payments the ERP made are read from
//! `payments_url` a page at a time with a cursor kept in the ledger.
//!
//! # What the ERP receives
//! - `Content-Type` of the mapped document (`application/json`).
//! - The idempotency header (`erp.http.idempotency_header`, default `Idempotency-Key`): the
//!   Coupa invoice id as text for an invoice, `cancel-<id>` for a cancellation,
//!   `coupa-pay-<id>-<updated-at>` for a Coupa Pay payment. A document is sent again with the
//!   same key after a timeout or a crash: the ERP must answer the second delivery as the first
//!   (or with 409 and the document number) and post nothing twice.
//! - Authentication, per `erp.http.auth`:
//!   - `bearer`: `Authorization: Bearer <token>`;
//!   - `basic`: `Authorization: Basic base64(<username>:<password>)`;
//!   - `hmac`: the header `erp.http.hmac_header` (default `X-Signature`) is
//!     `t=<unix seconds>,v1=<hex>` where `<hex>` is the lowercase hex HMAC-SHA256, keyed with
//!     the shared secret's UTF-8 bytes, of the ASCII timestamp, a `.`, and the exact body bytes
//!     (empty for a GET): `HMAC(secret, "1767225600.{\"coupa_invoice_id\":...}")`. To verify,
//!     recompute it over the raw body as received, compare in constant time, and refuse a `t`
//!     far from the current time (the stub allows 5 minutes) so a recorded request cannot be
//!     replayed later.
//!
//! # How its answers are read
//! The document number is read from the answer's JSON by the mapping's answer path, the reasons
//! of a refusal by its reasons path. 2xx with a document number is acceptance; 202 without one
//! is "pending" (the invoice is asked for again next pass, with the same key). A 4xx with a
//! body is a permanent rejection carrying the ERP's reasons, **except** 401, 403, 404, 405,
//! 407, 408, 413 and 429: those say the setup is wrong (credentials, URL, size, rate), not the
//! invoice, and rejecting every invoice because a token expired would mark them all failed in
//! Coupa; they are transient ([`ErpError::Refused`]) so a person fixes the setup and the
//! invoices go on the next pass. 5xx, redirects, timeouts and connection errors are transient
//! ([`ErpError::Unavailable`]). Errors never carry a header, a query string or the URL's user
//! info: only the scheme, host and path of the endpoint.
//!
//! A cancellation has no rejection: 2xx is cancelled, 202 without a number pending, 404 never
//! posted, 409 already cancelled, anything else transient with the ERP's reasons. A Coupa Pay
//! payment is compared with the version the ledger records as answered (`pay:<id>` in
//! `erp_deliveries`) before anything is sent, so booking it again sends nothing. Payments are
//! read a page at a time; each page's payments are committed to the ledger before the cursor
//! moves past it, so a crash between the two reads the page again, which the ledger takes as
//! already recorded.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use hmac::{Hmac, Mac};
use reqwest::StatusCode;
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use super::deliveries::{Delivery, DeliveryState};
use super::mapping::{MapError, Mapping, Rendered};
use super::{
    BoxFuture, CancelOutcome, Erp, ErpCancel, ErpError, ErpInvoice, ErpPayPayment, ErpPayment,
    MalformedPayment, PayBooking, PayBookingChange, PaymentSync, PostOutcome, Received, SqlErp,
};
use crate::config::{HttpAuth, HttpErpConfig};
use crate::notify::webhook::reqwest_error;

/// How much of an ERP's answer is kept as a rejection reason when no reasons can be read.
const MAX_REASON: usize = 500;
/// The largest answer read; a larger one is cut (its reasons may be lost, never the process).
const MAX_ANSWER: usize = 5 * 1024 * 1024;
/// Pages of `payments_url` read by one [`Erp::receive_payments`] call: a feed that never ends
/// (a cursor that does not move) cannot hold a pass forever.
const MAX_PAGES: usize = 1_000;
/// Invoices of a page posted at once by [`Erp::post_invoices`]: a few, so a page does not
/// wait on each round trip in turn, and an ERP that limits its rate is not flooded.
const PARALLEL_POSTS: usize = 4;
/// The ledger's cursor of `payments_url`.
const PAYMENTS_CURSOR: &str = "payments";
/// How far from now an HMAC timestamp may be, for [`verify_signature`].
pub const SIGNATURE_TOLERANCE_SECS: i64 = 300;

/// The `v1` HMAC-SHA256 signature of `body` sent at `t` (unix seconds): lowercase hex of
/// `HMAC(secret, "<t>.<body>")`.
pub fn signature(secret: &[u8], t: i64, body: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        // HMAC takes keys of any length: never reached.
        return String::new();
    };
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The signature header's value: `t=<t>,v1=<signature>`.
pub fn signature_header(secret: &[u8], t: i64, body: &[u8]) -> String {
    format!("t={t},v1={}", signature(secret, t, body))
}

/// Checks a signature header against `body` the way an ERP should: `Err` says what is wrong
/// (never the expected value).
pub fn verify_signature(secret: &[u8], header: &str, body: &[u8], now: i64) -> Result<(), String> {
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.trim().parse::<i64>().ok(),
            Some(("v1", v)) => v1 = Some(v.trim()),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return Err("expected t=<unix seconds>,v1=<hex>".into());
    };
    if (now - t).abs() > SIGNATURE_TOLERANCE_SECS {
        return Err(format!(
            "timestamp {t} is more than {SIGNATURE_TOLERANCE_SECS} s away"
        ));
    }
    let given: Option<Vec<u8>> = (v1.len() % 2 == 0)
        .then(|| {
            (0..v1.len())
                .step_by(2)
                .map(|i| {
                    v1.get(i..i + 2)
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                })
                .collect()
        })
        .flatten();
    let Some(given) = given else {
        return Err("v1 is not hex".into());
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| "bad key".to_owned())?;
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&given)
        .map_err(|_| "signature mismatch".to_owned())
}

/// The configured authentication, secrets kept out of `Debug`.
enum Auth {
    None,
    Bearer(SecretString),
    Basic(String, SecretString),
    Hmac {
        header: String,
        secret: SecretString,
    },
}

/// A configured endpoint: the URL, and how errors may name it (no user info, no query).
#[derive(Clone)]
struct Endpoint {
    url: String,
    shown: String,
}

impl Endpoint {
    fn new(key: &str, url: Option<&String>) -> Result<Option<Endpoint>, ErpError> {
        let Some(url) = url.map(|u| u.trim()).filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        let shown = shown(url).ok_or_else(|| {
            ErpError::Refused(format!("erp.http.{key}: not an http:// or https:// URL"))
        })?;
        Ok(Some(Endpoint {
            url: url.to_owned(),
            shown,
        }))
    }
}

/// `scheme://host[:port]/path` of `url`, what an error may show of it.
fn shown(url: &str) -> Option<String> {
    // The placeholder would be percent-encoded: parse a plain stand-in and show it back.
    const STAND_IN: &str = "coupa-invoice-id-placeholder";
    let parsed = reqwest::Url::parse(&url.replace("{coupa_invoice_id}", STAND_IN)).ok()?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return None;
    }
    let host = parsed.host_str()?;
    let port = parsed.port().map(|p| format!(":{p}")).unwrap_or_default();
    let path = parsed.path().replace(STAND_IN, "{coupa_invoice_id}");
    Some(format!("{}://{host}{port}{path}", parsed.scheme()))
}

/// An ERP reached through its HTTP API.
pub struct HttpErp {
    client: reqwest::Client,
    mapping: Arc<Mapping>,
    ledger: Arc<SqlErp>,
    auth: Auth,
    idempotency_header: String,
    invoices: Option<Endpoint>,
    cancel: Option<Endpoint>,
    pay_payments: Option<Endpoint>,
    payments: Option<Endpoint>,
    cursor_param: String,
}

/// An answer of the ERP: its status, its body (cut at [`MAX_ANSWER`]) and the body as JSON
/// (`Null` when it is not JSON).
struct Answer {
    status: StatusCode,
    body: Vec<u8>,
    json: serde_json::Value,
}

impl Answer {
    /// The body as text, cut to [`MAX_REASON`] characters.
    fn text(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let text = text.trim();
        let mut out: String = text.chars().take(MAX_REASON).collect();
        if out.len() < text.len() {
            out.push_str("...");
        }
        out
    }

    /// The ERP's reasons: by the mapping's answer path, else the body's text; empty when the
    /// body is empty.
    fn reasons(&self, mapping: &Mapping) -> Vec<String> {
        let reasons = if self.json.is_null() {
            Vec::new()
        } else {
            mapping.answer_reasons(&self.json)
        };
        if !reasons.is_empty() {
            return reasons;
        }
        let text = self.text();
        if text.is_empty() {
            Vec::new()
        } else {
            vec![text]
        }
    }

    fn document_number(&self, mapping: &Mapping) -> Option<String> {
        if self.json.is_null() {
            return None;
        }
        mapping
            .answer_document_number(&self.json)
            .filter(|n| !n.trim().is_empty())
    }
}

/// A 4xx that says the setup is wrong rather than the document, and what to check.
fn setup_problem(status: StatusCode) -> Option<&'static str> {
    Some(match status.as_u16() {
        401 => "check the credentials (erp.http.auth, token, username/password, hmac_secret)",
        403 => "check the credentials' permissions at the ERP",
        404 => "check the URL",
        405 => "check the URL: the ERP takes no such request there",
        407 => "a proxy wants credentials: check the network setup",
        408 => "the ERP timed out reading the request",
        413 => "the document is larger than the ERP takes: check its size limit",
        429 => {
            "the ERP limits the request rate: slow down (fewer invoices per pass, or a \
                longer schedule)"
        }
        _ => return None,
    })
}

impl HttpErp {
    /// Builds the adapter; `Err` names the setting that cannot be used.
    pub fn new(
        settings: &HttpErpConfig,
        mapping: Arc<Mapping>,
        ledger: Arc<SqlErp>,
    ) -> Result<HttpErp, ErpError> {
        let missing = |key: &str| {
            ErpError::Refused(format!(
                "erp.http.{key} is required for erp.http.auth = \"{}\"",
                match settings.auth {
                    HttpAuth::None => "none",
                    HttpAuth::Bearer => "bearer",
                    HttpAuth::Basic => "basic",
                    HttpAuth::Hmac => "hmac",
                }
            ))
        };
        let auth = match settings.auth {
            HttpAuth::None => Auth::None,
            HttpAuth::Bearer => {
                Auth::Bearer(settings.token.clone().ok_or_else(|| missing("token"))?)
            }
            HttpAuth::Basic => Auth::Basic(
                settings
                    .username
                    .clone()
                    .ok_or_else(|| missing("username"))?,
                settings
                    .password
                    .clone()
                    .ok_or_else(|| missing("password"))?,
            ),
            HttpAuth::Hmac => Auth::Hmac {
                header: settings.hmac_header.clone(),
                secret: settings
                    .hmac_secret
                    .clone()
                    .ok_or_else(|| missing("hmac_secret"))?,
            },
        };
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(settings.timeout_secs.max(1)))
            .connect_timeout(Duration::from_secs(settings.timeout_secs.clamp(1, 30)))
            // A redirect is a wrong URL; following it would send the document (and the
            // credentials) somewhere nobody configured.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ErpError::Refused(format!("erp.http: setting up the HTTP client: {e}")))?;
        Ok(HttpErp {
            client,
            mapping,
            ledger,
            auth,
            idempotency_header: settings.idempotency_header.clone(),
            invoices: Endpoint::new("invoices_url", settings.invoices_url.as_ref())?,
            cancel: Endpoint::new("cancel_url", settings.cancel_url.as_ref())?,
            pay_payments: Endpoint::new("pay_payments_url", settings.pay_payments_url.as_ref())?,
            payments: Endpoint::new("payments_url", settings.payments_url.as_ref())?,
            cursor_param: settings.payments_cursor_param.clone(),
        })
    }

    /// Adds the authentication to a request whose body is `body`.
    fn authorize(&self, request: reqwest::RequestBuilder, body: &[u8]) -> reqwest::RequestBuilder {
        match &self.auth {
            Auth::None => request,
            Auth::Bearer(token) => request.header(
                reqwest::header::AUTHORIZATION,
                format!("Bearer {}", token.expose_secret()),
            ),
            Auth::Basic(user, password) => {
                let pair = format!("{user}:{}", password.expose_secret());
                request.header(
                    reqwest::header::AUTHORIZATION,
                    format!(
                        "Basic {}",
                        base64::engine::general_purpose::STANDARD.encode(pair)
                    ),
                )
            }
            Auth::Hmac { header, secret } => request.header(
                header.as_str(),
                signature_header(
                    secret.expose_secret().as_bytes(),
                    Utc::now().timestamp(),
                    body,
                ),
            ),
        }
    }

    /// POSTs `doc` to `url` with the idempotency key `key`.
    async fn post(
        &self,
        endpoint: &Endpoint,
        url: &str,
        doc: Rendered,
        key: &str,
    ) -> Result<Answer, ErpError> {
        let request = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, doc.format.content_type())
            .header(self.idempotency_header.as_str(), key);
        let request = self.authorize(request, &doc.bytes).body(doc.bytes);
        self.send(endpoint, request).await
    }

    /// Sends `request` and reads the answer; a failure to get one is [`ErpError::Unavailable`].
    async fn send(
        &self,
        endpoint: &Endpoint,
        request: reqwest::RequestBuilder,
    ) -> Result<Answer, ErpError> {
        let unavailable = |e: reqwest::Error| {
            ErpError::Unavailable(format!("{}: {}", endpoint.shown, reqwest_error(e)))
        };
        let mut response = request.send().await.map_err(unavailable)?;
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(unavailable)? {
            let room = MAX_ANSWER.saturating_sub(body.len());
            body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if body.len() >= MAX_ANSWER {
                break;
            }
        }
        let json = serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null);
        Ok(Answer { status, body, json })
    }

    /// The transient error of an answer that is neither success nor the document's fault: 5xx
    /// and the like are an outage, a redirect or a setup 4xx a refusal naming what to check.
    fn not_done(&self, endpoint: &Endpoint, answer: &Answer) -> ErpError {
        let status = answer.status;
        let code = status.as_u16();
        if status.is_server_error() {
            let text = answer.text();
            let said = if text.is_empty() {
                String::new()
            } else {
                format!(": {text}")
            };
            return ErpError::Unavailable(format!("{} answered HTTP {code}{said}", endpoint.shown));
        }
        if status.is_redirection() {
            return ErpError::Refused(format!(
                "{} answered HTTP {code} (a redirect, not followed): configure the final URL",
                endpoint.shown
            ));
        }
        if let Some(check) = setup_problem(status) {
            return ErpError::Refused(format!("{} answered HTTP {code}: {check}", endpoint.shown));
        }
        let reasons = answer.reasons(&self.mapping);
        let said = if reasons.is_empty() {
            "no reason given".to_owned()
        } else {
            reasons.join("; ")
        };
        ErpError::Refused(format!("{} answered HTTP {code}: {said}", endpoint.shown))
    }

    /// Reads the answer to an invoice (see the module doc).
    fn invoice_answer(
        &self,
        endpoint: &Endpoint,
        answer: &Answer,
    ) -> Result<PostOutcome, ErpError> {
        let status = answer.status;
        let number = answer.document_number(&self.mapping);
        if status.is_success() {
            return match number {
                Some(document_number) => Ok(PostOutcome::Accepted {
                    document_number,
                    already_posted: false,
                }),
                None if status == StatusCode::ACCEPTED => Ok(PostOutcome::Pending),
                None => Err(ErpError::Refused(format!(
                    "{} answered HTTP {} with no document number at the mapping's answer path \
                     ([answer] document_number): check the mapping",
                    endpoint.shown,
                    status.as_u16()
                ))),
            };
        }
        if status == StatusCode::CONFLICT
            && let Some(document_number) = number
        {
            return Ok(PostOutcome::Accepted {
                document_number,
                already_posted: true,
            });
        }
        if status.is_client_error() && setup_problem(status).is_none() {
            let reasons = answer.reasons(&self.mapping);
            if !reasons.is_empty() {
                return Ok(PostOutcome::Rejected { reasons });
            }
        }
        Err(self.not_done(endpoint, answer))
    }

    async fn post_one(&self, invoice: &ErpInvoice) -> Result<PostOutcome, ErpError> {
        self.post_checked(invoice).await.0
    }

    /// Posts an invoice; also whether the ERP answered at all (false after a timeout or a
    /// connection error).
    async fn post_checked(&self, invoice: &ErpInvoice) -> (Result<PostOutcome, ErpError>, bool) {
        let Some(endpoint) = self.invoices.as_ref() else {
            let why = "erp.http.invoices_url is not set: invoices cannot be posted";
            return (Err(ErpError::Refused(why.into())), true);
        };
        let doc = match self.mapping.invoice(invoice) {
            Ok(doc) => doc,
            Err(e) => return (Err(unmappable(invoice.coupa_invoice_id, &e)), true),
        };
        let key = invoice.coupa_invoice_id.to_string();
        match self.post(endpoint, &endpoint.url, doc, &key).await {
            Ok(answer) => (self.invoice_answer(endpoint, &answer), true),
            Err(e) => (Err(e), false),
        }
    }

    /// A page of invoices, [`PARALLEL_POSTS`] at a time. Once the ERP has not answered one (a
    /// timeout, a refused connection), the invoices not sent yet are not sent this pass: an
    /// ERP that is down would otherwise cost a timeout per invoice.
    async fn post_many(&self, invoices: &[ErpInvoice]) -> Vec<Result<PostOutcome, ErpError>> {
        let mut out = Vec::with_capacity(invoices.len());
        let mut silent: Option<String> = None;
        for chunk in invoices.chunks(PARALLEL_POSTS) {
            if let Some(why) = &silent {
                out.extend(
                    chunk
                        .iter()
                        .map(|_| Err(ErpError::Unavailable(why.clone()))),
                );
                continue;
            }
            let answers =
                futures_util::future::join_all(chunk.iter().map(|i| self.post_checked(i))).await;
            for (result, answered) in answers {
                if let (Err(e), false, None) = (&result, answered, &silent) {
                    silent = Some(format!("not sent: no answer to an earlier invoice ({e})"));
                }
                out.push(result);
            }
        }
        out
    }

    async fn cancel_one(&self, coupa_invoice_id: i64) -> Result<CancelOutcome, ErpError> {
        let endpoint = self.cancel.as_ref().ok_or_else(|| {
            ErpError::Refused(
                "erp.http.cancel_url is not set: voided invoices cannot be cancelled".into(),
            )
        })?;
        let doc = self
            .mapping
            .cancel(&ErpCancel { coupa_invoice_id })
            .map_err(|e| {
                ErpError::Refused(format!(
                    "the mapping cannot render the cancellation of {coupa_invoice_id}: {e}"
                ))
            })?;
        let url = endpoint
            .url
            .replace("{coupa_invoice_id}", &coupa_invoice_id.to_string());
        let key = format!("cancel-{coupa_invoice_id}");
        let answer = self.post(endpoint, &url, doc, &key).await?;
        let number = answer.document_number(&self.mapping);
        match answer.status.as_u16() {
            202 if number.is_none() => Ok(CancelOutcome::Pending),
            200..=299 => Ok(CancelOutcome::Cancelled {
                document_number: number.unwrap_or_default(),
            }),
            404 => Ok(CancelOutcome::NotPosted),
            409 => Ok(CancelOutcome::AlreadyCancelled {
                document_number: number.unwrap_or_default(),
            }),
            _ => Err(self.not_done(endpoint, &answer)),
        }
    }

    async fn book_one(&self, payment: &ErpPayPayment) -> Result<PayBooking, ErpError> {
        let document = format!("pay:{}", payment.coupa_payment_id);
        let version = version_of(payment.coupa_updated_at);
        let held = self
            .ledger
            .delivery(&document)
            .await?
            .filter(|d| d.state == DeliveryState::Answered);
        let content = content_of(payment);
        if let Some(held) = &held
            && (!newer(&version, &held.version)
                || answer_field(held, "content").as_deref() == Some(content.as_str()))
        {
            // Compare before write: this version or a newer one is booked, or one saying the
            // same (Coupa moves `updated-at` on changes the ERP does not see, such as the
            // export mark).
            return Ok(unchanged());
        }
        let endpoint = self.pay_payments.as_ref().ok_or_else(|| {
            ErpError::Refused(
                "erp.http.pay_payments_url is not set: Coupa Pay payments cannot be booked".into(),
            )
        })?;
        let doc = self.mapping.pay_payment(payment).map_err(|e| {
            ErpError::Refused(format!(
                "the mapping cannot render Coupa Pay payment {}: {e}",
                payment.coupa_payment_id
            ))
        })?;
        let key = format!("coupa-pay-{}-{version}", payment.coupa_payment_id);
        let answer = self.post(endpoint, &endpoint.url, doc, &key).await?;
        if !answer.status.is_success() {
            return Err(self.not_done(endpoint, &answer));
        }
        let now = Utc::now();
        let record = serde_json::json!({
            "status": payment.status,
            "content": content,
            "http_status": answer.status.as_u16(),
            "document_number": answer.document_number(&self.mapping),
        });
        self.ledger
            .put_delivery(&Delivery {
                version,
                answer: Some(record.to_string()),
                sent_at: Some(now),
                answered_at: Some(now),
                ..Delivery::new(document, DeliveryState::Answered)
            })
            .await?;
        let change = match held {
            None => PayBookingChange::Inserted,
            Some(held) => PayBookingChange::Updated {
                previous_status: answer_field(&held, "status").unwrap_or_default(),
            },
        };
        Ok(PayBooking {
            change,
            ..unchanged()
        })
    }

    async fn problems(&self, ids: &[i64]) -> Result<HashMap<i64, Vec<String>>, ErpError> {
        let documents: Vec<String> = ids.iter().map(|id| format!("pay:{id}")).collect();
        let held = self.ledger.deliveries(&documents).await?;
        Ok(ids
            .iter()
            .filter(|id| {
                held.get(&format!("pay:{id}"))
                    .is_some_and(|d| d.state == DeliveryState::Answered)
            })
            .map(|id| (*id, Vec::new()))
            .collect())
    }

    async fn receive(&self) -> Result<Received, ErpError> {
        let Some(endpoint) = &self.payments else {
            return Ok(Received::default());
        };
        let mut received = Received::default();
        let mut cursor = self.ledger.cursor(PAYMENTS_CURSOR).await?;
        for _ in 0..MAX_PAGES {
            let mut request = self.client.get(&endpoint.url);
            if let Some(c) = &cursor {
                request = request.query(&[(self.cursor_param.as_str(), c.as_str())]);
            }
            let answer = self.send(endpoint, self.authorize(request, b"")).await?;
            if !answer.status.is_success() {
                return Err(self.not_done(endpoint, &answer));
            }
            let source = format!(
                "payments_url page {}",
                cursor.as_deref().unwrap_or("(start)")
            );
            let (records, next) = self
                .mapping
                .read_payments_page(&answer.body, &source)
                .map_err(|why| {
                    ErpError::Refused(if why.starts_with(&source) {
                        why
                    } else {
                        format!("{source}: {why}")
                    })
                })?;
            if records.is_empty() {
                break;
            }
            let mut good = Vec::with_capacity(records.len());
            let mut at = Vec::with_capacity(records.len());
            for (i, record) in records.into_iter().enumerate() {
                match record {
                    Ok(p) => {
                        good.push(p);
                        at.push(i);
                    }
                    // The mapping names the source and the record; said here when not.
                    Err(why) if why.starts_with(&source) => received.refused.push(why),
                    Err(why) => received.refused.push(format!("{source}, index {i}: {why}")),
                }
            }
            let accepted = self.ledger.accept_payments(&good).await?;
            for (i, a) in at.iter().zip(&accepted) {
                if a.is_new() {
                    received.new += 1;
                }
                if let Some(why) = a.conflict() {
                    received.refused.push(format!("{source}, index {i}: {why}"));
                }
            }
            // Only now that the page's payments are committed: a crash before this re-reads
            // the page, which accept_payments takes again as already recorded.
            match next {
                Some(next) if cursor.as_deref() != Some(next.as_str()) => {
                    self.ledger.set_cursor(PAYMENTS_CURSOR, &next).await?;
                    cursor = Some(next);
                }
                _ => break,
            }
        }
        Ok(received)
    }
}

/// A document the mapping cannot render (a value its map lacks) is the setup's problem, as in
/// the files adapter: nothing is sent, the invoice waits, and the reason names the ERP field
/// and mapping line; once the mapping is fixed, the next pass sends it.
fn unmappable(coupa_invoice_id: i64, e: &MapError) -> ErpError {
    ErpError::Refused(format!(
        "the mapping cannot render invoice {coupa_invoice_id}: {e}"
    ))
}

/// A text field of the answer JSON a delivery keeps.
fn answer_field(d: &Delivery, field: &str) -> Option<String> {
    let answer: serde_json::Value = serde_json::from_str(d.answer.as_deref()?).ok()?;
    answer.get(field)?.as_str().map(str::to_owned)
}

/// What a Coupa Pay payment says, `coupa_updated_at` aside: the hex SHA-256 of its canonical
/// JSON without it.
fn content_of(payment: &ErpPayPayment) -> String {
    use sha2::Digest;
    let mut value = serde_json::to_value(payment).unwrap_or_default();
    if let Some(o) = value.as_object_mut() {
        o.remove("coupa_updated_at");
    }
    Sha256::digest(value.to_string().as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A Coupa Pay payment's version: its Coupa `updated-at`, RFC 3339 UTC.
fn version_of(updated_at: DateTime<Utc>) -> String {
    updated_at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Whether version `this` is later than the held version `held` (a held version that cannot
/// be read is taken as older, so the payment is booked again rather than never).
fn newer(this: &str, held: &str) -> bool {
    match (
        DateTime::parse_from_rfc3339(this),
        DateTime::parse_from_rfc3339(held),
    ) {
        (Ok(a), Ok(b)) => a > b,
        _ => this != held,
    }
}

fn unchanged() -> PayBooking {
    PayBooking {
        change: PayBookingChange::Unchanged,
        unapplied: Vec::new(),
        paid: Vec::new(),
        reopened: Vec::new(),
    }
}

impl Erp for HttpErp {
    fn post_invoice<'a>(
        &'a self,
        invoice: &'a ErpInvoice,
    ) -> BoxFuture<'a, Result<PostOutcome, ErpError>> {
        Box::pin(self.post_one(invoice))
    }

    fn post_invoices<'a>(
        &'a self,
        invoices: &'a [ErpInvoice],
    ) -> BoxFuture<'a, Vec<Result<PostOutcome, ErpError>>> {
        Box::pin(self.post_many(invoices))
    }

    fn cancel_invoice<'a>(
        &'a self,
        coupa_invoice_id: i64,
    ) -> BoxFuture<'a, Result<CancelOutcome, ErpError>> {
        Box::pin(self.cancel_one(coupa_invoice_id))
    }

    fn receive_payments(&self) -> BoxFuture<'_, Result<Received, ErpError>> {
        Box::pin(self.receive())
    }

    fn pending_payments(
        &self,
        after_id: i64,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<Result<ErpPayment, MalformedPayment>>, ErpError>> {
        self.ledger.pending_payments(after_id, limit)
    }

    fn settle_payments<'a>(
        &'a self,
        outcomes: &'a [(i64, PaymentSync)],
    ) -> BoxFuture<'a, Result<(), ErpError>> {
        self.ledger.settle_payments(outcomes)
    }

    fn book_pay_payment<'a>(
        &'a self,
        payment: &'a ErpPayPayment,
    ) -> BoxFuture<'a, Result<PayBooking, ErpError>> {
        Box::pin(self.book_one(payment))
    }

    fn pay_problems<'a>(
        &'a self,
        coupa_payment_ids: &'a [i64],
    ) -> BoxFuture<'a, Result<HashMap<i64, Vec<String>>, ErpError>> {
        Box::pin(self.problems(coupa_payment_ids))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_verifies_and_a_changed_body_or_old_time_does_not() {
        let secret = b"s3cret";
        let header = signature_header(secret, 1_700_000_000, b"{\"a\":1}");
        assert!(header.starts_with("t=1700000000,v1="));
        assert_eq!(header.len(), "t=1700000000,v1=".len() + 64);
        verify_signature(secret, &header, b"{\"a\":1}", 1_700_000_010).expect("valid");
        assert!(verify_signature(secret, &header, b"{\"a\":2}", 1_700_000_010).is_err());
        assert!(verify_signature(b"other", &header, b"{\"a\":1}", 1_700_000_010).is_err());
        assert!(verify_signature(secret, &header, b"{\"a\":1}", 1_700_001_000).is_err());
        assert!(verify_signature(secret, "v1=00", b"", 0).is_err());
    }

    #[test]
    fn the_signature_is_hmac_sha256_of_time_dot_body() {
        // What an ERP team computes: one HMAC over "<t>.<body>".
        let mut mac = Hmac::<Sha256>::new_from_slice(b"key").expect("key");
        mac.update(b"42.body");
        let direct: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(signature(b"key", 42, b"body"), direct);
    }

    #[test]
    fn errors_show_no_user_info_nor_query() {
        assert_eq!(
            shown("https://user:pw@erp.example.com:8443/api/invoices?token=abc").as_deref(),
            Some("https://erp.example.com:8443/api/invoices")
        );
        assert_eq!(
            shown("http://erp/invoices/{coupa_invoice_id}/cancel").as_deref(),
            Some("http://erp/invoices/{coupa_invoice_id}/cancel")
        );
        assert_eq!(shown("ftp://erp/x"), None);
    }

    #[test]
    fn a_later_version_is_newer_the_same_or_older_is_not() {
        assert!(newer("2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z"));
        assert!(!newer("2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"));
        assert!(!newer("2025-12-31T00:00:00Z", "2026-01-01T00:00:00Z"));
        assert!(newer("2026-01-01T00:00:00Z", "garbage"));
    }

    #[tokio::test]
    async fn a_value_the_mapping_cannot_map_sends_nothing_and_waits() {
        let mapping = Mapping::parse(
            "[invoice.fields]\nNo = \"invoice_number\"\n\
             Cur = { from = \"currency\", map = { EUR = \"978\" } }\n",
            "erp-mapping.toml",
        )
        .expect("valid mapping");
        let ledger = Arc::new(SqlErp::connect("sqlite::memory:").await.expect("ledger"));
        // Nothing listens here: a request sent would be "unavailable", not "refused".
        let settings = HttpErpConfig {
            invoices_url: Some("http://127.0.0.1:9/invoices".into()),
            ..HttpErpConfig::default()
        };
        let erp = HttpErp::new(&settings, Arc::new(mapping), ledger).expect("adapter");
        let invoice = ErpInvoice {
            coupa_invoice_id: 7,
            invoice_number: "INV-7".into(),
            coupa_supplier_id: None,
            supplier_number: None,
            supplier_name: None,
            invoice_date: chrono::NaiveDate::from_ymd_opt(2026, 11, 2).expect("date"),
            currency: "USD".into(),
            total: rust_decimal::Decimal::new(1000, 2),
            lines: Vec::new(),
        };
        match erp.post_invoice(&invoice).await {
            Err(ErpError::Refused(why)) => {
                assert!(why.contains("Cur (erp-mapping.toml:3)"), "{why}");
                assert!(why.contains("USD"), "{why}");
            }
            other => panic!("expected a refusal naming the mapping line, got {other:?}"),
        }
    }
}
