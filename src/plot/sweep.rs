//! The sweep figure over the cells of a result at one n, and the x axis it shares with the
//! objective figure: the parameter the cells differ in.

use super::format::{
    class_text, cut_text, divergence_text, fmt_n, fmt_num, gamma_text, quantity_text, subscript,
};
use super::model::{
    AxisSpec, Entry, Figure, GammaView, Marker, Pt, Sample, Scale, Series, Stroke, cut_bars,
    gamma_of, lg, mean_point,
};
use super::style::{ASYMPTOTE_LINE, C_MEAN, C_QUANTILE, CLAIM_LINE, FIT_LINE, THIN};
use super::{ClaimOverlay, FigureKind};
use crate::result::ResultFile;
use crate::statistics::least_squares;

/// The sweep plot of a result with several cells, at the largest n where some cell's mean is
/// positive (else the largest n), with the claim's bound slope from the cells' overlays.
pub(super) struct Sweep<'a> {
    pub overlays: &'a [ClaimOverlay],
}

impl FigureKind for Sweep<'_> {
    fn stem(&self) -> &'static str {
        "sweep"
    }
    fn svg(&self, result: &ResultFile, _: usize) -> Option<String> {
        let levels = result.cells.first().map_or(0, |c| c.n.len());
        let j = (0..levels)
            .rev()
            .find(|&j| {
                result
                    .cells
                    .iter()
                    .any(|c| c.summaries.get(j).is_some_and(|s| lg(s.mean).is_some()))
            })
            .unwrap_or(levels.saturating_sub(1));
        Some(super::sweep_plot_svg(result, j, self.overlays))
    }
}

/// The most replications of a cell at n level `j`.
pub(super) fn replications(result: &ResultFile, j: usize) -> usize {
    result
        .cells
        .iter()
        .filter_map(|c| c.summaries.get(j))
        .map(|s| s.replications)
        .max()
        .unwrap_or(0)
}

/// The parameter a result's cells differ in.
enum Swept {
    Gamma(Vec<f64>),
    FirstWeight(Vec<f64>),
    /// An instance parameter (its name), one cell per value (not crossed with another
    /// parameter, except the weights paired with K in a sweep over references).
    Instance(&'static str, Vec<f64>),
    Labels,
}

fn swept(result: &ResultFile, j: usize) -> Swept {
    let cells = &result.cells;
    let settings: Vec<_> = cells.iter().filter_map(|c| c.instance).collect();
    if !cells.is_empty() && settings.len() == cells.len() {
        let values: Vec<f64> = settings.iter().map(|s| s.value).collect();
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        sorted.dedup();
        let one_per_value = sorted.len() == values.len();
        let same_gamma = cells.iter().all(|c| c.gamma == cells[0].gamma);
        let same_weights = settings[0].param == crate::instance::InstanceParam::References
            || cells.iter().all(|c| c.weights == cells[0].weights);
        return if one_per_value && same_gamma && same_weights {
            Swept::Instance(settings[0].param.name(), values)
        } else {
            Swept::Labels
        };
    }
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
pub(super) struct SweepAxis {
    /// The n level asked for, clamped to the grid of the first cell; its n (0 if none); the
    /// number of levels.
    pub j: usize,
    pub n: u64,
    pub levels: usize,
    pub axis: AxisSpec,
    pub what: String,
    pub xs: Vec<Option<f64>>,
    pub gamma_swept: bool,
}

pub(super) fn sweep_axis(result: &ResultFile, n_index: usize) -> SweepAxis {
    let levels = result.cells.first().map(|c| c.n.len()).unwrap_or(0);
    let j = n_index.min(levels.saturating_sub(1));
    let n = result
        .cells
        .first()
        .and_then(|c| c.n.get(j))
        .copied()
        .unwrap_or(0);
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
                .any(|c| !matches!(gamma_of(c), GammaView::Fixed(_)));
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
        Swept::Instance(name, values) => {
            let positive = values.iter().all(|&v| v > 0.0);
            let (lo, hi) = values
                .iter()
                .fold((f64::INFINITY, 0f64), |(a, b), &v| (a.min(v), b.max(v)));
            let log = positive && hi >= 10.0 * lo;
            let words = match *name {
                "references" => "number of references K".to_string(),
                other => format!("instance {}", other.replace('_', " ")),
            };
            (
                if log {
                    format!("{words} (log scale)")
                } else {
                    words
                },
                if log { Scale::Log } else { Scale::Linear },
                format!("vs {}", name.replace('_', " ")),
            )
        }
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
                    .map(|i| format!("{weight}{}", subscript(i)))
                    .collect();
                format!("weights {} of the cell", names.join(":"))
            } else {
                "cell".to_string()
            };
            (desc, Scale::Categories, "per cell".to_string())
        }
    };
    let mut axis = AxisSpec {
        labels: if x_scale == Scale::Categories {
            labels
        } else {
            vec![]
        },
        plain: true,
        ..AxisSpec::new(x_scale, x_desc)
    };
    let to_axis = |v: f64| match x_scale {
        Scale::Log => lg(v),
        _ => v.is_finite().then_some(v),
    };
    if let Swept::Gamma(g) | Swept::Instance(_, g) = &sw {
        let mut t: Vec<f64> = g.iter().filter_map(|&v| to_axis(v)).collect();
        t.sort_by(f64::total_cmp);
        t.dedup_by(|a, b| (*a - *b).abs() < 1e-9);
        if t.len() <= 10 {
            axis.ticks = Some(t);
        }
    }
    let xs: Vec<Option<f64>> = match &sw {
        Swept::Gamma(g) | Swept::Instance(_, g) => g.iter().map(|&v| to_axis(v)).collect(),
        Swept::FirstWeight(w) => w.iter().map(|&v| v.is_finite().then_some(v)).collect(),
        Swept::Labels => (0..result.cells.len()).map(|i| Some(i as f64)).collect(),
    };
    SweepAxis {
        j,
        n,
        levels,
        axis,
        what,
        xs,
        gamma_swept: matches!(sw, Swept::Gamma(_)),
    }
}

/// The sweep figure at n level `n_index` (see [`super::sweep_plot_svg`]).
pub(super) fn figure(result: &ResultFile, n_index: usize, overlays: &[ClaimOverlay]) -> Figure {
    let quantity = quantity_text(result);
    let div = divergence_text(result);
    let head = result
        .claims
        .first()
        .cloned()
        .unwrap_or_else(|| result.name.clone());
    let SweepAxis {
        j,
        n,
        levels,
        axis: x_spec,
        what,
        xs,
        gamma_swept,
    } = sweep_axis(result, n_index);
    let x_scale = x_spec.scale;
    let gamma_part = match (gamma_swept, result.cells.first()) {
        (false, Some(c)) => format!("{}, ", gamma_text(c)),
        _ => String::new(),
    };
    let reps = replications(result, j);
    let mut fig = Figure::new(
        format!("{head}: {div} {quantity} {what} at n = {}", fmt_n(n)),
        format!(
            "spec {}  ·  {} cells  ·  {reps} replications per cell",
            result.name,
            result.cells.len()
        ),
        x_spec,
        AxisSpec::log(format!(
            "{div} {quantity}  ({gamma_part}{})",
            class_text(result)
        )),
    );
    if result.cells.is_empty() || levels == 0 {
        fig.empty = Some("the result has no cells or no sample sizes".into());
        return fig;
    }
    let mut mean_pts = Vec::new();
    let mut q_pts = Vec::new();
    for (c, x) in result.cells.iter().zip(&xs) {
        let (Some(s), Some(x)) = (c.summaries.get(j), *x) else {
            continue;
        };
        mean_pts.extend(mean_point(x, s.mean, s.ci_low, s.ci_high));
        if let Some(y) = lg(s.quantile) {
            q_pts.push(Pt { x, y, bar: None });
        }
    }
    let cut = cut_bars(&mean_pts);
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
            width: THIN,
            stroke: Stroke::Solid,
        });
    }
    fig.legend.push(Entry {
        sample: Sample::Marker(Marker::Circle, C_MEAN, true),
        text: mean_text,
    });
    fig.legend.push(Entry {
        sample: Sample::Marker(Marker::Triangle, C_QUANTILE, false),
        text: q_text,
    });
    if x_scale == Scale::Log && gamma_swept {
        gamma_slopes(&mut fig, result, &xs, &mean_pts, n, overlays);
    }
    fig.series
        .push(Series::points(q_pts, Marker::Triangle, C_QUANTILE));
    fig.series
        .push(Series::points(mean_pts, Marker::Circle, C_MEAN));
    asymptote(&mut fig, result, &xs, j, n);
    if cut > 0 {
        fig.legend.push(Entry::note(cut_text(cut)));
    }
    fig
}

/// On a gamma axis: the least-squares line of log10 mean on log10 gamma over the cells shown
/// (`mean_pts`), and the slope in gamma of the claim's bound at n when every cell's overlay
/// has one, anchored at the fitted line's left end.
///
/// # Formula
/// The slope b of ln mean = a + b ln gamma by least squares (`statistics::least_squares`;
/// log10 on both axes gives the same slope), as in the rate in gamma of docs/theory.md §7.5
/// (without its bootstrap interval); the bound's slope is the least-squares slope of
/// ln bound(gamma, n) on ln gamma over the cells (the bound's power of gamma, §7.6).
fn gamma_slopes(
    fig: &mut Figure,
    result: &ResultFile,
    xs: &[Option<f64>],
    mean_pts: &[Pt],
    n: u64,
    overlays: &[ClaimOverlay],
) {
    let (x, y): (Vec<f64>, Vec<f64>) = mean_pts.iter().map(|p| (p.x, p.y)).unzip();
    let (x0, x1) = x
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
            (a.min(v), b.max(v))
        });
    if x.len() < 2 || x1 - x0 < 1e-9 {
        return;
    }
    let (b, a) = least_squares(&x, &y);
    fig.series
        .insert(0, FIT_LINE.series(vec![(x0, a + b * x0), (x1, a + b * x1)]));
    fig.legend.push(Entry {
        sample: FIT_LINE.sample(),
        text: format!(
            "least-squares line over the cells: mean ∝ γ^{} (no interval)",
            fmt_num((b * 100.0).round() / 100.0)
        ),
    });
    // The bound of each cell's claim at n, against its gamma.
    let bounds: Option<Vec<(f64, f64, &str)>> = result
        .cells
        .iter()
        .zip(xs)
        .map(|(c, x)| {
            let o = overlays
                .iter()
                .find(|o| o.cell.as_deref() == Some(&c.label))?;
            let (_, v) = o.bound.as_ref()?.iter().find(|(m, _)| *m == n)?;
            Some(((*x)?, lg(*v)?, o.id.as_str()))
        })
        .collect();
    let Some(bounds) = bounds.filter(|v| v.len() >= 2) else {
        return;
    };
    let (bx, by): (Vec<f64>, Vec<f64>) = bounds.iter().map(|p| (p.0, p.1)).unzip();
    if bx.iter().all(|&v| (v - bx[0]).abs() < 1e-9) {
        return;
    }
    let (c, _) = least_squares(&bx, &by);
    let y0 = a + b * x0;
    fig.series.insert(
        1,
        CLAIM_LINE.series(vec![(x0, y0), (x1, y0 + c * (x1 - x0))]),
    );
    fig.legend.push(Entry {
        sample: CLAIM_LINE.sample(),
        text: format!(
            "slope of the bound of {} in γ: {} (anchored at the fit's left end)",
            bounds[0].2,
            fmt_num((c * 100.0).round() / 100.0)
        ),
    });
}

/// The predicted asymptote C n^a of every cell that has one (docs/theory.md §8), at n: a
/// dotted line through the cells on a numeric axis, a marker per cell on a category axis.
fn asymptote(fig: &mut Figure, result: &ResultFile, xs: &[Option<f64>], j: usize, n: u64) {
    let mut pts: Vec<(f64, f64)> = result
        .cells
        .iter()
        .zip(xs)
        .filter_map(|(c, x)| {
            let (a, k) = (c.asymptotic.exponent?, c.asymptotic.constant?);
            let m = *c.n.get(j)? as f64;
            Some(((*x)?, lg(k * m.powf(a))?))
        })
        .collect();
    if pts.is_empty() {
        return;
    }
    let missing = result.cells.len() - pts.len();
    pts.sort_by(|p, q| p.0.total_cmp(&q.0));
    let mut text = format!(
        "predicted asymptote C·n^a at n = {} (exact, from the instance)",
        fmt_n(n)
    );
    if missing > 0 {
        text = format!("{text}; none for {missing} cells");
    }
    let st = ASYMPTOTE_LINE;
    if fig.x.scale == Scale::Categories || pts.len() == 1 {
        let marks = pts
            .into_iter()
            .map(|(x, y)| Pt { x, y, bar: None })
            .collect();
        fig.series
            .push(Series::points(marks, Marker::Star, st.color));
        fig.legend.push(Entry {
            sample: Sample::Marker(Marker::Star, st.color, false),
            text,
        });
    } else {
        fig.series.push(st.series(pts));
        fig.legend.push(Entry {
            sample: st.sample(),
            text,
        });
    }
}
