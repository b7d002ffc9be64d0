//! `greenlab tradeoff` (being built; see the issue tracker).

use std::process::ExitCode;

/// Arguments of `greenlab tradeoff`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `greenlab tradeoff`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`greenlab tradeoff` is not available in this build yet")
}
