//! `greenlab tune` (being built; see the issue tracker).

use std::process::ExitCode;

/// Arguments of `greenlab tune`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `greenlab tune`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`greenlab tune` is not available in this build yet")
}
