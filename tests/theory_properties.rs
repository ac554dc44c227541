//! Property tests of the exact facts of THEORY.md §1 (D1-D7), the gap identities of §3 and
//! the MRPO comparator of §6, over random single-context instances, through the public API
//! (`mrkl::policy`, `mrkl::gap`, `mrkl::numerics`).
//!
//! Instances: K in 1..=4 references over |Y| in 1..=8 responses. Each reference entry is an
//! exact zero, a tiny value 10^-e (e in 20..=299, so after normalisation entries go down to
//! ~1e-300) or a regular value in [0.05, 1], then the row is normalised. Weights are a vertex
//! of the simplex or a normalised vector with exact zeros and positive entries >= 0.01.
//! Rewards are R u with u in [-1, 1] (ties at -R, 0, R are drawn on purpose), R in (0, 5];
//! gamma is log-uniform in [1e-3, 1e4] with both end points drawn on purpose.
//! RKL instances ("anchored") force one response into the support of every reference with
//! positive weight, so the intersection of supports is non-empty (D4); FKL instances are free.
//!
//! Every property runs `CASES` (4096) cases (PROPTEST_CASES overrides it for stress runs);
//! proptest's failure persistence is off (the suite writes no files), and the seed is random
//! per run unless PROPTEST_RNG_SEED is set. The whole file takes ~1 s in release on 2 cores.
//!
//! Tolerances. All compared quantities are sums of at most ny (K + 2) <= 48 products, each
//! computed with a handful of roundings, so their floating-point error is below ~50 eps times
//! the sum of the absolute values of the terms (the *scale* of the sum). `ROUND = 1e-13`
//! (~450 eps) times (1 + scale) therefore bounds the evaluation error with a 10x margin; a
//! wrong formula gives errors of order one. Policies produced by the library carry one more,
//! unavoidable error: the RKL log policy ln g + gamma r - ln Z is a sum of terms of magnitude
//! up to gamma R + 700, so it is known only to an absolute `lp_err` = 16 eps times that
//! magnitude (gamma r is itself rounded at eps |gamma r|: this is the conditioning of the
//! problem, not a defect). At the optimum the gradient of the objective is constant on the
//! support, so such entry-wise errors move the objective only through sum(pi) - 1, by at most
//! lp_err (|J| + 1/gamma); `jtol` adds that term.
//!
//! Regressions: these properties found four library bugs, now fixed; each keeps a test
//! named after it, and every property also runs a full-range twin (`*_full_range`):
//! - `policy::fkl_policy` returned a wrong root (KKT residual O(1)) when the root
//!   t = gamma (Z~ - r_top) is tiny, i.e. the top-reward response of supp m has a tiny
//!   mixture mass (`fkl_root_with_tiny_top_mass`);
//! - `gap::gaps` (FKL) returned an infinite sub-optimality when pi_hat(y)/pi~(y) < ~1e-16 for
//!   some y in supp m (`fkl_gaps_tiny_policy_ratio`);
//! - `gap::gaps` (RKL) returned inf/NaN once some log-ratio ln pi_hat(y)/pi*(y) exceeded ~700,
//!   e.g. gamma = 710, |Y| = 2 (`rkl_gaps_large_log_ratio`);
//! - `policy::log_harmonic` returned NaN as soon as a weighted reference had a zero
//!   (`harmonic_mean_with_zero_reference_entry`).
//! Findings about THEORY.md (not code bugs):
//! - THEORY D6 ("pi~ is the unique maximiser") holds over policies supported in supp m; a
//!   policy that puts mass on a response outside supp m whose reward exceeds Z~ beats pi~
//!   (`fkl_solution_is_beaten_off_supp_m_when_reward_exceeds_z`; not a code bug).
//! - THEORY §6 says KL(pi||h) upper-bounds the regulariser "by Jensen": true for the
//!   unnormalised harmonic mean H, false for the normalised h (take pi = h;
//!   `normalised_harmonic_mean_is_not_an_upper_bound`; not a code bug).

use mrkl::gap::{GapWorkspace, Gaps, gaps};
use mrkl::numerics::{expm1_minus_x, kl_remainder, log_sum_exp};
use mrkl::policy::{
    Divergence, FKL_MAX_ITERATIONS, FklRoot, Regularizer, fkl_kkt_residual, fkl_objective,
    fkl_policy, log_escort, log_harmonic, mixture, rkl_log_policy, rkl_objective,
    rkl_optimal_value,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::Index;

/// Cases per property (fixed). 4096 cases of all properties take ~1 s in release on 2 cores;
/// the tolerances were also stress-tested with 500k cases per property.
const CASES: u32 = 4096;

const EPS: f64 = f64::EPSILON;

/// Relative evaluation error allowed for sums of products (see the module doc): ~450 eps,
/// 10x the worst-case accumulation over <= 48 terms with a few roundings each.
const ROUND: f64 = 1e-13;

/// `CASES`, unless PROPTEST_CASES is set (for longer stress runs; not used by CI).
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CASES);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ------------------------------------------------------------------------------------------
// Instances
// ------------------------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Inst {
    /// K rows of |Y| probabilities.
    refs: Vec<Vec<f64>>,
    /// Weights (alpha for RKL, beta for FKL) on the simplex.
    w: Vec<f64>,
    /// Reward, |r| <= r_max.
    r: Vec<f64>,
    r_max: f64,
    gamma: f64,
}

impl Inst {
    fn ny(&self) -> usize {
        self.r.len()
    }
    fn refs(&self) -> Vec<&[f64]> {
        self.refs.iter().map(|v| v.as_slice()).collect()
    }
    /// Intersection of the supports of the references with positive weight (D4, RKL).
    fn intersection(&self) -> Vec<bool> {
        (0..self.ny())
            .map(|y| {
                self.refs
                    .iter()
                    .zip(&self.w)
                    .all(|(rf, &a)| a == 0.0 || rf[y] > 0.0)
            })
            .collect()
    }
    /// Union of the supports of the references with positive weight (D4, FKL) = supp m.
    fn union(&self) -> Vec<bool> {
        (0..self.ny())
            .map(|y| {
                self.refs
                    .iter()
                    .zip(&self.w)
                    .any(|(rf, &b)| b > 0.0 && rf[y] > 0.0)
            })
            .collect()
    }
    fn with_weights(&self, w: Vec<f64>) -> Inst {
        Inst { w, ..self.clone() }
    }
}

/// Largest exponent e of a tiny raw entry 10^-e (normalised entries >= 1.25e-300).
const TINY_MAX: i32 = 299;

/// Largest tiny exponent of the moderate-range FKL root/maximiser/gap properties. Tinier
/// entries once broke the FKL root finder (a stalled Newton step fell back to bisection from
/// hi = 1, too slow for roots t below ~1e-44; fixed). The `*_full_range` twins cover entries
/// down to ~1e-300.
const FKL_TINY_SAFE: i32 = 30;

/// A raw reference entry: exact zero, tiny (10^-e, e in 20..=max_e), or regular.
fn entry_up_to(max_e: i32) -> impl Strategy<Value = f64> + Clone {
    prop_oneof![
        3 => Just(0.0),
        2 => (20i32..=max_e).prop_map(|e| 10f64.powi(-e)),
        5 => 0.05f64..=1.0,
    ]
}

fn entry() -> impl Strategy<Value = f64> + Clone {
    entry_up_to(TINY_MAX)
}

/// A raw strictly positive entry: tiny or regular.
fn positive_entry() -> impl Strategy<Value = f64> + Clone {
    prop_oneof![
        2 => (20i32..=TINY_MAX).prop_map(|e| 10f64.powi(-e)),
        5 => 0.05f64..=1.0,
    ]
}

fn vertex(k: usize, i: usize) -> Vec<f64> {
    let mut w = vec![0.0; k];
    w[i] = 1.0;
    w
}

/// Weights on the simplex: a vertex (1 in 4) or a normalised vector with exact zeros; every
/// positive weight is >= 0.04 / 4 = 0.01.
fn weights(k: usize) -> BoxedStrategy<Vec<f64>> {
    prop_oneof![
        1 => (0..k).prop_map(move |i| vertex(k, i)),
        3 => vec(prop_oneof![1 => Just(0.0), 3 => 0.04f64..=1.0], k).prop_map(move |raw| {
            let s: f64 = raw.iter().sum();
            if s == 0.0 {
                vertex(k, 0)
            } else {
                raw.iter().map(|v| v / s).collect()
            }
        }),
    ]
    .boxed()
}

fn unit_reward() -> impl Strategy<Value = f64> {
    prop_oneof![
        6 => -1.0f64..=1.0,
        1 => Just(1.0),
        1 => Just(-1.0),
        1 => Just(0.0),
    ]
}

fn r_max() -> impl Strategy<Value = f64> {
    prop_oneof![1 => Just(5.0), 3 => 0.01f64..=5.0]
}

/// gamma log-uniform in [1e-3, 1e4], end points drawn on purpose.
fn gamma() -> impl Strategy<Value = f64> {
    prop_oneof![
        1 => Just(1e-3),
        1 => Just(1e4),
        8 => (-3.0f64..=4.0).prop_map(|e| 10f64.powf(e)),
    ]
}

#[derive(Clone, Copy, Debug)]
enum Supports {
    /// References may have zeros; one response is forced into the support of every
    /// reference with positive weight (non-empty intersection, RKL).
    Anchored,
    /// References may have zeros anywhere (FKL).
    Free,
    /// As `Free` with tiny entries only down to 10^-FKL_TINY_SAFE.
    FreeModerate,
    /// No zeros at all (tiny entries allowed).
    Full,
}

fn instance(kind: Supports) -> BoxedStrategy<Inst> {
    (1usize..=8, 1usize..=4)
        .prop_flat_map(move |(ny, k)| {
            let cell = match kind {
                Supports::Full => positive_entry().boxed(),
                Supports::FreeModerate => entry_up_to(FKL_TINY_SAFE).boxed(),
                _ => entry().boxed(),
            };
            (
                vec(vec(cell, ny), k),
                weights(k),
                vec(unit_reward(), ny),
                r_max(),
                gamma(),
                0..ny,
                positive_entry(),
            )
        })
        .prop_map(move |(mut raw, w, u, r_max, gamma, anchor, av)| {
            for (row, &a) in raw.iter_mut().zip(&w) {
                let anchored = matches!(kind, Supports::Anchored) && a > 0.0;
                if (anchored && row[anchor] == 0.0) || row.iter().all(|&v| v == 0.0) {
                    row[anchor] = av;
                }
                let s: f64 = row.iter().sum();
                row.iter_mut().for_each(|v| *v /= s);
            }
            Inst {
                refs: raw,
                w,
                r: u.iter().map(|v| r_max * v).collect(),
                r_max,
                gamma,
            }
        })
        .boxed()
}

/// A policy supported exactly on `mask`'s chosen entries: raw[y] on the mask (zeros allowed,
/// but not all), normalised.
fn policy_on(mask: &[bool], raw: &[f64]) -> Vec<f64> {
    let mut pi: Vec<f64> = mask
        .iter()
        .zip(raw)
        .map(|(&m, &v)| if m { v } else { 0.0 })
        .collect();
    if pi.iter().all(|&v| v == 0.0) {
        let first = mask.iter().position(|&m| m).expect("non-empty mask");
        pi[first] = 1.0;
    }
    let s: f64 = pi.iter().sum();
    pi.iter_mut().for_each(|v| *v /= s);
    pi
}

// ------------------------------------------------------------------------------------------
// Independent reference computations and tolerances
// ------------------------------------------------------------------------------------------

/// ln sum exp, written independently of the library (zeros as -inf).
fn lse(a: &[f64]) -> f64 {
    let m = a.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if m == f64::NEG_INFINITY {
        return m;
    }
    m + a.iter().map(|v| (v - m).exp()).sum::<f64>().ln()
}

fn ln0(x: f64) -> f64 {
    if x > 0.0 { x.ln() } else { f64::NEG_INFINITY }
}

/// KL(p || q) with q given in log space; +inf if p has mass where q has none.
fn kl_log(p: &[f64], lq: &[f64]) -> f64 {
    p.iter()
        .zip(lq)
        .filter(|(p, _)| **p > 0.0)
        .map(|(&p, &l)| p * (p.ln() - l))
        .sum()
}

/// Scale of the sum computed by `rkl_objective` at pi (sum of absolute values of its terms).
fn rkl_scale(pi: &[f64], inst: &Inst, r: &[f64]) -> f64 {
    let mut s = 0.0;
    for (y, &p) in pi.iter().enumerate() {
        if p <= 0.0 {
            continue;
        }
        let mut reg = 0.0;
        for (rf, &a) in inst.refs.iter().zip(&inst.w) {
            if a > 0.0 {
                reg += a * (p.ln().abs() + ln0(rf[y]).abs());
            }
        }
        s += p * (r[y].abs() + reg / inst.gamma);
    }
    s
}

/// Scale of the sum computed by `fkl_objective` at pi.
fn fkl_scale(pi: &[f64], inst: &Inst, r: &[f64]) -> f64 {
    let mut s: f64 = pi.iter().zip(r).map(|(p, v)| (p * v).abs()).sum();
    for (rf, &b) in inst.refs.iter().zip(&inst.w) {
        if b > 0.0 {
            for (y, &q) in rf.iter().enumerate() {
                if q > 0.0 {
                    s += b * q * (q.ln().abs() + ln0(pi[y]).abs()) / inst.gamma;
                }
            }
        }
    }
    s
}

/// Tolerance on an objective value J computed at a policy whose entries carry a relative
/// error <= err_norm (module doc): evaluation error ROUND (1 + scale + 1/gamma) plus the
/// first-order effect of the policy's normalisation error, 2 err_norm (|J| + 1/gamma).
fn jtol(scale: f64, j: f64, err_norm: f64, gamma: f64) -> f64 {
    ROUND * (1.0 + scale + 1.0 / gamma) + 2.0 * err_norm * (j.abs() + 1.0 / gamma)
}

/// The library's RKL solution for one instance.
struct Rkl {
    lg: Vec<f64>,
    ln_f: f64,
    lp: Vec<f64>,
    ln_z: f64,
    pi: Vec<f64>,
    /// Absolute error bound of `lp` (module doc): 16 eps max_y (|ln g| + |ln F| + gamma |r| + |ln Z|).
    lp_err: f64,
}

fn rkl_solve(inst: &Inst, r: &[f64]) -> Rkl {
    let ny = inst.ny();
    let mut lg = vec![0.0; ny];
    let ln_f = log_escort(&inst.refs(), &inst.w, &mut lg);
    let mut lp = vec![0.0; ny];
    let ln_z = rkl_log_policy(&lg, r, inst.gamma, &mut lp);
    let pi: Vec<f64> = lp.iter().map(|v| v.exp()).collect();
    let mag = (0..ny)
        .filter(|&y| lg[y].is_finite())
        .map(|y| lg[y].abs() + ln_f.abs() + inst.gamma * r[y].abs() + ln_z.abs())
        .fold(0.0, f64::max);
    Rkl {
        lg,
        ln_f,
        lp,
        ln_z,
        pi,
        lp_err: 16.0 * EPS * mag,
    }
}

/// The library's FKL solution for one instance.
struct Fkl {
    m: Vec<f64>,
    pi: Vec<f64>,
    root: FklRoot,
}

fn fkl_solve(inst: &Inst, r: &[f64]) -> Fkl {
    let ny = inst.ny();
    let mut m = vec![0.0; ny];
    mixture(&inst.refs(), &inst.w, &mut m);
    let mut pi = vec![0.0; ny];
    let root = fkl_policy(&m, r, inst.gamma, &mut pi);
    Fkl { m, pi, root }
}

/// Relative error of the FKL policy entries: the root t is found to ~4 eps relative, each
/// entry m / (t + c_y) / total adds a few roundings.
const FKL_ERR: f64 = 16.0 * EPS;

fn rkl_j(inst: &Inst, pi: &[f64], r: &[f64]) -> f64 {
    rkl_objective(pi, &inst.refs(), &inst.w, r, inst.gamma)
}

fn fkl_j(inst: &Inst, pi: &[f64], r: &[f64]) -> f64 {
    fkl_objective(pi, &inst.refs(), &inst.w, r, inst.gamma)
}

fn support_max(mask: &[bool], r: &[f64]) -> f64 {
    mask.iter()
        .zip(r)
        .filter(|(m, _)| **m)
        .map(|(_, &v)| v)
        .fold(f64::NEG_INFINITY, f64::max)
}

fn abs_dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x * y).abs()).sum()
}

fn diff(a: &[f64], b: &[f64]) -> Vec<f64> {
    a.iter().zip(b).map(|(x, y)| x - y).collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

// ------------------------------------------------------------------------------------------
// Gap checks (shared by the RKL and FKL properties)
// ------------------------------------------------------------------------------------------

fn library_gaps(div: Divergence, inst: &Inst, r_hat: &[f64]) -> (Gaps, Vec<f64>, Vec<f64>) {
    let ny = inst.ny();
    let reg = Regularizer::new(div, &inst.refs, &inst.w, 1, ny);
    let g = gaps(
        &reg,
        &[1.0],
        &inst.r,
        r_hat,
        inst.gamma,
        &mut GapWorkspace::default(),
    );
    let (mut star, mut hat) = (vec![0.0; ny], vec![0.0; ny]);
    reg.policy(&inst.r, inst.gamma, &mut star);
    reg.policy(r_hat, inst.gamma, &mut hat);
    (g, star, hat)
}

/// `strict = false` skips the FKL sub-optimality checks where some response of supp m has
/// pi_hat(y) / pi~(y) < 1e-15: there `gap::gaps` computes ln u as ln_1p(u - 1) with
/// u - 1 rounded to -1, i.e. ln u = -inf and an infinite sub-optimality (a fixed bug,
/// `fkl_gaps_tiny_policy_ratio`); the strict check runs in the full-range property.
fn check_gaps(
    div: Divergence,
    inst: &Inst,
    r_hat: &[f64],
    strict: bool,
) -> Result<(), TestCaseError> {
    let gamma = inst.gamma;
    let (g, star, hat) = library_gaps(div, inst, r_hat);
    let tiny_ratio = div == Divergence::Fkl
        && inst
            .union()
            .iter()
            .zip(star.iter().zip(&hat))
            .any(|(&s, (p, q))| s && q / p < 1e-15);
    if tiny_ratio && !strict {
        prop_assert!(
            g.reward_gap.is_finite() && g.optimality.is_finite(),
            "{g:?}"
        );
    } else {
        prop_assert!(
            g.suboptimality.is_finite() && g.reward_gap.is_finite() && g.optimality.is_finite(),
            "non-finite gaps {g:?} for r_hat = {r_hat:?}"
        );
    }
    // Sub-optimality >= 0 exactly: both remainders (kl_remainder, expm1_minus_x) are sums of
    // non-negative terms, no tolerance needed.
    prop_assert!(g.suboptimality >= 0.0, "negative sub-optimality {g:?}");
    let (j_star, j_hat, tol_direct, support, err) = match div {
        Divergence::Rkl => {
            let s = rkl_solve(inst, &inst.r);
            let h = rkl_solve(inst, r_hat);
            let j_star = rkl_j(inst, &star, &inst.r);
            let j_hat = rkl_j(inst, &hat, &inst.r);
            // pi_hat is optimal for r_hat, not r*: the gradient of J (under r*) at pi_hat is
            // r* - r_hat + const, so its entry errors (relative h.lp_err) move J by up to
            // h.lp_err (sum pi_hat |r* - r_hat| + |const|), hence the extra term.
            let tol = jtol(rkl_scale(&star, inst, &inst.r), j_star, s.lp_err, gamma)
                + jtol(rkl_scale(&hat, inst, &inst.r), j_hat, h.lp_err, gamma)
                + 4.0 * h.lp_err * abs_dot(&hat, &diff(&inst.r, r_hat));
            // D3 in the form gap.rs relies on: sub = KL(pi_hat || pi*) / gamma. The direct KL
            // sum pi_hat (ln pi_hat - ln pi*) has error: the two log policies' absolute errors,
            // plus the relative error of the weights pi_hat = exp(ln pi_hat) (h.lp_err) times
            // the log-ratios (<= kl_scale), plus ROUND x kl_scale; all divided by gamma.
            let kl = kl_log(&h.pi, &s.lp);
            let kl_scale: f64 =
                h.pi.iter()
                    .zip(&h.lp)
                    .zip(&s.lp)
                    .filter(|((p, _), _)| **p > 0.0)
                    .map(|((p, a), b)| p * (a.abs() + b.abs()))
                    .sum();
            let tol_kl =
                (2.0 * (s.lp_err + h.lp_err) + (2.0 * h.lp_err + ROUND) * (1.0 + kl_scale)) / gamma;
            prop_assert!(
                (g.suboptimality - kl / gamma).abs() <= tol_kl,
                "RKL sub {} vs KL/gamma {} (tol {tol_kl})",
                g.suboptimality,
                kl / gamma
            );
            (j_star, j_hat, tol, inst.intersection(), s.lp_err + h.lp_err)
        }
        Divergence::Fkl => {
            let s = fkl_solve(inst, &inst.r);
            let h = fkl_solve(inst, r_hat);
            let j_star = fkl_j(inst, &star, &inst.r);
            let j_hat = fkl_j(inst, &hat, &inst.r);
            // Gradient of J_fkl (under r*) at pi~ is Z~* on supp m; at pi_hat it is
            // r* - r_hat + Z~_hat: entry errors FKL_ERR move J by FKL_ERR times these.
            let z = s.root.z(gamma).abs();
            let z_hat = h.root.z(gamma).abs() + abs_dot(&hat, &diff(&inst.r, r_hat));
            let tol = jtol(
                fkl_scale(&star, inst, &inst.r),
                j_star.abs() + z,
                FKL_ERR,
                gamma,
            ) + jtol(
                fkl_scale(&hat, inst, &inst.r),
                j_hat.abs() + z_hat,
                FKL_ERR,
                gamma,
            );
            (j_star, j_hat, tol, inst.union(), 2.0 * FKL_ERR)
        }
    };
    // suboptimality = J(pi*) - J(pi_hat) (THEORY §3), both from the library's objective.
    let direct = j_star - j_hat;
    prop_assert!(
        (tiny_ratio && !strict) || (g.suboptimality - direct).abs() <= tol_direct,
        "{div:?} sub {} vs direct J* - J_hat = {j_star} - {j_hat} = {direct} (tol {tol_direct})",
        g.suboptimality
    );
    // reward_gap = |E_pi* r* - E_pi_hat r*|, optimality = max_supp r* - E_pi_hat r*. Both are
    // sums of <= 8 terms of size <= R: error ROUND (1 + R) plus the policies' entry errors
    // (relative `err`), which move each expectation by at most err R.
    let r_max = inst.r_max;
    let tol_r = ROUND * (1.0 + r_max) + 2.0 * err * r_max;
    let rew = (dot(&star, &inst.r) - dot(&hat, &inst.r)).abs();
    prop_assert!(
        (g.reward_gap - rew).abs() <= tol_r,
        "{div:?} reward gap {} vs {rew} (tol {tol_r})",
        g.reward_gap
    );
    let opt = support_max(&support, &inst.r) - dot(&hat, &inst.r);
    prop_assert!(
        (g.optimality - opt).abs() <= tol_r,
        "{div:?} optimality {} vs {opt} (tol {tol_r})",
        g.optimality
    );
    prop_assert!(
        g.optimality >= -tol_r,
        "{div:?} negative optimality {}",
        g.optimality
    );
    Ok(())
}

/// r_hat = r* + s u with u in [-1, 1]^8 and s chosen by `scale`; `cap` bounds gamma |r_hat - r*|.
fn r_hat_of(inst: &Inst, u: &[f64], scale: f64, cap: f64) -> Vec<f64> {
    let s = scale.min(cap / inst.gamma);
    inst.r.iter().zip(u).map(|(r, u)| r + s * u).collect()
}

/// Size of the reward error: 0, or log-uniform in [1e-10, 10].
fn error_scale() -> impl Strategy<Value = f64> {
    prop_oneof![1 => Just(0.0), 6 => (-10.0f64..=1.0).prop_map(|e| 10f64.powf(e))]
}

/// The MRPO harmonic-mean log base, computed independently (with CTRO clipping against
/// reference 0 when clip_eps > 0), for references without zeros.
fn harmonic_reference(inst: &Inst, clip_eps: f64) -> (Vec<f64>, Vec<f64>) {
    let ny = inst.ny();
    let mut ln_h_unnorm = vec![0.0; ny];
    for (y, o) in ln_h_unnorm.iter_mut().enumerate() {
        let lp0 = inst.refs[0][y].ln();
        let terms: Vec<f64> = inst
            .refs
            .iter()
            .zip(&inst.w)
            .enumerate()
            .filter(|(_, (_, w))| **w > 0.0)
            .map(|(i, (rf, &w))| {
                let mut lp = rf[y].ln();
                if i > 0 && clip_eps > 0.0 {
                    lp = lp.max((1.0 + clip_eps) * lp0).min((1.0 - clip_eps) * lp0);
                }
                w.ln() - lp
            })
            .collect();
        *o = -lse(&terms);
    }
    let z = lse(&ln_h_unnorm);
    let normalised = ln_h_unnorm.iter().map(|v| v - z).collect();
    (ln_h_unnorm, normalised)
}

// ------------------------------------------------------------------------------------------
// FKL checks (each run by a property on moderate tiny entries and a twin on the full range,
// see `FKL_TINY_SAFE`)
// ------------------------------------------------------------------------------------------

/// D5: t = gamma (Z~ - r_top) > 0 (i.e. Z~ > max_{supp m} r, checked in t because r_top +
/// t / gamma may round to r_top when t / gamma < ulp(r_top)), Z~ in
/// [E_m r + 1/gamma, r_top + 1/gamma], the policy sums to 1 within 1e-12, everything
/// finite, the root finder stops before its cap, and the KKT residual is <= 1e-10.
fn check_d5_fkl_root(inst: &Inst) -> Result<(), TestCaseError> {
    let gamma = inst.gamma;
    let sol = fkl_solve(&inst, &inst.r);
    let root = sol.root;
    let z = root.z(gamma);
    prop_assert!(
        root.t.is_finite() && root.r_top.is_finite() && z.is_finite(),
        "{root:?}"
    );
    prop_assert!(
        root.iterations < FKL_MAX_ITERATIONS,
        "root finder hit its cap: {root:?}"
    );
    prop_assert!(root.t > 0.0, "t = {} <= 0", root.t);
    let u = inst.union();
    let r_top = support_max(&u, &inst.r);
    prop_assert!(root.r_top == r_top, "r_top {} vs {r_top}", root.r_top);
    let mean_gap: f64 = sol
        .m
        .iter()
        .zip(&inst.r)
        .filter(|(m, _)| **m > 0.0)
        .map(|(m, r)| m * (r_top - r))
        .sum();
    // In t: 1 - gamma E_m[r_top - r] <= t <= 1. The bounds assume sum m = 1; with
    // |sum m - 1| <= 8 eps they move by O(8 eps (1 + gamma E_m[...])), and the root is
    // accurate to ~4 eps relative: ROUND (1 + gamma mean_gap) covers both.
    let tol_t = ROUND * (1.0 + gamma * mean_gap);
    prop_assert!(root.t <= 1.0 + tol_t, "t = {} > 1", root.t);
    prop_assert!(
        root.t >= 1.0 - gamma * mean_gap - tol_t,
        "t = {} < 1 - gamma E_m gap = {}",
        root.t,
        1.0 - gamma * mean_gap
    );
    // The same in Z~: terms of size <= R + 1/gamma with a few roundings each.
    let tol_z = ROUND * (1.0 + inst.r_max + 1.0 / gamma);
    let e_m_r = dot(&sol.m, &inst.r);
    prop_assert!(
        z >= e_m_r + 1.0 / gamma - tol_z,
        "Z~ = {z} < E_m r + 1/gamma = {}",
        e_m_r + 1.0 / gamma
    );
    prop_assert!(
        z <= r_top + 1.0 / gamma + tol_z,
        "Z~ = {z} > r_top + 1/gamma = {}",
        r_top + 1.0 / gamma
    );
    prop_assert!(z >= r_top, "Z~ = {z} < r_top = {r_top}");
    for &p in &sol.pi {
        prop_assert!(p.is_finite() && (0.0..=1.0).contains(&p), "pi~ entry {p}");
    }
    // Sum: the library divides by the computed total, leaving <= 8 eps; 1e-12 as asked.
    let total: f64 = sol.pi.iter().sum();
    prop_assert!((total - 1.0).abs() <= 1e-12, "sum pi~ = {total}");
    // KKT residual: m / (gamma pi~) = (t + c_y) total / gamma, a few roundings of terms of
    // size <= max(1, |Z~|): ~1e-15 relative; 1e-10 as asked (loose).
    let res = fkl_kkt_residual(&sol.m, &inst.r, gamma, &sol.pi, &root);
    prop_assert!(
        res <= 1e-10,
        "KKT residual {res} ({root:?}, pi~ = {:?})",
        sol.pi
    );
    Ok(())
}

/// D6: pi~ maximises J_fkl over policies supported in supp m (the domain of D6, see the
/// module doc for why): random positive policies on supp m, convex combinations
/// (1 - s) pi~ + s q for s in {1e-1, 1e-4, 1e-8} and mass transfers between two responses
/// never beat it beyond jtol(pi~) + jtol(other).
fn check_d6_fkl_maximiser(
    inst: &Inst,
    raw: &[f64],
    a: Index,
    b: Index,
    frac: f64,
) -> Result<(), TestCaseError> {
    let ny = inst.ny();
    let gamma = inst.gamma;
    let u = inst.union();
    let sol = fkl_solve(&inst, &inst.r);
    let z = sol.root.z(gamma);
    let j_star = fkl_j(&inst, &sol.pi, &inst.r);
    prop_assert!(j_star.is_finite(), "J(pi~) = {j_star}");
    let tol_star = jtol(
        fkl_scale(&sol.pi, &inst, &inst.r),
        j_star.abs() + z.abs(),
        FKL_ERR,
        gamma,
    );
    let q = policy_on(&u, &raw[..ny]);
    let mut candidates = vec![q.clone()];
    for s in [1e-1, 1e-4, 1e-8] {
        candidates.push(
            sol.pi
                .iter()
                .zip(&q)
                .map(|(p, q)| (1.0 - s) * p + s * q)
                .collect(),
        );
    }
    let supp: Vec<usize> = (0..ny).filter(|&y| u[y]).collect();
    let (ya, yb) = (supp[a.index(supp.len())], supp[b.index(supp.len())]);
    if ya != yb {
        let mut t = sol.pi.clone();
        let moved = frac * t[yb];
        t[yb] -= moved;
        t[ya] += moved;
        candidates.push(t);
    }
    for c in &candidates {
        let j = fkl_j(&inst, c, &inst.r);
        let tol = tol_star + jtol(fkl_scale(c, &inst, &inst.r), j, 8.0 * EPS, gamma);
        prop_assert!(
            j <= j_star + tol,
            "J(pi) = {j} > J(pi~) = {j_star} (tol {tol}); pi = {c:?}, pi~ = {:?}",
            sol.pi
        );
    }
    Ok(())
}

/// D6 on the whole simplex: a policy may also put mass outside supp m (J_fkl stays finite
/// there). The directional derivative of J_fkl at pi~ towards e_y (y outside supp m) is
/// r(y) - Z~, so pi~ is the maximiser over the whole simplex iff max_{y notin supp m} r(y)
/// <= Z~; when that holds no such policy beats pi~ (and when it fails, a small step
/// towards the best outside response does beat it, by ~s (r(y) - Z~)).
fn check_d6_fkl_off_support_mass(
    inst: &Inst,
    raw: &[f64],
    off: &[f64],
    s: f64,
    extra: f64,
) -> Result<(), TestCaseError> {
    // Append a response that no reference supports, with reward extra * R (extra in [-1, 1],
    // +-1 and 0 drawn on purpose), so that supp m is never the whole of Y.
    let mut inst = inst.clone();
    inst.refs.iter_mut().for_each(|row| row.push(0.0));
    inst.r.push(extra * inst.r_max);
    let inst = &inst;
    let ny = inst.ny();
    let gamma = inst.gamma;
    let u = inst.union();
    let sol = fkl_solve(&inst, &inst.r);
    let z = sol.root.z(gamma);
    let j_star = fkl_j(&inst, &sol.pi, &inst.r);
    let tol_star = jtol(
        fkl_scale(&sol.pi, &inst, &inst.r),
        j_star.abs() + z.abs(),
        FKL_ERR,
        gamma,
    );
    let best_out = (0..ny)
        .filter(|&y| !u[y])
        .max_by(|&a, &b| inst.r[a].total_cmp(&inst.r[b]))
        .unwrap();
    let r_out = inst.r[best_out];
    if r_out <= z {
        let mut pi: Vec<f64> = (0..ny)
            .map(|y| if u[y] { raw[y] } else { off[y] })
            .collect();
        let tot: f64 = pi.iter().sum();
        pi.iter_mut().for_each(|v| *v /= tot);
        let j = fkl_j(&inst, &pi, &inst.r);
        let tol = tol_star + jtol(fkl_scale(&pi, &inst, &inst.r), j, 8.0 * EPS, gamma);
        prop_assert!(
            j <= j_star + tol,
            "J(pi) = {j} > J(pi~) = {j_star} (tol {tol}), pi = {pi:?}"
        );
    } else {
        // Exact gain of (1 - s) pi~ + s e_out: s r_out - s E_pi~ r + (1/gamma) ln(1 - s)
        // = s (r_out - Z~) + (1/gamma)(s + ln(1 - s)) (using E_pi~ r = Z~ - 1/gamma).
        let gain = s * (r_out - z) + (s + (-s).ln_1p()) / gamma;
        let mut pi: Vec<f64> = sol.pi.iter().map(|p| (1.0 - s) * p).collect();
        pi[best_out] += s;
        let j = fkl_j(&inst, &pi, &inst.r);
        let tol = tol_star + jtol(fkl_scale(&pi, &inst, &inst.r), j, 8.0 * EPS, gamma);
        prop_assert!(
            (j - j_star - gain).abs() <= tol + ROUND * gain.abs(),
            "J(step) - J(pi~) = {} vs predicted gain {gain} (tol {tol})",
            j - j_star
        );
    }
    Ok(())
}

// ------------------------------------------------------------------------------------------
// Properties
// ------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    /// D1: sum_i alpha_i KL(pi || pi_i) = KL(pi || g) - ln F for pi on the intersection;
    /// F <= 1; ln F from `log_escort` equals ln sum_y prod_i pi_i^alpha_i computed with powf;
    /// K = 2: -ln F = (1 - a1) D_{a1}(pi_1 || pi_2).
    #[test]
    fn d1_escort_decomposition(inst in instance(Supports::Anchored), raw in vec(entry(), 8)) {
        let ny = inst.ny();
        let refs = inst.refs();
        let s = inst.intersection();
        let pi = policy_on(&s, &raw[..ny]);
        let mut lg = vec![0.0; ny];
        let ln_f = log_escort(&refs, &inst.w, &mut lg);
        for y in 0..ny {
            prop_assert!(lg[y].is_finite() == s[y], "ln g[{y}] = {} but in intersection = {}", lg[y], s[y]);
        }
        // g is normalised: ln sum g is 0 up to the lse rounding of <= 8 terms (~10 eps) and
        // the subtraction of ln F (eps |ln F|).
        let ln_sum_g = lse(&lg);
        prop_assert!(ln_sum_g.abs() <= ROUND * (1.0 + ln_f.abs()), "ln sum g = {ln_sum_g}");

        let lhs: f64 = refs.iter().zip(&inst.w).filter(|(_, a)| **a > 0.0)
            .map(|(rf, &a)| {
                let lq: Vec<f64> = rf.iter().map(|&q| ln0(q)).collect();
                a * kl_log(&pi, &lq)
            })
            .sum();
        let rhs = kl_log(&pi, &lg) - ln_f;
        // Both sides are sums of <= 8 (K + 2) terms; scale = sum of their absolute values.
        let scale: f64 = (0..ny).filter(|&y| pi[y] > 0.0).map(|y| {
            pi[y] * (2.0 * pi[y].ln().abs() + lg[y].abs()
                + refs.iter().zip(&inst.w).filter(|(_, a)| **a > 0.0)
                    .map(|(rf, a)| a * rf[y].ln().abs()).sum::<f64>())
        }).sum::<f64>() + ln_f.abs();
        let tol = ROUND * (1.0 + scale);
        prop_assert!((lhs - rhs).abs() <= tol,
            "sum alpha KL = {lhs} but KL(pi||g) - ln F = {rhs} (tol {tol}), pi = {pi:?}");

        // F <= 1 (weighted AM-GM): F <= sum_i alpha_i sum_y pi_i(y) = 1 exactly; the computed
        // ln F adds the lse rounding near F ~ 1 (a few eps) and the references' sums differ
        // from 1 by <= 8 eps, hence 1e-14 (~45 eps).
        prop_assert!(ln_f <= 1e-14, "ln F = {ln_f} > 0");

        // Independent ln F: each factor powf is correct to ~1 ulp, products of <= 4 and sums
        // of <= 8 factors add ~12 eps relative; the library's lse of sum_i alpha_i ln pi_i
        // adds eps (|ln F| + 3) per dominant term; ROUND (1 + |ln F|) bounds both.
        let f_direct: f64 = (0..ny).map(|y| {
            refs.iter().zip(&inst.w).filter(|(_, a)| **a > 0.0)
                .map(|(rf, &a)| rf[y].powf(a)).product::<f64>()
        }).sum();
        let tol_f = ROUND * (1.0 + ln_f.abs());
        prop_assert!((ln_f - f_direct.ln()).abs() <= tol_f,
            "ln F = {ln_f} vs ln sum prod pi_i^a_i = {} (tol {tol_f})", f_direct.ln());

        if inst.w.len() == 2 {
            let a1 = inst.w[0];
            if a1 > 0.0 && a1 < 1.0 {
                // D_a(p||q) = 1/(a-1) ln sum p^a q^(1-a). The exponent 1 - a1 differs from
                // w[1] by <= 2 eps, which moves ln F by <= 2 eps |ln pi_2| <= 2 eps
                // (|ln F| + 2.1) / (1 - a1) with 1 - a1 >= 0.038: within ROUND (1 + |ln F|).
                let (p, q) = (&inst.refs[0], &inst.refs[1]);
                let sum: f64 = p.iter().zip(q).map(|(p, q)| p.powf(a1) * q.powf(1.0 - a1)).sum();
                let renyi = sum.ln() / (a1 - 1.0);
                let rhs = (1.0 - a1) * renyi;
                prop_assert!(renyi >= -tol_f, "negative Renyi divergence {renyi}");
                prop_assert!((-ln_f - rhs).abs() <= tol_f,
                    "-ln F = {} vs (1 - a1) D_a1 = {rhs} (a1 = {a1}, tol {tol_f})", -ln_f);
            } else {
                // Vertex: F = sum of one reference = 1, ln F = 0 to ~10 eps.
                prop_assert!(ln_f.abs() <= 1e-14, "vertex ln F = {ln_f}");
            }
        }
    }

    /// D2: the RKL objective of the library's solution equals the closed form
    /// (ln F + ln Z) / gamma, itself equal to (1/gamma) ln sum_y prod pi_i^a_i e^{gamma r}.
    #[test]
    fn d2_rkl_optimal_value(inst in instance(Supports::Anchored)) {
        let sol = rkl_solve(&inst, &inst.r);
        let v = rkl_optimal_value(sol.ln_f, sol.ln_z, inst.gamma);
        let j = rkl_j(&inst, &sol.pi, &inst.r);
        let tol = jtol(rkl_scale(&sol.pi, &inst, &inst.r), v, sol.lp_err, inst.gamma);
        prop_assert!(v.is_finite() && j.is_finite(), "V* = {v}, J(pi*) = {j}");
        prop_assert!((j - v).abs() <= tol, "J(pi*) = {j} vs closed form {v} (tol {tol})");
        // Independent closed form: lse over <= 8 terms of magnitude <= M = 16 eps-accurate,
        // so the absolute error is lp_err, divided by gamma.
        let terms: Vec<f64> = (0..inst.ny()).map(|y| {
            let mut t = inst.gamma * inst.r[y];
            for (rf, &a) in inst.refs.iter().zip(&inst.w) {
                if a > 0.0 { t += a * ln0(rf[y]); }
            }
            t
        }).collect();
        let v2 = lse(&terms) / inst.gamma;
        let tol2 = 2.0 * sol.lp_err / inst.gamma + ROUND * v2.abs();
        prop_assert!((v - v2).abs() <= tol2, "closed form {v} vs direct {v2} (tol {tol2})");
    }

    /// D3: for random policies pi supported on the intersection (the only ones with finite
    /// J_rkl), J(pi*) - J(pi) = KL(pi || pi*) / gamma >= 0. Checked at every gamma with
    /// tolerances that scale with the conditioning: the difference of the two objectives has
    /// error jtol(pi*) + jtol(pi); the KL, computed from the library's log policy, has error
    /// (lp_err + ROUND x its scale) / gamma. At gamma = 1e-3 these are ~1e-6 absolute on
    /// values of order 1e5 (J ~ ln F / gamma); at gamma <= 100 they are ~1e-12.
    #[test]
    fn d3_rkl_optimality_identity(inst in instance(Supports::Anchored), raw in vec(entry(), 8)) {
        let ny = inst.ny();
        let gamma = inst.gamma;
        let pi = policy_on(&inst.intersection(), &raw[..ny]);
        let sol = rkl_solve(&inst, &inst.r);
        let j_star = rkl_j(&inst, &sol.pi, &inst.r);
        let j = rkl_j(&inst, &pi, &inst.r);
        prop_assert!(j.is_finite(), "feasible pi has J = {j}");
        let tol_j = jtol(rkl_scale(&sol.pi, &inst, &inst.r), j_star, sol.lp_err, gamma)
            + jtol(rkl_scale(&pi, &inst, &inst.r), j, 8.0 * EPS, gamma);
        prop_assert!(j_star >= j - tol_j, "J(pi*) = {j_star} < J(pi) = {j} (tol {tol_j}), pi = {pi:?}");
        let kl = kl_log(&pi, &sol.lp);
        let kl_scale: f64 = pi.iter().zip(&sol.lp).filter(|(p, _)| **p > 0.0)
            .map(|(p, l)| p * (p.ln().abs() + l.abs())).sum();
        let tol_kl = (2.0 * sol.lp_err + ROUND * (1.0 + kl_scale)) / gamma;
        prop_assert!(kl >= -tol_kl * gamma, "KL(pi||pi*) = {kl} < 0");
        let diff = j_star - j;
        prop_assert!((diff - kl / gamma).abs() <= tol_j + tol_kl,
            "J* - J = {diff} vs KL/gamma = {} (tol {}), pi = {pi:?}", kl / gamma, tol_j + tol_kl);
    }

    /// D4 (RKL): ln pi*(y) is finite iff y is in the intersection of the supports of the
    /// references with positive weight. Checked in log space because pi*(y) itself may
    /// legitimately underflow to 0 inside the support (gamma r differences up to 1e5); in
    /// probability space only "outside => exactly 0" is checked.
    #[test]
    fn d4_rkl_support_is_intersection(inst in instance(Supports::Anchored)) {
        let s = inst.intersection();
        let sol = rkl_solve(&inst, &inst.r);
        prop_assert!(sol.ln_z.is_finite() && sol.ln_f.is_finite(), "ln Z = {}, ln F = {}", sol.ln_z, sol.ln_f);
        let reg = Regularizer::new(Divergence::Rkl, &inst.refs, &inst.w, 1, inst.ny());
        let mut pi = vec![0.0; inst.ny()];
        reg.policy(&inst.r, inst.gamma, &mut pi);
        for y in 0..inst.ny() {
            prop_assert!(!sol.lp[y].is_nan() && sol.lp[y] <= 0.0, "ln pi*[{y}] = {}", sol.lp[y]);
            prop_assert!(sol.lp[y].is_finite() == s[y],
                "ln pi*[{y}] = {} but in intersection = {}", sol.lp[y], s[y]);
            if !s[y] {
                prop_assert!(pi[y] == 0.0, "pi*[{y}] = {} outside the intersection", pi[y]);
            }
        }
        // The probabilities sum to 1 up to their entry errors (lp_err relative) and 8 eps.
        let total: f64 = pi.iter().sum();
        prop_assert!((total - 1.0).abs() <= 2.0 * sol.lp_err + 8.0 * EPS, "sum pi* = {total}");
    }

    /// D4 (FKL): m(y) > 0 and pi~(y) > 0 iff y is in the union of the supports (beta_i > 0).
    /// No underflow is possible here: m >= 0.01 x 1.25e-300 and t + c_y <= 1 + gamma 2R <= 1e5
    /// + 1, so pi~ >= 1e-307 > f64::MIN_POSITIVE.
    #[test]
    fn d4_fkl_support_is_union(inst in instance(Supports::Free)) {
        let u = inst.union();
        let sol = fkl_solve(&inst, &inst.r);
        for y in 0..inst.ny() {
            prop_assert!((sol.m[y] > 0.0) == u[y], "m[{y}] = {} but in union = {}", sol.m[y], u[y]);
            prop_assert!((sol.pi[y] > 0.0) == u[y], "pi~[{y}] = {} but in union = {}", sol.pi[y], u[y]);
        }
        // Regularizer::policy gives the same policy as fkl_policy on the mixture.
        let reg = Regularizer::new(Divergence::Fkl, &inst.refs, &inst.w, 1, inst.ny());
        let mut pi = vec![0.0; inst.ny()];
        reg.policy(&inst.r, inst.gamma, &mut pi);
        prop_assert!(pi == sol.pi, "Regularizer::policy {pi:?} vs fkl_policy {:?}", sol.pi);
    }

    /// D5: t = gamma (Z~ - r_top) > 0 (i.e. Z~ > max_{supp m} r, checked in t because r_top +
    /// t / gamma may round to r_top when t / gamma < ulp(r_top)), Z~ in
    /// [E_m r + 1/gamma, r_top + 1/gamma], the policy sums to 1 within 1e-12, everything
    /// finite, the root finder stops before its cap, and the KKT residual is <= 1e-10.
    #[test]
    fn d5_fkl_root( inst in instance(Supports::FreeModerate)) {
        check_d5_fkl_root(&inst)?;
    }

    /// As `d5_fkl_root` with tiny reference entries down to 1e-300 (see `FKL_TINY_SAFE`).
    #[test]

    fn d5_fkl_root_full_range( inst in instance(Supports::Free)) {
        check_d5_fkl_root(&inst)?;
    }

    /// D6: pi~ maximises J_fkl over policies supported in supp m (the domain of D6, see the
    /// module doc for why): random positive policies on supp m, convex combinations
    /// (1 - s) pi~ + s q for s in {1e-1, 1e-4, 1e-8} and mass transfers between two responses
    /// never beat it beyond jtol(pi~) + jtol(other).
    #[test]
    fn d6_fkl_maximiser(
        inst in instance(Supports::FreeModerate),
        raw in vec(positive_entry(), 8),
        a in any::<Index>(),
        b in any::<Index>(),
        frac in 1e-9f64..=0.5,
    ) {
        check_d6_fkl_maximiser(&inst, &raw, a, b, frac)?;
    }

    /// As `d6_fkl_maximiser` with tiny reference entries down to 1e-300 (see `FKL_TINY_SAFE`).
    #[test]

    fn d6_fkl_maximiser_full_range(
        inst in instance(Supports::Free),
        raw in vec(positive_entry(), 8),
        a in any::<Index>(),
        b in any::<Index>(),
        frac in 1e-9f64..=0.5,
    ) {
        check_d6_fkl_maximiser(&inst, &raw, a, b, frac)?;
    }

    /// D6 on the whole simplex: a policy may also put mass outside supp m (J_fkl stays finite
    /// there). The directional derivative of J_fkl at pi~ towards e_y (y outside supp m) is
    /// r(y) - Z~, so pi~ is the maximiser over the whole simplex iff max_{y notin supp m} r(y)
    /// <= Z~; when that holds no such policy beats pi~ (and when it fails, a small step
    /// towards the best outside response does beat it, by ~s (r(y) - Z~)).
    #[test]
    fn d6_fkl_off_support_mass(
        inst in instance(Supports::FreeModerate),
        raw in vec(positive_entry(), 9),
        off in vec(entry(), 9),
        s in 1e-6f64..=0.5,
        extra in unit_reward(),
    ) {
        check_d6_fkl_off_support_mass(&inst, &raw, &off, s, extra)?;
    }

    /// As `d6_fkl_off_support_mass` with tiny reference entries down to 1e-300 (see `FKL_TINY_SAFE`).
    #[test]

    fn d6_fkl_off_support_mass_full_range(
        inst in instance(Supports::Free),
        raw in vec(positive_entry(), 9),
        off in vec(entry(), 9),
        s in 1e-6f64..=0.5,
        extra in unit_reward(),
    ) {
        check_d6_fkl_off_support_mass(&inst, &raw, &off, s, extra)?;
    }

    /// D7: at a vertex e_i the RKL and FKL solutions equal the single-reference (K = 1)
    /// solutions with reference i, to 1e-12 relative (they are in fact bit-identical: the
    /// zero-weight terms are skipped or add exact zeros), and the RKL one equals the
    /// independent closed form pi_i e^{gamma r} / Z within lp_err.
    #[test]
    fn d7_vertex_is_single_reference(inst in instance(Supports::Free), i in any::<Index>()) {
        let k = inst.refs.len();
        let i = i.index(k);
        let ny = inst.ny();
        let multi = inst.with_weights(vertex(k, i));
        let single = Inst { refs: vec![inst.refs[i].clone()], w: vec![1.0], ..inst.clone() };
        let close = |a: f64, b: f64| a == b || (a - b).abs() <= 1e-12 * a.abs().max(b.abs());
        let (rm, rs) = (rkl_solve(&multi, &inst.r), rkl_solve(&single, &inst.r));
        let (fm, fs) = (fkl_solve(&multi, &inst.r), fkl_solve(&single, &inst.r));
        let lref: Vec<f64> = (0..ny).map(|y| ln0(inst.refs[i][y]) + inst.gamma * inst.r[y]).collect();
        let lz = lse(&lref);
        for y in 0..ny {
            prop_assert!(close(rm.pi[y], rs.pi[y]) && close(rm.lp[y], rs.lp[y]),
                "RKL vertex {i}: pi[{y}] = {} vs single {}", rm.pi[y], rs.pi[y]);
            prop_assert!(close(fm.pi[y], fs.pi[y]),
                "FKL vertex {i}: pi[{y}] = {} vs single {}", fm.pi[y], fs.pi[y]);
            let ind = lref[y] - lz;
            prop_assert!(ind.is_finite() == rm.lp[y].is_finite(), "support {y}: {ind} vs {}", rm.lp[y]);
            if ind.is_finite() {
                prop_assert!((ind - rm.lp[y]).abs() <= 2.0 * rm.lp_err,
                    "ln pi*[{y}] = {} vs closed form {ind} (tol {})", rm.lp[y], 2.0 * rm.lp_err);
            }
        }
        prop_assert!(close(fm.root.t, fs.root.t), "FKL t {} vs {}", fm.root.t, fs.root.t);
    }

    /// §3 gap identities, RKL (reward errors with gamma |r_hat - r*| <= 300, so every log-ratio
    /// stays below ~600 where the direct objective difference is well conditioned; the
    /// unrestricted case is `gaps_rkl_finite_for_large_reward_errors`).
    #[test]
    fn gaps_rkl_identities(
        inst in instance(Supports::Anchored),
        u in vec(-1.0f64..=1.0, 8),
        scale in error_scale(),
    ) {
        let r_hat = r_hat_of(&inst, &u, scale, 300.0);
        check_gaps(Divergence::Rkl, &inst, &r_hat, true)?;
    }

    /// §3 gap identities, FKL (the FKL identity has no exponential, no cap on the error;
    /// sub-optimality checks skipped where the library's ln u underflows, see `check_gaps`).
    #[test]
    fn gaps_fkl_identities(
        inst in instance(Supports::FreeModerate),
        u in vec(-1.0f64..=1.0, 8),
        scale in error_scale(),
    ) {
        check_gaps(Divergence::Fkl, &inst, &r_hat_of(&inst, &u, scale, f64::INFINITY), false)?;
    }

    /// As `gaps_fkl_identities` with tiny reference entries down to 1e-300 (see `FKL_TINY_SAFE`).
    #[test]

    fn gaps_fkl_identities_full_range(
        inst in instance(Supports::Free),
        u in vec(-1.0f64..=1.0, 8),
        scale in error_scale(),
    ) {
        check_gaps(Divergence::Fkl, &inst, &r_hat_of(&inst, &u, scale, f64::INFINITY), true)?;
    }

    /// Same as `gaps_rkl_identities` with no cap on gamma |r_hat - r*| (up to 1e4 x 10).
    #[test]

    fn gaps_rkl_finite_for_large_reward_errors(
        inst in instance(Supports::Anchored),
        u in vec(-1.0f64..=1.0, 8),
        scale in error_scale(),
    ) {
        let r_hat = r_hat_of(&inst, &u, scale, f64::INFINITY);
        check_gaps(Divergence::Rkl, &inst, &r_hat, true)?;
    }

    /// §6 MRPO, references without zeros: (a) `log_harmonic` equals the independent weighted
    /// harmonic mean (with CTRO clipping against reference 0 when eps > 0); (b) the exact RKL
    /// solution is never beaten by the MRPO policy in the true objective (F1):
    /// J_rkl(pi_mrpo) <= J_rkl(pi*) within jtol; (c) Jensen (HM <= GM): with the
    /// *unnormalised* harmonic mean H = 1 / sum_i alpha_i / pi_i, KL-like sum
    /// sum_y pi ln(pi / H) >= sum_i alpha_i KL(pi || pi_i) for every pi.
    #[test]
    fn mrpo_never_beats_exact_rkl(
        inst in instance(Supports::Full),
        clip in prop_oneof![1 => Just(0.0), 2 => 0.0f64..=0.5],
        raw in vec(positive_entry(), 8),
    ) {
        let ny = inst.ny();
        let gamma = inst.gamma;
        let mut lh = vec![0.0; ny];
        log_harmonic(&inst.refs(), &inst.w, clip, &mut lh);
        let (ln_h_unnorm, lh_ref) = harmonic_reference(&inst, clip);
        // Terms ln w - ln p have magnitude <= 700; lse and the normalisation add a few eps of
        // that: ROUND (1 + max |ln h|).
        let mag = lh_ref.iter().chain(&ln_h_unnorm).map(|v| v.abs()).fold(0.0, f64::max);
        for y in 0..ny {
            prop_assert!((lh[y] - lh_ref[y]).abs() <= ROUND * (1.0 + mag),
                "ln h[{y}] = {} vs {} (clip {clip})", lh[y], lh_ref[y]);
        }
        let mut lp = vec![0.0; ny];
        rkl_log_policy(&lh, &inst.r, gamma, &mut lp);
        let pi_mrpo: Vec<f64> = lp.iter().map(|v| v.exp()).collect();
        let sol = rkl_solve(&inst, &inst.r);
        let j_star = rkl_j(&inst, &sol.pi, &inst.r);
        let j_mrpo = rkl_j(&inst, &pi_mrpo, &inst.r);
        prop_assert!(!j_mrpo.is_nan(), "J(pi_mrpo) is NaN");
        let mrpo_err = 16.0 * EPS * (mag + gamma * inst.r_max + 1.0);
        let tol = jtol(rkl_scale(&sol.pi, &inst, &inst.r), j_star, sol.lp_err, gamma)
            + jtol(rkl_scale(&pi_mrpo, &inst, &inst.r), j_mrpo, mrpo_err, gamma);
        prop_assert!(j_mrpo <= j_star + tol,
            "J(pi_mrpo) = {j_mrpo} > J(pi*) = {j_star} (tol {tol}), clip {clip}");
        if clip == 0.0 {
            let pi = policy_on(&vec![true; ny], &raw[..ny]);
            let upper = kl_log(&pi, &ln_h_unnorm);
            let reg: f64 = inst.refs.iter().zip(&inst.w).filter(|(_, a)| **a > 0.0)
                .map(|(rf, &a)| a * kl_log(&pi, &rf.iter().map(|q| q.ln()).collect::<Vec<_>>()))
                .sum();
            let scale: f64 = (0..ny).map(|y| pi[y] * (2.0 * pi[y].ln().abs() + ln_h_unnorm[y].abs()
                + inst.refs.iter().map(|rf| rf[y].ln().abs()).sum::<f64>())).sum();
            prop_assert!(upper >= reg - ROUND * (1.0 + scale),
                "KL(pi||H) = {upper} < sum alpha KL = {reg}");
        }
    }

    /// Same as (a)/(b) above with zeros in the references.
    #[test]

    fn mrpo_with_zeros_never_beats_exact_rkl(
        inst in instance(Supports::Anchored),
        clip in prop_oneof![1 => Just(0.0), 2 => 0.0f64..=0.5],
    ) {
        let ny = inst.ny();
        let mut lh = vec![0.0; ny];
        log_harmonic(&inst.refs(), &inst.w, clip, &mut lh);
        for y in 0..ny {
            prop_assert!(!lh[y].is_nan() && lh[y] <= 1e-12, "ln h = {lh:?} (clip {clip})");
        }
        if clip == 0.0 {
            // Without clipping h(y) = 0 exactly where some weighted reference is 0.
            let s = inst.intersection();
            for y in 0..ny {
                prop_assert!(lh[y].is_finite() == s[y], "ln h = {lh:?}, intersection {s:?}");
            }
        }
        let mut lp = vec![0.0; ny];
        rkl_log_policy(&lh, &inst.r, inst.gamma, &mut lp);
        let pi_mrpo: Vec<f64> = lp.iter().map(|v| v.exp()).collect();
        let sol = rkl_solve(&inst, &inst.r);
        let j_star = rkl_j(&inst, &sol.pi, &inst.r);
        let j_mrpo = rkl_j(&inst, &pi_mrpo, &inst.r);
        let tol = jtol(rkl_scale(&sol.pi, &inst, &inst.r), j_star, sol.lp_err, inst.gamma) * 2.0;
        prop_assert!(j_mrpo <= j_star + tol, "J(pi_mrpo) = {j_mrpo} > J(pi*) = {j_star}");
    }

    /// numerics: log_sum_exp agrees with the independent lse (-inf entries included) and is
    /// >= the maximum; the two remainders are >= 0 and agree with their direct formulas
    /// where those have no cancellation (|d| >= 0.5: value >= 0.1; the direct formulas have
    /// absolute error <= ~4 eps (1 + |d| e^d + e^d), allowed ROUND (1 + |d| e^d + e^d)).
    #[test]
    fn numerics_kernels(
        a in vec(prop_oneof![1 => Just(f64::NEG_INFINITY), 4 => -800.0f64..=800.0], 1..10),
        d in -40.0f64..=40.0,
    ) {
        let l = log_sum_exp(&a);
        let l2 = lse(&a);
        let m = a.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        prop_assert!(l >= m, "lse {l} < max {m}");
        if m.is_finite() {
            prop_assert!((l - l2).abs() <= ROUND * (1.0 + m.abs()), "lse {l} vs {l2}");
        } else {
            prop_assert!(l == f64::NEG_INFINITY);
        }
        prop_assert!(kl_remainder(d) >= 0.0 && expm1_minus_x(d) >= 0.0, "d = {d}");
        if d.abs() >= 0.5 {
            let u = d.exp();
            let direct_kl = d * u - (u - 1.0);
            let direct_e = u - 1.0 - d;
            let t = ROUND * (1.0 + d.abs() * u + u);
            prop_assert!((kl_remainder(d) - direct_kl).abs() <= t,
                "kl_remainder({d}) = {} vs {direct_kl}", kl_remainder(d));
            prop_assert!((expm1_minus_x(d) - direct_e).abs() <= t,
                "expm1_minus_x({d}) = {} vs {direct_e}", expm1_minus_x(d));
        }
    }
}

// ------------------------------------------------------------------------------------------
// Edge cases
// ------------------------------------------------------------------------------------------

fn inst(refs: Vec<Vec<f64>>, w: Vec<f64>, r: Vec<f64>, gamma: f64) -> Inst {
    let r_max = r.iter().fold(0.0f64, |a, b| a.max(b.abs()));
    Inst {
        refs,
        w,
        r,
        r_max,
        gamma,
    }
}

/// |Y| = 1: both policies are [1], ln F = 0, V* = r, Z~ = r + 1/gamma, every gap is 0.
#[test]
fn single_response() {
    for gamma in [1e-3, 1.0, 1e4] {
        let i = inst(
            vec![vec![1.0], vec![1.0]],
            vec![0.3, 0.7],
            vec![-5.0],
            gamma,
        );
        let r = rkl_solve(&i, &i.r);
        assert_eq!(r.pi, vec![1.0]);
        assert_eq!(r.ln_f, 0.0);
        assert!((rkl_optimal_value(r.ln_f, r.ln_z, gamma) - -5.0).abs() < 1e-12);
        let f = fkl_solve(&i, &i.r);
        assert_eq!(f.pi, vec![1.0]);
        assert_eq!(f.root.t, 1.0);
        assert!((f.root.z(gamma) - (-5.0 + 1.0 / gamma)).abs() <= 1e-12 * (5.0 + 1.0 / gamma));
        for div in [Divergence::Rkl, Divergence::Fkl] {
            // Zero up to the rounding of ln1p(expm1(x)) - x (~eps) inside the RKL identity.
            let (g, _, _) = library_gaps(div, &i, &[3.0]);
            assert!(
                g.suboptimality <= 1e-15 && g.reward_gap <= 1e-14 && g.optimality == 0.0,
                "{div:?} {gamma}: {g:?}"
            );
        }
    }
}

/// K = 1: pi* = pi_1 e^{gamma r} / Z, ln F = 0; equal rewards give pi* = pi~ = pi_1.
#[test]
fn single_reference() {
    let p = vec![0.2, 0.3, 0.5];
    let i = inst(vec![p.clone()], vec![1.0], vec![0.0, 0.0, 0.0], 2.0);
    let r = rkl_solve(&i, &i.r);
    let f = fkl_solve(&i, &i.r);
    assert!(r.ln_f.abs() < 1e-15);
    for y in 0..3 {
        assert!((r.pi[y] - p[y]).abs() < 1e-15);
        assert!((f.pi[y] - p[y]).abs() < 1e-15);
    }
    let i = inst(vec![p.clone()], vec![1.0], vec![1.0, 0.0, -1.0], 2.0);
    let r = rkl_solve(&i, &i.r);
    let w: Vec<f64> = (0..3).map(|y| p[y] * (2.0 * i.r[y]).exp()).collect();
    let z: f64 = w.iter().sum();
    for y in 0..3 {
        assert!((r.pi[y] - w[y] / z).abs() < 1e-15, "{:?}", r.pi);
    }
}

/// gamma at both ends with rewards of magnitude 5: everything finite, the RKL policy is g
/// (pi~ is m) to first order at gamma = 1e-3 and concentrates on the best response at 1e4.
#[test]
fn extreme_gamma() {
    let refs = vec![vec![0.1, 0.2, 0.3, 0.4], vec![0.4, 0.3, 0.2, 0.1]];
    let r = vec![5.0, -5.0, 4.9, -4.9];
    for gamma in [1e-3, 1e4] {
        let i = inst(refs.clone(), vec![0.5, 0.5], r.clone(), gamma);
        let rs = rkl_solve(&i, &i.r);
        let fs = fkl_solve(&i, &i.r);
        assert!(rs.pi.iter().chain(&fs.pi).all(|p| p.is_finite()));
        assert!(rs.lp.iter().all(|l| l.is_finite()));
        let res = fkl_kkt_residual(&fs.m, &i.r, gamma, &fs.pi, &fs.root);
        assert!(res <= 1e-12, "{gamma}: KKT residual {res}");
        assert!((fs.pi.iter().sum::<f64>() - 1.0).abs() <= 1e-14);
        if gamma == 1e-3 {
            // |ln(pi*/g)| <= 2 gamma R = 0.01; pi~/m = 1/(t + c_y) in [1/1.01, 1/0.99].
            for y in 0..4 {
                assert!((rs.lp[y] - rs.lg[y]).abs() <= 0.01 + 1e-12);
                let ratio = fs.pi[y] / fs.m[y];
                assert!((1.0 / 1.01..=1.0 / 0.99).contains(&ratio), "{ratio}");
            }
        } else {
            // ln pi*(y) <= gamma (r(y) - 5) + ln(g(y)/g(0)): response 2 is 1e3 nats down.
            assert!(rs.pi[0] == 1.0 && rs.lp[2] < -999.0, "{:?}", rs.lp);
            // pi~(y) = m(y) / (t + gamma (5 - r(y))) for y != 0: 0.2 / 1001 for response 2.
            assert!((fs.pi[2] - 0.25 / (fs.root.t + 1000.0)).abs() <= 1e-15);
        }
        for div in [Divergence::Rkl, Divergence::Fkl] {
            let (g, _, _) = library_gaps(div, &i, &r);
            assert_eq!(g.suboptimality, 0.0, "{div:?} {gamma}");
        }
    }
}

/// A reference entry of 1e-300 with the top reward and gamma = 1e4 (FKL part: see
/// `fkl_root_with_tiny_top_mass`): the RKL policy puts all its mass on the tiny response
/// (5e4 nats beat 690); with two references the escort keeps the 1e-300 entry to rounding.
#[test]
fn tiny_reference_entry() {
    let gamma = 1e4;
    let i = inst(
        vec![vec![1e-300, 1.0 - 1e-300]],
        vec![1.0],
        vec![5.0, -5.0],
        gamma,
    );
    let r = rkl_solve(&i, &i.r);
    assert_eq!(r.pi[0], 1.0);
    assert!(
        (r.lp[1] - (-1e5 + 690.7755278982137)).abs() <= 1e-9,
        "{:?}",
        r.lp
    );
    // Two references, one with the 1e-300 entry, weights 1/2: ln g(0) - ln g(1) =
    // (ln 1e-300 + ln 0.5 - ln 0.5 - ln(1 - 1e-300)) / 2 = -345.39 nats.
    let i2 = inst(
        vec![vec![1e-300, 1.0 - 1e-300], vec![0.5, 0.5]],
        vec![0.5, 0.5],
        vec![0.0, 0.0],
        1.0,
    );
    let r2 = rkl_solve(&i2, &i2.r);
    assert!((r2.lg[0] - r2.lg[1] - 0.5 * 1e-300f64.ln()).abs() <= 1e-12);
    for div in [Divergence::Rkl, Divergence::Fkl] {
        let (g, _, _) = library_gaps(div, &i2, &[0.1, -0.1]);
        assert!(
            g.suboptimality.is_finite() && g.suboptimality > 0.0,
            "{div:?} {g:?}"
        );
    }
}

/// Identical references: for any weights g = m = h = p, ln F = 0, and both solutions equal
/// the single-reference solution.
#[test]
fn identical_references() {
    let p = vec![0.05, 0.0, 0.15, 0.8];
    let r = vec![0.3, 1.0, -0.2, 0.1];
    for w in [vec![0.2, 0.3, 0.5], vec![0.0, 1.0, 0.0], vec![1.0 / 3.0; 3]] {
        let i = inst(vec![p.clone(); 3], w.clone(), r.clone(), 3.0);
        let single = inst(vec![p.clone()], vec![1.0], r.clone(), 3.0);
        let (a, b) = (rkl_solve(&i, &i.r), rkl_solve(&single, &i.r));
        assert!(a.ln_f.abs() <= 1e-14, "{}", a.ln_f);
        let (c, d) = (fkl_solve(&i, &i.r), fkl_solve(&single, &i.r));
        // sum_i w_i ln p and sum_i w_i p round differently from ln p and p (a few eps of
        // |ln p| <= 3), hence 1e-14 on the policies and 4 eps on the mixture.
        for y in 0..4 {
            assert!((a.pi[y] - b.pi[y]).abs() <= 1e-14, "{w:?}");
            assert!((c.pi[y] - d.pi[y]).abs() <= 1e-14, "{w:?}");
            assert!((c.m[y] - p[y]).abs() <= 4.0 * EPS);
        }
        assert_eq!(a.pi[1], 0.0);
        assert_eq!(c.pi[1], 0.0);
    }
    // log_harmonic of identical full-support references is that reference.
    let q = vec![0.1, 0.2, 0.7];
    let mut lh = vec![0.0; 3];
    log_harmonic(&[&q, &q, &q], &[0.2, 0.3, 0.5], 0.0, &mut lh);
    for y in 0..3 {
        assert!((lh[y].exp() - q[y]).abs() <= 1e-15);
    }
}

/// THEORY D6 caveat (not a library bug): with a single reference [1, 0], r = (0, 5) and
/// gamma = 1, pi~ = (1, 0), Z~ = 1 < r(1) = 5, and the policy (1/2, 1/2), which is feasible
/// (positive on supp m), has J_fkl = 5/2 + ln(1/2) = 1.807 > J_fkl(pi~) = 0.
#[test]
fn fkl_solution_is_beaten_off_supp_m_when_reward_exceeds_z() {
    let i = inst(vec![vec![1.0, 0.0]], vec![1.0], vec![0.0, 5.0], 1.0);
    let f = fkl_solve(&i, &i.r);
    assert_eq!(f.pi, vec![1.0, 0.0]);
    assert!((f.root.z(1.0) - 1.0).abs() < 1e-15);
    let j_star = fkl_j(&i, &f.pi, &i.r);
    let j_half = fkl_j(&i, &[0.5, 0.5], &i.r);
    assert!(j_star.abs() < 1e-15);
    assert!((j_half - (2.5 + 0.5f64.ln())).abs() < 1e-15);
    assert!(j_half > j_star);
}

/// THEORY §6 caveat (not a library bug): KL(pi || h) with the *normalised* harmonic mean h
/// is not an upper bound on sum_i alpha_i KL(pi || pi_i): at pi = h the left side is 0 and the
/// right side is positive whenever the references differ.
#[test]
fn normalised_harmonic_mean_is_not_an_upper_bound() {
    let (p1, p2) = (vec![0.5, 0.5], vec![0.9, 0.1]);
    let mut lh = vec![0.0; 2];
    log_harmonic(&[&p1, &p2], &[0.5, 0.5], 0.0, &mut lh);
    let h: Vec<f64> = lh.iter().map(|v| v.exp()).collect();
    let reg = 0.5 * kl_log(&h, &[0.5f64.ln(), 0.5f64.ln()])
        + 0.5 * kl_log(&h, &[0.9f64.ln(), 0.1f64.ln()]);
    assert!(kl_log(&h, &lh).abs() < 1e-15 && reg > 0.01, "{reg}");
}

/// Minimal reproduction of the gap bug: |Y| = 2, one uniform reference, r* = (1, 0), r_hat =
/// (0, 1). Exact values: sub = tanh(gamma/2), reward_gap = tanh(gamma/2), optimality =
/// sigma(gamma) = 1 - sigma(-gamma). Got (gamma = 710): sub = inf, reward_gap = NaN; (gamma
/// = 1000): both NaN. Cause: in gap.rs `rkl_context`, p * kl_remainder(d) and
/// p * d.exp_m1() with p = pi*(y) ~ e^-gamma (or 0 after underflow) and d ~ gamma > 700.
#[test]
fn rkl_gaps_large_log_ratio() {
    for gamma in [100.0, 710.0, 1000.0, 1e4] {
        let i = inst(vec![vec![0.5, 0.5]], vec![1.0], vec![1.0, 0.0], gamma);
        let (g, _, _) = library_gaps(Divergence::Rkl, &i, &[0.0, 1.0]);
        let want = (gamma / 2.0f64).tanh();
        assert!(
            (g.suboptimality - want).abs() <= 1e-12,
            "gamma {gamma}: sub {} vs {want}",
            g.suboptimality
        );
        assert!(
            (g.reward_gap - want).abs() <= 1e-12,
            "gamma {gamma}: reward gap {} vs {want}",
            g.reward_gap
        );
        assert!((g.optimality - 1.0).abs() <= 1e-12);
    }
}

/// Minimal reproduction of the MRPO bug: refs [0.5, 0.5] and [1, 0], weights (1/2, 1/2),
/// no clipping. Expected ln h = [0, -inf] (h = 0 where a weighted reference is 0, as the
/// doc comment says); got [NaN, NaN]. Same with clipping when the primary reference has
/// the zero (refs [1, 0], [0.5, 0.5], eps = 0.1). Cause: the term ln w - ln 0 = +inf is
/// passed to log_sum_exp, which computes inf - inf = NaN.
#[test]
fn harmonic_mean_with_zero_reference_entry() {
    let mut lh = vec![0.0; 2];
    log_harmonic(&[&[0.5, 0.5], &[1.0, 0.0]], &[0.5, 0.5], 0.0, &mut lh);
    assert_eq!(lh, vec![0.0, f64::NEG_INFINITY]);
    log_harmonic(&[&[1.0, 0.0], &[0.5, 0.5]], &[0.5, 0.5], 0.1, &mut lh);
    assert_eq!(lh, vec![0.0, f64::NEG_INFINITY]);
}

/// Minimal reproduction of the FKL root bug: m = (1e-300, 1), r = (5, -5), gamma = 1e4
/// (one reference [1e-300, 1 - 1e-300]). The root of 1e-300/t + 1/(t + 1e5) = 1 is
/// t = 1.00001e-300, so pi~ = (1 - 1e-5, 1e-5). Got t = 2.489e-60 after
/// FKL_MAX_ITERATIONS = 200 iterations, pi~ = (4.0e-236, 1.0), KKT residual ~2.
/// Cause: Newton reaches the root at iteration 3 with f = +4.6e-17 > 0 (rounding), so
/// lo = t; the next Newton step is below half an ulp of t, next == t == lo fails the
/// `next > lo` test and the code bisects (lo + hi)/2 = 0.5 instead of stopping; bisection
/// halves hi from 1 and cannot get within 4 eps of lo ~ 1e-300 in 200 steps, and the last
/// midpoint is returned. Smaller case: m = (1e-100, 1), r = (1, 0), gamma = 1 gives
/// t = 1.8e-84 instead of 1.0e-50 (there pi~ is still right to ~1e-17 absolute).
#[test]
fn fkl_root_with_tiny_top_mass() {
    let gamma = 1e4;
    let i = inst(
        vec![vec![1e-300, 1.0 - 1e-300]],
        vec![1.0],
        vec![5.0, -5.0],
        gamma,
    );
    let f = fkl_solve(&i, &i.r);
    assert!(f.root.iterations < FKL_MAX_ITERATIONS, "{:?}", f.root);
    // pi~(1) = 1 / (t + 1e5) with t ~ 1e-300: 1e-5 to rounding.
    assert!((f.pi[1] - 1e-5).abs() <= 1e-20, "{:?} {:?}", f.pi, f.root);
    assert!((f.pi[0] - (1.0 - 1e-5)).abs() <= 1e-15, "{:?}", f.pi);
    assert!(f.root.t > 0.0 && f.root.t < 2e-300, "{:?}", f.root);
    assert!(fkl_kkt_residual(&f.m, &i.r, gamma, &f.pi, &f.root) <= 1e-12);
}

/// Minimal reproduction of the FKL gap bug: one reference m = (1e-22, 1 - 1e-22), r* = (5, -5),
/// r_hat = (-5, 5), gamma = 1e4. pi~* = (1 - 1e-5, 1e-5) (t* ~ 1e-22), pi~_hat(0) ~ 1e-27,
/// so u(0) = pi_hat(0)/pi*(0) ~ 1e-27 and the exact sub-optimality is
/// J(pi*) - J(pi_hat) = 9.9987... (computed by `fkl_objective` below). Got +inf.
/// Cause: gap.rs `fkl_context` computes d = ln u as ((num - den) / den).ln_1p(), and
/// (num - den)/den rounds to exactly -1 when num/den < 2^-53, so d = -inf and
/// expm1_minus_x(-inf) = inf.
#[test]
fn fkl_gaps_tiny_policy_ratio() {
    let i = inst(
        vec![vec![1e-22, 1.0 - 1e-22]],
        vec![1.0],
        vec![5.0, -5.0],
        1e4,
    );
    let (g, star, hat) = library_gaps(Divergence::Fkl, &i, &[-5.0, 5.0]);
    let direct = fkl_j(&i, &star, &i.r) - fkl_j(&i, &hat, &i.r);
    assert!(direct.is_finite() && direct > 9.0, "{direct}");
    assert!(
        (g.suboptimality - direct).abs() <= 1e-12 * direct,
        "sub {} vs direct {direct} (pi* = {star:?}, pi_hat = {hat:?})",
        g.suboptimality
    );
}
