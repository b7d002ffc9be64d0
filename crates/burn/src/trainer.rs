//! [`BurnTrainer`]: a network, its Adam state and the device, behind greenlab's `Trainer`.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Instant;

use burn::module::Module;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Tensor, TensorData};
use greenlab_data::Batch;
use greenlab_engine::{
    AdamConfig, EngineError, EvalStats, LayerTiming, StepProfile, StepStats, Trainer,
    prefix_differences,
};
use greenlab_meter::Seconds;
use greenlab_model::NetworkSpec;
use rayon::ThreadPool;

use crate::net::{Act, Net, Segment};
use crate::ops::simd::Simd;

/// A network being trained by the Burn engine.
///
/// Every call runs inside the engine's thread pool when one was configured (`--threads`), so
/// flex's kernels use that many threads. A panic inside Burn (which reports shape and backend
/// errors by panicking) is turned into [`EngineError::Backend`]; the trainer is unusable
/// afterwards and says so.
pub struct BurnTrainer {
    spec: NetworkSpec,
    /// `None` only after a failure in the middle of an optimiser step.
    model: Option<Net>,
    optim: ModuleOptimizer,
    lr: f64,
    device: Device,
    pool: Option<Arc<ThreadPool>>,
    simd: Simd,
    parameters: usize,
}

impl BurnTrainer {
    pub(crate) fn new(
        spec: &NetworkSpec,
        adam: &AdamConfig,
        seed: u64,
        device: Device,
        pool: Option<Arc<ThreadPool>>,
        simd: Simd,
    ) -> Result<BurnTrainer, EngineError> {
        adam.validate().map_err(|message| EngineError::Build {
            network: spec.name.clone(),
            message,
        })?;
        let build = || {
            let model = Net::new(spec, seed, &device);
            let weight_decay =
                (adam.weight_decay > 0.0).then(|| WeightDecayConfig::new(adam.weight_decay as f32));
            let optim = burn::optim::AdamConfig::new()
                .with_beta_1(adam.beta1 as f32)
                .with_beta_2(adam.beta2 as f32)
                .with_epsilon(adam.eps as f32)
                .with_weight_decay(weight_decay)
                .init();
            let parameters = model.trainable_params();
            (model, optim, parameters)
        };
        let built = match &pool {
            Some(p) => p.install(|| catch_unwind(AssertUnwindSafe(build))),
            None => catch_unwind(AssertUnwindSafe(build)),
        };
        let (model, optim, parameters) = built.map_err(|p| EngineError::Build {
            network: spec.name.clone(),
            message: panic_message(p.as_ref()),
        })?;
        Ok(BurnTrainer {
            spec: spec.clone(),
            model: Some(model),
            optim,
            lr: adam.lr,
            device,
            pool,
            simd,
            parameters,
        })
    }

    /// Runs `f` inside the thread pool (if any), turning a Burn panic into an error.
    fn guarded<R: Send>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<R, EngineError> + Send,
    ) -> Result<R, EngineError> {
        let pool = self.pool.clone();
        let run = AssertUnwindSafe(move || f(self));
        let outcome = match pool {
            Some(p) => p.install(|| catch_unwind(run)),
            None => catch_unwind(run),
        };
        outcome.unwrap_or_else(|p| Err(backend(panic_message(p.as_ref()))))
    }

    fn model(&self) -> Result<&Net, EngineError> {
        self.model.as_ref().ok_or_else(broken)
    }

    fn take_model(&mut self) -> Result<Net, EngineError> {
        self.model.take().ok_or_else(broken)
    }

    /// The batch's images as an `N × C × H × W` tensor on `device`.
    fn images(&self, batch: &Batch, device: &Device) -> Tensor<4> {
        let s = self.spec.input;
        Tensor::from_data(
            TensorData::new(
                batch.images.clone(),
                [batch.size, s.channels, s.height, s.width],
            ),
            device,
        )
    }

    /// One-hot targets `N × classes`, the weights of the log-probabilities in the loss.
    fn one_hot(&self, batch: &Batch) -> Tensor<2> {
        let classes = self.spec.classes;
        let mut values = vec![0.0f32; batch.size * classes];
        for (row, &label) in batch.labels.iter().enumerate() {
            values[row * classes + label as usize] = 1.0;
        }
        Tensor::from_data(TensorData::new(values, [batch.size, classes]), &self.device)
    }

    /// Mean cross-entropy of `logits` against the one-hot targets, in the graph.
    fn loss(logits: Tensor<2>, one_hot: Tensor<2>) -> Tensor<1> {
        let n = logits.dims()[0].max(1);
        (log_softmax(logits, 1) * one_hot)
            .sum()
            .mul_scalar(-1.0 / n as f64)
    }

    /// The forward pass, the loss and its gradients; returns the updated model.
    fn step(&mut self, batch: &Batch) -> Result<StepStats, EngineError> {
        let x = self.images(batch, &self.device);
        let one_hot = self.one_hot(batch);
        let model = self.take_model()?;
        let logits = model.forward(x, self.simd).ok_or_else(shape_bug)?;
        let loss = Self::loss(logits.clone(), one_hot);
        let grads = loss.backward();
        let grads = GradientsParams::from_grads(grads, &model);
        self.model = Some(self.optim.step(self.lr, model, grads));
        let scores = read(logits)?;
        let (loss_sum, correct) = score(&scores, &batch.labels, self.spec.classes);
        Ok(StepStats {
            loss: loss_sum / batch.size as f64,
            correct,
        })
    }

    fn eval(&mut self, batch: &Batch) -> Result<EvalStats, EngineError> {
        let model = self.model()?.valid();
        let device = self.device.clone().without_autodiff();
        let x = self.images(batch, &device);
        let logits = model.forward(x, self.simd).ok_or_else(shape_bug)?;
        let scores = read(logits)?;
        let (loss_sum, correct) = score(&scores, &batch.labels, self.spec.classes);
        Ok(EvalStats { loss_sum, correct })
    }

    fn profile(&mut self, batch: &Batch) -> Result<StepProfile, EngineError> {
        // A whole ordinary step first: the reference the parts are compared with.
        let start = self.clock()?;
        let stats = self.step(batch)?;
        let whole_step = self.elapsed(start)?;
        if !stats.loss.is_finite() {
            return Err(backend(
                "the loss is not finite; profile a network that trains".into(),
            ));
        }

        // Forward and backward of each layer, and the loss.
        let model = self.take_model()?;
        let result = self.profile_parts(&model, batch);
        self.model = Some(model);
        let (layers, loss) = result?;

        // The optimiser: gradients from an untimed pass, then the timed update.
        let model = self.take_model()?;
        let x = self.images(batch, &self.device);
        let logits = match model.forward(x, self.simd) {
            Some(l) => l,
            None => {
                self.model = Some(model);
                return Err(shape_bug());
            }
        };
        let grads = Self::loss(logits, self.one_hot(batch)).backward();
        let grads = GradientsParams::from_grads(grads, &model);
        let start = self.clock()?;
        let model = self.optim.step(self.lr, model, grads);
        let optimizer = self.elapsed(start)?;
        self.model = Some(model);

        Ok(StepProfile {
            layers,
            loss,
            optimizer,
            whole_step,
        })
    }

    /// Per-layer forward and backward times, and the loss's forward + backward time.
    ///
    /// The parts are the network's segments as the training step runs them (see
    /// [`Segment`]): a fused batch norm + ReLU + pooling is timed as one operation, and its
    /// time is shared among its layers in proportion to their times when each runs alone
    /// (measured in the same call), so the parts still add up to the step.
    fn profile_parts(
        &self,
        model: &Net,
        batch: &Batch,
    ) -> Result<(Vec<LayerTiming>, Seconds), EngineError> {
        let segments = model.segments();
        let steps: Vec<Step<'_>> = segments
            .iter()
            .map(|&seg| Step::Segment(model, seg))
            .collect();
        let (forward, backward, loss) = self.time_prefixes(&steps, batch)?;
        let fused = segments.iter().any(|s| s.blocks().len() > 1);
        // Each layer alone, for the shares within fused segments.
        let alone = if fused {
            let last = segments
                .iter()
                .filter(|s| s.blocks().len() > 1)
                .map(|s| s.blocks().end)
                .max()
                .unwrap_or(0);
            let steps: Vec<Step<'_>> = model.blocks[..last].iter().map(Step::Block).collect();
            let (f, b, _) = self.time_prefixes(&steps, batch)?;
            Some((f, b))
        } else {
            None
        };
        let n = model.blocks.len();
        let (mut layer_forward, mut layer_backward) = (vec![0.0; n], vec![0.0; n]);
        for (k, seg) in segments.iter().enumerate() {
            let range = seg.blocks();
            match &alone {
                Some((af, ab)) if range.len() > 1 => {
                    let fw = split(forward[k], &af[range.clone()]);
                    let bw = split(backward[k], &ab[range.clone()]);
                    for (j, i) in range.enumerate() {
                        layer_forward[i] = fw[j];
                        layer_backward[i] = bw[j];
                    }
                }
                _ => {
                    layer_forward[range.start] = forward[k];
                    layer_backward[range.start] = backward[k];
                }
            }
        }
        let layers = (0..n)
            .map(|k| LayerTiming {
                index: k,
                kind: self.spec.layers[k].layer.kind(),
                forward: Seconds(layer_forward[k]),
                backward: Some(Seconds(layer_backward[k])),
            })
            .collect();
        Ok((layers, loss))
    }

    /// Forward and backward time of each step of `steps` (run in order from the images), and
    /// the loss's forward + backward time on their output (when it is the class scores).
    fn time_prefixes(
        &self,
        steps: &[Step<'_>],
        batch: &Batch,
    ) -> Result<(Vec<f64>, Vec<f64>, Seconds), EngineError> {
        let simd = self.simd;
        // Forward, timed step by step in a pass that keeps nothing else alive (as the real
        // step): holding on to a layer's input would stop the backend from reusing its buffer
        // and inflate the next layer's time.
        let mut forward = Vec::with_capacity(steps.len());
        let mut act = Act::Map(self.images(batch, &self.device));
        for step in steps {
            let start = self.clock()?;
            act = step.forward(act, simd).ok_or_else(shape_bug)?;
            forward.push(self.elapsed(start)?.0);
        }
        // Loss: forward and backward on the detached scores.
        let loss = match act {
            Act::Flat(logits) if logits.dims()[1] == self.spec.classes => {
                let one_hot = self.one_hot(batch);
                let scores = logits.detach().require_grad();
                let start = self.clock()?;
                let _grads = Self::loss(scores, one_hot).backward();
                self.elapsed(start)?
            }
            _ => Seconds(0.0),
        };

        // Backward, by differences of prefixes: the steps up to k run forward from the images
        // (untimed), the output is summed, and the backward pass through the whole prefix is
        // timed; step k's backward is that time minus the prefix up to k − 1. Measuring inside
        // the real graph (rather than each step alone on a detached input) keeps what the real
        // backward pass does between layers — buffers handed on and reused, one walk of one
        // graph — so the parts add up to the whole. The sum's own gradient is timed on a
        // same-shaped leaf and taken off each prefix.
        let mut through = Vec::with_capacity(steps.len());
        for k in 0..steps.len() {
            let mut act = Act::Map(self.images(batch, &self.device));
            for step in &steps[..=k] {
                act = step.forward(act, simd).ok_or_else(shape_bug)?;
            }
            let baseline_leaf = act.ones_like(&self.device).leaf(true);
            let sum = act.total();
            let start = self.clock()?;
            let grads = sum.backward();
            let prefix = self.elapsed(start)?;
            drop(grads);
            let sum = baseline_leaf.total();
            let start = self.clock()?;
            let grads = sum.backward();
            let baseline = self.elapsed(start)?;
            drop(grads);
            through.push(prefix.0 - baseline.0);
        }
        let backward = prefix_differences(&through).iter().map(|s| s.0).collect();
        Ok((forward, backward, loss))
    }

    /// Synchronises the device, then reads the clock.
    fn clock(&self) -> Result<Instant, EngineError> {
        self.device
            .sync()
            .map_err(|e| backend(format!("device sync failed: {e:?}")))?;
        Ok(Instant::now())
    }

    /// Synchronises the device, then returns the time since `start`.
    fn elapsed(&self, start: Instant) -> Result<Seconds, EngineError> {
        self.device
            .sync()
            .map_err(|e| backend(format!("device sync failed: {e:?}")))?;
        Ok(start.elapsed().into())
    }
}

impl Trainer for BurnTrainer {
    fn train_step(&mut self, batch: &Batch) -> Result<StepStats, EngineError> {
        check_batch(&self.spec, batch)?;
        self.guarded(|t| t.step(batch))
    }

    fn evaluate(&mut self, batch: &Batch) -> Result<EvalStats, EngineError> {
        check_batch(&self.spec, batch)?;
        self.guarded(|t| t.eval(batch))
    }

    fn parameter_count(&self) -> usize {
        self.parameters
    }

    fn synchronize(&self) -> Result<(), EngineError> {
        self.device
            .sync()
            .map_err(|e| backend(format!("device sync failed: {e:?}")))
    }

    fn profile_step(&mut self, batch: &Batch) -> Result<StepProfile, EngineError> {
        check_batch(&self.spec, batch)?;
        self.guarded(|t| t.profile(batch))
    }
}

/// What [`BurnTrainer::time_prefixes`] runs: a segment as the training step runs it, or one
/// block alone.
enum Step<'a> {
    Segment(&'a Net, Segment),
    Block(&'a crate::net::Block),
}

impl Step<'_> {
    fn forward(&self, x: Act, simd: Simd) -> Option<Act> {
        match self {
            Step::Segment(net, seg) => net.forward_segment(*seg, x, simd),
            Step::Block(block) => block.forward(x, simd),
        }
    }
}

/// `total` shared in proportion to `weights` (negative weights count as zero; equal shares if
/// none is positive).
fn split(total: f64, weights: &[f64]) -> Vec<f64> {
    let sum: f64 = weights.iter().map(|w| w.max(0.0)).sum();
    if sum > 0.0 {
        weights.iter().map(|w| total * w.max(0.0) / sum).collect()
    } else {
        vec![total / weights.len().max(1) as f64; weights.len()]
    }
}

/// Checks that a batch fits the network before any tensor is made (Burn panics otherwise).
pub(crate) fn check_batch(spec: &NetworkSpec, batch: &Batch) -> Result<(), EngineError> {
    if batch.size == 0 {
        return Err(EngineError::Batch("the batch is empty".into()));
    }
    if batch.labels.len() != batch.size {
        return Err(EngineError::Batch(format!(
            "the batch says {} examples but holds {} labels",
            batch.size,
            batch.labels.len()
        )));
    }
    let per_example = spec.input.len();
    if batch.images.len() != batch.size * per_example {
        return Err(EngineError::Batch(format!(
            "{} examples of {}x{}x{} need {} pixel values, the batch holds {}",
            batch.size,
            spec.input.channels,
            spec.input.height,
            spec.input.width,
            batch.size * per_example,
            batch.images.len()
        )));
    }
    if let Some(&label) = batch.labels.iter().find(|&&l| l as usize >= spec.classes) {
        return Err(EngineError::Batch(format!(
            "label {label} is out of range for {} classes",
            spec.classes
        )));
    }
    Ok(())
}

/// The scores of a batch, row-major `N × classes`, read back to the host.
fn read(logits: Tensor<2>) -> Result<Vec<f32>, EngineError> {
    let data = logits
        .inner()
        .try_into_data()
        .map_err(|e| backend(format!("cannot read the scores back: {e:?}")))?;
    data.try_to_vec::<f32>()
        .map_err(|e| backend(format!("cannot read the scores back: {e:?}")))
}

/// Sum of per-example cross-entropy losses and the number of correct arg-max predictions.
///
/// A NaN or infinite score makes the loss NaN or infinite, so divergence shows.
pub(crate) fn score(scores: &[f32], labels: &[u8], classes: usize) -> (f64, usize) {
    let mut loss = 0.0f64;
    let mut correct = 0;
    for (row, &label) in scores.chunks_exact(classes).zip(labels) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        let sum: f64 = row.iter().map(|&s| (s as f64 - max).exp()).sum();
        let log_z = max + sum.ln();
        loss += log_z - row[label as usize] as f64;
        // The first maximum wins ties, as argmax does in PyTorch.
        let mut best = 0;
        for (k, &s) in row.iter().enumerate() {
            if s > row[best] {
                best = k;
            }
        }
        if best == label as usize && row.iter().all(|s| s.is_finite()) {
            correct += 1;
        }
    }
    (loss, correct)
}

fn backend(message: String) -> EngineError {
    EngineError::Backend {
        engine: "burn",
        message,
    }
}

fn broken() -> EngineError {
    backend("the trainer failed earlier and lost its network; build a new one".into())
}

fn shape_bug() -> EngineError {
    backend("internal error: a layer got an activation of the wrong rank".into())
}

fn panic_message(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "the backend panicked".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn score_counts_losses_and_hits() {
        // two classes; row 0 predicts 1 (label 1), row 1 predicts 0 (label 1)
        let scores = [0.0, 1.0, 2.0, 0.0];
        let (loss, correct) = score(&scores, &[1, 1], 2);
        assert_eq!(correct, 1);
        let expected = (1.0f64 + (-1.0f64).exp()).ln() + (2.0 + (1.0 + (-2.0f64).exp()).ln());
        assert!((loss - expected).abs() < 1e-9, "{loss} vs {expected}");
    }

    #[test]
    fn split_shares_in_proportion() {
        assert_eq!(split(6.0, &[1.0, 2.0, 3.0]), vec![1.0, 2.0, 3.0]);
        assert_eq!(split(4.0, &[-1.0, 1.0]), vec![0.0, 4.0]);
        assert_eq!(split(4.0, &[0.0, -2.0]), vec![2.0, 2.0]);
    }

    #[test]
    fn non_finite_scores_give_non_finite_loss() {
        let (loss, correct) = score(&[f32::NAN, 0.0], &[0], 2);
        assert!(!loss.is_finite());
        assert_eq!(correct, 0);
    }
}
