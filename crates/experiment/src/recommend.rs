//! Which tuning strategy reaches a target accuracy for the least energy: greenlab's
//! energy-aware strategies against the paper's three, with intervals over repetitions and a
//! test against the paper's Bayesian optimisation.
//!
//! Input: one network's [`StrategyComparison`] (target accuracy, energy to target per
//! repetition) and the runs it came from. For every strategy:
//! - **energy to target**: the median over repetitions of the energy spent until the best
//!   accuracy so far reached the target, a repetition that never reached it counting as +∞
//!   (so a median of +∞ means "not reached in most repetitions"), with a seeded percentile
//!   bootstrap interval;
//! - **accuracy at equal energy**: each repetition's best accuracy after the smallest median
//!   total energy of any strategy (so no strategy is credited with energy it did not spend);
//! - against the paper's Bayesian strategy: a two-sided Mann–Whitney U test on each.
//!
//! The recommendation picks the strategy with the lowest median energy to target among those
//! that reached it in most repetitions, and says whether its lead over the paper's Bayesian
//! optimisation is significant.

use greenlab_report::format::energy;
use greenlab_report::{Cell, Table};
use greenlab_stats::describe::median;
use greenlab_stats::{
    MannWhitneyMethod, StrategyComparison, StrategyRuns, TrialPoint, bootstrap_median_interval,
    mann_whitney_u,
};
use serde::Serialize;

use crate::procedure::BAYESIAN;

/// Resamples of the bootstrap intervals.
const RESAMPLES: usize = 2000;
/// Seed of the bootstrap intervals (same data, same interval).
const SEED: u64 = 20230515;

/// A median with its 95 % bootstrap interval; bounds may be infinite (not reached).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MedianInterval {
    /// Median over repetitions.
    pub median: f64,
    /// Lower bound.
    pub lower: f64,
    /// Upper bound.
    pub upper: f64,
}

/// A test of one strategy against the paper's Bayesian optimisation.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VersusBayesian {
    /// Two-sided Mann–Whitney p-value.
    pub p: f64,
    /// Rank-biserial correlation (positive: this strategy's values tend to be larger).
    pub rank_biserial: f64,
}

/// One strategy's figures on one network.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StrategyOutcome {
    /// Label (`bayesian`, `cost-aware GP`, ...).
    pub label: String,
    /// One of the paper's three.
    pub paper: bool,
    /// Repetitions (sequences) compared.
    pub repetitions: usize,
    /// Repetitions that reached the target.
    pub reached: usize,
    /// Energy to target, joules (+∞: not reached); `None` with fewer than two repetitions.
    pub energy_to_target_j: Option<MedianInterval>,
    /// Median energy to target without an interval (+∞: not reached in most repetitions).
    pub median_energy_to_target_j: f64,
    /// Best accuracy after the common budget; `None` with fewer than two repetitions.
    pub accuracy_at_budget: Option<MedianInterval>,
    /// Median best accuracy after the common budget (−∞: no finished trial by then).
    pub median_accuracy_at_budget: f64,
    /// Median total energy of the whole search, joules.
    pub median_total_energy_j: f64,
    /// Energy to target against the paper's Bayesian strategy (none for itself).
    pub energy_vs_bayesian: Option<VersusBayesian>,
    /// Accuracy at the budget against the paper's Bayesian strategy.
    pub accuracy_vs_bayesian: Option<VersusBayesian>,
}

/// The answer for one network.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Recommendation {
    /// Network label.
    pub network: String,
    /// The target accuracy (a fraction).
    pub target_accuracy: f64,
    /// How the target was chosen, in words.
    pub target_rule: String,
    /// The common budget for accuracy at equal energy, joules.
    pub budget_j: f64,
    /// Every strategy, in input order.
    pub strategies: Vec<StrategyOutcome>,
    /// The recommended strategy's label, if any reached the target in most repetitions.
    pub choice: Option<String>,
    /// The answer in one or two plain sentences.
    pub sentence: String,
}

fn interval(values: &[f64]) -> Option<MedianInterval> {
    let b = bootstrap_median_interval(values, RESAMPLES, 0.95, SEED).ok()?;
    Some(MedianInterval {
        median: b.estimate,
        lower: b.lower,
        upper: b.upper,
    })
}

fn best_at(seq: &[TrialPoint], budget: f64) -> f64 {
    seq.iter()
        .take_while(|t| t.cumulative_energy_j <= budget)
        .map(|t| t.accuracy)
        .filter(|a| !a.is_nan())
        .fold(f64::NEG_INFINITY, f64::max)
}

fn versus(x: &[f64], y: &[f64]) -> Option<VersusBayesian> {
    if x.len() < 2 || y.len() < 2 {
        return None;
    }
    let r = mann_whitney_u(x, y, MannWhitneyMethod::Auto).ok()?;
    Some(VersusBayesian {
        p: r.p,
        rank_biserial: r.rank_biserial,
    })
}

/// Formats an energy that may be infinite (not reached).
pub fn energy_or_not_reached(j: f64) -> String {
    if j.is_finite() {
        energy(j)
    } else {
        "not reached".into()
    }
}

/// Analyses one network's strategies; `paper` says which labels are the paper's, `source` is the
/// energy's provenance in words (`estimated`, `counter`, ...), `target_rule` how the
/// comparison's target was chosen.
pub fn recommend(
    network: &str,
    comparison: &StrategyComparison,
    runs: &[StrategyRuns],
    paper: &dyn Fn(&str) -> bool,
    source: &str,
    target_rule: &str,
) -> Recommendation {
    let budget = comparison
        .strategies
        .iter()
        .map(|s| median(&s.total_energy_j))
        .fold(f64::INFINITY, f64::min);
    let energy_samples: Vec<Vec<f64>> = comparison
        .strategies
        .iter()
        .map(|s| {
            s.energy_to_target_j
                .iter()
                .map(|e| e.unwrap_or(f64::INFINITY))
                .collect()
        })
        .collect();
    let accuracy_samples: Vec<Vec<f64>> = comparison
        .strategies
        .iter()
        .map(|s| {
            runs.iter()
                .find(|r| r.name == s.name)
                .map(|r| r.repetitions.iter().map(|q| best_at(q, budget)).collect())
                .unwrap_or_default()
        })
        .collect();
    let bayes = comparison
        .strategies
        .iter()
        .position(|s| s.name == BAYESIAN);
    let strategies: Vec<StrategyOutcome> = comparison
        .strategies
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let against = |samples: &[Vec<f64>]| {
                bayes
                    .filter(|&b| b != i)
                    .and_then(|b| versus(&samples[i], &samples[b]))
            };
            StrategyOutcome {
                label: s.name.clone(),
                paper: paper(&s.name),
                repetitions: s.repetitions,
                reached: s.reached,
                energy_to_target_j: interval(&energy_samples[i]),
                median_energy_to_target_j: median(&energy_samples[i]),
                accuracy_at_budget: interval(&accuracy_samples[i]),
                median_accuracy_at_budget: if accuracy_samples[i].is_empty() {
                    f64::NEG_INFINITY
                } else {
                    median(&accuracy_samples[i])
                },
                median_total_energy_j: median(&s.total_energy_j),
                energy_vs_bayesian: against(&energy_samples),
                accuracy_vs_bayesian: against(&accuracy_samples),
            }
        })
        .collect();
    let choice = strategies
        .iter()
        .filter(|s| s.median_energy_to_target_j.is_finite())
        .min_by(|a, b| {
            a.median_energy_to_target_j
                .total_cmp(&b.median_energy_to_target_j)
                .then(b.reached.cmp(&a.reached))
        });
    let target = format!("{:.1} %", 100.0 * comparison.target_accuracy);
    let sentence = match choice {
        None => format!(
            "On {network}, no strategy reached {target} test accuracy in most of its repetitions; \
             give the search more trials or aim lower."
        ),
        Some(c) => {
            let ci = c
                .energy_to_target_j
                .as_ref()
                .map(|i| {
                    format!(
                        " [95 % CI {}, {}]",
                        energy_or_not_reached(i.lower),
                        energy_or_not_reached(i.upper)
                    )
                })
                .unwrap_or_default();
            let mut s = format!(
                "To reach {target} test accuracy on {network} for the least energy, use {}: median {}{ci} of {source} energy, reached in {} of {} repetitions",
                c.label,
                energy(c.median_energy_to_target_j),
                c.reached,
                c.repetitions
            );
            match bayes.map(|b| &strategies[b]) {
                Some(b) if b.label == c.label => {
                    s += " — the paper's own Bayesian optimisation is the best here.";
                }
                Some(b) => {
                    let test = c.energy_vs_bayesian.as_ref().map_or_else(
                        || "too few repetitions for a test".to_string(),
                        |v| {
                            format!(
                                "Mann–Whitney p = {:.3}{}",
                                v.p,
                                if v.p < 0.05 {
                                    ""
                                } else {
                                    ", not significant at these repetitions"
                                }
                            )
                        },
                    );
                    if b.median_energy_to_target_j.is_finite() {
                        s += &format!(
                            "; the paper's Bayesian optimisation needed {} ({:.0} % more; {test}).",
                            energy(b.median_energy_to_target_j),
                            100.0
                                * (b.median_energy_to_target_j / c.median_energy_to_target_j - 1.0)
                        );
                    } else {
                        s += &format!(
                            "; the paper's Bayesian optimisation did not reach it in most repetitions ({} of {}; {test}).",
                            b.reached, b.repetitions
                        );
                    }
                }
                None => s += ".",
            }
            s
        }
    };
    Recommendation {
        network: network.into(),
        target_accuracy: comparison.target_accuracy,
        target_rule: target_rule.into(),
        budget_j: budget,
        choice: choice.map(|c| c.label.clone()),
        strategies,
        sentence,
    }
}

fn percent_or_none(a: f64) -> String {
    if a.is_finite() {
        format!("{:.1} %", 100.0 * a)
    } else {
        "none yet".into()
    }
}

/// A table of every strategy's figures with intervals and tests against the paper's Bayesian
/// optimisation.
pub fn table(r: &Recommendation) -> Table {
    let mut t = Table::new([
        "strategy",
        "reached target",
        "energy to target: median [95 % CI]",
        "vs bayesian (p)",
        "best accuracy at equal energy: median [95 % CI]",
        "vs bayesian (p)",
        "total energy (median)",
    ])
    .with_caption(format!(
        "Target {:.2} % test accuracy ({}); equal energy = {} (the smallest median total of any strategy); intervals: percentile bootstrap over repetitions; tests: two-sided Mann–Whitney U against the paper's Bayesian optimisation; energy-aware strategies marked *",
        100.0 * r.target_accuracy,
        r.target_rule,
        energy(r.budget_j)
    ));
    let p = |v: &Option<VersusBayesian>| match v {
        Some(v) => Cell::PValue(v.p),
        None => Cell::Empty,
    };
    for s in &r.strategies {
        let energy_cell = match &s.energy_to_target_j {
            Some(i) => format!(
                "{} [{}, {}]",
                energy_or_not_reached(i.median),
                energy_or_not_reached(i.lower),
                energy_or_not_reached(i.upper)
            ),
            None => energy_or_not_reached(s.median_energy_to_target_j),
        };
        let accuracy_cell = match &s.accuracy_at_budget {
            Some(i) => format!(
                "{} [{}, {}]",
                percent_or_none(i.median),
                percent_or_none(i.lower),
                percent_or_none(i.upper)
            ),
            None => percent_or_none(s.median_accuracy_at_budget),
        };
        t.push_row([
            Cell::text(if s.paper {
                s.label.clone()
            } else {
                format!("{} *", s.label)
            }),
            Cell::text(format!("{} of {}", s.reached, s.repetitions)),
            Cell::text(energy_cell),
            p(&s.energy_vs_bayesian),
            Cell::text(accuracy_cell),
            p(&s.accuracy_vs_bayesian),
            Cell::joules(s.median_total_energy_j),
        ]);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use greenlab_stats::{CompareOptions, compare_strategies};

    fn seq(points: &[(f64, f64)]) -> Vec<TrialPoint> {
        points
            .iter()
            .map(|&(e, a)| TrialPoint {
                cumulative_energy_j: e,
                accuracy: a,
            })
            .collect()
    }

    #[test]
    fn the_cheapest_strategy_to_the_target_is_recommended_with_an_interval() {
        // The target is 99 % of the best (0.90): 0.891. "pruned" gets there with 10–14 J,
        // "bayesian" with 40–60 J, "grid" never.
        let runs = vec![
            StrategyRuns {
                name: BAYESIAN.into(),
                repetitions: vec![
                    seq(&[(10.0, 0.5), (40.0, 0.895), (80.0, 0.9)]),
                    seq(&[(12.0, 0.6), (50.0, 0.892), (85.0, 0.89)]),
                    seq(&[(15.0, 0.7), (60.0, 0.9), (90.0, 0.8)]),
                ],
            },
            StrategyRuns {
                name: "pruned".into(),
                repetitions: vec![
                    seq(&[(5.0, 0.4), (10.0, 0.893), (20.0, 0.88)]),
                    seq(&[(6.0, 0.3), (12.0, 0.894), (22.0, 0.8)]),
                    seq(&[(7.0, 0.2), (14.0, 0.899), (24.0, 0.85)]),
                ],
            },
            StrategyRuns {
                name: "grid".into(),
                repetitions: vec![
                    seq(&[(30.0, 0.2), (60.0, 0.3)]),
                    seq(&[(30.0, 0.25), (60.0, 0.35)]),
                    seq(&[(30.0, 0.1), (60.0, 0.2)]),
                ],
            },
        ];
        let c = compare_strategies(&runs, CompareOptions::default()).unwrap();
        let r = recommend(
            "SimpleCNN",
            &c,
            &runs,
            &|n| n != "pruned",
            "estimated",
            "99 % of the best",
        );
        assert_eq!(r.choice.as_deref(), Some("pruned"));
        let pruned = &r.strategies[1];
        assert_eq!(pruned.median_energy_to_target_j, 12.0);
        let ci = pruned.energy_to_target_j.as_ref().unwrap();
        assert!(ci.lower >= 10.0 && ci.upper <= 14.0, "{ci:?}");
        // Grid never reached it: +∞, and the interval says so.
        assert!(r.strategies[2].median_energy_to_target_j.is_infinite());
        // Budget: the smallest median total energy (pruned: 22 J); there bayesian has
        // finished one trial per repetition (0.5, 0.6, 0.7 → 0.6), pruned its best.
        assert_eq!(r.budget_j, 22.0);
        assert_eq!(r.strategies[0].median_accuracy_at_budget, 0.6);
        assert_eq!(pruned.median_accuracy_at_budget, 0.894);
        // Against bayesian: every pruned repetition needed less energy (exact p for 3 vs 3).
        let v = pruned.energy_vs_bayesian.as_ref().unwrap();
        assert!((v.p - 0.1).abs() < 1e-9, "{v:?}");
        assert!(r.strategies[0].energy_vs_bayesian.is_none());
        assert!(r.sentence.contains("use pruned") && r.sentence.contains("not significant"));
        assert!(r.sentence.contains("estimated"));
    }
}
