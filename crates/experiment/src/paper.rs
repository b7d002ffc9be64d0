//! The paper's published figures, per dataset, for the report to compare with.
//!
//! They are read from the paper's released files (RQ1 CSVs and RQ2 JASP files of
//! yarally/preliminary-green-ai) by `fixtures/paper_figures.py`, which writes
//! `fixtures/paper_figures.json`; this module embeds that file. Nothing is typed in by hand.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use greenlab_data::DatasetKind;
use greenlab_model::Architecture;
use serde::Deserialize;

/// One row of the paper's type III ANOVA on energy (JASP).
#[derive(Clone, Debug, Deserialize)]
pub struct AnovaFigure {
    /// Type III sum of squares.
    pub sum_sq: f64,
    /// Degrees of freedom.
    pub df: f64,
    /// p-value (none for the residual).
    pub p: Option<f64>,
    /// JASP's η² (none for the residual).
    pub eta_sq: Option<f64>,
    /// Partial η².
    pub partial_eta_sq: Option<f64>,
}

/// One cell of the paper's RQ2 design.
#[derive(Clone, Debug, Deserialize)]
pub struct CellFigure {
    /// Conv blocks.
    pub conv: u32,
    /// Linear layers.
    pub linear: u32,
    /// ReLU in the conv blocks.
    pub relu: bool,
    /// Runs in the cell.
    pub runs: usize,
    /// Distinct (lr, β1, β2) configurations among them.
    pub configurations: usize,
    /// Mean energy per run, joules.
    pub energy_j: f64,
    /// Mean test accuracy.
    pub accuracy: f64,
}

/// Means over the runs with one number of conv blocks.
#[derive(Clone, Debug, Deserialize)]
pub struct ConvFigure {
    /// Mean energy per run, joules.
    pub energy_j: f64,
    /// Mean test accuracy.
    pub accuracy: f64,
}

/// The paper's RQ2 on one dataset.
#[derive(Clone, Debug, Deserialize)]
pub struct Rq2Figures {
    /// Runs analysed.
    pub runs: usize,
    /// ANOVA rows by term (`conv`, `linear`, `relu`, `linear:conv`, ..., `residual`).
    pub anova: BTreeMap<String, AnovaFigure>,
    /// The eight cells.
    pub cells: Vec<CellFigure>,
    /// Means by conv blocks (`"1"`, `"4"`).
    pub by_conv: BTreeMap<String, ConvFigure>,
    /// Ranges of the sampled hyperparameters (`lr`, `beta1`, `beta2`): [min, max].
    pub ranges: BTreeMap<String, [f64; 2]>,
}

/// One strategy on one network in the paper's RQ1.
#[derive(Clone, Debug, Deserialize)]
pub struct Rq1Figure {
    /// Experiments (configurations) run.
    pub experiments: usize,
    /// Best mean accuracy (over 8 trainings) of any configuration.
    pub best_accuracy: f64,
    /// The experiment (from 1) that first reached it.
    pub best_at: Option<usize>,
    /// The released `energy` column summed over the experiments, joules.
    pub energy_j: f64,
}

/// The paper's figures for one dataset.
#[derive(Clone, Debug, Deserialize)]
pub struct DatasetFigures {
    /// RQ2.
    pub rq2: Rq2Figures,
    /// RQ1 by parameter count (`3_params`, `5_params`), network (`SimpleCNN`, ...) and strategy
    /// (`grid`, `random`, `bayesian`).
    pub rq1: BTreeMap<String, BTreeMap<String, BTreeMap<String, Rq1Figure>>>,
}

#[derive(Debug, Deserialize)]
struct Figures {
    source: String,
    #[serde(rename = "fashion-mnist")]
    fashion_mnist: DatasetFigures,
    cifar10: DatasetFigures,
}

fn figures() -> Option<&'static Figures> {
    static FIGURES: OnceLock<Option<Figures>> = OnceLock::new();
    FIGURES
        .get_or_init(|| serde_json::from_str(include_str!("../fixtures/paper_figures.json")).ok())
        .as_ref()
}

/// Where the figures come from.
pub fn source() -> &'static str {
    figures().map_or("", |f| f.source.as_str())
}

/// The paper's figures for `dataset` (none for MNIST, which the paper did not use).
pub fn published(dataset: DatasetKind) -> Option<&'static DatasetFigures> {
    let f = figures()?;
    match dataset {
        DatasetKind::FashionMnist => Some(&f.fashion_mnist),
        DatasetKind::Cifar10 => Some(&f.cifar10),
        DatasetKind::Mnist => None,
    }
}

/// The paper's class name of a network (`SimpleCNN`, `DensePolyNN`, `DenseLinearNN`).
pub fn network_name(arch: &Architecture) -> &'static str {
    match arch {
        Architecture::SimpleCnn { .. } => "SimpleCNN",
        Architecture::DensePoly { .. } => "DensePolyNN",
        Architecture::DenseLinear { .. } => "DenseLinearNN",
    }
}

impl DatasetFigures {
    /// RQ1's figures for a network and strategy label (`grid`, `random`, `bayesian`).
    pub fn rq1(
        &self,
        five_params: bool,
        network: &Architecture,
        strategy: &str,
    ) -> Option<&Rq1Figure> {
        self.rq1
            .get(if five_params { "5_params" } else { "3_params" })?
            .get(network_name(network))?
            .get(strategy)
    }

    /// JASP's η² of a term.
    pub fn eta_sq(&self, term: &str) -> Option<f64> {
        self.rq2.anova.get(term)?.eta_sq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_released_figures_load_for_both_datasets() {
        let fm = published(DatasetKind::FashionMnist).expect("fixtures/paper_figures.json parses");
        let c10 = published(DatasetKind::Cifar10).unwrap();
        assert!(published(DatasetKind::Mnist).is_none());
        for d in [fm, c10] {
            assert_eq!(d.rq2.runs, 3072);
            assert_eq!(d.rq2.cells.len(), 8);
            assert!(d.rq2.cells.iter().all(|c| c.runs == 384));
            // JASP's η²: every term's SS over the table's total, so they sum to 1.
            let total: f64 = d.rq2.anova.values().map(|a| a.sum_sq).sum();
            let conv = d.rq2.anova["conv"].sum_sq / total;
            assert!((conv - d.eta_sq("conv").unwrap()).abs() < 1e-9);
            let sim = Architecture::SimpleCnn {
                conv: 2,
                linear: 3,
                relu: true,
            };
            assert_eq!(d.rq1(false, &sim, "bayesian").unwrap().experiments, 64);
        }
        assert!(fm.eta_sq("conv").unwrap() > c10.eta_sq("conv").unwrap());
        assert!(source().contains("preliminary-green-ai"));
    }
}
