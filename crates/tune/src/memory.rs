//! An in-memory [`Storage`]: one process, many threads, nothing persisted.
//!
//! Used by tests, by `--storage memory:`, and as the reference behaviour that the conformance
//! suite ([`crate::testing::check_storage`]) pins down for the SQL storages.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::TuneError;
use crate::space::Params;
pub use crate::storage::LEASE_EXPIRED;
use crate::storage::{
    Gone, LOST, RETRIED_AS, Reaped, Storage, StudyId, StudyRecord, TrialId, Worker,
};
use crate::trial::{Intermediate, Trial, TrialOutcome, TrialState};

/// A clock returning Unix seconds; replaceable so that tests control lease expiry.
pub type Clock = Arc<dyn Fn() -> f64 + Send + Sync>;

/// The system clock as Unix seconds.
pub fn system_clock() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

struct Row {
    study: StudyId,
    trial: Trial,
    lease_until: f64,
    outcome: Option<TrialOutcome>,
}

#[derive(Default)]
struct Inner {
    studies: Vec<StudyRecord>,
    rows: Vec<Row>,
    next_number: BTreeMap<StudyId, u64>,
}

/// Studies and trials in memory, behind one mutex.
pub struct MemoryStorage {
    inner: Mutex<Inner>,
    clock: Clock,
}

impl Default for MemoryStorage {
    fn default() -> Self {
        MemoryStorage::new()
    }
}

impl std::fmt::Debug for MemoryStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStorage").finish_non_exhaustive()
    }
}

impl MemoryStorage {
    /// An empty storage on the system clock.
    pub fn new() -> MemoryStorage {
        MemoryStorage::with_clock(Arc::new(system_clock))
    }

    /// An empty storage on the given clock.
    pub fn with_clock(clock: Clock) -> MemoryStorage {
        MemoryStorage {
            inner: Mutex::new(Inner::default()),
            clock,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-written row: every mutation
        // below is a single assignment after its checks, so the poisoned data is usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now(&self) -> f64 {
        (self.clock)()
    }
}

fn study_exists(inner: &Inner, study: StudyId) -> Result<(), TuneError> {
    if inner.studies.iter().any(|s| s.id == study) {
        Ok(())
    } else {
        Err(TuneError::UnknownStudy(format!("#{study}")))
    }
}

fn row_mut(inner: &mut Inner, trial: TrialId) -> Result<&mut Row, TuneError> {
    inner
        .rows
        .iter_mut()
        .find(|r| r.trial.id == trial)
        .ok_or(TuneError::UnknownTrial(trial))
}

fn new_trial(inner: &mut Inner, study: StudyId) -> Trial {
    let counter = inner.next_number.entry(study).or_insert(0);
    let number = *counter;
    *counter += 1;
    Trial {
        id: inner.rows.len() as TrialId + 1,
        number,
        state: TrialState::Waiting,
        params: Params::new(),
        values: None,
        intermediate: Vec::new(),
        energy: None,
        attrs: BTreeMap::new(),
        worker: None,
        process: None,
        retry_of: None,
        started_at: None,
        finished_at: None,
    }
}

fn state_error(trial: TrialId, message: impl Into<String>) -> TuneError {
    TuneError::TrialState {
        trial,
        message: message.into(),
    }
}

impl Storage for MemoryStorage {
    fn create_study(&self, name: &str, spec_json: &str) -> Result<StudyRecord, TuneError> {
        let now = self.now();
        let mut inner = self.lock();
        if let Some(s) = inner.studies.iter().find(|s| s.name == name) {
            return if s.spec_json == spec_json {
                Ok(s.clone())
            } else {
                Err(TuneError::StudyConflict(name.to_string()))
            };
        }
        let record = StudyRecord {
            id: inner.studies.len() as StudyId + 1,
            name: name.to_string(),
            spec_json: spec_json.to_string(),
            created_at: now,
        };
        inner.studies.push(record.clone());
        Ok(record)
    }

    fn list_studies(&self) -> Result<Vec<StudyRecord>, TuneError> {
        let mut studies = self.lock().studies.clone();
        studies.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(studies)
    }

    fn create_trial_for(
        &self,
        study: StudyId,
        worker: &Worker,
        lease: Duration,
    ) -> Result<Trial, TuneError> {
        let now = self.now();
        let mut inner = self.lock();
        study_exists(&inner, study)?;
        let mut trial = new_trial(&mut inner, study);
        trial.state = TrialState::Running;
        trial.worker = Some(worker.name.clone());
        trial.process = worker.process.clone();
        trial.started_at = Some(now);
        inner.rows.push(Row {
            study,
            trial: trial.clone(),
            lease_until: now + lease.as_secs_f64(),
            outcome: None,
        });
        Ok(trial)
    }

    fn enqueue_trial(&self, study: StudyId, params: &Params) -> Result<Trial, TuneError> {
        let mut inner = self.lock();
        study_exists(&inner, study)?;
        let mut trial = new_trial(&mut inner, study);
        trial.params = params.clone();
        inner.rows.push(Row {
            study,
            trial: trial.clone(),
            lease_until: f64::INFINITY,
            outcome: None,
        });
        Ok(trial)
    }

    fn claim_waiting_for(
        &self,
        study: StudyId,
        worker: &Worker,
        lease: Duration,
    ) -> Result<Option<Trial>, TuneError> {
        let now = self.now();
        let mut inner = self.lock();
        study_exists(&inner, study)?;
        let row = inner
            .rows
            .iter_mut()
            .filter(|r| r.study == study && r.trial.state == TrialState::Waiting)
            .min_by_key(|r| r.trial.number);
        Ok(row.map(|r| {
            r.trial.state = TrialState::Running;
            r.trial.worker = Some(worker.name.clone());
            r.trial.process = worker.process.clone();
            r.trial.started_at = Some(now);
            r.lease_until = now + lease.as_secs_f64();
            r.trial.clone()
        }))
    }

    fn set_params(&self, trial: TrialId, params: &Params) -> Result<(), TuneError> {
        let mut inner = self.lock();
        let row = row_mut(&mut inner, trial)?;
        if row.trial.state != TrialState::Running {
            return Err(state_error(
                trial,
                format!(
                    "parameters can only be set while running (state: {})",
                    row.trial.state.as_str()
                ),
            ));
        }
        if !row.trial.params.is_empty() && &row.trial.params != params {
            return Err(state_error(trial, "parameters are already set"));
        }
        row.trial.params = params.clone();
        Ok(())
    }

    fn heartbeat(&self, trial: TrialId, worker: &str, lease: Duration) -> Result<(), TuneError> {
        let now = self.now();
        let mut inner = self.lock();
        let row = row_mut(&mut inner, trial)?;
        if row.trial.state != TrialState::Running {
            return Err(state_error(
                trial,
                format!("is {}, not running", row.trial.state.as_str()),
            ));
        }
        if row.trial.worker.as_deref() != Some(worker) {
            return Err(state_error(
                trial,
                format!("is not held by worker {worker}"),
            ));
        }
        row.lease_until = now + lease.as_secs_f64();
        Ok(())
    }

    fn report_intermediate(
        &self,
        trial: TrialId,
        step: u32,
        value: f64,
        energy_j: Option<f64>,
    ) -> Result<(), TuneError> {
        let mut inner = self.lock();
        let row = row_mut(&mut inner, trial)?;
        if row.trial.state != TrialState::Running {
            return Err(state_error(
                trial,
                format!(
                    "intermediate values can only be reported while running (state: {})",
                    row.trial.state.as_str()
                ),
            ));
        }
        let entry = Intermediate {
            step,
            value,
            energy: energy_j.map(greenlab_meter::Joules),
        };
        let list = &mut row.trial.intermediate;
        match list.binary_search_by_key(&step, |i| i.step) {
            Ok(i) => list[i] = entry,
            Err(i) => list.insert(i, entry),
        }
        Ok(())
    }

    fn finish_trial(&self, trial: TrialId, outcome: &TrialOutcome) -> Result<(), TuneError> {
        if !outcome.state.is_finished() {
            return Err(state_error(
                trial,
                format!("cannot finish with state {}", outcome.state.as_str()),
            ));
        }
        let now = self.now();
        let mut inner = self.lock();
        let row = row_mut(&mut inner, trial)?;
        if row.trial.state.is_finished() {
            return if row.outcome.as_ref() == Some(outcome) {
                Ok(())
            } else {
                Err(state_error(
                    trial,
                    format!(
                        "already finished as {}; a different outcome cannot be recorded",
                        row.trial.state.as_str()
                    ),
                ))
            };
        }
        if row.trial.state != TrialState::Running {
            return Err(state_error(
                trial,
                format!("is {}, not running", row.trial.state.as_str()),
            ));
        }
        row.trial.state = outcome.state;
        row.trial.values = outcome.values.clone();
        row.trial.energy = outcome.energy.clone();
        row.trial
            .attrs
            .extend(outcome.attrs.iter().map(|(k, v)| (k.clone(), v.clone())));
        row.trial.finished_at = Some(now);
        row.outcome = Some(outcome.clone());
        Ok(())
    }

    fn trials(&self, study: StudyId) -> Result<Vec<Trial>, TuneError> {
        let inner = self.lock();
        study_exists(&inner, study)?;
        let mut trials: Vec<Trial> = inner
            .rows
            .iter()
            .filter(|r| r.study == study)
            .map(|r| r.trial.clone())
            .collect();
        trials.sort_by_key(|t| t.number);
        Ok(trials)
    }

    fn reap_lost(
        &self,
        study: StudyId,
        gone: &[Gone],
        max_retries: u32,
    ) -> Result<Vec<Reaped>, TuneError> {
        let now = self.now();
        let mut inner = self.lock();
        study_exists(&inner, study)?;
        let lost: Vec<(usize, String)> = inner
            .rows
            .iter()
            .enumerate()
            .filter(|(_, r)| r.study == study && r.trial.state == TrialState::Running)
            .filter_map(|(i, r)| {
                if r.lease_until <= now {
                    return Some((i, LEASE_EXPIRED.to_string()));
                }
                gone.iter()
                    .find(|g| g.trial == r.trial.id && r.trial.worker.as_deref() == Some(&g.worker))
                    .map(|g| (i, g.reason.clone()))
            })
            .collect();
        let mut reaped = Vec::with_capacity(lost.len());
        for (i, reason) in lost {
            let original = inner.rows[i]
                .trial
                .retry_of
                .unwrap_or(inner.rows[i].trial.number);
            let retries = inner
                .rows
                .iter()
                .filter(|r| r.study == study && r.trial.retry_of == Some(original))
                .count();
            let params = inner.rows[i].trial.params.clone();
            let retried_as = if !params.is_empty() && retries < max_retries as usize {
                let mut retry = new_trial(&mut inner, study);
                retry.params = params;
                retry.retry_of = Some(original);
                let number = retry.number;
                inner.rows.push(Row {
                    study,
                    trial: retry,
                    lease_until: f64::INFINITY,
                    outcome: None,
                });
                Some(number)
            } else {
                None
            };
            let row = &mut inner.rows[i];
            let mut attrs = BTreeMap::new();
            attrs.insert("error".to_string(), serde_json::json!(reason));
            attrs.insert(LOST.to_string(), serde_json::json!(true));
            if let Some(n) = retried_as {
                attrs.insert(RETRIED_AS.to_string(), serde_json::json!(n));
            }
            row.trial.state = TrialState::Failed;
            row.trial.attrs.extend(attrs.clone());
            row.trial.finished_at = Some(now);
            row.outcome = Some(TrialOutcome {
                state: TrialState::Failed,
                values: None,
                energy: None,
                attrs,
            });
            reaped.push(Reaped {
                number: row.trial.number,
                retried_as,
                reason,
            });
        }
        Ok(reaped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_storage_passes_the_conformance_suite() {
        crate::testing::check_storage(&|| Box::new(MemoryStorage::new()));
    }

    #[test]
    fn leases_follow_the_injected_clock() {
        let now = Arc::new(Mutex::new(100.0));
        let clock_now = Arc::clone(&now);
        let s = MemoryStorage::with_clock(Arc::new(move || {
            *clock_now.lock().unwrap_or_else(|p| p.into_inner())
        }));
        let st = s.create_study("s", "{}").unwrap();
        let t = s.create_trial(st.id, "w", Duration::from_secs(10)).unwrap();
        *now.lock().unwrap() = 109.0;
        assert_eq!(s.reap_expired(st.id).unwrap(), 0);
        s.heartbeat(t.id, "w", Duration::from_secs(10)).unwrap();
        *now.lock().unwrap() = 118.0;
        assert_eq!(
            s.reap_expired(st.id).unwrap(),
            0,
            "the heartbeat renewed the lease"
        );
        *now.lock().unwrap() = 119.5;
        assert_eq!(s.reap_expired(st.id).unwrap(), 1);
        assert_eq!(s.trial(st.id, t.id).unwrap().state, TrialState::Failed);
    }
}
