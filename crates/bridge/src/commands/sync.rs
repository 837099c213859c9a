//! `coupa-bridge sync <flow>`: one pass of a flow with the configured Coupa, ERP and state.
//!
//! Exit status (design.md): 0 when every document ended in a final state, 1 when some were
//! left for the next pass (and recorded), 2 on a configuration or connection error.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, ValueEnum};

use crate::config::Config;
use crate::connector::Connector;
use crate::daemon::replica::{self, LeaseTiming};
use crate::erp::sql::SqlErp;
use crate::flows::{FlowName, PassReport, Stop, preview};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Flow {
    /// Coupa invoices into the ERP.
    Invoices,
    /// ERP payments onto their Coupa invoices.
    Payments,
    /// Coupa Pay payments into the ERP.
    PayPayments,
    /// Every enabled flow, in order.
    All,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Which flow to run.
    #[arg(value_enum)]
    pub flow: Flow,
    /// The configuration file.
    #[arg(long, default_value = crate::config::DEFAULT_PATH)]
    pub config: PathBuf,
    /// The tenant to use, for a file with [tenants.<name>] tables (required there).
    #[arg(long, value_name = "NAME")]
    pub tenant: Option<String>,
    /// Show what a pass would do now, changing nothing in Coupa, the ERP or the state store.
    #[arg(long)]
    pub dry_run: bool,
}

pub async fn run(args: SyncArgs) -> anyhow::Result<ExitCode> {
    let loaded = Config::load_tenant(
        &args.config,
        crate::config::process_env(),
        args.tenant.as_deref(),
    )?;
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    if args.dry_run {
        return dry_run(loaded.config, args.flow).await;
    }
    let connector = Connector::open(loaded.config).await?;
    // Never beside a daemon's pass, nor another sync's: the tenant's lease, as `run` takes it.
    let timing = LeaseTiming::from_ttl(Duration::from_secs(connector.config.state.lease_secs));
    let held = replica::hold(&connector.store, &replica::replica_id(), timing)
        .await
        .map_err(anyhow::Error::msg)?;
    let flows = flows(args.flow, &connector.config);
    let mut reports = Vec::new();
    let mut failure = None;
    for flow in flows {
        match connector
            .pass(flow, &Stop::never())
            .await
            .context(flow.title())
        {
            Ok(r) => reports.push(r),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    prune_calls(&connector).await;
    held.release().await;
    connector.close().await;
    for r in &reports {
        print_report(r);
    }
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(if reports.iter().all(PassReport::complete) {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The flows `flow` names, in `sync all`'s order: invoices first, so the invoices a payment or
/// a Coupa Pay payment settles are in the ERP.
fn flows(flow: Flow, config: &Config) -> Vec<FlowName> {
    match flow {
        Flow::Invoices => vec![FlowName::Invoices],
        Flow::Payments => vec![FlowName::Payments],
        Flow::PayPayments => vec![FlowName::PayPayments],
        Flow::All => config.enabled_flows(),
    }
}

/// `sync --dry-run`: what each flow's pass would do now. Nothing is changed, by construction:
/// the ERP is opened without migrating, the state store only if it exists, the Coupa client
/// refuses every write, and no lease, run or journal entry is taken or written.
async fn dry_run(config: Config, flow: Flow) -> anyhow::Result<ExitCode> {
    let erp = SqlErp::connect_current(&config.erp.url)
        .await
        .context("cannot open the ERP")?;
    let erp = Arc::new(erp);
    let (store, exists) = preview::journal(&config.state.url)
        .await
        .context("cannot open the state store")?;
    let client = preview::read_only_client(config.coupa_client_config()).context("Coupa client")?;
    if !exists {
        println!(
            "the state store {} does not exist yet: no journal, every document is new",
            crate::db::redact_url(&config.state.url)
        );
    }
    let mut failure = None;
    for flow in flows(flow, &config) {
        match preview::flow(flow, &config, &client, &erp, &store)
            .await
            .context(flow.title())
        {
            Ok(p) => print_preview(&p),
            Err(e) => {
                failure = Some(e);
                break;
            }
        }
    }
    store.db().close().await;
    erp.db().close().await;
    if let Some(e) = failure {
        return Err(e);
    }
    println!("dry run: nothing was changed in Coupa, the ERP or the state store");
    Ok(ExitCode::SUCCESS)
}

fn print_preview(p: &preview::Preview) {
    println!("{} (dry run):", p.flow);
    for line in p.documents.iter().take(preview::SHOWN) {
        println!("  {line}");
    }
    if p.documents.len() > preview::SHOWN {
        println!("  … and {} more", p.documents.len() - preview::SHOWN);
    }
    for note in &p.notes {
        println!("  {note}");
    }
    println!("{}", p.summary());
}

/// Drops the calls older than `log.retention_days` (0 keeps them all). A failure is logged, not
/// fatal: the documents went through either way.
async fn prune_calls(connector: &Connector) {
    let days = connector.config.log.retention_days;
    if days == 0 {
        return;
    }
    let before = chrono::Utc::now() - chrono::Duration::days(i64::from(days));
    match connector.store.prune_calls(before).await {
        Ok(0) => {}
        Ok(rows) => tracing::info!(rows, days, "API call log pruned"),
        Err(e) => tracing::warn!(error = %e, "could not prune the API call log"),
    }
}

fn print_report(r: &PassReport) {
    let (done, written, changed, rejected) = match r.flow.as_str() {
        "payments" => ("synced", "added to Coupa", "cancelled", "failed"),
        "pay-payments" => ("marked exported", "booked", "updated", "with problems"),
        _ => ("exported", "posted", "cancelled", "rejected"),
    };
    println!(
        "{}: {} listed, {} {done}, {} {written}, {} {changed}, {} {rejected}, {} left for the next pass ({} Coupa calls, {:.1}s, run {})",
        r.flow,
        r.listed,
        r.exported,
        r.posted,
        r.cancelled + r.updated,
        r.rejected.len(),
        r.transient.len(),
        r.api_calls,
        r.seconds,
        r.run
    );
    for (id, why) in &r.rejected {
        println!("  {rejected} {id}: {why}");
    }
    if r.awaiting > 0 {
        println!(
            "  {} awaiting the ERP's answer (acknowledged in Coupa when it comes)",
            r.awaiting
        );
    }
    for (id, why) in &r.overdue {
        println!("  answer overdue {id}: {why}");
    }
    for (id, why) in &r.transient {
        println!("  retry later {id}: {why}");
    }
    for why in &r.unreadable {
        println!("  unreadable: {why}");
    }
}
