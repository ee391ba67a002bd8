//! The flag server against hostile or careless clients, over raw sockets.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{raw_exchange, read_all, status_of};
use flags::client::{Client, ClientConfig};
use flags::server::http::Limits;
use flags::server::{FlagServer, ServerConfig};

const WAIT: Duration = Duration::from_secs(5);

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
        b"HEAD /flags/br/br.gif HTTP/1.1\r\nConnection: close\r\n\r\n",
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
        b"GET /flags/br/br.gif HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
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

#[test]
fn slow_and_idle_clients_are_timed_out() {
    let s = impatient();
    // Half a request, then silence: 408 after the head deadline.
    let t0 = Instant::now();
    let answer = raw_exchange(s.addr(), b"GET /flags/br/br.g", WAIT);
    assert_eq!(status_of(&answer), 408);
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    // Silence from the start: closed after the idle timeout.
    let t0 = Instant::now();
    assert_eq!(raw_exchange(s.addr(), b"", WAIT), "");
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
}

#[test]
fn a_client_dribbling_its_request_is_cut_off_at_the_deadline() {
    let s = impatient();
    let mut stream = TcpStream::connect(s.addr()).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut writer = stream.try_clone().unwrap();
    // One byte every 50 ms: each read is quick, the whole head is not.
    let dribble = std::thread::spawn(move || {
        for b in b"GET /flags/br/br.gif HTTP/1.1\r\nX-Slow: "
            .iter()
            .chain([b'z'; 100].iter())
        {
            if writer.write_all(&[*b]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    });
    let t0 = Instant::now();
    let answer = read_all(&mut stream);
    assert_eq!(status_of(&answer), 408);
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
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

#[test]
fn delayed_responses_do_not_hold_back_each_other() {
    let s = FlagServer::start(ServerConfig {
        delay: Duration::from_millis(500),
        ..ServerConfig::default()
    })
    .unwrap();
    let url = s.base_url();
    let client = Client::new(&ClientConfig::default());
    let t0 = Instant::now();
    let threads: Vec<_> = (0..100)
        .map(|i| {
            let (client, url) = (client.clone(), url.clone());
            let cc = flags::codes::all_codes()[i].clone();
            std::thread::spawn(move || client.get_flag(&url, &cc).map(|b| b.len()))
        })
        .collect();
    for t in threads {
        assert!(t.join().unwrap().unwrap() > 0);
    }
    let took = t0.elapsed();
    // Serially this would be 50 s; concurrently about 0.5 s.
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(
        took >= Duration::from_millis(500),
        "the delay applies: {took:?}"
    );
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
    let s = FlagServer::start(ServerConfig {
        delay: Duration::from_secs(30),
        ..ServerConfig::default()
    })
    .unwrap();
    let addr = s.addr();
    let mut waiting = TcpStream::connect(addr).unwrap();
    waiting
        .write_all(b"GET /flags/br/br.gif HTTP/1.1\r\n\r\n")
        .unwrap();
    let _idle = TcpStream::connect(addr).unwrap();
    std::thread::sleep(Duration::from_millis(200)); // let the request reach its delay
    let t0 = Instant::now();
    s.shutdown();
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    assert!(
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err(),
        "no longer listening"
    );
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
