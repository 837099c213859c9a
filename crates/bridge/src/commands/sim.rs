//! `coupa-bridge sim`: the Coupa simulator as a standalone server.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use coupa_sim::config::{ApiFilter, OAuthClient, RateLimit, SimConfig};

#[derive(Debug, Args)]
pub struct SimArgs {
    /// Address of the HTTP API.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Address of the SFTP server.
    #[arg(long, default_value = "127.0.0.1:2222")]
    pub sftp_listen: String,
    /// Seed of the generated data (same seed, same data).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Invoices to generate.
    #[arg(long, default_value_t = 200)]
    pub invoices: usize,
    /// Coupa Pay payments to generate.
    #[arg(long, default_value_t = 60)]
    pub pay_payments: usize,
    /// Answer 429 above this many requests per second (Coupa: about 25).
    #[arg(long)]
    pub rate_limit: Option<u32>,
    /// Requests allowed at once above the rate (Coupa: 20).
    #[arg(long, default_value_t = 20)]
    pub burst: u32,
    /// Send Retry-After with 429s (Coupa documents none).
    #[arg(long)]
    pub retry_after: bool,
    /// OAuth2 client id.
    #[arg(long, default_value = coupa_sim::config::DEFAULT_CLIENT_ID)]
    pub client_id: String,
    /// OAuth2 client secret.
    #[arg(long, env = "COUPA_SIM_CLIENT_SECRET", default_value = coupa_sim::config::DEFAULT_CLIENT_SECRET, hide_default_value = true, hide_env_values = true)]
    pub client_secret: String,
    /// Accept the legacy X-COUPA-API-KEY header with this key.
    #[arg(long, env = "COUPA_SIM_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,
    /// Access token lifetime, e.g. `24h`, `90s`.
    #[arg(long, default_value = "24h", value_parser = parse_duration)]
    pub token_ttl: Duration,
    /// How often the CSV loader picks up files, e.g. `2s`, or `5m` for Coupa's own 3 to 6 minutes.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub csv_pickup: Duration,
    /// A named API filter: `NAME=RESOURCE:FIELDS`, e.g. `slim=invoices:["id","status"]`.
    #[arg(long = "filter", value_parser = parse_filter)]
    pub filters: Vec<(String, ApiFilter)>,
}

/// `90s`, `5m`, `24h`, `250ms`, or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, "s"), |i| s.split_at(i));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("'{s}' is not a duration such as 90s, 5m or 24h"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!("'{s}': unknown unit '{unit}' (use ms, s, m or h)")),
    }
}

fn parse_filter(s: &str) -> Result<(String, ApiFilter), String> {
    let (name, rest) = s
        .split_once('=')
        .ok_or_else(|| format!("'{s}' is not NAME=RESOURCE:FIELDS"))?;
    let (resource, fields) = rest
        .split_once(':')
        .ok_or_else(|| format!("'{s}' is not NAME=RESOURCE:FIELDS"))?;
    Ok((
        name.to_owned(),
        ApiFilter {
            resource: resource.to_owned(),
            fields: fields.to_owned(),
        },
    ))
}

impl SimArgs {
    pub fn config(&self) -> SimConfig {
        let mut config = SimConfig {
            seed: self.seed,
            invoices: self.invoices,
            pay_payments: self.pay_payments,
            api_key: self.api_key.clone(),
            token_ttl: self.token_ttl,
            csv_pickup: self.csv_pickup,
            rate_limit: self.rate_limit.map(|per_second| RateLimit {
                per_second,
                burst: self.burst,
                retry_after: self.retry_after,
            }),
            ..SimConfig::default()
        };
        config.clients = vec![OAuthClient {
            id: self.client_id.clone(),
            secret: self.client_secret.clone(),
            scopes: coupa_sim::config::ALL_SCOPES
                .iter()
                .map(|s| (*s).to_owned())
                .collect(),
        }];
        let extra: BTreeMap<String, ApiFilter> = self.filters.iter().cloned().collect();
        config.filters.extend(extra);
        config
    }
}

pub async fn run(args: SimArgs) -> anyhow::Result<()> {
    let config = args.config();
    if config
        .filters
        .values()
        .any(|f| coupa_sim::Resource::from_name(&f.resource).is_none())
    {
        bail!("a --filter names an unknown resource");
    }
    let http = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let sftp = tokio::net::TcpListener::bind(&args.sftp_listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.sftp_listen))?;
    let sim = coupa_sim::start(config, http, sftp, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    print_banner(&sim, &args.client_id);
    sim.wait().await;
    Ok(())
}

/// What a person needs to point a client at the simulator. Secrets are not printed.
pub fn print_banner(sim: &coupa_sim::RunningSim, client_id: &str) {
    let db = sim.state.db.lock();
    println!("Coupa simulator");
    println!("  API        {}/api/invoices", sim.base_url());
    println!(
        "  OAuth2     POST {}/oauth2/token (client id '{client_id}', secret as configured)",
        sim.base_url()
    );
    println!("  admin      {}/__sim/stats", sim.base_url());
    println!(
        "  SFTP       sftp://{}@{} (folders /Incoming/InvoicePayments, /Archive/..., /Outgoing/Invoices)",
        coupa_sim::config::DEFAULT_SFTP_USER,
        sim.sftp_addr
    );
    println!("  host key   {}", sim.sftp_host_key);
    println!(
        "  data       {} invoices, {} Coupa Pay payments, {} integrations",
        db.invoices.len(),
        db.pay_payments.len(),
        db.integrations.len()
    );
}
