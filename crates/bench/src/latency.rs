//! Payment latency in daemon mode: `coupa-bridge run` as its own process, the simulator at
//! Coupa's limit, and an ERP that pushes its payments one at a time to the daemon's
//! `POST /api/erp/payments` at random instants (exponential gaps, seeded). Latency is from the
//! instant a payment is sent (its row is committed before the answer) to the instant it shows
//! on its Coupa invoice, which a watcher reads from the simulator every 5 ms. Then the daemon
//! idles for a few seconds: its scheduled payment passes must cost Coupa nothing.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use coupa_bridge::commands::demo::erp_payments_for;
use coupa_doc::Value;
use serde_json::json;

use crate::connector;
use crate::figures::{Figures, Latency, Measured, Target};
use crate::scenarios::{CONCURRENCY, Scenario, describe, export_first};
use crate::world::{COUPA_LIMIT, Connector, World};

/// Mean gap between two pushed payments.
const MEAN_GAP: Duration = Duration::from_millis(200);
const WATCH_POLL: Duration = Duration::from_millis(5);
/// How long after the last push a payment may take before the scenario fails.
const GIVE_UP_AFTER: Duration = Duration::from_secs(60);
/// How long the daemon idles, after the stream, to count what idle passes cost.
const IDLE: Duration = Duration::from_secs(5);

/// A payment on its way: the Coupa invoice it lands on and the check number it carries.
struct Sent {
    invoice_id: i64,
    check: String,
    at: Instant,
}

pub async fn run(
    s: &'static Scenario,
    quick: bool,
    seed: u64,
    invoices: usize,
) -> anyhow::Result<Figures> {
    let stream = if quick { 40 } else { 300 };
    let world = World::new(
        seed,
        invoices,
        0,
        Connector {
            monitoring: "custom-fields",
            budget: None,
            concurrency: CONCURRENCY,
            payments_schedule: "",
            listen: None,
        },
    )
    .await?;
    export_first(&world).await?;
    let posted = world
        .erp
        .invoices()
        .await
        .context("reading the ERP's invoices")?;
    // Invoice numbers are unique per supplier only.
    let key = |number: &str, supplier: &Option<String>| (number.to_owned(), supplier.clone());
    let coupa_id: HashMap<(String, Option<String>), i64> = posted
        .iter()
        .map(|i| {
            (
                key(&i.invoice_number, &i.supplier_number),
                i.coupa_invoice_id,
            )
        })
        .collect();
    // One full payment, with its check number, per invoice.
    let payments: Vec<_> = erp_payments_for(&posted, "LAT")
        .into_iter()
        .filter(|p| p.paid_in_full && p.check_number.is_some() && p.supplier_number.is_some())
        .filter(|p| coupa_id.contains_key(&key(&p.invoice_number, &p.supplier_number)))
        .take(stream)
        .collect();
    anyhow::ensure!(!payments.is_empty(), "no invoice to pay");

    let port = free_port()?;
    let c = Connector {
        monitoring: "custom-fields",
        budget: Some((COUPA_LIMIT.per_second, COUPA_LIMIT.burst)),
        concurrency: CONCURRENCY,
        // The product's default schedule: the push wakes the flow, the schedule is a backstop.
        payments_schedule: "*/10 * * * * *",
        listen: Some(port),
    };
    world.reconfigure(c)?;
    world.measure_from_here(true);
    let daemon = connector::start(world.dir(), "daemon", &["run"], &world.config)?;
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    wait_ready(&http, &base).await?;

    let mut rng = SplitMix(seed ^ 0x1a7e);
    let mut sent: Vec<Sent> = Vec::with_capacity(payments.len());
    let mut seen: Vec<Option<Instant>> = vec![None; payments.len()];
    let began = Instant::now();
    let mut next_at = Instant::now();
    for p in &payments {
        while Instant::now() < next_at {
            watch(&world, &sent, &mut seen);
            tokio::time::sleep(WATCH_POLL.min(next_at - Instant::now())).await;
        }
        let body = json!([{
            "payment_ref": p.payment_ref,
            "invoice_number": p.invoice_number,
            "supplier_name": p.supplier_name,
            "supplier_number": p.supplier_number,
            "amount": serde_json::Number::from_string_unchecked(p.amount.to_string()),
            "currency": p.currency,
            "payment_date": p.payment_date.to_string(),
            "check_number": p.check_number,
            "paid_in_full": p.paid_in_full,
        }]);
        let at = Instant::now();
        let resp = http
            .post(format!("{base}/api/erp/payments"))
            .json(&body)
            .send()
            .await
            .context("pushing a payment to the daemon")?;
        anyhow::ensure!(
            resp.status().is_success(),
            "the daemon refused payment {}: HTTP {}",
            p.payment_ref,
            resp.status()
        );
        sent.push(Sent {
            invoice_id: coupa_id
                .get(&key(&p.invoice_number, &p.supplier_number))
                .copied()
                .unwrap_or_default(),
            check: p.check_number.clone().unwrap_or_default(),
            at,
        });
        next_at = at + rng.exponential(MEAN_GAP);
    }
    let last = Instant::now();
    while seen.iter().any(Option::is_none) {
        anyhow::ensure!(
            last.elapsed() < GIVE_UP_AFTER,
            "{} payments never reached Coupa",
            seen.iter().filter(|s| s.is_none()).count()
        );
        watch(&world, &sent, &mut seen);
        tokio::time::sleep(WATCH_POLL).await;
    }
    let streamed = began.elapsed();
    let stats = world.sim.state.stats.to_json();
    let throttled = world.sim.state.stats.throttled();
    let retries = world.retries().await?;

    // Idle: only the schedule fires; nothing is pending.
    world.sim.state.stats.reset();
    tokio::time::sleep(IDLE).await;
    let idle_calls = world.sim.state.stats.total_calls();
    let ended = daemon.stop().await?;

    let latencies: Vec<f64> = sent
        .iter()
        .zip(&seen)
        .filter_map(|(s, seen)| seen.map(|t| t.duration_since(s.at).as_secs_f64() * 1000.0))
        .collect();
    let m = Measured {
        documents: payments.len() as u64,
        stats,
        throttled,
        wall_seconds: streamed.as_secs_f64(),
        peak_rss: ended.peak_rss,
        retries,
    };
    let mut f = Figures::new(s, quick, "payments", m, describe(&c));
    f.latency_ms = Latency::of(latencies);
    let p99 = f.latency_ms.as_ref().map_or(f64::INFINITY, |l| l.p99);
    f.targets
        .push(Target::at_most("p99 latency, ms", 2000.0, p99));
    f.extra.insert("mean_gap_ms", json!(MEAN_GAP.as_millis()));
    f.extra.insert(
        "idle_coupa_calls",
        json!({ "seconds": IDLE.as_secs(), "calls": idle_calls }),
    );
    world.close().await;
    Ok(f)
}

/// Notes the instant each sent payment shows on its Coupa invoice.
fn watch(world: &World, sent: &[Sent], seen: &mut [Option<Instant>]) {
    let now = Instant::now();
    let db = world.sim.state.db.lock();
    for (s, seen) in sent.iter().zip(seen.iter_mut()) {
        if seen.is_some() {
            continue;
        }
        let landed = db
            .invoices
            .get(s.invoice_id)
            .and_then(|inv| inv.get("payments"))
            .and_then(Value::as_array)
            .is_some_and(|ps| {
                ps.iter().any(|p| {
                    p.as_object()
                        .and_then(|o| o.get("notes"))
                        .and_then(Value::as_str)
                        == Some(s.check.as_str())
                })
            });
        if landed {
            *seen = Some(now);
        }
    }
}

async fn wait_ready(http: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await
            && r.status().is_success()
        {
            return Ok(());
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the daemon did not become ready on {base}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A port nobody listens on now (the daemon binds it a moment later).
fn free_port() -> anyhow::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    Ok(l.local_addr().context("cannot find a free port")?.port())
}

/// A small seeded generator (SplitMix64) for the gaps between payments.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// An exponentially distributed duration with this mean.
    fn exponential(&mut self, mean: Duration) -> Duration {
        let u = ((self.next() >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
        mean.mul_f64(-u.ln())
    }
}
