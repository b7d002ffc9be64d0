//! Rank tests: Kruskal–Wallis (k groups) and Mann–Whitney U (two groups).

use serde::Serialize;
use statrs::distribution::{ChiSquared, ContinuousCDF, Normal};

use crate::design::Group;
use crate::error::{Result, StatsError};

/// Mid-ranks (1-based, ties averaged) of `values`, and the tie term Σ(t³ − t).
///
/// `+∞` is allowed (it ranks last, ties with other `+∞`), which lets callers encode "never
/// reached" outcomes; NaN is rejected by the callers.
pub fn ranks(values: &[f64]) -> (Vec<f64>, f64) {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut tie_term = 0.0;
    let mut i = 0;
    while i < order.len() {
        let mut j = i + 1;
        while j < order.len() && values[order[j]] == values[order[i]] {
            j += 1;
        }
        let avg = (i + j + 1) as f64 / 2.0;
        for &o in &order[i..j] {
            ranks[o] = avg;
        }
        let t = (j - i) as f64;
        tie_term += t * t * t - t;
        i = j;
    }
    (ranks, tie_term)
}

fn check_not_nan(what: &str, values: &[f64]) -> Result<()> {
    match values.iter().position(|v| v.is_nan()) {
        Some(index) => Err(StatsError::NonFinite {
            what: what.to_string(),
            index,
            value: f64::NAN,
        }),
        None => Ok(()),
    }
}

/// Result of a Kruskal–Wallis H test.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KruskalWallis {
    /// Group labels.
    pub groups: Vec<String>,
    /// Group sizes.
    pub sizes: Vec<usize>,
    /// Mean rank of each group.
    pub mean_ranks: Vec<f64>,
    /// H, corrected for ties.
    pub h: f64,
    /// Degrees of freedom (groups − 1).
    pub df: usize,
    /// Upper-tail χ² probability of `h`.
    pub p: f64,
    /// Effect size ε² = H / (n − 1) (Tomczak & Tomczak 2014).
    pub epsilon_sq: f64,
    /// Observations.
    pub n: usize,
}

/// Kruskal–Wallis H test with tie correction (as `scipy.stats.kruskal`), χ² approximation.
///
/// # Errors
/// Fewer than two groups, an empty group, NaN values, or all values identical.
pub fn kruskal_wallis(groups: &[Group]) -> Result<KruskalWallis> {
    if groups.len() < 2 {
        return Err(StatsError::TooFewObservations {
            what: "kruskal-wallis (groups)",
            needed: 2,
            got: groups.len(),
        });
    }
    for g in groups {
        if g.values.is_empty() {
            return Err(StatsError::TooFewObservations {
                what: "a kruskal-wallis group",
                needed: 1,
                got: 0,
            });
        }
        check_not_nan(&format!("group `{}`", g.label), &g.values)?;
    }
    let all: Vec<f64> = groups
        .iter()
        .flat_map(|g| g.values.iter().copied())
        .collect();
    let n = all.len();
    let nf = n as f64;
    let (r, tie_term) = ranks(&all);
    let correction = 1.0 - tie_term / (nf * nf * nf - nf);
    if correction <= 0.0 {
        return Err(StatsError::ZeroVariance("kruskal-wallis (all values tie)"));
    }
    let mut offset = 0;
    let mut h = 0.0;
    let mut mean_ranks = Vec::with_capacity(groups.len());
    for g in groups {
        let sum: f64 = r[offset..offset + g.values.len()].iter().sum();
        offset += g.values.len();
        h += sum * sum / g.values.len() as f64;
        mean_ranks.push(sum / g.values.len() as f64);
    }
    h = (12.0 / (nf * (nf + 1.0)) * h - 3.0 * (nf + 1.0)) / correction;
    let df = groups.len() - 1;
    let p = ChiSquared::new(df as f64)
        .map_err(|e| StatsError::Numerical(format!("chi-squared distribution: {e}")))?
        .sf(h);
    Ok(KruskalWallis {
        groups: groups.iter().map(|g| g.label.clone()).collect(),
        sizes: groups.iter().map(|g| g.values.len()).collect(),
        mean_ranks,
        h,
        df,
        p,
        epsilon_sq: h / (nf - 1.0),
        n,
    })
}

/// How a Mann–Whitney p-value is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MannWhitneyMethod {
    /// Exact if the smaller sample has at most 8 values and there are no ties (SciPy's rule).
    Auto,
    /// The exact null distribution of U (no tie correction; use only without ties).
    Exact,
    /// Normal approximation with tie and continuity correction.
    Asymptotic,
}

/// Result of a two-sided Mann–Whitney U test.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MannWhitney {
    /// U of the first sample (number of pairs with x > y, ties counting ½).
    pub u: f64,
    /// Two-sided p-value.
    pub p: f64,
    /// The method actually used (never `Auto`).
    pub method: MannWhitneyMethod,
    /// First sample size.
    pub n_x: usize,
    /// Second sample size.
    pub n_y: usize,
    /// Rank-biserial correlation 2U/(n_x n_y) − 1 (positive: x tends to be larger).
    pub rank_biserial: f64,
}

/// Two-sided Mann–Whitney U test, matching `scipy.stats.mannwhitneyu(x, y)`.
///
/// # Errors
/// An empty sample or NaN values (`+∞` is allowed and ranks last).
pub fn mann_whitney_u(x: &[f64], y: &[f64], method: MannWhitneyMethod) -> Result<MannWhitney> {
    if x.is_empty() || y.is_empty() {
        return Err(StatsError::TooFewObservations {
            what: "mann-whitney u (each sample)",
            needed: 1,
            got: x.len().min(y.len()),
        });
    }
    check_not_nan("first sample", x)?;
    check_not_nan("second sample", y)?;
    let (n1, n2) = (x.len() as f64, y.len() as f64);
    let all: Vec<f64> = x.iter().chain(y).copied().collect();
    let (r, tie_term) = ranks(&all);
    let r1: f64 = r[..x.len()].iter().sum();
    let u1 = r1 - n1 * (n1 + 1.0) / 2.0;
    let u2 = n1 * n2 - u1;
    let u = u1.max(u2);
    let method = match method {
        MannWhitneyMethod::Auto if tie_term == 0.0 && x.len().min(y.len()) <= 8 => {
            MannWhitneyMethod::Exact
        }
        MannWhitneyMethod::Auto => MannWhitneyMethod::Asymptotic,
        m => m,
    };
    let p = match method {
        MannWhitneyMethod::Exact => {
            let counts = u_counts(x.len(), y.len());
            let total: f64 = counts.iter().sum();
            // P(U ≥ u): u is an integer without ties.
            let start = u.round() as usize;
            let upper: f64 = counts[start.min(counts.len())..].iter().sum();
            (2.0 * upper / total).min(1.0)
        }
        _ => {
            let n = n1 + n2;
            let mu = n1 * n2 / 2.0;
            let var = n1 * n2 / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)));
            if var <= 0.0 {
                return Err(StatsError::ZeroVariance("mann-whitney u (all values tie)"));
            }
            let z = (u - mu - 0.5) / var.sqrt();
            (2.0 * Normal::standard().sf(z)).min(1.0)
        }
    };
    Ok(MannWhitney {
        u: u1,
        p,
        method,
        n_x: x.len(),
        n_y: y.len(),
        rank_biserial: 2.0 * u1 / (n1 * n2) - 1.0,
    })
}

/// Number of arrangements giving each U = 0..=m·n: the coefficients of the Gaussian binomial
/// `[m+n choose m]_q = Π_{i=1..m} (1 − q^{n+i}) / (1 − q^i)`.
fn u_counts(m: usize, n: usize) -> Vec<f64> {
    let deg = m * n;
    let mut c = vec![0.0; deg + 1];
    c[0] = 1.0;
    for i in 1..=m {
        // Multiply by (1 − q^{n+i}).
        for u in (n + i..=deg).rev() {
            c[u] -= c[u - n - i];
        }
        // Divide by (1 − q^i): c[u] += c[u − i] running forward.
        for u in i..=deg {
            c[u] += c[u - i];
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_average_ties() {
        let (r, t) = ranks(&[3.0, 1.0, 3.0, 2.0, f64::INFINITY]);
        assert_eq!(r, [3.5, 1.0, 3.5, 2.0, 5.0]);
        assert_eq!(t, 6.0);
    }

    #[test]
    fn u_distribution_counts_all_arrangements() {
        let c = u_counts(3, 4);
        assert_eq!(c.iter().sum::<f64>(), 35.0);
        assert_eq!(c[0], 1.0);
        assert_eq!(c[1], 1.0);
        assert_eq!(c[2], 2.0);
        // Symmetric around m·n/2.
        for u in 0..=12 {
            assert_eq!(c[u], c[12 - u]);
        }
    }

    #[test]
    fn kruskal_rejects_all_ties_and_single_group() {
        let g = vec![Group::new("a", vec![1.0, 1.0]), Group::new("b", vec![1.0])];
        assert!(matches!(
            kruskal_wallis(&g),
            Err(StatsError::ZeroVariance(_))
        ));
        assert!(kruskal_wallis(&g[..1]).is_err());
    }

    #[test]
    fn separated_samples_give_extreme_u() {
        let r =
            mann_whitney_u(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0], MannWhitneyMethod::Auto).unwrap();
        assert_eq!(r.u, 0.0);
        assert_eq!(r.method, MannWhitneyMethod::Exact);
        assert!((r.p - 0.1).abs() < 1e-12); // 2 · 1/20
        assert_eq!(r.rank_biserial, -1.0);
    }
}
