#!/usr/bin/env python3
"""Python's ProcessPoolExecutor on the operations of crates/process-pool/benches/process_pool.rs.

* process_pool/round_trip: one tiny task submitted to an idle pool, result awaited, repeated.
* process_pool/tiny_tasks: many tiny tasks, one submit() each; tasks per second.
* process_pool/map_chunked: map(u64 -> u64) with chunksize 1000; items per second.
* process_pool/map_chunked_large: the same map with chunksize 100,000.
* process_pool/payload_16mib: 16 MiB of bytes in and the same 16 MiB back out; the figure is
  bytes moved per second, both ways counted (32 MiB / round-trip time), as in the Rust bench.

The pool has one worker per core and the default start method of the platform (fork on Linux
with Python 3.11). Usage: python3 process_pool.py [--quick] [--runs N]
"""

from concurrent.futures import ProcessPoolExecutor, wait
import os

from _common import elapsed, emit, median_of, parse_args, runs

MIB = 1024 * 1024


def noop():
    return None


def noop_arg(_):
    return None


def step(x):
    """The u64 -> u64 function of the map benchmark."""
    return (x * 2654435761 + 1) & 0xFFFF_FFFF_FFFF_FFFF


def identity(data):
    return data


def round_trip(pool, count):
    def loop():
        for _ in range(count):
            pool.submit(noop).result()
    return elapsed(loop) / count


def tiny_tasks(pool, count):
    def batch():
        futures = [pool.submit(step, i) for i in range(count)]
        wait(futures)
        for f in futures:
            f.result()
    return count / elapsed(batch)


def map_chunked(pool, count, chunksize):
    def run():
        total = 0
        for y in pool.map(step, range(count), chunksize=chunksize):
            total ^= y
        return total
    return count / elapsed(run)


def payload(pool, size):
    data = os.urandom(size)
    def run():
        back = pool.submit(identity, data).result()
        assert len(back) == size
    return 2 * size / elapsed(run)


def main():
    args = parse_args(__doc__.splitlines()[0])
    quick = args.quick
    workers = os.cpu_count() or 2
    with ProcessPoolExecutor(max_workers=workers) as pool:
        # Start every worker before measuring.
        list(pool.map(noop_arg, range(workers * 4)))
        round_trip(pool, 50)

        n = 100 if quick else 500
        value = median_of(runs(args, 5, 3), lambda: round_trip(pool, n))
        emit("process_pool/round_trip", value * 1e6, "us")

        n = 2_000 if quick else 10_000
        value = median_of(runs(args, 3, 1), lambda: tiny_tasks(pool, n))
        emit("process_pool/tiny_tasks", value, "tasks/s")

        n = 500_000 if quick else 2_000_000
        value = median_of(runs(args, 3, 1), lambda: map_chunked(pool, n, 1000))
        emit("process_pool/map_chunked", value, "items/s")
        value = median_of(runs(args, 3, 1), lambda: map_chunked(pool, n, 100_000))
        emit("process_pool/map_chunked_large", value, "items/s")

        value = median_of(runs(args, 5, 3), lambda: payload(pool, 16 * MIB))
        emit("process_pool/payload_16mib", value, "B/s")


if __name__ == "__main__":
    main()
