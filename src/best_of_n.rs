//! The best-of-n policy of a reference pi_ref over a finite response set with reward r
//! (Beirami et al. 2024, arXiv 2401.01879): draw n responses i.i.d. from pi_ref and keep the
//! one of highest reward. Computed exactly by enumeration with the order-statistics CDF (no
//! sampling), with its KL to pi_ref, its win rate against pi_ref, the quoted formula
//! log n - (n-1)/n (an upper bound, not the KL), the win-rate bound n/(n+1), and the RKL
//! policy pi_gamma ∝ pi_ref e^{gamma r} at the gamma whose KL matches best-of-n's
//! (docs/theory.md §9).
//!
//! Responses of zero reference mass are never drawn and get best-of-n mass 0.

use crate::numerics::{increasing_root, ln0};
use crate::policy::rkl_log_policy;
use serde::{Deserialize, Serialize};

/// Which of several drawn responses with the same (highest) reward best-of-n keeps. [ours]:
/// the paper ranks responses by reward and does not fix the rule for equal rewards.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TieRule {
    /// One of the tied draws uniformly at random: within a reward level the policy is
    /// proportional to pi_ref (the default; the smallest KL of any tie rule).
    #[default]
    UniformDraw,
    /// The tied response of lowest index: responses are ranked by (reward, -index), a strict
    /// order with no ties.
    LowestIndex,
}

impl TieRule {
    pub fn name(self) -> &'static str {
        match self {
            TieRule::UniformDraw => "uniform_draw",
            TieRule::LowestIndex => "lowest_index",
        }
    }
}

/// One level of the ranking: a set of responses ranked equal, with ln F(level) and
/// ln F(level^-) (the CDF of the ranking under pi_ref at and strictly below the level).
#[derive(Clone, Debug)]
struct Level {
    members: Vec<usize>,
    ln_mass: f64,
    ln_cdf: f64,
    ln_cdf_below: f64,
}

/// The levels of the ranking of the responses of positive mass, lowest first: grouped by
/// equal reward (`UniformDraw`, also the levels of the win rate) or one response each
/// (`LowestIndex`, ties in reward broken towards the lower index). `p` is normalised here.
fn levels(p: &[f64], r: &[f64], ties: TieRule) -> Vec<Level> {
    assert_eq!(p.len(), r.len(), "one reward per response");
    let total: f64 = p.iter().sum();
    assert!(
        total > 0.0 && p.iter().all(|&v| v >= 0.0),
        "a reference with mass"
    );
    let mut order: Vec<usize> = (0..p.len()).filter(|&y| p[y] > 0.0).collect();
    // Ascending rank: by reward, then (LowestIndex) the higher index ranks lower.
    order.sort_by(|&a, &b| r[a].total_cmp(&r[b]).then(b.cmp(&a)));
    let mut groups: Vec<Vec<usize>> = vec![];
    for y in order {
        match groups.last_mut() {
            Some(g) if ties == TieRule::UniformDraw && r[g[0]] == r[y] => g.push(y),
            _ => groups.push(vec![y]),
        }
    }
    let mass: Vec<f64> = groups
        .iter()
        .map(|g| g.iter().map(|&y| p[y]).sum::<f64>() / total)
        .collect();
    // ln F from whichever of the mass below or the mass above is smaller (no cancellation
    // near F = 1, where ln F = ln(1 - mass above) = ln_1p(-mass above)).
    let ln_cdf = |below: f64, above: f64| {
        if above < 0.5 {
            (-above).ln_1p()
        } else {
            ln0(below)
        }
    };
    let mut out = Vec::with_capacity(groups.len());
    let mut below = 0.0;
    for (i, g) in groups.into_iter().enumerate() {
        let above: f64 = mass[i + 1..].iter().sum();
        out.push(Level {
            members: g,
            ln_mass: mass[i].ln(),
            ln_cdf: ln_cdf(below + mass[i], above),
            ln_cdf_below: ln_cdf(below, above + mass[i]),
        });
        below += mass[i];
    }
    out
}

/// ln(F^n - F_-^n) = n ln F + ln(1 - e^{n (ln F_- - ln F)}), the best-of-n mass of a level.
fn ln_level_mass(l: &Level, n: u32) -> f64 {
    let n = n as f64;
    n * l.ln_cdf + (-(n * (l.ln_cdf_below - l.ln_cdf)).exp_m1()).ln()
}

/// The best-of-n policy in log space (ln 0 = -inf off the support of pi_ref).
///
/// # Formula
///
/// [paper §2, ties ours; docs/theory.md §9.1] With the responses ranked in levels (equal
/// rewards under `UniformDraw`, single responses under `LowestIndex`), F(l) = pi_ref(levels
/// <= l) and F(l^-) = pi_ref(levels < l), the best of n i.i.d. draws lies in level l with
/// probability q(l) = F(l)^n - F(l^-)^n, and within a level the kept draw is distributed as
/// pi_ref restricted to it: pi_BoN(y) = q(l(y)) pi_ref(y) / pi_ref(l(y)).
pub fn log_policy(p_ref: &[f64], r: &[f64], n: u32, ties: TieRule) -> Vec<f64> {
    assert!(n >= 1, "best of at least one draw");
    let total: f64 = p_ref.iter().sum();
    let mut out = vec![f64::NEG_INFINITY; p_ref.len()];
    for l in levels(p_ref, r, ties) {
        let lq = ln_level_mass(&l, n);
        for &y in &l.members {
            out[y] = lq + (p_ref[y] / total).ln() - l.ln_mass;
        }
    }
    out
}

/// KL(pi_BoN || pi_ref), exactly.
///
/// # Formula
///
/// [paper §3; docs/theory.md §9.1] KL = sum_l q(l) ln(q(l) / pi_ref(l)) over the levels of
/// the tie rule (within a level the two policies are proportional, so only the levels
/// contribute), each term in log space.
pub fn kl(p_ref: &[f64], r: &[f64], n: u32, ties: TieRule) -> f64 {
    levels(p_ref, r, ties)
        .iter()
        .map(|l| {
            let lq = ln_level_mass(l, n);
            if lq == f64::NEG_INFINITY {
                0.0
            } else {
                lq.exp() * (lq - l.ln_mass)
            }
        })
        .sum()
}

/// The often-quoted "KL of best-of-n", log n - (n-1)/n.
///
/// # Formula
///
/// [paper §3, Theorem 3.1; docs/theory.md §9.2] The KL of the law of the largest of n
/// uniforms on [0,1] (density n u^{n-1}) to the uniform law; an upper bound on the KL of
/// every finite best-of-n policy (data processing), not its value.
pub fn kl_formula(n: u32) -> f64 {
    let n = n as f64;
    n.ln() - (n - 1.0) / n
}

/// The cap -ln pi_ref(top level): KL(pi_BoN || pi_ref) never exceeds it, whatever n.
///
/// # Formula
///
/// [derived, docs/theory.md §9.2] q(l)/pi_ref(l) is the mean of n u^{n-1} over the cell
/// [F(l^-), F(l)], largest on the top cell, where it is (1 - F(top^-)^n)/pi_ref(top)
/// < 1/pi_ref(top); KL is a q-average of ln(q/pi_ref), hence below -ln pi_ref(top).
pub fn kl_cap(p_ref: &[f64], r: &[f64]) -> f64 {
    -levels(p_ref, r, TieRule::UniformDraw)
        .last()
        .expect("a reference with mass")
        .ln_mass
}

/// The win rate of best-of-n against pi_ref: Y ~ pi_BoN and Y' ~ pi_ref independent.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct WinRate {
    /// P[r(Y) > r(Y')].
    pub strict: f64,
    /// P[r(Y) > r(Y')] + P[r(Y) = r(Y')] / 2: the win rate (ties count half, [ours]).
    pub half: f64,
    /// P[r(Y) >= r(Y')].
    pub weak: f64,
}

/// The win rate of a policy `log_pi` (log space) against pi_ref in the reward r.
///
/// # Formula
///
/// [docs/theory.md §9.3] Over the reward levels l of pi_ref with F(l), F(l^-):
/// strict = sum_l pi(l) F(l^-), weak = sum_l pi(l) F(l), half = (strict + weak) / 2.
pub fn win_rate(log_pi: &[f64], p_ref: &[f64], r: &[f64]) -> WinRate {
    let (mut strict, mut weak) = (0.0, 0.0);
    for l in levels(p_ref, r, TieRule::UniformDraw) {
        let pi_l: f64 = l.members.iter().map(|&y| log_pi[y].exp()).sum();
        strict += pi_l * l.ln_cdf_below.exp();
        weak += pi_l * l.ln_cdf.exp();
    }
    WinRate {
        strict,
        half: 0.5 * (strict + weak),
        weak,
    }
}

/// The win-rate bound n/(n+1) of the paper.
///
/// # Formula
///
/// [paper §5; docs/theory.md §9.3] n/(n+1) = P[the best of n uniforms exceeds another
/// uniform]; on a finite set, strict <= half <= n/(n+1) <= weak, with half = n/(n+1) only at
/// n = 1.
pub fn win_rate_bound(n: u32) -> f64 {
    let n = n as f64;
    n / (n + 1.0)
}

/// E_pi[r] of a policy in log space.
pub fn expected_reward(log_pi: &[f64], r: &[f64]) -> f64 {
    log_pi
        .iter()
        .zip(r)
        .filter(|(lp, _)| **lp > f64::NEG_INFINITY)
        .map(|(lp, rv)| lp.exp() * rv)
        .sum()
}

/// The RKL policy pi_gamma ∝ pi_ref e^{gamma r} (Theorem 5.1 with one reference) whose KL to
/// pi_ref is `target`, with its gamma.
#[derive(Clone, Debug, PartialEq)]
pub struct MatchedRkl {
    pub gamma: f64,
    pub log_policy: Vec<f64>,
    pub kl: f64,
}

/// Relative accuracy of the matching gamma (the root finder's step tolerance).
pub const GAMMA_TOLERANCE: f64 = 1e-14;

/// The RKL policy at the gamma >= 0 with KL(pi_gamma || pi_ref) = `target`, for
/// 0 <= target < -ln pi_ref(argmax r) (the supremum of KL(pi_gamma || pi_ref) over gamma).
///
/// # Formula
///
/// [derived, docs/theory.md §9.4] K(gamma) = KL(pi_gamma || pi_ref) = gamma E_gamma[r] - ln Z(gamma)
/// has K'(gamma) = gamma Var_gamma(r) >= 0, K(0) = 0 and K -> -ln pi_ref(argmax r): the root
/// is unique (when r is not constant on supp pi_ref), found by Newton's method safeguarded
/// by bisection on a bracket [0, hi] doubled until K(hi) >= target.
pub fn rkl_matching_kl(p_ref: &[f64], r: &[f64], target: f64) -> MatchedRkl {
    let total: f64 = p_ref.iter().sum();
    let log_g: Vec<f64> = p_ref.iter().map(|&v| ln0(v / total)).collect();
    // Rewards shifted by the largest on the support, r' = r - r_max <= 0: then
    // K = gamma E_gamma[r'] - ln Z'(gamma) with ln Z' = ln sum pi_ref e^{gamma r'} -> ln pi_ref(top),
    // two terms of the size of K (no cancellation of gamma r_max against ln Z near the cap).
    let r_max = (0..r.len())
        .filter(|&y| p_ref[y] > 0.0)
        .map(|y| r[y])
        .fold(f64::NEG_INFINITY, f64::max);
    let shifted: Vec<f64> = r.iter().map(|v| v - r_max).collect();
    let mut lp = vec![0.0; p_ref.len()];
    // (K(gamma), K'(gamma)).
    let mut k_and_slope = |gamma: f64| {
        let ln_z = rkl_log_policy(&log_g, &shifted, gamma, &mut lp);
        let mean = expected_reward(&lp, &shifted);
        let var = expected_reward(
            &lp,
            &shifted
                .iter()
                .map(|v| (v - mean) * (v - mean))
                .collect::<Vec<_>>(),
        );
        (gamma * mean - ln_z, gamma * var)
    };
    let gamma = if target <= 0.0 {
        0.0
    } else {
        let mut hi = 1.0 / (-shifted.iter().fold(0.0f64, |m, &v| m.min(v))).max(1e-300);
        while k_and_slope(hi).0 < target && hi < 1e300 {
            hi *= 2.0;
        }
        increasing_root(
            |g| {
                let (k, s) = k_and_slope(g);
                (k - target, s)
            },
            0.0,
            hi,
            GAMMA_TOLERANCE,
        )
    };
    let (kl, _) = k_and_slope(gamma);
    MatchedRkl {
        gamma,
        log_policy: lp,
        kl,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;

    /// P(best = y) by enumerating every n-tuple of draws (|Y|^n tuples), keeping the draw of
    /// highest reward and breaking ties by the rule: uniformly among the tied draws, or the
    /// lowest index.
    fn brute_force(p: &[f64], r: &[f64], n: u32, ties: TieRule) -> Vec<f64> {
        let k = p.len();
        let mut out = vec![0.0; k];
        let mut idx = vec![0usize; n as usize];
        loop {
            let prob: f64 = idx.iter().map(|&y| p[y]).product();
            let best = idx.iter().map(|&y| r[y]).fold(f64::NEG_INFINITY, f64::max);
            let tied: Vec<usize> = idx.iter().copied().filter(|&y| r[y] == best).collect();
            match ties {
                TieRule::UniformDraw => {
                    for &y in &tied {
                        out[y] += prob / tied.len() as f64;
                    }
                }
                TieRule::LowestIndex => out[*tied.iter().min().unwrap()] += prob,
            }
            // next tuple
            let mut i = 0;
            loop {
                if i == idx.len() {
                    return out;
                }
                idx[i] += 1;
                if idx[i] < k {
                    break;
                }
                idx[i] = 0;
                i += 1;
            }
        }
    }

    fn exp_all(v: &[f64]) -> Vec<f64> {
        v.iter().map(|x| x.exp()).collect()
    }

    /// The order-statistics formula equals brute-force enumeration of all n-tuples, with
    /// ties (rewards with repeated values and a zero-mass response) under both tie rules;
    /// KL and win rates equal their sums over the enumerated policy. Tolerance: the
    /// enumeration adds up to 5^5 = 3125 products, so its own rounding is below
    /// 3125 x 1.1e-16 = 3.5e-13; 1e-12 allows that and nothing a formula error would give.
    #[test]
    fn order_statistics_match_enumeration_with_ties() {
        let mut rng = crate::streams::stream(7, "test/best_of_n", 0);
        for case in 0..40 {
            let k = 2 + case % 4;
            let mut p: Vec<f64> = (0..k).map(|_| -rng.random::<f64>().ln()).collect();
            if case % 5 == 0 {
                p[k - 1] = 0.0;
            }
            let s: f64 = p.iter().sum();
            p.iter_mut().for_each(|v| *v /= s);
            // integer rewards in {0, 1, 2}: ties in most cases
            let r: Vec<f64> = (0..k).map(|_| (rng.random::<u64>() % 3) as f64).collect();
            for n in 1..=5u32 {
                for ties in [TieRule::UniformDraw, TieRule::LowestIndex] {
                    let want = brute_force(&p, &r, n, ties);
                    let got = exp_all(&log_policy(&p, &r, n, ties));
                    for y in 0..k {
                        assert!(
                            (got[y] - want[y]).abs() < 1e-12,
                            "case {case} n {n} {ties:?} y {y}: {got:?} vs {want:?}"
                        );
                    }
                    let kl_enum: f64 = (0..k)
                        .filter(|&y| want[y] > 0.0)
                        .map(|y| want[y] * (want[y] / p[y]).ln())
                        .sum();
                    assert!((kl(&p, &r, n, ties) - kl_enum).abs() < 1e-12);
                    assert!(kl(&p, &r, n, ties) <= kl_formula(n) + 1e-15);
                }
                // The win rate by direct double sum over (y, y').
                let pi = brute_force(&p, &r, n, TieRule::UniformDraw);
                let (mut gt, mut eq) = (0.0, 0.0);
                for a in 0..k {
                    for b in 0..k {
                        if r[a] > r[b] {
                            gt += pi[a] * p[b];
                        } else if r[a] == r[b] {
                            eq += pi[a] * p[b];
                        }
                    }
                }
                let w = win_rate(&log_policy(&p, &r, n, TieRule::UniformDraw), &p, &r);
                assert!((w.strict - gt).abs() < 1e-12 && (w.weak - gt - eq).abs() < 1e-12);
                assert!(w.half <= win_rate_bound(n) + 1e-15 && win_rate_bound(n) <= w.weak + 1e-15);
            }
        }
    }

    /// A planted error the enumeration catches: ignoring ties (q(y) = F(y)^n - F(y^-)^n with
    /// F the CDF of the reward, applied per response) does not sum to one with ties.
    #[test]
    fn ignoring_ties_is_caught_by_enumeration() {
        let p = [0.25, 0.25, 0.5];
        let r = [0.0, 1.0, 1.0];
        let n = 3;
        // wrong: each tied response gets the whole level's mass
        let wrong_top = 1.0 - 0.25f64.powi(3);
        let want = brute_force(&p, &r, n, TieRule::UniformDraw);
        assert!((want[2] - wrong_top).abs() > 0.1);
        assert!((want[1] + want[2] - wrong_top).abs() < 1e-15);
    }

    /// Binary uniform reference: q(top) = 1 - 2^-n, KL = ln 2 + (1 - 2^-n) ln(1 - 2^-n)
    /// - n 2^-n ln 2 (docs/theory.md §9.2), below ln 2 at every n while the formula grows.
    #[test]
    fn binary_uniform_reference_caps_the_kl_at_ln_2() {
        let p = [0.5, 0.5];
        let r = [0.0, 1.0];
        for n in [1u32, 2, 3, 10, 40, 200, 5000] {
            let t = 0.5f64.powi(n as i32);
            let closed = std::f64::consts::LN_2 + (1.0 - t) * (-t).ln_1p()
                - n as f64 * t * std::f64::consts::LN_2;
            let got = kl(&p, &r, n, TieRule::UniformDraw);
            assert!((got - closed).abs() < 1e-15, "n {n}: {got} vs {closed}");
            // strictly below ln 2; from n ~ 55 on, ln 2 - KL < ulp(ln 2) and it rounds to ln 2
            assert!(got <= std::f64::consts::LN_2 && (n > 40 || got < std::f64::consts::LN_2));
            assert!((kl_cap(&p, &r) - std::f64::consts::LN_2).abs() < 1e-16);
        }
        assert!(kl_formula(5000) > 7.0);
        // n = 1: the reference itself
        assert!(kl(&p, &r, 1, TieRule::UniformDraw).abs() < 1e-16);
    }

    /// Monte Carlo: the win rate of sampled best-of-n against sampled reference draws
    /// (ties half) agrees with the exact half win rate. 200000 games; the standard error of
    /// the mean of a variable in {0, 1/2, 1} is at most 0.5/sqrt(2e5) = 1.1e-3, and the
    /// tolerance is 4.5 of those (a false failure about once in 1e5 seeds).
    #[test]
    fn monte_carlo_win_rate_agrees_within_its_standard_error() {
        let p = [0.1, 0.2, 0.3, 0.15, 0.25];
        let r = [0.0, 1.0, 1.0, 2.0, -1.0];
        let n = 4;
        let mut rng = crate::streams::stream(11, "test/best_of_n_mc", 0);
        let draw = |rng: &mut rand_chacha::ChaCha8Rng| {
            let u: f64 = rng.random();
            let mut c = 0.0;
            for (y, &py) in p.iter().enumerate() {
                c += py;
                if u < c {
                    return y;
                }
            }
            p.len() - 1
        };
        let games = 200_000;
        let mut score = 0.0;
        for _ in 0..games {
            let best = (0..n)
                .map(|_| r[draw(&mut rng)])
                .fold(f64::NEG_INFINITY, f64::max);
            let other = r[draw(&mut rng)];
            score += if best > other {
                1.0
            } else if best == other {
                0.5
            } else {
                0.0
            };
        }
        let mc = score / games as f64;
        let exact = win_rate(&log_policy(&p, &r, n, TieRule::UniformDraw), &p, &r).half;
        let se = 0.5 / (games as f64).sqrt();
        assert!((mc - exact).abs() < 4.5 * se, "{mc} vs {exact}");
    }

    /// The matched RKL policy has the target KL, and (Theorem 5.1: it maximises
    /// E r - KL/gamma) at least best-of-n's expected reward.
    #[test]
    fn matched_rkl_policy_has_the_kl_and_at_least_the_reward() {
        let p = [0.1, 0.2, 0.3, 0.15, 0.25];
        let r = [0.0, 1.0, 1.0, 2.0, -1.0];
        for n in [2u32, 5, 50] {
            let target = kl(&p, &r, n, TieRule::UniformDraw);
            let m = rkl_matching_kl(&p, &r, target);
            assert!((m.kl - target).abs() < 1e-12, "{} vs {target}", m.kl);
            let bon = log_policy(&p, &r, n, TieRule::UniformDraw);
            assert!(expected_reward(&m.log_policy, &r) >= expected_reward(&bon, &r) - 1e-12);
            // KL(pi_gamma) by direct sum agrees with K(gamma)
            let direct: f64 = m
                .log_policy
                .iter()
                .zip(&p)
                .map(|(lp, q)| lp.exp() * (lp - q.ln()))
                .sum();
            assert!((direct - target).abs() < 1e-12);
        }
    }
}
