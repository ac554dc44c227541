//! `mrkl replay` shows one unit of a run, bit-identical to it: its gap and series equal the
//! run's `raw` entries exactly, its data have n comparisons, and its policies are the
//! cell's plug-in and exact policies.

use mrkl::claims::Registry;
use std::path::Path;

mod common;
use common::SWEEP_SPEC as SPEC;

fn check_against_run(text: &str) {
    let spec = mrkl::spec::parse(text, Path::new("replay.toml"), "replay", None).unwrap();
    let (results, _) = mrkl::suite::evaluate(std::slice::from_ref(&spec), &Registry::builtin(), 1);
    let r = &results[0];
    for c in &r.cells {
        for (j, &n) in c.n.iter().enumerate() {
            for rep in [0, spec.replications() - 1] {
                let p = mrkl::replay::replay(&spec, &c.label, rep, n).unwrap();
                assert_eq!(
                    p.value.to_bits(),
                    c.raw[j][rep].to_bits(),
                    "{} n={n} r={rep}",
                    c.label
                );
                for s in &c.series {
                    let (a, b) = (p.series[&s.name], s.raw[j][rep]);
                    assert!(
                        a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan()),
                        "{}",
                        s.name
                    );
                }
                let drawn: u64 = p.wins.iter().map(|w| w.a_won + w.b_won).sum();
                assert_eq!(drawn + p.ties, n, "the replayed dataset has n comparisons");
                for row in p.policy_hat.iter().chain(&p.policy_star) {
                    assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-12);
                }
            }
        }
    }
}

#[test]
fn replay_matches_the_run_bit_for_bit() {
    check_against_run(SPEC);
}

#[test]
fn replay_matches_dpo_and_online_runs() {
    let dpo = SPEC
        .replace("record = [\"objective\"]", "estimator = \"dpo_linear\"")
        .replace(
            "[sweep]\nweights = [[0.25, 0.75], [1.0, 0.0], [0.5, 0.5]]",
            "",
        );
    check_against_run(&dpo);
    let online = SPEC
        .replace("record = [\"objective\"]", "rounds = 2")
        .replace(
            "[sweep]\nweights = [[0.25, 0.75], [1.0, 0.0], [0.5, 0.5]]",
            "",
        );
    check_against_run(&online);
}

#[test]
fn replay_refuses_unknown_cells_replications_and_sizes() {
    let spec = mrkl::spec::parse(SPEC, Path::new("replay.toml"), "replay", None).unwrap();
    let e = mrkl::replay::replay(&spec, "weights=9:9", 0, 50).unwrap_err();
    assert!(e.to_string().contains("weights=1:0"), "{e}");
    let e = mrkl::replay::replay(&spec, "weights=1:0", 6, 50).unwrap_err();
    assert!(e.to_string().contains("0 ..= 5"), "{e}");
    let e = mrkl::replay::replay(&spec, "weights=1:0", 0, 51).unwrap_err();
    assert!(e.to_string().contains("50, 500, 5000"), "{e}");
    assert_eq!(e.exit_code(), 2);
}
