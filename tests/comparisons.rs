//! The comparisons of THEORY §4 (F1, MR, DPO) and the online setting, across modules:
//! the checks can fail (planted false claims), the extra series agree with independent
//! computations, and online collection reduces to the offline run where it must.

use mrkl::claims::{Registry, Verdict, judge_all};
use mrkl::engine;
use mrkl::spec::Spec;
use mrkl::suite::load_specs;

const SMALL: &str = r#"
seed = 5
replications = 6
[instance]
source = "random"
contexts = 6
responses = 5
references = 2
concentration = 0.5
[instance.reward]
class = "linear"
dim = 3
bound = 1.0
[experiment]
divergence = "rkl"
quantity = "suboptimality"
weights = [0.4, 0.6]
gamma = 2.0
n = [500, 2000, 8000, 32000]
sampling = "geometric"
"#;

fn spec(text: &str) -> Spec {
    mrkl::spec::parse(text, std::path::Path::new("t.toml"), "t", None).unwrap()
}

fn default_spec(name: &str) -> Spec {
    load_specs(&[], &[])
        .unwrap()
        .into_iter()
        .map(|(_, s)| s)
        .find(|s| s.name() == name)
        .unwrap()
}

fn build(s: &Spec) -> mrkl::result::ResultFile {
    mrkl::analysis::build(s, &engine::run(s, &|| {}), None)
}

/// With r_hat = r* (the data do not matter: compare at the truth), J(pi*) - J(pi_c) from
/// D3 (KL route, used per replication) equals the difference of the directly evaluated
/// objectives (the `comparators` of a cell).
#[test]
fn comparator_losses_match_direct_objective_differences_at_the_true_reward() {
    let s = spec(&format!(
        "{SMALL}record = [\"comparators\"]\n[options]\nmrpo_clip_eps = 0.1\n"
    ));
    let inst = &s.instance();
    let w = &s.cells()[0].weights;
    let gamma = 2.0;
    let direct =
        mrkl::policy::comparator_objectives(inst, mrkl::policy::Divergence::Rkl, w, gamma, 0.1);
    let exact = mrkl::policy::Regularizer::new(
        mrkl::policy::Divergence::Rkl,
        &inst.references,
        w,
        inst.contexts,
        inst.responses,
    );
    let r = inst.true_reward();
    let bases = mrkl::policy::comparator_bases(inst, w, 0.1);
    assert_eq!(bases.len(), 5); // mrpo, mrpo_ctro, mixture, reference_1, reference_2
    for (name, reg) in &bases {
        let loss = mrkl::gap::rkl_policy_loss(
            &exact,
            reg,
            &inst.rho,
            &r,
            &r,
            gamma,
            &mut Default::default(),
        );
        let d = direct["exact"] - direct[name];
        assert!(d > 1e-6, "{name}: comparators differ from exact here ({d})");
        assert!(
            (loss - d).abs() < 1e-12 * (1.0 + d),
            "{name}: {loss} vs {d}"
        );
    }
}

#[test]
fn planted_f1_and_dpo_identity_claims_are_violated() {
    let results = vec![build(&default_spec("f1_exact_vs_mrpo"))];
    let mut registry = Registry::builtin();
    let judge = |registry: &Registry, id: &str| {
        judge_all(registry, &results, Some(7))
            .into_iter()
            .find(|j| j.claim == id)
            .unwrap()
    };
    assert_eq!(judge(&registry, "F1").verdict, Verdict::Holds);
    assert_eq!(judge(&registry, "DPO.identity").verdict, Verdict::Holds);
    for planted in ["mrpo", "mrpo_ctro", "arithmetic_mixture", "reference_1"] {
        registry.set("F1.formula", planted).unwrap();
        let j = judge(&registry, "F1");
        assert_eq!(j.verdict, Verdict::Violated, "{planted}: {}", j.reason);
    }
    registry.set("DPO.identity.formula", "dpo_tabular").unwrap();
    let j = judge(&registry, "DPO.identity");
    assert_eq!(j.verdict, Verdict::Violated, "{}", j.reason);
}

/// The "offline" series of an online spec is exactly the offline run of the same spec
/// (same streams), and the online run differs from it (the data are drawn differently).
#[test]
fn online_spec_records_the_offline_run_bit_for_bit() {
    let offline = spec(SMALL);
    let online = spec(&format!("{SMALL}rounds = 3\n"));
    let a = engine::run(&offline, &|| {});
    let b = engine::run(&online, &|| {});
    assert_eq!(online.series()[0].name, "offline");
    assert_eq!(a[0].values, b[0].extras[0]);
    assert_ne!(a[0].values, b[0].values);
    // Every online gap is a valid sub-optimality.
    assert!(
        b[0].values
            .iter()
            .flatten()
            .all(|g| g.is_finite() && *g >= 0.0)
    );
}

/// DPO over the linear class reproduces the plug-in gap; over the tabular class it does not
/// (a different estimator), but converges too.
#[test]
fn dpo_linear_gap_equals_the_plug_in_gap_where_the_mle_is_interior() {
    for div in ["rkl", "fkl"] {
        let s = spec(&format!(
            "{}estimator = \"dpo_linear\"\n",
            SMALL.replace("\"rkl\"", &format!("\"{div}\""))
        ));
        let run = &engine::run(&s, &|| {})[0];
        let names: Vec<String> = s.series().into_iter().map(|d| d.name).collect();
        assert_eq!(names, ["plugin", "identity_residual"]);
        let mut compared = 0;
        for j in 0..s.ns().len() {
            for rep in 0..s.replications() {
                let res = run.extras[1][j][rep];
                if res.is_finite() {
                    compared += 1;
                    assert!(res < 1e-8, "{div}: residual {res}");
                    // Policies within 1e-8 of each other: their gaps differ by at most
                    // |grad gap| * 1e-8 * |X||Y| ~ 1e-3 * 1e-8 * 30, far inside 1e-6 relative.
                    let (dpo, plug) = (run.values[j][rep], run.extras[0][j][rep]);
                    assert!(
                        (dpo - plug).abs() <= 1e-6 * plug + 1e-15,
                        "{div}: {dpo} vs {plug}"
                    );
                }
            }
        }
        assert!(
            compared > s.ns().len() * s.replications() / 2,
            "{div}: {compared}"
        );
    }
}

/// Tabular DPO with `dpo_ridge = 0` is not hidden: each replication's fit reports whether it
/// has a finite minimiser, and its limiting support, checked against an independent
/// recount from the data (`dpo::limiting_support` on the same nested counts, replayed);
/// result.json counts the fits without one per n and REPORT.md says so. At n = 20 on 5
/// responses every context misses comparisons and some response is beaten without beating
/// back (all fits fail); at n = 32000 with uniform mu each pair is compared about 530 times
/// with win probabilities in [0.12, 0.88], so both ways (all converge). With
/// the default ridge the block is absent (existing results are unchanged).
#[test]
fn tabular_dpo_without_ridge_reports_its_missing_minimisers() {
    let text = format!(
        "{}estimator = \"dpo_tabular\"\n[options]\ndpo_ridge = 0.0\n",
        SMALL
            .replace("n = [500, 2000", "n = [20, 2000")
            .replace("sampling = \"geometric\"", "sampling = \"uniform\"")
    );
    let s = spec(&text);
    let names: Vec<String> = s.series().into_iter().map(|d| d.name).collect();
    assert_eq!(
        names,
        [
            "plugin",
            "dpo_not_converged",
            "dpo_vanishing",
            "dpo_point_mass_contexts"
        ]
    );
    let result = build(&s);
    let cell = &result.cells[0];
    let m = cell.no_minimiser.as_ref().expect("reported with ridge 0");
    assert_eq!(m.not_converged.first(), Some(&s.replications()));
    assert_eq!(m.not_converged.last(), Some(&0));
    assert!(m.vanishing_mean[0] > 0.0 && *m.vanishing_mean.last().unwrap() == 0.0);
    // Independent recount: replay replication 0's datasets and recompute the support.
    let prepared = engine::Prepared::new(&s);
    let mut recount = vec![];
    prepared.run_unit_observed(
        0,
        0,
        Some(&mut |v: engine::LevelView| {
            let ls = mrkl::dpo::limiting_support(v.reg, v.counts);
            let fit = mrkl::dpo::fit_tabular(v.reg, v.counts, v.gamma, 0.0, 1e-10);
            assert_eq!(fit.converged, ls.vanishing == 0);
            recount.push((ls.vanishing as f64, ls.point_mass_contexts as f64));
        }),
    );
    for (j, (vanishing, point)) in recount.iter().enumerate() {
        assert_eq!(cell.series[2].raw[j][0], *vanishing, "level {j}");
        assert_eq!(cell.series[3].raw[j][0], *point, "level {j}");
        assert_eq!(
            cell.series[1].raw[j][0],
            f64::from(u8::from(*vanishing > 0.0))
        );
    }
    let report = mrkl::report::no_minimiser_lines(&result);
    assert!(
        report.contains("**Tabular DPO without ridge**")
            && report.contains(&format!(
                "n = 20: {} of {}",
                s.replications(),
                s.replications()
            )),
        "{report}"
    );
    let ridged = build(&spec(&text.replace("dpo_ridge = 0.0", "dpo_ridge = 1.0")));
    assert!(ridged.cells[0].no_minimiser.is_none());
    assert!(!mrkl::result::to_json(&ridged).contains("no_minimiser"));
}

#[test]
fn simplex_sweep_and_coverage_family_are_built_as_specified() {
    let s = default_spec("mr_simplex_k3");
    assert_eq!(s.cells().len(), 45); // C(8 + 2, 2)
    for c in s.cells() {
        assert!((c.weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(c.weights.iter().all(|w| (w * 8.0).fract() == 0.0));
    }
    // one_covers: reference 2 gives the top 30% of responses (3 of 10) by r* 1/100 of the
    // probability it gives them in the plain instance drawn from the same stream, up to the
    // common normalisation.
    let fam = default_spec("mr_alpha_one_covers");
    let plain = spec(
        &std::fs::read_to_string("sims/mr_alpha_one_covers.toml")
            .unwrap()
            .replace(
                "family = { kind = \"one_covers\", good_fraction = 0.3, suppression = 0.01 }",
                "",
            ),
    );
    let (ny, r) = (10, fam.instance().true_reward());
    for x in 0..fam.instance().contexts {
        let row = &r[x * ny..(x + 1) * ny];
        let mut order: Vec<usize> = (0..ny).collect();
        order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
        let p = &plain.instance().references[1][x * ny..(x + 1) * ny];
        let q = &fam.instance().references[1][x * ny..(x + 1) * ny];
        let bad = order[9];
        let scale = q[bad] / p[bad];
        for &y in &order[..3] {
            assert!((q[y] / p[y] / scale - 0.01).abs() < 1e-12);
        }
        for &y in &order[3..] {
            assert!((q[y] / p[y] / scale - 1.0).abs() < 1e-12);
        }
        // Reference 1 is untouched (up to the renormalisation's rounding).
        for (a, b) in fam.instance().references[0][x * ny..(x + 1) * ny]
            .iter()
            .zip(&plain.instance().references[0][x * ny..(x + 1) * ny])
        {
            assert!((a - b).abs() <= 1e-15 * b, "{a} vs {b}");
        }
    }
}

/// distinct_errors: of the bottom half by r*, reference 1 has the worst, third worst, ...
/// boosted 20x, reference 2 the others (relative to the plain draw from the same stream).
#[test]
fn distinct_errors_family_boosts_alternate_bad_responses() {
    let fam = default_spec("mr_alpha_distinct_errors");
    let text = std::fs::read_to_string("sims/mr_alpha_distinct_errors.toml").unwrap();
    let plain = spec(&text.replace(
        "family = { kind = \"distinct_errors\", bad_fraction = 0.5, boost = 20.0 }",
        "",
    ));
    let (ny, r) = (10, fam.instance().true_reward());
    for x in 0..fam.instance().contexts {
        let row = &r[x * ny..(x + 1) * ny];
        let mut order: Vec<usize> = (0..ny).collect();
        order.sort_by(|&a, &b| row[a].total_cmp(&row[b])); // worst first
        for i in 0..2 {
            let p = &plain.instance().references[i][x * ny..(x + 1) * ny];
            let q = &fam.instance().references[i][x * ny..(x + 1) * ny];
            let best = order[9];
            let scale = q[best] / p[best];
            for (rank, &y) in order.iter().enumerate() {
                let expected = if rank < 5 && rank % 2 == i { 20.0 } else { 1.0 };
                assert!((q[y] / p[y] / scale - expected).abs() < 1e-9 * expected);
            }
        }
    }
}

#[test]
fn new_options_reject_bad_values_naming_the_field() {
    let err = |extra: &str| {
        mrkl::spec::parse(
            &format!("{SMALL}{extra}"),
            std::path::Path::new("t.toml"),
            "t",
            None,
        )
        .unwrap_err()
        .to_string()
    };
    let e = err("rounds = 0\n");
    assert!(e.contains("experiment.rounds = 0"), "{e}");
    let e = err("rounds = 501\n");
    assert!(e.contains("smallest n = 500"), "{e}");
    let e = err("record = [\"everything\"]\n");
    assert!(e.contains("everything"), "{e}");
    let e = err("estimator = \"dpo_tabular\"\nrounds = 2\n");
    assert!(e.contains("experiment.rounds") && e.contains("DPO"), "{e}");
    let e = mrkl::spec::parse(
        &SMALL.replace("\"rkl\"", "\"fkl\"").replace(
            "sampling = \"geometric\"",
            "sampling = \"geometric\"\nrecord = [\"comparators\"]",
        ),
        std::path::Path::new("t.toml"),
        "t",
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("experiment.record") && e.contains("rkl"), "{e}");
    let e = err("[sweep]\nsimplex_step = 0.3\n");
    assert!(e.contains("sweep.simplex_step = 0.3"), "{e}");
    let e = mrkl::spec::parse(
        &SMALL.replace(
            "concentration = 0.5",
            "concentration = 0.5\nfamily = { kind = \"one_covers\", good_fraction = 0.3, suppression = 0.0 }",
        ),
        std::path::Path::new("t.toml"),
        "t",
        None,
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("instance.family.suppression = 0"), "{e}");
    let e = err("[options]\nstreams = \"per_thread\"\n");
    assert!(e.contains("options.streams") && e.contains("shared"), "{e}");
}

/// A K = 3 weight sweep gets a simplex plot: one dot per cell in each panel (gap, expected
/// reward), the best of each ringed, and it rasterises; other results get none.
#[test]
fn simplex_plot_draws_every_cell_of_a_k3_sweep() {
    let s = spec(&format!(
        "{}record = [\"objective\"]\n[sweep]\nsimplex_step = 0.5\n",
        SMALL
            .replace("references = 2", "references = 3")
            .replace("weights = [0.4, 0.6]", "weights = [0.4, 0.3, 0.3]")
    ));
    assert_eq!(s.cells().len(), 6);
    let svg = mrkl::plot::simplex_plot_svg(&build(&s)).expect("a K = 3 sweep");
    assert_eq!(svg.matches("r=\"8\"").count(), 12, "6 cells x 2 panels");
    assert_eq!(svg.matches("r=\"12\"").count(), 2, "one ring per panel");
    assert!(mrkl::plot::svg_to_png(&svg).unwrap().len() > 1000);
    assert!(mrkl::plot::simplex_plot_svg(&build(&spec(SMALL))).is_none());
}

/// With shared streams and one sampling policy for all cells, the engine fits each
/// replication's data once and reuses the fits in every cell. The values must equal those of
/// one-cell specs (which compute their own fits), bit for bit, with 1 and 2 threads; and a
/// shard of the units (some cells of a replication missing) must agree too.
#[test]
fn shared_fits_equal_separate_runs_bit_for_bit() {
    let sweep = format!(
        "{}record = [\"objective\"]\n[options]\nstreams = \"shared\"\n[sweep]\nweights = [[1.0, 0.0], [0.3, 0.7], [0.0, 1.0]]\n",
        SMALL.replace("sampling = \"geometric\"", "sampling = \"uniform\"")
    );
    let s = spec(&sweep);
    let together = |threads: usize| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| engine::run(&s, &|| {}))
    };
    let (one, two) = (together(1), together(2));
    assert_eq!(one, two);
    for (k, w) in [[1.0, 0.0], [0.3, 0.7], [0.0, 1.0]].iter().enumerate() {
        let single = spec(&format!(
            "{}[options]\nstreams = \"shared\"\n",
            SMALL
                .replace("sampling = \"geometric\"", "sampling = \"uniform\"")
                .replace(
                    "weights = [0.4, 0.6]",
                    &format!("weights = [{}, {}]", w[0], w[1])
                )
                .replace("n = [", "record = [\"objective\"]\nn = [")
        ));
        let alone = &engine::run(&single, &|| {})[0];
        assert_eq!(alone.values, one[k].values, "cell {k}");
        assert_eq!(alone.extras, one[k].extras, "cell {k}");
    }
    // Units of cells 1 and 2 only (as a shard might hold): same values as in the full run.
    let todo: Vec<usize> = (s.replications()..3 * s.replications()).collect();
    let part = engine::run_units(&s, &todo, &|_, _| {});
    for (i, u) in part {
        let (c, r) = engine::units(&s)[i];
        assert_eq!(
            u.values,
            one[c].values.iter().map(|v| v[r]).collect::<Vec<_>>()
        );
    }
}
