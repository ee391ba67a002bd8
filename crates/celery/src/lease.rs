//! Leases instead of re-runs: a live worker keeps the tasks it runs.
//!
//! kombu's Redis transport restores an unacked message once its score in
//! `unacked_index` (the time it was fetched) is older than the visibility
//! timeout, whether or not its worker is still running it: a task longer
//! than the timeout runs twice (celery #2599, #5935, kombu #337). Our
//! worker keeps the same records and adds a lease:
//!
//! * The fetch script records a lease for each message it pops, in the
//!   zset `rust:leases` (delivery tag -> the time it lapses, by Redis's
//!   own clock, `TIME`), and counts the delivery in `rust:attempts:<task
//!   id>` ([`attempts_key`]).
//! * One heartbeat thread per worker (`Heartbeat`) renews, every lease
//!   period / 3, the lease of every message the worker holds (running or
//!   held for its eta): the lapse moves one period ahead, and the
//!   `unacked_index` score becomes now (`ZADD XX GT`: an eta ahead is
//!   kept). A Python worker's restore, which reads only that score, so
//!   never restores a task a live worker of ours runs: a Python client and
//!   a Python worker see nothing new.
//! * A message is restored only when its lease lapsed: the heartbeat
//!   restores lapsed leases every round, and the visibility-timeout pass
//!   ([`crate::worker::restore_unacked`]) leaves every leased message to
//!   the heartbeats (`restore_unless_leased`). A message without a lease
//!   (a Python worker fetched it) is restored after the visibility
//!   timeout, as before.
//! * After Redis was out of reach (its clock went on, the leases seem to
//!   have lapsed), or after Redis's clock jumped ahead (each renewal reads
//!   it: ahead of the worker's own by half a period or more), a heartbeat
//!   restores nothing until it has renewed for a whole lease period without
//!   failing: the live workers renew first.
//!
//! The worst case stays "at least once": a worker cut off from Redis for
//! more than a lease period loses its tasks to another worker; when it
//! reaches Redis again its heartbeat finds their entries gone and says so.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::connection_pool::Pool;
use crate::error::CeleryError;
use crate::message::mark_redelivered;
use crate::resp::{Connection, Reply};

/// The zset of leases: delivery tag -> when its lease lapses (Redis
/// `TIME`, seconds). Neither kombu nor Celery reads it.
pub const LEASES_KEY: &str = "rust:leases";

/// The counter of deliveries of task `id` (INCR'd by the fetch script of
/// our worker; expires with the result record): see
/// [`CeleryExecutor::attempts`](crate::CeleryExecutor::attempts).
pub fn attempts_key(id: &str) -> String {
    format!("rust:attempts:{id}")
}

/// The default lease period of a worker (`--lease`).
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);

/// The shortest lease period a worker takes: a renewal (every third of
/// it) must reach Redis well before the lease lapses, on a loaded machine
/// too, or the worker restores its own running tasks.
pub const MIN_LEASE: Duration = Duration::from_secs(1);

/// Refuses a lease period under [`MIN_LEASE`], saying what to give.
pub fn check_period(lease: Duration) -> Result<(), String> {
    if lease < MIN_LEASE {
        return Err(format!(
            "a lease period of {lease:?} could lapse between two renewals, and every task \
             would be restored while it runs: give a lease of at least a second (default 30 s)"
        ));
    }
    Ok(())
}

/// The most tags one renewal script carries (Lua's stack is bounded).
const RENEW_CHUNK: usize = 500;

/// The most lapsed leases one heartbeat round restores (the next round
/// takes the rest).
const LAPSED_PER_ROUND: &str = "1000";

/// The Lua for "now" by Redis's clock, in seconds: every lease is set and
/// checked by this one clock, whatever the workers' clocks say.
macro_rules! redis_now {
    () => {
        "local t = redis.call('TIME')\nlocal now = tonumber(t[1]) + tonumber(t[2]) / 1000000\n"
    };
}

/// Renews the leases of the tags `ARGV[3..]` (`KEYS[1]` = `unacked_index`,
/// `KEYS[2]` = [`LEASES_KEY`]) for `ARGV[1]` seconds from Redis's now, and
/// raises their `unacked_index` score to `ARGV[2]` (the worker's clock, as
/// kombu's restore reads it; `GT` keeps an eta ahead). A tag no longer in
/// `unacked_index` is not given a lease back (the task was acked, or
/// restored by another worker): returned, for the worker to say so. One
/// step, so an ack between the check and the renewal cannot happen.
const RENEW_SCRIPT: &str = concat!(
    redis_now!(),
    r#"
local lapses = now + tonumber(ARGV[1])
local gone = {}
for i = 3, #ARGV do
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) then
    redis.call('ZADD', KEYS[1], 'XX', 'GT', ARGV[2], ARGV[i])
    redis.call('ZADD', KEYS[2], lapses, ARGV[i])
  else
    gone[#gone + 1] = ARGV[i]
  end
end
return gone
"#
);

/// The tags whose lease lapsed by Redis's clock (`KEYS[1]` =
/// [`LEASES_KEY`]), at most `ARGV[1]` of them.
const LAPSED_SCRIPT: &str = concat!(
    redis_now!(),
    "return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))\n"
);

/// Restores the unacked message `ARGV[1]` unless it has a lease (in
/// `KEYS[3]`) that is still running, or any lease when `ARGV[2]` is
/// `unleased`: forgets its lease and its `unacked_index` / `unacked`
/// entries (`KEYS[1]`, `KEYS[2]`) and, if it was still unacked, pushes
/// `ARGV[3]` (if given) on `KEYS[4]`. Returns 1 if it pushed. One step: a
/// renewal, an ack or another restorer cannot come in between.
const RESTORE_SCRIPT: &str = concat!(
    redis_now!(),
    r#"
local lease = redis.call('ZSCORE', KEYS[3], ARGV[1])
if lease and (ARGV[2] == 'unleased' or tonumber(lease) > now) then
  return 0
end
redis.call('ZREM', KEYS[3], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
if redis.call('HDEL', KEYS[2], ARGV[1]) == 1 and ARGV[3] then
  redis.call('RPUSH', KEYS[4], ARGV[3])
  return 1
end
return 0
"#
);

/// Which messages [`restore_unless_leased`] may restore.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Restore {
    /// Only one no worker of ours leased (the visibility-timeout pass: a
    /// leased message is the heartbeats' to judge, after an outage too).
    Unleased,
    /// Also one whose lease lapsed (a heartbeat, healthy for a period).
    Lapsed,
}

/// Puts the unacked message `tag` back on its queue (marked redelivered,
/// as kombu does) unless a lease keeps it (see [`Restore`]); true if it
/// did. A tag with no lease (a Python worker's) is restored: the caller
/// decided it is old enough. An entry that cannot be read is forgotten
/// without a push, as kombu would fail to restore it.
pub(crate) fn restore_unless_leased(
    c: &mut Connection,
    tag: &[u8],
    which: Restore,
) -> Result<bool, CeleryError> {
    let entry = c.command(&[b"HGET", b"unacked", tag])?.ok()?.into_bytes();
    let message = match entry.as_deref().and_then(crate::worker::unacked_entry) {
        Some((queue, raw)) => Some((queue, mark_redelivered(&raw)?)),
        None => None,
    };
    let mut args: Vec<&[u8]> = vec![b"EVAL", RESTORE_SCRIPT.as_bytes()];
    let leases = LEASES_KEY.as_bytes();
    let mode: &[u8] = match which {
        Restore::Unleased => b"unleased",
        Restore::Lapsed => b"lapsed",
    };
    match &message {
        Some((queue, raw)) => args.extend([
            &b"4"[..],
            b"unacked_index",
            b"unacked",
            leases,
            queue.as_bytes(),
            tag,
            mode,
            raw,
        ]),
        None => args.extend([&b"3"[..], b"unacked_index", b"unacked", leases, tag, mode]),
    }
    Ok(c.command(&args)?.ok()? == Reply::Integer(1))
}

/// Restores the messages whose lease lapsed (at most
/// [`LAPSED_PER_ROUND`]); returns how many went back to their queues.
/// Leases left behind by a message already acked or restored are dropped.
/// A worker's heartbeat calls it once it has renewed without failure for a
/// whole period (so that, after an outage, live workers renew first); call
/// it yourself only when no worker of the queue is out of reach.
pub fn restore_lapsed(broker: &Pool) -> Result<u64, CeleryError> {
    let lapsed = broker.with(|c| {
        c.command(&[
            b"EVAL",
            LAPSED_SCRIPT.as_bytes(),
            b"1",
            LEASES_KEY.as_bytes(),
            LAPSED_PER_ROUND.as_bytes(),
        ])?
        .ok()
    })?;
    let mut restored = 0;
    for tag in lapsed
        .into_array()
        .into_iter()
        .filter_map(Reply::into_bytes)
    {
        if broker.with(|c| restore_unless_leased(c, &tag, Restore::Lapsed))? {
            restored += 1;
        }
    }
    Ok(restored)
}

/// The delivery tags this worker holds a lease on (from the fetch until
/// its message is acked or given back), for the heartbeat to renew.
#[derive(Default)]
pub(crate) struct Leases {
    state: Mutex<State>,
    /// Rung when the worker stops, so the heartbeat ends without waiting
    /// out its period.
    wake: Condvar,
}

#[derive(Default)]
struct State {
    /// Tag -> whether its loss was already reported (once is enough).
    tags: HashMap<String, bool>,
    stop: bool,
}

impl Leases {
    /// The worker holds `tag` until the returned guard drops.
    pub(crate) fn hold(self: &Arc<Self>, tag: &str) -> Lease {
        lock(&self.state).tags.insert(tag.to_string(), false);
        Lease {
            leases: self.clone(),
            tag: tag.to_string(),
        }
    }

    /// Waits `every` (or until [`stop`](Self::stop)); the tags to renew
    /// then, `None` once stopped.
    fn wait(&self, every: Duration) -> Option<Vec<String>> {
        let deadline = Instant::now() + every;
        let mut state = lock(&self.state);
        loop {
            if state.stop {
                return None;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Some(state.tags.keys().cloned().collect());
            }
            state = self
                .wake
                .wait_timeout(state, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    /// The entry of `tag` was gone when its lease was renewed: if the
    /// worker still holds it, its task may run twice. Says so, once.
    fn lost(&self, tag: &str) {
        let mut state = lock(&self.state);
        let Some(reported) = state.tags.get_mut(tag) else {
            return; // acked meanwhile: nothing lost
        };
        if !std::mem::replace(reported, true) {
            eprintln!(
                "celery-worker: the message of a task this worker holds (delivery tag {tag}) \
                 is no longer unacked: its lease lapsed (this worker could not renew it for a \
                 lease period: Redis out of reach or too slow?) and another worker restored \
                 it, or a cold shutdown returned it. The task may run twice; if Redis is \
                 often slow, give a longer --lease"
            );
        }
    }

    /// The worker is about to ack `tag` (or give it back): its entry going
    /// away under a renewal under way is expected, not a loss to report.
    /// It is still renewed until its guard drops (an ack may be retried
    /// for minutes while Redis is out of reach).
    pub(crate) fn settling(&self, tag: &str) {
        if let Some(reported) = lock(&self.state).tags.get_mut(tag) {
            *reported = true;
        }
    }

    fn stop(&self) {
        lock(&self.state).stop = true;
        self.wake.notify_all();
    }
}

/// A lease held on a fetched message; dropping it stops the renewals (the
/// message was acked or given back, or is about to be).
pub(crate) struct Lease {
    leases: Arc<Leases>,
    tag: String,
}

impl Lease {
    /// See [`Leases::settling`].
    pub(crate) fn settling(&self) {
        self.leases.settling(&self.tag);
    }

    /// Stops the renewals before the worker gives the message back itself
    /// (the heartbeat would find its entry gone and take it for lost).
    pub(crate) fn release(&self) {
        lock(&self.leases.state).tags.remove(&self.tag);
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.release();
    }
}

/// How long the heartbeat waits between renewals: a third of the shorter
/// of the lease and the visibility timeout (a Python worker's restore
/// must see a fresh score too), up to an hour (a huge lease is still
/// renewed now and then). Neither counts below [`MIN_LEASE`] here: a
/// visibility timeout of a few milliseconds (a library config may give
/// one) would make the heartbeat a busy loop of Redis round trips.
pub(crate) fn renew_every(lease: Duration, visibility: Duration) -> Duration {
    let shorter = lease.min(visibility).max(MIN_LEASE);
    (shorter / 3).min(Duration::from_secs(3600))
}

/// Whether a heartbeat may restore lapsed leases: only after it renewed
/// for a whole lease period without failing, and without seeing Redis's
/// clock jump ahead. After Redis was out of reach, or after its clock
/// jumped (an NTP step, a restored VM), every lease seems to have lapsed by
/// that clock; waiting one period lets the live workers renew theirs first.
#[derive(Debug, Default)]
pub(crate) struct Health {
    /// Since when every renewal succeeded; `None` after a failure.
    since: Option<Instant>,
    /// Failures in a row, for the log.
    failures: u32,
    /// The last renewal: when, and what Redis's clock said then.
    last: Option<(Instant, f64)>,
}

/// What a heartbeat says when it sees Redis's clock jump `ahead` seconds.
fn jump_warning(ahead: f64, period: Duration) -> String {
    format!(
        "celery-worker: Redis's clock jumped {ahead:.0} s ahead of this worker's: \
         leases seem to have lapsed; restoring none for a lease period ({period:?}) \
         while the live workers renew theirs"
    )
}

impl Health {
    /// A renewal succeeded at `now`, when Redis's clock said `redis_now`
    /// (seconds).
    fn renewed(&mut self, now: Instant, redis_now: f64, period: Duration) {
        if let Some((at, then)) = self.last.replace((now, redis_now)) {
            // Redis's clock ran ahead of ours by half a period or more: a
            // jump that may have lapsed leases their workers still renew.
            let ahead = (redis_now - then) - now.saturating_duration_since(at).as_secs_f64();
            if ahead >= period.as_secs_f64() / 2.0 {
                eprintln!("{}", jump_warning(ahead, period));
                self.since = Some(now);
            }
        }
        if self.failures > 0 {
            eprintln!(
                "celery-worker: renewing leases again after {} failed tries",
                self.failures
            );
        }
        self.failures = 0;
        self.since.get_or_insert(now);
    }

    fn failed(&mut self, e: &CeleryError, period: Duration) {
        self.since = None;
        self.failures += 1;
        if self.failures == 1 {
            eprintln!(
                "celery-worker: cannot renew the leases of the running tasks ({e}); retrying. \
                 If this lasts more than the lease period ({period:?}), other workers may \
                 restore and run them again"
            );
        }
    }

    fn may_restore(&self, now: Instant, period: Duration) -> bool {
        self.since
            .is_some_and(|s| now.saturating_duration_since(s) >= period)
    }
}

/// The heartbeat thread of a worker: renews its leases, restores lapsed
/// ones. Joined by [`stop`](Self::stop).
pub(crate) struct Heartbeat {
    leases: Arc<Leases>,
    handle: JoinHandle<()>,
}

impl Heartbeat {
    /// Starts the thread `celery-lease`: every `every`, renews the leases
    /// in `leases` for `period`, then (when [`Health`] allows) restores
    /// the lapsed ones, passing how many to `restored`.
    pub(crate) fn start(
        leases: Arc<Leases>,
        broker: Arc<Pool>,
        period: Duration,
        every: Duration,
        restored: impl Fn(u64) + Send + 'static,
    ) -> std::io::Result<Heartbeat> {
        let held = leases.clone();
        let handle = std::thread::Builder::new()
            .name("celery-lease".to_string())
            .spawn(move || {
                let mut health = Health::default();
                while let Some(tags) = held.wait(every) {
                    match renew(&broker, &tags, period) {
                        Ok((gone, redis_now)) => {
                            health.renewed(Instant::now(), redis_now, period);
                            gone.iter().for_each(|tag| held.lost(tag));
                        }
                        Err(e) => health.failed(&e, period),
                    }
                    if health.may_restore(Instant::now(), period) {
                        match restore_lapsed(&broker) {
                            Ok(n) => restored(n),
                            Err(e) => {
                                eprintln!("celery-worker: restoring lapsed leases: {e}")
                            }
                        }
                    }
                }
            })?;
        Ok(Heartbeat { leases, handle })
    }

    /// Ends the thread at once (it waits on a condvar) and joins it.
    pub(crate) fn stop(self) {
        self.leases.stop();
        let _ = self.handle.join();
    }
}

/// Renews the leases of `tags` for `period`; returns the tags whose entry
/// was gone, and Redis's clock after the renewal (`TIME`, seconds). With no
/// tags, only the clock: a heartbeat also measures whether Redis answers,
/// and watches its clock ([`Health`]).
fn renew(
    broker: &Pool,
    tags: &[String],
    period: Duration,
) -> Result<(Vec<String>, f64), CeleryError> {
    let secs = period.as_secs_f64().to_string();
    let now = unix_now().to_string();
    let mut gone = Vec::new();
    for chunk in tags.chunks(RENEW_CHUNK) {
        let mut args: Vec<&[u8]> = vec![
            b"EVAL",
            RENEW_SCRIPT.as_bytes(),
            b"2",
            b"unacked_index",
            LEASES_KEY.as_bytes(),
            secs.as_bytes(),
            now.as_bytes(),
        ];
        args.extend(chunk.iter().map(String::as_bytes));
        let reply = broker.with(|c| c.command(&args)?.ok())?;
        gone.extend(
            (reply.into_array().into_iter())
                .filter_map(Reply::into_bytes)
                .map(|t| String::from_utf8_lossy(&t).into_owned()),
        );
    }
    Ok((gone, broker.with(redis_time)?))
}

/// Redis's clock (`TIME`), in seconds.
fn redis_time(c: &mut Connection) -> Result<f64, CeleryError> {
    let parts = c.command(&[b"TIME"])?.ok()?.into_array();
    let field = |i: usize| -> Option<f64> {
        let bytes = parts.get(i)?.clone().into_bytes()?;
        std::str::from_utf8(&bytes).ok()?.parse().ok()
    };
    match (field(0), field(1)) {
        (Some(secs), Some(micros)) => Ok(secs + micros / 1e6),
        _ => Err(CeleryError::Protocol(
            "TIME did not answer seconds and microseconds".to_string(),
        )),
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_heartbeat_restores_only_after_a_whole_period_of_renewals() {
        let (t0, period) = (Instant::now(), Duration::from_secs(2));
        let mut health = Health::default();
        assert!(!health.may_restore(t0, period), "before any renewal");
        health.renewed(t0, 1000.0, period);
        assert!(!health.may_restore(t0 + period / 2, period));
        assert!(health.may_restore(t0 + period, period));
        // Redis out of reach: the period starts again at the next renewal.
        health.failed(&CeleryError::Io("cut".to_string()), period);
        assert!(!health.may_restore(t0 + 3 * period, period));
        health.renewed(t0 + 3 * period, 1006.0, period);
        assert!(!health.may_restore(t0 + 3 * period + period / 2, period));
        assert!(health.may_restore(t0 + 4 * period, period));
    }

    /// Redis's clock (`TIME`, by which leases lapse) jumps ahead (an NTP
    /// step, a VM restored): every lease seems to have lapsed at once. A
    /// heartbeat that sees the jump restores nothing for a whole period,
    /// as after Redis was out of reach, so the live workers renew first.
    #[test]
    fn a_jump_of_redis_clock_holds_the_restores_for_a_period() {
        let (t0, period) = (Instant::now(), Duration::from_secs(30));
        let every = period / 3;
        let mut health = Health::default();
        health.renewed(t0, 1000.0, period);
        health.renewed(t0 + period, 1030.0, period);
        assert!(health.may_restore(t0 + period, period));
        // The next round, `every` later by the worker's clock, an hour and
        // `every` later by Redis's.
        let t1 = t0 + period + every;
        health.renewed(t1, 1030.0 + 3600.0 + every.as_secs_f64(), period);
        assert!(
            !health.may_restore(t1, period),
            "restores right after Redis's clock jumped an hour ahead"
        );
        let t2 = t1 + period;
        health.renewed(t2, 4640.0 + period.as_secs_f64(), period);
        assert!(health.may_restore(t2, period), "a period later");
        // A clock that runs with the worker's, a little late or early (a
        // slow reply), is no jump.
        let t3 = t2 + every;
        health.renewed(t3, 4670.0 + every.as_secs_f64() + 2.0, period);
        assert!(health.may_restore(t3, period));
    }

    /// The warning reads as one sentence (no runs of blanks from a
    /// broken line continuation).
    #[test]
    fn the_jump_warning_has_no_runs_of_blanks() {
        let m = jump_warning(3600.0, Duration::from_secs(30));
        assert!(!m.contains("  "), "{m:?}");
        assert!(m.contains("3600 s ahead") && m.contains("(30s)"), "{m}");
    }

    #[test]
    fn renewals_come_often_for_any_lease_and_never_spin() {
        let (s, hour) = (Duration::from_secs(1), Duration::from_secs(3600));
        assert_eq!(renew_every(3 * s, hour), s);
        assert_eq!(renew_every(hour, 3 * s), s, "the visibility timeout too");
        assert_eq!(renew_every(Duration::ZERO, hour), MIN_LEASE / 3);
        assert_eq!(
            renew_every(hour, Duration::from_millis(1)),
            MIN_LEASE / 3,
            "a tiny visibility timeout makes no busy heartbeat"
        );
        assert_eq!(renew_every(Duration::MAX, Duration::MAX), hour);
    }
}
