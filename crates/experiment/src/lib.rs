//! greenlab-experiment: the experiments that combine training, tuning, statistics and reports —
//! the paper's factorial architecture study (RQ2), the comparison of tuning strategies by
//! accuracy per joule (RQ1) and the replication of both with a verdict per finding.
//!
//! Everything here takes what it needs as values: a `dyn Engine`, a loaded `Split`, a
//! `Tracker`, a `dyn Storage` and a cancel flag. It reads no environment, installs no signal
//! handler, writes no files and prints nothing; a front end (the `greenlab` binary, a notebook
//! binding, a service) builds those, calls in here and presents the results.
//!
//! - [`objective`]: the built-in training objective (train one of the paper's networks with a
//!   trial's parameters) and the training settings of design and study files.
//! - [`factorial`]: a full factorial design run as a durable, resumable study.
//! - [`analysis`]: ANOVA, Tukey HSD, Kruskal–Wallis, cell means and the trade-off of a design,
//!   and the report sections that show them.
//! - [`energy`]: which energy figure an analysis uses (the attributed one), what it is
//!   (counter, estimated, mixed, not measured) and what a verdict may say on it.
//! - [`strategies`]: tuning strategies as studies, compared by accuracy reached per joule.
//! - [`procedure`]: the paper's procedures as its code ran them, or greenlab's, and every way a
//!   run deviates from the paper's code.
//! - [`recommend`]: which strategy reaches a target accuracy for the least energy, with
//!   intervals and tests against the paper's Bayesian optimisation.
//! - [`paper`]: the paper's published figures per dataset, read from its released files.
//! - [`replicate`]: the paper's two studies at a preset's scale, with findings and a report.
//!
//! ```no_run
//! use std::sync::atomic::AtomicBool;
//! use greenlab_experiment::factorial::{self, Design};
//! use greenlab_experiment::objective::{TrainObjective, TrainSettings};
//! use greenlab_experiment::analysis::analyse;
//! # fn parts() -> (std::sync::Arc<dyn greenlab_engine::Engine>, Box<dyn greenlab_tune::Storage>) { unimplemented!() }
//! let (engine, storage) = parts();
//! let base = TrainSettings::default().to_config()?;
//! let split = greenlab_data::load(base.dataset, &base.data_dir)?;
//! let objective = TrainObjective {
//!     engine,
//!     split: std::sync::Arc::new(split),
//!     base,
//!     tracker: std::sync::Arc::new(greenlab_meter::Tracker::estimate_only()),
//! };
//! let design = Design::paper("conv-linear-relu", 3, 1);
//! let runs = factorial::run(storage.as_ref(), &design, &objective, "me", &AtomicBool::new(false), &mut |_, _, _| {})?;
//! let analysis = analyse(&runs, &["conv".into(), "linear".into(), "relu".into()]);
//! println!("{:?}", analysis.energy_anova.map(|t| t.term("conv").map(|r| r.eta_sq)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

/// Returns an [`ExperimentError::Invalid`] with a formatted message.
macro_rules! bail {
    ($($arg:tt)*) => {
        return Err($crate::ExperimentError::Invalid(format!($($arg)*)))
    };
}

pub mod analysis;
pub mod energy;
mod error;
pub mod factorial;
pub mod objective;
pub mod paper;
pub mod procedure;
pub mod recommend;
pub mod replicate;
pub mod strategies;

pub use error::ExperimentError;
