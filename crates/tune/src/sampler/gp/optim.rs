//! Box-constrained quasi-Newton minimisation (projected L-BFGS), used both to fit the Gaussian
//! process's hyperparameters and to refine acquisition maxima.
//!
//! The method keeps the last `memory` curvature pairs, takes the L-BFGS direction on the
//! variables that are not held at a bound, and backtracks along the projected path until the
//! Armijo condition holds. It is simpler than L-BFGS-B's generalised Cauchy point, and enough
//! for the smooth, low-dimensional problems here.

use crate::linalg::dot;

/// Stopping rules.
#[derive(Clone, Copy, Debug)]
pub struct LbfgsOptions {
    /// Most iterations.
    pub max_iter: usize,
    /// Curvature pairs kept.
    pub memory: usize,
    /// Stop when the largest projected-gradient component is below this.
    pub gtol: f64,
    /// Stop when an iteration improves `f` by less than `ftol · (1 + |f|)`.
    pub ftol: f64,
}

impl Default for LbfgsOptions {
    fn default() -> Self {
        LbfgsOptions {
            max_iter: 100,
            memory: 8,
            gtol: 1e-6,
            ftol: 1e-10,
        }
    }
}

/// Result of a minimisation.
#[derive(Clone, Debug)]
pub struct Minimum {
    /// Where.
    pub x: Vec<f64>,
    /// The objective there.
    pub f: f64,
}

/// Minimises `f` over the box `[lo, hi]` from `x0`. `f(x, grad)` returns the value and writes the
/// gradient; a non-finite value counts as "worse than anything" (the line search backs off).
pub fn minimize<F>(mut f: F, x0: &[f64], lo: &[f64], hi: &[f64], opts: LbfgsOptions) -> Minimum
where
    F: FnMut(&[f64], &mut [f64]) -> f64,
{
    let n = x0.len();
    let project = |x: &mut [f64]| {
        for i in 0..n {
            x[i] = x[i].clamp(lo[i], hi[i]);
        }
    };
    let mut x = x0.to_vec();
    project(&mut x);
    let mut g = vec![0.0; n];
    let mut fx = f(&x, &mut g);
    if !fx.is_finite() {
        return Minimum {
            x,
            f: f64::INFINITY,
        };
    }
    let mut s_hist: Vec<Vec<f64>> = Vec::with_capacity(opts.memory);
    let mut y_hist: Vec<Vec<f64>> = Vec::with_capacity(opts.memory);
    let mut rho_hist: Vec<f64> = Vec::with_capacity(opts.memory);
    let mut d = vec![0.0; n];
    let mut x_new = vec![0.0; n];
    let mut g_new = vec![0.0; n];
    let mut alpha = vec![0.0; opts.memory];
    for _ in 0..opts.max_iter {
        // Variables held at a bound by the gradient are fixed for this step.
        let free: Vec<bool> = (0..n)
            .map(|i| !((x[i] <= lo[i] && g[i] > 0.0) || (x[i] >= hi[i] && g[i] < 0.0)))
            .collect();
        let pg_max = (0..n)
            .filter(|&i| free[i])
            .map(|i| g[i].abs())
            .fold(0.0, f64::max);
        if pg_max < opts.gtol {
            break;
        }
        // Two-loop recursion on the free variables.
        for i in 0..n {
            d[i] = if free[i] { -g[i] } else { 0.0 };
        }
        let m = s_hist.len();
        for k in (0..m).rev() {
            let a = rho_hist[k] * masked_dot(&s_hist[k], &d, &free);
            alpha[k] = a;
            for i in 0..n {
                if free[i] {
                    d[i] -= a * y_hist[k][i];
                }
            }
        }
        if m > 0 {
            let (s, y) = (&s_hist[m - 1], &y_hist[m - 1]);
            let gamma = masked_dot(s, y, &free) / masked_dot(y, y, &free).max(1e-300);
            if gamma.is_finite() && gamma > 0.0 {
                d.iter_mut().for_each(|v| *v *= gamma);
            }
        }
        for k in 0..m {
            let b = rho_hist[k] * masked_dot(&y_hist[k], &d, &free);
            for i in 0..n {
                if free[i] {
                    d[i] += s_hist[k][i] * (alpha[k] - b);
                }
            }
        }
        let slope = dot(&d, &g);
        if slope >= 0.0 || slope.is_nan() {
            // Not a descent direction (curvature information gone stale): steepest descent.
            for i in 0..n {
                d[i] = if free[i] { -g[i] } else { 0.0 };
            }
            s_hist.clear();
            y_hist.clear();
            rho_hist.clear();
        }
        // First step: move at most 0.1 (the boxes here are unit-scaled); later: t = 1.
        let mut t = if m == 0 {
            (0.1 / d.iter().fold(0.0f64, |a, v| a.max(v.abs()))).min(1.0)
        } else {
            1.0
        };
        let mut accepted = false;
        let mut f_new = fx;
        for _ in 0..30 {
            for i in 0..n {
                x_new[i] = x[i] + t * d[i];
            }
            project(&mut x_new);
            f_new = f(&x_new, &mut g_new);
            let decrease: f64 = (0..n).map(|i| g[i] * (x_new[i] - x[i])).sum();
            if f_new.is_finite() && f_new <= fx + 1e-4 * decrease.min(0.0) {
                accepted = true;
                break;
            }
            t *= 0.5;
        }
        if !accepted {
            break;
        }
        let s: Vec<f64> = (0..n).map(|i| x_new[i] - x[i]).collect();
        let y: Vec<f64> = (0..n).map(|i| g_new[i] - g[i]).collect();
        let sy = dot(&s, &y);
        let improvement = fx - f_new;
        x.copy_from_slice(&x_new);
        g.copy_from_slice(&g_new);
        fx = f_new;
        if sy > 1e-10 * dot(&y, &y).sqrt() * dot(&s, &s).sqrt() {
            if s_hist.len() == opts.memory {
                s_hist.remove(0);
                y_hist.remove(0);
                rho_hist.remove(0);
            }
            s_hist.push(s);
            y_hist.push(y);
            rho_hist.push(1.0 / sy);
        }
        if improvement < opts.ftol * (1.0 + fx.abs()) {
            break;
        }
    }
    Minimum { x, f: fx }
}

fn masked_dot(a: &[f64], b: &[f64], mask: &[bool]) -> f64 {
    a.iter()
        .zip(b)
        .zip(mask)
        .filter(|(_, m)| **m)
        .map(|((x, y), _)| x * y)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_rosenbrock_minimum_and_respects_bounds() {
        let rosen = |x: &[f64], g: &mut [f64]| {
            let (a, b) = (x[0], x[1]);
            g[0] = -2.0 * (1.0 - a) - 400.0 * a * (b - a * a);
            g[1] = 200.0 * (b - a * a);
            (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2)
        };
        let opts = LbfgsOptions {
            max_iter: 500,
            ..LbfgsOptions::default()
        };
        let m = minimize(rosen, &[-1.2, 1.0], &[-2.0, -2.0], &[2.0, 2.0], opts);
        assert!(
            (m.x[0] - 1.0).abs() < 1e-3 && (m.x[1] - 1.0).abs() < 1e-3,
            "{m:?}"
        );
        // With the box [−2, 0.5]², the minimum sits on the boundary a = 0.5, b = 0.25.
        let m = minimize(rosen, &[-1.2, 0.0], &[-2.0, -2.0], &[0.5, 0.5], opts);
        assert!((m.x[0] - 0.5).abs() < 1e-4, "{m:?}");
        assert!((m.x[1] - 0.25).abs() < 1e-3, "{m:?}");
    }
}
