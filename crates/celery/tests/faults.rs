//! Faults between our code and Redis (ADVERSARY.md classes 4 and 5), each
//! checked against the rule: nothing acknowledged that did not run, nothing
//! lost, nothing run twice without saying so, no hang, a clear error.
//!
//! Time is played by expiring keys by hand; the network by
//! [`celery::testing::Proxy`], which cuts a connection at a chosen byte of a
//! chosen reply, delays replies, cuts the link or makes it silent until
//! told otherwise. The tests wait on the proxy's counters and on the
//! server's state (`INFO`, `/proc`), never on time.

mod common;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use celery::resp::{Connection, Reply};
use celery::testing::tasks as test_tasks;
use celery::testing::Proxy;
use celery::{tasks, CeleryError, CeleryExecutor, WorkerConfig};
use common::*;

fn executor(url: &str) -> CeleryExecutor {
    CeleryExecutor::builder(url)
        .registry(test_tasks::registry())
        .reconnect_timeout(LONG)
        .connect()
        .expect("connect")
}

/// Whether an executor's listener is subscribed to its tasks' results:
/// the pattern it subscribes to at connect, before its first send (there
/// is no subscription per task to wait for).
fn listening(c: &mut Connection) -> bool {
    matches!(c.command(&[b"PUBSUB", b"NUMPAT"]).unwrap(), Reply::Integer(n) if n >= 1)
}

/// Waits for `lost`, sent before the broker lost its data, to fail with the
/// data-loss error (its message went with the data: it cannot complete).
fn assert_lost_with_the_data<T: Clone + std::fmt::Debug>(lost: &future::Future<T>) {
    let err = lost
        .result_timeout(LONG)
        .expect_err("its message is gone: it cannot complete");
    assert!(
        err.to_string().contains("came back without its data"),
        "{err}"
    );
}

/// Empties the server `c` is connected to (`FLUSHALL`).
fn flush(c: &mut Connection) {
    c.command(&[b"FLUSHALL"]).unwrap().ok().unwrap();
}

/// What any amount of time does to a Redis database: every key that has a
/// TTL is gone; keys without one (queues, bindings) stay.
fn expire_every_key_with_a_ttl(c: &mut Connection) {
    let keys = c.command(&[b"KEYS", b"*"]).unwrap().into_array();
    for key in keys.into_iter().filter_map(Reply::into_bytes) {
        if let Reply::Integer(ttl) = c.command(&[b"TTL", &key]).unwrap() {
            if ttl >= 0 {
                c.command(&[b"DEL", &key]).unwrap();
            }
        }
    }
}

/// Nothing run twice, nothing left behind: the worker ran `n` tasks (its
/// counter moves just after the result is published, so wait for it), and
/// no message is left queued or unacked that could run again.
fn assert_each_ran_once(worker: &ThreadWorker, n: u64, c: &mut Connection) {
    wait_until(LONG, "the worker to count its runs", || {
        worker.stats().ran >= n
    });
    assert_eq!(worker.stats().ran, n, "tasks run");
    assert_eq!(c.command(&[b"LLEN", b"celery"]).unwrap(), Reply::Integer(0));
    assert_eq!(
        c.command(&[b"HLEN", b"unacked"]).unwrap(),
        Reply::Integer(0)
    );
}

/// `INFO` field `name` (for example `blocked_clients`) as a number.
fn info_field(c: &mut Connection, section: &str, name: &str) -> u64 {
    let info = c.command(&[b"INFO", section.as_bytes()]).unwrap();
    let text = String::from_utf8(info.into_bytes().unwrap()).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .map_or(0, |v| v.split(',').next().unwrap().trim().parse().unwrap())
}

/// Waits until a worker is blocked in its BRPOP (it is fetching again).
fn wait_for_a_fetch(c: &mut Connection) {
    wait_until(LONG, "a worker blocked in BRPOP", || {
        info_field(c, "clients", "blocked_clients") >= 1
    });
}

/// `test.wait_for_file`: creates `<path>.started`, waits until `path`
/// exists (a gate the test opens), returns 7. Gives up after the hang guard
/// (returning 0), so a test that failed before opening its gate still ends:
/// dropping the worker joins the runner that waits here.
fn wait_for_file(path: String) -> u32 {
    std::fs::write(format!("{path}.started"), b"").unwrap();
    let deadline = std::time::Instant::now() + LONG;
    while !std::path::Path::new(&path).exists() {
        if std::time::Instant::now() > deadline {
            return 0;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    7
}

/// Where the message of a task is: (queued, unacked, result stored).
fn whereabouts(c: &mut Connection, id: &str) -> (i64, i64, i64) {
    let int = |r: Reply| match r {
        Reply::Integer(n) => n,
        other => panic!("expected an integer, got {other:?}"),
    };
    let key = format!("celery-task-meta-{id}");
    (
        int(c.command(&[b"LLEN", b"celery"]).unwrap()),
        int(c.command(&[b"HLEN", b"unacked"]).unwrap()),
        int(c.command(&[b"EXISTS", key.as_bytes()]).unwrap()),
    )
}

/// How many connections listen on the pidbox channel of database 0 (the
/// workers' revoke listeners).
fn pidbox_listeners(c: &mut Connection) -> Reply {
    c.command(&[b"PUBSUB", b"NUMSUB", b"/0.celery.pidbox"])
        .unwrap()
        .into_array()
        .pop()
        .unwrap()
}

/// `test.touch`: creates the file `path` (a task that must not run).
fn touch(path: String) -> bool {
    std::fs::write(path, b"").is_ok()
}

/// Item 12: a connection blip after a long uptime is a blip, not a broker
/// that lost its data. The message is still queued, so failing the future
/// with `BrokerLost` (whose advice is "submit them again") would run the
/// task twice.
#[test]
fn a_connection_blip_after_a_long_uptime_is_not_taken_for_a_lost_broker() {
    let redis = RedisServer::start();
    let ex = executor(&redis.url(0));
    let f = ex.submit_fallible(tasks::add, (40, 2)).unwrap();
    let mut c = redis.connect();
    expire_every_key_with_a_ttl(&mut c);
    // The blip: the server drops the listener's (subscribed) connection.
    let killed = c
        .command(&[b"CLIENT", b"KILL", b"TYPE", b"pubsub"])
        .unwrap();
    assert_eq!(killed, Reply::Integer(1), "the listener's connection");
    let worker = ThreadWorker::start(&redis.url(0), &["celery"], 1);
    assert_eq!(f.result_timeout(LONG).unwrap(), 42);
    assert_each_ran_once(&worker, 1, &mut c);
}

/// Failure table: the reply that carries the result to the waiting
/// executor (the PUBLISH pushed to its listener) is cut mid-way. The
/// listener reconnects, subscribes again and GETs the stored result.
#[test]
fn a_result_push_cut_mid_reply_still_completes_the_future() {
    let redis = RedisServer::start();
    let link = Proxy::start(redis.port());
    let ex = executor(&link.url(0));
    let mut c = redis.connect();
    let f = ex.submit_fallible(tasks::add, (2, 3)).unwrap();
    // The listener subscribed (its tasks' pattern, at connect) before the
    // send, and the result is not stored yet: it can come only as the push.
    wait_until(LONG, "the listener's subscription", || listening(&mut c));
    link.drop_mid_reply(b"SUCCESS", 40);
    let worker = ThreadWorker::start(&redis.url(0), &["celery"], 1);
    assert_eq!(f.result_timeout(LONG).unwrap(), 5);
    assert_eq!(link.stats().cut_mid_reply, 1, "the fault fired");
    assert_each_ran_once(&worker, 1, &mut c);
}

/// `rust.add(1, 2)`, not sent yet, with its SUCCESS record (3) already in
/// the backend: its future's result can come only from the GET that follows
/// the subscription (no PUBLISH will come).
fn a_task_whose_result_is_already_stored(redis: &RedisServer) -> celery::TaskMessage {
    let msg = celery::TaskMessage::new("rust.add", serde_json::json!([1, 2]), "celery");
    let record = celery::meta::Outcome::Success(serde_json::json!(3)).to_json(&msg.id);
    let key = celery::meta::result_key(&msg.id);
    let mut c = redis.connect();
    c.command(&[b"SET", key.as_bytes(), record.as_bytes()])
        .unwrap()
        .ok()
        .unwrap();
    msg
}

/// Failure table: the GET of a result stored before the subscription took
/// effect is cut mid-reply. The pool retries it on a new connection.
#[test]
fn a_result_get_cut_mid_reply_still_completes_the_future() {
    let redis = RedisServer::start();
    let link = Proxy::start(redis.port());
    let ex = executor(&link.url(0));
    let msg = a_task_whose_result_is_already_stored(&redis);
    link.drop_mid_reply(b"SUCCESS", 20);
    let f = ex.send::<i64>(msg).unwrap();
    assert_eq!(f.result_timeout(LONG).unwrap(), 3);
    assert_eq!(link.stats().cut_mid_reply, 1, "the fault fired");
}

/// Failure table: the GET of a result stored before the subscription
/// fails twice (on the pooled connection and on a fresh one), while the
/// listener's own connection stays up. Its PUBLISH went out before the
/// subscription, so nothing else brings the result: the listener treats
/// the failed GET as a broken connection (reconnect, subscribe again, GET
/// again, with back-off).
#[test]
fn a_result_get_that_fails_twice_is_retried() {
    let redis = RedisServer::start();
    let link = Proxy::start(redis.port());
    let ex = executor(&link.url(0));
    let msg = a_task_whose_result_is_already_stored(&redis);
    link.drop_mid_reply(b"SUCCESS", 20);
    link.drop_mid_reply(b"SUCCESS", 20);
    let f = ex.send::<i64>(msg).unwrap();
    assert_eq!(f.result_timeout(LONG).unwrap(), 3);
    assert_eq!(link.stats().cut_mid_reply, 2, "both faults fired");
}

/// Failure table: the link between the executor and Redis is cut while
/// results are stored; a submit during the cut fails at once with a
/// connection error (or, its LPUSH written to a socket the proxy then
/// closed, says the task may run) and queues nothing; once the link is back
/// every pending future completes, each task having run once.
#[test]
fn the_executors_link_cut_for_a_while_loses_no_result() {
    let redis = RedisServer::start();
    let link = Proxy::start(redis.port());
    let ex = executor(&link.url(0));
    let mut c = redis.connect();
    let futures: Vec<_> = (0..5i64)
        .map(|i| ex.submit_fallible(tasks::add, (i, 10)).unwrap())
        .collect();
    link.cut();
    let worker = ThreadWorker::start(&redis.url(0), &["celery"], 2);
    wait_until(LONG, "the results to be stored", || worker.stats().ran >= 5);
    let refused = link.stats().refused;
    wait_until(LONG, "the executor to try to reconnect", || {
        link.stats().refused >= refused + 2
    });
    let err = ex.submit_fallible(tasks::add, (0, 0)).unwrap_err();
    assert!(
        err.is_connection() || matches!(err, CeleryError::Unconfirmed(..)),
        "{err}"
    );
    link.restore();
    for (i, f) in futures.iter().enumerate() {
        assert_eq!(f.result_timeout(LONG).unwrap(), i as i64 + 10);
    }
    assert_each_ran_once(&worker, 5, &mut c);
}

/// Failure table: the link between an idle worker and Redis is cut; tasks
/// sent meanwhile wait in the queue and run once each when it is back.
#[test]
fn a_workers_link_cut_while_idle_runs_each_task_once_when_it_is_back() {
    let redis = RedisServer::start();
    let link = Proxy::start(redis.port());
    let mut c = redis.connect();
    let worker = ThreadWorker::start(&link.url(0), &["celery"], 1);
    wait_for_a_fetch(&mut c);
    link.cut();
    // Redis has dropped the cut BRPOP: no message can go to a dead fetch.
    wait_until(LONG, "the server to drop the cut fetch", || {
        info_field(&mut c, "clients", "blocked_clients") == 0
    });
    let ex = executor(&redis.url(0));
    let futures: Vec<_> = (0..5i64)
        .map(|i| ex.submit_fallible(tasks::add, (i, 20)).unwrap())
        .collect();
    let refused = link.stats().refused;
    wait_until(LONG, "the worker to try to reconnect", || {
        link.stats().refused >= refused + 2
    });
    link.restore();
    for (i, f) in futures.iter().enumerate() {
        assert_eq!(f.result_timeout(LONG).unwrap(), i as i64 + 20);
    }
    assert_each_ran_once(&worker, 5, &mut c);
}

/// Failure table: a slow broker (every reply late, on both sides) slows
/// things down and changes nothing else.
#[test]
fn a_slow_broker_completes_every_task_once() {
    let redis = RedisServer::start();
    let (client_link, worker_link) = (Proxy::start(redis.port()), Proxy::start(redis.port()));
    let ex = executor(&client_link.url(0));
    let worker = ThreadWorker::start(&worker_link.url(0), &["celery"], 2);
    client_link.set_delay(Duration::from_millis(150));
    worker_link.set_delay(Duration::from_millis(150));
    let futures: Vec<_> = (0..4i64)
        .map(|i| ex.submit_fallible(tasks::add, (i, 30)).unwrap())
        .collect();
    for (i, f) in futures.iter().enumerate() {
        assert_eq!(f.result_timeout(LONG).unwrap(), i as i64 + 30);
    }
    let mut c = redis.connect();
    assert_each_ran_once(&worker, 4, &mut c);
}

/// Failure table: the reply to the LPUSH that queues a task is cut. Redis
/// has queued the message; the client cannot know. Sending it again would
/// queue it twice and run it twice without anyone saying so: `submit` must
/// queue it at most once, and if it cannot tell, say that the task may run.
#[test]
fn a_send_whose_reply_is_cut_queues_the_task_at_most_once_and_says_so() {
    let redis = RedisServer::start();
    let link = Proxy::start(redis.port());
    let ex = executor(&link.url(0));
    let mut c = redis.connect();
    // The send's transaction: EXEC's reply is [nil (the epoch key's SET NX:
    // it exists), the epoch, 1 (the LPUSH on an empty queue)]. The
    // subscription's confirmation starts `*3` too, but not with a nil.
    link.drop_mid_reply_if(
        |reply| reply.starts_with(b"*3\r\n$-1\r\n") && reply.ends_with(b"\r\n:1\r\n"),
        0,
    );
    let sent = ex.submit_fallible(tasks::add, (1, 2));
    assert_eq!(link.stats().cut_mid_reply, 1, "the fault fired");
    assert_eq!(
        c.command(&[b"LLEN", b"celery"]).unwrap(),
        Reply::Integer(1),
        "queued once"
    );
    let err = sent.expect_err("the send was not confirmed");
    let text = err.to_string();
    assert!(text.contains("may") && text.contains("run"), "{text}");
    // The executor goes on; the unconfirmed task runs once.
    let worker = ThreadWorker::start(&redis.url(0), &["celery"], 1);
    let f = ex.submit_fallible(tasks::add, (2, 2)).unwrap();
    assert_eq!(f.result_timeout(LONG).unwrap(), 4);
    assert_each_ran_once(&worker, 2, &mut c);
}

/// Failure table: the reply that hands a message to a worker is cut
/// mid-way. A plain BRPOP would have lost it (popped by Redis, never seen
/// by the worker; kombu's BRPOP has that window): the worker pops and
/// records it as unacked in one step, and on the new connection finds it
/// under the delivery tag it chose, so the task runs once.
#[test]
fn a_fetch_cut_mid_reply_on_the_worker_loses_no_task() {
    let redis = RedisServer::start();
    let link = Proxy::start(redis.port());
    let mut c = redis.connect();
    let worker = ThreadWorker::start(&link.url(0), &["celery"], 1);
    wait_for_a_fetch(&mut c);
    let ex = executor(&redis.url(0));
    let msg = celery::TaskMessage::new("rust.add", serde_json::json!([3, 4]), "celery");
    let id = msg.id.clone();
    // The reply that pops it (the fetch script's): the array [queue,
    // message, deliveries, revoke check, id, more]; a mere wake-up reply
    // (the message alone) passes.
    let needle = id.clone().into_bytes();
    link.drop_mid_reply_if(
        move |reply| {
            reply.starts_with(b"*6\r\n$6\r\ncelery\r\n")
                && reply.windows(needle.len()).any(|w| w == needle)
        },
        64,
    );
    let accepted = link.stats().accepted;
    let f = ex.send::<i64>(msg).unwrap();
    wait_until(LONG, "the fetch to be cut", || {
        link.stats().cut_mid_reply == 1
    });
    wait_until(LONG, "the worker to fetch again", || {
        link.stats().accepted > accepted && info_field(&mut c, "clients", "blocked_clients") >= 1
    });
    let (queued, unacked, stored) = whereabouts(&mut c, &id);
    assert!(
        queued + unacked + stored >= 1 || worker.stats().ran >= 1,
        "lost"
    );
    assert_eq!(f.result_timeout(LONG).unwrap(), 7);
    assert_each_ran_once(&worker, 1, &mut c);
}

/// Failure table: the worker's link is cut while its task runs, so its
/// result-and-ack transaction fails. The worker keeps the result and tries
/// again with back-off (the transaction is safe to repeat) until the link
/// is back: the future completes and the task ran once.
#[test]
fn a_result_stored_while_the_workers_link_is_cut_is_kept_until_it_is_back() {
    let redis = RedisServer::start();
    let link = Proxy::start(redis.port());
    let mut c = redis.connect();
    let mut registry = test_tasks::registry();
    registry.register("test.wait_for_file", wait_for_file);
    let worker = ThreadWorker::with_registry(&link.url(0), &["celery"], 1, registry);
    let ex = executor(&redis.url(0));
    let gate = std::env::temp_dir().join(format!("celery-gate-{}", celery::id::new_task_id()));
    let gate_path = gate.to_string_lossy().into_owned();
    let msg = celery::TaskMessage::new(
        "test.wait_for_file",
        serde_json::json!([gate_path.clone()]),
        "celery",
    );
    let id = msg.id.clone();
    let f = ex.send::<u32>(msg).unwrap();
    let started = format!("{gate_path}.started");
    wait_until(LONG, "the task to start", || {
        std::path::Path::new(&started).exists()
    });
    link.cut();
    std::fs::write(&gate, b"").unwrap(); // the task returns during the cut
                                         // The worker tries to store the result and finds the link down.
    let refused = link.stats().refused;
    wait_until(LONG, "the worker to try to store the result", || {
        link.stats().refused >= refused + 2
    });
    link.restore();
    assert_eq!(f.result_timeout(LONG).unwrap(), 7);
    assert_each_ran_once(&worker, 1, &mut c);
    let (_, unacked, stored) = whereabouts(&mut c, &id);
    assert_eq!((unacked, stored), (0, 1));
    let _ = std::fs::remove_file(&gate);
    let _ = std::fs::remove_file(&started);
}

/// Failure table: a worker's pidbox connection breaks (a link cut). The
/// worker subscribes again once the link is back (and the REVOKED record
/// would stop a cancelled task it fetched even without the broadcast).
#[test]
fn a_worker_that_lost_its_pidbox_still_skips_a_cancelled_task() {
    let redis = RedisServer::start();
    let link = Proxy::start(redis.port());
    let mut c = redis.connect();
    let mut registry = test_tasks::registry();
    registry.register("test.wait_for_file", wait_for_file);
    let worker = ThreadWorker::with_registry(&link.url(0), &["celery"], 1, registry);
    wait_for_a_fetch(&mut c);
    wait_until(LONG, "the worker to listen for broadcasts", || {
        pidbox_listeners(&mut c) == Reply::Integer(1)
    });
    link.cut();
    let refused = link.stats().refused;
    wait_until(LONG, "the worker to try to reconnect", || {
        link.stats().refused > refused
    });
    link.restore();
    wait_for_a_fetch(&mut c);
    wait_until(LONG, "the pidbox to subscribe again", || {
        pidbox_listeners(&mut c) == Reply::Integer(1)
    });
    // Keep the worker's only runner busy, so the next task waits in the
    // queue while it is cancelled.
    let ex = executor(&redis.url(0));
    let gate = std::env::temp_dir().join(format!("celery-gate-{}", celery::id::new_task_id()));
    let gate_path = gate.to_string_lossy().into_owned();
    let busy = ex
        .submit_named::<_, u32>("test.wait_for_file", (gate_path.clone(),))
        .unwrap();
    let started = format!("{gate_path}.started");
    wait_until(LONG, "the busy task to start", || {
        std::path::Path::new(&started).exists()
    });
    let touched = format!("{gate_path}.touched");
    let msg = celery::TaskMessage::new("rust.touch", serde_json::json!([touched]), "celery");
    let id = msg.id.clone();
    let cancelled = ex.send::<()>(msg).unwrap();
    assert!(cancelled.cancel());
    wait_until(LONG, "the REVOKED record", || {
        whereabouts(&mut c, &id).2 == 1
    });
    std::fs::write(&gate, b"").unwrap();
    assert_eq!(busy.result_timeout(LONG).unwrap(), 7);
    wait_until(LONG, "the worker to skip the revoked task", || {
        worker.stats().revoked >= 1
    });
    assert!(
        !std::path::Path::new(&touched).exists(),
        "the cancelled task ran"
    );
    assert_eq!(worker.stats().ran, 1);
    for f in [&gate_path, &started] {
        let _ = std::fs::remove_file(f);
    }
}

/// Failure table: the executor's link goes silent (packets dropped, no FIN,
/// no RST) while the result is published. Nothing is lost or run twice:
/// when the link speaks again the held push arrives and the future
/// completes. (A silence this short may pass unnoticed; one that lasts is
/// found by the listener's PING: see the test after the next ones.)
#[test]
fn a_silent_link_to_the_executor_delays_the_result_and_loses_nothing() {
    let redis = RedisServer::start();
    let link = Proxy::start(redis.port());
    let ex = executor(&link.url(0));
    let mut c = redis.connect();
    let f = ex.submit_fallible(tasks::add, (5, 6)).unwrap();
    wait_until(LONG, "the listener's subscription", || listening(&mut c));
    link.stall();
    let worker = ThreadWorker::start(&redis.url(0), &["celery"], 1);
    wait_until(LONG, "the task to run", || worker.stats().ran >= 1);
    wait_until(LONG, "the result's push to be held", || {
        link.stats().held >= 1
    });
    assert!(
        !f.done(),
        "held in the proxy, the result cannot have arrived"
    );
    link.restore();
    assert_eq!(f.result_timeout(LONG).unwrap(), 11);
    assert_eq!(link.stats().cut_by_link, 0, "nothing was closed");
    assert_each_ran_once(&worker, 1, &mut c);
}

/// Failure table: the reply to the RPUSH that restores an unacked message
/// is cut. The pool runs the restore again on a new connection; the push
/// and the removal from `unacked` are one transaction, so the message is
/// either restored and gone from `unacked`, or neither: it is queued once.
#[test]
fn a_restore_whose_reply_is_cut_queues_the_message_once() {
    let redis = RedisServer::start();
    let link = Proxy::start(redis.port());
    let mut c = redis.connect();
    let msg = celery::TaskMessage::new("rust.add", serde_json::json!([1, 1]), "celery");
    let entry = format!("[{}, \"\", \"celery\"]", msg.to_json());
    c.command(&[b"HSET", b"unacked", b"tag-1", entry.as_bytes()])
        .unwrap();
    c.command(&[b"ZADD", b"unacked_index", b"1", b"tag-1"])
        .unwrap();
    let pool =
        celery::connection_pool::Pool::new(celery::RedisUrl::parse(&link.url(0)).unwrap(), 1);
    // `:1` is the RPUSH's reply on an empty queue, inside EXEC's array
    // when RPUSH, ZREM and HDEL go together; the lock's SET says +OK.
    link.drop_mid_reply_if(
        |reply| reply.starts_with(b"*3\r\n:1\r\n") || reply == b":1\r\n",
        0,
    );
    let restored = celery::restore_unacked(&pool, Duration::from_secs(1)).unwrap();
    assert_eq!(link.stats().cut_mid_reply, 1, "the fault fired");
    assert_eq!(
        c.command(&[b"LLEN", b"celery"]).unwrap(),
        Reply::Integer(1),
        "queued once (restore_unacked said {restored})"
    );
    assert_eq!(
        c.command(&[b"HLEN", b"unacked"]).unwrap(),
        Reply::Integer(0)
    );
}

/// Item 12's design: the epoch key is shared by every client of the
/// database, so one executor ending must not take it from the others (or a
/// blip after it would look like a lost broker to them).
#[test]
fn an_executor_ending_leaves_the_others_able_to_tell_a_blip() {
    let redis = RedisServer::start();
    let a = executor(&redis.url(0));
    let b = executor(&redis.url(0));
    let f = b.submit_fallible(tasks::add, (1, 2)).unwrap();
    drop(a);
    let mut c = redis.connect();
    let killed = c
        .command(&[b"CLIENT", b"KILL", b"TYPE", b"pubsub"])
        .unwrap();
    assert!(
        matches!(killed, Reply::Integer(n) if n >= 1),
        "b's listener: {killed:?}"
    );
    let worker = ThreadWorker::start(&redis.url(0), &["celery"], 1);
    assert_eq!(f.result_timeout(LONG).unwrap(), 3);
    assert_each_ran_once(&worker, 1, &mut c);
}

/// Failure table: the broker is a Redis server of its own (not the result
/// backend's) and restarts without its data. The listener's connection (to
/// the backend) does not break, so something else must notice that the
/// messages of the pending futures are gone.
#[test]
fn a_separate_broker_restarting_without_its_data_fails_pending_futures() {
    let mut broker = RedisServer::start(); // persistence off
    let backend = RedisServer::start();
    let ex = CeleryExecutor::builder(&broker.url(0))
        .backend(&backend.url(0))
        .registry(test_tasks::registry())
        .reconnect_timeout(LONG)
        .connect()
        .unwrap();
    let lost = ex.submit_fallible(tasks::add, (1, 1)).unwrap();
    broker.restart();
    assert_lost_with_the_data(&lost);
    // The executor goes on working with the new broker.
    let mut config = WorkerConfig::new(&broker.url(0));
    config.backend = Some(backend.url(0));
    config.concurrency = 1;
    let worker = ThreadWorker::with_config(config, test_tasks::registry());
    let f = ex.submit_fallible(tasks::add, (2, 2)).unwrap();
    assert_eq!(f.result_timeout(LONG).unwrap(), 4);
    let mut c = broker.connect();
    assert_each_ran_once(&worker, 1, &mut c);
    // The thread that watches the broker ends with the executor (the only
    // one in this test binary: no other test has a broker of its own).
    let watchers = || threads_named("celery-broker-w"); // comm: 15 bytes
    assert_eq!(watchers(), 1);
    drop(ex);
    assert_eq!(watchers(), 0, "the broker watcher outlived its executor");
}

/// Dropping the executor while its listener is reconnecting: `Drop` shuts
/// the listener's socket and joins it, but a listener that registers its
/// new socket after that would block on it for ever, and `drop` with it.
#[test]
fn dropping_the_executor_while_its_listener_reconnects_returns() {
    let redis = RedisServer::start();
    let link = Proxy::start(redis.port());
    let ex = executor(&link.url(0));
    let _pending = ex.submit_fallible(tasks::add, (1, 1)).unwrap();
    let mut c = redis.connect();
    wait_until(LONG, "the listener's subscription", || listening(&mut c));
    // The listener loses its connection and reconnects into a silent link:
    // it blocks in the middle of its reconnect (reading the epoch).
    link.stall();
    let killed = c
        .command(&[b"CLIENT", b"KILL", b"TYPE", b"pubsub"])
        .unwrap();
    assert_eq!(killed, Reply::Integer(1), "the listener's connection");
    wait_until(LONG, "the reconnect to be held", || link.stats().held >= 1);
    let tid = Arc::new(std::sync::atomic::AtomicI32::new(0));
    let t = tid.clone();
    let dropper = std::thread::spawn(move || {
        // SAFETY: gettid(2) takes no arguments and cannot fail.
        t.store(unsafe { libc::gettid() }, Ordering::SeqCst);
        drop(ex);
    });
    // `Drop` has nothing else to wait for: a dropper asleep in futex(2) is
    // in the join, past the shutting of the listener's socket.
    wait_until(LONG, "drop to wait for the listener", || {
        let tid = tid.load(Ordering::SeqCst);
        tid != 0
            && thread_state(std::process::id(), tid) == 'S'
            && current_syscall(tid) == Some(libc::SYS_futex)
    });
    link.restore();
    wait_until(LONG, "drop to return", || dropper.is_finished());
    dropper.join().unwrap();
}

/// Failure table: the broker is down longer than `reconnect_timeout`, with
/// its data kept. The pending futures fail, but their messages are still
/// queued and run once the broker is back: the error must say so, or a
/// caller who submits again runs each task twice unawares.
#[test]
fn a_broker_down_past_the_reconnect_timeout_says_its_tasks_may_still_run() {
    let mut redis = RedisServer::start_with(true);
    let ex = CeleryExecutor::builder(&redis.url(0))
        .registry(test_tasks::registry())
        .reconnect_timeout(Duration::from_millis(300))
        .connect()
        .unwrap();
    let f = ex.submit_fallible(tasks::add, (1, 2)).unwrap();
    redis.stop();
    let err = f.result_timeout(LONG).unwrap_err().to_string();
    assert!(err.contains("could not reconnect"), "{err}");
    assert!(err.contains("may still run"), "{err}");
    redis.restart();
    let worker = ThreadWorker::start(&redis.url(0), &["celery"], 1);
    let mut c = redis.connect();
    assert_each_ran_once(&worker, 1, &mut c);
}

/// Class 5: a huge `result_expires` (here `Duration::MAX`). Redis refuses
/// an expiry past about 292 million years, so the REVOKED record that
/// stops a cancelled task on a worker that missed the broadcast must still
/// be stored, with the longest lifetime the worker also uses.
#[test]
fn a_huge_result_lifetime_still_stores_the_revoked_record() {
    let redis = RedisServer::start();
    let ex = CeleryExecutor::builder(&redis.url(0))
        .registry(test_tasks::registry())
        .result_expires(Duration::MAX)
        .connect()
        .unwrap();
    let touched = std::env::temp_dir().join(format!("celery-huge-{}", celery::id::new_task_id()));
    let msg = celery::TaskMessage::new(
        "rust.touch",
        serde_json::json!([touched.to_string_lossy()]),
        "celery",
    );
    let id = msg.id.clone();
    let f = ex.send::<()>(msg).unwrap();
    assert!(f.cancel());
    let mut c = redis.connect();
    wait_until(LONG, "the REVOKED record", || {
        whereabouts(&mut c, &id).2 == 1
    });
    // A worker started after the broadcast skips it by that record.
    let worker = ThreadWorker::start(&redis.url(0), &["celery"], 1);
    wait_until(LONG, "the worker to skip the revoked task", || {
        worker.stats().revoked >= 1
    });
    assert!(!touched.exists(), "the cancelled task ran");
}

/// A worker started while Redis is down does not exit: it
/// retries the connection with back-off and says so (Celery's
/// `broker_connection_retry_on_startup`), then serves once Redis is up.
#[test]
fn a_worker_started_before_redis_waits_for_it() {
    let mut redis = RedisServer::start();
    let url = redis.url(0);
    redis.stop();
    let mut w = Spawned::start(&url, || {}, &["-c", "1"]);
    wait_until(LONG, "the worker to say it retries", || {
        if let Some(status) = w.child.0.try_wait().unwrap() {
            panic!("the worker exited ({status}) instead of retrying");
        }
        w.stderr().contains("retrying")
    });
    redis.restart();
    let ex = executor(&url);
    let f = ex.submit_fallible(tasks::add, (2, 3)).unwrap();
    assert_eq!(f.result_timeout(LONG).unwrap(), 5);
}

/// A Python client's `revoke()` only broadcasts (no
/// REVOKED record), so a worker must still be listening after Redis
/// restarted: its revoke listener subscribes again, and a queued task
/// revoked from Python does not run.
#[test]
fn a_python_revoke_after_a_redis_restart_is_honoured() {
    let mut redis = RedisServer::start();
    let url = redis.url(0);
    let mut registry = tasks::builtin();
    registry.register("test.wait_for_file", wait_for_file);
    registry.register("test.touch", touch);
    let worker = ThreadWorker::with_registry(&url, &["celery"], 1, registry);
    let mut c = redis.connect();
    wait_until(LONG, "the worker's revoke listener", || {
        pidbox_listeners(&mut c) == Reply::Integer(1)
    });
    redis.restart();
    let mut c = redis.connect();
    wait_until(LONG, "the revoke listener to subscribe again", || {
        pidbox_listeners(&mut c) == Reply::Integer(1)
    });
    // Keep the worker's only runner busy, so the next task waits in the
    // queue while Python revokes it.
    let ex = executor(&url);
    let gate = std::env::temp_dir().join(format!("celery-gate-{}", celery::id::new_task_id()));
    let gate_path = gate.to_string_lossy().into_owned();
    let busy = ex
        .submit_named::<_, u32>("test.wait_for_file", (gate_path.clone(),))
        .unwrap();
    let started = format!("{gate_path}.started");
    wait_until(LONG, "the busy task to start", || {
        std::path::Path::new(&started).exists()
    });
    let touched = format!("{gate_path}.touched");
    let msg = celery::TaskMessage::new("test.touch", serde_json::json!([touched]), "celery");
    let id = msg.id.clone();
    let _revoked = ex.send::<bool>(msg).unwrap();
    python_with_args(
        &url,
        "import sys; from tasks import app; app.control.revoke(sys.argv[1])",
        &[&id],
    );
    std::fs::write(&gate, b"").unwrap();
    assert_eq!(busy.result_timeout(LONG).unwrap(), 7);
    wait_until(LONG, "the worker to skip the revoked task", || {
        worker.stats().revoked >= 1
    });
    assert!(
        !std::path::Path::new(&touched).exists(),
        "the revoked task ran"
    );
    for f in [&gate_path, &started] {
        let _ = std::fs::remove_file(f);
    }
}

/// Failure table: the executor's link goes silent for good (no FIN, no
/// RST). The listener notices: a connection quiet for a while is PINGed,
/// and no answer means a broken link; its reconnects into the silent link
/// time out as well (every connection has a read timeout), so after
/// `reconnect_timeout` the pending future fails with a clear error instead
/// of waiting for ever.
#[test]
fn a_link_silent_for_good_fails_the_pending_future_with_a_clear_error() {
    let redis = RedisServer::start();
    let link = Proxy::start(redis.port());
    let ex = CeleryExecutor::builder(&link.url(0))
        .registry(tasks::builtin())
        .reconnect_timeout(Duration::from_secs(1))
        .connect()
        .unwrap();
    let mut c = redis.connect();
    let f = ex.submit_fallible(tasks::add, (1, 1)).unwrap();
    wait_until(LONG, "the listener's subscription", || listening(&mut c));
    link.stall();
    let err = f.result_timeout(LONG).unwrap_err().to_string();
    assert!(err.contains("could not reconnect"), "{err}");
    link.restore();
}

/// Failure table: a submit into a silent link. Its LPUSH is written and
/// never answered: after the read timeout `submit` returns `Unconfirmed`
/// (the task may be queued and may run) instead of waiting for ever.
#[test]
fn a_submit_into_a_silent_link_says_the_task_may_run() {
    let redis = RedisServer::start();
    let link = Proxy::start(redis.port());
    let ex = Arc::new(executor(&link.url(0)));
    link.stall();
    let submitter = {
        let ex = ex.clone();
        std::thread::spawn(move || ex.submit_fallible(tasks::add, (1, 2)).map(drop))
    };
    wait_until(LONG, "the submit to return", || submitter.is_finished());
    let err = submitter.join().unwrap().unwrap_err();
    assert!(matches!(err, CeleryError::Unconfirmed(..)), "{err}");
    link.restore();
}

/// Every connection asks the kernel to probe an idle peer (TCP keepalive),
/// so a peer that vanished (a host gone, a cable pulled) is found even on a
/// connection nobody reads, and has a read timeout, so no command waits for
/// ever on a silent link.
#[test]
fn every_connection_has_tcp_keepalive_and_a_read_timeout() {
    use std::os::fd::AsRawFd;
    let redis = RedisServer::start();
    let c = redis.connect();
    let socket = c.writer().unwrap();
    let mut on: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: getsockopt(2) on an open socket we hold, writing at most
    // `len` bytes into `on`, which lives across the call.
    let r = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_KEEPALIVE,
            (&mut on as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    assert_eq!(r, 0, "getsockopt: {}", std::io::Error::last_os_error());
    assert_eq!(on, 1, "SO_KEEPALIVE is off");
    assert!(socket.read_timeout().unwrap().is_some(), "no read timeout");
}

/// Failure table: the broker database loses its data while the executor
/// runs (FLUSHALL here; a restart without persistence does the same), and
/// a task is sent after the loss, before the executor has noticed it. That
/// task's message is queued on the emptied server: only the futures sent
/// before the loss may fail with "came back without its data ... submit
/// them again"; failing this one too would have its caller send it again,
/// and the task run twice.
#[test]
fn a_task_sent_after_the_broker_lost_its_data_is_not_failed_with_the_lost_ones() {
    let redis = RedisServer::start();
    let ex = executor(&redis.url(0));
    let lost = ex.submit_fallible(tasks::add, (1, 1)).unwrap();
    let mut c = redis.connect();
    flush(&mut c);
    let sent_after = ex.submit_fallible(tasks::add, (2, 2)).unwrap();
    // The executor notices at its listener's next reconnect: the server
    // drops the listener's connection.
    let killed = c
        .command(&[b"CLIENT", b"KILL", b"TYPE", b"pubsub"])
        .unwrap();
    assert_eq!(killed, Reply::Integer(1), "the listener's connection");
    assert_lost_with_the_data(&lost);
    let worker = ThreadWorker::start(&redis.url(0), &["celery"], 1);
    assert_eq!(
        sent_after
            .result_timeout(LONG)
            .expect("its message was queued after the loss: it runs and its result comes"),
        4
    );
    assert_each_ran_once(&worker, 1, &mut c);
}

/// Failure table: the broker database is emptied on a live server
/// (FLUSHALL: no connection breaks, so no reconnect looks at the epoch).
/// The next submit reads the epoch in its own transaction, sees the loss,
/// and fails the futures whose messages went with it, instead of leaving
/// them waiting for ever; the new task runs.
#[test]
fn a_broker_flushed_while_running_fails_the_lost_futures_at_the_next_submit() {
    let redis = RedisServer::start();
    let ex = executor(&redis.url(0));
    let lost = ex.submit_fallible(tasks::add, (1, 1)).unwrap();
    let mut c = redis.connect();
    flush(&mut c);
    let after = ex.submit_fallible(tasks::add, (2, 2)).unwrap();
    assert_lost_with_the_data(&lost);
    let worker = ThreadWorker::start(&redis.url(0), &["celery"], 1);
    assert_eq!(after.result_timeout(LONG).unwrap(), 4);
    assert_each_ran_once(&worker, 1, &mut c);
}

/// Failure table: two restores of one unacked message at once, the
/// periodic restore (which holds `unacked_mutex`) and a cold shutdown
/// returning its running task (which does not take it). The periodic one
/// has read the message (its HGET's reply is held in the proxy) when the
/// cold shutdown returns the same message; then the periodic one goes on.
/// The message must be queued once, not twice (kombu's restore is one
/// transaction watching `unacked`).
#[test]
fn two_restores_of_one_message_at_once_queue_it_once() {
    let redis = RedisServer::start();
    let link = Proxy::start(redis.port());
    let ex = executor(&redis.url(0));
    let worker = ThreadWorker::start(&redis.url(0), &["celery"], 1);
    let gate = std::env::temp_dir().join(format!("celery-gate-{}", celery::id::new_task_id()));
    // Opens the gate however the test ends, so the worker's task ends and
    // dropping the worker returns (a failing test fails, never hangs).
    struct OpenOnDrop(std::path::PathBuf);
    impl Drop for OpenOnDrop {
        fn drop(&mut self) {
            let _ = std::fs::write(&self.0, b"open");
        }
    }
    let opener = OpenOnDrop(gate.clone());
    let _running = ex
        .submit(
            celery::testing::tasks::wait_for,
            gate.to_string_lossy().into_owned(),
        )
        .unwrap();
    wait_until(LONG, "the task to start", || {
        gate.with_extension("started").exists()
    });
    let cold = worker.worker.cold_shutdown_handle();
    // Hold the periodic restore's HGET reply (the unacked entry, which ends
    // with its queue's name) until the cold shutdown is done; never cut it.
    let hget = hold_reply(
        &link,
        |reply| reply.starts_with(b"$") && reply.ends_with(b"\"celery\"]\r\n"),
        false,
    );
    let pool =
        celery::connection_pool::Pool::new(celery::RedisUrl::parse(&link.url(0)).unwrap(), 1);
    let periodic = std::thread::spawn(move || celery::restore_unacked(&pool, Duration::ZERO));
    hget.wait("the periodic restore to read the unacked message");
    assert_eq!(cold.now().unwrap(), 1, "the cold shutdown returned it");
    hget.release();
    periodic.join().unwrap().unwrap();
    let mut c = redis.connect();
    assert_eq!(
        c.command(&[b"LLEN", b"celery"]).unwrap(),
        Reply::Integer(1),
        "the message was queued twice: it would run twice, unsaid"
    );
    drop(opener);
    drop(worker);
    let _ = std::fs::remove_file(&gate);
    let _ = std::fs::remove_file(gate.with_extension("started"));
}

/// Failure table: the broker database is emptied on a live server
/// (FLUSHALL) and nothing is submitted after it. No connection breaks and
/// no submit reads the epoch, so only a notice from the server itself can
/// tell the executor: the futures whose messages went with the data fail
/// with the data-loss error instead of waiting for ever.
#[test]
fn a_broker_flushed_with_no_later_submit_fails_the_lost_futures() {
    let redis = RedisServer::start();
    let ex = executor(&redis.url(0));
    let lost = ex.submit_fallible(tasks::add, (1, 1)).unwrap();
    flush(&mut redis.connect());
    assert_lost_with_the_data(&lost);
}

/// The same with the broker a server of its own (the listener's connection
/// is to the backend, another server): the broker watcher hears the flush.
#[test]
fn a_separate_broker_flushed_with_no_later_submit_fails_the_lost_futures() {
    let broker = RedisServer::start();
    let backend = RedisServer::start();
    let ex = CeleryExecutor::builder(&broker.url(0))
        .backend(&backend.url(0))
        .registry(test_tasks::registry())
        .reconnect_timeout(LONG)
        .connect()
        .unwrap();
    let lost = ex.submit_fallible(tasks::add, (1, 1)).unwrap();
    flush(&mut broker.connect());
    assert_lost_with_the_data(&lost);
}

/// Failure table: a chord's header task has reported to its chord (the last
/// part: the body sent, the chord's keys cleaned up and marked done), and
/// its worker dies before the ack. The link is held at the cleanup's reply
/// (so nothing after it reaches Redis), the worker is killed, the link cut.
/// The header's message is still unacked: restored, it runs again on
/// another worker, and its second report finds the chord done and is a
/// no-op. The body runs exactly once.
#[test]
fn a_chord_part_reported_but_not_acked_when_its_worker_dies_runs_the_body_once() {
    use std::sync::atomic::AtomicU32;
    let redis = RedisServer::start();
    let link = Proxy::start(redis.port());
    let mut a = Spawned::start(
        &link.url(0),
        || {},
        &[
            "-c",
            "1",
            "--pool",
            "threads",
            "--restore-interval",
            "3600",
            "--lease",
            "1",
        ],
    );
    let mut c = redis.connect();
    // Its start-up restore round is over (lock taken, looked, released):
    // from now on only its one runner talks through the link.
    wait_until(LONG, "worker A's first restore round", || {
        server_calls(&mut c, "zrangebyscore") >= 1
            && c.command(&[b"EXISTS", b"unacked_mutex"]).unwrap() == Reply::Integer(0)
    });
    // After the parts' read (its reply holds the part, `"SUCCESS"`) come
    // the body's LPUSH (`:1`, the first message on the queue) and the
    // cleanup script's `:1`: that one is held (the whole link waits in
    // this matcher) until worker A is dead, then its connection is cut.
    let step = AtomicU32::new(0);
    let cleanup = hold_reply(
        &link,
        move |reply| {
            let at = step.load(Ordering::SeqCst);
            let next = match at {
                0 if reply.windows(9).any(|w| w == b"\"SUCCESS\"") => 1,
                1 | 2 if reply == b":1\r\n" => at + 1,
                _ => at,
            };
            step.store(next, Ordering::SeqCst);
            next == 3
        },
        true,
    );
    let body = python_line(
        &redis.url(0),
        r#"
from celery import chord
from tasks import app
r = chord([app.signature("rust.add", args=(1, 2))])(app.signature("rust.echo"))
print("body", r.id)
"#,
        &[],
        "body ",
    );
    cleanup.wait("worker A to report the part and clean the chord up");
    // SAFETY: kill(2) on our unreaped child.
    assert_eq!(unsafe { libc::kill(a.pid(), libc::SIGKILL) }, 0);
    a.wait_exit();
    cleanup.release();
    assert_eq!(hlen_unacked(&redis), 1, "the header task is not acked");
    assert_eq!(llen(&redis, "celery"), 1, "the body was sent once");
    let pool =
        celery::connection_pool::Pool::new(celery::RedisUrl::parse(&redis.url(0)).unwrap(), 1);
    // Worker A's lease (1 s) lapses: restored as a heartbeat would.
    let mut restored = 0;
    wait_until(LONG, "worker A's lease to lapse", || {
        restored += celery::lease::restore_lapsed(&pool).unwrap();
        restored > 0
    });
    assert_eq!(restored, 1);
    let b = ThreadWorker::start(&redis.url(0), &["celery"], 1);
    // The body and the header task's second run; a second body would be
    // queued before that run's ack, and counted.
    wait_until(
        LONG,
        "worker B to run the body and the header again",
        || b.stats().ran >= 2 && hlen_unacked(&redis) == 0 && llen(&redis, "celery") == 0,
    );
    assert_eq!(b.stats().ran, 2, "the body ran twice");
    let record = result_of(&redis, &body).expect("the body's result");
    assert_eq!(record["status"], "SUCCESS", "{record}");
    assert_eq!(record["result"], serde_json::json!([3]), "{record}");
}
