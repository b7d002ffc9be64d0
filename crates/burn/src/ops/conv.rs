//! 2-D convolution with stride 1, no dilation and one group.
//!
//! Two algorithms. With one input channel (the first layer, on the images) the convolution is
//! computed directly: each output row is the bias plus `KH·KW` shifted rows of the padded
//! image, each scaled by one weight, and the weight gradient accumulates the same products
//! elementwise per tap — no unfolded matrix, whose product would have only `Cout` (3) rows
//! and `KH·KW` (9) columns. Otherwise each group of samples is unfolded (im2col) and
//! multiplied by the weights with `gemm`.

use burn::backend::Flex;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::tensor::Tensor;
use rayon::prelude::*;

use super::gemm::{Operand, Threads, matmul};
use super::simd::{Simd, multiversion};
use super::{Ad, contiguous, flex, tracked, values};

/// Output positions one matrix product should cover at least: samples are grouped until their
/// output planes reach this many columns, so small late feature maps still make products of
/// a useful size.
const MIN_GEMM_COLUMNS: usize = 256;

/// Samples per parallel task in the direct (one input channel) algorithm.
const DIRECT_SAMPLES_PER_TASK: usize = 8;

/// Geometry of a convolution with stride 1, no dilation and one group.
#[derive(Clone, Copy, Debug)]
struct ConvShape {
    n: usize,
    ci: usize,
    h: usize,
    w: usize,
    co: usize,
    kh: usize,
    kw: usize,
    pad: usize,
    ho: usize,
    wo: usize,
}

impl ConvShape {
    /// Rows of the unfolded input (`Cin·KH·KW`).
    fn k(&self) -> usize {
        self.ci * self.kh * self.kw
    }
    /// Output positions per sample.
    fn s(&self) -> usize {
        self.ho * self.wo
    }
    /// Samples per matrix product.
    fn group(&self) -> usize {
        MIN_GEMM_COLUMNS
            .div_ceil(self.s().max(1))
            .clamp(1, self.n.max(1))
    }
    /// Width of a padded input plane.
    fn padded_w(&self) -> usize {
        self.w + 2 * self.pad
    }
    /// Values of a padded input plane.
    fn padded_plane(&self) -> usize {
        (self.h + 2 * self.pad) * self.padded_w()
    }
    /// True where the direct algorithm applies.
    fn direct(&self) -> bool {
        self.ci == 1
    }
}

/// 2-D convolution with stride 1, no dilation, one group and `pad` zeros on every side, as
/// Burn's `Conv2d` computes it: `y[n, o] = b[o] + Σ w[o, i, ky, kx] · x[n, i, y + ky − pad, …]`.
///
/// The backward pass computes the weight gradient as `dy · colsᵀ` and the input gradient as
/// `wᵀ · dy` folded back (col2im), group by group (directly for one input channel when the
/// input needs no gradient). Burn's generic backward pass instead runs the weight gradient as
/// a convolution whose kernel is the whole output gradient and the input gradient as a
/// transposed convolution, which on flex copies and transposes the activations several times.
/// `None` when `x` or the weights are not f32 tensors on flex.
pub(crate) fn conv2d(
    simd: Simd,
    x: &Tensor<4>,
    weight: Tensor<4>,
    bias: Tensor<1>,
    pad: usize,
) -> Option<Tensor<4>> {
    let [n, ci, h, w] = x.dims();
    let [co, wci, kh, kw] = weight.dims();
    if wci != ci || h + 2 * pad < kh || w + 2 * pad < kw || bias.dims() != [co] {
        return None;
    }
    let shape = ConvShape {
        n,
        ci,
        h,
        w,
        co,
        kh,
        kw,
        pad,
        ho: h + 2 * pad + 1 - kh,
        wo: w + 2 * pad + 1 - kw,
    };
    let out_dims = vec![n, co, shape.ho, shape.wo];
    if x.device().is_autodiff() {
        let (xn, xf) = tracked(x.clone())?;
        let (wn, wf) = tracked(weight)?;
        let (bn, bf) = tracked(bias)?;
        let nodes = [xn, wn, bn];
        let y = flex(
            conv_forward(simd, values(&xf), values(&wf), values(&bf), shape),
            out_dims,
        );
        let out = match ConvBackward
            .prepare::<NoCheckpointing>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(
                ConvState {
                    simd,
                    x: xf,
                    weight: wf,
                    shape,
                },
                y,
            ),
            OpsKind::UnTracked(prep) => prep.finish(y),
        };
        Some(Tensor::from_primitive::<Ad>(out))
    } else {
        let xf = contiguous(x.clone().try_into_primitive::<Flex>().ok()?)?;
        let wf = contiguous(weight.try_into_primitive::<Flex>().ok()?)?;
        let bf = contiguous(bias.try_into_primitive::<Flex>().ok()?)?;
        let y = conv_forward(simd, values(&xf), values(&wf), values(&bf), shape);
        Some(Tensor::from_primitive::<Flex>(flex(y, out_dims)))
    }
}

fn conv_forward(simd: Simd, x: &[f32], weight: &[f32], bias: &[f32], sh: ConvShape) -> Vec<f32> {
    let s = sh.s();
    let mut y = vec![0.0f32; sh.n * sh.co * s];
    if y.is_empty() {
        return y;
    }
    if sh.direct() {
        let plane = sh.h * sh.w;
        y.par_chunks_mut(DIRECT_SAMPLES_PER_TASK * sh.co * s)
            .enumerate()
            .for_each_init(
                || vec![0.0f32; sh.padded_buffer()],
                |padded, (t, out)| {
                    let first = t * DIRECT_SAMPLES_PER_TASK;
                    for (i, o) in out.chunks_exact_mut(sh.co * s).enumerate() {
                        pad_plane(padded, &x[(first + i) * plane..][..plane], sh);
                        direct_sample(simd, o, padded, weight, bias, sh);
                    }
                },
            );
        return y;
    }
    let (k, g) = (sh.k(), sh.group());
    let per_task = groups_per_task(sh.n.div_ceil(g));
    y.par_chunks_mut(per_task * g * sh.co * s)
        .enumerate()
        .for_each(|(t, task)| {
            // One scratch pair per task, reused by its groups.
            let mut cols = vec![0.0f32; k * g * s];
            let mut prod = vec![0.0f32; sh.co * g * s];
            for (j, out) in task.chunks_mut(g * sh.co * s).enumerate() {
                let count = out.len() / (sh.co * s);
                let width = count * s;
                im2col(x, sh, (t * per_task + j) * g, count, &mut cols[..k * width]);
                let (lhs, rhs) = (
                    Operand::rows(weight, k),
                    Operand::rows(&cols[..k * width], width),
                );
                if count == 1 {
                    // One sample: the product's layout (Cout × S) is the output's; start from
                    // the bias and accumulate into it.
                    for (o, &b) in out.chunks_exact_mut(s).zip(bias) {
                        o.fill(b);
                    }
                    matmul(simd, Threads::Serial, sh.co, width, k, out, true, lhs, rhs);
                    continue;
                }
                let prod = &mut prod[..sh.co * width];
                matmul(
                    simd,
                    Threads::Serial,
                    sh.co,
                    width,
                    k,
                    prod,
                    false,
                    lhs,
                    rhs,
                );
                for (j, o) in out.chunks_exact_mut(s).enumerate() {
                    let (gi, c) = (j / sh.co, j % sh.co);
                    add_bias(simd, o, &prod[c * width + gi * s..][..s], bias[c]);
                }
            }
        });
    y
}

/// Sample groups per parallel task: enough tasks for the pool to balance (four per thread),
/// few enough that each task's scratch buffers are reused by many groups.
fn groups_per_task(groups: usize) -> usize {
    groups.div_ceil(4 * rayon::current_num_threads()).max(1)
}

multiversion! {
    /// `out = src + b`.
    fn add_bias(out: &mut [f32], src: &[f32], b: f32) {
        for (o, &v) in out.iter_mut().zip(src) {
            *o = v + b;
        }
    }
}

/// Output columns one register block of the direct kernels covers (one AVX-512 vector, two
/// AVX2 ones).
const BLOCK: usize = 16;

impl ConvShape {
    /// Values of the padded-plane buffer: the plane, plus room for a block read past its end.
    fn padded_buffer(&self) -> usize {
        self.padded_plane() + BLOCK
    }
    /// Row stride of an output-gradient plane widened to whole blocks.
    fn blocked_wo(&self) -> usize {
        self.wo.div_ceil(BLOCK) * BLOCK
    }
}

/// Copies a single-channel input plane into the middle of a zero-bordered one.
fn pad_plane(padded: &mut [f32], x: &[f32], sh: ConvShape) {
    let pw = sh.padded_w();
    if sh.pad > 0 {
        padded.fill(0.0);
    }
    for (iy, row) in x.chunks_exact(sh.w).enumerate() {
        padded[(iy + sh.pad) * pw + sh.pad..][..sh.w].copy_from_slice(row);
    }
}

multiversion! {
    /// One sample of a single-input-channel convolution from its padded plane: each block of
    /// an output row is summed in registers over the `KH·KW` shifted input rows, each scaled by
    /// its weight, then stored.
    fn direct_sample(out: &mut [f32], padded: &[f32], weight: &[f32], bias: &[f32], sh: ConvShape) {
        let (s, wo, pw) = (sh.s(), sh.wo, sh.padded_w());
        let taps = sh.kh * sh.kw;
        for ((plane, w), &b) in out.chunks_exact_mut(s).zip(weight.chunks_exact(taps)).zip(bias) {
            for (oy, row) in plane.chunks_exact_mut(wo).enumerate() {
                for c0 in (0..wo).step_by(BLOCK) {
                    let mut acc = [b; BLOCK];
                    for ky in 0..sh.kh {
                        for kx in 0..sh.kw {
                            let wv = w[ky * sh.kw + kx];
                            // Reads up to BLOCK − 1 values past the row: the buffer has room,
                            // and those lanes are not stored.
                            let src = &padded[(oy + ky) * pw + c0 + kx..][..BLOCK];
                            for l in 0..BLOCK {
                                acc[l] += wv * src[l];
                            }
                        }
                    }
                    let n = BLOCK.min(wo - c0);
                    row[c0..c0 + n].copy_from_slice(&acc[..n]);
                }
            }
        }
    }
}

multiversion! {
    /// One sample's contribution to a single-input-channel convolution's weight gradient,
    /// `dw[o, ky, kx] += Σ dy[o, oy, ox] · padded[oy + ky, ox + kx]`, and its bias gradient,
    /// `db[o] += Σ dy[o]`. `dy` is the sample's output gradient with rows widened to whole
    /// blocks (zeros past `wo`), so every block sums whole vectors in registers.
    fn direct_weight_grad(
        dw: &mut [f64],
        db: &mut [f64],
        dy: &[f32],
        padded: &[f32],
        sh: ConvShape,
    ) {
        let (bw, pw) = (sh.blocked_wo(), sh.padded_w());
        let taps = sh.kh * sh.kw;
        for ((plane, dwo), db) in dy.chunks_exact(sh.ho * bw).zip(dw.chunks_exact_mut(taps)).zip(db) {
            let mut sum = [0.0f32; BLOCK];
            for row in plane.chunks_exact(BLOCK) {
                for l in 0..BLOCK {
                    sum[l] += row[l];
                }
            }
            *db += sum.iter().map(|&v| v as f64).sum::<f64>();
            for ky in 0..sh.kh {
                for kx in 0..sh.kw {
                    let mut acc = [0.0f32; BLOCK];
                    for c0 in (0..bw).step_by(BLOCK) {
                        for oy in 0..sh.ho {
                            let d = &plane[oy * bw + c0..][..BLOCK];
                            let src = &padded[(oy + ky) * pw + c0 + kx..][..BLOCK];
                            for l in 0..BLOCK {
                                acc[l] += d[l] * src[l];
                            }
                        }
                    }
                    dwo[ky * sh.kw + kx] += acc.iter().map(|&v| v as f64).sum::<f64>();
                }
            }
        }
    }
}

/// Copies one sample's output gradient (`Cout × HO × WO`) into rows of `blocked_wo` values,
/// zero past `wo`.
fn widen_rows(dst: &mut [f32], dy: &[f32], sh: ConvShape) {
    let bw = sh.blocked_wo();
    for (d, s) in dst.chunks_exact_mut(bw).zip(dy.chunks_exact(sh.wo)) {
        d[..sh.wo].copy_from_slice(s);
    }
}

/// Unfolds samples `first..first + count` of `x` into `cols` (`K × count·S`, row-major): row
/// `(i, ky, kx)` holds, for each output position, the input value the kernel tap `(ky, kx)` of
/// channel `i` sees there (zero in the padding).
fn im2col(x: &[f32], sh: ConvShape, first: usize, count: usize, cols: &mut [f32]) {
    let (s, width) = (sh.s(), count * sh.s());
    let plane = sh.h * sh.w;
    for i in 0..sh.ci {
        for ky in 0..sh.kh {
            for kx in 0..sh.kw {
                let row = &mut cols[((i * sh.kh + ky) * sh.kw + kx) * width..][..width];
                // Output columns whose input column ox + kx − pad lies inside the image.
                let lo = sh.pad.saturating_sub(kx).min(sh.wo);
                let hi = (sh.w + sh.pad).saturating_sub(kx).clamp(lo, sh.wo);
                for g in 0..count {
                    let src = &x[((first + g) * sh.ci + i) * plane..][..plane];
                    for oy in 0..sh.ho {
                        let dst = &mut row[g * s + oy * sh.wo..][..sh.wo];
                        let iy = (oy + ky).wrapping_sub(sh.pad);
                        if iy >= sh.h {
                            dst.fill(0.0);
                            continue;
                        }
                        dst[..lo].fill(0.0);
                        dst[hi..].fill(0.0);
                        if hi > lo {
                            let start = iy * sh.w + lo + kx - sh.pad;
                            dst[lo..hi].copy_from_slice(&src[start..start + (hi - lo)]);
                        }
                    }
                }
            }
        }
    }
}

multiversion! {
    /// The inverse scatter of [`im2col`]: adds each column entry back onto the input position
    /// it was read from, for samples `0..count` of `dx` (already offset to the group's first
    /// sample).
    fn col2im(cols: &[f32], sh: ConvShape, count: usize, dx: &mut [f32]) {
        let (s, width) = (sh.s(), count * sh.s());
        let plane = sh.h * sh.w;
        for i in 0..sh.ci {
            for ky in 0..sh.kh {
                for kx in 0..sh.kw {
                    let row = &cols[((i * sh.kh + ky) * sh.kw + kx) * width..][..width];
                    let lo = sh.pad.saturating_sub(kx).min(sh.wo);
                    let hi = (sh.w + sh.pad).saturating_sub(kx).clamp(lo, sh.wo);
                    for g in 0..count {
                        let dst = &mut dx[(g * sh.ci + i) * plane..][..plane];
                        for oy in 0..sh.ho {
                            let iy = (oy + ky).wrapping_sub(sh.pad);
                            if iy >= sh.h || hi == lo {
                                continue;
                            }
                            let src = &row[g * s + oy * sh.wo..][lo..hi];
                            let start = iy * sh.w + lo + kx - sh.pad;
                            for (d, v) in dst[start..start + (hi - lo)].iter_mut().zip(src) {
                                *d += v;
                            }
                        }
                    }
                }
            }
        }
    }
}

#[derive(Clone, Debug)]
struct ConvState {
    simd: Simd,
    x: FlexTensor,
    weight: FlexTensor,
    shape: ConvShape,
}

#[derive(Debug)]
struct ConvBackward;

/// Per-task accumulators of the backward pass: weight and bias gradients, and scratch space.
struct ConvScratch {
    dw: Vec<f32>,
    db: Vec<f64>,
    cols: Vec<f32>,
    dyb: Vec<f32>,
}

impl Backward<Flex, 3> for ConvBackward {
    type State = ConvState;

    fn backward(self, ops: Ops<ConvState, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w, node_b] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let sh = ops.state.shape;
        let simd = ops.state.simd;
        let grad = contiguous(grad).unwrap_or_else(|| panic!("conv: f32 gradient"));
        let (dy, x) = (values(&grad), values(&ops.state.x));
        let (dw, db, dx) = if sh.direct() && node_x.is_none() {
            let (dw, db) = direct_backward(simd, dy, x, sh);
            (dw, db, Vec::new())
        } else {
            unfolded_backward(simd, dy, x, values(&ops.state.weight), sh, node_x.is_some())
        };
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, flex(dx, vec![sh.n, sh.ci, sh.h, sh.w]));
        }
        if let Some(node) = node_w {
            grads.register::<Flex>(node.id, flex(dw, vec![sh.co, sh.ci, sh.kh, sh.kw]));
        }
        if let Some(node) = node_b {
            let db = db.iter().map(|&v| v as f32).collect();
            grads.register::<Flex>(node.id, flex(db, vec![sh.co]));
        }
    }
}

/// Weight and bias gradients of a single-input-channel convolution whose input needs none.
fn direct_backward(simd: Simd, dy: &[f32], x: &[f32], sh: ConvShape) -> (Vec<f32>, Vec<f64>) {
    let (s, plane, taps) = (sh.s(), sh.h * sh.w, sh.kh * sh.kw);
    // Per task: the weight and bias gradients so far (f64), the padded input plane and the
    // widened output gradient (its padding columns stay zero).
    type Acc = (Vec<f64>, Vec<f64>, Vec<f32>, Vec<f32>);
    let init = || -> Acc {
        (
            vec![0.0; sh.co * taps],
            vec![0.0; sh.co],
            vec![0.0; sh.padded_buffer()],
            vec![0.0; sh.co * sh.ho * sh.blocked_wo()],
        )
    };
    let (dw, db) = (0..sh.n)
        .into_par_iter()
        .with_min_len(DIRECT_SAMPLES_PER_TASK)
        .fold(init, |(mut dw, mut db, mut padded, mut wide), i| {
            pad_plane(&mut padded, &x[i * plane..][..plane], sh);
            widen_rows(&mut wide, &dy[i * sh.co * s..][..sh.co * s], sh);
            direct_weight_grad(simd, &mut dw, &mut db, &wide, &padded, sh);
            (dw, db, padded, wide)
        })
        .map(|(dw, db, _, _)| (dw, db))
        .reduce(
            || (vec![0.0; sh.co * taps], vec![0.0; sh.co]),
            |(mut dw, mut db), (dw2, db2)| {
                dw.iter_mut().zip(&dw2).for_each(|(x, y)| *x += y);
                db.iter_mut().zip(&db2).for_each(|(x, y)| *x += y);
                (dw, db)
            },
        );
    (dw.iter().map(|&v| v as f32).collect(), db)
}

/// Weight, bias and (if `want_dx`) input gradients through unfolded sample groups.
fn unfolded_backward(
    simd: Simd,
    dy: &[f32],
    x: &[f32],
    weight: &[f32],
    sh: ConvShape,
    want_dx: bool,
) -> (Vec<f32>, Vec<f64>, Vec<f32>) {
    let (k, s, g) = (sh.k(), sh.s(), sh.group());
    let groups = sh.n.div_ceil(g);
    let scratch = || ConvScratch {
        dw: vec![0.0; sh.co * k],
        db: vec![0.0; sh.co],
        cols: vec![0.0; k * g * s],
        dyb: vec![0.0; if g > 1 { sh.co * g * s } else { 0 }],
    };
    // One group: its output gradient as `Cout × count·S` (the sample's own slice for a group
    // of one, gathered otherwise), the weight and bias gradients accumulated, and (if asked)
    // its input gradient written into `dx`.
    let run = |acc: &mut ConvScratch, t: usize, dx: Option<&mut [f32]>| {
        let first = t * g;
        let count = g.min(sh.n - first);
        let width = count * s;
        for gi in 0..count {
            for c in 0..sh.co {
                let src = &dy[((first + gi) * sh.co + c) * s..][..s];
                if count > 1 {
                    acc.dyb[c * width + gi * s..][..s].copy_from_slice(src);
                }
                acc.db[c] += sum(simd, src);
            }
        }
        let dyb = if count > 1 {
            &acc.dyb[..sh.co * width]
        } else {
            &dy[first * sh.co * s..][..sh.co * s]
        };
        im2col(x, sh, first, count, &mut acc.cols[..k * width]);
        // dW (Cout × K) += dy (Cout × width) · colsᵀ (width × K).
        matmul(
            simd,
            Threads::Serial,
            sh.co,
            k,
            width,
            &mut acc.dw,
            true,
            Operand::rows(dyb, width),
            Operand::transposed(&acc.cols[..k * width], width),
        );
        if let Some(dx) = dx {
            // dcols (K × width) = wᵀ (K × Cout) · dy (Cout × width), reusing `cols`.
            matmul(
                simd,
                Threads::Serial,
                k,
                width,
                sh.co,
                &mut acc.cols[..k * width],
                false,
                Operand::transposed(weight, k),
                Operand::rows(dyb, width),
            );
            col2im(simd, &acc.cols[..k * width], sh, count, dx);
        }
    };
    // The reduction's identity: gradients only, no scratch space.
    let zero = || ConvScratch {
        dw: vec![0.0; sh.co * k],
        db: vec![0.0; sh.co],
        cols: Vec::new(),
        dyb: Vec::new(),
    };
    let merge = |mut a: ConvScratch, b: ConvScratch| {
        a.dw.iter_mut().zip(&b.dw).for_each(|(x, y)| *x += y);
        a.db.iter_mut().zip(&b.db).for_each(|(x, y)| *x += y);
        a
    };
    let sample = sh.ci * sh.h * sh.w;
    let per_task = groups_per_task(groups);
    let tasks = groups.div_ceil(per_task);
    let mut dx = vec![0.0f32; if want_dx { sh.n * sample } else { 0 }];
    let total = if want_dx && sample > 0 {
        dx.par_chunks_mut(per_task * g * sample)
            .enumerate()
            .map(|(t, d)| {
                let mut acc = scratch();
                for (j, d) in d.chunks_mut(g * sample).enumerate() {
                    run(&mut acc, t * per_task + j, Some(d));
                }
                acc
            })
            .reduce(zero, merge)
    } else {
        (0..tasks)
            .into_par_iter()
            .map(|t| {
                let mut acc = scratch();
                for group in t * per_task..((t + 1) * per_task).min(groups) {
                    run(&mut acc, group, None);
                }
                acc
            })
            .reduce(zero, merge)
    };
    (total.dw, total.db, dx)
}

multiversion! {
    /// `Σ v` in f32 lanes, combined in f64.
    fn sum(v: &[f32]) -> f64 {
        let mut lanes = [0.0f32; 16];
        let chunks = v.chunks_exact(16);
        let rest = chunks.remainder();
        for c in chunks {
            for l in 0..16 {
                lanes[l] += c[l];
            }
        }
        lanes.iter().chain(rest).map(|&v| v as f64).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SimdLevel;
    use crate::ops::tests::{assert_close, grad_of, vec_of};
    use burn::tensor::{Device, TensorData};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Our convolution against Burn's `Conv2d`, at every instruction set level up to the
    /// detected one; `input_grad` says whether the input tracks a gradient (the first layer's
    /// images do not, which selects the direct weight gradient for one input channel).
    fn check_conv(
        n: usize,
        ci: usize,
        co: usize,
        hw: [usize; 2],
        kernel: [usize; 2],
        pad: usize,
        input_grad: bool,
    ) {
        use burn::nn::PaddingConfig2d;
        use burn::nn::conv::Conv2dConfig;
        let device = Device::flex().autodiff();
        let mut rng = ChaCha8Rng::seed_from_u64((n * 131 + ci * 17 + co) as u64);
        let dims = [n, ci, hw[0], hw[1]];
        let values: Vec<f32> = (0..dims.iter().product::<usize>())
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let input = || {
            let t = Tensor::<4>::from_data(TensorData::new(values.clone(), dims), &device);
            if input_grad { t.require_grad() } else { t }
        };
        for level in [SimdLevel::Baseline, SimdLevel::Avx2, SimdLevel::Avx512] {
            let simd = Simd::limited_to(level);
            let what = |part: &str| format!("{part} ({level}, {dims:?}, input grad {input_grad})");
            let conv = Conv2dConfig::new([ci, co], kernel)
                .with_padding(PaddingConfig2d::Explicit(pad, pad, pad, pad))
                .init(&device);
            let theirs_conv = conv.clone();
            let bias = conv
                .bias
                .as_ref()
                .map(|b| b.val())
                .unwrap_or_else(|| panic!("bias"));
            let (x1, x2) = (input(), input());
            let ours = conv2d(simd, &x1, conv.weight.val(), bias, pad)
                .unwrap_or_else(|| panic!("flex autodiff tensors"));
            let theirs = theirs_conv.forward(x2.clone());
            assert_eq!(ours.dims(), theirs.dims());
            assert_close(
                &vec_of(ours.clone()),
                &vec_of(theirs.clone()),
                &what("output"),
            );
            let weights = Tensor::<4>::from_data(
                TensorData::new(
                    (0..theirs.dims().iter().product::<usize>())
                        .map(|i| (i % 5) as f32 - 2.0)
                        .collect::<Vec<_>>(),
                    theirs.dims(),
                ),
                &device,
            );
            let g1 = (ours * weights.clone()).sum().backward();
            let g2 = (theirs * weights).sum().backward();
            if input_grad {
                assert_close(
                    &grad_of(&x1, &g1),
                    &grad_of(&x2, &g2),
                    &what("input gradient"),
                );
            } else {
                assert!(x1.grad(&g1).is_none(), "{}", what("no input gradient"));
            }
            assert_close(
                &grad_of(&conv.weight.val(), &g1),
                &grad_of(&theirs_conv.weight.val(), &g2),
                &what("weight gradient"),
            );
            let b = |c: &burn::nn::conv::Conv2d, g: &burn::tensor::Gradients| {
                grad_of(
                    &c.bias
                        .as_ref()
                        .map(|b| b.val())
                        .unwrap_or_else(|| panic!("bias")),
                    g,
                )
            };
            assert_close(
                &b(&conv, &g1),
                &b(&theirs_conv, &g2),
                &what("bias gradient"),
            );
        }
    }

    #[test]
    fn convolution_matches_burns_in_values_and_gradients() {
        // The paper's 3×3 / padding 1 layers, down to a 3×3 map, with sample groups that do
        // not divide the batch; then no padding, a wider kernel and non-square images.
        check_conv(3, 1, 3, [8, 8], [3, 3], 1, true);
        check_conv(37, 3, 5, [3, 3], [3, 3], 1, true);
        check_conv(5, 2, 4, [7, 7], [3, 3], 1, true);
        check_conv(2, 3, 2, [6, 9], [3, 3], 0, true);
        check_conv(2, 2, 3, [5, 8], [5, 3], 2, true);
        // Planes of 256 positions or more: one sample per product.
        check_conv(3, 2, 3, [16, 17], [3, 3], 1, true);
    }

    #[test]
    fn single_channel_convolution_of_images_matches_burns() {
        // The first layer: one input channel, no gradient for the images (the direct weight
        // gradient), more samples than one task takes; then other kernels and paddings.
        check_conv(19, 1, 3, [28, 28], [3, 3], 1, false);
        check_conv(3, 1, 2, [6, 9], [3, 3], 0, false);
        check_conv(2, 1, 4, [5, 8], [5, 3], 2, false);
        check_conv(9, 1, 3, [7, 7], [3, 3], 1, true);
    }
}
