//! Broker URLs as Celery users write them:
//! each form reaches a real redis-server set up for it, or is refused with
//! an error that says why; a wrong password is a clear error; no password
//! is ever printed.

mod common;

use celery::{tasks, CeleryExecutor};
use common::*;

/// Runs `rust.add` through an executor and an in-process worker, both on `url`.
fn round_trip(url: &str) {
    let _w = ThreadWorker::start(url, &["celery"], 1);
    let ex = CeleryExecutor::builder(url)
        .registry(tasks::builtin())
        .connect()
        .unwrap_or_else(|e| panic!("connect to {url}: {e}"));
    let f = ex.submit_fallible(tasks::add, (2, 3)).unwrap();
    assert_eq!(f.result_timeout(LONG).unwrap(), 5);
}

#[test]
fn an_acl_user_logs_in_with_auth_user_password() {
    // The default user is off: only `AUTH alice pw` gets in.
    let redis = RedisServer::start_args(&[
        "--user", "default", "off", "--user", "alice", "on", ">pw", "~*", "&*", "+@all",
    ]);
    round_trip(&format!("redis://alice:pw@127.0.0.1:{}/0", redis.port()));
}

#[test]
fn a_percent_encoded_password_is_decoded() {
    let redis = RedisServer::start_args(&["--requirepass", "p@ss:w%rd"]);
    round_trip(&format!(
        "redis://:p%40ss%3Aw%25rd@127.0.0.1:{}/0",
        redis.port()
    ));
}

#[test]
fn query_options_are_read_as_options_not_as_the_database() {
    let redis = RedisServer::start();
    let url = format!(
        "redis://127.0.0.1:{}/0?socket_timeout=5&socket_connect_timeout=2",
        redis.port()
    );
    round_trip(&url);
}

#[test]
fn an_ipv6_literal_host_connects() {
    let redis = RedisServer::start_args(&["--bind", "127.0.0.1", "::1"]);
    round_trip(&format!("redis://[::1]:{}/0", redis.port()));
}

#[test]
fn a_unix_socket_url_connects_in_kombus_and_redis_pys_spelling() {
    let dir = std::env::temp_dir().join(format!("celery-sock-{}", celery::id::new_task_id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sock = dir.join("redis.sock");
    let sock = sock.to_str().unwrap();
    let redis = RedisServer::start_args(&[
        "--unixsocket",
        sock,
        "--unixsocketperm",
        "700",
        "--requirepass",
        "pw",
    ]);
    round_trip(&format!("redis+socket://:pw@{sock}?virtual_host=1"));
    round_trip(&format!("unix://:pw@{sock}?db=2"));
    // A unix socket's reads give up after READ_TIMEOUT too, as TCP ones.
    let url = celery::RedisUrl::parse(&format!("unix://:pw@{sock}")).unwrap();
    let conn = celery::resp::Connection::open(&url).unwrap();
    let socket = conn.writer().unwrap();
    assert!(
        matches!(socket, celery::resp::Stream::Unix(_)),
        "{socket:?}"
    );
    assert_eq!(
        socket.read_timeout().unwrap(),
        Some(celery::resp::READ_TIMEOUT),
        "the unix socket's read timeout"
    );
    drop(redis);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn tls_urls_are_refused_with_the_reason() {
    for (url, why) in [
        (
            "rediss://:pw@127.0.0.1:6380/0",
            "TLS (rediss://) is not supported",
        ),
        ("rediss://h", "TLS (rediss://) is not supported"),
    ] {
        let e = match CeleryExecutor::connect(url) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("{url} was accepted"),
        };
        assert!(e.contains(why), "{url}: {e}");
    }
}

#[test]
fn a_wrong_password_is_a_clear_error_from_the_executor_and_the_worker() {
    let redis = RedisServer::start_args(&["--requirepass", "right-one"]);
    let wrong = format!("redis://:n0tThis@127.0.0.1:{}/0", redis.port());
    let e = match CeleryExecutor::connect(&wrong) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("a wrong password was accepted"),
    };
    assert!(
        e.contains("refused to log in") && e.contains("WRONGPASS"),
        "{e}"
    );
    assert!(!e.contains("n0tThis"), "the password is shown: {e}");
    // No password at all: the error says the server wants one.
    let none = format!("redis://127.0.0.1:{}/0", redis.port());
    let e = match CeleryExecutor::connect(&none) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("no password was accepted"),
    };
    assert!(
        e.contains("NOAUTH") && e.contains("wants a password"),
        "{e}"
    );

    let mut w = Spawned::start(&wrong, || {}, &["-c", "1", "--pool", "threads"]);
    assert_eq!(w.wait_exit(), Some(1), "the worker must exit 1");
    let err = w.stderr();
    assert!(err.contains("refused to log in"), "{err}");
    assert!(
        !err.contains("n0tThis"),
        "the worker printed the password: {err}"
    );
}

#[test]
fn the_worker_never_prints_the_broker_password() {
    let redis = RedisServer::start_args(&["--requirepass", "s3cret"]);
    let url = format!("redis://:s3cret@127.0.0.1:{}/0", redis.port());
    let mut w = Spawned::start(&url, || {}, &["-c", "1", "--pool", "threads"]);
    wait_until(LONG, "the worker's ready line", || {
        w.stderr().contains("ready")
    });
    w.signal_group(libc::SIGTERM);
    assert_eq!(w.wait_exit(), Some(0));
    let err = w.stderr();
    assert!(
        !err.contains("s3cret"),
        "the worker printed the password: {err}"
    );
    assert!(
        err.contains(&format!(":**@127.0.0.1:{}/0", redis.port())),
        "{err}"
    );
}

/// A server with a user `app` (password `pw`) allowed only the channels
/// Celery's results use (`&celery-task-meta-*`, as an operator grants what
/// the app needs).
const RESULT_CHANNELS_ONLY: &[&str] = &[
    "--user",
    "app",
    "on",
    ">pw",
    "~*",
    "resetchannels",
    "&celery-task-meta-*",
    "+@all",
];

/// A Redis 7 ACL user allowed only the channels Celery's results use
/// (`&celery-task-meta-*`, as an operator grants what the app needs) and
/// `CLIENT`: the executor's flush watch cannot subscribe to the tracking
/// channel. That is no reason to refuse to connect: the watch is a
/// bonus (a flush is then seen at the next send or reconnect).
#[test]
fn a_user_without_the_tracking_channel_still_connects_and_gets_results() {
    let redis = RedisServer::start_args(RESULT_CHANNELS_ONLY);
    // The worker as a user with every channel (its pidbox).
    let _w = ThreadWorker::start(&redis.url(0), &["celery"], 1);
    let url = format!("redis://app:pw@127.0.0.1:{}/0", redis.port());
    let ex = CeleryExecutor::builder(&url)
        .registry(tasks::builtin())
        .connect()
        .unwrap_or_else(|e| panic!("connect as a user without the tracking channel: {e}"));
    let f = ex.submit_fallible(tasks::add, (2, 3)).unwrap();
    assert_eq!(f.result_timeout(LONG).unwrap(), 5);
}

/// The same user on a broker that is a server of its own: the executor
/// then watches the broker on a connection of its own (to see it restart
/// without its data), subscribed to a channel only to be exempt from the
/// server's idle timeout. That channel is not granted either: the watch
/// must do without it, not refuse to connect or fail the futures.
#[test]
fn a_user_without_the_watch_channel_still_uses_a_broker_of_its_own() {
    let broker = RedisServer::start_args(RESULT_CHANNELS_ONLY);
    let backend = RedisServer::start_args(RESULT_CHANNELS_ONLY);
    let mut config = celery::WorkerConfig::new(&broker.url(0));
    config.backend = Some(backend.url(0));
    config.concurrency = 1;
    let _w = ThreadWorker::with_config(config, tasks::builtin());
    let as_app = |redis: &RedisServer| format!("redis://app:pw@127.0.0.1:{}/0", redis.port());
    let ex = CeleryExecutor::builder(&as_app(&broker))
        .backend(&as_app(&backend))
        .registry(tasks::builtin())
        .connect()
        .unwrap_or_else(|e| panic!("connect as a user without the watch channel: {e}"));
    let f = ex.submit_fallible(tasks::add, (2, 3)).unwrap();
    assert_eq!(f.result_timeout(LONG).unwrap(), 5);
}
