//! The client against servers that misbehave: each is a tiny raw
//! `TcpListener` here. Every case must end as an error, promptly, without a
//! panic or a hang, both in the library and in a whole program run.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::{counts, run, Scratch};
use flags::client::{Client, ClientConfig, FetchError, TimeoutStage};

/// Starts a server that handles each connection with `behave` on its own
/// thread; returns the flags base URL. The threads end with the test process.
fn misbehaving(behave: fn(TcpStream)) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/flags", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || behave(stream));
        }
    });
    url
}

/// Reads the request head (up to the blank line), ignoring errors.
fn read_head(stream: &mut TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut seen = Vec::new();
    let mut byte = [0u8; 1];
    while !seen.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => seen.push(byte[0]),
            _ => return,
        }
    }
}

/// Only against hangs: every case here must end long before.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// Never answers: waits until the client gives up and closes.
fn hangs(mut s: TcpStream) {
    read_head(&mut s);
    let _ = s.set_read_timeout(Some(HANG_GUARD));
    let _ = s.read(&mut [0u8; 1]);
}

fn resets(mut s: TcpStream) {
    read_head(&mut s);
    drop(s); // closes without a word
}

fn garbage(mut s: TcpStream) {
    read_head(&mut s);
    let _ = s.write_all(b"SPAM SPAM SPAM\r\n\x00\x01\x02 eggs and spam\r\n\r\n");
}

fn huge_body(mut s: TcpStream) {
    read_head(&mut s);
    let _ = s.write_all(
        b"HTTP/1.1 200 OK\r\nContent-Type: image/gif\r\nContent-Length: 1000000000\r\n\r\n",
    );
    let chunk = [b'G'; 64 * 1024];
    let t0 = Instant::now();
    while t0.elapsed() < HANG_GUARD {
        if s.write_all(&chunk).is_err() {
            return; // the client gave up: good
        }
    }
}

fn endless_no_length(mut s: TcpStream) {
    read_head(&mut s);
    let _ = s.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
    // No length, no end: only the client's body cap stops this.
    let chunk = [b'x'; 64 * 1024];
    let t0 = Instant::now();
    while t0.elapsed() < HANG_GUARD {
        if s.write_all(&chunk).is_err() {
            return;
        }
    }
}

fn dribbles(mut s: TcpStream) {
    read_head(&mut s);
    let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n");
    // One byte every 100 ms, never silent for a whole read timeout: only a
    // limit on the whole exchange stops this before the hang guard.
    for _ in 0..HANG_GUARD.as_millis() / 100 {
        if s.write_all(b"x").is_err() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn truncated(mut s: TcpStream) {
    read_head(&mut s);
    let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\nGIF89a only a little");
}

fn teapot(mut s: TcpStream) {
    read_head(&mut s);
    let _ = s.write_all(b"HTTP/1.1 418 I'm a Teapot\r\nContent-Length: 0\r\n\r\n");
}

fn client() -> Client {
    Client::new(&ClientConfig {
        max_body: 1 << 20,
        ..ClientConfig::with_timeout(Duration::from_secs(1))
    })
}

/// The client's error against `behave`, and how long it took; fails the
/// test if the client is still waiting after the hang guard.
fn fetch(behave: fn(TcpStream)) -> (FetchError, Duration) {
    let url = misbehaving(behave);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let t0 = Instant::now();
        let err = client().get_flag(&url, "br").expect_err("must fail");
        let _ = tx.send((err, t0.elapsed()));
    });
    rx.recv_timeout(HANG_GUARD)
        .expect("the client did not give up within the hang guard")
}

#[test]
fn a_hanging_server_times_out() {
    let (err, took) = fetch(hangs);
    let FetchError::Timeout { url, stage, after } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(*stage, TimeoutStage::Request, "{err:?}");
    assert_eq!(*after, Duration::from_secs(1));
    assert!(url.ends_with("/flags/br/br.gif"), "{url}");
    assert!(took >= Duration::from_secs(1), "{took:?}");
    // Says what timed out and after how long, and where.
    let message = err.to_string();
    assert!(
        message.starts_with("timed out after 1s: ") && message.contains(url.as_str()),
        "{message}"
    );
}

#[test]
fn a_silent_server_times_out_per_read() {
    let client = Client::new(&ClientConfig {
        read_timeout: Duration::from_millis(500),
        ..ClientConfig::with_timeout(HANG_GUARD / 2)
    });
    let url = misbehaving(hangs);
    let err = client.get_flag(&url, "br").unwrap_err();
    let FetchError::Timeout { stage, after, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        (*stage, *after),
        (TimeoutStage::Silence, Duration::from_millis(500))
    );
    assert!(
        err.to_string().starts_with("timed out after 500ms: "),
        "{err}"
    );
}

#[test]
fn a_reset_connection_is_an_error() {
    let (err, _) = fetch(resets);
    assert!(matches!(err, FetchError::Transport(_)), "{err:?}");
}

#[test]
fn garbage_is_an_error() {
    let (err, _) = fetch(garbage);
    assert!(matches!(err, FetchError::Transport(_)), "{err:?}");
}

#[test]
fn a_huge_body_is_cut_off() {
    let (err, _) = fetch(huge_body);
    assert_eq!(err, FetchError::TooLarge { limit: 1 << 20 });
    let (err, _) = fetch(endless_no_length);
    assert_eq!(err, FetchError::TooLarge { limit: 1 << 20 });
}

#[test]
fn a_dribbling_body_times_out() {
    let (err, _) = fetch(dribbles);
    assert!(
        matches!(
            err,
            FetchError::Timeout {
                stage: TimeoutStage::Request,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn a_truncated_body_is_an_error() {
    let (err, _) = fetch(truncated);
    assert!(matches!(err, FetchError::Transport(_)), "{err:?}");
}

#[test]
fn statuses_other_than_404_are_errors_with_the_book_message() {
    let (err, _) = fetch(teapot);
    assert_eq!(err.to_string(), "HTTP error 418 - I'm a Teapot");
}

#[test]
fn programs_count_misbehaviour_as_errors() {
    let exe = env!("CARGO_BIN_EXE_flags2-sequential");
    for behave in [hangs, resets, garbage, huge_body, truncated] {
        let url = misbehaving(behave);
        let dest = Scratch::new("misbehaving");
        let out = run(
            exe,
            &[
                "--url",
                &url,
                "--dest",
                dest.path().to_str().unwrap(),
                "--timeout",
                "1",
                "br",
                "cn",
            ],
            HANG_GUARD,
        );
        assert_eq!(out.code, Some(0), "{}\n{}", out.stdout, out.stderr);
        assert_eq!(counts(&out.stdout), (0, 0, 2), "{}", out.stdout);
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
        assert_eq!(
            std::fs::read_dir(dest.path()).unwrap().count(),
            0,
            "nothing saved"
        );
    }
}
