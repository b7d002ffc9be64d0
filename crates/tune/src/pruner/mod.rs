//! The pruner contract: stop a running trial early when its intermediate values are poor.

use crate::trial::{Objective, Trial};

/// Decides whether a running trial should stop early.
///
/// Contract: called by the worker after each intermediate value of `trial` has been recorded;
/// decides from recorded data only (`trial.intermediate`, and the finished trials of the
/// study in `history`). Returning `true` makes the worker stop the trial and record it as
/// pruned, which saves the energy of its remaining steps.
pub trait Pruner: Send + Sync {
    /// Whether to stop `trial` now.
    fn should_prune(&self, objectives: &[Objective], trial: &Trial, history: &[Trial]) -> bool;
}

mod asha;
mod median;
mod pareto;

pub use asha::SuccessiveHalvingPruner;
pub use median::MedianPruner;
#[cfg(any(test, feature = "testing"))]
pub(crate) use median::median;
pub use pareto::ParetoPruner;

use crate::trial::{Direction, Intermediate, TrialState};

/// Never prunes.
#[derive(Clone, Copy, Debug, Default)]
pub struct NopPruner;

impl Pruner for NopPruner {
    fn should_prune(&self, _objectives: &[Objective], _trial: &Trial, _history: &[Trial]) -> bool {
        false
    }
}

/// Direction of the first objective (the one intermediate values measure); maximise if none.
fn first_direction(objectives: &[Objective]) -> Direction {
    objectives
        .first()
        .map(|o| o.direction)
        .unwrap_or(Direction::Maximize)
}

/// The value a trial reported at `step`, if it reported exactly that step.
fn at_step(trial: &Trial, step: u32) -> Option<&Intermediate> {
    trial
        .intermediate
        .binary_search_by_key(&step, |i| i.step)
        .ok()
        .map(|i| &trial.intermediate[i])
}

/// Whether `a` is strictly better than `b` in `direction` (NaN is worse than anything).
fn better(a: f64, b: f64, direction: Direction) -> bool {
    match (a.is_nan(), b.is_nan()) {
        (true, _) => false,
        (false, true) => true,
        _ => match direction {
            Direction::Maximize => a > b,
            Direction::Minimize => a < b,
        },
    }
}

/// Trials other than `trial` that count as references: complete ones (and, where asked,
/// pruned ones, which also reached the step they are compared at).
fn references<'a>(
    trial: &'a Trial,
    history: &'a [Trial],
    include_pruned: bool,
) -> impl Iterator<Item = &'a Trial> + 'a {
    history.iter().filter(move |t| {
        t.id != trial.id
            && (t.state == TrialState::Complete
                || (include_pruned && t.state == TrialState::Pruned))
    })
}

#[cfg(test)]
pub(crate) mod test_support {
    use std::collections::BTreeMap;

    use greenlab_meter::Joules;

    use crate::trial::{Direction, Intermediate, Objective, Trial, TrialState};

    pub fn objectives(direction: Direction) -> Vec<Objective> {
        vec![Objective {
            metric: "accuracy".into(),
            direction,
        }]
    }

    /// A trial with intermediate values `(value, cumulative energy)` at steps 1, 2, ...
    pub fn trial(id: i64, state: TrialState, curve: &[(f64, f64)]) -> Trial {
        Trial {
            id,
            number: id as u64,
            state,
            params: BTreeMap::new(),
            values: None,
            intermediate: curve
                .iter()
                .enumerate()
                .map(|(i, &(value, energy))| Intermediate {
                    step: i as u32 + 1,
                    value,
                    energy: Some(Joules(energy)),
                })
                .collect(),
            energy: None,
            attrs: BTreeMap::new(),
            worker: None,
            process: None,
            retry_of: None,
            started_at: None,
            finished_at: None,
        }
    }

    /// A curve of values with energy growing 10 J per step.
    pub fn curve(values: &[f64]) -> Vec<(f64, f64)> {
        values
            .iter()
            .enumerate()
            .map(|(i, &v)| (v, 10.0 * (i as f64 + 1.0)))
            .collect()
    }
}
