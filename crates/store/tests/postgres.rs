//! `PostgresStorage` against the storage contract on a real server. The server's URL comes
//! from `GREENLAB_TEST_POSTGRES_URL` (start one with `source scripts/postgres-test.sh`); when it
//! is unset these tests fail, they never skip. Each check gets a database of its own.

mod common;

use common::{TempPostgres, check_details, check_independent_handles};
use greenlab_store::PostgresStorage;
use greenlab_store::schema::SCHEMA_VERSION;
use greenlab_tune::{Storage, TuneError};

#[test]
fn passes_the_conformance_suite() {
    greenlab_tune::testing::check_storage(&|| Box::new(TempPostgres::create(true)));
}

#[test]
fn passes_the_detail_checks() {
    check_details(&TempPostgres::create(true));
}

#[test]
fn eight_threads_with_their_own_pools_number_400_trials_densely() {
    let db = TempPostgres::create(true);
    let url = db.url.clone();
    check_independent_handles(&|| Box::new(PostgresStorage::open(&url).expect("open")));
}

#[test]
fn opening_twice_migrates_once_and_sees_the_same_data() {
    let db = TempPostgres::create(true);
    let st = db.create_study("shared", "{}").expect("create");
    let second = greenlab_store::open(&db.url).expect("open() on the same database");
    assert_eq!(second.study("shared").expect("study"), st);
    let mut admin = postgres::Client::connect(&db.url, postgres::NoTls).expect("connect");
    let rows = admin
        .query("SELECT version FROM greenlab_schema", &[])
        .expect("schema table");
    assert_eq!(rows.len() as i64, SCHEMA_VERSION, "one row per migration");
}

#[test]
fn a_schema_from_a_newer_greenlab_is_refused() {
    let db = TempPostgres::create(true);
    let newer = SCHEMA_VERSION + 1;
    let mut admin = postgres::Client::connect(&db.url, postgres::NoTls).expect("connect");
    admin
        .execute(
            "INSERT INTO greenlab_schema (version, applied_at) VALUES ($1, 0)",
            &[&newer],
        )
        .expect("pretend a newer greenlab migrated");
    match PostgresStorage::open(&db.url) {
        Err(TuneError::SchemaTooNew { found, supported }) => {
            assert_eq!((found, supported), (newer, SCHEMA_VERSION));
        }
        other => panic!("expected SchemaTooNew, got {other:?}"),
    }
}

#[test]
fn tables_of_another_application_are_refused() {
    let db = TempPostgres::create(false);
    let mut admin = postgres::Client::connect(&db.url, postgres::NoTls).expect("connect");
    admin
        .batch_execute("CREATE TABLE trials (patient TEXT)")
        .expect("foreign table");
    let err = PostgresStorage::open(&db.url).expect_err("not ours");
    assert!(err.to_string().contains("did not create"), "{err}");
}

#[test]
fn a_wrong_database_name_is_a_clear_error_naming_the_url() {
    let url = common::with_database(&common::postgres_url(), "greenlab_no_such_db");
    let err = PostgresStorage::open(&url).expect_err("no such database");
    let msg = err.to_string();
    assert!(msg.contains("greenlab_no_such_db"), "{msg}");
    assert!(msg.contains("cannot connect to PostgreSQL"), "{msg}");
}
