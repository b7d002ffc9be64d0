//! Statistics over a finished factorial design, and the report sections that show them.
//!
//! Degenerate designs are never turned into p-values: each test's failure is kept as a
//! message (for instance "too few observations") and shown in place of its table.

use greenlab_meter::{EnergyBasis, Provenance};
use greenlab_report::format::energy;
use greenlab_report::{
    Axis, Block, Cell, IntervalCell, IntervalPlot, Scatter, ScatterPoint, Section, Table, Unit,
};
use greenlab_stats::{
    AnovaTable, Factor, KruskalWallis, MeanInterval, Tradeoff, TukeyHsd, aggregate_by_label, anova,
    group_by, kruskal_wallis, mean_interval, tradeoff, tukey_hsd,
};
use serde::Serialize;

use super::factorial::FactorialRun;

/// A test that ran, or the reason it could not.
pub type Outcome<T> = Result<T, String>;

/// One cell of the design: its label and its runs' means with 95 % intervals.
#[derive(Clone, Debug, Serialize)]
pub struct CellSummary {
    /// e.g. `conv=4, linear=7, relu=true`.
    pub label: String,
    /// Runs in the cell.
    pub runs: usize,
    /// Mean energy (J) with its interval, or why none.
    pub energy: Outcome<MeanInterval>,
    /// Mean accuracy with its interval, or why none.
    pub accuracy: Outcome<MeanInterval>,
}

/// Everything computed from a factorial design's runs.
#[derive(Clone, Debug, Serialize)]
pub struct FactorialAnalysis {
    /// Factor names, in design order.
    pub factors: Vec<String>,
    /// Finished runs analysed.
    pub runs: usize,
    /// What the runs' energy figures are (counter, estimated, mixed, not measured).
    pub energy_provenance: Provenance,
    /// Why the energy analyses could not run (some run's energy is not known), if so.
    pub energy_unknown: Option<String>,
    /// Type III ANOVA on energy (J), on each run's attributed figure.
    pub energy_anova: Outcome<AnovaTable>,
    /// The same ANOVA on the machine figure (what the counters say for the whole machine,
    /// neighbours included), to compare.
    pub machine_energy_anova: Outcome<AnovaTable>,
    /// Type III ANOVA on test accuracy.
    pub accuracy_anova: Outcome<AnovaTable>,
    /// Tukey HSD on energy per factor.
    pub energy_tukey: Vec<(String, Outcome<TukeyHsd>)>,
    /// Kruskal–Wallis on energy per factor.
    pub energy_kruskal: Vec<(String, Outcome<KruskalWallis>)>,
    /// Cell means.
    pub cells: Vec<CellSummary>,
    /// Accuracy against energy per cell: Pareto front and recommendation.
    pub tradeoff: Outcome<Tradeoff>,
    /// Per run: cell label, accuracy, energy (J), for scatter plots and CSV export.
    pub points: Vec<(String, f64, f64)>,
}

fn level(run: &FactorialRun, factor: &str) -> String {
    run.params
        .get(factor)
        .map(|v| v.to_string())
        .unwrap_or_default()
}

/// Analyses the runs of a design with the given factors, on each run's attributed energy.
/// When any run's energy is unknown the energy analyses are not computed (never on zeros):
/// each says why, and the accuracy analyses still run.
pub fn analyse(runs: &[FactorialRun], factors: &[String]) -> FactorialAnalysis {
    let figures = |basis| {
        crate::energy::figures(
            runs.iter()
                .map(|r| (format!("trial {}", r.trial), Some(&r.energy))),
            basis,
        )
    };
    let attributed = figures(EnergyBasis::Attributed);
    let machine = figures(EnergyBasis::Machine);
    let energy_unknown = attributed.joules.as_ref().err().cloned();
    // Placeholders keep the per-cell code below simple; every energy outcome is replaced by
    // the reason when the figures are not all known.
    let energy: Vec<f64> = attributed
        .joules
        .clone()
        .unwrap_or_else(|_| vec![f64::NAN; runs.len()]);
    let accuracy: Vec<f64> = runs.iter().map(|r| r.accuracy).collect();
    let unknown = |what: &str| -> String {
        format!(
            "{what} not computed: {}",
            energy_unknown.clone().unwrap_or_default()
        )
    };
    let stat_factors: Vec<Factor> = factors
        .iter()
        .map(|f| Factor::new(f.clone(), runs.iter().map(|r| level(r, f))))
        .collect();
    let labels: Vec<String> = runs
        .iter()
        .map(|r| {
            factors
                .iter()
                .map(|f| format!("{f}={}", level(r, f)))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect();
    let mut cells: Vec<CellSummary> = Vec::new();
    let mut order: Vec<&String> = labels.iter().collect();
    order.sort();
    order.dedup();
    for label in order {
        let idx: Vec<usize> = (0..runs.len()).filter(|&i| &labels[i] == label).collect();
        let e: Vec<f64> = idx.iter().map(|&i| energy[i]).collect();
        let a: Vec<f64> = idx.iter().map(|&i| accuracy[i]).collect();
        cells.push(CellSummary {
            label: label.clone(),
            runs: idx.len(),
            energy: match &energy_unknown {
                Some(_) => Err(unknown("mean energy")),
                None => mean_interval(label, &e, 0.95).map_err(|e| e.to_string()),
            },
            accuracy: mean_interval(label, &a, 0.95).map_err(|e| e.to_string()),
        });
    }
    let per_factor = |f: &Factor| match &energy_unknown {
        Some(_) => Err(unknown("the test")),
        None => group_by(&energy, std::slice::from_ref(f)).map_err(|e| e.to_string()),
    };
    let energy_anova = match &energy_unknown {
        Some(_) => Err(unknown("ANOVA on energy")),
        None => anova(&energy, &stat_factors).map_err(|e| e.to_string()),
    };
    let machine_energy_anova = match &machine.joules {
        Ok(j) => anova(j, &stat_factors).map_err(|e| e.to_string()),
        Err(why) => Err(format!("ANOVA on the machine figure not computed: {why}")),
    };
    let tradeoff_outcome = match &energy_unknown {
        Some(_) => Err(unknown("the trade-off")),
        None => aggregate_by_label(&labels, &accuracy, &energy)
            .and_then(|p| tradeoff(p, 1.0))
            .map_err(|e| e.to_string()),
    };
    FactorialAnalysis {
        factors: factors.to_vec(),
        runs: runs.len(),
        energy_provenance: attributed.provenance,
        energy_unknown: energy_unknown.clone(),
        energy_anova,
        machine_energy_anova,
        accuracy_anova: anova(&accuracy, &stat_factors).map_err(|e| e.to_string()),
        energy_tukey: stat_factors
            .iter()
            .map(|f| {
                (
                    f.name().to_string(),
                    per_factor(f).and_then(|g| tukey_hsd(&g, 0.05).map_err(|e| e.to_string())),
                )
            })
            .collect(),
        energy_kruskal: stat_factors
            .iter()
            .map(|f| {
                (
                    f.name().to_string(),
                    per_factor(f).and_then(|g| kruskal_wallis(&g).map_err(|e| e.to_string())),
                )
            })
            .collect(),
        cells,
        tradeoff: tradeoff_outcome,
        // Runs without a known energy have no point on an energy axis.
        points: match energy_unknown {
            Some(_) => Vec::new(),
            None => labels
                .into_iter()
                .zip(accuracy)
                .zip(energy)
                .map(|((l, a), e)| (l, a, e))
                .collect(),
        },
    }
}

fn anova_table(t: &AnovaTable, response: &str) -> Table {
    let mut table = Table::new(["term", "sum of squares", "df", "F", "p", "η²", "partial η²"])
        .with_caption(format!(
            "Type III ANOVA on {response}: {} runs in {} cells ({})",
            t.n,
            t.cells,
            if t.balanced { "balanced" } else { "unbalanced" }
        ));
    for r in &t.rows {
        table.push_row([
            Cell::text(r.term.clone()),
            Cell::plain(r.sum_sq),
            Cell::count(r.df as u64),
            Cell::plain(r.f),
            Cell::PValue(r.p),
            Cell::percent(r.eta_sq),
            Cell::percent(r.partial_eta_sq),
        ]);
    }
    table.push_row([
        Cell::text("residual"),
        Cell::plain(t.residual.sum_sq),
        Cell::count(t.residual.df as u64),
        Cell::Empty,
        Cell::Empty,
        Cell::Empty,
        Cell::Empty,
    ]);
    table
}

/// Report sections for a factorial analysis.
pub fn sections(a: &FactorialAnalysis) -> Vec<Section> {
    let source_note = crate::energy::provenance_line(a.energy_provenance);
    let mut stats = Section::new("Factorial design: what drives training energy").with(
        Block::Paragraph(format!(
            "{} finished runs over factors {}. {source_note}",
            a.runs,
            a.factors.join(" × ")
        )),
    );
    match &a.energy_anova {
        Ok(t) => stats.push(Block::Table(anova_table(t, "energy (J, attributed)"))),
        Err(e) => stats.push(Block::Paragraph(format!(
            "ANOVA on energy not computed: {e}"
        ))),
    }
    if let (Ok(t), Ok(m)) = (&a.energy_anova, &a.machine_energy_anova) {
        let eta = |t: &AnovaTable, term: &str| t.term(term).map(|r| r.eta_sq);
        let terms: Vec<String> = t
            .rows
            .iter()
            .filter(|r| !r.term.contains(':'))
            .map(|r| {
                format!(
                    "{} η² = {} attributed, {} machine",
                    r.term,
                    eta(t, &r.term).map_or("-".into(), |e| format!("{e:.3}")),
                    eta(m, &r.term).map_or("-".into(), |e| format!("{e:.3}"))
                )
            })
            .collect();
        stats.push(Block::Paragraph(format!(
            "Attributed energy counts each run's own processes; the machine figure counts \
             everything the machine did meanwhile (neighbours too): {}.",
            terms.join("; ")
        )));
    }
    match &a.accuracy_anova {
        Ok(t) => stats.push(Block::Table(anova_table(t, "test accuracy"))),
        Err(e) => stats.push(Block::Paragraph(format!(
            "ANOVA on accuracy not computed: {e}"
        ))),
    }
    let mut kw = Table::new(["factor", "H", "df", "p", "ε²"])
        .with_caption("Kruskal–Wallis on energy, per factor");
    let mut tk = Table::new([
        "factor",
        "levels",
        "mean difference",
        "95 % interval",
        "adjusted p",
        "significant",
    ])
    .with_caption("Tukey HSD on energy, per factor");
    for (f, r) in &a.energy_kruskal {
        match r {
            Ok(k) => kw.push_row([
                Cell::text(f.clone()),
                Cell::plain(k.h),
                Cell::count(k.df as u64),
                Cell::PValue(k.p),
                Cell::plain(k.epsilon_sq),
            ]),
            Err(e) => kw.push_row([
                Cell::text(f.clone()),
                Cell::text(format!("not computed: {e}")),
                Cell::Empty,
                Cell::Empty,
                Cell::Empty,
            ]),
        }
    }
    for (f, r) in &a.energy_tukey {
        match r {
            Ok(t) => {
                for p in &t.pairs {
                    tk.push_row([
                        Cell::text(f.clone()),
                        Cell::text(format!("{} − {}", p.b, p.a)),
                        Cell::joules(p.diff),
                        Cell::text(format!("[{}, {}]", energy(p.lower), energy(p.upper))),
                        Cell::PValue(p.p),
                        Cell::text(if p.reject { "yes" } else { "no" }),
                    ]);
                }
            }
            Err(e) => tk.push_row([
                Cell::text(f.clone()),
                Cell::text(format!("not computed: {e}")),
                Cell::Empty,
                Cell::Empty,
                Cell::Empty,
                Cell::Empty,
            ]),
        }
    }
    stats.push(Block::Table(kw));
    stats.push(Block::Table(tk));

    let mut cells = Section::new("Cell means");
    let intervals: Vec<IntervalCell> = a
        .cells
        .iter()
        .filter_map(|c| {
            c.energy
                .as_ref()
                .ok()
                .map(|m| IntervalCell::new(c.label.clone(), m.mean, m.lower, m.upper))
        })
        .collect();
    if let Some(why) = &a.energy_unknown {
        cells.push(Block::Paragraph(format!(
            "Energy per cell is not shown: {why}."
        )));
    } else if intervals.is_empty() {
        cells.push(Block::Paragraph(
            "No cell has two runs, so no interval can be drawn; use at least 2 repetitions.".into(),
        ));
    } else {
        cells.push(Block::IntervalPlot(IntervalPlot {
            caption: format!(
                "Mean energy per cell with 95 % t intervals ({})",
                a.energy_provenance
            ),
            value: Axis::new("energy", Unit::Joules),
            interval_label: "95 % confidence interval".into(),
            cells: intervals,
        }));
    }
    let mut means = Table::new([
        "cell",
        "runs",
        "energy",
        "energy 95 % CI",
        "accuracy",
        "accuracy 95 % CI",
    ]);
    for c in &a.cells {
        let (e, ei) = match &c.energy {
            Ok(m) => (
                Cell::joules(m.mean),
                Cell::text(format!("[{}, {}]", energy(m.lower), energy(m.upper))),
            ),
            Err(e) => (Cell::Empty, Cell::text(e.clone())),
        };
        let (ac, ai) = match &c.accuracy {
            Ok(m) => (
                Cell::percent(m.mean),
                Cell::text(format!(
                    "[{:.2} %, {:.2} %]",
                    100.0 * m.lower,
                    100.0 * m.upper
                )),
            ),
            Err(e) => (Cell::Empty, Cell::text(e.clone())),
        };
        means.push_row([
            Cell::text(c.label.clone()),
            Cell::count(c.runs as u64),
            e,
            ei,
            ac,
            ai,
        ]);
    }
    cells.push(Block::Table(means));

    let mut trade = Section::new("Accuracy against energy");
    let front: Vec<(f64, f64)> = match &a.tradeoff {
        Ok(t) => t
            .front
            .iter()
            .map(|&i| (t.points[i].energy_j, t.points[i].accuracy))
            .collect(),
        Err(_) => Vec::new(),
    };
    trade.push(Block::Scatter(Scatter {
        caption: format!(
            "Every run: test accuracy against energy ({}); line: Pareto front of cell means",
            a.energy_provenance
        ),
        x: Axis::new("energy", Unit::Joules),
        y: Axis::new("test accuracy", Unit::Percent),
        points: a
            .points
            .iter()
            .map(|(l, acc, e)| ScatterPoint::new(*e, *acc, l.clone()))
            .collect(),
        pareto_front: front,
    }));
    match &a.tradeoff {
        Ok(t) => trade.push(Block::Paragraph(t.recommendation.clone())),
        Err(e) => trade.push(Block::Paragraph(format!("No trade-off analysis: {e}"))),
    }
    vec![stats, cells, trade]
}
