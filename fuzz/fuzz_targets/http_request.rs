//! The flag server's request parser (`demos/flags/src/server/http.rs`) and
//! its router (`route.rs`): the bytes any client on the network may send.
//!
//! Promises checked beyond "no panic", under the default limits and under
//! small ones:
//! * a request head uses at least one byte and at most `max_head`, and the
//!   same head alone parses to the same request (pipelining cannot change
//!   what a request means);
//! * "need more bytes" only while fewer than `max_head` bytes arrived;
//! * a rejection is one of the statuses the module documents;
//! * a target the router accepts has only well-formed percent escapes.
#![no_main]

use flags::server::http::{parse_head, Incoming, Limits};
use flags::server::route::{route, Route};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let small = Limits {
        max_head: 256,
        max_headers: 4,
        ..Limits::default()
    };
    for limits in [Limits::default(), small] {
        check_connection(data, &limits);
    }
});

/// Reads pipelined requests off `data` as a connection does.
fn check_connection(mut buf: &[u8], limits: &Limits) {
    loop {
        let Some((incoming, consumed)) = parse_head(buf, limits) else {
            assert!(buf.len() < limits.max_head, "waiting with a full head");
            return;
        };
        match incoming {
            Incoming::Request(request) => {
                assert!(consumed > 0 && consumed <= buf.len().min(limits.max_head));
                let alone = parse_head(&buf[..consumed], limits);
                assert_eq!(alone, Some((Incoming::Request(request.clone()), consumed)));
                check_route(&request.target);
                buf = &buf[consumed..];
            }
            Incoming::Reject(status) => {
                assert!([400, 414, 431, 505].contains(&status), "status {status}");
                return;
            }
            Incoming::Closed => panic!("the parser never closes by itself"),
        }
    }
}

fn check_route(target: &str) {
    let Ok(found) = route(target) else {
        return;
    };
    let path = target.split('?').next().unwrap_or("").as_bytes();
    for (i, _) in path.iter().enumerate().filter(|(_, &b)| b == b'%') {
        let escape = path.get(i + 1..i + 3);
        assert!(
            escape.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)),
            "{target:?} routed to {found:?} with a malformed escape"
        );
    }
    if let Route::Flag(cc) = found {
        assert!(cc.iter().all(u8::is_ascii_lowercase));
    }
}
