//! `greenlab train` (being built; see the issue tracker).

use std::process::ExitCode;

/// Arguments of `greenlab train`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `greenlab train`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`greenlab train` is not available in this build yet")
}
