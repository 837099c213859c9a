//! The server's one credential, `server.token`, checked on every request but the health checks.
//!
//! Two ways to present it: `Authorization: Bearer <token>` for machines (Prometheus, the ERP's
//! push), and HTTP Basic with any user name and the token as password, so a person can open the
//! dashboard in a browser, which asks for Basic credentials after the 401's `WWW-Authenticate`.
//! The comparison runs in constant time over SHA-256 digests of both sides, so neither the
//! token's characters nor its length can be timed. The token never appears in a log line or a
//! response; a refusal says only that credentials are missing or wrong.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use super::WebState;

/// Paths served without the token: orchestrators probe them without credentials, and they tell
/// nothing beyond "up" and "ready".
pub const OPEN_PATHS: [&str; 2] = ["/healthz", "/readyz"];

/// What a browser shows when it asks for credentials.
pub const REALM: &str = "coupa-bridge";

/// Middleware: lets a request through when no token is configured, when its path is open, or
/// when it carries the token; answers 401 otherwise.
pub async fn require_token(State(state): State<WebState>, req: Request, next: Next) -> Response {
    let Some(token) = &state.token else {
        return next.run(req).await;
    };
    if OPEN_PATHS.contains(&req.uri().path()) || authorized(req.headers(), token) {
        return next.run(req).await;
    }
    tracing::debug!(
        method = %req.method(),
        path = req.uri().path(),
        "request refused: no valid server token"
    );
    unauthorized()
}

/// Whether `headers` carry `token` as a Bearer token or as the password of HTTP Basic.
pub fn authorized(headers: &HeaderMap, token: &SecretString) -> bool {
    headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .filter_map(presented)
        .any(|credential| same(&credential, token.expose_secret().as_bytes()))
}

/// The credential an `Authorization` value carries, if it is a Bearer or Basic one.
fn presented(value: &HeaderValue) -> Option<Vec<u8>> {
    let value = value.as_bytes().trim_ascii();
    let space = value.iter().position(|b| *b == b' ')?;
    let (scheme, rest) = (&value[..space], value[space..].trim_ascii());
    if scheme.eq_ignore_ascii_case(b"bearer") {
        Some(rest.to_vec())
    } else if scheme.eq_ignore_ascii_case(b"basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?;
        // `user:password`; the user name is free, so only what follows the first colon counts.
        let colon = decoded.iter().position(|b| *b == b':')?;
        Some(decoded[colon + 1..].to_vec())
    } else {
        None
    }
}

/// Constant-time equality of two byte strings of any lengths: their digests are compared with
/// every byte examined. An empty credential never matches.
fn same(presented: &[u8], expected: &[u8]) -> bool {
    let a = Sha256::digest(presented);
    let b = Sha256::digest(expected);
    let diff = a
        .iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0 && !presented.is_empty()
}

/// 401 with the challenge that makes a browser ask for Basic credentials.
pub fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"coupa-bridge\""),
        )],
        "authentication required: send the server token as a Bearer token or as the password \
         of HTTP Basic\n",
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(
                header::AUTHORIZATION,
                HeaderValue::from_str(v).expect("valid header"),
            );
        }
        h
    }

    fn basic(user_pass: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(user_pass)
        )
    }

    #[test]
    fn bearer_and_basic_carry_the_token() {
        let token = SecretString::from("s3cret:with-colon");
        assert!(authorized(&headers(&["Bearer s3cret:with-colon"]), &token));
        assert!(authorized(
            &headers(&["bearer  s3cret:with-colon "]),
            &token
        ));
        assert!(authorized(
            &headers(&[&basic("anyone:s3cret:with-colon")]),
            &token
        ));
        assert!(authorized(
            &headers(&[&basic(":s3cret:with-colon")]),
            &token
        ));
        assert!(authorized(
            &headers(&["Bearer wrong", "Bearer s3cret:with-colon"]),
            &token
        ));
    }

    #[test]
    fn anything_else_is_refused() {
        let token = SecretString::from("s3cret");
        for h in [
            vec![],
            vec!["Bearer"],
            vec!["Bearer "],
            vec!["Bearer s3cre"],
            vec!["Bearer s3cret2"],
            vec!["Token s3cret"],
            vec!["s3cret"],
            vec!["Basic not-base64!"],
        ] {
            assert!(!authorized(&headers(&h), &token), "{h:?}");
        }
        // The token as the user name, or without a colon, is not the password.
        assert!(!authorized(&headers(&[&basic("s3cret:")]), &token));
        assert!(!authorized(&headers(&[&basic("s3cret")]), &token));
    }

    #[test]
    fn comparison_needs_equal_bytes() {
        assert!(same(b"abc", b"abc"));
        assert!(!same(b"abc", b"abd"));
        assert!(!same(b"abc", b"abcd"));
        assert!(!same(b"", b""));
    }
}
