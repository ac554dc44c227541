//! `results/` holds what the default suite produces. Re-running one small spec of the suite
//! must reproduce its committed `result.json` byte for byte (the provenance's git commit is
//! an input, taken from the committed file; everything computed is compared).

use mrkl::suite::load_specs;
use mrkl::{analysis, engine, result};

fn reproduce(name: &str) {
    let path = std::path::Path::new("results")
        .join(name)
        .join("result.json");
    let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; run `cargo run --release` to regenerate results/",
            path.display()
        )
    });
    let saved = result::read(&path).unwrap();
    let specs = load_specs(&[], &[]).unwrap();
    let (_, spec) = specs
        .iter()
        .find(|(_, s)| s.name() == name)
        .expect("the spec is in the default suite");
    let rebuilt = analysis::build(
        spec,
        &engine::run(spec, &|| {}),
        saved.provenance.git_commit.clone(),
    );
    let text = result::to_json(&rebuilt);
    assert!(
        text == committed,
        "{name}: a re-run differs from the committed result; if the change is intended, regenerate results/ with `cargo run --release`"
    );
}

#[test]
fn the_finite_class_result_reproduces_byte_for_byte() {
    reproduce("t5_2_finite_class");
}

#[test]
fn the_t5_2_result_reproduces_byte_for_byte() {
    reproduce("t5_2_rkl_suboptimality");
}
