//! `greenlab factorial`, `greenlab replicate` and `greenlab report` end to end on a generated
//! tiny dataset: the studies run, resume without repeating work, and produce their reports.

mod common;

use std::collections::BTreeMap;

use common::{greenlab, stderr, tiny_dataset};
use greenlab_tune::TrialState;
use serde_json::Value;

fn trial_counts(db: &std::path::Path) -> BTreeMap<String, (usize, usize)> {
    let storage = greenlab_store::open(&format!("sqlite://{}", db.display())).unwrap();
    storage
        .list_studies()
        .unwrap()
        .into_iter()
        .map(|s| {
            let trials = storage.trials(s.id).unwrap();
            let complete = trials
                .iter()
                .filter(|t| t.state == TrialState::Complete)
                .count();
            (s.name, (trials.len(), complete))
        })
        .collect()
}

#[test]
fn replicate_runs_both_studies_resumes_and_reports() {
    let data = tempfile::tempdir().unwrap();
    tiny_dataset(data.path(), 256, 128);
    let out = tempfile::tempdir().unwrap();
    let run_with = |limit_train: &str| {
        greenlab(&[
            "replicate",
            "--data-dir",
            data.path().to_str().unwrap(),
            "--out",
            out.path().to_str().unwrap(),
            "--meter",
            "estimate",
            "--repetitions",
            "2",
            "--trials",
            "3",
            "--limit-train",
            limit_train,
        ])
    };
    let run = || run_with("256");
    let first = run();
    assert!(first.status.success(), "{}", stderr(&first));
    let counts = trial_counts(&out.path().join("greenlab.db"));
    // 3 networks × 3 strategies × 2 repetitions tuning studies, and one factorial study.
    assert_eq!(counts.len(), 19, "{counts:?}");
    let factorial = counts
        .iter()
        .find(|(n, _)| n.contains("factorial"))
        .map(|(_, c)| *c)
        .unwrap();
    assert_eq!(
        factorial,
        (16, 16),
        "2×2×2 cells × 2 repetitions, all complete"
    );
    for (name, (n, _)) in &counts {
        if name.starts_with("rq1") {
            assert!(*n >= 1 && *n <= 3, "{name}: {n} trials");
        }
    }

    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("results.json")).unwrap())
            .unwrap();
    assert_eq!(results["energy_provenance"], "estimated");
    assert_eq!(results["rq1"].as_array().unwrap().len(), 3);
    let rows = results["rq2"]["energy_anova"]["Ok"]["rows"]
        .as_array()
        .expect("an ANOVA table");
    let terms: Vec<&str> = rows.iter().map(|r| r["term"].as_str().unwrap()).collect();
    assert!(
        terms.contains(&"conv") && terms.contains(&"conv:linear:relu"),
        "{terms:?}"
    );

    let html = std::fs::read_to_string(out.path().join("report.html")).unwrap();
    assert!(html.contains("Findings") && html.contains("ESTIMATED"));
    assert!(
        html.matches("data-plot=").count() >= 5,
        "RQ1 curves, cell means and the scatter are drawn"
    );
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(stdout.contains("report: "), "{stdout}");

    // Rerunning resumes: nothing is trained again, the same trials are analysed.
    let second = run();
    assert!(second.status.success(), "{}", stderr(&second));
    assert_eq!(trial_counts(&out.path().join("greenlab.db")), counts);

    // Other training settings in the same storage are refused, not mixed into the studies.
    let other = run_with("128");
    assert!(!other.status.success());
    assert!(
        stderr(&other).contains("other training settings"),
        "{}",
        stderr(&other)
    );
    assert_eq!(trial_counts(&out.path().join("greenlab.db")), counts);

    // `greenlab report` re-renders the stored document in another format.
    let md = greenlab(&["report", out.path().to_str().unwrap(), "--format", "md"]);
    assert!(md.status.success(), "{}", stderr(&md));
    let text = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(text.contains("Findings"));
}

#[test]
fn factorial_design_file_is_validated_and_runs() {
    let data = tempfile::tempdir().unwrap();
    tiny_dataset(data.path(), 128, 64);
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "name = \"x\"\n[factors]\nconv = [1]\n").unwrap();
    let out = greenlab(&[
        "factorial",
        "--config",
        bad.to_str().unwrap(),
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("at least two levels"),
        "{}",
        stderr(&out)
    );
    let unknown = dir.path().join("unknown.toml");
    std::fs::write(&unknown, "name = \"x\"\n[factors]\nwidth = [1, 2]\n").unwrap();
    let out = greenlab(&[
        "factorial",
        "--config",
        unknown.to_str().unwrap(),
        "--out",
        dir.path().to_str().unwrap(),
    ]);
    assert!(stderr(&out).contains("unknown factor"), "{}", stderr(&out));

    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        format!(
            "name = \"conv-relu\"\nrepetitions = 2\n[factors]\nconv = [1, 2]\nrelu = [true, false]\n[training]\nepochs = 1\nbatch_size = 32\nlimit_train = 128\nlimit_test = 64\ndata_dir = {:?}\n",
            data.path().to_str().unwrap()
        ),
    )
    .unwrap();
    let out_dir = dir.path().join("run");
    let out = greenlab(&[
        "factorial",
        "--config",
        good.to_str().unwrap(),
        "--out",
        out_dir.to_str().unwrap(),
        "--meter",
        "estimate",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let analysis: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(analysis["runs"], 8);
    assert_eq!(analysis["factors"], serde_json::json!(["conv", "relu"]));
    let csv = std::fs::read_to_string(out_dir.join("runs.csv")).unwrap();
    assert_eq!(csv.lines().count(), 9, "header and one line per run");
    // The CSV feeds `greenlab stats` directly.
    let stats = greenlab(&[
        "stats",
        "anova",
        "--csv",
        out_dir.join("runs.csv").to_str().unwrap(),
        "--response",
        "energy_j",
        "--factors",
        "conv,relu",
    ]);
    assert!(stats.status.success(), "{}", stderr(&stats));
}

#[test]
fn the_paper_preset_is_the_papers_design_and_plans_without_training() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("never-created");
    let out = greenlab(&[
        "replicate",
        "--preset",
        "paper",
        "--plan",
        "--out",
        out_dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let plan = String::from_utf8_lossy(&out.stdout);
    // RQ1: 3 networks × 3 strategies × 5 repetitions × 30 trials, full training set.
    assert!(
        plan.contains("45 studies of 30 trials over 3 hyperparameters"),
        "{plan}"
    );
    assert!(
        plan.contains("1350 training runs of 5 epoch(s) × 60000 images"),
        "{plan}"
    );
    // RQ2: the 2×2×2 design, 25 epochs of the full set at batch 512, as the paper.
    assert!(
        plan.contains("40 training runs of 25 epoch(s) × 60000 images"),
        "{plan}"
    );
    assert!(plan.contains("batch 512"), "{plan}");
    assert!(!out_dir.exists(), "a plan writes nothing");

    let out = greenlab(&["replicate", "--plan", "--five-params", "--only", "rq1"]);
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(
        plan.contains("over 5 hyperparameters") && !plan.contains("RQ2"),
        "{plan}"
    );
}
