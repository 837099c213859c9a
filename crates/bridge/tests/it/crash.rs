//! The crash test: `coupa-bridge sync invoices` as a real process, SIGKILLed at many instants
//! and restarted until a pass completes; then nothing is lost, posted twice or recorded twice.

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use coupa_bridge::commands::demo::{seed_erp_from_sim, sqlite_url};
use coupa_bridge::erp::sql::SqlErp;
use coupa_doc::Value;
use coupa_sim::SimConfig;
use coupa_sim::config::DEFAULT_CLIENT_SECRET;

const INVOICES: usize = 1_000;
const MAX_KILLS: usize = 60;

/// A small deterministic generator, so a failing run can be repeated kill for kill.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

fn sync(config: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_coupa-bridge"));
    c.args(["sync", "invoices", "--config"])
        .arg(config)
        .env("COUPA_BRIDGE__COUPA__CLIENT_SECRET", DEFAULT_CLIENT_SECRET)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_at_many_points_the_export_ends_exactly_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sim = coupa_sim::spawn(SimConfig {
        seed: 11,
        invoices: INVOICES,
        pay_payments: 0,
        ..SimConfig::default()
    })
    .await
    .expect("simulator");
    let erp_url = sqlite_url(&dir.path().join("erp.db"));
    {
        let erp = SqlErp::connect(&erp_url).await.expect("erp");
        seed_erp_from_sim(&erp, &sim)
            .await
            .expect("erp master data");
    }
    let config = dir.path().join("coupa-bridge.toml");
    std::fs::write(
        &config,
        format!(
            "[coupa]\nbase_url = \"{}\"\nclient_id = \"coupa-bridge\"\nrequests_per_second = 2000\nburst = 200\n\n\
             [state]\nurl = \"{}\"\n\n[erp]\nkind = \"sql\"\nurl = \"{erp_url}\"\n\n\
             [invoices]\nmonitoring = \"runs\"\nconcurrency = 4\n",
            sim.base_url(),
            sqlite_url(&dir.path().join("state.db")),
        ),
    )
    .expect("config");
    let eligible = crate::invoice_export::eligible(&sim);
    assert!(eligible.len() > 100, "{} eligible", eligible.len());

    // First, a crash in each window that matters, deterministically: after the ERP answered,
    // after the journal noted it, after Coupa created the record (before the journal knows),
    // after the journal noted the record, after the export mark.
    let started = Instant::now();
    let mut aborts = 0;
    for (point, n) in [
        ("erp-done", 3),
        ("posted", 5),
        ("record-created", 2),
        ("record-created", 9),
        ("recorded", 4),
        ("exported", 6),
    ] {
        let status = sync(&config)
            .env(coupa_bridge::failpoint::ENV, format!("{point}={n}"))
            .status()
            .expect("binary runs");
        assert!(!status.success(), "{point}={n} must crash the pass");
        aborts += 1;
    }
    // Then SIGKILL at instants spread over a pass, until a pass ends by itself.
    let mut rng = SplitMix(0xC0FFEE);
    let mut kills = 0;
    let mut delays = Vec::new();
    loop {
        let mut child = sync(&config).spawn().expect("binary starts");
        let delay = Duration::from_millis(20 + rng.next() % 250);
        let deadline = Instant::now() + delay;
        let mut exited = None;
        while Instant::now() < deadline {
            if let Some(status) = child.try_wait().expect("wait") {
                exited = Some(status);
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        match exited {
            Some(status) if status.success() => break,
            Some(status) => assert_eq!(status.code(), Some(1), "a pass may only end 0 or 1"),
            None if kills < MAX_KILLS => {
                child.kill().expect("SIGKILL");
                child.wait().expect("reaped");
                kills += 1;
                delays.push(delay.as_millis());
            }
            None => {
                let status = child.wait().expect("last pass runs to its end");
                if status.success() {
                    break;
                }
            }
        }
    }
    println!(
        "crash test: {} eligible invoices, {aborts} crashes at failpoints, {kills} kills at {delays:?} ms, {:.1}s",
        eligible.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(kills >= 8, "the test must really kill: {kills}");
    // A further pass finds nothing.
    let status = sync(&config).status().expect("final pass");
    assert!(status.success());

    let erp = SqlErp::connect(&erp_url).await.expect("erp");
    let rows = erp.invoices().await.expect("erp rows");
    let mut by_coupa: BTreeMap<i64, usize> = BTreeMap::new();
    for r in &rows {
        *by_coupa.entry(r.coupa_invoice_id).or_default() += 1;
    }
    assert!(
        by_coupa.values().all(|n| *n == 1),
        "an invoice posted twice"
    );
    let numbers: BTreeSet<&str> = rows.iter().map(|r| r.document_number.as_str()).collect();
    assert_eq!(numbers.len(), rows.len(), "document numbers are unique");

    let db = sim.state.db.lock();
    for (id, status) in &eligible {
        let inv = db.invoices.get(*id).expect("invoice");
        assert_eq!(
            inv.get("exported").and_then(Value::as_bool),
            Some(true),
            "invoice {id} marked exported"
        );
        let count = |errors: bool| {
            let table = if errors {
                &db.integration_errors
            } else {
                &db.history_records
            };
            table
                .rows()
                .filter(|r| r.get("document-id").and_then(Value::as_i64) == Some(*id))
                .count()
        };
        let in_erp = by_coupa.contains_key(id);
        let (history, errors) = (count(false), count(true));
        if status == "approved" && !in_erp {
            assert_eq!(
                (history, errors),
                (0, 1),
                "rejected invoice {id} recorded once"
            );
        } else {
            assert_eq!((history, errors), (1, 0), "invoice {id} recorded once");
        }
    }
    for run in db.integration_runs.rows() {
        let status = run.get("status").and_then(Value::as_str).unwrap_or("");
        assert!(
            !matches!(status, "pending" | "running"),
            "integration run {:?} left {status}",
            run.get("id")
        );
    }
}
