//! Statistics for energy experiments: the numbers behind greenlab's claims.
//!
//! Pure functions over samples, with no I/O beyond an optional CSV reader and no dependency on
//! the rest of greenlab: type III n-way ANOVA for factorial designs ([`anova()`]), Tukey HSD
//! ([`tukey_hsd`], also on interaction cells via [`group_by`]), Kruskal–Wallis
//! ([`kruskal_wallis`]) and Mann–Whitney U ([`mann_whitney_u`]), means with t intervals and
//! seeded bootstrap intervals ([`describe`]), Pareto fronts of accuracy against energy with a
//! recommendation in words ([`tradeoff()`]), and the comparison of tuning strategies by energy
//! to a target accuracy ([`compare_strategies`]). Distributions come from `statrs`, except
//! Tukey's studentized range, integrated numerically in [`srange`].
//!
//! It does not run experiments, store results or draw plots, and it never turns a degenerate
//! design (an empty cell, a single level, no residual degrees of freedom, no variance) into a
//! p-value: those are [`StatsError`]s.
//!
//! ```
//! use greenlab_stats::{Factor, anova, group_by, tukey_hsd};
//! let energy_kj = [20.1, 19.5, 21.0, 60.2, 61.0, 59.1, 21.5, 20.7, 22.0, 63.0, 62.1, 61.7];
//! let conv = Factor::new("conv", [1, 1, 1, 4, 4, 4, 1, 1, 1, 4, 4, 4]);
//! let relu = Factor::new("relu", ["off", "off", "off", "off", "off", "off",
//!                                 "on", "on", "on", "on", "on", "on"]);
//! let table = anova(&energy_kj, &[conv.clone(), relu]).unwrap();
//! assert!(table.term("conv").unwrap().eta_sq > 0.95);
//! let hsd = tukey_hsd(&group_by(&energy_kj, &[conv]).unwrap(), 0.05).unwrap();
//! assert!(hsd.pairs[0].reject);
//! ```

pub mod anova;
pub mod compare;
pub mod describe;
pub mod design;
pub mod error;
pub mod format;
pub mod pareto;
pub mod rank;
pub mod srange;
pub mod table;
pub mod tukey;

pub use anova::{AnovaRow, AnovaTable, EtaSquared, ResidualRow, anova};
pub use compare::{
    BestSoFarBand, CompareOptions, SignificanceTest, StrategyComparison, StrategyRuns,
    StrategySummary, TrialPoint, compare_strategies,
};
pub use describe::{
    BootstrapInterval, MeanInterval, bootstrap_interval, bootstrap_median_interval, cell_means,
    mean_interval,
};
pub use design::{Factor, Group, group_by};
pub use error::{Result, StatsError};
pub use pareto::{
    Direction, FrontStep, Tradeoff, TradeoffPoint, aggregate_by_label, pareto_front, tradeoff,
};
pub use rank::{KruskalWallis, MannWhitney, MannWhitneyMethod, kruskal_wallis, mann_whitney_u};
pub use srange::{studentized_range_cdf_sf, studentized_range_quantile, studentized_range_sf};
pub use table::{Column, Table};
pub use tukey::{TukeyHsd, TukeyPair, tukey_hsd, tukey_hsd_with_error};
