//! greenlab-engine: what a training engine must do, independent of any tensor library.
//!
//! An [`Engine`] builds a [`Trainer`] from a [`NetworkSpec`] and an [`AdamConfig`]; the
//! trainer runs optimisation steps and evaluations on [`Batch`]es and can time each layer for
//! the profiler. Implementations live in `greenlab-burn` (Burn, pure Rust, default) and
//! `greenlab-torch` (libtorch through tch, CPU and CUDA). Nothing outside those two crates
//! names a tensor library; everything else talks to `dyn Engine`.
//!
//! [`testing::check_engine`] is the conformance suite every engine runs in its tests.

use greenlab_data::{Batch, Dataset};
use greenlab_meter::Seconds;
use greenlab_model::{LayerKind, NetworkSpec};
use serde::{Deserialize, Serialize};

pub mod testing;

/// What can go wrong inside an engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// The engine cannot build this network (unsupported layer, bad shape).
    #[error("cannot build {network}: {message}")]
    Build {
        /// The network's name.
        network: String,
        /// What went wrong.
        message: String,
    },
    /// The requested device is not available (no CUDA, bad index).
    #[error("device {device} is not available: {message}")]
    Device {
        /// The device asked for.
        device: String,
        /// Why, and what to do.
        message: String,
    },
    /// A batch does not fit the network (wrong size, label out of range).
    #[error("bad batch: {0}")]
    Batch(String),
    /// The tensor library failed.
    #[error("{engine} engine: {message}")]
    Backend {
        /// Engine name.
        engine: &'static str,
        /// The library's message.
        message: String,
    },
    /// The operation is not supported by this engine.
    #[error("{0} is not supported by this engine")]
    Unsupported(String),
}

/// Adam's settings (the paper's defaults: lr 1e-3, β1 0.9, β2 0.999, ε 1e-8, no weight decay).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct AdamConfig {
    /// Learning rate.
    pub lr: f64,
    /// Exponential decay of the first moment.
    pub beta1: f64,
    /// Exponential decay of the second moment.
    pub beta2: f64,
    /// Term added to the denominator for stability.
    pub eps: f64,
    /// L2 penalty added to gradients (PyTorch Adam's `weight_decay`).
    pub weight_decay: f64,
}

impl Default for AdamConfig {
    fn default() -> Self {
        AdamConfig {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        }
    }
}

impl AdamConfig {
    /// Checks ranges: lr > 0, β in [0, 1), ε > 0, weight decay ≥ 0, all finite.
    pub fn validate(&self) -> Result<(), String> {
        let finite = [self.lr, self.beta1, self.beta2, self.eps, self.weight_decay]
            .iter()
            .all(|x| x.is_finite());
        if !finite {
            return Err("Adam settings must be finite numbers".into());
        }
        if self.lr <= 0.0 {
            return Err(format!("learning rate must be > 0, got {}", self.lr));
        }
        for (name, b) in [("beta1", self.beta1), ("beta2", self.beta2)] {
            if !(0.0..1.0).contains(&b) {
                return Err(format!("{name} must be in [0, 1), got {b}"));
            }
        }
        if self.eps <= 0.0 {
            return Err(format!("epsilon must be > 0, got {}", self.eps));
        }
        if self.weight_decay < 0.0 {
            return Err(format!(
                "weight decay must be ≥ 0, got {}",
                self.weight_decay
            ));
        }
        Ok(())
    }
}

/// Result of one optimisation step.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepStats {
    /// Mean cross-entropy loss over the batch (before the update). May be NaN or infinite
    /// when training diverges; the caller decides what to do.
    pub loss: f64,
    /// Examples classified correctly (before the update).
    pub correct: usize,
}

/// Result of evaluating one batch (no parameter update, inference mode).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EvalStats {
    /// Sum of per-example cross-entropy losses.
    pub loss_sum: f64,
    /// Examples classified correctly.
    pub correct: usize,
}

/// Totals of training steps whose statistics stayed on the device until
/// [`Trainer::take_stats`].
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PassStats {
    /// Sum over the examples of the cross-entropy loss (before each step's update); NaN or
    /// infinite once training diverged.
    pub loss_sum: f64,
    /// Examples classified correctly (before each step's update).
    pub correct: usize,
    /// Examples trained on.
    pub examples: usize,
}

impl PassStats {
    /// Adds `other`'s totals.
    pub fn add(&mut self, other: PassStats) {
        self.loss_sum += other.loss_sum;
        self.correct += other.correct;
        self.examples += other.examples;
    }
}

/// Time spent in one layer during a training step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerTiming {
    /// Index of the layer in the spec.
    pub index: usize,
    /// Its type.
    pub kind: LayerKind,
    /// Forward time for the batch, device synchronised around it.
    pub forward: Seconds,
    /// Backward time for the batch, where the engine can separate it.
    pub backward: Option<Seconds>,
}

/// Per-layer backward times from timed prefixes of the network: `through[k]` is the backward
/// pass through layers `0..=k` (bookkeeping taken off). The true prefix times grow with `k`,
/// the readings are noisy: they are replaced by their least-squares non-decreasing, non-negative
/// fit (isotonic regression by pooling adjacent violators), and layer `k` gets the fit's
/// increment at `k`. No layer goes negative, the parts add up to the fitted whole backward, and
/// a reading that dips below an earlier one is averaged with it rather than discarded. (Taking
/// the running maximum instead keeps the highest of the noisy readings of the longest prefixes,
/// which inflated the sum of the parts by the noise.)
pub fn prefix_differences(through: &[f64]) -> Vec<Seconds> {
    // Blocks of pooled readings: (mean, count).
    let mut blocks: Vec<(f64, usize)> = Vec::with_capacity(through.len());
    for &t in through {
        let mut block = (t, 1usize);
        while let Some(&(mean, count)) = blocks.last() {
            if mean < block.0 {
                break;
            }
            blocks.pop();
            let total = count + block.1;
            block = (
                (mean * count as f64 + block.0 * block.1 as f64) / total as f64,
                total,
            );
        }
        blocks.push(block);
    }
    let mut previous = 0.0f64;
    let mut layers = Vec::with_capacity(through.len());
    for (mean, count) in blocks {
        let fit = mean.max(0.0);
        layers.push(Seconds(fit - previous));
        layers.extend(std::iter::repeat_n(Seconds(0.0), count - 1));
        previous = fit;
    }
    layers
}

/// Time spent outside the layers in a training step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StepProfile {
    /// Per layer, in order.
    pub layers: Vec<LayerTiming>,
    /// Loss computation (forward and backward).
    pub loss: Seconds,
    /// Optimiser update.
    pub optimizer: Seconds,
    /// A whole ordinary training step on the same batch, for comparison with the sum of parts.
    pub whole_step: Seconds,
}

/// A network being trained on one device.
pub trait Trainer {
    /// One Adam step on the batch (training mode: batch-norm uses batch statistics).
    fn train_step(&mut self, batch: &Batch) -> Result<StepStats, EngineError>;

    /// Loss and correct predictions on the batch, in inference mode, without updating anything.
    fn evaluate(&mut self, batch: &Batch) -> Result<EvalStats, EngineError>;

    /// Trainable parameters of the built network.
    fn parameter_count(&self) -> usize;

    /// Waits until all queued device work is done (GPU); a no-op on synchronous CPU engines.
    fn synchronize(&self) -> Result<(), EngineError> {
        Ok(())
    }

    /// Times each layer's forward (and, where possible, backward) pass on `batch`, plus the
    /// loss and optimiser, synchronising the device around each part. Parameters may change
    /// (it takes real steps).
    fn profile_step(&mut self, batch: &Batch) -> Result<StepProfile, EngineError> {
        let _ = batch;
        Err(EngineError::Unsupported("per-layer profiling".into()))
    }

    /// Offers the training set to keep on the trainer's device, so that steps name their
    /// examples by position ([`Trainer::train_resident`]) instead of copying each batch there
    /// and waiting for its statistics. Called once, before the first step; `Ok(true)` if the
    /// trainer keeps it, `Ok(false)` (the default) if the caller should pass [`Batch`]es.
    fn make_resident(&mut self, data: &Dataset) -> Result<bool, EngineError> {
        let _ = data;
        Ok(false)
    }

    /// The order of the next pass over the resident data (indices into it), copied to the
    /// device once per pass. Only after `make_resident` returned true.
    fn set_resident_order(&mut self, order: &[usize]) -> Result<(), EngineError> {
        let _ = order;
        Err(EngineError::Unsupported("resident training data".into()))
    }

    /// One Adam step on positions `start..start + len` of the current order of the resident
    /// data. It is only queued: nothing waits for the device, and its loss and correct
    /// predictions are added to the totals [`Trainer::take_stats`] returns.
    fn train_resident(&mut self, start: usize, len: usize) -> Result<(), EngineError> {
        let _ = (start, len);
        Err(EngineError::Unsupported("resident training data".into()))
    }

    /// The totals of the resident steps since the last call (waiting for the device), and
    /// starts new ones.
    fn take_stats(&mut self) -> Result<PassStats, EngineError> {
        Err(EngineError::Unsupported("resident training data".into()))
    }
}

/// A training engine: builds trainers on one device.
pub trait Engine: Send + Sync {
    /// Short name: `burn` or `torch`.
    fn name(&self) -> &'static str;

    /// The device trainers run on, e.g. `cpu` or `cuda:0`.
    fn device(&self) -> String;

    /// Builds a freshly initialised network (weights seeded with `seed`) with an Adam optimiser.
    fn build(
        &self,
        spec: &NetworkSpec,
        adam: &AdamConfig,
        seed: u64,
    ) -> Result<Box<dyn Trainer>, EngineError>;

    /// A function that waits for the device, for energy windows' edges; `None` on CPU engines.
    fn sync_hook(&self) -> Option<Box<dyn Fn() + Send + Sync>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_differences_fit_a_non_decreasing_sequence() {
        let layers = prefix_differences(&[2.0, 5.0, 4.5, 9.0]);
        assert_eq!(
            layers,
            vec![Seconds(2.0), Seconds(2.75), Seconds(0.0), Seconds(4.25)]
        );
        let total: f64 = layers.iter().map(|s| s.0).sum();
        assert_eq!(total, 9.0, "the parts add up to the fitted whole");
        // Noisy readings of the longest prefixes are averaged, not maximised.
        let layers = prefix_differences(&[2.0, 10.0, 9.0, 9.5]);
        assert_eq!(
            layers,
            vec![Seconds(2.0), Seconds(7.5), Seconds(0.0), Seconds(0.0)]
        );
        // A negative reading (bookkeeping larger than a tiny layer) floors at zero.
        assert_eq!(
            prefix_differences(&[-1.0, 3.0]),
            vec![Seconds(0.0), Seconds(3.0)]
        );
        assert_eq!(
            prefix_differences(&[-1.0, -3.0]),
            vec![Seconds(0.0), Seconds(0.0)]
        );
        // Already increasing: the plain differences.
        assert_eq!(
            prefix_differences(&[1.0, 2.0, 4.0]),
            vec![Seconds(1.0), Seconds(1.0), Seconds(2.0)]
        );
        assert!(prefix_differences(&[]).is_empty());
    }
}
