//! [`SqliteStorage`]: a study database in one SQLite file, shared by threads and processes.
//!
//! Concurrency: the file is in WAL mode, so readers never wait for the writer. Every write is
//! one `BEGIN IMMEDIATE` transaction (the write lock is taken up front, so a transaction
//! never has to upgrade from reader to writer, which SQLite answers with an immediate
//! `SQLITE_BUSY`). Each connection waits up to [`BUSY_TIMEOUT`] for the lock, and a
//! transaction that still meets `SQLITE_BUSY`/`SQLITE_LOCKED` is rolled back and retried with
//! jittered exponential backoff for up to [`BUSY_DEADLINE`]; only a lock held longer than that
//! reaches the caller as an error.
//!
//! Durability: `synchronous=NORMAL`, the usual choice with WAL. A committed transaction
//! survives the death of any process (kill -9 included); a power cut may roll back the last
//! few commits but never corrupts the file.
//!
//! Clock: SQLite has none shared between machines, so times (trial start/end, lease expiry)
//! come from this machine's system clock. That is exact for the processes of one machine,
//! which is all a SQLite file on local disk should be shared by; workers on several machines
//! belong on PostgreSQL.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use greenlab_tune::storage::Gone;
use greenlab_tune::{
    Params, Reaped, Storage, StudyId, StudyRecord, Trial, TrialId, TrialOutcome, TrialState,
    TuneError, Worker,
};
use rusqlite::{
    Connection, ErrorCode, OpenFlags, OptionalExtension, Row, Transaction, TransactionBehavior,
    params,
};

use crate::codec::{
    self, FinishAction, LEASE_EXPIRED, LostRow, TRIAL_COLUMNS, TrialRow, attach_intermediate,
    encode_params, finish_action, holder_columns, json_eq, lease_secs, not_running, same_value,
    trial_state, unix_now,
};
use crate::error::StoreError;
use crate::pool::Pool;
use crate::schema::{SCHEMA_VERSION, SQLITE_MIGRATIONS};

/// How long one connection waits for another's write lock before SQLite reports busy.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a transaction is retried while the database stays busy.
pub const BUSY_DEADLINE: Duration = Duration::from_secs(120);

/// Studies and trials in a SQLite file. See the module documentation for the concurrency,
/// durability and clock guarantees.
pub struct SqliteStorage {
    path: PathBuf,
    pool: Pool<Connection>,
}

/// A failure inside a transaction: an SQLite error (maybe worth retrying) or a final one.
enum Failure {
    Sql(rusqlite::Error),
    Store(StoreError),
}

impl From<rusqlite::Error> for Failure {
    fn from(e: rusqlite::Error) -> Self {
        Failure::Sql(e)
    }
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        Failure::Store(e)
    }
}

impl From<TuneError> for Failure {
    fn from(e: TuneError) -> Self {
        Failure::Store(StoreError::Tune(e))
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
    )
}

fn trial_row(r: &Row<'_>) -> rusqlite::Result<TrialRow> {
    Ok(TrialRow {
        id: r.get(0)?,
        number: r.get(1)?,
        state: r.get(2)?,
        params: r.get(3)?,
        values: r.get(4)?,
        energy: r.get(5)?,
        attrs: r.get(6)?,
        worker: r.get(7)?,
        started_at: r.get(8)?,
        finished_at: r.get(9)?,
        host: r.get(10)?,
        pid: r.get(11)?,
        process_identity: r.get(12)?,
        retry_of: r.get(13)?,
    })
}

/// A lost-trial candidate: `id, number, params, attrs, retry_of`.
fn lost_row(r: &Row<'_>, reason: &str) -> rusqlite::Result<LostRow> {
    Ok(LostRow {
        id: r.get(0)?,
        number: r.get(1)?,
        params: r.get(2)?,
        attrs: r.get(3)?,
        retry_of: r.get(4)?,
        reason: reason.to_string(),
    })
}

fn study_row(r: &Row<'_>) -> rusqlite::Result<StudyRecord> {
    Ok(StudyRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        spec_json: r.get(2)?,
        created_at: r.get(3)?,
    })
}

fn unknown_study(study: StudyId) -> Failure {
    TuneError::UnknownStudy(format!("#{study}")).into()
}

impl SqliteStorage {
    /// Opens (creating if needed) the database at `path` and brings its schema up to date.
    ///
    /// Errors: the directory does not exist, the file is not a greenlab database
    /// (`TuneError::Storage` naming the file), or its schema is newer than this build
    /// (`TuneError::SchemaTooNew`).
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStorage, TuneError> {
        let path = path.as_ref().to_path_buf();
        if path.is_dir() {
            return Err(StoreError::Sqlite {
                path,
                message: "is a directory; pass a file path such as study.db".into(),
            }
            .into());
        }
        if let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
            && !parent.is_dir()
        {
            return Err(StoreError::Sqlite {
                message: format!(
                    "directory {} does not exist; create it first",
                    parent.display()
                ),
                path,
            }
            .into());
        }
        let storage = SqliteStorage {
            path,
            pool: Pool::new(8),
        };
        let conn = storage.connect().map_err(|f| storage.finish_failure(f))?;
        storage.pool.put(conn);
        storage.migrate()?;
        Ok(storage)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Turns an SQLite error into a message about this file.
    fn classify(&self, e: rusqlite::Error) -> StoreError {
        match e.sqlite_error_code() {
            Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => {
                StoreError::NotADatabase {
                    path: self.path.clone(),
                    reason: e.to_string(),
                }
            }
            Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied | ErrorCode::ReadOnly) => {
                StoreError::Sqlite {
                    path: self.path.clone(),
                    message: format!("{e}; check that the path is right and writable"),
                }
            }
            Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => StoreError::Sqlite {
                path: self.path.clone(),
                message: format!(
                    "{e} for more than {} s; another process holds a long write transaction on this file — stop it, or use PostgreSQL for many workers",
                    BUSY_DEADLINE.as_secs()
                ),
            },
            Some(ErrorCode::DiskFull) => StoreError::Sqlite {
                path: self.path.clone(),
                message: format!("{e}; free some disk space (nothing was written)"),
            },
            _ => StoreError::Sqlite {
                path: self.path.clone(),
                message: e.to_string(),
            },
        }
    }

    fn finish_failure(&self, f: Failure) -> TuneError {
        match f {
            Failure::Sql(e) => self.classify(e).into(),
            Failure::Store(e) => e.into(),
        }
    }

    /// Opens and configures one connection.
    fn connect(&self) -> Result<Connection, Failure> {
        // No SQLITE_OPEN_URI: a path is a path, even with a `?` in it.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(&self.path, flags)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Switching to WAL needs a moment of exclusive access, so it can meet SQLITE_BUSY when
        // several processes open a fresh file at once.
        retry_busy(|| {
            Ok(conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0))?)
        })?;
        conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")?;
        Ok(conn)
    }

    /// Runs `f` in one transaction, retrying it while the database is busy.
    fn tx<T>(
        &self,
        behavior: TransactionBehavior,
        mut f: impl FnMut(&Transaction<'_>) -> Result<T, Failure>,
    ) -> Result<T, TuneError> {
        let mut conn = self
            .pool
            .get(|| self.connect())
            .map_err(|e| self.finish_failure(e))?;
        let result = retry_busy(|| {
            let tx = conn.transaction_with_behavior(behavior)?;
            let value = f(&tx)?;
            tx.commit()?;
            Ok(value)
        });
        result.map_err(|e| self.finish_failure(e))
    }

    fn write<T>(
        &self,
        f: impl FnMut(&Transaction<'_>) -> Result<T, Failure>,
    ) -> Result<T, TuneError> {
        self.tx(TransactionBehavior::Immediate, f)
    }

    fn read<T>(
        &self,
        f: impl FnMut(&Transaction<'_>) -> Result<T, Failure>,
    ) -> Result<T, TuneError> {
        self.tx(TransactionBehavior::Deferred, f)
    }

    fn migrate(&self) -> Result<(), TuneError> {
        self.write(|tx| {
            let has_schema: i64 = tx.query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'greenlab_schema'",
                [],
                |r| r.get(0),
            )?;
            if has_schema == 0 {
                let others: i64 = tx.query_row(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
                    [],
                    |r| r.get(0),
                )?;
                if others > 0 {
                    return Err(StoreError::NotADatabase {
                        path: self.path.clone(),
                        reason: format!(
                            "it is an SQLite database with {others} tables of another application"
                        ),
                    }
                    .into());
                }
                tx.execute_batch(
                    "CREATE TABLE greenlab_schema (version INTEGER NOT NULL, applied_at REAL NOT NULL)",
                )?;
            }
            let current: i64 = tx.query_row(
                "SELECT coalesce(max(version), 0) FROM greenlab_schema",
                [],
                |r| r.get(0),
            )?;
            if current > SCHEMA_VERSION {
                return Err(TuneError::SchemaTooNew {
                    found: current,
                    supported: SCHEMA_VERSION,
                }
                .into());
            }
            for (version, sql) in SQLITE_MIGRATIONS.iter().filter(|(v, _)| *v > current) {
                tx.execute_batch(sql)?;
                tx.execute(
                    "INSERT INTO greenlab_schema (version, applied_at) VALUES (?1, ?2)",
                    params![version, unix_now()],
                )?;
            }
            Ok(())
        })
    }

    /// The next trial number of `study`, taken inside the caller's write transaction.
    fn allocate_number(tx: &Transaction<'_>, study: StudyId) -> Result<i64, Failure> {
        tx.query_row(
            "UPDATE studies SET next_number = next_number + 1 WHERE id = ?1 RETURNING next_number - 1",
            [study],
            |r| r.get(0),
        )
        .optional()?
        .ok_or_else(|| unknown_study(study))
    }

    fn load_row(tx: &Transaction<'_>, trial: TrialId) -> Result<TrialRow, Failure> {
        tx.query_row(
            &format!("SELECT {TRIAL_COLUMNS} FROM trials WHERE id = ?1"),
            [trial],
            trial_row,
        )
        .optional()?
        .ok_or_else(|| TuneError::UnknownTrial(trial).into())
    }

    fn load_trial(tx: &Transaction<'_>, trial: TrialId) -> Result<Trial, Failure> {
        let mut t = [Self::load_row(tx, trial)?.decode()?];
        let mut stmt = tx.prepare_cached(
            "SELECT trial_id, step, value, energy_j FROM intermediate WHERE trial_id = ?1 ORDER BY step",
        )?;
        let rows = stmt
            .query_map([trial], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        attach_intermediate(&mut t, rows);
        let [t] = t;
        Ok(t)
    }

    fn check_study(tx: &Transaction<'_>, study: StudyId) -> Result<(), Failure> {
        let exists: Option<i64> = tx
            .prepare_cached("SELECT id FROM studies WHERE id = ?1")?
            .query_row([study], |r| r.get(0))
            .optional()?;
        exists.map(|_| ()).ok_or_else(|| unknown_study(study))
    }

    fn state_of(tx: &Transaction<'_>, trial: TrialId) -> Result<(String, Option<String>), Failure> {
        tx.query_row(
            "SELECT state, worker FROM trials WHERE id = ?1",
            [trial],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?
        .ok_or_else(|| TuneError::UnknownTrial(trial).into())
    }
}

/// Runs `f` until it succeeds, fails with something other than busy, or [`BUSY_DEADLINE`]
/// passes; sleeps between tries with jittered exponential backoff (1 ms doubling to 64 ms).
fn retry_busy<T>(mut f: impl FnMut() -> Result<T, Failure>) -> Result<T, Failure> {
    let deadline = Instant::now() + BUSY_DEADLINE;
    let mut backoff = Duration::from_millis(1);
    loop {
        match f() {
            Err(Failure::Sql(e)) if is_busy(&e) && Instant::now() < deadline => {
                // A fresh RandomState is randomly keyed: a cheap source of jitter that keeps
                // retrying workers from waking in lockstep.
                let jitter = RandomState::new().hash_one(0u8) % (backoff.as_micros() as u64 + 1);
                std::thread::sleep(backoff + Duration::from_micros(jitter));
                backoff = (backoff * 2).min(Duration::from_millis(64));
            }
            other => return other,
        }
    }
}

impl Storage for SqliteStorage {
    fn create_study(&self, name: &str, spec_json: &str) -> Result<StudyRecord, TuneError> {
        if name.trim().is_empty() {
            return Err(TuneError::InvalidConfig(
                "a study name cannot be empty; give the study a name".into(),
            ));
        }
        self.write(|tx| {
            let existing = tx
                .query_row(
                    "SELECT id, name, spec_json, created_at FROM studies WHERE name = ?1",
                    [name],
                    study_row,
                )
                .optional()?;
            if let Some(study) = existing {
                return if json_eq(Some(&study.spec_json), Some(spec_json)) {
                    Ok(study)
                } else {
                    Err(TuneError::StudyConflict(name.to_string()).into())
                };
            }
            let now = unix_now();
            tx.execute(
                "INSERT INTO studies (name, spec_json, created_at) VALUES (?1, ?2, ?3)",
                params![name, spec_json, now],
            )?;
            Ok(StudyRecord {
                id: tx.last_insert_rowid(),
                name: name.to_string(),
                spec_json: spec_json.to_string(),
                created_at: now,
            })
        })
    }

    fn list_studies(&self) -> Result<Vec<StudyRecord>, TuneError> {
        self.read(|tx| {
            let mut stmt = tx.prepare_cached(
                "SELECT id, name, spec_json, created_at FROM studies ORDER BY name",
            )?;
            let studies = stmt
                .query_map([], study_row)?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(studies)
        })
    }

    fn study(&self, name: &str) -> Result<StudyRecord, TuneError> {
        self.read(|tx| {
            tx.query_row(
                "SELECT id, name, spec_json, created_at FROM studies WHERE name = ?1",
                [name],
                study_row,
            )
            .optional()?
            .ok_or_else(|| TuneError::UnknownStudy(name.to_string()).into())
        })
    }

    fn create_trial_for(
        &self,
        study: StudyId,
        worker: &Worker,
        lease: Duration,
    ) -> Result<Trial, TuneError> {
        let (host, pid, identity) = holder_columns(worker);
        self.write(|tx| {
            let number = Self::allocate_number(tx, study)?;
            let now = unix_now();
            tx.prepare_cached(
                "INSERT INTO trials (study_id, number, state, params, attrs, worker, lease_expires_at, started_at,
                                     host, pid, process_identity)
                 VALUES (?1, ?2, 'running', '{}', '{}', ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                study,
                number,
                worker.name,
                now + lease_secs(lease),
                now,
                host,
                pid,
                identity
            ])?;
            Ok(Trial {
                id: tx.last_insert_rowid(),
                number: number as u64,
                state: TrialState::Running,
                params: Params::new(),
                values: None,
                intermediate: Vec::new(),
                energy: None,
                attrs: Default::default(),
                worker: Some(worker.name.clone()),
                process: worker.process.clone(),
                retry_of: None,
                started_at: Some(now),
                finished_at: None,
            })
        })
    }

    fn enqueue_trial(&self, study: StudyId, params: &Params) -> Result<Trial, TuneError> {
        let encoded = encode_params(0, params)?;
        self.write(|tx| {
            let number = Self::allocate_number(tx, study)?;
            tx.execute(
                "INSERT INTO trials (study_id, number, state, params, attrs) VALUES (?1, ?2, 'waiting', ?3, '{}')",
                params![study, number, encoded],
            )?;
            Ok(Trial {
                id: tx.last_insert_rowid(),
                number: number as u64,
                state: TrialState::Waiting,
                params: params.clone(),
                values: None,
                intermediate: Vec::new(),
                energy: None,
                attrs: Default::default(),
                worker: None,
                process: None,
                retry_of: None,
                started_at: None,
                finished_at: None,
            })
        })
    }

    fn claim_waiting_for(
        &self,
        study: StudyId,
        worker: &Worker,
        lease: Duration,
    ) -> Result<Option<Trial>, TuneError> {
        let (host, pid, identity) = holder_columns(worker);
        self.write(|tx| {
            Self::check_study(tx, study)?;
            let next: Option<TrialId> = tx
                .query_row(
                    "SELECT id FROM trials WHERE study_id = ?1 AND state = 'waiting' ORDER BY number LIMIT 1",
                    [study],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(id) = next else {
                return Ok(None);
            };
            let now = unix_now();
            tx.execute(
                "UPDATE trials SET state = 'running', worker = ?2, lease_expires_at = ?3, started_at = ?4,
                     host = ?5, pid = ?6, process_identity = ?7 WHERE id = ?1",
                params![id, worker.name, now + lease_secs(lease), now, host, pid, identity],
            )?;
            Ok(Some(Self::load_trial(tx, id)?))
        })
    }

    fn set_params(&self, trial: TrialId, params: &Params) -> Result<(), TuneError> {
        let encoded = encode_params(trial, params)?;
        self.write(|tx| {
            let row = Self::load_row(tx, trial)?;
            if row.state != TrialState::Running.as_str() {
                return Err(not_running(trial, &row.state, "set its parameters").into());
            }
            if row.params != "{}" {
                return if json_eq(Some(&row.params), Some(&encoded)) {
                    Ok(())
                } else {
                    Err(trial_state(trial, "parameters are already set and never change").into())
                };
            }
            tx.prepare_cached("UPDATE trials SET params = ?2 WHERE id = ?1")?
                .execute(params![trial, encoded])?;
            Ok(())
        })
    }

    fn heartbeat(&self, trial: TrialId, worker: &str, lease: Duration) -> Result<(), TuneError> {
        self.write(|tx| {
            let changed = tx.execute(
                "UPDATE trials SET lease_expires_at = ?3 WHERE id = ?1 AND state = 'running' AND worker = ?2",
                params![trial, worker, unix_now() + lease_secs(lease)],
            )?;
            if changed == 1 {
                return Ok(());
            }
            let (state, holder) = Self::state_of(tx, trial)?;
            if state != TrialState::Running.as_str() {
                return Err(not_running(trial, &state, "renew its lease").into());
            }
            Err(trial_state(
                trial,
                format!(
                    "is held by worker {:?}, not {worker:?}",
                    holder.unwrap_or_default()
                ),
            )
            .into())
        })
    }

    fn report_intermediate(
        &self,
        trial: TrialId,
        step: u32,
        value: f64,
        energy_j: Option<f64>,
    ) -> Result<(), TuneError> {
        self.write(|tx| {
            let (state, _) = Self::state_of(tx, trial)?;
            if state == TrialState::Running.as_str() {
                tx.prepare_cached(
                    "INSERT INTO intermediate (trial_id, step, value, energy_j) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (trial_id, step) DO UPDATE SET value = excluded.value, energy_j = excluded.energy_j",
                )?
                .execute(params![trial, step, value, energy_j])?;
                return Ok(());
            }
            // A retry after the trial ended is harmless if it repeats what is stored.
            let stored: Option<Option<f64>> = tx
                .query_row(
                    "SELECT value FROM intermediate WHERE trial_id = ?1 AND step = ?2",
                    params![trial, step],
                    |r| r.get(0),
                )
                .optional()?;
            match stored {
                Some(v) if same_value(v.unwrap_or(f64::NAN), value) => Ok(()),
                _ => Err(not_running(trial, &state, "report intermediate values").into()),
            }
        })
    }

    fn finish_trial(&self, trial: TrialId, outcome: &TrialOutcome) -> Result<(), TuneError> {
        codec::validate_outcome(trial, outcome)?;
        self.write(|tx| {
            let row = Self::load_row(tx, trial)?;
            match finish_action(&row, outcome)? {
                FinishAction::AlreadyDone => Ok(()),
                FinishAction::Write {
                    values,
                    energy,
                    attrs,
                } => {
                    tx.prepare_cached(
                        "UPDATE trials SET state = ?2, values_json = ?3, energy = ?4, attrs = ?5,
                         finished_at = ?6, lease_expires_at = NULL WHERE id = ?1",
                    )?
                    .execute(params![
                        trial,
                        outcome.state.as_str(),
                        values,
                        energy,
                        attrs,
                        unix_now()
                    ])?;
                    Ok(())
                }
            }
        })
    }

    fn trials(&self, study: StudyId) -> Result<Vec<Trial>, TuneError> {
        self.read(|tx| {
            Self::check_study(tx, study)?;
            let mut stmt = tx.prepare_cached(&format!(
                "SELECT {TRIAL_COLUMNS} FROM trials WHERE study_id = ?1 ORDER BY number"
            ))?;
            let rows = stmt
                .query_map([study], trial_row)?
                .collect::<Result<Vec<_>, _>>()?;
            let mut trials = rows
                .into_iter()
                .map(TrialRow::decode)
                .collect::<Result<Vec<_>, _>>()?;
            let mut stmt = tx.prepare_cached(
                "SELECT i.trial_id, i.step, i.value, i.energy_j FROM intermediate i
                 JOIN trials t ON t.id = i.trial_id WHERE t.study_id = ?1 ORDER BY i.trial_id, i.step",
            )?;
            let inter = stmt
                .query_map([study], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect::<Result<Vec<_>, _>>()?;
            attach_intermediate(&mut trials, inter);
            Ok(trials)
        })
    }

    fn trial(&self, study: StudyId, trial: TrialId) -> Result<Trial, TuneError> {
        self.read(|tx| {
            let t = Self::load_trial(tx, trial)?;
            let owner: i64 =
                tx.query_row("SELECT study_id FROM trials WHERE id = ?1", [trial], |r| {
                    r.get(0)
                })?;
            if owner != study {
                return Err(TuneError::UnknownTrial(trial).into());
            }
            Ok(t)
        })
    }

    fn reap_lost(
        &self,
        study: StudyId,
        gone: &[Gone],
        max_retries: u32,
    ) -> Result<Vec<Reaped>, TuneError> {
        self.write(|tx| {
            Self::check_study(tx, study)?;
            let now = unix_now();
            let mut lost: Vec<LostRow> = {
                let mut stmt = tx.prepare_cached(
                    "SELECT id, number, params, attrs, retry_of FROM trials
                     WHERE study_id = ?1 AND state = 'running' AND lease_expires_at <= ?2",
                )?;
                stmt.query_map(params![study, now], |r| lost_row(r, LEASE_EXPIRED))?
                    .collect::<Result<Vec<_>, _>>()?
            };
            for g in gone {
                if lost.iter().any(|l| l.id == g.trial) {
                    continue;
                }
                let row = tx
                    .prepare_cached(
                        "SELECT id, number, params, attrs, retry_of FROM trials
                         WHERE id = ?1 AND study_id = ?2 AND state = 'running' AND worker = ?3",
                    )?
                    .query_row(params![g.trial, study, g.worker], |r| lost_row(r, &g.reason))
                    .optional()?;
                lost.extend(row);
            }
            let mut reaped = Vec::with_capacity(lost.len());
            for l in &lost {
                let retries: i64 = tx
                    .prepare_cached(
                        "SELECT count(*) FROM trials WHERE study_id = ?1 AND retry_of = ?2",
                    )?
                    .query_row(params![study, l.original()], |r| r.get(0))?;
                let retried_as = if l.retry(retries, max_retries) {
                    let number = Self::allocate_number(tx, study)?;
                    tx.prepare_cached(
                        "INSERT INTO trials (study_id, number, state, params, attrs, retry_of)
                         VALUES (?1, ?2, 'waiting', ?3, '{}', ?4)",
                    )?
                    .execute(params![study, number, l.params, l.original()])?;
                    Some(number)
                } else {
                    None
                };
                tx.prepare_cached(
                    "UPDATE trials SET state = 'failed', attrs = ?2, finished_at = ?3, lease_expires_at = NULL
                     WHERE id = ?1",
                )?
                .execute(params![l.id, l.attrs(retried_as)?, now])?;
                reaped.push(l.reaped(retried_as));
            }
            Ok(reaped)
        })
    }
}

impl std::fmt::Debug for SqliteStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStorage")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}
