//! What the model-based samplers read from a study's history, in the unit cube.
//!
//! Shared by the GP, TPE and multi-objective samplers so that they treat trial states alike:
//! complete trials with finite values are observations; diverged trials (and complete ones with
//! a non-finite value) count as the worst value observed so far, so the model learns to avoid
//! the region; failed and pruned trials are ignored; running and waiting trials that already
//! have parameters are *pending* (another worker is evaluating them).

use crate::TuneError;
use crate::sampler::SampleContext;
use crate::sampler::rng::TrialRng;
use crate::space::{Distribution, Params, SearchSpace};
use crate::trial::{Direction, TrialState};

/// Observations, with every objective turned into a score to maximise.
#[derive(Clone, Debug, Default)]
pub struct Observations {
    /// Unit-cube points of the observed trials.
    pub x: Vec<Vec<f64>>,
    /// Scores per observed trial, one per objective (`value` for maximised objectives, `−value`
    /// for minimised ones), so that larger is always better.
    pub scores: Vec<Vec<f64>>,
    /// Trial numbers of the observations (older trials have smaller numbers).
    pub numbers: Vec<u64>,
    /// Measured energy of each observed trial in joules, where recorded and positive.
    pub energy: Vec<Option<f64>>,
    /// Unit-cube points of pending (running or waiting) trials.
    pub pending: Vec<Vec<f64>>,
}

/// Maps a trial's parameters to the unit cube; walks both sorted maps together when they hold
/// the same names (the common case), which avoids a lookup per parameter.
pub fn unit_point(space: &SearchSpace, params: &Params) -> Option<Vec<f64>> {
    if params.len() == space.params.len() {
        let mut out = Vec::with_capacity(params.len());
        for ((name, d), (pname, v)) in space.params.iter().zip(params) {
            if name != pname {
                return space.to_unit(params);
            }
            out.push(d.to_unit(v)?);
        }
        Some(out)
    } else {
        space.to_unit(params)
    }
}

/// A multi-objective sampler's check that the study declares its objectives.
pub fn require_objectives(ctx: &SampleContext<'_>, sampler: &str) -> Result<(), TuneError> {
    if ctx.objectives.is_empty() {
        return Err(TuneError::Sampler {
            sampler: sampler.into(),
            message: "the study declares no objectives; add at least one (for example accuracy \
                      and energy)"
                .into(),
        });
    }
    Ok(())
}

/// Collects observations from the history. Trials whose parameters do not fit the space (the
/// space changed) are skipped.
pub fn observe(ctx: &SampleContext<'_>) -> Observations {
    let m = ctx.objectives.len().max(1);
    let signs: Vec<f64> = if ctx.objectives.is_empty() {
        vec![1.0]
    } else {
        ctx.objectives
            .iter()
            .map(|o| match o.direction {
                Direction::Maximize => 1.0,
                Direction::Minimize => -1.0,
            })
            .collect()
    };
    let h = ctx.history.len();
    let mut obs = Observations {
        x: Vec::with_capacity(h),
        scores: Vec::with_capacity(h),
        numbers: Vec::with_capacity(h),
        energy: Vec::with_capacity(h),
        pending: Vec::new(),
    };
    let mut diverged: Vec<(Vec<f64>, u64, Option<f64>)> = Vec::new();
    for t in ctx.history {
        if t.number == ctx.number {
            continue;
        }
        match t.state {
            TrialState::Running | TrialState::Waiting => {
                if !t.params.is_empty()
                    && let Some(x) = unit_point(ctx.space, &t.params)
                {
                    obs.pending.push(x);
                }
            }
            TrialState::Complete | TrialState::Diverged => {
                let Some(x) = unit_point(ctx.space, &t.params) else {
                    continue;
                };
                let energy = t
                    .energy
                    .as_ref()
                    .and_then(|e| e.figure(greenlab_meter::EnergyBasis::Attributed))
                    .map(|j| j.0)
                    .filter(|j| j.is_finite() && *j > 0.0);
                let values = t.values.as_deref().unwrap_or(&[]);
                let finite = values.len() >= m && values[..m].iter().all(|v| v.is_finite());
                if t.state == TrialState::Complete && finite {
                    obs.x.push(x);
                    obs.scores
                        .push(values[..m].iter().zip(&signs).map(|(v, s)| v * s).collect());
                    obs.numbers.push(t.number);
                    obs.energy.push(energy);
                } else {
                    diverged.push((x, t.number, energy));
                }
            }
            TrialState::Failed | TrialState::Pruned => {}
        }
    }
    if !obs.scores.is_empty() {
        let worst: Vec<f64> = (0..m)
            .map(|i| {
                obs.scores
                    .iter()
                    .map(|s| s[i])
                    .fold(f64::INFINITY, f64::min)
            })
            .collect();
        for (x, number, energy) in diverged {
            obs.x.push(x);
            obs.scores.push(worst.clone());
            obs.numbers.push(number);
            obs.energy.push(energy);
        }
    }
    obs
}

/// How a dimension is searched.
#[derive(Clone, Debug, PartialEq)]
pub enum DimKind {
    /// Any point of `[0, 1]`.
    Continuous,
    /// A few values (unit-cube bin centres): categorical choices and small integer ranges.
    Discrete {
        /// The centres.
        levels: Vec<f64>,
        /// Whether the values are unordered (categorical).
        categorical: bool,
    },
}

/// Integer ranges with at most this many values are searched value by value.
const MAX_DISCRETE_INT_LEVELS: u64 = 16;

/// The kind of every dimension, in the space's order.
pub fn dim_kinds(space: &SearchSpace) -> Vec<DimKind> {
    space
        .params
        .values()
        .map(|d| match d.unit_levels(MAX_DISCRETE_INT_LEVELS) {
            Some(levels) => DimKind::Discrete {
                levels,
                categorical: matches!(d, Distribution::Categorical { .. }),
            },
            None => DimKind::Continuous,
        })
        .collect()
}

/// Moves discrete coordinates to their nearest level.
pub fn snap(x: &mut [f64], kinds: &[DimKind]) {
    for (v, k) in x.iter_mut().zip(kinds) {
        if let DimKind::Discrete { levels, .. } = k {
            let mut best = (f64::INFINITY, *v);
            for &l in levels {
                let dist = (l - *v).abs();
                if dist < best.0 {
                    best = (dist, l);
                }
            }
            *v = best.1;
        }
    }
}

/// First primes, the Halton bases.
const PRIMES: [u64; 32] = [
    2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73, 79, 83, 89, 97,
    101, 103, 107, 109, 113, 127, 131,
];

fn radical_inverse(mut i: u64, base: u64) -> f64 {
    let inv = 1.0 / base as f64;
    let (mut f, mut r) = (inv, 0.0);
    while i > 0 {
        r += f * (i % base) as f64;
        i /= base;
        f *= inv;
    }
    r
}

/// Point `index` of a Halton sequence shifted by a random vector drawn from `seed` alone
/// (Cranley–Patterson rotation), so that the start-up trials of one seed cover the cube evenly
/// whatever their numbers. Beyond 32 dimensions the coordinates are uniform random.
pub fn startup_point(seed: u64, index: u64, d: usize) -> Vec<f64> {
    let mut shift_rng = TrialRng::new(seed, u64::MAX, 0x5EED_5A17);
    let mut own = TrialRng::new(seed, index, 0x5EED_5A18);
    (0..d)
        .map(|j| {
            let shift = shift_rng.next_f64();
            if j < PRIMES.len() {
                (radical_inverse(index + 1, PRIMES[j]) + shift).fract()
            } else {
                own.next_f64()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifted_halton_strata_are_exact() {
        // Points 16..31 of the base-2 sequence are 16 equally spaced values, so whatever the
        // shift, each half of [0, 1) gets exactly 8; points 9..17 in base 3 give 3 per third.
        for seed in 0..4 {
            let halves = (15..31)
                .filter(|&i| startup_point(seed, i, 2)[0] < 0.5)
                .count();
            assert_eq!(halves, 8, "seed {seed}");
            let mut thirds = [0; 3];
            for i in 8..17 {
                let p = startup_point(seed, i, 2);
                assert!(p.iter().all(|v| (0.0..1.0).contains(v)));
                thirds[(p[1] * 3.0) as usize] += 1;
            }
            assert_eq!(thirds, [3, 3, 3], "seed {seed}");
        }
        assert_eq!(startup_point(3, 5, 4), startup_point(3, 5, 4));
        assert_ne!(startup_point(3, 5, 4), startup_point(4, 5, 4));
    }
}
