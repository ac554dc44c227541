//! Analysis: from the raw replications of a run to a [`ResultFile`] — per-n summaries,
//! fitted exponents with bootstrap intervals (THEORY §7), coverage constants (§5), the
//! comparators' true objectives (§6), paired differences of recorded series — plus the
//! [ours] choices and the hashes that identify a spec. Nothing here judges or renders.

use crate::engine::CellRun;
use crate::policy::Divergence;
use crate::result::{
    Asymptotic, CellResult, Choice, FORMAT, FamilyChoice, InstanceInfo, Ours, PredictedValue,
    Provenance, ResultFile, RewardClass, ScaledMean, SeriesResult,
};
use crate::spec::{Estimator, GammaRule, InstanceOrigin, Sampling, Spec};
use crate::statistics::{RateStatistic, Summary, fit_exponent, summarize};
use crate::streams::fnv1a;

/// Summary of the finite entries of `values` (None if there is none).
pub fn summarize_finite(n: u64, values: &[f64], delta: f64) -> Option<Summary> {
    let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    (!v.is_empty()).then(|| summarize(n, &v, delta))
}

/// The [`SeriesResult`]s of a cell (instance `inst`, sampling policy `mu`) from its raw run;
/// a gap series gets its own prediction: `plugin` that of the offline plug-in MLE, `offline`
/// that of the offline walk; a comparator's loss tends to a positive limit, not to 0.
fn series_results(
    spec: &Spec,
    inst: &crate::instance::Instance,
    cell: &crate::spec::Cell,
    mu: &[f64],
    run: &CellRun,
) -> Vec<SeriesResult> {
    use crate::spec::SeriesKind;
    spec.series()
        .into_iter()
        .zip(&run.extras)
        .map(|(def, raw)| {
            let summaries: Vec<Option<Summary>> = spec
                .ns()
                .iter()
                .zip(raw)
                .map(|(&n, v)| summarize_finite(n, v, spec.delta()))
                .collect();
            let finite: Vec<Summary> = summaries.iter().flatten().cloned().collect();
            let predict = |estimator| {
                let fit = Fit {
                    estimator,
                    rounds: 1,
                };
                Some(asymptotic(spec, fit, inst, cell, mu, &finite))
            };
            let asymptotic = match def.kind {
                SeriesKind::Plugin => predict(Estimator::Mle),
                SeriesKind::Offline => predict(spec.estimator()),
                SeriesKind::ComparatorLoss(_) => Some(Asymptotic {
                    refused: Some(
                        "a comparator's loss J(pi*) - J(pi_c) tends to its value at r* (the cell's `comparators`), not to 0"
                            .into(),
                    ),
                    ..Asymptotic::none()
                }),
                SeriesKind::Objective
                | SeriesKind::ExpectedReward
                | SeriesKind::IdentityResidual
                | SeriesKind::DpoNotConverged
                | SeriesKind::DpoVanishing
                | SeriesKind::DpoPointMass => None,
            };
            let difference = def.paired_gap.then(|| {
                spec.ns()
                    .iter()
                    .zip(raw.iter().zip(&run.values))
                    .map(|(&n, (a, b))| {
                        let d: Vec<f64> = a.iter().zip(b).map(|(x, y)| x - y).collect();
                        summarize_finite(n, &d, spec.delta())
                    })
                    .collect()
            });
            SeriesResult {
                name: def.name,
                summaries,
                asymptotic,
                difference,
                raw: raw.clone(),
            }
        })
        .collect()
}

/// Hex FNV-1a of a byte string.
pub fn hash_hex(bytes: &[u8]) -> String {
    format!("{:016x}", fnv1a(bytes))
}

/// The instance of a spec as pretty JSON (the content of `instance.json`).
pub fn instance_json(spec: &Spec) -> String {
    serde_json::to_string_pretty(&spec.instance().to_raw()).expect("instances serialise") + "\n"
}

/// The hash that identifies a checked spec (its JSON form plus its instance).
pub fn spec_hash(spec: &Spec) -> String {
    let mut bytes = serde_json::to_vec(spec).expect("specs serialise");
    bytes.extend_from_slice(instance_json(spec).as_bytes());
    hash_hex(&bytes)
}

/// The [ours] choices of THEORY.md as they apply to this spec: value and meaning.
pub fn ours(spec: &Spec) -> Ours {
    let o = &spec.options();
    fn c<T>(value: T, meaning: &str) -> Choice<T> {
        Choice {
            value,
            meaning: meaning.into(),
        }
    }
    Ours {
        sampling: c(
            spec.sampling_label(),
            if spec.design().is_some() {
                "the policy mu that draws both responses of a comparison (docs/theory.md §2); none: the fixed design spec.design gives the comparisons"
            } else {
                "the policy mu that draws both responses of a comparison (docs/theory.md §2)"
            },
        ),
        sampler: c(
            spec.sampler(),
            if spec.design().is_some() {
                "counts: exact multinomial win counts (cost independent of n); per_sample: one draw per comparison; fixed_design: the comparisons of spec.design, only their Bradley-Terry outcomes drawn (docs/theory.md §2)"
            } else {
                "counts: exact multinomial win counts (cost independent of n); per_sample: one draw per comparison"
            },
        ),
        design_rounding: spec.design().map(|_| {
            c(
                "webster".into(),
                "fixed design: the share rows get n - C comparisons (C = the fixed counts) by Webster's divisor method, the n - C largest s_i / (j + 1/2), ties to the earlier row; house-monotone, so the datasets of the n grid nest (docs/theory.md §2)",
            )
        }),
        reward_range: c(o.reward_range, "R_max convention: |r| <= R_max"),
        linear_estimator: c(
            "constrained_mle".into(),
            "linear class: Bradley-Terry MLE restricted to ||theta|| <= B (Newton inside, Moré-Sorensen multiplier on the boundary)",
        ),
        mle_tolerance: c(
            o.mle_tolerance,
            "max-norm of the KKT gradient (loss normalised by the number of informative comparisons) at which the MLE stops",
        ),
        log_class_size: c(
            o.log_class_size,
            "log|R| for the linear class in the bounds: d ln(1 + 2 B n)",
        ),
        reward_gap: c(
            "abs_of_expectation".into(),
            "| E_x [E_{pi*} r* - E_{pi_hat} r*] | at fixed gamma",
        ),
        gamma: c(
            spec.cells().iter().map(|c| c.gamma).collect(),
            "fixed gamma, or gamma(n) = c n^p (the optimality gap's schedule)",
        ),
        coverage: c(
            "pairwise_second_moment_ratio".into(),
            "C(nu; mu) of docs/theory.md §5, nu = escort (RKL) or mixture (FKL)",
        ),
        tail: c(
            o.tail,
            "the exponent is fitted over the largest ceil(fraction * L) of the L sample sizes, at least min_points",
        ),
        bootstrap_resamples: c(
            o.bootstrap_resamples,
            "resamples of replications within each n for the exponent interval",
        ),
        ci_level: c(o.ci_level, "level of the exponent interval"),
        mrpo_clip_eps: c(o.mrpo_clip_eps, "MRPO's CTRO clipping (0 = off)"),
        gap_floor: c(
            o.gap_floor,
            "gaps at or below this count as zero (no exponent is fitted to them)",
        ),
        estimator: c(
            spec.estimator(),
            if spec.estimator().is_ipo() {
                "mle: plug-in policy of the reward MLE; dpo_tabular / dpo_linear: multi-reference DPO fit over the tabular / linear policy class (docs/theory.md §6); ipo_tabular / ipo_linear: IPO's closed-form least squares over the tabular / linear policy class, pi_ref = the escort g (docs/theory.md §9.8)"
            } else {
                "mle: plug-in policy of the reward MLE; dpo_tabular / dpo_linear: multi-reference DPO fit over the tabular / linear policy class (docs/theory.md §6)"
            },
        ),
        ipo_tau: spec.estimator().is_ipo().then(|| {
            c(
                "1/gamma".into(),
                "IPO's tau = 1/gamma of the cell: the population IPO solution pi ∝ pi_ref e^{p(y > mu)/tau} is then the RKL solution of docs/theory.md §1 for the reward p(y > mu) at gamma (docs/theory.md §9.8)",
            )
        }),
        ipo_gauge: spec.estimator().is_ipo().then(|| {
            c(
                "minimum_norm".into(),
                "IPO's least squares fix the implied reward only up to a constant per connected component of the comparison graph: the minimum-norm solution (sum 0 on each component, 0 = the reference's logit on a response never compared)",
            )
        }),
        dpo_ridge: c(
            o.dpo_ridge,
            "tabular DPO: absolute ridge (lambda/2) sum s^2 on the implied reward (bias O(1/n)); the linear DPO class is fitted without ridge",
        ),
        dpo_dropped_pairs: c(
            "off_support".into(),
            "comparisons involving a response outside the policy class's support (g = 0 for RKL, m = 0 for FKL) are left out of the DPO loss",
        ),
        streams: c(
            o.streams,
            "per_cell: each cell's replications have their own RNG streams; shared: replication r of every cell uses the same stream (paired comparisons across cells whose sampling policy does not depend on the cell)",
        ),
        rounds: c(
            spec.rounds(),
            "online collection: T rounds of n/T comparisons, round 1 from mu, round t from the plug-in policy fitted on rounds 1..t-1 (1 = offline)",
        ),
        instance_family: c(
            match &spec.instance_origin() {
                InstanceOrigin::Random { generator } => {
                    FamilyChoice::Generated(generator.family.clone())
                }
                InstanceOrigin::File { .. } => FamilyChoice::File("file".into()),
            },
            "coverage pattern of references 1-2 over the top good_fraction of responses by r* (their probabilities multiplied by suppression)",
        ),
    }
}

/// The predicted leading term of a cell's mean gap (THEORY §8) and the measured
/// n^-a x mean beside it. Predictions are made at a fixed gamma for the plug-in MLE of the
/// linear class (and linear DPO, which equals it, THEORY §6), offline or online (THEORY
/// §8.11), and for tabular DPO of any reward class (THEORY §8.10): the leading power; under a
/// gamma(n) schedule the whole curve (plug-in MLE offline); the finite class gets its
/// Chernoff rate and large-deviation curve; other cells say why not.
/// The large-gamma limit of an FKL sub-optimality cell under gamma(n) = c n^p, p > 0:
/// E[gap] ~ (K/c) n^-(1+p) (docs/theory.md §9.13); `None` for other cells or where K is not
/// defined (a tie for the best response).
fn large_gamma_limit(
    spec: &Spec,
    inst: &crate::instance::Instance,
    cell: &crate::spec::Cell,
    mu: &[f64],
) -> Option<crate::result::PowerLaw> {
    let GammaRule::Schedule(s) = cell.gamma else {
        return None;
    };
    if spec.divergence() != Divergence::Fkl
        || spec.quantity() != crate::gap::Quantity::Suboptimality
        || s.p <= 0.0
    {
        return None;
    }
    let k = crate::asymptotics::fkl_large_gamma_constant(inst, &cell.weights, mu).ok()?;
    Some(crate::result::PowerLaw {
        exponent: -(1.0 + s.p),
        constant: k / s.c,
    })
}

/// Which fit produced a gap: the estimator and the online rounds. The spec's quantity is
/// the spec's own; a recorded series can be another (`plugin`, `offline`).
#[derive(Clone, Copy)]
struct Fit {
    estimator: Estimator,
    rounds: u32,
}

fn asymptotic(
    spec: &Spec,
    fit: Fit,
    inst: &crate::instance::Instance,
    cell: &crate::spec::Cell,
    mu: &[f64],
    summaries: &[Summary],
) -> Asymptotic {
    let mut out = Asymptotic::none();
    if spec.design().is_some() {
        out.refused = Some(
            "fixed design: not derived (the Fisher information of §8.1 is that of pairs drawn from mu)"
                .into(),
        );
        return out;
    }
    if fit.estimator.is_ipo() {
        let linear = fit.estimator == Estimator::IpoLinear;
        out.refused = match cell.gamma {
            GammaRule::Schedule(_) => Some("IPO under a gamma(n) schedule: not derived".into()),
            GammaRule::Fixed(gamma) => {
                let q = spec.quantity();
                match crate::asymptotics::predict_ipo(inst, q, &cell.weights, gamma, mu, linear) {
                    Ok(p) => {
                        leading(&mut out, p, summaries);
                        None
                    }
                    Err(e) => Some(e.to_string()),
                }
            }
        };
        return out;
    }
    let tabular = fit.estimator == Estimator::DpoTabular;
    if let (crate::instance::RewardModel::Finite(f), false) = (&inst.reward, tabular) {
        match (crate::asymptotics::chernoff_rates(inst, mu), cell.gamma) {
            (Ok(rates), GammaRule::Fixed(gamma)) if fit.rounds == 1 => {
                out.exponential_rate =
                    Some(rates.iter().map(|c| c.rate).fold(f64::INFINITY, f64::min));
                let reg =
                    crate::asymptotics::cell_regularizer(inst, spec.divergence(), &cell.weights);
                let r_star = inst.true_reward();
                let mut ws = crate::gap::GapWorkspace::default();
                let gaps: Vec<f64> = f
                    .candidates
                    .iter()
                    .map(|rj| {
                        crate::gap::gaps(&reg, &inst.rho, &r_star, rj, gamma, &mut ws)
                            .get(spec.quantity())
                    })
                    .collect();
                out.predicted = spec
                    .ns()
                    .iter()
                    .map(|&n| PredictedValue {
                        n,
                        value: crate::asymptotics::finite_class_mean_gap(&rates, &gaps, n as f64),
                        se: None,
                        bias: None,
                    })
                    .collect();
            }
            (Ok(_), _) => {
                out.refused = Some(
                    "finite class under a gamma(n) schedule or online rounds: not derived".into(),
                )
            }
            (Err(e), _) => out.refused = Some(e.to_string()),
        }
        out.refused.get_or_insert_with(|| {
            "finite class: the mean gap decays exponentially (see exponential_rate)".into()
        });
        return out;
    }
    let refusal = match (cell.gamma, fit.rounds) {
        (GammaRule::Schedule(_), _) if tabular => {
            Some("tabular DPO under a gamma(n) schedule: not derived".into())
        }
        (GammaRule::Schedule(_), r) if r > 1 => Some(
            "online rounds under a gamma(n) schedule: not derived (the rounds' limit policies pi*_gamma(n) move with n)"
                .into(),
        ),
        (GammaRule::Schedule(_), _) => {
            let schedule: Vec<(u64, f64)> =
                spec.ns().iter().map(|&n| (n, cell.gamma.at(n))).collect();
            let seed = spec.seed() ^ fnv1a(cell.label.as_bytes());
            match crate::asymptotics::schedule_curve(
                inst,
                spec.divergence(),
                spec.quantity(),
                &cell.weights,
                mu,
                &schedule,
                seed,
            ) {
                Ok(points) => {
                    out.large_gamma = large_gamma_limit(spec, inst, cell, mu);
                    out.predicted = points
                        .iter()
                        .map(|p| PredictedValue {
                            n: p.n,
                            value: p.value,
                            se: Some(p.se),
                            bias: Some(p.bias),
                        })
                        .collect();
                    None
                }
                Err(e) => Some(e.to_string()),
            }
        }
        (GammaRule::Fixed(gamma), rounds) => {
            let (d, q, w) = (spec.divergence(), spec.quantity(), &cell.weights);
            let prediction = if tabular {
                crate::asymptotics::predict_tabular_dpo(inst, d, q, w, gamma, mu)
            } else {
                crate::asymptotics::predict_online(inst, d, q, w, gamma, mu, rounds)
            };
            match prediction {
                Ok(p) => {
                    leading(&mut out, p, summaries);
                    None
                }
                Err(e) => Some(e.to_string()),
            }
        }
    };
    out.refused = refusal;
    out
}

/// Records a predicted leading term C n^a and the measured n^-a x mean beside it.
fn leading(out: &mut Asymptotic, p: crate::asymptotics::Prediction, summaries: &[Summary]) {
    out.exponent = Some(p.exponent);
    out.constant = Some(p.constant);
    out.scaled_mean = summaries
        .iter()
        .map(|s| {
            let k = (s.n as f64).powf(-p.exponent);
            ScaledMean {
                n: s.n,
                value: k * s.mean,
                ci_low: k * s.ci_low,
                ci_high: k * s.ci_high,
            }
        })
        .collect();
}

/// Assembles the result of a finished run.
pub fn build(spec: &Spec, runs: &[CellRun], git_commit: Option<String>) -> ResultFile {
    let inst = &spec.instance();
    let (dim, candidates) = match &inst.reward {
        crate::instance::RewardModel::Linear(l) => (Some(l.dim), None),
        crate::instance::RewardModel::Finite(f) => (None, Some(f.candidates.len())),
        crate::instance::RewardModel::Table(_) => (None, None),
    };
    let instance = InstanceInfo {
        origin: spec.instance_origin().clone(),
        contexts: inst.contexts,
        responses: inst.responses,
        references: inst.k(),
        reward_class: match &inst.reward {
            crate::instance::RewardModel::Linear(_) => RewardClass::Linear,
            crate::instance::RewardModel::Finite(_) => RewardClass::Finite,
            crate::instance::RewardModel::Table(_) => RewardClass::Table,
        },
        dim,
        candidates,
        r_max: inst.r_max(),
        hash: hash_hex(instance_json(spec).as_bytes()),
    };
    let o = &spec.options();
    // Cells are summarised in parallel (the bootstrap dominates); order is preserved.
    use rayon::prelude::*;
    let cells = spec
        .cells()
        .par_iter()
        .zip(runs.par_iter())
        .enumerate()
        .map(|(ci, (c, run))| {
            let inst = spec.instance_of(ci);
            let summaries: Vec<Summary> = spec
                .ns()
                .iter()
                .zip(&run.values)
                .map(|(&n, v)| summarize(n, v, spec.delta()))
                .collect();
            let seed = spec.seed() ^ fnv1a(c.label.as_bytes()) ^ fnv1a(b"bootstrap");
            let fit = |stat| {
                fit_exponent(
                    &spec.ns(),
                    &run.values,
                    stat,
                    spec.delta(),
                    o.tail,
                    o.bootstrap_resamples,
                    o.ci_level,
                    o.gap_floor,
                    seed,
                )
            };
            let mu = crate::engine::sampling_policy(inst, spec.sampling(), &c.weights);
            let nu_kind = match spec.divergence() {
                Divergence::Rkl => Sampling::Geometric,
                Divergence::Fkl => Sampling::Arithmetic,
            };
            let nu = crate::engine::sampling_policy(inst, nu_kind, &c.weights);
            let own = Fit {
                estimator: spec.estimator(),
                rounds: spec.rounds(),
            };
            // The two bootstrap fits and the prediction are independent (each fit has its
            // own seeded stream): computed side by side, so that a one-cell spec uses both
            // cores too; the values do not depend on it.
            let ((exponent_mean, exponent_quantile), asymptotic) = rayon::join(
                || rayon::join(|| fit(RateStatistic::Mean), || fit(RateStatistic::Quantile)),
                || asymptotic(spec, own, inst, c, &mu, &summaries),
            );
            CellResult {
                asymptotic,
                comparators: crate::policy::comparator_objectives(
                    inst,
                    spec.divergence(),
                    &c.weights,
                    c.gamma.at(*spec.ns().last().expect("non-empty grid")),
                    o.mrpo_clip_eps,
                ),
                coverage: match spec.design() {
                    Some(d) => crate::coverage::design_coverage(inst, &nu, &d.limit_frequencies()),
                    None => crate::coverage::coverage(inst, &nu, &mu),
                },
                support: support(spec, inst, &c.weights),
                instance: c.instance,
                label: c.label.clone(),
                weights: c.weights.clone(),
                gamma: c.gamma,
                n: spec.ns().clone(),
                gamma_at_n: spec.ns().iter().map(|&n| c.gamma.at(n)).collect(),
                summaries,
                exponent_mean,
                exponent_quantile,
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
                no_minimiser: no_minimiser(spec, run),
                series: series_results(spec, inst, c, &mu, run),
                raw: run.values.clone(),
            }
        })
        .collect();
    ResultFile {
        format: FORMAT.into(),
        name: spec.name().clone(),
        claims: spec.claims().clone(),
        divergence: spec.divergence(),
        quantity: spec.quantity(),
        provenance: Provenance {
            mrkl_version: env!("CARGO_PKG_VERSION").into(),
            git_commit,
            spec_hash: spec_hash(spec),
            seed: spec.seed(),
        },
        ours: ours(spec),
        spec: spec.to_record(),
        instance,
        cells,
    }
}

/// Tabular DPO without ridge: per n, how many fits had no finite minimiser and where their
/// policies go (from the series `dpo_not_converged`, `dpo_vanishing`,
/// `dpo_point_mass_contexts` of [`Spec::series`]); `None` for every other spec.
fn no_minimiser(spec: &Spec, run: &CellRun) -> Option<crate::result::NoMinimiser> {
    use crate::spec::SeriesKind;
    if !spec.reports_no_minimiser() {
        return None;
    }
    let kinds: Vec<SeriesKind> = spec.series().into_iter().map(|d| d.kind).collect();
    let raw = |kind: SeriesKind| {
        let i = kinds.iter().position(|k| *k == kind).expect("recorded");
        &run.extras[i]
    };
    let mean = |v: &Vec<f64>| v.iter().sum::<f64>() / v.len() as f64;
    Some(crate::result::NoMinimiser {
        not_converged: raw(SeriesKind::DpoNotConverged)
            .iter()
            .map(|v| v.iter().filter(|&&b| b > 0.0).count())
            .collect(),
        vanishing_mean: raw(SeriesKind::DpoVanishing).iter().map(mean).collect(),
        point_mass_contexts_mean: raw(SeriesKind::DpoPointMass).iter().map(mean).collect(),
    })
}

/// The escort's support per context (`Instance::support_sizes`), where the cell uses the
/// escort or MRPO's harmonic mean: RKL, geometric sampling, or recorded comparators.
fn support(
    spec: &Spec,
    inst: &crate::instance::Instance,
    weights: &[f64],
) -> Option<crate::result::Support> {
    let uses = spec.divergence() == crate::policy::Divergence::Rkl
        || spec.sampling() == crate::spec::Sampling::Geometric
        || spec.records().contains(&crate::spec::Record::Comparators);
    uses.then(|| crate::result::Support::of(&inst.support_sizes(weights), inst.responses))
}
