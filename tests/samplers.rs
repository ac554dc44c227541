//! The count-based sampler draws the win counts exactly in distribution (THEORY §2); the
//! per-sample sampler is the literal definition. Both are checked against the exact
//! multinomial cell probabilities, and the test is shown to reject a wrong sampler.
//!
//! Tolerance: each check is a chi-square goodness-of-fit test whose statistic, under the
//! exact distribution, is asymptotically chi-square with (cells - 1) degrees of freedom
//! (every expected cell count below is >= 5 by construction of the pooled bins). We accept
//! when the p-value is above ALPHA = 1e-4: a correct sampler fails with probability 1e-4 per
//! test, and the seeds are fixed, so the outcome is reproducible. A wrong sampler (one
//! with a mis-specified Bradley-Terry probability, or counts drawn with the wrong ties)
//! gives p-values below 1e-30 at these sample sizes.

use mrkl::numerics::sigmoid;
use mrkl::preference::{Sampler, SamplerKind, WinCounts, pairs};
use mrkl::streams::stream;
use statrs::distribution::{Binomial, ChiSquared, ContinuousCDF, Discrete};

const ALPHA: f64 = 1e-4;

struct Setup {
    rho: Vec<f64>,
    mu: Vec<f64>,
    r: Vec<f64>,
    ny: usize,
}

fn setup() -> Setup {
    Setup {
        rho: vec![0.35, 0.65],
        mu: vec![0.5, 0.3, 0.2, 0.1, 0.6, 0.3],
        r: vec![1.0, -0.5, 0.2, 0.0, 0.8, -1.2],
        ny: 3,
    }
}

/// Exact probabilities of the cells [x, pair, winner] (in WinCounts order) and, last, of a tie.
fn cell_probabilities(s: &Setup) -> Vec<f64> {
    let mut p = vec![];
    let mut tie = 0.0;
    for (x, &rx) in s.rho.iter().enumerate() {
        let mu = &s.mu[x * s.ny..(x + 1) * s.ny];
        let r = &s.r[x * s.ny..(x + 1) * s.ny];
        for (a, b) in pairs(s.ny) {
            let pair = rx * 2.0 * mu[a] * mu[b];
            let q = sigmoid(r[a] - r[b]);
            p.push(pair * q);
            p.push(pair * (1.0 - q));
        }
        tie += rx * mu.iter().map(|m| m * m).sum::<f64>();
    }
    p.push(tie);
    p
}

fn cells_of(w: &WinCounts) -> Vec<u64> {
    let mut v: Vec<u64> = w.wins.iter().flat_map(|c| [c[0], c[1]]).collect();
    v.push(w.ties);
    v
}

/// Upper-tail p-value of Pearson's statistic for observed counts against expected counts.
fn chi_square_p(observed: &[f64], expected: &[f64]) -> f64 {
    assert!(
        expected.iter().all(|&e| e >= 5.0),
        "bins too small for the chi-square approximation: {expected:?}"
    );
    let stat: f64 = observed
        .iter()
        .zip(expected)
        .map(|(o, e)| (o - e).powi(2) / e)
        .sum();
    ChiSquared::new((observed.len() - 1) as f64)
        .unwrap()
        .sf(stat)
}

/// Draws `reps` datasets of size n with the given sampler.
fn datasets(s: &Setup, kind: SamplerKind, n: u64, reps: usize, seed: u64) -> Vec<Vec<u64>> {
    let sampler = Sampler::new(&s.rho, &s.mu, &s.r, s.ny);
    let mut w = WinCounts::new(s.rho.len(), s.ny);
    (0..reps)
        .map(|rep| {
            w.clear();
            let mut rng = stream(seed, "sampler-test", rep as u64);
            sampler.extend(kind, &mut w, n, &mut rng);
            cells_of(&w)
        })
        .collect()
}

/// Pooled cell counts: Multinomial(reps * n, p) under the exact law.
fn pooled_p(data: &[Vec<u64>], p: &[f64], n: u64) -> f64 {
    let total = (data.len() as u64 * n) as f64;
    let observed: Vec<f64> = (0..p.len())
        .map(|c| data.iter().map(|d| d[c] as f64).sum())
        .collect();
    let expected: Vec<f64> = p.iter().map(|q| q * total).collect();
    chi_square_p(&observed, &expected)
}

/// Per-dataset law of one cell: Binomial(n, p_c). Bins = values, merged from both ends so
/// that each expected count is >= 5.
fn marginal_p(data: &[Vec<u64>], cell: usize, p_cell: f64, n: u64) -> f64 {
    let reps = data.len() as f64;
    let law = Binomial::new(p_cell, n).unwrap();
    let mut obs = vec![0.0; n as usize + 1];
    for d in data {
        obs[d[cell] as usize] += 1.0;
    }
    let exp: Vec<f64> = (0..=n).map(|k| law.pmf(k) * reps).collect();
    // Merge bins left to right until each has expectation >= 5; fold the remainder into the last.
    let (mut o_bins, mut e_bins) = (vec![], vec![]);
    let (mut o_acc, mut e_acc) = (0.0, 0.0);
    for (o, e) in obs.iter().zip(&exp) {
        o_acc += o;
        e_acc += e;
        if e_acc >= 5.0 {
            o_bins.push(o_acc);
            e_bins.push(e_acc);
            o_acc = 0.0;
            e_acc = 0.0;
        }
    }
    *o_bins.last_mut().unwrap() += o_acc;
    *e_bins.last_mut().unwrap() += e_acc;
    chi_square_p(&o_bins, &e_bins)
}

#[test]
fn both_samplers_match_the_exact_cell_probabilities() {
    let s = setup();
    let p = cell_probabilities(&s);
    assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-15);
    for kind in [SamplerKind::Counts, SamplerKind::PerSample] {
        let data = datasets(&s, kind, 40, 20_000, 7);
        let pv = pooled_p(&data, &p, 40);
        assert!(pv > ALPHA, "{kind:?}: pooled cell counts p-value {pv:e}");
        // The per-dataset law of single cells (this sees the variance, not only the mean).
        for cell in [0, 5, 9, p.len() - 1] {
            let pv = marginal_p(&data, cell, p[cell], 40);
            assert!(pv > ALPHA, "{kind:?}: cell {cell} marginal p-value {pv:e}");
        }
    }
}

#[test]
fn the_two_samplers_agree_in_joint_law_of_two_cells() {
    // Two-sample chi-square on the joint histogram of (cell 0, cell 1) counts per dataset:
    // this sees the negative multinomial dependence between cells.
    let s = setup();
    let n = 12;
    let a = datasets(&s, SamplerKind::Counts, n, 30_000, 11);
    let b = datasets(&s, SamplerKind::PerSample, n, 30_000, 12);
    let key = |d: &Vec<u64>| (d[0].min(4), d[1].min(3));
    let mut bins = std::collections::BTreeMap::<(u64, u64), (f64, f64)>::new();
    for d in &a {
        bins.entry(key(d)).or_default().0 += 1.0;
    }
    for d in &b {
        bins.entry(key(d)).or_default().1 += 1.0;
    }
    // Homogeneity test on a 2 x B table: df = B - 1; keep bins with expected >= 5 in both rows.
    let kept: Vec<(f64, f64)> = bins
        .values()
        .copied()
        .filter(|(x, y)| (x + y) / 2.0 >= 5.0)
        .collect();
    let (na, nb): (f64, f64) = kept
        .iter()
        .fold((0.0, 0.0), |acc, (x, y)| (acc.0 + x, acc.1 + y));
    let mut stat = 0.0;
    for &(x, y) in &kept {
        let t = x + y;
        let (ea, eb) = (t * na / (na + nb), t * nb / (na + nb));
        stat += (x - ea).powi(2) / ea + (y - eb).powi(2) / eb;
    }
    let pv = ChiSquared::new((kept.len() - 1) as f64).unwrap().sf(stat);
    assert!(kept.len() >= 10, "{}", kept.len());
    assert!(pv > ALPHA, "two-sample p-value {pv:e}");
}

#[test]
fn the_test_rejects_a_wrong_sampler() {
    // A sampler whose Bradley-Terry labels use r*/2 instead of r* (a plausible bug): same
    // pair counts, different win counts. The pooled test must reject it decisively.
    let s = setup();
    let p = cell_probabilities(&s);
    let wrong = Setup {
        r: s.r.iter().map(|v| v / 2.0).collect(),
        ..setup()
    };
    for kind in [SamplerKind::Counts, SamplerKind::PerSample] {
        let data = datasets(&wrong, kind, 40, 20_000, 7);
        let pv = pooled_p(&data, &p, 40);
        assert!(
            pv < 1e-30,
            "{kind:?}: a wrong sampler passed with p-value {pv:e}"
        );
    }
}

#[test]
fn nested_growth_equals_the_law_of_one_draw_of_the_total() {
    // Growing a dataset 20 -> 40 by adding 20 fresh comparisons must give the law of 40 at once.
    let s = setup();
    let p = cell_probabilities(&s);
    let sampler = Sampler::new(&s.rho, &s.mu, &s.r, s.ny);
    let mut w = WinCounts::new(2, 3);
    let data: Vec<Vec<u64>> = (0..20_000)
        .map(|rep| {
            w.clear();
            let mut rng = stream(5, "nested", rep);
            sampler.extend_counts(&mut w, 20, &mut rng);
            sampler.extend_counts(&mut w, 20, &mut rng);
            cells_of(&w)
        })
        .collect();
    assert!(data.iter().all(|d| d.iter().sum::<u64>() == 40));
    let pv = marginal_p(&data, 3, p[3], 40);
    assert!(pv > ALPHA, "nested marginal p-value {pv:e}");
    let pv = pooled_p(&data, &p, 40);
    assert!(pv > ALPHA, "nested pooled p-value {pv:e}");
}
