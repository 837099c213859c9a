//! `coupa-bridge demo`: the main job on embedded defaults.
//!
//! Today it starts the Coupa simulator in-process, seeded, and drives it the way the connector's
//! flows will: a token, the unexported invoices paged by id in JSON and in XML, a payment pushed
//! onto an approved invoice, the invoice marked exported, a Coupa Pay payment marked exported.
//! It then prints what the simulator served. The flows replace this walk as their issues land
//! (invoice export, payment push, Coupa Pay export).

use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use coupa_sim::SimConfig;
use coupa_sim::config::{DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET};

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Keep the simulator running after the demo, until Ctrl-C.
    #[arg(long)]
    pub serve: bool,
    /// Seed of the simulator's data.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Invoices to generate.
    #[arg(long, default_value_t = 500)]
    pub invoices: usize,
}

/// Sends a request as the flows will: with the token, asking for `accept`, failing on an error
/// status.
async fn send(
    req: reqwest::RequestBuilder,
    token: &str,
    accept: &str,
) -> anyhow::Result<reqwest::Response> {
    Ok(req
        .bearer_auth(token)
        .header("accept", accept)
        .send()
        .await?
        .error_for_status()?)
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let sim = coupa_sim::spawn(SimConfig {
        seed: args.seed,
        invoices: args.invoices,
        ..SimConfig::default()
    })
    .await
    .context("cannot start the Coupa simulator")?;
    super::sim::print_banner(&sim, DEFAULT_CLIENT_ID);
    let base = sim.base_url();
    let http = reqwest::Client::new();

    let token: serde_json::Value = http
        .post(format!("{base}/oauth2/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", DEFAULT_CLIENT_ID),
            ("client_secret", DEFAULT_CLIENT_SECRET),
            ("scope", "core.invoice.read core.invoice.write core.pay.payments.read core.pay.payments.write"),
        ])
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let token = token["access_token"]
        .as_str()
        .context("no access_token")?
        .to_owned();

    // Unexported approved and voided invoices, paged by id so nothing is skipped.
    let mut last = 0i64;
    let mut eligible = Vec::new();
    loop {
        let page: Vec<serde_json::Value> = send(
            http.get(format!("{base}/api/invoices")).query(&[
                ("exported", "false"),
                ("status[in]", "approved,voided"),
                ("id[gt]", &last.to_string()),
                ("order_by", "id"),
                ("dir", "asc"),
                (
                    "fields",
                    r#"["id","invoice-number","status",{"supplier":["name"]}]"#,
                ),
            ]),
            &token,
            "application/json",
        )
        .await?
        .json()
        .await?;
        let Some(id) = page.last().and_then(|r| r["id"].as_i64()) else {
            break;
        };
        last = id;
        eligible.extend(page);
    }
    let xml = send(
        http.get(format!(
            "{base}/api/invoices?exported=false&status=approved&limit=5"
        )),
        &token,
        "application/xml",
    )
    .await?
    .text()
    .await?;
    if !xml.contains("<invoice-headers type=\"array\">") {
        bail!("the XML listing is not a Coupa list");
    }

    let approved = eligible
        .iter()
        .find(|r| r["status"] == "approved")
        .and_then(|r| r["id"].as_i64())
        .context("no approved invoice to pay")?;
    send(
        http.put(format!("{base}/api/invoices/{approved}")).json(&serde_json::json!({
            "payments": [{"amount-paid": "10.00", "notes": "CHK-1001", "payment-date": "2026-11-20"}]
        })),
        &token,
        "application/json",
    )
    .await?;
    send(
        http.put(format!("{base}/api/invoices/{approved}?exported=true")),
        &token,
        "application/json",
    )
    .await?;
    let pay: Vec<serde_json::Value> = send(
        http.get(format!(
            "{base}/api/coupa_pay/payments?exported=false&status=completed_successfully&limit=1"
        )),
        &token,
        "application/json",
    )
    .await?
    .json()
    .await?;
    if let Some(id) = pay.first().and_then(|p| p["id"].as_i64()) {
        send(
            http.put(format!("{base}/api/coupa_pay/payments/{id}/export")),
            &token,
            "application/json",
        )
        .await?;
    }

    let stats = sim.state.stats.to_json();
    println!();
    println!("Demo summary");
    println!(
        "  eligible invoices (approved/voided, not exported)  {}",
        eligible.len()
    );
    println!(
        "  API calls served                                    {}",
        stats["total_calls"]
    );
    println!(
        "  429s served                                         {}",
        stats["throttled"]
    );
    if let Some(endpoints) = stats["endpoints"].as_object() {
        for (endpoint, e) in endpoints {
            println!("    {endpoint:<46} {}", e["calls"]);
        }
    }
    println!(
        "  time                                                {:.2?}",
        started.elapsed()
    );
    println!("  (the invoice, payment and Coupa Pay flows join this demo as they land)");
    if args.serve {
        println!("\nServing until Ctrl-C.");
        let _ = tokio::signal::ctrl_c().await;
    }
    sim.shutdown().await;
    Ok(())
}
