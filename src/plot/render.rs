//! The engine that draws a [`Figure`] with plotters: axes and ticks, layout of the panels,
//! the legend (placed clear of the data), text measured with the embedded font, dash
//! patterns and markers. Colours, fonts and sizes come from [`super::style`].
//!
//! What plotters does here: the SVG backend, the chart's label areas and plotting area, the
//! mesh (grid lines, axes, tick marks, tick labels through our formatter, axis
//! descriptions), and every element (paths, circles, polygons, rectangles, text). What is
//! ours, and why:
//! - Ticks (`log_ticks`, `linear_ticks`, `Axis`): plotters' log axis (`.log_scale()`) puts
//!   its key points at powers of ten plus evenly spaced linear subdivisions (no 1-2-5 or
//!   2..9 minor ticks, none at all on a range within one decade), and cannot take ticks at
//!   given values (the swept gammas) or keep every k-th decade of a short panel; its
//!   linear key points depend on the label count and never step by 2.5.
//! - The coordinate (`AxisRange`): plotters' f64 coordinate maps with
//!   `floor(x + 1e-3)` / `ceil(x - 1e-3)` where we round to the nearest pixel; its
//!   `with_key_points` combinator would keep that mapping, so it would move points by a
//!   pixel.
//! - Tick labels (`Axis::label`, `format`): plotters' `FloatPrettyPrinter` writes ASCII
//!   `1e-3` with a hyphen-minus; the figures use 10⁻³, 3×10⁻², 4 significant digits and the
//!   typographic minus.
//! - The legend (`legend_size`, `legend_grid`, `draw_legend`, the corner search in `place`):
//!   plotters' `configure_series_labels` draws one column at a fixed position, sized by its
//!   font estimate, with a sample closure on every row; the figures need several columns,
//!   notes without a sample in whole rows below, the first corner free of data (else the
//!   y range grown a little to clear it, or, when that would take more than
//!   `LEGEND_MAX_GROWTH`, a band below the figure) and widths measured in the embedded font.
//! - Text measurement (`text_width`): with no font feature, plotters estimates a width of
//!   0.7 em per UTF-8 byte (γ, ≥ and superscripts count 2 or 3); its `ab_glyph` feature
//!   adds a crate, measures at plotters' internal size (1.24 times the size it writes to
//!   the SVG) truncated to whole pixels, and applies only the legacy `kern` table, whereas
//!   the PNG is laid out by resvg with full shaping. Measuring through usvg with the
//!   embedded font measures exactly what the PNG shows.
//! - Dash patterns (`dashes`): plotters' `DashedPathElement` takes one dash length and one
//!   gap, in whole pixels; the figures need dash-dot and dash-dot-dot patterns and 2.5-pixel
//!   dots, so the lines are cut into solid pieces here.
//! - Markers other than the filled circle (`draw_marker_px`): plotters' point elements are
//!   circles, triangles and crosses of its own proportions; the figures need rings,
//!   downward triangles, diamonds and squares of one size, outlined.

use super::format::{fmt_num, pow10_text, shorten, xml_escape};
use super::model::{AxisSpec, Entry, Figure, Marker, Sample, Scale, Series, Stroke};
use super::style::*;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::sync::{Arc, OnceLock};

// ---------------------------------------------------------------------------------------
// Axes: ranges and ticks.

struct Axis {
    lo: f64,
    hi: f64,
    major: Vec<f64>,
    minor: Vec<f64>,
    scale: Scale,
    labels: Vec<String>,
    plain: bool,
    /// Tick labels written upwards (a category axis whose labels do not fit side by side).
    rotated: bool,
    /// The widest labelled tick's text, in pixels, when `rotated`.
    rotated_extent: f64,
}

/// Free space between two tick labels side by side, in pixels.
pub(super) const LABEL_GAP: f64 = 8.0;
/// The room a label written upwards takes along the axis: its line height, in pixels.
pub(super) const ROTATED_LINE: f64 = TICK_ROTATED_PX * 1.15;

/// How the labels of a category axis fit when neighbouring categories are `spacing` pixels
/// apart and the labels are `widths` pixels wide: side by side if the widest fits with
/// [`LABEL_GAP`] to spare, else written upwards; upwards, every `step`-th category is
/// labelled, the smallest step that puts labels at least [`ROTATED_LINE`] apart. Returns
/// (step, rotated).
pub(super) fn category_ticks(widths: &[f64], spacing: f64) -> (usize, bool) {
    let widest = widths.iter().copied().fold(0.0, f64::max);
    if widths.is_empty() || widest + LABEL_GAP <= spacing {
        return (1, false);
    }
    let step = if spacing > 0.0 {
        ((ROTATED_LINE / spacing).ceil() as usize).max(1)
    } else {
        widths.len()
    };
    (step.min(widths.len()), true)
}

impl Axis {
    /// Lays the labels of a category axis out along `length` pixels ([`category_ticks`]):
    /// the labelled categories become the major ticks, the others minor ones.
    fn fit_categories(&mut self, length: f64) {
        let all: Vec<f64> = self.major.iter().chain(&self.minor).copied().collect();
        let widths: Vec<f64> = all
            .iter()
            .map(|&v| text_width(&self.label(v), TICK_PX))
            .collect();
        let spacing = length / (self.hi - self.lo).max(1e-9);
        let (step, rotated) = category_ticks(&widths, spacing);
        let px = if rotated { TICK_ROTATED_PX } else { TICK_PX };
        let mut sorted = all;
        sorted.sort_by(f64::total_cmp);
        self.major = sorted.iter().step_by(step).copied().collect();
        self.minor = (0..sorted.len())
            .filter(|i| i % step != 0)
            .map(|i| sorted[i])
            .collect();
        self.rotated = rotated;
        self.rotated_extent = match rotated {
            true => self
                .major
                .iter()
                .map(|&v| text_width(&self.label(v), px))
                .fold(0.0, f64::max),
            false => 0.0,
        };
    }

    /// The height the tick labels take below the axis, in pixels.
    fn label_height(&self) -> f64 {
        if self.rotated {
            self.rotated_extent
        } else {
            TICK_PX * 1.2
        }
    }

    fn new(spec: &AxisSpec, lo: f64, hi: f64) -> Axis {
        let (scale, labels, plain) = (spec.scale, &spec.labels, spec.plain);
        let (mut major, mut minor) = match scale {
            Scale::Log => log_ticks(lo, hi),
            Scale::Linear => linear_ticks(lo, hi),
            Scale::Categories => (
                (0..labels.len())
                    .map(|i| i as f64)
                    .filter(|&v| v >= lo && v <= hi)
                    .collect(),
                vec![],
            ),
        };
        if let Some(t) = &spec.ticks {
            let t: Vec<f64> = t.iter().copied().filter(|&v| v >= lo && v <= hi).collect();
            if t.len() >= 2 {
                if scale == Scale::Log {
                    minor = {
                        let (e0, e1) = (lo.floor() as i64, hi.ceil() as i64);
                        (e0..=e1)
                            .flat_map(|e| (1..10).map(move |m| e as f64 + (m as f64).log10()))
                            .filter(|&v| v >= lo && v <= hi)
                            .collect()
                    };
                }
                minor.retain(|m| !t.iter().any(|v| (v - m).abs() < 1e-9));
                major = t;
            }
        }
        if let Some(m) = spec.max_major.filter(|&m| m >= 2 && major.len() > m) {
            let decades: Vec<f64> = ((lo.ceil() as i64)..=(hi.floor() as i64))
                .map(|e| e as f64)
                .collect();
            let step = decades.len().div_ceil(m).max(1) as i64;
            let keep: Vec<f64> = decades
                .iter()
                .copied()
                .filter(|&v| (v as i64).rem_euclid(step) == 0)
                .collect();
            if scale == Scale::Log && keep.len() >= 2 {
                minor = decades.into_iter().filter(|v| !keep.contains(v)).collect();
                major = keep;
            } else {
                let step = major.len().div_ceil(m);
                major = major.into_iter().step_by(step).collect();
            }
        }
        Axis {
            lo,
            hi,
            plain: plain
                && scale == Scale::Log
                && major.iter().all(|&v| (-3.0..=4.0).contains(&v.floor())),
            major,
            minor,
            scale,
            labels: labels.to_vec(),
            rotated: false,
            rotated_extent: 0.0,
        }
    }

    fn label(&self, v: f64) -> String {
        match self.scale {
            Scale::Log if self.plain => fmt_num(10f64.powf(v)),
            Scale::Log => {
                let k = v.round();
                if (v - k).abs() < 1e-6 {
                    pow10_text(k as i64)
                } else {
                    let e = v.floor();
                    let m = (10f64.powf(v - e) * 100.0).round() / 100.0;
                    format!("{}×{}", fmt_num(m), pow10_text(e as i64))
                }
            }
            Scale::Linear => fmt_num(if v.abs() < 1e-12 { 0.0 } else { v }),
            Scale::Categories => {
                let i = v.round();
                if i >= 0.0 && (i as usize) < self.labels.len() {
                    shorten(&self.labels[i as usize], 24)
                } else {
                    String::new()
                }
            }
        }
    }
}

/// Ticks of a log axis over [lo, hi] (log10 units): labelled powers of ten (every k-th when
/// there are many decades), grid lines at 2..9 times them; on a short range, 1-2-5 or 1..9
/// times powers of ten.
fn log_ticks(lo: f64, hi: f64) -> (Vec<f64>, Vec<f64>) {
    let eps = 1e-9;
    let inside = |v: f64| v >= lo - eps && v <= hi + eps;
    let (e0, e1) = (lo.floor() as i64, hi.ceil() as i64);
    let with = |ms: &[f64]| -> Vec<f64> {
        (e0..=e1)
            .flat_map(|e| ms.iter().map(move |&m| e as f64 + m.log10()))
            .filter(|&v| inside(v))
            .collect()
    };
    let decades = with(&[1.0]);
    let all: Vec<f64> = with(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0]);
    let one_two_five = with(&[1.0, 2.0, 5.0]);
    if decades.len() >= 3 || (decades.len() == 2 && one_two_five.len() > 8) {
        let step = decades.len().div_ceil(8).max(1);
        let major: Vec<f64> = decades
            .iter()
            .copied()
            .filter(|v| (v.round() as i64).rem_euclid(step as i64) == 0)
            .collect();
        let major = if major.len() >= 2 {
            major
        } else {
            decades.clone()
        };
        let minor = if step == 1 {
            all.into_iter()
                .filter(|v| (v - v.round()).abs() > 1e-6)
                .collect()
        } else {
            decades
                .into_iter()
                .filter(|v| !major.iter().any(|m| (m - v).abs() < 1e-6))
                .collect()
        };
        return (major, minor);
    }
    if one_two_five.len() >= 3 {
        let minor = all
            .into_iter()
            .filter(|v| !one_two_five.iter().any(|m| (m - v).abs() < 1e-9))
            .collect();
        return (one_two_five, minor);
    }
    if all.len() >= 2 {
        return (all, vec![]);
    }
    // Less than one step of 1..9 in range (the range is padded to avoid this): two ends.
    (vec![lo, hi], vec![])
}

/// "Nice" ticks of a linear axis (1, 2 or 5 times a power of ten apart, about 5 of them).
fn linear_ticks(lo: f64, hi: f64) -> (Vec<f64>, Vec<f64>) {
    let span = (hi - lo).max(1e-12);
    let raw = span / 5.0;
    let p = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * p)
        .find(|s| span / s <= 6.0)
        .unwrap_or(10.0 * p);
    let first = (lo / step).ceil() as i64;
    let last = (hi / step).floor() as i64;
    let major: Vec<f64> = (first..=last).map(|i| i as f64 * step).collect();
    let minor: Vec<f64> = (first - 1..=last)
        .map(|i| (i as f64 + 0.5) * step)
        .filter(|&v| v >= lo && v <= hi)
        .collect();
    (major, minor)
}

/// Data extent of a figure along one direction, padded: 5% of the span each side, at least
/// `min_pad`; a single value gets `single` on both sides.
fn padded(
    values: impl Iterator<Item = f64>,
    min_pad: f64,
    single: f64,
    default: (f64, f64),
) -> (f64, f64) {
    let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for v in values.filter(|v| v.is_finite()) {
        lo = lo.min(v);
        hi = hi.max(v);
    }
    if lo > hi {
        return default;
    }
    if hi - lo < 1e-9 {
        return (lo - single, hi + single);
    }
    let pad = (0.05 * (hi - lo)).max(min_pad);
    (lo - pad, hi + pad)
}

fn x_values(fig: &Figure) -> impl Iterator<Item = f64> + '_ {
    fig.series
        .iter()
        .flat_map(|s| -> Box<dyn Iterator<Item = f64> + '_> {
            match s {
                Series::Points { pts, .. } => Box::new(pts.iter().map(|p| p.x)),
                Series::Line { pts, .. } => Box::new(pts.iter().map(|p| p.0)),
            }
        })
}

fn y_values(fig: &Figure) -> impl Iterator<Item = f64> + '_ {
    fig.series
        .iter()
        .flat_map(|s| -> Box<dyn Iterator<Item = f64> + '_> {
            match s {
                Series::Points { pts, .. } => Box::new(pts.iter().flat_map(|p| {
                    let mut v = vec![p.y];
                    if let Some((lo, hi)) = p.bar {
                        v.push(hi);
                        v.extend(lo);
                    }
                    v
                })),
                Series::Line { pts, .. } => Box::new(pts.iter().map(|p| p.1)),
            }
        })
}

// ---------------------------------------------------------------------------------------
// Text measurement with the embedded font (through usvg, the PNG renderer).

fn font_db() -> Arc<resvg::usvg::fontdb::Database> {
    static DB: OnceLock<Arc<resvg::usvg::fontdb::Database>> = OnceLock::new();
    DB.get_or_init(|| {
        let mut db = resvg::usvg::fontdb::Database::new();
        db.load_font_data(FONT_TTF.to_vec());
        db.set_sans_serif_family(FONT_FAMILY);
        db.set_serif_family(FONT_FAMILY);
        db.set_monospace_family(FONT_FAMILY);
        db.set_cursive_family(FONT_FAMILY);
        db.set_fantasy_family(FONT_FAMILY);
        Arc::new(db)
    })
    .clone()
}

pub(super) fn usvg_options() -> resvg::usvg::Options<'static> {
    resvg::usvg::Options {
        font_family: FONT_FAMILY.to_string(),
        fontdb: font_db(),
        ..Default::default()
    }
}

/// Width in pixels of `text` at font size `px` in the embedded font (an estimate if the
/// measurement fails).
pub(super) fn text_width(text: &str, px: f64) -> f64 {
    let estimate = 0.62 * px * text.chars().count() as f64;
    if text.trim().is_empty() {
        return 0.0;
    }
    // Measure "|text|" and subtract "||" so leading/trailing blanks and side bearings count.
    let measure = |t: &str| -> Option<f64> {
        let svg = format!(
            concat!(
                r#"<svg xmlns="http://www.w3.org/2000/svg" width="4000" height="200">"#,
                r#"<text x="10" y="100" font-family="{}" font-size="{}">{}</text></svg>"#
            ),
            FONT_FAMILY,
            px,
            xml_escape(t)
        );
        let tree = resvg::usvg::Tree::from_str(&svg, &usvg_options()).ok()?;
        let b = tree.root().abs_bounding_box();
        Some(b.width() as f64)
    };
    match (measure(&format!("|{text}|")), measure("||")) {
        (Some(a), Some(b)) if a > b => a - b,
        _ => estimate,
    }
}

// ---------------------------------------------------------------------------------------
// Rendering.

/// A plotters text style with a font size in SVG pixels (plotters divides by 1.24).
fn text_style(px: f64, color: RGBColor) -> TextStyle<'static> {
    (FONT_STACK, px * 1.24).into_font().color(&color)
}

/// A plotters coordinate of an axis: linear in axis units (log10 of the value on a log
/// axis), with our own ticks (`major`: labelled, grid; `minor`: light grid).
struct AxisRange {
    lo: f64,
    hi: f64,
    major: Vec<f64>,
    minor: Vec<f64>,
}

impl Ranged for AxisRange {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;
    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let f = (v - self.lo) / (self.hi - self.lo);
        limit.0 + (f * (limit.1 - limit.0) as f64).round() as i32
    }
    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            self.minor.clone()
        } else {
            self.major.clone()
        }
    }
    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

impl Axis {
    fn range(&self) -> AxisRange {
        AxisRange {
            lo: self.lo,
            hi: self.hi,
            major: self.major.clone(),
            minor: self.minor.clone(),
        }
    }
}

type Coord = Cartesian2d<AxisRange, AxisRange>;

/// Pixel rectangle of the plotting area: (left, top, right, bottom).
#[derive(Clone, Copy, Debug)]
struct Rect {
    l: f64,
    t: f64,
    r: f64,
    b: f64,
}

struct Layout {
    x_area: u32,
    y_area: u32,
    /// The panel's vertical extent: distance of its top from the figure's top and of its
    /// bottom from the figure's bottom (label areas included).
    top: u32,
    bottom: u32,
    /// Whether the x axis has tick labels and a description (false for an upper panel that
    /// shares the x axis of the panel below).
    x_labels: bool,
}

/// Where a panel sits in the figure and what it must agree on with the other panels.
#[derive(Clone, Copy)]
struct PanelBox {
    top: u32,
    bottom: u32,
    x_labels: bool,
    /// The y label area is at least this wide (to align stacked panels).
    min_y_area: u32,
    /// The x range (axis units) instead of the data's padded extent.
    x_range: Option<(f64, f64)>,
    /// The legend goes in a band below the figure ([`with_legend_band`]), not in a corner.
    legend_below: bool,
}

/// A figure of one panel.
const FULL_PANEL: PanelBox = PanelBox {
    top: HEADER_H,
    bottom: MARGIN - 6,
    x_labels: true,
    min_y_area: 0,
    x_range: None,
    legend_below: false,
};

fn build_chart<'a, 'b>(
    root: &'a DrawingArea<SVGBackend<'b>, plotters::coord::Shift>,
    layout: &Layout,
    x: &Axis,
    y: &Axis,
) -> Result<ChartContext<'a, SVGBackend<'b>, Coord>, String> {
    ChartBuilder::on(root)
        .margin_top(layout.top)
        .margin_right(MARGIN + 6)
        .margin_left(MARGIN)
        .margin_bottom(layout.bottom)
        .x_label_area_size(layout.x_area)
        .y_label_area_size(layout.y_area)
        .build_cartesian_2d(x.range(), y.range())
        .map_err(|e| e.to_string())
}

/// Where the plotting area of a figure lands (a dry run on a scratch backend).
fn plot_rect(layout: &Layout, x: &Axis, y: &Axis) -> Rect {
    let mut scratch = String::new();
    let root = SVGBackend::with_string(&mut scratch, (WIDTH, HEIGHT)).into_drawing_area();
    match build_chart(&root, layout, x, y) {
        Ok(chart) => {
            let (xr, yr) = chart.plotting_area().get_pixel_range();
            Rect {
                l: xr.start as f64,
                t: yr.start as f64,
                r: xr.end as f64,
                b: yr.end as f64,
            }
        }
        Err(_) => Rect {
            l: (MARGIN + layout.y_area) as f64,
            t: (layout.top + MARGIN) as f64,
            r: (WIDTH - MARGIN) as f64,
            b: (HEIGHT - layout.bottom - layout.x_area) as f64,
        },
    }
}

struct Mapping {
    rect: Rect,
    x: (f64, f64),
    y: (f64, f64),
}

impl Mapping {
    fn px(&self, (x, y): (f64, f64)) -> (f64, f64) {
        let r = &self.rect;
        (
            r.l + (x - self.x.0) / (self.x.1 - self.x.0) * (r.r - r.l),
            r.b - (y - self.y.0) / (self.y.1 - self.y.0) * (r.b - r.t),
        )
    }
    fn data(&self, (px, py): (f64, f64)) -> (f64, f64) {
        let r = &self.rect;
        (
            self.x.0 + (px - r.l) / (r.r - r.l) * (self.x.1 - self.x.0),
            self.y.0 + (r.b - py) / (r.b - r.t) * (self.y.1 - self.y.0),
        )
    }
}

/// Every drawn piece of a figure as pixel points with a radius (lines sampled every 2
/// pixels), for keeping the legend off the data.
fn ink(fig: &Figure, m: &Mapping) -> Vec<(f64, f64, f64)> {
    let mut out = Vec::new();
    let mut segment = |a: (f64, f64), b: (f64, f64), r: f64| {
        let len = ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt();
        let steps = (len / 2.0).ceil().clamp(1.0, 10_000.0) as usize;
        for i in 0..=steps {
            let f = i as f64 / steps as f64;
            out.push((a.0 + f * (b.0 - a.0), a.1 + f * (b.1 - a.1), r));
        }
    };
    for s in &fig.series {
        match s {
            Series::Points { pts, .. } => {
                for p in pts {
                    // As wide as the largest marker; a bar as wide as its caps, with a pixel
                    // to spare.
                    let c = m.px((p.x, p.y));
                    segment(c, c, RING_R as f64);
                    if let Some((lo, hi)) = p.bar {
                        let bar = (MARKER_R + 1) as f64;
                        segment(m.px((p.x, lo.unwrap_or(m.y.0))), m.px((p.x, hi)), bar);
                    }
                }
            }
            Series::Line { pts, width, .. } => {
                for w in pts.windows(2) {
                    segment(m.px(w[0]), m.px(w[1]), *width as f64 + 1.0);
                }
            }
        }
    }
    out
}

/// Width of a legend entry's sample and text.
fn entry_width(e: &Entry) -> f64 {
    let indent = if matches!(e.sample, Sample::Note) {
        0.0
    } else {
        LEGEND_SAMPLE + LEGEND_TEXT_GAP
    };
    indent + text_width(&e.text, LEGEND_PX)
}

/// Where each legend entry goes (x offset from the first column, row) and the size of the
/// grid, for a legend of several columns: entries other than notes fill the columns one
/// after another, notes follow in whole rows.
fn legend_grid(fig: &Figure) -> (Vec<(f64, usize)>, f64, usize) {
    let cols = fig.legend_columns.max(1);
    let keyed: Vec<usize> = (0..fig.legend.len())
        .filter(|&i| !matches!(fig.legend[i].sample, Sample::Note))
        .collect();
    let rows = keyed.len().div_ceil(cols);
    let mut widths = vec![0.0f64; cols];
    for (k, &i) in keyed.iter().enumerate() {
        widths[k / rows.max(1)] = widths[k / rows.max(1)].max(entry_width(&fig.legend[i]));
    }
    let used = widths.iter().filter(|&&w| w > 0.0).count();
    let mut offsets = vec![0.0; cols];
    for c in 1..cols {
        offsets[c] = offsets[c - 1] + widths[c - 1] + LEGEND_COLUMN_GAP;
    }
    let mut width = offsets[used.max(1) - 1] + widths[used.max(1) - 1];
    let mut at = vec![(0.0, 0); fig.legend.len()];
    for (k, &i) in keyed.iter().enumerate() {
        at[i] = (offsets[k / rows.max(1)], k % rows.max(1));
    }
    let mut row = rows;
    for (i, e) in fig.legend.iter().enumerate() {
        if matches!(e.sample, Sample::Note) {
            at[i] = (0.0, row);
            row += 1;
            width = width.max(entry_width(e));
        }
    }
    (at, width, row)
}

fn legend_size(fig: &Figure) -> (f64, f64) {
    if fig.legend_columns > 1 {
        let (_, w, rows) = legend_grid(fig);
        return (
            w + 2.0 * LEGEND_PAD,
            rows as f64 * LEGEND_ROW + 2.0 * LEGEND_PAD - 4.0,
        );
    }
    let w = fig.legend.iter().map(entry_width).fold(0.0, f64::max);
    (
        w + 2.0 * LEGEND_PAD,
        fig.legend.len() as f64 * LEGEND_ROW + 2.0 * LEGEND_PAD - 4.0,
    )
}

/// The x range of a figure (axis units): the data's padded extent.
fn x_range(fig: &Figure) -> (f64, f64) {
    match fig.x.scale {
        Scale::Log => padded(x_values(fig), 0.08, 0.5, (0.0, 1.0)),
        Scale::Linear => padded(x_values(fig), 0.04, 0.1, (0.0, 1.0)),
        Scale::Categories => (-0.5, fig.x.labels.len().max(1) as f64 - 0.5),
    }
}

/// A panel laid out: its axes, label areas, pixel mapping and legend box.
struct Placed {
    x_axis: Axis,
    y_axis: Axis,
    layout: Layout,
    mapping: Mapping,
    legend_at: (f64, f64),
    legend_size: (f64, f64),
    /// How much the y range grew to clear the legend's box (a fraction of the data's range).
    extension: f64,
}

/// Renders a figure to SVG text.
pub(super) fn render(fig: &Figure) -> String {
    let mut fig = fig.clone();
    let mut p = place(&fig, FULL_PANEL);
    let mut band = 0;
    if needs_band(&fig, &p) {
        fig.legend_columns = band_columns(&fig, p.mapping.rect.r - p.mapping.rect.l);
        let below = PanelBox {
            legend_below: true,
            ..FULL_PANEL
        };
        p = place(&fig, below);
        band = with_legend_band(&mut [&mut p], legend_size(&fig));
    }
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT + band)).into_drawing_area();
        let _ = draw(&root, &fig, &p);
        let _ = root.present();
    }
    tidy_font_sizes(&svg)
}

/// Whether a panel's legend goes below the figure: it needs the y range to grow by more
/// than [`LEGEND_MAX_GROWTH`] to stay clear of the data, or cannot be cleared at all.
fn needs_band(fig: &Figure, p: &Placed) -> bool {
    !fig.legend.is_empty() && fig.empty.is_none() && !(p.extension <= LEGEND_MAX_GROWTH)
}

/// The most legend columns (up to 3, and no more than the keyed entries) that fit in
/// `room` pixels side by side, for a legend in the band below the figure: the band is then
/// as short as it can be.
fn band_columns(fig: &Figure, room: f64) -> usize {
    let keyed = fig
        .legend
        .iter()
        .filter(|e| !matches!(e.sample, Sample::Note))
        .count();
    let mut trial = fig.clone();
    (1..=3usize.min(keyed.max(1)))
        .rev()
        .find(|&cols| {
            trial.legend_columns = cols;
            legend_size(&trial).0 <= room
        })
        .unwrap_or(1)
}

/// Puts the legend of the first of `panels` (top to bottom) in a band below the figure:
/// every panel keeps its pixel place (its distance from the canvas bottom grows by the
/// band), and the legend is centred under the last (lowest) plotting area. Returns the
/// band's height, by which the canvas grows.
fn with_legend_band(panels: &mut [&mut Placed], (lw, lh): (f64, f64)) -> u32 {
    let top = HEIGHT as f64 - (MARGIN - 6) as f64 + 4.0;
    let band = (4.0 + lh + MARGIN as f64).ceil() as u32;
    let (l, r) = panels.last().map_or((0.0, WIDTH as f64), |p| {
        (p.mapping.rect.l, p.mapping.rect.r)
    });
    let x = ((l + r - lw) / 2.0).max(MARGIN as f64);
    for p in panels.iter_mut() {
        p.layout.bottom += band;
    }
    if let Some(p) = panels.first_mut() {
        p.legend_at = (x, top);
    }
    band
}

/// An axis description as one line if it fits in `room` pixels at [`DESC_PX`], else as two
/// lines split at the separator (", ", " (", " ") nearest the middle.
pub(super) fn desc_lines(desc: &str, room: f64) -> Vec<String> {
    if text_width(desc, DESC_PX) <= room {
        return vec![desc.to_string()];
    }
    let mid = desc.len() / 2;
    let best = [", ", " (", " "].iter().find_map(|sep| {
        desc.match_indices(sep)
            .map(|(i, _)| i)
            .min_by_key(|&i| i.abs_diff(mid))
            .map(|i| (i, *sep))
    });
    match best {
        Some((i, sep)) => {
            let keep = if sep == ", " { 1 } else { 0 };
            vec![
                desc[..i + keep].trim_end().to_string(),
                desc[i + keep..].trim_start().to_string(),
            ]
        }
        None => vec![desc.to_string()],
    }
}

/// Where the upper and lower panels of a stacked figure sit: the lower one takes about the
/// lower third of the figure, and `extra` pixels more for tall x tick labels (written
/// upwards), taken from the upper one.
fn stacked_boxes(x_range: (f64, f64), min_y_area: u32, extra: u32) -> [PanelBox; 2] {
    let split = ((HEIGHT as f64 * 0.64).round() as u32).saturating_sub(extra);
    [
        PanelBox {
            top: HEADER_H,
            bottom: HEIGHT - split + 4,
            x_labels: false,
            min_y_area,
            x_range: Some(x_range),
            legend_below: false,
        },
        PanelBox {
            top: split + 12,
            bottom: MARGIN - 6,
            x_labels: true,
            min_y_area,
            x_range: Some(x_range),
            legend_below: false,
        },
    ]
}

/// Renders two panels that share the x axis: `upper` (title, subtitle and legend; no x tick
/// labels) above `lower`, with equal y label areas so that the plotting areas line up. The
/// upper legend takes 1, 2 or 3 columns, whichever needs the least growth of the y range to
/// stay clear of the data (fewer columns on a tie); when even that growth exceeds
/// [`LEGEND_MAX_GROWTH`], the legend goes in a band below the figure instead.
pub(super) fn render_stacked(upper: &Figure, lower: &Figure) -> String {
    let xr = x_range(upper);
    let keyed = upper
        .legend
        .iter()
        .filter(|e| !matches!(e.sample, Sample::Note))
        .count();
    // Labels written upwards under the lower panel take their height from the upper one.
    let lower_x = place(lower, stacked_boxes(xr, 0, 0)[1]).x_axis;
    let extra = (lower_x.label_height() - TICK_PX * 1.2).max(0.0).round() as u32;
    let mut upper = upper.clone();
    let mut best: Option<(f64, f64, usize)> = None;
    for cols in 1..=3usize {
        if cols > 1 && keyed <= cols {
            break;
        }
        upper.legend_columns = cols;
        let placed = place(&upper, stacked_boxes(xr, 0, extra)[0]);
        let (ext, h) = (placed.extension, placed.legend_size.1);
        // A legend that cannot be cleared of the data in any layout: the shortest one.
        let better = |(b, bh, _): (f64, f64, usize)| match ext.is_finite() || b.is_finite() {
            true => ext < b - 1e-3,
            false => h < bh - 1e-3,
        };
        if best.is_none_or(better) {
            best = Some((ext, h, cols));
        }
    }
    upper.legend_columns = best.map_or(1, |b| b.2);
    let probe = place(&upper, stacked_boxes(xr, 0, extra)[0]);
    let below = needs_band(&upper, &probe);
    if below {
        upper.legend_columns = band_columns(&upper, probe.mapping.rect.r - probe.mapping.rect.l);
    }
    let boxes = |min_y_area| {
        let mut b = stacked_boxes(xr, min_y_area, extra);
        b[0].legend_below = below;
        b
    };
    let [mut top, mut bottom] = [place(&upper, boxes(0)[0]), place(lower, boxes(0)[1])];
    let y_area = top.layout.y_area.max(bottom.layout.y_area);
    if top.layout.y_area != y_area || bottom.layout.y_area != y_area {
        [top, bottom] = [
            place(&upper, boxes(y_area)[0]),
            place(lower, boxes(y_area)[1]),
        ];
    }
    let band = match below {
        true => with_legend_band(&mut [&mut top, &mut bottom], legend_size(&upper)),
        false => 0,
    };
    let placed = [top, bottom];
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT + band)).into_drawing_area();
        let _ = draw(&root, &upper, &placed[0]);
        let _ = draw_panel(&root, lower, &placed[1]);
        let _ = root.present();
    }
    tidy_font_sizes(&svg)
}

/// Lays a figure's panel out in `b`: ranges, ticks, label areas and the legend's corner.
fn place(fig: &Figure, b: PanelBox) -> Placed {
    // Ranges.
    let (xlo, xhi) = b.x_range.unwrap_or_else(|| x_range(fig));
    let (mut ylo, yhi) = match fig.y.scale {
        Scale::Log => padded(y_values(fig), 0.08, 0.5, (-3.0, 0.0)),
        _ => padded(y_values(fig), 0.04, 0.1, (0.0, 1.0)),
    };
    let cut_bars = fig.series.iter().any(|s| match s {
        Series::Points { pts, .. } => pts.iter().any(|p| matches!(p.bar, Some((None, _)))),
        Series::Line { .. } => false,
    });
    if cut_bars {
        // Room below the lowest point, so a bar cut at the axis shows that it goes on.
        ylo -= (0.15 * (yhi - ylo)).max(0.3);
    }
    let mut x_axis = Axis::new(&fig.x, xlo, xhi);
    // The y description takes one line, or two when it is longer than the panel is high
    // (estimated from the box; `desc_lines` decides again on the final rectangle).
    let approx_height = HEIGHT as f64 - (b.top + b.bottom) as f64 - 2.0 * DESC_PX * 1.3;
    let desc_width = DESC_PX * 1.3 * desc_lines(&fig.y.desc, approx_height).len() as f64;
    let y_area = |y_axis: &Axis| -> u32 {
        let widest = y_axis
            .major
            .iter()
            .map(|&v| text_width(&y_axis.label(v), TICK_PX))
            .fold(0.0, f64::max);
        ((10.0 + widest + 12.0 + desc_width) as u32).max(b.min_y_area)
    };
    if b.x_labels && x_axis.scale == Scale::Categories {
        // The plotting area's width (the chart's margins and y label area subtracted).
        let length =
            WIDTH as f64 - (2 * MARGIN + 6) as f64 - y_area(&Axis::new(&fig.y, ylo, yhi)) as f64;
        x_axis.fit_categories(length);
    }
    let x_area = (10.0 + x_axis.label_height() + 10.0 + DESC_PX * 1.3) as u32;

    // The y axis, the label areas and the plotting rectangle for a y range.
    let setup = |lo: f64, hi: f64| {
        let y_axis = Axis::new(&fig.y, lo, hi);
        let layout = Layout {
            x_area: if b.x_labels { x_area } else { 8 },
            y_area: y_area(&y_axis),
            top: b.top,
            bottom: b.bottom,
            x_labels: b.x_labels,
        };
        let rect = plot_rect(&layout, &x_axis, &y_axis);
        (y_axis, layout, rect)
    };
    let (mut y_axis, mut layout, mut rect) = setup(ylo, yhi);
    if fig.empty.is_some() {
        // No data: no scale to read either.
        y_axis.major.clear();
        y_axis.minor.clear();
    }

    // Legend placement: the first corner free of data (upper right, lower left, upper left,
    // lower right); if none is, the corner that needs the least extension of the y range to
    // clear its box, with the range extended.
    let (lw, lh) = legend_size(fig);
    let gap = LEGEND_INSET;
    let corner_at = |r: &Rect, k: usize| -> (f64, f64) {
        let x = if k == 0 || k == 3 {
            r.r - gap - lw
        } else {
            r.l + gap
        };
        let y = if k == 0 || k == 2 {
            r.t + gap
        } else {
            r.b - gap - lh
        };
        (x, y)
    };
    let mapping_for = |rect: &Rect, y_axis: &Axis| Mapping {
        rect: *rect,
        x: (x_axis.lo, x_axis.hi),
        y: (y_axis.lo, y_axis.hi),
    };
    let fits = |rect: &Rect, y_axis: &Axis, k: usize| -> bool {
        let (x, y) = corner_at(rect, k);
        let pts = ink(fig, &mapping_for(rect, y_axis));
        !pts.iter()
            .any(|&(px, py, r)| px + r >= x && px - r <= x + lw && py + r >= y && py - r <= y + lh)
    };
    let too_wide = lw + 2.0 * gap > rect.r - rect.l || lh + 2.0 * gap > rect.b - rect.t;
    let mut corner = if fig.legend.is_empty() || fig.empty.is_some() || too_wide || b.legend_below {
        Some(0)
    } else {
        (0..4).find(|&k| fits(&rect, &y_axis, k))
    };
    if corner.is_none() {
        let m = mapping_for(&rect, &y_axis);
        let pts = ink(fig, &m);
        let h = rect.b - rect.t;
        let f = ((lh + 2.0 * gap + 4.0) / h).min(0.7);
        let mut best: Option<(f64, usize, f64, f64)> = None;
        for k in 0..4 {
            let top = k == 0 || k == 2;
            let (bx, _) = corner_at(&rect, k);
            let in_span = pts
                .iter()
                .filter(|&&(px, _, r)| px + r >= bx && px - r <= bx + lw);
            let (lo, hi) = if top {
                let yd = in_span
                    .map(|&(px, py, r)| m.data((px, py - r)).1)
                    .fold(f64::NEG_INFINITY, f64::max);
                (ylo, ((yd - f * ylo) / (1.0 - f)).max(yhi))
            } else {
                let yd = in_span
                    .map(|&(px, py, r)| m.data((px, py + r)).1)
                    .fold(f64::INFINITY, f64::min);
                (((yd - f * yhi) / (1.0 - f)).min(ylo), yhi)
            };
            let ext = (hi - lo) - (yhi - ylo);
            if ext.is_finite() && best.is_none_or(|b| ext < b.0 - 1e-9) {
                best = Some((ext, k, lo, hi));
            }
        }
        let (_, k, mut lo, mut hi) = best.unwrap_or((0.0, 0, ylo, yhi));
        for _ in 0..8 {
            (y_axis, layout, rect) = setup(lo, hi);
            if fits(&rect, &y_axis, k) {
                break;
            }
            let step = 0.06 * (hi - lo);
            if k == 0 || k == 2 {
                hi += step;
            } else {
                lo -= step;
            }
        }
        corner = Some(k);
    }
    // A legend too big for the plot, or that could not be cleared, counts as infinite growth.
    let clear = fig.legend.is_empty()
        || fig.empty.is_some()
        || b.legend_below
        || (!too_wide && fits(&rect, &y_axis, corner.unwrap_or(0)));
    let extension = if clear {
        (y_axis.hi - y_axis.lo) / (yhi - ylo) - 1.0
    } else {
        f64::INFINITY
    };
    let legend_at = corner_at(&rect, corner.unwrap_or(0));
    let mapping = Mapping {
        rect,
        x: (x_axis.lo, x_axis.hi),
        y: (y_axis.lo, y_axis.hi),
    };
    Placed {
        x_axis,
        y_axis,
        layout,
        mapping,
        legend_at,
        legend_size: (lw, lh),
        extension,
    }
}

/// Rounds the font sizes plotters writes (`size / 1.24`, e.g. "13.000000000000002") to
/// three decimals.
fn tidy_font_sizes(svg: &str) -> String {
    const KEY: &str = "font-size=\"";
    let mut out = String::with_capacity(svg.len());
    let mut rest = svg;
    while let Some(i) = rest.find(KEY) {
        out.push_str(&rest[..i + KEY.len()]);
        rest = &rest[i + KEY.len()..];
        let end = rest.find('"').unwrap_or(rest.len());
        match rest[..end].parse::<f64>() {
            Ok(v) => out.push_str(&fmt_num((v * 1000.0).round() / 1000.0)),
            Err(_) => out.push_str(&rest[..end]),
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// Draws a figure: background, title, subtitle and its panel.
fn draw(
    root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    fig: &Figure,
    placed: &Placed,
) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<_>| e.to_string();
    root.fill(&C_PAPER).map_err(e)?;
    // Title and subtitle.
    let center = Pos::new(HPos::Center, VPos::Top);
    root.draw(&Text::new(
        fig.title.clone(),
        ((WIDTH / 2) as i32, TITLE_Y),
        text_style(TITLE_PX, C_INK).pos(center),
    ))
    .map_err(e)?;
    root.draw(&Text::new(
        fig.subtitle.clone(),
        ((WIDTH / 2) as i32, TITLE_Y + (TITLE_PX * 1.45) as i32),
        text_style(SUBTITLE_PX, C_NOTE).pos(center),
    ))
    .map_err(e)?;
    draw_panel(root, fig, placed)
}

/// Draws a figure's panel: grid, axes, series, frame, note and legend.
fn draw_panel(
    root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    fig: &Figure,
    placed: &Placed,
) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<_>| e.to_string();
    let Placed {
        x_axis,
        y_axis,
        layout,
        mapping: m,
        legend_at,
        legend_size,
        ..
    } = placed;
    let (legend_at, legend_size) = (*legend_at, *legend_size);
    let mut chart = build_chart(root, layout, x_axis, y_axis)?;
    let xf = |v: &f64| {
        if layout.x_labels && !x_axis.rotated {
            x_axis.label(*v)
        } else {
            String::new()
        }
    };
    let yf = |v: &f64| y_axis.label(*v);
    let mut mesh = chart.configure_mesh();
    mesh.x_label_formatter(&xf).y_label_formatter(&yf);
    if layout.x_labels {
        mesh.x_desc(fig.x.desc.clone());
    }
    let y_lines = desc_lines(&fig.y.desc, m.rect.b - m.rect.t);
    if y_lines.len() == 1 {
        mesh.y_desc(fig.y.desc.clone());
    }
    mesh.label_style(text_style(TICK_PX, C_INK))
        .axis_desc_style(text_style(DESC_PX, C_INK))
        .bold_line_style(C_GRID.stroke_width(THIN))
        .light_line_style(C_GRID_LIGHT.stroke_width(THIN))
        .axis_style(C_INK.stroke_width(THIN))
        .set_all_tick_mark_size(TICK_MARK)
        .draw()
        .map_err(e)?;

    if y_lines.len() > 1 {
        // A long description in two lines, written upwards, centred on the panel.
        let style = text_style(DESC_PX, C_INK)
            .transform(FontTransform::Rotate270)
            .pos(Pos::new(HPos::Center, VPos::Center));
        let y = ((m.rect.t + m.rect.b) / 2.0).round() as i32;
        for (i, line) in y_lines.iter().enumerate() {
            let x = (MARGIN as f64 + DESC_PX * (0.7 + 1.3 * i as f64)).round() as i32;
            root.draw(&Text::new(line.clone(), (x, y), style.clone()))
                .map_err(e)?;
        }
    }

    if layout.x_labels && x_axis.rotated {
        // Labels written upwards, ending just below the tick mark.
        let style = text_style(TICK_ROTATED_PX, C_INK)
            .transform(FontTransform::Rotate270)
            .pos(Pos::new(HPos::Right, VPos::Center));
        let top = (m.rect.b + TICK_MARK as f64 + 5.0).round() as i32;
        for &v in &x_axis.major {
            let x = m.px((v, y_axis.lo)).0.round() as i32;
            root.draw(&Text::new(x_axis.label(v), (x, top), style.clone()))
                .map_err(e)?;
        }
    }

    // Lines first, then markers on top.
    for s in &fig.series {
        if let Series::Line {
            pts,
            color,
            width,
            stroke,
        } = s
        {
            let style = color.stroke_width(*width);
            for seg in dashes(pts, *stroke, m) {
                chart
                    .draw_series(std::iter::once(PathElement::new(seg, style)))
                    .map_err(e)?;
            }
        }
    }
    for s in &fig.series {
        if let Series::Points { pts, marker, color } = s {
            let bar = color.stroke_width(THIN);
            for p in pts {
                if let Some((lo, hi)) = p.bar {
                    let bottom = lo.unwrap_or(y_axis.lo);
                    chart
                        .draw_series(std::iter::once(PathElement::new(
                            vec![(p.x, bottom), (p.x, hi)],
                            bar,
                        )))
                        .map_err(e)?;
                    let mut caps = vec![hi];
                    caps.extend(lo);
                    chart
                        .draw_series(caps.into_iter().map(|c| {
                            EmptyElement::at((p.x, c))
                                + PathElement::new(vec![(-MARKER_R, 0), (MARKER_R, 0)], bar)
                        }))
                        .map_err(e)?;
                }
            }
            for p in pts {
                draw_marker_px(root, chart.backend_coord(&(p.x, p.y)), *marker, *color)
                    .map_err(e)?;
            }
        }
    }
    // Frame: top and right (plotters draws the left and bottom axes).
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![
                (x_axis.lo, y_axis.hi),
                (x_axis.hi, y_axis.hi),
                (x_axis.hi, y_axis.lo),
            ],
            C_INK.stroke_width(THIN),
        )))
        .map_err(e)?;

    if let Some(msg) = &fig.empty {
        let c = (
            ((m.rect.l + m.rect.r) / 2.0) as i32,
            ((m.rect.t + m.rect.b) / 2.0) as i32,
        );
        root.draw(&Text::new(
            msg.clone(),
            c,
            text_style(DESC_PX, C_NOTE).pos(Pos::new(HPos::Center, VPos::Center)),
        ))
        .map_err(e)?;
    }
    draw_legend(root, fig, legend_at, legend_size).map_err(e)
}

fn draw_legend(
    root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    fig: &Figure,
    (x, y): (f64, f64),
    (w, h): (f64, f64),
) -> Result<(), DrawingAreaErrorKind<std::io::Error>> {
    if fig.legend.is_empty() {
        return Ok(());
    }
    let (x0, y0) = (x.round() as i32, y.round() as i32);
    let corners = [(x0, y0), (x0 + w.round() as i32, y0 + h.round() as i32)];
    root.draw(&Rectangle::new(
        corners,
        C_PAPER.mix(LEGEND_OPACITY).filled(),
    ))?;
    root.draw(&Rectangle::new(corners, C_LEGEND_BORDER.stroke_width(THIN)))?;
    let grid: Vec<(f64, usize)> = if fig.legend_columns > 1 {
        legend_grid(fig).0
    } else {
        (0..fig.legend.len()).map(|i| (0.0, i)).collect()
    };
    for (entry, &(dx, i)) in fig.legend.iter().zip(&grid) {
        let cy = y0 + (LEGEND_PAD + LEGEND_ROW * (i as f64 + 0.5) - 2.0).round() as i32;
        let sx = x0 + LEGEND_PAD as i32 + dx.round() as i32;
        let sw = LEGEND_SAMPLE as i32;
        let c = (sx + sw / 2, cy);
        // A line across the sample's width.
        let line = |color: &RGBColor,
                    width: u32,
                    dash: Stroke|
         -> Result<(), DrawingAreaErrorKind<std::io::Error>> {
            let unit = Mapping {
                rect: Rect {
                    l: 0.0,
                    t: 0.0,
                    r: 1.0,
                    b: 1.0,
                },
                x: (0.0, 1.0),
                y: (1.0, 0.0),
            };
            let ends = [(sx as f64, cy as f64), ((sx + sw) as f64, cy as f64)];
            for seg in dashes(&ends, dash, &unit) {
                let seg: Vec<(i32, i32)> = seg
                    .into_iter()
                    .map(|(a, b)| (a.round() as i32, b.round() as i32))
                    .collect();
                root.draw(&PathElement::new(seg, color.stroke_width(width)))?;
            }
            Ok(())
        };
        match &entry.sample {
            Sample::Marker(marker, color, bar) => {
                if *bar {
                    let s = color.stroke_width(THIN);
                    let (top, bottom) = (cy - LEGEND_BAR, cy + LEGEND_BAR);
                    root.draw(&PathElement::new(vec![(c.0, top), (c.0, bottom)], s))?;
                    for end in [top, bottom] {
                        root.draw(&PathElement::new(
                            vec![(c.0 - MARKER_R, end), (c.0 + MARKER_R, end)],
                            s,
                        ))?;
                    }
                }
                match marker {
                    // The legend's upward triangle has no outline.
                    Marker::Triangle => {
                        root.draw(&Polygon::new(polygon(*marker, c), color.filled()))?
                    }
                    other => draw_marker_px(root, c, *other, *color)?,
                }
            }
            Sample::LineMarker(color, width, dash, marker) => {
                if let Some(dash) = dash {
                    line(color, *width, *dash)?;
                }
                draw_marker_px(root, c, *marker, *color)?;
            }
            Sample::Line(color, width, dash) => line(color, *width, *dash)?,
            Sample::Note => {}
        }
        let (tx, color) = match entry.sample {
            Sample::Note => (sx, C_NOTE),
            _ => (sx + sw + LEGEND_TEXT_GAP as i32, C_INK),
        };
        root.draw(&Text::new(
            entry.text.clone(),
            (tx, cy),
            text_style(LEGEND_PX, color).pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
    }
    Ok(())
}

/// The corners of a polygon marker (triangles and the diamond) centred on pixel `c`.
fn polygon(marker: Marker, (x, y): (i32, i32)) -> Vec<(i32, i32)> {
    let (tip, half, base) = (MARKER_TIP, MARKER_HALF, MARKER_BASE);
    match marker {
        Marker::Triangle => vec![(x, y - tip), (x - half, y + base), (x + half, y + base)],
        Marker::TriangleDown => vec![(x, y + tip), (x - half, y - base), (x + half, y - base)],
        Marker::Star => (0..10)
            .map(|k| {
                // Outer points at the tip's distance, inner ones at 0.45 of it.
                let r = if k % 2 == 0 {
                    tip as f64 + 1.0
                } else {
                    0.45 * (tip as f64 + 1.0)
                };
                let a = std::f64::consts::PI * (k as f64 / 5.0 - 0.5);
                (
                    x + (r * a.cos()).round() as i32,
                    y + (r * a.sin()).round() as i32,
                )
            })
            .collect(),
        _ => vec![(x, y - tip), (x + half, y), (x, y + tip), (x - half, y)],
    }
}

/// Draws a marker centred on pixel `c` of the figure.
fn draw_marker_px(
    root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    c: (i32, i32),
    marker: Marker,
    color: RGBColor,
) -> Result<(), DrawingAreaErrorKind<std::io::Error>> {
    let (x, y) = c;
    match marker {
        Marker::Circle => {
            root.draw(&Circle::new(c, MARKER_R, color.filled()))?;
            root.draw(&Circle::new(c, MARKER_R, C_PAPER.stroke_width(THIN)))
        }
        Marker::Triangle | Marker::TriangleDown | Marker::Diamond | Marker::Star => {
            let pts = polygon(marker, c);
            root.draw(&Polygon::new(pts.clone(), color.filled()))?;
            let mut ring = pts.clone();
            ring.push(pts[0]);
            root.draw(&PathElement::new(
                ring,
                color.mix(OUTLINE_OPACITY).stroke_width(THIN),
            ))
        }
        Marker::Ring => root.draw(&Circle::new(c, RING_R, color.stroke_width(THICK))),
        Marker::Square => root.draw(&Rectangle::new(
            [(x - MARKER_R, y - MARKER_R), (x + MARKER_R, y + MARKER_R)],
            color.filled(),
        )),
        Marker::Cross => {
            let (h, s) = (MARKER_HALF, color.stroke_width(THICK));
            root.draw(&PathElement::new(vec![(x - h, y - h), (x + h, y + h)], s))?;
            root.draw(&PathElement::new(vec![(x - h, y + h), (x + h, y - h)], s))
        }
        Marker::HollowSquare => root.draw(&Rectangle::new(
            [(x - MARKER_R, y - MARKER_R), (x + MARKER_R, y + MARKER_R)],
            color.stroke_width(THICK),
        )),
        Marker::HollowDiamond => {
            let mut ring = polygon(Marker::Diamond, c);
            ring.push(ring[0]);
            root.draw(&PathElement::new(ring, color.stroke_width(THICK)))
        }
        Marker::Plus => {
            let (h, s) = (MARKER_TIP, color.stroke_width(THICK));
            root.draw(&PathElement::new(vec![(x - h, y), (x + h, y)], s))?;
            root.draw(&PathElement::new(vec![(x, y - h), (x, y + h)], s))
        }
    }
}

/// Splits a polyline (axis coordinates) into the drawn pieces of a dash pattern measured in
/// pixels (through `m`).
fn dashes(pts: &[(f64, f64)], dash: Stroke, m: &Mapping) -> Vec<Vec<(f64, f64)>> {
    let pattern: &[f64] = match dash {
        Stroke::Solid => return vec![pts.to_vec()],
        Stroke::Dashed => &[9.0, 5.0],
        Stroke::DashDotted => &[10.0, 4.0, 2.0, 4.0],
        Stroke::Dotted => &[2.5, 3.5],
        Stroke::LongDashed => &[16.0, 5.0],
        Stroke::DashDotDotted => &[9.0, 3.0, 2.0, 3.0, 2.0, 3.0],
        Stroke::LongDashDotted => &[18.0, 4.0, 2.5, 4.0],
        Stroke::ShortDashed => &[4.5, 3.5],
    };
    let mut out = Vec::new();
    let (mut k, mut left, mut on) = (0usize, pattern[0], true);
    let mut current: Vec<(f64, f64)> = pts.first().map(|&p| vec![p]).unwrap_or_default();
    for w in pts.windows(2) {
        let (a, b) = (m.px(w[0]), m.px(w[1]));
        let len = ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt();
        let mut pos = 0.0;
        while len - pos > left {
            pos += left;
            let f = pos / len;
            let p = m.data((a.0 + f * (b.0 - a.0), a.1 + f * (b.1 - a.1)));
            if on {
                current.push(p);
                out.push(std::mem::take(&mut current));
            } else {
                current = vec![p];
            }
            on = !on;
            k = (k + 1) % pattern.len();
            left = pattern[k];
        }
        left -= len - pos;
        if on {
            current.push(w[1]);
        }
    }
    if on && current.len() > 1 {
        out.push(current);
    }
    out
}
