//! The storage contract: where studies and trials live, shared by every worker of a study.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::TuneError;
use crate::space::Params;
use crate::trial::{Trial, TrialOutcome};

/// Storage-wide study identifier.
pub type StudyId = i64;
/// Storage-wide trial identifier.
pub type TrialId = i64;

/// A study as stored: its name and its definition, kept as JSON the storage does not interpret.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StudyRecord {
    /// Identifier.
    pub id: StudyId,
    /// Unique name.
    pub name: String,
    /// The study's definition (space, objectives, sampler, pruner, stopping rules) as JSON.
    pub spec_json: String,
    /// Unix time (seconds) of creation.
    pub created_at: f64,
}

/// Persistent storage of studies and trials, safe to share between threads, processes and
/// machines (as far as the backend reaches).
///
/// Contract:
/// - Trial numbers are dense per study and never reused, whatever the concurrency.
/// - A running trial is held by a lease that its worker renews with [`Storage::heartbeat`];
///   once the lease has expired, [`Storage::reap_expired`] marks it failed (reason "worker
///   lost: lease expired"), so a killed worker loses nothing but its unfinished trial.
/// - [`Storage::finish_trial`] is idempotent: recording the same outcome again succeeds; a
///   different outcome for an already finished trial is a `TrialState` error.
/// - All times are Unix seconds taken from the storage's clock where it has one.
pub trait Storage: Send + Sync {
    /// Creates a study, or returns the existing one if a study of that name exists with the
    /// same `spec_json`; a different definition under the same name is `StudyConflict`.
    fn create_study(&self, name: &str, spec_json: &str) -> Result<StudyRecord, TuneError>;

    /// Every study, by name.
    fn list_studies(&self) -> Result<Vec<StudyRecord>, TuneError>;

    /// Creates a running trial with the next number, leased to `worker` for `lease`.
    fn create_trial(
        &self,
        study: StudyId,
        worker: &str,
        lease: Duration,
    ) -> Result<Trial, TuneError>;

    /// Enqueues a waiting trial with fixed parameters (it gets its number now).
    fn enqueue_trial(&self, study: StudyId, params: &Params) -> Result<Trial, TuneError>;

    /// Atomically claims the oldest waiting trial (making it running, leased to `worker`);
    /// `None` when there is none.
    fn claim_waiting(
        &self,
        study: StudyId,
        worker: &str,
        lease: Duration,
    ) -> Result<Option<Trial>, TuneError>;

    /// Sets a running trial's parameters (once, after the sampler chose them).
    fn set_params(&self, trial: TrialId, params: &Params) -> Result<(), TuneError>;

    /// Renews the lease of a running trial held by `worker`; a trial that is no longer
    /// running, or held by another worker, is a `TrialState` error.
    fn heartbeat(&self, trial: TrialId, worker: &str, lease: Duration) -> Result<(), TuneError>;

    /// Records an intermediate value and the trial's cumulative energy so far in joules
    /// (`None` when it is unknown; stored as SQL `NULL`, never as 0). Step numbers are unique
    /// per trial; rewriting a step with the same value is harmless.
    fn report_intermediate(
        &self,
        trial: TrialId,
        step: u32,
        value: f64,
        energy_j: Option<f64>,
    ) -> Result<(), TuneError>;

    /// Ends a trial (idempotent, see the trait's contract).
    fn finish_trial(&self, trial: TrialId, outcome: &TrialOutcome) -> Result<(), TuneError>;

    /// Every trial of the study, by number.
    fn trials(&self, study: StudyId) -> Result<Vec<Trial>, TuneError>;

    /// Marks running trials whose lease has expired as failed; returns how many.
    fn reap_expired(&self, study: StudyId) -> Result<usize, TuneError>;

    /// The study of that name.
    fn study(&self, name: &str) -> Result<StudyRecord, TuneError> {
        self.list_studies()?
            .into_iter()
            .find(|s| s.name == name)
            .ok_or_else(|| TuneError::UnknownStudy(name.to_string()))
    }

    /// One trial by id.
    fn trial(&self, study: StudyId, trial: TrialId) -> Result<Trial, TuneError> {
        self.trials(study)?
            .into_iter()
            .find(|t| t.id == trial)
            .ok_or(TuneError::UnknownTrial(trial))
    }
}
