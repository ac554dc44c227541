//! What judging produces: findings, one verdict per claim and piece of evidence, and the
//! saved file (`summary.json`) that every rendering reads.
//!
//! A judgement keeps its parts apart (THEORY §7.4): the rate (the exponent interval against
//! the claimed exponent ± tolerance), the bound (per n, an exact binomial test), an exact
//! check, a rank correlation. The verdict follows from the findings by one rule,
//! [`Verdict::of`]:
//! - `violated`: some finding contradicts the claim (a rate slower than claimed, a bound
//!   exceeded, an exact check that fails);
//! - `inconclusive`: none contradicts it, but some cannot decide (an interval straddling
//!   the claimed exponent + tolerance, gaps at the numerical floor, a correlation that is
//!   not significant);
//! - `holds`: every finding agrees with the claim;
//! - `not measured`: nothing in this run measures the claim (no spec names it, or its exact
//!   checks were not run). Not a test outcome: JUnit leaves it out.

use crate::claims::registry::{Registry, Variable};
use serde::{Deserialize, Serialize};

/// The verdict on one claim and one piece of evidence.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Holds,
    Inconclusive,
    NotMeasured,
    Violated,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Holds => "holds",
            Verdict::Inconclusive => "inconclusive",
            Verdict::NotMeasured => "not measured",
            Verdict::Violated => "violated",
        }
    }

    /// Every verdict, in the order reports count them.
    pub const ALL: [Verdict; 4] = [
        Verdict::Holds,
        Verdict::Inconclusive,
        Verdict::NotMeasured,
        Verdict::Violated,
    ];

    /// The one rule from findings to a verdict (module doc).
    pub fn of(findings: &[Finding]) -> Verdict {
        if findings.is_empty() {
            Verdict::NotMeasured
        } else if findings.iter().any(Finding::contradicts) {
            Verdict::Violated
        } else if findings.iter().any(Finding::undecided) {
            Verdict::Inconclusive
        } else {
            Verdict::Holds
        }
    }
}

/// How a measured exponent compares with the claimed one, with tolerance tol and the
/// interval [lo, hi] (upper-bound claims are one-sided, THEORY §4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateOutcome {
    /// claimed - tol <= lo and hi <= claimed + tol: the rate is the claimed one.
    Matches,
    /// hi <= claimed + tol and lo < claimed - tol: decays faster than claimed (the upper
    /// bound holds with room: "not tight").
    Faster,
    /// lo > claimed + tol: decays slower than claimed. Contradicts the claim.
    Slower,
    /// lo <= claimed + tol < hi: more replications or larger n needed.
    Straddles,
    /// The tail's gaps sit at the numerical floor (e.g. the finite class identifies r*
    /// exactly): the decay is exponential and says nothing about a power.
    AtFloor,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BoundOutcome {
    /// At every n the gap exceeds the bound no more often than delta allows.
    Holds,
    /// At some n it exceeds the bound more often than delta allows (exact binomial test).
    Exceeded,
}

/// How the measured leading constant compares with the predicted one (THEORY §8).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConstantOutcome {
    /// The ratio measured / claimed is 1 within the allowance and the sampling error.
    Matches,
    /// It differs from 1 by more than the allowance plus z SE. Contradicts the claim.
    Differs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckOutcome {
    Passes,
    Fails,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CorrelationOutcome {
    /// Positive at the test's level (one-sided permutation test).
    Positive,
    NotSignificant,
}

/// One part of a judgement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "part", rename_all = "snake_case")]
pub enum Finding {
    /// The exponent of the gap's mean in `variable` (or of n(eps) in 1/eps).
    Rate {
        variable: RateVariable,
        outcome: RateOutcome,
        /// The interval [lo, hi] (`None` at the floor).
        interval: Option<(f64, f64)>,
        claimed: f64,
        tolerance: f64,
    },
    /// The claim's bound at every n; `slack` = the smallest bound / (1-delta)-quantile.
    Bound {
        outcome: BoundOutcome,
        slack: f64,
        /// Where it is exceeded: "in k of R replications at n = ..." (empty if it holds).
        at: String,
    },
    /// The leading constant: `ratio` = the tail average of n^-a x mean gap over the claimed
    /// constant (`factor` x the predicted C), with its standard error `se` (the mean of
    /// R whole replications' tail ratios) and the allowance for higher-order terms (the
    /// drift of the ratio across the tail); differs when |ratio - 1| - allowance > z se,
    /// z = Student's t quantile with R - 1 degrees of freedom at two-sided level 1 - 1e-3.
    Constant {
        outcome: ConstantOutcome,
        ratio: f64,
        se: f64,
        allowance: f64,
        z: f64,
        factor: f64,
        /// C, or under a gamma(n) schedule the predicted mean at the largest n.
        predicted: f64,
        /// Under a gamma(n) schedule: the curve is judged from this n on (None: a power law).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        curve_from: Option<u64>,
        /// The power law is the large-gamma limit (K/c) n^-(1+p) of a gamma(n) schedule.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        large_gamma: bool,
    },
    /// The exponential rate of the finite class (THEORY §8): `measured` = -slope of
    /// ln(mean gap) against n over the measurable levels `from_n..=to_n`, with its bootstrap
    /// standard error `se` (whole replications); `predicted` = min_j c_j (Chernoff), `factor`
    /// the claim's `constant_factor`, `tail_rate` the same slope of the predicted curve, and
    /// `allowance` = |tail_rate - predicted| (the pre-asymptotic part); differs when
    /// |measured - factor predicted| - allowance > z se.
    ExponentialRate {
        outcome: ConstantOutcome,
        measured: f64,
        se: f64,
        predicted: f64,
        tail_rate: f64,
        allowance: f64,
        z: f64,
        factor: f64,
        from_n: u64,
        to_n: u64,
    },
    /// An exact check: `value` (a relative improvement or a residual) against `tolerance`.
    Check {
        outcome: CheckOutcome,
        what: String,
        value: f64,
        tolerance: f64,
    },
    /// A rank correlation across cells and its one-sided permutation p-value.
    Correlation {
        outcome: CorrelationOutcome,
        what: String,
        rho: f64,
        p_value: f64,
        level: f64,
    },
}

/// The variable of a rate finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateVariable {
    N,
    Gamma,
    /// The exponent of n(eps) in 1/eps (sample-complexity claims).
    InverseEps,
}

impl From<Variable> for RateVariable {
    fn from(v: Variable) -> Self {
        match v {
            Variable::N => RateVariable::N,
            Variable::Gamma => RateVariable::Gamma,
        }
    }
}

impl RateVariable {
    pub fn name(self) -> &'static str {
        match self {
            RateVariable::N => "n",
            RateVariable::Gamma => "gamma",
            RateVariable::InverseEps => "1/eps",
        }
    }
}

fn sci(v: f64) -> String {
    crate::numerics::compact(v)
}

impl Finding {
    /// An exact check: passes when `value` <= `tolerance`.
    pub fn check(what: impl Into<String>, value: f64, tolerance: f64) -> Finding {
        Finding::Check {
            outcome: if value > tolerance {
                CheckOutcome::Fails
            } else {
                CheckOutcome::Passes
            },
            what: what.into(),
            value,
            tolerance,
        }
    }

    fn contradicts(&self) -> bool {
        matches!(
            self,
            Finding::Rate {
                outcome: RateOutcome::Slower,
                ..
            } | Finding::Bound {
                outcome: BoundOutcome::Exceeded,
                ..
            } | Finding::Check {
                outcome: CheckOutcome::Fails,
                ..
            } | Finding::Constant {
                outcome: ConstantOutcome::Differs,
                ..
            } | Finding::ExponentialRate {
                outcome: ConstantOutcome::Differs,
                ..
            }
        )
    }

    fn undecided(&self) -> bool {
        matches!(
            self,
            Finding::Rate {
                outcome: RateOutcome::Straddles | RateOutcome::AtFloor,
                ..
            } | Finding::Correlation {
                outcome: CorrelationOutcome::NotSignificant,
                ..
            }
        )
    }

    /// The finding in words, e.g. "rate matches n^-1", "bound holds, slack 2.4e4x".
    pub fn text(&self) -> String {
        match self {
            Finding::Rate {
                variable,
                outcome,
                interval,
                claimed,
                tolerance,
            } => {
                let v = variable.name();
                let iv = interval
                    .map(|(lo, hi)| format!("[{lo:+.3}, {hi:+.3}]"))
                    .unwrap_or_default();
                let (matches, below, above) = match variable {
                    RateVariable::N => ("rate matches", "decays faster than", "decays slower than"),
                    RateVariable::Gamma => {
                        ("grows like", "grows more slowly than", "grows faster than")
                    }
                    RateVariable::InverseEps => (
                        "n(eps) matches",
                        "needs fewer samples than",
                        "needs more samples than",
                    ),
                };
                if *outcome == RateOutcome::Faster && interval.is_none() {
                    return format!(
                        "{below} any power of {v} (exponential decay, see the exponential rate): the upper bound {v}^{claimed} holds, not tight"
                    );
                }
                let power = if *variable == RateVariable::InverseEps {
                    format!("(1/eps)^{claimed}")
                } else {
                    format!("{v}^{claimed}")
                };
                match outcome {
                    RateOutcome::Matches => {
                        format!("{matches} {power} (interval {iv} within ±{tolerance})")
                    }
                    RateOutcome::Faster => {
                        format!("{below} {power} (interval {iv}): the upper bound holds, not tight")
                    }
                    RateOutcome::Slower => {
                        format!("{above} {power} (interval {iv} above {claimed} + {tolerance})")
                    }
                    RateOutcome::Straddles => format!(
                        "exponent undecided: interval {iv} straddles {claimed} + {tolerance} (more replications or larger n needed)"
                    ),
                    RateOutcome::AtFloor => {
                        "no exponent: the gaps reach the numerical floor (exponential decay)".into()
                    }
                }
            }
            Finding::Constant {
                outcome,
                ratio,
                se,
                allowance,
                z,
                factor,
                predicted,
                curve_from,
                large_gamma,
            } => {
                let what = match (curve_from, large_gamma) {
                    (Some(n), _) => format!("curve (n >= {n}; {} at n_max)", sci(*predicted)),
                    (None, true) => format!("large-gamma limit K/c = {}", sci(*predicted)),
                    (None, false) => sci(*predicted),
                };
                let claimed = if *factor == 1.0 {
                    format!("the predicted {what}")
                } else {
                    format!("{} x the predicted {what}", sci(*factor))
                };
                let verb = match (outcome, curve_from) {
                    (ConstantOutcome::Matches, None) => "constant matches",
                    (ConstantOutcome::Differs, None) => "constant differs",
                    (ConstantOutcome::Matches, Some(_)) => "gap matches",
                    (ConstantOutcome::Differs, Some(_)) => "gap differs from",
                };
                format!(
                    "{verb} {claimed}: measured / claimed = {ratio:.3} ± {se:.3} (allowance {allowance:.3}, t = {z:.2})"
                )
            }
            Finding::ExponentialRate {
                outcome,
                measured,
                se,
                predicted,
                tail_rate,
                allowance,
                z,
                factor,
                from_n,
                to_n,
            } => {
                let claimed = if *factor == 1.0 {
                    format!("the predicted min_j c_j = {}", sci(*predicted))
                } else {
                    format!(
                        "{} x the predicted min_j c_j = {}",
                        sci(*factor),
                        sci(*predicted)
                    )
                };
                let verb = match outcome {
                    ConstantOutcome::Matches => "exponential rate matches",
                    ConstantOutcome::Differs => "exponential rate differs from",
                };
                format!(
                    "{verb} {claimed}: measured {} ± {} over n = {from_n}..{to_n} (predicted curve's slope there {}, allowance {}, z = {z})",
                    sci(*measured),
                    sci(*se),
                    sci(*tail_rate),
                    sci(*allowance)
                )
            }
            Finding::Bound { outcome, slack, at } => match outcome {
                BoundOutcome::Holds => format!("bound holds, slack {}x", sci(*slack)),
                BoundOutcome::Exceeded => format!("bound exceeded: {at}"),
            },
            Finding::Check {
                outcome,
                what,
                value,
                tolerance,
            } => match outcome {
                CheckOutcome::Passes => format!(
                    "check passes: {what} {} <= {}",
                    sci(*value),
                    sci(*tolerance)
                ),
                CheckOutcome::Fails => {
                    format!("check fails: {what} {} > {}", sci(*value), sci(*tolerance))
                }
            },
            Finding::Correlation {
                outcome,
                what,
                rho,
                p_value,
                level,
            } => match outcome {
                CorrelationOutcome::Positive => {
                    format!("{what} = {rho:+.2} > 0 (permutation p = {p_value:.3} < {level})")
                }
                CorrelationOutcome::NotSignificant => format!(
                    "{what} = {rho:+.2}, not significantly positive (permutation p = {p_value:.3} >= {level})"
                ),
            },
        }
    }
}

/// What the `measured` number of a judgement is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    /// The exponent of the mean gap in n.
    ExponentInN,
    /// The exponent of the mean gap in gamma, at one n.
    ExponentInGamma,
    /// The exponent of n(eps) in 1/eps.
    ExponentInInverseEps,
    /// A Spearman rank correlation.
    Correlation,
    /// The largest residual of an identity.
    Residual,
    /// The largest relative improvement of a competitor over the claimed formula.
    Improvement,
    /// An expected optimality gap (computed exactly; `claims::external` pessimism checks).
    ExpectedGap,
    /// Nothing was measured.
    Nothing,
}

impl Measure {
    pub fn name(self) -> &'static str {
        match self {
            Measure::ExponentInN => "exponent in n",
            Measure::ExponentInGamma => "exponent in gamma",
            Measure::ExponentInInverseEps => "exponent of n(eps) in 1/eps",
            Measure::Correlation => "Spearman rho",
            Measure::Residual => "max residual",
            Measure::Improvement => "max relative improvement",
            Measure::ExpectedGap => "expected gap",
            Measure::Nothing => "-",
        }
    }
}

/// The bound check at one sample size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoundCheck {
    pub n: u64,
    pub bound: f64,
    /// Replications whose gap exceeds the bound.
    pub exceed: u64,
    pub replications: u64,
    /// P[X >= exceed], X ~ Binomial(replications, delta).
    pub p_value: f64,
    /// bound / (1 - delta)-quantile of the gap (f64::MAX when the quantile is 0).
    pub slack: f64,
}

/// One point of an n(eps) table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpsN {
    pub eps: f64,
    pub n: u64,
}

/// A comparison of the exact plug-in policy with a comparator built from the same MLE
/// reward, per n (F1).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MleDifference {
    pub evidence: String,
    pub comparator: String,
    pub n: Vec<u64>,
    pub exact_minus_comparator_mean: Vec<Option<f64>>,
    pub ci_low: Vec<Option<f64>>,
    pub ci_high: Vec<Option<f64>>,
    pub true_reward_difference: Option<f64>,
}

/// The best alpha against the best vertex (MR), by gap.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VersusVertex {
    pub best_vertex: String,
    pub best_vertex_gap: f64,
    pub best_gap: f64,
    pub vertex_minus_best: f64,
    pub ci95: (f64, f64),
    pub paired: bool,
}

/// The best alpha by expected true reward (MR).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BestByReward {
    pub cell: String,
    pub expected_reward: f64,
    pub versus_best_vertex: Option<RewardVersusVertex>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RewardVersusVertex {
    pub best_vertex: String,
    pub best_vertex_reward: f64,
    pub best_minus_vertex: f64,
    pub ci95_paired: Option<(f64, f64)>,
}

/// One cell of a weight sweep (MR).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WeightCell {
    pub cell: String,
    pub coverage: Option<f64>,
    pub mean_gap: f64,
    pub expected_reward: Option<f64>,
    /// The predicted leading constant C of the cell's mean gap (THEORY §8), if derived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted_constant: Option<f64>,
    /// The predicted mean gap at n, C n^a.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicted_gap: Option<f64>,
}

/// The numbers behind a judgement, by kind of claim.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Details {
    #[default]
    None,
    SampleComplexity {
        n_of_eps: Vec<EpsN>,
        direct_exponent: Option<f64>,
    },
    Exact {
        instances: usize,
        max_relative_improvement_by_maximiser: f64,
        max_identity_residual: f64,
        worst_instance: String,
        tolerance: f64,
    },
    Comparison {
        instances: usize,
        result_cells: usize,
        max_relative_improvement_over_claimed: f64,
        worst: String,
        tolerance: f64,
        mle_reward_differences: Vec<MleDifference>,
    },
    Weights {
        n: u64,
        spearman_gap_vs_coverage: f64,
        permutation_p_value: f64,
        best_alpha_by_gap: String,
        best_alpha_vs_best_vertex: Option<VersusVertex>,
        best_alpha_by_expected_reward: Option<BestByReward>,
        /// The cell with the smallest C_alpha.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        best_alpha_by_coverage: Option<String>,
        /// Spearman(measured gap at n, predicted gap C n^a) across the cells, when every cell
        /// has a prediction.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        spearman_gap_vs_predicted: Option<f64>,
        /// The cell with the smallest predicted gap.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        best_alpha_by_predicted: Option<String>,
        cells: Vec<WeightCell>,
    },
    /// An exact check of a neighbouring paper (`claims::external`): the problems checked,
    /// where each check came closest to failing, and the table of the paper's examples.
    Table {
        instances: usize,
        tolerance: f64,
        worst_instance: String,
        caption: String,
        columns: Vec<String>,
        rows: Vec<Vec<f64>>,
    },
    Identity {
        instances: usize,
        max_policy_residual_random: f64,
        worst_instance: String,
        skipped_mle_on_boundary: usize,
        max_policy_residual_results: f64,
        result_values: usize,
        tolerance: f64,
    },
}

/// The judgement of one claim on one piece of evidence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Judgement {
    pub claim: String,
    /// What was judged: "spec" or "spec:cell" for results, a fixed name for exact checks;
    /// `None` when nothing measured the claim. Stable across runs (no counts in it).
    pub evidence: Option<String>,
    pub verdict: Verdict,
    /// What `measured` (with its interval) is.
    pub measure: Measure,
    pub measured: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    pub claimed: Option<f64>,
    pub tolerance: Option<f64>,
    /// Smallest bound / (1-delta)-quantile over n (> 1: the bound holds with room).
    pub bound_slack: Option<f64>,
    pub findings: Vec<Finding>,
    pub bound_checks: Vec<BoundCheck>,
    /// The findings in words, or why nothing was measured, plus any context.
    pub reason: String,
    pub details: Details,
}

impl Judgement {
    /// A judgement of `claim` with the verdict its findings give and their text as reason
    /// (`context`, if not empty, is appended).
    pub fn from_findings(
        claim: &crate::claims::Claim,
        evidence: Option<String>,
        measure: Measure,
        findings: Vec<Finding>,
        context: &str,
    ) -> Self {
        let mut reason = findings
            .iter()
            .map(Finding::text)
            .collect::<Vec<_>>()
            .join("; ");
        if !context.is_empty() {
            if !reason.is_empty() {
                reason.push_str("; ");
            }
            reason.push_str(context);
        }
        let bound_slack = findings.iter().find_map(|f| match f {
            Finding::Bound { slack, .. } => Some(*slack),
            _ => None,
        });
        Judgement {
            claim: claim.id.clone(),
            evidence,
            verdict: Verdict::of(&findings),
            measure,
            measured: None,
            ci_low: None,
            ci_high: None,
            claimed: claim.claimed_exponent,
            tolerance: claim.tolerance,
            bound_slack,
            findings,
            bound_checks: vec![],
            reason,
            details: Details::None,
        }
    }

    /// A claim nothing in this run measures.
    pub fn not_measured(claim: &crate::claims::Claim, why: &str) -> Self {
        Judgement::from_findings(claim, None, Measure::Nothing, vec![], why)
    }
}

/// The format of `summary.json`.
pub const SUMMARY_FORMAT: &str = "mrkl-summary/2";

/// A result a saved judgement covers: its name and the spec hash it had when judged.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JudgedResult {
    pub name: String,
    pub spec_hash: String,
}

/// `summary.json`: everything judging decided, saved beside the results; the report, JUnit
/// and the console table are rendered from it (and `mrkl report` re-renders from it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Judged {
    pub format: String,
    pub mrkl_version: String,
    pub git_commit: Option<String>,
    /// The command that judged: `run` (no exact checks) or `check`.
    pub command: String,
    /// `--set` overrides, as given.
    pub overrides: Vec<String>,
    /// The seed of the exact checks (`None`: not run).
    pub exact_seed: Option<u64>,
    pub bound_test_level: f64,
    /// The results judged, in report order.
    pub results: Vec<JudgedResult>,
    /// The registry judged against (built-in claims, overrides, users' claims files).
    pub registry: Registry,
    pub judgements: Vec<Judgement>,
    /// How many judgements have each verdict.
    pub counts: Vec<(Verdict, usize)>,
}

impl Judged {
    /// "N holds, N inconclusive, ..." over the judgements.
    pub fn counts_text(&self) -> String {
        self.counts
            .iter()
            .map(|(v, k)| format!("{k} {}", v.name()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Whether some claim is violated (the exit code of `check`).
    pub fn any_violated(&self) -> bool {
        self.judgements
            .iter()
            .any(|j| j.verdict == Verdict::Violated)
    }
}

/// Counts of each verdict.
pub fn verdict_counts(js: &[Judgement]) -> Vec<(Verdict, usize)> {
    Verdict::ALL
        .iter()
        .map(|v| (*v, js.iter().filter(|j| j.verdict == *v).count()))
        .collect()
}
