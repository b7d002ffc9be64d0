//! Comparing tuning strategies by what they reach per joule (the paper's RQ1): for each study,
//! the best-so-far value of the first objective as a function of cumulative energy, the energy
//! needed to reach a target, and totals.
//!
//! Significance across repetitions lives in `greenlab-stats`; this module only produces the
//! per-study sequences and numbers it needs.

use greenlab_meter::{EnergyBasis, Provenance};
use serde::{Deserialize, Serialize};

use crate::TuneError;
use crate::trial::{Direction, Objective, Trial, TrialState};

/// One trial's point on a strategy's curve (trials in the order they finished).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CurvePoint {
    /// Trial number.
    pub trial: u64,
    /// State the trial ended in.
    pub state: TrialState,
    /// Energy of this trial and every trial of the study that finished before it, in joules.
    pub cumulative_energy_j: f64,
    /// Wall time from the study's first trial start to this trial's end, in seconds.
    pub elapsed_s: f64,
    /// This trial's value of the first objective (complete trials only).
    pub value: Option<f64>,
    /// Best value among complete trials so far.
    pub best_so_far: Option<f64>,
}

/// One study's summary and curve.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StrategyCurve {
    /// Study name.
    pub study: String,
    /// Sampler name (from the study definition), when known.
    pub sampler: Option<String>,
    /// Sampler seed, when known.
    pub seed: Option<u64>,
    /// Finished trials, in the order they finished.
    pub points: Vec<CurvePoint>,
    /// Best value reached.
    pub best: Option<f64>,
    /// Energy of all finished trials, in joules.
    pub total_energy_j: f64,
    /// Trials finished, by state.
    pub complete: usize,
    /// Pruned trials.
    pub pruned: usize,
    /// Failed and diverged trials.
    pub failed: usize,
    /// Cumulative energy when the best-so-far first reached the target (joules).
    pub energy_to_target_j: Option<f64>,
    /// Trials finished when the target was first reached.
    pub trials_to_target: Option<usize>,
    /// What the energies are (counter, estimated, mixed, ...).
    pub provenance: Provenance,
    /// Failed trials whose worker was lost before any energy was recorded: their energy is
    /// unknown and not in the sums, which are then lower bounds (said in `warnings`).
    #[serde(default)]
    pub lost_trials: usize,
}

/// A comparison of several studies on the same objective.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Direction of the first objective.
    pub direction: Direction,
    /// The target value used for energy-to-target.
    pub target: Option<f64>,
    /// How the target was chosen.
    pub target_rule: String,
    /// One entry per study, in the order given.
    pub studies: Vec<StrategyCurve>,
    /// Which energy figure the curves use.
    #[serde(default)]
    pub basis: EnergyBasis,
    /// Sentences that qualify the figures (lost trials, mixed sources).
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// Input for one study: its name, sampler name and seed if known, and its trials.
#[derive(Clone, Debug)]
pub struct StudyTrials {
    /// Study name.
    pub name: String,
    /// Sampler name.
    pub sampler: Option<String>,
    /// Sampler seed.
    pub seed: Option<u64>,
    /// All trials of the study.
    pub trials: Vec<Trial>,
}

fn better(a: f64, b: f64, direction: Direction) -> bool {
    match direction {
        Direction::Maximize => a > b,
        Direction::Minimize => a < b,
    }
}

fn reaches(value: f64, target: f64, direction: Direction) -> bool {
    match direction {
        Direction::Maximize => value >= target,
        Direction::Minimize => value <= target,
    }
}

/// Whether a failed trial is one whose worker was lost before anything was measured (reaped
/// by its lease): its energy is unknown, but that is the worker's loss, not a measurement.
pub fn lost_before_measuring(t: &Trial) -> bool {
    t.state == TrialState::Failed && t.energy.is_none() && t.intermediate.is_empty()
}

/// The curve of one study (no target), on `basis`'s energy figures. A finished trial whose
/// energy is unknown makes the curve impossible (`UnknownEnergy`): cumulative energies built on
/// a missing figure would be wrong, and unknown is never 0. Trials lost before anything was
/// measured are counted in `lost_trials` instead.
pub fn curve(
    input: &StudyTrials,
    direction: Direction,
    basis: EnergyBasis,
) -> Result<StrategyCurve, TuneError> {
    let mut finished: Vec<&Trial> = input
        .trials
        .iter()
        .filter(|t| t.state.is_finished())
        .collect();
    finished.sort_by(|a, b| {
        a.finished_at
            .unwrap_or(f64::INFINITY)
            .total_cmp(&b.finished_at.unwrap_or(f64::INFINITY))
            .then(a.number.cmp(&b.number))
    });
    let start = input
        .trials
        .iter()
        .filter_map(|t| t.started_at)
        .reduce(f64::min)
        .unwrap_or(0.0);
    let mut cumulative = 0.0;
    let mut best: Option<f64> = None;
    let mut points = Vec::with_capacity(finished.len());
    let (mut complete, mut pruned, mut failed, mut lost) = (0, 0, 0, 0);
    let mut sources = Vec::new();
    for t in finished {
        let energy = match &t.energy {
            Some(e) => e
                .figure(basis)
                .map(|j| j.0)
                .ok_or_else(|| e.why_unknown(basis)),
            None => t
                .intermediate
                .last()
                .and_then(|i| i.energy)
                .map(|j| j.0)
                .ok_or_else(|| Some("no energy was recorded".to_owned())),
        };
        let energy = match energy {
            Ok(j) => {
                sources.push(t.energy.as_ref().map(|e| e.provenance()));
                j
            }
            Err(_) if lost_before_measuring(t) => {
                lost += 1;
                0.0
            }
            Err(why) => {
                return Err(TuneError::UnknownEnergy {
                    study: input.name.clone(),
                    trial: t.number,
                    why: why.unwrap_or_else(|| "not measured".to_owned()),
                });
            }
        };
        cumulative += energy;
        let value = match t.state {
            TrialState::Complete => {
                complete += 1;
                t.values.as_ref().and_then(|v| v.first().copied())
            }
            TrialState::Pruned => {
                pruned += 1;
                None
            }
            _ => {
                failed += 1;
                None
            }
        }
        .filter(|v| !v.is_nan());
        if let Some(v) = value
            && best.is_none_or(|b| better(v, b, direction))
        {
            best = Some(v);
        }
        points.push(CurvePoint {
            trial: t.number,
            state: t.state,
            cumulative_energy_j: cumulative,
            elapsed_s: t.finished_at.map(|f| (f - start).max(0.0)).unwrap_or(0.0),
            value,
            best_so_far: best,
        });
    }
    let provenance =
        Provenance::combine(sources.iter().map(|p| p.unwrap_or(Provenance::NotMeasured)));
    Ok(StrategyCurve {
        study: input.name.clone(),
        sampler: input.sampler.clone(),
        seed: input.seed,
        points,
        best,
        total_energy_j: cumulative,
        complete,
        pruned,
        failed,
        energy_to_target_j: None,
        trials_to_target: None,
        provenance,
        lost_trials: lost,
    })
}

/// Compares studies. The target is `target` when given; otherwise `target_fraction` of the
/// best value seen in any of the studies (for minimisation, the best value increased by the
/// same relative margin: `best · (2 − fraction)` for a positive best).
///
/// Energies are `basis`'s figures; a study with a finished trial whose energy is unknown is
/// refused (`UnknownEnergy`, naming the trial and why) rather than ranked on a missing figure.
pub fn compare(
    inputs: &[StudyTrials],
    direction: Direction,
    target: Option<f64>,
    target_fraction: f64,
    basis: EnergyBasis,
) -> Result<Comparison, TuneError> {
    let mut studies: Vec<StrategyCurve> = inputs
        .iter()
        .map(|i| curve(i, direction, basis))
        .collect::<Result<_, _>>()?;
    let mut warnings = Vec::new();
    let lost: usize = studies.iter().map(|s| s.lost_trials).sum();
    if lost > 0 {
        warnings.push(format!(
            "{lost} trial(s) lost their worker before any energy was recorded: their energy is \
             unknown and not included, so the energies are lower bounds"
        ));
    }
    let provenance = Provenance::combine(studies.iter().map(|s| s.provenance));
    if provenance == Provenance::Mixed {
        warnings.push(
            "the studies' energies come from different sources (counter and estimate): compare \
             them with care"
                .to_owned(),
        );
    }
    let overall = studies
        .iter()
        .filter_map(|s| s.best)
        .reduce(|a, b| if better(a, b, direction) { a } else { b });
    let (target, rule) = match (target, overall) {
        (Some(t), _) => (Some(t), format!("given target {t}")),
        (None, Some(best)) => {
            let t = match direction {
                Direction::Maximize => best * target_fraction,
                Direction::Minimize => best * (2.0 - target_fraction),
            };
            (
                Some(t),
                format!(
                    "{:.1} % of the best value seen in any study ({best})",
                    target_fraction * 100.0
                ),
            )
        }
        (None, None) => (None, "no complete trial in any study".to_string()),
    };
    if let Some(t) = target {
        for s in &mut studies {
            if let Some((i, p)) = s
                .points
                .iter()
                .enumerate()
                .find(|(_, p)| p.best_so_far.is_some_and(|b| reaches(b, t, direction)))
            {
                s.energy_to_target_j = Some(p.cumulative_energy_j);
                s.trials_to_target = Some(i + 1);
            }
        }
    }
    Ok(Comparison {
        direction,
        target,
        target_rule: rule,
        studies,
        basis,
        warnings,
    })
}

/// Complete trials not dominated by another complete trial on the study's objectives (for one
/// objective: the best trial), ordered by the first objective, best first.
pub fn pareto_front<'a>(trials: &'a [Trial], objectives: &[Objective]) -> Vec<&'a Trial> {
    let scored: Vec<(&Trial, Vec<f64>)> = trials
        .iter()
        .filter(|t| t.state == TrialState::Complete)
        .filter_map(|t| {
            let v = t.values.as_ref()?;
            if v.len() != objectives.len() || v.iter().any(|x| x.is_nan()) {
                return None;
            }
            // Orient every objective so that larger is better.
            let oriented = v
                .iter()
                .zip(objectives)
                .map(|(x, o)| match o.direction {
                    Direction::Maximize => *x,
                    Direction::Minimize => -*x,
                })
                .collect();
            Some((t, oriented))
        })
        .collect();
    let dominated = |a: &[f64], b: &[f64]| {
        b.iter().zip(a).all(|(y, x)| y >= x) && b.iter().zip(a).any(|(y, x)| y > x)
    };
    let mut front: Vec<(&Trial, &Vec<f64>)> = scored
        .iter()
        .filter(|(_, a)| !scored.iter().any(|(_, b)| dominated(a, b)))
        .map(|(t, a)| (*t, a))
        .collect();
    front.sort_by(|x, y| y.1[0].total_cmp(&x.1[0]).then(x.0.number.cmp(&y.0.number)));
    if objectives.len() == 1 {
        front.truncate(1);
    }
    front.into_iter().map(|(t, _)| t).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use greenlab_meter::{Joules, Seconds, Source};

    use super::*;
    use crate::trial::TrialEnergy;

    fn trial(number: u64, state: TrialState, value: f64, joules: f64, finished: f64) -> Trial {
        Trial {
            id: number as i64,
            number,
            state,
            params: BTreeMap::new(),
            values: (state == TrialState::Complete).then(|| vec![value]),
            intermediate: Vec::new(),
            energy: Some(TrialEnergy {
                total: Some(Joules(joules * 2.0)),
                attributed: Some(Joules(joules)),
                source: Source::Counter,
                duration: Seconds(1.0),
                domains: Vec::new(),
                unknown: None,
                warnings: Vec::new(),
            }),
            attrs: BTreeMap::new(),
            worker: None,
            process: None,
            retry_of: None,
            started_at: Some(0.0),
            finished_at: Some(finished),
        }
    }

    fn study(name: &str, trials: Vec<Trial>) -> StudyTrials {
        StudyTrials {
            name: name.into(),
            sampler: None,
            seed: None,
            trials,
        }
    }

    #[test]
    fn best_so_far_follows_finishing_order_and_counts_all_energy() {
        let s = study(
            "a",
            vec![
                trial(0, TrialState::Complete, 0.5, 10.0, 3.0),
                trial(1, TrialState::Complete, 0.8, 20.0, 1.0),
                trial(2, TrialState::Failed, 0.0, 5.0, 2.0),
                trial(3, TrialState::Pruned, 0.0, 1.0, 4.0),
            ],
        );
        let c = curve(&s, Direction::Maximize, EnergyBasis::Attributed).unwrap();
        let order: Vec<u64> = c.points.iter().map(|p| p.trial).collect();
        assert_eq!(order, [1, 2, 0, 3]);
        let energy: Vec<f64> = c.points.iter().map(|p| p.cumulative_energy_j).collect();
        assert_eq!(energy, [20.0, 25.0, 35.0, 36.0]);
        let best: Vec<Option<f64>> = c.points.iter().map(|p| p.best_so_far).collect();
        assert_eq!(best, [Some(0.8), Some(0.8), Some(0.8), Some(0.8)]);
        assert_eq!((c.complete, c.pruned, c.failed), (2, 1, 1));
        assert_eq!(c.total_energy_j, 36.0);
    }

    #[test]
    fn energy_to_target_uses_the_best_of_all_studies() {
        let cheap = study(
            "bo",
            vec![
                trial(0, TrialState::Complete, 0.7, 10.0, 1.0),
                trial(1, TrialState::Complete, 0.9, 10.0, 2.0),
            ],
        );
        let costly = study(
            "grid",
            vec![
                trial(0, TrialState::Complete, 0.6, 30.0, 1.0),
                trial(1, TrialState::Complete, 0.85, 30.0, 2.0),
                trial(2, TrialState::Complete, 0.895, 30.0, 3.0),
            ],
        );
        let c = compare(
            &[cheap, costly],
            Direction::Maximize,
            None,
            0.99,
            EnergyBasis::Attributed,
        )
        .unwrap();
        let t = c.target.unwrap();
        assert!((t - 0.891).abs() < 1e-12);
        assert_eq!(c.studies[0].energy_to_target_j, Some(20.0));
        assert_eq!(c.studies[0].trials_to_target, Some(2));
        assert_eq!(c.studies[1].energy_to_target_j, Some(90.0));
        let given = compare(
            &c_inputs(),
            Direction::Maximize,
            Some(0.95),
            0.99,
            EnergyBasis::Attributed,
        )
        .unwrap();
        assert_eq!(given.studies[0].energy_to_target_j, None, "never reached");
    }

    #[test]
    fn pareto_front_keeps_the_non_dominated_trials() {
        let mut trials = vec![
            trial(0, TrialState::Complete, 0.9, 100.0, 1.0),
            trial(1, TrialState::Complete, 0.8, 50.0, 2.0),
            trial(2, TrialState::Complete, 0.7, 80.0, 3.0),
            trial(3, TrialState::Failed, 0.0, 1.0, 4.0),
        ];
        let single = trials.clone();
        for t in &mut trials {
            if let Some(v) = &mut t.values {
                v.push(t.energy.as_ref().unwrap().attributed.unwrap().0);
            }
        }
        let objectives = crate::testing::sampler_objectives();
        let front: Vec<u64> = pareto_front(&trials, &objectives)
            .iter()
            .map(|t| t.number)
            .collect();
        assert_eq!(front, [0, 1]);
        let best: Vec<u64> = pareto_front(&single, &objectives[..1])
            .iter()
            .map(|t| t.number)
            .collect();
        assert_eq!(best, [0]);
    }

    fn c_inputs() -> Vec<StudyTrials> {
        vec![study(
            "x",
            vec![trial(0, TrialState::Complete, 0.9, 1.0, 1.0)],
        )]
    }

    #[test]
    fn minimisation_targets_a_margin_above_the_best() {
        let s = study(
            "loss",
            vec![
                trial(0, TrialState::Complete, 0.5, 1.0, 1.0),
                trial(1, TrialState::Complete, 0.2, 1.0, 2.0),
                trial(2, TrialState::Complete, 0.199, 1.0, 3.0),
            ],
        );
        let c = compare(
            &[s],
            Direction::Minimize,
            None,
            0.9,
            EnergyBasis::Attributed,
        )
        .unwrap();
        assert!((c.target.unwrap() - 0.199 * 1.1).abs() < 1e-12);
        assert_eq!(c.studies[0].trials_to_target, Some(2));
        assert_eq!(c.studies[0].best, Some(0.199));
    }

    #[test]
    fn a_trial_with_unknown_energy_is_refused_never_counted_as_zero() {
        let mut unmeasured = trial(1, TrialState::Complete, 0.9, 10.0, 2.0);
        if let Some(e) = &mut unmeasured.energy {
            e.total = None;
            e.attributed = None;
            e.unknown = Some("psys: the counter froze".into());
        }
        let s = study(
            "x",
            vec![trial(0, TrialState::Complete, 0.5, 10.0, 1.0), unmeasured],
        );
        let err = compare(
            &[s],
            Direction::Maximize,
            None,
            0.9,
            EnergyBasis::Attributed,
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(
            err.contains("trial 1") && err.contains("psys: the counter froze"),
            "{err}"
        );
    }

    #[test]
    fn the_machine_basis_uses_the_machine_figure_and_lost_workers_are_flagged() {
        let mut lost = trial(2, TrialState::Failed, 0.0, 0.0, 3.0);
        lost.energy = None;
        let s = study(
            "x",
            vec![
                trial(0, TrialState::Complete, 0.5, 10.0, 1.0),
                trial(1, TrialState::Complete, 0.6, 5.0, 2.0),
                lost,
            ],
        );
        let c = compare(&[s], Direction::Maximize, None, 0.9, EnergyBasis::Machine).unwrap();
        assert_eq!(
            c.studies[0].total_energy_j, 30.0,
            "twice the attributed figures"
        );
        assert_eq!(c.studies[0].lost_trials, 1);
        assert!(c.warnings[0].contains("lower bounds"), "{:?}", c.warnings);
        assert_eq!(c.studies[0].provenance, Provenance::Counter);
    }
}
