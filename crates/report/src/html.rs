//! Self-contained HTML: inline CSS, inline SVG, no scripts, no external resources.
//!
//! A Content-Security-Policy meta tag forbids every fetch (scripts, fonts, images, styles from
//! elsewhere), so the page provably needs no network and cannot leak that it was opened.

use std::collections::HashSet;
use std::fmt::Write as _;

use crate::ReportError;
use crate::format;
use crate::model::{Block, Cell, Finding, Report, Table, Verdict};
use crate::plot::{self, Figure, PlotError};

/// The policy the page ships with: inline styles only, nothing fetched, no scripts.
pub(crate) const CONTENT_SECURITY_POLICY: &str =
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src 'none'";

const CSS: &str = include_str!("report.css");

/// Escapes text for HTML element content and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / 8);
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            other => out.push(other),
        }
    }
    out
}

/// A URL fragment from a heading: lowercase ASCII letters and digits joined by '-',
/// made unique within the page.
fn slug(heading: &str, used: &mut HashSet<String>) -> String {
    let mut base = String::new();
    for ch in heading.chars() {
        if ch.is_ascii_alphanumeric() {
            base.push(ch.to_ascii_lowercase());
        } else if !base.ends_with('-') && !base.is_empty() {
            base.push('-');
        }
    }
    let base = base.trim_end_matches('-');
    let base = if base.is_empty() {
        "section".to_owned()
    } else {
        format!("s-{base}")
    };
    let mut candidate = base.clone();
    let mut n = 2;
    while !used.insert(candidate.clone()) {
        candidate = format!("{base}-{n}");
        n += 1;
    }
    candidate
}

fn badge(verdict: Verdict) -> String {
    format!(
        r#"<span class="badge badge-{}">{}</span>"#,
        verdict.css(),
        verdict.label()
    )
}

fn cell_html(cell: &Cell) -> (String, &'static str) {
    match cell {
        Cell::Text(text) => (escape(text), ""),
        Cell::Number { value, unit } => (escape(&format::quantity(*value, unit)), "num"),
        Cell::PValue(p) => (escape(&format::p(*p)), "num"),
        Cell::Verdict(verdict) => (badge(*verdict), ""),
        Cell::Empty => ("—".to_owned(), "num empty"),
    }
}

fn table_html(out: &mut String, table: &Table) {
    out.push_str(r#"<div class="table-wrap"><table>"#);
    if let Some(caption) = &table.caption {
        let _ = write!(out, "<caption>{}</caption>", escape(caption));
    }
    let numeric = table.numeric_columns();
    out.push_str("<thead><tr>");
    for (name, numeric) in table.header.iter().zip(&numeric) {
        let class = if *numeric { r#" class="num""# } else { "" };
        let _ = write!(out, r#"<th scope="col"{class}>{}</th>"#, escape(name));
    }
    out.push_str("</tr></thead><tbody>");
    if table.rows.is_empty() {
        let _ = write!(
            out,
            r#"<tr><td class="no-data" colspan="{}">no rows</td></tr>"#,
            table.header.len().max(1)
        );
    }
    for row in &table.rows {
        out.push_str("<tr>");
        for cell in row {
            let (html, class) = cell_html(cell);
            if class.is_empty() {
                let _ = write!(out, "<td>{html}</td>");
            } else {
                let _ = write!(out, r#"<td class="{class}">{html}</td>"#);
            }
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div>\n");
}

/// The verdict's qualifier ("on estimated energy: ..."), as a small line under the badge.
fn qualifier_html(finding: &Finding) -> String {
    finding
        .qualifier
        .as_ref()
        .map(|q| format!(r#"<span class="qualifier">{}</span>"#, escape(q)))
        .unwrap_or_default()
}

fn finding_html(out: &mut String, finding: &Finding) {
    let _ = writeln!(
        out,
        r#"<div class="finding finding-{}"><div class="finding-head">{}{}<p class="claim">{}</p></div><p class="evidence">{}</p></div>"#,
        finding.verdict.css(),
        badge(finding.verdict),
        qualifier_html(finding),
        escape(&finding.claim),
        escape(&finding.evidence)
    );
}

fn figure_html(out: &mut String, kind: &str, caption: &str, figure: Figure) {
    match figure {
        Figure::Svg(svg) => {
            let _ = writeln!(
                out,
                r#"<figure class="plot" data-plot="{kind}">{svg}<figcaption>{}</figcaption></figure>"#,
                escape(caption)
            );
        }
        Figure::NoData(reason) => {
            let _ = writeln!(
                out,
                r#"<figure class="plot-empty" data-plot="{kind}"><p class="no-data">No data: {}.</p><figcaption>{}</figcaption></figure>"#,
                escape(&reason),
                escape(caption)
            );
        }
    }
}

fn block_html(out: &mut String, block: &Block) -> Result<(), PlotError> {
    match block {
        Block::Paragraph(text) => {
            let _ = writeln!(out, "<p>{}</p>", escape(text));
        }
        Block::Finding(finding) => finding_html(out, finding),
        Block::Table(table) => table_html(out, table),
        Block::LinePlot(p) => figure_html(out, block.kind(), &p.caption, plot::line_plot(p)?),
        Block::Scatter(p) => figure_html(out, block.kind(), &p.caption, plot::scatter(p)?),
        Block::StackedBars(p) => figure_html(out, block.kind(), &p.caption, plot::stacked_bars(p)?),
        Block::IntervalPlot(p) => {
            figure_html(out, block.kind(), &p.caption, plot::interval_plot(p)?)
        }
        Block::KeyValues(pairs) => {
            out.push_str(r#"<dl class="kv">"#);
            for (key, value) in pairs {
                let _ = write!(out, "<dt>{}</dt><dd>{}</dd>", escape(key), escape(value));
            }
            out.push_str("</dl>\n");
        }
        Block::Code(code) => {
            let _ = writeln!(out, "<pre><code>{}</code></pre>", escape(code));
        }
    }
    Ok(())
}

/// A short description of a block for error messages: its kind and caption or first words.
fn describe(block: &Block, index: usize) -> String {
    let caption = match block {
        Block::LinePlot(p) => Some(&p.caption),
        Block::Scatter(p) => Some(&p.caption),
        Block::StackedBars(p) => Some(&p.caption),
        Block::IntervalPlot(p) => Some(&p.caption),
        Block::Table(t) => t.caption.as_ref(),
        _ => None,
    };
    match caption {
        Some(caption) if !caption.is_empty() => {
            let short: String = caption.chars().take(60).collect();
            format!("block {} ({} '{short}')", index + 1, block.kind())
        }
        _ => format!("block {} ({})", index + 1, block.kind()),
    }
}

/// Renders a section's (or the lead's) blocks; errors name the section and the block.
fn blocks_html(out: &mut String, heading: &str, blocks: &[Block]) -> Result<(), ReportError> {
    for (index, block) in blocks.iter().enumerate() {
        block_html(out, block).map_err(|error| match error {
            PlotError::Invalid(reason) => ReportError::InvalidBlock {
                section: heading.to_string(),
                block: describe(block, index),
                reason,
            },
            PlotError::Drawing(message) => ReportError::Plot {
                block: describe(block, index),
                message,
            },
        })?;
    }
    Ok(())
}

/// Checks what the renderers cannot guess: table rows as wide as their header.
pub(crate) fn validate_tables(report: &Report) -> Result<(), ReportError> {
    let lead = std::iter::once(("lead", report.lead.as_slice()));
    let sections = report
        .sections
        .iter()
        .map(|s| (s.heading.as_str(), s.blocks.as_slice()));
    for (heading, blocks) in lead.chain(sections) {
        for (index, block) in blocks.iter().enumerate() {
            if let Block::Table(table) = block {
                for (row_index, row) in table.rows.iter().enumerate() {
                    if row.len() != table.header.len() {
                        return Err(ReportError::InvalidBlock {
                            section: heading.to_string(),
                            block: describe(block, index),
                            reason: format!(
                                "row {} has {} cells but the header has {} columns; \
                                 give every row one cell per column (Cell::Empty for none)",
                                row_index + 1,
                                row.len(),
                                table.header.len()
                            ),
                        });
                    }
                }
            }
        }
    }
    Ok(())
}

/// Renders the report as one self-contained HTML document.
pub(crate) fn render(report: &Report) -> Result<String, ReportError> {
    validate_tables(report)?;
    let mut used = HashSet::new();
    let ids: Vec<String> = report
        .sections
        .iter()
        .map(|s| slug(&s.heading, &mut used))
        .collect();

    let mut out = String::with_capacity(64 * 1024);
    let _ = write!(
        out,
        r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">
<meta name="generator" content="greenlab-report {version}">
<title>{title}</title>
<style>
{CSS}</style>
</head>
<body>
<main class="page">
<header class="masthead">
<p class="eyebrow">greenlab report</p>
<h1>{title}</h1>
"#,
        version = env!("CARGO_PKG_VERSION"),
        title = escape(&report.title),
    );
    if let Some(subtitle) = &report.subtitle {
        let _ = writeln!(out, r#"<p class="subtitle">{}</p>"#, escape(subtitle));
    }
    out.push_str("</header>\n");
    if !report.lead.is_empty() {
        out.push_str("<section class=\"card lead\" id=\"lead\">\n");
        blocks_html(&mut out, "lead", &report.lead)?;
        out.push_str("</section>\n");
    }

    let findings: Vec<(usize, &Finding)> = report
        .sections
        .iter()
        .enumerate()
        .flat_map(|(i, s)| {
            s.blocks.iter().filter_map(move |b| match b {
                Block::Finding(f) => Some((i, f)),
                _ => None,
            })
        })
        .collect();
    if !findings.is_empty() {
        let count = |v: Verdict| findings.iter().filter(|(_, f)| f.verdict == v).count();
        let _ = write!(
            out,
            r#"<section class="card summary" id="findings-at-a-glance">
<h2>Findings at a glance</h2>
<p class="tally"><span class="tally-item">{} {}</span><span class="tally-item">{} {}</span><span class="tally-item">{} {}</span><span class="tally-item">{} {}</span></p>
<div class="table-wrap"><table class="findings"><thead><tr><th scope="col">Claim</th><th scope="col">Verdict</th><th scope="col">Evidence</th></tr></thead><tbody>
"#,
            count(Verdict::Reproduced),
            badge(Verdict::Reproduced),
            count(Verdict::Inconclusive),
            badge(Verdict::Inconclusive),
            count(Verdict::NotReproduced),
            badge(Verdict::NotReproduced),
            count(Verdict::CannotJudge),
            badge(Verdict::CannotJudge),
        );
        for (section, finding) in &findings {
            let _ = writeln!(
                out,
                r##"<tr><td><a href="#{}">{}</a></td><td>{}{}</td><td class="evidence">{}</td></tr>"##,
                ids[*section],
                escape(&finding.claim),
                badge(finding.verdict),
                qualifier_html(finding),
                escape(&finding.evidence)
            );
        }
        out.push_str("</tbody></table></div>\n</section>\n");
    }

    if report.sections.len() > 1 {
        out.push_str(r#"<nav class="toc" aria-label="Contents"><ol>"#);
        for (section, id) in report.sections.iter().zip(&ids) {
            let _ = write!(
                out,
                r##"<li><a href="#{id}">{}</a></li>"##,
                escape(&section.heading)
            );
        }
        out.push_str("</ol></nav>\n");
    }

    for (section, id) in report.sections.iter().zip(&ids) {
        let _ = write!(
            out,
            "<section class=\"card\" id=\"{id}\">\n<h2>{}</h2>\n",
            escape(&section.heading)
        );
        blocks_html(&mut out, &section.heading, &section.blocks)?;
        out.push_str("</section>\n");
    }
    out.push_str(
        "<footer>Made with greenlab. This file is self-contained: it needs no network to view \
         or print.</footer>\n</main>\n</body>\n</html>\n",
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::example;
    use crate::model::{Axis, LinePlot, Scatter, Section, Unit};

    const EVIL: &str = r#"<script>alert("x")</script> & 'quotes'"#;
    const EVIL_ESCAPED: &str =
        "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;quotes&#39;";

    #[test]
    fn every_text_field_is_escaped() {
        let report = Report::new(EVIL).with_subtitle(EVIL).with_section(
            Section::new(EVIL)
                .with(Block::Paragraph(EVIL.into()))
                .with(Finding::new(EVIL, Verdict::Inconclusive, EVIL))
                .with(
                    Table::new([EVIL])
                        .with_row([Cell::text(EVIL)])
                        .with_caption(EVIL),
                )
                .with(Block::KeyValues(vec![(EVIL.into(), EVIL.into())]))
                .with(Block::Code(EVIL.into()))
                .with(LinePlot {
                    caption: EVIL.into(),
                    x: Axis::new(EVIL, Unit::Other(EVIL.into())),
                    y: Axis::new("y", Unit::None),
                    series: vec![crate::Series::new(EVIL, vec![(1.0, 2.0), (2.0, 3.0)])],
                }),
        );
        let html = render(&report).unwrap();
        assert!(!html.contains("<script"), "raw markup leaked into the page");
        // title, h1, subtitle, summary claim+evidence, heading (toc absent: one section),
        // paragraph, finding claim+evidence, th, td, caption, dt, dd, code, figcaption.
        assert!(
            html.matches(EVIL_ESCAPED).count() >= 15,
            "{}",
            html.matches(EVIL_ESCAPED).count()
        );
    }

    #[test]
    fn the_example_renders_every_plot_as_an_inline_svg_figure() {
        let html = render(&example::report()).unwrap();
        assert_eq!(
            html.matches(r#"<figure class="plot" "#).count(),
            example::PLOT_COUNT
        );
        assert_eq!(html.matches("<svg ").count(), example::PLOT_COUNT);
        for kind in ["line-plot", "scatter", "stacked-bars", "interval-plot"] {
            assert!(
                html.contains(&format!(r#"data-plot="{kind}""#)),
                "no {kind} figure"
            );
        }
        assert!(!html.contains(r#"class="plot-empty""#));
    }

    #[test]
    fn page_is_self_contained() {
        let html = render(&example::report()).unwrap();
        assert!(html.contains(CONTENT_SECURITY_POLICY));
        assert!(html.contains("<style>"));
        for forbidden in ["<script", "<link", "src=", "@import", "url(", "https://"] {
            assert!(!html.contains(forbidden), "found {forbidden}");
        }
        // The only URL is the SVG namespace, which is an identifier, not a fetch.
        assert_eq!(
            html.matches("http://").count(),
            html.matches("xmlns=\"http://www.w3.org/2000/svg\"").count()
        );
    }

    #[test]
    fn the_lead_comes_before_the_findings_and_the_sections() {
        let mut report = example::report();
        report.push_lead(Block::Paragraph("Use TPE with median pruning.".into()));
        let html = render(&report).unwrap();
        let lead = html.find("Use TPE with median pruning.").unwrap();
        assert!(lead < html.find("findings-at-a-glance").unwrap());
        assert!(lead < html.find("<nav class=\"toc\"").unwrap());
        let md = crate::render_markdown(&report);
        assert!(
            md.find("Use TPE with median pruning.").unwrap()
                < md.find("## Findings at a glance").unwrap()
        );
        let json = crate::render_json(&report).unwrap();
        let back: Report = serde_json::from_str(&json).unwrap();
        assert_eq!(back.lead, report.lead);
        let without: Report =
            serde_json::from_str(&crate::render_json(&example::report()).unwrap()).unwrap();
        assert!(without.lead.is_empty(), "older documents have no lead");
    }

    #[test]
    fn findings_get_a_summary_with_badges_and_links_to_their_sections() {
        let html = render(&example::report()).unwrap();
        assert!(html.contains("Findings at a glance"));
        let summary =
            &html[html.find("findings-at-a-glance").unwrap()..html.find("</section>").unwrap()];
        assert_eq!(
            summary.matches("badge-reproduced").count(),
            1 + 2,
            "tally + two rows"
        );
        assert_eq!(summary.matches("badge-inconclusive").count(), 1 + 1);
        assert_eq!(summary.matches("badge-not-reproduced").count(), 1 + 1);
        assert!(summary.contains(r##"href="#s-rq1-which-tuning-strategy"##));
        assert!(html.contains(
            r#"id="s-rq1-which-tuning-strategy-reaches-good-accuracy-for-the-least-energy""#
        ));
        let no_findings = render(&Report::new("t").with_section(Section::new("a"))).unwrap();
        assert!(!no_findings.contains("Findings at a glance"));
    }

    #[test]
    fn duplicate_headings_get_distinct_anchors() {
        let report = Report::new("t")
            .with_section(Section::new("Results"))
            .with_section(Section::new("Results"))
            .with_section(Section::new("¿?"));
        let html = render(&report).unwrap();
        for id in [
            r#"id="s-results""#,
            r#"id="s-results-2""#,
            r#"id="section""#,
        ] {
            assert!(html.contains(id), "missing {id}");
        }
    }

    #[test]
    fn table_cells_are_formatted_and_numbers_right_aligned() {
        let table = Table::new(["run", "energy", "p", "verdict", "note"]).with_row([
            Cell::text("a"),
            Cell::joules(41_260.0),
            Cell::PValue(0.0002),
            Cell::Verdict(Verdict::Reproduced),
            Cell::Empty,
        ]);
        let mut out = String::new();
        table_html(&mut out, &table);
        assert!(out.contains(r#"<td class="num">41.3 kJ</td>"#), "{out}");
        assert!(out.contains(r#"<td class="num">&lt; 0.001</td>"#));
        assert!(out.contains(r#"<span class="badge badge-reproduced">reproduced</span>"#));
        assert!(out.contains(r#"<th scope="col" class="num">energy</th>"#));
        assert!(out.contains(r#"<th scope="col">run</th>"#));
        let mut empty = String::new();
        table_html(&mut empty, &Table::new(["a", "b"]));
        assert!(empty.contains(r#"colspan="2">no rows<"#));
    }

    #[test]
    fn a_short_table_row_is_an_error_naming_section_row_and_fix() {
        let report = Report::new("t").with_section(
            Section::new("RQ2").with(Block::Paragraph("x".into())).with(
                Table::new(["a", "b"])
                    .with_row([Cell::text("1")])
                    .with_caption("ANOVA"),
            ),
        );
        let message = render(&report).unwrap_err().to_string();
        assert!(
            message.contains("section 'RQ2', block 2 (table 'ANOVA')"),
            "{message}"
        );
        assert!(
            message.contains("row 1 has 1 cells but the header has 2 columns"),
            "{message}"
        );
        assert!(message.contains("Cell::Empty"), "{message}");
    }

    #[test]
    fn a_bad_plot_is_an_error_naming_its_section_and_caption() {
        let report = Report::new("t").with_section(Section::new("Trade-offs").with(Scatter {
            caption: "accuracy vs energy".into(),
            x: Axis::new("Energy", Unit::Joules).log(),
            y: Axis::new("Accuracy", Unit::Percent),
            points: vec![crate::ScatterPoint::new(0.0, 0.5, "a")],
            pareto_front: vec![],
        }));
        let error = render(&report).unwrap_err();
        assert!(matches!(error, ReportError::InvalidBlock { .. }));
        let message = error.to_string();
        assert!(
            message.contains("'Trade-offs', block 1 (scatter 'accuracy vs energy')"),
            "{message}"
        );
        assert!(message.contains("logarithmic"), "{message}");
    }

    #[test]
    fn an_empty_plot_becomes_a_visible_no_data_note() {
        let report = Report::new("t").with_section(Section::new("s").with(LinePlot {
            caption: "power trace".into(),
            x: Axis::new("t", Unit::Seconds),
            y: Axis::new("P", Unit::Watts),
            series: vec![],
        }));
        let html = render(&report).unwrap();
        assert!(html.contains(r#"<figure class="plot-empty" data-plot="line-plot"><p class="no-data">No data: no series to plot.</p><figcaption>power trace</figcaption>"#), "{html}");
        assert!(!html.contains("<svg"));
    }
}
