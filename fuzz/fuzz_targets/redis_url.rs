//! `redis://` URLs (`crates/celery/src/url.rs`), as a user or a
//! configuration file gives them.
//!
//! Promises checked beyond "no panic":
//! * a URL that parses has a non-empty host made of host-name or address
//!   characters (a unix socket: an absolute path), and its `Display` form
//!   (which shows the password as `**`) parses back to the same URL with
//!   that password;
//! * a URL that is refused is shown in its error with `**` in place of
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
    if url.unix_socket.is_some() {
        assert!(url.host.starts_with('/'), "socket path {:?}", url.host);
    } else {
        assert!(
            url.host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-_:[]%".contains(c)),
            "host {:?}",
            url.host
        );
    }
    let shown = url.to_string();
    // The user part shown is the (percent-encoded, so ':'- and '@'-free)
    // user name and the mask: no room for the password.
    if url.password.is_some() {
        let after_scheme = shown.split_once("://").expect("a scheme").1;
        let (user_part, _) = after_scheme.split_once('@').expect("a user part");
        let user = user_part.strip_suffix(":**").expect("the password masked");
        assert!(!user.contains([':', '@']), "{shown:?}");
    }
    let again = RedisUrl::parse(&shown).expect("Display output parses");
    assert_eq!(
        again,
        RedisUrl {
            password: url.password.as_ref().map(|_| "**".to_string()),
            ..url
        }
    );
}

/// The error shows the URL with `**` in place of the password, split as
/// the parser splits it: the scheme ends at the first `://`, the user part
/// at the last `@` after it, the password after the user part's first `:`
/// (the whole user part is masked when it has no `:`); the rest is shown as
/// it was.
fn check_redacted(text: &str, shown: &str) {
    let (scheme, after) = match text.split_once("://") {
        Some((scheme, after)) => (format!("{scheme}://"), after),
        None => (String::new(), text),
    };
    let Some((userinfo, rest)) = after.rsplit_once('@') else {
        assert_eq!(shown, text, "a URL without a password is shown as it is");
        return;
    };
    let expected = match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}{user}:**@{rest}"),
        None => format!("{scheme}**@{rest}"),
    };
    assert_eq!(shown, expected, "for {text:?}");
}
