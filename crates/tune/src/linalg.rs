//! Small dense linear algebra for the model-based samplers: Cholesky factorisation with jitter,
//! triangular solves and the inverse of a symmetric positive-definite matrix from its factor.
//!
//! Matrices are square, row-major `Vec<f64>`s of side `n`; the Gaussian processes that use them
//! hold at most a few hundred points, where these plain loops (written so that the inner loops
//! run over contiguous rows and vectorise) beat calling out to a BLAS.

/// Factorises the symmetric positive-definite `a` (row-major, side `n`, only the lower triangle
/// is read) as `L Lᵀ` and returns `L` (lower triangle, zeros above). `None` if `a` is not
/// numerically positive definite.
pub fn cholesky(a: &[f64], n: usize) -> Option<Vec<f64>> {
    debug_assert_eq!(a.len(), n * n);
    let mut l = vec![0.0; n * n];
    for i in 0..n {
        for j in 0..=i {
            let (ri, rj) = (&l[i * n..i * n + j], &l[j * n..j * n + j]);
            let s = a[i * n + j] - dot(ri, rj);
            if i == j {
                if s <= 0.0 || !s.is_finite() {
                    return None;
                }
                l[i * n + i] = s.sqrt();
            } else {
                l[i * n + j] = s / l[j * n + j];
            }
        }
    }
    Some(l)
}

/// Like [`cholesky`], but adds growing jitter to the diagonal (from `1e-10` times the mean
/// diagonal, ten times more each try, six tries) until the factorisation succeeds. Returns the
/// factor and the jitter added.
pub fn cholesky_jitter(a: &[f64], n: usize) -> Option<(Vec<f64>, f64)> {
    if let Some(l) = cholesky(a, n) {
        return Some((l, 0.0));
    }
    let mean_diag = (0..n).map(|i| a[i * n + i]).sum::<f64>() / n.max(1) as f64;
    let mut jitter = 1e-10 * mean_diag.abs().max(1e-12);
    let mut b = a.to_vec();
    for _ in 0..6 {
        for i in 0..n {
            b[i * n + i] = a[i * n + i] + jitter;
        }
        if let Some(l) = cholesky(&b, n) {
            return Some((l, jitter));
        }
        jitter *= 10.0;
    }
    None
}

/// Solves `L x = b` for lower-triangular `L` (side `n`), in place.
pub fn solve_lower(l: &[f64], n: usize, b: &mut [f64]) {
    for i in 0..n {
        let s = b[i] - dot(&l[i * n..i * n + i], &b[..i]);
        b[i] = s / l[i * n + i];
    }
}

/// Solves `Lᵀ x = b` for lower-triangular `L` (side `n`), in place.
pub fn solve_upper_t(l: &[f64], n: usize, b: &mut [f64]) {
    for i in (0..n).rev() {
        b[i] /= l[i * n + i];
        let bi = b[i];
        // Column i of Lᵀ above the diagonal is row i of L left of the diagonal.
        for (bk, lik) in b[..i].iter_mut().zip(&l[i * n..i * n + i]) {
            *bk -= lik * bi;
        }
    }
}

/// Solves `(L Lᵀ) x = b` in place.
pub fn solve_cholesky(l: &[f64], n: usize, b: &mut [f64]) {
    solve_lower(l, n, b);
    solve_upper_t(l, n, b);
}

/// The inverse of lower-triangular `L` (lower triangular, row-major).
pub fn invert_lower(l: &[f64], n: usize) -> Vec<f64> {
    let mut inv = vec![0.0; n * n];
    for i in 0..n {
        // Row i of L⁻¹: (eᵢ − Σ_{k<i} L_ik · row_k(L⁻¹)) / L_ii; rows are zero right of k.
        let (done, rest) = inv.split_at_mut(i * n);
        let row = &mut rest[..n];
        row[i] = 1.0;
        for k in 0..i {
            let lik = l[i * n + k];
            if lik != 0.0 {
                for (r, v) in row[..=k].iter_mut().zip(&done[k * n..k * n + k + 1]) {
                    *r -= lik * v;
                }
            }
        }
        let d = l[i * n + i];
        for r in row[..=i].iter_mut() {
            *r /= d;
        }
    }
    inv
}

/// `A⁻¹ = L⁻ᵀ L⁻¹` from `L⁻¹` (the output of [`invert_lower`]); full symmetric matrix.
pub fn inverse_from_inv_lower(linv: &[f64], n: usize) -> Vec<f64> {
    let mut out = vec![0.0; n * n];
    for i in 0..n {
        let row = &linv[i * n..i * n + i + 1];
        for (a, &ra) in row.iter().enumerate() {
            if ra == 0.0 {
                continue;
            }
            // Accumulate the lower triangle only; mirrored below.
            for (o, &rb) in out[a * n..a * n + a + 1].iter_mut().zip(&row[..=a]) {
                *o += ra * rb;
            }
        }
    }
    for a in 0..n {
        for b in 0..a {
            out[b * n + a] = out[a * n + b];
        }
    }
    out
}

/// `y = L x` for lower-triangular `L`.
pub fn mul_lower(l: &[f64], n: usize, x: &[f64], y: &mut [f64]) {
    for i in 0..n {
        y[i] = dot(&l[i * n..i * n + i + 1], &x[..=i]);
    }
}

/// `y = Lᵀ x` for lower-triangular `L`.
pub fn mul_lower_t(l: &[f64], n: usize, x: &[f64], y: &mut [f64]) {
    y[..n].fill(0.0);
    for i in 0..n {
        let xi = x[i];
        for (yk, lik) in y[..=i].iter_mut().zip(&l[i * n..i * n + i + 1]) {
            *yk += lik * xi;
        }
    }
}

/// Dot product of two equally long slices, with four accumulators so that it vectorises.
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0f64; 4];
    let chunks = n / 4;
    for c in 0..chunks {
        let i = c * 4;
        acc[0] += a[i] * b[i];
        acc[1] += a[i + 1] * b[i + 1];
        acc[2] += a[i + 2] * b[i + 2];
        acc[3] += a[i + 3] * b[i + 3];
    }
    let mut s = (acc[0] + acc[1]) + (acc[2] + acc[3]);
    for i in chunks * 4..n {
        s += a[i] * b[i];
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spd(n: usize) -> Vec<f64> {
        // A = B Bᵀ + n I with a fixed, non-trivial B.
        let b: Vec<f64> = (0..n * n)
            .map(|k| ((k * 7 + 3) % 11) as f64 / 11.0 - 0.4)
            .collect();
        let mut a = vec![0.0; n * n];
        for i in 0..n {
            for j in 0..n {
                a[i * n + j] = (0..n).map(|k| b[i * n + k] * b[j * n + k]).sum::<f64>();
            }
            a[i * n + i] += n as f64;
        }
        a
    }

    #[test]
    fn cholesky_reconstructs_and_solves() {
        let n = 9;
        let a = spd(n);
        let l = cholesky(&a, n).unwrap();
        for i in 0..n {
            for j in 0..n {
                let s: f64 = (0..n).map(|k| l[i * n + k] * l[j * n + k]).sum();
                assert!((s - a[i * n + j]).abs() < 1e-10, "LLᵀ[{i},{j}]");
            }
        }
        let x_true: Vec<f64> = (0..n).map(|i| i as f64 - 3.5).collect();
        let mut b: Vec<f64> = (0..n)
            .map(|i| (0..n).map(|j| a[i * n + j] * x_true[j]).sum())
            .collect();
        solve_cholesky(&l, n, &mut b);
        for (x, t) in b.iter().zip(&x_true) {
            assert!((x - t).abs() < 1e-10);
        }
        let inv = inverse_from_inv_lower(&invert_lower(&l, n), n);
        for i in 0..n {
            for j in 0..n {
                let s: f64 = (0..n).map(|k| a[i * n + k] * inv[k * n + j]).sum();
                let want = if i == j { 1.0 } else { 0.0 };
                assert!((s - want).abs() < 1e-10, "A A⁻¹[{i},{j}] = {s}");
            }
        }
        let x: Vec<f64> = (0..n).map(|i| (i as f64).sin()).collect();
        let (mut y, mut z) = (vec![0.0; n], vec![0.0; n]);
        mul_lower_t(&l, n, &x, &mut y);
        mul_lower(&l, n, &y, &mut z);
        let want: Vec<f64> = (0..n)
            .map(|i| (0..n).map(|j| a[i * n + j] * x[j]).sum())
            .collect();
        for (g, w) in z.iter().zip(&want) {
            assert!((g - w).abs() < 1e-9);
        }
    }

    #[test]
    fn singular_matrix_needs_jitter() {
        // Rank one: [1 1; 1 1].
        let a = [1.0, 1.0, 1.0, 1.0];
        assert!(cholesky(&a, 2).is_none());
        let (l, jitter) = cholesky_jitter(&a, 2).unwrap();
        assert!(jitter > 0.0 && jitter < 1e-3);
        assert!(l[3] > 0.0);
        assert!(cholesky_jitter(&[-1.0], 1).is_none());
    }
}
