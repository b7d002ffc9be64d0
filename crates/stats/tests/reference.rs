//! greenlab-stats against reference values computed by statsmodels and SciPy.
//!
//! The fixtures in `fixtures/` (CSV data and JSON expectations) were produced by
//! `fixtures/make_fixtures.py`; rerun it to regenerate them. Values must agree to 1e-6
//! relative, or to 1e-14 absolute for tiny p-values: SciPy's studentized-range upper tail
//! carries an absolute error of about 1.5e-15 (it is 1 − CDF; ours integrates the tail itself),
//! and underflows to exactly 0 for the largest conv effects.

use std::path::PathBuf;

use greenlab_stats::{
    Factor, MannWhitneyMethod, Table, anova, cell_means, group_by, kruskal_wallis, mann_whitney_u,
    studentized_range_cdf_sf, studentized_range_quantile, tukey_hsd, tukey_hsd_with_error,
};
use serde_json::Value;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

fn load(name: &str) -> Value {
    let text = std::fs::read_to_string(fixture(name)).expect("fixture file is committed");
    serde_json::from_str(&text).expect("fixture is valid JSON")
}

fn close(what: &str, got: f64, want: f64) {
    let ok = (got - want).abs() <= 1e-6 * want.abs() || (got - want).abs() <= 1e-14;
    assert!(ok, "{what}: got {got:e}, want {want:e}");
}

fn num(v: &Value) -> f64 {
    v.as_f64().expect("number in fixture")
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|s| s.as_str().expect("string").to_string())
        .collect()
}

fn factors(table: &Table, names: &[String]) -> Vec<Factor> {
    names.iter().map(|n| table.factor(n).unwrap()).collect()
}

fn check_dataset(name: &str) {
    let fx = load(&format!("factorial_{name}.json"));
    let table = Table::from_path(&fixture(fx["csv"].as_str().unwrap())).unwrap();

    for a in fx["anova"].as_array().unwrap() {
        let response = a["response"].as_str().unwrap();
        let y = table.numeric(response).unwrap();
        let t = anova(&y, &factors(&table, &strings(&a["factors"]))).unwrap();
        assert_eq!(t.balanced, name == "balanced");
        let terms = a["terms"].as_array().unwrap();
        assert_eq!(t.rows.len(), terms.len());
        for (row, want) in t.rows.iter().zip(terms) {
            let what = format!("{name} anova {response} {}", row.term);
            assert_eq!(
                row.term,
                want["term"].as_str().unwrap(),
                "{what}: term order"
            );
            close(&format!("{what} sum_sq"), row.sum_sq, num(&want["sum_sq"]));
            assert_eq!(row.df as f64, num(&want["df"]), "{what} df");
            close(&format!("{what} F"), row.f, num(&want["f"]));
            close(&format!("{what} p"), row.p, num(&want["p"]));
            let total = num(&a["total_sum_sq"]);
            let resid = num(&a["residual_sum_sq"]);
            close(
                &format!("{what} eta_sq"),
                row.eta_sq,
                num(&want["sum_sq"]) / total,
            );
            // Both definitions against the values the fixture script computed from
            // statsmodels' table (they differ on the unbalanced design).
            close(
                &format!("{what} eta_sq_jasp"),
                row.eta_sq_jasp,
                num(&want["eta_sq_jasp"]),
            );
            close(
                &format!("{what} eta_sq_total"),
                greenlab_stats::EtaSquared::CorrectedTotal.of(row),
                num(&want["eta_sq_total"]),
            );
            assert_eq!(greenlab_stats::EtaSquared::Jasp.of(row), row.eta_sq_jasp);
            close(
                &format!("{what} partial_eta_sq"),
                row.partial_eta_sq,
                num(&want["sum_sq"]) / (num(&want["sum_sq"]) + resid),
            );
        }
        close(
            &format!("{name} residual"),
            t.residual.sum_sq,
            num(&a["residual_sum_sq"]),
        );
        assert_eq!(t.residual.df as f64, num(&a["residual_df"]));
        close(
            &format!("{name} total"),
            t.total_sum_sq,
            num(&a["total_sum_sq"]),
        );
    }

    for k in fx["tukey"].as_array().unwrap() {
        let response = k["response"].as_str().unwrap();
        let y = table.numeric(response).unwrap();
        let groups = group_by(&y, &factors(&table, &strings(&k["factors"]))).unwrap();
        let labels: Vec<String> = groups.iter().map(|g| g.label.clone()).collect();
        assert_eq!(labels, strings(&k["levels"]));
        let t = tukey_hsd(&groups, 0.05).unwrap();
        let pairs = k["pairs"].as_array().unwrap();
        assert_eq!(t.pairs.len(), pairs.len());
        for (p, want) in t.pairs.iter().zip(pairs) {
            let what = format!("{name} tukey {response} {}-{}", p.a, p.b);
            assert_eq!(
                (p.a.as_str(), p.b.as_str()),
                (want["a"].as_str().unwrap(), want["b"].as_str().unwrap())
            );
            close(&format!("{what} diff"), p.diff, num(&want["diff"]));
            close(&format!("{what} lower"), p.lower, num(&want["lower"]));
            close(&format!("{what} upper"), p.upper, num(&want["upper"]));
            close(&format!("{what} p"), p.p, num(&want["p"]));
        }
    }

    for k in fx["tukey_model"].as_array().unwrap() {
        let response = k["response"].as_str().unwrap();
        let factor = k["factor"].as_str().unwrap();
        let y = table.numeric(response).unwrap();
        let all = factors(&table, &strings(&fx["anova"][0]["factors"]));
        let model = anova(&y, &all).unwrap();
        close("model mse", model.residual.mean_sq, num(&k["mse"]));
        let groups = group_by(&y, &[table.factor(factor).unwrap()]).unwrap();
        let t =
            tukey_hsd_with_error(&groups, model.residual.mean_sq, model.residual.df, 0.05).unwrap();
        for (p, want) in t.pairs.iter().zip(k["pairs"].as_array().unwrap()) {
            let what = format!("{name} model tukey {response} {factor} {}-{}", p.a, p.b);
            assert_eq!(p.a, want["a"].as_str().unwrap());
            close(&format!("{what} diff"), p.diff, num(&want["diff"]));
            close(&format!("{what} lower"), p.lower, num(&want["lower"]));
            close(&format!("{what} upper"), p.upper, num(&want["upper"]));
            close(&format!("{what} p"), p.p, num(&want["p"]));
        }
    }

    for k in fx["kruskal"].as_array().unwrap() {
        let response = k["response"].as_str().unwrap();
        let y = table.numeric(response).unwrap();
        let groups = group_by(&y, &factors(&table, &strings(&k["factors"]))).unwrap();
        let r = kruskal_wallis(&groups).unwrap();
        let what = format!("{name} kruskal {response} {:?}", strings(&k["factors"]));
        close(&format!("{what} H"), r.h, num(&k["h"]));
        assert_eq!(r.df as f64, num(&k["df"]));
        close(&format!("{what} p"), r.p, num(&k["p"]));
    }

    for d in fx["descriptives"].as_array().unwrap() {
        let response = d["response"].as_str().unwrap();
        let y = table.numeric(response).unwrap();
        let names: Vec<String> = ["conv", "linear", "relu"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let means = cell_means(&y, &factors(&table, &names), 0.95).unwrap();
        let cells = d["cells"].as_array().unwrap();
        assert_eq!(means.len(), cells.len());
        for (m, want) in means.iter().zip(cells) {
            let what = format!("{name} mean {response} {}", m.label);
            assert_eq!(m.label, want["cell"].as_str().unwrap());
            assert_eq!(m.n as f64, num(&want["n"]));
            close(&format!("{what} mean"), m.mean, num(&want["mean"]));
            close(&format!("{what} sd"), m.sd, num(&want["sd"]));
            close(&format!("{what} lower"), m.lower, num(&want["lower"]));
            close(&format!("{what} upper"), m.upper, num(&want["upper"]));
        }
    }
}

#[test]
fn balanced_factorial_matches_statsmodels_and_scipy() {
    check_dataset("balanced");
}

#[test]
fn unbalanced_factorial_matches_statsmodels_and_scipy() {
    check_dataset("unbalanced");
}

#[test]
fn studentized_range_matches_scipy() {
    let fx = load("distributions.json");
    let sr = &fx["studentized_range"];
    for v in sr["values"].as_array().unwrap() {
        let (q, k, df) = (num(&v["q"]), num(&v["k"]) as usize, num(&v["df"]));
        let (cdf, sf) = studentized_range_cdf_sf(q, k, df).unwrap();
        close(&format!("cdf q={q} k={k} df={df}"), cdf, num(&v["cdf"]));
        close(&format!("sf q={q} k={k} df={df}"), sf, num(&v["sf"]));
    }
    for v in sr["quantiles"].as_array().unwrap() {
        let (p, k, df) = (num(&v["p"]), num(&v["k"]) as usize, num(&v["df"]));
        let q = studentized_range_quantile(p, k, df).unwrap();
        close(&format!("quantile p={p} k={k} df={df}"), q, num(&v["q"]));
    }
}

#[test]
fn mann_whitney_matches_scipy() {
    let fx = load("distributions.json");
    for c in fx["mann_whitney"]["cases"].as_array().unwrap() {
        let x: Vec<f64> = c["x"].as_array().unwrap().iter().map(num).collect();
        let y: Vec<f64> = c["y"].as_array().unwrap().iter().map(num).collect();
        let method = match c["method"].as_str().unwrap() {
            "exact" => MannWhitneyMethod::Exact,
            _ => MannWhitneyMethod::Asymptotic,
        };
        let r = mann_whitney_u(&x, &y, method).unwrap();
        close("mann-whitney U", r.u, num(&c["u"]));
        close(&format!("mann-whitney p ({method:?})"), r.p, num(&c["p"]));
    }
}
