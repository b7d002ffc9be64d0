//! `replicate`: both of the paper's studies, their analysis and a verdict per finding.
//!
//! [`Preset`] sizes the run under a [`Procedure`] (the paper's, as its code ran them, or
//! greenlab's) on a dataset, and [`plan_text`] says what it would train and, with a
//! [`Calibration`], how long that takes here; [`run_rq1`] and [`run_rq2`] run or resume the two
//! studies in a storage; [`build_report`] turns their results into the report document: the
//! method and every deviation from the paper first, then which strategy reaches the target for
//! the least energy, one [`Finding`] per claim of the paper, and the comparison with the
//! paper's published figures for the dataset. Loading data, building the engine, the meter and
//! the storage, and writing files are the caller's.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use greenlab_data::{DatasetKind, Split};
use greenlab_engine::Engine;
use greenlab_meter::{Provenance, Tracker};
use greenlab_model::Architecture;
use greenlab_report::{Block, Cell, Finding, Report, Section, Table, Verdict};
use greenlab_stats::{EtaSquared, StrategyComparison};
use greenlab_train::TrainConfig;
use greenlab_tune::study::RunOptions;
use greenlab_tune::{Params, Storage, Trial};
use serde::Serialize;

use crate::ExperimentError;
use crate::analysis::{FactorialAnalysis, analyse, sections};
use crate::energy::{NOT_MEASURED, energy_finding, provenance_line};
use crate::factorial::{self, Design};
use crate::objective::TrainObjective;
use crate::paper::{self, DatasetFigures};
use crate::procedure::{MethodContext, Procedure, ProcedureObjective, StrategySpec};
use crate::recommend::{self, Recommendation};
use crate::strategies::{self, Plan};

/// The paper's design, for the scale check: RQ1 experiments, trainings per configuration,
/// epochs and batch size; RQ2 runs per cell.
pub mod paper_design {
    /// Configurations per strategy and network.
    pub const EXPERIMENTS: u64 = 64;
    /// Trainings per configuration.
    pub const REPETITIONS: u64 = 8;
    /// Epochs per training run (both studies).
    pub const EPOCHS: usize = 25;
    /// Examples per step.
    pub const BATCH_SIZE: usize = 512;
    /// RQ2: random (lr, β1, β2) configurations per cell.
    pub const RQ2_CONFIGURATIONS: usize = 16;
    /// RQ2: runs per configuration and cell (16 × 24 = 384 per cell, 3,072 in all).
    pub const RQ2_REPETITIONS: usize = 24;
}

/// Sizes of one preset under a procedure, on a dataset.
#[derive(Clone, Debug, Serialize)]
pub struct Preset {
    /// `quick` or `paper`.
    pub name: String,
    /// The procedures: the paper's or greenlab's.
    pub procedure: Procedure,
    /// The dataset.
    pub dataset: DatasetKind,
    /// RQ1: the networks tuned.
    pub rq1_networks: Vec<Architecture>,
    /// RQ1: greenlab's energy-aware strategies beside the paper's three.
    pub rq1_energy_aware: bool,
    /// RQ1: independent searches (seeds) of every strategy.
    pub rq1_searches: usize,
    /// RQ1: configurations per search (the paper's "experiments").
    pub rq1_experiments: u64,
    /// RQ1: trainings per configuration, each its own trial and observation.
    pub rq1_repeat: u64,
    /// RQ1: grid levels per hyperparameter (greenlab's grid; the paper's grid has 5).
    pub rq1_grid_levels: u64,
    /// RQ1: model-free trials before the model-based samplers take over (greenlab's GP, the
    /// energy-aware strategies).
    pub rq1_gp_startup: u64,
    /// RQ1: epochs per trial.
    pub rq1_epochs: usize,
    /// RQ1: training images per trial (all when absent).
    pub rq1_limit_train: Option<usize>,
    /// RQ1: test images per evaluation (all when absent).
    pub rq1_limit_test: Option<usize>,
    /// RQ1: the 5-parameter space (lr, β1, β2, ε, weight decay) instead of 3.
    pub rq1_five_params: bool,
    /// RQ2: random (lr, β1, β2) configurations every cell runs with (0: Adam's defaults).
    pub rq2_configurations: usize,
    /// RQ2: runs per configuration and cell.
    pub rq2_repetitions: usize,
    /// RQ2: epochs per run.
    pub rq2_epochs: usize,
    /// RQ2: training images per run (all when absent).
    pub rq2_limit_train: Option<usize>,
    /// RQ2: test images per evaluation (all when absent).
    pub rq2_limit_test: Option<usize>,
    /// Examples per step in both studies.
    pub batch_size: usize,
    /// The η² the findings use.
    pub eta_squared: EtaSquared,
    /// RQ1's target accuracy for "which strategy reaches it for the least energy"; none: 99 %
    /// of the best median best accuracy of any strategy on the network.
    pub target_accuracy: Option<f64>,
}

fn paper_networks() -> Vec<Architecture> {
    vec![
        Architecture::DensePoly { linear: 3 },
        Architecture::DenseLinear { linear: 3 },
        Architecture::SimpleCnn {
            conv: 2,
            linear: 3,
            relu: true,
        },
    ]
}

impl Preset {
    /// The preset called `name` (`paper`, or `quick` for anything else) under `procedure` on
    /// `dataset`.
    ///
    /// `paper` is the paper's design under either procedure: RQ1 64 configurations × 8
    /// trainings per network and strategy (the paper's procedure: one search of 64
    /// configurations each trained 8 times; greenlab's: 8 independent searches of 64), 25
    /// epochs, full data, batch 512; RQ2 16 random configurations × 24 runs per cell (3,072
    /// runs), 25 epochs. `quick` is minutes on two CPU cores: subsets of the data, 2 epochs
    /// in RQ1 (so the pruners have an epoch to judge by) and 1 in RQ2, few configurations.
    pub fn new(name: &str, procedure: Procedure, dataset: DatasetKind) -> Preset {
        let paper = procedure.is_paper();
        match name {
            "paper" => Preset {
                name: "paper".into(),
                procedure,
                dataset,
                rq1_networks: paper_networks(),
                rq1_energy_aware: true,
                rq1_searches: if paper {
                    1
                } else {
                    paper_design::REPETITIONS as usize
                },
                rq1_experiments: paper_design::EXPERIMENTS,
                rq1_repeat: if paper { paper_design::REPETITIONS } else { 1 },
                rq1_grid_levels: 5,
                rq1_gp_startup: 10,
                rq1_epochs: paper_design::EPOCHS,
                rq1_limit_train: None,
                rq1_limit_test: None,
                rq1_five_params: false,
                rq2_configurations: paper_design::RQ2_CONFIGURATIONS,
                rq2_repetitions: paper_design::RQ2_REPETITIONS,
                rq2_epochs: paper_design::EPOCHS,
                rq2_limit_train: None,
                rq2_limit_test: None,
                batch_size: paper_design::BATCH_SIZE,
                eta_squared: EtaSquared::Jasp,
                target_accuracy: None,
            },
            _ => Preset {
                name: "quick".into(),
                procedure,
                dataset,
                rq1_networks: paper_networks(),
                rq1_energy_aware: true,
                rq1_searches: if paper { 1 } else { 3 },
                rq1_experiments: if paper { 8 } else { 10 },
                rq1_repeat: if paper { 3 } else { 1 },
                rq1_grid_levels: 2,
                rq1_gp_startup: 4,
                rq1_epochs: 2,
                rq1_limit_train: Some(2048),
                rq1_limit_test: Some(2000),
                rq1_five_params: false,
                rq2_configurations: if paper { 3 } else { 0 },
                rq2_repetitions: if paper { 1 } else { 3 },
                rq2_epochs: 1,
                rq2_limit_train: Some(4096),
                rq2_limit_test: Some(2000),
                batch_size: 128,
                eta_squared: EtaSquared::Jasp,
                target_accuracy: None,
            },
        }
    }

    /// The strategies RQ1 compares: the paper's three, then (unless left out) greenlab's
    /// energy-aware ones.
    pub fn strategies(&self) -> Vec<StrategySpec> {
        let mut s = self.procedure.paper_strategies(
            self.rq1_experiments,
            self.rq1_grid_levels,
            self.rq1_gp_startup,
        );
        if self.rq1_energy_aware {
            s.extend(self.procedure.energy_aware_strategies(self.rq1_gp_startup));
        }
        s
    }

    /// RQ1's repetitions: the sequences every strategy's intervals run over.
    pub fn rq1_sequences(&self) -> u64 {
        self.rq1_searches as u64 * self.rq1_repeat
    }

    /// Where this preset is smaller than the paper's design, in words (empty: not smaller).
    pub fn smaller_than_paper(&self, only: Option<&str>) -> Vec<String> {
        let mut out = Vec::new();
        let (train, test) = dataset_sizes(self.dataset);
        let mut limit = |what: &str, l: Option<usize>, full: usize| {
            if let Some(n) = l.filter(|&n| n < full) {
                out.push(format!("{what}: {n} of {full} images"));
            }
        };
        if only != Some("rq2") {
            limit("RQ1 training", self.rq1_limit_train, train);
            limit("RQ1 test", self.rq1_limit_test, test);
        }
        if only != Some("rq1") {
            limit("RQ2 training", self.rq2_limit_train, train);
            limit("RQ2 test", self.rq2_limit_test, test);
        }
        if only != Some("rq2") {
            if self.rq1_experiments < paper_design::EXPERIMENTS {
                out.push(format!(
                    "RQ1: {} configurations per search instead of {}",
                    self.rq1_experiments,
                    paper_design::EXPERIMENTS
                ));
            }
            if self.rq1_sequences() < paper_design::REPETITIONS {
                out.push(format!(
                    "RQ1: {} repetitions instead of {}",
                    self.rq1_sequences(),
                    paper_design::REPETITIONS
                ));
            }
            if self.rq1_epochs < paper_design::EPOCHS {
                out.push(format!(
                    "RQ1: {} epoch(s) instead of {}",
                    self.rq1_epochs,
                    paper_design::EPOCHS
                ));
            }
            if self.rq1_networks.len() < 3 {
                out.push(format!("RQ1: {} of 3 networks", self.rq1_networks.len()));
            }
        }
        if only != Some("rq1") {
            let per_cell = self.rq2_configurations.max(1) * self.rq2_repetitions;
            let paper_cell = paper_design::RQ2_CONFIGURATIONS * paper_design::RQ2_REPETITIONS;
            if per_cell < paper_cell {
                out.push(format!(
                    "RQ2: {per_cell} runs per cell instead of {paper_cell} ({} in all instead of {})",
                    8 * per_cell,
                    8 * paper_cell
                ));
            }
            if self.rq2_epochs < paper_design::EPOCHS {
                out.push(format!(
                    "RQ2: {} epoch(s) instead of {}",
                    self.rq2_epochs,
                    paper_design::EPOCHS
                ));
            }
        }
        if self.batch_size != paper_design::BATCH_SIZE {
            out.push(format!(
                "batch {} instead of {}",
                self.batch_size,
                paper_design::BATCH_SIZE
            ));
        }
        out
    }

    /// The RQ2 design under this preset: the paper's cells, each with the preset's random
    /// hyperparameter configurations (drawn once, seeded, from the procedure's RQ2 ranges and
    /// shared by every cell) × repetitions.
    pub fn rq2_design(&self) -> Result<Design, ExperimentError> {
        let mut design = Design::paper(
            &format!(
                "rq2-{}-{}-{}-factorial",
                self.name,
                self.procedure.name(),
                self.dataset
            ),
            self.rq2_repetitions,
            1,
        );
        if self.rq2_configurations > 0 {
            let space = greenlab_tune::SearchSpace {
                params: self.procedure.rq2_space(),
            };
            let sampler = greenlab_tune::sampler::RandomSampler::new(paper_seed());
            design.configurations = (0..self.rq2_configurations as u64)
                .map(|number| {
                    greenlab_tune::sampler::Sampler::suggest(
                        &sampler,
                        &greenlab_tune::sampler::SampleContext {
                            space: &space,
                            objectives: &[],
                            history: &[],
                            number,
                        },
                    )
                })
                .collect::<Result<Vec<Params>, _>>()?;
        }
        if self.procedure.drops_beta2() {
            design.logged_only = vec!["beta2".into()];
        }
        Ok(design)
    }
}

fn paper_seed() -> u64 {
    crate::procedure::PAPER_SEED
}

/// Overrides of a preset's sizes (the cli's `--repetitions`, `--trials`, ...).
#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// Repetitions: RQ1 trainings per configuration under the paper's procedure, independent
    /// searches under greenlab's; RQ2 runs per configuration and cell.
    pub repetitions: Option<usize>,
    /// RQ1 configurations per search.
    pub trials: Option<u64>,
    /// Training images per run.
    pub limit_train: Option<usize>,
    /// Epochs per training run (RQ1 trials and RQ2 runs).
    pub epochs: Option<usize>,
    /// RQ1 over the 5-parameter space.
    pub five_params: bool,
    /// RQ1 with the paper's three strategies only.
    pub paper_strategies_only: bool,
    /// The η² the findings use.
    pub eta_squared: Option<EtaSquared>,
    /// RQ1's target accuracy (a fraction).
    pub target_accuracy: Option<f64>,
    /// RQ1's networks, a subset of the paper's three.
    pub networks: Option<Vec<Architecture>>,
}

/// One of the paper's three RQ1 networks by its command-line name (`dense-poly`,
/// `dense-linear`, `simple-cnn`).
pub fn paper_network(name: &str) -> Result<Architecture, ExperimentError> {
    paper_networks()
        .into_iter()
        .find(|a| a.model_name() == name)
        .ok_or_else(|| {
            ExperimentError::Invalid(format!(
                "unknown RQ1 network {name:?}; the paper's are dense-poly, dense-linear, simple-cnn"
            ))
        })
}

impl Preset {
    /// Applies `o` to the preset; fewer trials also shorten the model-free start.
    pub fn apply(&mut self, o: &Overrides) {
        if let Some(r) = o.repetitions {
            if self.procedure.is_paper() {
                self.rq1_repeat = r as u64;
            } else {
                self.rq1_searches = r;
            }
            self.rq2_repetitions = r;
        }
        if let Some(t) = o.trials {
            self.rq1_experiments = t;
            self.rq1_gp_startup = self.rq1_gp_startup.min(t.div_ceil(2));
        }
        if let Some(n) = o.limit_train {
            self.rq1_limit_train = Some(n);
            self.rq2_limit_train = Some(n);
        }
        if let Some(e) = o.epochs {
            self.rq1_epochs = e;
            self.rq2_epochs = e;
        }
        self.rq1_five_params = o.five_params;
        if o.paper_strategies_only {
            self.rq1_energy_aware = false;
        }
        if let Some(e) = o.eta_squared {
            self.eta_squared = e;
        }
        if o.target_accuracy.is_some() {
            self.target_accuracy = o.target_accuracy;
        }
        if let Some(n) = &o.networks {
            self.rq1_networks = n.clone();
        }
    }
}

/// Training and test set sizes of a dataset as distributed.
pub fn dataset_sizes(dataset: DatasetKind) -> (usize, usize) {
    match dataset {
        DatasetKind::FashionMnist | DatasetKind::Mnist => (60_000, 10_000),
        DatasetKind::Cifar10 => (50_000, 10_000),
    }
}

/// The input shape of a dataset's images (channels, height, width).
pub fn dataset_shape(dataset: DatasetKind) -> (usize, usize, usize) {
    match dataset {
        DatasetKind::FashionMnist | DatasetKind::Mnist => (1, 28, 28),
        DatasetKind::Cifar10 => (3, 32, 32),
    }
}

/// RQ2's eight networks.
pub fn rq2_networks() -> Vec<Architecture> {
    let mut out = Vec::new();
    for conv in [1, 4] {
        for linear in [3, 7] {
            for relu in [true, false] {
                out.push(Architecture::SimpleCnn { conv, linear, relu });
            }
        }
    }
    out
}

/// Measured training and evaluation speed of one network on this machine's engine.
#[derive(Clone, Debug, Serialize)]
pub struct Speed {
    /// The network.
    pub network: Architecture,
    /// Training images per second.
    pub train_images_per_second: f64,
    /// Test images per second.
    pub test_images_per_second: f64,
}

/// A short measured calibration: each network trained for a few batches of synthetic images of
/// the dataset's shape (speed does not depend on pixel values), on the engine the run uses.
#[derive(Clone, Debug, Serialize)]
pub struct Calibration {
    /// Engine name.
    pub engine: String,
    /// Per network.
    pub speeds: Vec<Speed>,
    /// Batches trained per network.
    pub batches: usize,
    /// Wall time of the calibration, seconds.
    pub seconds: f64,
}

/// Measures every network a preset trains: two epochs of `batches` batches of synthetic images
/// of the dataset's shape, each followed by an evaluation of as many images; the second epoch
/// (after the warm-up) is the measurement.
///
/// # Errors
/// The engine fails to build or train a network.
pub fn calibrate(
    engine: &dyn Engine,
    preset: &Preset,
    only: Option<&str>,
    batches: usize,
) -> Result<Calibration, ExperimentError> {
    let started = std::time::Instant::now();
    let (c, h, w) = dataset_shape(preset.dataset);
    let n = preset.batch_size * batches.max(1);
    let synthetic = |n: usize| greenlab_data::Dataset {
        channels: c,
        height: h,
        width: w,
        classes: 10,
        images: (0..n * c * h * w)
            .map(|i| ((i * 7919) % 256) as f32 / 255.0)
            .collect(),
        labels: (0..n).map(|i| (i % 10) as u8).collect(),
    };
    let split = Split {
        train: synthetic(n),
        test: synthetic(n),
    };
    let mut networks: Vec<Architecture> = Vec::new();
    if only != Some("rq2") {
        networks.extend(preset.rq1_networks.iter().copied());
    }
    if only != Some("rq1") {
        networks.extend(rq2_networks());
    }
    networks.dedup();
    let tracker = Tracker::estimate_only();
    let mut speeds = Vec::new();
    for network in networks {
        if speeds.iter().any(|s: &Speed| s.network == network) {
            continue;
        }
        // Two epochs: the first warms the engine up (allocations, caches); the second is timed.
        let config = TrainConfig {
            architecture: network,
            dataset: preset.dataset,
            epochs: 2,
            batch_size: preset.batch_size,
            ..TrainConfig::default()
        };
        let r = greenlab_train::train(engine, &split, &config, &tracker, &mut |_| {
            greenlab_train::Control::Continue
        })
        .map_err(|e| ExperimentError::Invalid(format!("calibrating {network}: {e}")))?;
        let Some(last) = r.epochs.last() else {
            return Err(ExperimentError::Invalid(format!(
                "calibrating {network}: the run ended before its first epoch"
            )));
        };
        let eval_s = last.evaluation.as_ref().map_or(0.0, |m| m.duration.0);
        speeds.push(Speed {
            network,
            train_images_per_second: last.images_per_second,
            test_images_per_second: if eval_s > 0.0 { n as f64 / eval_s } else { 0.0 },
        });
    }
    Ok(Calibration {
        engine: engine.name().to_string(),
        speeds,
        batches,
        seconds: started.elapsed().as_secs_f64(),
    })
}

fn duration_text(seconds: f64) -> String {
    let s = seconds.max(0.0);
    if s < 120.0 {
        format!("{s:.0} s")
    } else if s < 7200.0 {
        format!("{:.0} min", s / 60.0)
    } else if s < 3.0 * 86400.0 {
        format!("{:.1} h", s / 3600.0)
    } else {
        format!("{:.1} days", s / 86400.0)
    }
}

/// What a preset trains, in numbers a user can weigh before starting it, and — with a
/// calibration — how long it would take on this machine.
pub fn plan_text(preset: &Preset, only: Option<&str>, calibration: Option<&Calibration>) -> String {
    let (full_train, full_test) = dataset_sizes(preset.dataset);
    let images = |limit: Option<usize>, full: usize| limit.map_or(full, |n| n.min(full));
    let speed = |arch: &Architecture| {
        calibration.and_then(|c| c.speeds.iter().find(|s| &s.network == arch))
    };
    // Seconds of one run: every epoch trains and then evaluates on the test set.
    let run_seconds = |arch: &Architecture, epochs: usize, train: usize, test: usize| {
        speed(arch).map(|s| {
            epochs as f64
                * (train as f64 / s.train_images_per_second.max(1e-9)
                    + test as f64 / s.test_images_per_second.max(1e-9))
        })
    };
    let mut out = format!(
        "replicate --procedure {} --dataset {} --preset {} would train:\n",
        preset.procedure.name(),
        preset.dataset,
        preset.name
    );
    let mut total_images = 0usize;
    let mut total_seconds: Option<f64> = calibration.map(|_| 0.0);
    if only != Some("rq2") {
        let strategies = preset.strategies();
        let studies = preset.rq1_networks.len() * strategies.len() * preset.rq1_searches;
        let per_study = preset.rq1_experiments * preset.rq1_repeat;
        let runs = studies * per_study as usize;
        let train = images(preset.rq1_limit_train, full_train);
        let test = images(preset.rq1_limit_test, full_test);
        total_images += runs * train * preset.rq1_epochs;
        let labels: Vec<&str> = strategies.iter().map(|s| s.label.as_str()).collect();
        out.push_str(&format!(
            "  RQ1: {} networks × {} strategies ({}) × {} search(es) of {} configurations × {} \
             training(s) each = {studies} studies, {runs} training runs of {} epoch(s) × {train} \
             images (test on {test}) over {} hyperparameters\n",
            preset.rq1_networks.len(),
            strategies.len(),
            labels.join(", "),
            preset.rq1_searches,
            preset.rq1_experiments,
            preset.rq1_repeat,
            preset.rq1_epochs,
            if preset.rq1_five_params { 5 } else { 3 },
        ));
        for arch in &preset.rq1_networks {
            let per_net = strategies.len() * preset.rq1_searches * per_study as usize;
            if let (Some(t), Some(s)) = (
                total_seconds.as_mut(),
                run_seconds(arch, preset.rq1_epochs, train, test),
            ) {
                *t += per_net as f64 * s;
            }
        }
    }
    if only != Some("rq1") {
        let per_cell = preset.rq2_configurations.max(1) * preset.rq2_repetitions;
        let runs = 8 * per_cell;
        let train = images(preset.rq2_limit_train, full_train);
        let test = images(preset.rq2_limit_test, full_test);
        total_images += runs * train * preset.rq2_epochs;
        out.push_str(&format!(
            "  RQ2: conv {{1,4}} × linear {{3,7}} × ReLU {{on,off}} × {} × {} repetitions = \
             {runs} training runs of {} epoch(s) × {train} images (test on {test})\n",
            if preset.rq2_configurations > 0 {
                format!(
                    "{} random (lr, β1, β2) configurations",
                    preset.rq2_configurations
                )
            } else {
                "Adam's defaults".to_string()
            },
            preset.rq2_repetitions,
            preset.rq2_epochs,
        ));
        for arch in rq2_networks() {
            if let (Some(t), Some(s)) = (
                total_seconds.as_mut(),
                run_seconds(&arch, preset.rq2_epochs, train, test),
            ) {
                *t += per_cell as f64 * s;
            }
        }
    }
    out.push_str(&format!(
        "  in all {total_images} training images at batch {}\n",
        preset.batch_size
    ));
    let smaller = preset.smaller_than_paper(only);
    if smaller.is_empty() {
        out.push_str("  scale: the paper's design\n");
    } else {
        out.push_str(&format!(
            "  scale: SMALLER than the paper — {}\n",
            smaller.join("; ")
        ));
    }
    match (calibration, total_seconds) {
        (Some(c), Some(t)) => {
            let speeds = c
                .speeds
                .iter()
                .map(|s| format!("{} {:.0}", s.network, s.train_images_per_second))
                .collect::<Vec<_>>()
                .join(", ");
            let (ch, h, w) = dataset_shape(preset.dataset);
            out.push_str(&format!(
                "  time on this machine: about {} with the {} engine (training and an evaluation \
                 after every epoch; pruned trials stop early, so the energy-aware strategies may \
                 take less)\n  calibration: {:.0} s, per network an epoch of {} batches of \
                 synthetic {ch}×{h}×{w} images after a warm-up epoch; training images/s: \
                 {speeds}\n",
                duration_text(t),
                c.engine,
                c.seconds,
                c.batches,
            ));
        }
        _ => out.push_str("  time: not calibrated\n"),
    }
    out
}

/// Everything `replicate` computed, written as results.json.
#[derive(Serialize)]
pub struct Results<'a> {
    /// The preset that ran.
    pub preset: &'a Preset,
    /// What the energy figures are (counter, estimated, mixed, not measured).
    pub energy_provenance: Provenance,
    /// The meter's domains and their sources, as printed.
    pub meter: Vec<String>,
    /// RQ1 per network: the comparison of the paper's three strategies, or why none.
    pub rq1: Rq1Results,
    /// RQ1 per network: every strategy (the energy-aware ones too) and the recommendation.
    pub rq1_strategies: Vec<Rq1Network>,
    /// RQ2's analysis, when it ran.
    pub rq2: Option<FactorialAnalysis>,
}

/// What a replication runs with: the caller's engine, data, meter and storage.
pub struct Setup {
    /// Engine name, for reports and study identities.
    pub engine: String,
    /// Device, for reports.
    pub device: String,
    /// Where the data was read from.
    pub data_dir: PathBuf,
    /// The engine every run trains with.
    pub trainer: Arc<dyn Engine>,
    /// The loaded dataset.
    pub split: Arc<Split>,
    /// Measures every run.
    pub tracker: Arc<Tracker>,
    /// Holds the studies, so a rerun resumes.
    pub storage: Arc<dyn Storage>,
    /// Set (by Ctrl-C in the cli) to stop after the run in progress.
    pub cancel: Arc<AtomicBool>,
}

/// What a replication reports while it runs.
pub enum Progress<'a> {
    /// RQ1: `done` of `total` studies of `network` finished; `study` runs now.
    Rq1 {
        /// The network being tuned.
        network: Architecture,
        /// The study starting (or `done`).
        study: &'a str,
        /// Studies finished.
        done: usize,
        /// Studies in all.
        total: usize,
    },
    /// RQ2: `done` of `total` runs finished; `trial` just ended.
    Rq2 {
        /// Runs finished.
        done: usize,
        /// Runs in all.
        total: usize,
        /// The trial that just ended.
        trial: &'a Trial,
    },
}

/// RQ1 on one network under the paper's three strategies: the comparison (or why none could
/// be made) and what its energy figures are.
#[derive(Clone, Debug, Serialize)]
pub struct Rq1Paper {
    /// The network.
    pub network: String,
    /// The comparison, or why none (a reason starting with
    /// [`crate::energy::NOT_MEASURED`] when energy was missing).
    pub comparison: Result<StrategyComparison, String>,
    /// What the trials' energy figures are.
    pub provenance: Provenance,
}

/// RQ1's comparison of the paper's three strategies per network.
pub type Rq1Results = Vec<Rq1Paper>;

/// RQ1 on one network with every strategy.
#[derive(Clone, Debug, Serialize)]
pub struct Rq1Network {
    /// Network label.
    pub network: String,
    /// The network.
    pub architecture: Architecture,
    /// All strategies compared against a reachable target (see
    /// [`strategies::compare_reachable`]), or why not.
    pub comparison: Result<StrategyComparison, String>,
    /// Which strategy reaches the target for the least energy.
    pub recommendation: Option<Recommendation>,
    /// What the trials' energy figures are.
    pub provenance: Provenance,
}

/// RQ1's results.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Rq1 {
    /// The paper's three strategies per network (the paper's finding is judged on these).
    pub paper: Rq1Results,
    /// Every strategy per network.
    pub networks: Vec<Rq1Network>,
}

impl Setup {
    fn base(
        &self,
        preset: &Preset,
        arch: Architecture,
        epochs: usize,
        limit_train: Option<usize>,
        limit_test: Option<usize>,
    ) -> TrainConfig {
        TrainConfig {
            architecture: arch,
            dataset: preset.dataset,
            data_dir: self.data_dir.clone(),
            epochs,
            batch_size: preset.batch_size,
            limit_train,
            limit_test,
            fixed_batch_order: preset.procedure.fixed_batch_order(),
            ..TrainConfig::default()
        }
    }
}

/// Runs (or resumes) RQ1: every network × strategy × search as a durable tuning study, and
/// compares the strategies.
pub fn run_rq1(
    setup: &Setup,
    preset: &Preset,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<Rq1, ExperimentError> {
    let mut rq1 = Rq1::default();
    let strategies = preset.strategies();
    let options = RunOptions {
        workers: 1,
        tracker: Some(setup.tracker.clone()),
        cancel: setup.cancel.clone(),
        ..RunOptions::default()
    };
    for arch in &preset.rq1_networks {
        let inner = Arc::new(TrainObjective {
            engine: setup.trainer.clone(),
            split: setup.split.clone(),
            base: setup.base(
                preset,
                *arch,
                preset.rq1_epochs,
                preset.rq1_limit_train,
                preset.rq1_limit_test,
            ),
            tracker: setup.tracker.clone(),
        });
        let mut identity = inner.identity();
        identity.insert("procedure".into(), serde_json::json!(preset.procedure));
        let objective = Arc::new(ProcedureObjective {
            inner,
            seed_per_trial: preset.rq1_repeat > 1,
            drop_beta2: preset.procedure.drops_beta2(),
        });
        let plan = Plan {
            prefix: &format!(
                "rq1-{}-{}-{}{}",
                preset.name,
                preset.procedure.name(),
                preset.dataset,
                if preset.rq1_five_params { "-5p" } else { "" }
            ),
            network: arch.model_name(),
            strategies: &strategies,
            searches: preset.rq1_searches,
            experiments: preset.rq1_experiments,
            repeat: preset.rq1_repeat,
            space: preset.procedure.rq1_space(preset.rq1_five_params),
        };
        let runs = strategies::run(
            &setup.storage,
            &plan,
            objective,
            &identity,
            &options,
            &mut |name, done, total| {
                progress(Progress::Rq1 {
                    network: *arch,
                    study: name,
                    done,
                    total,
                })
            },
        )?;
        let paper_runs = strategies::Runs {
            strategies: runs
                .strategies
                .iter()
                .zip(&strategies)
                .filter(|(_, s)| s.paper)
                .map(|(r, _)| r.clone())
                .collect(),
            provenance: runs.provenance,
            unknown: runs.unknown.clone(),
        };
        rq1.paper.push(Rq1Paper {
            network: arch.to_string(),
            comparison: strategies::compare(&paper_runs),
            provenance: runs.provenance,
        });
        let comparison = strategies::compare_reachable(&runs, preset.target_accuracy);
        let is_paper = |label: &str| strategies.iter().any(|s| s.paper && s.label == label);
        let source = runs.provenance.to_string();
        let recommendation = comparison.as_ref().ok().map(|c| {
            let rule = match preset.target_accuracy {
                Some(_) => "as set",
                None => "99 % of the best median best accuracy of any strategy",
            };
            recommend::recommend(
                &arch.to_string(),
                c,
                &runs.strategies,
                &is_paper,
                &source,
                rule,
            )
        });
        rq1.networks.push(Rq1Network {
            network: arch.to_string(),
            architecture: *arch,
            comparison,
            recommendation,
            provenance: runs.provenance,
        });
    }
    Ok(rq1)
}

/// Runs (or resumes) RQ2, the factorial design, as `worker`, and analyses it.
pub fn run_rq2(
    setup: &Setup,
    preset: &Preset,
    worker: &str,
    progress: &mut dyn FnMut(Progress<'_>),
) -> Result<FactorialAnalysis, ExperimentError> {
    let design = preset.rq2_design()?;
    let objective = TrainObjective {
        engine: setup.trainer.clone(),
        split: setup.split.clone(),
        base: setup.base(
            preset,
            Architecture::SimpleCnn {
                conv: 2,
                linear: 3,
                relu: true,
            },
            preset.rq2_epochs,
            preset.rq2_limit_train,
            preset.rq2_limit_test,
        ),
        tracker: setup.tracker.clone(),
    };
    let runs = factorial::run(
        setup.storage.as_ref(),
        &design,
        &objective,
        worker,
        &setup.cancel,
        &mut |done, total, trial| progress(Progress::Rq2 { done, total, trial }),
    )?;
    let factors: Vec<String> = design.factors.keys().cloned().collect();
    Ok(analyse(&runs, &factors))
}

/// What the energy figures of the report are, computed from them: RQ1's trials and RQ2's runs,
/// or (when neither ran) what the tracker measures.
pub fn energy_provenance(
    rq1: &Rq1,
    rq2: Option<&FactorialAnalysis>,
    tracker: &Tracker,
) -> Provenance {
    let parts: Vec<Provenance> = rq1
        .networks
        .iter()
        .map(|n| n.provenance)
        .chain(rq2.map(|a| a.energy_provenance))
        .collect();
    if parts.is_empty() {
        tracker.provenance()
    } else {
        Provenance::combine(parts)
    }
}

fn pct(x: f64) -> String {
    format!("{:.0} %", 100.0 * x)
}

fn rq1_finding(rq1: &[Rq1Paper]) -> Finding {
    let claim = "Bayesian optimisation reaches better accuracy for the same tuning energy than grid and random search";
    let provenance = Provenance::combine(rq1.iter().map(|n| n.provenance));
    // No verdict on energy that was not measured: say which network and why.
    if let Some(n) = rq1.iter().find(|n| {
        n.comparison
            .as_ref()
            .err()
            .is_some_and(|e| e.starts_with(NOT_MEASURED))
    }) {
        let why = n.comparison.as_ref().err().cloned().unwrap_or_default();
        return energy_finding(claim, Err(format!("{}: {why}", n.network)), provenance);
    }
    let mut wins = 0;
    let mut significant = 0;
    let mut compared = 0;
    let mut evidence = Vec::new();
    for n in rq1 {
        let net = &n.network;
        let Ok(c) = &n.comparison else {
            evidence.push(format!("{net}: no comparison"));
            continue;
        };
        compared += 1;
        // Compare best-so-far accuracy at a common budget: the smallest median total energy
        // of any strategy, so no strategy is credited with energy it did not spend.
        let median = |v: &[f64]| greenlab_stats::describe::median(v);
        let budget = c
            .strategies
            .iter()
            .map(|s| median(&s.total_energy_j))
            .fold(f64::INFINITY, f64::min);
        let at_budget = |s: &greenlab_stats::StrategySummary| {
            c.energy_grid_j
                .iter()
                .zip(&s.curve.median)
                .filter(|(e, _)| **e <= budget)
                .filter_map(|(_, m)| *m)
                .next_back()
        };
        let mut scores: Vec<(String, f64)> = c
            .strategies
            .iter()
            .filter_map(|s| at_budget(s).map(|a| (s.name.clone(), a)))
            .collect();
        scores.sort_by(|a, b| b.1.total_cmp(&a.1));
        let p = match &c.test {
            Some(greenlab_stats::SignificanceTest::MannWhitney { p, .. })
            | Some(greenlab_stats::SignificanceTest::KruskalWallis { p, .. }) => Some(*p),
            None => None,
        };
        if scores.first().is_some_and(|(n, _)| n == "bayesian") {
            wins += 1;
            if p.is_some_and(|p| p < 0.05) {
                significant += 1;
            }
        }
        let listed: Vec<String> = scores
            .iter()
            .map(|(n, a)| format!("{n} {:.1} %", 100.0 * a))
            .collect();
        evidence.push(format!(
            "{net}: median best accuracy after {} of tuning: {}; energy-to-target test {}",
            greenlab_report::format::energy(budget),
            listed.join(", "),
            p.map_or("not computed".to_string(), |p| format!("p = {p:.3}"))
        ));
    }
    let verdict = if compared > 0 && wins == compared && significant > 0 {
        Verdict::Reproduced
    } else if compared > 0 && wins * 2 > compared {
        // Ahead, but not significantly so with this many repetitions.
        Verdict::Inconclusive
    } else {
        Verdict::NotReproduced
    };
    energy_finding(claim, Ok((verdict, evidence.join("; "))), provenance)
}

fn rq2_findings(
    a: &FactorialAnalysis,
    definition: EtaSquared,
    dataset: DatasetKind,
    published: Option<&DatasetFigures>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let provenance = a.energy_provenance;
    let unknown = || {
        Err(a
            .energy_unknown
            .clone()
            .unwrap_or_else(|| NOT_MEASURED.to_owned()))
    };
    let eta = |t: &str| {
        a.energy_anova
            .as_ref()
            .ok()
            .and_then(|x| x.term(t))
            .map(|r| (definition.of(r), r.p))
    };
    let paper_eta = published
        .and_then(|p| p.eta_sq("conv"))
        .map_or_else(String::new, |e| {
            format!(" (paper: η² = {e:.3} on {dataset})")
        });
    let conv_claim =
        format!("Convolutional layers explain most of the variance in training energy{paper_eta}");
    let judged = if a.energy_unknown.is_some() {
        unknown()
    } else {
        match eta("conv") {
            Some((e, p)) => Ok((
                if e >= 0.9 && p < 0.05 {
                    Verdict::Reproduced
                } else if e >= 0.5 {
                    Verdict::Inconclusive
                } else {
                    Verdict::NotReproduced
                },
                format!(
                    "conv: η² = {e:.3} (p = {p:.2e}; {definition}) in a type III ANOVA over {} runs",
                    a.runs
                ),
            )),
            None => Ok((
                Verdict::Inconclusive,
                a.energy_anova
                    .as_ref()
                    .err()
                    .cloned()
                    .unwrap_or_else(|| "no conv factor in the design".into()),
            )),
        }
    };
    out.push(energy_finding(&conv_claim, judged, provenance));
    let small_claim = "Linear and ReLU layers matter far less for energy";
    if a.energy_unknown.is_some() {
        out.push(energy_finding(small_claim, unknown(), provenance));
    } else if let (Some((el, _)), Some((er, _))) = (eta("linear"), eta("relu")) {
        out.push(energy_finding(
            small_claim,
            Ok((
                if el < 0.05 && er < 0.05 {
                    Verdict::Reproduced
                } else if el < 0.2 && er < 0.2 {
                    Verdict::Inconclusive
                } else {
                    Verdict::NotReproduced
                },
                format!("linear: η² = {el:.3}; ReLU: η² = {er:.3}"),
            )),
            provenance,
        ));
    }
    // Lower complexity: conv 4 → 1, averaged over the other factors.
    let complexity_claim = "Lower complexity halves training energy at a small accuracy cost";
    if a.energy_unknown.is_some() {
        out.push(energy_finding(complexity_claim, unknown(), provenance));
        return out;
    }
    let mean_where = |level: &str, acc: bool| {
        let v: Vec<f64> = a
            .points
            .iter()
            .filter(|(l, _, _)| l.split(", ").any(|kv| kv == format!("conv={level}")))
            .map(|(_, ac, e)| if acc { *ac } else { *e })
            .collect();
        (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
    };
    if let (Some(e4), Some(e1), Some(a4), Some(a1)) = (
        mean_where("4", false),
        mean_where("1", false),
        mean_where("4", true),
        mean_where("1", true),
    ) {
        let cut = 1.0 - e1 / e4;
        let change_pp = 100.0 * (a1 - a4);
        let drop_pp = -change_pp;
        let mut f = energy_finding(
            complexity_claim,
            Ok((
                if cut >= 0.5 && drop_pp <= 2.0 {
                    Verdict::Reproduced
                } else if cut >= 0.3 {
                    Verdict::Inconclusive
                } else {
                    Verdict::NotReproduced
                },
                format!(
                    "conv 4 → 1 cuts energy by {} and {} test accuracy by {:.2} pp ({:.1} % → \
                     {:.1} %), means over the other factors",
                    pct(cut),
                    if change_pp >= 0.0 { "raises" } else { "lowers" },
                    change_pp.abs(),
                    100.0 * a4,
                    100.0 * a1
                ),
            )),
            provenance,
        );
        // The claim says "at a small accuracy cost": check it as phrased.
        if change_pp > 0.0 {
            let rose = format!("accuracy rose by {change_pp:.2} pp instead of falling");
            f.qualifier = Some(match f.qualifier.take() {
                Some(q) => format!("{q}; {rose}"),
                None => rose,
            });
        }
        out.push(f);
    }
    out
}

fn method_context(
    preset: &Preset,
    engine: &str,
    meter: &[String],
    only: Option<&str>,
) -> MethodContext {
    MethodContext {
        dataset: preset.dataset,
        engine: engine.to_string(),
        meter: if meter.is_empty() {
            "no meter".into()
        } else {
            meter.join(", ")
        },
        scale: preset.smaller_than_paper(only),
        full_test_set: preset.rq1_limit_test.is_none() && preset.rq2_limit_test.is_none(),
        eta_squared: preset.eta_squared,
        energy_aware: preset.rq1_energy_aware && only != Some("rq2"),
    }
}

/// The report's opening section: the procedure, the dataset, the scale and every aspect in
/// which this run differs from the paper's code.
pub fn method_section(
    preset: &Preset,
    setup: &Setup,
    meter: &[String],
    only: Option<&str>,
) -> Section {
    let ctx = method_context(
        preset,
        &format!("{} engine on {}", setup.engine, setup.device),
        meter,
        only,
    );
    let aspects = preset.procedure.aspects(&ctx);
    let deviating: Vec<_> = aspects.iter().filter(|a| a.deviates).collect();
    let same: Vec<&str> = aspects
        .iter()
        .filter(|a| !a.deviates)
        .map(|a| a.aspect.as_str())
        .collect();
    let mut s = Section::new("Method");
    s.push(Block::Paragraph(format!(
        "Procedure: {}. {} Dataset: {}. Preset: {}{}. RQ2's findings use {}. As the paper's \
         code: {}. {} deviation(s) from it:",
        preset.procedure,
        if preset.procedure.is_paper() {
            "Each fact of the paper's public code as it ran (yarally/preliminary-green-ai, NN_training_tool.ipynb)."
        } else {
            "greenlab's improved versions of the paper's methods."
        },
        preset.dataset,
        preset.name,
        if ctx.scale.is_empty() {
            " (the paper's scale)".to_string()
        } else {
            " (smaller than the paper)".to_string()
        },
        preset.eta_squared.describe(),
        if same.is_empty() {
            "nothing".to_string()
        } else {
            same.join(", ")
        },
        deviating.len()
    )));
    let mut t = Table::new(["aspect", "the paper's code", "this run"]);
    for a in deviating {
        t.push_row([
            Cell::text(a.aspect.clone()),
            Cell::text(a.paper.clone()),
            Cell::text(a.here.clone()),
        ]);
    }
    s.push(Block::Table(t));
    s
}

/// The first screen: which strategy reaches the target for the least energy on each network,
/// and the method in one line.
pub fn lead(preset: &Preset, rq1: &Rq1, only: Option<&str>, meter: &[String]) -> Vec<Block> {
    let mut out = Vec::new();
    if !rq1.networks.is_empty() {
        out.push(Block::Paragraph(
            "Which strategy should I use to reach the target accuracy for the least energy?".into(),
        ));
        for n in &rq1.networks {
            match (&n.recommendation, &n.comparison) {
                (Some(r), _) => out.push(Block::Paragraph(r.sentence.clone())),
                (None, Err(e)) => out.push(Block::Paragraph(format!(
                    "{}: no comparison: {e}",
                    n.network
                ))),
                (None, Ok(_)) => {}
            }
        }
    }
    let ctx = method_context(preset, "", meter, only);
    let deviations = preset
        .procedure
        .aspects(&ctx)
        .iter()
        .filter(|a| a.deviates)
        .count();
    let smaller = preset.smaller_than_paper(only);
    out.push(Block::Paragraph(format!(
        "Method: the {} procedure on {}, {} preset ({}); {deviations} deviation(s) from the paper's code, listed under Method below.",
        preset.procedure,
        preset.dataset,
        preset.name,
        if smaller.is_empty() {
            "the paper's scale"
        } else {
            "smaller than the paper"
        }
    )));
    out
}

/// The comparison with the paper's published figures for the dataset.
pub fn paper_section(preset: &Preset, rq1: &Rq1, rq2: Option<&FactorialAnalysis>) -> Section {
    let mut s = Section::new(format!(
        "Compared with the paper's published figures ({})",
        preset.dataset
    ));
    let Some(fig) = paper::published(preset.dataset) else {
        s.push(Block::Paragraph(format!(
            "The paper published no figures for {}.",
            preset.dataset
        )));
        return s;
    };
    s.push(Block::Paragraph(format!(
        "Published figures read from the paper's released files ({}). Energy in joules is not \
         comparable across machines (the paper measured an NVIDIA GPU); ratios and η² are.",
        paper::source()
    )));
    if let Some(a) = rq2 {
        let mut t = Table::new(["RQ2", "paper", "this run"]);
        let ours_eta = |term: &str| {
            a.energy_anova
                .as_ref()
                .ok()
                .and_then(|x| x.term(term))
                .map(|r| preset.eta_squared.of(r))
        };
        for term in ["conv", "linear", "relu"] {
            t.push_row([
                Cell::text(format!("η² of {term} on energy")),
                fig.eta_sq(term).map_or(Cell::Empty, Cell::plain),
                ours_eta(term).map_or(Cell::text("not computed"), Cell::plain),
            ]);
        }
        let mean_where = |level: &str, acc: bool| {
            let v: Vec<f64> = a
                .points
                .iter()
                .filter(|(l, _, _)| l.split(", ").any(|kv| kv == format!("conv={level}")))
                .map(|(_, ac, e)| if acc { *ac } else { *e })
                .collect();
            (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64)
        };
        let paper_conv = |level: &str| fig.rq2.by_conv.get(level);
        for level in ["1", "4"] {
            t.push_row([
                Cell::text(format!("mean energy per run, conv {level}")),
                paper_conv(level).map_or(Cell::Empty, |c| Cell::joules(c.energy_j)),
                mean_where(level, false).map_or(Cell::Empty, Cell::joules),
            ]);
            t.push_row([
                Cell::text(format!("mean test accuracy, conv {level}")),
                paper_conv(level).map_or(Cell::Empty, |c| Cell::percent(c.accuracy)),
                mean_where(level, true).map_or(Cell::Empty, Cell::percent),
            ]);
        }
        if let (Some(p1), Some(p4), Some(o1), Some(o4)) = (
            paper_conv("1"),
            paper_conv("4"),
            mean_where("1", false),
            mean_where("4", false),
        ) {
            t.push_row([
                Cell::text("energy ratio conv 4 / conv 1"),
                Cell::plain(p4.energy_j / p1.energy_j),
                Cell::plain(o4 / o1),
            ]);
        }
        t.push_row([
            Cell::text("runs"),
            Cell::count(fig.rq2.runs as u64),
            Cell::count(a.runs as u64),
        ]);
        s.push(Block::Table(t));
    }
    if !rq1.networks.is_empty() {
        let mut t = Table::new(["RQ1 network", "strategy", "paper: best accuracy", "this run: best accuracy (median)"])
            .with_caption("The paper's best is the best mean over 8 trainings of any of its 64 configurations; ours the median over repetitions of each repetition's best");
        for n in &rq1.networks {
            let Ok(c) = &n.comparison else { continue };
            for st in c.strategies.iter() {
                let published = fig.rq1(preset.rq1_five_params, &n.architecture, &st.name);
                if published.is_none() {
                    continue;
                }
                t.push_row([
                    Cell::text(n.network.clone()),
                    Cell::text(st.name.clone()),
                    published.map_or(Cell::Empty, |p| Cell::percent(p.best_accuracy)),
                    Cell::percent(greenlab_stats::describe::median(&st.best_accuracy)),
                ]);
            }
        }
        s.push(Block::Table(t));
    }
    s
}

/// The report document: the method and its deviations from the paper first, then which
/// strategy to use, the findings, each study's sections, the comparison with the paper's
/// figures and the configuration.
#[allow(clippy::too_many_arguments)]
pub fn build_report(
    preset: &Preset,
    setup: &Setup,
    only: Option<&str>,
    rq1: &Rq1,
    rq2: Option<&FactorialAnalysis>,
    provenance: Provenance,
    meter: &[String],
    elapsed_s: f64,
) -> Report {
    let source_word = provenance.to_string();
    let mut report = Report::new("Reproduction of Yarally et al., CAIN 2023").with_subtitle(format!(
        "Uncovering Energy-Efficient Practices in Deep Learning Training — {} procedure, {} preset, {}, {} engine on {}, energy {}",
        preset.procedure, preset.name, preset.dataset, setup.engine, setup.device, source_word
    ));
    for block in lead(preset, rq1, only, meter) {
        report.push_lead(block);
    }
    report.push(method_section(preset, setup, meter, only));
    let mut summary = Section::new("Findings");
    summary.push(Block::Paragraph(provenance_line(provenance)));
    if !rq1.paper.is_empty() {
        summary.push(Block::Finding(rq1_finding(&rq1.paper)));
    }
    let published = paper::published(preset.dataset);
    if let Some(a) = rq2 {
        for f in rq2_findings(a, preset.eta_squared, preset.dataset, published) {
            summary.push(Block::Finding(f));
        }
    }
    report.push(summary);
    for n in &rq1.networks {
        let mut s = strategies::section(&n.network, &n.comparison, &n.provenance.to_string());
        if let Some(r) = &n.recommendation {
            s.push(Block::Table(recommend::table(r)));
        }
        report.push(s);
    }
    if let Some(a) = rq2 {
        for s in sections(a) {
            report.push(s);
        }
    }
    report.push(paper_section(preset, rq1, rq2));
    let mut cfg = Section::new("Configuration");
    let labels: Vec<String> = preset
        .strategies()
        .iter()
        .map(|s| s.label.clone())
        .collect();
    cfg.push(Block::KeyValues(vec![
        ("procedure".into(), preset.procedure.to_string()),
        ("preset".into(), preset.name.clone()),
        ("dataset".into(), preset.dataset.to_string()),
        ("engine / device".into(), format!("{} / {}", setup.engine, setup.device)),
        ("energy meter".into(), meter.join(", ")),
        ("RQ1".into(), format!(
            "{} networks × {} × {} search(es) of {} configurations × {} training(s); {} epoch(s), {} training / {} test images",
            preset.rq1_networks.len(), labels.join(", "), preset.rq1_searches, preset.rq1_experiments, preset.rq1_repeat, preset.rq1_epochs,
            preset.rq1_limit_train.map_or("all".into(), |n| n.to_string()), preset.rq1_limit_test.map_or("all".into(), |n| n.to_string())
        )),
        ("RQ2".into(), format!(
            "SimpleCNN conv {{1,4}} × linear {{3,7}} × ReLU {{on,off}} × {} configuration(s) × {} repetitions; {} epoch(s), {} training / {} test images",
            preset.rq2_configurations.max(1), preset.rq2_repetitions, preset.rq2_epochs,
            preset.rq2_limit_train.map_or("all".into(), |n| n.to_string()), preset.rq2_limit_test.map_or("all".into(), |n| n.to_string())
        )),
        ("batch size".into(), preset.batch_size.to_string()),
        ("η²".into(), preset.eta_squared.describe().to_string()),
        ("data".into(), setup.data_dir.display().to_string()),
        ("wall time".into(), format!("{elapsed_s:.0} s")),
    ]));
    report.push(cfg);
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn paper_procedure() -> Procedure {
        Procedure::Paper {
            beta2_as_sampled: false,
        }
    }

    #[test]
    fn the_paper_preset_is_the_papers_design_under_both_procedures() {
        for procedure in [paper_procedure(), Procedure::Greenlab] {
            for dataset in [DatasetKind::FashionMnist, DatasetKind::Cifar10] {
                let p = Preset::new("paper", procedure, dataset);
                assert!(
                    p.smaller_than_paper(None).is_empty(),
                    "{procedure} {dataset}"
                );
                assert_eq!(p.rq1_sequences(), 8);
                assert_eq!(p.rq1_experiments, 64);
                assert_eq!(8 * p.rq2_configurations * p.rq2_repetitions, 3072);
            }
        }
        let quick = Preset::new("quick", paper_procedure(), DatasetKind::FashionMnist);
        let smaller = quick.smaller_than_paper(None).join("; ");
        assert!(smaller.contains("2 epoch(s) instead of 25"), "{smaller}");
        assert!(smaller.contains("3 repetitions instead of 8"), "{smaller}");
        assert!(
            quick
                .smaller_than_paper(Some("rq2"))
                .iter()
                .all(|s| !s.contains("RQ1"))
        );
    }

    #[test]
    fn the_plan_counts_runs_and_times_them_from_the_calibration() {
        let p = Preset::new("paper", paper_procedure(), DatasetKind::Cifar10);
        // Every RQ2 network trains 1,000 images/s and evaluates 5,000/s: a run is 25 epochs of
        // 50,000 / 1,000 + 10,000 / 5,000 = 52 s, i.e. 1,300 s; 3,072 runs take 3,993,600 s.
        let calibration = Calibration {
            engine: "fake".into(),
            speeds: rq2_networks()
                .into_iter()
                .map(|network| Speed {
                    network,
                    train_images_per_second: 1000.0,
                    test_images_per_second: 5000.0,
                })
                .collect(),
            batches: 1,
            seconds: 0.0,
        };
        let text = plan_text(&p, Some("rq2"), Some(&calibration));
        assert!(
            text.contains("16 random (lr, β1, β2) configurations × 24 repetitions = 3072 training runs of 25 epoch(s) × 50000 images (test on 10000)"),
            "{text}"
        );
        assert!(text.contains("about 46.2 days"), "{text}");
        assert!(text.contains("synthetic 3×32×32 images"), "{text}");
        assert!(text.contains("scale: the paper's design"), "{text}");
        assert!(!text.contains("RQ1"));
        // Without a calibration the plan says so instead of guessing.
        assert!(plan_text(&p, None, None).contains("time: not calibrated"));
    }

    #[test]
    fn rq2_configurations_are_drawn_from_the_procedures_ranges_and_beta2_is_logged_only() {
        let p = Preset::new("paper", paper_procedure(), DatasetKind::FashionMnist);
        let d = p.rq2_design().unwrap();
        assert_eq!(d.configurations.len(), 16);
        for c in &d.configurations {
            let lr = c["lr"].as_f64().unwrap();
            let b1 = c["beta1"].as_f64().unwrap();
            let b2 = c["beta2"].as_f64().unwrap();
            assert!(
                (1e-5..=1e-3).contains(&lr) && (0.5..1.0).contains(&b1) && (0.8..1.0).contains(&b2)
            );
        }
        assert_eq!(d.logged_only, vec!["beta2".to_string()]);
        assert_eq!(d.points().len(), 3072);
        // Linear scale: most learning rates lie above 1e-4 (90 % of [1e-5, 1e-3]).
        let above = d
            .configurations
            .iter()
            .filter(|c| c["lr"].as_f64().unwrap() > 1e-4)
            .count();
        assert!(above >= 10, "{above} of 16");
        let g = Preset::new("paper", Procedure::Greenlab, DatasetKind::FashionMnist);
        assert!(g.rq2_design().unwrap().logged_only.is_empty());
    }
}
