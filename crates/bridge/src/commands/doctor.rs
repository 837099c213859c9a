//! `coupa-bridge doctor`: checks the configuration against Coupa, SFTP, the ERP and the state
//! store, one line per check with its verdict and fix (see [`crate::doctor`]).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use crate::doctor::{self, Options};

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The configuration file; every key can be overridden by COUPA_BRIDGE__<SECTION>__<KEY>.
    #[arg(long, value_name = "FILE", default_value = crate::config::DEFAULT_PATH)]
    pub config: PathBuf,
    /// The tenant to check, for a file with [tenants.<name>] tables (required there).
    #[arg(long, value_name = "NAME")]
    pub tenant: Option<String>,
    /// Create what coupa-bridge may create itself: the enabled flows' Integration records in
    /// Coupa and the ERP's schema. Nothing else is ever changed.
    #[arg(long)]
    pub fix: bool,
}

/// Exit 0 when every check passed (or was fixed), 1 when one failed.
pub async fn run(args: DoctorArgs) -> anyhow::Result<ExitCode> {
    let options = Options {
        config: &args.config,
        tenant: args.tenant.as_deref(),
        fix: args.fix,
    };
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let checks = doctor::examine(&options, crate::config::process_env(), &mut out).await?;
    let (line, ok) = doctor::summary(&checks);
    use std::io::Write;
    writeln!(out, "{line}")?;
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
