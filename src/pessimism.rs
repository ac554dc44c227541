//! Pessimism against the greedy MLE policy (Zhu, Jordan, Jiao 2023, arXiv 2301.11270, §3:
//! Theorem 3.9 and the construction in its proof; docs/theory.md §9.9-9.12), computed exactly.
//!
//! The instance [paper, as recovered; docs/theory.md §9.9]: one state, four actions with
//! features in R^3, phi(a1) = (1, 1, 0), phi(a2) = (1, 0, 0), phi(a3) = (0, 0, 0),
//! phi(a4) = (0, 1, 0), and theta* = (-1, 0.1, 0.9), so r* = (-0.9, -1, 0, 0.1) and a4 is
//! optimal. The fixed design: n - 1 comparisons of (a1, a2), one of (a2, a3)
//! ([`crate::fixed_design`]), outcomes Bradley-Terry under r*.
//!
//! Estimators on an outcome:
//! - the MLE over the paper's Theta_B = {theta : 1^T theta = 0, ||theta||_2 <= B}
//!   ([`constrained_mle`], through the linear-class fitter of [`crate::estimation`]) and its
//!   greedy policy, the argmax of the estimated reward (the limit gamma -> infinity of the
//!   RKL policy pi_ref e^{gamma r_hat} / Z, uniform over ties);
//! - the pessimistic MLE: the action maximising the lower confidence bound
//!   min_{theta in C} theta^T (phi(a) - v) over the confidence set
//!   C = {theta : 1^T theta = 0, ||theta - theta_hat||_Sigma <= f(n)} ([`lower_bound`]), v =
//!   phi(reference), Sigma the design's covariance of feature differences.
//!
//! Everything is computed in the coordinates z of the plane 1^T theta = 0: theta = H z with
//! H an orthonormal basis of it ([`helmert_basis`]), so ||theta|| = ||z||.

use crate::estimation::{FitWorkspace, LinearFitter};
use crate::fixed_design::{self, Comparison, FixedDesign};
use crate::instance::LinearReward;
use nalgebra::{DMatrix, DVector};
use serde::{Deserialize, Serialize};

/// phi(a1..a4) of the paper's instance.
pub const FEATURES: [[f64; 3]; 4] = [
    [1.0, 1.0, 0.0],
    [1.0, 0.0, 0.0],
    [0.0, 0.0, 0.0],
    [0.0, 1.0, 0.0],
];
/// theta* of the paper's instance.
pub const THETA_STAR: [f64; 3] = [-1.0, 0.1, 0.9];

/// An action of the instance, by the paper's name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    A1,
    A2,
    A3,
    A4,
}

impl Action {
    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        ["a1", "a2", "a3", "a4"][self.index()]
    }
}

/// The radius f(n) of the confidence set. [ours: which rule and its constants; the rule
/// `paper` is the paper's formula with lambda = 0.]
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case", deny_unknown_fields)]
pub enum Radius {
    /// f(n) = C sqrt((d + ln(1/delta)) / (gamma^2 n)), gamma = 1/(2 + e^{-LB} + e^{LB}),
    /// L = max_a ||phi(a)||_2 [paper, the MLE confidence bound (Lemma 3.1) with lambda = 0; C and delta ours].
    Paper { constant: f64, delta: f64 },
    /// f(n) = c / sqrt(n) [ours].
    RootN { constant: f64 },
}

impl Radius {
    /// The rule in words, for captions and messages.
    pub fn describe(self) -> String {
        use crate::numerics::compact;
        match self {
            Radius::Paper { constant, delta } => format!(
                "the paper's f(n) = C sqrt((d + ln(1/delta)) / (gamma^2 n)), C = {}, delta = {}",
                compact(constant),
                compact(delta)
            ),
            Radius::RootN { constant } => format!("f(n) = {} / sqrt(n)", compact(constant)),
        }
    }
}

impl Default for Radius {
    fn default() -> Self {
        Radius::Paper {
            constant: 1.0,
            delta: 0.1,
        }
    }
}

/// The options of a pessimism claim, recorded in the claim (`pessimism` table).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PessimismOptions {
    /// B of Theta_B [ours: the paper needs ||theta*|| = 1.349 <= B].
    #[serde(default = "default_bound")]
    pub bound: f64,
    #[serde(default)]
    pub radius: Radius,
    /// The action whose features are the reference vector v [ours: a3, phi = 0].
    #[serde(default = "default_reference")]
    pub reference: Action,
    /// The sample sizes n (n - 1 comparisons of (a1, a2) plus one of (a2, a3)).
    #[serde(default = "default_grid")]
    pub n_grid: Vec<u64>,
    /// The gap the greedy policy is claimed to keep [paper: 0.1].
    #[serde(default = "default_floor")]
    pub gap_floor: f64,
}

fn default_bound() -> f64 {
    2.0
}
fn default_reference() -> Action {
    Action::A3
}
fn default_floor() -> f64 {
    0.1
}
/// 2, 5, 10, 20, 50, ..., 1e6 (a 1-2-5 grid).
fn default_grid() -> Vec<u64> {
    let mut g = vec![2];
    let mut p = 1u64;
    while p <= 100_000 {
        g.extend([5 * p, 10 * p, 20 * p].into_iter().filter(|&n| n > 2));
        p *= 10;
    }
    g.retain(|&n| n <= 1_000_000);
    g.dedup();
    g
}

impl Default for PessimismOptions {
    fn default() -> Self {
        PessimismOptions {
            bound: default_bound(),
            radius: Radius::default(),
            reference: default_reference(),
            n_grid: default_grid(),
            gap_floor: default_floor(),
        }
    }
}

/// ||theta*||_2.
pub fn theta_star_norm() -> f64 {
    THETA_STAR.iter().map(|v| v * v).sum::<f64>().sqrt()
}

impl PessimismOptions {
    /// The options' checks: (field, value, allowed) of the first one that fails.
    pub fn problem(&self) -> Option<(&'static str, String, String)> {
        let star = theta_star_norm();
        if !(self.bound.is_finite() && self.bound >= star && self.bound <= 1e3) {
            return Some((
                "pessimism.bound",
                self.bound.to_string(),
                format!("a number in [||theta*|| = {star:.4}, 1000] (theta* must lie in Theta_B)"),
            ));
        }
        let (c, delta) = match self.radius {
            Radius::Paper { constant, delta } => (constant, Some(delta)),
            Radius::RootN { constant } => (constant, None),
        };
        if !(c.is_finite() && c.abs() <= 1e6) {
            return Some((
                "pessimism.radius.constant",
                c.to_string(),
                "a number in [-1e6, 1e6] (negative: the planted optimistic sign)".into(),
            ));
        }
        if let Some(d) = delta {
            if !(d > 0.0 && d < 1.0) {
                return Some((
                    "pessimism.radius.delta",
                    d.to_string(),
                    "a number in (0, 1)".into(),
                ));
            }
        }
        if self.n_grid.is_empty()
            || self.n_grid.windows(2).any(|w| w[0] >= w[1])
            || self.n_grid[0] < 2
            || *self.n_grid.last().unwrap() > 10_000_000
        {
            return Some((
                "pessimism.n_grid",
                format!("{:?}", self.n_grid),
                "increasing sample sizes in [2, 1e7]".into(),
            ));
        }
        if !(self.gap_floor.is_finite() && self.gap_floor >= 0.0) {
            return Some((
                "pessimism.gap_floor",
                self.gap_floor.to_string(),
                "a number >= 0".into(),
            ));
        }
        None
    }

    /// f(n).
    ///
    /// # Formula
    ///
    /// [paper, the MLE confidence bound (Lemma 3.1), lambda = 0; docs/theory.md §9.11]
    /// f(n) = C sqrt((d + ln(1/delta)) / (gamma^2 n)), gamma = 1 / (2 + e^{-LB} + e^{LB}),
    /// d = 3, L = max_a ||phi(a)||_2 = sqrt 2; or [ours] c / sqrt(n).
    pub fn radius(&self, n: u64) -> f64 {
        match self.radius {
            Radius::Paper { constant, delta } => {
                let l = FEATURES
                    .iter()
                    .map(|f| f.iter().map(|v| v * v).sum::<f64>().sqrt())
                    .fold(0.0, f64::max);
                let lb = l * self.bound;
                let gamma = 1.0 / (2.0 + (-lb).exp() + lb.exp());
                constant * ((3.0 + (1.0 / delta).ln()) / (gamma * gamma * n as f64)).sqrt()
            }
            Radius::RootN { constant } => constant / (n as f64).sqrt(),
        }
    }
}

/// The paper's design at sample size n: n - 1 comparisons of (a1, a2) and one of (a2, a3).
pub fn design(n: u64) -> FixedDesign {
    assert!(n >= 2, "at least one comparison of (a1, a2)");
    FixedDesign {
        contexts: 1,
        responses: 4,
        comparisons: vec![
            Comparison {
                context: 0,
                a: 0,
                b: 1,
                count: n - 1,
            },
            Comparison {
                context: 0,
                a: 1,
                b: 2,
                count: 1,
            },
        ],
    }
}

/// r(a) = theta^T phi(a) for the four actions.
pub fn rewards(theta: &[f64]) -> [f64; 4] {
    FEATURES.map(|f| f.iter().zip(theta).map(|(a, b)| a * b).sum())
}

/// The largest optimality gap of the instance, max_a (r*(a*) - r*(a)) = 1.1 (a2).
pub fn max_gap() -> f64 {
    let r = rewards(&THETA_STAR);
    let best = r.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    r.iter().map(|v| best - v).fold(0.0, f64::max)
}

/// An orthonormal basis of the plane 1^T theta = 0 in R^d, as the d x (d-1) matrix H whose
/// column j is (1, ..., 1, -j, 0, ..., 0) / sqrt(j (j+1)) with j ones (Helmert).
pub fn helmert_basis(d: usize) -> DMatrix<f64> {
    DMatrix::from_fn(d, d - 1, |i, j| {
        let j1 = j + 1;
        let s = ((j1 * (j1 + 1)) as f64).sqrt();
        if i < j1 {
            1.0 / s
        } else if i == j1 {
            -(j1 as f64) / s
        } else {
            0.0
        }
    })
}

/// The features in plane coordinates, psi(a) = H^T phi(a) (rows).
fn plane_features() -> DMatrix<f64> {
    let h = helmert_basis(3);
    DMatrix::from_fn(4, 2, |a, j| {
        (0..3).map(|i| h[(i, j)] * FEATURES[a][i]).sum()
    })
}

/// The MLE over Theta_B of one outcome: the fitter of [`crate::estimation`] (Newton inside
/// the ball, Moré-Sorensen multiplier on its boundary) on the plane features psi = H^T phi
/// with the same bound B: theta = H z satisfies 1^T theta = 0 and ||theta|| = ||z||.
pub struct ConstrainedMle {
    fitter: LinearFitter,
    ws: FitWorkspace,
    start: Vec<f64>,
}

/// The KKT tolerance of the MLE (max-norm of the normalised gradient grad L + lambda z).
pub const MLE_TOLERANCE: f64 = 1e-12;

/// One MLE fit in plane coordinates, with the fit's KKT residual.
#[derive(Clone, Debug, PartialEq)]
pub struct MleFit {
    pub z: [f64; 2],
    pub kkt_residual: f64,
    pub on_boundary: bool,
}

impl ConstrainedMle {
    pub fn new(bound: f64) -> Self {
        let psi = plane_features();
        let class = LinearReward {
            dim: 2,
            features: (0..4).flat_map(|a| [psi[(a, 0)], psi[(a, 1)]]).collect(),
            theta_star: vec![0.0; 2],
            bound,
        };
        ConstrainedMle {
            fitter: LinearFitter::new(&class, 1, 4, MLE_TOLERANCE),
            ws: FitWorkspace::default(),
            start: vec![0.0; 2],
        }
    }

    /// The constrained MLE of `design` with outcome `wins`, warm-started at the previous fit.
    ///
    /// # Formula
    ///
    /// [paper §3, the MLE over Theta_B; docs/theory.md §9.10] maximise
    /// sum_i [w_i ln sigma(theta^T x_i) + (count_i - w_i) ln sigma(-theta^T x_i)],
    /// x_i = phi(a_i) - phi(b_i), over 1^T theta = 0, ||theta||_2 <= B.
    pub fn fit(&mut self, design: &FixedDesign, wins: &[u64]) -> MleFit {
        let counts = design.win_counts(wins);
        let f = self.fitter.fit(&counts, &self.start, &mut self.ws);
        self.start.copy_from_slice(&f.theta);
        MleFit {
            z: [f.theta[0], f.theta[1]],
            kkt_residual: f.kkt_residual,
            on_boundary: f.on_boundary,
        }
    }
}

/// theta = H z.
pub fn theta_of(z: &[f64; 2]) -> [f64; 3] {
    let h = helmert_basis(3);
    [0, 1, 2].map(|i| h[(i, 0)] * z[0] + h[(i, 1)] * z[1])
}

/// Sigma = (1/n) sum_i count_i x_i x_i^T of the design in plane coordinates (x_i = psi(a_i)
/// - psi(b_i)).
pub fn covariance(design: &FixedDesign) -> DMatrix<f64> {
    let psi = plane_features();
    let mut s = DMatrix::zeros(2, 2);
    for c in &design.comparisons {
        let x = psi.row(c.a) - psi.row(c.b);
        s += x.transpose() * &x * c.count as f64;
    }
    s / design.n() as f64
}

/// The lower confidence bound of the value of action `a` against the reference: min over
/// {z : ||z - z_hat||_Sigma <= radius} of z^T u, u = psi(a) - psi(reference); -inf when u
/// leaves the range of Sigma (the set is unbounded along u). A negative radius gives the
/// upper bound of the mirrored set (the planted optimistic sign).
///
/// # Formula
///
/// [derived, docs/theory.md §9.11] For u in range(Sigma), write u = Sigma w: z^T u =
/// z_hat^T u + (z - z_hat)^T Sigma w >= z_hat^T u - ||z - z_hat||_Sigma ||w||_Sigma
/// (Cauchy-Schwarz in the Sigma inner product), with equality at z - z_hat = -radius
/// Sigma^+ u / ||u||_{Sigma^+}; ||w||_Sigma = ||u||_{Sigma^+} = sqrt(u^T Sigma^+ u). So
/// LCB(a) = z_hat^T u - radius sqrt(u^T Sigma^+ u).
pub fn lower_bound(
    z_hat: &[f64; 2],
    sigma_pinv: &DMatrix<f64>,
    sigma: &DMatrix<f64>,
    u: &[f64; 2],
    radius: f64,
) -> f64 {
    let uv = DVector::from_column_slice(u);
    let w = sigma_pinv * &uv;
    let back = sigma * &w;
    if (back - &uv).norm() > 1e-9 * (1.0 + uv.norm()) {
        return if radius > 0.0 {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        };
    }
    let q = uv.dot(&w).max(0.0);
    z_hat[0] * u[0] + z_hat[1] * u[1] - radius * q.sqrt()
}

/// The generic check of [`lower_bound`]: min of z^T u over the boundary of the ellipse
/// {z : (z - z_hat)^T Sigma (z - z_hat) = radius^2} (positive definite Sigma, radius > 0),
/// parametrised as z_hat + radius Sigma^{-1/2} (cos t, sin t): a grid of 3600 angles, then
/// golden-section search on the bracket around the best grid angle (z^T u is a sinusoid
/// in t, unimodal on that bracket) to |dt| < 1e-12.
pub fn lower_bound_brute_force(
    z_hat: &[f64; 2],
    sigma: &DMatrix<f64>,
    u: &[f64; 2],
    radius: f64,
) -> f64 {
    let eig = sigma.clone().symmetric_eigen();
    let m = &eig.eigenvectors
        * DMatrix::from_diagonal(&eig.eigenvalues.map(|l| 1.0 / l.sqrt()))
        * eig.eigenvectors.transpose();
    let (m00, m01, m10, m11) = (m[(0, 0)], m[(0, 1)], m[(1, 0)], m[(1, 1)]);
    let value = |t: f64| {
        let (c, s) = (t.cos(), t.sin());
        let z0 = z_hat[0] + radius * (m00 * c + m01 * s);
        let z1 = z_hat[1] + radius * (m10 * c + m11 * s);
        z0 * u[0] + z1 * u[1]
    };
    let grid = 3600;
    let step = std::f64::consts::TAU / grid as f64;
    let best = (0..grid)
        .map(|i| i as f64 * step)
        .min_by(|a, b| value(*a).total_cmp(&value(*b)))
        .expect("a grid");
    let (mut lo, mut hi) = (best - step, best + step);
    let g = 0.5 * (5f64.sqrt() - 1.0);
    while hi - lo > 1e-12 {
        let (a, b) = (hi - g * (hi - lo), lo + g * (hi - lo));
        if value(a) < value(b) {
            hi = b;
        } else {
            lo = a;
        }
    }
    value(0.5 * (lo + hi))
}

/// A deterministic rule's choice on one outcome: the uniform distribution over the actions
/// within [`TIE_TOLERANCE`] of the best value, and the margin to the best other action.
fn choose(values: &[f64; 4]) -> ([f64; 4], f64) {
    let best = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let tied: Vec<bool> = values.iter().map(|&v| v >= best - TIE_TOLERANCE).collect();
    let k = tied.iter().filter(|&&t| t).count() as f64;
    let margin = values
        .iter()
        .zip(&tied)
        .filter(|(_, t)| !**t)
        .map(|(v, _)| best - v)
        .fold(f64::INFINITY, f64::min);
    (
        [0, 1, 2, 3].map(|a| if tied[a] { 1.0 / k } else { 0.0 }),
        margin,
    )
}

/// Values within this of the largest are ties (split uniformly); far above the MLE's error.
pub const TIE_TOLERANCE: f64 = 1e-9;

/// The three rules of the checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// argmax r_hat (the RKL policy's limit gamma -> infinity).
    Greedy,
    /// argmax of the lower confidence bound (pessimistic MLE).
    Pessimistic,
    /// argmax of the upper confidence bound (the radius's sign flipped; planted).
    Optimistic,
}

/// The exact expectations at one n.
#[derive(Clone, Debug, PartialEq)]
pub struct GapPoint {
    pub n: u64,
    pub radius: f64,
    /// E[gap] of the greedy, pessimistic and optimistic rules.
    pub greedy: f64,
    pub pessimistic: f64,
    pub optimistic: f64,
    /// P[greedy gap >= gap_floor].
    pub greedy_floor_probability: f64,
    /// P[||theta_hat - theta*||_Sigma > f(n)]: theta* outside the confidence set.
    pub miss_probability: f64,
    /// The derived bound on E[pessimistic gap]: 2 f ||u*||_{Sigma^+} P[cover] + max gap P[miss].
    pub bound: f64,
    /// The smallest margin of a decision that is not a tie, over the enumerated outcomes.
    pub min_margin: f64,
    /// The probability left out of the enumeration.
    pub omitted: f64,
    /// The largest KKT residual of the MLE fits.
    pub max_kkt: f64,
    /// The largest |closed-form LCB - brute force| over the checked outcomes.
    pub lcb_residual: f64,
    /// The number of enumerated outcomes.
    pub outcomes: usize,
}

/// The exact expected optimality gaps of the three rules at sample size n, by enumeration
/// of the outcomes of [`design`]`(n)`; about `lcb_checks` outcomes, evenly spaced in the
/// enumeration, also compare [`lower_bound`] with [`lower_bound_brute_force`].
///
/// # Formula
///
/// [derived, docs/theory.md §9.12] E[gap(rule)] = sum_w P[W = w] sum_a pi_rule(a | w)
/// (r*(a4) - r*(a)), over the enumerated outcomes w (omitted mass reported). The bound: on
/// the event theta* in C, gap <= 2 f ||u*||_{Sigma^+}, u* = psi(a4) - psi(reference) (the
/// argument of the paper's bound on the pessimistic MLE, Theorem 3.2: pessimism, optimality
/// of the LCB maximiser, and Cauchy-Schwarz); off it, gap <= max_a (r*(a4) - r*(a)).
pub fn gap_point(
    opts: &PessimismOptions,
    mle: &mut ConstrainedMle,
    n: u64,
    lcb_checks: usize,
) -> GapPoint {
    let d = design(n);
    let r_star = rewards(&THETA_STAR);
    let best = r_star.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let gaps = r_star.map(|r| best - r);
    let max_gap = max_gap();
    let a_star = (0..4)
        .find(|&a| r_star[a] == best)
        .expect("an optimal action");
    let sigma = covariance(&d);
    let sigma_pinv = sigma.clone().pseudo_inverse(1e-12).expect("an SVD");
    let radius = opts.radius(n);
    let psi = plane_features();
    let u_of = |a: usize| {
        let r = opts.reference.index();
        [psi[(a, 0)] - psi[(r, 0)], psi[(a, 1)] - psi[(r, 1)]]
    };
    let z_star = {
        let h = helmert_basis(3);
        [0, 1].map(|j| (0..3).map(|i| h[(i, j)] * THETA_STAR[i]).sum::<f64>())
    };
    let u_star = u_of(a_star);
    let u_star_norm = {
        let u = DVector::from_column_slice(&u_star);
        u.dot(&(&sigma_pinv * &u)).max(0.0).sqrt()
    };
    let e = fixed_design::outcomes(&d, &r_star);
    let mut p = GapPoint {
        n,
        radius,
        greedy: 0.0,
        pessimistic: 0.0,
        optimistic: 0.0,
        greedy_floor_probability: 0.0,
        miss_probability: e.omitted,
        bound: 0.0,
        min_margin: f64::INFINITY,
        omitted: e.omitted,
        max_kkt: 0.0,
        lcb_residual: 0.0,
        outcomes: e.outcomes.len(),
    };
    let mut cover = 0.0;
    let stride = if lcb_checks == 0 {
        usize::MAX
    } else {
        (e.outcomes.len() / lcb_checks).max(1)
    };
    for (i, o) in e.outcomes.iter().enumerate() {
        let prob = o.ln_prob.exp();
        let fit = mle.fit(&d, &o.wins);
        p.max_kkt = p.max_kkt.max(fit.kkt_residual);
        let r_hat = rewards(&theta_of(&fit.z));
        let lcb = [0, 1, 2, 3].map(|a| lower_bound(&fit.z, &sigma_pinv, &sigma, &u_of(a), radius));
        let ucb = [0, 1, 2, 3].map(|a| lower_bound(&fit.z, &sigma_pinv, &sigma, &u_of(a), -radius));
        if i % stride == 0 && radius > 0.0 {
            for a in 0..4 {
                let bf = lower_bound_brute_force(&fit.z, &sigma, &u_of(a), radius);
                p.lcb_residual = p
                    .lcb_residual
                    .max((bf - lcb[a]).abs() / (1.0 + lcb[a].abs()));
            }
        }
        for (rule, values) in [
            (Rule::Greedy, r_hat),
            (Rule::Pessimistic, lcb),
            (Rule::Optimistic, ucb),
        ] {
            let (pi, margin) = choose(&values);
            p.min_margin = p.min_margin.min(margin);
            let g: f64 = (0..4).map(|a| pi[a] * gaps[a]).sum();
            match rule {
                Rule::Greedy => {
                    p.greedy += prob * g;
                    let at_floor: f64 = (0..4)
                        .filter(|&a| gaps[a] >= opts.gap_floor)
                        .map(|a| pi[a])
                        .sum();
                    p.greedy_floor_probability += prob * at_floor;
                }
                Rule::Pessimistic => p.pessimistic += prob * g,
                Rule::Optimistic => p.optimistic += prob * g,
            }
        }
        let dz = DVector::from_column_slice(&[fit.z[0] - z_star[0], fit.z[1] - z_star[1]]);
        let dist = dz.dot(&(&sigma * &dz)).max(0.0).sqrt();
        if dist <= radius {
            cover += prob;
        } else {
            p.miss_probability += prob;
        }
    }
    p.bound = 2.0 * radius.max(0.0) * u_star_norm * cover + max_gap * p.miss_probability;
    p
}

/// [`gap_point`] at every n of the options' grid.
pub fn gap_curve(opts: &PessimismOptions, lcb_checks: usize) -> Vec<GapPoint> {
    let mut mle = ConstrainedMle::new(opts.bound);
    opts.n_grid
        .iter()
        .map(|&n| gap_point(opts, &mut mle, n, lcb_checks))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::numerics::ln_sigmoid;

    /// The instance: r* = (-0.9, -1, 0, 0.1), a4 optimal, theta* in the plane.
    #[test]
    fn the_instance_has_the_papers_rewards() {
        let r = rewards(&THETA_STAR);
        for (got, want) in r.iter().zip([-0.9, -1.0, 0.0, 0.1]) {
            assert!((got - want).abs() < 1e-15);
        }
        assert!(THETA_STAR.iter().sum::<f64>().abs() < 1e-15);
        let h = helmert_basis(3);
        let g = h.transpose() * &h;
        assert!((g - DMatrix::identity(2, 2)).norm() < 1e-15);
        assert!((h.transpose() * DVector::from_element(3, 1.0)).norm() < 1e-15);
    }

    /// Hand-worked MLE: with n = 2 and both comparisons won by their first action (a1 over
    /// a2, a2 over a3) the log-likelihood is ln sigma(theta_2) + ln sigma(theta_1), increasing
    /// in both, so the maximiser lies on the ellipse theta_1^2 + theta_1 theta_2 + theta_2^2 =
    /// B^2/2 (1^T theta = 0, ||theta|| = B); both are symmetric in theta_1 <-> theta_2 and the
    /// maximiser is unique (strict concavity), so theta = (1, 1, -2) B / sqrt(6). For the
    /// other outcomes (each term monotone, so again on the sphere) the KKT condition: the
    /// log-likelihood's gradient projected on the plane is a nonnegative multiple of theta.
    #[test]
    fn constrained_mle_on_hand_worked_cases() {
        for b in [1.5, 2.0, 4.0] {
            let mut mle = ConstrainedMle::new(b);
            let d = design(2);
            let fit = mle.fit(&d, &[1, 1]);
            let t = theta_of(&fit.z);
            let want = [b / 6f64.sqrt(), b / 6f64.sqrt(), -2.0 * b / 6f64.sqrt()];
            for i in 0..3 {
                assert!((t[i] - want[i]).abs() < 1e-9, "B {b}: {t:?} vs {want:?}");
            }
            for wins in [[0u64, 1], [1, 0], [0, 0]] {
                let fit = mle.fit(&d, &wins);
                let t = theta_of(&fit.z);
                let norm = t.iter().map(|v| v * v).sum::<f64>().sqrt();
                assert!((norm - b).abs() < 1e-9 * b, "on the sphere: {norm}");
                assert!(t.iter().sum::<f64>().abs() < 1e-12);
                // grad of the log-likelihood in theta: x_i (w_i sigma(-t_i) - l_i sigma(t_i)).
                let s1 = if wins[0] == 1 {
                    crate::numerics::sigmoid(-t[1])
                } else {
                    -crate::numerics::sigmoid(t[1])
                };
                let s2 = if wins[1] == 1 {
                    crate::numerics::sigmoid(-t[0])
                } else {
                    -crate::numerics::sigmoid(t[0])
                };
                let g = [s2, s1, 0.0];
                // Projected onto the plane it must be a nonnegative multiple of theta.
                let mean = g.iter().sum::<f64>() / 3.0;
                let pg = g.map(|v| v - mean);
                let mu = pg.iter().zip(&t).map(|(a, b)| a * b).sum::<f64>() / (b * b);
                assert!(mu > 0.0);
                for i in 0..3 {
                    assert!(
                        (pg[i] - mu * t[i]).abs() < 1e-8,
                        "KKT at {wins:?}: {pg:?} vs {mu} {t:?}"
                    );
                }
            }
        }
    }

    /// The MLE against a generic maximiser: for many n and outcomes, a golden-section search
    /// over theta_2 along the boundary theta_1(theta_2) (the maximiser is on the boundary:
    /// the single comparison's term is monotone in theta_1; the restricted log-likelihood
    /// is concave in theta_2: ln sigma increasing concave of the concave theta_1(theta_2)) has
    /// no larger log-likelihood, and the same argument to 1e-7.
    #[test]
    fn constrained_mle_matches_a_boundary_search() {
        let b = 2.0;
        let mut mle = ConstrainedMle::new(b);
        for n in [2u64, 3, 7, 40, 1000] {
            let d = design(n);
            for k in [0, (n - 1) / 3, n - 1] {
                for s in [0u64, 1] {
                    let fit = mle.fit(&d, &[k, s]);
                    let t = theta_of(&fit.z);
                    let m = (n - 1) as f64;
                    let sign = if s == 1 { 1.0 } else { -1.0 };
                    let ll = |t1: f64, t2: f64| {
                        k as f64 * ln_sigmoid(t2)
                            + (m - k as f64) * ln_sigmoid(-t2)
                            + ln_sigmoid(sign * t1)
                    };
                    let t1_of = |t2: f64| {
                        (-t2 + sign * (2.0 * b * b - 3.0 * t2 * t2).max(0.0).sqrt()) / 2.0
                    };
                    let edge = b * (2.0f64 / 3.0).sqrt();
                    let (mut lo, mut hi) = (-edge, edge);
                    let g = 0.5 * (5f64.sqrt() - 1.0);
                    while hi - lo > 1e-13 {
                        let (x, y) = (hi - g * (hi - lo), lo + g * (hi - lo));
                        if ll(t1_of(x), x) > ll(t1_of(y), y) {
                            hi = y;
                        } else {
                            lo = x;
                        }
                    }
                    let t2 = 0.5 * (lo + hi);
                    assert!(
                        ll(t[0], t[1]) >= ll(t1_of(t2), t2) - 1e-9,
                        "n {n} k {k} s {s}"
                    );
                    assert!(
                        (t[1] - t2).abs() < 1e-6 && (t[0] - t1_of(t2)).abs() < 1e-6,
                        "n {n} k {k} s {s}: {t:?} vs {t2}"
                    );
                }
            }
        }
    }

    /// The LCB closed form against the brute-force minimisation over the ellipse, on random
    /// positive definite Sigma, centres, directions and radii (1e-10 relative); outside the
    /// range of a singular Sigma the bound is -inf.
    #[test]
    fn lower_bound_closed_form_matches_brute_force() {
        use rand::RngExt;
        let mut rng = crate::streams::stream(5, "test/pessimism_lcb", 0);
        for _ in 0..200 {
            let a = DMatrix::from_fn(2, 2, |_, _| 2.0 * rng.random::<f64>() - 1.0);
            let sigma = &a * a.transpose() + DMatrix::identity(2, 2) * 1e-3;
            let pinv = sigma.clone().pseudo_inverse(1e-14).unwrap();
            let z = [
                rng.random::<f64>() * 4.0 - 2.0,
                rng.random::<f64>() * 4.0 - 2.0,
            ];
            let u = [
                rng.random::<f64>() * 4.0 - 2.0,
                rng.random::<f64>() * 4.0 - 2.0,
            ];
            let r = rng.random::<f64>() * 3.0;
            let closed = lower_bound(&z, &pinv, &sigma, &u, r);
            let bf = lower_bound_brute_force(&z, &sigma, &u, r);
            assert!(
                (closed - bf).abs() <= 1e-10 * (1.0 + closed.abs()),
                "{closed} vs {bf}"
            );
            // A planted wrong sign (z^T u + r ||u||) exceeds the brute-force minimum.
            let wrong = lower_bound(&z, &pinv, &sigma, &u, -r);
            assert!(r < 1e-6 || wrong > bf + 1e-9);
        }
        let singular = DMatrix::from_row_slice(2, 2, &[1.0, 0.0, 0.0, 0.0]);
        let pinv = singular.clone().pseudo_inverse(1e-14).unwrap();
        assert_eq!(
            lower_bound(&[0.0, 0.0], &pinv, &singular, &[0.0, 1.0], 0.5),
            f64::NEG_INFINITY
        );
        assert_eq!(
            lower_bound(&[0.3, 0.0], &pinv, &singular, &[2.0, 0.0], 0.5),
            0.6 - 1.0
        );
    }

    /// The greedy rule is the limit of the RKL policy: at gamma = 1e6 the RKL policy of a
    /// uniform reference puts all but 1e-9 of its mass on the argmax of r_hat.
    #[test]
    fn greedy_is_the_large_gamma_rkl_limit() {
        let r_hat = [0.3, -1.2, 0.0, 0.29];
        let log_g = [0.25f64.ln(); 4];
        let mut lp = [0.0; 4];
        crate::policy::rkl_log_policy(&log_g, &r_hat, 1e6, &mut lp);
        let (pi, margin) = choose(&r_hat);
        assert_eq!(pi, [1.0, 0.0, 0.0, 0.0]);
        assert!((margin - 0.01).abs() < 1e-12);
        assert!(lp[0].exp() > 1.0 - 1e-9);
    }

    /// Monte Carlo: the exact expected gaps at n = 30 against 20000 simulated datasets
    /// (fixed seed). Each gap lies in [0, 1.1], so its standard deviation is at most 0.55 and
    /// the standard error of a mean at most 0.55 / sqrt(20000) = 3.9e-3; the tolerance is
    /// 4.5 measured standard errors (plus 1e-12 for a zero variance). With the radius 1/sqrt(n)
    /// both rules have gaps near 0.31 here (measured: greedy 0.3082, pessimistic 0.3127;
    /// MC standard errors 3.2e-3 and 3.1e-3), so neither comparison is against a constant.
    #[test]
    fn enumeration_agrees_with_monte_carlo() {
        let opts = PessimismOptions {
            radius: Radius::RootN { constant: 1.0 },
            ..PessimismOptions::default()
        };
        let n = 30;
        let mut mle = ConstrainedMle::new(opts.bound);
        let exact = gap_point(&opts, &mut mle, n, 0);
        let d = design(n);
        let r_star = rewards(&THETA_STAR);
        let gaps = r_star.map(|r| 0.1 - r);
        let sigma = covariance(&d);
        let pinv = sigma.clone().pseudo_inverse(1e-12).unwrap();
        let psi = plane_features();
        let u = |a: usize| [psi[(a, 0)] - psi[(2, 0)], psi[(a, 1)] - psi[(2, 1)]];
        let mut rng = crate::streams::stream(17, "test/pessimism_mc", 0);
        let reps = 20_000;
        let (mut sg, mut sg2, mut sp, mut sp2) = (0.0, 0.0, 0.0, 0.0);
        for _ in 0..reps {
            let wins = fixed_design::sample(&d, &r_star, &mut rng);
            let fit = mle.fit(&d, &wins);
            let g = {
                let (pi, _) = choose(&rewards(&theta_of(&fit.z)));
                (0..4).map(|a| pi[a] * gaps[a]).sum::<f64>()
            };
            let pg = {
                let lcb =
                    [0, 1, 2, 3].map(|a| lower_bound(&fit.z, &pinv, &sigma, &u(a), opts.radius(n)));
                let (pi, _) = choose(&lcb);
                (0..4).map(|a| pi[a] * gaps[a]).sum::<f64>()
            };
            sg += g;
            sg2 += g * g;
            sp += pg;
            sp2 += pg * pg;
        }
        let r = reps as f64;
        for (s, s2, want, what) in [
            (sg, sg2, exact.greedy, "greedy"),
            (sp, sp2, exact.pessimistic, "pessimistic"),
        ] {
            let mean = s / r;
            let se = ((s2 / r - mean * mean).max(0.0) / r).sqrt();
            assert!(
                (mean - want).abs() <= 4.5 * se + 1e-12,
                "{what}: MC {mean} ± {se} vs exact {want}"
            );
        }
    }
}
