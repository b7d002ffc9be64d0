//! The trainer: a built network, its Adam state, training steps, evaluation and profiling.

use std::time::Instant;

use greenlab_data::{Batch, Dataset};
use greenlab_engine::{
    AdamConfig, EngineError, EvalStats, LayerTiming, PassStats, StepProfile, StepStats, Trainer,
    prefix_differences,
};
use greenlab_meter::Seconds;
use greenlab_model::{InputShape, LayerKind, NetworkSpec};
use tch::nn::VarStore;
use tch::{COptimizer, Device, Kind, Reduction, TchError, Tensor};

use crate::adam::FlatAdam;
use crate::net::{self, Op};
use crate::{StepPlan, backend};

/// Adam, as libtorch implements it per parameter tensor or over one flat buffer.
enum Optimizer {
    Libtorch(COptimizer),
    Flat(FlatAdam),
}

impl Optimizer {
    /// Backpropagates `loss` and applies one update.
    fn backward_step(&mut self, loss: &Tensor) -> Result<(), TchError> {
        match self {
            Optimizer::Libtorch(o) => {
                o.zero_grad()?;
                loss.f_backward()?;
                o.step()
            }
            Optimizer::Flat(o) => o.backward_step(loss),
        }
    }

    /// Backpropagates `loss`, then returns the update alone, timed.
    fn timed_update(&mut self, device: Device, loss: &Tensor) -> Result<Seconds, TchError> {
        match self {
            Optimizer::Libtorch(o) => {
                o.zero_grad()?;
                loss.f_backward()?;
                Ok(timed(device, || o.step())?.1)
            }
            Optimizer::Flat(o) => {
                let grads = o.gradients(loss)?;
                Ok(timed(device, || o.update(&grads))?.1)
            }
        }
    }
}

/// The training set on the device, the current pass's order, and the running totals.
struct Resident {
    images: Tensor,
    labels: Tensor,
    order: Option<Tensor>,
    loss_sum: Tensor,
    correct: Tensor,
    examples: usize,
}

/// A network on one device with libtorch's Adam.
pub(crate) struct TorchTrainer {
    input: InputShape,
    classes: usize,
    device: Device,
    plan: StepPlan,
    /// Owns the parameters and batch-norm statistics; `ops` hold handles to the same tensors.
    vars: VarStore,
    ops: Vec<Op>,
    /// The type of each layer, in order, for profiles.
    kinds: Vec<LayerKind>,
    optimizer: Optimizer,
    parameters: usize,
    resident: Option<Resident>,
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
        plan: StepPlan,
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
        let trainable = vars.trainable_variables();
        let parameters = trainable.iter().map(Tensor::numel).sum();
        let optimizer = if plan.flat_adam {
            Optimizer::Flat(FlatAdam::new(trainable, *adam).map_err(build_error)?)
        } else {
            let mut optimizer = COptimizer::adam(
                adam.lr,
                adam.beta1,
                adam.beta2,
                adam.weight_decay,
                adam.eps,
                false,
            )
            .map_err(build_error)?;
            for var in &trainable {
                optimizer.add_parameters(var, 0).map_err(build_error)?;
            }
            Optimizer::Libtorch(optimizer)
        };
        Ok(TorchTrainer {
            input: spec.input,
            classes: spec.classes,
            device,
            plan,
            vars,
            ops,
            kinds: spec.layers.iter().map(|l| l.layer.kind()).collect(),
            optimizer,
            parameters,
            resident: None,
        })
    }

    /// Clears the parameters' accumulated `.grad` (the profile's prefix passes fill them).
    fn clear_grads(&mut self) {
        for mut v in self.vars.trainable_variables() {
            v.zero_grad();
        }
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
        self.optimizer.backward_step(&loss)?;
        Ok(StepStats {
            loss: loss.f_double_value(&[])?,
            correct,
        })
    }

    /// A step on positions `start..start + len` of the resident data's order; the loss and
    /// correct predictions are added to the totals on the device. Nothing is read back.
    fn resident_step(&mut self, start: usize, len: usize) -> Result<(), EngineError> {
        let Some(r) = self.resident.as_mut() else {
            return Err(not_resident());
        };
        let Some(order) = &r.order else {
            return Err(EngineError::Batch(
                "no order for the resident data; call set_resident_order first".into(),
            ));
        };
        let total = order.numel();
        if len == 0 || start + len > total {
            return Err(EngineError::Batch(format!(
                "positions {start}..{} are outside the order of {total} examples",
                start + len
            )));
        }
        let loss = (|| -> Result<Tensor, TchError> {
            let index = order.f_narrow(0, start as i64, len as i64)?;
            let images = r.images.f_index_select(0, &index)?;
            let labels = r.labels.f_index_select(0, &index)?;
            let logits = net::forward(&self.ops, &images, true)?;
            let loss = cross_entropy(&logits, &labels)?;
            tch::no_grad(|| -> Result<(), TchError> {
                let _ = r
                    .loss_sum
                    .f_add_(&loss.f_detach()?.f_mul_scalar(len as f64)?)?;
                let hits = logits
                    .f_argmax(-1, false)?
                    .f_eq_tensor(&labels)?
                    .f_sum(Kind::Int64)?;
                let _ = r.correct.f_add_(&hits)?;
                Ok(())
            })?;
            Ok(loss)
        })()
        .map_err(backend)?;
        r.examples += len;
        self.optimizer.backward_step(&loss).map_err(backend)
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
            self.clear_grads();
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
        self.clear_grads();
        let loss = cross_entropy(&net::forward(&self.ops, images, true)?, labels)?;
        let optimizer = self.optimizer.timed_update(device, &loss)?;
        self.clear_grads();
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

fn not_resident() -> EngineError {
    EngineError::Unsupported("resident training data (make_resident was refused)".into())
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

    /// Keeps the training set on the device when the plan says so (on a GPU by default).
    fn make_resident(&mut self, data: &Dataset) -> Result<bool, EngineError> {
        if !self.plan.resident_data {
            return Ok(false);
        }
        let (c, h, w) = (self.input.channels, self.input.height, self.input.width);
        if (data.channels, data.height, data.width) != (c, h, w) {
            return Err(EngineError::Batch(format!(
                "the training set holds {}x{}x{} images, the network takes {c}x{h}x{w}",
                data.channels, data.height, data.width
            )));
        }
        if data.images.len() != data.len() * c * h * w {
            return Err(EngineError::Batch(format!(
                "the training set says {} examples but holds {} pixel values",
                data.len(),
                data.images.len()
            )));
        }
        if let Some(&label) = data
            .labels
            .iter()
            .find(|&&l| usize::from(l) >= self.classes)
        {
            return Err(EngineError::Batch(format!(
                "label {label} is out of range for {} classes",
                self.classes
            )));
        }
        let device = self.device;
        let upload = || -> Result<Resident, TchError> {
            let n = data.len() as i64;
            let images = Tensor::f_from_slice(&data.images)?
                .f_view([n, c as i64, h as i64, w as i64])?
                .f_to_device(device)?;
            let labels: Vec<i64> = data.labels.iter().map(|&l| i64::from(l)).collect();
            let labels = Tensor::f_from_slice(&labels)?.f_to_device(device)?;
            Ok(Resident {
                images,
                labels,
                order: None,
                loss_sum: Tensor::f_zeros([], (Kind::Float, device))?,
                correct: Tensor::f_zeros([], (Kind::Int64, device))?,
                examples: 0,
            })
        };
        self.resident = Some(upload().map_err(backend)?);
        Ok(true)
    }

    fn set_resident_order(&mut self, order: &[usize]) -> Result<(), EngineError> {
        let device = self.device;
        let Some(r) = self.resident.as_mut() else {
            return Err(not_resident());
        };
        let n = r.labels.numel();
        if let Some(&bad) = order.iter().find(|&&i| i >= n) {
            return Err(EngineError::Batch(format!(
                "example {bad} is outside the resident set of {n}"
            )));
        }
        let order: Vec<i64> = order.iter().map(|&i| i as i64).collect();
        let order = Tensor::f_from_slice(&order)
            .and_then(|t| t.f_to_device(device))
            .map_err(backend)?;
        r.order = Some(order);
        Ok(())
    }

    fn train_resident(&mut self, start: usize, len: usize) -> Result<(), EngineError> {
        self.resident_step(start, len)
    }

    fn take_stats(&mut self) -> Result<PassStats, EngineError> {
        let Some(r) = self.resident.as_mut() else {
            return Err(not_resident());
        };
        let mut read = || -> Result<(f64, i64), TchError> {
            let loss_sum = r.loss_sum.f_double_value(&[])?;
            let correct = r.correct.f_int64_value(&[])?;
            let _ = r.loss_sum.f_zero_()?;
            let _ = r.correct.f_zero_()?;
            Ok((loss_sum, correct))
        };
        let (loss_sum, correct) = read().map_err(backend)?;
        let stats = PassStats {
            loss_sum,
            correct: usize::try_from(correct).unwrap_or(0),
            examples: r.examples,
        };
        r.examples = 0;
        Ok(stats)
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
        TorchTrainer::new(
            &spec,
            adam,
            7,
            Device::Cpu,
            StepPlan::for_device(Device::Cpu),
        )
        .unwrap()
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
        let plan = StepPlan::for_device(Device::Cpu);
        let t = TorchTrainer::new(&spec, &AdamConfig::default(), 1, Device::Cpu, plan).unwrap();
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

    /// A SimpleCNN(1,2) on 8x8 images (conv, batch norm, ReLU, pool, linear layers) with the
    /// given step plan.
    fn cnn(plan: StepPlan, adam: &AdamConfig) -> TorchTrainer {
        let input = InputShape {
            channels: 1,
            height: 8,
            width: 8,
        };
        let spec = greenlab_model::Architecture::SimpleCnn {
            conv: 1,
            linear: 2,
            relu: true,
        }
        .spec(input, 3)
        .unwrap();
        TorchTrainer::new(&spec, adam, 11, Device::Cpu, plan).unwrap()
    }

    fn all_weights(t: &TorchTrainer) -> Vec<f32> {
        t.vars
            .trainable_variables()
            .iter()
            .flat_map(|v| Vec::<f32>::try_from(v.flatten(0, -1)).unwrap())
            .collect()
    }

    fn images(n: usize, seed: u64) -> Dataset {
        let mut x = seed;
        let mut next = || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 40) as f32 / (1u64 << 24) as f32
        };
        let images = (0..n * 64).map(|_| next()).collect();
        let labels = (0..n).map(|i| (i % 3) as u8).collect();
        Dataset {
            channels: 1,
            height: 8,
            width: 8,
            classes: 3,
            images,
            labels,
        }
    }

    /// Flat Adam is libtorch's Adam: the same weights after several steps, with and without
    /// weight decay.
    #[test]
    fn flat_adam_matches_libtorch_adam() {
        let data = images(24, 3);
        for weight_decay in [0.0, 0.1] {
            let adam = AdamConfig {
                lr: 0.01,
                weight_decay,
                ..AdamConfig::default()
            };
            let per_tensor = StepPlan {
                flat_adam: false,
                resident_data: false,
            };
            let flat = StepPlan {
                flat_adam: true,
                ..per_tensor
            };
            let (mut a, mut b) = (cnn(per_tensor, &adam), cnn(flat, &adam));
            assert_eq!(all_weights(&a), all_weights(&b), "same start");
            for batch in greenlab_data::Batches::new(&data, 8, Some(5)) {
                let (sa, sb) = (a.train_step(&batch).unwrap(), b.train_step(&batch).unwrap());
                assert!(
                    (sa.loss - sb.loss).abs() < 1e-5,
                    "{} vs {}",
                    sa.loss,
                    sb.loss
                );
            }
            let wa = all_weights(&a);
            assert_ne!(
                wa,
                all_weights(&cnn(per_tensor, &adam)),
                "the weights moved"
            );
            // A convolution's bias right before batch norm does not reach the loss: its
            // gradient is rounding noise, which Adam scales to steps of ±lr whose sign is
            // noise too. Every parameter the loss reaches must agree.
            let (va, vb) = (a.vars.trainable_variables(), b.vars.trainable_variables());
            let mut compared = 0;
            for (pa, pb) in va.iter().zip(&vb) {
                let grad = pa.grad();
                let reached = grad.defined() && grad.abs().max().double_value(&[]) > 1e-6;
                if !reached {
                    continue;
                }
                compared += 1;
                let (x, y) = (
                    Vec::<f32>::try_from(pa.flatten(0, -1)).unwrap(),
                    Vec::<f32>::try_from(pb.flatten(0, -1)).unwrap(),
                );
                for (x, y) in x.iter().zip(&y) {
                    assert!(
                        (x - y).abs() < 1e-5 * (1.0 + x.abs()),
                        "weight decay {weight_decay}: {x} vs {y}"
                    );
                }
            }
            assert!(
                compared + 1 >= va.len(),
                "{compared} of {} compared",
                va.len()
            );
        }
    }

    /// Resident data (here on the CPU) trains exactly as batches passed in do, and reports
    /// the same totals; positions and orders outside the data are refused.
    #[test]
    fn resident_steps_match_batches() {
        let data = images(20, 9);
        let adam = AdamConfig::default();
        let plan = StepPlan {
            flat_adam: true,
            resident_data: true,
        };
        let mut batched = cnn(
            StepPlan {
                resident_data: false,
                ..plan
            },
            &adam,
        );
        assert!(!batched.make_resident(&data).unwrap());
        let mut resident = cnn(plan, &adam);
        assert!(resident.make_resident(&data).unwrap());
        let mut expected = PassStats::default();
        for epoch in 0..2 {
            let batches = greenlab_data::Batches::new(&data, 8, Some(epoch));
            resident.set_resident_order(batches.order()).unwrap();
            for (k, batch) in greenlab_data::Batches::new(&data, 8, Some(epoch)).enumerate() {
                let s = batched.train_step(&batch).unwrap();
                expected.add(PassStats {
                    loss_sum: s.loss * batch.size as f64,
                    correct: s.correct,
                    examples: batch.size,
                });
                resident.train_resident(8 * k, batch.size).unwrap();
            }
        }
        let got = resident.take_stats().unwrap();
        assert_eq!(
            (got.examples, got.correct),
            (expected.examples, expected.correct)
        );
        assert!(
            (got.loss_sum - expected.loss_sum).abs() < 1e-4,
            "{got:?} vs {expected:?}"
        );
        for (x, y) in all_weights(&batched).iter().zip(&all_weights(&resident)) {
            assert!((x - y).abs() < 1e-6 * (1.0 + x.abs()), "{x} vs {y}");
        }
        assert_eq!(
            resident.take_stats().unwrap().examples,
            0,
            "totals start again"
        );
        assert!(resident.train_resident(16, 8).is_err(), "past the end");
        assert!(
            resident.set_resident_order(&[0, 20]).is_err(),
            "outside the data"
        );
        assert!(batched.train_resident(0, 1).is_err(), "not resident");
    }
}
