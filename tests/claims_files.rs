//! Claims as data: a claims file a user writes (the built-in registry's schema) is judged
//! like a built-in claim; a false one is caught; ids and names are checked; the report is
//! rendered again byte for byte from what a run saved.

mod common;
use common::{mrkl, scratch};

use std::path::Path;
use std::process::Output;

fn sims(file: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("sims")
            .join(file),
    )
    .unwrap()
}

/// The smallest user claim, exactly as README.md shows it.
const FKL_FAST: &str = r#"[[claim]]
id = "fkl_fast"
source = "our derivation: FKL sub-optimality is second order in the reward error"
quantity = "suboptimality"
divergence = "fkl"
claimed_exponent = -1.0
tolerance = 0.1
"#;

/// `sims/t6_2_fkl_suboptimality.toml` with its `claim` line naming `id`.
fn t62_naming(id: &str) -> String {
    let text = sims("t6_2_fkl_suboptimality.toml");
    assert!(text.contains("claim = \"T6.2\""));
    text.replace("claim = \"T6.2\"", &format!("claim = \"{id}\""))
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The user's claim n^-1 holds on the T6.2 spec (its measured exponent is about -0.99 with
/// an interval of half-width about 0.015 at 200 replications, well inside -1 ± 0.1), and
/// the same claim at n^-1.5 is violated (the interval lies about 0.4 above -1.5 + 0.1).
#[test]
fn a_user_claim_holds_and_a_planted_false_one_is_violated() {
    let d = scratch("claims", "fkl-fast");
    std::fs::write(d.join("t62.toml"), t62_naming("fkl_fast")).unwrap();
    std::fs::write(d.join("fast.toml"), FKL_FAST).unwrap();
    std::fs::write(
        d.join("too_fast.toml"),
        FKL_FAST.replace("claimed_exponent = -1.0", "claimed_exponent = -1.5"),
    )
    .unwrap();
    let o = mrkl(
        &["check", "t62.toml", "--claims", "fast.toml", "--out", "a"],
        &d,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let line = stdout(&o)
        .lines()
        .find(|l| l.starts_with("fkl_fast"))
        .expect("a row for the user's claim")
        .to_string();
    assert!(
        line.contains("holds") && line.contains("rate matches n^-1"),
        "{line}"
    );
    let o = mrkl(
        &[
            "check",
            "t62.toml",
            "--claims",
            "too_fast.toml",
            "--out",
            "b",
        ],
        &d,
    );
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
    let line = stdout(&o)
        .lines()
        .find(|l| l.starts_with("fkl_fast"))
        .expect("a row for the user's claim")
        .to_string();
    assert!(
        line.contains("violated") && line.contains("decays slower than n^-1.5"),
        "{line}"
    );
    // Saved with the results, and in JUnit under a stable name.
    let junit = std::fs::read_to_string(d.join("b/junit.xml")).unwrap();
    assert!(junit.contains("name=\"fkl_fast t62\"><failure"), "{junit}");
    // Claims nothing in this run measures are not JUnit cases.
    assert!(!junit.contains("T5.2"), "{junit}");
}

/// A claim in gamma is judged across the cells of the gamma sweep. The RKL gap at n = 1e7
/// grows like gamma^0.73 over gamma = 0.25..8 (interval about [0.69, 0.77]), so "linear in
/// gamma" holds as an upper bound but does not match, and gamma^0.5 is violated.
#[test]
fn a_claim_in_gamma_is_judged_on_a_gamma_sweep() {
    let d = scratch("claims", "gamma");
    let spec = sims("sweep_gamma_rkl.toml").replace("claim = \"T5.2\"", "claim = \"in_gamma\"");
    std::fs::write(d.join("sg.toml"), spec).unwrap();
    let claim = |e: f64| {
        format!(
            "[[claim]]\nid = \"in_gamma\"\nsource = \"test\"\ndivergence = \"rkl\"\nquantity = \"suboptimality\"\nvariable = \"gamma\"\nclaimed_exponent = {e}\ntolerance = 0.1\n"
        )
    };
    std::fs::write(d.join("one.toml"), claim(1.0)).unwrap();
    std::fs::write(d.join("half.toml"), claim(0.5)).unwrap();
    let o = mrkl(
        &["check", "sg.toml", "--claims", "one.toml", "--out", "a"],
        &d,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let out = stdout(&o);
    let line = out.lines().find(|l| l.starts_with("in_gamma")).unwrap();
    assert!(
        line.contains("exponent in gamma") && line.contains("grows more slowly than gamma^1"),
        "{line}"
    );
    let o = mrkl(
        &["check", "sg.toml", "--claims", "half.toml", "--out", "b"],
        &d,
    );
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
}

/// `mrkl report` on a copy of a folder made with overrides reproduces REPORT.md byte for
/// byte: it renders the saved judgements and never judges again.
#[test]
fn report_on_a_copy_reproduces_the_report_with_overrides() {
    let d = scratch("claims", "report");
    std::fs::write(d.join("t62.toml"), sims("t6_2_fkl_suboptimality.toml")).unwrap();
    let o = mrkl(
        &[
            "check",
            "t62.toml",
            "--set",
            "T6.2.claimed_exponent=-1",
            "--set",
            "replications=40",
            "--out",
            "a",
        ],
        &d,
    );
    assert!(o.status.code().is_some_and(|c| c <= 1), "{}", stdout(&o));
    let original = std::fs::read(d.join("a/REPORT.md")).unwrap();
    let text = String::from_utf8_lossy(&original).into_owned();
    assert!(text.contains("`--set T6.2.claimed_exponent=-1`"), "{text}");
    assert!(
        text.contains("T6.1 | random instances (implicit)"),
        "{text}"
    );
    let copy = d.join("copy");
    std::fs::create_dir_all(copy.join("t62")).unwrap();
    for f in ["summary.json", "t62/result.json"] {
        std::fs::copy(d.join("a").join(f), copy.join(f)).unwrap();
    }
    let o = mrkl(&["report", "copy"], &d);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(std::fs::read(copy.join("REPORT.md")).unwrap() == original);
    // A result that is not the one judged is refused.
    let p = copy.join("t62/result.json");
    let changed =
        std::fs::read_to_string(&p)
            .unwrap()
            .replacen("\"spec_hash\": \"", "\"spec_hash\": \"0", 1);
    std::fs::write(&p, changed).unwrap();
    let o = mrkl(&["report", "copy"], &d);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("is not the one judged"));
}

/// Ids that clash with a built-in claim, specs naming unknown claims, and claims files that
/// break the schema are one-line exit-2 errors, and nothing is written.
#[test]
fn bad_claims_files_and_names_are_refused() {
    let d = scratch("claims", "bad");
    std::fs::write(d.join("t62.toml"), t62_naming("fkl_fast")).unwrap();
    let cases = [
        (
            FKL_FAST.replace("fkl_fast", "T5.2"),
            "no built-in claim has",
        ),
        (
            FKL_FAST.replace("tolerance = 0.1\n", ""),
            "claimed_exponent and tolerance",
        ),
        (FKL_FAST.replace("quantity", "quantty"), "unknown field"),
        (FKL_FAST.to_string() + "variable = \"beta\"\n", "variable"),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let f = format!("c{i}.toml");
        std::fs::write(d.join(&f), text).unwrap();
        let o = mrkl(&["check", "t62.toml", "--claims", &f, "--out", "o"], &d);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(2), "{text}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(want), "{want}: {err}");
    }
    // No claims file: the spec names a claim nobody registered.
    let o = mrkl(&["check", "t62.toml", "--out", "o"], &d);
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("fkl_fast") && err.contains("registered claim"),
        "{err}"
    );
    assert!(!d.join("o").exists(), "nothing is written on bad input");
}

/// The registry file is the default claims file: parsed with the same schema, every
/// built-in claim checks, and a user file adds to it without changing it.
#[test]
fn the_builtin_registry_is_a_claims_file_of_the_same_schema() {
    let d = scratch("claims", "schema");
    std::fs::write(d.join("fast.toml"), FKL_FAST).unwrap();
    let r = mrkl::claims::Registry::with_files(&[d.join("fast.toml")]).unwrap();
    let builtin = mrkl::claims::Registry::builtin();
    assert_eq!(r.claim.len(), builtin.claim.len() + 1);
    assert_eq!(&r.claim[..builtin.claim.len()], &builtin.claim[..]);
    let t52 = builtin.get("T5.2").unwrap();
    let b = t52.bound.as_ref().expect("T5.2 has a bound");
    assert_eq!(
        (
            b.constant,
            b.gamma,
            b.coverage,
            b.exp_r_max,
            b.r_max,
            b.log_class_over_delta,
            b.n
        ),
        (128.0, 1.0, 1.0, 4.0, 2.0, 1.0, -1.0)
    );
    let t62 = builtin.get("T6.2").unwrap().bound.as_ref().unwrap();
    assert_eq!(
        (
            t62.constant,
            t62.gamma,
            t62.coverage,
            t62.exp_r_max,
            t62.r_max,
            t62.log_class_over_delta,
            t62.n
        ),
        (16.0, 0.0, 1.0, 2.0, 1.0, 0.5, -0.5)
    );
}
