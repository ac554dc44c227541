//! Exact checks of T5.1 (RKL) and T6.1 (FKL): the closed form (or a planted wrong formula)
//! against a generic maximiser on the simplex, on random one-context instances, plus the
//! residuals of D2 (RKL) and the KKT conditions D6 (FKL).

use super::judgement::{Details, Finding, Judgement, Measure};
use super::registry::{Claim, Formula};
use crate::numerics::ln0;
use crate::policy::{
    Divergence, fkl_kkt_residual, fkl_objective, fkl_policy, log_escort, mixture, rkl_log_policy,
    rkl_objective,
};
use crate::streams::stream;
use rand::RngExt;

/// Default seed of the exact checks (overridden by `mrkl check --seed`).
pub const EXACT_SEED: u64 = 20250201;

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

/// A random distribution over `ny` responses: exponential weights, each response but `keep`
/// dropped (weight 0) with probability 1/4, normalised.
pub(crate) fn random_distribution(
    rng: &mut rand_chacha::ChaCha8Rng,
    ny: usize,
    keep: usize,
) -> Vec<f64> {
    let mut p: Vec<f64> = (0..ny)
        .map(|y| {
            if y != keep && rng.random::<f64>() < 0.25 {
                0.0
            } else {
                -rng.random::<f64>().ln()
            }
        })
        .collect();
    let s: f64 = p.iter().sum();
    p.iter_mut().for_each(|v| *v /= s);
    p
}

pub(crate) fn random_context(seed: u64, id: &str, instance: usize, min_k: usize) -> RandomContext {
    let mut rng = stream(seed, &format!("exact/{id}"), instance as u64);
    let k = min_k + (rng.random::<u64>() % 4) as usize;
    let ny = 2 + (rng.random::<u64>() % 7) as usize;
    let gamma = 10f64.powf(-3.0 + 7.0 * rng.random::<f64>());
    let r_max = 5.0 * rng.random::<f64>();
    let shared = (rng.random::<u64>() % ny as u64) as usize;
    let refs: Vec<Vec<f64>> = (0..k)
        .map(|_| random_distribution(&mut rng, ny, shared))
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
/// or an identity fails. A neighbouring paper's formula is judged by `claims::external`.
pub fn judge_exact(claim: &Claim, seed: u64) -> Judgement {
    if let Some(j) = super::external::judge(claim, seed) {
        return j;
    }
    let div = claim.divergence.unwrap_or(Divergence::Rkl);
    let formula = claim.formula.expect("checked: exact claims name a formula");
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
                if formula == Formula::Arithmetic {
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
                let d2 = if formula == Formula::Geometric {
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
    let check = |what: &str, value: f64| Finding::check(what, value, tol);
    let findings = vec![
        check(
            "relative improvement of a generic maximiser over the formula",
            worst_beat,
        ),
        check("identity residual (D2 / KKT)", worst_identity),
    ];
    let context = if worst_beat > tol {
        format!("worst at {worst_where}")
    } else {
        String::new()
    };
    let mut j = Judgement::from_findings(
        claim,
        Some(format!("random instances ({})", formula.name())),
        Measure::Improvement,
        findings,
        &context,
    );
    j.measured = Some(worst_beat);
    j.details = Details::Exact {
        instances: count,
        max_relative_improvement_by_maximiser: worst_beat,
        max_identity_residual: worst_identity,
        worst_instance: worst_where,
        tolerance: tol,
    };
    j
}
