//! Gaussian-process regression in the unit cube with a Matérn-5/2 ARD kernel.
//!
//! `k(x, x') = s² (1 + √5 r + 5/3 r²) exp(−√5 r)` with `r² = Σ_j ρ_j δ_j²`, where `ρ_j` is the
//! inverse squared length scale of dimension `j` and `δ_j = x_j − x'_j`; for a categorical
//! dimension `δ_j²` is 0 when both points fall in the same choice and 1 otherwise, so choices are
//! unordered. Outputs are standardised (mean 0, variance 1) before fitting. The hyperparameters
//! `(ρ, s², noise)` maximise the log marginal likelihood plus weak log priors (those of Optuna's
//! `GPSampler`: `−(0.1/ρ + 0.1ρ)` per length scale, Gamma(2, 1) on `s²`, Gamma(1.1, 30) on the
//! noise, whose floor is 1e-6), by projected L-BFGS on their logarithms with analytic gradients,
//! from several starts.

use super::optim::{LbfgsOptions, minimize};
use crate::linalg;

const SQRT5: f64 = 2.236_067_977_499_79;
const LN_2PI: f64 = 1.837_877_066_409_345_3;

/// Smallest noise variance (standardised units).
pub const MIN_NOISE: f64 = 1e-6;

/// Kernel hyperparameters.
#[derive(Clone, Debug, PartialEq)]
pub struct KernelParams {
    /// Inverse squared length scale per dimension.
    pub inv_sq_ls: Vec<f64>,
    /// Signal variance `s²`.
    pub scale: f64,
    /// Observation noise variance.
    pub noise: f64,
}

impl KernelParams {
    fn to_log(&self) -> Vec<f64> {
        let mut t: Vec<f64> = self.inv_sq_ls.iter().map(|v| v.ln()).collect();
        t.push(self.scale.ln());
        t.push(self.noise.ln());
        t
    }

    fn from_log(t: &[f64]) -> KernelParams {
        let d = t.len() - 2;
        KernelParams {
            inv_sq_ls: t[..d].iter().map(|v| v.exp()).collect(),
            scale: t[d].exp(),
            noise: t[d + 1].exp(),
        }
    }

    /// The default start: unit length scales, unit signal variance, small noise.
    pub fn default_for(d: usize) -> KernelParams {
        KernelParams {
            inv_sq_ls: vec![1.0; d],
            scale: 1.0,
            noise: 1e-2,
        }
    }
}

/// A fitted (or conditioned) Gaussian process.
#[derive(Clone, Debug)]
pub struct GpModel {
    d: usize,
    n: usize,
    x: Vec<f64>,
    categorical: Vec<bool>,
    params: KernelParams,
    y_mean: f64,
    y_std: f64,
    ys: Vec<f64>,
    alpha: Vec<f64>,
    linv: Vec<f64>,
}

/// Squared per-dimension distance, Hamming for categorical dimensions.
#[inline]
fn delta2(a: f64, b: f64, categorical: bool) -> f64 {
    if categorical {
        if (a - b).abs() > 1e-9 { 1.0 } else { 0.0 }
    } else {
        (a - b) * (a - b)
    }
}

/// Matérn-5/2 value (without `s²`) and `c(r) = −5/3 (1 + √5 r) e^{−√5 r}`, so that
/// `∂k/∂(r²) = s² c(r) / 2`.
#[inline]
fn matern(r2: f64) -> (f64, f64) {
    let r = r2.max(0.0).sqrt();
    let e = (-SQRT5 * r).exp();
    (
        (1.0 + SQRT5 * r + 5.0 / 3.0 * r2) * e,
        -5.0 / 3.0 * (1.0 + SQRT5 * r) * e,
    )
}

/// How to fit.
#[derive(Clone, Debug)]
pub struct FitOptions {
    /// Starting points, tried in order; the best fit wins.
    pub starts: Vec<KernelParams>,
    /// Iterations per start.
    pub max_iter: usize,
    /// Longest length scale allowed (unit-cube units).
    pub max_length_scale: f64,
}

impl GpModel {
    /// Fits a GP to points `x` (each of length `d`, in the unit cube) and values `y`. `None` if
    /// there are no points or no start gives a finite likelihood.
    pub fn fit(
        x: &[Vec<f64>],
        y: &[f64],
        categorical: &[bool],
        opts: &FitOptions,
    ) -> Option<GpModel> {
        let n = x.len();
        let d = categorical.len();
        if n == 0 || y.len() != n {
            return None;
        }
        let (y_mean, y_std) = standardise(y);
        let ys: Vec<f64> = y.iter().map(|v| (v - y_mean) / y_std).collect();
        // Per-pair squared distances, independent of the hyperparameters.
        let npairs = n * (n - 1) / 2;
        let mut d2 = Vec::with_capacity(npairs * d);
        for a in 0..n {
            for b in 0..a {
                for j in 0..d {
                    d2.push(delta2(x[a][j], x[b][j], categorical[j]));
                }
            }
        }
        // The longest length scale bounds ordered dimensions only: a categorical dimension's
        // distance is 0 or 1 whatever the scale, and a long scale there is how the model says
        // that choices behave alike (bounded, every choice would be a separate function).
        let ordered_lo = (1.0 / (opts.max_length_scale * opts.max_length_scale))
            .ln()
            .min(4.0);
        let mut lo: Vec<f64> = categorical
            .iter()
            .map(|&c| if c { 1e-2f64.ln() } else { ordered_lo })
            .collect();
        let mut hi = vec![1e4f64.ln(); d];
        lo.extend([1e-2f64.ln(), MIN_NOISE.ln()]);
        hi.extend([1e2f64.ln(), 2.0f64.ln()]);
        let lbfgs = LbfgsOptions {
            max_iter: opts.max_iter,
            memory: 10,
            gtol: 1e-4,
            ftol: 1e-9,
        };
        let mut work = LmlWork::new(n);
        let mut best: Option<(f64, Vec<f64>)> = None;
        for start in &opts.starts {
            if start.inv_sq_ls.len() != d {
                continue;
            }
            let t0 = start.to_log();
            let m = minimize(
                |t, g| neg_log_posterior(t, g, &ys, &d2, n, d, &mut work),
                &t0,
                &lo,
                &hi,
                lbfgs,
            );
            if m.f.is_finite() && best.as_ref().is_none_or(|(f, _)| m.f < *f) {
                best = Some((m.f, m.x));
            }
        }
        let (_, t) = best?;
        let params = KernelParams::from_log(&t);
        GpModel::build(x, &ys, categorical, params, y_mean, y_std)
    }

    /// A GP with given hyperparameters on standardised values `ys` (as produced for this
    /// model's scale; see [`GpModel::standardise_value`]).
    fn build(
        x: &[Vec<f64>],
        ys: &[f64],
        categorical: &[bool],
        params: KernelParams,
        y_mean: f64,
        y_std: f64,
    ) -> Option<GpModel> {
        let n = x.len();
        let d = categorical.len();
        let flat: Vec<f64> = x.iter().flat_map(|p| p.iter().copied()).collect();
        let mut k = vec![0.0; n * n];
        for a in 0..n {
            for b in 0..a {
                let r2: f64 = (0..d)
                    .map(|j| {
                        params.inv_sq_ls[j]
                            * delta2(flat[a * d + j], flat[b * d + j], categorical[j])
                    })
                    .sum();
                let v = params.scale * matern(r2).0;
                k[a * n + b] = v;
                k[b * n + a] = v;
            }
            k[a * n + a] = params.scale + params.noise;
        }
        let (l, _) = linalg::cholesky_jitter(&k, n)?;
        let mut alpha = ys.to_vec();
        linalg::solve_cholesky(&l, n, &mut alpha);
        let linv = linalg::invert_lower(&l, n);
        Some(GpModel {
            d,
            n,
            x: flat,
            categorical: categorical.to_vec(),
            params,
            y_mean,
            y_std,
            ys: ys.to_vec(),
            alpha,
            linv,
        })
    }

    /// The same hyperparameters and scale, conditioned on extra points with standardised values
    /// (the constant liar for running trials).
    pub fn with_extra_points(&self, extra: &[Vec<f64>], lie_std: f64) -> Option<GpModel> {
        if extra.is_empty() {
            return Some(self.clone());
        }
        let mut x: Vec<Vec<f64>> = self.x.chunks(self.d).map(|c| c.to_vec()).collect();
        let mut ys = self.ys.clone();
        x.extend(extra.iter().cloned());
        ys.extend(std::iter::repeat_n(lie_std, extra.len()));
        GpModel::build(
            &x,
            &ys,
            &self.categorical,
            self.params.clone(),
            self.y_mean,
            self.y_std,
        )
    }

    fn kernel(&self, x: &[f64], i: usize) -> f64 {
        let xi = &self.x[i * self.d..(i + 1) * self.d];
        let r2: f64 = (0..self.d)
            .map(|j| self.params.inv_sq_ls[j] * delta2(x[j], xi[j], self.categorical[j]))
            .sum();
        self.params.scale * matern(r2).0
    }

    /// Fitted hyperparameters.
    pub fn params(&self) -> &KernelParams {
        &self.params
    }

    /// Maps a raw value to the model's standardised scale.
    pub fn standardise_value(&self, v: f64) -> f64 {
        (v - self.y_mean) / self.y_std
    }

    /// Maps a standardised mean back to raw units.
    pub fn unstandardise_mean(&self, m: f64) -> f64 {
        m * self.y_std + self.y_mean
    }

    /// Largest standardised training value (lies included).
    pub fn max_value_std(&self) -> f64 {
        self.ys.iter().copied().fold(f64::NEG_INFINITY, f64::max)
    }

    /// Standard deviation of the raw values (the unit of standardised values).
    pub fn y_std(&self) -> f64 {
        self.y_std
    }

    /// Posterior mean and variance of the latent function at `x`, in standardised units.
    pub fn predict(&self, x: &[f64], k: &mut Vec<f64>, v: &mut Vec<f64>) -> (f64, f64) {
        let n = self.n;
        k.resize(n, 0.0);
        v.resize(n, 0.0);
        for (i, ki) in k.iter_mut().enumerate() {
            *ki = self.kernel(x, i);
        }
        let mean = linalg::dot(k, &self.alpha);
        linalg::mul_lower(&self.linv, n, k, v);
        let var = (self.params.scale - linalg::dot(v, v)).max(0.0);
        (mean, var)
    }

    /// Like [`GpModel::predict`], and writes the gradients of the mean and the variance with
    /// respect to `x` (zero along categorical dimensions).
    pub fn predict_grad(
        &self,
        x: &[f64],
        dmean: &mut [f64],
        dvar: &mut [f64],
        scratch: &mut Scratch,
    ) -> (f64, f64) {
        let (n, d) = (self.n, self.d);
        scratch.k.resize(n, 0.0);
        scratch.c.resize(n, 0.0);
        scratch.v.resize(n, 0.0);
        scratch.w.resize(n, 0.0);
        let rho = &self.params.inv_sq_ls;
        for i in 0..n {
            let xi = &self.x[i * d..(i + 1) * d];
            let r2: f64 = (0..d)
                .map(|j| rho[j] * delta2(x[j], xi[j], self.categorical[j]))
                .sum();
            let (m, c) = matern(r2);
            scratch.k[i] = self.params.scale * m;
            scratch.c[i] = self.params.scale * c;
        }
        let mean = linalg::dot(&scratch.k, &self.alpha);
        linalg::mul_lower(&self.linv, n, &scratch.k, &mut scratch.v);
        let var = (self.params.scale - linalg::dot(&scratch.v, &scratch.v)).max(0.0);
        linalg::mul_lower_t(&self.linv, n, &scratch.v, &mut scratch.w);
        dmean[..d].fill(0.0);
        dvar[..d].fill(0.0);
        // ∂k_i/∂x_j = c_i ρ_j (x_j − X_ij).
        for i in 0..n {
            let xi = &self.x[i * d..(i + 1) * d];
            let (am, aw) = (self.alpha[i] * scratch.c[i], scratch.w[i] * scratch.c[i]);
            for j in 0..d {
                if !self.categorical[j] {
                    let dk = rho[j] * (x[j] - xi[j]);
                    dmean[j] += am * dk;
                    dvar[j] -= 2.0 * aw * dk;
                }
            }
        }
        (mean, var)
    }
}

/// Reusable buffers for [`GpModel::predict_grad`].
#[derive(Clone, Debug, Default)]
pub struct Scratch {
    k: Vec<f64>,
    c: Vec<f64>,
    v: Vec<f64>,
    w: Vec<f64>,
}

/// Mean and standard deviation (1 when the values are constant).
fn standardise(y: &[f64]) -> (f64, f64) {
    let n = y.len() as f64;
    let mean = y.iter().sum::<f64>() / n;
    let var = y.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n;
    let std = var.sqrt();
    (
        mean,
        if std > 1e-12 * (1.0 + mean.abs()) {
            std
        } else {
            1.0
        },
    )
}

/// Buffers for the likelihood.
struct LmlWork {
    k: Vec<f64>,
    kern: Vec<f64>,
    dk: Vec<f64>,
}

impl LmlWork {
    fn new(n: usize) -> LmlWork {
        LmlWork {
            k: vec![0.0; n * n],
            kern: Vec::with_capacity(n * n / 2),
            dk: Vec::with_capacity(n * n / 2),
        }
    }
}

/// Negative log marginal likelihood plus negative log prior, and its gradient, over
/// `t = (ln ρ_1..d, ln s², ln noise)`.
fn neg_log_posterior(
    t: &[f64],
    grad: &mut [f64],
    ys: &[f64],
    d2: &[f64],
    n: usize,
    d: usize,
    work: &mut LmlWork,
) -> f64 {
    let rho: Vec<f64> = t[..d].iter().map(|v| v.exp()).collect();
    let (s2, noise) = (t[d].exp(), t[d + 1].exp());
    let k = &mut work.k;
    work.kern.clear();
    work.dk.clear();
    let mut p = 0;
    for a in 0..n {
        for b in 0..a {
            let r2 = linalg::dot(&rho, &d2[p * d..(p + 1) * d]);
            let (m, c) = matern(r2);
            let v = s2 * m;
            k[a * n + b] = v;
            k[b * n + a] = v;
            work.kern.push(v);
            // ∂k/∂(ln ρ_j) = s² c/2 · ρ_j δ_j².
            work.dk.push(0.5 * s2 * c);
            p += 1;
        }
        k[a * n + a] = s2 + noise;
    }
    let Some(l) = linalg::cholesky(k, n) else {
        return f64::INFINITY;
    };
    let mut alpha = ys.to_vec();
    linalg::solve_cholesky(&l, n, &mut alpha);
    let log_det_half: f64 = (0..n).map(|i| l[i * n + i].ln()).sum();
    let lml = -0.5 * linalg::dot(ys, &alpha) - log_det_half - 0.5 * n as f64 * LN_2PI;
    let kinv = linalg::inverse_from_inv_lower(&linalg::invert_lower(&l, n), n);
    // ∂lml/∂θ = ½ tr((ααᵀ − K⁻¹) ∂K/∂θ).
    let mut g_s2 = 0.0;
    let mut g_rho = vec![0.0; d];
    let mut trace_w = 0.0;
    let mut p = 0;
    for a in 0..n {
        let waa = alpha[a] * alpha[a] - kinv[a * n + a];
        trace_w += waa;
        g_s2 += 0.5 * waa * s2;
        for b in 0..a {
            let w = alpha[a] * alpha[b] - kinv[a * n + b];
            // Off-diagonal pairs count twice in the trace, which cancels the ½.
            g_s2 += w * work.kern[p];
            let wd = w * work.dk[p];
            for (g, &dd) in g_rho.iter_mut().zip(&d2[p * d..(p + 1) * d]) {
                *g += wd * dd;
            }
            p += 1;
        }
    }
    let g_noise = 0.5 * noise * trace_w;
    // Log priors (Optuna's), up to constants.
    let mut lp = 0.0;
    for j in 0..d {
        lp -= 0.1 / rho[j] + 0.1 * rho[j];
        grad[j] = -(g_rho[j] * rho[j] + 0.1 / rho[j] - 0.1 * rho[j]);
    }
    lp += s2.ln() - s2;
    lp += 0.1 * noise.ln() - 30.0 * noise;
    grad[d] = -(g_s2 + 1.0 - s2);
    grad[d + 1] = -(g_noise + 0.1 - 30.0 * noise);
    -(lml + lp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy() -> (Vec<Vec<f64>>, Vec<f64>, Vec<bool>) {
        let x: Vec<Vec<f64>> = (0..7)
            .map(|i| vec![i as f64 / 6.0, ((i * 3) % 7) as f64 / 6.0])
            .collect();
        let y = x.iter().map(|p| (6.0 * p[0]).sin() + p[1] * p[1]).collect();
        (x, y, vec![false, false])
    }

    #[test]
    fn likelihood_gradient_matches_finite_differences() {
        let (x, y, cat) = toy();
        let (m, s) = standardise(&y);
        let ys: Vec<f64> = y.iter().map(|v| (v - m) / s).collect();
        let n = x.len();
        let mut d2 = vec![];
        for a in 0..n {
            for b in 0..a {
                for j in 0..2 {
                    d2.push(delta2(x[a][j], x[b][j], cat[j]));
                }
            }
        }
        let mut work = LmlWork::new(n);
        let t = [0.7, -0.3, 0.2, -3.0];
        let mut g = [0.0; 4];
        neg_log_posterior(&t, &mut g, &ys, &d2, n, 2, &mut work);
        for j in 0..4 {
            let (mut tp, mut tm) = (t, t);
            let e = 1e-6;
            tp[j] += e;
            tm[j] -= e;
            let mut dummy = [0.0; 4];
            let fd = (neg_log_posterior(&tp, &mut dummy, &ys, &d2, n, 2, &mut work)
                - neg_log_posterior(&tm, &mut dummy, &ys, &d2, n, 2, &mut work))
                / (2.0 * e);
            assert!(
                (fd - g[j]).abs() < 1e-5 * (1.0 + fd.abs()),
                "θ{j}: analytic {} vs numeric {fd}",
                g[j]
            );
        }
    }

    #[test]
    fn prediction_gradient_matches_finite_differences() {
        let (x, y, cat) = toy();
        let opts = FitOptions {
            starts: vec![KernelParams::default_for(2)],
            max_iter: 50,
            max_length_scale: 30.0,
        };
        let gp = GpModel::fit(&x, &y, &cat, &opts).unwrap();
        let p = [0.37, 0.61];
        let (mut dm, mut dv) = ([0.0; 2], [0.0; 2]);
        let mut scratch = Scratch::default();
        let (m0, v0) = gp.predict_grad(&p, &mut dm, &mut dv, &mut scratch);
        let (mut k, mut v) = (vec![], vec![]);
        let (m1, v1) = gp.predict(&p, &mut k, &mut v);
        assert!((m0 - m1).abs() < 1e-12 && (v0 - v1).abs() < 1e-12);
        for j in 0..2 {
            let e = 1e-6;
            let (mut pp, mut pm) = (p, p);
            pp[j] += e;
            pm[j] -= e;
            let (mp, vp) = gp.predict(&pp, &mut k, &mut v);
            let (mm, vm) = gp.predict(&pm, &mut k, &mut v);
            assert!(
                (dm[j] - (mp - mm) / (2.0 * e)).abs() < 1e-5,
                "mean, dim {j}"
            );
            assert!(
                (dv[j] - (vp - vm) / (2.0 * e)).abs() < 1e-5,
                "variance, dim {j}"
            );
        }
    }
}
