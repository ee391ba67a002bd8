//! Helpers shared by the integration tests: scratch directories, running a
//! program with a deadline, reading its report, raw HTTP exchanges.

#![allow(dead_code)] // each test file uses a different subset

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A fresh, empty directory under the system temp dir, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir =
            std::env::temp_dir().join(format!("flags-test-{name}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// What a finished program printed.
#[derive(Debug)]
pub struct Output {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

/// Runs `exe args...` and waits at most `limit`; a program still running
/// then is killed and the test fails.
pub fn run(exe: &str, args: &[&str], limit: Duration) -> Output {
    let child = Command::new(exe)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {exe}: {e}"));
    wait_with_deadline(child, limit, None)
}

/// Something to do to a running child, by pid, once a condition holds:
/// called on every poll until it returns true (it did its thing).
pub type Action = Box<dyn FnMut(u32) -> bool>;

/// Waits for `child` (with piped stdout and stderr) up to `limit`; polls
/// `at(pid)` until it returns true, if given (e.g. to send a signal once
/// the program has reached some point).
pub fn wait_with_deadline(
    mut child: std::process::Child,
    limit: Duration,
    mut at: Option<Action>,
) -> Output {
    let t0 = Instant::now();
    let mut out_pipe = child.stdout.take().unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out_pipe.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err_pipe.read_to_string(&mut s);
        s
    });
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if let Some(f) = at.as_mut() {
            if f(child.id()) {
                at = None;
            }
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the program did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output {
        code: status.code(),
        stdout: out_reader.join().unwrap(),
        stderr: err_reader.join().unwrap(),
        elapsed: t0.elapsed(),
    }
}

/// Waits for `child` (its output not piped here) up to `limit`, then kills
/// it and fails the test; returns its exit code.
pub fn wait_with_deadline_status(child: &mut std::process::Child, limit: Duration) -> Option<i32> {
    let t0 = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if t0.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the program did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The counts of a flags2 final report: (downloaded, not found, errors).
pub fn counts(stdout: &str) -> (usize, usize, usize) {
    let mut c = (0, 0, 0);
    let after = stdout
        .split("--------------------\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no final report in:\n{stdout}"));
    for line in after.lines() {
        let n = || {
            line.split_whitespace()
                .next()
                .unwrap()
                .parse::<usize>()
                .unwrap()
        };
        if line.ends_with(" downloaded.") {
            c.0 = n();
        } else if line.ends_with(" not found.") {
            c.1 = n();
        } else if line.ends_with(" error.") || line.ends_with(" errors.") {
            c.2 = n();
        }
    }
    assert!(after.contains("Elapsed time: "), "{stdout}");
    c
}

/// Sends `request` on a fresh connection and returns everything the server
/// sends back until it closes (or `limit` passes).
pub fn raw_exchange(addr: SocketAddr, request: &[u8], limit: Duration) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(limit)).unwrap();
    stream.write_all(request).unwrap();
    read_all(&mut stream)
}

/// Reads until EOF, a timeout or an error.
pub fn read_all(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The status code of the first response in `text`.
pub fn status_of(text: &str) -> u16 {
    text.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"))
}

/// `../shared/data/flags.zip` relative to the workspace root, if present.
pub fn real_flags_zip() -> Option<PathBuf> {
    let zip = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/flags.zip");
    zip.is_file().then_some(zip)
}
