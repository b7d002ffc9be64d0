//! Helpers shared by the integration tests: fresh databases, the PostgreSQL URL, outcomes.
#![allow(dead_code)] // each test binary uses its own subset

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use greenlab_store::PostgresStorage;
use greenlab_tune::storage::Gone;
use greenlab_tune::{
    Params, Reaped, Storage, StudyId, StudyRecord, Trial, TrialId, TrialOutcome, TrialState,
    TuneError, Worker,
};

/// The variable that carries the test server's URL.
pub const POSTGRES_ENV: &str = "GREENLAB_TEST_POSTGRES_URL";

/// The test server's URL; fails the test (never skips it) when it is not set.
pub fn postgres_url() -> String {
    match std::env::var(POSTGRES_ENV) {
        Ok(url) if !url.trim().is_empty() => url,
        _ => panic!(
            "{POSTGRES_ENV} is not set: these tests need a PostgreSQL server. Start a throwaway \
             one with `source scripts/postgres-test.sh` (from the repository root; it exports \
             the variable) and run the tests again; stop it with `scripts/postgres-test.sh stop`."
        ),
    }
}

/// `url` pointing at database `name` instead (query parameters kept).
pub fn with_database(url: &str, name: &str) -> String {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    let (base, query) = match url.find('?') {
        Some(q) => (&url[..q], &url[q..]),
        None => (url, ""),
    };
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    format!("{}/{name}{query}", &base[..host_end])
}

static NEXT_DB: AtomicUsize = AtomicUsize::new(0);

/// A PostgreSQL database of its own, created on the test server and dropped afterwards, with
/// a [`PostgresStorage`] open on it (so every check starts from an empty storage).
pub struct TempPostgres {
    storage: Option<PostgresStorage>,
    admin_url: String,
    pub name: String,
    pub url: String,
}

impl TempPostgres {
    /// An empty database; `open` false leaves the storage unopened (for schema tests).
    pub fn create(open: bool) -> TempPostgres {
        let admin_url = postgres_url();
        let name = format!(
            "greenlab_t_{}_{}",
            std::process::id(),
            NEXT_DB.fetch_add(1, Ordering::Relaxed)
        );
        let mut admin = postgres::Client::connect(&admin_url, postgres::NoTls)
            .unwrap_or_else(|e| panic!("cannot reach the test server at {admin_url}: {e}"));
        // Two calls: several statements in one call run as one transaction, which
        // CREATE DATABASE refuses.
        admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {name}"))
            .expect("drop a stale test database");
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("create a test database");
        let url = with_database(&admin_url, &name);
        let storage = open.then(|| PostgresStorage::open(&url).expect("open the test database"));
        TempPostgres {
            storage,
            admin_url,
            name,
            url,
        }
    }

    fn s(&self) -> &PostgresStorage {
        match &self.storage {
            Some(s) => s,
            None => panic!("TempPostgres created without a storage"),
        }
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        // Close our connections first, then drop the database (FORCE ends stragglers).
        self.storage = None;
        if let Ok(mut admin) = postgres::Client::connect(&self.admin_url, postgres::NoTls) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

impl Storage for TempPostgres {
    fn create_study(&self, name: &str, spec_json: &str) -> Result<StudyRecord, TuneError> {
        self.s().create_study(name, spec_json)
    }
    fn list_studies(&self) -> Result<Vec<StudyRecord>, TuneError> {
        self.s().list_studies()
    }
    fn create_trial_for(
        &self,
        study: StudyId,
        worker: &Worker,
        lease: Duration,
    ) -> Result<Trial, TuneError> {
        self.s().create_trial_for(study, worker, lease)
    }
    fn enqueue_trial(&self, study: StudyId, params: &Params) -> Result<Trial, TuneError> {
        self.s().enqueue_trial(study, params)
    }
    fn claim_waiting_for(
        &self,
        study: StudyId,
        worker: &Worker,
        lease: Duration,
    ) -> Result<Option<Trial>, TuneError> {
        self.s().claim_waiting_for(study, worker, lease)
    }
    fn set_params(&self, trial: TrialId, params: &Params) -> Result<(), TuneError> {
        self.s().set_params(trial, params)
    }
    fn heartbeat(&self, trial: TrialId, worker: &str, lease: Duration) -> Result<(), TuneError> {
        self.s().heartbeat(trial, worker, lease)
    }
    fn report_intermediate(
        &self,
        trial: TrialId,
        step: u32,
        value: f64,
        energy_j: Option<f64>,
    ) -> Result<(), TuneError> {
        self.s().report_intermediate(trial, step, value, energy_j)
    }
    fn finish_trial(&self, trial: TrialId, outcome: &TrialOutcome) -> Result<(), TuneError> {
        self.s().finish_trial(trial, outcome)
    }
    fn trials(&self, study: StudyId) -> Result<Vec<Trial>, TuneError> {
        self.s().trials(study)
    }
    fn reap_lost(
        &self,
        study: StudyId,
        gone: &[Gone],
        max_retries: u32,
    ) -> Result<Vec<Reaped>, TuneError> {
        self.s().reap_lost(study, gone, max_retries)
    }
    fn study(&self, name: &str) -> Result<StudyRecord, TuneError> {
        self.s().study(name)
    }
    fn trial(&self, study: StudyId, trial: TrialId) -> Result<Trial, TuneError> {
        self.s().trial(study, trial)
    }
}

/// Fresh SQLite files in one temporary directory.
pub struct TempFiles {
    pub dir: tempfile::TempDir,
    next: AtomicUsize,
}

impl TempFiles {
    pub fn new() -> TempFiles {
        TempFiles {
            dir: tempfile::tempdir().expect("temporary directory"),
            next: AtomicUsize::new(0),
        }
    }

    /// A path that does not exist yet.
    pub fn fresh(&self) -> PathBuf {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        self.dir.path().join(format!("study-{n}.db"))
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// A complete outcome whose value is `value`, with energy.
pub use greenlab_tune::testing::complete_outcome as complete;

/// One float parameter.
pub fn lr(x: f64) -> Params {
    let mut p = Params::new();
    p.insert("lr".into(), greenlab_tune::ParamValue::Float(x));
    p
}

const HOUR: Duration = Duration::from_secs(3600);

/// Contract details beyond the shared suite, run on both backends: non-finite values, late
/// workers, retries, unknown studies.
pub fn check_details(s: &dyn Storage) {
    let st = s
        .create_study("details", r#"{"a": 1, "b": [1, 2]}"#)
        .expect("create");
    let same = s
        .create_study("details", r#"{ "b": [1,2], "a": 1 }"#)
        .expect("the same definition, spaced differently, is the same study");
    assert_eq!(st.id, same.id);
    assert!(matches!(
        s.create_trial(st.id + 1000, "w", HOUR),
        Err(TuneError::UnknownStudy(_))
    ));
    assert!(matches!(
        s.trials(st.id + 1000),
        Err(TuneError::UnknownStudy(_))
    ));

    // A diverged trial keeps its NaN and infinite values, in values and intermediates.
    let t = s.create_trial(st.id, "w", HOUR).expect("create");
    s.report_intermediate(t.id, 1, f64::NAN, Some(1.0))
        .expect("NaN intermediate");
    let diverged = TrialOutcome {
        state: TrialState::Diverged,
        values: Some(vec![f64::NAN, f64::INFINITY, f64::NEG_INFINITY]),
        energy: None,
        attrs: BTreeMap::new(),
    };
    s.finish_trial(t.id, &diverged).expect("finish diverged");
    s.finish_trial(t.id, &diverged)
        .expect("the same NaN outcome again is the same outcome");
    let back = s.trial(st.id, t.id).expect("trial");
    let v = back.values.expect("values kept");
    assert!(
        v[0].is_nan() && v[1] == f64::INFINITY && v[2] == f64::NEG_INFINITY,
        "{v:?}"
    );
    assert!(back.intermediate[0].value.is_nan());
    s.report_intermediate(t.id, 1, f64::NAN, Some(1.0))
        .expect("a retried report of a stored step is harmless after the end");

    // A worker whose lease ran out learns it when it finally reports.
    let late = s
        .create_trial(st.id, "slow", Duration::ZERO)
        .expect("create");
    assert_eq!(s.reap_expired(st.id).expect("reap"), 1);
    let err = s
        .finish_trial(late.id, &complete(0.9))
        .expect_err("late finish");
    assert!(
        matches!(&err, TuneError::TrialState { message, .. } if message.contains("lease expired")),
        "the late worker is told why: {err}"
    );
    assert!(s.report_intermediate(late.id, 1, 0.5, Some(1.0)).is_err());
    assert!(s.set_params(late.id, &lr(0.1)).is_err());

    // Parameters are set once.
    let t = s.create_trial(st.id, "w", HOUR).expect("create");
    s.set_params(t.id, &lr(0.1)).expect("set");
    assert!(matches!(
        s.set_params(t.id, &lr(0.2)),
        Err(TuneError::TrialState { .. })
    ));
    assert!(
        s.set_params(t.id, &lr(f64::NAN)).is_err(),
        "NaN parameters are refused"
    );

    // A waiting trial must be claimed before it can end; outcomes must be final.
    let w = s.enqueue_trial(st.id, &lr(0.3)).expect("enqueue");
    assert!(matches!(
        s.finish_trial(w.id, &complete(0.1)),
        Err(TuneError::TrialState { .. })
    ));
    let mut running = complete(0.1);
    running.state = TrialState::Running;
    assert!(matches!(
        s.finish_trial(t.id, &running),
        Err(TuneError::TrialState { .. })
    ));
    let mut no_values = complete(0.1);
    no_values.values = None;
    assert!(
        s.finish_trial(t.id, &no_values).is_err(),
        "complete needs values"
    );
    assert_eq!(
        s.trial(st.id, t.id).expect("trial").state,
        TrialState::Running,
        "refused outcomes change nothing"
    );
    assert!(matches!(
        s.trial(st.id + 1000, t.id),
        Err(TuneError::UnknownTrial(_))
    ));
}

/// 8 threads, each with its own handle from `open` on the same database, 50 trials each:
/// numbers 0..400, every outcome stored.
pub fn check_independent_handles(open: &(dyn Fn() -> Box<dyn Storage> + Sync)) {
    let first = open();
    let st = first.create_study("handles", "{}").expect("create");
    let numbers: Vec<u64> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..8)
            .map(|w| {
                scope.spawn(move || {
                    let s = open();
                    let worker = format!("t{w}");
                    (0..50)
                        .map(|_| {
                            let t = s.create_trial(st.id, &worker, HOUR).expect("create");
                            s.set_params(t.id, &lr(t.number as f64)).expect("params");
                            s.finish_trial(t.id, &complete(t.number as f64))
                                .expect("finish");
                            t.number
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|h| h.join().expect("worker thread panicked"))
            .collect()
    });
    let mut sorted = numbers.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        (0..400).collect::<Vec<u64>>(),
        "400 distinct numbers, none lost"
    );
    let trials = first.trials(st.id).expect("trials");
    assert_eq!(trials.len(), 400);
    assert!(
        trials
            .iter()
            .all(|t| t.state == TrialState::Complete && t.values == Some(vec![t.number as f64])),
        "every outcome stored with its own trial"
    );
}
