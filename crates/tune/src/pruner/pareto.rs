//! A pruner for two objectives, accuracy and energy: stop a trial whose partial result is
//! Pareto-dominated by enough of the trials that went further.

use super::{at_step, first_direction, references};
use crate::pruner::Pruner;
use crate::trial::{Direction, Objective, Trial};

/// Prunes a trial whose intermediate point (value, cumulative energy) at step `t` is
/// dominated by more than a fraction `quantile` of the reference trials' points at step `t`.
///
/// Why this rule: with energy as a second objective, a partial trial is hopeless when other
/// trials had, at the same step, both a better value *and* spent no more energy to get there.
/// Counting such dominators generalises the median rule to two objectives: when every trial
/// spends the same energy per step, "dominated by more than half" is exactly "worse than the
/// median", so with `quantile = 0.5` this pruner reduces to [`super::MedianPruner`] (on the
/// current value). A trial that is slower to improve but much cheaper per step is kept — the
/// median pruner, blind to energy, would stop it. References are the complete and pruned
/// trials that reported step `t` (pruned ones were also judged on that step, and excluding
/// them would bias the reference set toward good trials as pruning proceeds).
///
/// Point `a` dominates `b` when `a`'s value is at least as good and its energy at most as
/// high, one of them strictly. Nothing is pruned before `n_startup_trials` references exist at
/// the step or during the first `n_warmup_steps` steps; a NaN value is pruned once allowed.
#[derive(Clone, Debug)]
pub struct ParetoPruner {
    /// References needed at a step before anything is pruned there.
    pub n_startup_trials: usize,
    /// Steps of each trial that are never pruned.
    pub n_warmup_steps: u32,
    /// Fraction of references that must dominate the trial for it to be pruned (0 to 1).
    pub quantile: f64,
}

impl Default for ParetoPruner {
    fn default() -> Self {
        ParetoPruner {
            n_startup_trials: 5,
            n_warmup_steps: 0,
            quantile: 0.5,
        }
    }
}

impl ParetoPruner {
    /// A Pareto pruner with these settings (`quantile` clamped to `[0, 1]`).
    pub fn new(n_startup_trials: usize, n_warmup_steps: u32, quantile: f64) -> ParetoPruner {
        ParetoPruner {
            n_startup_trials,
            n_warmup_steps,
            quantile: if quantile.is_nan() {
                0.5
            } else {
                quantile.clamp(0.0, 1.0)
            },
        }
    }
}

/// Whether `(va, ea)` dominates `(vb, eb)`: value no worse, energy no higher, one strictly.
pub fn dominates(va: f64, ea: f64, vb: f64, eb: f64, direction: Direction) -> bool {
    let (no_worse, better) = match direction {
        Direction::Maximize => (va >= vb, va > vb),
        Direction::Minimize => (va <= vb, va < vb),
    };
    no_worse && ea <= eb && (better || ea < eb)
}

impl Pruner for ParetoPruner {
    fn should_prune(&self, objectives: &[Objective], trial: &Trial, history: &[Trial]) -> bool {
        let Some(last) = trial.intermediate.last() else {
            return false;
        };
        if last.step <= self.n_warmup_steps {
            return false;
        }
        // Without this trial's energy there is nothing to compare: never prune on a guess.
        let Some(energy) = last.energy.filter(|e| !e.0.is_nan()) else {
            return false;
        };
        let points: Vec<(f64, f64)> = references(trial, history, true)
            .filter_map(|t| at_step(t, last.step))
            .filter_map(|i| {
                let e = i.energy.filter(|e| !e.0.is_nan())?;
                (!i.value.is_nan()).then_some((i.value, e.0))
            })
            .collect();
        if points.len() < self.n_startup_trials.max(1) {
            return false;
        }
        if last.value.is_nan() {
            return true;
        }
        let direction = first_direction(objectives);
        let dominators = points
            .iter()
            .filter(|&&(v, e)| dominates(v, e, last.value, energy.0, direction))
            .count();
        dominators as f64 > self.quantile * points.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pruner::MedianPruner;
    use crate::pruner::test_support::{curve, objectives, trial};
    use crate::trial::TrialState;

    fn history() -> Vec<Trial> {
        // Five references at step 1: accuracy 0.5..0.9, each having spent 10 J.
        [0.5, 0.6, 0.7, 0.8, 0.9]
            .iter()
            .enumerate()
            .map(|(i, &v)| trial(i as i64, TrialState::Complete, &curve(&[v])))
            .collect()
    }

    #[test]
    fn equal_energy_reduces_to_the_median_rule() {
        let obj = objectives(Direction::Maximize);
        let h = history();
        let pareto = ParetoPruner::default();
        let median = MedianPruner::new(5, 0);
        for v in [0.45, 0.55, 0.65, 0.75, 0.85, 0.95] {
            let t = trial(10, TrialState::Running, &curve(&[v]));
            assert_eq!(
                pareto.should_prune(&obj, &t, &h),
                median.should_prune(&obj, &t, &h),
                "value {v}"
            );
        }
    }

    #[test]
    fn a_cheap_trial_survives_where_the_median_pruner_stops_it() {
        let obj = objectives(Direction::Maximize);
        let h = history();
        // Accuracy 0.55 (below the median 0.7) but only 2 J spent: no reference dominates it.
        let cheap = trial(10, TrialState::Running, &[(0.55, 2.0)]);
        assert!(MedianPruner::new(5, 0).should_prune(&obj, &cheap, &h));
        assert!(!ParetoPruner::default().should_prune(&obj, &cheap, &h));
        // Accuracy 0.85 at 50 J: 0.9@10 J dominates it, 0.5..0.8 do not; 1/5 is not enough.
        let costly = trial(10, TrialState::Running, &[(0.85, 50.0)]);
        assert!(!ParetoPruner::default().should_prune(&obj, &costly, &h));
        // Accuracy 0.6 at 50 J: dominated by 0.7, 0.8, 0.9 (3/5 > 0.5).
        let bad = trial(10, TrialState::Running, &[(0.6, 50.0)]);
        assert!(ParetoPruner::default().should_prune(&obj, &bad, &h));
        // Too few references, or warm-up: kept.
        assert!(!ParetoPruner::new(6, 0, 0.5).should_prune(&obj, &bad, &h));
        assert!(!ParetoPruner::new(5, 1, 0.5).should_prune(&obj, &bad, &h));
    }

    #[test]
    fn dominance_is_strict_somewhere() {
        assert!(dominates(0.9, 10.0, 0.8, 10.0, Direction::Maximize));
        assert!(dominates(0.8, 9.0, 0.8, 10.0, Direction::Maximize));
        assert!(!dominates(0.8, 10.0, 0.8, 10.0, Direction::Maximize));
        assert!(!dominates(0.9, 11.0, 0.8, 10.0, Direction::Maximize));
        assert!(dominates(0.1, 10.0, 0.2, 10.0, Direction::Minimize));
    }
}
