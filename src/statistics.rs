//! Summary statistics and rate fitting for the replication experiments.
//!
//! For every sample size `n` of a grid the simulation produces `R` replication values
//! (gaps). This module
//!
//! * summarises them per `n` ([`summarize`]: mean, standard error, Student-t interval,
//!   median, an upper quantile, range),
//! * fits the exponent `a` of `stat(n) ~ C n^a` by least squares of `ln stat` on `ln n`
//!   over the tail of the grid, with a bootstrap percentile interval ([`fit_exponent`]),
//! * and provides the small helpers the claims need: type-7 quantiles ([`quantile`]),
//!   ordinary least squares ([`least_squares`]), an exact binomial upper tail
//!   ([`binomial_upper_tail`]) and the empirical sample complexity ([`first_n_below`]).
//!
//! All functions take pre-validated inputs: the preconditions are documented on each
//! function and checked with `debug_assert!` only; nothing here returns a `Result`.
//!
//! "Not available" is always `Option::None` (serialised as JSON `null`), never `NaN`,
//! because JSON cannot represent `NaN`.

use rand::SeedableRng;
use rand::distr::{Distribution, Uniform};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use statrs::distribution::{ContinuousCDF, StudentsT};

/// Per-n summary of the replications' values (gaps).
///
/// With `x_1..x_R` the values and `x_(1) <= .. <= x_(R)` their order statistics:
///
/// * `mean = (1/R) sum_i x_i`
/// * `std_err = s / sqrt(R)` with `s^2 = sum_i (x_i - mean)^2 / (R - 1)`; `0` if `R < 2`
/// * `ci_low, ci_high = mean -/+ t_{0.975, R-1} * std_err` (Student-t 95% interval for the
///   mean; both equal `mean` if `R < 2`)
/// * `median = Q_7(0.5)`, `quantile = Q_7(1 - delta)`, `quantile_level = 1 - delta`
///   where `Q_7` is the type-7 quantile of [`quantile`]
/// * `min = x_(1)`, `max = x_(R)`
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The sample size `n` these replications were run at.
    pub n: u64,
    /// Number of replications `R`.
    pub replications: usize,
    /// Arithmetic mean `(1/R) sum_i x_i`.
    pub mean: f64,
    /// `s / sqrt(R)` with `s` the sample standard deviation (divisor `R - 1`); `0` if `R < 2`.
    pub std_err: f64,
    /// `mean - t_{0.975, R-1} * std_err`.
    pub ci_low: f64,
    /// `mean + t_{0.975, R-1} * std_err`.
    pub ci_high: f64,
    /// Type-7 quantile at 0.5.
    pub median: f64,
    /// Type-7 quantile at `1 - delta`.
    pub quantile: f64,
    /// `1 - delta`.
    pub quantile_level: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
}

/// Summarises the `R = values.len()` replication values at sample size `n`; see [`Summary`]
/// for the formula of every field. The `(1 - delta)`-quantile is the type-7 quantile.
///
/// Preconditions: `values` non-empty and finite, `0 <= delta <= 1`.
pub fn summarize(n: u64, values: &[f64], delta: f64) -> Summary {
    debug_assert!(!values.is_empty(), "summarize: no values");
    debug_assert!(
        values.iter().all(|v| v.is_finite()),
        "summarize: non-finite value"
    );
    debug_assert!((0.0..=1.0).contains(&delta), "summarize: delta {delta}");
    let r = values.len();
    let mean = mean_of(values);
    let std_err = if r < 2 {
        0.0
    } else {
        let ss: f64 = values.iter().map(|x| (x - mean) * (x - mean)).sum();
        (ss / (r - 1) as f64).sqrt() / (r as f64).sqrt()
    };
    let half_width = if r < 2 {
        0.0
    } else {
        t_quantile(0.975, (r - 1) as f64) * std_err
    };
    let mut sorted = values.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    let level = 1.0 - delta;
    Summary {
        n,
        replications: r,
        mean,
        std_err,
        ci_low: mean - half_width,
        ci_high: mean + half_width,
        median: quantile_of_sorted(&sorted, 0.5),
        quantile: quantile_of_sorted(&sorted, level),
        quantile_level: level,
        min: sorted[0],
        max: sorted[r - 1],
    }
}

/// `p`-quantile of Student's t distribution with `dof` degrees of freedom (statrs).
pub fn t_quantile(p: f64, dof: f64) -> f64 {
    StudentsT::new(0.0, 1.0, dof)
        .expect("Student t with positive degrees of freedom")
        .inverse_cdf(p)
}

/// `(1/R) sum_i x_i`, summed in slice order (the same order everywhere in this module, so
/// [`Summary::mean`] and the mean used by [`fit_exponent`] agree bit for bit).
fn mean_of(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// Empirical quantile of type 7 (Hyndman & Fan; R's and numpy's default) of `values`, given
/// in any order.
///
/// With `x_(0) <= .. <= x_(m-1)` the sorted values, `h = (m - 1) q`, `j = floor(h)`:
/// `Q_7(q) = x_(j) + (h - j) (x_(j+1) - x_(j))` (just `x_(j)` when `h = j`).
/// So `Q_7(0) = min`, `Q_7(1) = max`, and e.g. `[1, 2, 3, 4]` gives `Q_7(0.5) = 2.5`,
/// `Q_7(0.9) = 3.7`. The result is clamped to `[x_(j), x_(j+1)]` against rounding.
///
/// Runs in expected O(m) (selection, not a full sort) on a copy of `values`.
///
/// Preconditions: `values` non-empty and without NaN, `0 <= q <= 1`.
pub fn quantile(values: &[f64], q: f64) -> f64 {
    let mut buf = values.to_vec();
    quantile_in_place(&mut buf, q)
}

/// Position of the type-7 quantile: `(j, h - j)` with `h = (m - 1) q`, `j = floor(h)`.
fn type7_position(m: usize, q: f64) -> (usize, f64) {
    debug_assert!(m > 0, "quantile of no values");
    debug_assert!((0.0..=1.0).contains(&q), "quantile level {q}");
    let q = q.clamp(0.0, 1.0);
    let h = (m - 1) as f64 * q;
    let j = (h.floor() as usize).min(m - 1);
    (j, h - j as f64)
}

/// `a + frac (b - a)`, kept inside `[a, b]` (for `a <= b`) despite rounding.
fn interpolate(a: f64, b: f64, frac: f64) -> f64 {
    if frac == 0.0 {
        a
    } else {
        (a + frac * (b - a)).max(a).min(b)
    }
}

/// Type-7 quantile of already sorted (ascending) values.
fn quantile_of_sorted(sorted: &[f64], q: f64) -> f64 {
    let (j, frac) = type7_position(sorted.len(), q);
    if frac == 0.0 {
        sorted[j]
    } else {
        interpolate(sorted[j], sorted[j + 1], frac)
    }
}

/// Type-7 quantile of `buf` (any order), reordering `buf` with a selection instead of a
/// sort. Gives the same value as [`quantile_of_sorted`] on the sorted values.
fn quantile_in_place(buf: &mut [f64], q: f64) -> f64 {
    let (j, frac) = type7_position(buf.len(), q);
    let (_, &mut a, above) = buf.select_nth_unstable_by(j, f64::total_cmp);
    if frac == 0.0 {
        a
    } else {
        // frac > 0 implies j < m - 1, so `above` is non-empty; its minimum is x_(j+1).
        let b = above
            .iter()
            .copied()
            .min_by(f64::total_cmp)
            .expect("type-7 upper neighbour");
        interpolate(a, b, frac)
    }
}

/// Type-7 quantile at `q` of the resample that holds `sorted[i]` exactly `counts[i]` times
/// (`sorted` ascending, `sum counts = sorted.len()`): its order statistics `x*_(j)`,
/// `x*_(j+1)` are found by a cumulative scan of `counts`. Equals [`quantile`] of that resample.
fn quantile_of_counts(sorted: &[f64], counts: &[u32], q: f64) -> f64 {
    debug_assert_eq!(sorted.len(), counts.len());
    let (j, frac) = type7_position(sorted.len(), q);
    // Find i with cum(counts[..i]) <= j < cum(counts[..=i]): then x*_(j) = sorted[i].
    let mut i = 0;
    let mut below = 0usize;
    while below + counts[i] as usize <= j {
        below += counts[i] as usize;
        i += 1;
    }
    let a = sorted[i];
    if frac == 0.0 {
        return a;
    }
    // x*_(j+1): the same copy if sorted[i] occurs more than once beyond j, else the next drawn.
    if below + counts[i] as usize <= j + 1 {
        i += 1;
        while counts[i] == 0 {
            i += 1;
        }
    }
    interpolate(a, sorted[i], frac)
}

/// Ordinary least squares of `y` on `x`; returns `(slope, intercept)`:
/// `slope = sum_i (x_i - xbar)(y_i - ybar) / sum_i (x_i - xbar)^2`,
/// `intercept = ybar - slope * xbar`.
///
/// Preconditions: equal lengths, at least 2 points, `x` not constant, all finite.
pub fn least_squares(x: &[f64], y: &[f64]) -> (f64, f64) {
    debug_assert_eq!(x.len(), y.len(), "least_squares: lengths differ");
    debug_assert!(x.len() >= 2, "least_squares: fewer than 2 points");
    let k = x.len() as f64;
    let xbar = x.iter().sum::<f64>() / k;
    let ybar = y.iter().sum::<f64>() / k;
    let (sxy, sxx) = x.iter().zip(y).fold((0.0, 0.0), |(sxy, sxx), (&xi, &yi)| {
        let dx = xi - xbar;
        (sxy + dx * (yi - ybar), sxx + dx * dx)
    });
    debug_assert!(sxx > 0.0, "least_squares: x is constant");
    let slope = sxy / sxx;
    (slope, ybar - slope * xbar)
}

/// Which per-n summary statistic a rate is fitted to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateStatistic {
    /// The mean `(1/R) sum_i x_i` of the replications (= [`Summary::mean`]).
    Mean,
    /// The type-7 `(1 - delta)`-quantile of the replications (= [`Summary::quantile`]).
    Quantile,
}

/// The documented rule that drops pre-asymptotic sample sizes: of a grid of `L` levels,
/// the fit uses the largest `k = min(L, max(min_points, ceil(fraction * L)))` levels.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TailRule {
    /// Fraction of the grid kept, counted from the largest n (`0 <= fraction <= 1`).
    pub fraction: f64,
    /// Lower bound on the number of levels kept (capped by the grid size).
    pub min_points: usize,
}

impl Default for TailRule {
    /// `fraction = 0.5`, `min_points = 4`.
    fn default() -> Self {
        TailRule {
            fraction: 0.5,
            min_points: 4,
        }
    }
}

impl TailRule {
    /// Index of the first (smallest-n) level used: `L - k` with
    /// `k = min(L, max(min_points, ceil(fraction * L)))` and `L = levels`.
    /// E.g. the default rule keeps 5 of 9 levels (index 4), 5 of 10, and all of 4.
    ///
    /// Precondition: `0 <= fraction <= 1`.
    pub fn first_index(&self, levels: usize) -> usize {
        debug_assert!(
            (0.0..=1.0).contains(&self.fraction),
            "tail fraction {}",
            self.fraction
        );
        let by_fraction = (self.fraction * levels as f64).ceil() as usize;
        let kept = by_fraction.max(self.min_points).min(levels);
        levels - kept
    }
}

/// The fitted exponent of a statistic in n, see [`fit_exponent`].
///
/// Quantities that may be undefined are `Option`s (`null` in JSON), never `NaN`:
/// `slope`, `intercept`, `ci_low`, `ci_high` and the entries of `pairwise`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExponentEstimate {
    /// The statistic fitted.
    pub statistic: RateStatistic,
    /// `1 - delta` for [`RateStatistic::Quantile`], `None` for [`RateStatistic::Mean`].
    pub quantile_level: Option<f64>,
    /// Least-squares slope of `ln stat_j` on `ln n_j` over the tail levels; `None` if
    /// `floor_hit` (or the tail has fewer than 2 levels).
    pub slope: Option<f64>,
    /// Least-squares intercept of that fit (so `stat ~ e^intercept n^slope`); `None` with `slope`.
    pub intercept: Option<f64>,
    /// Lower bootstrap percentile bound: type-7 `(1 - ci_level)/2` quantile of the bootstrap
    /// slopes; `None` if there is no slope, no resample, or fewer than half of the
    /// resamples stayed above the floor.
    pub ci_low: Option<f64>,
    /// Upper bootstrap percentile bound: type-7 `(1 + ci_level)/2` quantile; `None` as `ci_low`.
    pub ci_high: Option<f64>,
    /// Nominal coverage of `[ci_low, ci_high]`.
    pub ci_level: f64,
    /// Smallest n used in the fit (`ns[TailRule::first_index(L)]`).
    pub tail_from_n: u64,
    /// Number of n levels used in the fit.
    pub points: usize,
    /// Local slopes over the WHOLE grid, `L - 1` entries:
    /// `(ln stat_{j+1} - ln stat_j) / (ln n_{j+1} - ln n_j)`; `None` where either statistic
    /// is at or below the floor.
    pub pairwise: Vec<Option<f64>>,
    /// Number of bootstrap resamples drawn (`B`; 0 when no slope could be fitted, because
    /// then no bootstrap is run).
    pub bootstrap_resamples: usize,
    /// Resamples in which some tail level's resampled statistic was at or below the floor;
    /// they are left out of the interval.
    pub bootstrap_floor_hits: usize,
    /// True if a statistic of a tail level is at or below the floor (or NaN): the logarithms
    /// are then meaningless and `slope`, `intercept`, `ci_low`, `ci_high` are `None`.
    pub floor_hit: bool,
}

/// The statistic of one level's values; `buf` is scratch space for the quantile.
fn statistic_of(statistic: RateStatistic, values: &[f64], level: f64, buf: &mut Vec<f64>) -> f64 {
    match statistic {
        RateStatistic::Mean => mean_of(values),
        RateStatistic::Quantile => {
            buf.clear();
            buf.extend_from_slice(values);
            quantile_in_place(buf, level)
        }
    }
}

/// Fits the exponent `a` of `stat(n) ~ C n^a` over the tail of the grid.
///
/// Inputs: `ns` the `L` sample sizes, strictly increasing; `raw[j]` the `R_j >= 2`
/// replication values at `ns[j]` (normally the same `R` at every level). For each level
/// `stat_j` is the mean or the type-7 `(1 - delta)`-quantile of `raw[j]` (equal to the
/// corresponding field of [`summarize`]). With `t = tail.first_index(L)`:
///
/// * `slope, intercept` = [`least_squares`] of `y_j = ln stat_j` on `x_j = ln n_j`,
///   `j = t..L`;
/// * `pairwise[j] = (y_{j+1} - y_j) / (x_{j+1} - x_j)` for `j = 0..L-1` (whole grid);
/// * a statistic `stat_j <= floor` (or NaN) is "at the floor": a pairwise entry touching it
///   is `None`, and if it is in the tail, `floor_hit = true` and slope, intercept and the
///   interval are `None` (no bootstrap is run);
/// * bootstrap: `B = resamples` resamples; in each, for every tail level `j = t..L` in
///   turn, `R_j` indices are drawn uniformly with replacement from `0..R_j` (levels outside
///   the tail do not enter the slope and are not resampled), the statistic is recomputed,
///   and the slope is `sum_j w_j ln stat*_j` with the LS weights
///   `w_j = (x_j - xbar) / sum_i (x_i - xbar)^2`. Resamples with a tail statistic at the
///   floor are counted in `bootstrap_floor_hits` and dropped. If at least half of the `B`
///   resamples remain (and `B > 0`), `[ci_low, ci_high]` are the type-7 quantiles at
///   `(1 - ci_level)/2` and `(1 + ci_level)/2` of the remaining slopes (percentile interval).
///
/// The index draws come from `ChaCha8Rng::seed_from_u64(seed)` through
/// `rand::distr::Uniform` in the order resample, tail level, replication; every resample
/// consumes its draws even when it hits the floor, so the result is reproducible bit for
/// bit (for the pinned `rand` version) and the drawn indices do not depend on the values.
/// For the mean the indices point into `raw[j]`; for the quantile they point into a sorted
/// copy of `raw[j]` and the resample's type-7 quantile is read off the index counts (the same
/// value a sort of the resample would give, in O(R_j)).
///
/// Cost: `O(B * sum_{tail} R_j)`, no allocation inside the resample loop.
///
/// Preconditions: `L >= 2`, `ns` strictly increasing and positive, `raw.len() == L`, every
/// `raw[j]` of length `>= 2` with finite values, `0 <= delta <= 1`, `0 < ci_level < 1`,
/// `0 <= tail.fraction <= 1`.
#[allow(clippy::too_many_arguments)]
pub fn fit_exponent(
    ns: &[u64],
    raw: &[Vec<f64>],
    statistic: RateStatistic,
    delta: f64,
    tail: TailRule,
    resamples: usize,
    ci_level: f64,
    floor: f64,
    seed: u64,
) -> ExponentEstimate {
    let x: Vec<f64> = ns.iter().map(|&n| n as f64).collect();
    let mut e = fit_exponent_in(
        &x, raw, statistic, delta, tail, resamples, ci_level, floor, seed,
    );
    e.tail_from_n = ns.get(tail.first_index(ns.len())).copied().unwrap_or(0);
    e
}

/// [`fit_exponent`] in any positive variable `x` (strictly increasing): the exponent `a` of
/// `stat(x) ~ C x^a`, e.g. in gamma across the cells of a gamma sweep. `tail_from_n` of the
/// estimate is 0 (the caller that fits in n sets it).
#[allow(clippy::too_many_arguments)]
pub fn fit_exponent_in(
    x: &[f64],
    raw: &[Vec<f64>],
    statistic: RateStatistic,
    delta: f64,
    tail: TailRule,
    resamples: usize,
    ci_level: f64,
    floor: f64,
    seed: u64,
) -> ExponentEstimate {
    let ns = x;
    let levels = ns.len();
    debug_assert!(levels >= 2, "fit_exponent: fewer than 2 levels");
    debug_assert_eq!(
        raw.len(),
        levels,
        "fit_exponent: raw and ns differ in length"
    );
    debug_assert!(
        ns.first().is_none_or(|&n| n > 0.0) && ns.windows(2).all(|w| w[0] < w[1]),
        "fit_exponent: ns not strictly increasing and positive"
    );
    debug_assert!(
        raw.iter().all(|v| v.len() >= 2),
        "fit_exponent: fewer than 2 replications at a level"
    );
    debug_assert!(
        raw.iter().flatten().all(|v| v.is_finite()),
        "fit_exponent: non-finite value"
    );
    debug_assert!((0.0..=1.0).contains(&delta), "fit_exponent: delta {delta}");
    debug_assert!(
        ci_level > 0.0 && ci_level < 1.0,
        "fit_exponent: ci_level {ci_level}"
    );

    let level = 1.0 - delta;
    let at_floor = |s: f64| s <= floor || s.is_nan();
    let mut buf: Vec<f64> = Vec::with_capacity(raw.iter().map(Vec::len).max().unwrap_or(0));
    let stats: Vec<f64> = raw
        .iter()
        .map(|v| statistic_of(statistic, v, level, &mut buf))
        .collect();
    let xs_all: Vec<f64> = ns.iter().map(|&n| n.ln()).collect();

    let pairwise = (0..levels.saturating_sub(1))
        .map(|j| {
            if at_floor(stats[j]) || at_floor(stats[j + 1]) {
                return None;
            }
            let local = (stats[j + 1].ln() - stats[j].ln()) / (xs_all[j + 1] - xs_all[j]);
            local.is_finite().then_some(local)
        })
        .collect();

    let first = tail.first_index(levels);
    let points = levels - first;
    let floor_hit = stats[first..].iter().any(|&s| at_floor(s));
    let mut estimate = ExponentEstimate {
        statistic,
        quantile_level: match statistic {
            RateStatistic::Mean => None,
            RateStatistic::Quantile => Some(level),
        },
        slope: None,
        intercept: None,
        ci_low: None,
        ci_high: None,
        ci_level,
        tail_from_n: 0,
        points,
        pairwise,
        bootstrap_resamples: 0,
        bootstrap_floor_hits: 0,
        floor_hit,
    };
    if floor_hit || points < 2 {
        return estimate;
    }

    let xs = &xs_all[first..];
    let ys: Vec<f64> = stats[first..].iter().map(|s| s.ln()).collect();
    let (slope, intercept) = least_squares(xs, &ys);
    if !(slope.is_finite() && intercept.is_finite()) {
        return estimate;
    }
    estimate.slope = Some(slope);
    estimate.intercept = Some(intercept);

    // Bootstrap. LS weights: slope = sum_j w_j y_j with w_j = (x_j - xbar) / Sxx.
    let xbar = xs.iter().sum::<f64>() / points as f64;
    let sxx: f64 = xs.iter().map(|x| (x - xbar) * (x - xbar)).sum();
    let weights: Vec<f64> = xs.iter().map(|x| (x - xbar) / sxx).collect();
    let samplers: Vec<Uniform<usize>> = raw[first..]
        .iter()
        .map(|v| Uniform::new(0, v.len()).expect("non-empty level"))
        .collect();
    // Quantile statistic: resample indices into a sorted copy of each tail level and read the
    // resample's order statistics off the index counts (O(R) per level, no sort or selection).
    // rank[t][r]: the position of replication r in the sorted copy of tail level t, so that a
    // resampled replication is counted at its own value at every level.
    let (sorted_tail, rank): (Vec<Vec<f64>>, Vec<Vec<usize>>) = match statistic {
        RateStatistic::Mean => (Vec::new(), Vec::new()),
        RateStatistic::Quantile => raw[first..]
            .iter()
            .map(|v| {
                let mut order: Vec<usize> = (0..v.len()).collect();
                order.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
                let mut rank = vec![0; v.len()];
                for (pos, &r) in order.iter().enumerate() {
                    rank[r] = pos;
                }
                (order.iter().map(|&r| v[r]).collect(), rank)
            })
            .unzip(),
    };
    let mut counts: Vec<u32> = match statistic {
        RateStatistic::Mean => Vec::new(),
        RateStatistic::Quantile => vec![0; raw[first..].iter().map(Vec::len).max().unwrap_or(0)],
    };
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut slopes: Vec<f64> = Vec::with_capacity(resamples);
    let mut floor_hits = 0usize;
    // Whole replications are resampled: one set of indices per resample, used at every
    // level, because one replication's datasets are nested along the grid (and the cells of
    // a sweep may share data), so the levels are dependent and resampling each level on its
    // own understates the slope's spread (`mrkl calibrate` measured 76-88% coverage of a
    // nominal 90% that way; docs/theory.md §7). Levels of unequal sizes (not produced by
    // the engine) are resampled independently.
    let joint = raw[first..].iter().all(|v| v.len() == raw[first].len());
    let mut idx = vec![0usize; raw[first].len()];
    for _ in 0..resamples {
        let mut boot_slope = 0.0;
        let mut hit = false;
        if joint {
            idx.iter_mut()
                .for_each(|i| *i = samplers[0].sample(&mut rng));
        }
        for (t, ((values, sampler), &w)) in
            raw[first..].iter().zip(&samplers).zip(&weights).enumerate()
        {
            let r = values.len();
            let mut draw = |k: usize| {
                if joint {
                    idx[k]
                } else {
                    sampler.sample(&mut rng)
                }
            };
            let s = match statistic {
                RateStatistic::Mean => {
                    let mut sum = 0.0;
                    for k in 0..r {
                        sum += values[draw(k)];
                    }
                    sum / r as f64
                }
                RateStatistic::Quantile => {
                    let counts = &mut counts[..r];
                    counts.fill(0);
                    for k in 0..r {
                        counts[rank[t][draw(k)]] += 1;
                    }
                    quantile_of_counts(&sorted_tail[t], counts, level)
                }
            };
            hit |= at_floor(s);
            boot_slope += w * s.ln();
        }
        if hit || !boot_slope.is_finite() {
            floor_hits += 1;
        } else {
            slopes.push(boot_slope);
        }
    }
    estimate.bootstrap_resamples = resamples;
    estimate.bootstrap_floor_hits = floor_hits;
    if !slopes.is_empty() && 2 * slopes.len() >= resamples {
        estimate.ci_low = Some(quantile_in_place(&mut slopes, (1.0 - ci_level) / 2.0));
        estimate.ci_high = Some(quantile_in_place(&mut slopes, (1.0 + ci_level) / 2.0));
    }
    estimate
}

/// `ln(2 pi)`.
const LN_2PI: f64 = 1.837_877_066_409_345_3;

/// Stirling's error `delta(m) = ln(m!) - [(m + 1/2) ln m - m + ln(2 pi)/2]` for an integer
/// `m >= 1`: directly for `m <= 15` (exact `m!`), else the asymptotic series
/// `1/(12m) - 1/(360m^3) + 1/(1260m^5) - 1/(1680m^7) + 1/(1188m^9)` (error < 1e-16 there).
fn stirling_error(m: f64) -> f64 {
    debug_assert!(m >= 1.0 && m.fract() == 0.0);
    if m <= 15.0 {
        let factorial: f64 = (2..=m as u64).map(|i| i as f64).product();
        factorial.ln() - (m + 0.5) * m.ln() + m - 0.5 * LN_2PI
    } else {
        let m2 = m * m;
        (1.0 / 12.0
            - (1.0 / 360.0 - (1.0 / 1260.0 - (1.0 / 1680.0 - 1.0 / 1188.0 / m2) / m2) / m2) / m2)
            / m
    }
}

/// The deviance term `D(x, mu) = x ln(x / mu) + mu - x >= 0` for `x, mu > 0`, without
/// cancellation when `x ~ mu`: with `v = (x - mu)/(x + mu)`,
/// `D = (x - mu) v + 2 x sum_{i >= 1} v^(2i+1) / (2i + 1)`.
fn deviance(x: f64, mu: f64) -> f64 {
    if (x - mu).abs() < 0.1 * (x + mu) {
        let v = (x - mu) / (x + mu);
        let v2 = v * v;
        let mut sum = (x - mu) * v;
        let mut term = 2.0 * x * v;
        for i in 1..1000 {
            term *= v2;
            let next = sum + term / (2 * i + 1) as f64;
            if next == sum {
                break;
            }
            sum = next;
        }
        sum
    } else {
        x * (x / mu).ln() + mu - x
    }
}

/// `ln P[X = x]` for `X ~ Binomial(n, p)`, `0 < p < 1`, by Loader's saddle-point form
/// `ln P = delta(n) - delta(x) - delta(n-x) - D(x, np) - D(n-x, nq) - ln(2 pi x (n-x)/n)/2`
/// (absolute error ~1e-16 times the size of its terms even for `n ~ 1e6`, where differences
/// of `ln_gamma` values near 1.3e7 would lose ~1e-9).
pub fn ln_binomial_pmf(x: u64, n: u64, p: f64) -> f64 {
    let q = 1.0 - p;
    if x == 0 {
        return n as f64 * (-p).ln_1p();
    }
    if x == n {
        return n as f64 * p.ln();
    }
    let (xf, nf) = (x as f64, n as f64);
    let yf = nf - xf;
    let lc = stirling_error(nf)
        - stirling_error(xf)
        - stirling_error(yf)
        - deviance(xf, nf * p)
        - deviance(yf, nf * q);
    let lf = LN_2PI + xf.ln() + (-xf / nf).ln_1p();
    lc - 0.5 * lf
}

/// One-sided exact binomial test: `P[X >= k] = sum_{i=k}^{trials} C(trials, i) p^i (1-p)^(trials-i)`
/// for `X ~ Binomial(trials, p)`.
///
/// With `mode = floor((trials + 1) p)`: for `k > mode` the tail is summed directly
/// (see [`upper_tail_beyond_mode`]); for `1 <= k <= mode` it is `1 - P[X <= k - 1]` with the
/// lower tail summed the same way as the upper tail `P[Y >= trials - k + 1]` of
/// `Y = trials - X ~ Binomial(trials, 1 - p)`, whose start lies beyond `Y`'s mode. So the
/// summed tail is always the one away from the bulk: checked against 40-digit arithmetic,
/// the relative error is below ~1e-14 (growing like `1e-16 |ln P|` far in the tail, e.g.
/// 1e-13 at `P ~ 1e-170`), and the absolute error near 1 is a few ulp.
/// Edge cases: `k = 0 -> 1`; `k > trials -> 0`; `p = 0 -> 0` (for `k >= 1`); `p = 1 -> 1`.
/// The result is in `[0, 1]`; stable for `trials` up to 1e6 and beyond (cost
/// O(sqrt(trials p (1-p)) + 1) terms).
///
/// Preconditions: `0 <= p <= 1`, `trials <= 2^53`.
pub fn binomial_upper_tail(k: u64, trials: u64, p: f64) -> f64 {
    debug_assert!((0.0..=1.0).contains(&p), "binomial_upper_tail: p {p}");
    if k == 0 {
        return 1.0;
    }
    if k > trials || p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return 1.0;
    }
    let mode = binomial_mode(trials, p);
    if k > mode {
        upper_tail_beyond_mode(k, trials, p)
    } else {
        // k <= mode <= (trials + 1) p gives trials - k + 1 >= (trials + 1)(1 - p), and
        // equality would need k = mode = (trials + 1) p; then the complement's start equals
        // its own mode, which upper_tail_beyond_mode also handles (ratios <= 1 from the mode on).
        (1.0 - upper_tail_beyond_mode(trials - k + 1, trials, 1.0 - p)).clamp(0.0, 1.0)
    }
}

/// `floor((trials + 1) p)`, capped at `trials`: a mode of `Binomial(trials, p)`.
fn binomial_mode(trials: u64, p: f64) -> u64 {
    ((((trials as f64) + 1.0) * p).floor() as u64).min(trials)
}

/// `P[X >= k]` for `X ~ Binomial(trials, p)`, `0 < p < 1`, `1 <= k <= trials`, and `k` at
/// or beyond a mode (`k >= (trials + 1) p - 1`):
/// `P = P[X = k] * sum_{i >= k} r_i` with `r_k = 1`, `r_{i+1} = r_i (trials - i)/(i + 1) p/q`.
/// From the mode on these ratios are `<= 1` and decrease in `i`, so after a term `t` with
/// ratio `rho < 1` the remainder is at most `t rho / (1 - rho)`; the sum stops once that
/// bound is below `1e-17` of the sum. `P[X = k]` comes from [`ln_binomial_pmf`].
fn upper_tail_beyond_mode(k: u64, trials: u64, p: f64) -> f64 {
    debug_assert!(k >= 1 && k <= trials && p > 0.0 && p < 1.0);
    debug_assert!((k as f64) >= ((trials as f64) + 1.0) * p - 1.0);
    const REL: f64 = 1e-17;
    let odds = p / (1.0 - p);
    let mut sum = 1.0;
    let mut term = 1.0;
    let mut i = k;
    while i < trials {
        let rho = (trials - i) as f64 / (i + 1) as f64 * odds;
        term *= rho;
        sum += term;
        i += 1;
        if term == 0.0 || (rho < 1.0 && term * rho / (1.0 - rho) <= REL * sum) {
            break;
        }
    }
    (ln_binomial_pmf(k, trials, p).exp() * sum).clamp(0.0, 1.0)
}

/// Empirical sample complexity: the smallest `ns[j]` such that `stat[i] <= eps` for every
/// `i >= j` (this level and all larger ones); `None` if the last level is above `eps` (or
/// the grid is empty). A NaN statistic counts as above `eps`.
///
/// Preconditions: `ns.len() == stat.len()`, `ns` increasing.
pub fn first_n_below(ns: &[u64], stat: &[f64], eps: f64) -> Option<u64> {
    debug_assert_eq!(ns.len(), stat.len(), "first_n_below: lengths differ");
    let below_from = stat
        .iter()
        .rposition(|&s| s > eps || s.is_nan())
        .map_or(0, |last_above| last_above + 1);
    ns.get(below_from).copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::RngExt;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    // ---------- quantile ----------

    #[test]
    fn quantile_type7_hand_values() {
        let v = [4.0, 1.0, 3.0, 2.0];
        assert!(close(quantile(&v, 0.5), 2.5, 1e-12));
        assert!(close(quantile(&v, 0.9), 3.7, 1e-12));
        assert!(close(quantile(&v, 0.25), 1.75, 1e-12));
        assert_eq!(quantile(&v, 0.0), 1.0);
        assert_eq!(quantile(&v, 1.0), 4.0);
        // h = (5-1)*0.3 = 1.2 -> 20 + 0.2*(30-20) = 22
        assert!(close(
            quantile(&[50.0, 10.0, 40.0, 30.0, 20.0], 0.3),
            22.0,
            1e-12
        ));
        assert_eq!(quantile(&[7.5], 0.3), 7.5);
        // numpy.quantile([1, 2, 3, 4, 10], 0.9) = 7.6
        assert!(close(
            quantile(&[1.0, 2.0, 3.0, 4.0, 10.0], 0.9),
            7.6,
            1e-12
        ));
    }

    // ---------- summarize ----------

    #[test]
    fn summarize_hand_checked() {
        // values 1,2,3,4,10: mean 4, squared deviations 9+4+1+0+36 = 50, s^2 = 50/4 = 12.5,
        // std_err = sqrt(12.5/5) = sqrt(2.5); t_{0.975,4} = 2.7764451051977987.
        let s = summarize(1000, &[10.0, 2.0, 1.0, 4.0, 3.0], 0.1);
        let se = 2.5f64.sqrt();
        let t = 2.776_445_105_197_798_7;
        assert_eq!(s.n, 1000);
        assert_eq!(s.replications, 5);
        assert!(close(s.mean, 4.0, 1e-14));
        assert!(close(s.std_err, se, 1e-14));
        assert!(close(s.ci_low, 4.0 - t * se, 1e-9));
        assert!(close(s.ci_high, 4.0 + t * se, 1e-9));
        assert_eq!(s.median, 3.0);
        assert!(close(s.quantile, 7.6, 1e-12));
        assert!(close(s.quantile_level, 0.9, 1e-15));
        assert_eq!((s.min, s.max), (1.0, 10.0));
        // the t quantile itself
        assert!(close(t_quantile(0.975, 4.0), t, 1e-9));
    }

    #[test]
    fn summarize_single_replication() {
        let s = summarize(5, &[0.25], 0.05);
        assert_eq!(s.std_err, 0.0);
        assert_eq!((s.ci_low, s.mean, s.ci_high), (0.25, 0.25, 0.25));
        assert_eq!(
            (s.median, s.quantile, s.min, s.max),
            (0.25, 0.25, 0.25, 0.25)
        );
    }

    // ---------- least squares ----------

    #[test]
    fn least_squares_exact_line() {
        let x = [0.5, 1.0, 2.0, 3.5, 7.0];
        let y: Vec<f64> = x.iter().map(|v| -1.25 * v + 3.0).collect();
        let (b, a) = least_squares(&x, &y);
        assert!(close(b, -1.25, 1e-13));
        assert!(close(a, 3.0, 1e-13));
    }

    // ---------- tail rule ----------

    #[test]
    fn tail_rule_first_index() {
        let t = TailRule::default();
        assert_eq!(
            t,
            TailRule {
                fraction: 0.5,
                min_points: 4
            }
        );
        assert_eq!(t.first_index(9), 4); // ceil(4.5) = 5 kept
        assert_eq!(t.first_index(10), 5); // 5 kept
        assert_eq!(t.first_index(6), 2); // max(3, 4) = 4 kept
        assert_eq!(t.first_index(4), 0);
        assert_eq!(t.first_index(3), 0); // capped at L
        let all = TailRule {
            fraction: 1.0,
            min_points: 2,
        };
        assert_eq!(all.first_index(7), 0);
        let few = TailRule {
            fraction: 0.1,
            min_points: 2,
        };
        assert_eq!(few.first_index(30), 27);
    }

    // ---------- serde ----------

    #[test]
    fn serde_shapes() {
        let e: Result<TailRule, _> =
            serde_json::from_str(r#"{"fraction":0.5,"min_points":4,"extra":1}"#);
        assert!(e.is_err(), "unknown field must be rejected");
        assert_eq!(
            serde_json::to_string(&RateStatistic::Quantile).unwrap(),
            "\"quantile\""
        );
        assert_eq!(
            serde_json::to_string(&RateStatistic::Mean).unwrap(),
            "\"mean\""
        );
        // an estimate with "not available" fields serialises (no NaN) and round-trips
        let ns = [10, 20, 40, 80];
        let raw = vec![
            vec![1.0, 2.0],
            vec![0.5, 1.0],
            vec![0.0, 0.0],
            vec![0.1, 0.2],
        ];
        let est = fit_exponent(
            &ns,
            &raw,
            RateStatistic::Mean,
            0.1,
            TailRule::default(),
            50,
            0.9,
            0.0,
            1,
        );
        let json = serde_json::to_string(&est).unwrap();
        assert!(json.contains("\"slope\":null"), "{json}");
        let back: ExponentEstimate = serde_json::from_str(&json).unwrap();
        assert_eq!(back, est);
    }

    /// Whole replications are resampled: with levels that are the same replications scaled
    /// (raw[j][r] = n_j^-1 u_r, perfectly dependent), every resample's mean at level j is
    /// n_j^-1 times one resampled mean of u, so every bootstrap slope is -1 up to rounding
    /// and the interval collapses; resampling each level on its own gives an interval about
    /// as wide as for independent levels (here ~0.1: the u_r have a coefficient of variation
    /// of ~0.6, R = 40, over 1.5 decades), which this test would see.
    #[test]
    fn the_bootstrap_resamples_whole_replications_across_levels() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let u: Vec<f64> = (0..40).map(|_| 0.1 + rng.random::<f64>()).collect();
        let ns = [100u64, 316, 1000, 3162];
        let raw: Vec<Vec<f64>> = ns
            .iter()
            .map(|&n| u.iter().map(|v| v / n as f64).collect())
            .collect();
        for statistic in [RateStatistic::Mean, RateStatistic::Quantile] {
            let est = fit_exponent(
                &ns,
                &raw,
                statistic,
                0.1,
                TailRule::default(),
                400,
                0.9,
                0.0,
                3,
            );
            let (lo, hi) = (est.ci_low.unwrap(), est.ci_high.unwrap());
            assert!(hi - lo < 1e-9, "{statistic:?}: [{lo}, {hi}]");
            assert!(close(est.slope.unwrap(), -1.0, 1e-9));
        }
    }

    // ---------- synthetic data ----------

    /// Standard normal by Box-Muller (rand_distr is not a dependency of this module).
    fn std_normal(rng: &mut ChaCha8Rng) -> f64 {
        let u1 = 1.0 - rng.random::<f64>(); // (0, 1]
        let u2 = rng.random::<f64>();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// ns = 1000 * 2^j (j < levels), raw[j] = R values C n^-1 exp(sigma Z), Z iid N(0,1).
    fn synthetic(seed: u64, levels: u32, r: usize, sigma: f64) -> (Vec<u64>, Vec<Vec<f64>>) {
        const C: f64 = 3.0;
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let ns: Vec<u64> = (0..levels).map(|j| 1000u64 << j).collect();
        let raw = ns
            .iter()
            .map(|&n| {
                (0..r)
                    .map(|_| C / n as f64 * (sigma * std_normal(&mut rng)).exp())
                    .collect()
            })
            .collect();
        (ns, raw)
    }

    /// `sum_{tail} (x_j - xbar)^2` for x_j = ln(1000 2^j), the tail of the default rule.
    fn tail_sxx(levels: u32) -> f64 {
        let first = TailRule::default().first_index(levels as usize) as u32;
        let xs: Vec<f64> = (first..levels)
            .map(|j| ((1000u64 << j) as f64).ln())
            .collect();
        let xbar = xs.iter().sum::<f64>() / xs.len() as f64;
        xs.iter().map(|x| (x - xbar).powi(2)).sum()
    }

    const SIGMA: f64 = 0.5;

    // Sampling error of the point estimate (Mean statistic).
    // Y = C n^-1 e^{sigma Z}: the mean of R values is C n^-1 M with M the mean of R iid
    // lognormals, E e^{sigma Z} = mu = e^{sigma^2/2}, Var e^{sigma Z} = (e^{sigma^2} - 1) mu^2.
    // Delta method: sd(ln M) = sqrt(Var M)/mu = sqrt((e^{sigma^2} - 1)/R) =: tau. The error
    // eps_j = ln M_j - E ln M_j is iid across levels (independent data, same law at every n),
    // and the common bias E ln M_j - ln mu is absorbed by the intercept, so the LS slope is
    // -1 + sum_j w_j eps_j with w_j = (x_j - xbar)/Sxx: sd(slope) = tau / sqrt(Sxx).
    // For L = 9 the default tail is j = 4..8, Sxx = (ln 2)^2 * 10 = 4.80, tau = 0.0377 at
    // R = 200, so sd(slope) = 0.0172; we allow 4 sd (two-sided chance ~6e-5 per seed).
    fn mean_slope_sd(r: usize, levels: u32) -> f64 {
        ((SIGMA * SIGMA).exp_m1() / r as f64).sqrt() / tail_sxx(levels).sqrt()
    }

    #[test]
    fn fit_exponent_recovers_mean_rate() {
        let (ns, raw) = synthetic(20_260_501, 9, 200, SIGMA);
        let est = fit_exponent(
            &ns,
            &raw,
            RateStatistic::Mean,
            0.1,
            TailRule::default(),
            1000,
            0.95,
            0.0,
            7,
        );
        let slope = est.slope.unwrap();
        let tol = 4.0 * mean_slope_sd(200, 9);
        println!(
            "mean slope {slope:.4}, tolerance {tol:.4}, 95% CI [{:?}, {:?}]",
            est.ci_low, est.ci_high
        );
        assert!(
            close(slope, -1.0, tol),
            "slope {slope} not within {tol} of -1"
        );
        let (lo, hi) = (est.ci_low.unwrap(), est.ci_high.unwrap());
        assert!(lo < slope && slope < hi);
        assert!(
            lo <= -1.0 && -1.0 <= hi,
            "95% interval [{lo}, {hi}] misses -1"
        );
        assert_eq!(est.points, 5);
        assert_eq!(est.tail_from_n, 16_000);
        assert_eq!(est.pairwise.len(), 8);
        assert!(est.pairwise.iter().all(Option::is_some));
        assert_eq!(est.bootstrap_resamples, 1000);
        assert_eq!(est.bootstrap_floor_hits, 0);
        assert!(!est.floor_hit);
        assert_eq!(est.quantile_level, None);
        // the fitted statistic is the summary's mean, bit for bit
        let s = summarize(ns[8], &raw[8], 0.1);
        let pred = est.intercept.unwrap() + slope * (ns[8] as f64).ln();
        assert!(close(pred, s.mean.ln(), 0.2));
    }

    // Quantile statistic: ln is monotone, so ln(sample 0.9-quantile of Y) ~ ln(C/n) +
    // sigma * (sample 0.9-quantile of Z); the sample u-quantile of R normals has
    // sd ~ sqrt(u(1-u)/R)/phi(z_u) (z_0.9 = 1.28155, phi = 0.17550), i.e. 0.1209 at R = 200,
    // times sigma = 0.0604 per level, so sd(slope) = 0.0604/sqrt(Sxx) = 0.0276; 4 sd allowed.
    #[test]
    fn fit_exponent_recovers_quantile_rate() {
        let (ns, raw) = synthetic(20_260_502, 9, 200, SIGMA);
        let est = fit_exponent(
            &ns,
            &raw,
            RateStatistic::Quantile,
            0.1,
            TailRule::default(),
            1000,
            0.95,
            0.0,
            8,
        );
        let slope = est.slope.unwrap();
        let z = 1.281_551_565_544_600_5_f64;
        let phi = (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt();
        let sd = SIGMA * (0.9 * 0.1 / 200.0f64).sqrt() / phi / tail_sxx(9).sqrt();
        println!(
            "quantile slope {slope:.4}, tolerance {:.4}, 95% CI [{:?}, {:?}]",
            4.0 * sd,
            est.ci_low,
            est.ci_high
        );
        assert!(close(slope, -1.0, 4.0 * sd), "slope {slope}");
        let (lo, hi) = (est.ci_low.unwrap(), est.ci_high.unwrap());
        assert!(
            lo <= -1.0 && -1.0 <= hi,
            "95% interval [{lo}, {hi}] misses -1"
        );
        assert_eq!(est.quantile_level, Some(0.9));
        let s = summarize(ns[8], &raw[8], 0.1);
        let pred = est.intercept.unwrap() + slope * (ns[8] as f64).ln();
        assert!(close(pred, s.quantile.ln(), 0.3));
    }

    // Width of the 95% percentile interval ~ 2 * 1.96 * tau/sqrt(Sxx) with tau ~ R^-1/2, so
    // quadrupling R should halve it. Randomness of the ratio W(4R)/W(R):
    //  * the bootstrap estimates tau from the data: Var(slope*) = sum_j w_j^2 s_j^2 /(R mu^2),
    //    and the sample variance s_j^2 of R lognormals has relative sd sqrt((kappa-1)/R),
    //    kappa = e^{4s^2} + 2e^{3s^2} + 3e^{2s^2} - 3 = 8.90 for s = 0.5; summing over the tail
    //    with weights w_j^2 divides it by sum w^2 / sqrt(sum w^4) = 10/sqrt(34) (w ~ -2..2), and
    //    the width (a square root) halves it: 0.058 at R = 200, 0.029 at R = 800;
    //  * Monte Carlo error of the 2.5% / 97.5% percentiles of B = 1000 draws:
    //    sqrt(p(1-p)/B)/phi(z_p) = 0.0845 sd each, i.e. sqrt(2)*0.0845/3.92 = 0.031 of the width;
    //  so the ratio has relative sd ~ sqrt(0.058^2 + 0.031^2 + 0.029^2 + 0.031^2) = 0.078;
    //  we accept 0.5 * (1 +/- 4 * 0.078) (the delta method is only approximate for skewed
    //  lognormal means, hence 4 rather than 3 sd).
    #[test]
    fn interval_width_halves_when_r_quadruples() {
        let width = |r: usize, seed: u64| {
            let (ns, raw) = synthetic(seed, 9, r, SIGMA);
            let e = fit_exponent(
                &ns,
                &raw,
                RateStatistic::Mean,
                0.1,
                TailRule::default(),
                1000,
                0.95,
                0.0,
                seed,
            );
            e.ci_high.unwrap() - e.ci_low.unwrap()
        };
        let (w1, w4) = (width(200, 31), width(800, 32));
        let s2 = SIGMA * SIGMA;
        let kappa = (4.0 * s2).exp() + 2.0 * (3.0 * s2).exp() + 3.0 * (2.0 * s2).exp() - 3.0;
        let spread = 10.0 / 34.0f64.sqrt();
        let data_rel = |r: f64| ((kappa - 1.0) / r).sqrt() / spread / 2.0;
        let p: f64 = 0.025;
        let zp = 1.959_963_984_540_054_f64;
        let phi = (-0.5 * zp * zp).exp() / (2.0 * std::f64::consts::PI).sqrt();
        let mc_rel = 2.0f64.sqrt() * (p * (1.0 - p) / 1000.0).sqrt() / phi / (2.0 * zp);
        let rel = (data_rel(200.0).powi(2) + data_rel(800.0).powi(2) + 2.0 * mc_rel.powi(2)).sqrt();
        let ratio = w4 / w1;
        println!(
            "widths {w1:.4} (R=200), {w4:.4} (R=800), ratio {ratio:.3}, allowed 0.5 +/- {:.3}",
            0.5 * 4.0 * rel
        );
        assert!(close(ratio, 0.5, 0.5 * 4.0 * rel), "ratio {ratio}");
        // and the width is of the size the delta method predicts (2 * 1.96 * sd)
        let predicted = 2.0 * zp * mean_slope_sd(200, 9);
        assert!(
            close(
                w1 / predicted,
                1.0,
                4.0 * (data_rel(200.0).powi(2) + mc_rel.powi(2)).sqrt()
            ),
            "w1 {w1} vs {predicted}"
        );
    }

    // Coverage over 500 independent datasets (seeds 1..=500, fixed; ~2.5 s in release): the
    // count of 90% intervals containing -1 is Binomial(500, 0.9) if the interval is exact, sd
    // of the fraction sqrt(0.9*0.1/500) = 0.0134. Percentile intervals may under-cover slightly
    // (the bootstrap variance has the factor (R-1)/R, the percentile ignores the skewness of
    // ln mean): we require >= 0.9 - 3 sd = 0.860; an interval that is far too wide would
    // over-cover, so we also require <= 0.9 + 3 sd = 0.940. (The first 200 of these seeds
    // alone give 169/200 = 0.845, a 2.6-sd low draw, which is why 500 are used: with 200 the
    // fixed-seed test would sit 0.009 above its bound. A separate run over 2000 other
    // datasets measured 0.905.)
    #[test]
    fn bootstrap_coverage_is_nominal() {
        let trials = 500u64;
        let mut covered = 0u64;
        for seed in 1..=trials {
            let (ns, raw) = synthetic(1_000_000 + seed, 9, 200, SIGMA);
            let e = fit_exponent(
                &ns,
                &raw,
                RateStatistic::Mean,
                0.1,
                TailRule::default(),
                1000,
                0.9,
                0.0,
                seed,
            );
            if e.ci_low.unwrap() <= -1.0 && -1.0 <= e.ci_high.unwrap() {
                covered += 1;
            }
        }
        let frac = covered as f64 / trials as f64;
        let sd = (0.9 * 0.1 / trials as f64).sqrt();
        println!(
            "coverage of the 90% bootstrap interval: {covered}/{trials} = {frac:.3} (sd {sd:.4})"
        );
        assert!(frac >= 0.9 - 3.0 * sd, "under-coverage {frac}");
        assert!(frac <= 0.9 + 3.0 * sd, "over-coverage {frac}");
    }

    #[test]
    fn fit_exponent_is_reproducible() {
        let (ns, raw) = synthetic(5, 8, 100, SIGMA);
        let fit = |seed| {
            fit_exponent(
                &ns,
                &raw,
                RateStatistic::Quantile,
                0.05,
                TailRule::default(),
                300,
                0.9,
                0.0,
                seed,
            )
        };
        let (a, b, c) = (fit(11), fit(11), fit(12));
        assert_eq!(a, b);
        assert_eq!(a.slope, c.slope);
        assert_ne!(a.ci_low, c.ci_low);
    }

    // ---------- floor ----------

    #[test]
    fn zeros_hit_the_floor() {
        let ns = [100, 200, 400, 800, 1600, 3200];
        let mut raw: Vec<Vec<f64>> = ns
            .iter()
            .map(|&n| vec![1.0 / n as f64, 2.0 / n as f64, 3.0 / n as f64])
            .collect();
        // zeros in the tail: no slope
        raw[4] = vec![0.0; 3];
        for stat in [RateStatistic::Mean, RateStatistic::Quantile] {
            let e = fit_exponent(&ns, &raw, stat, 0.1, TailRule::default(), 200, 0.9, 0.0, 3);
            assert!(e.floor_hit);
            assert_eq!(
                (e.slope, e.intercept, e.ci_low, e.ci_high),
                (None, None, None, None)
            );
            assert_eq!(e.bootstrap_resamples, 0);
            assert_eq!(e.tail_from_n, 400);
            assert!(e.pairwise[0..3].iter().all(Option::is_some));
            assert_eq!((e.pairwise[3], e.pairwise[4]), (None, None));
        }
        // a tiny positive floor works the same way
        raw[4] = vec![1e-310; 3];
        let e = fit_exponent(
            &ns,
            &raw,
            RateStatistic::Mean,
            0.1,
            TailRule::default(),
            200,
            0.9,
            1e-300,
            3,
        );
        assert!(e.floor_hit && e.slope.is_none());
        // zeros before the tail: only the pairwise slope is lost
        raw[4] = vec![1.0 / 1600.0, 2.0 / 1600.0, 3.0 / 1600.0];
        raw[0] = vec![0.0; 3];
        let e = fit_exponent(
            &ns,
            &raw,
            RateStatistic::Mean,
            0.1,
            TailRule::default(),
            200,
            0.9,
            0.0,
            3,
        );
        assert!(!e.floor_hit);
        assert!(close(e.slope.unwrap(), -1.0, 1e-12));
        assert_eq!(e.pairwise[0], None);
        assert!(close(e.pairwise[1].unwrap(), -1.0, 1e-12));
    }

    #[test]
    fn bootstrap_floor_hits_are_counted() {
        // One tail level where 1 of R = 200 values is non-zero: a resample misses it with
        // probability (1 - 1/200)^200 = 0.367; B = 1000 gives 367 +/- 15 hits (we allow 4.5 sd).
        let (ns, mut raw) = synthetic(9, 8, 200, SIGMA);
        raw[6] = vec![0.0; 200];
        raw[6][17] = 1e-3;
        let e = fit_exponent(
            &ns,
            &raw,
            RateStatistic::Mean,
            0.1,
            TailRule::default(),
            1000,
            0.9,
            0.0,
            4,
        );
        assert!(!e.floor_hit && e.slope.is_some());
        let p = (1.0f64 - 1.0 / 200.0).powi(200);
        let sd = (1000.0 * p * (1.0 - p)).sqrt();
        assert!(
            close(e.bootstrap_floor_hits as f64, 1000.0 * p, 4.5 * sd),
            "{}",
            e.bootstrap_floor_hits
        );
        assert!(e.ci_low.is_some() && e.ci_high.is_some());
        // four tail levels of R = 4 replications, level j non-zero only in replication j:
        // whole replications are resampled, so a resample avoids every floor only if it
        // draws all four, with probability 4!/4^4 = 0.094 < 1/2: no interval.
        let ns = [10, 20, 40, 80];
        let raw: Vec<Vec<f64>> = (0..4)
            .map(|j| {
                (0..4)
                    .map(|r| if r == j { 1.0 / ns[j] as f64 } else { 0.0 })
                    .collect()
            })
            .collect();
        let e = fit_exponent(
            &ns,
            &raw,
            RateStatistic::Mean,
            0.1,
            TailRule::default(),
            1000,
            0.9,
            0.0,
            4,
        );
        assert!(close(e.slope.unwrap(), -1.0, 1e-12));
        assert!(e.bootstrap_floor_hits > 500);
        assert_eq!((e.ci_low, e.ci_high), (None, None));
    }

    // ---------- binomial ----------

    /// Direct sum of C(n, i) p^i q^(n-i) with C computed by its product formula (small n).
    fn binomial_tail_direct(k: u64, n: u64, p: f64) -> f64 {
        (k..=n)
            .map(|i| {
                let c: f64 = (0..i).map(|t| (n - t) as f64 / (t + 1) as f64).product();
                c * p.powi(i as i32) * (1.0 - p).powi((n - i) as i32)
            })
            .sum()
    }

    /// Reference: sum over i = k..=n of exp(ln C(n, i) + i ln p + (n - i) ln(1 - p)) with
    /// statrs' ln_binomial (ln-gamma based; relative accuracy ~1e-16 * ln C(n, n/2)).
    fn binomial_tail_reference(k: u64, n: u64, p: f64) -> f64 {
        use statrs::function::factorial::ln_binomial;
        (k..=n)
            .map(|i| (ln_binomial(n, i) + i as f64 * p.ln() + (n - i) as f64 * (-p).ln_1p()).exp())
            .sum()
    }

    #[test]
    fn binomial_upper_tail_known_values() {
        assert_eq!(binomial_upper_tail(0, 10, 0.3), 1.0);
        assert_eq!(binomial_upper_tail(11, 10, 0.3), 0.0);
        assert_eq!(binomial_upper_tail(1, 10, 0.0), 0.0);
        assert_eq!(binomial_upper_tail(10, 10, 1.0), 1.0);
        // P[X >= 3], X ~ Binom(10, 0.1) = 1 - 0.9^10 - 10*0.1*0.9^9 - 45*0.01*0.9^8
        let v = binomial_upper_tail(3, 10, 0.1);
        assert!(close(v, 0.070_190_826_4, 1e-12), "{v}");
        assert!(close(
            binomial_upper_tail(10, 10, 0.5),
            0.5f64.powi(10),
            1e-16
        ));
        for &(n, p) in &[(10u64, 0.1), (25, 0.5), (40, 0.03), (60, 0.93), (1, 0.4)] {
            let mut prev = 1.0;
            for k in 0..=n + 1 {
                let got = binomial_upper_tail(k, n, p);
                let want = binomial_tail_direct(k, n, p);
                assert!(
                    (got - want).abs() <= 1e-13 * want.max(1e-300) + 1e-300,
                    "n {n} p {p} k {k}: {got} vs {want}"
                );
                assert!(got <= prev, "not monotone in k at n {n} p {p} k {k}");
                prev = got;
            }
        }
        // monotone increasing in p
        let mut prev = 0.0;
        for i in 1..100 {
            let v = binomial_upper_tail(7, 50, i as f64 / 100.0);
            assert!(v >= prev);
            prev = v;
        }
    }

    #[test]
    fn binomial_upper_tail_large_trials() {
        let n = 1_000_000u64;
        let p = 1e-3;
        let mut prev = 1.0;
        for k in [
            1u64, 500, 900, 999, 1000, 1001, 1100, 1200, 2000, 5000, 1_000_000,
        ] {
            let v = binomial_upper_tail(k, n, p);
            assert!(v.is_finite() && (0.0..=1.0).contains(&v), "k {k}: {v}");
            assert!(v <= prev, "not monotone at k {k}");
            prev = v;
        }
        // closed forms: P[X >= 1] = 1 - (1-p)^n, P[X >= n] = p^n (underflows to 0 here)
        let want = -(n as f64 * (-p).ln_1p()).exp_m1();
        assert!(close(binomial_upper_tail(1, n, p), want, 1e-15));
        assert_eq!(binomial_upper_tail(n, n, p), 0.0);
        assert!(close(
            binomial_upper_tail(n, n, 0.999_999),
            0.999_999f64.powi(1_000_000),
            1e-15
        ));
        // against the log-space reference sum (its ln_gamma terms near 1.3e7 carry ~1e-9
        // relative error, hence the tolerance)
        for k in [900u64, 1000, 1100, 1300] {
            let (got, want) = (
                binomial_upper_tail(k, n, p),
                binomial_tail_reference(k, n, p),
            );
            assert!((got - want).abs() <= 1e-8 * want, "k {k}: {got} vs {want}");
        }
        // near the mean, statrs' regularised-beta tail agrees (to its own accuracy)
        use statrs::distribution::{Binomial, DiscreteCDF};
        let b = Binomial::new(p, n).unwrap();
        for k in [950u64, 1000, 1050, 1100] {
            let v = binomial_upper_tail(k, n, p);
            assert!(close(v, b.sf(k - 1), 1e-8), "k {k}: {v} vs {}", b.sf(k - 1));
        }
        // far tail: tiny but positive, P[X >= 2000] ~ 1e-162 (Chernoff: exp(-n D(2p||p)))
        let far = binomial_upper_tail(2000, n, p);
        assert!(far > 0.0 && far < 1e-150, "{far}");
    }

    // ---------- first_n_below ----------

    #[test]
    fn first_n_below_hand_example() {
        let ns = [10, 20, 40, 80, 160];
        let stat = [0.5, 0.05, 0.2, 0.04, 0.01]; // dips below 0.1 at 20, rises again at 40
        assert_eq!(first_n_below(&ns, &stat, 0.1), Some(80));
        assert_eq!(first_n_below(&ns, &stat, 0.2), Some(20)); // <= counts
        assert_eq!(first_n_below(&ns, &stat, 0.6), Some(10));
        assert_eq!(first_n_below(&ns, &stat, 0.01), Some(160));
        assert_eq!(first_n_below(&ns, &stat, 0.005), None);
        assert_eq!(first_n_below(&[10, 20], &[0.01, 0.5], 0.1), None);
        assert_eq!(first_n_below(&[10, 20], &[0.01, f64::NAN], 0.1), None);
        assert_eq!(first_n_below(&[], &[], 0.1), None);
    }

    // ---------- properties ----------

    /// Reference type 7 on a full sort.
    fn quantile_by_sort(values: &[f64], q: f64) -> f64 {
        let mut v = values.to_vec();
        v.sort_by(f64::total_cmp);
        quantile_of_sorted(&v, q)
    }

    proptest! {
        #[test]
        fn prop_quantile_bounded_monotone(
            values in prop::collection::vec(-1e6f64..1e6, 1..60),
            q1 in 0.0f64..=1.0,
            q2 in 0.0f64..=1.0,
        ) {
            let (lo, hi) = if q1 <= q2 { (q1, q2) } else { (q2, q1) };
            let (a, b) = (quantile(&values, lo), quantile(&values, hi));
            let min = values.iter().copied().fold(f64::INFINITY, f64::min);
            let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            prop_assert!(min <= a && a <= b && b <= max);
            // selection gives exactly the sorted-order answer
            prop_assert_eq!(a, quantile_by_sort(&values, lo));
            prop_assert_eq!(b, quantile_by_sort(&values, hi));
        }

        #[test]
        fn prop_quantile_of_counts_matches_resample(
            values in prop::collection::vec(-1e3f64..1e3, 1..40),
            seed: u64,
            q in 0.0f64..=1.0,
            ties: bool,
        ) {
            let mut sorted: Vec<f64> = if ties { values.iter().map(|v| v.round()).collect() } else { values };
            sorted.sort_by(f64::total_cmp);
            let m = sorted.len();
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut counts = vec![0u32; m];
            let mut resample = Vec::with_capacity(m);
            for _ in 0..m {
                let i = rng.random_range(0..m);
                counts[i] += 1;
                resample.push(sorted[i]);
            }
            prop_assert_eq!(quantile_of_counts(&sorted, &counts, q), quantile(&resample, q));
        }

        #[test]
        fn prop_binomial_tail_matches_reference(n in 1u64..3000, p in 0.001f64..0.999, k_frac in 0.0f64..=1.0) {
            let k = ((n as f64) * k_frac).round() as u64;
            let upper = binomial_upper_tail(k, n, p);
            prop_assert!((0.0..=1.0).contains(&upper));
            prop_assert!(binomial_upper_tail(k + 1, n, p) <= upper);
            let want = binomial_tail_reference(k, n, p);
            prop_assert!((upper - want).abs() <= 1e-10 * want + 1e-300, "{} vs {}", upper, want);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        // Scaling every value by c > 0 scales each statistic by c (mean and type-7 quantile are
        // positively homogeneous), so ln stat shifts by ln c at every level: the slope, pairwise
        // slopes and, with the same seed (the same drawn indices), the bootstrap interval are
        // unchanged, and the intercept moves by ln c.
        #[test]
        fn prop_fit_invariant_to_scale(seed in 0u64..1000, c in 1e-3f64..1e3, quantile_stat: bool) {
            let stat = if quantile_stat { RateStatistic::Quantile } else { RateStatistic::Mean };
            let (ns, raw) = synthetic(seed, 6, 30, 1.0);
            let scaled: Vec<Vec<f64>> = raw.iter().map(|v| v.iter().map(|x| c * x).collect()).collect();
            let fit = |r: &[Vec<f64>]| fit_exponent(&ns, r, stat, 0.2, TailRule::default(), 100, 0.8, 0.0, seed);
            let (a, b) = (fit(&raw), fit(&scaled));
            let tol = 1e-9;
            prop_assert!(close(a.slope.unwrap(), b.slope.unwrap(), tol));
            prop_assert!(close(a.intercept.unwrap() + c.ln(), b.intercept.unwrap(), tol));
            prop_assert!(close(a.ci_low.unwrap(), b.ci_low.unwrap(), tol));
            prop_assert!(close(a.ci_high.unwrap(), b.ci_high.unwrap(), tol));
            for (x, y) in a.pairwise.iter().zip(&b.pairwise) {
                prop_assert!(close(x.unwrap(), y.unwrap(), tol));
            }
        }
    }
}
