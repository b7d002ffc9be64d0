//! `greenlab measure` (being built; see the issue tracker).

use std::process::ExitCode;

/// Arguments of `greenlab measure`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `greenlab measure`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`greenlab measure` is not available in this build yet")
}
