//! The daemon against the simulator: the library's `daemon::run` on a manual clock (schedules,
//! triggers, shutdown in the middle of a pass), and `coupa-bridge run` as a process stopped by
//! SIGTERM.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use coupa_api::SecretString;
use coupa_bridge::commands::demo::{seed_erp_from_sim, sqlite_url};
use coupa_bridge::config::Config;
use coupa_bridge::connector::Connector;
use coupa_bridge::daemon::schedule::{ManualClock, Schedule};
use coupa_bridge::daemon::{self, DaemonOptions, DaemonReport, Triggers};
use coupa_bridge::erp::sql::SqlErp;
use coupa_bridge::flows::FlowName;
use coupa_bridge::store::Store;
use coupa_doc::Value;
use coupa_sim::SimConfig;
use coupa_sim::config::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET};
use coupa_sim::faults::{FaultKind, FaultRule};

/// A simulator, the reference ERP (its supplier master loaded from the simulator) and the
/// folder their files live in.
pub struct World {
    pub dir: tempfile::TempDir,
    pub sim: coupa_sim::SimHandle,
    pub erp: SqlErp,
}

impl World {
    pub async fn new(invoices: usize) -> World {
        let dir = tempfile::tempdir().expect("temp dir");
        let sim = coupa_sim::spawn(SimConfig {
            seed: 21,
            invoices,
            pay_payments: 0,
            ..SimConfig::default()
        })
        .await
        .expect("simulator");
        let erp = SqlErp::connect(&sqlite_url(&dir.path().join("erp.db")))
            .await
            .expect("erp");
        seed_erp_from_sim(&erp, &sim)
            .await
            .expect("erp master data");
        World { dir, sim, erp }
    }

    pub fn state_url(&self) -> String {
        sqlite_url(&self.dir.path().join("state.db"))
    }

    pub async fn store(&self) -> Store {
        Store::connect(&self.state_url())
            .await
            .expect("state store")
    }

    /// The configuration the tests' connectors use: the simulator's default client at a rate
    /// that never holds a test back, the state store and the ERP in the folder.
    pub fn config(&self) -> Config {
        let mut config = Config::default();
        config.coupa.base_url = self.sim.base_url();
        config.coupa.insecure_http_simulator_only = true;
        config.coupa.client_id = Some(DEFAULT_CLIENT_ID.into());
        config.coupa.client_secret = Some(SecretString::from(DEFAULT_CLIENT_SECRET));
        config.coupa.requests_per_second = 2_000.0;
        config.coupa.burst = 200;
        config.state.url = self.state_url();
        config.erp.url = sqlite_url(&self.dir.path().join("erp.db"));
        config
    }

    pub async fn connector(&self) -> Arc<Connector> {
        Arc::new(Connector::open(self.config()).await.expect("connector"))
    }

    /// Writes config file `name` for the binary (the secret comes from the environment, see
    /// [`World::command`]), with `sections` appended.
    pub fn config_file(&self, name: &str, sections: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(
            &path,
            format!(
                "[coupa]\nbase_url = \"{}\"\nclient_id = \"{DEFAULT_CLIENT_ID}\"\n\
                 insecure_http_simulator_only = true\n\
                 requests_per_second = 2000\nburst = 200\n\n\
                 [state]\nurl = \"{}\"\n\n[erp]\nkind = \"sql\"\nurl = \"{}\"\n\n{sections}",
                self.sim.base_url(),
                self.state_url(),
                sqlite_url(&self.dir.path().join("erp.db")),
            ),
        )
        .expect("config");
        path
    }

    /// The binary with `args`, the client secret in its environment, output captured.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_coupa-bridge"));
        c.args(args)
            .env("COUPA_BRIDGE__COUPA__CLIENT_SECRET", DEFAULT_CLIENT_SECRET)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        c
    }

    /// Every PUT on an invoice (the export mark) waits `millis` first.
    pub fn slow_invoice_puts(&self, millis: u64) {
        self.sim.state.faults.add(FaultRule {
            kind: FaultKind::Delay { millis },
            method: Some("PUT".into()),
            path: Some("/api/invoices/".into()),
            count: None,
            rate: None,
            seed: 0,
        });
    }

    /// Journal keys of the invoices the export should pick up.
    pub fn eligible_keys(&self) -> Vec<String> {
        crate::invoice_export::eligible(&self.sim)
            .keys()
            .map(|id| format!("invoice:{id}"))
            .collect()
    }

    /// Coupa's integration runs still open.
    pub fn open_coupa_runs(&self) -> Vec<i64> {
        let db = self.sim.state.db.lock();
        db.integration_runs
            .rows()
            .filter(|r| {
                matches!(
                    r.get("status").and_then(Value::as_str),
                    Some("pending" | "running")
                )
            })
            .filter_map(|r| r.get("id").and_then(Value::as_i64))
            .collect()
    }
}

fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 21, h, m, s)
        .single()
        .expect("valid")
}

fn schedule(expression: &str) -> Schedule {
    Schedule::parse(expression).expect("cron")
}

/// The daemon on a manual clock, as a task, with the means to stop it.
struct Daemon {
    clock: Arc<ManualClock>,
    triggers: Triggers,
    shutdown: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<DaemonReport>,
}

impl Daemon {
    fn start(
        connector: Arc<Connector>,
        start: DateTime<Utc>,
        schedules: Vec<(FlowName, Schedule)>,
    ) -> Daemon {
        let clock = Arc::new(ManualClock::new(start));
        let triggers = Triggers::default();
        let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
        let options = DaemonOptions {
            schedules,
            clock: clock.clone(),
            retention: None,
        };
        let task = tokio::spawn(daemon::run(
            connector,
            triggers.clone(),
            options,
            async move {
                let _ = stopped.await;
            },
        ));
        Daemon {
            clock,
            triggers,
            shutdown,
            task,
        }
    }

    /// Shuts the daemon down; its report, and how long it took to return.
    async fn stop(self) -> (DaemonReport, Duration) {
        let asked = Instant::now();
        let _ = self.shutdown.send(());
        let report = tokio::time::timeout(Duration::from_secs(60), self.task)
            .await
            .expect("the daemon returns after shutdown")
            .expect("the daemon does not panic");
        (report, asked.elapsed())
    }
}

/// Runs of `flow` in the store, by status.
async fn runs(store: &Store, flow: FlowName) -> BTreeMap<String, usize> {
    let mut by_status = BTreeMap::new();
    for r in store.runs(10_000).await.expect("runs") {
        if r.flow == flow.as_str() {
            *by_status.entry(r.status).or_default() += 1;
        }
    }
    by_status
}

/// Polls `check` every 10 ms until it holds, for at most `within`.
async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedules_fire_at_their_instants_on_the_clock() {
    let world = World::new(30).await;
    let store = world.store().await;
    let d = Daemon::start(
        world.connector().await,
        at(8, 0, 5),
        vec![
            (FlowName::Invoices, schedule("0 * * * *")),
            (FlowName::Payments, schedule("*/10 * * * * *")),
        ],
    );
    // Up to 08:59:55 in steps of 10 s: each step reaches one payments instant, none the hour.
    for _ in 0..359 {
        d.clock.until_waiting(2).await;
        d.clock.advance(Duration::from_secs(10));
    }
    d.clock.until_waiting(2).await;
    assert!(runs(&store, FlowName::Invoices).await.is_empty());
    // 09:00:05: the hour has struck.
    d.clock.advance(Duration::from_secs(10));
    d.clock.until_waiting(2).await;
    let invoice_runs = runs(&store, FlowName::Invoices).await;
    assert_eq!(invoice_runs.values().sum::<usize>(), 1, "{invoice_runs:?}");
    assert_eq!(invoice_runs.get("running"), None);
    // The payment push had nothing to do: it ran every 10 s but recorded no run.
    assert!(runs(&store, FlowName::Payments).await.is_empty());
    let (report, _) = d.stop().await;
    assert_eq!(report.passes[&FlowName::Invoices], 1);
    assert_eq!(report.passes[&FlowName::Payments], 360);
    assert_eq!(report.passes[&FlowName::PayPayments], 0);
    assert!(
        report.failed.is_empty() && report.skipped.is_empty(),
        "{report:?}"
    );
    assert!(!world.erp.invoices().await.expect("erp").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trigger_runs_the_flow_at_once() {
    let world = World::new(30).await;
    let store = world.store().await;
    // Next due on New Year's Day: only the trigger can start this pass.
    let d = Daemon::start(
        world.connector().await,
        at(8, 0, 0),
        vec![(FlowName::Invoices, schedule("0 0 1 1 *"))],
    );
    d.clock.until_waiting(1).await;
    d.triggers.trigger(FlowName::Invoices);
    eventually(Duration::from_secs(30), "the triggered pass", || async {
        let r = runs(&store, FlowName::Invoices).await;
        r.values().sum::<usize>() == 1 && !r.contains_key("running")
    })
    .await;
    let keys = world.eligible_keys();
    let journal = store
        .journal_get_many("invoices", &keys)
        .await
        .expect("journal");
    assert_eq!(journal.len(), keys.len(), "every eligible invoice handled");
    assert_eq!(d.clock.now(), at(8, 0, 0), "no time passed on the clock");
    let (report, _) = d.stop().await;
    assert_eq!(report.passes[&FlowName::Invoices], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn triggers_during_a_pass_make_exactly_one_more_pass() {
    let world = World::new(40).await;
    world.slow_invoice_puts(50);
    let store = world.store().await;
    let d = Daemon::start(
        world.connector().await,
        at(8, 0, 0),
        vec![(FlowName::Invoices, schedule("0 0 1 1 *"))],
    );
    d.clock.until_waiting(1).await;
    d.triggers.trigger(FlowName::Invoices);
    eventually(Duration::from_secs(30), "a pass in flight", || async {
        runs(&store, FlowName::Invoices)
            .await
            .contains_key("running")
    })
    .await;
    for _ in 0..3 {
        d.triggers.trigger(FlowName::Invoices);
    }
    eventually(Duration::from_secs(60), "two finished passes", || async {
        let r = runs(&store, FlowName::Invoices).await;
        r.values().sum::<usize>() == 2 && !r.contains_key("running")
    })
    .await;
    // Idle again, and nothing more is coming.
    d.clock.until_waiting(1).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        runs(&store, FlowName::Invoices)
            .await
            .values()
            .sum::<usize>(),
        2
    );
    let (report, _) = d.stop().await;
    assert_eq!(report.passes[&FlowName::Invoices], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_while_idle_returns_promptly() {
    let world = World::new(10).await;
    let store = world.store().await;
    let d = Daemon::start(
        world.connector().await,
        at(8, 0, 5),
        vec![
            (FlowName::Invoices, schedule("0 * * * *")),
            (FlowName::Payments, schedule("*/10 * * * * *")),
            (FlowName::PayPayments, schedule("30 * * * *")),
        ],
    );
    d.clock.until_waiting(3).await;
    let (report, took) = d.stop().await;
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert!(report.passes.values().all(|n| *n == 0), "{report:?}");
    assert!(store.runs(10).await.expect("runs").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_mid_pass_finishes_the_documents_in_hand_and_no_more() {
    let world = World::new(200).await;
    // About 1 s of export marks per 20 invoices at the default concurrency of 4.
    world.slow_invoice_puts(200);
    let keys = world.eligible_keys();
    assert!(keys.len() > 40, "{} eligible", keys.len());
    let store = world.store().await;
    let connector = world.connector().await;
    let d = Daemon::start(
        connector.clone(),
        at(8, 0, 0),
        vec![(FlowName::Invoices, schedule("0 0 1 1 *"))],
    );
    d.clock.until_waiting(1).await;
    d.triggers.trigger(FlowName::Invoices);
    eventually(
        Duration::from_secs(30),
        "a first exported invoice",
        || async {
            let journal = store
                .journal_get_many("invoices", &keys)
                .await
                .expect("journal");
            journal.values().any(|e| e.step == "exported")
        },
    )
    .await;
    let (report, took) = d.stop().await;
    assert_eq!(report.passes[&FlowName::Invoices], 1);

    let all_runs = store.runs(100).await.expect("runs");
    assert!(
        all_runs.iter().all(|r| r.status != "running"),
        "a run left running: {all_runs:?}"
    );
    assert_eq!(
        world.open_coupa_runs(),
        Vec::<i64>::new(),
        "Coupa run left open"
    );
    let journal = store
        .journal_get_many("invoices", &keys)
        .await
        .expect("journal");
    let half: Vec<(&String, &str)> = journal
        .iter()
        .filter(|(_, e)| e.step != "exported")
        .map(|(k, e)| (k, e.step.as_str()))
        .collect();
    assert!(half.is_empty(), "documents left half-way: {half:?}");
    // What the journal calls exported is exported in Coupa.
    {
        let db = world.sim.state.db.lock();
        for key in journal.keys() {
            let id: i64 = key
                .strip_prefix("invoice:")
                .and_then(|id| id.parse().ok())
                .expect("invoice key");
            let inv = db.invoices.get(id).expect("invoice");
            assert_eq!(
                inv.get("exported").and_then(Value::as_bool),
                Some(true),
                "{key} journaled exported but not marked in Coupa"
            );
        }
    }
    // The stop was honoured: the pass ended well before the invoices ran out.
    assert!(
        journal.len() < keys.len(),
        "the pass exported all {} invoices instead of stopping ({took:?} after shutdown)",
        keys.len()
    );
    // What was left is picked up by the next pass.
    drop(store);
    let connector =
        Arc::try_unwrap(connector).unwrap_or_else(|_| panic!("the daemon let go of the connector"));
    world.sim.state.faults.clear();
    let next = connector
        .pass(FlowName::Invoices, &coupa_bridge::flows::Stop::never())
        .await
        .expect("next pass");
    assert_eq!(
        next.exported as usize + journal.len(),
        keys.len(),
        "{next:?}"
    );
    connector.close().await;
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The message of a JSON log line.
fn message(line: &serde_json::Value) -> &str {
    line["fields"]["message"].as_str().unwrap_or("")
}

/// `coupa-bridge run` on an every-second invoice schedule with slow export marks, its stderr
/// read line by line on a thread.
struct Running {
    child: Killed,
    lines: std::sync::mpsc::Receiver<String>,
    reader: std::thread::JoinHandle<Vec<String>>,
    store: Store,
}

impl Running {
    /// Starts the daemon and returns once its HTTP server answers and a pass is in flight.
    async fn start(world: &World) -> Running {
        world.slow_invoice_puts(200);
        let config = world.config_file(
            "coupa-bridge.toml",
            "[schedule]\ninvoices = \"* * * * * *\"\npayments = \"\"\npay_payments = \"\"\n\n\
             [server]\nlisten = \"127.0.0.1:0\"\n",
        );
        let config = config.to_str().expect("utf-8 path");
        let mut child = world
            .command(&["run", "--config", config])
            .spawn()
            .expect("the binary starts");
        let stderr = child.stderr.take().expect("stderr");
        let child = Killed(child);
        let (tx, lines) = std::sync::mpsc::channel::<String>();
        let reader = std::thread::spawn(move || {
            let mut all = Vec::new();
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let _ = tx.send(line.clone());
                all.push(line);
            }
            all
        });
        let mut running = Running {
            child,
            lines,
            reader,
            store: world.store().await,
        };
        // The bound address (port 0 in the config), from the log.
        let address = running
            .wait_for_line("listening on ")
            .strip_prefix("listening on ")
            .map(str::to_owned)
            .expect("an address");
        let http = reqwest::Client::new();
        eventually(Duration::from_secs(10), "the HTTP server", || {
            let http = http.clone();
            let url = format!("{address}/healthz");
            // Any answer means the server is up, whatever the health route says.
            async move { http.get(url).send().await.is_ok() }
        })
        .await;
        let store = &running.store;
        eventually(Duration::from_secs(30), "a pass in flight", || async {
            runs(store, FlowName::Invoices)
                .await
                .contains_key("running")
        })
        .await;
        running
    }

    /// Reads the log until a line whose message starts with `prefix`; that message.
    fn wait_for_line(&mut self, prefix: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let line = self
                .lines
                .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                .unwrap_or_else(|_| panic!("no log line starting with '{prefix}'"));
            let json: serde_json::Value = serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("stderr line is not JSON ({e}): {line}"));
            if message(&json).starts_with(prefix) {
                return message(&json).to_owned();
            }
        }
    }

    fn signal(&self) {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.0.id().to_string()])
            .status()
            .expect("kill runs");
        assert!(sent.success());
    }

    /// Waits for the process to exit; its status and every line it logged.
    async fn exit(mut self) -> (std::process::ExitStatus, Vec<String>) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = self.child.0.try_wait().expect("wait") {
                break status;
            }
            assert!(Instant::now() < deadline, "the daemon did not exit");
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        drop(self.lines);
        (status, self.reader.join().expect("stderr reader"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_stops_gracefully_on_sigterm() {
    let world = World::new(200).await;
    let running = Running::start(&world).await;
    let store = running.store.clone();
    running.signal();
    let (status, lines) = running.exit().await;
    let log = lines.join("\n");
    assert_eq!(status.code(), Some(0), "stderr:\n{log}");
    let mut saw_shutdown = false;
    for line in &lines {
        let json: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("stderr line is not JSON ({e}): {line}"));
        for field in ["timestamp", "level", "target", "fields"] {
            assert!(json.get(field).is_some(), "no {field} in {line}");
        }
        saw_shutdown |= message(&json).starts_with("shutting down");
    }
    assert!(saw_shutdown, "no shutdown line in:\n{log}");
    assert!(!log.contains(DEFAULT_CLIENT_SECRET), "the secret is logged");

    let all_runs = store.runs(100).await.expect("runs");
    assert!(!all_runs.is_empty());
    assert!(
        all_runs.iter().all(|r| r.status != "running"),
        "a run left running: {all_runs:?}"
    );
    // The call log was written out, up to the last pass's calls.
    let last = all_runs.iter().map(|r| r.id).max().expect("a run");
    let calls = store
        .calls(&coupa_bridge::store::CallFilter {
            run: Some(last),
            limit: 10_000,
            ..Default::default()
        })
        .await
        .expect("calls");
    assert!(!calls.is_empty(), "no calls logged for run {last}");
    let recorded = all_runs
        .iter()
        .find(|r| r.id == last)
        .map(|r| r.api_calls)
        .expect("last run");
    assert_eq!(
        calls.len() as u64,
        recorded,
        "every call of run {last} logged"
    );
    assert_eq!(
        world.open_coupa_runs(),
        Vec::<i64>::new(),
        "Coupa run left open"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigterm_quits_at_once_with_130() {
    let world = World::new(200).await;
    let mut running = Running::start(&world).await;
    running.signal();
    // The second signal only counts once the first one is seen (signals in between coalesce).
    running.wait_for_line("shutting down");
    running.signal();
    let (status, lines) = running.exit().await;
    assert_eq!(status.code(), Some(130), "stderr:\n{}", lines.join("\n"));
    assert!(
        lines.iter().any(|l| l.contains("quitting at once")),
        "{}",
        lines.join("\n")
    );
    assert!(
        !lines.iter().any(|l| l.contains("\"stopped\"")),
        "a graceful stop instead: {}",
        lines.join("\n")
    );
}

#[tokio::test]
async fn run_exits_2_naming_an_address_it_cannot_bind() {
    let world = World::new(5).await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
    let address = taken.local_addr().expect("address").to_string();
    let config = world.config_file(
        "coupa-bridge.toml",
        &format!("[server]\nlisten = \"{address}\"\n"),
    );
    let out = world
        .command(&["run", "--config", config.to_str().expect("utf-8 path")])
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&address) && stderr.contains("server.listen"),
        "{stderr}"
    );
}
