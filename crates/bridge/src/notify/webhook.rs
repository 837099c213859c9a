//! The webhook channel: a JSON POST whose `text` a Slack or Teams incoming webhook shows as is,
//! with the other fields for receivers that route on them; signed with HMAC-SHA256 over the
//! exact body bytes when a secret is set, so the receiver can tell it came from us.
//!
//! A webhook URL often is itself a credential (Slack's carry a token in the path), so errors
//! name only its host.

use std::time::Duration;

use hmac::{Hmac, Mac};
use secrecy::{ExposeSecret, SecretString};
use sha2::Sha256;

use super::message::{Message, machine_time};
use crate::config::WebhookConfig;

/// The signature header: `sha256=<lowercase hex>`.
pub const SIGNATURE_HEADER: &str = "X-Coupa-Bridge-Signature";
/// How much of a refusing receiver's answer goes into the error.
const MAX_ERROR_BODY: usize = 200;

/// Sends messages to a webhook.
#[derive(Clone)]
pub struct WebhookChannel {
    client: Result<reqwest::Client, String>,
    url: String,
    /// The URL's host, the only part of it that may appear in messages.
    host: String,
    secret: Option<SecretString>,
}

impl std::fmt::Debug for WebhookChannel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookChannel")
            .field("host", &self.host)
            .field("signed", &self.secret.is_some())
            .finish_non_exhaustive()
    }
}

impl WebhookChannel {
    /// The channel `config` describes, or `None` when the webhook is off (no URL).
    pub fn new(config: &WebhookConfig, timeout: Duration) -> Option<WebhookChannel> {
        let url = config.url.as_deref()?.trim().to_owned();
        let host = reqwest::Url::parse(&url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
            .unwrap_or_else(|| "(unparsable URL)".to_owned());
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| format!("webhook to {host}: setting up the HTTP client: {e}"));
        Some(WebhookChannel {
            client,
            url,
            host,
            secret: config.secret.clone(),
        })
    }

    /// Where messages go, for errors: `webhook to host` (never the whole URL).
    pub fn describe(&self) -> String {
        format!("webhook to {}", self.host)
    }

    /// POSTs `message`; a non-2xx answer is an error.
    pub async fn send(&self, message: &Message) -> Result<(), String> {
        let client = self.client.as_ref().map_err(Clone::clone)?;
        let body = payload(message);
        let mut request = client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json");
        if let Some(secret) = &self.secret {
            request = request.header(SIGNATURE_HEADER, signature(secret, &body));
        }
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|e| format!("webhook to {}: {}", self.host, reqwest_error(e)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let answer = response.text().await.unwrap_or_default();
        let mut answer: String = answer.trim().chars().take(MAX_ERROR_BODY).collect();
        if !answer.is_empty() {
            answer.insert_str(0, ": ");
        }
        Err(format!(
            "webhook to {} answered HTTP {}{answer}",
            self.host,
            status.as_u16()
        ))
    }
}

/// The JSON body, as bytes: the signature covers exactly these.
pub fn payload(message: &Message) -> Vec<u8> {
    let value = serde_json::json!({
        "text": slack_escape(&message.text),
        "kind": message.kind.as_str(),
        "flow": message.flow.as_str(),
        "count": message.count,
        "since": machine_time(message.since),
        "detail": message.detail,
        "dashboard_url": message.dashboard_url,
    });
    value.to_string().into_bytes()
}

/// Slack reads `<...>` as a link or mention and `&` as an entity in `text`: error texts
/// (`<errors>`, `a & b`) must come through as written.
fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `sha256=` and the lowercase hex HMAC-SHA256 of `body` under `secret`.
pub fn signature(secret: &SecretString, body: &[u8]) -> String {
    // HMAC takes keys of any length, so this never fails; an empty MAC would still be refused.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.expose_secret().as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return "sha256=".to_owned(),
    };
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

/// The error and its causes, without the URL reqwest puts in its message (the ERP's HTTP
/// adapter words its errors the same way).
pub(crate) fn reqwest_error(e: reqwest::Error) -> String {
    let timeout = e.is_timeout();
    let e = e.without_url();
    let mut out = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    if timeout && !out.contains("timed out") {
        out.push_str(" (timed out)");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_a_known_vector() {
        // RFC 4231 test case 2.
        let secret = SecretString::from("Jefe");
        assert_eq!(
            signature(&secret, b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn text_is_escaped_for_slack_and_other_fields_are_not() {
        let message = Message {
            kind: super::super::message::MessageKind::Problem,
            flow: crate::flows::FlowName::Invoices,
            subject: "s".into(),
            body: "b".into(),
            text: "HTTP 400: <errors> a & b".into(),
            count: 2,
            since: chrono::DateTime::<chrono::Utc>::UNIX_EPOCH,
            detail: "<errors>".into(),
            dashboard_url: None,
            incident: None,
        };
        let json: serde_json::Value = serde_json::from_slice(&payload(&message)).expect("JSON");
        assert_eq!(json["text"], "HTTP 400: &lt;errors&gt; a &amp; b");
        assert_eq!(json["detail"], "<errors>");
        assert_eq!(json["since"], "1970-01-01T00:00:00Z");
        assert_eq!(json["dashboard_url"], serde_json::Value::Null);
        assert_eq!(json["kind"], "problem");
    }

    #[test]
    fn errors_name_the_host_not_the_url() {
        let channel = WebhookChannel::new(
            &WebhookConfig {
                url: Some("https://hooks.example.com/services/T0/B0/tok3n".into()),
                secret: None,
            },
            Duration::from_secs(1),
        )
        .expect("configured");
        assert_eq!(channel.host, "hooks.example.com");
        assert!(!format!("{channel:?}").contains("tok3n"));
        assert!(WebhookChannel::new(&WebhookConfig::default(), Duration::from_secs(1)).is_none());
    }
}
