//! Helpers shared by the end-to-end tests: run the binary, make a scratch folder.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `mrkl` binary built for these tests.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mrkl"))
}

/// Runs `mrkl args...` in `cwd` and returns its output.
pub fn mrkl(args: &[&str], cwd: &Path) -> Output {
    bin().args(args).current_dir(cwd).output().expect("runs")
}

/// A fresh scratch folder per test file (`file`) and test (`name`), removed first if a
/// previous run left it.
pub fn scratch(file: &str, name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("mrkl-{file}-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// A small spec for the library-level tests: three weight cells on shared data (the
/// engine's shared-fit cache is on), 6 replications, n = 50, 500, 5000, recording the
/// objective series. Named `replay`.
pub const SWEEP_SPEC: &str = r#"
name = "replay"
seed = 11
replications = 6

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
n = [50, 500, 5000]
sampling = "uniform"
record = ["objective"]

[sweep]
weights = [[0.25, 0.75], [1.0, 0.0], [0.5, 0.5]]
"#;
