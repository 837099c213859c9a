//! `coupa-bridge config check`: validate the configuration and print it as the connector will
//! use it, secrets redacted, each value with where it came from.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use crate::config::{self, Config, ConfigError};

#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub command: ConfigCommand,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration and print every effective value, secrets redacted, with where
    /// it came from (file, environment variable or default). Exits 2 when it is invalid.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The configuration file; every key can be overridden by COUPA_BRIDGE__<SECTION>__<KEY>.
    #[arg(long, value_name = "FILE", default_value = config::DEFAULT_PATH)]
    pub config: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("cannot write the report")]
    Write(#[from] std::io::Error),
}

pub fn run(args: ConfigArgs) -> anyhow::Result<()> {
    match args.command {
        ConfigCommand::Check(args) => {
            let stdout = std::io::stdout();
            check(&args.config, config::process_env(), &mut stdout.lock())?;
            Ok(())
        }
    }
}

/// Loads the configuration from `path` and `env` and writes the effective values and any
/// warnings to `out`. An invalid configuration is the error, with every problem in it.
pub fn check(
    path: &Path,
    env: impl IntoIterator<Item = (String, String)>,
    out: &mut impl Write,
) -> Result<(), CheckError> {
    let loaded = Config::load(path, env)?;
    let file = if path.exists() {
        format!("{}", path.display())
    } else {
        format!(
            "{} (not found: environment and defaults only)",
            path.display()
        )
    };
    writeln!(out, "# coupa-bridge configuration: {file}")?;
    writeln!(out)?;
    out.write_all(loaded.render().as_bytes())?;
    if !loaded.warnings.is_empty() {
        writeln!(out)?;
        for warning in &loaded.warnings {
            writeln!(out, "# warning: {warning}")?;
        }
    }
    writeln!(out)?;
    writeln!(
        out,
        "# valid{}",
        match loaded.warnings.len() {
            0 => String::new(),
            1 => ", 1 warning".to_owned(),
            n => format!(", {n} warnings"),
        }
    )?;
    Ok(())
}
