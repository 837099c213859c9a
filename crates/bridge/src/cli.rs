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
    /// Run the main job on embedded defaults: an in-process Coupa simulator, exercised end to end.
    Demo(commands::demo::DemoArgs),
    /// Run the Coupa simulator standalone (HTTP API and SFTP).
    Sim(commands::sim::SimArgs),
    /// Run one pass of a flow: exit 0 when every document ended final, 1 when some are left for
    /// the next pass, 2 on a configuration or connection error.
    Sync(commands::sync::SyncArgs),
    /// Inspect the configuration (`config check`).
    Config(commands::config::ConfigArgs),
}

/// Runs a command; its exit status. An `Err` is a configuration or connection error (exit 2).
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Demo(args) => commands::demo::run(args).await.map(|()| ExitCode::SUCCESS),
        Command::Sim(args) => commands::sim::run(args).await.map(|()| ExitCode::SUCCESS),
        Command::Sync(args) => commands::sync::run(args).await,
        Command::Config(args) => commands::config::run(args).map(|()| ExitCode::SUCCESS),
    }
}

/// Logs go to stderr; `RUST_LOG` sets the level (default `info`).
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
