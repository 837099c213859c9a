//! `coupa-bridge demo`: the main job on embedded defaults.
//!
//! Starts the Coupa simulator in-process (seeded), creates the embedded reference ERP and the
//! state store in a fresh data folder, loads the ERP's supplier master and closed periods from
//! what the simulator's suppliers look like, and runs the flows that exist end to end: the
//! invoice export twice (the second pass shows there is nothing left to do), then the ERP pays a
//! share of the invoices it booked (with a few payments that match nothing or too much) and the
//! payment push sends half of them by API and half as a CSV file over SFTP. Last, the Coupa Pay
//! export books Coupa Pay's payments in the ERP; a Coupa clerk then changes the status of two
//! exported payments, and the next pass applies the changes. Then a second ERP, the reference
//! ERP behind HTTP, takes a second simulator's invoices through the HTTP adapter and offers its
//! payments on its feed (`demo_http`). Prints a summary and the data folder.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use coupa_api::auth::Credentials;
use coupa_api::{Client, ClientConfig, SecretString};
use coupa_sim::SimConfig;
use coupa_sim::config::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET};
use secrecy::ExposeSecret;

use chrono::Days;
use rust_decimal::Decimal;

use crate::config::{Config, PayPaymentsConfig, PaymentTransport, PaymentsConfig, SftpConfig};
use crate::connector::Connector;
use crate::daemon::{DaemonOptions, Triggers};
use crate::erp::sql::SqlErp;
use crate::erp::{ErpInvoiceRecord, NewErpPayment};
use crate::flows::PassReport;
use crate::flows::invoice_export::{InvoiceExport, Monitoring, Settings};
use crate::flows::pay_export::PayExport;
use crate::flows::payment_push::PaymentPush;
use crate::store::Store;
use crate::store::call_log::CallLog;
use crate::web::WebState;

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Then serve the dashboard on the demo's data (and run the flows on their schedules), until
    /// Ctrl-C.
    #[arg(long)]
    pub serve: bool,
    /// Seed of the simulator's data.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Invoices to generate.
    #[arg(long, default_value_t = 500)]
    pub invoices: usize,
    /// Coupa Pay payments to generate.
    #[arg(long, default_value_t = 60)]
    pub pay_payments: usize,
    /// How the invoice export tells Coupa what happened (seed 001's options 1, 2 and 3).
    #[arg(long, value_enum, default_value_t = Monitoring::Runs)]
    pub monitoring: Monitoring,
    /// Where the ERP and state databases go (default: a new folder under the temp dir).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

/// A client of the simulator's default OAuth client, asking for every flow's scopes, with the
/// client's defaults (JSON, the Coupa-sized rate governor, retries).
pub fn sim_client_config(base_url: String) -> ClientConfig {
    sim_client_config_with(base_url, SecretString::from(DEFAULT_CLIENT_SECRET))
}

/// [`sim_client_config`] with this client secret. The simulator speaks plain HTTP on loopback:
/// the client accepts it through the simulator-only switch.
fn sim_client_config_with(base_url: String, client_secret: SecretString) -> ClientConfig {
    let mut config = ClientConfig::new(
        base_url,
        Credentials::OAuth {
            client_id: DEFAULT_CLIENT_ID.into(),
            client_secret,
            scopes: coupa_api::auth::FLOW_SCOPES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
            basic_auth: false,
        },
    );
    config.insecure_http_simulator_only = true;
    config
}

/// The secrets the demo's simulator is given and its connector uses: the simulator's defaults,
/// unless `COUPA_BRIDGE_DEMO_CLIENT_SECRET` / `COUPA_BRIDGE_DEMO_SFTP_PASSWORD` name others (the
/// security test runs the demo with values it then looks for in every output).
#[derive(Clone)]
pub struct DemoSecrets {
    pub client_secret: SecretString,
    pub sftp_password: SecretString,
}

impl DemoSecrets {
    pub fn from_env() -> Self {
        let var = |name: &str, default: &str| {
            SecretString::from(std::env::var(name).unwrap_or_else(|_| default.to_owned()))
        };
        DemoSecrets {
            client_secret: var("COUPA_BRIDGE_DEMO_CLIENT_SECRET", DEFAULT_CLIENT_SECRET),
            sftp_password: var(
                "COUPA_BRIDGE_DEMO_SFTP_PASSWORD",
                coupa_sim::config::DEFAULT_SFTP_PASSWORD,
            ),
        }
    }
}

/// The simulator's OAuth client with every scope, and the demo's client secret.
pub(super) fn sim_oauth_client(secrets: &DemoSecrets) -> coupa_sim::config::OAuthClient {
    coupa_sim::config::OAuthClient {
        id: DEFAULT_CLIENT_ID.into(),
        secret: secrets.client_secret.expose_secret().to_owned(),
        scopes: coupa_sim::config::ALL_SCOPES
            .iter()
            .map(|s| (*s).to_owned())
            .collect(),
    }
}

/// `sqlite://` URL of a file.
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// Loads the reference ERP's supplier master and closed periods the way a real ERP would have
/// them for the simulator's suppliers: most known and active, a few unknown or inactive, a few
/// months closed.
pub async fn seed_erp_from_sim(erp: &SqlErp, sim: &coupa_sim::RunningSim) -> anyhow::Result<()> {
    let (suppliers, closed) = {
        let db = sim.state.db.lock();
        (
            coupa_sim::seed::erp_supplier_master(&db),
            coupa_sim::seed::closed_periods(&db),
        )
    };
    for s in &suppliers {
        erp.upsert_supplier(&s.number, &s.name, s.active)
            .await
            .context("loading the ERP's supplier master")?;
    }
    for p in &closed {
        erp.set_period(p, false)
            .await
            .context("closing ERP periods")?;
    }
    Ok(())
}

/// What the demo leaves behind: the simulator, still running, and a configuration that points
/// at it and at the demo's ERP and state store, as `coupa-bridge run` would be configured.
pub struct Demo {
    pub sim: coupa_sim::SimHandle,
    pub config: Config,
    pub data_dir: PathBuf,
}

impl Demo {
    /// A connector on the demo's simulator, ERP and state store. The simulator is not
    /// throttled, so the client's rate governor is off, as in the demo's passes.
    pub async fn connector(&self) -> anyhow::Result<Connector> {
        let store = Store::connect(&self.config.state.url)
            .await
            .context("cannot open the state store")?;
        let erp = SqlErp::connect(&self.config.erp.url)
            .await
            .context("cannot open the reference ERP")?;
        Connector::with(self.config.clone(), store, erp, |c| {
            let mut client = c.coupa_client_config();
            client.rate = None;
            client
        })
    }
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let serve = args.serve;
    let demo = execute(args).await?;
    if serve {
        serve_dashboard(&demo).await?;
    }
    demo.sim.shutdown().await;
    Ok(())
}

/// Runs the demo and prints its summary; the simulator is left running in the returned [`Demo`].
pub async fn execute(args: DemoArgs) -> anyhow::Result<Demo> {
    execute_with(args, DemoSecrets::from_env()).await
}

/// [`execute`] with these secrets.
pub async fn execute_with(args: DemoArgs, secrets: DemoSecrets) -> anyhow::Result<Demo> {
    let started = Instant::now();
    let data_dir = match args.data_dir {
        Some(d) => {
            std::fs::create_dir_all(&d)
                .with_context(|| format!("cannot create {}", d.display()))?;
            d
        }
        None => tempfile::Builder::new()
            .prefix("coupa-bridge-demo-")
            .tempdir()
            .context("cannot create a data folder")?
            .keep(),
    };
    let sim = coupa_sim::spawn(SimConfig {
        seed: args.seed,
        invoices: args.invoices,
        pay_payments: args.pay_payments,
        // Coupa picks payment files up every 3 to 6 minutes; the demo has no such patience.
        csv_pickup: std::time::Duration::from_millis(200),
        clients: vec![sim_oauth_client(&secrets)],
        sftp_users: vec![coupa_sim::config::SftpUser {
            name: coupa_sim::config::DEFAULT_SFTP_USER.into(),
            password: Some(secrets.sftp_password.expose_secret().to_owned()),
            authorized_keys: Vec::new(),
        }],
        ..SimConfig::default()
    })
    .await
    .context("cannot start the Coupa simulator")?;
    super::sim::print_banner(&sim, DEFAULT_CLIENT_ID);

    let erp = SqlErp::connect(&sqlite_url(&data_dir.join("erp.db")))
        .await
        .context("cannot open the reference ERP")?;
    seed_erp_from_sim(&erp, &sim).await?;
    let store = Store::connect(&sqlite_url(&data_dir.join("state.db")))
        .await
        .context("cannot open the state store")?;
    let (call_log, call_log_task) = CallLog::spawn(store.clone());

    let mut config = sim_client_config_with(sim.base_url(), secrets.client_secret.clone());
    // The simulator here is not throttled; the governor's Coupa-sized budget would only slow
    // the demo down. `coupa-bridge sync` against a real instance keeps it.
    config.rate = None;
    let client = Client::new(config, Arc::new(call_log)).context("Coupa client")?;

    let invoices = InvoiceExport::new(
        client.clone(),
        Arc::new(erp.clone()),
        store.clone(),
        Settings {
            monitoring: args.monitoring,
            ..Settings::default()
        },
    );
    let first = invoices.run().await.context("invoice export")?;
    let second = invoices
        .run()
        .await
        .context("invoice export, second pass")?;
    drop(invoices);

    // The ERP pays a share of what it booked: half the payments go by API, half by CSV.
    let booked = erp.invoices().await.context("reading the ERP")?;
    let (api_half, csv_half) = booked.split_at(booked.len() / 2);
    let mut pushes = Vec::new();
    for (transport, half, prefix) in [
        (PaymentTransport::Api, api_half, "API"),
        (PaymentTransport::Csv, csv_half, "CSV"),
    ] {
        let batch = erp_payments_for(half, prefix);
        erp.record_payments(&batch)
            .await
            .context("recording the ERP's payments")?;
        let push = PaymentPush::new(
            client.clone(),
            Arc::new(erp.clone()),
            store.clone(),
            PaymentsConfig {
                transport,
                sftp: demo_sftp(&sim, &secrets),
                ..PaymentsConfig::default()
            },
        );
        let report = push.run().await.context("payment push")?;
        let again = push.run().await.context("payment push, second pass")?;
        pushes.push((transport, report, again));
    }

    let pay = PayExport::new(
        client.clone(),
        Arc::new(erp.clone()),
        store.clone(),
        PayPaymentsConfig::default(),
    );
    let pay_first = pay.run().await.context("Coupa Pay export")?;
    let booked: Vec<(i64, String)> = erp
        .pay_payments()
        .await
        .context("reading the ERP")?
        .into_iter()
        .map(|p| (p.coupa_payment_id, p.status))
        .collect();
    let changed = clerk_changes_pay_statuses(&sim, &booked);
    let pay_second = pay.run().await.context("Coupa Pay export, second pass")?;
    let pay_third = pay.run().await.context("Coupa Pay export, third pass")?;
    drop(client);
    call_log_task.flush().await;

    let erp_rows = erp.invoices().await.context("reading the ERP")?;
    print_summary(&first, &second, &sim, erp_rows.len(), args.monitoring);
    for (transport, report, again) in &pushes {
        print_payments(*transport, report, again);
    }
    let paid = erp_rows.iter().filter(|r| r.status == "paid").count();
    print_pay(&pay_first, &changed, &pay_second, &pay_third, paid);
    let http = super::demo_http::run(args.seed, &data_dir, &secrets).await?;
    super::demo_http::print(&http);
    println!("\n  time                    {:.2?}", started.elapsed());
    println!("  data folder             {}", data_dir.display());
    println!(
        "    erp.db    the reference ERP (erp_invoices, erp_payments, erp_coupa_pay_payments, ...)"
    );
    println!("    state.db  runs, the per-document journal, every Coupa call");
    println!(
        "    erp-http.db  the ERP behind HTTP; ledger-http.db, state-http.db  its connector's"
    );
    let config = demo_config(&sim, &data_dir, args.monitoring, &secrets);
    Ok(Demo {
        sim,
        config,
        data_dir,
    })
}

/// The configuration `coupa-bridge run` would have for the demo's world.
fn demo_config(
    sim: &coupa_sim::RunningSim,
    data_dir: &Path,
    monitoring: Monitoring,
    secrets: &DemoSecrets,
) -> Config {
    let mut config = Config::default();
    config.coupa.base_url = sim.base_url();
    config.coupa.insecure_http_simulator_only = true;
    config.coupa.client_id = Some(DEFAULT_CLIENT_ID.into());
    config.coupa.client_secret = Some(secrets.client_secret.clone());
    config.state.url = sqlite_url(&data_dir.join("state.db"));
    config.erp.url = sqlite_url(&data_dir.join("erp.db"));
    config.invoices.monitoring = monitoring;
    config.payments.sftp = demo_sftp(sim, secrets);
    config
}

/// The simulator's SFTP server, as the CSV transport reaches it.
fn demo_sftp(sim: &coupa_sim::RunningSim, secrets: &DemoSecrets) -> SftpConfig {
    SftpConfig {
        host: Some(sim.sftp_addr.ip().to_string()),
        port: sim.sftp_addr.port(),
        username: Some(coupa_sim::config::DEFAULT_SFTP_USER.into()),
        password: Some(secrets.sftp_password.clone()),
        host_key: Some(sim.sftp_host_key.clone()),
        result_timeout_secs: 60,
        ..SftpConfig::default()
    }
}

/// `demo --serve`: the dashboard (and the daemon, so "retry" and pushed payments are acted on)
/// on the demo's data, until Ctrl-C.
async fn serve_dashboard(demo: &Demo) -> anyhow::Result<()> {
    let connector = Arc::new(demo.connector().await?);
    let triggers = Triggers::default();
    // The usual port, or any free one when it is taken.
    let listener = match tokio::net::TcpListener::bind(&demo.config.server.listen).await {
        Ok(l) => l,
        Err(_) => tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("cannot listen on loopback")?,
    };
    let addr = listener.local_addr().context("listening address")?;
    println!("\nDashboard: http://{addr}/   (Ctrl-C to stop)");
    let state = WebState::new(connector.clone(), triggers.clone());
    let (stop_server, server_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(crate::web::serve(listener, state, async move {
        let _ = server_stopped.await;
    }));
    let options = DaemonOptions::from_config(&demo.config).map_err(anyhow::Error::msg)?;
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    crate::daemon::run(connector.clone(), triggers, options, ctrl_c).await;
    let _ = stop_server.send(());
    let _ = server.await;
    // The server's clones are gone with it: write the call log's queue out.
    if let Ok(connector) = Arc::try_unwrap(connector) {
        connector.close().await;
    }
    Ok(())
}

/// Payments the ERP makes for a share of the invoices it booked, deterministic from their order:
/// every third open invoice is paid in full with one check; every sixth, from the fifth, in two
/// payments (the second without a check number), by supplier name. Then two payments a person
/// must look at: for invoices Coupa does not have.
pub fn erp_payments_for(invoices: &[ErpInvoiceRecord], prefix: &str) -> Vec<NewErpPayment> {
    let mut out = Vec::new();
    let next = |out: &mut Vec<NewErpPayment>, inv: &ErpInvoiceRecord, amount: Decimal| {
        let n = out.len() + 1;
        out.push(NewErpPayment {
            payment_ref: format!("{prefix}-{n:06}"),
            invoice_number: inv.invoice_number.clone(),
            supplier_name: inv.supplier_name.clone(),
            supplier_number: inv.supplier_number.clone(),
            amount,
            currency: inv.currency.clone(),
            payment_date: inv
                .invoice_date
                .checked_add_days(Days::new(30))
                .unwrap_or(inv.invoice_date),
            check_number: Some(format!("{}", 100_000 + n)),
            paid_in_full: false,
        });
    };
    let open: Vec<&ErpInvoiceRecord> = invoices
        .iter()
        .filter(|i| i.status == "open" && i.total > Decimal::ZERO)
        .collect();
    for (i, inv) in open.iter().enumerate() {
        if i % 3 == 0 {
            next(&mut out, inv, inv.total);
            if let Some(p) = out.last_mut() {
                p.paid_in_full = true;
            }
        } else if i % 6 == 4 {
            let first = (inv.total * Decimal::new(4, 1)).round_dp(inv.total.scale());
            next(&mut out, inv, first);
            next(&mut out, inv, inv.total - first);
            if let Some(p) = out.last_mut() {
                p.paid_in_full = true;
                p.check_number = None;
            }
            let len = out.len();
            for p in &mut out[len - 2..] {
                p.supplier_number = None;
            }
        }
    }
    if let Some(inv) = open.first() {
        for k in 1..=2 {
            let mut missing = (*inv).clone();
            missing.invoice_number = format!("NO-SUCH-{k}");
            next(&mut out, &missing, Decimal::new(10_000, 2));
        }
    }
    out
}

fn print_payments(transport: PaymentTransport, first: &PassReport, second: &PassReport) {
    let how = match transport {
        PaymentTransport::Api => "by API: one PUT per invoice",
        PaymentTransport::Csv => "by CSV over SFTP: a file, then the loader's result",
    };
    println!();
    println!("Payment push ({how})");
    println!("  ERP payments read       {}", first.listed);
    println!("  added to Coupa          {}", first.posted);
    println!("  synced (incl. already)  {}", first.exported);
    println!("  failed, alerted         {}", first.rejected.len());
    for (id, why) in first.rejected.iter().take(5) {
        println!("    payment {id}: {why}");
    }
    println!("  left for the next pass  {}", first.transient.len());
    for (id, why) in first.transient.iter().take(5) {
        println!("    payment {id}: {why}");
    }
    print_calls(first, first.posted, "payment added");
    println!("  pass time               {:.2}s", first.seconds);
    println!(
        "  second pass             {} read, {} Coupa calls (nothing pending)",
        second.listed, second.api_calls
    );
}

/// What a Coupa user does after the first export: a payment that completed with errors is
/// completed after all, and a completed one is cancelled, each among the payments the ERP booked
/// (`(id, status)`). Returns (id, from, to) of each change.
fn clerk_changes_pay_statuses(
    sim: &coupa_sim::RunningSim,
    booked: &[(i64, String)],
) -> Vec<(i64, String, &'static str)> {
    let now = sim.state.now();
    let mut db = sim.state.db.lock();
    let mut picks = Vec::new();
    for (from, to) in [
        ("completed_with_errors", "completed_successfully"),
        ("completed_successfully", "cancelled"),
    ] {
        if let Some((id, _)) = booked.iter().find(|(_, status)| status == from)
            && coupa_sim::clerk::set_pay_status(&mut db, *id, to, now).is_ok()
        {
            picks.push((*id, from.to_owned(), to));
        }
    }
    picks
}

fn print_pay(
    first: &PassReport,
    changed: &[(i64, String, &str)],
    second: &PassReport,
    third: &PassReport,
    erp_paid: usize,
) {
    println!();
    println!("Coupa Pay export (supplier payments, completed with or without errors)");
    println!("  payments listed         {}", first.listed);
    println!("  booked in the ERP       {}", first.posted);
    println!("  marked exported         {}", first.exported);
    println!("  with unapplied details  {}", first.rejected.len());
    for (id, why) in first.rejected.iter().take(5) {
        println!("    payment {id}: {why}");
    }
    println!("  left for the next pass  {}", first.transient.len());
    for (id, why) in first.transient.iter().take(5) {
        println!("    payment {id}: {why}");
    }
    println!("  ERP invoices now paid   {erp_paid}");
    print_calls(first, first.posted, "payment booked");
    println!("  pass time               {:.2}s", first.seconds);
    for (id, from, to) in changed {
        println!("  a Coupa clerk moves     payment {id}: {from} -> {to}");
    }
    println!(
        "  second pass             {} status changes applied to the ERP ({} Coupa calls)",
        second.updated, second.api_calls
    );
    println!(
        "  third pass              {} listed, {} booked, {} updated (nothing left to do)",
        third.listed, third.posted, third.updated
    );
}

/// `API calls  N (x.xx per <what>)`: a pass's calls per document it handled (a ratio of
/// counts, not money).
fn print_calls(pass: &PassReport, documents: u64, what: &str) {
    let per = if documents == 0 {
        0.0
    } else {
        pass.api_calls as f64 / documents as f64
    };
    println!(
        "  API calls               {} ({per:.2} per {what})",
        pass.api_calls
    );
}

fn print_summary(
    first: &PassReport,
    second: &PassReport,
    sim: &coupa_sim::RunningSim,
    erp_invoices: usize,
    monitoring: Monitoring,
) {
    println!();
    let option = match monitoring {
        Monitoring::CustomFields => "option 1: custom fields",
        Monitoring::History => "option 2: integration history records",
        Monitoring::Runs => "option 3: integration runs",
    };
    println!("Invoice export (monitoring {option})");
    println!("  listed                  {}", first.listed);
    println!("  posted to the ERP       {}", first.posted);
    println!("  cancelled (voided)      {}", first.cancelled);
    println!("  rejected by the ERP     {}", first.rejected.len());
    let mut reasons: std::collections::BTreeMap<String, usize> = Default::default();
    for (_, r) in &first.rejected {
        // Group by the reason's shape, not its particular supplier or period.
        let shape: String = r
            .split('\'')
            .enumerate()
            .map(|(i, part)| if i % 2 == 1 { "…" } else { part })
            .collect::<Vec<_>>()
            .join("'");
        *reasons.entry(shape).or_default() += 1;
    }
    for (r, n) in &reasons {
        println!("    {n:>4} × {r}");
    }
    println!("  left for the next pass  {}", first.transient.len());
    for (id, why) in first.transient.iter().take(5) {
        println!("    invoice {id}: {why}");
    }
    println!("  marked exported         {}", first.exported);
    println!("  in the ERP now          {erp_invoices}");
    print_calls(first, first.listed, "invoice listed");
    println!("  429s served             {}", sim.state.stats.throttled());
    println!("  pass time               {:.2}s", first.seconds);
    println!(
        "  second pass             {} listed, {} exported (nothing left to do)",
        second.listed, second.exported
    );
}
