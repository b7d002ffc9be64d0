//! A fully connected layer, `y = x·W + b` with Burn's layout (`W` is `in × out`).
//!
//! One operation with one product each way, where Burn composes a matrix product and a
//! broadcast addition (and their backward passes) from generic tensor operations; it also
//! keeps the products at the engine's [`Simd`] level.

use burn::backend::Flex;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::NoCheckpointing;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::tensor::Tensor;

use super::gemm::{Operand, Threads, matmul};
use super::simd::Simd;
use super::{Ad, contiguous, flex, tracked, values};

/// Multiply-adds above which a product is split over the engine's threads.
const PARALLEL_MACS: usize = 1 << 20;

fn threads(m: usize, n: usize, k: usize) -> Threads {
    if m * n * k >= PARALLEL_MACS {
        Threads::Pool
    } else {
        Threads::Serial
    }
}

/// `x (N × in) · weight (in × out) + bias`. `None` when the tensors are not f32 on flex or
/// their shapes do not fit.
pub(crate) fn linear(
    simd: Simd,
    x: &Tensor<2>,
    weight: Tensor<2>,
    bias: Tensor<1>,
) -> Option<Tensor<2>> {
    let [n, fan_in] = x.dims();
    let [w_in, fan_out] = weight.dims();
    if w_in != fan_in || bias.dims() != [fan_out] {
        return None;
    }
    let dims = [n, fan_in, fan_out];
    if x.device().is_autodiff() {
        let (xn, xf) = tracked(x.clone())?;
        let (wn, wf) = tracked(weight)?;
        let (bn, bf) = tracked(bias)?;
        let y = flex(
            forward(simd, values(&xf), values(&wf), values(&bf), dims),
            vec![n, fan_out],
        );
        let out = match LinearBackward
            .prepare::<NoCheckpointing>([xn, wn, bn])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(
                LinearState {
                    simd,
                    x: xf,
                    weight: wf,
                    dims,
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
        let y = forward(simd, values(&xf), values(&wf), values(&bf), dims);
        Some(Tensor::from_primitive::<Flex>(flex(y, vec![n, fan_out])))
    }
}

fn forward(
    simd: Simd,
    x: &[f32],
    w: &[f32],
    b: &[f32],
    [n, fan_in, fan_out]: [usize; 3],
) -> Vec<f32> {
    let mut y = Vec::with_capacity(n * fan_out);
    for _ in 0..n {
        y.extend_from_slice(b);
    }
    matmul(
        simd,
        threads(n, fan_out, fan_in),
        n,
        fan_out,
        fan_in,
        &mut y,
        true,
        Operand::rows(x, fan_in),
        Operand::rows(w, fan_out),
    );
    y
}

#[derive(Clone, Debug)]
struct LinearState {
    simd: Simd,
    x: FlexTensor,
    weight: FlexTensor,
    dims: [usize; 3],
}

#[derive(Debug)]
struct LinearBackward;

impl Backward<Flex, 3> for LinearBackward {
    type State = LinearState;

    fn backward(self, ops: Ops<LinearState, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [node_x, node_w, node_b] = ops.parents;
        let grad = grads.consume::<Flex>(&ops.node);
        let LinearState {
            simd,
            x,
            weight,
            dims: [n, fan_in, fan_out],
        } = ops.state;
        let grad = contiguous(grad).unwrap_or_else(|| panic!("linear: f32 gradient"));
        let dy = values(&grad);
        if let Some(node) = node_x {
            // dx (N × in) = dy (N × out) · Wᵀ (out × in).
            let mut dx = vec![0.0f32; n * fan_in];
            matmul(
                simd,
                threads(n, fan_in, fan_out),
                n,
                fan_in,
                fan_out,
                &mut dx,
                false,
                Operand::rows(dy, fan_out),
                Operand::transposed(values(&weight), fan_out),
            );
            grads.register::<Flex>(node.id, flex(dx, vec![n, fan_in]));
        }
        if let Some(node) = node_w {
            // dW (in × out) = xᵀ (in × N) · dy (N × out).
            let mut dw = vec![0.0f32; fan_in * fan_out];
            matmul(
                simd,
                threads(fan_in, fan_out, n),
                fan_in,
                fan_out,
                n,
                &mut dw,
                false,
                Operand::transposed(values(&x), fan_in),
                Operand::rows(dy, fan_out),
            );
            grads.register::<Flex>(node.id, flex(dw, vec![fan_in, fan_out]));
        }
        if let Some(node) = node_b {
            let mut db = vec![0.0f64; fan_out];
            for row in dy.chunks_exact(fan_out.max(1)) {
                for (s, &v) in db.iter_mut().zip(row) {
                    *s += v as f64;
                }
            }
            let db = db.into_iter().map(|v| v as f32).collect();
            grads.register::<Flex>(node.id, flex(db, vec![fan_out]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SimdLevel;
    use crate::ops::tests::{assert_close, grad_of, vec_of};
    use burn::module::Module;
    use burn::nn::LinearConfig;
    use burn::tensor::{Device, TensorData};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn check_linear(n: usize, fan_in: usize, fan_out: usize) {
        let device = Device::flex().autodiff();
        let mut rng = ChaCha8Rng::seed_from_u64((n * 31 + fan_in * 7 + fan_out) as u64);
        let values: Vec<f32> = (0..n * fan_in)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        let input = || {
            Tensor::<2>::from_data(TensorData::new(values.clone(), [n, fan_in]), &device)
                .require_grad()
        };
        for level in [SimdLevel::Baseline, SimdLevel::Avx2, SimdLevel::Avx512] {
            let simd = Simd::limited_to(level);
            let what = |part: &str| format!("{part} ({level}, {n}×{fan_in}→{fan_out})");
            let layer = LinearConfig::new(fan_in, fan_out).init(&device);
            let theirs_layer = layer.clone();
            let bias = layer
                .bias
                .as_ref()
                .map(|b| b.val())
                .unwrap_or_else(|| panic!("bias"));
            let (x1, x2) = (input(), input());
            let ours = linear(simd, &x1, layer.weight.val(), bias)
                .unwrap_or_else(|| panic!("flex autodiff tensors"));
            let theirs = theirs_layer.forward(x2.clone());
            assert_close(
                &vec_of(ours.clone()),
                &vec_of(theirs.clone()),
                &what("output"),
            );
            let weights = Tensor::<2>::from_data(
                TensorData::new(
                    (0..n * fan_out)
                        .map(|i| (i % 7) as f32 - 3.0)
                        .collect::<Vec<_>>(),
                    [n, fan_out],
                ),
                &device,
            );
            let g1 = (ours * weights.clone()).sum().backward();
            let g2 = (theirs * weights).sum().backward();
            assert_close(
                &grad_of(&x1, &g1),
                &grad_of(&x2, &g2),
                &what("input gradient"),
            );
            assert_close(
                &grad_of(&layer.weight.val(), &g1),
                &grad_of(&theirs_layer.weight.val(), &g2),
                &what("weight gradient"),
            );
            let b = |l: &burn::nn::Linear, g: &burn::tensor::Gradients| {
                grad_of(
                    &l.bias
                        .as_ref()
                        .map(|b| b.val())
                        .unwrap_or_else(|| panic!("bias")),
                    g,
                )
            };
            assert_close(
                &b(&layer, &g1),
                &b(&theirs_layer, &g2),
                &what("bias gradient"),
            );

            // Evaluation (no autodiff) gives the same output.
            let plain = Device::flex();
            let x = Tensor::<2>::from_data(TensorData::new(values.clone(), [n, fan_in]), &plain);
            let layer = layer.valid();
            let bias = layer
                .bias
                .as_ref()
                .map(|b| b.val())
                .unwrap_or_else(|| panic!("bias"));
            let ours = linear(simd, &x, layer.weight.val(), bias)
                .unwrap_or_else(|| panic!("flex tensors"));
            assert_close(
                &vec_of(ours),
                &vec_of(layer.forward(x)),
                &what("evaluation"),
            );
        }
    }

    #[test]
    fn linear_matches_burns_in_values_and_gradients() {
        check_linear(5, 7, 3);
        check_linear(64, 81, 81);
        // Large enough to split the products over threads.
        check_linear(130, 441, 220);
    }
}
