//! The figure model: what a figure shows, in axis coordinates (log10 of the value on a log
//! axis). Data only; `render` draws it. Also the one place that reads a cell's gamma rule.

use crate::result::CellResult;
use plotters::style::RGBColor;

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Marker {
    Circle,
    Triangle,
    /// Hollow circle, larger than the others, so that a marker at the same place shows
    /// inside it.
    Ring,
    TriangleDown,
    Square,
    Diamond,
    Cross,
    Plus,
    /// A five-pointed star.
    Star,
    /// Outlined, not filled.
    HollowSquare,
    HollowDiamond,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Stroke {
    Solid,
    Dashed,
    DashDotted,
    Dotted,
    LongDashed,
    DashDotDotted,
    LongDashDotted,
    ShortDashed,
}

/// A point with an optional error bar; `lo = None` means the bar reaches below the axis
/// (its lower end is <= 0 on a log axis) and is cut there.
#[derive(Clone, Copy)]
pub(super) struct Pt {
    pub x: f64,
    pub y: f64,
    pub bar: Option<(Option<f64>, f64)>,
}

#[derive(Clone)]
pub(super) enum Series {
    Points {
        pts: Vec<Pt>,
        marker: Marker,
        color: RGBColor,
    },
    Line {
        pts: Vec<(f64, f64)>,
        color: RGBColor,
        width: u32,
        stroke: Stroke,
    },
}

impl Series {
    pub fn points(pts: Vec<Pt>, marker: Marker, color: RGBColor) -> Series {
        Series::Points { pts, marker, color }
    }
}

#[derive(Clone)]
pub(super) enum Sample {
    /// A marker, with an error bar if `true`.
    Marker(Marker, RGBColor, bool),
    Line(RGBColor, u32, Stroke),
    /// A line (if any) with a marker on it.
    LineMarker(RGBColor, u32, Option<Stroke>, Marker),
    Note,
}

#[derive(Clone)]
pub(super) struct Entry {
    pub sample: Sample,
    pub text: String,
}

impl Entry {
    /// A legend line of text without a sample.
    pub fn note(text: String) -> Entry {
        Entry {
            sample: Sample::Note,
            text,
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
pub(super) enum Scale {
    Log,
    Linear,
    /// Linear, ticks at the integers 0..labels.len(), labelled with `labels`.
    Categories,
}

#[derive(Clone)]
pub(super) struct AxisSpec {
    pub scale: Scale,
    pub desc: String,
    pub labels: Vec<String>,
    /// Log axis labelled with plain numbers (0.1, 1, 10) where they are short.
    pub plain: bool,
    /// Labelled ticks at these values (axis coordinates) instead of the automatic ones.
    pub ticks: Option<Vec<f64>>,
    /// At most this many labelled ticks (a log axis keeps every k-th power of ten), for a
    /// short panel.
    pub max_major: Option<usize>,
}

impl AxisSpec {
    /// An axis of `scale` described by `desc`, with automatic ticks.
    pub fn new(scale: Scale, desc: String) -> AxisSpec {
        AxisSpec {
            scale,
            desc,
            labels: vec![],
            plain: false,
            ticks: None,
            max_major: None,
        }
    }

    pub fn log(desc: String) -> AxisSpec {
        AxisSpec::new(Scale::Log, desc)
    }
}

#[derive(Clone)]
pub(super) struct Figure {
    pub title: String,
    pub subtitle: String,
    pub x: AxisSpec,
    pub y: AxisSpec,
    pub series: Vec<Series>,
    pub legend: Vec<Entry>,
    /// Shown in the middle of the plot when there is nothing to draw.
    pub empty: Option<String>,
    /// Columns of the legend (filled column by column; notes take whole rows below).
    pub legend_columns: usize,
}

impl Figure {
    /// A figure with nothing drawn yet and a one-column legend.
    pub fn new(title: String, subtitle: String, x: AxisSpec, y: AxisSpec) -> Figure {
        Figure {
            title,
            subtitle,
            x,
            y,
            series: vec![],
            legend: vec![],
            empty: None,
            legend_columns: 1,
        }
    }

    /// A curve: a thin solid line through its points' markers, and its legend entry.
    pub fn push_curve(&mut self, pts: Vec<Pt>, marker: Marker, color: RGBColor, name: String) {
        self.series.push(Series::Line {
            pts: pts.iter().map(|p| (p.x, p.y)).collect(),
            color,
            width: super::style::THIN,
            stroke: Stroke::Solid,
        });
        self.series.push(Series::Points { pts, marker, color });
        self.legend.push(Entry {
            sample: Sample::LineMarker(color, super::style::THIN, Some(Stroke::Solid), marker),
            text: name,
        });
    }
}

/// log10 of a value that can go on a log axis.
pub(super) fn lg(v: f64) -> Option<f64> {
    (v.is_finite() && v > 0.0).then(|| v.log10())
}

/// A point at (`x`, log10 `mean`) with the interval [`ci_low`, `ci_high`] as its error bar
/// (cut at the axis when `ci_low` is <= 0), on a log y axis; `None` if `mean` is <= 0.
pub(super) fn mean_point(x: f64, mean: f64, ci_low: f64, ci_high: f64) -> Option<Pt> {
    let y = lg(mean)?;
    Some(Pt {
        x,
        y,
        bar: Some((
            lg(ci_low).map(|l| l.min(y)),
            lg(ci_high).unwrap_or(y).max(y),
        )),
    })
}

/// How many of `pts` have an error bar cut at the axis.
pub(super) fn cut_bars(pts: &[Pt]) -> usize {
    pts.iter()
        .filter(|p| matches!(p.bar, Some((None, _))))
        .count()
}

/// A cell's regularisation as the figures read it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum GammaView {
    Fixed(f64),
    /// gamma(n) = c n^p.
    Schedule {
        c: f64,
        p: f64,
    },
}

/// The one reader of `CellResult::gamma`.
pub(super) fn gamma_of(cell: &CellResult) -> GammaView {
    match cell.gamma {
        crate::spec::GammaRule::Fixed(g) => GammaView::Fixed(g),
        crate::spec::GammaRule::Schedule(s) => GammaView::Schedule { c: s.c, p: s.p },
    }
}
