//! The chaos harness as CI runs it: the real `coupa-chaos` binary, built by `cargo test` with
//! the bridge's `sabotage` feature (see Cargo.toml), on short seeded runs.
//!
//! - one connector on SQLite: zero violations, with kills, crash points and faults really served;
//! - three connectors on one PostgreSQL state store (a throwaway cluster; skipped, loudly,
//!   without PostgreSQL, except under CI=true): zero violations, no overlapping runs;
//! - a sabotaged connector (acknowledging invoices before posting them): exit 1, the lost
//!   invoices listed.

use std::process::Command;

use serde_json::Value;

#[allow(dead_code)]
#[path = "../../bridge/tests/it/pg.rs"]
mod pg;

/// Runs the harness with `args` (plus `--json` and a folder of its own); its exit code and
/// figures.
fn chaos(args: &[&str]) -> (i32, Value, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_coupa-chaos"))
        .args(args)
        .arg("--json")
        .arg("--dir")
        .arg(dir.path())
        .output()
        .expect("coupa-chaos runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("coupa-chaos {args:?}:\n{stderr}{stdout}");
    let code = out.status.code().expect("an exit code, not a signal");
    assert_ne!(code, 2, "harness error:\n{stderr}");
    let figures: Value = serde_json::from_str(stdout.trim()).expect("one JSON object");
    (code, figures, dir)
}

fn n(v: &Value, path: &str) -> u64 {
    v.pointer(path)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{path} in {v}"))
}

fn violations(v: &Value) -> Vec<String> {
    v["violations"]
        .as_array()
        .expect("violations")
        .iter()
        .map(|x| x.as_str().unwrap_or_default().to_owned())
        .collect()
}

/// What every clean run shows: all work done, and chaos that really happened.
fn assert_clean(code: i32, f: &Value) {
    assert_eq!(
        violations(f),
        Vec::<String>::new(),
        "zero violations expected"
    );
    assert_eq!(code, 0);
    assert_eq!(
        f["sabotage_compiled"], true,
        "cargo test builds the sabotage in"
    );
    assert_eq!(f["sabotage"], Value::Null);
    let eligible = n(f, "/invoices/eligible");
    assert!(eligible > 100, "{eligible} eligible invoices");
    assert_eq!(n(f, "/invoices/exported"), eligible);
    assert!(n(f, "/invoices/posted") > 50);
    assert!(n(f, "/invoices/rejected") > 0);
    assert!(n(f, "/payments/synced") > 10);
    assert!(n(f, "/payments/failed") > 0, "unmatched payments fail");
    assert_eq!(n(f, "/payments/pending"), 0);
    assert!(n(f, "/pay_payments/booked") > 10);
    assert!(n(f, "/pay_payments/status_changes") > 0);
    let kills = n(f, "/kills");
    assert!(kills >= 5, "{kills} kills");
    assert!(n(f, "/restarts") >= kills);
    let faults = n(f, "/faults_total");
    assert!(faults >= 10, "{faults} faults served");
    let kinds = f["faults"].as_object().expect("faults by kind");
    let served = kinds.values().filter(|x| x.as_u64() > Some(0)).count();
    assert!(served >= 3, "faults of several kinds: {kinds:?}");
    assert!(n(f, "/api_calls") > 500);
    assert!(
        n(f, "/store_runs") >= 10,
        "the overlap check had passes to look at"
    );
}

#[test]
fn one_connector_on_sqlite_survives_the_chaos_with_no_violation() {
    let (code, f, _dir) = chaos(&[
        "--seed",
        "21",
        "--duration",
        "25",
        "--invoices",
        "400",
        "--pay-payments",
        "60",
    ]);
    assert_clean(code, &f);
    assert_eq!(f["backend"], "sqlite");
    assert_eq!(n(&f, "/replicas"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_connectors_on_one_postgresql_store_do_no_duplicate_work() {
    let Some(url) = pg::database().await else {
        return;
    };
    // The cluster's admin database: the harness creates its own databases through it.
    let admin = match url.rsplit_once('/') {
        Some((root, _)) => format!("{root}/postgres"),
        None => panic!("a database URL: {url}"),
    };
    let (code, f, _dir) = tokio::task::spawn_blocking(move || {
        chaos(&[
            "--seed",
            "22",
            "--duration",
            "25",
            "--invoices",
            "400",
            "--replicas",
            "3",
            "--pg",
            &admin,
        ])
    })
    .await
    .expect("the run");
    assert_clean(code, &f);
    assert_eq!(f["backend"], "postgres");
    assert_eq!(n(&f, "/replicas"), 3);
}

#[test]
fn a_connector_that_acknowledges_before_the_effect_is_caught() {
    let (code, f, _dir) = chaos(&[
        "--seed",
        "23",
        "--duration",
        "6",
        "--invoices",
        "150",
        "--sabotage",
        "ack-before-effect",
    ]);
    let found = violations(&f);
    assert_eq!(code, 1, "{found:#?}");
    assert_eq!(f["sabotage"], "ack-before-effect");
    assert!(n(&f, "/sabotage_crashes") >= 1);
    // Whichever invoice the sabotage acknowledged first: an approved one not in the ERP, or a
    // voided one whose cancellation was neither done nor recorded.
    assert!(
        found
            .iter()
            .any(|v| v.starts_with("invoice-acked-without-effect:")
                && (v.contains("exported in Coupa but is not in the ERP")
                    || v.contains("without its cancellation done and recorded"))),
        "{found:#?}"
    );
    // Only what the sabotage breaks: no payment or Coupa Pay violation.
    assert!(
        found
            .iter()
            .all(|v| v.starts_with("invoice-") || v.contains("... and")),
        "{found:#?}"
    );
}
