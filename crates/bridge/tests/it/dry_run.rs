//! `coupa-bridge sync --dry-run` as a process: it says what each pass would do, and leaves
//! Coupa, the ERP and the state store exactly as they were; a real `sync all` then does what
//! it said. And the guarantee itself: the dry run's Coupa client refuses every write.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Output;

use chrono::Utc;
use coupa_api::query::Query;
use coupa_api::{InvoiceId, PayPaymentId};
use coupa_bridge::commands::demo::sqlite_url;
use coupa_bridge::commands::demo::{erp_payments_for, seed_erp_from_sim, sim_client_config};
use coupa_bridge::erp::ErpInvoiceRecord;
use coupa_bridge::erp::sql::SqlErp;
use coupa_bridge::flows::preview;
use coupa_doc::{Object, Value};
use coupa_sim::SimConfig;
use coupa_sim::config::{DEFAULT_SFTP_PASSWORD, DEFAULT_SFTP_USER};
use coupa_sim::csv_loader::{ARCHIVE_DIR, INCOMING_DIR};
use rust_decimal::Decimal;

use crate::daemon::World;
use crate::security::dump_database;

/// Coupa's tables a pass of any flow writes to.
const RESOURCES: [&str; 6] = [
    "invoices",
    "integrations",
    "integration_runs",
    "integration_history_records",
    "integration_errors",
    "coupa_pay_payments",
];

/// A simulator with invoices and Coupa Pay payments, the ERP's master data, and pending ERP
/// payments for a share of Coupa's approved invoices (plus two for invoices Coupa lacks).
async fn world() -> World {
    let dir = tempfile::tempdir().expect("temp dir");
    let sim = coupa_sim::spawn(SimConfig {
        seed: 33,
        invoices: 90,
        pay_payments: 40,
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
    let approved: Vec<ErpInvoiceRecord> = {
        let db = sim.state.db.lock();
        db.invoices
            .rows()
            .filter(|r| r.get("status").and_then(Value::as_str) == Some("approved"))
            .filter_map(record_of)
            .collect()
    };
    let payments = erp_payments_for(&approved, "DRY");
    assert!(payments.len() > 10, "{} ERP payments", payments.len());
    erp.record_payments(&payments).await.expect("ERP payments");
    World { dir, sim, erp }
}

/// A Coupa invoice as an ERP that had booked it would hold it: what `erp_payments_for` pays.
fn record_of(r: &Object) -> Option<ErpInvoiceRecord> {
    let text = |o: &Object, k: &str| o.get(k).and_then(Value::as_str).map(str::to_owned);
    let supplier = r.get("supplier").and_then(Value::as_object);
    Some(ErpInvoiceRecord {
        document_number: String::new(),
        coupa_invoice_id: r.get("id").and_then(Value::as_i64)?,
        invoice_number: text(r, "invoice-number")?,
        supplier_number: supplier.and_then(|s| text(s, "number")),
        supplier_name: supplier.and_then(|s| text(s, "name")),
        invoice_date: chrono::NaiveDate::from_ymd_opt(2026, 10, 1)?,
        currency: r
            .get("currency")
            .and_then(Value::as_object)
            .and_then(|c| text(c, "code"))?,
        total: r
            .get("total-with-taxes")
            .and_then(Value::as_decimal)
            .unwrap_or(Decimal::ZERO),
        status: "open".into(),
        created_at: Utc::now(),
    })
}

/// Coupa as the simulator's admin API shows it: every record of [`RESOURCES`], and how many
/// requests that change something it answered, by endpoint (the token requests aside: asking
/// for a token changes no document).
async fn coupa(world: &World) -> (BTreeMap<String, serde_json::Value>, BTreeMap<String, u64>) {
    let http = reqwest::Client::new();
    let base = world.sim.base_url();
    let mut records = BTreeMap::new();
    for r in RESOURCES {
        let rows: serde_json::Value = http
            .get(format!("{base}/__sim/records/{r}"))
            .send()
            .await
            .expect("admin API")
            .json()
            .await
            .expect("JSON");
        records.insert(r.to_owned(), rows);
    }
    let stats: serde_json::Value = http
        .get(format!("{base}/__sim/stats"))
        .send()
        .await
        .expect("admin API")
        .json()
        .await
        .expect("JSON");
    let writes = stats["endpoints"]
        .as_object()
        .expect("endpoints")
        .iter()
        .filter(|(endpoint, _)| !endpoint.starts_with("GET ") && !endpoint.contains("oauth2"))
        .map(|(endpoint, e)| (endpoint.clone(), e["calls"].as_u64().unwrap_or_default()))
        .collect();
    (records, writes)
}

fn sync(world: &World, config: &Path, flow: &str, dry_run: bool) -> Output {
    let config = config.to_str().expect("utf-8 path");
    let mut args = vec!["sync", flow, "--config", config];
    if dry_run {
        args.push("--dry-run");
    }
    world.command(&args).output().expect("the binary runs")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The figure before `label` on the flow's summary line: the dry run's `invoices: 57 listed;
/// 50 to post, ...` or the real pass's `invoices: 57 listed, 50 exported, ...`.
fn figure(out: &str, flow: &str, label: &str) -> u64 {
    let line = out
        .lines()
        .find(|l| l.starts_with(&format!("{flow}: ")) && l.contains(" listed"))
        .unwrap_or_else(|| panic!("no summary for {flow} in:\n{out}"));
    line[flow.len() + 2..]
        .split([',', ';', '('])
        .map(str::trim)
        .find_map(|part| {
            let (n, rest) = part.split_once(' ')?;
            (rest == label).then(|| n.parse().ok()).flatten()
        })
        .unwrap_or_else(|| panic!("no '{label}' for {flow} in:\n{line}"))
}

/// Invoices the export picks up, approved or voided.
fn eligible(world: &World) -> (u64, u64) {
    let all = crate::invoice_export::eligible(&world.sim);
    let voided = all.values().filter(|s| *s == "voided").count() as u64;
    (all.len() as u64, voided)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_changes_nothing_and_the_sync_then_does_what_it_said() {
    let world = world().await;
    let config = world.config_file("coupa-bridge.toml", "");
    let state = world.dir.path().join("state.db");
    let erp_file = world.dir.path().join("erp.db");
    let (eligible, voided) = eligible(&world);
    assert!(
        eligible > 20 && voided > 0,
        "{eligible} eligible, {voided} voided"
    );

    // No state store yet: the dry run must not create one.
    assert!(!state.exists());
    let coupa_before = coupa(&world).await;
    let erp_before = dump_database(&erp_file).await;
    let dry = sync(&world, &config, "all", true);
    let said = stdout(&dry);
    assert_eq!(
        dry.status.code(),
        Some(0),
        "{said}\n{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    assert!(!state.exists(), "the dry run created the state store");
    assert_eq!(coupa(&world).await, coupa_before, "Coupa changed:\n{said}");
    assert_eq!(
        dump_database(&erp_file).await,
        erp_before,
        "the ERP changed:\n{said}"
    );
    assert!(
        said.ends_with("dry run: nothing was changed in Coupa, the ERP or the state store\n"),
        "{said}"
    );
    assert!(said.contains("does not exist yet"), "{said}");
    assert!(said.contains("… and "), "capped at 20 lines:\n{said}");

    // What it says: every eligible invoice, decided.
    assert_eq!(figure(&said, "invoices", "listed"), eligible, "{said}");
    assert_eq!(figure(&said, "invoices", "to cancel"), voided, "{said}");
    let to_post = figure(&said, "invoices", "to post");
    let to_reject = figure(&said, "invoices", "to reject");
    assert_eq!(to_post + to_reject, eligible - voided, "{said}");
    assert_eq!(figure(&said, "invoices", "to resume"), 0, "{said}");
    let to_add = figure(&said, "payments", "to add");
    let to_fail = figure(&said, "payments", "to fail");
    assert!(to_add > 5 && to_fail >= 2, "{said}");
    let to_book = figure(&said, "pay-payments", "to book");
    assert!(to_book > 0, "{said}");
    assert!(said.contains("would post to the ERP"), "{said}");
    assert!(said.contains("would add "), "{said}");
    assert!(said.contains("would book payment "), "{said}");

    // The real pass does what the dry run said.
    let real = sync(&world, &config, "all", false);
    let did = stdout(&real);
    assert!(
        matches!(real.status.code(), Some(0 | 1)),
        "{did}\n{}",
        String::from_utf8_lossy(&real.stderr)
    );
    assert_eq!(figure(&did, "invoices", "listed"), eligible, "{did}");
    assert_eq!(figure(&did, "invoices", "cancelled"), voided, "{did}");
    let (posted, rejected) = (
        figure(&did, "invoices", "posted"),
        figure(&did, "invoices", "rejected"),
    );
    // The dry run asks the ERP's own checks (supplier, period) without posting: the pass
    // posts and rejects exactly what it said.
    assert_eq!((posted, rejected), (to_post, to_reject), "{said}\n{did}");
    assert!(
        to_reject > 0,
        "the seed has invoices the ERP refuses: {said}"
    );
    assert_eq!(
        figure(&did, "payments", "added to Coupa"),
        to_add,
        "{said}\n{did}"
    );
    assert_eq!(figure(&did, "payments", "failed"), to_fail, "{said}\n{did}");
    assert_eq!(
        figure(&did, "pay-payments", "booked"),
        to_book,
        "{said}\n{did}"
    );
    assert_eq!(
        figure(&did, "pay-payments", "listed"),
        figure(&said, "pay-payments", "listed"),
        "{said}\n{did}"
    );

    // With a state store: read, never written. A clerk resets one exported invoice, and Coupa
    // Pay cancels one booked payment: the dry run sees both through the journal and the ERP.
    let reset = world.erp.invoices().await.expect("erp")[0].clone();
    let changed = world.erp.pay_payments().await.expect("erp")[0].coupa_payment_id;
    let http = reqwest::Client::new();
    let base = world.sim.base_url();
    for (path, body) in [
        (
            format!(
                "{base}/__sim/invoices/{}/reset-export",
                reset.coupa_invoice_id
            ),
            serde_json::json!({}),
        ),
        (
            format!("{base}/__sim/pay-payments/{changed}/status"),
            serde_json::json!({"status": "cancelled"}),
        ),
    ] {
        let answer = http
            .post(&path)
            .json(&body)
            .send()
            .await
            .expect("admin API");
        assert!(answer.status().is_success(), "{path}: {}", answer.status());
    }
    let coupa_before = coupa(&world).await;
    let erp_before = dump_database(&erp_file).await;
    let state_before = dump_database(&state).await;
    let dry = sync(&world, &config, "all", true);
    let said = stdout(&dry);
    assert_eq!(dry.status.code(), Some(0), "{said}");
    assert_eq!(coupa(&world).await, coupa_before, "Coupa changed:\n{said}");
    assert_eq!(
        dump_database(&erp_file).await,
        erp_before,
        "the ERP changed:\n{said}"
    );
    assert_eq!(
        dump_database(&state).await,
        state_before,
        "the state store changed:\n{said}"
    );
    assert!(!said.contains("does not exist yet"), "{said}");
    assert_eq!(figure(&said, "invoices", "listed"), 1, "{said}");
    assert_eq!(figure(&said, "invoices", "already in the ERP"), 1, "{said}");
    assert!(
        said.contains(&format!(
            "in the ERP already as {}: would record it and mark exported",
            reset.document_number
        )),
        "{said}"
    );
    assert_eq!(figure(&said, "payments", "listed"), 0, "{said}");
    assert_eq!(figure(&said, "pay-payments", "to update"), 1, "{said}");
    assert!(
        said.contains(&format!(
            "payment {changed}: would update the ERP's payment"
        )),
        "{said}"
    );

    let real = sync(&world, &config, "all", false);
    let did = stdout(&real);
    assert_eq!(real.status.code(), Some(0), "{did}");
    assert_eq!(figure(&did, "invoices", "posted"), 1, "{did}");
    assert_eq!(figure(&did, "invoices", "exported"), 1, "{did}");
    assert_eq!(figure(&did, "pay-payments", "updated"), 1, "{did}");
    assert_eq!(
        world.erp.invoices().await.expect("erp").len(),
        posted as usize
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_flow_csv_payments_and_a_missing_erp_schema() {
    let world = world().await;
    let config = world.config_file("coupa-bridge.toml", "");
    let dry = sync(&world, &config, "invoices", true);
    let said = stdout(&dry);
    assert_eq!(dry.status.code(), Some(0), "{said}");
    assert!(
        said.contains("invoices: ") && !said.contains("payments: "),
        "{said}"
    );

    // CSV over SFTP: the file the pass would upload, without connecting.
    let csv = world.config_file(
        "csv.toml",
        &format!(
            "[payments]\ntransport = \"csv\"\n\n[payments.sftp]\nhost = \"127.0.0.1\"\n\
             port = {}\nusername = \"{DEFAULT_SFTP_USER}\"\nhost_key = \"{}\"\n",
            world.sim.sftp_addr.port(),
            world.sim.sftp_host_key
        ),
    );
    let files = |dir: &str| -> Vec<(String, u64)> { world.sim.state.files.list_files(dir) };
    let dry = world
        .command(&[
            "sync",
            "payments",
            "--dry-run",
            "--config",
            csv.to_str().expect("utf-8 path"),
        ])
        .env(
            "COUPA_BRIDGE__PAYMENTS__SFTP__PASSWORD",
            DEFAULT_SFTP_PASSWORD,
        )
        .output()
        .expect("the binary runs");
    let said = stdout(&dry);
    assert_eq!(
        dry.status.code(),
        Some(0),
        "{said}\n{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    // Nothing is on Coupa yet: one row per payment to add.
    assert_eq!(figure(&said, "payments", "already on Coupa"), 0, "{said}");
    let rows = figure(&said, "payments", "to add");
    assert!(rows > 5, "{said}");
    assert!(
        said.contains(&format!(
            "would upload 1 file of {rows} rows to 127.0.0.1:/Incoming/InvoicePayments"
        )),
        "{said}"
    );
    assert!(files(INCOMING_DIR).is_empty() && files(ARCHIVE_DIR).is_empty());

    // An ERP that does not exist is neither created nor migrated: the dry run says how.
    let missing = world.dir.path().join("no-erp.db");
    let config = world.config_file("missing-erp.toml", "");
    let text = std::fs::read_to_string(&config).expect("config").replace(
        &sqlite_url(&world.dir.path().join("erp.db")),
        &sqlite_url(&missing),
    );
    std::fs::write(&config, text).expect("config");
    let dry = sync(&world, &config, "all", true);
    let stderr = String::from_utf8_lossy(&dry.stderr);
    assert_eq!(dry.status.code(), Some(2), "{}\n{stderr}", stdout(&dry));
    assert!(stderr.contains("doctor --fix"), "{stderr}");
    assert!(!missing.exists(), "the dry run created the ERP");
}

/// The guarantee itself: whatever the dry run's code asks, its client sends no write.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dry_run_client_refuses_every_write() {
    let sim = coupa_sim::spawn(SimConfig {
        invoices: 10,
        pay_payments: 5,
        ..SimConfig::default()
    })
    .await
    .expect("simulator");
    let client = preview::read_only_client(sim_client_config(sim.base_url())).expect("client");
    // Reads go through.
    let page = client
        .invoices()
        .list(Query::new().eq("exported", false))
        .next_page()
        .await
        .expect("a listing")
        .expect("a page");
    let id = page
        .iter()
        .flatten()
        .map(|i| i.id)
        .next()
        .expect("an unexported invoice");
    let pay = client
        .pay_payments()
        .list(Query::new())
        .next_page()
        .await
        .expect("a listing")
        .expect("a page")
        .into_iter()
        .flatten()
        .map(|p| p.id)
        .next()
        .unwrap_or(PayPaymentId(1));

    let err = client
        .invoices()
        .mark_exported(InvoiceId(id.get()))
        .await
        .expect_err("the write is refused");
    assert!(err.to_string().contains(preview::REFUSAL), "{err}");
    let err = client
        .pay_payments()
        .mark_exported(pay)
        .await
        .expect_err("the write is refused");
    assert!(err.to_string().contains(preview::REFUSAL), "{err}");

    let exported = sim
        .state
        .db
        .lock()
        .invoices
        .get(id.get())
        .and_then(|r| r.get("exported").and_then(Value::as_bool));
    assert_eq!(exported, Some(false));
    let writes: u64 = sim.state.stats.to_json()["endpoints"]
        .as_object()
        .expect("endpoints")
        .iter()
        .filter(|(e, _)| !e.starts_with("GET ") && !e.contains("oauth2"))
        .map(|(_, e)| e["calls"].as_u64().unwrap_or_default())
        .sum();
    assert_eq!(writes, 0, "no write reached Coupa");
}
