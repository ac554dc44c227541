//! Contextual bandit instances (THEORY §1-§2): finite contexts X with distribution rho,
//! finite responses Y, K reference policies, and a true reward from the `linear` or the
//! `finite` class. Instances come from a seeded generator or from a JSON file; either way
//! they pass through [`RawInstance::check`] once and are trusted afterwards.
//!
//! Layout: every table over X x Y is a flat `Vec<f64>` indexed by `x * responses + y`.

use crate::error::{Error, Result};
use crate::numerics::log_sum_exp;
use rand::Rng;
use rand_distr::{Distribution, Gamma, StandardNormal};
use serde::{Deserialize, Serialize};

/// Tolerance on "sums to one" and on the norm bounds of a user-supplied instance.
pub const SIMPLEX_TOLERANCE: f64 = 1e-9;

/// A checked instance.
#[derive(Clone, Debug, PartialEq)]
pub struct Instance {
    pub contexts: usize,
    pub responses: usize,
    /// rho(x), sums to one.
    pub rho: Vec<f64>,
    /// references[i][x * responses + y] = pi_i(y|x); each row sums to one, zeros allowed.
    pub references: Vec<Vec<f64>>,
    pub reward: RewardModel,
}

/// The reward class and the true reward within it (THEORY §2).
#[derive(Clone, Debug, PartialEq)]
pub enum RewardModel {
    /// r_theta(x,y) = <theta, phi(x,y)>, ||phi|| <= 1, ||theta|| <= bound = R_max.
    Linear(LinearReward),
    /// M candidate tables, one of which (`truth`) is r*.
    Finite(FiniteReward),
    /// A bare reward table: usable by `mrkl solve`, not by experiments (no class to fit).
    Table(Vec<f64>),
}

/// The linear class.
#[derive(Clone, Debug, PartialEq)]
pub struct LinearReward {
    pub dim: usize,
    /// features[(x * responses + y) * dim + k] = phi_k(x,y).
    pub features: Vec<f64>,
    pub theta_star: Vec<f64>,
    pub bound: f64,
}

/// The finite class.
#[derive(Clone, Debug, PartialEq)]
pub struct FiniteReward {
    pub candidates: Vec<Vec<f64>>,
    pub truth: usize,
    pub r_max: f64,
}

impl LinearReward {
    /// The table of r_theta(x,y) = <theta, phi(x,y)>.
    pub fn table(&self, theta: &[f64], out: &mut [f64]) {
        for (o, phi) in out.iter_mut().zip(self.features.chunks_exact(self.dim)) {
            *o = phi.iter().zip(theta).map(|(a, b)| a * b).sum();
        }
    }
}

impl Instance {
    /// Number of reference policies K.
    pub fn k(&self) -> usize {
        self.references.len()
    }

    /// Number of cells |X| * |Y|.
    pub fn cells(&self) -> usize {
        self.contexts * self.responses
    }

    /// The true reward table r*(x,y).
    pub fn true_reward(&self) -> Vec<f64> {
        match &self.reward {
            RewardModel::Linear(l) => {
                let mut out = vec![0.0; self.cells()];
                l.table(&l.theta_star, &mut out);
                out
            }
            RewardModel::Finite(f) => f.candidates[f.truth].clone(),
            RewardModel::Table(t) => t.clone(),
        }
    }

    /// R_max: the bound B of the linear class, the stated range of the finite class, or
    /// max |r| of a bare table.
    pub fn r_max(&self) -> f64 {
        match &self.reward {
            RewardModel::Linear(l) => l.bound,
            RewardModel::Finite(f) => f.r_max,
            RewardModel::Table(t) => t.iter().fold(0.0, |a, v| a.max(v.abs())),
        }
    }

    /// Short name of the reward class.
    pub fn class_name(&self) -> &'static str {
        match &self.reward {
            RewardModel::Linear(_) => "linear",
            RewardModel::Finite(_) => "finite",
            RewardModel::Table(_) => "table",
        }
    }

    /// Reference i at context x, as a slice over Y.
    pub fn reference(&self, i: usize, x: usize) -> &[f64] {
        &self.references[i][x * self.responses..(x + 1) * self.responses]
    }

    /// Per context, the size of the intersection of the supports of the references with
    /// positive weight: the support of the escort (RKL solution and geometric sampling,
    /// THEORY D4) and of MRPO's unclipped harmonic mean. Responses outside it are dropped.
    pub fn support_sizes(&self, weights: &[f64]) -> Vec<usize> {
        (0..self.contexts)
            .map(|x| {
                (0..self.responses)
                    .filter(|&y| {
                        (0..self.k()).all(|i| weights[i] == 0.0 || self.reference(i, x)[y] > 0.0)
                    })
                    .count()
            })
            .collect()
    }

    /// Contexts at which the references with positive weight share no response (the RKL
    /// solution needs a non-empty intersection of supports, THEORY D4). Empty if none.
    pub fn empty_intersections(&self, weights: &[f64]) -> Vec<usize> {
        let sizes = self.support_sizes(weights);
        (0..self.contexts).filter(|&x| sizes[x] == 0).collect()
    }

    /// The sub-instance of an instance sweep with `draw = "nested"` (docs/theory.md §2, "Instance sweeps"): the
    /// first `count` references, contexts or responses of this (master) instance, so that
    /// its cells differ only in what the parameter removes.
    ///
    /// # Formula
    ///
    /// - references: pi_1..pi_count, unchanged.
    /// - contexts: x < count, with rho(x) / sum_{x' < count} rho(x').
    /// - responses: y < count, each reference renormalised at every context,
    ///   pi_i(y|x) / sum_{y' < count} pi_i(y'|x); features and reward tables restricted.
    ///
    /// `field` names the sweep in the error when a renormalisation is impossible (a reference
    /// or rho with no mass on what is kept) or `count` is outside 1..=the master's size.
    pub fn nested(&self, param: InstanceParam, count: usize, field: &str) -> Result<Instance> {
        let size = match param {
            InstanceParam::References => self.k(),
            InstanceParam::Contexts => self.contexts,
            InstanceParam::Responses => self.responses,
            _ => unreachable!("checked: only references, contexts and responses nest"),
        };
        if count == 0 || count > size {
            return Err(Error::invalid(
                field,
                count,
                format!(
                    "an integer from 1 to the master instance's {} = {size} (draw = \"nested\" takes the first ones)",
                    param.name()
                ),
            ));
        }
        if count == size {
            return Ok(self.clone());
        }
        let (nx, ny) = (self.contexts, self.responses);
        let mut out = self.clone();
        match param {
            InstanceParam::References => out.references.truncate(count),
            InstanceParam::Contexts => {
                let mass: f64 = self.rho[..count].iter().sum();
                if !(mass > 0.0) {
                    return Err(Error::invalid(
                        field,
                        count,
                        "a number of contexts whose rho mass is positive",
                    ));
                }
                out.contexts = count;
                out.rho = self.rho[..count].iter().map(|r| r / mass).collect();
                for r in out.references.iter_mut() {
                    r.truncate(count * ny);
                }
                match &mut out.reward {
                    RewardModel::Linear(l) => l.features.truncate(count * ny * l.dim),
                    RewardModel::Finite(f) => {
                        f.candidates.iter_mut().for_each(|c| c.truncate(count * ny))
                    }
                    RewardModel::Table(t) => t.truncate(count * ny),
                }
            }
            InstanceParam::Responses => {
                let keep = |flat: &[f64], width: usize| -> Vec<f64> {
                    (0..nx)
                        .flat_map(|x| {
                            flat[x * ny * width..(x * ny + count) * width]
                                .iter()
                                .copied()
                        })
                        .collect()
                };
                out.responses = count;
                for (i, r) in out.references.iter_mut().enumerate() {
                    let mut kept = keep(&self.references[i], 1);
                    for (x, row) in kept.chunks_exact_mut(count).enumerate() {
                        let s: f64 = row.iter().sum();
                        if !(s > 0.0) {
                            return Err(Error::invalid(
                                field,
                                count,
                                format!(
                                    "a number of responses on which every reference has mass (reference {} has none of the first {count} at context {x})",
                                    i + 1
                                ),
                            ));
                        }
                        row.iter_mut().for_each(|v| *v /= s);
                    }
                    *r = kept;
                }
                match &mut out.reward {
                    RewardModel::Linear(l) => l.features = keep(&l.features, l.dim),
                    RewardModel::Finite(f) => f.candidates.iter_mut().for_each(|c| *c = keep(c, 1)),
                    RewardModel::Table(t) => *t = keep(t, 1),
                }
            }
            _ => unreachable!(),
        }
        Ok(out)
    }

    /// The JSON form of this instance (the same format [`RawInstance`] reads).
    pub fn to_raw(&self) -> RawInstance {
        let ny = self.responses;
        let nested = |flat: &[f64]| {
            flat.chunks_exact(ny)
                .map(<[f64]>::to_vec)
                .collect::<Vec<_>>()
        };
        let reward = match &self.reward {
            RewardModel::Linear(l) => RawReward::Linear {
                features: l
                    .features
                    .chunks_exact(ny * l.dim)
                    .map(|row| row.chunks_exact(l.dim).map(<[f64]>::to_vec).collect())
                    .collect(),
                theta: l.theta_star.clone(),
                bound: l.bound,
            },
            RewardModel::Finite(f) => RawReward::Finite {
                candidates: f.candidates.iter().map(|c| nested(c)).collect(),
                truth: f.truth,
                r_max: Some(f.r_max),
            },
            RewardModel::Table(t) => RawReward::Table { values: nested(t) },
        };
        RawInstance {
            rho: Some(self.rho.clone()),
            references: Some(self.references.iter().map(|r| nested(r)).collect()),
            reference_logits: None,
            reward,
        }
    }
}

/// An instance as written in JSON: `references[i][x][y]` (or `reference_logits`),
/// optional `rho[x]` (uniform if absent) and a `reward` with a `class`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInstance {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rho: Option<Vec<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub references: Option<Vec<Vec<Vec<f64>>>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference_logits: Option<Vec<Vec<Vec<f64>>>>,
    pub reward: RawReward,
}

/// The reward part of a [`RawInstance`].
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "class", rename_all = "snake_case", deny_unknown_fields)]
pub enum RawReward {
    /// `features[x][y][k]`, `theta` (the true parameter), `bound` B.
    Linear {
        features: Vec<Vec<Vec<f64>>>,
        theta: Vec<f64>,
        bound: f64,
    },
    /// `candidates[j][x][y]`, `truth` = index of r*, optional `r_max` (default max |r|).
    Finite {
        candidates: Vec<Vec<Vec<f64>>>,
        truth: usize,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        r_max: Option<f64>,
    },
    /// `values[x][y]`: a bare reward table (for `mrkl solve` only).
    Table { values: Vec<Vec<f64>> },
}

fn finite(field: &str, v: f64) -> Result<f64> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(Error::invalid(field, v, "a finite number"))
    }
}

/// Checks a nested table `t[x][y]` has shape (nx, ny) and finite entries; returns it flat.
fn flat_table(field: &str, t: &[Vec<f64>], nx: usize, ny: usize) -> Result<Vec<f64>> {
    if t.len() != nx {
        return Err(Error::invalid(
            format!("{field} (contexts)"),
            t.len(),
            format!("{nx} rows, one per context"),
        ));
    }
    let mut out = Vec::with_capacity(nx * ny);
    for (x, row) in t.iter().enumerate() {
        if row.len() != ny {
            return Err(Error::invalid(
                format!("{field}[{x}] (responses)"),
                row.len(),
                format!("{ny} entries, one per response"),
            ));
        }
        for (y, &v) in row.iter().enumerate() {
            out.push(finite(&format!("{field}[{x}][{y}]"), v)?);
        }
    }
    Ok(out)
}

/// Checks that `p` is a probability vector (entries >= 0, sum within [`SIMPLEX_TOLERANCE`]
/// of 1) and rescales it to sum to one exactly up to rounding.
pub fn check_simplex(field: &str, p: &mut [f64]) -> Result<()> {
    for (j, &v) in p.iter().enumerate() {
        if !(v >= 0.0 && v.is_finite()) {
            return Err(Error::invalid(
                format!("{field}[{j}]"),
                v,
                "a probability, >= 0",
            ));
        }
    }
    let s: f64 = p.iter().sum();
    if (s - 1.0).abs() > SIMPLEX_TOLERANCE {
        return Err(Error::invalid(
            format!("{field} (sum)"),
            s,
            format!("entries summing to 1 (within {SIMPLEX_TOLERANCE:e})"),
        ));
    }
    p.iter_mut().for_each(|v| *v /= s);
    Ok(())
}

impl RawInstance {
    /// Validates shapes, probabilities and norm bounds; the one gate into [`Instance`].
    pub fn check(self) -> Result<Instance> {
        let refs: Vec<Vec<Vec<f64>>> = match (self.references, self.reference_logits) {
            (Some(_), Some(_)) => {
                return Err(Error::invalid(
                    "references",
                    "given together with reference_logits",
                    "exactly one of references, reference_logits",
                ));
            }
            (None, None) => {
                return Err(Error::invalid(
                    "references",
                    "missing",
                    "references[i][x][y] or reference_logits[i][x][y]",
                ));
            }
            (Some(p), None) => p,
            (None, Some(logits)) => {
                let mut out = logits;
                for (i, r) in out.iter_mut().enumerate() {
                    for (x, row) in r.iter_mut().enumerate() {
                        for (y, v) in row.iter().enumerate() {
                            finite(&format!("reference_logits[{i}][{x}][{y}]"), *v)?;
                        }
                        let z = log_sum_exp(row);
                        row.iter_mut().for_each(|v| *v = (*v - z).exp());
                    }
                }
                out
            }
        };
        let k = refs.len();
        if k == 0 {
            return Err(Error::invalid(
                "references",
                "[]",
                "at least one reference policy",
            ));
        }
        let nx = refs[0].len();
        if nx == 0 {
            return Err(Error::invalid(
                "references[0]",
                "[]",
                "at least one context",
            ));
        }
        let ny = refs[0][0].len();
        if ny == 0 {
            return Err(Error::invalid(
                "references[0][0]",
                "[]",
                "at least one response",
            ));
        }
        let mut references = Vec::with_capacity(k);
        for (i, r) in refs.iter().enumerate() {
            let mut flat = flat_table(&format!("references[{i}]"), r, nx, ny)?;
            for x in 0..nx {
                check_simplex(
                    &format!("references[{i}][{x}]"),
                    &mut flat[x * ny..(x + 1) * ny],
                )?;
            }
            references.push(flat);
        }
        let mut rho = self.rho.unwrap_or_else(|| vec![1.0 / nx as f64; nx]);
        if rho.len() != nx {
            return Err(Error::invalid(
                "rho (length)",
                rho.len(),
                format!("{nx}, one per context"),
            ));
        }
        check_simplex("rho", &mut rho)?;
        let reward = match self.reward {
            RawReward::Linear {
                features,
                theta,
                bound,
            } => {
                let d = theta.len();
                if d == 0 {
                    return Err(Error::invalid(
                        "reward.theta",
                        "[]",
                        "a vector of dimension >= 1",
                    ));
                }
                if !(bound > 0.0 && bound.is_finite()) {
                    return Err(Error::invalid("reward.bound", bound, "a finite number > 0"));
                }
                for (j, &t) in theta.iter().enumerate() {
                    finite(&format!("reward.theta[{j}]"), t)?;
                }
                let norm = theta.iter().map(|t| t * t).sum::<f64>().sqrt();
                if norm > bound * (1.0 + SIMPLEX_TOLERANCE) {
                    return Err(Error::invalid(
                        "reward.theta (norm)",
                        norm,
                        format!("||theta|| <= bound = {bound}"),
                    ));
                }
                if features.len() != nx {
                    return Err(Error::invalid(
                        "reward.features (contexts)",
                        features.len(),
                        format!("{nx} rows, one per context"),
                    ));
                }
                let mut flat = Vec::with_capacity(nx * ny * d);
                for (x, row) in features.iter().enumerate() {
                    if row.len() != ny {
                        return Err(Error::invalid(
                            format!("reward.features[{x}] (responses)"),
                            row.len(),
                            format!("{ny}"),
                        ));
                    }
                    for (y, phi) in row.iter().enumerate() {
                        let field = format!("reward.features[{x}][{y}]");
                        if phi.len() != d {
                            return Err(Error::invalid(
                                format!("{field} (dimension)"),
                                phi.len(),
                                format!("{d} = the dimension of theta"),
                            ));
                        }
                        for &v in phi {
                            finite(&field, v)?;
                        }
                        let n = phi.iter().map(|t| t * t).sum::<f64>().sqrt();
                        if n > 1.0 + SIMPLEX_TOLERANCE {
                            return Err(Error::invalid(
                                format!("{field} (norm)"),
                                n,
                                "||phi(x,y)|| <= 1",
                            ));
                        }
                        flat.extend_from_slice(phi);
                    }
                }
                RewardModel::Linear(LinearReward {
                    dim: d,
                    features: flat,
                    theta_star: theta,
                    bound,
                })
            }
            RawReward::Finite {
                candidates,
                truth,
                r_max,
            } => {
                if candidates.len() < 2 {
                    return Err(Error::invalid(
                        "reward.candidates (count)",
                        candidates.len(),
                        "at least 2 candidate rewards",
                    ));
                }
                if truth >= candidates.len() {
                    return Err(Error::invalid(
                        "reward.truth",
                        truth,
                        format!("an index below {}", candidates.len()),
                    ));
                }
                let cands = candidates
                    .iter()
                    .enumerate()
                    .map(|(j, c)| flat_table(&format!("reward.candidates[{j}]"), c, nx, ny))
                    .collect::<Result<Vec<_>>>()?;
                let largest = cands.iter().flatten().fold(0.0f64, |a, v| a.max(v.abs()));
                let r_max = match r_max {
                    None => largest,
                    Some(r) if r.is_finite() && r >= largest && r > 0.0 => r,
                    Some(r) => {
                        return Err(Error::invalid(
                            "reward.r_max",
                            r,
                            format!("a finite number >= max |r| = {largest} and > 0"),
                        ));
                    }
                };
                if r_max <= 0.0 {
                    return Err(Error::invalid(
                        "reward.candidates",
                        "all zero",
                        "candidates with some non-zero reward",
                    ));
                }
                RewardModel::Finite(FiniteReward {
                    candidates: cands,
                    truth,
                    r_max,
                })
            }
            RawReward::Table { values } => {
                RewardModel::Table(flat_table("reward.values", &values, nx, ny)?)
            }
        };
        Ok(Instance {
            contexts: nx,
            responses: ny,
            rho,
            references,
            reward,
        })
    }
}

/// An instance parameter that a sweep can set (`[sweep]` of a spec; docs/theory.md §2, "Instance sweeps").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstanceParam {
    References,
    Contexts,
    Responses,
    ZeroFraction,
    Concentration,
    Dim,
}

impl InstanceParam {
    /// Every parameter, in the order of the spec's `[sweep]` keys.
    pub const ALL: [InstanceParam; 6] = [
        InstanceParam::References,
        InstanceParam::Contexts,
        InstanceParam::Responses,
        InstanceParam::ZeroFraction,
        InstanceParam::Concentration,
        InstanceParam::Dim,
    ];

    /// Its key in `[sweep]`, in cell labels and in CSV columns.
    pub fn name(self) -> &'static str {
        match self {
            InstanceParam::References => "references",
            InstanceParam::Contexts => "contexts",
            InstanceParam::Responses => "responses",
            InstanceParam::ZeroFraction => "zero_fraction",
            InstanceParam::Concentration => "concentration",
            InstanceParam::Dim => "dim",
        }
    }

    /// Whether a sub-instance of one master instance can set it ([`Instance::nested`]).
    pub fn nests(self) -> bool {
        matches!(
            self,
            InstanceParam::References | InstanceParam::Contexts | InstanceParam::Responses
        )
    }

    /// Whether its values are counts (integers) rather than real numbers.
    pub fn is_count(self) -> bool {
        !matches!(
            self,
            InstanceParam::ZeroFraction | InstanceParam::Concentration
        )
    }
}

impl GeneratorParams {
    /// These parameters with `param` set to `value` (an instance sweep with
    /// `draw = "redraw"`); `None` for `dim` when the reward class is not linear.
    pub fn with(&self, param: InstanceParam, value: f64) -> Option<GeneratorParams> {
        let mut p = self.clone();
        match param {
            InstanceParam::References => p.references = value as usize,
            InstanceParam::Contexts => p.contexts = value as usize,
            InstanceParam::Responses => p.responses = value as usize,
            InstanceParam::ZeroFraction => p.zero_fraction = value,
            InstanceParam::Concentration => p.concentration = value,
            InstanceParam::Dim => match &mut p.reward {
                GeneratorReward::Linear { dim, .. } => *dim = value as usize,
                GeneratorReward::Finite { .. } => return None,
            },
        }
        Some(p)
    }
}

/// Parameters of the random instance generator (already checked by the spec).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GeneratorParams {
    pub contexts: usize,
    pub responses: usize,
    pub references: usize,
    /// Dirichlet concentration of each reference pi_i(.|x) (small = peaked references).
    pub concentration: f64,
    /// Probability that a reference drops a response from its support (a response shared
    /// by all references is always kept, so intersections are never empty).
    pub zero_fraction: f64,
    /// Dirichlet concentration of rho; `None` = uniform rho.
    pub context_concentration: Option<f64>,
    pub reward: GeneratorReward,
    /// Coverage pattern of the references over the good responses (MR experiments).
    #[serde(default, skip_serializing_if = "Family::is_plain")]
    pub family: Family,
}

/// How the references treat the good responses (the top `good_fraction` of responses by r*
/// at each context, at least one) or the bad ones (the bottom `bad_fraction`). Applied after
/// the Dirichlet draw, without randomness, by multiplying some of a reference's
/// probabilities by `suppression` (or `boost`) and renormalising. [ours]
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Family {
    /// The references as drawn.
    #[default]
    Plain,
    /// Reference 1 covers the good responses, reference 2 does not (others as drawn).
    OneCovers {
        good_fraction: f64,
        suppression: f64,
    },
    /// Each of references 1 and 2 covers half of the good responses (alternately by rank).
    BothPartial {
        good_fraction: f64,
        suppression: f64,
    },
    /// References 1 and 2 make different mistakes: of the bad responses (the bottom
    /// `bad_fraction` by r*), reference 1 multiplies those of even rank from the bottom
    /// (the worst, the third worst, ...) by `boost`, reference 2 those of odd rank.
    DistinctErrors { bad_fraction: f64, boost: f64 },
}

impl Family {
    pub fn is_plain(&self) -> bool {
        *self == Family::Plain
    }

    /// Applies the family to `references` given the true reward table (then renormalises
    /// references 1 and 2).
    fn apply(&self, references: &mut [Vec<f64>], r_star: &[f64], ny: usize) {
        // (fraction of responses touched, counted from the top of r* or from the bottom,
        // the multiplier, which reference it hits at a given rank among those touched).
        let (fraction, from_top, factor, victim): (f64, bool, f64, fn(usize) -> usize) = match *self
        {
            Family::Plain => return,
            // Reference 2 misses every good response.
            Family::OneCovers {
                good_fraction,
                suppression,
            } => (good_fraction, true, suppression, |_| 1),
            // Reference 1 misses the good responses of odd rank, reference 2 the others.
            Family::BothPartial {
                good_fraction,
                suppression,
            } => (good_fraction, true, suppression, |rank| 1 - rank % 2),
            // Reference 1 boosts the worst, third worst, ...; reference 2 the others.
            Family::DistinctErrors {
                bad_fraction,
                boost,
            } => (bad_fraction, false, boost, |rank| rank % 2),
        };
        let count = ((fraction * ny as f64).ceil() as usize).clamp(1, ny);
        for (x, r) in r_star.chunks_exact(ny).enumerate() {
            let mut order: Vec<usize> = (0..ny).collect();
            if from_top {
                order.sort_by(|&a, &b| r[b].total_cmp(&r[a]).then(a.cmp(&b)));
            } else {
                order.sort_by(|&a, &b| r[a].total_cmp(&r[b]).then(a.cmp(&b)));
            }
            for (rank, &y) in order[..count].iter().enumerate() {
                references[victim(rank)][x * ny + y] *= factor;
            }
            for reference in references.iter_mut().take(2) {
                let row = &mut reference[x * ny..(x + 1) * ny];
                let s: f64 = row.iter().sum();
                row.iter_mut().for_each(|v| *v /= s);
            }
        }
    }
}

/// Reward part of [`GeneratorParams`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "class", rename_all = "snake_case")]
pub enum GeneratorReward {
    /// phi uniform on the unit sphere of R^dim, theta* = theta_norm * bound * (unit direction).
    Linear {
        dim: usize,
        bound: f64,
        theta_norm: f64,
    },
    /// r* uniform in [-r_max, r_max] per cell; candidate j != truth is (1 - spread) r* + spread u_j
    /// with u_j uniform in [-r_max, r_max] (spread 1: independent tables; small: hard to tell apart).
    Finite {
        candidates: usize,
        r_max: f64,
        spread: f64,
    },
}

fn dirichlet<R: Rng + ?Sized>(rng: &mut R, a: f64, out: &mut [f64]) {
    let g = Gamma::new(a, 1.0).expect("concentration checked > 0");
    loop {
        out.iter_mut().for_each(|v| *v = g.sample(rng));
        let s: f64 = out.iter().sum();
        if s > 0.0 && s.is_finite() {
            out.iter_mut().for_each(|v| *v /= s);
            return;
        }
    }
}

fn unit_vector<R: Rng + ?Sized>(rng: &mut R, out: &mut [f64]) {
    loop {
        out.iter_mut().for_each(|v| *v = StandardNormal.sample(rng));
        let n = out.iter().map(|v| v * v).sum::<f64>().sqrt();
        if n > 1e-12 {
            out.iter_mut().for_each(|v| *v /= n);
            return;
        }
    }
}

/// Draws an instance from the generator with the given stream.
pub fn generate<R: Rng + ?Sized>(p: &GeneratorParams, rng: &mut R) -> Instance {
    let (nx, ny, k) = (p.contexts, p.responses, p.references);
    let mut rho = vec![1.0 / nx as f64; nx];
    if let Some(a) = p.context_concentration {
        dirichlet(rng, a, &mut rho);
    }
    let mut references = vec![vec![0.0; nx * ny]; k];
    let mut row = vec![0.0; ny];
    for x in 0..nx {
        let shared = (rng.next_u64() % ny as u64) as usize;
        for r in references.iter_mut() {
            dirichlet(rng, p.concentration, &mut row);
            if p.zero_fraction > 0.0 {
                for (y, v) in row.iter_mut().enumerate() {
                    let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
                    if y != shared && u < p.zero_fraction {
                        *v = 0.0;
                    }
                }
                if row[shared] == 0.0 {
                    row[shared] = f64::MIN_POSITIVE;
                }
                let s: f64 = row.iter().sum();
                row.iter_mut().for_each(|v| *v /= s);
            }
            r[x * ny..(x + 1) * ny].copy_from_slice(&row);
        }
    }
    let uniform = |rng: &mut R, r: f64| {
        r * (2.0 * ((rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64) - 1.0)
    };
    let reward = match p.reward {
        GeneratorReward::Linear {
            dim,
            bound,
            theta_norm,
        } => {
            let mut features = vec![0.0; nx * ny * dim];
            for phi in features.chunks_exact_mut(dim) {
                unit_vector(rng, phi);
            }
            let mut theta = vec![0.0; dim];
            unit_vector(rng, &mut theta);
            theta.iter_mut().for_each(|t| *t *= theta_norm * bound);
            RewardModel::Linear(LinearReward {
                dim,
                features,
                theta_star: theta,
                bound,
            })
        }
        GeneratorReward::Finite {
            candidates,
            r_max,
            spread,
        } => {
            let truth = 0;
            let star: Vec<f64> = (0..nx * ny).map(|_| uniform(rng, r_max)).collect();
            let mut cands = vec![star.clone()];
            for _ in 1..candidates {
                cands.push(
                    star.iter()
                        .map(|&s| (1.0 - spread) * s + spread * uniform(rng, r_max))
                        .collect(),
                );
            }
            RewardModel::Finite(FiniteReward {
                candidates: cands,
                truth,
                r_max,
            })
        }
    };
    let mut inst = Instance {
        contexts: nx,
        responses: ny,
        rho,
        references,
        reward,
    };
    let r_star = inst.true_reward();
    p.family.apply(&mut inst.references, &r_star, ny);
    inst
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::streams::stream;

    fn params(reward: GeneratorReward) -> GeneratorParams {
        GeneratorParams {
            contexts: 4,
            responses: 5,
            references: 3,
            concentration: 0.5,
            zero_fraction: 0.4,
            context_concentration: Some(1.0),
            reward,
            family: Default::default(),
        }
    }

    #[test]
    fn generated_instances_pass_their_own_check_and_round_trip() {
        for reward in [
            GeneratorReward::Linear {
                dim: 3,
                bound: 2.0,
                theta_norm: 1.0,
            },
            GeneratorReward::Finite {
                candidates: 5,
                r_max: 1.5,
                spread: 0.3,
            },
        ] {
            let inst = generate(&params(reward), &mut stream(1, "t", 0));
            assert!(inst.empty_intersections(&[0.2, 0.3, 0.5]).is_empty());
            let back = inst.to_raw().check().unwrap();
            assert_eq!(back.contexts, 4);
            for (a, b) in back
                .references
                .iter()
                .flatten()
                .zip(inst.references.iter().flatten())
            {
                assert!((a - b).abs() < 1e-15);
            }
            assert!(
                inst.true_reward()
                    .iter()
                    .all(|r| r.abs() <= inst.r_max() + 1e-12)
            );
        }
    }

    #[test]
    fn support_sizes_count_the_responses_every_weighted_reference_covers() {
        let mut inst = generate(
            &params(GeneratorReward::Linear {
                dim: 2,
                bound: 1.0,
                theta_norm: 1.0,
            }),
            &mut stream(3, "t", 0),
        );
        // Context 0 by hand: reference 1 covers {0, 1}, reference 2 covers {1, 2},
        // reference 3 everything.
        inst.references[0][..5].copy_from_slice(&[0.5, 0.5, 0.0, 0.0, 0.0]);
        inst.references[1][..5].copy_from_slice(&[0.0, 0.5, 0.5, 0.0, 0.0]);
        inst.references[2][..5].copy_from_slice(&[0.2; 5]);
        assert_eq!(inst.support_sizes(&[0.5, 0.5, 0.0])[0], 1);
        assert_eq!(inst.support_sizes(&[1.0, 0.0, 0.0])[0], 2);
        assert_eq!(inst.support_sizes(&[0.0, 0.0, 1.0])[0], 5);
        assert_eq!(inst.support_sizes(&[0.0, 0.9, 0.1])[0], 2);
        inst.references[1][..5].copy_from_slice(&[0.0, 0.0, 0.5, 0.5, 0.0]);
        assert_eq!(inst.support_sizes(&[0.5, 0.5, 0.0])[0], 0);
        assert!(inst.empty_intersections(&[0.5, 0.5, 0.0]).contains(&0));
    }

    #[test]
    fn bad_instances_name_the_field() {
        let inst = generate(
            &params(GeneratorReward::Linear {
                dim: 2,
                bound: 1.0,
                theta_norm: 1.0,
            }),
            &mut stream(2, "t", 0),
        );
        let mut raw = inst.to_raw();
        raw.references.as_mut().unwrap()[1][2][0] = -0.1;
        let e = raw.check().unwrap_err().to_string();
        assert!(
            e.contains("references[1][2][0]") && e.contains("-0.1"),
            "{e}"
        );
        let mut raw = inst.to_raw();
        raw.references.as_mut().unwrap()[0][1][0] += 0.01;
        let e = raw.check().unwrap_err().to_string();
        assert!(e.contains("references[0][1] (sum)"), "{e}");
        let mut raw = inst.to_raw();
        if let RawReward::Linear { theta, .. } = &mut raw.reward {
            theta[0] = 5.0;
        }
        assert!(
            raw.check()
                .unwrap_err()
                .to_string()
                .contains("reward.theta (norm)")
        );
        let mut raw = inst.to_raw();
        raw.rho = Some(vec![1.0]);
        assert!(
            raw.check()
                .unwrap_err()
                .to_string()
                .contains("rho (length)")
        );
    }
}
