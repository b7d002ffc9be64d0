//! `greenlab report`: a self-contained HTML (or Markdown/JSON) report of a run folder or a study.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use greenlab_meter::carbon::WORLD;
use greenlab_meter::{EnergyBasis, Joules, Provenance, emissions, intensity_for};
use greenlab_report::{
    Axis, Block, Cell, Format, LinePlot, Report, Scatter, ScatterPoint, Section, Series, Table,
    Unit, render, write_atomically,
};
use greenlab_train::TrainResult;
use greenlab_tune::{TrialState, study::Study};

/// Arguments of `greenlab report`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A run folder written by `greenlab train`, `factorial` or `replicate`.
    #[arg(required_unless_present = "study")]
    dir: Option<PathBuf>,
    /// Storage URL of a study (with `--study`).
    #[arg(long, requires = "study")]
    storage: Option<String>,
    /// Name of the study to report on.
    #[arg(long, requires = "storage")]
    study: Option<String>,
    /// html, md or json.
    #[arg(long, default_value = "html")]
    format: String,
    /// Output file; default: report.<ext> in the run folder (or the current folder for studies).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Region (ISO 3166 alpha-3, e.g. DEU) for CO₂e; default: world average.
    #[arg(long)]
    country: Option<String>,
    /// PUE of the data centre (1.0 for a machine at home or in an office).
    #[arg(long, default_value_t = 1.0)]
    pue: f64,
}

/// Runs `greenlab report`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let format: Format = args.format.parse()?;
    let (report, default_dir) = match (&args.dir, &args.study, &args.storage) {
        (_, Some(study), Some(url)) => (study_report(url, study)?, PathBuf::from(".")),
        (Some(dir), _, _) => (dir_report(dir, &args)?, dir.clone()),
        _ => bail!("give a run folder, or --storage URL --study NAME"),
    };
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| default_dir.join(format!("report.{}", format.extension())));
    write_atomically(&out, render(&report, format)?)?;
    println!("{}", out.display());
    Ok(ExitCode::SUCCESS)
}

fn dir_report(dir: &std::path::Path, args: &Args) -> anyhow::Result<Report> {
    let doc = dir.join("report.json");
    if doc.is_file() {
        let text = std::fs::read_to_string(&doc)
            .with_context(|| format!("cannot read {}", doc.display()))?;
        return serde_json::from_str(&text)
            .with_context(|| format!("{} is not a greenlab report document", doc.display()));
    }
    let result = dir.join("result.json");
    if result.is_file() {
        let text = std::fs::read_to_string(&result)
            .with_context(|| format!("cannot read {}", result.display()))?;
        let r: TrainResult = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a greenlab training result", result.display()))?;
        return train_report(&r, args);
    }
    bail!(
        "{} holds neither report.json (factorial, replicate) nor result.json (train); pass a folder written by greenlab",
        dir.display()
    )
}

/// A report of one training run: summary, per-epoch table and energy/power traces.
pub fn train_report(r: &TrainResult, args: &Args) -> anyhow::Result<Report> {
    let intensity = match &args.country {
        Some(c) => intensity_for(c).with_context(|| {
            format!("no carbon intensity for region {c:?}; use an ISO alpha-3 code such as DEU")
        })?,
        None => WORLD,
    };
    let co2 = r
        .attributed_energy
        .map(|e| emissions(e, intensity, args.pue));
    let mut report = Report::new(format!("Training run: {}", r.network)).with_subtitle(format!(
        "{} engine on {}, {} training / {} test images — energy {}",
        r.engine, r.device, r.train_examples, r.test_examples, r.energy_provenance
    ));
    let mut summary = Section::new("Summary");
    summary.push(Block::Table(
        Table::new([
            "test accuracy",
            "energy (this run)",
            "machine energy",
            "source",
            "CO₂e",
            "duration",
            "images/s",
            "parameters",
        ])
        .with_row([
            r.final_test_accuracy.map_or(Cell::Empty, Cell::percent),
            joules_cell(r.attributed_energy),
            joules_cell(r.total_energy),
            Cell::text(r.energy_provenance.to_string()),
            co2.map_or(Cell::text("not known"), |c| {
                Cell::number(c.0, Unit::GramsCo2e)
            }),
            Cell::seconds(r.total_duration.0),
            Cell::plain(r.images_per_second()),
            Cell::count(r.parameters as u64),
        ])
        .with_caption(format!(
            "CO₂e at {:.0} g/kWh{} and PUE {}",
            intensity.0,
            args.country
                .as_deref()
                .map_or(" (world average)".to_string(), |c| format!(" ({c})")),
            args.pue
        )),
    ));
    if r.diverged() {
        summary.push(Block::Paragraph(format!(
            "The run diverged: {:?}.",
            r.status
        )));
    }
    if let Some(why) = &r.energy_unknown {
        summary.push(Block::Paragraph(format!(
            "Energy is not fully measured: {why}. Figures that depend on it are left out \
             rather than counted as zero; `greenlab meters` shows why."
        )));
    }
    report.push(summary);
    let mut epochs = Section::new("Per epoch");
    let mut t = Table::new([
        "epoch",
        "train loss",
        "train accuracy",
        "test accuracy",
        "duration",
        "energy",
        "average power",
        "images/s",
    ]);
    let mut energy_pts = Vec::new();
    let mut power_pts = Vec::new();
    let mut acc_pts = Vec::new();
    // Plotted only while every epoch's energy is known: a curve through a missing figure
    // would read as zero.
    let mut cumulative = Some(Joules(0.0));
    for e in &r.epochs {
        cumulative = cumulative.zip(e.energy.attributed).map(|(a, b)| a + b);
        if let Some(c) = cumulative {
            energy_pts.push((e.epoch as f64, c.0));
            if let Some(a) = e.test_accuracy {
                acc_pts.push((c.0, a));
            }
        }
        let power = e.energy.attributed.and_then(|j| j.per(e.energy.duration));
        if let Some(p) = power {
            power_pts.push((e.epoch as f64, p.0));
        }
        t.push_row([
            Cell::count(e.epoch as u64),
            Cell::plain(e.train_loss),
            Cell::percent(e.train_accuracy),
            e.test_accuracy.map_or(Cell::Empty, Cell::percent),
            Cell::seconds(e.duration.0),
            joules_cell(e.energy.attributed),
            power.map_or(Cell::text("not measured"), |p| Cell::watts(p.0)),
            Cell::plain(e.images_per_second),
        ]);
    }
    epochs.push(Block::Table(t));
    if !power_pts.is_empty() {
        epochs.push(Block::LinePlot(LinePlot {
            caption: format!(
                "Average power of this run per epoch ({})",
                r.energy_provenance
            ),
            x: Axis::new("epoch", Unit::Count),
            y: Axis::new("average power", Unit::Watts),
            series: vec![Series::new("power", power_pts)],
        }));
    }
    if !energy_pts.is_empty() {
        epochs.push(Block::LinePlot(LinePlot {
            caption: format!("Cumulative energy of this run ({})", r.energy_provenance),
            x: Axis::new("epoch", Unit::Count),
            y: Axis::new("energy", Unit::Joules),
            series: vec![Series::new("energy", energy_pts)],
        }));
    }
    report.push(epochs);
    let mut cfg = Section::new("Configuration");
    cfg.push(Block::Code(serde_json::to_string_pretty(&r.config)?));
    if !r.meter.is_empty() {
        cfg.push(Block::Paragraph(format!(
            "Energy meter: {}",
            r.meter.join("; ")
        )));
    }
    report.push(cfg);
    Ok(report)
}

/// Energy per host and in total, with what the figures mean when worker processes share a host.
fn host_section(trials: &[greenlab_tune::Trial]) -> Section {
    let by_host = greenlab_tune::study::energy_by_host(trials);
    let mut table = Table::new([
        "host",
        "trials",
        "energy",
        "unknown energy",
        "worker processes",
    ]);
    for h in &by_host.hosts {
        table.push_row([
            Cell::text(h.host.clone()),
            Cell::count(h.trials as u64),
            Cell::joules(h.joules),
            Cell::count(h.unknown as u64),
            Cell::count(h.processes as u64),
        ]);
    }
    table.push_row([
        Cell::text("total"),
        Cell::count(by_host.hosts.iter().map(|h| h.trials as u64).sum()),
        Cell::joules(by_host.joules),
        Cell::count(by_host.unknown as u64),
        Cell::Empty,
    ]);
    let mut section = Section::new("Energy per host").with(Block::Table(table));
    for note in greenlab_tune::study::energy_by_host_notes(&by_host) {
        section.push(Block::Paragraph(note));
    }
    section
}

/// A report of a tuning study: trials, best-so-far against cumulative energy, accuracy vs energy.
fn study_report(url: &str, name: &str) -> anyhow::Result<Report> {
    let storage: std::sync::Arc<dyn greenlab_tune::Storage> =
        std::sync::Arc::from(super::tune::open_storage(url)?);
    let study = Study::open(storage, name)?;
    let mut trials = study.trials()?;
    trials.sort_by_key(|t| t.number);
    let metric = study
        .config()
        .objectives
        .first()
        .map_or("accuracy".to_string(), |o| o.metric.clone());
    let mut report = Report::new(format!("Study {name}")).with_subtitle(format!(
        "sampler {}, {} trials, objective {metric}",
        study.config().sampler.name,
        trials.len()
    ));
    let mut table = Table::new([
        "trial",
        "state",
        "parameters",
        &metric,
        "energy",
        "source",
        "duration",
    ]);
    let mut best_pts = Vec::new();
    let mut scatter = Vec::new();
    // Unknown from the first trial without a figure on: never a curve through zeros.
    let mut cumulative = Some(0.0);
    let mut best = f64::NEG_INFINITY;
    let mut provenances = Vec::new();
    let mut unmeasured = Vec::new();
    for t in &trials {
        let value = t.values.as_ref().and_then(|v| v.first().copied());
        let energy = t.energy.as_ref();
        let figure = energy.and_then(|e| e.figure(EnergyBasis::Attributed));
        if let Some(e) = energy {
            provenances.push(e.provenance());
            if figure.is_none() {
                unmeasured.push(format!(
                    "trial {}: {}",
                    t.number,
                    e.why_unknown(EnergyBasis::Attributed).unwrap_or_default()
                ));
            }
        }
        if t.state.is_finished() {
            cumulative = cumulative.zip(figure).map(|(c, f)| c + f.0);
        }
        if let (TrialState::Complete, Some(v)) = (t.state, value) {
            best = best.max(v);
            if let Some(e) = figure {
                scatter.push(
                    ScatterPoint::new(e.0, v, "complete").with_label(format!("#{}", t.number)),
                );
            }
        }
        if let Some(c) = cumulative
            && best.is_finite()
            && t.state.is_finished()
        {
            best_pts.push((c, best));
        }
        table.push_row([
            Cell::count(t.number),
            Cell::text(t.state.as_str()),
            Cell::text(
                t.params
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" "),
            ),
            value.map_or(Cell::Empty, Cell::plain),
            energy.map_or(Cell::Empty, |e| {
                joules_cell(e.figure(EnergyBasis::Attributed))
            }),
            energy.map_or(Cell::Empty, |e| Cell::text(e.provenance().to_string())),
            energy.map_or(Cell::Empty, |e| Cell::seconds(e.duration.0)),
        ]);
    }
    let source = Provenance::combine(provenances.iter().copied());
    let mut plots = Section::new("Accuracy per joule");
    plots.push(Block::Paragraph(format!(
        "Energy: {source} figures, attributed to each trial's processes."
    )));
    if !unmeasured.is_empty() {
        plots.push(Block::Paragraph(format!(
            "{} trial(s) have no energy measured ({}); the cumulative curve stops at the first \
             of them and they are not in the scatter. `greenlab meters` shows why.",
            unmeasured.len(),
            unmeasured.join("; ")
        )));
    }
    plots.push(Block::LinePlot(LinePlot {
        caption: format!("Best {metric} so far against cumulative energy ({source})"),
        x: Axis::new("cumulative energy", Unit::Joules),
        y: Axis::new(format!("best {metric}"), Unit::None),
        series: vec![Series::new(name.to_string(), best_pts)],
    }));
    let pts: Vec<(f64, f64)> = scatter.iter().map(|p| (p.x, p.y)).collect();
    let front_idx = greenlab_stats::pareto_front(
        &pts,
        [
            greenlab_stats::Direction::Minimize,
            greenlab_stats::Direction::Maximize,
        ],
    );
    let mut front: Vec<(f64, f64)> = front_idx.iter().map(|&i| pts[i]).collect();
    front.sort_by(|a, b| a.0.total_cmp(&b.0));
    plots.push(Block::Scatter(Scatter {
        caption: format!("{metric} against energy per trial ({source}); line: Pareto front"),
        x: Axis::new("energy", Unit::Joules),
        y: Axis::new(metric.clone(), Unit::None),
        points: scatter,
        pareto_front: front,
    }));
    report.push(plots);
    report.push(host_section(&trials));
    report.push(Section::new("Trials").with(Block::Table(table)));
    report.push(Section::new("Definition").with(Block::Code(study.config().to_json())));
    Ok(report)
}

/// A joules cell, or "not measured" (never 0 for an unknown figure).
fn joules_cell(e: Option<Joules>) -> Cell {
    e.map_or_else(|| Cell::text("not measured"), |e| Cell::joules(e.0))
}
