//! Saving a flag: write a temporary file next to the target, then rename it
//! into place.
//!
//! `rename` within one directory is atomic on POSIX file systems: a reader
//! (or a later run) sees either no file or the whole file, never a partial
//! one, even when the program is interrupted half-way through a write. The
//! temporary name starts with a dot and carries the process id and a counter,
//! so concurrent writers never share a temporary file. We do not `fsync`:
//! the promise is "no partial flag after an interrupted run", not "durable
//! across a power cut".

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// The default download directory (the 2e's `DEST_DIR = Path('downloaded')`).
pub const DEFAULT_DEST: &str = "downloaded";

/// Makes sure the download directory exists (the 2e's `DEST_DIR.mkdir(exist_ok=True)`).
pub fn ensure_dest(dest: &Path) -> io::Result<()> {
    fs::create_dir_all(dest)
}

/// The file name of a flag: `cc.gif` in lower case, the server's own name.
pub fn flag_file_name(cc: &str) -> String {
    format!("{}.gif", cc.to_ascii_lowercase())
}

/// Writes `bytes` to `dest/file_name` atomically; returns the final path.
pub fn save_flag(dest: &Path, file_name: &str, bytes: &[u8]) -> io::Result<PathBuf> {
    // Relaxed: the counter only has to give distinct numbers; no other memory
    // is published through it.
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let target = dest.join(file_name);
    let tmp = dest.join(format!(".{file_name}.{}.{n}.tmp", std::process::id()));
    let written = (|| {
        let mut file = fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        drop(file);
        fs::rename(&tmp, &target)
    })();
    if let Err(e) = written {
        // Best effort: do not leave the temporary behind.
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(target)
}

/// Whether `name` is one of our temporary files (`.<name>.<pid>.<n>.tmp`).
fn is_temporary(name: &str) -> bool {
    let Some(inner) = name.strip_prefix('.').and_then(|n| n.strip_suffix(".tmp")) else {
        return false;
    };
    let mut parts = inner.rsplitn(3, '.');
    let (n, pid) = (parts.next(), parts.next());
    let numeric =
        |s: Option<&str>| s.is_some_and(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()));
    numeric(n) && numeric(pid) && parts.next().is_some()
}

/// Removes temporary files left in `dest` by a writer that was killed
/// between its write and its rename (a process-pool worker hit by Ctrl-C);
/// returns how many. Completed flags are never touched.
pub fn sweep_temporaries(dest: &Path) -> usize {
    let Ok(entries) = fs::read_dir(dest) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name.to_str().is_some_and(is_temporary) && fs::remove_file(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("flags-save-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        ensure_dest(&dir).unwrap();
        dir
    }

    #[test]
    fn writes_whole_file_and_leaves_no_temporary() {
        let dir = scratch("whole");
        let path = save_flag(&dir, &flag_file_name("BR"), b"GIF89a...").unwrap();
        assert_eq!(path, dir.join("br.gif"));
        assert_eq!(fs::read(&path).unwrap(), b"GIF89a...");
        // Overwriting replaces the content in one step.
        save_flag(&dir, "br.gif", b"other").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"other");
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["br.gif"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn sweeping_removes_only_our_temporaries() {
        let dir = scratch("sweep");
        save_flag(&dir, "br.gif", b"whole").unwrap();
        fs::write(dir.join(".cn.gif.1234.7.tmp"), b"half").unwrap();
        fs::write(dir.join(".notes.tmp"), b"not ours").unwrap();
        assert_eq!(sweep_temporaries(&dir), 1);
        let mut names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        assert_eq!(names, [".notes.tmp", "br.gif"]);
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_directory_is_an_error_without_leftovers() {
        let dir = scratch("missing").join("not-there");
        assert!(save_flag(&dir, "br.gif", b"x").is_err());
        assert!(!dir.exists());
    }
}
