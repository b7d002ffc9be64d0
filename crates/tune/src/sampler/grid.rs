//! Grid search, as in the paper: a fixed number of levels per real parameter, every value of
//! integer and categorical ones, visited in a seeded random order without repetition.

use crate::TuneError;
use crate::sampler::rng::mix;
use crate::sampler::{SampleContext, Sampler};
use crate::space::{Distribution, Params, SearchSpace};

/// Integer parameters with more values than this are gridded with `levels` evenly spaced
/// values, like real ones, rather than every value.
pub const DEFAULT_MAX_INT_LEVELS: u64 = 64;

/// Grid search over a search space.
///
/// Levels: a real parameter gets `levels` values evenly spaced in its unit interval, ends
/// included (so on a log scale `[1e-5, 1e-1]` with 5 levels gives 1e-5, 1e-4, ..., 1e-1); an
/// integer parameter gets every value when it has at most `max_int_levels` of them, otherwise
/// `levels` evenly spaced ones; a categorical parameter gets every choice.
///
/// Order: trial number `n` gets grid point `perm(n)`, where `perm` is a pseudo-random
/// permutation of the grid indices fixed by the seed (a keyed Feistel network with cycle
/// walking, so the grid is never materialised). Concurrent workers therefore never repeat a
/// point, and the same seed always gives the same order. Once every point has been suggested
/// the sampler reports the grid as exhausted ([`Sampler::max_trials`]) and further suggestions
/// are errors.
#[derive(Clone, Debug)]
pub struct GridSampler {
    seed: u64,
    levels: u64,
    max_int_levels: u64,
}

impl GridSampler {
    /// A grid with `levels` values per real parameter (at least 1).
    pub fn new(seed: u64, levels: u64) -> GridSampler {
        GridSampler {
            seed,
            levels: levels.max(1),
            max_int_levels: DEFAULT_MAX_INT_LEVELS,
        }
    }

    /// Sets the widest integer range that is gridded value by value.
    pub fn with_max_int_levels(mut self, max_int_levels: u64) -> GridSampler {
        self.max_int_levels = max_int_levels.max(1);
        self
    }

    /// The unit-interval coordinates of each parameter's levels, in name order.
    pub fn axes(&self, space: &SearchSpace) -> Vec<Vec<f64>> {
        space
            .params
            .values()
            .map(|d| {
                if let Some(levels) = d.unit_levels(self.max_int_levels) {
                    return levels;
                }
                match d {
                    // Evenly spaced integers; rounding may merge neighbours on a log scale, so
                    // drop repeats to keep every grid point distinct.
                    Distribution::Int { .. } => {
                        let mut values: Vec<i64> = even_levels(self.levels)
                            .into_iter()
                            .filter_map(|u| match d.from_unit(u) {
                                crate::ParamValue::Int(v) => Some(v),
                                _ => None,
                            })
                            .collect();
                        values.dedup();
                        values
                            .into_iter()
                            .filter_map(|v| d.to_unit(&crate::ParamValue::Int(v)))
                            .collect()
                    }
                    _ => even_levels(self.levels),
                }
            })
            .collect()
    }

    /// Number of grid points; an error when it does not fit in 64 bits.
    pub fn grid_size(&self, space: &SearchSpace) -> Result<u64, TuneError> {
        self.axes(space).iter().try_fold(1u64, |acc, axis| {
            acc.checked_mul(axis.len() as u64).ok_or_else(|| {
                TuneError::InvalidSpace(
                    "the grid has more than 2^64 points; use fewer levels or another sampler"
                        .into(),
                )
            })
        })
    }

    /// The parameters of grid point `index` (in the natural mixed-radix order).
    pub fn point(&self, space: &SearchSpace, index: u64) -> Result<Params, TuneError> {
        let axes = self.axes(space);
        let mut rest = index;
        let mut point = Vec::with_capacity(axes.len());
        for axis in &axes {
            let n = axis.len() as u64;
            point.push(axis[(rest % n) as usize]);
            rest /= n;
        }
        space.from_unit(&point)
    }
}

fn even_levels(levels: u64) -> Vec<f64> {
    if levels == 1 {
        return vec![0.5];
    }
    (0..levels)
        .map(|i| i as f64 / (levels - 1) as f64)
        .collect()
}

/// A keyed pseudo-random permutation of `0..n`: a balanced 4-round Feistel network on the
/// smallest even number of bits covering `n`, with cycle walking to stay below `n`.
pub fn permute(index: u64, n: u64, key: u64) -> u64 {
    if n <= 1 {
        return 0;
    }
    let bits = 64 - (n - 1).leading_zeros();
    let half = bits.div_ceil(2);
    let mask = (1u64 << half) - 1;
    let mut x = index;
    loop {
        let (mut left, mut right) = (x >> half, x & mask);
        for round in 0..4u64 {
            let f = mix(&[key, round, right]) & mask;
            let next = left ^ f;
            left = right;
            right = next;
        }
        x = (left << half) | right;
        if x < n {
            return x;
        }
    }
}

impl Sampler for GridSampler {
    fn name(&self) -> &str {
        "grid"
    }

    fn suggest(&self, ctx: &SampleContext<'_>) -> Result<Params, TuneError> {
        let size = self.grid_size(ctx.space)?;
        if ctx.number >= size {
            return Err(TuneError::Sampler {
                sampler: "grid".into(),
                message: format!(
                    "every one of the {size} grid points has been suggested; the study is done"
                ),
            });
        }
        let index = permute(ctx.number, size, mix(&[self.seed, 0x6772_6964]));
        self.point(ctx.space, index)
    }

    fn max_trials(&self, space: &SearchSpace) -> Option<u64> {
        self.grid_size(space).ok()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    fn space() -> SearchSpace {
        SearchSpace::new([
            ("lr", Distribution::log_float(1e-5, 1e-1)),
            ("conv", Distribution::int(1, 4)),
            ("relu", Distribution::categorical([true, false])),
        ])
    }

    #[test]
    fn permutation_is_a_bijection() {
        for n in [1u64, 2, 3, 7, 40, 1000] {
            let seen: HashSet<u64> = (0..n).map(|i| permute(i, n, 99)).collect();
            assert_eq!(seen.len() as u64, n);
            assert!(seen.iter().all(|&x| x < n));
        }
    }

    #[test]
    fn grid_covers_every_point_once_with_paper_levels() {
        let s = space();
        let g = GridSampler::new(3, 5);
        assert_eq!(g.grid_size(&s).unwrap(), 5 * 4 * 2);
        let mut seen = HashSet::new();
        let mut lrs = HashSet::new();
        for number in 0..40 {
            let ctx = SampleContext {
                space: &s,
                objectives: &[],
                history: &[],
                number,
            };
            let p = g.suggest(&ctx).unwrap();
            lrs.insert(format!("{:.3e}", p["lr"].as_f64().unwrap()));
            assert!(seen.insert(format!("{p:?}")), "repeated point {p:?}");
        }
        let expected: HashSet<String> =
            ["1.000e-5", "1.000e-4", "1.000e-3", "1.000e-2", "1.000e-1"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        assert_eq!(lrs, expected);
        let ctx = SampleContext {
            space: &s,
            objectives: &[],
            history: &[],
            number: 40,
        };
        assert!(g.suggest(&ctx).is_err());
        assert_eq!(g.max_trials(&s), Some(40));
    }

    #[test]
    fn different_seeds_give_different_orders() {
        let s = space();
        let order = |seed| -> Vec<String> {
            (0..10)
                .map(|number| {
                    let ctx = SampleContext {
                        space: &s,
                        objectives: &[],
                        history: &[],
                        number,
                    };
                    format!("{:?}", GridSampler::new(seed, 5).suggest(&ctx).unwrap())
                })
                .collect()
        };
        assert_eq!(order(1), order(1));
        assert_ne!(order(1), order(2));
    }
}
