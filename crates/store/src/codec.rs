//! How trial fields become column values and back, and the rules both backends share
//! (what an outcome may be, when a second `finish_trial` is the same outcome).
//!
//! Parameters, values, energy and attributes are stored as JSON text. JSON has no NaN or
//! infinities, and a diverged trial may well report a NaN, so values are written as numbers
//! when finite and as the strings `"NaN"`, `"inf"`, `"-inf"` otherwise.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use greenlab_meter::Joules;
pub use greenlab_tune::storage::LEASE_EXPIRED;
use greenlab_tune::storage::{LOST, RETRIED_AS};
use greenlab_tune::{
    Intermediate, Params, Trial, TrialEnergy, TrialId, TrialOutcome, TrialState, Worker,
    WorkerProcess,
};
use serde_json::Value;

use crate::error::StoreError;

/// The columns of a trial row, in [`TrialRow`]'s order (both backends select these).
pub const TRIAL_COLUMNS: &str = "id, number, state, params, values_json, energy, attrs, worker, \
     started_at, finished_at, host, pid, process_identity, retry_of";

/// The columns that record a lease holder's process: host, pid, identity (all null for a
/// worker known only by name).
pub fn holder_columns(worker: &Worker) -> (Option<&str>, Option<i64>, Option<&str>) {
    match &worker.process {
        Some(p) => (
            Some(p.host.as_str()),
            Some(i64::from(p.pid)),
            Some(p.identity.as_str()),
        ),
        None => (None, None, None),
    }
}

/// Unix seconds from the system clock (SQLite has no clock of its own; see `SqliteStorage`).
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A lease as seconds, for SQL arithmetic.
pub fn lease_secs(lease: Duration) -> f64 {
    lease.as_secs_f64()
}

/// A trial row as read, before its JSON columns are decoded.
#[derive(Debug)]
pub struct TrialRow {
    pub id: i64,
    pub number: i64,
    pub state: String,
    pub params: String,
    pub values: Option<String>,
    pub energy: Option<String>,
    pub attrs: String,
    pub worker: Option<String>,
    pub started_at: Option<f64>,
    pub finished_at: Option<f64>,
    pub host: Option<String>,
    pub pid: Option<i64>,
    pub process_identity: Option<String>,
    pub retry_of: Option<i64>,
}

fn corrupt(trial: i64, what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Tune(greenlab_tune::TuneError::Storage(format!(
        "trial {trial}: stored {what} cannot be read ({e}); the database was modified by something other than greenlab"
    )))
}

impl TrialRow {
    /// Decodes the row into a [`Trial`] without intermediate values.
    pub fn decode(self) -> Result<Trial, StoreError> {
        let id = self.id;
        let state = TrialState::parse(&self.state)
            .ok_or_else(|| corrupt(id, "state", format!("unknown state {:?}", self.state)))?;
        let params: Params =
            serde_json::from_str(&self.params).map_err(|e| corrupt(id, "parameters", e))?;
        let values = match &self.values {
            Some(v) => Some(decode_values(v).map_err(|e| corrupt(id, "values", e))?),
            None => None,
        };
        let energy: Option<TrialEnergy> = match &self.energy {
            Some(e) => Some(serde_json::from_str(e).map_err(|e| corrupt(id, "energy", e))?),
            None => None,
        };
        let attrs: BTreeMap<String, Value> =
            serde_json::from_str(&self.attrs).map_err(|e| corrupt(id, "attributes", e))?;
        let number = u64::try_from(self.number)
            .map_err(|e| corrupt(id, "number", format!("{}: {e}", self.number)))?;
        let process = match self.host {
            Some(host) => Some(WorkerProcess {
                host,
                pid: self
                    .pid
                    .map(u32::try_from)
                    .transpose()
                    .map_err(|e| corrupt(id, "process id", e))?
                    .unwrap_or(0),
                identity: self.process_identity.unwrap_or_default(),
            }),
            None => None,
        };
        let retry_of = self
            .retry_of
            .map(u64::try_from)
            .transpose()
            .map_err(|e| corrupt(id, "retry_of", e))?;
        Ok(Trial {
            id,
            number,
            state,
            params,
            values,
            intermediate: Vec::new(),
            energy,
            attrs,
            worker: self.worker,
            process,
            retry_of,
            started_at: self.started_at,
            finished_at: self.finished_at,
        })
    }
}

/// Attaches intermediate rows `(trial_id, step, value, energy_j)`, sorted by trial id then
/// step, to `trials` (a `NULL` energy stays unknown).
pub fn attach_intermediate(
    trials: &mut [Trial],
    rows: Vec<(TrialId, i64, Option<f64>, Option<f64>)>,
) {
    let mut index: BTreeMap<TrialId, usize> = BTreeMap::new();
    for (i, t) in trials.iter().enumerate() {
        index.insert(t.id, i);
    }
    for (trial, step, value, energy) in rows {
        if let Some(&i) = index.get(&trial) {
            trials[i].intermediate.push(Intermediate {
                step: u32::try_from(step).unwrap_or(u32::MAX),
                value: value.unwrap_or(f64::NAN),
                energy: energy.map(Joules),
            });
        }
    }
}

/// Encodes values per objective (non-finite values as strings).
pub fn encode_values(values: &[f64]) -> String {
    let items: Vec<Value> = values
        .iter()
        .map(|&v| {
            if v.is_finite() {
                serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
            } else if v.is_nan() {
                Value::String("NaN".into())
            } else if v > 0.0 {
                Value::String("inf".into())
            } else {
                Value::String("-inf".into())
            }
        })
        .collect();
    Value::Array(items).to_string()
}

/// Decodes [`encode_values`]'s output.
pub fn decode_values(text: &str) -> Result<Vec<f64>, String> {
    let items: Vec<Value> = serde_json::from_str(text).map_err(|e| e.to_string())?;
    items
        .iter()
        .map(|v| match v {
            Value::Number(n) => n.as_f64().ok_or_else(|| format!("bad number {n}")),
            Value::String(s) if s == "NaN" => Ok(f64::NAN),
            Value::String(s) if s == "inf" => Ok(f64::INFINITY),
            Value::String(s) if s == "-inf" => Ok(f64::NEG_INFINITY),
            other => Err(format!("unexpected value {other}")),
        })
        .collect()
}

/// Encodes parameters, refusing non-finite floats (JSON cannot hold them, and no sampler
/// should produce them).
pub fn encode_params(trial: TrialId, params: &Params) -> Result<String, StoreError> {
    for (name, value) in params {
        if let greenlab_tune::ParamValue::Float(x) = value
            && !x.is_finite()
        {
            return Err(trial_state(
                trial,
                format!("parameter {name:?} is {x}; parameters must be finite"),
            ));
        }
    }
    serde_json::to_string(params).map_err(|e| {
        StoreError::Tune(greenlab_tune::TuneError::Storage(format!(
            "cannot encode parameters: {e}"
        )))
    })
}

/// Encodes a trial's energy record.
pub fn encode_energy(energy: &TrialEnergy) -> Result<String, StoreError> {
    serde_json::to_string(energy).map_err(|e| {
        StoreError::Tune(greenlab_tune::TuneError::Storage(format!(
            "cannot encode energy (is a figure NaN or infinite?): {e}"
        )))
    })
}

/// A `TrialState` error.
pub fn trial_state(trial: TrialId, message: impl Into<String>) -> StoreError {
    StoreError::Tune(greenlab_tune::TuneError::TrialState {
        trial,
        message: message.into(),
    })
}

/// Checks that an outcome can end a trial at all.
pub fn validate_outcome(trial: TrialId, outcome: &TrialOutcome) -> Result<(), StoreError> {
    if !outcome.state.is_finished() {
        return Err(trial_state(
            trial,
            format!(
                "cannot finish a trial as {}; use complete, pruned, failed or diverged",
                outcome.state.as_str()
            ),
        ));
    }
    if outcome.state == TrialState::Complete && outcome.values.is_none() {
        return Err(trial_state(
            trial,
            "a complete trial needs its objective values",
        ));
    }
    Ok(())
}

/// What `finish_trial` must do to a trial in its current stored form.
pub enum FinishAction {
    /// Write these columns.
    Write {
        values: Option<String>,
        energy: Option<String>,
        attrs: String,
    },
    /// The same outcome is already recorded: nothing to do.
    AlreadyDone,
}

/// Decides how `outcome` applies to the stored trial (`row`): a running trial is ended; a finished one accepts the same outcome again (state, values and energy equal, every
/// attribute of the outcome already stored with the same value) and refuses any other.
pub fn finish_action(row: &TrialRow, outcome: &TrialOutcome) -> Result<FinishAction, StoreError> {
    validate_outcome(row.id, outcome)?;
    let mut attrs: BTreeMap<String, Value> =
        serde_json::from_str(&row.attrs).map_err(|e| corrupt(row.id, "attributes", e))?;
    let values = outcome.values.as_deref().map(encode_values);
    let energy = outcome.energy.as_ref().map(encode_energy).transpose()?;
    let state = TrialState::parse(&row.state)
        .ok_or_else(|| corrupt(row.id, "state", format!("unknown state {:?}", row.state)))?;
    if state.is_finished() {
        let same_state = state == outcome.state;
        let same_values = row.values == values;
        let same_energy = json_eq(row.energy.as_deref(), energy.as_deref());
        let same_attrs = outcome.attrs.iter().all(|(k, v)| attrs.get(k) == Some(v));
        if same_state && same_values && same_energy && same_attrs {
            return Ok(FinishAction::AlreadyDone);
        }
        let why = match attrs.get("error") {
            Some(Value::String(e)) => format!(" ({e})"),
            _ => String::new(),
        };
        return Err(trial_state(
            row.id,
            format!(
                "already finished as {}{why}; a different outcome ({}) cannot be recorded",
                state.as_str(),
                outcome.state.as_str()
            ),
        ));
    }
    if state != TrialState::Running {
        return Err(not_running(row.id, &row.state, "finish it; claim it first"));
    }
    for (k, v) in &outcome.attrs {
        attrs.insert(k.clone(), v.clone());
    }
    let attrs = serde_json::to_string(&attrs)
        .map_err(|e| StoreError::Tune(greenlab_tune::TuneError::Storage(e.to_string())))?;
    Ok(FinishAction::Write {
        values,
        energy,
        attrs,
    })
}

/// Equality of two optional JSON texts as JSON values (spacing and key order aside).
pub fn json_eq(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            a == b
                || match (
                    serde_json::from_str::<Value>(a),
                    serde_json::from_str::<Value>(b),
                ) {
                    (Ok(x), Ok(y)) => x == y,
                    _ => false,
                }
        }
        _ => false,
    }
}

/// A running trial found lost, as `reap_lost` reads it.
pub struct LostRow {
    pub id: TrialId,
    pub number: i64,
    pub params: String,
    pub attrs: String,
    pub retry_of: Option<i64>,
    pub reason: String,
}

impl LostRow {
    /// The original trial whose retries this one's count against.
    pub fn original(&self) -> i64 {
        self.retry_of.unwrap_or(self.number)
    }

    /// Whether its parameters run again, given how many retries of its original exist.
    pub fn retry(&self, retries: i64, max_retries: u32) -> bool {
        self.params != "{}" && retries < i64::from(max_retries)
    }

    /// Its attributes once lost: `error` = the reason, `lost` = true, `retried_as` = the
    /// retry's number when there is one.
    pub fn attrs(&self, retried_as: Option<i64>) -> Result<String, StoreError> {
        let mut map: BTreeMap<String, Value> =
            serde_json::from_str(&self.attrs).map_err(|e| corrupt(self.id, "attributes", e))?;
        map.insert("error".into(), Value::String(self.reason.clone()));
        map.insert(LOST.into(), Value::Bool(true));
        if let Some(n) = retried_as {
            map.insert(RETRIED_AS.into(), Value::from(n));
        }
        serde_json::to_string(&map)
            .map_err(|e| StoreError::Tune(greenlab_tune::TuneError::Storage(e.to_string())))
    }

    /// What the reaper reports about it.
    pub fn reaped(&self, retried_as: Option<i64>) -> greenlab_tune::Reaped {
        greenlab_tune::Reaped {
            number: self.number.max(0) as u64,
            retried_as: retried_as.map(|n| n.max(0) as u64),
            reason: self.reason.clone(),
        }
    }
}

/// Whether two intermediate values are the same (NaN equals NaN).
pub fn same_value(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

/// The error for a trial that is not running when it must be.
pub fn not_running(trial: TrialId, state: &str, doing: &str) -> StoreError {
    trial_state(trial, format!("is {state}, not running; cannot {doing}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_including_non_finite() {
        let v = [
            0.5,
            -1e300,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            0.1 + 0.2,
        ];
        let back = decode_values(&encode_values(&v)).unwrap();
        assert_eq!(back.len(), v.len());
        for (a, b) in v.iter().zip(&back) {
            assert!(same_value(*a, *b), "{a} != {b}");
        }
    }

    #[test]
    fn json_eq_ignores_spacing_and_key_order() {
        assert!(json_eq(
            Some(r#"{"a":1,"b":2}"#),
            Some(r#"{ "b": 2, "a": 1 }"#)
        ));
        assert!(!json_eq(Some(r#"{"a":1}"#), Some(r#"{"a":2}"#)));
        assert!(!json_eq(None, Some("{}")));
    }

    #[test]
    fn non_finite_parameters_are_refused() {
        let mut p = Params::new();
        p.insert("lr".into(), greenlab_tune::ParamValue::Float(f64::NAN));
        assert!(encode_params(3, &p).is_err());
    }
}
