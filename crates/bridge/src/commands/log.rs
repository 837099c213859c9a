//! `coupa-bridge log`: the API call log from the state store, filtered by flow, run, document,
//! status class and age, as a table or as JSON lines.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::Args;

use crate::config::Config;
use crate::flows::FlowName;
use crate::store::calls::STATUS_CLASSES;
use crate::store::{CallFilter, CallRecord, Store};

/// Longest error text a table row shows; `--json` has it whole.
const ERROR_WIDTH: usize = 60;
/// Longest path a table row shows.
const PATH_WIDTH: usize = 60;

#[derive(Debug, Args)]
#[command(
    after_help = "Calls are listed newest first: --limit keeps the latest ones.\n\
    Examples:\n  \
    coupa-bridge log --flow invoices --status 5xx --since 2h\n  \
    coupa-bridge log --document invoice:1042\n  \
    coupa-bridge log --run 17 --json"
)]
pub struct LogArgs {
    /// The configuration file (for `state.url`).
    #[arg(long, default_value = crate::config::DEFAULT_PATH)]
    pub config: PathBuf,
    /// The tenant to use, for a file with [tenants.<name>] tables (required there).
    #[arg(long, value_name = "NAME")]
    pub tenant: Option<String>,
    /// Only this flow's calls.
    #[arg(long, value_parser = parse_flow)]
    pub flow: Option<FlowName>,
    /// Only the calls of this run (the run id `sync` prints and the dashboard shows).
    #[arg(long)]
    pub run: Option<i64>,
    /// Only the calls about this document, by its journal key: `invoice:1042`,
    /// `pay-payment:77`, `erp-payment:PAY-3`.
    #[arg(long, value_name = "KEY")]
    pub document: Option<String>,
    /// Only calls with this outcome: 2xx, 3xx, 4xx (not 429), 429, 5xx, or error (no answer).
    #[arg(long, value_parser = parse_status)]
    pub status: Option<String>,
    /// Only calls from the last 30m, 2h, 7d (s, m, h, d), or since an RFC 3339 instant.
    #[arg(long, value_name = "WHEN", value_parser = parse_since)]
    pub since: Option<DateTime<Utc>>,
    /// At most this many calls, the newest.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// One JSON object per line instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: LogArgs) -> anyhow::Result<ExitCode> {
    let loaded = Config::load_tenant(
        &args.config,
        crate::config::process_env(),
        args.tenant.as_deref(),
    )?;
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let store = Store::connect(&loaded.config.state.url)
        .await
        .context("cannot open the state store")?;
    let filter = CallFilter {
        flow: args.flow.map(|f| f.as_str().to_owned()),
        run: args.run,
        document: args.document,
        status_class: args.status,
        since: args.since,
        limit: args.limit,
    };
    let calls = store.calls(&filter).await?;
    if args.json {
        for c in &calls {
            println!("{}", json(c));
        }
    } else if calls.is_empty() {
        eprintln!("no API calls match");
    } else {
        print!("{}", table(&calls));
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_flow(s: &str) -> Result<FlowName, String> {
    FlowName::parse(s).ok_or_else(|| {
        let names: Vec<&str> = FlowName::ALL.iter().map(|f| f.as_str()).collect();
        format!("expected one of {}", names.join(", "))
    })
}

fn parse_status(s: &str) -> Result<String, String> {
    let s = s.trim().to_ascii_lowercase();
    if STATUS_CLASSES.contains(&s.as_str()) {
        Ok(s)
    } else {
        Err(format!("expected one of {}", STATUS_CLASSES.join(", ")))
    }
}

fn parse_since(s: &str) -> Result<DateTime<Utc>, String> {
    since(s, Utc::now())
}

/// `--since`: an age (`30m`, `2h`, `7d`, `90s`) before `now`, or an RFC 3339 instant.
fn since(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    let expected = || {
        "expected an age such as 30m, 2h or 7d (units s, m, h, d), or an RFC 3339 time such as \
         2026-11-21T08:00:00Z"
            .to_owned()
    };
    let s = s.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(s) {
        return Ok(at.with_timezone(&Utc));
    }
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    let n: i64 = digits.parse().map_err(|_| expected())?;
    let age = match unit {
        "s" => chrono::Duration::try_seconds(n),
        "m" => chrono::Duration::try_minutes(n),
        "h" => chrono::Duration::try_hours(n),
        "d" => chrono::Duration::try_days(n),
        _ => None,
    }
    .ok_or_else(expected)?;
    now.checked_sub_signed(age).ok_or_else(expected)
}

fn json(c: &CallRecord) -> serde_json::Value {
    serde_json::json!({
        "at": c.at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "flow": c.flow,
        "run": c.run,
        "document": c.document,
        "method": c.method,
        "path": c.path,
        "status": c.status,
        "status_class": crate::store::calls::status_class(c.status),
        "duration_ms": c.duration_ms,
        "waited_ms": c.waited_ms,
        "attempt": c.attempt,
        "bytes_sent": c.bytes_sent,
        "bytes_received": c.bytes_received,
        "error": c.error,
    })
}

/// The calls as aligned columns under a header.
fn table(calls: &[CallRecord]) -> String {
    let header = [
        "TIME", "FLOW", "RUN", "DOCUMENT", "METHOD", "PATH", "STATUS", "MS", "ATTEMPT", "ERROR",
    ];
    let rows: Vec<[String; 10]> = calls
        .iter()
        .map(|c| {
            [
                c.at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                c.flow.clone(),
                c.run.map(|r| r.to_string()).unwrap_or_else(|| "-".into()),
                c.document.clone().unwrap_or_else(|| "-".into()),
                c.method.clone(),
                truncate(&c.path, PATH_WIDTH),
                c.status
                    .map(|s| s.to_string())
                    .unwrap_or_else(|| "-".into()),
                c.duration_ms.to_string(),
                c.attempt.to_string(),
                c.error
                    .as_deref()
                    .map(|e| truncate(&e.replace(['\n', '\r'], " "), ERROR_WIDTH))
                    .unwrap_or_default(),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let mut text = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            if i > 0 {
                text.push_str("  ");
            }
            text.push_str(cell);
            text.extend(std::iter::repeat_n(' ', w - cell.chars().count()));
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&header.map(String::from));
    for row in &rows {
        line(row);
    }
    out
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut cut: String = s.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn since_takes_ages_and_instants_and_explains_the_rest() {
        let now = Utc
            .with_ymd_and_hms(2026, 11, 21, 12, 0, 0)
            .single()
            .expect("valid");
        assert_eq!(since("30m", now), Ok(now - chrono::Duration::minutes(30)));
        assert_eq!(since("2h", now), Ok(now - chrono::Duration::hours(2)));
        assert_eq!(since("7d", now), Ok(now - chrono::Duration::days(7)));
        assert_eq!(since("90s", now), Ok(now - chrono::Duration::seconds(90)));
        assert_eq!(
            since("2026-11-21T09:30:00+01:00", now),
            Ok(now - chrono::Duration::minutes(210))
        );
        for bad in ["", "m", "30", "2w", "yesterday", "-3h", "99999999999999d"] {
            let e = since(bad, now).expect_err(bad);
            assert!(e.contains("30m") && e.contains("RFC 3339"), "{bad}: {e}");
        }
    }

    #[test]
    fn status_and_flow_names_are_checked() {
        assert_eq!(parse_status("5XX"), Ok("5xx".into()));
        assert!(parse_status("500").expect_err("a code").contains("429"));
        assert_eq!(parse_flow("pay-payments"), Ok(FlowName::PayPayments));
        assert!(
            parse_flow("bills")
                .expect_err("no such flow")
                .contains("invoices")
        );
    }

    #[test]
    fn the_table_aligns_and_cuts_long_errors() {
        let call = CallRecord {
            at: Utc
                .with_ymd_and_hms(2026, 11, 21, 8, 0, 0)
                .single()
                .expect("valid"),
            flow: "invoices".into(),
            run: Some(3),
            document: Some("invoice:1042".into()),
            method: "PUT".into(),
            path: "/api/invoices/1042".into(),
            status: None,
            duration_ms: 30_000,
            waited_ms: 0,
            attempt: 2,
            bytes_sent: 10,
            bytes_received: 0,
            error: Some("x".repeat(200)),
        };
        let text = table(&[call]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].starts_with("TIME"), "{text}");
        assert!(
            lines[1].contains("invoice:1042") && lines[1].contains("30000"),
            "{text}"
        );
        assert!(lines[1].ends_with('…') && lines[1].len() < 200, "{text}");
        let doc = lines[0].find("DOCUMENT").expect("column");
        assert_eq!(lines[1].find("invoice:1042"), Some(doc), "{text}");
    }
}
