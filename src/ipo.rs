//! IPO against DPO on a fixed dataset of one context (Azar et al. 2023, arXiv 2310.12036,
//! §4.2, §5.3-5.4; docs/theory.md §9.5-9.7): tabular IPO as closed-form least squares in the
//! log-ratios, its generic counterpart (gradient descent), and the tabular DPO loss with no
//! ridge, which may have no finite minimiser.
//!
//! A policy of the tabular class is written by its log-ratio s(y) = ln pi(y) - ln pi_ref(y)
//! (up to a constant): pi = pi_ref e^s / Z. pi_ref is given (uniform, or the multi-reference
//! escort of T5.1). Every response of the dataset must have pi_ref > 0.

use crate::numerics::{ln_sigmoid, log_sum_exp};
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
    let mut lap = DMatrix::zeros(ny, ny);
    let mut b = DVector::zeros(ny);
    for &(w, l) in data {
        lap[(w, w)] += 1.0;
        lap[(l, l)] += 1.0;
        lap[(w, l)] -= 1.0;
        lap[(l, w)] -= 1.0;
        b[w] += 1.0;
        b[l] -= 1.0;
    }
    (lap, b)
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
    let eps = 1e-12 * lap.iter().fold(1.0f64, |m, v| m.max(v.abs()));
    let s = lap
        .svd(true, true)
        .solve(&(b / (2.0 * tau)), eps)
        .expect("the SVD has both factors");
    s.iter().copied().collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numerics::sigmoid;

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
