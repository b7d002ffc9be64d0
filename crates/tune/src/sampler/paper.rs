//! The paper's own search strategies, as its public code ran them (Yarally et al., CAIN 2023;
//! `src/NN_training_tool.ipynb` of yarally/preliminary-green-ai), for a faithful replication.
//! greenlab's own `grid` and `gp` samplers are better searches; these reproduce the paper.
//!
//! - [`PaperGridSampler`] (`paper-grid`): per real parameter `levels` (5) values
//!   `low + i·(high − low)/levels`, `i = 0..levels` — linear scale, the upper end excluded — and
//!   `experiments` (64) points drawn without replacement from the full product.
//! - [`PaperGpSampler`] (`paper-gp`): scikit-learn's `GaussianProcessRegressor()` with its
//!   defaults — kernel `ConstantKernel(1.0) * RBF(1.0)` with both hyperparameters fixed,
//!   `alpha = 1e-10`, `normalize_y = False` (prior mean 0) — fitted on the raw, unscaled
//!   parameter values and every finished trial's value; the next point is the one of
//!   `n_candidates` (10,000) uniform random candidates with the highest probability of improvement
//!   `Φ((μ − y_best) / (σ + 1e-9))` (the first such on ties). The first point is random.
//!
//! Combine either with `repeat = 8` (see [`repeat`](super::repeat)) for the paper's eight trainings
//! per configuration, each its own observation. The random numbers are greenlab's (seeded per
//! trial), not Python's Mersenne Twister, so the points differ from the paper's run, not their
//! distribution.

use serde::{Deserialize, Serialize};

use crate::TuneError;
use crate::linalg::{cholesky, dot, solve_cholesky, solve_lower};
use crate::sampler::gp::normal::cdf;
use crate::sampler::grid::permute;
use crate::sampler::rng::{TrialRng, mix};
use crate::sampler::{SampleContext, Sampler};
use crate::space::{Distribution, ParamValue, Params, SearchSpace};
use crate::trial::{Direction, TrialState};

/// Settings of [`PaperGridSampler`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PaperGridOptions {
    /// Values per real parameter (the paper: 5).
    pub levels: u64,
    /// Points drawn from the grid, without replacement (the paper: 64 experiments).
    pub experiments: u64,
}

impl Default for PaperGridOptions {
    fn default() -> Self {
        PaperGridOptions {
            levels: 5,
            experiments: 64,
        }
    }
}

/// The paper's grid search; see the [module documentation](self).
#[derive(Clone, Debug)]
pub struct PaperGridSampler {
    seed: u64,
    options: PaperGridOptions,
}

impl PaperGridSampler {
    /// A paper grid with this seed.
    pub fn new(seed: u64, options: PaperGridOptions) -> PaperGridSampler {
        PaperGridSampler { seed, options }
    }

    /// Each parameter's values, in the space's (name) order: real ones by the paper's rule,
    /// integers `low, low + 1, …, high − 1` (the paper's `range(upper − lower)`, which never
    /// reaches the upper bound), categorical ones every choice.
    pub fn axes(&self, space: &SearchSpace) -> Result<Vec<Vec<ParamValue>>, TuneError> {
        let levels = self.options.levels.max(1);
        space
            .params
            .iter()
            .map(|(name, d)| match d {
                Distribution::Float { low, high, .. } => Ok((0..levels)
                    .map(|i| ParamValue::Float(low + i as f64 * (high - low) / levels as f64))
                    .collect()),
                Distribution::Int { low, high, .. } if high > low => {
                    Ok((*low..*high).map(ParamValue::Int).collect())
                }
                Distribution::Int { low, .. } => Ok(vec![ParamValue::Int(*low)]),
                Distribution::Categorical { choices } if !choices.is_empty() => Ok(choices.clone()),
                Distribution::Categorical { .. } => Err(TuneError::InvalidSpace(format!(
                    "paper-grid: parameter {name} has no choices"
                ))),
            })
            .collect()
    }

    fn size(&self, axes: &[Vec<ParamValue>]) -> Result<u64, TuneError> {
        axes.iter().try_fold(1u64, |acc, a| {
            acc.checked_mul(a.len() as u64)
                .ok_or_else(|| TuneError::InvalidSpace("the grid has more than 2^64 points".into()))
        })
    }

    /// Grid point `index` of the full product, the last parameter varying fastest (the order
    /// of Python's `itertools.product`).
    pub fn point(&self, space: &SearchSpace, index: u64) -> Result<Params, TuneError> {
        let axes = self.axes(space)?;
        let mut rest = index;
        let mut values = vec![ParamValue::Int(0); axes.len()];
        for (slot, axis) in values.iter_mut().zip(&axes).rev() {
            let n = axis.len() as u64;
            *slot = axis[(rest % n) as usize].clone();
            rest /= n;
        }
        Ok(space.params.keys().cloned().zip(values).collect())
    }
}

impl Sampler for PaperGridSampler {
    fn name(&self) -> &str {
        "paper-grid"
    }

    fn suggest(&self, ctx: &SampleContext<'_>) -> Result<Params, TuneError> {
        let axes = self.axes(ctx.space)?;
        let size = self.size(&axes)?;
        if ctx.number >= size.min(self.options.experiments) {
            return Err(TuneError::Sampler {
                sampler: "paper-grid".into(),
                message: format!(
                    "all {} drawn grid points have been suggested",
                    size.min(self.options.experiments)
                ),
            });
        }
        // The first `experiments` indices of a seeded permutation are a uniform draw without
        // replacement, as the paper's `random.sample(range(size), experiments)`.
        let index = permute(ctx.number, size, mix(&[self.seed, 0x9a9e]));
        self.point(ctx.space, index)
    }

    fn max_trials(&self, space: &SearchSpace) -> Option<u64> {
        let axes = self.axes(space).ok()?;
        Some(self.size(&axes).ok()?.min(self.options.experiments))
    }
}

/// Settings of [`PaperGpSampler`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PaperGpOptions {
    /// Uniform random candidates scored by probability of improvement (the paper: 10,000).
    pub n_candidates: usize,
    /// Which objective of the study to optimise (default 0).
    pub objective: usize,
}

impl Default for PaperGpOptions {
    fn default() -> Self {
        PaperGpOptions {
            n_candidates: 10_000,
            objective: 0,
        }
    }
}

/// scikit-learn's `GaussianProcessRegressor()` with its defaults, fitted: kernel
/// `1.0 · exp(−‖x − x′‖² / 2)` with fixed hyperparameters, `alpha = 1e-10` on the diagonal,
/// prior mean 0 (`normalize_y = False`).
#[derive(Clone, Debug)]
pub struct SklearnDefaultGp {
    x: Vec<Vec<f64>>,
    factor: Vec<f64>,
    weights: Vec<f64>,
}

/// scikit-learn's default `alpha`, added to the kernel's diagonal.
pub const SKLEARN_ALPHA: f64 = 1e-10;

fn rbf(a: &[f64], b: &[f64]) -> f64 {
    let d2: f64 = a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum();
    (-0.5 * d2).exp()
}

impl SklearnDefaultGp {
    /// Fits the model to points `x` (raw values) and targets `y`; `None` when the kernel
    /// matrix is not positive definite even with `alpha` (scikit-learn raises then too).
    pub fn fit(x: Vec<Vec<f64>>, y: &[f64]) -> Option<SklearnDefaultGp> {
        let n = x.len();
        if n == 0 || y.len() != n {
            return None;
        }
        let mut k = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..=i {
                let v = rbf(&x[i], &x[j]);
                k[i * n + j] = v;
                k[j * n + i] = v;
            }
            k[i * n + i] += SKLEARN_ALPHA;
        }
        let factor = cholesky(&k, n)?;
        let mut weights = y.to_vec();
        solve_cholesky(&factor, n, &mut weights);
        Some(SklearnDefaultGp { x, factor, weights })
    }

    /// Posterior mean and standard deviation at `point` (`predict(X, return_std=True)`); a
    /// negative variance from rounding is clamped to 0 as scikit-learn does.
    pub fn predict(&self, point: &[f64]) -> (f64, f64) {
        let n = self.x.len();
        let kx: Vec<f64> = self.x.iter().map(|xi| rbf(point, xi)).collect();
        let mean = dot(&kx, &self.weights);
        let mut v = kx;
        solve_lower(&self.factor, n, &mut v);
        let var = 1.0 - dot(&v, &v);
        (mean, var.max(0.0).sqrt())
    }
}

/// The paper's probability of improvement: `Φ((μ − best) / (σ + 1e-9))` when maximising,
/// `Φ((best − μ) / (σ + 1e-9))` when minimising.
pub fn paper_probability_of_improvement(mean: f64, std: f64, best: f64, maximise: bool) -> f64 {
    let z = if maximise { mean - best } else { best - mean };
    cdf(z / (std + 1e-9))
}

/// The paper's Bayesian optimisation; see the [module documentation](self).
#[derive(Clone, Debug)]
pub struct PaperGpSampler {
    seed: u64,
    options: PaperGpOptions,
}

impl PaperGpSampler {
    /// A paper GP-PI sampler with this seed.
    pub fn new(seed: u64, options: PaperGpOptions) -> PaperGpSampler {
        PaperGpSampler { seed, options }
    }
}

/// A parameter's raw value as the paper's model sees it (booleans and integers as numbers).
fn raw(v: &ParamValue) -> Option<f64> {
    match v {
        ParamValue::Bool(b) => Some(f64::from(u8::from(*b))),
        other => other.as_f64(),
    }
}

impl Sampler for PaperGpSampler {
    fn name(&self) -> &str {
        "paper-gp"
    }

    fn suggest(&self, ctx: &SampleContext<'_>) -> Result<Params, TuneError> {
        let fail = |message: String| TuneError::Sampler {
            sampler: "paper-gp".into(),
            message,
        };
        let maximise = ctx
            .objectives
            .get(self.options.objective)
            .is_none_or(|o| o.direction == Direction::Maximize);
        let mut x = Vec::new();
        let mut y = Vec::new();
        for t in ctx
            .history
            .iter()
            .filter(|t| t.state == TrialState::Complete)
        {
            let Some(value) = t
                .values
                .as_ref()
                .and_then(|v| v.get(self.options.objective))
                .copied()
                .filter(|v| v.is_finite())
            else {
                continue;
            };
            let point: Option<Vec<f64>> = ctx
                .space
                .params
                .keys()
                .map(|name| t.params.get(name).and_then(raw))
                .collect();
            if let Some(point) = point {
                x.push(point);
                y.push(value);
            }
        }
        let mut rng = TrialRng::new(self.seed, ctx.number, 0);
        let mut draw = || -> Result<(Params, Vec<f64>), TuneError> {
            let unit: Vec<f64> = (0..ctx.space.dims()).map(|_| rng.next_f64()).collect();
            let params = ctx.space.from_unit(&unit)?;
            let values = ctx
                .space
                .params
                .keys()
                .map(|name| params.get(name).and_then(raw).unwrap_or(f64::NAN))
                .collect();
            Ok((params, values))
        };
        if x.is_empty() {
            return Ok(draw()?.0);
        }
        let best = if maximise {
            y.iter().copied().fold(f64::NEG_INFINITY, f64::max)
        } else {
            y.iter().copied().fold(f64::INFINITY, f64::min)
        };
        let model = SklearnDefaultGp::fit(x, &y).ok_or_else(|| {
            fail("the kernel matrix is not positive definite (as scikit-learn would fail)".into())
        })?;
        let mut chosen: Option<(f64, Params)> = None;
        for _ in 0..self.options.n_candidates.max(1) {
            let (params, values) = draw()?;
            let (mean, std) = model.predict(&values);
            let pi = paper_probability_of_improvement(mean, std, best, maximise);
            // Strictly greater, starting from −1: the first of equal candidates wins.
            if chosen.as_ref().is_none_or(|(b, _)| pi > *b) {
                chosen = Some((pi, params));
            }
        }
        chosen
            .map(|(_, p)| p)
            .ok_or_else(|| fail("no candidate".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::trial;

    fn paper_space() -> SearchSpace {
        SearchSpace::new([
            ("lr", Distribution::float(1e-5, 1e-1)),
            ("beta1", Distribution::float(0.1, 1.0)),
            ("beta2", Distribution::float(0.8, 1.0)),
        ])
    }

    #[test]
    fn the_grid_rule_gives_the_papers_levels() {
        let s = PaperGridSampler::new(1, PaperGridOptions::default());
        let axes = s.axes(&paper_space()).unwrap();
        let f =
            |a: &Vec<ParamValue>| -> Vec<f64> { a.iter().map(|v| v.as_f64().unwrap()).collect() };
        // Name order: beta1, beta2, lr. Hand-computed: low + i (high − low) / 5, i = 0..4.
        let close = |a: Vec<f64>, b: [f64; 5]| {
            assert!(
                a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12),
                "{a:?} vs {b:?}"
            )
        };
        close(f(&axes[0]), [0.1, 0.28, 0.46, 0.64, 0.82]);
        close(f(&axes[1]), [0.8, 0.84, 0.88, 0.92, 0.96]);
        close(f(&axes[2]), [1e-5, 0.020008, 0.040006, 0.060004, 0.080002]);
        // The product in itertools order: index 7 = (0, 1, 2) with the last fastest.
        let p = s.point(&paper_space(), 7).unwrap();
        assert!((p["beta1"].as_f64().unwrap() - 0.1).abs() < 1e-12);
        assert!((p["beta2"].as_f64().unwrap() - 0.84).abs() < 1e-12);
        assert!((p["lr"].as_f64().unwrap() - 0.040006).abs() < 1e-12);
        // Integer factors: range(upper - lower).
        let ints = SearchSpace::new([("n", Distribution::int(3, 7))]);
        let a = s.axes(&ints).unwrap();
        assert_eq!(a[0], (3..7).map(ParamValue::Int).collect::<Vec<_>>());
    }

    #[test]
    fn the_grid_draws_64_distinct_points_of_125_then_stops() {
        let space = paper_space();
        let s = PaperGridSampler::new(5, PaperGridOptions::default());
        assert_eq!(s.max_trials(&space), Some(64));
        let mut seen: Vec<String> = (0..64)
            .map(|number| {
                let ctx = SampleContext {
                    space: &space,
                    objectives: &[],
                    history: &[],
                    number,
                };
                format!("{:?}", s.suggest(&ctx).unwrap())
            })
            .collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), 64, "without replacement");
        let ctx = SampleContext {
            space: &space,
            objectives: &[],
            history: &[],
            number: 64,
        };
        assert!(s.suggest(&ctx).is_err());
    }

    #[test]
    fn the_sklearn_default_gp_interpolates_by_hand() {
        // One observation y at x: K = 1 + 1e-10, so μ(x') = k(x', x) y / (1 + 1e-10) and
        // σ²(x') = 1 − k² / (1 + 1e-10), with k = exp(−d² / 2).
        let gp = SklearnDefaultGp::fit(vec![vec![0.0, 0.0]], &[0.8]).unwrap();
        let k = (-0.5f64 * 2.0).exp();
        let (m, s) = gp.predict(&[1.0, 1.0]);
        assert!((m - k * 0.8 / (1.0 + 1e-10)).abs() < 1e-12, "{m}");
        assert!(
            (s - (1.0 - k * k / (1.0 + 1e-10)).sqrt()).abs() < 1e-12,
            "{s}"
        );
        // Far away the prior mean is 0 (no normalisation) and σ is 1.
        let (m, s) = gp.predict(&[100.0, 0.0]);
        assert!(m.abs() < 1e-12 && (s - 1.0).abs() < 1e-12);
    }

    #[test]
    fn the_sklearn_default_gp_matches_scikit_learn() {
        // Written by crates/tune/fixtures/make_sklearn_gp.py: six configurations, three rows
        // each (the paper's repetitions), raw (lr, β1, β2) values.
        let f: serde_json::Value =
            serde_json::from_str(include_str!("../../fixtures/sklearn_gp.json")).unwrap();
        let rows = |key: &str| -> Vec<Vec<f64>> {
            f[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    r.as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_f64().unwrap())
                        .collect()
                })
                .collect()
        };
        let list = |key: &str| -> Vec<f64> {
            f[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect()
        };
        let y = list("y");
        let gp = SklearnDefaultGp::fit(rows("x"), &y).unwrap();
        let best = f["best"].as_f64().unwrap();
        for (i, q) in rows("queries").iter().enumerate() {
            let (m, s) = gp.predict(q);
            // The kernel matrix of repeated rows is singular but for alpha = 1e-10, so both
            // implementations agree to the conditioning, not to machine precision.
            assert!(
                (m - list("mean")[i]).abs() < 1e-6,
                "query {i}: mean {m} vs {}",
                list("mean")[i]
            );
            assert!(
                (s - list("std")[i]).abs() < 1e-6,
                "query {i}: std {s} vs {}",
                list("std")[i]
            );
            let pi = paper_probability_of_improvement(m, s, best, true);
            let want = list("probability_of_improvement")[i];
            assert!(
                (pi - want).abs() < 1e-4 * want.max(1e-3) || (pi < 1e-12 && want < 1e-12),
                "query {i}: PI {pi} vs {want}"
            );
        }
    }

    #[test]
    fn probability_of_improvement_is_the_papers() {
        // Φ((0.9 − 0.8) / (0.1 + 1e-9)) = Φ(0.99999999) ≈ 0.841344744
        let pi = paper_probability_of_improvement(0.9, 0.1, 0.8, true);
        assert!((pi - 0.841_344_744).abs() < 1e-8, "{pi}");
        let pi = paper_probability_of_improvement(0.9, 0.1, 0.8, false);
        assert!((pi - (1.0 - 0.841_344_744)).abs() < 1e-8, "{pi}");
        // σ = 0 at an observed point: the 1e-9 keeps it finite.
        assert_eq!(paper_probability_of_improvement(0.8, 0.0, 0.8, true), 0.5);
    }

    #[test]
    fn the_first_point_is_random_then_the_model_decides() {
        let space = paper_space();
        let s = PaperGpSampler::new(
            3,
            PaperGpOptions {
                n_candidates: 500,
                objective: 0,
            },
        );
        let ask = |history: &[crate::Trial], number| {
            s.suggest(&SampleContext {
                space: &space,
                objectives: &[],
                history,
                number,
            })
            .unwrap()
        };
        let first = ask(&[], 0);
        assert_eq!(first, ask(&[], 0), "seeded");
        // Accuracy rises with β1: after two observations the model proposes a large β1.
        let p = |b1: f64| -> Params {
            [
                ("beta1".to_string(), ParamValue::Float(b1)),
                ("beta2".to_string(), ParamValue::Float(0.9)),
                ("lr".to_string(), ParamValue::Float(0.01)),
            ]
            .into()
        };
        let history = vec![
            trial(0, p(0.2), Some(vec![0.3]), TrialState::Complete),
            trial(1, p(0.2), Some(vec![0.32]), TrialState::Complete),
            trial(2, p(0.9), Some(vec![0.8]), TrialState::Complete),
        ];
        let next = ask(&history, 3);
        assert!(next["beta1"].as_f64().unwrap() > 0.5, "{next:?}");
    }
}
