//! From a request target to a flag, refusing anything odd.
//!
//! The only paths served are `/flags/<cc>/<cc>.gif` with `cc` two lower-case
//! ASCII letters. The file to serve is never built from the request's text:
//! the route yields two validated letters, and the store looks them up. So
//! no request can reach outside the flags, whatever it contains. On top of
//! that, requests that *try* are refused with `400 Bad Request` rather than a
//! 404, to make the rules visible:
//!
//! | target                                   | answer |
//! |------------------------------------------|--------|
//! | `/flags/br/br.gif` (query string ignored) | the flag, or 404 if there is none |
//! | `/`, `/flags/BR/BR.gif`, `/favicon.ico`  | 404 |
//! | not starting with `/` (`*`, `http://…`)  | 400 |
//! | a `.` or `..` segment, raw or `%2e`-encoded | 400 |
//! | an empty segment (`//`), `%2f`, `\`, NUL, control or non-ASCII bytes | 400 |
//! | a bad percent escape (`%zz`, `%4`)       | 400 |

use std::fmt;

/// Where a valid request target leads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// A flag image, by its two lower-case letters.
    Flag([u8; 2]),
    /// A well-formed path that names nothing we serve.
    NotFound,
}

/// Why a request target was refused (always a 400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadTarget(pub &'static str);

impl fmt::Display for BadTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for BadTarget {}

/// Decodes `%XX` escapes of one path segment.
fn percent_decode(segment: &str) -> Result<Vec<u8>, BadTarget> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .ok_or(BadTarget("truncated percent escape"))?;
            let text = std::str::from_utf8(hex).map_err(|_| BadTarget("bad percent escape"))?;
            let byte = u8::from_str_radix(text, 16).map_err(|_| BadTarget("bad percent escape"))?;
            out.push(byte);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// Validates a request target and says what it names.
pub fn route(target: &str) -> Result<Route, BadTarget> {
    if !target.starts_with('/') {
        return Err(BadTarget("the target must be an absolute path"));
    }
    if target.bytes().any(|b| !(0x21..0x7F).contains(&b)) {
        return Err(BadTarget("control, space or non-ASCII byte in the target"));
    }
    if target.contains('#') {
        return Err(BadTarget("fragment in the target"));
    }
    let path = target.split('?').next().unwrap_or("");
    // A directory-style path ("/", "/flags/") names nothing we serve.
    let Some(path) = path[1..]
        .strip_suffix('/')
        .or(Some(&path[1..]))
        .filter(|p| !p.is_empty())
    else {
        return Ok(Route::NotFound);
    };
    let mut segments = Vec::new();
    for raw in path.split('/') {
        let decoded = percent_decode(raw)?;
        if decoded.is_empty() {
            return Err(BadTarget("empty path segment"));
        }
        if decoded == b"." || decoded == b".." {
            return Err(BadTarget("dot segment (path traversal)"));
        }
        if decoded
            .iter()
            .any(|&b| b == b'/' || b == b'\\' || !(0x21..0x7F).contains(&b))
        {
            return Err(BadTarget("forbidden byte in a path segment"));
        }
        segments.push(decoded);
    }
    Ok(match segments.as_slice() {
        [flags, cc, file]
            if flags == b"flags"
                && cc.len() == 2
                && cc.iter().all(u8::is_ascii_lowercase)
                && file.as_slice() == [cc.as_slice(), b".gif"].concat() =>
        {
            Route::Flag([cc[0], cc[1]])
        }
        _ => Route::NotFound,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_are_found() {
        assert_eq!(route("/flags/br/br.gif"), Ok(Route::Flag(*b"br")));
        assert_eq!(route("/flags/xx/xx.gif?x=1"), Ok(Route::Flag(*b"xx")));
        assert_eq!(route("/flags/b%72/br.gif"), Ok(Route::Flag(*b"br")));
    }

    #[test]
    fn other_clean_paths_are_not_found() {
        for target in [
            "/",
            "/flags",
            "/flags/",
            "/flags/BR/BR.gif",
            "/flags/br/cn.gif",
            "/favicon.ico",
            "/flags/br/br.gif/x",
            "/flags/bra/bra.gif",
        ] {
            assert_eq!(route(target), Ok(Route::NotFound), "{target}");
        }
    }

    #[test]
    fn traversal_and_odd_paths_are_refused() {
        for target in [
            "/flags/../etc/passwd",
            "/flags/%2e%2e/%2E%2E/etc/passwd",
            "/flags/.%2e/x",
            "/flags/./br/br.gif",
            "/flags//br.gif",
            "/flags/br%2fbr.gif",
            "/flags/br%5cbr.gif",
            "/flags/br\\br.gif",
            "/flags/%00/x",
            "/flags/%zz",
            "/flags/%4",
            "*",
            "http://127.0.0.1/flags/br/br.gif",
            "flags/br/br.gif",
            "/flags/br/br.gif#x",
            "/fl ags",
            "/flags/\u{e9}",
        ] {
            assert!(route(target).is_err(), "{target} should be refused");
        }
    }
}
