//! The rate figure of one cell: the gap against n on log-log axes, with the fitted exponent
//! and, from a claim's overlay, the claimed exponent and bound.

use super::format::{
    class_text, cut_text, divergence_text, fmt_estimate, fmt_n, fmt_num, gamma_text, quantity_text,
};
use super::model::{
    AxisSpec, Entry, Figure, Marker, Pt, Sample, Scale, Series, cut_bars, lg, mean_point,
};
use super::style::{ASYMPTOTE_LINE, BOUND_LINE, C_MEAN, C_QUANTILE, CLAIM_LINE, FIT_LINE};
use super::{ClaimOverlay, FigureKind};
use crate::result::ResultFile;

/// A rate plot per cell, each with the overlay of its cell (else the first one for any cell).
pub(super) struct Rate<'a> {
    pub overlays: &'a [ClaimOverlay],
}

impl FigureKind for Rate<'_> {
    fn stem(&self) -> &'static str {
        "rate"
    }
    fn per_cell(&self) -> bool {
        true
    }
    fn svg(&self, result: &ResultFile, k: usize) -> Option<String> {
        let label = result.cells.get(k)?.label.as_str();
        let overlay = self
            .overlays
            .iter()
            .find(|o| o.cell.as_deref() == Some(label))
            .or_else(|| self.overlays.iter().find(|o| o.cell.is_none()));
        Some(super::rate_plot_svg(result, k, overlay))
    }
}

fn claim_name(result: &ResultFile, overlay: Option<&ClaimOverlay>) -> Option<String> {
    overlay
        .map(|o| o.id.clone())
        .filter(|s| !s.is_empty())
        .or_else(|| result.claims.first().cloned())
}

/// The rate figure of cell `k` (see [`super::rate_plot_svg`]).
pub(super) fn figure(result: &ResultFile, k: usize, overlay: Option<&ClaimOverlay>) -> Figure {
    let quantity = quantity_text(result);
    let div = divergence_text(result);
    let head = claim_name(result, overlay).unwrap_or_else(|| result.name.clone());
    let mut fig = Figure::new(
        format!("{head}: {div} {quantity} vs sample size"),
        String::new(),
        AxisSpec::log("sample size n".into()),
        AxisSpec::log(format!("{div} {quantity}  ({})", class_text(result))),
    );
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
    let mean_pts: Vec<Pt> = cell
        .summaries
        .iter()
        .filter_map(|s| mean_point(lg(s.n as f64)?, s.mean, s.ci_low, s.ci_high))
        .collect();
    let cut = cut_bars(&mean_pts);
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
            fig.series
                .push(FIT_LINE.series(vec![(x0, a + b * x0), (x1, a + b * x1)]));
            fig.legend.push(Entry {
                sample: FIT_LINE.sample(),
                text: format!(
                    "fit to the mean, n ≥ {from}: exponent {}",
                    fmt_estimate(b, &cell.exponent_mean)
                ),
            });
        }
        _ => fig.legend.push(Entry::note(if len < 2 {
            "no exponent fitted to the mean (one n level)".into()
        } else if tail.len() < 2 || cell.exponent_mean.floor_hit {
            "no exponent fitted to the mean (gaps at the floor in the tail)".into()
        } else {
            "no exponent fitted to the mean".into()
        })),
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
                fig.series
                    .push(CLAIM_LINE.series(vec![(x0, y0), (x1, y0 + c * (x1 - x0))]));
                fig.legend.push(Entry {
                    sample: CLAIM_LINE.sample(),
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
                fig.series.push(BOUND_LINE.series(pts));
                let mut text = format!("bound of {id}");
                if dropped > 0 {
                    let what = if dropped == 1 { "value" } else { "values" };
                    text = format!("{text} ({dropped} {what} ≤ 0 or infinite not shown)");
                }
                fig.legend.push(Entry {
                    sample: BOUND_LINE.sample(),
                    text,
                });
            } else if !b.is_empty() {
                fig.legend.push(Entry::note(format!(
                    "bound of {id}: no finite positive value to show"
                )));
            }
        }
    }
    // The predicted asymptote C n^a of THEORY §8 over the whole grid (a line in log-log).
    if let (Some(a), Some(c)) = (cell.asymptotic.exponent, cell.asymptotic.constant) {
        let ends = [cell.n.first(), cell.n.last()];
        let pts: Vec<(f64, f64)> = ends
            .iter()
            .filter_map(|n| {
                let n = *(*n)? as f64;
                Some((lg(n)?, lg(c * n.powf(a))?))
            })
            .collect();
        if pts.len() == 2 {
            let text = format!(
                "predicted asymptote {}·n^{} (exact, from the instance)",
                fmt_num(c),
                fmt_num(a)
            );
            push_prediction(&mut fig, pts, text);
        }
    }
    // A predicted curve (gamma(n) schedules, finite class), through its value at each n.
    if cell.asymptotic.exponent.is_none() {
        let pts: Vec<(f64, f64)> = cell
            .asymptotic
            .predicted
            .iter()
            .filter_map(|p| Some((lg(p.n as f64)?, lg(p.value)?)))
            .collect();
        if pts.len() >= 2 {
            let text = "predicted mean gap (from the instance, docs/theory.md §8)".to_string();
            push_prediction(&mut fig, pts, text);
        }
    }
    if cut > 0 {
        fig.legend.push(Entry::note(cut_text(cut)));
    }
    fig.series
        .insert(0, Series::points(q_pts, Marker::Triangle, C_QUANTILE));
    fig.series
        .push(Series::points(mean_pts, Marker::Circle, C_MEAN));
    fig
}

/// A prediction of THEORY §8 as a dotted line with its legend entry.
fn push_prediction(fig: &mut Figure, pts: Vec<(f64, f64)>, text: String) {
    fig.series.push(ASYMPTOTE_LINE.series(pts));
    fig.legend.push(Entry {
        sample: ASYMPTOTE_LINE.sample(),
        text,
    });
}

/// The lower panel of the rate figure of cell `k`: the measured mean against the prediction
/// of THEORY §8, flat where the asymptotics hold, so pre-asymptotic behaviour shows. With a
/// predicted power law: n^-a x mean gap with its 95% interval and the constant C as a flat
/// line; with a predicted curve (gamma(n) schedule, finite class): mean gap / predicted gap,
/// with the line at 1. `None` without a prediction.
pub(super) fn scaled_panel(result: &ResultFile, k: usize) -> Option<Figure> {
    let cell = result.cells.get(k)?;
    let asy = &cell.asymptotic;
    let x = AxisSpec::log("sample size n".into());
    let (desc, pts, level, line_text): (String, Vec<Pt>, f64, String) =
        match (asy.exponent, asy.constant) {
            (Some(a), Some(c)) if !asy.scaled_mean.is_empty() => (
                match -a {
                    1.0 => "n × gap".to_string(),
                    0.5 => "√n × gap".to_string(),
                    p => format!("n^{} × gap", fmt_num(p)),
                },
                asy.scaled_mean
                    .iter()
                    .filter_map(|s| {
                        Some(Pt {
                            x: lg(s.n as f64)?,
                            y: s.value,
                            bar: Some((Some(s.ci_low), s.ci_high)),
                        })
                    })
                    .collect(),
                c,
                format!(
                    "lower panel: n^{} × mean gap, 95% interval; dotted: the predicted constant {}",
                    fmt_num(-a),
                    fmt_num(c)
                ),
            ),
            _ if asy.predicted.len() == cell.summaries.len() && !asy.predicted.is_empty() => (
                "gap / predicted".into(),
                asy.predicted
                    .iter()
                    .zip(&cell.summaries)
                    .filter(|(p, _)| p.value > 0.0)
                    .filter_map(|(p, s)| {
                        Some(Pt {
                            x: lg(s.n as f64)?,
                            y: s.mean / p.value,
                            bar: Some((Some(s.ci_low / p.value), s.ci_high / p.value)),
                        })
                    })
                    .collect(),
                1.0,
                "lower panel: mean gap / the predicted curve (docs/theory.md §8), 95% interval; dotted: 1"
                    .into(),
            ),
            _ => return None,
        };
    if pts.is_empty() {
        return None;
    }
    let mut lower = Figure::new(
        String::new(),
        String::new(),
        x,
        AxisSpec {
            max_major: Some(4),
            ..AxisSpec::new(Scale::Linear, desc)
        },
    );
    let ends: Vec<f64> = [pts.first(), pts.last()]
        .iter()
        .filter_map(|p| Some(p.as_ref()?.x))
        .collect();
    lower
        .series
        .push(ASYMPTOTE_LINE.series(vec![(ends[0], level), (ends[1], level)]));
    lower
        .series
        .push(Series::points(pts, Marker::Circle, C_MEAN));
    lower.legend.push(Entry::note(line_text));
    Some(lower)
}
