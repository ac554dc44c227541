//! The one style of every figure (the plotters engine and the simplex SVG alike): font,
//! font sizes, palette, line widths, marker sizes, figure size and the legend's geometry.
//! No colour, font or size is defined anywhere else in `plot`.

use super::model::{Marker, Sample, Series, Stroke};
use plotters::style::{BLACK, RGBColor, WHITE};

/// The font family the figures name; the PNG renderer has it embedded.
pub const FONT_FAMILY: &str = "DejaVu Sans";
/// What the SVG asks for: the family, else the viewer's sans-serif.
pub(super) const FONT_STACK: &str = "DejaVu Sans, sans-serif";
/// DejaVu Sans (Bitstream Vera licence with DejaVu's public-domain changes; see
/// `assets/fonts/LICENSE-DejaVu.txt`).
pub(super) static FONT_TTF: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");

/// Default figure size in pixels (SVG user units; the PNG has the same size at scale 1).
pub const WIDTH: u32 = 900;
pub const HEIGHT: u32 = 600;

// Font sizes in SVG pixels.
/// The figure's title.
pub(super) const TITLE_PX: f64 = 19.0;
/// The line under the title.
pub(super) const SUBTITLE_PX: f64 = 13.0;
/// Tick labels.
pub(super) const TICK_PX: f64 = 14.0;
/// Tick labels written upwards (a category axis whose labels do not fit side by side).
pub(super) const TICK_ROTATED_PX: f64 = 12.0;
/// Axis descriptions, panel titles and the note of an empty plot.
pub(super) const DESC_PX: f64 = 15.0;
/// Legend entries and annotations.
pub(super) const LEGEND_PX: f64 = 13.0;
/// The smallest text: the ends of a colour bar.
pub(super) const SMALL_PX: f64 = 11.0;

// Palette: Okabe-Ito colours, distinguishable with the common colour-vision deficiencies,
// and greys.
pub(super) const C_MEAN: RGBColor = RGBColor(0x00, 0x72, 0xB2);
pub(super) const C_QUANTILE: RGBColor = RGBColor(0xE6, 0x9F, 0x00);
pub(super) const C_FIT: RGBColor = RGBColor(0x20, 0x20, 0x20);
pub(super) const C_CLAIM: RGBColor = RGBColor(0x00, 0x9E, 0x73);
pub(super) const C_BOUND: RGBColor = RGBColor(0xD5, 0x5E, 0x00);
pub(super) const C_PURPLE: RGBColor = RGBColor(0xCC, 0x79, 0xA7);
pub(super) const C_SKY: RGBColor = RGBColor(0x56, 0xB4, 0xE9);
pub(super) const C_EXACT: RGBColor = BLACK;
pub(super) const C_GREY: RGBColor = RGBColor(0x88, 0x88, 0x88);
/// Two colours beyond Okabe-Ito's seven (Paul Tol's wine and olive), for the ninth and tenth
/// series of [`series_style`].
pub(super) const C_WINE: RGBColor = RGBColor(0x88, 0x22, 0x55);
pub(super) const C_OLIVE: RGBColor = RGBColor(0x99, 0x99, 0x33);
/// The fitted line of a rate plot: a wide light line, so that a claimed or predicted line
/// on top of it (narrower, dashed or dotted) shows inside it.
pub(super) const C_FIT_WIDE: RGBColor = RGBColor(0xA8, 0xA8, 0xA8);
/// Subtitles, notes and outlines.
pub(super) const C_NOTE: RGBColor = RGBColor(0x55, 0x55, 0x55);
pub(super) const C_GRID: RGBColor = RGBColor(0xDD, 0xDD, 0xDD);
pub(super) const C_GRID_LIGHT: RGBColor = RGBColor(0xF0, 0xF0, 0xF0);
pub(super) const C_LEGEND_BORDER: RGBColor = RGBColor(0xAA, 0xAA, 0xAA);
/// Text, axes and frames.
pub(super) const C_INK: RGBColor = BLACK;
/// The background.
pub(super) const C_PAPER: RGBColor = WHITE;
/// Opacity of the legend's white box over the data.
pub(super) const LEGEND_OPACITY: f64 = 0.92;
/// Opacity of a filled marker's outline.
pub(super) const OUTLINE_OPACITY: f64 = 0.9;
/// Viridis at 0, 1/4, 1/2, 3/4, 1 ([`viridis`] interpolates linearly).
const VIRIDIS: [(f64, f64, f64); 5] = [
    (68.0, 1.0, 84.0),
    (59.0, 82.0, 139.0),
    (33.0, 145.0, 140.0),
    (94.0, 201.0, 98.0),
    (253.0, 231.0, 37.0),
];

/// The colour scale of the simplex plot: Viridis at `t` in [0, 1] (clamped; not finite = 0).
pub(super) fn viridis(t: f64) -> RGBColor {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let x = t * 4.0;
    let i = (x.floor() as usize).min(3);
    let f = x - i as f64;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    let mix = |p: f64, q: f64| (p + (q - p) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// A colour as SVG writes it: "#RRGGBB".
pub(super) fn hex(c: RGBColor) -> String {
    format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2)
}

// Line widths in pixels.
/// Grid, axes, error bars, outlines and plain data lines.
pub(super) const THIN: u32 = 1;
/// Fitted, claimed and bound lines, rings and crosses.
pub(super) const THICK: u32 = 2;
/// The fitted line of a rate plot, under the narrower claimed and predicted lines.
pub(super) const WIDE: u32 = 6;
/// The outline of a simplex point.
pub(super) const HAIRLINE: f64 = 0.5;

// Marker sizes in pixels.
/// Radius of a filled circle; half the side of a square; half the width of an error bar's cap.
pub(super) const MARKER_R: i32 = 4;
/// Distance from a triangle's or diamond's centre to its tip.
pub(super) const MARKER_TIP: i32 = 6;
/// Half the base of a triangle, half the width of a diamond, half the side of a cross.
pub(super) const MARKER_HALF: i32 = 5;
/// Distance from a triangle's centre to its base.
pub(super) const MARKER_BASE: i32 = 3;
/// Radius of the hollow ring (larger than the others, so that a marker inside shows).
pub(super) const RING_R: i32 = 7;
/// Length of a tick mark.
pub(super) const TICK_MARK: i32 = 5;
/// Radius of a simplex point and of the ring around the best one.
pub(super) const SIMPLEX_POINT_R: f64 = 8.0;
pub(super) const SIMPLEX_BEST_R: f64 = 12.0;

// Layout in pixels.
/// Height above the plotting area taken by the title and subtitle.
pub(super) const HEADER_H: u32 = 62;
pub(super) const MARGIN: u32 = 18;
/// Top of the title.
pub(super) const TITLE_Y: i32 = 12;
/// A legend's row height, inner padding, sample width, and the gap between its columns.
pub(super) const LEGEND_ROW: f64 = 20.0;
pub(super) const LEGEND_PAD: f64 = 8.0;
pub(super) const LEGEND_SAMPLE: f64 = 40.0;
pub(super) const LEGEND_COLUMN_GAP: f64 = 18.0;
/// Between a legend sample and its text.
pub(super) const LEGEND_TEXT_GAP: f64 = 6.0;
/// Between the legend and the plotting area's edges.
pub(super) const LEGEND_INSET: f64 = 10.0;
/// A legend that needs the y range to grow by more than this fraction of the data's range
/// (or that cannot be cleared of the data at all) goes in a band below the figure, which
/// grows by the band's height, instead of inside the plotting area.
pub(super) const LEGEND_MAX_GROWTH: f64 = 0.3;
/// Half the height of the error bar of a legend sample.
pub(super) const LEGEND_BAR: i32 = 8;

/// How one series is drawn: colour, marker and dash pattern.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct SeriesStyle {
    pub color: RGBColor,
    pub marker: Marker,
    pub stroke: Stroke,
}

/// The colours of [`series_style`], in order: Okabe-Ito without black and yellow (black is the
/// exact solution's, yellow is too light on white), grey, wine, olive, and last near-black.
const SERIES_COLORS: [RGBColor; 10] = [
    C_MEAN, C_QUANTILE, C_CLAIM, C_BOUND, C_PURPLE, C_SKY, C_GREY, C_WINE, C_OLIVE, C_FIT,
];
/// The markers of [`series_style`] (the ring is the exact solution's).
const SERIES_MARKERS: [Marker; 10] = [
    Marker::Circle,
    Marker::Triangle,
    Marker::Square,
    Marker::Diamond,
    Marker::TriangleDown,
    Marker::Cross,
    Marker::Plus,
    Marker::Star,
    Marker::HollowSquare,
    Marker::HollowDiamond,
];
/// The dash patterns of [`series_style`].
const SERIES_STROKES: [Stroke; 8] = [
    Stroke::Solid,
    Stroke::Dashed,
    Stroke::DashDotted,
    Stroke::Dotted,
    Stroke::LongDashed,
    Stroke::DashDotDotted,
    Stroke::LongDashDotted,
    Stroke::ShortDashed,
];

/// The style of the `i`-th series of a figure with several of the same kind (comparators,
/// references, paired alternatives): the first 8 differ in colour, marker and dash pattern
/// alike, the first 10 in colour and marker, and no two of the first 40 share all three
/// (colour and marker cycle by 10, dash by 8).
pub(super) const fn series_style(i: usize) -> SeriesStyle {
    SeriesStyle {
        color: SERIES_COLORS[i % SERIES_COLORS.len()],
        marker: SERIES_MARKERS[i % SERIES_MARKERS.len()],
        stroke: SERIES_STROKES[i % SERIES_STROKES.len()],
    }
}

/// How a reference line of a rate or sweep plot is drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) struct LineStyle {
    pub color: RGBColor,
    pub width: u32,
    pub stroke: Stroke,
}

impl LineStyle {
    /// A line through `pts` (axis coordinates) in this style.
    pub fn series(self, pts: Vec<(f64, f64)>) -> Series {
        Series::Line {
            pts,
            color: self.color,
            width: self.width,
            stroke: self.stroke,
        }
    }
    /// The legend sample of this style.
    pub fn sample(self) -> Sample {
        Sample::Line(self.color, self.width, self.stroke)
    }
}

/// The least-squares line fitted to the mean: wide, solid and light, drawn first.
pub(super) const FIT_LINE: LineStyle = LineStyle {
    color: C_FIT_WIDE,
    width: WIDE,
    stroke: Stroke::Solid,
};
/// The line of the claimed exponent: narrower and dashed, drawn over the fitted line.
pub(super) const CLAIM_LINE: LineStyle = LineStyle {
    color: C_CLAIM,
    width: THICK,
    stroke: Stroke::Dashed,
};
/// The claim's bound.
pub(super) const BOUND_LINE: LineStyle = LineStyle {
    color: C_BOUND,
    width: THICK,
    stroke: Stroke::DashDotted,
};
/// The predicted asymptote C n^a: dotted, over the others.
pub(super) const ASYMPTOTE_LINE: LineStyle = LineStyle {
    color: C_PURPLE,
    width: THICK,
    stroke: Stroke::Dotted,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viridis_ends_and_middle() {
        assert_eq!(hex(viridis(0.0)), "#440154");
        assert_eq!(hex(viridis(1.0)), "#FDE725");
        assert_eq!(hex(viridis(0.5)), "#21918C");
        assert_eq!(hex(viridis(f64::NAN)), "#440154");
    }
}
