//! Experiment specs. A TOML file deserialises into a [`RawSpec`] (unknown fields are
//! rejected), and [`RawSpec::check`] turns it into a [`Spec`], the only form the engine
//! accepts: every field validated, the instance built, the sweep expanded into cells.
//! Every choice THEORY.md marks [ours] is a field of [`Options`] or of the experiment
//! (sampling policy, sampler, gamma schedule) and is written into every result.

use crate::error::{Error, Result};
use crate::fixed_design::{Row, Schedule, Size};
use crate::gap::Quantity;
use crate::instance::{
    Family, GeneratorParams, GeneratorReward, Instance, InstanceParam, RawInstance, RewardModel,
    SIMPLEX_TOLERANCE, generate,
};
use crate::policy::Divergence;
use crate::preference::SamplerKind;
use crate::statistics::TailRule;
use crate::streams::stream;
use serde::{Deserialize, Serialize};
use std::ops::{Bound, RangeBounds};
use std::path::{Path, PathBuf};

/// Largest sample size accepted.
pub const MAX_N: u64 = 1_000_000_000_000;
/// Largest sample size accepted with the O(n) per-sample sampler.
pub const MAX_N_PER_SAMPLE: u64 = 100_000_000;
/// Most levels of the n grid (`n_grid.levels`, or entries of an explicit `n` list).
pub const MAX_LEVELS: usize = 200;
/// Range of gamma (inverse temperature) the policies are validated for.
pub const GAMMA_RANGE: (f64, f64) = (1e-6, 1e6);
/// Largest R_max accepted (e^{4 R_max} appears in the bounds; the policies stay finite).
pub const MAX_R_MAX: f64 = 50.0;

/// A spec as written in TOML.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSpec {
    pub name: Option<String>,
    /// The claim this spec measures (shorthand for `claims = [ID]`).
    pub claim: Option<String>,
    /// The claims this spec measures.
    pub claims: Option<Vec<String>>,
    pub description: Option<String>,
    pub seed: u64,
    pub replications: usize,
    pub instance: RawInstanceSpec,
    pub experiment: RawExperiment,
    pub sweep: Option<RawSweep>,
    #[serde(default)]
    pub options: Options,
}

/// Where the instance comes from.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case", deny_unknown_fields)]
pub enum RawInstanceSpec {
    /// Drawn by the generator from the stream (seed, "instance", 0).
    Random {
        contexts: usize,
        responses: usize,
        references: usize,
        #[serde(default = "one")]
        concentration: f64,
        #[serde(default)]
        zero_fraction: f64,
        context_concentration: Option<f64>,
        reward: RawGeneratorReward,
        /// Coverage pattern of references 1 and 2 over the good responses [ours].
        #[serde(default)]
        family: Family,
    },
    /// Read from a JSON file (path relative to the spec file).
    File { path: PathBuf },
}

fn one() -> f64 {
    1.0
}

fn default_theta_norm() -> f64 {
    0.8
}

/// Reward part of a random instance.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "class", rename_all = "snake_case", deny_unknown_fields)]
pub enum RawGeneratorReward {
    Linear {
        dim: usize,
        bound: f64,
        /// ||theta*|| / B; below 1 by default so that r* is interior to the class and the
        /// MLE has its usual n^-1/2 asymptotics (on the boundary, projection changes them).
        #[serde(default = "default_theta_norm")]
        theta_norm: f64,
    },
    Finite {
        candidates: usize,
        r_max: f64,
        #[serde(default = "one")]
        spread: f64,
    },
}

/// The experiment: what is measured, at which gamma, along which n grid.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExperiment {
    pub divergence: Divergence,
    pub quantity: Quantity,
    /// The weights alpha (one per reference); omitted in a sweep over `references`, whose
    /// cells take theirs from `sweep.weights` or uniform.
    pub weights: Option<Vec<f64>>,
    pub gamma: Option<f64>,
    pub gamma_schedule: Option<GammaSchedule>,
    pub n: Option<Vec<u64>>,
    pub n_grid: Option<NGrid>,
    /// The sampling policy mu (default `geometric`); not with a fixed design.
    pub sampling: Option<String>,
    #[serde(default = "default_sampler")]
    pub sampler: SamplerKind,
    /// The comparisons of `sampler = "fixed_design"` (docs/theory.md §2, "The fixed design").
    pub design: Option<RawDesign>,
    #[serde(default = "default_delta")]
    pub delta: f64,
    /// How the policy is fitted from the data: the plug-in policy of the reward MLE, or a
    /// multi-reference DPO fit (THEORY §6).
    #[serde(default)]
    pub estimator: Estimator,
    /// Online data collection (issue: comparisons, part 4): T rounds of n/T comparisons, each
    /// drawn from the current plug-in policy; 1 = offline (mu fixed).
    #[serde(default = "default_rounds")]
    pub rounds: u32,
    /// Extra per-replication series to record beside the quantity (see [`Record`]).
    #[serde(default)]
    pub record: Vec<Record>,
}

fn default_rounds() -> u32 {
    1
}

/// `[experiment.design]`: the comparisons of a fixed design.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDesign {
    pub comparisons: Vec<RawDesignRow>,
}

/// One row of `experiment.design.comparisons`: `{ context, a, b, count }` or
/// `{ context, a, b, share }` (0-based indices; `context` defaults to 0).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDesignRow {
    #[serde(default)]
    pub context: usize,
    pub a: usize,
    pub b: usize,
    pub count: Option<u64>,
    pub share: Option<f64>,
}

/// How a policy is fitted from the preference data.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Estimator {
    /// The plug-in policy of the reward MLE (THEORY §2).
    #[default]
    Mle,
    /// Multi-reference DPO over the tabular policy class (THEORY §6).
    DpoTabular,
    /// Multi-reference DPO over the linear policy class (THEORY §6; linear reward class only).
    DpoLinear,
    /// IPO (Azar et al. 2023) over the tabular policy class, pi_ref = the escort g, tau =
    /// 1/gamma (docs/theory.md §9.8; RKL only).
    IpoTabular,
    /// IPO over the linear policy class (docs/theory.md §9.8; RKL and the linear reward class
    /// only).
    IpoLinear,
}

impl Estimator {
    fn is_mle(&self) -> bool {
        *self == Estimator::Mle
    }

    /// Whether this is one of the IPO estimators.
    pub fn is_ipo(self) -> bool {
        matches!(self, Estimator::IpoTabular | Estimator::IpoLinear)
    }

    /// The spelling used in specs and results.
    pub fn label(self) -> &'static str {
        match self {
            Estimator::Mle => "mle",
            Estimator::DpoTabular => "dpo_tabular",
            Estimator::DpoLinear => "dpo_linear",
            Estimator::IpoTabular => "ipo_tabular",
            Estimator::IpoLinear => "ipo_linear",
        }
    }
}

/// Extra series a spec can record at every n and replication.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Record {
    /// The true objective J(pi_hat) of the fitted policy and its expected true reward
    /// E_x E_{pi_hat} r* (an alpha-free yardstick for comparing weights).
    Objective,
    /// RKL only (THEORY §6, F1): J(pi*) - J(pi_c) for the comparators c (MRPO, MRPO-CTRO,
    /// arithmetic mixture, each single reference) built from the same estimated reward.
    Comparators,
}

/// A recorded series: its name and whether it is a gap of the same kind as the quantity
/// (then the report also summarises the paired difference series - quantity).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SeriesDef {
    pub name: String,
    pub paired_gap: bool,
    /// What the engine records for it.
    pub kind: SeriesKind,
}

/// What a recorded series measures; the engine fills a unit's row by walking
/// [`Spec::series`], so the order is defined there only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SeriesKind {
    /// J(pi_hat) with the true reward.
    Objective,
    /// E_x E_{pi_hat} r*.
    ExpectedReward,
    /// J(pi*) - J(pi_c) for comparator c (index into `policy::comparator_names`).
    ComparatorLoss(usize),
    /// The plug-in MLE's gap beside a DPO fit.
    Plugin,
    /// max |pi_dpo - pi_plugin| (linear DPO).
    IdentityResidual,
    /// The offline gap beside an online run.
    Offline,
    /// Tabular DPO with `dpo_ridge = 0`: 1 if the fit has no finite minimiser (did not
    /// converge), else 0.
    DpoNotConverged,
    /// Tabular DPO with `dpo_ridge = 0`: the number of supported (x, y) that every minimising
    /// sequence sends to probability 0 (`dpo::limiting_support`).
    DpoVanishing,
    /// Tabular DPO with `dpo_ridge = 0`: the number of contexts whose limiting support is a
    /// single response (probability -> 1).
    DpoPointMass,
}

fn default_sampler() -> SamplerKind {
    SamplerKind::Counts
}
fn default_delta() -> f64 {
    0.05
}

/// gamma(n) = c * n^p [ours] (THEORY §3, `optimality`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GammaSchedule {
    pub c: f64,
    pub p: f64,
}

/// A geometric n grid: `levels` sizes from `from` to `to`, rounded to integers.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NGrid {
    pub from: u64,
    pub to: u64,
    pub levels: usize,
}

/// A sweep: one cell per value of gamma, of the weights or of the simplex grid, optionally
/// crossed with (or, alone, replaced by) one instance parameter (docs/theory.md §2,
/// "Instance sweeps").
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSweep {
    pub gamma: Option<Vec<f64>>,
    /// Weight vectors; in a sweep over `references`, one per value of K (paired, not
    /// crossed), each of that length.
    pub weights: Option<Vec<Vec<f64>>>,
    /// Every weight vector of the simplex grid with this step (1/step must be an integer).
    pub simplex_step: Option<f64>,
    pub references: Option<Vec<usize>>,
    pub contexts: Option<Vec<usize>>,
    pub responses: Option<Vec<usize>>,
    pub zero_fraction: Option<Vec<f64>>,
    pub concentration: Option<Vec<f64>>,
    pub dim: Option<Vec<usize>>,
    /// How the cells of an instance sweep get their instances [ours]; the default is
    /// `nested` for references, contexts and responses, `redraw` for the others.
    pub draw: Option<InstanceDraw>,
}

impl RawSweep {
    /// The instance parameter this sweep sets and its values, if any; an error if several.
    fn instance_values(&self) -> Result<Option<(InstanceParam, Vec<f64>)>> {
        let counts = |v: &Option<Vec<usize>>| {
            v.as_ref()
                .map(|v| v.iter().map(|&c| c as f64).collect::<Vec<_>>())
        };
        let given: Vec<(InstanceParam, Vec<f64>)> = [
            (InstanceParam::References, counts(&self.references)),
            (InstanceParam::Contexts, counts(&self.contexts)),
            (InstanceParam::Responses, counts(&self.responses)),
            (InstanceParam::ZeroFraction, self.zero_fraction.clone()),
            (InstanceParam::Concentration, self.concentration.clone()),
            (InstanceParam::Dim, counts(&self.dim)),
        ]
        .into_iter()
        .filter_map(|(p, v)| v.map(|v| (p, v)))
        .collect();
        match given.len() {
            0 => Ok(None),
            1 => Ok(given.into_iter().next()),
            _ => Err(Error::invalid(
                "sweep",
                given
                    .iter()
                    .map(|(p, _)| p.name())
                    .collect::<Vec<_>>()
                    .join(" and "),
                "at most one instance parameter (references, contexts, responses, zero_fraction, concentration or dim)",
            )),
        }
    }
}

/// How the cells of an instance sweep get their instances [ours] (docs/theory.md §2,
/// "Instance sweeps").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstanceDraw {
    /// Sub-instances of one master instance (the `[instance]` section as written): its first
    /// K references, contexts or responses ([`Instance::nested`]).
    Nested,
    /// Each cell's instance drawn by the generator with the parameter set to the cell's
    /// value, from the same stream (seed, "instance", 0) as the master: common random
    /// numbers, not nested draws. Random instances only.
    Redraw,
}

/// The instance parameter a cell of an instance sweep sets, and how its instance is made.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceSetting {
    pub param: InstanceParam,
    pub value: f64,
    pub draw: InstanceDraw,
}

/// The R_max convention [ours] (THEORY §2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RewardRange {
    /// |r| <= R_max.
    #[default]
    Symmetric,
}

/// log|R| of the linear class in the bounds [ours] (THEORY §2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogClassSize {
    /// The covering number d ln(1 + 2 B n).
    #[default]
    Covering,
}

/// RNG streams of the cells [ours].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Streams {
    /// Each cell's replications have their own streams, keyed by the cell label.
    #[default]
    PerCell,
    /// Replication r of every cell uses the same stream: where the sampling policy does not
    /// depend on the cell, every cell sees the same data ([`Spec::shared_data`]).
    Shared,
}

impl Streams {
    pub fn name(self) -> &'static str {
        match self {
            Streams::PerCell => "per_cell",
            Streams::Shared => "shared",
        }
    }
}

/// The choices THEORY.md leaves to us [ours], with their defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Options {
    /// Convention for R_max.
    pub reward_range: RewardRange,
    /// log|R| in the bounds for the linear class.
    pub log_class_size: LogClassSize,
    /// Max-norm tolerance on the KKT gradient of the linear-class MLE.
    pub mle_tolerance: f64,
    /// Which levels of the n grid count as asymptotic for the exponent fit.
    pub tail: TailRule,
    /// Bootstrap resamples for the exponent interval.
    pub bootstrap_resamples: usize,
    /// Level of the exponent interval.
    pub ci_level: f64,
    /// MRPO's CTRO clipping epsilon (0 disables it).
    pub mrpo_clip_eps: f64,
    /// Gaps at or below this are "at the numerical floor": no exponent is fitted to them.
    pub gap_floor: f64,
    /// Tabular DPO: ridge lambda/2 sum s^2 on the implied reward table (absolute, so its
    /// bias decays like 1/n); keeps the fit finite when a response never loses.
    pub dpo_ridge: f64,
    /// RNG streams of the cells.
    pub streams: Streams,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            reward_range: RewardRange::Symmetric,
            log_class_size: LogClassSize::Covering,
            mle_tolerance: crate::estimation::DEFAULT_GRADIENT_TOLERANCE,
            tail: TailRule::default(),
            bootstrap_resamples: 1000,
            ci_level: 0.9,
            mrpo_clip_eps: 0.0,
            gap_floor: 1e-300,
            dpo_ridge: 1.0,
            streams: Streams::PerCell,
        }
    }
}

/// The sampling policy mu of the preference pairs [ours].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sampling {
    /// The generalised escort g of the cell's weights.
    Geometric,
    /// The arithmetic mixture m of the cell's weights.
    Arithmetic,
    /// Reference i (0-based here; written `ref:i` 1-based in specs, as pi_1..pi_K).
    Reference(usize),
    Uniform,
}

impl Sampling {
    /// The spelling used in specs and results.
    pub fn label(self) -> String {
        match self {
            Sampling::Geometric => "geometric".into(),
            Sampling::Arithmetic => "arithmetic".into(),
            Sampling::Reference(i) => format!("ref:{}", i + 1),
            Sampling::Uniform => "uniform".into(),
        }
    }

    fn parse(s: &str, k: usize) -> Result<Self> {
        let allowed = format!("geometric, arithmetic, uniform or ref:i with i in 1..={k}");
        match s {
            "geometric" => Ok(Sampling::Geometric),
            "arithmetic" => Ok(Sampling::Arithmetic),
            "uniform" => Ok(Sampling::Uniform),
            _ => match s.strip_prefix("ref:").and_then(|i| i.parse::<usize>().ok()) {
                Some(i) if (1..=k).contains(&i) => Ok(Sampling::Reference(i - 1)),
                _ => Err(Error::invalid(
                    "experiment.sampling",
                    format!("\"{s}\""),
                    allowed,
                )),
            },
        }
    }
}

/// gamma of a cell: fixed, or a schedule in n.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GammaRule {
    Fixed(f64),
    Schedule(GammaSchedule),
}

impl GammaRule {
    /// gamma at sample size n.
    pub fn at(&self, n: u64) -> f64 {
        match *self {
            GammaRule::Fixed(g) => g,
            GammaRule::Schedule(s) => s.c * (n as f64).powf(s.p),
        }
    }
}

/// One parameter setting of a spec (a spec without sweep has one cell).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// Stable identity of the cell: part of every replication's RNG stream name.
    pub label: String,
    pub weights: Vec<f64>,
    pub gamma: GammaRule,
    /// In an instance sweep, the parameter this cell sets (its instance is
    /// [`Spec::instance_of`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<InstanceSetting>,
}

/// Where the checked instance came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "source", rename_all = "snake_case")]
pub enum InstanceOrigin {
    Random { generator: GeneratorParams },
    File { path: String },
}

/// A checked spec: every field valid, the instance built. The engine trusts it. Its fields
/// are private: the only way to obtain one is [`RawSpec::check`] (through [`parse`] or
/// [`load`]), and code outside reads it through the accessors below.
#[derive(Clone, Debug)]
pub struct Spec {
    name: String,
    /// The claims this spec measures (registry ids).
    claims: Vec<String>,
    description: Option<String>,
    seed: u64,
    replications: usize,
    divergence: Divergence,
    quantity: Quantity,
    ns: Vec<u64>,
    sampling: Sampling,
    sampler: SamplerKind,
    /// The fixed design (`sampler = "fixed_design"` only).
    design: Option<Schedule>,
    delta: f64,
    estimator: Estimator,
    rounds: u32,
    record: Vec<Record>,
    cells: Vec<Cell>,
    options: Options,
    instance_origin: InstanceOrigin,
    /// The master instance (the `[instance]` section as written).
    instance: Instance,
    /// The instances of the cells: `[instance]` alone, or one per value of an instance sweep.
    instances: Vec<Instance>,
    /// cell_instance[c]: the index in `instances` of cell c's instance.
    cell_instance: Vec<usize>,
    /// The spec's TOML (after command-line overrides): journals carry it so that `merge`
    /// can rebuild the spec.
    source_toml: String,
    /// See [`Spec::shared_data`]; fixed by the check.
    shared_data: bool,
}

/// The checked spec as written into every result (`result.json` → `spec`): every field of
/// [`Spec`] but the instance (which has its own file) and the TOML text.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpecRecord {
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims: Vec<String>,
    pub description: Option<String>,
    pub seed: u64,
    pub replications: usize,
    pub divergence: Divergence,
    pub quantity: Quantity,
    pub ns: Vec<u64>,
    /// The sampling policy, as spelled in specs (`geometric`, `ref:1`, ...; `none` with a
    /// fixed design).
    pub sampling: String,
    pub sampler: SamplerKind,
    /// The fixed design's rows (`sampler = "fixed_design"` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub design: Option<Schedule>,
    pub delta: f64,
    #[serde(default, skip_serializing_if = "Estimator::is_mle")]
    pub estimator: Estimator,
    #[serde(default = "default_rounds", skip_serializing_if = "is_one")]
    pub rounds: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub record: Vec<Record>,
    pub cells: Vec<Cell>,
    pub options: Options,
    pub instance_origin: InstanceOrigin,
    /// Whether every cell sees the same data ([`Spec::shared_data`]).
    pub shared_data: bool,
}

impl Serialize for Spec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.to_record().serialize(s)
    }
}

fn is_one(v: &u32) -> bool {
    *v == 1
}

impl Spec {
    /// The spec's name (its results folder).
    pub fn name(&self) -> &String {
        &self.name
    }
    /// The claims it measures (registry ids).
    pub fn claims(&self) -> &Vec<String> {
        &self.claims
    }
    pub fn description(&self) -> &Option<String> {
        &self.description
    }
    /// The master seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }
    /// Replications per cell and n.
    pub fn replications(&self) -> usize {
        self.replications
    }
    pub fn divergence(&self) -> Divergence {
        self.divergence
    }
    pub fn quantity(&self) -> Quantity {
        self.quantity
    }
    /// The n grid, strictly increasing.
    pub fn ns(&self) -> &Vec<u64> {
        &self.ns
    }
    /// The sampling policy mu [ours]. With a fixed design no policy draws the comparisons
    /// and this is `Uniform`, unused: see [`Spec::sampling_label`], [`Spec::design`].
    pub fn sampling(&self) -> Sampling {
        self.sampling
    }
    /// The sampling policy as recorded: its label, or `none` with a fixed design.
    pub fn sampling_label(&self) -> String {
        match self.design {
            Some(_) => "none".into(),
            None => self.sampling.label(),
        }
    }
    pub fn sampler(&self) -> SamplerKind {
        self.sampler
    }
    /// The fixed design of `sampler = "fixed_design"` (docs/theory.md §2).
    pub fn design(&self) -> Option<&Schedule> {
        self.design.as_ref()
    }
    /// The bounds hold with probability 1 - delta.
    pub fn delta(&self) -> f64 {
        self.delta
    }
    pub fn estimator(&self) -> Estimator {
        self.estimator
    }
    /// Online rounds (1 = offline).
    pub fn rounds(&self) -> u32 {
        self.rounds
    }
    /// The extra series asked for (`record = [...]`).
    pub fn records(&self) -> &Vec<Record> {
        &self.record
    }
    /// The cells (one per sweep value; one without a sweep).
    pub fn cells(&self) -> &Vec<Cell> {
        &self.cells
    }
    /// The [ours] options.
    pub fn options(&self) -> &Options {
        &self.options
    }
    pub fn instance_origin(&self) -> &InstanceOrigin {
        &self.instance_origin
    }
    /// The master instance: the `[instance]` section as written (`instance.json`). Every
    /// cell's instance is this one unless the spec sweeps an instance parameter.
    pub fn instance(&self) -> &Instance {
        &self.instance
    }
    /// The instance of cell `cell` (index into [`Spec::cells`]).
    pub fn instance_of(&self, cell: usize) -> &Instance {
        &self.instances[self.cell_instance[cell]]
    }
    /// The distinct instances of the cells, and for each cell the index of its own.
    pub fn instances(&self) -> (&[Instance], &[usize]) {
        (&self.instances, &self.cell_instance)
    }
    /// The spec's TOML after overrides (what journals carry).
    pub fn source_toml(&self) -> &str {
        &self.source_toml
    }

    /// The spec as recorded in results.
    pub fn to_record(&self) -> SpecRecord {
        SpecRecord {
            name: self.name.clone(),
            claims: self.claims.clone(),
            description: self.description.clone(),
            seed: self.seed,
            replications: self.replications,
            divergence: self.divergence,
            quantity: self.quantity,
            ns: self.ns.clone(),
            sampling: self.sampling_label(),
            sampler: self.sampler,
            design: self.design.clone(),
            delta: self.delta,
            estimator: self.estimator,
            rounds: self.rounds,
            record: self.record.clone(),
            cells: self.cells.clone(),
            options: self.options.clone(),
            instance_origin: self.instance_origin.clone(),
            shared_data: self.shared_data,
        }
    }

    /// The one definition of "the cells share their data": the streams are shared
    /// (`options.streams = "shared"`) and the sampling policy does not depend on the cell
    /// (uniform, a single reference, or one weight vector for every cell). Then replication
    /// r of every cell compares on the same dataset, so differences across cells are paired.
    pub fn shared_data(&self) -> bool {
        self.shared_data
    }

    /// The name of the RNG stream of a cell's replications (see `Options::streams`).
    pub fn stream_label<'a>(&self, cell: &'a Cell) -> &'a str {
        if self.options.streams == Streams::Shared {
            "shared"
        } else {
            &cell.label
        }
    }

    /// Whether the runs report tabular DPO's missing minimisers: tabular DPO with
    /// `options.dpo_ridge = 0`, where separable data (a response beaten by another's
    /// component and never beating it back) have no finite minimiser (docs/theory.md §6).
    pub fn reports_no_minimiser(&self) -> bool {
        self.estimator == Estimator::DpoTabular && self.options.dpo_ridge == 0.0
    }

    /// The extra series every unit records, in order: the `record` list, then the plug-in
    /// MLE gap beside a DPO or IPO fit (`plugin`) and, for the linear DPO class, the identity
    /// residual max |pi_dpo - pi_plugin| (NaN when the MLE sits on the norm ball or DPO did
    /// not converge), for tabular DPO without ridge the missing minimisers
    /// (`dpo_not_converged`, `dpo_vanishing`, `dpo_point_mass_contexts`), then the offline
    /// gap beside an online run (`offline`).
    pub fn series(&self) -> Vec<SeriesDef> {
        let mut out = vec![];
        let def = |name: &str, paired_gap, kind| SeriesDef {
            name: name.into(),
            paired_gap,
            kind,
        };
        for r in &self.record {
            match r {
                Record::Objective => {
                    out.push(def("objective", false, SeriesKind::Objective));
                    out.push(def("expected_reward", false, SeriesKind::ExpectedReward));
                }
                Record::Comparators => {
                    let names = crate::policy::comparator_names(
                        self.instance.k(),
                        self.options.mrpo_clip_eps,
                    );
                    for (i, c) in names.iter().enumerate() {
                        out.push(def(
                            &format!("loss_{c}"),
                            true,
                            SeriesKind::ComparatorLoss(i),
                        ));
                    }
                }
            }
        }
        if !self.estimator.is_mle() {
            out.push(def("plugin", true, SeriesKind::Plugin));
        }
        if self.estimator == Estimator::DpoLinear {
            out.push(def(
                "identity_residual",
                false,
                SeriesKind::IdentityResidual,
            ));
        }
        if self.reports_no_minimiser() {
            out.push(def("dpo_not_converged", false, SeriesKind::DpoNotConverged));
            out.push(def("dpo_vanishing", false, SeriesKind::DpoVanishing));
            out.push(def(
                "dpo_point_mass_contexts",
                false,
                SeriesKind::DpoPointMass,
            ));
        }
        if self.rounds > 1 {
            out.push(def("offline", true, SeriesKind::Offline));
        }
        out
    }
}

/// Reads and checks a spec file. `name` defaults to the file stem.
pub fn load(path: &Path) -> Result<Spec> {
    let text = crate::fsio::read_text(path)?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    parse(&text, path, &stem, path.parent())
}

/// Parses and checks spec text; `origin` names it in messages, `base` resolves instance paths.
pub fn parse(text: &str, origin: &Path, default_name: &str, base: Option<&Path>) -> Result<Spec> {
    parse_with(text, origin, default_name, base, &[])
}

/// As [`parse`], after applying command-line overrides `key=value` (dotted TOML paths such
/// as `replications`, `seed` or `experiment.gamma`) to the raw TOML. A key absent from the
/// file is added; unknown fields are still rejected by the check.
pub fn parse_with(
    text: &str,
    origin: &Path,
    default_name: &str,
    base: Option<&Path>,
    overrides: &[(String, String)],
) -> Result<Spec> {
    let mut value: toml::Value = toml::from_str(text).map_err(|e| Error::parse(origin, e))?;
    for (key, v) in overrides {
        let path: Vec<&str> = key.split('.').collect();
        replace_grid(&mut value, &path, key, v)?;
        crate::overrides::set(&mut value, &path, key, v, crate::overrides::Missing::Add)?;
    }
    let source_toml = toml::to_string(&value).map_err(|e| Error::parse(origin, e))?;
    let raw = RawSpec::deserialize(value).map_err(|e| Error::parse(origin, e))?;
    let mut spec = raw.check(default_name, base)?;
    spec.source_toml = source_toml;
    Ok(spec)
}

/// How much of a spec to run: all of it, or the quick tier of `mrkl check --quick` (for CI
/// smoke runs; README "CI" states what it keeps).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Tier {
    #[default]
    Full,
    /// A quarter of the replications (at least [`QUICK_MIN_REPLICATIONS`]) and about half
    /// the levels of a geometric grid (the same `from` and `to`); an explicit `n` list is
    /// kept.
    Quick,
}

/// The fewest replications the quick tier runs.
pub const QUICK_MIN_REPLICATIONS: i64 = 20;

impl Tier {
    /// The overrides that make a spec's TOML `text` this tier (none for [`Tier::Full`]);
    /// applied before the user's, so an explicit `--set` wins.
    pub fn overrides(self, text: &str, origin: &Path) -> Result<Vec<(String, String)>> {
        if self == Tier::Full {
            return Ok(vec![]);
        }
        let value: toml::Value = toml::from_str(text).map_err(|e| Error::parse(origin, e))?;
        let mut out = vec![];
        if let Some(r) = value.get("replications").and_then(|r| r.as_integer()) {
            let quick = ((r + 3) / 4).max(QUICK_MIN_REPLICATIONS).min(r);
            out.push(("replications".to_string(), quick.to_string()));
        }
        let levels = value
            .get("experiment")
            .and_then(|e| e.get("n_grid"))
            .and_then(|g| g.get("levels"))
            .and_then(|l| l.as_integer());
        if let Some(l) = levels {
            let quick = (l + 2) / 2;
            out.push((
                "experiment.n_grid.levels".to_string(),
                quick.max(2).min(l).to_string(),
            ));
        }
        Ok(out)
    }
}

/// The n grid is either `experiment.n` (a list) or `experiment.n_grid` (a geometric grid):
/// an override of `experiment.n` replaces whichever the spec has, and an override of a field
/// of `n_grid` on a spec that lists its sizes is refused with the key that works.
fn replace_grid(value: &mut toml::Value, path: &[&str], key: &str, text: &str) -> Result<()> {
    let Some(experiment) = value.get_mut("experiment").and_then(|e| e.as_table_mut()) else {
        return Ok(());
    };
    match path {
        ["experiment", "n"] => {
            experiment.remove("n_grid");
        }
        ["experiment", "n_grid", ..] if experiment.contains_key("n") => {
            return Err(Error::invalid(
                format!("--set {key}"),
                text,
                "a field of the spec's grid: this spec lists its sample sizes in experiment.n; set that list, e.g. --set 'experiment.n=[1000,10000]'",
            ));
        }
        _ => {}
    }
    Ok(())
}

/// Refuses `v` outside `range`, naming `field`, the value and what is `allowed`. For a
/// float, NaN lies outside every range, and an infinity outside any range whose end on its
/// side is finite.
fn in_range<T: PartialOrd + ToString>(
    field: &str,
    v: T,
    range: impl RangeBounds<T>,
    allowed: impl Into<String>,
) -> Result<()> {
    if range.contains(&v) {
        Ok(())
    } else {
        Err(Error::invalid(field, v, allowed))
    }
}

/// Refuses an empty list, naming `field` (its value `[]`) and what is `allowed`.
fn non_empty<T>(field: &str, list: &[T], allowed: &str) -> Result<()> {
    if list.is_empty() {
        Err(Error::invalid(field, "[]", allowed))
    } else {
        Ok(())
    }
}

fn check_weights(field: &str, w: &[f64], k: usize) -> Result<Vec<f64>> {
    if w.len() != k {
        return Err(Error::invalid(
            format!("{field} (length)"),
            w.len(),
            format!("{k} weights, one per reference policy"),
        ));
    }
    let mut w = w.to_vec();
    crate::instance::check_simplex(field, &mut w).map_err(|_| {
        Error::invalid(
            field,
            format!("{w:?}"),
            format!(
                "weights on the simplex: each >= 0, summing to 1 (within {SIMPLEX_TOLERANCE:e})"
            ),
        )
    })?;
    Ok(w)
}

/// Every weight vector (i_1, ..., i_K) * step with non-negative integers summing to 1/step,
/// in lexicographic order of (i_1, ..., i_K) descending.
fn simplex_grid(step: f64, k: usize) -> Result<Vec<Vec<f64>>> {
    let m = (1.0 / step).round();
    if !(step.is_finite() && step > 0.0 && step <= 1.0 && (m * step - 1.0).abs() < 1e-9) || k < 2 {
        return Err(Error::invalid(
            "sweep.simplex_step",
            step,
            "a step in (0, 1] with 1/step an integer, and at least 2 references",
        ));
    }
    let m = m as usize;
    // Number of grid points: C(m + k - 1, k - 1); refuse grids too large to be meant.
    let mut count = 1f64;
    for j in 1..k {
        count = count * (m + j) as f64 / j as f64;
    }
    if count > 10_000.0 {
        return Err(Error::invalid(
            "sweep.simplex_step",
            step,
            format!(
                "a step giving at most 10000 weight vectors for K = {k} (this one gives {count:.0})"
            ),
        ));
    }
    fn rec(m: usize, left: usize, k: usize, prefix: &mut Vec<usize>, out: &mut Vec<Vec<usize>>) {
        if prefix.len() == k - 1 {
            prefix.push(left);
            out.push(prefix.clone());
            prefix.pop();
            return;
        }
        for i in (0..=left).rev() {
            prefix.push(i);
            rec(m, left - i, k, prefix, out);
            prefix.pop();
        }
    }
    let mut ints = vec![];
    rec(m, m, k, &mut vec![], &mut ints);
    Ok(ints
        .into_iter()
        .map(|v| v.into_iter().map(|i| i as f64 / m as f64).collect())
        .collect())
}

fn fmt_num(v: f64) -> String {
    format!("{v}")
}

impl RawSpec {
    /// Validates every field and builds the instance; the only way to obtain a [`Spec`].
    /// The sections are checked in this order, and the first error found is reported.
    pub fn check(self, default_name: &str, base: Option<&Path>) -> Result<Spec> {
        let name = check_header(self.name, default_name, self.replications)?;
        check_options(&self.options)?;
        let raw_instance = self.instance.clone();
        let (instance, instance_origin) = check_instance(self.instance, self.seed, base)?;
        let swept = match &self.sweep {
            Some(s) => s.instance_values()?,
            None => None,
        };
        let draw = self.sweep.as_ref().and_then(|s| s.draw);
        let by_value = match &swept {
            Some((param, values)) => Some(check_instance_sweep(
                *param,
                values,
                draw,
                &raw_instance,
                &instance,
                self.seed,
                base,
            )?),
            None if draw.is_some() => {
                return Err(Error::invalid(
                    "sweep.draw",
                    format!("{draw:?}").to_lowercase(),
                    "sweep.draw only with an instance sweep (references, contexts, responses, zero_fraction, concentration or dim)",
                ));
            }
            None => None,
        };
        let sweeps_gamma = self.sweep.as_ref().is_some_and(|s| s.gamma.is_some());
        let sweeps_references = matches!(swept, Some((InstanceParam::References, _)));
        let e = &self.experiment;
        let k_min = by_value.as_ref().map_or(instance.k(), |v| {
            v.iter().map(|(_, i)| i.k()).min().unwrap_or(0)
        });
        let experiment = check_experiment(e, sweeps_gamma, sweeps_references, &instance, k_min)?;
        let design = check_design(e, &experiment.ns, &instance, swept.is_some())?;
        // Checked after the experiment, where it has always been, so that a spec with
        // several problems still reports the same one first.
        in_range(
            "options.dpo_ridge",
            self.options.dpo_ridge,
            0.0..=1e6,
            "a number in [0, 1e6]",
        )?;
        let (instances, cell_instance, cells) = match by_value {
            None => {
                let cells = check_cells(self.sweep, &experiment, &instance)?;
                (vec![instance.clone()], vec![0; cells.len()], cells)
            }
            Some(by_value) => {
                let (cells, cell_instance) =
                    check_instance_cells(self.sweep.unwrap_or_default(), &experiment, &by_value)?;
                (
                    by_value.into_iter().map(|(_, i)| i).collect(),
                    cell_instance,
                    cells,
                )
            }
        };
        for (c, &i) in cells.iter().zip(&cell_instance) {
            check_supports(c, &instances[i], e.divergence, experiment.sampling)?;
        }
        if instances.len() > 1 && experiment.record.contains(&Record::Comparators) {
            return Err(Error::invalid(
                "experiment.record",
                "\"comparators\"",
                "no comparators in an instance sweep (their list depends on K; record them per spec)",
            ));
        }
        let claims = check_claims(self.claim, self.claims)?;
        let shared_data = self.options.streams == Streams::Shared
            && instances.len() == 1
            && (design.is_some()
                || matches!(
                    experiment.sampling,
                    Sampling::Uniform | Sampling::Reference(_)
                )
                || cells.iter().all(|c| c.weights == cells[0].weights));
        Ok(Spec {
            name,
            claims,
            shared_data,
            description: self.description,
            seed: self.seed,
            replications: self.replications,
            divergence: e.divergence,
            quantity: e.quantity,
            ns: experiment.ns,
            sampling: experiment.sampling,
            sampler: e.sampler,
            design,
            delta: e.delta,
            estimator: e.estimator,
            rounds: e.rounds,
            record: experiment.record,
            cells,
            options: self.options,
            instance_origin,
            instance,
            instances,
            cell_instance,
            source_toml: String::new(),
        })
    }
}

/// The header: the name (`name`, else `default_name`) must be a plain file name, since it
/// names the results folder inside `--out`: letters, digits, `_`, `-`, `.`, and neither `.`
/// nor `..`; `replications` must be from 2 to 10000000. Returns the name.
fn check_header(name: Option<String>, default_name: &str, replications: usize) -> Result<String> {
    let name = name.unwrap_or_else(|| default_name.to_string());
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
    {
        return Err(Error::invalid(
            "name",
            format!("\"{name}\""),
            "a non-empty name of letters, digits, '_', '-', '.' (it names the results folder)",
        ));
    }
    if name == "." || name == ".." {
        return Err(Error::invalid(
            "name",
            format!("\"{name}\""),
            "a name other than \".\" and \"..\" (it names the results folder, inside --out)",
        ));
    }
    in_range(
        "replications",
        replications,
        2..=10_000_000,
        "an integer from 2 to 10000000",
    )?;
    Ok(name)
}

/// `[options]`: the MLE tolerance, the tail rule, the bootstrap, the interval level, the
/// MRPO clipping and the gap floor, each within its range. (`dpo_ridge` is checked by
/// [`RawSpec::check`] after the experiment.)
fn check_options(o: &Options) -> Result<()> {
    in_range(
        "options.mle_tolerance",
        o.mle_tolerance,
        1e-15..=1e-3,
        "a number in [1e-15, 1e-3]",
    )?;
    in_range(
        "options.tail.fraction",
        o.tail.fraction,
        1e-9..=1.0,
        "a fraction in (0, 1]",
    )?;
    in_range(
        "options.tail.min_points",
        o.tail.min_points,
        2..,
        "at least 2",
    )?;
    in_range(
        "options.bootstrap_resamples",
        o.bootstrap_resamples,
        10..=1_000_000,
        "an integer from 10 to 1000000",
    )?;
    in_range(
        "options.ci_level",
        o.ci_level,
        0.5..=0.999,
        "a level in [0.5, 0.999]",
    )?;
    in_range(
        "options.mrpo_clip_eps",
        o.mrpo_clip_eps,
        0.0..=1.0,
        "a number in [0, 1]",
    )?;
    in_range(
        "options.gap_floor",
        o.gap_floor,
        0.0..=1e-6,
        "a number in [0, 1e-6]",
    )
}

/// `[instance]`: a random instance's sizes, Dirichlet parameters, reward class and family,
/// then the instance drawn from the stream (`seed`, "instance", 0); or an instance file
/// (relative to `base`), read and checked by [`RawInstance::check`] (its errors name the
/// file), with a reward class that can be fitted and R_max at most 50.
fn check_instance(
    raw: RawInstanceSpec,
    seed: u64,
    base: Option<&Path>,
) -> Result<(Instance, InstanceOrigin)> {
    let generator = match raw {
        RawInstanceSpec::File { path } => return load_instance(path, base),
        RawInstanceSpec::Random {
            contexts,
            responses,
            references,
            concentration,
            zero_fraction,
            context_concentration,
            reward,
            family,
        } => {
            in_range(
                "instance.contexts",
                contexts,
                1..=100_000,
                "an integer from 1 to 100000",
            )?;
            in_range(
                "instance.responses",
                responses,
                1..=1_000,
                "an integer from 1 to 1000",
            )?;
            in_range(
                "instance.contexts * instance.responses",
                contexts * responses,
                ..=2_000_000,
                "at most 2000000 cells",
            )?;
            in_range(
                "instance.references",
                references,
                1..=64,
                "an integer from 1 to 64",
            )?;
            in_range(
                "instance.concentration",
                concentration,
                1e-3..=1e6,
                "a Dirichlet concentration in [1e-3, 1e6]",
            )?;
            in_range(
                "instance.zero_fraction",
                zero_fraction,
                0.0..1.0,
                "a fraction in [0, 1)",
            )?;
            if let Some(a) = context_concentration {
                in_range(
                    "instance.context_concentration",
                    a,
                    1e-3..=1e6,
                    "a Dirichlet concentration in [1e-3, 1e6] (omit for uniform rho)",
                )?;
            }
            let reward = check_generator_reward(reward)?;
            check_family(&family, references)?;
            let (dim, candidates) = match reward {
                GeneratorReward::Linear { dim, .. } => (dim, 0),
                GeneratorReward::Finite { candidates, .. } => (0, candidates),
            };
            crate::budget::check_instance(&crate::budget::Sizes {
                contexts: contexts as u64,
                responses: responses as u64,
                references: references as u64,
                dim: dim as u64,
                candidates: candidates as u64,
                ..Default::default()
            })?;
            GeneratorParams {
                contexts,
                responses,
                references,
                concentration,
                zero_fraction,
                context_concentration,
                reward,
                family,
            }
        }
    };
    let inst = generate(&generator, &mut stream(seed, "instance", 0));
    Ok((inst, InstanceOrigin::Random { generator }))
}

/// `[instance.reward]` of a random instance: the linear class's dimension, bound and
/// `theta_norm`, or the finite class's number of candidates, R_max and spread.
fn check_generator_reward(reward: RawGeneratorReward) -> Result<GeneratorReward> {
    Ok(match reward {
        RawGeneratorReward::Linear {
            dim,
            bound,
            theta_norm,
        } => {
            in_range(
                "instance.reward.dim",
                dim,
                1..=256,
                "an integer from 1 to 256",
            )?;
            in_range(
                "instance.reward.bound",
                bound,
                1e-6..=MAX_R_MAX,
                "a reward bound B = R_max in [1e-6, 50]",
            )?;
            in_range(
                "instance.reward.theta_norm",
                theta_norm,
                0.0..=1.0,
                "a fraction of B in [0, 1]",
            )?;
            GeneratorReward::Linear {
                dim,
                bound,
                theta_norm,
            }
        }
        RawGeneratorReward::Finite {
            candidates,
            r_max,
            spread,
        } => {
            in_range(
                "instance.reward.candidates",
                candidates,
                2..=100_000,
                "an integer from 2 to 100000",
            )?;
            in_range(
                "instance.reward.r_max",
                r_max,
                1e-6..=MAX_R_MAX,
                "a number in [1e-6, 50]",
            )?;
            in_range(
                "instance.reward.spread",
                spread,
                (Bound::Excluded(0.0), Bound::Included(1.0)),
                "a fraction in (0, 1]",
            )?;
            GeneratorReward::Finite {
                candidates,
                r_max,
                spread,
            }
        }
    })
}

/// `instance.family` of a random instance: a family other than `plain` needs at least 2
/// references, a fraction in (0, 1] and its multiplier within the family's range.
fn check_family(family: &Family, references: usize) -> Result<()> {
    // (fraction field, value, multiplier field, value, its range, what is allowed)
    let (fraction_field, fraction, factor_field, factor, range, allowed) = match *family {
        Family::Plain => return Ok(()),
        Family::OneCovers {
            good_fraction,
            suppression,
        }
        | Family::BothPartial {
            good_fraction,
            suppression,
        } => (
            "good_fraction",
            good_fraction,
            "suppression",
            suppression,
            1e-12..=1.0,
            "a factor in [1e-12, 1] (the uncovering reference's probability multiplier)",
        ),
        Family::DistinctErrors {
            bad_fraction,
            boost,
        } => (
            "bad_fraction",
            bad_fraction,
            "boost",
            boost,
            1.0..=1e12,
            "a factor in [1, 1e12] (the erring reference's probability multiplier)",
        ),
    };
    if references < 2 {
        return Err(Error::invalid(
            "instance.family",
            format!("{family:?}"),
            "a family with at least 2 references (kind = \"plain\" for K = 1)",
        ));
    }
    in_range(
        &format!("instance.family.{fraction_field}"),
        fraction,
        1e-9..=1.0,
        "a fraction in (0, 1]",
    )?;
    in_range(
        &format!("instance.family.{factor_field}"),
        factor,
        range,
        allowed,
    )
}

/// An instance file (`path`, relative to `base`): read, parsed and checked, its errors
/// prefixed with the file; a bare reward table and an R_max above 50 are refused.
fn load_instance(path: PathBuf, base: Option<&Path>) -> Result<(Instance, InstanceOrigin)> {
    let full = match base {
        Some(b) if path.is_relative() => b.join(&path),
        _ => path.clone(),
    };
    let text = crate::fsio::read_text(&full)?;
    let raw: RawInstance = serde_json::from_str(&text).map_err(|e| Error::parse(&full, e))?;
    let inst = raw.check().map_err(|e| match e {
        Error::Invalid {
            field,
            value,
            allowed,
        } => Error::Invalid {
            field: format!("{}: {field}", full.display()),
            value,
            allowed,
        },
        other => other,
    })?;
    if let RewardModel::Table(_) = inst.reward {
        return Err(Error::invalid(
            "instance reward.class",
            "\"table\"",
            "\"linear\" or \"finite\" for experiments (a bare table has no class to fit; it serves `mrkl solve`)",
        ));
    }
    in_range("instance R_max", inst.r_max(), ..=MAX_R_MAX, "at most 50")?;
    Ok((
        inst,
        InstanceOrigin::File {
            path: path.display().to_string(),
        },
    ))
}

/// What checking `[experiment]` derives; its other fields (divergence, quantity, sampler,
/// delta, estimator, rounds) are checked and then taken as written. `weights` and `gamma`
/// are those of a cell the sweep does not set (`gamma` is NaN when the sweep sets it in
/// every cell); `record` is without repeats.
struct Experiment {
    /// Empty in a sweep over `references` (each cell has its own).
    weights: Vec<f64>,
    gamma: GammaRule,
    ns: Vec<u64>,
    sampling: Sampling,
    record: Vec<Record>,
}

/// `[experiment]` against the checked instance: the weights, the gamma rule (`sweeps_gamma`:
/// the sweep sets gamma), the n grid and the sampler's limit on it, the sampling policy,
/// delta, the estimator, the online rounds and the recorded series (duplicates dropped).
fn check_experiment(
    e: &RawExperiment,
    sweeps_gamma: bool,
    sweeps_references: bool,
    instance: &Instance,
    k_min: usize,
) -> Result<Experiment> {
    let k = instance.k();
    let weights = match (&e.weights, sweeps_references) {
        (Some(w), false) => check_weights("experiment.weights", w, k)?,
        (None, true) => vec![],
        (Some(w), true) => {
            return Err(Error::invalid(
                "experiment.weights",
                format!("{w:?}"),
                "no experiment.weights in a sweep over references: give one vector per K in sweep.weights, or omit both for uniform weights",
            ));
        }
        (None, false) => {
            return Err(Error::invalid(
                "experiment.weights",
                "missing",
                format!("{k} weights, one per reference policy"),
            ));
        }
    };
    let gamma = check_gamma(e.gamma, e.gamma_schedule, sweeps_gamma)?;
    let ns = check_ns(e.n.as_deref(), e.n_grid, e.sampler)?;
    let sampling = match (&e.sampling, e.sampler) {
        (Some(s), SamplerKind::FixedDesign) => {
            return Err(Error::invalid(
                "experiment.sampling",
                format!("\"{s}\""),
                "no sampling policy with sampler = \"fixed_design\" (the design gives the comparisons)",
            ));
        }
        // Unused: no policy draws a fixed design's comparisons (`Spec::sampling`).
        (None, SamplerKind::FixedDesign) => Sampling::Uniform,
        (s, _) => Sampling::parse(s.as_deref().unwrap_or("geometric"), k_min)?,
    };
    in_range(
        "experiment.delta",
        e.delta,
        (Bound::Excluded(0.0), Bound::Excluded(1.0)),
        "a probability in (0, 1)",
    )?;
    let linear_class = matches!(e.estimator, Estimator::DpoLinear | Estimator::IpoLinear);
    if linear_class && !matches!(instance.reward, RewardModel::Linear(_)) {
        let name = e.estimator.label();
        return Err(Error::invalid(
            "experiment.estimator",
            format!("\"{name}\""),
            format!(
                "\"{name}\" with the linear reward class only (its policy class is built on the features)"
            ),
        ));
    }
    if e.estimator.is_ipo() && e.divergence != Divergence::Rkl {
        let name = e.estimator.label();
        return Err(Error::invalid(
            "experiment.estimator",
            format!("\"{name}\""),
            format!(
                "\"{name}\" with divergence = \"rkl\" only (IPO regularises toward pi_ref = the escort g, docs/theory.md §9.8)"
            ),
        ));
    }
    in_range(
        "experiment.rounds",
        u64::from(e.rounds),
        1..=ns[0].min(1000),
        format!(
            "an integer from 1 to min(1000, smallest n = {}) (1 = offline)",
            ns[0]
        ),
    )?;
    if e.rounds > 1 && e.sampler == SamplerKind::FixedDesign {
        return Err(Error::invalid(
            "experiment.rounds",
            e.rounds,
            "1 with sampler = \"fixed_design\" (online rounds draw from the fitted policy)",
        ));
    }
    if e.rounds > 1 && e.estimator != Estimator::Mle {
        return Err(Error::invalid(
            "experiment.rounds",
            e.rounds,
            "1 with a DPO or IPO estimator (online collection is implemented for the plug-in MLE)",
        ));
    }
    let mut record = e.record.clone();
    record.dedup();
    if record.contains(&Record::Comparators) && e.divergence != Divergence::Rkl {
        return Err(Error::invalid(
            "experiment.record",
            "\"comparators\"",
            "\"comparators\" with divergence = \"rkl\" only (docs/theory.md §6 compares RKL policies)",
        ));
    }
    Ok(Experiment {
        weights,
        gamma,
        ns,
        sampling,
        record,
    })
}

/// `experiment.gamma` / `gamma_schedule`: exactly one of them, in range, unless the sweep
/// sets gamma (`sweeps_gamma`), when neither may be given (the rule is then NaN).
fn check_gamma(
    gamma: Option<f64>,
    schedule: Option<GammaSchedule>,
    sweeps_gamma: bool,
) -> Result<GammaRule> {
    match (gamma, schedule) {
        (None, None) if sweeps_gamma => Ok(GammaRule::Fixed(f64::NAN)), // set per cell
        (Some(_), _) | (_, Some(_)) if sweeps_gamma => Err(Error::invalid(
            "experiment.gamma",
            "given together with sweep.gamma",
            "gamma from the sweep only: remove experiment.gamma / gamma_schedule",
        )),
        (Some(g), None) => {
            in_range(
                "experiment.gamma",
                g,
                GAMMA_RANGE.0..=GAMMA_RANGE.1,
                "a number in [1e-6, 1e6]",
            )?;
            Ok(GammaRule::Fixed(g))
        }
        (None, Some(s)) => {
            in_range(
                "experiment.gamma_schedule.c",
                s.c,
                1e-6..=1e6,
                "a number in [1e-6, 1e6]",
            )?;
            in_range(
                "experiment.gamma_schedule.p",
                s.p,
                0.0..=1.0,
                "an exponent in [0, 1]",
            )?;
            Ok(GammaRule::Schedule(s))
        }
        (Some(_), Some(_)) => Err(Error::invalid(
            "experiment.gamma",
            "given together with gamma_schedule",
            "exactly one of gamma, gamma_schedule",
        )),
        (None, None) => Err(Error::invalid(
            "experiment.gamma",
            "missing",
            "gamma = <number> or gamma_schedule = { c, p }",
        )),
    }
}

/// `experiment.n` / `n_grid`: exactly one of them, giving a non-empty, strictly increasing
/// list of sample sizes from 1 up to the `sampler`'s limit.
fn check_ns(n: Option<&[u64]>, n_grid: Option<NGrid>, sampler: SamplerKind) -> Result<Vec<u64>> {
    let ns = match (n, n_grid) {
        (Some(ns), None) => ns.to_vec(),
        (None, Some(g)) => {
            if g.from == 0 || g.to <= g.from || g.levels < 2 || g.levels > MAX_LEVELS {
                return Err(Error::invalid(
                    "experiment.n_grid",
                    format!(
                        "{{ from = {}, to = {}, levels = {} }}",
                        g.from, g.to, g.levels
                    ),
                    format!("1 <= from < to and 2 <= levels <= {MAX_LEVELS}"),
                ));
            }
            let ratio = g.to as f64 / g.from as f64;
            let mut v: Vec<u64> = (0..g.levels)
                .map(|j| {
                    (g.from as f64 * ratio.powf(j as f64 / (g.levels - 1) as f64)).round() as u64
                })
                .collect();
            v.dedup();
            v
        }
        (Some(_), Some(_)) => {
            return Err(Error::invalid(
                "experiment.n",
                "given together with n_grid",
                "exactly one of n, n_grid",
            ));
        }
        (None, None) => {
            return Err(Error::invalid(
                "experiment.n",
                "missing",
                "n = [n_1, n_2, ...] or n_grid = { from, to, levels }",
            ));
        }
    };
    non_empty(
        "experiment.n",
        &ns,
        "a non-empty, strictly increasing list of sample sizes >= 1",
    )?;
    in_range(
        "experiment.n (length)",
        ns.len(),
        ..=MAX_LEVELS,
        format!("at most {MAX_LEVELS} sample sizes, as for n_grid levels"),
    )?;
    if ns[0] == 0 || ns.windows(2).any(|w| w[1] <= w[0]) {
        return Err(Error::invalid(
            "experiment.n",
            format!("{ns:?}"),
            "a strictly increasing list of sample sizes >= 1",
        ));
    }
    let max_n = if sampler == SamplerKind::PerSample {
        MAX_N_PER_SAMPLE
    } else {
        MAX_N
    };
    in_range(
        "experiment.n",
        *ns.last().unwrap(),
        ..=max_n,
        format!("sample sizes up to {max_n} with sampler = {sampler:?} (per_sample costs O(n))"),
    )?;
    Ok(ns)
}

/// Smallest share of a design row (the apportionment compares shares exactly in 128-bit
/// integers, `fixed_design::apportion`).
pub const MIN_SHARE: f64 = 1e-6;

/// `experiment.design` against `sampler`, the n grid and the instance: given exactly with
/// `sampler = "fixed_design"`, not in an instance sweep (`swept`), at least one row, each
/// with context and responses in range, a != b, and exactly one of `count` (1 to 1e12) or
/// `share` (in [1e-6, 1]); shares summing to 1 (within 1e-9); the fixed counts' total C at
/// most the smallest n, and n = [C] when no row has a share.
fn check_design(
    e: &RawExperiment,
    ns: &[u64],
    instance: &Instance,
    swept: bool,
) -> Result<Option<Schedule>> {
    let raw = match (&e.design, e.sampler) {
        (None, SamplerKind::FixedDesign) => {
            return Err(Error::invalid(
                "experiment.design",
                "missing",
                "[experiment.design] with comparisons = [{ context, a, b, count or share }, ...] for sampler = \"fixed_design\"",
            ));
        }
        (None, _) => return Ok(None),
        (Some(_), SamplerKind::FixedDesign) if swept => {
            return Err(Error::invalid(
                "experiment.design",
                "given with an instance sweep",
                "a fixed design without an instance sweep (its indices refer to one instance)",
            ));
        }
        (Some(d), SamplerKind::FixedDesign) => d,
        (Some(_), other) => {
            return Err(Error::invalid(
                "experiment.design",
                format!("given with sampler = \"{}\"", other.label()),
                "a design only with sampler = \"fixed_design\"",
            ));
        }
    };
    non_empty(
        "experiment.design.comparisons",
        &raw.comparisons,
        "at least one comparison { context, a, b, count or share }",
    )?;
    let (nx, ny) = (instance.contexts, instance.responses);
    let mut rows = Vec::with_capacity(raw.comparisons.len());
    for (i, r) in raw.comparisons.iter().enumerate() {
        let field = |name: &str| format!("experiment.design.comparisons[{i}].{name}");
        in_range(
            &field("context"),
            r.context,
            ..nx,
            format!("a context index from 0 to {}", nx - 1),
        )?;
        in_range(
            &field("a"),
            r.a,
            ..ny,
            format!("a response index from 0 to {}", ny - 1),
        )?;
        in_range(
            &field("b"),
            r.b,
            ..ny,
            format!("a response index from 0 to {}", ny - 1),
        )?;
        if r.a == r.b {
            return Err(Error::invalid(
                field("b"),
                r.b,
                format!(
                    "a response other than a = {} (a comparison of two responses)",
                    r.a
                ),
            ));
        }
        let size = match (r.count, r.share) {
            (Some(c), None) => {
                in_range(
                    &field("count"),
                    c,
                    1..=MAX_N,
                    format!("an integer from 1 to {MAX_N}"),
                )?;
                Size::Count(c)
            }
            (None, Some(sh)) => {
                in_range(
                    &field("share"),
                    sh,
                    MIN_SHARE..=1.0,
                    "a number in [1e-6, 1]",
                )?;
                Size::Share(sh)
            }
            (c, _) => {
                return Err(Error::invalid(
                    format!("experiment.design.comparisons[{i}]"),
                    if c.is_some() {
                        "both count and share"
                    } else {
                        "neither count nor share"
                    },
                    "exactly one of count (an integer >= 1) or share (in [1e-6, 1])",
                ));
            }
        };
        rows.push(Row {
            context: r.context,
            a: r.a,
            b: r.b,
            size,
        });
    }
    let schedule = Schedule {
        contexts: nx,
        responses: ny,
        rows,
    };
    let shares: Vec<f64> = schedule
        .rows
        .iter()
        .filter_map(|r| match r.size {
            Size::Share(s) => Some(s),
            Size::Count(_) => None,
        })
        .collect();
    let total: f64 = shares.iter().sum();
    if !shares.is_empty() && (total - 1.0).abs() > SIMPLEX_TOLERANCE {
        return Err(Error::invalid(
            "experiment.design.comparisons (sum of shares)",
            fmt_num((total * 1e12).round() / 1e12),
            "shares summing to 1 (within 1e-9)",
        ));
    }
    let fixed = schedule.fixed_total();
    if fixed > MAX_N {
        return Err(Error::invalid(
            "experiment.design.comparisons (sum of counts)",
            fixed,
            format!("at most {MAX_N}"),
        ));
    }
    if shares.is_empty() && ns != [fixed] {
        return Err(Error::invalid(
            "experiment.n",
            format!("{ns:?}"),
            format!(
                "n = [{fixed}], the design's total, with a design of counts only (give a row a share to run an n grid)"
            ),
        ));
    }
    if ns[0] < fixed {
        return Err(Error::invalid(
            "experiment.n",
            format!("{ns:?}"),
            format!("sample sizes >= {fixed}, the sum of the design's counts"),
        ));
    }
    Ok(Some(schedule))
}

/// `[sweep]` -> the cells: one `main` cell without a sweep, else one per gamma, weight
/// vector or simplex grid point (exactly one of them, each value checked), with distinct
/// labels and, where needed, overlapping supports ([`check_supports`]).
fn check_cells(
    sweep: Option<RawSweep>,
    experiment: &Experiment,
    instance: &Instance,
) -> Result<Vec<Cell>> {
    let k = instance.k();
    let (weights, gamma) = (&experiment.weights, experiment.gamma);
    let mut cells = vec![];
    let sweep = match sweep {
        Some(RawSweep {
            gamma: None,
            weights: None,
            simplex_step: Some(step),
            ..
        }) => Some(RawSweep {
            weights: Some(simplex_grid(step, k)?),
            simplex_step: None,
            ..Default::default()
        }),
        other => other,
    };
    match sweep {
        None => cells.push(Cell {
            label: "main".into(),
            weights: weights.clone(),
            gamma,
            instance: None,
        }),
        Some(RawSweep {
            gamma: Some(gs),
            weights: None,
            simplex_step: None,
            ..
        }) => {
            non_empty("sweep.gamma", &gs, "a non-empty list of gammas")?;
            for (j, &g) in gs.iter().enumerate() {
                in_range(
                    &format!("sweep.gamma[{j}]"),
                    g,
                    GAMMA_RANGE.0..=GAMMA_RANGE.1,
                    "a number in [1e-6, 1e6]",
                )?;
                cells.push(Cell {
                    label: format!("gamma={}", fmt_num(g)),
                    weights: weights.clone(),
                    gamma: GammaRule::Fixed(g),
                    instance: None,
                });
            }
        }
        Some(RawSweep {
            gamma: None,
            weights: Some(ws),
            simplex_step: None,
            ..
        }) => {
            non_empty("sweep.weights", &ws, "a non-empty list of weight vectors")?;
            for (j, w) in ws.iter().enumerate() {
                let w = check_weights(&format!("sweep.weights[{j}]"), w, k)?;
                let label = format!(
                    "weights={}",
                    w.iter().map(|v| fmt_num(*v)).collect::<Vec<_>>().join(":")
                );
                cells.push(Cell {
                    label,
                    weights: w,
                    gamma,
                    instance: None,
                });
            }
        }
        Some(_) => {
            return Err(Error::invalid(
                "sweep",
                "none or several of gamma, weights, simplex_step",
                "exactly one of sweep.gamma, sweep.weights, sweep.simplex_step",
            ));
        }
    }
    check_distinct(&cells)?;
    Ok(cells)
}

/// Refuses two cells with the same label (the label keys the cell's streams).
fn check_distinct(cells: &[Cell]) -> Result<()> {
    let mut labels: Vec<&str> = cells.iter().map(|c| c.label.as_str()).collect();
    labels.sort_unstable();
    if let Some(w) = labels.windows(2).find(|w| w[0] == w[1]) {
        return Err(Error::invalid(
            "sweep",
            format!("duplicate cell {}", w[0]),
            "distinct values",
        ));
    }
    Ok(())
}

/// The instances of an instance sweep over `param`, one per value (docs/theory.md §2,
/// "Instance sweeps"): each value checked where `[instance]` checks it (the error names
/// `sweep.<param>[j]`), then the sub-instance of the master (`nested`) or a fresh draw from
/// the master's stream (`redraw`). `draw` defaults to `nested` where the parameter nests.
fn check_instance_sweep(
    param: InstanceParam,
    values: &[f64],
    draw: Option<InstanceDraw>,
    raw: &RawInstanceSpec,
    master: &Instance,
    seed: u64,
    base: Option<&Path>,
) -> Result<Vec<(InstanceSetting, Instance)>> {
    let name = param.name();
    non_empty(
        &format!("sweep.{name}"),
        values,
        "a non-empty list of values",
    )?;
    let draw = draw.unwrap_or(if param.nests() {
        InstanceDraw::Nested
    } else {
        InstanceDraw::Redraw
    });
    if draw == InstanceDraw::Nested && !param.nests() {
        return Err(Error::invalid(
            "sweep.draw",
            "\"nested\"",
            format!(
                "\"redraw\" for a sweep over {name} (only references, contexts and responses nest)"
            ),
        ));
    }
    let mut out: Vec<(InstanceSetting, Instance)> = vec![];
    for (j, &value) in values.iter().enumerate() {
        let field = format!("sweep.{name}[{j}]");
        if out.iter().any(|(s, _)| s.value == value) {
            return Err(Error::invalid(&field, fmt_num(value), "distinct values"));
        }
        let instance = match draw {
            InstanceDraw::Nested => master.nested(param, value as usize, &field)?,
            InstanceDraw::Redraw => {
                let RawInstanceSpec::Random { .. } = raw else {
                    return Err(Error::invalid(
                        "sweep.draw",
                        "\"redraw\"",
                        "\"redraw\" with a random instance only (an instance file can be swept over references, contexts or responses with draw = \"nested\")",
                    ));
                };
                let redrawn = with_param(raw, param, value).ok_or_else(|| {
                    Error::invalid(
                        &field,
                        fmt_num(value),
                        "a sweep over dim with the linear reward class only",
                    )
                })?;
                check_instance(redrawn, seed, base)
                    .map_err(|e| match e {
                        Error::Invalid {
                            field: f,
                            value,
                            allowed,
                        } => Error::Invalid {
                            field: format!("{field}: {f}"),
                            value,
                            allowed,
                        },
                        other => other,
                    })?
                    .0
            }
        };
        out.push((InstanceSetting { param, value, draw }, instance));
    }
    Ok(out)
}

/// A random instance section with `param` set to `value` (`None`: dim of a finite class).
fn with_param(raw: &RawInstanceSpec, param: InstanceParam, value: f64) -> Option<RawInstanceSpec> {
    let mut raw = raw.clone();
    if let RawInstanceSpec::Random {
        contexts,
        responses,
        references,
        concentration,
        zero_fraction,
        reward,
        ..
    } = &mut raw
    {
        match param {
            InstanceParam::References => *references = value as usize,
            InstanceParam::Contexts => *contexts = value as usize,
            InstanceParam::Responses => *responses = value as usize,
            InstanceParam::ZeroFraction => *zero_fraction = value,
            InstanceParam::Concentration => *concentration = value,
            InstanceParam::Dim => match reward {
                RawGeneratorReward::Linear { dim, .. } => *dim = value as usize,
                RawGeneratorReward::Finite { .. } => return None,
            },
        }
    }
    Some(raw)
}

/// The cells of an instance sweep: for each value (instance-major), the cells of the rest of
/// the sweep (gamma, weights or the simplex grid; one cell if none). In a sweep over
/// `references` the weights are paired with the values instead: `sweep.weights[j]` (of
/// length K_j) or uniform 1/K_j. Labels are `<param>=<value>`, then `,<rest>` when the rest
/// sweeps too. Returns the cells and each cell's index into `by_value`.
fn check_instance_cells(
    mut sweep: RawSweep,
    experiment: &Experiment,
    by_value: &[(InstanceSetting, Instance)],
) -> Result<(Vec<Cell>, Vec<usize>)> {
    let param = by_value[0].0.param;
    let paired = if param == InstanceParam::References {
        if sweep.simplex_step.is_some() {
            return Err(Error::invalid(
                "sweep.simplex_step",
                fmt_num(sweep.simplex_step.unwrap_or(f64::NAN)),
                "no simplex grid in a sweep over references (give one weight vector per K in sweep.weights)",
            ));
        }
        let ws = sweep.weights.take();
        if let Some(ws) = &ws
            && ws.len() != by_value.len()
        {
            return Err(Error::invalid(
                "sweep.weights (length)",
                ws.len(),
                format!(
                    "one weight vector per value of sweep.references ({})",
                    by_value.len()
                ),
            ));
        }
        Some(ws)
    } else {
        None
    };
    let rest = if sweep.gamma.is_some() || sweep.weights.is_some() || sweep.simplex_step.is_some() {
        let rest = RawSweep {
            gamma: sweep.gamma,
            weights: sweep.weights,
            simplex_step: sweep.simplex_step,
            ..Default::default()
        };
        Some(rest)
    } else {
        None
    };
    let mut cells = vec![];
    let mut index = vec![];
    for (i, (setting, instance)) in by_value.iter().enumerate() {
        let head = format!("{}={}", setting.param.name(), fmt_num(setting.value));
        let mut experiment_i = Experiment {
            weights: experiment.weights.clone(),
            gamma: experiment.gamma,
            ns: vec![],
            sampling: experiment.sampling,
            record: vec![],
        };
        if let Some(ws) = &paired {
            let k = instance.k();
            experiment_i.weights = match ws {
                Some(ws) => check_weights(&format!("sweep.weights[{i}]"), &ws[i], k)?,
                None => vec![1.0 / k as f64; k],
            };
        }
        let inner = match &rest {
            Some(rest) => check_cells(Some(rest.clone()), &experiment_i, instance)?,
            None => vec![Cell {
                label: String::new(),
                weights: experiment_i.weights.clone(),
                gamma: experiment_i.gamma,
                instance: None,
            }],
        };
        for c in inner {
            cells.push(Cell {
                label: if c.label.is_empty() {
                    head.clone()
                } else {
                    format!("{head},{}", c.label)
                },
                instance: Some(*setting),
                ..c
            });
            index.push(i);
        }
    }
    check_distinct(&cells)?;
    Ok((cells, index))
}

/// Where the RKL solution or the escort is used (`divergence` RKL or `sampling` geometric),
/// the references with positive weight in the cell must share a response at every context.
fn check_supports(
    c: &Cell,
    instance: &Instance,
    divergence: Divergence,
    sampling: Sampling,
) -> Result<()> {
    if divergence == Divergence::Rkl || sampling == Sampling::Geometric {
        let empty = instance.empty_intersections(&c.weights);
        if let Some(&x) = empty.first() {
            return Err(Error::invalid(
                format!("instance references at context {x}"),
                "disjoint supports",
                format!(
                    "references with positive weight ({}) sharing a response at every context (the RKL solution and the escort live on the intersection of supports, docs/theory.md D4)",
                    c.label
                ),
            ));
        }
    }
    Ok(())
}

/// `claim` / `claims`: at most one of them; the claim ids (checked last, after the sweep).
fn check_claims(claim: Option<String>, claims: Option<Vec<String>>) -> Result<Vec<String>> {
    match (claim, claims) {
        (Some(_), Some(_)) => Err(Error::invalid(
            "claim",
            "both claim and claims",
            "one of `claim = \"ID\"` or `claims = [\"ID\", ...]`",
        )),
        (Some(c), None) => Ok(vec![c]),
        (None, Some(cs)) => Ok(cs),
        (None, None) => Ok(vec![]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
seed = 3
replications = 4
[instance]
source = "random"
contexts = 3
responses = 4
references = 2
[instance.reward]
class = "linear"
dim = 2
bound = 1.0
[experiment]
divergence = "rkl"
quantity = "suboptimality"
weights = [0.5, 0.5]
gamma = 1.0
n = [10, 20, 40]
"#;

    fn err(text: &str) -> String {
        parse(text, Path::new("t.toml"), "t", None)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn good_spec_checks() {
        let s = parse(GOOD, Path::new("t.toml"), "t", None).unwrap();
        assert_eq!(s.cells.len(), 1);
        assert_eq!(s.sampling, Sampling::Geometric);
        assert_eq!(s.ns, vec![10, 20, 40]);
    }

    #[test]
    fn bad_specs_name_field_value_and_allowed() {
        let e = err(&GOOD.replace("weights = [0.5, 0.5]", "weights = [0.7, 0.5]"));
        assert!(
            e.contains("experiment.weights") && e.contains("simplex"),
            "{e}"
        );
        let e = err(&GOOD.replace("gamma = 1.0", "gamma = 0.0"));
        assert!(e.contains("experiment.gamma = 0"), "{e}");
        let e = err(&GOOD.replace("n = [10, 20, 40]", "n = [10, 40, 20]"));
        assert!(
            e.contains("experiment.n") && e.contains("increasing"),
            "{e}"
        );
        let e = err(&GOOD.replace("n = [10, 20, 40]", "n = []"));
        assert!(e.contains("experiment.n = []"), "{e}");
        let e = err(&GOOD.replace("seed = 3", "seed = 3\ncolour = 1"));
        assert!(e.contains("colour"), "{e}");
        let e = err(&GOOD.replace("dim = 2", "dim = 2\nwidth = 3"));
        assert!(e.contains("width"), "{e}");
        let e = err(&GOOD.replace("weights = [0.5, 0.5]", "weights = [1.0]"));
        assert!(e.contains("experiment.weights (length) = 1"), "{e}");
        let e = err(&GOOD.replace("quantity = \"suboptimality\"", "quantity = \"regret\""));
        assert!(e.contains("regret"), "{e}");
        let e = err(&GOOD.replace(
            "divergence = \"rkl\"",
            "divergence = \"rkl\"\nsampling = \"ref:3\"",
        ));
        assert!(
            e.contains("experiment.sampling") && e.contains("ref:i with i in 1..=2"),
            "{e}"
        );
        assert!(!e.contains('\n'));
    }

    #[test]
    fn names_dot_and_dot_dot_are_refused() {
        // A name of `..` would put the results folder outside --out; `.` would be --out.
        for name in [".", ".."] {
            let text = GOOD.replace("seed = 3", &format!("name = \"{name}\"\nseed = 3"));
            let e = err(&text);
            assert_eq!(
                e,
                format!(
                    "name = \"{name}\" is not allowed: a name other than \".\" and \"..\" (it names the results folder, inside --out)"
                )
            );
            let e = parse(GOOD, Path::new("t.toml"), name, None)
                .unwrap_err()
                .to_string();
            assert!(e.starts_with(&format!("name = \"{name}\"")), "{e}");
        }
        for name in ["...", "a.b", ".hidden", "x..y"] {
            let text = GOOD.replace("seed = 3", &format!("name = \"{name}\"\nseed = 3"));
            let s = parse(&text, Path::new("t.toml"), "t", None).unwrap();
            assert_eq!(s.name(), name);
        }
        // Other characters keep their own message.
        let e = err(&GOOD.replace("seed = 3", "name = \"../x\"\nseed = 3"));
        assert!(e.contains("letters, digits"), "{e}");
    }

    /// A spec with problems in two sections reports the one checked first: header,
    /// options, instance, experiment, options.dpo_ridge, sweep, claims.
    #[test]
    fn first_error_follows_the_section_order() {
        let first = |edits: &[(&str, &str)], append: &str| {
            let mut text = GOOD.to_string();
            for (from, to) in edits {
                assert!(text.contains(from), "{from}");
                text = text.replace(from, to);
            }
            text.push_str(append);
            let e = err(&text);
            e.split(" = ").next().unwrap().to_string()
        };
        let name = ("seed = 3", "name = \"a/b\"\nseed = 3");
        let replications = ("replications = 4", "replications = 1");
        let contexts = ("contexts = 3", "contexts = 0");
        let weights = ("weights = [0.5, 0.5]", "weights = [0.7, 0.5]");
        let no_gamma = ("gamma = 1.0", "");
        let claims = ("seed = 3", "claim = \"A\"\nclaims = [\"B\"]\nseed = 3");
        let ci = "[options]\nci_level = 0.1\n";
        let ridge = "[options]\ndpo_ridge = -1.0\n";
        let sweep = "[sweep]\nweights = []\n";
        assert_eq!(first(&[name, replications], ci), "name");
        assert_eq!(first(&[replications, contexts], ci), "replications");
        assert_eq!(first(&[contexts], ci), "options.ci_level");
        assert_eq!(first(&[contexts, weights], ""), "instance.contexts");
        assert_eq!(first(&[weights, no_gamma], ridge), "experiment.weights");
        assert_eq!(first(&[no_gamma], ridge), "experiment.gamma");
        assert_eq!(first(&[], &format!("{ridge}{sweep}")), "options.dpo_ridge");
        assert_eq!(first(&[claims], sweep), "sweep.weights");
        assert_eq!(first(&[claims], ""), "claim");
    }
}
