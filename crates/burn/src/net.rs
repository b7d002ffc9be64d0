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
    pub(crate) fn forward(&self, x: Act) -> Option<Act> {
        Some(match (self, x) {
            (Block::Conv(m), Act::Map(t)) => Act::Map(match (conv_padding(m), &m.bias) {
                (Some(pad), Some(bias)) => {
                    ops::conv2d(&t, m.weight.val(), bias.val(), pad).unwrap_or_else(|| m.forward(t))
                }
                _ => m.forward(t),
            }),
            (Block::Norm(m), Act::Map(t)) => Act::Map(if t.device().is_autodiff() {
                batch_norm_train(m, t)
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
            (Block::Linear(m), Act::Flat(t)) => Act::Flat(m.forward(t)),
            _ => return None,
        })
    }
}

/// Batch normalisation in training mode, as Burn's `BatchNorm::forward` computes it (batch
/// statistics, biased variance, running statistics updated with the layer's momentum). The
/// work is one hand-written autodiff operation
/// ([`ops::batch_norm`]): Burn's generic version is a dozen tensor operations, each a full pass
/// over the activation, which on the flex backend cost a quarter of the training step.
pub(crate) fn batch_norm_train(bn: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    let c = x.dims()[1];
    let device = x.device();
    match ops::batch_norm(&x, bn.gamma.val(), bn.beta.val(), bn.epsilon) {
        Some(out) => {
            let momentum = bn.momentum;
            let update = |state: &burn::module::RunningState<Tensor<1>>, batch: Vec<f32>| {
                let batch = Tensor::<1>::from_data(TensorData::new(batch, [c]), &device);
                let running = state
                    .value_sync()
                    .to_device(&device)
                    .mul_scalar(1.0 - momentum)
                    .add(batch.mul_scalar(momentum));
                state.update(running.detach());
            };
            update(&bn.running_mean, out.mean);
            update(&bn.running_var, out.variance);
            out.y
        }
        // Not a flex tensor: Burn's own layer.
        None => bn.forward(x),
    }
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

    /// The class scores for a batch of images.
    pub(crate) fn forward(&self, x: Tensor<4>) -> Option<Tensor<2>> {
        let mut act = Act::Map(x);
        for block in &self.blocks {
            act = block.forward(act)?;
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
        let y1 = batch_norm_train(&ours, x1.clone());
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
}
