//! The paired-series figure of one cell: the fitted policy's gap beside every recorded gap of
//! the same kind, against n on log-log axes (upper panel), and the paired difference of each
//! alternative from the fitted policy with its interval, relative to the fitted policy's mean
//! gap (lower panel), which is where a comparison is decided.

use super::FigureKind;
use super::format::{divergence_text, gamma_text, quantity_text};
use super::model::{AxisSpec, Entry, Figure, Pt, Sample, Scale, Series, lg, mean_point};
use super::style::{C_GREY, SeriesStyle, THICK, THIN, series_style};
use crate::result::{CellResult, ResultFile};
use crate::statistics::Summary;

/// A paired-series plot per cell that records a paired series.
pub(super) struct Paired;

impl FigureKind for Paired {
    fn stem(&self) -> &'static str {
        "series"
    }
    fn per_cell(&self) -> bool {
        true
    }
    fn svg(&self, result: &ResultFile, k: usize) -> Option<String> {
        let cell = result.cells.get(k)?;
        cell.series
            .iter()
            .any(|s| s.difference.is_some())
            .then(|| super::series_plot_svg(result, k))
    }
}

/// The words for the spec's fitted policy.
fn fitted_name(result: &ResultFile) -> String {
    use crate::spec::Estimator;
    match result.spec.estimator {
        Estimator::DpoTabular => "DPO (tabular class)".to_string(),
        Estimator::DpoLinear => "DPO (linear class)".to_string(),
        Estimator::IpoTabular => "IPO (tabular class)".to_string(),
        Estimator::IpoLinear => "IPO (linear class)".to_string(),
        _ if result.spec.rounds > 1 => format!("online ({} rounds)", result.spec.rounds),
        _ => "exact plug-in".to_string(),
    }
}

/// One paired alternative of a cell: its name, its gap per n and the paired difference
/// (alternative - fitted) per n.
struct Alternative<'a> {
    name: String,
    summaries: &'a [Option<Summary>],
    difference: &'a [Option<Summary>],
}

fn alternatives(c: &CellResult) -> Vec<Alternative<'_>> {
    c.series
        .iter()
        .filter_map(|s| {
            Some(Alternative {
                name: s
                    .name
                    .strip_prefix("loss_")
                    .unwrap_or(&s.name)
                    .replace('_', " "),
                summaries: &s.summaries,
                difference: s.difference.as_deref()?,
            })
        })
        .collect()
}

/// Points joined by a thin line, in style `st`.
fn connected(fig: &mut Figure, pts: Vec<Pt>, st: SeriesStyle) {
    fig.series.push(Series::Line {
        pts: pts.iter().map(|p| (p.x, p.y)).collect(),
        color: st.color,
        width: THIN,
        stroke: st.stroke,
    });
    fig.series.push(Series::points(pts, st.marker, st.color));
}

/// Horizontal offset (decades of n) of the `i`-th of `m` alternatives in the lower panel, so
/// that intervals at the same n do not hide each other.
fn dodge(i: usize, m: usize) -> f64 {
    (i as f64 - (m as f64 - 1.0) / 2.0) * 0.02
}

/// A relative paired difference is shown on a log axis when every mean is positive and they
/// span more than this factor; otherwise on a linear axis with its zero line.
const LOG_SPAN: f64 = 30.0;

/// The paired-series figures of cell `k` (see [`super::series_plot_svg`]): the gaps, and the
/// panel of relative paired differences when some alternative has one at some n.
///
/// # Formula
/// At each n, with d_r = gap_alternative,r - gap_fitted,r the paired difference of
/// replication r (`SeriesResult::difference`: its mean and 95% t interval) and m the fitted
/// policy's mean gap, the lower panel shows mean(d) / m with the interval [low / m, high / m]
/// (docs/theory.md §3, the paired difference series − quantity; §7.2, the interval). Dividing by m, which is the same for every
/// alternative at that n, puts differences of gaps that fall by orders of magnitude with n on
/// one scale; the sign and whether the interval contains 0 are those of d.
pub(super) fn figures(result: &ResultFile, k: usize) -> (Figure, Option<Figure>) {
    let quantity = quantity_text(result);
    let div = divergence_text(result);
    let fitted = fitted_name(result);
    let Some(c) = result.cells.get(k) else {
        let mut fig = Figure::new(
            format!("{}: {div} {quantity}", result.name),
            format!("spec {}", result.name),
            AxisSpec::log("sample size n".into()),
            AxisSpec::log(format!("{div} {quantity}")),
        );
        fig.empty = Some(format!(
            "cell {k} does not exist ({} cells)",
            result.cells.len()
        ));
        return (fig, None);
    };
    let mut upper = Figure::new(
        format!(
            "{}: {div} {quantity}, {fitted} vs recorded alternatives",
            result.name
        ),
        format!(
            "cell {}  ·  {}  ·  mean over replications with 95% intervals",
            c.label,
            gamma_text(c)
        ),
        AxisSpec::log("sample size n".into()),
        AxisSpec::log(format!("{div} {quantity} (J(π*) − J(π))")),
    );
    let alts = alternatives(c);
    let own: Vec<Option<Summary>> = c.summaries.iter().cloned().map(Some).collect();
    let curves = std::iter::once((fitted.clone(), own.as_slice()))
        .chain(alts.iter().map(|a| (a.name.clone(), a.summaries)));
    for (i, (name, sums)) in curves.enumerate() {
        let st = series_style(i);
        let pts: Vec<Pt> = sums
            .iter()
            .flatten()
            .filter_map(|s| mean_point(lg(s.n as f64)?, s.mean, s.ci_low, s.ci_high))
            .collect();
        connected(&mut upper, pts, st);
        upper.legend.push(Entry {
            sample: Sample::LineMarker(st.color, THICK, Some(st.stroke), st.marker),
            text: name,
        });
    }
    if alts.is_empty() {
        upper.empty = Some("no paired series recorded in this cell".into());
        return (upper, None);
    }

    // The lower panel: relative paired differences, per alternative.
    let fitted_mean = |n: u64| {
        c.summaries
            .iter()
            .find(|s| s.n == n)
            .map(|s| s.mean)
            .filter(|m| m.is_finite() && *m > 0.0)
    };
    // (alternative, x, mean, low, high), relative.
    let mut rel: Vec<(usize, f64, f64, f64, f64)> = Vec::new();
    for (i, a) in alts.iter().enumerate() {
        for d in a.difference.iter().flatten() {
            let (Some(x), Some(m)) = (lg(d.n as f64), fitted_mean(d.n)) else {
                continue;
            };
            if [d.mean, d.ci_low, d.ci_high].iter().all(|v| v.is_finite()) {
                let x = x + dodge(i, alts.len());
                rel.push((i, x, d.mean / m, d.ci_low / m, d.ci_high / m));
            }
        }
    }
    if rel.is_empty() {
        upper.legend.push(Entry::note(
            "no paired difference with a positive mean gap to compare with".into(),
        ));
        return (upper, None);
    }
    let (lo, hi) = rel
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), r| {
            (l.min(r.2), h.max(r.2))
        });
    let log = lo > 0.0 && hi / lo > LOG_SPAN;
    let desc = "Δ ÷ mean gap".to_string();
    let mut lower = Figure::new(
        String::new(),
        String::new(),
        AxisSpec::log("sample size n".into()),
        if log {
            AxisSpec {
                max_major: Some(4),
                ..AxisSpec::log(desc)
            }
        } else {
            AxisSpec::new(Scale::Linear, desc)
        },
    );
    if !log {
        let xs = rel.iter().map(|r| r.1);
        let (x0, x1) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| {
            (a.min(x), b.max(x))
        });
        lower.series.push(Series::Line {
            pts: vec![(x0, 0.0), (x1, 0.0)],
            color: C_GREY,
            width: THIN,
            stroke: super::model::Stroke::Solid,
        });
    }
    for (i, _) in alts.iter().enumerate() {
        let st = series_style(i + 1);
        let pts: Vec<Pt> = rel
            .iter()
            .filter(|r| r.0 == i)
            .filter_map(|&(_, x, m, l, h)| match log {
                true => mean_point(x, m, l, h),
                false => Some(Pt {
                    x,
                    y: m,
                    bar: Some((Some(l), h)),
                }),
            })
            .collect();
        connected(&mut lower, pts, st);
    }
    let scale = if log { "log scale" } else { "0 = equal gaps" };
    upper.legend.push(Entry::note(format!(
        "lower panel: Δ = alternative − {fitted}, paired per replication (mean, 95% interval),"
    )));
    upper.legend.push(Entry::note(format!(
        "÷ mean gap of {fitted} at that n ({scale}; > 0: {fitted} has the smaller gap)"
    )));
    (upper, Some(lower))
}
