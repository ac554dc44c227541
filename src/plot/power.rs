//! The power figure of a calibration (`crate::calibrate`): the detection rate of a planted
//! deviation against its size, one curve per replication count, with exact 95% intervals
//! as error bars, and the target power as a dashed line.

use super::model::{AxisSpec, Entry, Figure, Marker, Pt, Sample, Scale, Series, Stroke};
use super::style::{C_BOUND, C_CLAIM, C_GREY, C_MEAN, C_PURPLE, C_QUANTILE, THIN};
use crate::calibrate::{PowerPanel, TARGET_POWER};

/// The figure of one panel (see [`super::power_plot_svg`]).
pub(super) fn figure(panel: &PowerPanel) -> Figure {
    let mut fig = Figure::new(
        panel.title.clone(),
        panel.subtitle.clone(),
        AxisSpec::new(Scale::Linear, panel.x_desc.clone()),
        AxisSpec::new(Scale::Linear, "detection rate (power)".into()),
    );
    let palette = [C_MEAN, C_QUANTILE, C_CLAIM, C_BOUND, C_PURPLE];
    let markers = [
        Marker::Circle,
        Marker::Triangle,
        Marker::Square,
        Marker::Diamond,
        Marker::TriangleDown,
    ];
    let (mut x_lo, mut x_hi) = (f64::INFINITY, f64::NEG_INFINITY);
    for (i, (name, pts)) in panel.curves.iter().enumerate() {
        let color = palette[i % palette.len()];
        let marker = markers[i % markers.len()];
        let pts: Vec<Pt> = pts
            .iter()
            .filter(|p| p.0.is_finite() && p.1.is_finite())
            .map(|&(x, y, lo, hi)| Pt {
                x,
                y,
                bar: Some((Some(lo.min(y)), hi.max(y))),
            })
            .collect();
        for p in &pts {
            x_lo = x_lo.min(p.x);
            x_hi = x_hi.max(p.x);
        }
        fig.push_curve(pts, marker, color, name.clone());
    }
    if x_lo.is_finite() {
        fig.series.push(Series::Line {
            pts: vec![(x_lo, TARGET_POWER), (x_hi, TARGET_POWER)],
            color: C_GREY,
            width: THIN,
            stroke: Stroke::Dashed,
        });
        fig.legend.push(Entry {
            sample: Sample::Line(C_GREY, THIN, Stroke::Dashed),
            text: format!("target power {:.0}%", TARGET_POWER * 100.0),
        });
    } else {
        fig.empty = Some("no planted deviation was judged".into());
    }
    fig
}
