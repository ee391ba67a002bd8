//! `redis://[:password@]host[:port][/db]` URLs, as Celery and redis-py spell them.

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
        let bad = |why: &str| CeleryError::BadUrl(url.to_string(), why.to_string());
        let rest = url
            .strip_prefix("redis://")
            .ok_or_else(|| bad("it must start with redis://"))?;
        let (auth, rest) = match rest.rsplit_once('@') {
            Some((a, r)) => (Some(a), r),
            None => (None, rest),
        };
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
        Ok(RedisUrl {
            host: host.to_string(),
            port,
            db,
            password,
        })
    }
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
}
