//! `redis://[:password@]host[:port][/db]` URLs, as Celery and redis-py spell them.
//!
//! Query parameters (`?db=0`, `?socket_timeout=5`) are refused rather than
//! ignored, and an error shows the URL with `***` for its password (errors
//! end up in logs).

use std::fmt;

use crate::error::CeleryError;

/// A parsed Redis URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RedisUrl {
    /// Host name or address.
    pub host: String,
    /// TCP port (default 6379).
    pub port: u16,
    /// Database number (default 0).
    pub db: u32,
    /// Password, if the URL has one.
    pub password: Option<String>,
}

impl RedisUrl {
    /// Parses `redis://host:port/db`.
    pub fn parse(url: &str) -> Result<RedisUrl, CeleryError> {
        // The URL in an error message without its password (errors end up
        // in logs).
        let bad = |why: &str| CeleryError::BadUrl(redacted(url), why.to_string());
        let rest = url
            .strip_prefix("redis://")
            .ok_or_else(|| bad("it must start with redis://"))?;
        let (auth, rest) = match rest.rsplit_once('@') {
            Some((a, r)) => (Some(a), r),
            None => (None, rest),
        };
        if rest.contains(['?', '#']) {
            return Err(bad(
                "query parameters are not supported: give the database as redis://host:port/db",
            ));
        }
        let password = auth.map(|a| a.rsplit_once(':').map_or(a, |(_, p)| p).to_string());
        let (hostport, db) = match rest.split_once('/') {
            Some((h, "")) => (h, 0),
            Some((h, d)) => (
                h,
                d.parse().map_err(|_| bad("the database is not a number"))?,
            ),
            None => (rest, 0),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (h, p.parse().map_err(|_| bad("the port is not a number"))?),
            None => (hostport, 6379),
        };
        if host.is_empty() {
            return Err(bad("the host is empty"));
        }
        if !host.chars().all(is_host_char) {
            return Err(bad(
                "the host has a character no host name or address has (space, control, ...)",
            ));
        }
        Ok(RedisUrl {
            host: host.to_string(),
            port,
            db,
            password,
        })
    }
}

/// Letters, digits and `.-_` (names), `:[]` (IPv6 addresses), `%` (an IPv6
/// zone).
fn is_host_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || ".-_:[]%".contains(c)
}

/// `url` with its password replaced by `***`.
fn redacted(url: &str) -> String {
    let Some((auth, host)) = url.rsplit_once('@') else {
        return url.to_string();
    };
    let (scheme, auth) = auth.split_once("://").unwrap_or(("", auth));
    let user = auth.rsplit_once(':').map_or("", |(user, _)| user);
    let scheme = if scheme.is_empty() {
        String::new()
    } else {
        format!("{scheme}://")
    };
    format!("{scheme}{user}:***@{host}")
}

impl fmt::Display for RedisUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "redis://{}:{}/{}", self.host, self.port, self.db)
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
        assert_eq!(u.to_string(), "redis://h:1/0");
    }

    #[test]
    fn rejects_what_it_cannot_use() {
        for bad in ["http://x", "redis://", "redis://h:port", "redis://h/x"] {
            assert!(RedisUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_bad_url_does_not_print_its_password() {
        let e = RedisUrl::parse("redis://:hunter2@h:port/0").unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
        assert!(e.to_string().contains("port is not a number"), "{e}");
    }

    #[test]
    fn a_query_string_is_refused_not_taken_for_the_host() {
        let e = RedisUrl::parse("redis://localhost?db=0").map(|u| u.host);
        assert!(e.is_err(), "parsed with host {e:?}");
        let e = e.unwrap_err().to_string();
        assert!(e.contains("redis://host:port/db"), "{e}");
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
