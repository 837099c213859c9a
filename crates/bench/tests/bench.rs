//! The benchmark program's short run (what CI runs): every group's scenarios on small data,
//! each printing one JSON object whose figures agree with each other. Timings and memory are
//! never asserted (shared, noisy machines); what is asserted holds on any machine: documents
//! were handled, the call counts add up, the latency samples are ordered, and an idle daemon
//! costs Coupa nothing.

use std::process::Command;

use serde_json::Value;

fn bench(args: &[&str]) -> (Option<i32>, Vec<Value>, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_coupa-bench"))
        .args(args)
        .output()
        .expect("coupa-bench runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let lines = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    (out.status.code(), lines, stderr)
}

fn num(v: &Value, key: &str) -> f64 {
    v.get(key)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("no number '{key}' in {v}"))
}

#[test]
fn a_short_run_of_each_group_prints_figures_that_add_up() {
    let scenarios = [
        "limits-invoices-runs",
        "limits-payments",
        "limits-pay-payments",
        "unthrottled-invoices",
        "growth-1000",
        "payment-latency",
    ];
    let mut args = vec!["--quick", "--seed", "11"];
    args.extend(scenarios);
    let (code, lines, stderr) = bench(&args);
    eprintln!("{stderr}");
    assert_eq!(code, Some(0), "{stderr}");
    let names: Vec<&str> = lines
        .iter()
        .map(|l| l["scenario"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(names, scenarios, "one object per scenario, in order");
    for l in &lines {
        let name = l["scenario"].as_str().unwrap_or("");
        assert_eq!(l["quick"], Value::Bool(true));
        let documents = num(l, "documents");
        assert!(documents > 0.0, "{name}: no document handled");
        let calls = num(l, "api_calls");
        let by_endpoint: f64 = l["calls_by_endpoint"]
            .as_object()
            .expect("calls by endpoint")
            .values()
            .filter_map(Value::as_f64)
            .sum();
        assert_eq!(
            calls, by_endpoint,
            "{name}: the endpoints add up to the total"
        );
        assert!(num(l, "fixed_calls") <= calls);
        let per = num(l, "calls_per_document");
        assert!((per - calls / documents).abs() < 0.001, "{name}: {per}");
        assert!(num(l, "wall_seconds") > 0.0);
        assert!(
            num(l, "peak_rss_mb") > 1.0,
            "{name}: the connector reported its memory"
        );
        let targets = l["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{name}: every scenario has a target");
        for t in targets {
            assert!(t["met"].is_boolean() && t["value"].is_number(), "{t}");
        }
        if name.starts_with("limits-") {
            let limit = &l["limit"];
            assert_eq!(limit["requests_per_second"], 25);
            assert_eq!(limit["burst"], 20);
            let floor = (calls - 20.0).max(0.0) / 25.0;
            assert!(
                (num(limit, "floor_seconds") - floor).abs() < 0.001,
                "{limit}"
            );
        }
    }
    // The payments scenario pays some invoices twice over and fails two payments on purpose.
    let payments = &lines[1];
    assert!(num(&payments["extra"], "invoices_paid") <= num(payments, "documents"));
    assert_eq!(payments["extra"]["payments_failed"], 2);
    // Latency: one sample per payment, ordered percentiles, and idle passes make no call.
    let latency = &lines[5];
    let ms = &latency["latency_ms"];
    assert_eq!(num(ms, "samples"), num(latency, "documents"));
    let (p50, p90, p99, max) = (
        num(ms, "p50"),
        num(ms, "p90"),
        num(ms, "p99"),
        num(ms, "max"),
    );
    assert!(0.0 < p50 && p50 <= p90 && p90 <= p99 && p99 <= max, "{ms}");
    assert_eq!(latency["extra"]["idle_coupa_calls"]["calls"], 0);
}

#[test]
fn an_unknown_scenario_is_refused_with_its_name() {
    let (code, lines, stderr) = bench(&["no-such-scenario"]);
    assert_eq!(code, Some(2));
    assert!(lines.is_empty());
    assert!(stderr.contains("no-such-scenario"), "{stderr}");
}

#[test]
fn the_list_names_every_group() {
    let out = Command::new(env!("CARGO_BIN_EXE_coupa-bench"))
        .arg("--list")
        .output()
        .expect("coupa-bench runs");
    let text = String::from_utf8_lossy(&out.stdout);
    for group in ["limits", "unthrottled", "growth", "latency"] {
        assert!(text.contains(group), "{text}");
    }
}
