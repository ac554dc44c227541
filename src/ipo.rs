//! IPO against DPO on a fixed dataset of one context (Azar et al. 2023, arXiv 2310.12036,
//! §4.2, §5.3-5.4; docs/theory.md §9.5-9.7): tabular IPO as closed-form least squares in the
//! log-ratios, its generic counterpart (gradient descent), and the tabular DPO loss with no
//! ridge, which may have no finite minimiser.
//!
//! A policy of the tabular class is written by its log-ratio s(y) = ln pi(y) - ln pi_ref(y)
//! (up to a constant): pi = pi_ref e^s / Z. pi_ref is given (uniform, or the multi-reference
//! escort of T5.1). Every response of the dataset must have pi_ref > 0.

use crate::dpo::{DpoFit, supported};
use crate::instance::LinearReward;
use crate::numerics::{ln_sigmoid, log_sum_exp, sigmoid};
use crate::policy::{Divergence, Regularizer};
use crate::preference::{WinCounts, pairs};
use nalgebra::{DMatrix, DVector};

/// A dataset: (winner, loser) pairs of response indices.
pub type Pairs = [(usize, usize)];

/// IPO's sampled loss sum_D (h - 1/(2 tau))^2 with h = s(y_w) - s(y_l).
///
/// # Formula
///
/// [paper §5.1, eq. of the empirical IPO loss; docs/theory.md §9.5] h_pi(y_w, y_l) =
/// ln[pi(y_w) pi_ref(y_l) / (pi(y_l) pi_ref(y_w))] = s(y_w) - s(y_l) (the normaliser cancels).
pub fn ipo_loss(data: &Pairs, s: &[f64], tau: f64) -> f64 {
    let c = 0.5 / tau;
    data.iter().map(|&(w, l)| (s[w] - s[l] - c).powi(2)).sum()
}

/// The tabular DPO loss with no ridge, sum_D -ln sigma(tau h) (the tabular RKL-DPO loss of
/// `dpo`, THEORY §6, with tau = 1/gamma, on one context and a fixed dataset).
pub fn dpo_loss(data: &Pairs, s: &[f64], tau: f64) -> f64 {
    data.iter()
        .map(|&(w, l)| -ln_sigmoid(tau * (s[w] - s[l])))
        .sum()
}

/// The gradient of [`dpo_loss`] in s.
pub fn dpo_gradient(data: &Pairs, s: &[f64], tau: f64) -> Vec<f64> {
    let mut g = vec![0.0; s.len()];
    for &(w, l) in data {
        // d/dh -ln sigma(tau h) = -tau sigma(-tau h)
        let d = -tau * crate::numerics::sigmoid(-tau * (s[w] - s[l]));
        g[w] += d;
        g[l] -= d;
    }
    g
}

/// The graph Laplacian L = sum_D (e_w - e_l)(e_w - e_l)^T and the net wins b = sum_D (e_w - e_l).
fn normal_equations(data: &Pairs, ny: usize) -> (DMatrix<f64>, DVector<f64>) {
    weighted_normal_equations(data.iter().map(|&(w, l)| (w, l, 1.0, 1.0)), ny)
}

/// The weighted Laplacian L = sum_e t_e (e_a - e_b)(e_a - e_b)^T and b = sum_e d_e (e_a - e_b)
/// over edges e = (a, b, t_e, d_e): t_e the number of comparisons of a with b, d_e the net
/// wins of a over b (W(a>b) - W(b>a)); equal to [`normal_equations`] of the dataset with
/// W(a>b) copies of (a, b) and W(b>a) of (b, a).
fn weighted_normal_equations(
    edges: impl IntoIterator<Item = (usize, usize, f64, f64)>,
    ny: usize,
) -> (DMatrix<f64>, DVector<f64>) {
    let mut lap = DMatrix::zeros(ny, ny);
    let mut b = DVector::zeros(ny);
    for (w, l, t, d) in edges {
        lap[(w, w)] += t;
        lap[(l, l)] += t;
        lap[(w, l)] -= t;
        lap[(l, w)] -= t;
        b[w] += d;
        b[l] -= d;
    }
    (lap, b)
}

/// The minimum-norm solution of L s = b (L symmetric positive semi-definite, b in its
/// range): L^+ b by the SVD, singular values below 1e-12 x max |L_ij| treated as zero.
fn min_norm_solve(lap: DMatrix<f64>, b: DVector<f64>) -> DVector<f64> {
    let eps = 1e-12 * lap.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    lap.svd(true, true)
        .solve(&b, eps)
        .expect("the SVD has both factors")
}

/// IPO's minimiser over the tabular class: the minimum-norm log-ratios s over `ny` responses.
///
/// # Formula
///
/// [derived, docs/theory.md §9.5] The loss is linear least squares in s: its normal
/// equations are L s = b / (2 tau), L the Laplacian of the comparison graph and b the net
/// wins. Every solution minimises; they differ by a constant on each connected component (a
/// response outside the data is its own component: the loss does not depend on it). The
/// minimum-norm one, s = L^+ b / (2 tau), is the limit of gradient descent from s = 0
/// (pi = pi_ref): the gradient 2 (L s - b/(2 tau)) lies in the range of L, so each
/// component's sum of s stays 0. [ours: that gauge.]
pub fn ipo_log_ratios(data: &Pairs, ny: usize, tau: f64) -> Vec<f64> {
    let (lap, b) = normal_equations(data, ny);
    min_norm_solve(lap, b / (2.0 * tau)).iter().copied().collect()
}

/// ln pi = ln pi_ref + s - ln Z.
pub fn log_policy(log_ref: &[f64], s: &[f64]) -> Vec<f64> {
    let mut lp: Vec<f64> = log_ref.iter().zip(s).map(|(a, b)| a + b).collect();
    let z = log_sum_exp(&lp);
    lp.iter_mut().for_each(|v| *v -= z);
    lp
}

/// The generic method the closed form is checked against: gradient descent on the IPO loss
/// from s = 0 with step 1/(4 d_max) (the Hessian 2L has eigenvalues <= 4 d_max, d_max the
/// largest degree), `iterations` steps.
pub fn ipo_gradient_descent(data: &Pairs, ny: usize, tau: f64, iterations: usize) -> Vec<f64> {
    let (lap, b) = normal_equations(data, ny);
    let d_max = (0..ny).map(|y| lap[(y, y)]).fold(1.0f64, f64::max);
    let step = 1.0 / (4.0 * d_max);
    let target = b / (2.0 * tau);
    let mut s = DVector::zeros(ny);
    for _ in 0..iterations {
        let g = (&lap * &s - &target) * 2.0;
        s -= g * step;
    }
    s.iter().copied().collect()
}

/// The least-squares weights of one context's comparisons between supported responses:
/// (a, b, t, d) in the support's coordinates, with t = W(a>b) + W(b>a) and
/// d = W(a>b) - W(b>a) from the data, or the expected values per comparison from the
/// population (see [`LeastSquaresSource`]).
fn context_edges(
    source: &LeastSquaresSource,
    x: usize,
    index: &[usize],
) -> Vec<(usize, usize, f64, f64)> {
    let ny = index.len();
    let mut out = Vec::new();
    for (p, (a, b)) in pairs(ny).into_iter().enumerate() {
        if index[a] == usize::MAX || index[b] == usize::MAX {
            continue;
        }
        let (t, d) = match source {
            LeastSquaresSource::Data(counts) => {
                let [wa, wb] = counts.wins[x * counts.pairs_per_context() + p];
                ((wa + wb) as f64, wa as f64 - wb as f64)
            }
            LeastSquaresSource::Population { rho, mu, r_star } => {
                let c = x * ny;
                let t = rho[x] * 2.0 * mu[c + a] * mu[c + b];
                (t, t * (2.0 * sigmoid(r_star[c + a] - r_star[c + b]) - 1.0))
            }
        };
        if t > 0.0 {
            out.push((index[a], index[b], t, d));
        }
    }
    out
}

/// What the least squares of IPO are taken over: a dataset, or its population limit
/// (expected counts per comparison: rho(x) 2 mu(a|x) mu(b|x) for the pair {a, b}, of which a
/// wins the fraction sigma(r*(x,a) - r*(x,b)); the sampler of `crate::preference`).
pub enum LeastSquaresSource<'a> {
    Data(&'a WinCounts),
    Population {
        rho: &'a [f64],
        mu: &'a [f64],
        r_star: &'a [f64],
    },
}

/// The supported responses of context x (g > 0: IPO's pi_ref is the escort g, RKL) and
/// each response's index among them (usize::MAX off the support).
fn context_support(reg: &Regularizer, x: usize) -> (Vec<usize>, Vec<usize>) {
    let ny = reg.responses;
    let support: Vec<usize> = (0..ny)
        .filter(|&y| supported(Divergence::Rkl, reg.base[x * ny + y]))
        .collect();
    let mut index = vec![usize::MAX; ny];
    for (i, &y) in support.iter().enumerate() {
        index[y] = i;
    }
    (support, index)
}

/// The implied reward of tabular IPO (`estimator = "ipo_tabular"`): per context, half the
/// minimum-norm least-squares solution of the net wins on the comparison graph of supp g.
///
/// # Formula
///
/// [derived, docs/theory.md §9.8] The tabular class is pi = g e^{s(x, .)} / Z_x on supp g,
/// pi_ref = g (the escort of the cell's weights), and tau = 1/gamma [ours]. IPO's sampled
/// loss sum_D (h - 1/(2 tau))^2 with h = s(x, y_w) - s(x, y_l) separates over contexts; per
/// context it is the least squares of §9.5 with edge weights t_ab = W(a>b) + W(b>a) and net
/// wins d_ab = W(a>b) - W(b>a): L_x s_x = b_x / (2 tau). Minimum norm [ours, as §9.5]:
/// s_x = (gamma / 2) L_x^+ b_x, sum s = 0 on each connected component of the comparison
/// graph, and s = 0 (the reference's logit, pi proportional to g) on a response never
/// compared. The policy is the RKL plug-in policy of r = s / gamma = L_x^+ b_x / 2, which
/// does not depend on gamma (what this returns, flat X x Y, 0 off supp g). Comparisons with a
/// response outside supp g are dropped (`dpo_dropped_pairs = "off_support"`).
pub fn tabular_implied_reward(reg: &Regularizer, source: &LeastSquaresSource) -> Vec<f64> {
    assert_eq!(reg.divergence, Divergence::Rkl, "IPO regularises toward g");
    let ny = reg.responses;
    let nx = reg.base.len() / ny;
    let mut r = vec![0.0; nx * ny];
    for x in 0..nx {
        let (support, index) = context_support(reg, x);
        let edges = context_edges(source, x, &index);
        if edges.is_empty() {
            continue;
        }
        let (lap, b) = weighted_normal_equations(edges, support.len());
        let v = min_norm_solve(lap, b * 0.5);
        for (i, &y) in support.iter().enumerate() {
            r[x * ny + y] = v[i];
        }
    }
    r
}

/// The implied reward <theta, phi> of linear IPO (`estimator = "ipo_linear"`, linear reward
/// class) and theta.
///
/// # Formula
///
/// [derived, docs/theory.md §9.8] The class pi_theta proportional to g e^{gamma <theta, phi>}
/// has h = gamma <theta, z>, z = phi(x, y_w) - phi(x, y_l), so with tau = 1/gamma the loss is
/// gamma^2 sum_D (<theta, z> - 1/2)^2: weighted least squares, theta = A^+ q / 2 with
/// A = sum t_ab z z^T and q = sum d_ab z over the supported pairs of every context (z for
/// a over b), minimum norm [ours] where A is singular. Independent of gamma.
pub fn linear_implied_reward(
    reg: &Regularizer,
    class: &LinearReward,
    source: &LeastSquaresSource,
) -> (Vec<f64>, Vec<f64>) {
    assert_eq!(reg.divergence, Divergence::Rkl, "IPO regularises toward g");
    let (ny, d) = (reg.responses, class.dim);
    let nx = reg.base.len() / ny;
    let mut a_mat = DMatrix::<f64>::zeros(d, d);
    let mut q = DVector::<f64>::zeros(d);
    let phi = |x: usize, y: usize| &class.features[(x * ny + y) * d..(x * ny + y + 1) * d];
    for x in 0..nx {
        let (support, index) = context_support(reg, x);
        for (i, j, t, net) in context_edges(source, x, &index) {
            let z = DVector::from_iterator(
                d,
                phi(x, support[i])
                    .iter()
                    .zip(phi(x, support[j]))
                    .map(|(u, v)| u - v),
            );
            a_mat.syger(t, &z, &z, 1.0);
            q.axpy(net, &z, 1.0);
        }
    }
    let theta: Vec<f64> = if q.iter().all(|v| *v == 0.0) && a_mat.iter().all(|v| *v == 0.0) {
        vec![0.0; d]
    } else {
        min_norm_solve(a_mat, q * 0.5).iter().copied().collect()
    };
    let mut r = vec![0.0; nx * ny];
    class.table(&theta, &mut r);
    (r, theta)
}

/// IPO's fit on a dataset, as a [`DpoFit`] (a closed form: no iterations, always converged):
/// the tabular class, or the linear class when `class` is given.
pub fn fit(reg: &Regularizer, counts: &WinCounts, class: Option<&LinearReward>, gamma: f64) -> DpoFit {
    let source = LeastSquaresSource::Data(counts);
    let (implied_reward, theta) = match class {
        None => (tabular_implied_reward(reg, &source), Vec::new()),
        Some(l) => linear_implied_reward(reg, l, &source),
    };
    let mut policy = vec![0.0; implied_reward.len()];
    reg.policy(&implied_reward, gamma, &mut policy);
    DpoFit {
        policy,
        implied_reward,
        theta,
        iterations: 0,
        converged: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two actions, y1 always preferred: the least squares give s1 - s2 = 1/(2 tau), so with a
    /// uniform reference pi(y1) = sigma(1/(2 tau)) (and sigma(1/(2 tau) + ln pi_ref(y1)/pi_ref(y2))
    /// otherwise), whatever the number of copies; DPO's loss decreases in s1 - s2 without end.
    #[test]
    fn two_actions_closed_form() {
        for tau in [0.05, 0.3, 1.0, 7.0] {
            for copies in [1usize, 5] {
                let data = vec![(0, 1); copies];
                let s = ipo_log_ratios(&data, 2, tau);
                let lp = log_policy(&[0.5f64.ln(); 2], &s);
                assert!((lp[0].exp() - sigmoid(0.5 / tau)).abs() < 1e-14);
                let lp = log_policy(&[0.2f64.ln(), 0.8f64.ln()], &s);
                assert!((lp[0].exp() - sigmoid(0.5 / tau + (0.25f64).ln())).abs() < 1e-14);
                assert!(dpo_gradient(&data, &s, tau)[0] < 0.0);
            }
        }
    }

    /// D1 = {(a>b), (b>c), (a>c)}: s = (1, 0, -1) / (3 tau) (docs/theory.md §9.6), equal to
    /// gradient descent; a planted wrong closed form (each pair fitted exactly, s_a - s_c =
    /// 2 x 1/(2 tau)) has a larger loss.
    #[test]
    fn d1_fixed_point() {
        let d1 = [(0, 1), (1, 2), (0, 2)];
        for tau in [0.1, 1.0, 4.0] {
            let s = ipo_log_ratios(&d1, 3, tau);
            let want = [1.0 / (3.0 * tau), 0.0, -1.0 / (3.0 * tau)];
            for y in 0..3 {
                assert!((s[y] - want[y]).abs() < 1e-13, "{s:?}");
            }
            let gd = ipo_gradient_descent(&d1, 3, tau, 2000);
            for y in 0..3 {
                assert!((gd[y] - s[y]).abs() < 1e-12);
            }
            let c = 0.5 / tau;
            assert!(ipo_loss(&d1, &[c, 0.0, -c], tau) > ipo_loss(&d1, &s, tau) + 1e-3 * c * c);
        }
    }
}
