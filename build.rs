//! Embeds every `sims/*.toml` into the binary as the default suite, so that
//! `cargo run --release` runs it from any working directory.
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
}
