//! `greenlab stats` and `greenlab tradeoff` on the statistics crate's fixture tables, checked
//! against the statsmodels/SciPy reference values stored beside them.

use std::path::PathBuf;
use std::process::{Command, Output};

use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../stats/fixtures")
        .join(name)
}

fn greenlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_greenlab"))
        .args(args)
        .output()
        .expect("binary runs")
}

fn stdout_json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is JSON")
}

fn reference() -> Value {
    let text = std::fs::read_to_string(fixture("factorial_unbalanced.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn close(what: &str, got: f64, want: f64) {
    assert!(
        (got - want).abs() <= 1e-6 * want.abs() + 1e-12,
        "{what}: {got} vs {want}"
    );
}

fn csv() -> String {
    fixture("factorial_unbalanced.csv").display().to_string()
}

#[test]
fn anova_json_matches_statsmodels() {
    let out = greenlab(&[
        "stats",
        "anova",
        "--csv",
        &csv(),
        "--response",
        "energy_kj",
        "--factors",
        "conv,linear,relu",
        "--json",
    ]);
    let got = stdout_json(&out);
    let want = &reference()["anova"][0];
    let rows = got["anova"]["rows"].as_array().unwrap();
    let terms = want["terms"].as_array().unwrap();
    assert_eq!(rows.len(), 7);
    for (r, w) in rows.iter().zip(terms) {
        assert_eq!(r["term"], w["term"]);
        close(
            "sum_sq",
            r["sum_sq"].as_f64().unwrap(),
            w["sum_sq"].as_f64().unwrap(),
        );
        close("p", r["p"].as_f64().unwrap(), w["p"].as_f64().unwrap());
    }
    assert_eq!(got["anova"]["balanced"], false);
    assert_eq!(got["cell_means"].as_array().unwrap().len(), 8);
}

#[test]
fn anova_table_is_aligned_and_names_every_term() {
    let out = greenlab(&[
        "stats",
        "anova",
        "--csv",
        &csv(),
        "--response",
        "energy_kj",
        "--factors",
        "conv,linear,relu",
    ]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("type III ANOVA of energy_kj (26 observations, 8 cells, unbalanced)")
    );
    assert!(lines[1].starts_with("term "));
    // The p column ends at the same position on every row of the effect table.
    let p_end = lines[1].find(" p ").unwrap() + 2;
    for l in &lines[3..10] {
        assert!(
            l.chars().nth(p_end - 1).is_some_and(|c| c.is_ascii_digit()),
            "{l}"
        );
    }
    for term in ["conv", "conv:linear", "conv:linear:relu", "residual"] {
        assert!(
            lines.iter().any(|l| l.starts_with(&format!("{term} "))),
            "{term} missing"
        );
    }
}

#[test]
fn tukey_on_cells_matches_scipy() {
    let out = greenlab(&[
        "stats",
        "tukey",
        "--csv",
        &csv(),
        "--response",
        "energy_kj",
        "--factor",
        "conv,linear,relu",
        "--json",
    ]);
    let got = stdout_json(&out);
    let reference = reference();
    let want = reference["tukey"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["response"] == "energy_kj" && t["factors"].as_array().unwrap().len() == 3)
        .unwrap();
    let pairs = got["pairs"].as_array().unwrap();
    assert_eq!(pairs.len(), 28);
    for (g, w) in pairs.iter().zip(want["pairs"].as_array().unwrap()) {
        assert_eq!((&g["a"], &g["b"]), (&w["a"], &w["b"]));
        close(
            "diff",
            g["diff"].as_f64().unwrap(),
            w["diff"].as_f64().unwrap(),
        );
        close(
            "lower",
            g["lower"].as_f64().unwrap(),
            w["lower"].as_f64().unwrap(),
        );
        close("p", g["p"].as_f64().unwrap(), w["p"].as_f64().unwrap());
    }
}

#[test]
fn kruskal_matches_scipy_and_prints_a_table() {
    let out = greenlab(&[
        "stats",
        "kruskal",
        "--csv",
        &csv(),
        "--response",
        "accuracy",
        "--factor",
        "relu",
        "--json",
    ]);
    let got = stdout_json(&out);
    let reference = reference();
    let want = reference["kruskal"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["response"] == "accuracy" && k["factors"] == serde_json::json!(["relu"]))
        .unwrap();
    close("H", got["h"].as_f64().unwrap(), want["h"].as_f64().unwrap());
    close("p", got["p"].as_f64().unwrap(), want["p"].as_f64().unwrap());

    let out = greenlab(&[
        "stats",
        "kruskal",
        "--csv",
        &csv(),
        "--response",
        "accuracy",
        "--factor",
        "relu",
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with("Kruskal-Wallis of accuracy by relu: H = "),
        "{text}"
    );
    assert!(text.contains("\noff "), "{text}");
}

#[test]
fn degenerate_designs_fail_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    // Unknown factor.
    let out = greenlab(&[
        "stats",
        "anova",
        "--csv",
        &csv(),
        "--response",
        "energy_kj",
        "--factors",
        "conv,pool",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("unknown factor `pool`") && err.contains("conv, linear, relu"),
        "{err}"
    );
    assert!(out.stdout.is_empty());

    // A factor with one level and an empty cell.
    let one_level = dir.path().join("one.csv");
    std::fs::write(
        &one_level,
        "conv,relu,e\n1,on,1\n4,on,2\n1,on,1.5\n4,on,2.5\n",
    )
    .unwrap();
    let path = one_level.display().to_string();
    let out = greenlab(&[
        "stats",
        "anova",
        "--csv",
        &path,
        "--response",
        "e",
        "--factors",
        "conv,relu",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("factor `relu` has only one level"));

    let empty_cell = dir.path().join("empty.csv");
    std::fs::write(
        &empty_cell,
        "a,b,e\n1,x,1\n1,x,2\n1,y,3\n1,y,4\n2,x,5\n2,x,6\n",
    )
    .unwrap();
    let path = empty_cell.display().to_string();
    let out = greenlab(&[
        "stats",
        "anova",
        "--csv",
        &path,
        "--response",
        "e",
        "--factors",
        "a,b",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cell a=2, b=y has no observations"));

    // A response that is not numeric names the line.
    let bad = dir.path().join("bad.csv");
    std::fs::write(&bad, "a,e\n1,1\n2,oops\n").unwrap();
    let path = bad.display().to_string();
    let out = greenlab(&[
        "stats",
        "kruskal",
        "--csv",
        &path,
        "--response",
        "e",
        "--factor",
        "a",
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3") && err.contains("`oops`"), "{err}");
}

#[test]
fn tradeoff_finds_the_front_and_recommends_fewer_convs() {
    let out = greenlab(&[
        "tradeoff",
        "--csv",
        &csv(),
        "--accuracy",
        "accuracy",
        "--energy",
        "energy_kj",
        "--factors",
        "conv,linear,relu",
        "--json",
    ]);
    let got = stdout_json(&out);
    let points = got["points"].as_array().unwrap();
    assert_eq!(points.len(), 8);
    // energy_kj is read as kilojoules: every configuration used more than 10 kJ.
    assert!(
        points
            .iter()
            .all(|p| p["energy_j"].as_f64().unwrap() > 10_000.0)
    );
    let front = got["front"].as_array().unwrap();
    assert!(!front.is_empty());
    // Along the front energy and accuracy both increase.
    let coords: Vec<(f64, f64)> = front
        .iter()
        .map(|i| {
            let p = &points[i.as_u64().unwrap() as usize];
            (
                p["energy_j"].as_f64().unwrap(),
                p["accuracy"].as_f64().unwrap(),
            )
        })
        .collect();
    for w in coords.windows(2) {
        assert!(w[1].0 > w[0].0 && w[1].1 > w[0].1, "{coords:?}");
    }
    let rec = got["recommendation"].as_str().unwrap();
    assert!(
        rec.contains("energy by") && rec.contains(" pp accuracy"),
        "{rec}"
    );

    let out = greenlab(&[
        "tradeoff",
        "--csv",
        &csv(),
        "--accuracy",
        "accuracy",
        "--energy",
        "energy_kj",
        "--factors",
        "conv,linear,relu",
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("recommendation: "), "{text}");
    assert!(text.lines().next().unwrap().starts_with("configuration "));
}
