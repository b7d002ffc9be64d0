//! The built-in tuning objective: train one of the paper's networks with the trial's
//! parameters and report test accuracy after every epoch (so pruners can stop it early).

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::Arc;

use anyhow::{Context, bail};
use greenlab_data::Split;
use greenlab_engine::Engine;
use greenlab_meter::Tracker;
use greenlab_model::Architecture;
use greenlab_train::{Control, TrainConfig, train};
use greenlab_tune::study::{ObjectiveError, ObjectiveFunction, ObjectiveOutput, TrialContext};
use greenlab_tune::{ParamValue, Params, TrialEnergy};

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

impl TrainObjective {
    /// The training configuration for a trial's parameters.
    pub fn config_for(&self, params: &Params) -> anyhow::Result<TrainConfig> {
        apply_params(&self.base, params)
    }
}

fn as_f64(name: &str, v: &ParamValue) -> anyhow::Result<f64> {
    v.as_f64()
        .with_context(|| format!("parameter {name} must be a number, got {v}"))
}

fn as_usize(name: &str, v: &ParamValue) -> anyhow::Result<usize> {
    let x = as_f64(name, v)?;
    if x < 0.0 || x.fract() != 0.0 {
        bail!("parameter {name} must be a non-negative integer, got {v}");
    }
    Ok(x as usize)
}

fn as_bool(name: &str, v: &ParamValue) -> anyhow::Result<bool> {
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
pub fn apply_params(base: &TrainConfig, params: &Params) -> anyhow::Result<TrainConfig> {
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
    c.validate().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(c)
}

impl ObjectiveFunction for TrainObjective {
    fn run(
        &self,
        params: &Params,
        ctx: &mut TrialContext<'_>,
    ) -> Result<ObjectiveOutput, ObjectiveError> {
        let config = self
            .config_for(params)
            .map_err(|e| ObjectiveError::Failed(format!("{e:#}")))?;
        let mut cumulative = greenlab_meter::Joules(0.0);
        let mut callback = |epoch: &greenlab_train::EpochReport| {
            cumulative += epoch.energy.total;
            if let Some(e) = &epoch.evaluation {
                cumulative += e.total;
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
        let result = train(
            self.engine.as_ref(),
            &self.split,
            &config,
            &self.tracker,
            &mut callback,
        )
        .map_err(|e| ObjectiveError::Failed(e.to_string()))?;
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
        Ok(ObjectiveOutput {
            metrics,
            energy: Some(TrialEnergy {
                total: result.total_energy,
                source: result.energy_source,
                duration: result.total_duration,
                domains: Vec::new(),
            }),
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
