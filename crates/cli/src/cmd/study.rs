//! `greenlab study list|show|export`: inspect the studies in a storage.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use greenlab_meter::EnergyBasis;
use greenlab_tune::config::StudyConfig;
use greenlab_tune::{Storage, StudyRecord, Trial, TrialState};

use super::tune::open_storage;

/// Arguments of `greenlab study`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// list, show or export.
    #[command(subcommand)]
    pub action: Action,
}

/// What to do.
#[derive(clap::Subcommand, Debug)]
pub enum Action {
    /// Store a study from its TOML definition without running anything (then start workers
    /// anywhere with `greenlab worker`, e.g. from a Slurm array or a Kubernetes Job).
    Create {
        /// Study definition (TOML), as for `greenlab tune`.
        #[arg(long)]
        config: PathBuf,
        /// Where the study lives.
        #[arg(long)]
        storage: String,
        /// Study name (overrides `name` in the config).
        #[arg(long)]
        study: Option<String>,
        /// The objective command (overrides [objective] command).
        #[arg(last = true)]
        command: Vec<String>,
    },
    /// Every study in the storage with its trial counts, best value and energy.
    List {
        /// Where the studies live.
        #[arg(long)]
        storage: String,
    },
    /// One study's definition and trials.
    Show {
        /// Where the study lives.
        #[arg(long)]
        storage: String,
        /// Study name.
        #[arg(long)]
        study: String,
    },
    /// One study's trials as CSV or JSON, or the whole study as an Optuna storage (SQLite,
    /// needs --out) that optuna.load_study and optuna-dashboard open.
    Export {
        /// Where the study lives.
        #[arg(long)]
        storage: String,
        /// Study name.
        #[arg(long)]
        study: String,
        /// csv, json or optuna.
        #[arg(long, default_value = "csv")]
        format: Format,
        /// Output file (written atomically); standard output when absent.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// Export formats.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// One row per trial, one column per parameter and objective.
    Csv,
    /// The study record, its definition and every trial.
    Json,
    /// Optuna's RDB schema in a SQLite file (parameters, distributions, values, states,
    /// intermediate values; energy, host and greenlab attributes as user attributes).
    Optuna,
}

/// Runs `greenlab study`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    match args.action {
        Action::Create {
            config,
            storage,
            study,
            command,
        } => create(&config, &storage, study, command),
        Action::List { storage } => list(open_storage(&storage)?.as_ref()),
        Action::Show { storage, study } => show(open_storage(&storage)?.as_ref(), &study),
        Action::Export {
            storage,
            study,
            format,
            out,
        } => {
            let storage = open_storage(&storage)?;
            let record = storage.study(&study)?;
            let trials = storage.trials(record.id)?;
            let text = match format {
                Format::Csv => trials_csv(&record, &trials),
                Format::Json => trials_json(&record, &trials)?,
                Format::Optuna => {
                    let Some(path) = out else {
                        bail!("--format optuna writes a SQLite file: give it with --out study.db");
                    };
                    greenlab_store::export_optuna(&path, &record, &trials)?;
                    println!(
                        "wrote {} trials of study {:?} to {} (Optuna storage: optuna.load_study(study_name={:?}, storage=\"sqlite:///{}\"))",
                        trials.len(),
                        record.name,
                        path.display(),
                        record.name,
                        std::path::absolute(&path).unwrap_or(path.clone()).display()
                    );
                    return Ok(ExitCode::SUCCESS);
                }
            };
            match out {
                Some(path) => write_atomically(&path, text.as_bytes())?,
                None => std::io::stdout()
                    .write_all(text.as_bytes())
                    .context("cannot write to standard output")?,
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn create(
    path: &Path,
    url: &str,
    name: Option<String>,
    command: Vec<String>,
) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read study config {}", path.display()))?;
    let mut config: StudyConfig = toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("malformed study TOML: {e}"))
        .with_context(|| format!("in {}", path.display()))?;
    if let Some(name) = name {
        config.name = name;
    }
    if !command.is_empty() {
        config.objective.kind = greenlab_tune::config::ObjectiveKind::Command;
        config.objective.command = command;
    }
    config
        .validate()
        .with_context(|| format!("in {}", path.display()))?;
    let shown = greenlab_store::redact_url(url);
    let storage = open_storage(url)?;
    let study = greenlab_tune::study::Study::create(std::sync::Arc::from(storage), config)
        .with_context(|| format!("cannot create the study in {shown}"))?;
    let c = study.config();
    let objective = match c.objective.kind {
        greenlab_tune::config::ObjectiveKind::Command => {
            format!(" -- {}", super::worker::shell_words(&c.objective.command))
        }
        greenlab_tune::config::ObjectiveKind::Train => String::new(),
    };
    println!(
        "study {:?} is stored in {shown} ({} trials so far); start workers with:\n  greenlab worker --storage {shown} --study {:?}{objective}",
        c.name,
        study.trials()?.len(),
        c.name
    );
    Ok(ExitCode::SUCCESS)
}

fn first_direction(record: &StudyRecord) -> Option<greenlab_tune::Direction> {
    StudyConfig::from_json(&record.spec_json)
        .ok()
        .and_then(|c| c.objectives.first().map(|o| o.direction))
}

fn list(storage: &dyn Storage) -> anyhow::Result<ExitCode> {
    let studies = storage.list_studies()?;
    if studies.is_empty() {
        println!("no studies; create one with `greenlab tune --config study.toml`");
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<24} {:>7} {:>8} {:>7} {:>7} {:>12} {:>14}",
        "study", "trials", "complete", "pruned", "failed", "best", "energy (J)"
    );
    for s in studies {
        let trials = storage.trials(s.id)?;
        let count = |st: TrialState| trials.iter().filter(|t| t.state == st).count();
        let best = first_direction(&s)
            .and_then(|d| greenlab_tune::study::best_value(&trials, d))
            .map(|b| format!("{b:.4}"))
            .unwrap_or_else(|| "-".into());
        println!(
            "{:<24} {:>7} {:>8} {:>7} {:>7} {:>12} {:>14}",
            s.name,
            trials.len(),
            count(TrialState::Complete),
            count(TrialState::Pruned),
            count(TrialState::Failed) + count(TrialState::Diverged),
            best,
            format_spent(&greenlab_tune::study::energy_spent(&trials))
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The energy a study spent, in the study list: joules when every trial's is known, else the
/// known part and how many trials are not measured.
pub(crate) fn format_spent(spent: &greenlab_tune::study::EnergySpent) -> String {
    match spent.total() {
        Some(j) => format!("{j:.1}"),
        None => format!(
            "≥{:.1} ({} not measured)",
            spent.known_j, spent.unknown_trials
        ),
    }
}

fn show(storage: &dyn Storage, name: &str) -> anyhow::Result<ExitCode> {
    let record = storage.study(name)?;
    let trials = storage.trials(record.id)?;
    match StudyConfig::from_json(&record.spec_json) {
        Ok(config) => {
            let toml = toml::to_string_pretty(&config).unwrap_or_else(|_| record.spec_json.clone());
            println!("# study {name:?} (id {})\n{toml}", record.id);
        }
        Err(e) => println!("# study {name:?}: definition not readable by this version ({e})"),
    }
    println!(
        "{:>6} {:<9} {:>24} {:>12} {:<10} params",
        "trial", "state", "values", "energy (J)", "source"
    );
    for t in &trials {
        let values = format_values(t.values.as_deref());
        let (energy, source) = t
            .energy
            .as_ref()
            .map(|e| {
                (
                    e.figure(EnergyBasis::Attributed)
                        .map_or_else(|| "not measured".into(), |j| format!("{:.1}", j.0)),
                    e.provenance().to_string(),
                )
            })
            .unwrap_or_else(|| ("-".into(), "-".into()));
        let params: Vec<String> = t.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let error = t
            .attrs
            .get("error")
            .and_then(|e| e.as_str())
            .map(|e| format!("  ({})", e.lines().next().unwrap_or("")))
            .unwrap_or_default();
        let retry = match (t.retry_of, t.retried_as()) {
            (Some(original), _) => format!("  [retry of trial {original}]"),
            (None, Some(n)) => format!("  [runs again as trial {n}]"),
            _ => String::new(),
        };
        println!(
            "{:>6} {:<9} {:>24} {:>12} {:<10} {}{error}{retry}",
            t.number,
            t.state.as_str(),
            values,
            energy,
            source,
            params.join(" ")
        );
    }
    print_energy_by_host(&trials);
    Ok(ExitCode::SUCCESS)
}

/// The per-host energy table of `study show`, with the caveat on worker processes that share
/// a host.
fn print_energy_by_host(trials: &[Trial]) {
    let by_host = greenlab_tune::study::energy_by_host(trials);
    if by_host.hosts.is_empty() {
        return;
    }
    println!(
        "\n{:<32} {:>7} {:>14} {:>8} {:>10}",
        "host", "trials", "energy (J)", "unknown", "processes"
    );
    for h in &by_host.hosts {
        println!(
            "{:<32} {:>7} {:>14.1} {:>8} {:>10}",
            h.host, h.trials, h.joules, h.unknown, h.processes
        );
    }
    println!(
        "{:<32} {:>7} {:>14.1} {:>8}",
        "total",
        by_host.hosts.iter().map(|h| h.trials).sum::<usize>(),
        by_host.joules,
        by_host.unknown
    );
    for line in greenlab_tune::study::energy_by_host_notes(&by_host) {
        println!("{line}");
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The trials as CSV: one row per trial.
pub fn trials_csv(record: &StudyRecord, trials: &[Trial]) -> String {
    let config = StudyConfig::from_json(&record.spec_json).ok();
    let metrics: Vec<String> = match &config {
        Some(c) => c.objectives.iter().map(|o| o.metric.clone()).collect(),
        None => {
            let n = trials
                .iter()
                .filter_map(|t| t.values.as_ref().map(Vec::len))
                .max()
                .unwrap_or(0);
            (0..n).map(|i| i.to_string()).collect()
        }
    };
    let params: BTreeSet<&String> = trials.iter().flat_map(|t| t.params.keys()).collect();
    let mut header: Vec<String> = ["study", "trial", "state"].map(String::from).to_vec();
    header.extend(metrics.iter().map(|m| format!("value_{m}")));
    header.extend(
        [
            "energy_j",
            "machine_energy_j",
            "energy_source",
            "energy_unknown",
            "duration_s",
            "steps",
            "worker",
            "host",
            "retry_of",
            "started_at",
            "finished_at",
        ]
        .map(String::from),
    );
    header.extend(params.iter().map(|p| format!("param_{p}")));
    header.push("error".into());
    let mut out = header
        .iter()
        .map(|h| csv_field(h))
        .collect::<Vec<_>>()
        .join(",");
    out.push('\n');
    let opt = |x: Option<f64>| x.map(|v| v.to_string()).unwrap_or_default();
    for t in trials {
        let mut row = vec![
            record.name.clone(),
            t.number.to_string(),
            t.state.as_str().to_string(),
        ];
        for i in 0..metrics.len() {
            row.push(opt(t.values.as_ref().and_then(|v| v.get(i).copied())));
        }
        // Unknown energy is an empty cell, never 0.
        row.push(opt(t
            .energy
            .as_ref()
            .and_then(|e| e.figure(EnergyBasis::Attributed))
            .map(|j| j.0)));
        row.push(opt(t
            .energy
            .as_ref()
            .and_then(|e| e.figure(EnergyBasis::Machine))
            .map(|j| j.0)));
        row.push(
            t.energy
                .as_ref()
                .map(|e| e.provenance().to_string())
                .unwrap_or_default(),
        );
        row.push(
            t.energy
                .as_ref()
                .and_then(|e| e.why_unknown(EnergyBasis::Attributed))
                .unwrap_or_default(),
        );
        row.push(opt(t.energy.as_ref().map(|e| e.duration.0)));
        row.push(t.intermediate.len().to_string());
        row.push(t.worker.clone().unwrap_or_default());
        row.push(t.host().unwrap_or_default().to_string());
        row.push(t.retry_of.map(|n| n.to_string()).unwrap_or_default());
        row.push(opt(t.started_at));
        row.push(opt(t.finished_at));
        for p in &params {
            row.push(t.params.get(*p).map(|v| v.to_string()).unwrap_or_default());
        }
        row.push(
            t.attrs
                .get("error")
                .and_then(|e| e.as_str())
                .unwrap_or("")
                .to_string(),
        );
        out.push_str(
            &row.iter()
                .map(|f| csv_field(f))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push('\n');
    }
    out
}

/// The study and its trials as pretty JSON.
pub fn trials_json(record: &StudyRecord, trials: &[Trial]) -> anyhow::Result<String> {
    let definition: serde_json::Value =
        serde_json::from_str(&record.spec_json).unwrap_or(serde_json::Value::Null);
    let doc = serde_json::json!({
        "study": record.name,
        "id": record.id,
        "created_at": record.created_at,
        "definition": definition,
        "trials": trials,
    });
    let mut text = serde_json::to_string_pretty(&doc).context("cannot encode the study as JSON")?;
    text.push('\n');
    Ok(text)
}

/// The one atomic writer (temporary file, `sync_all`, rename), shared by every command.
pub use greenlab_report::write_atomically;

/// Objective values for a table cell: `0.8123, 41.0000`, or `-` when there are none.
pub(crate) fn format_values(values: Option<&[f64]>) -> String {
    values.map_or_else(
        || "-".into(),
        |v| {
            v.iter()
                .map(|x| format!("{x:.4}"))
                .collect::<Vec<_>>()
                .join(", ")
        },
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use greenlab_meter::{Joules, Seconds, Source};
    use greenlab_tune::{MemoryStorage, ParamValue, Params, TrialEnergy, TrialOutcome};

    use super::*;

    fn complete_outcome(value: f64) -> TrialOutcome {
        TrialOutcome {
            state: TrialState::Complete,
            values: Some(vec![value]),
            energy: Some(TrialEnergy {
                total: Some(Joules(12.5)),
                attributed: Some(Joules(12.5)),
                source: Source::Estimated,
                duration: Seconds(1.0),
                domains: Vec::new(),
                unknown: None,
                warnings: Vec::new(),
            }),
            attrs: Default::default(),
        }
    }

    #[test]
    fn csv_has_one_row_per_trial_with_quoted_errors() {
        let s = MemoryStorage::new();
        let st = s.create_study("s", "{}").unwrap();
        let t = s.create_trial(st.id, "w", Duration::from_secs(60)).unwrap();
        let mut p = Params::new();
        p.insert("lr".into(), ParamValue::Float(0.01));
        s.set_params(t.id, &p).unwrap();
        s.finish_trial(t.id, &complete_outcome(0.9)).unwrap();
        let t2 = s.create_trial(st.id, "w", Duration::from_secs(60)).unwrap();
        let mut failed = complete_outcome(0.0);
        failed.state = TrialState::Failed;
        failed.values = None;
        failed
            .attrs
            .insert("error".into(), serde_json::json!("exit 3, \"oom\""));
        s.finish_trial(t2.id, &failed).unwrap();
        let csv = trials_csv(&st, &s.trials(st.id).unwrap());
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(
            lines[0].starts_with("study,trial,state,value_0,energy_j"),
            "{}",
            lines[0]
        );
        assert!(lines[0].ends_with("param_lr,error"));
        assert!(
            lines[1].starts_with("s,0,complete,0.9,12.5,12.5,estimated,,"),
            "{}",
            lines[1]
        );
        assert!(
            lines[2].ends_with(",\"exit 3, \"\"oom\"\"\""),
            "{}",
            lines[2]
        );
    }

    #[test]
    fn atomic_write_replaces_the_file_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.csv");
        write_atomically(&path, b"one").unwrap();
        write_atomically(&path, b"two").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two");
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file left behind");
        assert!(write_atomically(&dir.path().join("missing/out.csv"), b"x").is_err());
    }
}
