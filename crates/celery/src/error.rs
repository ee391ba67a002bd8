//! Errors of the Celery executor and worker.

use std::fmt;

/// What went wrong talking to Redis or reading a Celery message.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CeleryError {
    /// The URL is not a Redis URL we can use: (url with its password
    /// masked, why).
    BadUrl(String, String),
    /// Could not connect: (url, OS error). Is `redis-server` running there?
    Connect(String, String),
    /// Redis refused the URL's user or password, or wants one the URL
    /// lacks: (url, masked; Redis's reply).
    Auth(String, String),
    /// The connection broke or a read/write failed.
    Io(String),
    /// Redis answered with an error reply.
    Redis(String),
    /// A message or result on the wire is not what Celery writes.
    Protocol(String),
    /// Arguments or a result could not be turned into or out of JSON.
    Json(String),
    /// The executor was shut down; no new tasks.
    Shutdown,
    /// The broker stayed unreachable longer than the reconnect deadline,
    /// or came back without its data (pending futures fail with this error
    /// instead of hanging); the text says which, and whether the task may
    /// still run.
    BrokerLost(String),
    /// No task with this name is registered (submit of an unregistered `fn`).
    NotRegistered(String),
    /// The connection broke after the task message was sent and before
    /// Redis confirmed it: (task id, why). The task may be queued and run.
    Unconfirmed(String, String),
    /// The worker's process pool cannot start tasks and no new pool could
    /// (its fork server is gone, say): the worker stopped.
    PoolBroken(String),
    /// A worker setting that cannot work (a lease of zero): what to change.
    Config(String),
}

impl CeleryError {
    pub(crate) fn io(e: std::io::Error) -> CeleryError {
        CeleryError::Io(e.to_string())
    }

    /// True for errors after which the connection must be reopened.
    pub fn is_connection(&self) -> bool {
        matches!(self, CeleryError::Io(_) | CeleryError::Connect(..))
    }
}

impl fmt::Display for CeleryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CeleryError::BadUrl(u, why) => write!(f, "bad Redis URL {u:?}: {why}"),
            CeleryError::Connect(u, e) => write!(
                f,
                "cannot connect to Redis at {u}: {e} (is redis-server running there?)"
            ),
            CeleryError::Auth(u, e) => write!(
                f,
                "Redis at {u} refused to log in ({e}): check the user and password in the \
                 URL (redis://:PASSWORD@host or redis://USER:PASSWORD@host, percent-encoded)"
            ),
            CeleryError::Io(e) => write!(f, "Redis connection failed: {e}"),
            CeleryError::Redis(e) if e.starts_with("NOAUTH") => write!(
                f,
                "Redis error: {e} (the server wants a password: put it in the URL, \
                 redis://:PASSWORD@host or redis://USER:PASSWORD@host)"
            ),
            CeleryError::Redis(e) => write!(f, "Redis error: {e}"),
            CeleryError::Protocol(e) => write!(f, "not a Celery message: {e}"),
            CeleryError::Json(e) => write!(f, "JSON: {e}"),
            CeleryError::Shutdown => f.write_str("the Celery executor has been shut down"),
            CeleryError::BrokerLost(e) => write!(
                f,
                "lost the Redis broker; the task's result is unknown: {e}"
            ),
            CeleryError::Unconfirmed(id, e) => write!(
                f,
                "the connection to Redis broke after task {id} was sent and before Redis \
                 confirmed it ({e}): the task may be queued and may run, but this executor \
                 will not see its result; submitting it again may run it twice"
            ),
            CeleryError::NotRegistered(n) => write!(
                f,
                "no task is registered for {n}: register the fn under a Celery task name first"
            ),
            CeleryError::Config(e) => write!(f, "bad worker setting: {e}"),
            CeleryError::PoolBroken(why) => write!(
                f,
                "the process pool cannot start tasks and could not be rebuilt ({why}); \
                 the tasks this worker fetched went back to their queues: restart the worker"
            ),
        }
    }
}

impl std::error::Error for CeleryError {}

impl From<serde_json::Error> for CeleryError {
    fn from(e: serde_json::Error) -> Self {
        CeleryError::Json(e.to_string())
    }
}
