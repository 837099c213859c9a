//! The dashboard in a real browser: headless Chromium driven through chromedriver's W3C
//! WebDriver HTTP API (plain reqwest, no WebDriver crate), over the data `coupa-bridge demo`
//! leaves. Each page is loaded and checked for what matters (counts, a failure's reason, the
//! charts), "Retry" is pressed on a rejected invoice and the confirmation read, the calls
//! filter form is submitted, and a screenshot of each page is saved under
//! `<CARGO_TARGET_TMPDIR>/browser/`.
//!
//! Needs `/usr/bin/chromium` and `chromedriver`: without them the test says SKIPPED, unless
//! `CI=true`, where it fails (CI installs them).

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use coupa_bridge::commands::demo::{DemoArgs, execute};
use coupa_bridge::flows::invoice_export::Monitoring;
use coupa_doc::Value as CoupaValue;
use serde_json::{Value, json};

use crate::dashboard::serve_connector;

const CHROMIUM: &str = "/usr/bin/chromium";
/// The W3C name of an element reference in WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// `chromedriver` on the PATH, if any.
fn chromedriver() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("chromedriver"))
        .find(|p| p.is_file())
}

/// A chromedriver process on a free loopback port, killed on drop (after ending the session it
/// holds, so Chromium exits with it).
struct Driver {
    child: Child,
    url: String,
    port: u16,
    session: Option<String>,
}

impl Driver {
    async fn start(binary: &Path) -> Driver {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(binary)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
            port,
            session: None,
        };
        let http = client();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = match http.get(format!("{}/status", driver.url)).send().await {
                Ok(r) => r
                    .json::<Value>()
                    .await
                    .ok()
                    .and_then(|v| v["value"]["ready"].as_bool())
                    .unwrap_or(false),
                Err(_) => false,
            };
            if ready {
                return driver;
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver not ready on port {port} after 30 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Drop cannot await: a raw blocking DELETE, so Chromium is closed by its driver rather
        // than left behind when a test fails half-way.
        if let Some(session) = self.session.take()
            && let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port))
        {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = write!(
                stream,
                "DELETE /session/{session} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let mut answer = Vec::new();
            let _ = stream.read_to_end(&mut answer);
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("http client")
}

/// One browser session.
struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:<port>/session/<id>`.
    session: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn open(driver: &mut Driver) -> Browser {
        let profile = tempfile::tempdir().expect("a profile folder");
        let http = client();
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--no-first-run".to_owned(),
            "--window-size=1280,1600".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
        ];
        let answer = call(
            &http,
            reqwest::Method::POST,
            &format!("{}/session", driver.url),
            Some(json!({
                "capabilities": {"alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
                }}
            })),
        )
        .await;
        let id = answer["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session id in {answer}"))
            .to_owned();
        driver.session = Some(id.clone());
        Browser {
            http,
            session: format!("{}/session/{id}", driver.url),
            _profile: profile,
        }
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        call(
            &self.http,
            reqwest::Method::POST,
            &format!("{}{path}", self.session),
            Some(body),
        )
        .await
    }

    async fn get(&self, path: &str) -> Value {
        call(
            &self.http,
            reqwest::Method::GET,
            &format!("{}{path}", self.session),
            None,
        )
        .await
    }

    async fn goto(&self, url: &str) {
        self.post("/url", json!({ "url": url })).await;
    }

    async fn url(&self) -> String {
        self.get("/url")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    async fn title(&self) -> String {
        self.get("/title")
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The elements `css` selects, as WebDriver references.
    async fn all(&self, css: &str) -> Vec<String> {
        let found = self
            .post(
                "/elements",
                json!({ "using": "css selector", "value": css }),
            )
            .await;
        found
            .as_array()
            .map(|a| a.iter().filter_map(element_id).collect())
            .unwrap_or_default()
    }

    async fn find(&self, css: &str) -> String {
        self.all(css)
            .await
            .into_iter()
            .next()
            .unwrap_or_else(|| panic!("no element matches {css}"))
    }

    /// The first element `css` selects, waiting for it: a click that submits a form or follows
    /// a link may return before the next page is there.
    async fn wait_for(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(element) = self.all(css).await.into_iter().next() {
                return element;
            }
            assert!(
                Instant::now() < deadline,
                "no element matches {css} after 15 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the address holds `part`: the form's GET has landed.
    async fn wait_for_url(&self, part: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while !self.url().await.contains(part) {
            assert!(
                Instant::now() < deadline,
                "the address never held {part}: {}",
                self.url().await
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn text(&self, css: &str) -> String {
        let element = self.find(css).await;
        self.text_of(&element).await
    }

    async fn text_of(&self, element: &str) -> String {
        self.get(&format!("/element/{element}/text"))
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    async fn attribute(&self, element: &str, name: &str) -> String {
        self.get(&format!("/element/{element}/attribute/{name}"))
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.post(&format!("/element/{element}/click"), json!({}))
            .await;
    }

    async fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        self.post(&format!("/element/{element}/clear"), json!({}))
            .await;
        self.post(
            &format!("/element/{element}/value"),
            json!({ "text": text }),
        )
        .await;
    }

    /// Saves what the window shows as `<dir>/<name>.png`.
    async fn screenshot(&self, dir: &Path, name: &str) -> PathBuf {
        let encoded = self.get("/screenshot").await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().expect("base64 text"))
            .expect("valid base64");
        assert!(png.starts_with(b"\x89PNG"), "a PNG");
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).expect("screenshot written");
        path
    }

    async fn close(self, driver: &mut Driver) {
        call(&self.http, reqwest::Method::DELETE, &self.session, None).await;
        driver.session = None;
    }
}

fn element_id(v: &Value) -> Option<String> {
    v.get(ELEMENT)
        .or_else(|| v.as_object().and_then(|o| o.values().next()))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// One WebDriver command; its `value`, or a panic naming the command and WebDriver's error.
async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> Value {
    let mut request = http.request(method.clone(), url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let status = response.status();
    let answer: Value = response
        .json()
        .await
        .unwrap_or_else(|e| panic!("{method} {url}: not JSON: {e}"));
    assert!(
        status.is_success() && answer["value"].get("error").is_none(),
        "{method} {url}: {status} {answer}"
    );
    answer["value"].clone()
}

/// Rendered text holds `n` then `label` (the figure labels are upper-cased by CSS).
fn has_figure(text: &str, n: u64, label: &str) -> bool {
    let lower = text.to_lowercase();
    lower.contains(&format!("{n}\n{label}")) || lower.contains(&format!("{n} {label}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_works_in_a_real_browser() {
    let Some(driver_binary) = chromedriver().filter(|_| Path::new(CHROMIUM).exists()) else {
        let ci = std::env::var("CI").is_ok_and(|v| v == "true");
        assert!(
            !ci,
            "CI=true but {CHROMIUM} or chromedriver is missing: the browser test must run in CI"
        );
        eprintln!(
            "\n********************************************************************\n\
             SKIPPED: browser test needs chromium and chromedriver (apt-get install chromium chromium-driver)\n\
             ********************************************************************\n"
        );
        return;
    };
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("browser");
    std::fs::create_dir_all(&shots).expect("screenshot folder");

    let data = tempfile::tempdir().expect("data folder");
    let demo = execute(DemoArgs {
        serve: false,
        seed: 7,
        invoices: 120,
        pay_payments: 20,
        monitoring: Monitoring::Runs,
        data_dir: Some(data.path().to_owned()),
    })
    .await
    .expect("the demo runs");
    let served = serve_connector(demo.connector().await.expect("connector")).await;
    let connector = served.connector.clone();
    let base = served.base.clone();

    let mut driver = Driver::start(&driver_binary).await;
    let browser = Browser::open(&mut driver).await;

    // The overview: totals as the store has them, three charts, the latest runs.
    browser.goto(&format!("{base}/")).await;
    assert!(browser.title().await.starts_with("Overview"));
    let runs = connector.store.runs(1_000).await.expect("runs");
    let ok: u64 = runs.iter().map(|r| r.documents_ok).sum();
    let failed: u64 = runs.iter().map(|r| r.documents_failed).sum();
    let figures = browser.text("ul.figures").await;
    assert!(has_figure(&figures, ok, "documents ok"), "{figures}");
    assert!(
        has_figure(&figures, failed, "documents failed"),
        "{figures}"
    );
    assert!(has_figure(&figures, runs.len() as u64, "runs"), "{figures}");
    let charts = browser.all("svg.chart").await;
    assert_eq!(charts.len(), 3, "three charts");
    assert!(
        !browser.all("svg.chart rect.bar").await.is_empty(),
        "bars drawn"
    );
    let attention = browser.text(".attention").await;
    let failures = connector.failures(1_000).await.expect("failures");
    assert!(
        attention.contains(&format!("{} documents failed", failures.len())),
        "{attention}"
    );
    browser.screenshot(&shots, "overview").await;

    // A run, reached by its link.
    let busiest = runs
        .iter()
        .filter(|r| r.flow == "invoices")
        .max_by_key(|r| r.documents_ok + r.documents_failed)
        .expect("an invoice run");
    browser
        .click(&format!("#flow-invoices a[href='/runs/{}']", busiest.id))
        .await;
    browser.wait_for("#run-figures").await;
    assert!(
        browser
            .url()
            .await
            .ends_with(&format!("/runs/{}", busiest.id))
    );
    let heading = browser.text("h1").await;
    assert!(
        heading.starts_with(&format!("Run #{}", busiest.id)),
        "{heading}"
    );
    let rows = browser.all("#run-documents tbody tr").await;
    let documents = connector
        .store
        .run_documents(busiest.id)
        .await
        .expect("the run's documents");
    assert!(!documents.is_empty());
    assert_eq!(rows.len(), documents.len(), "one row per document");
    let figures = browser.text("#run-figures").await;
    assert!(
        has_figure(&figures, busiest.documents_failed, "documents failed"),
        "{figures}"
    );
    let failed_badges = browser.all("#run-documents .badge.bad").await;
    assert_eq!(failed_badges.len() as u64, busiest.documents_failed);
    browser.screenshot(&shots, "run").await;

    // Failures: every one with its reason; a rejected invoice's page, then its Retry.
    browser.goto(&format!("{base}/failures")).await;
    let table = browser.text("#failures").await;
    for f in failures.iter().take(10) {
        assert!(
            table.contains(&f.reason),
            "reason of {}: {}",
            f.key,
            f.reason
        );
    }
    let invoice = failures
        .iter()
        .find(|f| f.key.starts_with("invoice:"))
        .expect("the demo has a rejected invoice");
    browser.screenshot(&shots, "failures").await;
    let id: i64 = invoice.key["invoice:".len()..].parse().expect("an id");

    browser
        .click(&format!(
            "#failures a[href='/documents/invoices/{}']",
            invoice.key
        ))
        .await;
    let summary = browser.wait_for("#document-summary").await;
    let summary = browser.text_of(&summary).await;
    assert!(summary.contains(&invoice.reason), "{summary}");
    let steps = browser.all("#document-timeline tr.step").await;
    let calls = browser.all("#document-timeline tr.call").await;
    assert!(!steps.is_empty() && !calls.is_empty());
    browser.screenshot(&shots, "document").await;

    browser.goto(&format!("{base}/failures")).await;
    browser
        .click(&format!(
            "#failures form:has(input[name='key'][value='{}']) button",
            invoice.key
        ))
        .await;
    let done = browser.wait_for("#retry-done").await;
    let done = browser.text_of(&done).await;
    assert!(
        done.contains(&format!("invoice {id} is marked not exported in Coupa")),
        "{done}"
    );
    assert!(browser.url().await.contains("/failures?done="));
    {
        let db = demo.sim.state.db.lock();
        let exported = db
            .invoices
            .get(id)
            .and_then(|i| i.get("exported").and_then(CoupaValue::as_bool));
        assert_eq!(exported, Some(false), "invoice {id} goes again");
    }
    browser.screenshot(&shots, "retried").await;

    // ERP payments: the counts and the failed ones first.
    browser.goto(&format!("{base}/payments")).await;
    let (pending, synced, erp_failed) = connector.ledger.payment_counts().await.expect("counts");
    let counts = browser.text("#payment-counts").await;
    assert!(has_figure(&counts, erp_failed, "failed"), "{counts}");
    assert!(has_figure(&counts, pending, "pending"), "{counts}");
    assert!(has_figure(&counts, synced, "synced"), "{counts}");
    if erp_failed > 0 {
        let first = browser.text("#payments tbody tr").await;
        assert!(first.contains("failed"), "{first}");
    }
    browser.screenshot(&shots, "payments").await;

    // The call log, narrowed with its form (a plain GET, no script).
    browser.goto(&format!("{base}/calls")).await;
    let run = runs.last().expect("a run").id;
    browser
        .type_into("input[name='run']", &run.to_string())
        .await;
    browser.click("form.filters button").await;
    browser.wait_for_url(&format!("run={run}")).await;
    browser.wait_for("#calls-count").await;
    let expected = connector
        .store
        .calls(&coupa_bridge::store::CallFilter {
            run: Some(run),
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("calls")
        .len();
    let count = browser.text("#calls-count").await;
    assert!(count.starts_with(&format!("{expected} call")), "{count}");
    let first_run_link = browser.find("#calls tbody tr a[href^='/runs/']").await;
    assert_eq!(
        browser.attribute(&first_run_link, "href").await,
        format!("/runs/{run}")
    );
    browser.screenshot(&shots, "calls").await;

    // An unknown run is a page too.
    browser.goto(&format!("{base}/runs/999999")).await;
    assert!(browser.text("h1").await.contains("404"));

    browser.close(&mut driver).await;
    drop(driver);
    demo.sim.shutdown().await;
    println!("browser screenshots: {}", shots.display());
}
