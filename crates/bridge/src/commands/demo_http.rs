//! The demo's second ERP: the reference ERP behind HTTP ([`crate::erp::stub`]), reached by the
//! HTTP adapter exactly as a customer's ERP API would be. A second, smaller Coupa simulator
//! holds its invoices, so the first part of the demo is left as it was. Invoices go out by POST
//! (bearer token, idempotency key), the ERP's payments come back from its `GET /payments` feed
//! read with a cursor, and each second pass shows there is nothing left to do.

use std::path::Path;
use std::sync::Arc;

use anyhow::Context;
use coupa_sim::SimConfig;
use secrecy::SecretString;

use super::demo::{DemoSecrets, erp_payments_for, seed_erp_from_sim, sqlite_url};
use crate::config::{Config, ErpKind, HttpAuth};
use crate::connector::Connector;
use crate::erp::sql::SqlErp;
use crate::erp::stub::{self, StubAuth, StubOptions};
use crate::flows::{FlowName, PassReport, Stop};
use crate::store::Store;

/// The demo ERP's API token: a demo value, sent only to the in-process stub.
const TOKEN: &str = "demo-erp-token";

/// What the HTTP ERP part did.
pub struct HttpErpDemo {
    pub invoices: PassReport,
    pub invoices_again: PassReport,
    pub payments: PassReport,
    pub payments_again: PassReport,
    /// Invoices the ERP behind HTTP holds.
    pub erp_invoices: usize,
    /// Payments the ERP made and offered on its feed.
    pub erp_payments: usize,
    /// Requests the ERP's API answered.
    pub requests: usize,
    pub url: String,
}

/// Runs the HTTP ERP part in `data_dir`: `erp-http.db` is the ERP behind HTTP, `ledger-http.db`
/// and `state-http.db` the connector's.
pub async fn run(seed: u64, data_dir: &Path, secrets: &DemoSecrets) -> anyhow::Result<HttpErpDemo> {
    let sim = coupa_sim::spawn(SimConfig {
        seed: seed.wrapping_add(1),
        invoices: 40,
        pay_payments: 0,
        clients: vec![super::demo::sim_oauth_client(secrets)],
        ..SimConfig::default()
    })
    .await
    .context("cannot start the second Coupa simulator")?;
    let remote = SqlErp::connect(&sqlite_url(&data_dir.join("erp-http.db")))
        .await
        .context("cannot open the ERP behind HTTP")?;
    seed_erp_from_sim(&remote, &sim).await?;
    let remote = Arc::new(remote);
    let api = stub::start(
        remote.clone(),
        StubOptions {
            auth: StubAuth::Bearer(TOKEN.into()),
        },
    )
    .await
    .context("cannot start the HTTP ERP")?;
    let url = api.url();

    let mut config = Config::default();
    config.coupa.base_url = sim.base_url();
    config.coupa.insecure_http_simulator_only = true;
    config.coupa.client_id = Some(coupa_sim::config::DEFAULT_CLIENT_ID.into());
    config.coupa.client_secret = Some(secrets.client_secret.clone());
    config.state.url = sqlite_url(&data_dir.join("state-http.db"));
    config.erp.kind = ErpKind::Http;
    config.erp.url = sqlite_url(&data_dir.join("ledger-http.db"));
    let http = &mut config.erp.http;
    http.invoices_url = Some(format!("{url}/invoices"));
    http.cancel_url = Some(format!("{url}/invoices/{{coupa_invoice_id}}/cancel"));
    http.pay_payments_url = Some(format!("{url}/coupa-pay-payments"));
    http.payments_url = Some(format!("{url}/payments"));
    http.auth = HttpAuth::Bearer;
    http.token = Some(SecretString::from(TOKEN));
    config.pay_payments.enabled = false;

    let store = Store::connect(&config.state.url)
        .await
        .context("cannot open the state store")?;
    let erp = crate::erp::open(&config)
        .await
        .context("cannot open the HTTP ERP adapter")?;
    let connector = Connector::with_erp(config, store, erp, |c| {
        let mut client = c.coupa_client_config();
        client.rate = None;
        client
    })?;
    let stop = Stop::never();
    let invoices = connector.pass(FlowName::Invoices, &stop).await?;
    let invoices_again = connector.pass(FlowName::Invoices, &stop).await?;

    // The ERP pays a third of what it booked; the connector reads them from its feed.
    let booked = remote.invoices().await.context("reading the ERP")?;
    let made = erp_payments_for(&booked, "HTTP");
    remote
        .record_payments(&made)
        .await
        .context("recording the ERP's payments")?;
    let payments = connector.pass(FlowName::Payments, &stop).await?;
    let payments_again = connector.pass(FlowName::Payments, &stop).await?;
    connector.close().await;

    let demo = HttpErpDemo {
        invoices,
        invoices_again,
        payments,
        payments_again,
        erp_invoices: remote.invoices().await.context("reading the ERP")?.len(),
        erp_payments: made.len(),
        requests: api.requests().len(),
        url,
    };
    api.stop().await;
    sim.shutdown().await;
    Ok(demo)
}

pub fn print(d: &HttpErpDemo) {
    println!();
    println!("A second ERP over HTTP ({}, bearer token)", d.url);
    println!(
        "  invoices listed         {} (a second simulator)",
        d.invoices.listed
    );
    println!(
        "  POSTed and accepted     {} (each with its Coupa id as idempotency key)",
        d.invoices.posted
    );
    println!("  cancelled over HTTP     {}", d.invoices.cancelled);
    println!(
        "  refused by the ERP      {} (4xx with its reasons, recorded in Coupa)",
        d.invoices.rejected.len()
    );
    for (id, why) in d.invoices.rejected.iter().take(3) {
        println!("    invoice {id}: {why}");
    }
    println!("  held by the ERP now     {}", d.erp_invoices);
    println!(
        "  ERP payments on its feed {} (GET /payments, read from a saved cursor)",
        d.erp_payments
    );
    println!("  payments onto Coupa     {}", d.payments.posted);
    println!("  payments failed         {}", d.payments.rejected.len());
    println!("  HTTP requests served    {}", d.requests);
    println!(
        "  second passes           {} invoices, {} payments listed (nothing left to do)",
        d.invoices_again.listed, d.payments_again.listed
    );
}
