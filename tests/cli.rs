//! The command line end to end: bad input exits with code 2 and a one-line message naming
//! the field, writing nothing; results are byte-identical across thread counts; `solve`
//! reproduces a hand-checked instance.

mod common;
use common::{mrkl, scratch};

use std::process::Command;

const SMALL: &str = r#"
name = "small"
seed = 42
replications = 24
[instance]
source = "random"
contexts = 5
responses = 4
references = 2
[instance.reward]
class = "linear"
dim = 3
bound = 1.0
[experiment]
divergence = "fkl"
quantity = "suboptimality"
weights = [0.3, 0.7]
gamma = 2.0
n = [100, 200, 400, 800, 1600, 3200]
sampling = "arithmetic"
"#;

#[test]
fn results_are_byte_identical_for_one_and_two_threads() {
    let d = scratch("cli", "threads");
    std::fs::write(d.join("small.toml"), SMALL).unwrap();
    let mut texts = vec![];
    for t in ["1", "2"] {
        let out = format!("out{t}");
        let o = mrkl(&["run", "small.toml", "--out", &out, "--threads", t], &d);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(stdout.contains("exponent of the mean gap in n"), "{stdout}");
        texts.push(std::fs::read(d.join(&out).join("small/result.json")).unwrap());
        // the CSV and the instance too
        texts.push(std::fs::read(d.join(&out).join("small/summary.csv")).unwrap());
    }
    assert_eq!(
        texts[0], texts[2],
        "result.json differs between 1 and 2 threads"
    );
    assert_eq!(
        texts[1], texts[3],
        "summary.csv differs between 1 and 2 threads"
    );
    let r: serde_json::Value = serde_json::from_slice(&texts[0]).unwrap();
    assert_eq!(r["cells"][0]["raw"].as_array().unwrap().len(), 6);
    assert_eq!(r["cells"][0]["raw"][0].as_array().unwrap().len(), 24);
    assert_eq!(r["ours"]["sampling"]["value"], "arithmetic");
    assert!(r["provenance"]["spec_hash"].as_str().unwrap().len() == 16);
}

/// Two specs run at once on two threads (`suite::execute`): the long spec `a` starts beside
/// the short `b`, which finishes first, yet the lines come in spec order and every file is
/// the one a single thread writes. A spec that fails (a lock of another host on `b`) stops
/// the suite: the spec beside it finishes, no later spec starts, the exit code is 2.
#[test]
fn overlapping_specs_report_in_spec_order_and_a_failure_starts_no_later_spec() {
    let d = scratch("cli", "overlap");
    let long = SMALL
        .replace("replications = 24", "replications = 400")
        .replace("name = \"small\"", "name = \"a\"");
    std::fs::write(d.join("a.toml"), long).unwrap();
    for name in ["b", "c"] {
        let short = SMALL
            .replace("replications = 24", "replications = 4")
            .replace("name = \"small\"", &format!("name = \"{name}\""));
        std::fs::write(d.join(format!("{name}.toml")), short).unwrap();
    }
    let specs = ["a.toml", "b.toml", "c.toml"];
    let mut written = vec![];
    for t in ["1", "2"] {
        let out = format!("out{t}");
        let o = mrkl(
            &[&["run"][..], &specs, &["--out", &out, "--threads", t]].concat(),
            &d,
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let stdout = String::from_utf8_lossy(&o.stdout);
        let order: Vec<&str> = stdout
            .lines()
            .filter_map(|l| l.split(".toml: ").next().filter(|_| l.contains(".toml: ")))
            .collect();
        assert_eq!(order, ["a", "b", "c"], "{stdout}");
        for s in ["a", "b", "c"] {
            for f in ["result.json", "summary.csv", "raw.csv"] {
                written.push(std::fs::read(d.join(&out).join(s).join(f)).unwrap());
            }
        }
    }
    let (one, two) = written.split_at(written.len() / 2);
    assert!(one == two, "files differ between 1 and 2 threads");

    std::fs::create_dir_all(d.join("fail/b")).unwrap();
    std::fs::write(d.join("fail/b/.lock"), "1 node-17\n").unwrap();
    let o = mrkl(
        &[&["run"][..], &specs, &["--out", "fail", "--threads", "2"]].concat(),
        &d,
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("locked by pid 1 on host node-17"),
        "{stderr}"
    );
    assert!(d.join("fail/a/result.json").exists(), "{stderr}");
    assert!(!d.join("fail/c").exists(), "c started after b failed");
}

/// Each case: a replacement in the small spec, and the text the one-line message must hold.
#[test]
fn bad_specs_exit_2_with_one_line_naming_the_field_and_write_nothing() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "weights = [0.3, 0.7]",
            "weights = [0.3, 0.8]",
            "experiment.weights",
        ),
        (
            "weights = [0.3, 0.7]",
            "weights = [-0.3, 1.3]",
            "experiment.weights",
        ),
        ("gamma = 2.0", "gamma = -1.0", "experiment.gamma = -1"),
        (
            "n = [100, 200, 400, 800, 1600, 3200]",
            "n = []",
            "experiment.n = []",
        ),
        (
            "n = [100, 200, 400, 800, 1600, 3200]",
            "n = [100, 50]",
            "experiment.n = [100, 50]",
        ),
        ("seed = 42", "seed = 42\nspeed = 3", "unknown field `speed`"),
        ("dim = 3", "dim = 3\nfoo = 1", "unknown field `foo`"),
        ("replications = 24", "replications = 1", "replications = 1"),
        (
            "weights = [0.3, 0.7]",
            "weights = [1.0]",
            "experiment.weights (length) = 1",
        ),
        (
            "sampling = \"arithmetic\"",
            "sampling = \"ref:9\"",
            "experiment.sampling",
        ),
        ("gamma = 2.0", "gamma = \"big\"", "gamma"),
    ];
    let d = scratch("cli", "bad");
    for (i, (from, to, expect)) in cases.iter().enumerate() {
        let text = SMALL.replace(from, to);
        assert_ne!(text, SMALL, "case {i} did not apply");
        let f = format!("bad{i}.toml");
        std::fs::write(d.join(&f), text).unwrap();
        // A good spec first on the command line: it must not be run either.
        std::fs::write(d.join("good.toml"), SMALL).unwrap();
        let o = mrkl(&["run", "good.toml", &f, "--out", "out"], &d);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "case {i}: {err}");
        assert_eq!(
            err.trim_end().lines().count(),
            1,
            "case {i}: not one line: {err}"
        );
        assert!(err.contains(expect), "case {i}: {err:?} lacks {expect:?}");
        assert!(!d.join("out").exists(), "case {i}: something was written");
    }
}

#[test]
fn bad_instances_and_files_exit_2() {
    let d = scratch("cli", "inst");
    // Unreadable spec file.
    let o = mrkl(&["run", "missing.toml", "--out", "out"], &d);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("missing.toml: cannot read"));
    // A reference that does not sum to one, in an instance file used by a spec.
    std::fs::write(
        d.join("inst.json"),
        r#"{"references": [[[0.5, 0.6], [0.5, 0.5]]], "reward": {"class": "finite", "candidates": [[[1, 0], [0, 1]], [[0, 1], [1, 0]]], "truth": 0}}"#,
    )
    .unwrap();
    let spec = SMALL
        .replace("source = \"random\"\ncontexts = 5\nresponses = 4\nreferences = 2\n[instance.reward]\nclass = \"linear\"\ndim = 3\nbound = 1.0\n", "source = \"file\"\npath = \"inst.json\"\n")
        .replace("weights = [0.3, 0.7]", "weights = [1.0]");
    assert!(spec.contains("inst.json"));
    std::fs::write(d.join("s.toml"), spec).unwrap();
    let o = mrkl(&["run", "s.toml", "--out", "out"], &d);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("references[0][0] (sum) = 1.1"), "{err}");
    assert!(!d.join("out").exists());
    // solve: mismatched dimensions.
    std::fs::write(d.join("bad.json"), r#"{"references": [[[0.5, 0.5]], [[1.0]]], "reward": {"class": "table", "values": [[1, 0]]}}"#).unwrap();
    let o = mrkl(&["solve", "bad.json", "--gamma", "1"], &d);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("references[1][0] (responses) = 1"), "{err}");
    // solve: weights off the simplex.
    std::fs::write(d.join("ok.json"), r#"{"references": [[[0.5, 0.5]], [[0.25, 0.75]]], "reward": {"class": "table", "values": [[1, 0]]}}"#).unwrap();
    let o = mrkl(
        &["solve", "ok.json", "--gamma", "1", "--weights", "0.5,0.6"],
        &d,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--weights (sum) = 1.1"));
}

#[test]
fn solve_round_trips_a_hand_checked_instance() {
    // One context, pi_1 = (1/2, 1/2), pi_2 = (1/4, 3/4), alpha = (1/2, 1/2), r = (1, 0), gamma = 2.
    // RKL: pi* ∝ sqrt(pi_1 pi_2) e^{2r} = (sqrt(1/8) e^2, sqrt(3/8)).
    // FKL (beta = alpha): m = (3/8, 5/8); pi~ = m / (2 (Z - r)) with t = 2 (Z - 1):
    // 3/(8t) + 5/(8(t + 2)) = 1  =>  8t^2 + 8t - 6 = 0  =>  t = (-1 + sqrt(4))/2 = 1/2,
    // so pi~ = (3/8 / (1/2), 5/8 / (5/2)) = (3/4, 1/4), Z~ = 1 + t/2 = 5/4.
    let d = scratch("cli", "solve");
    std::fs::write(d.join("i.json"), r#"{"references": [[[0.5, 0.5]], [[0.25, 0.75]]], "reward": {"class": "table", "values": [[1, 0]]}}"#).unwrap();
    let o = mrkl(
        &[
            "solve",
            "i.json",
            "--divergence",
            "rkl",
            "--gamma",
            "2",
            "--weights",
            "0.5,0.5",
        ],
        &d,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let a = 0.125f64.sqrt() * 2f64.exp();
    let b = 0.375f64.sqrt();
    let p0 = v["contexts"][0]["policy"][0].as_f64().unwrap();
    assert!((p0 - a / (a + b)).abs() < 1e-15, "{p0}");
    // Objective = closed form D2: (1/gamma) ln sum_y sqrt(pi_1 pi_2) e^{gamma r}.
    let d2 = (a + b).ln() / 2.0;
    assert!((v["objective"].as_f64().unwrap() - d2).abs() < 1e-14);
    assert!(
        (v["contexts"][0]["optimal_value_closed_form"]
            .as_f64()
            .unwrap()
            - d2)
            .abs()
            < 1e-15
    );

    let o = mrkl(
        &["solve", "i.json", "--divergence", "fkl", "--gamma", "2"],
        &d,
    );
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let p = &v["contexts"][0]["policy"];
    assert!((p[0].as_f64().unwrap() - 0.75).abs() < 1e-15, "{p}");
    assert!((p[1].as_f64().unwrap() - 0.25).abs() < 1e-15);
    assert!((v["contexts"][0]["normaliser"].as_f64().unwrap() - 1.25).abs() < 1e-15);
    // J_fkl = E r - (1/2) [1/2 KL(pi_1||pi~) + 1/2 KL(pi_2||pi~)].
    let kl = |q: [f64; 2]| q[0] * (q[0] / 0.75f64).ln() + q[1] * (q[1] / 0.25f64).ln();
    let j = 0.75 - 0.5 * (0.5 * kl([0.5, 0.5]) + 0.5 * kl([0.25, 0.75]));
    assert!((v["objective"].as_f64().unwrap() - j).abs() < 1e-15);
}

/// A closed stdout (`mrkl run ... | head -1`) neither panics nor costs results: the run
/// completes, writes every result, and exits 0.
#[test]
fn a_closed_stdout_costs_nothing() {
    let d = scratch("cli", "pipe");
    std::fs::write(d.join("small.toml"), SMALL).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_mrkl"))
        .args(["run", "small.toml", "--out", "o"])
        .current_dir(&d)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("runs");
    drop(child.stdout.take()); // the reader goes away before anything is printed
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for f in ["small/result.json", "summary.json", "REPORT.md"] {
        assert!(d.join("o").join(f).is_file(), "{f}");
    }
}

/// Special files are refused before they are read (a device would be read until memory
/// runs out, a FIFO would hang), with a one-line exit-2 message.
#[cfg(unix)]
#[test]
fn devices_and_folders_are_refused_as_inputs() {
    let d = scratch("cli", "special");
    for (args, want) in [
        (vec!["run", "/dev/zero"], "special file"),
        (
            vec!["solve", "/dev/urandom", "--gamma", "1"],
            "special file",
        ),
        (vec!["check", "sims_missing_dir_is_not_here"], "cannot read"),
    ] {
        let o = mrkl(&args, &d);
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

/// `check --claim ID` judges only that claim and runs only the specs that name it; an
/// unknown id exits 2. On a non-terminal (stderr is a pipe here) every spec announces its
/// start (`PROGRESS_EVERY` bounds the silence after it; a 10-second run is too long to
/// test here, so only the start line and the finish line are checked).
#[test]
fn check_claim_filters_claims_and_specs_and_a_pipe_gets_progress_lines() {
    let d = scratch("cli", "claim-filter");
    let specs = d.join("specs");
    std::fs::create_dir_all(&specs).unwrap();
    let fkl = SMALL.replace("name = \"small\"", "name = \"fkl\"\nclaim = \"T6.2\"");
    let rkl = SMALL
        .replace("name = \"small\"", "name = \"rkl\"\nclaim = \"T5.2\"")
        .replace("divergence = \"fkl\"", "divergence = \"rkl\"");
    std::fs::write(specs.join("fkl.toml"), fkl).unwrap();
    std::fs::write(specs.join("rkl.toml"), rkl).unwrap();
    let out = mrkl(&["check", "specs", "--claim", "T6.2", "--out", "res"], &d);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.code() == Some(0) || out.status.code() == Some(1),
        "{stderr}"
    );
    assert!(d.join("res/fkl/result.json").is_file());
    assert!(!d.join("res/rkl").exists(), "the T5.2 spec must not run");
    assert!(
        stderr.contains("fkl: starting 24 replication units"),
        "{stderr}"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("res/summary.json")).unwrap())
            .unwrap();
    let claims: Vec<&str> = summary["judgements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["claim"].as_str().unwrap())
        .collect();
    assert!(
        !claims.is_empty() && claims.iter().all(|c| *c == "T6.2"),
        "{claims:?}"
    );

    let bad = mrkl(&["check", "specs", "--claim", "T9", "--out", "res2"], &d);
    assert_eq!(bad.status.code(), Some(2));
    let msg = String::from_utf8_lossy(&bad.stderr);
    assert!(
        msg.contains("--claim") && msg.contains("T9") && msg.contains("T6.2"),
        "{msg}"
    );
    assert!(!d.join("res2").exists(), "a refused check writes nothing");
}
