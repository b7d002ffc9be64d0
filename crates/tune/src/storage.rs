//! The storage contract: where studies and trials live, shared by every worker of a study.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::TuneError;
use crate::process::WorkerProcess;
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

/// Reason recorded under `attrs["error"]` on a trial whose worker stopped renewing its lease.
pub const LEASE_EXPIRED: &str = "worker lost: lease expired";

/// Attribute set to `true` on a trial that failed because its worker was lost.
pub const LOST: &str = "lost";

/// Attribute holding, on a lost trial, the number of the retry enqueued for it.
pub const RETRIED_AS: &str = "retried_as";

/// The reason recorded on a trial whose worker process is known to be gone.
pub fn process_gone_reason(process: Option<&WorkerProcess>) -> String {
    match process {
        Some(p) => format!("worker lost: its process {} on {} is gone", p.pid, p.host),
        None => "worker lost: its process is gone".to_string(),
    }
}

/// A worker as it takes a trial: its name (unique per thread) and, when known, its process.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Worker {
    /// Name, unique among live workers (heartbeats and finishing check it).
    pub name: String,
    /// Host, process id and identity, so that a worker on the same machine can tell when this
    /// one is gone.
    pub process: Option<WorkerProcess>,
}

impl Worker {
    /// A worker known only by name (its trials wait for their lease to expire if it dies).
    pub fn named(name: &str) -> Worker {
        Worker {
            name: name.to_string(),
            process: None,
        }
    }
}

/// A running trial whose worker process a worker on the same machine found gone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gone {
    /// The trial.
    pub trial: TrialId,
    /// The worker that held it (the trial is reaped only if it still does).
    pub worker: String,
    /// Why, for the trial's `error` attribute.
    pub reason: String,
}

/// A trial [`Storage::reap_lost`] ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reaped {
    /// Its number.
    pub number: u64,
    /// The number of the waiting trial that runs its parameters again, if one was enqueued.
    pub retried_as: Option<u64>,
    /// Why it was lost.
    pub reason: String,
}

/// Persistent storage of studies and trials, safe to share between threads, processes and
/// machines (as far as the backend reaches).
///
/// Contract:
/// - Trial numbers are dense per study and never reused, whatever the concurrency.
/// - A running trial is held by a lease that its worker renews with [`Storage::heartbeat`];
///   once the lease has expired, or a worker on the same machine finds the holder's process
///   gone, [`Storage::reap_lost`] marks it failed ([`LOST`], reason under `error`) and enqueues
///   its parameters again (`retry_of`, up to a retry limit), so a killed worker loses nothing
///   but the time its unfinished trial had run.
/// - [`Storage::finish_trial`] is idempotent: recording the same outcome again succeeds; a
///   different outcome for an already finished trial is a `TrialState` error.
/// - All times are Unix seconds taken from the storage's clock where it has one.
pub trait Storage: Send + Sync {
    /// Creates a study, or returns the existing one if a study of that name exists with the
    /// same `spec_json`; a different definition under the same name is `StudyConflict`.
    fn create_study(&self, name: &str, spec_json: &str) -> Result<StudyRecord, TuneError>;

    /// Every study, by name.
    fn list_studies(&self) -> Result<Vec<StudyRecord>, TuneError>;

    /// Creates a running trial with the next number, leased to `worker` for `lease`; the
    /// trial records the worker's name and process.
    fn create_trial_for(
        &self,
        study: StudyId,
        worker: &Worker,
        lease: Duration,
    ) -> Result<Trial, TuneError>;

    /// Enqueues a waiting trial with fixed parameters (it gets its number now).
    fn enqueue_trial(&self, study: StudyId, params: &Params) -> Result<Trial, TuneError>;

    /// Atomically claims the oldest waiting trial (making it running, leased to `worker`,
    /// recording the worker's name and process); `None` when there is none.
    fn claim_waiting_for(
        &self,
        study: StudyId,
        worker: &Worker,
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

    /// Ends, in one transaction, every running trial of `study` whose worker is lost: its
    /// lease has expired (reason [`LEASE_EXPIRED`]), or it is listed in `gone` and still held
    /// by that worker. Each is marked failed with `error` = the reason and [`LOST`] = true;
    /// if it has parameters and fewer than `max_retries` retries of its original trial exist,
    /// a waiting trial with the same parameters is enqueued (its `retry_of` names the original,
    /// the lost trial's [`RETRIED_AS`] names it). Returns the trials reaped, by number.
    fn reap_lost(
        &self,
        study: StudyId,
        gone: &[Gone],
        max_retries: u32,
    ) -> Result<Vec<Reaped>, TuneError>;

    /// Creates a running trial leased to a worker known only by name.
    fn create_trial(
        &self,
        study: StudyId,
        worker: &str,
        lease: Duration,
    ) -> Result<Trial, TuneError> {
        self.create_trial_for(study, &Worker::named(worker), lease)
    }

    /// Claims the oldest waiting trial for a worker known only by name.
    fn claim_waiting(
        &self,
        study: StudyId,
        worker: &str,
        lease: Duration,
    ) -> Result<Option<Trial>, TuneError> {
        self.claim_waiting_for(study, &Worker::named(worker), lease)
    }

    /// Ends running trials whose lease has expired, without retrying them; returns how many.
    fn reap_expired(&self, study: StudyId) -> Result<usize, TuneError> {
        Ok(self.reap_lost(study, &[], 0)?.len())
    }

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
