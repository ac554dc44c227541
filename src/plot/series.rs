//! The paired-series figure of one cell: the fitted policy's gap beside every recorded gap of
//! the same kind, against n on log-log axes.

use super::FigureKind;
use super::format::{divergence_text, gamma_text, quantity_text};
use super::model::{AxisSpec, Figure, Marker, Pt, lg, mean_point};
use super::style::{C_BOUND, C_CLAIM, C_FIT, C_MEAN, C_NOTE, C_PURPLE, C_QUANTILE};
use crate::result::ResultFile;
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

/// The paired-series figure of cell `k` (see [`super::series_plot_svg`]).
pub(super) fn figure(result: &ResultFile, k: usize) -> Figure {
    let quantity = quantity_text(result);
    let div = divergence_text(result);
    let c = &result.cells[k];
    use crate::spec::Estimator;
    let fitted = match result.spec.estimator {
        Estimator::DpoTabular => "DPO (tabular class)".to_string(),
        Estimator::DpoLinear => "DPO (linear class)".to_string(),
        _ if result.spec.rounds > 1 => format!("online ({} rounds)", result.spec.rounds),
        _ => "exact plug-in".to_string(),
    };
    let mut fig = Figure {
        legend_columns: 2,
        ..Figure::new(
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
            AxisSpec::log(format!("{div} {quantity} (J(pi*) - J(pi))")),
        )
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
    let mut curves: Vec<(String, Vec<Option<Summary>>)> =
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
            .filter_map(|s| mean_point(lg(s.n as f64)?, s.mean, s.ci_low, s.ci_high))
            .collect();
        fig.push_curve(pts, marker, color, name.clone());
    }
    if curves.len() == 1 {
        fig.empty = Some("no paired series recorded in this cell".into());
    }
    fig
}
