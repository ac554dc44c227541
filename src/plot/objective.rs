//! The objective figure over the cells of a result: the true objective of the exact solution,
//! the comparators and the plug-in policy (upper panel) and exact − objective on a log axis
//! (lower panel).

use super::FigureKind;
use super::format::{class_text, cut_text, divergence_text, fmt_n, fmt_num, gamma_text};
use super::model::{
    AxisSpec, Entry, Figure, Marker, Pt, Sample, Scale, Series, Stroke, cut_bars, mean_point,
};
use super::style::{C_EXACT, SeriesStyle, THICK, THIN, series_style};
use super::sweep::{replications, sweep_axis};
use crate::result::ResultFile;
use plotters::style::RGBColor;

/// The objective plot of a result whose every cell has comparator objectives.
pub(super) struct Objective;

impl FigureKind for Objective {
    fn stem(&self) -> &'static str {
        "objective"
    }
    fn svg(&self, result: &ResultFile, _: usize) -> Option<String> {
        result
            .cells
            .iter()
            .all(|c| !c.comparators.is_empty())
            .then(|| super::objective_sweep_svg(result))
    }
}

/// Differences from the exact objective within this much (times max(1, |exact|)) are
/// rounding: the comparator equals the exact solution there.
const EQUAL_TOL: f64 = 1e-12;

/// The plug-in policy's style: the first of [`series_style`].
const PLUG_IN: SeriesStyle = series_style(0);

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
    // The comparators take the series styles 1, 2, ... in this order (0 is the plug-in
    // policy's), so that no two series of a figure share a style.
    let mut slot = 0;
    keys.into_iter()
        .map(|k| {
            let text = match rank(k) {
                (0, ..) => format!("exact multi-reference {div}"),
                (1, ..) => "MRPO (harmonic mean)".to_string(),
                (2, ..) => match eps {
                    Some(e) => format!("MRPO + CTRO clipping (ε = {})", fmt_num(e)),
                    None => "MRPO + CTRO clipping".to_string(),
                },
                (3, ..) => "arithmetic mixture as reference".to_string(),
                (4, i, _) => format!("reference {i} alone"),
                _ => k.replace('_', " "),
            };
            let style = if k == "exact" {
                SeriesStyle {
                    color: C_EXACT,
                    marker: Marker::Ring,
                    stroke: Stroke::Solid,
                }
            } else {
                slot += 1;
                series_style(slot)
            };
            ObjectiveStyle {
                key: k.clone(),
                text,
                color: style.color,
                stroke: style.stroke,
                marker: style.marker,
            }
        })
        .collect()
}

/// The objective figure: the objectives (upper panel) and, when there is anything to show,
/// exact − objective on a log axis (lower panel, sharing the x axis).
pub(super) fn figures(result: &ResultFile) -> (Figure, Option<Figure>) {
    let div = divergence_text(result);
    // At the largest n.
    let sweep = sweep_axis(result, usize::MAX);
    let (j, n, xs, x_spec) = (sweep.j, sweep.n, sweep.xs, sweep.axis);
    let categories = x_spec.scale == Scale::Categories;
    let mut sub = vec![
        format!("spec {}", result.name),
        format!("{} cells", result.cells.len()),
        class_text(result),
    ];
    if !sweep.gamma_swept
        && let Some(c) = result.cells.first()
    {
        sub.push(gamma_text(c));
    }
    let mut upper = Figure::new(
        String::new(),
        String::new(),
        x_spec.clone(),
        AxisSpec::new(Scale::Linear, format!("true {div} objective")),
    );
    let mut lower = Figure::new(
        String::new(),
        String::new(),
        x_spec,
        AxisSpec {
            max_major: Some(4),
            ..AxisSpec::log("exact − objective".into())
        },
    );
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
    upper.title = format!(
        "True {div} objective of the exact solution{others} {}",
        sweep.what
    );
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
        // Cells without this comparator (fewer references in a sweep over K) are absent,
        // not "not finite".
        let present = result
            .cells
            .iter()
            .filter(|c| c.comparators.contains_key(&st.key))
            .count();
        let missing = present - up.len().min(present);
        let mut text = st.text.clone();
        if present < total {
            text = format!("{text}; only in {present} of {total} cells");
        }
        if missing > 0 {
            text = format!("{text}; not finite at {missing} of {present} cells");
        }
        upper.legend.push(Entry {
            sample: Sample::LineMarker(
                st.color,
                THICK,
                (!categories).then_some(st.stroke),
                st.marker,
            ),
            text,
        });
        push(&mut upper, up, st.color, THICK, st.stroke, st.marker);
        if !low.is_empty() {
            push(&mut lower, low, st.color, THICK, st.stroke, st.marker);
        }
    }
    // The plug-in policy at the largest n: exact − its sub-optimality gap.
    if plug_in {
        let reps = replications(result, j);
        let (mut up, mut low, mut no_gap) = (vec![], vec![], 0);
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
            match mean_point(x, s.mean, s.ci_low, s.ci_high) {
                Some(p) => low.push(p),
                None => no_gap += 1,
            }
        }
        if !up.is_empty() {
            sub.push(format!("plug-in: {reps} replications"));
            upper.legend.insert(
                1.min(upper.legend.len()),
                Entry {
                    sample: Sample::Marker(PLUG_IN.marker, PLUG_IN.color, true),
                    text: format!("plug-in policy at n = {} (mean, 95% interval)", fmt_n(n)),
                },
            );
            upper
                .series
                .push(Series::points(up, PLUG_IN.marker, PLUG_IN.color));
        }
        let cut = cut_bars(&low);
        if !low.is_empty() {
            let st = PLUG_IN;
            push(&mut lower, low, st.color, THIN, st.stroke, st.marker);
        }
        if no_gap > 0 {
            lower.legend.push(Entry::note(format!(
                "plug-in: {no_gap} cells with mean gap ≤ 0 not on the log scale"
            )));
        }
        if cut > 0 {
            lower.legend.push(Entry::note(cut_text(cut)));
        }
    }
    if equal > 0 {
        let what = if equal == 1 {
            "value equals"
        } else {
            "values equal"
        };
        lower.legend.push(Entry::note(format!(
            "{equal} comparator {what} exact to 10⁻¹²: not on the log scale"
        )));
    }
    if !above.is_empty() {
        lower.legend.push(Entry::note(format!(
            "above exact, which the theory rules out: {}",
            above.join("; ")
        )));
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
