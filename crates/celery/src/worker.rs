//! The worker: consumes Celery queues, runs tasks, stores results.
//!
//! Per message (kombu's Redis transport, late ack emulated as kombu does):
//!
//! 1. `BRPOP q q\x06\x163 q\x06\x166 q\x06\x169 1` fetches a message (only
//!    when a runner is free: no prefetch beyond `concurrency`).
//! 2. One transaction records it as unacknowledged (`ZADD unacked_index
//!    <now> <tag>`, `HSET unacked <tag> [message, exchange, routing key]`)
//!    and the same round trip GETs its result record: a REVOKED record (or
//!    a revoke broadcast seen on the pidbox) means skip it.
//! 3. The runner thread that fetched it runs it (or hands it to a worker
//!    process and waits); a panic or `Err` becomes FAILURE. `concurrency`
//!    runner threads take turns at the fetch connection (leader/followers),
//!    so a fetched task starts without a thread hand-off. A message whose
//!    `embed` asks for what this worker cannot do (a group, a chord) is not
//!    run: FAILURE saying why ([`crate::canvas`]).
//! 4. One transaction sends what follows the task (the chain's next task,
//!    `link` callbacks or `link_error` errbacks: LPUSH), stores the result
//!    (SETEX + PUBLISH) and acks (`ZREM`, `HDEL`): a crash before it leaves
//!    the message unacked.
//! 5. Any worker restores unacked messages older than the visibility
//!    timeout to their queue (under the `unacked_mutex` lock), so a task
//!    whose worker died runs again elsewhere: at least once, not exactly once.
//!
//! Nothing is acked that did not run: a task the process pool could not
//! start goes back to its queue (and a worker whose pool cannot be rebuilt
//! stops), and a cold shutdown ([`ColdShutdown`]) returns the running
//! tasks' messages instead of acking them.

use std::collections::HashSet;
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::canvas::{self, Embed, FollowUps};
use crate::control::{revoked_ids, RevokedSet};
use crate::error::CeleryError;
use crate::id::new_task_id;
use crate::message::{mark_redelivered, TaskMessage, SEP};
use crate::meta::{result_key, Outcome};
use crate::pool::Pool;
use crate::procs::{NotStarted, Procs};
use crate::registry::Registry;
use crate::resp::{Connection, Reply};
use crate::url::RedisUrl;

/// The most runner threads a worker starts (`concurrency`): each task at
/// once holds a thread here and, with the process pool, a process. Far past
/// any machine's cores, and below where starting the threads runs out of
/// memory (a million aborted the process).
pub const MAX_CONCURRENCY: usize = 1024;

/// How a worker is set up; see [`Worker::new`].
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// Broker URL (`redis://host:port/db`).
    pub broker: String,
    /// Result backend URL (default: the broker's).
    pub backend: Option<String>,
    /// Queues to consume, in priority order (default `["celery"]`).
    pub queues: Vec<String>,
    /// Tasks run at once (default: the number of cores), 1 to
    /// [`MAX_CONCURRENCY`].
    pub concurrency: usize,
    /// Unacked messages older than this are restored to their queue (default 3600 s, kombu's).
    pub visibility_timeout: Duration,
    /// How often to look for such messages (default 100 s, kombu's).
    pub restore_interval: Duration,
    /// Result record lifetime (default 1 day).
    pub result_expires: Duration,
    /// Where tasks run (default: the runner threads).
    pub pool: PoolKind,
}

/// Where a worker runs its tasks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PoolKind {
    /// On the worker's own runner threads (`concurrency` of them).
    Threads,
    /// In worker processes (`process_pool::ProcessPoolExecutor`): a crash
    /// or a runaway task kills only its process. Needs
    /// [`install_process_registry`](crate::install_process_registry) before
    /// the fork server starts.
    Processes,
}

impl WorkerConfig {
    /// Celery's defaults, on `broker`.
    pub fn new(broker: &str) -> WorkerConfig {
        WorkerConfig {
            broker: broker.to_string(),
            backend: None,
            queues: vec!["celery".to_string()],
            concurrency: std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .min(MAX_CONCURRENCY),
            visibility_timeout: Duration::from_secs(3600),
            restore_interval: Duration::from_secs(100),
            result_expires: Duration::from_secs(86_400),
            pool: PoolKind::Threads,
        }
    }
}

/// A running worker's counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WorkerStats {
    /// Tasks run to a result (success or failure).
    pub ran: u64,
    /// Messages skipped as revoked.
    pub revoked: u64,
    /// Unacked messages this worker put back on their queue.
    pub restored: u64,
}

/// A Celery worker for the tasks in a [`Registry`].
pub struct Worker {
    config: WorkerConfig,
    registry: Arc<Registry>,
    stop: Arc<AtomicBool>,
    stats: Arc<Mutex<WorkerStats>>,
    running: Arc<Running>,
}

impl Worker {
    /// A worker for `registry`'s tasks.
    pub fn new(config: WorkerConfig, registry: Registry) -> Worker {
        Worker {
            config,
            registry: Arc::new(registry),
            stop: Arc::new(AtomicBool::new(false)),
            stats: Arc::default(),
            running: Arc::default(),
        }
    }

    /// A handle for a cold shutdown (the second Ctrl-C): see [`ColdShutdown`].
    pub fn cold_shutdown_handle(&self) -> ColdShutdown {
        ColdShutdown {
            running: self.running.clone(),
            stop: self.stop.clone(),
            broker: self.config.broker.clone(),
        }
    }

    /// A flag that makes [`run`](Self::run) return (after the running tasks
    /// finish) within about a second of being set.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// The counters so far.
    pub fn stats(&self) -> WorkerStats {
        *lock(&self.stats)
    }

    /// Consumes until the stop flag is set. Errors if Redis is unreachable
    /// at start (later connection losses are retried) or the concurrency is
    /// past [`MAX_CONCURRENCY`].
    pub fn run(&self) -> Result<(), CeleryError> {
        if self.config.concurrency > MAX_CONCURRENCY {
            return Err(CeleryError::Io(format!(
                "a concurrency of {} is more than a worker runs (at most {MAX_CONCURRENCY} \
                 runner threads, each with a worker process): lower it",
                self.config.concurrency
            )));
        }
        let broker_url = RedisUrl::parse(&self.config.broker)?;
        let backend_url = match &self.config.backend {
            Some(b) => RedisUrl::parse(b)?,
            None => broker_url.clone(),
        };
        let mut fetch = Connection::open(&broker_url)?;
        let broker = Arc::new(Pool::new(broker_url.clone(), self.config.concurrency + 1));
        let backend = Arc::new(Pool::new(backend_url, self.config.concurrency + 1));
        for q in &self.config.queues {
            let key = format!("_kombu.binding.{q}");
            let member = format!("{q}{SEP}{SEP}{q}");
            fetch
                .command(&[b"SADD", key.as_bytes(), member.as_bytes()])?
                .ok()?;
        }
        let revoked = Arc::new(Mutex::new(RevokedSet::default()));
        let pidbox = self.start_pidbox(&broker_url, revoked.clone())?;
        let restorer = self.start_restorer(broker.clone());
        let procs = match self.config.pool {
            PoolKind::Threads => None,
            PoolKind::Processes => {
                if crate::procs::process_registry().is_none() {
                    return Err(CeleryError::Protocol(
                        "the process pool needs install_process_registry() before start_fork_server()".to_string(),
                    ));
                }
                Some(
                    Procs::start(self.config.concurrency).map_err(|e| {
                        CeleryError::Io(format!("cannot start the process pool: {e}"))
                    })?,
                )
            }
        };
        let mut brpop: Vec<Vec<u8>> = vec![b"BRPOP".to_vec()];
        for q in &self.config.queues {
            brpop.push(q.as_bytes().to_vec());
            for p in ["3", "6", "9"] {
                brpop.push(format!("{q}{SEP}{p}").into_bytes());
            }
        }
        brpop.push(b"1".to_vec());
        let brpop: Vec<&[u8]> = brpop.iter().map(Vec::as_slice).collect();
        // Leader/followers: `concurrency` runner threads; the one holding the
        // fetch connection (the leader) BRPOPs, hands the connection to the
        // next idle runner by unlocking it, then runs the task itself. No
        // hand-off between fetching and running, and a runner fetches only
        // when it is free: no prefetch beyond `concurrency`.
        let fetch = Fetch {
            conn: Mutex::new(fetch),
            brpop: &brpop,
            url: &broker_url,
            fatal: Mutex::new(None),
            pause: Mutex::new(Duration::ZERO),
        };
        std::thread::scope(|scope| {
            for i in 0..self.config.concurrency.max(1) {
                let (fetch, revoked) = (&fetch, &revoked);
                let (broker, backend, procs) = (&broker, &backend, &procs);
                std::thread::Builder::new()
                    .name(format!("celery-task-{i}"))
                    .spawn_scoped(scope, move || {
                        while let Some(job) = self.next_job(fetch, broker, backend, revoked) {
                            self.serve(broker, backend, procs.as_ref(), job);
                        }
                    })
                    .expect("spawn a runner thread");
            }
        });
        let broken = procs.as_ref().and_then(Procs::broken);
        if let Some(p) = procs {
            p.shutdown();
        }
        self.stop.store(true, Ordering::SeqCst);
        pidbox.stop();
        let _ = restorer.join();
        if let Some(why) = broken {
            return Err(CeleryError::PoolBroken(why));
        }
        let fatal = lock(&fetch.fatal).take();
        match fatal {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Runs one fetched task and stores its result, unless a cold shutdown
    /// came first.
    fn serve(&self, broker: &Pool, backend: &Pool, procs: Option<&Procs>, job: Job) {
        if !self.running.start(&job.tag) {
            // Fetched after a cold shutdown took the list of running tasks:
            // this runner returns the message itself.
            let _ = broker.with(|c| restore_one(c, job.tag.as_bytes()));
            return;
        }
        let (outcome, follow) = match Embed::parse(&job.msg.embed) {
            // Refused before it runs: a task never half-runs.
            Err(why) => (
                canvas::refused(&job.msg, &why),
                FollowUps {
                    messages: Vec::new(),
                    same_result: canvas::chain_task_ids(&job.msg.embed),
                },
            ),
            Ok(embed) => {
                let Some(outcome) = self.run_task(broker, procs, &job) else {
                    return; // it could not start: back on its queue
                };
                let follow = embed.follow_ups(&job.msg, &outcome);
                (outcome, follow)
            }
        };
        if !self.running.finish(&job.tag) {
            // A cold shutdown returned the message to its queue: storing
            // the result now would report a run that will happen again.
            return;
        }
        let expires = self.config.result_expires;
        store_and_ack(broker, backend, &job, &outcome, &follow, expires);
        self.running.stored();
        lock(&self.stats).ran += 1;
    }

    /// Runs the task on this thread or in a worker process; `None` if the
    /// process pool could not start it (its message went back to its queue).
    fn run_task(&self, broker: &Pool, procs: Option<&Procs>, job: &Job) -> Option<Outcome> {
        match procs {
            None => Some(
                match self.registry.run(&job.msg.task, job.msg.args.clone()) {
                    Ok(v) => Outcome::Success(v),
                    Err(e) => Outcome::from_task_error(&e),
                },
            ),
            Some(procs) => match procs.run(&job.msg.task, &job.msg.args) {
                Ok(outcome) => Some(outcome),
                Err(NotStarted(why)) => {
                    self.return_unstarted(broker, job, &why);
                    if procs.broken().is_some() {
                        // Stop fetching: `run` returns the reason.
                        self.stop.store(true, Ordering::SeqCst);
                    }
                    None
                }
            },
        }
    }

    /// A task the pool could not start never ran: its message goes back to
    /// its queue (for a healthy worker), not acked with a failure.
    fn return_unstarted(&self, broker: &Pool, job: &Job, why: &str) {
        if !self.running.abandon(&job.tag) {
            return; // a cold shutdown returns it
        }
        match broker.with(|c| restore_one(c, job.tag.as_bytes())) {
            Ok(_) => eprintln!(
                "celery-worker: task {} could not start ({why}): returned to its queue",
                job.msg.id
            ),
            Err(e) => eprintln!(
                "celery-worker: task {} could not start ({why}) nor go back to its queue \
                 ({e}): it is restored after the visibility timeout",
                job.msg.id
            ),
        }
    }

    /// As the leader (holding `fetch`), waits for a message to run and
    /// records it as unacked; `None` once the stop flag is set.
    fn next_job(
        &self,
        fetch: &Fetch,
        broker: &Pool,
        backend: &Pool,
        revoked: &Mutex<RevokedSet>,
    ) -> Option<Job> {
        loop {
            let (queue, raw) = {
                let mut conn = lock(&fetch.conn);
                if self.stop.load(Ordering::SeqCst) {
                    return None;
                }
                let reply = match conn.command(fetch.brpop) {
                    Ok(r) => r,
                    Err(e) if !e.is_connection() => {
                        // Not a broken connection: stop the worker with it.
                        self.stop.store(true, Ordering::SeqCst);
                        *lock(&fetch.fatal) = Some(e);
                        return None;
                    }
                    Err(_) => {
                        std::thread::sleep(Duration::from_millis(200));
                        if let Ok(c) = Connection::open(fetch.url) {
                            *conn = c;
                        }
                        continue;
                    }
                };
                if let Reply::Error(e) = &reply {
                    // Not the connection's fault (Redis loading its data,
                    // out of memory, a key of the wrong type): say so and
                    // pause before asking again, longer each time.
                    let pause = fetch.error_pause(e);
                    std::thread::sleep(pause);
                    continue;
                }
                fetch.error_cleared();
                let mut parts = reply.into_array().into_iter().map(Reply::into_bytes);
                let (Some(Some(queue)), Some(Some(raw))) = (parts.next(), parts.next()) else {
                    continue; // timeout
                };
                (queue, raw)
            }; // unlocked: the next idle runner fetches while this one runs
            let queue = String::from_utf8_lossy(&queue).into_owned();
            let queue = queue.split(SEP).next().unwrap_or(&queue).to_string();
            if let Some(job) = self.accept(broker, backend, &queue, raw, revoked) {
                return Some(job);
            }
        }
    }

    /// Records the message as unacked and decides whether to run it.
    fn accept(
        &self,
        broker: &Pool,
        backend: &Pool,
        queue: &str,
        raw: Vec<u8>,
        revoked: &Mutex<RevokedSet>,
    ) -> Option<Job> {
        let msg = match TaskMessage::parse(&raw) {
            Ok(m) => m,
            Err(e) => {
                eprintln!("celery-worker: dropping a message from {queue}: {e}");
                return None;
            }
        };
        let tag = new_task_id();
        let entry = format!(
            "[{}, \"\", {}]",
            String::from_utf8_lossy(&raw),
            Value::String(queue.to_string())
        );
        let now = unix_now().to_string();
        let key = result_key(&msg.id);
        // One round trip when the backend is the broker's server: record
        // the message as unacked and read its result record together.
        let same = same_server(broker, backend);
        let mut stored = None;
        let recorded = broker.with(|c| {
            c.queue(&[b"MULTI"]);
            c.queue(&[b"ZADD", b"unacked_index", now.as_bytes(), tag.as_bytes()]);
            c.queue(&[b"HSET", b"unacked", tag.as_bytes(), entry.as_bytes()]);
            c.queue(&[b"EXEC"]);
            if same {
                c.queue(&[b"GET", key.as_bytes()]);
            }
            c.flush()?;
            for _ in 0..4 {
                c.read_reply()?.ok()?;
            }
            if same {
                stored = c.read_reply()?.into_bytes();
            }
            Ok(())
        });
        if let Err(e) = recorded {
            eprintln!(
                "celery-worker: could not record task {} as unacked: {e}",
                msg.id
            );
        }
        if !same {
            stored = backend
                .with(|c| c.command(&[b"GET", key.as_bytes()]))
                .ok()
                .and_then(Reply::into_bytes);
        }
        let is_revoked = lock(revoked).contains(&msg.id, Instant::now())
            || stored.is_some_and(|s| {
                serde_json::from_slice::<Value>(&s)
                    .ok()
                    .and_then(|v| {
                        v.get("status")
                            .and_then(Value::as_str)
                            .map(|s| s == "REVOKED")
                    })
                    .unwrap_or(false)
            });
        let job = Job { msg, tag };
        if is_revoked {
            store_and_ack(
                broker,
                backend,
                &job,
                &Outcome::Revoked,
                &FollowUps::default(),
                self.config.result_expires,
            );
            lock(&self.stats).revoked += 1;
            return None;
        }
        Some(job)
    }

    fn start_pidbox(
        &self,
        url: &RedisUrl,
        revoked: Arc<Mutex<RevokedSet>>,
    ) -> Result<Pidbox, CeleryError> {
        let mut conn = Connection::open(url)?;
        let channel = format!("/{}.celery.pidbox", url.db);
        conn.command(&[b"SUBSCRIBE", channel.as_bytes()])?.ok()?;
        let socket = conn.writer()?;
        let handle = std::thread::Builder::new()
            .name("celery-pidbox".to_string())
            .spawn(move || {
                while let Ok(reply) = conn.read_reply() {
                    let mut parts = reply.into_array().into_iter().map(Reply::into_bytes);
                    if parts.next().flatten().as_deref() == Some(b"message") {
                        let data = parts.nth(1).flatten().unwrap_or_default();
                        let now = Instant::now();
                        let mut revoked = lock(&revoked);
                        for id in revoked_ids(&data) {
                            revoked.insert(id, now);
                        }
                    }
                }
            })
            .map_err(CeleryError::io)?;
        Ok(Pidbox { socket, handle })
    }

    fn start_restorer(&self, broker: Arc<Pool>) -> std::thread::JoinHandle<()> {
        let (stop, stats) = (self.stop.clone(), self.stats.clone());
        let (visibility, interval) = (self.config.visibility_timeout, self.config.restore_interval);
        std::thread::Builder::new()
            .name("celery-restore".to_string())
            .spawn(move || {
                // `None`: the next round is further away than any clock
                // reaches (an interval of `Duration::MAX`): no more rounds.
                let mut next = Some(Instant::now());
                while !stop.load(Ordering::SeqCst) {
                    if next.is_some_and(|n| Instant::now() >= n) {
                        match restore_unacked(&broker, visibility) {
                            Ok(n) => lock(&stats).restored += n,
                            Err(e) => eprintln!("celery-worker: restoring unacked messages: {e}"),
                        }
                        next = Instant::now().checked_add(interval);
                    }
                    std::thread::sleep(interval.min(Duration::from_millis(200)));
                }
            })
            .expect("spawn the restore thread")
    }
}

/// The fetch connection the runner threads take turns at, and what they
/// need to use it.
struct Fetch<'a> {
    conn: Mutex<Connection>,
    brpop: &'a [&'a [u8]],
    url: &'a RedisUrl,
    /// The error that stopped the worker, if not a broken connection.
    fatal: Mutex<Option<CeleryError>>,
    /// The pause after the last error reply to BRPOP (zero: none since the
    /// last good reply).
    pause: Mutex<Duration>,
}

impl Fetch<'_> {
    /// The first pause after an error reply; it doubles up to the last.
    const FIRST_PAUSE: Duration = Duration::from_millis(100);
    /// At most a second, so that the stop flag is still seen within one.
    const LAST_PAUSE: Duration = Duration::from_secs(1);

    /// Records an error reply to BRPOP; returns how long to wait before the
    /// next one. The first of a run is reported.
    fn error_pause(&self, error: &str) -> Duration {
        let mut pause = lock(&self.pause);
        if pause.is_zero() {
            eprintln!("celery-worker: the broker answered BRPOP with an error, retrying: {error}");
            *pause = Self::FIRST_PAUSE;
        } else {
            *pause = (*pause * 2).min(Self::LAST_PAUSE);
        }
        *pause
    }

    /// A good reply: the next error starts a new run.
    fn error_cleared(&self) {
        *lock(&self.pause) = Duration::ZERO;
    }
}

struct Pidbox {
    socket: std::net::TcpStream,
    handle: std::thread::JoinHandle<()>,
}

impl Pidbox {
    fn stop(self) {
        let _ = self.socket.shutdown(Shutdown::Both);
        let _ = self.handle.join();
    }
}

struct Job {
    msg: TaskMessage,
    tag: String,
}

/// The tasks this worker's runners hold, so that a cold shutdown can return
/// their messages to their queues and be sure no runner acks one after.
#[derive(Default)]
struct Running {
    state: Mutex<RunningState>,
    /// Rung when a result has been stored (`storing` went down).
    stored: Condvar,
}

#[derive(Default)]
struct RunningState {
    /// Delivery tags of the tasks running now.
    tags: HashSet<String>,
    /// Results being stored (and their messages acked) right now.
    storing: usize,
    /// Set by a cold shutdown: from then on no runner stores or acks.
    cold: bool,
}

impl Running {
    /// A runner starts the task `tag`; false after a cold shutdown.
    fn start(&self, tag: &str) -> bool {
        let mut state = lock(&self.state);
        if state.cold {
            return false;
        }
        state.tags.insert(tag.to_string());
        true
    }

    /// The task `tag` ended: may its runner store the result and ack it?
    /// False once a cold shutdown has taken the message back.
    fn finish(&self, tag: &str) -> bool {
        let mut state = lock(&self.state);
        if state.cold {
            return false;
        }
        state.tags.remove(tag);
        state.storing += 1;
        true
    }

    /// The task `tag` did not run; false once a cold shutdown has taken it.
    fn abandon(&self, tag: &str) -> bool {
        let mut state = lock(&self.state);
        !state.cold && state.tags.remove(tag)
    }

    /// A result [`finish`](Self::finish) allowed has been stored.
    fn stored(&self) {
        lock(&self.state).storing -= 1;
        self.stored.notify_all();
    }

    /// Stops every later store and ack, waits for the ones under way (at
    /// most `limit`: a broker that does not answer must not hold up the
    /// shutdown), and returns the tags of the tasks still running.
    fn go_cold(&self, limit: Duration) -> Vec<String> {
        let mut state = lock(&self.state);
        state.cold = true;
        let deadline = Instant::now() + limit;
        while state.storing > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = self
                .stored
                .wait_timeout(state, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        state.tags.drain().collect()
    }
}

/// The cold shutdown of a running [`Worker`] (Celery's second Ctrl-C): the
/// running tasks are not acked; their messages go back to their queues at
/// once, where another worker takes them. Get it with
/// [`Worker::cold_shutdown_handle`] before [`Worker::run`].
pub struct ColdShutdown {
    running: Arc<Running>,
    stop: Arc<AtomicBool>,
    broker: String,
}

impl ColdShutdown {
    /// How long [`now`](Self::now) waits for results already being stored.
    const STORING_LIMIT: Duration = Duration::from_secs(10);

    /// Returns the running tasks' messages to their queues; from this call
    /// on, the worker fetches nothing, stores no result and acks nothing.
    /// The caller then exits the process: the tasks are still running, and
    /// [`Worker::run`] returns only once they end. Returns how many
    /// messages went back.
    pub fn now(&self) -> Result<usize, CeleryError> {
        self.stop.store(true, Ordering::SeqCst); // no more fetching
        let tags = self.running.go_cold(Self::STORING_LIMIT);
        if tags.is_empty() {
            return Ok(0);
        }
        let mut c = Connection::open(&RedisUrl::parse(&self.broker)?)?;
        let mut n = 0;
        for tag in tags {
            // A message the visibility timeout already restored is gone
            // from `unacked`: nothing to return.
            if restore_one(&mut c, tag.as_bytes())? {
                n += 1;
            }
        }
        Ok(n)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

fn same_server(a: &Pool, b: &Pool) -> bool {
    a.url() == b.url()
}

/// The longest a result record is kept: 100 years (the CLI's limit too).
const MAX_RESULT_TTL: u64 = 100 * 365 * 86_400;

/// Sends the follow-up messages (LPUSH), stores the outcome (SETEX +
/// PUBLISH, also under the ids in `follow.same_result`) and acks the
/// message (ZREM + HDEL): one transaction when the backend is the broker's
/// server, else in that order, so that a crash in between leaves the
/// message unacked (run again: at least once, follow-ups included).
fn store_and_ack(
    broker: &Pool,
    backend: &Pool,
    job: &Job,
    outcome: &Outcome,
    follow: &FollowUps,
    expires: Duration,
) {
    // Redis refuses an expiry past about 292 million years (milliseconds in
    // an i64); a FAILED SETEX inside MULTI would not stop the ack.
    let ttl = expires.as_secs().clamp(1, MAX_RESULT_TTL).to_string();
    let records: Vec<(String, String)> = std::iter::once(&job.msg.id)
        .chain(&follow.same_result)
        .map(|id| (result_key(id), outcome.to_json(id)))
        .collect();
    let messages: Vec<(&str, String)> = follow
        .messages
        .iter()
        .map(|m| (m.queue.as_str(), m.to_json()))
        .collect();
    let same = same_server(broker, backend);
    if !same && !messages.is_empty() {
        let sent = broker.with(|c| {
            for (queue, body) in &messages {
                c.queue(&[b"LPUSH", queue.as_bytes(), body.as_bytes()]);
            }
            c.flush()?;
            for _ in &messages {
                c.read_reply()?.ok()?;
            }
            Ok(())
        });
        if let Err(e) = sent {
            eprintln!(
                "celery-worker: could not send what follows task {}: {e}",
                job.msg.id
            );
            return; // not acked: it will be restored and run again
        }
    }
    let r = backend.with(|c| {
        // Every queued command has one reply (+QUEUED, or +OK for MULTI).
        let mut replies = 0;
        let mut send = |c: &mut Connection, args: &[&[u8]]| {
            c.queue(args);
            replies += 1;
        };
        send(c, &[b"MULTI"]);
        if same {
            for (queue, body) in &messages {
                send(c, &[b"LPUSH", queue.as_bytes(), body.as_bytes()]);
            }
        }
        for (key, record) in &records {
            send(
                c,
                &[b"SETEX", key.as_bytes(), ttl.as_bytes(), record.as_bytes()],
            );
            send(c, &[b"PUBLISH", key.as_bytes(), record.as_bytes()]);
        }
        if same {
            send(c, &[b"ZREM", b"unacked_index", job.tag.as_bytes()]);
            send(c, &[b"HDEL", b"unacked", job.tag.as_bytes()]);
        }
        send(c, &[b"EXEC"]);
        c.flush()?;
        let mut last = Reply::Bulk(None);
        for _ in 0..replies {
            last = c.read_reply()?.ok()?;
        }
        // EXEC's array holds each command's reply: one may be an error
        // (a queue key of the wrong type) while the others took effect.
        for reply in last.into_array() {
            if let Reply::Error(e) = reply {
                eprintln!(
                    "celery-worker: storing the result of task {}: a command failed: {e}",
                    job.msg.id
                );
            }
        }
        Ok(())
    });
    if let Err(e) = r {
        eprintln!(
            "celery-worker: could not store the result of task {}: {e}",
            job.msg.id
        );
        return; // not acked: it will be restored and run again
    }
    if !same {
        let acked = broker.with(|c| {
            c.queue(&[b"ZREM", b"unacked_index", job.tag.as_bytes()]);
            c.queue(&[b"HDEL", b"unacked", job.tag.as_bytes()]);
            c.flush()?;
            c.read_reply()?.ok()?;
            c.read_reply()?.ok()
        });
        if let Err(e) = acked {
            eprintln!("celery-worker: could not ack task {}: {e}", job.msg.id);
        }
    }
}

/// Puts unacked messages older than `visibility` back on their queues, as
/// kombu's `restore_visible` does, under the `unacked_mutex` lock. Returns
/// how many it restored.
pub fn restore_unacked(broker: &Pool, visibility: Duration) -> Result<u64, CeleryError> {
    let token = new_task_id();
    let got = broker.with(|c| {
        c.command(&[
            b"SET",
            b"unacked_mutex",
            token.as_bytes(),
            b"NX",
            b"PX",
            b"300000",
        ])?
        .ok()
    })?;
    if got == Reply::Bulk(None) {
        return Ok(0); // another worker is restoring
    }
    let ceiling = (unix_now() - visibility.as_secs_f64()).to_string();
    let result = broker.with(|c| {
        let tags = c
            .command(&[
                b"ZRANGEBYSCORE",
                b"unacked_index",
                b"-inf",
                ceiling.as_bytes(),
            ])?
            .ok()?
            .into_array();
        let mut n = 0;
        for tag in tags.into_iter().filter_map(Reply::into_bytes) {
            if restore_one(c, &tag)? {
                n += 1;
            }
        }
        Ok(n)
    });
    release_restore_lock(broker, &token);
    result
}

/// Removes `KEYS[1]`'s unacked entry `ARGV[1]` and, only if this call
/// removed it, pushes `ARGV[2]` onto the queue `KEYS[2]`: one atomic step.
/// Of two restores of one message at once (the periodic one and a cold
/// shutdown's), or a restore retried after its reply was lost, only one
/// pushes it. Returns 1 if it pushed.
const RESTORE_IF_STILL_UNACKED: &[u8] = b"if redis.call('hdel', KEYS[1], ARGV[1]) == 1 then \
    redis.call('rpush', KEYS[2], ARGV[2]) \
    redis.call('zrem', KEYS[3], ARGV[1]) return 1 \
    else redis.call('zrem', KEYS[3], ARGV[1]) return 0 end";

/// Puts the unacked message `tag` back on its queue (marked redelivered, as
/// kombu does) and forgets it; false if there was no such message (or
/// another restore took it first).
fn restore_one(c: &mut Connection, tag: &[u8]) -> Result<bool, CeleryError> {
    let entry = c.command(&[b"HGET", b"unacked", tag])?.ok()?.into_bytes();
    let parsed = entry.and_then(|e| serde_json::from_slice::<Value>(&e).ok());
    let parts = parsed.as_ref().and_then(Value::as_array);
    let Some(message) = parts.and_then(|p| p.first()) else {
        // Nothing (or nothing readable) to restore: forget the tag.
        c.queue(&[b"ZREM", b"unacked_index", tag]);
        c.queue(&[b"HDEL", b"unacked", tag]);
        c.flush()?;
        c.read_reply()?.ok()?;
        c.read_reply()?.ok()?;
        return Ok(false);
    };
    let queue = parts
        .and_then(|p| p.get(2))
        .and_then(Value::as_str)
        .unwrap_or("celery");
    let raw = mark_redelivered(&serde_json::to_vec(message)?)?;
    let pushed = c
        .command(&[
            b"EVAL",
            RESTORE_IF_STILL_UNACKED,
            b"3",
            b"unacked",
            queue.as_bytes(),
            b"unacked_index",
            tag,
            &raw,
        ])?
        .ok()?;
    Ok(pushed == Reply::Integer(1))
}

/// Deletes `KEYS[1]` only if it still holds `ARGV[1]` (one atomic step).
const DELETE_IF_OURS: &[u8] =
    b"if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

/// Releases the `unacked_mutex` lock taken with `token`, only if it is still
/// ours: a restore that outlived the lock's 300 s expiry must not delete the
/// lock another worker took since (kombu checks its token the same way).
fn release_restore_lock(broker: &Pool, token: &str) {
    let released = broker.with(|c| {
        c.command(&[
            b"EVAL",
            DELETE_IF_OURS,
            b"1",
            b"unacked_mutex",
            token.as_bytes(),
        ])?
        .ok()
    });
    if let Err(e) = released {
        // It expires on its own within 300 s.
        eprintln!("celery-worker: releasing the restore lock: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::RedisServer;

    fn get(redis: &RedisServer, key: &[u8]) -> Option<Vec<u8>> {
        redis
            .connect()
            .command(&[b"GET", key])
            .unwrap()
            .into_bytes()
    }

    #[test]
    fn the_restore_lock_is_released_only_by_its_holder() {
        let redis = RedisServer::start();
        let pool = Pool::new(RedisUrl::parse(&redis.url(0)).unwrap(), 1);
        // Our lock expired during a long restore and another worker took it:
        // our release must leave theirs alone, as kombu's token check does.
        let mut c = redis.connect();
        c.command(&[b"SET", b"unacked_mutex", b"theirs"]).unwrap();
        release_restore_lock(&pool, "ours");
        assert_eq!(
            get(&redis, b"unacked_mutex").as_deref(),
            Some(&b"theirs"[..]),
            "another worker's restore lock was deleted"
        );
        release_restore_lock(&pool, "theirs");
        assert_eq!(get(&redis, b"unacked_mutex"), None);
    }
}
