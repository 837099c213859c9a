//! The command line.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::commands;

#[derive(Debug, Parser)]
#[command(name = "coupa-bridge", version, about = "The ERP connector for Coupa")]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a commented coupa-bridge.toml for your Coupa instance, flows and ERP: asks on a
    /// terminal, or takes flags with --non-interactive. Secrets stay out of the file.
    Init(commands::init::InitArgs),
    /// Check the configuration, Coupa (token, scopes, custom fields, Integrations), SFTP, the ERP
    /// and the state store: one line each, with the fix. Exit 0 only when every check passes.
    Doctor(commands::doctor::DoctorArgs),
    /// Run the main job on embedded defaults: an in-process Coupa simulator, exercised end to end.
    Demo(commands::demo::DemoArgs),
    /// Run the Coupa simulator standalone (HTTP API and SFTP).
    Sim(commands::sim::SimArgs),
    /// Run one pass of a flow: exit 0 when every document ended final, 1 when some are left for
    /// the next pass, 2 on a configuration or connection error.
    Sync(commands::sync::SyncArgs),
    /// Inspect the configuration (`config check`).
    Config(commands::config::ConfigArgs),
    /// Run the daemon: every flow on its schedule and on the ERP's pushes, the dashboard and
    /// `/metrics` on `server.listen`, until SIGTERM or Ctrl-C (a second one quits at once).
    Run(commands::run::RunArgs),
    /// Show the API call log (newest first), filtered by flow, run, document, status or age.
    Log(commands::log::LogArgs),
}

/// Runs a command; its exit status. An `Err` is a configuration or connection error (exit 2).
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Init(args) => commands::init::run(args).await,
        Command::Doctor(args) => commands::doctor::run(args).await,
        Command::Demo(args) => commands::demo::run(args).await.map(|()| ExitCode::SUCCESS),
        Command::Sim(args) => commands::sim::run(args).await.map(|()| ExitCode::SUCCESS),
        Command::Sync(args) => commands::sync::run(args).await,
        Command::Config(args) => commands::config::run(args).map(|()| ExitCode::SUCCESS),
        Command::Run(args) => commands::run::run(args).await,
        Command::Log(args) => commands::log::run(args).await,
    }
}

/// The whole program: `args` is a `coupa-bridge` command line (program name first). The
/// binary's `main` is this; the chaos harness and the benchmark run their connector processes
/// through it, so their workers are exactly `coupa-bridge`.
pub fn main_with(args: impl IntoIterator<Item = std::ffi::OsString>) -> ExitCode {
    let cli = Cli::parse_from(args);
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Logs go to stderr: human-readable on a terminal, JSON lines otherwise (one object per line
/// with `timestamp`, `level`, `target` and `fields`, for journald, Docker and log shippers).
/// `RUST_LOG` sets the level (default `info`).
pub fn init_logging() {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second call (tests start the library several times) keeps the first subscriber.
    let _ = if std::io::stderr().is_terminal() {
        builder.try_init()
    } else {
        builder.json().try_init()
    };
}
