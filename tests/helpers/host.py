"""Tests that change the host take one lock, and restore what they change.

Two runs of the suite may overlap on one machine (two checkouts, CI beside a
session). Hugepage pools, sysctls such as vm.max_map_count, system users,
loaded BPF programs and containers are shared by every run: a test that changes
one, or asserts on one (a pool's size), holds HOST_LOCK for as long as it
depends on it. The lock is flock(2) on a file in /run/lock (or the temporary
directory): the kernel drops it when the holder dies, so a killed run never
leaves the next one waiting.
"""

import contextlib
import fcntl
import os
import tempfile

_DIR = "/run/lock" if os.path.isdir("/run/lock") and os.access("/run/lock", os.W_OK) else tempfile.gettempdir()
LOCK_PATH = os.path.join(_DIR, "vma-exporter-tests.host.lock")

_depth = 0  # re-entrant within one process: a fixture and its test may both take it
_fd: int | None = None


@contextlib.contextmanager
def host_lock():
    """Hold the host lock (blocking until another run releases it)."""
    global _depth, _fd
    if _depth == 0:
        fd = os.open(LOCK_PATH, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        fcntl.flock(fd, fcntl.LOCK_EX)
        _fd = fd
    _depth += 1
    try:
        yield
    finally:
        _depth -= 1
        if _depth == 0 and _fd is not None:
            fcntl.flock(_fd, fcntl.LOCK_UN)
            os.close(_fd)
            _fd = None


def read_int(path: str) -> int:
    with open(path) as f:
        return int(f.read().split()[0])


def write_int(path: str, value: int) -> None:
    with open(path, "w") as f:
        f.write(f"{value}\n")


@contextlib.contextmanager
def sysfs_value(path: str, value: int):
    """Set an integer file of /proc/sys or /sys under the host lock; restore it after.

    Yields the value the kernel then reports, which may be less than asked
    (a hugepage pool cannot grow past what fragmented memory gives).
    """
    with host_lock():
        old = read_int(path)
        try:
            write_int(path, value)
            yield read_int(path)
        finally:
            write_int(path, old)
