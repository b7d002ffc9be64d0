//! Sampler suite: greenlab's samplers against Optuna 5.0's on the functions of [`suite`].
//!
//! For every function and sampler, `--seeds` studies (default 20) of sequential trials; the
//! score after `b` trials (`--budgets`, default 20, 50, 100) is the noise-free value at the
//! trial with the best observed value among the first `b`. Each row prints the median score
//! over the seeds with a distribution-free 95 % interval for the median (order statistics of
//! the binomial), the process CPU and the wall time per trial (suggestion, objective and
//! bookkeeping, mean over the study), and the sampler's rank on the function.
//!
//! Optuna's results come from `bench/samplers/optuna_run.py` (`--optuna FILE`, one JSON line
//! per study; `bench/samplers.sh` creates the venv, runs it and then this benchmark). Every
//! value Optuna reported is recomputed here from its parameters, so both sides provably ran
//! the same functions. The summary compares greenlab's GP with Optuna's GPSampler and
//! greenlab's TPE with Optuna's TPESampler after 50 trials: the ratio of the medians' distances
//! to the optimum (< 1: greenlab closer) and whether greenlab's median lies inside Optuna's
//! interval or below it.
//!
//! `--parallel N` also runs GP and TPE as N asynchronous workers (a simulated pool: N trials
//! run at once, the oldest finishes first, each new suggestion sees the others as running),
//! and reports the loss against sequential runs and how many suggestions fell within 0.01 (in
//! every unit-cube coordinate) of a running trial.
//!
//! ```text
//! cargo bench -p greenlab-tune --bench samplers -- [--functions levy5,branin] [--seeds 20 | 0-9]
//!     [--budgets 20,50,100] [--samplers gp,tpe,random] [--optuna FILE] [--parallel 8]
//!     [--markdown FILE] [--quick] [--per-seed]
//! ```
//! The multi-objective part (ZDT1, ZDT2: random, ParEGO, NSGA-II hypervolumes) runs when
//! `--functions` names `zdt1` or `zdt2`.

mod mo;
mod suite;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Instant;

use greenlab_tune::sampler::gp::{Acquisition, GpOptions, GpSampler, Liar};
use greenlab_tune::sampler::quasi::SobolSampler;
use greenlab_tune::sampler::random::RandomSampler;
use greenlab_tune::sampler::tpe::{Bandwidth, TpeOptions, TpeSampler};
use greenlab_tune::{
    Direction, Objective, ParamValue, Params, SampleContext, Sampler, Trial, TrialState,
};

use suite::Function;

/// One study's outcome.
#[derive(Clone, Debug)]
struct Run {
    /// Score after each budget.
    scores: Vec<f64>,
    /// Process CPU and wall milliseconds per trial (mean over the study).
    cpu_ms: f64,
    wall_ms: f64,
    /// Suggestions within 0.01 of a running trial, and suggestions made with trials running.
    near_duplicates: (usize, usize),
}

pub(crate) fn make(name: &str, seed: u64) -> Option<Box<dyn Sampler>> {
    Some(match name {
        "random" => Box::new(RandomSampler::new(seed)),
        "sobol" => Box::new(SobolSampler::new(seed)),
        "tpe" => Box::new(TpeSampler::new(seed, TpeOptions::default())),
        "tpe-indep" => Box::new(TpeSampler::new(
            seed,
            TpeOptions {
                multivariate: false,
                ..TpeOptions::default()
            },
        )),
        // Optuna's multivariate TPE rules (fixed bandwidths, γ = 0.1), for comparison.
        "tpe-optuna" => Box::new(TpeSampler::new(
            seed,
            TpeOptions {
                bandwidth: Bandwidth::Optuna,
                gamma: 0.1,
                ..TpeOptions::default()
            },
        )),
        "tpe-nb" => Box::new(TpeSampler::new(
            seed,
            TpeOptions {
                bandwidth: Bandwidth::Neighbour,
                ..TpeOptions::default()
            },
        )),
        "tpe-nb10" => Box::new(TpeSampler::new(
            seed,
            TpeOptions {
                bandwidth: Bandwidth::Neighbour,
                gamma: 0.1,
                ..TpeOptions::default()
            },
        )),
        "gp" => Box::new(GpSampler::new(seed, GpOptions::default())),
        "gp-pi" => Box::new(GpSampler::new(
            seed,
            GpOptions {
                acquisition: Acquisition::ProbabilityOfImprovement { xi: 0.01 },
                ..GpOptions::default()
            },
        )),
        "parego" => Box::new(greenlab_tune::sampler::multi::ParegoSampler::new(
            seed,
            Default::default(),
        )),
        "nsga2" => Box::new(greenlab_tune::sampler::nsga2::Nsga2Sampler::new(
            seed,
            Default::default(),
        )),
        "gp-liar-mean" | "gp-liar-best" | "gp-liar-ignore" => Box::new(GpSampler::new(
            seed,
            GpOptions {
                liar: match name {
                    "gp-liar-mean" => Liar::Mean,
                    "gp-liar-best" => Liar::Best,
                    _ => Liar::Ignore,
                },
                ..GpOptions::default()
            },
        )),
        "tpe-noliar" => Box::new(TpeSampler::new(
            seed,
            TpeOptions {
                constant_liar: false,
                ..TpeOptions::default()
            },
        )),
        other => {
            // Experiments: `gp-ls<longest length scale>`.
            let ls: f64 = other.strip_prefix("gp-ls")?.parse().ok()?;
            Box::new(GpSampler::new(
                seed,
                GpOptions {
                    max_length_scale: ls,
                    ..GpOptions::default()
                },
            ))
        }
    })
}

pub(crate) fn trial(number: u64, params: Params, values: Option<Vec<f64>>) -> Trial {
    Trial {
        id: number as i64,
        number,
        state: if values.is_some() {
            TrialState::Complete
        } else {
            TrialState::Running
        },
        params,
        values,
        intermediate: vec![],
        energy: None,
        attrs: BTreeMap::new(),
        worker: None,
        started_at: None,
        finished_at: None,
        process: None,
        retry_of: None,
    }
}

fn minimise() -> [Objective; 1] {
    [Objective {
        metric: "value".into(),
        direction: Direction::Minimize,
    }]
}

/// CPU time of the whole process in milliseconds (all threads), as Python's
/// `time.process_time`.
pub(crate) fn process_cpu_ms() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant Linux supports.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return f64::NAN;
    }
    ts.tv_sec as f64 * 1e3 + ts.tv_nsec as f64 / 1e6
}

/// Scores after each budget: the true value at the trial with the best observed value so far.
fn scores(observed: &[f64], truth: &[f64], budgets: &[usize]) -> Vec<f64> {
    budgets
        .iter()
        .map(|&b| {
            let mut best: Option<usize> = None;
            for i in 0..b.min(observed.len()) {
                if observed[i].is_finite() && best.is_none_or(|j| observed[i] < observed[j]) {
                    best = Some(i);
                }
            }
            best.map_or(f64::NAN, |i| truth[i])
        })
        .collect()
}

/// A sequential study of `trials` trials.
fn run_sequential(f: &Function, sampler: &dyn Sampler, seed: u64, budgets: &[usize]) -> Run {
    let trials = budgets.iter().copied().max().unwrap_or(0);
    let objectives = minimise();
    let mut history: Vec<Trial> = Vec::with_capacity(trials);
    let (mut observed, mut truth) = (vec![], vec![]);
    let (c0, w0) = (process_cpu_ms(), Instant::now());
    for n in 0..trials as u64 {
        let ctx = SampleContext {
            space: &f.space,
            objectives: &objectives,
            history: &history,
            number: n,
        };
        let params = sampler.suggest(&ctx).expect("suggestion");
        let t = (f.f)(&params);
        let v = t + f.noise_sd * suite::noise(seed, n);
        observed.push(v);
        truth.push(t);
        history.push(trial(n, params, Some(vec![v])));
    }
    let cpu = (process_cpu_ms() - c0) / trials as f64;
    let wall = w0.elapsed().as_secs_f64() * 1e3 / trials as f64;
    Run {
        scores: scores(&observed, &truth, budgets),
        cpu_ms: cpu,
        wall_ms: wall,
        near_duplicates: (0, 0),
    }
}

/// `workers` asynchronous workers: the first `workers` trials are suggested one after another
/// (each seeing the earlier ones running); then the oldest running trial finishes and its
/// worker asks for the next, until `trials` trials have been suggested.
fn run_parallel(
    f: &Function,
    sampler: &dyn Sampler,
    seed: u64,
    budgets: &[usize],
    workers: usize,
) -> Run {
    let trials = budgets.iter().copied().max().unwrap_or(0);
    let objectives = minimise();
    let mut history: Vec<Trial> = Vec::with_capacity(trials);
    let (mut observed, mut truth) = (vec![f64::NAN; trials], vec![f64::NAN; trials]);
    let mut running: std::collections::VecDeque<usize> = Default::default();
    let (mut near, mut with_running) = (0, 0);
    let (c0, w0) = (process_cpu_ms(), Instant::now());
    let finish = |i: usize, history: &mut Vec<Trial>, observed: &mut [f64], truth: &mut [f64]| {
        let t = (f.f)(&history[i].params);
        let v = t + f.noise_sd * suite::noise(seed, i as u64);
        observed[i] = v;
        truth[i] = t;
        history[i].values = Some(vec![v]);
        history[i].state = TrialState::Complete;
    };
    for n in 0..trials {
        if running.len() == workers
            && let Some(i) = running.pop_front()
        {
            finish(i, &mut history, &mut observed, &mut truth);
        }
        let ctx = SampleContext {
            space: &f.space,
            objectives: &objectives,
            history: &history,
            number: n as u64,
        };
        let params = sampler.suggest(&ctx).expect("suggestion");
        if !running.is_empty() {
            with_running += 1;
            let p = f.space.to_unit(&params).unwrap_or_default();
            let close = running.iter().any(|&i| {
                let q = f.space.to_unit(&history[i].params).unwrap_or_default();
                p.iter().zip(&q).all(|(a, b)| (a - b).abs() < 0.01)
            });
            near += usize::from(close);
        }
        history.push(trial(n as u64, params, None));
        running.push_back(n);
    }
    while let Some(i) = running.pop_front() {
        finish(i, &mut history, &mut observed, &mut truth);
    }
    let cpu = (process_cpu_ms() - c0) / trials as f64;
    let wall = w0.elapsed().as_secs_f64() * 1e3 / trials as f64;
    Run {
        scores: scores(&observed, &truth, budgets),
        cpu_ms: cpu,
        wall_ms: wall,
        near_duplicates: (near, with_running),
    }
}

/// Median CPU milliseconds of one suggestion from the history of a finished study (the
/// samplers' own cost, without bookkeeping).
fn suggestion_ms(f: &Function, name: &str, trials: usize) -> f64 {
    let Some(sampler) = make(name, 0) else {
        return f64::NAN;
    };
    let objectives = minimise();
    let mut history = vec![];
    for n in 0..trials as u64 {
        let ctx = SampleContext {
            space: &f.space,
            objectives: &objectives,
            history: &history,
            number: n,
        };
        let params = sampler.suggest(&ctx).expect("suggestion");
        let v = (f.f)(&params);
        history.push(trial(n, params, Some(vec![v])));
    }
    let ctx = SampleContext {
        space: &f.space,
        objectives: &objectives,
        history: &history,
        number: trials as u64,
    };
    let probe = Instant::now();
    let _ = sampler.suggest(&ctx);
    let reps = if probe.elapsed().as_secs_f64() < 2e-3 {
        400
    } else {
        3
    };
    let times: Vec<f64> = (0..5)
        .map(|_| {
            let c = process_cpu_ms();
            for _ in 0..reps {
                let _ = sampler.suggest(&ctx);
            }
            (process_cpu_ms() - c) / reps as f64
        })
        .collect();
    median(&times)
}

pub(crate) fn median(v: &[f64]) -> f64 {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// Distribution-free 95 % interval for the median: order statistics `k` and `n + 1 − k` with
/// the largest `k` such that `P(Binomial(n, ½) < k) ≤ 0.025` (for 20 seeds, the 6th and 15th
/// smallest); the range when there are too few values.
fn median_interval(v: &[f64]) -> (f64, f64) {
    let mut v: Vec<f64> = v.iter().copied().filter(|x| !x.is_nan()).collect();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        return (f64::NAN, f64::NAN);
    }
    // P(X ≤ j) for X ~ Binomial(n, ½).
    let mut cdf = 0.0;
    let mut k = 0;
    let mut binom = 1.0f64;
    for j in 0..n {
        cdf += binom / 2f64.powi(n as i32);
        if cdf > 0.025 {
            break;
        }
        k = j + 1;
        binom = binom * (n - j) as f64 / (j + 1) as f64;
    }
    if k == 0 {
        (v[0], v[n - 1])
    } else {
        (v[k - 1], v[n - k])
    }
}

fn parse_seeds(text: &str) -> Vec<u64> {
    if let Some((a, b)) = text.split_once('-') {
        let (a, b): (u64, u64) = (a.parse().unwrap_or(0), b.parse().unwrap_or(0));
        (a..=b).collect()
    } else if text.contains(',') {
        text.split(',').filter_map(|s| s.parse().ok()).collect()
    } else {
        (0..text.parse().unwrap_or(20)).collect()
    }
}

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

/// Results by sampler, then function, then seed.
type Results = BTreeMap<String, BTreeMap<String, BTreeMap<u64, Run>>>;

fn json_param(v: &serde_json::Value) -> Option<ParamValue> {
    Some(match v {
        serde_json::Value::Bool(b) => ParamValue::Bool(*b),
        serde_json::Value::String(s) => ParamValue::Str(s.clone()),
        serde_json::Value::Number(n) => match n.as_i64() {
            Some(i) if !n.is_f64() => ParamValue::Int(i),
            _ => ParamValue::Float(n.as_f64()?),
        },
        _ => return None,
    })
}

/// Reads Optuna's studies, recomputes every value from its parameters and scores them.
fn read_optuna(
    path: &str,
    functions: &[Function],
    seeds: &[u64],
    budgets: &[usize],
    results: &mut Results,
) -> Result<(), String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"))?;
    let max_budget = budgets.iter().copied().max().unwrap_or(0);
    for (ln, line) in text.lines().enumerate() {
        let r: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("{path}:{}: {e}", ln + 1))?;
        let sampler = r["sampler"].as_str().unwrap_or("?").to_string();
        let fname = r["function"].as_str().unwrap_or("?");
        let seed = r["seed"].as_u64().unwrap_or(u64::MAX);
        let Some(f) = functions.iter().find(|f| f.name == fname) else {
            continue;
        };
        if !seeds.contains(&seed) {
            continue;
        }
        let (Some(params), Some(values)) = (r["params"].as_array(), r["values"].as_array()) else {
            return Err(format!("{path}:{}: no params or values", ln + 1));
        };
        // A study shorter than the largest budget scores NaN there.
        let (mut observed, mut truth) = (vec![], vec![]);
        for (n, (p, v)) in params.iter().zip(values).enumerate() {
            let p: Params = p
                .as_object()
                .ok_or("params is not an object")?
                .iter()
                .map(|(k, v)| Some((k.clone(), json_param(v)?)))
                .collect::<Option<_>>()
                .ok_or_else(|| format!("{path}:{}: unreadable parameter", ln + 1))?;
            let t = (f.f)(&p);
            let mine = t + f.noise_sd * suite::noise(seed, n as u64);
            let theirs = v.as_f64().unwrap_or(f64::NAN);
            if (mine - theirs).abs() > 1e-9 * (1.0 + mine.abs()) {
                return Err(format!(
                    "{path}:{}: {sampler} on {fname}, seed {seed}, trial {n}: Optuna saw \
                     {theirs}, the Rust definition gives {mine} at {p:?}",
                    ln + 1
                ));
            }
            observed.push(theirs);
            truth.push(t);
        }
        let mut s = scores(&observed, &truth, budgets);
        for (k, &b) in budgets.iter().enumerate() {
            if observed.len() < b {
                s[k] = f64::NAN;
            }
        }
        let _ = max_budget;
        results
            .entry(sampler)
            .or_default()
            .entry(fname.to_string())
            .or_default()
            .insert(
                seed,
                Run {
                    scores: s,
                    cpu_ms: r["cpu_ms_per_trial"].as_f64().unwrap_or(f64::NAN),
                    wall_ms: r["wall_ms_per_trial"].as_f64().unwrap_or(f64::NAN),
                    near_duplicates: (0, 0),
                },
            );
    }
    Ok(())
}

/// Median, interval and seed count of one sampler on one function at budget index `k`.
struct Summary {
    median: f64,
    lo: f64,
    hi: f64,
    seeds: usize,
}

fn summarise(runs: &BTreeMap<u64, Run>, k: usize) -> Summary {
    let v: Vec<f64> = runs
        .values()
        .map(|r| r.scores[k])
        .filter(|x| !x.is_nan())
        .collect();
    let (lo, hi) = median_interval(&v);
    Summary {
        median: median(&v),
        lo,
        hi,
        seeds: v.len(),
    }
}

fn fmt_num(x: f64) -> String {
    if x.is_nan() {
        "-".into()
    } else if x != 0.0 && (x.abs() >= 1e4 || x.abs() < 1e-3) {
        format!("{x:.2e}")
    } else {
        format!("{x:.4}")
    }
}

/// Distance of a median from the optimum (never negative; floating-point slack clamps at 0).
fn distance(median: f64, optimum: f64) -> f64 {
    (median - optimum).max(0.0)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let seeds = parse_seeds(
        &arg(&args, "--seeds").unwrap_or_else(|| if quick { "5".into() } else { "20".into() }),
    );
    let budgets: Vec<usize> = arg(&args, "--budgets")
        .unwrap_or_else(|| {
            if quick {
                "20,50".into()
            } else {
                "20,50,100".into()
            }
        })
        .split(',')
        .filter_map(|s| s.parse().ok())
        .collect();
    let Some(k50) = budgets
        .iter()
        .position(|&b| b == 50)
        .or(Some(budgets.len().saturating_sub(1)))
    else {
        return;
    };
    let wanted = arg(&args, "--functions");
    let samplers: Vec<String> = arg(&args, "--samplers")
        .unwrap_or_else(|| "gp,tpe,random".into())
        .split(',')
        .map(str::to_string)
        .collect();
    let parallel: usize = arg(&args, "--parallel")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let per_seed = args.iter().any(|a| a == "--per-seed");
    let parallel_samplers: Vec<String> = arg(&args, "--parallel-samplers")
        .unwrap_or_else(|| "gp,tpe".into())
        .split(',')
        .map(str::to_string)
        .collect();
    let functions: Vec<Function> = suite::functions()
        .into_iter()
        .filter(|f| {
            wanted
                .as_ref()
                .is_none_or(|w| w.split(',').any(|n| n == f.name))
        })
        .collect();
    if !suite::table_path().exists() {
        eprintln!(
            "note: {} is missing; the fmnist function is left out",
            suite::table_path().display()
        );
    }
    let mut results: Results = BTreeMap::new();
    for path in arg(&args, "--optuna").iter().flat_map(|p| p.split(',')) {
        if let Err(e) = read_optuna(path, &functions, &seeds, &budgets, &mut results) {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
    let machine = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|s| s.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let mut out = String::new();
    let _ = writeln!(
        out,
        "sampler suite: {} seeds, budgets {budgets:?}; score = noise-free value at the best observed \
         trial (minimised); median [95 % interval of the median]; cpu/wall ms per trial \
         (process CPU time, mean over a study); machine: {machine}, {} CPUs",
        seeds.len(),
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    print!("{out}");
    let mut parallel_results: Results = BTreeMap::new();
    for f in &functions {
        for s in &samplers {
            for &seed in &seeds {
                let Some(sampler) = make(s, seed) else {
                    eprintln!("unknown sampler {s}");
                    std::process::exit(2);
                };
                let run = run_sequential(f, sampler.as_ref(), seed, &budgets);
                if per_seed {
                    println!("  {} {s} seed {seed}: {:?}", f.name, run.scores);
                }
                results
                    .entry(s.clone())
                    .or_default()
                    .entry(f.name.to_string())
                    .or_default()
                    .insert(seed, run);
            }
        }
        if parallel > 1 {
            for s in &parallel_samplers {
                for &seed in &seeds {
                    let Some(sampler) = make(s, seed) else {
                        continue;
                    };
                    let run = run_parallel(f, sampler.as_ref(), seed, &budgets, parallel);
                    parallel_results
                        .entry(s.clone())
                        .or_default()
                        .entry(f.name.to_string())
                        .or_default()
                        .insert(seed, run);
                }
            }
        }
        let table = function_table(f, &results, &budgets, k50);
        print!("{table}");
        out.push_str(&table);
    }
    let summary = summary_table(&functions, &results, &budgets, k50, &samplers);
    print!("{summary}");
    out.push_str(&summary);
    if parallel > 1 {
        let p = parallel_table(&functions, &results, &parallel_results, k50, parallel);
        print!("{p}");
        out.push_str(&p);
    }
    if args.iter().any(|a| a == "zdt1" || a.contains("zdt")) {
        mo::run(&args, &seeds);
    }
    if let Some(path) = arg(&args, "--markdown")
        && let Err(e) = std::fs::write(&path, &out)
    {
        eprintln!("cannot write {path}: {e}");
    }
}

fn function_table(f: &Function, results: &Results, budgets: &[usize], k50: usize) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{} — {} (optimum {})",
        f.name,
        f.kind,
        fmt_num(f.optimum)
    );
    let mut header = format!("  {:<16}", "sampler");
    for b in budgets {
        header += &format!(" {:>30}", format!("@{b}"));
    }
    header += &format!(
        " {:>6} {:>10} {:>10} {:>6}",
        "seeds", "cpu ms", "wall ms", "rank"
    );
    let _ = writeln!(out, "{header}");
    // Ranks by median at budget k50.
    let mut meds: Vec<(String, f64)> = results
        .iter()
        .filter_map(|(s, by_f)| {
            by_f.get(f.name)
                .map(|runs| (s.clone(), summarise(runs, k50).median))
        })
        .filter(|(_, m)| !m.is_nan())
        .collect();
    meds.sort_by(|a, b| a.1.total_cmp(&b.1));
    for (s, by_f) in results {
        let Some(runs) = by_f.get(f.name) else {
            continue;
        };
        let mut line = format!("  {s:<16}");
        let mut n = 0;
        for k in 0..budgets.len() {
            let sm = summarise(runs, k);
            n = n.max(sm.seeds);
            line += &format!(
                " {:>30}",
                format!(
                    "{} [{}, {}]",
                    fmt_num(sm.median),
                    fmt_num(sm.lo),
                    fmt_num(sm.hi)
                )
            );
        }
        let cpu = median(&runs.values().map(|r| r.cpu_ms).collect::<Vec<_>>());
        let wall = median(&runs.values().map(|r| r.wall_ms).collect::<Vec<_>>());
        let rank = meds
            .iter()
            .position(|(name, _)| name == s)
            .map_or("-".to_string(), |r| (r + 1).to_string());
        line += &format!(" {n:>6} {:>10.3} {:>10.3} {rank:>6}", cpu, wall);
        let _ = writeln!(out, "{line}");
    }
    out
}

/// greenlab vs Optuna at budget index `k`: distance ratio and verdict per function.
fn summary_table(
    functions: &[Function],
    results: &Results,
    budgets: &[usize],
    k: usize,
    samplers: &[String],
) -> String {
    let mut out = String::new();
    let pairs: Vec<(&str, &str)> = [
        ("gp", "optuna-gp"),
        ("tpe", "optuna-tpe"),
        ("random", "optuna-random"),
    ]
    .into_iter()
    .filter(|(g, o)| samplers.iter().any(|s| s == g) && results.contains_key(*o))
    .collect();
    if pairs.is_empty() {
        return out;
    }
    let _ = writeln!(
        out,
        "\ngreenlab vs Optuna after {} trials: median distance to the optimum, ratio \
         greenlab/Optuna (< 1: greenlab closer), ok = greenlab's median inside Optuna's interval \
         or better",
        budgets[k]
    );
    let mut header = format!("  {:<16}", "function");
    for (g, o) in &pairs {
        header += &format!(" {:>10} {:>12} {:>7} {:>4}", g, o, "ratio", "ok");
    }
    let _ = writeln!(out, "{header}");
    let mut misses = vec![];
    for f in functions {
        let mut line = format!("  {:<16}", f.name);
        for (g, o) in &pairs {
            let get = |s: &str| {
                results
                    .get(s)
                    .and_then(|by_f| by_f.get(f.name))
                    .map(|runs| summarise(runs, k))
            };
            match (get(g), get(o)) {
                (Some(a), Some(b)) if !a.median.is_nan() && !b.median.is_nan() => {
                    let (da, db) = (distance(a.median, f.optimum), distance(b.median, f.optimum));
                    let ratio = if db > 0.0 {
                        da / db
                    } else if da > 0.0 {
                        f64::INFINITY
                    } else {
                        1.0
                    };
                    let ok = a.median <= b.hi;
                    if !ok {
                        misses.push(format!(
                            "{} {g}: {} vs {o} {} [{}, {}] (distance ratio {ratio:.2})",
                            f.name,
                            fmt_num(a.median),
                            fmt_num(b.median),
                            fmt_num(b.lo),
                            fmt_num(b.hi)
                        ));
                    }
                    line += &format!(
                        " {:>10} {:>12} {:>7.2} {:>4}",
                        fmt_num(da),
                        fmt_num(db),
                        ratio,
                        if ok { "yes" } else { "NO" }
                    );
                }
                _ => line += &format!(" {:>10} {:>12} {:>7} {:>4}", "-", "-", "-", "-"),
            }
        }
        let _ = writeln!(out, "{line}");
    }
    // Time per trial over all functions (median of the per-study means).
    let _ = writeln!(
        out,
        "\ntime per trial, median over all studies (process CPU ms / wall ms)"
    );
    for (g, o) in &pairs {
        let all = |s: &str, wall: bool| {
            let v: Vec<f64> = results
                .get(s)
                .map(|by_f| {
                    by_f.iter()
                        .filter(|(name, _)| functions.iter().any(|f| f.name == name.as_str()))
                        .flat_map(|(_, runs)| {
                            runs.values()
                                .map(|r| if wall { r.wall_ms } else { r.cpu_ms })
                        })
                        .collect()
                })
                .unwrap_or_default();
            median(&v)
        };
        let (gc, oc, gw, ow) = (all(g, false), all(o, false), all(g, true), all(o, true));
        let _ = writeln!(
            out,
            "  {g:<8} {gc:>9.3} / {gw:>9.3}   {o:<14} {oc:>9.3} / {ow:>9.3}   Optuna/greenlab: cpu {:.1}x, wall {:.1}x",
            oc / gc,
            ow / gw
        );
    }
    for s in ["gp", "tpe"] {
        if samplers.iter().any(|x| x == s)
            && let Some(f) = functions
                .iter()
                .find(|f| f.name == "hartmann6")
                .or(functions.first())
        {
            let _ = writeln!(
                out,
                "  {s}: one suggestion from a 100-trial {} history: {:.3} ms CPU",
                f.name,
                suggestion_ms(f, s, 100)
            );
        }
    }
    if misses.is_empty() {
        let _ = writeln!(out, "\nno misses");
    } else {
        let _ = writeln!(out, "\nmisses (greenlab's median above Optuna's interval):");
        for m in misses {
            let _ = writeln!(out, "  {m}");
        }
    }
    out
}

fn parallel_table(
    functions: &[Function],
    sequential: &Results,
    parallel: &Results,
    k: usize,
    workers: usize,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{workers} asynchronous workers against one, median score at budget index {k}: \
         sequential, parallel, the ratio of their distances to the optimum (> 1: the parallel \
         run ends further away), and the suggestions made while others ran that fell within \
         0.01 of a running trial in every unit-cube coordinate"
    );
    for (s, by_f) in parallel {
        let _ = writeln!(
            out,
            "  {:<16} {:>12} {:>12} {:>7} {:>10}",
            format!("{s}: function"),
            "sequential",
            format!("{workers} workers"),
            "ratio",
            "near-dup"
        );
        for f in functions {
            let Some(b) = by_f.get(f.name) else {
                continue;
            };
            // Liar variants behave as their base sampler when nothing is running.
            let base = s
                .strip_suffix("-noliar")
                .or_else(|| s.split_once("-liar").map(|(b, _)| b))
                .unwrap_or(s);
            let seq = sequential
                .get(s)
                .or_else(|| sequential.get(base))
                .and_then(|m| m.get(f.name))
                .map(|a| summarise(a, k).median)
                .unwrap_or(f64::NAN);
            let par = summarise(b, k).median;
            let (da, db) = (distance(seq, f.optimum), distance(par, f.optimum));
            let (near, total) = b.values().fold((0, 0), |acc, r| {
                (acc.0 + r.near_duplicates.0, acc.1 + r.near_duplicates.1)
            });
            let _ = writeln!(
                out,
                "  {:<16} {:>12} {:>12} {:>7.2} {:>10}",
                f.name,
                fmt_num(seq),
                fmt_num(par),
                if da > 0.0 { db / da } else { f64::NAN },
                format!("{near}/{total}")
            );
        }
    }
    out
}
