//! A fixed-design preference dataset: the comparisons are given (at which context, which pair
//! of responses is compared, how many times), only their outcomes are random, Bradley-Terry
//! under the true reward (docs/theory.md §9.9; for engine specs §2, "The fixed design").
//!
//! The outcome of a design is the number of wins of the first response of each comparison:
//! independent Binomial(count, sigma(r(a) - r(b))) variables. [`outcomes`] enumerates them
//! exactly (log-space probabilities, truncated where the omitted mass is below a bound that
//! it reports); [`sample`] draws them (the one sampler: Monte-Carlo cross-checks and the
//! engine); [`FixedDesign::win_counts`] turns an outcome into the [`WinCounts`] that the
//! estimators read.
//!
//! An engine spec gives its design as a [`Schedule`]: rows with a fixed `count` or a `share`
//! of what the fixed counts leave of each sample size n, apportioned to integers by
//! Webster's divisor method ([`apportion`]), which is house-monotone, so the designs along an
//! n grid are nested and [`Schedule::grow`] adds only each row's new comparisons.

use crate::numerics::sigmoid;
use crate::preference::WinCounts;
use crate::statistics::{binomial_upper_tail, ln_binomial_pmf};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// One row of a design: responses `a` and `b` (a != b) of context `context` compared `count`
/// times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Comparison {
    pub context: usize,
    pub a: usize,
    pub b: usize,
    pub count: u64,
}

/// A fixed design over `contexts` contexts with `responses` responses each.
#[derive(Clone, Debug, PartialEq)]
pub struct FixedDesign {
    pub contexts: usize,
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

    /// P[a beats b] = sigma(r(x, a) - r(x, b)) of each comparison (Bradley-Terry), `reward`
    /// flat X x Y.
    pub fn win_probabilities(&self, reward: &[f64]) -> Vec<f64> {
        let ny = self.responses;
        self.comparisons
            .iter()
            .map(|c| sigmoid(reward[c.context * ny + c.a] - reward[c.context * ny + c.b]))
            .collect()
    }

    /// The [`WinCounts`] over `self.contexts` contexts with `self.responses` responses for the
    /// outcome `wins` (comparisons of the same unordered pair add up).
    pub fn win_counts(&self, wins: &[u64]) -> WinCounts {
        let mut counts = WinCounts::new(self.contexts, self.responses);
        self.add_wins(wins, &mut counts);
        counts
    }

    /// Adds the outcome `wins` of this design to `counts` (same contexts and responses):
    /// each comparison's wins on its unordered pair, and n grows by [`FixedDesign::n`].
    pub fn add_wins(&self, wins: &[u64], counts: &mut WinCounts) {
        let pairs = crate::preference::pairs(self.responses);
        let np = pairs.len();
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
            let cell = &mut counts.wins[c.context * np + p];
            if first_is_lo {
                cell[0] += wa;
                cell[1] += wb;
            } else {
                cell[0] += wb;
                cell[1] += wa;
            }
        }
        counts.n += self.n();
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

/// One random outcome of `design`: W_i ~ Binomial(count_i, sigma(r(x_i, a_i) - r(x_i, b_i)))
/// drawn in the order of the comparisons (`binomial::binomial`: BTPE, O(1) expected).
pub fn sample<R: Rng + ?Sized>(design: &FixedDesign, reward: &[f64], rng: &mut R) -> Vec<u64> {
    design
        .comparisons
        .iter()
        .zip(design.win_probabilities(reward))
        .map(|(c, p)| crate::binomial::binomial(rng, c.count, p))
        .collect()
}

/// How many comparisons a row of a [`Schedule`] gets at sample size n.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Size {
    /// The same count at every n.
    Count(u64),
    /// A share of what the fixed counts leave, n - C ([`apportion`]).
    Share(f64),
}

/// One row of a [`Schedule`]: responses `a` and `b` of context `context` (0-based, as in
/// the instance's tables), compared `count` times or a `share` of n - C.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub context: usize,
    pub a: usize,
    pub b: usize,
    #[serde(flatten)]
    pub size: Size,
}

/// The fixed design of an engine spec (`experiment.design`): its rows, in the spec's order;
/// the design at sample size n is [`Schedule::at`]. Checked by `spec` (indices in range,
/// a != b, counts >= 1, shares in [1e-6, 1] summing to 1, C <= n).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    pub contexts: usize,
    pub responses: usize,
    pub rows: Vec<Row>,
}

impl Schedule {
    /// C, the sum of the fixed counts.
    pub fn fixed_total(&self) -> u64 {
        self.rows
            .iter()
            .map(|r| match r.size {
                Size::Count(c) => c,
                Size::Share(_) => 0,
            })
            .sum()
    }

    /// The shares of the share rows, in row order.
    fn shares(&self) -> Vec<f64> {
        self.rows
            .iter()
            .filter_map(|r| match r.size {
                Size::Share(s) => Some(s),
                Size::Count(_) => None,
            })
            .collect()
    }

    /// The design at sample size n (n >= C; n = C exactly when no row has a share): every
    /// row in order, a count row with its count, the share rows with [`apportion`]`(shares,
    /// n - C)`. At n = 0 every row has count 0 (the empty dataset before the first level).
    pub fn at(&self, n: u64) -> FixedDesign {
        let fixed = self.fixed_total();
        let mut apportioned = if n == 0 {
            vec![0; self.rows.len()]
        } else {
            apportion(&self.shares(), n - fixed)
        }
        .into_iter();
        let comparisons = self
            .rows
            .iter()
            .map(|r| Comparison {
                context: r.context,
                a: r.a,
                b: r.b,
                count: match r.size {
                    Size::Count(c) if n > 0 => c,
                    Size::Count(_) => 0,
                    Size::Share(_) => apportioned.next().expect("one count per share row"),
                },
            })
            .collect();
        FixedDesign {
            contexts: self.contexts,
            responses: self.responses,
            comparisons,
        }
    }

    /// Grows `counts`, the outcome of the design at `counts.n` (0 = empty), to an outcome
    /// of the design at `n` > `counts.n`: each row's new comparisons, count(n) - count(counts.n)
    /// ([`apportion`] is house-monotone, so none is negative), are drawn by [`sample`] under
    /// the true reward `reward` (flat X x Y) and added. The datasets along a grid are nested.
    pub fn grow<R: Rng + ?Sized>(
        &self,
        reward: &[f64],
        counts: &mut WinCounts,
        n: u64,
        rng: &mut R,
    ) {
        let before = self.at(counts.n);
        let mut extra = self.at(n);
        for (e, b) in extra.comparisons.iter_mut().zip(&before.comparisons) {
            e.count = e
                .count
                .checked_sub(b.count)
                .expect("house-monotone apportionment: counts never decrease with n");
        }
        let wins = sample(&extra, reward, rng);
        extra.add_wins(&wins, counts);
    }

    /// The limit frequencies of the comparisons as n grows: (context, a, b, weight) per row,
    /// the shares (count rows vanish), or without share rows the counts / C (the design of
    /// the one sample size C).
    pub fn limit_frequencies(&self) -> Vec<(usize, usize, usize, f64)> {
        let shares = self.shares();
        let (total, by_share) = if shares.is_empty() {
            (self.fixed_total() as f64, false)
        } else {
            (shares.iter().sum::<f64>(), true)
        };
        self.rows
            .iter()
            .filter_map(|r| match (r.size, by_share) {
                (Size::Share(s), true) => Some((r.context, r.a, r.b, s / total)),
                (Size::Count(c), false) => Some((r.context, r.a, r.b, c as f64 / total)),
                _ => None,
            })
            .collect()
    }
}

/// x = mantissa * 2^exponent exactly, for a positive finite x.
fn exact_parts(x: f64) -> (u128, i32) {
    let bits = x.to_bits();
    let raw_exp = ((bits >> 52) & 0x7ff) as i32;
    let frac = (bits & ((1u64 << 52) - 1)) as u128;
    if raw_exp == 0 {
        (frac, -1074)
    } else {
        (frac | (1u128 << 52), raw_exp - 1075)
    }
}

/// Whether seat j of share s ranks strictly before seat l of share t in Webster's order:
/// s / (2j + 1) > t / (2l + 1), i.e. s (2l + 1) > t (2j + 1), compared exactly in 128-bit
/// integers (mantissas below 2^53, 2j + 1 below 2^41 for j below 1e12, and shares in
/// [1e-6, 1] differ by at most 21 in binary exponent: at most 115 bits).
fn seat_before(s: f64, j: u64, t: f64, l: u64) -> Option<std::cmp::Ordering> {
    let (ms, es) = exact_parts(s);
    let (mt, et) = exact_parts(t);
    let left = ms.checked_mul(2 * l as u128 + 1)?;
    let right = mt.checked_mul(2 * j as u128 + 1)?;
    let shift = |v: u128, by: i32| -> Option<u128> {
        let by = u32::try_from(by).ok()?;
        (v.leading_zeros() > by).then(|| v << by)
    };
    Some(if es >= et {
        shift(left, es - et)?.cmp(&right)
    } else {
        left.cmp(&shift(right, et - es)?)
    })
}

/// Whether seat `j` of row `i` ranks before seat `l` of row `k` (Webster's priority
/// s_i / (j + 1/2), larger first; equal priorities: the lower row first).
fn ranks_before(shares: &[f64], (i, j): (usize, u64), (k, l): (usize, u64)) -> bool {
    match seat_before(shares[i], j, shares[k], l).expect("shares in [1e-6, 1], m below 1e12") {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Less => false,
        std::cmp::Ordering::Equal => i < k,
    }
}

/// m comparisons apportioned to rows with shares `shares` (in [1e-6, 1], summing to 1 up to
/// rounding) by Webster's (Sainte-Laguë) divisor method [ours, recorded as
/// `ours.design_rounding`]: the m seats of largest priority s_i / (j + 1/2), j = 0, 1, ...
/// the row's seats, ties to the lower row. The counts sum to m and never decrease as m grows
/// (house monotonicity: the top m seats are among the top m + 1), which largest-remainder
/// rounding does not guarantee (the Alabama paradox; see the tests), so the datasets of an n
/// grid nest. With one share row it gets all m; with two, m s_i rounded to the nearest
/// integer (half to the lower row).
///
/// # Formula
///
/// [docs/theory.md §2, "The fixed design"] c_i(m) = #{j : (i, j) among the m largest of
/// s_i / (j + 1/2)} in the strict order above. Computed from c_i = floor(m s_i / sum s),
/// then seats added (the best unselected) or removed (the worst selected) until sum c = m,
/// then the worst selected swapped for the best unselected while it ranks after it; the
/// comparisons are exact ([`seat_before`]), so the result is the top-m set itself.
pub fn apportion(shares: &[f64], m: u64) -> Vec<u64> {
    let k = shares.len();
    if k == 0 {
        assert_eq!(m, 0, "no share rows to apportion {m} comparisons to");
        return vec![];
    }
    let total: f64 = shares.iter().sum();
    let mut c: Vec<u64> = shares
        .iter()
        .map(|s| ((m as f64) * s / total).floor().min(m as f64) as u64)
        .collect();
    // The best unselected seat (i, c_i) and the worst selected seat (i, c_i - 1).
    let best_unselected = |c: &[u64]| {
        (0..k)
            .reduce(|b, i| {
                if ranks_before(shares, (i, c[i]), (b, c[b])) {
                    i
                } else {
                    b
                }
            })
            .expect("k > 0")
    };
    let worst_selected = |c: &[u64]| {
        (0..k).filter(|&i| c[i] > 0).reduce(|w, i| {
            if ranks_before(shares, (w, c[w] - 1), (i, c[i] - 1)) {
                i
            } else {
                w
            }
        })
    };
    let mut sum: u64 = c.iter().sum();
    while sum < m {
        let i = best_unselected(&c);
        c[i] += 1;
        sum += 1;
    }
    while sum > m {
        let i = worst_selected(&c).expect("a selected seat while sum > m");
        c[i] -= 1;
        sum -= 1;
    }
    while let Some(w) = worst_selected(&c) {
        let b = best_unselected(&c);
        if b == w || !ranks_before(shares, (b, c[b]), (w, c[w] - 1)) {
            break;
        }
        c[w] -= 1;
        c[b] += 1;
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    fn design(counts: &[(usize, usize, u64)]) -> FixedDesign {
        FixedDesign {
            contexts: 1,
            responses: 4,
            comparisons: counts
                .iter()
                .map(|&(a, b, count)| Comparison {
                    context: 0,
                    a,
                    b,
                    count,
                })
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

    /// A schedule over `contexts` x `responses` with rows (context, a, b, size).
    fn schedule(
        contexts: usize,
        responses: usize,
        rows: &[(usize, usize, usize, Size)],
    ) -> Schedule {
        Schedule {
            contexts,
            responses,
            rows: rows
                .iter()
                .map(|&(context, a, b, size)| Row {
                    context,
                    a,
                    b,
                    size,
                })
                .collect(),
        }
    }

    /// Webster's counts are the m largest seats s_i / (j + 1/2) (ties to the lower row),
    /// by brute force: every seat j < m of every row sorted, the first m counted. Shares with
    /// exact ties (1/4, 1/4) and irregular ones; m from 0 to 300.
    #[test]
    fn apportionment_is_the_top_m_seats() {
        let cases: [&[f64]; 4] = [
            &[1.0],
            &[0.5, 0.25, 0.25],
            &[0.37, 0.21, 0.3, 0.12],
            &[0.001, 0.499, 0.2, 0.2, 0.1],
        ];
        for shares in cases {
            for m in 0..=300u64 {
                let mut seats: Vec<(f64, usize)> = shares
                    .iter()
                    .enumerate()
                    .flat_map(|(i, &s)| (0..m).map(move |j| (s / (j as f64 + 0.5), i)))
                    .collect();
                seats.sort_by(|x, y| y.0.total_cmp(&x.0).then(x.1.cmp(&y.1)));
                let mut want = vec![0u64; shares.len()];
                seats
                    .iter()
                    .take(m as usize)
                    .for_each(|&(_, i)| want[i] += 1);
                assert_eq!(apportion(shares, m), want, "{shares:?} m = {m}");
            }
        }
    }

    /// Nesting needs counts that never decrease in m. Largest-remainder rounding fails it (the
    /// Alabama paradox): a search over seeded random 3- and 4-row shares finds a decrease,
    /// and on the same shares Webster's counts sum to m and never decrease, up to m = 400
    /// and on a geometric grid up to 1e12.
    #[test]
    fn webster_is_house_monotone_where_largest_remainder_is_not() {
        use rand::RngExt;
        let largest_remainder = |s: &[f64], m: u64| {
            let q: Vec<f64> = s.iter().map(|v| v * m as f64).collect();
            let mut c: Vec<u64> = q.iter().map(|v| v.floor() as u64).collect();
            let mut order: Vec<usize> = (0..s.len()).collect();
            order.sort_by(|&a, &b| (q[b] - q[b].floor()).total_cmp(&(q[a] - q[a].floor())));
            let left = m - c.iter().sum::<u64>();
            order.iter().take(left as usize).for_each(|&i| c[i] += 1);
            c
        };
        let mut rng = crate::streams::stream(5, "test/apportion", 0);
        let mut paradoxes = 0;
        for trial in 0..200 {
            let k = 3 + trial % 2;
            let raw: Vec<f64> = (0..k).map(|_| 0.05 + rng.random::<f64>()).collect();
            let total: f64 = raw.iter().sum();
            let shares: Vec<f64> = raw.iter().map(|v| v / total).collect();
            let decreases = |f: &dyn Fn(u64) -> Vec<u64>| {
                (1..400u64).any(|m| f(m).iter().zip(f(m - 1)).any(|(a, b)| *a < b))
            };
            if decreases(&|m| largest_remainder(&shares, m)) {
                paradoxes += 1;
            }
            assert!(!decreases(&|m| apportion(&shares, m)), "{shares:?}");
            for m in 0..400 {
                assert_eq!(apportion(&shares, m).iter().sum::<u64>(), m);
            }
            let mut previous = vec![0; k];
            for e in 0..=24 {
                let m = 10f64.powf(e as f64 / 2.0).round() as u64;
                let c = apportion(&shares, m);
                assert_eq!(c.iter().sum::<u64>(), m);
                assert!(
                    c.iter().zip(&previous).all(|(a, b)| a >= b),
                    "{shares:?} {m}"
                );
                previous = c;
            }
        }
        assert!(paradoxes > 0, "the search found no Alabama paradox");
    }

    /// One share row takes all m; two rows get m s rounded to the nearest, a half to the
    /// lower row.
    #[test]
    fn one_and_two_share_rows_round_to_the_nearest() {
        assert_eq!(
            apportion(&[1.0], 1_000_000_000_000),
            vec![1_000_000_000_000]
        );
        assert_eq!(apportion(&[0.5, 0.5], 7), vec![4, 3]);
        assert_eq!(apportion(&[0.3, 0.7], 5), vec![2, 3]); // 1.5 -> lower row gets the half
        assert_eq!(apportion(&[0.3, 0.7], 10), vec![3, 7]);
        assert_eq!(apportion(&[0.26, 0.74], 10), vec![3, 7]);
        assert_eq!(apportion(&[0.24, 0.76], 10), vec![2, 8]);
    }

    /// The pessimism design as a schedule: a share-1 row (a1, a2) and a count-1 row (a2, a3)
    /// give n - 1 and 1 comparisons at every n, as `pessimism::design`.
    fn pessimism_schedule() -> Schedule {
        schedule(
            1,
            4,
            &[(0, 0, 1, Size::Share(1.0)), (0, 1, 2, Size::Count(1))],
        )
    }

    #[test]
    fn schedules_give_the_counts_per_level() {
        let s = pessimism_schedule();
        for n in [2, 3, 10, 1_000_000] {
            assert_eq!(s.at(n), crate::pessimism::design(n), "n = {n}");
        }
        assert!(s.at(0).comparisons.iter().all(|c| c.count == 0));
        assert_eq!(s.limit_frequencies(), vec![(0, 0, 1, 1.0)]);
        // Two contexts, shares 1/4 and 3/4 of n - 2.
        let t = schedule(
            2,
            3,
            &[
                (1, 2, 0, Size::Share(0.25)),
                (0, 0, 1, Size::Count(2)),
                (0, 1, 2, Size::Share(0.75)),
            ],
        );
        let counts = |n| {
            t.at(n)
                .comparisons
                .iter()
                .map(|c| c.count)
                .collect::<Vec<_>>()
        };
        assert_eq!(counts(2), vec![0, 2, 0]);
        assert_eq!(counts(10), vec![2, 2, 6]);
        assert_eq!(counts(102), vec![25, 2, 75]);
        assert_eq!(
            t.limit_frequencies(),
            vec![(1, 2, 0, 0.25), (0, 1, 2, 0.75)]
        );
    }

    /// Growing along a grid: every level holds exactly the design's comparisons per pair, the
    /// win counts only grow (nested datasets), and the same stream gives the same data.
    #[test]
    fn growth_is_nested_and_matches_the_design() {
        let t = schedule(
            2,
            3,
            &[
                (1, 2, 0, Size::Share(0.4)),
                (0, 0, 1, Size::Count(3)),
                (0, 1, 0, Size::Share(0.6)),
            ],
        );
        let reward = [0.2, -0.4, 0.0, 1.0, 0.5, -1.0];
        let walk = |seed| {
            let mut rng = crate::streams::stream(seed, "test/grow", 0);
            let mut counts = WinCounts::new(2, 3);
            let mut out = vec![];
            for n in [3, 4, 10, 57, 1000, 123_456] {
                t.grow(&reward, &mut counts, n, &mut rng);
                out.push(counts.clone());
            }
            out
        };
        let levels = walk(1);
        assert_eq!(levels, walk(1));
        assert_ne!(levels, walk(2));
        for (w, n) in levels.iter().zip([3u64, 4, 10, 57, 1000, 123_456]) {
            assert_eq!(w.n, n);
            let d = t.at(n);
            // pairs of 3: (0,1) (0,2) (1,2); rows: (x1: 2 vs 0), (x0: 0 vs 1) twice.
            let pair = |x: usize, p: usize| w.wins[x * 3 + p][0] + w.wins[x * 3 + p][1];
            assert_eq!(pair(1, 1), d.comparisons[0].count);
            assert_eq!(pair(0, 0), d.comparisons[1].count + d.comparisons[2].count);
            assert_eq!(pair(0, 1) + pair(0, 2) + pair(1, 0) + pair(1, 2), 0);
        }
        for pair in levels.windows(2) {
            for (a, b) in pair[0].wins.iter().zip(&pair[1].wins) {
                assert!(a[0] <= b[0] && a[1] <= b[1]);
            }
        }
    }

    /// Mean and variance of R draws of W ~ Binomial(count, p) within 4.5 standard errors:
    /// se(mean) = sqrt(v / R) with v = count p q; se(sample variance) = sqrt((mu4 - v^2) / R)
    /// to first order, mu4 = v (1 + 3 (count - 2) p q) the binomial's fourth central moment.
    fn binomial_moments_agree(draws: &[u64], count: u64, p: f64) -> bool {
        let r = draws.len() as f64;
        let mean = draws.iter().map(|&w| w as f64).sum::<f64>() / r;
        let var = draws
            .iter()
            .map(|&w| (w as f64 - mean).powi(2))
            .sum::<f64>()
            / (r - 1.0);
        let v = count as f64 * p * (1.0 - p);
        let mu4 = v * (1.0 + 3.0 * (count as f64 - 2.0) * p * (1.0 - p));
        (mean - count as f64 * p).abs() < 4.5 * (v / r).sqrt()
            && (var - v).abs() < 4.5 * ((mu4 - v * v) / r).sqrt()
    }

    /// The engine's draws of a fixed design (through `Schedule::grow`, each row on its own
    /// pair) have Binomial(count, sigma(r(a) - r(b))) means and variances, at a fixed seed;
    /// a planted sampler with the wrong sign (outcomes drawn under -r) fails the same test.
    #[test]
    fn sampled_wins_have_binomial_moments_and_a_wrong_sign_is_caught() {
        let t = schedule(
            1,
            3,
            &[(0, 0, 1, Size::Share(1.0)), (0, 2, 1, Size::Count(7))],
        );
        let reward = [0.4, -0.3, 1.2];
        let flipped: Vec<f64> = reward.iter().map(|v| -v).collect();
        let n = 57; // 50 comparisons of (0, 1), 7 of (2, 1)
        let draws = |reward: &[f64]| {
            let mut rng = crate::streams::stream(11, "test/fixed_design_moments", 0);
            let (mut w01, mut w21) = (vec![], vec![]);
            for _ in 0..4000 {
                let mut c = WinCounts::new(1, 3);
                t.grow(reward, &mut c, n, &mut rng);
                w01.push(c.wins[0][0]); // 0 beat 1
                w21.push(c.wins[2][1]); // pair (1, 2): 2 beat 1
            }
            (w01, w21)
        };
        let (p01, p21) = (sigmoid(0.4 + 0.3), sigmoid(1.2 + 0.3));
        let (w01, w21) = draws(&reward);
        assert!(binomial_moments_agree(&w01, 50, p01));
        assert!(binomial_moments_agree(&w21, 7, p21));
        let (f01, f21) = draws(&flipped);
        assert!(!binomial_moments_agree(&f01, 50, p01));
        assert!(!binomial_moments_agree(&f21, 7, p21));
    }
}
