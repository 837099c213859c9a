//! The command line.

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
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Demo(args) => commands::demo::run(args).await,
        Command::Sim(args) => commands::sim::run(args).await,
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
