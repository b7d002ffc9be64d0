//! `greenlab tune`, `worker`, `study` and `compare` end to end, on a SQLite file, with an
//! external-command objective (`sh`).

use std::path::Path;
use std::process::{Command, Output};

fn greenlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_greenlab"))
        .args(args)
        .output()
        .expect("the greenlab binary runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn write_config(dir: &Path, name: &str, sampler: &str) -> String {
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(
        &path,
        format!(
            r#"name = "{name}"
[space]
x = {{ type = "float", low = -1.0, high = 1.0 }}
opt = {{ type = "categorical", choices = ["adam", "sgd"] }}
[sampler]
name = "{sampler}"
seed = 1
[stop]
n_trials = 6
"#
        ),
    )
    .unwrap();
    path.to_string_lossy().into_owned()
}

const OBJECTIVE: &[&str] = &[
    "--",
    "sh",
    "-c",
    "echo '{\"step\": 1, \"accuracy\": 0.1}'; echo '{\"accuracy\": {x}, \"opt\": \"{opt}\"}'",
];

#[test]
fn tune_then_inspect_export_and_compare() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("studies.db").display());
    for (name, sampler) in [("rand", "random"), ("qmc", "sobol")] {
        let config = write_config(dir.path(), name, sampler);
        let mut args = vec![
            "tune",
            "--config",
            &config,
            "--storage",
            &db,
            "--workers",
            "2",
            "--meter",
            "estimate",
        ];
        args.extend_from_slice(OBJECTIVE);
        let out = greenlab(&args);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let stdout = text(&out.stdout);
        assert!(stdout.contains("the study has 6 trials"), "{stdout}");
        assert!(stdout.contains("best trial"), "{stdout}");
    }

    let out = greenlab(&["study", "list", "--storage", &db]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let list = text(&out.stdout);
    assert!(list.contains("qmc") && list.contains("rand"), "{list}");

    let csv_path = dir.path().join("rand.csv");
    let out = greenlab(&[
        "study",
        "export",
        "--storage",
        &db,
        "--study",
        "rand",
        "--format",
        "csv",
        "--out",
        csv_path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    assert_eq!(csv.lines().count(), 7, "header and 6 trials:\n{csv}");
    assert!(
        csv.lines().skip(1).all(|l| l.contains(",complete,")),
        "{csv}"
    );

    let out = greenlab(&[
        "study",
        "export",
        "--storage",
        &db,
        "--study",
        "qmc",
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["trials"].as_array().unwrap().len(), 6);

    let out = greenlab(&[
        "compare",
        "--storage",
        &db,
        "--studies",
        "rand,qmc",
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let cmp: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(cmp["studies"].as_array().unwrap().len(), 2);
    assert_eq!(cmp["studies"][0]["points"].as_array().unwrap().len(), 6);

    // A worker joining a finished study (with the study's command: it runs no other) stops at
    // once: the trial limit holds.
    let mut args = vec![
        "worker",
        "--storage",
        &db,
        "--study",
        "rand",
        "--meter",
        "estimate",
    ];
    args.extend_from_slice(OBJECTIVE);
    let out = greenlab(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("this run: 0 trial(s)"));
}

#[test]
fn bad_configs_and_crashing_commands() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("s.db").display());
    let config = write_config(dir.path(), "bad", "bayes");
    let out = greenlab(&["tune", "--config", &config, "--storage", &db, "--", "true"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("unknown sampler \"bayes\"") && err.contains("gp"),
        "{err}"
    );

    let config = write_config(dir.path(), "crash", "random");
    let out = greenlab(&[
        "tune",
        "--config",
        &config,
        "--storage",
        &db,
        "--meter",
        "estimate",
        "--",
        "sh",
        "-c",
        "echo broken >&2; exit 7",
    ]);
    assert!(
        out.status.success(),
        "the study survives: {}",
        text(&out.stderr)
    );
    let out = greenlab(&[
        "study",
        "export",
        "--storage",
        &db,
        "--study",
        "crash",
        "--format",
        "csv",
    ]);
    let csv = text(&out.stdout);
    assert_eq!(
        csv.lines().filter(|l| l.contains(",failed,")).count(),
        6,
        "{csv}"
    );
    assert!(csv.contains("status 7") && csv.contains("broken"), "{csv}");
}

#[test]
fn a_study_on_a_machine_that_cannot_measure_records_unknown_energy_and_refuses_energy_work() {
    // No counter, no /proc: nothing can measure or estimate energy here.
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("studies.db").display());
    let nowhere = |what: &str| dir.path().join(what).to_string_lossy().into_owned();
    let (powercap, perf, proc_root) = (
        nowhere("no-powercap"),
        nowhere("no-perf"),
        nowhere("no-proc"),
    );
    let meter_args = [
        "--powercap-root",
        powercap.as_str(),
        "--perf-root",
        perf.as_str(),
        "--proc-root",
        proc_root.as_str(),
        "--no-gpu",
    ];
    let config = write_config(dir.path(), "blind", "random");
    let mut args = vec!["tune", "--config", &config, "--storage", &db];
    args.extend_from_slice(&meter_args);
    args.extend_from_slice(OBJECTIVE);
    let out = greenlab(&args);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("energy is not measured"),
        "the user is told: {}",
        text(&out.stderr)
    );

    // Every trial records its energy as unknown, with the reason, never as 0.
    let json_path = dir.path().join("blind.json");
    let out = greenlab(&[
        "study",
        "export",
        "--storage",
        &db,
        "--study",
        "blind",
        "--format",
        "json",
        "--out",
        json_path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    let trials = v["trials"].as_array().cloned().unwrap_or_default();
    assert_eq!(trials.len(), 6, "{v}");
    for t in &trials {
        let e = &t["energy"];
        assert!(e["total"].is_null() && e["attributed"].is_null(), "{t}");
        assert!(
            e["unknown"]
                .as_str()
                .is_some_and(|u| u.contains("no meter")),
            "{t}"
        );
    }
    let csv_path = dir.path().join("blind.csv");
    let out = greenlab(&[
        "study",
        "export",
        "--storage",
        &db,
        "--study",
        "blind",
        "--out",
        csv_path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = header.iter().position(|h| *h == "energy_j").unwrap();
    for line in csv.lines().skip(1) {
        assert_eq!(
            line.split(',').nth(col),
            Some(""),
            "an empty cell, not 0: {line}"
        );
    }

    // Comparing strategies on these trials is refused, naming the trial and why.
    let out = greenlab(&["compare", "--storage", &db, "--studies", "blind"]);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("no energy measured") && err.contains("trial 0"),
        "{err}"
    );

    // A study with an energy budget does not start at all.
    let config = write_config(dir.path(), "budget", "random");
    let mut args = vec![
        "tune",
        "--config",
        &config,
        "--storage",
        &db,
        "--energy-budget",
        "10J",
    ];
    args.extend_from_slice(&meter_args);
    args.extend_from_slice(OBJECTIVE);
    let out = greenlab(&args);
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("needs trial energy") && err.contains("greenlab meters"),
        "{err}"
    );
}
