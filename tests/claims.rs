//! The checker can fail, and does not cry wolf (THEORY §7.5).
//! - Planted false claims come out `violated` with the default suite's settings.
//! - The true claims, over 5 master seeds, never come out `violated`; the verdict counts per
//!   claim are printed (run with `--nocapture` to see them). This is the quick tier; the
//!   complete study (100 seeds and more, interval coverage, power) is `mrkl calibrate`, whose
//!   committed results are in calibration/ (README, "Calibration").

use mrkl::claims::{Registry, Verdict};
use mrkl::suite::{evaluate, load_specs};
use std::collections::BTreeMap;

fn verdicts_of(js: &[mrkl::claims::Judgement], id: &str) -> Vec<Verdict> {
    js.iter()
        .filter(|j| j.claim == id)
        .map(|j| j.verdict)
        .collect()
}

#[test]
fn planted_false_claims_are_violated() {
    let specs: Vec<_> = load_specs(&[], &[])
        .unwrap()
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    let mut registry = Registry::builtin();
    registry.set("T5.2.claimed_exponent", "-1.5").unwrap(); // too fast a rate
    registry
        .set("T6.2.bound.constant", &(16.0 / 1e6).to_string())
        .unwrap(); // bound constant / 1e6
    registry.set("T5.3.claimed_exponent", "-1").unwrap(); // too fast a rate
    registry.set("T5.1.formula", "arithmetic").unwrap(); // wrong policy formula
    let (_, js) = evaluate(&specs, &registry, mrkl::claims::EXACT_SEED);
    for j in &js {
        eprintln!(
            "{} {:?}: {} ({})",
            j.claim,
            j.evidence,
            j.verdict.name(),
            j.reason
        );
    }
    // Every linear-class measurement of the planted claims is violated; the finite-class T5.2
    // run decays exponentially (judged on its Chernoff rate, THEORY §8.7), faster than any
    // power, so a claimed n^-1.5 is not contradicted there.
    let linear: Vec<_> = js
        .iter()
        .filter(|j| j.claim == "T5.2" && j.evidence.as_deref() == Some("t5_2_rkl_suboptimality"))
        .collect();
    assert_eq!(linear.len(), 1);
    assert_eq!(linear[0].verdict, Verdict::Violated);
    // T5.3 at n^-1 is caught by the reward-gap measurement (which decays as n^-1/2); the
    // optimality gap under gamma(n) = 0.1 sqrt(n) genuinely decays about as n^-1, so there a
    // claim of n^-1 is not false and must not be flagged either way.
    let reward_gap: Vec<_> = js
        .iter()
        .filter(|j| j.claim == "T5.3" && j.evidence.as_deref() == Some("t5_3_rkl_reward_gap"))
        .collect();
    assert_eq!(reward_gap.len(), 1);
    assert_eq!(reward_gap[0].verdict, Verdict::Violated);
    // Every FKL sub-optimality run tagged T6.2 (plug-in, online, linear DPO) is caught.
    let t62 = verdicts_of(&js, "T6.2");
    assert!(
        !t62.is_empty() && t62.iter().all(|v| *v == Verdict::Violated),
        "{t62:?}"
    );
    assert_eq!(verdicts_of(&js, "T5.1"), vec![Verdict::Violated]);
    // The claims that were not tampered with are not violated.
    for id in [
        "T6.1",
        "T6.3",
        "R5.4",
        "R6.4",
        "MR",
        "F1",
        "DPO",
        "DPO.identity",
    ] {
        assert!(
            verdicts_of(&js, id).iter().all(|v| *v != Verdict::Violated),
            "{id}"
        );
    }
}

/// Master seeds of the quick tier.
const QUICK_SEEDS: u64 = 5;

/// What this test can and cannot detect. Each seed runs the whole default suite and judges
/// every claim on it (56 judgements per seed, the exact checks included), so 5 seeds give
/// k = 280 judgements. With 0 false alarms in k judgements, the exact one-sided 95% upper
/// bound on the probability that a judgement is a false alarm is 1 - 0.05^(1/k), 1.1% for
/// k = 280: a checker that cried wolf on 1.1% of its judgements or more would pass this test
/// with probability at most 5%. Per claim there are only 5 (T5.1, T6.1, T6.3, F1, DPO) to
/// 90 (T5.2) judgements, so a single claim whose false-alarm rate is 3% (T5.2) to 45% (5
/// judgements) could pass: that, and rates below a percent, is what `mrkl calibrate` (100
/// seeds and more) is for.
#[test]
fn true_claims_are_never_violated_over_5_seeds() {
    let registry = Registry::builtin();
    let mut counts: BTreeMap<String, BTreeMap<&'static str, usize>> = BTreeMap::new();
    let mut violations = vec![];
    let mut judgements = 0u64;
    for seed in 1..=QUICK_SEEDS {
        let specs: Vec<_> = load_specs(&[], &[("seed".into(), seed.to_string())])
            .unwrap()
            .into_iter()
            .map(|(_, s)| s)
            .collect();
        let (_, js) = evaluate(&specs, &registry, seed);
        for j in js {
            judgements += 1;
            let key = format!("{} {}", j.claim, j.evidence.clone().unwrap_or_default());
            *counts
                .entry(key.clone())
                .or_default()
                .entry(j.verdict.name())
                .or_default() += 1;
            if j.verdict == Verdict::Violated {
                violations.push(format!("seed {seed}: {key}: {}", j.reason));
            }
        }
    }
    let bound = mrkl::calibrate::clopper_pearson(0, judgements, 0.05, true);
    eprintln!(
        "verdict counts over {QUICK_SEEDS} master seeds ({judgements} judgements; with none violated, P(false alarm) <= {:.2}% at 95%):",
        bound * 100.0
    );
    for (k, c) in &counts {
        eprintln!("  {k:<60} {c:?}");
    }
    // The power written above assumes 56 judgements per seed; fewer would weaken it.
    assert!(
        judgements >= 56 * QUICK_SEEDS,
        "only {judgements} judgements: the suite shrank, revise the bound in the doc comment"
    );
    assert!(
        violations.is_empty(),
        "false alarms:\n{}",
        violations.join("\n")
    );
}

#[test]
fn bad_overrides_are_rejected_with_a_clear_message() {
    let mut r = Registry::builtin();
    let e = r.set("T5.2.claimed", "-1").unwrap_err().to_string();
    assert!(e.contains("claimed_exponent"), "{e}");
    let e = r
        .set("T5.2.claimed_exponent", "fast")
        .unwrap_err()
        .to_string();
    assert!(e.contains("a finite number"), "{e}");
    let e = r.set("T9.claimed_exponent", "-1").unwrap_err().to_string();
    assert!(e.contains("T5.1, T5.2"), "{e}");
    let e = r.set("T5.1.formula", "harmonic").unwrap_err().to_string();
    assert!(e.contains("geometric, arithmetic"), "{e}");
    assert_eq!(
        r,
        Registry::builtin(),
        "a rejected override must leave the registry unchanged"
    );
}
