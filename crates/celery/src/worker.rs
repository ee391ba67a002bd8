//! The worker: consumes Celery queues, runs tasks, stores results.
//!
//! Per message (kombu's Redis transport, late ack emulated as kombu does):
//!
//! 1. A held job that has fallen due comes first (step 2). Else a Lua
//!    script pops a message (`RPOP q`, then `q\x06\x163`, `..6`, `..9`:
//!    BRPOP's order) and records it as unacknowledged (`ZADD
//!    unacked_index <now> <tag>`, `HSET unacked <tag> [message, exchange,
//!    routing key]`) in one step, only when a runner is free (no prefetch
//!    beyond `concurrency`). A lost reply loses nothing: the worker chose
//!    the tag before asking and looks for it on its next connection. The
//!    same script looks for a REVOKED record under the task's id (when the
//!    result backend is the broker's database), and says whether any list
//!    still holds a message: when none does (or a pop found nothing), the
//!    next is pipelined behind `BLMOVE q q RIGHT RIGHT 1`, which waits
//!    without popping, for at most a second: held jobs fall due and the
//!    stop flag is seen while the worker idles.
//! 2. The message is read ([`TaskMessage::read`]) and its keyword
//!    arguments bound to the task's parameters; one refused there gets a
//!    FAILURE saying why under its id, then is acked. A REVOKED record
//!    (found by the fetch script, or by a GET when the script could not
//!    tell) or a revoke broadcast seen on the pidbox means skip it
//!    (REVOKED, acked). A message whose `eta` is ahead is
//!    held, unacked, until due ([`crate::schedule`]): its `unacked_index`
//!    score becomes its eta as soon as that is read, so the visibility
//!    timeout counts from when it is due. One whose `expires` has passed is
//!    stored REVOKED `expired`.
//! 3. The runner thread that fetched it runs it (or hands it to a worker
//!    process and waits); a panic or `Err` becomes FAILURE. `concurrency`
//!    runner threads take turns at the fetch connection (leader/followers),
//!    so a fetched task starts without a thread hand-off. A message whose
//!    `embed` asks for what this worker cannot do (a group in `link`, a
//!    chord whose body is a chain) is not run: FAILURE saying why
//!    ([`crate::canvas`]); so is a hard time limit on the runner threads,
//!    which cannot be killed ([`crate::limits`]).
//! 4. A chord's header task reports its outcome to Celery's Redis chord
//!    counter; the last one sends the body ([`crate::chord`]). Then one
//!    step (a Lua script) sends what follows the task (the chain's next
//!    task, `link` callbacks or `link_error` errbacks: LPUSH), stores the
//!    result (SETEX + PUBLISH) and acks (`ZREM`, `HDEL`): a crash before it
//!    leaves the message unacked. What follows is sent only if the message
//!    was still unacked: one taken away (its lease lapsed) sends it when
//!    its restored copy runs. While Redis cannot be reached it is retried
//!    with back-off, for up to `STORE_PATIENCE` (5 minutes).
//! 5. The worker's heartbeat renews the lease of every message it holds
//!    ([`crate::lease`]); any worker restores a message whose lease lapsed,
//!    and one without a lease (a Python worker's) once it is older than the
//!    visibility timeout (under the `unacked_mutex` lock), so a task whose
//!    worker died runs again elsewhere: at least once, not exactly once.
//!    Whatever this worker gives up on (not acked) is no longer renewed:
//!    it is restored once its lease lapses.
//!
//! Nothing is acked that did not run: a task the process pool could not
//! start goes back to its queue (and a worker whose pool cannot be rebuilt
//! stops), and a cold shutdown ([`ColdShutdown`]) returns the running
//! and held tasks' messages instead of acking them, once no fetch is under
//! way (so that an idle runner does not take one back as the process
//! exits).

use std::collections::HashSet;
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use future::TaskReport;
use serde_json::Value;

use crate::canvas::{self, Embed, FollowUps};
use crate::chord;
use crate::connection_pool::Pool;
use crate::control::{Active, Remote, RevokedSet};
use crate::error::CeleryError;
use crate::id::new_task_id;
use crate::lease::{restore_unless_leased, Heartbeat, Lease, Leases, Restore};
use crate::limits;
use crate::message::{hostname, mark_redelivered, TaskMessage, SEP};
use crate::meta::{result_key, started_record, Outcome, MAX_RESULT_TTL};
use crate::procs::{NotStarted, Procs};
use crate::registry::Registry;
use crate::resp::{Connection, Reply, Stream};
use crate::schedule::{self, Held};
use crate::stop::{Bell, StopHandle};
use crate::task_costs::TaskCosts;
use crate::task_figures::{self, Delivery};
use crate::url::RedisUrl;

/// The most runner threads a worker starts (`concurrency`): each task at
/// once holds a thread here and, with the process pool, a process. Far past
/// any machine's cores, and below where starting the threads runs out of
/// memory (a million aborted the process).
pub const MAX_CONCURRENCY: usize = 1024;

/// How a worker is set up; see [`Worker::new`]. Its `Debug` masks the
/// URLs' passwords.
#[derive(Clone)]
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
    /// The lease period (default 30 s, [`crate::lease`]): the worker
    /// renews the lease of each message it holds every third of it; a
    /// message whose lease lapsed (its worker died) is restored, one whose
    /// lease runs is never restored, whatever the visibility timeout.
    pub lease: Duration,
    /// Result record lifetime (default 1 day).
    pub result_expires: Duration,
    /// Where tasks run (default: the runner threads).
    pub pool: PoolKind,
    /// The node name remote control knows the worker by (default
    /// `celery@<host>`, Celery's): `inspect(destination=[...])` names it.
    pub hostname: String,
    /// Store STARTED when a task starts (Celery's `task_track_started`,
    /// a worker setting a client cannot send; default false, as Celery's).
    pub track_started: bool,
}

impl std::fmt::Debug for WorkerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::url::mask_password;
        f.debug_struct("WorkerConfig")
            .field("broker", &mask_password(&self.broker))
            .field("backend", &self.backend.as_deref().map(mask_password))
            .field("queues", &self.queues)
            .field("concurrency", &self.concurrency)
            .field("lease", &self.lease)
            .field("pool", &self.pool)
            .field("hostname", &self.hostname)
            .field("track_started", &self.track_started)
            .finish_non_exhaustive()
    }
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
            lease: crate::lease::DEFAULT_LEASE,
            result_expires: Duration::from_secs(86_400),
            pool: PoolKind::Threads,
            hostname: format!("celery@{}", crate::message::hostname()),
            track_started: false,
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
    /// Rung after `stop` is set: the worker's pauses sleep on it.
    bell: Arc<Bell>,
    stats: Arc<Mutex<WorkerStats>>,
    running: Arc<Running>,
    /// What `inspect().active()` reports.
    active: Arc<Active>,
    /// Messages fetched before their eta, held (unacked) until due.
    held: Held<Job>,
    /// The messages this worker holds a lease on, renewed by its heartbeat.
    leases: Arc<Leases>,
}

impl Worker {
    /// A worker for `registry`'s tasks.
    pub fn new(config: WorkerConfig, registry: Registry) -> Worker {
        Worker {
            config,
            registry: Arc::new(registry),
            stop: Arc::new(AtomicBool::new(false)),
            bell: Arc::default(),
            stats: Arc::default(),
            running: Arc::default(),
            active: Arc::default(),
            held: Held::default(),
            leases: Arc::default(),
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
    /// finish) within about a second of being set, once the worker fetches;
    /// a pause between start-up retries (up to 5 s) sees it when it ends.
    /// [`stop_handle`](Self::stop_handle) ends that pause at once too.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// A handle that stops the worker (as the stop flag does) and wakes its
    /// pauses at once.
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            flag: self.stop.clone(),
            bell: self.bell.clone(),
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> WorkerStats {
        *lock(&self.stats)
    }

    /// Consumes until the stop flag is set. Errors only if Redis stays
    /// unreachable through the start-up retries (about 8 minutes, each
    /// logged; later connection losses are retried) or the concurrency is
    /// past [`MAX_CONCURRENCY`].
    pub fn run(&self) -> Result<(), CeleryError> {
        if self.config.concurrency > MAX_CONCURRENCY {
            return Err(CeleryError::Io(format!(
                "a concurrency of {} is more than a worker runs (at most {MAX_CONCURRENCY} \
                 runner threads, each with a worker process): lower it",
                self.config.concurrency
            )));
        }
        if let Err(why) = crate::lease::check_period(self.config.lease) {
            return Err(CeleryError::Config(why));
        }
        let broker_url = RedisUrl::parse(&self.config.broker)?;
        let backend_url = match &self.config.backend {
            Some(b) => RedisUrl::parse(b)?,
            None => broker_url.clone(),
        };
        let Some(fetch) = self.connect_at_start(&broker_url)? else {
            return Ok(()); // stopped before Redis could be reached
        };
        let broker = Arc::new(Pool::new(broker_url.clone(), self.config.concurrency + 1));
        let backend = Arc::new(Pool::new(backend_url, self.config.concurrency + 1));
        let revoked = Arc::new(Mutex::new(RevokedSet::default()));
        let costs = Arc::new(TaskCosts::default());
        let terminable = Arc::new(crate::terminate::Terminable::default());
        let remote = Remote {
            node: self.config.hostname.clone(),
            revoked: revoked.clone(),
            active: self.active.clone(),
            terminable: terminable.clone(),
            stop: self.stop.clone(),
            broker: broker.clone(),
            registered: self
                .registry
                .names()
                .into_iter()
                .map(String::from)
                .collect(),
            pool: match self.config.pool {
                PoolKind::Threads => "threads",
                PoolKind::Processes => "processes",
            },
            concurrency: self.config.concurrency,
            started: Instant::now(),
            costs: costs.clone(),
        };
        let pidbox = self.start_pidbox(&broker_url, remote)?;
        // A step that fails ends what the steps before it started: a
        // program that goes on after the error keeps no thread running.
        let restorer = match self.start_restorer(broker.clone()) {
            Ok(restorer) => restorer,
            Err(e) => {
                self.end_background(pidbox, None);
                return Err(e);
            }
        };
        let started = self.start_pool(costs, terminable).and_then(|procs| {
            match self.start_heartbeat(broker.clone()) {
                Ok(heartbeat) => Ok((procs, heartbeat)),
                Err(e) => {
                    if let Some(procs) = procs {
                        procs.shutdown();
                    }
                    Err(e)
                }
            }
        });
        let (procs, heartbeat) = match started {
            Ok(started) => started,
            Err(e) => {
                self.end_background(pidbox, Some(restorer));
                return Err(e);
            }
        };
        // BRPOP's keys, in its order: each queue, then its priority lists.
        let mut keys: Vec<(Vec<u8>, String)> = Vec::new();
        for q in &self.config.queues {
            keys.push((q.as_bytes().to_vec(), q.clone()));
            for p in ["3", "6", "9"] {
                keys.push((format!("{q}{SEP}{p}").into_bytes(), q.clone()));
            }
        }
        // Leader/followers: `concurrency` runner threads; the one holding the
        // fetch connection (the leader) fetches, hands the connection to the
        // next idle runner by unlocking it, then runs the task itself. No
        // hand-off between fetching and running, and a runner fetches only
        // when it is free: no prefetch beyond `concurrency`.
        let fetch = Fetch {
            conn: Mutex::new(Leader {
                conn: Some(fetch),
                idle: false,
                unconfirmed: None,
            }),
            script: FetchScript::new(&keys, &self.config),
            url: &broker_url,
            fatal: Mutex::new(None),
            pause: Mutex::new(Duration::ZERO),
        };
        std::thread::scope(|scope| {
            for i in 0..self.config.concurrency.max(1) {
                let (fetch, revoked) = (&fetch, &revoked);
                let (broker, backend, procs) = (&broker, &backend, &procs);
                let spawned = std::thread::Builder::new()
                    .name(format!("celery-task-{i}"))
                    .spawn_scoped(scope, move || {
                        while let Some(job) = self.next_job(fetch, broker, backend, revoked) {
                            self.serve(broker, backend, procs.as_ref(), job);
                        }
                    });
                // The system refused a thread (a process or memory limit):
                // with no runner the worker cannot serve, and says why; with
                // some, it serves with those, and says how many.
                if let Err(e) = spawned {
                    if i == 0 {
                        *lock(&fetch.fatal) = Some(CeleryError::io(e));
                    } else {
                        eprintln!(
                            "celery-worker: could not start runner {} of {}: {e}; serving with {i}",
                            i + 1,
                            self.config.concurrency.max(1)
                        );
                    }
                    break;
                }
            }
        });
        self.return_held(&broker);
        // Every held message is acked or given back: no lease left to renew.
        heartbeat.stop();
        let broken = procs.as_ref().and_then(Procs::broken);
        if let Some(p) = procs {
            p.shutdown();
        }
        self.end_background(pidbox, Some(restorer));
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
        // Already counted as running: by `next_job` before its fetch ended,
        // or when a held job was taken (`take_held`).
        // Listed by `inspect().active()` until this function returns.
        let _active = self.active.begin(&job.tag, &job.msg, &self.config.hostname);
        let refused =
            schedule::refusal(&job.msg).or_else(|| limits::refusal(&job.msg, procs.is_none()));
        let embed = match refused {
            Some(outcome) => Err(outcome),
            None => Embed::parse(&job.msg.embed).map_err(|why| canvas::refused(&job.msg, &why)),
        };
        let chord_body = embed.as_ref().ok().and_then(|e| e.chord.clone());
        let (outcome, follow, report) = match embed {
            // As Celery's worker, checked when received and when due.
            _ if job.msg.timing.expired(unix_now()) => {
                (Outcome::Expired, FollowUps::default(), None)
            }
            // Refused before it runs: a task never half-runs.
            Err(why) => (
                why,
                FollowUps {
                    messages: Vec::new(),
                    same_result: canvas::chain_task_ids(&job.msg.embed),
                },
                None,
            ),
            Ok(embed) => {
                self.mark_started(backend, &job);
                let Some((outcome, report)) = self.run_task(broker, procs, &job) else {
                    return; // it could not start: back on its queue
                };
                let follow = embed.follow_ups(&job.msg, &outcome);
                (outcome, follow, Some(report))
            }
        };
        if !self.running.finish(&job.tag) {
            // A cold shutdown returned the message to its queue: storing
            // the result now would report a run that will happen again.
            return;
        }
        let expires = self.config.result_expires;
        let cold = || self.running.is_cold();
        if let Some(body) = &chord_body {
            // Before the ack: a worker that dies in between runs the task
            // again, and its second report is a no-op (see `chord`).
            let ttl = expires.as_secs().clamp(1, MAX_RESULT_TTL);
            let reported = chord::part_return(broker, backend, &job.msg, body, &outcome, ttl);
            if let Err(e) = reported {
                eprintln!(
                    "celery-worker: could not report task {} to its chord ({e}): not acked, \
                     it runs again once its lease lapses",
                    job.msg.id
                );
                self.running.stored();
                return;
            }
        }
        let stored = (&outcome, report.as_ref());
        store_and_ack(broker, backend, &job, stored, &follow, expires, &cold);
        self.running.stored();
        lock(&self.stats).ran += 1;
    }

    /// Runs the task on this thread or in a worker process, with its report
    /// ([`task_figures`]); `None` if the process pool could not start it
    /// (its message went back to its queue).
    fn run_task(
        &self,
        broker: &Pool,
        procs: Option<&Procs>,
        job: &Job,
    ) -> Option<(Outcome, TaskReport)> {
        let msg = &job.msg;
        let (host, start) = (&self.config.hostname, Instant::now());
        match procs {
            None => {
                let cpu_before = task_figures::thread_cpu();
                let outcome = limits::with_soft_limit(job.msg.limits.soft, || {
                    match self.registry.run(&job.msg.task, job.msg.args.clone()) {
                        Ok(v) => Outcome::Success(v),
                        Err(e) => Outcome::from_task_error(&e),
                    }
                })
                .unwrap_or_else(limits::soft_exceeded);
                let report = task_figures::on_thread(host, &job.delivery, start, cpu_before);
                Some((outcome, report))
            }
            Some(procs) => match procs.run(&msg.id, &msg.task, &msg.args, &msg.limits) {
                Ok((outcome, pool)) => {
                    let report = task_figures::in_process(host, &job.delivery, start, pool);
                    Some((outcome, report))
                }
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

    /// Stores STARTED for `job` if the worker tracks it (`track_started`),
    /// with what Celery's worker stores: the pid and node name of the
    /// worker (the pool process is not known before the task runs).
    fn mark_started(&self, backend: &Pool, job: &Job) {
        if !self.config.track_started {
            return;
        }
        let key = result_key(&job.msg.id);
        let record = started_record(&job.msg.id, std::process::id(), &node_name());
        let ttl = self
            .config
            .result_expires
            .as_secs()
            .clamp(1, MAX_RESULT_TTL);
        let stored = backend.with(|c| {
            c.queue(&[
                b"SETEX",
                key.as_bytes(),
                ttl.to_string().as_bytes(),
                record.as_bytes(),
            ]);
            c.queue(&[b"PUBLISH", key.as_bytes(), record.as_bytes()]);
            c.flush()?;
            c.read_reply()?.ok()?;
            c.read_reply()?.ok()
        });
        if let Err(e) = stored {
            // Only a progress report: the task runs, its result is stored.
            eprintln!(
                "celery-worker: could not store STARTED for task {}: {e}",
                job.msg.id
            );
        }
    }

    /// Holds `job` if its eta is ahead (unacked, until due: see
    /// [`crate::schedule`]); otherwise gives it back to be run now.
    fn hold_until_due(&self, broker: &Pool, job: Job) -> Option<Job> {
        let now = unix_now();
        let wait = job.msg.timing.wait(now);
        let Some(wait) = wait.filter(|_| !job.msg.timing.expired(now)) else {
            return Some(job);
        };
        if !self.score_from_eta(broker, &job, now) {
            return None; // restored meanwhile: fetched again from its queue
        }
        if self.running.hold(&job.tag) {
            self.held.hold(job, wait);
        } else {
            // A cold shutdown came first and could not know of it.
            job.lease.release();
            let _ = broker.with(|c| restore_one(c, job.tag.as_bytes()));
        }
        None
    }

    /// Sets the score in `unacked_index` of a job about to be held to its
    /// eta ([`unacked_score`](crate::schedule::Timing::unacked_score)), so
    /// that the visibility timeout counts from when it is due. The fetch
    /// script recorded the time of the pop: the eta is inside the message,
    /// which the script does not read, so it is set here, right after the
    /// message is read. `ZADD XX` changes the score of an entry still
    /// there and never adds one back; an entry gone means the message was
    /// restored to its queue in between (a visibility timeout shorter than
    /// the time since the pop): false, and the caller drops the job (its
    /// restored copy is fetched again; holding it too would run it twice).
    /// Retried while Redis cannot be reached; if it still fails, the job is
    /// held and the log says that another worker may run it before its eta.
    fn score_from_eta(&self, broker: &Pool, job: &Job, now: f64) -> bool {
        let score = job.msg.timing.unacked_score(now).to_string();
        let tag = job.tag.as_bytes();
        let cold = || self.running.is_cold();
        // Then ZSCORE: nil if the entry is gone. (ZADD's own reply cannot
        // tell: a retry after a lost reply changes nothing either.)
        let set = with_retries(broker, "recording the eta", &job.msg.id, &cold, |c| {
            c.queue(&[b"ZADD", b"unacked_index", b"XX", score.as_bytes(), tag]);
            c.queue(&[b"ZSCORE", b"unacked_index", tag]);
            c.flush()?;
            c.read_reply()?.ok()?;
            c.read_reply()?.ok()
        });
        match set {
            Ok(Reply::Bulk(None)) => {
                eprintln!(
                    "celery-worker: task {} was restored to its queue before its eta was \
                     recorded (visibility timeout shorter than its fetch): not held here, \
                     it is fetched again",
                    job.msg.id
                );
                false
            }
            Ok(_) => true,
            Err(e) => {
                eprintln!(
                    "celery-worker: could not record the eta of task {} as its unacked score \
                     ({e}): it is held here all the same (its lease, renewed, keeps other \
                     workers from restoring it)",
                    job.msg.id
                );
                true
            }
        }
    }

    /// A held job that is due, now counted as running; `None` if none is.
    /// One revoked while it was held is skipped (REVOKED, acked), as
    /// Celery's worker checks for a revoke when an eta task falls due.
    fn take_due(&self, broker: &Pool, backend: &Pool, revoked: &Mutex<RevokedSet>) -> Option<Job> {
        while let Some(job) = self.held.take_due() {
            if self.is_revoked(backend, revoked, &job.msg.id) {
                if self.running.release_held(&job.tag) {
                    self.skip_revoked(broker, backend, &job);
                }
                continue;
            }
            if !still_unacked(broker, &job.tag) {
                // Its lease lapsed while it was held (this worker paused, or
                // cut off from Redis) and another worker restored it: that
                // one runs it. Dropping the job drops its lease.
                if self.running.release_held(&job.tag) {
                    eprintln!(
                        "celery-worker: task {} held for its eta is no longer unacked (its \
                         lease lapsed and another worker restored it): not running it here",
                        job.msg.id
                    );
                }
                continue;
            }
            // False: a cold shutdown returned it to its queue already.
            if self.running.take_held(&job.tag) {
                return Some(job);
            }
        }
        None
    }

    /// Whether task `id` was revoked: a broadcast heard on the pidbox, or
    /// a REVOKED record in the backend.
    fn is_revoked(&self, backend: &Pool, revoked: &Mutex<RevokedSet>, id: &str) -> bool {
        lock(revoked).contains(id, Instant::now()) || revoked_record_stored(backend, id)
    }

    /// Stores REVOKED for a job that will not run, and acks it; a chord's
    /// header task reports it to its chord first, as Celery's
    /// `mark_as_revoked` does, so that the body fails instead of waiting.
    fn skip_revoked(&self, broker: &Pool, backend: &Pool, job: &Job) {
        // Celery's words, so that a log search finds both workers' lines.
        eprintln!(
            "celery-worker: Discarding revoked task: {}[{}]",
            job.msg.task, job.msg.id
        );
        let (none, expires) = (FollowUps::default(), self.config.result_expires);
        let chord_body = Embed::parse(&job.msg.embed).ok().and_then(|e| e.chord);
        if let Some(body) = chord_body {
            let ttl = expires.as_secs().clamp(1, MAX_RESULT_TTL);
            let outcome = Outcome::Revoked;
            if let Err(e) = chord::part_return(broker, backend, &job.msg, &body, &outcome, ttl) {
                eprintln!(
                    "celery-worker: could not report revoked task {} to its chord ({e}): \
                     not acked, it is seen again once its lease lapses",
                    job.msg.id
                );
                return;
            }
        }
        let cold = || self.running.is_cold();
        store_and_ack(
            broker,
            backend,
            job,
            (&Outcome::Revoked, None),
            &none,
            expires,
            &cold,
        );
        lock(&self.stats).revoked += 1;
    }

    /// Warm shutdown: the held messages go back to their queues at once.
    fn return_held(&self, broker: &Pool) {
        for job in self.held.drain() {
            if !self.running.release_held(&job.tag) {
                continue; // a cold shutdown returned it
            }
            job.lease.release();
            if let Err(e) = broker.with(|c| restore_one(c, job.tag.as_bytes())) {
                eprintln!(
                    "celery-worker: could not return held task {} to its queue ({e}): it is \
                     restored once its lease lapses",
                    job.msg.id
                );
            }
        }
    }

    /// A task the pool could not start never ran: its message goes back to
    /// its queue (for a healthy worker), not acked with a failure.
    fn return_unstarted(&self, broker: &Pool, job: &Job, why: &str) {
        if !self.running.abandon(&job.tag) {
            return; // a cold shutdown returns it
        }
        job.lease.release();
        match broker.with(|c| restore_one(c, job.tag.as_bytes())) {
            Ok(_) => eprintln!(
                "celery-worker: task {} could not start ({why}): returned to its queue",
                job.msg.id
            ),
            Err(e) => eprintln!(
                "celery-worker: task {} could not start ({why}) nor go back to its queue \
                 ({e}): it is restored once its lease lapses",
                job.msg.id
            ),
        }
    }

    /// As the leader (holding `fetch`), waits for a message to run (it is
    /// recorded as unacked as it is popped); `None` once the stop flag is set.
    fn next_job(
        &self,
        fetch: &Fetch,
        broker: &Pool,
        backend: &Pool,
        revoked: &Mutex<RevokedSet>,
    ) -> Option<Job> {
        loop {
            let (fetched, _fetching) = {
                let mut leader = lock(&fetch.conn);
                if self.stop.load(Ordering::SeqCst) {
                    return None;
                }
                // A held job that fell due during the last wait (which
                // ended by then: see `fetch_wait`).
                if let Some(job) = self.take_due(broker, backend, revoked) {
                    return Some(job);
                }
                // Until the popped message is counted as running or held (or
                // back on its queue), a cold shutdown waits for this fetch.
                let Some(fetching) = self.running.begin_fetch() else {
                    return None; // a cold shutdown began
                };
                match fetch.next_message(&mut leader, self.held.next_due()) {
                    Ok(Some(fetched)) => (fetched, fetching),
                    Ok(None) => continue, // nothing yet, or an error reply
                    Err(e) if !e.is_connection() => {
                        // Not a broken connection: stop the worker with it.
                        self.stop.store(true, Ordering::SeqCst);
                        *lock(&fetch.fatal) = Some(e);
                        return None;
                    }
                    Err(_) => {
                        // Never reused: a read that timed out may have left
                        // half a reply, which the next command would take
                        // for its own. The next call opens a new one.
                        leader.conn = None;
                        let pause = Duration::from_millis(200);
                        self.bell.pause_unless_stopped(&self.stop, pause);
                        continue;
                    }
                }
            }; // unlocked: the next idle runner fetches while this one runs

            // Renewed from now on (the fetch script took the lease) until
            // the job is dropped: acked, given back, or refused.
            let lease = self.leases.hold(&fetched.tag);
            let delivery = Delivery {
                arrived: Instant::now(),
                attempts: fetched.attempts,
            };
            let job = self.accept(broker, backend, fetched, (lease, delivery), revoked);
            let Some(job) = job.and_then(|job| self.hold_until_due(broker, job)) else {
                continue;
            };
            if self.running.start(&job.tag) {
                return Some(job);
            }
            // A cold shutdown began during the fetch; it returns only the
            // messages it knows of, and waits for this fetch to end: this
            // runner returns this one itself.
            job.lease.release();
            let _ = broker.with(|c| restore_one(c, job.tag.as_bytes()));
        }
    }

    /// Decides whether to run a fetched message (already recorded as
    /// unacked under its tag).
    fn accept(
        &self,
        broker: &Pool,
        backend: &Pool,
        Fetched {
            queue,
            raw,
            tag,
            revoked: checked,
            ..
        }: Fetched,
        (lease, delivery): (Lease, Delivery),
        revoked: &Mutex<RevokedSet>,
    ) -> Option<Job> {
        let fetched = (queue.as_str(), tag.as_str());
        let msg = match TaskMessage::read(&raw) {
            Ok(m) => self.bind_kwargs(broker, backend, fetched, m)?,
            Err(r) => {
                let (module, class) = r.exception;
                let outcome = Outcome::Failure {
                    exc_type: class.to_string(),
                    exc_module: Some(module.to_string()),
                    message: r.why(),
                    traceback: None,
                };
                let who = (r.id.as_deref(), r.task.as_deref().unwrap_or("?"));
                self.refuse(broker, backend, fetched, who, &[], &outcome);
                return None;
            }
        };
        // The fetch script looked for a REVOKED record (one round trip
        // fewer before every task); else, or for another id, look now.
        let is_revoked = lock(revoked).contains(&msg.id, Instant::now())
            || match checked {
                Some((id, revoked)) if id == msg.id => revoked,
                _ => revoked_record_stored(backend, &msg.id),
            };
        let job = Job {
            msg,
            tag,
            lease,
            delivery,
        };
        if is_revoked {
            self.skip_revoked(broker, backend, &job);
            return None;
        }
        Some(job)
    }

    /// Puts the message's keyword arguments at their parameters' positions
    /// ([`Registry::bind`]); a task the registry does not know is logged as
    /// Celery logs it (running it stores `NotRegistered`). `None`: refused
    /// (see [`refuse`](Self::refuse)).
    fn bind_kwargs(
        &self,
        broker: &Pool,
        backend: &Pool,
        fetched: (&str, &str),
        mut msg: TaskMessage,
    ) -> Option<TaskMessage> {
        if self.registry.get(&msg.task).is_none() {
            eprintln!(
                "celery-worker: Received unregistered task of type '{}' (id {}): a NotRegistered \
                 failure is stored for it. Is it registered with this worker under that name?",
                msg.task, msg.id
            );
            return Some(msg);
        }
        let (args, kwargs) = (msg.args.take(), msg.kwargs.take());
        match self.registry.bind(&msg.task, args, kwargs) {
            Ok(args) => {
                msg.args = args;
                msg.kwargs = Value::Object(serde_json::Map::new());
                Some(msg)
            }
            Err(e) => {
                // A chain after it fails too, as after a task that failed.
                let chain = canvas::chain_task_ids(&msg.embed);
                let who = (Some(msg.id.as_str()), msg.task.as_str());
                let outcome = Outcome::from_task_error(&e);
                self.refuse(broker, backend, fetched, who, &chain, &outcome);
                None
            }
        }
    }

    /// A message that will not run, fetched from `queue` and recorded as
    /// unacked under `tag`: logs who it was for and why, stores `outcome`
    /// under its id (and `more` ids) when it has one, so that the client
    /// does not wait for ever, then acks it. If the outcome could not be
    /// stored, the message stays unacked: it is restored once its lease
    /// lapses and refused again (never acked unstored). One
    /// without a readable id is acked at once: nothing can be stored for it.
    fn refuse(
        &self,
        broker: &Pool,
        backend: &Pool,
        (queue, tag): (&str, &str),
        (id, task): (Option<&str>, &str),
        more: &[String],
        outcome: &Outcome,
    ) {
        let why = match outcome {
            Outcome::Failure {
                exc_type, message, ..
            } => format!("{exc_type}: {message}"),
            other => other.status().to_string(),
        };
        let Some(id) = id else {
            eprintln!(
                "celery-worker: dropped a message from {queue} (task {task}, no readable task id: \
                 nothing stored): {why}"
            );
            self.leases.settling(tag);
            ack(broker, tag);
            return;
        };
        let ttl = self
            .config
            .result_expires
            .as_secs()
            .clamp(1, MAX_RESULT_TTL)
            .to_string();
        let stored = backend.with(|c| {
            for id in std::iter::once(id).chain(more.iter().map(String::as_str)) {
                let (key, record) = (result_key(id), outcome.to_json(id));
                c.queue(&[b"SETEX", key.as_bytes(), ttl.as_bytes(), record.as_bytes()]);
                c.queue(&[b"PUBLISH", key.as_bytes(), record.as_bytes()]);
            }
            c.flush()?;
            for _ in 0..2 * (1 + more.len()) {
                c.read_reply()?.ok()?;
            }
            Ok(())
        });
        match stored {
            Ok(()) => {
                eprintln!(
                    "celery-worker: refused task {id} ({task}) from {queue}, FAILURE stored: {why}"
                );
                self.leases.settling(tag);
                ack(broker, tag);
            }
            Err(e) => eprintln!(
                "celery-worker: refused task {id} ({task}) from {queue}: {why}; storing its \
                 FAILURE failed ({e}): its message stays unacked and is refused again once \
                 its lease lapses"
            ),
        }
    }

    /// Opens the fetch connection and declares the queues (their kombu
    /// bindings), retrying with back-off while Redis cannot be reached or
    /// is still loading its data, as Celery's worker retries its broker
    /// connection at start-up; each try is logged. `None` if the stop flag
    /// was set meanwhile. Any other error (a wrong password) ends it at once.
    fn connect_at_start(&self, url: &RedisUrl) -> Result<Option<Connection>, CeleryError> {
        let mut pause = Duration::from_millis(100);
        let mut failed = 0u32;
        loop {
            let e = match declare_queues(url, &self.config.queues) {
                Ok(c) => {
                    if failed > 0 {
                        eprintln!("celery-worker: connected to the broker at {url}");
                    }
                    return Ok(Some(c));
                }
                Err(e) if failed < START_TRIES && transient(&e) => e,
                Err(e) => return Err(e),
            };
            failed += 1;
            eprintln!(
                "celery-worker: cannot use the broker yet ({e}); retrying in {pause:?} \
                 (try {failed} of {START_TRIES})"
            );
            if !self.bell.pause_unless_stopped(&self.stop, pause) {
                return Ok(None);
            }
            pause = (pause * 2).min(Duration::from_secs(5));
        }
    }

    /// Starts the thread that hears the pidbox's broadcasts (revokes,
    /// remote control: [`Remote::handle`]). It subscribes again whenever
    /// its connection breaks (a Redis restart, a cut link), pausing
    /// 100 ms .. 5 s between tries, until the worker stops: a Python
    /// client's `revoke()` is only a broadcast, so a listener that ended
    /// would let revoked tasks run.
    fn start_pidbox(&self, url: &RedisUrl, remote: Remote) -> Result<Pidbox, CeleryError> {
        let socket: Arc<Mutex<Option<Stream>>> = Arc::default();
        let (stop, bell) = (self.stop.clone(), self.bell.clone());
        // The first subscription before any task is fetched, if it can.
        let mut conn = open_pidbox(url, &socket, &stop).ok();
        let (url, current) = (url.clone(), socket.clone());
        let handle = std::thread::Builder::new()
            .name("celery-pidbox".to_string())
            .spawn(move || {
                let mut pause = Duration::from_millis(100);
                while !stop.load(Ordering::SeqCst) {
                    let Some(mut c) = conn.take() else {
                        bell.pause_unless_stopped(&stop, pause);
                        pause = (pause * 2).min(Duration::from_secs(5));
                        conn = open_pidbox(&url, &current, &stop).ok();
                        continue;
                    };
                    pause = Duration::from_millis(100);
                    while let Ok(reply) = c.read_reply() {
                        let mut parts = reply.into_array().into_iter().map(Reply::into_bytes);
                        if parts.next().flatten().as_deref() == Some(b"message") {
                            let data = parts.nth(1).flatten().unwrap_or_default();
                            remote.handle(&data);
                        }
                    }
                }
            })
            .map_err(CeleryError::io)?;
        Ok(Pidbox { socket, handle })
    }

    /// The process pool, with `--pool processes`.
    fn start_pool(
        &self,
        costs: Arc<TaskCosts>,
        terminable: Arc<crate::terminate::Terminable>,
    ) -> Result<Option<Procs>, CeleryError> {
        if self.config.pool == PoolKind::Threads {
            return Ok(None);
        }
        if crate::procs::process_registry().is_none() {
            return Err(CeleryError::Protocol(
                "the process pool needs install_process_registry() before start_fork_server()"
                    .to_string(),
            ));
        }
        let procs = Procs::start(self.config.concurrency, costs, terminable)
            .map_err(|e| CeleryError::Io(format!("cannot start the process pool: {e}")))?;
        Ok(Some(procs))
    }

    /// Stops and joins the pidbox listener and the restore thread (at the
    /// end of `run`, or when a later start-up step failed).
    fn end_background(&self, pidbox: Pidbox, restorer: Option<std::thread::JoinHandle<()>>) {
        self.stop.store(true, Ordering::SeqCst);
        self.bell.ring(); // the restore thread and the pidbox's pause
        pidbox.stop();
        if let Some(restorer) = restorer {
            let _ = restorer.join();
        }
    }

    /// Starts the heartbeat that renews this worker's leases and restores
    /// lapsed ones ([`crate::lease`]).
    fn start_heartbeat(&self, broker: Arc<Pool>) -> Result<Heartbeat, CeleryError> {
        let (lease, visibility) = (self.config.lease, self.config.visibility_timeout);
        let stats = self.stats.clone();
        let restored = move |n| lock(&stats).restored += n;
        let every = crate::lease::renew_every(lease, visibility);
        Heartbeat::start(self.leases.clone(), broker, lease, every, restored)
            .map_err(CeleryError::io)
    }

    fn start_restorer(
        &self,
        broker: Arc<Pool>,
    ) -> Result<std::thread::JoinHandle<()>, CeleryError> {
        let (stop, stats) = (self.stop.clone(), self.stats.clone());
        let bell = self.bell.clone();
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
                    // Asleep until the next round or the stop, never waking
                    // to look in between.
                    let wait = next.map_or(Duration::MAX, |n| {
                        n.saturating_duration_since(Instant::now())
                    });
                    if !bell.pause_unless_stopped(&stop, wait) {
                        break;
                    }
                }
            })
            .map_err(CeleryError::io)
    }
}

/// The fetch connection the runner threads take turns at, and what they
/// need to use it.
struct Fetch<'a> {
    conn: Mutex<Leader>,
    script: FetchScript,
    url: &'a RedisUrl,
    /// The error that stopped the worker, if not a broken connection.
    fatal: Mutex<Option<CeleryError>>,
    /// The pause after the last error reply to a fetch (zero: none since
    /// the last good reply).
    pause: Mutex<Duration>,
}

/// What the leader holds: the connection, and the delivery tag of a fetch
/// whose reply it did not get (the connection broke): that message may be
/// recorded as unacked under this tag, and is this worker's to run.
struct Leader {
    /// `None` after an error, until a new one is opened.
    conn: Option<Connection>,
    /// The last pop found every list empty: wait before the next.
    idle: bool,
    unconfirmed: Option<String>,
}

/// Pops the first message of `KEYS[1..n]` (in BRPOP's order) and records it
/// as unacked (`KEYS[n+1]` = `unacked_index`, `KEYS[n+2]` = `unacked`) under
/// the delivery tag `ARGV[1]` at time `ARGV[2]`, in one step: kombu's entry
/// `[message, exchange, routing key]`, the routing key as JSON in
/// `ARGV[2+i]`. Returns `[key, message, deliveries]` (the count below, nil
/// if not counted), or nil if every list is empty.
/// A reply lost on the way cannot lose the message: it is in `unacked`,
/// under a tag the worker chose before asking.
///
/// In the same step, the worker's lease on it (`KEYS[n+3]` =
/// `rust:leases`: lapses `ARGV[n+3]` seconds from Redis's now) and the
/// count of its deliveries (`rust:attempts:<id>`, id from the message's
/// headers, expiring after `ARGV[n+4]` seconds; a message without an id
/// the scan below finds is not counted, nor one whose counter key holds
/// something else): see [`crate::lease`]. Nothing after the pop may fail
/// the script (its effects are not rolled back): the reads of keys another
/// program may hold are `pcall`s.
///
/// The id is found by a walk over the message's structure, not by
/// decoding it: cjson would build all of it as Lua values in Redis's
/// memory (a 16 MiB JSON array took 272 MB there). The walk steps from one
/// bracket, comma, colon or quote to the next (a string is skipped whole,
/// escapes and all) and keeps only the last key read at each depth, so it
/// takes the `id` of the top object's `headers` and no other: not an `id`
/// in an object nested in the headers, nor a key ending in `"id` (`"x\"id"`,
/// whose escaped quote a text search would take for the key's start). It
/// gives up (the message is not counted) past 20 000 steps, so a
/// crafted message costs Redis a bounded time; a protocol 1 message's id
/// is inside its encoded body: not counted, as before.
///
/// And the revoke check, when `ARGV[n+5]` is `check` (the result backend
/// is this very database): is there a REVOKED record under the task's id?
/// A check of its own would cost the worker a round trip before every
/// task, on the task's path (issue 18). The reply's fourth item is 1
/// (revoked), 0 (not) or -1 (the script could not tell: no id, a record
/// too big or not JSON to cjson; the worker GETs it itself), the fifth the
/// id it checked. The sixth is 1 if a list still holds a message: when
/// none does, the next fetch waits at once instead of asking first.
const FETCH_SCRIPT: &str = r#"
local n = #KEYS - 3
-- The string value of `headers.id` (the last, as the worker's decoder
-- takes), or nil. Bytes: 34 '"', 44 ',', 58 ':', 91 '[', 92 '\\',
-- 93 ']', 123 '{', 125 '}'.
local function task_id_walked(raw)
  local steps = 20000
  local pos, depth, headers = 1, 0, nil
  local object, want_key, key = {}, {}, {}
  local id = nil
  while steps > 0 do
    steps = steps - 1
    local at = string.find(raw, '[{}%[%]",:]', pos)
    if not at then return nil end
    local c = string.byte(raw, at)
    pos = at + 1
    if c == 34 then
      -- A string: its end is the first quote no backslash escapes.
      local escaped = false
      while true do
        steps = steps - 1
        if steps < 0 then return nil end
        local q = string.find(raw, '["\\]', pos)
        if not q then return nil end
        if string.byte(raw, q) == 92 then
          escaped, pos = true, q + 2
        else
          pos = q + 1
          break
        end
      end
      local text = (not escaped) and string.sub(raw, at + 1, pos - 2)
      if want_key[depth] then
        key[depth], want_key[depth] = text, false
      elseif depth == headers and key[depth] == 'id' then
        id = text or nil
      end
    elseif c == 123 or c == 91 then
      if c == 123 and depth == 1 and object[1] and key[1] == 'headers' then
        headers = 2
      end
      depth = depth + 1
      object[depth], want_key[depth], key[depth] = c == 123, c == 123, nil
    elseif c == 125 or c == 93 then
      if depth == headers then
        if id and #id > 0 and #id <= 255 then return id end
        return nil
      end
      depth = depth - 1
      if depth < 1 then return nil end
    elseif c == 44 then
      want_key[depth] = object[depth]
    end
  end
  return nil
end
-- A message of at most 64 KiB is decoded by cjson (C, about 4 us for a
-- typical 1 KB message; the walk above takes about 25 us in Lua); a bigger
-- one, or one cjson refuses, is walked (bounded), never decoded whole.
local function task_id(raw)
  if #raw <= 65536 then
    local ok, m = pcall(cjson.decode, raw)
    if ok then
      local h = type(m) == 'table' and m.headers
      local id = type(h) == 'table' and h.id
      if type(id) == 'string' and #id > 0 and #id <= 255 then return id end
      return nil
    end
  end
  return task_id_walked(raw)
end
local function revoked(id)
  if not id then return -1 end
  -- pcall: a key of another type must not fail the script after its pop
  -- (a script's effects stay: the message would sit unacked, unseen).
  local record = redis.pcall('GET', 'celery-task-meta-' .. id)
  if not record then return 0 end
  if type(record) ~= 'string' or #record > 65536 then return -1 end
  local ok, r = pcall(cjson.decode, record)
  if not ok or type(r) ~= 'table' then return -1 end
  if r.status == 'REVOKED' then return 1 end
  return 0
end
for i = 1, n do
  -- pcall: a key of another type (another program's) is skipped, not an
  -- error that would fail every fetch while the lists before it are empty.
  local raw = redis.pcall('RPOP', KEYS[i])
  if type(raw) == 'string' then
    redis.call('ZADD', KEYS[n + 1], ARGV[2], ARGV[1])
    redis.call('HSET', KEYS[n + 2], ARGV[1], '[' .. raw .. ', "", ' .. ARGV[2 + i] .. ']')
    local t = redis.call('TIME')
    local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
    redis.call('ZADD', KEYS[n + 3], now + tonumber(ARGV[n + 3]), ARGV[1])
    local id = task_id(raw)
    local attempts = false
    if id then
      local key = 'rust:attempts:' .. id
      local counted = redis.pcall('INCR', key)
      if type(counted) == 'number' then
        attempts = counted
        redis.call('EXPIRE', key, ARGV[n + 4])
      end
    end
    local checked = -1
    if ARGV[n + 5] == 'check' then checked = revoked(id) end
    -- pcall: a list's key may hold another type (another program's).
    local more = 0
    for j = 1, n do
      local len = redis.pcall('LLEN', KEYS[j])
      if type(len) == 'number' and len > 0 then more = 1 break end
    end
    return {KEYS[i], raw, attempts, checked, id or false, more}
  end
end
return false
"#;

/// A fetched message.
struct Fetched {
    queue: String,
    raw: Vec<u8>,
    /// The delivery tag it is recorded as unacked under.
    tag: String,
    /// Deliveries counted (`None` for a fetch whose reply was lost).
    attempts: Option<u64>,
    /// What the fetch script's revoke check found, for the task id it
    /// read: `None` if it did not check (a lost reply, a backend of its
    /// own, an answer it could not give).
    revoked: Option<(String, bool)>,
}

/// The arguments of [`FETCH_SCRIPT`] and of the blocking wait, built once.
struct FetchScript {
    /// `KEYS[1..n]`, then `unacked_index`, `unacked` and `rust:leases`.
    keys: Vec<Vec<u8>>,
    /// The routing key (JSON) of each list, in the order of `keys`.
    routing_keys: Vec<Vec<u8>>,
    /// The lease period and the lifetime of the attempts counter, in
    /// seconds, then `check` or not: the last three arguments.
    lease: Vec<u8>,
    attempts_ttl: Vec<u8>,
    /// `check` if the result backend is the broker's database (the script
    /// can read the result records), else empty.
    check_revoked: &'static [u8],
}

impl FetchScript {
    /// How long one blocking wait lasts, in seconds (kombu's BRPOP's): the
    /// stop flag is seen within it, and so is a message on a list other
    /// than the one waited on.
    const WAIT: Duration = Duration::from_secs(1);

    fn new(keys: &[(Vec<u8>, String)], config: &WorkerConfig) -> FetchScript {
        let mut all: Vec<Vec<u8>> = keys.iter().map(|(k, _)| k.clone()).collect();
        all.push(b"unacked_index".to_vec());
        all.push(b"unacked".to_vec());
        all.push(crate::lease::LEASES_KEY.as_bytes().to_vec());
        let routing_keys = keys
            .iter()
            .map(|(_, q)| Value::String(q.clone()).to_string().into_bytes())
            .collect();
        let ttl = config.result_expires.as_secs().clamp(1, MAX_RESULT_TTL);
        FetchScript {
            keys: all,
            routing_keys,
            lease: config.lease.as_secs_f64().to_string().into_bytes(),
            attempts_ttl: ttl.to_string().into_bytes(),
            check_revoked: if backend_is_broker(config) {
                b"check"
            } else {
                b""
            },
        }
    }

    /// Runs the script: its reply is `[key, message]` if it popped one.
    /// With `wait` (at most [`WAIT`](Self::WAIT)), first waits until the
    /// first list has a message, without taking it: `BLMOVE q q RIGHT
    /// RIGHT` moves the last element to where it was, so a reply lost on
    /// the way loses nothing. Pipelined, the script runs as soon as the
    /// wait ends: one round trip. (Redis has no blocking wait on several
    /// lists that does not pop; a message on another list is found when the
    /// wait ends, within a second.)
    fn pop(
        &self,
        c: &mut Connection,
        tag: &str,
        wait: Option<Duration>,
    ) -> Result<Reply, CeleryError> {
        let first = &self.keys[0];
        let wait = wait.map(|d| format!("{:.3}", d.as_secs_f64()));
        if let Some(secs) = &wait {
            c.queue(&[b"BLMOVE", first, first, b"RIGHT", b"RIGHT", secs.as_bytes()]);
        }
        let now = unix_now().to_string();
        let numkeys = self.keys.len().to_string();
        let mut args: Vec<&[u8]> = vec![b"EVAL", FETCH_SCRIPT.as_bytes(), numkeys.as_bytes()];
        args.extend(self.keys.iter().map(Vec::as_slice));
        args.extend([tag.as_bytes(), now.as_bytes()]);
        args.extend(self.routing_keys.iter().map(Vec::as_slice));
        args.extend([
            self.lease.as_slice(),
            &self.attempts_ttl,
            self.check_revoked,
        ]);
        c.queue(&args);
        c.flush()?;
        let waited = if wait.is_some() {
            Some(c.read_reply()?)
        } else {
            None
        };
        let popped = c.read_reply()?;
        // A popped message is never dropped (it is recorded as ours); else
        // an error reply to the wait (a first list of the wrong type) is
        // reported, as the script's own would be.
        match (waited, popped) {
            (_, popped @ Reply::Array(Some(_))) => Ok(popped),
            (Some(e @ Reply::Error(_)), _) => Ok(e),
            (_, popped) => Ok(popped),
        }
    }
}

impl Fetch<'_> {
    /// One step of fetching: the message this worker popped, if any, as
    /// (queue, message, delivery tag, deliveries counted: `None` for a
    /// fetch whose reply was lost). First finds out what became of a
    /// fetch whose reply was lost; then pops (after a wait, if the last pop
    /// found nothing); `None` if nothing came (the caller asks again).
    fn next_message(
        &self,
        leader: &mut Leader,
        soonest_held: Option<Instant>,
    ) -> Result<Option<Fetched>, CeleryError> {
        let conn = match &mut leader.conn {
            Some(c) => c,
            None => leader.conn.insert(Connection::open(self.url)?),
        };
        if let Some(tag) = leader.unconfirmed.clone() {
            let entry = conn
                .command(&[b"HGET", b"unacked", tag.as_bytes()])?
                .ok()?
                .into_bytes();
            leader.unconfirmed = None;
            if let Some((queue, raw)) = entry.as_deref().and_then(unacked_entry) {
                let (attempts, revoked) = (None, None);
                return Ok(Some(Fetched {
                    queue,
                    raw,
                    tag,
                    attempts,
                    revoked,
                }));
            }
        }
        let tag = new_task_id();
        // Set before asking: if the reply is lost, the next call looks for it.
        leader.unconfirmed = Some(tag.clone());
        // The last pop found nothing: wait for a message first.
        let wait = leader.idle.then(|| fetch_wait(soonest_held));
        let reply = self.script.pop(conn, &tag, wait)?;
        leader.unconfirmed = None;
        if let Reply::Error(e) = &reply {
            leader.idle = false;
            self.pause_after(e);
            return Ok(None);
        }
        self.error_cleared();
        let parts = reply.into_array();
        let integer = |i: usize| match parts.get(i) {
            Some(Reply::Integer(n)) => Some(*n),
            _ => None,
        };
        let attempts = integer(2).and_then(|n| u64::try_from(n).ok());
        let checked = integer(3);
        // No message left on any list: the next fetch waits at once.
        let more = integer(5) != Some(0);
        let mut parts = parts.into_iter().map(Reply::into_bytes);
        let (key, raw) = (parts.next().flatten(), parts.next().flatten());
        let checked_id = parts.nth(2).flatten();
        if let (Some(key), Some(raw)) = (key, raw) {
            leader.idle = !more;
            let key = String::from_utf8_lossy(&key).into_owned();
            let queue = key.split(SEP).next().unwrap_or(&key).to_string();
            let revoked = match (checked, checked_id) {
                (Some(n @ (0 | 1)), Some(id)) => {
                    Some((String::from_utf8_lossy(&id).into_owned(), n == 1))
                }
                _ => None,
            };
            return Ok(Some(Fetched {
                queue,
                raw,
                tag,
                attempts,
                revoked,
            }));
        }
        leader.idle = true;
        Ok(None)
    }

    /// An error reply (Redis loading its data, out of memory, a key of the
    /// wrong type) is not the connection's fault: say so and pause before
    /// asking again, longer each time.
    fn pause_after(&self, error: &str) {
        let pause = self.error_pause(error);
        std::thread::sleep(pause);
    }

    /// The first pause after an error reply; it doubles up to the last.
    const FIRST_PAUSE: Duration = Duration::from_millis(100);
    /// At most a second, so that the stop flag is still seen within one.
    const LAST_PAUSE: Duration = Duration::from_secs(1);

    /// Records an error reply to a fetch; returns how long to wait before the
    /// next one. The first of a run is reported.
    fn error_pause(&self, error: &str) -> Duration {
        let mut pause = lock(&self.pause);
        if pause.is_zero() {
            eprintln!(
                "celery-worker: the broker answered a fetch with an error, retrying: {error}"
            );
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

/// How long the leader's blocking wait lasts: a second (kombu's), cut to
/// the soonest held eta, so that a held task runs when it is due rather
/// than when the wait ends; at least a millisecond (`BLMOVE`'s 0 waits for
/// ever). A job held by another runner during a wait may still wait for its
/// end, at most the second.
fn fetch_wait(soonest_held: Option<Instant>) -> Duration {
    let until_due = soonest_held.map_or(FetchScript::WAIT, |due| {
        due.saturating_duration_since(Instant::now())
    });
    until_due.clamp(Duration::from_millis(1), FetchScript::WAIT)
}

struct Pidbox {
    /// The listener's current socket, for `stop` to shut.
    socket: Arc<Mutex<Option<Stream>>>,
    handle: std::thread::JoinHandle<()>,
}

impl Pidbox {
    /// Ends the listener; the worker's stop flag must be set already (a
    /// listener that reconnects after this looked sees it, under the lock).
    fn stop(self) {
        if let Some(s) = lock(&self.socket).as_ref() {
            let _ = s.shutdown(Shutdown::Both);
        }
        let _ = self.handle.join();
    }
}

/// Opens and subscribes the pidbox connection and registers its socket in
/// `current` for [`Pidbox::stop`]; refused once `stop` is set, checked
/// under the lock `Pidbox::stop` takes, so no socket is registered after
/// it looked (the listener would read it for ever, and the join wait).
fn open_pidbox(
    url: &RedisUrl,
    current: &Mutex<Option<Stream>>,
    stop: &AtomicBool,
) -> Result<Connection, CeleryError> {
    let mut conn = Connection::open(url)?;
    let channel = format!("/{}.celery.pidbox", url.db);
    conn.command(&[b"SUBSCRIBE", channel.as_bytes()])?.ok()?;
    // Broadcasts are rare: quiet is normal, so no read timeout here (a
    // silent link goes unnoticed until it speaks or breaks).
    conn.set_read_timeout(None)?;
    let mut current = lock(current);
    if stop.load(Ordering::SeqCst) {
        return Err(CeleryError::Shutdown);
    }
    *current = Some(conn.writer()?);
    Ok(conn)
}

/// How many times a worker tries to reach its broker at start-up before it
/// gives up (Celery's `broker_connection_max_retries`); with pauses of up to
/// 5 s that is about 8 minutes.
const START_TRIES: u32 = 100;

/// Errors that pass with time, worth trying again: Redis not reachable
/// (not up yet, restarting, a cut link) or answering that it cannot serve
/// now (loading its data, a script running too long, a failover, out of
/// memory). Any other error reply is an answer: trying again would get it
/// again.
fn transient(e: &CeleryError) -> bool {
    const PASSING: [&str; 5] = ["LOADING", "BUSY", "TRYAGAIN", "MASTERDOWN", "OOM"];
    e.is_connection()
        || matches!(e, CeleryError::Redis(m) if PASSING.iter().any(|p| m.starts_with(p)))
}

/// Connects and declares each queue's kombu binding (`SADD
/// _kombu.binding.<q>`), as a Celery worker does at start.
fn declare_queues(url: &RedisUrl, queues: &[String]) -> Result<Connection, CeleryError> {
    let mut c = Connection::open(url)?;
    for q in queues {
        let key = format!("_kombu.binding.{q}");
        let member = format!("{q}{SEP}{SEP}{q}");
        c.command(&[b"SADD", key.as_bytes(), member.as_bytes()])?
            .ok()?;
    }
    Ok(c)
}

struct Job {
    msg: TaskMessage,
    tag: String,
    /// Renewed while the job lives (running or held).
    lease: Lease,
    /// When it arrived and how many times it was delivered: for its report.
    delivery: Delivery,
}

/// The tasks this worker's runners hold, so that a cold shutdown can return
/// their messages to their queues and be sure no runner acks one after.
#[derive(Default)]
struct Running {
    state: Mutex<RunningState>,
    /// Rung when a result has been stored (`storing` went down) or a
    /// fetch ended (`fetching` went down).
    stored: Condvar,
}

#[derive(Default)]
struct RunningState {
    /// Delivery tags of the tasks running now.
    tags: HashSet<String>,
    /// Delivery tags of the messages held until their eta.
    held: HashSet<String>,
    /// Results being stored (and their messages acked) right now.
    storing: usize,
    /// Fetches under way: a message popped (recorded as unacked) is not
    /// yet in `tags` or `held` until its fetch ends.
    fetching: usize,
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

    /// The message `tag` is held until its eta; false after a cold shutdown.
    fn hold(&self, tag: &str) -> bool {
        let mut state = lock(&self.state);
        if state.cold {
            return false;
        }
        state.held.insert(tag.to_string());
        true
    }

    /// The held message `tag` fell due and runs now; false once a cold
    /// shutdown has taken it back.
    fn take_held(&self, tag: &str) -> bool {
        let mut state = lock(&self.state);
        if state.cold || !state.held.remove(tag) {
            return false;
        }
        state.tags.insert(tag.to_string());
        true
    }

    /// The held message `tag` is given up (warm shutdown); false once a
    /// cold shutdown has taken it back.
    fn release_held(&self, tag: &str) -> bool {
        let mut state = lock(&self.state);
        !state.cold && state.held.remove(tag)
    }

    /// The task `tag` did not run; false once a cold shutdown has taken it.
    fn abandon(&self, tag: &str) -> bool {
        let mut state = lock(&self.state);
        !state.cold && state.tags.remove(tag)
    }

    /// Has a cold shutdown begun? (A result still being stored gives up.)
    fn is_cold(&self) -> bool {
        lock(&self.state).cold
    }

    /// A runner begins a fetch; `None` after a cold shutdown. The fetch
    /// ends when the guard drops, after the message it popped is in `tags`
    /// or `held`, or back on its queue.
    fn begin_fetch(&self) -> Option<FetchUnderWay<'_>> {
        let mut state = lock(&self.state);
        if state.cold {
            return None;
        }
        state.fetching += 1;
        Some(FetchUnderWay(self))
    }

    /// A result [`finish`](Self::finish) allowed has been stored.
    fn stored(&self) {
        lock(&self.state).storing -= 1;
        self.stored.notify_all();
    }

    /// Stops every later store, ack and fetch, waits for the ones under
    /// way (at most `limit`: a broker that does not answer must not hold up
    /// the shutdown), and returns the tags of the tasks still running and
    /// held. Waiting for the fetches matters: the caller exits the process
    /// next, and a runner idle in its wait would pop the messages returned
    /// to their queues, recorded as unacked by a process about to die.
    fn go_cold(&self, limit: Duration) -> Vec<String> {
        let mut state = lock(&self.state);
        state.cold = true;
        let deadline = Instant::now() + limit;
        while state.storing > 0 || state.fetching > 0 {
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
        let held: Vec<String> = state.held.drain().collect();
        state.tags.drain().chain(held).collect()
    }
}

/// A fetch counted by [`Running::begin_fetch`]; dropping it ends it.
struct FetchUnderWay<'a>(&'a Running);

impl Drop for FetchUnderWay<'_> {
    fn drop(&mut self) {
        lock(&self.0.state).fetching -= 1;
        self.0.stored.notify_all();
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
    /// How long [`now`](Self::now) waits for results already being stored
    /// and fetches under way.
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
            // A message already restored (its lease lapsed) is gone from
            // `unacked`: nothing to return.
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

/// Whether the backend holds a REVOKED record for task `id` (false if it
/// cannot be read: the task runs, at least once).
fn revoked_record_stored(backend: &Pool, id: &str) -> bool {
    let key = result_key(id);
    let stored = backend
        .with(|c| c.command(&[b"GET", key.as_bytes()]))
        .ok()
        .and_then(Reply::into_bytes);
    stored.is_some_and(|s| is_revoked_record(&s))
}

/// Whether a stored result record is REVOKED.
fn is_revoked_record(record: &[u8]) -> bool {
    serde_json::from_slice::<Value>(record)
        .ok()
        .and_then(|v| {
            v.get("status")
                .and_then(Value::as_str)
                .map(|s| s == "REVOKED")
        })
        .unwrap_or(false)
}

/// The name Celery's worker gives itself by default: `celery@<host>`.
fn node_name() -> String {
    format!("celery@{}", hostname())
}

fn same_server(a: &Pool, b: &Pool) -> bool {
    a.url() == b.url()
}

/// Whether the result backend is the broker's own database (no backend
/// given, or the same URL), so that a script run on the broker reads the
/// result records. A URL that does not parse counts as another server.
fn backend_is_broker(config: &WorkerConfig) -> bool {
    match &config.backend {
        None => true,
        Some(backend) => match (RedisUrl::parse(&config.broker), RedisUrl::parse(backend)) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        },
    }
}

/// The zset of leases ([`crate::lease::LEASES_KEY`]); an ack forgets its entry.
const LEASES: &[u8] = crate::lease::LEASES_KEY.as_bytes();

/// How long a worker keeps trying to store a result (and ack its message)
/// while Redis cannot be reached: Celery tries for about 20 s; a result
/// given up on is lost and its task runs again once its lease lapses,
/// so this is generous.
const STORE_PATIENCE: Duration = Duration::from_secs(300);

/// Runs `step` on `pool` until it succeeds, pausing 100 ms .. 5 s between
/// tries while the error is [`transient`] (a broken link, Redis restarting
/// or loading its data); gives up on any other error, after
/// [`STORE_PATIENCE`], or as soon as `give_up` says so. `what` and
/// `id` are for the log, which says when trying starts and how it ended.
fn with_retries<T>(
    pool: &Pool,
    what: &str,
    id: &str,
    give_up: &dyn Fn() -> bool,
    mut step: impl FnMut(&mut Connection) -> Result<T, CeleryError>,
) -> Result<T, CeleryError> {
    let deadline = Instant::now() + STORE_PATIENCE;
    let mut pause = Duration::from_millis(100);
    let mut failures = 0u32;
    loop {
        let e = match pool.with(&mut step) {
            Ok(v) => {
                if failures > 0 {
                    eprintln!(
                        "celery-worker: {what} of task {id}: done after {failures} failed tries"
                    );
                }
                return Ok(v);
            }
            Err(e) => e,
        };
        if !transient(&e) {
            return Err(e);
        }
        failures += 1;
        if failures == 1 {
            eprintln!("celery-worker: {what} of task {id} failed ({e}); retrying for up to {STORE_PATIENCE:?}");
        }
        if give_up() || Instant::now() + pause > deadline {
            return Err(e);
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}

/// Sends the follow-up messages (LPUSH), stores the outcome (SETEX +
/// PUBLISH, also under the ids in `follow.same_result`) and acks the
/// message (ZREM + HDEL): one transaction when the backend is the broker's
/// server, else in that order, so that a crash in between leaves the
/// message unacked (run again: at least once, follow-ups included).
///
/// Each step is retried while Redis cannot be reached ([`with_retries`]);
/// `give_up` (a cold shutdown) stops that. A step given up on leaves the
/// message unacked: nothing is acked that was not stored.
fn store_and_ack(
    broker: &Pool,
    backend: &Pool,
    job: &Job,
    (outcome, report): (&Outcome, Option<&TaskReport>),
    follow: &FollowUps,
    expires: Duration,
    give_up: &dyn Fn() -> bool,
) {
    job.lease.settling(); // acked below: its entry will go

    // Redis refuses an expiry past about 292 million years (milliseconds in
    // an i64); a failed SETEX inside MULTI would not stop the ack.
    let ttl = expires.as_secs().clamp(1, MAX_RESULT_TTL).to_string();
    // The task's own record carries its report; a chain's later tasks
    // that share its outcome (`same_result`) did not run.
    let own = (
        result_key(&job.msg.id),
        outcome.to_json_reported(&job.msg.id, report),
    );
    let records: Vec<(String, String)> = std::iter::once(own)
        .chain(
            follow
                .same_result
                .iter()
                .map(|id| (result_key(id), outcome.to_json(id))),
        )
        .collect();
    let messages: Vec<(&str, String)> = follow
        .messages
        .iter()
        .map(|m| (m.queue.as_str(), m.to_json()))
        .collect();
    let id = &job.msg.id;
    let same = same_server(broker, backend);
    if !same && !messages.is_empty() {
        // On two servers this step stands alone: a reply lost after Redis
        // took the LPUSHes sends them again (the follow-ups run twice).
        // They go only while the message is still ours, as on one server
        // (a restore between this step and the ack below still sends them
        // twice: that window is this step's round trip and the store's).
        let sent = with_retries(broker, "sending what follows", id, give_up, |c| {
            let numkeys = (1 + messages.len()).to_string();
            let mut args: Vec<&[u8]> = vec![
                b"EVAL",
                SEND_IF_OURS.as_bytes(),
                numkeys.as_bytes(),
                b"unacked",
            ];
            args.extend(messages.iter().map(|(queue, _)| queue.as_bytes()));
            args.push(job.tag.as_bytes());
            args.extend(messages.iter().map(|(_, body)| body.as_bytes()));
            c.command(&args)?.ok()?;
            Ok(())
        });
        if let Err(e) = sent {
            eprintln!("celery-worker: could not send what follows task {id}: {e}");
            return; // not acked: it will be restored and run again
        }
    }
    // A try after one whose reply was lost: if that one committed (one
    // transaction, the ack included), the message is gone from `unacked`
    // and repeating it would send the follow-ups twice.
    let mut tried = false;
    let r = with_retries(backend, "storing the result", id, give_up, |c| {
        if same && std::mem::replace(&mut tried, true) {
            let unacked = c
                .command(&[b"HEXISTS", b"unacked", job.tag.as_bytes()])?
                .ok()?;
            if unacked == Reply::Integer(0) {
                return Ok(());
            }
        }
        if same {
            return settle_on_one_server(c, job, &messages, &records, &ttl);
        }
        // Every queued command has one reply (+QUEUED, or +OK for MULTI).
        let mut replies = 0;
        let mut send = |c: &mut Connection, args: &[&[u8]]| {
            c.queue(args);
            replies += 1;
        };
        send(c, &[b"MULTI"]);
        for (key, record) in &records {
            send(
                c,
                &[b"SETEX", key.as_bytes(), ttl.as_bytes(), record.as_bytes()],
            );
            send(c, &[b"PUBLISH", key.as_bytes(), record.as_bytes()]);
        }
        send(c, &[b"EXEC"]);
        c.flush()?;
        let mut last = Reply::Bulk(None);
        for _ in 0..replies {
            last = c.read_reply()?.ok()?;
        }
        // EXEC's array holds each command's reply: one may be an error
        // while the others took effect.
        for reply in last.into_array() {
            if let Reply::Error(e) = &reply {
                eprintln!("celery-worker: storing the result of task {id}: a command failed: {e}");
            }
        }
        Ok(())
    });
    if let Err(e) = r {
        eprintln!(
            "celery-worker: could not store the result of task {id}: {e}; its message stays \
             unacked and runs again once its lease lapses"
        );
        return;
    }
    if !same {
        // A try after one whose reply was lost finds the entry gone when
        // that one took effect: only the first try's HDEL tells.
        let mut tries = 0;
        let acked = with_retries(broker, "acking", id, give_up, |c| {
            tries += 1;
            c.queue(&[b"ZREM", b"unacked_index", job.tag.as_bytes()]);
            c.queue(&[b"HDEL", b"unacked", job.tag.as_bytes()]);
            c.queue(&[b"ZREM", LEASES, job.tag.as_bytes()]);
            c.flush()?;
            c.read_reply()?.ok()?;
            let hdel = c.read_reply()?.ok()?;
            c.read_reply()?.ok()?;
            Ok(hdel)
        });
        match acked {
            Ok(Reply::Integer(0)) if tries == 1 => report_taken_away(job),
            Ok(_) => {}
            Err(e) => eprintln!("celery-worker: could not ack task {id}: {e}"),
        }
    }
}

/// Sends the follow-ups, stores the records and acks `job`, in one step
/// on the server that is both broker and backend ([`SETTLE_SCRIPT`]). The
/// follow-ups go only if the message was still unacked: if its lease
/// lapsed and another worker restored it, the restored copy sends them
/// when it runs, and sending them here too would run the rest of a chain
/// (or a callback) twice.
fn settle_on_one_server(
    c: &mut Connection,
    job: &Job,
    messages: &[(&str, String)],
    records: &[(String, String)],
    ttl: &str,
) -> Result<(), CeleryError> {
    let numkeys = (3 + messages.len() + records.len()).to_string();
    let count = messages.len().to_string();
    let mut args: Vec<&[u8]> = vec![
        b"EVAL",
        SETTLE_SCRIPT.as_bytes(),
        numkeys.as_bytes(),
        b"unacked_index",
        b"unacked",
        LEASES,
    ];
    args.extend(messages.iter().map(|(queue, _)| queue.as_bytes()));
    args.extend(records.iter().map(|(key, _)| key.as_bytes()));
    args.extend([job.tag.as_bytes(), ttl.as_bytes(), count.as_bytes()]);
    args.extend(messages.iter().map(|(_, body)| body.as_bytes()));
    args.extend(records.iter().map(|(_, record)| record.as_bytes()));
    let reply = c.command(&args)?.ok()?.into_array();
    let mut reply = reply.into_iter();
    if reply.next() == Some(Reply::Integer(0)) {
        report_taken_away(job);
    }
    // A command may fail (a queue key of the wrong type) while the others
    // took effect.
    for e in reply.flat_map(Reply::into_array) {
        let e = e.into_bytes().unwrap_or_default();
        eprintln!(
            "celery-worker: storing the result of task {}: a command failed: {}",
            job.msg.id,
            String::from_utf8_lossy(&e)
        );
    }
    Ok(())
}

/// Acks the message `ARGV[1]` (`KEYS[1..3]` = `unacked_index`, `unacked`,
/// the leases) and, only if it was still unacked, pushes the `ARGV[3]`
/// follow-up messages (`ARGV[4..]`) on their queues (`KEYS[4..]`); then
/// stores and publishes each record (the remaining `KEYS` and `ARGV`, in
/// the same places) for `ARGV[2]` seconds. Returns `{1 if it acked, the
/// error texts of the commands that failed}`. One step, as the `MULTI` it
/// replaced: a crash leaves all of it undone or none.
const SETTLE_SCRIPT: &str = r#"
local ours = redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
local errors = {}
local function run(...)
  local r = redis.pcall(...)
  if type(r) == 'table' and r.err then errors[#errors + 1] = r.err end
end
local sent = 3 + tonumber(ARGV[3])
if ours == 1 then
  for i = 4, sent do run('LPUSH', KEYS[i], ARGV[i]) end
end
for i = sent + 1, #KEYS do
  run('SETEX', KEYS[i], ARGV[2], ARGV[i])
  run('PUBLISH', KEYS[i], ARGV[i])
end
return {ours, errors}
"#;

/// Pushes the follow-up messages (`ARGV[2..]`) on their queues (`KEYS[2..]`,
/// in the same places) only if the message `ARGV[1]` is still in `unacked`
/// (`KEYS[1]`): the two-server twin of [`SETTLE_SCRIPT`]'s condition.
const SEND_IF_OURS: &str = r#"
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 0 then return 0 end
for i = 2, #KEYS do redis.call('LPUSH', KEYS[i], ARGV[i]) end
return 1
"#;

/// The ack of `job` found its message no longer unacked: its lease lapsed
/// while it ran (this worker paused, or cut off from Redis, for a lease
/// period) and another worker restored it, so it runs (or ran) there too;
/// or Redis lost its data. The heartbeat, which says so at its next
/// renewal, is told an ack is under way ([`Lease::settling`]): this is the
/// one place left to say it.
fn report_taken_away(job: &Job) {
    eprintln!(
        "celery-worker: task {} (delivery tag {}) was no longer unacked when this worker acked \
         it: its lease lapsed while it ran (this worker could not renew it for a lease period: \
         paused, or Redis out of reach or too slow?) and another worker restored it, or Redis \
         lost its data (FLUSHALL, a restart without it). The task may have run twice; if this \
         worker is often paused or Redis often slow, give a longer --lease",
        job.msg.id, job.tag
    );
}

/// Whether the message `tag` is still this worker's (in `unacked`). If
/// Redis cannot say, it is taken as ours: the job runs, as before leases
/// (at least once).
fn still_unacked(broker: &Pool, tag: &str) -> bool {
    let exists = broker.with(|c| c.command(&[b"HEXISTS", b"unacked", tag.as_bytes()])?.ok());
    !matches!(exists, Ok(Reply::Integer(0)))
}

/// Acks the message `tag` without a result (ZREM + HDEL), for a message
/// dropped as unreadable.
fn ack(broker: &Pool, tag: &str) {
    let acked = broker.with(|c| {
        c.queue(&[b"ZREM", b"unacked_index", tag.as_bytes()]);
        c.queue(&[b"HDEL", b"unacked", tag.as_bytes()]);
        c.queue(&[b"ZREM", LEASES, tag.as_bytes()]);
        c.flush()?;
        c.read_reply()?.ok()?;
        c.read_reply()?.ok()?;
        c.read_reply()?.ok()
    });
    if let Err(e) = acked {
        eprintln!("celery-worker: could not ack dropped message {tag}: {e}");
    }
}

/// The (routing key, message) of an `unacked` entry, kombu's
/// `[message, exchange, routing key]`; `None` if it is not one.
pub(crate) fn unacked_entry(entry: &[u8]) -> Option<(String, Vec<u8>)> {
    // Leniently: a lone surrogate in its headers must not lose it.
    let parsed = crate::message::read_envelope(entry).ok()?;
    let parts = parsed.as_array()?;
    let queue = parts.get(2).and_then(Value::as_str).unwrap_or("celery");
    let raw = serde_json::to_vec(parts.first()?).ok()?;
    Some((queue.to_string(), raw))
}

/// Puts unacked messages older than `visibility` back on their queues, as
/// kombu's `restore_visible` does, under the `unacked_mutex` lock, except
/// those a worker of ours leased: the heartbeats restore those once their
/// lease lapsed ([`crate::lease`]). Returns how many it restored.
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
            if restore_unless_leased(c, &tag, Restore::Unleased)? {
                n += 1;
            }
        }
        Ok(n)
    });
    release_restore_lock(broker, &token);
    result
}

/// Puts the unacked message `tag` back on its queue (marked redelivered, as
/// kombu does) and forgets it; false if there was no such message (or
/// another restore took it first).
fn restore_one(c: &mut Connection, tag: &[u8]) -> Result<bool, CeleryError> {
    let entry = c.command(&[b"HGET", b"unacked", tag])?.ok()?.into_bytes();
    // An entry we cannot read is forgotten without a push, as before.
    let message = match entry.as_deref().and_then(unacked_entry) {
        Some((queue, raw)) => Some((queue, mark_redelivered(&raw)?)),
        None => None,
    };
    let mut args: Vec<&[u8]> = vec![b"EVAL", RESTORE_SCRIPT.as_bytes()];
    match &message {
        Some((queue, raw)) => args.extend([
            &b"3"[..],
            b"unacked_index",
            b"unacked",
            queue.as_bytes(),
            tag,
            raw,
        ]),
        None => args.extend([&b"2"[..], b"unacked_index", b"unacked", tag]),
    }
    let restored = c.command(&args)?.ok()?;
    Ok(restored == Reply::Integer(1))
}

/// Forgets the unacked message `ARGV[1]` (`KEYS[1]` = `unacked_index`,
/// `KEYS[2]` = `unacked`) and, if it was still there, pushes `ARGV[2]` (if
/// given) on the queue `KEYS[3]`; returns 1 if it pushed. One step: if its
/// reply is lost and the caller tries again, the message is either back on
/// its queue and gone from `unacked`, or neither; never queued twice, and
/// two restorers of one message push it once.
const RESTORE_SCRIPT: &str = r#"
redis.call('ZREM', KEYS[1], ARGV[1])
if redis.call('HDEL', KEYS[2], ARGV[1]) == 1 and ARGV[2] then
  redis.call('RPUSH', KEYS[3], ARGV[2])
  return 1
end
return 0
"#;

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

    /// The system call thread `tid` of this process is in (`None` while it
    /// runs).
    fn current_syscall(tid: i32) -> Option<i64> {
        std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall"))
            .ok()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    /// A pause (the start-up retries', the pidbox's) sleeps on the stop
    /// itself: blocked in a futex wait, not in a timed sleep that wakes to
    /// look at the flag, and it ends when the worker stops.
    #[test]
    fn a_pause_sleeps_until_the_worker_stops_without_waking_to_look() {
        let stop = Arc::new(AtomicBool::new(false));
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let bell = Arc::new(Bell::default());
        let (s, b) = (stop.clone(), bell.clone());
        let pausing = std::thread::spawn(move || {
            // SAFETY: gettid(2) has no preconditions.
            tid_tx.send(unsafe { libc::gettid() }).unwrap();
            b.pause_unless_stopped(&s, Duration::from_secs(3600))
        });
        let tid = tid_rx.recv().unwrap();
        crate::testing::wait_until(
            Duration::from_secs(60),
            "the pausing thread blocked on the stop (a futex wait), not in a timed sleep",
            || current_syscall(tid) == Some(libc::SYS_futex),
        );
        stop.store(true, Ordering::SeqCst);
        bell.ring();
        assert!(
            !pausing.join().unwrap(),
            "the pause ran out instead of ending at the stop"
        );
    }

    #[test]
    fn a_worker_configs_debug_masks_the_passwords() {
        let mut config = WorkerConfig::new("redis://:s3cret@h:1/0");
        config.backend = Some("redis://alice:0ther@h:2/1".to_string());
        let shown = format!("{config:?}");
        assert!(
            !shown.contains("s3cret") && !shown.contains("0ther"),
            "{shown}"
        );
        assert!(shown.contains("redis://:**@h:1/0"), "{shown}");
        assert!(shown.contains("redis://alice:**@h:2/1"), "{shown}");
    }

    #[test]
    fn a_message_quoting_a_lone_surrogate_in_its_headers_is_restored() {
        let redis = RedisServer::start();
        let mut c = redis.connect();
        // As a Python client writes `argsrepr` for a str argument '\ud800'.
        let raw = TaskMessage::new("rust.echo", serde_json::json!([]), "celery")
            .to_json()
            .replace(r#""argsrepr":"()""#, r#""argsrepr":"('\ud800',)""#);
        assert!(raw.contains(r"\ud800"), "{raw}");
        let entry = format!("[{raw}, \"\", \"celery\"]");
        c.command(&[b"HSET", b"unacked", b"tag1", entry.as_bytes()])
            .unwrap();
        assert!(restore_one(&mut c, b"tag1").unwrap(), "not restored");
        let back = c.command(&[b"RPOP", b"celery"]).unwrap().into_bytes();
        let back = TaskMessage::parse(&back.expect("back on its queue")).unwrap();
        assert!(back.redelivered);
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
