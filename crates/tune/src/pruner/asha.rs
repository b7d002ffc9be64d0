//! Asynchronous successive halving (ASHA): keep the best `1/η` of the trials at each rung.

use super::{better, first_direction};
use crate::pruner::Pruner;
use crate::trial::{Objective, Trial};

/// Asynchronous successive halving (Li et al., 2020), as Optuna's `SuccessiveHalvingPruner`.
///
/// Rungs sit at steps `min_resource · η^(s + k)` for `k = 0, 1, ...` (η the reduction factor,
/// `s` the minimum early-stopping rate). When a trial first reaches a rung, its value there is
/// ranked among the values every other trial (in any state) had when it reached the same rung;
/// it continues only when it ranks in the top `⌊n/η⌋` of the `n` values (or is the best when
/// `n < η`). Being asynchronous, early trials are promoted against few competitors; later ones
/// face the full field. Each rung is decided once, at the first step at or past it.
#[derive(Clone, Debug)]
pub struct SuccessiveHalvingPruner {
    /// Step of the first rung (≥ 1).
    pub min_resource: u32,
    /// η: the fraction `1/η` of trials promoted at each rung (≥ 2).
    pub reduction_factor: u32,
    /// `s`: shifts the first rung to `min_resource · η^s`.
    pub min_early_stopping_rate: u32,
}

impl Default for SuccessiveHalvingPruner {
    fn default() -> Self {
        SuccessiveHalvingPruner {
            min_resource: 1,
            reduction_factor: 3,
            min_early_stopping_rate: 0,
        }
    }
}

impl SuccessiveHalvingPruner {
    /// A pruner with these settings (clamped to `min_resource ≥ 1`, `reduction_factor ≥ 2`).
    pub fn new(min_resource: u32, reduction_factor: u32) -> SuccessiveHalvingPruner {
        SuccessiveHalvingPruner {
            min_resource: min_resource.max(1),
            reduction_factor: reduction_factor.max(2),
            min_early_stopping_rate: 0,
        }
    }

    /// The rung steps up to `max_step`.
    pub fn rungs(&self, max_step: u32) -> Vec<u32> {
        let eta = self.reduction_factor.max(2) as u64;
        let mut r = self.min_resource.max(1) as u64;
        for _ in 0..self.min_early_stopping_rate {
            r = r.saturating_mul(eta);
        }
        let mut out = Vec::new();
        while r <= max_step as u64 {
            out.push(r as u32);
            r = r.saturating_mul(eta);
        }
        out
    }
}

/// The value a trial had when it reached `rung`: its first reported step at or past it.
fn value_at_rung(trial: &Trial, rung: u32) -> Option<f64> {
    trial
        .intermediate
        .iter()
        .find(|i| i.step >= rung)
        .map(|i| i.value)
}

impl Pruner for SuccessiveHalvingPruner {
    fn should_prune(&self, objectives: &[Objective], trial: &Trial, history: &[Trial]) -> bool {
        let Some(last) = trial.intermediate.last() else {
            return false;
        };
        let previous_step = trial
            .intermediate
            .len()
            .checked_sub(2)
            .map(|i| trial.intermediate[i].step)
            .unwrap_or(0);
        // Decide only the rung this report has just reached (if any).
        let Some(&rung) = self
            .rungs(last.step)
            .iter()
            .rev()
            .find(|&&r| r > previous_step)
        else {
            return false;
        };
        let value = last.value;
        if value.is_nan() {
            return true;
        }
        let direction = first_direction(objectives);
        let competitors: Vec<f64> = history
            .iter()
            .filter(|t| t.id != trial.id)
            .filter_map(|t| value_at_rung(t, rung))
            .filter(|v| !v.is_nan())
            .collect();
        let n = competitors.len() + 1;
        let keep = (n / self.reduction_factor.max(2) as usize).max(1);
        let strictly_better = competitors
            .iter()
            .filter(|&&c| better(c, value, direction))
            .count();
        strictly_better >= keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pruner::test_support::{curve, objectives, trial};
    use crate::trial::{Direction, TrialState};

    #[test]
    fn rungs_grow_geometrically() {
        let p = SuccessiveHalvingPruner::new(1, 3);
        assert_eq!(p.rungs(30), [1, 3, 9, 27]);
        let mut q = SuccessiveHalvingPruner::new(2, 2);
        q.min_early_stopping_rate = 1;
        assert_eq!(q.rungs(20), [4, 8, 16]);
    }

    #[test]
    fn keeps_the_top_third_at_each_rung() {
        let p = SuccessiveHalvingPruner::new(1, 3);
        let obj = objectives(Direction::Maximize);
        // Five finished or running competitors with values 0.1..0.5 at every step.
        let history: Vec<Trial> = (0..5)
            .map(|i| {
                let v = 0.1 * (i as f64 + 1.0);
                let state = if i % 2 == 0 {
                    TrialState::Complete
                } else {
                    TrialState::Running
                };
                trial(i, state, &curve(&[v; 9]))
            })
            .collect();
        // n = 6, keep 2: the trial must have at most one competitor better than it.
        let t = trial(10, TrialState::Running, &curve(&[0.45]));
        assert!(!p.should_prune(&obj, &t, &history));
        let t = trial(10, TrialState::Running, &curve(&[0.35]));
        assert!(p.should_prune(&obj, &t, &history));
        // Step 2 is not a rung: no decision, whatever the value.
        let t = trial(10, TrialState::Running, &curve(&[0.45, 0.0]));
        assert!(!p.should_prune(&obj, &t, &history));
        // Step 3 is.
        let t = trial(10, TrialState::Running, &curve(&[0.45, 0.0, 0.0]));
        assert!(p.should_prune(&obj, &t, &history));
    }

    #[test]
    fn first_trials_are_promoted_when_best() {
        let p = SuccessiveHalvingPruner::new(1, 3);
        let obj = objectives(Direction::Minimize);
        let t = trial(1, TrialState::Running, &curve(&[5.0]));
        assert!(!p.should_prune(&obj, &t, &[]), "alone, a trial is the best");
        let other = trial(2, TrialState::Complete, &curve(&[1.0]));
        assert!(
            p.should_prune(&obj, &t, std::slice::from_ref(&other)),
            "loss 5 loses to loss 1"
        );
        let good = trial(1, TrialState::Running, &curve(&[0.5]));
        assert!(!p.should_prune(&obj, &good, &[other]));
    }
}
