//! `greenlab factorial`: a full factorial architecture experiment (by default the paper's
//! conv {1,4} × linear {3,7} × ReLU {on,off}) with ANOVA, Tukey HSD and Kruskal–Wallis.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use greenlab_meter::EnergyBasis;
use greenlab_report::{Report, write_atomically};
use greenlab_tune::ParamValue;
use serde::Deserialize;

use greenlab_experiment::analysis::{analyse, sections};
use greenlab_experiment::factorial::{self, Design};
use greenlab_experiment::objective::TrainSettings;

use crate::meters::MeterArgs;

/// Arguments of `greenlab factorial`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Design file (TOML): name, repetitions, seed, [factors], [training]. Without it, the
    /// paper's design at the scale of `--preset`.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Scale when no config is given: `quick` (4096 training images, 1 epoch, 3 repetitions)
    /// or `paper` (full data, 25 epochs, 5 repetitions).
    #[arg(long, default_value = "quick", value_parser = ["quick", "paper"])]
    preset: String,
    /// Study storage; default: SQLite in the output folder.
    #[arg(long)]
    storage: Option<String>,
    /// Training engine.
    #[arg(long, default_value = "burn")]
    engine: String,
    /// Device.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Engine threads.
    #[arg(long)]
    threads: Option<usize>,
    #[command(flatten)]
    meter: MeterArgs,
    /// Output folder.
    #[arg(long, default_value = "runs/factorial")]
    out: PathBuf,
    /// Print the analysis as JSON.
    #[arg(long)]
    json: bool,
}

/// A design file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DesignFile {
    name: String,
    #[serde(default = "three")]
    repetitions: usize,
    #[serde(default = "one")]
    seed: u64,
    factors: BTreeMap<String, Vec<ParamValue>>,
    #[serde(default)]
    training: TrainSettings,
}

fn three() -> usize {
    3
}
fn one() -> u64 {
    1
}

fn load_design(args: &Args) -> anyhow::Result<(Design, TrainSettings)> {
    match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            let file: DesignFile = toml::from_str(&text)
                .with_context(|| format!("{} is not a valid design file", path.display()))?;
            const KNOWN: &[&str] = &[
                "conv",
                "linear",
                "relu",
                "lr",
                "beta1",
                "beta2",
                "eps",
                "weight_decay",
                "batch_size",
                "epochs",
            ];
            for name in file.factors.keys() {
                if !KNOWN.contains(&name.as_str()) {
                    bail!(
                        "unknown factor {name:?} in {}; known factors: {}",
                        path.display(),
                        KNOWN.join(", ")
                    );
                }
            }
            let design = Design {
                name: file.name,
                factors: file.factors,
                repetitions: file.repetitions,
                seed: file.seed,
                max_attempts: 2,
                configurations: Vec::new(),
                logged_only: Vec::new(),
            };
            Ok((design, file.training))
        }
        None => {
            let paper = args.preset == "paper";
            let training = TrainSettings {
                epochs: if paper { 25 } else { 1 },
                limit_train: (!paper).then_some(4096),
                limit_test: (!paper).then_some(2000),
                batch_size: if paper { 512 } else { 128 },
                ..TrainSettings::default()
            };
            Ok((
                Design::paper(
                    &format!("factorial-{}", args.preset),
                    if paper { 5 } else { 3 },
                    1,
                ),
                training,
            ))
        }
    }
}

/// Runs `greenlab factorial`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let (design, training) = load_design(&args)?;
    design.validate()?;
    let arch = training.architecture()?;
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let mut base = training.to_config()?;
    base.seed = design.seed;
    let objective =
        crate::objective::load(base, &args.engine, &args.device, args.threads, &args.meter)?;
    let url = args
        .storage
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", args.out.join("greenlab.db").display()));
    let storage = super::tune::open_storage(&url)?;
    eprintln!(
        "storage: {} (rerun the same command to resume)",
        greenlab_store::redact_url(&url)
    );
    let worker = format!("factorial-{}", std::process::id());
    let runs = factorial::run(
        storage.as_ref(),
        &design,
        &objective,
        &worker,
        &crate::interrupt::install(),
        &mut |done, total, t| {
            eprintln!(
                "[{done}/{total}] trial {} {} {}",
                t.number,
                fmt_params(&t.params),
                t.state.as_str()
            );
        },
    )?;
    let factors: Vec<String> = design.factors.keys().cloned().collect();
    let analysis = analyse(&runs, &factors);
    // A CSV of every run, so `greenlab stats` (or any other tool) can re-analyse it. An energy
    // that was not measured is an empty cell, never 0.
    let mut w = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["trial".to_owned()];
    header.extend(factors.iter().cloned());
    header.extend(
        [
            "rep",
            "accuracy",
            "energy_j",
            "machine_energy_j",
            "energy_source",
            "duration_s",
        ]
        .map(String::from),
    );
    w.write_record(&header)?;
    let joules = |basis| {
        move |r: &factorial::FactorialRun| {
            r.energy
                .figure(basis)
                .map_or_else(String::new, |j| j.0.to_string())
        }
    };
    for r in &runs {
        let mut row = vec![r.trial.to_string()];
        row.extend(
            factors
                .iter()
                .map(|f| r.params.get(f).map(|v| v.to_string()).unwrap_or_default()),
        );
        row.push(
            r.params
                .get("rep")
                .map(|v| v.to_string())
                .unwrap_or_default(),
        );
        row.push(r.accuracy.to_string());
        row.push(joules(EnergyBasis::Attributed)(r));
        row.push(joules(EnergyBasis::Machine)(r));
        row.push(r.energy.provenance().to_string());
        row.push(r.energy.duration.0.to_string());
        w.write_record(&row)?;
    }
    let csv = w
        .into_inner()
        .map_err(|e| anyhow::anyhow!("cannot write runs.csv: {e}"))?;
    write_atomically(&args.out.join("runs.csv"), csv)?;
    write_atomically(
        &args.out.join("analysis.json"),
        serde_json::to_string_pretty(&analysis)?,
    )?;
    let mut report =
        Report::new(format!("Factorial experiment: {}", design.name)).with_subtitle(format!(
            "{} on {} — energy {}",
            arch, training.dataset, analysis.energy_provenance
        ));
    for s in sections(&analysis) {
        report.push(s);
    }
    crate::cmd::replicate::write_reports(&report, &args.out)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&analysis)?);
    } else {
        let mut out = std::io::stdout().lock();
        match &analysis.energy_anova {
            Ok(t) => {
                writeln!(
                    out,
                    "type III ANOVA on attributed energy ({}; {} runs):",
                    analysis.energy_provenance, t.n
                )?;
                writeln!(
                    out,
                    "{:<24} {:>12} {:>4} {:>10} {:>10} {:>7}",
                    "term", "SS", "df", "F", "p", "η²"
                )?;
                for r in &t.rows {
                    writeln!(
                        out,
                        "{:<24} {:>12.4e} {:>4} {:>10.3} {:>10.3e} {:>7.3}",
                        r.term, r.sum_sq, r.df, r.f, r.p, r.eta_sq
                    )?;
                }
                writeln!(
                    out,
                    "{:<24} {:>12.4e} {:>4}",
                    "residual", t.residual.sum_sq, t.residual.df
                )?;
            }
            Err(e) => writeln!(out, "no ANOVA on energy: {e}")?,
        }
        if let Ok(t) = &analysis.tradeoff {
            writeln!(out, "{}", t.recommendation)?;
        }
        writeln!(out, "report: {}", args.out.join("report.html").display())?;
    }
    Ok(ExitCode::SUCCESS)
}

fn fmt_params(p: &greenlab_tune::Params) -> String {
    p.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_design_parses_to_the_paper_factors() {
        let file: DesignFile =
            toml::from_str(include_str!("../../../../examples/factorial.toml")).unwrap();
        assert_eq!(file.factors.len(), 3);
        assert_eq!(
            file.factors["conv"],
            vec![ParamValue::Int(1), ParamValue::Int(4)]
        );
        assert_eq!(
            file.factors["relu"],
            vec![ParamValue::Bool(true), ParamValue::Bool(false)]
        );
        assert_eq!(file.training.to_config().unwrap().limit_train, Some(4096));
    }
}
