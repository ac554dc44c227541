//! Criterion benches of every stage of one replication, at the two sizes of the
//! performance issue: (|X|, |Y|, d, K) = (20, 10, 5, 2) and (100, 50, 16, 4).
//! `full_replication/counts/.../n=1e9` against `n=1e3` is the flat-in-n target.
//! Run: `cargo bench --bench pipeline` (add `-- <filter>` to select).

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use mrkl::engine::{Prepared, sampling_policy};
use mrkl::estimation::{
    FitWorkspace, LinearFitter, OccupiedCells, PairDesign, PairScratch, finite_mle,
};
use mrkl::instance::RewardModel;
use mrkl::policy::{Divergence, Regularizer};
use mrkl::preference::{Sampler, SamplerKind, WinCounts};
use mrkl::spec::{Sampling, Spec, parse};
use mrkl::streams::stream;
use std::hint::black_box;
use std::path::Path;

const SIZES: [(usize, usize, usize, usize); 2] = [(20, 10, 5, 2), (100, 50, 16, 4)];

fn spec(nx: usize, ny: usize, d: usize, k: usize, class: &str, sampler: &str, n: u64) -> Spec {
    let reward = if class == "linear" {
        format!("class = \"linear\"\ndim = {d}\nbound = 1.0")
    } else {
        "class = \"finite\"\ncandidates = 16\nr_max = 1.0\nspread = 0.05".into()
    };
    let w = vec![format!("{}", 1.0 / k as f64); k].join(", ");
    let text = format!(
        "seed = 1\nreplications = 2\n[instance]\nsource = \"random\"\ncontexts = {nx}\nresponses = {ny}\nreferences = {k}\n[instance.reward]\n{reward}\n[experiment]\ndivergence = \"rkl\"\nquantity = \"suboptimality\"\nweights = [{w}]\ngamma = 1.0\nn = [{n}]\nsampler = \"{sampler}\"\n"
    );
    parse(&text, Path::new("bench.toml"), "bench", None).expect("bench spec is valid")
}

/// n comparisons of the spec's instance drawn from the escort of its first cell (fixed stream).
fn counts_from_escort(s: &Spec, n: u64) -> WinCounts {
    let inst = &s.instance();
    let mu = sampling_policy(inst, Sampling::Geometric, &s.cells()[0].weights);
    let sampler = Sampler::new(&inst.rho, &mu, &inst.true_reward(), inst.responses);
    let mut counts = WinCounts::new(inst.contexts, inst.responses);
    sampler.extend(
        SamplerKind::Counts,
        &mut counts,
        n,
        &mut stream(1, "bench", 0),
    );
    counts
}

fn label((nx, ny, d, k): (usize, usize, usize, usize)) -> String {
    format!("{nx}x{ny}x{d}x{k}")
}

fn data_generation(c: &mut Criterion) {
    let mut g = c.benchmark_group("data");
    for size in SIZES {
        let s = spec(size.0, size.1, size.2, size.3, "linear", "counts", 1000);
        let inst = &s.instance();
        let mu = sampling_policy(inst, Sampling::Geometric, &s.cells()[0].weights);
        let sampler = Sampler::new(&inst.rho, &mu, &inst.true_reward(), inst.responses);
        let mut counts = WinCounts::new(inst.contexts, inst.responses);
        for n in [1_000u64, 1_000_000_000] {
            g.bench_function(
                BenchmarkId::new(format!("counts/{}", label(size)), n),
                |b| {
                    let mut rng = stream(1, "bench", 0);
                    b.iter(|| {
                        counts.clear();
                        sampler.extend(SamplerKind::Counts, &mut counts, n, &mut rng);
                        black_box(counts.ties)
                    })
                },
            );
        }
        g.bench_function(
            BenchmarkId::new(format!("per_sample/{}", label(size)), 10_000),
            |b| {
                let mut rng = stream(1, "bench", 0);
                b.iter(|| {
                    counts.clear();
                    sampler.extend(SamplerKind::PerSample, &mut counts, 10_000, &mut rng);
                    black_box(counts.ties)
                })
            },
        );
    }
    g.finish();
}

fn estimation(c: &mut Criterion) {
    let mut g = c.benchmark_group("mle");
    for size in SIZES {
        for class in ["linear", "finite"] {
            let s = spec(size.0, size.1, size.2, size.3, class, "counts", 100_000);
            let inst = &s.instance();
            let counts = counts_from_escort(&s, 100_000);
            match &inst.reward {
                RewardModel::Linear(l) => {
                    let fitter = LinearFitter::new(l, inst.contexts, inst.responses, 1e-10);
                    let mut ws = FitWorkspace::default();
                    let zero = vec![0.0; l.dim];
                    g.bench_function(format!("linear_newton/{}/cold", label(size)), |b| {
                        b.iter(|| black_box(fitter.fit(&counts, &zero, &mut ws).iterations))
                    });
                }
                RewardModel::Finite(f) => {
                    g.bench_function(format!("finite/{}", label(size)), |b| {
                        b.iter(|| black_box(finite_mle(f, &counts)))
                    });
                }
                _ => unreachable!(),
            }
        }
    }
    g.finish();
}

/// The comparison paths (THEORY §6): DPO fits over the tabular and the linear class (cold
/// start, 1e5 comparisons), and the F1 loss J(pi*) - J(pi_c) of one comparator.
fn comparisons(c: &mut Criterion) {
    let mut g = c.benchmark_group("comparisons");
    for size in SIZES {
        let s = spec(size.0, size.1, size.2, size.3, "linear", "counts", 100_000);
        let inst = &s.instance();
        let w = &s.cells()[0].weights;
        let r = inst.true_reward();
        let counts = counts_from_escort(&s, 100_000);
        let RewardModel::Linear(l) = &inst.reward else {
            unreachable!()
        };
        for div in [Divergence::Rkl, Divergence::Fkl] {
            let reg = Regularizer::new(div, &inst.references, w, inst.contexts, inst.responses);
            g.bench_function(format!("dpo_tabular/{}/{}", div.name(), label(size)), |b| {
                b.iter(|| {
                    black_box(mrkl::dpo::fit_tabular(&reg, &counts, 1.0, 1.0, 1e-10).iterations)
                })
            });
            let zero = vec![0.0; l.dim];
            g.bench_function(format!("dpo_linear/{}/{}", div.name(), label(size)), |b| {
                b.iter(|| {
                    black_box(
                        mrkl::dpo::fit_linear(&reg, &counts, l, 1.0, 0.0, &zero, 1e-10).iterations,
                    )
                })
            });
        }
        let exact = Regularizer::new(
            Divergence::Rkl,
            &inst.references,
            w,
            inst.contexts,
            inst.responses,
        );
        let (_, mrpo) = &mrkl::policy::comparator_bases(inst, w, 0.0)[0];
        let mut ws = Default::default();
        g.bench_function(format!("f1_loss_mrpo/{}", label(size)), |b| {
            b.iter(|| {
                black_box(mrkl::gap::rkl_policy_loss(
                    &exact, mrpo, &inst.rho, &r, &r, 1.0, &mut ws,
                ))
            })
        });
    }
    g.finish();
}

fn policies(c: &mut Criterion) {
    let mut g = c.benchmark_group("policy");
    for size in SIZES {
        let s = spec(size.0, size.1, size.2, size.3, "linear", "counts", 1000);
        let inst = &s.instance();
        let r = inst.true_reward();
        let mut out = vec![0.0; inst.cells()];
        for div in [Divergence::Rkl, Divergence::Fkl] {
            let reg = Regularizer::new(
                div,
                &inst.references,
                &s.cells()[0].weights,
                inst.contexts,
                inst.responses,
            );
            g.bench_function(format!("{}/{}", div.name(), label(size)), |b| {
                b.iter(|| black_box(reg.policy(&r, 1.0, &mut out)))
            });
        }
    }
    g.finish();
}

/// The kernels of the stated floor (README "Performance"), each in isolation: one binomial
/// draw of the count sampler at the sizes of a full dataset, and one pass of the structured
/// gradient-Hessian and of the loss over every occupied pair cell (n = 1e9: all occupied).
fn kernels(c: &mut Criterion) {
    use rand_distr::{Binomial, Distribution};
    let mut g = c.benchmark_group("kernels");
    // n_ab ~ n / (|X| |Y|^2 / 2) comparisons per cell, split with p ~ 1/2: BTPE; and a small
    // count (Binv), as at n = 1e3.
    // `binomial`: rand_distr 0.6 (the reference); `binomial_mrkl`: `mrkl::binomial::binomial`,
    // the same draws bit for bit without rand_distr's overhead (README "Performance").
    for (n, p) in [(1_000_000_000u64, 0.05), (8_000, 0.4), (8, 0.4)] {
        g.bench_function(BenchmarkId::new("binomial", format!("n={n},p={p}")), |b| {
            let mut rng = stream(1, "bench", 0);
            b.iter(|| black_box(Binomial::new(black_box(n), p).unwrap().sample(&mut rng)))
        });
        g.bench_function(
            BenchmarkId::new("binomial_mrkl", format!("n={n},p={p}")),
            |b| {
                let mut rng = stream(1, "bench", 0);
                b.iter(|| black_box(mrkl::binomial::binomial(&mut rng, black_box(n), p)))
            },
        );
    }
    for size in SIZES.iter().copied().chain([(1000, 100, 32, 4)]) {
        let s = spec(
            size.0,
            size.1,
            size.2,
            size.3,
            "linear",
            "counts",
            1_000_000_000,
        );
        let inst = &s.instance();
        let RewardModel::Linear(l) = &inst.reward else {
            unreachable!()
        };
        let counts = counts_from_escort(&s, 1_000_000_000);
        let design = PairDesign::new(l, inst.contexts, inst.responses);
        let mut cells = OccupiedCells::default();
        cells.fill(&counts, true, |_, _, _| true);
        let mut scratch = PairScratch::default();
        let d = l.dim;
        let (mut grad, mut hess) = (vec![0.0; d], vec![0.0; d * d]);
        // Two thetas in turn, so that every call computes its exponentials afresh (a call at
        // the theta of the previous one reuses them: the `_cached` benches).
        let thetas = [
            l.theta_star.clone(),
            l.theta_star.iter().map(|v| 0.999 * v).collect::<Vec<f64>>(),
        ];
        let mut turn = 0;
        g.bench_function(format!("gradient_hessian/{}", label(size)), |b| {
            b.iter(|| {
                turn ^= 1;
                design.gradient_hessian(&cells, &thetas[turn], &mut scratch, &mut grad, &mut hess);
                black_box(hess[0])
            })
        });
        g.bench_function(format!("gradient_hessian_cached/{}", label(size)), |b| {
            b.iter(|| {
                design.gradient_hessian(&cells, &thetas[0], &mut scratch, &mut grad, &mut hess);
                black_box(hess[0])
            })
        });
        g.bench_function(format!("loss/{}", label(size)), |b| {
            b.iter(|| {
                turn ^= 1;
                black_box(design.log_likelihood(&cells, &thetas[turn], &mut scratch))
            })
        });
    }
    g.finish();
}

fn full_replication(c: &mut Criterion) {
    let mut g = c.benchmark_group("full_replication");
    for size in SIZES {
        for n in [1_000u64, 1_000_000_000] {
            let s = spec(size.0, size.1, size.2, size.3, "linear", "counts", n);
            let p = Prepared::new(&s);
            let mut rep = 0;
            g.bench_function(
                BenchmarkId::new(format!("counts/{}", label(size)), n),
                |b| {
                    b.iter(|| {
                        rep += 1;
                        black_box(p.run_unit(0, rep % 1000))
                    })
                },
            );
        }
    }
    g.finish();
}

/// One replication at the larger size of the performance issue, (1000, 100, 32, 4), n = 1e9
/// (the spec sims/large/t5_2_rkl_large.toml walks n up to this).
fn large_replication(c: &mut Criterion) {
    let mut g = c.benchmark_group("large_replication");
    g.sample_size(10);
    let s = spec(1000, 100, 32, 4, "linear", "counts", 1_000_000_000);
    let p = Prepared::new(&s);
    let mut rep = 0;
    g.bench_function("counts/1000x100x32x4/1000000000", |b| {
        b.iter(|| {
            rep += 1;
            black_box(p.run_unit(0, rep % 1000))
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20).warm_up_time(std::time::Duration::from_millis(500)).measurement_time(std::time::Duration::from_secs(2));
    targets = kernels, data_generation, estimation, comparisons, policies, full_replication, large_replication
}
criterion_main!(benches);
