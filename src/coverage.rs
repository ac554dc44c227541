//! Coverage constants of THEORY §5 [ours]:
//!
//!   C(nu; mu) = max over r in R, r != r*, of
//!       E_{x, y,y' ~ nu} (Delta_r(x,y) - Delta_r(x,y'))^2 / E_{x, y,y' ~ mu} (same),
//!
//! Delta_r = r - r*, nu = the escort g (RKL) or the mixture m (FKL), mu = the sampling policy.
//! Since E_{y,y' ~ p} (D(y) - D(y'))^2 = 2 Var_p(D), both sides are variances:
//! - linear class: Delta = <v, phi>, so the ratio is v^T S_nu v / v^T S_mu v with
//!   S_p = 2 sum_x rho(x) Cov_{p(.|x)}(phi), and C is the largest generalised eigenvalue;
//! - finite class: the maximum of the ratio over the candidates j != truth.
//! C is `None` (infinite) when mu leaves a direction unexplored that nu weighs.
//!
//! With a fixed design (docs/theory.md §2) no mu draws the comparisons: the denominator is
//! the same expectation over the design's limit frequencies q of (x, a, b),
//! E_q (Delta_r(x,a) - Delta_r(x,b))^2 ([`design_coverage`]).

use crate::instance::{Instance, RewardModel};
use nalgebra::{DMatrix, SymmetricEigen};

/// Relative threshold below which an eigenvalue of S_mu counts as zero.
const RANK_TOLERANCE: f64 = 1e-12;

/// S_p = 2 sum_x rho(x) Cov_{p(.|x)}(phi) for the linear class (d x d).
fn pair_covariance(inst: &Instance, dim: usize, features: &[f64], p: &[f64]) -> DMatrix<f64> {
    let ny = inst.responses;
    let mut s = DMatrix::<f64>::zeros(dim, dim);
    let mut mean = vec![0.0; dim];
    for x in 0..inst.contexts {
        let px = &p[x * ny..(x + 1) * ny];
        mean.iter_mut().for_each(|m| *m = 0.0);
        for (y, &w) in px.iter().enumerate() {
            let phi = &features[(x * ny + y) * dim..(x * ny + y + 1) * dim];
            for k in 0..dim {
                mean[k] += w * phi[k];
            }
        }
        for (y, &w) in px.iter().enumerate() {
            if w == 0.0 {
                continue;
            }
            let phi = &features[(x * ny + y) * dim..(x * ny + y + 1) * dim];
            for j in 0..dim {
                for k in 0..dim {
                    s[(j, k)] += 2.0 * inst.rho[x] * w * (phi[j] - mean[j]) * (phi[k] - mean[k]);
                }
            }
        }
    }
    s
}

/// 2 sum_x rho(x) Var_{p(.|x)}(d) for a table d over X x Y.
fn pair_variance(inst: &Instance, d: &[f64], p: &[f64]) -> f64 {
    let ny = inst.responses;
    (0..inst.contexts)
        .map(|x| {
            let (px, dx) = (&p[x * ny..(x + 1) * ny], &d[x * ny..(x + 1) * ny]);
            let m: f64 = px.iter().zip(dx).map(|(a, b)| a * b).sum();
            2.0 * inst.rho[x]
                * px.iter()
                    .zip(dx)
                    .map(|(a, b)| a * (b - m).powi(2))
                    .sum::<f64>()
        })
        .sum()
}

/// How the comparisons of the denominator are distributed.
#[derive(Clone, Copy)]
enum Comparisons<'a> {
    /// y, y' ~ mu(.|x) independently, x ~ rho (flat X x Y).
    Policy(&'a [f64]),
    /// (context, a, b, frequency) of a fixed design.
    Design(&'a [(usize, usize, usize, f64)]),
}

/// sum_i q_i z_i z_i^T, z_i = phi(x_i, a_i) - phi(x_i, b_i), over a design's frequencies.
fn design_covariance(
    inst: &Instance,
    dim: usize,
    features: &[f64],
    pairs: &[(usize, usize, usize, f64)],
) -> DMatrix<f64> {
    let ny = inst.responses;
    let phi = |x: usize, y: usize| &features[(x * ny + y) * dim..(x * ny + y + 1) * dim];
    let mut s = DMatrix::<f64>::zeros(dim, dim);
    for &(x, a, b, q) in pairs {
        let z: Vec<f64> = phi(x, a)
            .iter()
            .zip(phi(x, b))
            .map(|(u, v)| u - v)
            .collect();
        for j in 0..dim {
            for k in 0..dim {
                s[(j, k)] += q * z[j] * z[k];
            }
        }
    }
    s
}

/// sum_i q_i (d(x_i, a_i) - d(x_i, b_i))^2 over a design's frequencies.
fn design_variance(inst: &Instance, d: &[f64], pairs: &[(usize, usize, usize, f64)]) -> f64 {
    let ny = inst.responses;
    pairs
        .iter()
        .map(|&(x, a, b, q)| q * (d[x * ny + a] - d[x * ny + b]).powi(2))
        .sum()
}

/// C(nu; mu) for the instance's reward class (flat X x Y tables nu and mu); `None` = infinite.
pub fn coverage(inst: &Instance, nu: &[f64], mu: &[f64]) -> Option<f64> {
    coverage_against(inst, nu, Comparisons::Policy(mu))
}

/// C(nu; q) of a fixed design with limit frequencies `pairs` = (context, a, b, q), the
/// denominator E_q (Delta(x,a) - Delta(x,b))^2 (`fixed_design::Schedule::limit_frequencies`);
/// `None` = infinite.
pub fn design_coverage(
    inst: &Instance,
    nu: &[f64],
    pairs: &[(usize, usize, usize, f64)],
) -> Option<f64> {
    coverage_against(inst, nu, Comparisons::Design(pairs))
}

fn coverage_against(inst: &Instance, nu: &[f64], den: Comparisons) -> Option<f64> {
    match &inst.reward {
        RewardModel::Linear(l) => {
            let s_nu = pair_covariance(inst, l.dim, &l.features, nu);
            let s_mu = match den {
                Comparisons::Policy(mu) => pair_covariance(inst, l.dim, &l.features, mu),
                Comparisons::Design(pairs) => design_covariance(inst, l.dim, &l.features, pairs),
            };
            // Whiten by S_mu's eigenbasis: C = max eig of D^-1/2 U^T S_nu U D^-1/2 on the range of
            // S_mu, infinite if S_nu has weight on S_mu's null space.
            let eig = SymmetricEigen::new(s_mu);
            let top = eig.eigenvalues.iter().cloned().fold(0.0, f64::max);
            let rotated = eig.eigenvectors.transpose() * &s_nu * &eig.eigenvectors;
            let keep: Vec<usize> = (0..l.dim)
                .filter(|&i| eig.eigenvalues[i] > RANK_TOLERANCE * top.max(1e-300))
                .collect();
            let nu_scale = s_nu.diagonal().iter().cloned().fold(0.0, f64::max);
            for i in 0..l.dim {
                if !keep.contains(&i) && rotated[(i, i)] > RANK_TOLERANCE * nu_scale.max(1e-300) {
                    return None;
                }
            }
            if keep.is_empty() {
                return Some(0.0);
            }
            let w = DMatrix::from_fn(keep.len(), keep.len(), |a, b| {
                rotated[(keep[a], keep[b])]
                    / (eig.eigenvalues[keep[a]] * eig.eigenvalues[keep[b]]).sqrt()
            });
            Some(
                SymmetricEigen::new(w)
                    .eigenvalues
                    .iter()
                    .cloned()
                    .fold(0.0, f64::max),
            )
        }
        RewardModel::Finite(f) => {
            let truth = &f.candidates[f.truth];
            let mut best: f64 = 0.0;
            let mut diff = vec![0.0; truth.len()];
            for (j, c) in f.candidates.iter().enumerate() {
                if j == f.truth {
                    continue;
                }
                diff.iter_mut()
                    .zip(c.iter().zip(truth))
                    .for_each(|(d, (a, b))| *d = a - b);
                let (num, den) = (
                    pair_variance(inst, &diff, nu),
                    match den {
                        Comparisons::Policy(mu) => pair_variance(inst, &diff, mu),
                        Comparisons::Design(pairs) => design_variance(inst, &diff, pairs),
                    },
                );
                if den > 0.0 {
                    best = best.max(num / den);
                } else if num > 0.0 {
                    return None;
                }
            }
            Some(best)
        }
        RewardModel::Table(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::instance::{GeneratorParams, GeneratorReward, generate};
    use crate::streams::stream;

    /// A linear-class (d = 3) and a finite-class instance with two references, drawn from
    /// the stream (seed, label, 0).
    fn both_classes(
        contexts: usize,
        responses: usize,
        candidates: usize,
        seed: u64,
        label: &str,
    ) -> Vec<Instance> {
        [
            GeneratorReward::Linear {
                dim: 3,
                bound: 1.0,
                theta_norm: 0.8,
            },
            GeneratorReward::Finite {
                candidates,
                r_max: 1.0,
                spread: 0.5,
            },
        ]
        .into_iter()
        .map(|reward| {
            let p = GeneratorParams {
                contexts,
                responses,
                references: 2,
                concentration: 1.0,
                zero_fraction: 0.0,
                context_concentration: None,
                reward,
                family: Default::default(),
            };
            generate(&p, &mut stream(seed, label, 0))
        })
        .collect()
    }

    #[test]
    fn coverage_of_mu_against_itself_is_one_and_the_eigenvalue_is_a_true_maximum() {
        for inst in both_classes(4, 5, 6, 9, "cov") {
            let (a, b) = (&inst.references[0], &inst.references[1]);
            let c = coverage(&inst, a, a).unwrap();
            assert!((c - 1.0).abs() < 1e-10, "{c}");
            let c = coverage(&inst, a, b).unwrap();
            assert!(c > 0.0);
            if let RewardModel::Linear(l) = &inst.reward {
                // No direction beats the generalised eigenvalue; some come close.
                let (sa, sb) = (
                    pair_covariance(&inst, 3, &l.features, a),
                    pair_covariance(&inst, 3, &l.features, b),
                );
                let mut rng = stream(1, "dirs", 0);
                let mut best: f64 = 0.0;
                for _ in 0..20000 {
                    use rand::RngExt;
                    let v = nalgebra::DVector::from_fn(3, |_, _| rng.random::<f64>() - 0.5);
                    let ratio =
                        (v.transpose() * &sa * &v)[(0, 0)] / (v.transpose() * &sb * &v)[(0, 0)];
                    assert!(ratio <= c * (1.0 + 1e-9), "{ratio} > {c}");
                    best = best.max(ratio);
                }
                assert!(best > 0.9 * c, "{best} vs {c}");
            }
        }
    }

    /// A design whose frequencies are mu's pair law (2 rho(x) mu(a|x) mu(b|x) on each pair
    /// a < b; ties carry no information) has the coverage of mu itself, for both classes, to
    /// rounding; a linear-class design that never compares along a direction nu weighs has C
    /// infinite.
    #[test]
    fn a_design_with_mus_pair_law_has_mus_coverage() {
        for inst in both_classes(3, 4, 5, 4, "cov-design") {
            let (nu, mu, rho) = (&inst.references[0], &inst.references[1], &inst.rho);
            let pairs: Vec<(usize, usize, usize, f64)> = (0..3)
                .flat_map(|x| {
                    crate::preference::pairs(4)
                        .into_iter()
                        .map(move |(a, b)| (x, a, b, 2.0 * rho[x] * mu[x * 4 + a] * mu[x * 4 + b]))
                })
                .collect();
            let (c, d) = (
                coverage(&inst, nu, mu).unwrap(),
                design_coverage(&inst, nu, &pairs).unwrap(),
            );
            assert!((c - d).abs() < 1e-10 * c.max(1.0), "{c} vs {d}");
            // Linear class: only pair (0, 1) at context 0 explores one direction of three.
            if let RewardModel::Linear(_) = inst.reward {
                assert_eq!(design_coverage(&inst, nu, &[(0, 0, 1, 1.0)]), None);
            }
        }
    }
}
