//! A [`NetworkSpec`] as libtorch tensors: one [`Op`] per layer, parameters in a `VarStore`.

use greenlab_engine::EngineError;
use greenlab_model::{Layer, NetworkSpec};
use tch::nn::{Init, Path};
use tch::{TchError, Tensor};

/// Batch-norm's defaults in PyTorch (`nn.BatchNorm2d`).
const BN_MOMENTUM: f64 = 0.1;
const BN_EPS: f64 = 1e-5;

/// One layer with its parameters (tensors share storage with the `VarStore`).
pub(crate) enum Op {
    Conv {
        weight: Tensor,
        bias: Tensor,
        stride: i64,
        padding: i64,
    },
    BatchNorm {
        weight: Tensor,
        bias: Tensor,
        running_mean: Tensor,
        running_var: Tensor,
    },
    Relu,
    MaxPool {
        kernel: i64,
        stride: i64,
    },
    Flatten,
    Linear {
        weight: Tensor,
        bias: Tensor,
    },
}

/// PyTorch's default for conv and linear layers: `kaiming_uniform_(a = √5)` for the weight and
/// `U(-1/√fan_in, 1/√fan_in)` for the bias, which comes to the same bound for both. Drawn in
/// PyTorch's order (weight, then bias, layer by layer), so a seeded network matches the one
/// `torch.manual_seed` + `nn.Conv2d`/`nn.Linear` would build from the same generator.
fn default_init(fan_in: usize) -> Init {
    let bound = 1.0 / (fan_in.max(1) as f64).sqrt();
    Init::Uniform {
        lo: -bound,
        up: bound,
    }
}

fn dim(n: usize) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Op {
    /// Creates the layer's parameters under `path`.
    pub(crate) fn new(layer: &Layer, path: &Path) -> Result<Op, TchError> {
        Ok(match *layer {
            Layer::Conv2d {
                in_channels,
                out_channels,
                kernel,
                stride,
                padding,
            } => {
                let init = default_init(in_channels * kernel * kernel);
                let shape = [
                    dim(out_channels),
                    dim(in_channels),
                    dim(kernel),
                    dim(kernel),
                ];
                let weight = path.f_var("weight", &shape, init)?;
                let bias = path.f_var("bias", &[dim(out_channels)], init)?;
                Op::Conv {
                    weight,
                    bias,
                    stride: dim(stride),
                    padding: dim(padding),
                }
            }
            Layer::BatchNorm2d { features } => Op::BatchNorm {
                weight: path.f_var("weight", &[dim(features)], Init::Const(1.0))?,
                bias: path.f_var("bias", &[dim(features)], Init::Const(0.0))?,
                running_mean: path.f_zeros_no_train("running_mean", &[dim(features)])?,
                running_var: path.f_ones_no_train("running_var", &[dim(features)])?,
            },
            Layer::Relu => Op::Relu,
            Layer::MaxPool2d { kernel, stride } => Op::MaxPool {
                kernel: dim(kernel),
                stride: dim(stride),
            },
            Layer::Flatten => Op::Flatten,
            Layer::Linear {
                in_features,
                out_features,
            } => {
                let init = default_init(in_features);
                let weight = path.f_var("weight", &[dim(out_features), dim(in_features)], init)?;
                let bias = path.f_var("bias", &[dim(out_features)], init)?;
                Op::Linear { weight, bias }
            }
        })
    }

    /// Runs the layer; `train` selects batch statistics (and updates the running ones) in
    /// batch-norm.
    pub(crate) fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor, TchError> {
        match self {
            Op::Conv {
                weight,
                bias,
                stride,
                padding,
            } => x.f_conv2d(
                weight,
                Some(bias),
                [*stride, *stride],
                [*padding, *padding],
                [1, 1],
                1,
            ),
            Op::BatchNorm {
                weight,
                bias,
                running_mean,
                running_var,
            } => x.f_batch_norm(
                Some(weight),
                Some(bias),
                Some(running_mean),
                Some(running_var),
                train,
                BN_MOMENTUM,
                BN_EPS,
                true,
            ),
            Op::Relu => x.f_relu(),
            Op::MaxPool { kernel, stride } => x.f_max_pool2d(
                [*kernel, *kernel],
                [*stride, *stride],
                [0, 0],
                [1, 1],
                false,
            ),
            Op::Flatten => x.f_flatten(1, -1),
            Op::Linear { weight, bias } => x.f_linear(weight, Some(bias)),
        }
    }
}

/// Builds the layers of `spec` under `root`, in order.
pub(crate) fn build(spec: &NetworkSpec, root: &Path) -> Result<Vec<Op>, EngineError> {
    spec.layers
        .iter()
        .map(|l| {
            Op::new(&l.layer, &root.sub(l.index.to_string())).map_err(|e| EngineError::Build {
                network: spec.name.clone(),
                message: format!("layer {} ({}): {e}", l.index, l.layer.kind()),
            })
        })
        .collect()
}

/// Runs all layers.
pub(crate) fn forward(ops: &[Op], x: &Tensor, train: bool) -> Result<Tensor, TchError> {
    let mut iter = ops.iter();
    let Some(first) = iter.next() else {
        return Ok(x.shallow_clone());
    };
    let mut y = first.forward(x, train)?;
    for op in iter {
        y = op.forward(&y, train)?;
    }
    Ok(y)
}
