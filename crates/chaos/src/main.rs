//! `coupa-chaos`: the chaos harness (see the library's documentation and RELIABILITY.md).
//!
//! `coupa-chaos [--seed N] [--duration SECS] ...` runs the chaos and exits 0 with no violation,
//! 1 with any, 2 when the harness itself failed. `coupa-chaos worker <coupa-bridge args>` is
//! how the harness starts connector processes: the `coupa-bridge` command line, run by this
//! binary, so a build of the harness with the bridge's `sabotage` feature has it in its workers.

mod harness;
mod report;
mod workers;

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};

/// Runs all three flows of coupa-bridge against a faulty Coupa simulator, SIGKILLs and restarts
/// the connector processes, then checks that nothing was lost or done twice.
#[derive(Debug, Parser)]
#[command(name = "coupa-chaos", version)]
pub struct Args {
    /// Seed of the simulator's data and of the whole chaos schedule.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Seconds of chaos (faults, kills, activity); then the flows are let finish.
    #[arg(long, default_value_t = 60)]
    pub duration: u64,
    /// Invoices in the simulator.
    #[arg(long, default_value_t = 500)]
    pub invoices: usize,
    /// Coupa Pay payments in the simulator.
    #[arg(long, default_value_t = 60)]
    pub pay_payments: usize,
    /// Connector processes sharing one state store.
    #[arg(long, default_value_t = 1)]
    pub replicas: usize,
    /// A PostgreSQL admin URL (postgres://user@host:port/postgres): the state store and the ERP
    /// are then fresh databases created through it (default: SQLite files).
    #[arg(long, value_name = "ADMIN_URL")]
    pub pg: Option<String>,
    /// How ERP payments reach Coupa.
    #[arg(long, value_enum, default_value_t = TransportArg::Api)]
    pub transport: TransportArg,
    /// Break the connector on purpose (needs a build with the bridge's `sabotage` feature, as
    /// `cargo test -p coupa-chaos` makes): the run must then report violations.
    #[arg(long, value_enum)]
    pub sabotage: Option<SabotageArg>,
    /// Print the figures as one JSON object.
    #[arg(long)]
    pub json: bool,
    /// The folder for the databases, config and worker logs (default: a new temp folder).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Seconds the flows get to finish their work once the chaos is over.
    #[arg(long, default_value_t = 180)]
    pub settle_timeout: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TransportArg {
    Api,
    Csv,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SabotageArg {
    /// Mark invoices exported in Coupa before posting them to the ERP.
    AckBeforeEffect,
}

impl SabotageArg {
    pub fn as_str(self) -> &'static str {
        match self {
            SabotageArg::AckBeforeEffect => "ack-before-effect",
        }
    }
}

fn main() -> ExitCode {
    let mut raw = std::env::args_os();
    let program = raw.next();
    let mut rest = raw.peekable();
    if rest.peek().map(OsString::as_os_str) == Some(OsStr::new("worker")) {
        rest.next();
        return worker(rest);
    }
    let args = Args::parse_from(program.into_iter().chain(rest));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("coupa-chaos: error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let json = args.json;
    match runtime.block_on(harness::run(args)) {
        Ok(outcome) => {
            outcome.print(json);
            if outcome.violations.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("coupa-chaos: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// `coupa-chaos worker <args>`: exactly `coupa-bridge <args>` (see the bridge's main.rs).
fn worker(args: impl Iterator<Item = OsString>) -> ExitCode {
    coupa_bridge::cli::main_with(std::iter::once(OsString::from("coupa-bridge")).chain(args))
}
