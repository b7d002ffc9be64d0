//! `greenlab worker` (being built; see the issue tracker).

use std::process::ExitCode;

/// Arguments of `greenlab worker`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `greenlab worker`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`greenlab worker` is not available in this build yet")
}
