//! `greenlab stats` (being built; see the issue tracker).

use std::process::ExitCode;

/// Arguments of `greenlab stats`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `greenlab stats`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`greenlab stats` is not available in this build yet")
}
