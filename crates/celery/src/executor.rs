//! The client: [`CeleryExecutor`] sends task messages and completes futures
//! from the result backend.
//!
//! ```text
//! connect ──► PSUBSCRIBE celery-task-meta-<prefix>-*   (listener's socket, confirmed
//!                                                         before the first send)
//! submit ──► pending[id] = promise, id = <prefix>-...
//!        └─► LPUSH <queue> <message>                         (broker pool)
//! listener ◄─ "pmessage" (the worker's PUBLISH) ──► complete the promise
//! ```
//!
//! A task's only round trip on the client is its send: the executor names
//! its tasks under an id prefix of its own, and one pattern subscription
//! hears all their results. A message made elsewhere (`send` with another
//! id) is subscribed to by its id, as Celery's client does:
//!
//! ```text
//! send ──► SUBSCRIBE celery-task-meta-<id> (listener's socket), then LPUSH
//! listener ◄─ "subscribe" confirmation ──► GET celery-task-meta-<id>  (catches a result
//!          │                                 stored before the subscription took effect)
//!          ◄─ "message" ──► complete the promise, UNSUBSCRIBE
//! ```
//!
//! One listener thread per executor owns the subscribed connection; it ends
//! when the executor is dropped (its socket is shut down, the blocked read
//! returns). If the backend connection breaks (or a GET of results fails:
//! the same, since only a GET brings a result published before its
//! subscription), the listener reconnects,
//! subscribes again (the pattern, and every pending id outside it) and
//! GETs each pending id once, so no result
//! stored in the meantime is missed; if it cannot reconnect within
//! `reconnect_timeout`, every pending future fails with
//! [`CeleryError::BrokerLost`] instead of hanging. A server that came back
//! without its data (its epoch key, [`EPOCH_KEY`], gone or changed) fails
//! with `BrokerLost` the pending futures whose messages it lost (each send
//! reads the epoch its message went to), not the ones sent after the loss.
//! A database emptied on a live server (`FLUSHALL`), where no connection
//! breaks, is told by the server itself ([`watch_epoch`]).
//! When the broker is a server of its own, a second thread watches it
//! ([`watch_broker`]).
//!
//! The listener is the only thread that delivers results, so it runs no
//! user code it can avoid: done-callbacks go to a [`CallbackRunner`] (a
//! callback may submit to this executor and wait, or drop its last handle),
//! and what it cannot avoid (a result's `Deserialize`, wakers, the `Drop` of
//! a result nobody holds) runs contained, so a panic there costs that one
//! result, never the listener.

use std::collections::HashMap;
use std::io::Write;
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread::{JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use future::trace::Recorder;
use future::{
    contain, panic_message, promise, CallbackRunner, DynError, Future, Interrupt, TaskError,
    TaskReport,
};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::connection_pool::Pool;
use crate::error::CeleryError;
use crate::message::{TaskMessage, SEP};
use crate::meta::{parse_final_reported, result_key, Outcome, Reported, MAX_RESULT_TTL};
use crate::registry::Registry;
use crate::resp::{encode, Connection, Reply, Stream};
use crate::url::RedisUrl;

/// Completes one future: attaches its report (if our worker stored one),
/// decodes the result and hands the future's callbacks to the runner.
type Completer =
    Box<dyn FnOnce(Result<Value, TaskError>, Option<TaskReport>, &CallbackRunner) + Send>;

/// A task whose result has not come yet.
struct Pending {
    complete: Completer,
    /// Cancels the user's future (for `shutdown(cancel_futures = true)`).
    cancel: Box<dyn FnOnce() -> bool + Send>,
    /// The broker epoch its message was queued under (read in the LPUSH's
    /// own transaction); `None` while the send is under way. A lost broker
    /// fails only the futures whose message went to the data it lost.
    epoch: Option<Vec<u8>>,
    /// The user's future's [`Future::id`], for `interrupt`.
    future_id: usize,
    /// `interrupt` broadcast a terminating revoke for it.
    interrupted: bool,
}

/// Settings of a [`CeleryExecutor`]; see [`CeleryExecutor::builder`].
#[derive(Clone)]
pub struct Builder {
    broker: String,
    backend: Option<String>,
    queue: String,
    result_expires: Duration,
    pool_size: usize,
    reconnect_timeout: Duration,
    registry: Registry,
    trace: Option<Recorder>,
}

impl Builder {
    /// The result backend's URL (default: the broker's).
    pub fn backend(mut self, url: &str) -> Self {
        self.backend = Some(url.to_string());
        self
    }

    /// The queue tasks go to (default `celery`, Celery's default).
    pub fn queue(mut self, name: &str) -> Self {
        self.queue = name.to_string();
        self
    }

    /// How long results this client writes (revocations) live (default 1
    /// day, Celery's), from 1 s to 100 years as the worker keeps them:
    /// Redis refuses an expiry past about 292 million years, and a refused
    /// REVOKED record would let a cancelled task run.
    pub fn result_expires(mut self, d: Duration) -> Self {
        self.result_expires = d.clamp(Duration::from_secs(1), Duration::from_secs(MAX_RESULT_TTL));
        self
    }

    /// How many idle broker connections to keep for concurrent submitters (default 4).
    pub fn pool_size(mut self, n: usize) -> Self {
        self.pool_size = n.max(1);
        self
    }

    /// How long the listener keeps trying to reconnect before pending futures
    /// fail with [`CeleryError::BrokerLost`] (default 30 s).
    pub fn reconnect_timeout(mut self, d: Duration) -> Self {
        self.reconnect_timeout = d;
        self
    }

    /// The tasks `submit` can name (by `fn` address).
    pub fn registry(mut self, registry: Registry) -> Self {
        self.registry = registry;
        self
    }

    /// Records every task's submission and the arrival of its result in
    /// `recorder`, for a picture of the schedule (`future::trace`). A
    /// client cannot see which worker ran a task or when it started: each
    /// task is drawn "in flight" from its submission to its result, on
    /// lanes `celery <queue> 1`, `2`, ... (as many as were in flight at
    /// once). Default: nothing recorded.
    pub fn trace(mut self, recorder: Recorder) -> Self {
        self.trace = Some(recorder);
        self
    }

    /// Connects (failing now if Redis is unreachable) and starts the listener.
    pub fn connect(self) -> Result<CeleryExecutor, CeleryError> {
        let broker = RedisUrl::parse(&self.broker)?;
        let backend = match &self.backend {
            Some(b) => RedisUrl::parse(b)?,
            None => broker.clone(),
        };
        let broker = Pool::new(broker, self.pool_size);
        // Declare the queue as kombu does, so Python tools see its binding.
        let binding = format!("{q}{SEP}{SEP}{q}", q = self.queue);
        let key = format!("_kombu.binding.{}", self.queue);
        broker.with(|c| {
            c.command(&[b"SADD", key.as_bytes(), binding.as_bytes()])?
                .ok()
        })?;
        // Told of a flush from here on: opened before the epoch is read, so
        // no loss falls between the two unseen.
        let mut first = Connection::open(&backend)?;
        if same_server(broker.url(), &backend) {
            watch_epoch(&mut first)?;
        }
        // In effect before the first send: no result of this executor's
        // tasks can be published unheard (see `Shared::id_prefix`).
        // A server that refuses it (an ACL that grants the result channels
        // as `&celery-task-meta-*`: a pattern must match a granted one
        // literally) gets a subscription per task, as from Celery.
        let prefix = crate::id::new_prefix();
        let id_prefix = psubscribe_now(&mut first, &results_pattern(&prefix))?.then_some(prefix);
        let epoch = broker_epoch(&broker)?;
        let shared = Arc::new(Shared {
            broker,
            backend: Pool::new(backend.clone(), 2),
            queue: self.queue,
            result_expires: self.result_expires,
            reconnect_timeout: self.reconnect_timeout,
            registry: self.registry,
            trace: self.trace,
            pending: Mutex::new(HashMap::new()),
            id_prefix,
            sub_writer: Mutex::new(None),
            closed: AtomicBool::new(false),
            epoch: Mutex::new(Known { epoch, losses: 0 }),
            broker_watch: Mutex::new(None),
            callbacks: CallbackRunner::new("celery-callbacks"),
        });
        *lock(&shared.sub_writer) = Some(first.writer()?);
        let watcher = match same_server(shared.broker.url(), &backend) {
            true => None,
            false => {
                let watcher = start_broker_watch(&shared)?;
                // A loss between the epoch's read and the watch's start.
                check_epoch(&shared)?;
                Some(watcher)
            }
        };
        let weak = Arc::downgrade(&shared);
        let listener = std::thread::Builder::new()
            .name("celery-listener".to_string())
            .spawn(move || listen(weak, backend, first))
            .map_err(CeleryError::io)?;
        Ok(CeleryExecutor {
            shared,
            listener_id: listener.thread().id(),
            listener: Mutex::new(Some(listener)),
            watcher: Mutex::new(watcher),
        })
    }
}

struct Shared {
    broker: Pool,
    backend: Pool,
    queue: String,
    result_expires: Duration,
    reconnect_timeout: Duration,
    registry: Registry,
    /// Where submissions and results are recorded (`Builder::trace`).
    trace: Option<Recorder>,
    pending: Mutex<HashMap<String, Pending>>,
    /// The first 8 hex digits of the ids of the tasks this executor names
    /// (`submit`, `submit_named`): the listener holds one pattern
    /// subscription to their result channels ([`results_pattern`]), made
    /// before the first send and again on every reconnect, so a task sent
    /// under it costs no SUBSCRIBE, no MGET and no UNSUBSCRIBE of its own,
    /// each of which woke the listener. A message sent with another id
    /// (`send` of a message made elsewhere) is subscribed to by its id, as
    /// is every task when the server refused the pattern (`None`).
    id_prefix: Option<String>,
    /// Write side of the listener's subscribed socket (`None` while it reconnects).
    sub_writer: Mutex<Option<Stream>>,
    closed: AtomicBool,
    /// The broker database's epoch as this client last read it: a
    /// different one after a reconnect means the server came back without
    /// its data (and without our messages). See [`EPOCH_KEY`].
    epoch: Mutex<Known>,
    /// The broker watcher's socket, when the broker is not the backend's
    /// server (see [`watch_broker`]); `None` while it reconnects.
    broker_watch: Mutex<Option<Stream>>,
    /// Where the futures' done-callbacks run: never on the listener.
    callbacks: CallbackRunner,
}

/// The broker's epoch as this client last read it, and how many losses of
/// its data it has seen (a send under way across one checks its own).
struct Known {
    epoch: Vec<u8>,
    losses: u64,
}

/// Tells a connection blip from a server that came back without its data.
///
/// The first client to connect to a database stores a random value under
/// this key; every client remembers the value it read and compares it after
/// each reconnect. A server that lost its data has no key (the first client
/// back stores a new value, the others then read one they do not know);
/// a server that kept its data, or a blip, shows the same value.
///
/// The key has no TTL and no client deletes it: whatever decides "lost"
/// must not change with time alone (a TTL, refreshed or not, expires during
/// some uptime, and a blip after it would fail every pending future while
/// its message is still queued). One key per database, shared by every
/// client, so a crashed client leaves nothing behind. It is lost only with
/// the data: a restart without persistence, `FLUSHDB`, or an eviction
/// policy that evicts keys without a TTL (`allkeys-*`), which would evict
/// queued messages too.
const EPOCH_KEY: &[u8] = b"celery-rs-broker-epoch";

/// Reads the broker database's epoch, first storing a fresh one if it has
/// none (atomically: clients racing at the first connect read one value).
fn broker_epoch(broker: &Pool) -> Result<Vec<u8>, CeleryError> {
    let fresh = crate::id::new_task_id();
    broker.with(|c| {
        c.queue(&[b"MULTI"]);
        c.queue(&[b"SET", EPOCH_KEY, fresh.as_bytes(), b"NX"]);
        c.queue(&[b"GET", EPOCH_KEY]);
        c.queue(&[b"EXEC"]);
        c.flush()?;
        for _ in 0..3 {
            c.read_reply()?.ok()?; // OK, QUEUED, QUEUED
        }
        let exec = c.read_reply()?.ok()?.into_array();
        exec.into_iter()
            .nth(1)
            .and_then(Reply::into_bytes)
            .ok_or_else(|| {
                CeleryError::Protocol(
                    "the broker did not return its epoch key in the transaction that set it"
                        .to_string(),
                )
            })
    })
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// LPUSHes the message at most once. The pool retries a command whose
/// connection failed, which rides over a stale pooled connection, but an
/// LPUSH written whole and then unanswered may have been queued: pushing it
/// again would run the task twice, unsaid. So a connection that the server
/// has already closed is found before writing (and the pool retries on a
/// fresh one), and a failure after the write is reported, not retried.
///
/// Returns the broker's epoch the message was queued under: the LPUSH goes
/// in one transaction with the epoch key's read (stored first if a loss
/// took it), so a later loss of the broker's data fails exactly the futures
/// whose messages it took, and not one sent after it.
fn push_once(broker: &Pool, msg: &TaskMessage) -> Result<Vec<u8>, CeleryError> {
    let body = msg.to_json();
    let fresh = crate::id::new_task_id();
    let mut unanswered: Option<String> = None;
    broker.with(|c| {
        // A retry after a whole write: never a second LPUSH.
        if let Some(why) = &unanswered {
            return Err(CeleryError::Unconfirmed(msg.id.clone(), why.clone()));
        }
        if peer_closed(c) {
            return Err(CeleryError::Io(
                "the server closed this pooled connection".to_string(),
            ));
        }
        c.queue(&[b"MULTI"]);
        c.queue(&[b"SET", EPOCH_KEY, fresh.as_bytes(), b"NX"]);
        c.queue(&[b"GET", EPOCH_KEY]);
        c.queue(&[b"LPUSH", msg.queue.as_bytes(), body.as_bytes()]);
        c.queue(&[b"EXEC"]);
        c.flush()?; // an error here: not written whole, never queued
        let mut read = || {
            c.read_reply()
                .inspect_err(|e| unanswered = Some(e.to_string()))
        };
        for _ in 0..4 {
            read()?.ok()?; // OK, QUEUED, QUEUED, QUEUED
        }
        let mut exec = read()?.ok()?.into_array().into_iter();
        let epoch = exec.nth(1).and_then(Reply::into_bytes);
        // An error reply in EXEC's array is that command's failure.
        exec.next().map(Reply::ok).transpose()?;
        epoch.ok_or_else(|| {
            CeleryError::Protocol(
                "the broker did not return its epoch key in the transaction that set it"
                    .to_string(),
            )
        })
    })
}

/// True if the server has closed `c` (a restart, an idle timeout): the
/// closed end reads as end-of-file (or a reset) at once, a live idle one
/// would block. Looks without blocking and without taking any byte.
fn peer_closed(c: &Connection) -> bool {
    let Ok(socket) = c.writer() else { return true };
    let mut byte = [0u8; 1];
    // SAFETY: `socket` is an open descriptor we own for this call; recv(2)
    // writes at most 1 byte into `byte`, which lives across the call.
    // MSG_PEEK leaves any byte in the socket, MSG_DONTWAIT never blocks.
    let n = unsafe {
        libc::recv(
            socket.as_raw_fd(),
            byte.as_mut_ptr().cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    match n {
        0 => true,
        n if n > 0 => false, // bytes waiting: not ours to judge here
        _ => !matches!(
            std::io::Error::last_os_error().kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::Interrupted
        ),
    }
}

/// An executor whose workers are Celery workers (Python's or ours) behind a Redis.
pub struct CeleryExecutor {
    shared: Arc<Shared>,
    listener: Mutex<Option<JoinHandle<()>>>,
    /// The broker watcher, if the broker has a server of its own.
    watcher: Mutex<Option<JoinHandle<()>>>,
    /// So that a drop or a waited shutdown on the listener itself (user code
    /// there: a result's `Drop`) does not join the listener from itself.
    listener_id: ThreadId,
}

impl CeleryExecutor {
    /// Connects to `redis://host:port/db` with the default settings.
    pub fn connect(broker: &str) -> Result<CeleryExecutor, CeleryError> {
        Self::builder(broker).connect()
    }

    /// Settings, starting from Celery's defaults.
    pub fn builder(broker: &str) -> Builder {
        Builder {
            broker: broker.to_string(),
            backend: None,
            queue: "celery".to_string(),
            result_expires: Duration::from_secs(86_400),
            pool_size: 4,
            reconnect_timeout: Duration::from_secs(30),
            registry: Registry::new(),
            trace: None,
        }
    }

    /// The queue tasks are sent to.
    pub fn queue(&self) -> &str {
        &self.shared.queue
    }

    /// The name `f` is registered under: a task crosses the broker by name,
    /// so an unregistered `fn` is refused before anything is sent.
    fn registered_name<A, R>(&self, f: fn(A) -> R) -> Result<String, CeleryError> {
        self.shared
            .registry
            .name_of(f)
            .map(str::to_string)
            .ok_or_else(|| CeleryError::NotRegistered(std::any::type_name_of_val(&f).to_string()))
    }

    /// Submits the registered `fn` `f` with `arg` (sent as `args = [arg]`).
    pub fn submit<A, R>(&self, f: fn(A) -> R, arg: A) -> Result<Future<R>, CeleryError>
    where
        A: Serialize,
        R: DeserializeOwned + Send + 'static,
    {
        let name = self.registered_name(f)?;
        self.submit_named(&name, (arg,))
    }

    /// Submits the registered fallible `fn` `f`: the future gets the `Ok`
    /// value, or fails with the error's type name and message.
    pub fn submit_fallible<A, R, E>(
        &self,
        f: fn(A) -> Result<R, E>,
        arg: A,
    ) -> Result<Future<R>, CeleryError>
    where
        A: Serialize,
        R: DeserializeOwned + Send + 'static,
    {
        let name = self.registered_name(f)?;
        self.submit_named(&name, (arg,))
    }

    /// Sends task `name` (a Python task or ours) with positional `args`,
    /// which must serialize to a JSON array (a tuple: `(1, 2)`, `(x,)`, `()`).
    pub fn submit_named<Args, R>(&self, name: &str, args: Args) -> Result<Future<R>, CeleryError>
    where
        Args: Serialize,
        R: DeserializeOwned + Send + 'static,
    {
        let args = match serde_json::to_value(args)? {
            Value::Null => Value::Array(Vec::new()), // `()`: no arguments
            v => v,
        };
        if !args.is_array() {
            return Err(CeleryError::Json(format!(
                "positional arguments must be a tuple or array, not {args}"
            )));
        }
        let mut msg = TaskMessage::new(name, args, &self.shared.queue);
        if let Some(prefix) = &self.shared.id_prefix {
            msg.id = crate::id::new_task_id_under(prefix);
        }
        self.send(msg)
    }

    /// Sends a ready-made message (its queue and kwargs as set).
    ///
    /// An `eta` or `expires` no ISO 8601 date can say (NaN, infinite,
    /// outside years 1 to 9999) gives [`CeleryError::Protocol`], naming
    /// it, and so does a time limit of NaN (which would be sent as no
    /// limit): nothing is sent.
    ///
    /// A connection that breaks after the message was written and before
    /// Redis confirmed it gives [`CeleryError::Unconfirmed`]: the task may
    /// run, and it was not sent twice.
    pub fn send<R>(&self, msg: TaskMessage) -> Result<Future<R>, CeleryError>
    where
        R: DeserializeOwned + Send + 'static,
    {
        let shared = &self.shared;
        if shared.closed.load(Ordering::SeqCst) {
            return Err(CeleryError::Shutdown);
        }
        msg.timing.check_writable().map_err(CeleryError::Protocol)?;
        msg.limits.check_writable().map_err(CeleryError::Protocol)?;
        let (promise, future) = promise::<R>();
        let trace =
            (shared.trace.as_ref()).map(|r| (r.submitted(), format!("celery {}", msg.queue)));
        let completer: Completer = Box::new(move |outcome, report, callbacks| {
            // Before the outcome: a reader who sees it done sees the report.
            if let Some(report) = report {
                promise.set_report(report);
            }
            let outcome = outcome.and_then(decode_result::<R>);
            if let Some((trace, lane)) = trace {
                trace.ended_unseen(outcome.is_ok(), &lane);
            }
            // Err: the user cancelled it meanwhile; the first outcome stands.
            let _ = promise.set_outcome_deferred(outcome, |job| callbacks.run(job));
        });
        let id = msg.id.clone();
        let key = result_key(&id);
        let handle = future.clone();
        let cancel = Box::new(move || handle.cancel());
        lock(&shared.pending).insert(
            id.clone(),
            Pending {
                complete: completer,
                cancel,
                epoch: None,
                future_id: future.id(),
                interrupted: false,
            },
        );
        if !shared.under_pattern(&id) {
            shared.subscribe(&[key.as_str()]);
        }
        let losses = lock(&shared.epoch).losses;
        match push_once(&shared.broker, &msg) {
            Ok(epoch) => shared.sent_under(&id, epoch, losses),
            Err(e) => {
                lock(&shared.pending).remove(&id);
                shared.unsubscribe(&id);
                return Err(e);
            }
        }
        let weak = Arc::downgrade(shared);
        future.add_done_callback(move |f| {
            if f.cancelled() {
                if let Some(shared) = weak.upgrade() {
                    shared.revoke(&id);
                }
            }
        });
        Ok(future)
    }

    /// Python's `Executor.shutdown`: no new tasks; with `cancel_futures`,
    /// pending tasks are revoked and their futures cancelled; with `wait`,
    /// blocks until every submitted future is done. Without `wait` the
    /// listener still completes the pending futures, then ends.
    pub fn shutdown(&self, wait: bool, cancel_futures: bool) {
        self.shared.closed.store(true, Ordering::SeqCst);
        if cancel_futures {
            let all: Vec<(String, Pending)> = lock(&self.shared.pending).drain().collect();
            for (id, p) in all {
                // The future's done-callback revokes the task.
                let _ = id;
                (p.cancel)();
            }
        }
        self.shared.wake_listener_if_idle();
        if wait {
            self.join_listener();
            // No result can come after the listener ended: let the callback
            // threads finish and join them (all but this one, when a
            // callback shuts its own executor down).
            self.shared.callbacks.close_and_join();
        }
    }

    /// Joins the listener, unless this is the listener (then it ends by
    /// itself once it is back in its loop).
    fn join_listener(&self) {
        if std::thread::current().id() == self.listener_id {
            return;
        }
        if let Some(h) = lock(&self.listener).take() {
            let _ = h.join();
        }
    }

    /// The recorder of this executor's submissions and results, if it was
    /// built with one ([`Builder::trace`]).
    pub fn recorder(&self) -> Option<&Recorder> {
        self.shared.trace.as_ref()
    }

    /// Stops the task of `future` wherever it is, as Python's
    /// `AsyncResult.revoke(terminate=True, signal="SIGTERM")`: broadcasts
    /// that revoke (beyond `cancel()`, which revokes without terminating).
    /// A worker that runs the task signals its process (ours: SIGTERM,
    /// then SIGKILL after its pool's grace period; a Python prefork worker:
    /// SIGTERM) and stores REVOKED `terminated`; one that has not started
    /// it skips it. The future then fails with
    /// [`TerminatedByRequest`](crate::TerminatedByRequest) holding what the
    /// worker stored. Returns [`Interrupt::Requested`] (where the task is
    /// is only known to the workers), or [`Interrupt::AlreadyDone`] if the
    /// future is done or is not this executor's.
    pub fn interrupt<R>(&self, future: &Future<R>) -> Interrupt {
        let id = {
            let mut pending = lock(&self.shared.pending);
            let found = pending.iter_mut().find(|(_, p)| p.future_id == future.id());
            let Some((id, p)) = found.filter(|_| !future.done()) else {
                return Interrupt::AlreadyDone;
            };
            p.interrupted = true;
            id.clone()
        };
        let channel = format!("/{}.celery.pidbox", self.shared.broker.url().db);
        let cmd = crate::control::terminate_message(&id);
        let _ = self.shared.broker.with(|c| {
            c.command(&[b"PUBLISH", channel.as_bytes(), cmd.as_bytes()])?
                .ok()
        });
        Interrupt::Requested
    }

    /// How many times task `id` was delivered to a worker of ours (beyond
    /// Celery: see `crate::lease`): 1 for a task that ran once, more for
    /// one whose worker died and whose lease lapsed (or that a cold
    /// shutdown gave back). `None` if no worker of ours fetched it (not
    /// yet, a Python worker did, or the count expired with the result
    /// record).
    pub fn attempts(&self, id: &str) -> Result<Option<u64>, CeleryError> {
        let key = crate::lease::attempts_key(id);
        let count = self
            .shared
            .broker
            .with(|c| c.command(&[b"GET", key.as_bytes()])?.ok())?
            .into_bytes();
        match count {
            None => Ok(None),
            Some(n) => String::from_utf8_lossy(&n).parse().map(Some).map_err(|_| {
                CeleryError::Redis(format!(
                    "{key} holds {:?}, not a count of deliveries: did another program \
                         write it?",
                    String::from_utf8_lossy(&n)
                ))
            }),
        }
    }

    /// The Celery task id of `future` while it is pending (for
    /// [`attempts`](Self::attempts), or a Python `AsyncResult`); `None`
    /// once it is done or if it is not this executor's.
    pub fn task_id<R>(&self, future: &Future<R>) -> Option<String> {
        let pending = lock(&self.shared.pending);
        let found = pending.iter().find(|(_, p)| p.future_id == future.id());
        found.map(|(id, _)| id.clone())
    }

    /// How many submitted tasks have no result yet.
    pub fn pending(&self) -> usize {
        lock(&self.shared.pending).len()
    }
}

/// Dropping the executor detaches it: no more submits, the futures still
/// pending fail with [`CeleryError::Shutdown`] (their tasks may still run
/// on a worker: the executor just stops listening), and the listener thread
/// ends before `drop` returns. Call `shutdown(true, false)` first to wait
/// for the results instead: a remote result may never come, so waiting is
/// not the default here.
impl Drop for CeleryExecutor {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::SeqCst);
        self.shared.fail_all(CeleryError::Shutdown);
        self.shared.stop_listener();
        self.join_listener();
        if let Some(h) = lock(&self.watcher).take() {
            let _ = h.join();
        }
        self.shared.callbacks.close_and_join();
    }
}

impl Shared {
    fn subscribe(&self, keys: &[&str]) {
        let mut out = Vec::new();
        let mut args: Vec<&[u8]> = vec![b"SUBSCRIBE"];
        args.extend(keys.iter().map(|k| k.as_bytes()));
        encode(&mut out, &args);
        let mut w = lock(&self.sub_writer);
        if let Some(s) = w.as_mut() {
            if s.write_all(&out).is_err() {
                // The listener will see the error, reconnect and resubscribe
                // every pending id (ours is already in `pending`).
                *w = None;
            }
        }
    }

    /// Sends PING on the subscribed connection (Redis answers `pong` there).
    fn ping(&self) {
        let mut out = Vec::new();
        encode(&mut out, &[b"PING"]);
        if let Some(s) = lock(&self.sub_writer).as_mut() {
            let _ = s.write_all(&out);
        }
    }

    /// Whether task `id`'s result channel is under the listener's pattern
    /// subscription (see [`Shared::id_prefix`]).
    fn under_pattern(&self, id: &str) -> bool {
        self.id_prefix.as_ref().is_some_and(|prefix| {
            id.len() == 36 && id.starts_with(prefix.as_str()) && id.as_bytes()[8] == b'-'
        })
    }

    /// Unsubscribes from task `id`'s result channel, unless the pattern
    /// covers it (it was never subscribed to by its id).
    fn unsubscribe(&self, id: &str) {
        if self.under_pattern(id) {
            return;
        }
        let key = result_key(id);
        let mut out = Vec::new();
        encode(&mut out, &[b"UNSUBSCRIBE", key.as_bytes()]);
        if let Some(s) = lock(&self.sub_writer).as_mut() {
            let _ = s.write_all(&out);
        }
    }

    fn complete(&self, id: &str, (outcome, report): Reported) {
        let pending = lock(&self.pending).remove(id);
        if let Some(p) = pending {
            let outcome = match outcome {
                Err(stored) if p.interrupted => Err(TaskError::Executor(DynError::new(
                    crate::terminate::TerminatedByRequest {
                        task_id: id.to_string(),
                        signal: "SIGTERM",
                        stored: stored.to_string(),
                    },
                ))),
                other => other,
            };
            // Wake the waiter first; the UNSUBSCRIBE write can follow.
            self.run_completer(p, outcome, report);
            self.unsubscribe(id);
        }
        self.wake_listener_if_idle();
    }

    /// Stores REVOKED for `id` (so a worker that was offline when the revoke
    /// was broadcast still skips it) and broadcasts Celery's revoke command.
    fn revoke(&self, id: &str) {
        lock(&self.pending).remove(id);
        self.unsubscribe(id);
        let record = Outcome::Revoked.to_json(id);
        let key = result_key(id);
        let ttl = self.result_expires.as_secs().max(1).to_string();
        let _ = self.backend.with(|c| {
            c.command(&[b"SETEX", key.as_bytes(), ttl.as_bytes(), record.as_bytes()])?
                .ok()
        });
        let channel = format!("/{}.celery.pidbox", self.broker.url().db);
        let cmd = crate::control::revoke_message(id);
        let _ = self.broker.with(|c| {
            c.command(&[b"PUBLISH", channel.as_bytes(), cmd.as_bytes()])?
                .ok()
        });
        self.wake_listener_if_idle();
    }

    /// After shutdown, the listener stops once nothing is pending.
    fn wake_listener_if_idle(&self) {
        if self.closed.load(Ordering::SeqCst) && lock(&self.pending).is_empty() {
            self.stop_listener();
        }
    }

    fn stop_listener(&self) {
        self.closed.store(true, Ordering::SeqCst);
        if let Some(s) = lock(&self.sub_writer).as_ref() {
            let _ = s.shutdown(Shutdown::Both);
        }
        // The broker watcher ends with the listener.
        if let Some(s) = lock(&self.broker_watch).as_ref() {
            let _ = s.shutdown(Shutdown::Both);
        }
    }

    /// Records the epoch task `id`'s message was queued under (`losses`:
    /// the count of losses seen when its send began). Three cases:
    ///
    /// * the epoch this client knows: nothing happened;
    /// * another one, and a loss was seen while the send was under way
    ///   (`losses` has moved): that check skipped this send, and its
    ///   message went with the lost data: it fails now;
    /// * another one, and no loss seen meanwhile: the key changed since
    ///   this client read it, so the server lost its data (`FLUSHALL` on a
    ///   live server, which no reconnect reveals): this send is the first
    ///   to see it, and fails the futures whose messages went with it.
    ///
    /// (Wrong only if the data was lost twice within the send's round trip.)
    fn sent_under(&self, id: &str, epoch: Vec<u8>, losses: u64) {
        let mut new_loss = false;
        let lost = {
            let mut known = lock(&self.epoch);
            let mut pending = lock(&self.pending);
            if known.epoch != epoch && known.losses != losses {
                pending.remove(id).into_iter().collect()
            } else {
                if let Some(p) = pending.get_mut(id) {
                    p.epoch = Some(epoch.clone());
                }
                if known.epoch == epoch {
                    Vec::new()
                } else {
                    new_loss = true;
                    lose_data(&mut known, epoch, &mut pending)
                }
            }
        };
        if new_loss {
            self.declare_queue();
        }
        for p in lost {
            let error = TaskError::Executor(DynError::new(lost_data_error()));
            self.run_completer(p, Err(error), None);
        }
    }

    /// Declares the queue again (a loss took the binding too), as kombu
    /// declares it on connect.
    fn declare_queue(&self) {
        let binding = format!("{q}{SEP}{SEP}{q}", q = self.queue);
        let key = format!("_kombu.binding.{}", self.queue);
        let _ = self
            .broker
            .with(|b| b.command(&[b"SADD", key.as_bytes(), binding.as_bytes()]));
    }

    fn fail_all(&self, error: CeleryError) {
        let all: Vec<(String, Pending)> = lock(&self.pending).drain().collect();
        for (_, p) in all {
            let error = TaskError::Executor(DynError::new(error.clone()));
            self.run_completer(p, Err(error), None);
        }
    }

    /// Runs a pending task's completer and drops the rest of its entry,
    /// contained: both run user code (a waker; the `Drop` of a result
    /// nobody holds, which happens where the future's last handle goes, and
    /// the entry's `cancel` holds one), here often on the listener, the one
    /// thread that delivers every result.
    fn run_completer(
        &self,
        pending: Pending,
        outcome: Result<Value, TaskError>,
        report: Option<TaskReport>,
    ) {
        contain("celery executor", "the completion of a task", move || {
            let Pending {
                complete, cancel, ..
            } = pending;
            complete(outcome, report, &self.callbacks);
            drop(cancel);
        });
    }
}

/// Reads a task's JSON result as `R`. `R`'s `Deserialize` is user code: its
/// error or its panic fails this task with its message, nothing more.
fn decode_result<R: DeserializeOwned>(value: Value) -> Result<R, TaskError> {
    let read = |e: String| {
        TaskError::Failed(DynError::new(CeleryError::Json(format!(
            "the task's result does not read as {}: {e}",
            std::any::type_name::<R>()
        ))))
    };
    match catch_unwind(AssertUnwindSafe(|| serde_json::from_value::<R>(value))) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(read(e.to_string())),
        Err(payload) => Err(read(format!(
            "its Deserialize panicked: {}",
            panic_message(&*payload)
        ))),
    }
}

/// The listener thread: reads the subscribed connection until the executor
/// is gone or shut down with nothing pending.
fn listen(weak: Weak<Shared>, backend: RedisUrl, first: Connection) {
    let mut conn = Some(first);
    let mut lost_since: Option<Instant> = None;
    let mut backoff = Duration::from_millis(50);
    loop {
        let Some(shared) = weak.upgrade() else { return };
        if shared.closed.load(Ordering::SeqCst) && lock(&shared.pending).is_empty() {
            return;
        }
        let mut c = match conn.take() {
            Some(c) => c,
            None => match reconnect(&shared, &backend) {
                Ok(c) => c,
                Err(e) => {
                    let since = *lost_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= shared.reconnect_timeout {
                        shared.fail_all(gave_up(shared.reconnect_timeout, &e));
                        if shared.closed.load(Ordering::SeqCst) {
                            return;
                        }
                    }
                    drop(shared);
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            },
        };
        lost_since = None;
        drop(shared);
        let connected = Instant::now();
        if read_loop(&weak, &mut c).is_err() {
            let Some(shared) = weak.upgrade() else { return };
            *lock(&shared.sub_writer) = None;
            if shared.closed.load(Ordering::SeqCst) && lock(&shared.pending).is_empty() {
                return;
            }
            drop(shared);
            // A connection that broke at once (a result GET that keeps
            // failing, a server that drops us): pause before the next one,
            // longer each time; one that served a while reconnects at once.
            if connected.elapsed() < Duration::from_secs(1) {
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_secs(1));
            } else {
                backoff = Duration::from_millis(50);
            }
        }
    }
}

/// Opens a new subscribed connection: the pattern of this executor's ids,
/// then every other pending id (their confirmations make the listener GET
/// them); GETs the pending ids under the pattern once it holds.
fn reconnect(shared: &Shared, backend: &RedisUrl) -> Result<Connection, CeleryError> {
    let mut c = Connection::open(backend)?;
    if same_server(shared.broker.url(), backend) {
        watch_epoch(&mut c)?; // before the check: no loss in between unseen
    }
    if let Some(prefix) = &shared.id_prefix {
        // Before the epoch's check: an invalidation it skips is covered.
        let pattern = results_pattern(prefix);
        if !psubscribe_now(&mut c, &pattern)? {
            return Err(CeleryError::Redis(format!(
                "the server now refuses the subscription to {pattern} (an ACL changed?): \
                 the results of the pending tasks cannot be heard"
            )));
        }
    }
    check_epoch(shared)?;
    let mut w = lock(&shared.sub_writer);
    // `stop_listener` shuts the socket it finds here, and runs only once the
    // executor is closed with nothing pending, which then holds for good:
    // checked under its lock, no socket is registered after it looked (one
    // would be read for ever, and `Drop` would wait on that for ever).
    if shared.closed.load(Ordering::SeqCst) && lock(&shared.pending).is_empty() {
        return Err(CeleryError::Shutdown);
    }
    *w = Some(c.writer()?);
    let (under, keys): (Vec<String>, Vec<String>) = lock(&shared.pending)
        .keys()
        .cloned()
        .partition(|id| shared.under_pattern(id));
    drop(w);
    let keys: Vec<String> = keys.iter().map(|id| result_key(id)).collect();
    if !keys.is_empty() {
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        for chunk in refs.chunks(512) {
            shared.subscribe(chunk);
        }
    }
    // Stored while the link was down: the pattern holds now, so a result
    // stored later comes as a message. A failed GET: reconnect again.
    let under: Vec<String> = under.iter().map(|id| result_key(id)).collect();
    for chunk in under.chunks(512) {
        get_once(shared, chunk.to_vec())?;
    }
    Ok(c)
}

/// The error for the pending futures when the broker stayed away past
/// `reconnect_timeout`. Their messages may still be queued (a broker that
/// keeps its data runs them when it is back), so it says so: a caller who
/// submits again would otherwise run each task twice unawares.
fn gave_up(timeout: Duration, e: &CeleryError) -> CeleryError {
    CeleryError::BrokerLost(format!(
        "could not reconnect within {timeout:?} ({e}); the task may still run once the \
         broker is back (its message may still be queued): submitting it again may run it twice"
    ))
}

/// After a reconnect: reads the broker's epoch and, if it is not the one
/// this client knew, fails the pending futures whose messages are gone
/// and declares the queue again. Compare-and-update under one lock, so of
/// the listener and the broker watcher only one fails them.
///
/// Only the futures whose messages were queued under another epoch fail: a
/// task sent after the loss (its message is on the server now) must not
/// be failed with "submit them again", or it would run twice. One still
/// being sent is left to its sender ([`Shared::sent_under`]).
fn check_epoch(shared: &Shared) -> Result<(), CeleryError> {
    let epoch = broker_epoch(&shared.broker)?;
    let lost: Vec<Pending> = {
        let mut known = lock(&shared.epoch);
        if known.epoch == epoch {
            return Ok(());
        }
        lose_data(&mut known, epoch, &mut lock(&shared.pending))
    };
    shared.declare_queue();
    for p in lost {
        let error = TaskError::Executor(DynError::new(lost_data_error()));
        shared.run_completer(p, Err(error), None);
    }
    Ok(())
}

/// Records a loss of the broker's data (its epoch is now `epoch`) and takes
/// out of `pending` the futures whose messages were queued under another
/// epoch, for the caller to fail outside the locks. One still being sent
/// (no epoch yet) is left to its sender.
fn lose_data(
    known: &mut Known,
    epoch: Vec<u8>,
    pending: &mut HashMap<String, Pending>,
) -> Vec<Pending> {
    known.epoch = epoch;
    known.losses += 1;
    let ids: Vec<String> = pending
        .iter()
        .filter(|(_, p)| p.epoch.as_ref().is_some_and(|e| *e != known.epoch))
        .map(|(id, _)| id.clone())
        .collect();
    ids.iter().filter_map(|id| pending.remove(id)).collect()
}

/// The channel Redis sends client-tracking invalidations on (RESP2).
const INVALIDATE_CHANNEL: &[u8] = b"__redis__:invalidate";

/// Has the server tell `c` when the broker's data may be lost, without
/// asking: Redis's client tracking (6.0+) in broadcast mode for the
/// [`EPOCH_KEY`] prefix, its invalidations redirected to `c` itself and
/// heard as messages on [`INVALIDATE_CHANNEL`]. A `FLUSHALL` or `FLUSHDB`
/// sends one too (a null key: "everything"), so a database emptied on a
/// live server, where no connection breaks, is noticed at once, not at the
/// next submit; the listener (or the broker watcher) then checks the epoch.
/// Leaves `c` subscribed. A server that refuses tracking (older than 6.0,
/// or an ACL that forbids `CLIENT`, or the channel: Redis 7's users get no
/// channel unless granted) is not an error: a loss is then seen at the
/// next send or reconnect, as before.
fn watch_epoch(c: &mut Connection) -> Result<(), CeleryError> {
    let Reply::Integer(id) = c.command(&[b"CLIENT", b"ID"])? else {
        return Ok(());
    };
    let id = id.to_string();
    let tracking = c.command(&[
        b"CLIENT",
        b"TRACKING",
        b"ON",
        b"REDIRECT",
        id.as_bytes(),
        b"BCAST",
        b"PREFIX",
        EPOCH_KEY,
    ])?;
    if tracking.ok().is_err() {
        return Ok(());
    }
    if c.command(&[b"SUBSCRIBE", INVALIDATE_CHANNEL])?
        .ok()
        .is_err()
    {
        // NOPERM: no invalidation can reach this connection; stop the
        // tracking (the connection is not subscribed: a plain reply).
        c.command(&[b"CLIENT", b"TRACKING", b"OFF"])?.ok()?;
    }
    Ok(())
}

/// The pattern of the result channels of the tasks an executor names under
/// `prefix` (see `Shared::id_prefix`).
fn results_pattern(prefix: &str) -> String {
    format!("{}{prefix}-*", result_key(""))
}

/// Subscribes `c` to `pattern` and waits for the confirmation: true, or
/// false if the server refused it (an error reply: `NOPERM`). Anything
/// before it is an invalidation from [`watch_epoch`], heard before the
/// epoch is read (the caller reads it next): nothing to act on.
fn psubscribe_now(c: &mut Connection, pattern: &str) -> Result<bool, CeleryError> {
    c.queue(&[b"PSUBSCRIBE", pattern.as_bytes()]);
    c.flush()?;
    // A server that never confirms is not waited on for ever.
    for _ in 0..1000 {
        let reply = c.read_reply()?;
        if let Reply::Error(_) = reply {
            return Ok(false);
        }
        if reply.into_array().first() == Some(&Reply::Bulk(Some(b"psubscribe".to_vec()))) {
            return Ok(true);
        }
    }
    Err(CeleryError::Protocol(format!(
        "the server did not confirm the subscription to {pattern}"
    )))
}

/// Is `reply` a message on [`INVALIDATE_CHANNEL`]?
fn is_invalidation(reply: Reply) -> bool {
    let mut parts = reply.into_array().into_iter().map(Reply::into_bytes);
    parts.next().flatten().as_deref() == Some(b"message")
        && parts.next().flatten().as_deref() == Some(INVALIDATE_CHANNEL)
}

/// The error of a future whose message went with the broker's lost data.
fn lost_data_error() -> CeleryError {
    CeleryError::BrokerLost(
        "the Redis server came back without its data (restarted with persistence off?): \
         the task messages sent before are gone; submit them again"
            .to_string(),
    )
}

/// True if both URLs name one Redis server (databases may differ: a
/// restart takes all of them, and breaks the listener's connection).
fn same_server(a: &RedisUrl, b: &RedisUrl) -> bool {
    a.host == b.host && a.port == b.port
}

/// A channel nobody publishes on: the broker watcher subscribes to it only
/// so that its connection is exempt from the server's idle `timeout` (if
/// the user may; see `open_broker_watch`).
const WATCH_CHANNEL: &[u8] = b"celery-rs-broker-watch";

/// Opens the broker watcher's connection, subscribed and registered for
/// `stop_listener`. Refused once the executor is closed with nothing
/// pending: `stop_listener` runs only after that holds, and it holds for
/// good (no submits after closing), so checking it under the lock
/// `stop_listener` takes means no socket is registered after it looked.
fn open_broker_watch(shared: &Shared) -> Result<Connection, CeleryError> {
    let mut c = Connection::open(shared.broker.url())?;
    watch_epoch(&mut c)?;
    // An ACL that grants no such channel (NOPERM, an error reply) leaves it
    // unsubscribed: a server idle `timeout` may then close it, and the
    // watcher reconnects and checks the epoch, as after any break.
    let _ = c.command(&[b"SUBSCRIBE", WATCH_CHANNEL])?.ok();
    // It waits for nothing but the break: no read timeout (a silent broker
    // link goes unnoticed here; the listener's PING covers the backend).
    c.set_read_timeout(None)?;
    let mut w = lock(&shared.broker_watch);
    if shared.closed.load(Ordering::SeqCst) && lock(&shared.pending).is_empty() {
        return Err(CeleryError::Shutdown);
    }
    *w = Some(c.writer()?);
    Ok(c)
}

fn start_broker_watch(shared: &Arc<Shared>) -> Result<JoinHandle<()>, CeleryError> {
    let first = open_broker_watch(shared)?;
    let weak = Arc::downgrade(shared);
    std::thread::Builder::new()
        .name("celery-broker-watch".to_string())
        .spawn(move || watch_broker(weak, first))
        .map_err(CeleryError::io)
}

/// The broker watcher, run when the broker is not the backend's server.
/// Then nothing else reads from the broker, and a broker that restarted
/// without its data (the queued messages of the pending futures gone)
/// would go unnoticed: the futures would wait for ever. This thread holds
/// a subscribed connection to the broker only to see it break; then it
/// reconnects (50 ms .. 1 s backoff) and checks the epoch, as the listener
/// does for its own connection. A broker away longer than
/// `reconnect_timeout` fails the pending futures with `BrokerLost`, as the
/// listener does.
fn watch_broker(weak: Weak<Shared>, first: Connection) {
    let mut conn = Some(first);
    let mut lost_since: Option<Instant> = None;
    let mut backoff = Duration::from_millis(50);
    loop {
        let Some(shared) = weak.upgrade() else { return };
        if shared.closed.load(Ordering::SeqCst) && lock(&shared.pending).is_empty() {
            return;
        }
        let mut c = match conn.take() {
            Some(c) => c,
            None => match open_broker_watch(&shared).and_then(|c| {
                check_epoch(&shared)?;
                Ok(c)
            }) {
                Ok(c) => c,
                Err(e) => {
                    let since = *lost_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= shared.reconnect_timeout {
                        shared.fail_all(gave_up(shared.reconnect_timeout, &e));
                    }
                    drop(shared);
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            },
        };
        lost_since = None;
        backoff = Duration::from_millis(50);
        drop(shared);
        // Only invalidations come here (`watch_epoch`): this returns when the
        // connection breaks, when `stop_listener` shuts it down, or when
        // the epoch cannot be read (a reconnect then checks it again).
        while let Ok(reply) = c.read_reply() {
            if is_invalidation(reply) {
                let Some(shared) = weak.upgrade() else { return };
                if check_epoch(&shared).is_err() {
                    break;
                }
            }
        }
        if let Some(shared) = weak.upgrade() {
            *lock(&shared.broker_watch) = None;
        }
    }
}

/// How long the listener's connection may be quiet before it is PINGed,
/// and how long the PING may then go unanswered before the link counts as
/// silent (dropped packets, no FIN or RST) and the listener reconnects.
const IDLE_PING: Duration = Duration::from_secs(5);

fn read_loop(weak: &Weak<Shared>, conn: &mut Connection) -> Result<(), CeleryError> {
    let mut to_get: Vec<String> = Vec::new();
    let socket = conn.writer()?;
    let mut pinged = false;
    loop {
        // Quiet is normal here (no result due); a PING tells quiet from a
        // silent link, which would otherwise hold the futures for ever.
        if !conn.has_buffered() && !readable_within(&socket, IDLE_PING)? {
            if pinged {
                return Err(CeleryError::Io(format!(
                    "no answer to PING within {IDLE_PING:?}: the link to Redis is silent"
                )));
            }
            let Some(shared) = weak.upgrade() else {
                return Ok(());
            };
            shared.ping();
            pinged = true;
            continue;
        }
        // Bytes are waiting: the reply follows (or the read timeout fires).
        let reply = conn.read_reply()?;
        pinged = false;
        let Some(shared) = weak.upgrade() else {
            return Ok(());
        };
        let mut parts = reply.into_array().into_iter().map(Reply::into_bytes);
        let kind = parts.next().flatten().unwrap_or_default();
        if kind == b"pmessage" {
            parts.next(); // the pattern: then as a message
        }
        let channel = parts.next().flatten().unwrap_or_default();
        let channel = String::from_utf8_lossy(&channel).into_owned();
        match kind.as_slice() {
            b"subscribe" => to_get.push(channel),
            b"pmessage" => {
                let data = parts.next().flatten().unwrap_or_default();
                deliver(&shared, &channel, &data);
            }
            // The epoch key changed or the server was flushed: see
            // `watch_epoch`. An error is a broken link: reconnect (which
            // checks again).
            b"message" if channel.as_bytes() == INVALIDATE_CHANNEL => check_epoch(&shared)?,
            b"message" => {
                let data = parts.next().flatten().unwrap_or_default();
                deliver(&shared, &channel, &data);
            }
            _ => {}
        }
        if !conn.has_buffered() && !to_get.is_empty() {
            // A failed GET is a broken listener: reconnecting subscribes
            // again and GETs again (a result stored before the subscription
            // has no other way here).
            get_once(&shared, std::mem::take(&mut to_get))?;
        }
        if shared.closed.load(Ordering::SeqCst) && lock(&shared.pending).is_empty() {
            return Ok(());
        }
    }
}

/// Waits until `socket` has something to read (bytes, end of file or an
/// error, which the next read reports), at most `limit`: false if not.
fn readable_within(socket: &Stream, limit: Duration) -> Result<bool, CeleryError> {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = libc::c_int::try_from(left.as_millis()).unwrap_or(libc::c_int::MAX);
        let mut fd = libc::pollfd {
            fd: socket.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll(2) on one pollfd that lives across the call, for an
        // open descriptor `socket` owns.
        let n = unsafe { libc::poll(&mut fd, 1, ms) };
        match n {
            0 => return Ok(false),
            n if n > 0 => return Ok(true),
            _ => {
                let e = std::io::Error::last_os_error();
                if e.kind() != std::io::ErrorKind::Interrupted {
                    return Err(CeleryError::io(e));
                }
            }
        }
    }
}

fn deliver(shared: &Shared, channel: &str, data: &[u8]) {
    let Some(id) = channel.strip_prefix("celery-task-meta-") else {
        return;
    };
    // The pattern subscription also brings results of tasks this client
    // no longer waits for (another client's under a colliding prefix, or
    // anyone's publishing there): not parsed at all.
    if !lock(&shared.pending).contains_key(id) {
        return;
    }
    match parse_final_reported(data) {
        Ok(Some(reported)) => shared.complete(id, reported),
        Ok(None) => {} // STARTED, RETRY: wait for the final state
        Err(e) => shared.complete(id, (Err(TaskError::Executor(DynError::new(e))), None)),
    }
}

/// GETs the results of newly subscribed channels (one MGET), for results
/// stored before the subscription took effect. An error means they were
/// not read: the caller must GET them again.
fn get_once(shared: &Shared, channels: Vec<String>) -> Result<(), CeleryError> {
    let channels: Vec<String> = {
        let pending = lock(&shared.pending);
        channels
            .into_iter()
            .filter(|c| {
                c.strip_prefix("celery-task-meta-")
                    .is_some_and(|id| pending.contains_key(id))
            })
            .collect()
    };
    if channels.is_empty() {
        return Ok(());
    }
    let mut args: Vec<&[u8]> = vec![b"MGET"];
    args.extend(channels.iter().map(|c| c.as_bytes()));
    let reply = shared.backend.with(|c| c.command(&args)?.ok())?;
    for (channel, value) in channels.iter().zip(reply.into_array()) {
        if let Some(data) = value.into_bytes() {
            deliver(shared, channel, &data);
        }
    }
    Ok(())
}
