//! Binomial(n, p) draws: the BTPE acceptance-rejection sampler for n min(p, 1 - p) >= 10,
//! BINV inversion below, Knuth's Poisson product when 1 - p rounds to 1.
//!
//! # Formula
//!
//! With p' = min(p, 1 - p) (the draw is reflected, k -> n - k, when p > 1/2):
//!
//! - **BTPE** (Kachitvichyanukul & Schmeiser 1988, "Binomial random variate generation",
//!   Commun. ACM 31(2), 216-222), for n p' >= 10: a triangle, two parallelograms and two
//!   exponential tails majorise the mass function around the mode m = floor(n p' + p');
//!   a point is accepted at once in the triangle, else by the recursion
//!   f(k + 1) / f(k) = (a / (k + 1) - s), s = p' / q, a = s (n + 1) (near the mode), else by
//!   the squeeze on ln f and the Stirling-corrected ln f.
//! - **BINV** (the inversion algorithm of the same paper), for n p' < 10: walk the cdf from
//!   f(0) = q^n with the same recursion.
//! - **Poisson** (Knuth's product of uniforms, e^-lambda threshold), lambda = n p', when
//!   q = 1 - p' equals 1 in floating point.
//!
//! These are the samples of `rand_distr` 0.6's `Binomial` (which picks the same branches),
//! reproduced operation for operation: the same floating-point operations in the same order on
//! the same values, the same random words drawn in the same order (two per BTPE attempt, one
//! per BINV or Poisson attempt, through rand 0.10's `UniformFloat` and `StandardUniform`
//! conversions). Every draw therefore returns the same value and leaves the stream in the same
//! state as `rand_distr::Binomial::new(n, p)?.sample(rng)`, so the committed results stay
//! reproducible; the tests below check this bit for bit over every branch. What is gone is
//! overhead only: one setup instead of the constructor's and the sampler's (which compute the
//! same constants twice), no method enum, no `Uniform` constructors, an exact floor without
//! the libm call, and no overflow asserts where the value is proven in range (the proofs are
//! next to each cast).

// The reference's negated comparisons (`!(u > p1)`) are kept as written: they decide NaN the
// same way.
#![allow(clippy::neg_cmp_op_on_partial_ord)]

use rand::{Rng, RngExt};
use std::cmp::Ordering;

/// n p' below which BINV is used (rand_distr 0.6's `BINV_THRESHOLD`).
const BINV_THRESHOLD: f64 = 10.0;
/// Largest value BINV walks to before it restarts (rand_distr 0.6's `BINV_MAX_X`).
const BINV_MAX_X: u64 = 110;
/// |k - m| up to which BTPE evaluates f(k) / f(m) by the recursion (rand_distr 0.6's
/// `SQUEEZE_THRESHOLD`).
const SQUEEZE_THRESHOLD: u64 = 20;

/// The paths a draw can take, counted in tests only (to check that the bit-identity grid
/// reaches every one of them); `path!` compiles to nothing outside tests.
#[cfg(test)]
#[derive(Clone, Copy, Debug)]
enum Path {
    Poisson,
    Binv,
    Triangle,
    ParallelogramReject,
    LeftTailReject,
    RightTailReject,
    RecursionUp,
    RecursionDown,
    RecursionAtMode,
    RecursionReject,
    SqueezeAccept,
    SqueezeReject,
    FinalReject,
    FinalAccept,
}
#[cfg(test)]
const PATHS: usize = 14;
#[cfg(test)]
thread_local! {
    static PATH_HITS: std::cell::RefCell<[u64; PATHS]> = const { std::cell::RefCell::new([0; PATHS]) };
}
macro_rules! path {
    ($p:ident) => {
        #[cfg(test)]
        PATH_HITS.with(|h| h.borrow_mut()[Path::$p as usize] += 1);
    };
}

/// One Binomial(n, p) draw; 0 without drawing when n = 0 or p <= 0, n when p >= 1.
///
/// # Formula
///
/// The module's: BTPE for n p' >= 10, BINV below, Knuth's Poisson when 1 - p' == 1, with
/// p' = min(p, 1 - p), bit-identical to `rand_distr` 0.6. Panics when p is NaN (as the
/// `rand_distr` constructor's error did).
#[inline]
pub fn binomial<R: Rng + ?Sized>(rng: &mut R, n: u64, p: f64) -> u64 {
    Draw::new(n, p).sample(rng)
}

/// A Binomial(n, p) draw split in two: [`Draw::new`] computes every constant that depends on
/// (n, p) alone, before any random word is drawn; [`Draw::sample`] draws. The draw is
/// [`binomial`]'s, bit for bit: `Draw::new(n, p).sample(rng) == binomial(rng, n, p)`, with the
/// same words consumed.
///
/// The split exists for speed. A BTPE setup is a chain of a square root and five divisions
/// whose latency, not its instruction count, bounds a draw. A caller that knows the
/// parameters of two draws at once (`preference::Sampler::extend_counts`: the win count of a
/// pair cell and the count of the next cell, both fixed by the cell count just drawn)
/// prepares both before sampling either, so that the two chains overlap in the processor,
/// while the random words are still drawn in the reference order.
#[derive(Clone, Copy, Debug)]
pub struct Draw {
    method: Method,
}

#[derive(Clone, Copy, Debug)]
enum Method {
    /// n = 0, p <= 0 or p >= 1: the value, no word drawn.
    Constant(u64),
    /// Knuth's product with threshold e^-lambda (never reflected).
    Poisson {
        exp_lambda: f64,
    },
    /// BINV's constants, and whether the draw is reflected.
    Binv {
        n: u64,
        s: f64,
        r0: f64,
        a: f64,
        flipped: bool,
    },
    Btpe {
        setup: Btpe,
        flipped: bool,
    },
}

impl Draw {
    /// The setup of a Binomial(n, p) draw (no random word is drawn). Panics when p is NaN.
    #[inline(always)]
    pub fn new(n: u64, p: f64) -> Self {
        if n == 0 || p <= 0.0 {
            return Draw {
                method: Method::Constant(0),
            };
        }
        if p >= 1.0 {
            return Draw {
                method: Method::Constant(n),
            };
        }
        assert!(!p.is_nan(), "binomial: p is NaN");
        // p in (0, 1): rand_distr's constructor takes neither its error nor its constant branch.
        let flipped = p > 0.5;
        let p = if flipped { 1.0 - p } else { p };
        let np = n as f64 * p;
        let q = 1.0 - p;
        let method = if np < BINV_THRESHOLD {
            if q == 1.0 {
                // p' is so small that 1 - p' rounds to 1 (p' < 2^-53, so the reflected case,
                // p' = 1 - p >= 2^-53, cannot occur; rand_distr does not reflect here either).
                Method::Poisson {
                    exp_lambda: (-np).exp(),
                }
            } else {
                // BINV's constants (rand_distr 0.6's constructor: r = q^n, s = p / q,
                // a = (n + 1) s).
                let s = p / q;
                Method::Binv {
                    n,
                    s,
                    r0: q.powf(n as f64),
                    a: (n as f64 + 1.0) * s,
                    flipped,
                }
            }
        } else {
            Method::Btpe {
                setup: Btpe::new(n, p, q, np),
                flipped,
            }
        };
        Draw { method }
    }

    /// The draw, from the random words of `rng`.
    #[inline(always)]
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        match self.method {
            Method::Constant(k) => k,
            Method::Poisson { exp_lambda } => {
                path!(Poisson);
                poisson_knuth(rng, exp_lambda)
            }
            Method::Binv {
                n,
                s,
                r0,
                a,
                flipped,
            } => {
                path!(Binv);
                let y = binv(rng, s, r0, a);
                if flipped { n - y } else { y }
            }
            Method::Btpe { ref setup, flipped } => {
                let y = setup.sample(rng);
                if flipped { setup.n - y } else { y }
            }
        }
    }
}

/// floor(x), exact for |x| < 2^63 without the libm call: `x as i64` truncates towards zero
/// (exactly, as |x| < 2^63), the result converts back exactly when |x| < 2^53 (and when
/// 2^53 <= |x| < 2^63, x is an integer, the truncation is x itself), and truncation exceeds
/// x only for negative non-integers, where floor is one less. -0.0 becomes +0.0, which is
/// equal to it (the only use adds 0.5: both give 0.5). Used in BTPE on
/// 2.195 sqrt(n p q) - 4.6 q, which lies in (0, 2^33) (see `btpe`).
#[inline(always)]
fn floor_small(x: f64) -> f64 {
    let t = x as i64 as f64;
    if t > x { t - 1.0 } else { t }
}

/// A uniform of rand 0.10's `UniformFloat<f64>` before scaling: the top 52 bits of one word
/// as the fraction of a number in [1, 2), minus 1: a value in [0, 1), never -0.0.
#[inline(always)]
fn unit<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    f64::from_bits((rng.next_u64() >> 12) | 0x3ff0_0000_0000_0000) - 1.0
}

/// The scale of rand 0.10's `Uniform::new(0.0, high)` (`UniformFloat::new` then
/// `new_bounded`): high, lowered one ulp at a time until scale (1 - eps) + 0 <= high. Panics
/// where `Uniform::new(0.0, high).unwrap()` does (high not positive or not finite).
#[inline(always)]
fn uniform_scale(high: f64) -> f64 {
    // For high > 0, finite is high < inf (`is_finite` compiles to a longer test here).
    assert!(
        0.0 < high && high < f64::INFINITY,
        "binomial: BTPE area {high} not in (0, inf)"
    );
    let max_rand = 1.0 - f64::EPSILON;
    let mut scale = high - 0.0;
    while !(scale * max_rand + 0.0 <= high) {
        scale = f64::from_bits(scale.to_bits() - 1);
    }
    scale
}

/// Knuth's Poisson(lambda) sampler as rand_distr 0.6's `KnuthMethod<f64>`: multiply
/// `StandardUniform` f64s until the product is <= e^-lambda (computed by [`Draw::new`]); the
/// count of factors less one.
#[inline(never)]
fn poisson_knuth<R: Rng + ?Sized>(rng: &mut R, exp_lambda: f64) -> u64 {
    let mut result = 1.0;
    let mut p = rng.random::<f64>();
    while p > exp_lambda {
        p *= rng.random::<f64>();
        result += 1.0;
    }
    (result - 1.0) as u64
}

/// BINV as rand_distr 0.6's `binv`, with the constants of its constructor (r0 = q^n, s = p / q,
/// a = (n + 1) s, computed by [`Draw::new`]), not reflected.
#[inline(never)]
fn binv<R: Rng + ?Sized>(rng: &mut R, s: f64, r0: f64, a: f64) -> u64 {
    'outer: loop {
        let mut r = r0;
        let mut u: f64 = rng.random();
        let mut x = 0;
        while u > r {
            u -= r;
            x += 1;
            if x > BINV_MAX_X {
                continue 'outer;
            }
            r *= a / (x as f64) - s;
        }
        break x;
    }
}

/// Stirling's series correction of ln k! (rand_distr 0.6's `stirling`, the reference's
/// nested form).
#[inline(always)]
fn stirling(a: f64) -> f64 {
    let a2 = a * a;
    (13860. - (462. - (132. - (99. - 140. / a2) / a2) / a2) / a2) / a / 166320.
}

/// Step 5.3 of BTPE: does alpha = ln v exceed ln f(y) / f(m), evaluated with Stirling's
/// corrections (rand_distr 0.6's expression, with its GSL signs)? Kept out of line and cold:
/// inlined, the compiler hoists the loop-invariant Stirling terms of m and n out of the
/// rejection loop, so that every draw pays their ten divisions although few reach this step.
#[cold]
#[inline(never)]
fn final_test_rejects(alpha: f64, y: u64, m: u64, n: u64, x_m: f64, p: f64, q: f64) -> bool {
    let x1 = (y + 1) as f64;
    let f1 = (m + 1) as f64;
    let z = ((n - m) + 1) as f64;
    let w = ((n - y) + 1) as f64;
    let y_sub_m = if y > m {
        (y - m) as f64
    } else {
        -((m - y) as f64)
    };
    alpha
        > x_m * (f1 / x1).ln()
            + (((n - m) as f64) + 0.5) * (z / w).ln()
            + y_sub_m * (w * p / (x1 * q)).ln()
            + stirling(f1)
            + stirling(z)
            - stirling(x1)
            - stirling(w)
}

/// lambda(a) = a (1 + a / 2), the tail rate of BTPE.
#[inline(always)]
fn lambda(a: f64) -> f64 {
    a * (1. + 0.5 * a)
}

/// BTPE as rand_distr 0.6's constructor and `btpe` (not reflected), for p <= 1/2, q = 1 - p,
/// np = n p >= 10: the constants of (n, p) in the struct, the rejection loop in `sample`.
///
/// Ranges used to drop the overflow asserts of `f64_to_u64` (the `as u64` casts below equal
/// it whenever its assert holds; they are shown to hold):
/// - npq = np q >= 10 q >= 5 as q >= 1/2, so 2.195 sqrt(npq) - 4.6 q >= 2.195 sqrt(10 q) -
///   4.6 q > 2.3 on q in [1/2, 1], and npq <= n / 4 < 2^62, so it is < 2.2 * 2^31 < 2^33:
///   `floor_small` is exact there.
/// - f_m = np + p is in [10, 2^63 + 1/2] (np <= 2^64 / 2), so the mode m = f_m as u64 is in
///   range.
/// - x_l = m + 1/2 - p1 > 0: p1 <= 2.195 sqrt(npq) + 1/2 and m > np - 1, so x_l > np - 1 -
///   2.195 sqrt(np) = t^2 - 2.195 t - 1 with t = sqrt(np) >= sqrt(10), which is > 2 (and
///   grows like np, far above the rounding of these O(np) quantities, relative 2^-52).
/// - Region 1: fl(x_m - fl(p1 v) + u) >= x_l >= 0 (v < 1, u >= 0, rounding is monotone) and
///   <= x_m + p1 (u <= p1), finite and < 2^64. Region 2: x = x_l + (u - p1) / c >= x_l, and
///   <= x_l + (p2 - p1) / c = x_l + 2 p1 (to rounding). Region 3: y_tmp = x_l + ln(v) /
///   lambda_l is tested >= 0, and <= x_l as ln v <= 0 (v = 0 gives -inf, rejected).
///   Region 4 casts with saturation, as rand_distr does.
#[derive(Clone, Copy, Debug)]
struct Btpe {
    n: u64,
    p: f64,
    q: f64,
    npq: f64,
    m: u64,
    x_m: f64,
    x_l: f64,
    x_r: f64,
    c: f64,
    p1: f64,
    p2: f64,
    p3: f64,
    lambda_l: f64,
    lambda_r: f64,
    /// The scale of the u sample, `Uniform::new(0, p4)`.
    scale_u: f64,
}

impl Btpe {
    /// The constants: rand_distr's constructor and the sampler's step 0, in their order.
    #[inline(always)]
    fn new(n: u64, p: f64, q: f64, np: f64) -> Self {
        // Constructor: p1, m.
        let npq = np * q;
        let p1 = floor_small(2.195 * npq.sqrt() - 4.6 * q) + 0.5;
        let f_m = np + p;
        debug_assert!((0.0..18_446_744_073_709_551_615.0).contains(&f_m));
        let m = f_m as u64;
        // Sampler, step 0.
        let x_m = (m as f64) + 0.5;
        let x_l = x_m - p1;
        let x_r = x_m + p1;
        let c = 0.134 + 20.5 / (15.3 + (m as f64));
        let p2 = p1 * (1. + 2. * c);
        let lambda_l = lambda((f_m - x_l) / (f_m - x_l * p));
        let lambda_r = lambda((x_r - f_m) / (x_r * q));
        let p3 = p2 + c / lambda_l;
        let p4 = p3 + c / lambda_r;
        debug_assert!(x_l >= 0.0);
        // `Uniform::new(0, p4)`; `Uniform::new(0, 1)` has scale 1 (1 (1 - eps) + 0 <= 1), and
        // its sample unit * 1 + 0 is `unit` itself (unit >= +0, so + 0.0 changes nothing).
        // Likewise unit * scale_u >= +0, so the `+ low` (0.0) of the u sample is dropped.
        let scale_u = uniform_scale(p4);
        Btpe {
            n,
            p,
            q,
            npq,
            m,
            x_m,
            x_l,
            x_r,
            c,
            p1,
            p2,
            p3,
            lambda_l,
            lambda_r,
            scale_u,
        }
    }

    /// The rejection loop: rand_distr's steps 1 to 5.3.
    #[inline(always)]
    #[allow(clippy::many_single_char_names)] // the reference's names
    fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> u64 {
        let Btpe {
            n,
            p,
            q,
            npq,
            m,
            x_m,
            x_l,
            x_r,
            c,
            p1,
            p2,
            p3,
            lambda_l,
            lambda_r,
            scale_u,
        } = *self;
        let mut y: u64;
        loop {
            // Step 1: region 1, the triangle.
            let u = unit(rng) * scale_u;
            let mut v = unit(rng);
            if !(u > p1) {
                y = (x_m - p1 * v + u) as u64;
                path!(Triangle);
                break;
            }
            if !(u > p2) {
                // Step 2: region 2, the parallelograms.
                let x = x_l + (u - p1) / c;
                v = v * c + 1.0 - (x - x_m).abs() / p1;
                if v > 1. {
                    path!(ParallelogramReject);
                    continue;
                }
                y = x as u64;
            } else if !(u > p3) {
                // Step 3: region 3, the left exponential tail.
                let y_tmp = x_l + v.ln() / lambda_l;
                if y_tmp < 0.0 {
                    path!(LeftTailReject);
                    continue;
                }
                y = y_tmp as u64;
                v *= (u - p2) * lambda_l;
            } else {
                // Step 4: region 4, the right exponential tail (the cast saturates).
                y = (x_r - v.ln() / lambda_r) as u64;
                if y > n {
                    path!(RightTailReject);
                    continue;
                }
                v *= (u - p3) * lambda_r;
            }

            // Step 5.0: the method of evaluating f(y).
            let k = y.abs_diff(m);
            if !(k > SQUEEZE_THRESHOLD && (k as f64) < 0.5 * npq - 1.) {
                // Step 5.1: f(y) / f(m) by the recursion from the mode.
                let s = p / q;
                let a = s * (n as f64 + 1.);
                let mut f = 1.0;
                match m.cmp(&y) {
                    Ordering::Less => {
                        path!(RecursionUp);
                        let mut i = m;
                        loop {
                            i += 1;
                            f *= a / (i as f64) - s;
                            if i == y {
                                break;
                            }
                        }
                    }
                    Ordering::Greater => {
                        path!(RecursionDown);
                        let mut i = y;
                        loop {
                            i += 1;
                            f /= a / (i as f64) - s;
                            if i == m {
                                break;
                            }
                        }
                    }
                    Ordering::Equal => {
                        path!(RecursionAtMode);
                    }
                }
                if v > f {
                    path!(RecursionReject);
                    continue;
                }
                break;
            }

            // Step 5.2: the squeeze on ln f(y).
            let k = k as f64;
            let rho = (k / npq) * ((k * (k / 3. + 0.625) + 1. / 6.) / npq + 0.5);
            let t = -0.5 * k * k / npq;
            let alpha = v.ln();
            if alpha < t - rho {
                path!(SqueezeAccept);
                break;
            }
            if alpha > t + rho {
                path!(SqueezeReject);
                continue;
            }

            // Step 5.3: the final test against ln f(y) with Stirling's corrections.
            if final_test_rejects(alpha, y, m, n, x_m, p, q) {
                path!(FinalReject);
                continue;
            }
            path!(FinalAccept);
            break;
        }
        y
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    use rand_distr::{Binomial, Distribution};

    /// The draw as the project made it before this module: rand_distr 0.6 behind the same
    /// trivial cases.
    fn reference<R: Rng + ?Sized>(rng: &mut R, n: u64, p: f64) -> u64 {
        if n == 0 || p <= 0.0 {
            0
        } else if p >= 1.0 {
            n
        } else {
            Binomial::new(n, p).unwrap().sample(rng)
        }
    }

    /// `draws` draws of (n, p) from two copies of one seeded stream, by this module and by
    /// rand_distr: every value equal, and the next word of both streams equal after each draw
    /// (the same number of words consumed). Returns the number of distinct values seen.
    fn check_identical(n: u64, p: f64, seed: u64, draws: usize) -> usize {
        let mut ours = ChaCha8Rng::seed_from_u64(seed);
        let mut theirs = ChaCha8Rng::seed_from_u64(seed);
        let mut seen = std::collections::BTreeSet::new();
        for i in 0..draws {
            let a = binomial(&mut ours, n, p);
            let b = reference(&mut theirs, n, p);
            assert_eq!(a, b, "value differs at draw {i} of (n = {n}, p = {p:e})");
            let (wa, wb) = (ours.clone().next_u64(), theirs.clone().next_u64());
            assert_eq!(
                wa, wb,
                "stream out of step after draw {i} of (n = {n}, p = {p:e})"
            );
            seen.insert(a);
        }
        seen.len()
    }

    fn below(x: f64) -> f64 {
        f64::from_bits(x.to_bits() - 1)
    }
    fn above(x: f64) -> f64 {
        f64::from_bits(x.to_bits() + 1)
    }

    /// Bit-identity over a grid of n (1 to 1e12 and the u64 extremes) and p (1e-12 to
    /// 1 - 1e-12, 0, 1, 1/2 and its neighbours, the smallest p with 1 - p < 1), and at the
    /// BINV threshold n p = 10 from both sides. Also checks that every branch is reached.
    #[test]
    fn draws_are_bit_identical_to_rand_distr_on_every_branch() {
        let ns: [u64; 16] = [
            1,
            2,
            3,
            7,
            10,
            19,
            20,
            21,
            100,
            1_000,
            12_345,
            1_000_000,
            1_000_000_007,
            1_000_000_000_000,
            1 << 53,
            u64::MAX,
        ];
        let ps = [
            0.0,
            -0.5,
            1.0,
            1.5,
            1e-300,
            1e-17,
            f64::EPSILON / 2.0,
            f64::EPSILON,
            1e-12,
            1e-9,
            1e-6,
            1e-3,
            0.01,
            0.05,
            0.1,
            0.2,
            0.3,
            0.4,
            below(0.5),
            0.5,
            above(0.5),
            0.6,
            0.75,
            0.9,
            0.99,
            1.0 - 1e-6,
            1.0 - 1e-12,
            below(1.0),
        ];
        PATH_HITS.with(|h| *h.borrow_mut() = [0; PATHS]);
        let mut seed = 0;
        for &n in &ns {
            for &p in &ps {
                seed += 1;
                let draws = if n > 1 << 40 { 300 } else { 1500 };
                check_identical(n, p, seed, draws);
            }
        }
        // The BINV/BTPE threshold n p' = 10, from both sides and on it, both unreflected and
        // reflected, with small and large n.
        for n in [20u64, 21, 25, 40, 100, 1_000, 1_000_000, 1_000_000_000_000] {
            let p0 = 10.0 / n as f64;
            let mut p = below(below(p0));
            for _ in 0..5 {
                seed += 1;
                check_identical(n, p, seed, 1500);
                if p <= 0.5 {
                    check_identical(n, 1.0 - p, seed, 1500);
                }
                p = above(p);
            }
        }
        // Every path was taken (BINV's restart beyond x = 110, 31 standard deviations out at
        // n p < 10, is the one path no feasible grid reaches).
        let hits = PATH_HITS.with(|h| *h.borrow());
        for (i, &count) in hits.iter().enumerate() {
            assert!(count > 0, "path {i} never taken: {hits:?}");
        }
    }

    /// Long runs at moderate and large n p q, where every BTPE path carries mass, also
    /// identical; the draws spread over many values (a sampler stuck at the mode would fail).
    #[test]
    fn long_runs_are_bit_identical_and_spread() {
        for (n, p) in [
            (40u64, 0.5),
            (100, 0.3),
            (1_000, 0.05),
            (20_000, 0.5),
            (1 << 40, 0.25),
        ] {
            let distinct = check_identical(n, p, n ^ 77, 20_000);
            // 20,000 draws: at sd <= 100 nearly every value within 3 sd of the mean is hit, so
            // more than 4 sd distinct values; at n = 2^40 (sd 4.5e5) about
            // C(20,000, 2) / (2 sqrt(pi) sd) = 124 pairs coincide, far below the 2,000 allowed.
            let sd = (n as f64 * p * (1.0 - p)).sqrt();
            let need = if sd <= 100.0 {
                4.0 * sd
            } else {
                0.9 * 20_000.0
            };
            assert!(
                distinct as f64 > need,
                "{distinct} values at (n = {n}, p = {p})"
            );
        }
    }

    /// `floor_small` equals `f64::floor` on integers, halves, neighbours of integers, negative
    /// values and large magnitudes up to 2^62.
    #[test]
    fn floor_small_is_floor() {
        let mut xs = vec![
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.0,
            -1.0,
            2.3,
            -2.3,
            4.9e9,
            2f64.powi(52) + 1.0,
        ];
        for e in 0..62 {
            let b = 2f64.powi(e);
            for x in [b, below(b), above(b), b + 0.5, b * 1.7] {
                xs.push(x);
                xs.push(-x);
            }
        }
        for x in xs {
            assert_eq!(floor_small(x), x.floor(), "floor of {x:e}");
        }
    }
}
