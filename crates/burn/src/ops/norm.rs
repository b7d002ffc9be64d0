//! Batch normalisation in training mode, alone ([`batch_norm`]) or together with the ReLU and
//! 2×2 max pooling that follow it in the paper's conv blocks ([`norm_pool`]).
//!
//! The fused operation reads the convolution's output twice (statistics, then normalise +
//! ReLU + pool into the 4× smaller pooled output) and keeps, besides that input, one byte per
//! pooling window. Its backward pass turns the pooled gradient straight into the input
//! gradient: the gradient reaching batch norm's output is zero everywhere except at each
//! window's maximum (and there only where the ReLU let it through), so the per-channel sums
//! batch norm's backward pass needs come from the pooled gradient alone, and the input
//! gradient is `A + B·x` per channel plus the routed pooled gradient. Run one after the other,
//! the three layers write and read five full-size tensors more per step.

use burn::backend::Flex;
use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::tensor::Tensor;
use rayon::prelude::*;

use super::simd::{Simd, multiversion};
use super::{Ad, contiguous, flex, planes_per_task, tracked, values};

/// The result of [`batch_norm`] and [`norm_pool`]: the output and the batch's per-channel mean
/// and biased variance (for the running statistics).
pub(crate) struct NormOutput {
    pub(crate) y: Tensor<4>,
    pub(crate) mean: Vec<f32>,
    pub(crate) variance: Vec<f32>,
}

/// Per-channel batch statistics and the affine map they give.
struct Stats {
    mean: Vec<f32>,
    variance: Vec<f32>,
    inv_std: Vec<f32>,
    /// `γ/√(σ² + ε)`: `y = x·scale + shift`.
    scale: Vec<f32>,
    shift: Vec<f32>,
}

/// Mean and biased variance of each channel of `xs` (`n × c × hw`), and the normalisation's
/// scale and shift for `gamma`, `beta`.
fn batch_stats(
    simd: Simd,
    xs: &[f32],
    [n, c, hw]: [usize; 3],
    gamma: &[f32],
    beta: &[f32],
    epsilon: f64,
) -> Stats {
    let count = (n * hw).max(1) as f64;
    // Sums of (x − pivot) and its square, with one pivot per channel (an element of the
    // channel) so the variance does not come from the difference of two large numbers.
    let pivot: Vec<f32> = (0..c)
        .map(|ch| xs.get(ch * hw).copied().unwrap_or(0.0))
        .collect();
    let sums = channel_sums(n, c, hw, |p, acc| {
        let (s, q) = shifted_sums(simd, &xs[p * hw..(p + 1) * hw], pivot[p % c]);
        acc[0] += s;
        acc[1] += q;
    });
    let mut stats = Stats {
        mean: Vec::with_capacity(c),
        variance: Vec::with_capacity(c),
        inv_std: Vec::with_capacity(c),
        scale: Vec::with_capacity(c),
        shift: Vec::with_capacity(c),
    };
    for ch in 0..c {
        let shifted_mean = sums[ch][0] / count;
        let v = (sums[ch][1] / count - shifted_mean * shifted_mean).max(0.0);
        let m = shifted_mean + pivot[ch] as f64;
        let is = 1.0 / (v + epsilon).sqrt();
        stats.mean.push(m as f32);
        stats.variance.push(v as f32);
        stats.inv_std.push(is as f32);
        stats.scale.push((gamma[ch] as f64 * is) as f32);
        stats
            .shift
            .push((beta[ch] as f64 - m * gamma[ch] as f64 * is) as f32);
    }
    stats
}

/// Batch normalisation with batch statistics, `y = γ·(x − μ)/√(σ² + ε) + β` per channel, on
/// autodiff flex tensors. `gamma` and `beta` are `[C]`.
/// `None` if the inputs are not f32 tensors on autodiff flex.
pub(crate) fn batch_norm(
    simd: Simd,
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
    let stats = batch_stats(simd, values(&input), [n, c, hw], gv, bv, epsilon);
    let y = normalise(simd, values(&input), c, hw, &stats.scale, &stats.shift);
    let y = flex(y, vec![n, c, h, w]);
    let state = NormState {
        simd,
        x: input,
        dims: [n, c, h, w],
        mean: stats.mean.clone(),
        inv_std: stats.inv_std,
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
        mean: stats.mean,
        variance: stats.variance,
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

/// Independent accumulators per loop, so the compiler can keep them in vector registers.
const LANES: usize = 16;

multiversion! {
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
}

multiversion! {
    /// `Σ dy` and `Σ dy·x̂` over a plane, where `x̂ = (x − mean)·inv_std`.
    fn gradient_sums(dy: &[f32], x: &[f32], mean: f32, inv_std: f32) -> (f64, f64) {
        let (mut sd, mut sdx) = ([0.0f32; LANES], [0.0f32; LANES]);
        let (dc, xc) = (dy.chunks_exact(LANES), x.chunks_exact(LANES));
        let (dr, xr) = (dc.remainder(), xc.remainder());
        for (d, x) in dc.zip(xc) {
            for l in 0..LANES {
                sd[l] += d[l];
                sdx[l] += d[l] * ((x[l] - mean) * inv_std);
            }
        }
        let (mut sd, mut sdx) = (
            sd.iter().map(|&v| v as f64).sum::<f64>(),
            sdx.iter().map(|&v| v as f64).sum::<f64>(),
        );
        for (&d, &x) in dr.iter().zip(xr) {
            sd += d as f64;
            sdx += (d * ((x - mean) * inv_std)) as f64;
        }
        (sd, sdx)
    }
}

multiversion! {
    /// `out = x·a + b`.
    fn affine(out: &mut [f32], x: &[f32], a: f32, b: f32) {
        for (o, &v) in out.iter_mut().zip(x) {
            *o = v * a + b;
        }
    }
}

/// `x·scale + shift` per channel.
fn normalise(simd: Simd, x: &[f32], c: usize, hw: usize, scale: &[f32], shift: &[f32]) -> Vec<f32> {
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
                affine(
                    simd,
                    o,
                    &x[p * hw..(p + 1) * hw],
                    scale[p % c],
                    shift[p % c],
                );
            }
        });
    y
}

/// What the batch-norm backward pass needs: the input and per-channel constants.
#[derive(Clone, Debug)]
struct NormState {
    simd: Simd,
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
        let simd = s.simd;
        let [n, c, h, w] = s.dims;
        let hw = h * w;
        let count = (n * hw).max(1) as f64;
        let grad = contiguous(grad).unwrap_or_else(|| panic!("batch norm: f32 gradient"));
        let (dy, x) = (values(&grad), values(&s.x));
        let sums = channel_sums(n, c, hw, |p, acc| {
            let ch = p % c;
            let (sd, sdx) = gradient_sums(
                simd,
                &dy[p * hw..(p + 1) * hw],
                &x[p * hw..(p + 1) * hw],
                s.mean[ch],
                s.inv_std[ch],
            );
            acc[0] += sd;
            acc[1] += sdx;
        });
        register_affine_grads(
            grads,
            node_gamma.map(|n| n.id),
            node_beta.map(|n| n.id),
            &sums,
        );
        if let Some(node) = node_x {
            let coef = InputGradient::new(&sums, count, &s.inv_std, &s.gamma);
            let mut dx = vec![0.0f32; n * c * hw];
            if hw > 0 {
                let per_task = planes_per_task(hw);
                dx.par_chunks_mut(per_task * hw)
                    .enumerate()
                    .for_each(|(t, out)| {
                        for (i, o) in out.chunks_exact_mut(hw).enumerate() {
                            let p = t * per_task + i;
                            let ch = p % c;
                            let xp = &x[p * hw..(p + 1) * hw];
                            let dyp = &dy[p * hw..(p + 1) * hw];
                            input_gradient(
                                simd, o, dyp, xp, coef.k[ch], coef.a[ch], coef.b[ch], s.mean[ch],
                            );
                        }
                    });
            }
            grads.register::<Flex>(node.id, flex(dx, vec![n, c, h, w]));
        }
    }
}

/// Registers `Σ dy·x̂` as γ's gradient and `Σ dy` as β's.
fn register_affine_grads(
    grads: &mut Gradients,
    gamma: Option<NodeId>,
    beta: Option<NodeId>,
    sums: &[[f64; 2]],
) {
    let c = sums.len();
    if let Some(id) = gamma {
        let dg = sums.iter().map(|a| a[1] as f32).collect();
        grads.register::<Flex>(id, flex(dg, vec![c]));
    }
    if let Some(id) = beta {
        let db = sums.iter().map(|a| a[0] as f32).collect();
        grads.register::<Flex>(id, flex(db, vec![c]));
    }
}

/// Batch norm's input gradient per channel, `dx = k·dy + a + b·(x − μ)`: from
/// `dx = k·(dy − mean(dy) − x̂·mean(dy·x̂))` with `k = γ/√(σ² + ε)` and `x̂ = (x − μ)/√(σ² + ε)`.
struct InputGradient {
    k: Vec<f32>,
    a: Vec<f32>,
    b: Vec<f32>,
}

impl InputGradient {
    fn new(sums: &[[f64; 2]], count: f64, inv_std: &[f32], gamma: &[f32]) -> InputGradient {
        let mut g = InputGradient {
            k: Vec::with_capacity(sums.len()),
            a: Vec::with_capacity(sums.len()),
            b: Vec::with_capacity(sums.len()),
        };
        for (ch, s) in sums.iter().enumerate() {
            let (md, mdx) = (s[0] / count, s[1] / count);
            let is = inv_std[ch] as f64;
            let k = gamma[ch] as f64 * is;
            let b = -k * is * mdx;
            g.k.push(k as f32);
            g.a.push((-k * md) as f32);
            g.b.push(b as f32);
        }
        g
    }
}

multiversion! {
    /// `dx = k·dy + a + b·(x − mean)` over a plane.
    fn input_gradient(dx: &mut [f32], dy: &[f32], x: &[f32], k: f32, a: f32, b: f32, mean: f32) {
        for ((o, &d), &v) in dx.iter_mut().zip(dy).zip(x) {
            *o = k * d + (a + b * (v - mean));
        }
    }
}

multiversion! {
    /// `dx = a + b·(x − mean)` over a plane.
    fn centered_affine(dx: &mut [f32], x: &[f32], a: f32, b: f32, mean: f32) {
        for (o, &v) in dx.iter_mut().zip(x) {
            *o = a + b * (v - mean);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Batch normalisation, ReLU and 2×2 max pooling as one operation.
// ---------------------------------------------------------------------------------------------

/// A window's byte when no gradient passes it: its maximum was cut to zero by the ReLU.
const BLOCKED: u8 = 4;

/// Batch normalisation with batch statistics, then (if `relu`) ReLU, then 2×2 max pooling
/// with stride 2 — what Burn's `BatchNorm` (training), `Relu` and `MaxPool2d` compute one
/// after the other, including the pooling's tie and NaN rules (see `super::pool`) applied to
/// the ReLU's output. `None` if the inputs are not f32 tensors on autodiff flex.
pub(crate) fn norm_pool(
    simd: Simd,
    x: &Tensor<4>,
    gamma: Tensor<1>,
    beta: Tensor<1>,
    epsilon: f64,
    relu: bool,
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
    let (ho, wo) = (h / 2, w / 2);
    let stats = batch_stats(simd, values(&input), [n, c, hw], gv, bv, epsilon);
    let planes = n * c;
    let plane_out = ho * wo;
    let mut out = vec![0.0f32; planes * plane_out];
    let mut arg = vec![0u8; planes * plane_out];
    let mut at_max = vec![0.0f32; planes * plane_out];
    if plane_out > 0 {
        let xs = values(&input);
        let per_task = planes_per_task(hw);
        let chunk = per_task * plane_out;
        out.par_chunks_mut(chunk)
            .zip(arg.par_chunks_mut(chunk))
            .zip(at_max.par_chunks_mut(chunk))
            .enumerate()
            .for_each(|(t, ((o, a), m))| {
                let planes = o
                    .chunks_exact_mut(plane_out)
                    .zip(a.chunks_exact_mut(plane_out))
                    .zip(m.chunks_exact_mut(plane_out));
                for (i, ((o, a), m)) in planes.enumerate() {
                    let p = t * per_task + i;
                    let ch = p % c;
                    let (scale, shift) = (stats.scale[ch], stats.shift[ch]);
                    let src = &xs[p * hw..(p + 1) * hw];
                    norm_pool_plane(simd, o, a, m, src, w, scale, shift, relu);
                }
            });
    }
    let y = flex(out, vec![n, c, ho, wo]);
    let state = NormPoolState {
        simd,
        x: input,
        arg,
        at_max,
        dims: [n, c, h, w],
        mean: stats.mean.clone(),
        inv_std: stats.inv_std,
        gamma: gv.to_vec(),
    };
    let out = match NormPoolBackward
        .prepare::<NoCheckpointing>(nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => prep.finish(state, y),
        OpsKind::UnTracked(prep) => prep.finish(y),
    };
    Some(NormOutput {
        y: Tensor::from_primitive::<Ad>(out),
        mean: stats.mean,
        variance: stats.variance,
    })
}

/// Windows one pass of [`norm_pool_plane`] handles with whole vectors.
const WINDOWS: usize = 16;

multiversion! {
    /// One plane: normalise (`x·scale + shift`), ReLU if asked, pool 2×2; writes each window's
    /// maximum to `out`, its position (0..4, row-major) or [`BLOCKED`] to `arg`, and the input
    /// value there (before normalising) to `at_max`. Windows go in blocks of [`WINDOWS`]: the
    /// four corners are gathered into arrays, and the comparisons run lane by lane as
    /// selects, so they vectorise.
    fn norm_pool_plane(
        out: &mut [f32],
        arg: &mut [u8],
        at_max: &mut [f32],
        src: &[f32],
        w: usize,
        scale: f32,
        shift: f32,
        relu: bool,
    ) {
        let wo = w / 2;
        if wo == 0 {
            return;
        }
        let f = |v: f32| {
            let y = v * scale + shift;
            // Burn's ReLU keeps NaN.
            if relu && !(y.is_nan() || y > 0.0) { 0.0 } else { y }
        };
        let rows = out
            .chunks_exact_mut(wo)
            .zip(arg.chunks_exact_mut(wo))
            .zip(at_max.chunks_exact_mut(wo));
        for (oy, ((orow, arow), mrow)) in rows.enumerate() {
            let r0 = &src[2 * oy * w..][..2 * wo];
            let r1 = &src[(2 * oy + 1) * w..][..2 * wo];
            for ox0 in (0..wo).step_by(WINDOWS) {
                let n = WINDOWS.min(wo - ox0);
                let mut raw = [[0.0f32; WINDOWS]; 4];
                // Four corner rows gathered per lane: an index reads clearer than four zips.
                #[allow(clippy::needless_range_loop)]
                for l in 0..n {
                    let j = 2 * (ox0 + l);
                    raw[0][l] = r0[j];
                    raw[1][l] = r0[j + 1];
                    raw[2][l] = r1[j];
                    raw[3][l] = r1[j + 1];
                }
                let mut best = [0.0f32; WINDOWS];
                let mut at = [0.0f32; WINDOWS];
                let mut k = [0u8; WINDOWS];
                for l in 0..WINDOWS {
                    let (mut b, mut m, mut kk) = (f(raw[0][l]), raw[0][l], 0u8);
                    for (j, corner) in raw.iter().enumerate().skip(1) {
                        let v = f(corner[l]);
                        // Burn's rule: a larger value replaces, and so does any NaN.
                        let take = v > b || v.is_nan();
                        b = if take { v } else { b };
                        m = if take { corner[l] } else { m };
                        kk = if take { j as u8 } else { kk };
                    }
                    // The ReLU passes a gradient where its output was positive or NaN.
                    let blocked = relu && !(b.is_nan() || b > 0.0);
                    best[l] = b;
                    at[l] = m;
                    k[l] = if blocked { BLOCKED } else { kk };
                }
                orow[ox0..ox0 + n].copy_from_slice(&best[..n]);
                mrow[ox0..ox0 + n].copy_from_slice(&at[..n]);
                arow[ox0..ox0 + n].copy_from_slice(&k[..n]);
            }
        }
    }
}

/// What the fused backward pass needs: batch norm's input, each window's maximum position and
/// per-channel constants.
#[derive(Clone, Debug)]
struct NormPoolState {
    simd: Simd,
    x: FlexTensor,
    arg: Vec<u8>,
    at_max: Vec<f32>,
    dims: [usize; 4],
    mean: Vec<f32>,
    inv_std: Vec<f32>,
    gamma: Vec<f32>,
}

#[derive(Debug)]
struct NormPoolBackward;

impl Backward<Flex, 3> for NormPoolBackward {
    type State = NormPoolState;

    fn backward(self, ops: Ops<NormPoolState, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_gamma, node_beta] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let s = ops.state;
        let simd = s.simd;
        let [n, c, h, w] = s.dims;
        let (hw, wo) = (h * w, w / 2);
        let plane_out = (h / 2) * wo;
        let count = (n * hw).max(1) as f64;
        let grad = contiguous(grad).unwrap_or_else(|| panic!("norm + pool: f32 gradient"));
        let (g, x) = (values(&grad), values(&s.x));
        // The gradient at batch norm's output is the pooled gradient at each window's maximum
        // (where not blocked) and zero elsewhere: its sums need the pooled positions only.
        let sums = channel_sums(n, c, hw, |p, acc| {
            let ch = p % c;
            let at = p * plane_out..(p + 1) * plane_out;
            let (sd, sdx) = routed_sums(
                simd,
                &g[at.clone()],
                &s.arg[at.clone()],
                &s.at_max[at],
                s.mean[ch],
                s.inv_std[ch],
            );
            acc[0] += sd;
            acc[1] += sdx;
        });
        register_affine_grads(
            grads,
            node_gamma.map(|n| n.id),
            node_beta.map(|n| n.id),
            &sums,
        );
        if let Some(node) = node_x {
            let coef = InputGradient::new(&sums, count, &s.inv_std, &s.gamma);
            let mut dx = vec![0.0f32; n * c * hw];
            if hw > 0 {
                let per_task = planes_per_task(hw);
                dx.par_chunks_mut(per_task * hw)
                    .enumerate()
                    .for_each(|(t, out)| {
                        for (i, o) in out.chunks_exact_mut(hw).enumerate() {
                            let p = t * per_task + i;
                            let ch = p % c;
                            let xp = &x[p * hw..(p + 1) * hw];
                            centered_affine(simd, o, xp, coef.a[ch], coef.b[ch], s.mean[ch]);
                            if plane_out > 0 {
                                route(
                                    o,
                                    &g[p * plane_out..(p + 1) * plane_out],
                                    &s.arg[p * plane_out..(p + 1) * plane_out],
                                    w,
                                    coef.k[ch],
                                );
                            }
                        }
                    });
            }
            grads.register::<Flex>(node.id, flex(dx, vec![n, c, h, w]));
        }
    }
}

multiversion! {
    /// `Σ dy` and `Σ dy·x̂` over a plane where `dy` is the pooled gradient `g` routed to each
    /// window's maximum (`at_max` holds the input there; blocked windows route nothing).
    fn routed_sums(
        g: &[f32],
        arg: &[u8],
        at_max: &[f32],
        mean: f32,
        inv_std: f32,
    ) -> (f64, f64) {
        let (mut sd, mut sdx) = ([0.0f32; LANES], [0.0f32; LANES]);
        let (gc, ac, mc) = (g.chunks_exact(LANES), arg.chunks_exact(LANES), at_max.chunks_exact(LANES));
        let (gr, ar, mr) = (gc.remainder(), ac.remainder(), mc.remainder());
        for ((g, a), m) in gc.zip(ac).zip(mc) {
            for l in 0..LANES {
                let d = if a[l] == BLOCKED { 0.0 } else { g[l] };
                sd[l] += d;
                sdx[l] += d * ((m[l] - mean) * inv_std);
            }
        }
        let (mut sd, mut sdx) = (
            sd.iter().map(|&v| v as f64).sum::<f64>(),
            sdx.iter().map(|&v| v as f64).sum::<f64>(),
        );
        for ((&g, &a), &m) in gr.iter().zip(ar).zip(mr) {
            if a != BLOCKED {
                sd += g as f64;
                sdx += (g * ((m - mean) * inv_std)) as f64;
            }
        }
        (sd, sdx)
    }
}

/// Adds `k·g` at each window's maximum of a plane `w` wide.
fn route(dx: &mut [f32], g: &[f32], arg: &[u8], w: usize, k: f32) {
    let wo = w / 2;
    if wo == 0 {
        return;
    }
    for (oy, (grow, arow)) in g.chunks_exact(wo).zip(arg.chunks_exact(wo)).enumerate() {
        for (ox, (&d, &a)) in grow.iter().zip(arow).enumerate() {
            if a != BLOCKED {
                let (dy, dx_) = (usize::from(a / 2), usize::from(a % 2));
                dx[(2 * oy + dy) * w + 2 * ox + dx_] += k * d;
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::ops::tests::{assert_close, grad_of, vec_of};
    use burn::module::Param;
    use burn::nn::pool::MaxPool2dConfig;
    use burn::nn::{BatchNorm, BatchNormConfig, Relu};
    use burn::tensor::{Device, TensorData};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// A batch-norm case shared with the layer's test in `net`: seeded input values
    /// (`[4, 3, 5, 6]` unless asked otherwise), a layer with an uneven scale and shift, and
    /// fixed weights for the gradient reaching the layer's output (of `out_dims`).
    pub(crate) struct NormCase {
        pub(crate) values: Vec<f32>,
        pub(crate) dims: [usize; 4],
        pub(crate) bn: BatchNorm,
        pub(crate) weights: Tensor<4>,
        device: Device,
    }

    impl NormCase {
        pub(crate) fn new(seed: u64) -> NormCase {
            NormCase::shaped(seed, [4, 3, 5, 6], [4, 3, 5, 6])
        }

        pub(crate) fn shaped(seed: u64, dims: [usize; 4], out_dims: [usize; 4]) -> NormCase {
            let device = Device::flex().autodiff();
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
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
                    (0..out_dims.iter().product::<usize>())
                        .map(|i| (i % 7) as f32 - 3.0)
                        .collect::<Vec<_>>(),
                    out_dims,
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
        let ours = batch_norm(
            Simd::detect(),
            &x1,
            bn.gamma.val(),
            bn.beta.val(),
            bn.epsilon,
        )
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

    /// The fused operation against Burn's three modules, at every instruction set level up to
    /// the detected one: outputs, the input gradient, γ's and β's gradients and the batch
    /// statistics.
    fn check_norm_pool(dims: [usize; 4], relu: bool, seed: u64) {
        let out_dims = [dims[0], dims[1], dims[2] / 2, dims[3] / 2];
        let case = NormCase::shaped(seed, dims, out_dims);
        let pool = MaxPool2dConfig::new([2, 2]).with_strides([2, 2]).init();
        for level in [
            crate::SimdLevel::Baseline,
            crate::SimdLevel::Avx2,
            crate::SimdLevel::Avx512,
        ] {
            let simd = Simd::limited_to(level);
            let (ours_bn, theirs_bn) = (case.bn.clone(), case.bn.clone());
            let (x1, x2) = (case.input(), case.input());
            let ours = norm_pool(
                simd,
                &x1,
                ours_bn.gamma.val(),
                ours_bn.beta.val(),
                ours_bn.epsilon,
                relu,
            )
            .unwrap_or_else(|| panic!("flex autodiff tensors"));
            let mut theirs = theirs_bn.forward(x2.clone());
            if relu {
                theirs = Relu::new().forward(theirs);
            }
            let theirs = pool.forward(theirs);
            assert_eq!(ours.y.dims(), theirs.dims());
            let what = |part: &str| format!("{part} ({level}, relu {relu}, {dims:?})");
            assert_close(
                &vec_of(ours.y.clone()),
                &vec_of(theirs.clone()),
                &what("output"),
            );
            let g1 = (ours.y * case.weights.clone()).sum().backward();
            let g2 = (theirs * case.weights.clone()).sum().backward();
            assert_close(
                &grad_of(&x1, &g1),
                &grad_of(&x2, &g2),
                &what("input gradient"),
            );
            let pg = |p: &Param<Tensor<1>>, g: &burn::tensor::Gradients| grad_of(&p.val(), g);
            assert_close(
                &pg(&ours_bn.gamma, &g1),
                &pg(&theirs_bn.gamma, &g2),
                &what("gamma"),
            );
            assert_close(
                &pg(&ours_bn.beta, &g1),
                &pg(&theirs_bn.beta, &g2),
                &what("beta"),
            );
            // The statistics for the running averages: batch norm's own.
            let plain = batch_norm(
                simd,
                &case.input(),
                case.bn.gamma.val(),
                case.bn.beta.val(),
                case.bn.epsilon,
            )
            .unwrap_or_else(|| panic!("flex autodiff tensors"));
            assert_eq!(ours.mean, plain.mean);
            assert_eq!(ours.variance, plain.variance);
        }
    }

    #[test]
    fn norm_relu_pool_matches_burns_three_layers() {
        // Even and odd sizes (the last row and column outside every window still get batch
        // norm's gradient), with and without the ReLU.
        for (k, dims) in [[4, 3, 6, 8], [3, 3, 7, 7], [2, 3, 5, 4], [5, 3, 3, 3]]
            .into_iter()
            .enumerate()
        {
            check_norm_pool(dims, true, k as u64);
            check_norm_pool(dims, false, 10 + k as u64);
        }
    }
}
