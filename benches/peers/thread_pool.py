#!/usr/bin/env python3
"""Python's ThreadPoolExecutor on the operations of crates/thread-pool/benches/thread_pool.rs.

* thread_pool/round_trip: submit one no-op to an idle pool and wait for its result, repeated;
  the figure is the time of one round trip.
* thread_pool/throughput_200k: submit 200,000 tiny tasks (each returns a future), then collect
  every result; the figure is tasks per second.
* thread_pool/map_1m: Executor.map of u64 -> u64, results consumed in order; items per
  second. Python maps 200,000 items rather than the Rust bench's 1,000,000 (a rate does not
  depend on the count, and a million would take half a minute per run).

Usage: python3 thread_pool.py [--quick] [--runs N]
"""

from concurrent.futures import ThreadPoolExecutor
import os

from _common import elapsed, emit, median_of, parse_args, runs


def noop():
    return None


def tiny(i):
    return i + 1


def round_trip(pool, count):
    """Seconds per submit -> result round trip, over `count` sequential round trips."""
    def loop():
        for _ in range(count):
            pool.submit(noop).result()
    return elapsed(loop) / count


def throughput(pool, count):
    """Tasks per second for `count` tasks submitted at once, then all results collected."""
    def batch():
        futures = [pool.submit(tiny, i) for i in range(count)]
        for f in futures:
            f.result()
    return count / elapsed(batch)


def map_items(pool, count):
    """Items per second for pool.map over `count` items, consumed in order."""
    def run():
        total = 0
        for y in pool.map(tiny, range(count)):
            total += y
        return total
    return count / elapsed(run)


def main():
    args = parse_args(__doc__.splitlines()[0])
    workers = os.cpu_count() or 2
    with ThreadPoolExecutor(max_workers=workers) as pool:
        # Start the workers before measuring, as the Rust bench measures an idle warm pool.
        round_trip(pool, 200)
        n = 300 if args.quick else 2000
        value = median_of(runs(args, 5, 3), lambda: round_trip(pool, n))
        emit("thread_pool/round_trip", value * 1e6, "us")

        n = 50_000 if args.quick else 200_000
        value = median_of(runs(args, 3, 1), lambda: throughput(pool, n))
        emit("thread_pool/throughput_200k", value, "tasks/s")

        n = 50_000 if args.quick else 200_000
        value = median_of(runs(args, 3, 1), lambda: map_items(pool, n))
        emit("thread_pool/map_1m", value, "items/s")


if __name__ == "__main__":
    main()
