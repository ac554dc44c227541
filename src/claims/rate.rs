//! Judging rate claims (THEORY §4, §7): the exponent of the mean gap in n (or in gamma
//! across a gamma sweep) against the claimed exponent, the claim's bound at every n, and
//! sample complexity n(eps) from the quantile's exponent.

use super::judgement::{
    BoundCheck, BoundOutcome, Details, EpsN, Finding, Judgement, Measure, RateOutcome, RateVariable,
};
use super::registry::{Bound, BoundInputs, Claim, Variable};
use crate::result::{CellResult, ResultFile, RewardClass};
use crate::spec::GammaRule;
use crate::statistics::{
    RateStatistic, TailRule, binomial_upper_tail, first_n_below, fit_exponent_in, least_squares,
};

/// Level of the bound's exact binomial test, before the Bonferroni split over sample sizes [ours].
pub const BOUND_TEST_LEVEL: f64 = 1e-3;

/// ln|R| at n for the result's reward class: ln M (finite) or d ln(1 + 2 B n) (linear, [ours]).
pub fn log_class_size(r: &ResultFile, n: u64) -> f64 {
    match (r.instance.candidates, r.instance.dim) {
        (Some(m), _) => (m as f64).ln(),
        (None, Some(d)) => d as f64 * (2.0 * r.instance.r_max * n as f64).ln_1p(),
        _ => f64::NAN,
    }
}

/// The one-sided outcome of an exponent interval [lo, hi] against claimed ± tol.
pub fn rate_outcome(lo: f64, hi: f64, claimed: f64, tol: f64) -> RateOutcome {
    if lo > claimed + tol {
        RateOutcome::Slower
    } else if hi <= claimed + tol && lo >= claimed - tol {
        RateOutcome::Matches
    } else if hi <= claimed + tol {
        RateOutcome::Faster
    } else {
        RateOutcome::Straddles
    }
}

/// The bound check at every n of a cell: how many replications exceed the bound, the exact
/// binomial p-value, the slack bound / quantile; and the finding (exceeded at the first n
/// whose p-value is below BOUND_TEST_LEVEL / L).
pub(crate) fn bound_finding(
    b: &Bound,
    r: &ResultFile,
    cell: &CellResult,
) -> (Vec<BoundCheck>, Finding) {
    let delta = r.spec.delta;
    let coverage = cell.coverage.unwrap_or(f64::INFINITY);
    let levels = cell.n.len() as f64;
    let mut at = String::new();
    let mut checks = vec![];
    for (k, &n) in cell.n.iter().enumerate() {
        let bound = b.at(BoundInputs {
            n,
            gamma: cell.gamma_at_n[k],
            coverage,
            r_max: r.instance.r_max,
            log_class_size: log_class_size(r, n),
            delta,
        });
        let raw = &cell.raw[k];
        let exceed = raw.iter().filter(|&&g| g > bound).count() as u64;
        let p_value = binomial_upper_tail(exceed, raw.len() as u64, delta);
        let q = cell.summaries[k].quantile;
        let slack = if q > 0.0 { bound / q } else { f64::INFINITY };
        if p_value < BOUND_TEST_LEVEL / levels && at.is_empty() {
            at = format!(
                "gap above the bound in {exceed} of {} replications at n = {n} (p = {p_value:.2e} < {:.1e})",
                raw.len(),
                BOUND_TEST_LEVEL / levels
            );
        }
        checks.push(BoundCheck {
            n,
            bound,
            exceed,
            replications: raw.len() as u64,
            p_value,
            slack: if slack.is_finite() { slack } else { f64::MAX },
        });
    }
    let slack = checks.iter().map(|c| c.slack).fold(f64::MAX, f64::min);
    let finding = Finding::Bound {
        outcome: if at.is_empty() {
            BoundOutcome::Holds
        } else {
            BoundOutcome::Exceeded
        },
        slack,
        at,
    };
    (checks, finding)
}

/// A predicted curve (gamma(n) schedules) is judged at the tail levels where its Monte Carlo
/// relative error is at most this: there the mean is not carried by a few rare draws of the
/// limit law (events in the tails of the MLE's law, where the normal approximation is not
/// sharp) [ours].
pub const SHARP_CURVE_TOLERANCE: f64 = 0.01;

/// z of the exponential-rate judgement: the two-sided normal quantile at BOUND_TEST_LEVEL
/// (1e-3), the same false-alarm level as the bound test [ours].
pub const CONSTANT_Z: f64 = 3.29;

/// Two-sided level of the constant judgement's interval, 1 - BOUND_TEST_LEVEL: the same
/// false-alarm level as the bound test [ours]; its quantile is Student's t with R - 1 degrees
/// of freedom (3.50 at R = 50, 3.34 at R = 200, 3.29 as R grows).
pub const CONSTANT_LEVEL: f64 = 1.0 - BOUND_TEST_LEVEL;

/// The constant judgement of one cell (THEORY §8): with a the predicted exponent, C the
/// predicted constant and f the claim's `constant_factor`, the ratio at tail level j is
/// rho_j = n_j^-a mean_j / (f C), and the measured ratio is their average over the tail of
/// the grid (the levels the exponent is fitted on). That average is the mean over the R
/// replications of u_i = (1/L) sum_j g_ij / (f C n_j^a), one number per whole replication (a
/// replication's datasets are nested, so its levels are dependent and stay together): its
/// standard error is se = sd(u) / sqrt(R) with the unbiased sample sd, and its interval uses
/// Student's t with R - 1 degrees of freedom ([`ConstantEstimate::interval`]).
///
/// # Formula
/// rho = (1/L) sum_j rho_j, se^2 = (1/(R (R - 1))) sum_i (u_i - rho)^2; differs when 1 is
/// outside rho ± (t_{R-1, 1 - 5e-4} se + A) (docs/theory.md §8.13).
///
/// Allowance for higher-order terms: the next term of the expansion is smaller than the
/// leading one by a factor O(n^-1/2) (first-order gaps) or O(n^-1) (second-order gaps),
/// decreasing in n. If it is b n^-q with q >= 1/2, the ratio drifts across a tail from n_1
/// to n_L by |b| (n_1^-q - n_L^-q), which is at least |b| n_L^-q, the correction left at
/// n_L, as soon as n_L / n_1 >= 4 (every rate spec's tail spans at least that). So the
/// observed drift |rho_L - rho_1| bounds what the higher-order terms add at the largest n,
/// and the judgement uses it as allowance: the constant differs when
/// |rho - 1| - allowance > t se, t the quantile at [`CONSTANT_LEVEL`].
///
/// Under a gamma(n) schedule the claimed value at level j is f x the predicted curve
/// (`asymptotic.predicted`, THEORY §8.8) instead of f C n_j^a, over the tail levels where the
/// curve is sharp ([`SHARP_CURVE_TOLERANCE`]); the curve's Monte Carlo error (the tail average
/// of rho_j x its relative SE, the same draws at every level) is added to se in quadrature.
/// Where fewer than two tail levels are sharp and the cell has a large-gamma limit
/// (`asymptotic.large_gamma`, FKL sub-optimality, docs/theory.md §9.13), that power law
/// (K/c) n^-(1+p) is the claimed value, exact (no Monte Carlo error), with the same
/// allowance for the drift across the tail.
pub(crate) fn constant_finding(claim: &Claim, cell: &CellResult) -> Option<Finding> {
    let e = constant_estimate(claim, cell)?;
    Some(Finding::Constant {
        outcome: if e.differs() {
            super::judgement::ConstantOutcome::Differs
        } else {
            super::judgement::ConstantOutcome::Matches
        },
        ratio: e.ratio,
        se: e.se,
        allowance: e.allowance,
        z: e.quantile(CONSTANT_LEVEL),
        factor: claim.constant_factor,
        predicted: e.predicted,
        curve_from: e.curve_from,
        large_gamma: e.large_gamma,
    })
}

/// What the constant judgement measures on one cell ([`constant_finding`]): the ratio
/// measured / claimed per tail level and averaged, its SE, the allowance; and the one
/// interval rule that both the judgement and the calibration's coverage use.
#[derive(Clone, Debug, PartialEq)]
pub struct ConstantEstimate {
    /// rho_j at the judged tail levels, in order of n.
    pub per_level: Vec<f64>,
    /// rho, the average of `per_level`.
    pub ratio: f64,
    pub se: f64,
    /// R, the replications behind `se` (R - 1 degrees of freedom).
    pub replications: usize,
    /// |rho_L - rho_1|.
    pub allowance: f64,
    /// C, or under a gamma(n) schedule the predicted mean at the largest n.
    pub predicted: f64,
    pub curve_from: Option<u64>,
    /// The claimed power law is the large-gamma limit (K/c) n^-(1+p) of a gamma(n) schedule.
    pub large_gamma: bool,
}

impl ConstantEstimate {
    /// The quantile of the interval at two-sided `level`: Student's t with R - 1 degrees of
    /// freedom at (1 + level) / 2 (docs/theory.md §8.13).
    pub fn quantile(&self, level: f64) -> f64 {
        crate::statistics::t_quantile(
            (1.0 + level) / 2.0,
            (self.replications as f64 - 1.0).max(1.0),
        )
    }

    /// The interval for the true ratio at two-sided `level`, widened by the allowance when
    /// `with_allowance`.
    ///
    /// # Formula
    /// rho ± (t_{R-1, (1 + level)/2} se [+ A]), se = sd(u) / sqrt(R) with u_i the replication's
    /// tail-average ratio and sd its unbiased (R - 1) sample standard deviation
    /// (docs/theory.md §8.13).
    pub fn interval(&self, level: f64, with_allowance: bool) -> (f64, f64) {
        let half =
            self.quantile(level) * self.se + if with_allowance { self.allowance } else { 0.0 };
        (self.ratio - half, self.ratio + half)
    }

    /// The judgement: the claim's constant differs when 1 is outside the interval at
    /// [`CONSTANT_LEVEL`] widened by the allowance.
    pub fn differs(&self) -> bool {
        let (lo, hi) = self.interval(CONSTANT_LEVEL, true);
        !(lo <= 1.0 && 1.0 <= hi)
    }
}

/// The measurements of [`constant_finding`] (see there), `None` where there is no constant to
/// judge.
pub fn constant_estimate(claim: &Claim, cell: &CellResult) -> Option<ConstantEstimate> {
    let first = cell
        .n
        .iter()
        .position(|&n| n >= cell.exponent_mean.tail_from_n)
        .unwrap_or(0);
    let f = claim.constant_factor;
    let asy = &cell.asymptotic;
    // (level, claimed mean there, relative Monte Carlo error of the prediction)
    let power_law = |a: f64, c: f64| -> Vec<(usize, f64, f64)> {
        (first..cell.n.len())
            .map(|j| (j, f * c * (cell.n[j] as f64).powf(a), 0.0))
            .collect()
    };
    let sharp_curve: Vec<(usize, f64, f64)> =
        if asy.exponential_rate.is_none() && asy.predicted.len() == cell.n.len() {
            (first..cell.n.len())
                .filter_map(|j| {
                    let p = &asy.predicted[j];
                    let rel = p.se.unwrap_or(0.0) / p.value;
                    (rel <= SHARP_CURVE_TOLERANCE).then_some((j, f * p.value, rel))
                })
                .collect()
        } else {
            vec![]
        };
    let (levels, predicted, curve_from, large_gamma): (
        Vec<(usize, f64, f64)>,
        f64,
        Option<u64>,
        bool,
    ) = match (asy.exponent, asy.constant, asy.large_gamma) {
        (Some(a), Some(c), _) => (power_law(a, c), c, None, false),
        _ if sharp_curve.len() >= 2 => {
            let from = cell.n[sharp_curve[0].0];
            (sharp_curve, asy.predicted.last()?.value, Some(from), false)
        }
        (_, _, Some(l)) => (power_law(l.exponent, l.constant), l.constant, None, true),
        _ => return None,
    };
    if levels.len() < 2 || levels.iter().any(|l| !(l.1 > 0.0)) {
        return None;
    }
    let reps = cell.raw[first].len();
    let per_level: Vec<f64> = levels
        .iter()
        .map(|&(j, claimed, _)| cell.raw[j].iter().sum::<f64>() / reps as f64 / claimed)
        .collect();
    let ratio = per_level.iter().sum::<f64>() / per_level.len() as f64;
    let allowance = (per_level[per_level.len() - 1] - per_level[0]).abs();
    // rho is the mean over replications of u_i = (1/L) sum_j g_ij / claimed_j: the SE of a
    // mean of R independent whole replications.
    let u: Vec<f64> = (0..reps)
        .map(|i| {
            levels
                .iter()
                .map(|&(j, claimed, _)| cell.raw[j][i] / claimed)
                .sum::<f64>()
                / levels.len() as f64
        })
        .collect();
    let u_mean = u.iter().sum::<f64>() / reps as f64;
    let u_var = u.iter().map(|v| (v - u_mean).powi(2)).sum::<f64>() / (reps as f64 - 1.0);
    let sampling = (u_var / reps as f64).sqrt();
    // The curve's Monte Carlo error, the same draws at every level: its errors add up.
    let mc: f64 = per_level
        .iter()
        .zip(&levels)
        .map(|(rho, l)| rho * l.2)
        .sum::<f64>()
        / levels.len() as f64;
    let se = sampling.hypot(mc);
    Some(ConstantEstimate {
        per_level,
        ratio,
        se,
        replications: reps,
        allowance,
        predicted,
        curve_from,
        large_gamma,
    })
}

/// The standard error of `stat` over `bootstrap_resamples` resamples of whole replications
/// (indices 0..reps drawn with replacement, the same at every level, since one replication's
/// datasets are nested); resamples where `stat` is `None` are left out. Stream: `label`.
fn replication_bootstrap_se(
    r: &ResultFile,
    label: &str,
    reps: usize,
    stat: impl Fn(&[usize]) -> Option<f64>,
) -> f64 {
    use rand::RngExt;
    let mut rng = crate::streams::stream(r.spec.seed, label, 0);
    let b = r.spec.options.bootstrap_resamples.max(2);
    let mut boots = Vec::with_capacity(b);
    let mut idx = vec![0usize; reps];
    for _ in 0..b {
        idx.iter_mut()
            .for_each(|i| *i = (rng.random::<u64>() % reps as u64) as usize);
        boots.extend(stat(&idx));
    }
    if boots.len() < 2 {
        return f64::INFINITY;
    }
    let mb = boots.iter().sum::<f64>() / boots.len() as f64;
    (boots.iter().map(|v| (v - mb).powi(2)).sum::<f64>() / (boots.len() - 1) as f64).sqrt()
}

/// A level of the finite class is measurable for the exponential rate when at least this
/// many replications have a gap above the floor (ln of the mean then has relative error
/// about 1/sqrt(10) or less) [ours] ...
pub const EXPONENTIAL_MIN_EVENTS: usize = 10;

/// ... and at most this fraction of them do: past the central regime, where P(MLE != r*) is
/// no longer of order one and the large-deviation curve applies [ours].
pub const EXPONENTIAL_MAX_FRACTION: f64 = 0.5;

/// The exponential-rate judgement of a finite-class cell (THEORY §8.7): over the measurable
/// levels (at least [`EXPONENTIAL_MIN_EVENTS`] and at most [`EXPONENTIAL_MAX_FRACTION`] of the
/// replications above the gap floor, at least two levels), the measured rate is c_hat =
/// -slope of the least-squares line of ln(mean gap) on n, with its bootstrap standard error
/// (whole replications). The claimed rate is f min_j c_j (f = the claim's `constant_factor`).
///
/// Allowance for pre-asymptotic terms [derived]: the predicted curve
/// G(n) = sum_j gap_j P(L_j >= L_*) (`asymptotics::finite_class_mean_gap`) has
/// ln G = const - n min_j c_j - (1/2) ln n + (the other candidates' share, decaying), so its own
/// least-squares slope over the same levels, c_tail, differs from min_j c_j by what the
/// polynomial prefactor (about ln(n_L/n_1) / (2 (n_L - n_1))) and the slower-decaying
/// candidates add over this stretch of n. The rate differs when
/// |c_hat - f min_j c_j| - |c_tail - min_j c_j| > z se, z = [`CONSTANT_Z`].
pub(crate) fn exponential_finding(
    claim: &Claim,
    r: &ResultFile,
    cell: &CellResult,
) -> Option<Finding> {
    let c_min = cell.asymptotic.exponential_rate?;
    if cell.asymptotic.predicted.len() != cell.n.len() || !(c_min > 0.0) {
        return None;
    }
    let floor = r.spec.options.gap_floor;
    let levels: Vec<usize> = (0..cell.n.len())
        .filter(|&k| {
            let raw = &cell.raw[k];
            let events = raw.iter().filter(|&&g| g > floor).count();
            events >= EXPONENTIAL_MIN_EVENTS
                && events as f64 <= EXPONENTIAL_MAX_FRACTION * raw.len() as f64
        })
        .collect();
    if levels.len() < 2 {
        return None;
    }
    let x: Vec<f64> = levels.iter().map(|&k| cell.n[k] as f64).collect();
    let rate_of = |ln_mean: &[f64]| -least_squares(&x, ln_mean).0;
    let reps = cell.raw[levels[0]].len();
    let ln_means = |idx: &[usize]| -> Option<Vec<f64>> {
        levels
            .iter()
            .map(|&k| {
                let sum: f64 = idx.iter().map(|&i| cell.raw[k][i]).sum();
                (sum > 0.0).then(|| (sum / idx.len() as f64).ln())
            })
            .collect()
    };
    let all: Vec<usize> = (0..reps).collect();
    let measured = rate_of(&ln_means(&all)?);
    let se = replication_bootstrap_se(
        r,
        &format!("exponential/{}/{}", claim.id, cell.label),
        reps,
        |idx| ln_means(idx).map(|v| rate_of(&v)),
    );
    let predicted_ln: Vec<f64> = levels
        .iter()
        .map(|&k| cell.asymptotic.predicted[k].value.ln())
        .collect();
    let tail_rate = rate_of(&predicted_ln);
    let allowance = (tail_rate - c_min).abs();
    let differs = (measured - claim.constant_factor * c_min).abs() - allowance > CONSTANT_Z * se;
    Some(Finding::ExponentialRate {
        outcome: if differs {
            super::judgement::ConstantOutcome::Differs
        } else {
            super::judgement::ConstantOutcome::Matches
        },
        measured,
        se,
        predicted: c_min,
        tail_rate,
        allowance,
        z: CONSTANT_Z,
        factor: claim.constant_factor,
        from_n: cell.n[levels[0]],
        to_n: cell.n[*levels.last().expect("two levels")],
    })
}

fn rate_finding(claim: &Claim, variable: RateVariable, interval: Option<(f64, f64)>) -> Finding {
    let claimed = claim
        .claimed_exponent
        .expect("checked: rate claims have one");
    let tolerance = claim.tolerance.expect("checked: rate claims have one");
    Finding::Rate {
        variable,
        outcome: match interval {
            Some((lo, hi)) => rate_outcome(lo, hi, claimed, tolerance),
            None => RateOutcome::AtFloor,
        },
        interval,
        claimed,
        tolerance,
    }
}

/// Judges a rate claim in n on one cell of a result: the exponent of the mean gap over the
/// tail of the grid, and the bound at every n if the claim has one.
pub fn judge_rate_in_n(claim: &Claim, r: &ResultFile, cell: &CellResult) -> Judgement {
    let gap_floor = r.spec.options.gap_floor;
    let e = &cell.exponent_mean;
    let mut findings = vec![];
    let mut checks = vec![];
    if let Some(b) = &claim.bound {
        let (c, f) = bound_finding(b, r, cell);
        checks = c;
        findings.push(f);
    }
    // Gaps at the floor in the tail: the fit describes rare events, not a rate.
    let first_tail = cell.n.iter().position(|&n| n >= e.tail_from_n).unwrap_or(0);
    let floor_from = (first_tail..cell.n.len()).find(|&k| cell.summaries[k].median <= gap_floor);
    let interval = match (floor_from, e.ci_low, e.ci_high) {
        (None, Some(lo), Some(hi)) => Some((lo, hi)),
        _ => None,
    };
    let context = match floor_from {
        Some(k) => format!(
            "median gap at the floor from n = {} on ({} of {} replications at the floor at n_max): the estimator recovers r* exactly",
            cell.n[k],
            cell.raw
                .last()
                .map(|v| v.iter().filter(|&&g| g <= gap_floor).count())
                .unwrap_or(0),
            cell.raw.last().map(Vec::len).unwrap_or(0)
        ),
        None => String::new(),
    };
    let exponential = exponential_finding(claim, r, cell);
    let mut rate = rate_finding(claim, RateVariable::N, interval);
    if let (
        Some(Finding::ExponentialRate { measured, se, .. }),
        Finding::Rate {
            outcome, interval, ..
        },
    ) = (&exponential, &mut rate)
    {
        // A positive exponential rate decays faster than any power.
        if measured - CONSTANT_Z * se > 0.0 {
            *outcome = RateOutcome::Faster;
            *interval = None;
        }
    }
    findings.insert(0, rate);
    findings.extend(exponential);
    if floor_from.is_none() {
        findings.extend(constant_finding(claim, cell));
    }
    let mut j = Judgement::from_findings(
        claim,
        Some(r.evidence(cell)),
        Measure::ExponentInN,
        findings,
        &context,
    );
    j.measured = e.slope;
    j.ci_low = e.ci_low;
    j.ci_high = e.ci_high;
    j.bound_checks = checks;
    j
}

/// Judges a rate claim in gamma on a gamma sweep: the exponent of the mean gap at the
/// largest n across the cells, by least squares of ln mean on ln gamma over every cell,
/// with a bootstrap interval (replications resampled within each cell; the result's
/// bootstrap size and interval level).
pub fn judge_rate_in_gamma(claim: &Claim, r: &ResultFile) -> Judgement {
    let last = r.spec.ns.len() - 1;
    let mut cells: Vec<(f64, &CellResult)> = r
        .cells
        .iter()
        .filter_map(|c| match c.gamma {
            GammaRule::Fixed(g) => Some((g, c)),
            GammaRule::Schedule(_) => None,
        })
        .collect();
    cells.sort_by(|a, b| a.0.total_cmp(&b.0));
    let gammas: Vec<f64> = cells.iter().map(|(g, _)| *g).collect();
    let raw: Vec<Vec<f64>> = cells.iter().map(|(_, c)| c.raw[last].clone()).collect();
    let o = &r.spec.options;
    let seed = r.spec.seed ^ crate::streams::fnv1a(format!("gamma-fit/{}", claim.id).as_bytes());
    let e = fit_exponent_in(
        &gammas,
        &raw,
        RateStatistic::Mean,
        r.spec.delta,
        TailRule {
            fraction: 1.0,
            min_points: 2,
        },
        o.bootstrap_resamples,
        o.ci_level,
        o.gap_floor,
        seed,
    );
    let interval = e.ci_low.zip(e.ci_high);
    let n = r.spec.ns[last];
    let finding = rate_finding(claim, RateVariable::Gamma, interval);
    let mut j = Judgement::from_findings(
        claim,
        Some(format!("{} at n = {n}", r.name)),
        Measure::ExponentInGamma,
        vec![finding],
        &format!(
            "{} gammas from {} to {}",
            gammas.len(),
            crate::numerics::compact(gammas[0]),
            crate::numerics::compact(gammas[gammas.len() - 1])
        ),
    );
    j.measured = e.slope;
    j.ci_low = e.ci_low;
    j.ci_high = e.ci_high;
    j
}

/// Judges a rate claim on a result: per cell in n, or across the cells in gamma.
pub fn judge_rate(claim: &Claim, r: &ResultFile) -> Vec<Judgement> {
    match claim.variable {
        Variable::N => r
            .cells
            .iter()
            .map(|c| judge_rate_in_n(claim, r, c))
            .collect(),
        Variable::Gamma => vec![judge_rate_in_gamma(claim, r)],
    }
}

/// Judges a sample-complexity claim (R5.4, R6.4) from a cell of the rate claim it follows
/// from. With q(n) ~ n^s the (1-delta)-quantile, n(eps) ~ eps^{1/s}, so the exponent of n(eps)
/// in 1/eps is -1/s, with interval [-1/lo, -1/hi] from the quantile slope's interval. The
/// direct table n(eps) (smallest grid n from which the quantile stays <= eps) is reported too.
/// A finite class identifies r* (n(eps) is no power law) and is not judged.
pub fn judge_sample_complexity(
    claim: &Claim,
    r: &ResultFile,
    cell: &CellResult,
) -> Option<Judgement> {
    if r.instance.reward_class != RewardClass::Linear {
        return None;
    }
    let evidence = Some(format!(
        "{} (via {})",
        r.evidence(cell),
        claim.from.clone().unwrap_or_default()
    ));
    let q: Vec<f64> = cell.summaries.iter().map(|s| s.quantile).collect();
    // eps grid: the geometric midpoints between consecutive quantiles' range [min, max].
    let (qmin, qmax) = q
        .iter()
        .fold((f64::INFINITY, 0.0f64), |(a, b), &v| (a.min(v), b.max(v)));
    let mut table = vec![];
    if qmin > 0.0 && qmax > qmin {
        let levels = 8;
        for i in 0..levels {
            let eps = qmax * (qmin / qmax).powf((i as f64 + 0.5) / levels as f64);
            if let Some(n) = first_n_below(&cell.n, &q, eps) {
                table.push(EpsN { eps, n });
            }
        }
    }
    let direct = if table.len() >= 3 {
        let x: Vec<f64> = table.iter().map(|t| (1.0 / t.eps).ln()).collect();
        let y: Vec<f64> = table.iter().map(|t| (t.n as f64).ln()).collect();
        Some(least_squares(&x, &y).0)
    } else {
        None
    };
    let e = &cell.exponent_quantile;
    let fitted = match (e.slope, e.ci_low, e.ci_high) {
        (Some(s), Some(lo), Some(hi)) if hi < 0.0 => Some((-1.0 / s, -1.0 / lo, -1.0 / hi)),
        _ => None,
    };
    let mut j = Judgement::from_findings(
        claim,
        evidence,
        Measure::ExponentInInverseEps,
        vec![rate_finding(
            claim,
            RateVariable::InverseEps,
            fitted.map(|(_, lo, hi)| (lo, hi)),
        )],
        if fitted.is_none() {
            "the quantile does not decrease in n over the tail: no sample-complexity exponent"
        } else {
            ""
        },
    );
    if let Some((m, lo, hi)) = fitted {
        j.measured = Some(m);
        j.ci_low = Some(lo);
        j.ci_high = Some(hi);
    }
    j.details = Details::SampleComplexity {
        n_of_eps: table,
        direct_exponent: direct,
    };
    Some(j)
}
