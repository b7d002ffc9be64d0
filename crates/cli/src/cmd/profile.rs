//! `greenlab profile`: attribute the time and energy of training steps to layers and types.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use greenlab_data::{Batch, Batches, DatasetKind};
use greenlab_train::{Estimate, LayerProfileReport};

use super::train::{NetworkArgs, RuntimeArgs, data_dir, dataset_shape, write_atomically};
use crate::engines::make_engine;

/// Arguments of `greenlab profile`.
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    network: NetworkArgs,
    /// Dataset whose images feed the steps (fashion-mnist, mnist, cifar10).
    #[arg(long, default_value = "fashion-mnist")]
    dataset: String,
    /// Folder with the dataset's files.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Examples per step.
    #[arg(long, default_value_t = 512)]
    batch_size: usize,
    /// Profiled steps per repetition.
    #[arg(long, default_value_t = 3)]
    steps: usize,
    /// Repetitions (each one energy window; the intervals are over these).
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    #[command(flatten)]
    runtime: RuntimeArgs,
    /// Print the report as JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Runs `greenlab profile`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let architecture = args.network.architecture()?;
    let dataset: DatasetKind = args.dataset.parse()?;
    let (shape, classes) = dataset_shape(dataset);
    let spec = architecture.spec(shape, classes)?;
    if args.batch_size == 0 {
        anyhow::bail!("--batch-size must be at least 1");
    }
    let dir = data_dir(dataset, args.data_dir.as_deref())?;
    let split =
        greenlab_data::load(dataset, &dir).with_context(|| format!("cannot load {dataset}"))?;
    let mut batch = Batch::default();
    Batches::new(&split.train, args.batch_size, Some(1)).next_into(&mut batch);
    let engine = make_engine(
        &args.runtime.engine,
        &args.runtime.device,
        args.runtime.threads,
    )?;
    let tracker = crate::meters::tracker(&args.runtime.meter, Some(&args.runtime.device))?;
    eprintln!(
        "profiling {} with {} on {}: batch {}, {} steps × {} repetitions",
        spec.name,
        engine.name(),
        engine.device(),
        batch.size,
        args.steps,
        args.repeat
    );
    let report = greenlab_train::profile(
        engine.as_ref(),
        &spec,
        &batch,
        args.steps,
        args.repeat,
        &tracker,
    )?;
    let json = serde_json::to_string_pretty(&report).context("cannot serialise the report")?;
    if let Some(path) = &args.out {
        write_atomically(path, json.as_bytes())?;
    }
    if args.json {
        println!("{json}");
    } else {
        print!("{}", render(&report));
    }
    Ok(ExitCode::SUCCESS)
}

fn ms(e: &Estimate) -> String {
    match e.half_width {
        Some(h) => format!("{:.3} ± {:.3}", e.mean * 1e3, h * 1e3),
        None => format!("{:.3}", e.mean * 1e3),
    }
}

fn joules(e: &Estimate) -> String {
    match e.half_width {
        Some(h) => format!("{:.4} ± {:.4}", e.mean, h),
        None => format!("{:.4}", e.mean),
    }
}

/// The per-layer and per-type tables.
pub fn render(r: &LayerProfileReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{} — {} on {}, batch {}, {} steps × {} repetitions (95 % intervals over repetitions)",
        r.network, r.engine, r.device, r.batch_size, r.steps, r.repeat
    );
    let _ = writeln!(
        s,
        "\n{:>3}  {:<10} {:<14} {:>10} {:>14} {:>20} {:>20} {:>20} {:>7} {:>7}",
        "#",
        "type",
        "layer",
        "params",
        "fwd FLOPs",
        "forward ms",
        "backward ms",
        "energy J",
        "time%",
        "FLOP%"
    );
    for l in &r.layers {
        let _ = writeln!(
            s,
            "{:>3}  {:<10} {:<14} {:>10} {:>14} {:>20} {:>20} {:>20} {:>7.1} {:>7.1}",
            l.index,
            l.kind,
            l.detail,
            l.parameters,
            l.forward_flops,
            ms(&l.forward),
            l.backward.as_ref().map_or("-".into(), ms),
            joules(&l.energy),
            l.time_share,
            l.flop_share
        );
    }
    let _ = writeln!(
        s,
        "\n{:<10} {:>6} {:>10} {:>14} {:>20} {:>20} {:>7} {:>7}",
        "type", "layers", "params", "fwd FLOPs", "time ms", "energy J", "time%", "FLOP%"
    );
    for t in &r.types {
        let _ = writeln!(
            s,
            "{:<10} {:>6} {:>10} {:>14} {:>20} {:>20} {:>7.1} {:>7.1}",
            t.kind,
            t.layers,
            t.parameters,
            t.forward_flops,
            ms(&t.time),
            joules(&t.energy),
            t.time_share,
            t.flop_share
        );
    }
    let _ = writeln!(
        s,
        "\nwhole step {} ms, {} J at {:.1} W ({})",
        ms(&r.whole_step),
        joules(&r.whole_step_energy),
        r.power.mean,
        r.energy_source
    );
    let _ = writeln!(
        s,
        "attributed {} ms; unattributed {} ms = {:.1} % of the step{}",
        ms(&r.attributed),
        ms(&r.unattributed),
        r.unattributed_percent.mean,
        r.unattributed_percent
            .half_width
            .map_or(String::new(), |h| format!(" (± {h:.1})"))
    );
    for w in &r.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    s
}
