//! Repetitions of each configuration (`repeat = k` in any `[sampler]` section).
//!
//! The paper trains every configuration it tries several times (8) and lets its Bayesian model
//! see every repetition's accuracy as its own observation at the same point. [`RepeatSampler`]
//! does that for any sampler: each configuration the inner sampler suggests is run as `k`
//! consecutive trials, so every repetition is a trial of its own (its energy measured, its
//! accuracy recorded, prunable) and the inner sampler is asked again only once all `k` exist.
//!
//! The structure is read from the history, not from trial numbers: configurations are taken in
//! the order they first appear, a trial stopped by an interrupt does not count (it is enqueued
//! again with the same parameters), and the inner sampler is asked with `number` = the index of
//! the new configuration, so its seeded randomness is per configuration.

use crate::TuneError;
use crate::sampler::{SampleContext, Sampler};
use crate::space::{Params, SearchSpace};
use crate::study::was_interrupted;

/// Runs every configuration of `inner` `times` times in a row; see the
/// [module documentation](self).
pub struct RepeatSampler {
    inner: Box<dyn Sampler>,
    times: u64,
}

impl std::fmt::Debug for RepeatSampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepeatSampler")
            .field("inner", &self.inner.name())
            .field("times", &self.times)
            .finish()
    }
}

impl RepeatSampler {
    /// Repeats each of `inner`'s configurations `times` (at least 1) times.
    pub fn new(inner: Box<dyn Sampler>, times: u64) -> RepeatSampler {
        RepeatSampler {
            inner,
            times: times.max(1),
        }
    }
}

/// The configurations of a history in the order they first appear (interrupted trials left
/// out), each with how many trials ran or run it.
pub fn configurations(history: &[crate::Trial]) -> Vec<(Params, u64)> {
    let mut trials: Vec<&crate::Trial> = history.iter().filter(|t| !was_interrupted(t)).collect();
    trials.sort_by_key(|t| t.number);
    let mut out: Vec<(Params, u64)> = Vec::new();
    for t in trials {
        match out.iter_mut().find(|(p, _)| *p == t.params) {
            Some((_, n)) => *n += 1,
            None => out.push((t.params.clone(), 1)),
        }
    }
    out
}

impl Sampler for RepeatSampler {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn suggest(&self, ctx: &SampleContext<'_>) -> Result<Params, TuneError> {
        let earlier: Vec<crate::Trial> = ctx
            .history
            .iter()
            .filter(|t| t.number != ctx.number)
            .cloned()
            .collect();
        let configs = configurations(&earlier);
        if let Some((params, n)) = configs.last()
            && *n < self.times
        {
            return Ok(params.clone());
        }
        self.inner.suggest(&SampleContext {
            number: configs.len() as u64,
            ..*ctx
        })
    }

    fn max_trials(&self, space: &SearchSpace) -> Option<u64> {
        self.inner
            .max_trials(space)
            .map(|m| m.saturating_mul(self.times))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TrialState;
    use crate::sampler::RandomSampler;
    use crate::testing::{sampler_space, trial};

    #[test]
    fn each_configuration_runs_k_times_and_a_rerun_does_not_shift_the_blocks() {
        let space = sampler_space();
        let s = RepeatSampler::new(Box::new(RandomSampler::new(3)), 3);
        let mut history: Vec<crate::Trial> = Vec::new();
        let mut sampled = Vec::new();
        for number in 0..8u64 {
            let params = if number == 2 {
                // Trial 1 was interrupted; the worker enqueued its parameters again and trial 2
                // runs them without asking the sampler.
                history[1].params.clone()
            } else {
                let ctx = SampleContext {
                    space: &space,
                    objectives: &[],
                    history: &history,
                    number,
                };
                let p = s.suggest(&ctx).unwrap();
                sampled.push((number, p.clone()));
                p
            };
            let mut t = trial(number, params, Some(vec![0.5]), TrialState::Complete);
            if number == 1 {
                t.state = TrialState::Failed;
                t.attrs
                    .insert("interrupted".into(), serde_json::Value::Bool(true));
            }
            history.push(t);
        }
        let first = &history[0].params;
        // Trials 0, 2 (the rerun of 1) and 3 make up the first configuration.
        assert_eq!(&history[3].params, first);
        assert_ne!(
            &history[4].params, first,
            "a new configuration after three runs"
        );
        assert_eq!(history[5].params, history[4].params);
        assert_eq!(history[6].params, history[4].params);
        assert_ne!(history[7].params, history[4].params);
        // The inner sampler is asked with the configuration's index.
        let ask = |number| {
            RandomSampler::new(3)
                .suggest(&SampleContext {
                    space: &space,
                    objectives: &[],
                    history: &[],
                    number,
                })
                .unwrap()
        };
        assert_eq!(first, &ask(0));
        assert_eq!(history[4].params, ask(1));
        assert_eq!(history[7].params, ask(2));
        assert_eq!(sampled.len(), 7);
    }
}
