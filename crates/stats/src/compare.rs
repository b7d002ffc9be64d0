//! Comparing tuning strategies by the accuracy they reach per joule (the paper's RQ1).
//!
//! Input: for each strategy, repetitions (seeds); for each repetition, its trials in the order
//! they finished, each with the cumulative energy spent so far and the accuracy it reached.
//! Output: best-so-far accuracy as a function of cumulative energy on a common grid (median and
//! a quantile band across repetitions), the energy each repetition needed to reach a target
//! accuracy, and a rank test across repetitions with a sentence stating the result.

use serde::Serialize;

use crate::describe::{median, quantile_sorted};
use crate::design::Group;
use crate::error::{Result, StatsError};
use crate::pareto::{energy, percent};
use crate::rank::{MannWhitneyMethod, kruskal_wallis, mann_whitney_u};

/// One finished trial of a repetition.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TrialPoint {
    /// Energy spent by the repetition up to and including this trial, joules.
    pub cumulative_energy_j: f64,
    /// Accuracy of this trial (a fraction); NaN for a failed or diverged trial, which spent
    /// energy but reached nothing.
    pub accuracy: f64,
}

/// All repetitions of one strategy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StrategyRuns {
    /// "grid", "random", "gp-pi", …
    pub name: String,
    /// One trial sequence per repetition (seed), in completion order.
    pub repetitions: Vec<Vec<TrialPoint>>,
}

/// Settings of [`compare_strategies`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CompareOptions {
    /// Target accuracy as a fraction of the best accuracy seen by any run (paper: 0.99).
    pub target_fraction: f64,
    /// An absolute target accuracy; when set it replaces `target_fraction` × the best.
    pub target_accuracy: Option<f64>,
    /// Points of the common energy grid (from 0 to the largest total energy of any run).
    pub grid_points: usize,
    /// Lower and upper quantiles of the band around the median curve.
    pub band: (f64, f64),
    /// Significance level used in the sentence.
    pub alpha: f64,
}

impl Default for CompareOptions {
    fn default() -> Self {
        CompareOptions {
            target_fraction: 0.99,
            target_accuracy: None,
            grid_points: 100,
            band: (0.25, 0.75),
            alpha: 0.05,
        }
    }
}

/// Best-so-far accuracy across repetitions at each grid energy.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BestSoFarBand {
    /// Median over repetitions that have finished a trial by then (None before any has).
    pub median: Vec<Option<f64>>,
    /// Lower band quantile.
    pub lower: Vec<Option<f64>>,
    /// Upper band quantile.
    pub upper: Vec<Option<f64>>,
    /// Repetitions contributing at each grid point.
    pub coverage: Vec<usize>,
}

/// Per-strategy summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StrategySummary {
    /// Strategy name.
    pub name: String,
    /// Repetitions.
    pub repetitions: usize,
    /// Best accuracy of each repetition (NaN if none succeeded).
    pub best_accuracy: Vec<f64>,
    /// Total energy of each repetition, joules.
    pub total_energy_j: Vec<f64>,
    /// Energy each repetition spent until its best-so-far reached the target (None: never).
    pub energy_to_target_j: Vec<Option<f64>>,
    /// Repetitions that reached the target.
    pub reached: usize,
    /// Median energy to target over all repetitions, counting misses as +∞ (None if the median
    /// itself is a miss).
    pub median_energy_to_target_j: Option<f64>,
    /// Best-so-far curve on the common grid.
    pub curve: BestSoFarBand,
}

/// Which rank test was run across repetitions.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "test", rename_all = "snake_case")]
pub enum SignificanceTest {
    /// Two strategies: Mann–Whitney U on energy to target.
    MannWhitney {
        /// U of the first strategy.
        u: f64,
        /// Two-sided p-value.
        p: f64,
    },
    /// More strategies: Kruskal–Wallis H on energy to target.
    KruskalWallis {
        /// H (tie-corrected).
        h: f64,
        /// Degrees of freedom.
        df: usize,
        /// p-value.
        p: f64,
    },
}

/// Result of [`compare_strategies`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StrategyComparison {
    /// Best accuracy seen by any trial of any strategy.
    pub best_accuracy: f64,
    /// `target_fraction × best_accuracy`.
    pub target_accuracy: f64,
    /// Common energy grid, joules.
    pub energy_grid_j: Vec<f64>,
    /// One summary per strategy, in input order.
    pub strategies: Vec<StrategySummary>,
    /// The rank test on energy to target (misses ranked last), if every strategy has at least
    /// two repetitions.
    pub test: Option<SignificanceTest>,
    /// A sentence with the numbers.
    pub statement: String,
    /// Options used.
    pub options: CompareOptions,
}

/// Best-so-far accuracy of one repetition after spending `e` joules (None before its first
/// successful trial). Beyond its last trial a repetition keeps its final best (budget spent).
fn best_so_far_at(trials: &[TrialPoint], e: f64) -> Option<f64> {
    let mut best: Option<f64> = None;
    for t in trials {
        if t.cumulative_energy_j > e {
            break;
        }
        if !t.accuracy.is_nan() {
            best = Some(best.map_or(t.accuracy, |b: f64| b.max(t.accuracy)));
        }
    }
    best
}

fn energy_to_target(trials: &[TrialPoint], target: f64) -> Option<f64> {
    trials
        .iter()
        .find(|t| !t.accuracy.is_nan() && t.accuracy >= target)
        .map(|t| t.cumulative_energy_j)
}

fn validate(strategies: &[StrategyRuns], opts: &CompareOptions) -> Result<()> {
    if strategies.is_empty() {
        return Err(StatsError::TooFewObservations {
            what: "a strategy comparison (strategies)",
            needed: 1,
            got: 0,
        });
    }
    if let Some(t) = opts.target_accuracy
        && !t.is_finite()
    {
        return Err(StatsError::InvalidArgument(format!(
            "target accuracy {t} must be a finite number"
        )));
    }
    if !(opts.target_fraction > 0.0 && opts.target_fraction <= 1.0) {
        return Err(StatsError::InvalidArgument(format!(
            "target fraction {} must lie in (0, 1], e.g. 0.99",
            opts.target_fraction
        )));
    }
    if opts.grid_points < 2 {
        return Err(StatsError::InvalidArgument(
            "the energy grid needs at least 2 points".into(),
        ));
    }
    let (lo, hi) = opts.band;
    if !(0.0..=1.0).contains(&lo) || !(0.0..=1.0).contains(&hi) || lo > hi {
        return Err(StatsError::InvalidArgument(format!(
            "band quantiles ({lo}, {hi}) must satisfy 0 ≤ lower ≤ upper ≤ 1"
        )));
    }
    for s in strategies {
        if s.repetitions.is_empty() {
            return Err(StatsError::TooFewObservations {
                what: "a strategy (repetitions)",
                needed: 1,
                got: 0,
            });
        }
        for (r, rep) in s.repetitions.iter().enumerate() {
            let mut last = 0.0;
            for (i, t) in rep.iter().enumerate() {
                let e = t.cumulative_energy_j;
                if !e.is_finite() || e < last {
                    return Err(StatsError::InvalidArgument(format!(
                        "strategy `{}`, repetition {r}, trial {i}: cumulative energy {e} J must \
                         be finite and never decrease",
                        s.name
                    )));
                }
                if t.accuracy.is_infinite() {
                    return Err(StatsError::NonFinite {
                        what: format!("strategy `{}`, repetition {r} accuracy", s.name),
                        index: i,
                        value: t.accuracy,
                    });
                }
                last = e;
            }
        }
    }
    Ok(())
}

/// Compares strategies by best-so-far accuracy against cumulative energy and by the energy each
/// repetition needed to reach `target_fraction` of the best accuracy seen overall.
///
/// The significance test ranks energy to target across repetitions, a repetition that never
/// reached the target ranking after every one that did (it spent its whole budget without
/// getting there): Mann–Whitney U for two strategies, Kruskal–Wallis for more.
///
/// # Errors
/// No strategies or repetitions, decreasing cumulative energy, no successful trial at all, or
/// invalid options.
pub fn compare_strategies(
    strategies: &[StrategyRuns],
    opts: CompareOptions,
) -> Result<StrategyComparison> {
    validate(strategies, &opts)?;
    let all_trials = || {
        strategies
            .iter()
            .flat_map(|s| s.repetitions.iter().flatten())
    };
    let best_accuracy = all_trials()
        .map(|t| t.accuracy)
        .filter(|a| !a.is_nan())
        .fold(f64::NEG_INFINITY, f64::max);
    if !best_accuracy.is_finite() {
        return Err(StatsError::TooFewObservations {
            what: "a strategy comparison (successful trials)",
            needed: 1,
            got: 0,
        });
    }
    let target = opts
        .target_accuracy
        .unwrap_or(opts.target_fraction * best_accuracy);
    let max_energy = all_trials()
        .map(|t| t.cumulative_energy_j)
        .fold(0.0, f64::max);
    let grid: Vec<f64> = (0..opts.grid_points)
        .map(|i| max_energy * i as f64 / (opts.grid_points - 1) as f64)
        .collect();

    let summaries: Vec<StrategySummary> = strategies
        .iter()
        .map(|s| summarise(s, &grid, target, &opts))
        .collect();

    // Misses rank last: +∞ ties with other misses.
    let samples: Vec<Vec<f64>> = summaries
        .iter()
        .map(|s| {
            s.energy_to_target_j
                .iter()
                .map(|e| e.unwrap_or(f64::INFINITY))
                .collect()
        })
        .collect();
    let enough = summaries.len() >= 2 && samples.iter().all(|s| s.len() >= 2);
    let all_missed = samples.iter().flatten().all(|e| e.is_infinite());
    let test = if enough && !all_missed {
        if summaries.len() == 2 {
            let r = mann_whitney_u(&samples[0], &samples[1], MannWhitneyMethod::Auto)?;
            Some(SignificanceTest::MannWhitney { u: r.u, p: r.p })
        } else {
            let groups: Vec<Group> = summaries
                .iter()
                .zip(&samples)
                .map(|(s, v)| Group::new(s.name.clone(), v.clone()))
                .collect();
            match kruskal_wallis(&groups) {
                Ok(k) => Some(SignificanceTest::KruskalWallis {
                    h: k.h,
                    df: k.df,
                    p: k.p,
                }),
                Err(StatsError::ZeroVariance(_)) => None,
                Err(e) => return Err(e),
            }
        }
    } else {
        None
    };
    let statement = statement(&summaries, best_accuracy, test.as_ref(), &opts);
    Ok(StrategyComparison {
        best_accuracy,
        target_accuracy: target,
        energy_grid_j: grid,
        strategies: summaries,
        test,
        statement,
        options: opts,
    })
}

fn summarise(
    s: &StrategyRuns,
    grid: &[f64],
    target: f64,
    opts: &CompareOptions,
) -> StrategySummary {
    let reps = &s.repetitions;
    let best_accuracy = reps
        .iter()
        .map(|r| {
            r.iter()
                .map(|t| t.accuracy)
                .filter(|a| !a.is_nan())
                .fold(f64::NAN, f64::max)
        })
        .collect();
    let total_energy_j = reps
        .iter()
        .map(|r| r.last().map_or(0.0, |t| t.cumulative_energy_j))
        .collect();
    let energy_to_target_j: Vec<Option<f64>> =
        reps.iter().map(|r| energy_to_target(r, target)).collect();
    let reached = energy_to_target_j.iter().filter(|e| e.is_some()).count();
    let med = median(
        &energy_to_target_j
            .iter()
            .map(|e| e.unwrap_or(f64::INFINITY))
            .collect::<Vec<_>>(),
    );
    let mut curve = BestSoFarBand {
        median: Vec::with_capacity(grid.len()),
        lower: Vec::with_capacity(grid.len()),
        upper: Vec::with_capacity(grid.len()),
        coverage: Vec::with_capacity(grid.len()),
    };
    for &e in grid {
        let mut v: Vec<f64> = reps.iter().filter_map(|r| best_so_far_at(r, e)).collect();
        v.sort_by(f64::total_cmp);
        let some = |x: f64| if v.is_empty() { None } else { Some(x) };
        curve.median.push(some(quantile_sorted(&v, 0.5)));
        curve.lower.push(some(quantile_sorted(&v, opts.band.0)));
        curve.upper.push(some(quantile_sorted(&v, opts.band.1)));
        curve.coverage.push(v.len());
    }
    StrategySummary {
        name: s.name.clone(),
        repetitions: reps.len(),
        best_accuracy,
        total_energy_j,
        energy_to_target_j,
        reached,
        median_energy_to_target_j: med.is_finite().then_some(med),
        curve,
    }
}

fn format_p(p: f64) -> String {
    if p < 0.001 {
        format!("{p:.1e}")
    } else {
        format!("{p:.3}")
    }
}

fn statement(
    summaries: &[StrategySummary],
    best: f64,
    test: Option<&SignificanceTest>,
    opts: &CompareOptions,
) -> String {
    let target_txt = match opts.target_accuracy {
        Some(t) => format!("{} accuracy", percent(t)),
        None => format!(
            "{:.0} % of the best accuracy ({})",
            100.0 * opts.target_fraction,
            percent(best)
        ),
    };
    // Rank strategies by median energy to target (misses last).
    let mut order: Vec<&StrategySummary> = summaries.iter().collect();
    order.sort_by(|a, b| {
        let ea = a.median_energy_to_target_j.unwrap_or(f64::INFINITY);
        let eb = b.median_energy_to_target_j.unwrap_or(f64::INFINITY);
        ea.total_cmp(&eb).then(b.reached.cmp(&a.reached))
    });
    let first = order[0];
    let Some(e_first) = first.median_energy_to_target_j else {
        return format!(
            "no strategy reached {target_txt} in most of its repetitions; raise the budget or \
             lower the target"
        );
    };
    let mut s = format!(
        "`{}` reached {target_txt} with a median of {} ({}/{} repetitions reached it)",
        first.name,
        energy(e_first),
        first.reached,
        first.repetitions
    );
    if let Some(second) = order.get(1) {
        match second.median_energy_to_target_j {
            Some(e2) if e2 > 0.0 => {
                s += &format!(
                    ", {:.0} % of the energy of `{}` ({}, {}/{})",
                    100.0 * e_first / e2,
                    second.name,
                    energy(e2),
                    second.reached,
                    second.repetitions
                )
            }
            _ => {
                s += &format!(
                    "; `{}` did not reach it in most repetitions ({}/{})",
                    second.name, second.reached, second.repetitions
                )
            }
        }
    }
    match test {
        Some(SignificanceTest::MannWhitney { u, p }) => {
            let verdict = if *p < opts.alpha {
                "significant"
            } else {
                "not significant"
            };
            s += &format!(
                " (Mann–Whitney U = {u:.1}, p = {}, {verdict} at α = {})",
                format_p(*p),
                opts.alpha
            );
        }
        Some(SignificanceTest::KruskalWallis { h, df, p }) => {
            let verdict = if *p < opts.alpha {
                "significant"
            } else {
                "not significant"
            };
            s += &format!(
                " (Kruskal–Wallis H = {h:.2}, df = {df}, p = {} across all {} strategies, \
                 {verdict} at α = {})",
                format_p(*p),
                summaries.len(),
                opts.alpha
            );
        }
        None => s += " (too few repetitions or reaching runs for a significance test)",
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rep(points: &[(f64, f64)]) -> Vec<TrialPoint> {
        points
            .iter()
            .map(|&(e, a)| TrialPoint {
                cumulative_energy_j: e,
                accuracy: a,
            })
            .collect()
    }

    fn strategies() -> Vec<StrategyRuns> {
        let fast: Vec<Vec<TrialPoint>> = (0..5)
            .map(|i| {
                let s = i as f64;
                rep(&[(100.0 + s, 0.70), (200.0 + s, 0.89), (300.0 + s, 0.90)])
            })
            .collect();
        let slow: Vec<Vec<TrialPoint>> = (0..5)
            .map(|i| {
                let s = i as f64;
                rep(&[
                    (100.0 + s, 0.60),
                    (200.0 + s, f64::NAN),
                    (350.0 + s, 0.80),
                    (600.0 + s, 0.895),
                ])
            })
            .collect();
        vec![
            StrategyRuns {
                name: "bayes".into(),
                repetitions: fast,
            },
            StrategyRuns {
                name: "random".into(),
                repetitions: slow,
            },
        ]
    }

    #[test]
    fn energy_to_target_and_curves() {
        let c = compare_strategies(&strategies(), CompareOptions::default()).unwrap();
        assert_eq!(c.best_accuracy, 0.90);
        assert!((c.target_accuracy - 0.891).abs() < 1e-12);
        let bayes = &c.strategies[0];
        assert_eq!(bayes.energy_to_target_j[2], Some(302.0));
        assert_eq!(bayes.reached, 5);
        assert_eq!(bayes.median_energy_to_target_j, Some(302.0));
        let random = &c.strategies[1];
        assert_eq!(random.energy_to_target_j[0], Some(600.0));
        // Grid runs from 0 to the largest energy; nothing finished at 0 J.
        assert_eq!(c.energy_grid_j[0], 0.0);
        assert_eq!(*c.energy_grid_j.last().unwrap(), 604.0);
        assert_eq!(bayes.curve.median[0], None);
        assert_eq!(bayes.curve.median.last().copied().flatten(), Some(0.90));
        assert_eq!(random.curve.coverage.last(), Some(&5));
        // Completely separated samples of 5 vs 5: exact two-sided p = 2/252.
        match c.test {
            Some(SignificanceTest::MannWhitney { u, p }) => {
                assert_eq!(u, 0.0);
                assert!((p - 2.0 / 252.0).abs() < 1e-12);
            }
            ref other => panic!("unexpected test {other:?}"),
        }
        assert!(
            c.statement
                .starts_with("`bayes` reached 99 % of the best accuracy (90.0 %)")
        );
        assert!(
            c.statement.contains("50 % of the energy of `random`"),
            "{}",
            c.statement
        );
        assert!(c.statement.contains("significant at"));
    }

    #[test]
    fn an_absolute_target_replaces_the_fraction_of_the_best() {
        let opts = CompareOptions {
            target_accuracy: Some(0.8),
            ..CompareOptions::default()
        };
        let c = compare_strategies(&strategies(), opts).unwrap();
        assert_eq!(c.target_accuracy, 0.8);
        // bayes first reaches 0.8 at its second trial, random at its third.
        assert_eq!(c.strategies[0].energy_to_target_j[0], Some(200.0));
        assert_eq!(c.strategies[1].energy_to_target_j[0], Some(350.0));
        assert!(
            c.statement.contains("reached 80.0 % accuracy"),
            "{}",
            c.statement
        );
        let bad = CompareOptions {
            target_accuracy: Some(f64::NAN),
            ..CompareOptions::default()
        };
        assert!(compare_strategies(&strategies(), bad).is_err());
    }

    #[test]
    fn three_strategies_use_kruskal_wallis_and_rank_misses_last() {
        let mut s = strategies();
        // A third strategy that never reaches the target: its misses rank after everything.
        let never: Vec<Vec<TrialPoint>> = (0..5)
            .map(|i| rep(&[(50.0 + i as f64, 0.5), (700.0, 0.6)]))
            .collect();
        s.push(StrategyRuns {
            name: "grid".into(),
            repetitions: never,
        });
        let c = compare_strategies(&s, CompareOptions::default()).unwrap();
        assert_eq!(c.strategies[2].reached, 0);
        assert_eq!(c.strategies[2].median_energy_to_target_j, None);
        match c.test {
            Some(SignificanceTest::KruskalWallis { h, df, p }) => {
                // Three perfectly separated groups of 5 (ties only among the misses).
                assert_eq!(df, 2);
                assert!(h > 12.0 && p < 0.01, "h={h} p={p}");
            }
            ref other => panic!("unexpected test {other:?}"),
        }
        assert!(c.statement.contains("Kruskal–Wallis"), "{}", c.statement);
    }

    #[test]
    fn decreasing_energy_is_an_error() {
        let s = vec![StrategyRuns {
            name: "x".into(),
            repetitions: vec![rep(&[(10.0, 0.5), (5.0, 0.6)])],
        }];
        assert!(compare_strategies(&s, CompareOptions::default()).is_err());
    }

    #[test]
    fn single_repetitions_give_no_test() {
        let mut s = strategies();
        for st in &mut s {
            st.repetitions.truncate(1);
        }
        let c = compare_strategies(&s, CompareOptions::default()).unwrap();
        assert!(c.test.is_none());
        assert!(c.statement.contains("too few repetitions"));
    }
}
