//! Tuning strategies compared by accuracy reached per joule (the paper's RQ1).
//!
//! Each (network, strategy, repetition) is one durable study in the storage, named
//! `<prefix>-<network>-<strategy>-r<rep>`; rerunning resumes the studies where they stopped.
//! The comparison itself (best-so-far against cumulative energy, energy to reach 99 % of the
//! best accuracy, significance) is `greenlab_stats::compare_strategies`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use greenlab_meter::{EnergyBasis, Provenance};
use greenlab_report::{Axis, Block, Cell, LinePlot, Section, Series, Table, Unit};
use greenlab_stats::{
    CompareOptions, StrategyComparison, StrategyRuns, TrialPoint, compare_strategies,
};
use greenlab_tune::compare::lost_before_measuring;
use greenlab_tune::config::{
    ObjectiveKind, ObjectiveSpec, PrunerSpec, SamplerSpec, StopRules, StudyConfig,
};
use greenlab_tune::study::{RunOptions, Study};
use greenlab_tune::{Direction, Distribution, Objective, Storage, Trial, TrialEnergy, TrialState};

use crate::ExperimentError;
use crate::objective::TrainObjective;

/// A strategy: a label for reports and the sampler that implements it.
#[derive(Clone, Debug)]
pub struct Strategy {
    /// `grid`, `random`, `bayesian (gp-pi)`, ...
    pub label: String,
    /// Sampler name as in study configs.
    pub sampler: String,
    /// Sampler options.
    pub options: serde_json::Map<String, serde_json::Value>,
}

impl Strategy {
    /// The paper's three strategies: grid, random, and Bayesian optimisation with a Gaussian
    /// process and probability of improvement.
    ///
    /// `gp_startup` trials are drawn quasi-randomly before the Gaussian process takes over.
    pub fn paper(grid_levels: u64, gp_startup: u64) -> Vec<Strategy> {
        let mut grid = serde_json::Map::new();
        grid.insert("levels".into(), serde_json::json!(grid_levels));
        let mut gp = serde_json::Map::new();
        gp.insert("n_startup".into(), serde_json::json!(gp_startup));
        gp.insert(
            "acquisition".into(),
            serde_json::json!({"kind": "probability_of_improvement", "xi": 0.01}),
        );
        vec![
            Strategy {
                label: "grid".into(),
                sampler: "grid".into(),
                options: grid,
            },
            Strategy {
                label: "random".into(),
                sampler: "random".into(),
                options: serde_json::Map::new(),
            },
            Strategy {
                label: "bayesian".into(),
                sampler: "gp".into(),
                options: gp,
            },
        ]
    }
}

/// The paper's search space: lr ∈ [1e-5, 1e-1] (log), β1 ∈ [0.1, 1), β2 ∈ [0.8, 1); the
/// 5-parameter variant adds ε ∈ [1e-9, 1e-6] (log) and weight decay ∈ [0, 1e-3].
pub fn paper_space(five_params: bool) -> BTreeMap<String, Distribution> {
    let mut s = BTreeMap::new();
    s.insert(
        "lr".into(),
        Distribution::Float {
            low: 1e-5,
            high: 1e-1,
            log: true,
        },
    );
    s.insert(
        "beta1".into(),
        Distribution::Float {
            low: 0.1,
            high: 0.999,
            log: false,
        },
    );
    s.insert(
        "beta2".into(),
        Distribution::Float {
            low: 0.8,
            high: 0.9999,
            log: false,
        },
    );
    if five_params {
        s.insert(
            "eps".into(),
            Distribution::Float {
                low: 1e-9,
                high: 1e-6,
                log: true,
            },
        );
        s.insert(
            "weight_decay".into(),
            Distribution::Float {
                low: 0.0,
                high: 1e-3,
                log: false,
            },
        );
    }
    s
}

/// The plan for one network.
pub struct Plan<'a> {
    /// Study name prefix.
    pub prefix: &'a str,
    /// Network label used in study names (`simple-cnn`, ...).
    pub network: &'a str,
    /// Strategies to compare.
    pub strategies: &'a [Strategy],
    /// Repetitions (seeds) per strategy.
    pub repetitions: usize,
    /// Trials per study.
    pub trials: u64,
    /// Search space.
    pub space: BTreeMap<String, Distribution>,
}

/// Every strategy's trial sequences, and what their energy is.
#[derive(Clone, Debug, PartialEq)]
pub struct Runs {
    /// Per strategy, one sequence per repetition (energy: each trial's attributed figure).
    pub strategies: Vec<StrategyRuns>,
    /// What the trials' energy figures are.
    pub provenance: Provenance,
    /// Why the sequences cannot be compared on energy (a trial's energy is unknown), if so.
    pub unknown: Option<String>,
}

/// Runs (or resumes) every study of the plan, returning per strategy the trial sequences.
/// Setting `options.cancel` (Ctrl-C in the cli) stops after the trial in progress and returns
/// [`ExperimentError::Interrupted`].
pub fn run(
    storage: &Arc<dyn Storage>,
    plan: &Plan<'_>,
    objective: Arc<TrainObjective>,
    options: &RunOptions,
    progress: &mut dyn FnMut(&str, usize, usize),
) -> Result<Runs, ExperimentError> {
    let mut out = Vec::new();
    let mut provenances = Vec::new();
    let mut unknown: Option<String> = None;
    let total = plan.strategies.len() * plan.repetitions;
    let mut done = 0;
    for strategy in plan.strategies {
        let mut reps = Vec::new();
        for rep in 0..plan.repetitions {
            let name = format!(
                "{}-{}-{}-r{rep}",
                plan.prefix, plan.network, strategy.sampler
            );
            let config = StudyConfig {
                name: name.clone(),
                space: plan.space.clone(),
                objectives: vec![Objective {
                    metric: "accuracy".into(),
                    direction: Direction::Maximize,
                }],
                sampler: SamplerSpec {
                    name: strategy.sampler.clone(),
                    seed: rep as u64 + 1,
                    options: strategy.options.clone(),
                },
                pruner: PrunerSpec::default(),
                stop: StopRules {
                    n_trials: Some(plan.trials),
                    ..StopRules::default()
                },
                objective: ObjectiveSpec {
                    kind: ObjectiveKind::Train,
                    command: Vec::new(),
                    options: objective.identity(),
                    timeout: None,
                },
            };
            let study =
                Study::create(storage.clone(), config).map_err(ExperimentError::study(format!(
                    "creating study {name} (a study of that name with other training settings \
                     is in the storage: use another --out or --storage for other settings)"
                )))?;
            progress(&name, done, total);
            study
                .run(objective.clone(), options)
                .map_err(ExperimentError::study(format!("running study {name}")))?;
            if options.cancel.load(Ordering::SeqCst) {
                return Err(ExperimentError::Interrupted(format!(
                    "{done} of {total} tuning studies done and {name} stopped; rerun the same \
                     command to resume"
                )));
            }
            let trials = study.trials()?;
            provenances.extend(trials.iter().filter(|t| t.state.is_finished()).map(|t| {
                t.energy
                    .as_ref()
                    .map_or(Provenance::NotMeasured, TrialEnergy::provenance)
            }));
            match sequence(&trials) {
                Ok(points) => reps.push(points),
                Err(why) => {
                    unknown.get_or_insert(format!("study {name}: {why}"));
                    reps.push(Vec::new());
                }
            }
            done += 1;
        }
        out.push(StrategyRuns {
            name: strategy.label.clone(),
            repetitions: reps,
        });
    }
    progress("done", done, total);
    Ok(Runs {
        strategies: out,
        provenance: Provenance::combine(provenances),
        unknown,
    })
}

/// A study's finished trials in order, as (cumulative attributed energy, accuracy) points;
/// failed and diverged trials spent energy and reached nothing (NaN accuracy). A finished
/// trial whose energy is unknown makes the sequence impossible (its reason is returned):
/// cumulative energy through a missing figure would be wrong, and unknown is never 0. A trial
/// whose worker was lost before anything was measured adds nothing.
pub fn sequence(trials: &[Trial]) -> Result<Vec<TrialPoint>, String> {
    let mut finished: Vec<&Trial> = trials.iter().filter(|t| t.state.is_finished()).collect();
    finished.sort_by(|a, b| {
        a.finished_at
            .partial_cmp(&b.finished_at)
            .unwrap_or(std::cmp::Ordering::Equal)
            .then(a.number.cmp(&b.number))
    });
    let mut cumulative = 0.0;
    let mut out = Vec::with_capacity(finished.len());
    for t in finished {
        let figure = t
            .energy
            .as_ref()
            .and_then(|e| e.figure(EnergyBasis::Attributed));
        match (figure, &t.energy) {
            (Some(j), _) => cumulative += j.0,
            (None, None) if lost_before_measuring(t) => {}
            (None, e) => {
                return Err(format!(
                    "{}: trial {}: {}",
                    crate::energy::NOT_MEASURED,
                    t.number,
                    e.as_ref()
                        .and_then(|e| e.why_unknown(EnergyBasis::Attributed))
                        .unwrap_or_else(|| "no energy was recorded".into())
                ));
            }
        }
        let accuracy = match (t.state, &t.values) {
            (TrialState::Complete | TrialState::Pruned, Some(v)) => {
                v.first().copied().unwrap_or(f64::NAN)
            }
            _ => f64::NAN,
        };
        out.push(TrialPoint {
            cumulative_energy_j: cumulative,
            accuracy,
        });
    }
    Ok(out)
}

/// Compares the strategies of one network; refused (with the reason, starting with
/// [`crate::energy::NOT_MEASURED`]) when a trial's energy is unknown.
pub fn compare(runs: &Runs) -> Result<StrategyComparison, String> {
    if let Some(why) = &runs.unknown {
        return Err(why.clone());
    }
    compare_strategies(&runs.strategies, CompareOptions::default()).map_err(|e| e.to_string())
}

/// Report blocks for one network's comparison.
pub fn section(
    network: &str,
    comparison: &Result<StrategyComparison, String>,
    source: &str,
) -> Section {
    let mut s = Section::new(format!("Tuning strategies on {network}"));
    let c = match comparison {
        Ok(c) => c,
        Err(e) => {
            s.push(Block::Paragraph(format!("No comparison: {e}")));
            return s;
        }
    };
    let series: Vec<Series> = c
        .strategies
        .iter()
        .map(|st| {
            let pts: Vec<(f64, f64)> = c
                .energy_grid_j
                .iter()
                .zip(&st.curve.median)
                .filter_map(|(&x, y)| y.map(|y| (x, y)))
                .collect();
            let band: Vec<(f64, f64)> = st
                .curve
                .lower
                .iter()
                .zip(&st.curve.upper)
                .zip(&st.curve.median)
                .filter_map(|((l, u), m)| m.and(l.zip(*u)))
                .collect();
            let series = Series::new(st.name.clone(), pts);
            if band.len() == series.points.len() && !band.is_empty() {
                series.with_band(band)
            } else {
                series
            }
        })
        .collect();
    s.push(Block::LinePlot(LinePlot {
        caption: format!(
            "Best-so-far test accuracy against cumulative tuning energy ({source}, attributed); median over repetitions, band: 25–75 %"
        ),
        x: Axis::new("cumulative energy", Unit::Joules),
        y: Axis::new("best test accuracy so far", Unit::Percent),
        series,
    }));
    let mut t = Table::new([
        "strategy",
        "repetitions",
        "best accuracy (median)",
        "total energy (median)",
        "reached target",
        "energy to target (median)",
    ])
    .with_caption(format!(
        "Target: {:.2} % test accuracy = 99 % of the best seen",
        100.0 * c.target_accuracy
    ));
    for st in &c.strategies {
        let med = |v: &[f64]| greenlab_stats::describe::median(v);
        t.push_row([
            Cell::text(st.name.clone()),
            Cell::count(st.repetitions as u64),
            Cell::percent(med(&st.best_accuracy)),
            Cell::joules(med(&st.total_energy_j)),
            Cell::text(format!("{} of {}", st.reached, st.repetitions)),
            st.median_energy_to_target_j
                .map_or(Cell::text("not reached"), Cell::joules),
        ]);
    }
    s.push(Block::Table(t));
    s.push(Block::Paragraph(c.statement.clone()));
    s
}
