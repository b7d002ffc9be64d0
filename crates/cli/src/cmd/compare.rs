//! `greenlab compare` (being built; see the issue tracker).

use std::process::ExitCode;

/// Arguments of `greenlab compare`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `greenlab compare`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`greenlab compare` is not available in this build yet")
}
