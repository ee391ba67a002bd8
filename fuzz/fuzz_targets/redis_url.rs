//! `redis://` URLs (`crates/celery/src/url.rs`), as a user or a
//! configuration file gives them.
//!
//! Promises checked beyond "no panic":
//! * a URL that parses has a non-empty host made of host-name or address
//!   characters, and its `Display` form (which leaves the password out)
//!   parses back to the same host, port and database;
//! * a URL that is refused is not echoed with its password in the error.
#![no_main]

use celery::{CeleryError, RedisUrl};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match RedisUrl::parse(text) {
        Ok(url) => check_parsed(url),
        Err(CeleryError::BadUrl(shown, _)) => check_redacted(text, &shown),
        Err(other) => panic!("a URL refused with {other:?}"),
    }
});

fn check_parsed(url: RedisUrl) {
    assert!(!url.host.is_empty());
    assert!(
        url.host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_:[]%".contains(c)),
        "host {:?}",
        url.host
    );
    let again = RedisUrl::parse(&url.to_string()).expect("Display output parses");
    assert_eq!(
        again,
        RedisUrl {
            password: None,
            ..url
        }
    );
}

/// The password is what follows the last `:` before the last `@`.
fn check_redacted(text: &str, shown: &str) {
    let Some((auth, rest)) = text.rsplit_once('@') else {
        return;
    };
    let Some((before, password)) = auth.rsplit_once(':') else {
        return;
    };
    // Only a password that appears nowhere else in the URL can be looked for.
    if password.len() >= 3 && !rest.contains(password) && !before.contains(password) {
        assert!(
            !shown.contains(password),
            "{shown:?} shows the password {password:?}"
        );
    }
}
