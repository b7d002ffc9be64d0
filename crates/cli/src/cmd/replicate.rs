//! `greenlab replicate`: both of the paper's studies on real Fashion-MNIST or CIFAR-10, under the
//! paper's procedures or greenlab's, with a verdict per finding, in one resumable command. The studies, their analysis and the verdicts are
//! `greenlab_experiment::replicate`; this module parses the arguments, builds the engine, meter
//! and storage, prints progress and writes the files.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use crate::meters::MeterArgs;
use anyhow::Context;
use greenlab_data::{DEFAULT_FASHION_MNIST_DIR, DatasetKind};
use greenlab_experiment::procedure::Procedure;
use greenlab_experiment::replicate::{
    Overrides, Preset, Progress, Results, Rq1, Setup, build_report, calibrate, energy_provenance,
    paper_network, plan_text, run_rq1, run_rq2,
};
use greenlab_report::{Report, render_html, render_json, render_markdown, write_atomically};
use greenlab_stats::EtaSquared;

/// Arguments of `greenlab replicate`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// `quick`: subsets of the data, 2 epochs in RQ1 and 1 in RQ2, few configurations
    /// (minutes on 2 CPU cores); `paper`: the paper's design (64 configurations × 8 trainings
    /// × 3 networks per strategy, 25 epochs, full data; RQ2 3,072 runs).
    #[arg(long, default_value = "quick", value_parser = ["quick", "paper"])]
    preset: String,
    /// `paper`: each procedure of the paper's code as it ran (linear-scale sampling, its grid
    /// rule, scikit-learn's default GP with PI over 10,000 candidates, 8 trainings per
    /// configuration as separate observations, one fixed batch order, β2 trained as 0.999);
    /// `greenlab`: greenlab's improved procedures.
    #[arg(long, default_value = "greenlab", value_parser = ["paper", "greenlab"])]
    procedure: String,
    /// With `--procedure paper`: train with the sampled β2 (the paper's code sampled it but
    /// trained every run with 0.999).
    #[arg(long)]
    paper_beta2_as_sampled: bool,
    /// Dataset: `fashion-mnist` (IDX files) or `cifar10` (the binary batches as distributed).
    #[arg(long, default_value = "fashion-mnist", value_parser = ["fashion-mnist", "cifar10"])]
    dataset: String,
    /// Folder with the dataset's files (default for Fashion-MNIST: Debian's
    /// dataset-fashion-mnist folder; CIFAR-10 needs it: data_batch_1.bin … data_batch_5.bin and
    /// test_batch.bin).
    #[arg(long)]
    data_dir: Option<PathBuf>,
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
    #[command(flatten)]
    meter: MeterArgs,
    /// Run only one of the studies.
    #[arg(long, value_parser = ["rq1", "rq2"])]
    only: Option<String>,
    /// Override the preset's repetitions: RQ1 trainings per configuration under the paper's
    /// procedure, independent searches under greenlab's; RQ2 runs per configuration and cell.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    repetitions: Option<u64>,
    /// Override the preset's RQ1 configurations per search (the paper's "experiments").
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
    /// RQ1's networks, comma-separated (default: the paper's three: dense-poly, dense-linear,
    /// simple-cnn).
    #[arg(long, value_delimiter = ',')]
    networks: Option<Vec<String>>,
    /// RQ1 with the paper's three strategies only (no energy-aware strategies beside them).
    #[arg(long)]
    paper_strategies_only: bool,
    /// η² in the findings: `jasp` (the paper's tool: SS / sum of the type III table's SS incl.
    /// residual) or `total` (SS / corrected total SS); they differ in unbalanced designs.
    #[arg(long, default_value = "jasp", value_parser = ["jasp", "total"])]
    eta_squared: String,
    /// RQ1's target test accuracy (a fraction, e.g. 0.85) for "which strategy reaches it for
    /// the least energy"; default: 99 % of the best median best accuracy of any strategy.
    #[arg(long)]
    target_accuracy: Option<f64>,
    /// Print what the run would train and how long it would take here (a short calibration of
    /// the engine on synthetic images of the dataset's shape), and exit.
    #[arg(long)]
    plan: bool,
    /// Batches per network the plan's calibration trains.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..))]
    calibration_batches: u64,
}

fn procedure(args: &Args) -> anyhow::Result<Procedure> {
    match args.procedure.as_str() {
        "paper" => Ok(Procedure::Paper {
            beta2_as_sampled: args.paper_beta2_as_sampled,
        }),
        _ if args.paper_beta2_as_sampled => anyhow::bail!(
            "--paper-beta2-as-sampled changes the paper's procedure; add --procedure paper"
        ),
        _ => Ok(Procedure::Greenlab),
    }
}

fn data_dir(args: &Args, dataset: DatasetKind) -> anyhow::Result<PathBuf> {
    match (&args.data_dir, dataset) {
        (Some(d), _) => Ok(d.clone()),
        (None, DatasetKind::Cifar10) => anyhow::bail!(
            "--dataset cifar10 needs --data-dir: a folder with CIFAR-10's binary batches \
             (data_batch_1.bin … data_batch_5.bin and test_batch.bin, from cifar-10-binary.tar.gz)"
        ),
        (None, _) => Ok(PathBuf::from(DEFAULT_FASHION_MNIST_DIR)),
    }
}

fn storage_url(args: &Args) -> String {
    args.storage
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", args.out.join("greenlab.db").display()))
}

/// Runs `greenlab replicate`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let dataset: DatasetKind = args
        .dataset
        .parse()
        .map_err(|e| anyhow::anyhow!("--dataset: {e}"))?;
    let mut preset = Preset::new(&args.preset, procedure(&args)?, dataset);
    preset.apply(&Overrides {
        repetitions: args.repetitions.map(|r| r as usize),
        trials: args.trials,
        limit_train: args.limit_train.map(|n| n as usize),
        epochs: args.epochs.map(|e| e as usize),
        five_params: args.five_params,
        paper_strategies_only: args.paper_strategies_only,
        networks: args
            .networks
            .as_ref()
            .map(|names| names.iter().map(|n| paper_network(n)).collect())
            .transpose()
            .context("--networks")?,
        target_accuracy: match args.target_accuracy {
            Some(t) if !(t > 0.0 && t <= 1.0) => {
                anyhow::bail!("--target-accuracy {t} must be a fraction in (0, 1], e.g. 0.85")
            }
            t => t,
        },
        eta_squared: Some(
            args.eta_squared
                .parse::<EtaSquared>()
                .map_err(|e| anyhow::anyhow!("--eta-squared: {e}"))?,
        ),
    });
    let only = args.only.as_deref();
    if args.plan {
        let engine = crate::engines::make_engine(&args.engine, &args.device, args.threads)?;
        eprintln!(
            "calibrating the {} engine on synthetic {} images ...",
            args.engine, dataset
        );
        let calibration = calibrate(
            engine.as_ref(),
            &preset,
            only,
            args.calibration_batches as usize,
        )
        .context("calibrating the engine for the time estimate")?;
        print!("{}", plan_text(&preset, only, Some(&calibration)));
        return Ok(ExitCode::SUCCESS);
    }
    let data_dir = data_dir(&args, dataset)?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    write_atomically(
        &args.out.join("config.json"),
        serde_json::to_string_pretty(&preset)?,
    )?;
    let split = Arc::new(
        greenlab_data::load(dataset, &data_dir)
            .with_context(|| format!("loading {dataset} from {}", data_dir.display()))?,
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
    if described.is_empty() {
        eprintln!(
            "energy: NOT MEASURED (no source works here); training runs, energy figures and \
             verdicts on energy will say so"
        );
    } else {
        eprintln!("energy: {}", described.join(", "));
    }
    let url = storage_url(&args);
    let storage: Arc<dyn greenlab_tune::Storage> = Arc::from(super::tune::open_storage(&url)?);
    eprintln!(
        "storage: {} (rerun the same command to resume)",
        greenlab_store::redact_url(&url)
    );

    let setup = Setup {
        engine: args.engine.clone(),
        device: args.device.clone(),
        data_dir,
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
    let rq1 = if only != Some("rq2") {
        run_rq1(&setup, &preset, &mut progress)?
    } else {
        Rq1::default()
    };
    let rq2 = if only != Some("rq1") {
        let worker = format!("replicate-{}", std::process::id());
        Some(run_rq2(&setup, &preset, &worker, &mut progress)?)
    } else {
        None
    };

    let provenance = energy_provenance(&rq1, rq2.as_ref(), &tracker);
    let report = build_report(
        &preset,
        &setup,
        only,
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
        rq1: rq1.paper.clone(),
        rq1_strategies: rq1.networks.clone(),
        rq2,
    };
    write_atomically(
        &args.out.join("results.json"),
        serde_json::to_string_pretty(&results)?,
    )?;
    write_reports(&report, &args.out)?;
    // The answer first: which strategy reaches the target for the least energy.
    for n in &rq1.networks {
        if let Some(r) = &n.recommendation {
            println!("{}", r.sentence);
        }
    }
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
