//! Storage throughput with 8 local workers on a trivial objective.
//!
//! Each worker thread loops `create_trial` → `set_params` → `finish_trial` (the storage calls
//! of one trial whose objective costs nothing), so trials per second measure the storage
//! alone. Runs on SQLite (a fresh temporary file) and, when `GREENLAB_TEST_POSTGRES_URL` is
//! set (see `scripts/postgres-test.sh`), on PostgreSQL; each with the 8 threads sharing one
//! storage handle (as `greenlab tune --workers 8` does) and with a handle per thread (as 8
//! worker processes would). Then the whole worker loop: a study of `8 × TRIALS_PER_WORKER`
//! trials run by `Study::run` with 8 worker threads and the TPE sampler on a trivial objective,
//! which adds what `greenlab tune --workers 8` does around the storage calls (reading the
//! history for each suggestion, leases and heartbeats, the stopping rules). Prints trials/s and
//! the ratio to the goal (90 trials/s) and to Optuna 5.0's SQLite storage measured on
//! the project machine (17 trials/s).
//!
//! `cargo bench -p greenlab-store --bench throughput [-- TRIALS_PER_WORKER]` (default 100).

use std::sync::Arc;
use std::time::{Duration, Instant};

use greenlab_store::{PostgresStorage, SqliteStorage};
use greenlab_tune::config::StudyConfig;
use greenlab_tune::study::{
    ObjectiveError, ObjectiveOutput, RunOptions, StopReason, Study, TrialContext,
};
use greenlab_tune::testing::complete_outcome;
use greenlab_tune::{ParamValue, Params, Storage};

const WORKERS: usize = 8;
const GOAL: f64 = 90.0;
const OPTUNA_SQLITE: f64 = 17.0;

/// Runs `per_worker` trials on each of 8 threads; `handle(i)` gives thread i its storage.
/// Returns trials per second.
fn measure(
    study_name: &str,
    per_worker: usize,
    handle: &(dyn Fn(usize) -> Arc<dyn Storage> + Sync),
) -> Result<f64, String> {
    let study = handle(0)
        .create_study(study_name, "{}")
        .map_err(|e| e.to_string())?;
    let handles: Vec<Arc<dyn Storage>> = (0..WORKERS).map(handle).collect();
    let start = Instant::now();
    std::thread::scope(|scope| {
        let threads: Vec<_> = handles
            .iter()
            .enumerate()
            .map(|(w, s)| {
                scope.spawn(move || -> Result<(), String> {
                    let worker = format!("bench-{w}");
                    for i in 0..per_worker {
                        let t = s
                            .create_trial(study.id, &worker, Duration::from_secs(60))
                            .map_err(|e| e.to_string())?;
                        let mut p = Params::new();
                        p.insert("x".into(), ParamValue::Float(i as f64));
                        s.set_params(t.id, &p).map_err(|e| e.to_string())?;
                        s.finish_trial(t.id, &complete_outcome(i as f64))
                            .map_err(|e| e.to_string())?;
                    }
                    Ok(())
                })
            })
            .collect();
        threads
            .into_iter()
            .try_for_each(|t| t.join().map_err(|_| "a worker panicked".to_string())?)
    })?;
    let elapsed = start.elapsed().as_secs_f64();
    let n = handles[0]
        .trials(study.id)
        .map_err(|e| e.to_string())?
        .len();
    if n != WORKERS * per_worker {
        return Err(format!(
            "expected {} trials, found {n}",
            WORKERS * per_worker
        ));
    }
    Ok(n as f64 / elapsed)
}

/// A whole study: `8 × per_worker` trials of TPE on `(x - 0.3)²` run by 8 worker threads of
/// `Study::run` sharing `storage`. Returns trials per second.
fn measure_study(name: &str, per_worker: usize, storage: Arc<dyn Storage>) -> Result<f64, String> {
    let n = WORKERS * per_worker;
    let config = StudyConfig::from_toml(&format!(
        "name = \"{name}\"\n[space]\nx = {{ type = \"float\", low = 0.0, high = 1.0 }}\n\
         [sampler]\nname = \"tpe\"\nseed = 1\n[stop]\nn_trials = {n}\n"
    ))
    .map_err(|e| e.to_string())?;
    let study = Study::create(Arc::clone(&storage), config).map_err(|e| e.to_string())?;
    let objective = |p: &Params, _: &mut TrialContext<'_>| {
        let x = p.get("x").and_then(ParamValue::as_f64).unwrap_or(0.0);
        Ok::<_, ObjectiveError>(ObjectiveOutput {
            metrics: [("accuracy".to_string(), 1.0 - (x - 0.3).powi(2))].into(),
            energy: None,
            diverged: false,
        })
    };
    let options = RunOptions {
        workers: WORKERS,
        worker_prefix: format!("bench-{}", std::process::id()),
        ..Default::default()
    };
    let start = Instant::now();
    let summary = study
        .run(Arc::new(objective), &options)
        .map_err(|e| e.to_string())?;
    let elapsed = start.elapsed().as_secs_f64();
    if summary.stop != StopReason::TrialLimit(n as u64) {
        return Err(format!("the study stopped early: {:?}", summary.stop));
    }
    let done = study.trials().map_err(|e| e.to_string())?.len();
    if done != n {
        return Err(format!("expected {n} trials, found {done}"));
    }
    Ok(n as f64 / elapsed)
}

fn report(label: &str, result: Result<f64, String>) {
    match result {
        Ok(rate) => println!(
            "{label:<44} {rate:>9.1} trials/s   {:>6.2}x goal (90/s)   {:>6.2}x Optuna SQLite (17/s)",
            rate / GOAL,
            rate / OPTUNA_SQLITE
        ),
        Err(e) => println!("{label:<44} failed: {e}"),
    }
}

fn main() {
    let per_worker: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(100);
    println!(
        "storage throughput: {WORKERS} worker threads x {per_worker} trials (create_trial, set_params, finish_trial)"
    );
    let dir = match tempfile::tempdir() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("cannot create a temporary directory: {e}");
            std::process::exit(1);
        }
    };

    let path = dir.path().join("shared.db");
    report(
        "sqlite, one shared handle",
        SqliteStorage::open(&path)
            .map_err(|e| e.to_string())
            .and_then(|s| {
                let s: Arc<dyn Storage> = Arc::new(s);
                measure("bench", per_worker, &|_| Arc::clone(&s))
            }),
    );
    let path = dir.path().join("study.db");
    report(
        "sqlite, Study::run (8 threads, TPE)",
        SqliteStorage::open(&path)
            .map_err(|e| e.to_string())
            .and_then(|s| measure_study("bench-study", per_worker, Arc::new(s))),
    );
    let path = dir.path().join("separate.db");
    report(
        "sqlite, a handle per worker",
        measure("bench", per_worker, &|_| match SqliteStorage::open(&path) {
            Ok(s) => Arc::new(s),
            Err(e) => panic!("open {}: {e}", path.display()),
        }),
    );

    match std::env::var("GREENLAB_TEST_POSTGRES_URL") {
        Ok(url) => {
            let name = format!(
                "bench-{}-{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis())
            );
            report(
                "postgresql, one shared handle",
                PostgresStorage::open(&url)
                    .map_err(|e| e.to_string())
                    .and_then(|s| {
                        let s: Arc<dyn Storage> = Arc::new(s);
                        measure(&format!("{name}-shared"), per_worker, &|_| Arc::clone(&s))
                    }),
            );
            report(
                "postgresql, a handle per worker",
                measure(
                    &format!("{name}-separate"),
                    per_worker,
                    &|_| match PostgresStorage::open(&url) {
                        Ok(s) => Arc::new(s),
                        Err(e) => panic!("{e}"),
                    },
                ),
            );
            report(
                "postgresql, Study::run (8 threads, TPE)",
                PostgresStorage::open(&url)
                    .map_err(|e| e.to_string())
                    .and_then(|s| measure_study(&format!("{name}-study"), per_worker, Arc::new(s))),
            );
        }
        Err(_) => println!(
            "postgresql: skipped (set GREENLAB_TEST_POSTGRES_URL, e.g. `source scripts/postgres-test.sh`)"
        ),
    }
}
