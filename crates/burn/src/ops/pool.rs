//! 2×2 max pooling with stride 2, alone (where batch norm does not precede it, and in
//! evaluation); after batch norm in training it is part of `super::norm::norm_pool`.

use std::sync::Arc;

use burn::backend::Flex;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::tensor::Tensor;
use rayon::prelude::*;

use super::{Ad, contiguous, flex, planes_per_task, tracked, values};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::tests::{grad_of, vec_of};
    use burn::nn::pool::MaxPool2dConfig;
    use burn::tensor::{Device, TensorData};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

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
}
