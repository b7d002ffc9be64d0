//! The standard normal distribution, with the logarithms the acquisitions need computed stably
//! far into the tails (where `Φ(z)` and `φ(z) + zΦ(z)` underflow).

use std::f64::consts::{FRAC_1_SQRT_2, PI};

/// `ln √(2π)`.
const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;

/// Density `φ(z)`.
pub fn pdf(z: f64) -> f64 {
    (-0.5 * z * z).exp() / (2.0 * PI).sqrt()
}

/// Distribution function `Φ(z)`.
pub fn cdf(z: f64) -> f64 {
    0.5 * libm::erfc(-z * FRAC_1_SQRT_2)
}

/// Mills ratio `R(t) = Φ(−t) / φ(t)` for `t ≥ 0` (about `1/t` for large `t`).
fn mills(t: f64) -> f64 {
    if t < 25.0 {
        0.5 * libm::erfc(t * FRAC_1_SQRT_2) / pdf(t)
    } else {
        let u = 1.0 / (t * t);
        (1.0 - u * (1.0 - u * (3.0 - u * (15.0 - 105.0 * u)))) / t
    }
}

/// `1 − t R(t)` for `t ≥ 1`, without cancellation (about `1/t²` for large `t`).
fn one_minus_t_mills(t: f64) -> f64 {
    if t < 25.0 {
        1.0 - t * mills(t)
    } else {
        let u = 1.0 / (t * t);
        u * (1.0 - u * (3.0 - u * (15.0 - u * (105.0 - 945.0 * u))))
    }
}

/// `ln Φ(z)`, accurate for very negative `z`.
pub fn log_cdf(z: f64) -> f64 {
    if z > 0.0 {
        (-0.5 * libm::erfc(z * FRAC_1_SQRT_2)).ln_1p()
    } else if z > -5.0 {
        cdf(z).ln()
    } else {
        -0.5 * z * z - LN_SQRT_2PI + mills(-z).ln()
    }
}

/// `d ln Φ(z) / dz = φ(z) / Φ(z)` (the inverse Mills ratio), stable for very negative `z`.
pub fn d_log_cdf(z: f64) -> f64 {
    if z > -5.0 {
        pdf(z) / cdf(z)
    } else {
        1.0 / mills(-z)
    }
}

/// `h(z) = φ(z) + z Φ(z)`: expected improvement of a unit-variance normal over `−z`.
pub fn h(z: f64) -> f64 {
    pdf(z) + z * cdf(z)
}

/// `ln h(z)`, accurate for very negative `z` (the log-EI of Ament et al., NeurIPS 2023).
pub fn log_h(z: f64) -> f64 {
    if z > -1.0 {
        h(z).ln()
    } else {
        // h(z) = φ(z) (1 − t R(t)) with t = −z.
        let t = -z;
        -0.5 * z * z - LN_SQRT_2PI + one_minus_t_mills(t).ln()
    }
}

/// `d ln h(z) / dz = Φ(z) / h(z)`, stable for very negative `z`.
pub fn d_log_h(z: f64) -> f64 {
    if z > -1.0 {
        cdf(z) / h(z)
    } else {
        let t = -z;
        mills(t) / one_minus_t_mills(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_match_tables() {
        // Φ(1.96) = 0.9750021048517795, φ(0) = 0.3989422804014327.
        assert!((cdf(1.96) - 0.975_002_104_851_779_5).abs() < 1e-14);
        assert!((pdf(0.0) - 0.398_942_280_401_432_7).abs() < 1e-15);
        // ln Φ(−40) = −804.6084420137538 (mpmath).
        assert!((log_cdf(-40.0) + 804.608_442_013_753_8).abs() < 1e-9);
        // h(0) = φ(0).
        assert!((h(0.0) - pdf(0.0)).abs() < 1e-15);
    }

    #[test]
    fn logs_are_continuous_across_branches_and_finite_in_tails() {
        for &(f, name) in &[
            (log_h as fn(f64) -> f64, "log_h"),
            (log_cdf, "log_cdf"),
            (d_log_h, "d_log_h"),
            (d_log_cdf, "d_log_cdf"),
        ] {
            for &z in &[-1.0, -5.0, -25.0] {
                let (a, b) = (f(z - 1e-9), f(z + 1e-9));
                assert!(
                    (a - b).abs() < 1e-6 * (1.0 + a.abs()),
                    "{name} jumps at {z}: {a} vs {b}"
                );
            }
            for &z in &[-1e3, -200.0, -38.0, 0.0, 8.0] {
                assert!(f(z).is_finite(), "{name}({z}) = {}", f(z));
            }
        }
        // The derivatives match finite differences of the logs.
        for &z in &[-30.0, -3.0, -0.5, 0.7, 3.0] {
            let e = 1e-6;
            let fd = (log_h(z + e) - log_h(z - e)) / (2.0 * e);
            assert!((fd - d_log_h(z)).abs() < 1e-5 * (1.0 + fd.abs()), "z = {z}");
            let fd = (log_cdf(z + e) - log_cdf(z - e)) / (2.0 * e);
            assert!(
                (fd - d_log_cdf(z)).abs() < 1e-5 * (1.0 + fd.abs()),
                "z = {z}"
            );
        }
    }
}
