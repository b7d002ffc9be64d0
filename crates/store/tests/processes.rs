//! Workers as separate operating-system processes on one study: dense numbering under
//! contention, and a worker killed with SIGKILL mid-trial.
//!
//! This file has its own `main` (`harness = false` in Cargo.toml) because it starts itself as
//! the worker: `processes worker URL STUDY run N` runs N trivial trials and prints their
//! numbers; `processes worker URL STUDY hold K LEASE_MS` completes K trials, then starts one,
//! prints `holding ID NUMBER` and keeps renewing its lease until it is killed. Without the
//! `worker` argument it runs the scenarios below, each on SQLite and on PostgreSQL (the latter
//! needs `GREENLAB_TEST_POSTGRES_URL`; see `scripts/postgres-test.sh`), and exits non-zero if
//! any fails.

mod common;

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::{Child, Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use common::{TempFiles, TempPostgres, complete, lr};
use greenlab_store::LEASE_EXPIRED;
use greenlab_tune::process::{Liveness, ProcessTable};
use greenlab_tune::storage::{Gone, process_gone_reason};
use greenlab_tune::{TrialState, TuneError, Worker};

const WORKERS: usize = 8;
const TRIALS_PER_WORKER: u64 = 50;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("worker") {
        return worker(&args[2..]);
    }
    // Like libtest: the first argument that is not a flag filters tests by name.
    let filter = args.iter().skip(1).find(|a| !a.starts_with('-')).cloned();
    let tests: [(&str, fn()); 7] = [
        ("sqlite_eight_processes_number_400_trials_densely", || {
            let files = TempFiles::new();
            eight_processes(&sqlite_url(&files));
        }),
        (
            "sqlite_a_killed_worker_loses_only_its_running_trial",
            || {
                let files = TempFiles::new();
                killed_worker(&sqlite_url(&files));
            },
        ),
        (
            "sqlite_relative_url_is_relative_to_the_working_directory",
            relative_url,
        ),
        (
            "sqlite_a_killed_local_worker_is_reaped_without_waiting",
            || {
                let files = TempFiles::new();
                killed_local_worker(&sqlite_url(&files));
            },
        ),
        (
            "postgres_a_killed_local_worker_is_reaped_without_waiting",
            || {
                let db = TempPostgres::create(false);
                killed_local_worker(&db.url);
            },
        ),
        ("postgres_eight_processes_number_400_trials_densely", || {
            let db = TempPostgres::create(false);
            eight_processes(&db.url);
        }),
        (
            "postgres_a_killed_worker_loses_only_its_running_trial",
            || {
                let db = TempPostgres::create(false);
                killed_worker(&db.url);
            },
        ),
    ];
    let mut failed = Vec::new();
    let mut ran = 0;
    for (name, test) in tests {
        if filter.as_ref().is_some_and(|f| !name.contains(f.as_str())) {
            continue;
        }
        ran += 1;
        let ok = catch_unwind(AssertUnwindSafe(test)).is_ok();
        println!("test {name} ... {}", if ok { "ok" } else { "FAILED" });
        if !ok {
            failed.push(name);
        }
    }
    println!(
        "\ntest result: {}. {} passed; {} failed",
        if failed.is_empty() { "ok" } else { "FAILED" },
        ran - failed.len(),
        failed.len()
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        for name in failed {
            println!("    {name}");
        }
        ExitCode::FAILURE
    }
}

fn sqlite_url(files: &TempFiles) -> String {
    format!("sqlite://{}", files.fresh().display())
}

/// The worker side: see the module documentation.
fn worker(args: &[String]) -> ExitCode {
    let run = || -> Result<(), TuneError> {
        let [url, study, mode, rest @ ..] = args else {
            return Err(TuneError::InvalidConfig(format!(
                "bad worker arguments {args:?}"
            )));
        };
        let number = |i: usize| -> Result<u64, TuneError> {
            rest.get(i)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| TuneError::InvalidConfig(format!("bad worker arguments {args:?}")))
        };
        let s = greenlab_store::open(url)?;
        let study = s.study(study)?;
        let me = format!("pid-{}", std::process::id());
        let long = Duration::from_secs(600);
        let trivial_trial = |lease: Duration| -> Result<u64, TuneError> {
            let t = s.create_trial(study.id, &me, lease)?;
            s.set_params(t.id, &lr(t.number as f64))?;
            s.finish_trial(t.id, &complete(t.number as f64))?;
            Ok(t.number)
        };
        match mode.as_str() {
            "run" => {
                for _ in 0..number(0)? {
                    println!("{}", trivial_trial(long)?);
                }
                Ok(())
            }
            "hold" | "hold-local" => {
                for _ in 0..number(0)? {
                    trivial_trial(long)?;
                }
                let lease = Duration::from_millis(number(1)?);
                // `hold-local` says who it is, so a worker on this machine can tell it died.
                let worker = Worker {
                    name: me.clone(),
                    process: (mode == "hold-local")
                        .then(|| ProcessTable::new("/proc").current("this-host")),
                };
                let t = s.create_trial_for(study.id, &worker, lease)?;
                s.set_params(t.id, &lr(-1.0))?;
                s.report_intermediate(t.id, 1, 0.25, Some(4.0))?;
                println!("holding {} {}", t.id, t.number);
                // Renew the lease like a live worker until the parent kills us.
                loop {
                    std::thread::sleep(lease / 4);
                    s.heartbeat(t.id, &me, lease)?;
                }
            }
            other => Err(TuneError::InvalidConfig(format!(
                "unknown worker mode {other}"
            ))),
        }
    };
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("worker {}: {e}", std::process::id());
            ExitCode::FAILURE
        }
    }
}

fn spawn_worker(url: &str, study: &str, mode: &[&str]) -> Child {
    let exe = std::env::current_exe().expect("path of this test binary");
    Command::new(exe)
        .args(["worker", url, study])
        .args(mode)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn a worker process")
}

/// 8 worker processes × 50 trials on one study: numbers 0..400, each once, none lost, and no
/// worker ever failed (in particular, never with "database is locked").
fn eight_processes(url: &str) {
    let s = greenlab_store::open(url).expect("open");
    let study = s.create_study("processes", "{}").expect("create");
    let children: Vec<Child> = (0..WORKERS)
        .map(|_| spawn_worker(url, &study.name, &["run", &TRIALS_PER_WORKER.to_string()]))
        .collect();
    let mut numbers = Vec::new();
    for child in children {
        let out = child.wait_with_output().expect("wait for a worker");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "a worker failed ({}): {stderr}",
            out.status
        );
        assert!(
            !stderr.contains("locked"),
            "a worker saw a lock error: {stderr}"
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let mine: Vec<u64> = stdout
            .lines()
            .map(|l| l.trim().parse().expect("a trial number per line"))
            .collect();
        assert_eq!(mine.len() as u64, TRIALS_PER_WORKER);
        numbers.extend(mine);
    }
    let distinct: BTreeSet<u64> = numbers.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        numbers.len(),
        "a trial number was handed out twice"
    );
    let all = WORKERS as u64 * TRIALS_PER_WORKER;
    assert_eq!(distinct, (0..all).collect(), "numbers 0..{all}, none lost");
    let trials = s.trials(study.id).expect("trials");
    assert_eq!(trials.len() as u64, all);
    for t in &trials {
        assert_eq!(t.state, TrialState::Complete, "trial {}", t.number);
        assert_eq!(t.values, Some(vec![t.number as f64]), "trial {}", t.number);
    }
}

/// A worker completes 3 trials, starts a 4th with a 300 ms lease and is killed with SIGKILL.
/// After the lease expires the 4th is failed (reason recorded, intermediate values and
/// parameters kept), the first 3 are intact, and a new worker continues at number 4.
fn killed_worker(url: &str) {
    let s = greenlab_store::open(url).expect("open");
    let study = s.create_study("kill", "{}").expect("create");
    let mut child = spawn_worker(url, &study.name, &["hold", "3", "300"]);
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read the worker's output");
    let held: Vec<i64> = line
        .strip_prefix("holding ")
        .map(|rest| {
            rest.split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    if held.len() != 2 {
        let _ = child.kill();
        let out = child.wait_with_output().expect("wait");
        panic!(
            "the worker did not report its trial (said {line:?}): {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let (held_id, held_number) = (held[0], held[1] as u64);
    assert_eq!(held_number, 3);
    assert_eq!(
        s.trial(study.id, held_id).expect("held trial").state,
        TrialState::Running,
        "the trial runs while its worker lives"
    );
    child.kill().expect("SIGKILL the worker");
    child.wait().expect("reap the worker process");

    // Poll until the lease has run out and the trial is reaped, bounded by a deadline.
    let deadline = Instant::now() + Duration::from_secs(60);
    let reaped = loop {
        let n = s.reap_expired(study.id).expect("reap");
        if n > 0 {
            break n;
        }
        assert!(
            Instant::now() < deadline,
            "the killed worker's lease never expired"
        );
        std::thread::sleep(Duration::from_millis(25));
    };
    assert_eq!(reaped, 1, "only the killed worker's trial is reaped");

    let trials = s.trials(study.id).expect("trials");
    assert_eq!(trials.len(), 4);
    for t in &trials[..3] {
        assert_eq!(
            t.state,
            TrialState::Complete,
            "completed trial {} intact",
            t.number
        );
        assert_eq!(t.values, Some(vec![t.number as f64]));
        assert_eq!(t.params, lr(t.number as f64));
    }
    let lost = &trials[3];
    assert_eq!(lost.id, held_id);
    assert_eq!(lost.state, TrialState::Failed);
    assert_eq!(
        lost.attrs.get("error").and_then(|v| v.as_str()),
        Some(LEASE_EXPIRED)
    );
    assert_eq!(lost.params, lr(-1.0), "its parameters are kept");
    assert_eq!(
        lost.intermediate.len(),
        1,
        "its intermediate values are kept"
    );
    assert!(lost.finished_at.is_some());

    let next = s
        .create_trial(study.id, "successor", Duration::from_secs(60))
        .expect("a new worker continues");
    assert_eq!(next.number, 4, "numbering continues after the lost trial");
    s.finish_trial(next.id, &complete(4.0)).expect("finish");
}

/// A worker that said who it is (host, pid, process identity) holds a trial with a ten-minute
/// lease and is killed with SIGKILL: a worker on the same machine sees at once that its process
/// is gone, reaps the trial without waiting for the lease, and its parameters run again.
fn killed_local_worker(url: &str) {
    let s = greenlab_store::open(url).expect("open");
    let study = s.create_study("kill-local", "{}").expect("create");
    let mut child = spawn_worker(url, &study.name, &["hold-local", "2", "600000"]);
    let stdout = child.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read the worker's output");
    assert!(line.starts_with("holding "), "the worker said {line:?}");
    let table = ProcessTable::new("/proc");
    let held = s
        .trials(study.id)
        .expect("trials")
        .into_iter()
        .find(|t| t.state == TrialState::Running)
        .expect("the held trial");
    let process = held.process.clone().expect("the lease names its process");
    assert_eq!(process.pid, child.id());
    assert_eq!(process.host, "this-host");
    assert_eq!(table.liveness(&process), Liveness::Alive);
    child.kill().expect("SIGKILL the worker");
    child.wait().expect("reap the worker process");
    assert_eq!(table.liveness(&process), Liveness::Gone);
    let started = Instant::now();
    let gone = Gone {
        trial: held.id,
        worker: held.worker.clone().expect("worker name"),
        reason: process_gone_reason(Some(&process)),
    };
    let reaped = s.reap_lost(study.id, &[gone], 2).expect("reap");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "reaped without waiting for the lease"
    );
    assert_eq!(reaped.len(), 1);
    let retry = reaped[0].retried_as.expect("its parameters run again");
    let trials = s.trials(study.id).expect("trials");
    assert_eq!(trials.len(), 4, "2 complete, the lost one, its retry");
    let lost = trials.iter().find(|t| t.id == held.id).expect("lost");
    assert!(lost.was_lost());
    assert_eq!(lost.retried_as(), Some(retry));
    let r = trials.iter().find(|t| t.number == retry).expect("retry");
    assert_eq!(r.state, TrialState::Waiting);
    assert_eq!(r.params, lr(-1.0));
    assert_eq!(r.retry_of, Some(held.number));
    for t in trials.iter().filter(|t| t.number < 2) {
        assert_eq!(t.state, TrialState::Complete, "completed trials intact");
    }
}

/// `sqlite://name.db` is relative to the working directory.
fn relative_url() {
    let files = TempFiles::new();
    let before = std::env::current_dir().expect("cwd");
    std::env::set_current_dir(files.path()).expect("cd");
    let result = catch_unwind(|| {
        let s = greenlab_store::open("sqlite://relative-study.db").expect("relative URL");
        s.create_study("r", "{}").expect("create");
    });
    std::env::set_current_dir(before).expect("cd back");
    assert!(result.is_ok());
    assert!(files.path().join("relative-study.db").is_file());
}
