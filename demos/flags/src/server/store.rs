//! Where the flag images come from: generated on demand, or read once from a
//! directory in the book's layout (`<dir>/flags/<cc>/<cc>.gif`).
//!
//! Both stores are indexed by two validated letters (see [`route`](super::route)),
//! never by a path from the request, so nothing outside the flags can be
//! served. A directory is read completely when the server starts: a missing
//! or empty directory is reported at once, and requests never touch the disk.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use crate::codes;

/// 26 × 26 slots, one per two-letter code.
const SLOTS: usize = 26 * 26;

fn slot(cc: [u8; 2]) -> usize {
    (cc[0] - b'a') as usize * 26 + (cc[1] - b'a') as usize
}

/// The images a server serves.
pub enum FlagStore {
    /// Images drawn by [`gif::flag_gif`](super::gif::flag_gif) the first time
    /// they are asked for, then kept for the life of the process (drawing is
    /// deterministic, so every server in the process can share them); only
    /// the 194 real codes have one.
    Generated,
    /// Images read from a directory at start-up.
    Dir(Box<[Option<Arc<[u8]>>]>),
}

impl fmt::Debug for FlagStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlagStore::Generated => f.write_str("FlagStore::Generated"),
            FlagStore::Dir(slots) => {
                write!(
                    f,
                    "FlagStore::Dir({} flags)",
                    slots.iter().flatten().count()
                )
            }
        }
    }
}

/// A directory that cannot be served.
#[derive(Debug)]
pub struct DirError {
    /// The directory given.
    pub dir: PathBuf,
    /// What is wrong with it.
    pub reason: String,
}

impl fmt::Display for DirError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot serve flags from {}: {} (expected the book's layout, <dir>/flags/<cc>/<cc>.gif)",
            self.dir.display(),
            self.reason
        )
    }
}

impl std::error::Error for DirError {}

impl FlagStore {
    /// A store of generated flags.
    pub fn generated() -> Self {
        FlagStore::Generated
    }

    /// Reads every `<dir>/flags/<cc>/<cc>.gif` there is (any of the 676 codes).
    pub fn from_dir(dir: &Path) -> Result<Self, DirError> {
        let flags_dir = dir.join("flags");
        if !flags_dir.is_dir() {
            return Err(DirError {
                dir: dir.to_path_buf(),
                reason: format!("{} is not a directory", flags_dir.display()),
            });
        }
        let mut slots: Vec<Option<Arc<[u8]>>> = vec![None; SLOTS];
        for cc in codes::every_code() {
            let cc = cc.to_ascii_lowercase();
            let path = flags_dir.join(&cc).join(format!("{cc}.gif"));
            match std::fs::read(&path) {
                Ok(bytes) => {
                    let b = cc.as_bytes();
                    slots[slot([b[0], b[1]])] = Some(bytes.into());
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(DirError {
                        dir: dir.to_path_buf(),
                        reason: format!("reading {}: {e}", path.display()),
                    })
                }
            }
        }
        if slots.iter().all(Option::is_none) {
            return Err(DirError {
                dir: dir.to_path_buf(),
                reason: "no flag images found".into(),
            });
        }
        Ok(FlagStore::Dir(slots.into()))
    }

    /// The image of `cc` (two lower-case letters), if there is one.
    pub fn get(&self, cc: [u8; 2]) -> Option<Arc<[u8]>> {
        if !cc.iter().all(u8::is_ascii_lowercase) {
            return None;
        }
        match self {
            FlagStore::Generated => {
                static DRAWN: [OnceLock<Arc<[u8]>>; SLOTS] = [const { OnceLock::new() }; SLOTS];
                let code = std::str::from_utf8(&cc).ok()?;
                if !codes::has_flag(code) {
                    return None;
                }
                let image = DRAWN[slot(cc)].get_or_init(|| super::gif::flag_gif(code).into());
                Some(image.clone())
            }
            FlagStore::Dir(slots) => slots[slot(cc)].clone(),
        }
    }

    /// How many flags this store can serve.
    pub fn len(&self) -> usize {
        match self {
            FlagStore::Generated => codes::all_codes().len(),
            FlagStore::Dir(slots) => slots.iter().flatten().count(),
        }
    }

    /// Whether the store serves no flag at all (never true for a built store).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_store_has_the_194() {
        let store = FlagStore::generated();
        assert!(store.get(*b"br").is_some());
        assert!(store.get(*b"xx").is_none());
        assert!(store.get(*b"BR").is_none());
        assert_eq!(store.len(), 194);
        // Cached: the same allocation the second time.
        assert!(Arc::ptr_eq(
            &store.get(*b"br").unwrap(),
            &store.get(*b"br").unwrap()
        ));
    }

    #[test]
    fn dir_store_reads_the_book_layout() {
        let root = std::env::temp_dir().join(format!("flags-store-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        assert!(FlagStore::from_dir(&root).is_err());
        std::fs::create_dir_all(root.join("flags/zz")).unwrap();
        assert!(FlagStore::from_dir(&root).is_err(), "no images yet");
        std::fs::write(root.join("flags/zz/zz.gif"), b"GIF89a zz").unwrap();
        let store = FlagStore::from_dir(&root).unwrap();
        assert_eq!(store.get(*b"zz").as_deref(), Some(&b"GIF89a zz"[..]));
        assert!(store.get(*b"br").is_none());
        assert_eq!(store.len(), 1);
        std::fs::remove_dir_all(&root).unwrap();
    }
}
