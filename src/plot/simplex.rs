//! Simplex plot of a K = 3 weight sweep (MR): every cell placed at its weights in barycentric
//! coordinates, coloured by the mean sub-optimality gap (left) and, when recorded, by the
//! mean expected true reward E_x E_{pi_hat} r* of the plug-in policy (right), at the largest
//! n; the best cell of each panel (smallest gap, largest reward) is ringed. Written as plain
//! SVG (same font and size as the other plots), rasterised by [`super::svg_to_png`].

use crate::result::ResultFile;
use std::fmt::Write;

const WIDTH: f64 = 900.0;
const HEIGHT: f64 = 600.0;
const FONT: &str = "DejaVu Sans, sans-serif";

/// Viridis, sampled at 0, 1/4, 1/2, 3/4, 1 and interpolated linearly.
fn colour(t: f64) -> String {
    const STOPS: [(f64, f64, f64); 5] = [
        (68.0, 1.0, 84.0),
        (59.0, 82.0, 139.0),
        (33.0, 145.0, 140.0),
        (94.0, 201.0, 98.0),
        (253.0, 231.0, 37.0),
    ];
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let x = t * 4.0;
    let i = (x.floor() as usize).min(3);
    let f = x - i as f64;
    let (a, b) = (STOPS[i], STOPS[i + 1]);
    let mix = |p: f64, q: f64| (p + (q - p) * f).round() as u8;
    format!(
        "#{:02X}{:02X}{:02X}",
        mix(a.0, b.0),
        mix(a.1, b.1),
        mix(a.2, b.2)
    )
}

fn text(s: &mut String, x: f64, y: f64, size: f64, anchor: &str, fill: &str, content: &str) {
    let _ = writeln!(
        s,
        r#"<text x="{x:.1}" y="{y:.1}" text-anchor="{anchor}" font-family="{FONT}" font-size="{size}" fill="{fill}">{}</text>"#,
        super::xml_escape(content)
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
    text(s, cx, 115.0, 15.0, "middle", "#000000", title);
    let _ = writeln!(
        s,
        r##"<polygon points="{:.1},{:.1} {:.1},{:.1} {:.1},{:.1}" fill="none" stroke="#555555" stroke-width="1"/>"##,
        v[0].0, v[0].1, v[1].0, v[1].1, v[2].0, v[2].1
    );
    text(
        s,
        v[0].0,
        v[0].1 - 14.0,
        13.0,
        "middle",
        "#000000",
        "α₁ = 1 (π₁)",
    );
    text(
        s,
        v[1].0 - 6.0,
        v[1].1 + 24.0,
        13.0,
        "middle",
        "#000000",
        "α₂ = 1 (π₂)",
    );
    text(
        s,
        v[2].0 + 6.0,
        v[2].1 + 24.0,
        13.0,
        "middle",
        "#000000",
        "α₃ = 1 (π₃)",
    );
    let finite: Vec<f64> = values
        .iter()
        .flatten()
        .copied()
        .filter(|x| x.is_finite())
        .collect();
    if finite.is_empty() {
        text(
            s,
            cx,
            top + h / 2.0,
            13.0,
            "middle",
            "#555555",
            "not recorded",
        );
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
        let x = w[0] * v[0].0 + w[1] * v[1].0 + w[2] * v[2].0;
        let y = w[0] * v[0].1 + w[1] * v[1].1 + w[2] * v[2].1;
        let _ = writeln!(
            s,
            r##"<circle cx="{x:.1}" cy="{y:.1}" r="8" fill="{}" stroke="#FFFFFF" stroke-width="0.5"/>"##,
            colour((val - lo) / span)
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
        let x = w[0] * v[0].0 + w[1] * v[1].0 + w[2] * v[2].0;
        let y = w[0] * v[0].1 + w[1] * v[1].1 + w[2] * v[2].1;
        let _ = writeln!(
            s,
            r##"<circle cx="{x:.1}" cy="{y:.1}" r="12" fill="none" stroke="#000000" stroke-width="2"/>"##
        );
        let label = format!(
            "ringed: best α = ({}, {}, {}): {val:.4e}",
            super::fmt_num(w[0]),
            super::fmt_num(w[1]),
            super::fmt_num(w[2])
        );
        text(s, cx, top + h + 52.0, 13.0, "middle", "#000000", &label);
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
            colour(t)
        );
    }
    text(
        s,
        bx + 18.0,
        by + 5.0,
        11.0,
        "start",
        "#000000",
        &format!("{hi:.3e}"),
    );
    text(
        s,
        bx + 18.0,
        by + bh,
        11.0,
        "start",
        "#000000",
        &format!("{lo:.3e}"),
    );
}

/// The simplex plot of a K = 3 weight sweep at the largest n (see the module doc); `None`
/// if the result is not a sweep over three weights.
pub fn simplex_plot_svg(result: &ResultFile) -> Option<String> {
    let cells = &result.cells;
    if cells.len() < 3 || cells.iter().any(|c| c.weights.len() != 3) {
        return None;
    }
    let last = cells[0].n.len() - 1;
    let n = cells[0].n[last];
    let weights: Vec<Vec<f64>> = cells.iter().map(|c| c.weights.clone()).collect();
    let gap: Vec<Option<f64>> = cells.iter().map(|c| Some(c.summaries[last].mean)).collect();
    let reward: Vec<Option<f64>> = cells
        .iter()
        .map(|c| {
            c.series
                .iter()
                .find(|s| s.name == "expected_reward")
                .and_then(|s| s.summaries[last].as_ref())
                .map(|s| s.mean)
        })
        .collect();
    let reps = cells[0].summaries[last].replications;
    let mut s = format!(
        r##"<svg width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" xmlns="http://www.w3.org/2000/svg">
<rect x="0" y="0" width="{WIDTH}" height="{HEIGHT}" fill="#FFFFFF"/>
"##
    );
    let claim = result
        .claims
        .first()
        .cloned()
        .unwrap_or_else(|| result.name.clone());
    text(
        &mut s,
        WIDTH / 2.0,
        30.0,
        19.0,
        "middle",
        "#000000",
        &format!(
            "{claim}: {} {} and expected reward on the simplex",
            result.divergence.name().to_uppercase(),
            result.quantity.name().replace('_', "-")
        ),
    );
    text(
        &mut s,
        WIDTH / 2.0,
        54.0,
        13.0,
        "middle",
        "#555555",
        &format!(
            "spec {}  ·  {} cells  ·  {reps} replications per cell  ·  means at n = {n}",
            result.name,
            cells.len()
        ),
    );
    panel(
        &mut s,
        215.0,
        "mean gap (lower is better)",
        &weights,
        &gap,
        false,
    );
    panel(
        &mut s,
        645.0,
        "mean E_x E_π̂ r* (higher is better)",
        &weights,
        &reward,
        true,
    );
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
        cells
            .iter()
            .filter_map(|c| {
                let s = c.series.iter().find(|s| s.name == "expected_reward")?;
                let m = s.summaries[last].as_ref()?;
                Some(m.ci_high - m.mean)
            })
            .collect(),
    );
    let fmt = |v: Option<f64>| v.map(|v| format!("±{v:.2e}")).unwrap_or_else(|| "-".into());
    text(
        &mut s,
        WIDTH / 2.0,
        540.0,
        13.0,
        "middle",
        "#555555",
        &format!(
            "median 95% half-width of a cell's mean: gap {}, expected reward {} (cells have independent data)",
            fmt(gap_hw),
            fmt(reward_hw)
        ),
    );
    s.push_str("</svg>\n");
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn viridis_ends_and_middle() {
        assert_eq!(colour(0.0), "#440154");
        assert_eq!(colour(1.0), "#FDE725");
        assert_eq!(colour(0.5), "#21918C");
        assert_eq!(colour(f64::NAN), "#440154");
    }
}
