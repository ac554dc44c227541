//! Nothing lost, nothing wrong: kill-and-resume with a real child process, shards merged
//! into the single-machine answer, one writer per results folder, provenance guards, and
//! extreme inputs that must give finite gaps or a clear rejection.

mod common;
#[allow(unused_imports)]
use common::bin;
use common::{mrkl, scratch};

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// A spec with enough single-threaded work (about 2 s) to be killed part-way through.
fn long_spec(seed: u64) -> String {
    format!(
        r#"
name = "long"
seed = {seed}
replications = 600
[instance]
source = "random"
contexts = 20
responses = 10
references = 2
[instance.reward]
class = "linear"
dim = 5
bound = 1.0
[experiment]
divergence = "rkl"
quantity = "suboptimality"
weights = [0.5, 0.5]
gamma = 1.0
n_grid = {{ from = 1000, to = 100000000, levels = 16 }}
"#
    )
}

fn journal_lines(p: &Path) -> usize {
    std::fs::read(p)
        .map(|b| b.iter().filter(|&&c| c == b'\n').count())
        .unwrap_or(0)
}

/// Starts a run, waits until its journal holds `lines` lines, kills it with SIGKILL.
fn run_and_kill(dir: &Path, out: &str, lines: usize, resume: bool) {
    let mut args = vec!["run", "long.toml", "--out", out, "--threads", "1"];
    if resume {
        args.push("--resume");
    }
    let mut child = bin()
        .args(&args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let journal = dir.join(out).join("long/journal.jsonl");
    let t0 = Instant::now();
    while journal_lines(&journal) < lines {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "the run did not reach {lines} journal lines"
        );
        if child.try_wait().unwrap().is_some() {
            panic!("the run finished before it could be killed at {lines} lines");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

#[test]
fn killed_runs_resume_to_byte_identical_results() {
    let d = scratch("robust", "resume");
    std::fs::write(d.join("long.toml"), long_spec(3)).unwrap();
    let o = mrkl(&["run", "long.toml", "--out", "clean"], &d);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let clean = std::fs::read(d.join("clean/long/result.json")).unwrap();
    assert!(
        !d.join("clean/long/journal.jsonl").exists(),
        "a finished run removes its journal"
    );

    // Kill points: early, in the middle, late; the second run is itself killed once more.
    for (k, points) in [vec![5], vec![250], vec![120, 400], vec![590]]
        .iter()
        .enumerate()
    {
        let out = format!("killed{k}");
        for (i, &p) in points.iter().enumerate() {
            run_and_kill(&d, &out, p, i > 0);
            assert!(!d.join(&out).join("long/result.json").exists());
        }
        let o = mrkl(&["run", "long.toml", "--out", &out, "--resume"], &d);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{err}");
        assert!(err.contains("resuming long:"), "{err}");
        let resumed = std::fs::read(d.join(&out).join("long/result.json")).unwrap();
        assert!(
            resumed == clean,
            "kill points {points:?}: resumed result differs from the clean run"
        );
    }
}

#[test]
fn torn_and_corrupt_journal_lines_are_reported_and_recomputed() {
    let d = scratch("robust", "torn");
    std::fs::write(
        d.join("long.toml"),
        long_spec(4).replace("replications = 600", "replications = 60"),
    )
    .unwrap();
    let o = mrkl(&["run", "long.toml", "--out", "clean"], &d);
    assert!(o.status.success());
    let clean = std::fs::read(d.join("clean/long/result.json")).unwrap();
    // Build a journal by a shard-free run killed "after the fact": run, keep the journal by
    // running as shard 1/1 (same units, journal kept), then damage it.
    let o = mrkl(&["run", "long.toml", "--out", "j", "--shard", "1/1"], &d);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let shard_journal = d.join("j/long/journal.shard-1-of-1.jsonl");
    let mut bytes = std::fs::read(&shard_journal).unwrap();
    let newlines: Vec<usize> = bytes
        .iter()
        .enumerate()
        .filter(|(_, b)| **b == b'\n')
        .map(|(i, _)| i)
        .collect();
    assert_eq!(newlines.len(), 61);
    bytes[newlines[10] + 30] ^= 0x04; // corrupt line 12
    bytes.truncate(newlines[59] + 40); // tear the last line (61)
    std::fs::create_dir_all(d.join("r/long")).unwrap();
    std::fs::write(d.join("r/long/journal.jsonl"), &bytes).unwrap();
    // A shard journal's header names the shard but the same spec: resuming a whole run from it
    // is allowed (same spec hash, same version).
    let o = mrkl(&["run", "long.toml", "--out", "r", "--resume"], &d);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("2 torn or corrupt line(s) (line 12, 61)"),
        "{err}"
    );
    assert!(err.contains("58 of 60 units already done"), "{err}");
    assert_eq!(std::fs::read(d.join("r/long/result.json")).unwrap(), clean);
}

#[test]
fn three_shards_merge_into_the_single_machine_result() {
    let d = scratch("robust", "shards");
    std::fs::write(
        d.join("long.toml"),
        long_spec(5).replace("replications = 600", "replications = 90"),
    )
    .unwrap();
    assert!(
        mrkl(&["run", "long.toml", "--out", "single"], &d)
            .status
            .success()
    );
    let single = std::fs::read(d.join("single/long/result.json")).unwrap();
    let mut counts = vec![];
    for k in 1..=3 {
        let o = mrkl(
            &[
                "run",
                "long.toml",
                "--out",
                &format!("s{k}"),
                "--shard",
                &format!("{k}/3"),
            ],
            &d,
        );
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        counts.push(journal_lines(&d.join(format!("s{k}/long/journal.shard-{k}-of-3.jsonl"))) - 1);
    }
    assert_eq!(counts.iter().sum::<usize>(), 90, "{counts:?}");
    assert!(
        counts.iter().all(|&c| c > 10),
        "unbalanced shards {counts:?}"
    );
    // Missing shard: named units, exit 2, nothing written.
    let o = mrkl(&["merge", "s1", "s3", "--out", "m"], &d);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("{} of 90 missing (main/", counts[1])),
        "{err}"
    );
    assert!(!d.join("m/long/result.json").exists());
    // All shards: byte-identical to the single-machine run.
    let o = mrkl(&["merge", "s1", "s2", "s3", "--out", "m"], &d);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read(d.join("m/long/result.json")).unwrap(), single);
    // The same shard twice is fine (identical duplicates); a conflicting duplicate is refused.
    assert!(
        mrkl(&["merge", "s1", "s1", "s2", "s3", "--out", "m2"], &d)
            .status
            .success()
    );
    let p = d.join("s2/long/journal.shard-2-of-3.jsonl");
    let text = std::fs::read_to_string(&p).unwrap();
    let second = text.lines().nth(1).unwrap();
    let (json, _) = second.rsplit_once(' ').unwrap();
    let mut entry: serde_json::Value = serde_json::from_str(json).unwrap();
    entry["values"][0] = serde_json::json!(entry["values"][0].as_f64().unwrap() * 2.0);
    let forged_json = serde_json::to_string(&entry).unwrap();
    let forged = format!(
        "{forged_json} {:016x}",
        mrkl::streams::fnv1a(forged_json.as_bytes())
    );
    std::fs::create_dir_all(d.join("forged/long")).unwrap();
    let header = text.lines().next().unwrap();
    std::fs::write(
        d.join("forged/long/journal.shard-2-of-3.jsonl"),
        format!("{header}\n{forged}\n"),
    )
    .unwrap();
    let o = mrkl(&["merge", "s1", "s2", "s3", "forged", "--out", "m3"], &d);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("conflict"), "{err}");
}

#[test]
fn journals_of_another_spec_are_refused_with_what_differs() {
    let d = scratch("robust", "provenance");
    std::fs::write(
        d.join("long.toml"),
        long_spec(6).replace("replications = 600", "replications = 20"),
    )
    .unwrap();
    assert!(
        mrkl(&["run", "long.toml", "--out", "j", "--shard", "1/2"], &d)
            .status
            .success()
    );
    std::fs::write(
        d.join("long.toml"),
        long_spec(7).replace("replications = 600", "replications = 20"),
    )
    .unwrap();
    let o = mrkl(
        &[
            "run",
            "long.toml",
            "--out",
            "j",
            "--shard",
            "1/2",
            "--resume",
        ],
        &d,
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("spec hash") && err.contains("changed"),
        "{err}"
    );
    // Another version: rewrite the header's version (and its checksum).
    assert!(
        mrkl(&["run", "long.toml", "--out", "v", "--shard", "1/2"], &d)
            .status
            .success()
    );
    let p = d.join("v/long/journal.shard-1-of-2.jsonl");
    let text = std::fs::read_to_string(&p).unwrap();
    let (json, _) = text.lines().next().unwrap().rsplit_once(' ').unwrap();
    let json = json.replace(
        &format!("\"mrkl_version\":\"{}\"", env!("CARGO_PKG_VERSION")),
        "\"mrkl_version\":\"0.0.1\"",
    );
    let header = format!("{json} {:016x}", mrkl::streams::fnv1a(json.as_bytes()));
    let rest: Vec<&str> = text.lines().skip(1).collect();
    std::fs::write(&p, format!("{header}\n{}\n", rest.join("\n"))).unwrap();
    let o = mrkl(
        &[
            "run",
            "long.toml",
            "--out",
            "v",
            "--shard",
            "1/2",
            "--resume",
        ],
        &d,
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("mrkl version 0.0.1"), "{err}");
}

#[test]
fn a_second_writer_is_refused_and_a_stale_lock_is_taken_over() {
    let d = scratch("robust", "lock");
    std::fs::write(d.join("long.toml"), long_spec(8)).unwrap();
    let mut first = bin()
        .args(["run", "long.toml", "--out", "o", "--threads", "1"])
        .current_dir(&d)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lock = d.join("o/long/.lock");
    let t0 = Instant::now();
    while !lock.exists() {
        assert!(t0.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(2));
    }
    let o = mrkl(&["run", "long.toml", "--out", "o"], &d);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!("another mrkl run (pid {})", first.id())),
        "{err}"
    );
    first.kill().unwrap();
    first.wait().unwrap();
    // The killed run left its lock behind: the next run recognises it as stale.
    assert!(lock.exists());
    let o = mrkl(&["run", "long.toml", "--out", "o", "--resume"], &d);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("took over a stale lock"), "{err}");
    assert!(!lock.exists(), "the lock is released at the end");
}
