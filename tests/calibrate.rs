//! `mrkl calibrate` on a tiny configuration (one small spec, a few seeds): the output does not
//! depend on the thread count, a killed calibration resumes from its saved seeds, the power
//! study's shortcut (first R replications, first levels of the grid) is what a smaller run
//! gives, and the exact binomial bounds match published values.

mod common;
use common::{mrkl, scratch};

use mrkl::calibrate::{
    CalibrateSettings, Calibration, Design, Planted, SeedOutcome, calibrate, clopper_pearson,
};
use std::path::{Path, PathBuf};

const TINY: &str = r#"
name = "tiny"
claim = "T6.2"
seed = 7
replications = 8
[instance]
source = "random"
contexts = 4
responses = 3
references = 2
[instance.reward]
class = "linear"
dim = 2
bound = 1.0
[experiment]
divergence = "fkl"
quantity = "suboptimality"
weights = [0.5, 0.5]
gamma = 1.0
n_grid = { from = 100, to = 3200, levels = 6 }
sampling = "arithmetic"
"#;

fn settings(dir: &Path, out: &str, threads: usize) -> CalibrateSettings {
    CalibrateSettings {
        paths: vec![dir.join("tiny.toml")],
        seeds: 3,
        first_seed: 11,
        power_specs: Some(vec!["tiny".into()]),
        design: Design {
            replications: vec![4, 8],
            exponent_deviations: vec![0.1, 0.5, 2.0],
            constant_deviations: vec![0.5],
            drop_levels: vec![0, 2],
            exact: false,
        },
        out: dir.join(out),
        threads: Some(threads),
        resume: false,
        ..Default::default()
    }
}

fn seed_file(out: &Path, seed: u64) -> PathBuf {
    out.join("seeds").join(format!("seed-{seed}.json"))
}

fn read_json(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap()
}

#[test]
fn calibration_is_the_same_for_any_thread_count_and_resumes() {
    let d = scratch("calibrate", "threads");
    std::fs::write(d.join("tiny.toml"), TINY).unwrap();
    let one = calibrate(&settings(&d, "one", 1), "test").unwrap();
    let two = calibrate(&settings(&d, "two", 2), "test").unwrap();
    assert_eq!(one, two);
    for f in ["calibration.json", "CALIBRATION.md"] {
        assert_eq!(
            read_json(&d.join("one").join(f)),
            read_json(&d.join("two").join(f))
        );
    }
    for s in 11..14 {
        assert_eq!(
            read_json(&seed_file(&d.join("one"), s)),
            read_json(&seed_file(&d.join("two"), s))
        );
    }
    // Every part of the study produced something: verdicts of T6.2 and R6.4, intervals,
    // detections at both replication counts and both grids.
    assert!(
        one.false_alarms
            .iter()
            .any(|f| f.claim == "T6.2" && f.judgements == 3)
    );
    assert!(
        one.false_alarms
            .iter()
            .any(|f| f.claim == "R6.4" && f.judgements == 3)
    );
    // Coverage counts each seed once per configuration, also for the spec's own (R = 8,
    // full grid), which the power study measures too.
    assert_eq!(one.coverage.len(), 4);
    assert!(
        one.coverage.iter().all(|c| c.exponent.trials <= 3),
        "{:?}",
        one.coverage
    );
    for r in [4, 8] {
        for n_max in [800, 3200] {
            assert!(
                one.power
                    .iter()
                    .any(|p| p.replications == r && p.n_max == n_max && p.detected.trials == 3),
                "R = {r}, n_max = {n_max}"
            );
        }
    }
    assert!(d.join("one").join("power_tiny_exponent.svg").is_file());
    assert!(d.join("one").join("power_tiny_constant.png").is_file());

    // A killed run: seed 12 never written, seed 13 torn; seed 11 saved with a tampered
    // detection, which a resumed run must keep (it is not recomputed) ...
    let out = d.join("two");
    std::fs::remove_file(seed_file(&out, 12)).unwrap();
    let text = read_json(&seed_file(&out, 13));
    std::fs::write(seed_file(&out, 13), &text[..text.len() / 2]).unwrap();
    let mut o: SeedOutcome = serde_json::from_str(&read_json(&seed_file(&out, 11))).unwrap();
    let i = o
        .detections
        .iter()
        .position(|x| x.planted == Planted::Exponent && x.deviation == 2.0)
        .unwrap();
    o.detections[i].detected = !o.detections[i].detected;
    std::fs::write(seed_file(&out, 11), serde_json::to_string(&o).unwrap()).unwrap();
    let mut s = settings(&d, "two", 2);
    s.resume = true;
    let resumed = calibrate(&s, "test").unwrap();
    let count = |c: &Calibration, dev: f64| -> u64 {
        c.power
            .iter()
            .filter(|p| p.planted == Planted::Exponent && p.deviation == dev)
            .map(|p| p.detected.events)
            .sum()
    };
    assert_eq!(count(&resumed, 2.0).abs_diff(count(&one, 2.0)), 1);
    // ... while the missing and the torn seeds are recomputed as they were.
    for s in [12, 13] {
        assert_eq!(
            read_json(&seed_file(&out, s)),
            read_json(&seed_file(&d.join("one"), s))
        );
    }
    // Without --resume everything is recomputed: the tampered seed is overwritten.
    let again = calibrate(&settings(&d, "two", 2), "test").unwrap();
    assert_eq!(again, one);
}

#[test]
fn detection_of_a_planted_exponent_grows_with_the_deviation() {
    // Per seed and configuration the exponent interval is fixed and the planted claim
    // a - d is detected when its lower end exceeds a - d + tolerance: detection can only
    // switch on as d grows, so the counts are non-decreasing in d. d = 0 (the true
    // prediction) is rejected at most as often as any d > 0.
    let d = scratch("calibrate", "monotone");
    std::fs::write(d.join("tiny.toml"), TINY).unwrap();
    let c = calibrate(&settings(&d, "out", 2), "test").unwrap();
    let mut groups = std::collections::BTreeMap::<(usize, u64), Vec<(f64, u64)>>::new();
    for p in c.power.iter().filter(|p| p.planted == Planted::Exponent) {
        groups
            .entry((p.replications, p.n_max))
            .or_default()
            .push((p.deviation, p.detected.events));
    }
    assert_eq!(groups.len(), 4);
    for (k, mut v) in groups {
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert_eq!(v.len(), 4, "{k:?}");
        assert!(v.windows(2).all(|w| w[0].1 <= w[1].1), "{k:?}: {v:?}");
    }
}

#[test]
fn the_first_replications_and_levels_of_a_run_are_the_smaller_run() {
    // What the power study relies on: every replication owns its stream (seed, cell label,
    // replication) and walks the grid with nested datasets.
    let d = scratch("calibrate", "prefix");
    let f = d.join("tiny.toml");
    std::fs::write(&f, TINY).unwrap();
    let big = mrkl::suite::load_one(&f, &[]).unwrap();
    let small = mrkl::suite::load_one(
        &f,
        &[
            ("replications".into(), "3".into()),
            ("experiment.n_grid.to".into(), "800".into()),
            ("experiment.n_grid.levels".into(), "4".into()),
        ],
    )
    .unwrap();
    assert_eq!(small.ns()[..], big.ns()[..4]);
    let b = mrkl::engine::run(&big, &|| {});
    let s = mrkl::engine::run(&small, &|| {});
    for (cb, cs) in b.iter().zip(&s) {
        for j in 0..4 {
            assert_eq!(cs.values[j][..], cb.values[j][..3], "level {j}");
        }
    }
}

#[test]
fn exact_binomial_bounds_match_published_values() {
    // 0 events in k trials: the one-sided 95% upper bound is 1 - 0.05^(1/k) in closed form.
    for k in [5u64, 100, 780] {
        let b = clopper_pearson(0, k, 0.05, true);
        assert!(
            (b - (1.0 - 0.05f64.powf(1.0 / k as f64))).abs() < 1e-12,
            "{k}: {b}"
        );
    }
    // 1 of 10: the two-sided 95% Clopper-Pearson interval is [0.0025, 0.4450] (4 decimals,
    // as tabulated e.g. by R's binom.test(1, 10)).
    assert!((clopper_pearson(1, 10, 0.025, false) - 0.002529).abs() < 1e-6);
    assert!((clopper_pearson(1, 10, 0.025, true) - 0.445016).abs() < 1e-6);
    assert_eq!(clopper_pearson(10, 10, 0.025, true), 1.0);
    assert_eq!(clopper_pearson(0, 10, 0.025, false), 0.0);
}

#[test]
fn bad_calibration_settings_are_refused_with_exit_code_2() {
    let d = scratch("calibrate", "bad");
    std::fs::write(d.join("tiny.toml"), TINY).unwrap();
    for (args, field) in [
        (vec!["--seeds", "0"], "--seeds"),
        (vec!["--replications", "1"], "--replications"),
        (vec!["--power-spec", "nope"], "--power-spec"),
        (
            vec!["--constant-deviations", "1.5"],
            "--constant-deviations",
        ),
    ] {
        let mut a = vec!["calibrate", "tiny.toml", "--out", "out"];
        a.extend(args);
        let o = mrkl(&a, &d);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{a:?}: {err}");
        assert!(err.contains(field), "{a:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(!d.join("out").exists(), "{a:?} wrote output");
    }
}
