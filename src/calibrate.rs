//! `mrkl calibrate`: the checker's operating characteristic (docs/theory.md §7, "Calibration").
//!
//! Over many master seeds (each seed: new random instances, new data), the specs are run and
//! judged as `mrkl check --seed s` judges them, and three things are counted:
//!
//! - **false alarms**: `violated` verdicts on the registry's claims, which are true;
//! - **coverage**: how often the exponent's bootstrap interval contains the predicted
//!   asymptotic exponent (`asymptotic.exponent` of the cell), and how often the constant's
//!   interval contains 1 (`claims::rate::ConstantEstimate::interval`, the judgement's rule
//!   without the allowance, at the same level as the exponent's interval);
//! - **power**: on a few representative rate specs, claims made false by a known amount are
//!   judged on the same simulated data: the claimed exponent shifted to `a - d` (a claimed
//!   decay faster than the predicted `a` by `d`), or the claimed constant scaled by `1 ± e`.
//!   A planted deviation counts as detected when the finding it concerns contradicts the
//!   claim (the rate finding comes out `slower`, the constant finding `differs`).
//!
//! Power is measured for R replications and a grid cut at `n_max` without running anything
//! again: every replication owns its random stream, derived from the master seed and the
//! unit's identity (cell label, replication index; `crate::streams`, `crate::engine`), and
//! walks the grid with nested datasets, so the first R replications of a run with more, and
//! the first levels of its grid, are bit for bit what a run with R replications and the
//! shorter grid would give (tested in tests/calibrate.rs).
//!
//! # Formula
//! Binomial bounds are exact (Clopper-Pearson, docs/theory.md §7, "Calibration"): with x events
//! in k trials, the one-sided upper bound at level 1 - alpha is the p with
//! P[Bin(k, p) <= x] = alpha (for x = 0: 1 - alpha^(1/k)); the two-sided interval has
//! alpha / 2 on each side.
//!
//! Each seed's outcome is written atomically to `<out>/seeds/seed-<s>.json` as soon as it is
//! done, so a killed calibration resumes (`resume`) where it stopped; seeds run in parallel
//! and are aggregated in seed order, so the output does not depend on the thread count.

use crate::claims::judgement::{ConstantOutcome, RateOutcome};
use crate::claims::{self, ClaimKind, Finding, Registry, Variable, Verdict};
use crate::error::{Error, Result};
use crate::result::ResultFile;
use crate::spec::{self, Spec};
use crate::{analysis, engine, fsio, journal, suite};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Format of `calibration.json`.
pub const FORMAT: &str = "mrkl-calibration/1";
/// Format of the per-seed outcome files.
pub const SEED_FORMAT: &str = "mrkl-calibration-seed/2";
/// The level of every binomial bound: one-sided 95% for false alarms, two-sided 95% for
/// coverage and power [ours].
pub const ALPHA: f64 = 0.05;
/// Power that the advice asks for [ours].
pub const TARGET_POWER: f64 = 0.95;
/// The specs of the power study when none are named: T5.2 (linear RKL sub-optimality,
/// n^-1), T6.2 (FKL sub-optimality, whose predicted exponent is -1 below the claimed -1/2)
/// and T5.3's reward gap (n^-1/2) [ours].
pub const DEFAULT_POWER_SPECS: [&str; 3] = [
    "t5_2_rkl_suboptimality",
    "t6_2_fkl_suboptimality",
    "t5_3_rkl_reward_gap",
];

/// What `mrkl calibrate` does.
#[derive(Clone, Debug)]
pub struct CalibrateSettings {
    /// Spec files or folders (none = the default suite).
    pub paths: Vec<PathBuf>,
    /// Claims files judged beside the built-in registry.
    pub claims_files: Vec<PathBuf>,
    /// Master seeds `first_seed .. first_seed + seeds`.
    pub first_seed: u64,
    pub seeds: u64,
    /// Specs of the power study (`None`: those of [`DEFAULT_POWER_SPECS`] that are run).
    pub power_specs: Option<Vec<String>>,
    pub design: Design,
    pub out: PathBuf,
    pub threads: Option<usize>,
    pub resume: bool,
}

/// What every seed measures beyond the specs' own judgements.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Design {
    /// Replication counts of the power study; the power specs run with the largest.
    pub replications: Vec<usize>,
    /// Planted exponent deviations d > 0 (claimed exponent a - d).
    pub exponent_deviations: Vec<f64>,
    /// Planted constant deviations 0 < e < 1 (claimed constant (1 ± e) C).
    pub constant_deviations: Vec<f64>,
    /// Grids of the power study: the spec's grid without its last `k` levels, per entry.
    pub drop_levels: Vec<usize>,
    /// Run the exact checks (T5.1, T6.1, F1, DPO.identity) at every seed.
    pub exact: bool,
}

impl Default for CalibrateSettings {
    fn default() -> Self {
        CalibrateSettings {
            paths: vec![],
            claims_files: vec![],
            first_seed: 1,
            seeds: 100,
            power_specs: None,
            design: Design {
                replications: vec![50, 100, 200, 400],
                exponent_deviations: vec![0.05, 0.1, 0.2, 0.3, 0.5],
                constant_deviations: vec![0.05, 0.1, 0.2],
                drop_levels: vec![0, 3, 6],
                exact: true,
            },
            out: PathBuf::from("calibration"),
            threads: None,
            resume: false,
        }
    }
}

/// What a planted deviation changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Planted {
    /// Claimed exponent a - d (d = `deviation`).
    Exponent,
    /// Claimed constant (1 + e) C (e = `deviation`, signed).
    Constant,
}

impl Planted {
    pub fn name(self) -> &'static str {
        match self {
            Planted::Exponent => "exponent",
            Planted::Constant => "constant",
        }
    }
}

/// One verdict of one seed (not-measured judgements are left out).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeedVerdict {
    pub claim: String,
    pub evidence: String,
    pub verdict: Verdict,
    /// The judgement's reason, kept for `violated` only (what a false alarm looked like).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// The intervals of one judged cell at one configuration (R replications, grid up to n_max).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeedInterval {
    pub evidence: String,
    pub replications: usize,
    pub n_max: u64,
    pub predicted_exponent: f64,
    /// The exponent's bootstrap interval (`None`: gaps at the floor, no interval).
    pub exponent_interval: Option<(f64, f64)>,
    /// The constant's ratio measured / predicted and its SE (`None`: no constant prediction
    /// or judgement).
    pub constant_ratio: Option<(f64, f64)>,
    /// The constant's interval at the spec's `ci_level` (`claims::rate::ConstantEstimate::interval`,
    /// no allowance).
    pub constant_interval: Option<(f64, f64)>,
    /// The ratio at the first and the last judged tail level (rho_1, rho_L).
    pub constant_tail: Option<(f64, f64)>,
    /// Whether the constant judgement (with its allowance, at `CONSTANT_LEVEL`) accepts.
    pub constant_matches: Option<bool>,
}

/// Whether one planted deviation was detected at one configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeedDetection {
    pub evidence: String,
    pub claim: String,
    pub planted: Planted,
    pub deviation: f64,
    pub replications: usize,
    pub n_max: u64,
    pub detected: bool,
}

/// What one master seed gave: the file `<out>/seeds/seed-<s>.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeedOutcome {
    pub format: String,
    /// Hash of the calibration's plan ([`Plan::hash`]): a resumed run keeps only seeds of the
    /// same plan.
    pub plan_hash: String,
    pub seed: u64,
    pub verdicts: Vec<SeedVerdict>,
    pub intervals: Vec<SeedInterval>,
    pub detections: Vec<SeedDetection>,
}

/// The checked settings: what every seed runs. Hashing it names the calibration.
#[derive(Clone, Debug, Serialize)]
pub struct Plan {
    pub specs: Vec<PlanSpec>,
    pub registry: Registry,
    pub power_specs: Vec<String>,
    /// Replications sorted, grids sorted; serialised in place (the plan's hash is that of
    /// the flat fields).
    #[serde(flatten)]
    pub design: Design,
    pub ci_level_note: String,
    #[serde(skip)]
    loaded: Vec<(String, Spec)>,
}

/// A spec of the plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanSpec {
    pub name: String,
    pub origin: String,
    /// Hash of the spec as given (its own seed); every seed overrides the seed.
    pub spec_hash: String,
    pub replications: usize,
}

impl Plan {
    /// FNV-1a of the plan's JSON, in hex.
    pub fn hash(&self) -> String {
        format!(
            "{:016x}",
            crate::streams::fnv1a(serde_json::to_string(self).expect("serialises").as_bytes())
        )
    }
}

/// Checks the settings and loads specs and claims.
pub fn plan(s: &CalibrateSettings) -> Result<Plan> {
    if s.seeds == 0 {
        return Err(Error::invalid("--seeds", 0, "at least 1"));
    }
    if s.first_seed.checked_add(s.seeds).is_none() {
        return Err(Error::invalid(
            "--first-seed",
            s.first_seed,
            "first seed + seeds within 64 bits",
        ));
    }
    if s.design.replications.is_empty() || s.design.replications.iter().any(|&r| r < 2) {
        return Err(Error::invalid(
            "--replications",
            format!("{:?}", s.design.replications),
            "one or more counts, each at least 2",
        ));
    }
    if let Some(d) = s
        .design
        .exponent_deviations
        .iter()
        .find(|d| !(d.is_finite() && **d > 0.0))
    {
        return Err(Error::invalid(
            "--exponent-deviations",
            d,
            "positive numbers",
        ));
    }
    if let Some(e) = s
        .design
        .constant_deviations
        .iter()
        .find(|e| !(e.is_finite() && **e > 0.0 && **e < 1.0))
    {
        return Err(Error::invalid(
            "--constant-deviations",
            e,
            "numbers strictly between 0 and 1",
        ));
    }
    let registry = Registry::with_files(&s.claims_files)?;
    let loaded = suite::load_specs(&s.paths, &[])?;
    claims::validate_specs(&registry, loaded.iter().map(|(_, s)| s))?;
    let names: Vec<&String> = loaded.iter().map(|(_, s)| s.name()).collect();
    let power_specs = match &s.power_specs {
        None => DEFAULT_POWER_SPECS
            .iter()
            .filter(|p| names.iter().any(|n| n == p))
            .map(|p| p.to_string())
            .collect(),
        Some(given) => {
            if let Some(p) = given.iter().find(|p| !names.contains(p)) {
                return Err(Error::invalid(
                    "--power-spec",
                    p,
                    format!(
                        "the name of a spec being calibrated ({})",
                        names
                            .iter()
                            .map(|n| n.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
            given.clone()
        }
    };
    let mut replications = s.design.replications.clone();
    replications.sort_unstable();
    replications.dedup();
    let mut drop_levels = s.design.drop_levels.clone();
    drop_levels.sort_unstable();
    drop_levels.dedup();
    if drop_levels.is_empty() {
        drop_levels.push(0);
    }
    Ok(Plan {
        specs: loaded
            .iter()
            .map(|(origin, sp)| PlanSpec {
                name: sp.name().clone(),
                origin: origin.clone(),
                spec_hash: analysis::spec_hash(sp),
                replications: sp.replications(),
            })
            .collect(),
        registry,
        power_specs,
        design: Design {
            replications,
            drop_levels,
            ..s.design.clone()
        },
        ci_level_note: "exponent intervals at each spec's options.ci_level".into(),
        loaded,
    })
}

/// The spec rebuilt from its text with `overrides` (as `mrkl merge` rebuilds it).
fn respec(origin: &str, spec: &Spec, overrides: &[(String, String)]) -> Result<Spec> {
    let o = Path::new(origin);
    spec::parse_with(spec.source_toml(), o, spec.name(), o.parent(), overrides)
}

/// The first `levels` levels and first `reps` replications of a run.
fn truncate(runs: &[engine::CellRun], levels: usize, reps: usize) -> Vec<engine::CellRun> {
    let cut = |v: &Vec<Vec<f64>>| -> Vec<Vec<f64>> {
        v[..levels].iter().map(|l| l[..reps].to_vec()).collect()
    };
    runs.iter()
        .map(|r| engine::CellRun {
            values: cut(&r.values),
            iterations: r.iterations[..levels]
                .iter()
                .map(|l| l[..reps].to_vec())
                .collect(),
            on_boundary: r.on_boundary[..levels]
                .iter()
                .map(|l| l[..reps].to_vec())
                .collect(),
            extras: r.extras.iter().map(cut).collect(),
        })
        .collect()
}

/// The rate claims in n that a result names, from the registry.
fn rate_claims<'a>(registry: &'a Registry, r: &ResultFile) -> Vec<&'a claims::Claim> {
    registry
        .claim
        .iter()
        .filter(|c| c.kind == ClaimKind::Rate && c.variable == Variable::N)
        .filter(|c| r.claims.contains(&c.id))
        .collect()
}

fn contradicts_constant(f: &Finding) -> bool {
    matches!(
        f,
        Finding::Constant {
            outcome: ConstantOutcome::Differs,
            ..
        }
    )
}

/// The intervals of every predicted cell of `r` (judged with the first rate claim naming it).
fn intervals_of(registry: &Registry, r: &ResultFile) -> Vec<SeedInterval> {
    let Some(claim) = rate_claims(registry, r).first().copied() else {
        return vec![];
    };
    let level = r.spec.options.ci_level;
    let mut out = vec![];
    for cell in &r.cells {
        let Some(a) = cell.asymptotic.exponent else {
            continue;
        };
        let mut c = claim.clone();
        c.constant_factor = 1.0;
        // The constant is judged where the rate is measured (no gaps at the floor in the tail).
        let j = claims::rate::judge_rate_in_n(&c, r, cell);
        let constant = j
            .findings
            .iter()
            .any(|f| matches!(f, Finding::Constant { .. }))
            .then(|| claims::rate::constant_estimate(&c, cell))
            .flatten();
        out.push(SeedInterval {
            evidence: r.evidence(cell),
            replications: r.replications(),
            n_max: *cell.n.last().expect("non-empty grid"),
            predicted_exponent: a,
            exponent_interval: cell.exponent_mean.ci_low.zip(cell.exponent_mean.ci_high),
            constant_ratio: constant.as_ref().map(|e| (e.ratio, e.se)),
            constant_interval: constant.as_ref().map(|e| e.interval(level, false)),
            constant_tail: constant
                .as_ref()
                .map(|e| (e.per_level[0], *e.per_level.last().expect("two levels"))),
            constant_matches: constant.as_ref().map(|e| !e.differs()),
        });
    }
    out
}

/// Planted deviations judged on `r`, including deviation 0 (the claim "exponent = predicted",
/// "constant = predicted": the false-alarm rate of the finding itself). The exponent
/// deviations need one judgement: the interval does not depend on the claimed exponent, so
/// the rate finding of the claim a - d is `rate_outcome` of that interval against a - d (the
/// rule of `claims::rate`); each constant deviation is judged in full.
fn detections_of(plan: &Plan, r: &ResultFile) -> Vec<SeedDetection> {
    let mut out = vec![];
    for claim in rate_claims(&plan.registry, r) {
        for cell in &r.cells {
            let Some(a) = cell.asymptotic.exponent else {
                continue;
            };
            let judged = |factor: f64| {
                let mut c = claim.clone();
                c.claimed_exponent = Some(a);
                c.constant_factor = factor;
                claims::rate::judge_rate_in_n(&c, r, cell)
            };
            let base = judged(1.0);
            let mut record = |planted, deviation: f64, detected: bool| {
                out.push(SeedDetection {
                    evidence: r.evidence(cell),
                    claim: claim.id.clone(),
                    planted,
                    deviation,
                    replications: r.replications(),
                    n_max: *cell.n.last().expect("non-empty grid"),
                    detected,
                })
            };
            let rate = base.findings.iter().find_map(|f| match f {
                Finding::Rate {
                    interval,
                    tolerance,
                    ..
                } => Some((*interval, *tolerance)),
                _ => None,
            });
            if let Some((interval, tolerance)) = rate {
                for &d in std::iter::once(&0.0).chain(&plan.design.exponent_deviations) {
                    let detected = interval.is_some_and(|(lo, hi)| {
                        claims::rate::rate_outcome(lo, hi, a - d, tolerance) == RateOutcome::Slower
                    });
                    record(Planted::Exponent, d, detected);
                }
            }
            if base
                .findings
                .iter()
                .any(|f| matches!(f, Finding::Constant { .. }))
            {
                record(
                    Planted::Constant,
                    0.0,
                    base.findings.iter().any(contradicts_constant),
                );
                for e in plan
                    .design
                    .constant_deviations
                    .iter()
                    .flat_map(|&e| [-e, e])
                {
                    let j = judged(1.0 + e);
                    record(
                        Planted::Constant,
                        e,
                        j.findings.iter().any(contradicts_constant),
                    );
                }
            }
        }
    }
    out
}

/// Runs and judges every spec of the plan at master seed `seed`.
pub fn seed_outcome(plan: &Plan, seed: u64) -> Result<SeedOutcome> {
    let seeded = [("seed".to_string(), seed.to_string())];
    let mut results = vec![];
    let mut intervals = vec![];
    let mut detections = vec![];
    for (origin, base) in &plan.loaded {
        let spec = respec(origin, base, &seeded)?;
        let power = plan.power_specs.contains(spec.name());
        let r_max = if power {
            spec.replications()
                .max(*plan.design.replications.last().expect("checked non-empty"))
        } else {
            spec.replications()
        };
        let big = if r_max == spec.replications() {
            spec.clone()
        } else {
            let mut o = seeded.to_vec();
            o.push(("replications".into(), r_max.to_string()));
            respec(origin, base, &o)?
        };
        let runs = engine::run(&big, &|| {});
        let levels = spec.ns().len();
        let result = analysis::build(&spec, &truncate(&runs, levels, spec.replications()), None);
        intervals.extend(intervals_of(&plan.registry, &result));
        results.push(result);
        if !power {
            continue;
        }
        for &drop in &plan.design.drop_levels {
            let Some(keep) = levels.checked_sub(drop).filter(|&k| k >= 2) else {
                continue;
            };
            for &reps in &plan.design.replications {
                let mut o = seeded.to_vec();
                o.push(("replications".into(), reps.to_string()));
                if drop > 0 {
                    o.push((
                        "experiment.n_grid.to".into(),
                        spec.ns()[keep - 1].to_string(),
                    ));
                    o.push(("experiment.n_grid.levels".into(), keep.to_string()));
                }
                // A grid that is no prefix of the spec's (an explicit `n` list, rounding)
                // cannot be cut from this run: that configuration is left out.
                let Ok(cut) = respec(origin, base, &o) else {
                    continue;
                };
                if cut.ns()[..] != spec.ns()[..keep] {
                    continue;
                }
                let r = analysis::build(&cut, &truncate(&runs, keep, reps), None);
                intervals.extend(intervals_of(&plan.registry, &r));
                detections.extend(detections_of(plan, &r));
            }
        }
    }
    let verdicts = claims::judge_all(&plan.registry, &results, plan.design.exact.then_some(seed))
        .into_iter()
        .filter(|j| j.verdict != Verdict::NotMeasured)
        .map(|j| SeedVerdict {
            reason: if j.verdict == Verdict::Violated {
                j.reason.clone()
            } else {
                String::new()
            },
            claim: j.claim,
            evidence: j.evidence.unwrap_or_default(),
            verdict: j.verdict,
        })
        .collect();
    Ok(SeedOutcome {
        format: SEED_FORMAT.into(),
        plan_hash: plan.hash(),
        seed,
        verdicts,
        intervals,
        detections,
    })
}

fn seed_path(out: &Path, seed: u64) -> PathBuf {
    out.join("seeds").join(format!("seed-{seed}.json"))
}

/// The saved outcome of `seed` if it belongs to this plan; a note on stderr otherwise.
fn saved(out: &Path, seed: u64, hash: &str) -> Option<SeedOutcome> {
    let path = seed_path(out, seed);
    if !path.exists() {
        return None;
    }
    let parsed = fsio::read_text(&path)
        .ok()
        .and_then(|t| serde_json::from_str::<SeedOutcome>(&t).ok());
    match parsed {
        Some(o) if o.format == SEED_FORMAT && o.plan_hash == hash && o.seed == seed => Some(o),
        _ => {
            eprintln!(
                "note: {}: not an outcome of this calibration (other settings, or torn); recomputed",
                path.display()
            );
            None
        }
    }
}

/// Exact binomial (Clopper-Pearson) bound: the p in [0, 1] with P[Bin(k, p) <= x] = tail
/// (`upper`) or P[Bin(k, p) >= x] = tail (lower), by bisection (the tails are monotone in p).
pub fn clopper_pearson(x: u64, k: u64, tail: f64, upper: bool) -> f64 {
    use crate::statistics::binomial_upper_tail;
    match (upper, x) {
        (true, x) if x >= k => return 1.0,
        (false, 0) => return 0.0,
        _ => {}
    }
    // f(p) increases in p and crosses 0 at the bound.
    let f = |p: f64| {
        if upper {
            // 1 - P[X <= x] = P[X >= x + 1]
            binomial_upper_tail(x + 1, k, p) - (1.0 - tail)
        } else {
            binomial_upper_tail(x, k, p) - tail
        }
    };
    let (mut lo, mut hi) = (0.0f64, 1.0f64);
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if f(mid) < 0.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// A proportion with its exact two-sided 95% interval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Proportion {
    pub events: u64,
    pub trials: u64,
    pub rate: f64,
    pub ci_low: f64,
    pub ci_high: f64,
}

impl Proportion {
    pub fn of(events: u64, trials: u64) -> Self {
        Proportion {
            events,
            trials,
            rate: if trials > 0 {
                events as f64 / trials as f64
            } else {
                f64::NAN
            },
            ci_low: clopper_pearson(events, trials, ALPHA / 2.0, false),
            ci_high: clopper_pearson(events, trials, ALPHA / 2.0, true),
        }
    }
}

/// False alarms of one claim (or of all, `claim = "all"`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FalseAlarms {
    pub claim: String,
    pub judgements: u64,
    pub violated: u64,
    pub counts: BTreeMap<String, u64>,
    /// One-sided exact (1 - ALPHA) upper bound on the probability that a judgement of this
    /// claim comes out `violated`.
    pub upper_bound: f64,
    /// Seeds and evidence of every false alarm, with the reason.
    pub examples: Vec<String>,
}

/// Interval coverage of one piece of evidence at one configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Coverage {
    pub evidence: String,
    pub replications: usize,
    pub n_max: u64,
    pub nominal: f64,
    /// Seeds whose exponent interval contains the predicted exponent.
    pub exponent: Proportion,
    /// Seeds whose constant interval ratio ± t se contains 1 (t at `nominal`).
    pub constant: Option<Proportion>,
    /// Seeds whose constant judgement (allowance, at `CONSTANT_LEVEL`) accepts the prediction.
    pub constant_accepted: Option<Proportion>,
    /// Why the constant's interval misses where it does.
    pub constant_diagnostic: Option<ConstantDiagnostic>,
}

/// A mean over seeds with its standard error sd / sqrt(k).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct MeanSe {
    pub mean: f64,
    pub se: f64,
}

impl MeanSe {
    fn of(v: &[f64]) -> Self {
        let k = v.len() as f64;
        let mean = v.iter().sum::<f64>() / k;
        MeanSe {
            mean,
            se: sample_sd(v, mean) / k.sqrt(),
        }
    }
}

fn sample_sd(v: &[f64], mean: f64) -> f64 {
    (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (v.len() as f64 - 1.0)).sqrt()
}

/// What separates the causes of a constant interval's misses, over the seeds of one
/// configuration (each seed: a new instance, so the ratio's truth is 1 at every seed):
/// a bias of the ratio (`bias`, and `first_bias` / `last_bias` at the first and the last
/// tail level: higher-order terms shrink in n), an SE too small (`sd` of the ratio over seeds
/// against `rms_se`, the root mean square of the seeds' SEs; `z_sd`, the sd of
/// (rho - 1) / se, is 1 for a correct SE) and a skewed law (the misses on one side only:
/// `misses_below`, intervals below 1, against `misses_above`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConstantDiagnostic {
    pub seeds: u64,
    /// mean over seeds of rho - 1.
    pub bias: MeanSe,
    /// mean over seeds of rho_1 - 1 and rho_L - 1.
    pub first_bias: MeanSe,
    pub last_bias: MeanSe,
    pub sd: f64,
    pub rms_se: f64,
    /// mean and sd over seeds of (rho - 1) / se.
    pub z_mean: f64,
    pub z_sd: f64,
    pub misses_below: u64,
    pub misses_above: u64,
}

impl ConstantDiagnostic {
    fn of(seeds: &[&SeedInterval]) -> Option<Self> {
        let rows: Vec<((f64, f64), (f64, f64), (f64, f64))> = seeds
            .iter()
            .filter_map(|i| Some((i.constant_ratio?, i.constant_interval?, i.constant_tail?)))
            .collect();
        if rows.len() < 2 {
            return None;
        }
        let col = |f: &dyn Fn(&((f64, f64), (f64, f64), (f64, f64))) -> f64| -> Vec<f64> {
            rows.iter().map(f).collect()
        };
        let ratio = col(&|r| r.0.0 - 1.0);
        let bias = MeanSe::of(&ratio);
        let z = col(&|r| (r.0.0 - 1.0) / r.0.1);
        let z_mean = z.iter().sum::<f64>() / z.len() as f64;
        Some(ConstantDiagnostic {
            seeds: rows.len() as u64,
            bias,
            first_bias: MeanSe::of(&col(&|r| r.2.0 - 1.0)),
            last_bias: MeanSe::of(&col(&|r| r.2.1 - 1.0)),
            sd: sample_sd(&ratio, bias.mean),
            rms_se: (col(&|r| r.0.1 * r.0.1).iter().sum::<f64>() / rows.len() as f64).sqrt(),
            z_mean,
            z_sd: sample_sd(&z, z_mean),
            misses_below: rows.iter().filter(|r| r.1.1 < 1.0).count() as u64,
            misses_above: rows.iter().filter(|r| r.1.0 > 1.0).count() as u64,
        })
    }
}

/// Detection rate of one planted deviation at one configuration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Power {
    pub evidence: String,
    pub claim: String,
    pub planted: Planted,
    pub deviation: f64,
    pub replications: usize,
    pub n_max: u64,
    pub detected: Proportion,
}

/// The cheapest configuration (fewest R x n_max, the simulation's cost) with at least
/// TARGET_POWER measured power, per evidence, planted kind and deviation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Advice {
    pub evidence: String,
    pub planted: Planted,
    pub deviation: f64,
    /// `None`: no configuration studied reaches the target.
    pub replications: Option<usize>,
    pub n_max: Option<u64>,
    pub power: Option<f64>,
    pub text: String,
}

/// The content of `calibration.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub format: String,
    pub mrkl_version: String,
    pub git_commit: Option<String>,
    pub plan_hash: String,
    pub seeds: Vec<u64>,
    pub specs: Vec<PlanSpec>,
    pub power_specs: Vec<String>,
    pub replications: Vec<usize>,
    pub exponent_deviations: Vec<f64>,
    pub constant_deviations: Vec<f64>,
    pub exact_checks: bool,
    pub alpha: f64,
    pub target_power: f64,
    pub false_alarms: Vec<FalseAlarms>,
    pub coverage: Vec<Coverage>,
    pub power: Vec<Power>,
    pub advice: Vec<Advice>,
}

/// Aggregates seed outcomes (in seed order) into the calibration.
pub fn aggregate(plan: &Plan, outcomes: &[SeedOutcome], nominal: f64) -> Calibration {
    // False alarms per claim, then all claims together.
    let mut by_claim: BTreeMap<String, FalseAlarms> = BTreeMap::new();
    let blank = |claim: &str| FalseAlarms {
        claim: claim.into(),
        judgements: 0,
        violated: 0,
        counts: BTreeMap::new(),
        upper_bound: 1.0,
        examples: vec![],
    };
    let mut all = blank("all");
    for o in outcomes {
        for v in &o.verdicts {
            for fa in [
                by_claim
                    .entry(v.claim.clone())
                    .or_insert_with(|| blank(&v.claim)),
                &mut all,
            ] {
                fa.judgements += 1;
                *fa.counts.entry(v.verdict.name().to_string()).or_default() += 1;
                if v.verdict == Verdict::Violated {
                    fa.violated += 1;
                    fa.examples
                        .push(format!("seed {}: {}: {}", o.seed, v.evidence, v.reason));
                }
            }
        }
    }
    // Registry order, then "all".
    let mut false_alarms: Vec<FalseAlarms> = plan
        .registry
        .claim
        .iter()
        .filter_map(|c| by_claim.remove(&c.id))
        .collect();
    false_alarms.push(all);
    for fa in &mut false_alarms {
        fa.upper_bound = clopper_pearson(fa.violated, fa.judgements, ALPHA, true);
    }

    let mut cov: BTreeMap<(String, usize, u64), ([u64; 6], Vec<&SeedInterval>)> = BTreeMap::new();
    let mut order = vec![];
    for o in outcomes {
        // The spec's own configuration is also one of the power study's: count it once.
        let mut seen = std::collections::BTreeSet::new();
        for i in &o.intervals {
            let key = (i.evidence.clone(), i.replications, i.n_max);
            if !seen.insert(key.clone()) {
                continue;
            }
            let (e, kept) = cov.entry(key.clone()).or_insert_with(|| {
                order.push(key);
                ([0; 6], vec![])
            });
            if let Some((lo, hi)) = i.exponent_interval {
                e[0] += 1;
                e[1] += (lo <= i.predicted_exponent && i.predicted_exponent <= hi) as u64;
            }
            if let Some((lo, hi)) = i.constant_interval {
                e[2] += 1;
                e[3] += (lo <= 1.0 && 1.0 <= hi) as u64;
            }
            if let Some(m) = i.constant_matches {
                e[4] += 1;
                e[5] += m as u64;
            }
            kept.push(i);
        }
    }
    let coverage = order
        .into_iter()
        .map(|key| {
            let (e, kept) = &cov[&key];
            Coverage {
                evidence: key.0,
                replications: key.1,
                n_max: key.2,
                nominal,
                exponent: Proportion::of(e[1], e[0]),
                constant: (e[2] > 0).then(|| Proportion::of(e[3], e[2])),
                constant_accepted: (e[4] > 0).then(|| Proportion::of(e[5], e[4])),
                constant_diagnostic: ConstantDiagnostic::of(kept),
            }
        })
        .collect();

    type PowerKey = (String, String, Planted, u64, usize, u64);
    let mut pow: BTreeMap<PowerKey, (u64, u64, f64)> = BTreeMap::new();
    for o in outcomes {
        for d in &o.detections {
            let key = (
                d.evidence.clone(),
                d.claim.clone(),
                d.planted,
                d.deviation.to_bits(),
                d.replications,
                d.n_max,
            );
            let e = pow.entry(key).or_insert((0, 0, d.deviation));
            e.0 += d.detected as u64;
            e.1 += 1;
        }
    }
    let mut power: Vec<Power> = pow
        .into_iter()
        .map(|(k, (x, n, dev))| Power {
            evidence: k.0,
            claim: k.1,
            planted: k.2,
            deviation: dev,
            replications: k.4,
            n_max: k.5,
            detected: Proportion::of(x, n),
        })
        .collect();
    power.sort_by(|a, b| {
        (&a.evidence, a.planted, a.n_max, a.replications)
            .cmp(&(&b.evidence, b.planted, b.n_max, b.replications))
            .then(a.deviation.total_cmp(&b.deviation))
    });
    let advice = advise(&power);
    Calibration {
        format: FORMAT.into(),
        mrkl_version: env!("CARGO_PKG_VERSION").into(),
        git_commit: suite::git_commit(),
        plan_hash: plan.hash(),
        seeds: outcomes.iter().map(|o| o.seed).collect(),
        specs: plan.specs.clone(),
        power_specs: plan.power_specs.clone(),
        replications: plan.design.replications.clone(),
        exponent_deviations: plan.design.exponent_deviations.clone(),
        constant_deviations: plan.design.constant_deviations.clone(),
        exact_checks: plan.design.exact,
        alpha: ALPHA,
        target_power: TARGET_POWER,
        false_alarms,
        coverage,
        power,
        advice,
    }
}

/// For every evidence, planted kind and deviation != 0: the configuration of least cost
/// R x n_max whose measured power reaches TARGET_POWER (for a constant deviation, in both
/// directions: the smaller of the two powers).
fn advise(power: &[Power]) -> Vec<Advice> {
    let mut groups: BTreeMap<(String, Planted, u64), BTreeMap<(usize, u64), f64>> = BTreeMap::new();
    for p in power.iter().filter(|p| p.deviation != 0.0) {
        let key = (p.evidence.clone(), p.planted, p.deviation.abs().to_bits());
        let cfg = groups.entry(key).or_default();
        let e = cfg
            .entry((p.replications, p.n_max))
            .or_insert(f64::INFINITY);
        *e = e.min(p.detected.rate);
    }
    groups
        .into_iter()
        .map(|((evidence, planted, bits), cfgs)| {
            let deviation = f64::from_bits(bits);
            let best = cfgs
                .iter()
                .filter(|(_, p)| **p >= TARGET_POWER)
                .min_by(|a, b| {
                    let cost = |c: &(usize, u64)| c.0 as f64 * c.1 as f64;
                    cost(a.0).total_cmp(&cost(b.0))
                });
            let what = match planted {
                Planted::Exponent => format!("an exponent off by {deviation}"),
                Planted::Constant => format!("a constant off by {}%", deviation * 100.0),
            };
            let (largest_r, largest_n) = cfgs
                .keys()
                .fold((0, 0), |(r, n), k| (r.max(k.0), n.max(k.1)));
            match best {
                Some((&(r, n), &p)) => Advice {
                    text: format!(
                        "{evidence}: to detect {what} with {:.0}% power, use {r} replications and n up to {} (measured power {:.0}%)",
                        TARGET_POWER * 100.0,
                        crate::numerics::compact(n as f64),
                        p * 100.0
                    ),
                    evidence,
                    planted,
                    deviation,
                    replications: Some(r),
                    n_max: Some(n),
                    power: Some(p),
                },
                None => Advice {
                    text: format!(
                        "{evidence}: {what} is not detected with {:.0}% power by any configuration studied (up to {largest_r} replications and n up to {})",
                        TARGET_POWER * 100.0,
                        crate::numerics::compact(largest_n as f64)
                    ),
                    evidence,
                    planted,
                    deviation,
                    replications: None,
                    n_max: None,
                    power: None,
                },
            }
        })
        .collect()
}

fn pct(p: &Proportion) -> String {
    if p.trials == 0 {
        return "-".into();
    }
    format!(
        "{:.1}% [{:.1}, {:.1}] ({}/{})",
        p.rate * 100.0,
        p.ci_low * 100.0,
        p.ci_high * 100.0,
        p.events,
        p.trials
    )
}

/// CALIBRATION.md: the tables and the advice.
pub fn markdown(c: &Calibration, command: &str) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let seeds = match (c.seeds.first(), c.seeds.last()) {
        (Some(a), Some(b)) => format!("{} master seeds ({a}..={b})", c.seeds.len()),
        _ => "no seeds".into(),
    };
    let _ = writeln!(s, "# Calibration of the checker\n");
    let _ = writeln!(
        s,
        "Produced by `{command}` (mrkl {}, commit {}): {seeds}, specs {}; power study on {} with {:?} replications; exact checks {}.\n",
        c.mrkl_version,
        c.git_commit.as_deref().unwrap_or("unknown"),
        c.specs
            .iter()
            .map(|s| format!("{} ({} replications)", s.name, s.replications))
            .collect::<Vec<_>>()
            .join(", "),
        if c.power_specs.is_empty() {
            "no spec".to_string()
        } else {
            c.power_specs.join(", ")
        },
        c.replications,
        if c.exact_checks { "run" } else { "not run" }
    );
    let _ = writeln!(s, "## False alarms\n");
    let _ = writeln!(
        s,
        "Every claim of the registry is true, so a `violated` verdict is a false alarm. Upper bound: exact one-sided {:.0}% (Clopper-Pearson; 1 - {}^(1/k) with 0 alarms in k judgements).\n",
        (1.0 - c.alpha) * 100.0,
        c.alpha
    );
    let _ = writeln!(
        s,
        "| claim | judgements | holds | inconclusive | violated | upper bound on P(violated) |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|");
    for fa in &c.false_alarms {
        let n = |v: &str| fa.counts.get(v).copied().unwrap_or(0);
        let _ = writeln!(
            s,
            "| {} | {} | {} | {} | {} | {:.2}% |",
            fa.claim,
            fa.judgements,
            n("holds"),
            n("inconclusive"),
            fa.violated,
            fa.upper_bound * 100.0
        );
    }
    for fa in c.false_alarms.iter().filter(|f| f.claim != "all") {
        for e in &fa.examples {
            let _ = writeln!(s, "\n- false alarm, {}: {e}", fa.claim);
        }
    }
    let _ = writeln!(s, "\n## Interval coverage\n");
    let _ = writeln!(
        s,
        "Fraction of seeds whose exponent interval contains the predicted asymptotic exponent, and whose constant interval (ratio ± t SE at the same level, Student's t with R - 1 degrees of freedom, SE of the mean of R whole replications) contains 1, with exact 95% intervals; \"accepted\" is the constant judgement itself (allowance for higher-order terms, two-sided level 1 - 1e-3: t = 3.50 at R = 50, 3.32 at R = 400).\n"
    );
    let _ = writeln!(
        s,
        "| evidence | R | n_max | nominal | exponent covered | constant covered | constant accepted |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|");
    for cv in &c.coverage {
        let _ = writeln!(
            s,
            "| {} | {} | {} | {:.0}% | {} | {} | {} |",
            cv.evidence,
            cv.replications,
            crate::numerics::compact(cv.n_max as f64),
            cv.nominal * 100.0,
            pct(&cv.exponent),
            cv.constant.as_ref().map(pct).unwrap_or("-".into()),
            cv.constant_accepted.as_ref().map(pct).unwrap_or("-".into())
        );
    }
    let _ = writeln!(
        s,
        "\nWhy the constant's interval misses (each seed is a new instance, so the true ratio is 1): bias = mean over seeds of rho - 1 ± its SE (also at the first and the last tail level, rho_1 and rho_L); sd of rho over seeds against the root mean square of the seeds' SEs, and the sd of z = (rho - 1) / se (1 if the SE is right); misses with the interval below 1 and above 1.\n"
    );
    let _ = writeln!(
        s,
        "| evidence | R | n_max | bias rho | bias rho_1 | bias rho_L | sd rho | rms se | mean z | sd z | misses below / above |"
    );
    let _ = writeln!(s, "|---|---|---|---|---|---|---|---|---|---|---|");
    let ms = |m: &MeanSe| format!("{:+.4} ± {:.4}", m.mean, m.se);
    for cv in &c.coverage {
        if let Some(d) = &cv.constant_diagnostic {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {} | {:.4} | {:.4} | {:+.3} | {:.3} | {} / {} |",
                cv.evidence,
                cv.replications,
                crate::numerics::compact(cv.n_max as f64),
                ms(&d.bias),
                ms(&d.first_bias),
                ms(&d.last_bias),
                d.sd,
                d.rms_se,
                d.z_mean,
                d.z_sd,
                d.misses_below,
                d.misses_above
            );
        }
    }
    let _ = writeln!(s, "\n## Power\n");
    let _ = writeln!(
        s,
        "Detection rate of planted deviations (deviation 0: the rate at which the true prediction is rejected). Exponent: the claim n^(a - d) with a the predicted exponent; detected when the rate finding is `slower` (the claim's tolerance applies, so d at or below the tolerance is not a violation by design). Constant: the claim (1 + e) C; detected when the constant finding `differs`.\n"
    );
    let mut keys: Vec<(String, Planted, u64)> = c
        .power
        .iter()
        .map(|p| (p.evidence.clone(), p.planted, p.n_max))
        .collect();
    keys.dedup();
    for (evidence, planted, n_max) in keys {
        let rows: Vec<&Power> = c
            .power
            .iter()
            .filter(|p| p.evidence == evidence && p.planted == planted && p.n_max == n_max)
            .collect();
        let mut devs: Vec<f64> = rows.iter().map(|p| p.deviation).collect();
        devs.sort_by(f64::total_cmp);
        devs.dedup();
        let _ = writeln!(
            s,
            "{evidence}, {} deviation, n up to {}:\n",
            planted.name(),
            crate::numerics::compact(n_max as f64)
        );
        let head: Vec<String> = devs
            .iter()
            .map(|d| match planted {
                Planted::Exponent => format!("d = {d}"),
                Planted::Constant => format!("e = {:+}%", d * 100.0),
            })
            .collect();
        let _ = writeln!(s, "| R | {} |", head.join(" | "));
        let _ = writeln!(s, "|---|{}", "---|".repeat(devs.len()));
        for r in &c.replications {
            let cells: Vec<String> = devs
                .iter()
                .map(|d| {
                    rows.iter()
                        .find(|p| p.replications == *r && p.deviation == *d)
                        .map(|p| format!("{:.0}%", p.detected.rate * 100.0))
                        .unwrap_or("-".into())
                })
                .collect();
            let _ = writeln!(s, "| {r} | {} |", cells.join(" | "));
        }
        let _ = writeln!(s);
    }
    let _ = writeln!(s, "## Advice\n");
    for a in &c.advice {
        let _ = writeln!(s, "- {}", a.text);
    }
    s
}

/// The points of one power figure: per replication count, (deviation, power, lo, hi).
pub struct PowerPanel {
    pub title: String,
    pub subtitle: String,
    pub x_desc: String,
    pub curves: Vec<(String, Vec<(f64, f64, f64, f64)>)>,
}

/// One panel per power evidence and planted kind, at the full grid.
pub fn power_panels(c: &Calibration) -> Vec<(String, PowerPanel)> {
    let mut out = vec![];
    let mut keys: Vec<(String, Planted)> = c
        .power
        .iter()
        .map(|p| (p.evidence.clone(), p.planted))
        .collect();
    keys.sort();
    keys.dedup();
    for (evidence, planted) in keys {
        let rows: Vec<&Power> = c
            .power
            .iter()
            .filter(|p| p.evidence == evidence && p.planted == planted)
            .collect();
        let n_max = rows.iter().map(|p| p.n_max).max().unwrap_or(0);
        let curves = c
            .replications
            .iter()
            .map(|&r| {
                let mut pts: Vec<(f64, f64, f64, f64)> = rows
                    .iter()
                    .filter(|p| p.replications == r && p.n_max == n_max)
                    .map(|p| {
                        let x = match planted {
                            Planted::Exponent => p.deviation,
                            Planted::Constant => p.deviation * 100.0,
                        };
                        (x, p.detected.rate, p.detected.ci_low, p.detected.ci_high)
                    })
                    .collect();
                pts.sort_by(|a, b| a.0.total_cmp(&b.0));
                (format!("R = {r}"), pts)
            })
            .filter(|(_, p)| !p.is_empty())
            .collect();
        out.push((
            format!("power_{}_{}", evidence, planted.name()),
            PowerPanel {
                title: format!("Power against a planted {} deviation", planted.name()),
                subtitle: format!(
                    "{evidence}, n up to {}, {} seeds; 95% exact intervals",
                    crate::numerics::compact(n_max as f64),
                    c.seeds.len()
                ),
                x_desc: match planted {
                    Planted::Exponent => "exponent deviation d (claimed a - d)".into(),
                    Planted::Constant => "constant deviation e (claimed (1 + e) C), %".into(),
                },
                curves,
            },
        ));
    }
    out
}

/// `mrkl calibrate`: runs every seed not yet saved (in parallel over seeds), aggregates, and
/// writes `calibration.json`, `CALIBRATION.md` and the power plots into `out`.
pub fn calibrate(s: &CalibrateSettings, command: &str) -> Result<Calibration> {
    use rayon::prelude::*;
    let plan = plan(s)?;
    let pool = suite::pool(s.threads)?;
    let (_lock, _) = journal::Lock::acquire(&s.out, None)?;
    let hash = plan.hash();
    let seeds: Vec<u64> = (s.first_seed..s.first_seed + s.seeds).collect();
    let done: Vec<Option<SeedOutcome>> = seeds
        .iter()
        .map(|&k| {
            if s.resume {
                saved(&s.out, k, &hash)
            } else {
                None
            }
        })
        .collect();
    let kept = done.iter().flatten().count();
    if s.resume {
        eprintln!(
            "resuming calibration: {kept} of {} seeds already done",
            seeds.len()
        );
    }
    let outcomes: Vec<SeedOutcome> = pool.install(|| {
        seeds
            .par_iter()
            .zip(done.into_par_iter())
            .map(|(&k, d)| match d {
                Some(o) => Ok(o),
                None => {
                    let o = seed_outcome(&plan, k)?;
                    fsio::write_atomic(
                        &seed_path(&s.out, k),
                        serde_json::to_string(&o).expect("serialises").as_bytes(),
                    )?;
                    Ok(o)
                }
            })
            .collect::<Result<Vec<_>>>()
    })?;
    let nominal = plan
        .loaded
        .first()
        .map(|(_, sp)| sp.options().ci_level)
        .unwrap_or(0.9);
    let c = aggregate(&plan, &outcomes, nominal);
    fsio::write_atomic(
        &s.out.join("calibration.json"),
        (serde_json::to_string_pretty(&c).expect("serialises") + "\n").as_bytes(),
    )?;
    fsio::write_atomic(
        &s.out.join("CALIBRATION.md"),
        markdown(&c, command).as_bytes(),
    )?;
    for (stem, panel) in power_panels(&c) {
        let svg = crate::plot::power_plot_svg(&panel);
        let png = crate::plot::svg_to_png(&svg)
            .map_err(|e| Error::write(&s.out, std::io::Error::other(e)))?;
        fsio::write_atomic(&s.out.join(format!("{stem}.svg")), svg.as_bytes())?;
        fsio::write_atomic(&s.out.join(format!("{stem}.png")), &png)?;
    }
    Ok(c)
}

/// One line per claim's false alarms and the advice, on stdout.
pub fn print_summary(c: &Calibration) {
    for fa in &c.false_alarms {
        suite::say!(
            "{:<14} {} judgements, {} violated (upper bound {:.2}%)",
            fa.claim,
            fa.judgements,
            fa.violated,
            fa.upper_bound * 100.0
        );
    }
    for a in &c.advice {
        suite::say!("{}", a.text);
    }
}
