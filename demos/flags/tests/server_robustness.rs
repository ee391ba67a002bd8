//! The flag server against hostile or careless clients, over raw sockets.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{raw_exchange, status_of};
use flags::client::{Client, ClientConfig};
use flags::server::http::Limits;
use flags::server::{FlagServer, ServerConfig};

const WAIT: Duration = Duration::from_secs(5);
/// Only against hangs: no test here expects the server to be this slow.
const HANG_GUARD: Duration = Duration::from_secs(60);

fn server() -> FlagServer {
    FlagServer::start(ServerConfig::default()).unwrap()
}

fn get(server: &FlagServer, target: &str) -> String {
    let request = format!("GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    raw_exchange(server.addr(), request.as_bytes(), WAIT)
}

#[test]
fn serves_flags_and_404s() {
    let s = server();
    assert!(s.addr().ip().is_loopback(), "binds 127.0.0.1 by default");
    assert!(s.base_url().starts_with("http://127.0.0.1:"));
    let ok = get(&s, "/flags/br/br.gif");
    assert_eq!(status_of(&ok), 200);
    assert!(ok.contains("Content-Type: image/gif\r\n"));
    assert!(ok.contains("GIF89a"));
    assert_eq!(status_of(&get(&s, "/flags/xx/xx.gif")), 404);
    assert_eq!(status_of(&get(&s, "/")), 404);
}

#[test]
fn path_traversal_and_odd_targets_are_refused() {
    let s = server();
    for target in [
        "/flags/../../../etc/passwd",
        "/flags/%2e%2e/%2e%2e/etc/passwd",
        "/flags/%2E%2E%2Fetc%2Fpasswd",
        "/flags/br/..%2f..%2fbr.gif",
        "/flags//br/br.gif",
        "/flags/br\\br.gif",
        "/flags/%00/br.gif",
        "/flags/%zz",
        "http://127.0.0.1/flags/br/br.gif",
        "*",
        "flags/br/br.gif",
    ] {
        let answer = get(&s, target);
        // 400, not merely a 404: the attempt itself is refused.
        assert_eq!(status_of(&answer), 400, "{target}: {answer}");
        assert!(
            !answer.contains("GIF89a") && !answer.contains("root:"),
            "{target}"
        );
    }
}

#[test]
fn only_get_and_head_are_allowed() {
    let s = server();
    for method in ["POST", "PUT", "DELETE", "OPTIONS", "PATCH", "BREW", "TRACE"] {
        let request =
            format!("{method} /flags/br/br.gif HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
        let answer = raw_exchange(s.addr(), request.as_bytes(), WAIT);
        assert_eq!(status_of(&answer), 405, "{method}");
        assert!(answer.contains("Allow: GET, HEAD\r\n"));
    }
    // HEAD: the headers of the GET, no body.
    let head = raw_exchange(
        s.addr(),
        b"HEAD /flags/br/br.gif HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        WAIT,
    );
    assert_eq!(status_of(&head), 200);
    assert!(
        head.ends_with("\r\n\r\n") && !head.contains("GIF89a"),
        "{head}"
    );
    // A GET with a body is refused rather than misread.
    let with_body = raw_exchange(
        s.addr(),
        b"GET /flags/br/br.gif HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
        WAIT,
    );
    assert_eq!(status_of(&with_body), 400);
    // Another HTTP version.
    let v2 = raw_exchange(s.addr(), b"GET /flags/br/br.gif HTTP/2.0\r\n\r\n", WAIT);
    assert_eq!(status_of(&v2), 505, "{v2}");
    // Not HTTP at all.
    assert_eq!(
        status_of(&raw_exchange(s.addr(), b"\x16\x03\x01 hello\r\n\r\n", WAIT)),
        400
    );
}

#[test]
fn over_long_request_lines_and_headers_are_refused() {
    let s = server();
    let long_target = format!("/flags/{}", "a".repeat(20_000));
    assert_eq!(status_of(&get(&s, &long_target)), 414);
    let long_header = format!(
        "GET /flags/br/br.gif HTTP/1.1\r\nX-Big: {}\r\n\r\n",
        "b".repeat(20_000)
    );
    assert_eq!(
        status_of(&raw_exchange(s.addr(), long_header.as_bytes(), WAIT)),
        431
    );
    let mut many = String::from("GET /flags/br/br.gif HTTP/1.1\r\n");
    for i in 0..100 {
        many.push_str(&format!("X-H{i}: v\r\n"));
    }
    many.push_str("\r\n");
    assert_eq!(
        status_of(&raw_exchange(s.addr(), many.as_bytes(), WAIT)),
        431
    );
}

fn impatient() -> FlagServer {
    FlagServer::start(ServerConfig {
        limits: Limits {
            idle_timeout: Duration::from_millis(300),
            header_timeout: Duration::from_millis(500),
            ..Limits::default()
        },
        ..ServerConfig::default()
    })
    .unwrap()
}

/// Reads until the server closes; fails the test if it does not close
/// within the hang guard (a lower bound of the test, never an upper bound
/// of the server's speed).
fn read_until_closed(stream: &mut TcpStream) -> String {
    stream.set_read_timeout(Some(HANG_GUARD)).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the server did not close within {HANG_GUARD:?}: {e}"),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[test]
fn slow_and_idle_clients_are_timed_out() {
    let s = impatient();
    // Half a request, then silence: the server answers 408 and closes, and
    // not before the head deadline.
    let t0 = Instant::now();
    let mut half = TcpStream::connect(s.addr()).unwrap();
    half.write_all(b"GET /flags/br/br.g").unwrap();
    assert_eq!(status_of(&read_until_closed(&mut half)), 408);
    assert!(
        t0.elapsed() >= Duration::from_millis(500),
        "{:?}",
        t0.elapsed()
    );
    // Silence from the start: closed without a word after the idle timeout.
    let t0 = Instant::now();
    let mut silent = TcpStream::connect(s.addr()).unwrap();
    assert_eq!(read_until_closed(&mut silent), "");
    assert!(
        t0.elapsed() >= Duration::from_millis(300),
        "{:?}",
        t0.elapsed()
    );
}

#[test]
fn a_client_dribbling_its_request_is_cut_off_at_the_deadline() {
    let s = impatient();
    let mut stream = TcpStream::connect(s.addr()).unwrap();
    let mut writer = stream.try_clone().unwrap();
    // One byte every 50 ms, for as long as the server listens: each read is
    // quick, the whole head never ends. A server that restarted its deadline
    // at every byte would never answer, and the hang guard would fail us.
    let dribble = std::thread::spawn(move || {
        let head = b"GET /flags/br/br.gif HTTP/1.1\r\nHost: x\r\nX-Slow: ";
        for b in head.iter().chain(std::iter::repeat(&b'z')) {
            if writer.write_all(&[*b]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let answer = read_until_closed(&mut stream);
    assert_eq!(status_of(&answer), 408, "{answer}");
    drop(stream);
    dribble.join().unwrap();
}

#[test]
fn keep_alive_and_pipelining_reuse_the_connection() {
    let s = server();
    let two = b"GET /flags/br/br.gif HTTP/1.1\r\nHost: x\r\n\r\nGET /flags/xx/xx.gif HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let answer = raw_exchange(s.addr(), two, WAIT);
    assert_eq!(answer.matches("HTTP/1.1 ").count(), 2, "{answer:.200}");
    assert!(
        answer.contains("HTTP/1.1 200 OK\r\n") && answer.contains("HTTP/1.1 404 Not Found\r\n")
    );
    // Our client reuses its connection: ten flags, one connection.
    let client = Client::new(&ClientConfig::default());
    let before = s.connections_served();
    for cc in ["br", "cn", "in", "us", "id", "pk", "ng", "bd", "ru", "jp"] {
        client.get_flag(&s.base_url(), cc).unwrap();
    }
    assert_eq!(s.connections_served() - before, 1);
    // HTTP/1.0 closes by default.
    let old = raw_exchange(s.addr(), b"GET /flags/br/br.gif HTTP/1.0\r\n\r\n", WAIT);
    assert!(old.contains("Connection: close\r\n"));
}

/// Polls `done` until it holds; fails the test after the hang guard.
fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !done() {
        assert!(t0.elapsed() < HANG_GUARD, "still waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn delayed_responses_do_not_hold_back_each_other() {
    // Structural, not a stopwatch: with a delay far longer than the test,
    // the server itself must hold all 100 requests in their delay at once.
    // A server that served delays one at a time would never get past one.
    const CLIENTS: usize = 100;
    let s = FlagServer::start(ServerConfig {
        delay: Duration::from_secs(3600),
        ..ServerConfig::default()
    })
    .unwrap();
    let url = s.base_url();
    let client = Client::new(&ClientConfig::with_timeout(Duration::from_secs(3600)));
    let threads: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let (client, url) = (client.clone(), url.clone());
            let cc = flags::codes::all_codes()[i].clone();
            std::thread::spawn(move || client.get_flag(&url, &cc))
        })
        .collect();
    wait_for("100 requests in their delay at once", || {
        s.delayed_now() == CLIENTS
    });
    // Shutting down cuts the delays short: every client gets an answer.
    s.shutdown();
    for t in threads {
        assert!(t.join().unwrap().is_err(), "cut short by the shutdown");
    }
}

#[test]
fn a_delayed_response_arrives_after_its_delay() {
    let s = FlagServer::start(ServerConfig {
        delay: Duration::from_millis(300),
        ..ServerConfig::default()
    })
    .unwrap();
    let client = Client::new(&ClientConfig::with_timeout(HANG_GUARD));
    let t0 = Instant::now();
    let flag = client.get_flag(&s.base_url(), "br").unwrap();
    assert!(flag.starts_with(b"GIF89a"));
    assert!(
        t0.elapsed() >= Duration::from_millis(300),
        "{:?}",
        t0.elapsed()
    );
    assert_eq!(s.delayed_now(), 0);
}

#[test]
fn connections_past_the_limit_get_503() {
    let s = FlagServer::start(ServerConfig {
        max_connections: 2,
        ..ServerConfig::default()
    })
    .unwrap();
    let _a = TcpStream::connect(s.addr()).unwrap();
    let _b = TcpStream::connect(s.addr()).unwrap();
    let answer = raw_exchange(s.addr(), b"GET /flags/br/br.gif HTTP/1.1\r\n\r\n", WAIT);
    assert_eq!(status_of(&answer), 503, "{answer}");
}

#[test]
fn shutdown_does_not_wait_for_delays_or_idle_clients() {
    // An hour of delay and of idle patience: a shutdown that waited for
    // either would trip the hang guard.
    let s = FlagServer::start(ServerConfig {
        delay: Duration::from_secs(3600),
        limits: Limits {
            idle_timeout: Duration::from_secs(3600),
            ..Limits::default()
        },
        ..ServerConfig::default()
    })
    .unwrap();
    let addr = s.addr();
    let mut waiting = TcpStream::connect(addr).unwrap();
    waiting
        .write_all(b"GET /flags/br/br.gif HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let _idle = TcpStream::connect(addr).unwrap();
    wait_for("the request to reach its delay", || s.delayed_now() == 1);
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        s.shutdown();
        let _ = done_tx.send(());
    });
    done_rx
        .recv_timeout(HANG_GUARD)
        .expect("shutdown waited for a delay or an idle client");
    // The delayed request ends at once: a 503, or just the close when the
    // shutdown's closing of every socket wins the race with that answer.
    let answer = read_until_closed(&mut waiting);
    assert!(answer.is_empty() || status_of(&answer) == 503, "{answer}");
    assert!(
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err(),
        "no longer listening"
    );
}

#[test]
fn every_response_carries_a_date() {
    let s = server();
    let before = flags::server::date::http_date_now();
    for target in ["/flags/br/br.gif", "/flags/xx/xx.gif", "/flags/../x"] {
        let answer = get(&s, target);
        let date = answer
            .lines()
            .take_while(|l| !l.is_empty())
            .find_map(|l| l.strip_prefix("Date: "))
            .unwrap_or_else(|| panic!("no Date header for {target}: {answer:.300}"));
        // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT", today's.
        assert_eq!(date.len(), 29, "{date}");
        assert!(date.ends_with(" GMT"), "{date}");
        let after = flags::server::date::http_date_now();
        assert!(
            date[..16] == before[..16] || date[..16] == after[..16],
            "today's date: {date}"
        );
    }
    // The 503 of a full server too.
    let full = FlagServer::start(ServerConfig {
        max_connections: 1,
        limits: Limits {
            idle_timeout: Duration::from_secs(3600),
            ..Limits::default()
        },
        ..ServerConfig::default()
    })
    .unwrap();
    let _hold = TcpStream::connect(full.addr()).unwrap();
    wait_for("the first connection to be admitted", || {
        full.connections_served() == 1
    });
    let busy = raw_exchange(full.addr(), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", WAIT);
    assert_eq!(status_of(&busy), 503, "{busy}");
    assert!(busy.contains("\r\nDate: "), "{busy}");
}

#[test]
fn http_1_1_without_exactly_one_host_is_a_bad_request() {
    let s = server();
    let no_host = raw_exchange(
        s.addr(),
        b"GET /flags/br/br.gif HTTP/1.1\r\nConnection: close\r\n\r\n",
        WAIT,
    );
    assert_eq!(status_of(&no_host), 400, "{no_host:.120}");
    let two_hosts = raw_exchange(
        s.addr(),
        b"GET /flags/br/br.gif HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        WAIT,
    );
    assert_eq!(status_of(&two_hosts), 400, "{two_hosts:.120}");
    // HTTP/1.0 predates Host: still served without one.
    let old = raw_exchange(s.addr(), b"GET /flags/br/br.gif HTTP/1.0\r\n\r\n", WAIT);
    assert_eq!(status_of(&old), 200);
    let with_host = get(&s, "/flags/br/br.gif");
    assert_eq!(status_of(&with_host), 200);
}

#[test]
fn bad_server_settings_are_reported() {
    for config in [
        ServerConfig {
            error_rate: 1.5,
            ..ServerConfig::default()
        },
        ServerConfig {
            delay: Duration::from_secs(2),
            delay_max: Some(Duration::from_secs(1)),
            ..ServerConfig::default()
        },
        ServerConfig {
            max_connections: 0,
            ..ServerConfig::default()
        },
        ServerConfig {
            dir: Some("/nonexistent/flags-dir".into()),
            ..ServerConfig::default()
        },
    ] {
        let err = FlagServer::start(config).unwrap_err();
        assert!(!err.to_string().is_empty());
    }
}
