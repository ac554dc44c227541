//! Simplex plot of a K = 3 weight sweep (MR): every cell placed at its weights in barycentric
//! coordinates, coloured by the mean sub-optimality gap (left) and, when recorded, by the
//! mean expected true reward E_x E_{pi_hat} r* of the plug-in policy (right), at the largest
//! n; the best cell of each panel (smallest gap, largest reward) is ringed. Written as plain
//! SVG in the style of the other plots ([`super::style`]), rasterised by
//! [`super::svg_to_png`].

use super::FigureKind;
use super::format::{divergence_text, fmt_num, xml_escape};
use super::style::{
    C_INK, C_NOTE, C_PAPER, DESC_PX, FONT_STACK, HAIRLINE, HEIGHT, LEGEND_PX, SIMPLEX_BEST_R,
    SIMPLEX_POINT_R, SMALL_PX, SUBTITLE_PX, THICK, THIN, TITLE_PX, WIDTH, hex, viridis,
};
use crate::result::ResultFile;
use plotters::style::RGBColor;
use std::fmt::Write;

/// The simplex plot of a K = 3 weight sweep.
pub(super) struct Simplex;

impl FigureKind for Simplex {
    fn stem(&self) -> &'static str {
        "simplex"
    }
    fn svg(&self, result: &ResultFile, _: usize) -> Option<String> {
        simplex_plot_svg(result)
    }
}

/// Whether the result is a sweep over three weights (at least three cells of three weights).
pub(super) fn applies(result: &ResultFile) -> bool {
    let cells = &result.cells;
    cells.len() >= 3 && cells.iter().all(|c| c.weights.len() == 3)
}

fn text(s: &mut String, x: f64, y: f64, size: f64, anchor: &str, fill: RGBColor, content: &str) {
    let _ = writeln!(
        s,
        r#"<text x="{x:.1}" y="{y:.1}" text-anchor="{anchor}" font-family="{FONT_STACK}" font-size="{size}" fill="{}">{}</text>"#,
        hex(fill),
        xml_escape(content)
    );
}

/// One panel: triangle with corners (alpha = e_1 top, e_2 bottom left, e_3 bottom right)
/// centred at `cx`, points coloured by `values` (None: not drawn), colour bar on the right.
fn panel(
    s: &mut String,
    cx: f64,
    title: &str,
    weights: &[Vec<f64>],
    values: &[Option<f64>],
    best_is_max: bool,
) {
    let side = 300.0;
    let h = side * 3f64.sqrt() / 2.0;
    let top = 150.0;
    let v = [
        (cx, top),
        (cx - side / 2.0, top + h),
        (cx + side / 2.0, top + h),
    ];
    // A weight vector's place in the triangle.
    let at = |w: &[f64]| {
        (
            w[0] * v[0].0 + w[1] * v[1].0 + w[2] * v[2].0,
            w[0] * v[0].1 + w[1] * v[1].1 + w[2] * v[2].1,
        )
    };
    text(s, cx, 115.0, DESC_PX, "middle", C_INK, title);
    let _ = writeln!(
        s,
        r#"<polygon points="{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}" fill="none" stroke="{}" stroke-width="{THIN}"/>"#,
        v[0].0,
        v[0].1,
        v[1].0,
        v[1].1,
        v[2].0,
        v[2].1,
        hex(C_NOTE)
    );
    for (k, dx, dy) in [(0, 0.0, -14.0), (1, -6.0, 24.0), (2, 6.0, 24.0)] {
        let corner = format!("α{} = 1 (π{})", ["₁", "₂", "₃"][k], ["₁", "₂", "₃"][k]);
        let (x, y) = (v[k].0 + dx, v[k].1 + dy);
        text(s, x, y, LEGEND_PX, "middle", C_INK, &corner);
    }
    let finite: Vec<f64> = values
        .iter()
        .flatten()
        .copied()
        .filter(|x| x.is_finite())
        .collect();
    if finite.is_empty() {
        let y = top + h / 2.0;
        text(s, cx, y, LEGEND_PX, "middle", C_NOTE, "not recorded");
        return;
    }
    let (lo, hi) = finite
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
            (a.min(x), b.max(x))
        });
    let span = if hi > lo { hi - lo } else { 1.0 };
    let mut best: Option<(usize, f64)> = None;
    for (i, (w, val)) in weights.iter().zip(values).enumerate() {
        let Some(val) = val.filter(|x| x.is_finite()) else {
            continue;
        };
        let (x, y) = at(w);
        let _ = writeln!(
            s,
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="{SIMPLEX_POINT_R}" fill="{}" stroke="{}" stroke-width="{HAIRLINE}"/>"#,
            hex(viridis((val - lo) / span)),
            hex(C_PAPER)
        );
        let better = match best {
            None => true,
            Some((_, b)) => (best_is_max && val > b) || (!best_is_max && val < b),
        };
        if better {
            best = Some((i, val));
        }
    }
    if let Some((i, val)) = best {
        let w = &weights[i];
        let (x, y) = at(w);
        let _ = writeln!(
            s,
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="{SIMPLEX_BEST_R}" fill="none" stroke="{}" stroke-width="{THICK}"/>"#,
            hex(C_INK)
        );
        let label = format!(
            "ringed: best α = ({}, {}, {}): {val:.4e}",
            fmt_num(w[0]),
            fmt_num(w[1]),
            fmt_num(w[2])
        );
        text(s, cx, top + h + 52.0, LEGEND_PX, "middle", C_INK, &label);
    }
    // Colour bar.
    let (bx, by, bh) = (cx + side / 2.0 + 20.0, top, h);
    let steps = 40;
    for k in 0..steps {
        let t = 1.0 - k as f64 / steps as f64;
        let _ = writeln!(
            s,
            r#"<rect x="{bx:.1}" y="{:.1}" width="14" height="{:.2}" fill="{}"/>"#,
            by + bh * k as f64 / steps as f64,
            bh / steps as f64 + 0.5,
            hex(viridis(t))
        );
    }
    for (y, v) in [(by + 5.0, hi), (by + bh, lo)] {
        text(
            s,
            bx + 18.0,
            y,
            SMALL_PX,
            "start",
            C_INK,
            &format!("{v:.3e}"),
        );
    }
}

/// The simplex plot of a K = 3 weight sweep at the largest n (see the module doc); `None`
/// if the result is not a sweep over three weights.
pub fn simplex_plot_svg(result: &ResultFile) -> Option<String> {
    if !applies(result) {
        return None;
    }
    let cells = &result.cells;
    let last = cells[0].n.len() - 1;
    let n = cells[0].n[last];
    let weights: Vec<Vec<f64>> = cells.iter().map(|c| c.weights.clone()).collect();
    let gap: Vec<Option<f64>> = cells.iter().map(|c| Some(c.summaries[last].mean)).collect();
    // Each cell's expected reward at the largest n, if recorded.
    let rewards: Vec<Option<&crate::statistics::Summary>> = cells
        .iter()
        .map(|c| {
            c.series
                .iter()
                .find(|s| s.name == "expected_reward")
                .and_then(|s| s.summaries[last].as_ref())
        })
        .collect();
    let reward: Vec<Option<f64>> = rewards.iter().map(|s| s.map(|s| s.mean)).collect();
    let reps = cells[0].summaries[last].replications;
    let width = WIDTH as f64;
    let mut s = format!(
        r#"<svg width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" xmlns="http://www.w3.org/2000/svg">
<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="{}"/>
"#,
        hex(C_PAPER)
    );
    let claim = result
        .claims
        .first()
        .cloned()
        .unwrap_or_else(|| result.name.clone());
    let title = format!(
        "{claim}: {} {} and expected reward on the simplex",
        divergence_text(result),
        result.quantity.name().replace('_', "-")
    );
    text(&mut s, width / 2.0, 30.0, TITLE_PX, "middle", C_INK, &title);
    let subtitle = format!(
        "spec {}  ·  {} cells  ·  {reps} replications per cell  ·  means at n = {n}",
        result.name,
        cells.len()
    );
    text(
        &mut s,
        width / 2.0,
        54.0,
        SUBTITLE_PX,
        "middle",
        C_NOTE,
        &subtitle,
    );
    let gap_title = "mean gap (lower is better)";
    panel(&mut s, 215.0, gap_title, &weights, &gap, false);
    let reward_title = "mean E_x E_π̂ r* (higher is better)";
    panel(&mut s, 645.0, reward_title, &weights, &reward, true);
    // How much of the colour range is noise: the median 95% half-width of a cell's mean.
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied()
    };
    let gap_hw = median(
        cells
            .iter()
            .map(|c| c.summaries[last].ci_high - c.summaries[last].mean)
            .collect(),
    );
    let reward_hw = median(
        rewards
            .iter()
            .flatten()
            .map(|m| m.ci_high - m.mean)
            .collect(),
    );
    let fmt = |v: Option<f64>| v.map(|v| format!("±{v:.2e}")).unwrap_or_else(|| "-".into());
    let data = if result.spec.shared_data {
        "every cell has the same data"
    } else {
        "cells have independent data"
    };
    let note = format!(
        "median 95% half-width of a cell's mean: gap {}, expected reward {} ({data})",
        fmt(gap_hw),
        fmt(reward_hw)
    );
    text(
        &mut s,
        width / 2.0,
        540.0,
        LEGEND_PX,
        "middle",
        C_NOTE,
        &note,
    );
    s.push_str("</svg>\n");
    Some(s)
}
