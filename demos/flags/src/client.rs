//! The HTTP client: one `ureq` agent, shared by every worker, with timeouts
//! on everything and a cap on the body size.
//!
//! The book's scripts call `httpx.get(url, timeout=...)` and then
//! `raise_for_status()`. Here [`Client::get_flag`] does the same and sorts
//! every way a request can go wrong into one [`FetchError`]:
//!
//! | what happened                       | error                         | flags2 bucket |
//! |-------------------------------------|-------------------------------|---------------|
//! | `404`                               | [`FetchError::NotFound`]      | not found     |
//! | any other status but `200`          | [`FetchError::Http`]          | error         |
//! | body longer than the cap            | [`FetchError::TooLarge`]      | error         |
//! | a timeout (which one, how long)     | [`FetchError::Timeout`]       | error         |
//! | reset, refused, garbage             | [`FetchError::Transport`]     | error         |
//!
//! Only a 404 is "not found", exactly as in the book. A server that hangs
//! is cut off by the per-read and per-call timeouts; a server that streams
//! forever is cut off by the body cap. Nothing here can block for ever.

use std::fmt;
use std::time::Duration;

use ureq::Agent;

/// The largest body we accept. The biggest real flag is 36,332 bytes; a
/// megabyte leaves room for any honest server and stops a dishonest one.
pub const DEFAULT_MAX_BODY: u64 = 1 << 20;

/// How many idle keep-alive connections the client keeps: the flags2
/// programs' concurrency cap.
const MAX_IDLE: usize = 1000;

/// Timeouts and limits of a [`Client`].
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Establishing the TCP connection.
    pub connect_timeout: Duration,
    /// The whole exchange: sending the request, the headers, the body.
    pub request_timeout: Duration,
    /// Silence between two reads from the socket.
    pub read_timeout: Duration,
    /// Maximum body size in bytes.
    pub max_body: u64,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(5),
            max_body: DEFAULT_MAX_BODY,
        }
    }
}

impl ClientConfig {
    /// The same limits with every timeout set to `timeout` (the command line's
    /// `--timeout`): connect, per read and the whole request.
    pub fn with_timeout(timeout: Duration) -> Self {
        ClientConfig {
            connect_timeout: timeout,
            request_timeout: timeout,
            read_timeout: timeout,
            ..ClientConfig::default()
        }
    }
}

/// Why a flag could not be fetched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// The server answered 404: there is no flag for this code.
    NotFound {
        /// The URL that was asked for.
        url: String,
    },
    /// The server answered with another status than 200 or 404.
    Http {
        /// The status code, e.g. 418.
        status: u16,
        /// Its reason phrase, e.g. `I'm a Teapot`.
        reason: String,
    },
    /// The body was longer than the cap.
    TooLarge {
        /// The cap in bytes.
        limit: u64,
    },
    /// One of the client's timeouts ran out.
    Timeout {
        /// The URL that was asked for.
        url: String,
        /// Which limit ran out.
        stage: TimeoutStage,
        /// That limit's length.
        after: Duration,
    },
    /// The request did not complete: refused, reset, or the server spoke
    /// something that is not HTTP.
    Transport(String),
}

/// Which of a [`ClientConfig`]'s timeouts ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeoutStage {
    /// Resolving the host and connecting ([`ClientConfig::connect_timeout`]).
    Connect,
    /// The server sent nothing for a whole [`ClientConfig::read_timeout`].
    Silence,
    /// The whole exchange took longer than [`ClientConfig::request_timeout`].
    Request,
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::NotFound { url } => write!(f, "not found: {url}"),
            FetchError::Http { status, reason } => write!(f, "HTTP error {status} - {reason}"),
            FetchError::TooLarge { limit } => {
                write!(f, "response body larger than {limit} bytes")
            }
            FetchError::Timeout { url, stage, after } => {
                write!(f, "timed out after {after:?}: ")?;
                match stage {
                    TimeoutStage::Connect => write!(f, "could not connect for {url}"),
                    TimeoutStage::Silence => write!(f, "the server went silent during {url}"),
                    TimeoutStage::Request => {
                        write!(f, "no complete response for {url} within the request limit")
                    }
                }
            }
            FetchError::Transport(msg) => f.write_str(msg),
        }
    }
}

impl std::error::Error for FetchError {}

/// The reason phrase of a status code. `ureq` 3 does not keep the phrase of
/// the status line, so we take the standard one; for 418 we use Python's
/// spelling (`http.HTTPStatus.IM_A_TEAPOT`), which is what the book prints and
/// what our flag server sends.
pub fn reason_phrase(status: u16) -> String {
    if status == 418 {
        return "I'm a Teapot".to_string();
    }
    ureq::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("Unknown")
        .to_string()
}

/// The URL of a flag: `{base}/{cc}/{cc}.gif` with `cc` in lower case, as the
/// book builds it.
pub fn flag_url(base_url: &str, cc: &str) -> String {
    let cc = cc.to_ascii_lowercase();
    format!("{}/{cc}/{cc}.gif", base_url.trim_end_matches('/'))
}

/// A cheap-to-clone HTTP client (the agent's connection pool is shared, so
/// workers reuse keep-alive connections).
#[derive(Clone)]
pub struct Client {
    agent: Agent,
    max_body: u64,
    config: ClientConfig,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("max_body", &self.max_body)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client with the given timeouts and limits.
    pub fn new(config: &ClientConfig) -> Self {
        let agent: Agent = Agent::config_builder()
            // We classify statuses ourselves: 404 is not an error here.
            .http_status_as_error(false)
            .max_redirects(3)
            .timeout_connect(Some(config.connect_timeout))
            .timeout_per_call(Some(config.request_timeout))
            .timeout_per_read(Some(config.read_timeout))
            .user_agent("flags-rs/0.1")
            // Keep every worker's connection for reuse (ureq keeps 3 per
            // host by default; the flags2 programs run up to 1000 workers).
            .max_idle_connections(MAX_IDLE)
            .max_idle_connections_per_host(MAX_IDLE)
            .build()
            .into();
        Client {
            agent,
            max_body: config.max_body,
            config: config.clone(),
        }
    }

    /// Sorts a `ureq` error: a timeout names its limit, the rest is transport.
    fn failure(&self, url: &str, error: ureq::Error) -> FetchError {
        use ureq::Timeout as T;
        let ureq::Error::Timeout(which) = error else {
            return FetchError::Transport(error.to_string());
        };
        let (stage, after) = match which {
            T::Resolve | T::Connect => (TimeoutStage::Connect, self.config.connect_timeout),
            T::PerRead => (TimeoutStage::Silence, self.config.read_timeout),
            _ => (TimeoutStage::Request, self.config.request_timeout),
        };
        FetchError::Timeout {
            url: url.to_string(),
            stage,
            after,
        }
    }

    /// GETs `url` and returns the body of a 200 response.
    pub fn get(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        let mut response = self
            .agent
            .get(url)
            .call()
            .map_err(|e| self.failure(url, e))?;
        let status = response.status().as_u16();
        if status == 404 {
            return Err(FetchError::NotFound {
                url: url.to_string(),
            });
        }
        if status != 200 {
            return Err(FetchError::Http {
                status,
                reason: reason_phrase(status),
            });
        }
        response
            .body_mut()
            .with_config()
            .limit(self.max_body)
            .read_to_vec()
            .map_err(|e| match e {
                ureq::Error::BodyExceedsLimit(limit) => FetchError::TooLarge { limit },
                other => self.failure(url, other),
            })
    }

    /// The book's `get_flag(base_url, cc)`: the image bytes of one flag.
    pub fn get_flag(&self, base_url: &str, cc: &str) -> Result<Vec<u8>, FetchError> {
        self.get(&flag_url(base_url, cc))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_lower_case() {
        assert_eq!(
            flag_url("http://h:1/flags/", "BR"),
            "http://h:1/flags/br/br.gif"
        );
    }

    #[test]
    fn messages_read_like_the_book() {
        let e = FetchError::Http {
            status: 418,
            reason: reason_phrase(418),
        };
        assert_eq!(e.to_string(), "HTTP error 418 - I'm a Teapot");
        assert_eq!(reason_phrase(503), "Service Unavailable");
        assert_eq!(reason_phrase(799), "Unknown");
    }

    #[test]
    fn a_refused_connection_is_a_transport_error() {
        // Bind then drop a listener: its port is (almost surely) closed now.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let client = Client::new(&ClientConfig::with_timeout(Duration::from_secs(2)));
        let err = client
            .get_flag(&format!("http://127.0.0.1:{port}/flags"), "br")
            .unwrap_err();
        assert!(matches!(err, FetchError::Transport(_)), "{err:?}");
    }
}
