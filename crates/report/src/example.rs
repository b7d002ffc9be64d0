//! An illustrative report that uses every block type, for previews, screenshots and tests.
//!
//! The numbers are made up by simple formulas shaped like the paper's results; they are not
//! measurements and say so in the report's subtitle.

use crate::model::{
    Axis, BarSet, Cell, Finding, IntervalCell, IntervalPlot, LinePlot, Report, Scatter,
    ScatterPoint, Section, Series, StackedBars, Table, Unit, Verdict,
};

/// Number of plots in [`report`] (tests check that each one renders).
pub const PLOT_COUNT: usize = 5;

/// Best-so-far accuracy after `trial` trials of a strategy that approaches `ceiling` at `rate`.
fn best_so_far(trial: f64, start: f64, ceiling: f64, rate: f64) -> f64 {
    ceiling - (ceiling - start) * (-trial / rate).exp()
}

fn strategy_series(label: &str, joules_per_trial: f64, rate: f64, spread: f64) -> Series {
    let mut points = Vec::new();
    let mut band = Vec::new();
    for trial in 1..=30 {
        let t = f64::from(trial);
        let energy = t * joules_per_trial;
        let accuracy = best_so_far(t, 0.62, 0.885, rate);
        let half_width = spread * (-t / 12.0).exp() + 0.004;
        points.push((energy, accuracy));
        band.push((accuracy - half_width, (accuracy + half_width).min(1.0)));
    }
    Series::new(label, points).with_band(band)
}

/// A report with every block type, filled with illustrative numbers.
pub fn report() -> Report {
    let strategies = [
        ("Bayesian (GP-PI)", 1450.0, 3.0),
        ("random", 1500.0, 8.0),
        ("grid", 1520.0, 11.0),
    ];
    let rq1_curves = LinePlot {
        caption: "Best-so-far test accuracy against cumulative training energy, median over \
                  5 repetitions; bands span the repetitions."
            .into(),
        x: Axis::new("Cumulative energy", Unit::Joules).log(),
        y: Axis::new("Best accuracy so far", Unit::Percent),
        series: strategies
            .iter()
            .map(|&(name, joules, rate)| strategy_series(name, joules, rate, 0.05))
            .collect(),
    };

    // Accuracy against energy of individual trials; the front is what greenlab-stats returns.
    let mut points = Vec::new();
    for (n, network) in ["SimpleCNN", "DensePolyNN", "DenseLinearNN"]
        .iter()
        .enumerate()
    {
        for k in 0..8 {
            let kf = f64::from(k);
            let energy = (1.0 + n as f64 * 0.6) * (900.0 + 420.0 * kf + 90.0 * (kf * 1.7).sin());
            let accuracy = 0.91 - 0.035 * n as f64 - 0.09 * (-energy / 1500.0).exp()
                + 0.006 * (kf * 2.3).cos();
            let point = ScatterPoint::new(energy, accuracy, *network);
            points.push(if k == 7 {
                point.with_label(format!("{network} #{k}"))
            } else {
                point
            });
        }
    }
    let mut by_energy: Vec<(f64, f64)> = points.iter().map(|p| (p.x, p.y)).collect();
    by_energy.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut front: Vec<(f64, f64)> = Vec::new();
    for (energy, accuracy) in by_energy {
        if front.last().is_none_or(|&(_, best)| accuracy > best) {
            front.push((energy, accuracy));
        }
    }
    let tradeoff = Scatter {
        caption: "Test accuracy against training energy for every trial; the dashed line is the \
                  Pareto front (more accuracy for less energy is up and to the left)."
            .into(),
        x: Axis::new("Training energy", Unit::Joules),
        y: Axis::new("Test accuracy", Unit::Percent),
        points,
        pareto_front: front,
    };

    let layer_types = [
        "conv",
        "batch-norm",
        "ReLU",
        "max-pool",
        "linear",
        "loss + optimizer",
    ];
    let breakdown = StackedBars {
        caption: "Share of measured training energy per layer type beside its share of FLOPs: \
                  convolutions cost more energy than their FLOP count suggests."
            .into(),
        categories: vec![
            "SimpleCNN (conv 4, linear 7)".into(),
            "SimpleCNN (conv 1, linear 3)".into(),
        ],
        segments: layer_types.iter().map(|s| (*s).to_owned()).collect(),
        sets: vec![
            BarSet::new(
                "energy",
                vec![
                    vec![61.0, 9.0, 4.0, 6.0, 12.0, 8.0],
                    vec![38.0, 8.0, 5.0, 6.0, 28.0, 15.0],
                ],
            ),
            BarSet::new(
                "FLOPs",
                vec![
                    vec![88.0, 2.5, 0.8, 1.2, 7.0, 0.5],
                    vec![70.0, 3.0, 1.0, 1.5, 24.0, 0.5],
                ],
            ),
        ],
        value: Axis::new("Share", Unit::Percent),
        shares: true,
    };

    let mut cells = Vec::new();
    for conv in [1, 4] {
        for linear in [3, 7] {
            for relu in ["on", "off"] {
                let mean = if conv == 4 { 38_000.0 } else { 16_000.0 }
                    + if linear == 7 { 1_400.0 } else { 0.0 }
                    + if relu == "on" { 350.0 } else { 0.0 };
                let half = mean * 0.045;
                cells.push(
                    IntervalCell::new(
                        format!("conv {conv} · linear {linear} · ReLU {relu}"),
                        mean,
                        mean - half,
                        mean + half,
                    )
                    .with_group(format!("conv {conv}")),
                );
            }
        }
    }
    let factorial = IntervalPlot {
        caption: "Training energy per factorial cell: mean and 95 % confidence interval over \
                  5 repetitions."
            .into(),
        value: Axis::new("Training energy", Unit::Joules),
        interval_label: "95 % CI".into(),
        cells,
    };

    let trace = LinePlot {
        caption: "Average power per epoch of one training run (CPU package, estimated).".into(),
        x: Axis::new("Epoch", Unit::Count),
        y: Axis::new("Average power", Unit::Watts),
        series: vec![
            Series::new(
                "package",
                (1..=10)
                    .map(|e| (f64::from(e), 31.0 + 2.5 * (f64::from(e) * 0.9).sin()))
                    .collect(),
            ),
            Series::new(
                "DRAM",
                (1..=10)
                    .map(|e| (f64::from(e), 4.2 + 0.3 * (f64::from(e) * 1.3).cos()))
                    .collect(),
            ),
        ],
    };

    let summary = Table::new([
        "run",
        "test accuracy",
        "energy",
        "source",
        "CO₂e",
        "duration",
    ])
    .with_row([
        Cell::text("RQ1 tuning (45 studies)"),
        Cell::percent(0.8853),
        Cell::joules(2_034_000.0),
        Cell::text("estimated"),
        Cell::number(226.0, Unit::GramsCo2e),
        Cell::seconds(5_420.0),
    ])
    .with_row([
        Cell::text("RQ2 factorial (40 runs)"),
        Cell::percent(0.8712),
        Cell::joules(1_088_000.0),
        Cell::text("estimated"),
        Cell::number(121.0, Unit::GramsCo2e),
        Cell::seconds(2_910.0),
    ])
    .with_caption("Energy is estimated from CPU utilisation and TDP on this machine (no RAPL).");

    let strategies_table = Table::new([
        "strategy",
        "best accuracy",
        "energy to 99 % of best",
        "vs random",
        "p (vs random)",
    ])
    .with_row([
        Cell::text("Bayesian (GP-PI)"),
        Cell::percent(0.8849),
        Cell::joules(13_050.0),
        Cell::percent(0.41),
        Cell::PValue(0.0042),
    ])
    .with_row([
        Cell::text("random"),
        Cell::percent(0.8838),
        Cell::joules(31_800.0),
        Cell::percent(1.0),
        Cell::Empty,
    ])
    .with_row([
        Cell::text("grid"),
        Cell::percent(0.8811),
        Cell::joules(42_560.0),
        Cell::percent(1.338),
        Cell::PValue(0.21),
    ]);

    let anova = Table::new(["factor", "SS (J²)", "df", "F", "p", "η²"])
        .with_row([
            Cell::text("conv"),
            Cell::plain(3.87e9),
            Cell::count(1),
            Cell::plain(2140.0),
            Cell::PValue(1e-12),
            Cell::plain(0.976),
        ])
        .with_row([
            Cell::text("linear"),
            Cell::plain(1.96e7),
            Cell::count(1),
            Cell::plain(10.8),
            Cell::PValue(0.0024),
            Cell::plain(0.005),
        ])
        .with_row([
            Cell::text("ReLU"),
            Cell::plain(1.22e6),
            Cell::count(1),
            Cell::plain(0.67),
            Cell::PValue(0.42),
            Cell::plain(0.0003),
        ])
        .with_caption("Three-way ANOVA on training energy, type III sums of squares.");

    Report::new("Reproducing “Uncovering Energy-Efficient Practices in Deep Learning Training”")
        .with_subtitle(
            "Illustrative example with made-up numbers · quick preset · Fashion-MNIST · burn engine",
        )
        .with_section(
            Section::new("Summary")
                .with(crate::Block::Paragraph(
                    "greenlab reran both research questions of Yarally et al. (CAIN 2023) and \
                     measured every training run's energy. Each finding below says whether this \
                     run reproduces the paper, with the numbers behind the verdict."
                        .into(),
                ))
                .with(summary)
                .with(crate::Block::KeyValues(vec![
                    ("preset".into(), "quick".into()),
                    ("engine".into(), "burn (flex CPU backend)".into()),
                    ("dataset".into(), "fashion-mnist, 12,000 training images".into()),
                    ("meter".into(), "estimate (TDP 65 W, 2 cores)".into()),
                    ("storage".into(), "sqlite:///runs/quick/study.db".into()),
                ]))
                .with(crate::Block::Code(
                    "greenlab replicate --preset quick --out runs/quick".into(),
                )),
        )
        .with_section(
            Section::new("RQ1: which tuning strategy reaches good accuracy for the least energy?")
                .with(Finding::new(
                    "Bayesian optimisation reaches good accuracy with less energy than random \
                     or grid search",
                    Verdict::Reproduced,
                    "Bayesian optimisation reached 99% of the best accuracy with 41% of the \
                     energy of random search (13.1 kJ vs 31.8 kJ, p = 0.004).",
                ))
                .with(rq1_curves)
                .with(strategies_table)
                .with(tradeoff),
        )
        .with_section(
            Section::new("RQ2: where does the energy go?")
                .with(Finding::new(
                    "Convolutional layers dominate training energy",
                    Verdict::Reproduced,
                    "conv explains η² = 0.976 of the variance in energy (F = 2140, p < 0.001).",
                ))
                .with(Finding::new(
                    "ReLU layers have a small but measurable energy cost",
                    Verdict::Inconclusive,
                    "η² = 0.0003, p = 0.42 with 5 repetitions per cell; more repetitions \
                     are needed to resolve an effect this small.",
                ))
                .with(Finding::new(
                    "Halving complexity halves energy with diminishing accuracy returns",
                    Verdict::NotReproduced,
                    "conv 4 → 1 cut energy by 58% but cost 3.1 pp accuracy, more than the \
                     paper's 0.9 pp.",
                ))
                .with(breakdown)
                .with(factorial)
                .with(anova),
        )
        .with_section(Section::new("Training trace").with(trace))
}
