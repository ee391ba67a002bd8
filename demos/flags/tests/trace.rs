//! `--trace FILE` on every downloader: the file is valid trace-event JSON
//! (checked by `future`'s `trace_format`), with one run per download on
//! the lanes of the program's executor: worker threads, worker processes,
//! or the main thread of the sequential programs.

mod common;
#[path = "../../../crates/future/tests/trace_format/mod.rs"]
mod trace_format;

use std::time::Duration;

use common::{run, Scratch};
use flags::server::{FlagServer, ServerConfig};

const LIMIT: Duration = Duration::from_secs(60);

/// Each program, the codes it is given, the downloads it makes, and the
/// prefix of its worker lanes.
const PROGRAMS: &[(&str, &[&str], usize, &str)] = &[
    (
        env!("CARGO_BIN_EXE_flags2-sequential"),
        &["b"],
        26,
        "thread main",
    ),
    (
        env!("CARGO_BIN_EXE_flags2-threadpool"),
        &["b"],
        26,
        "thread flags2-",
    ),
    (
        env!("CARGO_BIN_EXE_flags2-procpool"),
        &["b"],
        26,
        "process ",
    ),
    (env!("CARGO_BIN_EXE_flags"), &[], 20, "thread main"),
    (
        env!("CARGO_BIN_EXE_flags-threadpool"),
        &[],
        20,
        "thread flags-",
    ),
    (
        env!("CARGO_BIN_EXE_flags-threadpool-ac"),
        &[],
        5,
        "thread flags-ac-",
    ),
    // A process pool's `map` sends chunks: at least one run, each a chunk.
    (env!("CARGO_BIN_EXE_flags-procpool"), &[], 0, "process "),
];

#[test]
fn every_downloader_writes_a_valid_trace_of_its_downloads() {
    let server = FlagServer::start(ServerConfig::default()).unwrap();
    let url = server.base_url();
    for &(exe, codes, downloads, lane) in PROGRAMS {
        let dest = Scratch::new("trace");
        let file = dest.path().join("trace.json");
        let mut args = vec!["--url", &url, "--dest", dest.path().to_str().unwrap()];
        args.extend(["--trace", file.to_str().unwrap()]);
        args.extend_from_slice(codes);
        let out = run(exe, &args, LIMIT);
        assert_eq!(out.code, Some(0), "{exe}\n{}\n{}", out.stdout, out.stderr);
        let text = std::fs::read_to_string(&file).unwrap();
        let summary = trace_format::check(&text).unwrap_or_else(|e| panic!("{exe}: {e}"));
        if downloads > 0 {
            assert_eq!(summary.runs, downloads, "{exe}");
        } else {
            assert!(summary.runs >= 1, "{exe}");
        }
        let workers: Vec<_> = summary
            .lanes
            .values()
            .filter(|l| l.starts_with(lane))
            .collect();
        assert!(
            !workers.is_empty(),
            "{exe}: no lane starts with {lane:?}: {:?}",
            summary.lanes
        );
    }
}
