//! `coupa-bridge init`: writes a commented `coupa-bridge.toml` for the user's choices.

use std::process::ExitCode;

use clap::Args;

#[derive(Debug, Args)]
pub struct InitArgs {}

pub async fn run(_args: InitArgs) -> anyhow::Result<ExitCode> {
    anyhow::bail!("init: not written yet")
}
