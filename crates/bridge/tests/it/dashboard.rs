//! The dashboard over real data: passes of the three flows against the simulator, then every
//! page fetched with reqwest from the server as the daemon starts it (`web::serve` on
//! 127.0.0.1 port 0), its figures compared with the store, the ERP and the passes' reports;
//! "Retry" refused without the right CSRF token or from another origin, and acted on with it;
//! hostile text escaped. The store's dashboard queries also run on PostgreSQL.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use coupa_bridge::commands::demo::{erp_payments_for, seed_erp_from_sim, sqlite_url};
use coupa_bridge::config::Config;
use coupa_bridge::connector::Connector;
use coupa_bridge::daemon::Triggers;
use coupa_bridge::erp::NewErpPayment;
use coupa_bridge::erp::sql::SqlErp;
use coupa_bridge::flows::{FlowName, PassReport, Stop};
use coupa_bridge::store::{CallFilter, CallRecord, RunOutcome, Store};
use coupa_bridge::web::{WebState, serve};
use coupa_doc::Value;
use coupa_sim::config::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET};
use coupa_sim::{SimConfig, SimHandle};
use reqwest::StatusCode;
use reqwest::header::{HOST, LOCATION, ORIGIN};
use rust_decimal::Decimal;
use secrecy::SecretString;

/// An invoice number no ERP payment should have, written to break a page that forgets to escape.
pub const HOSTILE: &str = "<script>alert('pwned')</script>";

/// A server on a connector, as the daemon runs it.
pub struct Served {
    pub base: String,
    pub csrf: String,
    pub triggers: Triggers,
    pub connector: Arc<Connector>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// Serves the dashboard over `connector` on 127.0.0.1 port 0 until the result is dropped.
pub async fn serve_connector(connector: Connector) -> Served {
    let connector = Arc::new(connector);
    let triggers = Triggers::default();
    let state = WebState::new(connector.clone(), triggers.clone());
    let csrf = state.csrf.to_string();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("address"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(serve(listener, state, async move {
        let _ = stopped.await;
    }));
    Served {
        base,
        csrf,
        triggers,
        connector,
        _stop: stop,
    }
}

/// Text as askama writes it into a page.
pub fn html(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        match c {
            '"' => out.push_str("&#34;"),
            '&' => out.push_str("&#38;"),
            '\'' => out.push_str("&#39;"),
            '<' => out.push_str("&#60;"),
            '>' => out.push_str("&#62;"),
            c => out.push(c),
        }
    }
    out
}

struct World {
    sim: SimHandle,
    served: Served,
    http: reqwest::Client,
    invoices: PassReport,
    payments: PassReport,
    pay: PassReport,
    _dir: tempfile::TempDir,
}

fn config(sim: &SimHandle, dir: &std::path::Path) -> Config {
    let mut config = Config::default();
    config.coupa.base_url = sim.base_url();
    config.coupa.insecure_http_simulator_only = true;
    config.coupa.client_id = Some(DEFAULT_CLIENT_ID.into());
    config.coupa.client_secret = Some(SecretString::from(DEFAULT_CLIENT_SECRET));
    config.state.url = sqlite_url(&dir.join("state.db"));
    config.erp.url = sqlite_url(&dir.join("erp.db"));
    config
}

async fn connector(config: Config) -> Connector {
    let store = Store::connect(&config.state.url).await.expect("store");
    let erp = SqlErp::connect(&config.erp.url).await.expect("erp");
    Connector::with(config, store, erp, |c| {
        let mut client = c.coupa_client_config();
        client.rate = None;
        client.retry.base_delay = Duration::from_millis(5);
        client.retry.max_delay = Duration::from_millis(50);
        client
    })
    .expect("connector")
}

/// The three flows' passes, then a server over the same databases (the passes' call log is
/// flushed first, so the pages and the store agree).
async fn world() -> World {
    let dir = tempfile::tempdir().expect("temp dir");
    let sim = coupa_sim::spawn(SimConfig {
        seed: 23,
        invoices: 60,
        pay_payments: 10,
        ..SimConfig::default()
    })
    .await
    .expect("simulator");
    let config = config(&sim, dir.path());
    let passes = connector(config.clone()).await;
    seed_erp_from_sim(&passes.ledger, &sim)
        .await
        .expect("erp master data");
    let stop = Stop::never();
    let invoices = passes
        .pass(FlowName::Invoices, &stop)
        .await
        .expect("invoice pass");
    let booked = passes.ledger.invoices().await.expect("erp invoices");
    let mut batch = erp_payments_for(&booked, "API");
    let first = booked.first().expect("an invoice was booked");
    batch.push(NewErpPayment {
        payment_ref: "EVIL-1".into(),
        invoice_number: HOSTILE.into(),
        supplier_name: first.supplier_name.clone(),
        supplier_number: first.supplier_number.clone(),
        amount: Decimal::new(1_000, 2),
        currency: first.currency.clone(),
        payment_date: first.invoice_date,
        check_number: None,
        paid_in_full: false,
    });
    passes
        .ledger
        .record_payments(&batch)
        .await
        .expect("payments");
    let payments = passes
        .pass(FlowName::Payments, &stop)
        .await
        .expect("payment pass");
    let pay = passes
        .pass(FlowName::PayPayments, &stop)
        .await
        .expect("Coupa Pay pass");
    passes.close().await;

    let served = serve_connector(connector(config).await).await;
    World {
        sim,
        served,
        http: reqwest::Client::builder()
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client"),
        invoices,
        payments,
        pay,
        _dir: dir,
    }
}

impl World {
    async fn get(&self, path: &str) -> (StatusCode, String) {
        let response = self
            .http
            .get(format!("{}{path}", self.served.base))
            .send()
            .await
            .expect("request");
        let status = response.status();
        (status, response.text().await.expect("body"))
    }

    async fn page(&self, path: &str) -> String {
        let (status, body) = self.get(path).await;
        assert_eq!(status, StatusCode::OK, "GET {path}: {body}");
        assert!(body.starts_with("<!doctype html>"), "GET {path}");
        assert!(body.contains("<title>"), "GET {path}");
        assert!(
            body.contains(r#"<a href="/failures">Failures</a>"#),
            "nav on {path}"
        );
        assert!(!body.contains("<script"), "no script on {path}");
        body
    }

    fn store(&self) -> &Store {
        &self.served.connector.store
    }
}

/// `<span class="n">7</span><span class="l">documents ok</span>`: one figure of a page.
fn figure(n: impl std::fmt::Display, label: &str) -> String {
    format!(r#"<span class="n">{n}</span><span class="l">{label}</span>"#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_show_what_the_passes_did() {
    let w = world().await;
    let store = w.store();
    assert!(
        !w.invoices.rejected.is_empty() && w.invoices.exported > 0,
        "the data must have rejections and exports: {:?}",
        w.invoices
    );
    assert!(!w.payments.rejected.is_empty(), "{:?}", w.payments);

    // The overview: every pass's run, the totals, what needs attention, three charts.
    let overview = w.page("/").await;
    for report in [&w.invoices, &w.payments, &w.pay] {
        assert!(
            overview.contains(&format!(r#"<a href="/runs/{0}">#{0}</a>"#, report.run)),
            "run {} listed",
            report.run
        );
    }
    let runs = store.runs(100).await.expect("runs");
    assert_eq!(runs.len(), 3);
    let ok: u64 = runs.iter().map(|r| r.documents_ok).sum();
    let failed: u64 = runs.iter().map(|r| r.documents_failed).sum();
    let calls: u64 = runs.iter().map(|r| r.api_calls).sum();
    assert!(overview.contains(&figure(3, "runs")), "runs total");
    assert!(
        overview.contains(&figure(ok, "documents ok")),
        "ok total {ok}"
    );
    assert!(
        overview.contains(&figure(failed, "documents failed")),
        "failed total {failed}"
    );
    assert!(
        overview.contains(&figure(calls, "API calls")),
        "calls total {calls}"
    );
    let failures = w.served.connector.failures(1_000).await.expect("failures");
    assert!(!failures.is_empty());
    assert!(
        overview.contains(&format!(
            "<strong>{}</strong> documents failed",
            failures.len()
        )),
        "failures count"
    );
    let (pending, synced, erp_failed) = w
        .served
        .connector
        .ledger
        .payment_counts()
        .await
        .expect("counts");
    assert!(erp_failed >= 3, "two NO-SUCH payments and the hostile one");
    assert!(overview.contains(&format!(
        "ERP payments: {synced} synced, {pending} pending, {erp_failed} failed."
    )));
    assert_eq!(overview.matches("<svg").count(), 3, "three charts");
    assert!(overview.contains("Documents per hour") && overview.contains("429 throttled"));
    // The documents chart holds the day's documents: its "ok" bars add up to the runs' total.
    let chart = overview.split("<svg").nth(1).expect("the documents chart");
    let drawn: u64 = chart
        .split(r#"data-series="0" data-value=""#)
        .skip(1)
        .map(|s| {
            s.split('"')
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .expect("a count")
        })
        .sum();
    assert_eq!(drawn, ok, "documents ok drawn");

    // A run: its figures and each document it touched, with the reasons of failures.
    let run = w.page(&format!("/runs/{}", w.invoices.run)).await;
    let record = store
        .run(w.invoices.run)
        .await
        .expect("run")
        .expect("exists");
    assert!(run.contains(&figure(record.documents_ok, "documents ok")));
    assert!(run.contains(&figure(record.documents_failed, "documents failed")));
    assert!(run.contains(&figure(record.api_calls, "API calls")));
    let documents = store.run_documents(w.invoices.run).await.expect("docs");
    assert_eq!(
        documents.len() as u64,
        w.invoices.exported,
        "one row per exported invoice"
    );
    assert!(run.contains(&format!("Documents ({})", documents.len())));
    assert_eq!(
        run.matches(r#"<a class="mono nowrap" href="/documents/invoices/invoice:"#)
            .count(),
        documents.len()
    );
    assert!(run.contains(&format!(
        r#"<span class="badge bad">failed: {}</span>"#,
        w.invoices.rejected.len()
    )));
    let (rejected_id, reasons) = &w.invoices.rejected[0];
    assert!(
        run.contains(&html(&format!("rejected: {reasons}"))),
        "reason of invoice {rejected_id} shown"
    );

    // Unknown runs are a 404 page, not an error.
    for path in ["/runs/999999", "/runs/abc"] {
        let (status, body) = w.get(path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert!(
            body.contains("There is no run") && body.contains("<title>"),
            "{body}"
        );
    }

    // A document: its journal steps and its calls, merged in time order.
    let key = format!("invoice:{rejected_id}");
    let doc = w.page(&format!("/documents/invoices/{key}")).await;
    let history = store
        .journal_history("invoices", &key)
        .await
        .expect("history");
    let doc_calls = store
        .calls(&CallFilter {
            flow: Some("invoices".into()),
            document: Some(key.clone()),
            limit: 1_000,
            ..CallFilter::default()
        })
        .await
        .expect("calls");
    assert!(!history.is_empty() && !doc_calls.is_empty());
    assert_eq!(doc.matches(r#"<tr class="step">"#).count(), history.len());
    assert_eq!(doc.matches(r#"<tr class="call">"#).count(), doc_calls.len());
    assert!(doc.contains(&html(reasons)));
    assert!(
        doc.contains("Retry"),
        "a rejected invoice can be retried from its page"
    );
    let times: Vec<&str> = doc
        .split(r#"<td class="mono nowrap">"#)
        .skip(1)
        .filter_map(|s| s.split('<').next())
        .filter(|s| s.len() == 23 && s.starts_with("20"))
        .collect();
    assert_eq!(times.len(), history.len() + doc_calls.len());
    assert!(
        times.windows(2).all(|p| p[0] <= p[1]),
        "time order: {times:?}"
    );
    for path in ["/documents/nope/x", "/documents/invoices/invoice:0"] {
        let (status, _) = w.get(path).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
    }

    // ERP payments: counts, failed first with their reasons, hostile text escaped.
    let payments = w.page("/payments").await;
    assert!(payments.contains(&figure(erp_failed, "failed")));
    assert!(payments.contains(&figure(pending, "pending")));
    assert!(payments.contains(&figure(synced, "synced")));
    assert!(payments.contains("&#60;script&#62;alert(&#39;pwned&#39;)&#60;/script&#62;"));
    let failed_pos = payments.find("badge bad").expect("a failed payment");
    if let Some(pending_pos) = payments.find(r#"<span class="badge warn">pending"#) {
        assert!(failed_pos < pending_pos, "failed first");
    }
    let evil = w.page("/documents/payments/erp-payment:EVIL-1").await;
    assert!(evil.contains("ERP payment failed"));
    assert!(evil.contains(&html(HOSTILE)));

    // Failures: every one listed with its reason and a retry form carrying the token.
    let page = w.page("/failures").await;
    for f in &failures {
        assert!(page.contains(&html(&f.key)), "{} listed", f.key);
        assert!(page.contains(&html(&f.reason)), "reason of {}", f.key);
    }
    assert_eq!(
        page.matches(&format!(
            r#"<input type="hidden" name="csrf" value="{}">"#,
            w.served.csrf
        ))
        .count(),
        failures.len()
    );
    assert!(page.contains(&figure(failures.len(), "failures")));

    // The call log, filtered by the GET form.
    let all = w.page("/calls").await;
    let logged = store
        .calls(&CallFilter {
            limit: 100_000,
            ..CallFilter::default()
        })
        .await
        .expect("calls");
    assert_eq!(logged.len() as u64, calls, "every call is logged");
    let shown = logged.len().min(100);
    assert!(
        all.contains(&format!("{shown} calls, newest first")),
        "default limit"
    );
    assert_eq!(
        all.matches("<tr>").count(),
        shown + 1,
        "rows and the header"
    );
    let run_calls = w
        .page(&format!(
            "/calls?run={}&limit=1000&flow=&class=2xx",
            w.pay.run
        ))
        .await;
    let expected = logged
        .iter()
        .filter(|c| c.run == Some(w.pay.run) && c.status.is_some_and(|s| (200..300).contains(&s)))
        .count();
    assert!(expected > 0);
    assert!(run_calls.contains(&format!("{expected} calls, newest first")));
    assert!(run_calls.contains(r#"<option value="2xx" selected>"#));
    let (status, bad) = w.get("/calls?since=yesterday&run=x").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        bad.contains("since: &#39;yesterday&#39; is not a time"),
        "{bad}"
    );
    assert!(bad.contains("run: &#39;x&#39; is not a run number"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_needs_the_token_and_is_acted_on() {
    let w = world().await;
    let (rejected_id, _) = w.invoices.rejected[0];
    let key = format!("invoice:{rejected_id}");
    let post = |fields: Vec<(&'static str, String)>, origin: Option<String>| {
        let mut request = w
            .http
            .post(format!("{}/failures/retry", w.served.base))
            .form(&fields);
        if let Some(origin) = origin {
            request = request.header(ORIGIN, origin);
        }
        request.send()
    };
    let fields = |csrf: Option<&str>| {
        let mut f = vec![("flow", "invoices".to_owned()), ("key", key.clone())];
        if let Some(csrf) = csrf {
            f.push(("csrf", csrf.to_owned()));
        }
        f
    };
    let own_origin = w.served.base.clone();

    // The token, as a browser gets it: from the page's form.
    let page = w.page("/failures").await;
    let token = page
        .split(r#"name="csrf" value=""#)
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a form with the token");
    assert_eq!(token, w.served.csrf);

    let exported = |sim: &SimHandle| {
        let db = sim.state.db.lock();
        db.invoices
            .get(rejected_id)
            .and_then(|i| i.get("exported").and_then(Value::as_bool))
    };
    for (what, f, origin) in [
        ("no token", fields(None), None),
        (
            "a wrong token",
            fields(Some("0123abcd")),
            Some(own_origin.clone()),
        ),
        (
            "the token with one character changed",
            fields(Some(&format!("{}x", &token[..token.len() - 1]))),
            None,
        ),
        (
            "another site",
            fields(Some(token)),
            Some("http://evil.example".to_owned()),
        ),
    ] {
        let response = post(f, origin).await.expect("post");
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{what}");
        assert_eq!(exported(&w.sim), Some(true), "{what}: nothing done");
    }

    let response = post(fields(Some(token)), Some(own_origin.clone()))
        .await
        .expect("post");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|l| l.to_str().ok())
        .expect("location")
        .to_owned();
    assert!(location.starts_with("/failures?done="), "{location}");
    assert_eq!(exported(&w.sim), Some(false), "the invoice goes again");
    tokio::time::timeout(
        Duration::from_secs(5),
        w.served.triggers.triggered(FlowName::Invoices),
    )
    .await
    .expect("the invoice flow was triggered");
    let done = w.page(&location).await;
    assert!(
        done.contains(&format!(
            "invoice {rejected_id} is marked not exported in Coupa: the next pass posts it again"
        )),
        "{done}"
    );
    assert!(done.contains(r#"id="retry-done""#));

    // An ERP payment: set back to pending. The Host header may name the server differently
    // from the socket address; the origin must match the Host.
    let response = w
        .http
        .post(format!("{}/failures/retry", w.served.base))
        .header(HOST, "bridge.example:8080")
        .header(ORIGIN, "http://bridge.example:8080")
        .form(&[
            ("flow", "payments"),
            ("key", "erp-payment:EVIL-1"),
            ("csrf", token),
        ])
        .send()
        .await
        .expect("post");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let evil = w
        .served
        .connector
        .ledger
        .payments()
        .await
        .expect("payments")
        .into_iter()
        .find(|p| p.payment_ref == "EVIL-1")
        .expect("the hostile payment");
    assert_eq!(evil.sync_status, "pending");

    // What cannot be retried says why, on the page.
    let response = post(
        vec![
            ("flow", "payments".to_owned()),
            ("key", "erp-payment:EVIL-1".to_owned()),
            ("csrf", token.to_owned()),
        ],
        None,
    )
    .await
    .expect("post");
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    let location = response
        .headers()
        .get(LOCATION)
        .and_then(|l| l.to_str().ok())
        .expect("location")
        .to_owned();
    assert!(location.starts_with("/failures?error="), "{location}");
    let refused = w.page(&location).await;
    assert!(
        refused.contains("ERP payment EVIL-1 is not failed"),
        "{refused}"
    );
    let response = post(
        vec![
            ("flow", "nope".to_owned()),
            ("key", key.clone()),
            ("csrf", token.to_owned()),
        ],
        None,
    )
    .await
    .expect("post");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_installation_shows_empty_pages() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sim = coupa_sim::spawn(SimConfig {
        invoices: 0,
        pay_payments: 0,
        ..SimConfig::default()
    })
    .await
    .expect("simulator");
    let served = serve_connector(connector(config(&sim, dir.path())).await).await;
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("http client");
    let get = |path: &'static str| {
        let url = format!("{}{path}", served.base);
        let http = http.clone();
        async move {
            let response = http.get(url).send().await.expect("request");
            assert_eq!(response.status(), StatusCode::OK, "{path}");
            response.text().await.expect("body")
        }
    };
    let overview = get("/").await;
    assert!(overview.contains("Nothing needs attention."));
    assert_eq!(overview.matches("No run yet.").count(), 3);
    assert_eq!(overview.matches("No data in this period").count(), 3);
    assert!(overview.contains(&figure(0, "runs")));
    assert!(get("/failures").await.contains("No failures."));
    assert!(
        get("/payments")
            .await
            .contains("Every ERP payment is on its Coupa invoice.")
    );
    assert!(get("/calls").await.contains("0 calls, newest first"));
}

/// The aggregate SQL of the overview and the run page, on SQLite and PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_queries_agree_on_both_backends() {
    crate::pg::each_backend("dashboard_queries", |url| async move {
        let store = Store::connect(&url).await.expect("store");
        assert_eq!(store.latest_activity().await.expect("latest"), None);
        let a = store.start_run("invoices").await.expect("run");
        store
            .finish_run(
                a,
                &RunOutcome {
                    status: "partial".into(),
                    documents_ok: 5,
                    documents_failed: 2,
                    documents_skipped: 1,
                    api_calls: 4,
                    error: None,
                },
            )
            .await
            .expect("finish");
        let b = store.start_run("payments").await.expect("run");
        store
            .finish_run(
                b,
                &RunOutcome {
                    status: "failed".into(),
                    error: Some("Coupa: 503".into()),
                    ..RunOutcome::default()
                },
            )
            .await
            .expect("finish");
        let c = store.start_run("pay-payments").await.expect("run");
        for (key, step) in [
            ("invoice:1", "posted"),
            ("invoice:1", "exported"),
            ("invoice:2", "exported"),
            ("coupa-run", "opening"),
        ] {
            store
                .journal_put("invoices", key, step, "{}", Some(a))
                .await
                .expect("journal");
        }
        let now = coupa_bridge::db::now();
        let call = |status: Option<u16>, run: i64, document: Option<&str>| CallRecord {
            at: now,
            flow: "invoices".into(),
            run: Some(run),
            document: document.map(str::to_owned),
            method: "GET".into(),
            path: "/api/invoices".into(),
            status,
            duration_ms: 3,
            waited_ms: 0,
            attempt: 1,
            bytes_sent: 0,
            bytes_received: 1,
            error: None,
        };
        store
            .log_calls(&[
                call(Some(200), a, Some("invoice:1")),
                call(Some(429), a, Some("invoice:1")),
                call(Some(200), a, None),
                call(None, b, None),
            ])
            .await
            .expect("calls");

        let from = now - TimeDelta::hours(24);
        let to = now + TimeDelta::hours(1);
        let latest = store
            .latest_activity()
            .await
            .expect("latest")
            .expect("some");
        assert!(latest >= now - TimeDelta::seconds(1) && latest <= Utc::now());
        let hours = store.runs_by_hour(from, to).await.expect("runs per hour");
        let sum = |f: fn(&coupa_bridge::store::dashboard::HourRuns) -> u64| {
            hours.iter().map(f).sum::<u64>()
        };
        assert_eq!(
            (
                sum(|h| h.runs),
                sum(|h| h.runs_failed),
                sum(|h| h.documents_ok),
                sum(|h| h.documents_failed),
                sum(|h| h.documents_skipped)
            ),
            (3, 1, 5, 2, 1)
        );
        let calls = store.calls_by_hour(from, to).await.expect("calls per hour");
        assert_eq!(calls.len(), 1);
        assert_eq!(
            (
                calls[0].class("2xx"),
                calls[0].class("429"),
                calls[0].class("error")
            ),
            (2, 1, 1)
        );
        let totals = store.run_totals(from, to).await.expect("totals");
        assert_eq!(totals.runs(), 3);
        assert_eq!(totals.runs_by_status.get("failed"), Some(&1));
        assert_eq!((totals.documents_ok, totals.api_calls), (5, 4));
        assert_eq!(
            store
                .run_totals(from - TimeDelta::days(2), from)
                .await
                .expect("empty window")
                .runs(),
            0
        );
        let docs = store.run_documents(a).await.expect("documents");
        assert_eq!(
            docs.iter()
                .map(|d| (d.key.as_str(), d.step.as_str(), d.changes))
                .collect::<Vec<_>>(),
            vec![("invoice:1", "exported", 2), ("invoice:2", "exported", 1)]
        );
        let by_doc = store.run_calls_by_document(a).await.expect("by document");
        assert_eq!(by_doc.get(&Some("invoice:1".to_owned())), Some(&2));
        assert_eq!(by_doc.get(&None), Some(&1));
        let by_class = store.run_calls_by_class(a).await.expect("by class");
        assert_eq!(by_class.get("429"), Some(&1));
        let unfinished = store.unfinished_runs(10).await.expect("unfinished");
        assert_eq!(unfinished.iter().map(|r| r.id).collect::<Vec<_>>(), vec![c]);
        let flow_runs = store.flow_runs("payments", 5).await.expect("flow runs");
        assert_eq!(flow_runs.len(), 1);
        assert_eq!(flow_runs[0].error.as_deref(), Some("Coupa: 503"));
    })
    .await;
}
