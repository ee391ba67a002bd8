//! The book's real flags: where `../shared/data/flags.zip` exists (beside
//! the workspace), unzip it, serve it with `--dir`, download everything and
//! compare byte for byte. The project never needs the file: without it this
//! test says so and checks the `--dir` code path on a small fake instead.

mod common;

use std::fs;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use common::{counts, run, Scratch};
use flags::codes;
use flags::server::{FlagServer, ServerConfig};

fn unzip(zip_path: &Path, into: &Path) {
    let file = fs::File::open(zip_path).unwrap();
    let mut archive = zip::ZipArchive::new(file).unwrap();
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).unwrap();
        // enclosed_name refuses entries that would land outside `into`.
        let Some(relative) = entry.enclosed_name() else {
            panic!("unsafe entry {}", entry.name())
        };
        let target = into.join(relative);
        if entry.is_dir() {
            fs::create_dir_all(&target).unwrap();
        } else {
            fs::create_dir_all(target.parent().unwrap()).unwrap();
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            fs::write(&target, bytes).unwrap();
        }
    }
}

/// Serves `root` with `--dir` semantics, downloads `-a` with the thread pool
/// program and checks every file against the source; returns how many.
fn download_all_and_compare(root: &Path) -> usize {
    let server = FlagServer::start(ServerConfig {
        dir: Some(root.to_path_buf()),
        ..ServerConfig::default()
    })
    .unwrap();
    let dest = Scratch::new("real-dest");
    let url = server.base_url();
    let out = run(
        env!("CARGO_BIN_EXE_flags2-threadpool"),
        &["--url", &url, "--dest", dest.path().to_str().unwrap(), "-a"],
        Duration::from_secs(60),
    );
    assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
    let (ok, not_found, errors) = counts(&out.stdout);
    assert_eq!(ok + not_found + errors, 194);
    assert_eq!(errors, 0, "{}", out.stdout);
    let mut compared = 0;
    for cc in codes::all_codes() {
        let cc = cc.to_lowercase();
        let source = root.join("flags").join(&cc).join(format!("{cc}.gif"));
        let downloaded = dest.path().join(format!("{cc}.gif"));
        match fs::read(&source) {
            Ok(expected) => {
                assert_eq!(fs::read(&downloaded).unwrap(), expected, "{cc}");
                compared += 1;
            }
            Err(_) => assert!(
                !downloaded.exists(),
                "{cc}: downloaded a flag that is not there"
            ),
        }
    }
    assert_eq!(compared, ok);
    compared
}

#[test]
fn the_real_flags_download_byte_for_byte() {
    let Some(zip_path) = common::real_flags_zip() else {
        eprintln!(
            "note: ../shared/data/flags.zip not found; checking --dir on a small fake set instead"
        );
        let fake = Scratch::new("fake-flags");
        for cc in ["ad", "br", "zw"] {
            fs::create_dir_all(fake.path().join("flags").join(cc)).unwrap();
            fs::write(
                fake.path().join(format!("flags/{cc}/{cc}.gif")),
                format!("GIF89a fake {cc}"),
            )
            .unwrap();
        }
        assert_eq!(download_all_and_compare(fake.path()), 3);
        return;
    };
    let root = Scratch::new("real-flags");
    unzip(&zip_path, root.path());
    let flags_dir = root.path().join("flags");
    assert_eq!(
        fs::read_dir(&flags_dir).unwrap().count(),
        194,
        "the book's 194 folders"
    );
    assert_eq!(download_all_and_compare(root.path()), 194);
    // The data README's figures: 1,193 B (mc) to 36,332 B (lk).
    assert_eq!(
        fs::metadata(flags_dir.join("mc/mc.gif")).unwrap().len(),
        1_193
    );
    assert_eq!(
        fs::metadata(flags_dir.join("lk/lk.gif")).unwrap().len(),
        36_332
    );
}
