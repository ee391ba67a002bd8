#!/usr/bin/env python3
"""Python's concurrent.futures.Future on the operation of crates/future/benches/handoff.rs.

* future/handoff: a value set on one thread and read by a waiter blocked on another, as a
  ping-pong: the main thread sets ping[i], the partner thread (blocked in ping[i].result())
  sets pong[i], the main thread reads it. The figure is the time of one ping-pong (two
  hand-offs), as in the Rust bench.

Usage: python3 future.py [--quick] [--runs N]
"""

from concurrent.futures import Future
import threading

from _common import elapsed, emit, median_of, parse_args, runs


def ping_pong(count):
    """Seconds per ping-pong over `count` ping-pongs between two threads."""
    pings = [Future() for _ in range(count)]
    pongs = [Future() for _ in range(count)]
    ready = threading.Barrier(2)

    def partner():
        ready.wait()
        for ping, pong in zip(pings, pongs):
            pong.set_result(ping.result() + 1)

    thread = threading.Thread(target=partner)
    thread.start()
    ready.wait()

    def loop():
        for i, (ping, pong) in enumerate(zip(pings, pongs)):
            ping.set_result(i)
            assert pong.result() == i + 1

    seconds = elapsed(loop)
    thread.join()
    return seconds / count


def main():
    args = parse_args(__doc__.splitlines()[0])
    n = 1_000 if args.quick else 10_000
    value = median_of(runs(args, 5, 3), lambda: ping_pong(n))
    emit("future/handoff", value * 1e6, "us")


if __name__ == "__main__":
    main()
