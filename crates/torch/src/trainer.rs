//! The trainer: a built network, its Adam state, training steps, evaluation and profiling.

use std::time::Instant;

use greenlab_data::Batch;
use greenlab_engine::{
    AdamConfig, EngineError, EvalStats, LayerTiming, StepProfile, StepStats, Trainer,
    prefix_differences,
};
use greenlab_meter::Seconds;
use greenlab_model::{InputShape, LayerKind, NetworkSpec};
use tch::nn::VarStore;
use tch::{COptimizer, Device, Kind, Reduction, TchError, Tensor};

use crate::backend;
use crate::net::{self, Op};

/// A network on one device with libtorch's Adam.
pub(crate) struct TorchTrainer {
    input: InputShape,
    classes: usize,
    device: Device,
    /// Owns the parameters and batch-norm statistics; `ops` hold handles to the same tensors.
    _vars: VarStore,
    ops: Vec<Op>,
    /// The type of each layer, in order, for profiles.
    kinds: Vec<LayerKind>,
    optimizer: COptimizer,
    parameters: usize,
}

impl TorchTrainer {
    /// Builds `spec` with parameters drawn after `tch::manual_seed(seed)`.
    ///
    /// Parameters are created on the CPU and then moved, as PyTorch users do
    /// (`Net().to(device)`), so a seed gives the same initial network on every device.
    pub(crate) fn new(
        spec: &NetworkSpec,
        adam: &AdamConfig,
        seed: u64,
        device: Device,
    ) -> Result<TorchTrainer, EngineError> {
        let build_error = |e: TchError| EngineError::Build {
            network: spec.name.clone(),
            message: e.to_string(),
        };
        // libtorch takes an i64 seed; the bit pattern is kept, so every u64 is a distinct seed.
        tch::manual_seed(seed as i64);
        let mut vars = VarStore::new(Device::Cpu);
        let ops = net::build(spec, &vars.root())?;
        if device != Device::Cpu {
            vars.set_device(device);
        }
        let mut optimizer = COptimizer::adam(
            adam.lr,
            adam.beta1,
            adam.beta2,
            adam.weight_decay,
            adam.eps,
            false,
        )
        .map_err(build_error)?;
        let trainable = vars.trainable_variables();
        for var in &trainable {
            optimizer.add_parameters(var, 0).map_err(build_error)?;
        }
        let parameters = trainable.iter().map(Tensor::numel).sum();
        Ok(TorchTrainer {
            input: spec.input,
            classes: spec.classes,
            device,
            _vars: vars,
            ops,
            kinds: spec.layers.iter().map(|l| l.layer.kind()).collect(),
            optimizer,
            parameters,
        })
    }

    /// Checks a batch against the network and copies it to the device.
    fn tensors(&self, batch: &Batch) -> Result<(Tensor, Tensor), EngineError> {
        if batch.size == 0 {
            return Err(EngineError::Batch("the batch is empty".into()));
        }
        if batch.labels.len() != batch.size {
            return Err(EngineError::Batch(format!(
                "the batch says {} examples but has {} labels",
                batch.size,
                batch.labels.len()
            )));
        }
        let per_example = self.input.len();
        if batch.images.len() != batch.size * per_example {
            return Err(EngineError::Batch(format!(
                "{} examples of {}x{}x{} need {} pixel values, the batch has {}",
                batch.size,
                self.input.channels,
                self.input.height,
                self.input.width,
                batch.size * per_example,
                batch.images.len()
            )));
        }
        if let Some(&label) = batch
            .labels
            .iter()
            .find(|&&l| usize::from(l) >= self.classes)
        {
            return Err(EngineError::Batch(format!(
                "label {label} is out of range for {} classes",
                self.classes
            )));
        }
        let shape = [
            batch.size as i64,
            self.input.channels as i64,
            self.input.height as i64,
            self.input.width as i64,
        ];
        let labels: Vec<i64> = batch.labels.iter().map(|&l| i64::from(l)).collect();
        let to_device = |t: Tensor| -> Result<Tensor, TchError> {
            if self.device == Device::Cpu {
                Ok(t)
            } else {
                t.f_to_device(self.device)
            }
        };
        let images = Tensor::f_from_slice(&batch.images)
            .and_then(|t| t.f_view(shape))
            .and_then(to_device)
            .map_err(backend)?;
        let labels = Tensor::f_from_slice(&labels)
            .and_then(to_device)
            .map_err(backend)?;
        Ok((images, labels))
    }

    fn sync(&self) {
        sync(self.device);
    }

    /// A training step; returns the loss (as a tensor) and the correct predictions.
    fn step(&mut self, images: &Tensor, labels: &Tensor) -> Result<StepStats, TchError> {
        let logits = net::forward(&self.ops, images, true)?;
        let loss = cross_entropy(&logits, labels)?;
        let correct = tch::no_grad(|| count_correct(&logits, labels))?;
        self.optimizer.zero_grad()?;
        loss.f_backward()?;
        self.optimizer.step()?;
        Ok(StepStats {
            loss: loss.f_double_value(&[])?,
            correct,
        })
    }

    /// The profiled step; see [`Trainer::profile_step`] below for the method.
    fn profiled(&mut self, images: &Tensor, labels: &Tensor) -> Result<StepProfile, TchError> {
        let n = self.ops.len();
        let device = self.device;
        // Forward, one layer at a time, on the real graph.
        let mut forward = Vec::with_capacity(n);
        let mut current = images.shallow_clone();
        for op in &self.ops {
            let (output, time) = timed(device, || op.forward(&current, true))?;
            current = output;
            forward.push(time);
        }
        // Loss, forward and backward, on a leaf holding the logits.
        let logits = current.f_detach()?.set_requires_grad(true);
        drop(current);
        let ((), loss_time) = timed(device, || cross_entropy(&logits, labels)?.f_backward())?;
        // Backward, by differences of prefixes: the network up to layer k runs forward from
        // the images (untimed), its output is summed and the backward pass through the whole
        // prefix is timed; layer k's backward is that minus the prefix up to layer k − 1. The
        // sum's own gradient, timed on a leaf of the same shape, is taken off each prefix.
        let mut through = Vec::with_capacity(n);
        for k in 0..n {
            self.optimizer.zero_grad()?;
            let out = net::forward(&self.ops[..=k], images, true)?;
            let leaf = out.f_detach()?.set_requires_grad(true);
            let sum = out.f_sum(Kind::Float)?;
            drop(out);
            let ((), prefix) = timed(device, || sum.f_backward())?;
            let sum = leaf.f_sum(Kind::Float)?;
            let ((), baseline) = timed(device, || sum.f_backward())?;
            through.push(prefix.0 - baseline.0);
        }
        let backward = prefix_differences(&through);
        // The gradients of an ordinary step (untimed), so the Adam update timed next is real.
        self.optimizer.zero_grad()?;
        cross_entropy(&net::forward(&self.ops, images, true)?, labels)?.f_backward()?;
        let ((), optimizer) = timed(device, || self.optimizer.step())?;
        let layers = self
            .kinds
            .iter()
            .zip(forward.into_iter().zip(backward))
            .enumerate()
            .map(|(index, (&kind, (forward, backward)))| LayerTiming {
                index,
                kind,
                forward,
                backward: Some(backward),
            })
            .collect();
        Ok(StepProfile {
            layers,
            loss: loss_time,
            optimizer,
            whole_step: Seconds(0.0),
        })
    }
}

/// Waits for the device's queued work (a no-op on the CPU).
fn sync(device: Device) {
    if let Device::Cuda(index) = device {
        tch::Cuda::synchronize(index as i64);
    }
}

/// Runs `f` with `device` synchronised before and after it; returns its result and duration.
fn timed<T>(
    device: Device,
    f: impl FnOnce() -> Result<T, TchError>,
) -> Result<(T, Seconds), TchError> {
    sync(device);
    let start = Instant::now();
    let out = f()?;
    sync(device);
    Ok((out, Seconds::from(start.elapsed())))
}

/// Mean cross-entropy of `logits` against integer `labels`.
fn cross_entropy(logits: &Tensor, labels: &Tensor) -> Result<Tensor, TchError> {
    logits.f_cross_entropy_loss::<Tensor>(labels, None, Reduction::Mean, -100, 0.0)
}

fn count_correct(logits: &Tensor, labels: &Tensor) -> Result<usize, TchError> {
    let correct = logits
        .f_argmax(-1, false)?
        .f_eq_tensor(labels)?
        .f_sum(Kind::Int64)?
        .f_int64_value(&[])?;
    Ok(usize::try_from(correct).unwrap_or(0))
}

impl Trainer for TorchTrainer {
    fn train_step(&mut self, batch: &Batch) -> Result<StepStats, EngineError> {
        let (images, labels) = self.tensors(batch)?;
        self.step(&images, &labels).map_err(backend)
    }

    fn evaluate(&mut self, batch: &Batch) -> Result<EvalStats, EngineError> {
        let (images, labels) = self.tensors(batch)?;
        tch::no_grad(|| -> Result<EvalStats, TchError> {
            let logits = net::forward(&self.ops, &images, false)?;
            let loss_sum = logits
                .f_cross_entropy_loss::<Tensor>(&labels, None, Reduction::Sum, -100, 0.0)?
                .f_double_value(&[])?;
            Ok(EvalStats {
                loss_sum,
                correct: count_correct(&logits, &labels)?,
            })
        })
        .map_err(backend)
    }

    fn parameter_count(&self) -> usize {
        self.parameters
    }

    fn synchronize(&self) -> Result<(), EngineError> {
        self.sync();
        Ok(())
    }

    /// Times each layer's forward and backward pass, the loss and the optimiser, with the
    /// device synchronised around each part, then a whole ordinary step on the same batch.
    ///
    /// Method: the forward is timed layer by layer on the real graph. Each layer's backward
    /// is a difference of prefixes: the network up to layer k is run forward from the images,
    /// its output summed, and the backward through the prefix timed; layer k gets that time
    /// minus the prefix up to k − 1 (the sum's own gradient, timed on a leaf of the same shape,
    /// is taken off; differences clamped at zero). Layers are thus measured inside one graph,
    /// as the real backward runs them, and the parts add up to the whole backward. Before the
    /// timed Adam update the gradients of an ordinary step are computed, so the update is a
    /// real one. Two steps are taken: the profiled one and the ordinary one timed as
    /// `whole_step` (batch-norm running statistics see every profiling forward pass).
    fn profile_step(&mut self, batch: &Batch) -> Result<StepProfile, EngineError> {
        let (images, labels) = self.tensors(batch)?;
        let mut profile = self.profiled(&images, &labels).map_err(backend)?;
        let (_, whole_step) =
            timed(self.device, || self.step(&images, &labels)).map_err(backend)?;
        profile.whole_step = whole_step;
        Ok(profile)
    }
}

#[cfg(test)]
mod tests {
    use greenlab_model::Layer;

    use super::*;

    /// A linear classifier on 2x2 images: Flatten, Linear(4 → 3).
    fn tiny(adam: &AdamConfig) -> TorchTrainer {
        let input = InputShape {
            channels: 1,
            height: 2,
            width: 2,
        };
        let layers = vec![
            Layer::Flatten,
            Layer::Linear {
                in_features: 4,
                out_features: 3,
            },
        ];
        let spec = NetworkSpec::new("tiny", input, 3, layers).unwrap();
        TorchTrainer::new(&spec, adam, 7, Device::Cpu).unwrap()
    }

    fn weight(t: &TorchTrainer) -> Vec<f32> {
        match &t.ops[1] {
            Op::Linear { weight, .. } => Vec::<f32>::try_from(weight.flatten(0, -1)).unwrap(),
            _ => unreachable!("layer 1 is the linear layer"),
        }
    }

    fn batch() -> Batch {
        Batch {
            size: 3,
            images: vec![0.9, 0.1, 0.4, 0.7, 0.2, 0.8, 0.6, 0.3, 0.5, 0.5, 0.9, 0.1],
            labels: vec![0, 1, 2],
        }
    }

    /// The first Adam step moves every weight by lr·g/(|g|+ε) ≈ lr against its gradient.
    #[test]
    fn first_adam_step_moves_each_weight_by_the_learning_rate() {
        let adam = AdamConfig {
            lr: 0.01,
            ..AdamConfig::default()
        };
        let mut t = tiny(&adam);
        let before = weight(&t);
        t.train_step(&batch()).unwrap();
        let after = weight(&t);
        for (b, a) in before.iter().zip(&after) {
            let step = (a - b).abs() as f64;
            assert!(step > 0.99 * adam.lr && step < 1.001 * adam.lr, "{b} → {a}");
        }
    }

    /// Weight decay is torch.optim.Adam's L2 term added to the gradient (not AdamW's
    /// decoupled decay): with a large decay the normalised step is still lr in size, and it
    /// points towards zero.
    #[test]
    fn weight_decay_is_added_to_the_gradient() {
        let adam = AdamConfig {
            lr: 0.01,
            weight_decay: 1e3,
            ..AdamConfig::default()
        };
        let mut t = tiny(&adam);
        let before = weight(&t);
        t.train_step(&batch()).unwrap();
        let after = weight(&t);
        for (b, a) in before.iter().zip(&after) {
            let step = (a - b) as f64;
            assert!(step.abs() < 1.001 * adam.lr, "{b} → {a}");
            assert!(step * f64::from(*b) < 0.0, "{b} → {a} does not shrink");
        }
    }

    /// Same seed, same initial weights; the PyTorch-default bound 1/√fan_in holds.
    #[test]
    fn initialisation_is_seeded_and_bounded() {
        let adam = AdamConfig::default();
        let w = weight(&tiny(&adam));
        assert_eq!(w, weight(&tiny(&adam)));
        assert!(w.iter().all(|x| x.abs() <= 0.5), "{w:?}");
        assert!(w.iter().any(|x| *x != w[0]));
    }

    /// Evaluation uses batch-norm's running statistics; training the batch's own.
    #[test]
    fn batch_norm_switches_between_batch_and_running_statistics() {
        let input = InputShape {
            channels: 1,
            height: 2,
            width: 2,
        };
        let layers = vec![
            Layer::BatchNorm2d { features: 1 },
            Layer::Flatten,
            Layer::Linear {
                in_features: 4,
                out_features: 3,
            },
        ];
        let spec = NetworkSpec::new("bn", input, 3, layers).unwrap();
        let t = TorchTrainer::new(&spec, &AdamConfig::default(), 1, Device::Cpu).unwrap();
        let (images, _) = t.tensors(&batch()).unwrap();
        let images = images * 10.0 + 3.0;
        let bn = &t.ops[0];
        // Fresh running statistics (mean 0, variance 1) leave x as it is (mean about 8) ...
        let eval = tch::no_grad(|| bn.forward(&images, false)).unwrap();
        assert!(eval.mean(Kind::Float).double_value(&[]) > 5.0);
        // ... the batch's own statistics normalise it to mean 0.
        let train = tch::no_grad(|| bn.forward(&images, true)).unwrap();
        assert!(train.mean(Kind::Float).double_value(&[]).abs() < 1e-4);
    }
}
