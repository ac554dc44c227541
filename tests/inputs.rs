//! Arbitrary input never crashes the loaders, and extreme but valid inputs give finite,
//! non-negative gaps (or a clear rejection naming the problem).

use mrkl::engine::Prepared;
use mrkl::instance::RawInstance;
use mrkl::spec::parse;
use proptest::prelude::*;
use std::path::Path;

const BASE: &str = r#"
seed = 1
replications = 2
[instance]
source = "random"
contexts = 3
responses = 4
references = 2
zero_fraction = 0.3
[instance.reward]
class = "linear"
dim = 2
bound = 1.0
[experiment]
divergence = "rkl"
quantity = "suboptimality"
weights = [0.5, 0.5]
gamma = 1.0
n = [10, 100, 1000, 10000]
"#;

/// The loader's contract on any text: a checked spec, or an error that is one line and
/// maps to exit code 2. A panic fails the property.
fn spec_outcome(text: &str) -> Result<(), String> {
    match parse(text, Path::new("fuzz.toml"), "fuzz", None) {
        Ok(_) => Ok(()),
        Err(e) => {
            let msg = e.to_string();
            if e.exit_code() != 2 || msg.contains('\n') || msg.is_empty() {
                Err(format!("bad error: code {} {msg:?}", e.exit_code()))
            } else {
                Ok(())
            }
        }
    }
}

fn instance_outcome(text: &str) -> Result<(), String> {
    match serde_json::from_str::<RawInstance>(text) {
        Err(_) => Ok(()), // a parse error is reported by the caller as `Error::Parse`
        Ok(raw) => match raw.check() {
            Ok(i) => {
                // A checked instance is usable: references are distributions.
                for r in &i.references {
                    for row in r.chunks(i.responses) {
                        let s: f64 = row.iter().sum();
                        if !((s - 1.0).abs() < 1e-9) {
                            return Err(format!("unnormalised row {row:?}"));
                        }
                    }
                }
                Ok(())
            }
            Err(e) if e.exit_code() == 2 && !e.to_string().contains('\n') => Ok(()),
            Err(e) => Err(format!("bad error {e}")),
        },
    }
}

/// Mutations of a valid spec: replace one value by an arbitrary token.
fn mutated_spec() -> impl Strategy<Value = String> {
    let lines: Vec<String> = BASE.lines().map(String::from).collect();
    let n = lines.len();
    (
        0..n,
        prop_oneof![
            Just("-1".to_string()),
            Just("0".to_string()),
            Just("1e308".to_string()),
            Just("nan".to_string()),
            Just("inf".to_string()),
            Just("\"x\"".to_string()),
            Just("[]".to_string()),
            Just("[1e-320, 1]".to_string()),
            Just("{}".to_string()),
            Just("18446744073709551615".to_string()),
            Just("-9223372036854775808".to_string()),
            "[a-z0-9\\[\\]{}=., \"-]{0,12}".prop_map(|s| s),
        ],
    )
        .prop_map(move |(i, tok)| {
            let mut l = lines.clone();
            if let Some((k, _)) = l[i].split_once(" = ") {
                l[i] = format!("{k} = {tok}");
            } else {
                l[i] = tok;
            }
            l.join("\n")
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics_the_spec_loader(text in "\\PC{0,300}") {
        prop_assert!(spec_outcome(&text).is_ok(), "{:?}", spec_outcome(&text));
    }

    #[test]
    fn mutated_specs_are_checked_or_rejected_cleanly(text in mutated_spec()) {
        prop_assert!(spec_outcome(&text).is_ok(), "{:?}", spec_outcome(&text));
    }

    #[test]
    fn arbitrary_json_never_panics_the_instance_loader(text in "\\PC{0,300}") {
        prop_assert!(instance_outcome(&text).is_ok());
    }

    #[test]
    fn structured_instances_are_checked_or_rejected_cleanly(
        refs in proptest::collection::vec(proptest::collection::vec(proptest::collection::vec(prop_oneof![Just(0.0), Just(1e-300), -1.0..2.0f64, Just(f64::MAX)], 0..4), 0..3), 0..3),
        theta in proptest::collection::vec(-3.0..3.0f64, 0..3),
        bound in prop_oneof![Just(0.0), Just(-1.0), 0.1..60.0f64],
    ) {
        let nx = refs.first().map(|r| r.len()).unwrap_or(0);
        let ny = refs.first().and_then(|r| r.first()).map(|r| r.len()).unwrap_or(0);
        let features = vec![vec![vec![0.1; theta.len()]; ny]; nx];
        let json = serde_json::json!({ "references": refs, "reward": { "class": "linear", "features": features, "theta": theta, "bound": bound } });
        prop_assert!(instance_outcome(&json.to_string()).is_ok());
    }
}

/// One replication along a short grid for an extreme spec: every gap finite and >= 0.
fn finite_gaps(text: &str) -> Vec<f64> {
    let spec = parse(text, Path::new("x.toml"), "x", None).unwrap_or_else(|e| panic!("{e}"));
    let p = Prepared::new(&spec);
    let mut all = vec![];
    for rep in 0..spec.replications() {
        let u = p.run_unit(0, rep);
        for v in &u.values {
            assert!(v.is_finite() && *v >= 0.0, "gap {v} in {:?}", u.values);
        }
        all.extend(u.values);
    }
    all
}

#[test]
fn extreme_valid_inputs_give_finite_gaps() {
    let mut cases = 0;
    for div in ["rkl", "fkl"] {
        for quantity in ["suboptimality", "reward_gap", "optimality"] {
            for gamma in ["1e-6", "1e-3", "1.0", "1e4", "1e6"] {
                for (bound, zero_fraction, weights, responses, references) in [
                    ("50.0", "0.0", "[0.5, 0.5]", 10, 2),
                    ("1.0", "0.9", "[1.0, 0.0]", 6, 2),
                    ("50.0", "0.6", "[0.0, 1.0]", 6, 2),
                    ("20.0", "0.0", "[1.0]", 1, 1),
                    ("5.0", "0.5", "[1.0]", 8, 1),
                ] {
                    let text = BASE
                        .replace("divergence = \"rkl\"", &format!("divergence = \"{div}\""))
                        .replace(
                            "quantity = \"suboptimality\"",
                            &format!("quantity = \"{quantity}\""),
                        )
                        .replace("gamma = 1.0", &format!("gamma = {gamma}"))
                        .replace("bound = 1.0", &format!("bound = {bound}"))
                        .replace(
                            "zero_fraction = 0.3",
                            &format!("zero_fraction = {zero_fraction}"),
                        )
                        .replace("weights = [0.5, 0.5]", &format!("weights = {weights}"))
                        .replace("responses = 4", &format!("responses = {responses}"))
                        .replace("references = 2", &format!("references = {references}"))
                        .replace("zero_fraction", "concentration = 0.05\nzero_fraction");
                    finite_gaps(&text);
                    cases += 1;
                }
            }
        }
    }
    assert_eq!(cases, 150);
}

#[test]
fn nearly_and_fully_separable_data_give_finite_gaps() {
    // A large reward bound makes Bradley-Terry labels nearly deterministic (separable at small n).
    for n in ["[5, 10, 20, 40]", "[100, 1000, 10000, 100000]"] {
        let text = BASE
            .replace("bound = 1.0", "bound = 50.0")
            .replace("n = [10, 100, 1000, 10000]", &format!("n = {n}"));
        let gaps = finite_gaps(&text);
        assert!(gaps.iter().any(|g| *g > 0.0));
    }
}

#[test]
fn out_of_range_inputs_are_rejected_naming_the_problem() {
    for (from, to, expect) in [
        ("gamma = 1.0", "gamma = 1e7", "experiment.gamma = 10000000"),
        ("gamma = 1.0", "gamma = 1e-7", "experiment.gamma"),
        ("bound = 1.0", "bound = 51.0", "instance.reward.bound = 51"),
        ("responses = 4", "responses = 0", "instance.responses = 0"),
        (
            "references = 2",
            "references = 0",
            "instance.references = 0",
        ),
    ] {
        let e = parse(&BASE.replace(from, to), Path::new("x.toml"), "x", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains(expect), "{e}");
    }
}

/// `--set experiment.n=[...]` replaces the grid whatever its form, and a field of `n_grid`
/// on a spec that lists its sizes is refused with the key that works.
#[test]
fn overrides_replace_explicit_and_geometric_grids() {
    use mrkl::spec::parse_with;
    let set = |k: &str, v: &str| vec![(k.to_string(), v.to_string())];
    let o = Path::new("o.toml");
    let listed = parse_with(BASE, o, "o", None, &set("experiment.n", "[20, 200]")).unwrap();
    assert_eq!(listed.ns(), &vec![20, 200]);
    let grid = BASE.replace(
        "n = [10, 100, 1000, 10000]",
        "n_grid = { from = 10, to = 1000, levels = 3 }",
    );
    let regrid = parse_with(&grid, o, "o", None, &set("experiment.n", "[30, 300]")).unwrap();
    assert_eq!(regrid.ns(), &vec![30, 300]);
    let shorter = parse_with(&grid, o, "o", None, &set("experiment.n_grid.to", "100")).unwrap();
    assert_eq!(shorter.ns(), &vec![10, 32, 100]);
    let e = parse_with(BASE, o, "o", None, &set("experiment.n_grid.to", "100")).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().contains("experiment.n=["), "{e}");
}

/// The quick tier (`check --quick`): a quarter of the replications, at least 20 (never
/// more than the spec's), and (levels + 2) / 2 levels of a geometric grid with the same
/// ends; an explicit `n` list is kept; an explicit `--set` still wins.
#[test]
fn the_quick_tier_quarters_replications_and_halves_geometric_grids() {
    use mrkl::spec::Tier;
    let o = Path::new("q.toml");
    let grid = BASE
        .replace("replications = 2", "replications = 200")
        .replace(
            "n = [10, 100, 1000, 10000]",
            "n_grid = { from = 10, to = 100000, levels = 16 }",
        );
    let quick = Tier::Quick.overrides(&grid, o).unwrap();
    assert_eq!(
        quick,
        vec![
            ("replications".to_string(), "50".to_string()),
            ("experiment.n_grid.levels".to_string(), "9".to_string())
        ]
    );
    let spec = mrkl::spec::parse_with(&grid, o, "q", None, &quick).unwrap();
    assert_eq!((spec.replications(), spec.ns().len()), (50, 9));
    assert_eq!((spec.ns()[0], *spec.ns().last().unwrap()), (10, 100000));
    let few = BASE.replace("replications = 2", "replications = 30");
    assert_eq!(
        Tier::Quick.overrides(&few, o).unwrap(),
        vec![("replications".to_string(), "20".to_string())]
    );
    assert_eq!(
        Tier::Quick.overrides(BASE, o).unwrap(),
        vec![("replications".to_string(), "2".to_string())]
    );
    assert!(Tier::Full.overrides(&grid, o).unwrap().is_empty());
}

/// The IPO estimators: RKL only, `ipo_linear` with the linear class only, offline only, an
/// unknown name lists the allowed ones; each refusal is one line naming field and value.
/// Valid IPO specs give finite gaps at extreme gamma, bound and zero_fraction.
#[test]
fn ipo_estimators_are_checked_and_give_finite_gaps() {
    let with = |estimator: &str| {
        BASE.replace(
            "gamma = 1.0",
            &format!("gamma = 1.0\nestimator = \"{estimator}\""),
        )
    };
    let err = |text: &str| {
        let e = parse(text, Path::new("x.toml"), "x", None).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let msg = e.to_string();
        assert!(!msg.contains('\n'), "{msg}");
        msg
    };
    for name in ["ipo_tabular", "ipo_linear"] {
        let e = err(&with(name).replace("\"rkl\"", "\"fkl\""));
        assert!(
            e.contains(&format!("experiment.estimator = \"{name}\"")) && e.contains("rkl"),
            "{e}"
        );
        let e = err(&with(name).replace("n = [10, 100", "rounds = 2\nn = [10, 100"));
        assert!(
            e.contains("experiment.rounds = 2") && e.contains("IPO"),
            "{e}"
        );
    }
    let finite = with("ipo_linear").replace(
        "class = \"linear\"\ndim = 2\nbound = 1.0",
        "class = \"finite\"\ncandidates = 4\nr_max = 1.0",
    );
    let e = err(&finite);
    assert!(
        e.contains("experiment.estimator = \"ipo_linear\"") && e.contains("linear reward class"),
        "{e}"
    );
    finite_gaps(&finite.replace("ipo_linear", "ipo_tabular"));
    let e = err(&with("ipo"));
    assert!(e.contains("ipo_tabular") && e.contains("ipo_linear"), "{e}");
    for name in ["ipo_tabular", "ipo_linear"] {
        for (gamma, bound, zero_fraction) in [
            ("1e-6", "1.0", "0.3"),
            ("1e6", "50.0", "0.9"),
            ("1.0", "50.0", "0.0"),
        ] {
            let text = with(name)
                .replace("gamma = 1.0", &format!("gamma = {gamma}"))
                .replace("bound = 1.0", &format!("bound = {bound}"))
                .replace(
                    "zero_fraction = 0.3",
                    &format!("zero_fraction = {zero_fraction}"),
                );
            finite_gaps(&text);
        }
    }
}
