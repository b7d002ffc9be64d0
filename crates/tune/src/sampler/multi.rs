//! Multi-objective Bayesian optimisation by ParEGO (`parego`; Knowles, IEEE TEC 2006), for
//! accuracy × energy and any other set of objectives.
//!
//! Each suggestion draws one weight vector `λ` (for two objectives, one of `n_weights + 1` evenly
//! spaced ones; for more, uniformly on the simplex) from the seed and the trial number,
//! normalises every objective to `[0, 1]` over the observed trials (directions from
//! `ctx.objectives`: a minimised objective such as `energy` counts as a cost as it is, a
//! maximised one such as `accuracy` is negated), scalarises each trial with the augmented
//! Chebyshev function `max_i λ_i f_i + ρ Σ_i λ_i f_i`, and lets the Gaussian-process machinery
//! of [`gp`](super::gp) choose the point that most improves that scalarisation. Over many trials
//! the random weights spread the suggestions along the whole Pareto front. The energy objective
//! is read from `Trial::values` like any other.
//!
//! ```
//! use greenlab_tune::sampler::multi::{ParegoOptions, ParegoSampler};
//! let sampler = ParegoSampler::new(7, ParegoOptions::default());
//! # let _ = sampler;
//! ```

use serde::{Deserialize, Serialize};

use super::gp::data;
use super::gp::{GpOptions, propose};
use crate::TuneError;
use crate::sampler::rng::TrialRng;
use crate::sampler::{SampleContext, Sampler};
use crate::space::Params;

/// Settings of [`ParegoSampler`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ParegoOptions {
    /// Quasi-random trials before the model is used (default 10).
    pub n_startup: usize,
    /// For two objectives, weights are `(i/s, 1 − i/s)` for `i = 0..=s` (default `s = 10`).
    pub n_weights: usize,
    /// Weight of the linear term in the augmented Chebyshev function (default 0.05).
    pub rho: f64,
    /// The Gaussian process and acquisition used on the scalarisation (its `objective`, `n_startup`
    /// and `cost_aware` fields are ignored).
    pub gp: GpOptions,
}

impl Default for ParegoOptions {
    fn default() -> Self {
        ParegoOptions {
            n_startup: 10,
            n_weights: 10,
            rho: 0.05,
            gp: GpOptions::default(),
        }
    }
}

/// ParEGO; see the [module documentation](self).
#[derive(Clone, Debug)]
pub struct ParegoSampler {
    seed: u64,
    options: ParegoOptions,
}

impl ParegoSampler {
    /// A sampler with the given seed and settings.
    pub fn new(seed: u64, options: ParegoOptions) -> ParegoSampler {
        ParegoSampler { seed, options }
    }

    /// The settings.
    pub fn options(&self) -> &ParegoOptions {
        &self.options
    }
}

/// The weight vector for trial `number` (sums to 1).
fn weights(m: usize, s: usize, rng: &mut TrialRng) -> Vec<f64> {
    if m == 2 {
        let s = s.max(1);
        let i = rng.below(s as u64 + 1) as f64 / s as f64;
        return vec![i, 1.0 - i];
    }
    // Uniform on the simplex: normalised exponential variates.
    let e: Vec<f64> = (0..m).map(|_| -(1.0 - rng.next_f64()).ln()).collect();
    let total: f64 = e.iter().sum();
    e.iter().map(|v| v / total).collect()
}

/// Augmented Chebyshev scalarisation of costs normalised to `[0, 1]` (smaller is better).
pub fn chebyshev(costs: &[f64], lambda: &[f64], rho: f64) -> f64 {
    let max = costs
        .iter()
        .zip(lambda)
        .map(|(f, l)| f * l)
        .fold(f64::NEG_INFINITY, f64::max);
    max + rho * costs.iter().zip(lambda).map(|(f, l)| f * l).sum::<f64>()
}

impl Sampler for ParegoSampler {
    fn name(&self) -> &str {
        "parego"
    }

    fn suggest(&self, ctx: &SampleContext<'_>) -> Result<Params, TuneError> {
        ctx.space.validate()?;
        data::require_objectives(ctx, "parego")?;
        let o = &self.options;
        let d = ctx.space.dims();
        let obs = data::observe(ctx);
        if obs.x.len() < o.n_startup.max(1) {
            return ctx
                .space
                .from_unit(&data::startup_point(self.seed, ctx.number, d));
        }
        let m = ctx.objectives.len();
        let mut rng = TrialRng::new(self.seed, ctx.number, 0x9A2E);
        let lambda = weights(m, o.n_weights, &mut rng);
        // Costs (smaller is better), normalised per objective over the observations.
        let (lo, hi): (Vec<f64>, Vec<f64>) = (0..m)
            .map(|i| {
                obs.scores
                    .iter()
                    .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), s| {
                        (a.min(-s[i]), b.max(-s[i]))
                    })
            })
            .unzip();
        let y: Vec<f64> = obs
            .scores
            .iter()
            .map(|s| {
                let costs: Vec<f64> = (0..m)
                    .map(|i| {
                        let range = hi[i] - lo[i];
                        if range > 0.0 {
                            (-s[i] - lo[i]) / range
                        } else {
                            0.0
                        }
                    })
                    .collect();
                -chebyshev(&costs, &lambda, o.rho)
            })
            .collect();
        let kinds = data::dim_kinds(ctx.space);
        let x = propose(&obs.x, &y, &obs.pending, &kinds, &o.gp, None, &mut rng);
        ctx.space.from_unit(&x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sampler::random::RandomSampler;
    use crate::testing::{median, two_objective_hypervolume, zdt1};

    #[test]
    fn conforms_to_the_sampler_contract() {
        crate::testing::check_sampler(
            &|seed| {
                Box::new(ParegoSampler::new(
                    seed,
                    ParegoOptions {
                        n_startup: 5,
                        ..ParegoOptions::default()
                    },
                ))
            },
            12,
        );
    }

    #[test]
    fn parego_front_dominates_more_than_random() {
        // Median hypervolume over 3 fixed seeds after 30 trials (the true front's is ≈ 11.77).
        let run = |sampler: &dyn Sampler| two_objective_hypervolume(sampler, zdt1, 3, 30);
        let random = median((0..3).map(|s| run(&RandomSampler::new(s))).collect());
        let parego = median(
            (0..3)
                .map(|s| run(&ParegoSampler::new(s, ParegoOptions::default())))
                .collect(),
        );
        assert!(parego > random, "ParEGO {parego} vs random {random}");
    }

    #[test]
    fn chebyshev_matches_hand_values() {
        // max(0.3·0.2, 0.7·0.9) + 0.05 (0.06 + 0.63) = 0.63 + 0.0345.
        let v = chebyshev(&[0.2, 0.9], &[0.3, 0.7], 0.05);
        assert!((v - 0.6645).abs() < 1e-12, "{v}");
    }

    #[test]
    fn weights_sum_to_one_and_vary() {
        let mut seen = std::collections::BTreeSet::new();
        for n in 0..50 {
            let mut rng = TrialRng::new(1, n, 0);
            let w = weights(2, 10, &mut rng);
            assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            seen.insert((w[0] * 10.0).round() as i64);
            let w3 = weights(3, 10, &mut rng);
            assert!((w3.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            assert!(w3.iter().all(|v| *v >= 0.0));
        }
        assert!(seen.len() >= 8, "{seen:?}");
    }
}
