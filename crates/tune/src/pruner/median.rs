//! The median pruner (as Optuna's): stop a trial whose best value so far is worse than the
//! median of the completed trials' values at the same step.

use super::{at_step, better, first_direction, references};
use crate::pruner::Pruner;
use crate::trial::{Direction, Objective, Trial};

/// Prunes a trial at step `t` when its best intermediate value so far is worse than the
/// median of the values that completed trials reported at step `t`.
///
/// Nothing is pruned before `n_startup_trials` trials have completed, during the first
/// `n_warmup_steps` steps of a trial, or at a step no completed trial reported. A NaN value
/// is pruned as soon as pruning is allowed.
#[derive(Clone, Debug)]
pub struct MedianPruner {
    /// Completed trials needed before anything is pruned.
    pub n_startup_trials: usize,
    /// Steps of each trial that are never pruned (steps `1..=n_warmup_steps`).
    pub n_warmup_steps: u32,
}

impl Default for MedianPruner {
    fn default() -> Self {
        MedianPruner {
            n_startup_trials: 5,
            n_warmup_steps: 0,
        }
    }
}

impl MedianPruner {
    /// A median pruner with these settings.
    pub fn new(n_startup_trials: usize, n_warmup_steps: u32) -> MedianPruner {
        MedianPruner {
            n_startup_trials,
            n_warmup_steps,
        }
    }
}

/// Median of finite values (mean of the middle two for an even count).
pub(crate) fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    Some(if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    })
}

impl Pruner for MedianPruner {
    fn should_prune(&self, objectives: &[Objective], trial: &Trial, history: &[Trial]) -> bool {
        let Some(last) = trial.intermediate.last() else {
            return false;
        };
        if last.step <= self.n_warmup_steps {
            return false;
        }
        let completed: Vec<&Trial> = references(trial, history, false).collect();
        if completed.len() < self.n_startup_trials || completed.is_empty() {
            return false;
        }
        let direction = first_direction(objectives);
        let mut others: Vec<f64> = completed
            .iter()
            .filter_map(|t| at_step(t, last.step))
            .map(|i| i.value)
            .filter(|v| !v.is_nan())
            .collect();
        let Some(median) = median(&mut others) else {
            return false;
        };
        let best = trial
            .intermediate
            .iter()
            .map(|i| i.value)
            .fold(
                f64::NAN,
                |acc, v| if better(v, acc, direction) { v } else { acc },
            );
        if best.is_nan() {
            return true;
        }
        match direction {
            Direction::Maximize => best < median,
            Direction::Minimize => best > median,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pruner::test_support::{curve, objectives, trial};
    use crate::trial::TrialState;

    fn history() -> Vec<Trial> {
        [0.5, 0.6, 0.7, 0.8, 0.9]
            .iter()
            .enumerate()
            .map(|(i, &v)| trial(i as i64, TrialState::Complete, &curve(&[v, v + 0.05])))
            .collect()
    }

    #[test]
    fn prunes_below_the_median_and_keeps_above() {
        let p = MedianPruner::new(5, 0);
        let obj = objectives(Direction::Maximize);
        let h = history();
        assert!(p.should_prune(&obj, &trial(10, TrialState::Running, &curve(&[0.65])), &h));
        assert!(!p.should_prune(&obj, &trial(10, TrialState::Running, &curve(&[0.75])), &h));
        // Best-so-far counts: a dip at step 2 after a good step 1 is not pruned.
        assert!(!p.should_prune(
            &obj,
            &trial(10, TrialState::Running, &curve(&[0.8, 0.3])),
            &h
        ));
        assert!(p.should_prune(
            &obj,
            &trial(10, TrialState::Running, &curve(&[f64::NAN])),
            &h
        ));
    }

    #[test]
    fn startup_and_warmup_protect_trials() {
        let obj = objectives(Direction::Maximize);
        let h = history();
        let bad = trial(10, TrialState::Running, &curve(&[0.1]));
        assert!(!MedianPruner::new(6, 0).should_prune(&obj, &bad, &h));
        assert!(!MedianPruner::new(5, 1).should_prune(&obj, &bad, &h));
        let bad2 = trial(10, TrialState::Running, &curve(&[0.1, 0.1]));
        assert!(MedianPruner::new(5, 1).should_prune(&obj, &bad2, &h));
        // No completed trial reported step 3: nothing to compare with.
        let long = trial(10, TrialState::Running, &curve(&[0.1, 0.1, 0.1]));
        assert!(!MedianPruner::new(5, 0).should_prune(&obj, &long, &h));
        // Running and pruned trials are not references.
        let running: Vec<Trial> = h
            .iter()
            .cloned()
            .map(|mut t| {
                t.state = TrialState::Running;
                t
            })
            .collect();
        assert!(!MedianPruner::new(1, 0).should_prune(&obj, &bad, &running));
    }

    #[test]
    fn minimisation_flips_the_comparison() {
        let obj = objectives(Direction::Minimize);
        let h = history();
        let p = MedianPruner::new(5, 0);
        assert!(p.should_prune(&obj, &trial(10, TrialState::Running, &curve(&[0.75])), &h));
        assert!(!p.should_prune(&obj, &trial(10, TrialState::Running, &curve(&[0.65])), &h));
    }
}
