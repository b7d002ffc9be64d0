//! `greenlab worker`: join an existing study from any machine that reaches its storage.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use greenlab_tune::study::Study;

use crate::meters::MeterArgs;

use super::tune::{
    TrainObjectiveFactory, build_objective, build_tracker, interrupted_exit, open_storage,
    print_summary, run_options, train_objective,
};

/// Arguments of `greenlab worker`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Where the study lives: sqlite:///abs/path.db, postgres://..., ...
    #[arg(long)]
    pub storage: String,
    /// Name of the study to join.
    #[arg(long)]
    pub study: String,
    /// Worker threads in this process.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    #[command(flatten)]
    pub meter: MeterArgs,
    /// Lease of a running trial in seconds.
    #[arg(long, default_value_t = 60)]
    pub lease_s: u64,
}

/// Runs `greenlab worker`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    run_with(args, &train_objective)
}

/// Runs `greenlab worker` with `train` building `kind = "train"` objectives.
pub fn run_with(args: Args, train: &TrainObjectiveFactory) -> anyhow::Result<ExitCode> {
    let storage = open_storage(&args.storage)?;
    let study = Study::open(Arc::from(storage), &args.study)
        .with_context(|| format!("cannot join study {:?} in {}", args.study, args.storage))?;
    let tracker = build_tracker(&args.meter, study.config())?;
    let objective = build_objective(study.config(), Arc::clone(&tracker), train)?;
    eprintln!(
        "joined study {:?} in {} with {} worker(s)",
        args.study, args.storage, args.workers
    );
    let summary = study.run(objective, &run_options(args.workers, args.lease_s, tracker))?;
    print_summary(&study, &summary)?;
    interrupted_exit(&study, &summary)
}
