//! Run journals: a run appends every finished work unit to `journal*.jsonl` in its results
//! folder, one line per unit, each line followed by its own checksum. A killed run resumes
//! from its journal (`mrkl run --resume`), shards of a run (`--shard k/N`) each keep their own
//! journal, and `mrkl merge` unions journals; in every case the final result is assembled
//! from the units in canonical order, so it is byte-identical to an uninterrupted run.
//!
//! Line format: `<json> <checksum>` with checksum = FNV-1a (16 hex digits) of the JSON text.
//! The first line is the header (format, mrkl version, spec hash, the spec's TOML text);
//! every following line is one unit. Floats are written with shortest round-trip formatting,
//! so values read back are bit-identical. A line that is torn (the run was killed while
//! writing it) or corrupt fails its checksum: it is reported and its unit recomputed.

use crate::engine::UnitResult;
use crate::error::{Error, Result};
use crate::streams::fnv1a;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Identifies the journal format.
pub const FORMAT: &str = "mrkl-journal/1";

/// The first line of a journal.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub format: String,
    pub mrkl_version: String,
    pub spec_name: String,
    pub spec_hash: String,
    /// `k/N` for a shard, `None` for a whole run.
    pub shard: Option<String>,
    /// Where the spec came from and its TOML text (after overrides), so `merge` can rebuild it.
    pub spec_origin: String,
    pub spec_toml: String,
    /// The folder that the spec's relative paths (a `source = "file"` instance) are resolved
    /// against, made absolute when the run started, so that `merge` rebuilds the spec
    /// whatever its working directory. Absent in journals of older versions (then the
    /// folder of `spec_origin`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_base: Option<String>,
}

/// One finished unit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Index in the canonical unit order ([`crate::engine::units`]).
    pub index: usize,
    /// `<cell label>/<replication>`.
    pub unit: String,
    pub values: Vec<f64>,
    pub iterations: Vec<u32>,
    pub on_boundary: Vec<bool>,
    /// The extra series ([`crate::spec::Spec::series`]), [series][level].
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        with = "crate::numerics::nullable_table"
    )]
    pub extras: Vec<Vec<f64>>,
}

impl Entry {
    pub fn new(index: usize, unit: String, u: &UnitResult) -> Self {
        Entry {
            index,
            unit,
            values: u.values.clone(),
            iterations: u.iterations.clone(),
            on_boundary: u.on_boundary.clone(),
            extras: u.extras.clone(),
        }
    }

    pub fn result(&self) -> UnitResult {
        UnitResult {
            values: self.values.clone(),
            iterations: self.iterations.clone(),
            on_boundary: self.on_boundary.clone(),
            extras: self.extras.clone(),
        }
    }
}

/// `<json> <fnv1a hex>\n`.
fn line<T: Serialize>(value: &T) -> String {
    let json = serde_json::to_string(value).expect("journal lines serialise");
    format!("{json} {:016x}\n", fnv1a(json.as_bytes()))
}

/// The JSON of a line whose checksum holds, else `None`.
fn verified(text: &str) -> Option<&str> {
    let (json, sum) = text.rsplit_once(' ')?;
    (sum.len() == 16 && u64::from_str_radix(sum, 16).ok()? == fnv1a(json.as_bytes()))
        .then_some(json)
}

/// What reading a journal found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Contents {
    pub header: Option<Header>,
    pub entries: BTreeMap<usize, Entry>,
    /// 1-based line numbers that failed their checksum or did not parse (torn or corrupt).
    pub rejected_lines: Vec<usize>,
    /// Whether the file ended without a newline (a torn last write).
    pub torn_tail: bool,
}

impl Contents {
    /// A one-line note on the lines that were not trusted, if any.
    pub fn rejection_note(&self, path: &Path) -> Option<String> {
        (!self.rejected_lines.is_empty()).then(|| {
            let lines: Vec<String> = self.rejected_lines.iter().map(|l| l.to_string()).collect();
            format!("note: {}: {} torn or corrupt line(s) (line {}) not trusted; their units are recomputed or must come from another journal", path.display(), lines.len(), lines.join(", "))
        })
    }
}

/// Reads a journal, verifying every line; never trusts a line whose checksum fails.
pub fn read(path: &Path) -> Result<Contents> {
    let bytes = std::fs::read(path).map_err(|e| Error::read(path, e))?;
    let text = String::from_utf8_lossy(&bytes);
    let mut c = Contents {
        torn_tail: !bytes.is_empty() && !bytes.ends_with(b"\n"),
        ..Default::default()
    };
    for (i, l) in text.split('\n').enumerate() {
        if l.is_empty() {
            continue;
        }
        let json = verified(l);
        if i == 0 {
            match json.and_then(|j| serde_json::from_str::<Header>(j).ok()) {
                Some(h) => c.header = Some(h),
                None => {
                    return Err(Error::parse(
                        path,
                        "the header line (line 1) is torn or corrupt: this journal cannot be trusted; delete it and run again",
                    ));
                }
            }
            continue;
        }
        match json.and_then(|j| serde_json::from_str::<Entry>(j).ok()) {
            Some(e) => {
                c.entries.insert(e.index, e);
            }
            None => c.rejected_lines.push(i + 1),
        }
    }
    if c.header.is_none() {
        return Err(Error::parse(path, "empty journal (no header line)"));
    }
    Ok(c)
}

/// Checks that a journal was written by this spec and this mrkl version; the message says
/// what differs.
pub fn check_provenance(path: &Path, found: &Header, expected: &Header) -> Result<()> {
    let mut diffs = vec![];
    if found.format != expected.format {
        diffs.push(format!(
            "format {} (this mrkl writes {})",
            found.format, expected.format
        ));
    }
    if found.mrkl_version != expected.mrkl_version {
        diffs.push(format!(
            "mrkl version {} (this is {})",
            found.mrkl_version, expected.mrkl_version
        ));
    }
    if found.spec_hash != expected.spec_hash {
        diffs.push(format!(
            "spec hash {} (this spec has {}; the spec, its seed or its instance changed)",
            found.spec_hash, expected.spec_hash
        ));
    }
    if found.spec_name != expected.spec_name {
        diffs.push(format!(
            "spec name {} (this spec is {})",
            found.spec_name, expected.spec_name
        ));
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        Err(Error::Busy {
            path: path.display().to_string(),
            message: format!("written by a different run: {}", diffs.join("; ")),
        })
    }
}

/// An open journal that worker threads append to.
pub struct Writer {
    path: PathBuf,
    file: Mutex<std::fs::File>,
}

impl Writer {
    /// Starts a journal afresh with `header` and the already known `entries` (e.g. the valid
    /// lines of a journal being resumed), written to a temporary file and renamed, so a torn
    /// tail never stays in front of new lines.
    pub fn start(path: &Path, header: &Header, entries: &BTreeMap<usize, Entry>) -> Result<Self> {
        let mut text = line(header);
        for e in entries.values() {
            text.push_str(&line(e));
        }
        crate::fsio::write_atomic(path, text.as_bytes())?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(|e| Error::write(path, e))?;
        Ok(Writer {
            path: path.to_path_buf(),
            file: Mutex::new(file),
        })
    }

    /// Appends one unit as a single write of a whole line.
    pub fn append(&self, e: &Entry) -> Result<()> {
        let l = line(e);
        let mut f = self.file.lock().unwrap_or_else(|p| p.into_inner());
        f.write_all(l.as_bytes())
            .map_err(|err| Error::write(&self.path, err))
    }
}

/// The journal file of a run: `journal.jsonl`, or `journal.shard-k-of-N.jsonl`.
pub fn file_name(shard: Option<(u64, u64)>) -> String {
    match shard {
        None => "journal.jsonl".into(),
        Some((k, n)) => format!("journal.shard-{k}-of-{n}.jsonl"),
    }
}

/// Whether unit `unit_id` belongs to shard k of N (1-based k): FNV-1a(unit id) mod N = k - 1.
pub fn in_shard(unit_id: &str, shard: Option<(u64, u64)>) -> bool {
    match shard {
        None => true,
        Some((k, n)) => fnv1a(unit_id.as_bytes()) % n == k - 1,
    }
}

/// Parses `k/N` (1 <= k <= N).
pub fn parse_shard(s: &str) -> Result<(u64, u64)> {
    let parsed = s
        .split_once('/')
        .and_then(|(k, n)| Some((k.trim().parse::<u64>().ok()?, n.trim().parse::<u64>().ok()?)));
    match parsed {
        Some((k, n)) if n >= 1 && (1..=n).contains(&k) => Ok((k, n)),
        _ => Err(Error::invalid(
            "--shard",
            s,
            "k/N with 1 <= k <= N, e.g. 3/8",
        )),
    }
}

/// A lock on a results folder: `.lock` (or `.lock.shard-k-of-N`), created exclusively,
/// holding the owner's pid and host (`<pid> <host>`). A lock of this host whose process is
/// gone or a zombie is stale and is taken over. A lock of another host is never judged by
/// this host's process table: it is refused with a message naming the host (remove it by
/// hand once that run is known to be over).
///
/// Why not an advisory lock (`flock`/`fcntl`, as the `fs4` or `fd-lock` crates offer), which
/// the OS releases when its holder dies? On the shared folders that shards use (NFS, SMB,
/// FUSE) such locks are either emulated per client (NFS before v4 with `flock`, some FUSE
/// filesystems: two hosts both "hold" the lock) or depend on a lock server that may drop
/// them while the holder still runs; their failure is silent. A lock file naming its owner
/// fails loudly instead: at worst a dead owner on another host must be cleared by hand.
pub struct Lock {
    path: PathBuf,
}

/// Who holds a lock, as written in the lock file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Owner {
    pub pid: u32,
    /// `None` for a lock written before hosts were recorded (taken as this host).
    pub host: Option<String>,
}

impl Owner {
    fn parse(text: &str) -> Option<Owner> {
        let mut it = text.split_whitespace();
        let pid = it.next()?.parse::<u32>().ok()?;
        Some(Owner {
            pid,
            host: it.next().map(str::to_string),
        })
    }
}

impl Lock {
    /// Takes the lock or explains who holds it. Returns the lock and, if a stale lock was
    /// taken over, the pid of the dead owner (0 if the lock file was unreadable).
    pub fn acquire(dir: &Path, shard: Option<(u64, u64)>) -> Result<(Lock, Option<u32>)> {
        std::fs::create_dir_all(dir).map_err(|e| Error::write(dir, e))?;
        let name = match shard {
            None => ".lock".to_string(),
            Some((k, n)) => format!(".lock.shard-{k}-of-{n}"),
        };
        let path = dir.join(name);
        let host = crate::fsio::this_host();
        let mut stale = None;
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut f) => {
                    f.write_all(format!("{} {host}\n", std::process::id()).as_bytes())
                        .map_err(|e| Error::write(&path, e))?;
                    return Ok((Lock { path }, stale));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let owner = std::fs::read_to_string(&path)
                        .ok()
                        .and_then(|s| Owner::parse(&s));
                    match owner {
                        Some(Owner { pid, host: Some(h) }) if h != host => {
                            return Err(Error::Busy {
                                path: crate::error::shown(dir),
                                message: format!(
                                    "locked by pid {pid} on host {}, which this host cannot check; if that run is over, remove {}",
                                    crate::error::escape(&h),
                                    crate::error::shown(&path)
                                ),
                            });
                        }
                        Some(Owner { pid, .. }) if crate::fsio::process_alive(pid) => {
                            return Err(Error::Busy {
                                path: crate::error::shown(dir),
                                message: format!(
                                    "another mrkl run (pid {pid}) is writing here; wait for it, or remove {} if it is not running",
                                    crate::error::shown(&path)
                                ),
                            });
                        }
                        _ => {
                            stale = Some(owner.map_or(0, |o| o.pid));
                            let _ = std::fs::remove_file(&path);
                        }
                    }
                }
                Err(e) => return Err(Error::write(&path, e)),
            }
        }
        Err(Error::Busy {
            path: crate::error::shown(dir),
            message: "could not take the lock".into(),
        })
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            format: FORMAT.into(),
            mrkl_version: "0".into(),
            spec_name: "s".into(),
            spec_hash: "h".into(),
            shard: None,
            spec_origin: "s.toml".into(),
            spec_toml: "seed = 1".into(),
            spec_base: None,
        }
    }

    #[test]
    fn lines_round_trip_bit_for_bit_and_torn_lines_are_rejected() {
        let dir = std::env::temp_dir().join(format!("mrkl-journal-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("journal.jsonl");
        let w = Writer::start(&path, &header(), &BTreeMap::new()).unwrap();
        let awkward = vec![
            0.1 + 0.2,
            1e-300,
            5e-324,
            123456789.123456789,
            f64::MIN_POSITIVE,
        ];
        for i in 0..3 {
            w.append(&Entry {
                index: i,
                unit: format!("main/{i}"),
                values: awkward.clone(),
                iterations: vec![i as u32],
                on_boundary: vec![i == 1],
                // "not applicable" (NaN) must survive JSON, which has no NaN.
                extras: vec![vec![0.1 + i as f64, f64::NAN]],
            })
            .unwrap();
        }
        drop(w);
        let c = read(&path).unwrap();
        assert_eq!(c.entries.len(), 3);
        for (a, b) in c.entries[&2].values.iter().zip(&awkward) {
            assert_eq!(a.to_bits(), b.to_bits());
        }
        assert_eq!(c.entries[&2].extras[0][0], 2.1);
        assert!(c.entries[&2].extras[0][1].is_nan());
        // Tear the last line and flip a byte in the middle one.
        let mut bytes = std::fs::read(&path).unwrap();
        bytes.truncate(bytes.len() - 7);
        let lines: Vec<usize> = bytes
            .iter()
            .enumerate()
            .filter(|(_, b)| **b == b'\n')
            .map(|(i, _)| i)
            .collect();
        bytes[lines[1] + 20] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let c = read(&path).unwrap();
        assert!(c.torn_tail);
        assert_eq!(c.entries.keys().copied().collect::<Vec<_>>(), vec![0]);
        assert_eq!(c.rejected_lines, vec![3, 4]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn shards_partition_the_units() {
        for n in 1..6u64 {
            for u in 0..50 {
                let id = format!("main/{u}");
                assert_eq!((1..=n).filter(|&k| in_shard(&id, Some((k, n)))).count(), 1);
            }
        }
        assert!(
            parse_shard("0/3").is_err() && parse_shard("4/3").is_err() && parse_shard("x").is_err()
        );
        assert_eq!(parse_shard("2/3").unwrap(), (2, 3));
    }
}
