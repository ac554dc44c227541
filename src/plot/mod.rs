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
//!
//! Layout: this file is the public API; `model` is the figure model (data only), `style`
//! the one style of every figure, `format` how numbers and names are written, `render` the
//! engine that draws a figure with plotters (its module doc says what plotters does there
//! and what is ours, and why), and one file per kind of figure turns a result into figures
//! behind `FigureKind`: `rate`, `sweep`, `objective`, `series` and `simplex` (which writes
//! its SVG itself, in the same style).

mod format;
mod model;
mod objective;
mod power;
mod rate;
mod render;
mod series;
mod simplex;
mod style;
mod sweep;
#[cfg(test)]
mod tests;

pub use simplex::simplex_plot_svg;
pub use style::{FONT_FAMILY, HEIGHT, WIDTH};

use crate::result::ResultFile;
use format::file_safe;
use render::{render, render_stacked, usvg_options};
use std::path::Path;
use style::C_PAPER;

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

/// A kind of figure, drawn by its own file. `write_plots` asks each kind, per cell or once
/// per result, for its figure.
trait FigureKind {
    /// The word after the result's name in the file stem: `<name>_<stem>`, then
    /// `_<cell label>` for the cells of a result with several.
    fn stem(&self) -> &'static str;
    /// One figure per cell, else one per result of several cells.
    fn per_cell(&self) -> bool {
        false
    }
    /// The SVG of cell `k` (per-cell kinds; the others ignore `k`), or `None` where this kind
    /// has nothing to draw.
    fn svg(&self, result: &ResultFile, k: usize) -> Option<String>;
}

/// Log-log plot of one cell of a result against the sample size n:
/// - the mean gap at each n (filled circles) with its 95% interval as error bars,
/// - the (1 - delta)-quantile (triangles), with its fitted exponent in the legend,
/// - the least-squares line of the mean over the tail the exponent was fitted on, with the
///   exponent and its interval in the legend,
/// - if `overlay` gives one, a reference line with the claimed exponent over the same tail,
///   anchored at the fitted line's value at the first tail point (dashed),
/// - if `overlay` gives one, the claim's bound (dash-dotted),
/// - below, when the cell has a prediction (THEORY §8), a panel of n^-a x mean gap with the
///   predicted constant as a flat line, or of mean / predicted curve with the line at 1.
///
/// The y axis names the quantity, divergence, gamma (or its schedule) and reward class; the
/// title names the claim (the overlay's, else the result's tag, else the spec name), the
/// subtitle the spec, cell, replications and verdict. A `cell` out of range gives a figure
/// that says so.
pub fn rate_plot_svg(result: &ResultFile, cell: usize, overlay: Option<&ClaimOverlay>) -> String {
    let mut upper = rate::figure(result, cell, overlay);
    match rate::scaled_panel(result, cell) {
        Some(mut lower) if upper.empty.is_none() => {
            // Notes go with the upper legend: the lower panel is short.
            upper.legend.append(&mut lower.legend);
            render_stacked(&upper, &lower)
        }
        _ => render(&upper),
    }
}

/// Sweep plot over the cells of a result (one cell per gamma or per weight vector): the mean
/// gap at n level `n_index` (clamped to the grid) with its 95% interval, and the
/// (1 - delta)-quantile, against the swept parameter: gamma on a log axis (its value at that
/// n for schedules), the first weight alpha_1 (beta_1 for FKL) on a linear axis when K = 2,
/// otherwise the cell labels in spec order (written upwards, and every k-th only, when they
/// do not fit side by side). Reference lines:
/// - the predicted asymptote C n^a of each cell at that n, where the result has it (dotted,
///   through the cells; a marker per cell on a category axis);
/// - on a gamma axis, the least-squares line of log mean on log gamma over the cells, its
///   slope in the legend (wide, solid), and, when every cell's overlay (matched by `cell`
///   label) has a bound at that n, a line with the bound's slope in gamma anchored at the
///   fitted line's left end (dashed, on top).
pub fn sweep_plot_svg(result: &ResultFile, n_index: usize, overlays: &[ClaimOverlay]) -> String {
    render(&sweep::figure(result, n_index, overlays))
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
    let (upper, lower) = objective::figures(result);
    match lower {
        Some(lower) => render_stacked(&upper, &lower),
        None => render(&upper),
    }
}

/// Paired-series plot of one cell: the mean of the spec's quantity (the fitted policy:
/// exact plug-in, DPO or online) and of every recorded series that is a gap of the same
/// kind (the comparators' losses J(pi*) - J(pi_c), the plug-in MLE beside DPO, the offline
/// run beside online), each with its 95% interval, against n on log-log axes; below, on the
/// same n axis, each alternative's paired difference (alternative − fitted, per replication)
/// with its 95% interval, divided by the fitted policy's mean gap at that n (a linear axis
/// with its zero line, or a log axis when every mean is positive and they span more than a
/// factor 30). A `cell` out of range gives a figure that says so.
pub fn series_plot_svg(result: &ResultFile, cell: usize) -> String {
    match series::figures(result, cell) {
        (upper, Some(lower)) => render_stacked(&upper, &lower),
        (upper, None) => render(&upper),
    }
}

/// Power figure of a calibration (`crate::calibrate::power_panels`): detection rate against
/// the planted deviation, one curve per replication count with exact 95% intervals, and the
/// target power dashed.
pub fn power_plot_svg(panel: &crate::calibrate::PowerPanel) -> String {
    render(&power::figure(panel))
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
    pixmap.fill(tiny_skia::Color::from_rgba8(
        C_PAPER.0, C_PAPER.1, C_PAPER.2, 255,
    ));
    resvg::render(
        &tree,
        tiny_skia::Transform::from_scale(scale, scale),
        &mut pixmap.as_mut(),
    );
    pixmap.encode_png().map_err(|e| format!("PNG: {e}"))
}

/// Writes `<stem>.svg` and `<stem>.png` for every plot of a result into `dir` (created if
/// needed). Per cell, up to 8 cells: a paired-series plot if the cell records a paired
/// series (`<name>_series`) and a rate plot (`<name>_rate`), each stem followed by
/// `_<cell label>` when there are several cells (characters other than `[A-Za-z0-9._-]`
/// replaced by `-`). Each cell takes the overlay whose `cell` is its label, else the first
/// one without a cell. If the result has more than one cell: a sweep plot at the largest n
/// (`<name>_sweep`; if every mean is 0 there, at the largest n where some cell's mean is
/// positive), the simplex plot of a
/// K = 3 weight sweep (`<name>_simplex`) and, if every cell has comparator objectives, the
/// objective plot of [`objective_sweep_svg`] (`<name>_objective`). Files are written
/// atomically. Returns the file names written.
pub fn write_plots(
    result: &ResultFile,
    overlays: &[ClaimOverlay],
    dir: &Path,
) -> std::io::Result<Vec<String>> {
    let name = file_safe(&result.name);
    let rate = rate::Rate { overlays };
    let sweep = sweep::Sweep { overlays };
    let kinds: [&dyn FigureKind; 5] = [
        &series::Paired,
        &rate,
        &sweep,
        &simplex::Simplex,
        &objective::Objective,
    ];
    let several = result.cells.len() > 1;
    let mut plots: Vec<(String, String)> = Vec::new();
    // Per-cell plots up to 8 cells (beyond, the sweep plot shows the cells together).
    let per_cell = result.cells.len() <= 8;
    for (k, c) in result.cells.iter().enumerate().filter(|_| per_cell) {
        for kind in kinds.iter().filter(|f| f.per_cell()) {
            if let Some(svg) = kind.svg(result, k) {
                let stem = match several {
                    true => format!("{name}_{}_{}", kind.stem(), file_safe(&c.label)),
                    false => format!("{name}_{}", kind.stem()),
                };
                plots.push((stem, svg));
            }
        }
    }
    for kind in kinds.iter().filter(|f| several && !f.per_cell()) {
        if let Some(svg) = kind.svg(result, 0) {
            plots.push((format!("{name}_{}", kind.stem()), svg));
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
