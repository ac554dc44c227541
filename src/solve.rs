//! `mrkl solve`: the exact policy of an instance file (THEORY §1, D2, D5-D6), computed in log
//! space so that any finite reward and any gamma the checks accept give a policy summing to
//! one; an output that a double cannot hold is refused (exit 2), never printed.

use crate::error::{Error, Result};
use crate::instance::RawInstance;
use crate::policy::{Divergence, Regularizer, fkl_policy, rkl_log_policy};
use crate::spec;
use std::path::Path;

/// The exact RKL policy (or the FKL policy, root-found) of the instance in `path` for its
/// references and reward, with its objective per context and in total; for RKL also the
/// closed-form optimum (D2) and ln F, for FKL the normaliser Z~ and the KKT residual.
/// `weights` defaults to uniform.
pub fn solve(
    path: &Path,
    divergence: Divergence,
    weights: Option<Vec<f64>>,
    gamma: f64,
) -> Result<serde_json::Value> {
    let text = crate::fsio::read_text(path)?;
    let raw: RawInstance = serde_json::from_str(&text).map_err(|e| Error::parse(path, e))?;
    let inst = raw.check()?;
    let a = Args { gamma, weights };
    if !(a.gamma.is_finite() && a.gamma >= spec::GAMMA_RANGE.0 && a.gamma <= spec::GAMMA_RANGE.1) {
        return Err(Error::invalid(
            "--gamma",
            a.gamma,
            "a number in [1e-6, 1e6]",
        ));
    }
    let k = inst.k();
    let mut weights = a.weights.unwrap_or_else(|| vec![1.0 / k as f64; k]);
    if weights.len() != k {
        return Err(Error::invalid(
            "--weights (length)",
            weights.len(),
            format!("{k} weights, one per reference"),
        ));
    }
    crate::instance::check_simplex("--weights", &mut weights)?;
    if divergence == Divergence::Rkl {
        if let Some(x) = inst.empty_intersections(&weights).first() {
            return Err(Error::invalid(
                format!("references at context {x}"),
                "disjoint supports",
                "a response shared by every reference with positive weight (docs/theory.md D4)",
            ));
        }
    }
    let (nx, ny) = (inst.contexts, inst.responses);
    let r = inst.true_reward();
    let reg = Regularizer::new(divergence, &inst.references, &weights, nx, ny);
    let mut contexts = vec![];
    let mut total = 0.0;
    for x in 0..nx {
        let refs: Vec<&[f64]> = (0..k).map(|i| inst.reference(i, x)).collect();
        let base = &reg.base[x * ny..(x + 1) * ny];
        let c = context(
            divergence,
            base,
            reg.ln_f[x],
            &refs,
            &weights,
            &r[x * ny..(x + 1) * ny],
            a.gamma,
        );
        let mut entry = serde_json::json!({ "x": x, "rho": inst.rho[x], "policy": c.policy });
        match divergence {
            Divergence::Rkl => {
                entry["optimal_value_closed_form"] =
                    representable(x, "optimal_value_closed_form", c.extra[0])?;
                entry["ln_F"] = representable(x, "ln_F", reg.ln_f[x])?;
            }
            Divergence::Fkl => {
                entry["normaliser"] = representable(x, "normaliser", c.extra[0])?;
                entry["kkt_residual"] = representable(x, "kkt_residual", c.extra[1])?;
            }
        }
        entry["objective"] = representable(x, "objective", c.objective)?;
        total += inst.rho[x] * c.objective;
        contexts.push(entry);
    }
    let out = serde_json::json!({
        "divergence": divergence,
        "gamma": a.gamma,
        "weights": weights,
        "objective": representable(0, "objective (total)", total)?,
        "contexts": contexts,
    });
    Ok(out)
}

/// A finite number as JSON; anything else is refused (exit 2) rather than printed as a
/// wrong answer (JSON has no infinity or NaN).
fn representable(x: usize, field: &str, v: f64) -> Result<serde_json::Value> {
    if v.is_finite() {
        Ok(serde_json::json!(v))
    } else {
        Err(Error::invalid(
            format!("solve: {field} at context {x}"),
            v,
            "a finite double: the rewards' range times gamma is too large to represent; rescale the rewards",
        ))
    }
}

/// The solution at one context.
struct Context {
    policy: Vec<f64>,
    objective: f64,
    /// RKL: the closed-form optimum (D2). FKL: the normaliser Z~ and the KKT residual (D6).
    extra: Vec<f64>,
}

/// The policy at one context and its objective, in log space with the reward shifted by its
/// top value r_top over the support of the base: both policies are unchanged by the shift
/// (RKL: e^{gamma r} / Z; FKL: Z~ - r), and gamma (r - r_top) <= 0 neither overflows nor
/// loses the top responses whatever the size of r. Then
///
/// - E_pi r = r_top + sum_{pi(y) > 0} pi(y) (r(y) - r_top) (no overflow: a convex combination
///   of non-positive numbers);
/// - RKL: the closed form (ln F + ln Z)/gamma = r_top + (ln F + ln Z')/gamma with Z' the
///   normaliser of the shifted reward; KL(pi || pi_i) from ln pi;
/// - FKL: ln pi(y) = ln m(y) - ln(t + gamma (r_top - r(y))) - ln(sum), with the root t of the
///   shifted problem (so Z~ = r_top + t / gamma), and KL(pi_i || pi) from ln pi, so an entry
///   of pi below the smallest double still has its finite logarithm.
///
/// The printed policy is exp(ln pi) divided by its compensated sum, so it sums to 1 to within
/// the rounding of the division (|Y| half-ulps at most).
fn context(
    divergence: Divergence,
    base: &[f64],
    ln_f: f64,
    refs: &[&[f64]],
    weights: &[f64],
    r: &[f64],
    gamma: f64,
) -> Context {
    let ny = r.len();
    let in_support = |y: usize| match divergence {
        Divergence::Rkl => base[y] > f64::NEG_INFINITY,
        Divergence::Fkl => base[y] > 0.0,
    };
    let r_top = (0..ny)
        .filter(|&y| in_support(y))
        .map(|y| r[y])
        .fold(f64::NEG_INFINITY, f64::max);
    let shifted: Vec<f64> = r.iter().map(|&v| v - r_top).collect();
    let mut ln_pi = vec![f64::NEG_INFINITY; ny];
    let extra;
    match divergence {
        Divergence::Rkl => {
            let ln_z = rkl_log_policy(base, &shifted, gamma, &mut ln_pi);
            extra = vec![r_top + (ln_f + ln_z) / gamma];
        }
        Divergence::Fkl => {
            let mut q = vec![0.0; ny];
            let root = fkl_policy(base, &shifted, gamma, &mut q);
            // ln(t + gamma d) for d = r_top - r >= 0, also when d or gamma d overflows.
            let ln_denominator = |y: usize| {
                let c = gamma * (r_top - r[y]);
                if c.is_finite() {
                    (root.t + c).ln()
                } else {
                    gamma.ln() + ln_gap(r_top, r[y])
                }
            };
            for y in (0..ny).filter(|&y| in_support(y)) {
                ln_pi[y] = base[y].ln() - ln_denominator(y);
            }
            let ln_sum = crate::numerics::log_sum_exp(&ln_pi);
            ln_pi.iter_mut().for_each(|v| *v -= ln_sum);
            // KKT (D6): r + m / (gamma pi) = Z~ on supp m, relative to max(1, |Z~|); with
            // m / (gamma pi) = (t + gamma d) e^{ln_sum} / gamma evaluated in the shifted frame.
            let z = r_top + root.t / gamma;
            let residual = (0..ny)
                .filter(|&y| in_support(y))
                .map(|y| {
                    let m_over = (ln_denominator(y) + ln_sum - gamma.ln()).exp();
                    ((r[y] - r_top) + m_over - root.t / gamma).abs()
                })
                .fold(0.0, f64::max)
                / z.abs().max(1.0);
            extra = vec![z, residual];
        }
    }
    let mut policy: Vec<f64> = ln_pi.iter().map(|v| v.exp()).collect();
    let sum = compensated_sum(&policy);
    policy.iter_mut().for_each(|p| *p /= sum);
    // pi(y) (r(y) - r_top) = -exp(ln pi(y) + ln(r_top - r(y))): finite also when the gap
    // overflows and pi(y) underflows.
    let mean_shift: f64 = (0..ny)
        .filter(|&y| ln_pi[y] > f64::NEG_INFINITY && r[y] < r_top)
        .map(|y| -(ln_pi[y] + ln_gap(r_top, r[y])).exp())
        .sum();
    let mut penalty = 0.0;
    for (rf, &w) in refs.iter().zip(weights) {
        if w == 0.0 {
            continue;
        }
        for y in 0..ny {
            penalty += match divergence {
                // KL(pi || pi_i): sum over supp pi of pi (ln pi - ln pi_i).
                Divergence::Rkl if policy[y] > 0.0 => w * policy[y] * (ln_pi[y] - rf[y].ln()),
                // KL(pi_i || pi): sum over supp pi_i of pi_i (ln pi_i - ln pi).
                Divergence::Fkl if rf[y] > 0.0 => w * rf[y] * (rf[y].ln() - ln_pi[y]),
                _ => 0.0,
            };
        }
    }
    Context {
        policy,
        objective: r_top + mean_shift - penalty / gamma,
        extra,
    }
}

/// ln(a - b) for a > b, also when a - b overflows (a = -b = 1e308).
fn ln_gap(a: f64, b: f64) -> f64 {
    let d = a - b;
    if d.is_finite() {
        d.ln()
    } else {
        (0.5 * a - 0.5 * b).ln() + std::f64::consts::LN_2
    }
}

/// Neumaier's compensated sum.
fn compensated_sum(v: &[f64]) -> f64 {
    let (mut s, mut c) = (0.0f64, 0.0f64);
    for &x in v {
        let t = s + x;
        c += if s.abs() >= x.abs() {
            (s - t) + x
        } else {
            (x - t) + s
        };
        s = t;
    }
    s + c
}

struct Args {
    gamma: f64,
    weights: Option<Vec<f64>>,
}
