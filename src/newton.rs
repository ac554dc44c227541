//! Damped Newton's method with a backtracking (Armijo) line search: the one solver behind the
//! linear-class Bradley-Terry MLE (THEORY §2, [`crate::estimation`]: the interior Newton
//! iterations at a given norm-ball multiplier lambda) and the DPO fits (THEORY §6,
//! "Multi-reference DPO", [`crate::dpo`]: tabular per context and linear).
//!
//! The caller describes the smooth convex objective f through [`Objective`] (value, gradient
//! and Newton matrix written into buffers of a reusable [`Workspace`], optionally a projection
//! of the step, a hook that may stop the solve and a certificate that lets a full step skip
//! the line search) and the convergence test through
//! [`Settings`]; [`minimise`] returns why it stopped ([`Termination`]) with the iteration count
//! and the final criterion ([`NewtonOutcome`]).
//!
//! # Method (formula)
//!
//! At the iterate x, with g = grad f(x) and H the Newton matrix supplied by the objective
//! (the Hessian, including any ridge, multiplier or diagonal shift of the caller):
//!
//! 1. a NaN entry of g: [`Termination::NonFinite`]. Criterion c = max_k |g_k|; if
//!    c <= `tolerance` and no step test is asked for, stop: [`Termination::Converged`] (the H
//!    of that point is never factorised, and never computed by an objective whose pass
//!    splits, [`Objective::gradient`]).
//! 2. Cholesky factorisation H = L L^T ([`Termination::SingularHessian`] if it fails), Newton
//!    step s = H^-1 g, then [`Objective::project_step`] (e.g. onto sum_k s_k = 0).
//! 3. with a step test: c <= `tolerance` and max_k |s_k| <= `step_tolerance` stops:
//!    [`Termination::Converged`].
//! 4. Newton decrement delta = g^T s (non-finite: [`Termination::NonFinite`]). If
//!    delta < [`FULL_STEP_DECREMENT`], the full step x <- x - s is taken without a line search:
//!    inside the region of quadratic convergence it satisfies Armijo's condition anyway, and it
//!    spares objective values that are then at rounding level.
//! 5. otherwise, if [`Objective::certifies_full_step`] holds for (x, s, delta), the full step
//!    x <- x - s is taken without evaluating f: the objective has proved that the line search
//!    below would accept alpha = 1 (the linear MLE: docs/theory.md, "Estimator, linear
//!    class", item 4). f at the new iterate is then unknown, and the next line search
//!    evaluates its f0 afresh (bit-identical to the skipped trial value when f is a
//!    deterministic function of x).
//! 6. otherwise backtracking from f0 = f(x) (reused from the previous accepted trial; NaN:
//!    [`Termination::NonFinite`]): alpha = 1, 1/2, 1/4, ... at most [`MAX_HALVINGS`] times;
//!    the first trial x - alpha s with f(x - alpha s) <= f0 - [`ARMIJO`] alpha delta
//!    (Armijo's sufficient decrease), or with `accept_rounding_level` also
//!    |f(x - alpha s) - f0| <= [`ROUNDING_LEVEL`] max(|f0|, 1e-300) (no decrease is
//!    representable), becomes the next iterate. A NaN trial value fails the test and shortens
//!    the step, and so does +inf unless f0 = +inf (then every trial that is not NaN passes).
//!    No accepted trial: [`Termination::LineSearchFailed`].
//! 7. [`Objective::proceed`] after each line-searched or certified step may end the solve
//!    ([`Termination::Stopped`]); after `max_iterations` iterations:
//!    [`Termination::MaxIterations`].
//!
//! What stays with the callers: the MLE's multiplier search for the norm ball (Moré-Sorensen,
//! in `estimation`) and the meaning of each termination for a fit. The order of the
//! floating-point operations is part of the contract: the committed results of both fits are
//! reproduced bit for bit through this routine.

use nalgebra::{Cholesky, DMatrix, DVector};

/// Newton iterations allowed per solve.
pub const MAX_ITERATIONS: u32 = 100;
/// Armijo sufficient-decrease constant of the line search.
pub const ARMIJO: f64 = 1e-4;
/// Maximum number of step halvings in one line search.
pub const MAX_HALVINGS: u32 = 60;
/// Newton decrement g^T H^-1 g below which the full step is taken without a line search.
pub const FULL_STEP_DECREMENT: f64 = 1e-6;
/// Relative change of the objective treated as no change (with `accept_rounding_level`).
pub const ROUNDING_LEVEL: f64 = 1e-15;

/// The objective of a Newton solve, in R^dim.
pub trait Objective {
    /// The dimension of x.
    fn dim(&self) -> usize;

    /// f(x), as compared by the line search. May be +inf or NaN at trial points (the trial
    /// then fails and the step is halved, module doc); NaN at an iterate ends the solve as
    /// `NonFinite`.
    fn value(&mut self, x: &[f64]) -> f64;

    /// Overwrites `grad` (length dim) with grad f(x) and every entry of `hess` (dim x dim,
    /// column-major; only the lower triangle is read) with the Newton matrix at x.
    fn gradient_hessian(&mut self, x: &[f64], grad: &mut [f64], hess: &mut [f64]);

    /// For an objective whose pass splits: overwrites `grad` with grad f(x) and returns
    /// `true`; the solver then calls [`Objective::hessian`] at the same x only if it needs the
    /// Newton matrix (not when the gradient test stops the solve). The two together must
    /// write what [`Objective::gradient_hessian`] writes. Default: `false`, nothing written,
    /// and the solver calls `gradient_hessian`.
    fn gradient(&mut self, _x: &[f64], _grad: &mut [f64]) -> bool {
        false
    }

    /// The Newton matrix at x, right after [`Objective::gradient`] returned `true` at x.
    fn hessian(&mut self, _x: &[f64], _hess: &mut [f64]) {
        unreachable!("Objective::hessian called although Objective::gradient returned false")
    }

    /// Modifies the Newton step H^-1 g before it is tested and used (default: unchanged).
    fn project_step(&self, _step: &mut DVector<f64>) {}

    /// Called after each step accepted by the line search or certified by
    /// [`Objective::certifies_full_step`], at the new iterate; `false` ends the solve with
    /// [`Termination::Stopped`] (default: always continue).
    fn proceed(&self, _x: &[f64]) -> bool {
        true
    }

    /// Whether the full step x - `step` (the projected Newton step, decrement
    /// `decrement` = g^T step >= [`FULL_STEP_DECREMENT`]) provably passes the line search's
    /// Armijo test at alpha = 1, f(x - step) <= f(x) - [`ARMIJO`] decrement, as the two
    /// values would be computed; then the solver takes it without evaluating f. Called after
    /// the pass at the same x ([`Objective::gradient_hessian`], or [`Objective::gradient`]
    /// and [`Objective::hessian`]). `true` must be a proof, not an
    /// estimate: a wrong `true` changes the iterates (default: `false`, never certified).
    fn certifies_full_step(&mut self, _x: &[f64], _step: &[f64], _decrement: f64) -> bool {
        false
    }
}

/// The convergence test and the variant of the line search.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    /// Bound on the max-norm of the gradient.
    pub tolerance: f64,
    /// With `Some(t)`, convergence also needs the Newton step's max-norm <= t (measured after
    /// the factorisation); with `None` the gradient test alone is applied before it.
    pub step_tolerance: Option<f64>,
    /// Whether the line search also accepts a trial whose value equals f0 to [`ROUNDING_LEVEL`].
    pub accept_rounding_level: bool,
    pub max_iterations: u32,
}

impl Settings {
    /// The gradient test alone, plain Armijo, [`MAX_ITERATIONS`].
    pub fn new(tolerance: f64) -> Self {
        Settings {
            tolerance,
            step_tolerance: None,
            accept_rounding_level: false,
            max_iterations: MAX_ITERATIONS,
        }
    }
}

/// Why [`minimise`] stopped (after argmin's `TerminationReason`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Termination {
    /// The convergence test of [`Settings`] holds at the returned x.
    Converged,
    /// `max_iterations` iterations without meeting the test.
    MaxIterations,
    /// No trial of the line search satisfied the acceptance test in [`MAX_HALVINGS`] halvings;
    /// x is the last iterate (for a convex f: no decrease representable in floating point).
    LineSearchFailed,
    /// A NaN gradient entry, a non-finite Newton decrement or a NaN value at the iterate.
    NonFinite,
    /// The Cholesky factorisation of the Newton matrix failed (not positive definite).
    SingularHessian,
    /// [`Objective::proceed`] returned false.
    Stopped,
}

/// The result of [`minimise`]; the solution itself is left in the caller's x.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NewtonOutcome {
    pub reason: Termination,
    /// Iterations whose step was taken, plus the last one where it ran a line search that
    /// ended the solve (`LineSearchFailed`, `Stopped`); `max_iterations` for `MaxIterations`.
    pub iterations: u32,
    /// max_k |g_k| at the last evaluation of the gradient: at the returned x except after
    /// `MaxIterations` and `Stopped` (then at the iterate before the last step); NaN for a
    /// NaN gradient, or if no iteration ran.
    pub criterion: f64,
}

/// Reusable buffers of [`minimise`] (no allocation once sized, except after a failed
/// factorisation).
#[derive(Clone, Debug)]
pub struct Workspace {
    grad: Vec<f64>,
    hess: DMatrix<f64>,
    step: DVector<f64>,
    trial: Vec<f64>,
}

impl Default for Workspace {
    fn default() -> Self {
        Workspace {
            grad: Vec::new(),
            hess: DMatrix::zeros(0, 0),
            step: DVector::zeros(0),
            trial: Vec::new(),
        }
    }
}

impl Workspace {
    fn prepare(&mut self, d: usize) {
        self.grad.resize(d, 0.0);
        self.trial.resize(d, 0.0);
        if self.hess.shape() != (d, d) {
            self.hess = DMatrix::zeros(d, d);
        }
        if self.step.len() != d {
            self.step = DVector::zeros(d);
        }
    }
}

/// Damped Newton from `x` (overwritten with the last iterate); see the module doc for the
/// method and [`Termination`] for the outcomes.
pub fn minimise<O: Objective + ?Sized>(
    objective: &mut O,
    x: &mut [f64],
    settings: &Settings,
    ws: &mut Workspace,
) -> NewtonOutcome {
    let d = objective.dim();
    assert_eq!(x.len(), d, "x has the wrong dimension");
    ws.prepare(d);
    let stop = |reason, iterations, criterion| NewtonOutcome {
        reason,
        iterations,
        criterion,
    };
    let mut criterion = f64::NAN;
    let mut current: Option<f64> = None;
    for it in 0..settings.max_iterations {
        let split = objective.gradient(x, &mut ws.grad);
        if !split {
            objective.gradient_hessian(x, &mut ws.grad, ws.hess.as_mut_slice());
        }
        if ws.grad.iter().any(|g| g.is_nan()) {
            return stop(Termination::NonFinite, it, f64::NAN);
        }
        criterion = ws.grad.iter().fold(0.0f64, |a, v| a.max(v.abs()));
        let small = criterion <= settings.tolerance;
        if small && settings.step_tolerance.is_none() {
            return stop(Termination::Converged, it, criterion);
        }
        if split {
            objective.hessian(x, ws.hess.as_mut_slice());
        }
        let matrix = std::mem::replace(&mut ws.hess, DMatrix::zeros(0, 0));
        let Some(ch) = Cholesky::new(matrix) else {
            return stop(Termination::SingularHessian, it, criterion);
        };
        ws.step.as_mut_slice().copy_from_slice(&ws.grad);
        ch.solve_mut(&mut ws.step);
        ws.hess = ch.unpack_dirty();
        objective.project_step(&mut ws.step);
        if let Some(step_tolerance) = settings.step_tolerance
            && small
            && ws.step.amax() <= step_tolerance
        {
            return stop(Termination::Converged, it, criterion);
        }
        let decrement: f64 = ws.step.iter().zip(&ws.grad).map(|(s, g)| s * g).sum();
        if !decrement.is_finite() {
            return stop(Termination::NonFinite, it, criterion);
        }
        if decrement < FULL_STEP_DECREMENT {
            x.iter_mut().zip(ws.step.iter()).for_each(|(a, s)| *a -= s);
            current = None;
            continue;
        }
        if objective.certifies_full_step(x, ws.step.as_slice(), decrement) {
            // The trial of alpha = 1 below, x - 1 * s, bit for bit.
            x.iter_mut().zip(ws.step.iter()).for_each(|(a, s)| *a -= s);
            current = None;
            if !objective.proceed(x) {
                return stop(Termination::Stopped, it + 1, criterion);
            }
            continue;
        }
        let f0 = match current {
            Some(f) => f,
            None => objective.value(x),
        };
        if f0.is_nan() {
            return stop(Termination::NonFinite, it, criterion);
        }
        let mut alpha = 1.0;
        let mut accepted = None;
        for _ in 0..MAX_HALVINGS {
            for ((t, a), s) in ws.trial.iter_mut().zip(x.iter()).zip(ws.step.iter()) {
                *t = a - alpha * s;
            }
            let f1 = objective.value(&ws.trial);
            if f1 <= f0 - ARMIJO * alpha * decrement
                || (settings.accept_rounding_level
                    && (f1 - f0).abs() <= ROUNDING_LEVEL * f0.abs().max(1e-300))
            {
                accepted = Some(f1);
                break;
            }
            alpha *= 0.5;
        }
        let Some(f1) = accepted else {
            return stop(Termination::LineSearchFailed, it + 1, criterion);
        };
        x.copy_from_slice(&ws.trial);
        current = Some(f1);
        if !objective.proceed(x) {
            return stop(Termination::Stopped, it + 1, criterion);
        }
    }
    stop(
        Termination::MaxIterations,
        settings.max_iterations,
        criterion,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh workspace per solve.
    fn run<O: Objective>(f: &mut O, x: &mut [f64], settings: Settings) -> NewtonOutcome {
        minimise(f, x, &settings, &mut Workspace::default())
    }

    const TOL: f64 = 1e-10;

    /// f(x) = 1/2 x^T A x - b^T x with A = [[2, 1], [1, 3]] (SPD): minimiser A^-1 b.
    struct Quadratic {
        values: u32,
    }

    const A: [f64; 4] = [2.0, 1.0, 1.0, 3.0];
    const B: [f64; 2] = [1.0, -2.0];

    impl Objective for Quadratic {
        fn dim(&self) -> usize {
            2
        }
        fn value(&mut self, x: &[f64]) -> f64 {
            self.values += 1;
            let ax = [A[0] * x[0] + A[2] * x[1], A[1] * x[0] + A[3] * x[1]];
            0.5 * (x[0] * ax[0] + x[1] * ax[1]) - (B[0] * x[0] + B[1] * x[1])
        }
        fn gradient_hessian(&mut self, x: &[f64], grad: &mut [f64], hess: &mut [f64]) {
            grad[0] = A[0] * x[0] + A[2] * x[1] - B[0];
            grad[1] = A[1] * x[0] + A[3] * x[1] - B[1];
            hess.copy_from_slice(&A);
        }
    }

    /// The quadratic with a split pass: counts the gradients and Hessians asked for.
    struct SplitQuadratic {
        inner: Quadratic,
        gradients: u32,
        hessians: u32,
        /// The x of the last gradient (the Hessian must come at the same x).
        at: Vec<f64>,
    }

    impl Objective for SplitQuadratic {
        fn dim(&self) -> usize {
            2
        }
        fn value(&mut self, x: &[f64]) -> f64 {
            self.inner.value(x)
        }
        fn gradient_hessian(&mut self, _: &[f64], _: &mut [f64], _: &mut [f64]) {
            unreachable!("a split objective is asked for its parts")
        }
        fn gradient(&mut self, x: &[f64], grad: &mut [f64]) -> bool {
            self.gradients += 1;
            self.at = x.to_vec();
            let mut hess = [0.0; 4];
            self.inner.gradient_hessian(x, grad, &mut hess);
            true
        }
        fn hessian(&mut self, x: &[f64], hess: &mut [f64]) {
            assert_eq!(
                x,
                self.at.as_slice(),
                "Hessian at another x than the gradient"
            );
            self.hessians += 1;
            hess.copy_from_slice(&A);
        }
    }

    /// A split pass: the same iterates and outcome as the whole pass, and the Hessian is asked
    /// for at every iterate but the converged one (where the gradient test stops the solve);
    /// with a step test (which needs the step, so the Hessian) at every iterate.
    #[test]
    fn split_pass_skips_the_hessian_of_the_converged_iterate() {
        for step_tolerance in [None, Some(1e-5)] {
            let settings = Settings {
                step_tolerance,
                ..Settings::new(TOL)
            };
            let (mut x0, mut x1) = ([3.0, -1.0], [3.0, -1.0]);
            let whole = run(&mut Quadratic { values: 0 }, &mut x0, settings);
            let mut split = SplitQuadratic {
                inner: Quadratic { values: 0 },
                gradients: 0,
                hessians: 0,
                at: vec![],
            };
            let out = run(&mut split, &mut x1, settings);
            assert_eq!((out, x1), (whole, x0));
            assert_eq!(out.reason, Termination::Converged);
            assert_eq!(split.gradients, out.iterations + 1);
            let expected = out.iterations + u32::from(step_tolerance.is_some());
            assert_eq!(split.hessians, expected, "{step_tolerance:?}");
        }
    }

    /// A one-dimensional objective from closures: value, (gradient, Hessian); `proceed` holds
    /// while x >= floor; the full step is certified at the iterates listed in `certified`.
    struct OneD<V, G> {
        value: V,
        derivatives: G,
        floor: f64,
        values: u32,
        certified: Vec<f64>,
        /// Calls of `certifies_full_step`.
        asked: u32,
    }

    impl<V: FnMut(f64) -> f64, G: FnMut(f64) -> (f64, f64)> Objective for OneD<V, G> {
        fn dim(&self) -> usize {
            1
        }
        fn value(&mut self, x: &[f64]) -> f64 {
            self.values += 1;
            (self.value)(x[0])
        }
        fn gradient_hessian(&mut self, x: &[f64], grad: &mut [f64], hess: &mut [f64]) {
            (grad[0], hess[0]) = (self.derivatives)(x[0]);
        }
        fn proceed(&self, x: &[f64]) -> bool {
            x[0] >= self.floor
        }
        fn certifies_full_step(&mut self, x: &[f64], _step: &[f64], _decrement: f64) -> bool {
            self.asked += 1;
            self.certified.contains(&x[0])
        }
    }

    fn one_d<V: FnMut(f64) -> f64, G: FnMut(f64) -> (f64, f64)>(
        value: V,
        derivatives: G,
    ) -> OneD<V, G> {
        OneD {
            value,
            derivatives,
            floor: f64::NEG_INFINITY,
            values: 0,
            certified: Vec::new(),
            asked: 0,
        }
    }

    /// e^x: the Newton step is 1 everywhere and there is no minimiser.
    fn exponential(scale: f64) -> OneD<impl FnMut(f64) -> f64, impl FnMut(f64) -> (f64, f64)> {
        one_d(
            move |x| scale * x.exp(),
            move |x| (scale * x.exp(), scale * x.exp()),
        )
    }

    #[test]
    fn a_strictly_convex_quadratic_converges_in_one_newton_step() {
        // x* = A^-1 b = (1, -2) [3, -1; -1, 2] / 5 = (1, -1).
        for step_tolerance in [None, Some(1e-5)] {
            let mut f = Quadratic { values: 0 };
            let mut x = [4.0, 7.0];
            let settings = Settings {
                step_tolerance,
                ..Settings::new(1e-12)
            };
            let out = run(&mut f, &mut x, settings);
            assert_eq!(out.reason, Termination::Converged, "{out:?}");
            assert_eq!(out.iterations, 1, "{out:?}");
            assert!(out.criterion <= 1e-12, "{out:?}");
            assert!(
                (x[0] - 1.0).abs() < 1e-14 && (x[1] + 1.0).abs() < 1e-14,
                "{x:?}"
            );
            // The full step passes Armijo at once: f(x) and one trial.
            assert_eq!(f.values, 2);
        }
    }

    #[test]
    fn an_ascent_direction_exhausts_the_halvings() {
        // f(x) = x + x^2/2 at x = 0 with the gradient's sign flipped: the "Newton step" goes
        // uphill, f(alpha) = alpha + alpha^2/2 > 0 = f(0) for every alpha > 0, and f(0) = 0
        // leaves no rounding slack in the Armijo bound.
        for accept_rounding_level in [false, true] {
            let mut f = one_d(|x| x + 0.5 * x * x, |x| (-(1.0 + x), 1.0));
            let mut x = [0.0];
            let settings = Settings {
                accept_rounding_level,
                ..Settings::new(TOL)
            };
            let out = run(&mut f, &mut x, settings);
            assert_eq!(out.reason, Termination::LineSearchFailed, "{out:?}");
            assert_eq!((out.iterations, out.criterion), (1, 1.0));
            assert_eq!(x, [0.0], "a failed line search leaves x");
            assert_eq!(f.values, 1 + MAX_HALVINGS);
        }
    }

    #[test]
    fn an_unbounded_objective_reaches_the_iteration_cap() {
        let mut x = [0.0];
        let settings = Settings {
            max_iterations: 3,
            ..Settings::new(TOL)
        };
        let out = run(&mut exponential(1.0), &mut x, settings);
        assert_eq!(out.reason, Termination::MaxIterations, "{out:?}");
        assert_eq!((out.iterations, x), (3, [-3.0]));
        // Measured before the last step, at x = -2.
        assert_eq!(out.criterion, (-2.0f64).exp());
    }

    #[test]
    fn a_nan_value_or_gradient_is_non_finite() {
        let mut x = [1.0];
        let mut f = one_d(|_| f64::NAN, |x| (x, 1.0));
        let out = run(&mut f, &mut x, Settings::new(TOL));
        assert_eq!(out.reason, Termination::NonFinite, "{out:?}");
        assert_eq!((out.iterations, out.criterion, x), (0, 1.0, [1.0]));
        assert_eq!(f.values, 1);
        // A NaN gradient must not pass the max-norm test (f64::max ignores NaN).
        let out = run(
            &mut one_d(|x| x * x, |_| (f64::NAN, 1.0)),
            &mut x,
            Settings::new(TOL),
        );
        assert_eq!(out.reason, Termination::NonFinite, "{out:?}");
        assert_eq!(out.iterations, 0);
        assert!(out.criterion.is_nan());
    }

    #[test]
    fn an_indefinite_hessian_is_singular() {
        let mut x = [1.0];
        let out = run(
            &mut one_d(|x| -x * x, |x| (-2.0 * x, -2.0)),
            &mut x,
            Settings::new(TOL),
        );
        assert_eq!(out.reason, Termination::SingularHessian, "{out:?}");
        assert_eq!((out.iterations, out.criterion), (0, 2.0));
    }

    #[test]
    fn the_hook_stops_after_a_line_searched_step_and_small_steps_skip_the_line_search() {
        // proceed() refuses x < -1.5, reached after two line-searched steps.
        let mut f = exponential(1.0);
        f.floor = -1.5;
        let mut x = [0.0];
        let out = run(&mut f, &mut x, Settings::new(TOL));
        assert_eq!(out.reason, Termination::Stopped, "{out:?}");
        assert_eq!((out.iterations, x, f.values), (2, [-2.0], 3));
        // From x = -20 the decrement e^x < FULL_STEP_DECREMENT: full steps, no value computed,
        // no hook; the gradient e^x <= 1e-10 first at x = -24.
        let mut x = [-20.0];
        let out = run(&mut f, &mut x, Settings::new(TOL));
        assert_eq!(out.reason, Termination::Converged, "{out:?}");
        assert_eq!((out.iterations, x, f.values), (4, [-24.0], 3));
    }

    #[test]
    fn a_certified_step_skips_the_line_search_and_the_next_one_evaluates_f_afresh() {
        // e^x from 0 with proceed() refusing x < -1.5: without a certificate two line-searched
        // steps and 3 values (test above). With the step at x = 0 certified: no value there,
        // the line search at -1 evaluates f(-1) afresh and f(-2); same iterates and outcome.
        // The certificate is asked at both iterates (decrement e^x >= FULL_STEP_DECREMENT).
        // proceed() also follows a certified step: a floor of -0.5 stops at x = -1, no value.
        for (floor, iterations, end, values, asked) in
            [(-1.5, 2, -2.0, 2, 2), (-0.5, 1, -1.0, 0, 1)]
        {
            let mut f = exponential(1.0);
            f.floor = floor;
            f.certified = vec![0.0];
            let mut x = [0.0];
            let out = run(&mut f, &mut x, Settings::new(TOL));
            assert_eq!(out.reason, Termination::Stopped, "{out:?}");
            assert_eq!(
                (out.iterations, x, f.values, f.asked),
                (iterations, [end], values, asked)
            );
        }
        // Below FULL_STEP_DECREMENT the full step needs no certificate: never asked.
        let mut f = exponential(1.0);
        let mut x = [-20.0];
        let out = run(&mut f, &mut x, Settings::new(TOL));
        assert_eq!(
            (out.reason, out.iterations, f.asked),
            (Termination::Converged, 4, 0)
        );
    }

    #[test]
    fn the_step_test_tells_a_minimiser_from_an_escape_to_infinity() {
        // f = 1e-11 e^x: a gradient below tolerance at x = 0, but the Newton step is 1
        // everywhere (like separable data without ridge in the THEORY §6 fits).
        let mut f = exponential(1e-11);
        let mut x = [0.0];
        let out = run(&mut f, &mut x, Settings::new(TOL));
        assert_eq!(
            (out.reason, out.iterations, x),
            (Termination::Converged, 0, [0.0])
        );
        let settings = Settings {
            step_tolerance: Some(1e-5),
            ..Settings::new(TOL)
        };
        let out = run(&mut f, &mut x, settings);
        assert_eq!(out.reason, Termination::MaxIterations, "{out:?}");
        assert_eq!((out.iterations, x), (MAX_ITERATIONS, [-100.0]));
        // Full steps only (decrement 1e-11 e^x < FULL_STEP_DECREMENT): no value computed.
        assert_eq!(f.values, 0);
    }

    #[test]
    fn the_projected_step_is_the_one_taken_and_tested() {
        // f(x) = 1/2 |x - c|^2 (Newton matrix I) with every step projected onto sum s = 0, as
        // for the tabular DPO class without ridge: the iterates stay on the subspace through
        // the start 0. With the gradient P (x - c) (P the centring projector: f then has a
        // flat direction along 1) the solve converges at P c; with the full gradient x - c it
        // cannot (its mean, -3, never vanishes) and stays at P c, where the projected step is 0.
        struct Centred {
            centre_gradient: bool,
        }
        const C: [f64; 3] = [1.0, 2.0, 6.0];
        impl Objective for Centred {
            fn dim(&self) -> usize {
                3
            }
            fn value(&mut self, x: &[f64]) -> f64 {
                0.5 * x.iter().zip(&C).map(|(a, c)| (a - c).powi(2)).sum::<f64>()
            }
            fn gradient_hessian(&mut self, x: &[f64], grad: &mut [f64], hess: &mut [f64]) {
                grad.iter_mut()
                    .zip(x.iter().zip(&C))
                    .for_each(|(g, (a, c))| *g = a - c);
                if self.centre_gradient {
                    let mean = grad.iter().sum::<f64>() / 3.0;
                    grad.iter_mut().for_each(|g| *g -= mean);
                }
                hess.iter_mut()
                    .enumerate()
                    .for_each(|(i, h)| *h = f64::from(u8::from(i % 4 == 0)));
            }
            fn project_step(&self, step: &mut DVector<f64>) {
                let mean = step.mean();
                step.add_scalar_mut(-mean);
            }
        }
        let settings = Settings {
            step_tolerance: Some(1e-8),
            ..Settings::new(TOL)
        };
        for (centre_gradient, reason, iterations, criterion) in [
            (true, Termination::Converged, 1, 0.0),
            (false, Termination::MaxIterations, MAX_ITERATIONS, 3.0),
        ] {
            let mut x = [0.0; 3];
            let out = run(&mut Centred { centre_gradient }, &mut x, settings);
            assert_eq!(
                (out.reason, out.iterations, out.criterion),
                (reason, iterations, criterion),
                "{out:?}"
            );
            assert_eq!(x, [-2.0, -1.0, 3.0]);
        }
    }
}
