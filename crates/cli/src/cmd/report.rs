//! `greenlab report` (being built; see the issue tracker).

use std::process::ExitCode;

/// Arguments of `greenlab report`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `greenlab report`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`greenlab report` is not available in this build yet")
}
