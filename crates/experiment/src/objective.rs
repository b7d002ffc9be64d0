//! The built-in tuning objective: train one of the paper's networks with the trial's
//! parameters and report test accuracy after every epoch (so pruners can stop it early).

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;

use greenlab_data::{DEFAULT_FASHION_MNIST_DIR, DatasetKind, Split};
use greenlab_engine::Engine;
use greenlab_meter::Tracker;
use greenlab_model::Architecture;
use greenlab_train::{Control, TrainConfig, train_interruptible};
use greenlab_tune::study::{
    ObjectiveError, ObjectiveFunction, ObjectiveOutput, TrialContext, trial_energy_of,
};
use greenlab_tune::{ParamValue, Params};
use serde::Deserialize;

use crate::ExperimentError;

/// Trains a network per trial. Parameters named like training settings override the base
/// configuration: `lr`, `beta1`, `beta2`, `eps` (or `epsilon`), `weight_decay`, `conv`,
/// `linear`, `relu`, `batch_size`, `epochs`, `seed`; any other name fails the trial (a typo in a
/// search space must not silently tune nothing).
pub struct TrainObjective {
    /// The engine every trial trains with.
    pub engine: Arc<dyn Engine>,
    /// The loaded dataset, shared by all trials.
    pub split: Arc<Split>,
    /// Settings the parameters start from.
    pub base: TrainConfig,
    /// Measures each trial (the training loop opens one window per epoch).
    pub tracker: Arc<Tracker>,
}

/// The base training run, as written in `[training]` of a factorial design or in
/// `[objective] options` of a tuning study with `kind = "train"`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainSettings {
    /// `simple-cnn`, `dense-poly` or `dense-linear`.
    pub model: String,
    /// Conv blocks (SimpleCNN).
    pub conv: usize,
    /// Linear layers including the classifier.
    pub linear: usize,
    /// ReLU after each conv block (SimpleCNN).
    pub relu: bool,
    /// `fashion-mnist`, `mnist` or `cifar10`.
    pub dataset: String,
    /// Folder with the dataset's files.
    pub data_dir: PathBuf,
    /// Passes over the training data.
    pub epochs: usize,
    /// Examples per step.
    pub batch_size: usize,
    /// Adam's learning rate (before the trial's parameters).
    pub lr: f64,
    /// Training images per run (a seeded subset); all when absent.
    pub limit_train: Option<usize>,
    /// Test images per evaluation; all when absent.
    pub limit_test: Option<usize>,
    /// Seed of weights, order and subsets.
    pub seed: u64,
    /// Engine (`burn`, `torch`); for tuning studies only (other commands take `--engine`).
    pub engine: String,
    /// Device (`cpu`, `cuda:0`); for tuning studies only.
    pub device: String,
}

impl Default for TrainSettings {
    fn default() -> Self {
        TrainSettings {
            model: "simple-cnn".into(),
            conv: 2,
            linear: 3,
            relu: true,
            dataset: "fashion-mnist".into(),
            data_dir: DEFAULT_FASHION_MNIST_DIR.into(),
            epochs: 1,
            batch_size: 512,
            lr: 1e-3,
            limit_train: Some(4096),
            limit_test: Some(2000),
            seed: 1,
            engine: "burn".into(),
            device: "cpu".into(),
        }
    }
}

impl TrainSettings {
    /// The network these settings name.
    pub fn architecture(&self) -> Result<Architecture, ExperimentError> {
        Ok(match self.model.as_str() {
            "simple-cnn" => Architecture::SimpleCnn {
                conv: self.conv,
                linear: self.linear,
                relu: self.relu,
            },
            "dense-poly" => Architecture::DensePoly {
                linear: self.linear,
            },
            "dense-linear" => Architecture::DenseLinear {
                linear: self.linear,
            },
            other => bail!("unknown model {other:?}; known: simple-cnn, dense-poly, dense-linear"),
        })
    }

    /// The training configuration these settings describe.
    pub fn to_config(&self) -> Result<TrainConfig, ExperimentError> {
        let mut c = TrainConfig {
            architecture: self.architecture()?,
            dataset: self
                .dataset
                .parse::<DatasetKind>()
                .map_err(|e| ExperimentError::Invalid(e.to_string()))?,
            data_dir: self.data_dir.clone(),
            epochs: self.epochs,
            batch_size: self.batch_size,
            limit_train: self.limit_train,
            limit_test: self.limit_test,
            seed: self.seed,
            ..TrainConfig::default()
        };
        c.adam.lr = self.lr;
        c.validate()
            .map_err(|e| ExperimentError::Invalid(e.to_string()))?;
        Ok(c)
    }
}

impl TrainObjective {
    /// The training configuration for a trial's parameters.
    pub fn config_for(&self, params: &Params) -> Result<TrainConfig, ExperimentError> {
        apply_params(&self.base, params)
    }
}

fn as_f64(name: &str, v: &ParamValue) -> Result<f64, ExperimentError> {
    v.as_f64().ok_or_else(|| {
        ExperimentError::Invalid(format!("parameter {name} must be a number, got {v}"))
    })
}

fn as_usize(name: &str, v: &ParamValue) -> Result<usize, ExperimentError> {
    let x = as_f64(name, v)?;
    if x < 0.0 || x.fract() != 0.0 {
        bail!("parameter {name} must be a non-negative integer, got {v}");
    }
    Ok(x as usize)
}

fn as_bool(name: &str, v: &ParamValue) -> Result<bool, ExperimentError> {
    match v {
        ParamValue::Bool(b) => Ok(*b),
        ParamValue::Int(i) => Ok(*i != 0),
        ParamValue::Str(s) => match s.as_str() {
            "on" | "true" | "yes" => Ok(true),
            "off" | "false" | "no" => Ok(false),
            _ => bail!("parameter {name} must be on/off, got {s:?}"),
        },
        ParamValue::Float(_) => bail!("parameter {name} must be on/off, got {v}"),
    }
}

/// Applies a trial's parameters to a base training configuration.
pub fn apply_params(base: &TrainConfig, params: &Params) -> Result<TrainConfig, ExperimentError> {
    let mut c = base.clone();
    for (name, v) in params {
        match name.as_str() {
            "lr" | "learning_rate" => c.adam.lr = as_f64(name, v)?,
            "beta1" => c.adam.beta1 = as_f64(name, v)?,
            "beta2" => c.adam.beta2 = as_f64(name, v)?,
            "eps" | "epsilon" => c.adam.eps = as_f64(name, v)?,
            "weight_decay" => c.adam.weight_decay = as_f64(name, v)?,
            "batch_size" => c.batch_size = as_usize(name, v)?,
            "epochs" => c.epochs = as_usize(name, v)?,
            "seed" => c.seed = as_usize(name, v)? as u64,
            // Repetition index of a factorial design: it only varies the seed.
            "rep" => c.seed = base.seed.wrapping_add(1000 * as_usize(name, v)? as u64),
            "conv" | "linear" | "relu" => {
                c.architecture = match (c.architecture, name.as_str()) {
                    (Architecture::SimpleCnn { linear, relu, .. }, "conv") => {
                        Architecture::SimpleCnn {
                            conv: as_usize(name, v)?,
                            linear,
                            relu,
                        }
                    }
                    (Architecture::SimpleCnn { conv, relu, .. }, "linear") => {
                        Architecture::SimpleCnn {
                            conv,
                            linear: as_usize(name, v)?,
                            relu,
                        }
                    }
                    (Architecture::SimpleCnn { conv, linear, .. }, "relu") => {
                        Architecture::SimpleCnn {
                            conv,
                            linear,
                            relu: as_bool(name, v)?,
                        }
                    }
                    (Architecture::DensePoly { .. }, "linear") => Architecture::DensePoly {
                        linear: as_usize(name, v)?,
                    },
                    (Architecture::DenseLinear { .. }, "linear") => Architecture::DenseLinear {
                        linear: as_usize(name, v)?,
                    },
                    (arch, _) => bail!("parameter {name} does not apply to {arch}"),
                }
            }
            _ => bail!(
                "unknown training parameter {name:?}; known: lr, beta1, beta2, eps, weight_decay, batch_size, epochs, seed, rep, conv, linear, relu"
            ),
        }
    }
    c.validate()
        .map_err(|e| ExperimentError::Invalid(e.to_string()))?;
    Ok(c)
}

impl TrainObjective {
    /// The training settings that make trials of this objective comparable (everything but
    /// the data folder and the tuned parameters' defaults), stored with a study so a rerun
    /// with other settings is refused instead of mixing incomparable trials in one study.
    pub fn identity(&self) -> serde_json::Map<String, serde_json::Value> {
        let b = &self.base;
        let mut m = serde_json::Map::new();
        m.insert(
            "model".into(),
            serde_json::json!(b.architecture.to_string()),
        );
        m.insert("dataset".into(), serde_json::json!(b.dataset.to_string()));
        m.insert("epochs".into(), serde_json::json!(b.epochs));
        m.insert("batch_size".into(), serde_json::json!(b.batch_size));
        m.insert("limit_train".into(), serde_json::json!(b.limit_train));
        m.insert("limit_test".into(), serde_json::json!(b.limit_test));
        m.insert("engine".into(), serde_json::json!(self.engine.name()));
        m
    }
}

impl ObjectiveFunction for TrainObjective {
    fn run(
        &self,
        params: &Params,
        ctx: &mut TrialContext<'_>,
    ) -> Result<ObjectiveOutput, ObjectiveError> {
        let config = self
            .config_for(params)
            .map_err(|e| ObjectiveError::Failed(e.to_string()))?;
        // The trial's attributed energy so far; unknown from the first unmeasured window on.
        let mut cumulative = Some(greenlab_meter::Joules(0.0));
        let cancel = ctx.cancel_flag();
        let mut callback = |epoch: &greenlab_train::EpochReport| {
            let add = |c: Option<greenlab_meter::Joules>, m: &greenlab_meter::Measurement| {
                c.zip(m.attributed).map(|(a, b)| a + b)
            };
            cumulative = add(cumulative, &epoch.energy);
            if let Some(e) = &epoch.evaluation {
                cumulative = add(cumulative, e);
            }
            match epoch.test_accuracy {
                Some(acc) if acc.is_finite() => {
                    match ctx.report(epoch.epoch as u32, acc, cumulative) {
                        ControlFlow::Continue(()) => Control::Continue,
                        ControlFlow::Break(()) => Control::Stop,
                    }
                }
                _ => Control::Continue,
            }
        };
        let result = train_interruptible(
            self.engine.as_ref(),
            &self.split,
            &config,
            &self.tracker,
            &mut callback,
            cancel,
        )
        .map_err(|e| ObjectiveError::Failed(e.to_string()))?;
        if let greenlab_train::RunStatus::Interrupted { epoch, step } = result.status {
            return Err(ObjectiveError::Failed(format!(
                "training interrupted at epoch {epoch}, step {step}"
            )));
        }
        let mut metrics = BTreeMap::new();
        if let Some(acc) = result.final_test_accuracy {
            metrics.insert("accuracy".to_string(), acc);
        }
        if let Some(best) = result.best_test_accuracy {
            metrics.insert("best_accuracy".to_string(), best);
        }
        if let Some(last) = result.epochs.last() {
            metrics.insert("train_loss".to_string(), last.train_loss);
            if let Some(l) = last.test_loss {
                metrics.insert("loss".to_string(), l);
            }
        }
        metrics.insert("images_per_second".to_string(), result.images_per_second());
        metrics.insert("parameters".to_string(), result.parameters as f64);
        let windows: Vec<greenlab_meter::Measurement> = result
            .epochs
            .iter()
            .flat_map(|e| std::iter::once(&e.energy).chain(e.evaluation.as_ref()))
            .cloned()
            .collect();
        Ok(ObjectiveOutput {
            metrics,
            energy: Some(trial_energy_of(&windows)),
            diverged: result.diverged(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_override_the_base_config() {
        let base = TrainConfig::default();
        let mut p = Params::new();
        p.insert("lr".into(), ParamValue::Float(0.01));
        p.insert("conv".into(), ParamValue::Int(4));
        p.insert("relu".into(), ParamValue::Bool(false));
        let c = apply_params(&base, &p).unwrap();
        assert_eq!(c.adam.lr, 0.01);
        assert_eq!(
            c.architecture,
            Architecture::SimpleCnn {
                conv: 4,
                linear: 3,
                relu: false
            }
        );
    }

    #[test]
    fn the_example_study_uses_valid_training_settings() {
        let config = greenlab_tune::config::StudyConfig::from_toml(include_str!(
            "../../../examples/study.toml"
        ))
        .unwrap();
        let settings: TrainSettings =
            serde_json::from_value(serde_json::Value::Object(config.objective.options.clone()))
                .unwrap();
        let c = settings.to_config().unwrap();
        assert_eq!(
            c.architecture,
            Architecture::SimpleCnn {
                conv: 2,
                linear: 3,
                relu: true
            }
        );
        assert_eq!((c.epochs, c.limit_train), (2, Some(8192)));
        let bad = serde_json::json!({ "modle": "simple-cnn" });
        assert!(
            serde_json::from_value::<TrainSettings>(bad).is_err(),
            "typos in settings are errors"
        );
    }

    #[test]
    fn unknown_or_misplaced_parameters_are_errors() {
        let base = TrainConfig::default();
        let mut p = Params::new();
        p.insert("learnin_rate".into(), ParamValue::Float(0.01));
        assert!(
            apply_params(&base, &p)
                .unwrap_err()
                .to_string()
                .contains("unknown training parameter")
        );
        let dense = TrainConfig {
            architecture: Architecture::DensePoly { linear: 3 },
            ..TrainConfig::default()
        };
        let mut p = Params::new();
        p.insert("conv".into(), ParamValue::Int(2));
        assert!(apply_params(&dense, &p).is_err());
        let mut p = Params::new();
        p.insert("beta1".into(), ParamValue::Float(1.5));
        assert!(
            apply_params(&base, &p).is_err(),
            "validation runs after the overrides"
        );
    }
}
