//! The Redis round trips of one task, counted on the server (`MONITOR`
//! sees every command of every client, and names the ones a script ran as
//! `lua`): each round trip on a task's path costs two wake-ups, and the
//! round trip is judged against a raw LPUSH/BRPOP ping-pong (issue 18).

mod common;

use celery::resp::Reply;
use celery::CeleryExecutor;
use common::{RedisServer, ThreadWorker, LONG};

/// One command as `MONITOR` shows it: the client's address (`lua` for a
/// command a script ran) and the command's words.
#[derive(Debug)]
struct Seen {
    client: String,
    words: Vec<String>,
}

/// Parses a `MONITOR` line: `1700000000.123456 [0 127.0.0.1:5678] "GET" "k"`.
fn parse(line: &str) -> Option<Seen> {
    let open = line.find('[')?;
    let close = open + line[open..].find(']')?;
    let client = line[open + 1..close].split(' ').nth(1)?.to_string();
    let words = line[close + 1..]
        .split("\" \"")
        .map(|w| w.trim().trim_matches('"').to_string())
        .collect();
    Some(Seen { client, words })
}

/// Whether a client is blocked in a `BLMOVE` (an idle worker's wait).
fn a_worker_waits(redis: &RedisServer) -> bool {
    let list = redis.connect().command(&[b"CLIENT", b"LIST"]).unwrap();
    let list = String::from_utf8_lossy(&list.into_bytes().unwrap_or_default()).into_owned();
    list.lines().any(|l| {
        l.contains("cmd=blmove")
            && l.split(' ')
                .any(|f| f.starts_with("flags=") && f.contains('b'))
    })
}

/// Runs `during` while a `MONITOR` connection records every command, and
/// returns them, up to an `ECHO` of a marker sent after `during`.
fn monitor(redis: &RedisServer, during: impl FnOnce()) -> Vec<Seen> {
    let mut m = redis.connect();
    assert_eq!(
        m.command(&[b"MONITOR"]).unwrap(),
        Reply::Status("OK".into())
    );
    during();
    let marker = format!("end-of-monitor-{}", celery::id::new_task_id());
    redis
        .connect()
        .command(&[b"ECHO", marker.as_bytes()])
        .unwrap();
    let mut seen = Vec::new();
    loop {
        let Reply::Status(line) = m.read_reply().unwrap() else {
            continue;
        };
        if line.contains(&marker) {
            return seen;
        }
        seen.extend(parse(&line));
    }
}

fn executor(url: &str) -> CeleryExecutor {
    CeleryExecutor::builder(url).queue("rt").connect().unwrap()
}

/// Stores a hash under `key`: another program's key, of a type the worker
/// does not expect there.
fn put_a_hash_at(redis: &RedisServer, key: &str) {
    redis
        .connect()
        .command(&[b"HSET", key.as_bytes(), b"field", b"value"])
        .unwrap()
        .ok()
        .unwrap();
}

fn add(ex: &CeleryExecutor, x: i64) {
    let f = ex.submit_named::<_, i64>("rust.add", (x, 1)).unwrap();
    assert_eq!(f.result_timeout(LONG).unwrap(), x + 1);
}

/// The worker's revoke check (is there a REVOKED record under the task's
/// id?) is made by the fetch script, in the round trip that pops the
/// message and records it as unacked: no GET of the result record of its
/// own between the fetch and the task's start. Between popping a task and
/// acking it, the worker crosses to Redis twice: the fetch, and the one
/// transaction that stores the result and acks.
#[test]
fn the_worker_checks_revocation_in_the_fetchs_own_round_trip() {
    let redis = RedisServer::start();
    let url = redis.url(0);
    let _worker = ThreadWorker::start(&url, &["rt"], 1);
    let ex = executor(&url);
    add(&ex, 1); // the worker is up and idle in its wait
    let mut id = String::new();
    let seen = monitor(&redis, || {
        let f = ex.submit_named::<_, i64>("rust.add", (2, 1)).unwrap();
        id = ex.task_id(&f).unwrap_or_default();
        assert_eq!(f.result_timeout(LONG).unwrap(), 3);
    });
    let meta = format!("celery-task-meta-{id}");
    let shown: Vec<String> = seen
        .iter()
        .map(|s| format!("[{}] {}", s.client, s.words.join(" ")))
        .map(|s| s.chars().take(140).collect())
        .collect();
    let shown = shown.join("\n");
    let own_get = seen.iter().any(|s| {
        s.client != "lua"
            && s.words.first().map(String::as_str) == Some("GET")
            && s.words.get(1) == Some(&meta)
    });
    assert!(
        !own_get,
        "the worker read the result record in a round trip of its own:\n{shown}"
    );
    let in_script = seen.iter().any(|s| {
        s.client == "lua"
            && s.words.first().map(String::as_str) == Some("GET")
            && s.words.get(1) == Some(&meta)
    });
    assert!(in_script, "no revoke check in the fetch script:\n{shown}");
}

/// The revoke check in the fetch script still skips a task cancelled
/// before a worker took it (its REVOKED record is found by the script).
#[test]
fn a_task_cancelled_before_the_fetch_is_skipped_by_the_scripts_check() {
    let redis = RedisServer::start();
    let url = redis.url(0);
    let ex = executor(&url);
    let f = ex.submit_named::<_, i64>("rust.add", (1, 1)).unwrap();
    let id = ex.task_id(&f).unwrap();
    assert!(f.cancel());
    let worker = ThreadWorker::start(&url, &["rt"], 1);
    add(&ex, 5); // sent after: once it ran, the cancelled one was fetched
                 // The counters move after the result is stored.
    common::wait_until(
        LONG,
        "the cancelled task skipped, the later one run",
        || worker.stats().revoked == 1 && worker.stats().ran == 1,
    );
    let record = common::result_of(&redis, &id).expect("a record");
    assert_eq!(record["status"], "REVOKED", "{record}");
}

/// Once it has taken the last message on its queue, the worker's next
/// fetch waits at once (`BLMOVE`, then the script): the fetch script says
/// whether a message is left, so no pop that finds nothing goes first (a
/// round trip per task beside its path, on a machine whose cores the
/// client, the worker and Redis share).
#[test]
fn after_taking_the_last_message_the_worker_waits_at_once() {
    let redis = RedisServer::start();
    let url = redis.url(0);
    let _worker = ThreadWorker::start(&url, &["rt"], 1);
    let ex = executor(&url);
    add(&ex, 1);
    common::wait_until(LONG, "the worker idle in its wait", || {
        a_worker_waits(&redis)
    });
    let seen = monitor(&redis, || {
        add(&ex, 2);
        // Its next fetch is under way once it waits again.
        common::wait_until(LONG, "the worker back in its wait", || {
            a_worker_waits(&redis)
        });
    });
    let popped = seen
        .iter()
        .position(|s| s.client == "lua" && s.words.first().map(String::as_str) == Some("RPOP"))
        .expect("the fetch script popped the task");
    let fetch_conn = seen[..popped]
        .iter()
        .rev()
        .find(|s| s.client != "lua")
        .map(|s| s.client.clone())
        .unwrap();
    let next: Vec<&str> = seen[popped..]
        .iter()
        .filter(|s| s.client == fetch_conn)
        .filter_map(|s| s.words.first().map(String::as_str))
        .collect();
    assert_eq!(
        next.first(),
        Some(&"BLMOVE"),
        "after the last message the worker asked again before waiting: {next:?}"
    );
}

/// The client's side of one task is the send's one transaction: no
/// SUBSCRIBE before it and no UNSUBSCRIBE after it (each has a
/// confirmation that wakes the listener, and a subscription's MGET is a
/// round trip of its own). The executor's tasks get ids under a prefix of
/// its own, and its listener holds one pattern subscription to their
/// channels from the start.
#[test]
fn the_client_sends_a_task_in_one_round_trip_and_subscribes_to_nothing_per_task() {
    let redis = RedisServer::start();
    let url = redis.url(0);
    let _worker = ThreadWorker::start(&url, &["rt"], 1);
    let ex = executor(&url);
    add(&ex, 1);
    let seen = monitor(&redis, || add(&ex, 2));
    let per_task: Vec<String> = seen
        .iter()
        .filter(|s| s.client != "lua")
        .filter_map(|s| s.words.first())
        .filter(|w| ["SUBSCRIBE", "UNSUBSCRIBE", "MGET"].contains(&w.as_str()))
        .cloned()
        .collect();
    assert!(
        per_task.is_empty(),
        "the client subscribed per task: {per_task:?}"
    );
}

/// The fetch script reads the task's result key for its revoke check: a
/// key of another type there (another program's hash) must not fail the
/// script after it popped the message (a script's effects are not rolled
/// back: the message would sit unacked, its fetch answered by an error,
/// until its lease lapsed, and then again). The script cannot tell, the
/// worker looks itself, and the task runs: its result replaces the key.
#[test]
fn a_result_key_of_another_type_does_not_fail_the_fetch() {
    a_key_of_another_type_does_not_fail_the_fetch("celery-task-meta-");
}

/// The same for the delivery counter the script INCRs
/// (`rust:attempts:<id>`): the task runs, uncounted.
#[test]
fn an_attempts_key_of_another_type_does_not_fail_the_fetch() {
    a_key_of_another_type_does_not_fail_the_fetch("rust:attempts:");
}

/// Sends a task whose key `<prefix><id>` is a hash; it must run and be acked.
fn a_key_of_another_type_does_not_fail_the_fetch(prefix: &str) {
    let redis = RedisServer::start();
    let url = redis.url(0);
    let _worker = ThreadWorker::start(&url, &["rt"], 1);
    let ex = executor(&url);
    let mut msg = celery::TaskMessage::new("rust.add", serde_json::json!([4, 1]), "rt");
    msg.id = celery::id::new_task_id();
    let key = format!("{prefix}{}", msg.id);
    put_a_hash_at(&redis, &key);
    let f = ex.send::<i64>(msg).unwrap();
    assert_eq!(f.result_timeout(LONG).unwrap(), 5);
    assert_eq!(common::hlen_unacked(&redis), 0, "acked");
}

/// The fetch script finds the task's id (for its delivery counter and its
/// revoke check) without decoding the message: it must find the id in the
/// headers, the one the worker runs the task under, and no other. A
/// message whose headers carry, before their `id`, an object with an `id`
/// of its own (a custom header from a producer that sorts its keys), or a
/// key ending in `"id` (`"x\"id": ...`, valid JSON), must not count a
/// delivery of another task (`attempts` would tell that task's client it
/// was delivered when it was not).
#[test]
fn the_fetch_script_counts_a_delivery_under_the_headers_id_only() {
    let redis = RedisServer::start();
    let url = redis.url(0);
    let _worker = ThreadWorker::start(&url, &["rt"], 1);
    let mut c = redis.connect();
    let victims: Vec<String> = (0..4).map(|_| celery::id::new_task_id()).collect();
    // Unpadded, the script decodes the message (at most 64 KiB); padded
    // past that, it walks it: both must find the headers' own id.
    let pad = format!(r#""pad": "{}", "#, "x".repeat(70_000));
    let crafted = [
        format!(r#""headers": {{"meta": {{"id": "{}"}}, "#, victims[0]),
        format!(r#""headers": {{"x\"id": "{}", "#, victims[1]),
        format!(r#""headers": {{{pad}"meta": {{"id": "{}"}}, "#, victims[2]),
        format!(r#""headers": {{{pad}"x\"id": "{}", "#, victims[3]),
    ];
    for (victim, headers) in victims.iter().zip(&crafted) {
        let mut msg = celery::TaskMessage::new("rust.add", serde_json::json!([4, 1]), "rt");
        msg.id = celery::id::new_task_id();
        let raw = msg.to_json().replacen(r#""headers":{"#, headers, 1);
        assert_ne!(raw, msg.to_json(), "the headers were not found");
        let _: serde_json::Value = serde_json::from_str(&raw).expect("still JSON");
        c.command(&[b"LPUSH", b"rt", raw.as_bytes()]).unwrap();
        let key = format!("celery-task-meta-{}", msg.id);
        common::wait_until(LONG, "the crafted task's result", || {
            c.command(&[b"EXISTS", key.as_bytes()]).unwrap() == Reply::Integer(1)
        });
        let count = |c: &mut celery::resp::Connection, id: &str| {
            let key = celery::lease::attempts_key(id);
            c.command(&[b"GET", key.as_bytes()]).unwrap().into_bytes()
        };
        assert_eq!(
            count(&mut c, victim),
            None,
            "a delivery of task {} counted under {victim}, an id in its headers: {headers}",
            msg.id
        );
        assert_eq!(
            count(&mut c, &msg.id),
            Some(b"1".to_vec()),
            "the crafted task's own delivery"
        );
    }
}

/// After its pop the fetch script looks whether any list still holds a
/// message (LLEN of each); a priority list's key holding another type
/// (another program's hash) must not fail the script there either: its
/// effects stay, so the popped message would sit unacked, never run, and
/// be restored and fetched into the same error once its lease lapsed.
#[test]
fn a_priority_key_of_another_type_does_not_fail_the_fetch_after_its_pop() {
    let redis = RedisServer::start();
    let url = redis.url(0);
    let key = format!("rt{}3", celery::message::SEP);
    put_a_hash_at(&redis, &key);
    let ex = executor(&url);
    let f = ex.submit_named::<_, i64>("rust.add", (4, 1)).unwrap();
    let _worker = ThreadWorker::start(&url, &["rt"], 1);
    // Hang guard: before the fix, the task never ran.
    assert_eq!(f.result_timeout(LONG).unwrap(), 5);
    assert_eq!(common::hlen_unacked(&redis), 0, "acked");
}

/// The pops themselves: a worker serving two queues, the first empty and
/// its priority list's key holding another type, still fetches from the
/// second (the pop of the wrong-type key is skipped, not an error that
/// fails every fetch while the first queue is empty).
#[test]
fn a_priority_key_of_another_type_does_not_starve_the_next_queue() {
    let redis = RedisServer::start();
    let url = redis.url(0);
    let key = format!("rt{}3", celery::message::SEP);
    put_a_hash_at(&redis, &key);
    let ex = CeleryExecutor::builder(&url).queue("rb").connect().unwrap();
    let f = ex.submit_named::<_, i64>("rust.add", (4, 2)).unwrap();
    let _worker = ThreadWorker::start(&url, &["rt", "rb"], 1);
    // Hang guard: before the fix, every fetch failed at the hash.
    assert_eq!(f.result_timeout(LONG).unwrap(), 6);
    assert_eq!(common::hlen_unacked(&redis), 0, "acked");
}
