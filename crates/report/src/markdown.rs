//! GitHub-flavoured Markdown: findings as a list, tables as pipe tables, plots as the data
//! they show in compact tables (a text report has no pictures, but keeps the numbers).

use std::fmt::Write as _;

use crate::format;
use crate::model::{Block, Cell, Report, Unit};

/// Escapes text so Markdown shows it literally (no emphasis, links or HTML).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '|' => {
                out.push('\\');
                out.push(ch);
            }
            '\n' => out.push(' '),
            other => out.push(other),
        }
    }
    out
}

fn cell_text(cell: &Cell) -> String {
    match cell {
        Cell::Text(text) => escape(text),
        Cell::Number { value, unit } => format::quantity(*value, unit),
        Cell::PValue(p) => format::p(*p),
        Cell::Verdict(verdict) => format!("**{}**", verdict.label()),
        Cell::Empty => "—".to_owned(),
    }
}

/// A pipe table; columns flagged in `right` are right-aligned (numbers).
fn pipe_table(out: &mut String, header: &[String], rows: &[Vec<String>], right: &[bool]) {
    let _ = writeln!(out, "| {} |", header.join(" | "));
    let rule: String = (0..header.len().max(1))
        .map(|col| {
            if right.get(col).copied().unwrap_or(false) {
                "---:|"
            } else {
                "---|"
            }
        })
        .collect();
    let _ = writeln!(out, "|{rule}");
    for row in rows {
        let _ = writeln!(out, "| {} |", row.join(" | "));
    }
    out.push('\n');
}

fn figure_caption(out: &mut String, kind: &str, caption: &str) {
    let _ = writeln!(out, "*Figure ({kind}): {}*\n", escape(caption));
}

fn block_markdown(out: &mut String, block: &Block) {
    match block {
        Block::Paragraph(text) => {
            let _ = writeln!(out, "{}\n", escape(text));
        }
        Block::Finding(finding) => {
            let _ = writeln!(
                out,
                "> **{}**: {}  \n> {}\n",
                finding.verdict_line(),
                escape(&finding.claim),
                escape(&finding.evidence)
            );
        }
        Block::Table(table) => {
            let header: Vec<String> = table.header.iter().map(|h| escape(h)).collect();
            let rows: Vec<Vec<String>> = table
                .rows
                .iter()
                .map(|row| row.iter().map(cell_text).collect())
                .collect();
            let right = table.numeric_columns();
            pipe_table(out, &header, &rows, &right);
            if let Some(caption) = &table.caption {
                let _ = writeln!(out, "*{}*\n", escape(caption));
            }
        }
        Block::LinePlot(plot) => {
            figure_caption(out, "line plot", &plot.caption);
            let fmt_x = |v: f64| format::quantity(v, &plot.x.unit);
            let fmt_y = |v: f64| format::quantity(v, &plot.y.unit);
            let rows: Vec<Vec<String>> = plot
                .series
                .iter()
                .map(|s| {
                    let first = s.points.first().copied();
                    let last = s.points.last().copied();
                    let best = s
                        .points
                        .iter()
                        .map(|p| p.1)
                        .fold(f64::NEG_INFINITY, f64::max);
                    vec![
                        escape(&s.label),
                        s.points.len().to_string(),
                        first.map_or("—".into(), |p| format!("{} → {}", fmt_x(p.0), fmt_y(p.1))),
                        last.map_or("—".into(), |p| format!("{} → {}", fmt_x(p.0), fmt_y(p.1))),
                        if s.points.is_empty() {
                            "—".into()
                        } else {
                            fmt_y(best)
                        },
                    ]
                })
                .collect();
            let header = [
                "series".to_owned(),
                "points".to_owned(),
                format!(
                    "first ({} → {})",
                    escape(&plot.x.label),
                    escape(&plot.y.label)
                ),
                "last".to_owned(),
                format!("max {}", escape(&plot.y.label)),
            ];
            pipe_table(out, &header, &rows, &[]);
        }
        Block::Scatter(plot) => {
            figure_caption(out, "scatter", &plot.caption);
            let rows: Vec<Vec<String>> = plot
                .points
                .iter()
                .map(|p| {
                    vec![
                        escape(&p.group),
                        p.label.as_deref().map_or(String::new(), escape),
                        format::quantity(p.x, &plot.x.unit),
                        format::quantity(p.y, &plot.y.unit),
                    ]
                })
                .collect();
            let header = [
                "group".to_owned(),
                "label".to_owned(),
                escape(&plot.x.label),
                escape(&plot.y.label),
            ];
            pipe_table(out, &header, &rows, &[]);
            if !plot.pareto_front.is_empty() {
                let front: Vec<String> = plot
                    .pareto_front
                    .iter()
                    .map(|&(x, y)| {
                        format!(
                            "({}, {})",
                            format::quantity(x, &plot.x.unit),
                            format::quantity(y, &plot.y.unit)
                        )
                    })
                    .collect();
                let _ = writeln!(out, "Pareto front: {}\n", front.join(", "));
            }
        }
        Block::StackedBars(plot) => {
            figure_caption(out, "stacked bars", &plot.caption);
            let mut header = vec!["category".to_owned(), "bar".to_owned()];
            header.extend(plot.segments.iter().map(|s| escape(s)));
            let mut rows = Vec::new();
            for set in &plot.sets {
                for (category, values) in plot.categories.iter().zip(&set.values) {
                    let total: f64 = values.iter().sum();
                    let mut row = vec![escape(category), escape(&set.name)];
                    row.extend(values.iter().map(|&v| {
                        if plot.shares {
                            format::percent(if total > 0.0 { v / total } else { f64::NAN })
                        } else {
                            format::quantity(v, &plot.value.unit)
                        }
                    }));
                    rows.push(row);
                }
            }
            pipe_table(out, &header, &rows, &[]);
        }
        Block::IntervalPlot(plot) => {
            figure_caption(out, "intervals", &plot.caption);
            let unit: &Unit = &plot.value.unit;
            let rows: Vec<Vec<String>> = plot
                .cells
                .iter()
                .map(|c| {
                    vec![
                        escape(&c.label),
                        format::quantity(c.mean, unit),
                        format!(
                            "{} – {}",
                            format::quantity(c.lower, unit),
                            format::quantity(c.upper, unit)
                        ),
                    ]
                })
                .collect();
            let header = [
                "cell".to_owned(),
                format!("mean {}", escape(&plot.value.label)),
                escape(&plot.interval_label),
            ];
            pipe_table(out, &header, &rows, &[]);
        }
        Block::KeyValues(pairs) => {
            for (key, value) in pairs {
                let _ = writeln!(out, "- **{}**: `{}`", escape(key), value.replace('`', "'"));
            }
            out.push('\n');
        }
        Block::Code(code) => {
            // A fence longer than any backtick run inside the code keeps it intact.
            let longest = code.split(|c| c != '`').map(str::len).max().unwrap_or(0);
            let fence = "`".repeat(longest.max(2) + 1);
            let _ = writeln!(out, "{fence}\n{}\n{fence}\n", code.trim_end_matches('\n'));
        }
    }
}

/// Renders the report as Markdown.
pub(crate) fn render(report: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# {}\n", escape(&report.title));
    if let Some(subtitle) = &report.subtitle {
        let _ = writeln!(out, "_{}_\n", escape(subtitle));
    }
    for block in &report.lead {
        block_markdown(&mut out, block);
    }
    let findings: Vec<_> = report.findings().collect();
    if !findings.is_empty() {
        out.push_str("## Findings at a glance\n\n");
        let rows: Vec<Vec<String>> = findings
            .iter()
            .map(|(_, f)| vec![escape(&f.claim), format!("**{}**", f.verdict_line())])
            .collect();
        pipe_table(
            &mut out,
            &["claim".to_owned(), "verdict".to_owned()],
            &rows,
            &[],
        );
    }
    for section in &report.sections {
        let _ = writeln!(out, "## {}\n", escape(&section.heading));
        for block in &section.blocks {
            block_markdown(&mut out, block);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::example;
    use crate::model::{Finding, Section, Table, Verdict};

    #[test]
    fn the_example_renders_every_block_as_text() {
        let md = render(&example::report());
        assert!(md.starts_with("# Reproducing"));
        assert!(md.contains("## Findings at a glance"));
        assert!(md.contains("| run | test accuracy | energy | source | CO₂e | duration |\n|---|---:|---:|---|---:|---:|"), "{md}");
        assert!(md.contains("| Bayesian optimisation reaches good accuracy with less energy than random or grid search | **reproduced** |"));
        assert!(md.contains("> **not reproduced**: Halving complexity"));
        assert!(md.contains("| RQ1 tuning (45 studies) | 88.5% | 2.03 MJ | estimated | 226 g CO₂e | 1 h 30 min |"), "{md}");
        assert_eq!(md.matches("*Figure (").count(), example::PLOT_COUNT);
        assert!(md.contains("Pareto front: (900 J, 86.7%)"), "{md}");
        assert!(
            md.contains("| SimpleCNN (conv 4, linear 7) | energy | 61.0% |"),
            "{md}"
        );
        assert!(
            md.contains("| conv 1 · linear 3 · ReLU on | 16.4 kJ | 15.6 kJ – 17.1 kJ |"),
            "{md}"
        );
        assert!(md.contains("- **engine**: `burn (flex CPU backend)`"));
        assert!(md.contains("```\ngreenlab replicate --preset quick --out runs/quick\n```"));
    }

    #[test]
    fn markdown_syntax_in_text_is_shown_literally() {
        let report = Report::new("a|b *c*").with_section(
            Section::new("s")
                .with(Finding::new(
                    "x_y",
                    Verdict::Inconclusive,
                    "[link](http://e)",
                ))
                .with(Table::new(["h|1"]).with_row([Cell::text("v|1")]))
                .with(Block::Code("has ``` inside".into())),
        );
        let md = render(&report);
        assert!(md.starts_with("# a\\|b \\*c\\*"));
        assert!(md.contains("x\\_y") && md.contains("\\[link\\](http://e)"));
        assert!(md.contains("| h\\|1 |") && md.contains("| v\\|1 |"));
        assert!(md.contains("````\nhas ``` inside\n````"), "{md}");
    }
}
