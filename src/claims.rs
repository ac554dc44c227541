//! The claims registry and the verdicts (THEORY §4, §5, §7).
//!
//! The registry (`claims.toml`, embedded) holds one entry per claim of THEORY §4. Judging a
//! claim never needs code of its own: a `rate` claim is judged from the results of the specs
//! tagged with its id, a `sample_complexity` claim from those of the claim it follows from,
//! an `exact` claim by the exact checks on random instances below.
//!
//! Verdicts for upper-bound claims are one-sided (§4, §7.4), with the exponent interval
//! [lo, hi] of the mean gap and the claim's tolerance tol [ours]:
//! - `violated`: lo > claimed + tol (decays slower than claimed), or at some n the gap exceeds
//!   the paper's bound in more replications than delta allows (exact binomial test at level
//!   BOUND_TEST_LEVEL / L, Bonferroni over the L sample sizes);
//! - `tight`: claimed - tol <= lo and hi <= claimed + tol;
//! - `consistent`: hi <= claimed + tol (decays at least as fast; "not tight" if faster);
//! - `inconclusive`: the interval straddles claimed + tol, or the gaps sit at the numerical
//!   floor (e.g. the finite class identifies r* exactly, so the decay is exponential and says
//!   nothing about the claimed rate).

use crate::error::{Error, Result};
use crate::gap::Quantity;
use crate::numerics::ln0;
use crate::policy::{
    Divergence, fkl_kkt_residual, fkl_objective, fkl_policy, log_escort, mixture, rkl_log_policy,
    rkl_objective,
};
use crate::report::{CellResult, ResultFile};
use crate::statistics::{binomial_upper_tail, first_n_below, least_squares};
use crate::streams::stream;
use rand::RngExt;
use serde::{Deserialize, Serialize};

mod comparisons;
pub use comparisons::spearman;
use std::collections::BTreeMap;

/// Level of the bound's exact binomial test, before the Bonferroni split over sample sizes [ours].
pub const BOUND_TEST_LEVEL: f64 = 1e-3;

/// What kind of evidence judges a claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimKind {
    Rate,
    SampleComplexity,
    Exact,
    /// F1: the policy named by `formula` must reach the highest true multi-reference RKL
    /// objective among the THEORY §6 comparators (random instances and every RKL result).
    Comparison,
    /// MR: judged per result of a weight sweep tagged with it (bound with C_alpha per cell,
    /// rank correlation of the gap with C_alpha, best alpha against the vertices).
    Weights,
    /// DPO identity: the DPO policy of `formula`'s class equals the plug-in policy of the
    /// linear-class reward MLE (THEORY §6), on random instances and in tagged results.
    Identity,
    Pending,
}

/// bound(n) = constant gamma^a C^b e^{c R_max} R_max^e ln(|R|/delta)^f n^g (THEORY §4).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bound {
    pub constant: f64,
    pub gamma_power: f64,
    pub coverage_power: f64,
    pub exp_rmax: f64,
    pub rmax_power: f64,
    pub log_power: f64,
    pub n_power: f64,
}

impl Bound {
    /// The bound at n, with ln|R| = `log_class_size`.
    pub fn at(
        &self,
        n: u64,
        gamma: f64,
        coverage: f64,
        r_max: f64,
        log_class_size: f64,
        delta: f64,
    ) -> f64 {
        let log_term = log_class_size - delta.ln();
        self.constant
            * gamma.powf(self.gamma_power)
            * coverage.powf(self.coverage_power)
            * (self.exp_rmax * r_max).exp()
            * r_max.powf(self.rmax_power)
            * log_term.powf(self.log_power)
            * (n as f64).powf(self.n_power)
    }
}

/// One registry entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claim {
    pub id: String,
    pub source: String,
    pub statement: String,
    pub kind: ClaimKind,
    pub divergence: Option<Divergence>,
    pub quantity: Option<Quantity>,
    pub claimed_exponent: Option<f64>,
    pub tolerance: Option<f64>,
    pub bound: Option<Bound>,
    /// For sample-complexity claims: the rate claim whose runs they are judged from.
    pub from: Option<String>,
    /// For exact claims: `geometric` / `implicit` (the paper's), or a planted wrong formula
    /// (`arithmetic` for RKL) to show that the check fails.
    pub formula: Option<String>,
    pub instances: Option<usize>,
    pub reason: Option<String>,
    pub provenance: BTreeMap<String, String>,
}

/// The registry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    pub claim: Vec<Claim>,
}

const BUILTIN: &str = include_str!("claims.toml");

/// Sets `path` (dot-separated) inside a TOML value to `text`, parsed as the type the
/// existing value has; errors name the key, the value and what is allowed.
pub fn set_path(root: &mut toml::Value, path: &[&str], key: &str, text: &str) -> Result<()> {
    let mut v = root;
    for (i, p) in path.iter().enumerate() {
        let table = v.as_table_mut().ok_or_else(|| {
            Error::invalid(
                format!("--set {key}"),
                text,
                "a key naming an existing field",
            )
        })?;
        if !table.contains_key(*p) {
            let mut known: Vec<&str> = table.keys().map(String::as_str).collect();
            known.sort_unstable();
            let here = path[..=i].join(".");
            return Err(Error::invalid(
                format!("--set {key}"),
                text,
                format!(
                    "a known key; `{here}` is not one (known here: {})",
                    known.join(", ")
                ),
            ));
        }
        v = table.get_mut(*p).expect("checked above");
    }
    let parsed = match v {
        toml::Value::Float(_) => text
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(toml::Value::Float),
        toml::Value::Integer(_) => text.parse::<i64>().ok().map(toml::Value::Integer),
        toml::Value::String(_) => Some(toml::Value::String(text.to_string())),
        toml::Value::Boolean(_) => text.parse::<bool>().ok().map(toml::Value::Boolean),
        _ => None,
    };
    let kind = match v {
        toml::Value::Float(_) => "a number",
        toml::Value::Integer(_) => "an integer",
        toml::Value::String(_) => "a string",
        toml::Value::Boolean(_) => "true or false",
        _ => "nothing: this key holds a table or list; set one of its fields",
    };
    *v = parsed.ok_or_else(|| Error::invalid(format!("--set {key}"), text, kind))?;
    Ok(())
}

impl Registry {
    /// The built-in registry of THEORY §4.
    pub fn builtin() -> Self {
        toml::from_str(BUILTIN).expect("the built-in registry parses")
    }

    pub fn get(&self, id: &str) -> Option<&Claim> {
        self.claim.iter().find(|c| c.id == id)
    }

    /// The ids, for messages.
    pub fn ids(&self) -> String {
        self.claim
            .iter()
            .map(|c| c.id.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Applies an override `ID.field[.sub]=value` (e.g. `T5.2.claimed_exponent=-1.5`,
    /// `T6.2.bound.constant=1.6e-5`, `T5.1.formula=arithmetic`). Claim ids contain dots, so
    /// the longest id that prefixes the key wins.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let id = self
            .claim
            .iter()
            .map(|c| c.id.clone())
            .filter(|id| key.starts_with(&format!("{id}.")))
            .max_by_key(|id| id.len())
            .ok_or_else(|| {
                Error::invalid(
                    "--set",
                    key,
                    format!("ID.field=value with ID one of {}", self.ids()),
                )
            })?;
        let field = &key[id.len() + 1..];
        let idx = self
            .claim
            .iter()
            .position(|c| c.id == id)
            .expect("found above");
        let mut v = toml::Value::try_from(&self.claim[idx]).expect("claims serialise");
        // Optional fields absent from the entry cannot be set: they do not apply to this claim.
        set_path(&mut v, &field.split('.').collect::<Vec<_>>(), key, value)?;
        let claim: Claim = v.try_into().map_err(|e: toml::de::Error| {
            Error::invalid(format!("--set {key}"), value, e.message().to_string())
        })?;
        check_claim(&claim)?;
        self.claim[idx] = claim;
        Ok(())
    }
}

fn check_claim(c: &Claim) -> Result<()> {
    let f = |field: &str| format!("{}.{field}", c.id);
    if let Some(t) = c.tolerance {
        if !(t.is_finite() && (0.0..=2.0).contains(&t)) {
            return Err(Error::invalid(f("tolerance"), t, "a number in [0, 2]"));
        }
    }
    if let Some(b) = &c.bound {
        if !(b.constant.is_finite() && b.constant > 0.0) {
            return Err(Error::invalid(
                f("bound.constant"),
                b.constant,
                "a finite number > 0",
            ));
        }
    }
    if let Some(formula) = &c.formula {
        let allowed: &[&str] = match (c.kind, c.divergence) {
            (ClaimKind::Comparison, _) => &[
                "exact",
                "mrpo",
                "mrpo_ctro",
                "arithmetic_mixture",
                "reference_1",
            ],
            (ClaimKind::Identity, _) => &["dpo_linear", "dpo_tabular"],
            (_, Some(Divergence::Rkl)) => &["geometric", "arithmetic"],
            _ => &["implicit", "arithmetic_tilt"],
        };
        if !allowed.contains(&formula.as_str()) {
            return Err(Error::invalid(
                f("formula"),
                formula,
                format!("one of {}", allowed.join(", ")),
            ));
        }
    }
    if let Some(n) = c.instances {
        if !(1..=1_000_000).contains(&n) {
            return Err(Error::invalid(
                f("instances"),
                n,
                "an integer from 1 to 1000000",
            ));
        }
    }
    Ok(())
}

/// A verdict (THEORY §7.4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Tight,
    Consistent,
    Inconclusive,
    Pending,
    Violated,
}

impl Verdict {
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Tight => "tight",
            Verdict::Consistent => "consistent",
            Verdict::Inconclusive => "inconclusive",
            Verdict::Pending => "pending",
            Verdict::Violated => "violated",
        }
    }
}

/// The bound check at one sample size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BoundCheck {
    pub n: u64,
    pub bound: f64,
    /// Replications whose gap exceeds the bound.
    pub exceed: u64,
    pub replications: u64,
    /// P[X >= exceed], X ~ Binomial(replications, delta).
    pub p_value: f64,
    /// bound / (1 - delta)-quantile of the gap.
    pub slack: f64,
}

/// The judgement of one claim on one piece of evidence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Judgement {
    pub claim: String,
    /// The spec (and cell) the evidence came from, if any.
    pub evidence: Option<String>,
    pub verdict: Verdict,
    pub measured: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    pub claimed: Option<f64>,
    pub tolerance: Option<f64>,
    /// Smallest bound / quantile over n (> 1: the bound holds with room; < 1: exceeded).
    pub bound_slack: Option<f64>,
    pub bound_checks: Vec<BoundCheck>,
    pub reason: String,
    /// Extra numbers (exact-check residuals, n(eps) tables).
    pub details: serde_json::Value,
}

impl Judgement {
    fn new(claim: &Claim, evidence: Option<String>, verdict: Verdict, reason: String) -> Self {
        Judgement {
            claim: claim.id.clone(),
            evidence,
            verdict,
            measured: None,
            ci_low: None,
            ci_high: None,
            claimed: claim.claimed_exponent,
            tolerance: claim.tolerance,
            bound_slack: None,
            bound_checks: vec![],
            reason,
            details: serde_json::Value::Null,
        }
    }
}

/// ln|R| at n for the result's reward class: ln M (finite) or d ln(1 + 2 B n) (linear, [ours]).
pub fn log_class_size(r: &ResultFile, n: u64) -> f64 {
    match (r.instance.candidates, r.instance.dim) {
        (Some(m), _) => (m as f64).ln(),
        (None, Some(d)) => d as f64 * (2.0 * r.instance.r_max * n as f64).ln_1p(),
        _ => f64::NAN,
    }
}

/// The one-sided verdict on an exponent interval (see the module doc).
fn rate_verdict(lo: f64, hi: f64, claimed: f64, tol: f64) -> (Verdict, String) {
    if lo > claimed + tol {
        (
            Verdict::Violated,
            format!(
                "decays slower than claimed: interval [{lo:.3}, {hi:.3}] lies above {claimed} + {tol}"
            ),
        )
    } else if hi <= claimed + tol && lo >= claimed - tol {
        (
            Verdict::Tight,
            format!("interval [{lo:.3}, {hi:.3}] within {claimed} +- {tol}"),
        )
    } else if hi <= claimed + tol {
        (
            Verdict::Consistent,
            format!("decays at least as fast as claimed (interval [{lo:.3}, {hi:.3}]); not tight"),
        )
    } else {
        (
            Verdict::Inconclusive,
            format!(
                "interval [{lo:.3}, {hi:.3}] straddles {claimed} + {tol}: more replications or larger n needed"
            ),
        )
    }
}

/// The bound check at every n of a cell: how many replications exceed the bound, the exact
/// binomial p-value, the slack bound / quantile; and the first violation (p below
/// BOUND_TEST_LEVEL / L), if any.
fn bound_checks(
    b: &Bound,
    r: &ResultFile,
    cell: &CellResult,
    delta: f64,
) -> (Vec<BoundCheck>, Option<String>) {
    let coverage = cell.coverage.unwrap_or(f64::INFINITY);
    let levels = cell.n.len() as f64;
    let mut violation = None;
    let mut checks = vec![];
    for (k, &n) in cell.n.iter().enumerate() {
        let bound = b.at(
            n,
            cell.gamma_at_n[k],
            coverage,
            r.instance.r_max,
            log_class_size(r, n),
            delta,
        );
        let raw = &cell.raw[k];
        let exceed = raw.iter().filter(|&&g| g > bound).count() as u64;
        let p_value = binomial_upper_tail(exceed, raw.len() as u64, delta);
        let q = cell.summaries[k].quantile;
        let slack = if q > 0.0 { bound / q } else { f64::INFINITY };
        if p_value < BOUND_TEST_LEVEL / levels && violation.is_none() {
            violation = Some(format!(
                "gap above the bound in {exceed} of {} replications at n = {n} (p = {p_value:.2e} < {:.1e})",
                raw.len(),
                BOUND_TEST_LEVEL / levels
            ));
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
    (checks, violation)
}

/// Judges a rate claim on one cell of a result.
pub fn judge_rate(
    claim: &Claim,
    r: &ResultFile,
    cell: &CellResult,
    delta: f64,
    gap_floor: f64,
) -> Judgement {
    let evidence = Some(if r.cells.len() > 1 {
        format!("{}:{}", r.name, cell.label)
    } else {
        r.name.clone()
    });
    let (claimed, tol) = (
        claim.claimed_exponent.unwrap_or(f64::NAN),
        claim.tolerance.unwrap_or(0.0),
    );
    let mut j = Judgement::new(claim, evidence, Verdict::Inconclusive, String::new());
    let e = &cell.exponent_mean;
    j.measured = e.slope;
    j.ci_low = e.ci_low;
    j.ci_high = e.ci_high;
    // Bound check (every n).
    let mut bound_violation = None;
    if let Some(b) = &claim.bound {
        let (checks, violation) = bound_checks(b, r, cell, delta);
        j.bound_slack = checks.iter().map(|c| c.slack).reduce(f64::min);
        j.bound_checks = checks;
        bound_violation = violation;
    }
    if let Some(reason) = bound_violation {
        j.verdict = Verdict::Violated;
        j.reason = reason;
        return j;
    }
    // Gaps at the floor in the tail: the fit describes rare events, not a rate.
    let first_tail = cell.n.iter().position(|&n| n >= e.tail_from_n).unwrap_or(0);
    if let Some(k) = (first_tail..cell.n.len()).find(|&k| cell.summaries[k].median <= gap_floor) {
        j.verdict = Verdict::Inconclusive;
        j.reason = format!(
            "median gap is 0 from n = {} on ({} of {} replications at the floor at n_max): the estimator recovers r* exactly, the decay is exponential and says nothing about the claimed rate",
            cell.n[k],
            cell.raw
                .last()
                .map(|v| v.iter().filter(|&&g| g <= gap_floor).count())
                .unwrap_or(0),
            cell.raw.last().map(Vec::len).unwrap_or(0)
        );
        return j;
    }
    match (e.ci_low, e.ci_high) {
        (Some(lo), Some(hi)) => {
            let (v, reason) = rate_verdict(lo, hi, claimed, tol);
            j.verdict = v;
            j.reason = reason;
        }
        _ => {
            j.verdict = Verdict::Inconclusive;
            j.reason = "no exponent: gaps at the numerical floor".into();
        }
    }
    j
}

/// Judges a sample-complexity claim (R5.4, R6.4) from a cell of the rate claim it follows
/// from. With q(n) ~ n^s the (1-delta)-quantile, n(eps) ~ eps^{1/s}, so the exponent of n(eps)
/// in 1/eps is -1/s, with interval [-1/lo, -1/hi] from the quantile slope's interval. The
/// direct table n(eps) (smallest grid n from which the quantile stays <= eps) is reported too.
pub fn judge_sample_complexity(claim: &Claim, r: &ResultFile, cell: &CellResult) -> Judgement {
    let cell_part = if r.cells.len() > 1 {
        format!(":{}", cell.label)
    } else {
        String::new()
    };
    let evidence = Some(format!(
        "{}{cell_part} (via {})",
        r.name,
        claim.from.clone().unwrap_or_default()
    ));
    let mut j = Judgement::new(claim, evidence, Verdict::Inconclusive, String::new());
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
                table.push((eps, n));
            }
        }
    }
    let direct = if table.len() >= 3 {
        let x: Vec<f64> = table.iter().map(|(e, _)| (1.0 / e).ln()).collect();
        let y: Vec<f64> = table.iter().map(|(_, n)| (*n as f64).ln()).collect();
        Some(least_squares(&x, &y).0)
    } else {
        None
    };
    j.details = serde_json::json!({ "n_of_eps": table.iter().map(|(e, n)| serde_json::json!({"eps": e, "n": n})).collect::<Vec<_>>(), "direct_exponent": direct });
    let e = &cell.exponent_quantile;
    match (e.slope, e.ci_low, e.ci_high) {
        (Some(s), Some(lo), Some(hi)) if hi < 0.0 => {
            j.measured = Some(-1.0 / s);
            j.ci_low = Some(-1.0 / lo);
            j.ci_high = Some(-1.0 / hi);
            let (v, reason) = rate_verdict(
                -1.0 / lo,
                -1.0 / hi,
                claim.claimed_exponent.unwrap_or(f64::NAN),
                claim.tolerance.unwrap_or(0.0),
            );
            j.verdict = v;
            j.reason = reason
                .replace("decays slower", "needs more samples")
                .replace("decays at least as fast", "needs no more samples");
        }
        _ => {
            j.reason =
                "the quantile does not decrease in n over the tail: no sample-complexity exponent"
                    .into()
        }
    }
    j
}

/// Maximises a concave objective over the simplex restricted to `support` by exponentiated
/// gradient with backtracking (a generic method that knows nothing of the closed forms).
/// `f` returns (value, gradient); returns the best value found.
fn maximise_on_simplex(
    support: &[bool],
    iterations: usize,
    f: &dyn Fn(&[f64], &mut [f64]) -> f64,
) -> f64 {
    let k = support.iter().filter(|&&s| s).count() as f64;
    let mut p: Vec<f64> = support
        .iter()
        .map(|&s| if s { 1.0 / k } else { 0.0 })
        .collect();
    let mut grad = vec![0.0; p.len()];
    let mut trial = p.clone();
    let mut value = f(&p, &mut grad);
    let mut step = 1.0;
    for _ in 0..iterations {
        let gmax = grad
            .iter()
            .zip(support)
            .filter(|(_, s)| **s)
            .map(|(g, _)| *g)
            .fold(f64::NEG_INFINITY, f64::max);
        let mut improved = false;
        for _ in 0..60 {
            let mut z = 0.0;
            for y in 0..p.len() {
                trial[y] = if support[y] {
                    p[y] * (step * (grad[y] - gmax)).exp()
                } else {
                    0.0
                };
                z += trial[y];
            }
            trial.iter_mut().for_each(|v| *v /= z);
            let mut g2 = vec![0.0; p.len()];
            let v2 = f(&trial, &mut g2);
            if v2 > value {
                p.copy_from_slice(&trial);
                grad = g2;
                value = v2;
                step *= 1.5;
                improved = true;
                break;
            }
            step *= 0.5;
        }
        if !improved {
            break;
        }
    }
    value
}

/// A random one-context problem of the exact checks: K = `min_k` + (0..=3) references over
/// |Y| = 2..=8 responses (each response but one shared one dropped with probability 1/4),
/// weights on the simplex, gamma log-uniform in [1e-3, 1e4], r uniform in [-R_max, R_max]
/// with R_max uniform in [0, 5]; drawn from the stream ("exact/<claim id>", instance).
pub(crate) struct RandomContext {
    pub k: usize,
    pub ny: usize,
    pub gamma: f64,
    pub refs: Vec<Vec<f64>>,
    pub w: Vec<f64>,
    pub r: Vec<f64>,
}

pub(crate) fn random_context(seed: u64, id: &str, instance: usize, min_k: usize) -> RandomContext {
    let mut rng = stream(seed, &format!("exact/{id}"), instance as u64);
    let k = min_k + (rng.random::<u64>() % 4) as usize;
    let ny = 2 + (rng.random::<u64>() % 7) as usize;
    let gamma = 10f64.powf(-3.0 + 7.0 * rng.random::<f64>());
    let r_max = 5.0 * rng.random::<f64>();
    let shared = (rng.random::<u64>() % ny as u64) as usize;
    let refs: Vec<Vec<f64>> = (0..k)
        .map(|_| {
            let mut p: Vec<f64> = (0..ny)
                .map(|y| {
                    if y != shared && rng.random::<f64>() < 0.25 {
                        0.0
                    } else {
                        -rng.random::<f64>().ln()
                    }
                })
                .collect();
            let s: f64 = p.iter().sum();
            p.iter_mut().for_each(|v| *v /= s);
            p
        })
        .collect();
    let mut w: Vec<f64> = (0..k).map(|_| -rng.random::<f64>().ln()).collect();
    let s: f64 = w.iter().sum();
    w.iter_mut().for_each(|v| *v /= s);
    let r: Vec<f64> = (0..ny)
        .map(|_| r_max * (2.0 * rng.random::<f64>() - 1.0))
        .collect();
    RandomContext {
        k,
        ny,
        gamma,
        refs,
        w,
        r,
    }
}

/// Exact checks of T5.1 (RKL) or T6.1 (FKL) on `claim.instances` random one-context
/// instances: the closed form (or the planted `formula`) against the generic maximiser, plus
/// the residuals of D1-D6. `violated` if the maximiser beats the formula beyond round-off
/// or an identity fails.
pub fn judge_exact(claim: &Claim, seed: u64) -> Judgement {
    let div = claim.divergence.unwrap_or(Divergence::Rkl);
    let formula = claim.formula.clone().unwrap_or_default();
    let count = claim.instances.unwrap_or(100);
    let mut worst_beat: f64 = 0.0; // max over instances of (J_numeric - J_formula) / (1 + |J|)
    let mut worst_identity: f64 = 0.0;
    let mut worst_where = String::new();
    for inst in 0..count {
        let RandomContext {
            k,
            ny,
            gamma,
            refs,
            w,
            r,
        } = random_context(seed, &claim.id, inst, 1);
        let rr: Vec<&[f64]> = refs.iter().map(Vec::as_slice).collect();
        let (j_formula, j_numeric, identity) = match div {
            Divergence::Rkl => {
                let support: Vec<bool> = (0..ny).map(|y| rr.iter().all(|p| p[y] > 0.0)).collect();
                let mut base = vec![0.0; ny];
                let ln_f = log_escort(&rr, &w, &mut base);
                if formula == "arithmetic" {
                    mixture(&rr, &w, &mut base);
                    base.iter_mut()
                        .zip(&support)
                        .for_each(|(b, &s)| *b = if s { ln0(*b) } else { f64::NEG_INFINITY });
                }
                let mut lp = vec![0.0; ny];
                let ln_z = rkl_log_policy(&base, &r, gamma, &mut lp);
                let pi: Vec<f64> = lp.iter().map(|v| v.exp()).collect();
                let jf = rkl_objective(&pi, &rr, &w, &r, gamma);
                let jn = maximise_on_simplex(&support, 3000, &|p, g| {
                    for y in 0..ny {
                        g[y] = if p[y] > 0.0 {
                            r[y] - w
                                .iter()
                                .zip(&rr)
                                .map(|(a, q)| a * (p[y].ln() - q[y].ln() + 1.0))
                                .sum::<f64>()
                                / gamma
                        } else {
                            0.0
                        };
                    }
                    rkl_objective(p, &rr, &w, &r, gamma)
                });
                // D2: the objective of the closed form equals (1/gamma)(ln F + ln Z).
                let d2 = if formula == "geometric" {
                    (jf - (ln_f + ln_z) / gamma).abs() / (1.0 + jf.abs())
                } else {
                    0.0
                };
                (jf, jn, d2)
            }
            Divergence::Fkl => {
                let mut m = vec![0.0; ny];
                mixture(&rr, &w, &mut m);
                let support: Vec<bool> = m.iter().map(|&v| v > 0.0).collect();
                let mut pi = vec![0.0; ny];
                let root = fkl_policy(&m, &r, gamma, &mut pi);
                let kkt = fkl_kkt_residual(&m, &r, gamma, &pi, &root);
                let jf = fkl_objective(&pi, &rr, &w, &r, gamma);
                let jn = maximise_on_simplex(&support, 3000, &|p, g| {
                    for y in 0..ny {
                        g[y] = if p[y] > 0.0 {
                            r[y] + m[y] / (gamma * p[y])
                        } else {
                            0.0
                        };
                    }
                    fkl_objective(p, &rr, &w, &r, gamma)
                });
                (jf, jn, kkt)
            }
        };
        let beat = (j_numeric - j_formula) / (1.0 + j_formula.abs());
        if beat > worst_beat {
            worst_beat = beat;
            worst_where = format!("instance {inst}: K = {k}, |Y| = {ny}, gamma = {gamma:.3e}");
        }
        worst_identity = worst_identity.max(identity);
    }
    // Round-off allowance: objectives are sums of |Y| <= 8 terms of size up to R_max + ln terms;
    // 1e-10 relative is four orders above double rounding and far below any formula error.
    let tol = 1e-10;
    let mut j = Judgement::new(
        claim,
        Some(format!("{count} random instances ({formula})")),
        Verdict::Tight,
        String::new(),
    );
    j.details = serde_json::json!({ "max_relative_improvement_by_maximiser": worst_beat, "max_identity_residual": worst_identity, "worst_instance": worst_where, "tolerance": tol });
    if worst_beat > tol {
        j.verdict = Verdict::Violated;
        j.reason = format!(
            "a generic maximiser beats the formula by {worst_beat:.2e} (relative) at {worst_where}"
        );
    } else if worst_identity > tol {
        j.verdict = Verdict::Violated;
        j.reason = format!("identity residual {worst_identity:.2e} above {tol:e}");
    } else {
        j.reason = format!(
            "never beaten (max relative improvement {worst_beat:.1e}); identity residuals <= {worst_identity:.1e}"
        );
    }
    j
}

/// Default seed of the exact checks (overridden by `mrkl check --seed`).
pub const EXACT_SEED: u64 = 20250201;

/// Checks that every spec's `claim` tag names a registered claim whose divergence and
/// quantity it measures, and that rate specs can support a verdict (>= 4 sample sizes).
pub fn validate_specs<'a>(
    registry: &Registry,
    specs: impl Iterator<Item = &'a crate::spec::Spec>,
) -> Result<()> {
    for s in specs {
        let Some(id) = &s.claim else { continue };
        let claim = registry.get(id).ok_or_else(|| {
            Error::invalid(
                format!("{}: claim", s.name),
                id,
                format!("a registered claim id: {}", registry.ids()),
            )
        })?;
        if !matches!(
            claim.kind,
            ClaimKind::Rate | ClaimKind::Comparison | ClaimKind::Weights
        ) {
            return Err(Error::invalid(
                format!("{}: claim", s.name),
                id,
                "a rate, comparison or weights claim (sample-complexity, exact, identity and pending claims are not tagged on specs)",
            ));
        }
        if claim.kind == ClaimKind::Weights && s.cells.len() < 3 {
            return Err(Error::invalid(
                format!("{}: sweep", s.name),
                s.cells.len(),
                format!("a weight sweep of at least 3 cells (claim {id} compares alphas)"),
            ));
        }
        if let Some(d) = claim.divergence {
            if d != s.divergence {
                return Err(Error::invalid(
                    format!("{}: experiment.divergence", s.name),
                    s.divergence.name(),
                    format!("{} (claim {id})", d.name()),
                ));
            }
        }
        if let Some(q) = claim.quantity {
            if q != s.quantity {
                return Err(Error::invalid(
                    format!("{}: experiment.quantity", s.name),
                    s.quantity.name(),
                    format!("{} (claim {id})", q.name()),
                ));
            }
        }
        if claim.kind == ClaimKind::Rate && s.ns.len() < 4 {
            return Err(Error::invalid(
                format!("{}: experiment.n (levels)", s.name),
                s.ns.len(),
                "at least 4 sample sizes to support a verdict",
            ));
        }
    }
    Ok(())
}

/// Judges every claim of the registry on saved results (each names its claim; delta and
/// the gap floor come from its spec); the exact checks run with `seed` (`None`: they are
/// not run and reported as pending, as after `mrkl run`, whose results they do not concern).
pub fn judge_all(registry: &Registry, results: &[ResultFile], seed: Option<u64>) -> Vec<Judgement> {
    use rayon::prelude::*;
    let tagged = |id: String| {
        results
            .iter()
            .filter(move |r| r.claim.as_deref() == Some(id.as_str()))
    };
    registry
        .claim
        .par_iter()
        .map(|claim| {
            let mut out = vec![];
            match claim.kind {
                ClaimKind::Rate => {
                    for r in tagged(claim.id.clone()) {
                        let delta = r.spec["delta"].as_f64().unwrap_or(0.05);
                        let floor = r.spec["options"]["gap_floor"].as_f64().unwrap_or(0.0);
                        for cell in &r.cells {
                            out.push(judge_rate(claim, r, cell, delta, floor));
                        }
                    }
                }
                ClaimKind::SampleComplexity => {
                    let from = claim.from.clone().unwrap_or_default();
                    for r in tagged(from.clone()) {
                        if r.instance.reward_class != "linear" {
                            continue; // a finite class identifies r*: n(eps) is not a power law
                        }
                        for cell in &r.cells {
                            out.push(judge_sample_complexity(claim, r, cell));
                        }
                    }
                }
                ClaimKind::Exact => match seed {
                    Some(seed) => out.push(judge_exact(claim, seed)),
                    None => out.push(Judgement::new(
                        claim,
                        None,
                        Verdict::Pending,
                        "exact checks run with `mrkl check`".into(),
                    )),
                },
                ClaimKind::Comparison | ClaimKind::Identity => match seed {
                    Some(seed) => out.push(if claim.kind == ClaimKind::Comparison {
                        comparisons::judge_f1(claim, seed, results)
                    } else {
                        comparisons::judge_identity(claim, seed, results)
                    }),
                    None => out.push(Judgement::new(
                        claim,
                        None,
                        Verdict::Pending,
                        "exact checks run with `mrkl check`".into(),
                    )),
                },
                ClaimKind::Weights => {
                    for r in tagged(claim.id.clone()) {
                        let delta = r.spec["delta"].as_f64().unwrap_or(0.05);
                        out.push(comparisons::judge_weights(
                            claim,
                            r,
                            delta,
                            r.provenance.seed,
                        ));
                    }
                }
                ClaimKind::Pending => out.push(Judgement::new(
                    claim,
                    None,
                    Verdict::Pending,
                    claim
                        .reason
                        .clone()
                        .unwrap_or_else(|| "not yet measurable".into()),
                )),
            }
            if out.is_empty() {
                out.push(Judgement::new(
                    claim,
                    None,
                    Verdict::Inconclusive,
                    "no spec in this run measures it".into(),
                ));
            }
            out
        })
        .collect::<Vec<_>>()
        .into_iter()
        .flatten()
        .collect()
}

/// "N tight, N consistent, ..." over the judgements.
pub fn verdict_counts(js: &[Judgement]) -> String {
    [
        Verdict::Tight,
        Verdict::Consistent,
        Verdict::Inconclusive,
        Verdict::Pending,
        Verdict::Violated,
    ]
    .iter()
    .map(|v| {
        format!(
            "{} {}",
            js.iter().filter(|j| j.verdict == *v).count(),
            v.name()
        )
    })
    .collect::<Vec<_>>()
    .join(", ")
}

/// The content of `results/summary.json`.
pub fn summary_json(
    registry: &Registry,
    overrides: &[String],
    js: &[Judgement],
    git_commit: Option<String>,
) -> serde_json::Value {
    serde_json::json!({
        "format": "mrkl-summary/1",
        "mrkl_version": env!("CARGO_PKG_VERSION"),
        "git_commit": git_commit,
        "overrides": overrides,
        "bound_test_level": BOUND_TEST_LEVEL,
        "registry": registry,
        "judgements": js,
        "counts": verdict_counts(js),
    })
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A JUnit XML report: one test case per judgement; `violated` is a failure,
/// `inconclusive` and `pending` are skipped (with their reason).
pub fn junit_xml(js: &[Judgement]) -> String {
    let failures = js.iter().filter(|j| j.verdict == Verdict::Violated).count();
    let skipped = js
        .iter()
        .filter(|j| matches!(j.verdict, Verdict::Inconclusive | Verdict::Pending))
        .count();
    let mut s = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuite name=\"mrkl-claims\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\">\n",
        js.len()
    );
    for j in js {
        let name = xml_escape(
            &format!("{} {}", j.claim, j.evidence.clone().unwrap_or_default())
                .trim()
                .to_string(),
        );
        s.push_str(&format!(
            "  <testcase classname=\"mrkl.{}\" name=\"{name}\">",
            xml_escape(&j.claim)
        ));
        match j.verdict {
            Verdict::Violated => {
                s.push_str(&format!("<failure message=\"{}\"/>", xml_escape(&j.reason)))
            }
            Verdict::Inconclusive | Verdict::Pending => s.push_str(&format!(
                "<skipped message=\"{}: {}\"/>",
                j.verdict.name(),
                xml_escape(&j.reason)
            )),
            _ => s.push_str(&format!(
                "<system-out>{}: {}</system-out>",
                j.verdict.name(),
                xml_escape(&j.reason)
            )),
        }
        s.push_str("</testcase>\n");
    }
    s.push_str("</testsuite>\n");
    s
}
