//! [`PostgresStorage`]: studies and trials in a PostgreSQL database, for workers on many
//! machines.
//!
//! Trial numbers come from `UPDATE studies SET next_number = next_number + 1 ... RETURNING`,
//! in the same statement that inserts the trial, so the study row's lock makes numbering dense
//! and a failed insert gives its number back. Waiting trials are claimed with
//! `FOR UPDATE SKIP LOCKED`, so concurrent claimers never wait on or take the same trial.
//! Every time (start, end, lease expiry) comes from the server's clock (`now()`), so workers
//! with skewed clocks still agree on when a lease has run out. Writes are idempotent:
//! studies are created with `ON CONFLICT DO NOTHING`, intermediate values are upserted, and a
//! repeated `finish_trial` is recognised.
//!
//! Connections: a few are kept in a small pool (see `pool.rs`); a connection the server
//! closed is dropped and replaced, and while the server is unreachable (restarting) operations
//! are retried for up to [`RECONNECT_DEADLINE`]. Statements are prepared once per connection. TLS is not
//! supported (`NoTls`): reach a remote server through a VPN or SSH tunnel.

use std::collections::HashMap;
use std::error::Error as _;
use std::time::{Duration, Instant};

use greenlab_tune::storage::Gone;
use greenlab_tune::{
    Params, Reaped, Storage, StudyId, StudyRecord, Trial, TrialId, TrialOutcome, TrialState,
    TuneError, Worker,
};
use postgres::types::ToSql;
use postgres::{Client, IsolationLevel, NoTls, Row, Statement};

use crate::codec::{
    self, FinishAction, LEASE_EXPIRED, LostRow, TRIAL_COLUMNS, TrialRow, attach_intermediate,
    encode_params, finish_action, holder_columns, json_eq, lease_secs, not_running, same_value,
    trial_state,
};
use crate::error::{StoreError, redact_url};
use crate::pgpass::{self, PasswordSources};
use crate::pool::Pool;
use crate::schema::{POSTGRES_MIGRATIONS, SCHEMA_VERSION};

/// The server's clock, as Unix seconds.
const NOW: &str = "extract(epoch from now())::float8";
/// How long to wait for the server when connecting, unless the URL says otherwise.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a storage that reached its server keeps reconnecting after losing it (a restart, a
/// failover) before an operation fails. A transaction cut off at its commit is run again, so
/// after an outage a created trial may exist twice (the extra one is reaped as lost, never run)
/// and an enqueued one be enqueued twice; everything else is idempotent.
pub const RECONNECT_DEADLINE: Duration = Duration::from_secs(120);
/// Key of the advisory lock that serialises schema migrations between workers.
const MIGRATION_LOCK: i64 = 0x6772_6e6c_6162; // "grnlab"

/// Studies and trials in PostgreSQL. See the module documentation.
pub struct PostgresStorage {
    url: String,
    config: postgres::Config,
    pool: Pool<Conn>,
}

/// One connection and the statements prepared on it.
struct Conn {
    client: Client,
    statements: HashMap<String, Statement>,
}

/// A transaction with statement caching.
struct Tx<'a> {
    tx: postgres::Transaction<'a>,
    statements: &'a mut HashMap<String, Statement>,
}

type Params_<'a> = &'a [&'a (dyn ToSql + Sync)];

impl Tx<'_> {
    fn statement(&mut self, sql: &str) -> Result<Statement, postgres::Error> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.tx.prepare(sql)?;
        self.statements.insert(sql.to_string(), s.clone());
        Ok(s)
    }

    fn query(&mut self, sql: &str, params: Params_<'_>) -> Result<Vec<Row>, Failure> {
        let s = self.statement(sql)?;
        Ok(self.tx.query(&s, params)?)
    }

    fn query_opt(&mut self, sql: &str, params: Params_<'_>) -> Result<Option<Row>, Failure> {
        let s = self.statement(sql)?;
        Ok(self.tx.query_opt(&s, params)?)
    }

    fn execute(&mut self, sql: &str, params: Params_<'_>) -> Result<u64, Failure> {
        let s = self.statement(sql)?;
        Ok(self.tx.execute(&s, params)?)
    }
}

/// A failure inside a transaction: a driver error (maybe worth retrying) or a final one.
enum Failure {
    Pg(postgres::Error),
    Store(StoreError),
}

impl From<postgres::Error> for Failure {
    fn from(e: postgres::Error) -> Self {
        Failure::Pg(e)
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

/// The driver's error with the server's message, detail and hint, or the cause chain.
fn describe(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = db.message().to_string();
        if let Some(d) = db.detail() {
            s.push_str(&format!(" ({d})"));
        }
        if let Some(h) = db.hint() {
            s.push_str(&format!("; {h}"));
        }
        return s;
    }
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let c = cause.to_string();
        if !s.contains(&c) {
            s.push_str(": ");
            s.push_str(&c);
        }
        source = cause.source();
    }
    s
}

/// Whether the connection is gone (server restarted or shut down, network lost) rather than
/// the statement wrong: worth a new connection and another try.
fn is_connection_lost(e: &postgres::Error) -> bool {
    use postgres::error::SqlState;
    if e.is_closed() {
        return true;
    }
    if let Some(c) = e.code() {
        return *c == SqlState::ADMIN_SHUTDOWN
            || *c == SqlState::CRASH_SHUTDOWN
            || *c == SqlState::CANNOT_CONNECT_NOW;
    }
    e.as_db_error().is_none() && e.source().is_some_and(|s| s.is::<std::io::Error>())
}

/// Serialisation failures and deadlocks are resolved by running the transaction again.
fn is_retryable(e: &postgres::Error) -> bool {
    use postgres::error::SqlState;
    e.code().is_some_and(|c| {
        *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
    })
}

fn trial_row(r: &Row) -> Result<TrialRow, postgres::Error> {
    Ok(TrialRow {
        id: r.try_get(0)?,
        number: r.try_get(1)?,
        state: r.try_get(2)?,
        params: r.try_get(3)?,
        values: r.try_get(4)?,
        energy: r.try_get(5)?,
        attrs: r.try_get(6)?,
        worker: r.try_get(7)?,
        started_at: r.try_get(8)?,
        finished_at: r.try_get(9)?,
        host: r.try_get(10)?,
        pid: r.try_get(11)?,
        process_identity: r.try_get(12)?,
        retry_of: r.try_get(13)?,
    })
}

/// A lost-trial candidate: `id, number, params, attrs, retry_of`.
fn lost_row(r: &Row, reason: &str) -> Result<LostRow, postgres::Error> {
    Ok(LostRow {
        id: r.try_get(0)?,
        number: r.try_get(1)?,
        params: r.try_get(2)?,
        attrs: r.try_get(3)?,
        retry_of: r.try_get(4)?,
        reason: reason.to_string(),
    })
}

fn study_row(r: &Row) -> Result<StudyRecord, postgres::Error> {
    Ok(StudyRecord {
        id: r.try_get(0)?,
        name: r.try_get(1)?,
        spec_json: r.try_get(2)?,
        created_at: r.try_get(3)?,
    })
}

fn unknown_study(study: StudyId) -> Failure {
    TuneError::UnknownStudy(format!("#{study}")).into()
}

impl PostgresStorage {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`, any
    /// libpq-style URL the `postgres` crate parses) and brings its schema up to date.
    ///
    /// Errors: a malformed URL or an unreachable server (`TuneError::Storage` naming the URL,
    /// password redacted), or a schema newer than this build (`TuneError::SchemaTooNew`).
    pub fn open(url: &str) -> Result<PostgresStorage, TuneError> {
        PostgresStorage::open_with(url, &PasswordSources::default())
    }

    /// [`PostgresStorage::open`], taking the password from `passwords` when the URL has none:
    /// `PGPASSWORD`'s value first, then the first matching line of the password file, as libpq
    /// does.
    pub fn open_with(url: &str, passwords: &PasswordSources) -> Result<PostgresStorage, TuneError> {
        let redacted = redact_url(url);
        let mut config: postgres::Config =
            url.parse()
                .map_err(|e: postgres::Error| StoreError::PostgresConnect {
                    url: redacted.clone(),
                    message: format!("malformed URL ({})", describe(&e)),
                })?;
        if config.get_password().is_none() {
            if let Some(p) = &passwords.password {
                config.password(p.as_str());
            } else if let Some(path) = &passwords.passfile
                && let Some(text) = pgpass::read_passfile(path)?
            {
                let user = config.get_user().unwrap_or_default().to_string();
                let host = match config.get_hosts().first() {
                    Some(postgres::config::Host::Tcp(h)) => h.clone(),
                    Some(postgres::config::Host::Unix(p)) => p.display().to_string(),
                    None => "localhost".to_string(),
                };
                let port = config.get_ports().first().copied().unwrap_or(5432);
                let database = config.get_dbname().unwrap_or(&user).to_string();
                if let Some(p) = pgpass::lookup(&text, &host, port, &database, &user) {
                    config.password(p);
                }
            }
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("greenlab");
        }
        let storage = PostgresStorage {
            url: redacted,
            config,
            pool: Pool::new(8),
        };
        let conn = storage.connect()?;
        storage.pool.put(conn);
        storage.migrate()?;
        Ok(storage)
    }

    /// The URL, password redacted.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn connect(&self) -> Result<Conn, StoreError> {
        let client = self
            .config
            .connect(NoTls)
            .map_err(|e| StoreError::PostgresConnect {
                url: self.url.clone(),
                message: describe(&e),
            })?;
        Ok(Conn {
            client,
            statements: HashMap::new(),
        })
    }

    fn pg_error(&self, e: &postgres::Error) -> StoreError {
        if e.as_db_error().is_none() && e.is_closed() {
            return StoreError::PostgresConnect {
                url: self.url.clone(),
                message: format!("connection lost ({})", describe(e)),
            };
        }
        StoreError::Postgres {
            url: self.url.clone(),
            message: describe(e),
        }
    }

    /// Runs `f` in one transaction (read-committed, or repeatable-read read-only for
    /// `snapshot`), retrying serialisation failures and deadlocks.
    fn run<T>(
        &self,
        snapshot: bool,
        mut f: impl FnMut(&mut Tx<'_>) -> Result<T, Failure>,
    ) -> Result<T, TuneError> {
        let mut attempt = 0u32;
        let mut lost_since: Option<Instant> = None;
        // Waits before the next try while the server stays unreachable, up to the deadline.
        let keep_trying = |lost_since: &mut Option<Instant>| -> bool {
            let since = *lost_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= RECONNECT_DEADLINE {
                return false;
            }
            let wait =
                Duration::from_millis(100) * 2u32.pow(since.elapsed().as_secs().min(4) as u32);
            std::thread::sleep(wait.min(Duration::from_secs(2)));
            true
        };
        loop {
            let mut conn = match self.pool.get(|| self.connect()) {
                Ok(c) => c,
                Err(_) if keep_trying(&mut lost_since) => continue,
                Err(e) => return Err(e.into()),
            };
            if conn.client.is_closed() {
                conn.discard();
                continue;
            }
            let Conn { client, statements } = &mut *conn;
            let result = (|| {
                let tx = if snapshot {
                    client
                        .build_transaction()
                        .isolation_level(IsolationLevel::RepeatableRead)
                        .read_only(true)
                        .start()?
                } else {
                    client.transaction()?
                };
                let mut tx = Tx { tx, statements };
                let value = f(&mut tx)?;
                tx.tx.commit()?;
                Ok(value)
            })();
            match result {
                Ok(v) => return Ok(v),
                Err(Failure::Pg(e)) if is_retryable(&e) && attempt < 20 => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(1 << attempt.min(6)));
                }
                Err(Failure::Pg(e)) if is_connection_lost(&e) => {
                    // The server restarted or the network dropped: this connection is dead
                    // (and the pool's other idle ones probably too; each is dropped on use).
                    conn.discard();
                    if !keep_trying(&mut lost_since) {
                        return Err(self.pg_error(&e).into());
                    }
                }
                Err(Failure::Pg(e)) => {
                    if conn.client.is_closed() {
                        conn.discard();
                    }
                    return Err(self.pg_error(&e).into());
                }
                Err(Failure::Store(e)) => return Err(e.into()),
            }
        }
    }

    fn write<T>(&self, f: impl FnMut(&mut Tx<'_>) -> Result<T, Failure>) -> Result<T, TuneError> {
        self.run(false, f)
    }

    fn read<T>(&self, f: impl FnMut(&mut Tx<'_>) -> Result<T, Failure>) -> Result<T, TuneError> {
        self.run(true, f)
    }

    fn migrate(&self) -> Result<(), TuneError> {
        self.write(|tx| {
            // Workers starting together on an empty database must not race to create tables.
            tx.query("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
            let has_schema: bool = tx
                .query("SELECT to_regclass('greenlab_schema') IS NOT NULL", &[])?
                .first()
                .map(|r| r.try_get(0))
                .transpose()?
                .unwrap_or(false);
            if !has_schema {
                let foreign: bool = tx
                    .query(
                        "SELECT to_regclass('studies') IS NOT NULL OR to_regclass('trials') IS NOT NULL",
                        &[],
                    )?
                    .first()
                    .map(|r| r.try_get(0))
                    .transpose()?
                    .unwrap_or(false);
                if foreign {
                    return Err(StoreError::Postgres {
                        url: self.url.clone(),
                        message: "the database has tables named studies or trials that greenlab did not create; use a database of its own".into(),
                    }
                    .into());
                }
                tx.tx.batch_execute(
                    "CREATE TABLE greenlab_schema (version BIGINT NOT NULL, applied_at DOUBLE PRECISION NOT NULL)",
                )?;
            }
            let current: i64 = tx
                .query("SELECT coalesce(max(version), 0)::bigint FROM greenlab_schema", &[])?
                .first()
                .map(|r| r.try_get(0))
                .transpose()?
                .unwrap_or(0);
            if current > SCHEMA_VERSION {
                return Err(TuneError::SchemaTooNew {
                    found: current,
                    supported: SCHEMA_VERSION,
                }
                .into());
            }
            for (version, sql) in POSTGRES_MIGRATIONS.iter().filter(|(v, _)| *v > current) {
                tx.tx.batch_execute(sql)?;
                tx.execute(
                    &format!("INSERT INTO greenlab_schema (version, applied_at) VALUES ($1, {NOW})"),
                    &[version],
                )?;
            }
            Ok(())
        })
    }

    fn load_row(tx: &mut Tx<'_>, trial: TrialId, lock: &str) -> Result<TrialRow, Failure> {
        let row = tx
            .query_opt(
                &format!("SELECT {TRIAL_COLUMNS} FROM trials WHERE id = $1 {lock}"),
                &[&trial],
            )?
            .ok_or(TuneError::UnknownTrial(trial))?;
        Ok(trial_row(&row)?)
    }

    fn load_trial(tx: &mut Tx<'_>, trial: TrialId) -> Result<Trial, Failure> {
        let mut t = [Self::load_row(tx, trial, "")?.decode()?];
        let rows = tx.query(
            "SELECT trial_id, step, value, energy_j FROM intermediate WHERE trial_id = $1 ORDER BY step",
            &[&trial],
        )?;
        let inter = rows
            .iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
            .collect::<Result<Vec<_>, postgres::Error>>()?;
        attach_intermediate(&mut t, inter);
        let [t] = t;
        Ok(t)
    }

    fn check_study(tx: &mut Tx<'_>, study: StudyId) -> Result<(), Failure> {
        match tx.query_opt("SELECT id FROM studies WHERE id = $1", &[&study])? {
            Some(_) => Ok(()),
            None => Err(unknown_study(study)),
        }
    }

    fn state_of(
        tx: &mut Tx<'_>,
        trial: TrialId,
        lock: &str,
    ) -> Result<(String, Option<String>), Failure> {
        let row = tx
            .query_opt(
                &format!("SELECT state, worker FROM trials WHERE id = $1 {lock}"),
                &[&trial],
            )?
            .ok_or(TuneError::UnknownTrial(trial))?;
        Ok((row.try_get(0)?, row.try_get(1)?))
    }
}

impl Storage for PostgresStorage {
    fn create_study(&self, name: &str, spec_json: &str) -> Result<StudyRecord, TuneError> {
        if name.trim().is_empty() {
            return Err(TuneError::InvalidConfig(
                "a study name cannot be empty; give the study a name".into(),
            ));
        }
        self.write(|tx| {
            let inserted = tx.query_opt(
                &format!(
                    "INSERT INTO studies (name, spec_json, created_at) VALUES ($1, $2, {NOW})
                     ON CONFLICT (name) DO NOTHING RETURNING id, name, spec_json, created_at"
                ),
                &[&name, &spec_json],
            )?;
            if let Some(row) = inserted {
                return Ok(study_row(&row)?);
            }
            let row = tx
                .query_opt(
                    "SELECT id, name, spec_json, created_at FROM studies WHERE name = $1",
                    &[&name],
                )?
                .ok_or_else(|| {
                    TuneError::Storage(format!("study {name:?} vanished while being created"))
                })?;
            let study = study_row(&row)?;
            if json_eq(Some(&study.spec_json), Some(spec_json)) {
                Ok(study)
            } else {
                Err(TuneError::StudyConflict(name.to_string()).into())
            }
        })
    }

    fn list_studies(&self) -> Result<Vec<StudyRecord>, TuneError> {
        self.read(|tx| {
            let rows = tx.query(
                "SELECT id, name, spec_json, created_at FROM studies ORDER BY name",
                &[],
            )?;
            Ok(rows.iter().map(study_row).collect::<Result<Vec<_>, _>>()?)
        })
    }

    fn study(&self, name: &str) -> Result<StudyRecord, TuneError> {
        self.read(|tx| {
            let row = tx
                .query_opt(
                    "SELECT id, name, spec_json, created_at FROM studies WHERE name = $1",
                    &[&name],
                )?
                .ok_or_else(|| TuneError::UnknownStudy(name.to_string()))?;
            Ok(study_row(&row)?)
        })
    }

    fn create_trial_for(
        &self,
        study: StudyId,
        worker: &Worker,
        lease: Duration,
    ) -> Result<Trial, TuneError> {
        let lease = lease_secs(lease);
        let (host, pid, identity) = holder_columns(worker);
        self.write(|tx| {
            let row = tx
                .query_opt(
                    &format!(
                        "WITH n AS (UPDATE studies SET next_number = next_number + 1 WHERE id = $1
                                    RETURNING next_number - 1 AS number)
                         INSERT INTO trials (study_id, number, state, params, attrs, worker, lease_expires_at, started_at,
                                             host, pid, process_identity)
                         SELECT $1, n.number, 'running', '{{}}', '{{}}', $2, {NOW} + $3::float8, {NOW}, $4, $5, $6 FROM n
                         RETURNING id, number, started_at"
                    ),
                    &[&study, &worker.name, &lease, &host, &pid, &identity],
                )?
                .ok_or_else(|| unknown_study(study))?;
            let number: i64 = row.try_get(1)?;
            Ok(Trial {
                id: row.try_get(0)?,
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
                started_at: row.try_get(2)?,
                finished_at: None,
            })
        })
    }

    fn enqueue_trial(&self, study: StudyId, params: &Params) -> Result<Trial, TuneError> {
        let encoded = encode_params(0, params)?;
        self.write(|tx| {
            let row = tx
                .query_opt(
                    "WITH n AS (UPDATE studies SET next_number = next_number + 1 WHERE id = $1
                                RETURNING next_number - 1 AS number)
                     INSERT INTO trials (study_id, number, state, params, attrs)
                     SELECT $1, n.number, 'waiting', $2, '{}' FROM n
                     RETURNING id, number",
                    &[&study, &encoded],
                )?
                .ok_or_else(|| unknown_study(study))?;
            let number: i64 = row.try_get(1)?;
            Ok(Trial {
                id: row.try_get(0)?,
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
        let lease = lease_secs(lease);
        let (host, pid, identity) = holder_columns(worker);
        self.write(|tx| {
            Self::check_study(tx, study)?;
            let claimed = tx.query_opt(
                &format!(
                    "UPDATE trials SET state = 'running', worker = $2,
                         lease_expires_at = {NOW} + $3::float8, started_at = {NOW},
                         host = $4, pid = $5, process_identity = $6
                     WHERE id = (SELECT id FROM trials WHERE study_id = $1 AND state = 'waiting'
                                 ORDER BY number LIMIT 1 FOR UPDATE SKIP LOCKED)
                     RETURNING id"
                ),
                &[&study, &worker.name, &lease, &host, &pid, &identity],
            )?;
            match claimed {
                None => Ok(None),
                Some(row) => {
                    let id: i64 = row.try_get(0)?;
                    Ok(Some(Self::load_trial(tx, id)?))
                }
            }
        })
    }

    fn set_params(&self, trial: TrialId, params: &Params) -> Result<(), TuneError> {
        let encoded = encode_params(trial, params)?;
        self.write(|tx| {
            let row = Self::load_row(tx, trial, "FOR UPDATE")?;
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
            tx.execute(
                "UPDATE trials SET params = $2 WHERE id = $1",
                &[&trial, &encoded],
            )?;
            Ok(())
        })
    }

    fn heartbeat(&self, trial: TrialId, worker: &str, lease: Duration) -> Result<(), TuneError> {
        let lease = lease_secs(lease);
        self.write(|tx| {
            let changed = tx.execute(
                &format!(
                    "UPDATE trials SET lease_expires_at = {NOW} + $3::float8
                     WHERE id = $1 AND state = 'running' AND worker = $2"
                ),
                &[&trial, &worker, &lease],
            )?;
            if changed == 1 {
                return Ok(());
            }
            let (state, holder) = Self::state_of(tx, trial, "")?;
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
        let step = i64::from(step);
        self.write(|tx| {
            let (state, _) = Self::state_of(tx, trial, "FOR SHARE")?;
            if state == TrialState::Running.as_str() {
                tx.execute(
                    "INSERT INTO intermediate (trial_id, step, value, energy_j) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (trial_id, step) DO UPDATE SET value = EXCLUDED.value, energy_j = EXCLUDED.energy_j",
                    &[&trial, &step, &value, &energy_j],
                )?;
                return Ok(());
            }
            // A retry after the trial ended is harmless if it repeats what is stored.
            let stored = tx.query_opt(
                "SELECT value FROM intermediate WHERE trial_id = $1 AND step = $2",
                &[&trial, &step],
            )?;
            let stored: Option<Option<f64>> = stored.map(|r| r.try_get(0)).transpose()?;
            match stored {
                Some(v) if same_value(v.unwrap_or(f64::NAN), value) => Ok(()),
                _ => Err(not_running(trial, &state, "report intermediate values").into()),
            }
        })
    }

    fn finish_trial(&self, trial: TrialId, outcome: &TrialOutcome) -> Result<(), TuneError> {
        codec::validate_outcome(trial, outcome)?;
        self.write(|tx| {
            let row = Self::load_row(tx, trial, "FOR UPDATE")?;
            match finish_action(&row, outcome)? {
                FinishAction::AlreadyDone => Ok(()),
                FinishAction::Write {
                    values,
                    energy,
                    attrs,
                } => {
                    tx.execute(
                        &format!(
                            "UPDATE trials SET state = $2, values_json = $3, energy = $4, attrs = $5,
                             finished_at = {NOW}, lease_expires_at = NULL WHERE id = $1"
                        ),
                        &[&trial, &outcome.state.as_str(), &values, &energy, &attrs],
                    )?;
                    Ok(())
                }
            }
        })
    }

    fn trials(&self, study: StudyId) -> Result<Vec<Trial>, TuneError> {
        self.read(|tx| {
            let rows = tx.query(
                &format!("SELECT {TRIAL_COLUMNS} FROM trials WHERE study_id = $1 ORDER BY number"),
                &[&study],
            )?;
            if rows.is_empty() {
                // Only an empty answer needs telling an unknown study from one without trials
                // (a round trip saved on every history read of a running study).
                Self::check_study(tx, study)?;
                return Ok(Vec::new());
            }
            let mut trials = Vec::with_capacity(rows.len());
            for r in &rows {
                trials.push(trial_row(r)?.decode()?);
            }
            let rows = tx.query(
                "SELECT i.trial_id, i.step, i.value, i.energy_j FROM intermediate i
                 JOIN trials t ON t.id = i.trial_id WHERE t.study_id = $1 ORDER BY i.trial_id, i.step",
                &[&study],
            )?;
            let inter = rows
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?, r.try_get(3)?)))
                .collect::<Result<Vec<_>, postgres::Error>>()?;
            attach_intermediate(&mut trials, inter);
            Ok(trials)
        })
    }

    fn trial(&self, study: StudyId, trial: TrialId) -> Result<Trial, TuneError> {
        self.read(|tx| {
            let owner = tx
                .query_opt("SELECT study_id FROM trials WHERE id = $1", &[&trial])?
                .map(|r| r.try_get::<_, i64>(0))
                .transpose()?;
            if owner != Some(study) {
                return Err(TuneError::UnknownTrial(trial).into());
            }
            Self::load_trial(tx, trial)
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
            // SKIP LOCKED: a trial another worker is reaping (or finishing) right now is left
            // to it.
            let rows = tx.query(
                &format!(
                    "SELECT id, number, params, attrs, retry_of FROM trials
                     WHERE study_id = $1 AND state = 'running' AND lease_expires_at <= {NOW}
                     FOR UPDATE SKIP LOCKED"
                ),
                &[&study],
            )?;
            let mut lost = rows
                .iter()
                .map(|r| lost_row(r, LEASE_EXPIRED))
                .collect::<Result<Vec<_>, _>>()?;
            for g in gone {
                if lost.iter().any(|l| l.id == g.trial) {
                    continue;
                }
                let row = tx.query_opt(
                    "SELECT id, number, params, attrs, retry_of FROM trials
                     WHERE id = $1 AND study_id = $2 AND state = 'running' AND worker = $3
                     FOR UPDATE SKIP LOCKED",
                    &[&g.trial, &study, &g.worker],
                )?;
                if let Some(r) = row {
                    lost.push(lost_row(&r, &g.reason)?);
                }
            }
            let mut reaped = Vec::with_capacity(lost.len());
            for l in &lost {
                let retries: i64 = tx
                    .query_opt(
                        "SELECT count(*) FROM trials WHERE study_id = $1 AND retry_of = $2",
                        &[&study, &l.original()],
                    )?
                    .map(|r| r.try_get(0))
                    .transpose()?
                    .unwrap_or(0);
                let retried_as: Option<i64> = if l.retry(retries, max_retries) {
                    let row = tx
                        .query_opt(
                            "WITH n AS (UPDATE studies SET next_number = next_number + 1 WHERE id = $1
                                        RETURNING next_number - 1 AS number)
                             INSERT INTO trials (study_id, number, state, params, attrs, retry_of)
                             SELECT $1, n.number, 'waiting', $2, '{}', $3 FROM n
                             RETURNING number",
                            &[&study, &l.params, &l.original()],
                        )?
                        .ok_or_else(|| unknown_study(study))?;
                    Some(row.try_get(0)?)
                } else {
                    None
                };
                tx.execute(
                    &format!(
                        "UPDATE trials SET state = 'failed', attrs = $2, finished_at = {NOW},
                         lease_expires_at = NULL WHERE id = $1"
                    ),
                    &[&l.id, &l.attrs(retried_as)?],
                )?;
                reaped.push(l.reaped(retried_as));
            }
            Ok(reaped)
        })
    }
}

impl std::fmt::Debug for PostgresStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStorage")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}
