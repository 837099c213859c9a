//! JSON or XML, chosen per request, and the replies written in it.
//!
//! Coupa "requires that you set both your content-type and content-accept headers to the same
//! type"; the simulator is kinder: the reply follows `Accept`, the body is read by its
//! `Content-Type` (or, when that is missing, by its first character). With no usable `Accept`
//! the reply is XML, which is what Coupa sends to clients that do not ask for JSON.

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use coupa_doc::{Object, Value};

use crate::store::Resource;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Xml,
}

impl Format {
    /// The reply format a request asks for.
    pub fn of_accept(headers: &HeaderMap) -> Format {
        let accept = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if accept.contains("json") {
            Format::Json
        } else {
            Format::Xml
        }
    }

    /// The format a request body is written in.
    pub fn of_body(headers: &HeaderMap, body: &[u8]) -> Format {
        let ct = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if ct.contains("json") {
            return Format::Json;
        }
        if ct.contains("xml") {
            return Format::Xml;
        }
        match body.iter().find(|b| !b.is_ascii_whitespace()) {
            Some(b'{' | b'[') => Format::Json,
            _ => Format::Xml,
        }
    }

    fn content_type(self) -> HeaderValue {
        match self {
            Format::Json => HeaderValue::from_static("application/json; charset=utf-8"),
            Format::Xml => HeaderValue::from_static("application/xml; charset=utf-8"),
        }
    }
}

/// A reply that renders itself in the request's format.
pub struct Reply {
    pub status: StatusCode,
    pub format: Format,
    pub body: Body,
}

pub enum Body {
    One(Resource, Object),
    List(Resource, Vec<Object>),
    /// `return_object=none`: nothing at all.
    Empty,
    /// Any other JSON document (the admin API).
    RawJson(serde_json::Value),
}

impl Reply {
    pub fn one(format: Format, resource: Resource, row: Object) -> Reply {
        Reply {
            status: StatusCode::OK,
            format,
            body: Body::One(resource, row),
        }
    }

    pub fn list(format: Format, resource: Resource, rows: Vec<Object>) -> Reply {
        Reply {
            status: StatusCode::OK,
            format,
            body: Body::List(resource, rows),
        }
    }

    /// A single record or, for `return_object=none`, an empty body.
    pub fn maybe(format: Format, resource: Resource, row: Option<Object>) -> Reply {
        match row {
            Some(row) => Reply::one(format, resource, row),
            None => Reply {
                status: StatusCode::OK,
                format,
                body: Body::Empty,
            },
        }
    }

    pub fn with_status(mut self, status: StatusCode) -> Reply {
        self.status = status;
        self
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let bytes: Vec<u8> = match (&self.body, self.format) {
            (Body::Empty, _) => Vec::new(),
            (Body::One(_, row), Format::Json) => {
                coupa_doc::json::to_vec(&Value::Object(row.clone()))
            }
            (Body::One(r, row), Format::Xml) => {
                coupa_doc::xml::to_string(r.element(), &Value::Object(row.clone())).into_bytes()
            }
            (Body::List(_, rows), Format::Json) => {
                let mut out = Vec::with_capacity(rows.len() * 1024 + 2);
                out.push(b'[');
                for (i, row) in rows.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    let _ = serde_json::to_writer(&mut out, row);
                }
                out.push(b']');
                out
            }
            (Body::List(r, rows), Format::Xml) => {
                if rows.is_empty() {
                    // Coupa answers an empty XML search with a 404 and an error, where JSON
                    // gets `[]` (coupa-api.md section 1).
                    return ApiError::not_found_search(Format::Xml, *r).into_response();
                }
                let items: Vec<Value> = rows.iter().cloned().map(Value::Object).collect();
                coupa_doc::xml::list_to_string(r.list_element(), &items).into_bytes()
            }
            (Body::RawJson(v), _) => serde_json::to_vec_pretty(v).unwrap_or_default(),
        };
        let mut resp = (self.status, bytes).into_response();
        let ct = match self.body {
            Body::RawJson(_) => Format::Json.content_type(),
            _ => self.format.content_type(),
        };
        resp.headers_mut().insert(header::CONTENT_TYPE, ct);
        resp
    }
}

/// An error answered in Coupa's envelope: `<errors><error>..</error></errors>` or
/// `{"errors":{"<resource>":[...]}}`.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub format: Format,
    /// The JSON envelope's key (`invoice_header`); `None` uses `base`.
    pub key: Option<&'static str>,
    pub messages: Vec<String>,
    pub headers: Vec<(header::HeaderName, HeaderValue)>,
}

impl ApiError {
    pub fn new(status: StatusCode, format: Format, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            format,
            key: None,
            messages: vec![message.into()],
            headers: Vec::new(),
        }
    }

    /// A validation failure on `resource`: 400 with every message.
    pub fn invalid(format: Format, resource: Resource, messages: Vec<String>) -> ApiError {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            format,
            key: Some(resource.error_key()),
            messages,
            headers: Vec::new(),
        }
    }

    pub fn bad_request(format: Format, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, format, message)
    }

    pub fn not_found(format: Format, resource: Resource, id: i64) -> ApiError {
        let mut e = ApiError::new(
            StatusCode::NOT_FOUND,
            format,
            format!("Couldn't find {} with 'id'={id}", resource.error_key()),
        );
        e.key = Some(resource.error_key());
        e
    }

    pub fn not_found_search(format: Format, resource: Resource) -> ApiError {
        let mut e = ApiError::new(
            StatusCode::NOT_FOUND,
            format,
            "No results match your search criteria.",
        );
        e.key = Some(resource.error_key());
        e
    }

    pub fn with_header(mut self, name: header::HeaderName, value: HeaderValue) -> ApiError {
        self.headers.push((name, value));
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (bytes, ct) = match self.format {
            Format::Xml => (
                coupa_doc::xml::errors_to_string(&self.messages).into_bytes(),
                Format::Xml.content_type(),
            ),
            Format::Json => {
                let json = serde_json::json!({
                    "errors": { self.key.unwrap_or("base"): self.messages }
                });
                (
                    serde_json::to_vec(&json).unwrap_or_default(),
                    Format::Json.content_type(),
                )
            }
        };
        let mut resp = (self.status, bytes).into_response();
        resp.headers_mut().insert(header::CONTENT_TYPE, ct);
        for (k, v) in self.headers {
            resp.headers_mut().insert(k, v);
        }
        resp
    }
}

/// Reads a request body into an object. A body wrapped in the resource's own element name
/// (`{"integration-run": {...}}`, or any XML root) is unwrapped. An empty body is an empty
/// object (actions such as `PUT /{id}/resolve` have none).
pub fn read_body(
    headers: &HeaderMap,
    body: &[u8],
    reply_format: Format,
    resource: Resource,
) -> Result<Object, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Object::new());
    }
    let parsed = match Format::of_body(headers, body) {
        Format::Json => coupa_doc::json::parse(body),
        Format::Xml => coupa_doc::xml::parse(body).map(|(_, v)| v),
    };
    let value = parsed.map_err(|e| {
        ApiError::invalid(
            reply_format,
            resource,
            vec![format!("Could not read the request body: {e}")],
        )
    })?;
    match value {
        Value::Object(mut o) => {
            if o.len() == 1
                && matches!(o.get(resource.element()), Some(Value::Object(_)))
                && let Some(Value::Object(inner)) = o.remove(resource.element())
            {
                return Ok(inner);
            }
            Ok(o)
        }
        Value::Null => Ok(Object::new()),
        _ => Err(ApiError::invalid(
            reply_format,
            resource,
            vec!["The request body must be an object".to_owned()],
        )),
    }
}
