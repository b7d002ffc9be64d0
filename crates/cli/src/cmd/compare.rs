//! `greenlab compare`: which tuning strategy reached good accuracy for the least energy.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use greenlab_meter::EnergyBasis;
use greenlab_tune::Direction;
use greenlab_tune::compare::{Comparison, StudyTrials, compare};
use greenlab_tune::config::StudyConfig;

use super::study::write_atomically;
use super::tune::open_storage;

/// Arguments of `greenlab compare`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Where the studies live.
    #[arg(long)]
    pub storage: String,
    /// Studies to compare, comma-separated (same objective).
    #[arg(long, value_delimiter = ',', required = true)]
    pub studies: Vec<String>,
    /// Target for energy-to-target: this fraction of the best value seen in any study.
    #[arg(long, default_value_t = 0.99)]
    pub target_fraction: f64,
    /// Target value (instead of a fraction of the best).
    #[arg(long)]
    pub target: Option<f64>,
    /// Which energy to compare: attributed (each study's own processes, the default) or
    /// machine (what the counters say for the whole machine).
    #[arg(long, default_value = "attributed")]
    pub energy_basis: EnergyBasis,
    /// Print the full comparison (with the best-so-far vs energy curves) as JSON.
    #[arg(long)]
    pub json: bool,
    /// Write the output to this file (atomically) instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Runs `greenlab compare`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    if !(args.target_fraction > 0.0 && args.target_fraction <= 1.0) {
        bail!(
            "--target-fraction must lie in (0, 1], got {}",
            args.target_fraction
        );
    }
    let storage = open_storage(&args.storage)?;
    let mut inputs = Vec::new();
    let mut direction = None;
    for name in &args.studies {
        let record = storage
            .study(name)
            .with_context(|| format!("in {}", greenlab_store::redact_url(&args.storage)))?;
        let config = StudyConfig::from_json(&record.spec_json).ok();
        let d = config
            .as_ref()
            .and_then(|c| c.objectives.first())
            .map(|o| (o.metric.clone(), o.direction));
        if let (Some((m0, d0)), Some((m, d))) = (&direction, &d)
            && (m0 != m || d0 != d)
        {
            bail!(
                "study {name:?} optimises {m} ({d:?}), not {m0} ({d0:?}); compare studies of one objective"
            );
        }
        if direction.is_none() {
            direction = d;
        }
        inputs.push(StudyTrials {
            name: name.clone(),
            sampler: config.as_ref().map(|c| c.sampler.name.clone()),
            seed: config.as_ref().map(|c| c.sampler.seed),
            trials: storage.trials(record.id)?,
        });
    }
    let (metric, direction) = direction.unwrap_or(("accuracy".into(), Direction::Maximize));
    let comparison = compare(
        &inputs,
        direction,
        args.target,
        args.target_fraction,
        args.energy_basis,
    )?;
    let text = if args.json {
        let mut t = serde_json::to_string_pretty(&comparison).context("cannot encode JSON")?;
        t.push('\n');
        t
    } else {
        table(&comparison, &metric)
    };
    match &args.out {
        Some(path) => write_atomically(path, text.as_bytes())?,
        None => print!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}

fn table(c: &Comparison, metric: &str) -> String {
    let provenance: Vec<String> = c
        .studies
        .iter()
        .map(|s| s.provenance.to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut out = format!(
        "energy: {} figures, {}\n",
        c.basis,
        provenance.join(" and ")
    );
    for w in &c.warnings {
        out.push_str(&format!("warning: {w}\n"));
    }
    out += &format!(
        "target {}: {}\n{:<20} {:<8} {:>6} {:>7} {:>12} {:>14} {:>18} {:>16}\n",
        metric,
        c.target_rule,
        "study",
        "sampler",
        "seed",
        "trials",
        format!("best {metric}"),
        "energy (J)",
        "energy to target",
        "trials to target"
    );
    for s in &c.studies {
        out.push_str(&format!(
            "{:<20} {:<8} {:>6} {:>7} {:>12} {:>14.1} {:>18} {:>16}\n",
            s.study,
            s.sampler.as_deref().unwrap_or("-"),
            s.seed.map(|x| x.to_string()).unwrap_or_else(|| "-".into()),
            s.points.len(),
            s.best
                .map(|b| format!("{b:.4}"))
                .unwrap_or_else(|| "-".into()),
            s.total_energy_j,
            s.energy_to_target_j
                .map(|e| format!("{e:.1} J"))
                .unwrap_or_else(|| "not reached".into()),
            s.trials_to_target
                .map(|n| n.to_string())
                .unwrap_or_else(|| "-".into()),
        ));
    }
    out
}
