//! `coupa-bridge config check`: validate the configuration and print it as the connector will
//! use it, secrets redacted, each value with where it came from.

use std::io::Write;
use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};

use crate::config::{self, Config, ConfigError, Tenant};

#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    pub command: ConfigCommand,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration and print every effective value, secrets redacted, with where
    /// it came from (file, environment variable or default). Exits 2 when it is invalid. A file
    /// with [tenants.<name>] tables is checked and printed tenant by tenant.
    Check(CheckArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The configuration file; every key can be overridden by COUPA_BRIDGE__<SECTION>__<KEY>.
    #[arg(long, value_name = "FILE", default_value = config::DEFAULT_PATH)]
    pub config: PathBuf,
    /// Only this tenant of a file with [tenants.<name>] tables; without it, every tenant.
    #[arg(long, value_name = "NAME")]
    pub tenant: Option<String>,
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
            check_tenant(
                &args.config,
                config::process_env(),
                args.tenant.as_deref(),
                &mut stdout.lock(),
            )?;
            Ok(())
        }
    }
}

/// Loads the configuration from `path` and `env` and writes the effective values and any
/// warnings to `out`, every tenant of a file with tenants. An invalid configuration is the
/// error, with every problem in it.
pub fn check(
    path: &Path,
    env: impl IntoIterator<Item = (String, String)>,
    out: &mut impl Write,
) -> Result<(), CheckError> {
    check_tenant(path, env, None, out)
}

/// [`check`] for one tenant (`Some`), or for every tenant (`None`): a file with tenants is
/// printed tenant by tenant, each under its `[tenants.<name>]` header (so the printout stays
/// TOML), and is valid only when every tenant is.
pub fn check_tenant(
    path: &Path,
    env: impl IntoIterator<Item = (String, String)>,
    tenant: Option<&str>,
    out: &mut impl Write,
) -> Result<(), CheckError> {
    let tenants = match tenant {
        Some(name) => vec![Tenant {
            name: name.to_owned(),
            loaded: Config::load_tenant(path, env, Some(name))?,
        }],
        None => Config::load_tenants(path, env)?,
    };
    // `default` is never the name of a `[tenants.<name>]` table.
    let several = tenant.is_none() && tenants.iter().any(|t| t.name != config::DEFAULT_TENANT);
    let file = if path.exists() {
        format!("{}", path.display())
    } else {
        format!(
            "{} (not found: environment and defaults only)",
            path.display()
        )
    };
    let names: Vec<&str> = tenants.iter().map(|t| t.name.as_str()).collect();
    match tenant {
        Some(name) => writeln!(out, "# coupa-bridge configuration: {file}, tenant {name}")?,
        None if several => writeln!(
            out,
            "# coupa-bridge configuration: {file}, {} {}",
            if names.len() == 1 {
                "tenant"
            } else {
                "tenants"
            },
            names.join(", ")
        )?,
        None => writeln!(out, "# coupa-bridge configuration: {file}")?,
    }
    let mut warnings = 0;
    for t in &tenants {
        writeln!(out)?;
        if several {
            writeln!(out, "# tenant {}", t.name)?;
            writeln!(out, "[tenants.{}]", t.name)?;
        }
        out.write_all(t.loaded.render().as_bytes())?;
        if !t.loaded.warnings.is_empty() {
            writeln!(out)?;
            for warning in &t.loaded.warnings {
                writeln!(out, "# warning: {warning}")?;
            }
        }
        warnings += t.loaded.warnings.len();
    }
    writeln!(out)?;
    let warnings = match warnings {
        0 => String::new(),
        1 => ", 1 warning".to_owned(),
        n => format!(", {n} warnings"),
    };
    if several {
        let count = match names.len() {
            1 => "1 tenant".to_owned(),
            n => format!("{n} tenants"),
        };
        writeln!(out, "# valid: {count} ({}){warnings}", names.join(", "))?;
    } else {
        writeln!(out, "# valid{warnings}")?;
    }
    Ok(())
}
