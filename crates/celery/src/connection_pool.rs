//! A small pool of Redis connections to one server.
//!
//! `with` lends an idle connection (or opens one), runs the commands, and
//! keeps the connection if fewer than `max_idle` are idle. A connection that
//! failed is dropped, and the call is retried once on a fresh one: that is
//! how a client rides over a Redis restart.

use std::sync::Mutex;

use crate::error::CeleryError;
use crate::resp::Connection;
use crate::url::RedisUrl;

/// Connections to one Redis URL.
pub struct Pool {
    url: RedisUrl,
    idle: Mutex<Vec<Connection>>,
    max_idle: usize,
}

impl Pool {
    /// A pool that keeps at most `max_idle` idle connections.
    pub fn new(url: RedisUrl, max_idle: usize) -> Pool {
        Pool {
            url,
            idle: Mutex::new(Vec::new()),
            max_idle: max_idle.max(1),
        }
    }

    /// The server's URL.
    pub fn url(&self) -> &RedisUrl {
        &self.url
    }

    /// Runs `f` on a connection; on a connection error, once more on a new one.
    pub fn with<T>(
        &self,
        mut f: impl FnMut(&mut Connection) -> Result<T, CeleryError>,
    ) -> Result<T, CeleryError> {
        let mut tries = 0;
        loop {
            tries += 1;
            let pooled = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
            let fresh = pooled.is_none();
            let mut conn = match pooled {
                Some(c) => c,
                None => Connection::open(&self.url)?,
            };
            match f(&mut conn) {
                Ok(v) => {
                    let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
                    if idle.len() < self.max_idle {
                        idle.push(conn);
                    }
                    return Ok(v);
                }
                // A pooled connection may be stale (server restarted): retry
                // on a fresh one; a fresh one failing is the answer.
                Err(e) if e.is_connection() && (!fresh || tries < 2) && tries < 3 => {
                    self.idle.lock().unwrap_or_else(|p| p.into_inner()).clear();
                }
                Err(e) => return Err(e),
            }
        }
    }
}
