//! The scenarios: what each seeds, how the connector is configured, what is measured and
//! against which target (the issue's, printed beside the figure).

use std::collections::BTreeMap;

use anyhow::Context;
use coupa_bridge::commands::demo::erp_payments_for;
use serde_json::json;

use crate::connector;
use crate::figures::{Figures, Measured, Target};
use crate::world::{COUPA_LIMIT, Connector, World};

pub struct Scenario {
    pub name: &'static str,
    pub group: &'static str,
    pub about: &'static str,
    kind: Kind,
    /// Invoices seeded in the simulator: full run, `--quick` run.
    invoices: (usize, usize),
    /// Coupa Pay payments seeded: full, quick.
    pay_payments: (usize, usize),
}

#[derive(Clone, Copy)]
enum Kind {
    /// One invoice export pass with this monitoring option.
    Invoices {
        monitoring: &'static str,
        limited: bool,
        /// The bound on calls per invoice, fixed calls apart.
        calls_per_invoice: Option<f64>,
        per_second: Option<f64>,
    },
    /// Invoices exported (unmeasured), then one payment push pass by API.
    Payments { limited: bool },
    /// Invoices exported (unmeasured), then one Coupa Pay export pass.
    PayPayments,
    /// One invoice export pass (option 3, unthrottled) for its peak memory.
    Growth,
    /// The daemon, payments pushed to it one at a time: see [`crate::latency`].
    Latency,
}

/// The connector's concurrency in every scenario (per flow).
pub const CONCURRENCY: u32 = 8;

pub const ALL: &[Scenario] = &[
    Scenario {
        name: "limits-invoices-custom-fields",
        group: "limits",
        about: "invoice export, option 1, simulator at Coupa's limit",
        kind: Kind::Invoices {
            monitoring: "custom-fields",
            limited: true,
            calls_per_invoice: Some(2.05),
            per_second: None,
        },
        invoices: (1_000, 100),
        pay_payments: (0, 0),
    },
    Scenario {
        name: "limits-invoices-history",
        group: "limits",
        about: "invoice export, option 2, simulator at Coupa's limit",
        kind: Kind::Invoices {
            monitoring: "history",
            limited: true,
            calls_per_invoice: Some(3.1),
            per_second: None,
        },
        invoices: (1_000, 100),
        pay_payments: (0, 0),
    },
    Scenario {
        name: "limits-invoices-runs",
        group: "limits",
        about: "invoice export, option 3, simulator at Coupa's limit",
        kind: Kind::Invoices {
            monitoring: "runs",
            limited: true,
            calls_per_invoice: Some(3.1),
            per_second: None,
        },
        invoices: (1_000, 100),
        pay_payments: (0, 0),
    },
    Scenario {
        name: "limits-payments",
        group: "limits",
        about: "payment push by API, simulator at Coupa's limit",
        kind: Kind::Payments { limited: true },
        invoices: (3_000, 300),
        pay_payments: (0, 0),
    },
    Scenario {
        name: "limits-pay-payments",
        group: "limits",
        about: "Coupa Pay export, simulator at Coupa's limit",
        kind: Kind::PayPayments,
        invoices: (500, 100),
        pay_payments: (600, 60),
    },
    Scenario {
        name: "unthrottled-invoices",
        group: "unthrottled",
        about: "invoice export, option 3, no limit: the connector's own speed",
        kind: Kind::Invoices {
            monitoring: "runs",
            limited: false,
            calls_per_invoice: Some(3.1),
            per_second: Some(1_000.0),
        },
        invoices: (20_000, 2_000),
        pay_payments: (0, 0),
    },
    Scenario {
        name: "unthrottled-payments",
        group: "unthrottled",
        about: "payment push by API, no limit",
        kind: Kind::Payments { limited: false },
        invoices: (20_000, 2_000),
        pay_payments: (0, 0),
    },
    Scenario {
        name: "growth-1000",
        group: "growth",
        about: "peak memory of an option 3 pass over 1,000 invoices",
        kind: Kind::Growth,
        invoices: (1_000, 100),
        pay_payments: (0, 0),
    },
    Scenario {
        name: "growth-10000",
        group: "growth",
        about: "peak memory of an option 3 pass over 10,000 invoices",
        kind: Kind::Growth,
        invoices: (10_000, 1_000),
        pay_payments: (0, 0),
    },
    Scenario {
        name: "growth-100000",
        group: "growth",
        about: "peak memory of an option 3 pass over 100,000 invoices",
        kind: Kind::Growth,
        invoices: (100_000, 10_000),
        pay_payments: (0, 0),
    },
    Scenario {
        name: "payment-latency",
        group: "latency",
        about: "daemon: ERP payment pushed -> payment on the Coupa invoice, at Coupa's limit",
        kind: Kind::Latency,
        invoices: (2_000, 300),
        pay_payments: (0, 0),
    },
];

/// The scenarios `names` (scenario or group names, `all`) pick, in table order.
pub fn select(names: &[String]) -> anyhow::Result<Vec<&'static Scenario>> {
    for n in names {
        anyhow::ensure!(
            n == "all" || ALL.iter().any(|s| s.name == n || s.group == n),
            "no scenario or group '{n}' (see --list)"
        );
    }
    Ok(ALL
        .iter()
        .filter(|s| {
            names
                .iter()
                .any(|n| n == "all" || n == s.name || n == s.group)
        })
        .collect())
}

/// Peak RSS of the growth scenarios run so far, by name, to compare the next with.
#[derive(Default)]
pub struct History {
    growth_rss_mb: BTreeMap<&'static str, f64>,
}

pub async fn run(
    s: &'static Scenario,
    quick: bool,
    seed: u64,
    history: &mut History,
) -> anyhow::Result<Figures> {
    let size = |(full, small): (usize, usize)| if quick { small } else { full };
    let invoices = size(s.invoices);
    let pay_payments = size(s.pay_payments);
    match s.kind {
        Kind::Invoices {
            monitoring,
            limited,
            calls_per_invoice,
            per_second,
        } => {
            let mut f = invoice_pass(s, quick, seed, invoices, monitoring, limited).await?;
            if let Some(bound) = calls_per_invoice {
                let v = f.calls_per_document_excluding_fixed;
                f.targets.push(Target::at_most(
                    "calls per invoice, fixed calls apart",
                    bound,
                    v,
                ));
            }
            if let Some(bound) = per_second {
                let v = f.documents_per_second;
                f.targets
                    .push(Target::at_least("invoices per second", bound, v));
            }
            Ok(f)
        }
        Kind::Growth => {
            let mut f = invoice_pass(s, quick, seed, invoices, "runs", false).await?;
            let rss = f.peak_rss_mb;
            f.targets.push(Target::at_most(
                "peak RSS, MB (at 100,000 invoices)",
                100.0,
                rss,
            ));
            if s.name == "growth-100000"
                && let Some(ten) = history.growth_rss_mb.get("growth-10000")
            {
                f.targets.push(Target::at_most(
                    "peak RSS / the 10,000-invoice figure",
                    1.1,
                    rss / ten,
                ));
            }
            history.growth_rss_mb.insert(s.name, rss);
            Ok(f)
        }
        Kind::Payments { limited } => payment_pass(s, quick, seed, invoices, limited).await,
        Kind::PayPayments => pay_pass(s, quick, seed, invoices, pay_payments).await,
        Kind::Latency => crate::latency::run(s, quick, seed, invoices).await,
    }
}

fn connector(monitoring: &'static str, limited: bool) -> Connector {
    Connector {
        monitoring,
        budget: limited.then_some((COUPA_LIMIT.per_second, COUPA_LIMIT.burst)),
        concurrency: CONCURRENCY,
        payments_schedule: "",
        listen: None,
    }
}

/// The connector's settings as the figures show them.
pub fn describe(c: &Connector) -> serde_json::Value {
    json!({
        "monitoring": c.monitoring,
        "requests_per_second": c.budget.map(|b| b.0),
        "burst": c.budget.map(|b| b.1),
        "concurrency": c.concurrency,
        "state": "sqlite",
        "erp": "sqlite",
    })
}

/// Runs `coupa-bridge sync <flow>` as the measured process; the caller counts the documents.
async fn measured(world: &World, flow: &str) -> anyhow::Result<Measured> {
    let ended = connector::run(world.dir(), flow, &["sync", flow], &world.config).await?;
    Ok(Measured {
        documents: 0,
        stats: world.sim.state.stats.to_json(),
        throttled: world.sim.state.stats.throttled(),
        wall_seconds: ended.wall.as_secs_f64(),
        peak_rss: ended.peak_rss,
        retries: world.retries().await?,
    })
}

fn limited_figures(f: &mut Figures, limited: bool) {
    if limited {
        f.under_limit(COUPA_LIMIT.per_second, COUPA_LIMIT.burst);
    }
}

async fn invoice_pass(
    s: &'static Scenario,
    quick: bool,
    seed: u64,
    invoices: usize,
    monitoring: &'static str,
    limited: bool,
) -> anyhow::Result<Figures> {
    let c = connector(monitoring, limited);
    let world = World::new(seed, invoices, 0, c).await?;
    world.measure_from_here(limited);
    let before = world.exported_invoices();
    let mut m = measured(&world, "invoices").await?;
    m.documents = world.exported_invoices().saturating_sub(before) as u64;
    anyhow::ensure!(m.documents > 0, "the pass exported no invoice");
    let mut f = Figures::new(s, quick, "invoices", m, describe(&c));
    limited_figures(&mut f, limited);
    world.close().await;
    Ok(f)
}

/// Exports the seeded invoices without limit (setup, not measured): the ERP then has invoices
/// to pay and Coupa Pay payments to book against.
pub async fn export_first(world: &World) -> anyhow::Result<()> {
    connector::run(
        world.dir(),
        "setup-invoices",
        &["sync", "invoices"],
        &world.config,
    )
    .await
    .context("setup: exporting the invoices")?;
    Ok(())
}

async fn payment_pass(
    s: &'static Scenario,
    quick: bool,
    seed: u64,
    invoices: usize,
    limited: bool,
) -> anyhow::Result<Figures> {
    let world = World::new(seed, invoices, 0, connector("custom-fields", false)).await?;
    export_first(&world).await?;
    let posted = world
        .erp
        .invoices()
        .await
        .context("reading the ERP's invoices")?;
    let payments = erp_payments_for(&posted, "BENCH");
    world
        .erp
        .record_payments(&payments)
        .await
        .context("recording the ERP's payments")?;
    let c = connector("custom-fields", limited);
    world.reconfigure(c)?;
    world.measure_from_here(limited);
    let mut m = measured(&world, "payments").await?;
    m.documents = payments.len() as u64;
    let synced = world
        .erp
        .payments_with_status("synced", usize::MAX)
        .await
        .context("reading the ERP's payments")?;
    let failed = world
        .erp
        .payments_with_status("failed", usize::MAX)
        .await
        .context("reading the ERP's payments")?;
    anyhow::ensure!(
        synced.len() + failed.len() == payments.len(),
        "{} of {} payments left pending",
        payments.len() - synced.len() - failed.len(),
        payments.len()
    );
    let invoices_paid = synced
        .iter()
        .filter_map(|p| p.coupa_invoice_id)
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let mut f = Figures::new(s, quick, "payments", m, describe(&c));
    let per_invoice = (f.api_calls - f.fixed_calls) as f64 / invoices_paid.max(1) as f64;
    f.extra.insert("invoices_paid", json!(invoices_paid));
    f.extra.insert("payments_failed", json!(failed.len()));
    f.extra.insert(
        "calls_per_invoice_paid_excluding_fixed",
        json!(crate::figures::round(per_invoice)),
    );
    f.targets.push(Target::at_most(
        "calls per invoice paid, fixed calls apart",
        1.1,
        per_invoice,
    ));
    limited_figures(&mut f, limited);
    world.close().await;
    Ok(f)
}

async fn pay_pass(
    s: &'static Scenario,
    quick: bool,
    seed: u64,
    invoices: usize,
    pay_payments: usize,
) -> anyhow::Result<Figures> {
    let world = World::new(
        seed,
        invoices,
        pay_payments,
        connector("custom-fields", false),
    )
    .await?;
    export_first(&world).await?;
    let c = connector("custom-fields", true);
    world.reconfigure(c)?;
    world.measure_from_here(true);
    let before = world.erp_pay_payments().await?;
    let mut m = measured(&world, "pay-payments").await?;
    m.documents = world.erp_pay_payments().await?.saturating_sub(before);
    anyhow::ensure!(m.documents > 0, "the pass booked no Coupa Pay payment");
    let mut f = Figures::new(s, quick, "pay-payments", m, describe(&c));
    limited_figures(&mut f, true);
    world.close().await;
    Ok(f)
}
