//! Plain-text rendering of results as aligned tables, for terminals and Markdown-free reports.

use crate::anova::AnovaTable;
use crate::compare::StrategyComparison;
use crate::describe::MeanInterval;
use crate::pareto::{Tradeoff, energy, percent};
use crate::rank::KruskalWallis;
use crate::tukey::TukeyHsd;

/// Column alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    /// Text columns.
    Left,
    /// Number columns.
    Right,
}

/// A table rendered with columns padded to their widest cell.
#[derive(Debug, Clone, PartialEq)]
pub struct TextTable {
    headers: Vec<String>,
    align: Vec<Align>,
    rows: Vec<Vec<String>>,
}

impl TextTable {
    /// A table with these headers and alignments (one per column).
    pub fn new(headers: &[(&str, Align)]) -> Self {
        TextTable {
            headers: headers.iter().map(|h| h.0.to_string()).collect(),
            align: headers.iter().map(|h| h.1).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row (missing cells are blank, extra cells are dropped).
    pub fn row(&mut self, cells: Vec<String>) -> &mut Self {
        let mut cells = cells;
        cells.resize(self.headers.len(), String::new());
        self.rows.push(cells);
        self
    }

    /// Renders with two spaces between columns and a rule under the header.
    pub fn render(&self) -> String {
        let width = |s: &str| s.chars().count();
        let widths: Vec<usize> = (0..self.headers.len())
            .map(|c| {
                self.rows
                    .iter()
                    .map(|r| width(&r[c]))
                    .chain([width(&self.headers[c])])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |cells: &[String]| {
            let parts: Vec<String> = cells
                .iter()
                .zip(&widths)
                .zip(&self.align)
                .map(|((s, &w), a)| {
                    let pad = " ".repeat(w - width(s));
                    match a {
                        Align::Left => format!("{s}{pad}"),
                        Align::Right => format!("{pad}{s}"),
                    }
                })
                .collect();
            parts.join("  ").trim_end().to_string()
        };
        let mut out = line(&self.headers);
        out.push('\n');
        out.push_str(
            &"-".repeat(widths.iter().sum::<usize>() + 2 * widths.len().saturating_sub(1)),
        );
        out.push('\n');
        for r in &self.rows {
            out.push_str(&line(r));
            out.push('\n');
        }
        out
    }
}

/// A number with about `sig` significant digits, switching to scientific notation for very
/// large or small magnitudes.
pub fn num(x: f64, sig: usize) -> String {
    if x == 0.0 {
        return "0".into();
    }
    if !x.is_finite() {
        return format!("{x}");
    }
    let mag = x.abs().log10().floor() as i32;
    if !(-4..=8).contains(&mag) {
        return format!("{:.*e}", sig.saturating_sub(1), x);
    }
    let decimals = (sig as i32 - 1 - mag).max(0) as usize;
    format!("{x:.decimals$}")
}

/// A p-value: four decimals, or scientific notation below 0.0001.
pub fn p_value(p: f64) -> String {
    if p < 1e-4 {
        format!("{p:.2e}")
    } else {
        format!("{p:.4}")
    }
}

/// The ANOVA table (type III SS, df, mean square, F, p, η², partial η²) and the residual row.
pub fn anova_table(t: &AnovaTable, response: &str) -> String {
    let mut tt = TextTable::new(&[
        ("term", Align::Left),
        ("sum_sq", Align::Right),
        ("df", Align::Right),
        ("mean_sq", Align::Right),
        ("F", Align::Right),
        ("p", Align::Right),
        ("eta_sq", Align::Right),
        ("partial_eta_sq", Align::Right),
    ]);
    for r in &t.rows {
        tt.row(vec![
            r.term.clone(),
            num(r.sum_sq, 5),
            r.df.to_string(),
            num(r.mean_sq, 5),
            num(r.f, 5),
            p_value(r.p),
            format!("{:.3}", r.eta_sq),
            format!("{:.3}", r.partial_eta_sq),
        ]);
    }
    tt.row(vec![
        "residual".into(),
        num(t.residual.sum_sq, 5),
        t.residual.df.to_string(),
        num(t.residual.mean_sq, 5),
    ]);
    format!(
        "type III ANOVA of {response} ({} observations, {} cells, {})\n{}",
        t.n,
        t.cells,
        if t.balanced { "balanced" } else { "unbalanced" },
        tt.render()
    )
}

/// The Tukey HSD table: pair, difference, simultaneous interval, q, adjusted p, reject.
pub fn tukey_table(t: &TukeyHsd, response: &str, grouping: &str) -> String {
    let conf = format!("{:.0} % CI", 100.0 * (1.0 - t.alpha));
    let mut tt = TextTable::new(&[
        ("a", Align::Left),
        ("b", Align::Left),
        ("diff (b-a)", Align::Right),
        ("lower", Align::Right),
        ("upper", Align::Right),
        ("q", Align::Right),
        ("p_adj", Align::Right),
        ("reject", Align::Left),
    ]);
    for p in &t.pairs {
        tt.row(vec![
            p.a.clone(),
            p.b.clone(),
            num(p.diff, 5),
            num(p.lower, 5),
            num(p.upper, 5),
            num(p.q, 4),
            p_value(p.p),
            if p.reject { "yes" } else { "no" }.into(),
        ]);
    }
    format!(
        "Tukey HSD of {response} by {grouping} ({} groups, error MS {} on {} df, {conf})\n{}",
        t.groups.len(),
        num(t.mse, 5),
        t.df,
        tt.render()
    )
}

/// The Kruskal–Wallis result with per-group sizes and mean ranks.
pub fn kruskal_table(k: &KruskalWallis, response: &str, grouping: &str) -> String {
    let mut tt = TextTable::new(&[
        ("group", Align::Left),
        ("n", Align::Right),
        ("mean_rank", Align::Right),
    ]);
    for ((g, n), r) in k.groups.iter().zip(&k.sizes).zip(&k.mean_ranks) {
        tt.row(vec![g.clone(), n.to_string(), format!("{r:.2}")]);
    }
    format!(
        "Kruskal-Wallis of {response} by {grouping}: H = {}, df = {}, p = {}, epsilon^2 = {:.3} \
         (n = {})\n{}",
        num(k.h, 5),
        k.df,
        p_value(k.p),
        k.epsilon_sq,
        k.n,
        tt.render()
    )
}

/// Cell means with their intervals.
pub fn means_table(means: &[MeanInterval], response: &str, grouping: &str) -> String {
    let conf = means.first().map_or(0.95, |m| m.confidence);
    let mut tt = TextTable::new(&[
        (grouping, Align::Left),
        ("n", Align::Right),
        ("mean", Align::Right),
        ("sd", Align::Right),
        ("lower", Align::Right),
        ("upper", Align::Right),
    ]);
    for m in means {
        tt.row(vec![
            m.label.clone(),
            m.n.to_string(),
            num(m.mean, 5),
            num(m.sd, 4),
            num(m.lower, 5),
            num(m.upper, 5),
        ]);
    }
    format!(
        "means of {response} with {:.0} % t intervals\n{}",
        100.0 * conf,
        tt.render()
    )
}

/// Every configuration (front members marked), the marginal gains along the front and the
/// recommendation.
pub fn tradeoff_table(t: &Tradeoff) -> String {
    let mut tt = TextTable::new(&[
        ("configuration", Align::Left),
        ("runs", Align::Right),
        ("accuracy", Align::Right),
        ("energy", Align::Right),
        ("pareto", Align::Left),
    ]);
    let mut order: Vec<usize> = (0..t.points.len()).collect();
    order.sort_by(|&a, &b| t.points[a].energy_j.total_cmp(&t.points[b].energy_j));
    for i in order {
        let p = &t.points[i];
        tt.row(vec![
            p.label.clone(),
            p.runs.to_string(),
            percent(p.accuracy),
            energy(p.energy_j),
            if t.front.contains(&i) { "*" } else { "" }.into(),
        ]);
    }
    let mut out = tt.render();
    if !t.steps.is_empty() {
        let mut st = TextTable::new(&[
            ("from", Align::Left),
            ("to", Align::Left),
            ("extra energy", Align::Right),
            ("accuracy gain", Align::Right),
            ("pp per kJ", Align::Right),
        ]);
        for s in &t.steps {
            st.row(vec![
                s.from.clone(),
                s.to.clone(),
                energy(s.extra_energy_j),
                format!("{:+.2} pp", s.accuracy_gain_pp),
                num(s.pp_per_kj, 3),
            ]);
        }
        out.push_str("\nmarginal gains along the Pareto front");
        if t.diminishing_returns {
            out.push_str(" (diminishing returns: each step buys less accuracy per kJ)");
        }
        out.push('\n');
        out.push_str(&st.render());
    }
    out.push_str("\nrecommendation: ");
    out.push_str(&t.recommendation);
    out.push('\n');
    out
}

/// Strategy comparison summary: per strategy, best accuracy, energy, energy to target.
pub fn comparison_table(c: &StrategyComparison) -> String {
    let mut tt = TextTable::new(&[
        ("strategy", Align::Left),
        ("reps", Align::Right),
        ("median best", Align::Right),
        ("median energy", Align::Right),
        ("reached target", Align::Right),
        ("median energy to target", Align::Right),
    ]);
    for s in &c.strategies {
        let best: Vec<f64> = s
            .best_accuracy
            .iter()
            .copied()
            .filter(|a| !a.is_nan())
            .collect();
        tt.row(vec![
            s.name.clone(),
            s.repetitions.to_string(),
            if best.is_empty() {
                "-".into()
            } else {
                percent(crate::describe::median(&best))
            },
            energy(crate::describe::median(&s.total_energy_j)),
            format!("{}/{}", s.reached, s.repetitions),
            s.median_energy_to_target_j
                .map_or("not reached".into(), energy),
        ]);
    }
    let how = match c.options.target_accuracy {
        Some(_) => format!("set; the best was {}", percent(c.best_accuracy)),
        None => format!(
            "{:.0} % of the best, {}",
            100.0 * c.options.target_fraction,
            percent(c.best_accuracy)
        ),
    };
    format!(
        "target accuracy: {} ({how})\n{}\n{}\n",
        percent(c.target_accuracy),
        tt.render(),
        c.statement
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align() {
        let mut t = TextTable::new(&[("name", Align::Left), ("value", Align::Right)]);
        t.row(vec!["a".into(), "1.5".into()])
            .row(vec!["longer".into(), "22".into()]);
        assert_eq!(
            t.render(),
            "name    value\n-------------\na         1.5\nlonger     22\n"
        );
    }

    #[test]
    fn numbers_keep_significant_digits() {
        assert_eq!(num(22122.121368, 5), "22122");
        assert_eq!(num(0.0451240652, 4), "0.04512");
        assert_eq!(num(1.8e-17, 3), "1.80e-17");
        assert_eq!(p_value(0.0245869), "0.0246");
        assert_eq!(p_value(1.8e-17), "1.80e-17");
    }
}
