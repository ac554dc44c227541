//! The regularised policies of THEORY §1 and the comparators of §6, per context, in log
//! space where it matters. A [`Regularizer`] holds the part that depends only on the
//! references and weights (the log escort ln g for RKL, the mixture m for FKL), so that
//! plug-in policies for many rewards reuse it.

use crate::numerics::{ln0, log_sum_exp};
use serde::{Deserialize, Serialize};

/// Which KL regularisation (THEORY §1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Divergence {
    /// Reverse KL: sum_i alpha_i KL(pi || pi_i).
    Rkl,
    /// Forward KL: sum_i beta_i KL(pi_i || pi).
    Fkl,
}

impl Divergence {
    pub fn name(self) -> &'static str {
        match self {
            Divergence::Rkl => "rkl",
            Divergence::Fkl => "fkl",
        }
    }
}

/// ln g(y) for the generalised escort g = prod_i pi_i^{w_i} / F (THEORY §1), written into
/// `out`; returns ln F = ln sum_y prod_i pi_i(y)^{w_i}. Terms with w_i = 0 are omitted
/// (0 * ln 0 = 0), so a vertex weight gives back that reference (D7). Zero probabilities
/// give ln g = -inf.
pub fn log_escort(refs: &[&[f64]], weights: &[f64], out: &mut [f64]) -> f64 {
    for (y, o) in out.iter_mut().enumerate() {
        *o = refs
            .iter()
            .zip(weights)
            .filter(|(_, w)| **w > 0.0)
            .map(|(r, &w)| {
                if r[y] > 0.0 {
                    w * r[y].ln()
                } else {
                    f64::NEG_INFINITY
                }
            })
            .sum();
    }
    let ln_f = log_sum_exp(out);
    out.iter_mut().for_each(|v| *v -= ln_f);
    ln_f
}

/// The arithmetic mixture m(y) = sum_i w_i pi_i(y) (THEORY §1, FKL).
pub fn mixture(refs: &[&[f64]], weights: &[f64], out: &mut [f64]) {
    for (y, o) in out.iter_mut().enumerate() {
        *o = refs.iter().zip(weights).map(|(r, w)| w * r[y]).sum();
    }
}

/// ln h(y) for MRPO's weighted harmonic mean h(y) ∝ 1 / sum_i w_i / pi_i(y) (THEORY §6),
/// normalised; with `clip_eps > 0` each secondary reference's log-probability is first
/// clipped into [(1+eps) lp_0, (1-eps) lp_0] around the primary's lp_0 (CTRO).
/// A response that any reference with w_i > 0 gives probability zero gets h = 0.
pub fn log_harmonic(refs: &[&[f64]], weights: &[f64], clip_eps: f64, out: &mut [f64]) {
    for (y, o) in out.iter_mut().enumerate() {
        let lp0 = ln0(refs[0][y]);
        let mut terms = Vec::with_capacity(refs.len());
        for (i, (r, &w)) in refs.iter().zip(weights).enumerate() {
            if w == 0.0 {
                continue;
            }
            let mut lp = ln0(r[y]);
            if i > 0 && clip_eps > 0.0 && lp0.is_finite() {
                lp = lp.clamp((1.0 + clip_eps) * lp0, (1.0 - clip_eps) * lp0);
            }
            // ln(w / p) = ln w - lp; p = 0 makes the sum infinite and h = 0.
            terms.push(w.ln() - lp);
        }
        *o = if terms.iter().any(|t| *t == f64::INFINITY) {
            f64::NEG_INFINITY
        } else {
            -log_sum_exp(&terms)
        };
    }
    let z = log_sum_exp(out);
    out.iter_mut().for_each(|v| *v -= z);
}

/// RKL solution (Theorem 5.1): ln pi*(y) = ln g(y) + gamma r(y) - ln Z, written into `out`;
/// returns ln Z = ln sum_y g(y) e^{gamma r(y)}. Log space throughout, so gamma r may be
/// large and g may have zeros.
pub fn rkl_log_policy(log_g: &[f64], r: &[f64], gamma: f64, out: &mut [f64]) -> f64 {
    for ((o, &lg), &rv) in out.iter_mut().zip(log_g).zip(r) {
        *o = if lg == f64::NEG_INFINITY {
            lg
        } else {
            lg + gamma * rv
        };
    }
    let ln_z = log_sum_exp(out);
    out.iter_mut().for_each(|v| *v -= ln_z);
    ln_z
}

/// The root of the FKL normalisation (Theorem 6.1, D5), in the scaled offset
/// t = gamma (Z~ - r_top), r_top = max_{y in supp m} r(y).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FklRoot {
    /// t = gamma (Z~ - r_top), in (0, 1].
    pub t: f64,
    /// r_top = max over supp m of r.
    pub r_top: f64,
    /// Newton/bisection iterations used.
    pub iterations: u32,
}

impl FklRoot {
    /// The normaliser Z~ = r_top + t / gamma.
    pub fn z(&self, gamma: f64) -> f64 {
        self.r_top + self.t / gamma
    }
}

/// Maximum iterations of the FKL root finder; never reached in practice (Newton from the
/// left converges monotonically, typically in under 10 steps).
pub const FKL_MAX_ITERATIONS: u32 = 200;

/// FKL solution (Theorem 6.1): pi~(y) = m(y) / (gamma (Z~ - r(y))) with Z~ fixed by
/// sum_y pi~(y) = 1, written into `out` (zero off supp m).
///
/// With c_y = gamma (r_top - r(y)) >= 0 the equation reads f(t) = sum_y m_y / (t + c_y) - 1 = 0,
/// f convex and strictly decreasing on t > 0. D5 brackets the root: t <= 1 (Z~ <= r_top + 1/gamma),
/// t >= 1 - gamma E_m[r_top - r] (Z~ >= E_m r + 1/gamma) and t >= m(top) (the top term alone
/// is <= 1). Newton started at the lower end of the bracket increases monotonically to the
/// root (convexity), with bisection as a safeguard should rounding push it outside the
/// bracket. Working with t and c_y (not Z~ - r(y)) avoids cancellation for large gamma: t
/// and the entries of order one have ~1e-15 relative accuracy for gamma in [1e-6, 1e6], also
/// when t itself is tiny (a top response of mass 1e-300); an entry far below 1e-16 has
/// ~1e-16 absolute accuracy (the normalisation sum is only known to rounding).
pub fn fkl_policy(m: &[f64], r: &[f64], gamma: f64, out: &mut [f64]) -> FklRoot {
    let r_top = m
        .iter()
        .zip(r)
        .filter(|(mv, _)| **mv > 0.0)
        .map(|(_, &rv)| rv)
        .fold(f64::NEG_INFINITY, f64::max);
    let mut mean_gap = 0.0;
    let mut m_top = 0.0;
    for (&mv, &rv) in m.iter().zip(r) {
        if mv > 0.0 {
            mean_gap += mv * (r_top - rv);
            if rv == r_top {
                m_top += mv;
            }
        }
    }
    let c = |rv: f64| gamma * (r_top - rv);
    let eval = |t: f64| {
        let (mut f, mut df) = (-1.0, 0.0);
        for (&mv, &rv) in m.iter().zip(r) {
            if mv > 0.0 {
                let q = mv / (t + c(rv));
                f += q;
                df -= q / (t + c(rv));
            }
        }
        (f, df)
    };
    let mut lo = (1.0 - gamma * mean_gap).max(m_top).min(1.0);
    let mut hi = 1.0;
    let mut t = lo;
    let mut iterations = 0;
    while iterations < FKL_MAX_ITERATIONS {
        iterations += 1;
        let (f, df) = eval(t);
        if f == 0.0 {
            break;
        }
        if f > 0.0 {
            lo = t;
        } else {
            hi = t;
        }
        let newton = t - f / df;
        // Converged: the Newton correction is below rounding (it may then land on a bracket
        // end, which must not trigger a bisection step).
        if (newton - t).abs() <= 4.0 * f64::EPSILON * t {
            t = newton.clamp(lo, hi);
            break;
        }
        t = if newton > lo && newton < hi {
            newton
        } else if hi > 4.0 * lo && lo > 0.0 {
            (lo * hi).sqrt() // bisect in log scale: the bracket may span hundreds of decades
        } else {
            0.5 * (lo + hi)
        };
        if hi - lo <= 4.0 * f64::EPSILON * lo {
            break;
        }
    }
    let mut total = 0.0;
    for ((o, &mv), &rv) in out.iter_mut().zip(m).zip(r) {
        *o = if mv > 0.0 { mv / (t + c(rv)) } else { 0.0 };
        total += *o;
    }
    out.iter_mut().for_each(|v| *v /= total);
    FklRoot {
        t,
        r_top,
        iterations,
    }
}

/// KKT residual of an FKL solution (D6): max over supp m of |r(y) + m(y)/(gamma pi(y)) - Z~|,
/// relative to max(1, |Z~|).
pub fn fkl_kkt_residual(m: &[f64], r: &[f64], gamma: f64, pi: &[f64], root: &FklRoot) -> f64 {
    let z = root.z(gamma);
    m.iter()
        .zip(r)
        .zip(pi)
        .filter(|((mv, _), _)| **mv > 0.0)
        .map(|((&mv, &rv), &p)| (rv + mv / (gamma * p) - z).abs())
        .fold(0.0, f64::max)
        / z.abs().max(1.0)
}

/// Per-context RKL objective E_{pi} r - (1/gamma) sum_i alpha_i KL(pi || pi_i)
/// (-inf if pi puts mass where a weighted reference has none).
pub fn rkl_objective(pi: &[f64], refs: &[&[f64]], alpha: &[f64], r: &[f64], gamma: f64) -> f64 {
    let mut value = 0.0;
    for (y, &p) in pi.iter().enumerate() {
        if p <= 0.0 {
            continue;
        }
        value += p * r[y];
        for (rf, &a) in refs.iter().zip(alpha) {
            if a > 0.0 {
                if rf[y] <= 0.0 {
                    return f64::NEG_INFINITY;
                }
                value -= a * p * (p.ln() - rf[y].ln()) / gamma;
            }
        }
    }
    value
}

/// Per-context FKL objective E_{pi} r - (1/gamma) sum_i beta_i KL(pi_i || pi)
/// (-inf if a weighted reference puts mass where pi has none).
pub fn fkl_objective(pi: &[f64], refs: &[&[f64]], beta: &[f64], r: &[f64], gamma: f64) -> f64 {
    let mut value: f64 = pi.iter().zip(r).map(|(p, rv)| p * rv).sum();
    for (rf, &b) in refs.iter().zip(beta) {
        if b == 0.0 {
            continue;
        }
        for (y, &q) in rf.iter().enumerate() {
            if q > 0.0 {
                if pi[y] <= 0.0 {
                    return f64::NEG_INFINITY;
                }
                value -= b * q * (q.ln() - pi[y].ln()) / gamma;
            }
        }
    }
    value
}

/// The maximal RKL value of one context (D2): (1/gamma) ln sum_y prod_i pi_i^{alpha_i} e^{gamma r}
/// = (1/gamma) (ln F + ln Z).
pub fn rkl_optimal_value(ln_f: f64, ln_z: f64, gamma: f64) -> f64 {
    (ln_f + ln_z) / gamma
}

/// The reference-dependent part of a regularised policy for a whole instance, precomputed
/// once per (references, weights): `base[x*ny + y]` is ln g (RKL) or m (FKL). The same
/// form also serves the comparators whose policy is base * e^{gamma r}: MRPO's harmonic
/// mean and a single reference (see [`Regularizer::rkl_with_log_base`]).
#[derive(Clone, Debug)]
pub struct Regularizer {
    pub divergence: Divergence,
    pub responses: usize,
    /// ln g (RKL) or m (FKL), flat over X x Y.
    pub base: Vec<f64>,
    /// ln F(x) for RKL (zero for the comparators and for FKL).
    pub ln_f: Vec<f64>,
}

impl Regularizer {
    /// Builds the RKL (escort) or FKL (mixture) base from the instance's references.
    pub fn new(
        divergence: Divergence,
        references: &[Vec<f64>],
        weights: &[f64],
        contexts: usize,
        responses: usize,
    ) -> Self {
        let ny = responses;
        let mut base = vec![0.0; contexts * ny];
        let mut ln_f = vec![0.0; contexts];
        for x in 0..contexts {
            let refs: Vec<&[f64]> = references
                .iter()
                .map(|r| &r[x * ny..(x + 1) * ny])
                .collect();
            let out = &mut base[x * ny..(x + 1) * ny];
            match divergence {
                Divergence::Rkl => ln_f[x] = log_escort(&refs, weights, out),
                Divergence::Fkl => mixture(&refs, weights, out),
            }
        }
        Regularizer {
            divergence,
            responses,
            base,
            ln_f,
        }
    }

    /// A policy of the RKL form base * e^{gamma r} with a given normalised log base
    /// (MRPO's ln h, or ln pi_i for a single reference).
    pub fn rkl_with_log_base(log_base: Vec<f64>, contexts: usize, responses: usize) -> Self {
        Regularizer {
            divergence: Divergence::Rkl,
            responses,
            base: log_base,
            ln_f: vec![0.0; contexts],
        }
    }

    /// Fills `out` (flat X x Y) with the policy for reward table `r` and returns the total
    /// number of root-finder iterations (0 for RKL). RKL: `out` holds probabilities, computed
    /// from the log policy.
    pub fn policy(&self, r: &[f64], gamma: f64, out: &mut [f64]) -> u32 {
        let ny = self.responses;
        let mut iterations = 0;
        for ((b, rr), o) in self
            .base
            .chunks_exact(ny)
            .zip(r.chunks_exact(ny))
            .zip(out.chunks_exact_mut(ny))
        {
            match self.divergence {
                Divergence::Rkl => {
                    rkl_log_policy(b, rr, gamma, o);
                    o.iter_mut().for_each(|v| *v = v.exp());
                }
                Divergence::Fkl => iterations += fkl_policy(b, rr, gamma, o).iterations,
            }
        }
        iterations
    }
}

/// Names of the RKL comparators of THEORY §6, in the order of [`comparator_bases`]:
/// `mrpo`, `mrpo_ctro` (when `clip_eps` > 0), `arithmetic_mixture`, `reference_1..K`.
pub fn comparator_names(k: usize, clip_eps: f64) -> Vec<String> {
    let mut names = vec!["mrpo".to_string()];
    if clip_eps > 0.0 {
        names.push("mrpo_ctro".into());
    }
    names.push("arithmetic_mixture".into());
    names.extend((1..=k).map(|i| format!("reference_{i}")));
    names
}

/// The log bases of the RKL comparators of THEORY §6 at one context, in the order of
/// [`comparator_names`]: MRPO's weighted harmonic mean ln h (without, and when `clip_eps` > 0
/// with, the CTRO clipping), the arithmetic mixture m used as a single reference, and each
/// single reference pi_i. The comparator's policy is base * e^{gamma r}. This is the one
/// comparator list: results, recorded series and the F1 check all build from it.
pub fn comparator_log_bases(refs: &[&[f64]], weights: &[f64], clip_eps: f64) -> Vec<Vec<f64>> {
    let ny = refs.first().map_or(0, |r| r.len());
    let harmonic = |eps: f64| {
        let mut out = vec![0.0; ny];
        log_harmonic(refs, weights, eps, &mut out);
        out
    };
    let mut bases = vec![harmonic(0.0)];
    if clip_eps > 0.0 {
        bases.push(harmonic(clip_eps));
    }
    let mut m = vec![0.0; ny];
    mixture(refs, weights, &mut m);
    bases.push(m.iter().map(|&v| crate::numerics::ln0(v)).collect());
    bases.extend(
        refs.iter()
            .map(|p| p.iter().map(|&v| crate::numerics::ln0(v)).collect()),
    );
    bases
}

/// The RKL comparators of THEORY §6 ([`comparator_log_bases`]) over every context, as
/// policies, named by [`comparator_names`].
pub fn comparator_bases(
    inst: &crate::instance::Instance,
    weights: &[f64],
    clip_eps: f64,
) -> Vec<(String, Regularizer)> {
    let (nx, ny, k) = (inst.contexts, inst.responses, inst.k());
    let names = comparator_names(k, clip_eps);
    let mut tables = vec![vec![0.0; nx * ny]; names.len()];
    for x in 0..nx {
        let refs: Vec<&[f64]> = (0..k).map(|i| inst.reference(i, x)).collect();
        for (t, b) in tables
            .iter_mut()
            .zip(comparator_log_bases(&refs, weights, clip_eps))
        {
            t[x * ny..(x + 1) * ny].copy_from_slice(&b);
        }
    }
    names
        .into_iter()
        .zip(tables)
        .map(|(name, t)| (name, Regularizer::rkl_with_log_base(t, nx, ny)))
        .collect()
}

/// E_x J(pi(.|x)) for the policy `policy` builds from the reward table `r` at `gamma`
/// (its base times e^{gamma r}, or the FKL form), scored by the `divergence` objective of
/// THEORY §1 with the instance's references, weights `weights` and the same reward `r`.
/// -inf for an RKL policy with mass outside the escort's support.
pub fn true_objective(
    inst: &crate::instance::Instance,
    policy: &Regularizer,
    divergence: Divergence,
    weights: &[f64],
    r: &[f64],
    gamma: f64,
) -> f64 {
    let (nx, ny, k) = (inst.contexts, inst.responses, inst.k());
    let mut pi = vec![0.0; nx * ny];
    policy.policy(r, gamma, &mut pi);
    let mut total = 0.0;
    for x in 0..nx {
        let refs: Vec<&[f64]> = (0..k).map(|i| inst.reference(i, x)).collect();
        let (p, rr) = (&pi[x * ny..(x + 1) * ny], &r[x * ny..(x + 1) * ny]);
        total += inst.rho[x]
            * match divergence {
                Divergence::Rkl => rkl_objective(p, &refs, weights, rr, gamma),
                Divergence::Fkl => fkl_objective(p, &refs, weights, rr, gamma),
            };
    }
    total
}

/// The true objective E_x J(pi(.|x)) of the exact regularised policy and of the comparators
/// of THEORY §6, for the instance's true reward: see `CellResult::comparators`. The RKL
/// comparators ([`comparator_bases`]) are all scored by the multi-reference RKL objective
/// with weights `weights`; a comparator that puts mass outside the escort's support scores
/// -inf and is left out.
pub fn comparator_objectives(
    inst: &crate::instance::Instance,
    divergence: Divergence,
    weights: &[f64],
    gamma: f64,
    clip_eps: f64,
) -> std::collections::BTreeMap<String, f64> {
    let (nx, ny) = (inst.contexts, inst.responses);
    let r = inst.true_reward();
    let mut bases: Vec<(String, Regularizer)> = vec![(
        "exact".into(),
        Regularizer::new(divergence, &inst.references, weights, nx, ny),
    )];
    if divergence == Divergence::Rkl {
        bases.extend(comparator_bases(inst, weights, clip_eps));
    }
    let mut out = std::collections::BTreeMap::new();
    for (name, reg) in bases {
        let total = true_objective(inst, &reg, divergence, weights, &r, gamma);
        if total.is_finite() {
            out.insert(name, total);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_checked_two_response_rkl() {
        // pi_1 = (1/2, 1/2), pi_2 = (1/4, 3/4), alpha = (1/2, 1/2): g ∝ (sqrt(1/8), sqrt(3/8)).
        let p1 = [0.5, 0.5];
        let p2 = [0.25, 0.75];
        let mut lg = [0.0; 2];
        let ln_f = log_escort(&[&p1, &p2], &[0.5, 0.5], &mut lg);
        let f = 0.125f64.sqrt() + 0.375f64.sqrt();
        assert!((ln_f - f.ln()).abs() < 1e-15);
        assert!((lg[0].exp() - 0.125f64.sqrt() / f).abs() < 1e-15);
        let mut lp = [0.0; 2];
        rkl_log_policy(&lg, &[1.0, 0.0], 2.0, &mut lp);
        let w0 = 0.125f64.sqrt() * 2f64.exp();
        let w1 = 0.375f64.sqrt();
        assert!((lp[0].exp() - w0 / (w0 + w1)).abs() < 1e-15);
    }

    #[test]
    fn hand_checked_fkl_root() {
        // m = (1/2, 1/2), r = (1, 0), gamma = 1: 1/(2t) + 1/(2(t+1)) = 1 => t^2 = 1/2.
        let mut pi = [0.0; 2];
        let root = fkl_policy(&[0.5, 0.5], &[1.0, 0.0], 1.0, &mut pi);
        assert!((root.t - 0.5f64.sqrt()).abs() < 1e-15, "{}", root.t);
        assert!((pi[0] - 0.5 / 0.5f64.sqrt()).abs() < 1e-15);
        assert!(fkl_kkt_residual(&[0.5, 0.5], &[1.0, 0.0], 1.0, &pi, &root) < 1e-15);
    }

    #[test]
    fn harmonic_mean_with_equal_references_is_that_reference() {
        let p = [0.2, 0.3, 0.5];
        let mut lh = [0.0; 3];
        log_harmonic(&[&p, &p], &[0.4, 0.6], 0.0, &mut lh);
        for y in 0..3 {
            assert!((lh[y].exp() - p[y]).abs() < 1e-15);
        }
    }
}
