//! The fixed-design sampler of engine specs (`experiment.sampler = "fixed_design"`,
//! docs/theory.md §2, "The fixed design"): refusals of bad designs (one line naming field,
//! value and what is allowed, exit code 2), the counts of every level and the nesting of the
//! datasets inside the engine, the Bradley-Terry law of the outcomes, the design recorded in
//! `result.json`, and byte-identical results for one and two threads.

mod common;

use common::{mrkl, scratch};
use mrkl::engine::{LevelView, Prepared};
use mrkl::numerics::sigmoid;
use mrkl::spec::parse;
use std::path::Path;

/// Two contexts, three responses, a linear class (B = 4); 60% of n - 3 on (0, 1) at context
/// 0, 40% on (2, 1) at context 1, and 3 fixed comparisons of (1, 2) at context 0.
const SPEC: &str = r#"
name = "fixed"
seed = 5
replications = 8
[instance]
source = "random"
contexts = 2
responses = 3
references = 2
[instance.reward]
class = "linear"
dim = 2
bound = 4.0
[experiment]
divergence = "rkl"
quantity = "suboptimality"
weights = [0.5, 0.5]
gamma = 1.0
n = [10, 100, 1000, 10000]
sampler = "fixed_design"
[experiment.design]
comparisons = [
  { context = 0, a = 0, b = 1, share = 0.6 },
  { context = 0, a = 1, b = 2, count = 3 },
  { context = 1, a = 2, b = 1, share = 0.4 },
]
"#;

fn refusal(text: &str) -> String {
    let e = parse(text, Path::new("x.toml"), "x", None).unwrap_err();
    assert_eq!(e.exit_code(), 2, "{e}");
    let msg = e.to_string();
    assert!(!msg.contains('\n'), "{msg}");
    msg
}

fn row(from: &str, to: &str) -> String {
    assert!(SPEC.contains(from), "{from}");
    SPEC.replace(from, to)
}

#[test]
fn bad_designs_are_refused_naming_field_value_and_allowed() {
    let cases: Vec<(String, &str, &str)> = vec![
        (
            row("context = 1, a = 2", "context = 2, a = 2"),
            "experiment.design.comparisons[2].context = 2",
            "from 0 to 1",
        ),
        (
            row("a = 1, b = 2", "a = 3, b = 2"),
            "experiment.design.comparisons[1].a = 3",
            "from 0 to 2",
        ),
        (
            row("a = 1, b = 2", "a = 1, b = 7"),
            "experiment.design.comparisons[1].b = 7",
            "from 0 to 2",
        ),
        (
            row("a = 1, b = 2", "a = 2, b = 2"),
            "experiment.design.comparisons[1].b = 2",
            "other than a = 2",
        ),
        (
            row("count = 3", "count = 0"),
            "experiment.design.comparisons[1].count = 0",
            "from 1",
        ),
        (
            row("count = 3", "count = 3, share = 0.1"),
            "experiment.design.comparisons[1] = both count and share",
            "exactly one of count",
        ),
        (
            row(", count = 3", ""),
            "experiment.design.comparisons[1] = neither count nor share",
            "exactly one of count",
        ),
        (
            row("share = 0.4", "share = 0.3"),
            "experiment.design.comparisons (sum of shares) = 0.9",
            "summing to 1",
        ),
        (
            row("share = 0.4", "share = 1.5"),
            "experiment.design.comparisons[2].share = 1.5",
            "[1e-6, 1]",
        ),
        (
            row("count = 3", "count = 11"),
            "experiment.n = [10, 100, 1000, 10000]",
            ">= 11, the sum of the design's counts",
        ),
        (row("count = 3", "count = 3, weight = 2"), "weight", ""),
        (
            SPEC.replace("sampler = \"fixed_design\"", ""),
            "experiment.design = given with sampler = \"counts\"",
            "only with sampler = \"fixed_design\"",
        ),
        (
            SPEC.replace("sampler = \"fixed_design\"", "sampler = \"per_sample\""),
            "experiment.design = given with sampler = \"per_sample\"",
            "only with sampler = \"fixed_design\"",
        ),
        (
            SPEC.split("[experiment.design]")
                .next()
                .unwrap()
                .to_string(),
            "experiment.design = missing",
            "for sampler = \"fixed_design\"",
        ),
        (
            row(
                "sampler = \"fixed_design\"",
                "sampler = \"fixed_design\"\nsampling = \"uniform\"",
            ),
            "experiment.sampling = \"uniform\"",
            "no sampling policy with sampler = \"fixed_design\"",
        ),
        (
            row("gamma = 1.0", "gamma = 1.0\nrounds = 2"),
            "experiment.rounds = 2",
            "1 with sampler = \"fixed_design\"",
        ),
        (
            row("share = 0.6", "count = 5")
                .replace("share = 0.4", "count = 2")
                .replace("n = [10, 100, 1000, 10000]", "n = [10, 20]"),
            "experiment.n = [10, 20]",
            "n = [10], the design's total",
        ),
        (
            row(
                "[experiment.design]",
                "[sweep]\ncontexts = [1, 2]\n[experiment.design]",
            ),
            "experiment.design = given with an instance sweep",
            "without an instance sweep",
        ),
    ];
    for (text, field_value, allowed) in cases {
        let msg = refusal(&text);
        assert!(
            msg.contains(field_value) && msg.contains(allowed),
            "{field_value} / {allowed}: {msg}"
        );
    }
    // The empty list of comparisons.
    let empty = SPEC.split("comparisons = [").next().unwrap().to_string() + "comparisons = []\n";
    let msg = refusal(&empty);
    assert!(
        msg.contains("experiment.design.comparisons = []") && msg.contains("at least one"),
        "{msg}"
    );
    // A count-only design runs at its one sample size.
    let counts_only = row("share = 0.6", "count = 5")
        .replace("share = 0.4", "count = 2")
        .replace("n = [10, 100, 1000, 10000]", "n = [10]");
    parse(&counts_only, Path::new("x.toml"), "x", None).unwrap();
}

/// Every level of every replication holds exactly the design's comparisons per pair (3 on
/// (1, 2) at context 0, Webster's 60/40 split of n - 3 on the share rows, nothing else), and
/// each level's win counts contain the previous level's (nested datasets).
#[test]
fn the_engine_grows_the_design_level_by_level() {
    let spec = parse(SPEC, Path::new("x.toml"), "x", None).unwrap();
    let design = spec.design().expect("a fixed design");
    let prepared = Prepared::new(&spec);
    for rep in 0..3 {
        let mut levels: Vec<Vec<[u64; 2]>> = vec![];
        let mut observe = |v: LevelView| {
            let n = spec.ns()[v.level];
            assert_eq!(v.counts.n, n);
            let d = design.at(n);
            let total = |i: usize| v.counts.wins[i][0] + v.counts.wins[i][1];
            // pairs of 3 responses: (0,1) (0,2) (1,2); context x at offset 3x.
            assert_eq!(total(0), d.comparisons[0].count);
            assert_eq!(total(2), 3);
            assert_eq!(total(5), d.comparisons[2].count);
            assert_eq!(total(1) + total(3) + total(4), 0);
            assert_eq!(
                d.comparisons[0].count + d.comparisons[2].count,
                n - 3,
                "the share rows take n - C"
            );
            levels.push(v.counts.wins.clone());
        };
        prepared.run_unit_observed(0, rep, Some(&mut observe));
        assert_eq!(levels.len(), 4);
        for w in levels.windows(2) {
            for (a, b) in w[0].iter().zip(&w[1]) {
                assert!(a[0] <= b[0] && a[1] <= b[1], "not nested: {a:?} -> {b:?}");
            }
        }
    }
    // n = 10: m = 7 split 0.6 / 0.4 -> 4 and 3 (Webster); n = 10000: 5998 and 3999;
    // n = 100: 58 and 39.
    let counts = |n| {
        design
            .at(n)
            .comparisons
            .iter()
            .map(|c| c.count)
            .collect::<Vec<_>>()
    };
    assert_eq!(counts(10), vec![4, 3, 3]);
    assert_eq!(counts(10_000), vec![5998, 3, 3999]);
    assert_eq!(counts(100), vec![58, 3, 39]);
}

/// Across 400 replications of the engine, the wins of response 2 over 1 at context 1 at
/// n = 100 (39 comparisons) have the Binomial(39, sigma(r*(1, 2) - r*(1, 1))) mean within
/// 4.5 standard errors, sqrt(39 p q / 400); the same check against the law with the sign of
/// the reward difference flipped (a planted wrong sampler) fails, since 39 |2p - 1| exceeds
/// twice that tolerance on this instance (checked below).
#[test]
fn engine_outcomes_follow_bradley_terry() {
    let spec = parse(SPEC, Path::new("x.toml"), "x", None).unwrap();
    let prepared = Prepared::new(&spec);
    let r = spec.instance().true_reward();
    let p = sigmoid(r[3 + 2] - r[3 + 1]);
    let reps = 400;
    let mut sum = 0.0;
    for rep in 0..reps {
        let mut observe = |v: LevelView| {
            if v.level == 1 {
                sum += v.counts.wins[3 + 2][1] as f64; // pair (1, 2) at context 1: 2 won
            }
        };
        prepared.run_unit_observed(0, rep, Some(&mut observe));
    }
    let count = 39.0;
    let mean = sum / reps as f64;
    let tolerance = 4.5 * (count * p * (1.0 - p) / reps as f64).sqrt();
    assert!(
        (mean - count * p).abs() < tolerance,
        "{mean} vs {}",
        count * p
    );
    let flipped = 1.0 - p;
    assert!(
        (count * (p - flipped)).abs() > 2.0 * tolerance,
        "instance too balanced for the planted check: p = {p}"
    );
    assert!((mean - count * flipped).abs() > tolerance);
}

/// A run records the design, the sampler, `sampling = "none"`, the rounding rule and the
/// refused prediction, and is byte-identical with one and two threads.
#[test]
fn runs_record_the_design_and_do_not_depend_on_threads() {
    let d = scratch("fixed_design", "threads");
    std::fs::write(d.join("fixed.toml"), SPEC).unwrap();
    let mut texts = vec![];
    for t in ["1", "2"] {
        let out = format!("out{t}");
        let o = mrkl(&["run", "fixed.toml", "--out", &out, "--threads", t], &d);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        texts.push(std::fs::read(d.join(&out).join("fixed/result.json")).unwrap());
    }
    assert_eq!(
        texts[0], texts[1],
        "result.json differs between 1 and 2 threads"
    );
    let r: serde_json::Value = serde_json::from_slice(&texts[0]).unwrap();
    assert_eq!(r["spec"]["sampler"], "fixed_design");
    assert_eq!(r["spec"]["sampling"], "none");
    assert_eq!(r["ours"]["sampling"]["value"], "none");
    assert_eq!(r["ours"]["design_rounding"]["value"], "webster");
    let rows = r["spec"]["design"]["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[1]["count"], 3);
    assert_eq!(rows[2]["share"], 0.4);
    assert_eq!(rows[2]["context"], 1);
    let refused = r["cells"][0]["asymptotic"]["refused"].as_str().unwrap();
    assert!(
        refused.starts_with("fixed design: not derived"),
        "{refused}"
    );
    assert!(r["cells"][0]["coverage"].as_f64().unwrap() > 0.0);
    // The spec hash covers the design: another share split, another hash.
    let other = SPEC
        .replace("share = 0.6", "share = 0.5")
        .replace("share = 0.4", "share = 0.5");
    let hash = |text: &str| {
        mrkl::analysis::spec_hash(&parse(text, Path::new("x.toml"), "x", None).unwrap())
    };
    assert_ne!(hash(SPEC), hash(&other));
}

/// The pessimism instance through the engine (`sims/external/pessimism_engine.toml`): its
/// instance file is the paper's in plane coordinates (features H^T phi to 1e-15), its design at
/// each n is `pessimism::design(n)`, and the engine's mean optimality gap of the RKL plug-in
/// policy at gamma = 1e6 (the greedy policy) agrees with the exact greedy gap of the
/// enumeration (`pessimism::gap_point`) within 4.5 standard errors of the 400-replication
/// mean (se from the replications' spread) at every n of the spec.
#[test]
fn the_engine_reproduces_the_exact_greedy_gap_of_the_pessimism_instance() {
    use mrkl::pessimism::{self, ConstrainedMle, PessimismOptions};
    let spec = mrkl::spec::load(Path::new("sims/external/pessimism_engine.toml")).unwrap();
    let h = pessimism::helmert_basis(3);
    let mrkl::instance::RewardModel::Linear(l) = &spec.instance().reward else {
        panic!("a linear instance")
    };
    for a in 0..4 {
        for j in 0..2 {
            let psi: f64 = (0..3).map(|i| h[(i, j)] * pessimism::FEATURES[a][i]).sum();
            assert!(
                (l.features[a * 2 + j] - psi).abs() < 1e-15,
                "a{} {j}",
                a + 1
            );
        }
    }
    let r = spec.instance().true_reward();
    let want = pessimism::rewards(&pessimism::THETA_STAR);
    assert!(
        r.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-15),
        "{r:?}"
    );
    let design = spec.design().unwrap();
    for &n in spec.ns() {
        assert_eq!(design.at(n), pessimism::design(n), "n = {n}");
    }
    let runs = mrkl::engine::run(&spec, &|| {});
    let opts = PessimismOptions::default();
    let mut mle = ConstrainedMle::new(opts.bound);
    for (j, &n) in spec.ns().iter().enumerate() {
        let v = &runs[0].values[j];
        let k = v.len() as f64;
        let mean = v.iter().sum::<f64>() / k;
        let sd = (v.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / (k - 1.0)).sqrt();
        let exact = pessimism::gap_point(&opts, &mut mle, n, 0).greedy;
        assert!(
            (mean - exact).abs() <= 4.5 * sd / k.sqrt(),
            "n = {n}: engine {mean} vs exact {exact} (se {})",
            sd / k.sqrt()
        );
    }
}
