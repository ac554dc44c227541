//! Unit tests of the figures.

use super::render::text_width;
use super::*;
use crate::statistics::ExponentEstimate;
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
                "asymptotic": {
                    "exponent": null, "constant": null, "exponential_rate": null,
                    "refused": "unit test", "scaled_mean": []
                },
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
    for svg in [rate_plot_svg(&r, 0, None), sweep_plot_svg(&r, 99, &[])] {
        svg_to_png(&svg).expect("renders");
    }
}

#[test]
fn sweep_plot_and_png() {
    let r = result(&[0.1, 1.0, 10.0], &[1000, 10000, 100000]);
    let svg = sweep_plot_svg(&r, 2, &[]);
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
        "true RKL objective",
        "exact − objective",
        "regularisation γ (log scale)",
    ] {
        assert!(svg.contains(want), "missing {want:?}");
    }
    assert!(!svg.contains("the theory rules out"));
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
    assert!(svg.contains("the theory rules out: reference 2 alone at gamma=2"));
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
        let dir =
            std::env::temp_dir().join(format!("mrkl_objective_test_{}_{tag}", std::process::id()));
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

#[test]
fn series_styles_are_distinct() {
    use super::style::series_style;
    let s: Vec<_> = (0..40).map(series_style).collect();
    // The first 8 differ in colour, marker and dash pattern alike.
    for i in 0..8 {
        for j in 0..i {
            assert_ne!(s[i].color, s[j].color, "colours {j} and {i}");
            assert!(s[i].marker != s[j].marker, "markers {j} and {i}");
            assert!(s[i].stroke != s[j].stroke, "dashes {j} and {i}");
        }
    }
    // The first 10 in colour and marker; no two of the first 40 in all three.
    for i in 0..40 {
        for j in 0..i {
            assert!(i >= 10 || s[i].color != s[j].color, "colours {j} and {i}");
            assert!(i >= 10 || s[i].marker != s[j].marker, "markers {j} and {i}");
            assert_ne!(s[i], s[j], "styles {j} and {i}");
        }
    }
}

#[test]
fn five_references_never_share_a_style() {
    use super::model::Sample;
    let mut r = result(&[0.5, 2.0], &[100, 1000, 10000]);
    for c in &mut r.cells {
        let g = c.gamma_at_n[0];
        c.comparators = comparators(g);
        for i in 3..=5 {
            c.comparators
                .insert(format!("reference_{i}"), 0.5 - 0.2 / g - 0.1 * i as f64);
        }
    }
    let (upper, _) = super::objective::figures(&r);
    let styles: Vec<_> = upper
        .legend
        .iter()
        .filter_map(|e| match e.sample {
            Sample::LineMarker(c, _, s, m) => Some((c, s, m)),
            Sample::Marker(m, c, _) => Some((c, None, m)),
            _ => None,
        })
        .collect();
    // exact, plug-in, MRPO, CTRO, mixture, references 1..5.
    assert_eq!(styles.len(), 10);
    for i in 0..styles.len() {
        for j in 0..i {
            let (a, b) = (styles[i], styles[j]);
            assert!(
                a.0 != b.0 && a.2 != b.2,
                "legend entries {j} and {i} share a colour or marker"
            );
        }
    }
}

#[test]
fn category_labels_never_overlap() {
    use super::render::{LABEL_GAP, ROTATED_LINE, category_ticks};
    let length = 760.0;
    let width = 95.0;
    for count in 1..=400usize {
        let spacing = length / count as f64;
        let (step, rotated) = category_ticks(&vec![width; count], spacing);
        if rotated {
            // Labels written upwards, at least a line apart, with the smallest such step.
            assert!(step as f64 * spacing >= ROTATED_LINE, "{count} cells");
            assert!(step == 1 || (step - 1) as f64 * spacing < ROTATED_LINE);
            assert!(count.div_ceil(step) as f64 <= length / ROTATED_LINE + 1.0);
        } else {
            assert_eq!(step, 1);
            assert!(width + LABEL_GAP <= spacing, "{count} cells");
        }
    }
    // Few short labels stay side by side; 45 long ones are all written upwards.
    assert_eq!(category_ticks(&[40.0; 5], length / 5.0), (1, false));
    assert_eq!(category_ticks(&[width; 45], length / 45.0), (1, true));
}

/// A K = 3 weight sweep of `count` cells (labels "weights=a:b:c").
fn simplex_result(count: usize) -> ResultFile {
    let mut r = result(&vec![1.0; count], &[100, 1000]);
    for (i, c) in r.cells.iter_mut().enumerate() {
        let a = 1.0 - i as f64 / count as f64;
        c.weights = vec![a, (1.0 - a) / 2.0, (1.0 - a) / 2.0];
        c.label = format!("weights={:.3}:{:.4}:{:.4}", a, c.weights[1], c.weights[2]);
    }
    r
}

#[test]
fn many_cells_get_readable_tick_labels() {
    // Tick labels written upwards (transform "rotate(270, ...)"): texts so written that
    // hold a number (the y axis description, in one or two lines, holds none).
    let rotated = |svg: &str| {
        svg.split("rotate(270,")
            .skip(1)
            .filter(|t| {
                let text = t.split('>').nth(1).unwrap_or("");
                let text = text.split('<').next().unwrap_or("").trim();
                text.chars().next().is_some_and(|c| c.is_ascii_digit())
            })
            .count()
    };
    let r = simplex_result(45);
    let svg = sweep_plot_svg(&r, 1, &[]);
    assert_eq!(rotated(&svg), 45, "every one of 45 cells labelled");
    for c in &r.cells {
        assert!(svg.contains(&c.label["weights=".len()..]), "{}", c.label);
    }
    svg_to_png(&svg).expect("renders");
    // 300 cells: thinned to what fits without overlap.
    let svg = sweep_plot_svg(&simplex_result(300), 1, &[]);
    let shown = rotated(&svg);
    assert!(
        shown >= 10 && (shown as f64) < WIDTH as f64 / 13.8,
        "{shown} labels"
    );
    // A few short labels stay horizontal.
    let svg = sweep_plot_svg(&simplex_result(3), 1, &[]);
    assert_eq!(rotated(&svg), 0);
}

#[test]
fn fit_and_claimed_lines_both_show_when_they_coincide() {
    use super::model::Series;
    use super::style::{CLAIM_LINE, FIT_LINE};
    // The fitted exponent equals the claimed one: both lines have the same ends.
    let r = result(&[1.0], &[100, 1000, 10000, 100000]);
    let fig = super::rate::figure(&r, 0, Some(&overlay()));
    let line = |color| {
        fig.series.iter().enumerate().find_map(|(i, s)| match s {
            Series::Line {
                pts,
                color: c,
                width,
                stroke,
            } if *c == color => Some((i, pts.clone(), *width, *stroke)),
            _ => None,
        })
    };
    let (fi, fpts, fw, fs) = line(FIT_LINE.color).expect("a fitted line");
    let (ci, cpts, cw, cs) = line(CLAIM_LINE.color).expect("a claimed line");
    for (a, b) in fpts.iter().zip(&cpts) {
        assert!(
            (a.0 - b.0).abs() < 1e-9 && (a.1 - b.1).abs() < 1e-9,
            "they coincide"
        );
    }
    // The claimed line is drawn later (on top), narrower and with another dash pattern.
    assert!(ci > fi && cw < fw && cs != fs);
}

/// A one-cell result of an online run with an `offline` series whose paired difference per n
/// is `diff(j, mean gap)` (mean; interval ± 0.5 |mean|).
fn paired_result(diff: impl Fn(usize, f64) -> f64) -> ResultFile {
    let ns = [1000, 10000, 100000, 1000000];
    let mut r = result(&[1.0], &ns);
    let c = &mut r.cells[0];
    let (summaries, difference): (Vec<_>, Vec<_>) = c
        .summaries
        .iter()
        .enumerate()
        .map(|(j, s)| {
            let d = diff(j, s.mean);
            let mut ds = summary(s.n, d, d);
            (ds.ci_low, ds.ci_high) = (d - 0.5 * d.abs(), d + 0.5 * d.abs());
            (Some(summary(s.n, s.mean + d, s.mean + d)), Some(ds))
        })
        .unzip();
    c.series = vec![
        serde_json::from_value(json!({
            "name": "offline",
            "summaries": summaries,
            "difference": difference,
            "raw": ns.iter().map(|_| vec![0.0; 2]).collect::<Vec<_>>(),
        }))
        .expect("a series"),
    ];
    r
}

#[test]
fn series_plot_shows_the_paired_difference() {
    use super::model::{Scale, Series};
    // Differences of both signs, a tenth of the mean gap: a linear panel of d / mean.
    let sign = |j: usize| if j.is_multiple_of(2) { -1.0 } else { 1.0 };
    let r = paired_result(|j, m| 0.1 * sign(j) * m);
    let (_, lower) = super::series::figures(&r, 0);
    let lower = lower.expect("a lower panel");
    assert!(lower.y.scale == Scale::Linear);
    let pts: Vec<_> = lower
        .series
        .iter()
        .filter_map(|s| match s {
            Series::Points { pts, .. } => Some(pts.clone()),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(pts.len(), 4);
    for (j, p) in pts.iter().enumerate() {
        assert!((p.y - 0.1 * sign(j)).abs() < 1e-12, "{j}: {}", p.y);
        let (lo, hi) = p.bar.expect("an interval");
        assert!((lo.unwrap() - (p.y - 0.05)).abs() < 1e-12 && (hi - (p.y + 0.05)).abs() < 1e-12);
    }
    let svg = series_plot_svg(&r, 0);
    assert!(svg.contains("Δ ÷ mean gap"));
    assert!(svg.contains("lower panel: Δ = alternative − exact plug-in"));
    svg_to_png(&svg).expect("renders");
    // Positive differences spanning a factor 1000: a log panel.
    let r = paired_result(|j, m| m * 10f64.powi(j as i32));
    let lower = super::series::figures(&r, 0).1.expect("a lower panel");
    assert!(lower.y.scale == Scale::Log);
    // No cell: a figure that says so.
    assert!(series_plot_svg(&r, 3).contains("cell 3 does not exist"));
}

#[test]
fn gamma_sweep_has_its_slopes() {
    let ns = [100, 1000, 10000];
    let gammas = [0.25, 1.0, 4.0, 16.0];
    let mut r = result(&gammas, &ns);
    let mut overlays = vec![];
    for (c, &g) in r.cells.iter_mut().zip(&gammas) {
        // Mean gap sqrt(gamma) / n; bound 10 gamma / n; asymptote 2 sqrt(gamma) / n.
        for s in &mut c.summaries {
            *s = summary(s.n, g.sqrt() / s.n as f64, 3.0 * g.sqrt() / s.n as f64);
        }
        c.asymptotic.exponent = Some(-1.0);
        c.asymptotic.constant = Some(2.0 * g.sqrt());
        overlays.push(ClaimOverlay {
            bound: Some(ns.iter().map(|&n| (n, 10.0 * g / n as f64)).collect()),
            cell: Some(c.label.clone()),
            ..overlay()
        });
    }
    let svg = sweep_plot_svg(&r, 2, &overlays);
    for want in [
        "least-squares line over the cells: mean ∝ γ^0.5",
        "slope of the bound of T5.2 in γ: 1 (anchored",
        "predicted asymptote C·n^a at n = 10000",
    ] {
        assert!(svg.contains(want), "missing {want:?}");
    }
    svg_to_png(&svg).expect("renders");
    // Without overlays, no bound slope; a weight sweep has no slope in gamma.
    assert!(!sweep_plot_svg(&r, 2, &[]).contains("slope of the bound"));
    assert!(!sweep_plot_svg(&simplex_result(5), 1, &[]).contains("least-squares"));
}

#[test]
fn simplex_note_says_whether_cells_share_their_data() {
    let mut r = simplex_result(6);
    r.spec.shared_data = false;
    let svg = simplex_plot_svg(&r).expect("a K = 3 sweep");
    assert!(svg.contains("(cells have independent data)"));
    r.spec.shared_data = true;
    let svg = simplex_plot_svg(&r).expect("a K = 3 sweep");
    assert!(svg.contains("(every cell has the same data)"));
}

#[test]
fn long_y_descriptions_wrap_to_fit_their_panel() {
    use super::render::{desc_lines, text_width};
    use super::style::DESC_PX;
    // The upper panel of a stacked rate plot is about 300 px high.
    let long = "RKL optimality gap (γ(n) = 0.1·√n, linear class, d = 5)";
    assert_eq!(desc_lines(long, 1000.0), vec![long.to_string()]);
    let lines = desc_lines(long, 300.0);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines.join(" "), long);
    for l in &lines {
        assert!(text_width(l, DESC_PX) <= 300.0, "{l}");
    }
}

/// The height the SVG declares.
fn svg_height(svg: &str) -> u32 {
    let at = svg.find("height=\"").expect("a height") + 8;
    svg[at..]
        .split('"')
        .next()
        .unwrap()
        .parse()
        .expect("a number")
}

#[test]
fn a_legend_that_would_squeeze_the_data_goes_below_the_figure() {
    use super::model::{AxisSpec, Figure, Marker, Pt};
    use super::render::render;
    use super::style::{C_MEAN, MARGIN};
    // Two curves across the whole panel, one along its top and one along its bottom: no
    // corner is free, and clearing one would take far more than LEGEND_MAX_GROWTH.
    let figure = |entries: usize| {
        let mut fig = Figure::new(
            "t".into(),
            "s".into(),
            AxisSpec::log("x".into()),
            AxisSpec::log("y".into()),
        );
        // x from 1 to 10^0.6, y at 10^2 and 10^-2: the y ticks run from 10⁻² to 10².
        let line = |y: f64| {
            (0..=20)
                .map(|i| Pt {
                    x: i as f64 * 0.03,
                    y,
                    bar: None,
                })
                .collect()
        };
        fig.push_curve(line(2.0), Marker::Circle, C_MEAN, "top".into());
        fig.push_curve(line(-2.0), Marker::Circle, C_MEAN, "bottom".into());
        for k in 0..entries {
            fig.legend
                .push(super::model::Entry::note(format!("note {k}")));
        }
        fig
    };
    let crowded = render(&figure(6));
    let h = svg_height(&crowded);
    assert!(h > HEIGHT, "the canvas grows for the band: {h}");
    // The y range is not grown to clear the legend: its top tick stays at 10².
    assert!(crowded.contains("10²"));
    assert!(
        !crowded.contains("10³"),
        "y range grown although the legend is below"
    );
    // The legend box (the paper-filled rectangle drawn after the frame) starts in the band,
    // below the figure's original height.
    let boxes: Vec<f64> = crowded
        .match_indices("<rect")
        .filter_map(|(i, _)| {
            let tag = &crowded[i..i + crowded[i..].find('>').unwrap()];
            let y = tag.split("y=\"").nth(1)?.split('"').next()?.parse().ok()?;
            tag.contains("opacity").then_some(y)
        })
        .collect();
    assert!(
        boxes.iter().any(|&y| y > (HEIGHT - MARGIN) as f64),
        "no legend box in the band: {boxes:?}"
    );
    // Without a legend there is nothing to clear: the figure keeps its size.
    let mut bare = figure(0);
    bare.legend.clear();
    assert_eq!(svg_height(&render(&bare)), HEIGHT);
}
