//! `coupa-bridge doctor`: checks the configuration against Coupa, SFTP, the ERP and the state
//! store, one line per check with its verdict and fix.

use std::process::ExitCode;

use clap::Args;

#[derive(Debug, Args)]
pub struct DoctorArgs {}

pub async fn run(_args: DoctorArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("doctor: not written yet")
}
