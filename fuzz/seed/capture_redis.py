"""Writes the seed corpora that come from Redis and Celery (scripts/fuzz-seed).

Starts its own redis-server on a free port, then records:

* corpus/resp: the raw reply bytes a real redis-server sends to the commands
  Celery's transport uses (statuses, errors, integers, bulk and nil bulk
  strings, arrays, nil arrays, pub/sub pushes, pipelined replies);
* corpus/celery_message: real task messages as Celery's Python client
  LPUSHes them, and real result records as its Redis backend stores them.

Run with the Celery virtualenv's python (CELERY_VENV/bin/python).
"""

import os
import socket
import subprocess
import sys
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def command(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def raw_reply(sock, wire, settle=0.2):
    """Sends `wire` and returns every byte the server sends back."""
    sock.sendall(wire)
    time.sleep(settle)  # the server answers at once; this only collects it
    sock.settimeout(0.5)
    data = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    except socket.timeout:
        pass
    return data


def capture_resp(port, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    sock = socket.create_connection(("127.0.0.1", port))
    cases = {
        "ping": command("PING"),
        "set": command("SET", "k", "v"),
        "get": command("GET", "k"),
        "get_nil": command("GET", "missing"),
        "lpush": command("LPUSH", "celery", "a", "b", "c"),
        "lrange": command("LRANGE", "celery", 0, -1),
        "brpop_nil": command("BRPOP", "empty", "0.01"),
        "error": command("NOSUCHCOMMAND"),
        "wrongtype": command("HGET", "celery", "x"),
        "hset_hgetall": command("HSET", "unacked", "tag", "{\"body\": \"x\"}")
        + command("HGETALL", "unacked"),
        "multi_exec": command("MULTI") + command("INCR", "n") + command("GET", "k") + command("EXEC"),
        "zadd_zrange": command("ZADD", "unacked_index", "1.5", "tag")
        + command("ZRANGEBYSCORE", "unacked_index", "-inf", "+inf", "WITHSCORES"),
        "empty_bulk": command("SET", "e", "") + command("GET", "e"),
        "binary_bulk": command("SET", "b", bytes(range(256))) + command("GET", "b"),
    }
    for name, wire in cases.items():
        with open(os.path.join(out_dir, name), "wb") as f:
            f.write(raw_reply(sock, wire))
    # Pub/sub: subscribe confirmations, then a pushed message.
    sub = socket.create_connection(("127.0.0.1", port))
    confirm = raw_reply(sub, command("SUBSCRIBE", "celery-task-meta-1", "celery-task-meta-2"))
    raw_reply(sock, command("PUBLISH", "celery-task-meta-1", "{\"status\": \"SUCCESS\"}"), 0)
    pushed = raw_reply(sub, b"")
    with open(os.path.join(out_dir, "subscribe_and_push"), "wb") as f:
        f.write(confirm + pushed)


def capture_celery(port, out_dir):
    import redis
    from celery import Celery

    os.makedirs(out_dir, exist_ok=True)
    url = "redis://127.0.0.1:%d/0" % port
    app = Celery("seed", broker=url, backend=url)
    app.conf.task_serializer = "json"
    r = redis.Redis(port=port)
    r.delete("celery")
    app.send_task("tasks.add", args=(1, 2))
    app.send_task("tasks.echo", args=("héllo", [1.5, None, True]), kwargs={"k": {"n": -1}})
    app.send_task("tasks.add", args=(3, 4), queue="other", priority=5)
    for i, raw in enumerate(r.lrange("celery", 0, -1) + r.lrange("other", 0, -1)):
        with open(os.path.join(out_dir, "message_%d" % i), "wb") as f:
            f.write(raw)
    # Result records as Celery's backend writes them.
    app.backend.store_result("id-ok", {"sum": 3, "list": [1, "a"]}, "SUCCESS")
    try:
        raise ValueError("boom")
    except ValueError as e:
        app.backend.store_result("id-fail", e, "FAILURE", traceback="Traceback ...")
    app.backend.store_result("id-started", None, "STARTED")
    for name in ["id-ok", "id-fail", "id-started"]:
        with open(os.path.join(out_dir, "meta_" + name), "wb") as f:
            f.write(r.get("celery-task-meta-" + name))


def main():
    fuzz_dir = sys.argv[1]
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port)).close()
                break
            except OSError:
                time.sleep(0.05)
        capture_resp(port, os.path.join(fuzz_dir, "corpus", "resp"))
        capture_celery(port, os.path.join(fuzz_dir, "corpus", "celery_message"))
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
