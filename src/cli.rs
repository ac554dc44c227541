//! The command line: `mrkl run`, `mrkl solve`; with no arguments, the default suite.
//! Input errors print one line `error: ...` and exit with code 2; nothing is written
//! before every spec has been checked.

use crate::error::{Error, Result};
use crate::instance::RawInstance;
use crate::policy::{
    Divergence, Regularizer, fkl_kkt_residual, fkl_objective, fkl_policy, rkl_objective,
    rkl_optimal_value,
};
use crate::spec::{self, Spec};
use crate::{claims, engine, journal, report};
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

include!(concat!(env!("OUT_DIR"), "/default_suite.rs"));

#[derive(Parser, Debug)]
#[command(
    name = "mrkl",
    version,
    about = "Checks the theory of KL-regularised RLHF with multiple reference models by exact simulation.\nWith no command, runs the default suite (every spec of sims/, embedded at build time)."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run experiment specs (TOML files, or folders of them; none = the default suite).
    Run(RunArgs),
    /// Print the exact RKL or FKL policy of an instance (JSON) and its objective value.
    Solve(SolveArgs),
    /// Run the specs and judge every claim of the registry; exit 1 if any is violated.
    Check(CheckArgs),
    /// Assemble the results of sharded runs from their journals.
    Merge(MergeArgs),
    /// Redraw the plots (SVG and PNG) of saved results, without rerunning anything.
    Plot(FolderArgs),
    /// Write `REPORT.md` (verdicts, plots, [ours] choices, provenance) for saved results.
    Report(FolderArgs),
}

#[derive(clap::Args, Debug)]
struct FolderArgs {
    /// Results folder (holding `<spec>/result.json`).
    #[arg(default_value = "results")]
    folder: PathBuf,
}

#[derive(clap::Args, Debug)]
struct CheckArgs {
    #[command(flatten)]
    run: RunArgs,
    /// Override a claim field (`T5.2.claimed_exponent=-1.5`, `T6.2.bound.constant=1e-5`,
    /// `T5.1.formula=arithmetic`) or a spec field for every spec (`replications=400`,
    /// `experiment.delta=0.1`). Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Master seed for every spec and for the exact checks (overrides the specs' seeds).
    #[arg(long)]
    seed: Option<u64>,
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Spec files or folders of `*.toml` specs.
    paths: Vec<PathBuf>,
    /// Folder that receives `<spec name>/result.json`, `summary.csv`, `instance.json`.
    #[arg(long, default_value = "results")]
    out: PathBuf,
    /// Worker threads (default: RAYON_NUM_THREADS, else one per core). Results do not depend on it.
    #[arg(long)]
    threads: Option<usize>,
    /// Continue a killed run from its journal (`<out>/<spec>/journal*.jsonl`): finished units
    /// are kept, torn or corrupt lines are reported and recomputed.
    #[arg(long)]
    resume: bool,
    /// Run only shard k of N (1-based): the units whose id hashes to k - 1 mod N. The shard's
    /// units go to `journal.shard-k-of-N.jsonl`; `mrkl merge` assembles the result.
    #[arg(long, value_name = "k/N")]
    shard: Option<String>,
}

#[derive(clap::Args, Debug)]
struct MergeArgs {
    /// Folders holding shard journals (searched two levels deep for `journal*.jsonl`).
    folders: Vec<PathBuf>,
    /// Folder that receives `<spec name>/result.json`, `summary.csv`, `instance.json`.
    #[arg(long, default_value = "results")]
    out: PathBuf,
}

#[derive(clap::Args, Debug)]
struct SolveArgs {
    /// Instance JSON: references (or reference_logits), optional rho, reward (class linear, finite or table).
    instance: PathBuf,
    /// rkl or fkl.
    #[arg(long, default_value = "rkl")]
    divergence: String,
    /// Weights on the simplex, comma-separated (default: uniform).
    #[arg(long, value_delimiter = ',')]
    weights: Option<Vec<f64>>,
    /// Inverse temperature gamma > 0.
    #[arg(long)]
    gamma: f64,
}

/// Entry point of the binary; returns the process exit code.
pub fn main() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    let outcome = match cli.command {
        None => check(CheckArgs {
            run: RunArgs {
                paths: vec![],
                out: PathBuf::from("results"),
                threads: None,
                resume: false,
                shard: None,
            },
            set: vec![],
            seed: None,
        }),
        Some(Command::Run(a)) => run(a).map(|()| 0),
        Some(Command::Solve(a)) => solve(a).map(|()| 0),
        Some(Command::Check(a)) => check(a),
        Some(Command::Merge(a)) => merge(a).map(|()| 0),
        Some(Command::Plot(a)) => read_results(&a.folder)
            .and_then(|r| plot_results(&a.folder, &r, &judge_saved(&r)))
            .map(|_| 0),
        Some(Command::Report(a)) => read_results(&a.folder)
            .and_then(|r| publish(&a.folder, &r, &judge_saved(&r)))
            .map(|()| 0),
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

/// The specs named by `paths` (files, or folders of `*.toml` in name order), or the default
/// suite, with spec-level overrides applied before checking.
pub fn load_specs(
    paths: &[PathBuf],
    overrides: &[(String, String)],
) -> Result<Vec<(String, Spec)>> {
    let mut specs = vec![];
    if paths.is_empty() {
        for (file, text) in DEFAULT_SUITE {
            let origin = Path::new("sims").join(file);
            let stem = file.trim_end_matches(".toml");
            specs.push((
                origin.display().to_string(),
                spec::parse_with(text, &origin, stem, Some(Path::new("sims")), overrides)?,
            ));
        }
        return Ok(specs);
    }
    for p in paths {
        if p.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(p)
                .map_err(|e| Error::read(p, e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|f| f.extension().is_some_and(|x| x == "toml"))
                .collect();
            files.sort();
            if files.is_empty() {
                return Err(Error::invalid(
                    "path",
                    p.display(),
                    "a spec file or a folder holding *.toml specs",
                ));
            }
            for f in files {
                specs.push((f.display().to_string(), load_one(&f, overrides)?));
            }
        } else {
            specs.push((p.display().to_string(), load_one(p, overrides)?));
        }
    }
    let mut names: Vec<&str> = specs.iter().map(|(_, s)| s.name.as_str()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(Error::invalid(
            "name",
            w[0],
            "distinct spec names (each names its results folder)",
        ));
    }
    Ok(specs)
}

fn load_one(path: &Path, overrides: &[(String, String)]) -> Result<Spec> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::read(path, e))?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    spec::parse_with(&text, path, &stem, path.parent(), overrides)
}

/// `git rev-parse HEAD` of the current folder, suffixed `-dirty` with uncommitted changes.
pub fn git_commit() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["rev-parse", "HEAD"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let head = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let dirty = std::process::Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .stderr(std::process::Stdio::null())
        .output()
        .map(|o| !o.stdout.is_empty())
        .unwrap_or(false);
    Some(if dirty { format!("{head}-dirty") } else { head })
}

fn pool(threads: Option<usize>) -> Result<rayon::ThreadPool> {
    let mut b = rayon::ThreadPoolBuilder::new();
    if let Some(t) = threads {
        if t == 0 {
            return Err(Error::invalid("--threads", 0, "at least 1"));
        }
        b = b.num_threads(t);
    }
    b.build()
        .map_err(|e| Error::invalid("--threads", threads.unwrap_or(0), e.to_string()))
}

fn fmt_exponent(e: &crate::statistics::ExponentEstimate) -> String {
    match (e.slope, e.ci_low, e.ci_high) {
        (Some(s), Some(lo), Some(hi)) => format!("{s:+.3} [{lo:+.3}, {hi:+.3}]"),
        (Some(s), _, _) => format!("{s:+.3}"),
        _ if e.floor_hit => "n/a (gaps at the floor)".into(),
        _ => format!("n/a ({} sample size(s) in the tail: no slope)", e.points),
    }
}

/// How `execute` runs: resume from journals, and which shard.
#[derive(Clone, Copy, Debug, Default)]
struct Mode {
    resume: bool,
    shard: Option<(u64, u64)>,
}

fn journal_header(origin: &str, spec: &Spec, shard: Option<(u64, u64)>) -> journal::Header {
    journal::Header {
        format: journal::FORMAT.into(),
        mrkl_version: env!("CARGO_PKG_VERSION").into(),
        spec_name: spec.name.clone(),
        spec_hash: report::spec_hash(spec),
        shard: shard.map(|(k, n)| format!("{k}/{n}")),
        spec_origin: origin.to_string(),
        spec_toml: spec.source_toml.clone(),
    }
}

/// Runs one checked spec (in parallel over its replications) under a lock on its results
/// folder, journaling every finished unit; returns its result, or `None` for a shard.
fn execute_one(
    origin: &str,
    spec: &Spec,
    out: &Path,
    pool: &rayon::ThreadPool,
    commit: &Option<String>,
    mode: Mode,
) -> Result<(Option<report::ResultFile>, usize, f64)> {
    let dir = out.join(&spec.name);
    let (_lock, stale) = journal::Lock::acquire(&dir, mode.shard)?;
    if let Some(pid) = stale {
        eprintln!(
            "note: {}: took over a stale lock left by a run that no longer exists (pid {pid})",
            dir.display()
        );
    }
    let header = journal_header(origin, spec, mode.shard);
    let path = dir.join(journal::file_name(mode.shard));
    let all = engine::units(spec);
    let ids: Vec<String> = all
        .iter()
        .map(|&(c, r)| engine::unit_id(&spec.cells[c], r))
        .collect();
    let mut known = std::collections::BTreeMap::new();
    if mode.resume {
        if path.exists() {
            let c = journal::read(&path)?;
            journal::check_provenance(
                &path,
                c.header.as_ref().expect("read checks the header"),
                &header,
            )?;
            if let Some(note) = c.rejection_note(&path) {
                eprintln!("{note}");
            }
            for (i, e) in c.entries {
                if i < ids.len()
                    && ids[i] == e.unit
                    && e.values.len() == spec.ns.len()
                    && journal::in_shard(&e.unit, mode.shard)
                {
                    known.insert(i, e);
                } else {
                    eprintln!(
                        "note: {}: unit {} does not belong to this run; recomputed",
                        path.display(),
                        e.unit
                    );
                }
            }
            eprintln!(
                "resuming {}: {} of {} units already done",
                spec.name,
                known.len(),
                ids.iter()
                    .filter(|u| journal::in_shard(u, mode.shard))
                    .count()
            );
        } else {
            eprintln!(
                "note: {}: no journal to resume; starting afresh",
                path.display()
            );
        }
    }
    let writer = journal::Writer::start(&path, &header, &known)?;
    let todo: Vec<usize> = (0..ids.len())
        .filter(|&i| journal::in_shard(&ids[i], mode.shard) && !known.contains_key(&i))
        .collect();
    let attended = std::io::stderr().is_terminal();
    let bar = ProgressBar::with_draw_target(
        Some(todo.len() as u64),
        if attended {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        },
    );
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>28} [{bar:30}] {pos}/{len} replications  {elapsed_precise} eta {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(spec.name.clone());
    let failure = std::sync::Mutex::new(None);
    let t0 = Instant::now();
    let fresh = pool.install(|| {
        engine::run_units(spec, &todo, &|i, u| {
            if let Err(e) = writer.append(&journal::Entry::new(i, ids[i].clone(), u)) {
                failure
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get_or_insert(e);
            }
            bar.inc(1);
        })
    });
    let secs = t0.elapsed().as_secs_f64();
    bar.finish_and_clear();
    if let Some(e) = failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    drop(writer);
    if mode.shard.is_some() {
        return Ok((None, todo.len(), secs));
    }
    let mut units: Vec<Option<engine::UnitResult>> = vec![None; ids.len()];
    for (i, e) in known {
        units[i] = Some(e.result());
    }
    for (i, u) in fresh {
        units[i] = Some(u);
    }
    let units: Vec<engine::UnitResult> = units
        .into_iter()
        .map(|u| u.expect("every unit ran or was journaled"))
        .collect();
    let result =
        pool.install(|| report::build(spec, &engine::gather(spec, &units), commit.clone()));
    report::write(&dir, spec, &result)?;
    let _ = std::fs::remove_file(&path);
    Ok((Some(result), todo.len(), secs))
}

/// Runs checked specs one after another, writes their results, prints a line per spec and
/// returns the results (none for shards).
fn execute(
    specs: &[(String, Spec)],
    out: &Path,
    pool: &rayon::ThreadPool,
    mode: Mode,
) -> Result<Vec<report::ResultFile>> {
    let commit = git_commit();
    let mut results = vec![];
    let started = Instant::now();
    let mut total_units = 0usize;
    for (origin, spec) in specs {
        let (result, units, secs) = execute_one(origin, spec, out, pool, &commit, mode)?;
        total_units += units;
        let rate = units as f64 / secs.max(1e-9);
        match result {
            Some(result) => {
                println!(
                    "{origin}: {units} replications in {secs:.2}s ({rate:.0}/s) -> {}; exponent of the mean gap in n: {}",
                    out.join(&spec.name).display(),
                    result
                        .cells
                        .iter()
                        .map(|c| format!("{} {}", c.label, fmt_exponent(&c.exponent_mean)))
                        .collect::<Vec<_>>()
                        .join("; ")
                );
                results.push(result);
            }
            None => println!(
                "{origin}: shard {}: {units} replications in {secs:.2}s ({rate:.0}/s) -> {}",
                mode.shard
                    .map(|(k, n)| format!("{k}/{n}"))
                    .unwrap_or_default(),
                out.join(&spec.name)
                    .join(journal::file_name(mode.shard))
                    .display()
            ),
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{} specs, {total_units} replications in {secs:.2}s ({:.0} replications/s, {} threads)",
        specs.len(),
        total_units as f64 / secs.max(1e-9),
        pool.current_num_threads()
    );
    Ok(results)
}

fn find_journals(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| Error::read(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if p.is_file() && name.starts_with("journal") && name.ends_with(".jsonl") {
            out.push(p);
        } else if p.is_dir() && depth > 0 {
            find_journals(&p, depth - 1, out)?;
        }
    }
    Ok(())
}

fn merge(args: MergeArgs) -> Result<()> {
    if args.folders.is_empty() {
        return Err(Error::invalid(
            "folders",
            "none",
            "one or more folders holding shard journals",
        ));
    }
    let mut files = vec![];
    for f in &args.folders {
        find_journals(f, 2, &mut files)?;
    }
    if files.is_empty() {
        return Err(Error::invalid(
            "folders",
            args.folders
                .iter()
                .map(|f| f.display().to_string())
                .collect::<Vec<_>>()
                .join(" "),
            "folders holding journal*.jsonl files (written by `mrkl run --shard k/N`)",
        ));
    }
    // Group by spec; the first journal of a spec is the reference for provenance.
    let mut groups: std::collections::BTreeMap<
        String,
        (
            journal::Header,
            PathBuf,
            std::collections::BTreeMap<usize, (journal::Entry, PathBuf)>,
        ),
    > = Default::default();
    for f in &files {
        let c = journal::read(f)?;
        let h = c.header.clone().expect("read checks the header");
        if let Some(note) = c.rejection_note(f) {
            eprintln!("{note}");
        }
        let g = groups
            .entry(h.spec_name.clone())
            .or_insert_with(|| (h.clone(), f.clone(), Default::default()));
        journal::check_provenance(f, &h, &g.0).map_err(|e| match e {
            Error::Busy { path, message } => Error::Busy {
                path,
                message: format!("{message} (compared with {})", g.1.display()),
            },
            other => other,
        })?;
        for (i, e) in c.entries {
            match g.2.get(&i) {
                Some((prev, from)) if *prev != e => {
                    return Err(Error::Busy {
                        path: f.display().to_string(),
                        message: format!(
                            "unit {} has values that conflict with those in {}",
                            e.unit,
                            from.display()
                        ),
                    });
                }
                Some(_) => {}
                None => {
                    g.2.insert(i, (e, f.clone()));
                }
            }
        }
    }
    let commit = git_commit();
    for (name, (h, first, entries)) in groups {
        let origin = Path::new(&h.spec_origin);
        let spec = spec::parse_with(&h.spec_toml, origin, &name, origin.parent(), &[])?;
        if report::spec_hash(&spec) != h.spec_hash {
            return Err(Error::Busy {
                path: first.display().to_string(),
                message: format!(
                    "the spec rebuilt from the journal has hash {} but the journal says {}: its instance file changed",
                    report::spec_hash(&spec),
                    h.spec_hash
                ),
            });
        }
        let all = engine::units(&spec);
        let ids: Vec<String> = all
            .iter()
            .map(|&(c, r)| engine::unit_id(&spec.cells[c], r))
            .collect();
        let missing: Vec<&String> = ids
            .iter()
            .enumerate()
            .filter(|(i, _)| !entries.contains_key(i))
            .map(|(_, u)| u)
            .collect();
        if !missing.is_empty() {
            let shown: Vec<&str> = missing.iter().take(10).map(|s| s.as_str()).collect();
            return Err(Error::Invalid {
                field: format!("{name}: units"),
                value: format!("{} of {} missing ({}{})", missing.len(), ids.len(), shown.join(", "), if missing.len() > 10 { ", ..." } else { "" }),
                allowed: "every unit in some journal: run the missing shards (or `mrkl run --shard k/N --resume`) and merge again".into(),
            });
        }
        for (i, (e, f)) in &entries {
            if *i >= ids.len() || ids[*i] != e.unit || e.values.len() != spec.ns.len() {
                return Err(Error::Busy {
                    path: f.display().to_string(),
                    message: format!("unit {} does not belong to spec {name}", e.unit),
                });
            }
        }
        let units: Vec<engine::UnitResult> = entries.values().map(|(e, _)| e.result()).collect();
        let dir = args.out.join(&name);
        let (_lock, _) = journal::Lock::acquire(&dir, None)?;
        let result = report::build(&spec, &engine::gather(&spec, &units), commit.clone());
        report::write(&dir, &spec, &result)?;
        println!(
            "{name}: merged {} units from {} journal(s) -> {}",
            units.len(),
            files.len(),
            dir.display()
        );
    }
    Ok(())
}

fn run(args: RunArgs) -> Result<()> {
    let specs = load_specs(&args.paths, &[])?;
    let pool = pool(args.threads)?;
    let shard = args
        .shard
        .as_deref()
        .map(journal::parse_shard)
        .transpose()?;
    let results = execute(
        &specs,
        &args.out,
        &pool,
        Mode {
            resume: args.resume,
            shard,
        },
    )?;
    let mut rows = vec![];
    for (result, (_, spec)) in results.iter().zip(&specs) {
        for c in &result.cells {
            let last = c.summaries.last().expect("n grid is non-empty");
            rows.push([
                spec.name.clone(),
                spec.claim.clone().unwrap_or_default(),
                format!("{} {}", spec.divergence.name(), spec.quantity.name()),
                c.label.clone(),
                format!("{}..{}", spec.ns[0], last.n),
                format!("{:.3e}", last.mean),
                fmt_exponent(&c.exponent_mean),
                fmt_exponent(&c.exponent_quantile),
            ]);
        }
    }
    if shard.is_none() {
        // The report describes the whole results folder, this run's specs and earlier ones.
        let all = read_results(&args.out)?;
        pool.install(|| publish(&args.out, &all, &judge_saved(&all)))?;
    }
    let header = [
        "spec",
        "claim",
        "measures",
        "cell",
        "n",
        "mean gap at n_max",
        "exponent of mean [CI]",
        "exponent of quantile [CI]",
    ];
    print_table(&header, &rows);
    Ok(())
}

fn split_override(s: &str) -> Result<(String, String)> {
    s.split_once('=')
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .filter(|(k, _)| !k.is_empty())
        .ok_or_else(|| Error::invalid("--set", s, "KEY=VALUE"))
}

/// Runs checked specs without writing anything and judges every claim of `registry` on
/// them (the exact checks with `exact_seed`): what `mrkl check` does, minus files and output.
pub fn evaluate(
    specs: &[Spec],
    registry: &claims::Registry,
    exact_seed: u64,
) -> (Vec<report::ResultFile>, Vec<claims::Judgement>) {
    let results: Vec<report::ResultFile> = specs
        .iter()
        .map(|s| report::build(s, &engine::run(s, &|| {}), None))
        .collect();
    let judgements = claims::judge_all(registry, &results, Some(exact_seed));
    (results, judgements)
}

/// Every `<folder>/<spec>/result.json`, in name order.
fn read_results(folder: &Path) -> Result<Vec<report::ResultFile>> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(folder)
        .map_err(|e| Error::read(folder, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("result.json").is_file())
        .collect();
    dirs.sort();
    if dirs.is_empty() {
        return Err(Error::invalid(
            "folder",
            folder.display(),
            "a results folder holding <spec>/result.json (written by mrkl run or check)",
        ));
    }
    dirs.iter()
        .map(|d| report::read(&d.join("result.json")))
        .collect()
}

/// Judgements of the built-in registry on saved results (without the exact checks, which
/// concern the formulas, not the results: `mrkl check` runs them).
fn judge_saved(results: &[report::ResultFile]) -> Vec<claims::Judgement> {
    claims::judge_all(&claims::Registry::builtin(), results, None)
}

/// Draws every result's plots into its folder, with the claim's overlay per cell.
fn plot_results(
    folder: &Path,
    results: &[report::ResultFile],
    judgements: &[claims::Judgement],
) -> Result<Vec<Vec<String>>> {
    use rayon::prelude::*;
    results
        .par_iter()
        .map(|r| {
            let overlays: Vec<crate::plot::ClaimOverlay> = r
                .cells
                .iter()
                .filter_map(|c| {
                    let evidence = if r.cells.len() > 1 {
                        format!("{}:{}", r.name, c.label)
                    } else {
                        r.name.clone()
                    };
                    let j = judgements.iter().find(|j| {
                        j.evidence.as_deref() == Some(evidence.as_str())
                            && r.claim.as_deref() == Some(j.claim.as_str())
                    })?;
                    Some(crate::plot::ClaimOverlay::from_judgement(
                        j,
                        (r.cells.len() > 1).then_some(c.label.as_str()),
                    ))
                })
                .collect();
            let dir = folder.join(&r.name);
            crate::plot::write_plots(r, &overlays, &dir).map_err(|e| Error::write(&dir, e))
        })
        .collect()
}

/// Plots and `REPORT.md` for a results folder.
fn publish(
    folder: &Path,
    results: &[report::ResultFile],
    judgements: &[claims::Judgement],
) -> Result<()> {
    let plots = plot_results(folder, results, judgements)?;
    let text = report::markdown(results, &plots, judgements);
    report::write_atomic(&folder.join("REPORT.md"), text.as_bytes())?;
    println!("plots and report -> {}", folder.join("REPORT.md").display());
    Ok(())
}

/// Top-level spec fields that `--set` may override.
const SPEC_FIELDS: &[&str] = &[
    "seed",
    "replications",
    "instance",
    "experiment",
    "sweep",
    "options",
];

fn check(args: CheckArgs) -> Result<i32> {
    let mut registry = claims::Registry::builtin();
    let mut spec_overrides = vec![];
    for s in &args.set {
        let (k, v) = split_override(s)?;
        if registry
            .claim
            .iter()
            .any(|c| k.starts_with(&format!("{}.", c.id)))
        {
            registry.set(&k, &v)?;
        } else if SPEC_FIELDS.contains(&k.split('.').next().unwrap_or("")) {
            spec_overrides.push((k, v));
        } else {
            return Err(Error::invalid(
                "--set",
                s,
                format!(
                    "ID.field=value for a claim (IDs: {}) or field=value for a spec field ({})",
                    registry.ids(),
                    SPEC_FIELDS.join(", ")
                ),
            ));
        }
    }
    if let Some(seed) = args.seed {
        spec_overrides.push(("seed".into(), seed.to_string()));
    }
    let specs = load_specs(&args.run.paths, &spec_overrides)?;
    claims::validate_specs(&registry, specs.iter().map(|(_, s)| s))?;
    let pool = pool(args.run.threads)?;
    if args.run.shard.is_some() {
        return Err(Error::invalid(
            "--shard",
            args.run.shard.as_deref().unwrap_or(""),
            "only with `mrkl run` (check needs every unit; merge shards first)",
        ));
    }
    let results = execute(
        &specs,
        &args.run.out,
        &pool,
        Mode {
            resume: args.run.resume,
            shard: None,
        },
    )?;
    let exact_seed = args.seed.unwrap_or(claims::EXACT_SEED);
    let judgements = pool.install(|| claims::judge_all(&registry, &results, Some(exact_seed)));
    let rows: Vec<[String; 7]> = judgements
        .iter()
        .map(|j| {
            let interval = match (j.measured, j.ci_low, j.ci_high) {
                (Some(m), Some(lo), Some(hi)) => format!("{m:+.3} [{lo:+.3}, {hi:+.3}]"),
                (Some(m), _, _) => format!("{m:+.3}"),
                _ => "-".into(),
            };
            [
                j.claim.clone(),
                j.evidence.clone().unwrap_or_default(),
                interval,
                j.claimed
                    .map(|c| format!("{c:+}"))
                    .unwrap_or_else(|| "-".into()),
                j.bound_slack
                    .map(|s| format!("{s:.3e}"))
                    .unwrap_or_else(|| "-".into()),
                j.verdict.name().into(),
                j.reason.clone(),
            ]
        })
        .collect();
    print_table(
        &[
            "claim",
            "evidence",
            "measured exponent [CI]",
            "claimed",
            "bound slack",
            "verdict",
            "reason",
        ],
        &rows,
    );
    let summary = claims::summary_json(&registry, &args.set, &judgements, git_commit());
    report::write_atomic(
        &args.run.out.join("summary.json"),
        (serde_json::to_string_pretty(&summary).expect("serialises") + "\n").as_bytes(),
    )?;
    report::write_atomic(
        &args.run.out.join("junit.xml"),
        claims::junit_xml(&judgements).as_bytes(),
    )?;
    pool.install(|| publish(&args.run.out, &results, &judgements))?;
    let violated = judgements
        .iter()
        .filter(|j| j.verdict == claims::Verdict::Violated)
        .count();
    println!(
        "{} judgements: {}",
        judgements.len(),
        claims::verdict_counts(&judgements)
    );
    Ok(if violated > 0 { 1 } else { 0 })
}

/// Prints a plain-text table with aligned columns.
pub fn print_table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) {
    let mut width = header.map(|h| h.chars().count());
    for r in rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(&width)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    println!("{}", line(header.to_vec()));
    println!(
        "{}",
        line(
            width
                .iter()
                .map(
                    |&w| &"----------------------------------------------------------------"
                        [..w.min(64)]
                )
                .collect()
        )
    );
    for r in rows {
        println!("{}", line(r.iter().map(String::as_str).collect()));
    }
}

fn solve(a: SolveArgs) -> Result<()> {
    let text = std::fs::read_to_string(&a.instance).map_err(|e| Error::read(&a.instance, e))?;
    let raw: RawInstance = serde_json::from_str(&text).map_err(|e| Error::parse(&a.instance, e))?;
    let inst = raw.check()?;
    let divergence = match a.divergence.as_str() {
        "rkl" => Divergence::Rkl,
        "fkl" => Divergence::Fkl,
        other => return Err(Error::invalid("--divergence", other, "rkl or fkl")),
    };
    if !(a.gamma.is_finite() && a.gamma >= spec::GAMMA_RANGE.0 && a.gamma <= spec::GAMMA_RANGE.1) {
        return Err(Error::invalid(
            "--gamma",
            a.gamma,
            "a number in [1e-6, 1e6]",
        ));
    }
    let k = inst.k();
    let mut weights = a.weights.unwrap_or_else(|| vec![1.0 / k as f64; k]);
    if weights.len() != k {
        return Err(Error::invalid(
            "--weights (length)",
            weights.len(),
            format!("{k} weights, one per reference"),
        ));
    }
    crate::instance::check_simplex("--weights", &mut weights)?;
    if divergence == Divergence::Rkl {
        if let Some(x) = inst.empty_intersections(&weights).first() {
            return Err(Error::invalid(
                format!("references at context {x}"),
                "disjoint supports",
                "a response shared by every reference with positive weight (THEORY D4)",
            ));
        }
    }
    let (nx, ny) = (inst.contexts, inst.responses);
    let r = inst.true_reward();
    let reg = Regularizer::new(divergence, &inst.references, &weights, nx, ny);
    let mut pi = vec![0.0; nx * ny];
    reg.policy(&r, a.gamma, &mut pi);
    let mut contexts = vec![];
    let mut total = 0.0;
    for x in 0..nx {
        let refs: Vec<&[f64]> = (0..k).map(|i| inst.reference(i, x)).collect();
        let p = &pi[x * ny..(x + 1) * ny];
        let rr = &r[x * ny..(x + 1) * ny];
        let mut entry = serde_json::json!({ "x": x, "rho": inst.rho[x], "policy": p });
        let value = match divergence {
            Divergence::Rkl => {
                let mut lp = vec![0.0; ny];
                let ln_z = crate::policy::rkl_log_policy(
                    &reg.base[x * ny..(x + 1) * ny],
                    rr,
                    a.gamma,
                    &mut lp,
                );
                entry["optimal_value_closed_form"] =
                    serde_json::json!(rkl_optimal_value(reg.ln_f[x], ln_z, a.gamma));
                entry["ln_F"] = serde_json::json!(reg.ln_f[x]);
                rkl_objective(p, &refs, &weights, rr, a.gamma)
            }
            Divergence::Fkl => {
                let mut q = vec![0.0; ny];
                let m = &reg.base[x * ny..(x + 1) * ny];
                let root = fkl_policy(m, rr, a.gamma, &mut q);
                entry["normaliser"] = serde_json::json!(root.z(a.gamma));
                entry["kkt_residual"] =
                    serde_json::json!(fkl_kkt_residual(m, rr, a.gamma, &q, &root));
                fkl_objective(p, &refs, &weights, rr, a.gamma)
            }
        };
        entry["objective"] = serde_json::json!(value);
        total += inst.rho[x] * value;
        contexts.push(entry);
    }
    let out = serde_json::json!({
        "divergence": divergence,
        "gamma": a.gamma,
        "weights": weights,
        "objective": total,
        "contexts": contexts,
    });
    println!(
        "{}",
        serde_json::to_string_pretty(&out).expect("serialises")
    );
    Ok(())
}
