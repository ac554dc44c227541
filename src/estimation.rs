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
use crate::numerics::ln_sigmoid_from_exp;
use crate::preference::WinCounts;
use nalgebra::{DMatrix, DMatrixView, DMatrixViewMut, DVector, DVectorView, DVectorViewMut};
use serde::Serialize;

/// A context with at least |Y|^2 / DENSE_FRACTION occupied cells (about a quarter of its
/// |Y| (|Y| - 1) / 2) builds L_x densely and multiplies matrices (O(|Y|^2 d + |Y| d^2), fast
/// kernels); sparser contexts accumulate L_x Psi_x over their cells (O(P_x d + |Y| d^2)).
const DENSE_FRACTION: usize = 8;
/// Default tolerance on the max-norm of the (normalised) KKT gradient grad L + lambda theta.
pub const DEFAULT_GRADIENT_TOLERANCE: f64 = 1e-10;
/// Relative tolerance on ||theta|| = B for boundary solutions.
const BOUNDARY_TOLERANCE: f64 = 1e-12;
const MAX_LAMBDA_STEPS: u32 = 200;
/// With lambda = 0, a Newton iterate beyond this multiple of B means separable data (no
/// finite minimiser): the interior attempt stops and the boundary solution takes over.
const RUNAWAY_FACTOR: f64 = 1e3;
/// A full Newton step is certified when the proved rise of the objective is at most this
/// fraction of its slope (docs/theory.md, "Estimator, linear class", item 4): the proved
/// decrease is then at least a quarter of the slope, half of what the quadratic model
/// predicts for a Newton step. For an exact Newton step at lambda = 0 the test reads
/// psi(m) <= 3/4, i.e. m <= 1.1 (m: the largest change of a pair margin).
const CERTIFIED_RISE: f64 = 0.75;

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

/// The linear-class fitter of one instance: its structured design ([`PairDesign`]) and the
/// bound.
#[derive(Clone, Debug)]
pub struct LinearFitter {
    dim: usize,
    bound: f64,
    tolerance: f64,
    design: PairDesign,
    max_diff_norm: f64,
    /// Whether the Newton solves may take certified full steps ([`Penalised`]); the results
    /// are bit-identical either way (off only in tests that check this).
    certify: bool,
}

/// Reusable buffers of one fit (one per replication; no allocation per sample).
#[derive(Clone, Debug, Default)]
pub struct FitWorkspace {
    /// The informative comparisons of the dataset, counts divided by N.
    active: OccupiedCells,
    scratch: PairScratch,
    grad: Vec<f64>,
    hess: Vec<f64>,
    newton: newton::Workspace,
    pass: PassCopy,
    tally: SolveTally,
}

/// What the Newton solves of a workspace's fits have evaluated, summed since it was created.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SolveTally {
    /// Evaluations of the objective L + lambda/2 ||theta||^2 (one logarithm per cell each).
    pub losses: u64,
    /// Full Newton steps taken without a line search because [`Penalised`] certified them.
    pub certified: u64,
}

impl FitWorkspace {
    /// The evaluations of every fit run with this workspace.
    pub fn tally(&self) -> SolveTally {
        self.tally
    }
}

/// The linear-class Bradley-Terry design of one instance, in the structured form of
/// docs/theory.md ("Estimator, linear class": the structured Hessian): features centred per
/// context, psi(x,y) = phi(x,y) - mean_y' phi(x,y'), which leaves every difference
/// phi(x,a) - phi(x,b) unchanged and keeps the cancellation in Phi_x^T L_x Phi_x small.
///
/// # Formula
///
/// With u_x = Psi_x theta (|Y| margins), t_ab = u_x(a) - u_x(b), and per occupied pair cell
/// the derivative c_ab and curvature h_ab of the pair's loss in t:
///
/// ```text
/// grad = sum_x Psi_x^T g_x,   g_x(a) = sum_b c_ab - sum_b c_ba,
/// H    = sum_x Psi_x^T (diag(W_x 1 + W_x^T 1) - W_x - W_x^T) Psi_x,   (W_x)_ab = h_ab,
/// ```
///
/// O(P_x d + |Y| d^2) per context with P_x occupied cells, instead of O(P_x d^2) for
/// sum h z z^T.
#[derive(Clone, Debug)]
pub struct PairDesign {
    dim: usize,
    responses: usize,
    /// psi(x,y) at centred[(x * responses + y) * dim ..].
    centred: Vec<f64>,
    /// The same numbers by columns: psi(x,y)_k at columns[(x * dim + k) * responses + y], so
    /// that the products with Psi_x^T read contiguous columns (nalgebra's dot products are
    /// the same operations in the same order whatever the strides: only faster).
    columns: Vec<f64>,
    /// max ||psi(x,y)|| (the scale of the rounding allowance of certified steps).
    feature_norm: f64,
}

/// The occupied pair cells of one dataset, grouped by context, with their win counts times a
/// scale (1/N for the MLE, 1 for DPO).
#[derive(Clone, Debug, Default)]
pub struct OccupiedCells {
    /// Unique per fill (0: never filled): what [`PairScratch`]'s exponential cache is keyed by.
    fill_id: u64,
    cells: Vec<PairCell>,
    /// (context, end of its cells in `cells`) for every context with an occupied cell.
    contexts: Vec<(usize, usize)>,
    /// Sum of the unscaled counts.
    pub informative: f64,
}

#[derive(Clone, Copy, Debug)]
struct PairCell {
    a: u32,
    b: u32,
    /// [W(a>b), W(b>a)] times the scale.
    wins: [f64; 2],
}

/// Per-context buffers of the structured kernel (no allocation per pass once sized).
#[derive(Clone, Debug, Default)]
pub struct PairScratch {
    margins: Vec<f64>,
    coefficient: Vec<f64>,
    degree: Vec<f64>,
    /// L_x Psi_x, |Y| x d (row-major on the sparse path, column-major on the dense one).
    laplacian_psi: Vec<f64>,
    /// L_x, |Y| x |Y| (dense path).
    laplacian: Vec<f64>,
    /// Psi_x s, the margins of a step (certified full steps).
    step_margins: Vec<f64>,
    /// e^-|t_ab| of every occupied cell at theta = `exp_theta` for the fill `exp_fill`: the
    /// loss and the gradient at the same theta (a line search's accepted trial, then the
    /// next Newton pass) share one exponential per cell. Bit-identical to recomputing.
    exps: Vec<f64>,
    exp_theta: Vec<f64>,
    exp_fill: u64,
    /// h_ab of every occupied cell at theta = `curvature_theta` for the fill
    /// `curvature_fill`, kept by [`PairDesign::gradient`] for [`PairDesign::hessian`].
    curvature: Vec<f64>,
    curvature_theta: Vec<f64>,
    curvature_fill: u64,
}

impl PairScratch {
    /// Whether `exps` holds the exponentials of `cells` at `theta`; if not, marks it as
    /// being refilled for them (the caller writes every entry).
    fn exps_for(&mut self, cells: &OccupiedCells, theta: &[f64]) -> bool {
        if cells.fill_id != 0 && self.exp_fill == cells.fill_id && self.exp_theta == theta {
            return true;
        }
        self.exp_fill = cells.fill_id;
        self.exp_theta.clear();
        self.exp_theta.extend_from_slice(theta);
        self.exps.resize(cells.cells.len(), 0.0);
        false
    }
}

/// Derivative c and curvature h in t of the Bradley-Terry pair loss
/// -[W_a ln sigma(t) + W_b ln sigma(-t)]: c = W_b sigma(t) - W_a sigma(-t),
/// h = (W_a + W_b) sigma(t) sigma(-t), from one exponential e^-|t| (no cancellation in the
/// tails).
pub fn pair_derivatives(wins: [f64; 2], t: f64) -> (f64, f64) {
    pair_derivatives_from(wins, t, (-t.abs()).exp())
}

/// t_ab = u(a) - u(b) of cell c from the margins u, with its exponential e^-|t| in `e`: read
/// from the cache, or computed and stored there when `cached` is false.
#[inline(always)]
fn cell_margin(u: &[f64], c: &PairCell, e: &mut f64, cached: bool) -> f64 {
    let t = u[c.a as usize] - u[c.b as usize];
    if !cached {
        // exp(-0) = 1 exactly (IEEE 754 and C99 Annex F), so skipping the call at t = 0 is
        // bit-identical; it spares every call of a cold start's first pass (theta = 0 makes
        // every margin 0), and the branch is predictable (elsewhere margins are almost never 0).
        *e = if t == 0.0 { 1.0 } else { (-t.abs()).exp() };
    }
    t
}

/// psi(m) = (e^m - m - 1) / m^2 = int_0^1 (1 - a) e^(m a) da: increasing, psi(0) = 1/2, the
/// factor of the curvature in the certified-step bound.
///
/// # Formula
///
/// docs/theory.md, "Estimator, linear class", item 4. Computed as (expm1(m) - m) / m^2 for
/// m >= 1e-3 (relative rounding about 4 eps / m <= 1e-12); below, by the upper bound
/// 1/2 + m/6 + m^2/20 of its series sum_k m^k / (k + 2)! (the tail from k = 2 is
/// m^2/24 (1 + m/5 + m^2/30 + ...) <= m^2/20).
fn curvature_factor(m: f64) -> f64 {
    if m < 1e-3 {
        0.5 + m / 6.0 + m * m / 20.0
    } else {
        (m.exp_m1() - m) / (m * m)
    }
}

/// [`pair_derivatives`] given e = e^-|t|.
#[inline(always)]
fn pair_derivatives_from(wins: [f64; 2], t: f64, e: f64) -> (f64, f64) {
    let big = 1.0 / (1.0 + e);
    let small = e * big;
    // A select by bit mask, not a branch: the sign of t is a coin flip from cell to cell, so
    // a branch is mispredicted half the time. The mask is made opaque (`black_box`), or the
    // compiler sees the select again and may lower it back into a branch.
    let mask = std::hint::black_box(0u64.wrapping_sub(u64::from(t >= 0.0)));
    let (b, s) = (big.to_bits(), small.to_bits());
    let sp = f64::from_bits((b & mask) | (s & !mask));
    let sm = f64::from_bits((s & mask) | (b & !mask));
    (wins[1] * sp - wins[0] * sm, (wins[0] + wins[1]) * sp * sm)
}

/// The per-response sums of one context's cells: sums[a] += v_a and sums[b] += v_b for
/// every cell (a, b) in order, with (v_a, v_b) = `value(i, cell i)`. The gradient's
/// coefficients take (c_ab, -c_ab) (adding -c is subtracting c, exactly), the Laplacian's
/// degrees (h_ab, h_ab).
///
/// The cells come sorted by (a, b) ([`OccupiedCells::fill`]), so during a run of equal a no
/// other cell touches sums[a] (b > a): it is held in a register for the run and stored at its
/// end. Every sum receives the same terms in the same order as when each cell adds into
/// memory, so the result is bit for bit the same; what goes is a store-to-load latency per
/// addition.
#[inline(always)]
fn run_sums(
    list: &[PairCell],
    sums: &mut [f64],
    mut value: impl FnMut(usize, &PairCell) -> (f64, f64),
) {
    let Some(first) = list.first() else {
        return;
    };
    let mut a = first.a as usize;
    let mut held = sums[a];
    for (i, c) in list.iter().enumerate() {
        if c.a as usize != a {
            // A new run: store the sum of the last one, load this one's.
            sums[a] = held;
            a = c.a as usize;
            held = sums[a];
        }
        let (va, vb) = value(i, c);
        held += va;
        sums[c.b as usize] += vb;
    }
    sums[a] = held;
}

impl OccupiedCells {
    /// Refills the list from `counts`: the cells with a count whose two responses pass
    /// `keep(x, a, b)`; with `normalise` their counts divided by N = `informative`.
    pub fn fill(
        &mut self,
        counts: &WinCounts,
        normalise: bool,
        keep: impl Fn(usize, usize, usize) -> bool,
    ) {
        static FILLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
        self.fill_id = FILLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.cells.clear();
        self.contexts.clear();
        self.informative = 0.0;
        let (ny, np) = (counts.responses, counts.pairs_per_context());
        for (x, row) in counts
            .wins
            .chunks_exact(np.max(1))
            .enumerate()
            .take(counts.contexts)
        {
            let mut cell = row.iter();
            for a in 0..ny {
                for b in a + 1..ny {
                    let w = *cell.next().expect("one cell per pair");
                    if w[0] + w[1] > 0 && keep(x, a, b) {
                        self.informative += (w[0] + w[1]) as f64;
                        self.cells.push(PairCell {
                            a: a as u32,
                            b: b as u32,
                            wins: [w[0] as f64, w[1] as f64],
                        });
                    }
                }
            }
            if self.contexts.last().map_or(0, |c| c.1) < self.cells.len() {
                self.contexts.push((x, self.cells.len()));
            }
        }
        if normalise && self.informative > 0.0 {
            let n = self.informative;
            self.cells.iter_mut().for_each(|c| {
                c.wins = [c.wins[0] / n, c.wins[1] / n];
            });
        }
    }

    /// The occupied cells of each context: (x, index of its first cell, cells).
    fn by_context(&self) -> impl Iterator<Item = (usize, usize, &[PairCell])> {
        let starts = std::iter::once(0).chain(self.contexts.iter().map(|c| c.1));
        self.contexts
            .iter()
            .zip(starts)
            .map(|(&(x, end), start)| (x, start, &self.cells[start..end]))
    }
}

impl PairDesign {
    /// Centres the features of a linear class (flat X x Y x d) per context.
    pub fn new(class: &LinearReward, contexts: usize, responses: usize) -> Self {
        let d = class.dim;
        let mut centred = class.features[..contexts * responses * d].to_vec();
        let mut mean = vec![0.0; d];
        for block in centred.chunks_exact_mut((responses * d).max(1)) {
            mean.iter_mut().for_each(|m| *m = 0.0);
            for phi in block.chunks_exact(d) {
                mean.iter_mut().zip(phi).for_each(|(m, p)| *m += p);
            }
            mean.iter_mut().for_each(|m| *m /= responses as f64);
            for phi in block.chunks_exact_mut(d) {
                phi.iter_mut().zip(&mean).for_each(|(p, m)| *p -= m);
            }
        }
        let feature_norm = centred
            .chunks_exact(d.max(1))
            .map(|p| p.iter().map(|v| v * v).sum::<f64>().sqrt())
            .fold(0.0, f64::max);
        let mut columns = vec![0.0; centred.len()];
        for (block, out) in centred
            .chunks_exact((responses * d).max(1))
            .zip(columns.chunks_exact_mut((responses * d).max(1)))
        {
            for (y, phi) in block.chunks_exact(d).enumerate() {
                for (k, &v) in phi.iter().enumerate() {
                    out[k * responses + y] = v;
                }
            }
        }
        PairDesign {
            dim: d,
            responses,
            centred,
            columns,
            feature_norm,
        }
    }

    /// The dimension d of theta.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// psi(x, y) for every y of context x (|Y| x d, row-major).
    fn context(&self, x: usize) -> &[f64] {
        let size = self.responses * self.dim;
        &self.centred[x * size..(x + 1) * size]
    }

    /// Psi_x as a contiguous column-major |Y| x d matrix.
    fn context_columns(&self, x: usize) -> DMatrixView<'_, f64> {
        let size = self.responses * self.dim;
        DMatrixView::from_slice(
            &self.columns[x * size..(x + 1) * size],
            self.responses,
            self.dim,
        )
    }

    /// u = Psi_x theta.
    fn margins(&self, x: usize, theta: &[f64], u: &mut Vec<f64>) {
        u.clear();
        u.extend(
            self.context(x)
                .chunks_exact(self.dim)
                .map(|psi| psi.iter().zip(theta).map(|(p, t)| p * t).sum::<f64>()),
        );
    }

    /// The Bradley-Terry log-likelihood sum_cells W_a ln sigma(t) + W_b ln sigma(-t)
    /// = (W_a + W_b) ln sigma(t) - W_b t (one logarithm per cell), sharing the cell
    /// exponentials with [`PairDesign::gradient_hessian`] at the same theta.
    pub fn log_likelihood(
        &self,
        cells: &OccupiedCells,
        theta: &[f64],
        scratch: &mut PairScratch,
    ) -> f64 {
        let cached = scratch.exps_for(cells, theta);
        let mut total = 0.0;
        for (x, start, list) in cells.by_context() {
            self.margins(x, theta, &mut scratch.margins);
            let u = &scratch.margins;
            let exps = &mut scratch.exps[start..start + list.len()];
            for (c, e) in list.iter().zip(exps) {
                let t = cell_margin(u, c, e, cached);
                total += (c.wins[0] + c.wins[1]) * ln_sigmoid_from_exp(t, *e) - c.wins[1] * t;
            }
        }
        total
    }

    /// An upper bound on m = max |Delta t_ab| over the occupied cells for the step s,
    /// Delta t_ab = (psi(x,a) - psi(x,b))^T s: max over the contexts with an occupied cell of
    /// max_y v_y - min_y v_y, v = Psi_x s (|Y| d multiply-adds per context).
    ///
    /// # Formula
    ///
    /// docs/theory.md, "Estimator, linear class", item 4.
    pub fn largest_margin_change(
        &self,
        cells: &OccupiedCells,
        step: &[f64],
        scratch: &mut PairScratch,
    ) -> f64 {
        let mut largest: f64 = 0.0;
        for (x, _, _) in cells.by_context() {
            self.margins(x, step, &mut scratch.step_margins);
            let (lo, hi) = scratch
                .step_margins
                .iter()
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                    (lo.min(v), hi.max(v))
                });
            largest = largest.max(hi - lo);
        }
        largest
    }

    /// Overwrites `grad` and `hess` (column-major, symmetric) with the gradient and Hessian in
    /// theta of sum_cells loss(t_ab), whose derivative and curvature in t are
    /// [`pair_derivatives`] (struct doc: the structured form): [`PairDesign::gradient`], then
    /// [`PairDesign::hessian`].
    pub fn gradient_hessian(
        &self,
        cells: &OccupiedCells,
        theta: &[f64],
        scratch: &mut PairScratch,
        grad: &mut [f64],
        hess: &mut [f64],
    ) {
        self.gradient(cells, theta, scratch, grad);
        self.hessian(cells, theta, scratch, hess);
    }

    /// Overwrites `grad` with the gradient in theta of sum_cells loss(t_ab),
    /// sum_x Psi_x^T c_x with c_x(a) = sum_b c_ab - sum_b c_ba, and keeps every cell's
    /// curvature h_ab in `scratch` for a [`PairDesign::hessian`] at the same theta.
    pub fn gradient(
        &self,
        cells: &OccupiedCells,
        theta: &[f64],
        scratch: &mut PairScratch,
        grad: &mut [f64],
    ) {
        let (d, ny) = (self.dim, self.responses);
        grad.iter_mut().for_each(|g| *g = 0.0);
        let s = scratch;
        let cached = s.exps_for(cells, theta);
        s.curvature.resize(cells.cells.len(), 0.0);
        for (x, start, list) in cells.by_context() {
            self.margins(x, theta, &mut s.margins);
            let exps = &mut s.exps[start..start + list.len()];
            if !cached {
                // The exponentials first, in a loop of their own: the sums below then make no
                // call, so their running values stay in registers.
                let u = &s.margins;
                for (c, e) in list.iter().zip(exps.iter_mut()) {
                    cell_margin(u, c, e, false);
                }
            }
            s.coefficient.clear();
            s.coefficient.resize(ny, 0.0);
            let (u, coefficient) = (&s.margins, &mut s.coefficient);
            let curvature = &mut s.curvature[start..start + list.len()];
            run_sums(list, coefficient, |i, c| {
                let (g, h) =
                    pair_derivatives_from(c.wins, u[c.a as usize] - u[c.b as usize], exps[i]);
                curvature[i] = h;
                (g, -g)
            });
            DVectorViewMut::from_slice(grad, d).gemv_tr(
                1.0,
                &self.context_columns(x),
                &DVectorView::from_slice(&s.coefficient, ny),
                1.0,
            );
        }
        s.curvature_theta.clear();
        s.curvature_theta.extend_from_slice(theta);
        s.curvature_fill = cells.fill_id;
    }

    /// Overwrites `hess` (column-major, symmetric) with the Hessian in theta of
    /// sum_cells loss(t_ab), sum_x Psi_x^T L_x Psi_x, from the curvatures the last
    /// [`PairDesign::gradient`] kept (which must have been at these cells and this theta:
    /// checked).
    pub fn hessian(
        &self,
        cells: &OccupiedCells,
        theta: &[f64],
        scratch: &mut PairScratch,
        hess: &mut [f64],
    ) {
        let s = scratch;
        assert!(
            s.curvature_fill == cells.fill_id && s.curvature_theta == theta,
            "PairDesign::hessian without a gradient pass at the same cells and theta"
        );
        let (d, ny) = (self.dim, self.responses);
        hess.iter_mut().for_each(|h| *h = 0.0);
        let full = ny * ny.saturating_sub(1) / 2;
        for (x, start, list) in cells.by_context() {
            let psi = self.context(x);
            let curvature = &s.curvature[start..start + list.len()];
            s.degree.clear();
            s.degree.resize(ny, 0.0);
            let degree = &mut s.degree;
            if DENSE_FRACTION * list.len() >= ny * ny {
                // Dense context: L_x as a |Y| x |Y| matrix (off-diagonal -h_ab, diagonal the
                // degrees), then L Psi and Psi^T (L Psi) as matrix products.
                if list.len() < full || s.laplacian.len() != ny * ny {
                    s.laplacian.clear();
                    s.laplacian.resize(ny * ny, 0.0);
                }
                let lap = s.laplacian.as_mut_slice();
                run_sums(list, degree, |i, c| {
                    let (a, b, h) = (c.a as usize, c.b as usize, curvature[i]);
                    lap[a * ny + b] = -h;
                    lap[b * ny + a] = -h;
                    (h, h)
                });
                for (y, &dy) in degree.iter().enumerate() {
                    lap[y * ny + y] = dy;
                }
                s.laplacian_psi.resize(ny * d, 0.0);
                let l = DMatrixView::from_slice(lap, ny, ny);
                let q = DMatrixView::from_slice_with_strides(psi, ny, d, d, 1);
                let mut m = DMatrixViewMut::from_slice(&mut s.laplacian_psi, ny, d);
                m.gemm(1.0, &l, &q, 0.0);
                DMatrixViewMut::from_slice(hess, d, d).gemm_tr(
                    1.0,
                    &self.context_columns(x),
                    &m,
                    1.0,
                );
            } else {
                // Few occupied cells: accumulate L Psi row by row over the cells.
                s.laplacian_psi.clear();
                s.laplacian_psi.resize(ny * d, 0.0);
                let lpsi = s.laplacian_psi.as_mut_slice();
                run_sums(list, degree, |i, c| {
                    let (a, b, h) = (c.a as usize, c.b as usize, curvature[i]);
                    // -W_x Psi and -W_x^T Psi: row a gets -h psi(b), row b gets -h psi(a).
                    let (lo, hi) = lpsi.split_at_mut(b * d);
                    let (la, lb) = (&mut lo[a * d..(a + 1) * d], &mut hi[..d]);
                    let (pa, pb) = (&psi[a * d..(a + 1) * d], &psi[b * d..(b + 1) * d]);
                    for k in 0..d {
                        la[k] -= h * pb[k];
                        lb[k] -= h * pa[k];
                    }
                    (h, h)
                });
                for (y, (p, l)) in psi
                    .chunks_exact(d)
                    .zip(s.laplacian_psi.chunks_exact_mut(d))
                    .enumerate()
                {
                    let dy = degree[y];
                    if dy == 0.0 {
                        continue;
                    }
                    l.iter_mut().zip(p).for_each(|(lk, pk)| *lk += dy * pk);
                    // H += psi(y) (L Psi)(y)^T, lower triangle of each column j.
                    for (j, col) in hess.chunks_exact_mut(d).enumerate() {
                        let pj = p[j];
                        for (hk, lk) in col[j..].iter_mut().zip(&l[j..]) {
                            *hk += pj * lk;
                        }
                    }
                }
            }
        }
        for j in 0..d {
            for k in 0..j {
                hess[j * d + k] = hess[k * d + j];
            }
        }
    }
}

/// L(theta) + lambda/2 ||theta||^2 for one lambda: the objective of the interior Newton solves.
struct Penalised<'a> {
    fitter: &'a LinearFitter,
    data: &'a OccupiedCells,
    scratch: &'a mut PairScratch,
    lambda: f64,
    /// The last gradient/Hessian pass, for the certificate.
    pass: &'a mut PassCopy,
    /// What this solve evaluated.
    tally: SolveTally,
}

/// theta, grad f(theta) and H_L(theta) (without the ridge) of a solve's last gradient/Hessian
/// pass, as computed.
#[derive(Clone, Debug, Default)]
struct PassCopy {
    theta: Vec<f64>,
    grad: Vec<f64>,
    hess: Vec<f64>,
}

/// The bound of the full step theta - s at the last gradient/Hessian pass (docs/theory.md,
/// "Estimator, linear class", item 4): f(theta - s) - f(theta) <= -slope + rise in exact
/// arithmetic, and `allowance` bounds the rounding of the computed slope, rise and values of
/// f.
#[derive(Clone, Copy, Debug)]
struct FullStepBound {
    slope: f64,
    rise: f64,
    allowance: f64,
}

impl<'a> Penalised<'a> {
    /// The objective at `lambda` on `data`, with fresh tallies.
    fn new(
        fitter: &'a LinearFitter,
        data: &'a OccupiedCells,
        scratch: &'a mut PairScratch,
        pass: &'a mut PassCopy,
        lambda: f64,
    ) -> Self {
        Penalised {
            fitter,
            data,
            scratch,
            lambda,
            pass,
            tally: SolveTally::default(),
        }
    }

    /// [`FullStepBound`] for `step` at `theta`, if `theta` is the point of the last
    /// gradient/Hessian pass: slope = the decrement grad f^T s as the solver computed it,
    /// rise = psi(m) s^T H_L s + lambda/2 ||s||^2 with H_L as computed and m bounded by
    /// [`PairDesign::largest_margin_change`].
    ///
    /// # Formula
    ///
    /// The allowance is a worst-case bound (eps = 2.2e-16, K = occupied cells + contexts +
    /// 2 |Y| + d, the longest chain of additions in any computed sum; cell weights summing
    /// to 1, so sum |c| <= 1 and sum h <= 1/4; S = max ||psi|| ||s||, which bounds
    /// (|psi(x,a)| + |psi(x,b)|)^T |s| / 2): gradient and decrement 2 K eps (2 S +
    /// |g|^T |s| + lambda |theta|^T |s|), curvature 2 K eps 2 S^2 max(psi, 1), the two values
    /// of f 2 K eps 2 (1 + 2 t_max + lambda r^2) with r = ||theta|| + ||s||, t_max = 2 max||psi|| r
    /// (each term of the loss is at most (W_a + W_b)(ln 2 + 2 |t|)); m is raised by
    /// 4 d eps S for the rounding of Psi_x s.
    fn full_step_bound(
        &mut self,
        theta: &[f64],
        step: &[f64],
        decrement: f64,
    ) -> Option<FullStepBound> {
        let pass = &*self.pass;
        if pass.theta != theta {
            return None;
        }
        let (d, lambda, design) = (self.fitter.dim, self.lambda, &self.fitter.design);
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(u, v)| u * v).sum::<f64>();
        let abs_dot =
            |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(u, v)| (u * v).abs()).sum::<f64>();
        let curvature: f64 = pass
            .hess
            .chunks_exact(d)
            .zip(step)
            .map(|(column, sj)| sj * dot(column, step))
            .sum();
        let squared = dot(step, step);
        let scale = design.feature_norm * squared.sqrt();
        let eps = f64::EPSILON;
        let largest = design.largest_margin_change(self.data, step, self.scratch)
            + 4.0 * d as f64 * eps * scale;
        let factor = curvature_factor(largest);
        let rise = factor * curvature + 0.5 * lambda * squared;
        let r = dot(theta, theta).sqrt() + squared.sqrt();
        let t_max = 2.0 * design.feature_norm * r;
        let chain =
            (self.data.cells.len() + self.data.contexts.len() + 2 * design.responses + d) as f64;
        let allowance = 2.0
            * chain
            * eps
            * (2.0 * scale
                + abs_dot(&pass.grad, step)
                + lambda * abs_dot(theta, step)
                + 2.0 * scale * scale * factor.max(1.0)
                + 2.0 * (1.0 + 2.0 * t_max + lambda * r * r));
        Some(FullStepBound {
            slope: decrement,
            rise,
            allowance,
        })
    }
}

impl Objective for Penalised<'_> {
    fn dim(&self) -> usize {
        self.fitter.dim
    }

    fn value(&mut self, theta: &[f64]) -> f64 {
        self.tally.losses += 1;
        self.fitter
            .loss(self.data, self.scratch, theta, self.lambda)
    }

    /// grad L + lambda theta and H + lambda I: [`Objective::gradient`] then
    /// [`Objective::hessian`].
    fn gradient_hessian(&mut self, theta: &[f64], grad: &mut [f64], hess: &mut [f64]) {
        self.gradient(theta, grad);
        self.hessian(theta, hess);
    }

    /// grad L + lambda theta (copied, with theta, for the certificate). The Hessian of a
    /// pass whose gradient passes the test is never computed.
    fn gradient(&mut self, theta: &[f64], grad: &mut [f64]) -> bool {
        let lambda = self.lambda;
        self.fitter
            .design
            .gradient(self.data, theta, self.scratch, grad);
        grad.iter_mut()
            .zip(theta)
            .for_each(|(gv, t)| *gv += lambda * t);
        let pass = &mut *self.pass;
        pass.grad.clear();
        pass.grad.extend_from_slice(grad);
        pass.theta.clear();
        pass.theta.extend_from_slice(theta);
        true
    }

    /// H + lambda I (H_L copied for the certificate).
    fn hessian(&mut self, theta: &[f64], hess: &mut [f64]) {
        let (d, lambda) = (self.fitter.dim, self.lambda);
        self.fitter
            .design
            .hessian(self.data, theta, self.scratch, hess);
        let pass = &mut *self.pass;
        pass.hess.clear();
        pass.hess.extend_from_slice(hess);
        for k in 0..d {
            hess[k * d + k] += lambda;
        }
    }

    /// Separable data at lambda = 0: theta runs off; stop early, the boundary handles it.
    fn proceed(&self, theta: &[f64]) -> bool {
        !(self.lambda == 0.0
            && theta.iter().map(|v| v * v).sum::<f64>().sqrt() > RUNAWAY_FACTOR * self.fitter.bound)
    }

    /// The full step theta - s passes Armijo's test at alpha = 1 whenever
    /// rise + allowance <= [`CERTIFIED_RISE`] slope ([`FullStepBound`]).
    ///
    /// # Formula
    ///
    /// docs/theory.md, "Estimator, linear class", item 4: f(theta - s) - f(theta)
    /// <= -slope + rise for every s (slope and curvature are computed for the step taken, not
    /// assumed equal as for an exact Newton step, so the rounding of the Cholesky solve
    /// cannot break it). With the rounding of slope, rise and both computed values of f
    /// inside the allowance, the computed change is at most -slope + rise + allowance
    /// <= -slope / 4 = -decrement / 4, below Armijo's -[`newton::ARMIJO`] decrement with a
    /// margin of 0.2499 decrement (>= 2.5e-7 where the solver asks: decrement >= 1e-6);
    /// by the formula, with max ||psi|| about 4 and ||theta|| about 1, the allowance is of
    /// order 1e-9 at (100, 50, 16, 4) and 1e-11 at (20, 10, 5, 2).
    fn certifies_full_step(&mut self, theta: &[f64], step: &[f64], decrement: f64) -> bool {
        if !self.fitter.certify {
            return false;
        }
        let certified = self
            .full_step_bound(theta, step, decrement)
            .is_some_and(|b| {
                let total = b.rise + b.allowance;
                total.is_finite() && b.slope.is_finite() && total <= CERTIFIED_RISE * b.slope
            });
        self.tally.certified += u64::from(certified);
        certified
    }
}

impl LinearFitter {
    /// Centres the instance's features ([`PairDesign`]) and finds the largest feature
    /// difference max ||phi(x,a) - phi(x,b)|| (the upper end of the multiplier bracket).
    pub fn new(class: &LinearReward, contexts: usize, responses: usize, tolerance: f64) -> Self {
        let d = class.dim;
        let mut max_diff_norm: f64 = 0.0;
        for block in class.features[..contexts * responses * d].chunks_exact((responses * d).max(1))
        {
            for (a, fa) in block.chunks_exact(d).enumerate() {
                for fb in block.chunks_exact(d).skip(a + 1) {
                    let n2: f64 = fa.iter().zip(fb).map(|(u, v)| (u - v).powi(2)).sum();
                    max_diff_norm = max_diff_norm.max(n2.sqrt());
                }
            }
        }
        LinearFitter {
            dim: d,
            bound: class.bound,
            tolerance,
            design: PairDesign::new(class, contexts, responses),
            max_diff_norm,
            certify: true,
        }
    }

    /// The constrained MLE from `counts`, warm-started at `start` (e.g. the fit at the
    /// previous n of a nested grid; any point is a valid start).
    pub fn fit(&self, counts: &WinCounts, start: &[f64], ws: &mut FitWorkspace) -> LinearFit {
        let d = self.dim;
        ws.active.fill(counts, true, |_, _, _| true);
        if ws.active.informative == 0.0 {
            // No comparison carries information: every theta is an MLE; take the minimum-norm one.
            return LinearFit {
                theta: vec![0.0; d],
                lambda: 0.0,
                iterations: 0,
                kkt_residual: 0.0,
                on_boundary: false,
            };
        }
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
            self.design.gradient_hessian(
                &ws.active,
                &theta,
                &mut ws.scratch,
                &mut ws.grad,
                &mut ws.hess,
            );
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

    /// Loss L(theta) + lambda/2 ||theta||^2 on the occupied cells, using
    /// W_a ln sigma(t) + W_b ln sigma(-t) = (W_a + W_b) ln sigma(t) - W_b t (one logarithm per
    /// cell).
    fn loss(
        &self,
        data: &OccupiedCells,
        scratch: &mut PairScratch,
        theta: &[f64],
        lambda: f64,
    ) -> f64 {
        let l = self.design.log_likelihood(data, theta, scratch);
        -l + 0.5 * lambda * theta.iter().map(|v| v * v).sum::<f64>()
    }

    fn kkt(&self, ws: &mut FitWorkspace, theta: &[f64], lambda: f64) -> f64 {
        self.design
            .gradient(&ws.active, theta, &mut ws.scratch, &mut ws.grad);
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
        let mut objective = Penalised::new(self, &ws.active, &mut ws.scratch, &mut ws.pass, lambda);
        let settings = Settings {
            accept_rounding_level: true,
            ..Settings::new(self.tolerance)
        };
        let outcome = newton::minimise(&mut objective, theta, &settings, &mut ws.newton);
        ws.tally.losses += objective.tally.losses;
        ws.tally.certified += objective.tally.certified;
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
    use crate::preference::{Sampler, SamplerKind, pairs};
    use crate::streams::stream;
    use rand::RngExt;

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

    /// The count sampler of `inst` with mu = its first reference policy.
    fn first_reference_sampler(inst: &crate::instance::Instance) -> Sampler {
        Sampler::new(
            &inst.rho,
            &inst.references[0],
            &inst.true_reward(),
            inst.responses,
        )
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
        let sampler = first_reference_sampler(&inst);
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

    /// The structured gradient and Hessian (PairDesign doc) against the plain sums over the
    /// occupied cells, sum c z and sum h z z^T with z = phi(x,a) - phi(x,b) from the raw
    /// features, and the gradient against central differences of the loss. Tolerances: both
    /// sides are sums of O(|X| |Y|^2) terms of size <= 4 max|W|, so rounding is below
    /// 1e-13 relative; the central difference with step 1e-6 has truncation error
    /// O(1e-12 |L'''|) plus rounding 1e-16 |L| / 1e-6, both below 1e-8.
    #[test]
    fn structured_kernel_equals_the_sum_over_pairs_and_the_loss_derivative() {
        let (inst, lin) = linear_instance(1.0);
        let sampler = first_reference_sampler(&inst);
        let mut counts = WinCounts::new(inst.contexts, inst.responses);
        let mut rng = stream(9, "data", 0);
        // 8 comparisons over 6 x 10 cells: sparse contexts (fewer than 25 / DENSE_FRACTION
        // cells); 1e5: every context dense.
        for n in [8, 100_000] {
            let extra = n - counts.n;
            sampler.extend(SamplerKind::Counts, &mut counts, extra, &mut rng);
            check_structured_kernel(&inst, &lin, &counts);
        }
    }

    /// The pass as it was written before the split (one loop per context adding every cell
    /// into memory, Psi_x^T read as a row-major view): kept here as the reference of the
    /// bit-for-bit claim of [`PairDesign::gradient`] and [`PairDesign::hessian`].
    fn cell_by_cell_pass(
        design: &PairDesign,
        cells: &OccupiedCells,
        theta: &[f64],
        grad: &mut [f64],
        hess: &mut [f64],
    ) {
        let (d, ny) = (design.dim, design.responses);
        grad.iter_mut().for_each(|g| *g = 0.0);
        hess.iter_mut().for_each(|h| *h = 0.0);
        let mut u = vec![];
        for (x, _, list) in cells.by_context() {
            design.margins(x, theta, &mut u);
            let psi = design.context(x);
            let q = DMatrixView::from_slice_with_strides(psi, ny, d, d, 1);
            let (mut coefficient, mut degree) = (vec![0.0; ny], vec![0.0; ny]);
            let mut lpsi = vec![0.0; ny * d];
            if DENSE_FRACTION * list.len() >= ny * ny {
                let mut lap = vec![0.0; ny * ny];
                for c in list {
                    let (a, b) = (c.a as usize, c.b as usize);
                    let (g, h) = pair_derivatives(c.wins, u[a] - u[b]);
                    coefficient[a] += g;
                    coefficient[b] -= g;
                    degree[a] += h;
                    degree[b] += h;
                    lap[a * ny + b] = -h;
                    lap[b * ny + a] = -h;
                }
                for (y, &dy) in degree.iter().enumerate() {
                    lap[y * ny + y] = dy;
                }
                let l = DMatrixView::from_slice(&lap, ny, ny);
                let mut m = DMatrixViewMut::from_slice(&mut lpsi, ny, d);
                m.gemm(1.0, &l, &q, 0.0);
                DMatrixViewMut::from_slice(hess, d, d).gemm_tr(1.0, &q, &m, 1.0);
            } else {
                for c in list {
                    let (a, b) = (c.a as usize, c.b as usize);
                    let (g, h) = pair_derivatives(c.wins, u[a] - u[b]);
                    coefficient[a] += g;
                    coefficient[b] -= g;
                    degree[a] += h;
                    degree[b] += h;
                    for k in 0..d {
                        lpsi[a * d + k] -= h * psi[b * d + k];
                        lpsi[b * d + k] -= h * psi[a * d + k];
                    }
                }
                for y in 0..ny {
                    if degree[y] == 0.0 {
                        continue;
                    }
                    for k in 0..d {
                        lpsi[y * d + k] += degree[y] * psi[y * d + k];
                    }
                    for j in 0..d {
                        for k in j..d {
                            hess[j * d + k] += psi[y * d + j] * lpsi[y * d + k];
                        }
                    }
                }
            }
            DVectorViewMut::from_slice(grad, d).gemv_tr(
                1.0,
                &q,
                &DVectorView::from_slice(&coefficient, ny),
                1.0,
            );
        }
        for j in 0..d {
            for k in 0..j {
                hess[j * d + k] = hess[k * d + j];
            }
        }
    }

    /// The split pass (gradient, then Hessian from the kept curvatures, sums held per run,
    /// Psi^T by columns) gives the same bits as the cell-by-cell pass, on sparse and dense
    /// contexts, at a size where nalgebra's products take their general paths (|Y| = 24,
    /// d = 8).
    #[test]
    fn split_pass_is_bit_identical_to_the_cell_by_cell_pass() {
        for (contexts, responses, dim) in [(6, 5, 3), (4, 24, 8)] {
            let (inst, lin) = sized_instance(12, (contexts, responses, dim), 1.0);
            let design = PairDesign::new(&lin, contexts, responses);
            let sampler = first_reference_sampler(&inst);
            let mut counts = WinCounts::new(contexts, responses);
            let mut rng = stream(13, "data", 0);
            let mut scratch = PairScratch::default();
            let mut dense = 0;
            // 10 comparisons: every context sparse; 1e6: every context dense.
            for n in [10u64, 1_000, 1_000_000] {
                let extra = n - counts.n;
                sampler.extend(SamplerKind::Counts, &mut counts, extra, &mut rng);
                let mut cells = OccupiedCells::default();
                cells.fill(&counts, true, |_, _, _| true);
                dense += cells
                    .by_context()
                    .filter(|(_, _, l)| DENSE_FRACTION * l.len() >= responses * responses)
                    .count();
                for scale in [0.0, 0.5, 2.0] {
                    let theta: Vec<f64> = lin.theta_star.iter().map(|v| scale * v).collect();
                    let (mut g0, mut h0) = (vec![0.0; dim], vec![0.0; dim * dim]);
                    cell_by_cell_pass(&design, &cells, &theta, &mut g0, &mut h0);
                    let (mut g1, mut h1) = (vec![1.0; dim], vec![1.0; dim * dim]);
                    design.gradient_hessian(&cells, &theta, &mut scratch, &mut g1, &mut h1);
                    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    assert_eq!(bits(&g1), bits(&g0), "gradient, n = {n}, scale {scale}");
                    assert_eq!(bits(&h1), bits(&h0), "Hessian, n = {n}, scale {scale}");
                }
            }
            assert!(dense > 0, "no dense context at {responses} responses");
        }
    }

    /// The shortcut of `cell_margin` at t = 0 relies on exp(-0) being exactly 1 in the
    /// platform's libm, for both zeros.
    #[test]
    fn exp_of_zero_is_exactly_one() {
        for t in [0.0f64, -0.0] {
            assert_eq!((-t.abs()).exp().to_bits(), 1.0f64.to_bits(), "{t}");
        }
    }

    #[test]
    #[should_panic(expected = "without a gradient pass")]
    fn hessian_refuses_curvatures_of_another_theta() {
        let (inst, lin) = linear_instance(1.0);
        let design = PairDesign::new(&lin, inst.contexts, inst.responses);
        let mut counts = WinCounts::new(inst.contexts, inst.responses);
        first_reference_sampler(&inst).extend(
            SamplerKind::Counts,
            &mut counts,
            1000,
            &mut stream(14, "data", 0),
        );
        let mut cells = OccupiedCells::default();
        cells.fill(&counts, true, |_, _, _| true);
        let mut scratch = PairScratch::default();
        let (mut g, mut h) = (vec![0.0; 3], vec![0.0; 9]);
        design.gradient(&cells, &[0.1, 0.2, 0.3], &mut scratch, &mut g);
        design.hessian(&cells, &[0.1, 0.2, 0.4], &mut scratch, &mut h);
    }

    fn check_structured_kernel(
        inst: &crate::instance::Instance,
        lin: &LinearReward,
        counts: &WinCounts,
    ) {
        let design = PairDesign::new(lin, inst.contexts, inst.responses);
        let mut cells = OccupiedCells::default();
        cells.fill(counts, true, |_, _, _| true);
        let theta = [0.3, -0.7, 0.2];
        let (d, ny) = (3, inst.responses);
        let (mut grad, mut hess) = (vec![0.0; d], vec![0.0; d * d]);
        let mut scratch = PairScratch::default();
        design.gradient_hessian(&cells, &theta, &mut scratch, &mut grad, &mut hess);
        let (mut g0, mut h0) = (vec![0.0; d], vec![0.0; d * d]);
        let phi = |x: usize, y: usize| &lin.features[(x * ny + y) * d..(x * ny + y + 1) * d];
        let pr = pairs(ny);
        let n = cells.informative;
        for x in 0..inst.contexts {
            for (p, &(a, b)) in pr.iter().enumerate() {
                let w = counts.wins[x * pr.len() + p];
                let z: Vec<f64> = phi(x, a)
                    .iter()
                    .zip(phi(x, b))
                    .map(|(u, v)| u - v)
                    .collect();
                let t: f64 = z.iter().zip(&theta).map(|(u, v)| u * v).sum();
                let (c, h) = pair_derivatives([w[0] as f64 / n, w[1] as f64 / n], t);
                for j in 0..d {
                    g0[j] += c * z[j];
                    for k in 0..d {
                        h0[j * d + k] += h * z[j] * z[k];
                    }
                }
            }
        }
        let scale = h0.iter().chain(&g0).fold(0.0f64, |m, v| m.max(v.abs()));
        for (u, v) in grad.iter().zip(&g0).chain(hess.iter().zip(&h0)) {
            assert!((u - v).abs() <= 1e-13 * scale, "{u} vs {v}");
        }
        let fitter = LinearFitter::new(lin, inst.contexts, inst.responses, 1e-10);
        for j in 0..d {
            let mut tp = theta;
            let mut tm = theta;
            tp[j] += 1e-6;
            tm[j] -= 1e-6;
            let fd = (fitter.loss(&cells, &mut scratch, &tp, 0.0)
                - fitter.loss(&cells, &mut scratch, &tm, 0.0))
                / 2e-6;
            assert!((fd - grad[j]).abs() <= 1e-8, "{fd} vs {}", grad[j]);
        }
    }

    /// The exponentials shared between the loss and the gradient at the same theta change
    /// nothing: every order of calls gives bit-identical gradients, Hessians and losses to a
    /// fresh scratch, and a refill of the cells (new data) is never served stale values.
    #[test]
    fn shared_exponentials_are_bit_identical_to_fresh_ones() {
        let (inst, lin) = linear_instance(1.0);
        let sampler = first_reference_sampler(&inst);
        let design = PairDesign::new(&lin, inst.contexts, inst.responses);
        let mut counts = WinCounts::new(inst.contexts, inst.responses);
        let mut rng = stream(4, "data", 0);
        let (theta, other) = ([0.3, -0.7, 0.2], [0.1, 0.2, -0.4]);
        let d = 3;
        let fresh = |cells: &OccupiedCells, t: &[f64]| {
            let (mut g, mut h) = (vec![0.0; d], vec![0.0; d * d]);
            design.gradient_hessian(cells, t, &mut PairScratch::default(), &mut g, &mut h);
            let l = design.log_likelihood(cells, t, &mut PairScratch::default());
            (g, h, l.to_bits())
        };
        let mut shared = PairScratch::default();
        let mut cells = OccupiedCells::default();
        // 8 comparisons: sparse contexts; 1e5: dense ones.
        for n in [8, 100_000] {
            let extra = n - counts.n;
            sampler.extend(SamplerKind::Counts, &mut counts, extra, &mut rng);
            cells.fill(&counts, true, |_, _, _| true);
            for t in [&theta, &other, &theta] {
                let (g0, h0, l0) = fresh(&cells, t);
                let (mut g, mut h) = (vec![0.0; d], vec![0.0; d * d]);
                // loss first (fills the cache), then the gradient (reads it), then again.
                let l = design.log_likelihood(&cells, t, &mut shared);
                design.gradient_hessian(&cells, t, &mut shared, &mut g, &mut h);
                assert_eq!(
                    (g.clone(), h.clone(), l.to_bits()),
                    (g0.clone(), h0.clone(), l0)
                );
                design.gradient_hessian(&cells, t, &mut shared, &mut g, &mut h);
                let l = design.log_likelihood(&cells, t, &mut shared);
                assert_eq!((g, h, l.to_bits()), (g0, h0, l0));
            }
        }
    }

    /// A generated linear instance of the given size (theta* of norm 1, B = `bound`).
    fn sized_instance(
        seed: u64,
        (contexts, responses, dim): (usize, usize, usize),
        bound: f64,
    ) -> (crate::instance::Instance, LinearReward) {
        let p = GeneratorParams {
            contexts,
            responses,
            references: 1,
            concentration: 2.0,
            zero_fraction: 0.0,
            context_concentration: None,
            reward: GeneratorReward::Linear {
                dim,
                bound,
                theta_norm: 1.0,
            },
            family: Default::default(),
        };
        let inst = generate(&p, &mut stream(seed, "inst", 0));
        let RewardModel::Linear(l) = inst.reward.clone() else {
            unreachable!()
        };
        (inst, l)
    }

    /// The sizes of the random instances below: sparse and dense contexts, d from 2 to 5.
    const SIZES: [(usize, usize, usize); 3] = [(6, 5, 3), (4, 8, 2), (3, 4, 5)];

    /// A vector of `d` entries uniform in [-scale, scale].
    fn uniform(rng: &mut impl RngExt, d: usize, scale: f64) -> Vec<f64> {
        (0..d)
            .map(|_| scale * (2.0 * rng.random::<f64>() - 1.0))
            .collect()
    }

    /// psi(m) = sum_k m^k / (k + 2)! (the series, summed to convergence: a few eps) against
    /// `curvature_factor`: equal to 1e-12 relative from m = 1e-3 on (its rounding is about
    /// 4 eps / m <= 4.4e-13 there), and never below it under m = 1e-3, where it is the
    /// series bound 1/2 + m/6 + m^2/20, above psi by at most m^2 (1/20 - 1/24) < m^2 / 100.
    #[test]
    fn curvature_factor_is_psi_and_never_below_it_for_small_margins() {
        for m in [
            0.0, 1e-12, 1e-6, 5e-4, 9.99e-4, 1e-3, 1.001e-3, 0.01, 0.3, 1.0, 1.1, 2.0, 5.0,
        ] {
            let (mut series, mut term) = (0.0, 0.5);
            for k in 0..80 {
                series += term;
                term *= m / f64::from(k + 3);
            }
            let psi = curvature_factor(m);
            if m < 1e-3 {
                assert!(
                    psi >= series && psi - series <= m * m / 100.0 + 1e-16,
                    "{m}: {psi} vs {series}"
                );
            } else {
                assert!(
                    (psi / series - 1.0).abs() <= 1e-12,
                    "{m}: {psi} vs {series}"
                );
            }
        }
    }

    /// f(theta - s) - f(theta) in exact form from the raw features: per cell
    /// w_a [ln(1 + e^-t') - ln(1 + e^-t)] + w_b [ln(1 + e^t') - ln(1 + e^t)] with
    /// t' = t - z^T s, written log1p(sigma(-t) expm1(t - t')) + log1p(sigma(t) expm1(t' - t))
    /// (no cancellation however small the step), plus the ridge lambda (||s||^2/2 - theta^T s).
    fn exact_change(
        lin: &LinearReward,
        (contexts, ny): (usize, usize),
        counts: &WinCounts,
        theta: &[f64],
        step: &[f64],
        lambda: f64,
    ) -> f64 {
        let d = lin.dim;
        let phi = |x: usize, y: usize| &lin.features[(x * ny + y) * d..(x * ny + y + 1) * d];
        let sigma = |t: f64| {
            if t >= 0.0 {
                1.0 / (1.0 + (-t).exp())
            } else {
                let e = t.exp();
                e / (1.0 + e)
            }
        };
        let pr = pairs(ny);
        let n: u64 = counts.wins.iter().map(|w| w[0] + w[1]).sum();
        let mut total = 0.0;
        for x in 0..contexts {
            for (p, &(a, b)) in pr.iter().enumerate() {
                let w = counts.wins[x * pr.len() + p];
                if w[0] + w[1] == 0 {
                    continue;
                }
                let (mut t, mut dt) = (0.0, 0.0);
                for k in 0..d {
                    let z = phi(x, a)[k] - phi(x, b)[k];
                    t += z * theta[k];
                    dt += z * step[k];
                }
                // t' - t = -dt.
                total += (w[0] as f64 / n as f64) * (sigma(-t) * dt.exp_m1()).ln_1p()
                    + (w[1] as f64 / n as f64) * (sigma(t) * (-dt).exp_m1()).ln_1p();
            }
        }
        let ridge: f64 = step
            .iter()
            .zip(theta)
            .map(|(s, t)| 0.5 * s * s - t * s)
            .sum();
        total + lambda * ridge
    }

    /// Item 4 of docs/theory.md ("Estimator, linear class"): f(theta - s) - f(theta)
    /// <= -slope + rise for random instances, data (sparse and dense), theta, directions of
    /// every scale and lambda, against the exact change. Tolerance: both sides are sums of at
    /// most 40 cell terms with weights summing to 1, each with a relative rounding of a few
    /// eps, so 1e-13 (1 + |slope| + rise) is far above rounding and far below any error of
    /// the bound. The quadratic model (psi = 1/2) must fail somewhere, or the check would
    /// not see a missing third-order term.
    #[test]
    fn the_certified_step_bound_holds_along_random_directions() {
        let mut rng = stream(21, "test/step_bound", 0);
        let (mut checked, mut quadratic_fails) = (0, 0);
        for (seed, &size) in SIZES.iter().enumerate() {
            let (inst, lin) = sized_instance(seed as u64, size, 1.0);
            let fitter = LinearFitter::new(&lin, inst.contexts, inst.responses, 1e-10);
            let sampler = first_reference_sampler(&inst);
            let mut counts = WinCounts::new(inst.contexts, inst.responses);
            let mut data = stream(seed as u64, "data", 0);
            for n in [8, 1_000, 100_000] {
                let extra = n - counts.n;
                sampler.extend(SamplerKind::Counts, &mut counts, extra, &mut data);
                let mut cells = OccupiedCells::default();
                cells.fill(&counts, true, |_, _, _| true);
                let mut scratch = PairScratch::default();
                for _ in 0..50 {
                    let lambda = [0.0, 0.5][rng.random_range(0..2)];
                    let size = [0.5, 2.0][rng.random_range(0..2)];
                    let theta = uniform(&mut rng, lin.dim, size);
                    let scale = [1e-3, 0.1, 1.0, 3.0][rng.random_range(0..4)];
                    let step = uniform(&mut rng, lin.dim, scale);
                    let mut pass = PassCopy::default();
                    let mut objective =
                        Penalised::new(&fitter, &cells, &mut scratch, &mut pass, lambda);
                    let d = lin.dim;
                    let (mut g, mut h) = (vec![0.0; d], vec![0.0; d * d]);
                    objective.gradient_hessian(&theta, &mut g, &mut h);
                    let decrement: f64 = g.iter().zip(&step).map(|(a, b)| a * b).sum();
                    let b = objective
                        .full_step_bound(&theta, &step, decrement)
                        .expect("at the point of the pass");
                    assert!(objective.full_step_bound(&step, &step, decrement).is_none());
                    let change = exact_change(
                        &lin,
                        (inst.contexts, inst.responses),
                        &counts,
                        &theta,
                        &step,
                        lambda,
                    );
                    let tol = 1e-13 * (1.0 + b.slope.abs() + b.rise);
                    assert!(
                        change <= -b.slope + b.rise + tol,
                        "{change} > {} ({b:?})",
                        b.rise - b.slope
                    );
                    // The quadratic model -slope + s^T (H_L + lambda I) s / 2.
                    let curvature: f64 = h
                        .chunks_exact(d)
                        .zip(&step)
                        .map(|(c, sj)| sj * c.iter().zip(&step).map(|(a, b)| a * b).sum::<f64>())
                        .sum();
                    let quadratic = -b.slope + 0.5 * curvature;
                    quadratic_fails += u32::from(change > quadratic + tol);
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 450);
        assert!(quadratic_fails > 0, "the quadratic model never failed");
    }

    /// Penalised with every certificate audited: when it certifies a step, both values are
    /// computed anyway and the solver's Armijo test must hold.
    struct Audited<'a> {
        inner: Penalised<'a>,
        certified: u32,
    }

    impl Objective for Audited<'_> {
        fn dim(&self) -> usize {
            self.inner.dim()
        }
        fn value(&mut self, x: &[f64]) -> f64 {
            self.inner.value(x)
        }
        fn gradient_hessian(&mut self, x: &[f64], grad: &mut [f64], hess: &mut [f64]) {
            self.inner.gradient_hessian(x, grad, hess);
        }
        fn proceed(&self, x: &[f64]) -> bool {
            self.inner.proceed(x)
        }
        fn certifies_full_step(&mut self, x: &[f64], step: &[f64], decrement: f64) -> bool {
            let yes = self.inner.certifies_full_step(x, step, decrement);
            if yes {
                let f0 = self.inner.value(x);
                let trial: Vec<f64> = x.iter().zip(step).map(|(a, s)| a - s).collect();
                let f1 = self.inner.value(&trial);
                assert!(
                    f1 <= f0 - newton::ARMIJO * decrement,
                    "certified but f1 = {f1} > {f0} - 1e-4 x {decrement}"
                );
                self.certified += 1;
            }
            yes
        }
    }

    /// Over many Newton solves (random instances, nested data, lambda from 0 to 1, cold and
    /// warm starts), every certified full step passes the Armijo test it skips, evaluated.
    #[test]
    fn every_certified_step_passes_the_armijo_test() {
        let mut rng = stream(22, "test/audit", 0);
        let (mut certified, mut solves) = (0, 0);
        let settings = Settings {
            accept_rounding_level: true,
            ..Settings::new(DEFAULT_GRADIENT_TOLERANCE)
        };
        for replication in 0..4u64 {
            for (seed, &size) in SIZES.iter().enumerate() {
                let (inst, lin) = sized_instance(10 * replication + seed as u64, size, 1.0);
                let fitter = LinearFitter::new(&lin, inst.contexts, inst.responses, 1e-10);
                let sampler = first_reference_sampler(&inst);
                let mut counts = WinCounts::new(inst.contexts, inst.responses);
                let mut data = stream(replication, "data", seed as u64);
                let mut warm = vec![0.0; lin.dim];
                for n in [30, 300, 3_000, 30_000, 300_000, 3_000_000] {
                    let extra = n - counts.n;
                    sampler.extend(SamplerKind::Counts, &mut counts, extra, &mut data);
                    let mut cells = OccupiedCells::default();
                    cells.fill(&counts, true, |_, _, _| true);
                    let mut scratch = PairScratch::default();
                    let mut pass = PassCopy::default();
                    for lambda in [0.0, 1e-3, 0.1, 1.0] {
                        for cold in [true, false] {
                            let mut x = if cold {
                                uniform(&mut rng, lin.dim, 0.5)
                            } else {
                                warm.clone()
                            };
                            let mut objective = Audited {
                                inner: Penalised::new(
                                    &fitter,
                                    &cells,
                                    &mut scratch,
                                    &mut pass,
                                    lambda,
                                ),
                                certified: 0,
                            };
                            let mut ws = newton::Workspace::default();
                            newton::minimise(&mut objective, &mut x, &settings, &mut ws);
                            certified += objective.certified;
                            solves += 1;
                            if lambda == 0.0 && !cold && x.iter().all(|v| v.abs() < 1e3) {
                                warm = x;
                            }
                        }
                    }
                }
            }
        }
        assert_eq!(solves, 4 * 3 * 6 * 4 * 2);
        // Not vacuous: most solves end with certified steps.
        assert!(
            certified > solves / 2,
            "{certified} certified in {solves} solves"
        );
    }

    /// Warm-started fits along the nested grid `levels` (as in the engine) by the fitter of
    /// `lin`, with and without certified steps, asserted bit-identical (theta, lambda,
    /// iterations, KKT residual, boundary flag); returns the number of boundary fits and the
    /// tallies with and without.
    fn compare_nested_fits(
        inst: &crate::instance::Instance,
        lin: &LinearReward,
        levels: &[u64],
        data: &mut rand_chacha::ChaCha8Rng,
    ) -> (u32, SolveTally, SolveTally) {
        let on = LinearFitter::new(lin, inst.contexts, inst.responses, 1e-10);
        let off = LinearFitter {
            certify: false,
            ..on.clone()
        };
        let sampler = first_reference_sampler(inst);
        let mut counts = WinCounts::new(inst.contexts, inst.responses);
        let (mut ws_on, mut ws_off) = (FitWorkspace::default(), FitWorkspace::default());
        let mut start = vec![0.0; lin.dim];
        let mut boundary = 0;
        let bits = |f: &LinearFit| {
            (
                f.theta.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                f.lambda.to_bits(),
                f.iterations,
                f.kkt_residual.to_bits(),
                f.on_boundary,
            )
        };
        for &n in levels {
            let extra = n - counts.n;
            sampler.extend(SamplerKind::Counts, &mut counts, extra, data);
            let a = on.fit(&counts, &start, &mut ws_on);
            let b = off.fit(&counts, &start, &mut ws_off);
            assert_eq!(bits(&a), bits(&b), "n = {n}, B = {}", lin.bound);
            boundary += u32::from(a.on_boundary);
            start = a.theta;
        }
        assert_eq!(ws_off.tally().certified, 0);
        (boundary, ws_on.tally(), ws_off.tally())
    }

    /// The fits on nested grids with and without certified steps, bit for bit, for interior
    /// and boundary solutions (B = 1 and B = 0.3 < ||theta*||); the certified fits evaluate
    /// the loss fewer times.
    #[test]
    fn certified_steps_change_no_bit_of_the_fits() {
        let (mut boundary, mut with, mut without, mut certified) = (0, 0, 0, 0);
        for replication in 0..3u64 {
            for (seed, &size) in SIZES.iter().enumerate() {
                let (inst, mut lin) = sized_instance(10 * replication + seed as u64, size, 1.0);
                for bound in [1.0, 0.3] {
                    lin.bound = bound;
                    let levels = [30, 300, 3_000, 30_000, 300_000, 3_000_000, 1_000_000_000];
                    let mut data = stream(replication, "data", seed as u64);
                    let (b, on, off) = compare_nested_fits(&inst, &lin, &levels, &mut data);
                    boundary += b;
                    (with, without) = (with + on.losses, without + off.losses);
                    certified += on.certified;
                }
            }
        }
        assert!(
            boundary > 0,
            "no boundary fit: the boundary solves were not compared"
        );
        assert!(
            certified > 0 && with < without,
            "{certified}: {with} vs {without}"
        );
    }

    /// The gain on a warm-started nested grid like the default suite's (20 contexts, 10
    /// responses, d = 5, n = 1e3 .. 1e9 in 7 levels, 10 replications): the loss evaluations
    /// with and without certified steps (printed; `--nocapture`), identical fits.
    #[test]
    fn certified_steps_skip_loss_evaluations_on_a_nested_grid() {
        let (mut with, mut without, mut certified) = (0, 0, 0);
        let levels: Vec<u64> = (3..=9).map(|k| 10u64.pow(k)).collect();
        for replication in 0..10u64 {
            let (inst, lin) = sized_instance(100 + replication, (20, 10, 5), 1.0);
            let mut data = stream(replication, "data", 0);
            let (_, on, off) = compare_nested_fits(&inst, &lin, &levels, &mut data);
            (with, without) = (with + on.losses, without + off.losses);
            certified += on.certified;
        }
        eprintln!(
            "70 fits: {without} loss evaluations without certificates, {with} with \
             ({certified} certified steps)"
        );
        assert!(with < without, "{with} vs {without}");
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
        let sampler = first_reference_sampler(&inst);
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
