//! The claims registry: the schema of a claim, the built-in registry (`builtin.toml`, one
//! entry per claim of THEORY §4, embedded), claims files that users write in the same
//! schema (`mrkl check --claims FILE.toml`), overrides (`--set ID.field=value`) and the check
//! that specs name claims they can measure.

use crate::error::{Error, Result};
use crate::gap::Quantity;
use crate::overrides::{self, Missing};
use crate::policy::Divergence;
use crate::spec::{GammaRule, Spec};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// What kind of evidence judges a claim.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClaimKind {
    /// An exponent: of the gap in n (a spec's grid) or in gamma (a gamma sweep at one n),
    /// plus the claim's bound at every n if it has one. Judged from the specs naming it.
    #[default]
    Rate,
    /// n(eps) ~ eps^-exponent, judged from the specs of the rate claim `from`.
    SampleComplexity,
    /// T5.1 / T6.1: the closed form against a generic maximiser on random instances.
    Exact,
    /// F1: the policy named by `formula` must reach the highest true multi-reference RKL
    /// objective among the THEORY §6 comparators (random instances and every RKL result).
    Comparison,
    /// MR: judged per weight sweep naming it (bound with C_alpha per cell, rank correlation
    /// of the gap with C_alpha, best alpha against the vertices).
    Weights,
    /// DPO identity: the DPO policy of `formula`'s class equals the plug-in policy of the
    /// linear-class reward MLE (THEORY §6), on random instances and in results.
    Identity,
}

/// The variable a rate claim is an exponent in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Variable {
    /// The sample size n, along a spec's grid.
    #[default]
    N,
    /// gamma, across the cells of a gamma sweep, at the largest n of the grid.
    Gamma,
}

impl Variable {
    pub fn name(self) -> &'static str {
        match self {
            Variable::N => "n",
            Variable::Gamma => "gamma",
        }
    }
}

/// The formula an exact, comparison or identity claim asserts: the paper's, or a planted
/// wrong one that shows the check can fail.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Formula {
    /// T5.1: the escort (weighted geometric mean) tilted by e^{gamma r}.
    Geometric,
    /// Planted for T5.1: the arithmetic mixture in place of the escort.
    Arithmetic,
    /// T6.1: m / (gamma (Z~ - r)).
    Implicit,
    /// F1: comparators of THEORY §6 (`exact` is the paper's claim).
    Exact,
    Mrpo,
    MrpoCtro,
    ArithmeticMixture,
    #[serde(rename = "reference_1")]
    Reference1,
    /// DPO identity over the linear class (the paper's), or the tabular class (planted).
    DpoLinear,
    DpoTabular,
    /// Best-of-n (Beirami et al. 2024, docs/theory.md §9): KL <= log n - (n-1)/n; the
    /// quoted equality (false); KL <= -ln pi_ref(top); strict/half win rate <= n/(n+1) <=
    /// weak win rate; the RKL policy of equal KL has at least best-of-n's expected reward.
    BestOfNKlBound,
    BestOfNKlEquality,
    BestOfNKlCap,
    BestOfNWinRate,
    BestOfNRklReward,
    /// IPO against DPO (Azar et al. 2023, docs/theory.md §9.5-9.7): the closed form against
    /// gradient descent (and the planted closed form that ignores pi_ref); the two-action
    /// optimum; D1's fixed point; DPO's missing minimiser on D1; D3 as printed and with c
    /// losing once.
    IpoClosedForm,
    IpoIgnoringReference,
    IpoTwoActions,
    IpoD1,
    DpoD1NoMinimiser,
    IpoDpoD3,
    /// Pessimism (Zhu, Jordan, Jiao 2023, docs/theory.md §9.9-9.12): the greedy MLE
    /// policy's expected gap stays >= the floor at every n; the pessimistic MLE's vanishes
    /// (and stays below the derived bound); planted: the greedy gap vanishes, the optimistic
    /// (radius sign flipped) gap vanishes.
    PessimismGreedyFloor,
    PessimismLcbVanishes,
    PessimismGreedyVanishes,
    PessimismUcbVanishes,
}

impl Formula {
    pub fn name(self) -> &'static str {
        match self {
            Formula::Geometric => "geometric",
            Formula::Arithmetic => "arithmetic",
            Formula::Implicit => "implicit",
            Formula::Exact => "exact",
            Formula::Mrpo => "mrpo",
            Formula::MrpoCtro => "mrpo_ctro",
            Formula::ArithmeticMixture => "arithmetic_mixture",
            Formula::Reference1 => "reference_1",
            Formula::DpoLinear => "dpo_linear",
            Formula::DpoTabular => "dpo_tabular",
            Formula::BestOfNKlBound => "best_of_n_kl_bound",
            Formula::BestOfNKlEquality => "best_of_n_kl_equality",
            Formula::BestOfNKlCap => "best_of_n_kl_cap",
            Formula::BestOfNWinRate => "best_of_n_win_rate",
            Formula::BestOfNRklReward => "best_of_n_rkl_reward",
            Formula::IpoClosedForm => "ipo_closed_form",
            Formula::IpoIgnoringReference => "ipo_ignoring_reference",
            Formula::IpoTwoActions => "ipo_two_actions",
            Formula::IpoD1 => "ipo_d1",
            Formula::DpoD1NoMinimiser => "dpo_d1_no_minimiser",
            Formula::IpoDpoD3 => "ipo_dpo_d3",
            Formula::PessimismGreedyFloor => "pessimism_greedy_floor",
            Formula::PessimismLcbVanishes => "pessimism_lcb_vanishes",
            Formula::PessimismGreedyVanishes => "pessimism_greedy_vanishes",
            Formula::PessimismUcbVanishes => "pessimism_ucb_vanishes",
        }
    }

    /// The formulas a claim of this kind (and divergence) may assert.
    fn allowed(kind: ClaimKind, divergence: Option<Divergence>) -> &'static [Formula] {
        match (kind, divergence) {
            (ClaimKind::Comparison, _) => &[
                Formula::Exact,
                Formula::Mrpo,
                Formula::MrpoCtro,
                Formula::ArithmeticMixture,
                Formula::Reference1,
            ],
            (ClaimKind::Identity, _) => &[Formula::DpoLinear, Formula::DpoTabular],
            (ClaimKind::Exact, Some(Divergence::Fkl)) => &[Formula::Implicit],
            (ClaimKind::Exact, Some(_)) => &[Formula::Geometric, Formula::Arithmetic],
            // Neighbouring papers' checks (`claims::external`) state no divergence.
            (ClaimKind::Exact, None) => &[
                Formula::Geometric,
                Formula::Arithmetic,
                Formula::BestOfNKlBound,
                Formula::BestOfNKlEquality,
                Formula::BestOfNKlCap,
                Formula::BestOfNWinRate,
                Formula::BestOfNRklReward,
                Formula::IpoClosedForm,
                Formula::IpoIgnoringReference,
                Formula::IpoTwoActions,
                Formula::IpoD1,
                Formula::DpoD1NoMinimiser,
                Formula::IpoDpoD3,
                Formula::PessimismGreedyFloor,
                Formula::PessimismLcbVanishes,
                Formula::PessimismGreedyVanishes,
                Formula::PessimismUcbVanishes,
            ],
            _ => &[],
        }
    }
}

/// A bound: a product of powers of named quantities (THEORY §4),
///
/// bound(n) = constant * gamma^gamma * C^coverage * e^(exp_r_max R_max) * R_max^r_max
///            * ln(|R|/delta)^log_class_over_delta * n^n,
///
/// with C the coverage constant of THEORY §5 and ln|R| = ln M (finite class) or
/// d ln(1 + 2 B n) (linear class, [ours]). Every power defaults to 0.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Bound {
    pub constant: f64,
    #[serde(default)]
    pub gamma: f64,
    #[serde(default)]
    pub coverage: f64,
    #[serde(default)]
    pub exp_r_max: f64,
    #[serde(default)]
    pub r_max: f64,
    #[serde(default)]
    pub log_class_over_delta: f64,
    #[serde(default)]
    pub n: f64,
}

/// The named quantities a bound is evaluated at.
#[derive(Clone, Copy, Debug)]
pub struct BoundInputs {
    pub n: u64,
    pub gamma: f64,
    pub coverage: f64,
    pub r_max: f64,
    pub log_class_size: f64,
    pub delta: f64,
}

impl Bound {
    /// The bound at the given quantities.
    pub fn at(&self, q: BoundInputs) -> f64 {
        // A zero power contributes 1 even where its base is infinite (an uncovered C).
        let pow = |base: f64, p: f64| if p == 0.0 { 1.0 } else { base.powf(p) };
        self.constant
            * pow(q.gamma, self.gamma)
            * pow(q.coverage, self.coverage)
            * (self.exp_r_max * q.r_max).exp()
            * pow(q.r_max, self.r_max)
            * pow(q.log_class_size - q.delta.ln(), self.log_class_over_delta)
            * pow(q.n as f64, self.n)
    }
}

/// One claim.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claim {
    pub id: String,
    /// Where the claim comes from (free text: paper, section, equation; or "our derivation").
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statement: Option<String>,
    #[serde(default)]
    pub kind: ClaimKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub divergence: Option<Divergence>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quantity: Option<Quantity>,
    /// What a rate claim's exponent is in (default n).
    #[serde(default)]
    pub variable: Variable,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claimed_exponent: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tolerance: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound: Option<Bound>,
    /// Rate claims in n: the leading constant the claim asserts, as a multiple of the one
    /// derived from the instance (THEORY §8); 1 = the derived asymptotics. Judged wherever a
    /// prediction exists.
    #[serde(default = "one")]
    pub constant_factor: f64,
    /// For sample-complexity claims: the rate claim whose runs they are judged from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub formula: Option<Formula>,
    /// Random instances of an exact, comparison or identity check.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances: Option<usize>,
    /// Comparison claims: the CTRO clipping eps of MRPO among the comparators of the random
    /// instances (the results use their spec's `options.mrpo_clip_eps`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mrpo_clip_eps: Option<f64>,
    /// Pessimism claims (`claims::external`, docs/theory.md §9.9-9.12): B, the confidence
    /// radius, the reference action, the n grid and the gap floor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pessimism: Option<crate::pessimism::PessimismOptions>,
    /// Which pieces of the claim are the paper's and which are ours.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub provenance: BTreeMap<String, String>,
}

/// A registry: the built-in claims and those of the users' claims files.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registry {
    pub claim: Vec<Claim>,
}

const BUILTIN: &str = include_str!("builtin.toml");

fn one() -> f64 {
    1.0
}

impl Registry {
    /// The built-in registry of THEORY §4.
    pub fn builtin() -> Self {
        let r: Registry = toml::from_str(BUILTIN).expect("the built-in registry parses");
        debug_assert!(r.claim.iter().all(|c| check_claim(c).is_ok()));
        r
    }

    /// The built-in registry plus the claims of `files` (same schema). An id that clashes
    /// with a built-in claim or with an earlier file's is refused, naming both.
    pub fn with_files(files: &[impl AsRef<Path>]) -> Result<Self> {
        let mut r = Registry::builtin();
        let builtin = r.claim.len();
        for f in files {
            let path = f.as_ref();
            let text = crate::fsio::read_text(path)?;
            let user: Registry = toml::from_str(&text).map_err(|e| Error::parse(path, e))?;
            for c in user.claim {
                if let Some(i) = r.claim.iter().position(|b| b.id == c.id) {
                    return Err(Error::invalid(
                        format!("{}: claim id", path.display()),
                        &c.id,
                        if i < builtin {
                            "an id that no built-in claim has (choose another; `--set ID.field=value` changes a built-in claim)".to_string()
                        } else {
                            "an id used once across the claims files".to_string()
                        },
                    ));
                }
                check_claim(&c).map_err(|e| match e {
                    Error::Invalid {
                        field,
                        value,
                        allowed,
                    } => Error::Invalid {
                        field: format!("{}: {field}", path.display()),
                        value,
                        allowed,
                    },
                    other => other,
                })?;
                r.claim.push(c);
            }
        }
        for c in &r.claim {
            if let Some(from) = &c.from {
                if r.get(from).is_none_or(|f| f.kind != ClaimKind::Rate) {
                    return Err(Error::invalid(
                        format!("{}.from", c.id),
                        from,
                        format!("the id of a rate claim: {}", r.ids()),
                    ));
                }
            }
        }
        Ok(r)
    }

    /// Keeps only the claims `ids` (`mrkl check --claim`), refusing an unknown id; returns
    /// the ids a spec must name to be needed by them: the kept claims and the rate claims
    /// their sample-complexity claims follow from.
    pub fn select(&mut self, ids: &[String]) -> Result<Vec<String>> {
        let mut needed = vec![];
        for id in ids {
            let c = self.get(id).ok_or_else(|| {
                Error::invalid(
                    "--claim",
                    id,
                    format!("a registered claim id: {}", self.ids()),
                )
            })?;
            needed.push(id.clone());
            needed.extend(c.from.clone());
        }
        self.claim.retain(|c| ids.contains(&c.id));
        Ok(needed)
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

    /// Whether `key` addresses a claim (`ID.field...` for a registered ID).
    pub fn addresses(&self, key: &str) -> bool {
        self.claim
            .iter()
            .any(|c| key.starts_with(&format!("{}.", c.id)))
    }

    /// Applies an override `ID.field[.sub]=value` (e.g. `T5.2.claimed_exponent=-1.5`,
    /// `T6.2.bound.constant=1.6e-5`, `T5.1.formula=arithmetic`). Claim ids contain dots, so
    /// the longest id that prefixes the key wins. A rejected override changes nothing.
    pub fn set(&mut self, key: &str, value: &str) -> Result<()> {
        let idx = (0..self.claim.len())
            .filter(|&i| key.starts_with(&format!("{}.", self.claim[i].id)))
            .max_by_key(|&i| self.claim[i].id.len())
            .ok_or_else(|| {
                Error::invalid(
                    "--set",
                    key,
                    format!("ID.field=value with ID one of {}", self.ids()),
                )
            })?;
        let field = &key[self.claim[idx].id.len() + 1..];
        let mut v = toml::Value::try_from(&self.claim[idx]).expect("claims serialise");
        // Optional fields absent from the entry cannot be set: they do not apply to this claim.
        overrides::set(
            &mut v,
            &field.split('.').collect::<Vec<_>>(),
            key,
            value,
            Missing::Refuse,
        )?;
        let current = &self.claim[idx];
        let claim: Claim = v.try_into().map_err(|e: toml::de::Error| {
            let allowed = Formula::allowed(current.kind, current.divergence);
            let message = if field == "formula" && !allowed.is_empty() {
                format!(
                    "one of {}",
                    allowed
                        .iter()
                        .map(|a| a.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            } else {
                e.message().to_string()
            };
            Error::invalid(format!("--set {key}"), value, message)
        })?;
        check_claim(&claim)?;
        self.claim[idx] = claim;
        Ok(())
    }
}

/// The checks every claim passes, built-in or user-written.
fn check_claim(c: &Claim) -> Result<()> {
    let f = |field: &str| format!("{}.{field}", c.id);
    if c.id.is_empty()
        || !c
            .id
            .chars()
            .all(|ch| ch.is_ascii_alphanumeric() || "._-".contains(ch))
    {
        return Err(Error::invalid(
            "claim id",
            format!("{:?}", c.id),
            "letters, digits, `.`, `_` and `-`",
        ));
    }
    if let Some(t) = c.tolerance {
        if !(t.is_finite() && (0.0..=2.0).contains(&t)) {
            return Err(Error::invalid(f("tolerance"), t, "a number in [0, 2]"));
        }
    }
    if let Some(e) = c.claimed_exponent {
        if !(e.is_finite() && e.abs() <= 10.0) {
            return Err(Error::invalid(
                f("claimed_exponent"),
                e,
                "a number in [-10, 10]",
            ));
        }
    }
    if matches!(c.kind, ClaimKind::Rate | ClaimKind::SampleComplexity)
        && (c.claimed_exponent.is_none() || c.tolerance.is_none())
    {
        return Err(Error::invalid(
            f("claimed_exponent"),
            "missing",
            "a rate or sample-complexity claim states claimed_exponent and tolerance",
        ));
    }
    if c.kind == ClaimKind::SampleComplexity && c.from.is_none() {
        return Err(Error::invalid(
            f("from"),
            "missing",
            "the id of the rate claim whose runs judge it",
        ));
    }
    if let Some(b) = &c.bound {
        if !(b.constant.is_finite() && b.constant > 0.0) {
            return Err(Error::invalid(
                f("bound.constant"),
                b.constant,
                "a finite number > 0",
            ));
        }
        for (name, p) in [
            ("gamma", b.gamma),
            ("coverage", b.coverage),
            ("exp_r_max", b.exp_r_max),
            ("r_max", b.r_max),
            ("log_class_over_delta", b.log_class_over_delta),
            ("n", b.n),
        ] {
            if !(p.is_finite() && p.abs() <= 10.0) {
                return Err(Error::invalid(
                    f(&format!("bound.{name}")),
                    p,
                    "a power in [-10, 10]",
                ));
            }
        }
        if c.variable == Variable::Gamma {
            return Err(Error::invalid(
                f("bound"),
                "a bound",
                "no bound on a claim in gamma (bounds are checked per n)",
            ));
        }
    }
    let allowed = Formula::allowed(c.kind, c.divergence);
    match c.formula {
        Some(formula) if !allowed.contains(&formula) => {
            return Err(Error::invalid(
                f("formula"),
                formula.name(),
                if allowed.is_empty() {
                    "no formula: this kind of claim has none".to_string()
                } else {
                    format!(
                        "one of {}",
                        allowed
                            .iter()
                            .map(|a| a.name())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                },
            ));
        }
        None if !allowed.is_empty() => {
            return Err(Error::invalid(
                f("formula"),
                "missing",
                "the formula the check asserts",
            ));
        }
        _ => {}
    }
    if !(c.constant_factor.is_finite() && c.constant_factor > 0.0) {
        return Err(Error::invalid(
            f("constant_factor"),
            c.constant_factor,
            "a finite number > 0",
        ));
    }
    if let Some(e) = c.mrpo_clip_eps {
        if !(e.is_finite() && (0.0..1.0).contains(&e)) {
            return Err(Error::invalid(f("mrpo_clip_eps"), e, "a number in [0, 1)"));
        }
    }
    if let Some(p) = &c.pessimism {
        if let Some((field, value, allowed)) = p.problem() {
            return Err(Error::invalid(f(field), value, allowed));
        }
    }
    let pessimism_formula = matches!(
        c.formula,
        Some(
            Formula::PessimismGreedyFloor
                | Formula::PessimismLcbVanishes
                | Formula::PessimismGreedyVanishes
                | Formula::PessimismUcbVanishes
        )
    );
    if pessimism_formula != c.pessimism.is_some() {
        return Err(Error::invalid(
            f("pessimism"),
            if c.pessimism.is_some() {
                "a table"
            } else {
                "missing"
            },
            "a `pessimism` table exactly on the claims whose formula is pessimism_*",
        ));
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

/// Checks that every claim a spec names is registered, is measured by specs, matches the
/// spec's divergence and quantity, and that the spec can support a verdict (>= 4 sample
/// sizes for a rate in n, >= 3 fixed gammas for a rate in gamma, >= 3 cells for weights).
pub fn validate_specs<'a>(
    registry: &Registry,
    specs: impl Iterator<Item = &'a Spec>,
) -> Result<()> {
    for s in specs {
        for id in s.claims() {
            let field = format!("{}: claims", s.name());
            let claim = registry.get(id).ok_or_else(|| {
                Error::invalid(
                    &field,
                    id,
                    format!(
                        "a registered claim id (built in, or from a --claims file): {}",
                        registry.ids()
                    ),
                )
            })?;
            if !matches!(
                claim.kind,
                ClaimKind::Rate | ClaimKind::Comparison | ClaimKind::Weights
            ) {
                return Err(Error::invalid(
                    &field,
                    id,
                    "a rate, comparison or weights claim (sample-complexity, exact and identity claims are not named by specs)",
                ));
            }
            if claim.kind == ClaimKind::Weights && s.cells().len() < 3 {
                return Err(Error::invalid(
                    format!("{}: sweep", s.name()),
                    s.cells().len(),
                    format!("a weight sweep of at least 3 cells (claim {id} compares alphas)"),
                ));
            }
            if let Some(d) = claim.divergence {
                if d != s.divergence() {
                    return Err(Error::invalid(
                        format!("{}: experiment.divergence", s.name()),
                        s.divergence().name(),
                        format!("{} (claim {id})", d.name()),
                    ));
                }
            }
            if let Some(q) = claim.quantity {
                if q != s.quantity() {
                    return Err(Error::invalid(
                        format!("{}: experiment.quantity", s.name()),
                        s.quantity().name(),
                        format!("{} (claim {id})", q.name()),
                    ));
                }
            }
            if claim.kind == ClaimKind::Rate {
                match claim.variable {
                    Variable::N if s.ns().len() < 4 => {
                        return Err(Error::invalid(
                            format!("{}: experiment.n (levels)", s.name()),
                            s.ns().len(),
                            format!("at least 4 sample sizes to support a verdict (claim {id})"),
                        ));
                    }
                    Variable::Gamma => {
                        let fixed = s
                            .cells()
                            .iter()
                            .filter(|c| matches!(c.gamma, GammaRule::Fixed(_)))
                            .count();
                        let same_weights =
                            s.cells().iter().all(|c| c.weights == s.cells()[0].weights);
                        if fixed < 3 || fixed != s.cells().len() || !same_weights {
                            return Err(Error::invalid(
                                format!("{}: sweep", s.name()),
                                format!("{} cells", s.cells().len()),
                                format!(
                                    "a sweep.gamma of at least 3 fixed gammas at one weight vector (claim {id} is a rate in gamma)"
                                ),
                            ));
                        }
                    }
                    Variable::N => {}
                }
            }
        }
    }
    Ok(())
}
