//! The `mrkl` command: a thin shell over [`mrkl::cli`].
fn main() {
    std::process::exit(mrkl::cli::main());
}
