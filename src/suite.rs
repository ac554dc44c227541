//! The suite: running, merging, judging and publishing, as library functions that the
//! command line (`crate::cli`) and the tests call. Data flows one way: specs -> engine ->
//! analysis (result files) -> claims (judgements, saved as `summary.json`) -> rendering
//! (REPORT.md, JUnit, plots, console), and rendering reads only what was saved.

use crate::claims::{self, Judged, JudgedResult, Judgement, Registry};
use crate::error::{Error, Result};
use crate::result::{self, ResultFile};
use crate::spec::{self, Spec};
use crate::{analysis, budget, engine, fsio, journal, report, tidy};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

include!(concat!(env!("OUT_DIR"), "/default_suite.rs"));

/// Prints a line on stdout, ignoring a closed pipe (`mrkl run | head -1` must not panic or
/// cost results: every result file is written whether or not anyone reads stdout).
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}
pub(crate) use say;

/// The specs named by `paths` (files, or folders of `*.toml` in name order), or the default
/// suite, with spec-level overrides applied before checking.
pub fn load_specs(
    paths: &[PathBuf],
    overrides: &[(String, String)],
) -> Result<Vec<(String, Spec)>> {
    load_specs_in(spec::Tier::Full, paths, overrides)
}

/// [`load_specs`] in a tier: the quick tier's overrides apply before `overrides`.
pub fn load_specs_in(
    tier: spec::Tier,
    paths: &[PathBuf],
    overrides: &[(String, String)],
) -> Result<Vec<(String, Spec)>> {
    let mut specs = vec![];
    if paths.is_empty() {
        for (file, text) in DEFAULT_SUITE {
            let origin = Path::new("sims").join(file);
            let stem = file.trim_end_matches(".toml");
            let overrides = [tier.overrides(text, &origin)?, overrides.to_vec()].concat();
            specs.push((
                origin.display().to_string(),
                spec::parse_with(text, &origin, stem, Some(Path::new("sims")), &overrides)?,
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
                specs.push((f.display().to_string(), load_one_in(tier, &f, overrides)?));
            }
        } else {
            specs.push((p.display().to_string(), load_one_in(tier, p, overrides)?));
        }
    }
    let mut names: Vec<&str> = specs.iter().map(|(_, s)| s.name().as_str()).collect();
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

pub fn load_one(path: &Path, overrides: &[(String, String)]) -> Result<Spec> {
    load_one_in(spec::Tier::Full, path, overrides)
}

/// [`load_one`] in a tier (see [`load_specs_in`]).
pub fn load_one_in(tier: spec::Tier, path: &Path, overrides: &[(String, String)]) -> Result<Spec> {
    let text = crate::fsio::read_text(path)?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let overrides = [tier.overrides(&text, path)?, overrides.to_vec()].concat();
    spec::parse_with(&text, path, &stem, path.parent(), &overrides)
}

pub fn pool(threads: Option<usize>) -> Result<rayon::ThreadPool> {
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
pub struct Mode {
    pub resume: bool,
    pub shard: Option<(u64, u64)>,
}

fn journal_header(origin: &str, spec: &Spec, shard: Option<(u64, u64)>) -> journal::Header {
    journal::Header {
        format: journal::FORMAT.into(),
        mrkl_version: env!("CARGO_PKG_VERSION").into(),
        spec_name: spec.name().clone(),
        spec_hash: analysis::spec_hash(spec),
        shard: shard.map(|(k, n)| format!("{k}/{n}")),
        spec_origin: origin.to_string(),
        spec_toml: spec.source_toml().to_string(),
        spec_base: Path::new(origin)
            .parent()
            .map(|p| {
                if p.as_os_str().is_empty() {
                    Path::new(".")
                } else {
                    p
                }
            })
            .and_then(|p| p.canonicalize().ok())
            .map(|p| p.display().to_string()),
    }
}

/// Progress on a console that is not a terminal (a CI log, a pipe): a start line per spec
/// and a line at most every [`PROGRESS_EVERY`] while it runs, on stderr (the finish line is
/// the spec's line on stdout). On a terminal the progress bar does this instead.
struct Progress<'a> {
    spec: &'a str,
    total: usize,
    start: Instant,
    /// Units done, and when the last line was printed; `None` on a terminal.
    state: Option<std::sync::Mutex<(usize, Instant)>>,
}

/// The longest silence of a run on a non-terminal.
pub const PROGRESS_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

impl<'a> Progress<'a> {
    fn start(spec: &'a Spec, total: usize, attended: bool) -> Self {
        let now = Instant::now();
        if !attended {
            eprintln!(
                "{}: starting {total} replication units ({} cells x {} replications, {} sample sizes each)",
                spec.name(),
                spec.cells().len(),
                spec.replications(),
                spec.ns().len()
            );
        }
        Progress {
            spec: spec.name(),
            total,
            start: now,
            state: (!attended).then(|| std::sync::Mutex::new((0, now))),
        }
    }

    fn tick(&self) {
        let Some(state) = &self.state else { return };
        let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
        st.0 += 1;
        if st.1.elapsed() >= PROGRESS_EVERY && st.0 < self.total {
            st.1 = Instant::now();
            let secs = self.start.elapsed().as_secs_f64();
            let eta = secs * (self.total - st.0) as f64 / st.0 as f64;
            eprintln!(
                "{}: {}/{} units done in {secs:.0}s, about {eta:.0}s to go",
                self.spec, st.0, self.total
            );
        }
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
    bars: &MultiProgress,
) -> Result<(Option<ResultFile>, usize, f64)> {
    let dir = fsio::spec_dir(out, spec.name())?;
    let _lock = take_lock(&dir, mode.shard)?;
    let header = journal_header(origin, spec, mode.shard);
    let path = dir.join(journal::file_name(mode.shard));
    let all = engine::units(spec);
    let ids: Vec<String> = all
        .iter()
        .map(|&(c, r)| engine::unit_id(&spec.cells()[c], r))
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
                    && e.values.len() == spec.ns().len()
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
                spec.name(),
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
    let bar = bars.add(ProgressBar::new(todo.len() as u64));
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>28} [{bar:30}] {pos}/{len} replications  {elapsed_precise} eta {eta}",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_prefix(spec.name().clone());
    let progress = Progress::start(spec, todo.len(), attended);
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
            progress.tick();
        })
    });
    let secs = t0.elapsed().as_secs_f64();
    bar.finish_and_clear();
    bars.remove(&bar);
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
        pool.install(|| analysis::build(spec, &engine::gather(spec, &units), commit.clone()));
    write_spec_files(&dir, spec, &result)?;
    let _ = std::fs::remove_file(&path);
    Ok((Some(result), todo.len(), secs))
}

/// Locks a spec's results folder (reporting a stale lock taken over) and removes the
/// temporary files that dead runs left in it.
fn take_lock(dir: &Path, shard: Option<(u64, u64)>) -> Result<journal::Lock> {
    let (lock, stale) = journal::Lock::acquire(dir, shard)?;
    if let Some(pid) = stale {
        eprintln!(
            "note: {}: took over a stale lock left by a run that no longer exists (pid {pid})",
            crate::error::shown(dir)
        );
    }
    let orphans = fsio::remove_orphans(dir);
    if orphans > 0 {
        eprintln!(
            "note: {}: removed {orphans} temporary file(s) left by a run that no longer exists",
            crate::error::shown(dir)
        );
    }
    Ok(lock)
}

/// How many specs run at once: 2 when the two largest memory estimates ([`budget`]) fit
/// under the memory limit together and there is more than one thread, else 1. With 2, the
/// next spec's replications use the cores that the previous spec leaves idle while its last
/// units, its analysis and its files finish.
fn overlap(specs: &[(String, Spec)], threads: usize, reads_journals: bool) -> usize {
    let mut peaks: Vec<f64> = specs
        .iter()
        .map(|(_, s)| budget::estimate(s, threads, reads_journals).memory)
        .collect();
    peaks.sort_by(|a, b| b.total_cmp(a));
    let together: f64 = peaks.iter().take(2).sum();
    if threads > 1 && specs.len() > 1 && together <= budget::Limits::current().memory as f64 {
        2
    } else {
        1
    }
}

/// Refuses, before anything runs, a spec whose estimated peak memory or disk space is over
/// the installed limits ([`budget`]).
pub fn check_budget<'a>(
    specs: impl IntoIterator<Item = &'a Spec>,
    threads: usize,
    reads_journals: bool,
) -> Result<()> {
    let limits = budget::Limits::current();
    for spec in specs {
        budget::check(
            spec.name(),
            budget::estimate(spec, threads, reads_journals),
            limits,
        )?;
    }
    Ok(())
}

/// Runs checked specs, writes their results, prints a line per spec in spec order and
/// returns the results in that order (none for shards). Every spec's budget is checked
/// first. Two specs run at once when their memory fits ([`overlap`]); a spec's results do
/// not depend on what runs beside it (each unit owns its stream). After a failure no further
/// spec starts, the ones running finish, and the first failure in spec order is returned.
pub fn execute(
    specs: &[(String, Spec)],
    out: &Path,
    pool: &rayon::ThreadPool,
    mode: Mode,
) -> Result<Vec<ResultFile>> {
    check_budget(
        specs.iter().map(|(_, s)| s),
        pool.current_num_threads(),
        mode.resume,
    )?;
    fsio::output_root(out)?;
    let commit = git_commit();
    let window = overlap(specs, pool.current_num_threads(), mode.resume);
    let attended = std::io::stderr().is_terminal();
    let bars = MultiProgress::with_draw_target(if attended {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });
    let mut results = vec![];
    let started = Instant::now();
    let mut total_units = 0usize;
    let mut outcomes: Vec<Option<Result<(Option<ResultFile>, usize, f64)>>> =
        specs.iter().map(|_| None).collect();
    let mut failure = None;
    let (sent, received) = std::sync::mpsc::channel();
    // The calling thread only starts specs and prints, in spec order; the specs run in the
    // pool, at most `window` at once, so the next one's replications fill the cores while
    // the previous one finishes (its last units, its analysis, its files).
    pool.in_place_scope(|scope| {
        let (mut started_specs, mut running, mut shown, mut halted) = (0, 0, 0, false);
        loop {
            while running < window && started_specs < specs.len() && !halted {
                let (k, sent) = (started_specs, sent.clone());
                let (origin, spec) = &specs[k];
                let (commit, bars) = (&commit, &bars);
                scope.spawn(move |_| {
                    // A panic is reported too (and raised again below), so the wait for
                    // this spec ends.
                    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        execute_one(origin, spec, out, pool, commit, mode, bars)
                    }));
                    // The receiver lives until every spawned spec has reported.
                    let _ = sent.send((k, outcome));
                });
                started_specs += 1;
                running += 1;
            }
            if running == 0 {
                break;
            }
            let (k, outcome) = received.recv().expect("every started spec reports");
            let outcome = outcome.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            running -= 1;
            halted |= outcome.is_err();
            outcomes[k] = Some(outcome);
            while shown < started_specs && failure.is_none() {
                let Some(outcome) = outcomes[shown].take() else {
                    break;
                };
                let (origin, spec) = &specs[shown];
                shown += 1;
                let (result, units, secs) = match outcome {
                    Ok(o) => o,
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                };
                total_units += units;
                // Bars of running specs are hidden while the line is printed.
                bars.suspend(|| announce(origin, spec, out, mode, result.as_ref(), units, secs));
                results.extend(result);
            }
        }
    });
    if let Some(e) = failure {
        return Err(e);
    }
    let secs = started.elapsed().as_secs_f64();
    say!(
        "{} specs, {total_units} replications in {secs:.2}s ({:.0} replications/s, {} threads)",
        specs.len(),
        total_units as f64 / secs.max(1e-9),
        pool.current_num_threads()
    );
    Ok(results)
}

/// The line of a finished spec on stdout (and warnings about its cells on stderr).
fn announce(
    origin: &str,
    spec: &Spec,
    out: &Path,
    mode: Mode,
    result: Option<&ResultFile>,
    units: usize,
    secs: f64,
) {
    let rate = units as f64 / secs.max(1e-9);
    match result {
        Some(result) => {
            let dir = out.join(spec.name());
            for c in &result.cells {
                if let Some(p) = c.support.as_ref().filter(|p| p.mostly_dropped()) {
                    eprintln!(
                        "warning: {} {}: the references with positive weight share {:.2} of {} responses per context on average (min {}); the escort drops the rest",
                        spec.name(),
                        c.label,
                        p.mean,
                        p.responses,
                        p.min
                    );
                }
            }
            if let [only] = result.cells.as_slice() {
                say!(
                    "{origin}: {units} replications in {secs:.2}s ({rate:.0}/s) -> {}; exponent of the mean gap in n: {}",
                    dir.display(),
                    fmt_exponent(&only.exponent_mean)
                );
            } else {
                // A sweep: one line per cell, not one line of thousands of characters.
                say!(
                    "{origin}: {units} replications in {secs:.2}s ({rate:.0}/s) -> {}; exponent of the mean gap in n per cell:",
                    dir.display()
                );
                for c in &result.cells {
                    say!("  {:<28} {}", c.label, fmt_exponent(&c.exponent_mean));
                }
            }
        }
        None => say!(
            "{origin}: shard {}: {units} replications in {secs:.2}s ({rate:.0}/s) -> {}",
            mode.shard
                .map(|(k, n)| format!("{k}/{n}"))
                .unwrap_or_default(),
            out.join(&spec.name())
                .join(journal::file_name(mode.shard))
                .display()
        ),
    }
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

/// `mrkl merge`: assembles the results of sharded runs from the journals under `folders`
/// (two levels deep) into `out`; results are byte-identical to a single-machine run.
pub fn merge(folders: &[PathBuf], out: &Path, limits: budget::Limits) -> Result<()> {
    limits.install();
    if folders.is_empty() {
        return Err(Error::invalid(
            "folders",
            "none",
            "one or more folders holding shard journals",
        ));
    }
    let mut files = vec![];
    for f in folders {
        find_journals(f, 2, &mut files)?;
    }
    if files.is_empty() {
        return Err(Error::invalid(
            "folders",
            folders
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
    // Everything is validated and built first; nothing is written unless every spec merges.
    let commit = git_commit();
    let mut built = vec![];
    for (name, (h, first, entries)) in groups {
        let origin = Path::new(&h.spec_origin);
        let base = h
            .spec_base
            .as_deref()
            .map(Path::new)
            .or_else(|| origin.parent());
        let spec = spec::parse_with(&h.spec_toml, origin, &name, base, &[])?;
        if analysis::spec_hash(&spec) != h.spec_hash {
            return Err(Error::Busy {
                path: crate::error::shown(&first),
                message: format!(
                    "the spec rebuilt from the journal has hash {} but the journal says {}: its instance file changed",
                    analysis::spec_hash(&spec),
                    h.spec_hash
                ),
            });
        }
        check_budget([&spec], rayon::current_num_threads(), true)?;
        let all = engine::units(&spec);
        let ids: Vec<String> = all
            .iter()
            .map(|&(c, r)| engine::unit_id(&spec.cells()[c], r))
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
                allowed: "every unit in some journal: run the missing shards (or `mrkl run --shard k/N --resume`) and merge again; nothing was written".into(),
            });
        }
        for (i, (e, f)) in &entries {
            if *i >= ids.len() || ids[*i] != e.unit || e.values.len() != spec.ns().len() {
                return Err(Error::Busy {
                    path: crate::error::shown(f),
                    message: format!("unit {} does not belong to spec {name}", e.unit),
                });
            }
        }
        let units: Vec<engine::UnitResult> = entries.values().map(|(e, _)| e.result()).collect();
        let result = analysis::build(&spec, &engine::gather(&spec, &units), commit.clone());
        built.push((spec, result, units.len()));
    }
    fsio::output_root(out)?;
    let mut locked = vec![];
    for (spec, _, _) in &built {
        let dir = fsio::spec_dir(out, spec.name())?;
        locked.push((take_lock(&dir, None)?, dir));
    }
    for ((spec, result, units), (_lock, dir)) in built.iter().zip(&locked) {
        write_spec_files(dir, spec, result)?;
        say!(
            "{}: merged {units} units from {} journal(s) -> {}",
            spec.name(),
            files.len(),
            crate::error::shown(dir)
        );
    }
    Ok(())
}

/// Writes `instance.json`, `summary.csv`, `raw.csv` and `result.json` of a spec into `dir`
/// as one set:
/// each atomically, then the manifest that readers check ([`fsio::write_set`]).
pub fn write_spec_files(dir: &Path, spec: &Spec, r: &ResultFile) -> Result<()> {
    fsio::write_set(
        dir,
        &[
            ("instance.json", analysis::instance_json(spec).as_bytes()),
            ("summary.csv", tidy::summary_csv(r).as_bytes()),
            ("raw.csv", tidy::raw_csv(r).as_bytes()),
            ("result.json", result::to_json(r).as_bytes()),
        ],
    )
}

/// Reads `<dir>/result.json` after checking that it and the other files of its set present
/// beside it are the ones its manifest lists.
pub fn read_result(dir: &Path) -> Result<ResultFile> {
    let path = dir.join("result.json");
    let text = fsio::read_text(&path)?;
    fsio::verify_member(dir, "result.json", text.as_bytes())?;
    for other in ["instance.json", "summary.csv", "raw.csv"] {
        let p = dir.join(other);
        if p.exists() {
            fsio::verify_member(dir, other, fsio::read_text(&p)?.as_bytes())?;
        }
    }
    result::parse(&path, &text)
}

/// Runs checked specs without writing anything and judges every claim of `registry` on
/// them (the exact checks with `exact_seed`): what `mrkl check` does, minus files and output.
pub fn evaluate(
    specs: &[Spec],
    registry: &Registry,
    exact_seed: u64,
) -> (Vec<ResultFile>, Vec<Judgement>) {
    let results: Vec<ResultFile> = specs
        .iter()
        .map(|s| analysis::build(s, &engine::run(s, &|| {}), None))
        .collect();
    let judgements = claims::judge_all(registry, &results, Some(exact_seed));
    (results, judgements)
}

/// Every `<folder>/<spec>/result.json`, in name order. A result that cannot be read is
/// skipped with a warning naming it (one corrupt folder does not stop the others).
pub fn read_results(folder: &Path) -> Result<Vec<ResultFile>> {
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
    let mut out = vec![];
    for d in dirs {
        match read_result(&d) {
            Ok(r) => out.push(r),
            Err(e) => eprintln!("warning: skipped {e}"),
        }
    }
    Ok(out)
}

/// Judges `results` against `registry` and assembles what is saved as `summary.json`.
pub fn judge(
    command: &str,
    registry: &Registry,
    overrides: &[String],
    results: &[ResultFile],
    exact_seed: Option<u64>,
) -> Judged {
    let judgements = claims::judge_all(registry, results, exact_seed);
    Judged {
        format: claims::SUMMARY_FORMAT.into(),
        mrkl_version: env!("CARGO_PKG_VERSION").into(),
        git_commit: git_commit(),
        command: command.into(),
        overrides: overrides.to_vec(),
        exact_seed,
        bound_test_level: claims::BOUND_TEST_LEVEL,
        results: results
            .iter()
            .map(|r| JudgedResult {
                name: r.name.clone(),
                spec_hash: r.provenance.spec_hash.clone(),
            })
            .collect(),
        registry: registry.clone(),
        counts: claims::verdict_counts(&judgements),
        judgements,
    }
}

/// Reads a folder's saved judgements and the results they cover, refusing results that
/// changed since they were judged.
pub fn read_judged(folder: &Path) -> Result<(Judged, Vec<ResultFile>)> {
    let path = folder.join("summary.json");
    let text = fsio::read_text(&path)?;
    #[derive(serde::Deserialize)]
    struct Probe {
        format: Option<String>,
    }
    let probe: Probe = serde_json::from_str(&text).map_err(|e| Error::parse(&path, e))?;
    if probe.format.as_deref() != Some(claims::SUMMARY_FORMAT) {
        return Err(Error::parse(
            &path,
            format!(
                "summary format {} is not {}, the format this mrkl reads: run `mrkl check` (or `mrkl run`) again",
                probe.format.as_deref().unwrap_or("(none)"),
                claims::SUMMARY_FORMAT
            ),
        ));
    }
    let judged: Judged = serde_json::from_str(&text).map_err(|e| Error::parse(&path, e))?;
    let mut results = vec![];
    for jr in &judged.results {
        let p = folder.join(&jr.name).join("result.json");
        let r = read_result(&folder.join(&jr.name))?;
        if r.provenance.spec_hash != jr.spec_hash {
            return Err(Error::Busy {
                path: p.display().to_string(),
                message: format!(
                    "this result (spec hash {}) is not the one judged in summary.json ({}): run `mrkl check` again",
                    r.provenance.spec_hash, jr.spec_hash
                ),
            });
        }
        results.push(r);
    }
    Ok((judged, results))
}

/// Draws every result's plots into its folder, with the overlay of its rate judgement per
/// cell.
pub fn plot_results(
    folder: &Path,
    results: &[ResultFile],
    judged: &Judged,
) -> Result<Vec<Vec<String>>> {
    use rayon::prelude::*;
    results
        .par_iter()
        .map(|r| {
            let overlays: Vec<crate::plot::ClaimOverlay> = r
                .cells
                .iter()
                .filter_map(|c| {
                    let evidence = r.evidence(c);
                    let j = judged.judgements.iter().find(|j| {
                        j.evidence.as_deref() == Some(evidence.as_str())
                            && r.claims.contains(&j.claim)
                    })?;
                    Some(crate::plot::ClaimOverlay::from_judgement(
                        j,
                        (r.cells.len() > 1).then_some(c.label.as_str()),
                    ))
                })
                .collect();
            // The name comes from a file on disk: the folder is checked to lie inside.
            let dir = fsio::spec_dir(folder, &r.name)?;
            crate::plot::write_plots(r, &overlays, &dir).map_err(|e| Error::write(&dir, e))
        })
        .collect()
}

/// Saves the judgements (`summary.json`) and renders from them: JUnit, plots and REPORT.md.
pub fn publish(folder: &Path, results: &[ResultFile], judged: &Judged) -> Result<()> {
    fsio::write_atomic(
        &folder.join("summary.json"),
        (serde_json::to_string_pretty(judged).expect("serialises") + "\n").as_bytes(),
    )?;
    render(folder, results, judged)
}

/// Renders JUnit, plots and REPORT.md from saved results and judgements.
pub fn render(folder: &Path, results: &[ResultFile], judged: &Judged) -> Result<()> {
    fsio::write_atomic(
        &folder.join("junit.xml"),
        report::junit_xml(&judged.judgements).as_bytes(),
    )?;
    let plots = plot_results(folder, results, judged)?;
    let text = report::markdown(results, &plots, judged);
    fsio::write_atomic(&folder.join("REPORT.md"), text.as_bytes())?;
    say!("plots and report -> {}", folder.join("REPORT.md").display());
    Ok(())
}

/// `mrkl report` / `mrkl plot`: renders a folder again from what it saved.
pub fn rerender(folder: &Path) -> Result<()> {
    let (judged, results) = read_judged(folder)?;
    render(folder, &results, &judged)
}

/// What `mrkl check` does: which specs, which claims, how.
#[derive(Clone, Debug, Default)]
pub struct CheckSettings {
    /// Specs, output folder, threads, resume (a shard is refused: check needs every unit).
    pub run: RunSettings,
    /// `--set KEY=VALUE`, as given.
    pub overrides: Vec<String>,
    /// `--claims FILE.toml`.
    pub claims_files: Vec<PathBuf>,
    pub seed: Option<u64>,
    /// `--claim ID`: judge only these claims, and run only the specs they need (empty: all).
    pub only: Vec<String>,
    /// `--quick`: the quick tier of every spec ([`spec::Tier`]).
    pub tier: spec::Tier,
}

/// Top-level spec fields that `--set` may override.
pub const SPEC_FIELDS: &[&str] = &[
    "seed",
    "replications",
    "instance",
    "experiment",
    "sweep",
    "options",
];

/// `mrkl check`: runs the specs, judges every claim (exact checks included), saves and
/// renders the judgements, prints the verdict table; returns the exit code (1 if a claim is
/// violated).
pub fn check(s: &CheckSettings) -> Result<i32> {
    if let Some(shard) = &s.run.shard {
        return Err(Error::invalid(
            "--shard",
            shard,
            "only with `mrkl run` (check needs every unit; merge shards first)",
        ));
    }
    s.run.limits.install();
    let mut registry = Registry::with_files(&s.claims_files)?;
    let mut spec_overrides = vec![];
    for o in &s.overrides {
        let (k, v) = crate::overrides::split(o)?;
        if registry.addresses(&k) {
            registry.set(&k, &v)?;
        } else if SPEC_FIELDS.contains(&k.split('.').next().unwrap_or("")) {
            spec_overrides.push((k, v));
        } else {
            return Err(Error::invalid(
                "--set",
                o,
                format!(
                    "ID.field=value for a claim (IDs: {}) or field=value for a spec field ({})",
                    registry.ids(),
                    SPEC_FIELDS.join(", ")
                ),
            ));
        }
    }
    if let Some(seed) = s.seed {
        spec_overrides.push(("seed".into(), seed.to_string()));
    }
    let mut specs = load_specs_in(s.tier, &s.run.paths, &spec_overrides)?;
    claims::validate_specs(&registry, specs.iter().map(|(_, s)| s))?;
    if !s.only.is_empty() {
        let needed = registry.select(&s.only)?;
        specs.retain(|(_, spec)| spec.claims().iter().any(|c| needed.contains(c)));
    }
    let pool = pool(s.run.threads)?;
    let results = execute(
        &specs,
        &s.run.out,
        &pool,
        Mode {
            resume: s.run.resume,
            shard: None,
        },
    )?;
    let exact_seed = s.seed.unwrap_or(claims::EXACT_SEED);
    let judged =
        pool.install(|| judge("check", &registry, &s.overrides, &results, Some(exact_seed)));
    say!(
        "{}",
        report::text_table(
            &report::VERDICT_HEADER,
            &report::verdict_rows(&judged.judgements)
        )
    );
    pool.install(|| publish(&s.run.out, &results, &judged))?;
    say!(
        "{} judgements: {}",
        judged.judgements.len(),
        judged.counts_text()
    );
    Ok(if judged.any_violated() { 1 } else { 0 })
}

/// What `mrkl run` does.
#[derive(Clone, Debug, Default)]
pub struct RunSettings {
    pub paths: Vec<PathBuf>,
    pub out: PathBuf,
    pub threads: Option<usize>,
    pub resume: bool,
    pub shard: Option<String>,
    /// `--max-memory` / `--max-disk` ([`budget`]).
    pub limits: budget::Limits,
}

/// `mrkl run`: runs the specs; unless sharded, judges every result of the output folder on
/// the built-in registry (no exact checks), saves and renders; prints a table per cell.
pub fn run(s: &RunSettings) -> Result<()> {
    s.limits.install();
    let specs = load_specs(&s.paths, &[])?;
    let pool = pool(s.threads)?;
    let shard = s.shard.as_deref().map(journal::parse_shard).transpose()?;
    let results = execute(
        &specs,
        &s.out,
        &pool,
        Mode {
            resume: s.resume,
            shard,
        },
    )?;
    let mut rows = vec![];
    for (result, (_, spec)) in results.iter().zip(&specs) {
        for c in &result.cells {
            let last = c.summaries.last().expect("n grid is non-empty");
            rows.push([
                spec.name().clone(),
                spec.claims().join(", "),
                format!("{} {}", spec.divergence().name(), spec.quantity().name()),
                c.label.clone(),
                format!("{}..{}", spec.ns()[0], last.n),
                format!("{:.3e}", last.mean),
                fmt_exponent(&c.exponent_mean),
                fmt_exponent(&c.exponent_quantile),
            ]);
        }
    }
    if shard.is_none() {
        // The report describes the whole results folder, this run's specs and earlier ones.
        let all = read_results(&s.out)?;
        let judged = pool.install(|| judge("run", &Registry::builtin(), &[], &all, None));
        pool.install(|| publish(&s.out, &all, &judged))?;
    }
    let header = [
        "spec",
        "claims",
        "measures",
        "cell",
        "n",
        "mean gap at n_max",
        "exponent of mean [CI]",
        "exponent of quantile [CI]",
    ];
    say!("{}", report::text_table(&header, &rows).trim_end());
    Ok(())
}

/// The git commit mrkl was built from (`-dirty` with uncommitted changes), embedded at build
/// time, so results record it wherever the binary runs.
pub fn git_commit() -> Option<String> {
    option_env!("MRKL_GIT_COMMIT")
        .filter(|c| !c.is_empty())
        .map(str::to_string)
}
