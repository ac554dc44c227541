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
