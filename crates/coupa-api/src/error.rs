//! One error type for every operation, with the classification the flows act on: retry later
//! (transient), record and move on (permanent), fix the credentials (auth), or it is not there.

use std::fmt;

use crate::wire::DecodeError;

/// How a caller should treat a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// An outage, a throttle or a dropped connection that outlasted the retries: nothing is
    /// wrong with the document; try again on the next pass.
    Retryable,
    /// Coupa refused the request for what it says (a 400 with validation messages, a broken
    /// payload): repeating it unchanged will fail the same way.
    Permanent,
    /// Credentials or scopes: no document can get through until a person fixes the config.
    Auth,
    /// The record (or, for an empty XML list, the result) does not exist.
    NotFound,
}

/// What went wrong, without the request's secrets.
#[derive(Debug, thiserror::Error)]
pub enum ErrorKind {
    /// Coupa answered with a status that is not a success.
    #[error("HTTP {status}{}", fmt_messages(messages))]
    Status { status: u16, messages: Vec<String> },
    /// No usable answer: timeout, connection refused or dropped, truncated body.
    #[error("{0}")]
    Transport(String),
    /// The request may have reached Coupa but the answer was lost, and repeating it could
    /// apply it twice (a POST, a payment). The caller must check before trying again.
    #[error("outcome unknown, not repeated: {0}")]
    Unknown(String),
    /// The answer could not be read.
    #[error("{0}")]
    Decode(#[from] DecodeError),
    /// The token endpoint refused the credentials or scopes.
    #[error("token request failed: {0}")]
    Token(String),
    /// A request the client could not even build (bad base URL, bad query value).
    #[error("{0}")]
    Invalid(String),
}

fn fmt_messages(messages: &[String]) -> String {
    if messages.is_empty() {
        String::new()
    } else {
        format!(": {}", messages.join("; "))
    }
}

/// An operation failed. Carries the method and path (never the token) so a log line says
/// which call it was.
#[derive(Debug)]
pub struct Error {
    pub method: String,
    /// Path and query, as sent (queries never carry secrets; tokens travel in headers).
    pub path: String,
    pub kind: ErrorKind,
}

impl Error {
    pub fn new(method: impl Into<String>, path: impl Into<String>, kind: ErrorKind) -> Self {
        Error {
            method: method.into(),
            path: path.into(),
            kind,
        }
    }

    pub fn class(&self) -> ErrorClass {
        match &self.kind {
            ErrorKind::Status { status, .. } => match status {
                401 | 403 => ErrorClass::Auth,
                404 => ErrorClass::NotFound,
                // 501 and 505 say the request itself is wrong; asking again changes nothing.
                501 | 505 => ErrorClass::Permanent,
                408 | 429 | 500..=599 => ErrorClass::Retryable,
                _ => ErrorClass::Permanent,
            },
            ErrorKind::Transport(_) | ErrorKind::Unknown(_) => ErrorClass::Retryable,
            ErrorKind::Decode(_) | ErrorKind::Invalid(_) => ErrorClass::Permanent,
            ErrorKind::Token(_) => ErrorClass::Auth,
        }
    }

    /// The HTTP status, when Coupa answered.
    pub fn status(&self) -> Option<u16> {
        match &self.kind {
            ErrorKind::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// Coupa's own messages (`<errors><error>` or the JSON `errors` map), empty when none.
    pub fn messages(&self) -> &[String] {
        match &self.kind {
            ErrorKind::Status { messages, .. } => messages,
            _ => &[],
        }
    }

    /// The request may have been applied: the caller must look before repeating it.
    pub fn outcome_unknown(&self) -> bool {
        matches!(self.kind, ErrorKind::Unknown(_))
    }

    /// The text a person should read: Coupa's messages when it gave any, else the error.
    pub fn reason(&self) -> String {
        match &self.kind {
            ErrorKind::Status { messages, .. } if !messages.is_empty() => messages.join("; "),
            other => other.to_string(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.method, self.path, self.kind)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.kind.source()
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn status(status: u16, messages: &[&str]) -> Error {
        Error::new(
            "PUT",
            "/api/invoices/1",
            ErrorKind::Status {
                status,
                messages: messages.iter().map(|m| m.to_string()).collect(),
            },
        )
    }

    #[test]
    fn statuses_are_classified_for_the_flows() {
        assert_eq!(status(400, &[]).class(), ErrorClass::Permanent);
        assert_eq!(status(422, &[]).class(), ErrorClass::Permanent);
        assert_eq!(status(401, &[]).class(), ErrorClass::Auth);
        assert_eq!(status(403, &[]).class(), ErrorClass::Auth);
        assert_eq!(status(404, &[]).class(), ErrorClass::NotFound);
        assert_eq!(status(429, &[]).class(), ErrorClass::Retryable);
        assert_eq!(status(503, &[]).class(), ErrorClass::Retryable);
        let dropped = Error::new("GET", "/api/x", ErrorKind::Transport("dropped".into()));
        assert_eq!(dropped.class(), ErrorClass::Retryable);
        let unknown = Error::new("POST", "/api/x", ErrorKind::Unknown("timeout".into()));
        assert!(unknown.outcome_unknown());
        assert_eq!(unknown.class(), ErrorClass::Retryable);
    }

    #[test]
    fn display_names_the_call_and_coupas_messages() {
        let e = status(400, &["Amount paid is not a number", "Notes is too long"]);
        assert_eq!(
            e.to_string(),
            "PUT /api/invoices/1: HTTP 400: Amount paid is not a number; Notes is too long"
        );
        assert_eq!(e.reason(), "Amount paid is not a number; Notes is too long");
    }
}
