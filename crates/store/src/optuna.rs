//! A study written as an Optuna storage: the SQLite form of Optuna's RDB schema, so that
//! `optuna.load_study(study_name=..., storage="sqlite:///study.db")` and
//! `optuna-dashboard sqlite:///study.db` open it unchanged.
//!
//! The tables are those Optuna 5.0 creates (schema version 12, alembic revision `v3.2.0.a`,
//! unchanged since Optuna 3.2); `crates/cli/tests/optuna/check_export.py` loads an export with
//! the real package and compares every trial. What maps where:
//!
//! - parameters → `trial_params` with Optuna's distribution JSON (float → `FloatDistribution`,
//!   int → `IntDistribution`, categorical → `CategoricalDistribution`, whose internal value is
//!   the choice's index);
//! - objectives → `study_directions`; values of complete trials (and of pruned single-objective
//!   trials, as Optuna records them) → `trial_values`;
//! - states: waiting, running, complete, pruned as in Optuna; failed and diverged → `FAIL`
//!   (the greenlab state stays in the user attribute `greenlab_state`);
//! - intermediate values → `trial_intermediate_values`;
//! - energy, its source, duration and per-domain split, the energy at each step, the host,
//!   worker, retries and every greenlab attribute → `trial_user_attributes` (`energy_j`,
//!   `energy_source`, `energy_duration_s`, `energy_domains_j`, `intermediate_energy_j`, ...).
//!
//! The file is written whole to a temporary file beside the target and renamed over it, so a
//! failure never leaves half a study.

use std::path::Path;

use greenlab_tune::config::StudyConfig;
use greenlab_tune::{Direction, Distribution, ParamValue, StudyRecord, Trial, TrialState};
use rusqlite::{Connection, params};
use serde_json::{Value, json};

use crate::error::StoreError;

/// Optuna's schema version (`optuna/storages/_rdb/models.py`, `SCHEMA_VERSION`).
pub const OPTUNA_SCHEMA_VERSION: i64 = 12;
/// Optuna's alembic head revision for that schema.
pub const OPTUNA_ALEMBIC_REVISION: &str = "v3.2.0.a";
/// The Optuna release whose schema this writes (recorded as the library version).
pub const OPTUNA_VERSION: &str = "5.0.0";

/// The tables as Optuna 5.0's SQLAlchemy models create them in SQLite.
const SCHEMA: &str = r#"
CREATE TABLE studies (
    study_id INTEGER NOT NULL, study_name VARCHAR(512) NOT NULL, PRIMARY KEY (study_id));
CREATE UNIQUE INDEX ix_studies_study_name ON studies (study_name);
CREATE TABLE version_info (
    version_info_id INTEGER NOT NULL, schema_version INTEGER, library_version VARCHAR(256),
    PRIMARY KEY (version_info_id), CHECK (version_info_id=1));
CREATE TABLE study_directions (
    study_direction_id INTEGER NOT NULL, direction VARCHAR(8) NOT NULL,
    study_id INTEGER NOT NULL, objective INTEGER NOT NULL,
    PRIMARY KEY (study_direction_id), UNIQUE (study_id, objective),
    FOREIGN KEY(study_id) REFERENCES studies (study_id));
CREATE TABLE study_user_attributes (
    study_user_attribute_id INTEGER NOT NULL, study_id INTEGER, "key" VARCHAR(512),
    value_json TEXT, PRIMARY KEY (study_user_attribute_id), UNIQUE (study_id, "key"),
    FOREIGN KEY(study_id) REFERENCES studies (study_id));
CREATE TABLE study_system_attributes (
    study_system_attribute_id INTEGER NOT NULL, study_id INTEGER, "key" VARCHAR(512),
    value_json TEXT, PRIMARY KEY (study_system_attribute_id), UNIQUE (study_id, "key"),
    FOREIGN KEY(study_id) REFERENCES studies (study_id));
CREATE TABLE trials (
    trial_id INTEGER NOT NULL, number INTEGER, study_id INTEGER, state VARCHAR(8) NOT NULL,
    datetime_start DATETIME, datetime_complete DATETIME, PRIMARY KEY (trial_id),
    FOREIGN KEY(study_id) REFERENCES studies (study_id));
CREATE INDEX ix_trials_study_id ON trials (study_id);
CREATE TABLE trial_user_attributes (
    trial_user_attribute_id INTEGER NOT NULL, trial_id INTEGER, "key" VARCHAR(512),
    value_json TEXT, PRIMARY KEY (trial_user_attribute_id), UNIQUE (trial_id, "key"),
    FOREIGN KEY(trial_id) REFERENCES trials (trial_id));
CREATE TABLE trial_system_attributes (
    trial_system_attribute_id INTEGER NOT NULL, trial_id INTEGER, "key" VARCHAR(512),
    value_json TEXT, PRIMARY KEY (trial_system_attribute_id), UNIQUE (trial_id, "key"),
    FOREIGN KEY(trial_id) REFERENCES trials (trial_id));
CREATE TABLE trial_params (
    param_id INTEGER NOT NULL, trial_id INTEGER, param_name VARCHAR(512), param_value FLOAT,
    distribution_json TEXT, PRIMARY KEY (param_id), UNIQUE (trial_id, param_name),
    FOREIGN KEY(trial_id) REFERENCES trials (trial_id));
CREATE TABLE trial_values (
    trial_value_id INTEGER NOT NULL, trial_id INTEGER NOT NULL, objective INTEGER NOT NULL,
    value FLOAT, value_type VARCHAR(7) NOT NULL, PRIMARY KEY (trial_value_id),
    UNIQUE (trial_id, objective), FOREIGN KEY(trial_id) REFERENCES trials (trial_id));
CREATE TABLE trial_intermediate_values (
    trial_intermediate_value_id INTEGER NOT NULL, trial_id INTEGER NOT NULL,
    step INTEGER NOT NULL, intermediate_value FLOAT, intermediate_value_type VARCHAR(7) NOT NULL,
    PRIMARY KEY (trial_intermediate_value_id), UNIQUE (trial_id, step),
    FOREIGN KEY(trial_id) REFERENCES trials (trial_id));
CREATE TABLE trial_heartbeats (
    trial_heartbeat_id INTEGER NOT NULL, trial_id INTEGER NOT NULL, heartbeat DATETIME NOT NULL,
    PRIMARY KEY (trial_heartbeat_id), UNIQUE (trial_id),
    FOREIGN KEY(trial_id) REFERENCES trials (trial_id));
CREATE TABLE alembic_version (
    version_num VARCHAR(32) NOT NULL, CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num));
"#;

/// Unix seconds as Optuna's naive-UTC `DATETIME` text (`2024-01-31 12:00:00.250000`),
/// formatted by SQLite itself.
const DATETIME: &str = "CASE WHEN ?1 IS NULL THEN NULL ELSE \
     strftime('%Y-%m-%d %H:%M:%S', ?1, 'unixepoch') || \
     printf('.%06d', CAST((?1 - CAST(?1 AS INTEGER)) * 1000000 AS INTEGER)) END";

/// Optuna's name for a state.
fn optuna_state(state: TrialState) -> &'static str {
    match state {
        TrialState::Waiting => "WAITING",
        TrialState::Running => "RUNNING",
        TrialState::Complete => "COMPLETE",
        TrialState::Pruned => "PRUNED",
        TrialState::Failed | TrialState::Diverged => "FAIL",
    }
}

/// Optuna's distribution JSON for a greenlab distribution.
pub fn distribution_json(d: &Distribution) -> Value {
    match d {
        Distribution::Float { low, high, log } => json!({
            "name": "FloatDistribution",
            "attributes": {"step": null, "low": low, "high": high, "log": log},
        }),
        Distribution::Int { low, high, log } => json!({
            "name": "IntDistribution",
            "attributes": {"log": log, "step": 1, "low": low, "high": high},
        }),
        Distribution::Categorical { choices } => json!({
            "name": "CategoricalDistribution",
            "attributes": {"choices": choices},
        }),
    }
}

/// Optuna's internal (float) representation of a parameter value: the value itself for
/// numbers, the index of the choice for categoricals.
pub fn internal_value(d: &Distribution, v: &ParamValue) -> Option<f64> {
    match d {
        Distribution::Float { .. } | Distribution::Int { .. } => v.as_f64(),
        Distribution::Categorical { choices } => choices
            .iter()
            .position(|c| c == v || (c.as_f64().is_some() && c.as_f64() == v.as_f64()))
            .map(|i| i as f64),
    }
}

/// A value and Optuna's type tag for it (`FINITE`, `INF_POS`, `INF_NEG`, `NAN`).
fn typed(v: f64) -> (Option<f64>, &'static str) {
    if v.is_nan() {
        (None, "NAN")
    } else if v == f64::INFINITY {
        (None, "INF_POS")
    } else if v == f64::NEG_INFINITY {
        (None, "INF_NEG")
    } else {
        (Some(v), "FINITE")
    }
}

/// The user attributes a trial carries in the export.
fn user_attrs(t: &Trial) -> Vec<(String, Value)> {
    let mut attrs: Vec<(String, Value)> = t
        .attrs
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let mut put = |k: &str, v: Value| {
        attrs.retain(|(key, _)| key != k);
        attrs.push((k.to_string(), v));
    };
    put("greenlab_state", json!(t.state.as_str()));
    if let Some(e) = &t.energy {
        // Unknown energy is exported as null with its reason, never as 0.
        put("energy_j", json!(greenlab_tune::study::trial_joules(t)));
        put(
            "machine_energy_j",
            json!(e.total.map(|j| j.0).filter(|j| j.is_finite())),
        );
        put("energy_source", json!(e.provenance().to_string()));
        if let Some(why) = e.why_unknown(greenlab_meter::EnergyBasis::Attributed) {
            put("energy_unknown", json!(why));
        }
        put("energy_duration_s", json!(e.duration.0));
        let domains: serde_json::Map<String, Value> = e
            .domains
            .iter()
            .map(|(name, j, _)| (name.clone(), json!(j.map(|j| j.0))))
            .collect();
        put("energy_domains_j", Value::Object(domains));
    }
    if !t.intermediate.is_empty() {
        let steps: serde_json::Map<String, Value> = t
            .intermediate
            .iter()
            .map(|i| (i.step.to_string(), json!(i.energy.map(|j| j.0))))
            .collect();
        put("intermediate_energy_j", Value::Object(steps));
    }
    if let Some(p) = &t.process {
        put("host", json!(p.host));
    }
    if let Some(w) = &t.worker {
        put("worker", json!(w));
    }
    if let Some(r) = t.retry_of {
        put("retry_of", json!(r));
    }
    attrs
}

/// Writes `record`'s trials to `path` as an Optuna SQLite storage (see the module
/// documentation), replacing the file whole.
pub fn export_optuna(
    path: &Path,
    record: &StudyRecord,
    trials: &[Trial],
) -> Result<(), StoreError> {
    let config = StudyConfig::from_json(&record.spec_json).map_err(|e| StoreError::Sqlite {
        path: path.to_path_buf(),
        message: format!("cannot export study {:?}: {e}", record.name),
    })?;
    let fail = |e: &dyn std::fmt::Display| StoreError::Sqlite {
        path: path.to_path_buf(),
        message: format!("cannot write the Optuna export: {e}"),
    };
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".greenlab-optuna-")
        .suffix(".db")
        .tempfile_in(dir)
        .map_err(|e| fail(&e))?;
    {
        let mut conn = Connection::open(tmp.path()).map_err(|e| fail(&e))?;
        write(&mut conn, &config, record, trials).map_err(|e| fail(&e))?;
        conn.close().map_err(|(_, e)| fail(&e))?;
    }
    tmp.as_file().sync_all().map_err(|e| fail(&e))?;
    tmp.persist(path).map_err(|e| fail(&e.error))?;
    Ok(())
}

fn write(
    conn: &mut Connection,
    config: &StudyConfig,
    record: &StudyRecord,
    trials: &[Trial],
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    tx.execute_batch(SCHEMA)?;
    tx.execute(
        "INSERT INTO version_info (version_info_id, schema_version, library_version) VALUES (1, ?1, ?2)",
        params![OPTUNA_SCHEMA_VERSION, OPTUNA_VERSION],
    )?;
    tx.execute(
        "INSERT INTO alembic_version (version_num) VALUES (?1)",
        [OPTUNA_ALEMBIC_REVISION],
    )?;
    tx.execute(
        "INSERT INTO studies (study_id, study_name) VALUES (1, ?1)",
        [&record.name],
    )?;
    for (i, o) in config.objectives.iter().enumerate() {
        let direction = match o.direction {
            Direction::Maximize => "MAXIMIZE",
            Direction::Minimize => "MINIMIZE",
        };
        tx.execute(
            "INSERT INTO study_directions (direction, study_id, objective) VALUES (?1, 1, ?2)",
            params![direction, i as i64],
        )?;
    }
    let study_attrs = [
        (
            "greenlab_definition",
            serde_json::from_str(&record.spec_json).unwrap_or(Value::Null),
        ),
        (
            "metric_names",
            json!(
                config
                    .objectives
                    .iter()
                    .map(|o| &o.metric)
                    .collect::<Vec<_>>()
            ),
        ),
    ];
    for (k, v) in study_attrs {
        tx.execute(
            "INSERT INTO study_user_attributes (study_id, \"key\", value_json) VALUES (1, ?1, ?2)",
            params![k, v.to_string()],
        )?;
    }
    let n_objectives = config.objectives.len();
    for t in trials {
        let values = t.values.as_ref().filter(|v| v.len() == n_objectives);
        // Optuna keeps values for complete trials, and for pruned single-objective ones (their
        // last intermediate value); a complete trial without usable values is a failure there.
        let keep_values = match t.state {
            TrialState::Complete => values.is_some_and(|v| v.iter().all(|x| !x.is_nan())),
            TrialState::Pruned => n_objectives == 1 && values.is_some_and(|v| !v[0].is_nan()),
            _ => false,
        };
        let state = if t.state == TrialState::Complete && !keep_values {
            "FAIL"
        } else {
            optuna_state(t.state)
        };
        tx.execute(
            &format!(
                "INSERT INTO trials (number, study_id, state, datetime_start, datetime_complete)
                 VALUES (?2, 1, ?3, ({}), ({}))",
                DATETIME,
                DATETIME.replace("?1", "?4")
            ),
            params![t.started_at, t.number as i64, state, t.finished_at],
        )?;
        let id = tx.last_insert_rowid();
        for (name, value) in &t.params {
            let Some(d) = config.space.get(name) else {
                continue;
            };
            tx.execute(
                "INSERT INTO trial_params (trial_id, param_name, param_value, distribution_json)
                 VALUES (?1, ?2, ?3, ?4)",
                params![
                    id,
                    name,
                    internal_value(d, value),
                    distribution_json(d).to_string()
                ],
            )?;
        }
        if keep_values && let Some(values) = values {
            for (objective, v) in values.iter().enumerate() {
                let (value, kind) = typed(*v);
                tx.execute(
                    "INSERT INTO trial_values (trial_id, objective, value, value_type) VALUES (?1, ?2, ?3, ?4)",
                    params![id, objective as i64, value, kind],
                )?;
            }
        }
        for i in &t.intermediate {
            let (value, kind) = typed(i.value);
            tx.execute(
                "INSERT INTO trial_intermediate_values (trial_id, step, intermediate_value, intermediate_value_type)
                 VALUES (?1, ?2, ?3, ?4)",
                params![id, i64::from(i.step), value, kind],
            )?;
        }
        for (k, v) in user_attrs(t) {
            tx.execute(
                "INSERT INTO trial_user_attributes (trial_id, \"key\", value_json) VALUES (?1, ?2, ?3)",
                params![id, k, v.to_string()],
            )?;
        }
    }
    tx.commit()
}
