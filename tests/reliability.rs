//! Nothing written where it should not be, no input that kills the process, no wrong answer
//! with exit 0: the results folder stays inside --out, dead runs' temporary files are
//! removed, the resource budget refuses what would exhaust memory, `solve` at the extremes,
//! merge all or nothing and independent of the working directory, a spec's files as one
//! set, the lock (zombies, other hosts), isolation from another spec's corrupt result, and
//! the messages.

mod common;
use common::{mrkl, scratch};

use std::path::Path;
use std::process::Stdio;

const SMALL: &str = r#"
seed = 1
replications = 4
[instance]
source = "random"
contexts = 3
responses = 4
references = 2
[instance.reward]
class = "linear"
dim = 2
bound = 1.0
[experiment]
divergence = "rkl"
quantity = "suboptimality"
weights = [0.5, 0.5]
gamma = 1.0
n = [100, 1000]
"#;

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn with_name(name: &str) -> String {
    SMALL.replace("seed = 1", &format!("name = \"{name}\"\nseed = 1"))
}

#[cfg(unix)]
#[test]
fn a_results_folder_that_is_a_symlink_out_of_out_is_refused() {
    let d = scratch("reliab", "escape");
    std::fs::write(d.join("s.toml"), with_name("s")).unwrap();
    std::fs::create_dir_all(d.join("elsewhere")).unwrap();
    std::fs::create_dir_all(d.join("out")).unwrap();
    std::os::unix::fs::symlink(d.join("elsewhere"), d.join("out/s")).unwrap();
    let o = mrkl(&["run", "s.toml", "--out", "out"], &d);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("leads outside it"), "{}", stderr(&o));
    assert_eq!(std::fs::read_dir(d.join("elsewhere")).unwrap().count(), 0);
    // A name of ".." is refused before anything is written.
    std::fs::write(d.join("dd.toml"), with_name("..")).unwrap();
    std::fs::create_dir_all(d.join("o2/sub")).unwrap();
    let o = mrkl(&["run", "dd.toml", "--out", "o2/sub"], &d);
    assert_eq!(o.status.code(), Some(2));
    let names: Vec<_> = std::fs::read_dir(d.join("o2")).unwrap().collect();
    assert_eq!(names.len(), 1, "only sub/ in the parent of --out");
}

#[cfg(target_os = "linux")]
#[test]
fn temporary_files_of_dead_runs_are_removed_and_live_ones_kept() {
    let d = scratch("reliab", "orphans");
    std::fs::write(d.join("s.toml"), with_name("s")).unwrap();
    let host = mrkl::fsio::this_host();
    // A pid that no longer exists: a child that has exited and been reaped.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let dead = child.id();
    child.wait().unwrap();
    let me = std::process::id();
    std::fs::create_dir_all(d.join("out/s")).unwrap();
    let orphan = d.join(format!("out/s/.mrkl-{host}-{dead}-abc123.tmp"));
    let live = d.join(format!("out/s/.mrkl-{host}-{me}-def456.tmp"));
    let foreign = d.join(format!("out/s/.mrkl-otherhost-{dead}-ghi789.tmp"));
    for f in [&orphan, &live, &foreign] {
        std::fs::write(f, "partial").unwrap();
    }
    let o = mrkl(&["run", "s.toml", "--out", "out"], &d);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("removed 1 temporary file(s)"),
        "{}",
        stderr(&o)
    );
    assert!(!orphan.exists());
    assert!(live.exists() && foreign.exists());
    // Output files are readable by others, not private like a bare temporary file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(d.join("out/s/result.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o644);
    }
}

#[test]
fn specs_over_the_budget_are_refused_before_anything_runs() {
    let d = scratch("reliab", "budget");
    // 1e5 candidate tables on 100 x 100: 1e9 numbers, about 100 GiB with their JSON.
    let big = SMALL
        .replace("contexts = 3", "contexts = 100")
        .replace("responses = 4", "responses = 100")
        .replace(
            "class = \"linear\"\ndim = 2\nbound = 1.0",
            "class = \"finite\"\ncandidates = 100000\nr_max = 1.0",
        );
    std::fs::write(d.join("big.toml"), &big).unwrap();
    let o = mrkl(&["run", "big.toml", "--out", "o"], &d);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("estimated memory of the tables = 104.3 GiB")
            && err.contains("--max-memory = 8.0 GiB"),
        "{err}"
    );
    assert!(!d.join("o").exists(), "nothing written");
    // The limit is the user's: a smaller one refuses a spec of 1e6 units, naming both
    // numbers (module doc of budget: 32 MiB base + 1e6 units x 612 bytes + about 8 KB of
    // instance, preparation and threads = 645.56e6 bytes = 615.7 MiB).
    std::fs::write(
        d.join("s.toml"),
        SMALL.replace("replications = 4", "replications = 1000000"),
    )
    .unwrap();
    let o = mrkl(
        &["run", "s.toml", "--out", "o", "--max-memory", "100MB"],
        &d,
    );
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("s: estimated peak memory = 615.7 MiB"),
        "{err}"
    );
    assert!(err.contains("at most --max-memory = 95.4 MiB"), "{err}");
    // Below the base, already the instance check refuses it.
    let o = mrkl(&["run", "s.toml", "--out", "o", "--max-memory", "1MB"], &d);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("instance: estimated memory of the tables"));
    let o = mrkl(&["run", "s.toml", "--out", "o", "--max-disk", "100MB"], &d);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("--max-disk"), "{}", stderr(&o));
    assert!(!d.join("o").exists(), "nothing written");
    // An explicit n list is capped as n_grid is.
    let list: Vec<String> = (1..=201).map(|n| n.to_string()).collect();
    let long = SMALL.replace("n = [100, 1000]", &format!("n = [{}]", list.join(", ")));
    std::fs::write(d.join("long.toml"), long).unwrap();
    let o = mrkl(&["run", "long.toml", "--out", "o"], &d);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("experiment.n (length) = 201 is not allowed: at most 200"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn the_large_performance_spec_fits_the_default_budget() {
    // (|X|, |Y|, d, K) = (1000, 100, 32, 4), n up to 1e9 on a 200-level grid at most, 32
    // replications, on 2 and 4 threads.
    let s = mrkl::budget::Sizes {
        contexts: 1000,
        responses: 100,
        references: 4,
        dim: 32,
        candidates: 0,
        cells: 1,
        replications: 32,
        levels: 200,
        series: 0,
        comparators: 0,
        extra_instances: 0,
    };
    let limit = mrkl::budget::DEFAULT_MAX_MEMORY as f64;
    for threads in [2, 4] {
        let m = s.peak_memory(threads, true);
        assert!(m < limit, "{threads} threads: {}", mrkl::budget::human(m));
    }
}

/// Peak RSS of `mrkl run spec` in KiB (GNU time's %M).
fn peak_rss_kib(dir: &Path, spec: &str) -> Option<f64> {
    let o = std::process::Command::new("/usr/bin/time")
        .args(["-f", "%M", env!("CARGO_BIN_EXE_mrkl"), "run", spec])
        .args(["--out", "rss", "--threads", "2"])
        .current_dir(dir)
        .output()
        .ok()?;
    assert!(o.status.success(), "{}", stderr(&o));
    stderr(&o).lines().last()?.trim().parse().ok()
}

#[test]
fn the_memory_estimate_bounds_the_measured_peak() {
    if !Path::new("/usr/bin/time").exists() {
        eprintln!("skipped: /usr/bin/time (GNU time) is not installed");
        return;
    }
    let d = scratch("reliab", "rss");
    // Results-dominated: 40000 units x 3 levels. Instance-dominated: 2000 candidate tables
    // of 10 x 50 (1e6 numbers).
    let results = SMALL
        .replace("replications = 4", "replications = 40000")
        .replace(
            "class = \"linear\"\ndim = 2\nbound = 1.0",
            "class = \"finite\"\ncandidates = 4\nr_max = 1.0",
        )
        .replace("n = [100, 1000]", "n = [100, 1000, 10000]");
    let instance = SMALL
        .replace("replications = 4", "replications = 2")
        .replace("contexts = 3", "contexts = 10")
        .replace("responses = 4", "responses = 50")
        .replace(
            "class = \"linear\"\ndim = 2\nbound = 1.0",
            "class = \"finite\"\ncandidates = 2000\nr_max = 1.0",
        );
    for (name, text) in [("results", results), ("instance", instance)] {
        let file = format!("{name}.toml");
        std::fs::write(d.join(&file), &text).unwrap();
        let spec = mrkl::spec::parse(&text, Path::new(&file), name, None).unwrap();
        let estimate = mrkl::budget::estimate(&spec, 2, false).memory;
        let measured = peak_rss_kib(&d, &file).unwrap() * 1024.0;
        eprintln!(
            "{name}: estimate {} measured {}",
            mrkl::budget::human(estimate),
            mrkl::budget::human(measured)
        );
        // The estimate is an upper bound by construction (worst-case bytes per number,
        // string growth at its peak). It is not loose by more than 6x: JSON numbers are
        // counted at 48 bytes and measured here at >= 16 (a factor <= 3), and the growth
        // factor 2 of a string's capacity may not be reached (a factor <= 2).
        assert!(
            measured <= estimate && estimate <= 6.0 * measured,
            "{name}: estimate {} vs measured {}",
            mrkl::budget::human(estimate),
            mrkl::budget::human(measured)
        );
    }
}

/// `mrkl solve` on a one-context instance; returns the JSON or the exit code and stderr.
fn solve(dir: &Path, instance: &str, gamma: &str, divergence: &str) -> serde_json::Value {
    std::fs::write(dir.join("i.json"), instance).unwrap();
    let o = mrkl(
        &[
            "solve",
            "i.json",
            "--gamma",
            gamma,
            "--divergence",
            divergence,
        ],
        dir,
    );
    assert!(o.status.success(), "{instance} {gamma}: {}", stderr(&o));
    serde_json::from_slice(&o.stdout).unwrap()
}

#[test]
fn solve_gives_a_normalised_policy_and_a_finite_objective_at_the_extremes() {
    let d = scratch("reliab", "solve");
    let refs = "[[[0.25,0.25,0.25,0.25]],[[0.1,0.2,0.3,0.4]]]";
    let rewards = [
        "[1e300, 0, 0, 0]",
        "[1e308, 1e308, 0, 0]",
        "[1e308, -1e308, 0, 0]",
        "[1.7e308, 1.7e308, 1.7e308, 1.7e308]",
        "[50, 49.9999, 0, -50]",
        "[-1e308, -1e308, -1e308, -1e308]",
    ];
    for r in rewards {
        for gamma in ["1e-6", "1", "1e6"] {
            for div in ["rkl", "fkl"] {
                let inst = format!(
                    r#"{{"references": {refs}, "reward": {{"class": "table", "values": [{r}]}}}}"#
                );
                let out = solve(&d, &inst, gamma, div);
                let p: Vec<f64> = out["contexts"][0]["policy"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap())
                    .collect();
                let sum: f64 = p.iter().sum();
                assert!(
                    (sum - 1.0).abs() <= 1e-15 && p.iter().all(|v| *v >= 0.0),
                    "{div} {r} gamma {gamma}: {p:?}"
                );
                let objective = out["objective"].as_f64();
                assert!(
                    objective.is_some_and(f64::is_finite),
                    "{div} {r} gamma {gamma}: {}",
                    out["objective"]
                );
            }
        }
    }
    // Equal top rewards of 1e308: the policy is the escort restricted to them (RKL),
    // g ∝ sqrt(pi_1 pi_2) on the two top responses: sqrt(.025) : sqrt(.05).
    let inst = format!(
        r#"{{"references": {refs}, "reward": {{"class": "table", "values": [[1e308, 1e308, 0, 0]]}}}}"#
    );
    let p = &solve(&d, &inst, "1", "rkl")["contexts"][0]["policy"];
    let expected = 0.025f64.sqrt() / (0.025f64.sqrt() + 0.05f64.sqrt());
    assert!((p[0].as_f64().unwrap() - expected).abs() < 1e-15, "{p}");
    // Reference logits of magnitude 1e8 are normalised in log space and accepted.
    let out = solve(
        &d,
        r#"{"reference_logits": [[[1e8, 99999999, 0, -1e8]]], "reward": {"class": "table", "values": [[1, 0, 0, 0]]}}"#,
        "1",
        "rkl",
    );
    let p0 = out["contexts"][0]["policy"][0].as_f64().unwrap();
    // pi_ref = (e, 1, 0, 0)/(e + 1), times e^{r}: (e^2, 1)/(e^2 + 1).
    let e2 = std::f64::consts::E.powi(2);
    assert!((p0 - e2 / (e2 + 1.0)).abs() < 1e-15, "{p0}");
}

/// The small spec with its instance read from `instance_path`.
fn shard_spec(name: &str, instance_path: &str) -> String {
    let (head, rest) = with_name(name)
        .split_once("[instance]")
        .map(|(h, r)| (h.to_string(), r.to_string()))
        .unwrap();
    let (_, experiment) = rest.split_once("[experiment]").unwrap();
    format!(
        "{head}[instance]\nsource = \"file\"\npath = \"{instance_path}\"\n[experiment]{experiment}"
    )
}

const INSTANCE: &str = r#"{"references": [[[0.5, 0.5], [0.3, 0.7]], [[0.4, 0.6], [0.5, 0.5]]],
 "reward": {"class": "finite", "candidates": [[[0.1, 0.0], [0.0, 0.2]], [[0.0, 0.1], [0.2, 0.0]]], "truth": 0, "r_max": 1.0}}"#;

#[test]
fn merge_is_all_or_nothing_and_independent_of_the_working_directory() {
    let d = scratch("reliab", "merge");
    std::fs::create_dir_all(d.join("specs/data")).unwrap();
    std::fs::write(d.join("specs/data/inst.json"), INSTANCE).unwrap();
    std::fs::write(d.join("specs/a.toml"), shard_spec("a", "data/inst.json")).unwrap();
    std::fs::write(d.join("specs/b.toml"), shard_spec("b", "data/inst.json")).unwrap();
    for k in 1..=2 {
        let o = mrkl(
            &[
                "run",
                "specs",
                "--out",
                &format!("s{k}"),
                "--shard",
                &format!("{k}/2"),
            ],
            &d,
        );
        assert!(o.status.success(), "{}", stderr(&o));
    }
    // Spec b misses shard 2: nothing is written, not even spec a (sorted before b).
    std::fs::remove_file(d.join("s2/b/journal.shard-2-of-2.jsonl")).unwrap();
    let o = mrkl(&["merge", "s1", "s2", "--out", "m"], &d);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("b: units"), "{}", stderr(&o));
    assert!(!d.join("m").exists(), "a refused merge writes nothing");
    // From another working directory, with the instance path relative to the spec.
    std::fs::remove_dir_all(d.join("s2/b")).unwrap();
    std::fs::remove_dir_all(d.join("s1/b")).unwrap();
    std::fs::create_dir_all(d.join("elsewhere")).unwrap();
    let o = mrkl(
        &["merge", "../s1", "../s2", "--out", "m"],
        &d.join("elsewhere"),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let single = mrkl(&["run", "specs/a.toml", "--out", "single"], &d);
    assert!(single.status.success());
    assert_eq!(
        std::fs::read(d.join("elsewhere/m/a/result.json")).unwrap(),
        std::fs::read(d.join("single/a/result.json")).unwrap()
    );
}

#[test]
fn a_mixed_set_of_files_is_refused_by_report_and_skipped_by_run() {
    let d = scratch("reliab", "fileset");
    std::fs::write(d.join("s.toml"), with_name("s")).unwrap();
    std::fs::write(d.join("t.toml"), with_name("t")).unwrap();
    assert!(mrkl(&["run", "s.toml", "--out", "o"], &d).status.success());
    assert!(mrkl(&["report", "o"], &d).status.success());
    // A run killed between two renames: a new instance.json beside the old result.json.
    std::fs::write(d.join("o/s/instance.json"), "{\"other\": 1}\n").unwrap();
    let o = mrkl(&["report", "o"], &d);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("instance.json: differs from manifest.json"),
        "{}",
        stderr(&o)
    );
    // Another run into the folder skips the mixed set with a warning naming it.
    let o = mrkl(&["run", "t.toml", "--out", "o"], &d);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("warning: skipped o/s/instance.json"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn a_corrupt_result_of_another_spec_is_a_warning_naming_it() {
    let d = scratch("reliab", "isolation");
    std::fs::write(d.join("s.toml"), with_name("s")).unwrap();
    std::fs::create_dir_all(d.join("o/other")).unwrap();
    std::fs::write(d.join("o/other/result.json"), "{broken").unwrap();
    let o = mrkl(&["run", "s.toml", "--out", "o"], &d);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("warning: skipped o/other/result.json"),
        "{}",
        stderr(&o)
    );
    assert!(d.join("o/s/result.json").exists() && d.join("o/REPORT.md").exists());
}

#[cfg(target_os = "linux")]
#[test]
fn a_zombie_owner_is_dead_and_a_lock_of_another_host_is_refused() {
    let d = scratch("reliab", "zombie");
    std::fs::write(d.join("s.toml"), with_name("s")).unwrap();
    std::fs::create_dir_all(d.join("o/s")).unwrap();
    // A child that exits and is not reaped: a zombie, still in /proc.
    let mut child = std::process::Command::new("true")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let zombie = child.id();
    let stat = format!("/proc/{zombie}/stat");
    let t0 = std::time::Instant::now();
    while !std::fs::read_to_string(&stat).is_ok_and(|s| s.contains(") Z ")) {
        assert!(
            t0.elapsed().as_secs() < 10,
            "the child did not become a zombie"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let host = mrkl::fsio::this_host();
    std::fs::write(d.join("o/s/.lock"), format!("{zombie} {host}\n")).unwrap();
    let o = mrkl(&["run", "s.toml", "--out", "o"], &d);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains(&format!(
            "took over a stale lock left by a run that no longer exists (pid {zombie})"
        )),
        "{}",
        stderr(&o)
    );
    child.wait().unwrap();
    // A lock of another host is never judged by this host's process table.
    std::fs::write(d.join("o/s/.lock"), "1 node-17\n").unwrap();
    let o = mrkl(&["run", "s.toml", "--out", "o"], &d);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("locked by pid 1 on host node-17"),
        "{}",
        stderr(&o)
    );
}

#[cfg(unix)]
#[test]
fn messages_are_one_line_escaped_and_compact() {
    let d = scratch("reliab", "messages");
    // A dangling --out symlink.
    std::fs::write(d.join("s.toml"), with_name("s")).unwrap();
    std::os::unix::fs::symlink("nowhere", d.join("dangling")).unwrap();
    let o = mrkl(&["run", "s.toml", "--out", "dangling"], &d);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("a symlink to nowhere, which does not exist"),
        "{}",
        stderr(&o)
    );
    // A newline and a NUL in a name are escaped, on one line.
    std::fs::write(d.join("n.toml"), with_name("a\\nb\\u0000c")).unwrap();
    let o = mrkl(&["run", "n.toml", "--out", "o"], &d);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("name = \"a\\nb\\u{0}c\""), "{err}");
    // 1e300 is printed as 1e300, not 301 digits.
    std::fs::write(
        d.join("g.toml"),
        SMALL.replace("gamma = 1.0", "gamma = 1e300"),
    )
    .unwrap();
    let o = mrkl(&["run", "g.toml", "--out", "o"], &d);
    assert!(
        stderr(&o).contains("experiment.gamma = 1e300 is"),
        "{}",
        stderr(&o)
    );
    // A UTF-8 byte-order mark is accepted in JSON as in TOML.
    std::fs::write(
        d.join("bom.json"),
        "\u{feff}{\"references\": [[[0.5, 0.5]]], \"reward\": {\"class\": \"table\", \"values\": [[1, 0]]}}",
    )
    .unwrap();
    assert!(
        mrkl(&["solve", "bom.json", "--gamma", "1"], &d)
            .status
            .success()
    );
    // HTML in a description is escaped in REPORT.md.
    std::fs::write(
        d.join("h.toml"),
        SMALL.replace(
            "seed = 1",
            "name = \"h\"\ndescription = \"<script>x</script>\"\nseed = 1",
        ),
    )
    .unwrap();
    assert!(
        mrkl(&["run", "h.toml", "--out", "html"], &d)
            .status
            .success()
    );
    let report = std::fs::read_to_string(d.join("html/REPORT.md")).unwrap();
    assert!(report.contains("&lt;script&gt;x&lt;/script&gt;") && !report.contains("<script>"));
}
