//! A fixed-design preference dataset: the comparisons are given (which pair of responses is
//! compared, how many times), only their outcomes are random, Bradley-Terry under the true
//! reward (docs/theory.md §9.9). For one context.
//!
//! The outcome of a design is the number of wins of the first response of each comparison:
//! independent Binomial(count, sigma(r(a) - r(b))) variables. [`outcomes`] enumerates them
//! exactly (log-space probabilities, truncated where the omitted mass is below a bound that
//! it reports); [`sample`] draws them (for Monte-Carlo cross-checks); [`FixedDesign::win_counts`]
//! turns an outcome into the [`WinCounts`] that the estimators read.

use crate::numerics::{ln_sigmoid, sigmoid};
use crate::preference::WinCounts;
use crate::statistics::{binomial_upper_tail, ln_binomial_pmf};
use rand::{Rng, RngExt};

/// One row of a design: responses `a` and `b` (a != b) compared `count` times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Comparison {
    pub a: usize,
    pub b: usize,
    pub count: u64,
}

/// A fixed design over `responses` responses of one context.
#[derive(Clone, Debug, PartialEq)]
pub struct FixedDesign {
    pub responses: usize,
    pub comparisons: Vec<Comparison>,
}

/// One outcome of a design: `wins[i]` wins of `comparisons[i].a` over `comparisons[i].b`, and
/// its probability in log space.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome {
    pub wins: Vec<u64>,
    pub ln_prob: f64,
}

/// The enumerated outcomes of a design and the probability they leave out.
#[derive(Clone, Debug, PartialEq)]
pub struct Enumeration {
    pub outcomes: Vec<Outcome>,
    /// 1 - sum of the enumerated probabilities, bounded above (exactly: the binomial tails
    /// beyond each comparison's enumerated range, summed over comparisons).
    pub omitted: f64,
}

/// Where each comparison's enumeration stops: outcomes with ln P[W = k] below this are left
/// out (as long as the range stays contiguous around the mode); e^-80 = 1.8e-35.
pub const LN_CUTOFF: f64 = -80.0;

impl FixedDesign {
    /// The total number of comparisons n.
    pub fn n(&self) -> u64 {
        self.comparisons.iter().map(|c| c.count).sum()
    }

    /// P[a beats b] = sigma(r(a) - r(b)) of each comparison (Bradley-Terry).
    pub fn win_probabilities(&self, reward: &[f64]) -> Vec<f64> {
        self.comparisons
            .iter()
            .map(|c| sigmoid(reward[c.a] - reward[c.b]))
            .collect()
    }

    /// The [`WinCounts`] of one context with `self.responses` responses for the outcome
    /// `wins` (comparisons of the same unordered pair add up).
    pub fn win_counts(&self, wins: &[u64]) -> WinCounts {
        let mut counts = WinCounts::new(1, self.responses);
        let pairs = crate::preference::pairs(self.responses);
        for (c, &w) in self.comparisons.iter().zip(wins) {
            let (lo, hi, first_is_lo) = if c.a < c.b {
                (c.a, c.b, true)
            } else {
                (c.b, c.a, false)
            };
            let p = pairs
                .iter()
                .position(|&q| q == (lo, hi))
                .expect("a pair of distinct responses");
            let (wa, wb) = (w, c.count - w);
            if first_is_lo {
                counts.wins[p][0] += wa;
                counts.wins[p][1] += wb;
            } else {
                counts.wins[p][0] += wb;
                counts.wins[p][1] += wa;
            }
        }
        counts.n = self.n();
        counts
    }
}

/// The values k of W ~ Binomial(count, p) with ln P[W = k] >= [`LN_CUTOFF`], a contiguous
/// range around the mode, with their log probabilities, and the mass outside the range.
fn binomial_support(count: u64, p: f64) -> (Vec<(u64, f64)>, f64) {
    if count == 0 {
        return (vec![(0, 0.0)], 0.0);
    }
    let ln_p = |k: u64| ln_binomial_pmf(k, count, p);
    let mode = (((count as f64 + 1.0) * p).floor() as u64).min(count);
    let mut lo = mode;
    while lo > 0 && ln_p(lo - 1) >= LN_CUTOFF {
        lo -= 1;
    }
    let mut hi = mode;
    while hi < count && ln_p(hi + 1) >= LN_CUTOFF {
        hi += 1;
    }
    let upper = if hi < count {
        binomial_upper_tail(hi + 1, count, p)
    } else {
        0.0
    };
    // P[W <= lo - 1] = P[count - W >= count - lo + 1], count - W ~ Binomial(count, 1 - p).
    let lower = if lo > 0 {
        binomial_upper_tail(count - lo + 1, count, 1.0 - p)
    } else {
        0.0
    };
    ((lo..=hi).map(|k| (k, ln_p(k))).collect(), upper + lower)
}

/// Every outcome of `design` under Bradley-Terry with rewards `reward` whose per-comparison
/// probabilities pass [`LN_CUTOFF`], with exact log probabilities.
///
/// # Formula
///
/// [docs/theory.md §9.9] The comparisons are independent and W_i ~ Binomial(count_i,
/// sigma(r(a_i) - r(b_i))), so P[W = w] = prod_i C(count_i, w_i) p_i^{w_i} (1 - p_i)^{count_i -
/// w_i}, each factor by Loader's saddle-point form (`statistics::ln_binomial_pmf`, accurate
/// to ~1e-16 relative for counts up to 1e6 and beyond). The omitted probability is at most
/// the sum over comparisons of the binomial tails outside their enumerated ranges.
pub fn outcomes(design: &FixedDesign, reward: &[f64]) -> Enumeration {
    let supports: Vec<(Vec<(u64, f64)>, f64)> = design
        .comparisons
        .iter()
        .zip(design.win_probabilities(reward))
        .map(|(c, p)| binomial_support(c.count, p))
        .collect();
    let omitted = supports.iter().map(|s| s.1).sum::<f64>().min(1.0);
    let mut out = vec![Outcome {
        wins: vec![],
        ln_prob: 0.0,
    }];
    for (support, _) in &supports {
        out = out
            .iter()
            .flat_map(|o| {
                support.iter().map(move |&(k, lp)| {
                    let mut wins = o.wins.clone();
                    wins.push(k);
                    Outcome {
                        wins,
                        ln_prob: o.ln_prob + lp,
                    }
                })
            })
            .collect();
    }
    Enumeration {
        outcomes: out,
        omitted,
    }
}

/// One random outcome of `design` (each comparison's outcome drawn one by one).
pub fn sample<R: Rng + ?Sized>(design: &FixedDesign, reward: &[f64], rng: &mut R) -> Vec<u64> {
    design
        .comparisons
        .iter()
        .map(|c| {
            let ln_p = ln_sigmoid(reward[c.a] - reward[c.b]);
            (0..c.count)
                .filter(|_| rng.random::<f64>().ln() < ln_p)
                .count() as u64
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn design(counts: &[(usize, usize, u64)]) -> FixedDesign {
        FixedDesign {
            responses: 4,
            comparisons: counts
                .iter()
                .map(|&(a, b, count)| Comparison { a, b, count })
                .collect(),
        }
    }

    /// Small counts: nothing is omitted, the probabilities sum to one and equal the direct
    /// product of binomial pmfs (C(n, k) by multiplication), to rounding.
    #[test]
    fn small_designs_enumerate_every_outcome_exactly() {
        let d = design(&[(0, 1, 5), (1, 2, 1), (3, 0, 3)]);
        let r = [0.3, -0.2, 0.9, 0.0];
        let e = outcomes(&d, &r);
        assert_eq!(e.outcomes.len(), 6 * 2 * 4);
        assert_eq!(e.omitted, 0.0);
        let total: f64 = e.outcomes.iter().map(|o| o.ln_prob.exp()).sum();
        assert!((total - 1.0).abs() < 1e-14, "{total}");
        let choose = |n: u64, k: u64| (0..k).fold(1.0, |c, i| c * (n - i) as f64 / (i + 1) as f64);
        let p = d.win_probabilities(&r);
        for o in &e.outcomes {
            let direct: f64 = d
                .comparisons
                .iter()
                .zip(&o.wins)
                .zip(&p)
                .map(|((c, &k), &pi)| {
                    choose(c.count, k) * pi.powi(k as i32) * (1.0 - pi).powi((c.count - k) as i32)
                })
                .product();
            assert!((o.ln_prob.exp() - direct).abs() < 1e-15, "{o:?}");
        }
    }

    /// Large counts: the enumerated range covers all but the reported omitted mass, which
    /// is tiny, and enumerated + omitted = 1 to rounding of ~1e4 terms.
    #[test]
    fn large_counts_are_truncated_with_a_reported_bound() {
        let d = design(&[(0, 1, 1_000_000)]);
        let e = outcomes(&d, &[-0.9, -1.0, 0.0, 0.1]);
        assert!(e.outcomes.len() < 20_000 && e.outcomes.len() > 5_000);
        assert!(e.omitted > 0.0 && e.omitted < 1e-30, "{}", e.omitted);
        let total: f64 = e.outcomes.iter().map(|o| o.ln_prob.exp()).sum();
        assert!((total + e.omitted - 1.0).abs() < 1e-12, "{total}");
    }

    /// The win counts put each comparison's wins on its unordered pair, in either order.
    #[test]
    fn win_counts_follow_the_pair_order() {
        let d = design(&[(0, 1, 5), (2, 1, 3)]);
        let c = d.win_counts(&[4, 1]);
        // pairs of 4: (0,1) (0,2) (0,3) (1,2) (1,3) (2,3)
        assert_eq!(c.wins[0], [4, 1]);
        assert_eq!(c.wins[3], [2, 1]);
        assert_eq!(c.n, 8);
    }

    /// Sampling agrees with the exact mean count p n: 2000 draws of Binomial(50, p); the
    /// standard error of the mean is sqrt(50 p q / 2000) <= 0.079, tolerance 4.5 of them.
    #[test]
    fn sampled_outcomes_have_the_binomial_mean() {
        let d = design(&[(0, 1, 50)]);
        let r = [0.4, -0.3, 0.0, 0.0];
        let p = d.win_probabilities(&r)[0];
        let mut rng = crate::streams::stream(3, "test/fixed_design", 0);
        let draws = 2000;
        let mean = (0..draws)
            .map(|_| sample(&d, &r, &mut rng)[0] as f64)
            .sum::<f64>()
            / draws as f64;
        let se = (50.0 * p * (1.0 - p) / draws as f64).sqrt();
        assert!((mean - 50.0 * p).abs() < 4.5 * se, "{mean} vs {}", 50.0 * p);
    }
}
