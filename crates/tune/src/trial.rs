//! Trials: one evaluation of the objective at one point of the search space, with its energy.

use std::collections::BTreeMap;

use greenlab_meter::{EnergyBasis, Joules, Provenance, Seconds, Source};
use serde::{Deserialize, Serialize};

use crate::process::WorkerProcess;
use crate::space::Params;
use crate::storage::TrialId;

/// Whether an objective is to be maximised or minimised.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Larger is better (accuracy).
    Maximize,
    /// Smaller is better (energy, loss).
    Minimize,
}

/// One objective of a study: a metric name and its direction. The metric `energy` is the
/// trial's attributed energy in joules (a trial whose energy is unknown has no value for it);
/// any other name is read from the objective's metrics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Objective {
    /// Metric name, e.g. `accuracy` or `energy`.
    pub metric: String,
    /// Direction of improvement.
    pub direction: Direction,
}

/// Lifecycle state of a trial.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrialState {
    /// Enqueued with fixed parameters, not yet claimed by a worker.
    Waiting,
    /// Claimed by a worker that holds a lease on it.
    Running,
    /// Finished with values.
    Complete,
    /// Stopped early by a pruner (its last intermediate value stands).
    Pruned,
    /// The objective failed, or its worker died (see [`Trial::was_lost`]).
    Failed,
    /// Training diverged (NaN or infinite loss).
    Diverged,
}

impl TrialState {
    /// Whether the trial has ended (no worker will touch it again).
    pub fn is_finished(self) -> bool {
        !matches!(self, TrialState::Waiting | TrialState::Running)
    }

    /// Stable lowercase name, as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            TrialState::Waiting => "waiting",
            TrialState::Running => "running",
            TrialState::Complete => "complete",
            TrialState::Pruned => "pruned",
            TrialState::Failed => "failed",
            TrialState::Diverged => "diverged",
        }
    }

    /// Parses [`TrialState::as_str`]'s output.
    pub fn parse(s: &str) -> Option<TrialState> {
        Some(match s {
            "waiting" => TrialState::Waiting,
            "running" => TrialState::Running,
            "complete" => TrialState::Complete,
            "pruned" => TrialState::Pruned,
            "failed" => TrialState::Failed,
            "diverged" => TrialState::Diverged,
            _ => return None,
        })
    }
}

/// Energy and time a trial cost, with where the figure came from.
///
/// Two figures, as the meter gives them: `total` is the machine's (what the counters or the
/// machine-wide estimate say for the trial's window), `attributed` the trial's own share
/// (its process tree's; see `greenlab_meter::process`). Either may be unknown (`None`), and
/// unknown is never read as zero: see [`TrialEnergy::figure`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrialEnergy {
    /// Total energy over all measured domains (the machine figure); `None`: not measured.
    pub total: Option<Joules>,
    /// The trial's attributed share of `total`; `None`: unknown.
    #[serde(default)]
    pub attributed: Option<Joules>,
    /// The weakest source among the domains whose energy is known (an estimate anywhere makes
    /// the total estimated).
    pub source: Source,
    /// Wall-clock duration of the trial.
    pub duration: Seconds,
    /// Energy per domain (`cpu-package-0`, `gpu-0`, ...) with each domain's source; `None`
    /// where that domain was not measured.
    #[serde(default)]
    pub domains: Vec<(String, Option<Joules>, Source)>,
    /// Why the energy is unknown, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unknown: Option<String>,
    /// The meter's warnings for this trial (frozen or reset counters, estimates standing in,
    /// energy shared with concurrent trials, short windows).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

impl TrialEnergy {
    /// The figure an analysis on `basis` uses; `None` when it is unknown.
    pub fn figure(&self, basis: EnergyBasis) -> Option<Joules> {
        match basis {
            EnergyBasis::Attributed => self.attributed,
            EnergyBasis::Machine => self.total,
        }
        .filter(|j| j.0.is_finite())
    }

    /// What the machine figure is: counter, integrated power, estimated, mixed or not measured.
    pub fn provenance(&self) -> Provenance {
        if self.total.is_none() {
            return Provenance::NotMeasured;
        }
        if self.domains.is_empty() {
            return Provenance::of([Some(self.source)]);
        }
        Provenance::of(self.domains.iter().map(|(_, e, s)| e.map(|_| *s)))
    }

    /// Why `basis`'s figure is unknown, in one clause (`None` when it is known).
    pub fn why_unknown(&self, basis: EnergyBasis) -> Option<String> {
        if self.figure(basis).is_some() {
            return None;
        }
        Some(match (&self.unknown, basis) {
            (Some(why), _) => why.clone(),
            (None, EnergyBasis::Attributed) => {
                "energy could not be attributed to the trial's processes".to_owned()
            }
            (None, EnergyBasis::Machine) => "no energy was measured".to_owned(),
        })
    }
}

/// A value reported while a trial runs (for instance test accuracy after each epoch).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Intermediate {
    /// Step (epoch) number, from 1.
    pub step: u32,
    /// The value of the study's first objective metric at that step.
    pub value: f64,
    /// Cumulative attributed energy of the trial up to that step; `None` when unknown.
    pub energy: Option<Joules>,
}

/// One trial, as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Trial {
    /// Storage-wide identifier.
    pub id: TrialId,
    /// Number within the study, from 0, dense and unique.
    pub number: u64,
    /// Lifecycle state.
    pub state: TrialState,
    /// Parameters (empty until the sampler has chosen them).
    pub params: Params,
    /// Final values, one per objective, when complete (pruned trials may carry their last value).
    pub values: Option<Vec<f64>>,
    /// Intermediate values, by step.
    pub intermediate: Vec<Intermediate>,
    /// Energy of the trial, once measured.
    pub energy: Option<TrialEnergy>,
    /// Free-form metrics and attributes (duration, per-epoch metrics, failure reason, ...).
    pub attrs: BTreeMap<String, serde_json::Value>,
    /// Worker that ran (or runs) the trial.
    pub worker: Option<String>,
    /// The worker's process and host, when the worker said (see [`crate::process`]).
    #[serde(default)]
    pub process: Option<WorkerProcess>,
    /// For a retry of a trial whose worker was lost: the number of the first trial with these
    /// parameters (every retry of it names that same trial).
    #[serde(default)]
    pub retry_of: Option<u64>,
    /// Unix time (seconds) the trial started, if it did.
    pub started_at: Option<f64>,
    /// Unix time (seconds) the trial ended, if it did.
    pub finished_at: Option<f64>,
}

impl Trial {
    /// The host that ran (or runs) the trial, when known.
    pub fn host(&self) -> Option<&str> {
        self.process.as_ref().map(|p| p.host.as_str())
    }

    /// Whether the trial failed because its worker was lost (killed, lease expired) rather
    /// than because its objective failed. See [`crate::storage::LOST`].
    pub fn was_lost(&self) -> bool {
        self.state == TrialState::Failed
            && self.attrs.get(crate::storage::LOST) == Some(&serde_json::Value::Bool(true))
    }

    /// The number of the retry that runs this lost trial's parameters again, if one was
    /// enqueued.
    pub fn retried_as(&self) -> Option<u64> {
        self.attrs
            .get(crate::storage::RETRIED_AS)
            .and_then(serde_json::Value::as_u64)
    }
}

/// What a worker records when a trial ends. Recording the same outcome twice is harmless.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrialOutcome {
    /// Final state: complete, pruned, failed or diverged.
    pub state: TrialState,
    /// Values per objective (complete trials must have them).
    pub values: Option<Vec<f64>>,
    /// Measured energy.
    pub energy: Option<TrialEnergy>,
    /// Attributes to merge into the trial's (metrics, failure reason under `"error"`).
    pub attrs: BTreeMap<String, serde_json::Value>,
}
