//! `coupa-bridge log` as a process, after real passes against the simulator.

use std::process::Output;

use coupa_sim::faults::{FaultKind, FaultRule};

use crate::daemon::World;

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs the binary with `args` and `--config <config>`.
fn bridge(world: &World, config: &str, args: &[&str]) -> Output {
    let mut all = args.to_vec();
    all.extend(["--config", config]);
    world.command(&all).output().expect("the binary runs")
}

/// The rows of a table under its header.
fn rows(table: &str) -> Vec<&str> {
    let mut lines = table.lines();
    let header = lines.next().unwrap_or_default();
    assert!(
        header.starts_with("TIME") && header.contains("DOCUMENT"),
        "{table}"
    );
    lines.collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_filters_the_calls_of_a_sync() {
    let world = World::new(40).await;
    // Coupa throttles the first listings: the client waits and retries.
    world.sim.state.faults.add(FaultRule {
        kind: FaultKind::TooManyRequests { retry_after: None },
        method: Some("GET".into()),
        path: Some("/api/invoices".into()),
        count: Some(2),
        rate: None,
        seed: 0,
    });
    let config = world.config_file("coupa-bridge.toml", "");
    let config = config.to_str().expect("utf-8 path");
    let sync = bridge(&world, config, &["sync", "invoices"]);
    assert!(
        matches!(sync.status.code(), Some(0 | 1)),
        "sync: {}\n{}",
        stdout(&sync),
        stderr(&sync)
    );

    let out = bridge(
        &world,
        config,
        &[
            "log", "--flow", "invoices", "--status", "2xx", "--limit", "5",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let table = stdout(&out);
    let found = rows(&table);
    assert_eq!(found.len(), 5, "{table}");
    for row in &found {
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(cells.get(1), Some(&"invoices"), "{row}");
        assert!(
            cells.iter().any(|c| c.len() == 3 && c.starts_with('2')),
            "no 2xx status in {row}"
        );
    }

    // One document's calls, and only its.
    let posted = world.erp.invoices().await.expect("erp");
    let id = posted
        .first()
        .expect("an invoice in the ERP")
        .coupa_invoice_id;
    let key = format!("invoice:{id}");
    let out = bridge(
        &world,
        config,
        &["log", "--document", &key, "--limit", "1000"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let table = stdout(&out);
    let found = rows(&table);
    assert!(!found.is_empty(), "no calls for {key}");
    for row in &found {
        assert_eq!(row.split_whitespace().nth(3), Some(key.as_str()), "{row}");
    }
    assert!(
        found
            .iter()
            .any(|r| r.contains(&format!("/api/invoices/{id}"))),
        "{table}"
    );

    // JSON lines, newest first.
    let out = bridge(
        &world,
        config,
        &["log", "--flow", "invoices", "--json", "--limit", "20"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let objects: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert_eq!(objects.len(), 20, "{text}");
    let times: Vec<&str> = objects
        .iter()
        .map(|o| {
            assert_eq!(o["flow"], "invoices", "{o}");
            assert!(o["method"].is_string() && o["path"].is_string(), "{o}");
            o["at"].as_str().expect("at")
        })
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "not newest first: {times:?}"
    );

    // The throttled listings.
    let out = bridge(&world, config, &["log", "--status", "429"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let table = stdout(&out);
    let found = rows(&table);
    assert_eq!(found.len(), 2, "{table}");
    for row in &found {
        assert!(
            row.contains(" 429 ") && row.contains("/api/invoices"),
            "{row}"
        );
    }
}

#[tokio::test]
async fn bad_filters_exit_2_naming_the_flag_and_the_accepted_forms() {
    let world = World::new(5).await;
    let config = world.config_file("coupa-bridge.toml", "");
    let config = config.to_str().expect("utf-8 path");
    let out = bridge(&world, config, &["log", "--since", "yesterday"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("--since") && err.contains("30m") && err.contains("RFC 3339"),
        "{err}"
    );

    let out = bridge(&world, config, &["log", "--status", "500"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("--status") && err.contains("5xx"), "{err}");

    let out = bridge(&world, config, &["log", "--since", "7d"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("no API calls match"));
}

#[tokio::test]
async fn sync_prunes_calls_older_than_the_retention() {
    let world = World::new(5).await;
    let store = world.store().await;
    let call = |days: i64, path: &str| coupa_bridge::store::CallRecord {
        at: coupa_bridge::db::truncate_micros(chrono::Utc::now() - chrono::Duration::days(days)),
        flow: "invoices".into(),
        run: None,
        document: None,
        method: "GET".into(),
        path: path.into(),
        status: Some(200),
        duration_ms: 1,
        waited_ms: 0,
        attempt: 1,
        bytes_sent: 0,
        bytes_received: 0,
        error: None,
    };
    store
        .log_calls(&[call(40, "/api/old"), call(10, "/api/recent")])
        .await
        .expect("log");
    let config = world.config_file("coupa-bridge.toml", "[log]\nretention_days = 30\n");
    let config = config.to_str().expect("utf-8 path");
    let out = bridge(&world, config, &["sync", "payments"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let paths: Vec<String> = store
        .calls(&coupa_bridge::store::CallFilter::default())
        .await
        .expect("calls")
        .into_iter()
        .map(|c| c.path)
        .collect();
    assert_eq!(paths, vec!["/api/recent".to_owned()]);
}
