//! The `greenlab` command: one binary that wires the library crates together.
//!
//! Every subcommand lives in its own module under `cmd/`, exposing a clap `Args` struct and a
//! `run` function that returns the process exit code. Only this crate uses `anyhow`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cmd;
mod engines;
mod heap;
mod interrupt;
mod meters;
mod objective;

/// Energy as a first-class metric of deep-learning training.
#[derive(Parser, Debug)]
#[command(name = "greenlab", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a command and measure the energy it used (and its children).
    Measure(cmd::measure::Args),
    /// Which energy sources work on this machine, and why the others do not.
    Meters(cmd::meters::Args),
    /// Train one of the paper's networks and report accuracy, time and energy.
    Train(cmd::train::Args),
    /// Attribute time and energy of training steps to layers and layer types.
    Profile(cmd::profile::Args),
    /// Run a hyperparameter study (grid, random, quasi-random, Bayesian, TPE, ...).
    Tune(cmd::tune::Args),
    /// Join an existing study as a worker, from any machine that reaches its storage.
    Worker(cmd::worker::Args),
    /// Inspect studies: list, show, export.
    Study(cmd::study::Args),
    /// Compare tuning strategies by accuracy reached per joule.
    Compare(cmd::compare::Args),
    /// Run a factorial architecture experiment with ANOVA, Tukey HSD and Kruskal-Wallis.
    Factorial(cmd::factorial::Args),
    /// Statistics on any CSV table: anova, tukey, kruskal.
    Stats(cmd::stats::Args),
    /// Accuracy against energy: Pareto front and diminishing returns.
    Tradeoff(cmd::tradeoff::Args),
    /// Reproduce the paper's two studies on real Fashion-MNIST and write a report.
    Replicate(cmd::replicate::Args),
    /// Write an HTML (or Markdown/JSON) report for a run folder or a study.
    Report(cmd::report::Args),
    /// Time a large matrix product through the Burn engine's gemm (for bench/).
    #[command(hide = true)]
    GemmPeak(cmd::gemm_peak::Args),
}

fn main() -> ExitCode {
    // Large training buffers are reused instead of mapped afresh every step (see `heap`);
    // should glibc refuse, the defaults stay and only speed is lost.
    heap::keep_training_buffers();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Measure(args) => cmd::measure::run(args),
        Command::Meters(args) => cmd::meters::run(args),
        Command::Train(args) => cmd::train::run(args),
        Command::Profile(args) => cmd::profile::run(args),
        Command::Tune(args) => cmd::tune::run(args),
        Command::Worker(args) => cmd::worker::run(args),
        Command::Study(args) => cmd::study::run(args),
        Command::Compare(args) => cmd::compare::run(args),
        Command::Factorial(args) => cmd::factorial::run(args),
        Command::Stats(args) => cmd::stats::run(args),
        Command::Tradeoff(args) => cmd::tradeoff::run(args),
        Command::Replicate(args) => cmd::replicate::run(args),
        Command::Report(args) => cmd::report::run(args),
        Command::GemmPeak(args) => cmd::gemm_peak::run(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => match interrupt::message(&err) {
            Some(stopped) => {
                eprintln!("{stopped}");
                ExitCode::from(interrupt::EXIT_INTERRUPTED)
            }
            None => {
                eprintln!("error: {err:#}");
                ExitCode::from(2)
            }
        },
    }
}
