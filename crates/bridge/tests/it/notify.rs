//! Notifications against real loopback peers: an SMTP server written here (plain, STARTTLS and
//! implicit TLS with a private CA, AUTH PLAIN/LOGIN, refusals, silence) and a webhook receiver;
//! grouping of outages into incidents on SQLite and PostgreSQL, with the clock moved by hand.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use chrono::{DateTime, TimeZone, Utc};
use coupa_bridge::config::{EmailConfig, NotifyConfig, SmtpSecurity, WebhookConfig};
use coupa_bridge::daemon::schedule::ManualClock;
use coupa_bridge::erp::ErpError;
use coupa_bridge::flows::{FlowError, FlowName, PassReport};
use coupa_bridge::notify::Notifier;
use coupa_bridge::store::Store;
use coupa_bridge::store::notifications::NotificationRecord;
use hmac::{Hmac, Mac};
use secrecy::SecretString;
use serde_json::Value;
use sha2::Sha256;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;

use crate::pg::each_backend;

// A private CA and a server certificate for `localhost` / 127.0.0.1 it signed, valid 2020-2120
// (made with `openssl ca`; the key is for these tests only).
const CA_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBcDCCARegAwIBAgIBATAKBggqhkjOPQQDAjAfMR0wGwYDVQQDDBRjb3VwYS1i
cmlkZ2UgdGVzdCBDQTAgFw0yMDAxMDEwMDAwMDBaGA8yMTIwMDEwMTAwMDAwMFow
HzEdMBsGA1UEAwwUY291cGEtYnJpZGdlIHRlc3QgQ0EwWTATBgcqhkjOPQIBBggq
hkjOPQMBBwNCAAS6X4mHOe+X06KZ0UwAhpBBmrKez4CU1ZU1r/Jn4EvO5y0RWzvA
GhGTgzASSbKz2PS3kxvkvFAmpJxbDHx2jLn4o0IwQDAPBgNVHRMBAf8EBTADAQH/
MA4GA1UdDwEB/wQEAwIBBjAdBgNVHQ4EFgQUbO1VILKY8OOWfY4Fln0w0snvZmsw
CgYIKoZIzj0EAwIDRwAwRAIgHC43ivv15PolM/I8uTPtvHbvBDduF+K6V/h+T16u
YlUCIGIFwkzog2Loa3vCsMnPOZsVqiUDrRIkD3ycQa67axH5
-----END CERTIFICATE-----
";
const SERVER_CERT_PEM: &str = "-----BEGIN CERTIFICATE-----
MIIBtjCCAV2gAwIBAgIBAjAKBggqhkjOPQQDAjAfMR0wGwYDVQQDDBRjb3VwYS1i
cmlkZ2UgdGVzdCBDQTAgFw0yMDAxMDEwMDAwMDBaGA8yMTIwMDEwMTAwMDAwMFow
FDESMBAGA1UEAwwJbG9jYWxob3N0MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE
oa7Ox3jieNfpx9B/fnBoYZ/2SQFuyPYqKd+DhfKGdWR/Z7IFwZCkvQtD2sTkl+i4
SLzDRbf+19eTILKmpEhkgaOBkjCBjzAMBgNVHRMBAf8EAjAAMA4GA1UdDwEB/wQE
AwIHgDATBgNVHSUEDDAKBggrBgEFBQcDATAaBgNVHREEEzARgglsb2NhbGhvc3SH
BH8AAAEwHwYDVR0jBBgwFoAUbO1VILKY8OOWfY4Fln0w0snvZmswHQYDVR0OBBYE
FKj0uoRP2aW6WLVjMFSToxDzSpMbMAoGCCqGSM49BAMCA0cAMEQCICPgiMOI9oBY
2Pqj+JPOFlpig452NU7dunVZEkEDt4ZAAiAhbGCF5hawWWnogbwQyc47YUBfmZZG
8q3ms409VA0iEw==
-----END CERTIFICATE-----
";
const SERVER_KEY_PEM: &str = "-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg5CgflZBWkhZLQSYq
leJ8inhBkqPP55W5/LfHBWiqGVqhRANCAAShrs7HeOJ41+nH0H9+cGhhn/ZJAW7I
9iop34OF8oZ1ZH9nsgXBkKS9C0PaxOSX6LhIvMNFt/7X15MgsqakSGSB
-----END PRIVATE KEY-----
";

const PASSWORD: &str = "sm7p-pa55word";
const WEBHOOK_SECRET: &str = "wh-s3cret";

// ---------------------------------------------------------------------------------------------
// A minimal SMTP server.

/// How the test SMTP server behaves.
#[derive(Clone, Default)]
struct SmtpOptions {
    /// Offer STARTTLS with this certificate.
    starttls: Option<TlsAcceptor>,
    /// Speak TLS from the first byte.
    implicit_tls: Option<TlsAcceptor>,
    /// Offer AUTH PLAIN and LOGIN, accepting these credentials.
    auth: Option<(String, String)>,
    /// Answer RCPT TO with this line (e.g. a 554) instead of accepting.
    refuse_rcpt: Option<String>,
    /// Accept connections and never say a word.
    silent: bool,
}

/// One SMTP connection as the server saw it.
#[derive(Clone, Debug, Default)]
struct Session {
    ehlo: Vec<String>,
    /// STARTTLS or implicit TLS was in effect when the mail was given.
    tls: bool,
    /// (user, password) of a successful AUTH, and whether TLS was on at that point.
    auth: Option<(String, String, bool)>,
    mail_from: Option<String>,
    rcpt_to: Vec<String>,
    /// The message as received (dot-unstuffed), when DATA completed.
    data: Option<String>,
    quit: bool,
}

struct SmtpServer {
    addr: SocketAddr,
    sessions: Arc<Mutex<Vec<Session>>>,
}

impl SmtpServer {
    async fn start(options: SmtpOptions) -> SmtpServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind SMTP");
        let addr = listener.local_addr().expect("SMTP address");
        let sessions: Arc<Mutex<Vec<Session>>> = Arc::default();
        let all = sessions.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let index = {
                    let mut all = all.lock().expect("sessions");
                    all.push(Session::default());
                    all.len() - 1
                };
                let record = Recorder {
                    sessions: all.clone(),
                    index,
                };
                let options = options.clone();
                tokio::spawn(async move {
                    if options.silent {
                        tokio::time::sleep(Duration::from_secs(60)).await;
                        drop(tcp);
                        return;
                    }
                    // Errors end the connection, as a real server's would; the test looks at
                    // what was recorded.
                    let _ = serve(tcp, &options, &record).await;
                });
            }
        });
        SmtpServer { addr, sessions }
    }

    fn sessions(&self) -> Vec<Session> {
        self.sessions.lock().expect("sessions").clone()
    }

    /// The sessions that delivered a message.
    fn mails(&self) -> Vec<Session> {
        self.sessions()
            .into_iter()
            .filter(|s| s.data.is_some())
            .collect()
    }
}

struct Recorder {
    sessions: Arc<Mutex<Vec<Session>>>,
    index: usize,
}

impl Recorder {
    fn update(&self, f: impl FnOnce(&mut Session)) {
        f(&mut self.sessions.lock().expect("sessions")[self.index]);
    }
}

async fn serve(
    tcp: tokio::net::TcpStream,
    options: &SmtpOptions,
    record: &Recorder,
) -> std::io::Result<()> {
    if let Some(acceptor) = &options.implicit_tls {
        let tls = acceptor.accept(tcp).await?;
        record.update(|s| s.tls = true);
        session(tls, options, record, true, true).await?;
        return Ok(());
    }
    if let Some(tcp) = session(tcp, options, record, false, true).await?
        && let Some(acceptor) = &options.starttls
    {
        let tls = acceptor.accept(tcp).await?;
        record.update(|s| s.tls = true);
        session(tls, options, record, true, false).await?;
    }
    Ok(())
}

/// Speaks SMTP on `stream`; returns the stream when the client asked for STARTTLS.
async fn session<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    options: &SmtpOptions,
    record: &Recorder,
    tls: bool,
    greet: bool,
) -> std::io::Result<Option<S>> {
    let mut io = BufReader::new(stream);
    if greet {
        io.write_all(b"220 smtp.test ESMTP ready\r\n").await?;
    }
    loop {
        let line = read_line(&mut io).await?;
        let Some(line) = line else { return Ok(None) };
        let upper = line.to_ascii_uppercase();
        let reply: String = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            record.update(|s| s.ehlo.push(line.clone()));
            let mut r = String::from("250-smtp.test\r\n");
            if options.starttls.is_some() && !tls {
                r.push_str("250-STARTTLS\r\n");
            }
            if options.auth.is_some() {
                r.push_str("250-AUTH PLAIN LOGIN\r\n");
            }
            r.push_str("250 8BITMIME\r\n");
            r
        } else if upper == "STARTTLS" && options.starttls.is_some() && !tls {
            io.write_all(b"220 2.0.0 go ahead\r\n").await?;
            io.flush().await?;
            return Ok(Some(io.into_inner()));
        } else if upper.starts_with("AUTH PLAIN") {
            let encoded = match line.split_whitespace().nth(2) {
                Some(e) => e.to_owned(),
                None => {
                    io.write_all(b"334 \r\n").await?;
                    read_line(&mut io).await?.unwrap_or_default()
                }
            };
            let decoded = b64(&encoded);
            let mut parts = decoded.split('\0').skip(1);
            let user = parts.next().unwrap_or_default().to_owned();
            let pass = parts.next().unwrap_or_default().to_owned();
            auth_reply(options, record, user, pass, tls)
        } else if upper.starts_with("AUTH LOGIN") {
            let user = match line.split_whitespace().nth(2) {
                Some(u) => b64(u),
                None => {
                    io.write_all(b"334 VXNlcm5hbWU6\r\n").await?;
                    b64(&read_line(&mut io).await?.unwrap_or_default())
                }
            };
            io.write_all(b"334 UGFzc3dvcmQ6\r\n").await?;
            let pass = b64(&read_line(&mut io).await?.unwrap_or_default());
            auth_reply(options, record, user, pass, tls)
        } else if upper.starts_with("MAIL FROM:") {
            let from = line["MAIL FROM:".len()..].to_owned();
            record.update(|s| s.mail_from = Some(from));
            "250 2.1.0 sender ok\r\n".into()
        } else if upper.starts_with("RCPT TO:") {
            let to = line["RCPT TO:".len()..].to_owned();
            match &options.refuse_rcpt {
                Some(refusal) => format!("{refusal}\r\n"),
                None => {
                    record.update(|s| s.rcpt_to.push(to));
                    "250 2.1.5 recipient ok\r\n".into()
                }
            }
        } else if upper == "DATA" {
            io.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
            let mut data = String::new();
            loop {
                let Some(l) = read_line(&mut io).await? else {
                    return Ok(None);
                };
                if l == "." {
                    break;
                }
                data.push_str(l.strip_prefix('.').unwrap_or(&l));
                data.push_str("\r\n");
            }
            record.update(|s| s.data = Some(data));
            "250 2.0.0 queued\r\n".into()
        } else if upper == "QUIT" {
            record.update(|s| s.quit = true);
            io.write_all(b"221 2.0.0 bye\r\n").await?;
            return Ok(None);
        } else if upper == "RSET" || upper == "NOOP" {
            "250 2.0.0 ok\r\n".into()
        } else {
            "502 5.5.2 not implemented\r\n".into()
        };
        io.write_all(reply.as_bytes()).await?;
        io.flush().await?;
    }
}

fn auth_reply(
    options: &SmtpOptions,
    record: &Recorder,
    user: String,
    pass: String,
    tls: bool,
) -> String {
    let ok = options
        .auth
        .as_ref()
        .is_some_and(|(u, p)| *u == user && *p == pass);
    if ok {
        record.update(|s| s.auth = Some((user, pass, tls)));
        "235 2.7.0 authenticated\r\n".into()
    } else {
        "535 5.7.8 bad credentials\r\n".into()
    }
}

async fn read_line<R: AsyncBufReadExt + Unpin>(io: &mut R) -> std::io::Result<Option<String>> {
    let mut line = String::new();
    if io.read_line(&mut line).await? == 0 {
        return Ok(None);
    }
    Ok(Some(line.trim_end_matches(['\r', '\n']).to_owned()))
}

fn b64(s: &str) -> String {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A TLS acceptor for `localhost` / 127.0.0.1 with the test CA's server certificate (the CA is
/// in no trust store). Shared with `security.rs`.
pub(crate) fn acceptor() -> TlsAcceptor {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_slice_iter(SERVER_CERT_PEM.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .expect("server certificate");
    let key = PrivateKeyDer::from_pem_slice(SERVER_KEY_PEM.as_bytes()).expect("server key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .expect("server TLS config");
    TlsAcceptor::from(Arc::new(config))
}

/// The headers of a received message, folded lines joined.
fn header(data: &str, name: &str) -> Option<String> {
    let head = data.split("\r\n\r\n").next().unwrap_or_default();
    let unfolded = head.replace("\r\n ", " ").replace("\r\n\t", " ");
    unfolded.split("\r\n").find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
    })
}

fn mail_body(data: &str) -> String {
    data.split_once("\r\n\r\n")
        .map(|(_, b)| b.replace("\r\n", "\n"))
        .unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// A webhook receiver.

#[derive(Clone, Debug)]
struct Hook {
    headers: HeaderMap,
    body: Bytes,
}

impl Hook {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("webhook body is JSON")
    }
}

struct Receiver {
    url: String,
    hooks: Arc<Mutex<Vec<Hook>>>,
}

impl Receiver {
    async fn start(status: StatusCode) -> Receiver {
        let hooks: Arc<Mutex<Vec<Hook>>> = Arc::default();
        let app = axum::Router::new()
            .route(
                "/services/T0/B0/hook-token",
                axum::routing::post(
                    |State((hooks, status)): State<(Arc<Mutex<Vec<Hook>>>, StatusCode)>,
                     headers: HeaderMap,
                     body: Bytes| async move {
                        hooks.lock().expect("hooks").push(Hook { headers, body });
                        (status, "receiver says no")
                    },
                ),
            )
            .with_state((hooks.clone(), status));
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind webhook");
        let addr = listener.local_addr().expect("webhook address");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            url: format!("http://{addr}/services/T0/B0/hook-token"),
            hooks,
        }
    }

    fn hooks(&self) -> Vec<Hook> {
        self.hooks.lock().expect("hooks").clone()
    }

    /// The `kind` of every message received, in order.
    fn kinds(&self) -> Vec<String> {
        self.hooks()
            .iter()
            .map(|h| h.json()["kind"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers.

fn start_time() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, 6, 30, 0)
        .single()
        .expect("valid")
}

fn email_config(server: &SmtpServer, security: SmtpSecurity) -> EmailConfig {
    EmailConfig {
        host: Some("127.0.0.1".into()),
        port: server.addr.port(),
        security,
        username: Some("bridge".into()),
        password: Some(SecretString::from(PASSWORD)),
        from: "coupa-bridge <bridge@example.com>".into(),
        to: vec!["ap@example.com".into(), "it@example.com".into()],
    }
}

fn webhook_config(receiver: &Receiver, signed: bool) -> WebhookConfig {
    WebhookConfig {
        url: Some(receiver.url.clone()),
        secret: signed.then(|| SecretString::from(WEBHOOK_SECRET)),
    }
}

fn notify_config() -> NotifyConfig {
    NotifyConfig {
        reminder_minutes: 60,
        dashboard_url: Some("https://bridge.example.com".into()),
        ..NotifyConfig::default()
    }
}

async fn memory_store() -> Store {
    Store::connect("sqlite::memory:").await.expect("store")
}

fn erp_down(why: &str) -> Result<PassReport, FlowError> {
    Err(FlowError::Erp(ErpError::Unavailable(why.into())))
}

fn ok_pass() -> Result<PassReport, FlowError> {
    Ok(PassReport::new("invoices", 1))
}

fn waiting(n: i64) -> Result<PassReport, FlowError> {
    let mut r = PassReport::new("invoices", 1);
    r.transient = (1..=n)
        .map(|i| {
            (
                1000 + i,
                format!("ERP unavailable: connection refused ({i})"),
            )
        })
        .collect();
    Ok(r)
}

fn rejected(ids: impl IntoIterator<Item = i64>) -> Result<PassReport, FlowError> {
    let mut r = PassReport::new("pay_payments", 1);
    r.rejected = ids
        .into_iter()
        .map(|i| (i, format!("unknown supplier S-{i}")))
        .collect();
    Ok(r)
}

fn verify_signature(hook: &Hook) {
    let header = hook
        .headers
        .get("x-coupa-bridge-signature")
        .and_then(|v| v.to_str().ok())
        .expect("signature header");
    let hex = header.strip_prefix("sha256=").expect("sha256= prefix");
    assert!(
        hex.len() == 64
            && hex
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
        "lowercase hex: {header}"
    );
    let bytes: Vec<u8> = (0..32)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex"))
        .collect();
    let mut mac = Hmac::<Sha256>::new_from_slice(WEBHOOK_SECRET.as_bytes()).expect("key");
    mac.update(&hook.body);
    mac.verify_slice(&bytes)
        .expect("the signature is HMAC-SHA256 of the exact body");
}

fn statuses(records: &[NotificationRecord]) -> Vec<(String, String, String)> {
    records
        .iter()
        .rev()
        .map(|n| (n.channel.clone(), n.kind.clone(), n.status.clone()))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Email.

#[tokio::test]
async fn notify_email_reaches_plain_smtp_with_envelope_subject_and_body() {
    let server = SmtpServer::start(SmtpOptions {
        auth: Some(("bridge".into(), PASSWORD.into())),
        ..SmtpOptions::default()
    })
    .await;
    let store = memory_store().await;
    let config = NotifyConfig {
        email: email_config(&server, SmtpSecurity::None),
        ..notify_config()
    };
    let clock = Arc::new(ManualClock::new(start_time()));
    let notifier = Notifier::new(&config, store.clone()).with_clock(clock.clone());

    notifier
        .after_pass(FlowName::Invoices, &erp_down("connection refused"))
        .await;

    let mails = server.mails();
    assert_eq!(mails.len(), 1, "{:?}", server.sessions());
    let mail = &mails[0];
    assert_eq!(mail.mail_from.as_deref(), Some("<bridge@example.com>"));
    assert_eq!(mail.rcpt_to, vec!["<ap@example.com>", "<it@example.com>"]);
    assert_eq!(
        mail.auth,
        Some(("bridge".into(), PASSWORD.into(), false)),
        "AUTH with the configured credentials"
    );
    assert!(!mail.tls);
    let data = mail.data.as_deref().unwrap_or_default();
    assert_eq!(
        header(data, "Subject").as_deref(),
        Some("[coupa-bridge] invoice export: ERP unavailable")
    );
    assert_eq!(
        header(data, "From").as_deref(),
        Some("coupa-bridge <bridge@example.com>")
    );
    let to = header(data, "To").unwrap_or_default();
    assert!(
        to.contains("ap@example.com") && to.contains("it@example.com"),
        "{to}"
    );
    assert!(
        header(data, "Content-Type")
            .unwrap_or_default()
            .starts_with("text/plain"),
        "{data}"
    );
    let body = mail_body(data);
    for part in [
        "invoice export",
        "the pass failed",
        "1 failed pass",
        "Since: 2026-11-21 06:30 UTC",
        "ERP: ERP unavailable: connection refused",
        "Dashboard: https://bridge.example.com",
    ] {
        assert!(body.contains(part), "body lacks {part:?}:\n{body}");
    }
    assert!(
        !data.contains(PASSWORD),
        "the password never reaches a message"
    );

    let records = store.notifications(10).await.expect("notifications");
    assert_eq!(records.len(), 1);
    let r = &records[0];
    assert_eq!(
        (
            r.channel.as_str(),
            r.kind.as_str(),
            r.status.as_str(),
            r.flow.as_str()
        ),
        ("email", "problem", "sent", "invoices")
    );
    assert_eq!(r.subject, "[coupa-bridge] invoice export: ERP unavailable");
    assert_eq!(r.error, None);
    assert_eq!(r.at, start_time());
}

#[tokio::test]
async fn notify_email_over_starttls_trusts_an_added_root_and_authenticates_inside_tls() {
    let server = SmtpServer::start(SmtpOptions {
        starttls: Some(acceptor()),
        auth: Some(("bridge".into(), PASSWORD.into())),
        ..SmtpOptions::default()
    })
    .await;
    let store = memory_store().await;
    let config = NotifyConfig {
        email: email_config(&server, SmtpSecurity::Starttls),
        ..notify_config()
    };
    let notifier = Notifier::with_email_roots(&config, store.clone(), Some(CA_PEM.as_bytes()));
    notifier
        .after_pass(FlowName::PayPayments, &erp_down("timeout"))
        .await;

    let mails = server.mails();
    assert_eq!(mails.len(), 1, "{:?}", server.sessions());
    let mail = &mails[0];
    assert!(mail.tls, "the message went over TLS");
    assert_eq!(
        mail.ehlo.len(),
        2,
        "EHLO again after STARTTLS: {:?}",
        mail.ehlo
    );
    assert_eq!(
        mail.auth,
        Some(("bridge".into(), PASSWORD.into(), true)),
        "credentials only inside TLS"
    );
    assert_eq!(
        header(mail.data.as_deref().unwrap_or_default(), "Subject").as_deref(),
        Some("[coupa-bridge] Coupa Pay export: ERP unavailable")
    );
    let records = store.notifications(10).await.expect("notifications");
    assert_eq!(
        statuses(&records),
        vec![("email".into(), "problem".into(), "sent".into())]
    );
}

#[tokio::test]
async fn notify_email_starttls_fails_without_the_root_or_without_starttls_and_sends_no_password() {
    // The server's CA is not trusted: the handshake fails, nothing is delivered.
    let server = SmtpServer::start(SmtpOptions {
        starttls: Some(acceptor()),
        auth: Some(("bridge".into(), PASSWORD.into())),
        ..SmtpOptions::default()
    })
    .await;
    let store = memory_store().await;
    let config = NotifyConfig {
        email: email_config(&server, SmtpSecurity::Starttls),
        ..notify_config()
    };
    Notifier::new(&config, store.clone())
        .after_pass(FlowName::Invoices, &erp_down("x"))
        .await;
    assert!(server.mails().is_empty());
    assert!(server.sessions().iter().all(|s| s.auth.is_none()));
    let records = store.notifications(10).await.expect("notifications");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].status, "failed");

    // A server that does not offer STARTTLS: required, so no plain-text fallback.
    let plain = SmtpServer::start(SmtpOptions {
        auth: Some(("bridge".into(), PASSWORD.into())),
        ..SmtpOptions::default()
    })
    .await;
    let store = memory_store().await;
    let config = NotifyConfig {
        email: email_config(&plain, SmtpSecurity::Starttls),
        ..notify_config()
    };
    Notifier::with_email_roots(&config, store.clone(), Some(CA_PEM.as_bytes()))
        .after_pass(FlowName::Invoices, &erp_down("x"))
        .await;
    let sessions = plain.sessions();
    assert_eq!(sessions.len(), 1, "it did connect");
    assert!(
        sessions[0].auth.is_none() && sessions[0].mail_from.is_none(),
        "{sessions:?}"
    );
    let records = store.notifications(10).await.expect("notifications");
    assert_eq!(records[0].status, "failed");
    let error = records[0].error.as_deref().unwrap_or_default();
    assert!(
        error.contains(&plain.addr.to_string()),
        "names the server: {error}"
    );
    assert!(!error.contains(PASSWORD));
}

#[tokio::test]
async fn notify_email_over_implicit_tls() {
    let server = SmtpServer::start(SmtpOptions {
        implicit_tls: Some(acceptor()),
        ..SmtpOptions::default()
    })
    .await;
    let store = memory_store().await;
    let mut email = email_config(&server, SmtpSecurity::Tls);
    email.username = None;
    email.password = None;
    let config = NotifyConfig {
        email,
        ..notify_config()
    };
    Notifier::with_email_roots(&config, store.clone(), Some(CA_PEM.as_bytes()))
        .after_pass(FlowName::Payments, &erp_down("x"))
        .await;
    let mails = server.mails();
    assert_eq!(mails.len(), 1, "{:?}", server.sessions());
    assert!(mails[0].tls);
    assert_eq!(mails[0].auth, None, "no credentials configured, no AUTH");
    assert_eq!(
        header(mails[0].data.as_deref().unwrap_or_default(), "Subject").as_deref(),
        Some("[coupa-bridge] payment push: ERP unavailable")
    );
}

#[tokio::test]
async fn notify_email_refused_with_554_is_recorded_failed_and_the_pass_goes_on() {
    let server = SmtpServer::start(SmtpOptions {
        refuse_rcpt: Some("554 5.7.1 relaying denied".into()),
        ..SmtpOptions::default()
    })
    .await;
    let receiver = Receiver::start(StatusCode::OK).await;
    let store = memory_store().await;
    let mut email = email_config(&server, SmtpSecurity::None);
    email.username = None;
    email.password = None;
    let config = NotifyConfig {
        email,
        webhook: webhook_config(&receiver, false),
        ..notify_config()
    };
    let notifier = Notifier::new(&config, store.clone());
    notifier
        .after_pass(FlowName::Invoices, &erp_down("x"))
        .await;

    assert!(server.mails().is_empty());
    let records = store.notifications(10).await.expect("notifications");
    let mut got = statuses(&records);
    got.sort();
    assert_eq!(
        got,
        vec![
            ("email".into(), "problem".into(), "failed".into()),
            ("webhook".into(), "problem".into(), "sent".into())
        ],
        "the other channel still delivers"
    );
    let failed = records
        .iter()
        .find(|r| r.channel == "email")
        .expect("email");
    let error = failed.error.as_deref().unwrap_or_default();
    assert!(error.contains("554"), "{error}");

    // The incident advanced: the next failing pass sends nothing, retries nothing.
    notifier
        .after_pass(FlowName::Invoices, &erp_down("x"))
        .await;
    assert_eq!(store.notifications(10).await.expect("list").len(), 2);
    assert_eq!(server.sessions().len(), 1, "no retry");
}

#[tokio::test]
async fn notify_email_to_a_closed_port_or_a_silent_server_fails_within_the_timeout() {
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let store = memory_store().await;
    let mut email = EmailConfig {
        host: Some("127.0.0.1".into()),
        port: closed,
        security: SmtpSecurity::None,
        from: "bridge@example.com".into(),
        to: vec!["ap@example.com".into()],
        ..EmailConfig::default()
    };
    let config = NotifyConfig {
        email: email.clone(),
        ..notify_config()
    };
    let started = Instant::now();
    Notifier::new(&config, store.clone())
        .after_pass(FlowName::Invoices, &erp_down("x"))
        .await;
    assert!(started.elapsed() < Duration::from_secs(5));
    let records = store.notifications(10).await.expect("list");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].status, "failed");
    assert!(
        records[0]
            .error
            .as_deref()
            .unwrap_or_default()
            .contains(&format!("127.0.0.1:{closed}")),
        "{:?}",
        records[0].error
    );

    let silent = SmtpServer::start(SmtpOptions {
        silent: true,
        ..SmtpOptions::default()
    })
    .await;
    email.port = silent.addr.port();
    let config = NotifyConfig {
        email,
        ..notify_config()
    };
    let store = memory_store().await;
    let started = Instant::now();
    Notifier::new(&config, store.clone())
        .with_send_timeout(Duration::from_millis(300))
        .after_pass(FlowName::Invoices, &erp_down("x"))
        .await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(300) && took < Duration::from_secs(3),
        "{took:?}"
    );
    let records = store.notifications(10).await.expect("list");
    assert_eq!(records[0].status, "failed");
    assert_eq!(
        records[0].error.as_deref(),
        Some(format!("SMTP {}: no answer within 300ms", silent.addr).as_str())
    );
}

// ---------------------------------------------------------------------------------------------
// Webhook.

#[tokio::test]
async fn notify_webhook_posts_signed_json() {
    let receiver = Receiver::start(StatusCode::NO_CONTENT).await;
    let store = memory_store().await;
    let config = NotifyConfig {
        webhook: webhook_config(&receiver, true),
        ..notify_config()
    };
    let clock = Arc::new(ManualClock::new(start_time()));
    let notifier = Notifier::new(&config, store.clone()).with_clock(clock.clone());
    notifier
        .after_pass(FlowName::Invoices, &erp_down("connection refused"))
        .await;

    let hooks = receiver.hooks();
    assert_eq!(hooks.len(), 1);
    let hook = &hooks[0];
    assert_eq!(
        hook.headers
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    verify_signature(hook);
    let json = hook.json();
    assert_eq!(json["kind"], "problem");
    assert_eq!(json["flow"], "invoices");
    assert_eq!(json["count"].as_u64(), Some(1));
    assert_eq!(json["since"], "2026-11-21T06:30:00Z");
    assert_eq!(json["detail"], "ERP: ERP unavailable: connection refused");
    assert_eq!(json["dashboard_url"], "https://bridge.example.com");
    let text = json["text"].as_str().expect("text");
    for part in [
        "invoice export",
        "ERP unavailable",
        "2026-11-21 06:30 UTC",
        "1 failed pass",
        "connection refused",
        "https://bridge.example.com",
    ] {
        assert!(text.contains(part), "text lacks {part:?}: {text}");
    }
    assert!(!text.contains('\n'), "one paragraph: {text}");
    assert!(!String::from_utf8_lossy(&hook.body).contains(WEBHOOK_SECRET));

    // Unsigned without a secret.
    let plain = Receiver::start(StatusCode::OK).await;
    let config = NotifyConfig {
        webhook: webhook_config(&plain, false),
        ..notify_config()
    };
    Notifier::new(&config, memory_store().await)
        .after_pass(FlowName::Invoices, &erp_down("x"))
        .await;
    let hooks = plain.hooks();
    assert_eq!(hooks.len(), 1);
    assert!(hooks[0].headers.get("x-coupa-bridge-signature").is_none());
    assert_eq!(
        hooks[0].json()["dashboard_url"],
        "https://bridge.example.com"
    );
}

#[tokio::test]
async fn notify_webhook_answering_500_is_recorded_failed_without_the_url() {
    let receiver = Receiver::start(StatusCode::INTERNAL_SERVER_ERROR).await;
    let store = memory_store().await;
    let config = NotifyConfig {
        webhook: webhook_config(&receiver, true),
        ..notify_config()
    };
    let notifier = Notifier::new(&config, store.clone());
    for _ in 0..5 {
        notifier
            .after_pass(FlowName::Invoices, &erp_down("x"))
            .await;
    }
    assert_eq!(receiver.hooks().len(), 1, "one attempt, no retry loop");
    let records = store.notifications(10).await.expect("list");
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].status, "failed");
    let error = records[0].error.as_deref().unwrap_or_default();
    assert!(error.contains("500"), "{error}");
    assert!(error.contains("127.0.0.1"), "names the host: {error}");
    assert!(
        !error.contains("hook-token"),
        "the URL path may be a credential: {error}"
    );
    let open = store.open_incidents().await.expect("incidents");
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].count, 5);
    assert!(open[0].last_sent_at.is_some(), "the incident advanced");
}

// ---------------------------------------------------------------------------------------------
// Grouping, on both backends.

#[tokio::test]
async fn notify_groups_failed_passes_into_one_incident() {
    each_backend("notify_groups_failed_passes", |url| async move {
        let store = Store::connect(&url).await.expect("store");
        let receiver = Receiver::start(StatusCode::OK).await;
        let config = NotifyConfig {
            webhook: webhook_config(&receiver, true),
            ..notify_config()
        };
        let clock = Arc::new(ManualClock::new(start_time()));
        let notifier = Notifier::new(&config, store.clone()).with_clock(clock.clone());

        for i in 0..50 {
            notifier
                .after_pass(FlowName::Invoices, &erp_down(&format!("refused #{i}")))
                .await;
            clock.advance(Duration::from_secs(60));
        }
        assert_eq!(
            receiver.kinds(),
            vec!["problem"],
            "50 failed passes, one message"
        );
        let open = store.open_incidents().await.expect("incidents");
        assert_eq!(open.len(), 1);
        let incident = &open[0];
        assert_eq!(
            (incident.flow.as_str(), incident.kind.as_str()),
            ("invoices", "pass-failed")
        );
        assert_eq!(incident.count, 50);
        assert_eq!(incident.detail, "ERP: ERP unavailable: refused #49");
        assert_eq!(incident.opened_at, start_time());
        assert_eq!(incident.last_sent_at, Some(start_time()));

        // Another flow's outage is its own incident.
        notifier
            .after_pass(FlowName::Payments, &erp_down("refused"))
            .await;
        assert_eq!(receiver.kinds(), vec!["problem", "problem"]);

        // Past the reminder interval (60 min since the problem message): one reminder.
        clock.advance(Duration::from_secs(11 * 60));
        notifier
            .after_pass(FlowName::Invoices, &erp_down("refused late"))
            .await;
        notifier
            .after_pass(FlowName::Invoices, &erp_down("refused later"))
            .await;
        assert_eq!(receiver.kinds(), vec!["problem", "problem", "reminder"]);
        let reminder = receiver.hooks()[2].json();
        assert_eq!(reminder["count"].as_u64(), Some(51));
        assert_eq!(reminder["since"], "2026-11-21T06:30:00Z");
        assert_eq!(reminder["detail"], "ERP: ERP unavailable: refused late");
        let text = reminder["text"].as_str().unwrap_or_default();
        assert!(
            text.contains("51 failed passes") && text.contains("1h 1m"),
            "{text}"
        );

        // A good pass: one recovery, with the duration and the total.
        clock.advance(Duration::from_secs(4 * 60));
        notifier.after_pass(FlowName::Invoices, &ok_pass()).await;
        notifier.after_pass(FlowName::Invoices, &ok_pass()).await;
        assert_eq!(
            receiver.kinds(),
            vec!["problem", "problem", "reminder", "recovered"]
        );
        let recovered = receiver.hooks()[3].json();
        assert_eq!(recovered["count"].as_u64(), Some(52));
        let text = recovered["text"].as_str().unwrap_or_default();
        assert!(
            text.contains("1h 5m") && text.contains("52 failed passes"),
            "{text}"
        );
        let open = store.open_incidents().await.expect("incidents");
        assert_eq!(open.len(), 1, "only the payment push one");
        assert_eq!(open[0].flow, "payments");

        // A later failure is a new incident with its own problem message.
        clock.advance(Duration::from_secs(60));
        notifier
            .after_pass(FlowName::Invoices, &erp_down("again"))
            .await;
        assert_eq!(
            receiver.kinds(),
            vec!["problem", "problem", "reminder", "recovered", "problem"]
        );
        let incidents = store.incidents(10).await.expect("incidents");
        let invoices: Vec<_> = incidents.iter().filter(|i| i.flow == "invoices").collect();
        assert_eq!(invoices.len(), 2);
        assert_eq!(invoices[0].count, 1);
        assert!(invoices[0].closed_at.is_none());
        assert!(invoices[1].closed_at.is_some());

        for hook in receiver.hooks() {
            verify_signature(&hook);
        }
        let records = store.notifications(100).await.expect("notifications");
        assert_eq!(records.len(), 5);
        assert!(
            records
                .iter()
                .all(|r| r.status == "sent" && r.channel == "webhook")
        );
    })
    .await;
}

#[tokio::test]
async fn notify_groups_waiting_documents_into_one_incident() {
    each_backend("notify_groups_waiting_documents", |url| async move {
        let store = Store::connect(&url).await.expect("store");
        let receiver = Receiver::start(StatusCode::OK).await;
        let config = NotifyConfig {
            webhook: webhook_config(&receiver, false),
            ..notify_config()
        };
        let clock = Arc::new(ManualClock::new(start_time()));
        let notifier = Notifier::new(&config, store.clone()).with_clock(clock.clone());

        // 20 passes leaving 500 documents each: 10,000 documents, one message.
        for _ in 0..20 {
            notifier.after_pass(FlowName::Invoices, &waiting(500)).await;
            clock.advance(Duration::from_secs(120));
        }
        assert_eq!(receiver.kinds(), vec!["problem"]);
        let problem = receiver.hooks()[0].json();
        assert_eq!(problem["count"].as_u64(), Some(500));
        assert_eq!(problem["detail"], "ERP unavailable: connection refused (1)");
        assert!(
            problem["text"]
                .as_str()
                .unwrap_or_default()
                .contains("500 documents waiting for the next pass"),
            "{problem}"
        );
        let open = store.open_incidents().await.expect("incidents");
        assert_eq!(open.len(), 1);
        assert_eq!(
            (open[0].kind.as_str(), open[0].count),
            ("documents-waiting", 10_000)
        );

        // A failed pass meanwhile opens its own incident and leaves this one open.
        notifier
            .after_pass(FlowName::Invoices, &erp_down("x"))
            .await;
        assert_eq!(receiver.kinds(), vec!["problem", "problem"]);
        // A pass with documents still waiting ends the failure but not the waiting.
        notifier.after_pass(FlowName::Invoices, &waiting(3)).await;
        assert_eq!(receiver.kinds(), vec!["problem", "problem", "recovered"]);
        assert_eq!(receiver.hooks()[2].json()["count"].as_u64(), Some(1));
        let open = store.open_incidents().await.expect("incidents");
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].kind, "documents-waiting");

        clock.advance(Duration::from_secs(30 * 60));
        notifier.after_pass(FlowName::Invoices, &waiting(2)).await;
        assert_eq!(
            receiver.kinds().last().map(String::as_str),
            Some("reminder")
        );
        assert_eq!(receiver.hooks()[3].json()["count"].as_u64(), Some(10_005));

        notifier.after_pass(FlowName::Invoices, &ok_pass()).await;
        assert_eq!(
            receiver.kinds(),
            vec!["problem", "problem", "recovered", "reminder", "recovered"]
        );
        let recovered = receiver.hooks()[4].json();
        assert_eq!(recovered["count"].as_u64(), Some(10_005));
        assert!(store.open_incidents().await.expect("incidents").is_empty());

        notifier.after_pass(FlowName::Invoices, &waiting(1)).await;
        assert_eq!(receiver.kinds().len(), 6);
        assert_eq!(receiver.kinds()[5], "problem");
    })
    .await;
}

#[tokio::test]
async fn notify_rejections_one_message_per_pass_never_repeated() {
    each_backend("notify_rejections", |url| async move {
        let store = Store::connect(&url).await.expect("store");
        let receiver = Receiver::start(StatusCode::OK).await;
        let smtp = SmtpServer::start(SmtpOptions::default()).await;
        let mut email = email_config(&smtp, SmtpSecurity::None);
        email.username = None;
        email.password = None;
        let config = NotifyConfig {
            email,
            webhook: webhook_config(&receiver, false),
            ..notify_config()
        };
        let notifier = Notifier::new(&config, store.clone());

        let mut first = rejected(1..=25);
        if let Ok(r) = &mut first {
            r.unreadable = vec!["record 3 of page 2: total is not a number".into()];
        }
        notifier.after_pass(FlowName::PayPayments, &first).await;
        assert_eq!(receiver.kinds(), vec!["rejected"]);
        let json = receiver.hooks()[0].json();
        assert_eq!(json["count"].as_u64(), Some(26));
        assert_eq!(json["flow"], "pay-payments");
        let mails = smtp.mails();
        assert_eq!(mails.len(), 1, "one email for 26 documents");
        let data = mails[0].data.clone().unwrap_or_default();
        assert_eq!(
            header(&data, "Subject").as_deref(),
            Some("[coupa-bridge] Coupa Pay export: 26 documents rejected")
        );
        let body = mail_body(&data);
        let lines: Vec<&str> = body.lines().filter(|l| l.starts_with("  - ")).collect();
        assert_eq!(lines.len(), 10, "{body}");
        assert_eq!(lines[0], "  - 1: unknown supplier S-1");
        assert!(body.contains("and 16 more"), "{body}");

        // Coupa lists the same refused payments again, plus two new ones.
        notifier
            .after_pass(FlowName::PayPayments, &rejected(1..=27))
            .await;
        assert_eq!(receiver.kinds(), vec!["rejected", "rejected"]);
        let json = receiver.hooks()[1].json();
        assert_eq!(json["count"].as_u64(), Some(2));
        let body = mail_body(&smtp.mails()[1].data.clone().unwrap_or_default());
        assert!(
            body.contains("  - 26: unknown supplier S-26")
                && body.contains("  - 27: unknown supplier S-27")
                && !body.contains("  - 1: "),
            "{body}"
        );
        assert!(body.contains("25 more rejected again"), "{body}");

        // Nothing new: no message. A new reason for a known document is news.
        notifier
            .after_pass(FlowName::PayPayments, &rejected(1..=27))
            .await;
        assert_eq!(receiver.kinds().len(), 2);
        let mut changed = rejected([]);
        if let Ok(r) = &mut changed {
            r.rejected = vec![(5, "closed period 2026-10".into())];
        }
        notifier.after_pass(FlowName::PayPayments, &changed).await;
        assert_eq!(receiver.kinds().len(), 3);
        assert_eq!(smtp.mails().len(), 3);
        // Rejections open no incident.
        assert!(store.open_incidents().await.expect("incidents").is_empty());
    })
    .await;
}

#[tokio::test]
async fn notify_restart_does_not_resend_an_open_incident() {
    each_backend("notify_restart", |url| async move {
        let receiver = Receiver::start(StatusCode::OK).await;
        let config = NotifyConfig {
            webhook: webhook_config(&receiver, false),
            ..notify_config()
        };
        let clock = Arc::new(ManualClock::new(start_time()));
        {
            let store = Store::connect(&url).await.expect("store");
            let notifier = Notifier::new(&config, store.clone()).with_clock(clock.clone());
            notifier
                .after_pass(FlowName::Invoices, &erp_down("x"))
                .await;
            store.db().close().await;
        }
        assert_eq!(receiver.kinds(), vec!["problem"]);

        clock.advance(Duration::from_secs(30 * 60));
        let store = Store::connect(&url).await.expect("store reopened");
        let notifier = Notifier::new(&config, store.clone()).with_clock(clock.clone());
        notifier
            .after_pass(FlowName::Invoices, &erp_down("x"))
            .await;
        assert_eq!(
            receiver.kinds(),
            vec!["problem"],
            "no second problem message"
        );

        // The reminder keeps the original schedule.
        clock.advance(Duration::from_secs(30 * 60));
        notifier
            .after_pass(FlowName::Invoices, &erp_down("x"))
            .await;
        assert_eq!(receiver.kinds(), vec!["problem", "reminder"]);
        assert_eq!(receiver.hooks()[1].json()["count"].as_u64(), Some(3));
    })
    .await;
}

#[tokio::test]
async fn notify_concurrent_passes_send_one_problem_message() {
    each_backend("notify_concurrent", |url| async move {
        let receiver = Receiver::start(StatusCode::OK).await;
        let config = NotifyConfig {
            webhook: webhook_config(&receiver, false),
            ..notify_config()
        };
        // Two processes' worth: separate stores (pools) on one database.
        let a = Notifier::new(&config, Store::connect(&url).await.expect("store a"));
        let b = Notifier::new(&config, Store::connect(&url).await.expect("store b"));
        let down = erp_down("x");
        let runs = (0..8).map(|i| {
            let n = if i % 2 == 0 { a.clone() } else { b.clone() };
            let down = &down;
            async move { n.after_pass(FlowName::Invoices, down).await }
        });
        futures_util::future::join_all(runs).await;
        assert_eq!(receiver.kinds(), vec!["problem"]);
        let store = Store::connect(&url).await.expect("store");
        let open = store.open_incidents().await.expect("incidents");
        assert_eq!(open.len(), 1);
        assert_eq!(open[0].count, 8);
    })
    .await;
}

#[tokio::test]
async fn notify_without_channels_keeps_incidents_and_sends_nothing() {
    let smtp = SmtpServer::start(SmtpOptions::default()).await;
    let store = memory_store().await;
    let notifier = Notifier::new(&notify_config(), store.clone());
    for _ in 0..3 {
        notifier
            .after_pass(FlowName::Invoices, &erp_down("x"))
            .await;
    }
    let open = store.open_incidents().await.expect("incidents");
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].count, 3);
    assert_eq!(open[0].last_sent_at, None);
    // A good pass (with rejections) closes it, still silently.
    notifier
        .after_pass(FlowName::Invoices, &rejected(1..=3))
        .await;
    assert!(store.open_incidents().await.expect("incidents").is_empty());
    assert_eq!(store.incidents(10).await.expect("incidents").len(), 1);
    assert!(smtp.sessions().is_empty());
    assert!(store.notifications(10).await.expect("list").is_empty());
}

#[tokio::test]
async fn notify_several_messages_of_one_pass_go_in_order_within_one_timeout() {
    let receiver = Receiver::start(StatusCode::OK).await;
    let silent = SmtpServer::start(SmtpOptions {
        silent: true,
        ..SmtpOptions::default()
    })
    .await;
    let mut email = email_config(&silent, SmtpSecurity::None);
    email.username = None;
    email.password = None;
    let config = NotifyConfig {
        email,
        webhook: webhook_config(&receiver, false),
        ..notify_config()
    };
    let store = memory_store().await;
    let notifier = Notifier::new(&config, store.clone()).with_send_timeout(Duration::from_secs(1));
    notifier
        .after_pass(FlowName::Invoices, &erp_down("x"))
        .await;

    // The pass that ends the failure leaves documents waiting and has a rejection: three
    // messages, and a dead email server costs it one timeout (1 s), not three.
    let mut pass = waiting(2);
    if let Ok(r) = &mut pass {
        r.rejected = vec![(9, "closed period".into())];
    }
    let started = Instant::now();
    notifier.after_pass(FlowName::Invoices, &pass).await;
    let took = started.elapsed();
    assert!(took < Duration::from_millis(2500), "{took:?}");
    assert_eq!(
        receiver.kinds(),
        vec!["problem", "recovered", "problem", "rejected"]
    );
    let records = store.notifications(20).await.expect("list");
    let emails: Vec<&NotificationRecord> = records
        .iter()
        .rev()
        .filter(|r| r.channel == "email")
        .collect();
    let kinds: Vec<&str> = emails.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(kinds, vec!["problem", "recovered", "problem", "rejected"]);
    assert!(emails.iter().all(|r| r.status == "failed"));
    let error = |i: usize| emails[i].error.clone().unwrap_or_default();
    assert!(error(1).contains("no answer within 1s"), "{}", error(1));
    assert!(error(2).contains("not attempted"), "{}", error(2));
    assert!(error(3).contains("not attempted"), "{}", error(3));
}
