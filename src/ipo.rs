//! IPO against DPO on a fixed dataset of one context (Azar et al. 2023, arXiv 2310.12036,
//! §4.2, §5.3-5.4; docs/theory.md §9.5-9.7): tabular IPO as closed-form least squares in the
//! log-ratios, its generic counterpart (gradient descent), and the tabular DPO loss with no
//! ridge, which may have no finite minimiser; and IPO as an estimator of the engine
//! (`experiment.estimator = "ipo_tabular"` / `"ipo_linear"`, docs/theory.md §9.8): the same
//! least squares on win counts per context ([`tabular_implied_reward`]) or in theta
//! ([`linear_implied_reward`]), over a dataset or its population limit
//! ([`LeastSquaresSource`]), pi_ref = the escort g and tau = 1/gamma.
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
    min_norm_solve(lap, b / (2.0 * tau))
        .iter()
        .copied()
        .collect()
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
            a_mat.ger(t, &z, &z, 1.0);
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
pub fn fit(
    reg: &Regularizer,
    counts: &WinCounts,
    class: Option<&LinearReward>,
    gamma: f64,
) -> DpoFit {
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

    use crate::instance::{GeneratorParams, GeneratorReward, Instance, RewardModel, generate};
    use crate::preference::Sampler;
    use crate::streams::stream;
    use rand::RngExt;

    /// A random instance with holes in the references (some responses off supp g), linear
    /// reward class.
    fn random_instance(seed: u64, contexts: usize, responses: usize) -> Instance {
        let p = GeneratorParams {
            contexts,
            responses,
            references: 2,
            concentration: 1.0,
            zero_fraction: 0.2,
            context_concentration: None,
            reward: GeneratorReward::Linear {
                dim: 3,
                bound: 1.0,
                theta_norm: 0.8,
            },
            family: Default::default(),
        };
        generate(&p, &mut stream(seed, "ipo-inst", 0))
    }

    fn escort(inst: &Instance) -> Regularizer {
        Regularizer::new(
            Divergence::Rkl,
            &inst.references,
            &[0.4, 0.6],
            inst.contexts,
            inst.responses,
        )
    }

    /// The IPO loss of a policy table, literally: sum over the supported comparisons of
    /// W(w>l) (ln[pi(w) g(l) / (pi(l) g(w))] - 1/(2 tau))^2, g normalised (the escort).
    fn literal_loss(reg: &Regularizer, counts: &WinCounts, pi: &[f64], tau: f64) -> f64 {
        let ny = reg.responses;
        let mut loss = 0.0;
        for x in 0..counts.contexts {
            let lg = &reg.base[x * ny..(x + 1) * ny];
            let z = log_sum_exp(lg);
            for (p, (a, b)) in pairs(ny).into_iter().enumerate() {
                if lg[a] == f64::NEG_INFINITY || lg[b] == f64::NEG_INFINITY {
                    continue;
                }
                let [wa, wb] = counts.wins[x * counts.pairs_per_context() + p];
                let h = (pi[x * ny + a].ln() - (lg[a] - z)) - (pi[x * ny + b].ln() - (lg[b] - z));
                loss += wa as f64 * (h - 0.5 / tau).powi(2) + wb as f64 * (-h - 0.5 / tau).powi(2);
            }
        }
        loss
    }

    /// Random counts on some pairs only, so that components, never-compared and off-support
    /// responses all occur.
    fn sparse_counts(inst: &Instance, seed: u64) -> WinCounts {
        let mut rng = stream(seed, "ipo-counts", 0);
        let mut counts = WinCounts::new(inst.contexts, inst.responses);
        for w in counts.wins.iter_mut() {
            if rng.random::<f64>() < 0.35 {
                *w = [rng.random::<u64>() % 6, rng.random::<u64>() % 6];
            }
        }
        counts
    }

    /// The engine's closed form (`fit`, tabular) against brute force: gradient descent on the
    /// policy logits of the literal IPO loss (policy tables, normalised escort) from pi_ref,
    /// with a central-difference gradient. Gradient descent from pi_ref keeps each component's
    /// sum of log-ratios (the gauge), so both must give the same policy. The step 1/(4 d_max)
    /// of [`ipo_gradient_descent`] with d_max bounded by the total count (the loss is
    /// quadratic in the logits, Hessian <= 4 d_max), 4000 steps; measured agreement 1.8e-13
    /// (gamma 0.5) and 4.4e-12 (gamma 2), required 1e-7 (the finite-difference gradient's
    /// error). A planted closed form with 1/tau in place of 1/(2 tau) is caught.
    #[test]
    fn tabular_fit_equals_brute_force_minimisation_of_the_literal_loss() {
        let inst = random_instance(7, 3, 5);
        let reg = escort(&inst);
        let counts = sparse_counts(&inst, 7);
        let ny = inst.responses;
        for gamma in [0.5, 2.0] {
            let tau = 1.0 / gamma;
            let fit = fit(&reg, &counts, None, gamma);
            let mut logits = reg.base.clone();
            let policy = |l: &[f64]| {
                let mut pi = vec![0.0; l.len()];
                for (row, out) in l.chunks_exact(ny).zip(pi.chunks_exact_mut(ny)) {
                    out.copy_from_slice(&log_policy(row, &vec![0.0; ny]));
                    out.iter_mut().for_each(|v| *v = v.exp());
                }
                pi
            };
            let support: Vec<usize> = (0..logits.len())
                .filter(|&c| logits[c].is_finite())
                .collect();
            let d_max = counts
                .wins
                .iter()
                .map(|w| (w[0] + w[1]) as f64)
                .sum::<f64>()
                .max(1.0);
            let step = 1.0 / (4.0 * d_max);
            for _ in 0..4000 {
                let mut grad = vec![0.0; logits.len()];
                for &c in &support {
                    let h = 1e-5;
                    let mut up = logits.clone();
                    up[c] += h;
                    let mut down = logits.clone();
                    down[c] -= h;
                    grad[c] = (literal_loss(&reg, &counts, &policy(&up), tau)
                        - literal_loss(&reg, &counts, &policy(&down), tau))
                        / (2.0 * h);
                }
                for &c in &support {
                    logits[c] -= step * grad[c];
                }
            }
            let brute = policy(&logits);
            let worst = fit
                .policy
                .iter()
                .zip(&brute)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            eprintln!("gamma {gamma}: max |pi_closed - pi_brute| = {worst:.2e}");
            assert!(worst < 1e-7, "gamma {gamma}: {worst}");
            let l_fit = literal_loss(&reg, &counts, &fit.policy, tau);
            assert!(l_fit <= literal_loss(&reg, &counts, &brute, tau) + 1e-9);
            // Planted: s = L^+ b / tau (twice the margin) has a larger loss.
            let doubled: Vec<f64> = fit.implied_reward.iter().map(|r| 2.0 * r).collect();
            let mut pi = vec![0.0; doubled.len()];
            reg.policy(&doubled, gamma, &mut pi);
            assert!(
                literal_loss(&reg, &counts, &pi, tau) > l_fit + 1e-3,
                "planted not caught"
            );
            // Off supp g: no mass; never compared within a context: the reference's logit.
            for x in 0..inst.contexts {
                for y in 0..ny {
                    let c = x * ny + y;
                    assert_eq!(fit.policy[c] > 0.0, reg.base[c].is_finite());
                }
            }
        }
    }

    /// Linear IPO: theta = A^+ q / 2 against Newton's method on the literal loss in theta
    /// (through the policy tables pi_theta ∝ g e^{gamma <theta, phi>}) with finite-difference
    /// derivatives, from theta = 0.
    #[test]
    fn linear_fit_equals_brute_force_minimisation_of_the_literal_loss() {
        let inst = random_instance(8, 4, 5);
        let reg = escort(&inst);
        let counts = sparse_counts(&inst, 8);
        let RewardModel::Linear(lin) = &inst.reward else {
            unreachable!()
        };
        let gamma = 1.5;
        let tau = 1.0 / gamma;
        let fit = fit(&reg, &counts, Some(lin), gamma);
        let loss = |theta: &[f64]| {
            let mut r = vec![0.0; inst.cells()];
            lin.table(theta, &mut r);
            let mut pi = vec![0.0; r.len()];
            reg.policy(&r, gamma, &mut pi);
            literal_loss(&reg, &counts, &pi, tau)
        };
        // The literal loss is quadratic in theta (h = gamma <theta, z>: the normalisers
        // cancel), so central differences of step 0.1 give its gradient and Hessian exactly
        // up to round-off, and Newton's method (two steps, the second a round-off polish)
        // from theta = 0 reaches the minimiser.
        let d = lin.dim;
        let mut theta = vec![0.0; d];
        for _ in 0..2 {
            let h = 0.1;
            let at = |du: &[(usize, f64)]| {
                let mut t = theta.clone();
                du.iter().for_each(|&(k, v)| t[k] += v);
                loss(&t)
            };
            let g = DVector::from_fn(d, |k, _| (at(&[(k, h)]) - at(&[(k, -h)])) / (2.0 * h));
            let hess = DMatrix::from_fn(d, d, |j, k| {
                (at(&[(j, h), (k, h)]) - at(&[(j, h), (k, -h)]) - at(&[(j, -h), (k, h)])
                    + at(&[(j, -h), (k, -h)]))
                    / (4.0 * h * h)
            });
            let step = hess
                .cholesky()
                .expect("the loss is strictly convex here")
                .solve(&g);
            theta.iter_mut().zip(step.iter()).for_each(|(t, s)| *t -= s);
        }
        let worst = theta
            .iter()
            .zip(&fit.theta)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        eprintln!(
            "linear IPO: max |theta_closed - theta_brute| = {worst:.2e}, theta {:?}",
            fit.theta
        );
        assert!(worst < 1e-8, "{worst}"); // measured 3.1e-16
        assert!(loss(&fit.theta) <= loss(&theta) + 1e-9);
    }

    /// The paper's two-action case as Bradley-Terry data: y1 preferred with probability p
    /// (rewards +-R), uniform references and mu. The fit at n comparisons is
    /// pi(y1) = sigma(gamma (2 p_hat - 1) / 2), p_hat the empirical win rate (exactly, by the
    /// closed form), and its limit sigma((2 p - 1)/(2 tau)) -> sigma(1/(2 tau)) as R grows
    /// (the paper's "y1 always preferred"). At R = 20, p = 1 - 4e-18 and every one of the
    /// 1e8 comparisons is won by y1 (probability > 1 - 1e-9): pi(y1) = sigma(1/(2 tau)) to
    /// round-off. At R = 0.5 the sampling error of p_hat over the N ~ n/2 informative
    /// comparisons is sqrt(p (1 - p) / N), so |pi_hat - pi_lim| <= 6 sd with
    /// sd = sigma'(.) gamma sqrt(p (1 - p) / N) (a 6-sigma bound: fails by chance with
    /// probability 2e-9).
    #[test]
    fn two_actions_in_the_large_n_limit() {
        for (big_r, exact) in [(20.0, true), (0.5, false)] {
            let inst = Instance {
                contexts: 1,
                responses: 2,
                rho: vec![1.0],
                references: vec![vec![0.5, 0.5]],
                reward: RewardModel::Table(vec![big_r, -big_r]),
            };
            let reg = Regularizer::new(Divergence::Rkl, &inst.references, &[1.0], 1, 2);
            let sampler = Sampler::new(&inst.rho, &[0.5, 0.5], &inst.true_reward(), 2);
            let mut counts = WinCounts::new(1, 2);
            let n = 100_000_000u64;
            sampler.extend_counts(&mut counts, n, &mut stream(3, "ipo-two", 0));
            let p = sigmoid(2.0 * big_r);
            let informative = (counts.wins[0][0] + counts.wins[0][1]) as f64;
            for tau in [0.1, 0.5, 1.0, 4.0] {
                let gamma = 1.0 / tau;
                let fit = fit(&reg, &counts, None, gamma);
                let limit = sigmoid((2.0 * p - 1.0) / (2.0 * tau));
                let p_hat = counts.wins[0][0] as f64 / informative;
                let exact_at_n = sigmoid((2.0 * p_hat - 1.0) / (2.0 * tau));
                assert!((fit.policy[0] - exact_at_n).abs() < 1e-14);
                if exact {
                    assert_eq!(counts.wins[0][1], 0);
                    assert!((fit.policy[0] - sigmoid(0.5 / tau)).abs() < 1e-15);
                } else {
                    let sd = limit * (1.0 - limit) * gamma * (p * (1.0 - p) / informative).sqrt();
                    assert!((fit.policy[0] - limit).abs() < 6.0 * sd, "tau {tau}");
                    // Not the paper's sigma(1/(2 tau)): p < 1 here.
                    assert!((fit.policy[0] - sigmoid(0.5 / tau)).abs() > 100.0 * sd);
                }
            }
        }
    }

    /// The population limit (`ipo_limit_reward`, the fit on expected counts) equals the
    /// closed form P(y > mu_S) - mean_S P on S = supp g ∩ supp mu (0 elsewhere), and the fit
    /// on 1e9 simulated comparisons approaches it: the error of the fitted differences is
    /// O(n^-1/2) (measured well under 1e-3 here; sd about 1e-4 at this n). A planted limit
    /// with the reward r* itself in place of the win rate is far from the fit.
    #[test]
    fn the_fit_converges_to_the_win_rate_limit() {
        let inst = random_instance(9, 3, 6);
        let reg = escort(&inst);
        let ny = inst.responses;
        let r_star = inst.true_reward();
        let mut mu = vec![0.0; inst.cells()];
        for x in 0..inst.contexts {
            let row = &mut mu[x * ny..(x + 1) * ny];
            for (y, m) in row.iter_mut().enumerate() {
                // mu drops response 1 of every context; positive elsewhere.
                *m = if y == 1 { 0.0 } else { 1.0 + y as f64 };
            }
            let t: f64 = row.iter().sum();
            row.iter_mut().for_each(|m| *m /= t);
        }
        let weights = [0.4, 0.6];
        let limit = crate::asymptotics::ipo_limit_reward(&inst, &weights, &mu, false).unwrap();
        for x in 0..inst.contexts {
            let s: Vec<usize> = (0..ny)
                .filter(|&y| reg.base[x * ny + y].is_finite() && mu[x * ny + y] > 0.0)
                .collect();
            let mass: f64 = s.iter().map(|&y| mu[x * ny + y]).sum();
            let win = |y: usize| {
                s.iter()
                    .map(|&b| {
                        mu[x * ny + b] / mass * sigmoid(r_star[x * ny + y] - r_star[x * ny + b])
                    })
                    .sum::<f64>()
            };
            let mean = s.iter().map(|&y| win(y)).sum::<f64>() / s.len() as f64;
            for y in 0..ny {
                let want = if s.contains(&y) { win(y) - mean } else { 0.0 };
                assert!((limit[x * ny + y] - want).abs() < 1e-13, "x {x} y {y}");
            }
        }
        let sampler = Sampler::new(&inst.rho, &mu, &r_star, ny);
        let mut counts = WinCounts::new(inst.contexts, ny);
        sampler.extend_counts(&mut counts, 1_000_000_000, &mut stream(9, "ipo-limit", 0));
        let fit = fit(&reg, &counts, None, 1.0);
        let err = fit
            .implied_reward
            .iter()
            .zip(&limit)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        eprintln!("max |r_fit - r_limit| at n = 1e9: {err:.2e}");
        assert!(err < 1e-3, "{err}");
        let planted_err = (0..inst.contexts)
            .flat_map(|x| (0..ny).map(move |y| (x, y)))
            .filter(|&(x, y)| reg.base[x * ny + y].is_finite() && mu[x * ny + y] > 0.0)
            .map(|(x, y)| {
                let c = x * ny + y;
                let s: Vec<usize> = (0..ny)
                    .filter(|&b| reg.base[x * ny + b].is_finite() && mu[x * ny + b] > 0.0)
                    .collect();
                let mean = s.iter().map(|&b| r_star[x * ny + b]).sum::<f64>() / s.len() as f64;
                (fit.implied_reward[c] - (r_star[c] - mean)).abs()
            })
            .fold(0.0, f64::max);
        assert!(planted_err > 100.0 * err, "{planted_err} vs {err}");
    }
}
