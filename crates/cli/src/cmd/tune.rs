//! `greenlab tune`: run a hyperparameter study from a TOML definition, with N local workers.
//!
//! Also holds what `worker`, `study` and `compare` share: [`open_storage`] (URL → storage, with
//! libpq's password sources; every command that takes `--storage` opens it here and prints it
//! only through `redact_url`), [`build_objective`] (study definition → objective) and the
//! progress printer.
//!
//! The built-in training objective (`[objective] kind = "train"`) is supplied by whoever wires
//! `greenlab train` into tuning: pass a [`TrainObjectiveFactory`] to [`run_with`] /
//! `worker::run_with`; [`run`] uses [`train_objective`], which says it is not wired yet.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use greenlab_meter::{Provenance, Tracker};
use greenlab_store::{PasswordSources, redact_url};
use greenlab_tune::config::{ObjectiveKind, StudyConfig, parse_duration, parse_energy};
use greenlab_tune::process::ProcessTable;
use greenlab_tune::study::{
    CommandObjective, ObjectiveFunction, Observer, RunOptions, RunSummary, StopReason, Study,
};
use greenlab_tune::{Reaped, Storage, Trial, TrialOutcome, TrialState};

use crate::meters::MeterArgs;

/// Arguments of `greenlab tune`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Study definition (TOML): name, [space], objectives, [sampler], [pruner], [stop], [objective].
    #[arg(long)]
    pub config: PathBuf,
    /// Where the study lives: sqlite:///abs/path.db, sqlite://rel.db, postgres://..., memory:.
    #[arg(long, default_value = "sqlite://greenlab-studies.db")]
    pub storage: String,
    /// Worker threads in this process.
    #[arg(long, default_value_t = 1)]
    pub workers: usize,
    /// Study name (overrides `name` in the config).
    #[arg(long)]
    pub study: Option<String>,
    /// Sampler (overrides [sampler] name): grid, random, halton, sobol, gp, tpe, parego, nsga2.
    #[arg(long)]
    pub sampler: Option<String>,
    /// Sampler seed (overrides [sampler] seed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Number of trials (overrides [stop] n_trials).
    #[arg(long)]
    pub n_trials: Option<u64>,
    /// Wall-time limit of this run, e.g. 90s, 30min, 2h (overrides [stop] timeout).
    #[arg(long)]
    pub timeout: Option<String>,
    /// Energy budget of the study, e.g. 50kJ, 2.5MJ, 300J (overrides [stop] energy_budget).
    #[arg(long)]
    pub energy_budget: Option<String>,
    /// Stop when a trial reaches this value of the first objective (overrides [stop] target).
    #[arg(long)]
    pub target: Option<f64>,
    #[command(flatten)]
    pub meter: MeterArgs,
    /// Lease of a running trial in seconds; a worker silent this long is presumed dead.
    #[arg(long, default_value_t = 60)]
    pub lease_s: u64,
    #[command(flatten)]
    pub placement: Placement,
    /// The objective command, `{name}` replaced by parameter values; its last stdout line of
    /// JSON holds the metrics (e.g. -- python train.py --lr {lr}).
    #[arg(last = true)]
    pub command: Vec<String>,
}

/// Where this process's workers run: the host name trials record, and one GPU per worker.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct Placement {
    /// Name of this machine in the trials' records and the per-host energy (default: its host
    /// name; on Kubernetes pass the node's name, so pods of one node count as one machine).
    #[arg(long)]
    pub host_name: Option<String>,
    /// Give each worker its own GPU: worker i's trial commands see only the i-th device of
    /// CUDA_VISIBLE_DEVICES (or GPU i when it is unset). Use with --workers = GPUs.
    #[arg(long)]
    pub gpu_per_worker: bool,
}

impl Placement {
    /// The host name trials record.
    pub fn host(&self) -> String {
        self.host_name.clone().unwrap_or_else(|| {
            std::fs::read_to_string("/proc/sys/kernel/hostname")
                .or_else(|_| std::fs::read_to_string("/etc/hostname"))
                .map(|h| h.trim().to_string())
                .ok()
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "host".into())
        })
    }

    /// The device of each worker, when `--gpu-per-worker` is given.
    pub fn devices(&self, workers: usize) -> Vec<String> {
        if !self.gpu_per_worker {
            return Vec::new();
        }
        match std::env::var("CUDA_VISIBLE_DEVICES") {
            Ok(list) if !list.trim().is_empty() => list
                .split(',')
                .map(|d| d.trim().to_string())
                .filter(|d| !d.is_empty())
                .collect(),
            _ => (0..workers.max(1)).map(|i| i.to_string()).collect(),
        }
    }
}

/// Builds the built-in training objective from a study definition (`[objective] options`)
/// and the tracker that measures it.
pub type TrainObjectiveFactory =
    dyn Fn(&StudyConfig, Arc<Tracker>) -> anyhow::Result<Arc<dyn ObjectiveFunction>>;

/// The built-in training objective: `[objective] options` are the training settings
/// (model, conv, linear, relu, dataset, data_dir, epochs, batch_size, lr, limit_train,
/// limit_test, seed, engine, device); each trial's parameters override them and test accuracy
/// is reported after every epoch, so pruners can stop bad trials early.
pub fn train_objective(
    config: &StudyConfig,
    tracker: Arc<Tracker>,
) -> anyhow::Result<Arc<dyn ObjectiveFunction>> {
    Ok(Arc::new(crate::objective::from_options(
        &config.objective.options,
        tracker,
    )?))
}

/// Runs `greenlab tune`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    run_with(args, &train_objective)
}

/// Runs `greenlab tune` with `train` building `kind = "train"` objectives.
pub fn run_with(args: Args, train: &TrainObjectiveFactory) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.config)
        .with_context(|| format!("cannot read study config {}", args.config.display()))?;
    let mut config = parse_config_with_overrides(&text, &args)
        .with_context(|| format!("in {}", args.config.display()))?;
    if !args.command.is_empty() {
        config.objective.kind = ObjectiveKind::Command;
        config.objective.command = args.command.clone();
    }
    config.validate()?;
    let storage = open_storage(&args.storage)?;
    let study = Study::create(Arc::from(storage), config)
        .with_context(|| format!("cannot create the study in {}", redact_url(&args.storage)))?;
    let tracker = build_tracker(&args.meter, study.config())?;
    let objective = build_objective(
        study.config(),
        Arc::clone(&tracker),
        train,
        args.placement.devices(args.workers),
    )?;
    eprintln!(
        "study {:?} in {}: sampler {}, pruner {}, {} worker(s)",
        study.config().name,
        redact_url(&args.storage),
        study.config().sampler.name,
        study.config().pruner.name,
        args.workers
    );
    let options = run_options(args.workers, args.lease_s, tracker, &args.placement);
    let summary = study.run(objective, &options)?;
    print_summary(&study, &summary)?;
    interrupted_exit(&study, &summary)
}

fn parse_config_with_overrides(text: &str, args: &Args) -> anyhow::Result<StudyConfig> {
    // Parse without validation first, so that overrides can repair what they replace.
    let mut config: StudyConfig =
        toml::from_str(text).map_err(|e| anyhow::anyhow!("malformed study TOML: {e}"))?;
    if let Some(name) = &args.study {
        config.name = name.clone();
    }
    if let Some(sampler) = &args.sampler {
        if *sampler != config.sampler.name {
            config.sampler.options.clear();
        }
        config.sampler.name = sampler.clone();
    }
    if let Some(seed) = args.seed {
        config.sampler.seed = seed;
    }
    if let Some(n) = args.n_trials {
        config.stop.n_trials = Some(n);
    }
    if let Some(t) = &args.timeout {
        config.stop.timeout = Some(parse_duration(t)?);
    }
    if let Some(e) = &args.energy_budget {
        config.stop.energy_budget = Some(parse_energy(e)?);
    }
    if let Some(t) = args.target {
        config.stop.target = Some(t);
    }
    Ok(config)
}

/// Opens a study storage from its URL: `sqlite:///abs.db`, `sqlite://rel.db`, `postgres://…`,
/// `memory:`. A PostgreSQL URL without a password takes it from `PGPASSWORD` or the password
/// file (`PGPASSFILE`, default `~/.pgpass`), as libpq does.
pub fn open_storage(url: &str) -> anyhow::Result<Box<dyn Storage>> {
    let passwords = PasswordSources {
        password: std::env::var("PGPASSWORD").ok().filter(|p| !p.is_empty()),
        passfile: std::env::var_os("PGPASSFILE")
            .filter(|p| !p.is_empty())
            .map(std::path::PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pgpass"))),
    };
    greenlab_store::open_with(url, &passwords)
        .with_context(|| format!("cannot open the study storage {}", redact_url(url)))
}

/// The energy tracker for a study: built from `--meter` and friends by the one builder, for
/// the device the study's training objective runs on (every GPU for a command objective). A
/// study that needs energy (an energy objective or budget, cost-aware acquisition, the energy
/// pruner) does not start without a working energy source.
pub fn build_tracker(meter: &MeterArgs, config: &StudyConfig) -> anyhow::Result<Arc<Tracker>> {
    let device = match config.objective.kind {
        ObjectiveKind::Train => Some(
            config
                .objective
                .options
                .get("device")
                .and_then(|d| d.as_str())
                .unwrap_or("cpu")
                .to_owned(),
        ),
        ObjectiveKind::Command => None,
    };
    let tracker = crate::meters::tracker(meter, device.as_deref())?;
    require_energy(config, tracker.provenance())?;
    Ok(Arc::new(tracker))
}

/// Refuses a study that needs energy when nothing can measure or estimate it.
pub fn require_energy(config: &StudyConfig, provenance: Provenance) -> anyhow::Result<()> {
    let uses = config.energy_uses();
    if provenance == Provenance::NotMeasured && !uses.is_empty() {
        anyhow::bail!(
            "study {:?} needs trial energy ({}), but no energy source works on this machine; \
             run `greenlab meters` to see why, fix it, or remove the energy settings",
            config.name,
            uses.join(", ")
        );
    }
    Ok(())
}

/// The objective a study definition names; `devices` gives each worker of a command
/// objective its own GPU (see [`Placement::devices`]).
pub fn build_objective(
    config: &StudyConfig,
    tracker: Arc<Tracker>,
    train: &TrainObjectiveFactory,
    devices: Vec<String>,
) -> anyhow::Result<Arc<dyn ObjectiveFunction>> {
    Ok(match config.objective.kind {
        ObjectiveKind::Command => Arc::new(
            CommandObjective::new(
                config.objective.command.clone(),
                &config.search_space(),
                tracker,
            )?
            .with_devices(devices),
        ),
        ObjectiveKind::Train => train(config, tracker)?,
    })
}

/// Success, or the interrupt error when Ctrl-C ended the run.
pub fn interrupted_exit(study: &Study, summary: &RunSummary) -> anyhow::Result<ExitCode> {
    if summary.stop == StopReason::Cancelled && crate::interrupt::requested() {
        return Err(crate::interrupt::Interrupted(format!(
            "study {:?} stopped; its trials so far are stored and rerunning the same command \
             resumes it (the interrupted trial runs again)",
            study.config().name
        ))
        .into());
    }
    Ok(ExitCode::SUCCESS)
}

/// Run options with a progress printer and a Ctrl-C handler, named after this host and process;
/// trials record this process (host, pid, identity), and trials of local workers whose process
/// is gone are reaped at once.
pub fn run_options(
    workers: usize,
    lease_s: u64,
    tracker: Arc<Tracker>,
    placement: &Placement,
) -> RunOptions {
    let host = placement.host();
    let table = ProcessTable::new("/proc");
    RunOptions {
        workers: workers.max(1),
        lease: Duration::from_secs(lease_s.max(1)),
        worker_prefix: format!("{host}/pid{}", std::process::id()),
        process: Some(table.current(&host)),
        process_table: Some(table),
        tracker: Some(tracker),
        observer: Some(Arc::new(Progress)),
        cancel: crate::interrupt::install(),
        ..RunOptions::default()
    }
}

/// Prints one line per finished trial on stderr.
struct Progress;

impl Observer for Progress {
    fn trial_finished(&self, trial: &Trial, outcome: &TrialOutcome) {
        let values = crate::cmd::study::format_values(outcome.values.as_deref());
        let energy = outcome
            .energy
            .as_ref()
            .map(
                |e| match e.figure(greenlab_meter::EnergyBasis::Attributed) {
                    Some(j) => format!("{:.1} J ({})", j.0, e.provenance()),
                    None => "energy not measured".to_owned(),
                },
            )
            .unwrap_or_else(|| "no energy".into());
        let params = trial
            .params
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ");
        let error = outcome
            .attrs
            .get("error")
            .and_then(|e| e.as_str())
            .map(|e| format!(" — {}", e.lines().next().unwrap_or("")))
            .unwrap_or_default();
        eprintln!(
            "trial {:>4} {:<8} [{values}] {energy} {params}{error}",
            trial.number,
            outcome.state.as_str()
        );
    }

    fn trials_lost(&self, reaped: &[Reaped]) {
        for r in reaped {
            let retry = match r.retried_as {
                Some(n) => format!("; its parameters run again as trial {n}"),
                None => "; not retried (no parameters, or its retries are used up)".into(),
            };
            eprintln!("trial {:>4} lost     {}{retry}", r.number, r.reason);
        }
    }
}

/// Prints why the run stopped, the best trial(s) and the energy spent.
pub fn print_summary(study: &Study, summary: &RunSummary) -> anyhow::Result<()> {
    let trials = study.trials()?;
    let objectives = &study.config().objectives;
    println!(
        "stopped: {} after {:.1} s; this run: {} trial(s)",
        summary.stop,
        summary.elapsed.as_secs_f64(),
        summary.trials_run
    );
    let count = |s: TrialState| trials.iter().filter(|t| t.state == s).count();
    let lost = trials.iter().filter(|t| t.was_lost()).count();
    println!(
        "study {:?}: {} trials ({} complete, {} pruned, {} failed{}, {} diverged), {} J in all",
        study.config().name,
        trials.len(),
        count(TrialState::Complete),
        count(TrialState::Pruned),
        count(TrialState::Failed),
        if lost > 0 {
            format!(" of which {lost} lost with their worker")
        } else {
            String::new()
        },
        count(TrialState::Diverged),
        crate::cmd::study::format_spent(&greenlab_tune::study::energy_spent(&trials))
    );
    let front = greenlab_tune::compare::pareto_front(&trials, objectives);
    let title = if objectives.len() > 1 {
        "pareto front"
    } else {
        "best trial"
    };
    if front.is_empty() {
        println!("no complete trial");
    }
    for t in front {
        let values: Vec<String> = objectives
            .iter()
            .zip(t.values.iter().flatten())
            .map(|(o, v)| format!("{}={v:.6}", o.metric))
            .collect();
        let params: Vec<String> = t.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!(
            "{title}: trial {} {} {}",
            t.number,
            values.join(" "),
            params.join(" ")
        );
    }
    Ok(())
}
