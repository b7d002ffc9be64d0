//! The sampler contract, and the samplers built into this crate.
//!
//! `grid`, `random` and `quasi` (Halton, scrambled Sobol) live here; the model-based and
//! evolutionary samplers (Gaussian-process BO, TPE, and for several objectives ParEGO and
//! NSGA-II) live in their own modules beside them, as do the paper's own grid and GP-PI
//! ([`paper`]) and the repetition of configurations ([`repeat`]).

pub mod gp;
pub mod grid;
pub mod multi;
pub mod nsga2;
pub mod paper;
pub mod quasi;
pub mod random;
pub mod repeat;
pub mod rng;
pub mod tpe;

pub use grid::GridSampler;
pub use quasi::{HaltonSampler, SobolSampler};
pub use random::RandomSampler;

use crate::TuneError;
use crate::space::{Params, SearchSpace};
use crate::trial::{Objective, Trial};

/// What a sampler sees when asked for a suggestion.
#[derive(Clone, Copy, Debug)]
pub struct SampleContext<'a> {
    /// The search space.
    pub space: &'a SearchSpace,
    /// The study's objectives, in order (`Trial::values` follow this order).
    pub objectives: &'a [Objective],
    /// Every trial of the study so far, in any state (running ones have no values yet).
    pub history: &'a [Trial],
    /// Number of the trial being sampled (unique within the study).
    pub number: u64,
}

/// Chooses parameters for new trials.
///
/// Contract: called by a worker after it has created trial `ctx.number` and before the trial
/// runs; it decides from the recorded history only (never measures anything). Randomness is
/// derived from the sampler's seed and `ctx.number`, so that the same seed and the same history
/// give the same suggestion whichever worker asks, in whatever order. Implementations are
/// `Send + Sync` and take `&self`: one sampler serves all the worker threads of a process.
pub trait Sampler: Send + Sync {
    /// Short name, as written in study configurations (`grid`, `random`, `gp`, `tpe`, ...).
    fn name(&self) -> &str;

    /// Suggests parameters for trial `ctx.number`.
    fn suggest(&self, ctx: &SampleContext<'_>) -> Result<Params, TuneError>;

    /// How many distinct suggestions this sampler can make in `space` (a grid's size), after
    /// which the study is done; `None` (the default) when unlimited.
    fn max_trials(&self, space: &SearchSpace) -> Option<u64> {
        let _ = space;
        None
    }
}
