//! Single-precision matrix products through the `gemm` crate, at a chosen [`Simd`] level.
//!
//! `gemm::gemm` picks its kernels from the CPU by itself: AVX-512 where the machine has it
//! (gemm's `x86-v4` feature, enabled in this crate's manifest), AVX2 + FMA otherwise. To run
//! the AVX2 kernels on an AVX-512 machine — what a machine without AVX-512 would run — the
//! level [`SimdLevel::Avx2`] calls gemm's generic driver with its FMA micro-kernels directly
//! (the same driver `gemm::gemm` dispatches to; both come from gemm 0.19).

use super::simd::{Simd, SimdLevel};

/// How the product may use threads: `Serial` inside a parallel task, `Pool` for a product
/// large enough to split over the current rayon pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Threads {
    Serial,
    Pool,
}

/// A row-major-or-strided operand: values and `(row stride, column stride)`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Operand<'a> {
    pub(crate) values: &'a [f32],
    pub(crate) strides: (usize, usize),
}

impl<'a> Operand<'a> {
    /// A row-major matrix with `cols` columns.
    pub(crate) fn rows(values: &'a [f32], cols: usize) -> Operand<'a> {
        Operand {
            values,
            strides: (cols, 1),
        }
    }

    /// The transpose of a row-major matrix with `cols` columns.
    pub(crate) fn transposed(values: &'a [f32], cols: usize) -> Operand<'a> {
        Operand {
            values,
            strides: (1, cols),
        }
    }

    fn max_index(&self, rows: usize, cols: usize) -> usize {
        (rows - 1) * self.strides.0 + (cols - 1) * self.strides.1
    }
}

/// `dst (m × n, row-major) = [dst +] lhs (m × k) · rhs (k × n)`.
///
/// Panics if an operand is too small for the dimensions (a bug in the caller).
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul(
    simd: Simd,
    threads: Threads,
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    accumulate: bool,
    lhs: Operand<'_>,
    rhs: Operand<'_>,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            dst[..m * n].fill(0.0);
        }
        return;
    }
    assert!(dst.len() >= m * n, "matmul: destination too small");
    assert!(
        lhs.values.len() > lhs.max_index(m, k),
        "matmul: left operand too small"
    );
    assert!(
        rhs.values.len() > rhs.max_index(k, n),
        "matmul: right operand too small"
    );
    let parallelism = match threads {
        Threads::Serial => gemm::Parallelism::None,
        // 0: as many threads as the current rayon pool has (the engine's pool inside a step).
        Threads::Pool => gemm::Parallelism::Rayon(0),
    };
    // SAFETY: the asserts above keep every index computed from these dimensions and strides
    // inside the three slices, and `dst` does not overlap the (shared) operands.
    unsafe {
        raw(
            simd,
            m,
            n,
            k,
            dst.as_mut_ptr(),
            accumulate,
            lhs,
            rhs,
            parallelism,
        );
    }
}

/// # Safety
/// Every element addressed by the dimensions and strides must lie inside the slices.
#[allow(clippy::too_many_arguments)]
unsafe fn raw(
    simd: Simd,
    m: usize,
    n: usize,
    k: usize,
    dst: *mut f32,
    accumulate: bool,
    lhs: Operand<'_>,
    rhs: Operand<'_>,
    parallelism: gemm::Parallelism,
) {
    let (dst_cs, dst_rs) = (1isize, n as isize);
    let (lhs_cs, lhs_rs) = (lhs.strides.1 as isize, lhs.strides.0 as isize);
    let (rhs_cs, rhs_rs) = (rhs.strides.1 as isize, rhs.strides.0 as isize);
    #[cfg(target_arch = "x86_64")]
    if simd.level() == SimdLevel::Avx2 {
        use gemm_common::simd::MixedSimd;
        use gemm_f32::microkernel::fma::f32 as kernels;
        const LANES: usize = 8;
        // SAFETY: the level is only Avx2 on a CPU with AVX2 and FMA, which `try_new` checks
        // again; the caller guarantees the memory.
        if let Some(v3) = <gemm_common::simd::V3 as MixedSimd<f32, f32, f32, f32>>::try_new() {
            unsafe {
                gemm_common::gemm::gemm_basic_generic::<
                    gemm_common::simd::V3,
                    f32,
                    LANES,
                    { kernels::MR_DIV_N * LANES },
                    { kernels::NR },
                    { kernels::MR_DIV_N },
                    { kernels::H_M },
                    { kernels::H_N },
                >(
                    v3,
                    m,
                    n,
                    k,
                    dst,
                    dst_cs,
                    dst_rs,
                    accumulate,
                    lhs.values.as_ptr(),
                    lhs_cs,
                    lhs_rs,
                    rhs.values.as_ptr(),
                    rhs_cs,
                    rhs_rs,
                    1.0,
                    1.0,
                    false,
                    false,
                    false,
                    |a, b, c| a * b + c,
                    &kernels::UKR,
                    &kernels::H_UKR,
                    false,
                    parallelism,
                );
            }
            return;
        }
    }
    let _ = simd;
    // SAFETY: as above; gemm picks the widest kernels the CPU has.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            dst_cs,
            dst_rs,
            accumulate,
            lhs.values.as_ptr(),
            lhs_cs,
            lhs_rs,
            rhs.values.as_ptr(),
            rhs_cs,
            rhs_rs,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// GFLOP/s of the fastest of `repeats` `size × size × size` products at `simd`, split over
/// the current rayon pool (a multiply-add counts as two operations).
pub(crate) fn peak_gflops(simd: Simd, size: usize, repeats: usize) -> f64 {
    let a: Vec<f32> = (0..size * size).map(|i| (i % 7) as f32 * 0.25).collect();
    let b: Vec<f32> = (0..size * size).map(|i| (i % 5) as f32 * 0.5).collect();
    let mut c = vec![0.0f32; size * size];
    let mut best = f64::INFINITY;
    for _ in 0..repeats.max(1) {
        let start = std::time::Instant::now();
        matmul(
            simd,
            Threads::Pool,
            size,
            size,
            size,
            &mut c,
            false,
            Operand::rows(&a, size),
            Operand::rows(&b, size),
        );
        best = best.min(start.elapsed().as_secs_f64());
    }
    2.0 * (size as f64).powi(3) / best / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, n: usize, k: usize, a: &[f32], b: &[f32]) -> Vec<f32> {
        let mut c = vec![0.0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        c
    }

    #[test]
    fn products_agree_at_every_level_with_and_without_accumulation() {
        let (m, n, k) = (19, 37, 23);
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7) % 11) as f32 - 5.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 5) % 13) as f32 * 0.25).collect();
        let expected = naive(m, n, k, &a, &b);
        // bᵀ stored row-major (n × k), read through transposed strides.
        let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
        for level in [SimdLevel::Baseline, SimdLevel::Avx2, SimdLevel::Avx512] {
            let simd = Simd::limited_to(level);
            for threads in [Threads::Serial, Threads::Pool] {
                let mut c = vec![0.0f32; m * n];
                let rhs = Operand::transposed(&bt, k);
                matmul(
                    simd,
                    threads,
                    m,
                    n,
                    k,
                    &mut c,
                    false,
                    Operand::rows(&a, k),
                    rhs,
                );
                assert_eq!(c, expected, "{level} {threads:?}");
                matmul(
                    simd,
                    threads,
                    m,
                    n,
                    k,
                    &mut c,
                    true,
                    Operand::rows(&a, k),
                    rhs,
                );
                let doubled: Vec<f32> = expected.iter().map(|v| 2.0 * v).collect();
                assert_eq!(c, doubled, "{level} {threads:?} accumulated");
            }
        }
    }
}
