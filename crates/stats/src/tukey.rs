//! Tukey's honestly significant difference (Tukey–Kramer for unequal group sizes).

use serde::Serialize;

use crate::design::Group;
use crate::error::{Result, StatsError, check_confidence, check_finite};
use crate::srange::{studentized_range_quantile, studentized_range_sf};

/// One pairwise comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TukeyPair {
    /// First group.
    pub a: String,
    /// Second group.
    pub b: String,
    /// `mean(b) − mean(a)` (statsmodels' convention).
    pub diff: f64,
    /// Lower end of the simultaneous confidence interval of `diff`.
    pub lower: f64,
    /// Upper end.
    pub upper: f64,
    /// Studentized range statistic `|diff| / sqrt(MSE/2 · (1/n_a + 1/n_b))`.
    pub q: f64,
    /// Family-wise adjusted p-value.
    pub p: f64,
    /// `p < alpha`.
    pub reject: bool,
}

/// All pairwise comparisons of a set of groups.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TukeyHsd {
    /// Group labels in input order.
    pub groups: Vec<String>,
    /// Group sizes.
    pub sizes: Vec<usize>,
    /// Group means.
    pub means: Vec<f64>,
    /// Error mean square used.
    pub mse: f64,
    /// Its degrees of freedom.
    pub df: usize,
    /// Family-wise error rate (1 − confidence).
    pub alpha: f64,
    /// The critical studentized range `q(1 − α; k, df)`.
    pub q_crit: f64,
    /// Pairs `(i, j)`, `i < j`, in input order.
    pub pairs: Vec<TukeyPair>,
}

/// Tukey HSD with the pooled within-group variance as error term (as SciPy's `tukey_hsd` and
/// statsmodels' `pairwise_tukeyhsd`). Groups may be a factor's levels or interaction cells
/// (see [`crate::group_by`]).
///
/// # Errors
/// Fewer than two groups, an empty group, non-finite values, no error degrees of freedom,
/// zero within-group variance, or `alpha` outside (0, 1).
pub fn tukey_hsd(groups: &[Group], alpha: f64) -> Result<TukeyHsd> {
    check_groups(groups)?;
    let n: usize = groups.iter().map(|g| g.values.len()).sum();
    if n <= groups.len() {
        return Err(StatsError::NoResidualDf {
            n,
            cells: groups.len(),
        });
    }
    let sse: f64 = groups
        .iter()
        .map(|g| {
            let m = mean(&g.values);
            g.values.iter().map(|v| (v - m).powi(2)).sum::<f64>()
        })
        .sum();
    let df = n - groups.len();
    tukey_hsd_with_error(groups, sse / df as f64, df, alpha)
}

/// Tukey HSD with a given error mean square and degrees of freedom, e.g. the residual row of a
/// factorial ANOVA ([`crate::AnovaTable::residual`]), which is what JASP's post-hoc tests use.
///
/// # Errors
/// As [`tukey_hsd`]; also a non-positive `mse` or `df = 0`.
pub fn tukey_hsd_with_error(groups: &[Group], mse: f64, df: usize, alpha: f64) -> Result<TukeyHsd> {
    check_groups(groups)?;
    check_confidence(alpha)?;
    if df == 0 {
        return Err(StatsError::NoResidualDf {
            n: groups.iter().map(|g| g.values.len()).sum(),
            cells: groups.len(),
        });
    }
    if !(mse > 0.0 && mse.is_finite()) {
        return Err(StatsError::ZeroVariance("tukey hsd (error mean square)"));
    }
    let k = groups.len();
    let dff = df as f64;
    let q_crit = studentized_range_quantile(1.0 - alpha, k, dff)?;
    let means: Vec<f64> = groups.iter().map(|g| mean(&g.values)).collect();
    let sizes: Vec<usize> = groups.iter().map(|g| g.values.len()).collect();
    let mut pairs = Vec::with_capacity(k * (k - 1) / 2);
    for i in 0..k {
        for j in i + 1..k {
            let diff = means[j] - means[i];
            let se = (0.5 * mse * (1.0 / sizes[i] as f64 + 1.0 / sizes[j] as f64)).sqrt();
            let q = diff.abs() / se;
            let p = studentized_range_sf(q, k, dff)?;
            pairs.push(TukeyPair {
                a: groups[i].label.clone(),
                b: groups[j].label.clone(),
                diff,
                lower: diff - q_crit * se,
                upper: diff + q_crit * se,
                q,
                p,
                reject: p < alpha,
            });
        }
    }
    Ok(TukeyHsd {
        groups: groups.iter().map(|g| g.label.clone()).collect(),
        sizes,
        means,
        mse,
        df,
        alpha,
        q_crit,
        pairs,
    })
}

fn check_groups(groups: &[Group]) -> Result<()> {
    if groups.len() < 2 {
        return Err(StatsError::TooFewObservations {
            what: "a pairwise comparison (groups)",
            needed: 2,
            got: groups.len(),
        });
    }
    for g in groups {
        if g.values.is_empty() {
            return Err(StatsError::TooFewObservations {
                what: "a group of a pairwise comparison",
                needed: 1,
                got: 0,
            });
        }
        check_finite(&format!("group `{}`", g.label), &g.values)?;
    }
    Ok(())
}

pub(crate) fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn groups() -> Vec<Group> {
        vec![
            Group::new("a", vec![1.0, 2.0, 3.0]),
            Group::new("b", vec![4.0, 5.0, 6.1]),
            Group::new("c", vec![2.0, 3.0, 9.0]),
        ]
    }

    #[test]
    fn pooled_error_matches_explicit_error() {
        let g = groups();
        let t = tukey_hsd(&g, 0.05).unwrap();
        let u = tukey_hsd_with_error(&g, t.mse, t.df, 0.05).unwrap();
        assert_eq!(t, u);
        assert_eq!(t.pairs.len(), 3);
        assert!((t.pairs[0].diff - 91.0 / 30.0).abs() < 1e-12);
        // The interval contains zero exactly when the pair is not rejected.
        for p in &t.pairs {
            assert_eq!(p.lower > 0.0 || p.upper < 0.0, p.reject);
        }
    }

    #[test]
    fn degenerate_groups_are_errors() {
        let g = groups();
        assert!(tukey_hsd(&g[..1], 0.05).is_err());
        let mut e = groups();
        e[1].values.clear();
        assert!(tukey_hsd(&e, 0.05).is_err());
        let single = vec![Group::new("a", vec![1.0]), Group::new("b", vec![2.0])];
        assert!(matches!(
            tukey_hsd(&single, 0.05),
            Err(StatsError::NoResidualDf { .. })
        ));
        assert!(tukey_hsd(&g, 0.0).is_err());
    }
}
