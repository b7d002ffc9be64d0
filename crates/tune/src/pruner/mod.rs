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
