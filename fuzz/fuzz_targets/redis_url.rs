//! `redis://` URLs (`crates/celery/src/url.rs`), as a user or a
//! configuration file gives them.
//!
//! Promises checked beyond "no panic":
//! * a URL that parses has a non-empty host made of host-name or address
//!   characters, and its `Display` form (which leaves the password out)
//!   parses back to the same host, port and database;
//! * a URL that is refused is shown in its error with `***` in place of
//!   its password.
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

/// The error shows the URL with `***` in place of what follows the last
/// `:` before the last `@` (the password), and the rest as it was.
fn check_redacted(text: &str, shown: &str) {
    let Some((auth, rest)) = text.rsplit_once('@') else {
        assert_eq!(shown, text, "a URL without a password is shown as it is");
        return;
    };
    let (shown_auth, shown_rest) = shown.rsplit_once('@').expect("the '@' is kept");
    assert_eq!(shown_rest, rest);
    assert!(shown_auth.ends_with(":***"), "{shown:?} for {text:?}");
    // What the user wrote before the password is kept (it names the user).
    let user = auth.split_once("://").map_or(auth, |(_, a)| a);
    let user = user.rsplit_once(':').map_or("", |(u, _)| u);
    assert!(shown_auth.ends_with(&format!("{user}:***")));
}
