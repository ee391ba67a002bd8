#!/usr/bin/env python3
"""The book's threaded flag downloader (flags_threadpool.py), as a peer of flags2-threadpool.

Downloads the 20 most populous countries' flags from our flag server with a
ThreadPoolExecutor and urllib, saving each to a temporary folder, and prints the median time
of the whole download:

    {"op": "flags/delay_20", "value": 0.53, "unit": "s"}

Start the server with a delay to match the Rust row (`flag-server --port 0 --delay 0.5`) and
pass the base URL it prints. Usage: python3 flags.py --url http://127.0.0.1:PORT/flags
[--quick] [--runs N] [--workers N]
"""

from concurrent.futures import ThreadPoolExecutor
import pathlib
import tempfile
import urllib.request

from _common import elapsed, emit, median_of, parse_args, runs

POP20_CC = "CN IN US ID BR PK NG BD RU JP MX PH VN ET EG DE IR TR CD FR".split()


def get_flag(base_url, cc):
    url = f"{base_url}/{cc}/{cc}.gif".lower()
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.read()


def download_many(base_url, workers, dest):
    def download_one(cc):
        image = get_flag(base_url, cc)
        (dest / f"{cc}.gif").write_bytes(image)
        return cc
    with ThreadPoolExecutor(max_workers=workers) as pool:
        done = list(pool.map(download_one, sorted(POP20_CC)))
    assert len(done) == len(POP20_CC)


def main():
    def extra(parser):
        parser.add_argument("--url", required=True,
                            help="base URL of the flag server, e.g. http://127.0.0.1:8002/flags")
        parser.add_argument("--workers", type=int, default=len(POP20_CC),
                            help="threads in the pool (default: one per flag)")
    args = parse_args(__doc__.splitlines()[0], extra)
    base_url = args.url.rstrip("/")
    # One request first, so the server's first-request set-up is not charged to Python.
    get_flag(base_url, POP20_CC[0])
    with tempfile.TemporaryDirectory(prefix="flags-py-") as tmp:
        dest = pathlib.Path(tmp)
        value = median_of(runs(args, 3, 1),
                          lambda: elapsed(lambda: download_many(base_url, args.workers, dest)))
    emit("flags/delay_20", value, "s")


if __name__ == "__main__":
    main()
