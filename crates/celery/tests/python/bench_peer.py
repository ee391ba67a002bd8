"""Python Celery client -> Python Celery worker on the same Redis: the peer row
of the Celery benchmark. Prints 'round_trip_us <median>' and 'throughput <tasks/s>'."""
import statistics
import sys
import time

from tasks import add

rounds, n = int(sys.argv[1]), int(sys.argv[2])
add.delay(0, 0).get(timeout=120)  # warm up
times = []
for i in range(rounds):
    t = time.perf_counter()
    assert add.delay(i, 1).get(timeout=120) == i + 1
    times.append(time.perf_counter() - t)
print("round_trip_us", statistics.median(times) * 1e6)
t = time.perf_counter()
results = [add.delay(i, 1) for i in range(n)]
for r in results:
    r.get(timeout=300)
print("throughput", n / (time.perf_counter() - t))
