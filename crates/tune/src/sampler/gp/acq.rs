//! Acquisition functions, all written for maximisation of the (standardised) objective.
//!
//! The optimiser works on `ln EI` and `ln PI` rather than EI and PI: they have the same maxima
//! but stay finite and informative where EI underflows (Ament et al., "Unexpected improvements
//! to expected improvement", NeurIPS 2023), which is most of the cube late in a study.

use serde::{Deserialize, Serialize};

use super::normal;

/// Smallest posterior variance used (standardised units), so that `σ` is never zero.
const MIN_VAR: f64 = 1e-12;

/// Which acquisition function the GP sampler maximises.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Acquisition {
    /// Expected improvement over the best value seen (maximised as log-EI).
    ExpectedImprovement,
    /// Probability of improving on the best value by more than `xi` (in standard deviations of
    /// the observed values); the acquisition the paper used.
    ProbabilityOfImprovement {
        /// Margin, in standardised units (0.01 is usual).
        xi: f64,
    },
    /// Upper confidence bound `μ + √β σ`.
    UpperConfidenceBound {
        /// Exploration weight `β` (`√β` standard deviations).
        beta: f64,
    },
}

/// `EI = σ (z Φ(z) + φ(z))`, `z = (μ − best)/σ`: expected improvement of `N(μ, σ²)` over `best`.
pub fn expected_improvement(mean: f64, std: f64, best: f64) -> f64 {
    if std <= 0.0 {
        return (mean - best).max(0.0);
    }
    std * normal::h((mean - best) / std)
}

/// `ln EI`, finite wherever `std > 0` (also where EI itself underflows to 0).
pub fn log_expected_improvement(mean: f64, std: f64, best: f64) -> f64 {
    if std <= 0.0 {
        return (mean - best).max(0.0).ln();
    }
    std.ln() + normal::log_h((mean - best) / std)
}

/// `PI = Φ((μ − best − ξ)/σ)`.
pub fn probability_of_improvement(mean: f64, std: f64, best: f64, xi: f64) -> f64 {
    if std <= 0.0 {
        return if mean > best + xi { 1.0 } else { 0.0 };
    }
    normal::cdf((mean - best - xi) / std)
}

/// `UCB = μ + √β σ`.
pub fn upper_confidence_bound(mean: f64, std: f64, beta: f64) -> f64 {
    mean + beta.max(0.0).sqrt() * std
}

impl Acquisition {
    /// The quantity maximised (log-EI, log-PI or UCB) from the posterior mean and variance, and
    /// its gradient from theirs.
    pub(crate) fn value_grad(
        &self,
        mean: f64,
        var: f64,
        best: f64,
        dmean: &[f64],
        dvar: &[f64],
        grad: &mut [f64],
    ) -> f64 {
        let var = var.max(MIN_VAR);
        let std = var.sqrt();
        // dσ = dvar / (2σ).
        let dstd = |j: usize| dvar[j] / (2.0 * std);
        match *self {
            Acquisition::ExpectedImprovement => {
                let z = (mean - best) / std;
                let dl = normal::d_log_h(z);
                for j in 0..grad.len() {
                    let ds = dstd(j);
                    grad[j] = ds / std + dl * (dmean[j] - z * ds) / std;
                }
                std.ln() + normal::log_h(z)
            }
            Acquisition::ProbabilityOfImprovement { xi } => {
                let z = (mean - best - xi) / std;
                let dl = normal::d_log_cdf(z);
                for j in 0..grad.len() {
                    grad[j] = dl * (dmean[j] - z * dstd(j)) / std;
                }
                normal::log_cdf(z)
            }
            Acquisition::UpperConfidenceBound { beta } => {
                let k = beta.max(0.0).sqrt();
                for j in 0..grad.len() {
                    grad[j] = dmean[j] + k * dstd(j);
                }
                mean + k * std
            }
        }
    }

    /// The maximised quantity without gradient.
    pub(crate) fn value(&self, mean: f64, var: f64, best: f64) -> f64 {
        let std = var.max(MIN_VAR).sqrt();
        match *self {
            Acquisition::ExpectedImprovement => log_expected_improvement(mean, std, best),
            Acquisition::ProbabilityOfImprovement { xi } => {
                normal::log_cdf((mean - best - xi) / std)
            }
            Acquisition::UpperConfidenceBound { beta } => upper_confidence_bound(mean, std, beta),
        }
    }

    /// Whether the maximised quantity is a logarithm (so that dividing by a cost is a
    /// subtraction).
    pub(crate) fn is_log_scale(&self) -> bool {
        !matches!(self, Acquisition::UpperConfidenceBound { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_match_hand_computed_values() {
        // μ = 1, σ = 2, best = 0: z = 0.5, Φ(0.5) = 0.6914624612740131,
        // φ(0.5) = 0.3520653267642995, EI = 2 (0.5 · 0.69146 + 0.35207) = 1.3955931148026122.
        let ei = expected_improvement(1.0, 2.0, 0.0);
        assert!((ei - 1.395_593_114_802_612_2).abs() < 1e-12, "{ei}");
        assert!((log_expected_improvement(1.0, 2.0, 0.0) - ei.ln()).abs() < 1e-12);
        // μ = 0, σ = 1, best = 0: EI = φ(0) = 0.3989422804014327.
        assert!((expected_improvement(0.0, 1.0, 0.0) - 0.398_942_280_401_432_7).abs() < 1e-15);
        // PI with ξ = 0.01: Φ((1 − 0 − 0.01)/2) = Φ(0.495) = 0.6896999397455121.
        let pi = probability_of_improvement(1.0, 2.0, 0.0, 0.01);
        assert!((pi - 0.689_699_939_745_512_1).abs() < 1e-12, "{pi}");
        // UCB with β = 4: 1 + 2 · 2 = 5.
        assert_eq!(upper_confidence_bound(1.0, 2.0, 4.0), 5.0);
        // No uncertainty: improvement is certain or impossible.
        assert_eq!(expected_improvement(3.0, 0.0, 1.0), 2.0);
        assert_eq!(probability_of_improvement(0.5, 0.0, 1.0, 0.0), 0.0);
        // Deep in the tail EI underflows to 0 but its logarithm stays finite and ordered.
        let (a, b) = (
            log_expected_improvement(-60.0, 1.0, 0.0),
            log_expected_improvement(-50.0, 1.0, 0.0),
        );
        assert_eq!(expected_improvement(-60.0, 1.0, 0.0), 0.0);
        assert!(a.is_finite() && b.is_finite() && a < b, "{a} {b}");
    }

    #[test]
    fn gradients_follow_the_chain_rule() {
        // Along a one-dimensional path mean(t) = 0.3 + t, var(t) = 0.5 + 0.02 (t + 7).
        for acq in [
            Acquisition::ExpectedImprovement,
            Acquisition::ProbabilityOfImprovement { xi: 0.01 },
            Acquisition::UpperConfidenceBound { beta: 2.0 },
        ] {
            for t in [-6.0f64, -0.4, 0.0, 1.0] {
                let (m, v) = (0.3 + t, 0.5 + 0.02 * (t + 7.0));
                let mut g = [0.0];
                acq.value_grad(m, v, 1.0, &[1.0], &[0.02], &mut g);
                let e = 1e-6;
                let fd = (acq.value(m + e, v + 0.02 * e, 1.0)
                    - acq.value(m - e, v - 0.02 * e, 1.0))
                    / (2.0 * e);
                assert!((fd - g[0]).abs() < 1e-5 * (1.0 + fd.abs()), "{acq:?} t={t}");
            }
        }
    }
}
