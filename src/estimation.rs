//! Maximum-likelihood reward estimation under Bradley-Terry (THEORY §2), from win counts.
//! - finite class: the candidate with the largest log-likelihood (ties: lowest index);
//! - linear class [ours]: the constrained MLE  min L(theta) s.t. ||theta|| <= B,
//!   L(theta) = -(1/N) sum_{x,a<b} [W(a>b) ln sigma(theta.z) + W(b>a) ln sigma(-theta.z)],
//!   z = phi(x,a) - phi(x,b), N = number of informative comparisons. Newton's method with
//!   a backtracking line search ([`crate::newton`]) for the interior case; when the
//!   unconstrained minimiser lies outside the ball or does not exist (separable data), the
//!   boundary solution is
//!   theta(lambda) = argmin L + lambda/2 ||theta||^2 with ||theta(lambda)|| = B, lambda found
//!   by a safeguarded Newton iteration on 1/||theta(lambda)|| - 1/B (Moré-Sorensen). So
//!   separable data cannot send theta to infinity, and the result satisfies the KKT
//!   conditions grad L + lambda theta = 0, lambda (||theta|| - B) = 0 to the tolerance.

use crate::instance::{FiniteReward, LinearReward};
use crate::newton::{self, MAX_ITERATIONS, Objective, Settings, Termination};
use crate::numerics::{ln_sigmoid, sigmoid};
use crate::preference::{WinCounts, pairs};
use nalgebra::{DMatrix, DVector};
use serde::Serialize;

/// Default tolerance on the max-norm of the (normalised) KKT gradient grad L + lambda theta.
pub const DEFAULT_GRADIENT_TOLERANCE: f64 = 1e-10;
/// Relative tolerance on ||theta|| = B for boundary solutions.
const BOUNDARY_TOLERANCE: f64 = 1e-12;
const MAX_LAMBDA_STEPS: u32 = 200;
/// With lambda = 0, a Newton iterate beyond this multiple of B means separable data (no
/// finite minimiser): the interior attempt stops and the boundary solution takes over.
const RUNAWAY_FACTOR: f64 = 1e3;

/// Finite class: index of argmax_j of the log-likelihood of candidate j (lowest index on ties).
pub fn finite_mle(class: &FiniteReward, counts: &WinCounts) -> usize {
    let mut best = (f64::NEG_INFINITY, 0);
    for (j, c) in class.candidates.iter().enumerate() {
        let ll = counts.log_likelihood(c);
        if ll > best.0 {
            best = (ll, j);
        }
    }
    best.1
}

/// The outcome of a linear-class fit.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LinearFit {
    pub theta: Vec<f64>,
    /// The multiplier of the norm constraint (0 for an interior solution).
    pub lambda: f64,
    /// Newton iterations, summed over the inner solves.
    pub iterations: u32,
    /// max-norm of grad L(theta) + lambda theta at the returned theta.
    pub kkt_residual: f64,
    pub on_boundary: bool,
}

/// Feature differences of the linear class, precomputed once per instance.
#[derive(Clone, Debug)]
pub struct LinearFitter {
    dim: usize,
    bound: f64,
    tolerance: f64,
    /// z[(x * pairs + p) * dim ..] = phi(x,a) - phi(x,b) for the p-th pair (a, b).
    diffs: Vec<f64>,
    max_diff_norm: f64,
}

/// Reusable buffers of one fit (one per replication; no allocation per sample).
#[derive(Clone, Debug, Default)]
pub struct FitWorkspace {
    active: Active,
    grad: Vec<f64>,
    hess: Vec<f64>,
    newton: newton::Workspace,
}

/// The informative comparisons of one dataset: z_i and the counts W_i, N_i divided by N.
#[derive(Clone, Debug, Default)]
struct Active {
    z: Vec<f64>,
    wins: Vec<f64>,
    total: Vec<f64>,
}

/// L(theta) + lambda/2 ||theta||^2 for one lambda: the objective of the interior Newton solves.
struct Penalised<'a> {
    fitter: &'a LinearFitter,
    data: &'a Active,
    lambda: f64,
}

impl Objective for Penalised<'_> {
    fn dim(&self) -> usize {
        self.fitter.dim
    }

    fn value(&mut self, theta: &[f64]) -> f64 {
        self.fitter.loss(self.data, theta, self.lambda)
    }

    /// grad L + lambda theta and H + lambda I.
    fn gradient_hessian(&mut self, theta: &[f64], grad: &mut [f64], hess: &mut [f64]) {
        let (d, lambda) = (self.fitter.dim, self.lambda);
        self.fitter.gradient_hessian(self.data, theta, grad, hess);
        grad.iter_mut()
            .zip(theta)
            .for_each(|(gv, t)| *gv += lambda * t);
        for k in 0..d {
            hess[k * d + k] += lambda;
        }
    }

    /// Separable data at lambda = 0: theta runs off; stop early, the boundary handles it.
    fn proceed(&self, theta: &[f64]) -> bool {
        !(self.lambda == 0.0
            && theta.iter().map(|v| v * v).sum::<f64>().sqrt() > RUNAWAY_FACTOR * self.fitter.bound)
    }
}

impl LinearFitter {
    /// Precomputes the pair differences for the instance's features.
    pub fn new(class: &LinearReward, contexts: usize, responses: usize, tolerance: f64) -> Self {
        let d = class.dim;
        let pr = pairs(responses);
        let mut diffs = Vec::with_capacity(contexts * pr.len() * d);
        let mut max_diff_norm: f64 = 0.0;
        for x in 0..contexts {
            for &(a, b) in &pr {
                let fa = &class.features[(x * responses + a) * d..(x * responses + a + 1) * d];
                let fb = &class.features[(x * responses + b) * d..(x * responses + b + 1) * d];
                let mut n2 = 0.0;
                for k in 0..d {
                    diffs.push(fa[k] - fb[k]);
                    n2 += (fa[k] - fb[k]).powi(2);
                }
                max_diff_norm = max_diff_norm.max(n2.sqrt());
            }
        }
        LinearFitter {
            dim: d,
            bound: class.bound,
            tolerance,
            diffs,
            max_diff_norm,
        }
    }

    /// The constrained MLE from `counts`, warm-started at `start` (e.g. the fit at the
    /// previous n of a nested grid; any point is a valid start).
    pub fn fit(&self, counts: &WinCounts, start: &[f64], ws: &mut FitWorkspace) -> LinearFit {
        let d = self.dim;
        let data = &mut ws.active;
        data.z.clear();
        data.wins.clear();
        data.total.clear();
        for (i, w) in counts.wins.iter().enumerate() {
            let n = w[0] + w[1];
            if n > 0 {
                data.z.extend_from_slice(&self.diffs[i * d..(i + 1) * d]);
                data.wins.push(w[0] as f64);
                data.total.push(n as f64);
            }
        }
        let informative: f64 = data.total.iter().sum();
        if informative == 0.0 {
            // No comparison carries information: every theta is an MLE; take the minimum-norm one.
            return LinearFit {
                theta: vec![0.0; d],
                lambda: 0.0,
                iterations: 0,
                kkt_residual: 0.0,
                on_boundary: false,
            };
        }
        data.wins.iter_mut().for_each(|v| *v /= informative);
        data.total.iter_mut().for_each(|v| *v /= informative);
        ws.grad.resize(d, 0.0);
        ws.hess.resize(d * d, 0.0);

        let mut theta = start.to_vec();
        let norm = |t: &[f64]| t.iter().map(|v| v * v).sum::<f64>().sqrt();
        if norm(&theta) > self.bound {
            let s = self.bound / norm(&theta);
            theta.iter_mut().for_each(|v| *v *= s);
        }
        let mut iterations = 0;
        // Interior attempt (lambda = 0).
        if let Some((it, residual)) = self.newton(ws, &mut theta, 0.0) {
            iterations += it;
            if norm(&theta) <= self.bound {
                return LinearFit {
                    theta,
                    lambda: 0.0,
                    iterations,
                    kkt_residual: residual,
                    on_boundary: false,
                };
            }
        } else {
            iterations += MAX_ITERATIONS;
        }
        // Boundary: find lambda > 0 with ||theta(lambda)|| = B.
        let mut lo = 1e-14;
        let mut hi = 2.0 * self.max_diff_norm / self.bound * (1.0 + 1e-9);
        let mut theta_lo = vec![0.0; d];
        iterations += self
            .newton(ws, &mut theta_lo, lo)
            .map_or(MAX_ITERATIONS, |r| r.0);
        if norm(&theta_lo) <= self.bound {
            // The (ridge-limit, minimum-norm) MLE lies inside: the data leave a flat direction.
            let kkt_residual = self.kkt(ws, &theta_lo, 0.0);
            return LinearFit {
                theta: theta_lo,
                lambda: 0.0,
                iterations,
                kkt_residual,
                on_boundary: false,
            };
        }
        theta.copy_from_slice(&theta_lo);
        let mut lambda = (lo * hi).sqrt();
        for _ in 0..MAX_LAMBDA_STEPS {
            iterations += self
                .newton(ws, &mut theta, lambda)
                .map_or(MAX_ITERATIONS, |r| r.0);
            let r = norm(&theta);
            if (r - self.bound).abs() <= BOUNDARY_TOLERANCE * self.bound {
                break;
            }
            if r > self.bound {
                lo = lambda;
            } else {
                hi = lambda;
            }
            // phi(lambda) = 1/r - 1/B, phi'(lambda) = theta^T (H + lambda I)^{-1} theta / r^3.
            self.gradient_hessian(&ws.active, &theta, &mut ws.grad, &mut ws.hess);
            let mut m = DMatrix::from_column_slice(d, d, &ws.hess);
            for k in 0..d {
                m[(k, k)] += lambda;
            }
            let next = match m.cholesky() {
                Some(ch) => {
                    let v = ch.solve(&DVector::from_column_slice(&theta));
                    let q: f64 = v.iter().zip(&theta).map(|(a, b)| a * b).sum();
                    lambda - (1.0 / r - 1.0 / self.bound) * r.powi(3) / q
                }
                None => f64::NAN,
            };
            lambda = if next > lo && next < hi {
                next
            } else {
                (lo * hi).sqrt()
            };
            if hi - lo <= 1e-15 * hi {
                break;
            }
        }
        let kkt_residual = self.kkt(ws, &theta, lambda);
        LinearFit {
            theta,
            lambda,
            iterations,
            kkt_residual,
            on_boundary: true,
        }
    }

    /// Loss L(theta) + lambda/2 ||theta||^2 on the active pairs, using
    /// W ln sigma(t) + (N - W) ln sigma(-t) = N ln sigma(t) - (N - W) t (one logarithm per pair).
    fn loss(&self, data: &Active, theta: &[f64], lambda: f64) -> f64 {
        let d = self.dim;
        let mut l = 0.0;
        for ((z, &w), &n) in data.z.chunks_exact(d).zip(&data.wins).zip(&data.total) {
            let t: f64 = z.iter().zip(theta).map(|(a, b)| a * b).sum();
            l -= n * ln_sigmoid(t) - (n - w) * t;
        }
        l + 0.5 * lambda * theta.iter().map(|v| v * v).sum::<f64>()
    }

    /// Gradient and Hessian of L: H = sum N sigma(t)(1 - sigma(t)) z z^T (column-major).
    fn gradient_hessian(&self, data: &Active, theta: &[f64], grad: &mut [f64], hess: &mut [f64]) {
        let d = self.dim;
        grad.iter_mut().for_each(|g| *g = 0.0);
        hess.iter_mut().for_each(|h| *h = 0.0);
        for ((z, &w), &n) in data.z.chunks_exact(d).zip(&data.wins).zip(&data.total) {
            let t: f64 = z.iter().zip(theta).map(|(a, b)| a * b).sum();
            let s = sigmoid(t);
            let c = n * s - w;
            let h = n * s * (1.0 - s);
            for (j, (g, row)) in grad.iter_mut().zip(hess.chunks_exact_mut(d)).enumerate() {
                *g += c * z[j];
                let hz = h * z[j];
                for (hk, zk) in row[j..].iter_mut().zip(&z[j..]) {
                    *hk += hz * zk;
                }
            }
        }
        for j in 0..d {
            for k in 0..j {
                hess[j * d + k] = hess[k * d + j];
            }
        }
    }

    fn kkt(&self, ws: &mut FitWorkspace, theta: &[f64], lambda: f64) -> f64 {
        self.gradient_hessian(&ws.active, theta, &mut ws.grad, &mut ws.hess);
        ws.grad
            .iter()
            .zip(theta)
            .map(|(g, t)| (g + lambda * t).abs())
            .fold(0.0, f64::max)
    }

    /// Damped Newton on L + lambda/2 ||theta||^2 from `theta` ([`newton::minimise`]: gradient
    /// test first, line search accepting rounding-level changes); Some((iterations, residual))
    /// on convergence (KKT gradient max-norm `residual` <= tolerance, measured at the returned
    /// theta) and when the line search finds no decrease (no decrease representable in
    /// floating point: at the minimum to rounding); None if the Hessian is singular (lambda = 0
    /// with a flat direction), theta runs off (separable data at lambda = 0), a non-finite
    /// quantity appears, or the iteration cap is hit.
    fn newton(&self, ws: &mut FitWorkspace, theta: &mut [f64], lambda: f64) -> Option<(u32, f64)> {
        let mut objective = Penalised {
            fitter: self,
            data: &ws.active,
            lambda,
        };
        let settings = Settings {
            accept_rounding_level: true,
            ..Settings::new(self.tolerance)
        };
        let outcome = newton::minimise(&mut objective, theta, &settings, &mut ws.newton);
        match outcome.reason {
            Termination::Converged | Termination::LineSearchFailed => {
                Some((outcome.iterations, outcome.criterion))
            }
            Termination::MaxIterations
            | Termination::SingularHessian
            | Termination::Stopped
            | Termination::NonFinite => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instance::{GeneratorParams, GeneratorReward, RewardModel, generate};
    use crate::preference::{Sampler, SamplerKind};
    use crate::streams::stream;

    fn linear_instance(bound: f64) -> (crate::instance::Instance, LinearReward) {
        let p = GeneratorParams {
            contexts: 6,
            responses: 5,
            references: 1,
            concentration: 2.0,
            zero_fraction: 0.0,
            context_concentration: None,
            reward: GeneratorReward::Linear {
                dim: 3,
                bound,
                theta_norm: 1.0,
            },
            family: Default::default(),
        };
        let inst = generate(&p, &mut stream(11, "inst", 0));
        let RewardModel::Linear(l) = inst.reward.clone() else {
            unreachable!()
        };
        (inst, l)
    }

    #[test]
    fn interior_fit_satisfies_first_order_conditions_and_approaches_theta_star() {
        let (inst, lin) = linear_instance(1.0);
        let fitter = LinearFitter::new(
            &lin,
            inst.contexts,
            inst.responses,
            DEFAULT_GRADIENT_TOLERANCE,
        );
        let sampler = Sampler::new(
            &inst.rho,
            &inst.references[0],
            &inst.true_reward(),
            inst.responses,
        );
        let mut counts = WinCounts::new(inst.contexts, inst.responses);
        let mut rng = stream(5, "data", 0);
        let mut ws = FitWorkspace::default();
        let mut theta = vec![0.0; 3];
        let mut errors = vec![];
        for n in [1_000u64, 100_000, 10_000_000] {
            let extra = n - counts.n;
            sampler.extend(SamplerKind::Counts, &mut counts, extra, &mut rng);
            let fit = fitter.fit(&counts, &theta, &mut ws);
            assert!(fit.kkt_residual <= DEFAULT_GRADIENT_TOLERANCE, "{fit:?}");
            theta = fit.theta.clone();
            let err = theta
                .iter()
                .zip(&lin.theta_star)
                .map(|(a, b)| (a - b).powi(2))
                .sum::<f64>()
                .sqrt();
            errors.push(err);
        }
        // The MLE error is O(n^-1/2): 100x more data must shrink it well below the earlier one
        // (expected factor 10; we require at least 3 to stay far from chance failures).
        assert!(
            errors[1] < errors[0] / 3.0 && errors[2] < errors[1] / 3.0,
            "{errors:?}"
        );
        assert!(errors[2] < 0.01, "{errors:?}");
    }

    #[test]
    fn separable_data_stays_on_the_ball() {
        let (inst, lin) = linear_instance(1.0);
        let fitter = LinearFitter::new(
            &lin,
            inst.contexts,
            inst.responses,
            DEFAULT_GRADIENT_TOLERANCE,
        );
        // Every comparison won by the response with the larger true reward: perfectly separable.
        let r = inst.true_reward();
        let mut counts = WinCounts::new(inst.contexts, inst.responses);
        let pr = pairs(inst.responses);
        for x in 0..inst.contexts {
            for (p, &(a, b)) in pr.iter().enumerate() {
                let a_better = r[x * inst.responses + a] > r[x * inst.responses + b];
                counts.wins[x * pr.len() + p] = if a_better { [7, 0] } else { [0, 7] };
                counts.n += 7;
            }
        }
        let fit = fitter.fit(&counts, &[0.0; 3], &mut FitWorkspace::default());
        let norm = fit.theta.iter().map(|v| v * v).sum::<f64>().sqrt();
        assert!(fit.on_boundary && fit.lambda > 0.0);
        assert!((norm - 1.0).abs() <= 1e-12, "{norm}");
        assert!(fit.kkt_residual <= DEFAULT_GRADIENT_TOLERANCE, "{fit:?}");
        // Separable in the direction of theta*: the boundary solution points roughly along it.
        let cos: f64 = fit
            .theta
            .iter()
            .zip(&lin.theta_star)
            .map(|(a, b)| a * b)
            .sum::<f64>()
            / norm;
        assert!(cos > 0.9, "{cos}");
    }

    #[test]
    fn finite_mle_picks_the_truth_with_plenty_of_data() {
        let p = GeneratorParams {
            contexts: 3,
            responses: 4,
            references: 1,
            concentration: 1.0,
            zero_fraction: 0.0,
            context_concentration: None,
            reward: GeneratorReward::Finite {
                candidates: 6,
                r_max: 1.0,
                spread: 1.0,
            },
            family: Default::default(),
        };
        let inst = generate(&p, &mut stream(3, "inst", 0));
        let RewardModel::Finite(f) = &inst.reward else {
            unreachable!()
        };
        let sampler = Sampler::new(
            &inst.rho,
            &inst.references[0],
            &inst.true_reward(),
            inst.responses,
        );
        let mut counts = WinCounts::new(inst.contexts, inst.responses);
        sampler.extend(
            SamplerKind::Counts,
            &mut counts,
            1_000_000,
            &mut stream(3, "data", 0),
        );
        assert_eq!(finite_mle(f, &counts), f.truth);
    }
}
