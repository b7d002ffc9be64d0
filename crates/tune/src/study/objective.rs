//! The thing being optimised, and what it sees of the study while it runs.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use greenlab_meter::{Joules, Measurement, Seconds, Source};

use crate::pruner::Pruner;
use crate::space::Params;
use crate::storage::{Storage, StudyId};
use crate::trial::{Intermediate, Objective, Trial, TrialEnergy};

/// What an objective returns when it ran to the end (or stopped because it was pruned).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ObjectiveOutput {
    /// Final metrics by name (`accuracy`, `loss`, ...). The study's objective metrics are read
    /// from here, except `energy`, which is the trial's measured energy.
    pub metrics: BTreeMap<String, f64>,
    /// Energy the trial cost, when the objective measured it itself; otherwise the worker
    /// measures the whole run with its tracker (if it has one).
    pub energy: Option<TrialEnergy>,
    /// Training diverged (NaN or infinite loss): recorded as `diverged`, not `complete`.
    pub diverged: bool,
}

/// Why an objective did not produce metrics.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ObjectiveError {
    /// The objective failed; the message says why (recorded as the trial's `error`).
    #[error("{0}")]
    Failed(String),
}

/// The function a study optimises: one evaluation per trial.
///
/// Contract: called by a worker thread with the trial's parameters; may be called from several
/// threads at once (one trial each), hence `Send + Sync`. Reports intermediate values through
/// `ctx` and stops early (returning whatever it has) when [`TrialContext::report`] says
/// `Break`. Errors fail the trial, never the study.
pub trait ObjectiveFunction: Send + Sync {
    /// Evaluates the objective at `params`.
    fn run(
        &self,
        params: &Params,
        ctx: &mut TrialContext<'_>,
    ) -> Result<ObjectiveOutput, ObjectiveError>;
}

impl<F> ObjectiveFunction for F
where
    F: Fn(&Params, &mut TrialContext<'_>) -> Result<ObjectiveOutput, ObjectiveError> + Send + Sync,
{
    fn run(
        &self,
        params: &Params,
        ctx: &mut TrialContext<'_>,
    ) -> Result<ObjectiveOutput, ObjectiveError> {
        self(params, ctx)
    }
}

/// A running trial as its objective sees it: where to report intermediate values, and whether
/// to stop.
pub struct TrialContext<'a> {
    pub(crate) storage: &'a dyn Storage,
    pub(crate) study: StudyId,
    pub(crate) objectives: &'a [Objective],
    pub(crate) pruner: &'a dyn Pruner,
    pub(crate) trial: Trial,
    pub(crate) pruned: bool,
    pub(crate) storage_error: Option<String>,
    pub(crate) lost: &'a AtomicBool,
    pub(crate) cancel: &'a AtomicBool,
    pub(crate) interrupted: bool,
    pub(crate) worker_index: usize,
    /// When the trial must end (`[objective] timeout`), if ever.
    pub(crate) deadline: Option<Instant>,
    /// Set once the deadline was seen to pass.
    pub(crate) timed_out: AtomicBool,
}

impl<'a> TrialContext<'a> {
    /// The trial's number within the study.
    pub fn number(&self) -> u64 {
        self.trial.number
    }

    /// Which of this process's workers runs the trial (0, 1, ... up to `workers - 1`), for
    /// objectives that give each worker its own device.
    pub fn worker_index(&self) -> usize {
        self.worker_index
    }

    /// The trial as known so far (parameters, intermediate values reported).
    pub fn trial(&self) -> &Trial {
        &self.trial
    }

    /// The study's objectives; intermediate values are values of the first one.
    pub fn objectives(&self) -> &[Objective] {
        self.objectives
    }

    /// Records the value of the first objective metric after `step` (an epoch, from 1) and the
    /// trial's cumulative attributed energy so far (`None` when it is not known: never pass 0
    /// for unknown), then asks the pruner. `Break` means stop now: the trial will be recorded
    /// as pruned (its energy so far saved from waste). Storage errors are kept and reported
    /// when the trial ends; they do not stop the objective.
    pub fn report(&mut self, step: u32, value: f64, energy: Option<Joules>) -> ControlFlow<()> {
        if let Err(e) =
            self.storage
                .report_intermediate(self.trial.id, step, value, energy.map(|e| e.0))
        {
            self.storage_error = Some(e.to_string());
        }
        let entry = Intermediate {
            step,
            value,
            energy,
        };
        let list = &mut self.trial.intermediate;
        match list.binary_search_by_key(&step, |i| i.step) {
            Ok(i) => list[i] = entry,
            Err(i) => list.insert(i, entry),
        }
        if self.is_cancelled() {
            self.interrupted = true;
            return ControlFlow::Break(());
        }
        if self.is_timed_out() || self.should_stop() {
            return ControlFlow::Break(());
        }
        let history = match self.storage.trials(self.study) {
            Ok(h) => h,
            Err(e) => {
                self.storage_error = Some(e.to_string());
                return ControlFlow::Continue(());
            }
        };
        if self
            .pruner
            .should_prune(self.objectives, &self.trial, &history)
        {
            self.pruned = true;
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }

    /// Whether the objective should stop: pruned, the worker lost its lease on the trial, the
    /// run was cancelled, or the trial's time limit passed.
    pub fn should_stop(&self) -> bool {
        self.pruned
            || self.lost.load(Ordering::Relaxed)
            || self.is_cancelled()
            || self.is_timed_out()
    }

    /// When the trial must end (`[objective] timeout`), if it has a limit.
    pub fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    /// Whether the trial's time limit has passed; the trial is then recorded as failed
    /// ("timed out") with the energy it spent, whatever the objective returns.
    pub fn is_timed_out(&self) -> bool {
        if self.timed_out.load(Ordering::Relaxed) {
            return true;
        }
        let passed = self.deadline.is_some_and(|d| Instant::now() >= d);
        if passed {
            self.timed_out.store(true, Ordering::Relaxed);
        }
        passed
    }

    /// Records that the objective stopped because the time limit passed (for objectives that
    /// watch [`TrialContext::deadline`] themselves).
    pub fn mark_timed_out(&self) {
        self.timed_out.store(true, Ordering::Relaxed);
    }

    /// The flags a watcher thread polls while the objective runs elsewhere: cancelled, lease
    /// lost.
    pub(crate) fn stop_flags(&self) -> (&'a AtomicBool, &'a AtomicBool) {
        (self.cancel, self.lost)
    }

    /// Whether the run was cancelled (e.g. Ctrl-C): the objective should stop as soon as it
    /// can; the trial is then recorded as failed ("interrupted") with the energy it spent.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Relaxed)
    }

    /// The cancellation flag itself, for loops that poll it while `self` is borrowed.
    pub fn cancel_flag(&self) -> &'a AtomicBool {
        self.cancel
    }

    /// Whether the pruner stopped this trial.
    pub fn was_pruned(&self) -> bool {
        self.pruned
    }
}

/// Converts a meter measurement to a trial's energy record: both figures, every domain, and
/// the meter's warnings (a frozen counter, an estimate standing in, energy shared with
/// concurrent trials).
pub fn trial_energy(m: &Measurement) -> TrialEnergy {
    trial_energy_of(std::slice::from_ref(m))
}

/// The energy record of a trial whose energy could not be measured at all (the meter failed).
pub fn unmeasured(why: String, duration: std::time::Duration) -> TrialEnergy {
    TrialEnergy {
        total: None,
        attributed: None,
        source: Source::Estimated,
        duration: Seconds::from(duration),
        domains: Vec::new(),
        unknown: Some(why),
        warnings: Vec::new(),
    }
}

/// One energy record for several consecutive windows of the same trial (the segments between
/// a command's reports): sums per domain, unknown if any part is unknown (never a partial sum
/// passed off as the whole), the weakest source, every warning once.
pub fn trial_energy_of(parts: &[Measurement]) -> TrialEnergy {
    let mut domains: Vec<(String, Option<Joules>, Source)> = Vec::new();
    let mut warnings: Vec<String> = Vec::new();
    for m in parts {
        for d in &m.domains {
            match domains.iter_mut().find(|(n, _, _)| *n == d.domain) {
                Some(entry) => {
                    entry.1 = entry.1.zip(d.energy).map(|(a, b)| a + b);
                    entry.2 = entry.2.min(d.source);
                }
                None => domains.push((d.domain.clone(), d.energy, d.source)),
            }
        }
        for w in &m.warnings {
            if !warnings.contains(w) {
                warnings.push(w.clone());
            }
        }
    }
    let sum = |f: &dyn Fn(&Measurement) -> Option<Joules>| -> Option<Joules> {
        if parts.is_empty() {
            return None;
        }
        parts.iter().map(f).sum()
    };
    let total = sum(&|m| m.total);
    let attributed = sum(&|m| m.attributed);
    let unknown = parts
        .iter()
        .find_map(|m| m.unknown.clone())
        .or_else(|| {
            parts
                .is_empty()
                .then(|| "no energy window was measured".to_owned())
        })
        .or_else(|| {
            attributed
                .is_none()
                .then(|| "the meter could not attribute energy to the trial's processes".to_owned())
        });
    TrialEnergy {
        total,
        attributed,
        source: parts
            .iter()
            .map(Measurement::source)
            .min()
            .unwrap_or(Source::Estimated),
        duration: Seconds(parts.iter().map(|m| m.duration.0).sum()),
        domains,
        unknown: if total.is_some() && attributed.is_some() {
            None
        } else {
            unknown
        },
        warnings,
    }
}
