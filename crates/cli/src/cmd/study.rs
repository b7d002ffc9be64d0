//! `greenlab study` (being built; see the issue tracker).

use std::process::ExitCode;

/// Arguments of `greenlab study`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `greenlab study`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`greenlab study` is not available in this build yet")
}
