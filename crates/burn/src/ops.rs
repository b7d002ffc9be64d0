//! Hand-written kernels for the layers where Burn's generic composition costs the most on the
//! flex CPU backend: convolution with stride 1, batch normalisation in training mode and 2×2
//! max pooling with stride 2.
//!
//! Each is an autodiff operation of its own on `Autodiff<Flex>`: the forward pass runs over
//! contiguous memory and keeps only what its backward pass needs (the input and weights; the
//! input and a few numbers per channel; the window position of each maximum as one byte), and
//! the backward pass is one or two more loops. Burn builds the same layers from generic tensor
//! operations, each a full pass over the activation with its own allocation, keeps every
//! intermediate alive for its own backward pass, and computes a convolution's weight gradient
//! as a convolution whose kernel is the whole output gradient (which flex unfolds into a buffer
//! many times the activation's size). Before these kernels, one SimpleCNN(4,7) step took
//! 158 ms in `greenlab profile` (2 threads); with them, 62 ms.
//!
//! They compute what Burn's `Conv2d`, `BatchNorm` (training) and `MaxPool2d` compute,
//! including ties and NaN in pooling windows and flooring of odd sizes; the tests at the bottom
//! compare outputs and gradients with Burn's modules. Only the order of floating-point
//! additions differs. A tensor that is not an f32 tensor on the flex backend is handed back
//! unchanged so the caller can use Burn's module.

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, NodeGuard, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::tensor::{DType, Tensor, TensorData};
use rayon::prelude::*;

type Ad = Autodiff<Flex>;

/// Values per parallel task below which splitting further costs more than it saves.
const MIN_PLANE_ELEMS: usize = 4096;

/// The tensor's values as one contiguous `f32` slice (copying only if it is strided).
fn contiguous(t: FlexTensor) -> Option<FlexTensor> {
    if t.dtype() != DType::F32 {
        return None;
    }
    if t.as_slice::<f32>().is_some() {
        Some(t)
    } else {
        let t = t.to_contiguous();
        t.as_slice::<f32>().is_some().then_some(t)
    }
}

/// A tensor on autodiff flex taken apart: its node in the graph and its values as a contiguous
/// f32 tensor. `None` if it is not an f32 tensor on autodiff flex.
fn tracked<const D: usize>(t: Tensor<D>) -> Option<(NodeGuard, FlexTensor)> {
    let (primitive, node) = t.try_into_primitive::<Ad>().ok()?.into_parts();
    Some((node, contiguous(primitive)?))
}

fn values(t: &FlexTensor) -> &[f32] {
    // Only called on tensors that went through `contiguous`.
    t.as_slice::<f32>().unwrap_or(&[])
}

fn flex(values: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// How many planes one parallel task takes so it touches at least `MIN_PLANE_ELEMS` values.
fn planes_per_task(plane: usize) -> usize {
    MIN_PLANE_ELEMS.div_ceil(plane.max(1)).max(1)
}

// ---------------------------------------------------------------------------------------------
// Max pooling, 2×2 windows, stride 2.
// ---------------------------------------------------------------------------------------------

/// 2×2 max pooling with stride 2 and no padding, as Burn's `MaxPool2d` with kernel and stride 2
/// computes it (output `⌊H/2⌋ × ⌊W/2⌋`; the first maximum of a window in row-major order wins
/// ties; NaN wins over numbers). `None` if `x` is not an f32 tensor on flex.
pub(crate) fn max_pool_2x2(x: &Tensor<4>) -> Option<Tensor<4>> {
    let [n, c, h, w] = x.dims();
    if x.device().is_autodiff() {
        let (node, input) = tracked(x.clone())?;
        let out = match PoolBackward
            .prepare::<NoCheckpointing>([node])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => {
                let (out, arg) = pool_forward(values(&input), n * c, h, w, true);
                prep.finish(
                    PoolState {
                        arg: Arc::new(arg),
                        dims: [n, c, h, w],
                    },
                    flex(out, vec![n, c, h / 2, w / 2]),
                )
            }
            OpsKind::UnTracked(prep) => {
                let (out, _) = pool_forward(values(&input), n * c, h, w, false);
                prep.finish(flex(out, vec![n, c, h / 2, w / 2]))
            }
        };
        Some(Tensor::from_primitive::<Ad>(out))
    } else {
        let input = contiguous(x.clone().try_into_primitive::<Flex>().ok()?)?;
        let (out, _) = pool_forward(values(&input), n * c, h, w, false);
        Some(Tensor::from_primitive::<Flex>(flex(
            out,
            vec![n, c, h / 2, w / 2],
        )))
    }
}

/// What the pooling backward pass needs: each maximum's position in its window (0..4,
/// row-major) and the input's dimensions.
#[derive(Clone, Debug)]
struct PoolState {
    arg: Arc<Vec<u8>>,
    dims: [usize; 4],
}

#[derive(Debug)]
struct PoolBackward;

impl Backward<Flex, 1> for PoolBackward {
    type State = PoolState;

    fn backward(self, ops: Ops<PoolState, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [parent] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        if let Some(parent) = parent {
            let [n, c, h, w] = ops.state.dims;
            let grad = contiguous(grad).unwrap_or_else(|| panic!("max pool: f32 gradient"));
            let dx = pool_backward(values(&grad), &ops.state.arg, n * c, h, w);
            grads.register::<Flex>(parent.id, flex(dx, vec![n, c, h, w]));
        }
    }
}

/// Pools `planes` planes of `h × w`; returns the maxima and, if `with_arg`, their positions.
fn pool_forward(
    x: &[f32],
    planes: usize,
    h: usize,
    w: usize,
    with_arg: bool,
) -> (Vec<f32>, Vec<u8>) {
    let (ho, wo) = (h / 2, w / 2);
    let plane_out = ho * wo;
    let mut out = vec![0.0f32; planes * plane_out];
    let mut arg = vec![0u8; if with_arg { planes * plane_out } else { 0 }];
    if plane_out == 0 {
        return (out, arg);
    }
    let per_task = planes_per_task(h * w);
    let run = |p0: usize, out: &mut [f32], mut arg: Option<&mut [u8]>| {
        for (i, o) in out.chunks_exact_mut(plane_out).enumerate() {
            let src = &x[(p0 + i) * h * w..(p0 + i + 1) * h * w];
            for oy in 0..ho {
                let r0 = &src[2 * oy * w..2 * oy * w + 2 * wo];
                let r1 = &src[(2 * oy + 1) * w..(2 * oy + 1) * w + 2 * wo];
                let orow = &mut o[oy * wo..(oy + 1) * wo];
                for ox in 0..wo {
                    let cand = [r0[2 * ox], r0[2 * ox + 1], r1[2 * ox], r1[2 * ox + 1]];
                    let (mut best, mut k) = (cand[0], 0u8);
                    for (j, &v) in cand.iter().enumerate().skip(1) {
                        // Burn's rule: a larger value replaces, and so does any NaN.
                        if v > best || v.is_nan() {
                            best = v;
                            k = j as u8;
                        }
                    }
                    orow[ox] = best;
                    if let Some(a) = arg.as_deref_mut() {
                        a[i * plane_out + oy * wo + ox] = k;
                    }
                }
            }
        }
    };
    if with_arg {
        out.par_chunks_mut(per_task * plane_out)
            .zip(arg.par_chunks_mut(per_task * plane_out))
            .enumerate()
            .for_each(|(t, (o, a))| run(t * per_task, o, Some(a)));
    } else {
        out.par_chunks_mut(per_task * plane_out)
            .enumerate()
            .for_each(|(t, o)| run(t * per_task, o, None));
    }
    (out, arg)
}

/// Routes each output gradient to its window's maximum; every other input gets zero.
fn pool_backward(g: &[f32], arg: &[u8], planes: usize, h: usize, w: usize) -> Vec<f32> {
    let (ho, wo) = (h / 2, w / 2);
    let plane_out = ho * wo;
    let mut dx = vec![0.0f32; planes * h * w];
    if plane_out == 0 {
        return dx;
    }
    let per_task = planes_per_task(h * w);
    dx.par_chunks_mut(per_task * h * w)
        .enumerate()
        .for_each(|(t, d)| {
            for (i, plane) in d.chunks_exact_mut(h * w).enumerate() {
                let at = (t * per_task + i) * plane_out;
                let (g, a) = (&g[at..at + plane_out], &arg[at..at + plane_out]);
                for oy in 0..ho {
                    for ox in 0..wo {
                        let k = a[oy * wo + ox] as usize;
                        plane[(2 * oy + k / 2) * w + 2 * ox + k % 2] = g[oy * wo + ox];
                    }
                }
            }
        });
    dx
}

// ---------------------------------------------------------------------------------------------
// Batch normalisation (training), optionally followed by ReLU.
// ---------------------------------------------------------------------------------------------

/// The result of [`batch_norm`]: the output and the batch's per-channel mean and biased
/// variance (for the running statistics).
pub(crate) struct NormOutput {
    pub(crate) y: Tensor<4>,
    pub(crate) mean: Vec<f32>,
    pub(crate) variance: Vec<f32>,
}

/// Batch normalisation with batch statistics, `y = γ·(x − μ)/√(σ² + ε) + β` per channel, on
/// autodiff flex tensors. `gamma` and `beta` are `[C]`.
/// `None` if the inputs are not f32 tensors on autodiff flex.
pub(crate) fn batch_norm(
    x: &Tensor<4>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f64,
) -> Option<NormOutput> {
    let [n, c, h, w] = x.dims();
    let (xn, input) = tracked(x.clone())?;
    let (gn, g) = tracked(gamma)?;
    let (bn, b) = tracked(beta)?;
    let nodes = [xn, gn, bn];
    let (gv, bv) = (values(&g), values(&b));
    if gv.len() != c || bv.len() != c {
        return None;
    }
    let hw = h * w;
    let count = (n * hw).max(1) as f64;
    // Sums of (x − pivot) and its square, with one pivot per channel (an element of the
    // channel) so the variance does not come from the difference of two large numbers.
    let xs = values(&input);
    let pivot: Vec<f32> = (0..c)
        .map(|ch| xs.get(ch * hw).copied().unwrap_or(0.0))
        .collect();
    let sums = channel_sums(n, c, hw, |p, acc| {
        let (s, q) = shifted_sums(&xs[p * hw..(p + 1) * hw], pivot[p % c]);
        acc[0] += s;
        acc[1] += q;
    });
    let mut mean = Vec::with_capacity(c);
    let mut variance = Vec::with_capacity(c);
    let mut scale = Vec::with_capacity(c);
    let mut shift = Vec::with_capacity(c);
    let mut inv_std = Vec::with_capacity(c);
    for ch in 0..c {
        let shifted_mean = sums[ch][0] / count;
        let v = (sums[ch][1] / count - shifted_mean * shifted_mean).max(0.0);
        let m = shifted_mean + pivot[ch] as f64;
        let is = 1.0 / (v + epsilon).sqrt();
        mean.push(m as f32);
        variance.push(v as f32);
        inv_std.push(is as f32);
        scale.push((gv[ch] as f64 * is) as f32);
        shift.push((bv[ch] as f64 - m * gv[ch] as f64 * is) as f32);
    }
    let y = normalise(values(&input), c, hw, &scale, &shift);
    let y = flex(y, vec![n, c, h, w]);
    let state = NormState {
        x: input,
        dims: [n, c, h, w],
        mean: mean.clone(),
        inv_std,
        gamma: gv.to_vec(),
    };
    let out = match NormBackward
        .prepare::<NoCheckpointing>(nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(state, y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    Some(NormOutput {
        y: Tensor::from_primitive::<Ad>(out),
        mean,
        variance,
    })
}

/// Per-channel accumulators: `per_plane(p, acc)` adds plane `p`'s contribution (`p = n·C + c`)
/// to `acc`; planes run in parallel and are summed per channel in plane order.
fn channel_sums(
    n: usize,
    c: usize,
    hw: usize,
    per_plane: impl Fn(usize, &mut [f64; 2]) + Sync,
) -> Vec<[f64; 2]> {
    let per_task = planes_per_task(hw);
    let partial: Vec<[f64; 2]> = (0..n * c)
        .into_par_iter()
        .with_min_len(per_task)
        .map(|p| {
            let mut acc = [0.0; 2];
            per_plane(p, &mut acc);
            acc
        })
        .collect();
    let mut sums = vec![[0.0f64; 2]; c];
    for (p, acc) in partial.iter().enumerate() {
        sums[p % c][0] += acc[0];
        sums[p % c][1] += acc[1];
    }
    sums
}

/// Independent accumulators per loop, so the compiler can keep them in one vector register.
const LANES: usize = 8;

/// `Σ (v − pivot)` and `Σ (v − pivot)²` over a plane: f32 lanes, combined in f64.
fn shifted_sums(v: &[f32], pivot: f32) -> (f64, f64) {
    let (mut s, mut q) = ([0.0f32; LANES], [0.0f32; LANES]);
    let chunks = v.chunks_exact(LANES);
    let rest = chunks.remainder();
    for chunk in chunks {
        for l in 0..LANES {
            let d = chunk[l] - pivot;
            s[l] += d;
            q[l] += d * d;
        }
    }
    let (mut s, mut q) = (
        s.iter().map(|&v| v as f64).sum::<f64>(),
        q.iter().map(|&v| v as f64).sum::<f64>(),
    );
    for &v in rest {
        let d = (v - pivot) as f64;
        s += d;
        q += d * d;
    }
    (s, q)
}

/// `Σ dy` and `Σ dy·x̂` over a plane, where `x̂ = (x − mean)·inv_std`.
fn gradient_sums(dy: &[f32], x: &[f32], mean: f32, inv_std: f32) -> (f64, f64) {
    let (mut sd, mut sdx) = ([0.0f32; LANES], [0.0f32; LANES]);
    let term = |d: f32, x: f32| (d, d * ((x - mean) * inv_std));
    let (dc, xc) = (dy.chunks_exact(LANES), x.chunks_exact(LANES));
    let (dr, xr) = (dc.remainder(), xc.remainder());
    for (d, x) in dc.zip(xc) {
        for l in 0..LANES {
            let (u, v) = term(d[l], x[l]);
            sd[l] += u;
            sdx[l] += v;
        }
    }
    let (mut sd, mut sdx) = (
        sd.iter().map(|&v| v as f64).sum::<f64>(),
        sdx.iter().map(|&v| v as f64).sum::<f64>(),
    );
    for (&d, &x) in dr.iter().zip(xr) {
        let (u, v) = term(d, x);
        sd += u as f64;
        sdx += v as f64;
    }
    (sd, sdx)
}

/// `x·scale + shift` per channel.
fn normalise(x: &[f32], c: usize, hw: usize, scale: &[f32], shift: &[f32]) -> Vec<f32> {
    let mut y = vec![0.0f32; x.len()];
    if hw == 0 {
        return y;
    }
    let per_task = planes_per_task(hw);
    y.par_chunks_mut(per_task * hw)
        .enumerate()
        .for_each(|(t, out)| {
            for (i, o) in out.chunks_exact_mut(hw).enumerate() {
                let p = t * per_task + i;
                let (a, b) = (scale[p % c], shift[p % c]);
                let src = &x[p * hw..(p + 1) * hw];
                for (o, &v) in o.iter_mut().zip(src) {
                    *o = v * a + b;
                }
            }
        });
    y
}

/// What the batch-norm backward pass needs: the input and per-channel constants.
#[derive(Clone, Debug)]
struct NormState {
    x: FlexTensor,
    dims: [usize; 4],
    mean: Vec<f32>,
    inv_std: Vec<f32>,
    gamma: Vec<f32>,
}

#[derive(Debug)]
struct NormBackward;

impl Backward<Flex, 3> for NormBackward {
    type State = NormState;

    fn backward(self, ops: Ops<NormState, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let s = ops.state;
        let [n, c, h, w] = s.dims;
        let hw = h * w;
        let count = (n * hw).max(1) as f64;
        let grad = contiguous(grad).unwrap_or_else(|| panic!("batch norm: f32 gradient"));
        let (dy, x) = (values(&grad), values(&s.x));
        let sums = channel_sums(n, c, hw, |p, acc| {
            let ch = p % c;
            let (sd, sdx) = gradient_sums(
                &dy[p * hw..(p + 1) * hw],
                &x[p * hw..(p + 1) * hw],
                s.mean[ch],
                s.inv_std[ch],
            );
            acc[0] += sd;
            acc[1] += sdx;
        });
        if let Some(node) = node_gamma {
            let dg = sums.iter().map(|a| a[1] as f32).collect();
            grads.register::<Flex>(node.id, flex(dg, vec![c]));
        }
        if let Some(node) = node_beta {
            let db = sums.iter().map(|a| a[0] as f32).collect();
            grads.register::<Flex>(node.id, flex(db, vec![c]));
        }
        if let Some(node) = node_x {
            let mean_dy: Vec<f32> = sums.iter().map(|a| (a[0] / count) as f32).collect();
            let mean_dyx: Vec<f32> = sums.iter().map(|a| (a[1] / count) as f32).collect();
            let mut dx = vec![0.0f32; n * c * hw];
            if hw > 0 {
                let per_task = planes_per_task(hw);
                dx.par_chunks_mut(per_task * hw)
                    .enumerate()
                    .for_each(|(t, out)| {
                        for (i, o) in out.chunks_exact_mut(hw).enumerate() {
                            let p = t * per_task + i;
                            let ch = p % c;
                            let (m, is) = (s.mean[ch], s.inv_std[ch]);
                            let k = s.gamma[ch] * is;
                            let (md, mdx) = (mean_dy[ch], mean_dyx[ch]);
                            let (dyp, xp) = (&dy[p * hw..(p + 1) * hw], &x[p * hw..(p + 1) * hw]);
                            for ((o, &d), &x) in o.iter_mut().zip(dyp).zip(xp) {
                                *o = k * (d - md - (x - m) * is * mdx);
                            }
                        }
                    });
            }
            grads.register::<Flex>(node.id, flex(dx, vec![n, c, h, w]));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Convolution, stride 1, no dilation, one group.
// ---------------------------------------------------------------------------------------------

/// Output positions one matrix product should cover at least: samples are grouped until their
/// output planes reach this many columns, so small late feature maps still make products of
/// a useful size.
const MIN_GEMM_COLUMNS: usize = 256;

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
}

/// 2-D convolution with stride 1, no dilation, one group and `pad` zeros on every side, as
/// Burn's `Conv2d` computes it: `y[n, o] = b[o] + Σ w[o, i, ky, kx] · x[n, i, y + ky − pad, …]`.
///
/// Each group of samples is unfolded (im2col) into a `Cin·KH·KW × positions` matrix and
/// multiplied by the weights with `gemm`; the backward pass computes the weight gradient as
/// `dy · colsᵀ` and the input gradient as `wᵀ · dy` folded back (col2im), group by group.
/// Burn's generic backward pass instead runs the weight gradient as a convolution whose kernel
/// is the whole output gradient and the input gradient as a transposed convolution, which on
/// flex copies and transposes the activations several times. `None` when `x` or the weights
/// are not f32 tensors on flex.
pub(crate) fn conv2d(
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
            conv_forward(values(&xf), values(&wf), values(&bf), shape),
            out_dims,
        );
        let out = match ConvBackward
            .prepare::<NoCheckpointing>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(
                ConvState {
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
        let y = conv_forward(values(&xf), values(&wf), values(&bf), shape);
        Some(Tensor::from_primitive::<Flex>(flex(y, out_dims)))
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

/// The inverse scatter of [`im2col`]: adds each column entry back onto the input position it
/// was read from, for samples `0..count` of `dx` (already offset to the group's first sample).
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

/// `dst (m × n) = [dst +] lhs · rhs`, all row-major unless the strides say otherwise
/// (`(row stride, column stride)` per operand).
#[allow(clippy::too_many_arguments)]
fn matmul(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    accumulate: bool,
    lhs: &[f32],
    lhs_strides: (usize, usize),
    rhs: &[f32],
    rhs_strides: (usize, usize),
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
    let max_index =
        |(rs, cs): (usize, usize), rows: usize, cols: usize| (rows - 1) * rs + (cols - 1) * cs;
    assert!(dst.len() >= m * n, "matmul: destination too small");
    assert!(
        lhs.len() > max_index(lhs_strides, m, k),
        "matmul: left operand too small"
    );
    assert!(
        rhs.len() > max_index(rhs_strides, k, n),
        "matmul: right operand too small"
    );
    // SAFETY: the asserts above keep every index gemm computes from these dimensions and
    // strides inside the three slices, and `dst` does not overlap the (shared) operands.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_strides.1 as isize,
            lhs_strides.0 as isize,
            rhs.as_ptr(),
            rhs_strides.1 as isize,
            rhs_strides.0 as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

fn conv_forward(x: &[f32], weight: &[f32], bias: &[f32], sh: ConvShape) -> Vec<f32> {
    let (k, s, g) = (sh.k(), sh.s(), sh.group());
    let mut y = vec![0.0f32; sh.n * sh.co * s];
    if y.is_empty() {
        return y;
    }
    y.par_chunks_mut(g * sh.co * s).enumerate().for_each_init(
        || (vec![0.0f32; k * g * s], vec![0.0f32; sh.co * g * s]),
        |(cols, prod), (t, out)| {
            let count = out.len() / (sh.co * s);
            let width = count * s;
            im2col(x, sh, t * g, count, &mut cols[..k * width]);
            matmul(
                sh.co,
                width,
                k,
                &mut prod[..sh.co * width],
                false,
                weight,
                (k, 1),
                &cols[..k * width],
                (width, 1),
            );
            for (j, o) in out.chunks_exact_mut(s).enumerate() {
                let (gi, c) = (j / sh.co, j % sh.co);
                let src = &prod[c * width + gi * s..][..s];
                for (o, v) in o.iter_mut().zip(src) {
                    *o = v + bias[c];
                }
            }
        },
    );
    y
}

#[derive(Clone, Debug)]
struct ConvState {
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
        let grad = contiguous(grad).unwrap_or_else(|| panic!("conv: f32 gradient"));
        let (dy, x, weight) = (
            values(&grad),
            values(&ops.state.x),
            values(&ops.state.weight),
        );
        let (k, s, g) = (sh.k(), sh.s(), sh.group());
        let groups = sh.n.div_ceil(g);
        let want_dx = node_x.is_some();
        let scratch = || ConvScratch {
            dw: vec![0.0; sh.co * k],
            db: vec![0.0; sh.co],
            cols: vec![0.0; k * g * s],
            dyb: vec![0.0; sh.co * g * s],
        };
        // One group: its output gradient gathered as `Cout × count·S`, the weight and bias
        // gradients accumulated, and (if asked) its input gradient written into `dx`.
        let run = |acc: &mut ConvScratch, t: usize, dx: Option<&mut [f32]>| {
            let first = t * g;
            let count = g.min(sh.n - first);
            let width = count * s;
            for gi in 0..count {
                for c in 0..sh.co {
                    let src = &dy[((first + gi) * sh.co + c) * s..][..s];
                    acc.dyb[c * width + gi * s..][..s].copy_from_slice(src);
                    acc.db[c] += src.iter().map(|&v| v as f64).sum::<f64>();
                }
            }
            let dyb = &acc.dyb[..sh.co * width];
            im2col(x, sh, first, count, &mut acc.cols[..k * width]);
            // dW (Cout × K) += dy (Cout × width) · colsᵀ (width × K).
            matmul(
                sh.co,
                k,
                width,
                &mut acc.dw,
                true,
                dyb,
                (width, 1),
                &acc.cols[..k * width],
                (1, width),
            );
            if let Some(dx) = dx {
                // dcols (K × width) = wᵀ (K × Cout) · dy (Cout × width), reusing `cols`.
                matmul(
                    k,
                    width,
                    sh.co,
                    &mut acc.cols[..k * width],
                    false,
                    weight,
                    (1, k),
                    dyb,
                    (width, 1),
                );
                col2im(&acc.cols[..k * width], sh, count, dx);
            }
        };
        let merge = |mut a: ConvScratch, b: ConvScratch| {
            a.dw.iter_mut().zip(&b.dw).for_each(|(x, y)| *x += y);
            a.db.iter_mut().zip(&b.db).for_each(|(x, y)| *x += y);
            a
        };
        let sample = sh.ci * sh.h * sh.w;
        let mut dx = vec![0.0f32; if want_dx { sh.n * sample } else { 0 }];
        let total = if want_dx && sample > 0 {
            dx.par_chunks_mut(g * sample)
                .enumerate()
                .fold(scratch, |mut acc, (t, d)| {
                    run(&mut acc, t, Some(d));
                    acc
                })
                .reduce(scratch, merge)
        } else {
            (0..groups)
                .into_par_iter()
                .fold(scratch, |mut acc, t| {
                    run(&mut acc, t, None);
                    acc
                })
                .reduce(scratch, merge)
        };
        if let Some(node) = node_x {
            grads.register::<Flex>(node.id, flex(dx, vec![sh.n, sh.ci, sh.h, sh.w]));
        }
        if let Some(node) = node_w {
            grads.register::<Flex>(node.id, flex(total.dw, vec![sh.co, sh.ci, sh.kh, sh.kw]));
        }
        if let Some(node) = node_b {
            let db = total.db.iter().map(|&v| v as f32).collect();
            grads.register::<Flex>(node.id, flex(db, vec![sh.co]));
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use burn::module::Param;
    use burn::nn::pool::MaxPool2dConfig;
    use burn::nn::{BatchNorm, BatchNormConfig};
    use burn::tensor::Device;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    pub(crate) fn vec_of<const D: usize>(t: Tensor<D>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap_or_default()
    }

    /// Equal lengths, not empty, and every pair within 1e-4 relative (plus 1e-4 absolute).
    pub(crate) fn assert_close(a: &[f32], b: &[f32], what: &str) {
        assert_eq!(a.len(), b.len(), "{what}: lengths");
        assert!(!a.is_empty(), "{what}: empty");
        for (i, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= 1e-4 * (1.0 + y.abs()),
                "{what}[{i}]: {x} vs {y}"
            );
        }
    }

    pub(crate) fn grad_of<const D: usize>(x: &Tensor<D>, g: &burn::tensor::Gradients) -> Vec<f32> {
        vec_of(Tensor::<D>::from_inner(
            x.grad(g).unwrap_or_else(|| panic!("no gradient")),
        ))
    }

    /// Values with many exact ties (small integers) and, if asked, a few NaNs.
    fn tied_values(len: usize, seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..len)
            .map(|_| rng.random_range(-3i32..=3) as f32)
            .collect()
    }

    fn check_pool(dims: [usize; 4], values: Vec<f32>) {
        let device = Device::flex().autodiff();
        let input = || Tensor::<4>::from_data(TensorData::new(values.clone(), dims), &device);
        let burns = MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init();
        let (x1, x2) = (input().require_grad(), input().require_grad());
        let ours = max_pool_2x2(&x1).unwrap_or_else(|| panic!("flex autodiff tensor"));
        let theirs = burns.forward(x2.clone());
        assert_eq!(ours.dims(), theirs.dims());
        let (o, t) = (vec_of(ours.clone()), vec_of(theirs.clone()));
        for (i, (a, b)) in o.iter().zip(&t).enumerate() {
            assert!(
                a == b || (a.is_nan() && b.is_nan()),
                "output[{i}]: {a} vs {b}"
            );
        }
        // Distinct weights per output position, so a gradient sent to the wrong input shows.
        let weights = Tensor::<4>::from_data(
            TensorData::new(
                (0..o.len()).map(|i| 1.0 + i as f32).collect::<Vec<_>>(),
                ours.dims(),
            ),
            &device,
        );
        let g1 = (ours * weights.clone()).sum().backward();
        let g2 = (theirs * weights).sum().backward();
        assert_eq!(grad_of(&x1, &g1), grad_of(&x2, &g2), "input gradient");

        // Without autodiff (evaluation) the output is the same.
        let plain = Device::flex();
        let x = Tensor::<4>::from_data(TensorData::new(values.clone(), dims), &plain);
        let ours = max_pool_2x2(&x).unwrap_or_else(|| panic!("flex tensor"));
        let theirs = burns.forward(x);
        assert_eq!(vec_of(ours).len(), vec_of(theirs).len());
    }

    #[test]
    fn max_pool_matches_burns_with_ties_and_odd_sizes() {
        for (k, dims) in [[2, 3, 6, 8], [3, 2, 7, 7], [1, 1, 5, 2], [2, 2, 3, 9]]
            .into_iter()
            .enumerate()
        {
            check_pool(dims, tied_values(dims.iter().product(), k as u64));
        }
    }

    #[test]
    fn max_pool_lets_nan_win_as_burn_does() {
        let dims = [1, 2, 4, 4];
        let mut values = tied_values(32, 9);
        values[1] = f32::NAN;
        values[20] = f32::NAN;
        check_pool(dims, values);
    }

    #[test]
    fn max_pool_of_a_strided_input_matches() {
        // A transposed view (non-contiguous) is pooled like its contiguous copy.
        let device = Device::flex().autodiff();
        let values = tied_values(2 * 3 * 6 * 4, 5);
        let x =
            Tensor::<4>::from_data(TensorData::new(values, [2, 3, 6, 4]), &device).swap_dims(2, 3);
        let ours = max_pool_2x2(&x).unwrap_or_else(|| panic!("flex tensor"));
        let theirs = MaxPool2dConfig::new([2, 2])
            .with_strides([2, 2])
            .init()
            .forward(x);
        assert_eq!(vec_of(ours), vec_of(theirs));
    }

    /// A batch-norm case shared with the layer's test in `net`: `[4, 3, 5, 6]` seeded input
    /// values, a layer with an uneven scale and shift, and fixed weights that make the gradient
    /// reaching the layer uneven too.
    pub(crate) struct NormCase {
        pub(crate) values: Vec<f32>,
        pub(crate) dims: [usize; 4],
        pub(crate) bn: BatchNorm,
        pub(crate) weights: Tensor<4>,
        device: Device,
    }

    impl NormCase {
        pub(crate) fn new(seed: u64) -> NormCase {
            let device = Device::flex().autodiff();
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let dims = [4, 3, 5, 6];
            let values: Vec<f32> = (0..dims.iter().product::<usize>())
                .map(|i| rng.random_range(-2.0..2.0) + (i % 3) as f32)
                .collect();
            let mut bn = BatchNormConfig::new(3).init(&device);
            bn.gamma = Param::from_tensor(Tensor::from_data(
                TensorData::new(vec![0.5f32, 1.5, -1.0], [3]),
                &device,
            ));
            bn.beta = Param::from_tensor(Tensor::from_data(
                TensorData::new(vec![0.1f32, -0.2, 0.3], [3]),
                &device,
            ));
            let weights = Tensor::<4>::from_data(
                TensorData::new(
                    (0..values.len())
                        .map(|i| (i % 7) as f32 - 3.0)
                        .collect::<Vec<_>>(),
                    dims,
                ),
                &device,
            );
            NormCase {
                values,
                dims,
                bn,
                weights,
                device,
            }
        }

        /// A fresh input leaf that tracks its gradient.
        pub(crate) fn input(&self) -> Tensor<4> {
            Tensor::<4>::from_data(
                TensorData::new(self.values.clone(), self.dims),
                &self.device,
            )
            .require_grad()
        }
    }

    #[test]
    fn batch_norm_matches_burns_in_values_gradients_and_statistics() {
        let case = NormCase::new(12);
        let (bn, theirs_bn) = (&case.bn, case.bn.clone());
        let (values, dims) = (&case.values, case.dims);
        let (x1, x2) = (case.input(), case.input());
        let ours = batch_norm(&x1, bn.gamma.val(), bn.beta.val(), bn.epsilon)
            .unwrap_or_else(|| panic!("flex autodiff tensors"));
        let theirs = theirs_bn.forward(x2.clone());
        assert_close(&vec_of(ours.y.clone()), &vec_of(theirs.clone()), "output");
        let g1 = (ours.y * case.weights.clone()).sum().backward();
        let g2 = (theirs * case.weights.clone()).sum().backward();
        assert_close(&grad_of(&x1, &g1), &grad_of(&x2, &g2), "input gradient");
        let pg = |p: &Param<Tensor<1>>, g: &burn::tensor::Gradients| grad_of(&p.val(), g);
        assert_close(&pg(&bn.gamma, &g1), &pg(&theirs_bn.gamma, &g2), "gamma");
        assert_close(&pg(&bn.beta, &g1), &pg(&theirs_bn.beta, &g2), "beta");
        // The batch statistics, computed directly from the values.
        let hw = dims[2] * dims[3];
        for ch in 0..3 {
            let xs: Vec<f64> = (0..values.len())
                .filter(|i| (i / hw) % 3 == ch)
                .map(|i| values[i] as f64)
                .collect();
            let mean = xs.iter().sum::<f64>() / xs.len() as f64;
            let var = xs.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / xs.len() as f64;
            assert!((ours.mean[ch] as f64 - mean).abs() < 1e-5, "mean {ch}");
            assert!(
                (ours.variance[ch] as f64 - var).abs() < 1e-5,
                "variance {ch}"
            );
        }
    }

    fn check_conv(n: usize, ci: usize, co: usize, hw: [usize; 2], kernel: [usize; 2], pad: usize) {
        use burn::nn::PaddingConfig2d;
        use burn::nn::conv::Conv2dConfig;
        let device = Device::flex().autodiff();
        let mut rng = ChaCha8Rng::seed_from_u64((n * 131 + ci * 17 + co) as u64);
        let dims = [n, ci, hw[0], hw[1]];
        let values: Vec<f32> = (0..dims.iter().product::<usize>())
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let input = || {
            Tensor::<4>::from_data(TensorData::new(values.clone(), dims), &device).require_grad()
        };
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
        let ours = conv2d(&x1, conv.weight.val(), bias, pad)
            .unwrap_or_else(|| panic!("flex autodiff tensors"));
        let theirs = theirs_conv.forward(x2.clone());
        assert_eq!(ours.dims(), theirs.dims());
        assert_close(&vec_of(ours.clone()), &vec_of(theirs.clone()), "output");
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
        assert_close(&grad_of(&x1, &g1), &grad_of(&x2, &g2), "input gradient");
        assert_close(
            &grad_of(&conv.weight.val(), &g1),
            &grad_of(&theirs_conv.weight.val(), &g2),
            "weight gradient",
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
        assert_close(&b(&conv, &g1), &b(&theirs_conv, &g2), "bias gradient");
    }

    #[test]
    fn convolution_matches_burns_in_values_and_gradients() {
        // The paper's 3×3 / padding 1 layers, down to a 3×3 map, with sample groups that do
        // not divide the batch; then no padding, a wider kernel and non-square images.
        check_conv(3, 1, 3, [8, 8], [3, 3], 1);
        check_conv(37, 3, 5, [3, 3], [3, 3], 1);
        check_conv(5, 2, 4, [7, 7], [3, 3], 1);
        check_conv(2, 3, 2, [6, 9], [3, 3], 0);
        check_conv(2, 2, 3, [5, 8], [5, 3], 2);
        // Planes of 256 positions or more: one sample per product.
        check_conv(3, 2, 3, [16, 17], [3, 3], 1);
    }
}
