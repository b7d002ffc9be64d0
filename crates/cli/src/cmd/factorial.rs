//! `greenlab factorial` (being built; see the issue tracker).

use std::process::ExitCode;

/// Arguments of `greenlab factorial`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `greenlab factorial`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`greenlab factorial` is not available in this build yet")
}
