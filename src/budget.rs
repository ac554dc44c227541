//! The resource budget: the peak memory and the disk space a run will need, estimated from
//! the checked spec before anything runs, and refused (one line, exit 2) when over the
//! limits the user can raise (`--max-memory`, `--max-disk`). The sizes of a random
//! instance are checked the same way before the instance is drawn, so a spec whose tables
//! alone would exhaust memory is refused before they are allocated.
//!
//! # Formula
//!
//! With C = |X||Y| table entries, P = |X| |Y|(|Y|-1)/2 unordered pairs, d the linear class's
//! dimension (0 otherwise), M the finite class's candidates (0 otherwise), K references,
//! c cells, R replications, U = c R work units, L levels of the n grid, S extra series,
//! Q comparators recorded, T worker threads, all sizes in bytes:
//!
//! - instance `I = (K C + |X| + d C + M C) * (8 + 8 + 2 * 48)`: the tables (8 per number),
//!   the copy made to serialise them, and their pretty-printed JSON (`instance.json`, hashed
//!   into the spec hash; at most 48 characters per number: indentation, 17 significant
//!   digits, sign, exponent, separator; twice that while the growing text is reallocated);
//! - preparation `8 P d + c * 8 (3 P + 6 C + Q C)`: the feature differences of the linear
//!   class, and per cell the sampler (pair probabilities, conditionals, CDFs), the sampling
//!   policy, the regulariser and the comparators;
//! - per thread `T * (16 P + 8 P d + 16 P + 8 M + 64 C)`: the win counts, the active data of
//!   the linear fit (at the largest n every pair may be observed), the finite class's
//!   log-likelihoods, and the per-unit tables (fitted reward, policies, gap workspace);
//! - results `U * (u + 3 * 8 L (1 + S) + 2 * 48 L (1 + S))` with the per-unit record
//!   u = 2 * (160 + 8 L (1 + S) + 5 L): each unit's values, iterations, boundary flags and extra
//!   series as the engine returns them (heap blocks with their headers, two transient
//!   copies while they are put in order), then the per-level tables gathered for the analysis,
//!   the raw tables of the result, and the result's pretty JSON (at most 48 bytes per value,
//!   twice that while it grows);
//! - a resumed run or a merge also holds its journals' text twice (bytes and decoded) while
//!   it reads them: `2 J`;
//! - in an instance sweep with N instances (docs/theory.md §2, "Instance sweeps"), each
//!   instance beyond the master adds its tables and its fitter,
//!   `(N - 1) (8 (K C + |X| + d C + M C) + 8 P d)` (the sizes are the largest instance's);
//! - plus a fixed base `B = 32 MiB` (binary, thread stacks, allocator arenas).
//!
//! Disk: the journal `J = U (96 + L (24 + 11 + 6) + 25 S L)` (unit id and keys, shortest
//! round-trip floats of at most 24 characters, iteration counts, flags, the checksum), and the
//! result `48 L U (1 + S) + 2048 c L + 64 KiB` plus `instance.json` (48 bytes per number).
//!
//! Every term is an upper bound of what the code allocates (the counts of numbers are exact;
//! the bytes per number are the worst case of the format), so the estimate is above the
//! measured peak; `tests/reliability.rs` checks it against the peak RSS of real runs.

use crate::error::{Error, Result};
use crate::instance::RewardModel;
use crate::spec::Spec;
use std::sync::atomic::{AtomicU64, Ordering};

/// Default `--max-memory`: 8 GiB, a third of the 24 GiB of the machines this suite targets.
pub const DEFAULT_MAX_MEMORY: u64 = 8 << 30;
/// Default `--max-disk`: 16 GiB for the journal, the result and `instance.json` of one spec.
pub const DEFAULT_MAX_DISK: u64 = 16 << 30;

/// Bytes written per number in pretty JSON, at most (see the module doc).
const JSON_NUMBER: u64 = 48;
/// Fixed base of the process.
const BASE: u64 = 32 << 20;

static MAX_MEMORY: AtomicU64 = AtomicU64::new(DEFAULT_MAX_MEMORY);
static MAX_DISK: AtomicU64 = AtomicU64::new(DEFAULT_MAX_DISK);

/// The limits a run is checked against.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub memory: u64,
    pub disk: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory: DEFAULT_MAX_MEMORY,
            disk: DEFAULT_MAX_DISK,
        }
    }
}

impl Limits {
    /// Makes these the limits of this process (the spec check reads them before it draws a
    /// random instance).
    pub fn install(self) {
        MAX_MEMORY.store(self.memory, Ordering::Relaxed);
        MAX_DISK.store(self.disk, Ordering::Relaxed);
    }

    /// The limits installed in this process (the defaults unless [`Limits::install`]ed).
    pub fn current() -> Self {
        Limits {
            memory: MAX_MEMORY.load(Ordering::Relaxed),
            disk: MAX_DISK.load(Ordering::Relaxed),
        }
    }
}

/// Parses a size: a number with an optional unit B, KB, MB, GB, TB (powers of 1000) or KiB,
/// MiB, GiB, TiB (powers of 1024).
pub fn parse_size(field: &str, s: &str) -> Result<u64> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "kb" => 1e3,
        "mb" => 1e6,
        "gb" => 1e9,
        "tb" => 1e12,
        "kib" => 1024.0,
        "mib" => 1024f64.powi(2),
        "gib" => 1024f64.powi(3),
        "tib" => 1024f64.powi(4),
        _ => f64::NAN,
    };
    match num.parse::<f64>().map(|v| v * scale) {
        Ok(v) if v.is_finite() && v >= 1.0 && v < 1.8e19 => Ok(v as u64),
        _ => Err(Error::invalid(
            field,
            crate::error::quoted(s),
            "a size such as 8GiB, 500MB or 1000000 (bytes)",
        )),
    }
}

/// The sizes of a spec that drive its cost.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Sizes {
    pub contexts: u64,
    pub responses: u64,
    pub references: u64,
    /// The linear class's dimension (0 for another class).
    pub dim: u64,
    /// The finite class's candidates (0 for another class).
    pub candidates: u64,
    pub cells: u64,
    pub replications: u64,
    pub levels: u64,
    pub series: u64,
    pub comparators: u64,
    /// Distinct instances of the cells beyond the master (0 without an instance sweep).
    pub extra_instances: u64,
}

impl Sizes {
    /// The sizes of a checked spec: each instance size is the largest over the cells'
    /// instances (the master and, in an instance sweep, every cell's).
    pub fn of(spec: &Spec) -> Self {
        let inst = spec.instance();
        let largest = |f: &dyn Fn(&crate::instance::Instance) -> usize| -> u64 {
            std::iter::once(inst)
                .chain(spec.instances().0)
                .map(f)
                .max()
                .unwrap_or(0) as u64
        };
        let dim = largest(&|i| match &i.reward {
            RewardModel::Linear(l) => l.dim,
            _ => 0,
        });
        let candidates = largest(&|i| match &i.reward {
            RewardModel::Finite(f) => f.candidates.len(),
            _ => 0,
        });
        let comparators = if spec.records().contains(&crate::spec::Record::Comparators) {
            crate::policy::comparator_names(inst.k(), spec.options().mrpo_clip_eps).len()
        } else {
            0
        };
        Sizes {
            contexts: largest(&|i| i.contexts),
            responses: largest(&|i| i.responses),
            references: largest(&|i| i.k()),
            dim,
            candidates,
            cells: spec.cells().len() as u64,
            replications: spec.replications() as u64,
            levels: spec.ns().len() as u64,
            series: spec.series().len() as u64,
            comparators: comparators as u64,
            extra_instances: spec.instances().0.len().saturating_sub(1) as u64,
        }
    }

    fn table(&self) -> f64 {
        self.contexts as f64 * self.responses as f64
    }

    fn pairs(&self) -> f64 {
        self.contexts as f64
            * (self.responses as f64 * (self.responses as f64 - 1.0).max(0.0) / 2.0)
    }

    fn units(&self) -> f64 {
        self.cells as f64 * self.replications as f64
    }

    /// Numbers in the instance's tables.
    fn instance_numbers(&self) -> f64 {
        let c = self.table();
        self.references as f64 * c
            + self.contexts as f64
            + self.dim as f64 * c
            + self.candidates as f64 * c
    }

    /// Bytes of the instance in memory, with its copy and its JSON text (module doc, I).
    pub fn instance_bytes(&self) -> f64 {
        self.instance_numbers() * (8.0 + 8.0 + 2.0 * JSON_NUMBER as f64)
    }

    /// The journal's size on disk (module doc, J).
    pub fn journal_bytes(&self) -> f64 {
        let (l, s) = (self.levels as f64, self.series as f64);
        self.units() * (96.0 + l * (24.0 + 11.0 + 6.0) + 25.0 * s * l)
    }

    /// The result's and `instance.json`'s size on disk.
    pub fn result_bytes(&self) -> f64 {
        let (l, s) = (self.levels as f64, self.series as f64);
        JSON_NUMBER as f64 * l * self.units() * (1.0 + s)
            + 2048.0 * self.cells as f64 * l
            + 65536.0
            + JSON_NUMBER as f64 * self.instance_numbers()
    }

    /// The peak memory of a run on `threads` workers (module doc); `reads_journals` for a
    /// resumed run or a merge.
    pub fn peak_memory(&self, threads: usize, reads_journals: bool) -> f64 {
        let (c, p) = (self.table(), self.pairs());
        let (d, m) = (self.dim as f64, self.candidates as f64);
        let (l, s) = (self.levels as f64, self.series as f64);
        let prep = 8.0 * p * d
            + self.cells as f64 * 8.0 * (3.0 * p + 6.0 * c + self.comparators as f64 * c);
        let per_thread = 16.0 * p + 8.0 * p * d + 16.0 * p + 8.0 * m + 64.0 * c;
        let unit = 2.0 * (160.0 + 8.0 * l * (1.0 + s) + 5.0 * l);
        let results = self.units()
            * (unit + 3.0 * 8.0 * l * (1.0 + s) + 2.0 * JSON_NUMBER as f64 * l * (1.0 + s));
        let journals = if reads_journals {
            2.0 * self.journal_bytes()
        } else {
            0.0
        };
        let extra = self.extra_instances as f64 * (8.0 * self.instance_numbers() + 8.0 * p * d);
        BASE as f64
            + self.instance_bytes()
            + extra
            + prep
            + threads.max(1) as f64 * per_thread
            + results
            + journals
    }
}

/// What a run of one spec will need.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    pub memory: f64,
    pub disk: f64,
}

/// The estimate for a checked spec on `threads` workers.
pub fn estimate(spec: &Spec, threads: usize, reads_journals: bool) -> Estimate {
    let s = Sizes::of(spec);
    Estimate {
        memory: s.peak_memory(threads, reads_journals),
        disk: s.journal_bytes() + s.result_bytes(),
    }
}

/// Bytes in a short human form (`12.3 GiB`).
pub fn human(bytes: f64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = bytes;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{v:.0} B")
    } else if v >= 1024.0 {
        format!("{:.3e} {}", v, UNITS[u])
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Refuses `estimate` for spec `name` if it is over `limits`: the message names the
/// estimate, the limit and the flag that raises it.
pub fn check(name: &str, e: Estimate, limits: Limits) -> Result<()> {
    within(
        &format!("{name}: estimated peak memory"),
        e.memory,
        ("--max-memory", limits.memory),
        "reduce replications, cells, levels or the instance",
    )?;
    within(
        &format!("{name}: estimated journal and result size"),
        e.disk,
        ("--max-disk", limits.disk),
        "reduce replications, cells or levels",
    )
}

/// The instance part alone, checked before a random instance is drawn: refuses tables whose
/// memory (module doc, I) is over the installed `--max-memory`.
pub fn check_instance(sizes: &Sizes) -> Result<()> {
    within(
        "instance: estimated memory of the tables",
        sizes.instance_bytes() + BASE as f64,
        ("--max-memory", Limits::current().memory),
        "fewer contexts, responses, candidates or dimensions",
    )
}

/// One line naming the estimate, the limit, how to reduce the estimate and the flag.
fn within(field: &str, bytes: f64, (flag, limit): (&str, u64), reduce: &str) -> Result<()> {
    if bytes > limit as f64 {
        return Err(Error::invalid(
            field,
            human(bytes),
            format!(
                "at most {flag} = {} ({reduce}, or raise {flag})",
                human(limit as f64)
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_units_and_bad_ones_are_refused() {
        assert_eq!(parse_size("f", "8GiB").unwrap(), 8 << 30);
        assert_eq!(parse_size("f", "500MB").unwrap(), 500_000_000);
        assert_eq!(parse_size("f", "1000").unwrap(), 1000);
        assert_eq!(parse_size("f", "1.5 KiB").unwrap(), 1536);
        for bad in ["", "x", "8XB", "-1", "0", "1e30"] {
            assert!(parse_size("f", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_formula_counts_each_term_once() {
        // One context, two responses, one reference, a one-dimensional linear class, one
        // cell, one replication, one level: every count is 1 or 2, so the terms can be
        // summed by hand. C = 2, P = 1, instance numbers = 1*2 + 1 + 1*2 = 5.
        let s = Sizes {
            contexts: 1,
            responses: 2,
            references: 1,
            dim: 1,
            candidates: 0,
            cells: 1,
            replications: 1,
            levels: 1,
            series: 0,
            comparators: 0,
            extra_instances: 0,
        };
        let instance = 5.0 * 112.0;
        let prep = 8.0 + 8.0 * (3.0 + 12.0);
        let thread = 16.0 + 8.0 + 16.0 + 128.0;
        let unit = 2.0 * (160.0 + 8.0 + 5.0) + 24.0 + 96.0;
        assert_eq!(
            s.peak_memory(1, false),
            BASE as f64 + instance + prep + thread + unit
        );
        assert_eq!(s.journal_bytes(), 96.0 + 41.0);
        assert_eq!(
            s.peak_memory(1, true),
            s.peak_memory(1, false) + 2.0 * s.journal_bytes()
        );
        // Two more instances of an instance sweep: their tables (5 numbers) and fitters
        // (P d = 1 feature difference), 8 bytes each.
        let swept = Sizes {
            extra_instances: 2,
            ..s
        };
        assert_eq!(
            swept.peak_memory(1, false),
            s.peak_memory(1, false) + 2.0 * (8.0 * 5.0 + 8.0)
        );
    }

    #[test]
    fn human_sizes_are_short() {
        assert_eq!(human(512.0), "512 B");
        assert_eq!(human((8u64 << 30) as f64), "8.0 GiB");
        assert!(human(1e300).len() < 20, "{}", human(1e300));
    }
}
