//! The progress bar on a real terminal (a pseudo-terminal here): its last
//! frame must end its line, or the summary is glued to it whenever the bar
//! is narrower than the screen (seen as `194/194 [...]--------------------`).

mod common;

use std::fs::File;
use std::io::Read;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::Scratch;
use flags::server::{FlagServer, ServerConfig};

/// A pseudo-terminal pair (master, slave) that says it is `cols` wide.
fn pty(cols: u16) -> (OwnedFd, OwnedFd) {
    let (mut master, mut slave) = (-1, -1);
    let size = libc::winsize {
        ws_row: 24,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two descriptors into the two ints we pass; the
    // name pointer may be null; termios null means the defaults; `size` is a
    // valid winsize that openpty only reads.
    let rc = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened by openpty and are owned by
    // nobody else.
    unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) }
}

#[test]
fn the_last_frame_ends_its_line() {
    let server = FlagServer::start(ServerConfig::default()).unwrap();
    let dest = Scratch::new("progress");
    let (master, slave) = pty(100);
    let mut child = Command::new(env!("CARGO_BIN_EXE_flags2-threadpool"))
        .args(["--url", &server.base_url(), "--dest"])
        .arg(dest.path())
        .arg("-a")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::from(slave))
        .spawn()
        .unwrap();
    // Our copy of the slave went into the Command and is closed now, so the
    // master reads EIO once the child has exited.
    let reader = std::thread::spawn(move || {
        let mut terminal = File::from(master);
        let mut seen = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = terminal.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&seen).into_owned()
    });
    let out = common::wait_with_deadline_status(&mut child, Duration::from_secs(60));
    assert_eq!(out, Some(0));
    let screen = reader.join().unwrap();
    let last_frame = screen
        .rfind("194/194")
        .unwrap_or_else(|| panic!("no final frame in {screen:?}"));
    let after = &screen[last_frame..];
    let end_of_frame = after.find("/s]").expect("the frame's rate") + 3;
    assert!(
        after[end_of_frame..].contains('\n'),
        "the last frame is not ended: {:?}",
        after
    );
}
