//! The client against servers that misbehave: each is a tiny raw
//! `TcpListener` here. Every case must end as an error, promptly, without a
//! panic or a hang, both in the library and in a whole program run.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use common::{counts, run, Scratch};
use flags::client::{Client, ClientConfig, FetchError};

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

fn hangs(mut s: TcpStream) {
    read_head(&mut s);
    std::thread::sleep(Duration::from_secs(30)); // never answers
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
    while t0.elapsed() < Duration::from_secs(20) {
        if s.write_all(&chunk).is_err() {
            return; // the client gave up: good
        }
    }
}

fn endless_no_length(mut s: TcpStream) {
    read_head(&mut s);
    let _ = s.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n");
    let chunk = [b'x'; 64 * 1024];
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(20) {
        if s.write_all(&chunk).is_err() {
            return;
        }
    }
}

fn dribbles(mut s: TcpStream) {
    read_head(&mut s);
    let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n");
    for _ in 0..300 {
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

fn fetch(behave: fn(TcpStream)) -> (FetchError, Duration) {
    let url = misbehaving(behave);
    let t0 = Instant::now();
    let err = client().get_flag(&url, "br").expect_err("must fail");
    (err, t0.elapsed())
}

#[test]
fn a_hanging_server_times_out() {
    let (err, took) = fetch(hangs);
    assert!(matches!(err, FetchError::Transport(_)), "{err:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
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
    let (err, took) = fetch(huge_body);
    assert_eq!(err, FetchError::TooLarge { limit: 1 << 20 });
    assert!(took < Duration::from_secs(5), "{took:?}");
    let (err, _) = fetch(endless_no_length);
    assert_eq!(err, FetchError::TooLarge { limit: 1 << 20 });
}

#[test]
fn a_dribbling_body_times_out() {
    let (err, took) = fetch(dribbles);
    assert!(matches!(err, FetchError::Transport(_)), "{err:?}");
    assert!(took < Duration::from_secs(5), "{took:?}");
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
            Duration::from_secs(30),
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
