//! The command line: flags become settings once, then the library's suite functions
//! (`crate::suite`, `crate::solve`) do the work. Input errors print one line `error: ...` and
//! exit with code 2; nothing is written before every spec has been checked.

use crate::policy::Divergence;
use crate::suite::{self, CheckSettings, RunSettings};
use clap::{Parser, Subcommand};
use std::path::PathBuf;

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
    /// Redraw the plots, JUnit and REPORT.md of a results folder from its saved results and
    /// judgements, without rerunning or re-judging anything.
    Plot(FolderArgs),
    /// Same as `plot`: render REPORT.md (verdicts, plots, [ours] choices, provenance) again.
    Report(FolderArgs),
    /// Print (JSON) one replication of one cell at one n, bit-identical to the run: its
    /// stream, win counts, theta_hat, fitted and exact policies, gap and series.
    Replay(ReplayArgs),
    /// The checker's operating characteristic over many master seeds: false alarms,
    /// interval coverage, power against planted deviations (calibration.json, CALIBRATION.md).
    Calibrate(CalibrateArgs),
}

#[derive(clap::Args, Debug)]
struct ReplayArgs {
    /// The spec file.
    spec: PathBuf,
    /// Cell label (as in summary.csv; may be omitted for a spec with one cell).
    #[arg(long)]
    cell: Option<String>,
    /// Replication index, 0-based (as in raw.csv).
    #[arg(long)]
    replication: usize,
    /// A sample size of the spec's grid.
    #[arg(long)]
    n: u64,
    /// Spec overrides the run used (`replications=400`, ...). Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// The master seed the run used, if it was given with --seed.
    #[arg(long)]
    seed: Option<u64>,
}

#[derive(clap::Args, Debug)]
struct CalibrateArgs {
    /// Spec files or folders of `*.toml` specs (none = the default suite).
    paths: Vec<PathBuf>,
    /// Folder that receives calibration.json, CALIBRATION.md, the power plots and the
    /// per-seed outcomes (`seeds/`).
    #[arg(long, default_value = "calibration")]
    out: PathBuf,
    /// Number of master seeds.
    #[arg(long, default_value_t = 100)]
    seeds: u64,
    /// The first master seed (seeds first, first + 1, ...).
    #[arg(long, default_value_t = 1)]
    first_seed: u64,
    /// A spec of the power study (repeatable; default: t5_2_rkl_suboptimality,
    /// t6_2_fkl_suboptimality, t5_3_rkl_reward_gap where run).
    #[arg(long = "power-spec", value_name = "NAME")]
    power_specs: Vec<String>,
    /// Replication counts of the power study, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "50,100,200,400")]
    replications: Vec<usize>,
    /// Planted exponent deviations, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0.05,0.1,0.2,0.3,0.5")]
    exponent_deviations: Vec<f64>,
    /// Planted relative constant deviations, comma-separated (each judged as 1 + e and 1 - e).
    #[arg(long, value_delimiter = ',', default_value = "0.05,0.1,0.2")]
    constant_deviations: Vec<f64>,
    /// Grids of the power study: the spec's grid without its last k levels, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "0,3,6")]
    drop_levels: Vec<usize>,
    /// Skip the exact checks (T5.1, T6.1, F1, DPO.identity) at every seed.
    #[arg(long)]
    no_exact: bool,
    /// A claims file judged beside the built-in claims. Repeatable.
    #[arg(long = "claims", value_name = "FILE.toml")]
    claims: Vec<PathBuf>,
    /// Worker threads (default: RAYON_NUM_THREADS, else one per core). Results do not depend on it.
    #[arg(long)]
    threads: Option<usize>,
    /// Keep the seeds already saved under `<out>/seeds/` (by a killed calibration).
    #[arg(long)]
    resume: bool,
}

impl CalibrateArgs {
    fn settings(self) -> crate::calibrate::CalibrateSettings {
        crate::calibrate::CalibrateSettings {
            paths: self.paths,
            claims_files: self.claims,
            first_seed: self.first_seed,
            seeds: self.seeds,
            power_specs: (!self.power_specs.is_empty()).then_some(self.power_specs),
            design: crate::calibrate::Design {
                replications: self.replications,
                exponent_deviations: self.exponent_deviations,
                constant_deviations: self.constant_deviations,
                drop_levels: self.drop_levels,
                exact: !self.no_exact,
            },
            out: self.out,
            threads: self.threads,
            resume: self.resume,
        }
    }
}

#[derive(clap::Args, Debug)]
struct FolderArgs {
    /// Results folder (holding `summary.json` and `<spec>/result.json`).
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
    /// A claims file (TOML, the schema of the built-in registry) whose claims are judged
    /// beside the built-in ones. Repeatable.
    #[arg(long = "claims", value_name = "FILE.toml")]
    claims: Vec<PathBuf>,
    /// Master seed for every spec and for the exact checks (overrides the specs' seeds).
    #[arg(long)]
    seed: Option<u64>,
    /// Judge only this claim (and run only the specs it needs). Repeatable.
    #[arg(long = "claim", value_name = "ID")]
    claim: Vec<String>,
    /// The quick tier: a quarter of the replications and half the n levels of every spec
    /// (README "CI" states what it can and cannot detect).
    #[arg(long)]
    quick: bool,
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
    #[command(flatten)]
    limits: LimitArgs,
}

/// The resource budget (see README, Reliability): a spec over it is refused before it runs.
#[derive(clap::Args, Debug)]
struct LimitArgs {
    /// Largest estimated peak memory of a spec's run, e.g. 8GiB, 500MB (default 8GiB).
    #[arg(long, value_name = "SIZE", value_parser = size_arg("--max-memory"))]
    max_memory: Option<u64>,
    /// Largest estimated journal plus result size of a spec, e.g. 16GiB (default 16GiB).
    #[arg(long, value_name = "SIZE", value_parser = size_arg("--max-disk"))]
    max_disk: Option<u64>,
}

fn size_arg(flag: &'static str) -> impl Fn(&str) -> Result<u64, String> + Clone {
    move |s| crate::budget::parse_size(flag, s).map_err(|e| e.to_string())
}

impl LimitArgs {
    fn limits(&self) -> crate::budget::Limits {
        let d = crate::budget::Limits::default();
        crate::budget::Limits {
            memory: self.max_memory.unwrap_or(d.memory),
            disk: self.max_disk.unwrap_or(d.disk),
        }
    }
}

#[derive(clap::Args, Debug)]
struct MergeArgs {
    /// Folders holding shard journals (searched two levels deep for `journal*.jsonl`).
    folders: Vec<PathBuf>,
    /// Folder that receives `<spec name>/result.json`, `summary.csv`, `instance.json`.
    #[arg(long, default_value = "results")]
    out: PathBuf,
    #[command(flatten)]
    limits: LimitArgs,
}

#[derive(clap::Args, Debug)]
struct SolveArgs {
    /// Instance JSON: references (or reference_logits), optional rho, reward (class linear, finite or table).
    instance: PathBuf,
    #[arg(long, value_enum, default_value = "rkl")]
    divergence: DivergenceArg,
    /// Weights on the simplex, comma-separated (default: uniform).
    #[arg(long, value_delimiter = ',')]
    weights: Option<Vec<f64>>,
    /// Inverse temperature gamma > 0.
    #[arg(long)]
    gamma: f64,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum DivergenceArg {
    Rkl,
    Fkl,
}

impl RunArgs {
    fn settings(self) -> RunSettings {
        RunSettings {
            paths: self.paths,
            out: self.out,
            threads: self.threads,
            resume: self.resume,
            shard: self.shard,
            limits: self.limits.limits(),
        }
    }
}

impl CheckArgs {
    fn settings(self) -> CheckSettings {
        CheckSettings {
            run: self.run.settings(),
            overrides: self.set,
            claims_files: self.claims,
            seed: self.seed,
            only: self.claim,
            tier: if self.quick {
                crate::spec::Tier::Quick
            } else {
                crate::spec::Tier::Full
            },
        }
    }
}

/// `mrkl replay`: the spec as the run checked it (same overrides and seed), then one unit.
fn replay(a: ReplayArgs) -> crate::error::Result<i32> {
    let mut overrides = vec![];
    for o in &a.set {
        overrides.push(crate::overrides::split(o)?);
    }
    overrides.extend(a.seed.map(|s| ("seed".to_string(), s.to_string())));
    let spec = suite::load_one(&a.spec, &overrides)?;
    let cell = match (&a.cell, spec.cells().as_slice()) {
        (Some(c), _) => c.clone(),
        (None, [only]) => only.label.clone(),
        (None, _) => "(none)".to_string(),
    };
    let out = crate::replay::replay(&spec, &cell, a.replication, a.n)?;
    suite::say!(
        "{}",
        serde_json::to_string_pretty(&out).expect("serialises")
    );
    Ok(0)
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
        None => suite::check(&CheckSettings {
            run: RunSettings {
                out: PathBuf::from("results"),
                ..Default::default()
            },
            ..Default::default()
        }),
        Some(Command::Run(a)) => suite::run(&a.settings()).map(|()| 0),
        Some(Command::Check(a)) => suite::check(&a.settings()),
        Some(Command::Merge(a)) => suite::merge(&a.folders, &a.out, a.limits.limits()).map(|()| 0),
        Some(Command::Plot(a)) | Some(Command::Report(a)) => suite::rerender(&a.folder).map(|()| 0),
        Some(Command::Replay(a)) => replay(a),
        Some(Command::Calibrate(a)) => {
            let command = std::env::args().collect::<Vec<_>>().join(" ");
            crate::calibrate::calibrate(&a.settings(), &command).map(|c| {
                crate::calibrate::print_summary(&c);
                0
            })
        }
        Some(Command::Solve(a)) => {
            let divergence = match a.divergence {
                DivergenceArg::Rkl => Divergence::Rkl,
                DivergenceArg::Fkl => Divergence::Fkl,
            };
            crate::solve::solve(&a.instance, divergence, a.weights, a.gamma).map(|out| {
                crate::suite::say!(
                    "{}",
                    serde_json::to_string_pretty(&out).expect("serialises")
                );
                0
            })
        }
    };
    match outcome {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}
