"""Values a Python client sends, one table row each: run against our
worker (prefix "rust") and a Python worker (prefix "tasks") to compare.

    CELERY_TEST_BROKER=redis://... python value_cases.py rust|tasks [timeout]
"""
import random
import struct
import sys

from celery import Celery
from tasks import app, url

prefix = sys.argv[1]
timeout = float(sys.argv[2]) if len(sys.argv) > 2 else 120
app.conf.accept_content = ["json", "pickle"]
old = Celery("old", broker=url, backend=url)
old.conf.task_protocol = 1


def outcome(r):
    try:
        return "SUCCESS %r" % (r.get(timeout=timeout),)
    except Exception as e:
        text = str(e).replace("|", "/")
        return "%s.%s: %s" % (type(e).__module__, type(e).__name__, text[:90])


def send(name, *args, **options):
    kwargs = options.pop("kwargs", {})
    return (options.pop("client", app)).send_task(
        "%s.%s" % (prefix, name), args=args, kwargs=kwargs, **options)


rng = random.Random(20)
floats = []
while len(floats) < 4000:
    f = struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0]
    if f == f and abs(f) != float("inf"):
        floats.append(f)
floats += [5e-324, 2.2250738585072009e-308, 1.7976931348623157e308, -0.0]
ints = [2**64, 2**70, -2**63 - 1, 10**30]
deep = 0
for _ in range(200):
    deep = [deep]

cases = [
    ("1 floats (4,004 doubles)", send("echo", floats),
     lambda v: "%d differ" % sum(a.hex() != b.hex() for a, b in zip(floats, v))),
    ("2 2**64, 2**70, -2**63-1, 10**30", send("echo", ints),
     lambda v: "exact" if v == ints and all(type(i) is int for i in v) else repr(v)),
    ("3 NaN", send("echo", float("nan")), None),
    ("3 Infinity", send("echo", float("inf")), None),
    ("3 lone surrogate", send("echo", "\ud800"), None),
    ("3 200-deep list", send("echo", deep), lambda v: "equal" if v == deep else "differs"),
    ("4 add(x=2, y=3)", send("add", kwargs={"x": 2, "y": 3}), None),
    ("4 add(2, y=3)", send("add", 2, kwargs={"y": 3}), None),
    ("4 echo(1, x=2)", send("echo", 1, kwargs={"x": 2}), None),
    ("4 add(2, x=3)", send("add", 2, kwargs={"x": 3}), None),
    ("5 compression zlib", send("add", 2, 3, compression="zlib"), None),
    ("5 compression gzip", send("add", 2, 3, compression="gzip"), None),
    ("5 compression bzip2", send("add", 2, 3, compression="bzip2"), None),
    ("5 serializer pickle", send("add", 2, 3, serializer="pickle"), None),
    ("5 task_protocol 1", send("add", 2, 3, client=old), None),
    ("5 unregistered task", send("nope", 1), None),
    ("6 add('a', 1)", send("add", "a", 1), None),
    ("6 add(2**63-1, 1)", send("add", 2**63 - 1, 1), None),
]
for name, r, show in cases:
    try:
        v = r.get(timeout=timeout)
        text = "SUCCESS " + (show(v) if show else repr(v))
    except Exception as e:
        text = outcome(r)
    print("| %s | %s |" % (name, text))
