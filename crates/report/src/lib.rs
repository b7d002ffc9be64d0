//! Renders greenlab results as a report a person would rather look at than read: a
//! self-contained HTML page with SVG plots, or Markdown, or JSON.
//!
//! The crate knows nothing about training, tuning or statistics (it depends on no other
//! greenlab crate). Callers build a [`Report`] — sections of [`Block`]s: findings with a
//! [`Verdict`], tables of [`Cell`]s whose numbers carry a [`Unit`], line plots with bands,
//! scatter plots with a Pareto front, stacked bars, interval plots, key/value lists and code —
//! and pick a renderer. It does not compute anything: Pareto fronts, intervals and p-values
//! come from `greenlab-stats`; this crate only formats and draws them.
//!
//! Plots are drawn with `plotters` into inline SVG; the HTML has inline CSS, no scripts and a
//! Content-Security-Policy that forbids every fetch, so it opens offline and prints cleanly.
//! Malformed data (a NaN, a band shorter than its line, a log axis with a zero, a table row
//! with a missing cell) is an error naming the section and block; empty data renders as an
//! explicit "no data" note instead of an empty plot.
//!
//! ```
//! use greenlab_report::{Axis, Cell, Finding, LinePlot, Report, Section, Series, Table, Unit, Verdict};
//!
//! let report = Report::new("Quick replication").with_section(
//!     Section::new("RQ1: tuning strategies")
//!         .with(Finding::new(
//!             "Bayesian optimisation needs less energy than random search",
//!             Verdict::Reproduced,
//!             "99% of the best accuracy with 41% of the energy (p = 0.004)",
//!         ))
//!         .with(
//!             Table::new(["strategy", "best accuracy", "energy"])
//!                 .with_row([Cell::text("bayes"), Cell::percent(0.871), Cell::joules(41_260.0)]),
//!         )
//!         .with(LinePlot {
//!             caption: "Best-so-far accuracy against cumulative energy".into(),
//!             x: Axis::new("Cumulative energy", Unit::Joules),
//!             y: Axis::new("Best accuracy", Unit::Percent),
//!             series: vec![Series::new("bayes", vec![(1e3, 0.80), (5e3, 0.86), (4e4, 0.87)])],
//!         }),
//! );
//! let html = greenlab_report::render_html(&report)?;
//! assert!(html.contains("<svg") && html.contains("41.3 kJ"));
//! let markdown = greenlab_report::render_markdown(&report);
//! assert!(markdown.contains("**reproduced**"));
//! # Ok::<(), greenlab_report::ReportError>(())
//! ```
//!
//! # Filling a report from greenlab results
//!
//! - Findings: one [`Finding`] per claim of the paper, the verdict decided by the caller from
//!   the statistics, the evidence written with [`mod@format`] (`format::energy`, `format::p_value`)
//!   so it matches the tables. The HTML page lists them all at the top.
//! - Best-so-far curves (RQ1): one [`Series`] per strategy over the comparison's energy grid,
//!   keeping the grid points where the median (and band ends) exist, band = (lower, upper);
//!   `Axis::new("Cumulative energy", Unit::Joules).log()` when budgets span decades.
//! - Trade-off scatter: one [`ScatterPoint`] per configuration (group = network or strategy),
//!   `pareto_front` = the front points from the statistics, cheapest first.
//! - Per-layer breakdown: [`StackedBars`] with one category per network, segments = layer
//!   types, sets "energy" (joules) and "FLOPs", `shares: true`.
//! - Factorial cells: one [`IntervalCell`] per cell mean with its confidence interval.
//! - ANOVA, summaries, strategy tables: [`Table`] with [`Cell::joules`], [`Cell::percent`],
//!   [`Cell::PValue`], [`Cell::count`], [`Cell::Empty`] for gaps.
//! - Configuration: [`Block::KeyValues`]; the command line: [`Block::Code`].

use std::io::Write as _;
use std::path::{Path, PathBuf};

pub mod example;
pub mod format;
mod html;
mod markdown;
mod model;
mod plot;

pub use model::{
    Axis, BarSet, Block, Cell, Finding, IntervalCell, IntervalPlot, LinePlot, Report, Scatter,
    ScatterPoint, Section, Series, StackedBars, Table, Unit, Verdict,
};

/// What can go wrong while rendering or writing a report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// A block's data is malformed; nothing was written.
    #[error("report section '{section}', {block}: {reason}")]
    InvalidBlock {
        /// Heading of the section holding the block.
        section: String,
        /// Which block (position, kind, caption).
        block: String,
        /// What is wrong and how to fix it.
        reason: String,
    },
    /// The plotting library failed while drawing into memory (a bug, not bad input).
    #[error("cannot draw {block}: {message}; please report this as a greenlab bug")]
    Plot {
        /// Which block.
        block: String,
        /// The plotting library's message.
        message: String,
    },
    /// The report could not be serialised as JSON.
    #[error("cannot serialise the report as json: {0}")]
    Json(#[from] serde_json::Error),
    /// A format name that is not html, md or json.
    #[error("unknown report format '{0}'; use html, md or json")]
    UnknownFormat(String),
    /// The output file could not be written; any previous file at `path` is unchanged.
    #[error("cannot write {}: {source}; check that the folder exists and is writable", path.display())]
    Write {
        /// The file (or its temporary sibling) that failed.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// An output format, as a command line names it (`--format html|md|json`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Self-contained HTML ([`render_html`]).
    Html,
    /// GitHub-flavoured Markdown ([`render_markdown`]).
    Markdown,
    /// The document model as JSON ([`render_json`]).
    Json,
}

impl Format {
    /// The usual file extension, without dot: "html", "md", "json".
    pub fn extension(self) -> &'static str {
        match self {
            Format::Html => "html",
            Format::Markdown => "md",
            Format::Json => "json",
        }
    }
}

impl std::str::FromStr for Format {
    type Err = ReportError;

    /// Accepts "html", "md"/"markdown" and "json", in any case.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name.to_ascii_lowercase().as_str() {
            "html" | "htm" => Ok(Format::Html),
            "md" | "markdown" => Ok(Format::Markdown),
            "json" => Ok(Format::Json),
            _ => Err(ReportError::UnknownFormat(name.to_owned())),
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.extension())
    }
}

/// Renders `report` in `format`.
///
/// # Errors
/// As [`render_html`] and [`render_json`].
pub fn render(report: &Report, format: Format) -> Result<String, ReportError> {
    match format {
        Format::Html => render_html(report),
        Format::Markdown => Ok(render_markdown(report)),
        Format::Json => render_json(report),
    }
}

/// Renders `report` in `format` and writes it to `path` atomically (see [`write_atomically`]).
///
/// # Errors
/// As [`render`] and [`write_atomically`]; on error nothing is written.
pub fn write_report(report: &Report, format: Format, path: &Path) -> Result<(), ReportError> {
    write_atomically(path, render(report, format)?)
}

/// Renders a self-contained HTML page: inline CSS and SVG plots, no scripts, no network.
///
/// # Errors
/// [`ReportError::InvalidBlock`] when a table row is narrower or wider than its header, or a
/// plot has non-finite values, bands or intervals that do not fit their data, or a log axis
/// with values ≤ 0.
pub fn render_html(report: &Report) -> Result<String, ReportError> {
    html::render(report)
}

/// Renders GitHub-flavoured Markdown. Plots become compact tables of their data. Never fails:
/// malformed values are shown as they are ("n/a" for NaN) so a text report is always available.
pub fn render_markdown(report: &Report) -> String {
    markdown::render(report)
}

/// Renders the document model as pretty-printed JSON (the [`Report`] itself, serde's
/// externally tagged enums, numbers in base units: joules, seconds, fractions).
///
/// # Errors
/// [`ReportError::Json`] when serialisation fails. Non-finite numbers become `null`, which
/// [`Report`] cannot read back, so callers that want round trips keep values finite.
pub fn render_json(report: &Report) -> Result<String, ReportError> {
    Ok(serde_json::to_string_pretty(report)?)
}

/// Writes `contents` to `path` atomically: a temporary file in the same folder is written,
/// flushed to disk and renamed over `path`, so readers see the old file or the new one,
/// never half of one. The folder must exist.
///
/// # Errors
/// [`ReportError::Write`] naming the path; the temporary file is removed on failure.
pub fn write_atomically(path: &Path, contents: impl AsRef<[u8]>) -> Result<(), ReportError> {
    let file_name = path.file_name().ok_or_else(|| ReportError::Write {
        path: path.to_owned(),
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the path has no file name",
        ),
    })?;
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(file_name);
    temp_name.push(format!(".{}.tmp", std::process::id()));
    let temp = folder.join(temp_name);
    let fail = |target: &Path, source| ReportError::Write {
        path: target.to_owned(),
        source,
    };

    let result = (|| {
        let mut file = std::fs::File::create(&temp).map_err(|e| fail(&temp, e))?;
        file.write_all(contents.as_ref())
            .map_err(|e| fail(&temp, e))?;
        file.sync_all().map_err(|e| fail(&temp, e))?;
        std::fs::rename(&temp, path).map_err(|e| fail(path, e))
    })();
    if result.is_err() {
        // Best effort: the temporary may not exist if creating it was what failed.
        let _ = std::fs::remove_file(&temp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_atomically_replaces_the_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.html");
        std::fs::write(&path, "old contents that are longer than the new ones").unwrap();
        write_atomically(&path, "new").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(
            leftovers.len(),
            1,
            "temporary file left behind: {leftovers:?}"
        );
    }

    #[test]
    fn write_atomically_into_a_missing_folder_names_it_and_keeps_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("missing").join("report.html");
        let error = write_atomically(&path, "x").unwrap_err();
        let message = error.to_string();
        assert!(message.contains("missing"), "{message}");
        assert!(
            message.contains("check that the folder exists"),
            "{message}"
        );
        assert!(!path.exists());
    }

    #[test]
    fn formats_parse_from_their_names_and_render() {
        assert_eq!("MD".parse::<Format>().unwrap(), Format::Markdown);
        assert_eq!("markdown".parse::<Format>().unwrap(), Format::Markdown);
        assert_eq!("html".parse::<Format>().unwrap().extension(), "html");
        let error = "pdf".parse::<Format>().unwrap_err().to_string();
        assert_eq!(error, "unknown report format 'pdf'; use html, md or json");
        let dir = tempfile::tempdir().unwrap();
        let report = example::report();
        for format in [Format::Html, Format::Markdown, Format::Json] {
            let path = dir.path().join(format!("report.{format}"));
            write_report(&report, format, &path).unwrap();
            let written = std::fs::read_to_string(&path).unwrap();
            assert_eq!(written, render(&report, format).unwrap());
        }
    }

    #[test]
    fn an_invalid_report_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("report.html");
        let report =
            Report::new("t").with_section(Section::new("s").with(Table::new(["a"]).with_row([])));
        assert!(write_report(&report, Format::Html, &path).is_err());
        assert!(!path.exists());
    }

    #[test]
    fn json_round_trips_the_whole_model() {
        let report = example::report();
        let json = render_json(&report).unwrap();
        let back: Report = serde_json::from_str(&json).unwrap();
        // Exact, thanks to serde_json's float_roundtrip feature: no value drifts by an ulp.
        assert_eq!(back, report);
        assert!(json.contains("\"line_plot\""), "blocks are tagged by kind");
    }
}
