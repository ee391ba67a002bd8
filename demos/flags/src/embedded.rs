//! The `-s LABEL` servers. The book needs nginx, Vaurien or `slow_server.py`
//! running before its clients can do anything; here `LOCAL`, `DELAY` and
//! `ERROR` start a [`FlagServer`] inside the client process, on 127.0.0.1
//! with a free port, so every program works on a fresh machine with no
//! network. `--url` points the client at any other server instead; `REMOTE`
//! is the book's public site.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::server::{FlagServer, ServerConfig, ServerError};

/// The book's public flag site (2e).
pub const REMOTE_URL: &str = "https://www.fluentpython.com/data/flags";

/// The delay of the `DELAY` server and of half the `ERROR` responses: the
/// book's Vaurien set-up (`--behavior-delay-sleep .5`).
pub const DELAY: Duration = Duration::from_millis(500);

/// A `-s` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerLabel {
    /// Flags at full speed.
    Local,
    /// Every response 0.5 s late.
    Delay,
    /// 25% of responses are `418 I'm a Teapot`; half are 0.5 s late.
    Error,
    /// The book's public site.
    Remote,
}

impl ServerLabel {
    /// The label as the reports print it.
    pub fn name(self) -> &'static str {
        match self {
            ServerLabel::Local => "LOCAL",
            ServerLabel::Delay => "DELAY",
            ServerLabel::Error => "ERROR",
            ServerLabel::Remote => "REMOTE",
        }
    }

    /// The embedded server's settings for this label (`None` for `REMOTE`).
    pub fn server_config(self) -> Option<ServerConfig> {
        let base = ServerConfig {
            // The client may open up to 1000 connections (-m): never refuse them.
            max_connections: 1024,
            ..ServerConfig::default()
        };
        match self {
            ServerLabel::Local => Some(base),
            ServerLabel::Delay => Some(ServerConfig {
                delay: DELAY,
                ..base
            }),
            ServerLabel::Error => Some(ServerConfig {
                delay: DELAY,
                delay_rate: 0.5,
                error_rate: 0.25,
                ..base
            }),
            ServerLabel::Remote => None,
        }
    }
}

impl fmt::Display for ServerLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An unknown `-s` label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLabel(pub String);

impl fmt::Display for BadLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "--server LABEL must be one of DELAY, ERROR, LOCAL, REMOTE (got {:?})",
            self.0
        )
    }
}

impl std::error::Error for BadLabel {}

impl FromStr for ServerLabel {
    type Err = BadLabel;

    /// Case-insensitive, as the book's `args.server.upper()`.
    fn from_str(s: &str) -> Result<Self, BadLabel> {
        match s.to_ascii_uppercase().as_str() {
            "LOCAL" => Ok(ServerLabel::Local),
            "DELAY" => Ok(ServerLabel::Delay),
            "ERROR" => Ok(ServerLabel::Error),
            "REMOTE" => Ok(ServerLabel::Remote),
            _ => Err(BadLabel(s.to_string())),
        }
    }
}

/// Where the flags come from: a base URL, and the embedded server behind it
/// if we started one (it stops when the `Site` is dropped).
#[derive(Debug)]
pub struct Site {
    /// The label, for the report.
    pub label: ServerLabel,
    /// The base URL, e.g. `http://127.0.0.1:40123/flags`.
    pub base_url: String,
    /// Whether the base URL came from `--url` (the label then played no part).
    pub from_url: bool,
    server: Option<FlagServer>,
}

impl Site {
    /// `--url` if given, else the label's server (started here for LOCAL,
    /// DELAY and ERROR).
    pub fn open(label: ServerLabel, url: Option<&str>) -> Result<Site, ServerError> {
        if let Some(url) = url {
            return Ok(Site {
                label,
                base_url: url.trim_end_matches('/').to_string(),
                from_url: true,
                server: None,
            });
        }
        match label.server_config() {
            None => Ok(Site {
                label,
                base_url: REMOTE_URL.to_string(),
                from_url: false,
                server: None,
            }),
            Some(config) => {
                let server = FlagServer::start(config)?;
                Ok(Site {
                    label,
                    base_url: server.base_url(),
                    from_url: false,
                    server: Some(server),
                })
            }
        }
    }

    /// What the report's first line calls this site: the label (`DELAY site:
    /// ...`, as the book prints it), or `URL` when `--url` chose the server.
    pub fn banner_name(&self) -> &'static str {
        if self.from_url {
            "URL"
        } else {
            self.label.name()
        }
    }

    /// Whether the flags are served from inside this process.
    pub fn is_embedded(&self) -> bool {
        self.server.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_parse_case_insensitively() {
        assert_eq!("delay".parse(), Ok(ServerLabel::Delay));
        assert_eq!("Error".parse(), Ok(ServerLabel::Error));
        assert!("fast".parse::<ServerLabel>().is_err());
        assert!(ServerLabel::Remote.server_config().is_none());
    }

    #[test]
    fn url_wins_over_the_label() {
        let site = Site::open(ServerLabel::Delay, Some("http://example.invalid/flags/")).unwrap();
        assert_eq!(site.base_url, "http://example.invalid/flags");
        assert!(!site.is_embedded());
        assert_eq!(
            site.banner_name(),
            "URL",
            "not DELAY: the label played no part"
        );
        let local = Site::open(ServerLabel::Local, None).unwrap();
        assert!(local.is_embedded());
        assert!(local.base_url.starts_with("http://127.0.0.1:"));
        assert_eq!(local.banner_name(), "LOCAL");
    }
}
