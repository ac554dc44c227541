//! The result format: what `results/<spec>/result.json` holds, as Rust types.
//!
//! Every field is typed (no free-form JSON), and the file carries its format version
//! ([`FORMAT`]): reading a file of another version is an error naming both. Analysis
//! (`crate::analysis`) produces a [`ResultFile`]; judging (`crate::claims`) and rendering
//! (`crate::report`, `crate::plot`) only read it.

use crate::error::{Error, Result};
use crate::gap::Quantity;
use crate::instance::Family;
use crate::policy::Divergence;
use crate::preference::SamplerKind;
use crate::spec::{
    Estimator, GammaRule, InstanceOrigin, LogClassSize, RewardRange, SpecRecord, Streams,
};
use crate::statistics::{ExponentEstimate, Summary, TailRule};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The format of `result.json`; the number is bumped on every incompatible change.
pub const FORMAT: &str = "mrkl-result/2";

/// Where a result came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provenance {
    pub mrkl_version: String,
    /// The git commit mrkl was built from, when known (with `-dirty` if the tree had
    /// uncommitted changes).
    pub git_commit: Option<String>,
    /// FNV-1a (hex) of the checked spec and instance as JSON: what resume/merge compare.
    pub spec_hash: String,
    pub seed: u64,
}

/// Summary of the instance a result was measured on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceInfo {
    pub origin: InstanceOrigin,
    pub contexts: usize,
    pub responses: usize,
    pub references: usize,
    pub reward_class: RewardClass,
    pub dim: Option<usize>,
    pub candidates: Option<usize>,
    pub r_max: f64,
    /// FNV-1a (hex) of `instance.json`.
    pub hash: String,
}

/// The reward class of an instance (THEORY §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RewardClass {
    Linear,
    Finite,
    Table,
}

impl RewardClass {
    pub fn name(self) -> &'static str {
        match self {
            RewardClass::Linear => "linear",
            RewardClass::Finite => "finite",
            RewardClass::Table => "table",
        }
    }
}

/// One [ours] choice: its value in this result and what it means.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Choice<T> {
    pub value: T,
    pub meaning: String,
}

/// The instance family, or "file" for an instance read from a file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum FamilyChoice {
    Generated(Family),
    File(String),
}

/// Every choice THEORY.md marks [ours], as it applies to one result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ours {
    pub bootstrap_resamples: Choice<usize>,
    pub ci_level: Choice<f64>,
    pub coverage: Choice<String>,
    /// How a fixed design's shares become counts (fixed designs only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub design_rounding: Option<Choice<String>>,
    pub dpo_dropped_pairs: Choice<String>,
    pub dpo_ridge: Choice<f64>,
    pub estimator: Choice<Estimator>,
    pub gamma: Choice<Vec<GammaRule>>,
    pub gap_floor: Choice<f64>,
    pub instance_family: Choice<FamilyChoice>,
    /// IPO's gauge of the least squares (IPO estimators only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipo_gauge: Option<Choice<String>>,
    /// IPO's tau as a function of the cell's gamma (IPO estimators only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ipo_tau: Option<Choice<String>>,
    pub linear_estimator: Choice<String>,
    pub log_class_size: Choice<LogClassSize>,
    pub mle_tolerance: Choice<f64>,
    pub mrpo_clip_eps: Choice<f64>,
    pub reward_gap: Choice<String>,
    pub reward_range: Choice<RewardRange>,
    pub rounds: Choice<u32>,
    pub sampler: Choice<SamplerKind>,
    pub sampling: Choice<String>,
    pub streams: Choice<Streams>,
    pub tail: Choice<TailRule>,
}

impl Ours {
    /// Every choice as (name, value as compact JSON text), in field order.
    pub fn entries(&self) -> Vec<(String, String)> {
        let mut out = vec![];
        let value = serde_json::to_value(self).expect("choices serialise");
        if let serde_json::Value::Object(map) = value {
            for (k, v) in map {
                out.push((k, v["value"].to_string()));
            }
        }
        out
    }
}

/// Results of one cell of a spec.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CellResult {
    pub label: String,
    pub weights: Vec<f64>,
    pub gamma: GammaRule,
    /// In an instance sweep, the instance parameter this cell sets (docs/theory.md §2,
    /// "Instance sweeps"); its instance is not the master's `instance.json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<crate::spec::InstanceSetting>,
    pub n: Vec<u64>,
    pub gamma_at_n: Vec<f64>,
    pub summaries: Vec<Summary>,
    /// Exponent of the mean gap in n (THEORY §7).
    pub exponent_mean: ExponentEstimate,
    /// Exponent of the (1-delta)-quantile of the gap in n.
    pub exponent_quantile: ExponentEstimate,
    /// Mean Newton iterations of the linear-class MLE at each n (0 for the finite class).
    pub mle_iterations_mean: Vec<f64>,
    /// Fraction of replications whose linear-class MLE sat on the norm ball, at each n.
    pub mle_boundary_fraction: Vec<f64>,
    /// Coverage constant C(nu; mu) of THEORY §5 (nu = escort for RKL, mixture for FKL;
    /// mu = the sampling policy); `None` = infinite.
    pub coverage: Option<f64>,
    /// The escort's support (the responses every reference with positive weight covers),
    /// where the cell uses the escort or MRPO's harmonic mean; responses outside it are
    /// dropped by the RKL solution, geometric sampling and MRPO.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub support: Option<Support>,
    /// True regularised objective (the spec's divergence, this cell's weights and gamma, at
    /// the largest n for a gamma schedule; true reward r*) of the exact policy and, for RKL,
    /// of the comparators of THEORY §6 (`crate::policy::comparator_names`). The plug-in
    /// policy's objective at n is `exact` minus its sub-optimality gap.
    pub comparators: BTreeMap<String, f64>,
    /// The predicted leading term of the mean gap (THEORY §8), and the measured
    /// n^-exponent x mean at every n beside it.
    pub asymptotic: Asymptotic,
    /// Tabular DPO with `options.dpo_ridge = 0` only: the fits without a finite minimiser
    /// and their limiting support (docs/theory.md §6, "No finite minimiser").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub no_minimiser: Option<NoMinimiser>,
    /// The extra series the spec records (`Spec::series`), in that order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub series: Vec<SeriesResult>,
    /// raw[j][r]: the gap of replication r at n[j].
    pub raw: Vec<Vec<f64>>,
}

/// Tabular DPO without ridge, per n of the grid: the fits with no finite minimiser (the
/// Newton fit did not converge; the gap is then that of its last iterate) and where the
/// policy goes (`dpo::limiting_support`, averaged over all replications).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoMinimiser {
    /// Replications whose fit did not converge.
    pub not_converged: Vec<usize>,
    /// Mean number of supported (x, y) that every minimising sequence sends to probability 0.
    pub vanishing_mean: Vec<f64>,
    /// Mean number of contexts whose limiting support is one response (probability -> 1).
    pub point_mass_contexts_mean: Vec<f64>,
}

/// Sizes of the escort's support per context, out of `responses`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Support {
    pub responses: usize,
    /// Mean over contexts (unweighted) of the support size.
    pub mean: f64,
    pub min: usize,
    pub max: usize,
    /// Contexts whose support holds fewer than half of the responses.
    pub contexts_below_half: usize,
}

impl Support {
    /// Summarises per-context support sizes.
    pub fn of(sizes: &[usize], responses: usize) -> Self {
        Support {
            responses,
            mean: sizes.iter().sum::<usize>() as f64 / sizes.len().max(1) as f64,
            min: sizes.iter().copied().min().unwrap_or(0),
            max: sizes.iter().copied().max().unwrap_or(0),
            contexts_below_half: sizes.iter().filter(|&&s| 2 * s < responses).count(),
        }
    }

    /// Whether more than half of the responses are dropped on average (the run and the
    /// report warn then).
    pub fn mostly_dropped(&self) -> bool {
        2.0 * self.mean < self.responses as f64
    }
}

/// The asymptotics of a cell's mean gap, computed exactly from the instance
/// (`crate::asymptotics`, THEORY §8 [derived]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Asymptotic {
    /// a in E[gap] ~ C n^a at a fixed gamma (plug-in MLE or linear DPO of the linear class
    /// with theta* interior, offline or online, THEORY §8.11; tabular DPO of any class,
    /// THEORY §8.10); `None` with `refused`.
    pub exponent: Option<f64>,
    /// C.
    pub constant: Option<f64>,
    /// Finite class: min_j c_j, the Chernoff rate at which P(MLE != r*) decays as
    /// exp(-n min_j c_j): the mean gap decays at that rate, up to a polynomial factor n^-1/2
    /// (THEORY §8; judged by `claims::rate::exponential_finding`).
    pub exponential_rate: Option<f64>,
    /// Why no (power-law) prediction is made, if none is.
    pub refused: Option<String>,
    /// Per n: n^-exponent x the mean gap, with its 95% interval (empty without a prediction).
    pub scaled_mean: Vec<ScaledMean>,
    /// Per n: the predicted mean gap itself, where a whole curve is derived rather than only
    /// a leading power (finite class: the large-deviation asymptote
    /// `asymptotics::finite_class_mean_gap`, prefactor and every candidate included; gamma(n)
    /// schedules: the bias of gamma(n) plus the estimation term, `asymptotics::schedule_curve`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub predicted: Vec<PredictedValue>,
    /// gamma(n) = c n^p schedules (p > 0) of the FKL sub-optimality (plug-in MLE offline,
    /// linear class): the limit E[gap] ~ constant x n^exponent as gamma(n) grows, exponent
    /// -(1+p), constant K/c (`asymptotics::fkl_large_gamma_constant`, docs/theory.md §9.13).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub large_gamma: Option<PowerLaw>,
}

/// A power law constant x n^exponent.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PowerLaw {
    pub exponent: f64,
    pub constant: f64,
}

impl Asymptotic {
    /// No prediction yet (every field empty).
    pub fn none() -> Self {
        Asymptotic {
            exponent: None,
            constant: None,
            exponential_rate: None,
            refused: None,
            scaled_mean: vec![],
            predicted: vec![],
            large_gamma: None,
        }
    }
}

/// The predicted mean gap at one n.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PredictedValue {
    pub n: u64,
    pub value: f64,
    /// The Monte Carlo standard error of `value`, where it is an integral over the limit law
    /// (gamma(n) schedules).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub se: Option<f64>,
    /// The bias of the finite gamma(n), the gap of pi*_gamma(n) itself (gamma(n) schedules).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bias: Option<f64>,
}

/// n^-exponent x the mean gap at one n: flat at the predicted constant asymptotically.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScaledMean {
    pub n: u64,
    pub value: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

/// One extra series of a cell (see `crate::spec::Spec::series`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeriesResult {
    pub name: String,
    /// Per n: summary of the finite values (`None` if there is none).
    pub summaries: Vec<Option<Summary>>,
    /// For a gap series, its predicted leading term (docs/theory.md §8), as for the spec's
    /// quantity: `plugin` (the plug-in MLE beside DPO) and `offline` (the offline walk beside
    /// an online run) get the offline estimator's; a comparator loss says why it has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asymptotic: Option<Asymptotic>,
    /// For a series that is a gap of the same kind as the quantity: per n, the summary of
    /// the paired differences (series - quantity) over replications (> 0: the spec's
    /// fitted policy has the smaller gap).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub difference: Option<Vec<Option<Summary>>>,
    /// raw[j][r]; `null` = not applicable (e.g. the DPO identity when the MLE is on the ball).
    #[serde(with = "crate::numerics::nullable_table")]
    pub raw: Vec<Vec<f64>>,
}

/// The content of `result.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResultFile {
    /// [`FORMAT`].
    pub format: String,
    pub name: String,
    /// The claims the spec measures.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims: Vec<String>,
    pub divergence: Divergence,
    pub quantity: Quantity,
    pub provenance: Provenance,
    /// Every choice THEORY.md marks [ours], with its value here and what it means.
    pub ours: Ours,
    pub spec: SpecRecord,
    pub instance: InstanceInfo,
    pub cells: Vec<CellResult>,
}

impl ResultFile {
    /// "spec" for a one-cell result, "spec:cell" otherwise: how judgements name evidence.
    pub fn evidence(&self, cell: &CellResult) -> String {
        if self.cells.len() > 1 {
            format!("{}:{}", self.name, cell.label)
        } else {
            self.name.clone()
        }
    }

    /// Replications per n (the same in every cell).
    pub fn replications(&self) -> usize {
        self.spec.replications
    }
}

/// The JSON text of a result (pretty, with a final newline).
pub fn to_json(r: &ResultFile) -> String {
    serde_json::to_string_pretty(r).expect("results serialise") + "\n"
}

/// Reads a `result.json`, refusing another format version by name.
pub fn read(path: &Path) -> Result<ResultFile> {
    let text = crate::fsio::read_text(path)?;
    parse(path, &text)
}

/// Parses the text of a `result.json` (see [`read`]).
pub fn parse(path: &Path, text: &str) -> Result<ResultFile> {
    #[derive(Deserialize)]
    struct Probe {
        format: Option<String>,
    }
    let probe: Probe = serde_json::from_str(text).map_err(|e| Error::parse(path, e))?;
    match probe.format.as_deref() {
        Some(FORMAT) => serde_json::from_str(text).map_err(|e| Error::parse(path, e)),
        other => Err(Error::parse(
            path,
            format!(
                "result format {} is not {FORMAT}, the format this mrkl reads: rerun the spec (or use the mrkl version that wrote it)",
                other.unwrap_or("(none)")
            ),
        )),
    }
}
