"""Python Celery tasks for the interop tests (run from scripts/test's virtualenv)."""
import os

from celery import Celery

url = os.environ["CELERY_TEST_BROKER"]
app = Celery("tasks", broker=url, backend=url)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    worker_hijack_root_logger=False,
    broker_connection_retry_on_startup=True,
)


@app.task(name="tasks.add")
def add(x, y):
    return x + y


@app.task(name="tasks.fail")
def fail(message):
    raise ValueError(message)


@app.task(name="tasks.echo")
def echo(value):
    return value


@app.task(name="tasks.wait_for")
def wait_for(path):
    """Says it started (`<path>.started`), then waits until `path` exists:
    a task a test holds running (only a signal ends it early)."""
    import time
    open(path + ".started", "w").close()
    while not os.path.exists(path):
        time.sleep(0.01)
    return os.getpid()


@app.task(name="tasks.count_run", acks_late=True)
def count_run(url, key, seconds):
    """Counts its run (INCR key on the Redis at url: a second run of one
    message counts 2), then works for `seconds`; says who ran it. Acked
    late, as ours: its message stays unacked (with no lease of ours) while
    it runs."""
    import time

    import redis

    redis.Redis.from_url(url).incr(key)
    time.sleep(seconds)
    return "python"
