//! Figures of results: log-log rate plots of one cell and sweep plots over the cells of a
//! result, as SVG (drawn with plotters) and PNG (the SVG rasterised with resvg).
//!
//! Text is set in DejaVu Sans. The SVG names the family (viewers without it fall back to
//! sans-serif); the PNG is rendered with the copy embedded in the binary
//! (`assets/fonts/DejaVuSans.ttf`, Bitstream Vera / DejaVu licence beside it), never with a
//! system font, so PNGs are identical on every machine.
//!
//! Values that cannot sit on a log axis (zero or negative gaps, non-finite numbers) are left
//! out, and the legend says how many; odd results (one n level, equal values, all-zero gaps,
//! a missing exponent) give a figure with a note, never a panic.

mod simplex;
pub use simplex::simplex_plot_svg;

use crate::result::{CellResult, ResultFile};
use crate::statistics::ExponentEstimate;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::path::Path;
use std::sync::{Arc, OnceLock};

/// The font family the figures name; the PNG renderer has it embedded.
pub const FONT_FAMILY: &str = "DejaVu Sans";
/// What the SVG asks for: the family, else the viewer's sans-serif.
const FONT_STACK: &str = "DejaVu Sans, sans-serif";
/// DejaVu Sans (Bitstream Vera licence with DejaVu's public-domain changes; see
/// `assets/fonts/LICENSE-DejaVu.txt`).
static FONT_TTF: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");

/// Default figure size in pixels (SVG user units; the PNG has the same size at scale 1).
pub const WIDTH: u32 = 900;
pub const HEIGHT: u32 = 600;

// Okabe-Ito colours: distinguishable with the common colour-vision deficiencies.
const C_MEAN: RGBColor = RGBColor(0x00, 0x72, 0xB2);
const C_QUANTILE: RGBColor = RGBColor(0xE6, 0x9F, 0x00);
const C_FIT: RGBColor = RGBColor(0x20, 0x20, 0x20);
const C_CLAIM: RGBColor = RGBColor(0x00, 0x9E, 0x73);
const C_BOUND: RGBColor = RGBColor(0xD5, 0x5E, 0x00);
const C_NOTE: RGBColor = RGBColor(0x55, 0x55, 0x55);
const C_GRID: RGBColor = RGBColor(0xDD, 0xDD, 0xDD);
const C_GRID_LIGHT: RGBColor = RGBColor(0xF0, 0xF0, 0xF0);

/// What a rate plot needs beyond the result: the claim's exponent and bound, if any.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClaimOverlay {
    /// Claim id (e.g. "T5.2"); names the figure and the overlay lines.
    pub id: String,
    /// The claimed exponent of n: drawn as a reference line of that slope.
    pub claimed_exponent: Option<f64>,
    /// The claim's bound at each n of the cell (it depends on gamma, so it belongs to one
    /// cell): drawn as a curve; non-positive or non-finite values are left out.
    pub bound: Option<Vec<(u64, f64)>>,
    /// The verdict, shown under the title.
    pub verdict: Option<String>,
    /// The label of the cell this overlay judges; `None` = any cell. Only `write_plots`
    /// looks at it (to pick the overlay of each cell); `rate_plot_svg` draws what it gets.
    pub cell: Option<String>,
}

impl ClaimOverlay {
    /// The overlay of a rate judgement: its claim, claimed exponent, the bound it checked at
    /// each n (if any) and its verdict; `cell` is the label of the judged cell (`None` for
    /// a single-cell result).
    pub fn from_judgement(j: &crate::claims::Judgement, cell: Option<&str>) -> Self {
        ClaimOverlay {
            id: j.claim.clone(),
            claimed_exponent: j.claimed,
            bound: if j.bound_checks.is_empty() {
                None
            } else {
                Some(j.bound_checks.iter().map(|b| (b.n, b.bound)).collect())
            },
            verdict: Some(j.verdict.name().to_string()),
            cell: cell.map(str::to_string),
        }
    }
}

/// Log-log plot of one cell of a result against the sample size n:
/// - the mean gap at each n (filled circles) with its 95% interval as error bars,
/// - the (1 - delta)-quantile (triangles), with its fitted exponent in the legend,
/// - the least-squares line of the mean over the tail the exponent was fitted on, with the
///   exponent and its interval in the legend,
/// - if `overlay` gives one, a reference line with the claimed exponent over the same tail,
///   anchored at the fitted line's value at the first tail point (dashed),
/// - if `overlay` gives one, the claim's bound (dash-dotted).
///
/// The y axis names the quantity, divergence, gamma (or its schedule) and reward class; the
/// title names the claim (the overlay's, else the result's tag, else the spec name), the
/// subtitle the spec, cell, replications and verdict. A `cell` out of range gives a figure
/// that says so.
pub fn rate_plot_svg(result: &ResultFile, cell: usize, overlay: Option<&ClaimOverlay>) -> String {
    render(&rate_figure(result, cell, overlay))
}

/// Sweep plot over the cells of a result (one cell per gamma or per weight vector): the mean
/// gap at n level `n_index` (clamped to the grid) with its 95% interval, and the
/// (1 - delta)-quantile, against the swept parameter: gamma on a log axis (its value at that
/// n for schedules), the first weight alpha_1 (beta_1 for FKL) on a linear axis when K = 2,
/// otherwise the cell labels in spec order.
pub fn sweep_plot_svg(result: &ResultFile, n_index: usize) -> String {
    render(&sweep_figure(result, n_index))
}

/// The paper's Figure 1 in the bandit: the true objective of the exact solution, of each
/// comparator, and (for suboptimality results) of the plug-in policy at the largest n with
/// its 95% interval, against the swept parameter (gamma on a log axis; alpha_1 on a linear
/// axis for K = 2 weight sweeps; categories otherwise).
///
/// The upper panel shows the objectives on a linear axis (each series with its own colour,
/// marker and dash pattern; the exact solution as a ring so that a comparator equal to it
/// shows inside). The lower panel shows exact − objective on a log axis, which separates
/// series that coincide in the upper one: the plug-in policy's mean sub-optimality gap with
/// its interval, and each comparator's shortfall. Differences within 10⁻¹²·max(1, |exact|)
/// of zero count as equal and are not drawn there (the legend says how many); a comparator
/// above the exact value by more than that (which THEORY rules out) is named in a note.
pub fn objective_sweep_svg(result: &ResultFile) -> String {
    let (upper, lower) = objective_figures(result);
    match lower {
        Some(lower) => render_stacked(&upper, &lower),
        None => render(&upper),
    }
}

/// Paired-series plot of one cell: the mean of the spec's quantity (the fitted policy:
/// exact plug-in, DPO or online) and of every recorded series that is a gap of the same
/// kind (the comparators' losses J(pi*) - J(pi_c), the plug-in MLE beside DPO, the offline
/// run beside online), each with its 95% interval, against n on log-log axes.
pub fn series_plot_svg(result: &ResultFile, cell: usize) -> String {
    render(&series_figure(result, cell))
}

fn series_figure(result: &ResultFile, k: usize) -> Figure {
    let quantity = quantity_text(result);
    let div = divergence_text(result);
    let c = &result.cells[k];
    use crate::spec::Estimator;
    let fitted = match result.spec.estimator {
        Estimator::DpoTabular => "DPO (tabular class)".to_string(),
        Estimator::DpoLinear => "DPO (linear class)".to_string(),
        _ if result.spec.rounds > 1 => {
            format!("online ({} rounds)", result.spec.rounds)
        }
        _ => "exact plug-in".to_string(),
    };
    let mut fig = Figure {
        title: format!(
            "{}: {div} {quantity}, {fitted} vs recorded alternatives",
            result.name
        ),
        subtitle: format!(
            "cell {}  ·  {}  ·  mean over replications with 95% intervals",
            c.label,
            gamma_text(c)
        ),
        x: log_axis("sample size n".into()),
        y: log_axis(format!("{div} {quantity} (J(pi*) - J(pi))")),
        series: vec![],
        legend: vec![],
        empty: None,
        legend_columns: 2,
    };
    let palette = [
        C_MEAN, C_QUANTILE, C_CLAIM, C_BOUND, C_PURPLE, C_NOTE, C_FIT,
    ];
    let markers = [
        Marker::Circle,
        Marker::Triangle,
        Marker::Square,
        Marker::Diamond,
        Marker::TriangleDown,
        Marker::Cross,
        Marker::Ring,
    ];
    let mut curves: Vec<(String, Vec<Option<crate::statistics::Summary>>)> =
        vec![(fitted, c.summaries.iter().cloned().map(Some).collect())];
    for s in c.series.iter().filter(|s| s.difference.is_some()) {
        let name = s
            .name
            .strip_prefix("loss_")
            .unwrap_or(&s.name)
            .replace('_', " ");
        curves.push((name, s.summaries.clone()));
    }
    for (i, (name, sums)) in curves.iter().enumerate() {
        let color = palette[i % palette.len()];
        let marker = markers[i % markers.len()];
        let pts: Vec<Pt> = sums
            .iter()
            .flatten()
            .filter_map(|s| {
                let (x, y) = (lg(s.n as f64)?, lg(s.mean)?);
                Some(Pt {
                    x,
                    y,
                    bar: Some((
                        lg(s.ci_low).map(|l| l.min(y)),
                        lg(s.ci_high).unwrap_or(y).max(y),
                    )),
                })
            })
            .collect();
        fig.series.push(Series::Line {
            pts: pts.iter().map(|p| (p.x, p.y)).collect(),
            color,
            width: 1,
            stroke: Stroke::Solid,
        });
        fig.series.push(Series::Points { pts, marker, color });
        fig.legend.push(Entry {
            sample: Sample::LineMarker(color, 1, Some(Stroke::Solid), marker),
            text: name.clone(),
        });
    }
    if curves.len() == 1 {
        fig.empty = Some("no paired series recorded in this cell".into());
    }
    fig
}

/// Rasterises an SVG produced above to PNG bytes at its own size, with the embedded font.
pub fn svg_to_png(svg: &str) -> Result<Vec<u8>, String> {
    svg_to_png_scaled(svg, 1.0)
}

/// As `svg_to_png`, with the pixel size multiplied by `scale` (e.g. 2 for print).
pub fn svg_to_png_scaled(svg: &str, scale: f32) -> Result<Vec<u8>, String> {
    use resvg::{tiny_skia, usvg};
    if !(scale.is_finite() && scale > 0.0) {
        return Err(format!("scale = {scale} is not allowed: a positive number"));
    }
    let options = usvg_options();
    let tree = usvg::Tree::from_str(svg, &options).map_err(|e| format!("SVG: {e}"))?;
    let size = tree.size();
    let w = (size.width() * scale).ceil().max(1.0) as u32;
    let h = (size.height() * scale).ceil().max(1.0) as u32;
    let mut pixmap =
        tiny_skia::Pixmap::new(w, h).ok_or_else(|| format!("cannot make a {w}x{h} image"))?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(
        &tree,
        tiny_skia::Transform::from_scale(scale, scale),
        &mut pixmap.as_mut(),
    );
    pixmap.encode_png().map_err(|e| format!("PNG: {e}"))
}

/// Writes `<stem>.svg` and `<stem>.png` for every plot of a result into `dir` (created if
/// needed): a rate plot per cell (stem `<name>_rate`, or `<name>_rate_<cell label>` when there
/// are several cells, with characters other than `[A-Za-z0-9._-]` replaced by `-`) and, if
/// the result has more than one cell, a sweep plot at the largest n (`<name>_sweep`; if every
/// mean is 0 there, at the largest n where some cell's mean is positive). Each cell takes the
/// overlay whose `cell` is its label, else the first one without a cell. If the result has
/// more than one cell and every cell has comparator objectives, also the objective plot of
/// [`objective_sweep_svg`] (`<name>_objective`). Files are written atomically. Returns the
/// file names written.
pub fn write_plots(
    result: &ResultFile,
    overlays: &[ClaimOverlay],
    dir: &Path,
) -> std::io::Result<Vec<String>> {
    let name = file_safe(&result.name);
    let mut plots: Vec<(String, String)> = Vec::new();
    // Per-cell rate plots up to 8 cells (beyond, the sweep plot shows the cells together).
    let per_cell = result.cells.len() <= 8;
    for (k, c) in result.cells.iter().enumerate().filter(|_| per_cell) {
        if c.series.iter().any(|s| s.difference.is_some()) {
            let stem = if result.cells.len() > 1 {
                format!("{name}_series_{}", file_safe(&c.label))
            } else {
                format!("{name}_series")
            };
            plots.push((stem, series_plot_svg(result, k)));
        }
        let overlay = overlays
            .iter()
            .find(|o| o.cell.as_deref() == Some(c.label.as_str()))
            .or_else(|| overlays.iter().find(|o| o.cell.is_none()));
        let stem = if result.cells.len() > 1 {
            format!("{name}_rate_{}", file_safe(&c.label))
        } else {
            format!("{name}_rate")
        };
        plots.push((stem, rate_plot_svg(result, k, overlay)));
    }
    if result.cells.len() > 1 {
        // The largest n at which some cell has a positive mean (else the largest n).
        let levels = result.cells[0].n.len();
        let j = (0..levels)
            .rev()
            .find(|&j| {
                result
                    .cells
                    .iter()
                    .any(|c| c.summaries.get(j).is_some_and(|s| lg(s.mean).is_some()))
            })
            .unwrap_or(levels.saturating_sub(1));
        // A K = 3 simplex grid is drawn on the simplex; its category sweep plot would have
        // too many cells to label.
        let simplex = simplex::simplex_plot_svg(result);
        if simplex.is_none() || result.cells.len() <= 12 {
            plots.push((format!("{name}_sweep"), sweep_plot_svg(result, j)));
        }
        if let Some(svg) = simplex {
            plots.push((format!("{name}_simplex"), svg));
        }
        if result.cells.iter().all(|c| !c.comparators.is_empty()) {
            plots.push((format!("{name}_objective"), objective_sweep_svg(result)));
        }
    }
    // Rasterising dominates; the plots of a result are independent, so draw them in parallel
    // (rayon's current pool), then write in order.
    use rayon::prelude::*;
    let rendered: Vec<(String, String, Result<Vec<u8>, String>)> = plots
        .into_par_iter()
        .map(|(stem, svg)| {
            let png = svg_to_png(&svg);
            (stem, svg, png)
        })
        .collect();
    let mut written = Vec::new();
    for (stem, svg, png) in rendered {
        let png = png.map_err(std::io::Error::other)?;
        for (file, bytes) in [
            (format!("{stem}.svg"), svg.into_bytes()),
            (format!("{stem}.png"), png),
        ] {
            crate::fsio::write_atomic(&dir.join(&file), &bytes)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            written.push(file);
        }
    }
    Ok(written)
}

// ---------------------------------------------------------------------------------------
// Figure content: what to draw, in axis coordinates (log10 of the value on a log axis).

#[derive(Clone, Copy, PartialEq)]
enum Marker {
    Circle,
    Triangle,
    /// Hollow circle, larger than the others, so that a marker at the same place shows
    /// inside it.
    Ring,
    TriangleDown,
    Square,
    Diamond,
    Cross,
}

#[derive(Clone, Copy, PartialEq)]
enum Stroke {
    Solid,
    Dashed,
    DashDotted,
    Dotted,
    LongDashed,
    DashDotDotted,
}

/// A point with an optional error bar; `lo = None` means the bar reaches below the axis
/// (its lower end is <= 0 on a log axis) and is cut there.
#[derive(Clone, Copy)]
struct Pt {
    x: f64,
    y: f64,
    bar: Option<(Option<f64>, f64)>,
}

#[derive(Clone)]
enum Series {
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

#[derive(Clone)]
enum Sample {
    Marker(Marker, RGBColor, bool),
    Line(RGBColor, u32, Stroke),
    /// A line (if any) with a marker on it.
    LineMarker(RGBColor, u32, Option<Stroke>, Marker),
    Note,
}

#[derive(Clone)]
struct Entry {
    sample: Sample,
    text: String,
}

#[derive(Clone, Copy, PartialEq)]
enum Scale {
    Log,
    Linear,
    /// Linear, ticks at the integers 0..labels.len(), labelled with `labels`.
    Categories,
}

#[derive(Clone)]
struct AxisSpec {
    scale: Scale,
    desc: String,
    labels: Vec<String>,
    /// Log axis labelled with plain numbers (0.1, 1, 10) where they are short.
    plain: bool,
    /// Labelled ticks at these values (axis coordinates) instead of the automatic ones.
    ticks: Option<Vec<f64>>,
    /// At most this many labelled ticks (a log axis keeps every k-th power of ten), for a
    /// short panel.
    max_major: Option<usize>,
}

#[derive(Clone)]
struct Figure {
    title: String,
    subtitle: String,
    x: AxisSpec,
    y: AxisSpec,
    series: Vec<Series>,
    legend: Vec<Entry>,
    /// Shown in the middle of the plot when there is nothing to draw.
    empty: Option<String>,
    /// Columns of the legend (filled column by column; notes take whole rows below).
    legend_columns: usize,
}

fn log_axis(desc: String) -> AxisSpec {
    AxisSpec {
        scale: Scale::Log,
        desc,
        labels: vec![],
        plain: false,
        ticks: None,
        max_major: None,
    }
}

/// log10 of a value that can go on a log axis.
fn lg(v: f64) -> Option<f64> {
    (v.is_finite() && v > 0.0).then(|| v.log10())
}

fn quantity_text(result: &ResultFile) -> String {
    match result.quantity.name() {
        "suboptimality" => "sub-optimality gap".into(),
        "reward_gap" => "reward gap".into(),
        "optimality" => "optimality gap".into(),
        other => other.replace('_', " "),
    }
}

fn divergence_text(result: &ResultFile) -> String {
    result.divergence.name().to_uppercase()
}

fn class_text(result: &ResultFile) -> String {
    let i = &result.instance;
    match (i.reward_class.name(), i.dim, i.candidates) {
        ("linear", Some(d), _) => format!("linear class, d = {d}"),
        ("finite", _, Some(m)) => format!("finite class, M = {m}"),
        (c, _, _) => format!("{c} class"),
    }
}

/// "γ = 1" for a fixed gamma, "γ(n) = 0.1·n^0.5" for a schedule.
fn gamma_text(cell: &CellResult) -> String {
    use crate::spec::GammaRule;
    if let GammaRule::Fixed(g) = cell.gamma {
        format!("γ = {}", fmt_num(g))
    } else if let GammaRule::Schedule(crate::spec::GammaSchedule { c, p }) = cell.gamma {
        let power = match p {
            0.0 => String::new(),
            0.5 => "√n".into(),
            1.0 => "n".into(),
            _ => format!("n^{}", fmt_num(p)),
        };
        let factor = match (c, power.is_empty()) {
            (_, true) => fmt_num(c),
            (1.0, false) => String::new(),
            _ => format!("{}·", fmt_num(c)),
        };
        format!("γ(n) = {factor}{power}")
    } else {
        match cell.gamma_at_n.first() {
            Some(&g) if cell.gamma_at_n.iter().all(|&v| v == g) => format!("γ = {}", fmt_num(g)),
            _ => "γ varies with n".into(),
        }
    }
}

fn claim_name(result: &ResultFile, overlay: Option<&ClaimOverlay>) -> Option<String> {
    overlay
        .map(|o| o.id.clone())
        .filter(|s| !s.is_empty())
        .or_else(|| result.claims.first().cloned())
}

fn rate_figure(result: &ResultFile, k: usize, overlay: Option<&ClaimOverlay>) -> Figure {
    let quantity = quantity_text(result);
    let div = divergence_text(result);
    let head = claim_name(result, overlay).unwrap_or_else(|| result.name.clone());
    let mut fig = Figure {
        title: format!("{head}: {div} {quantity} vs sample size"),
        subtitle: String::new(),
        x: log_axis("sample size n".into()),
        y: log_axis(format!("{div} {quantity}  ({})", class_text(result))),
        series: vec![],
        legend: vec![],
        empty: None,
        legend_columns: 1,
    };
    let Some(cell) = result.cells.get(k) else {
        fig.subtitle = format!("spec {}", result.name);
        fig.empty = Some(format!(
            "cell {k} does not exist ({} cells)",
            result.cells.len()
        ));
        return fig;
    };
    fig.y.desc = format!(
        "{div} {quantity}  ({}, {})",
        gamma_text(cell),
        class_text(result)
    );
    let reps = cell
        .summaries
        .iter()
        .map(|s| s.replications)
        .max()
        .unwrap_or(0);
    let mut sub = vec![format!("spec {}", result.name)];
    if result.cells.len() > 1 {
        sub.push(format!("cell {}", cell.label));
    }
    sub.push(format!("{reps} replications per n"));
    if let Some(v) = overlay.and_then(|o| o.verdict.as_deref()) {
        sub.push(format!("verdict: {v}"));
    }
    fig.subtitle = sub.join("  ·  ");

    let level = cell
        .summaries
        .first()
        .map(|s| s.quantile_level)
        .unwrap_or(0.95);
    let ns: Vec<f64> = cell.summaries.iter().map(|s| s.n as f64).collect();
    let len = ns.len();

    // Mean with its interval.
    let mut mean_pts = Vec::new();
    let mut cut_bars = 0;
    for s in &cell.summaries {
        let (Some(x), Some(y)) = (lg(s.n as f64), lg(s.mean)) else {
            continue;
        };
        let hi = lg(s.ci_high).unwrap_or(y).max(y);
        let lo = lg(s.ci_low).map(|l| l.min(y));
        if lo.is_none() {
            cut_bars += 1;
        }
        mean_pts.push(Pt {
            x,
            y,
            bar: Some((lo, hi)),
        });
    }
    let mean_missing = len - mean_pts.len();
    // Quantile.
    let q_pts: Vec<Pt> = cell
        .summaries
        .iter()
        .filter_map(|s| {
            Some(Pt {
                x: lg(s.n as f64)?,
                y: lg(s.quantile)?,
                bar: None,
            })
        })
        .collect();
    let q_missing = len - q_pts.len();

    if mean_pts.is_empty() && q_pts.is_empty() {
        fig.empty = Some("every mean and quantile is ≤ 0: nothing to show on a log scale".into());
    }
    let mut mean_text = format!("mean, 95% interval ({reps} replications)");
    if mean_missing > 0 {
        mean_text = format!("{mean_text}; {mean_missing} of {len} n with mean ≤ 0 not shown");
    }
    fig.legend.push(Entry {
        sample: Sample::Marker(Marker::Circle, C_MEAN, true),
        text: mean_text,
    });
    let mut q_text = format!("{}-quantile", fmt_num(level));
    match cell.exponent_quantile.slope {
        Some(s) => {
            q_text = format!(
                "{q_text}: exponent {}",
                fmt_estimate(s, &cell.exponent_quantile)
            )
        }
        None => q_text = format!("{q_text} (no exponent fitted)"),
    }
    if q_missing > 0 {
        q_text = format!("{q_text}; {q_missing} of {len} n with quantile ≤ 0 not shown");
    }
    fig.legend.push(Entry {
        sample: Sample::Marker(Marker::Triangle, C_QUANTILE, false),
        text: q_text,
    });

    // Fitted line of the mean over the tail: ln mean = intercept + slope ln n (if the
    // estimate has no intercept, the least-squares one for its slope: through the centroid
    // of the tail points).
    let tail: Vec<&Pt> = mean_pts
        .iter()
        .filter(|p| p.x >= (cell.exponent_mean.tail_from_n.max(1) as f64).log10() - 1e-12)
        .collect();
    let slope = cell.exponent_mean.slope.filter(|s| s.is_finite());
    let mut anchor = None;
    match (slope, tail.len()) {
        (Some(b), m) if m >= 1 => {
            let a = match cell.exponent_mean.intercept.filter(|i| i.is_finite()) {
                Some(i) => i / std::f64::consts::LN_10,
                None => {
                    let mx = tail.iter().map(|p| p.x).sum::<f64>() / m as f64;
                    let my = tail.iter().map(|p| p.y).sum::<f64>() / m as f64;
                    my - b * mx
                }
            };
            let (x0, x1) = (tail[0].x, tail[m - 1].x);
            anchor = Some((x0, a + b * x0));
            let from = fmt_n(cell.exponent_mean.tail_from_n);
            fig.series.push(Series::Line {
                pts: vec![(x0, a + b * x0), (x1, a + b * x1)],
                color: C_FIT,
                width: 2,
                stroke: Stroke::Solid,
            });
            fig.legend.push(Entry {
                sample: Sample::Line(C_FIT, 2, Stroke::Solid),
                text: format!(
                    "fit to the mean, n ≥ {from}: exponent {}",
                    fmt_estimate(b, &cell.exponent_mean)
                ),
            });
        }
        _ => fig.legend.push(Entry {
            sample: Sample::Note,
            text: if len < 2 {
                "no exponent fitted to the mean (one n level)".into()
            } else if tail.len() < 2 || cell.exponent_mean.floor_hit {
                "no exponent fitted to the mean (gaps at the floor in the tail)".into()
            } else {
                "no exponent fitted to the mean".into()
            },
        }),
    }

    if let Some(o) = overlay {
        let id = if o.id.is_empty() {
            "claim"
        } else {
            o.id.as_str()
        };
        if let Some(c) = o.claimed_exponent.filter(|c| c.is_finite()) {
            let anchor = anchor.or_else(|| tail.first().map(|p| (p.x, p.y)));
            let x1 = tail.last().map(|p| p.x).or(mean_pts.last().map(|p| p.x));
            if let (Some((x0, y0)), Some(x1)) = (anchor, x1) {
                let x1 = if x1 > x0 {
                    x1
                } else {
                    ns.last().and_then(|&n| lg(n)).unwrap_or(x0).max(x0 + 0.3)
                };
                fig.series.push(Series::Line {
                    pts: vec![(x0, y0), (x1, y0 + c * (x1 - x0))],
                    color: C_CLAIM,
                    width: 2,
                    stroke: Stroke::Dashed,
                });
                fig.legend.push(Entry {
                    sample: Sample::Line(C_CLAIM, 2, Stroke::Dashed),
                    text: format!("claimed exponent {} ({id})", fmt_num(c)),
                });
            }
        }
        if let Some(b) = &o.bound {
            let pts: Vec<(f64, f64)> = b
                .iter()
                .filter_map(|&(n, v)| Some((lg(n as f64)?, lg(v)?)))
                .collect();
            let dropped = b.len() - pts.len();
            if !pts.is_empty() {
                fig.series.push(Series::Line {
                    pts,
                    color: C_BOUND,
                    width: 2,
                    stroke: Stroke::DashDotted,
                });
                let mut text = format!("bound of {id}");
                if dropped > 0 {
                    let what = if dropped == 1 { "value" } else { "values" };
                    text = format!("{text} ({dropped} {what} ≤ 0 or infinite not shown)");
                }
                fig.legend.push(Entry {
                    sample: Sample::Line(C_BOUND, 2, Stroke::DashDotted),
                    text,
                });
            } else if !b.is_empty() {
                fig.legend.push(Entry {
                    sample: Sample::Note,
                    text: format!("bound of {id}: no finite positive value to show"),
                });
            }
        }
    }
    if cut_bars > 0 {
        fig.legend.push(Entry {
            sample: Sample::Note,
            text: cut_text(cut_bars),
        });
    }
    fig.series.insert(
        0,
        Series::Points {
            pts: q_pts,
            marker: Marker::Triangle,
            color: C_QUANTILE,
        },
    );
    fig.series.push(Series::Points {
        pts: mean_pts,
        marker: Marker::Circle,
        color: C_MEAN,
    });
    fig
}

/// The parameter a result's cells differ in.
enum Swept {
    Gamma(Vec<f64>),
    FirstWeight(Vec<f64>),
    Labels,
}

fn swept(result: &ResultFile, j: usize) -> Swept {
    let cells = &result.cells;
    let gammas: Vec<f64> = cells
        .iter()
        .map(|c| c.gamma_at_n.get(j).copied().unwrap_or(f64::NAN))
        .collect();
    let distinct = |v: &[f64]| v.iter().any(|&g| g != v[0]);
    let weights_differ = cells.iter().any(|c| c.weights != cells[0].weights);
    if !cells.is_empty() && distinct(&gammas) && !weights_differ && gammas.iter().all(|&g| g > 0.0)
    {
        Swept::Gamma(gammas)
    } else if weights_differ && !distinct(&gammas) && cells.iter().all(|c| c.weights.len() == 2) {
        Swept::FirstWeight(cells.iter().map(|c| c.weights[0]).collect())
    } else {
        Swept::Labels
    }
}

/// The x axis of a sweep over the cells of a result at n level `j` (sample size `n`): the
/// axis, the title's "vs ..." words, each cell's x (axis units; `None` = cannot be placed)
/// and whether gamma is the swept parameter.
struct SweepAxis {
    axis: AxisSpec,
    what: String,
    xs: Vec<Option<f64>>,
    gamma_swept: bool,
}

fn sweep_axis(result: &ResultFile, j: usize, n: u64) -> SweepAxis {
    let weight = if result.divergence.name() == "fkl" {
        "β"
    } else {
        "α"
    };
    let sw = swept(result, j);
    let mut labels: Vec<String> = result.cells.iter().map(|c| c.label.clone()).collect();
    let (x_desc, x_scale, what) = match &sw {
        Swept::Gamma(_) => {
            let sched = result
                .cells
                .iter()
                .any(|c| !matches!(c.gamma, crate::spec::GammaRule::Fixed(_)));
            let d = if sched {
                format!("γ at n = {}", fmt_n(n))
            } else {
                "γ".to_string()
            };
            (
                format!("regularisation {d} (log scale)"),
                Scale::Log,
                "vs γ".to_string(),
            )
        }
        Swept::FirstWeight(_) => (
            format!("weight {weight}₁ of reference 1  ({weight}₂ = 1 − {weight}₁)"),
            Scale::Linear,
            format!("vs weight {weight}₁"),
        ),
        Swept::Labels => {
            let k = result
                .cells
                .iter()
                .map(|c| c.weights.len())
                .max()
                .unwrap_or(0);
            let desc = if !labels.is_empty() && labels.iter().all(|l| l.starts_with("weights=")) {
                labels = labels
                    .iter()
                    .map(|l| l["weights=".len()..].to_string())
                    .collect();
                let names: Vec<String> = (1..=k)
                    .map(|i| {
                        let sub: String = i
                            .to_string()
                            .bytes()
                            .map(|d| {
                                ['₀', '₁', '₂', '₃', '₄', '₅', '₆', '₇', '₈', '₉']
                                    [(d - b'0') as usize]
                            })
                            .collect();
                        format!("{weight}{sub}")
                    })
                    .collect();
                format!("weights {} of the cell", names.join(":"))
            } else {
                "cell".to_string()
            };
            (desc, Scale::Categories, "per cell".to_string())
        }
    };
    let mut axis = AxisSpec {
        scale: x_scale,
        desc: x_desc,
        labels: if x_scale == Scale::Categories {
            labels
        } else {
            vec![]
        },
        plain: true,
        ticks: None,
        max_major: None,
    };
    if let Swept::Gamma(g) = &sw {
        let mut t: Vec<f64> = g.iter().filter_map(|&v| lg(v)).collect();
        t.sort_by(f64::total_cmp);
        t.dedup_by(|a, b| (*a - *b).abs() < 1e-9);
        if t.len() <= 10 {
            axis.ticks = Some(t);
        }
    }
    let xs: Vec<Option<f64>> = match &sw {
        Swept::Gamma(g) => g.iter().map(|&v| lg(v)).collect(),
        Swept::FirstWeight(w) => w.iter().map(|&v| v.is_finite().then_some(v)).collect(),
        Swept::Labels => (0..result.cells.len()).map(|i| Some(i as f64)).collect(),
    };
    SweepAxis {
        axis,
        what,
        xs,
        gamma_swept: matches!(sw, Swept::Gamma(_)),
    }
}

fn sweep_figure(result: &ResultFile, n_index: usize) -> Figure {
    let quantity = quantity_text(result);
    let div = divergence_text(result);
    let head = result
        .claims
        .first()
        .cloned()
        .unwrap_or_else(|| result.name.clone());
    let levels = result.cells.first().map(|c| c.n.len()).unwrap_or(0);
    let j = n_index.min(levels.saturating_sub(1));
    let n = result
        .cells
        .first()
        .and_then(|c| c.n.get(j))
        .copied()
        .unwrap_or(0);
    let SweepAxis {
        axis: x_spec,
        what,
        xs,
        gamma_swept,
    } = sweep_axis(result, j, n);
    let x_scale = x_spec.scale;
    let gamma_part = match (gamma_swept, result.cells.first()) {
        (false, Some(c)) => format!("{}, ", gamma_text(c)),
        _ => String::new(),
    };
    let mut fig = Figure {
        title: format!("{head}: {div} {quantity} {what} at n = {}", fmt_n(n)),
        subtitle: String::new(),
        x: x_spec,
        y: log_axis(format!(
            "{div} {quantity} at n = {}  ({gamma_part}{})",
            fmt_n(n),
            class_text(result)
        )),
        series: vec![],
        legend: vec![],
        empty: None,
        legend_columns: 1,
    };
    let reps = result
        .cells
        .iter()
        .filter_map(|c| c.summaries.get(j))
        .map(|s| s.replications)
        .max()
        .unwrap_or(0);
    fig.subtitle = format!(
        "spec {}  ·  {} cells  ·  {reps} replications per cell",
        result.name,
        result.cells.len()
    );
    if result.cells.is_empty() || levels == 0 {
        fig.empty = Some("the result has no cells or no sample sizes".into());
        return fig;
    }
    let mut mean_pts = Vec::new();
    let mut q_pts = Vec::new();
    let mut cut_bars = 0;
    for (c, x) in result.cells.iter().zip(&xs) {
        let (Some(s), Some(x)) = (c.summaries.get(j), *x) else {
            continue;
        };
        if let Some(y) = lg(s.mean) {
            let lo = lg(s.ci_low).map(|l| l.min(y));
            if lo.is_none() {
                cut_bars += 1;
            }
            mean_pts.push(Pt {
                x,
                y,
                bar: Some((lo, lg(s.ci_high).unwrap_or(y).max(y))),
            });
        }
        if let Some(y) = lg(s.quantile) {
            q_pts.push(Pt { x, y, bar: None });
        }
    }
    let total = result.cells.len();
    let level = result.cells[0]
        .summaries
        .first()
        .map(|s| s.quantile_level)
        .unwrap_or(0.95);
    let mut mean_text = "mean, 95% interval".to_string();
    if mean_pts.len() < total {
        mean_text = format!(
            "{mean_text}; {} of {total} cells with mean ≤ 0 not shown",
            total - mean_pts.len()
        );
    }
    let mut q_text = format!("{}-quantile", fmt_num(level));
    if q_pts.len() < total {
        q_text = format!(
            "{q_text}; {} of {total} cells with quantile ≤ 0 not shown",
            total - q_pts.len()
        );
    }
    if mean_pts.is_empty() && q_pts.is_empty() {
        fig.empty = Some(format!(
            "every mean and quantile at n = {} is ≤ 0: nothing to show on a log scale",
            fmt_n(n)
        ));
    }
    let mut sorted: Vec<(f64, f64)> = mean_pts.iter().map(|p| (p.x, p.y)).collect();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    if x_scale != Scale::Categories && sorted.len() > 1 {
        fig.series.push(Series::Line {
            pts: sorted,
            color: C_MEAN,
            width: 1,
            stroke: Stroke::Solid,
        });
    }
    fig.series.push(Series::Points {
        pts: q_pts,
        marker: Marker::Triangle,
        color: C_QUANTILE,
    });
    fig.series.push(Series::Points {
        pts: mean_pts,
        marker: Marker::Circle,
        color: C_MEAN,
    });
    fig.legend.push(Entry {
        sample: Sample::Marker(Marker::Circle, C_MEAN, true),
        text: mean_text,
    });
    fig.legend.push(Entry {
        sample: Sample::Marker(Marker::Triangle, C_QUANTILE, false),
        text: q_text,
    });
    if cut_bars > 0 {
        fig.legend.push(Entry {
            sample: Sample::Note,
            text: cut_text(cut_bars),
        });
    }
    fig
}

// Styles of the objective figure (Okabe-Ito, with the colours above).
const C_EXACT: RGBColor = RGBColor(0x00, 0x00, 0x00);
const C_PURPLE: RGBColor = RGBColor(0xCC, 0x79, 0xA7);
const C_SKY: RGBColor = RGBColor(0x56, 0xB4, 0xE9);
const C_GREY: RGBColor = RGBColor(0x88, 0x88, 0x88);

/// Differences from the exact objective within this much (times max(1, |exact|)) are
/// rounding: the comparator equals the exact solution there.
const EQUAL_TOL: f64 = 1e-12;

/// How a comparator of `CellResult::comparators` is named and drawn.
struct ObjectiveStyle {
    key: String,
    text: String,
    color: RGBColor,
    stroke: Stroke,
    marker: Marker,
}

/// The comparators present in any cell, in the order exact, MRPO, MRPO + CTRO, arithmetic
/// mixture, references 1, 2, ..., then any others by name; each with its style.
fn objective_styles(result: &ResultFile) -> Vec<ObjectiveStyle> {
    let div = divergence_text(result);
    let mut keys: Vec<&String> = result
        .cells
        .iter()
        .flat_map(|c| c.comparators.keys())
        .collect();
    keys.sort();
    keys.dedup();
    let rank = |k: &str| -> (usize, u64, String) {
        match k {
            "exact" => (0, 0, String::new()),
            "mrpo" => (1, 0, String::new()),
            "mrpo_ctro" => (2, 0, String::new()),
            "arithmetic_mixture" => (3, 0, String::new()),
            _ => match k
                .strip_prefix("reference_")
                .and_then(|i| i.parse::<u64>().ok())
            {
                Some(i) => (4, i, String::new()),
                None => (5, 0, k.to_string()),
            },
        }
    };
    keys.sort_by_key(|k| rank(k));
    let eps = Some(result.ours.mrpo_clip_eps.value).filter(|e| *e > 0.0);
    let references = [
        (C_QUANTILE, Stroke::LongDashed, Marker::Diamond),
        (C_SKY, Stroke::DashDotDotted, Marker::Cross),
        (C_GREY, Stroke::Dotted, Marker::TriangleDown),
    ];
    let mut others = 0;
    keys.into_iter()
        .map(|k| {
            let (text, color, stroke, marker) = match rank(k) {
                (0, ..) => (
                    format!("exact multi-reference {div}"),
                    C_EXACT,
                    Stroke::Solid,
                    Marker::Ring,
                ),
                (1, ..) => (
                    "MRPO (harmonic mean)".to_string(),
                    C_BOUND,
                    Stroke::Dashed,
                    Marker::Triangle,
                ),
                (2, ..) => (
                    match eps {
                        Some(e) => format!("MRPO + CTRO clipping (ε = {})", fmt_num(e)),
                        None => "MRPO + CTRO clipping".to_string(),
                    },
                    C_PURPLE,
                    Stroke::DashDotted,
                    Marker::TriangleDown,
                ),
                (3, ..) => (
                    "arithmetic mixture as reference".to_string(),
                    C_CLAIM,
                    Stroke::Dotted,
                    Marker::Square,
                ),
                (4, i, _) => {
                    let (c, s, m) = references[(i as usize).saturating_sub(1) % references.len()];
                    (format!("reference {i} alone"), c, s, m)
                }
                _ => {
                    others += 1;
                    let (c, s, m) = references[(others - 1) % references.len()];
                    (k.replace('_', " "), c, s, m)
                }
            };
            ObjectiveStyle {
                key: k.clone(),
                text,
                color,
                stroke,
                marker,
            }
        })
        .collect()
}

/// The objective figure: the objectives (upper panel) and, when there is anything to show,
/// exact − objective on a log axis (lower panel, sharing the x axis).
fn objective_figures(result: &ResultFile) -> (Figure, Option<Figure>) {
    let div = divergence_text(result);
    let levels = result.cells.first().map(|c| c.n.len()).unwrap_or(0);
    let j = levels.saturating_sub(1);
    let n = result
        .cells
        .first()
        .and_then(|c| c.n.get(j))
        .copied()
        .unwrap_or(0);
    let SweepAxis {
        axis: x_spec,
        what,
        xs,
        gamma_swept,
    } = sweep_axis(result, j, n);
    let categories = x_spec.scale == Scale::Categories;
    let mut sub = vec![
        format!("spec {}", result.name),
        format!("{} cells", result.cells.len()),
        class_text(result),
    ];
    if !gamma_swept && let Some(c) = result.cells.first() {
        sub.push(gamma_text(c));
    }
    let mut upper = Figure {
        title: String::new(),
        subtitle: String::new(),
        x: x_spec.clone(),
        y: AxisSpec {
            scale: Scale::Linear,
            desc: format!("{div} objective under the true reward"),
            labels: vec![],
            plain: false,
            ticks: None,
            max_major: None,
        },
        series: vec![],
        legend: vec![],
        empty: None,
        legend_columns: 1,
    };
    let mut lower = Figure {
        title: String::new(),
        subtitle: String::new(),
        x: x_spec,
        y: AxisSpec {
            max_major: Some(4),
            ..log_axis("exact − objective".into())
        },
        series: vec![],
        legend: vec![],
        empty: None,
        legend_columns: 1,
    };
    let styles = objective_styles(result);
    if result.cells.is_empty() || styles.is_empty() {
        upper.subtitle = sub.join("  ·  ");
        upper.empty = Some("the result has no comparator objectives".into());
        return (upper, None);
    }
    let plug_in = result.quantity.name() == "suboptimality";
    let others = match (styles.len() > 1, plug_in) {
        (true, _) => " and the comparators",
        (false, true) => " and the plug-in policy",
        (false, false) => "",
    };
    upper.title = format!("True {div} objective of the exact solution{others} {what}");
    let total = xs.iter().filter(|x| x.is_some()).count();
    // On a category axis, the series of a cell sit side by side in legend order (the exact
    // solution and the plug-in policy first), so that equal values do not hide each other.
    let slot_width = (0.7 / styles.len() as f64).min(0.12);
    let dodge = |slot: usize| -> f64 {
        if categories {
            (slot as f64 - (styles.len() as f64 - 1.0) / 2.0) * slot_width
        } else {
            0.0
        }
    };
    let exact: Vec<Option<f64>> = result
        .cells
        .iter()
        .map(|c| {
            c.comparators
                .get("exact")
                .copied()
                .filter(|v| v.is_finite())
        })
        .collect();
    // The cells' x in order: a series' line runs through neighbouring cells only, so that it
    // breaks where a cell has no value to show.
    let mut cell_xs: Vec<f64> = xs.iter().flatten().copied().collect();
    cell_xs.sort_by(f64::total_cmp);
    // A series of points, with lines through them unless x is a category.
    let push = |fig: &mut Figure,
                pts: Vec<Pt>,
                color: RGBColor,
                width: u32,
                stroke: Stroke,
                marker: Marker| {
        if !categories {
            let mut run: Vec<(f64, f64)> = Vec::new();
            for &x in &cell_xs {
                match pts.iter().find(|p| p.x == x) {
                    Some(p) => run.push((p.x, p.y)),
                    None => run.clear(),
                }
                let next = cell_xs.iter().find(|&&v| v > x);
                let ends = next.is_none_or(|&v| !pts.iter().any(|p| p.x == v));
                if ends && run.len() > 1 {
                    fig.series.push(Series::Line {
                        pts: std::mem::take(&mut run),
                        color,
                        width,
                        stroke,
                    });
                }
            }
        }
        fig.series.push(Series::Points { pts, marker, color });
    };
    let (mut equal, mut above): (usize, Vec<String>) = (0, vec![]);
    for (slot, st) in styles.iter().enumerate() {
        let mut up = Vec::new();
        let mut low = Vec::new();
        for ((c, x), e) in result.cells.iter().zip(&xs).zip(&exact) {
            let (Some(x), Some(v)) = (*x, c.comparators.get(&st.key).copied()) else {
                continue;
            };
            let x = x + dodge(slot);
            if !v.is_finite() {
                continue;
            }
            up.push(Pt { x, y: v, bar: None });
            if st.key == "exact" {
                continue;
            }
            if let Some(e) = *e {
                let d = e - v;
                let tol = EQUAL_TOL * e.abs().max(1.0);
                if d > tol {
                    low.push(Pt {
                        x,
                        y: d.log10(),
                        bar: None,
                    });
                } else if d >= -tol {
                    equal += 1;
                } else {
                    above.push(format!("{} at {}", st.text, c.label));
                }
            }
        }
        let missing = total - up.len();
        let mut text = st.text.clone();
        if missing > 0 {
            text = format!("{text}; not finite at {missing} of {total} cells");
        }
        upper.legend.push(Entry {
            sample: Sample::LineMarker(st.color, 2, (!categories).then_some(st.stroke), st.marker),
            text,
        });
        push(&mut upper, up, st.color, 2, st.stroke, st.marker);
        if !low.is_empty() {
            push(&mut lower, low, st.color, 2, st.stroke, st.marker);
        }
    }
    // The plug-in policy at the largest n: exact − its sub-optimality gap.
    if plug_in {
        let reps = result
            .cells
            .iter()
            .filter_map(|c| c.summaries.get(j))
            .map(|s| s.replications)
            .max()
            .unwrap_or(0);
        let (mut up, mut low, mut cut_bars, mut no_gap) = (vec![], vec![], 0, 0);
        for ((c, x), e) in result.cells.iter().zip(&xs).zip(&exact) {
            let (Some(x), Some(e), Some(s)) = (*x, *e, c.summaries.get(j)) else {
                continue;
            };
            let x = x + dodge(0);
            if !s.mean.is_finite() {
                continue;
            }
            up.push(Pt {
                x,
                y: e - s.mean,
                bar: (s.ci_low.is_finite() && s.ci_high.is_finite())
                    .then(|| (Some(e - s.ci_high.max(s.mean)), e - s.ci_low.min(s.mean))),
            });
            match lg(s.mean) {
                Some(y) => {
                    let lo = lg(s.ci_low).map(|l| l.min(y));
                    if lo.is_none() {
                        cut_bars += 1;
                    }
                    low.push(Pt {
                        x,
                        y,
                        bar: Some((lo, lg(s.ci_high).unwrap_or(y).max(y))),
                    });
                }
                None => no_gap += 1,
            }
        }
        if !up.is_empty() {
            sub.push(format!("plug-in: {reps} replications"));
            upper.legend.insert(
                1.min(upper.legend.len()),
                Entry {
                    sample: Sample::Marker(Marker::Circle, C_MEAN, true),
                    text: format!("plug-in policy at n = {} (mean, 95% interval)", fmt_n(n)),
                },
            );
            upper.series.push(Series::Points {
                pts: up,
                marker: Marker::Circle,
                color: C_MEAN,
            });
        }
        if !low.is_empty() {
            push(&mut lower, low, C_MEAN, 1, Stroke::Solid, Marker::Circle);
        }
        if no_gap > 0 {
            lower.legend.push(Entry {
                sample: Sample::Note,
                text: format!("plug-in: {no_gap} cells with mean gap ≤ 0 not on the log scale"),
            });
        }
        if cut_bars > 0 {
            lower.legend.push(Entry {
                sample: Sample::Note,
                text: cut_text(cut_bars),
            });
        }
    }
    if equal > 0 {
        let what = if equal == 1 {
            "value equals"
        } else {
            "values equal"
        };
        lower.legend.push(Entry {
            sample: Sample::Note,
            text: format!("{equal} comparator {what} exact to 10⁻¹²: not on the log scale"),
        });
    }
    if !above.is_empty() {
        lower.legend.push(Entry {
            sample: Sample::Note,
            text: format!("above exact, which THEORY rules out: {}", above.join("; ")),
        });
    }
    // Notes go with the upper legend: the lower panel is short.
    upper.legend.append(&mut lower.legend);
    if lower.series.is_empty() {
        upper.subtitle = sub.join("  ·  ");
        return (upper, None);
    }
    sub.push("lower panel: exact − objective (log scale)".into());
    upper.subtitle = sub.join("  ·  ");
    (upper, Some(lower))
}

// ---------------------------------------------------------------------------------------
// Number formatting.

const SUPERSCRIPT: [char; 10] = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];

/// 10 to an integer power, with superscript digits: "10⁻³".
fn pow10_text(k: i64) -> String {
    let mut s = String::from("10");
    if k < 0 {
        s.push('⁻');
    }
    for d in k.unsigned_abs().to_string().bytes() {
        s.push(SUPERSCRIPT[(d - b'0') as usize]);
    }
    s
}

/// Replaces ASCII minus signs with the typographic minus.
fn minus(s: String) -> String {
    s.replace('-', "−")
}

/// A short number: up to 4 significant digits, no trailing zeros.
fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return format!("{v}");
    }
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    let s = if (1e-3..1e5).contains(&a) {
        let decimals = (3 - a.log10().floor() as i64).clamp(0, 6) as usize;
        let t = format!("{v:.decimals$}");
        if t.contains('.') {
            t.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            t
        }
    } else {
        let k = a.log10().floor() as i64;
        let m = v / 10f64.powi(k as i32);
        format!("{}×{}", fmt_num(m), pow10_text(k))
    };
    minus(s)
}

/// A sample size: the integer below 10^5, else mantissa × power of ten ("10⁶", "3.2×10⁵").
fn fmt_n(n: u64) -> String {
    if n < 100_000 {
        return n.to_string();
    }
    let k = (n as f64).log10().floor() as i64;
    let m = n as f64 / 10f64.powi(k as i32);
    let m = (m * 100.0).round() / 100.0;
    if m == 1.0 {
        pow10_text(k)
    } else {
        format!("{}×{}", fmt_num(m), pow10_text(k))
    }
}

/// "−0.97, 90% CI [−1.02, −0.92]" (the interval only when both ends are known).
fn fmt_estimate(v: f64, e: &ExponentEstimate) -> String {
    let f = |x: f64| minus(format!("{x:.2}"));
    match (e.ci_low, e.ci_high) {
        (Some(l), Some(h)) if l.is_finite() && h.is_finite() => {
            let level = if e.ci_level > 0.0 && e.ci_level < 1.0 {
                format!("{}% CI", fmt_num(100.0 * e.ci_level))
            } else {
                "CI".into()
            };
            format!("{}, {level} [{}, {}]", f(v), f(l), f(h))
        }
        _ => f(v),
    }
}

fn cut_text(k: usize) -> String {
    if k == 1 {
        "1 interval reaches ≤ 0: its bar is cut at the axis".into()
    } else {
        format!("{k} intervals reach ≤ 0: their bars are cut at the axis")
    }
}

fn file_safe(s: &str) -> String {
    let t: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    if t.is_empty() { "result".into() } else { t }
}

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
}

impl Axis {
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

fn shorten(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).collect::<String>() + "…"
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

fn usvg_options() -> resvg::usvg::Options<'static> {
    resvg::usvg::Options {
        font_family: FONT_FAMILY.to_string(),
        fontdb: font_db(),
        ..Default::default()
    }
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Width in pixels of `text` at font size `px` in the embedded font (an estimate if the
/// measurement fails).
fn text_width(text: &str, px: f64) -> f64 {
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

const TITLE_PX: f64 = 19.0;
const SUBTITLE_PX: f64 = 13.0;
const TICK_PX: f64 = 14.0;
const DESC_PX: f64 = 15.0;
const LEGEND_PX: f64 = 13.0;
const HEADER_H: u32 = 62;
const MARGIN: u32 = 18;

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
}

/// A figure of one panel.
const FULL_PANEL: PanelBox = PanelBox {
    top: HEADER_H,
    bottom: MARGIN - 6,
    x_labels: true,
    min_y_area: 0,
    x_range: None,
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
                    let c = m.px((p.x, p.y));
                    segment(c, c, 7.0);
                    if let Some((lo, hi)) = p.bar {
                        segment(m.px((p.x, lo.unwrap_or(m.y.0))), m.px((p.x, hi)), 5.0);
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

const LEGEND_ROW: f64 = 20.0;
const LEGEND_PAD: f64 = 8.0;
const LEGEND_SAMPLE: f64 = 40.0;

const LEGEND_COLUMN_GAP: f64 = 18.0;

/// Width of a legend entry's sample and text.
fn entry_width(e: &Entry) -> f64 {
    let indent = if matches!(e.sample, Sample::Note) {
        0.0
    } else {
        LEGEND_SAMPLE + 6.0
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
    let w = fig
        .legend
        .iter()
        .map(|e| {
            let indent = if matches!(e.sample, Sample::Note) {
                0.0
            } else {
                LEGEND_SAMPLE + 6.0
            };
            indent + text_width(&e.text, LEGEND_PX)
        })
        .fold(0.0, f64::max);
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
fn render(fig: &Figure) -> String {
    let p = place(fig, FULL_PANEL);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        let _ = draw(&root, fig, &p);
        let _ = root.present();
    }
    tidy_font_sizes(&svg)
}

/// Where the upper and lower panels of a stacked figure sit: the lower one takes about the
/// lower third of the figure.
fn stacked_boxes(x_range: (f64, f64), min_y_area: u32) -> [PanelBox; 2] {
    let split = (HEIGHT as f64 * 0.64).round() as u32;
    [
        PanelBox {
            top: HEADER_H,
            bottom: HEIGHT - split + 4,
            x_labels: false,
            min_y_area,
            x_range: Some(x_range),
        },
        PanelBox {
            top: split + 12,
            bottom: MARGIN - 6,
            x_labels: true,
            min_y_area,
            x_range: Some(x_range),
        },
    ]
}

/// Renders two panels that share the x axis: `upper` (title, subtitle and legend; no x tick
/// labels) above `lower`, with equal y label areas so that the plotting areas line up. The
/// upper legend takes 1, 2 or 3 columns, whichever needs the least growth of the y range to
/// stay clear of the data (fewer columns on a tie).
fn render_stacked(upper: &Figure, lower: &Figure) -> String {
    let xr = x_range(upper);
    let keyed = upper
        .legend
        .iter()
        .filter(|e| !matches!(e.sample, Sample::Note))
        .count();
    let mut upper = upper.clone();
    let mut best: Option<(f64, usize)> = None;
    for cols in 1..=3usize {
        if cols > 1 && keyed <= cols {
            break;
        }
        upper.legend_columns = cols;
        let ext = place(&upper, stacked_boxes(xr, 0)[0]).extension;
        if best.is_none_or(|(b, _)| ext < b - 1e-3) {
            best = Some((ext, cols));
        }
    }
    upper.legend_columns = best.map_or(1, |b| b.1);
    let mut placed = [
        place(&upper, stacked_boxes(xr, 0)[0]),
        place(lower, stacked_boxes(xr, 0)[1]),
    ];
    let y_area = placed[0].layout.y_area.max(placed[1].layout.y_area);
    if placed.iter().any(|p| p.layout.y_area != y_area) {
        let boxes = stacked_boxes(xr, y_area);
        placed = [place(&upper, boxes[0]), place(lower, boxes[1])];
    }
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
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
    let x_axis = Axis::new(&fig.x, xlo, xhi);

    let tick_h = TICK_PX * 1.2;
    // The y axis, the label areas and the plotting rectangle for a y range.
    let setup = |lo: f64, hi: f64| {
        let y_axis = Axis::new(&fig.y, lo, hi);
        let widest = y_axis
            .major
            .iter()
            .map(|&v| text_width(&y_axis.label(v), TICK_PX))
            .fold(0.0, f64::max);
        let layout = Layout {
            x_area: if b.x_labels {
                (10.0 + tick_h + 10.0 + DESC_PX * 1.3) as u32
            } else {
                8
            },
            y_area: ((10.0 + widest + 12.0 + DESC_PX * 1.3) as u32).max(b.min_y_area),
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
    let gap = 10.0;
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
    let mut corner = if fig.legend.is_empty() || fig.empty.is_some() || too_wide {
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
    root.fill(&WHITE).map_err(e)?;
    // Title and subtitle.
    let center = Pos::new(HPos::Center, VPos::Top);
    root.draw(&Text::new(
        fig.title.clone(),
        ((WIDTH / 2) as i32, 12),
        text_style(TITLE_PX, BLACK).pos(center),
    ))
    .map_err(e)?;
    root.draw(&Text::new(
        fig.subtitle.clone(),
        ((WIDTH / 2) as i32, 12 + (TITLE_PX * 1.45) as i32),
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
        if layout.x_labels {
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
    mesh.y_desc(fig.y.desc.clone())
        .label_style(text_style(TICK_PX, BLACK))
        .axis_desc_style(text_style(DESC_PX, BLACK))
        .bold_line_style(C_GRID.stroke_width(1))
        .light_line_style(C_GRID_LIGHT.stroke_width(1))
        .axis_style(BLACK.stroke_width(1))
        .set_all_tick_mark_size(5)
        .draw()
        .map_err(e)?;

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
            let bar = color.stroke_width(1);
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
                                + PathElement::new(vec![(-4, 0), (4, 0)], bar)
                        }))
                        .map_err(e)?;
                }
            }
            for p in pts {
                match marker {
                    Marker::Circle => {
                        chart
                            .draw_series(std::iter::once(
                                EmptyElement::at((p.x, p.y))
                                    + Circle::new((0, 0), 4, color.filled())
                                    + Circle::new((0, 0), 4, WHITE.stroke_width(1)),
                            ))
                            .map_err(e)?;
                    }
                    Marker::Triangle => {
                        chart
                            .draw_series(std::iter::once(
                                EmptyElement::at((p.x, p.y))
                                    + Polygon::new(vec![(0, -6), (-5, 3), (5, 3)], color.filled())
                                    + PathElement::new(
                                        vec![(0, -6), (-5, 3), (5, 3), (0, -6)],
                                        color.mix(0.9).stroke_width(1),
                                    ),
                            ))
                            .map_err(e)?;
                    }
                    other => draw_marker_px(root, chart.backend_coord(&(p.x, p.y)), *other, *color)
                        .map_err(e)?,
                }
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
            BLACK.stroke_width(1),
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
    root.draw(&Rectangle::new(
        [(x0, y0), (x0 + w.round() as i32, y0 + h.round() as i32)],
        WHITE.mix(0.92).filled(),
    ))?;
    root.draw(&Rectangle::new(
        [(x0, y0), (x0 + w.round() as i32, y0 + h.round() as i32)],
        RGBColor(0xAA, 0xAA, 0xAA).stroke_width(1),
    ))?;
    let grid: Vec<(f64, usize)> = if fig.legend_columns > 1 {
        legend_grid(fig).0
    } else {
        (0..fig.legend.len()).map(|i| (0.0, i)).collect()
    };
    for (entry, &(dx, i)) in fig.legend.iter().zip(&grid) {
        let cy = y0 + (LEGEND_PAD + LEGEND_ROW * (i as f64 + 0.5) - 2.0).round() as i32;
        let sx = x0 + LEGEND_PAD as i32 + dx.round() as i32;
        let sw = LEGEND_SAMPLE as i32;
        let mut tx = sx + sw + 6;
        match &entry.sample {
            Sample::Marker(marker, color, bar) => {
                let c = (sx + sw / 2, cy);
                if *bar {
                    let s = color.stroke_width(1);
                    root.draw(&PathElement::new(vec![(c.0, cy - 8), (c.0, cy + 8)], s))?;
                    root.draw(&PathElement::new(
                        vec![(c.0 - 4, cy - 8), (c.0 + 4, cy - 8)],
                        s,
                    ))?;
                    root.draw(&PathElement::new(
                        vec![(c.0 - 4, cy + 8), (c.0 + 4, cy + 8)],
                        s,
                    ))?;
                }
                match marker {
                    Marker::Circle => {
                        root.draw(&Circle::new(c, 4, color.filled()))?;
                        root.draw(&Circle::new(c, 4, WHITE.stroke_width(1)))?;
                    }
                    Marker::Triangle => root.draw(&Polygon::new(
                        vec![(c.0, c.1 - 6), (c.0 - 5, c.1 + 3), (c.0 + 5, c.1 + 3)],
                        color.filled(),
                    ))?,
                    other => draw_marker_px(root, c, *other, *color)?,
                }
            }
            Sample::LineMarker(color, width, dash, marker) => {
                if let Some(dash) = dash {
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
                    for seg in dashes(
                        &[(sx as f64, cy as f64), ((sx + sw) as f64, cy as f64)],
                        *dash,
                        &unit,
                    ) {
                        let seg: Vec<(i32, i32)> = seg
                            .into_iter()
                            .map(|(a, b)| (a.round() as i32, b.round() as i32))
                            .collect();
                        root.draw(&PathElement::new(seg, color.stroke_width(*width)))?;
                    }
                }
                draw_marker_px(root, (sx + sw / 2, cy), *marker, *color)?;
            }
            Sample::Line(color, width, dash) => {
                let style = color.stroke_width(*width);
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
                for seg in dashes(
                    &[(sx as f64, cy as f64), ((sx + sw) as f64, cy as f64)],
                    *dash,
                    &unit,
                ) {
                    let seg: Vec<(i32, i32)> = seg
                        .into_iter()
                        .map(|(a, b)| (a.round() as i32, b.round() as i32))
                        .collect();
                    root.draw(&PathElement::new(seg, style))?;
                }
            }
            Sample::Note => tx = sx,
        }
        let color = if matches!(entry.sample, Sample::Note) {
            C_NOTE
        } else {
            BLACK
        };
        root.draw(&Text::new(
            entry.text.clone(),
            (tx, cy),
            text_style(LEGEND_PX, color).pos(Pos::new(HPos::Left, VPos::Center)),
        ))?;
    }
    Ok(())
}

/// Draws a marker centred on pixel `c` of the figure.
fn draw_marker_px(
    root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    c: (i32, i32),
    marker: Marker,
    color: RGBColor,
) -> Result<(), DrawingAreaErrorKind<std::io::Error>> {
    let (x, y) = c;
    let outline = color.mix(0.9).stroke_width(1);
    match marker {
        Marker::Circle => {
            root.draw(&Circle::new(c, 4, color.filled()))?;
            root.draw(&Circle::new(c, 4, WHITE.stroke_width(1)))
        }
        Marker::Triangle | Marker::TriangleDown | Marker::Diamond => {
            let pts = match marker {
                Marker::Triangle => vec![(x, y - 6), (x - 5, y + 3), (x + 5, y + 3)],
                Marker::TriangleDown => vec![(x, y + 6), (x - 5, y - 3), (x + 5, y - 3)],
                _ => vec![(x, y - 6), (x + 5, y), (x, y + 6), (x - 5, y)],
            };
            root.draw(&Polygon::new(pts.clone(), color.filled()))?;
            let mut ring = pts.clone();
            ring.push(pts[0]);
            root.draw(&PathElement::new(ring, outline))
        }
        Marker::Ring => root.draw(&Circle::new(c, 7, color.stroke_width(2))),
        Marker::Square => root.draw(&Rectangle::new(
            [(x - 4, y - 4), (x + 4, y + 4)],
            color.filled(),
        )),
        Marker::Cross => {
            let s = color.stroke_width(2);
            root.draw(&PathElement::new(vec![(x - 5, y - 5), (x + 5, y + 5)], s))?;
            root.draw(&PathElement::new(vec![(x - 5, y + 5), (x + 5, y - 5)], s))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::statistics::Summary;
    use serde_json::json;

    fn summary(n: u64, mean: f64, q: f64) -> Summary {
        Summary {
            n,
            replications: 50,
            mean,
            std_err: mean * 0.1,
            ci_low: mean * 0.8,
            ci_high: mean * 1.2,
            median: mean,
            quantile: q,
            quantile_level: 0.95,
            min: 0.0,
            max: q * 2.0,
        }
    }

    fn estimate(slope: Option<f64>, tail_from_n: u64) -> ExponentEstimate {
        serde_json::from_value(json!({
            "statistic": "mean", "quantile_level": null,
            "slope": slope, "intercept": slope.map(|_| 0.0),
            "ci_low": slope.map(|s| s - 0.05), "ci_high": slope.map(|s| s + 0.05),
            "ci_level": 0.9, "tail_from_n": tail_from_n, "points": 2, "pairwise": [],
            "bootstrap_resamples": 0, "bootstrap_floor_hits": 0, "floor_hit": slope.is_none(),
        }))
        .expect("an exponent estimate")
    }

    /// A result with one cell per gamma, gaps ~ gamma / n.
    fn result(gammas: &[f64], ns: &[u64]) -> ResultFile {
        let cells: Vec<serde_json::Value> = gammas
            .iter()
            .map(|&g| {
                let summaries: Vec<Summary> = ns
                    .iter()
                    .map(|&n| summary(n, g / n as f64, 3.0 * g / n as f64))
                    .collect();
                json!({
                    "label": format!("gamma={g}"),
                    "weights": [0.5, 0.5],
                    "gamma": { "fixed": g },
                    "n": ns,
                    "gamma_at_n": ns.iter().map(|_| g).collect::<Vec<_>>(),
                    "summaries": summaries,
                    "exponent_mean": estimate(Some(-1.0), ns[ns.len() / 2]),
                    "exponent_quantile": estimate(Some(-1.0), ns[ns.len() / 2]),
                    "mle_iterations_mean": ns.iter().map(|_| 0.0).collect::<Vec<_>>(),
                    "mle_boundary_fraction": ns.iter().map(|_| 0.0).collect::<Vec<_>>(),
                    "coverage": 1.0,
                    "comparators": {},
                    "raw": ns.iter().map(|_| vec![0.0; 2]).collect::<Vec<_>>(),
                })
            })
            .collect();
        // The typed parts that the figures do not vary come from a real checked spec.
        let spec = crate::spec::parse(
            "seed = 1\nreplications = 50\n[instance]\nsource = \"random\"\ncontexts = 2\nresponses = 2\nreferences = 2\n[instance.reward]\nclass = \"linear\"\ndim = 3\nbound = 1.0\n[experiment]\ndivergence = \"rkl\"\nquantity = \"suboptimality\"\nweights = [0.5, 0.5]\ngamma = 1.0\nn = [100, 1000]\n",
            std::path::Path::new("unit_test_spec.toml"),
            "unit_test_spec",
            None,
        )
        .expect("a spec");
        serde_json::from_value(json!({
            "format": crate::result::FORMAT,
            "name": "unit_test_spec",
            "claims": ["T5.2"],
            "divergence": "rkl",
            "quantity": "suboptimality",
            "provenance": { "mrkl_version": "0", "git_commit": null, "spec_hash": "0", "seed": 1 },
            "ours": crate::analysis::ours(&spec),
            "spec": spec.to_record(),
            "instance": {
                "origin": spec.to_record().instance_origin, "contexts": 2, "responses": 2, "references": 2,
                "reward_class": "linear", "dim": 3, "candidates": null, "r_max": 1.0, "hash": "0"
            },
            "cells": cells,
        }))
        .expect("a result file")
    }

    fn overlay() -> ClaimOverlay {
        ClaimOverlay {
            id: "T5.2".into(),
            claimed_exponent: Some(-1.0),
            bound: Some(vec![(100, 1.0), (1000, 0.1), (10000, 0.0)]),
            verdict: Some("consistent".into()),
            cell: None,
        }
    }

    #[test]
    fn rate_plot_names_the_claim_and_its_lines() {
        let r = result(&[1.0], &[100, 1000, 10000, 100000]);
        let svg = rate_plot_svg(&r, 0, Some(&overlay()));
        assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
        for want in [
            "T5.2: RKL sub-optimality gap vs sample size",
            "verdict: consistent",
            "mean, 95% interval (50 replications)",
            "0.95-quantile: exponent −1.00, 90% CI [−1.05, −0.95]",
            "fit to the mean, n ≥ 10000: exponent −1.00, 90% CI [−1.05, −0.95]",
            "claimed exponent −1 (T5.2)",
            "bound of T5.2 (1 value ≤ 0 or infinite not shown)",
            "RKL sub-optimality gap  (γ = 1, linear class, d = 3)",
            "sample size n",
            "font-family=\"DejaVu Sans, sans-serif\"",
            "10⁻⁴",
        ] {
            assert!(svg.contains(want), "missing {want:?}");
        }
    }

    #[test]
    fn odd_results_do_not_panic() {
        // One n level, zero gaps, no exponent, a missing cell.
        let mut r = result(&[1.0], &[1000]);
        r.cells[0].summaries[0] = summary(1000, 0.0, 0.0);
        r.cells[0].exponent_mean = estimate(None, 1000);
        let svg = rate_plot_svg(&r, 0, Some(&overlay()));
        assert!(svg.contains("nothing to show on a log scale"));
        assert!(svg.contains("1 of 1 n with mean ≤ 0 not shown"));
        assert!(rate_plot_svg(&r, 5, None).contains("cell 5 does not exist"));
        // Equal values at every n.
        let mut r = result(&[1.0, 2.0], &[1000, 2000, 4000]);
        for s in &mut r.cells[0].summaries {
            *s = summary(s.n, 1e-3, 1e-3);
        }
        for svg in [rate_plot_svg(&r, 0, None), sweep_plot_svg(&r, 99)] {
            svg_to_png(&svg).expect("renders");
        }
    }

    #[test]
    fn sweep_plot_and_png() {
        let r = result(&[0.1, 1.0, 10.0], &[1000, 10000, 100000]);
        let svg = sweep_plot_svg(&r, 2);
        assert!(svg.contains("T5.2: RKL sub-optimality gap vs γ at n = 10⁵"));
        assert!(svg.contains("regularisation γ (log scale)"));
        let png = svg_to_png(&svg).expect("renders");
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        // IHDR: width and height, big-endian, at bytes 16..24.
        let w = u32::from_be_bytes(png[16..20].try_into().unwrap());
        let h = u32::from_be_bytes(png[20..24].try_into().unwrap());
        assert_eq!((w, h), (WIDTH, HEIGHT));
        let png2 = svg_to_png_scaled(&svg, 2.0).expect("renders");
        let w2 = u32::from_be_bytes(png2[16..20].try_into().unwrap());
        assert_eq!(w2, 2 * WIDTH);
    }

    #[test]
    fn text_is_measured_with_the_embedded_font() {
        let w = text_width("sample size n", 15.0);
        assert!(w > 60.0 && w < 140.0, "{w}");
        assert!(text_width("mm", 15.0) > text_width("ii", 15.0));
    }

    /// Comparator objectives for a cell with gamma `g`: exact, then each comparator lower.
    fn comparators(g: f64) -> std::collections::BTreeMap<String, f64> {
        let exact = 0.5 - 0.2 / g;
        [
            ("exact", exact),
            ("mrpo", exact - 0.01 / g),
            ("mrpo_ctro", exact - 0.02 / g),
            ("arithmetic_mixture", exact - 0.03 / g),
            ("reference_1", exact - 0.3 / g),
            ("reference_2", exact - 0.25 / g),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    #[test]
    fn objective_plot_names_every_series() {
        let mut r = result(&[0.5, 2.0], &[100, 1000, 10000]);
        for c in &mut r.cells {
            c.comparators = comparators(c.gamma_at_n[0]);
        }
        let svg = objective_sweep_svg(&r);
        for want in [
            "True RKL objective of the exact solution and the comparators vs γ",
            "exact multi-reference RKL",
            "plug-in policy at n = 10000 (mean, 95% interval)",
            "MRPO (harmonic mean)",
            "MRPO + CTRO clipping",
            "arithmetic mixture as reference",
            "reference 1 alone",
            "reference 2 alone",
            "RKL objective under the true reward",
            "exact − objective",
            "regularisation γ (log scale)",
        ] {
            assert!(svg.contains(want), "missing {want:?}");
        }
        assert!(!svg.contains("THEORY rules out"));
        svg_to_png(&svg).expect("renders");
        // A comparator equal to exact is left off the log panel; one above exact is named.
        let (e0, e1) = (
            r.cells[0].comparators["exact"],
            r.cells[1].comparators["exact"],
        );
        r.cells[0].comparators.insert("mrpo".into(), e0);
        r.cells[1]
            .comparators
            .insert("reference_2".into(), e1 + 0.1);
        let svg = objective_sweep_svg(&r);
        assert!(svg.contains("1 comparator value equals exact to 10⁻¹²"));
        assert!(svg.contains("THEORY rules out: reference 2 alone at gamma=2"));
        svg_to_png(&svg).expect("renders");
        // Only the exact objective and a quantity without a plug-in policy: one panel.
        r.quantity = serde_json::from_value(json!("reward_gap")).unwrap();
        for c in &mut r.cells {
            c.comparators.retain(|k, _| k == "exact");
        }
        let svg = objective_sweep_svg(&r);
        assert!(svg.contains("True RKL objective of the exact solution vs γ"));
        assert!(!svg.contains("exact − objective"));
        // No comparators at all: a figure that says so.
        for c in &mut r.cells {
            c.comparators.clear();
        }
        assert!(objective_sweep_svg(&r).contains("no comparator objectives"));
    }

    #[test]
    fn objective_plot_only_for_sweeps_with_comparators() {
        let names = |r: &ResultFile, tag: &str| -> Vec<String> {
            let dir = std::env::temp_dir()
                .join(format!("mrkl_objective_test_{}_{tag}", std::process::id()));
            let files = write_plots(r, &[], &dir).expect("writes");
            let _ = std::fs::remove_dir_all(&dir);
            files
        };
        let mut two = result(&[0.5, 2.0], &[100, 1000, 10000]);
        assert!(!names(&two, "bare").iter().any(|f| f.contains("objective")));
        for c in &mut two.cells {
            c.comparators = comparators(c.gamma_at_n[0]);
        }
        let files = names(&two, "two");
        assert!(files.contains(&"unit_test_spec_objective.svg".to_string()));
        assert!(files.contains(&"unit_test_spec_objective.png".to_string()));
        let mut one = result(&[1.0], &[100, 1000, 10000]);
        one.cells[0].comparators = comparators(1.0);
        assert!(!names(&one, "one").iter().any(|f| f.contains("objective")));
    }

    #[test]
    fn write_plots_writes_svg_and_png() {
        let dir = std::env::temp_dir().join(format!("mrkl_plot_test_{}", std::process::id()));
        let r = result(&[0.5, 2.0], &[100, 1000, 10000]);
        let files = write_plots(&r, &[overlay()], &dir).expect("writes");
        assert_eq!(
            files,
            [
                "unit_test_spec_rate_gamma-0.5.svg",
                "unit_test_spec_rate_gamma-0.5.png",
                "unit_test_spec_rate_gamma-2.svg",
                "unit_test_spec_rate_gamma-2.png",
                "unit_test_spec_sweep.svg",
                "unit_test_spec_sweep.png",
            ]
        );
        for f in &files {
            assert!(dir.join(f).metadata().unwrap().len() > 1000);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
