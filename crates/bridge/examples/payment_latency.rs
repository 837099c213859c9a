//! How long an ERP payment takes to reach its Coupa invoice when a daemon runs the payment push
//! on a fixed interval (issue 5, Coupa certification scenario 5.1: "send ERP payments as soon
//! as they exist"), and what a pass costs when nothing is pending.
//!
//! Everything runs in-process: the Coupa simulator with Coupa's published limit (`--rate`
//! requests/s, bursts of 20, no `Retry-After`), the SQLite reference ERP and state store in a
//! temporary folder, and a client on the connector's default budget (20 requests/s, bursts of
//! 10; its rate governor is on). Setup books the invoices with one invoice export pass (custom
//! fields monitoring) with the simulator's limit lifted, since those ~2,000 calls are not what
//! is measured; the limit is restored, and the simulator's counters reset, before measuring.
//!
//! Then, concurrently:
//! - a "daemon" runs `PaymentPush::run()`, sleeping `--interval-ms` after each pass ends;
//! - a producer records `--payments` matchable ERP payments one at a time, at exponentially
//!   distributed intervals with a mean of half the daemon's interval (seeded, deterministic),
//!   noting the instant each row is committed;
//! - a watcher polls the simulator's store every 5 ms and notes the instant each payment shows
//!   on its Coupa invoice (a payment whose `notes` are the check number, else the ERP reference,
//!   and whose amount is the ERP's).
//!
//! Latency is appearance minus insertion (resolution: the 5 ms poll). Once everything is
//! synced, 200 passes with nothing pending measure the idle cost; they must make no Coupa call.
//! Prints one JSON object on stdout and a one-line summary on stderr. Timings are figures, never
//! asserted: the program fails (exit 1) only if a payment never appears on its invoice within 60
//! seconds of the last insertion (or could not be recorded in the ERP at all).
//!
//! ```text
//! cargo run --release -p coupa-bridge --example payment_latency -- \
//!     [--payments N (300)] [--interval-ms I (250)] [--rate R (25; 0 = off)] [--seed S (7)]
//! ```

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use coupa_api::Client;
use coupa_bridge::commands::demo::{
    erp_payments_for, seed_erp_from_sim, sim_client_config, sqlite_url,
};
use coupa_bridge::config::PaymentsConfig;
use coupa_bridge::erp::sql::SqlErp;
use coupa_bridge::erp::{Erp, ErpPayment, NewErpPayment};
use coupa_bridge::flows::invoice_export::{InvoiceExport, Monitoring, Settings as ExportSettings};
use coupa_bridge::flows::payment_push::{PaymentPush, matching};
use coupa_bridge::store::Store;
use coupa_bridge::store::call_log::CallLog;
use coupa_doc::Value;
use coupa_sim::SimConfig;
use coupa_sim::config::RateLimit;
use rust_decimal::Decimal;
use tokio::sync::mpsc::error::TryRecvError;
use tokio::sync::{mpsc, watch};

const INVOICES: usize = 2_000;
/// Coupa's published burst.
const SIM_BURST: u32 = 20;
const WATCH_POLL: Duration = Duration::from_millis(5);
/// How long after the last insertion a payment may take before it counts as lost.
const GIVE_UP_AFTER: Duration = Duration::from_secs(60);
const IDLE_PASSES: usize = 200;

const USAGE: &str = "usage: payment_latency [--payments N (300)] [--interval-ms I (250)] \
                     [--rate R (25, requests/s; 0 = off)] [--seed S (7)]";

struct Args {
    payments: usize,
    interval_ms: u64,
    rate: u32,
    seed: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        payments: 300,
        interval_ms: 250,
        rate: 25,
        seed: 7,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            return Err(String::new());
        }
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |what: &str| format!("{flag} takes {what}, not '{value}'");
        match flag.as_str() {
            "--payments" => {
                args.payments = match value.parse() {
                    Ok(n) if n > 0 => n,
                    _ => return Err(bad("a positive number")),
                }
            }
            "--interval-ms" => args.interval_ms = value.parse().map_err(|_| bad("milliseconds"))?,
            "--rate" => args.rate = value.parse().map_err(|_| bad("requests per second"))?,
            "--seed" => args.seed = value.parse().map_err(|_| bad("a number"))?,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(args)
}

/// A small deterministic generator (as in `tests/it/crash.rs`), so a run can be repeated.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Exponentially distributed, with this mean, cut at ten means.
    fn exponential(&mut self, mean: Duration) -> Duration {
        // Uniform in (0, 1]: never ln(0).
        let u = ((self.next() >> 11) + 1) as f64 / (1u64 << 53) as f64;
        mean.mul_f64((-u.ln()).min(10.0))
    }
}

/// A payment the watcher looks for: on which Coupa invoice, with which notes and amount.
struct Target {
    payment: NewErpPayment,
    invoice_id: i64,
    notes: String,
    amount: Decimal,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(why) => {
            if why.is_empty() {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            eprintln!("payment_latency: {why}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    if cfg!(debug_assertions) {
        eprintln!("payment_latency: DEBUG build, the figures are not representative");
    }
    let rate_limit = (args.rate > 0).then_some(RateLimit {
        per_second: args.rate,
        burst: SIM_BURST,
        retry_after: false,
    });

    // --- Setup -------------------------------------------------------------------------------
    let setup_started = Instant::now();
    let data_dir = tempfile::Builder::new()
        .prefix("payment-latency-")
        .tempdir()
        .expect("a temporary data folder");
    let sim = coupa_sim::spawn(SimConfig {
        seed: args.seed,
        invoices: INVOICES,
        rate_limit,
        ..SimConfig::default()
    })
    .await
    .expect("the simulator starts");
    // Booking the invoices is not what is measured: no limit while it runs.
    sim.state.throttle.set_limit(None);

    let erp = SqlErp::connect(&sqlite_url(&data_dir.path().join("erp.db")))
        .await
        .expect("the ERP opens");
    seed_erp_from_sim(&erp, &sim)
        .await
        .expect("the ERP's supplier master loads");
    let store = Store::connect(&sqlite_url(&data_dir.path().join("state.db")))
        .await
        .expect("the state store opens");
    let (call_log, call_log_task) = CallLog::spawn(store.clone());
    let config = |governed: bool| {
        let mut c = sim_client_config(sim.base_url());
        if !governed {
            c.rate = None;
        }
        c
    };
    let setup_client =
        Client::new(config(false), Arc::new(call_log.clone())).expect("the setup client");
    let export = InvoiceExport::new(
        setup_client,
        Arc::new(erp.clone()),
        store.clone(),
        ExportSettings {
            monitoring: Monitoring::CustomFields,
            ..ExportSettings::default()
        },
    );
    let booked_report = export.run().await.expect("the invoice export pass");
    drop(export);
    let booked = erp.invoices().await.expect("the ERP's invoices");
    let targets = targets(&sim, &booked, args.payments);
    if targets.len() < args.payments {
        eprintln!(
            "payment_latency: only {} matchable payments for {} booked invoices; using them all",
            targets.len(),
            booked.len()
        );
    }
    if targets.is_empty() {
        eprintln!("payment_latency: nothing to pay");
        return ExitCode::FAILURE;
    }
    eprintln!(
        "payment_latency: setup {:.1?}: {} invoices, {} posted to the ERP, {} payments to send",
        setup_started.elapsed(),
        INVOICES,
        booked_report.posted,
        targets.len()
    );

    // --- Measurement -------------------------------------------------------------------------
    sim.state.throttle.set_limit(rate_limit);
    sim.state.stats.reset();
    let client = Client::new(config(true), Arc::new(call_log)).expect("the Coupa client");
    let erp_dyn: Arc<dyn Erp> = Arc::new(erp.clone());
    let push = PaymentPush::new(
        client,
        erp_dyn.clone(),
        store.clone(),
        PaymentsConfig::default(),
    );
    let interval = Duration::from_millis(args.interval_ms);
    let targets = Arc::new(targets);

    let (done_tx, done_rx) = watch::channel(false);
    let (inserted_tx, inserted_rx) = mpsc::unbounded_channel();
    let producer = tokio::spawn(produce(
        erp.clone(),
        targets.clone(),
        SplitMix(args.seed),
        interval / 2,
        inserted_tx,
    ));
    let watcher = tokio::spawn(watch_coupa(
        sim.state.clone(),
        targets.clone(),
        inserted_rx,
        done_tx,
    ));
    // The daemon runs on this task (a pass's future is not `Send`), the others on their own.
    let (push, daemon_stats) = daemon(push, interval, done_rx).await;
    let seen = watcher.await.expect("the watcher task");
    let produced = producer.await.expect("the producer task");
    let calls_total = sim.state.stats.total_calls();
    let throttled = sim.state.stats.throttled();
    let by_endpoint: serde_json::Map<String, serde_json::Value> = sim
        .state
        .stats
        .to_json()
        .get("endpoints")
        .and_then(serde_json::Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.get("calls").cloned().unwrap_or_default()))
                .collect()
        })
        .unwrap_or_default();

    let mut latencies: Vec<f64> = Vec::with_capacity(targets.len());
    let mut missing = Vec::new();
    for (i, t) in targets.iter().enumerate() {
        match seen[i] {
            Some((inserted, appeared)) => {
                latencies.push(appeared.duration_since(inserted).as_secs_f64() * 1e3);
            }
            None => missing.push(t.payment.payment_ref.clone()),
        }
    }
    if let Err(e) = &produced {
        eprintln!("payment_latency: the producer stopped: {e}");
    }
    if !missing.is_empty() {
        report_missing(&erp, &missing).await;
    }

    // --- Idle cost ---------------------------------------------------------------------------
    // What the last pass may have left pending (it cannot have, but the idle figures must be
    // about empty passes only).
    for _ in 0..10 {
        match erp_dyn.pending_payments(0, 1).await {
            Ok(rows) if rows.is_empty() => break,
            _ => {
                let _ = push.run().await;
            }
        }
    }
    let calls_before = sim.state.stats.total_calls();
    let mut idle = Vec::with_capacity(IDLE_PASSES);
    let mut idle_runs = 0;
    for _ in 0..IDLE_PASSES {
        let t0 = Instant::now();
        let report = push.run().await;
        idle.push(t0.elapsed());
        if !matches!(report, Ok(ref r) if r.run == 0) {
            idle_runs += 1;
        }
    }
    let idle_calls = sim.state.stats.total_calls() - calls_before;
    if idle_runs > 0 {
        eprintln!("payment_latency: {idle_runs} idle passes found work or failed");
    }
    drop(push);
    call_log_task.flush().await;
    sim.shutdown().await;

    // --- Report ------------------------------------------------------------------------------
    let lat = Summary::of(&mut latencies);
    let idle_us: Vec<f64> = idle.iter().map(|d| d.as_secs_f64() * 1e6).collect();
    let idle_mean = idle_us.iter().sum::<f64>() / idle_us.len().max(1) as f64;
    let idle_max = idle_us.iter().copied().fold(0.0, f64::max);
    let sent = latencies.len();
    let out = serde_json::json!({
        "payments": targets.len(),
        "interval_ms": args.interval_ms,
        "rate_limit": rate_limit.map(|l| serde_json::json!({
            "per_second": l.per_second,
            "burst": l.burst,
        })),
        "client_budget": { "per_second": 20, "burst": 10 },
        "seed": args.seed,
        "latency_ms": {
            "p50": round1(lat.p50),
            "p90": round1(lat.p90),
            "p99": round1(lat.p99),
            "max": round1(lat.max),
            "mean": round1(lat.mean),
        },
        "missing": missing.len(),
        "passes": daemon_stats.passes,
        "passes_with_work": daemon_stats.with_work,
        "pass_errors": daemon_stats.errors,
        "api_calls_total": calls_total,
        "api_calls_per_payment": round2(calls_total as f64 / sent.max(1) as f64),
        "api_calls_by_endpoint": by_endpoint,
        "throttled_429": throttled,
        "idle_pass": {
            "passes": IDLE_PASSES,
            "mean_us": idle_mean.round(),
            "max_us": idle_max.round(),
            "coupa_calls": idle_calls,
        },
    });
    println!("{out}");
    eprintln!(
        "payment_latency: {} payments, daemon every {} ms, Coupa {}: latency p50 {:.0} ms, p90 \
         {:.0} ms, p99 {:.0} ms, max {:.0} ms; {} passes ({} with work), {} Coupa calls ({:.2} \
         per payment), {} 429s; idle pass {:.0} µs mean, {:.0} µs max, {} Coupa calls{}",
        targets.len(),
        args.interval_ms,
        rate_limit.map_or("unthrottled".to_owned(), |l| format!(
            "{}/s burst {}",
            l.per_second, l.burst
        )),
        lat.p50,
        lat.p90,
        lat.p99,
        lat.max,
        daemon_stats.passes,
        daemon_stats.with_work,
        calls_total,
        calls_total as f64 / sent.max(1) as f64,
        throttled,
        idle_mean,
        idle_max,
        idle_calls,
        if missing.is_empty() {
            String::new()
        } else {
            format!("; {} NEVER APPEARED", missing.len())
        }
    );
    if missing.is_empty() && produced.is_ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// The first `n` payments the ERP makes for what it booked that can only match one invoice:
/// not the `NO-SUCH-` rows, and only invoice numbers Coupa has once (the flow would rightly
/// refuse an ambiguous one, which is not what is measured here).
fn targets(
    sim: &coupa_sim::SimHandle,
    booked: &[coupa_bridge::erp::ErpInvoiceRecord],
    n: usize,
) -> Vec<Target> {
    let mut numbers: HashMap<String, usize> = HashMap::new();
    {
        let db = sim.state.db.lock();
        for inv in db.invoices.rows() {
            if let Some(number) = inv.get("invoice-number").and_then(Value::as_str) {
                *numbers.entry(number.trim().to_owned()).or_default() += 1;
            }
        }
    }
    let by_number: HashMap<&str, i64> = booked
        .iter()
        .map(|r| (r.invoice_number.trim(), r.coupa_invoice_id))
        .collect();
    let matchable: Vec<NewErpPayment> = erp_payments_for(booked, "LAT")
        .into_iter()
        .filter(|p| !p.invoice_number.starts_with("NO-SUCH-"))
        .collect();
    let before = matchable.len();
    let unique: Vec<NewErpPayment> = matchable
        .into_iter()
        .filter(|p| numbers.get(p.invoice_number.trim()) == Some(&1))
        .collect();
    if unique.len() < before {
        eprintln!(
            "payment_latency: left out {} payments whose invoice number Coupa has more than once",
            before - unique.len()
        );
    }
    unique
        .into_iter()
        .filter_map(|p| {
            let invoice_id = *by_number.get(p.invoice_number.trim())?;
            let notes = matching::notes(&ErpPayment {
                id: 0,
                payment_ref: p.payment_ref.clone(),
                invoice_number: p.invoice_number.clone(),
                supplier_name: p.supplier_name.clone(),
                supplier_number: p.supplier_number.clone(),
                amount: p.amount,
                currency: p.currency.clone(),
                payment_date: p.payment_date,
                check_number: p.check_number.clone(),
                paid_in_full: p.paid_in_full,
            });
            Some(Target {
                amount: p.amount,
                payment: p,
                invoice_id,
                notes,
            })
        })
        .take(n)
        .collect()
}

#[derive(Default)]
struct DaemonStats {
    passes: u64,
    with_work: u64,
    errors: u64,
}

/// Runs a pass, sleeps `interval` after it ends, until told to stop.
async fn daemon(
    push: PaymentPush,
    interval: Duration,
    mut done: watch::Receiver<bool>,
) -> (PaymentPush, DaemonStats) {
    let mut stats = DaemonStats::default();
    while !*done.borrow() {
        stats.passes += 1;
        match push.run().await {
            Ok(r) if r.run != 0 => stats.with_work += 1,
            Ok(_) => {}
            Err(e) => {
                stats.errors += 1;
                eprintln!("payment_latency: pass failed: {e}");
            }
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = done.changed() => {}
        }
    }
    (push, stats)
}

/// Records the payments one at a time, `mean` apart on average; sends (index, instant of the
/// commit) for each.
async fn produce(
    erp: SqlErp,
    targets: Arc<Vec<Target>>,
    mut rng: SplitMix,
    mean: Duration,
    inserted: mpsc::UnboundedSender<(usize, Instant)>,
) -> Result<(), String> {
    for (i, t) in targets.iter().enumerate() {
        tokio::time::sleep(rng.exponential(mean)).await;
        erp.record_payments(std::slice::from_ref(&t.payment))
            .await
            .map_err(|e| format!("recording {}: {e}", t.payment.payment_ref))?;
        let _ = inserted.send((i, Instant::now()));
    }
    Ok(())
}

/// Polls the simulator's store until every inserted payment is on its invoice, or until
/// [`GIVE_UP_AFTER`] past the last insertion; then tells the daemon to stop. Returns
/// (inserted, appeared) per target.
async fn watch_coupa(
    sim: Arc<coupa_sim::SimState>,
    targets: Arc<Vec<Target>>,
    mut inserted: mpsc::UnboundedReceiver<(usize, Instant)>,
    done: watch::Sender<bool>,
) -> Vec<Option<(Instant, Instant)>> {
    let mut seen: Vec<Option<(Instant, Instant)>> = vec![None; targets.len()];
    let mut waiting: Vec<(usize, Instant)> = Vec::new();
    let mut producing = true;
    let mut last_insert = Instant::now();
    loop {
        while producing {
            match inserted.try_recv() {
                Ok(item) => {
                    last_insert = item.1;
                    waiting.push(item);
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => producing = false,
            }
        }
        if !waiting.is_empty() {
            let db = sim.db.lock();
            let now = Instant::now();
            waiting.retain(|&(i, at)| {
                let t = &targets[i];
                if on_invoice(&db, t) {
                    seen[i] = Some((at, now));
                    false
                } else {
                    true
                }
            });
        }
        if !producing && (waiting.is_empty() || last_insert.elapsed() > GIVE_UP_AFTER) {
            let _ = done.send(true);
            return seen;
        }
        tokio::time::sleep(WATCH_POLL).await;
    }
}

/// Whether the invoice carries a payment with the target's notes and amount.
fn on_invoice(db: &coupa_sim::Db, t: &Target) -> bool {
    db.invoices
        .get(t.invoice_id)
        .and_then(|inv| inv.get("payments"))
        .and_then(Value::as_array)
        .is_some_and(|payments| {
            payments.iter().filter_map(Value::as_object).any(|p| {
                p.get("notes").and_then(Value::as_str) == Some(t.notes.as_str())
                    && p.get("amount-paid").and_then(Value::as_decimal) == Some(t.amount)
            })
        })
}

/// Says what the ERP holds for the payments that never appeared.
async fn report_missing(erp: &SqlErp, missing: &[String]) {
    eprintln!(
        "payment_latency: {} payments never appeared on their Coupa invoice",
        missing.len()
    );
    let Ok(rows) = erp.payments().await else {
        return;
    };
    for r in rows
        .iter()
        .filter(|r| missing.contains(&r.payment_ref))
        .take(10)
    {
        eprintln!(
            "  {} (invoice {}): {} {}",
            r.payment_ref,
            r.invoice_number,
            r.sync_status,
            r.sync_error.as_deref().unwrap_or("")
        );
    }
}

struct Summary {
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
    mean: f64,
}

impl Summary {
    /// Nearest-rank percentiles; zeros when empty.
    fn of(values: &mut [f64]) -> Summary {
        values.sort_by(f64::total_cmp);
        let rank = |p: f64| {
            if values.is_empty() {
                return 0.0;
            }
            let k = ((p * values.len() as f64).ceil() as usize).clamp(1, values.len());
            values[k - 1]
        };
        Summary {
            p50: rank(0.50),
            p90: rank(0.90),
            p99: rank(0.99),
            max: values.last().copied().unwrap_or(0.0),
            mean: values.iter().sum::<f64>() / values.len().max(1) as f64,
        }
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}
