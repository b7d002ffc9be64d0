//! n-way ANOVA of a full factorial design with type III sums of squares.
//!
//! The full-interaction model of a factorial design with no empty cell is the cell-means model
//! `y = μ_cell + ε`. The type III hypothesis for a term `T` (sum-to-zero / effect coding, as
//! statsmodels' `C(x, Sum)` with `anova_lm(typ=3)`, SAS and JASP) is `C_T μ = 0`, where `C_T`
//! is the Kronecker product of a contrast matrix for each factor in `T` and the averaging row
//! `1ᵀ/L` for every other factor. Its sum of squares is
//!
//! ```text
//! SS_T = (C_T μ̂)ᵀ (C_T D C_Tᵀ)⁻¹ (C_T μ̂),   D = diag(1 / n_cell)
//! ```
//!
//! which is invariant to the choice of contrast basis and equals the difference in residual sum
//! of squares between the full model and the model without `T`'s effect-coded columns, for
//! balanced and unbalanced designs alike.

use nalgebra::{DMatrix, DVector};
use serde::Serialize;
use statrs::distribution::{ContinuousCDF, FisherSnedecor};

use crate::design::{Factor, cell_description, check_factors};
use crate::error::{Result, StatsError, check_finite};

/// One effect row of an ANOVA table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnovaRow {
    /// `conv`, `conv:linear`, …
    pub term: String,
    /// The factors of the term.
    pub factors: Vec<String>,
    /// Type III sum of squares.
    pub sum_sq: f64,
    /// Degrees of freedom.
    pub df: usize,
    /// `sum_sq / df`.
    pub mean_sq: f64,
    /// `mean_sq / residual mean square`.
    pub f: f64,
    /// Upper-tail probability of `f` under F(df, residual df).
    pub p: f64,
    /// η² = SS_effect / SS_total, the corrected total sum of squares (type III sums need not
    /// add up to SS_total when unbalanced). See [`EtaSquared`].
    pub eta_sq: f64,
    /// η² as JASP computes it for type III tables: SS_effect / (the sum of the table's sums of
    /// squares, residual included). Equal to [`eta_sq`](Self::eta_sq) in balanced designs.
    pub eta_sq_jasp: f64,
    /// Partial η² = SS_effect / (SS_effect + SS_residual).
    pub partial_eta_sq: f64,
}

/// The error (within-cell) row.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResidualRow {
    /// Within-cell sum of squares.
    pub sum_sq: f64,
    /// `n − cells`.
    pub df: usize,
    /// `sum_sq / df`: the error variance used by F tests and model-based Tukey HSD.
    pub mean_sq: f64,
}

/// A complete ANOVA table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnovaTable {
    /// Factor names in model order.
    pub factors: Vec<String>,
    /// Main effects, then two-way interactions, …, up to the full interaction.
    pub rows: Vec<AnovaRow>,
    /// The error row.
    pub residual: ResidualRow,
    /// Σ (y − ȳ)².
    pub total_sum_sq: f64,
    /// Observations.
    pub n: usize,
    /// Cells (combinations of levels).
    pub cells: usize,
    /// Whether every cell has the same number of observations.
    pub balanced: bool,
}

/// Which η² a report shows. The two differ only in unbalanced designs (for instance after
/// failed runs), where type III sums of squares do not add up to the total.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EtaSquared {
    /// JASP's (the paper's tool): SS_effect / Σ of the table's type III SS incl. residual.
    #[default]
    Jasp,
    /// SS_effect / corrected total SS, Σ (y − ȳ)².
    CorrectedTotal,
}

impl EtaSquared {
    /// A row's η² by this definition.
    pub fn of(self, row: &AnovaRow) -> f64 {
        match self {
            EtaSquared::Jasp => row.eta_sq_jasp,
            EtaSquared::CorrectedTotal => row.eta_sq,
        }
    }

    /// The definition in words, for reports.
    pub fn describe(self) -> &'static str {
        match self {
            EtaSquared::Jasp => {
                "η² as JASP computes it: SS_effect / sum of the type III table's SS including the residual"
            }
            EtaSquared::CorrectedTotal => "η² = SS_effect / corrected total SS",
        }
    }
}

impl std::fmt::Display for EtaSquared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EtaSquared::Jasp => "jasp",
            EtaSquared::CorrectedTotal => "total",
        })
    }
}

impl std::str::FromStr for EtaSquared {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "jasp" => Ok(EtaSquared::Jasp),
            "total" | "corrected-total" => Ok(EtaSquared::CorrectedTotal),
            other => Err(format!(
                "unknown η² definition {other:?}; use jasp or total"
            )),
        }
    }
}

impl AnovaTable {
    /// The row of a term, e.g. `"conv"` or `"conv:relu"`.
    pub fn term(&self, term: &str) -> Option<&AnovaRow> {
        self.rows.iter().find(|r| r.term == term)
    }
}

/// Type III n-way ANOVA with every interaction.
///
/// # Errors
/// Degenerate designs are errors, never p-values: no factor or a duplicate, lengths that
/// differ, a non-finite response, a factor with one level, an empty cell, no residual degrees
/// of freedom, or zero within-cell variance.
///
/// ```
/// use greenlab_stats::{Factor, anova};
/// let y = [10.0, 11.0, 30.0, 31.5, 12.0, 12.5, 33.0, 32.0];
/// let conv = Factor::new("conv", [1, 1, 4, 4, 1, 1, 4, 4]);
/// let relu = Factor::new("relu", ["off", "off", "off", "off", "on", "on", "on", "on"]);
/// let table = anova(&y, &[conv, relu]).unwrap();
/// assert!(table.term("conv").unwrap().eta_sq > 0.9);
/// ```
pub fn anova(response: &[f64], factors: &[Factor]) -> Result<AnovaTable> {
    check_factors(response.len(), factors)?;
    check_finite("response", response)?;
    for f in factors {
        if f.levels().len() < 2 {
            return Err(StatsError::SingleLevel {
                factor: f.name().to_string(),
                level: f.levels().first().cloned().unwrap_or_default(),
            });
        }
    }
    let sizes: Vec<usize> = factors.iter().map(|f| f.levels().len()).collect();
    let n_cells: usize = sizes.iter().product();
    let n = response.len();

    // Cell index in mixed radix, first factor most significant.
    let mut count = vec![0usize; n_cells];
    let mut sum = vec![0.0; n_cells];
    let cell_of: Vec<usize> = (0..n)
        .map(|i| {
            factors
                .iter()
                .fold(0, |acc, f| acc * f.levels().len() + f.codes()[i])
        })
        .collect();
    for (&c, &y) in cell_of.iter().zip(response) {
        count[c] += 1;
        sum[c] += y;
    }
    if let Some(empty) = count.iter().position(|&c| c == 0) {
        return Err(StatsError::EmptyCell {
            cell: cell_description(factors, &unravel(empty, &sizes)),
        });
    }
    if n <= n_cells {
        return Err(StatsError::NoResidualDf { n, cells: n_cells });
    }
    let mean: Vec<f64> = sum.iter().zip(&count).map(|(s, &c)| s / c as f64).collect();
    let sse: f64 = cell_of
        .iter()
        .zip(response)
        .map(|(&c, &y)| (y - mean[c]).powi(2))
        .sum();
    let grand = response.iter().sum::<f64>() / n as f64;
    let sst: f64 = response.iter().map(|y| (y - grand).powi(2)).sum();
    if sst == 0.0 || sse <= 1e-14 * sst {
        return Err(StatsError::ZeroVariance("anova (within-cell variance)"));
    }
    let df_e = n - n_cells;
    let mse = sse / df_e as f64;

    let mut rows = Vec::new();
    for size in 1..=factors.len() {
        for term in combinations(factors.len(), size) {
            let (ss, df) = type3_sum_sq(&term, &sizes, &mean, &count)?;
            let ms = ss / df as f64;
            let f = ms / mse;
            let p = FisherSnedecor::new(df as f64, df_e as f64)
                .map_err(|e| StatsError::Numerical(format!("F distribution: {e}")))?
                .sf(f);
            let names: Vec<String> = term
                .iter()
                .map(|&i| factors[i].name().to_string())
                .collect();
            rows.push(AnovaRow {
                term: names.join(":"),
                factors: names,
                sum_sq: ss,
                df,
                mean_sq: ms,
                f,
                p,
                eta_sq: ss / sst,
                eta_sq_jasp: f64::NAN,
                partial_eta_sq: ss / (ss + sse),
            });
        }
    }
    let table_ss = rows.iter().map(|r| r.sum_sq).sum::<f64>() + sse;
    for r in &mut rows {
        r.eta_sq_jasp = r.sum_sq / table_ss;
    }
    Ok(AnovaTable {
        factors: factors.iter().map(|f| f.name().to_string()).collect(),
        rows,
        residual: ResidualRow {
            sum_sq: sse,
            df: df_e,
            mean_sq: mse,
        },
        total_sum_sq: sst,
        n,
        cells: n_cells,
        balanced: count.iter().all(|&c| c == count[0]),
    })
}

fn unravel(mut index: usize, sizes: &[usize]) -> Vec<usize> {
    let mut key = vec![0; sizes.len()];
    for (k, &s) in key.iter_mut().zip(sizes).rev() {
        *k = index % s;
        index /= s;
    }
    key
}

/// All `size`-subsets of `0..n` in lexicographic order.
fn combinations(n: usize, size: usize) -> Vec<Vec<usize>> {
    let mut out = Vec::new();
    let mut cur: Vec<usize> = (0..size).collect();
    loop {
        out.push(cur.clone());
        let mut i = size;
        loop {
            if i == 0 {
                return out;
            }
            i -= 1;
            if cur[i] < n - size + i {
                cur[i] += 1;
                for j in i + 1..size {
                    cur[j] = cur[j - 1] + 1;
                }
                break;
            }
        }
    }
}

/// `(SS_T, df_T)` for the term made of the factors in `term`.
fn type3_sum_sq(
    term: &[usize],
    sizes: &[usize],
    mean: &[f64],
    count: &[usize],
) -> Result<(f64, usize)> {
    let in_term: Vec<bool> = (0..sizes.len()).map(|f| term.contains(&f)).collect();
    let dims: Vec<usize> = term.iter().map(|&f| sizes[f] - 1).collect();
    let df: usize = dims.iter().product();
    let n_cells = mean.len();
    // Contrast matrix C_T (df × cells); the effect contrast of a level i < L−1 is e_i − e_{L−1}.
    let mut c = DMatrix::<f64>::zeros(df, n_cells);
    for r in 0..df {
        let rkey = unravel(r, &dims);
        for cell in 0..n_cells {
            let key = unravel(cell, sizes);
            let mut v = 1.0;
            let mut t = 0;
            for (f, &level) in key.iter().enumerate() {
                if in_term[f] {
                    let row = rkey[t];
                    t += 1;
                    v *= if level == row {
                        1.0
                    } else if level == sizes[f] - 1 {
                        -1.0
                    } else {
                        0.0
                    };
                } else {
                    v /= sizes[f] as f64;
                }
                if v == 0.0 {
                    break;
                }
            }
            c[(r, cell)] = v;
        }
    }
    let mu = DVector::from_column_slice(mean);
    let d = DVector::from_iterator(n_cells, count.iter().map(|&k| 1.0 / k as f64));
    let estimate = &c * mu;
    let cd = DMatrix::from_fn(df, n_cells, |i, j| c[(i, j)] * d[j]);
    let m = cd * c.transpose();
    let chol = m.cholesky().ok_or_else(|| {
        StatsError::Numerical("type III contrast covariance is not positive definite".into())
    })?;
    let solved = chol.solve(&estimate);
    Ok((estimate.dot(&solved), df))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_by_two() -> (Vec<f64>, Factor, Factor) {
        let y = vec![10.0, 11.0, 30.0, 31.5, 12.0, 12.5, 33.0, 32.0];
        let a = Factor::new("a", [1, 1, 4, 4, 1, 1, 4, 4]);
        let b = Factor::new("b", ["x", "x", "x", "x", "y", "y", "y", "y"]);
        (y, a, b)
    }

    #[test]
    fn balanced_sums_of_squares_add_up() {
        let (y, a, b) = two_by_two();
        let t = anova(&y, &[a, b]).unwrap();
        let total: f64 = t.rows.iter().map(|r| r.sum_sq).sum::<f64>() + t.residual.sum_sq;
        assert!((total - t.total_sum_sq).abs() < 1e-9 * t.total_sum_sq);
        assert_eq!(t.rows.len(), 3);
        assert_eq!(t.rows[2].term, "a:b");
        assert!(t.balanced);
    }

    #[test]
    fn combinations_are_lexicographic() {
        assert_eq!(combinations(3, 2), vec![vec![0, 1], vec![0, 2], vec![1, 2]]);
        assert_eq!(combinations(3, 3), vec![vec![0, 1, 2]]);
    }

    #[test]
    fn degenerate_designs_are_errors() {
        let (y, a, b) = two_by_two();
        // Empty cell: drop both observations of a=4, b=y.
        let keep = [0, 1, 2, 3, 4, 5];
        let y2: Vec<f64> = keep.iter().map(|&i| y[i]).collect();
        let a2 = Factor::new("a", keep.iter().map(|&i| a.levels()[a.codes()[i]].clone()));
        let b2 = Factor::new("b", keep.iter().map(|&i| b.levels()[b.codes()[i]].clone()));
        assert!(matches!(
            anova(&y2, &[a2, b2]),
            Err(StatsError::EmptyCell { cell }) if cell == "a=4, b=y"
        ));
        // One level.
        let one = Factor::new("c", ["z"; 8]);
        assert!(matches!(
            anova(&y, &[a.clone(), one]),
            Err(StatsError::SingleLevel { .. })
        ));
        // No residual df: one observation per cell.
        let y4 = [1.0, 2.0, 3.0, 5.0];
        let a4 = Factor::new("a", [1, 1, 2, 2]);
        let b4 = Factor::new("b", [1, 2, 1, 2]);
        assert!(matches!(
            anova(&y4, &[a4, b4]),
            Err(StatsError::NoResidualDf { n: 4, cells: 4 })
        ));
        // Duplicate factor and non-finite response.
        assert!(matches!(
            anova(&y, &[a.clone(), a.clone()]),
            Err(StatsError::DuplicateFactor(_))
        ));
        let mut bad = y.clone();
        bad[3] = f64::NAN;
        assert!(matches!(
            anova(&bad, &[a, b]),
            Err(StatsError::NonFinite { index: 3, .. })
        ));
    }

    #[test]
    fn constant_cells_have_no_f_test() {
        let y = [1.0, 1.0, 2.0, 2.0];
        let a = Factor::new("a", [1, 1, 2, 2]);
        assert!(matches!(anova(&y, &[a]), Err(StatsError::ZeroVariance(_))));
    }
}
