//! What the client refuses whatever the server says: bodies above `max_response_bytes` (told by
//! `Content-Length`, or counted while streaming when the length is absent), XML entity
//! expansion, and plain `http://` without the simulator-only switch. The servers here are a
//! few lines over a TCP socket, so each answer is exactly the bytes the test wrote.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use coupa_api::auth::Credentials;
use coupa_api::query::{Fields, Query};
use coupa_api::transport::Request;
use coupa_api::{Client, ClientConfig, ErrorClass, Format, SecretString};
use reqwest::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const LIMIT: usize = 4096;

/// A server answering every request with `answer`, one request per connection; counts the
/// requests it read.
struct Canned {
    base: String,
    requests: Arc<AtomicUsize>,
}

async fn canned(answer: Vec<u8>) -> Canned {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let counter = counter.clone();
            let answer = answer.clone();
            tokio::spawn(async move {
                if read_request(&mut socket).await {
                    counter.fetch_add(1, Ordering::SeqCst);
                    // The client may hang up once it has seen enough: not an error here.
                    let _ = socket.write_all(&answer).await;
                    let _ = socket.shutdown().await;
                }
            });
        }
    });
    Canned { base, requests }
}

/// Reads one request's head and body; false when the connection closed first.
async fn read_request(socket: &mut tokio::net::TcpStream) -> bool {
    let mut seen = Vec::new();
    let mut buf = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    };
    let head = String::from_utf8_lossy(&seen[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while seen.len() < head_end + length {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
    true
}

/// `n` bytes of a JSON list that never ends (`[1,1,1,...`).
fn filler(n: usize) -> Vec<u8> {
    let mut body = b"[".to_vec();
    while body.len() < n {
        body.extend_from_slice(b"1,");
    }
    body.truncate(n);
    body
}

fn with_length(status: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// The body in 1 KiB chunks: no Content-Length to go by.
fn chunked(status: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\
         Connection: close\r\n\r\n"
    )
    .into_bytes();
    for chunk in body.chunks(1024) {
        out.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        out.extend_from_slice(chunk);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

/// The body up to the connection's close: no length and no chunks.
fn until_close(status: &str, body: &[u8]) -> Vec<u8> {
    let mut out =
        format!("HTTP/1.1 {status}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n")
            .into_bytes();
    out.extend_from_slice(body);
    out
}

/// An API-key client (no token request to answer) of `base`, with a small body limit and
/// quick retries.
fn client(base: &str, format: Format) -> Client {
    let mut c = ClientConfig::new(base, Credentials::ApiKey(SecretString::from("test-key")));
    c.insecure_http_simulator_only = true;
    c.format = format;
    c.rate = None;
    c.max_response_bytes = LIMIT;
    c.retry = crate::common::quick_retries();
    c.http.timeout = Duration::from_secs(10);
    Client::new(c, Arc::new(coupa_api::observe::Recorder::default())).expect("client")
}

fn page() -> Query {
    Query::new().fields(Fields::new(["id"])).limit(5)
}

#[tokio::test]
async fn a_success_above_the_limit_is_refused_once_whatever_its_length_says() {
    let big = filler(64 * 1024);
    for (how, answer) in [
        ("Content-Length", with_length("200 OK", &big)),
        ("chunked, no Content-Length", chunked("200 OK", &big)),
        (
            "until close, no Content-Length",
            until_close("200 OK", &big),
        ),
    ] {
        let server = canned(answer).await;
        let err = client(&server.base, Format::Json)
            .invoices()
            .list(page())
            .next_page()
            .await
            .expect_err("refused");
        let text = err.to_string();
        assert!(
            text.starts_with("GET /api/invoices?") && text.contains(&format!("{LIMIT} bytes")),
            "{how}: the error names the endpoint and the limit: {text}"
        );
        assert!(text.contains("max_response_bytes"), "{how}: {text}");
        assert_eq!(err.class(), ErrorClass::Permanent, "{how}: {text}");
        assert_eq!(
            server.requests.load(Ordering::SeqCst),
            1,
            "{how}: not asked again"
        );
    }
}

#[tokio::test]
async fn a_body_within_the_limit_is_read_in_full() {
    let body = br#"[{"id":1},{"id":2}]"#;
    for answer in [
        with_length("200 OK", body),
        chunked("200 OK", body),
        until_close("200 OK", body),
    ] {
        let server = canned(answer).await;
        let page = client(&server.base, Format::Json)
            .invoices()
            .list(page())
            .next_page()
            .await
            .expect("read");
        assert_eq!(page.map(|p| p.len()), Some(2));
    }
    // Exactly at the limit is within it.
    let mut json = br#"[{"id":1}"#.to_vec();
    json.resize(LIMIT - 1, b' ');
    json.push(b']');
    assert_eq!(json.len(), LIMIT);
    let server = canned(chunked("200 OK", &json)).await;
    let page = client(&server.base, Format::Json)
        .invoices()
        .list(page())
        .next_page()
        .await
        .expect("a body of exactly the limit is read");
    assert_eq!(page.map(|p| p.len()), Some(1));
}

/// A POST (or a payment PUT) whose answer is too large may have been acted on: the caller is
/// told the outcome is unknown, and it is not sent again.
#[tokio::test]
async fn an_unsafe_request_with_a_success_too_large_is_outcome_unknown_and_not_repeated() {
    let server = canned(chunked("201 Created", &filler(64 * 1024))).await;
    let req = Request::new(Method::POST, "/api/integration_runs");
    let err = client(&server.base, Format::Json)
        .send(&req)
        .await
        .expect_err("refused");
    assert!(err.outcome_unknown(), "{err}");
    assert!(err.to_string().contains(&format!("{LIMIT} bytes")), "{err}");
    assert_eq!(server.requests.load(Ordering::SeqCst), 1);
}

/// An error answer is judged by its status; an oversized error page (a proxy's) is cut, not
/// turned into a different error.
#[tokio::test]
async fn an_error_answer_above_the_limit_keeps_its_status() {
    let server = canned(chunked("503 Service Unavailable", &filler(64 * 1024))).await;
    let err = client(&server.base, Format::Json)
        .invoices()
        .list(page())
        .next_page()
        .await
        .expect_err("503");
    assert_eq!(err.status(), Some(503), "{err}");
    assert_eq!(err.class(), ErrorClass::Retryable);
    assert_eq!(
        server.requests.load(Ordering::SeqCst),
        crate::common::quick_retries().max_attempts as usize,
        "a 503 is retried as the policy says"
    );
}

/// A billion-laughs listing is refused at its DOCTYPE: no expansion, a clear error, no retry.
#[tokio::test]
async fn an_xml_listing_with_entity_expansion_is_refused() {
    let mut bomb =
        String::from("<?xml version=\"1.0\"?>\n<!DOCTYPE lolz [\n<!ENTITY lol \"lol\">\n");
    let mut previous = "lol".to_owned();
    for i in 1..=9 {
        let name = format!("lol{i}");
        let refs = format!("&{previous};").repeat(10);
        bomb.push_str(&format!("<!ENTITY {name} \"{refs}\">\n"));
        previous = name;
    }
    bomb.push_str(&format!(
        "]>\n<invoice-headers type=\"array\"><invoice-header><id type=\"integer\">1</id>\
         <invoice-number>&{previous};</invoice-number></invoice-header></invoice-headers>"
    ));
    let mut answer = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        bomb.len()
    )
    .into_bytes();
    answer.extend_from_slice(bomb.as_bytes());
    let server = canned(answer).await;
    let err = client(&server.base, Format::Xml)
        .invoices()
        .list(page())
        .next_page()
        .await
        .expect_err("refused");
    let text = err.to_string();
    assert!(
        text.starts_with("GET /api/invoices?")
            && text.contains("DOCTYPE declarations are not allowed"),
        "{text}"
    );
    assert_eq!(err.class(), ErrorClass::Permanent);
    assert_eq!(server.requests.load(Ordering::SeqCst), 1);
}

#[test]
fn plain_http_needs_the_simulator_only_switch() {
    let observer = Arc::new(coupa_api::observe::Recorder::default());
    let c = ClientConfig::new(
        "http://127.0.0.1:8080",
        Credentials::ApiKey(SecretString::from("k")),
    );
    assert!(!c.insecure_http_simulator_only, "off by default");
    assert_eq!(c.max_response_bytes, coupa_api::DEFAULT_MAX_RESPONSE_BYTES);
    let err = Client::new(c.clone(), observer.clone()).expect_err("refused");
    let text = err.to_string();
    assert!(
        text.contains("plain http://")
            && text.contains("insecure_http_simulator_only")
            && text.contains("simulator only"),
        "{text}"
    );
    let mut switched = c;
    switched.insecure_http_simulator_only = true;
    assert!(Client::new(switched, observer.clone()).is_ok());
    let https = ClientConfig::new(
        "https://acme.coupahost.com",
        Credentials::ApiKey(SecretString::from("k")),
    );
    assert!(Client::new(https, observer).is_ok());
}
