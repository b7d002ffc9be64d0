//! Descriptive statistics: means with t intervals, cell means, bootstrap percentile intervals.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::design::{Factor, group_by};
use crate::error::{Result, StatsError, check_confidence, check_finite};

/// A sample mean with its t-based confidence interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MeanInterval {
    /// What was summarised (a cell label, a level, …).
    pub label: String,
    /// Observations.
    pub n: usize,
    /// Sample mean.
    pub mean: f64,
    /// Sample standard deviation (n − 1 denominator).
    pub sd: f64,
    /// Lower end of the interval.
    pub lower: f64,
    /// Upper end of the interval.
    pub upper: f64,
    /// Confidence level, e.g. 0.95.
    pub confidence: f64,
}

/// Mean and `confidence` t interval of `values` (mean ± t(1−α/2, n−1)·sd/√n).
///
/// # Errors
/// Fewer than two values, non-finite values, or a confidence level outside (0, 1).
pub fn mean_interval(label: &str, values: &[f64], confidence: f64) -> Result<MeanInterval> {
    check_confidence(confidence)?;
    check_finite(label, values)?;
    if values.len() < 2 {
        return Err(StatsError::TooFewObservations {
            what: "a confidence interval of a mean",
            needed: 2,
            got: values.len(),
        });
    }
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let sd = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    let t = StudentsT::new(0.0, 1.0, n - 1.0)
        .map_err(|e| StatsError::Numerical(format!("t distribution: {e}")))?
        .inverse_cdf(0.5 + confidence / 2.0);
    let half = t * sd / n.sqrt();
    Ok(MeanInterval {
        label: label.to_string(),
        n: values.len(),
        mean,
        sd,
        lower: mean - half,
        upper: mean + half,
        confidence,
    })
}

/// Mean and t interval of every cell (combination of levels) that occurs, in level order.
///
/// # Errors
/// As [`group_by`] and [`mean_interval`] (a cell with a single observation is an error).
pub fn cell_means(
    response: &[f64],
    factors: &[Factor],
    confidence: f64,
) -> Result<Vec<MeanInterval>> {
    group_by(response, factors)?
        .iter()
        .map(|g| mean_interval(&g.label, &g.values, confidence))
        .collect()
}

/// Quantile of sorted data with linear interpolation (type 7, the default of R and NumPy).
///
/// Returns NaN for an empty slice.
pub fn quantile_sorted(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let h = (sorted.len() - 1) as f64 * p.clamp(0.0, 1.0);
    let lo = h.floor() as usize;
    let hi = h.ceil() as usize;
    // Equal neighbours need no interpolation (and two infinities must not give ∞ − ∞ = NaN).
    if sorted[lo] == sorted[hi] {
        return sorted[lo];
    }
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// Median (NaN for an empty slice).
pub fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    quantile_sorted(&v, 0.5)
}

/// A bootstrap percentile interval.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BootstrapInterval {
    /// The statistic on the original sample.
    pub estimate: f64,
    /// Lower percentile.
    pub lower: f64,
    /// Upper percentile.
    pub upper: f64,
    /// Confidence level.
    pub confidence: f64,
    /// Resamples drawn.
    pub resamples: usize,
    /// Seed of the ChaCha8 generator (same seed, same interval).
    pub seed: u64,
}

/// Percentile bootstrap interval of `statistic` over `values`, seeded (ChaCha8).
///
/// # Errors
/// Fewer than two values, non-finite values, zero resamples, or a bad confidence level.
pub fn bootstrap_interval(
    values: &[f64],
    statistic: impl Fn(&[f64]) -> f64,
    resamples: usize,
    confidence: f64,
    seed: u64,
) -> Result<BootstrapInterval> {
    check_finite("bootstrap sample", values)?;
    resample(values, statistic, resamples, confidence, seed)
}

/// Percentile bootstrap interval of the median of a sample that may hold infinities: censored
/// values such as "never reached the target" (+∞) or "nothing finished yet" (−∞), which rank
/// beyond every finite value. The estimate or a bound is infinite where more than half of the
/// (re)sample is. Seeded (ChaCha8), like [`bootstrap_interval`].
///
/// # Errors
/// Fewer than two values, a NaN, zero resamples, or a bad confidence level.
pub fn bootstrap_median_interval(
    values: &[f64],
    resamples: usize,
    confidence: f64,
    seed: u64,
) -> Result<BootstrapInterval> {
    if let Some(index) = values.iter().position(|v| v.is_nan()) {
        return Err(StatsError::NonFinite {
            what: "bootstrap sample".into(),
            index,
            value: f64::NAN,
        });
    }
    resample(values, median, resamples, confidence, seed)
}

fn resample(
    values: &[f64],
    statistic: impl Fn(&[f64]) -> f64,
    resamples: usize,
    confidence: f64,
    seed: u64,
) -> Result<BootstrapInterval> {
    check_confidence(confidence)?;
    if values.len() < 2 {
        return Err(StatsError::TooFewObservations {
            what: "a bootstrap interval",
            needed: 2,
            got: values.len(),
        });
    }
    if resamples == 0 {
        return Err(StatsError::InvalidArgument(
            "the bootstrap needs at least one resample (e.g. 2000)".into(),
        ));
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut buf = vec![0.0; values.len()];
    let mut stats: Vec<f64> = (0..resamples)
        .map(|_| {
            for b in buf.iter_mut() {
                *b = values[rng.random_range(0..values.len())];
            }
            statistic(&buf)
        })
        .collect();
    stats.sort_by(f64::total_cmp);
    let alpha = 1.0 - confidence;
    Ok(BootstrapInterval {
        estimate: statistic(values),
        lower: quantile_sorted(&stats, alpha / 2.0),
        upper: quantile_sorted(&stats, 1.0 - alpha / 2.0),
        confidence,
        resamples,
        seed,
    })
}

/// Arithmetic mean (NaN for an empty slice); handy as a bootstrap statistic.
pub fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_interval_keeps_misses_as_infinity() {
        // Two of five never reached the target: the median is finite, the upper bound is not.
        let v = [10.0, 12.0, 14.0, f64::INFINITY, f64::INFINITY];
        let b = bootstrap_median_interval(&v, 2000, 0.95, 1).unwrap();
        assert_eq!(b.estimate, 14.0);
        assert_eq!(b.lower, 10.0);
        assert!(b.upper.is_infinite());
        let all = bootstrap_median_interval(&[f64::INFINITY; 3], 100, 0.95, 1).unwrap();
        assert!(all.estimate.is_infinite() && all.lower.is_infinite());
        assert_eq!(median(&[f64::INFINITY, f64::INFINITY]), f64::INFINITY);
        assert!(bootstrap_median_interval(&[1.0, f64::NAN], 10, 0.95, 1).is_err());
        assert!(
            bootstrap_interval(&v, mean, 10, 0.95, 1).is_err(),
            "a mean needs finite values"
        );
    }

    #[test]
    fn quantiles_interpolate_like_numpy() {
        let v = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile_sorted(&v, 0.5), 2.5);
        assert!((quantile_sorted(&v, 0.25) - 1.75).abs() < 1e-15);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
    }

    #[test]
    fn bootstrap_is_seeded_and_brackets_the_mean() {
        let v: Vec<f64> = (0..40)
            .map(|i| (i as f64 * 0.37).sin() * 3.0 + 10.0)
            .collect();
        let a = bootstrap_interval(&v, mean, 2000, 0.95, 7).unwrap();
        let b = bootstrap_interval(&v, mean, 2000, 0.95, 7).unwrap();
        let c = bootstrap_interval(&v, mean, 2000, 0.95, 8).unwrap();
        assert_eq!(a, b);
        assert_ne!(a.lower, c.lower);
        assert!(a.lower < a.estimate && a.estimate < a.upper);
        // Close to the t interval for a smooth, symmetric sample.
        let t = mean_interval("v", &v, 0.95).unwrap();
        assert!((a.upper - a.lower) / (t.upper - t.lower) > 0.8);
        assert!((a.upper - a.lower) / (t.upper - t.lower) < 1.2);
    }

    #[test]
    fn bad_inputs_are_errors() {
        assert!(mean_interval("x", &[1.0], 0.95).is_err());
        assert!(mean_interval("x", &[1.0, 2.0], 1.0).is_err());
        assert!(bootstrap_interval(&[1.0, 2.0], mean, 0, 0.95, 1).is_err());
        assert!(bootstrap_interval(&[1.0, f64::NAN], mean, 10, 0.95, 1).is_err());
    }
}
