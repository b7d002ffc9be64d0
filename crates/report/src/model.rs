//! The document model: what a report says, independent of how it is rendered.
//!
//! Every value is plain data (serde-serialisable) so the same model renders to HTML, Markdown
//! and JSON. Numbers carry a [`Unit`] instead of being pre-formatted strings, so each renderer
//! can format them for its medium and scripts reading the JSON get the raw values.

use serde::{Deserialize, Serialize};

/// A whole report: a title, an optional subtitle and sections in reading order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Main heading, e.g. "Reproduction of Yarally et al. (CAIN 2023)".
    pub title: String,
    /// One line under the title, e.g. the preset, machine and date.
    pub subtitle: Option<String>,
    /// The answer a reader came for, shown first, above the findings and the sections (for
    /// instance which strategy to use); empty for none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub lead: Vec<Block>,
    /// Sections in reading order; each becomes a card in HTML.
    pub sections: Vec<Section>,
}

impl Report {
    /// A report with a title and nothing else yet.
    pub fn new(title: impl Into<String>) -> Self {
        Self {
            title: title.into(),
            subtitle: None,
            lead: Vec::new(),
            sections: Vec::new(),
        }
    }

    /// Appends a block to the lead, the answer shown first.
    pub fn push_lead(&mut self, block: impl Into<Block>) {
        self.lead.push(block.into());
    }

    /// Sets the subtitle (builder style).
    #[must_use]
    pub fn with_subtitle(mut self, subtitle: impl Into<String>) -> Self {
        self.subtitle = Some(subtitle.into());
        self
    }

    /// Appends a section (builder style).
    #[must_use]
    pub fn with_section(mut self, section: Section) -> Self {
        self.sections.push(section);
        self
    }

    /// Appends a section.
    pub fn push(&mut self, section: Section) {
        self.sections.push(section);
    }

    /// Every finding in the report with the heading of its section, in reading order.
    pub fn findings(&self) -> impl Iterator<Item = (&str, &Finding)> {
        self.sections.iter().flat_map(|section| {
            section.blocks.iter().filter_map(move |block| match block {
                Block::Finding(finding) => Some((section.heading.as_str(), finding)),
                _ => None,
            })
        })
    }
}

/// A titled group of blocks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Section {
    /// Section heading.
    pub heading: String,
    /// Content in reading order.
    pub blocks: Vec<Block>,
}

impl Section {
    /// An empty section.
    pub fn new(heading: impl Into<String>) -> Self {
        Self {
            heading: heading.into(),
            blocks: Vec::new(),
        }
    }

    /// Appends a block (builder style).
    #[must_use]
    pub fn with(mut self, block: impl Into<Block>) -> Self {
        self.blocks.push(block.into());
        self
    }

    /// Appends a block.
    pub fn push(&mut self, block: impl Into<Block>) {
        self.blocks.push(block.into());
    }
}

/// One piece of content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Block {
    /// Running text. Plain text: it is escaped, not interpreted as HTML or Markdown.
    Paragraph(String),
    /// A claim from the paper and whether this run reproduces it.
    Finding(Finding),
    /// A table of text and numbers with units.
    Table(Table),
    /// Lines over a numeric x axis, with optional bands (e.g. best-so-far accuracy against
    /// cumulative energy, per-epoch power traces).
    LinePlot(LinePlot),
    /// Points with groups and labels plus an optional Pareto front.
    Scatter(Scatter),
    /// Horizontal stacked bars, e.g. per-layer-type energy share beside FLOP share.
    StackedBars(StackedBars),
    /// Means with interval whiskers, e.g. factorial cell means with 95 % confidence intervals.
    IntervalPlot(IntervalPlot),
    /// Name/value pairs, e.g. the configuration used.
    KeyValues(Vec<(String, String)>),
    /// Preformatted text, e.g. the command line or a TOML file.
    Code(String),
}

impl Block {
    /// A short lowercase name of the block kind ("line-plot", "table", ...), used in error
    /// messages and as the `data-plot` attribute of HTML figures.
    pub fn kind(&self) -> &'static str {
        match self {
            Block::Paragraph(_) => "paragraph",
            Block::Finding(_) => "finding",
            Block::Table(_) => "table",
            Block::LinePlot(_) => "line-plot",
            Block::Scatter(_) => "scatter",
            Block::StackedBars(_) => "stacked-bars",
            Block::IntervalPlot(_) => "interval-plot",
            Block::KeyValues(_) => "key-values",
            Block::Code(_) => "code",
        }
    }

    /// Whether this block is drawn as an SVG plot.
    pub fn is_plot(&self) -> bool {
        matches!(
            self,
            Block::LinePlot(_) | Block::Scatter(_) | Block::StackedBars(_) | Block::IntervalPlot(_)
        )
    }
}

impl From<Finding> for Block {
    fn from(value: Finding) -> Self {
        Block::Finding(value)
    }
}
impl From<Table> for Block {
    fn from(value: Table) -> Self {
        Block::Table(value)
    }
}
impl From<LinePlot> for Block {
    fn from(value: LinePlot) -> Self {
        Block::LinePlot(value)
    }
}
impl From<Scatter> for Block {
    fn from(value: Scatter) -> Self {
        Block::Scatter(value)
    }
}
impl From<StackedBars> for Block {
    fn from(value: StackedBars) -> Self {
        Block::StackedBars(value)
    }
}
impl From<IntervalPlot> for Block {
    fn from(value: IntervalPlot) -> Self {
        Block::IntervalPlot(value)
    }
}

/// Whether this run reproduces a finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The run shows the effect the paper reports.
    Reproduced,
    /// The run contradicts it.
    NotReproduced,
    /// Too little data or too weak an effect to say either way.
    Inconclusive,
    /// The data a verdict needs were not measured (for instance no energy could be measured
    /// on the machine): neither reproduced nor not reproduced.
    CannotJudge,
}

impl Verdict {
    /// Lowercase label: "reproduced", "not reproduced", "inconclusive", "cannot judge".
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Reproduced => "reproduced",
            Verdict::NotReproduced => "not reproduced",
            Verdict::Inconclusive => "inconclusive",
            Verdict::CannotJudge => "cannot judge",
        }
    }

    /// CSS class suffix used by the HTML renderer.
    pub(crate) fn css(self) -> &'static str {
        match self {
            Verdict::Reproduced => "reproduced",
            Verdict::NotReproduced => "not-reproduced",
            Verdict::Inconclusive => "inconclusive",
            Verdict::CannotJudge => "cannot-judge",
        }
    }
}

/// A claim and the evidence for the verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// The paper's claim, e.g. "Bayesian optimisation needs less energy than random search".
    pub claim: String,
    /// What this run shows.
    pub verdict: Verdict,
    /// The numbers behind the verdict, e.g. "99 % of best accuracy with 41 % of the energy of
    /// random search (p = 0.004)". Use [`mod@crate::format`] to format the numbers.
    pub evidence: String,
    /// What the verdict rests on, printed right after it: "on estimated energy: the estimate
    /// follows run time", or for [`Verdict::CannotJudge`] why ("no energy measured: ...").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub qualifier: Option<String>,
}

impl Finding {
    /// A finding.
    pub fn new(claim: impl Into<String>, verdict: Verdict, evidence: impl Into<String>) -> Self {
        Self {
            claim: claim.into(),
            verdict,
            evidence: evidence.into(),
            qualifier: None,
        }
    }

    /// The same finding with what its verdict rests on.
    pub fn qualified(mut self, qualifier: impl Into<String>) -> Self {
        self.qualifier = Some(qualifier.into());
        self
    }

    /// The verdict as one line: "reproduced, on estimated energy: the estimate follows run
    /// time", "cannot judge: no energy measured (...)".
    pub fn verdict_line(&self) -> String {
        match (&self.qualifier, self.verdict) {
            (Some(q), Verdict::CannotJudge) => format!("{}: {q}", self.verdict.label()),
            (Some(q), _) => format!("{}, {q}", self.verdict.label()),
            (None, _) => self.verdict.label().to_owned(),
        }
    }
}

/// The unit of a number; decides how it is formatted (SI prefixes, grouping, percent).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Unit {
    /// A plain number (4 significant digits, scientific notation for tiny values).
    #[default]
    None,
    /// A whole count, grouped by thousands ("60,000").
    Count,
    /// Energy in joules; shown as mJ/J/kJ/MJ/GJ.
    Joules,
    /// Power in watts; shown as mW/W/kW/MW.
    Watts,
    /// Duration in seconds; shown as ms, s, min, h.
    Seconds,
    /// Mass of CO₂-equivalent in grams; shown as g/kg/t CO₂e.
    GramsCo2e,
    /// Floating-point operations; shown with SI prefixes (MFLOP, GFLOP, ...).
    Flop,
    /// A fraction (0.853) shown as a percentage ("85.3%").
    Percent,
    /// Any other unit: the number with this suffix, no scaling.
    Other(String),
}

/// A table cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Cell {
    /// Text, left-aligned.
    Text(String),
    /// A number with its unit, right-aligned.
    Number {
        /// The value in the unit's base (joules, seconds, a fraction for percent, ...).
        value: f64,
        /// Its unit.
        unit: Unit,
    },
    /// A p-value ("< 0.001", "0.032").
    PValue(f64),
    /// A verdict badge.
    Verdict(Verdict),
    /// No value (rendered as an em dash).
    Empty,
}

impl Cell {
    /// A number with a unit.
    pub fn number(value: f64, unit: Unit) -> Self {
        Cell::Number { value, unit }
    }
    /// A plain number.
    pub fn plain(value: f64) -> Self {
        Cell::number(value, Unit::None)
    }
    /// Energy in joules.
    pub fn joules(value: f64) -> Self {
        Cell::number(value, Unit::Joules)
    }
    /// Power in watts.
    pub fn watts(value: f64) -> Self {
        Cell::number(value, Unit::Watts)
    }
    /// A duration in seconds.
    pub fn seconds(value: f64) -> Self {
        Cell::number(value, Unit::Seconds)
    }
    /// A fraction shown as a percentage.
    pub fn percent(fraction: f64) -> Self {
        Cell::number(fraction, Unit::Percent)
    }
    /// A whole count.
    pub fn count(value: u64) -> Self {
        // Counts in reports (parameters, FLOPs, trials) stay far below 2^53, where f64 is exact.
        Cell::number(value as f64, Unit::Count)
    }
    /// Text.
    pub fn text(value: impl Into<String>) -> Self {
        Cell::Text(value.into())
    }
}

impl From<&str> for Cell {
    fn from(value: &str) -> Self {
        Cell::Text(value.to_owned())
    }
}
impl From<String> for Cell {
    fn from(value: String) -> Self {
        Cell::Text(value)
    }
}
impl From<Verdict> for Cell {
    fn from(value: Verdict) -> Self {
        Cell::Verdict(value)
    }
}

/// A table: a header row and body rows of the same width.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Table {
    /// Column names.
    pub header: Vec<String>,
    /// Body rows; each must have as many cells as `header`.
    pub rows: Vec<Vec<Cell>>,
    /// Shown under the table.
    pub caption: Option<String>,
}

impl Table {
    /// A table with column names and no rows yet.
    pub fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Self {
        Self {
            header: header.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
            caption: None,
        }
    }
    /// Appends a row (builder style).
    #[must_use]
    pub fn with_row(mut self, row: impl IntoIterator<Item = Cell>) -> Self {
        self.rows.push(row.into_iter().collect());
        self
    }
    /// Appends a row.
    pub fn push_row(&mut self, row: impl IntoIterator<Item = Cell>) {
        self.rows.push(row.into_iter().collect());
    }
    /// Sets the caption (builder style).
    #[must_use]
    pub fn with_caption(mut self, caption: impl Into<String>) -> Self {
        self.caption = Some(caption.into());
        self
    }

    /// Per column: whether it holds numbers only (numbers, p-values, empty cells), so
    /// renderers right-align it.
    pub fn numeric_columns(&self) -> Vec<bool> {
        (0..self.header.len())
            .map(|col| {
                let mut cells = self.rows.iter().filter_map(|row| row.get(col)).peekable();
                cells.peek().is_some()
                    && cells
                        .all(|c| matches!(c, Cell::Number { .. } | Cell::PValue(_) | Cell::Empty))
            })
            .collect()
    }
}

/// A plot axis: what it shows, in which unit, linear or logarithmic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Axis {
    /// What the axis shows, without unit ("Cumulative energy").
    pub label: String,
    /// Unit of the values; the renderer picks a prefix (kJ, MJ) and adds it to the label.
    pub unit: Unit,
    /// Logarithmic scale (all values must then be positive).
    pub log: bool,
}

impl Axis {
    /// A linear axis.
    pub fn new(label: impl Into<String>, unit: Unit) -> Self {
        Self {
            label: label.into(),
            unit,
            log: false,
        }
    }
    /// Makes the axis logarithmic (builder style).
    #[must_use]
    pub fn log(mut self) -> Self {
        self.log = true;
        self
    }
}

/// Lines over a numeric x axis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinePlot {
    /// Figure caption.
    pub caption: String,
    /// Horizontal axis.
    pub x: Axis,
    /// Vertical axis.
    pub y: Axis,
    /// One line per series.
    pub series: Vec<Series>,
}

/// One line of a [`LinePlot`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// `(x, y)` points, drawn in the given order.
    pub points: Vec<(f64, f64)>,
    /// Optional `(lower, upper)` per point (same length as `points`), drawn as a shaded band,
    /// e.g. the range or an interval over repetitions.
    pub band: Option<Vec<(f64, f64)>>,
}

impl Series {
    /// A series without band.
    pub fn new(label: impl Into<String>, points: Vec<(f64, f64)>) -> Self {
        Self {
            label: label.into(),
            points,
            band: None,
        }
    }
    /// Adds a band (builder style).
    #[must_use]
    pub fn with_band(mut self, band: Vec<(f64, f64)>) -> Self {
        self.band = Some(band);
        self
    }
}

/// A scatter plot with groups and an optional Pareto front.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scatter {
    /// Figure caption.
    pub caption: String,
    /// Horizontal axis.
    pub x: Axis,
    /// Vertical axis.
    pub y: Axis,
    /// The points; each group gets its own colour and legend entry.
    pub points: Vec<ScatterPoint>,
    /// Pareto-front vertices, drawn as a step line in the given order; empty for none.
    /// The report does not compute the front: pass what `greenlab-stats` computed.
    pub pareto_front: Vec<(f64, f64)>,
}

/// One point of a [`Scatter`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScatterPoint {
    /// Horizontal value.
    pub x: f64,
    /// Vertical value.
    pub y: f64,
    /// Group (legend entry, colour), e.g. the strategy or the network.
    pub group: String,
    /// Optional text drawn beside the point, e.g. "conv 4, linear 7".
    pub label: Option<String>,
}

impl ScatterPoint {
    /// A point without label.
    pub fn new(x: f64, y: f64, group: impl Into<String>) -> Self {
        Self {
            x,
            y,
            group: group.into(),
            label: None,
        }
    }
    /// Adds a label (builder style).
    #[must_use]
    pub fn with_label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }
}

/// Horizontal stacked bars: one bar per category and bar set, one segment per part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StackedBars {
    /// Figure caption.
    pub caption: String,
    /// Bar groups, top to bottom (e.g. networks).
    pub categories: Vec<String>,
    /// Segment names, left to right (e.g. conv, batch-norm, ReLU, pool, linear, optimizer).
    pub segments: Vec<String>,
    /// One bar per category for each set (e.g. "energy" and "FLOPs"), drawn side by side.
    pub sets: Vec<BarSet>,
    /// Value axis (always linear; its unit is replaced by percent when `shares` is set).
    pub value: Axis,
    /// Divide each bar by its total and show percent shares, so sets with different units
    /// (joules, FLOPs) compare on one axis.
    pub shares: bool,
}

/// One set of bars of a [`StackedBars`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BarSet {
    /// Set name, e.g. "measured energy" or "FLOP share".
    pub name: String,
    /// `values[category][segment]`, non-negative.
    pub values: Vec<Vec<f64>>,
}

impl BarSet {
    /// A bar set.
    pub fn new(name: impl Into<String>, values: Vec<Vec<f64>>) -> Self {
        Self {
            name: name.into(),
            values,
        }
    }
}

/// Means with interval whiskers, one row per cell.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntervalPlot {
    /// Figure caption.
    pub caption: String,
    /// Value axis (horizontal).
    pub value: Axis,
    /// Legend text for the whiskers, e.g. "95 % CI".
    pub interval_label: String,
    /// Cells, top to bottom.
    pub cells: Vec<IntervalCell>,
}

/// One row of an [`IntervalPlot`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IntervalCell {
    /// Row label, e.g. "conv 4 · linear 7 · ReLU on".
    pub label: String,
    /// Point estimate.
    pub mean: f64,
    /// Interval lower end (≤ mean).
    pub lower: f64,
    /// Interval upper end (≥ mean).
    pub upper: f64,
    /// Optional group for colour and legend, e.g. "conv 4".
    pub group: Option<String>,
}

impl IntervalCell {
    /// A cell without group.
    pub fn new(label: impl Into<String>, mean: f64, lower: f64, upper: f64) -> Self {
        Self {
            label: label.into(),
            mean,
            lower,
            upper,
            group: None,
        }
    }
    /// Sets the group (builder style).
    #[must_use]
    pub fn with_group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_verdict_line_says_what_it_rests_on() {
        let f = Finding::new("claim", Verdict::Reproduced, "numbers")
            .qualified("on estimated energy: the estimate follows run time");
        assert_eq!(
            f.verdict_line(),
            "reproduced, on estimated energy: the estimate follows run time"
        );
        let f = Finding::new("claim", Verdict::CannotJudge, "")
            .qualified("no energy measured (psys froze)");
        assert_eq!(
            f.verdict_line(),
            "cannot judge: no energy measured (psys froze)"
        );
        assert_eq!(
            Finding::new("c", Verdict::Inconclusive, "").verdict_line(),
            "inconclusive"
        );
    }
}
