//! greenlab-model: networks as data.
//!
//! A [`NetworkSpec`] is a flat list of [`Layer`]s with their shapes resolved, built from an
//! [`Architecture`] (the paper's SimpleCNN, DensePolyNN and DenseLinearNN) and an input shape.
//! Engines (Burn, libtorch) turn a spec into a trainable network; this crate only describes
//! networks and counts their parameters and FLOPs. It knows nothing of tensors.
//!
//! ```
//! use greenlab_model::{Architecture, InputShape};
//! let spec = Architecture::SimpleCnn { conv: 2, linear: 3, relu: true }
//!     .spec(InputShape { channels: 1, height: 28, width: 28 }, 10)
//!     .unwrap();
//! assert_eq!(spec.output_features(), 10);
//! assert!(spec.parameter_count() > 0);
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

/// What can be wrong with an architecture.
#[derive(Debug, thiserror::Error, PartialEq)]
#[non_exhaustive]
pub enum ModelError {
    /// A count or size is out of range.
    #[error("invalid architecture: {0}")]
    Invalid(String),
    /// The input is too small for the requested number of pooling stages.
    #[error(
        "input {height}x{width} is too small for {conv} conv blocks (each halves it); use fewer conv blocks"
    )]
    InputTooSmall {
        /// Input height.
        height: usize,
        /// Input width.
        width: usize,
        /// Requested conv blocks.
        conv: usize,
    },
}

/// Shape of one input example: channels × height × width.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputShape {
    /// Channels (1 for MNIST, 3 for CIFAR-10).
    pub channels: usize,
    /// Height in pixels.
    pub height: usize,
    /// Width in pixels.
    pub width: usize,
}

impl InputShape {
    /// Number of values per example.
    pub fn len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Whether the shape holds no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The type of a layer, as used when attributing energy (the paper's "layer types").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LayerKind {
    /// 2-D convolution.
    Conv,
    /// Batch normalisation.
    BatchNorm,
    /// Rectified linear unit.
    Relu,
    /// Max pooling.
    Pool,
    /// Reshape to a vector.
    Flatten,
    /// Fully connected layer.
    Linear,
}

impl LayerKind {
    /// Stable lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            LayerKind::Conv => "conv",
            LayerKind::BatchNorm => "batch-norm",
            LayerKind::Relu => "relu",
            LayerKind::Pool => "pool",
            LayerKind::Flatten => "flatten",
            LayerKind::Linear => "linear",
        }
    }
}

impl fmt::Display for LayerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One layer with its sizes resolved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Layer {
    /// Square 2-D convolution with bias.
    Conv2d {
        /// Input channels.
        in_channels: usize,
        /// Output channels.
        out_channels: usize,
        /// Kernel size (square).
        kernel: usize,
        /// Stride.
        stride: usize,
        /// Zero padding on each side.
        padding: usize,
    },
    /// Batch normalisation over channels (affine, running statistics).
    BatchNorm2d {
        /// Channels.
        features: usize,
    },
    /// Element-wise max(0, x).
    Relu,
    /// Square max pooling.
    MaxPool2d {
        /// Window size.
        kernel: usize,
        /// Stride.
        stride: usize,
    },
    /// Flattens channels × height × width into one vector.
    Flatten,
    /// Fully connected layer with bias.
    Linear {
        /// Input features.
        in_features: usize,
        /// Output features.
        out_features: usize,
    },
}

/// Shape of the activations between layers: a feature map or a vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Activation {
    /// channels × height × width.
    Map(InputShape),
    /// A vector of features.
    Vector(usize),
}

impl Activation {
    /// Number of values per example.
    pub fn len(&self) -> usize {
        match self {
            Activation::Map(s) => s.len(),
            Activation::Vector(n) => *n,
        }
    }

    /// Whether it holds no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Layer {
    /// The layer's type.
    pub fn kind(&self) -> LayerKind {
        match self {
            Layer::Conv2d { .. } => LayerKind::Conv,
            Layer::BatchNorm2d { .. } => LayerKind::BatchNorm,
            Layer::Relu => LayerKind::Relu,
            Layer::MaxPool2d { .. } => LayerKind::Pool,
            Layer::Flatten => LayerKind::Flatten,
            Layer::Linear { .. } => LayerKind::Linear,
        }
    }

    /// Trainable parameters (batch-norm: scale and shift; running statistics excluded).
    pub fn parameter_count(&self) -> usize {
        match self {
            Layer::Conv2d {
                in_channels,
                out_channels,
                kernel,
                ..
            } => out_channels * in_channels * kernel * kernel + out_channels,
            Layer::BatchNorm2d { features } => 2 * features,
            Layer::Linear {
                in_features,
                out_features,
            } => in_features * out_features + out_features,
            Layer::Relu | Layer::MaxPool2d { .. } | Layer::Flatten => 0,
        }
    }

    /// Output shape for an input shape, or `None` if the layer cannot take that input.
    pub fn output(&self, input: Activation) -> Option<Activation> {
        match (self, input) {
            (
                Layer::Conv2d {
                    in_channels,
                    out_channels,
                    kernel,
                    stride,
                    padding,
                },
                Activation::Map(s),
            ) => {
                if s.channels != *in_channels
                    || *stride == 0
                    || s.height + 2 * padding < *kernel
                    || s.width + 2 * padding < *kernel
                {
                    return None;
                }
                Some(Activation::Map(InputShape {
                    channels: *out_channels,
                    height: (s.height + 2 * padding - kernel) / stride + 1,
                    width: (s.width + 2 * padding - kernel) / stride + 1,
                }))
            }
            (Layer::BatchNorm2d { features }, Activation::Map(s)) => {
                (s.channels == *features).then_some(input)
            }
            (Layer::Relu, a) => Some(a),
            (Layer::MaxPool2d { kernel, stride }, Activation::Map(s)) => {
                if *stride == 0 || s.height < *kernel || s.width < *kernel {
                    return None;
                }
                Some(Activation::Map(InputShape {
                    channels: s.channels,
                    height: (s.height - kernel) / stride + 1,
                    width: (s.width - kernel) / stride + 1,
                }))
            }
            (Layer::Flatten, a) => Some(Activation::Vector(a.len())),
            (
                Layer::Linear {
                    in_features,
                    out_features,
                },
                Activation::Vector(n),
            ) => (n == *in_features).then_some(Activation::Vector(*out_features)),
            _ => None,
        }
    }

    /// Forward-pass floating-point operations for one example (a multiply-add counts as 2),
    /// given the layer's output shape. Backward is about twice this for layers with
    /// weights (gradients for inputs and for weights).
    pub fn forward_flops(&self, output: Activation) -> u64 {
        let out = output.len() as u64;
        match self {
            Layer::Conv2d {
                in_channels,
                kernel,
                ..
            } => out * (2 * (*in_channels * kernel * kernel) as u64 + 1),
            // normalise (subtract, divide) then scale and shift
            Layer::BatchNorm2d { .. } => 4 * out,
            Layer::Relu => out,
            Layer::MaxPool2d { kernel, .. } => out * (kernel * kernel) as u64,
            Layer::Flatten => 0,
            Layer::Linear { in_features, .. } => out * (2 * *in_features as u64 + 1),
        }
    }
}

/// One layer of a spec with its resolved shapes and costs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResolvedLayer {
    /// Position in the network, from 0.
    pub index: usize,
    /// The layer.
    pub layer: Layer,
    /// Input shape (per example).
    pub input: Activation,
    /// Output shape (per example).
    pub output: Activation,
    /// Trainable parameters.
    pub parameters: usize,
    /// Forward FLOPs per example.
    pub forward_flops: u64,
}

/// A network with every shape resolved: what an engine builds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NetworkSpec {
    /// Human-readable name, e.g. `SimpleCNN(conv=2, linear=3, relu=on)`.
    pub name: String,
    /// Input shape per example.
    pub input: InputShape,
    /// Number of classes (size of the last layer).
    pub classes: usize,
    /// Layers, in order.
    pub layers: Vec<ResolvedLayer>,
}

impl NetworkSpec {
    /// Resolves shapes for a list of layers; fails if a layer cannot take its input.
    pub fn new(
        name: impl Into<String>,
        input: InputShape,
        classes: usize,
        layers: Vec<Layer>,
    ) -> Result<Self, ModelError> {
        let mut shape = Activation::Map(input);
        let mut resolved = Vec::with_capacity(layers.len());
        for (index, layer) in layers.into_iter().enumerate() {
            let output = layer.output(shape).ok_or_else(|| {
                ModelError::Invalid(format!(
                    "layer {index} ({layer:?}) cannot take input {shape:?}"
                ))
            })?;
            resolved.push(ResolvedLayer {
                index,
                parameters: layer.parameter_count(),
                forward_flops: layer.forward_flops(output),
                layer,
                input: shape,
                output,
            });
            shape = output;
        }
        if shape != Activation::Vector(classes) {
            return Err(ModelError::Invalid(format!(
                "the network ends in {shape:?}, expected {classes} class scores"
            )));
        }
        Ok(NetworkSpec {
            name: name.into(),
            input,
            classes,
            layers: resolved,
        })
    }

    /// Size of the output vector (the number of classes).
    pub fn output_features(&self) -> usize {
        self.classes
    }

    /// Trainable parameters of the whole network.
    pub fn parameter_count(&self) -> usize {
        self.layers.iter().map(|l| l.parameters).sum()
    }

    /// Forward FLOPs per example of the whole network.
    pub fn forward_flops(&self) -> u64 {
        self.layers.iter().map(|l| l.forward_flops).sum()
    }

    /// A table of layers with shapes, parameters and FLOPs, for `--describe`.
    pub fn describe(&self) -> String {
        use std::fmt::Write;
        let mut s = format!(
            "{} — input {}x{}x{}, {} classes\n",
            self.name, self.input.channels, self.input.height, self.input.width, self.classes
        );
        let _ = writeln!(
            s,
            "{:>3}  {:<10} {:<22} {:<14} {:>12} {:>16}",
            "#", "type", "layer", "output", "params", "fwd FLOPs/ex"
        );
        for l in &self.layers {
            let detail = match &l.layer {
                Layer::Conv2d {
                    in_channels,
                    out_channels,
                    kernel,
                    ..
                } => format!("{in_channels}→{out_channels} {kernel}x{kernel}"),
                Layer::BatchNorm2d { features } => format!("{features}"),
                Layer::MaxPool2d { kernel, stride } => format!("{kernel}x{kernel}/{stride}"),
                Layer::Linear {
                    in_features,
                    out_features,
                } => format!("{in_features}→{out_features}"),
                Layer::Relu | Layer::Flatten => String::new(),
            };
            let out = match l.output {
                Activation::Map(m) => format!("{}x{}x{}", m.channels, m.height, m.width),
                Activation::Vector(n) => format!("{n}"),
            };
            let _ = writeln!(
                s,
                "{:>3}  {:<10} {:<22} {:<14} {:>12} {:>16}",
                l.index,
                l.layer.kind(),
                detail,
                out,
                l.parameters,
                l.forward_flops
            );
        }
        let _ = writeln!(
            s,
            "total: {} parameters, {} forward FLOPs per example",
            self.parameter_count(),
            self.forward_flops()
        );
        s
    }
}

/// The paper's networks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "kebab-case")]
pub enum Architecture {
    /// `conv` blocks of Conv2d(3×3, channels ×3 each block) → BatchNorm → ReLU (if `relu`) →
    /// MaxPool(2); flatten; `linear − 1` halving linear layers (no activation); Linear(classes).
    SimpleCnn {
        /// Number of conv blocks (≥ 0).
        conv: usize,
        /// Number of linear layers including the classifier (≥ 1).
        linear: usize,
        /// Whether conv blocks have a ReLU.
        relu: bool,
    },
    /// Flatten; `linear − 1` halving linear layers; Linear(classes).
    DensePoly {
        /// Number of linear layers including the classifier (≥ 1).
        linear: usize,
    },
    /// Flatten; `linear − 1` linear layers of linearly decreasing width; Linear(classes).
    DenseLinear {
        /// Number of linear layers including the classifier (≥ 1).
        linear: usize,
    },
}

impl Architecture {
    /// Short name as used on the command line (`simple-cnn`, `dense-poly`, `dense-linear`).
    pub fn model_name(&self) -> &'static str {
        match self {
            Architecture::SimpleCnn { .. } => "simple-cnn",
            Architecture::DensePoly { .. } => "dense-poly",
            Architecture::DenseLinear { .. } => "dense-linear",
        }
    }

    /// Builds the spec for an input shape and a number of classes.
    ///
    /// Widths follow the paper's public code: conv block `d` (from 0) has `C·3^(d+1)` output
    /// channels where `C` is the number of input channels; after flattening `F = C'·H'·W'`
    /// features (with `C'` the channels of the last feature map), hidden linear layer `d` has
    /// `max(⌊F / 2^(d+1)⌋, C')` outputs (DensePolyNN) or `max(⌊F − (d+1)·F/m⌋, C')`
    /// (DenseLinearNN, `m` linear layers); the classifier maps to `classes`.
    pub fn spec(&self, input: InputShape, classes: usize) -> Result<NetworkSpec, ModelError> {
        if classes < 2 {
            return Err(ModelError::Invalid(format!(
                "need at least 2 classes, got {classes}"
            )));
        }
        if input.is_empty() {
            return Err(ModelError::Invalid("the input shape is empty".into()));
        }
        let mut layers = Vec::new();
        let (conv, linear) = match *self {
            Architecture::SimpleCnn { conv, linear, .. } => (conv, linear),
            Architecture::DensePoly { linear } | Architecture::DenseLinear { linear } => {
                (0, linear)
            }
        };
        if linear == 0 {
            return Err(ModelError::Invalid(
                "need at least 1 linear layer (the classifier)".into(),
            ));
        }
        if linear > 32 || conv > 16 {
            return Err(ModelError::Invalid(format!(
                "conv={conv}, linear={linear} is beyond what greenlab supports (conv ≤ 16, linear ≤ 32)"
            )));
        }
        let mut shape = input;
        if let Architecture::SimpleCnn { relu, .. } = *self {
            for d in 0..conv {
                if shape.height < 2 || shape.width < 2 {
                    return Err(ModelError::InputTooSmall {
                        height: input.height,
                        width: input.width,
                        conv,
                    });
                }
                let out_channels = input.channels * 3usize.pow(d as u32 + 1);
                layers.push(Layer::Conv2d {
                    in_channels: shape.channels,
                    out_channels,
                    kernel: 3,
                    stride: 1,
                    padding: 1,
                });
                layers.push(Layer::BatchNorm2d {
                    features: out_channels,
                });
                if relu {
                    layers.push(Layer::Relu);
                }
                layers.push(Layer::MaxPool2d {
                    kernel: 2,
                    stride: 2,
                });
                shape = InputShape {
                    channels: out_channels,
                    height: shape.height / 2,
                    width: shape.width / 2,
                };
            }
        }
        layers.push(Layer::Flatten);
        let features = shape.len();
        let floor = shape.channels;
        let mut width = features;
        for d in 0..linear - 1 {
            let out = match self {
                Architecture::DenseLinear { .. } => {
                    let step = features as f64 / linear as f64;
                    ((features as f64 - (d + 1) as f64 * step).floor() as usize).max(floor)
                }
                _ => (features >> (d + 1)).max(floor),
            };
            layers.push(Layer::Linear {
                in_features: width,
                out_features: out,
            });
            width = out;
        }
        layers.push(Layer::Linear {
            in_features: width,
            out_features: classes,
        });
        NetworkSpec::new(self.to_string(), input, classes, layers)
    }
}

impl fmt::Display for Architecture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Architecture::SimpleCnn { conv, linear, relu } => {
                write!(
                    f,
                    "SimpleCNN(conv={conv}, linear={linear}, relu={})",
                    if *relu { "on" } else { "off" }
                )
            }
            Architecture::DensePoly { linear } => write!(f, "DensePolyNN(linear={linear})"),
            Architecture::DenseLinear { linear } => write!(f, "DenseLinearNN(linear={linear})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FMNIST: InputShape = InputShape {
        channels: 1,
        height: 28,
        width: 28,
    };

    #[test]
    fn simple_cnn_default_matches_the_paper() {
        let spec = Architecture::SimpleCnn {
            conv: 2,
            linear: 3,
            relu: true,
        }
        .spec(FMNIST, 10)
        .unwrap();
        let kinds: Vec<_> = spec.layers.iter().map(|l| l.layer.kind()).collect();
        use LayerKind::*;
        assert_eq!(
            kinds,
            vec![
                Conv, BatchNorm, Relu, Pool, Conv, BatchNorm, Relu, Pool, Flatten, Linear, Linear,
                Linear
            ]
        );
        // 1→3→9 channels, 28→14→7: 9·7·7 = 441 features, then 220, 110, 10.
        assert_eq!(spec.layers[8].output, Activation::Vector(441));
        let widths: Vec<_> = spec
            .layers
            .iter()
            .filter_map(|l| match l.layer {
                Layer::Linear { out_features, .. } => Some(out_features),
                _ => None,
            })
            .collect();
        assert_eq!(widths, vec![220, 110, 10]);
        // conv1: 3·1·9+3 = 30; bn1: 6; conv2: 9·3·9+9 = 252; bn2: 18; 441·220+220; 220·110+110; 110·10+10
        assert_eq!(
            spec.parameter_count(),
            30 + 6 + 252 + 18 + 441 * 220 + 220 + 220 * 110 + 110 + 1110
        );
    }

    #[test]
    fn relu_off_removes_only_relus() {
        let on = Architecture::SimpleCnn {
            conv: 4,
            linear: 7,
            relu: true,
        }
        .spec(FMNIST, 10)
        .unwrap();
        let off = Architecture::SimpleCnn {
            conv: 4,
            linear: 7,
            relu: false,
        }
        .spec(FMNIST, 10)
        .unwrap();
        assert_eq!(on.layers.len() - off.layers.len(), 4);
        assert_eq!(on.parameter_count(), off.parameter_count());
        // 28→14→7→3→1 with 81 channels: hidden widths never drop below 81.
        assert_eq!(
            on.layers
                .iter()
                .filter(|l| l.layer.kind() == LayerKind::Linear)
                .count(),
            7
        );
    }

    #[test]
    fn dense_linear_decreases_linearly() {
        let spec = Architecture::DenseLinear { linear: 3 }
            .spec(FMNIST, 10)
            .unwrap();
        let widths: Vec<_> = spec
            .layers
            .iter()
            .filter_map(|l| match l.layer {
                Layer::Linear { out_features, .. } => Some(out_features),
                _ => None,
            })
            .collect();
        assert_eq!(widths, vec![522, 261, 10]);
        let poly = Architecture::DensePoly { linear: 3 }
            .spec(FMNIST, 10)
            .unwrap();
        assert_eq!(poly.layers.last().unwrap().input, Activation::Vector(196));
    }

    #[test]
    fn conv_flops_dominate_and_are_counted() {
        let spec = Architecture::SimpleCnn {
            conv: 1,
            linear: 1,
            relu: true,
        }
        .spec(FMNIST, 10)
        .unwrap();
        // conv 1→3, 3x3, 28x28 output: 3·28·28·(2·9+1)
        assert_eq!(spec.layers[0].forward_flops, 3 * 28 * 28 * 19);
    }

    #[test]
    fn bad_architectures_are_rejected() {
        assert!(
            Architecture::DensePoly { linear: 0 }
                .spec(FMNIST, 10)
                .is_err()
        );
        assert!(
            Architecture::SimpleCnn {
                conv: 6,
                linear: 1,
                relu: true
            }
            .spec(FMNIST, 10)
            .is_err()
        );
        assert!(
            Architecture::DensePoly { linear: 2 }
                .spec(FMNIST, 1)
                .is_err()
        );
    }
}
