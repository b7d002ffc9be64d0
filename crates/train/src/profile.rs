//! Per-layer profiling: where the time and energy of a training step go.

use std::collections::BTreeMap;

use greenlab_data::Batch;
use greenlab_engine::{AdamConfig, Engine, StepProfile};
use greenlab_meter::{Joules, Seconds, Source, Tracker, Watts};
use greenlab_model::{Activation, Layer, NetworkSpec};
use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::TrainError;

/// Steps run before measuring, so first-step allocations are not charged to a layer.
const WARMUP_STEPS: usize = 2;

/// A mean over repetitions with a 95 % confidence interval (Student's t).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    /// Mean over repetitions.
    pub mean: f64,
    /// Half-width of the 95 % interval: `t(0.975, R−1) · s / √R`; `None` with one repetition.
    pub half_width: Option<f64>,
}

impl Estimate {
    /// The mean and interval of `values` (one per repetition).
    pub fn from_samples(values: &[f64]) -> Estimate {
        let n = values.len();
        if n == 0 {
            return Estimate {
                mean: f64::NAN,
                half_width: None,
            };
        }
        let mean = values.iter().sum::<f64>() / n as f64;
        if n < 2 {
            return Estimate {
                mean,
                half_width: None,
            };
        }
        let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        let t = StudentsT::new(0.0, 1.0, (n - 1) as f64)
            .map(|d| d.inverse_cdf(0.975))
            .ok();
        Estimate {
            mean,
            half_width: t.map(|t| t * var.sqrt() / (n as f64).sqrt()),
        }
    }
}

/// One layer's share of a training step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerRow {
    /// Index in the spec.
    pub index: usize,
    /// The layer's type (`conv`, `batch-norm`, `relu`, `pool`, `flatten`, `linear`).
    pub kind: String,
    /// Sizes, e.g. `1→3 3x3` or `784→392`.
    pub detail: String,
    /// Trainable parameters.
    pub parameters: usize,
    /// Forward FLOPs for the whole batch.
    pub forward_flops: u64,
    /// Forward time per step.
    pub forward: Estimate,
    /// Backward time per step, where the engine separates it.
    pub backward: Option<Estimate>,
    /// Forward + backward time per step (seconds).
    pub time: Estimate,
    /// Energy per step attributed from the measured power (joules).
    pub energy: Estimate,
    /// Share of the whole step's time, in percent.
    pub time_share: f64,
    /// Share of the network's forward FLOPs, in percent.
    pub flop_share: f64,
}

/// One layer type's (or the loss's, or the optimiser's) share of a training step.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TypeRow {
    /// `conv`, `batch-norm`, `relu`, `pool`, `flatten`, `linear`, `loss` or `optimizer`.
    pub kind: String,
    /// Layers of this type.
    pub layers: usize,
    /// Trainable parameters.
    pub parameters: usize,
    /// Forward FLOPs for the whole batch.
    pub forward_flops: u64,
    /// Time per step (seconds).
    pub time: Estimate,
    /// Energy per step (joules).
    pub energy: Estimate,
    /// Share of the whole step's time, in percent.
    pub time_share: f64,
    /// Share of the network's forward FLOPs, in percent.
    pub flop_share: f64,
}

/// Where the time and energy of a training step go.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerProfileReport {
    /// The network.
    pub network: String,
    /// Engine name.
    pub engine: String,
    /// Device.
    pub device: String,
    /// Examples per step.
    pub batch_size: usize,
    /// Profiled steps per repetition.
    pub steps: usize,
    /// Repetitions (each one energy window).
    pub repeat: usize,
    /// Per layer, in order.
    pub layers: Vec<LayerRow>,
    /// Per layer type, then the loss and the optimiser step.
    pub types: Vec<TypeRow>,
    /// A whole ordinary training step (seconds).
    pub whole_step: Estimate,
    /// A whole step's energy (joules).
    pub whole_step_energy: Estimate,
    /// The sum of all attributed parts (seconds).
    pub attributed: Estimate,
    /// `whole_step − attributed`, per repetition (seconds; negative when the parts, each timed
    /// with the device synchronised around it, cost more than the step).
    pub unattributed: Estimate,
    /// `unattributed / whole_step` in percent (target: within ±5 %).
    pub unattributed_percent: Estimate,
    /// Average power attributed to this process over each repetition's window.
    pub power: Estimate,
    /// How the energy was obtained.
    pub energy_source: Source,
    /// Warnings from the energy windows (e.g. windows shorter than the sensor resolves).
    pub warnings: Vec<String>,
}

/// Profiles `steps` training steps of `spec` on `batch`, `repeat` times.
///
/// Each repetition is one energy window of `tracker` around `steps` calls to the engine's
/// `profile_step`; a part's energy is its time multiplied by that window's average power, so
/// short layers are resolved by time and repetition rather than by the counter's update rate.
/// Every figure comes with a 95 % interval over the repetitions. The network is built with
/// Adam's defaults and seed 1, and warmed up with two ordinary steps first.
pub fn profile(
    engine: &dyn Engine,
    spec: &NetworkSpec,
    batch: &Batch,
    steps: usize,
    repeat: usize,
    tracker: &Tracker,
) -> Result<LayerProfileReport, TrainError> {
    if steps == 0 || repeat == 0 {
        return Err(TrainError::Config(
            "profiling needs at least 1 step and 1 repetition".into(),
        ));
    }
    let engine_err = |source| TrainError::Engine { epoch: 0, source };
    let mut trainer = engine
        .build(spec, &AdamConfig::default(), 1)
        .map_err(engine_err)?;
    for _ in 0..WARMUP_STEPS {
        trainer.train_step(batch).map_err(engine_err)?;
    }
    let sync = engine.sync_hook();
    let do_sync = || {
        if let Some(s) = &sync {
            s();
        }
    };

    // Per repetition: mean seconds per step of each part, and the window's power.
    let mut reps: Vec<(Parts, Watts)> = Vec::with_capacity(repeat);
    let mut source = Source::Counter;
    let mut warnings = Vec::new();
    for r in 0..repeat {
        do_sync();
        let window = tracker.begin(&format!("profile-{r}"))?;
        let mut parts = Parts::zero(spec.layers.len());
        for _ in 0..steps {
            match trainer.profile_step(batch) {
                Ok(p) => parts.add(&p),
                Err(e) => {
                    let _ = tracker.end(window);
                    return Err(engine_err(e));
                }
            }
        }
        do_sync();
        let m = tracker.end(window)?;
        source = source.min(m.source());
        warnings.extend(m.warnings.iter().cloned());
        parts.scale(1.0 / steps as f64);
        // Per-layer energy is time × the power attributed to this process: without that
        // power there is nothing to split, and a guess would be passed off as a figure.
        let power = m
            .attributed
            .and_then(|e| e.per(m.duration))
            .ok_or_else(|| {
                TrainError::EnergyUnknown(format!(
                    "profile repetition {r}: {}",
                    m.unknown.clone().unwrap_or_else(|| {
                        "the window's energy could not be attributed to this process".into()
                    })
                ))
            })?;
        reps.push((parts, power));
    }
    warnings.sort();
    warnings.dedup();
    Ok(summarise(
        spec, engine, batch.size, steps, repeat, &reps, source, warnings,
    ))
}

/// Seconds per step of each part of a training step.
#[derive(Clone, Debug)]
struct Parts {
    forward: Vec<f64>,
    backward: Vec<Option<f64>>,
    loss: f64,
    optimizer: f64,
    whole: f64,
}

impl Parts {
    fn zero(layers: usize) -> Parts {
        Parts {
            forward: vec![0.0; layers],
            backward: vec![Some(0.0); layers],
            loss: 0.0,
            optimizer: 0.0,
            whole: 0.0,
        }
    }

    fn add(&mut self, p: &StepProfile) {
        for t in &p.layers {
            if let Some(f) = self.forward.get_mut(t.index) {
                *f += t.forward.0;
            }
            if let Some(b) = self.backward.get_mut(t.index) {
                *b = match (*b, t.backward) {
                    (Some(acc), Some(x)) => Some(acc + x.0),
                    _ => None,
                };
            }
        }
        self.loss += p.loss.0;
        self.optimizer += p.optimizer.0;
        self.whole += p.whole_step.0;
    }

    fn scale(&mut self, k: f64) {
        self.forward.iter_mut().for_each(|x| *x *= k);
        self.backward.iter_mut().flatten().for_each(|x| *x *= k);
        self.loss *= k;
        self.optimizer *= k;
        self.whole *= k;
    }

    fn layer_time(&self, i: usize) -> f64 {
        self.forward[i] + self.backward[i].unwrap_or(0.0)
    }

    fn attributed(&self) -> f64 {
        (0..self.forward.len())
            .map(|i| self.layer_time(i))
            .sum::<f64>()
            + self.loss
            + self.optimizer
    }
}

#[allow(clippy::too_many_arguments)]
fn summarise(
    spec: &NetworkSpec,
    engine: &dyn Engine,
    batch_size: usize,
    steps: usize,
    repeat: usize,
    reps: &[(Parts, Watts)],
    energy_source: Source,
    warnings: Vec<String>,
) -> LayerProfileReport {
    let over = |f: &dyn Fn(&Parts, Watts) -> f64| -> Estimate {
        let v: Vec<f64> = reps.iter().map(|(p, w)| f(p, *w)).collect();
        Estimate::from_samples(&v)
    };
    let whole_step = over(&|p, _| p.whole);
    let share = |t: f64| {
        if whole_step.mean > 0.0 {
            100.0 * t / whole_step.mean
        } else {
            0.0
        }
    };
    let total_flops: u64 = spec.forward_flops().max(1);
    let batch = batch_size as u64;

    let layers: Vec<LayerRow> = spec
        .layers
        .iter()
        .map(|l| {
            let i = l.index;
            let time = over(&|p, _| p.layer_time(i));
            let has_backward = reps.iter().all(|(p, _)| p.backward[i].is_some());
            LayerRow {
                index: i,
                kind: l.layer.kind().to_string(),
                detail: detail(&l.layer, l.output),
                parameters: l.parameters,
                forward_flops: l.forward_flops * batch,
                forward: over(&|p, _| p.forward[i]),
                backward: has_backward.then(|| over(&|p, _| p.backward[i].unwrap_or(0.0))),
                energy: over(&|p, w| p.layer_time(i) * w.0),
                time_share: share(time.mean),
                flop_share: 100.0 * l.forward_flops as f64 / total_flops as f64,
                time,
            }
        })
        .collect();

    // Layer types in the spec's order of first appearance, then the loss and the optimiser.
    let mut order: Vec<String> = Vec::new();
    let mut members: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for l in &spec.layers {
        let kind = l.layer.kind().to_string();
        if !members.contains_key(&kind) {
            order.push(kind.clone());
        }
        members.entry(kind).or_default().push(l.index);
    }
    let mut types: Vec<TypeRow> = order
        .iter()
        .map(|kind| {
            let idx = &members[kind];
            let time = over(&|p, _| idx.iter().map(|&i| p.layer_time(i)).sum());
            let flops: u64 = idx.iter().map(|&i| spec.layers[i].forward_flops).sum();
            TypeRow {
                kind: kind.clone(),
                layers: idx.len(),
                parameters: idx.iter().map(|&i| spec.layers[i].parameters).sum(),
                forward_flops: flops * batch,
                energy: over(&|p, w| idx.iter().map(|&i| p.layer_time(i)).sum::<f64>() * w.0),
                time_share: share(time.mean),
                flop_share: 100.0 * flops as f64 / total_flops as f64,
                time,
            }
        })
        .collect();
    for (kind, pick) in [
        ("loss", (|p: &Parts| p.loss) as fn(&Parts) -> f64),
        ("optimizer", |p: &Parts| p.optimizer),
    ] {
        let time = over(&|p, _| pick(p));
        types.push(TypeRow {
            kind: kind.into(),
            layers: 0,
            parameters: if kind == "optimizer" {
                spec.parameter_count()
            } else {
                0
            },
            forward_flops: 0,
            energy: over(&|p, w| pick(p) * w.0),
            time_share: share(time.mean),
            flop_share: 0.0,
            time,
        });
    }

    LayerProfileReport {
        network: spec.name.clone(),
        engine: engine.name().into(),
        device: engine.device(),
        batch_size,
        steps,
        repeat,
        layers,
        types,
        whole_step_energy: over(&|p, w| p.whole * w.0),
        attributed: over(&|p, _| p.attributed()),
        unattributed: over(&|p, _| p.whole - p.attributed()),
        unattributed_percent: over(&|p, _| {
            if p.whole > 0.0 {
                100.0 * (p.whole - p.attributed()) / p.whole
            } else {
                0.0
            }
        }),
        power: over(&|_, w| w.0),
        whole_step,
        energy_source,
        warnings,
    }
}

/// Sizes of a layer for tables: `1→3 3x3`, `784→392`, `2x2/2`, or the output shape.
fn detail(layer: &Layer, output: Activation) -> String {
    match layer {
        Layer::Conv2d {
            in_channels,
            out_channels,
            kernel,
            ..
        } => format!("{in_channels}→{out_channels} {kernel}x{kernel}"),
        Layer::BatchNorm2d { features } => format!("{features} ch"),
        Layer::MaxPool2d { kernel, stride } => format!("{kernel}x{kernel}/{stride}"),
        Layer::Linear {
            in_features,
            out_features,
        } => format!("{in_features}→{out_features}"),
        Layer::Relu | Layer::Flatten => match output {
            Activation::Map(s) => format!("{}x{}x{}", s.channels, s.height, s.width),
            Activation::Vector(n) => format!("{n}"),
        },
    }
}

/// Joules per step of a report row, for callers that want units.
impl TypeRow {
    /// Mean energy per step.
    pub fn energy_per_step(&self) -> Joules {
        Joules(self.energy.mean)
    }

    /// Mean time per step.
    pub fn time_per_step(&self) -> Seconds {
        Seconds(self.time.mean)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_interval_matches_the_textbook() {
        // n = 4, mean 2.5, s = 1.2910; t(0.975, 3) = 3.1824 ⇒ half-width 2.0543
        let e = Estimate::from_samples(&[1.0, 2.0, 3.0, 4.0]);
        assert!((e.mean - 2.5).abs() < 1e-12);
        let h = e.half_width.unwrap();
        assert!((h - 2.0543).abs() < 1e-3, "{h}");
        assert_eq!(Estimate::from_samples(&[3.0]).half_width, None);
        assert!(Estimate::from_samples(&[]).mean.is_nan());
    }
}
