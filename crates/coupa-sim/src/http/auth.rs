//! OAuth2 client credentials, scopes and the legacy API key.
//!
//! - `POST /oauth2/token` with `grant_type=client_credentials`, the client's id and secret in
//!   the form body or an HTTP Basic header, and space-separated `scope`s. Without `scope` the
//!   client gets every scope it is allowed (Coupa's clients are set up with their scopes).
//! - Answers `access_token`, `token_type` ("bearer"), `expires_in` (86399 for Coupa's 24 hours:
//!   the lifetime less one second, as Coupa prints it) and the granted `scope`.
//! - Bad client credentials are a 400 `invalid_client` ("Coupa returns invalid_client on a 400
//!   regardless of cause", coupa-api.md section 3).
//! - Every `/api` request needs `Authorization: Bearer <token>` with the resource's scope:
//!   no or unknown or expired token is 401, a missing scope 403, each with an RFC 6750
//!   `WWW-Authenticate` header saying which. `X-COUPA-API-KEY` works only when the simulator was
//!   started with a key, and then grants every scope.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};

use super::format::{ApiError, Format};
use crate::SimState;
use crate::store::Resource;

/// Issued access tokens.
#[derive(Debug, Default)]
pub struct Tokens {
    grants: parking_lot::Mutex<HashMap<String, Grant>>,
}

#[derive(Debug, Clone)]
struct Grant {
    scopes: Vec<String>,
    expires_at: Instant,
}

/// Why a token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenProblem {
    Unknown,
    Expired,
}

impl Tokens {
    /// Issues a token for `scopes`, valid for `ttl`.
    pub fn mint(&self, scopes: Vec<String>, ttl: Duration) -> String {
        let mut bytes = [0u8; 48];
        // A simulator token needs to be unguessable enough for tests on one machine; when the
        // OS generator is unavailable the clock still makes tokens unique.
        if getrandom::fill(&mut bytes).is_err() {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or_default();
            bytes[..16].copy_from_slice(&nanos.to_le_bytes());
        }
        // Shaped like the JWTs Coupa issues: three base64url parts.
        let token = format!(
            "eyJhbGciOiJSUzI1NiJ9.{}.{}",
            URL_SAFE_NO_PAD.encode(&bytes[..24]),
            URL_SAFE_NO_PAD.encode(&bytes[24..])
        );
        let mut grants = self.grants.lock();
        let now = Instant::now();
        grants.retain(|_, g| g.expires_at > now);
        grants.insert(
            token.clone(),
            Grant {
                scopes,
                expires_at: now + ttl,
            },
        );
        token
    }

    /// The scopes of a valid token.
    pub fn check(&self, token: &str) -> Result<Vec<String>, TokenProblem> {
        let grants = self.grants.lock();
        let grant = grants.get(token).ok_or(TokenProblem::Unknown)?;
        if grant.expires_at <= Instant::now() {
            return Err(TokenProblem::Expired);
        }
        Ok(grant.scopes.clone())
    }

    /// Every token issued and not yet purged, so tests can check none leaks into a report.
    pub fn issued(&self) -> Vec<String> {
        self.grants.lock().keys().cloned().collect()
    }

    /// Expires every issued token now (fault injection: "the token expired mid-run").
    pub fn expire_all(&self) {
        let now = Instant::now();
        for g in self.grants.lock().values_mut() {
            g.expires_at = now;
        }
    }
}

fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    let body = serde_json::json!({ "error": error, "error_description": description });
    let mut resp = (status, serde_json::to_vec(&body).unwrap_or_default()).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp
}

/// `POST /oauth2/token`.
pub async fn token(
    State(state): State<Arc<SimState>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let form: HashMap<String, String> = crate::query::params(&body).into_iter().collect();
    if form.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            "grant_type must be client_credentials",
        );
    }
    let (id, secret) = match basic_credentials(&headers) {
        Some(pair) => pair,
        None => (
            form.get("client_id").cloned().unwrap_or_default(),
            form.get("client_secret").cloned().unwrap_or_default(),
        ),
    };
    let Some(client) = state
        .config
        .clients
        .iter()
        .find(|c| c.id == id && c.secret == secret)
    else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_client",
            "Client authentication failed",
        );
    };
    let scopes: Vec<String> = match form.get("scope").map(|s| s.trim()) {
        None | Some("") => client.scopes.clone(),
        Some(requested) => {
            let requested: Vec<String> = requested.split_whitespace().map(str::to_owned).collect();
            if let Some(bad) = requested.iter().find(|s| !client.scopes.contains(s)) {
                return oauth_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_scope",
                    &format!("The scope {bad} is not granted to this client"),
                );
            }
            requested
        }
    };
    let ttl = state.config.token_ttl;
    let access_token = state.tokens.mint(scopes.clone(), ttl);
    let json = serde_json::json!({
        "access_token": access_token,
        "token_type": "bearer",
        "expires_in": ttl.as_secs().saturating_sub(1),
        "scope": scopes.join(" "),
    });
    let mut resp = (
        StatusCode::OK,
        serde_json::to_vec(&json).unwrap_or_default(),
    )
        .into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    let id = percent_encoding::percent_decode_str(id)
        .decode_utf8()
        .ok()?;
    let secret = percent_encoding::percent_decode_str(secret)
        .decode_utf8()
        .ok()?;
    Some((id.into_owned(), secret.into_owned()))
}

/// The resource an `/api/...` path addresses.
pub fn resource_of(path: &str) -> Option<Resource> {
    let rest = path.strip_prefix("/api/")?;
    Resource::ALL
        .into_iter()
        .filter(|r| rest == r.path() || rest.starts_with(&format!("{}/", r.path())))
        .max_by_key(|r| r.path().len())
}

/// The scope a request needs: reads need the resource's read scope, everything else its write
/// scope.
pub fn required_scope(method: &Method, resource: Resource) -> &'static str {
    if method == Method::GET || method == Method::HEAD {
        resource.read_scope()
    } else {
        resource.write_scope()
    }
}

/// Middleware on `/api`: authenticates the request and checks its scope.
pub async fn require(State(state): State<Arc<SimState>>, req: Request, next: Next) -> Response {
    let format = Format::of_accept(req.headers());
    let Some(resource) = resource_of(req.uri().path()) else {
        return next.run(req).await;
    };
    let needed = required_scope(req.method(), resource);
    if let Some(key) = req.headers().get("x-coupa-api-key") {
        let ok = state
            .config
            .api_key
            .as_deref()
            .is_some_and(|k| key.as_bytes() == k.as_bytes());
        if ok {
            return next.run(req).await;
        }
        return unauthorized(format, "invalid_token", "The API key is not valid");
    }
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, t)| t.trim().to_owned());
    let Some(token) = bearer else {
        return unauthorized(format, "invalid_request", "An access token is required");
    };
    match state.tokens.check(&token) {
        Err(TokenProblem::Unknown) => {
            unauthorized(format, "invalid_token", "The access token is not valid")
        }
        Err(TokenProblem::Expired) => {
            unauthorized(format, "invalid_token", "The access token expired")
        }
        Ok(scopes) if !scopes.iter().any(|s| s == needed) => {
            let challenge = format!("Bearer error=\"insufficient_scope\", scope=\"{needed}\"");
            let mut e = ApiError::new(
                StatusCode::FORBIDDEN,
                format,
                format!("The access token does not grant the scope {needed}"),
            );
            if let Ok(v) = HeaderValue::from_str(&challenge) {
                e = e.with_header(header::WWW_AUTHENTICATE, v);
            }
            e.into_response()
        }
        Ok(_) => next.run(req).await,
    }
}

fn unauthorized(format: Format, error: &str, message: &str) -> Response {
    let challenge = format!("Bearer error=\"{error}\", error_description=\"{message}\"");
    let mut e = ApiError::new(StatusCode::UNAUTHORIZED, format, message);
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        e = e.with_header(header::WWW_AUTHENTICATE, v);
    }
    e.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_map_to_resources_and_scopes() {
        assert_eq!(resource_of("/api/invoices/5"), Some(Resource::Invoices));
        assert_eq!(
            resource_of("/api/coupa_pay/payments/5/export"),
            Some(Resource::PayPayments)
        );
        assert_eq!(
            resource_of("/api/integration_history_records/create_alert"),
            Some(Resource::HistoryRecords)
        );
        assert_eq!(resource_of("/api/invoicesx"), None);
        assert_eq!(
            required_scope(&Method::GET, Resource::Invoices),
            "core.invoice.read"
        );
        assert_eq!(
            required_scope(&Method::PUT, Resource::Invoices),
            "core.invoice.write"
        );
        assert_eq!(
            required_scope(&Method::GET, Resource::DataFileSources),
            "core.common.read"
        );
    }

    #[test]
    fn tokens_expire() {
        let t = Tokens::default();
        let live = t.mint(vec!["a".into()], Duration::from_secs(60));
        assert_eq!(t.check(&live), Ok(vec!["a".to_owned()]));
        assert_eq!(t.check("nope"), Err(TokenProblem::Unknown));
        t.expire_all();
        assert_eq!(t.check(&live), Err(TokenProblem::Expired));
    }
}
