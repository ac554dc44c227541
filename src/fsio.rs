//! File input and output with the guarantees the README states: files are replaced
//! atomically (a temporary file with an unpredictable name, created exclusively in the same
//! folder, synced, then renamed over the target; never written through a symlink), and
//! inputs are read only from regular files of bounded size.

use crate::error::{Error, Result};
use std::io::{Read, Write};
use std::path::Path;

/// Largest input file mrkl reads (specs, instances, claims, results, journals are far
/// smaller; a larger file is refused before it is read).
pub const MAX_INPUT_BYTES: u64 = 1 << 30;

/// Writes `bytes` to `path` atomically (see the module doc): readers see the old or the new
/// file, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::write(dir, e))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".mrkl-")
        .suffix(".tmp")
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
