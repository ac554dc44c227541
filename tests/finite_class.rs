//! The finite reward class (docs/theory.md §2): the Bradley-Terry log-likelihood of a table
//! and the finite-class MLE (argmax over candidates, lowest index on ties), on datasets
//! written by hand, and the MLE's consistency when the truth is not candidate 0.

use mrkl::estimation::finite_mle;
use mrkl::instance::FiniteReward;
use mrkl::numerics::ln_sigmoid;
use mrkl::preference::{Sampler, SamplerKind, WinCounts};
use mrkl::streams::stream;

/// One context, two responses, W(0 beats 1) = 3, W(1 beats 0) = 1.
fn three_to_one() -> WinCounts {
    let mut counts = WinCounts::new(1, 2);
    counts.wins[0] = [3, 1];
    counts.n = 4;
    counts
}

fn class(candidates: Vec<Vec<f64>>) -> FiniteReward {
    FiniteReward {
        candidates,
        truth: 0,
        r_max: 10.0,
    }
}

/// One context, two responses, W(0 beats 1) = 3, W(1 beats 0) = 1: with t = r(0) - r(1),
/// LL(t) = 3 ln sigma(t) + ln sigma(-t) = 4 ln sigma(t) - t, maximal at sigma(t) = 3/4, i.e.
/// t = ln 3, and decreasing in |t - ln 3| (LL is concave). LL(0) = -4 ln 2 = -2.7726,
/// LL(ln 3) = 4 ln(3/4) - ln 3 = -2.2493, LL(2 ln 3) = 4 ln(9/10) - 2 ln 3 = -2.6186.
#[test]
fn log_likelihood_and_argmax_by_hand() {
    let mut counts = three_to_one();
    let l3 = 3f64.ln();
    let by_hand = |t: f64| 4.0 * (1.0 / (1.0 + (-t).exp())).ln() - t;
    for t in [0.0, l3, 2.0 * l3, -l3] {
        let ll = counts.log_likelihood(&[t + 0.5, 0.5]);
        assert!((ll - by_hand(t)).abs() < 1e-12, "t = {t}: {ll}");
    }
    assert!((counts.log_likelihood(&[0.0, 0.0]) + 4.0 * 2f64.ln()).abs() < 1e-12);
    // The best candidate is neither the first nor the last.
    let c = class(vec![
        vec![2.0 * l3, 0.0],
        vec![0.0, 0.0],
        vec![1.0 + l3, 1.0],
        vec![-l3, 0.0],
    ]);
    assert_eq!(finite_mle(&c, &counts), 2);
    // Reversing the order moves the answer with it.
    let mut rev = c.candidates.clone();
    rev.reverse();
    assert_eq!(finite_mle(&class(rev), &counts), 1);
    // The opposite data (W = [1, 3]) make -ln 3 the best.
    counts.wins[0] = [1, 3];
    assert_eq!(finite_mle(&c, &counts), 3);
}

/// Ties: candidates with equal log-likelihood (here identical up to a shift, which leaves
/// every r(a) - r(b) unchanged) resolve to the lowest index.
#[test]
fn ties_resolve_to_the_lowest_index() {
    let counts = three_to_one();
    let l3 = 3f64.ln();
    let c = class(vec![
        vec![0.0, 0.0],
        vec![l3, 0.0],
        vec![5.0, 5.0],
        vec![l3 + 2.0, 2.0],
        vec![l3 - 1.0, -1.0],
    ]);
    assert_eq!(
        counts.log_likelihood(&c.candidates[1]),
        counts.log_likelihood(&c.candidates[3])
    );
    assert_eq!(finite_mle(&c, &counts), 1);
    // No data: every candidate has LL = 0, so the answer is candidate 0.
    let empty = WinCounts::new(1, 2);
    assert_eq!(finite_mle(&c, &empty), 0);
}

/// Several contexts and pairs, with ties and empty pairs: the log-likelihood is the sum over
/// (x, a < b) of W(a>b) ln sigma(r(a) - r(b)) + W(b>a) ln sigma(r(b) - r(a)), computed here
/// directly from that definition.
#[test]
fn log_likelihood_matches_its_definition_over_contexts_and_pairs() {
    let mut counts = WinCounts::new(2, 3);
    // Pairs in order (0,1), (0,2), (1,2) per context.
    counts.wins = vec![[2, 0], [0, 0], [1, 4], [0, 3], [5, 5], [1, 0]];
    counts.ties = 7;
    counts.n = 2 + 5 + 3 + 10 + 1 + 7;
    let r = [0.3, -1.2, 2.0, 0.0, 0.7, -0.4];
    let mut want = 0.0;
    let pairs = [(0, 1), (0, 2), (1, 2)];
    for x in 0..2 {
        for (p, &(a, b)) in pairs.iter().enumerate() {
            let [wa, wb] = counts.wins[x * 3 + p];
            let t = r[x * 3 + a] - r[x * 3 + b];
            want += wa as f64 * ln_sigmoid(t) + wb as f64 * ln_sigmoid(-t);
        }
    }
    let ll = counts.log_likelihood(&r);
    assert!((ll - want).abs() < 1e-12 * want.abs(), "{ll} vs {want}");
}

/// With the truth at index 2 of 4 candidates, the MLE recovers it from a large sample. The
/// wrong candidates differ from the truth by at least 0.5 in some pair difference, so the
/// expected log-likelihood gap per comparison is at least of order 1e-2 and the chance of a
/// wrong answer at n = 200 000 is below e^-100.
#[test]
fn the_mle_finds_a_truth_that_is_not_candidate_zero() {
    let truth = vec![0.5, -0.5, 0.0, 1.0, 0.2, -0.8];
    let mut candidates = vec![
        vec![0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        vec![-0.5, 0.5, 0.0, 1.0, 0.2, -0.8],
        truth.clone(),
        vec![0.5, -0.5, 0.0, 0.2, 1.0, -0.8],
    ];
    let rho = [0.4, 0.6];
    let mu = [0.2, 0.3, 0.5, 0.6, 0.3, 0.1];
    let sampler = Sampler::new(&rho, &mu, &truth, 3);
    let mut counts = WinCounts::new(2, 3);
    sampler.extend(
        SamplerKind::Counts,
        &mut counts,
        200_000,
        &mut stream(4, "finite-class", 0),
    );
    assert_eq!(finite_mle(&class(candidates.clone()), &counts), 2);
    candidates.swap(2, 3);
    assert_eq!(finite_mle(&class(candidates), &counts), 3);
}
