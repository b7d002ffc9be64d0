//! greenlab-train: train a network with any engine and measure what every epoch cost.
//!
//! [`train`] runs the training loop over a loaded [`Split`]: seeded shuffled mini-batches, one
//! optimisation step each, evaluation on the test set after every epoch, and one energy window
//! of the meter's [`Tracker`] around each epoch's training and each evaluation (the device is
//! synchronised at both edges). It returns a serialisable [`TrainResult`] with the resolved
//! config, per-epoch loss, accuracy, duration, images/s and energy with its source. A NaN or
//! infinite loss stops the run and marks it diverged — a result, not an error, so nothing
//! measured is lost. A callback sees every finished epoch and may stop the run (the tuner's
//! pruners do).
//!
//! [`profile`] attributes the time and energy of training steps to each layer and layer type
//! with confidence intervals over repetitions ([`LayerProfileReport`]).
//!
//! What it does not do: load data (see `greenlab-data`), pick an engine (the caller passes a
//! `dyn Engine`), write files or draw progress bars (the cli does).
//!
//! ```no_run
//! use greenlab_train::{Control, TrainConfig, train};
//! # fn engine() -> Box<dyn greenlab_engine::Engine> { unimplemented!() }
//! let config = TrainConfig { epochs: 1, ..TrainConfig::default() };
//! let split = greenlab_data::load(config.dataset, &config.data_dir)?;
//! let tracker = greenlab_meter::Tracker::estimate_only();
//! let result = train(engine().as_ref(), &split, &config, &tracker, &mut |epoch| {
//!     println!("epoch {}: test accuracy {:?}", epoch.epoch, epoch.test_accuracy);
//!     Control::Continue
//! })?;
//! println!("{:?} after {:?} ({})", result.final_test_accuracy, result.attributed_energy, result.energy_provenance);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod profile;
mod run;

use std::path::PathBuf;

use greenlab_data::{DEFAULT_FASHION_MNIST_DIR, DatasetKind};
use greenlab_engine::{AdamConfig, EngineError};
use greenlab_meter::{Joules, Measurement, MeterError, Provenance, Seconds, Source};

fn not_measured() -> Provenance {
    Provenance::NotMeasured
}
use greenlab_model::{Architecture, ModelError};
use serde::{Deserialize, Serialize};

pub use profile::{Estimate, LayerProfileReport, LayerRow, TypeRow, profile};
pub use run::{Observer, train, train_interruptible, train_with};

/// What can go wrong while training or profiling.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// The configuration is invalid.
    #[error("invalid training configuration: {0}")]
    Config(String),
    /// The network cannot be built for this dataset.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The engine failed (building, a step, an evaluation).
    #[error("epoch {epoch}: {source}")]
    Engine {
        /// The epoch it failed in (0: while building).
        epoch: usize,
        /// The engine's error.
        source: EngineError,
    },
    /// The energy meter failed.
    #[error("energy meter: {0}")]
    Meter(#[from] MeterError),
    /// The dataset does not suit the run (empty, too few classes).
    #[error("dataset: {0}")]
    Data(String),
    /// Work that needs an energy figure met a window whose energy is not known.
    #[error("energy not measured: {0}; see `greenlab meters`")]
    EnergyUnknown(String),
}

/// Everything that defines a training run (the resolved config written beside its results).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// The network.
    pub architecture: Architecture,
    /// The dataset (informational: [`train`] takes the loaded split).
    pub dataset: DatasetKind,
    /// Where the dataset was read from (informational).
    pub data_dir: PathBuf,
    /// Passes over the training set.
    pub epochs: usize,
    /// Examples per optimisation step.
    pub batch_size: usize,
    /// Adam's settings.
    pub adam: AdamConfig,
    /// Seeds the weights, the shuffling and the subsets.
    pub seed: u64,
    /// Train on a seeded random subset of this many examples.
    pub limit_train: Option<usize>,
    /// Evaluate on a seeded random subset of this many test examples.
    pub limit_test: Option<usize>,
    /// Train every epoch on one batch order, shuffled once with this seed, instead of a fresh
    /// order every epoch seeded by `seed` (the paper's code turned its shuffled loader into a
    /// list once, so every epoch of every run saw the same batches). The training subset, if
    /// any, is drawn with it too, so runs with other `seed`s differ only in their weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fixed_batch_order: Option<u64>,
}

impl Default for TrainConfig {
    /// The paper's SimpleCNN(2, 3) on Fashion-MNIST, batch 512, Adam defaults, 3 epochs.
    fn default() -> Self {
        TrainConfig {
            architecture: Architecture::SimpleCnn {
                conv: 2,
                linear: 3,
                relu: true,
            },
            dataset: DatasetKind::FashionMnist,
            data_dir: PathBuf::from(DEFAULT_FASHION_MNIST_DIR),
            epochs: 3,
            batch_size: 512,
            adam: AdamConfig::default(),
            seed: 1,
            limit_train: None,
            limit_test: None,
            fixed_batch_order: None,
        }
    }
}

impl TrainConfig {
    /// Checks ranges; the message says which setting to fix.
    pub fn validate(&self) -> Result<(), TrainError> {
        if self.epochs == 0 {
            return Err(TrainError::Config("epochs must be at least 1".into()));
        }
        if self.batch_size == 0 {
            return Err(TrainError::Config("batch size must be at least 1".into()));
        }
        if self.limit_train == Some(0) || self.limit_test == Some(0) {
            return Err(TrainError::Config(
                "a train/test limit must be at least 1 example".into(),
            ));
        }
        self.adam.validate().map_err(TrainError::Config)
    }
}

/// What the callback tells the loop after an epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// Go on with the next epoch.
    Continue,
    /// Stop now (e.g. the tuner pruned the trial); the result says so.
    Stop,
}

/// Progress inside an epoch, for progress bars.
#[derive(Clone, Debug, PartialEq)]
pub struct StepReport {
    /// Epoch, from 1.
    pub epoch: usize,
    /// Steps done in this epoch.
    pub step: usize,
    /// Steps in a full epoch.
    pub steps: usize,
    /// Mean loss over this epoch so far.
    pub loss: f64,
    /// Training accuracy over this epoch so far.
    pub accuracy: f64,
    /// Training throughput over this epoch so far.
    pub images_per_second: f64,
    /// Attributed energy of the whole run so far (updated every few steps); `None` once any
    /// window of the run was not measured.
    pub energy_so_far: Option<Joules>,
}

/// One epoch's figures.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochReport {
    /// Epoch, from 1.
    pub epoch: usize,
    /// Mean training loss over the epoch (before each step's update). NaN or infinite when the
    /// epoch diverged (written as `null` in JSON).
    #[serde(with = "finite_or_null")]
    pub train_loss: f64,
    /// Training accuracy over the epoch (before each step's update).
    pub train_accuracy: f64,
    /// Mean test loss; `None` when the epoch diverged (no evaluation).
    pub test_loss: Option<f64>,
    /// Test accuracy; `None` when the epoch diverged.
    pub test_accuracy: Option<f64>,
    /// Optimisation steps taken.
    pub steps: usize,
    /// Training examples seen.
    pub examples: usize,
    /// Training time of the epoch (evaluation excluded).
    pub duration: Seconds,
    /// Training throughput.
    pub images_per_second: f64,
    /// The training window: energy per domain with sources, power, warnings.
    pub energy: Measurement,
    /// The evaluation window; `None` when the epoch diverged.
    pub evaluation: Option<Measurement>,
    /// Whether the loss became NaN or infinite in this epoch.
    pub diverged: bool,
}

/// How a run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum RunStatus {
    /// All epochs ran.
    Completed,
    /// The loss became NaN or infinite at this epoch and step (both from 1).
    Diverged {
        /// The epoch.
        epoch: usize,
        /// The step inside it.
        step: usize,
    },
    /// The callback stopped the run after this epoch.
    Stopped {
        /// The last epoch that ran.
        epoch: usize,
    },
    /// Interrupted (e.g. Ctrl-C) after this step of this epoch (both from 1); the epoch was
    /// not evaluated unless it had finished.
    Interrupted {
        /// The epoch.
        epoch: usize,
        /// The last step that ran.
        step: usize,
    },
}

/// A whole run: its config, every epoch, and the totals.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainResult {
    /// The run's settings.
    pub config: TrainConfig,
    /// Engine name (`burn`, `torch`).
    pub engine: String,
    /// Device (`cpu`, `cuda:0`).
    pub device: String,
    /// The network's name.
    pub network: String,
    /// Its trainable parameters.
    pub parameters: usize,
    /// Its forward FLOPs per example.
    pub forward_flops: u64,
    /// Training examples used per epoch.
    pub train_examples: usize,
    /// Test examples evaluated per epoch.
    pub test_examples: usize,
    /// How the run ended.
    pub status: RunStatus,
    /// Per epoch, in order (a diverged epoch is included, marked).
    pub epochs: Vec<EpochReport>,
    /// Test accuracy after the last evaluated epoch.
    pub final_test_accuracy: Option<f64>,
    /// Best test accuracy over the evaluated epochs.
    pub best_test_accuracy: Option<f64>,
    /// Energy of the training windows (machine figure); `None` when any was not measured.
    pub training_energy: Option<Joules>,
    /// Energy of the evaluation windows (machine figure); `None` when any was not measured.
    pub evaluation_energy: Option<Joules>,
    /// Training plus evaluation energy, machine figure: what the machine used meanwhile.
    pub total_energy: Option<Joules>,
    /// Training plus evaluation energy attributed to this process: what the run cost.
    #[serde(default)]
    pub attributed_energy: Option<Joules>,
    /// The weakest source among all windows' measured domains.
    pub energy_source: Source,
    /// What the energy figures are (counter, estimated, mixed, not measured).
    #[serde(default = "not_measured")]
    pub energy_provenance: Provenance,
    /// Why the energy is unknown, when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub energy_unknown: Option<String>,
    /// Training time (evaluation excluded).
    pub training_duration: Seconds,
    /// Training plus evaluation time.
    pub total_duration: Seconds,
    /// Each domain the meter read and how (`cpu-package-0: estimated`).
    pub meter: Vec<String>,
    /// The meter's notes (estimates, fallbacks).
    pub meter_notes: Vec<String>,
}

impl TrainResult {
    /// Whether the run diverged.
    pub fn diverged(&self) -> bool {
        matches!(self.status, RunStatus::Diverged { .. })
    }

    /// Whether the run was interrupted before it finished.
    pub fn interrupted(&self) -> bool {
        matches!(self.status, RunStatus::Interrupted { .. })
    }

    /// Mean training throughput over all epochs.
    pub fn images_per_second(&self) -> f64 {
        let examples: usize = self.epochs.iter().map(|e| e.examples).sum();
        if self.training_duration.0 > 0.0 {
            examples as f64 / self.training_duration.0
        } else {
            0.0
        }
    }
}

/// Serialises non-finite floats as `null` (JSON has no NaN) and reads `null` back as NaN.
mod finite_or_null {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(x: &f64, s: S) -> Result<S::Ok, S::Error> {
        if x.is_finite() {
            s.serialize_f64(*x)
        } else {
            s.serialize_none()
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_validation_names_the_setting() {
        assert!(TrainConfig::default().validate().is_ok());
        let bad = TrainConfig {
            epochs: 0,
            ..TrainConfig::default()
        };
        assert!(bad.validate().unwrap_err().to_string().contains("epochs"));
        let bad = TrainConfig {
            batch_size: 0,
            ..TrainConfig::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("batch size")
        );
        let mut bad = TrainConfig::default();
        bad.adam.lr = -1.0;
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("learning rate")
        );
        let bad = TrainConfig {
            limit_train: Some(0),
            ..TrainConfig::default()
        };
        assert!(bad.validate().is_err());
    }

    #[test]
    fn config_round_trips_through_json() {
        let c = TrainConfig {
            limit_train: Some(100),
            ..TrainConfig::default()
        };
        let json = serde_json::to_string(&c).unwrap();
        assert!(json.contains("\"model\":\"simple-cnn\""), "{json}");
        assert_eq!(serde_json::from_str::<TrainConfig>(&json).unwrap(), c);
    }

    #[test]
    fn run_status_is_tagged() {
        let s = serde_json::to_string(&RunStatus::Diverged { epoch: 2, step: 7 }).unwrap();
        assert_eq!(s, r#"{"status":"diverged","epoch":2,"step":7}"#);
    }
}
