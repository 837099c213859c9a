//! Credentials and the token cache.
//!
//! OAuth2 client credentials is the only grant Coupa supports for integrations; the token lives
//! 24 hours and Coupa advises minting a new one after 20. One cache is shared by every task of
//! a client: readers take the current token without waiting, and when it nears expiry exactly
//! one task mints the next while the others wait for it (no stampede on the token endpoint).
//! A 401 invalidates the token it was sent with, not a newer one another task already minted.
//!
//! The legacy `X-COUPA-API-KEY` header still works on some instances; it is supported with a
//! warning because Coupa has deprecated API keys.

use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderName, HeaderValue};
use secrecy::{ExposeSecret, SecretString};
use tokio::time::Instant;

use crate::error::{Error, ErrorKind};

/// How the client proves who it is.
#[derive(Clone)]
pub enum Credentials {
    /// OAuth2 client credentials (`POST /oauth2/token`).
    OAuth {
        client_id: String,
        client_secret: SecretString,
        /// Space-joined into the `scope` parameter; empty asks for every scope of the client.
        scopes: Vec<String>,
        /// Send the id and secret as HTTP Basic instead of in the form body.
        basic_auth: bool,
    },
    /// The deprecated `X-COUPA-API-KEY`.
    ApiKey(SecretString),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::OAuth {
                client_id,
                scopes,
                basic_auth,
                ..
            } => f
                .debug_struct("OAuth")
                .field("client_id", client_id)
                .field("client_secret", &"[redacted]")
                .field("scopes", scopes)
                .field("basic_auth", basic_auth)
                .finish(),
            Credentials::ApiKey(_) => f.write_str("ApiKey([redacted])"),
        }
    }
}

/// The scopes the three flows need, per Coupa's R39 scope list.
pub const FLOW_SCOPES: &[&str] = &[
    "core.invoice.read",
    "core.invoice.write",
    "core.integration.read",
    "core.integration.write",
    "core.pay.payments.read",
    "core.pay.payments.write",
    "core.common.read",
];

/// A minted token.
struct Token {
    value: SecretString,
    /// When to mint the next one (before the real expiry).
    refresh_at: Instant,
    /// Increases with each mint, so a 401 invalidates only the token it was sent with.
    generation: u64,
}

/// The header to send, and which token generation it carries.
pub(crate) struct AuthHeader {
    pub name: HeaderName,
    pub value: HeaderValue,
    pub generation: u64,
}

/// The answer of the token endpoint.
#[derive(serde::Deserialize)]
struct TokenResponse {
    access_token: SecretString,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
    #[serde(default)]
    scope: Option<String>,
}

/// Lifetime assumed when the token endpoint does not say.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

/// When to refresh: a sixth of the lifetime before expiry (Coupa's "regenerate after 20 of 24
/// hours"), at least a minute before, but never before half the lifetime has passed.
pub(crate) fn refresh_after(lifetime: Duration) -> Duration {
    let margin = (lifetime / 6)
        .max(Duration::from_secs(60))
        .min(lifetime / 2);
    lifetime - margin
}

pub(crate) struct Auth {
    credentials: Credentials,
    token_url: String,
    current: parking_lot::RwLock<Option<Arc<Token>>>,
    /// Held while minting, so only one mint is in flight.
    minting: tokio::sync::Mutex<()>,
    generation: parking_lot::Mutex<u64>,
    granted: parking_lot::RwLock<Option<Vec<String>>>,
}

impl Auth {
    pub fn new(credentials: Credentials, base_url: &str) -> Self {
        if matches!(credentials, Credentials::ApiKey(_)) {
            tracing::warn!(
                "using a legacy Coupa API key (X-COUPA-API-KEY): Coupa has deprecated API keys in \
                 favour of OAuth2 client credentials; create an OAuth2 client under Setup > \
                 Integrations > OAuth2/OpenID Connect Clients and revoke the key"
            );
        }
        Auth {
            credentials,
            token_url: format!("{base_url}/oauth2/token"),
            current: parking_lot::RwLock::new(None),
            minting: tokio::sync::Mutex::new(()),
            generation: parking_lot::Mutex::new(0),
            granted: parking_lot::RwLock::new(None),
        }
    }

    pub fn is_oauth(&self) -> bool {
        matches!(self.credentials, Credentials::OAuth { .. })
    }

    /// Scopes the token endpoint said it granted, when it said.
    pub fn granted_scopes(&self) -> Option<Vec<String>> {
        self.granted.read().clone()
    }

    fn fresh(&self) -> Option<Arc<Token>> {
        let cur = self.current.read();
        cur.as_ref()
            .filter(|t| Instant::now() < t.refresh_at)
            .cloned()
    }

    /// The header for the next request, minting a token first when needed.
    pub async fn header<F, Fut>(&self, mint: F) -> Result<AuthHeader, Error>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<(SecretString, Duration, Option<String>), Error>>,
    {
        let client_id = match &self.credentials {
            Credentials::ApiKey(key) => {
                return Ok(AuthHeader {
                    name: HeaderName::from_static("x-coupa-api-key"),
                    value: sensitive(key.expose_secret())?,
                    generation: 0,
                });
            }
            Credentials::OAuth { client_id, .. } => client_id,
        };
        let token = match self.fresh() {
            Some(t) => t,
            None => {
                let _guard = self.minting.lock().await;
                // Another task may have minted while this one waited.
                match self.fresh() {
                    Some(t) => t,
                    None => {
                        let (value, lifetime, scope) = mint().await?;
                        let generation = {
                            let mut g = self.generation.lock();
                            *g += 1;
                            *g
                        };
                        if let Some(scope) = scope {
                            *self.granted.write() =
                                Some(scope.split_whitespace().map(str::to_owned).collect());
                        }
                        tracing::debug!(client_id = %client_id, lifetime_s = lifetime.as_secs(), "minted a Coupa token");
                        let token = Arc::new(Token {
                            value,
                            refresh_at: Instant::now() + refresh_after(lifetime),
                            generation,
                        });
                        *self.current.write() = Some(token.clone());
                        token
                    }
                }
            }
        };
        Ok(AuthHeader {
            name: reqwest::header::AUTHORIZATION,
            value: sensitive(&format!("Bearer {}", token.value.expose_secret()))?,
            generation: token.generation,
        })
    }

    /// Forgets the token of `generation` after Coupa refused it; a newer token stays.
    pub fn invalidate(&self, generation: u64) {
        let mut cur = self.current.write();
        if cur.as_ref().is_some_and(|t| t.generation == generation) {
            *cur = None;
        }
    }

    /// The form fields and optional Basic credentials of a token request.
    pub fn token_url(&self) -> &str {
        &self.token_url
    }

    pub(crate) fn token_request(&self) -> Option<TokenRequest<'_>> {
        match &self.credentials {
            Credentials::OAuth {
                client_id,
                client_secret,
                scopes,
                basic_auth,
            } => Some(TokenRequest {
                client_id,
                client_secret,
                scope: scopes.join(" "),
                basic_auth: *basic_auth,
            }),
            Credentials::ApiKey(_) => None,
        }
    }
}

pub(crate) struct TokenRequest<'a> {
    pub client_id: &'a str,
    pub client_secret: &'a SecretString,
    pub scope: String,
    pub basic_auth: bool,
}

impl TokenRequest<'_> {
    /// The form body. The secret is in it, so the body is never logged.
    pub fn form(&self) -> Vec<(&'static str, String)> {
        let mut form = vec![("grant_type", "client_credentials".to_owned())];
        if !self.basic_auth {
            form.push(("client_id", self.client_id.to_owned()));
            form.push((
                "client_secret",
                self.client_secret.expose_secret().to_owned(),
            ));
        }
        if !self.scope.is_empty() {
            form.push(("scope", self.scope.clone()));
        }
        form
    }
}

/// Reads a token endpoint answer: the token, its lifetime, and the granted scopes.
pub(crate) fn read_token(
    body: &[u8],
) -> Result<(SecretString, Duration, Option<String>), ErrorKind> {
    let t: TokenResponse = serde_json::from_slice(body)
        .map_err(|e| ErrorKind::Token(format!("unreadable token response: {e}")))?;
    if t.access_token.expose_secret().is_empty() {
        return Err(ErrorKind::Token(
            "token response has an empty access_token".into(),
        ));
    }
    let lifetime = t
        .expires_in
        .and_then(|v| match v {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => s.trim().parse().ok(),
            _ => None,
        })
        .filter(|s| *s > 0)
        .map_or(DEFAULT_LIFETIME, Duration::from_secs);
    Ok((t.access_token, lifetime, t.scope))
}

fn sensitive(s: &str) -> Result<HeaderValue, Error> {
    let mut v = HeaderValue::from_str(s).map_err(|_| {
        Error::new(
            "",
            "",
            ErrorKind::Invalid("credential contains characters not allowed in a header".into()),
        )
    })?;
    v.set_sensitive(true);
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_comes_early_but_not_too_early() {
        // Coupa's 24 h token: refresh after 20 h.
        let day = Duration::from_secs(86_399);
        assert_eq!(refresh_after(day), day - day / 6);
        assert_eq!(refresh_after(day).as_secs(), 71_999);
        // An hour: a minute's margin is smaller than a sixth, so a sixth.
        assert_eq!(
            refresh_after(Duration::from_secs(3600)),
            Duration::from_secs(3000)
        );
        // Ten seconds: at least a minute would be all of it; half is the floor.
        assert_eq!(
            refresh_after(Duration::from_secs(10)),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn token_response_lifetime_accepts_numbers_and_strings_and_defaults() {
        let (t, life, scope) =
            read_token(br#"{"access_token":"abc","expires_in":86399,"scope":"core.invoice.read"}"#)
                .expect("valid");
        assert_eq!(t.expose_secret(), "abc");
        assert_eq!(life, Duration::from_secs(86_399));
        assert_eq!(scope.as_deref(), Some("core.invoice.read"));
        let (_, life, _) =
            read_token(br#"{"access_token":"abc","expires_in":"120"}"#).expect("valid");
        assert_eq!(life, Duration::from_secs(120));
        let (_, life, _) = read_token(br#"{"access_token":"abc"}"#).expect("valid");
        assert_eq!(life, DEFAULT_LIFETIME);
        assert!(read_token(br#"{"access_token":""}"#).is_err());
        assert!(read_token(b"<html>").is_err());
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let c = Credentials::OAuth {
            client_id: "bridge".into(),
            client_secret: SecretString::from("s3cr3t-value"),
            scopes: vec![],
            basic_auth: false,
        };
        let text = format!("{c:?}");
        assert!(
            text.contains("bridge") && !text.contains("s3cr3t-value"),
            "{text}"
        );
        let k = format!("{:?}", Credentials::ApiKey(SecretString::from("k3y-value")));
        assert!(!k.contains("k3y-value"), "{k}");
    }
}
