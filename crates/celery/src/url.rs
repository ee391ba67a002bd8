//! Redis URLs as Celery users write them (redis-py's and kombu's spelling):
//!
//! `redis://[[user]:password@]host[:port][/db][?option=value&...]`
//! `redis+socket://[[user]:password@]/path/to/redis.sock[?option=value&...]`
//! (kombu's unix socket; redis-py's `unix://` the same)
//!
//! * `user` and `password` may be percent-encoded (`p%40ss` is `p@ss`);
//!   with a user the connection says `AUTH user password` (a Redis 6 ACL
//!   user), without one `AUTH password`.
//! * `host` is a name, an IPv4 address or a bracketed IPv6 literal
//!   (`[::1]`); `port` defaults to 6379, `db` to 0.
//! * Options: `socket_connect_timeout=SECS` and `socket_timeout=SECS`
//!   (both bound how long a TCP connect may take, see
//!   [`RedisUrl::connect_timeout`]; a unix socket connects at once) and
//!   `db=N` or `virtual_host=N` (kombu's name; when the path names no
//!   database). Any other option is refused, so that nothing a user wrote
//!   is silently ignored.
//! * Refused with an error that says why: `rediss://` (TLS): our client
//!   speaks plain TCP and unix sockets only.
//!
//! A password never appears in what this module prints: [`RedisUrl`]'s
//! `Display` and `Debug`, and the URL in every [`CeleryError::BadUrl`], show
//! it as `**`, as Celery's `maybe_sanitize_url` does (`redis://:**@host:6379/0`).

use std::fmt;
use std::time::Duration;

use crate::error::CeleryError;

/// A parsed Redis URL.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisUrl {
    /// Host name or address (an IPv6 address without its brackets); for a
    /// unix socket, its path.
    pub host: String,
    /// TCP port (default 6379; 0 for a unix socket).
    pub port: u16,
    /// Database number (default 0).
    pub db: u32,
    /// ACL user name, if the URL has one (`redis://alice:pw@host`).
    pub username: Option<String>,
    /// Password, if the URL has one.
    pub password: Option<String>,
    /// The longest a connection attempt may take (`socket_connect_timeout`,
    /// else `socket_timeout`); `None`: the operating system's limit.
    pub connect_timeout: Option<Duration>,
    /// The unix socket's path (`redis+socket:///path`), if it is one.
    pub unix_socket: Option<String>,
}

/// The longest timeout an option may give: a day is already far past any
/// useful connection timeout, and it keeps `Duration` arithmetic safe.
const MAX_TIMEOUT_SECS: f64 = 86_400.0;

impl RedisUrl {
    /// Parses a Redis URL (see the module docs); the error says what is
    /// wrong, with the password masked.
    pub fn parse(url: &str) -> Result<RedisUrl, CeleryError> {
        let bad = |why: &str| CeleryError::BadUrl(mask_password(url), why.to_string());
        let (unix, rest) = strip_scheme(url).map_err(|why| bad(&why))?;
        // The last '@' ends the user part: an unencoded '@' in a password
        // still parses, as it does for redis-py. Split before the query, so
        // that a '?' in a password is part of it, not an option printed in
        // an error (no option's value has an '@').
        let (userinfo, rest) = match rest.rsplit_once('@') {
            Some((u, r)) => (Some(u), r),
            None => (None, rest),
        };
        let (rest, query) = match rest.split_once('?') {
            Some((r, q)) => (r, Some(q)),
            None => (rest, None),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(u) => parse_userinfo(u).map_err(|why| bad(&why))?,
        };
        let (host, port, mut db) = if unix {
            if !rest.starts_with('/') {
                return Err(bad(
                    "a unix socket needs an absolute path (redis+socket:///path)",
                ));
            }
            (rest.to_string(), 0, None)
        } else {
            let (hostport, path) = match rest.split_once('/') {
                Some((h, p)) => (h, p),
                None => (rest, ""),
            };
            let (host, port) = parse_host_port(hostport).map_err(|why| bad(&why))?;
            let db = match path {
                "" => None,
                d => Some(parse_db(d).map_err(|why| bad(&why))?),
            };
            (host, port, db)
        };
        let mut connect_timeout = None;
        let mut socket_timeout = None;
        for (key, value) in query_pairs(query.unwrap_or("")) {
            match key {
                "socket_connect_timeout" => {
                    connect_timeout = Some(parse_timeout(key, value).map_err(|why| bad(&why))?)
                }
                "socket_timeout" => {
                    socket_timeout = Some(parse_timeout(key, value).map_err(|why| bad(&why))?)
                }
                "db" | "virtual_host" => {
                    let n = parse_db(value).map_err(|why| bad(&why))?;
                    if db.is_some_and(|d| d != n) {
                        return Err(bad("the path and the db option name different databases"));
                    }
                    db = Some(n);
                }
                other => {
                    return Err(bad(&format!(
                        "the option {other:?} is not supported (supported: \
                         socket_connect_timeout, socket_timeout, db, virtual_host)"
                    )))
                }
            }
        }
        if !unix && !host.chars().all(is_host_char) {
            return Err(bad(
                "the host has a character no host name or address has (space, control, ...)",
            ));
        }
        Ok(RedisUrl {
            port,
            db: db.unwrap_or(0),
            username,
            password,
            connect_timeout: connect_timeout.or(socket_timeout),
            unix_socket: unix.then(|| host.clone()),
            host,
        })
    }
}

/// Whether the URL names a unix socket, and the part after its scheme;
/// or why the scheme is refused.
fn strip_scheme(url: &str) -> Result<(bool, &str), String> {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    match scheme {
        "redis" => Ok((false, rest)),
        "redis+socket" | "unix" | "socket" => Ok((true, rest)),
        "rediss" => Err(
            "TLS (rediss://) is not supported: this client speaks plain TCP; \
            reach a TLS-only Redis through a local TLS tunnel (stunnel, spiped) and use redis://"
                .to_string(),
        ),
        _ => Err("it must start with redis:// (or redis+socket:// for a unix socket)".to_string()),
    }
}

/// The `key=value` pairs of a query (`key` alone is `key=`).
fn query_pairs(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query
        .split('&')
        .filter(|kv| !kv.is_empty())
        .map(|kv| kv.split_once('=').unwrap_or((kv, "")))
}

/// `user:password` or `:password` (each percent-encoded); a user needs a password.
fn parse_userinfo(userinfo: &str) -> Result<(Option<String>, Option<String>), String> {
    let Some((user, password)) = userinfo.split_once(':') else {
        return Err(
            "a user name needs a password (redis://USER:PASSWORD@host, or \
             redis://:PASSWORD@host without a user)"
                .to_string(),
        );
    };
    let user = percent_decode(user).map_err(|e| format!("the user name: {e}"))?;
    let password = percent_decode(password).map_err(|e| format!("the password: {e}"))?;
    Ok(((!user.is_empty()).then_some(user), Some(password)))
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`.
fn parse_host_port(hostport: &str) -> Result<(String, u16), String> {
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (host, after) = v6
            .split_once(']')
            .ok_or("an IPv6 address must be closed by ']'")?;
        if host.parse::<std::net::Ipv6Addr>().is_err() {
            return Err(format!("{host:?} is not an IPv6 address"));
        }
        match after {
            "" => (host, None),
            p => (
                host,
                Some(p.strip_prefix(':').ok_or("expected ':' after ']'")?),
            ),
        }
    } else {
        match hostport.rsplit_once(':') {
            Some((h, _)) if h.contains(':') => {
                return Err("an IPv6 address must be in brackets ([::1]:6379)".to_string())
            }
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err("the host is empty".to_string());
    }
    let port = match port {
        None => 6379,
        Some(p) => p
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or("the port is not a number from 1 to 65535")?,
    };
    Ok((host.to_string(), port))
}

fn parse_db(d: &str) -> Result<u32, String> {
    d.parse()
        .map_err(|_| format!("the database {d:?} is not a number"))
}

fn parse_timeout(key: &str, value: &str) -> Result<Duration, String> {
    let secs: f64 = value
        .parse()
        .map_err(|_| format!("{key}={value:?} is not a number of seconds"))?;
    // Also refuses NaN, which no range contains.
    if !(secs > 0.0 && secs <= MAX_TIMEOUT_SECS) {
        return Err(format!(
            "{key}={value} is out of range (more than 0, at most {MAX_TIMEOUT_SECS} seconds)"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Encodes every byte but letters, digits and `-._~` as `%XX`, so that a
/// user name holding `:`, `@` or `/` reads back as itself.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` escapes; the result must be UTF-8.
fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or("a '%' must be followed by two hex digits (write '%25' for '%')")?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "the percent-encoded bytes are not UTF-8".to_string())
}

/// Letters, digits and `.-_` (names), `:[]` (IPv6 addresses), `%` (an IPv6
/// zone): anything else (a space, a control byte, `#`) is no host.
fn is_host_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || ".-_:[]%".contains(c)
}

/// `url` with its password replaced by `**` (the whole user part when it
/// has no ':'), for URLs that may not even parse: what error messages show.
/// A URL without a scheme is masked too: it is still somebody's password.
pub(crate) fn mask_password(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (format!("{scheme}://"), rest),
        None => (String::new(), url),
    };
    let Some((userinfo, host)) = rest.rsplit_once('@') else {
        return url.to_string();
    };
    let user = match userinfo.split_once(':') {
        Some((user, _)) => format!("{user}:"),
        None => String::new(),
    };
    format!("{scheme}{user}**@{host}")
}

impl fmt::Display for RedisUrl {
    /// `redis://[user]:**@host:port/db` with a password, else `redis://host:port/db`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.unix_socket {
            Some(_) => "redis+socket://",
            None => "redis://",
        };
        f.write_str(scheme)?;
        if self.password.is_some() {
            let user = percent_encode(self.username.as_deref().unwrap_or(""));
            write!(f, "{user}:**@")?;
        }
        if let Some(path) = &self.unix_socket {
            return write!(f, "{path}?virtual_host={}", self.db);
        }
        if self.host.contains(':') {
            write!(f, "[{}]", self.host)?;
        } else {
            f.write_str(&self.host)?;
        }
        write!(f, ":{}/{}", self.port, self.db)
    }
}

impl fmt::Debug for RedisUrl {
    /// Like `Display`: the password stays out of logs and panic messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisUrl({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_host_port_db_and_defaults() {
        let u = RedisUrl::parse("redis://127.0.0.1:6380/2").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.db), ("127.0.0.1", 6380, 2));
        let u = RedisUrl::parse("redis://example").unwrap();
        assert_eq!((u.host.as_str(), u.port, u.db), ("example", 6379, 0));
        let u = RedisUrl::parse("redis://:secret@h:1/").unwrap();
        assert_eq!(u.password.as_deref(), Some("secret"));
        assert_eq!(u.username, None);
        assert_eq!(u.to_string(), "redis://:**@h:1/0");
    }

    #[test]
    fn rejects_what_it_cannot_use() {
        for bad in [
            "http://x",
            "redis://",
            "redis://h:port",
            "redis://h/x",
            "redis://h:0",
            "redis://h:70000",
            "redis://::1:6379",
            "redis://[::1",
            "redis://[nope]:1",
            "redis://[::1]x",
        ] {
            assert!(RedisUrl::parse(bad).is_err(), "{bad}");
        }
    }

    /// What Celery users write.
    #[test]
    fn reads_the_urls_celery_users_write() {
        let u = RedisUrl::parse("redis://alice:pw@host/0").unwrap();
        assert_eq!(u.username.as_deref(), Some("alice"));
        assert_eq!(u.password.as_deref(), Some("pw"));
        assert_eq!((u.host.as_str(), u.port, u.db), ("host", 6379, 0));

        let u = RedisUrl::parse("redis://:p%40ss%3Aw%25rd@host:6380/3").unwrap();
        assert_eq!(u.password.as_deref(), Some("p@ss:w%rd"));
        assert_eq!((u.port, u.db), (6380, 3));

        let u = RedisUrl::parse("redis://h:1/2?socket_timeout=5").unwrap();
        assert_eq!((u.host.as_str(), u.db), ("h", 2), "the query is not the db");
        assert_eq!(u.connect_timeout, Some(Duration::from_secs(5)));
        let u =
            RedisUrl::parse("redis://h?socket_timeout=5&socket_connect_timeout=0.5&db=4").unwrap();
        assert_eq!(u.connect_timeout, Some(Duration::from_millis(500)));
        assert_eq!(u.db, 4);

        let u = RedisUrl::parse("redis://[::1]:6379/0").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 6379));
        assert_eq!(u.to_string(), "redis://[::1]:6379/0");
        let u = RedisUrl::parse("redis+socket://:p%40ss@/run/redis.sock?virtual_host=3").unwrap();
        assert_eq!(u.unix_socket.as_deref(), Some("/run/redis.sock"));
        assert_eq!((u.password.as_deref(), u.db), (Some("p@ss"), 3));
        assert_eq!(
            u.to_string(),
            "redis+socket://:**@/run/redis.sock?virtual_host=3"
        );
        let u = RedisUrl::parse("unix:///run/redis.sock?db=1").unwrap();
        assert_eq!(
            (u.unix_socket.as_deref(), u.db),
            (Some("/run/redis.sock"), 1)
        );
        let u = RedisUrl::parse("redis://[::1]").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 6379));
    }

    #[test]
    fn refuses_each_unsupported_form_with_a_reason() {
        let why = |url: &str| RedisUrl::parse(url).unwrap_err().to_string();
        assert!(
            why("rediss://h:6380/0").contains("TLS"),
            "{}",
            why("rediss://h")
        );
        assert!(why("redis+socket://tmp/r.sock").contains("absolute path"));
        assert!(
            why("redis://h/0?ssl_cert_reqs=none").contains("\"ssl_cert_reqs\" is not supported")
        );
        assert!(why("redis://h/0?socket_timeout=NaN").contains("socket_timeout"));
        assert!(why("redis://h/0?socket_timeout=-1").contains("out of range"));
        assert!(why("redis://h/1?db=2").contains("different databases"));
        assert!(why("redis://:p%4@h").contains("two hex digits"));
        assert!(why("redis://:%ff@h").contains("not UTF-8"));
        assert!(why("redis://alice@h").contains("needs a password"));
    }

    /// No password in anything this module prints.
    #[test]
    fn the_password_is_masked_in_display_debug_and_errors() {
        let u = RedisUrl::parse("redis://alice:s3cret@h:1/2").unwrap();
        assert_eq!(u.to_string(), "redis://alice:**@h:1/2");
        assert!(!format!("{u:?}").contains("s3cret"), "{u:?}");
        for bad in [
            "redis://:s3cret@h:port/0",
            "redis://alice:s3cret@h/0?nope=1",
            "rediss://:s3cret@h/0",
            "redis://s3cret@h/0",
        ] {
            let e = RedisUrl::parse(bad).unwrap_err().to_string();
            assert!(!e.contains("s3cret"), "{e}");
            assert!(e.contains("**@h"), "{e}");
        }
    }

    #[test]
    fn never_panics_on_odd_input() {
        for odd in [
            "redis://@",
            "redis://:@/",
            "redis://[]",
            "redis://%",
            "redis://h?&&=",
            "redis://h/?db=",
        ] {
            let _ = RedisUrl::parse(odd);
        }
    }

    /// Found by the `redis_url` fuzz target: a user name with `@` or `:`
    /// was shown unencoded, so the shown URL read back as another URL.
    #[test]
    fn a_user_name_with_reserved_characters_reads_back_from_its_display() {
        let u = RedisUrl::parse("redis://a%40b%3Ac:pw@h/0").unwrap();
        assert_eq!(u.username.as_deref(), Some("a@b:c"));
        let again = RedisUrl::parse(&u.to_string()).unwrap();
        assert_eq!(again.username.as_deref(), Some("a@b:c"), "{u}");
        assert_eq!(again.host, "h");
    }

    #[test]
    fn a_bad_url_does_not_print_its_password() {
        let e = RedisUrl::parse("redis://:hunter2@h:port/0").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(e.to_string().contains("port is not a number"), "{e}");
    }

    #[test]
    fn a_password_with_a_question_mark_is_read_whole_and_never_printed() {
        // The user part is read before the query is split off: otherwise
        // the password's tail after '?' becomes an "option", and the error
        // about it prints it.
        let u = RedisUrl::parse("redis://:sec?ret@h:1/2").unwrap();
        assert_eq!(u.password.as_deref(), Some("sec?ret"));
        assert_eq!((u.host.as_str(), u.port, u.db), ("h", 1, 2));
        let e = RedisUrl::parse("redis://:sec?ret@h:port/0").unwrap_err();
        assert!(!e.to_string().contains("ret"), "{e}");
    }

    #[test]
    fn a_host_with_spaces_or_control_bytes_is_refused() {
        for bad in ["redis://a b:1/0", "redis://a\nb/0", "redis://h#frag"] {
            let got = RedisUrl::parse(bad).map(|u| u.host);
            assert!(got.is_err(), "{bad:?} parsed with host {got:?}");
        }
        for good in [
            "redis://redis_host/0",
            "redis://[::1]:6380/2",
            "redis://10.0.0.1",
        ] {
            assert!(RedisUrl::parse(good).is_ok(), "{good}");
        }
    }
}
