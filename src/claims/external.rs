//! Exact checks of claims from neighbouring papers (issue "Beyond this paper"), judged like
//! T5.1: an `exact` claim whose `formula` names the check, on the paper's examples plus
//! random instances from the exact checks' seed; no sampling. Each judgement carries the
//! table of the paper's examples (`Details::Table`), which REPORT.md prints.
//!
//! - best-of-n (Beirami et al. 2024, [`crate::best_of_n`], docs/theory.md §9.1-9.4);
//! - IPO against DPO (Azar et al. 2023, [`crate::ipo`], docs/theory.md §9.5-9.7);
//! - pessimism against the greedy MLE policy (Zhu, Jordan, Jiao 2023, [`crate::pessimism`],
//!   docs/theory.md §9.9-9.12): exact expected gaps along an n grid, no random instances.

use super::judgement::{Details, Finding, Judgement, Measure};
use super::registry::{Claim, Formula};
use crate::best_of_n::{self as bon, TieRule};
use crate::streams::stream;
use rand::RngExt;

/// Round-off allowance of the exact checks: the quantities are sums of at most a few
/// hundred terms of size <= ln 4096 computed in log space; 1e-10 is five orders above their
/// rounding and far below any formula error the checks look for.
pub const EXTERNAL_TOLERANCE: f64 = 1e-10;

/// The judgement of an exact claim of a neighbouring paper, or `None` if `claim.formula` is
/// not one of theirs.
pub fn judge(claim: &Claim, seed: u64) -> Option<Judgement> {
    use Formula::*;
    match claim.formula? {
        f @ (BestOfNKlBound | BestOfNKlEquality | BestOfNKlCap | BestOfNWinRate
        | BestOfNRklReward) => Some(judge_best_of_n(claim, f, seed)),
        f @ (IpoClosedForm | IpoIgnoringReference | IpoTwoActions | IpoD1 | DpoD1NoMinimiser
        | IpoDpoD3) => Some(judge_ipo_dpo(claim, f, seed)),
        f @ (PessimismGreedyFloor
        | PessimismLcbVanishes
        | PessimismGreedyVanishes
        | PessimismUcbVanishes) => Some(judge_pessimism(claim, f)),
        _ => None,
    }
}

/// One best-of-n problem: reference, reward, n.
struct Problem {
    label: String,
    p: Vec<f64>,
    r: Vec<f64>,
    n: u32,
}

/// The paper's examples: uniform references over |Y| in {2, 4, 16, 256} responses with
/// distinct rewards (|Y| = 2 is the binary counterexample of §3), n in {1, 2, 4, 16, 64,
/// 256, 1024}.
fn examples() -> Vec<Problem> {
    let mut out = vec![];
    for ny in [2usize, 4, 16, 256] {
        for n in [1u32, 2, 4, 16, 64, 256, 1024] {
            out.push(Problem {
                label: format!("uniform |Y| = {ny}, n = {n}"),
                p: vec![1.0 / ny as f64; ny],
                r: (0..ny).map(|y| y as f64).collect(),
                n,
            });
        }
    }
    out
}

/// A random problem from the stream ("exact/<claim id>", instance): |Y| = 2..=8, pi_ref
/// with exponential weights (each response but the first dropped with probability 1/4),
/// rewards integer in {0..3} (ties) with probability 1/2 and uniform in [-5, 5] otherwise,
/// n = floor(10^(3.5 U)) in 1..=3162.
fn random_problem(seed: u64, id: &str, instance: usize) -> Problem {
    let mut rng = stream(seed, &format!("exact/{id}"), instance as u64);
    let ny = 2 + (rng.random::<u64>() % 7) as usize;
    let p = super::exact::random_distribution(&mut rng, ny, 0);
    let ties = rng.random::<f64>() < 0.5;
    let r: Vec<f64> = (0..ny)
        .map(|_| {
            if ties {
                (rng.random::<u64>() % 4) as f64
            } else {
                10.0 * rng.random::<f64>() - 5.0
            }
        })
        .collect();
    let n = 10f64.powf(3.5 * rng.random::<f64>()).floor().max(1.0) as u32;
    Problem {
        label: format!("instance {instance}: |Y| = {ny}, n = {n}"),
        p,
        r,
        n,
    }
}

/// Everything the best-of-n claims compare, on one problem.
struct Evaluated {
    kl: [f64; 2], // by tie rule: uniform draw, lowest index
    formula: f64,
    cap: f64,
    win: bon::WinRate,
    bound: f64,
    reward: f64,
    rkl_gamma: f64,
    rkl_kl: f64,
    rkl_reward: f64,
    rkl_win: f64,
    r_scale: f64,
}

fn evaluate(pr: &Problem) -> Evaluated {
    let (p, r, n) = (&pr.p, &pr.r, pr.n);
    let lp = bon::log_policy(p, r, n, TieRule::UniformDraw);
    let kl = [
        bon::kl(p, r, n, TieRule::UniformDraw),
        bon::kl(p, r, n, TieRule::LowestIndex),
    ];
    let m = bon::rkl_matching_kl(p, r, kl[0]);
    Evaluated {
        kl,
        formula: bon::kl_formula(n),
        cap: bon::kl_cap(p, r),
        win: bon::win_rate(&lp, p, r),
        bound: bon::win_rate_bound(n),
        reward: bon::expected_reward(&lp, r),
        rkl_gamma: m.gamma,
        rkl_kl: m.kl,
        rkl_reward: bon::expected_reward(&m.log_policy, r),
        rkl_win: bon::win_rate(&m.log_policy, p, r).half,
        r_scale: 1.0 + r.iter().fold(0.0f64, |a, v| a.max(v.abs())),
    }
}

/// The values a check takes on one problem (the largest over the tie rules where the tie
/// rule matters); a check passes when each is <= the tolerance.
fn check_values(formula: Formula, e: &Evaluated) -> Vec<(&'static str, f64)> {
    let max_kl = e.kl[0].max(e.kl[1]);
    match formula {
        Formula::BestOfNKlBound => vec![("KL - (log n - (n-1)/n)", max_kl - e.formula)],
        Formula::BestOfNKlEquality => vec![(
            "|KL - (log n - (n-1)/n)|",
            (e.kl[0] - e.formula).abs().max((e.kl[1] - e.formula).abs()),
        )],
        Formula::BestOfNKlCap => vec![("KL (uniform draw) - (-ln pi_ref(top))", e.kl[0] - e.cap)],
        Formula::BestOfNWinRate => vec![
            ("win rate (ties half) - n/(n+1)", e.win.half - e.bound),
            ("n/(n+1) - P[r(Y) >= r(Y')]", e.bound - e.win.weak),
        ],
        Formula::BestOfNRklReward => vec![
            (
                "(E_BoN r - E_gamma r) / (1 + max|r|) at matched KL",
                (e.reward - e.rkl_reward) / e.r_scale,
            ),
            ("|KL(pi_gamma) - KL(BoN)|", (e.rkl_kl - e.kl[0]).abs()),
        ],
        _ => unreachable!("a best-of-n formula"),
    }
}

fn judge_best_of_n(claim: &Claim, formula: Formula, seed: u64) -> Judgement {
    let count = claim.instances.unwrap_or(200);
    let problems: Vec<Problem> = examples();
    let n_examples = problems.len();
    let problems: Vec<Problem> = problems
        .into_iter()
        .chain((0..count).map(|i| random_problem(seed, &claim.id, i)))
        .collect();
    let mut worst: Vec<(&'static str, f64, String)> = vec![];
    let mut rows = vec![];
    let mut bon_wins_more = 0;
    // The smallest gap log n - (n-1)/n - KL over the problems with n >= 2 (where the formula
    // is claimed to be the KL): positive means the formula is never attained.
    let mut smallest_gap = (f64::INFINITY, String::new());
    for (i, pr) in problems.iter().enumerate() {
        let e = evaluate(pr);
        for (k, (what, v)) in check_values(formula, &e).into_iter().enumerate() {
            if k == worst.len() {
                worst.push((what, f64::NEG_INFINITY, String::new()));
            }
            if v > worst[k].1 {
                worst[k] = (what, v, pr.label.clone());
            }
        }
        let gap = e.formula - e.kl[0].max(e.kl[1]);
        if pr.n >= 2 && gap < smallest_gap.0 {
            smallest_gap = (gap, pr.label.clone());
        }
        if e.win.half > e.rkl_win {
            bon_wins_more += 1;
        }
        if i < n_examples {
            rows.push(vec![
                pr.p.len() as f64,
                pr.n as f64,
                e.kl[0],
                e.formula,
                e.formula - e.kl[0],
                e.cap,
                e.win.half,
                e.bound,
                e.reward,
                e.rkl_gamma,
                e.rkl_reward,
                e.rkl_win,
            ]);
        }
    }
    let tol = EXTERNAL_TOLERANCE;
    let findings: Vec<Finding> = worst
        .iter()
        .map(|(what, v, _)| Finding::check(format!("max of {what}"), *v, tol))
        .collect();
    let failing: Vec<String> = worst
        .iter()
        .filter(|(_, v, _)| *v > tol)
        .map(|(what, _, at)| format!("{what} worst at {at}"))
        .collect();
    let mut context = failing.join("; ");
    if formula == Formula::BestOfNKlEquality {
        context.push_str(&format!(
            "; at n >= 2 the formula exceeds the KL on every problem, by at least {} ({})",
            crate::numerics::compact(smallest_gap.0),
            smallest_gap.1
        ));
    }
    if formula == Formula::BestOfNRklReward {
        if !context.is_empty() {
            context.push_str("; ");
        }
        context.push_str(&format!(
            "best-of-n's win rate exceeds the matched RKL policy's on {bon_wins_more} of {} problems",
            problems.len()
        ));
    }
    let mut j = Judgement::from_findings(
        claim,
        Some(format!(
            "paper's examples + random instances ({})",
            formula.name()
        )),
        Measure::Residual,
        findings,
        &context,
    );
    j.measured = worst.iter().map(|w| w.1).reduce(f64::max);
    j.details = Details::Table {
        instances: problems.len(),
        tolerance: tol,
        worst_instance: worst
            .iter()
            .map(|(what, v, at)| format!("{what} = {} at {at}", crate::numerics::compact(*v)))
            .collect::<Vec<_>>()
            .join("; "),
        caption: "best-of-n on uniform references with distinct rewards (the paper's examples; BoN ties: uniform draw): KL and the formula log n - (n-1)/n, their gap, the cap -ln pi_ref(top), the win rate (ties half) against n/(n+1), and the RKL policy at the gamma of equal KL".into(),
        columns: [
            "|Y|",
            "n",
            "KL",
            "log n - (n-1)/n",
            "gap",
            "cap",
            "win rate",
            "n/(n+1)",
            "E_BoN r",
            "gamma",
            "E_gamma r",
            "RKL win rate",
        ]
        .map(String::from)
        .to_vec(),
        rows,
    };
    j
}

/// A random IPO problem from the stream ("exact/<claim id>", instance): |Y| = 2..=6,
/// 1..=10 pairs with distinct random responses, tau log-uniform in [0.05, 20], pi_ref the
/// escort of K = 1..=3 random references (exponential weights) with random weights.
fn random_ipo(seed: u64, id: &str, instance: usize) -> (Vec<(usize, usize)>, usize, f64, Vec<f64>) {
    let mut rng = stream(seed, &format!("exact/{id}"), instance as u64);
    let ny = 2 + (rng.random::<u64>() % 5) as usize;
    let pairs = 1 + (rng.random::<u64>() % 10) as usize;
    let data: Vec<(usize, usize)> = (0..pairs)
        .map(|_| {
            let w = (rng.random::<u64>() % ny as u64) as usize;
            let l = (w + 1 + (rng.random::<u64>() % (ny as u64 - 1)) as usize) % ny;
            (w, l)
        })
        .collect();
    let tau = 0.05 * 400f64.powf(rng.random::<f64>());
    let k = 1 + (rng.random::<u64>() % 3) as usize;
    let refs: Vec<Vec<f64>> = (0..k)
        .map(|_| {
            let p: Vec<f64> = (0..ny).map(|_| -rng.random::<f64>().ln()).collect();
            let t: f64 = p.iter().sum();
            p.iter().map(|v| v / t).collect()
        })
        .collect();
    let w: Vec<f64> = (0..k).map(|_| -rng.random::<f64>().ln()).collect();
    let rr: Vec<&[f64]> = refs.iter().map(Vec::as_slice).collect();
    let mut log_g = vec![0.0; ny];
    let total: f64 = w.iter().sum();
    let w: Vec<f64> = w.iter().map(|v| v / total).collect();
    crate::policy::log_escort(&rr, &w, &mut log_g);
    (data, ny, tau, log_g)
}

/// The datasets of the paper (responses a, b, c = 0, 1, 2), and our reading of D3 with c
/// losing once.
const D1: [(usize, usize); 3] = [(0, 1), (1, 2), (0, 2)];
const D3_PRINTED: [(usize, usize); 2] = [(0, 1), (1, 0)];
const D3_C_LOSES: [(usize, usize); 3] = [(0, 1), (1, 0), (0, 2)];
const TAUS: [f64; 5] = [0.1, 0.25, 0.5, 1.0, 2.0];

fn judge_ipo_dpo(claim: &Claim, formula: Formula, seed: u64) -> Judgement {
    use crate::ipo;
    use crate::numerics::sigmoid;
    let uniform3 = [(1.0f64 / 3.0).ln(); 3];
    let max_abs = |a: &[f64], b: &[f64]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| (x.exp() - y.exp()).abs())
            .fold(0.0, f64::max)
    };
    // Random log-ratio vectors at which sign and invariance checks are made.
    let mut rng = stream(seed, &format!("exact/{}/points", claim.id), 0);
    let points: Vec<Vec<f64>> = (0..200)
        .map(|_| (0..3).map(|_| 20.0 * rng.random::<f64>() - 10.0).collect())
        .collect();
    let count = claim.instances.unwrap_or(200);
    let mut findings = vec![];
    let mut context = String::new();
    let tol = EXTERNAL_TOLERANCE;
    match formula {
        Formula::IpoClosedForm | Formula::IpoIgnoringReference => {
            let (mut worst, mut at, mut normal) = (0.0f64, String::new(), 0.0f64);
            for i in 0..count {
                let (data, ny, tau, log_g) = random_ipo(seed, &claim.id, i);
                let s = ipo::ipo_log_ratios(&data, ny, tau);
                let gd = ipo::ipo_gradient_descent(&data, ny, tau, 20_000);
                let base = if formula == Formula::IpoIgnoringReference {
                    vec![0.0; ny]
                } else {
                    log_g.clone()
                };
                let d = max_abs(&ipo::log_policy(&base, &s), &ipo::log_policy(&log_g, &gd));
                if d > worst {
                    worst = d;
                    at = format!(
                        "instance {i}: |Y| = {ny}, {} pairs, tau = {}",
                        data.len(),
                        crate::numerics::compact(tau)
                    );
                }
                // Normal equations L s = b / (2 tau): the IPO loss's gradient at s.
                let c = 0.5 / tau;
                let mut grad = vec![0.0; ny];
                for &(w, l) in &data {
                    let r = s[w] - s[l] - c;
                    grad[w] += 2.0 * r;
                    grad[l] -= 2.0 * r;
                }
                normal = normal.max(grad.iter().fold(0.0f64, |m, v| m.max(v.abs())) * tau);
            }
            findings.push(Finding::check("max |pi_closed form - pi_gradient descent| over random datasets with escort references", worst, tol));
            findings.push(Finding::check(
                "max tau |grad IPO loss| at the closed form",
                normal,
                tol,
            ));
            if worst > tol {
                context = format!("worst at {at}");
            }
        }
        Formula::IpoTwoActions => {
            let mut worst = 0.0f64;
            for &tau in &TAUS {
                for copies in [1usize, 3, 10] {
                    let s = ipo::ipo_log_ratios(&vec![(0, 1); copies], 2, tau);
                    let lp = ipo::log_policy(&[0.5f64.ln(); 2], &s);
                    worst = worst.max((lp[0].exp() - sigmoid(0.5 / tau)).abs());
                    // Population IPO (Psi = identity): pi ∝ pi_ref exp(p(y > mu)/tau), with
                    // p(y1 > mu) = 3/4, p(y2 > mu) = 1/4 under uniform mu (ties count 1/2).
                    let pop = sigmoid((0.75 - 0.25) / tau);
                    worst = worst.max((lp[0].exp() - pop).abs());
                }
            }
            findings.push(Finding::check(
                "max |pi(y1) - sigma(1/(2 tau))| (sampled loss and population solution)",
                worst,
                tol,
            ));
            context = "DPO's loss -ln sigma(tau (s1 - s2)) decreases in s1 - s2 without end: pi(y1) -> 1 for every tau".into();
        }
        Formula::IpoD1 => {
            let mut worst = 0.0f64;
            for &tau in &TAUS {
                let s = ipo::ipo_log_ratios(&D1, 3, tau);
                let want = [1.0 / (3.0 * tau), 0.0, -1.0 / (3.0 * tau)];
                worst = worst.max(max_abs(
                    &ipo::log_policy(&uniform3, &s),
                    &ipo::log_policy(&uniform3, &want),
                ));
            }
            findings.push(Finding::check(
                "max |pi_IPO - pi_ref e^{(1, 0, -1)/(3 tau)} / Z| on D1",
                worst,
                tol,
            ));
        }
        Formula::DpoD1NoMinimiser => {
            let mut grad_a = f64::NEG_INFINITY;
            let mut rise = f64::NEG_INFINITY;
            let mut limit_a = 0.0;
            for &tau in &TAUS {
                for p in &points {
                    grad_a = grad_a.max(ipo::dpo_gradient(&D1, p, tau)[0]);
                }
                let dir = [1.0, 0.0, -1.0];
                let at = |t: f64| dir.map(|d| t * d / tau);
                for k in 0..6 {
                    let (t0, t1) = (2f64.powi(k), 2f64.powi(k + 1));
                    rise = rise
                        .max(ipo::dpo_loss(&D1, &at(t1), tau) - ipo::dpo_loss(&D1, &at(t0), tau));
                }
                limit_a = ipo::log_policy(&uniform3, &at(64.0))[0].exp();
            }
            findings.push(Finding::check(
                "max over random s of dDPO/ds_a (< 0: no stationary point)",
                grad_a,
                0.0,
            ));
            findings.push(Finding::check("max increase of the DPO loss along s = t (1, 0, -1)/tau, t = 1..64 (< 0: decreasing)", rise, 0.0));
            context = format!(
                "no finite minimiser: the infimum 0 is approached only as s_a - s_b, s_b - s_c -> inf; limiting support {{a}} (pi(a) = {} at t = 64)",
                crate::numerics::compact(limit_a)
            );
        }
        Formula::IpoDpoD3 => {
            // As printed: neither loss depends on s_c.
            let mut dep = 0.0f64;
            for &tau in &TAUS {
                for p in &points {
                    let mut q = p.clone();
                    q[2] += 5.0;
                    dep = dep.max(
                        (ipo::ipo_loss(&D3_PRINTED, p, tau) - ipo::ipo_loss(&D3_PRINTED, &q, tau))
                            .abs(),
                    );
                    dep = dep.max(
                        (ipo::dpo_loss(&D3_PRINTED, p, tau) - ipo::dpo_loss(&D3_PRINTED, &q, tau))
                            .abs(),
                    );
                }
            }
            // With c losing once: IPO's closed form s = (1, 1, -2)/(6 tau); DPO's dL/ds_c > 0.
            let (mut ipo_err, mut grad_c) = (0.0f64, f64::NEG_INFINITY);
            for &tau in &TAUS {
                let s = ipo::ipo_log_ratios(&D3_C_LOSES, 3, tau);
                let want = [1.0 / (6.0 * tau), 1.0 / (6.0 * tau), -1.0 / (3.0 * tau)];
                ipo_err = ipo_err.max(max_abs(
                    &ipo::log_policy(&uniform3, &s),
                    &ipo::log_policy(&uniform3, &want),
                ));
                for p in &points {
                    grad_c = grad_c.max(-ipo::dpo_gradient(&D3_C_LOSES, p, tau)[2]);
                }
            }
            findings.push(Finding::check(
                "D3 as printed {(a>b),(b>a)}: max |loss change| when s_c moves (IPO and DPO)",
                dep,
                tol,
            ));
            findings.push(Finding::check("D3 with c losing once {(a>b),(b>a),(a>c)} [ours]: max |pi_IPO - pi_ref e^{(1,1,-2)/(6 tau)}/Z|", ipo_err, tol));
            findings.push(Finding::check("D3 with c losing once: max over random s of -dDPO/ds_c (< 0: DPO always lowers pi(c))", grad_c, 0.0));
            let s = ipo::ipo_log_ratios(&D3_C_LOSES, 3, 1.0);
            context = format!(
                "discrepancy: as printed D3 never contains c, so neither loss depends on c and neither moves pi(c) from where it starts; with c losing once IPO keeps pi(c) = {} at tau = 1 while DPO has no minimiser and drives pi(c) -> 0 (limiting support {{a, b}})",
                crate::numerics::compact(ipo::log_policy(&uniform3, &s)[2].exp())
            );
        }
        _ => unreachable!("an IPO / DPO formula"),
    }
    // The table: per tau, the closed forms on the paper's datasets.
    let rows: Vec<Vec<f64>> = TAUS
        .iter()
        .map(|&tau| {
            let two = ipo::log_policy(&[0.5f64.ln(); 2], &ipo::ipo_log_ratios(&[(0, 1)], 2, tau));
            let d1 = ipo::log_policy(&uniform3, &ipo::ipo_log_ratios(&D1, 3, tau));
            let d3 = ipo::log_policy(&uniform3, &ipo::ipo_log_ratios(&D3_PRINTED, 3, tau));
            let d3c = ipo::log_policy(&uniform3, &ipo::ipo_log_ratios(&D3_C_LOSES, 3, tau));
            let mut row = vec![tau, two[0].exp(), sigmoid(0.5 / tau)];
            row.extend(d1.iter().map(|v| v.exp()));
            row.push(d3[2].exp());
            row.extend(d3c.iter().map(|v| v.exp()));
            row
        })
        .collect();
    let mut j = Judgement::from_findings(
        claim,
        Some(match formula {
            Formula::IpoClosedForm | Formula::IpoIgnoringReference => {
                format!("random datasets ({})", formula.name())
            }
            _ => format!("paper's datasets ({})", formula.name()),
        }),
        Measure::Residual,
        findings,
        &context,
    );
    j.measured = j
        .findings
        .iter()
        .filter_map(|f| match f {
            Finding::Check { value, .. } => Some(*value),
            _ => None,
        })
        .reduce(f64::max);
    j.details = Details::Table {
        instances: count,
        tolerance: tol,
        worst_instance: context.clone(),
        caption: "IPO's closed form (uniform pi_ref, minimum-norm gauge) on the paper's datasets, per tau: two actions with y1 always preferred, D1, D3 as printed and D3 with c losing once (a > c, ours); DPO has no finite minimiser on the two-action data, D1 and D3 with c losing once".into(),
        columns: [
            "tau",
            "two actions pi(y1)",
            "sigma(1/(2 tau))",
            "D1 pi(a)",
            "D1 pi(b)",
            "D1 pi(c)",
            "D3 printed pi(c)",
            "D3 c loses pi(a)",
            "D3 c loses pi(b)",
            "D3 c loses pi(c)",
        ]
        .map(String::from)
        .to_vec(),
        rows,
    };
    j
}

/// About this many outcomes per n, evenly spaced in the enumeration, have their closed-form
/// lower confidence bounds compared with the brute-force minimisation.
const LCB_CHECKS: usize = 40;
/// What "tends to 0" is checked against at the largest n of the grid when the claim states
/// no `tolerance` [ours].
const VANISHING_TOLERANCE: f64 = 1e-3;

/// The exact curve of `opts`, computed once per process: the claims of one file share their
/// options, and a curve to n = 1e6 takes seconds. The values depend on the options only.
fn pessimism_curve(
    opts: &crate::pessimism::PessimismOptions,
) -> std::sync::Arc<Vec<crate::pessimism::GapPoint>> {
    use std::sync::{Arc, Mutex, OnceLock};
    type Cache = Mutex<
        Vec<(
            crate::pessimism::PessimismOptions,
            Arc<Vec<crate::pessimism::GapPoint>>,
        )>,
    >;
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(vec![]));
    if let Some((_, c)) = cache
        .lock()
        .expect("the cache")
        .iter()
        .find(|(o, _)| o == opts)
    {
        return c.clone();
    }
    let c = Arc::new(crate::pessimism::gap_curve(opts, LCB_CHECKS));
    cache
        .lock()
        .expect("the cache")
        .push((opts.clone(), c.clone()));
    c
}

fn judge_pessimism(claim: &Claim, formula: Formula) -> Judgement {
    use crate::numerics::compact;
    use crate::pessimism::{self as pess, PessimismOptions};
    let opts = claim.pessimism.clone().unwrap_or_default();
    let curve = pessimism_curve(&opts);
    let last = curve.last().expect("a non-empty n grid");
    let tol = EXTERNAL_TOLERANCE;
    let vanish = claim.tolerance.unwrap_or(VANISHING_TOLERANCE);
    let max_gap = pess::max_gap();
    let fold =
        |f: fn(&pess::GapPoint) -> f64| curve.iter().map(f).fold(f64::NEG_INFINITY, f64::max);
    let mut findings = vec![];
    let min_greedy = curve
        .iter()
        .min_by(|a, b| a.greedy.total_cmp(&b.greedy))
        .expect("a point");
    let vanishing = match formula {
        Formula::PessimismLcbVanishes => Some(("pessimistic", last.pessimistic)),
        Formula::PessimismGreedyVanishes => Some(("greedy", last.greedy)),
        Formula::PessimismUcbVanishes => Some(("optimistic", last.optimistic)),
        _ => None,
    };
    let (main_value, what) = match vanishing {
        Some((rule, value)) => {
            findings.push(Finding::check(
                format!("E[{rule} gap] at n = {}", last.n),
                value,
                vanish,
            ));
            (value, rule)
        }
        None => {
            findings.push(Finding::check(
                format!(
                    "floor {} - min over n of E[greedy gap]",
                    compact(opts.gap_floor)
                ),
                opts.gap_floor - min_greedy.greedy,
                0.0,
            ));
            (min_greedy.greedy, "greedy")
        }
    };
    if formula == Formula::PessimismLcbVanishes {
        findings.push(Finding::check(
            "max over n of E[pessimistic gap] - bound 2 f ||u*||_{Sigma^+} P[cover] + max gap P[miss]",
            fold(|p| p.pessimistic - p.bound),
            tol,
        ));
    }
    // Exactness of the enumeration: omitted mass, MLE accuracy against the decisions'
    // margins, the closed-form LCB against brute force.
    findings.push(Finding::check(
        "max over n of omitted probability x largest gap",
        fold(|p| p.omitted) * max_gap,
        tol,
    ));
    findings.push(Finding::check(
        "max KKT residual of the constrained MLE fits",
        fold(|p| p.max_kkt),
        tol,
    ));
    let min_margin = curve
        .iter()
        .map(|p| p.min_margin)
        .fold(f64::INFINITY, f64::min);
    findings.push(Finding::check(
        "1e-8 / smallest decision margin that is not a tie (< 1: no choice is within reach of the fits' error)",
        1e-8 / min_margin,
        1.0,
    ));
    findings.push(Finding::check(
        "max relative |closed-form LCB - brute-force minimum over the ellipse|",
        fold(|p| p.lcb_residual),
        tol,
    ));
    // The first n of the grid from which a curve stays at or below `level`.
    let first_below = |level: f64, f: fn(&pess::GapPoint) -> f64| {
        let i = curve
            .iter()
            .rposition(|p| f(p) > level)
            .map_or(0, |i| i + 1);
        curve
            .get(i)
            .map_or("never".to_string(), |p| format!("n = {}", p.n))
    };
    let first = &curve[0];
    let context = format!(
        "{what} rule; E[greedy gap] {} at n = {} .. {} at n = {} (min {} at n = {}), P[greedy gap >= {}] >= {}; E[pessimistic gap] {} .. {}, below 0.01 from {} on; E[optimistic gap] {} at n = {}; reference v = phi({}), B = {}, radius f({}) = {}",
        compact(first.greedy),
        first.n,
        compact(last.greedy),
        last.n,
        compact(min_greedy.greedy),
        min_greedy.n,
        compact(opts.gap_floor),
        compact(
            curve
                .iter()
                .map(|p| p.greedy_floor_probability)
                .fold(f64::INFINITY, f64::min)
        ),
        compact(first.pessimistic),
        compact(last.pessimistic),
        first_below(0.01, |p| p.pessimistic),
        compact(last.optimistic),
        last.n,
        opts.reference.name(),
        compact(opts.bound),
        last.n,
        compact(last.radius),
    );
    let mut j = Judgement::from_findings(
        claim,
        Some(format!(
            "exact enumeration on the paper's instance ({})",
            formula.name()
        )),
        super::judgement::Measure::ExpectedGap,
        findings,
        &context,
    );
    j.measured = Some(main_value);
    let default = opts == PessimismOptions::default();
    j.details = Details::Table {
        instances: curve.iter().map(|p| p.outcomes).sum(),
        tolerance: tol,
        worst_instance: context.clone(),
        caption: format!(
            "Zhu, Jordan, Jiao 2023, Theorem 3.9's instance (phi(a1..a4) = (1,1,0), (1,0,0), 0, (0,1,0), theta* = (-1, 0.1, 0.9); n - 1 comparisons of (a1, a2), one of (a2, a3)), exact expected optimality gaps per n: the greedy policy of the MLE over Theta_B, the pessimistic MLE (LCB over the confidence set of radius f(n)) with the derived bound, and the planted optimistic rule; {}B = {}, reference v = phi({}), radius {}",
            if default { "" } else { "non-default options: " },
            compact(opts.bound),
            opts.reference.name(),
            opts.radius.describe()
        ),
        columns: [
            "n",
            "radius f(n)",
            "E greedy gap",
            "P[greedy gap >= floor]",
            "E pessimistic gap",
            "bound",
            "P[theta* not in C]",
            "E optimistic gap",
        ]
        .map(String::from)
        .to_vec(),
        rows: curve
            .iter()
            .map(|p| {
                vec![
                    p.n as f64,
                    p.radius,
                    p.greedy,
                    p.greedy_floor_probability,
                    p.pessimistic,
                    p.bound,
                    p.miss_probability,
                    p.optimistic,
                ]
            })
            .collect(),
    };
    j
}
