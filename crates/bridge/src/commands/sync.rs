//! `coupa-bridge sync <flow>`: one pass of a flow with the configured Coupa, ERP and state.
//!
//! Exit status (design.md): 0 when every document ended in a final state, 1 when some were
//! left for the next pass (and recorded), 2 on a configuration or connection error.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, ValueEnum};
use coupa_api::Client;

use crate::config::Config;
use crate::erp::sql::SqlErp;
use crate::flows::PassReport;
use crate::flows::invoice_export::InvoiceExport;
use crate::flows::pay_export::PayExport;
use crate::flows::payment_push::PaymentPush;
use crate::store::Store;
use crate::store::call_log::CallLog;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Flow {
    /// Coupa invoices into the ERP.
    Invoices,
    /// ERP payments onto their Coupa invoices.
    Payments,
    /// Coupa Pay payments into the ERP.
    PayPayments,
    /// Every flow that exists, in order.
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
}

pub async fn run(args: SyncArgs) -> anyhow::Result<ExitCode> {
    let loaded = Config::load(&args.config, crate::config::process_env())?;
    for w in &loaded.warnings {
        tracing::warn!("{w}");
    }
    let config = loaded.config;
    let store = Store::connect(&config.state.url)
        .await
        .context("cannot open the state store")?;
    let erp = SqlErp::connect(&config.erp.url)
        .await
        .context("cannot open the ERP")?;
    let (call_log, call_log_task) = CallLog::spawn(store.clone());
    let client =
        Client::new(config.coupa_client_config(), Arc::new(call_log)).context("Coupa client")?;
    let erp = Arc::new(erp);
    let mut reports = Vec::new();
    let mut failure = None;
    if matches!(args.flow, Flow::Invoices | Flow::All) {
        let flow = InvoiceExport::new(
            client.clone(),
            erp.clone(),
            store.clone(),
            config.invoices.clone(),
        );
        match flow.run().await.context("invoice export") {
            Ok(r) => reports.push(r),
            Err(e) => failure = Some(e),
        }
    }
    if failure.is_none() && matches!(args.flow, Flow::Payments | Flow::All) {
        let flow = PaymentPush::new(
            client.clone(),
            erp.clone(),
            store.clone(),
            config.payments.clone(),
        );
        match flow.run().await.context("payment push") {
            Ok(r) => reports.push(r),
            Err(e) => failure = Some(e),
        }
    }
    // After the invoice export, so the invoices a Coupa Pay payment settles are in the ERP.
    if failure.is_none() && matches!(args.flow, Flow::PayPayments | Flow::All) {
        let flow = PayExport::new(client.clone(), erp, store, config.pay_payments.clone());
        match flow.run().await.context("Coupa Pay export") {
            Ok(r) => reports.push(r),
            Err(e) => failure = Some(e),
        }
    }
    drop(client);
    call_log_task.flush().await;
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
    for (id, why) in &r.transient {
        println!("  retry later {id}: {why}");
    }
    for why in &r.unreadable {
        println!("  unreadable: {why}");
    }
}
