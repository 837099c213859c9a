//! The daemon's HTTP server, started as the daemon starts it (`web::serve` on a listener bound
//! to 127.0.0.1 port 0) over a Connector built on the simulator, and talked to with reqwest:
//! the server token, the health checks, `/metrics` after a real pass with Coupa throttling and
//! failing, and the ERP push endpoint.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use coupa_bridge::commands::demo::{seed_erp_from_sim, sqlite_url};
use coupa_bridge::config::Config;
use coupa_bridge::connector::Connector;
use coupa_bridge::daemon::Triggers;
use coupa_bridge::erp::sql::SqlErp;
use coupa_bridge::erp::{ErpPaymentRecord, NewErpPayment};
use coupa_bridge::flows::{FlowName, Stop};
use coupa_bridge::store::Store;
use coupa_bridge::web::{WebState, serve};
use coupa_sim::config::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET};
use coupa_sim::faults::{FaultKind, FaultRule};
use coupa_sim::{SimConfig, SimHandle};
use reqwest::StatusCode;
use rust_decimal::Decimal;
use secrecy::SecretString;
use serde_json::Value;

const TOKEN: &str = "tkn-9f2c4e81-very-secret";

/// A running server over a Connector on the simulator, with the databases in `dir`.
struct App {
    base: String,
    http: reqwest::Client,
    connector: Arc<Connector>,
    triggers: Triggers,
    sim: SimHandle,
    dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn spawn_app(token: Option<&str>, sim_config: SimConfig) -> App {
    let dir = tempfile::tempdir().expect("temp dir");
    let sim = coupa_sim::spawn(sim_config).await.expect("simulator");
    let mut config = Config::default();
    config.coupa.base_url = sim.base_url();
    config.coupa.insecure_http_simulator_only = true;
    config.coupa.client_id = Some(DEFAULT_CLIENT_ID.into());
    config.coupa.client_secret = Some(SecretString::from(DEFAULT_CLIENT_SECRET));
    config.state.url = sqlite_url(&dir.path().join("state.db"));
    config.erp.url = sqlite_url(&dir.path().join("erp.db"));
    config.server.token = token.map(SecretString::from);
    let store = Store::connect(&config.state.url).await.expect("store");
    let erp = SqlErp::connect(&config.erp.url).await.expect("erp");
    seed_erp_from_sim(&erp, &sim)
        .await
        .expect("erp master data");
    let connector = Connector::with(config, store, erp, |c| {
        let mut client = c.coupa_client_config();
        client.rate = None;
        client.retry.base_delay = Duration::from_millis(5);
        client.retry.max_delay = Duration::from_millis(50);
        client
    })
    .expect("connector");
    let connector = Arc::new(connector);
    let triggers = Triggers::default();
    let state = WebState::new(connector.clone(), triggers.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(listener, state, async move {
        let _ = stopped.await;
    }));
    App {
        base,
        http: reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("http client"),
        connector,
        triggers,
        sim,
        dir,
        _stop: stop,
    }
}

fn small_sim() -> SimConfig {
    SimConfig {
        invoices: 5,
        pay_payments: 0,
        ..SimConfig::default()
    }
}

impl App {
    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.http.get(format!("{}{path}", self.base))
    }

    fn post_json(&self, body: impl Into<reqwest::Body>) -> reqwest::RequestBuilder {
        self.http
            .post(format!("{}/api/erp/payments", self.base))
            .header("content-type", "application/json")
            .body(body)
    }

    /// Posts `body` with the token (when the app has one) and returns status and JSON answer.
    async fn push(&self, body: &str) -> (StatusCode, Value) {
        let resp = self
            .post_json(body.to_owned())
            .bearer_auth(TOKEN)
            .send()
            .await
            .expect("push answered");
        let status = resp.status();
        let json = resp.json::<Value>().await.expect("JSON answer");
        (status, json)
    }
}

async fn text(resp: reqwest::Response) -> (StatusCode, String) {
    let status = resp.status();
    (status, resp.text().await.expect("body"))
}

#[tokio::test]
async fn without_a_token_every_page_is_open() {
    let app = spawn_app(None, small_sim()).await;
    let (status, body) = text(app.get("/healthz").send().await.expect("healthz")).await;
    assert_eq!((status, body.trim()), (StatusCode::OK, "ok"));
    let (status, body) = text(app.get("/readyz").send().await.expect("readyz")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let resp = app.get("/metrics").send().await.expect("metrics");
    assert_eq!(resp.status(), StatusCode::OK);
    let (status, json) = app.push("[]").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(json["accepted"], 0);
}

#[tokio::test]
async fn with_a_token_every_page_but_health_needs_it() {
    let app = spawn_app(Some(TOKEN), small_sim()).await;
    let mut bodies = Vec::new();
    for path in ["/metrics", "/", "/no-such-page"] {
        let resp = app.get(path).send().await.expect("answer");
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(
            resp.headers()
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok()),
            Some("Basic realm=\"coupa-bridge\""),
            "{path}"
        );
        bodies.push(resp.text().await.expect("body"));
    }
    for wrong in [
        "Bearer tkn",
        "Bearer not-the-token",
        "Token tkn-9f2c4e81-very-secret",
    ] {
        let resp = app
            .get("/metrics")
            .header("authorization", wrong)
            .send()
            .await
            .expect("answer");
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{wrong}");
        bodies.push(resp.text().await.expect("body"));
    }
    let wrong_basic = app
        .get("/metrics")
        .basic_auth(TOKEN, Some("guess"))
        .send()
        .await
        .expect("answer");
    assert_eq!(wrong_basic.status(), StatusCode::UNAUTHORIZED);
    let unauthenticated_push = app.post_json("[]").send().await.expect("push answered");
    assert_eq!(unauthenticated_push.status(), StatusCode::UNAUTHORIZED);
    bodies.push(unauthenticated_push.text().await.expect("body"));

    let bearer = app
        .get("/metrics")
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("answer");
    assert_eq!(bearer.status(), StatusCode::OK);
    bodies.push(bearer.text().await.expect("body"));
    let basic = app
        .get("/metrics")
        .basic_auth("prometheus", Some(TOKEN))
        .send()
        .await
        .expect("answer");
    assert_eq!(basic.status(), StatusCode::OK);
    bodies.push(basic.text().await.expect("body"));
    let (status, json) = app.push("[]").await;
    assert_eq!(status, StatusCode::OK, "{json}");

    for path in ["/healthz", "/readyz"] {
        let (status, body) = text(app.get(path).send().await.expect("answer")).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        bodies.push(body);
    }
    for body in &bodies {
        assert!(!body.contains(TOKEN), "the token is echoed: {body}");
    }
}

#[tokio::test]
async fn readiness_follows_the_databases() {
    let app = spawn_app(None, small_sim()).await;
    let (status, body) = text(app.get("/readyz").send().await.expect("readyz")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, "state store: ok\nERP: ok\n");

    app.connector.ledger.db().close().await;
    let (status, body) = text(app.get("/readyz").send().await.expect("readyz")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body, "state store: ok\nERP: unavailable\n");
    // Alive all the same.
    let resp = app.get("/healthz").send().await.expect("healthz");
    assert_eq!(resp.status(), StatusCode::OK);

    // The ERP being down, a push claims nothing and records nothing.
    let (status, json) = app.push(&batch(&[good_row("DOWN-1", "10.00")])).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{json}");
    assert!(json.get("accepted").is_none(), "{json}");
    assert!(
        json["error"]
            .as_str()
            .is_some_and(|e| e.contains("nothing was recorded")),
        "{json}"
    );
    let reopened = SqlErp::connect(&sqlite_url(&app.dir.path().join("erp.db")))
        .await
        .expect("erp");
    assert!(reopened.payments().await.expect("rows").is_empty());
    assert!(
        tokio::time::timeout(
            Duration::from_millis(200),
            app.triggers.triggered(FlowName::Payments)
        )
        .await
        .is_err(),
        "nothing recorded, no pass triggered"
    );

    app.connector.store.db().close().await;
    let (status, body) = text(app.get("/readyz").send().await.expect("readyz")).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body, "state store: unavailable\nERP: unavailable\n");
}

/// One sample of the exposition: metric name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses the text format strictly: every line is `# HELP`, `# TYPE` or
/// `name{label="value",...} number`; panics naming the line otherwise.
fn parse_exposition(text: &str) -> (Vec<Sample>, BTreeMap<String, String>) {
    let mut samples = Vec::new();
    let mut types = BTreeMap::new();
    let mut helps = Vec::new();
    let is_name = |s: &str| {
        !s.is_empty()
            && s.chars()
                .enumerate()
                .all(|(i, c)| c.is_ascii_alphabetic() || c == '_' || (i > 0 && c.is_ascii_digit()))
    };
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP has text");
            assert!(is_name(name) && !help.is_empty(), "{line}");
            helps.push(name.to_owned());
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE has a kind");
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            assert!(
                helps.last().is_some_and(|h| h == name),
                "no HELP before {line}"
            );
            types.insert(name.to_owned(), kind.to_owned());
            continue;
        }
        assert!(
            !line.starts_with('#') && !line.is_empty(),
            "stray line {line:?}"
        );
        let (series, value) = line.rsplit_once(' ').expect("sample has a value");
        let value: f64 = match value {
            "+Inf" => f64::INFINITY,
            v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
        };
        let (name, labels) = match series.split_once('{') {
            None => (series, BTreeMap::new()),
            Some((name, rest)) => {
                let inner = rest.strip_suffix('}').expect("labels close");
                let mut labels = BTreeMap::new();
                // The values here never hold commas or quotes.
                for pair in inner.split(',') {
                    let (k, v) = pair.split_once('=').expect("label has a value");
                    assert!(is_name(k), "{line}");
                    let v = v
                        .strip_prefix('"')
                        .and_then(|v| v.strip_suffix('"'))
                        .unwrap_or_else(|| panic!("unquoted label in {line}"));
                    labels.insert(k.to_owned(), v.to_owned());
                }
                (name, labels)
            }
        };
        assert!(is_name(name), "{line}");
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .filter(|f| types.get(*f).is_some_and(|k| k == "histogram"))
            .unwrap_or(name);
        assert!(types.contains_key(family), "sample before its TYPE: {line}");
        samples.push(Sample {
            name: name.to_owned(),
            labels,
            value,
        });
    }
    (samples, types)
}

fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples
        .iter()
        .find(|s| {
            s.name == name
                && s.labels.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
}

type Labels = Vec<(String, String)>;

/// Checks every histogram: buckets cumulative in `le` order, ending at +Inf equal to _count.
fn check_histograms(samples: &[Sample], types: &BTreeMap<String, String>) {
    for (family, _) in types.iter().filter(|(_, k)| *k == "histogram") {
        // Labels but `le` -> (le, cumulative count) per bucket.
        let mut series: BTreeMap<Labels, Vec<(f64, f64)>> = BTreeMap::new();
        for s in samples
            .iter()
            .filter(|s| s.name == format!("{family}_bucket"))
        {
            let le = s.labels.get("le").expect("bucket has le");
            let le: f64 = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().expect("numeric le")
            };
            let key = s
                .labels
                .iter()
                .filter(|(k, _)| *k != "le")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            series.entry(key).or_default().push((le, s.value));
        }
        assert!(!series.is_empty(), "{family} has no buckets");
        for (labels, buckets) in series {
            let bounds: Vec<f64> = buckets.iter().map(|b| b.0).collect();
            assert!(
                bounds.windows(2).all(|w| w[0] < w[1]),
                "{family}{labels:?} buckets out of order"
            );
            assert!(
                buckets.windows(2).all(|w| w[0].1 <= w[1].1),
                "{family}{labels:?} buckets not cumulative"
            );
            assert_eq!(bounds.last().copied(), Some(f64::INFINITY));
            let label_refs: Vec<(&str, &str)> = labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let count = value(samples, &format!("{family}_count"), &label_refs);
            assert_eq!(count, buckets.last().map(|b| b.1), "{family}{labels:?}");
            assert!(value(samples, &format!("{family}_sum"), &label_refs).is_some());
        }
    }
}

#[tokio::test]
async fn metrics_count_a_pass_against_coupa_throttling_and_failing() {
    let app = spawn_app(
        Some(TOKEN),
        SimConfig {
            invoices: 40,
            pay_payments: 0,
            ..SimConfig::default()
        },
    )
    .await;
    // The first matching rule wins and is dropped when spent: three 429s, then one 503.
    let rule = |kind| FaultRule {
        kind,
        method: Some("GET".into()),
        path: Some("/api/invoices".into()),
        count: None,
        rate: None,
        seed: 0,
    };
    app.sim.state.faults.add(FaultRule {
        count: Some(3),
        ..rule(FaultKind::TooManyRequests { retry_after: None })
    });
    app.sim.state.faults.add(FaultRule {
        count: Some(1),
        ..rule(FaultKind::Status { status: 503 })
    });

    let report = app
        .connector
        .pass(FlowName::Invoices, &Stop::never())
        .await
        .expect("the pass ends");
    assert!(report.exported > 0, "{report:?}");
    assert!(
        app.sim.state.faults.rules().is_empty(),
        "every fault was served"
    );

    let resp = app
        .get("/metrics")
        .bearer_auth(TOKEN)
        .send()
        .await
        .expect("metrics");
    assert_eq!(resp.status(), StatusCode::OK);
    let content_type = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let body = resp.text().await.expect("body");
    let (samples, types) = parse_exposition(&body);
    for (name, kind) in [
        ("coupa_bridge_documents_total", "counter"),
        ("coupa_bridge_passes_total", "counter"),
        ("coupa_bridge_pass_duration_seconds", "histogram"),
        ("coupa_bridge_last_pass_timestamp_seconds", "gauge"),
        ("coupa_bridge_api_calls_total", "counter"),
        ("coupa_bridge_api_throttled_total", "counter"),
        ("coupa_bridge_api_retries_total", "counter"),
        ("coupa_bridge_rate_wait_seconds_total", "counter"),
        ("coupa_bridge_api_call_duration_seconds", "histogram"),
    ] {
        assert_eq!(types.get(name).map(String::as_str), Some(kind), "{name}");
    }
    check_histograms(&samples, &types);

    let docs = |outcome: &str| {
        value(
            &samples,
            "coupa_bridge_documents_total",
            &[("flow", "invoices"), ("outcome", outcome)],
        )
    };
    assert_eq!(docs("ok"), Some(report.ok() as f64));
    assert_eq!(docs("rejected"), Some(report.rejected.len() as f64));
    assert_eq!(docs("unreadable"), Some(report.unreadable.len() as f64));
    assert_eq!(docs("waiting"), Some(report.transient.len() as f64));
    let status = if report.transient.is_empty() {
        "succeeded"
    } else {
        "partial"
    };
    assert_eq!(
        value(
            &samples,
            "coupa_bridge_passes_total",
            &[("flow", "invoices"), ("status", status)]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &samples,
            "coupa_bridge_pass_duration_seconds_count",
            &[("flow", "invoices")]
        ),
        Some(1.0)
    );
    assert!(
        value(
            &samples,
            "coupa_bridge_last_pass_timestamp_seconds",
            &[("flow", "invoices")]
        )
        .is_some_and(|t| t > 1.7e9)
    );

    let calls: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.name == "coupa_bridge_api_calls_total")
        .collect();
    for s in &calls {
        let endpoint = &s.labels["endpoint"];
        assert!(
            !endpoint.contains('?')
                && endpoint
                    .split('/')
                    .all(|seg| seg.is_empty() || !seg.bytes().all(|b| b.is_ascii_digit())),
            "endpoint not normalised: {endpoint}"
        );
        assert!(
            ["2xx", "3xx", "4xx", "429", "5xx", "error"].contains(&s.labels["status"].as_str()),
            "{:?}",
            s.labels
        );
    }
    let call = |endpoint: &str, method: &str, status: &str| {
        value(
            &samples,
            "coupa_bridge_api_calls_total",
            &[
                ("endpoint", endpoint),
                ("method", method),
                ("status", status),
            ],
        )
    };
    assert_eq!(call("/api/invoices", "GET", "429"), Some(3.0));
    assert_eq!(call("/api/invoices", "GET", "5xx"), Some(1.0));
    assert!(call("/api/invoices", "GET", "2xx").is_some_and(|n| n >= 1.0));
    assert!(call("/oauth2/token", "POST", "2xx").is_some_and(|n| n >= 1.0));
    assert!(
        calls
            .iter()
            .any(|s| s.labels["endpoint"] == "/api/invoices/{id}"),
        "per-invoice calls are counted under /api/invoices/{{id}}"
    );

    let throttled = value(&samples, "coupa_bridge_api_throttled_total", &[]);
    assert_eq!(throttled, Some(app.sim.state.stats.throttled() as f64));
    assert_eq!(throttled, Some(3.0));
    assert!(
        value(&samples, "coupa_bridge_api_retries_total", &[]).is_some_and(|n| n >= 4.0),
        "three 429s and a 503 are retried"
    );
    assert!(value(&samples, "coupa_bridge_rate_wait_seconds_total", &[]).is_some());
    // Every attempt is timed once.
    let attempts: f64 = calls.iter().map(|s| s.value).sum();
    assert_eq!(
        value(
            &samples,
            "coupa_bridge_api_call_duration_seconds_count",
            &[]
        ),
        Some(attempts)
    );
    assert_eq!(attempts, app.sim.state.stats.total_calls() as f64);
}

fn good_row(payment_ref: &str, amount: &str) -> String {
    format!(
        r#"{{"payment_ref": "{payment_ref}", "invoice_number": "INV-{payment_ref}",
            "supplier_number": "SUP-1", "amount": "{amount}", "currency": "USD",
            "payment_date": "2026-03-31"}}"#
    )
}

fn batch(rows: &[String]) -> String {
    format!("[{}]", rows.join(",\n"))
}

fn new_payment(payment_ref: &str, amount: Decimal) -> NewErpPayment {
    NewErpPayment {
        payment_ref: payment_ref.into(),
        invoice_number: format!("INV-{payment_ref}"),
        supplier_name: None,
        supplier_number: Some("SUP-1".into()),
        amount,
        currency: "USD".into(),
        payment_date: chrono::NaiveDate::from_ymd_opt(2026, 3, 31).expect("date"),
        check_number: None,
        paid_in_full: false,
    }
}

fn statuses(answer: &Value) -> Vec<(String, String)> {
    answer["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| {
            (
                r["payment_ref"].as_str().unwrap_or("-").to_owned(),
                r["status"].as_str().expect("status").to_owned(),
            )
        })
        .collect()
}

fn errors(answer: &Value, index: usize) -> Vec<String> {
    answer["results"][index]["errors"]
        .as_array()
        .map(|e| {
            e.iter()
                .map(|s| s.as_str().expect("error text").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

async fn rows(app: &App) -> Vec<ErpPaymentRecord> {
    app.connector.ledger.payments().await.expect("erp rows")
}

#[tokio::test]
async fn the_push_endpoint_records_good_rows_and_names_every_bad_one() {
    let app = spawn_app(Some(TOKEN), small_sim()).await;
    let before = app
        .connector
        .ledger
        .record_payments(&[
            new_payment("OLD-1", Decimal::new(5000, 2)),
            new_payment("OLD-2", Decimal::new(5000, 2)),
        ])
        .await
        .expect("recorded by a clerk");

    let body = format!(
        r#"{{"payments": [
{},
{},
{{"payment_ref": "P-3", "invoice_number": "INV-3", "supplier_name": "Acme", "amount": 1234.50,
  "currency": "EUR", "payment_date": "2026-04-01", "check_number": "100200",
  "paid_in_full": true}},
{},
{{"payment_ref": "P-5", "supplier_number": "SUP-1", "amount": "1.00", "currency": "USD",
  "payment_date": "2026-03-31"}},
{{"payment_ref": "P-6", "invoice_number": "INV-6", "supplier_number": "SUP-1", "amount": "1.00",
  "currency": "USD", "payment_date": "2026-03-31", "memo": "thanks"}},
{},
{},
{}
]}}"#,
        good_row("P-1", "100.00"),
        good_row("P-2", "abc"),
        good_row("P-4", "7.00").replace("2026-03-31", "2026-02-30"),
        good_row("P-1", "100.00"),
        good_row("OLD-1", "50.0"),
        good_row("OLD-2", "60.00"),
    );
    let (status, answer) = app.push(&body).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        statuses(&answer),
        [
            ("P-1", "recorded"),
            ("P-2", "rejected"),
            ("P-3", "recorded"),
            ("P-4", "rejected"),
            ("P-5", "rejected"),
            ("P-6", "rejected"),
            ("P-1", "rejected"),
            ("OLD-1", "already-recorded"),
            ("OLD-2", "rejected"),
        ]
        .map(|(r, s)| (r.to_owned(), s.to_owned()))
    );
    assert_eq!(
        (answer["accepted"].as_u64(), answer["rejected"].as_u64()),
        (Some(3), Some(6))
    );
    assert_eq!(errors(&answer, 0), Vec::<String>::new());
    assert_eq!(
        errors(&answer, 1),
        ["payments[1].amount: invalid decimal \"abc\""]
    );
    assert_eq!(
        errors(&answer, 3),
        ["payments[3].payment_date: \"2026-02-30\" is not a date (YYYY-MM-DD)"]
    );
    assert_eq!(errors(&answer, 4), ["payments[4].invoice_number: missing"]);
    assert_eq!(errors(&answer, 5), ["payments[5].memo: unknown field"]);
    assert_eq!(
        errors(&answer, 6),
        ["payments[6].payment_ref: \"P-1\" appears earlier in this request, at payments[0]"]
    );
    assert_eq!(answer["results"][7]["id"].as_i64(), Some(before[0]));
    let conflict = errors(&answer, 8);
    assert_eq!(conflict.len(), 1);
    assert!(
        conflict[0].starts_with("payments[8].payment_ref:")
            && conflict[0].contains("another amount (50.00, not 60.00)"),
        "{conflict:?}"
    );

    let recorded = rows(&app).await;
    assert_eq!(recorded.len(), 4, "{recorded:?}");
    let p1 = &recorded[2];
    let p3 = &recorded[3];
    assert_eq!(answer["results"][0]["id"].as_i64(), Some(p1.id));
    assert_eq!(answer["results"][2]["id"].as_i64(), Some(p3.id));
    assert_eq!(
        (
            p1.payment_ref.as_str(),
            p1.amount.as_str(),
            p1.sync_status.as_str()
        ),
        ("P-1", "100.00", "pending")
    );
    assert_eq!(
        (
            p3.payment_ref.as_str(),
            p3.invoice_number.as_str(),
            p3.supplier_name.as_deref(),
            p3.amount.as_str(),
            p3.currency.as_str(),
            p3.payment_date.as_str(),
            p3.check_number.as_deref(),
            p3.paid_in_full,
            p3.sync_status.as_str()
        ),
        (
            "P-3",
            "INV-3",
            Some("Acme"),
            "1234.50",
            "EUR",
            "2026-04-01",
            Some("100200"),
            true,
            "pending"
        )
    );
    tokio::time::timeout(
        Duration::from_secs(5),
        app.triggers.triggered(FlowName::Payments),
    )
    .await
    .expect("the payment push was triggered");

    // Delivered again: the same rows, already recorded, nothing new, no pass needed.
    let (status, again) = app.push(&body).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    let expected: Vec<(String, String)> = statuses(&answer)
        .into_iter()
        .map(|(r, s)| {
            let s = if s == "recorded" {
                "already-recorded".into()
            } else {
                s
            };
            (r, s)
        })
        .collect();
    assert_eq!(statuses(&again), expected);
    assert_eq!(again["results"][0]["id"].as_i64(), Some(p1.id));
    assert_eq!(again["results"][2]["id"].as_i64(), Some(p3.id));
    assert_eq!(rows(&app).await, recorded);
    assert!(
        tokio::time::timeout(
            Duration::from_millis(200),
            app.triggers.triggered(FlowName::Payments)
        )
        .await
        .is_err(),
        "a re-delivery triggers no pass"
    );
}

#[tokio::test]
async fn the_push_endpoint_refuses_bodies_it_cannot_read() {
    let app = spawn_app(None, small_sim()).await;

    let (status, answer) = app
        .push("[\n  {\"payment_ref\": \"X\",\n   \"amount\": }\n]")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
    assert_eq!(answer["line"].as_u64(), Some(3), "{answer}");
    let column = answer["column"].as_u64().expect("column");
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains(&format!("line 3 column {column}"))),
        "{answer}"
    );

    for (shape, says) in [
        (r#"{"rows": []}"#, "unknown top-level field \"rows\""),
        (r#"{"payments": {}}"#, "payments must be an array"),
        (r#""hello""#, "expected an array of payments"),
    ] {
        let (status, answer) = app.push(shape).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{shape}");
        assert!(
            answer["error"].as_str().is_some_and(|e| e.contains(says)),
            "{shape}: {answer}"
        );
    }

    let too_many = format!("[{}]", vec!["{}"; 10_001].join(","));
    let (status, answer) = app.push(&too_many).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{answer}");
    assert!(
        answer["error"]
            .as_str()
            .is_some_and(|e| e.contains("10001 payments") && e.contains("10000")),
        "{answer}"
    );

    let huge = format!("[\"{}\"]", "x".repeat(6 * 1024 * 1024));
    let resp = app.post_json(huge).send().await.expect("answered");
    assert_eq!(resp.status(), StatusCode::PAYLOAD_TOO_LARGE);

    let resp = app
        .http
        .post(format!("{}/api/erp/payments", app.base))
        .header("content-type", "text/plain")
        .body(batch(&[good_row("P-1", "1.00")]))
        .send()
        .await
        .expect("answered");
    assert_eq!(resp.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    assert!(rows(&app).await.is_empty(), "nothing was recorded");
    assert!(
        tokio::time::timeout(
            Duration::from_millis(200),
            app.triggers.triggered(FlowName::Payments)
        )
        .await
        .is_err()
    );
}
