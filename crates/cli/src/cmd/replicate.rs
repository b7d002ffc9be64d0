//! `greenlab replicate` (being built; see the issue tracker).

use std::process::ExitCode;

/// Arguments of `greenlab replicate`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `greenlab replicate`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`greenlab replicate` is not available in this build yet")
}
