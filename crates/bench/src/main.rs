//! `coupa-bench`: the benchmark program (BENCHMARKS.md). It starts the Coupa simulator on
//! loopback in this process, seeds it, runs the connector as its own process against it (so the
//! connector's peak memory is its own), and prints one JSON object of figures per scenario on
//! stdout, one per line; progress goes to stderr.
//!
//! ```text
//! coupa-bench [SCENARIO|GROUP ...] [--quick] [--seed N]
//! coupa-bench --list
//! ```
//!
//! Groups: `limits`, `unthrottled`, `growth`, `latency`, `all` (the default). `--quick` runs
//! every scenario on a tenth of its documents or less (what CI runs). Exit status 0 when every
//! scenario ran to the end (whatever its figures), 1 when one could not (it says why), 2 on a
//! bad command line. Targets are printed beside the figures, never asserted: the machines are
//! shared and noisy.
//!
//! `coupa-bench worker <coupa-bridge args>` is how a connector process is started: exactly the
//! `coupa-bridge` command line, which writes its own peak RSS to `COUPA_BENCH_RSS_FILE` on exit.

mod connector;
mod figures;
mod latency;
mod scenarios;
mod world;

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

/// Measures coupa-bridge against the Coupa simulator: Coupa's limits, unthrottled throughput,
/// memory growth and payment latency, one JSON object per scenario.
#[derive(Debug, Parser)]
#[command(name = "coupa-bench", version)]
struct Args {
    /// Scenarios or groups to run (`limits`, `unthrottled`, `growth`, `latency`, `all`).
    #[arg(default_value = "all")]
    scenarios: Vec<String>,
    /// A tenth of the documents or less: every scenario in a few seconds (CI).
    #[arg(long)]
    quick: bool,
    /// Seed of the simulator's data and of the payment stream.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// List the scenarios and exit.
    #[arg(long)]
    list: bool,
}

fn main() -> ExitCode {
    let mut raw = std::env::args_os();
    let program = raw.next();
    let mut rest = raw.peekable();
    if rest.peek().map(OsString::as_os_str) == Some(OsStr::new("worker")) {
        rest.next();
        return connector::worker(rest);
    }
    let args = Args::parse_from(program.into_iter().chain(rest));
    if args.list {
        for s in scenarios::ALL {
            println!("{:<32} {:<12} {}", s.name, s.group, s.about);
        }
        return ExitCode::SUCCESS;
    }
    let chosen = match scenarios::select(&args.scenarios) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("coupa-bench: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("coupa-bench: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let mut failed = 0;
    let mut history = scenarios::History::default();
    for scenario in chosen {
        eprintln!("coupa-bench: {} ...", scenario.name);
        match runtime.block_on(scenarios::run(
            scenario,
            args.quick,
            args.seed,
            &mut history,
        )) {
            Ok(figures) => {
                let mut out = std::io::stdout().lock();
                let _ = writeln!(out, "{}", figures.to_json());
                let _ = out.flush();
                eprintln!("coupa-bench: {}", figures.summary());
            }
            Err(e) => {
                failed += 1;
                eprintln!("coupa-bench: {} failed: {e:#}", scenario.name);
            }
        }
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
