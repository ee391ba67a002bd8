"""Writes the process pool's seed corpora from real traffic (scripts/fuzz-seed).

Runs a few of the process pool's own tests under strace (-ff, one file per
thread), then cuts what was written on each descriptor into streams:

* corpus/pool_frames: what a worker wrote on its result pipe (READY and
  RESULT frames), read by the pool (first byte even), and what the pool
  wrote on a task pipe (TASK frames), read by a worker (first byte odd);
* corpus/fd_side: the descriptor messages sent with SharedBytes values (a
  task id and its descriptors), in the fd_side target's input format.

Usage: capture_pool.py FUZZ_DIR TEST_BINARY:TEST_NAME...
"""

import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

HEADER = 5
TASK, READY, RESULT, INIT_FAILED = 1, 2, 3, 4
MAX_SEED = 2048

CALL = re.compile(r"^(write|writev|sendmsg)\((\d+), (.*) = (\d+)$")
STRING = re.compile(r'"((?:\\x[0-9a-f]{2})*)"(\.\.\.)?')


def unescape(text):
    return bytes(int(h, 16) for h in text.split("\\x")[1:])


def calls(path):
    """(syscall, fd, bytes, descriptor count) for each complete call."""
    with open(path) as f:
        for line in f:
            m = CALL.match(line.strip())
            if not m:
                continue
            name, fd, args, ret = m.group(1), int(m.group(2)), m.group(3), int(m.group(4))
            strings = STRING.findall(args)
            if any(truncated for _, truncated in strings):
                continue  # longer than strace's -s: not all bytes shown
            data = b"".join(unescape(s) for s, _ in strings)[:ret]
            fds = 0
            rights = re.search(r"cmsg_data=\[([0-9, ]*)\]", args)
            if rights:
                fds = len([x for x in rights.group(1).split(",") if x.strip()])
            yield name, fd, data, fds


def whole_frames(stream):
    """The longest prefix of `stream` made of whole frames, at most MAX_SEED bytes."""
    at = 0
    while at + HEADER <= len(stream):
        n = int.from_bytes(stream[at : at + 4], "little")
        end = at + HEADER + n
        if stream[at + 4] not in (TASK, READY, RESULT, INIT_FAILED) or end > len(stream):
            break
        if end > MAX_SEED and at > 0:
            break
        at = end
    return stream[:at]


def main():
    fuzz_dir = sys.argv[1]
    frames_dir = os.path.join(fuzz_dir, "corpus", "pool_frames")
    fds_dir = os.path.join(fuzz_dir, "corpus", "fd_side")
    for directory in (frames_dir, fds_dir):
        os.makedirs(directory, exist_ok=True)
        for old in glob.glob(os.path.join(directory, "captured_*")):
            os.remove(old)  # an earlier capture; found inputs have other names
    if shutil.which("strace") is None:
        sys.exit("capture_pool.py: needs strace (apt-get install strace)")
    tmp = tempfile.mkdtemp()
    try:
        for k, spec in enumerate(sys.argv[2:]):
            binary, test = spec.split(":")
            subprocess.run(
                ["strace", "-f", "-ff", "-o", os.path.join(tmp, "%d" % k),
                 "-e", "trace=write,writev,sendmsg", "-xx", "-s", "4096",
                 binary, "--exact", test, "--test-threads", "1"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False,
            )
        seen = set()
        for path in sorted(glob.glob(os.path.join(tmp, "*"))):
            streams = {}
            for name, fd, data, fds in calls(path):
                if name == "sendmsg":
                    # A descriptor message: exactly a task id, with descriptors.
                    if len(data) == 8 and fds:
                        write_fd_seed(fds_dir, data, fds, seen)
                    continue
                if fd > 2:
                    streams.setdefault(fd, bytearray()).extend(data)
            for stream in streams.values():
                frames = whole_frames(bytes(stream))
                if not frames:
                    continue
                # Even first byte: the pool reads; odd: a worker reads.
                mode = b"\x01" if frames[4] == TASK else b"\x00"
                write_seed(frames_dir, mode + frames, seen)
    finally:
        shutil.rmtree(tmp)


def write_seed(directory, data, seen):
    if data in seen:
        return
    seen.add(data)
    n = len(glob.glob(os.path.join(directory, "captured_*")))
    with open(os.path.join(directory, "captured_%02d" % n), "wb") as f:
        f.write(data)


def write_fd_seed(directory, task_id, fds, seen):
    """The fd_side input for this message: `fds` sealed memfds (4 at most),
    the right payload (bit 0x10), and a value naming each descriptor once
    (bit 0x20)."""
    n = min(fds, 4)
    if ("fds", n) in seen:
        return  # one seed per descriptor count: the ids differ, nothing else
    seen.add(("fds", n))
    data = bytes([n | 0x10 | 0x20])
    for i in range(n):
        content = b"shared %d" % i
        data += bytes([0, len(content)]) + content  # kind 0: sealed
    data += task_id
    data += bytes([n]) + bytes(range(n))
    write_seed(directory, data, seen)


if __name__ == "__main__":
    main()
