//! Tuning strategies compared by accuracy reached per joule (the paper's RQ1).
//!
//! Each (network, strategy, search) is one durable study in the storage, named
//! `<prefix>-<network>-<strategy>-r<search>`; rerunning resumes the studies where they stopped.
//! A study tries `experiments` configurations, each trained `repeat` times in a row (the
//! paper's repetitions: every training is a trial of its own). Its trials become `repeat`
//! sequences — the r-th training of every configuration, in order — and every search's
//! sequences together are the repetitions the comparison and its intervals run over.
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
use greenlab_tune::config::{ObjectiveKind, ObjectiveSpec, SamplerSpec, StopRules, StudyConfig};
use greenlab_tune::study::{ObjectiveFunction, RunOptions, Study, was_interrupted};
use greenlab_tune::{Direction, Distribution, Objective, Storage, Trial, TrialEnergy, TrialState};

use crate::ExperimentError;
use crate::procedure::StrategySpec;

/// The plan for one network.
pub struct Plan<'a> {
    /// Study name prefix.
    pub prefix: &'a str,
    /// Network label used in study names (`simple-cnn`, ...).
    pub network: &'a str,
    /// Strategies to compare.
    pub strategies: &'a [StrategySpec],
    /// Independent searches (seeds) per strategy.
    pub searches: usize,
    /// Configurations per search.
    pub experiments: u64,
    /// Trainings per configuration, each its own trial (the paper: 8).
    pub repeat: u64,
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
///
/// `identity` is the training settings stored with every study (a rerun with other settings is
/// refused rather than mixed in).
pub fn run(
    storage: &Arc<dyn Storage>,
    plan: &Plan<'_>,
    objective: Arc<dyn ObjectiveFunction>,
    identity: &serde_json::Map<String, serde_json::Value>,
    options: &RunOptions,
    progress: &mut dyn FnMut(&str, usize, usize),
) -> Result<Runs, ExperimentError> {
    let mut out = Vec::new();
    let mut provenances = Vec::new();
    let mut unknown: Option<String> = None;
    let total = plan.strategies.len() * plan.searches;
    let mut done = 0;
    for strategy in plan.strategies {
        let mut reps = Vec::new();
        for rep in 0..plan.searches {
            let name = format!("{}-{}-{}-r{rep}", plan.prefix, plan.network, strategy.key);
            let mut sampler_options = strategy.sampler.options.clone();
            if plan.repeat > 1 {
                sampler_options.insert("repeat".into(), serde_json::json!(plan.repeat));
            }
            let mut objectives = vec![Objective {
                metric: "accuracy".into(),
                direction: Direction::Maximize,
            }];
            if strategy.energy_objective {
                objectives.push(Objective {
                    metric: "energy".into(),
                    direction: Direction::Minimize,
                });
            }
            let config = StudyConfig {
                name: name.clone(),
                space: plan.space.clone(),
                objectives,
                sampler: SamplerSpec {
                    name: strategy.sampler.name.clone(),
                    seed: rep as u64 + 1,
                    options: sampler_options,
                },
                pruner: strategy.pruner.clone(),
                stop: StopRules {
                    n_trials: Some(plan.experiments * plan.repeat),
                    ..StopRules::default()
                },
                objective: ObjectiveSpec {
                    kind: ObjectiveKind::Train,
                    command: Vec::new(),
                    options: identity.clone(),
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
            match sequences(&trials, plan.repeat) {
                Ok(seqs) => reps.extend(seqs),
                Err(why) => {
                    unknown.get_or_insert(format!("{why} (study {name})"));
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

/// A study's trials as `repeat` sequences: sequence `r` holds the `r`-th training of every
/// configuration (in the order configurations first appear), each turned into points by
/// [`sequence`]. A trial stopped by an interrupt is left out (it ran again under the same
/// configuration). With `repeat` ≤ 1 this is `[sequence(trials)]`; an unknown energy anywhere
/// makes it an error (see [`sequence`]).
pub fn sequences(trials: &[Trial], repeat: u64) -> Result<Vec<Vec<TrialPoint>>, String> {
    if repeat <= 1 {
        return Ok(vec![sequence(trials)?]);
    }
    let mut ordered: Vec<&Trial> = trials.iter().filter(|t| !was_interrupted(t)).collect();
    ordered.sort_by_key(|t| t.number);
    let mut configurations: Vec<(&greenlab_tune::Params, usize)> = Vec::new();
    let mut buckets: Vec<Vec<Trial>> = vec![Vec::new(); repeat as usize];
    for t in ordered {
        let index = match configurations.iter_mut().find(|(p, _)| **p == t.params) {
            Some((_, n)) => {
                *n += 1;
                *n - 1
            }
            None => {
                configurations.push((&t.params, 1));
                0
            }
        };
        if let Some(bucket) = buckets.get_mut(index) {
            bucket.push(t.clone());
        }
    }
    buckets.iter().map(|b| sequence(b)).collect()
}

/// Compares the strategies of one network; refused (with the reason, starting with
/// [`crate::energy::NOT_MEASURED`]) when a trial's energy is unknown.
pub fn compare(runs: &Runs) -> Result<StrategyComparison, String> {
    if let Some(why) = &runs.unknown {
        return Err(why.clone());
    }
    compare_strategies(&runs.strategies, CompareOptions::default()).map_err(|e| e.to_string())
}

/// Compares the strategies of one network against a target a strategy can actually reach:
/// `target`, or else 99 % of the best *median* best accuracy of any strategy (the best over
/// repetitions would be one lucky repetition that the others cannot match, so no strategy
/// would reach it in most of its repetitions).
pub fn compare_reachable(runs: &Runs, target: Option<f64>) -> Result<StrategyComparison, String> {
    let target = match target {
        Some(t) => t,
        None => {
            let first = compare(runs)?;
            // A repetition that succeeded nowhere ranks below every accuracy.
            let best_median = first
                .strategies
                .iter()
                .map(|s| {
                    let best: Vec<f64> = s
                        .best_accuracy
                        .iter()
                        .map(|a| if a.is_nan() { f64::NEG_INFINITY } else { *a })
                        .collect();
                    greenlab_stats::describe::median(&best)
                })
                .fold(f64::NEG_INFINITY, f64::max);
            if !best_median.is_finite() {
                return Ok(first);
            }
            0.99 * best_median
        }
    };
    compare_strategies(
        &runs.strategies,
        CompareOptions {
            target_accuracy: Some(target),
            ..CompareOptions::default()
        },
    )
    .map_err(|e| e.to_string())
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
    .with_caption(match c.options.target_accuracy {
        None => format!(
            "Target: {:.2} % test accuracy = {:.0} % of the best seen",
            100.0 * c.target_accuracy,
            100.0 * c.options.target_fraction
        ),
        Some(_) => format!(
            "Target: {:.2} % test accuracy (the best seen: {:.2} %)",
            100.0 * c.target_accuracy,
            100.0 * c.best_accuracy
        ),
    });
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
