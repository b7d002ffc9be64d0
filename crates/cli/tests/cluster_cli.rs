//! Studies on real clusters, end to end with the `greenlab` binary: a `greenlab tune` killed
//! with SIGKILL and run again (SQLite and PostgreSQL), the Slurm recipe's worker lines against
//! the loopback PostgreSQL, workers that refuse commands they were not given, passwords kept
//! out of every output, and the Optuna export opened by the real Optuna.
//!
//! PostgreSQL tests need `GREENLAB_TEST_POSTGRES_URL` (`source scripts/postgres-test.sh`); the
//! Optuna test needs `GREENLAB_OPTUNA_PYTHON` (`source scripts/setup-optuna.sh`). Unset, they
//! fail with what to run; they never skip.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

mod common;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_greenlab")
}

fn greenlab(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .output()
        .expect("the greenlab binary runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn postgres_url() -> String {
    match std::env::var("GREENLAB_TEST_POSTGRES_URL") {
        Ok(u) if !u.trim().is_empty() => u,
        _ => panic!(
            "GREENLAB_TEST_POSTGRES_URL is not set: start a throwaway server with \
             `source scripts/postgres-test.sh` and run the tests again"
        ),
    }
}

/// A study name no other run of these tests uses (PostgreSQL tests share one database).
fn unique(prefix: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{prefix}-{}-{nanos}", std::process::id())
}

fn write_config(dir: &Path, name: &str, n_trials: u64, extra: &str) -> String {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            r#"name = "{name}"
[space]
x = {{ type = "float", low = -1.0, high = 1.0 }}
opt = {{ type = "categorical", choices = ["adam", "sgd"] }}
[sampler]
name = "random"
seed = 3
[stop]
n_trials = {n_trials}
{extra}"#
        ),
    )
    .unwrap();
    path.to_string_lossy().into_owned()
}

/// Every trial of a study, from `greenlab study export --format json`.
fn export(storage: &str, study: &str) -> Vec<serde_json::Value> {
    let out = greenlab(&[
        "study",
        "export",
        "--storage",
        storage,
        "--study",
        study,
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    doc["trials"].as_array().unwrap().clone()
}

const SLOW_OBJECTIVE: &str = "sleep 0.2; echo \"{\\\"accuracy\\\": {x}}\"";

/// The issue's sequence: `greenlab tune` (3 workers, 40 trials, an external command) killed
/// with SIGKILL — its whole process group, as a scheduler does — a few trials in, then the same
/// command run again at once. The lease is long (10 min): the rerun must not wait for it.
fn kill_then_rerun(storage: &str, study: &str) {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), study, 40, "");
    let args = [
        "tune",
        "--config",
        &config,
        "--storage",
        storage,
        "--workers",
        "3",
        "--meter",
        "estimate",
        "--lease-s",
        "600",
        "--",
        "sh",
        "-c",
        SLOW_OBJECTIVE,
    ];
    let mut first = Command::new(bin())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap();
    // Wait (on the progress lines, not a clock) until a few trials completed.
    let mut completed = 0;
    let mut seen = Vec::new();
    for line in BufReader::new(first.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        if line.starts_with("trial") && line.contains(" complete ") {
            completed += 1;
        }
        seen.push(line);
        if completed == 4 {
            break;
        }
    }
    assert_eq!(
        completed,
        4,
        "the first run did not get going:\n{}",
        seen.join("\n")
    );
    // SAFETY: kill(2) on the process group we started.
    unsafe {
        libc::kill(-(first.id() as libc::pid_t), libc::SIGKILL);
    }
    first.wait().unwrap();
    let killed = export(storage, study);
    let running = killed.iter().filter(|t| t["state"] == "running").count();
    assert!(running >= 1, "the kill caught trials running: {killed:?}");

    let started = Instant::now();
    let out = greenlab(&args);
    let elapsed = started.elapsed();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        elapsed < Duration::from_secs(120),
        "the rerun took {elapsed:?}: it waited for leases"
    );
    let trials = export(storage, study);
    let numbers: BTreeSet<u64> = trials
        .iter()
        .map(|t| t["number"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers.len(), trials.len(), "no trial number twice");
    let complete = trials.iter().filter(|t| t["state"] == "complete").count();
    assert!(complete >= 40, "{complete} complete: {}", text(&out.stdout));
    let lost: Vec<&serde_json::Value> = trials
        .iter()
        .filter(|t| t["attrs"]["lost"] == serde_json::json!(true))
        .collect();
    assert_eq!(
        lost.len(),
        running,
        "exactly the trials running at the kill were lost"
    );
    for l in &lost {
        assert!(
            l["attrs"]["error"].as_str().unwrap().contains("is gone"),
            "reaped because the process is gone, not by lease: {l}"
        );
        if l["params"].as_object().is_some_and(|p| !p.is_empty()) {
            let retry = l["attrs"]["retried_as"].as_u64().expect("retried");
            let r = trials.iter().find(|t| t["number"] == retry).unwrap();
            assert_eq!(r["retry_of"], l["number"]);
            assert_eq!(r["params"], l["params"]);
            assert_eq!(r["state"], "complete");
        }
    }
    assert!(
        trials.iter().all(|t| t["state"] != "running"),
        "nothing left running"
    );
}

#[test]
fn a_killed_tune_resumes_at_once_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("kill.db").display());
    kill_then_rerun(&db, "kill");
}

#[test]
fn a_killed_tune_resumes_at_once_on_postgres() {
    kill_then_rerun(&postgres_url(), &unique("kill"));
}

#[test]
fn a_worker_runs_only_the_command_its_user_gave() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("w.db").display());
    let config = write_config(dir.path(), "w", 2, "");
    let out = greenlab(&[
        "study",
        "create",
        "--config",
        &config,
        "--storage",
        &db,
        "--",
        "sh",
        "-c",
        "echo \"{\\\"accuracy\\\": {x}}\"",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let base = [
        "worker",
        "--storage",
        &db,
        "--study",
        "w",
        "--meter",
        "estimate",
    ];
    let refused = greenlab(&base);
    assert!(!refused.status.success());
    let err = text(&refused.stderr);
    assert!(
        err.contains("--trust-stored-command") && err.contains("sh -c"),
        "{err}"
    );
    let mut other = base.to_vec();
    other.extend(["--", "sh", "-c", "echo pwned"]);
    let out = greenlab(&other);
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("not the command stored"));
    assert!(export(&db, "w").is_empty(), "nothing ran");

    let mut same = base.to_vec();
    same.extend(["--", "sh", "-c", "echo \"{\\\"accuracy\\\": {x}}\""]);
    let out = greenlab(&same);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("worker will run: sh -c"),
        "the worker prints what it runs: {}",
        text(&out.stderr)
    );
    let mut trusted = base.to_vec();
    trusted.push("--trust-stored-command");
    assert!(greenlab(&trusted).status.success());
    let trials = export(&db, "w");
    assert_eq!(trials.len(), 2);
    assert!(trials.iter().all(|t| t["state"] == "complete"));
}

/// Runs the Slurm recipe's script (its worker lines, no Slurm) as array task `task` on node
/// `node` with `gpus` GPUs.
fn slurm_task(url: &str, study: &str, task: usize, node: &str, gpus: usize) -> std::process::Child {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/slurm/greenlab-worker.sbatch");
    Command::new("bash")
        .arg(script)
        .args([
            "sh",
            "-c",
            "sleep 0.05; echo \"{\\\"accuracy\\\": {x}, \\\"gpu\\\": $CUDA_VISIBLE_DEVICES, \\\"worker\\\": $GREENLAB_WORKER}\"",
        ])
        .env("GREENLAB", bin())
        .env("GREENLAB_STORAGE", url)
        .env("GREENLAB_STUDY", study)
        .env("GREENLAB_METER", "estimate")
        .env("SLURM_ARRAY_JOB_ID", "4242")
        .env("SLURM_ARRAY_TASK_ID", task.to_string())
        .env("SLURM_GPUS_ON_NODE", gpus.to_string())
        .env("SLURMD_NODENAME", node)
        .env_remove("CUDA_VISIBLE_DEVICES")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash runs the Slurm script")
}

#[test]
fn the_slurm_recipe_fills_a_postgres_study_and_reports_energy_per_node() {
    let url = postgres_url();
    let study = unique("slurm");
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &study, 16, "");
    let out = greenlab(&[
        "study",
        "create",
        "--config",
        &config,
        "--storage",
        &url,
        "--",
        "sh",
        "-c",
        "sleep 0.05; echo \"{\\\"accuracy\\\": {x}, \\\"gpu\\\": $CUDA_VISIBLE_DEVICES, \\\"worker\\\": $GREENLAB_WORKER}\"",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let tasks: Vec<_> = (0..3)
        .map(|i| slurm_task(&url, &study, i, &format!("node-{i}"), 2))
        .collect();
    for t in tasks {
        let out = t.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("2 worker(s)"),
            "{}",
            text(&out.stderr)
        );
    }
    let trials = export(&url, &study);
    let complete: Vec<&serde_json::Value> =
        trials.iter().filter(|t| t["state"] == "complete").collect();
    assert!(complete.len() >= 16, "{trials:?}");
    let mut expected: BTreeMap<String, (usize, f64)> = BTreeMap::new();
    for t in &complete {
        let host = t["process"]["host"]
            .as_str()
            .expect("the trial records its host");
        assert!(host.starts_with("node-"), "{host}");
        let m = &t["attrs"]["metrics"];
        assert_eq!(
            m["gpu"], m["worker"],
            "each worker thread has its own GPU: {m}"
        );
        assert!(m["worker"].as_f64().unwrap() < 2.0, "two workers per node");
        let e = expected.entry(host.to_string()).or_default();
        e.0 += 1;
        // Per-host figures add up the energy attributed to each trial's process tree.
        e.1 += t["energy"]["attributed"].as_f64().expect("energy");
    }
    let out = greenlab(&["study", "show", "--storage", &url, "--study", &study]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let show = text(&out.stdout);
    let row = |name: &str| -> Vec<String> {
        show.lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("no row {name} in:\n{show}"))
            .split_whitespace()
            .map(String::from)
            .collect()
    };
    let mut total = 0.0;
    for (host, (n, joules)) in &expected {
        let r = row(host);
        assert_eq!(r[1].parse::<usize>().unwrap(), *n, "{host}: {show}");
        let printed: f64 = r[2].parse().unwrap();
        assert!(
            (printed - joules).abs() < 0.051,
            "{host}: {printed} vs {joules}"
        );
        assert_eq!(r[4], "1", "one worker process per node");
        total += joules;
    }
    let t = row("total");
    let printed: f64 = t[2].parse().unwrap();
    assert!(
        (printed - total).abs() < 0.051,
        "total {printed} vs {total}\n{show}"
    );
}

/// Every command that takes `--storage`, for a study `study` stored at `url`. `factorial` and
/// `replicate` train before they open the storage, so they are run only where the storage
/// cannot be reached (`training`: false) and stop there, after a tiny dataset is loaded.
fn storage_commands(
    url: &str,
    study: &str,
    dir: &Path,
    config: &str,
    training: bool,
) -> Vec<Vec<String>> {
    let out = dir.join("out");
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let o = |name: &str| out.join(name).display().to_string();
    std::fs::create_dir_all(&out).unwrap();
    let data = dir.join("data");
    std::fs::create_dir_all(&data).unwrap();
    common::tiny_dataset(&data, 64, 32);
    let design = dir.join("design.toml");
    std::fs::write(
        &design,
        format!(
            "name = \"d\"\nrepetitions = 2\n[factors]\nconv = [1, 2]\nrelu = [true, false]\n\
             [training]\nepochs = 1\nbatch_size = 32\nlimit_train = 64\nlimit_test = 32\n\
             data_dir = {:?}\n",
            data.display().to_string()
        ),
    )
    .unwrap();
    let design = design.display().to_string();
    let data = data.display().to_string();
    let mut commands = vec![
        s(&[
            "study",
            "create",
            "--config",
            config,
            "--storage",
            url,
            "--",
            "sh",
            "-c",
            "echo \"{\\\"accuracy\\\": {x}}\"",
        ]),
        s(&[
            "tune",
            "--config",
            config,
            "--storage",
            url,
            "--meter",
            "estimate",
            "--",
            "sh",
            "-c",
            "echo \"{\\\"accuracy\\\": {x}}\"",
        ]),
        s(&[
            "worker",
            "--storage",
            url,
            "--study",
            study,
            "--meter",
            "estimate",
        ]),
        s(&[
            "worker",
            "--storage",
            url,
            "--study",
            study,
            "--meter",
            "estimate",
            "--trust-stored-command",
        ]),
        s(&["study", "list", "--storage", url]),
        s(&["study", "show", "--storage", url, "--study", study]),
        s(&[
            "study",
            "export",
            "--storage",
            url,
            "--study",
            study,
            "--format",
            "json",
        ]),
        s(&[
            "study",
            "export",
            "--storage",
            url,
            "--study",
            study,
            "--format",
            "optuna",
            "--out",
            &o("o.db"),
        ]),
        s(&["compare", "--storage", url, "--studies", study]),
        s(&[
            "report",
            "--storage",
            url,
            "--study",
            study,
            "--format",
            "md",
            "--out",
            &o("r.md"),
        ]),
    ];
    if !training {
        commands.push(s(&[
            "factorial",
            "--config",
            &design,
            "--storage",
            url,
            "--out",
            &o("factorial"),
            "--meter",
            "estimate",
        ]));
        commands.push(s(&[
            "replicate",
            "--storage",
            url,
            "--out",
            &o("replicate"),
            "--data-dir",
            &data,
            "--meter",
            "estimate",
        ]));
    }
    commands
}

#[test]
fn no_output_of_any_storage_command_shows_the_password() {
    const SECRET: &str = "SeCrEt-pw-4711";
    let base = postgres_url();
    // The test server trusts loopback connections, so any password is accepted (and must
    // still never be printed).
    let with_password = base.replacen("@", &format!(":{SECRET}@"), 1);
    assert!(with_password.contains(SECRET), "{base} has a user part");
    let unreachable = format!("postgres://someone:{SECRET}@127.0.0.1:1/nowhere");
    let dir = tempfile::tempdir().unwrap();
    let study = unique("secret");
    let config = write_config(dir.path(), &study, 1, "");
    let mut checked = 0;
    for (url, training) in [(&with_password, true), (&unreachable, false)] {
        for args in storage_commands(url, &study, dir.path(), &config, training) {
            let argv: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = greenlab(&argv);
            let all = format!("{}{}", text(&out.stdout), text(&out.stderr));
            assert!(
                !all.contains(SECRET),
                "`greenlab {}` printed the password:\n{all}",
                argv[..2].join(" ")
            );
            checked += 1;
        }
    }
    assert_eq!(checked, 22);
    // The redacted URL is still shown, so users see which server they talk to.
    let out = greenlab(&["study", "list", "--storage", &unreachable]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("someone:***@127.0.0.1:1"),
        "{}",
        text(&out.stderr)
    );
}

fn optuna_python() -> PathBuf {
    match std::env::var_os("GREENLAB_OPTUNA_PYTHON") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => panic!(
            "GREENLAB_OPTUNA_PYTHON is not set: install Optuna into a venv with \
             `source scripts/setup-optuna.sh` and run the tests again"
        ),
    }
}

#[test]
fn the_optuna_export_opens_in_optuna_with_every_trial() {
    let python = optuna_python();
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("s.db").display());
    // One objective with intermediate values and a median pruner, some failures; and a
    // two-objective study (accuracy up, energy down).
    let single = write_config(
        dir.path(),
        "single",
        10,
        "[pruner]\nname = \"median\"\noptions = { n_startup_trials = 2 }\n",
    );
    let two = write_config(
        dir.path(),
        "two",
        6,
        "[[objectives]]\nmetric = \"accuracy\"\ndirection = \"maximize\"\n[[objectives]]\nmetric = \"energy\"\ndirection = \"minimize\"\n",
    );
    let command = "if [ \"{opt}\" = sgd ] && [ \"$GREENLAB_TRIAL\" = 3 ]; then exit 3; fi; \
                   echo \"{\\\"step\\\": 1, \\\"accuracy\\\": {x}}\"; \
                   echo \"{\\\"step\\\": 2, \\\"accuracy\\\": {x}}\"; \
                   echo \"{\\\"accuracy\\\": {x}}\"";
    for config in [&single, &two] {
        let out = greenlab(&[
            "tune",
            "--config",
            config,
            "--storage",
            &db,
            "--meter",
            "estimate",
            "--workers",
            "2",
            "--",
            "sh",
            "-c",
            command,
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    for study in ["single", "two"] {
        let json = dir.path().join(format!("{study}.json"));
        let optuna_db = dir.path().join(format!("{study}-optuna.db"));
        for (format, path) in [("json", &json), ("optuna", &optuna_db)] {
            let out = greenlab(&[
                "study",
                "export",
                "--storage",
                &db,
                "--study",
                study,
                "--format",
                format,
                "--out",
                path.to_str().unwrap(),
            ]);
            assert!(out.status.success(), "{}", text(&out.stderr));
        }
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/optuna/check_export.py");
        let out = Command::new(&python)
            .arg(&script)
            .arg(&optuna_db)
            .arg(&json)
            .output()
            .expect("the Optuna venv's python runs");
        assert!(
            out.status.success(),
            "Optuna disagrees with the export of {study}:\n{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        assert!(
            text(&out.stdout).contains("trials match"),
            "{}",
            text(&out.stdout)
        );
    }
}

#[test]
fn passwords_come_from_pgpassword_and_the_password_file_as_with_libpq() {
    // The test server makes role greenlab_pw (and only it) log in with a password.
    const PASSWORD: &str = "greenlab-test-password";
    let base = postgres_url();
    let (scheme_user, rest) = base.split_once('@').expect("a user in the test URL");
    let scheme = &scheme_user[..scheme_user.find("://").unwrap() + 3];
    let host_port = rest.split('/').next().unwrap();
    let url = format!("{scheme}greenlab_pw@{host_port}/greenlab_pw");
    let dir = tempfile::tempdir().unwrap();
    let list = |env: &[(&str, &str)]| -> Output {
        let mut c = Command::new(bin());
        c.args(["study", "list", "--storage", &url])
            .env_remove("PGPASSWORD")
            .env("PGPASSFILE", dir.path().join("none"));
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    let out = list(&[]);
    assert!(!out.status.success(), "no password, no login");
    assert!(
        text(&out.stderr).contains("password"),
        "{}",
        text(&out.stderr)
    );
    let out = list(&[("PGPASSWORD", PASSWORD)]);
    assert!(out.status.success(), "PGPASSWORD: {}", text(&out.stderr));
    let passfile = dir.path().join("pgpass");
    let host = host_port.split(':').next().unwrap();
    std::fs::write(
        &passfile,
        format!("# the test server\nelsewhere:*:*:*:wrong\n{host}:*:greenlab_pw:greenlab_pw:{PASSWORD}\n"),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&passfile, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = list(&[("PGPASSFILE", passfile.to_str().unwrap())]);
    assert!(out.status.success(), "PGPASSFILE: {}", text(&out.stderr));
    std::fs::set_permissions(&passfile, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = list(&[("PGPASSFILE", passfile.to_str().unwrap())]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("chmod 600"),
        "{}",
        text(&out.stderr)
    );
    let out = list(&[("PGPASSWORD", "wrong-one")]);
    assert!(!out.status.success(), "a wrong password is refused");
    assert!(!text(&out.stderr).contains("wrong-one") && !text(&out.stdout).contains("wrong-one"));
}
