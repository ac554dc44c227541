//! The measured quantities of THEORY §3, computed exactly by enumeration over X x Y, for a
//! plug-in policy built from an estimated reward r_hat, against the true reward r*.
//!
//! Both sub-optimality gaps use identities that are exact and free of cancellation:
//! - RKL (D3): J(pi*) - J(pi_hat) = (1/gamma) E_x KL(pi_hat || pi*). With
//!   delta_y = ln pi_hat(y) - ln pi*(y) = gamma (r_hat - r*)(y) - ln E_{pi*} e^{gamma (r_hat - r*)},
//!   KL = sum_y pi*(y) [e^delta delta - (e^delta - 1)], summed with a series near delta = 0.
//! - FKL [derived from D6]: on supp m, J_fkl(p) = E_p r + (1/gamma) sum_y m ln p + const, and
//!   the KKT condition r = Z~ - m/(gamma pi~) gives
//!   J(pi~) - J(q) = (1/gamma) sum_y m(y) [u - 1 - ln u],  u = q(y)/pi~(y) = e^delta,
//!   each term >= 0; delta = ln((t* + c*_y)/(t_hat + c_hat_y)) from the two roots.
//! So gaps of 1e-12 keep their relative accuracy instead of drowning in O(1) objective values.

use crate::numerics::{expm1_minus_x, kl_remainder, log_sum_exp};
use crate::policy::{Divergence, Regularizer, fkl_policy, rkl_log_policy};
use serde::{Deserialize, Serialize};

/// The measured quantity (THEORY §3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Quantity {
    /// J(pi*) - J(pi_hat) in the same regularised objective, true reward.
    Suboptimality,
    /// | E_x [E_{pi*} r* - E_{pi_hat} r*] | at fixed gamma [ours].
    RewardGap,
    /// E_x [max_{y in supp} r*(x,y) - E_{pi_hat} r*], gamma may follow a schedule [ours].
    Optimality,
}

impl Quantity {
    pub fn name(self) -> &'static str {
        match self {
            Quantity::Suboptimality => "suboptimality",
            Quantity::RewardGap => "reward_gap",
            Quantity::Optimality => "optimality",
        }
    }
}

/// Per-context buffers (one per replication).
#[derive(Clone, Debug, Default)]
pub struct GapWorkspace {
    star: Vec<f64>,
    hat: Vec<f64>,
    delta: Vec<f64>,
}

/// All three quantities of one plug-in policy (so callers can record any of them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct Gaps {
    pub suboptimality: f64,
    pub reward_gap: f64,
    pub optimality: f64,
    /// E_x E_{pi_hat} r*: the expected true reward of the plug-in policy (not a gap).
    pub expected_reward: f64,
}

impl Gaps {
    pub fn get(&self, q: Quantity) -> f64 {
        match q {
            Quantity::Suboptimality => self.suboptimality,
            Quantity::RewardGap => self.reward_gap,
            Quantity::Optimality => self.optimality,
        }
    }
}

/// Computes the gaps of the plug-in policy for `r_hat` under regulariser `reg` (whose
/// divergence decides RKL or FKL) at inverse temperature `gamma`, with context weights rho
/// and true reward `r_star` (flat X x Y tables).
pub fn gaps(
    reg: &Regularizer,
    rho: &[f64],
    r_star: &[f64],
    r_hat: &[f64],
    gamma: f64,
    ws: &mut GapWorkspace,
) -> Gaps {
    let ny = reg.responses;
    ws.star.resize(ny, 0.0);
    ws.hat.resize(ny, 0.0);
    ws.delta.resize(ny, 0.0);
    let mut total = Gaps::default();
    let mut signed_reward_gap = 0.0;
    for (x, &w) in rho.iter().enumerate() {
        if w == 0.0 {
            continue;
        }
        let base = &reg.base[x * ny..(x + 1) * ny];
        let rs = &r_star[x * ny..(x + 1) * ny];
        let rh = &r_hat[x * ny..(x + 1) * ny];
        let (sub, rew, opt, er) = match reg.divergence {
            Divergence::Rkl => rkl_context(base, rs, rh, gamma, ws),
            Divergence::Fkl => fkl_context(base, rs, rh, gamma, ws),
        };
        total.suboptimality += w * sub;
        signed_reward_gap += w * rew;
        total.optimality += w * opt;
        total.expected_reward += w * er;
    }
    total.reward_gap = signed_reward_gap.abs();
    total
}

/// (sub-optimality, signed reward gap, optimality, E_{pi_hat} r*) of one context, RKL.
fn rkl_context(
    log_g: &[f64],
    rs: &[f64],
    rh: &[f64],
    gamma: f64,
    ws: &mut GapWorkspace,
) -> (f64, f64, f64, f64) {
    rkl_log_policy(log_g, rs, gamma, &mut ws.star);
    // c = ln E_{pi*} e^{gamma dr}: ln1p of a small sum when gamma dr is small, else log-sum-exp.
    let mut small = true;
    for y in 0..log_g.len() {
        ws.hat[y] = if log_g[y] == f64::NEG_INFINITY {
            0.0
        } else {
            gamma * (rh[y] - rs[y])
        };
        small &= ws.hat[y].abs() < 0.5;
    }
    let c = if small {
        let s: f64 = (0..log_g.len())
            .filter(|&y| log_g[y] > f64::NEG_INFINITY)
            .map(|y| ws.star[y].exp() * ws.hat[y].exp_m1())
            .sum();
        s.ln_1p()
    } else {
        for y in 0..log_g.len() {
            ws.delta[y] = ws.star[y] + ws.hat[y];
        }
        log_sum_exp(&ws.delta)
    };
    let top = support_max(log_g.iter().map(|&l| l > f64::NEG_INFINITY), rs);
    let (mut kl, mut rew, mut opt, mut er) = (0.0, 0.0, 0.0, 0.0);
    for y in 0..log_g.len() {
        if log_g[y] == f64::NEG_INFINITY {
            continue;
        }
        let p = ws.star[y].exp();
        let d = ws.hat[y] - c;
        let q = (ws.star[y] + d).exp(); // pi_hat(y), finite even where p e^d would overflow
        if d.abs() < 1.0 {
            kl += p * kl_remainder(d);
            rew -= p * d.exp_m1() * rs[y];
        } else {
            // Far from zero the series gains nothing; the direct terms avoid 0 * inf.
            kl += q * d - q + p;
            rew += (p - q) * rs[y];
        }
        opt += q * (top - rs[y]);
        er += q * rs[y];
    }
    (kl / gamma, rew, opt, er)
}

/// (sub-optimality, signed reward gap, optimality, E_{pi_hat} r*) of one context, FKL.
fn fkl_context(
    m: &[f64],
    rs: &[f64],
    rh: &[f64],
    gamma: f64,
    ws: &mut GapWorkspace,
) -> (f64, f64, f64, f64) {
    let a = fkl_policy(m, rs, gamma, &mut ws.star);
    let b = fkl_policy(m, rh, gamma, &mut ws.hat);
    let top = support_max(m.iter().map(|&v| v > 0.0), rs);
    let (mut sub, mut rew, mut opt, mut er) = (0.0, 0.0, 0.0, 0.0);
    for y in 0..m.len() {
        if m[y] == 0.0 {
            continue;
        }
        // u = pi_hat / pi~ = (t* + c*_y) / (t_hat + c_hat_y), c_y = gamma (r_top - r(y)).
        let num = a.t + gamma * (a.r_top - rs[y]);
        let den = b.t + gamma * (b.r_top - rh[y]);
        let ratio = (num - den) / den;
        let d = if ratio.abs() < 0.5 {
            ratio.ln_1p()
        } else {
            num.ln() - den.ln()
        };
        sub += if d < 700.0 {
            m[y] * expm1_minus_x(d)
        } else {
            (m[y].ln() + d).exp() - m[y] * (1.0 + d)
        };
        rew += (ws.star[y] - ws.hat[y]) * rs[y];
        opt += ws.hat[y] * (top - rs[y]);
        er += ws.hat[y] * rs[y];
    }
    (sub / gamma, rew, opt, er)
}

/// RKL sub-optimality of a comparator policy pi_c = base_c e^{gamma r_hat} / Z_c (THEORY
/// §6; `comparator` from [`crate::policy::comparator_bases`]) in the multi-reference RKL
/// objective of `exact`: by D3, which holds for every policy,
///   J(pi*) - J(pi_c) = (1/gamma) E_x KL(pi_c || pi*),  pi* = g e^{gamma r*} / Z.
/// +inf when pi_c puts mass where pi* has none (outside the escort's support).
pub fn rkl_policy_loss(
    exact: &Regularizer,
    comparator: &Regularizer,
    rho: &[f64],
    r_star: &[f64],
    r_hat: &[f64],
    gamma: f64,
    ws: &mut GapWorkspace,
) -> f64 {
    let ny = exact.responses;
    ws.star.resize(ny, 0.0);
    ws.hat.resize(ny, 0.0);
    let mut total = 0.0;
    for (x, &w) in rho.iter().enumerate() {
        if w == 0.0 {
            continue;
        }
        let cells = x * ny..(x + 1) * ny;
        rkl_log_policy(
            &exact.base[cells.clone()],
            &r_star[cells.clone()],
            gamma,
            &mut ws.star,
        );
        rkl_log_policy(
            &comparator.base[cells.clone()],
            &r_hat[cells],
            gamma,
            &mut ws.hat,
        );
        let kl: f64 = ws
            .hat
            .iter()
            .zip(&ws.star)
            .filter(|(c, _)| **c > f64::NEG_INFINITY)
            .map(|(&c, &s)| c.exp() * (c - s))
            .sum();
        total += w * kl.max(0.0);
    }
    total / gamma
}

fn support_max(support: impl Iterator<Item = bool>, r: &[f64]) -> f64 {
    support
        .zip(r)
        .filter(|(s, _)| *s)
        .map(|(_, &v)| v)
        .fold(f64::NEG_INFINITY, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::{fkl_objective, rkl_objective};

    /// The identities agree with the direct difference of objective values where the
    /// latter is accurate (gaps of order 1e-3 and up, objectives of order 1).
    #[test]
    fn identities_match_direct_objective_differences() {
        let p1 = [0.1, 0.2, 0.3, 0.4];
        let p2 = [0.4, 0.0, 0.35, 0.25];
        let refs: [&[f64]; 2] = [&p1, &p2];
        let w = [0.3, 0.7];
        let rs = [0.5, -0.2, 0.9, 0.1];
        let rh = [0.3, 0.1, 0.7, 0.4];
        for &gamma in &[0.5, 3.0] {
            for div in [Divergence::Rkl, Divergence::Fkl] {
                let refs_owned: Vec<Vec<f64>> = vec![p1.to_vec(), p2.to_vec()];
                let reg = Regularizer::new(div, &refs_owned, &w, 1, 4);
                let g = gaps(&reg, &[1.0], &rs, &rh, gamma, &mut GapWorkspace::default());
                let (mut star, mut hat) = (vec![0.0; 4], vec![0.0; 4]);
                reg.policy(&rs, gamma, &mut star);
                reg.policy(&rh, gamma, &mut hat);
                let j = |pi: &[f64]| match div {
                    Divergence::Rkl => rkl_objective(pi, &refs, &w, &rs, gamma),
                    Divergence::Fkl => fkl_objective(pi, &refs, &w, &rs, gamma),
                };
                let direct = j(&star) - j(&hat);
                assert!(direct > 1e-4);
                assert!(
                    (g.suboptimality - direct).abs() < 1e-12,
                    "{div:?} {gamma}: {} vs {direct}",
                    g.suboptimality
                );
                let er = |pi: &[f64]| pi.iter().zip(&rs).map(|(a, b)| a * b).sum::<f64>();
                assert!((g.reward_gap - (er(&star) - er(&hat)).abs()).abs() < 1e-12);
                // max r* over the support: index 2 lies in both the intersection (RKL) and the union (FKL)
                let top = 0.9;
                assert!((g.optimality - (top - er(&hat))).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn tiny_reward_errors_give_second_order_gaps_with_full_relative_accuracy() {
        // r_hat = r* + eps v: the gap is (gamma/2) eps^2 Var_{pi*}(v) + O(eps^3) for RKL.
        let p = [0.25, 0.25, 0.5];
        let reg = Regularizer::new(Divergence::Rkl, &[p.to_vec()], &[1.0], 1, 3);
        let rs = [0.0, 0.0, 0.0];
        let v = [1.0, -1.0, 0.0];
        let gamma = 2.0;
        for &eps in &[1e-4, 1e-6, 1e-8] {
            let rh: Vec<f64> = v.iter().map(|a| eps * a).collect();
            let g = gaps(&reg, &[1.0], &rs, &rh, gamma, &mut GapWorkspace::default());
            let var = 0.5; // E v^2 = 0.5, E v = 0 under p
            let expected = 0.5 * gamma * eps * eps * var;
            assert!(
                ((g.suboptimality - expected) / expected).abs() < 10.0 * gamma * eps,
                "{eps}: {} vs {expected}",
                g.suboptimality
            );
        }
    }
}
