//! File input and output with the guarantees the README states: files are replaced
//! atomically (a temporary file with an unpredictable name, created exclusively in the same
//! folder, synced, then renamed over the target; never written through a symlink), and
//! inputs are read only from regular files of bounded size.

use crate::error::{Error, Result};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Largest input file mrkl reads (specs, instances, claims, results, journals are far
/// smaller; a larger file is refused before it is read).
pub const MAX_INPUT_BYTES: u64 = 1 << 30;

/// Temporary files are named `.mrkl-<host>-<pid>-<random>.tmp`: the random part makes the
/// name unpredictable, the host and pid let a later run on the same host remove those of a
/// process that died ([`remove_orphans`]).
const TEMP_PREFIX: &str = ".mrkl-";
const TEMP_SUFFIX: &str = ".tmp";

fn temp_prefix() -> String {
    format!("{TEMP_PREFIX}{}-{}-", this_host(), std::process::id())
}

/// This machine's host name (`/proc/sys/kernel/hostname`, else `$HOSTNAME`, else
/// `unknown`), restricted to letters, digits, `.`, `-` and `_`.
pub fn this_host() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let h: String = raw
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        .collect();
    if h.is_empty() { "unknown".into() } else { h }
}

/// Whether process `pid` of this host is alive: it exists and is not a zombie (a killed
/// process that its parent has not reaped yet is dead). Where `/proc` is missing the
/// process is assumed alive (never take over what cannot be judged).
pub fn process_alive(pid: u32) -> bool {
    if !Path::new("/proc/self").exists() {
        return true;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the first field after the parenthesised command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_none_or(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// Removes the temporary files in `dir` left by dead processes of this host (a run killed
/// between creating a temporary file and renaming it); returns how many it removed. Files of
/// live processes and of other hosts are left alone.
pub fn remove_orphans(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let host = format!("{TEMP_PREFIX}{}-", this_host());
    let mut removed = 0;
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name
            .strip_prefix(&host)
            .filter(|_| name.ends_with(TEMP_SUFFIX))
        else {
            continue;
        };
        let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid {
            if !process_alive(pid) && std::fs::remove_file(e.path()).is_ok() {
                removed += 1;
            }
        }
    }
    removed
}

/// The output folder `--out`, created if needed; a symlink to a missing target or a
/// non-folder is refused with a message saying so.
pub fn output_root(out: &Path) -> Result<()> {
    if let Ok(m) = std::fs::symlink_metadata(out) {
        if m.file_type().is_symlink() && std::fs::metadata(out).is_err() {
            let target = std::fs::read_link(out)
                .map(|t| crate::error::shown(&t))
                .unwrap_or_default();
            return Err(Error::invalid(
                "--out",
                crate::error::shown(out),
                format!(
                    "a folder; this is a symlink to {target}, which does not exist (create it, or choose another --out)"
                ),
            ));
        }
    }
    if out.exists() && !out.is_dir() {
        return Err(Error::invalid(
            "--out",
            crate::error::shown(out),
            "a folder; this is a file",
        ));
    }
    std::fs::create_dir_all(out).map_err(|e| Error::write(out, e))
}

/// The folder `out/name` of one spec, created, after checking that it lies inside `out`:
/// `name` is one plain path component, and the folder is not a symlink leading elsewhere.
pub fn spec_dir(out: &Path, name: &str) -> Result<PathBuf> {
    let mut parts = Path::new(name).components();
    let plain = matches!(
        (parts.next(), parts.next()),
        (Some(std::path::Component::Normal(_)), None)
    );
    if !plain {
        return Err(Error::invalid(
            "name",
            crate::error::quoted(name),
            "one plain file name (the results folder inside --out)",
        ));
    }
    output_root(out)?;
    let dir = out.join(name);
    std::fs::create_dir_all(&dir).map_err(|e| Error::write(&dir, e))?;
    let inside = match (dir.canonicalize(), out.canonicalize()) {
        (Ok(d), Ok(o)) => d.parent() == Some(o.as_path()),
        _ => false,
    };
    if !inside {
        return Err(Error::invalid(
            "results folder",
            crate::error::shown(&dir),
            "a folder inside --out (this one is a symlink that leads outside it)",
        ));
    }
    Ok(dir)
}

/// The manifest of a spec's output files, written last: each file with its size and FNV-1a
/// checksum. A reader that finds a file differing from the manifest (a run killed between
/// two renames left an old and a new file side by side) refuses the set.
pub const MANIFEST: &str = "manifest.json";

/// Writes `files` (name, bytes) into `dir` atomically one by one, then the manifest.
pub fn write_set(dir: &Path, files: &[(&str, &[u8])]) -> Result<()> {
    let mut listed = serde_json::Map::new();
    for (name, bytes) in files {
        write_atomic(&dir.join(name), bytes)?;
        listed.insert(
            name.to_string(),
            serde_json::json!({
                "bytes": bytes.len(),
                "fnv1a": format!("{:016x}", crate::streams::fnv1a(bytes)),
            }),
        );
    }
    let manifest = serde_json::json!({ "format": "mrkl-manifest/1", "files": listed });
    write_atomic(
        &dir.join(MANIFEST),
        (serde_json::to_string_pretty(&manifest).expect("serialises") + "\n").as_bytes(),
    )
}

/// Checks that `name` in `dir` is the file its manifest lists; refuses a set whose files do
/// not all come from one write ([`write_set`]). Without a manifest (a folder of an older
/// version, a copy of some files, or a first write killed before its end, whose files are all
/// new) there is nothing to compare, and the file is accepted.
pub fn verify_member(dir: &Path, name: &str, bytes: &[u8]) -> Result<()> {
    let path = dir.join(MANIFEST);
    if !path.exists() {
        return Ok(());
    }
    let text = read_text(&path)?;
    let manifest: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| Error::parse(&path, e))?;
    let entry = &manifest["files"][name];
    let sum = format!("{:016x}", crate::streams::fnv1a(bytes));
    if entry["fnv1a"].as_str() != Some(sum.as_str())
        || entry["bytes"].as_u64() != Some(bytes.len() as u64)
    {
        return Err(Error::parse(
            &dir.join(name),
            format!(
                "differs from {MANIFEST}: the files of this folder come from different runs (a run was killed while replacing them); run the spec again"
            ),
        ));
    }
    Ok(())
}

/// Writes `bytes` to `path` atomically (see the module doc): readers see the old or the new
/// file, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::write(dir, e))?;
    let prefix = temp_prefix();
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(TEMP_SUFFIX);
    // Readable by everyone (`rw-r--r--`, like a plain create under the usual umask), not
    // private like a bare temporary file.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o644));
    }
    let mut tmp = builder
        .tempfile_in(dir)
        .map_err(|e| Error::write(path, e))?;
    tmp.write_all(bytes)
        .and_then(|()| tmp.as_file().sync_all())
        .map_err(|e| Error::write(path, e))?;
    tmp.persist(path).map_err(|e| Error::write(path, e.error))?;
    Ok(())
}

/// Reads a regular file of at most [`MAX_INPUT_BYTES`] as UTF-8 text (a leading byte-order
/// mark is dropped). Devices, FIFOs and folders are refused with a message naming them.
pub fn read_text(path: &Path) -> Result<String> {
    let meta = std::fs::metadata(path).map_err(|e| Error::read(path, e))?;
    if !meta.is_file() {
        let what = if meta.is_dir() {
            "a folder"
        } else {
            "a special file (device, FIFO or socket)"
        };
        return Err(Error::invalid(
            "input file",
            path.display(),
            format!("a regular file; this is {what}"),
        ));
    }
    if meta.len() > MAX_INPUT_BYTES {
        return Err(Error::invalid(
            "input file",
            format!("{} ({} bytes)", path.display(), meta.len()),
            format!("a file of at most {MAX_INPUT_BYTES} bytes"),
        ));
    }
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_INPUT_BYTES + 1).read_to_string(&mut text))
        .map_err(|e| Error::read(path, e))?;
    Ok(match text.strip_prefix('\u{feff}') {
        Some(rest) => rest.to_string(),
        None => text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_replace_the_file_and_leave_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.txt");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "two");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn a_symlink_at_the_target_is_replaced_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let p = dir.path().join("out");
        std::os::unix::fs::symlink(&victim, &p).unwrap();
        write_atomic(&p, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "new");
    }

    #[test]
    fn folders_and_devices_are_refused_and_a_bom_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let e = read_text(dir.path()).unwrap_err();
        assert!(e.to_string().contains("a folder"), "{e}");
        assert_eq!(e.exit_code(), 2);
        #[cfg(unix)]
        {
            let e = read_text(Path::new("/dev/zero")).unwrap_err();
            assert!(e.to_string().contains("special file"), "{e}");
        }
        let p = dir.path().join("b.json");
        std::fs::write(&p, "\u{feff}{}").unwrap();
        assert_eq!(read_text(&p).unwrap(), "{}");
    }
}
