//! The worker loop.
//!
//! Each worker thread repeats, until a stopping rule holds:
//! 1. reap trials whose workers died — their lease expired, or (on this machine) their process
//!    is gone — so they are recorded as failed and their parameters enqueued again (up to
//!    `[stop] max_retries` times);
//! 2. check the stopping rules against the storage (trial count, wall time, energy budget,
//!    target value, an exhausted grid);
//! 3. claim a waiting (enqueued) trial, or create one and ask the sampler for its parameters;
//! 4. run the objective while a heartbeat thread renews the lease, passing intermediate values
//!    to the pruner;
//! 5. record the outcome — complete, pruned, failed (with the reason) or diverged — with the
//!    trial's energy, idempotently.
//!
//! An objective error or panic fails its trial and never the study. Within one process, trial
//! creation is serialised so that `n_trials` is exact; workers in several processes check the
//! rules between trials and may overshoot `n_trials` by at most one trial per process.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use greenlab_meter::{EnergyBasis, Tracker};

use super::Study;
use super::objective::{
    ObjectiveFunction, ObjectiveOutput, TrialContext, trial_energy, unmeasured,
};
use crate::TuneError;
use crate::process::{Liveness, ProcessTable, WorkerProcess};
use crate::sampler::SampleContext;
use crate::storage::{Gone, Reaped, Worker, process_gone_reason};
use crate::trial::{Trial, TrialEnergy, TrialOutcome, TrialState};

/// Told about every trial a worker of this process finishes (for progress display).
pub trait Observer: Send + Sync {
    /// `trial` ended with `outcome` (already recorded).
    fn trial_finished(&self, trial: &Trial, outcome: &TrialOutcome);

    /// A worker of this process found these trials' workers lost and reaped them.
    fn trials_lost(&self, _reaped: &[Reaped]) {}
}

/// How a run of workers behaves.
#[derive(Clone)]
pub struct RunOptions {
    /// Worker threads in this process (at least 1).
    pub workers: usize,
    /// Lease on a running trial; a worker silent for this long is presumed dead.
    pub lease: Duration,
    /// How often the lease is renewed (default: a third of the lease).
    pub heartbeat: Option<Duration>,
    /// Prefix of worker names (`<prefix>-<thread>`); make it unique per machine and process.
    pub worker_prefix: String,
    /// This process, recorded on every trial it takes (so that a worker on the same machine
    /// can tell when it is gone, and energy can be grouped by host).
    pub process: Option<WorkerProcess>,
    /// This machine's process table, to reap at once the trials of local workers whose process
    /// is gone (without it, only expired leases are reaped).
    pub process_table: Option<ProcessTable>,
    /// Measures each trial's energy when the objective does not report its own.
    pub tracker: Option<Arc<Tracker>>,
    /// Told about each finished trial.
    pub observer: Option<Arc<dyn Observer>>,
    /// Set to stop the run after the trials in progress (e.g. on Ctrl-C).
    pub cancel: Arc<AtomicBool>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            workers: 1,
            lease: Duration::from_secs(60),
            heartbeat: None,
            worker_prefix: format!("pid{}", std::process::id()),
            process: None,
            process_table: None,
            tracker: None,
            observer: None,
            cancel: Arc::new(AtomicBool::new(false)),
        }
    }
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("workers", &self.workers)
            .field("lease", &self.lease)
            .field("worker_prefix", &self.worker_prefix)
            .finish_non_exhaustive()
    }
}

/// Why a run ended.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum StopReason {
    /// The study has this many trials.
    TrialLimit(u64),
    /// The sampler has nothing new to suggest (a finished grid of this size).
    SamplerExhausted(u64),
    /// The run's wall-time limit passed.
    Timeout(Duration),
    /// The study's trials together spent at least the budget (joules).
    EnergyBudget {
        /// Budget in joules.
        budget: f64,
        /// Spent in joules.
        spent: f64,
    },
    /// The study has an energy budget but a trial's energy is unknown, so the budget cannot be
    /// kept (unknown energy is never counted as zero).
    EnergyUnknown {
        /// Budget in joules.
        budget: f64,
        /// The first trial whose energy is unknown.
        trial: u64,
        /// Why it is unknown.
        why: String,
    },
    /// A complete trial reached the target value.
    TargetReached {
        /// The target.
        target: f64,
        /// The best value reached.
        best: f64,
    },
    /// The run was cancelled.
    Cancelled,
}

impl std::fmt::Display for StopReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StopReason::TrialLimit(n) => write!(f, "the study has {n} trials"),
            StopReason::SamplerExhausted(n) => write!(f, "all {n} grid points were tried"),
            StopReason::Timeout(t) => {
                write!(f, "the time limit of {:.0} s passed", t.as_secs_f64())
            }
            StopReason::EnergyBudget { budget, spent } => {
                write!(f, "energy budget spent: {spent:.1} J of {budget:.1} J")
            }
            StopReason::EnergyUnknown { budget, trial, why } => write!(
                f,
                "the energy budget of {budget:.1} J cannot be kept: trial {trial} has no energy \
                 measured ({why}); fix the energy source (see `greenlab meters`) or drop the \
                 budget"
            ),
            StopReason::TargetReached { target, best } => {
                write!(f, "target {target} reached (best {best})")
            }
            StopReason::Cancelled => f.write_str("cancelled"),
        }
    }
}

/// What a run did.
#[derive(Clone, Debug, PartialEq)]
pub struct RunSummary {
    /// Trials run by this process's workers.
    pub trials_run: u64,
    /// Why the run ended (the first worker's reason).
    pub stop: StopReason,
    /// Wall time of the run.
    pub elapsed: Duration,
}

struct Shared<'a> {
    study: &'a Study,
    objective: &'a dyn ObjectiveFunction,
    options: &'a RunOptions,
    started: Instant,
    admission: Mutex<()>,
}

pub(super) fn run(
    study: &Study,
    objective: Arc<dyn ObjectiveFunction>,
    options: &RunOptions,
) -> Result<RunSummary, TuneError> {
    requeue_interrupted(study)?;
    let shared = Shared {
        study,
        objective: objective.as_ref(),
        options,
        started: Instant::now(),
        admission: Mutex::new(()),
    };
    let results: Vec<Result<(u64, StopReason), TuneError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..options.workers.max(1))
            .map(|i| {
                let shared = &shared;
                let worker = Worker {
                    name: format!("{}-{i}", options.worker_prefix),
                    process: options.process.clone(),
                };
                scope.spawn(move || work(shared, &worker, i))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(TuneError::Storage("a worker thread panicked".into())))
            })
            .collect()
    });
    let mut trials_run = 0;
    let mut stop = None;
    for r in results {
        let (n, reason) = r?;
        trials_run += n;
        stop.get_or_insert(reason);
    }
    Ok(RunSummary {
        trials_run,
        stop: stop.unwrap_or(StopReason::Cancelled),
        elapsed: shared.started.elapsed(),
    })
}

/// Enqueues again the parameters of trials an earlier run was interrupted in, unless a trial
/// with the same parameters is already waiting, running or finished.
fn requeue_interrupted(study: &Study) -> Result<(), TuneError> {
    let storage = study.storage.as_ref();
    let trials = storage.trials(study.record.id)?;
    let mut queued: Vec<&crate::space::Params> = trials
        .iter()
        .filter(|t| !super::was_interrupted(t) && t.state != TrialState::Failed)
        .map(|t| &t.params)
        .collect();
    for t in trials.iter().filter(|t| super::was_interrupted(t)) {
        if t.params.is_empty() || queued.contains(&&t.params) {
            continue;
        }
        storage.enqueue_trial(study.record.id, &t.params)?;
        queued.push(&t.params);
    }
    Ok(())
}

/// The running trials of `history` whose worker process this machine knows to be gone.
fn gone_workers(history: &[Trial], table: Option<&ProcessTable>) -> Vec<Gone> {
    let Some(table) = table else {
        return Vec::new();
    };
    history
        .iter()
        .filter(|t| t.state == TrialState::Running)
        .filter_map(|t| {
            let process = t.process.as_ref()?;
            (table.liveness(process) == Liveness::Gone).then(|| Gone {
                trial: t.id,
                worker: t.worker.clone().unwrap_or_default(),
                reason: process_gone_reason(Some(process)),
            })
        })
        .collect()
}

fn work(
    shared: &Shared<'_>,
    worker: &Worker,
    index: usize,
) -> Result<(u64, StopReason), TuneError> {
    let study = shared.study;
    let storage = study.storage.as_ref();
    let id = study.record.id;
    let options = shared.options;
    // Workers of one process share the machine's counters: as lanes, concurrent trials split
    // the energy instead of each claiming all of it.
    let _lane = options.tracker.as_ref().map(|t| t.lane());
    let mut run = 0u64;
    loop {
        if options.cancel.load(Ordering::Relaxed) {
            return Ok((run, StopReason::Cancelled));
        }
        // One read of the history per trial, under the admission lock so that the stopping
        // rules, the trial count and the sampler's view of running trials agree among this
        // process's workers. Lost trials are reaped first (and their retries enqueued); then
        // waiting trials (enqueued, retries, interrupted ones to run again) go first, otherwise
        // a new trial is created and the sampler fills it in.
        let (mut trial, history) = {
            // Poisoning only means another worker panicked while admitting a trial; the
            // guarded section holds no data of its own.
            let _guard = shared.admission.lock().unwrap_or_else(|p| p.into_inner());
            let mut history = storage.trials(id)?;
            let gone = gone_workers(&history, options.process_table.as_ref());
            let reaped = storage.reap_lost(id, &gone, study.config.stop.max_retries())?;
            if !reaped.is_empty() {
                if let Some(observer) = &options.observer {
                    observer.trials_lost(&reaped);
                }
                history = storage.trials(id)?;
            }
            if let Some(reason) = study.stop_reason(&history, shared.started) {
                return Ok((run, reason));
            }
            match storage.claim_waiting_for(id, worker, options.lease)? {
                Some(t) => (t, None),
                None => (
                    storage.create_trial_for(id, worker, options.lease)?,
                    Some(history),
                ),
            }
        };
        if let Some(history) = history {
            let space = study.config.search_space();
            let ctx = SampleContext {
                space: &space,
                objectives: &study.config.objectives,
                history: &history,
                number: trial.number,
            };
            match study.sampler.suggest(&ctx) {
                Ok(params) => {
                    storage.set_params(trial.id, &params)?;
                    trial.params = params;
                }
                Err(e) => {
                    // A sampler that cannot suggest is a configuration problem: record the
                    // trial as failed and stop this worker with the error.
                    let outcome = failed(format!("sampler: {e}"));
                    storage.finish_trial(trial.id, &outcome)?;
                    return Err(e);
                }
            }
        }
        run_trial(shared, &worker.name, index, trial)?;
        run += 1;
    }
}

fn failed(reason: String) -> TrialOutcome {
    let mut attrs = BTreeMap::new();
    attrs.insert("error".to_string(), serde_json::json!(reason));
    TrialOutcome {
        state: TrialState::Failed,
        values: None,
        energy: None,
        attrs,
    }
}

fn run_trial(
    shared: &Shared<'_>,
    worker: &str,
    index: usize,
    trial: Trial,
) -> Result<(), TuneError> {
    let study = shared.study;
    let storage = study.storage.as_ref();
    let options = shared.options;
    let lost = AtomicBool::new(false);
    let beat = options
        .heartbeat
        .unwrap_or(options.lease / 3)
        .max(Duration::from_millis(10));
    let trial_id = trial.id;
    let params = trial.params.clone();
    let started = Instant::now();

    let (result, ctx_trial, pruned, storage_error, measured, interrupted) =
        std::thread::scope(|scope| {
            let (stop_tx, stop_rx) = mpsc::channel::<()>();
            let lost_ref = &lost;
            scope.spawn(move || {
                loop {
                    match stop_rx.recv_timeout(beat) {
                        Err(RecvTimeoutError::Timeout) => {
                            // Transient storage trouble is retried at the next beat; a trial
                            // that is no longer ours (reaped, finished) stops the heartbeat.
                            if let Err(TuneError::TrialState { .. } | TuneError::UnknownTrial(_)) =
                                storage.heartbeat(trial_id, worker, options.lease)
                            {
                                lost_ref.store(true, Ordering::Relaxed);
                                return;
                            }
                        }
                        _ => return,
                    }
                }
            });
            let window = options
                .tracker
                .as_ref()
                .map(|t| t.begin(&format!("trial {}", trial.number)));
            let mut ctx = TrialContext {
                storage,
                study: study.record.id,
                objectives: &study.config.objectives,
                pruner: study.pruner.as_ref(),
                trial,
                pruned: false,
                storage_error: None,
                lost: &lost,
                cancel: &options.cancel,
                interrupted: false,
                worker_index: index,
                deadline: study.config.objective.timeout.map(|t| started + t),
                timed_out: AtomicBool::new(false),
            };
            let result = catch_unwind(AssertUnwindSafe(|| shared.objective.run(&params, &mut ctx)))
                .unwrap_or_else(|panic| {
                    let message = panic
                        .downcast_ref::<&str>()
                        .map(|s| s.to_string())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "unknown panic".into());
                    Err(super::ObjectiveError::Failed(format!(
                        "objective panicked: {message}"
                    )))
                });
            // A meter failure is recorded as unknown energy with its reason, never dropped.
            let measured = match (window, options.tracker.as_ref()) {
                (Some(Ok(w)), Some(t)) => Some(match t.end(w) {
                    Ok(m) => (trial_energy(&m), m.concurrency),
                    Err(e) => (
                        unmeasured(
                            format!("the energy meter failed at the end of the trial: {e}"),
                            started.elapsed(),
                        ),
                        1,
                    ),
                }),
                (Some(Err(e)), _) => Some((
                    unmeasured(
                        format!("the energy meter could not open the trial's window: {e}"),
                        started.elapsed(),
                    ),
                    1,
                )),
                _ => None,
            };
            drop(stop_tx);
            // Cancelled while it ran: whatever the objective returned, the trial did not finish.
            let interrupted = ctx.interrupted || (result.is_err() && ctx.is_cancelled());
            // Stopped by the time limit (a failure, unlike an interrupt): the objective saw the
            // deadline, or failed after it passed (its process was killed).
            let timed_out = !interrupted
                && (ctx.timed_out.load(Ordering::Relaxed)
                    || (result.is_err() && ctx.is_timed_out()));
            (
                result,
                ctx.trial,
                ctx.pruned && !timed_out,
                ctx.storage_error,
                measured,
                (interrupted, timed_out),
            )
        });
    let (interrupted, timed_out) = interrupted;

    let mut outcome = if interrupted {
        let mut outcome = failed(match &result {
            Err(e) => format!("interrupted before it finished ({e})"),
            Ok(_) => "interrupted before it finished".to_string(),
        });
        outcome
            .attrs
            .insert("interrupted".into(), serde_json::json!(true));
        outcome.energy = (result.as_ref().ok())
            .and_then(|o| o.energy.clone())
            .or_else(|| measured.as_ref().map(|(e, _)| e.clone()));
        outcome
    } else if let (true, Some(limit)) = (timed_out, study.config.objective.timeout) {
        let mut outcome = failed(format!(
            "timed out: the trial ran longer than its limit of {:.0} s ([objective] timeout)",
            limit.as_secs_f64()
        ));
        outcome
            .attrs
            .insert("timed_out".into(), serde_json::json!(true));
        outcome.energy = (result.as_ref().ok())
            .and_then(|o| o.energy.clone())
            .or_else(|| measured.as_ref().map(|(e, _)| e.clone()));
        outcome
    } else {
        outcome_for(
            study,
            result,
            &ctx_trial,
            pruned,
            measured.as_ref().map(|(e, _)| e),
        )
    };
    if let Some((_, concurrency)) = measured.as_ref().filter(|(_, c)| *c > 1) {
        outcome.attrs.insert(
            "energy_attribution".into(),
            serde_json::json!(format!(
                "shared equally with the trials running at the same time (up to {concurrency} at \
                 once): machine-wide counters cannot tell them apart"
            )),
        );
    }
    outcome.attrs.insert(
        "duration_s".into(),
        serde_json::json!(started.elapsed().as_secs_f64()),
    );
    if let Some(e) = storage_error {
        outcome
            .attrs
            .insert("storage_warning".into(), serde_json::json!(e));
    }
    match storage.finish_trial(trial_id, &outcome) {
        Ok(()) => {}
        // The lease expired and the trial was reaped meanwhile: it is already recorded as
        // failed; the study goes on.
        Err(TuneError::TrialState { .. }) => return Ok(()),
        Err(e) => return Err(e),
    }
    if let Some(observer) = &options.observer {
        let mut finished = ctx_trial;
        finished.state = outcome.state;
        finished.values = outcome.values.clone();
        finished.energy = outcome.energy.clone();
        observer.trial_finished(&finished, &outcome);
    }
    Ok(())
}

fn outcome_for(
    study: &Study,
    result: Result<ObjectiveOutput, super::ObjectiveError>,
    trial: &Trial,
    pruned: bool,
    measured: Option<&TrialEnergy>,
) -> TrialOutcome {
    let objectives = &study.config.objectives;
    let last_step = trial.intermediate.last();
    let (output, error) = match result {
        Ok(o) => (o, None),
        Err(e) => (ObjectiveOutput::default(), Some(e.to_string())),
    };
    let energy = output.energy.clone().or_else(|| measured.cloned());
    let mut attrs = BTreeMap::new();
    if !output.metrics.is_empty() {
        attrs.insert("metrics".to_string(), serde_json::json!(output.metrics));
    }
    // Values per objective: `energy` from the measurement, others from the metrics; a pruned
    // trial falls back on its last intermediate value for the first objective.
    let value_of = |i: usize, metric: &str| -> Option<f64> {
        if metric == "energy" {
            energy
                .as_ref()
                .and_then(|e| e.figure(EnergyBasis::Attributed))
                .map(|j| j.0)
        } else {
            output.metrics.get(metric).copied().or_else(|| {
                if i == 0 && pruned {
                    last_step.map(|s| s.value)
                } else {
                    None
                }
            })
        }
    };
    let values: Option<Vec<f64>> = objectives
        .iter()
        .enumerate()
        .map(|(i, o)| value_of(i, &o.metric))
        .collect();

    if pruned {
        if let Some(step) = last_step {
            attrs.insert("pruned_at_step".into(), serde_json::json!(step.step));
        }
        if let Some(e) = error {
            attrs.insert("error".into(), serde_json::json!(e));
        }
        return TrialOutcome {
            state: TrialState::Pruned,
            values,
            energy,
            attrs,
        };
    }
    if let Some(e) = error {
        attrs.insert("error".into(), serde_json::json!(e));
        return TrialOutcome {
            state: TrialState::Failed,
            values: None,
            energy,
            attrs,
        };
    }
    let diverged = output.diverged
        || values
            .as_ref()
            .is_some_and(|v| v.iter().any(|x| !x.is_finite()));
    if diverged {
        attrs.insert("error".into(), serde_json::json!("training diverged"));
        return TrialOutcome {
            state: TrialState::Diverged,
            values: None,
            energy,
            attrs,
        };
    }
    match values {
        Some(values) => TrialOutcome {
            state: TrialState::Complete,
            values: Some(values),
            energy,
            attrs,
        },
        None => {
            let missing: Vec<&str> = objectives
                .iter()
                .enumerate()
                .filter(|(i, o)| value_of(*i, &o.metric).is_none())
                .map(|(_, o)| o.metric.as_str())
                .collect();
            let got: Vec<&str> = output.metrics.keys().map(String::as_str).collect();
            let reason = if missing == ["energy"] {
                format!(
                    "objective \"energy\" has no value: {}; see `greenlab meters`",
                    energy
                        .as_ref()
                        .and_then(|e| e.why_unknown(EnergyBasis::Attributed))
                        .unwrap_or_else(|| "no energy was measured".to_owned())
                )
            } else {
                format!(
                    "objective returned no metric {} (it returned: {})",
                    missing.join(", "),
                    if got.is_empty() {
                        "nothing".to_string()
                    } else {
                        got.join(", ")
                    }
                )
            };
            attrs.insert("error".into(), serde_json::json!(reason));
            TrialOutcome {
                state: TrialState::Failed,
                values: None,
                energy,
                attrs,
            }
        }
    }
}
