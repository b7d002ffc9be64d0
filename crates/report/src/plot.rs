//! SVG plots drawn with `plotters` (SVG backend only, no font files needed: text is emitted as
//! SVG `<text>` and laid out by the browser).
//!
//! Each plot first validates its data. Malformed data (a band shorter than its series, NaN, an
//! interval that does not contain its mean, a log axis with a zero) is an error naming the
//! offending item; empty data is not an error but a [`Figure::NoData`] note, so a report with
//! a study that has not produced results yet still renders.

use std::ops::Range;

use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::format::{AxisScale, log_tick};
use crate::model::{Axis, IntervalPlot, LinePlot, Scatter, StackedBars, Unit};

/// Canvas width in SVG user units; the HTML scales the SVG to the card width.
const WIDTH: u32 = 960;
/// Same font stack as the page, so plots and text match.
const FONT: &str = "system-ui, -apple-system, Segoe UI, Roboto, Helvetica, Arial, sans-serif";
/// Tableau 10: distinct, colour-blind-friendly enough, prints well.
const PALETTE: [RGBColor; 10] = [
    RGBColor(0x4e, 0x79, 0xa7),
    RGBColor(0xf2, 0x8e, 0x2b),
    RGBColor(0xe1, 0x57, 0x59),
    RGBColor(0x76, 0xb7, 0xb2),
    RGBColor(0x59, 0xa1, 0x4f),
    RGBColor(0xed, 0xc9, 0x48),
    RGBColor(0xb0, 0x7a, 0xa1),
    RGBColor(0xff, 0x9d, 0xa7),
    RGBColor(0x9c, 0x75, 0x5f),
    RGBColor(0xba, 0xb0, 0xac),
];
const INK: RGBColor = RGBColor(0x2b, 0x31, 0x3b);
const MUTED: RGBColor = RGBColor(0x6b, 0x72, 0x80);
const GRID: RGBColor = RGBColor(0xe5, 0xe7, 0xeb);
const AXIS_LINE: RGBColor = RGBColor(0x9c, 0xa3, 0xaf);
const FRONT: RGBColor = RGBColor(0x11, 0x18, 0x27);
/// Longest category label drawn in full; longer ones are shortened with an ellipsis.
const MAX_LABEL_CHARS: usize = 44;

/// A rendered plot, or why there is nothing to draw.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Figure {
    /// A complete `<svg>` element.
    Svg(String),
    /// Nothing to draw; the text says what is missing.
    NoData(String),
}

/// Why a plot could not be drawn.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PlotError {
    /// The data is malformed; the text names the item and what is wrong.
    Invalid(String),
    /// plotters failed while drawing into a string (not expected to happen).
    Drawing(String),
}

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for PlotError {
    fn from(error: DrawingAreaErrorKind<E>) -> Self {
        PlotError::Drawing(error.to_string())
    }
}

type Coord = Cartesian2d<Ticked, Ticked>;

/// A linear f64 coordinate with exactly the ticks we chose. (plotters' `WithKeyPoints` over
/// its f64 range cannot take label formatters, so this small `Ranged` does both.)
#[derive(Clone)]
struct Ticked {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
}

impl Ranged for Ticked {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let span = self.hi - self.lo;
        if span == 0.0 {
            return (limit.0 + limit.1) / 2;
        }
        let fraction = (value - self.lo) / span;
        limit.0 + (f64::from(limit.1 - limit.0) * fraction + 1e-3).floor() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        // Only bold (labelled) grid lines: light lines add clutter without information.
        if hint.weight().allow_light_points() {
            Vec::new()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.lo..self.hi
    }
}
type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// Font of `px` CSS pixels (plotters' SVG backend writes `size / 1.24` as the font size).
fn font(px: f64) -> TextStyle<'static> {
    (FONT, px * 1.24).into_font().color(&INK)
}

/// Rough width of text in CSS pixels, enough to reserve label space.
fn text_width(text: &str, px: f64) -> f64 {
    text.chars().count() as f64 * px * 0.56
}

fn shorten(label: &str) -> String {
    if label.chars().count() <= MAX_LABEL_CHARS {
        label.to_owned()
    } else {
        let mut short: String = label.chars().take(MAX_LABEL_CHARS - 1).collect();
        short.push('…');
        short
    }
}

fn check_finite(value: f64, what: impl FnOnce() -> String) -> Result<(), PlotError> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(PlotError::Invalid(format!(
            "{} is {value}; drop or fix non-finite values before building the report",
            what()
        )))
    }
}

/// One numeric axis after looking at the data: its coordinate range, ticks and labels.
/// Logarithmic axes are drawn in log10 space (so one coordinate type serves both kinds).
struct AxisSpec {
    lo: f64,
    hi: f64,
    ticks: Vec<f64>,
    log: bool,
    desc: String,
    scale: AxisScale,
    step: f64,
    unit: Unit,
}

impl AxisSpec {
    fn new(axis: &Axis, name: &str, values: &[f64], pad: bool) -> Result<Self, PlotError> {
        let (mut lo, mut hi) = values
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                (lo.min(v), hi.max(v))
            });
        if !lo.is_finite() {
            // No values: a unit range keeps the axis drawable (callers report "no data" first).
            (lo, hi) = (0.0, 1.0);
        }
        if axis.log {
            if lo <= 0.0 {
                return Err(PlotError::Invalid(format!(
                    "the {name} axis '{}' is logarithmic but has the value {lo}; \
                     use a linear axis or leave out values ≤ 0",
                    axis.label
                )));
            }
            let lo_exp = lo.log10().floor();
            let mut hi_exp = hi.log10().ceil();
            if hi_exp <= lo_exp {
                hi_exp = lo_exp + 1.0;
            }
            let mut ticks = Vec::new();
            let few_decades = hi_exp - lo_exp <= 2.0;
            let mut exp = lo_exp;
            while exp <= hi_exp {
                ticks.push(exp);
                if few_decades && exp < hi_exp {
                    ticks.push(exp + 2f64.log10());
                    ticks.push(exp + 5f64.log10());
                }
                exp += 1.0;
            }
            return Ok(Self {
                lo: lo_exp,
                hi: hi_exp,
                ticks,
                log: true,
                desc: axis.label.clone(),
                scale: AxisScale::for_unit(&axis.unit, 1.0),
                step: 1.0,
                unit: axis.unit.clone(),
            });
        }
        if !(hi - lo).is_finite() {
            return Err(PlotError::Invalid(format!(
                "the {name} axis '{}' spans {lo:e} to {hi:e}, too wide to plot; \
                 check the values or use a logarithmic axis",
                axis.label
            )));
        }
        if hi - lo <= f64::EPSILON * hi.abs().max(1.0) {
            let half = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
            (lo, hi) = (lo - half, hi + half);
        } else if pad {
            let margin = (hi - lo) * 0.04;
            (lo, hi) = (lo - margin, hi + margin);
        }
        let step = nice_step((hi - lo) / 5.0);
        let lo = (lo / step).floor() * step;
        let hi = (hi / step).ceil() * step;
        let count = ((hi - lo) / step).round() as usize;
        let ticks = (0..=count).map(|i| lo + i as f64 * step).collect();
        let scale = AxisScale::for_unit(&axis.unit, lo.abs().max(hi.abs()));
        Ok(Self {
            lo,
            hi,
            ticks,
            log: false,
            desc: scale.label(&axis.label),
            scale,
            step,
            unit: axis.unit.clone(),
        })
    }

    /// The coordinate of a data value.
    fn at(&self, value: f64) -> f64 {
        if self.log { value.log10() } else { value }
    }

    fn tick_label(&self, coordinate: f64) -> String {
        if self.log {
            log_tick(10f64.powf(coordinate), &self.unit)
        } else {
            self.scale.tick(coordinate, self.step)
        }
    }

    fn range(&self) -> Ticked {
        Ticked {
            lo: self.lo,
            hi: self.hi,
            ticks: self.ticks.clone(),
        }
    }

    fn widest_tick(&self) -> f64 {
        self.ticks
            .iter()
            .map(|&t| text_width(&self.tick_label(t), 12.0))
            .fold(0.0, f64::max)
    }
}

/// 1, 2, 2.5 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    if raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let power = 10f64.powf(raw.log10().floor());
    let fraction = raw / power;
    let nice = if fraction <= 1.0 {
        1.0
    } else if fraction <= 2.0 {
        2.0
    } else if fraction <= 2.5 {
        2.5
    } else if fraction <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * power
}

/// A categorical axis of `labels`, top to bottom, each row one coordinate unit tall.
struct Rows {
    labels: Vec<String>,
}

impl Rows {
    fn count(&self) -> f64 {
        self.labels.len() as f64
    }
    /// Coordinate of the top edge of row `index` (row 0 is at the top).
    fn top(&self, index: usize) -> f64 {
        self.count() - index as f64
    }
    fn range(&self) -> Ticked {
        let ticks = (0..self.labels.len()).map(|i| self.top(i) - 0.5).collect();
        Ticked {
            lo: 0.0,
            hi: self.count(),
            ticks,
        }
    }
    fn label(&self, coordinate: f64) -> String {
        let index = (self.count() - 0.5 - coordinate).round();
        if index >= 0.0 && (index as usize) < self.labels.len() {
            shorten(&self.labels[index as usize])
        } else {
            String::new()
        }
    }
    fn width(&self) -> u32 {
        let widest = self
            .labels
            .iter()
            .map(|l| text_width(&shorten(l), 12.0))
            .fold(0.0, f64::max);
        (widest + 18.0).clamp(60.0, 340.0) as u32
    }
}

#[derive(Clone, Copy)]
enum Mark {
    Line,
    Dashed,
    Dot,
    Box,
    Whisker,
}

struct LegendEntry {
    label: String,
    color: RGBColor,
    mark: Mark,
}

impl LegendEntry {
    fn new(label: impl Into<String>, color: RGBColor, mark: Mark) -> Self {
        Self {
            label: label.into(),
            color,
            mark,
        }
    }
    fn width(&self) -> f64 {
        34.0 + text_width(&self.label, 13.0) + 18.0
    }
}

const LEGEND_ROW: u32 = 22;

/// Lays out legend entries in rows across the canvas; returns (x, row) per entry and height.
fn legend_layout(entries: &[LegendEntry]) -> (Vec<(i32, i32)>, u32) {
    let mut positions = Vec::with_capacity(entries.len());
    let (mut x, mut row) = (16.0, 0);
    for entry in entries {
        let width = entry.width();
        if x > 16.0 && x + width > f64::from(WIDTH) - 16.0 {
            x = 16.0;
            row += 1;
        }
        positions.push((x as i32, row));
        x += width;
    }
    let height = if entries.is_empty() {
        8
    } else {
        (row as u32 + 1) * LEGEND_ROW + 12
    };
    (positions, height)
}

fn draw_legend(area: &Area<'_>, entries: &[LegendEntry]) -> Result<(), PlotError> {
    let (positions, _) = legend_layout(entries);
    for (entry, &(x, row)) in entries.iter().zip(&positions) {
        let y = 10 + row * LEGEND_ROW as i32 + LEGEND_ROW as i32 / 2;
        let color = entry.color;
        match entry.mark {
            Mark::Line => area.draw(&PathElement::new(
                vec![(x, y), (x + 24, y)],
                color.stroke_width(3),
            ))?,
            Mark::Dashed => {
                for start in [x, x + 9, x + 18] {
                    area.draw(&PathElement::new(
                        vec![(start, y), (start + 6, y)],
                        color.stroke_width(2),
                    ))?;
                }
            }
            Mark::Dot => area.draw(&Circle::new((x + 12, y), 5, color.filled()))?,
            Mark::Box => area.draw(&Rectangle::new(
                [(x + 4, y - 6), (x + 20, y + 6)],
                color.filled(),
            ))?,
            Mark::Whisker => {
                let style = color.stroke_width(2);
                area.draw(&PathElement::new(vec![(x + 2, y), (x + 22, y)], style))?;
                area.draw(&PathElement::new(
                    vec![(x + 2, y - 5), (x + 2, y + 5)],
                    style,
                ))?;
                area.draw(&PathElement::new(
                    vec![(x + 22, y - 5), (x + 22, y + 5)],
                    style,
                ))?;
            }
        }
        area.draw(&Text::new(
            entry.label.clone(),
            (x + 32, y),
            font(13.0).pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
    }
    Ok(())
}

/// Draws into a fresh SVG string of the given height: legend strip on top, then `body`.
fn svg(
    height: u32,
    caption: &str,
    legend: &[LegendEntry],
    body: impl FnOnce(&Area<'_>) -> Result<(), PlotError>,
) -> Result<Figure, PlotError> {
    let (_, legend_height) = legend_layout(legend);
    let mut out = String::new();
    {
        let root =
            SVGBackend::with_string(&mut out, (WIDTH, height + legend_height)).into_drawing_area();
        root.fill(&WHITE)?;
        let (top, rest) = root.split_vertically(legend_height);
        draw_legend(&top, legend)?;
        body(&rest)?;
        root.present()?;
    }
    // Label the image for screen readers; the caption is escaped for an attribute.
    let labelled = out.replacen(
        "<svg ",
        &format!(
            "<svg role=\"img\" aria-label=\"{}\" ",
            crate::html::escape(caption)
        ),
        1,
    );
    Ok(Figure::Svg(labelled))
}

/// A chart over two axes with grid, ticks and axis titles.
fn chart<'a, 'b>(
    area: &'a Area<'b>,
    x: Ticked,
    y: Ticked,
    y_label_width: u32,
) -> Result<ChartContext<'a, SVGBackend<'b>, Coord>, PlotError> {
    Ok(ChartBuilder::on(area)
        .margin_top(8)
        .margin_right(28)
        .margin_left(8)
        .margin_bottom(6)
        .x_label_area_size(52)
        .y_label_area_size(y_label_width)
        .build_cartesian_2d(x, y)?)
}

fn mesh(
    chart: &mut ChartContext<'_, SVGBackend<'_>, Coord>,
    x_desc: &str,
    x_label: &dyn Fn(&f64) -> String,
    y_desc: Option<&str>,
    y_label: &dyn Fn(&f64) -> String,
) -> Result<(), PlotError> {
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(x_desc)
        .x_label_formatter(x_label)
        .y_label_formatter(y_label)
        .label_style(font(12.0).color(&MUTED))
        .axis_desc_style(font(13.0))
        .bold_line_style(GRID.stroke_width(1))
        .light_line_style(TRANSPARENT)
        .axis_style(AXIS_LINE.stroke_width(1));
    match y_desc {
        Some(desc) => mesh.y_desc(desc),
        // Categorical rows: no horizontal grid lines through the bars.
        None => mesh.disable_y_mesh(),
    };
    mesh.draw()?;
    Ok(())
}

/// Lines with optional bands.
pub(crate) fn line_plot(plot: &LinePlot) -> Result<Figure, PlotError> {
    let mut xs = Vec::new();
    let mut ys = Vec::new();
    for series in &plot.series {
        for (i, &(x, y)) in series.points.iter().enumerate() {
            check_finite(x, || format!("series '{}' point {i} x", series.label))?;
            check_finite(y, || format!("series '{}' point {i} y", series.label))?;
            xs.push(x);
            ys.push(y);
        }
        if let Some(band) = &series.band {
            if band.len() != series.points.len() {
                return Err(PlotError::Invalid(format!(
                    "series '{}' has {} points but its band has {} (lower, upper) pairs; \
                     give one pair per point",
                    series.label,
                    series.points.len(),
                    band.len()
                )));
            }
            for (i, &(lower, upper)) in band.iter().enumerate() {
                check_finite(lower, || {
                    format!("series '{}' band {i} lower", series.label)
                })?;
                check_finite(upper, || {
                    format!("series '{}' band {i} upper", series.label)
                })?;
                if lower > upper {
                    return Err(PlotError::Invalid(format!(
                        "series '{}' band {i} has lower {lower} above upper {upper}",
                        series.label
                    )));
                }
                ys.extend([lower, upper]);
            }
        }
    }
    if xs.is_empty() {
        return Ok(Figure::NoData(if plot.series.is_empty() {
            "no series to plot".to_owned()
        } else {
            "no data points in any series".to_owned()
        }));
    }
    let x = AxisSpec::new(&plot.x, "x", &xs, false)?;
    let y = AxisSpec::new(&plot.y, "y", &ys, false)?;
    let legend: Vec<_> = plot
        .series
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let label = if s.points.is_empty() {
                format!("{} (no data)", s.label)
            } else {
                s.label.clone()
            };
            LegendEntry::new(label, PALETTE[i % PALETTE.len()], Mark::Line)
        })
        .collect();
    svg(420, &plot.caption, &legend, |area| {
        let y_width = (y.widest_tick() + 40.0) as u32;
        let mut chart = chart(area, x.range(), y.range(), y_width)?;
        mesh(
            &mut chart,
            &x.desc,
            &|v| x.tick_label(*v),
            Some(&y.desc),
            &|v| y.tick_label(*v),
        )?;
        for (i, series) in plot.series.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            let points: Vec<(f64, f64)> = series
                .points
                .iter()
                .map(|&(px, py)| (x.at(px), y.at(py)))
                .collect();
            if let Some(band) = &series.band {
                let mut outline: Vec<(f64, f64)> = points
                    .iter()
                    .zip(band)
                    .map(|(p, b)| (p.0, y.at(b.1)))
                    .collect();
                outline.extend(points.iter().zip(band).rev().map(|(p, b)| (p.0, y.at(b.0))));
                chart.draw_series(std::iter::once(Polygon::new(outline, color.mix(0.18))))?;
            }
            chart.draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ))?;
            if points.len() <= 40 {
                chart.draw_series(points.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
            }
        }
        Ok(())
    })
}

/// Grouped points with an optional Pareto front.
pub(crate) fn scatter(plot: &Scatter) -> Result<Figure, PlotError> {
    for (i, point) in plot.points.iter().enumerate() {
        check_finite(point.x, || format!("point {i} ('{}') x", point.group))?;
        check_finite(point.y, || format!("point {i} ('{}') y", point.group))?;
    }
    for (i, &(fx, fy)) in plot.pareto_front.iter().enumerate() {
        check_finite(fx, || format!("pareto front vertex {i} x"))?;
        check_finite(fy, || format!("pareto front vertex {i} y"))?;
    }
    if plot.points.is_empty() {
        return Ok(Figure::NoData("no points to plot".to_owned()));
    }
    let mut groups: Vec<&str> = Vec::new();
    for point in &plot.points {
        if !groups.contains(&point.group.as_str()) {
            groups.push(&point.group);
        }
    }
    let xs: Vec<f64> = plot
        .points
        .iter()
        .map(|p| p.x)
        .chain(plot.pareto_front.iter().map(|p| p.0))
        .collect();
    let ys: Vec<f64> = plot
        .points
        .iter()
        .map(|p| p.y)
        .chain(plot.pareto_front.iter().map(|p| p.1))
        .collect();
    let x = AxisSpec::new(&plot.x, "x", &xs, true)?;
    let y = AxisSpec::new(&plot.y, "y", &ys, true)?;
    let mut legend: Vec<_> = groups
        .iter()
        .enumerate()
        .map(|(i, g)| LegendEntry::new(*g, PALETTE[i % PALETTE.len()], Mark::Dot))
        .collect();
    if !plot.pareto_front.is_empty() {
        legend.push(LegendEntry::new("Pareto front", FRONT, Mark::Dashed));
    }
    svg(460, &plot.caption, &legend, |area| {
        let y_width = (y.widest_tick() + 40.0) as u32;
        let mut chart = chart(area, x.range(), y.range(), y_width)?;
        mesh(
            &mut chart,
            &x.desc,
            &|v| x.tick_label(*v),
            Some(&y.desc),
            &|v| y.tick_label(*v),
        )?;
        if !plot.pareto_front.is_empty() {
            let front: Vec<(f64, f64)> = plot
                .pareto_front
                .iter()
                .map(|&(fx, fy)| (x.at(fx), y.at(fy)))
                .collect();
            chart.draw_series(DashedLineSeries::new(
                front.iter().copied(),
                7,
                4,
                FRONT.stroke_width(2),
            ))?;
            chart.draw_series(
                front
                    .iter()
                    .map(|&p| Circle::new(p, 8, FRONT.stroke_width(1))),
            )?;
        }
        for point in &plot.points {
            let group = groups.iter().position(|g| *g == point.group).unwrap_or(0);
            let color = PALETTE[group % PALETTE.len()];
            let at = (x.at(point.x), y.at(point.y));
            chart.draw_series(std::iter::once(Circle::new(at, 5, color.mix(0.9).filled())))?;
            if let Some(label) = &point.label {
                chart.draw_series(std::iter::once(
                    EmptyElement::at(at)
                        + Text::new(
                            shorten(label),
                            (9, 0),
                            font(11.0)
                                .color(&MUTED)
                                .pos(Pos::new(HPos::Left, VPos::Center)),
                        ),
                ))?;
            }
        }
        Ok(())
    })
}

/// Horizontal stacked bars, one row per category, one bar per set within a row.
pub(crate) fn stacked_bars(plot: &StackedBars) -> Result<Figure, PlotError> {
    if plot.categories.is_empty() || plot.segments.is_empty() || plot.sets.is_empty() {
        return Ok(Figure::NoData(format!(
            "nothing to stack: {} categories, {} segments, {} bar sets",
            plot.categories.len(),
            plot.segments.len(),
            plot.sets.len()
        )));
    }
    for set in &plot.sets {
        if set.values.len() != plot.categories.len() {
            return Err(PlotError::Invalid(format!(
                "bar set '{}' has values for {} categories but there are {}; \
                 give one row per category",
                set.name,
                set.values.len(),
                plot.categories.len()
            )));
        }
        for (category, row) in plot.categories.iter().zip(&set.values) {
            if row.len() != plot.segments.len() {
                return Err(PlotError::Invalid(format!(
                    "bar set '{}', category '{category}' has {} values for {} segments",
                    set.name,
                    row.len(),
                    plot.segments.len()
                )));
            }
            for (segment, &value) in plot.segments.iter().zip(row) {
                check_finite(value, || {
                    format!(
                        "bar set '{}', category '{category}', segment '{segment}'",
                        set.name
                    )
                })?;
                if value < 0.0 {
                    return Err(PlotError::Invalid(format!(
                        "bar set '{}', category '{category}', segment '{segment}' is negative \
                         ({value}); stacked bars need non-negative parts",
                        set.name
                    )));
                }
            }
        }
    }
    // Bar extents in axis units: shares divide by the bar's total (a zero total stays empty).
    let bars: Vec<Vec<Vec<f64>>> = plot
        .sets
        .iter()
        .map(|set| {
            set.values
                .iter()
                .map(|row| {
                    let total: f64 = row.iter().sum();
                    if plot.shares {
                        row.iter()
                            .map(|v| if total > 0.0 { v / total } else { 0.0 })
                            .collect()
                    } else {
                        row.clone()
                    }
                })
                .collect()
        })
        .collect();
    let max_total = bars
        .iter()
        .flatten()
        .map(|row| row.iter().sum::<f64>())
        .fold(0.0_f64, f64::max);
    let value_axis = if plot.shares {
        Axis {
            label: plot.value.label.clone(),
            unit: Unit::Percent,
            log: false,
        }
    } else {
        Axis {
            log: false,
            ..plot.value.clone()
        }
    };
    let x = AxisSpec::new(
        &value_axis,
        "value",
        &[0.0, if max_total > 0.0 { max_total } else { 1.0 }],
        false,
    )?;
    let rows = Rows {
        labels: plot.categories.clone(),
    };
    let legend: Vec<_> = plot
        .segments
        .iter()
        .enumerate()
        .map(|(i, s)| LegendEntry::new(s, PALETTE[i % PALETTE.len()], Mark::Box))
        .collect();
    let sets = plot.sets.len();
    let row_px = sets as u32 * 26 + 18;
    let height = 80 + rows.labels.len() as u32 * row_px;
    let set_label_width = if sets > 1 {
        plot.sets
            .iter()
            .map(|s| text_width(&s.name, 11.0))
            .fold(0.0, f64::max)
    } else {
        0.0
    };
    svg(height, &plot.caption, &legend, |area| {
        let set_gap = if sets > 1 {
            set_label_width as u32 + 14
        } else {
            0
        };
        let mut chart = chart(area, x.range(), rows.range(), rows.width() + set_gap)?;
        if sets > 1 {
            // Category names sit left of the bar names, so plotters' own labels stay empty.
            mesh(&mut chart, &x.desc, &|v| x.tick_label(*v), None, &|_| {
                String::new()
            })?;
            for (row_index, label) in rows.labels.iter().enumerate() {
                chart.draw_series(std::iter::once(
                    EmptyElement::at((x.lo, rows.top(row_index) - 0.5))
                        + Text::new(
                            shorten(label),
                            (-(set_gap as i32) - 8, 0),
                            font(12.0).pos(Pos::new(HPos::Right, VPos::Center)),
                        ),
                ))?;
            }
        } else {
            mesh(&mut chart, &x.desc, &|v| x.tick_label(*v), None, &|v| {
                rows.label(*v)
            })?;
        }
        let thickness = 0.84 / sets as f64;
        for (set_index, (set, set_bars)) in plot.sets.iter().zip(&bars).enumerate() {
            for (row_index, row) in set_bars.iter().enumerate() {
                let top = rows.top(row_index) - 0.08 - set_index as f64 * thickness;
                let bottom = top - thickness + 0.04;
                let mut start = 0.0;
                for (segment_index, &value) in row.iter().enumerate() {
                    let end = start + value;
                    let color = PALETTE[segment_index % PALETTE.len()];
                    chart.draw_series(std::iter::once(Rectangle::new(
                        [(start, top), (end, bottom)],
                        color.filled(),
                    )))?;
                    // Write the share inside the segment when it is wide enough to hold it.
                    let (left_px, _) = chart.backend_coord(&(start, top));
                    let (right_px, _) = chart.backend_coord(&(end, top));
                    let text = if plot.shares {
                        crate::format::percent(value)
                    } else {
                        crate::format::quantity(value, &plot.value.unit)
                    };
                    if f64::from(right_px - left_px) > text_width(&text, 11.0) + 8.0 {
                        chart.draw_series(std::iter::once(Text::new(
                            text,
                            ((start + end) / 2.0, (top + bottom) / 2.0),
                            font(11.0)
                                .color(&WHITE)
                                .pos(Pos::new(HPos::Center, VPos::Center)),
                        )))?;
                    }
                    start = end;
                }
                if sets > 1 {
                    // Name each bar of a row just left of the axis.
                    chart.draw_series(std::iter::once(
                        EmptyElement::at((x.lo, (top + bottom) / 2.0))
                            + Text::new(
                                set.name.clone(),
                                (-8, 0),
                                font(11.0)
                                    .color(&MUTED)
                                    .pos(Pos::new(HPos::Right, VPos::Center)),
                            ),
                    ))?;
                }
                if row.iter().sum::<f64>() <= 0.0 {
                    chart.draw_series(std::iter::once(Text::new(
                        "no data",
                        (0.0, (top + bottom) / 2.0),
                        font(11.0)
                            .color(&MUTED)
                            .pos(Pos::new(HPos::Left, VPos::Center)),
                    )))?;
                }
            }
        }
        Ok(())
    })
}

/// Means with interval whiskers, one row per cell.
pub(crate) fn interval_plot(plot: &IntervalPlot) -> Result<Figure, PlotError> {
    if plot.cells.is_empty() {
        return Ok(Figure::NoData("no cells to plot".to_owned()));
    }
    let mut values = Vec::with_capacity(plot.cells.len() * 2);
    for cell in &plot.cells {
        check_finite(cell.mean, || format!("cell '{}' mean", cell.label))?;
        check_finite(cell.lower, || format!("cell '{}' lower end", cell.label))?;
        check_finite(cell.upper, || format!("cell '{}' upper end", cell.label))?;
        if !(cell.lower <= cell.mean && cell.mean <= cell.upper) {
            return Err(PlotError::Invalid(format!(
                "cell '{}': the interval [{}, {}] does not contain the mean {}",
                cell.label, cell.lower, cell.upper, cell.mean
            )));
        }
        values.extend([cell.lower, cell.upper]);
    }
    let mut groups: Vec<&str> = Vec::new();
    for cell in &plot.cells {
        if let Some(group) = &cell.group
            && !groups.contains(&group.as_str())
        {
            groups.push(group);
        }
    }
    let x = AxisSpec::new(&plot.value, "value", &values, true)?;
    let rows = Rows {
        labels: plot.cells.iter().map(|c| c.label.clone()).collect(),
    };
    let mut legend: Vec<_> = groups
        .iter()
        .enumerate()
        .map(|(i, g)| LegendEntry::new(*g, PALETTE[i % PALETTE.len()], Mark::Dot))
        .collect();
    if groups.is_empty() {
        legend.push(LegendEntry::new("mean", PALETTE[0], Mark::Dot));
    }
    legend.push(LegendEntry::new(
        plot.interval_label.clone(),
        MUTED,
        Mark::Whisker,
    ));
    let height = 80 + plot.cells.len() as u32 * 30;
    svg(height, &plot.caption, &legend, |area| {
        let mut chart = chart(area, x.range(), rows.range(), rows.width())?;
        mesh(&mut chart, &x.desc, &|v| x.tick_label(*v), None, &|v| {
            rows.label(*v)
        })?;
        for (index, cell) in plot.cells.iter().enumerate() {
            let group = cell
                .group
                .as_deref()
                .and_then(|g| groups.iter().position(|x| *x == g));
            let color = PALETTE[group.unwrap_or(0) % PALETTE.len()];
            let mid = rows.top(index) - 0.5;
            let (lower, mean, upper) = (x.at(cell.lower), x.at(cell.mean), x.at(cell.upper));
            let whisker = color.stroke_width(2);
            chart.draw_series(std::iter::once(PathElement::new(
                vec![(lower, mid), (upper, mid)],
                whisker,
            )))?;
            for end in [lower, upper] {
                chart.draw_series(std::iter::once(PathElement::new(
                    vec![(end, mid - 0.22), (end, mid + 0.22)],
                    whisker,
                )))?;
            }
            chart.draw_series(std::iter::once(Circle::new((mean, mid), 5, color.filled())))?;
            chart.draw_series(std::iter::once(
                EmptyElement::at((upper, mid))
                    + Text::new(
                        crate::format::quantity(cell.mean, &plot.value.unit),
                        (8, 0),
                        font(11.0)
                            .color(&MUTED)
                            .pos(Pos::new(HPos::Left, VPos::Center)),
                    ),
            ))?;
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{BarSet, IntervalCell, ScatterPoint, Series};

    fn svg_of(figure: Result<Figure, PlotError>) -> String {
        match figure {
            Ok(Figure::Svg(svg)) => svg,
            other => panic!("expected an svg, got {other:?}"),
        }
    }

    fn invalid(figure: Result<Figure, PlotError>) -> String {
        match figure {
            Err(PlotError::Invalid(reason)) => reason,
            other => panic!("expected invalid data, got {other:?}"),
        }
    }

    fn line(series: Vec<Series>) -> LinePlot {
        LinePlot {
            caption: "energy trace".into(),
            x: Axis::new("Cumulative energy", Unit::Joules),
            y: Axis::new("Accuracy", Unit::Percent),
            series,
        }
    }

    #[test]
    fn line_plot_draws_each_series_band_and_labelled_axes() {
        let plot = line(vec![
            Series::new("bayes", vec![(1e3, 0.7), (2e4, 0.85), (5e4, 0.88)]).with_band(vec![
                (0.65, 0.75),
                (0.8, 0.9),
                (0.86, 0.9),
            ]),
            Series::new("random", vec![(1e3, 0.6), (5e4, 0.86)]),
        ]);
        let svg = svg_of(line_plot(&plot));
        assert!(
            svg.starts_with("<svg role=\"img\" aria-label=\"energy trace\""),
            "{svg:.200}"
        );
        assert!(svg.trim_end().ends_with("</svg>"));
        assert!(
            svg.contains(">\nbayes\n<") && svg.contains(">\nrandom\n<"),
            "legend labels"
        );
        for colour in ["#4E79A7", "#F28E2B"] {
            let line = format!("stroke=\"{colour}\" stroke-width=\"2\" points=");
            assert_eq!(svg.matches(&line).count(), 1, "one line in {colour}");
        }
        assert_eq!(svg.matches("<polygon").count(), 1, "one band");
        assert!(
            svg.contains("Cumulative energy (kJ)"),
            "x axis names its prefixed unit"
        );
        assert!(svg.contains("Accuracy (%)"));
    }

    #[test]
    fn log_axis_labels_decades_with_units_and_rejects_zero() {
        let mut plot = line(vec![Series::new("s", vec![(500.0, 0.5), (2e5, 0.9)])]);
        plot.x = plot.x.log();
        let svg = svg_of(line_plot(&plot));
        for tick in ["100 J", "1 kJ", "10 kJ", "100 kJ", "1 MJ"] {
            assert!(svg.contains(&format!("\n{tick}\n")), "missing tick {tick}");
        }
        plot.series[0].points[0].0 = 0.0;
        let reason = invalid(line_plot(&plot));
        assert!(
            reason.contains("logarithmic") && reason.contains("Cumulative energy"),
            "{reason}"
        );
    }

    #[test]
    fn line_plot_rejects_bad_bands_and_non_finite_points_by_name() {
        let plot = line(vec![
            Series::new("grid", vec![(1.0, 0.5), (2.0, 0.6)]).with_band(vec![(0.4, 0.6)]),
        ]);
        let reason = invalid(line_plot(&plot));
        assert!(
            reason.contains("'grid'") && reason.contains("2 points") && reason.contains("1 (lower"),
            "{reason}"
        );
        let plot = line(vec![Series::new("tpe", vec![(1.0, f64::NAN)])]);
        let reason = invalid(line_plot(&plot));
        assert!(reason.contains("'tpe' point 0 y is NaN"), "{reason}");
        let plot = line(vec![
            Series::new("x", vec![(1.0, 0.5)]).with_band(vec![(0.6, 0.4)]),
        ]);
        assert!(invalid(line_plot(&plot)).contains("lower 0.6 above upper 0.4"));
    }

    #[test]
    fn empty_line_plot_is_a_no_data_note_not_a_broken_plot() {
        assert_eq!(
            line_plot(&line(vec![])),
            Ok(Figure::NoData("no series to plot".into()))
        );
        assert_eq!(
            line_plot(&line(vec![Series::new("a", vec![])])),
            Ok(Figure::NoData("no data points in any series".into()))
        );
        // One empty series beside a full one still draws, and says which one is empty.
        let svg = svg_of(line_plot(&line(vec![
            Series::new("a", vec![]),
            Series::new("b", vec![(1.0, 0.5)]),
        ])));
        assert!(svg.contains("a (no data)"));
    }

    fn scatter_plot(points: Vec<ScatterPoint>, front: Vec<(f64, f64)>) -> Scatter {
        Scatter {
            caption: "trade-off".into(),
            x: Axis::new("Energy", Unit::Joules),
            y: Axis::new("Accuracy", Unit::Percent),
            points,
            pareto_front: front,
        }
    }

    #[test]
    fn scatter_colours_groups_labels_points_and_draws_the_front() {
        let plot = scatter_plot(
            vec![
                ScatterPoint::new(1000.0, 0.8, "SimpleCNN").with_label("conv 1"),
                ScatterPoint::new(3000.0, 0.9, "SimpleCNN"),
                ScatterPoint::new(2000.0, 0.7, "DensePolyNN"),
            ],
            vec![(1000.0, 0.8), (3000.0, 0.9)],
        );
        let svg = svg_of(scatter(&plot));
        for text in ["SimpleCNN", "DensePolyNN", "Pareto front", "conv 1"] {
            assert!(svg.contains(&format!("\n{text}\n")), "missing {text}");
        }
        // Three data points and one legend dot per group (filled), plus front rings.
        assert!(svg.matches("<circle").count() >= 3 + 2 + 2);
        assert!(svg.contains("<polyline"), "front drawn as a line");
        let without_front = svg_of(scatter(&scatter_plot(plot.points.clone(), vec![])));
        assert!(!without_front.contains("Pareto front"));
    }

    #[test]
    fn scatter_escapes_text_and_handles_empty_and_bad_data() {
        let plot = scatter_plot(
            vec![ScatterPoint::new(1.0, 0.5, "<script>alert(1)</script>")],
            vec![],
        );
        let svg = svg_of(scatter(&plot));
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert_eq!(
            scatter(&scatter_plot(vec![], vec![])),
            Ok(Figure::NoData("no points to plot".into()))
        );
        let bad = scatter_plot(vec![ScatterPoint::new(f64::INFINITY, 0.5, "g")], vec![]);
        assert!(invalid(scatter(&bad)).contains("point 0 ('g') x is inf"));
    }

    fn bars(sets: Vec<BarSet>, shares: bool) -> StackedBars {
        StackedBars {
            caption: "per layer".into(),
            categories: vec!["big".into(), "small".into()],
            segments: vec!["conv".into(), "linear".into()],
            sets,
            value: Axis::new("Energy", Unit::Joules),
            shares,
        }
    }

    #[test]
    fn stacked_bars_draw_segments_with_shares_and_bar_names() {
        let plot = bars(
            vec![
                BarSet::new("energy", vec![vec![300.0, 100.0], vec![50.0, 50.0]]),
                BarSet::new("FLOPs", vec![vec![9e9, 1e9], vec![1e9, 1e9]]),
            ],
            true,
        );
        let svg = svg_of(stacked_bars(&plot));
        for text in [
            "conv",
            "linear",
            "big",
            "small",
            "energy",
            "FLOPs",
            "75.0%",
            "90.0%",
            "Energy (%)",
        ] {
            assert!(svg.contains(&format!("\n{text}\n")), "missing {text}");
        }
        // 2 categories × 2 sets × 2 segments, plus 2 legend swatches and the background.
        assert!(svg.matches("<rect").count() >= 8 + 2);
        let absolute = svg_of(stacked_bars(&bars(
            vec![BarSet::new(
                "energy",
                vec![vec![3000.0, 1000.0], vec![500.0, 500.0]],
            )],
            false,
        )));
        assert!(absolute.contains("Energy (kJ)") && absolute.contains("\n3.00 kJ\n"));
    }

    #[test]
    fn stacked_bars_reject_misshapen_or_negative_data_and_note_empty() {
        let reason = invalid(stacked_bars(&bars(
            vec![BarSet::new("energy", vec![vec![1.0, 2.0]])],
            true,
        )));
        assert!(
            reason.contains("'energy'") && reason.contains("1 categories but there are 2"),
            "{reason}"
        );
        let reason = invalid(stacked_bars(&bars(
            vec![BarSet::new("energy", vec![vec![1.0], vec![1.0, 2.0]])],
            true,
        )));
        assert!(
            reason.contains("category 'big' has 1 values for 2 segments"),
            "{reason}"
        );
        let reason = invalid(stacked_bars(&bars(
            vec![BarSet::new("energy", vec![vec![1.0, -2.0], vec![1.0, 2.0]])],
            true,
        )));
        assert!(reason.contains("segment 'linear' is negative"), "{reason}");
        assert!(matches!(
            stacked_bars(&bars(vec![], true)),
            Ok(Figure::NoData(_))
        ));
        let zero = svg_of(stacked_bars(&bars(
            vec![BarSet::new("energy", vec![vec![0.0, 0.0], vec![1.0, 2.0]])],
            true,
        )));
        assert!(
            zero.contains("\nno data\n"),
            "a bar with nothing in it says so"
        );
    }

    fn intervals(cells: Vec<IntervalCell>) -> IntervalPlot {
        IntervalPlot {
            caption: "cells".into(),
            value: Axis::new("Energy", Unit::Joules),
            interval_label: "95 % CI".into(),
            cells,
        }
    }

    #[test]
    fn interval_plot_draws_one_whisker_and_mean_per_cell() {
        let plot = intervals(vec![
            IntervalCell::new("conv 1", 16_000.0, 15_000.0, 17_000.0).with_group("conv 1"),
            IntervalCell::new("conv 4", 38_000.0, 36_000.0, 40_000.0).with_group("conv 4"),
        ]);
        let svg = svg_of(interval_plot(&plot));
        for text in [
            "conv 1",
            "conv 4",
            "95 % CI",
            "16.0 kJ",
            "38.0 kJ",
            "Energy (kJ)",
        ] {
            assert!(svg.contains(&format!("\n{text}\n")), "missing {text}");
        }
        // Per cell: whisker + 2 caps; legend whisker: 3 lines.
        assert!(svg.matches("<polyline").count() >= 2 * 3 + 3);
    }

    #[test]
    fn interval_plot_rejects_intervals_that_miss_the_mean_and_notes_empty() {
        let reason = invalid(interval_plot(&intervals(vec![IntervalCell::new(
            "c", 5.0, 6.0, 7.0,
        )])));
        assert!(
            reason.contains("cell 'c'") && reason.contains("does not contain the mean 5"),
            "{reason}"
        );
        assert_eq!(
            interval_plot(&intervals(vec![])),
            Ok(Figure::NoData("no cells to plot".into()))
        );
    }

    #[test]
    fn long_category_labels_are_shortened() {
        let long = "x".repeat(80);
        let svg = svg_of(interval_plot(&intervals(vec![IntervalCell::new(
            long.clone(),
            1.0,
            0.5,
            1.5,
        )])));
        assert!(!svg.contains(&long));
        assert!(svg.contains('…'));
    }

    #[test]
    fn a_range_too_wide_for_f64_is_an_error_not_a_huge_tick_list() {
        let plot = line(vec![Series::new(
            "s",
            vec![(-1.5e308, 0.5), (1.5e308, 0.6)],
        )]);
        assert!(invalid(line_plot(&plot)).contains("too wide to plot"));
    }

    #[test]
    fn nice_steps() {
        assert_eq!(nice_step(0.9), 1.0);
        assert_eq!(nice_step(1.7), 2.0);
        assert_eq!(nice_step(2.2), 2.5);
        assert_eq!(nice_step(4000.0), 5000.0);
        assert_eq!(nice_step(7.0), 10.0);
    }
}
