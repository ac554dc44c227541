//! The constant judgement (THEORY §8): the measured leading constant of a gap against the
//! one derived from the instance. A planted constant 20% too large is violated at the
//! default suite's replications, and a mutant that keeps the rate but doubles the gap
//! ("gamma/2 replaced by gamma") is caught by the constant and missed by the exponent.
//!
//! The finite class (THEORY §8.7): its exponential rate min_j c_j is judged against the
//! slope of ln(mean gap) in n; the true rate holds and a planted rate twice too large is
//! violated. Resolution on `t5_2_finite_class` (200 replications, levels n = 12800..51200):
//! measured 5.7e-5 with bootstrap SE 9.1e-6 and allowance 2.2e-5 against the predicted
//! 6.24e-5, so the judgement flags claimed rates off by more than 2.2e-5 + 3.29 x 9.1e-6 =
//! 5.2e-5 (about 85% of the rate): the planted factor 2 (off by 6.8e-5) exceeds it.
//!
//! Resolution at the suite's 200 replications, measured on `t5_2_rkl_suboptimality`: the
//! ratio measured / predicted is 0.967 with SE 0.020 and allowance 0.037 (drift of
//! the ratio across the tail), so the judgement flags a relative change of the constant
//! above about 0.037 + 3.34 x 0.020 = 0.10 (10%; t_199 at 1 - 5e-4 = 3.34) beyond the measured 3% offset; the planted
//! 20% and the mutant's 100% exceed it by far.

mod common;

use mrkl::claims::judgement::{ConstantOutcome, RateOutcome};
use mrkl::claims::{Finding, Registry, Verdict, rate};
use mrkl::{analysis, engine};

fn t5_2(scale: f64) -> mrkl::result::ResultFile {
    suite_result("t5_2_rkl_suboptimality", scale)
}

/// The default suite's spec `name`, run, with every gap multiplied by `scale`.
fn suite_result(name: &str, scale: f64) -> mrkl::result::ResultFile {
    let specs = mrkl::suite::load_specs(&[], &[]).unwrap();
    let (_, spec) = specs.into_iter().find(|(_, s)| s.name() == name).unwrap();
    let mut runs = engine::run(&spec, &|| {});
    for run in &mut runs {
        for level in &mut run.values {
            level.iter_mut().for_each(|g| *g *= scale);
        }
    }
    analysis::build(&spec, &runs, None)
}

fn outcomes(j: &mrkl::claims::Judgement) -> (Option<RateOutcome>, Option<ConstantOutcome>) {
    let rate = j.findings.iter().find_map(|f| match f {
        Finding::Rate { outcome, .. } => Some(*outcome),
        _ => None,
    });
    let constant = j.findings.iter().find_map(|f| match f {
        Finding::Constant { outcome, .. } => Some(*outcome),
        _ => None,
    });
    (rate, constant)
}

#[test]
fn the_true_constant_holds_and_a_planted_one_20_percent_too_large_is_violated() {
    let r = t5_2(1.0);
    let asymptotic = &r.cells[0].asymptotic;
    assert_eq!(asymptotic.exponent, Some(-1.0));
    assert!(asymptotic.constant.unwrap() > 0.0);
    let mut registry = Registry::builtin();
    let j = rate::judge_rate_in_n(registry.get("T5.2").unwrap(), &r, &r.cells[0]);
    assert_eq!(
        outcomes(&j),
        (Some(RateOutcome::Matches), Some(ConstantOutcome::Matches)),
        "{}",
        j.reason
    );
    assert_eq!(j.verdict, Verdict::Holds);
    registry.set("T5.2.constant_factor", "1.2").unwrap();
    let j = rate::judge_rate_in_n(registry.get("T5.2").unwrap(), &r, &r.cells[0]);
    assert_eq!(
        outcomes(&j),
        (Some(RateOutcome::Matches), Some(ConstantOutcome::Differs)),
        "{}",
        j.reason
    );
    assert_eq!(j.verdict, Verdict::Violated);
}

#[test]
fn a_rate_keeping_mutant_is_caught_by_the_constant_and_missed_by_the_exponent() {
    // The mutant doubles every gap, as `gamma / 2` replaced by `gamma` in the expansion
    // of the RKL gap would: same exponent, constant off by a factor 2.
    let r = t5_2(2.0);
    let registry = Registry::builtin();
    let j = rate::judge_rate_in_n(registry.get("T5.2").unwrap(), &r, &r.cells[0]);
    assert_eq!(
        outcomes(&j),
        (Some(RateOutcome::Matches), Some(ConstantOutcome::Differs)),
        "{}",
        j.reason
    );
    assert_eq!(j.verdict, Verdict::Violated);
}

#[test]
fn scaled_means_are_reported_per_n_beside_the_prediction() {
    let r = t5_2(1.0);
    let c = &r.cells[0];
    assert_eq!(c.asymptotic.scaled_mean.len(), c.n.len());
    for (s, m) in c.asymptotic.scaled_mean.iter().zip(&c.summaries) {
        assert_eq!(s.n, m.n);
        assert_eq!(s.value, m.n as f64 * m.mean);
        assert!(s.ci_low <= s.value && s.value <= s.ci_high);
    }
}

fn exponential(j: &mrkl::claims::Judgement) -> Option<ConstantOutcome> {
    j.findings.iter().find_map(|f| match f {
        Finding::ExponentialRate { outcome, .. } => Some(*outcome),
        _ => None,
    })
}

#[test]
fn the_finite_class_rate_is_judged_and_a_planted_rate_twice_too_large_is_violated() {
    let r = suite_result("t5_2_finite_class", 1.0);
    let c = &r.cells[0];
    // The predicted curve bounds the mean gap from above (E gap <= sum_j gap_j P(L_j >= L_*))
    // and is its asymptote: inside the mean's 95% interval at the largest n.
    assert_eq!(c.asymptotic.predicted.len(), c.n.len());
    for (p, s) in c.asymptotic.predicted.iter().zip(&c.summaries) {
        assert!(s.ci_low <= p.value, "n = {}: {} vs {:?}", p.n, p.value, s);
    }
    let (last, s) = (
        c.asymptotic.predicted.last().unwrap(),
        c.summaries.last().unwrap(),
    );
    assert!(
        s.ci_low <= last.value && last.value <= s.ci_high,
        "{last:?} {s:?}"
    );
    let mut registry = Registry::builtin();
    let j = rate::judge_rate_in_n(registry.get("T5.2").unwrap(), &r, c);
    assert_eq!(
        (outcomes(&j).0, exponential(&j)),
        (Some(RateOutcome::Faster), Some(ConstantOutcome::Matches)),
        "{}",
        j.reason
    );
    assert_eq!(j.verdict, Verdict::Holds, "{}", j.reason);
    registry.set("T5.2.constant_factor", "2").unwrap();
    let j = rate::judge_rate_in_n(registry.get("T5.2").unwrap(), &r, c);
    assert_eq!(
        exponential(&j),
        Some(ConstantOutcome::Differs),
        "{}",
        j.reason
    );
    assert_eq!(j.verdict, Verdict::Violated);
}

/// Under gamma(n) = 0.1 sqrt(n) the optimality gap is judged against the predicted curve
/// (bias of gamma(n) plus the estimation term, THEORY §8.8) over the tail: it matches, and
/// a curve planted 20% too large is violated (resolution: SE 0.008 and allowance 0.023 on
/// the ratio, so about 5%).
#[test]
fn the_schedule_curve_holds_and_a_planted_one_20_percent_too_large_is_violated() {
    let r = suite_result("t5_3_rkl_optimality_schedule", 1.0);
    let c = &r.cells[0];
    assert_eq!(c.asymptotic.predicted.len(), c.n.len());
    let mut registry = Registry::builtin();
    let constant = |j: &mrkl::claims::Judgement| outcomes(j).1;
    let j = rate::judge_rate_in_n(registry.get("T5.3").unwrap(), &r, c);
    assert_eq!(constant(&j), Some(ConstantOutcome::Matches), "{}", j.reason);
    assert_eq!(j.verdict, Verdict::Holds);
    registry.set("T5.3.constant_factor", "1.2").unwrap();
    let j = rate::judge_rate_in_n(registry.get("T5.3").unwrap(), &r, c);
    assert_eq!(constant(&j), Some(ConstantOutcome::Differs), "{}", j.reason);
    assert_eq!(j.verdict, Verdict::Violated);
}

/// The constant's interval (`ConstantEstimate::interval`, the rule of both the judgement and
/// `mrkl calibrate`'s coverage) covers the true ratio at its level, with the known answer of
/// normal replications: each replication's gaps are u_i x C n^a at every tail level, u_i
/// ~ N(1, 0.3^2) independent, R = 5, so (rho - 1) / se is exactly Student's t with 4 degrees
/// of freedom and the interval rho ± t_{4} se covers 1 with probability exactly `level`.
/// The old rule (normal quantile, bootstrap SE ~ sd sqrt((R - 1) / R)) covers 86% at the
/// nominal 90% (P[|t_4| <= 1.645 sqrt(5/4)]) and 97.9% at the judgement's 99.9%.
///
/// Tolerance from sampling error over M = 4000 synthetic datasets (fixed seed): at 90% the
/// binomial SE is sqrt(0.9 x 0.1 / 4000) = 0.0047; 4 SE = 0.019 (the old 0.86 is 8.5 SE
/// below). At 99.9% the expected misses are 4 (Poisson), P[misses > 12] < 1e-3; the old rule
/// expects 85.
#[test]
fn the_constant_interval_covers_at_its_level_for_normal_replications() {
    use rand_distr::{Distribution, Normal};
    // A small linear RKL spec (its first cell has a predicted exponent and constant); its
    // gaps are replaced by the synthetic draws.
    let spec = mrkl::spec::parse(
        common::SWEEP_SPEC,
        std::path::Path::new("replay.toml"),
        "replay",
        None,
    )
    .unwrap();
    let runs = engine::run(&spec, &|| {});
    let mut r = analysis::build(&spec, &runs, None);
    let registry = Registry::builtin();
    let claim = registry.get("T5.2").unwrap();
    let cell = &mut r.cells[0];
    let (a, c) = (
        cell.asymptotic.exponent.unwrap(),
        cell.asymptotic.constant.unwrap(),
    );
    let reps = 5;
    let law = Normal::new(1.0, 0.3).unwrap();
    let mut rng = mrkl::streams::stream(20261202, "constant-interval-test", 0);
    let (m, mut covered, mut missed_at_judgement) = (4000, 0, 0);
    for _ in 0..m {
        let u: Vec<f64> = (0..reps).map(|_| law.sample(&mut rng)).collect();
        cell.raw = cell
            .n
            .iter()
            .map(|&n| u.iter().map(|ui| ui * c * (n as f64).powf(a)).collect())
            .collect();
        let e = rate::constant_estimate(claim, cell).unwrap();
        assert_eq!(e.replications, reps);
        let (lo, hi) = e.interval(0.9, false);
        covered += (lo <= 1.0 && 1.0 <= hi) as u32;
        let (lo, hi) = e.interval(rate::CONSTANT_LEVEL, false);
        missed_at_judgement += !(lo <= 1.0 && 1.0 <= hi) as u32;
    }
    let coverage = covered as f64 / m as f64;
    assert!((coverage - 0.9).abs() <= 0.019, "coverage {coverage}");
    assert!(missed_at_judgement <= 12, "{missed_at_judgement} misses");
}
