//! Sweeps over instance parameters (`[sweep]` references, contexts, responses, zero_fraction,
//! concentration, dim; docs/theory.md §2, "Instance sweeps"): how each cell's instance is
//! made, the labels, the paired weights of a sweep over K, the CSV columns, the refusals,
//! and that a run over such a sweep is the same whatever the thread count.

use mrkl::instance::InstanceParam;
use mrkl::spec::{InstanceDraw, Spec, parse};
use std::path::Path;

/// A 5-reference linear instance with zeros in the references (so that nesting responses
/// has to renormalise something non-trivial), swept over `SWEEP`.
const BASE: &str = r#"
name = "isweep"
seed = 5
replications = 4

[instance]
source = "random"
contexts = 6
responses = 7
references = 5
concentration = 0.7
zero_fraction = 0.3
context_concentration = 1.0

[instance.reward]
class = "linear"
dim = 3
bound = 1.0

[experiment]
divergence = "fkl"
quantity = "suboptimality"
WEIGHTS
gamma = 1.0
n = [100, 1000]
sampling = "uniform"

[sweep]
SWEEP
"#;

/// The spec with `weights` (a line or nothing) and `[sweep]` body `sweep`; a sweep over
/// gamma drops `experiment.gamma`.
fn spec(weights: &str, sweep: &str) -> mrkl::Result<Spec> {
    let mut text = BASE.replace("WEIGHTS", weights).replace("SWEEP", sweep);
    if sweep.contains("gamma =") {
        text = text.replace("gamma = 1.0\n", "");
    }
    parse(&text, Path::new("t.toml"), "t", None)
}

fn ok(weights: &str, sweep: &str) -> Spec {
    spec(weights, sweep).unwrap_or_else(|e| panic!("{e}"))
}

fn err(weights: &str, sweep: &str) -> String {
    spec(weights, sweep).unwrap_err().to_string()
}

/// The spec without a sweep, with `[instance]` field `key` set to `value`.
fn unswept(key: &str, value: &str) -> Spec {
    let text = BASE
        .replace("WEIGHTS", "weights = [0.2, 0.2, 0.2, 0.2, 0.2]")
        .replace("[sweep]\nSWEEP", "");
    let mut v: toml::Value = toml::from_str(&text).unwrap();
    let inst = v.get_mut("instance").unwrap().as_table_mut().unwrap();
    let parsed: toml::Value = toml::from_str(&format!("x = {value}")).unwrap();
    let target = if key == "dim" {
        inst.get_mut("reward").unwrap().as_table_mut().unwrap()
    } else {
        inst
    };
    target.insert(key.into(), parsed["x"].clone());
    parse(
        &toml::to_string(&v).unwrap(),
        Path::new("t.toml"),
        "t",
        None,
    )
    .unwrap()
}

#[test]
fn references_nest_as_the_first_k_of_the_master_with_uniform_or_paired_weights() {
    let s = ok("", "references = [1, 3, 5]");
    let master = s.instance();
    assert_eq!(master.k(), 5);
    let labels: Vec<&str> = s.cells().iter().map(|c| c.label.as_str()).collect();
    assert_eq!(labels, ["references=1", "references=3", "references=5"]);
    for (i, k) in [1usize, 3, 5].into_iter().enumerate() {
        let inst = s.instance_of(i);
        assert_eq!(inst.k(), k);
        assert_eq!(inst.references[..], master.references[..k]);
        assert_eq!(
            (inst.rho.clone(), inst.reward.clone()),
            (master.rho.clone(), master.reward.clone())
        );
        assert_eq!(s.cells()[i].weights, vec![1.0 / k as f64; k]);
        let setting = s.cells()[i].instance.unwrap();
        assert_eq!(
            (setting.param, setting.value, setting.draw),
            (InstanceParam::References, k as f64, InstanceDraw::Nested)
        );
    }
    // Weights given per K are paired with the values, not crossed.
    let s = ok("", "references = [1, 2]\nweights = [[1.0], [0.25, 0.75]]");
    assert_eq!(s.cells().len(), 2);
    assert_eq!(s.cells()[1].weights, vec![0.25, 0.75]);
    assert!(
        !s.shared_data(),
        "cells on different instances never share data"
    );
}

#[test]
fn contexts_and_responses_nest_with_renormalised_rho_and_references() {
    let s = ok("weights = [0.2, 0.2, 0.2, 0.2, 0.2]", "contexts = [2, 6]");
    let (m, c2) = (s.instance(), s.instance_of(0));
    assert_eq!((c2.contexts, c2.responses), (2, 7));
    let mass = m.rho[0] + m.rho[1];
    for x in 0..2 {
        assert!((c2.rho[x] - m.rho[x] / mass).abs() < 1e-15);
    }
    assert_eq!(c2.references[3][..], m.references[3][..2 * 7]);
    assert_eq!(
        s.instance_of(1),
        m,
        "the largest value is the master itself"
    );

    let s = ok("weights = [0.2, 0.2, 0.2, 0.2, 0.2]", "responses = [4]");
    let (m, r4) = (s.instance(), s.instance_of(0));
    assert_eq!(r4.responses, 4);
    for i in 0..5 {
        for x in 0..6 {
            let kept = &m.reference(i, x)[..4];
            let sum: f64 = kept.iter().sum();
            for y in 0..4 {
                assert!((r4.reference(i, x)[y] - kept[y] / sum).abs() < 1e-15);
            }
        }
    }
    // The features of the kept responses are the master's.
    let (mrkl::instance::RewardModel::Linear(a), mrkl::instance::RewardModel::Linear(b)) =
        (&m.reward, &r4.reward)
    else {
        panic!("linear class")
    };
    let d = a.dim;
    for x in 0..6 {
        for y in 0..4 {
            assert_eq!(
                b.features[(x * 4 + y) * d..(x * 4 + y + 1) * d],
                a.features[(x * 7 + y) * d..(x * 7 + y + 1) * d]
            );
        }
    }
}

#[test]
fn redrawn_cells_equal_the_unswept_spec_with_that_value() {
    for (key, values) in [
        ("zero_fraction", ["0.0", "0.5"]),
        ("concentration", ["0.2", "5.0"]),
        ("dim", ["2", "6"]),
        ("contexts", ["3", "9"]),
    ] {
        let draw = if key == "contexts" {
            "\ndraw = \"redraw\""
        } else {
            ""
        };
        let s = ok(
            "weights = [0.2, 0.2, 0.2, 0.2, 0.2]",
            &format!("{key} = [{}]{draw}", values.join(", ")),
        );
        for (i, v) in values.iter().enumerate() {
            assert_eq!(
                s.instance_of(i),
                unswept(key, v).instance(),
                "{key} = {v}: same stream, same generator"
            );
            assert_eq!(s.cells()[i].instance.unwrap().draw, InstanceDraw::Redraw);
        }
        assert_ne!(
            s.instance_of(0),
            s.instance_of(1),
            "{key}: the value matters"
        );
    }
}

#[test]
fn an_instance_sweep_crosses_with_gamma_and_weights() {
    let s = ok(
        "weights = [0.2, 0.2, 0.2, 0.2, 0.2]",
        "zero_fraction = [0.1, 0.4]\ngamma = [0.5, 2.0]",
    );
    let labels: Vec<&str> = s.cells().iter().map(|c| c.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "zero_fraction=0.1,gamma=0.5",
            "zero_fraction=0.1,gamma=2",
            "zero_fraction=0.4,gamma=0.5",
            "zero_fraction=0.4,gamma=2"
        ]
    );
    assert_eq!(s.instance_of(0), s.instance_of(1));
    assert_ne!(s.instance_of(1), s.instance_of(2));
    let s = ok(
        "weights = [0.2, 0.2, 0.2, 0.2, 0.2]",
        "contexts = [3, 6]\nweights = [[1, 0, 0, 0, 0], [0, 0, 0, 0, 1]]",
    );
    assert_eq!(s.cells().len(), 4);
    assert_eq!(s.cells()[3].label, "contexts=6,weights=0:0:0:0:1");
}

#[test]
fn bad_instance_sweeps_are_refused_naming_the_field() {
    let w = "weights = [0.2, 0.2, 0.2, 0.2, 0.2]";
    for (weights, sweep, expect) in [
        ("", "references = [2, 6]", "sweep.references[1]"),
        ("", "references = [0]", "sweep.references[0]"),
        (w, "references = [2]", "experiment.weights"),
        (
            "",
            "references = [1, 2]\nweights = [[1.0]]",
            "sweep.weights (length)",
        ),
        (
            "",
            "references = [2]\nweights = [[0.5, 0.6]]",
            "sweep.weights[0]",
        ),
        (
            "",
            "references = [2]\nsimplex_step = 0.5",
            "sweep.simplex_step",
        ),
        (w, "contexts = [2]\nresponses = [3]", "sweep"),
        (w, "zero_fraction = [0.2]\ndraw = \"nested\"", "sweep.draw"),
        (w, "gamma = [1.0]\ndraw = \"redraw\"", "sweep.draw"),
        (
            w,
            "zero_fraction = [0.2, 1.5]",
            "sweep.zero_fraction[1]: instance.zero_fraction",
        ),
        (w, "concentration = [1.0, 1.0]", "sweep.concentration[1]"),
        (w, "contexts = [9]", "sweep.contexts[0]"),
        (w, "dim = []", "sweep.dim"),
        ("", "contexts = [2]", "experiment.weights"),
    ] {
        let e = err(weights, sweep);
        assert!(
            e.contains(expect),
            "{sweep:?} ({weights:?}): expected {expect:?} in {e}"
        );
    }
}

#[test]
fn a_run_over_k_is_the_same_on_one_and_two_threads_and_its_csv_has_the_parameter() {
    let s = ok("", "references = [1, 2, 4]");
    let run = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| mrkl::engine::run(&s, &|| {}))
    };
    let one = run(1);
    assert_eq!(one, run(2));
    let result = mrkl::analysis::build(&s, &one, None);
    let csv = mrkl::tidy::summary_csv(&result);
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    assert_eq!(
        header[..9],
        [
            "spec",
            "cell",
            "references",
            "gamma_c",
            "gamma_p",
            "weight_1",
            "weight_2",
            "weight_3",
            "weight_4"
        ]
    );
    let row: Vec<&str> = csv
        .lines()
        .find(|l| l.contains(",references=2,"))
        .unwrap()
        .split(',')
        .collect();
    assert_eq!(row[2..9], ["2", "1", "0", "0.5", "0.5", "", ""]);
    // Every cell's result records its setting, and the K = 1 cell has no escort drop.
    for c in &result.cells {
        assert_eq!(c.instance.unwrap().param, InstanceParam::References);
    }
    // The result round-trips through JSON with the settings.
    let json = serde_json::to_string(&result).unwrap();
    let back: mrkl::result::ResultFile = serde_json::from_str(&json).unwrap();
    assert_eq!(back.cells[2].instance, result.cells[2].instance);
}
