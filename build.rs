//! Embeds every `sims/*.toml` into the binary as the default suite, so that
//! `cargo run --release` runs it from any working directory, and the git commit the binary
//! is built from (`MRKL_GIT_COMMIT`, with `-dirty` for uncommitted changes to tracked
//! files), so that every result records it wherever the binary runs.
use std::{env, fs, path::PathBuf};

fn main() {
    let root = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let sims = root.join("sims");
    println!("cargo:rerun-if-changed=sims");
    let mut files: Vec<PathBuf> = fs::read_dir(&sims)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    let mut out = String::from(
        "/// The default suite: (file name, TOML text) of every spec in sims/.\npub const DEFAULT_SUITE: &[(&str, &str)] = &[\n",
    );
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
        let name = f.file_name().unwrap().to_string_lossy();
        out.push_str(&format!(
            "    ({name:?}, include_str!({:?})),\n",
            f.display().to_string()
        ));
    }
    out.push_str("];\n");
    fs::write(
        PathBuf::from(env::var("OUT_DIR").unwrap()).join("default_suite.rs"),
        out,
    )
    .unwrap();
    embed_git_commit(&root);
}

fn embed_git_commit(root: &std::path::Path) {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(root)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        let dir = root.join(dir);
        for f in ["HEAD", "index"] {
            println!("cargo:rerun-if-changed={}", dir.join(f).display());
        }
        println!("cargo:rerun-if-changed=src");
    }
    let commit = git(&["rev-parse", "HEAD"]).map(|head| {
        let dirty =
            git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
        if dirty { format!("{head}-dirty") } else { head }
    });
    println!(
        "cargo:rustc-env=MRKL_GIT_COMMIT={}",
        commit.unwrap_or_default()
    );
}
