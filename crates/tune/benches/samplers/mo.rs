//! The two-objective part: ZDT1 and ZDT2 over four parameters, recorded as accuracy `1 − f1`
//! (maximised) and energy `f2` (minimised); the median hypervolume of the evaluated points after
//! 20/50/100 trials (reference point (1.1, 11); the true fronts reach ≈ 11.77 and ≈ 11.43) and
//! the CPU time per trial, for random, ParEGO and NSGA-II (`--mo-samplers`).

use greenlab_tune::sampler::nsga2::hypervolume_2d;
use greenlab_tune::{Direction, Distribution, Objective, SampleContext, SearchSpace};

use crate::{arg, make, median, process_cpu_ms, trial};

const CHECKPOINTS: [usize; 3] = [20, 50, 100];

/// ZDT1 and ZDT2 (Zitzler, Deb & Thiele 2000): two costs on `[0, 1]^d`.
fn zdt(x: &[f64], concave: bool) -> (f64, f64) {
    let g = 1.0 + 9.0 * x[1..].iter().sum::<f64>() / (x.len() - 1) as f64;
    let r = x[0] / g;
    (x[0], g * (1.0 - if concave { r * r } else { r.sqrt() }))
}

fn study(concave: bool, sampler: &dyn greenlab_tune::Sampler) -> (Vec<f64>, f64) {
    const D: usize = 4;
    let space = SearchSpace {
        params: (0..D)
            .map(|i| (format!("x{i}"), Distribution::float(0.0, 1.0)))
            .collect(),
    };
    let objectives = [
        Objective {
            metric: "accuracy".into(),
            direction: Direction::Maximize,
        },
        Objective {
            metric: "energy".into(),
            direction: Direction::Minimize,
        },
    ];
    let trials = CHECKPOINTS[2];
    let mut history = Vec::with_capacity(trials);
    let (mut points, mut at) = (vec![], vec![]);
    let c0 = process_cpu_ms();
    for n in 0..trials as u64 {
        let ctx = SampleContext {
            space: &space,
            objectives: &objectives,
            history: &history,
            number: n,
        };
        let params = sampler.suggest(&ctx).expect("suggestion");
        let x: Vec<f64> = (0..D)
            .map(|i| params[&format!("x{i}")].as_f64().unwrap_or(f64::NAN))
            .collect();
        let (f1, f2) = zdt(&x, concave);
        points.push((f1, f2));
        history.push(trial(n, params, Some(vec![1.0 - f1, f2])));
        if CHECKPOINTS.contains(&(n as usize + 1)) {
            at.push(hypervolume_2d(&points, (1.1, 11.0)));
        }
    }
    (at, (process_cpu_ms() - c0) / trials as f64)
}

pub fn run(args: &[String], seeds: &[u64]) {
    let samplers: Vec<String> = arg(args, "--mo-samplers")
        .unwrap_or_else(|| "random,parego,nsga2".into())
        .split(',')
        .map(str::to_string)
        .collect();
    for (name, concave) in [("zdt1", false), ("zdt2", true)] {
        if !args.iter().any(|a| a.split(',').any(|n| n == name)) {
            continue;
        }
        println!("\n{name}, 4 parameters (median hypervolume, larger is better)");
        println!(
            "  {:<10} {:>10} {:>10} {:>10} {:>14}",
            "sampler", "@20", "@50", "@100", "cpu ms/trial"
        );
        for s in &samplers {
            let mut at: Vec<Vec<f64>> = vec![vec![]; CHECKPOINTS.len()];
            let mut ms = vec![];
            for &seed in seeds {
                let Some(sampler) = make(s, seed) else {
                    eprintln!("unknown sampler {s}");
                    continue;
                };
                let (b, c) = study(concave, sampler.as_ref());
                for (k, v) in b.into_iter().enumerate() {
                    at[k].push(v);
                }
                ms.push(c);
            }
            println!(
                "  {:<10} {:>10.4} {:>10.4} {:>10.4} {:>14.4}",
                s,
                median(&at[0]),
                median(&at[1]),
                median(&at[2]),
                median(&ms)
            );
        }
    }
}
