//! Security, as a user would check it: TLS certificates are always verified (plain HTTP only
//! through the simulator-only switch), and known, unusual secrets (the OAuth2 client secret, the
//! SFTP password, the bearer tokens Coupa issued) appear in no output line at debug level, no
//! row of the state store or the ERP, no dashboard page and no error of a failing command, nor
//! in their base64 forms (HTTP Basic).

use std::collections::{BTreeSet, VecDeque};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use coupa_api::auth::Credentials;
use coupa_api::{Client, ClientConfig, ErrorClass, SecretString};
use coupa_bridge::commands::demo::{DemoArgs, DemoSecrets, execute_with, sqlite_url};
use coupa_bridge::db::Db;
use coupa_bridge::flows::invoice_export::Monitoring;
use coupa_sim::SimConfig;
use coupa_sim::config::{ALL_SCOPES, DEFAULT_CLIENT_ID, OAuthClient};
use coupa_sim::faults::{FaultKind, FaultRule};
use sqlx::Row;
use tokio::net::TcpListener;

use crate::dashboard::serve_connector;

/// Unusual enough that any occurrence is a leak, not a coincidence.
const CLIENT_SECRET: &str = "Kq7vZ-client-s3cret-90210-XyZ";
const SFTP_PASSWORD: &str = "Pw4tR-sftp-pa55word-31337-QqQ";
const WRONG_SECRET: &str = "Wr0ng-client-s3cret-55501-JkL";
/// Every token the simulator issues starts with this (a JWT header, `{"alg":"RS256"}`).
const TOKEN_PREFIX: &str = "eyJhbGciOiJSUzI1NiJ9.";

// ---------------------------------------------------------------------------------------------
// TLS

// The private CA's server certificate for `localhost` / 127.0.0.1, from notify.rs. The CA is in
// no trust store: a client that verifies refuses it.
use crate::notify::acceptor;

/// An HTTPS server with a certificate from an unknown CA: counts connections and completed
/// handshakes, and answers 200 to anyone who gets through (nobody should).
struct TlsServer {
    port: u16,
    connections: Arc<AtomicUsize>,
    handshakes: Arc<AtomicUsize>,
}

async fn tls_server() -> TlsServer {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port();
    let connections = Arc::new(AtomicUsize::new(0));
    let handshakes = Arc::new(AtomicUsize::new(0));
    let (c, h) = (connections.clone(), handshakes.clone());
    let acceptor = acceptor();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
            let acceptor = acceptor.clone();
            let h = h.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(socket).await {
                    h.fetch_add(1, Ordering::SeqCst);
                    use tokio::io::AsyncWriteExt;
                    let _ = tls
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]")
                        .await;
                }
            });
        }
    });
    TlsServer {
        port,
        connections,
        handshakes,
    }
}

fn quick(mut c: ClientConfig) -> ClientConfig {
    c.rate = None;
    c.retry.base_delay = Duration::from_millis(5);
    c.retry.max_delay = Duration::from_millis(20);
    c
}

fn page() -> coupa_api::query::Query {
    coupa_api::query::Query::new().limit(5)
}

/// The server's certificate does not verify: every client refuses it at once, with an error
/// that names TLS and the certificate, and does not try again; the simulator switch does not
/// change that, and neither does the binary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_certificates_are_always_verified() {
    let server = tls_server().await;
    let observer: Arc<dyn coupa_api::observe::Observer> =
        Arc::new(coupa_api::observe::Recorder::default());
    let api_key = || Credentials::ApiKey(SecretString::from("k"));
    let oauth = || Credentials::OAuth {
        client_id: DEFAULT_CLIENT_ID.into(),
        client_secret: SecretString::from(CLIENT_SECRET),
        scopes: Vec::new(),
        basic_auth: false,
    };
    for (host, credentials, switch) in [
        ("127.0.0.1", api_key(), false),
        ("localhost", api_key(), false),
        ("127.0.0.1", oauth(), false),
        ("127.0.0.1", api_key(), true),
    ] {
        let before = server.connections.load(Ordering::SeqCst);
        let mut c = quick(ClientConfig::new(
            format!("https://{host}:{}", server.port),
            credentials,
        ));
        c.insecure_http_simulator_only = switch;
        let client = Client::new(c, observer.clone()).expect("client");
        let started = Instant::now();
        let err = client
            .invoices()
            .list(page())
            .next_page()
            .await
            .expect_err("the certificate is refused");
        let text = err.to_string();
        assert!(
            text.contains("TLS") && text.contains("certificate"),
            "{host}, switch {switch}: {text}"
        );
        assert!(!text.contains(CLIENT_SECRET), "{text}");
        assert_eq!(
            err.class(),
            ErrorClass::Retryable,
            "a transport failure: {text}"
        );
        assert_eq!(
            server.connections.load(Ordering::SeqCst) - before,
            1,
            "{host}, switch {switch}: refused once, not retried ({text})"
        );
        assert!(started.elapsed() < Duration::from_secs(10));
    }
    assert_eq!(
        server.handshakes.load(Ordering::SeqCst),
        0,
        "no client completed a handshake with the untrusted certificate"
    );

    // The binary: an https:// instance needs no switch, and the bad certificate stops the sync.
    let dir = tempfile::tempdir().expect("temp dir");
    let config = write_config(
        dir.path(),
        &format!("https://127.0.0.1:{}", server.port),
        false,
        "",
    );
    let check = bridge(&["config", "check", "--config"], &config, &[]);
    assert_eq!(check.status.code(), Some(0), "{}", text(&check));
    assert!(!text(&check).contains("warning"), "{}", text(&check));
    let sync = bridge(&["sync", "invoices", "--config"], &config, &[]);
    assert!(!sync.status.success(), "{}", text(&sync));
    assert!(
        text(&sync).contains("certificate"),
        "the error names the certificate: {}",
        text(&sync)
    );
    assert_no_secret(
        &text(&sync),
        &needles(&[CLIENT_SECRET]),
        "sync over bad TLS",
    );
    assert_eq!(server.handshakes.load(Ordering::SeqCst), 0);
}

/// `http://` without the switch is refused naming it; with it, loaded with a warning.
#[test]
fn plain_http_is_refused_without_the_switch_and_warned_about_with_it() {
    let dir = tempfile::tempdir().expect("temp dir");
    let refused = write_config(dir.path(), "http://127.0.0.1:9", false, "");
    let out = bridge(&["config", "check", "--config"], &refused, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("coupa.base_url")
            && err.contains("plain http://")
            && err.contains("coupa.insecure_http_simulator_only = true")
            && err.contains("simulator only"),
        "{err}"
    );
    let switched = write_config(dir.path(), "http://127.0.0.1:9", true, "");
    let out = bridge(&["config", "check", "--config"], &switched, &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains("warning: coupa.insecure_http_simulator_only: plain HTTP"),
        "{}",
        text(&out)
    );
}

// ---------------------------------------------------------------------------------------------
// Secrets

/// A secret and the forms it could leak in: as is, and base64 (alone and as HTTP Basic's
/// `id:secret`, in both alphabets).
fn needles(secrets: &[&str]) -> Vec<String> {
    let mut out = vec![TOKEN_PREFIX.to_owned()];
    for s in secrets {
        out.push((*s).to_owned());
        for plain in [(*s).to_owned(), format!("{DEFAULT_CLIENT_ID}:{s}")] {
            out.push(STANDARD.encode(&plain));
            out.push(URL_SAFE.encode(&plain));
            out.push(URL_SAFE_NO_PAD.encode(&plain));
        }
    }
    out
}

fn assert_no_secret(haystack: &str, needles: &[String], what: &str) {
    for needle in needles {
        if let Some(at) = haystack.find(needle.as_str()) {
            let line = haystack[..at].lines().count();
            let around: String = haystack[at.saturating_sub(200)..]
                .chars()
                .take(400)
                .collect();
            panic!("{what}: {needle:?} found (line {line}): ...{around}...");
        }
    }
}

/// Every column of every row of every table of a SQLite database, as text, one line per row
/// (`table: v1 | v2 | ...`).
pub(crate) async fn dump_database(path: &Path) -> String {
    let db = Db::connect(&sqlite_url(path)).await.expect("database");
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
            .fetch_all(db.pool())
            .await
            .expect("tables");
    assert!(!tables.is_empty(), "{} has tables", path.display());
    let mut out = String::new();
    for table in tables {
        // Names from sqlite_master itself, in a test: nothing to inject.
        let columns: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT name FROM pragma_table_info('{table}') ORDER BY cid"
        )))
        .fetch_all(db.pool())
        .await
        .expect("columns");
        let select = columns
            .iter()
            .map(|c| format!("CAST(\"{c}\" AS TEXT)"))
            .collect::<Vec<_>>()
            .join(", ");
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {select} FROM \"{table}\""
        )))
        .fetch_all(db.pool())
        .await
        .expect("rows");
        for row in rows {
            let values: Vec<String> = (0..columns.len())
                .map(|i| {
                    row.try_get::<Option<String>, _>(i)
                        .expect("text")
                        .unwrap_or_default()
                })
                .collect();
            out.push_str(&format!("{table}: {}\n", values.join(" | ")));
        }
    }
    db.close().await;
    out
}

/// The binary, environment cleared but for `vars` and RUST_LOG=debug.
fn bridge(args: &[&str], config: &Path, vars: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_coupa-bridge"))
        .args(args)
        .arg(config)
        .env_clear()
        .env("RUST_LOG", "debug")
        .envs(vars.iter().copied())
        .stdin(Stdio::null())
        .output()
        .expect("the binary runs")
}

fn text(out: &Output) -> String {
    format!(
        "stdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A config file for `base_url`, with the state store and the ERP in `dir`, then `extra` lines
/// in `[coupa]`.
fn write_config(dir: &Path, base_url: &str, switch: bool, extra: &str) -> std::path::PathBuf {
    let path = dir.join(format!("config-{}.toml", next_number()));
    std::fs::write(
        &path,
        format!(
            "[coupa]\nbase_url = \"{base_url}\"\nclient_id = \"{DEFAULT_CLIENT_ID}\"\n\
             client_secret = \"{CLIENT_SECRET}\"\ninsecure_http_simulator_only = {switch}\n\
             {extra}\n[state]\nurl = \"{}\"\n\n[erp]\nurl = \"{}\"\n",
            sqlite_url(&dir.join("state.db")),
            sqlite_url(&dir.join("erp.db")),
        ),
    )
    .expect("config");
    path
}

fn next_number() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(1);
    NEXT.fetch_add(1, Ordering::SeqCst)
}

/// The whole demo as a process at debug level, with its own client secret and SFTP password:
/// neither (nor a token) is in its output or in any row of its state store or ERP.
#[test]
fn the_demo_at_debug_level_leaks_no_secret() {
    let data = tempfile::tempdir().expect("data folder");
    let out = Command::new(env!("CARGO_BIN_EXE_coupa-bridge"))
        .args([
            "demo",
            "--invoices",
            "40",
            "--pay-payments",
            "8",
            "--data-dir",
        ])
        .arg(data.path())
        .env_clear()
        .env("RUST_LOG", "debug")
        .env("COUPA_BRIDGE_DEMO_CLIENT_SECRET", CLIENT_SECRET)
        .env("COUPA_BRIDGE_DEMO_SFTP_PASSWORD", SFTP_PASSWORD)
        .stdin(Stdio::null())
        .output()
        .expect("the demo runs");
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    // The secrets were used: invoices got through OAuth2, payments through SFTP.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let figure = |section: &str, label: &str| -> u64 {
        let at = stdout
            .find(section)
            .unwrap_or_else(|| panic!("{section}: {stdout}"));
        stdout[at..]
            .lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{label} in {section}: {stdout}"))
    };
    assert!(
        figure("Invoice export", "posted to the ERP") > 0,
        "{stdout}"
    );
    assert!(
        figure("Payment push (by CSV over SFTP", "added to Coupa") > 0,
        "{stdout}"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.lines().count() > 50 && stderr.contains("DEBUG"),
        "debug logging was on: {} lines",
        stderr.lines().count()
    );
    let needles = needles(&[CLIENT_SECRET, SFTP_PASSWORD]);
    assert_no_secret(&all, &needles, "demo output");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    for db in ["state.db", "erp.db"] {
        let rows = runtime.block_on(dump_database(&data.path().join(db)));
        assert!(rows.lines().count() > 10, "{db} has rows");
        assert_no_secret(&rows, &needles, db);
    }
    // The call log holds the token requests, without their form.
    let state = runtime.block_on(dump_database(&data.path().join("state.db")));
    assert!(state.contains("/oauth2/token"), "token calls are logged");
}

/// The demo in process, so the tokens the simulator issued are known too: none of them, nor
/// the secrets, is on any dashboard page (every page linked from the overview, followed) or in
/// any row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_pages_and_stores_show_no_secret_or_token() {
    let data = tempfile::tempdir().expect("data folder");
    let demo = execute_with(
        DemoArgs {
            serve: false,
            seed: 11,
            invoices: 40,
            pay_payments: 8,
            monitoring: Monitoring::Runs,
            data_dir: Some(data.path().to_owned()),
        },
        DemoSecrets {
            client_secret: SecretString::from(CLIENT_SECRET),
            sftp_password: SecretString::from(SFTP_PASSWORD),
        },
    )
    .await
    .expect("the demo runs");
    let tokens = demo.sim.state.tokens.issued();
    assert!(!tokens.is_empty(), "the demo was issued tokens");
    let mut needles = needles(&[CLIENT_SECRET, SFTP_PASSWORD]);
    needles.extend(tokens.iter().cloned());

    let served = serve_connector(demo.connector().await.expect("connector")).await;
    let http = reqwest::Client::new();
    let mut queue: VecDeque<String> = [
        "/",
        "/failures",
        "/payments",
        "/calls",
        "/metrics",
        "/healthz",
        "/readyz",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    let mut seen = BTreeSet::new();
    let mut documents = 0;
    let mut runs = 0;
    while let Some(path) = queue.pop_front() {
        if seen.len() >= 400 || !seen.insert(path.clone()) {
            continue;
        }
        let response = http
            .get(format!("{}{path}", served.base))
            .send()
            .await
            .expect("page");
        let status = response.status();
        let body = response.text().await.expect("body");
        assert!(status.is_success(), "GET {path}: {status}");
        assert_no_secret(&body, &needles, &format!("GET {path}"));
        documents += usize::from(path.starts_with("/documents/"));
        runs += usize::from(path.starts_with("/runs/"));
        for link in body.split("href=\"").skip(1) {
            let href = link.split('"').next().unwrap_or_default();
            let href = href.replace("&#38;", "&").replace("&amp;", "&");
            if href.starts_with('/') && !href.starts_with("//") {
                queue.push_back(href);
            }
        }
    }
    assert!(
        runs > 0 && documents > 0,
        "runs {runs}, documents {documents}"
    );
    for db in ["state.db", "erp.db"] {
        let rows = dump_database(&data.path().join(db)).await;
        assert_no_secret(&rows, &needles, db);
    }
    drop(served);
    demo.sim.shutdown().await;
}

/// Failing commands at debug level: the error says what failed and shows no secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_commands_print_no_secret() {
    let sim = coupa_sim::spawn(SimConfig {
        invoices: 5,
        pay_payments: 2,
        clients: vec![OAuthClient {
            id: DEFAULT_CLIENT_ID.into(),
            secret: CLIENT_SECRET.into(),
            scopes: ALL_SCOPES.iter().map(|s| (*s).to_owned()).collect(),
        }],
        ..SimConfig::default()
    })
    .await
    .expect("simulator");
    let dir = tempfile::tempdir().expect("temp dir");
    let wrong = needles(&[CLIENT_SECRET, WRONG_SECRET]);

    // A secret Coupa refuses (invalid_client), sent in the form and as HTTP Basic.
    for basic in [false, true] {
        let config = write_config(
            dir.path(),
            &sim.base_url(),
            true,
            &format!("basic_auth = {basic}"),
        );
        let out = bridge(
            &["sync", "invoices", "--config"],
            &config,
            &[("COUPA_BRIDGE__COUPA__CLIENT_SECRET", WRONG_SECRET)],
        );
        let all = text(&out);
        assert!(!out.status.success(), "{all}");
        assert!(all.contains("invalid_client"), "the refused secret: {all}");
        assert_no_secret(
            &all,
            &wrong,
            &format!("sync with a wrong secret (basic {basic})"),
        );
        let rows = dump_database(&dir.path().join("state.db")).await;
        assert!(
            rows.contains("/oauth2/token"),
            "the refused token call is logged"
        );
        assert_no_secret(&rows, &wrong, "state store after invalid_client");
    }

    // The right secret, but every token is refused (401, a re-mint, 401 again).
    sim.state.faults.add(FaultRule {
        kind: FaultKind::ExpireTokens,
        method: None,
        path: Some("/api/".into()),
        count: None,
        rate: None,
        seed: 0,
    });
    let config = write_config(dir.path(), &sim.base_url(), true, "");
    let out = bridge(&["sync", "invoices", "--config"], &config, &[]);
    let all = text(&out);
    assert!(!out.status.success(), "{all}");
    assert!(all.contains("HTTP 401"), "the 401 path: {all}");
    let mut with_tokens = wrong.clone();
    with_tokens.extend(sim.state.tokens.issued());
    assert!(with_tokens.len() > wrong.len(), "tokens were issued");
    assert_no_secret(&all, &with_tokens, "sync with tokens refused");
    let rows = dump_database(&dir.path().join("state.db")).await;
    assert_no_secret(&rows, &with_tokens, "state store after a 401");

    // Coupa unreachable.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("address").port()
    };
    let config = write_config(dir.path(), &format!("http://127.0.0.1:{closed}"), true, "");
    let out = bridge(&["sync", "invoices", "--config"], &config, &[]);
    let all = text(&out);
    assert!(!out.status.success(), "{all}");
    assert!(
        all.contains(&format!("127.0.0.1:{closed}")),
        "names the host: {all}"
    );
    assert_no_secret(&all, &wrong, "sync with Coupa unreachable");

    // `config check` with bad values next to the secret, in the file and in the environment.
    for (extra, vars) in [
        ("timeout_secs = \"soon\"", vec![]),
        ("burst = -1\nscopes = 7", vec![]),
        (
            "",
            vec![
                ("COUPA_BRIDGE__COUPA__CLIENT_SECRET", WRONG_SECRET),
                ("COUPA_BRIDGE__COUPA__BURST", "lots"),
            ],
        ),
    ] {
        let config = write_config(dir.path(), "https://acme.coupahost.com", false, extra);
        let out = bridge(&["config", "check", "--config"], &config, &vars);
        let all = text(&out);
        assert_eq!(out.status.code(), Some(2), "{all}");
        assert!(all.contains("coupa."), "names the key: {all}");
        assert_no_secret(&all, &wrong, &format!("config check ({extra:?}, {vars:?})"));
    }
    // The secret itself of the wrong type, or broken TOML on its line.
    for bad in [
        format!(
            "[coupa]\nbase_url = \"https://a.example\"\nclient_id = \"x\"\nclient_secret = [\"{CLIENT_SECRET}\"]\n"
        ),
        format!(
            "[coupa]\nbase_url = \"https://a.example\"\nclient_id = \"x\"\nclient_secret = {CLIENT_SECRET}\n"
        ),
        format!(
            "[coupa]\nbase_url = \"https://a.example\"\nclient_id = \"x\"\nclient_secret = \"{CLIENT_SECRET}\n"
        ),
        format!(
            "[coupa]\nbase_url = \"https://a.example\"\nclient_id = \"x\"\nclient_secret = \"{CLIENT_SECRET}\" \"x\"\n"
        ),
    ] {
        let path = dir.path().join("broken.toml");
        std::fs::write(&path, &bad).expect("config");
        let out = bridge(&["config", "check", "--config"], &path, &[]);
        let all = text(&out);
        assert_eq!(out.status.code(), Some(2), "{all}");
        assert_no_secret(&all, &wrong, &format!("config check of {bad:?}"));
    }
    sim.shutdown().await;
}
