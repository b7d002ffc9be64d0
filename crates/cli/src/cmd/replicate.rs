//! `greenlab replicate`: both of the paper's studies on real Fashion-MNIST, with a verdict per
//! finding, in one resumable command. The studies, their analysis and the verdicts are
//! `greenlab_experiment::replicate`; this module parses the arguments, builds the engine, meter
//! and storage, prints progress and writes the files.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use crate::meters::MeterArgs;
use anyhow::Context;
use greenlab_data::{DEFAULT_FASHION_MNIST_DIR, DatasetKind};
use greenlab_experiment::replicate::{
    Overrides, Preset, Progress, Results, Setup, build_report, energy_provenance, plan_text,
    run_rq1, run_rq2,
};
use greenlab_report::{Report, render_html, render_json, render_markdown, write_atomically};

/// Arguments of `greenlab replicate`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// `quick`: subsets of the data, 1 epoch, few trials (minutes on 2 CPU cores);
    /// `paper`: the paper's scale (full data, 25 epochs in RQ2; meant for a GPU).
    #[arg(long, default_value = "quick", value_parser = ["quick", "paper"])]
    preset: String,
    /// Training engine.
    #[arg(long, default_value = "burn")]
    engine: String,
    /// Device (`cpu`, `cuda:0` with the torch engine).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Worker threads for the engine (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Study storage; default: SQLite in the output folder.
    #[arg(long)]
    storage: Option<String>,
    /// Output folder (report, results, database).
    #[arg(long, default_value = "runs/replicate")]
    out: PathBuf,
    /// Folder with Fashion-MNIST's IDX files.
    #[arg(long, default_value = DEFAULT_FASHION_MNIST_DIR)]
    data_dir: PathBuf,
    #[command(flatten)]
    meter: MeterArgs,
    /// Run only one of the studies.
    #[arg(long, value_parser = ["rq1", "rq2"])]
    only: Option<String>,
    /// Override the preset's repetitions (seeds) of every strategy and design cell.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    repetitions: Option<u64>,
    /// Override the preset's trials per tuning study.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    trials: Option<u64>,
    /// Override the preset's number of training images per run.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    limit_train: Option<u64>,
    /// Override the preset's epochs per training run (RQ1 trials and RQ2 runs).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    epochs: Option<u64>,
    /// RQ1 over the paper's 5-parameter space (lr, β1, β2, ε, weight decay) instead of 3.
    #[arg(long)]
    five_params: bool,
    /// Print what the run would train (studies, trials, epochs, images) and exit.
    #[arg(long)]
    plan: bool,
}

fn storage_url(args: &Args) -> String {
    args.storage
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", args.out.join("greenlab.db").display()))
}

/// Runs `greenlab replicate`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let mut preset = Preset::named(&args.preset);
    preset.apply(&Overrides {
        repetitions: args.repetitions.map(|r| r as usize),
        trials: args.trials,
        limit_train: args.limit_train.map(|n| n as usize),
        epochs: args.epochs.map(|e| e as usize),
        five_params: args.five_params,
    });
    if args.plan {
        print!("{}", plan_text(&preset, args.only.as_deref()));
        return Ok(ExitCode::SUCCESS);
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    write_atomically(
        &args.out.join("config.json"),
        serde_json::to_string_pretty(&preset)?,
    )?;
    let split = Arc::new(
        greenlab_data::load(DatasetKind::FashionMnist, &args.data_dir).context(
            "loading Fashion-MNIST (install it with `apt-get install dataset-fashion-mnist`)",
        )?,
    );
    let engine: Arc<dyn greenlab_engine::Engine> = Arc::from(crate::engines::make_engine(
        &args.engine,
        &args.device,
        args.threads,
    )?);
    let mut tracker = crate::meters::tracker(&args.meter, Some(&args.device))?;
    if let Some(sync) = engine.sync_hook() {
        tracker.set_sync(sync);
    }
    let tracker = Arc::new(tracker);
    let described: Vec<String> = tracker
        .describe()
        .iter()
        .map(|(d, s)| format!("{d}: {s}"))
        .collect();
    eprintln!("energy: {}", described.join(", "));
    let url = storage_url(&args);
    let storage: Arc<dyn greenlab_tune::Storage> = Arc::from(super::tune::open_storage(&url)?);
    eprintln!(
        "storage: {} (rerun the same command to resume)",
        greenlab_store::redact_url(&url)
    );

    let setup = Setup {
        engine: args.engine.clone(),
        device: args.device.clone(),
        data_dir: args.data_dir.clone(),
        trainer: engine,
        split,
        tracker: tracker.clone(),
        storage,
        cancel: crate::interrupt::install(),
    };
    let mut progress = |p: Progress<'_>| match p {
        Progress::Rq1 {
            network,
            study,
            done,
            total,
        } => eprintln!(
            "[rq1 {network}] {done}/{total} studies; now {study} ({:.0} s)",
            started.elapsed().as_secs_f64()
        ),
        Progress::Rq2 { done, total, trial } => eprintln!(
            "[rq2] {done}/{total} runs; trial {} {:?} {} ({:.0} s)",
            trial.number,
            trial.params,
            trial.state.as_str(),
            started.elapsed().as_secs_f64()
        ),
    };
    let rq1 = if args.only.as_deref() != Some("rq2") {
        run_rq1(&setup, &preset, &mut progress)?
    } else {
        Vec::new()
    };
    let rq2 = if args.only.as_deref() != Some("rq1") {
        let worker = format!("replicate-{}", std::process::id());
        Some(run_rq2(&setup, &preset, &worker, &mut progress)?)
    } else {
        None
    };

    let provenance = energy_provenance(&rq1, rq2.as_ref(), &tracker);
    let report = build_report(
        &preset,
        &setup,
        &rq1,
        rq2.as_ref(),
        provenance,
        &described,
        started.elapsed().as_secs_f64(),
    );
    let results = Results {
        preset: &preset,
        energy_provenance: provenance,
        meter: described.clone(),
        rq1,
        rq2,
    };
    write_atomically(
        &args.out.join("results.json"),
        serde_json::to_string_pretty(&results)?,
    )?;
    write_reports(&report, &args.out)?;
    for (_, f) in report.findings() {
        println!("[{}] {} — {}", f.verdict_line(), f.claim, f.evidence);
    }
    println!("report: {}", args.out.join("report.html").display());
    Ok(ExitCode::SUCCESS)
}

/// Writes report.html, report.md and report.json (the document, re-renderable with `greenlab report`).
pub fn write_reports(report: &Report, out: &Path) -> anyhow::Result<()> {
    write_atomically(&out.join("report.html"), render_html(report)?)?;
    write_atomically(&out.join("report.md"), render_markdown(report))?;
    write_atomically(&out.join("report.json"), render_json(report)?)?;
    Ok(())
}
