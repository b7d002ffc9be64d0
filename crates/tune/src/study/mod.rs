//! Running a study: workers that claim or create trials, sample, run the objective under a
//! lease, report intermediate values to the pruner, and record each outcome with its energy.
//!
//! ```
//! use std::sync::Arc;
//! use greenlab_tune::config::StudyConfig;
//! use greenlab_tune::study::{ObjectiveOutput, RunOptions, Study};
//! use greenlab_tune::MemoryStorage;
//!
//! let config = StudyConfig::from_toml(r#"
//!     name = "demo"
//!     [space]
//!     x = { type = "float", low = -1.0, high = 1.0 }
//!     [stop]
//!     n_trials = 8
//! "#).unwrap();
//! let study = Study::create(Arc::new(MemoryStorage::new()), config).unwrap();
//! let objective = |p: &greenlab_tune::Params, _ctx: &mut greenlab_tune::study::TrialContext<'_>| {
//!     let x = p["x"].as_f64().unwrap_or(0.0);
//!     Ok(ObjectiveOutput { metrics: [("accuracy".to_string(), 1.0 - x * x)].into(), ..Default::default() })
//! };
//! let summary = study.run(Arc::new(objective), &RunOptions { workers: 2, ..Default::default() }).unwrap();
//! assert_eq!(summary.trials_run, 8);
//! ```

mod command;
mod objective;
mod worker;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

pub use command::{CommandObjective, substitute};
pub use objective::{
    ObjectiveError, ObjectiveFunction, ObjectiveOutput, TrialContext, trial_energy,
    trial_energy_of, unmeasured,
};
pub use worker::{Observer, RunOptions, RunSummary, StopReason};

use crate::TuneError;
use crate::config::{StudyConfig, build_pruner, build_sampler};
use crate::pruner::Pruner;
use crate::sampler::Sampler;
use crate::storage::{Storage, StudyRecord};
use crate::trial::{Direction, Trial, TrialState};
use greenlab_meter::EnergyBasis;

/// A study bound to its storage, with its sampler and pruner built.
pub struct Study {
    storage: Arc<dyn Storage>,
    record: StudyRecord,
    config: StudyConfig,
    sampler: Box<dyn Sampler>,
    pruner: Box<dyn Pruner>,
}

impl std::fmt::Debug for Study {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Study")
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

impl Study {
    /// Creates the study in `storage`, or opens it if one of that name exists with the same
    /// definition. The stopping rules are not part of the definition (they say how long this
    /// run goes on, so a finished study can be extended with more trials or a larger budget):
    /// this run uses `config`'s. Any other difference (space, objectives, sampler, pruner,
    /// objective) is `StudyConflict`.
    pub fn create(storage: Arc<dyn Storage>, config: StudyConfig) -> Result<Study, TuneError> {
        config.validate()?;
        let record = match storage.create_study(&config.name, &config.to_json()) {
            Ok(record) => record,
            Err(conflict @ TuneError::StudyConflict(_)) => {
                let record = storage.study(&config.name)?;
                let stored = StudyConfig::from_json(&record.spec_json)?;
                let mut without_stop = stored;
                without_stop.stop = config.stop.clone();
                if without_stop.to_json() != config.to_json() {
                    return Err(conflict);
                }
                record
            }
            Err(e) => return Err(e),
        };
        Study::from_parts(storage, record, config)
    }

    /// Opens an existing study by name, with the definition stored in it (for `worker`).
    pub fn open(storage: Arc<dyn Storage>, name: &str) -> Result<Study, TuneError> {
        let record = storage.study(name)?;
        let config = StudyConfig::from_json(&record.spec_json)?;
        Study::from_parts(storage, record, config)
    }

    fn from_parts(
        storage: Arc<dyn Storage>,
        record: StudyRecord,
        config: StudyConfig,
    ) -> Result<Study, TuneError> {
        Ok(Study {
            sampler: build_sampler(&config.sampler)?,
            pruner: build_pruner(&config.pruner)?,
            storage,
            record,
            config,
        })
    }

    /// The study's definition.
    pub fn config(&self) -> &StudyConfig {
        &self.config
    }

    /// The stored study record.
    pub fn record(&self) -> &StudyRecord {
        &self.record
    }

    /// The storage.
    pub fn storage(&self) -> &Arc<dyn Storage> {
        &self.storage
    }

    /// Every trial so far.
    pub fn trials(&self) -> Result<Vec<Trial>, TuneError> {
        self.storage.trials(self.record.id)
    }

    /// Runs `options.workers` worker threads until a stopping rule holds; see [`worker`].
    pub fn run(
        &self,
        objective: Arc<dyn ObjectiveFunction>,
        options: &RunOptions,
    ) -> Result<RunSummary, TuneError> {
        worker::run(self, objective, options)
    }

    /// Which stopping rule holds now, if any, given the trials and this run's start time.
    pub fn stop_reason(&self, trials: &[Trial], started: Instant) -> Option<StopReason> {
        stop_reason(
            &self.config,
            self.sampler.as_ref(),
            trials,
            started.elapsed(),
        )
    }
}

/// Whether a trial was stopped by a cancelled run (Ctrl-C) rather than by its own failure; such
/// a trial does not count towards `n_trials` and its parameters are run again on resume.
pub fn was_interrupted(trial: &Trial) -> bool {
    trial.state == TrialState::Failed
        && trial.attrs.get("interrupted") == Some(&serde_json::Value::Bool(true))
}

/// Whether a trial counts towards `[stop] n_trials`. Waiting, running and finished trials
/// (complete, pruned, diverged, and failed because the objective failed) count; a trial that
/// did not finish through no fault of its parameters does not, because it runs again: an
/// interrupted one (Ctrl-C), or one lost with its worker (killed, lease expired) that was
/// retried or never had parameters. A lost trial whose retries are used up counts as failed.
pub fn counts_towards_n_trials(trial: &Trial) -> bool {
    if was_interrupted(trial) {
        return false;
    }
    if trial.was_lost() {
        return trial.retried_as().is_none() && !trial.params.is_empty();
    }
    true
}

/// A trial's attributed energy in joules, when known. Every sum over trials (per host,
/// exports) reads the figure through here, so they agree on what counts as known.
pub fn trial_joules(trial: &Trial) -> Option<f64> {
    trial
        .energy
        .as_ref()
        .and_then(|e| e.figure(EnergyBasis::Attributed))
        .map(|j| j.0)
}

/// Energy of the trials one host ran.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HostEnergy {
    /// Host name (`unknown` for trials that recorded none).
    pub host: String,
    /// Finished trials that ran there.
    pub trials: usize,
    /// Sum of the known figures.
    pub joules: f64,
    /// Finished trials whose energy is unknown (never counted as 0).
    pub unknown: usize,
    /// Distinct worker processes that ran them.
    pub processes: usize,
    /// Trials that ran while a trial of another worker process of the same host ran: each
    /// process's meter reads the whole machine, so such figures overlap and their sum counts
    /// that time more than once.
    pub overlapping: usize,
}

/// A study's energy per host and in total.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EnergyByHost {
    /// One entry per host, by name.
    pub hosts: Vec<HostEnergy>,
    /// Sum of every known figure.
    pub joules: f64,
    /// Finished trials whose energy is unknown.
    pub unknown: usize,
}

/// Groups the energy of finished trials by the host that ran them (see [`HostEnergy`]).
pub fn energy_by_host(trials: &[Trial]) -> EnergyByHost {
    let finished: Vec<&Trial> = trials
        .iter()
        .filter(|t| t.state.is_finished() && t.started_at.is_some())
        .collect();
    let mut hosts: Vec<HostEnergy> = Vec::new();
    let host_of = |t: &Trial| t.host().unwrap_or("unknown").to_string();
    let mut names: Vec<String> = finished.iter().map(|t| host_of(t)).collect();
    names.sort();
    names.dedup();
    for name in names {
        let mine: Vec<&&Trial> = finished.iter().filter(|t| host_of(t) == name).collect();
        let process = |t: &Trial| t.process.as_ref().map(|p| (p.pid, p.identity.clone()));
        let mut processes: Vec<_> = mine.iter().map(|t| process(t)).collect();
        processes.sort();
        processes.dedup();
        let span = |t: &Trial| {
            (
                t.started_at.unwrap_or(0.0),
                t.finished_at.unwrap_or(f64::MAX),
            )
        };
        let overlapping = mine
            .iter()
            .filter(|a| {
                let (a0, a1) = span(a);
                mine.iter().any(|b| {
                    let (b0, b1) = span(b);
                    process(a) != process(b) && a0 < b1 && b0 < a1
                })
            })
            .count();
        let known: Vec<f64> = mine.iter().filter_map(|t| trial_joules(t)).collect();
        hosts.push(HostEnergy {
            host: name,
            trials: mine.len(),
            joules: known.iter().sum(),
            unknown: mine.len() - known.len(),
            processes: processes.len(),
            overlapping,
        });
    }
    EnergyByHost {
        joules: hosts.iter().map(|h| h.joules).sum(),
        unknown: hosts.iter().map(|h| h.unknown).sum(),
        hosts,
    }
}

/// What a reader of [`energy_by_host`]'s figures must know: unknown figures are left out (not
/// counted as 0), and worker processes sharing a host each read the whole host.
pub fn energy_by_host_notes(by_host: &EnergyByHost) -> Vec<String> {
    let mut notes = Vec::new();
    if by_host.unknown > 0 {
        notes.push(format!(
            "{} trial(s) have no energy figure (unknown, e.g. lost with their worker); the sums \
             leave them out rather than count them as 0 J.",
            by_host.unknown
        ));
    }
    let shared: Vec<&HostEnergy> = by_host.hosts.iter().filter(|h| h.processes > 1).collect();
    if !shared.is_empty() {
        let overlap: Vec<String> = shared
            .iter()
            .filter(|h| h.overlapping > 0)
            .map(|h| format!("{} ({} trials)", h.host, h.overlapping))
            .collect();
        notes.push(format!(
            "Worker processes sharing one host each see the whole host: a trial's machine figure \
             is everything the machine used while it ran, so machine figures of overlapping \
             trials count the same time more than once; the attributed figures summed here are \
             each trial's own processes' share (their CPU time over the machine's), so they do \
             not. {}Run one worker process per machine, with --workers for its threads, to have \
             trials share the machine's energy instead.",
            if overlap.is_empty() {
                String::new()
            } else {
                format!(
                    "Trials of different processes overlapped on {}: their machine figures count \
                     the overlapping time more than once. ",
                    overlap.join(", ")
                )
            }
        ));
    }
    notes
}

/// Energy spent by the study so far, on the attributed basis: finished trials' figures plus
/// running trials' latest cumulative intermediate energy. Unknown is never counted as zero:
/// trials whose energy is unknown are counted apart, with the first one's reason.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct EnergySpent {
    /// Sum of the known figures, in joules.
    pub known_j: f64,
    /// Trials (finished or running) whose energy is unknown.
    pub unknown_trials: usize,
    /// The first unknown trial's number and why its energy is unknown.
    pub first_unknown: Option<(u64, String)>,
}

impl EnergySpent {
    /// The spent energy when every trial's energy is known.
    pub fn total(&self) -> Option<f64> {
        (self.unknown_trials == 0).then_some(self.known_j)
    }
}

/// Energy spent by the study so far; see [`EnergySpent`].
pub fn energy_spent(trials: &[Trial]) -> EnergySpent {
    let basis = EnergyBasis::Attributed;
    let mut out = EnergySpent::default();
    for t in trials {
        let (figure, why) = match &t.energy {
            Some(e) => (e.figure(basis), e.why_unknown(basis)),
            None if t.state == TrialState::Waiting => continue,
            None => match t.intermediate.last() {
                Some(i) => (
                    i.energy,
                    Some("its last intermediate report has no energy".to_owned()),
                ),
                // Started but not reported yet, or failed before the meter ran: nothing spent
                // that anyone measured; only a finished trial without energy is unknown.
                None if !t.state.is_finished() => continue,
                None if was_interrupted(t) || t.state == TrialState::Failed => continue,
                None => (None, Some("no energy was recorded".to_owned())),
            },
        };
        match figure {
            Some(j) => out.known_j += j.0,
            None => {
                out.unknown_trials += 1;
                if out.first_unknown.is_none() {
                    out.first_unknown =
                        Some((t.number, why.unwrap_or_else(|| "not measured".to_owned())));
                }
            }
        }
    }
    out
}

/// The best complete value of the first objective, if any.
pub fn best_value(trials: &[Trial], direction: Direction) -> Option<f64> {
    trials
        .iter()
        .filter(|t| t.state == TrialState::Complete)
        .filter_map(|t| t.values.as_ref().and_then(|v| v.first().copied()))
        .filter(|v| !v.is_nan())
        .reduce(|a, b| match direction {
            Direction::Maximize => a.max(b),
            Direction::Minimize => a.min(b),
        })
}

fn stop_reason(
    config: &StudyConfig,
    sampler: &dyn Sampler,
    trials: &[Trial],
    elapsed: Duration,
) -> Option<StopReason> {
    let stop = &config.stop;
    // Failed trials count (so that a crashing objective cannot keep a study going forever),
    // interrupted and retried lost ones do not (see `counts_towards_n_trials`). Waiting ones
    // count and are promised to run: the trial and sampler limits end a study only once none
    // is left waiting (the time, energy and target rules end it at once).
    let count = trials.iter().filter(|t| counts_towards_n_trials(t)).count() as u64;
    let waiting = trials.iter().any(|t| t.state == TrialState::Waiting);
    if let Some(n) = stop.n_trials
        && count >= n
        && !waiting
    {
        return Some(StopReason::TrialLimit(n));
    }
    if let Some(max) = sampler.max_trials(&config.search_space())
        && count >= max
        && !waiting
    {
        return Some(StopReason::SamplerExhausted(max));
    }
    if let Some(t) = stop.timeout
        && elapsed >= t
    {
        return Some(StopReason::Timeout(t));
    }
    if let Some(budget) = stop.energy_budget {
        let spent = energy_spent(trials);
        if let Some((trial, why)) = spent.first_unknown {
            // A budget cannot be kept on figures that are not there: stop and say why rather
            // than count the unknown trials as free.
            return Some(StopReason::EnergyUnknown {
                budget: budget.0,
                trial,
                why,
            });
        }
        if spent.known_j >= budget.0 {
            return Some(StopReason::EnergyBudget {
                budget: budget.0,
                spent: spent.known_j,
            });
        }
    }
    if let Some(target) = stop.target {
        let direction = config.objectives[0].direction;
        if let Some(best) = best_value(trials, direction) {
            let reached = match direction {
                Direction::Maximize => best >= target,
                Direction::Minimize => best <= target,
            };
            if reached {
                return Some(StopReason::TargetReached { target, best });
            }
        }
    }
    None
}
