//! Which procedures a replication runs: the paper's, as its public code ran them, or greenlab's
//! improved ones — and, for the report's method section, every way the run differs from the
//! paper's code.
//!
//! The facts come from the paper's public code (yarally/preliminary-green-ai,
//! `src/NN_training_tool.ipynb`) and its released RQ2 data; see [`crate::paper`].

use std::collections::BTreeMap;

use greenlab_data::DatasetKind;
use greenlab_tune::Distribution;
use greenlab_tune::config::{PrunerSpec, SamplerSpec};
use serde::{Deserialize, Serialize};

/// The seed of the paper's notebook (`seed = 1234`); under the paper's procedure it fixes the
/// one batch order every run trains with.
pub const PAPER_SEED: u64 = 1234;

/// How a replication searches, trains and repeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "name", rename_all = "snake_case")]
pub enum Procedure {
    /// Each fact of the paper's code as it ran: linear-scale uniform sampling, the paper's grid
    /// rule, scikit-learn's default GP with PI over 10,000 random candidates, every
    /// configuration trained `repetitions` times with each training its own observation, one
    /// batch order for every epoch and run, pixels / 255.
    Paper {
        /// Train with the sampled β2. The paper's code sampled and logged β2 but read the
        /// optimiser's β2 from the top-level config (`config.get('beta2', 0.999)`), so every
        /// run trained with β2 = 0.999; `false` reproduces that.
        beta2_as_sampled: bool,
    },
    /// greenlab's procedures: learning rates on a log scale, a fitted Matérn GP on the unit
    /// cube, independent repetitions of the whole search, a fresh batch order every epoch.
    Greenlab,
}

impl Procedure {
    /// `paper` or `greenlab`.
    pub fn name(&self) -> &'static str {
        match self {
            Procedure::Paper { .. } => "paper",
            Procedure::Greenlab => "greenlab",
        }
    }

    /// Whether this is the paper's procedure.
    pub fn is_paper(&self) -> bool {
        matches!(self, Procedure::Paper { .. })
    }

    /// Whether runs drop the sampled β2 and train with Adam's default 0.999, as the paper's
    /// code did.
    pub fn drops_beta2(&self) -> bool {
        matches!(
            self,
            Procedure::Paper {
                beta2_as_sampled: false
            }
        )
    }

    /// The seed of the one batch order every run trains with, or `None` for a fresh order
    /// every epoch (seeded by the run).
    pub fn fixed_batch_order(&self) -> Option<u64> {
        self.is_paper().then_some(PAPER_SEED)
    }

    /// RQ1's search space. The paper: lr ∈ [1e-5, 1e-1], β1 ∈ [0.1, 1), β2 ∈ [0.8, 1), all
    /// uniform on a linear scale; with five parameters also ε ∈ [1e-9, 1e-7] and weight decay
    /// ∈ [0, 0.1]. greenlab: the learning rate (and ε) log-uniform, β bounded below 1, weight
    /// decay ∈ [0, 1e-3].
    pub fn rq1_space(&self, five_params: bool) -> BTreeMap<String, Distribution> {
        let mut s = BTreeMap::new();
        let float = |low, high, log| Distribution::Float { low, high, log };
        match self {
            Procedure::Paper { .. } => {
                s.insert("lr".into(), float(1e-5, 1e-1, false));
                s.insert("beta1".into(), float(0.1, 1.0, false));
                s.insert("beta2".into(), float(0.8, 1.0, false));
                if five_params {
                    s.insert("eps".into(), float(1e-9, 1e-7, false));
                    s.insert("weight_decay".into(), float(0.0, 0.1, false));
                }
            }
            Procedure::Greenlab => {
                s.insert("lr".into(), float(1e-5, 1e-1, true));
                s.insert("beta1".into(), float(0.1, 0.999, false));
                s.insert("beta2".into(), float(0.8, 0.9999, false));
                if five_params {
                    s.insert("eps".into(), float(1e-9, 1e-6, true));
                    s.insert("weight_decay".into(), float(0.0, 1e-3, false));
                }
            }
        }
        s
    }

    /// RQ2's hyperparameter ranges (the released data: lr ≈ 1.7e-5 … 9.6e-4, β1 ≈ 0.50 … 0.97,
    /// β2 ≈ 0.81 … 0.99, drawn from the notebook's lr ∈ [1e-5, 1e-3], β1 ∈ [0.5, 1),
    /// β2 ∈ [0.8, 1)); linear under the paper's procedure, the learning rate log-uniform under
    /// greenlab's.
    pub fn rq2_space(&self) -> BTreeMap<String, Distribution> {
        let log = !self.is_paper();
        let mut s = BTreeMap::new();
        s.insert(
            "lr".into(),
            Distribution::Float {
                low: 1e-5,
                high: 1e-3,
                log,
            },
        );
        s.insert(
            "beta1".into(),
            Distribution::Float {
                low: 0.5,
                high: if log { 0.999 } else { 1.0 },
                log: false,
            },
        );
        s.insert(
            "beta2".into(),
            Distribution::Float {
                low: 0.8,
                high: if log { 0.9999 } else { 1.0 },
                log: false,
            },
        );
        s
    }
}

impl std::fmt::Display for Procedure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Procedure::Paper {
                beta2_as_sampled: true,
            } => f.write_str("paper (β2 as sampled)"),
            other => f.write_str(other.name()),
        }
    }
}

/// The sampler and pruner of one RQ1 strategy, with the label reports use.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StrategySpec {
    /// Short key used in study names (`grid`, `random`, `gp`, `gp-cost`, ...).
    pub key: String,
    /// Label in reports (`grid`, `bayesian`, `cost-aware GP`, ...).
    pub label: String,
    /// One of the paper's three strategies (the others are greenlab's energy-aware ones).
    pub paper: bool,
    /// The sampler (its `repeat` option is set by the plan).
    pub sampler: SamplerSpec,
    /// The pruner.
    pub pruner: PrunerSpec,
    /// Whether the study also minimises energy (its second objective).
    pub energy_objective: bool,
    /// How it works, in a sentence, for the report.
    pub description: String,
}

fn options(pairs: serde_json::Value) -> serde_json::Map<String, serde_json::Value> {
    match pairs {
        serde_json::Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

fn sampler(name: &str, opts: serde_json::Value) -> SamplerSpec {
    SamplerSpec {
        name: name.into(),
        seed: 0,
        options: options(opts),
    }
}

fn pruner(name: &str, opts: serde_json::Value) -> PrunerSpec {
    PrunerSpec {
        name: name.into(),
        options: options(opts),
    }
}

/// The label of the paper's Bayesian strategy, which the energy-aware ones are tested against.
pub const BAYESIAN: &str = "bayesian";

impl Procedure {
    /// The paper's three strategies as this procedure runs them. `experiments` caps the paper
    /// grid's draws; `grid_levels` and `gp_startup` set greenlab's grid and GP.
    pub fn paper_strategies(
        &self,
        experiments: u64,
        grid_levels: u64,
        gp_startup: u64,
    ) -> Vec<StrategySpec> {
        let none = || pruner("none", serde_json::json!({}));
        match self {
            Procedure::Paper { .. } => vec![
                StrategySpec {
                    key: "grid".into(),
                    label: "grid".into(),
                    paper: true,
                    sampler: sampler(
                        "paper-grid",
                        serde_json::json!({"levels": 5, "experiments": experiments}),
                    ),
                    pruner: none(),
                    energy_objective: false,
                    description: "the paper's grid: 5 levels low + i·(high − low)/5 per parameter, points drawn without replacement".into(),
                },
                StrategySpec {
                    key: "random".into(),
                    label: "random".into(),
                    paper: true,
                    sampler: sampler("random", serde_json::json!({})),
                    pruner: none(),
                    energy_objective: false,
                    description: "uniform random search on a linear scale".into(),
                },
                StrategySpec {
                    key: "gp".into(),
                    label: BAYESIAN.into(),
                    paper: true,
                    sampler: sampler("paper-gp", serde_json::json!({"n_candidates": 10_000})),
                    pruner: none(),
                    energy_objective: false,
                    description: "scikit-learn's default GP (fixed C·RBF, raw inputs), probability of improvement over 10,000 random candidates, first point random".into(),
                },
            ],
            Procedure::Greenlab => vec![
                StrategySpec {
                    key: "grid".into(),
                    label: "grid".into(),
                    paper: true,
                    sampler: sampler("grid", serde_json::json!({"levels": grid_levels})),
                    pruner: none(),
                    energy_objective: false,
                    description: format!("grid of {grid_levels} levels per parameter (ends included, log scale for lr), seeded order"),
                },
                StrategySpec {
                    key: "random".into(),
                    label: "random".into(),
                    paper: true,
                    sampler: sampler("random", serde_json::json!({})),
                    pruner: none(),
                    energy_objective: false,
                    description: "uniform random search (log scale for lr)".into(),
                },
                StrategySpec {
                    key: "gp".into(),
                    label: BAYESIAN.into(),
                    paper: true,
                    sampler: sampler(
                        "gp",
                        serde_json::json!({
                            "n_startup": gp_startup,
                            "acquisition": {"kind": "probability_of_improvement", "xi": 0.01}
                        }),
                    ),
                    pruner: none(),
                    energy_objective: false,
                    description: format!("fitted Matérn-5/2 GP on the unit cube, probability of improvement, {gp_startup} quasi-random start-up trials"),
                },
            ],
        }
    }

    /// greenlab's energy-aware strategies, run beside the paper's three on the same budget:
    /// cost-aware GP, TPE with median pruning, ASHA, and the two-objective (accuracy, energy)
    /// sampler. `startup` is their model-free start (trials).
    pub fn energy_aware_strategies(&self, startup: u64) -> Vec<StrategySpec> {
        vec![
            StrategySpec {
                key: "gp-cost".into(),
                label: "cost-aware GP".into(),
                paper: false,
                sampler: sampler(
                    "gp",
                    serde_json::json!({"n_startup": startup, "cost_aware": {"exponent": 1.0}}),
                ),
                pruner: pruner("none", serde_json::json!({})),
                energy_objective: false,
                description: "GP expected improvement per predicted joule (a second GP on log energy)".into(),
            },
            StrategySpec {
                key: "tpe-median".into(),
                label: "TPE + median pruning".into(),
                paper: false,
                sampler: sampler("tpe", serde_json::json!({"n_startup": startup})),
                pruner: pruner(
                    "median",
                    serde_json::json!({"n_startup_trials": startup, "n_warmup_steps": 0}),
                ),
                energy_objective: false,
                description: "tree-structured Parzen estimator; a trial below the median of earlier trials at the same epoch stops".into(),
            },
            StrategySpec {
                key: "asha".into(),
                label: "ASHA".into(),
                paper: false,
                sampler: sampler("random", serde_json::json!({})),
                pruner: pruner(
                    "asha",
                    serde_json::json!({"min_resource": 1, "reduction_factor": 3}),
                ),
                energy_objective: false,
                description: "random configurations, asynchronous successive halving (keeps the best third at each rung of epochs)".into(),
            },
            StrategySpec {
                key: "parego".into(),
                label: "accuracy × energy (ParEGO)".into(),
                paper: false,
                sampler: sampler("parego", serde_json::json!({"n_startup": startup})),
                pruner: pruner("none", serde_json::json!({})),
                energy_objective: true,
                description: "two objectives, accuracy up and energy down, scalarised with random weights each trial".into(),
            },
        ]
    }
}

/// One aspect of the method: what the paper's code did, what this run does, and whether that
/// is a deviation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Aspect {
    /// What (`batch order`, `Bayesian optimisation`, ...).
    pub aspect: String,
    /// What the paper's code did.
    pub paper: String,
    /// What this run does.
    pub here: String,
    /// Whether this run differs from the paper's code.
    pub deviates: bool,
}

fn aspect(aspect: &str, paper: &str, here: impl Into<String>, deviates: bool) -> Aspect {
    Aspect {
        aspect: aspect.into(),
        paper: paper.into(),
        here: here.into(),
        deviates,
    }
}

/// What the method section needs to know beyond the procedure.
#[derive(Clone, Debug)]
pub struct MethodContext {
    /// The dataset.
    pub dataset: DatasetKind,
    /// Engine and device (`burn / cpu`).
    pub engine: String,
    /// The meter's sources in words (`cpu-package-0: estimated, ...`).
    pub meter: String,
    /// Scale differences from the paper's design, in words (empty: the paper's scale).
    pub scale: Vec<String>,
    /// Whether every test evaluation uses the whole test set.
    pub full_test_set: bool,
    /// The η² definition shown.
    pub eta_squared: greenlab_stats::EtaSquared,
    /// Whether greenlab's energy-aware strategies run beside the paper's.
    pub energy_aware: bool,
}

impl Procedure {
    /// Every aspect of the method, the paper's code beside this run, deviations marked.
    pub fn aspects(&self, ctx: &MethodContext) -> Vec<Aspect> {
        let paper = self.is_paper();
        let mut out = vec![
            aspect(
                "dataset",
                "Fashion-MNIST and CIFAR-10 (torchvision), ToTensor() only: pixels / 255",
                format!("{}, pixels / 255, no normalisation or augmentation", ctx.dataset),
                false,
            ),
            aspect(
                "batch order",
                "the shuffled loader turned into a list once: every epoch of every run sees the same batch order",
                if paper {
                    "one batch order (seed 1234) for every epoch and run".to_string()
                } else {
                    "reshuffled every epoch, seeded by the run".to_string()
                },
                !paper,
            ),
            aspect(
                "search space",
                "lr [1e-5, 1e-1], β1 [0.1, 1), β2 [0.8, 1) (5 parameters: ε [1e-9, 1e-7], weight decay [0, 0.1]), all uniform on a linear scale",
                if paper {
                    "the same ranges, uniform on a linear scale".to_string()
                } else {
                    "lr log-uniform in [1e-5, 1e-1], β1 [0.1, 0.999], β2 [0.8, 0.9999] (ε log-uniform [1e-9, 1e-6], weight decay [0, 1e-3])".to_string()
                },
                !paper,
            ),
            aspect(
                "grid search",
                "5 levels low + i·(high − low)/5, i = 0..4 (upper end excluded, linear), 64 points drawn without replacement from the product",
                if paper {
                    "the same rule, points drawn without replacement".to_string()
                } else {
                    "evenly spaced levels with both ends (log scale for lr), visited in a seeded order".to_string()
                },
                !paper,
            ),
            aspect(
                "Bayesian optimisation",
                "scikit-learn GaussianProcessRegressor() defaults (C(1.0)·RBF(1.0), hyperparameters fixed, α = 1e-10, no normalisation) on raw inputs; probability of improvement over 10,000 uniform random candidates; first point random",
                if paper {
                    "the same model and acquisition (greenlab's implementation, tested against scikit-learn)".to_string()
                } else {
                    "Matérn-5/2 ARD GP with fitted hyperparameters on the unit cube, probability of improvement (ξ = 0.01) maximised by candidates and L-BFGS, quasi-random start".to_string()
                },
                !paper,
            ),
            aspect(
                "repetitions",
                "each configuration trained 8 times; every repetition's accuracy its own GP observation; one search per strategy",
                if paper {
                    "each configuration trained `repetitions` times, each its own observation; intervals over the repetition sequences (the r-th training of every configuration)".to_string()
                } else {
                    "independent searches with different seeds, each configuration trained once; intervals over the searches".to_string()
                },
                !paper,
            ),
            aspect(
                "β2",
                "sampled and logged, but every run trained with β2 = 0.999 (the optimiser read config.get('beta2', 0.999))",
                match self {
                    Procedure::Paper {
                        beta2_as_sampled: false,
                    } => "sampled and logged, trained with 0.999 as the paper's code did".to_string(),
                    Procedure::Paper {
                        beta2_as_sampled: true,
                    } => "trained with the sampled β2 (--paper-beta2-as-sampled), as the paper intended".to_string(),
                    Procedure::Greenlab => "trained with the sampled β2".to_string(),
                },
                !self.drops_beta2(),
            ),
            aspect(
                "tuning target",
                "test accuracy on the full test set (no validation split)",
                if ctx.full_test_set {
                    "test accuracy on the full test set (no validation split)"
                } else {
                    "test accuracy on a seeded subset of the test set (no validation split)"
                },
                !ctx.full_test_set,
            ),
            aspect(
                "evaluation",
                "once, after the last epoch, with batch norm left in training mode (batch statistics of the whole test set)",
                "after every epoch (so pruners can act), batch norm in inference mode (running statistics)",
                true,
            ),
            aspect(
                "diverging runs",
                "kept training; whatever the network predicted was scored and entered the GP",
                "stopped and recorded as diverged, with no accuracy; not a GP observation",
                true,
            ),
            aspect(
                "energy",
                "GPU power from nvidia-smi every 0.1 s; energy = mean power × training time",
                format!("{}; training and evaluation windows of each run", ctx.meter),
                true,
            ),
            aspect(
                "engine and random numbers",
                "PyTorch (Lazy modules, default init) on a CUDA GPU; Python's random and torch seeded 1234",
                format!("{}; greenlab's seeded generators, so the points and initial weights differ from the paper's run, not their distribution", ctx.engine),
                true,
            ),
            aspect(
                "run order",
                "per experiment the three networks in turn, each configuration 8 times",
                "each network's searches one after another",
                true,
            ),
            aspect(
                "RQ2 design",
                "conv {1,4} × linear {3,7} × ReLU {off,on}; per cell 16 random (lr, β1, β2) configurations × 24 runs = 384 runs, 3,072 in all, 25 epochs",
                "the same cells; configurations drawn once and shared by all cells (see the scale row)",
                true,
            ),
            aspect(
                "η²",
                "JASP: SS_effect / sum of the type III table's SS including the residual",
                ctx.eta_squared.describe(),
                ctx.eta_squared != greenlab_stats::EtaSquared::Jasp,
            ),
        ];
        out.push(aspect(
            "scale",
            "RQ1: 64 experiments × 8 repetitions × 3 networks × 3 strategies, 25 epochs, full data, batch 512; RQ2: 3,072 runs, 25 epochs",
            if ctx.scale.is_empty() {
                "the paper's scale".to_string()
            } else {
                format!("smaller than the paper: {}", ctx.scale.join("; "))
            },
            !ctx.scale.is_empty(),
        ));
        if ctx.energy_aware {
            out.push(aspect(
                "strategies",
                "grid, random, Bayesian (GP-PI)",
                "the paper's three, plus greenlab's energy-aware strategies on the same budget",
                true,
            ));
        }
        out
    }
}

/// The training objective of an RQ1 search under a procedure: gives every trial its own weight
/// seed when configurations are repeated (the paper's eight trainings of a configuration differ
/// in their initial weights, not in their batches), and under the paper's procedure drops the
/// sampled β2 before training (recording the β2 trained with as the `beta2_trained` metric).
pub struct ProcedureObjective {
    /// The objective that trains.
    pub inner: std::sync::Arc<crate::objective::TrainObjective>,
    /// Seed each trial's weights with `base seed + 1 + trial number`.
    pub seed_per_trial: bool,
    /// Train with the base configuration's β2 whatever was sampled.
    pub drop_beta2: bool,
}

impl greenlab_tune::study::ObjectiveFunction for ProcedureObjective {
    fn run(
        &self,
        params: &greenlab_tune::Params,
        ctx: &mut greenlab_tune::study::TrialContext<'_>,
    ) -> Result<greenlab_tune::study::ObjectiveOutput, greenlab_tune::study::ObjectiveError> {
        let mut applied = params.clone();
        let dropped = self.drop_beta2 && applied.remove("beta2").is_some();
        if self.seed_per_trial {
            let seed = self
                .inner
                .base
                .seed
                .wrapping_add(1)
                .wrapping_add(ctx.number());
            applied.insert("seed".into(), greenlab_tune::ParamValue::Int(seed as i64));
        }
        let mut out = self.inner.run(&applied, ctx)?;
        if dropped {
            out.metrics
                .insert("beta2_trained".into(), self.inner.base.adam.beta2);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> MethodContext {
        MethodContext {
            dataset: DatasetKind::FashionMnist,
            engine: "burn / cpu".into(),
            meter: "estimated".into(),
            scale: Vec::new(),
            full_test_set: true,
            eta_squared: greenlab_stats::EtaSquared::Jasp,
            energy_aware: false,
        }
    }

    #[test]
    fn the_paper_procedure_samples_linearly_and_drops_beta2() {
        let p = Procedure::Paper {
            beta2_as_sampled: false,
        };
        assert!(p.drops_beta2());
        assert_eq!(p.fixed_batch_order(), Some(PAPER_SEED));
        for d in p.rq1_space(true).values() {
            assert!(matches!(d, Distribution::Float { log: false, .. }), "{d:?}");
        }
        assert_eq!(
            p.rq1_space(false)["beta1"],
            Distribution::Float {
                low: 0.1,
                high: 1.0,
                log: false
            }
        );
        let sampled = Procedure::Paper {
            beta2_as_sampled: true,
        };
        assert!(!sampled.drops_beta2());
        assert!(!Procedure::Greenlab.drops_beta2());
        assert_eq!(Procedure::Greenlab.fixed_batch_order(), None);
    }

    #[test]
    fn the_method_lists_what_deviates_for_each_procedure() {
        let paper = Procedure::Paper {
            beta2_as_sampled: false,
        }
        .aspects(&ctx());
        let deviating = |a: &[Aspect], name: &str| {
            a.iter()
                .find(|x| x.aspect == name)
                .map(|x| x.deviates)
                .unwrap()
        };
        for same in [
            "batch order",
            "search space",
            "grid search",
            "Bayesian optimisation",
            "β2",
            "scale",
        ] {
            assert!(!deviating(&paper, same), "{same}");
        }
        assert!(deviating(&paper, "evaluation") && deviating(&paper, "energy"));
        let sampled = Procedure::Paper {
            beta2_as_sampled: true,
        }
        .aspects(&ctx());
        assert!(deviating(&sampled, "β2"));
        let mut small = ctx();
        small.scale = vec!["1 epoch instead of 25".into()];
        small.eta_squared = greenlab_stats::EtaSquared::CorrectedTotal;
        let greenlab = Procedure::Greenlab.aspects(&small);
        for differs in [
            "batch order",
            "search space",
            "Bayesian optimisation",
            "β2",
            "scale",
            "η²",
        ] {
            assert!(deviating(&greenlab, differs), "{differs}");
        }
    }
}
