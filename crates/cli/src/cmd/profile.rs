//! `greenlab profile` (being built; see the issue tracker).

use std::process::ExitCode;

/// Arguments of `greenlab profile`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `greenlab profile`.
pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`greenlab profile` is not available in this build yet")
}
