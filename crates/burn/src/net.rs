//! A [`NetworkSpec`] turned into Burn modules: one [`Block`] per layer of the spec, in order.

use burn::module::{Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Identity, Linear, LinearConfig, PaddingConfig2d, Relu};
use burn::tensor::{Device, Tensor, TensorData};
use greenlab_model::{Layer, NetworkSpec};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::ops;
use crate::ops::simd::Simd;

/// One layer of the network. The variants mirror [`Layer`]; `Flatten` holds an identity
/// module only because Burn's module derive wants one field per variant.
#[derive(Module, Debug)]
pub(crate) enum Block {
    Conv(Conv2d),
    Norm(BatchNorm),
    Relu(Relu),
    Pool(MaxPool2d),
    Flatten(Identity),
    Linear(Linear),
}

/// The whole network: the blocks in the order of the spec's layers.
#[derive(Module, Debug)]
pub(crate) struct Net {
    pub(crate) blocks: Vec<Block>,
}

/// Activations between blocks: feature maps before `Flatten`, vectors after.
#[derive(Clone, Debug)]
pub(crate) enum Act {
    Map(Tensor<4>),
    Flat(Tensor<2>),
}

impl Act {
    /// Detaches from the graph (a new leaf) and, if asked, tracks gradients from here.
    pub(crate) fn leaf(self, require_grad: bool) -> Act {
        match self {
            Act::Map(t) => {
                let t = t.detach();
                Act::Map(if require_grad { t.require_grad() } else { t })
            }
            Act::Flat(t) => {
                let t = t.detach();
                Act::Flat(if require_grad { t.require_grad() } else { t })
            }
        }
    }

    /// The sum of all elements: a scalar whose backward pass feeds ones into the graph.
    pub(crate) fn total(self) -> Tensor<1> {
        match self {
            Act::Map(a) => a.sum(),
            Act::Flat(a) => a.sum(),
        }
    }

    /// A tensor of ones of the same shape, on `device`, outside any graph.
    pub(crate) fn ones_like(&self, device: &Device) -> Act {
        match self {
            Act::Map(t) => Act::Map(Tensor::ones(t.dims(), device)),
            Act::Flat(t) => Act::Flat(Tensor::ones(t.dims(), device)),
        }
    }
}

impl Block {
    /// Applies the block; `None` if the activation has the wrong rank for it (cannot happen
    /// for a network built from a valid spec).
    pub(crate) fn forward(&self, x: Act, simd: Simd) -> Option<Act> {
        Some(match (self, x) {
            (Block::Conv(m), Act::Map(t)) => Act::Map(match (conv_padding(m), &m.bias) {
                (Some(pad), Some(bias)) => ops::conv2d(simd, &t, m.weight.val(), bias.val(), pad)
                    .unwrap_or_else(|| m.forward(t)),
                _ => m.forward(t),
            }),
            (Block::Norm(m), Act::Map(t)) => Act::Map(if t.device().is_autodiff() {
                batch_norm_train(m, t, simd)
            } else {
                m.forward(t)
            }),
            (Block::Relu(m), Act::Map(t)) => Act::Map(m.forward(t)),
            (Block::Relu(m), Act::Flat(t)) => Act::Flat(m.forward(t)),
            (Block::Pool(m), Act::Map(t)) if is_pool_2x2(m) => {
                Act::Map(ops::max_pool_2x2(&t).unwrap_or_else(|| m.forward(t)))
            }
            (Block::Pool(m), Act::Map(t)) => Act::Map(m.forward(t)),
            (Block::Flatten(_), Act::Map(t)) => {
                let [n, c, h, w] = t.dims();
                Act::Flat(t.reshape([n, c * h * w]))
            }
            (Block::Flatten(_), flat @ Act::Flat(_)) => flat,
            (Block::Linear(m), Act::Flat(t)) => Act::Flat(match &m.bias {
                Some(bias) => ops::linear(simd, &t, m.weight.val(), bias.val())
                    .unwrap_or_else(|| m.forward(t)),
                None => m.forward(t),
            }),
            _ => return None,
        })
    }
}

/// Blocks the forward pass runs as one operation: one block, or batch norm with the ReLU (if
/// any) and 2×2 pooling after it, fused in training (`ops::norm_pool`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Segment {
    /// The block at this index.
    Block(usize),
    /// Batch norm at `norm`, a ReLU after it if `relu`, then 2×2 max pooling.
    NormPool { norm: usize, relu: bool },
}

impl Segment {
    /// The indices of the blocks it covers.
    pub(crate) fn blocks(self) -> std::ops::Range<usize> {
        match self {
            Segment::Block(i) => i..i + 1,
            Segment::NormPool { norm, relu } => norm..norm + 2 + usize::from(relu),
        }
    }
}

/// Batch normalisation in training mode, as Burn's `BatchNorm::forward` computes it (batch
/// statistics, biased variance, running statistics updated with the layer's momentum). The
/// work is one hand-written autodiff operation
/// ([`ops::batch_norm`]): Burn's generic version is a dozen tensor operations, each a full pass
/// over the activation, which on the flex backend cost a quarter of the training step.
pub(crate) fn batch_norm_train(bn: &BatchNorm, x: Tensor<4>, simd: Simd) -> Tensor<4> {
    match ops::batch_norm(simd, &x, bn.gamma.val(), bn.beta.val(), bn.epsilon) {
        Some(out) => update_running_statistics(bn, out, &x.device()),
        // Not a flex tensor: Burn's own layer.
        None => bn.forward(x),
    }
}

/// Batch norm (training), the ReLU if `relu`, and 2×2 max pooling as one operation
/// ([`ops::norm_pool`]), updating the running statistics as [`batch_norm_train`] does. `None`
/// if the tensor is not on flex (the caller runs the blocks one by one).
fn norm_pool_train(bn: &BatchNorm, x: &Tensor<4>, relu: bool, simd: Simd) -> Option<Tensor<4>> {
    let out = ops::norm_pool(simd, x, bn.gamma.val(), bn.beta.val(), bn.epsilon, relu)?;
    Some(update_running_statistics(bn, out, &x.device()))
}

/// Moves the layer's running mean and variance towards the batch's; returns the output.
fn update_running_statistics(bn: &BatchNorm, out: ops::NormOutput, device: &Device) -> Tensor<4> {
    let c = out.mean.len();
    let momentum = bn.momentum;
    let update = |state: &burn::module::RunningState<Tensor<1>>, batch: Vec<f32>| {
        let batch = Tensor::<1>::from_data(TensorData::new(batch, [c]), device);
        let running = state
            .value_sync()
            .to_device(device)
            .mul_scalar(1.0 - momentum)
            .add(batch.mul_scalar(momentum));
        state.update(running.detach());
    };
    update(&bn.running_mean, out.mean);
    update(&bn.running_var, out.variance);
    out.y
}

/// The padding of a convolution the hand-written kernel covers (stride 1, no dilation, one
/// group, the same padding on every side), or `None`.
fn conv_padding(m: &Conv2d) -> Option<usize> {
    if m.stride != [1, 1] || m.dilation != [1, 1] || m.groups != 1 {
        return None;
    }
    match m.padding {
        PaddingConfig2d::Valid => Some(0),
        PaddingConfig2d::Explicit(a, b, c, d) if a == b && b == c && c == d => Some(a),
        _ => None,
    }
}

/// True for the pooling the hand-written kernel covers: 2×2 windows, stride 2, no padding.
fn is_pool_2x2(m: &MaxPool2d) -> bool {
    m.kernel_size == [2, 2]
        && m.stride == [2, 2]
        && m.dilation == [1, 1]
        && !m.ceil_mode
        && matches!(
            m.padding,
            PaddingConfig2d::Valid | PaddingConfig2d::Explicit(0, 0, 0, 0)
        )
}

impl Net {
    /// Builds the network on `device` with weights drawn from a generator seeded with `seed`.
    ///
    /// Initialisation follows PyTorch's defaults so both engines start from the same
    /// distribution: convolution and linear weights and biases uniform in ±1/√fan_in (Kaiming
    /// uniform with a = √5), batch-norm scale 1 and shift 0. The generator is ours, not the
    /// backend's global one, so trainers built concurrently stay reproducible.
    pub(crate) fn new(spec: &NetworkSpec, seed: u64, device: &Device) -> Net {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let blocks = spec
            .layers
            .iter()
            .map(|l| match l.layer {
                Layer::Conv2d {
                    in_channels,
                    out_channels,
                    kernel,
                    stride,
                    padding,
                } => {
                    let mut conv = Conv2dConfig::new([in_channels, out_channels], [kernel, kernel])
                        .with_stride([stride, stride])
                        .with_padding(PaddingConfig2d::Explicit(
                            padding, padding, padding, padding,
                        ))
                        .init(device);
                    let fan_in = in_channels * kernel * kernel;
                    conv.weight = uniform_param(
                        &mut rng,
                        [out_channels, in_channels, kernel, kernel],
                        fan_in,
                        device,
                    );
                    conv.bias = Some(uniform_param(&mut rng, [out_channels], fan_in, device));
                    Block::Conv(conv)
                }
                Layer::BatchNorm2d { features } => {
                    Block::Norm(BatchNormConfig::new(features).init(device))
                }
                Layer::Relu => Block::Relu(Relu::new()),
                Layer::MaxPool2d { kernel, stride } => Block::Pool(
                    MaxPool2dConfig::new([kernel, kernel])
                        .with_strides([stride, stride])
                        .init(),
                ),
                Layer::Flatten => Block::Flatten(Identity::new()),
                Layer::Linear {
                    in_features,
                    out_features,
                } => {
                    let mut linear = LinearConfig::new(in_features, out_features).init(device);
                    // Burn stores linear weights as [in, out] (y = x·W + b).
                    linear.weight =
                        uniform_param(&mut rng, [in_features, out_features], in_features, device);
                    linear.bias =
                        Some(uniform_param(&mut rng, [out_features], in_features, device));
                    Block::Linear(linear)
                }
            })
            .collect();
        Net { blocks }
    }

    /// The number of trainable parameters, as PyTorch's `parameters()` counts them.
    ///
    /// Burn's `num_params` also visits batch-norm running statistics (they are module state
    /// there), which are buffers in PyTorch and in the spec's count; only scale and shift of a
    /// batch-norm layer are trained, so those are the ones counted here.
    pub(crate) fn trainable_params(&self) -> usize {
        self.blocks
            .iter()
            .map(|b| match b {
                Block::Norm(bn) => bn.gamma.num_params() + bn.beta.num_params(),
                other => other.num_params(),
            })
            .sum()
    }

    /// How the forward pass groups the blocks (see [`Segment`]).
    pub(crate) fn segments(&self) -> Vec<Segment> {
        let b = &self.blocks;
        let pool_at = |i: usize| matches!(b.get(i), Some(Block::Pool(m)) if is_pool_2x2(m));
        let mut out = Vec::with_capacity(b.len());
        let mut i = 0;
        while i < b.len() {
            let seg = match (&b[i], b.get(i + 1)) {
                (Block::Norm(_), Some(Block::Relu(_))) if pool_at(i + 2) => Segment::NormPool {
                    norm: i,
                    relu: true,
                },
                (Block::Norm(_), _) if pool_at(i + 1) => Segment::NormPool {
                    norm: i,
                    relu: false,
                },
                _ => Segment::Block(i),
            };
            i = seg.blocks().end;
            out.push(seg);
        }
        out
    }

    /// Runs one segment: fused in training where the tensors allow, block by block otherwise.
    pub(crate) fn forward_segment(&self, seg: Segment, x: Act, simd: Simd) -> Option<Act> {
        if let (Segment::NormPool { norm, relu }, Act::Map(t)) = (seg, &x)
            && t.device().is_autodiff()
            && let Block::Norm(bn) = &self.blocks[norm]
            && let Some(y) = norm_pool_train(bn, t, relu, simd)
        {
            return Some(Act::Map(y));
        }
        let mut act = x;
        for block in &self.blocks[seg.blocks()] {
            act = block.forward(act, simd)?;
        }
        Some(act)
    }

    /// The class scores for a batch of images.
    pub(crate) fn forward(&self, x: Tensor<4>, simd: Simd) -> Option<Tensor<2>> {
        let mut act = Act::Map(x);
        for seg in self.segments() {
            act = self.forward_segment(seg, act, simd)?;
        }
        match act {
            Act::Flat(t) => Some(t),
            Act::Map(_) => None,
        }
    }
}

/// A trainable parameter with values uniform in ±1/√fan_in.
fn uniform_param<const D: usize>(
    rng: &mut ChaCha8Rng,
    shape: [usize; D],
    fan_in: usize,
    device: &Device,
) -> Param<Tensor<D>> {
    let bound = 1.0 / (fan_in.max(1) as f32).sqrt();
    let n: usize = shape.iter().product();
    let values: Vec<f32> = (0..n).map(|_| rng.random_range(-bound..bound)).collect();
    Param::from_tensor(Tensor::from_data(TensorData::new(values, shape), device))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::tests::{NormCase, assert_close, grad_of, vec_of};

    #[test]
    fn contiguous_batch_norm_matches_burns_in_values_gradients_and_running_statistics() {
        let case = NormCase::new(3);
        let (ours, theirs) = (case.bn.clone(), case.bn.clone());
        let (x1, x2) = (case.input(), case.input());
        let y1 = batch_norm_train(&ours, x1.clone(), Simd::detect());
        let y2 = theirs.forward(x2.clone());
        assert_close(&vec_of(y1.clone()), &vec_of(y2.clone()), "output");
        let g1 = (y1 * case.weights.clone()).sum().backward();
        let g2 = (y2 * case.weights.clone()).sum().backward();
        assert_close(&grad_of(&x1, &g1), &grad_of(&x2, &g2), "input gradient");
        let pgrad = |p: &Param<Tensor<1>>, g: &burn::tensor::Gradients| -> Vec<f32> {
            grad_of(&p.val(), g)
        };
        for (a, b, what) in [
            (pgrad(&ours.gamma, &g1), pgrad(&theirs.gamma, &g2), "gamma"),
            (pgrad(&ours.beta, &g1), pgrad(&theirs.beta, &g2), "beta"),
            (
                vec_of(ours.running_mean.value_sync()),
                vec_of(theirs.running_mean.value_sync()),
                "running mean",
            ),
            (
                vec_of(ours.running_var.value_sync()),
                vec_of(theirs.running_var.value_sync()),
                "running variance",
            ),
        ] {
            assert_eq!(a.len(), 3, "{what}");
            assert_close(&a, &b, what);
        }
    }

    /// The layers one by one through Burn's own modules (batch norm in training mode).
    fn burns_forward(net: &Net, x: Tensor<4>) -> Tensor<2> {
        let mut act = Act::Map(x);
        for block in &net.blocks {
            act = match (block, act) {
                (Block::Conv(m), Act::Map(t)) => Act::Map(m.forward(t)),
                (Block::Norm(m), Act::Map(t)) => Act::Map(m.forward(t)),
                (Block::Relu(m), Act::Map(t)) => Act::Map(m.forward(t)),
                (Block::Pool(m), Act::Map(t)) => Act::Map(m.forward(t)),
                (Block::Flatten(_), Act::Map(t)) => {
                    let [n, c, h, w] = t.dims();
                    Act::Flat(t.reshape([n, c * h * w]))
                }
                (Block::Linear(m), Act::Flat(t)) => Act::Flat(m.forward(t)),
                _ => panic!("unexpected block"),
            };
        }
        match act {
            Act::Flat(t) => t,
            Act::Map(_) => panic!("no scores"),
        }
    }

    /// Every trainable parameter's gradient, block by block.
    fn parameter_grads(net: &Net, g: &burn::tensor::Gradients) -> Vec<Vec<f32>> {
        let mut out = Vec::new();
        for block in &net.blocks {
            match block {
                Block::Conv(m) => {
                    out.push(grad_of(&m.weight.val(), g));
                    out.extend(m.bias.as_ref().map(|b| grad_of(&b.val(), g)));
                }
                Block::Norm(m) => {
                    out.push(grad_of(&m.gamma.val(), g));
                    out.push(grad_of(&m.beta.val(), g));
                }
                Block::Linear(m) => {
                    out.push(grad_of(&m.weight.val(), g));
                    out.extend(m.bias.as_ref().map(|b| grad_of(&b.val(), g)));
                }
                _ => {}
            }
        }
        out
    }

    /// The whole network as the engine runs it (fused batch norm + ReLU + pooling, own
    /// convolution and linear layers) against Burn's modules layer by layer: scores and every
    /// parameter's gradient, with and without ReLU, at every vector level up to the detected
    /// one.
    #[test]
    fn the_engines_network_matches_burns_modules() {
        use greenlab_model::{Architecture, InputShape};
        let device = Device::flex().autodiff();
        let input = InputShape {
            channels: 1,
            height: 12,
            width: 12,
        };
        for relu in [true, false] {
            let spec = Architecture::SimpleCnn {
                conv: 2,
                linear: 2,
                relu,
            }
            .spec(input, 4)
            .unwrap();
            let net = Net::new(&spec, 5, &device);
            let fused = net
                .segments()
                .iter()
                .filter(|s| s.blocks().len() > 1)
                .count();
            assert_eq!(
                fused, 2,
                "both conv blocks fuse batch norm, ReLU and pooling"
            );
            let mut rng = ChaCha8Rng::seed_from_u64(9);
            let values: Vec<f32> = (0..6 * 144).map(|_| rng.random_range(0.0..1.0)).collect();
            let x =
                || Tensor::<4>::from_data(TensorData::new(values.clone(), [6, 1, 12, 12]), &device);
            let weights = Tensor::<2>::from_data(
                TensorData::new(
                    (0..24).map(|i| (i % 5) as f32 - 2.0).collect::<Vec<_>>(),
                    [6, 4],
                ),
                &device,
            );
            for level in [
                crate::SimdLevel::Baseline,
                crate::SimdLevel::Avx2,
                crate::SimdLevel::Avx512,
            ] {
                let (ours, theirs) = (net.clone(), net.clone());
                let y1 = ours
                    .forward(x(), Simd::limited_to(level))
                    .unwrap_or_else(|| panic!("scores"));
                let y2 = burns_forward(&theirs, x());
                assert_close(&vec_of(y1.clone()), &vec_of(y2.clone()), "scores");
                let g1 = (y1 * weights.clone()).sum().backward();
                let g2 = (y2 * weights.clone()).sum().backward();
                let (p1, p2) = (parameter_grads(&ours, &g1), parameter_grads(&theirs, &g2));
                assert_eq!(p1.len(), p2.len());
                for (k, (a, b)) in p1.iter().zip(&p2).enumerate() {
                    assert_close(a, b, &format!("parameter {k} (relu {relu}, {level})"));
                }
            }
        }
    }
}
