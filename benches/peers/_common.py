"""Shared helpers for the peer benchmarks: arguments, timing, and the output format.

Every peer prints one JSON object per line on stdout:

    {"op": "thread_pool/round_trip", "value": 281.5, "unit": "us"}

`op` is the criterion group id of the Rust bench it is compared with, `value` is the median
of several runs, and `unit` is one of the units the report understands (s, ms, us, ns,
<things>/s, B/s). Progress goes to stderr, so stdout stays machine-readable.
"""

import argparse
import json
import statistics
import sys
import time


def parse_args(description, extra=None):
    """The common options: --quick for a fast rough run, --runs to override the run count."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true",
                        help="smaller workloads and fewer runs (rough figures, fast)")
    parser.add_argument("--runs", type=int, default=None,
                        help="runs per measurement; the median is printed")
    if extra is not None:
        extra(parser)
    args = parser.parse_args()
    if args.runs is not None and args.runs < 1:
        parser.error("--runs must be at least 1")
    return args


def runs(args, default, quick):
    """How many runs to take the median of."""
    if args.runs is not None:
        return args.runs
    return quick if args.quick else default


def median_of(n_runs, measure):
    """Calls measure() n_runs times and returns the median of its results."""
    values = [measure() for _ in range(n_runs)]
    return statistics.median(values)


def elapsed(fn):
    """Seconds taken by fn()."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def emit(op, value, unit):
    """Prints one result line (and a readable copy on stderr)."""
    print(json.dumps({"op": op, "value": value, "unit": unit}), flush=True)
    print(f"  {op}: {value:.4g} {unit}", file=sys.stderr, flush=True)
