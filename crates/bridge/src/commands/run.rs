//! `coupa-bridge run`: the daemon. Serves the dashboard, `/metrics`, health and the ERP push
//! endpoint on `server.listen`, and runs each flow on its `[schedule]` and on triggers until
//! SIGTERM or Ctrl-C.
//!
//! Shutdown is graceful: the first signal stops new passes and lets the passes in flight finish
//! the documents in hand, then the HTTP server stops and the call log is written out (exit 0).
//! A second signal exits at once with status 130.
//!
//! Each tenant (Coupa instance) of the config gets its own connector and server; its flows run
//! while this replica holds the tenant's lease (see [`crate::daemon::replica`]), so several
//! processes can share the state stores.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use tokio::sync::watch;

use crate::config::Config;
use crate::connector::Connector;
use crate::daemon::replica::{self, LeaseTiming, TenantDaemon};
use crate::daemon::{DaemonOptions, Triggers};
use crate::web::{self, WebState};

/// How long the HTTP server may take to end its requests in flight once the daemon stopped.
const SERVER_GRACE: Duration = Duration::from_secs(10);
/// How long to wait for the last holders of the connector (server connections) to let go.
const RELEASE_GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The configuration file.
    #[arg(long, default_value = crate::config::DEFAULT_PATH)]
    pub config: PathBuf,
}

pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let tenants = Config::load_tenants(&args.config, crate::config::process_env())?;
    let named = tenants.len() > 1
        || tenants
            .iter()
            .any(|t| t.name != crate::config::DEFAULT_TENANT);
    // Each tenant's server is bound before anything else starts, so a taken port fails fast
    // and says which.
    let mut prepared = Vec::new();
    for tenant in tenants {
        let label = if named {
            format!("tenant {}: ", tenant.name)
        } else {
            String::new()
        };
        for w in &tenant.loaded.warnings {
            tracing::warn!(tenant = %tenant.name, "{label}{w}");
        }
        let config = tenant.loaded.config;
        let options =
            DaemonOptions::from_config(&config).map_err(|e| anyhow::anyhow!("{label}{e}"))?;
        let listen = config.server.listen.clone();
        let listener = tokio::net::TcpListener::bind(&listen)
            .await
            .with_context(|| format!("{label}cannot listen on {listen} (server.listen)"))?;
        let address = listener
            .local_addr()
            .with_context(|| format!("{label}cannot read the address bound for {listen}"))?;
        prepared.push((tenant.name, label, config, options, listener, address));
    }
    let timing = LeaseTiming::from_ttl(Duration::from_secs(
        prepared
            .first()
            .map_or(10, |(_, _, config, ..)| config.state.lease_secs),
    ));
    let mut daemons = Vec::new();
    let mut connectors = Vec::new();
    let (stop_server, server_stopped) = watch::channel(false);
    let mut servers = Vec::new();
    for (name, label, config, options, listener, address) in prepared {
        let connector = Arc::new(
            Connector::open(config)
                .await
                .with_context(|| format!("{label}cannot start"))?,
        );
        let triggers = Triggers::default();
        servers.push(tokio::spawn(web::serve(
            listener,
            WebState::new(connector.clone(), triggers.clone()),
            released(server_stopped.clone()),
        )));
        tracing::info!(tenant = %name, address = %address, "{label}listening on http://{address}");
        log_schedules(&name, &label, &options);
        connectors.push((label, connector.clone()));
        daemons.push(TenantDaemon {
            name,
            connector,
            triggers,
            options,
        });
    }
    let signals = Signals::listen().context("cannot listen for SIGTERM and Ctrl-C")?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let signal_task = tokio::spawn(signals.watch(shutdown_tx));
    let id = replica::replica_id();
    tracing::info!(
        replica = %id,
        tenants = daemons.len(),
        lease_secs = timing.ttl.as_secs(),
        "replica {id} asks for the lease of {} tenant(s)",
        daemons.len()
    );
    let reports = replica::run(id, daemons, timing, released(shutdown_rx)).await;
    let counts = |m: &std::collections::BTreeMap<crate::flows::FlowName, u64>| {
        m.iter()
            .map(|(flow, n)| format!("{flow}={n}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    for (tenant, report) in &reports {
        let daemon = &report.daemon;
        tracing::info!(
            tenant = %tenant,
            terms = report.terms,
            lost = report.lost,
            passes = %counts(&daemon.passes),
            failed = %counts(&daemon.failed),
            skipped = %counts(&daemon.skipped),
            pruned = daemon.pruned,
            "every pass has ended"
        );
    }

    stop_server.send_replace(true);
    for server in servers {
        let server_result = match tokio::time::timeout(SERVER_GRACE, server).await {
            Ok(Ok(result)) => result.map_err(|e| e.to_string()),
            Ok(Err(e)) => Err(format!("the HTTP server ended abnormally: {e}")),
            Err(_) => Err(format!(
                "the HTTP server did not stop within {}s",
                SERVER_GRACE.as_secs()
            )),
        };
        if let Err(e) = &server_result {
            tracing::warn!(error = %e, "HTTP server");
        }
    }
    for (label, connector) in connectors {
        match release(connector).await {
            Some(connector) => {
                let stats = connector.close().await;
                tracing::info!(
                    written = stats.written,
                    failed = stats.failed,
                    dropped = stats.dropped,
                    "{label}API call log written out"
                );
            }
            None => tracing::warn!(
                "{label}the connector is still in use after shutdown: the last API calls may \
                 not be in the call log"
            ),
        }
    }
    signal_task.abort();
    tracing::info!("stopped");
    Ok(ExitCode::SUCCESS)
}

fn log_schedules(tenant: &str, label: &str, options: &DaemonOptions) {
    let now = options.clock.now();
    for (flow, schedule) in &options.schedules {
        let next = schedule
            .next_after(now)
            .map(|n| n.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
            .unwrap_or_default();
        tracing::info!(
            tenant = %tenant,
            flow = %flow,
            schedule = schedule.expression(),
            next = %next,
            "{label}{flow} scheduled \"{}\", next pass at {next}",
            schedule.expression()
        );
    }
    for flow in crate::flows::FlowName::ALL {
        if !options.schedules.iter().any(|(f, _)| *f == flow) {
            tracing::info!(tenant = %tenant, flow = %flow, "{label}{flow} has no schedule: it runs when triggered");
        }
    }
    if let Some(retention) = options.retention {
        tracing::info!(
            tenant = %tenant,
            days = retention.num_days(),
            "{label}the API call log keeps calls {} days",
            retention.num_days()
        );
    }
}

/// Resolves once `rx` holds `true` (or its sender is gone).
async fn released(mut rx: watch::Receiver<bool>) {
    let _ = rx.wait_for(|stop| *stop).await;
}

/// Takes the connector back from the `Arc` once the server and the daemon dropped their clones;
/// a connection the server let run a little longer may hold one briefly.
async fn release(mut connector: Arc<Connector>) -> Option<Connector> {
    let deadline = tokio::time::Instant::now() + RELEASE_GRACE;
    loop {
        match Arc::try_unwrap(connector) {
            Ok(c) => return Some(c),
            Err(shared) if tokio::time::Instant::now() < deadline => {
                connector = shared;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(_) => return None,
        }
    }
}

/// SIGTERM (systemd, Docker, Kubernetes) and Ctrl-C, installed once at start so a signal that
/// arrives at any point after it is seen.
struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Signals {
    fn listen() -> std::io::Result<Signals> {
        Ok(Signals {
            #[cfg(unix)]
            term: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?,
        })
    }

    /// The next SIGTERM or Ctrl-C.
    async fn next(&mut self) -> &'static str {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.term.recv() => "SIGTERM",
                _ = tokio::signal::ctrl_c() => "Ctrl-C",
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            "Ctrl-C"
        }
    }

    /// The first signal starts the graceful shutdown; a second one ends the process at once.
    async fn watch(mut self, shutdown: watch::Sender<bool>) {
        let signal = self.next().await;
        tracing::info!(
            signal,
            "shutting down: finishing the documents in hand (again to quit at once)"
        );
        shutdown.send_replace(true);
        let signal = self.next().await;
        tracing::warn!(signal, "quitting at once");
        // Safe to cut passes short: every step is journaled before and after its effect, so
        // the next start resumes each document where it stopped, without loss or duplicates
        // (the same guarantee the crash tests check for SIGKILL).
        std::process::exit(130);
    }
}
