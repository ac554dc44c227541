//! Result files. For each spec, `results/<name>/` receives
//! - `result.json`: provenance, the checked spec, every [ours] choice, the instance summary,
//!   and per cell the raw replication values, per-n summaries and fitted exponents;
//! - `summary.csv`: the per-n summaries as a table;
//! - `instance.json`: the instance itself, in the format `mrkl solve` and specs read.
//! Every file is written atomically (temporary file in the same folder, then rename), and
//! nothing in them depends on timing or thread count, so re-runs are byte-identical.

use crate::engine::CellRun;
use crate::error::{Error, Result};
use crate::gap::Quantity;
use crate::policy::Divergence;
use crate::spec::{GammaRule, Spec};
use crate::statistics::{ExponentEstimate, RateStatistic, Summary, fit_exponent, summarize};
use crate::streams::fnv1a;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::io::Write;
use std::path::Path;

/// Identifies the result format; bumped on incompatible changes.
pub const FORMAT: &str = "mrkl-result/1";

/// Where a result came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Provenance {
    pub mrkl_version: String,
    /// `git rev-parse HEAD` of the working tree the run was made from, when available
    /// (with `-dirty` if it had uncommitted changes).
    pub git_commit: Option<String>,
    /// FNV-1a (hex) of the checked spec and instance as JSON: what resume/merge compare.
    pub spec_hash: String,
    pub seed: u64,
}

/// Summary of the instance a result was measured on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstanceInfo {
    pub origin: Value,
    pub contexts: usize,
    pub responses: usize,
    pub references: usize,
    pub reward_class: String,
    pub dim: Option<usize>,
    pub candidates: Option<usize>,
    pub r_max: f64,
    /// FNV-1a (hex) of `instance.json`.
    pub hash: String,
}

/// Results of one cell of a spec.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CellResult {
    pub label: String,
    pub weights: Vec<f64>,
    pub gamma: Value,
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
    /// True regularised objective (the spec's divergence, this cell's weights and gamma, at
    /// the largest n for a gamma schedule; true reward r*) of the exact policy and, for RKL,
    /// of the comparators of THEORY §6: `exact`, `mrpo` (harmonic mean), `mrpo_ctro` (with the
    /// clipping, when `mrpo_clip_eps` > 0), `arithmetic_mixture` (m as a single reference) and
    /// `reference_i` (pi_i alone, i from 1). The plug-in policy's objective at n is
    /// `exact` minus its sub-optimality gap.
    #[serde(default)]
    pub comparators: std::collections::BTreeMap<String, f64>,
    /// The extra series the spec records (`Spec::series`), in that order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub series: Vec<SeriesResult>,
    /// raw[j][r]: the gap of replication r at n[j].
    pub raw: Vec<Vec<f64>>,
}

/// One extra series of a cell (see `crate::spec::Spec::series`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SeriesResult {
    pub name: String,
    /// Per n: summary of the finite values (`None` if there is none; `replications` says how
    /// many were finite).
    pub summaries: Vec<Option<Summary>>,
    /// For a series that is a gap of the same kind as the quantity: per n, the summary of
    /// the paired differences (series - quantity) over replications, i.e. how much larger
    /// the series' gap is than the spec's fitted policy's (> 0: the fitted policy is better).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub difference: Option<Vec<Option<Summary>>>,
    /// raw[j][r]; `null` = not applicable (e.g. the DPO identity when the MLE is on the ball).
    #[serde(with = "crate::numerics::nullable_table")]
    pub raw: Vec<Vec<f64>>,
}

/// Summary of the finite entries of `values` (None if there is none).
pub fn summarize_finite(n: u64, values: &[f64], delta: f64) -> Option<Summary> {
    let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    (!v.is_empty()).then(|| summarize(n, &v, delta))
}

/// The [`SeriesResult`]s of a cell from its raw run.
fn series_results(spec: &Spec, run: &CellRun) -> Vec<SeriesResult> {
    spec.series()
        .into_iter()
        .zip(&run.extras)
        .map(|(def, raw)| {
            let summaries = spec
                .ns
                .iter()
                .zip(raw)
                .map(|(&n, v)| summarize_finite(n, v, spec.delta))
                .collect();
            let difference = def.paired_gap.then(|| {
                spec.ns
                    .iter()
                    .zip(raw.iter().zip(&run.values))
                    .map(|(&n, (a, b))| {
                        let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
                        summarize_finite(n, &d, spec.delta)
                    })
                    .collect()
            });
            SeriesResult {
                name: def.name,
                summaries,
                difference,
                raw: raw.clone(),
            }
        })
        .collect()
}

/// The content of `result.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResultFile {
    pub format: String,
    pub name: String,
    pub claim: Option<String>,
    pub divergence: Divergence,
    pub quantity: Quantity,
    pub provenance: Provenance,
    /// Every choice THEORY.md marks [ours], with its value here and what it means.
    pub ours: Value,
    pub spec: Value,
    pub instance: InstanceInfo,
    pub cells: Vec<CellResult>,
}

/// Hex FNV-1a of a byte string.
pub fn hash_hex(bytes: &[u8]) -> String {
    format!("{:016x}", fnv1a(bytes))
}

/// The instance of a spec as pretty JSON (the content of `instance.json`).
pub fn instance_json(spec: &Spec) -> String {
    serde_json::to_string_pretty(&spec.instance.to_raw()).expect("instances serialise") + "\n"
}

/// The hash that identifies a checked spec (its JSON form plus its instance).
pub fn spec_hash(spec: &Spec) -> String {
    let mut bytes = serde_json::to_vec(spec).expect("specs serialise");
    bytes.extend_from_slice(instance_json(spec).as_bytes());
    hash_hex(&bytes)
}

/// The [ours] choices of THEORY.md as they apply to this spec: value and meaning.
pub fn ours(spec: &Spec) -> Value {
    let o = &spec.options;
    let gamma_rules: Vec<Value> = spec.cells.iter().map(|c| gamma_json(&c.gamma)).collect();
    json!({
        "sampling": { "value": spec.sampling.label(), "meaning": "the policy mu that draws both responses of a comparison (THEORY §2)" },
        "sampler": { "value": spec.sampler, "meaning": "counts: exact multinomial win counts (cost independent of n); per_sample: one draw per comparison" },
        "reward_range": { "value": o.reward_range, "meaning": "R_max convention: |r| <= R_max" },
        "linear_estimator": { "value": "constrained_mle", "meaning": "linear class: Bradley-Terry MLE restricted to ||theta|| <= B (Newton inside, Moré-Sorensen multiplier on the boundary)" },
        "mle_tolerance": { "value": o.mle_tolerance, "meaning": "max-norm of the KKT gradient (loss normalised by the number of informative comparisons) at which the MLE stops" },
        "log_class_size": { "value": o.log_class_size, "meaning": "log|R| for the linear class in the bounds: d ln(1 + 2 B n)" },
        "reward_gap": { "value": "abs_of_expectation", "meaning": "| E_x [E_{pi*} r* - E_{pi_hat} r*] | at fixed gamma" },
        "gamma": { "value": gamma_rules, "meaning": "fixed gamma, or gamma(n) = c n^p (the optimality gap's schedule)" },
        "coverage": { "value": "pairwise_second_moment_ratio", "meaning": "C(nu; mu) of THEORY §5, nu = escort (RKL) or mixture (FKL)" },
        "tail": { "value": o.tail, "meaning": "the exponent is fitted over the largest ceil(fraction * L) of the L sample sizes, at least min_points" },
        "bootstrap_resamples": { "value": o.bootstrap_resamples, "meaning": "resamples of replications within each n for the exponent interval" },
        "ci_level": { "value": o.ci_level, "meaning": "level of the exponent interval" },
        "mrpo_clip_eps": { "value": o.mrpo_clip_eps, "meaning": "MRPO's CTRO clipping (0 = off)" },
        "gap_floor": { "value": o.gap_floor, "meaning": "gaps at or below this count as zero (no exponent is fitted to them)" },
        "estimator": { "value": spec.estimator, "meaning": "mle: plug-in policy of the reward MLE; dpo_tabular / dpo_linear: multi-reference DPO fit over the tabular / linear policy class (THEORY §6)" },
        "dpo_ridge": { "value": o.dpo_ridge, "meaning": "tabular DPO: absolute ridge (lambda/2) sum s^2 on the implied reward (bias O(1/n)); the linear DPO class is fitted without ridge" },
        "dpo_dropped_pairs": { "value": "off_support", "meaning": "comparisons involving a response outside the policy class's support (g = 0 for RKL, m = 0 for FKL) are left out of the DPO loss" },
        "streams": { "value": o.streams, "meaning": "per_cell: each cell's replications have their own RNG streams; shared: replication r of every cell uses the same stream (paired comparisons across cells whose sampling policy does not depend on the cell)" },
        "rounds": { "value": spec.rounds, "meaning": "online collection: T rounds of n/T comparisons, round 1 from mu, round t from the plug-in policy fitted on rounds 1..t-1 (1 = offline)" },
        "instance_family": { "value": match &spec.instance_origin { crate::spec::InstanceOrigin::Random { generator } => serde_json::to_value(&generator.family).expect("serialises"), _ => json!("file") }, "meaning": "coverage pattern of references 1-2 over the top good_fraction of responses by r* (their probabilities multiplied by suppression)" },
    })
}

fn gamma_json(g: &GammaRule) -> Value {
    match g {
        GammaRule::Fixed(v) => json!({ "fixed": v }),
        GammaRule::Schedule(s) => json!({ "c": s.c, "p": s.p }),
    }
}

/// Assembles the result of a finished run.
pub fn build(spec: &Spec, runs: &[CellRun], git_commit: Option<String>) -> ResultFile {
    let inst = &spec.instance;
    let (dim, candidates) = match &inst.reward {
        crate::instance::RewardModel::Linear(l) => (Some(l.dim), None),
        crate::instance::RewardModel::Finite(f) => (None, Some(f.candidates.len())),
        crate::instance::RewardModel::Table(_) => (None, None),
    };
    let instance = InstanceInfo {
        origin: serde_json::to_value(&spec.instance_origin).expect("serialises"),
        contexts: inst.contexts,
        responses: inst.responses,
        references: inst.k(),
        reward_class: inst.class_name().into(),
        dim,
        candidates,
        r_max: inst.r_max(),
        hash: hash_hex(instance_json(spec).as_bytes()),
    };
    let o = &spec.options;
    // Cells are summarised in parallel (the bootstrap dominates); order is preserved.
    use rayon::prelude::*;
    let cells = spec
        .cells
        .par_iter()
        .zip(runs.par_iter())
        .map(|(c, run)| {
            let summaries: Vec<Summary> = spec
                .ns
                .iter()
                .zip(&run.values)
                .map(|(&n, v)| summarize(n, v, spec.delta))
                .collect();
            let seed = spec.seed ^ fnv1a(c.label.as_bytes()) ^ fnv1a(b"bootstrap");
            let fit = |stat| {
                fit_exponent(
                    &spec.ns,
                    &run.values,
                    stat,
                    spec.delta,
                    o.tail,
                    o.bootstrap_resamples,
                    o.ci_level,
                    o.gap_floor,
                    seed,
                )
            };
            let mu = crate::engine::sampling_policy(inst, spec.sampling, &c.weights);
            let nu_kind = match spec.divergence {
                Divergence::Rkl => crate::spec::Sampling::Geometric,
                Divergence::Fkl => crate::spec::Sampling::Arithmetic,
            };
            let nu = crate::engine::sampling_policy(inst, nu_kind, &c.weights);
            CellResult {
                comparators: crate::policy::comparator_objectives(
                    inst,
                    spec.divergence,
                    &c.weights,
                    c.gamma.at(*spec.ns.last().expect("non-empty grid")),
                    o.mrpo_clip_eps,
                ),
                coverage: crate::coverage::coverage(inst, &nu, &mu),
                label: c.label.clone(),
                weights: c.weights.clone(),
                gamma: gamma_json(&c.gamma),
                n: spec.ns.clone(),
                gamma_at_n: spec.ns.iter().map(|&n| c.gamma.at(n)).collect(),
                summaries,
                exponent_mean: fit(RateStatistic::Mean),
                exponent_quantile: fit(RateStatistic::Quantile),
                mle_iterations_mean: run
                    .iterations
                    .iter()
                    .map(|v| v.iter().map(|&i| i as f64).sum::<f64>() / v.len() as f64)
                    .collect(),
                mle_boundary_fraction: run
                    .on_boundary
                    .iter()
                    .map(|v| v.iter().filter(|&&b| b).count() as f64 / v.len() as f64)
                    .collect(),
                series: series_results(spec, run),
                raw: run.values.clone(),
            }
        })
        .collect();
    ResultFile {
        format: FORMAT.into(),
        name: spec.name.clone(),
        claim: spec.claim.clone(),
        divergence: spec.divergence,
        quantity: spec.quantity,
        provenance: Provenance {
            mrkl_version: env!("CARGO_PKG_VERSION").into(),
            git_commit,
            spec_hash: spec_hash(spec),
            seed: spec.seed,
        },
        ours: ours(spec),
        spec: serde_json::to_value(spec).expect("specs serialise"),
        instance,
        cells,
    }
}

/// The per-n summaries of a result as CSV (one row per cell and n).
pub fn summary_csv(r: &ResultFile) -> String {
    let mut s = String::from(
        "cell,n,gamma,replications,mean,std_err,ci_low,ci_high,median,quantile_level,quantile,min,max,mle_iterations_mean,mle_boundary_fraction\n",
    );
    for c in &r.cells {
        for (j, m) in c.summaries.iter().enumerate() {
            s.push_str(&format!(
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
                c.label,
                m.n,
                c.gamma_at_n[j],
                m.replications,
                m.mean,
                m.std_err,
                m.ci_low,
                m.ci_high,
                m.median,
                m.quantile_level,
                m.quantile,
                m.min,
                m.max,
                c.mle_iterations_mean[j],
                c.mle_boundary_fraction[j]
            ));
        }
    }
    s
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, flushed and
/// synced, then renamed over the target (readers see the old or the new file, never a mix).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::write(dir, e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::write(path, e)
    })
}

/// The JSON text of a result (pretty, with a final newline).
pub fn result_json(r: &ResultFile) -> String {
    serde_json::to_string_pretty(r).expect("results serialise") + "\n"
}

/// Writes `result.json`, `summary.csv` and `instance.json` of a spec into `dir`.
pub fn write(dir: &Path, spec: &Spec, r: &ResultFile) -> Result<()> {
    write_atomic(&dir.join("instance.json"), instance_json(spec).as_bytes())?;
    write_atomic(&dir.join("summary.csv"), summary_csv(r).as_bytes())?;
    write_atomic(&dir.join("result.json"), result_json(r).as_bytes())
}

/// Reads a `result.json`.
pub fn read(path: &Path) -> Result<ResultFile> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::read(path, e))?;
    serde_json::from_str(&text).map_err(|e| Error::parse(path, e))
}

/// `REPORT.md`: the verdict table, then per result its description, plots, summaries,
/// [ours] choices and provenance. `plots[i]` are the files drawn for `results[i]`.
pub fn markdown(
    results: &[ResultFile],
    plots: &[Vec<String>],
    judgements: &[crate::claims::Judgement],
) -> String {
    let mut s = String::from("# mrkl report\n\n");
    s.push_str("Generated from the results in this folder; regenerate with `mrkl report <folder>` (no rerun). ");
    s.push_str("Verdicts follow THEORY §7: exponent of the mean gap in n over the tail of the grid, with a bootstrap interval; bounds checked per n by an exact binomial test.\n\n");
    s.push_str("## Verdicts\n\n| claim | evidence | measured exponent [CI] | claimed | bound slack | verdict | reason |\n|---|---|---|---|---|---|---|\n");
    for j in judgements {
        let m = match (j.measured, j.ci_low, j.ci_high) {
            (Some(m), Some(lo), Some(hi)) => format!("{m:+.3} [{lo:+.3}, {hi:+.3}]"),
            (Some(m), _, _) => format!("{m:+.3}"),
            _ => "-".into(),
        };
        s.push_str(&format!(
            "| {} | {} | {m} | {} | {} | **{}** | {} |\n",
            j.claim,
            j.evidence.clone().unwrap_or_default(),
            j.claimed
                .map(|c| format!("{c:+}"))
                .unwrap_or_else(|| "-".into()),
            j.bound_slack
                .map(|b| format!("{b:.3e}"))
                .unwrap_or_else(|| "-".into()),
            j.verdict.name(),
            j.reason.replace('|', "/")
        ));
    }
    for (r, files) in results.iter().zip(plots) {
        s.push_str(&format!("\n## {}\n\n", r.name));
        if let Some(d) = r.spec.get("description").and_then(|d| d.as_str()) {
            s.push_str(&format!("{d}.\n\n"));
        }
        s.push_str(&format!(
            "Claim {}; {} {}; {} class, |X| = {}, |Y| = {}, K = {}, R_max = {}; {} replications per n; master seed {}.\n\n",
            r.claim.clone().unwrap_or_else(|| "-".into()),
            r.divergence.name(),
            r.quantity.name(),
            r.instance.reward_class,
            r.instance.contexts,
            r.instance.responses,
            r.instance.references,
            r.instance.r_max,
            r.cells.first().map(|c| c.raw.first().map(Vec::len).unwrap_or(0)).unwrap_or(0),
            r.provenance.seed
        ));
        for f in files.iter().filter(|f| f.ends_with(".png")) {
            s.push_str(&format!("![{f}]({}/{f})\n", r.name));
        }
        s.push_str("\n| cell | n | mean gap | 95% CI | quantile | exponent of mean [CI] | coverage C |\n|---|---|---|---|---|---|---|\n");
        for c in &r.cells {
            let (first, last) = (c.summaries.first(), c.summaries.last());
            if let (Some(a), Some(b)) = (first, last) {
                let e = &c.exponent_mean;
                let exp = match (e.slope, e.ci_low, e.ci_high) {
                    (Some(m), Some(lo), Some(hi)) => format!("{m:+.3} [{lo:+.3}, {hi:+.3}]"),
                    _ => "-".into(),
                };
                s.push_str(&format!(
                    "| {} | {}..{} | {:.3e} .. {:.3e} | [{:.3e}, {:.3e}] at n_max | {:.3e} at n_max | {exp} | {} |\n",
                    c.label,
                    a.n,
                    b.n,
                    a.mean,
                    b.mean,
                    b.ci_low,
                    b.ci_high,
                    b.quantile,
                    c.coverage.map(|v| format!("{v:.3}")).unwrap_or_else(|| "inf".into())
                ));
            }
        }
        if r.cells.iter().any(|c| !c.series.is_empty()) {
            s.push_str("\nRecorded series (mean over replications; for a gap series, the paired difference series - quantity with its 95% interval: > 0 means the spec's fitted policy has the smaller gap):\n\n| cell | series | mean at n_min | mean at n_max | difference at n_min [95% CI] | difference at n_max [95% CI] |\n|---|---|---|---|---|---|\n");
            let mean = |v: Option<&Option<Summary>>| {
                v.and_then(|s| s.as_ref())
                    .map(|s| format!("{:.4e}", s.mean))
                    .unwrap_or_else(|| "-".into())
            };
            let diff = |v: Option<&Option<Summary>>| {
                v.and_then(|s| s.as_ref())
                    .map(|s| format!("{:+.3e} [{:+.3e}, {:+.3e}]", s.mean, s.ci_low, s.ci_high))
                    .unwrap_or_else(|| "-".into())
            };
            for c in &r.cells {
                for se in &c.series {
                    let d = se.difference.as_ref();
                    s.push_str(&format!(
                        "| {} | {} | {} | {} | {} | {} |\n",
                        c.label,
                        se.name,
                        mean(se.summaries.first()),
                        mean(se.summaries.last()),
                        d.map(|d| diff(d.first())).unwrap_or_else(|| "-".into()),
                        d.map(|d| diff(d.last())).unwrap_or_else(|| "-".into()),
                    ));
                }
            }
        }
        s.push_str("\n[ours] choices: ");
        if let Some(o) = r.ours.as_object() {
            let items: Vec<String> = o
                .iter()
                .map(|(k, v)| format!("`{k}` = `{}`", v["value"]))
                .collect();
            s.push_str(&items.join(", "));
        }
        s.push_str(&format!(
            ".\n\nProvenance: mrkl {}, git {}, spec hash {}, instance hash {}.\n",
            r.provenance.mrkl_version,
            r.provenance
                .git_commit
                .clone()
                .unwrap_or_else(|| "unknown".into()),
            r.provenance.spec_hash,
            r.instance.hash
        ));
    }
    s
}
