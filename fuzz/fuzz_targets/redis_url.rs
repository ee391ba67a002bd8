//! `redis://` URLs (`crates/celery/src/url.rs`), as a user or a
//! configuration file gives them.
//!
//! Promise checked beyond "no panic": a URL that parses has a non-empty
//! host, and its `Display` form (which leaves the password out) parses
//! back to the same host, port and database.
#![no_main]

use celery::RedisUrl;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(url) = RedisUrl::parse(text) else {
        return;
    };
    assert!(!url.host.is_empty());
    let again = RedisUrl::parse(&url.to_string()).expect("Display output parses");
    assert_eq!(
        again,
        RedisUrl {
            password: None,
            ..url
        }
    );
});
