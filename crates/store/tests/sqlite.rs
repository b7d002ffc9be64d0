//! `SqliteStorage` against the storage contract, plus what only a file can get wrong:
//! reopening, schema versions, foreign and corrupt files.

mod common;

use std::time::Duration;

use common::{TempFiles, check_details, check_independent_handles, complete, lr};
use greenlab_store::SqliteStorage;
use greenlab_store::schema::SCHEMA_VERSION;
use greenlab_tune::{Storage, TrialState, TuneError};

#[test]
fn passes_the_conformance_suite() {
    let files = TempFiles::new();
    greenlab_tune::testing::check_storage(&|| {
        Box::new(SqliteStorage::open(files.fresh()).expect("open a fresh database"))
    });
}

#[test]
fn passes_the_detail_checks() {
    let files = TempFiles::new();
    check_details(&SqliteStorage::open(files.fresh()).expect("open"));
}

#[test]
fn eight_threads_with_their_own_connections_number_400_trials_densely() {
    let files = TempFiles::new();
    let path = files.fresh();
    check_independent_handles(&|| Box::new(SqliteStorage::open(&path).expect("open")));
}

#[test]
fn a_reopened_database_keeps_everything_and_continues_numbering() {
    let files = TempFiles::new();
    let path = files.fresh();
    let (study, done) = {
        let s = SqliteStorage::open(&path).expect("open");
        let study = s.create_study("keep", r#"{"x":1}"#).expect("create");
        let t = s
            .create_trial(study.id, "w", Duration::from_secs(60))
            .expect("trial");
        s.set_params(t.id, &lr(0.01)).expect("params");
        s.report_intermediate(t.id, 1, 0.5, Some(2.0))
            .expect("report");
        s.finish_trial(t.id, &complete(0.75)).expect("finish");
        s.enqueue_trial(study.id, &lr(0.02)).expect("enqueue");
        let done = s.trial(study.id, t.id).expect("trial");
        (study, done)
    };
    let s = SqliteStorage::open(&path).expect("reopen");
    assert_eq!(s.study("keep").expect("study"), study);
    let trials = s.trials(study.id).expect("trials");
    assert_eq!(
        trials[0], done,
        "a finished trial survives reopening unchanged"
    );
    assert_eq!(trials[1].state, TrialState::Waiting);
    assert_eq!(trials[1].params, lr(0.02));
    let next = s
        .create_trial(study.id, "w", Duration::from_secs(60))
        .expect("trial");
    assert_eq!(next.number, 2);
}

#[test]
fn a_version_1_database_migrates_and_keeps_its_energy() {
    let files = TempFiles::new();
    let path = files.fresh();
    {
        // A database as greenlab with schema version 1 wrote it: energy_j NOT NULL and the
        // energy record with a plain number as total.
        let raw = rusqlite::Connection::open(&path).expect("raw open");
        raw.execute_batch(
            "CREATE TABLE greenlab_schema (version INTEGER NOT NULL, applied_at REAL NOT NULL)",
        )
        .expect("schema table");
        raw.execute_batch(greenlab_store::schema::SQLITE_MIGRATIONS[0].1)
            .expect("version 1");
        raw.execute_batch(
            r#"INSERT INTO greenlab_schema VALUES (1, 0);
               INSERT INTO studies (id, name, spec_json, created_at, next_number)
                   VALUES (1, 'old', '{}', 0, 1);
               INSERT INTO trials (id, study_id, number, state, params, values_json, energy)
                   VALUES (1, 1, 0, 'complete', '{}', '[0.5]',
                   '{"total":12.5,"source":"counter","duration":1.5,"domains":[["psys",12.5,"counter"]]}');
               INSERT INTO intermediate VALUES (1, 1, 0.4, 6.0);"#,
        )
        .expect("old rows");
    }
    let s = SqliteStorage::open(&path).expect("migrates");
    let study = s.study("old").expect("study");
    let t = &s.trials(study.id).expect("trials")[0];
    let e = t.energy.as_ref().expect("energy");
    assert_eq!(e.total, Some(greenlab_meter::Joules(12.5)));
    assert_eq!(e.attributed, None, "version 1 knew no attribution");
    assert_eq!(t.intermediate[0].energy, Some(greenlab_meter::Joules(6.0)));
    let live = s
        .create_trial(study.id, "w", Duration::from_secs(60))
        .expect("trial");
    s.report_intermediate(live.id, 1, 0.5, None)
        .expect("NULL energy is accepted after the migration");
}

#[test]
fn a_schema_from_a_newer_greenlab_is_refused_and_left_alone() {
    let files = TempFiles::new();
    let path = files.fresh();
    {
        let s = SqliteStorage::open(&path).expect("open");
        s.create_study("old", "{}").expect("create");
    }
    let newer = SCHEMA_VERSION + 3;
    {
        let raw = rusqlite::Connection::open(&path).expect("raw open");
        raw.execute(
            "INSERT INTO greenlab_schema (version, applied_at) VALUES (?1, 0)",
            [newer],
        )
        .expect("pretend a newer greenlab migrated");
    }
    let before = std::fs::read(&path).expect("read");
    match SqliteStorage::open(&path) {
        Err(TuneError::SchemaTooNew { found, supported }) => {
            assert_eq!((found, supported), (newer, SCHEMA_VERSION));
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
    let err = greenlab_store::open(&format!("sqlite://{}", path.display()))
        .err()
        .expect("open() refuses it too");
    assert!(err.to_string().contains("upgrade greenlab"), "{err}");
    assert_eq!(
        std::fs::read(&path).expect("read"),
        before,
        "the file is untouched"
    );
}

#[test]
fn a_file_that_is_not_a_database_gets_a_clear_error_and_is_not_modified() {
    let files = TempFiles::new();
    let path = files.path().join("notes.db");
    let junk: Vec<u8> = (0..8192u32).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(&path, &junk).expect("write junk");
    let err = SqliteStorage::open(&path).expect_err("junk is not a database");
    let msg = err.to_string();
    assert!(
        msg.contains(&path.display().to_string()),
        "names the file: {msg}"
    );
    assert!(msg.contains("not a greenlab study database"), "{msg}");
    assert_eq!(std::fs::read(&path).expect("read"), junk, "nothing lost");
}

#[test]
fn another_applications_database_is_refused_and_not_modified() {
    let files = TempFiles::new();
    let path = files.fresh();
    {
        let raw = rusqlite::Connection::open(&path).expect("raw open");
        raw.execute_batch("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL); INSERT INTO invoices VALUES (1, 9.5);")
            .expect("foreign schema");
    }
    let err = SqliteStorage::open(&path).expect_err("not ours");
    assert!(err.to_string().contains("another application"), "{err}");
    let raw = rusqlite::Connection::open(&path).expect("raw open");
    let tables: i64 = raw
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
            [],
            |r| r.get(0),
        )
        .expect("count tables");
    assert_eq!(tables, 1, "no greenlab tables were added");
}

#[test]
fn a_missing_directory_or_a_directory_path_is_a_clear_error() {
    let files = TempFiles::new();
    let missing = files.path().join("no/such/dir/study.db");
    let err = SqliteStorage::open(&missing).expect_err("missing directory");
    assert!(
        err.to_string().contains("does not exist; create it first"),
        "{err}"
    );
    let err = SqliteStorage::open(files.path()).expect_err("a directory");
    assert!(err.to_string().contains("is a directory"), "{err}");
}

#[test]
fn the_file_is_in_wal_mode() {
    let files = TempFiles::new();
    let path = files.fresh();
    let _s = SqliteStorage::open(&path).expect("open");
    let raw = rusqlite::Connection::open(&path).expect("raw open");
    let mode: String = raw
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("journal mode");
    assert_eq!(mode, "wal");
}
