//! The suite's test functions (all minimised), mirrored in `bench/samplers/suite.py` for the
//! Optuna side; `main` recomputes every value Optuna reported from its parameters, so the two
//! definitions are checked against each other on every run.

use std::collections::BTreeMap;
use std::f64::consts::{E, PI, TAU};

use greenlab_tune::sampler::rng::splitmix64;
use greenlab_tune::{Distribution, ParamValue, Params, SearchSpace};

/// One function of the suite.
pub struct Function {
    pub name: &'static str,
    /// What it stands for in the table's legend.
    pub kind: &'static str,
    pub space: SearchSpace,
    /// The noise-free value.
    pub f: Box<dyn Fn(&Params) -> f64>,
    /// Standard deviation of the Gaussian noise added to what the sampler sees (0: none).
    pub noise_sd: f64,
    /// The smallest value over the space.
    pub optimum: f64,
}

/// A standard normal draw fixed by (seed, trial number), the same as `suite.noise` in Python.
pub fn noise(seed: u64, number: u64) -> f64 {
    let mut state = (((seed & 0xFFFF_FFFF) << 32) | (number & 0xFFFF_FFFF)) ^ 0x05EE_D0FA_015E;
    let a = splitmix64(&mut state);
    let b = splitmix64(&mut state);
    let u1 = ((a >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    let u2 = (b >> 11) as f64 / (1u64 << 53) as f64;
    (-2.0 * u1.ln()).sqrt() * (TAU * u2).cos()
}

fn branin(x: &[f64]) -> f64 {
    let b = 5.1 / (4.0 * PI * PI);
    let c = 5.0 / PI;
    let t = 1.0 / (8.0 * PI);
    (x[1] - b * x[0] * x[0] + c * x[0] - 6.0).powi(2) + 10.0 * (1.0 - t) * x[0].cos() + 10.0
}

fn hartmann6(x: &[f64]) -> f64 {
    const ALPHA: [f64; 4] = [1.0, 1.2, 3.0, 3.2];
    const A: [[f64; 6]; 4] = [
        [10.0, 3.0, 17.0, 3.5, 1.7, 8.0],
        [0.05, 10.0, 17.0, 0.1, 8.0, 14.0],
        [3.0, 3.5, 1.7, 10.0, 17.0, 8.0],
        [17.0, 8.0, 0.05, 10.0, 0.1, 14.0],
    ];
    const P: [[f64; 6]; 4] = [
        [0.1312, 0.1696, 0.5569, 0.0124, 0.8283, 0.5886],
        [0.2329, 0.4135, 0.8307, 0.3736, 0.1004, 0.9991],
        [0.2348, 0.1451, 0.3522, 0.2883, 0.3047, 0.6650],
        [0.4047, 0.8828, 0.8732, 0.5743, 0.1091, 0.0381],
    ];
    let mut total = 0.0;
    for i in 0..4 {
        let mut e = 0.0;
        for j in 0..6 {
            e += A[i][j] * (x[j] - P[i][j]).powi(2);
        }
        total += ALPHA[i] * (-e).exp();
    }
    -total
}

fn rosenbrock(x: &[f64]) -> f64 {
    x.windows(2)
        .map(|w| 100.0 * (w[1] - w[0] * w[0]).powi(2) + (1.0 - w[0]).powi(2))
        .sum()
}

fn ackley(x: &[f64]) -> f64 {
    let n = x.len() as f64;
    let s1 = x.iter().map(|v| v * v).sum::<f64>() / n;
    let s2 = x.iter().map(|v| (TAU * v).cos()).sum::<f64>() / n;
    -20.0 * (-0.2 * s1.sqrt()).exp() - s2.exp() + 20.0 + E
}

fn levy(x: &[f64]) -> f64 {
    let w: Vec<f64> = x.iter().map(|v| 1.0 + (v - 1.0) / 4.0).collect();
    let head = (PI * w[0]).sin().powi(2);
    let mid: f64 = w[..w.len() - 1]
        .iter()
        .map(|wi| (wi - 1.0).powi(2) * (1.0 + 10.0 * (PI * wi + 1.0).sin().powi(2)))
        .sum();
    let last = w[w.len() - 1];
    head + mid + (last - 1.0).powi(2) * (1.0 + (TAU * last).sin().powi(2))
}

fn rastrigin(x: &[f64]) -> f64 {
    10.0 * x.len() as f64
        + x.iter()
            .map(|v| v * v - 10.0 * (TAU * v).cos())
            .sum::<f64>()
}

fn styblinski_tang_1d(v: f64) -> f64 {
    0.5 * (v.powi(4) - 16.0 * v * v + 5.0 * v)
}

fn styblinski_tang(x: &[f64]) -> f64 {
    x.iter().map(|&v| styblinski_tang_1d(v)).sum()
}

fn log_valley(x: &[f64]) -> f64 {
    let a = (x[0].log10() + 3.0) / 2.0;
    let b = (x[1].log10() + 3.5) / 1.5;
    a * a + 10.0 * (b - a * a).powi(2) + 4.0 * (x[2] - 0.9).powi(2)
}

fn name(i: usize) -> String {
    format!("x{i:02}")
}

fn float_space(bounds: &[(f64, f64)]) -> SearchSpace {
    SearchSpace {
        params: bounds
            .iter()
            .enumerate()
            .map(|(i, &(lo, hi))| (name(i), Distribution::float(lo, hi)))
            .collect(),
    }
}

fn num(p: &Params, key: &str) -> f64 {
    p.get(key).and_then(ParamValue::as_f64).unwrap_or(f64::NAN)
}

fn vector(p: &Params, d: usize) -> Vec<f64> {
    (0..d).map(|i| num(p, &name(i))).collect()
}

fn text(p: &Params, key: &str) -> String {
    p.get(key).map(|v| v.to_string()).unwrap_or_default()
}

fn vector_fn(d: usize, f: fn(&[f64]) -> f64) -> Box<dyn Fn(&Params) -> f64> {
    Box::new(move |p| f(&vector(p, d)))
}

const HARTMANN6_MIN: f64 = -3.322_368_011_415_515;
const BRANIN_MIN: f64 = 0.397_887_357_729_738_16;

/// Path of the shipped Fashion-MNIST table.
pub fn table_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../bench/samplers/fmnist-simplecnn.csv")
}

/// The table: learning-rate levels and mean test error per (lr index, batch size, conv, relu).
struct Table {
    lrs: Vec<f64>,
    error: BTreeMap<(usize, i64, i64, String), f64>,
}

fn load_table() -> Option<Table> {
    let text = std::fs::read_to_string(table_path()).ok()?;
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next()?.split(',').collect();
    let col = |n: &str| header.iter().position(|h| *h == n);
    let (ilr, ibs, iconv, irelu, iacc) = (
        col("lr")?,
        col("batch_size")?,
        col("conv")?,
        col("relu")?,
        col("accuracy")?,
    );
    let mut rows: BTreeMap<(u64, i64, i64, String), Vec<f64>> = BTreeMap::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split(',').collect();
        let lr: f64 = f[ilr].parse().ok()?;
        let key = (
            lr.to_bits(),
            f[ibs].parse().ok()?,
            f[iconv].parse().ok()?,
            f[irelu].to_string(),
        );
        rows.entry(key)
            .or_default()
            .push(1.0 - f[iacc].parse::<f64>().ok()?);
    }
    let mut lrs: Vec<f64> = rows.keys().map(|k| f64::from_bits(k.0)).collect();
    lrs.sort_by(f64::total_cmp);
    lrs.dedup();
    let error = rows
        .into_iter()
        .map(|((lr, bs, conv, relu), errs)| {
            let i = lrs
                .iter()
                .position(|&l| l == f64::from_bits(lr))
                .unwrap_or(0);
            let mean = errs.iter().sum::<f64>() / errs.len() as f64;
            ((i, bs, conv, relu), mean)
        })
        .collect();
    Some(Table { lrs, error })
}

/// The suite, in table order.
pub fn functions() -> Vec<Function> {
    let mut fs = vec![
        Function {
            name: "branin",
            kind: "2-D smooth, three minima",
            space: float_space(&[(-5.0, 10.0), (0.0, 15.0)]),
            f: vector_fn(2, branin),
            noise_sd: 0.0,
            optimum: BRANIN_MIN,
        },
        Function {
            name: "hartmann6",
            kind: "6-D smooth, multimodal",
            space: float_space(&[(0.0, 1.0); 6]),
            f: vector_fn(6, hartmann6),
            noise_sd: 0.0,
            optimum: HARTMANN6_MIN,
        },
        Function {
            name: "rosenbrock4",
            kind: "4-D curved valley",
            space: float_space(&[(-2.048, 2.048); 4]),
            f: vector_fn(4, rosenbrock),
            noise_sd: 0.0,
            optimum: 0.0,
        },
        Function {
            name: "ackley5",
            kind: "5-D rugged, one funnel",
            space: float_space(&[(-32.768, 32.768); 5]),
            f: vector_fn(5, ackley),
            noise_sd: 0.0,
            optimum: 0.0,
        },
        Function {
            name: "levy5",
            kind: "5-D rugged",
            space: float_space(&[(-10.0, 10.0); 5]),
            f: vector_fn(5, levy),
            noise_sd: 0.0,
            optimum: 0.0,
        },
        Function {
            name: "rastrigin4",
            kind: "4-D rugged, 10^4 minima",
            space: float_space(&[(-5.12, 5.12); 4]),
            f: vector_fn(4, rastrigin),
            noise_sd: 0.0,
            optimum: 0.0,
        },
        Function {
            name: "styblinski8",
            kind: "8-D multimodal, separable",
            space: float_space(&[(-5.0, 5.0); 8]),
            f: vector_fn(8, styblinski_tang),
            noise_sd: 0.0,
            optimum: -39.166_165_703_771_42 * 8.0,
        },
        Function {
            name: "hartmann6in20",
            kind: "20-D, 6 dims matter",
            space: float_space(&[(0.0, 1.0); 20]),
            f: vector_fn(6, hartmann6),
            noise_sd: 0.0,
            optimum: HARTMANN6_MIN,
        },
        Function {
            name: "logvalley3",
            kind: "log-scaled lr, wd + momentum",
            space: SearchSpace::new([
                ("x00", Distribution::log_float(1e-5, 1.0)),
                ("x01", Distribution::log_float(1e-6, 1e-1)),
                ("x02", Distribution::float(0.0, 0.99)),
            ]),
            f: vector_fn(3, log_valley),
            noise_sd: 0.0,
            optimum: 0.0,
        },
        Function {
            name: "intstyblinski5",
            kind: "5 integers (21 and 11 values)",
            space: SearchSpace::new([
                ("x00", Distribution::int(-10, 10)),
                ("x01", Distribution::int(-10, 10)),
                ("x02", Distribution::int(-10, 10)),
                ("x03", Distribution::int(-5, 5)),
                ("x04", Distribution::int(-5, 5)),
            ]),
            f: Box::new(|p| {
                let x = vector(p, 5);
                styblinski_tang(&[x[0] / 2.0, x[1] / 2.0, x[2] / 2.0, x[3], x[4]])
            }),
            noise_sd: 0.0,
            optimum: {
                let half = (-10..=10)
                    .map(|k| styblinski_tang_1d(k as f64 / 2.0))
                    .fold(f64::INFINITY, f64::min);
                let whole = (-5..=5)
                    .map(|k| styblinski_tang_1d(k as f64))
                    .fold(f64::INFINITY, f64::min);
                3.0 * half + 2.0 * whole
            },
        },
        Function {
            name: "catbranin",
            kind: "2 reals + 3 categoricals",
            space: SearchSpace::new([
                ("x00", Distribution::float(-5.0, 10.0)),
                ("x01", Distribution::float(0.0, 15.0)),
                ("c00", Distribution::categorical(["a", "b", "c", "d"])),
                ("c01", Distribution::categorical(["p", "q", "r"])),
                ("c02", Distribution::categorical(["plain", "flip"])),
            ]),
            f: Box::new(|p| {
                let (x0, mut x1) = (num(p, "x00"), num(p, "x01"));
                if text(p, "c02") == "flip" {
                    x1 = 15.0 - x1;
                }
                let offset = match text(p, "c00").as_str() {
                    "a" => 1.5,
                    "b" => 0.0,
                    "c" => 3.0,
                    _ => 0.7,
                };
                let penalty = match text(p, "c01").as_str() {
                    "p" => 0.4,
                    "q" => 2.0,
                    _ => 0.0,
                };
                branin(&[x0, x1]) + offset + penalty
            }),
            noise_sd: 0.0,
            optimum: BRANIN_MIN,
        },
        Function {
            name: "hartmann6noisy",
            kind: "hartmann6 + N(0, 0.1^2) noise",
            space: float_space(&[(0.0, 1.0); 6]),
            f: vector_fn(6, hartmann6),
            noise_sd: 0.1,
            optimum: HARTMANN6_MIN,
        },
    ];
    if let Some(table) = load_table() {
        let lo = table.lrs[0];
        let hi = table.lrs[table.lrs.len() - 1];
        let optimum = table.error.values().copied().fold(f64::INFINITY, f64::min);
        fs.push(Function {
            name: "fmnist",
            kind: "SimpleCNN on Fashion-MNIST (table)",
            space: SearchSpace::new([
                ("lr", Distribution::log_float(lo, hi)),
                ("batch_size", Distribution::categorical([64i64, 128, 256])),
                ("conv", Distribution::int(1, 4)),
                ("relu", Distribution::categorical(["true", "false"])),
            ]),
            f: Box::new(move |p| {
                let lr = num(p, "lr");
                let i = (0..table.lrs.len())
                    .min_by(|&a, &b| {
                        (table.lrs[a].ln() - lr.ln())
                            .abs()
                            .total_cmp(&(table.lrs[b].ln() - lr.ln()).abs())
                    })
                    .unwrap_or(0);
                let key = (
                    i,
                    num(p, "batch_size") as i64,
                    num(p, "conv") as i64,
                    text(p, "relu"),
                );
                table.error.get(&key).copied().unwrap_or(f64::NAN)
            }),
            noise_sd: 0.0,
            optimum,
        });
    }
    fs
}
