//! Tukey's studentized range distribution, which `statrs` does not provide.
//!
//! For `k` means and `ν` error degrees of freedom, `Q = range(Z_1..Z_k) / S` with independent
//! standard normals `Z_i` and `S² ~ χ²_ν / ν`. Following Copenhaver & Holland (1988,
//! "Computation of the distribution of the maximum studentized range statistic with
//! application to multiple significance testing of simple effects", J. Stat. Comput. Simul.
//! 30:1–15), the algorithm behind R's `ptukey`, the CDF is a double integral:
//!
//! ```text
//! P(Q ≤ q) = ∫₀^∞ f_S(s) W(q·s) ds,   W(w) = k ∫ φ(z) [Φ(z) − Φ(z − w)]^(k−1) dz
//! ```
//!
//! where `W` is the CDF of the range of `k` standard normals and `f_S` the density of `S`.
//! R evaluates both integrals with fixed Gauss–Legendre panels; here both are evaluated with
//! globally adaptive Gauss–Kronrod (7/15) quadrature to a relative tolerance of about 1e-12,
//! and the upper tail is integrated directly (not as `1 − CDF`) so that small p-values keep
//! their relative accuracy:
//!
//! ```text
//! 1 − W(w) = k ∫ φ(z) Φ(z)^(k−1) [1 − (1 − Φ(z − w)/Φ(z))^(k−1)] dz
//! ```
//!
//! (using `k ∫ φ Φ^(k−1) = 1`). The normal CDF, log-gamma and the chi density come from
//! `statrs`. Values are checked in `tests/reference.rs` against SciPy's
//! `scipy.stats.studentized_range` (fixtures/distributions.json).

use statrs::distribution::{Continuous, ContinuousCDF, Normal};
use statrs::function::gamma::ln_gamma;

use crate::error::{Result, StatsError};

/// Above this many error degrees of freedom `S` is treated as the constant 1 (as R does).
const DF_INFINITE: f64 = 25_000.0;

// Gauss–Kronrod 7/15 nodes and weights (QUADPACK, Piessens et al. 1983).
const XGK: [f64; 8] = [
    0.991_455_371_120_812_6,
    0.949_107_912_342_758_5,
    0.864_864_423_359_769_1,
    0.741_531_185_599_394_4,
    0.586_087_235_467_691_1,
    0.405_845_151_377_397_2,
    0.207_784_955_007_898_5,
    0.0,
];
const WGK: [f64; 8] = [
    0.022_935_322_010_529_22,
    0.063_092_092_629_978_55,
    0.104_790_010_322_250_2,
    0.140_653_259_715_525_9,
    0.169_004_726_639_267_9,
    0.190_350_578_064_785_4,
    0.204_432_940_075_298_9,
    0.209_482_141_084_727_8,
];
// Gauss weights for the 7-point rule on nodes XGK[1], XGK[3], XGK[5], XGK[7].
const WG: [f64; 4] = [
    0.129_484_966_168_869_7,
    0.279_705_391_489_276_7,
    0.381_830_050_505_118_9,
    0.417_959_183_673_469_4,
];

/// One Gauss–Kronrod panel: (Kronrod estimate, |Kronrod − Gauss|).
fn gk15(f: &impl Fn(f64) -> f64, a: f64, b: f64) -> (f64, f64) {
    let c = 0.5 * (a + b);
    let h = 0.5 * (b - a);
    let fc = f(c);
    let mut kronrod = fc * WGK[7];
    let mut gauss = fc * WG[3];
    for (i, (&x, &w)) in XGK.iter().zip(WGK.iter()).take(7).enumerate() {
        let f1 = f(c - h * x);
        let f2 = f(c + h * x);
        kronrod += w * (f1 + f2);
        if i % 2 == 1 {
            gauss += WG[i / 2] * (f1 + f2);
        }
    }
    (kronrod * h, ((kronrod - gauss) * h).abs())
}

/// Globally adaptive quadrature of `f` over `[a, b]`: splits the panel with the largest error
/// estimate until the summed estimate is below `rel_tol·|I|` (or `abs_tol`).
#[cfg(test)]
pub(crate) fn integrate(f: impl Fn(f64) -> f64, a: f64, b: f64, rel_tol: f64, abs_tol: f64) -> f64 {
    let (v, e) = gk15(&f, a, b);
    let mut panels = vec![(a, b, v, e)];
    adapt(&f, &mut panels, rel_tol, abs_tol)
}

fn adapt(
    f: &impl Fn(f64) -> f64,
    panels: &mut Vec<(f64, f64, f64, f64)>,
    rel_tol: f64,
    abs_tol: f64,
) -> f64 {
    const MAX_PANELS: usize = 400;
    loop {
        let total: f64 = panels.iter().map(|p| p.2).sum();
        let err: f64 = panels.iter().map(|p| p.3).sum();
        if err <= abs_tol.max(rel_tol * total.abs()) || panels.len() >= MAX_PANELS {
            return total;
        }
        let worst = panels
            .iter()
            .enumerate()
            .max_by(|x, y| x.1.3.total_cmp(&y.1.3))
            .map_or(0, |(i, _)| i);
        let (lo, hi, _, _) = panels.swap_remove(worst);
        let mid = 0.5 * (lo + hi);
        let (v1, e1) = gk15(f, lo, mid);
        let (v2, e2) = gk15(f, mid, hi);
        panels.push((lo, mid, v1, e1));
        panels.push((mid, hi, v2, e2));
    }
}

fn std_normal() -> Normal {
    // Mean 0 and standard deviation 1 are valid parameters; `Normal::standard` cannot fail.
    Normal::standard()
}

/// Which tail of a distribution to integrate.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Tail {
    Lower,
    Upper,
}

/// `P(W ≤ w)` (lower tail) or `P(W > w)` (upper tail) for the range `W` of `k` independent
/// standard normals.
fn range_tail(w: f64, k: f64, tail: Tail) -> f64 {
    if w <= 0.0 {
        return if tail == Tail::Lower { 0.0 } else { 1.0 };
    }
    let n = std_normal();
    let m = k - 1.0;
    let hi = 12.0_f64.max(0.5 * w + 12.0);
    let v = match tail {
        Tail::Lower => integrate_panels(
            |z| {
                let d = n.cdf(z) - n.cdf(z - w);
                if d <= 0.0 { 0.0 } else { n.pdf(z) * d.powf(m) }
            },
            -12.0,
            12.0,
            8,
            INNER_TOL,
        ),
        Tail::Upper => integrate_panels(
            |z| {
                let pz = n.cdf(z);
                if pz <= 0.0 {
                    return 0.0;
                }
                let ratio = (n.cdf(z - w) / pz).min(1.0);
                // 1 − (1 − r)^m without cancellation for small r.
                let tail = -((m * (-ratio).ln_1p()).exp_m1());
                n.pdf(z) * pz.powf(m) * tail
            },
            -12.0,
            hi,
            8,
            INNER_TOL,
        ),
    };
    (v * k).clamp(0.0, 1.0)
}

/// Relative tolerance of the inner (range) and outer (chi) integrals. SciPy and R agree with
/// these integrals to about 1e-12 relative on the fixture grid; 1e-11 keeps p-values far more
/// accurate than any use needs while halving the work.
const INNER_TOL: f64 = 1e-12;
const OUTER_TOL: f64 = 1e-11;

/// Adaptive quadrature started from `panels` equal panels (so that a narrow bump inside a wide
/// interval is never missed by the first estimate).
fn integrate_panels(f: impl Fn(f64) -> f64, a: f64, b: f64, panels: usize, tol: f64) -> f64 {
    let h = (b - a) / panels as f64;
    let mut list: Vec<(f64, f64, f64, f64)> = (0..panels)
        .map(|i| {
            let lo = a + h * i as f64;
            let hi = if i + 1 == panels { b } else { lo + h };
            let (v, e) = gk15(&f, lo, hi);
            (lo, hi, v, e)
        })
        .collect();
    adapt(&f, &mut list, tol, 0.0)
}

/// log density of `S = sqrt(χ²_ν / ν)` at `s > 0`.
fn ln_density_s(s: f64, nu: f64) -> f64 {
    let half = 0.5 * nu;
    half * nu.ln() - ln_gamma(half) - (half - 1.0) * 2f64.ln() + (nu - 1.0) * s.ln()
        - 0.5 * nu * s * s
}

fn check_params(k: usize, df: f64) -> Result<()> {
    if k < 2 {
        return Err(StatsError::InvalidArgument(format!(
            "the studentized range needs at least 2 means, got {k}"
        )));
    }
    if df.is_nan() || df < 1.0 {
        return Err(StatsError::InvalidArgument(format!(
            "the studentized range needs at least 1 error degree of freedom, got {df}"
        )));
    }
    Ok(())
}

fn studentized_range_tail(q: f64, k: usize, df: f64, tail: Tail) -> Result<f64> {
    check_params(k, df)?;
    if q.is_nan() {
        return Err(StatsError::InvalidArgument("q is NaN".into()));
    }
    let lower = tail == Tail::Lower;
    if q <= 0.0 {
        return Ok(if lower { 0.0 } else { 1.0 });
    }
    if q.is_infinite() {
        return Ok(if lower { 1.0 } else { 0.0 });
    }
    let kf = k as f64;
    if df > DF_INFINITE {
        return Ok(range_tail(q, kf, tail));
    }
    // S has its mode near 1 and a standard deviation of about 1/sqrt(2ν); its upper tail
    // decays like exp(−ν s²/2), so mode + 40/sqrt(ν) covers everything at double precision.
    let s_mode = ((df - 1.0) / df).sqrt();
    let s_hi = s_mode + 40.0 / df.sqrt();
    let v = integrate_panels(
        |s| {
            if s <= 0.0 {
                0.0
            } else {
                ln_density_s(s, df).exp() * range_tail(q * s, kf, tail)
            }
        },
        0.0,
        s_hi,
        // Enough panels that the bulk of f_S (width ~ 1/sqrt(ν)) spans at least one of them.
        (4.0 + 2.0 * df.sqrt()).min(64.0) as usize,
        OUTER_TOL,
    );
    Ok(v.clamp(0.0, 1.0))
}

/// `(P(Q ≤ q), P(Q > q))` of the studentized range with `k` means and `df` error degrees of
/// freedom. Both tails are integrated separately, so a tiny tail keeps its relative accuracy.
///
/// # Errors
/// `k < 2`, `df < 1` or a NaN `q`.
pub fn studentized_range_cdf_sf(q: f64, k: usize, df: f64) -> Result<(f64, f64)> {
    Ok((
        studentized_range_tail(q, k, df, Tail::Lower)?,
        studentized_range_tail(q, k, df, Tail::Upper)?,
    ))
}

/// Upper-tail probability `P(Q > q)`: the p-value of a Tukey HSD comparison.
///
/// # Errors
/// As [`studentized_range_cdf_sf`].
pub fn studentized_range_sf(q: f64, k: usize, df: f64) -> Result<f64> {
    studentized_range_tail(q, k, df, Tail::Upper)
}

/// The `p`-quantile of the studentized range (the critical value of Tukey HSD at `p = 1 − α`).
///
/// Solved on the upper tail with the Illinois variant of regula falsi to ~1e-10.
///
/// # Errors
/// `p` outside (0, 1), or the parameters of [`studentized_range_cdf_sf`].
pub fn studentized_range_quantile(p: f64, k: usize, df: f64) -> Result<f64> {
    check_params(k, df)?;
    if !(p > 0.0 && p < 1.0) {
        return Err(StatsError::InvalidArgument(format!(
            "quantile probability {p} must lie strictly between 0 and 1"
        )));
    }
    let target = 1.0 - p;
    // g is decreasing in q: g(q) = sf(q) − target.
    let g = |q: f64| -> Result<f64> { Ok(studentized_range_sf(q, k, df)? - target) };
    let mut lo = 0.0;
    let mut g_lo = 1.0 - target;
    let mut hi = 4.0;
    let mut g_hi = g(hi)?;
    while g_hi > 0.0 {
        lo = hi;
        g_lo = g_hi;
        hi *= 2.0;
        if hi > 1e6 {
            return Err(StatsError::Numerical(format!(
                "studentized range quantile p={p}, k={k}, df={df} not bracketed"
            )));
        }
        g_hi = g(hi)?;
    }
    let mut side = 0i8;
    for _ in 0..200 {
        let x = (lo * g_hi - hi * g_lo) / (g_hi - g_lo);
        let gx = g(x)?;
        if gx.abs() <= 1e-14 || (hi - lo) <= 1e-11 * x.abs() {
            return Ok(x);
        }
        if gx > 0.0 {
            lo = x;
            g_lo = gx;
            if side == -1 {
                g_hi *= 0.5;
            }
            side = -1;
        } else {
            hi = x;
            g_hi = gx;
            if side == 1 {
                g_lo *= 0.5;
            }
            side = 1;
        }
    }
    Err(StatsError::Numerical(format!(
        "studentized range quantile p={p}, k={k}, df={df} did not converge"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quadrature_integrates_known_functions() {
        let v = integrate(f64::exp, 0.0, 1.0, 1e-14, 0.0);
        assert!((v - (1f64.exp() - 1.0)).abs() < 1e-14);
        let v = integrate(|x| 1.0 / (1.0 + x * x), -50.0, 50.0, 1e-13, 0.0);
        assert!((v - 2.0 * 50f64.atan()).abs() < 1e-12);
    }

    #[test]
    fn range_of_two_normals_is_half_normal_scaled() {
        // For k = 2 the range is |Z1 − Z2| = sqrt(2)|Z|, so W(w) = 2Φ(w/√2) − 1.
        let n = std_normal();
        for w in [0.3, 1.0, 2.5, 6.0] {
            let c = range_tail(w, 2.0, Tail::Lower);
            let s = range_tail(w, 2.0, Tail::Upper);
            let exact_sf = 2.0 * n.sf(w / 2f64.sqrt());
            // statrs' normal CDF is accurate to about 1e-11 relative, which bounds this check.
            assert!((c - (1.0 - exact_sf)).abs() < 1e-10, "w={w}");
            assert!(
                (s - exact_sf).abs() <= 1e-10 * exact_sf,
                "w={w}: {s} vs {exact_sf}"
            );
        }
    }

    #[test]
    fn tails_sum_to_one_and_quantile_inverts() {
        let (c, s) = studentized_range_cdf_sf(3.2, 5, 12.0).unwrap();
        assert!((c + s - 1.0).abs() < 1e-9);
        let t = std::time::Instant::now();
        let q = studentized_range_quantile(0.95, 5, 12.0).unwrap();
        eprintln!("quantile in {:?}", t.elapsed());
        let (c, _) = studentized_range_cdf_sf(q, 5, 12.0).unwrap();
        assert!((c - 0.95).abs() < 1e-9);
    }

    #[test]
    fn rejects_bad_parameters() {
        assert!(studentized_range_sf(1.0, 1, 10.0).is_err());
        assert!(studentized_range_sf(1.0, 3, 0.0).is_err());
        assert!(studentized_range_quantile(1.0, 3, 10.0).is_err());
    }
}
