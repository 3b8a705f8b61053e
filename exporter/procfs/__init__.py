"""Readers of /proc and /sys: one module per kernel file.

Each module has a pure ``parse_*(data: bytes)`` function and a thin reader that
takes a :class:`~exporter.procfs.paths.Roots`. Nothing here knows metrics, config
or logging policy. Errors are the fixed types below; a vanished process surfaces
as :class:`Vanished` so the caller decides what that means.
"""

import errno
import os


class ProcfsError(Exception):
    """Base class of every error a reader or parser raises."""


class ParseError(ProcfsError):
    """The file was read but its content is not what the kernel writes."""

    def __init__(self, what: str, detail: str):
        super().__init__(f"{what}: {detail}")
        self.what = what


class Vanished(ProcfsError):
    """The process (or file) is gone: ENOENT or ESRCH while reading it."""


class Denied(ProcfsError):
    """Permission denied (EACCES/EPERM): reading maps needs ptrace read access."""


class ReadFailed(ProcfsError):
    """Any other I/O error (EIO and friends)."""


class DeadlineExceeded(ProcfsError):
    """The collection's time (--collect.timeout) ran out in the middle of a read.

    Not the process's fault: the caller stops the pass and leaves the process out,
    since a partial count would understate it.
    """


def translate(exc: OSError, path: str) -> ProcfsError:
    """Turn an OSError from reading *path* into the reader error it means.

    psutil does the same in one decorator (`_pslinux.wrap_exceptions`): one
    place decides what ENOENT/ESRCH and EACCES/EPERM mean for a process file.
    """
    if exc.errno in (errno.ENOENT, errno.ESRCH):
        return Vanished(f"{path}: {exc.strerror or 'gone'}")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return Denied(f"{path}: {exc.strerror or 'permission denied'}")
    return ReadFailed(f"{path}: {exc.strerror or exc}")


def parse_u64(raw: bytes, what: str, field: str) -> int:
    """*raw* as a counter (decimal digits that fit in 64 bits, as the kernel writes
    them), or the parser's own error naming the file and field. int() alone would
    accept a sign or spaces, and raise ValueError past 4,300 digits."""
    if not raw.isdigit() or len(raw) > 20:
        raise ParseError(what, f"{field}: not a number: {raw[:40]!r}")
    return int(raw)


# The first read's size. Every per-process file but maps fits one page (stat ~300
# bytes, status ~1.5 KiB); a bigger buffer costs more than the kernel's writing of
# stat (a 64 KiB read of /proc/PID/stat took 4.3 us here, a 4 KiB one 3.3 us).
SMALL = 4096


def read_file(path: str, limit: int = 1 << 22) -> bytes:
    """Read a /proc or /sys file whole (stat sizes lie), at most *limit* bytes.

    os.open/os.read, not open(): no buffer object, and a one-page first read
    rather than a huge one (a 1 MiB read buffer costs more than the kernel
    spends writing /proc/PID/status).
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise translate(exc, path) from None
    try:
        data = os.read(fd, min(SMALL, limit))
        # stat, status, limits come whole in one read. A multi-record seq_file
        # (mountinfo) hands out about one page per read: 2 KiB or more may be a
        # page of a longer file, so read on until EOF.
        if len(data) >= 2048 and limit > len(data):
            parts = [data]
            total = len(data)
            while total < limit and (more := os.read(fd, min(SMALL, limit - total))):
                parts.append(more)
                total += len(more)
            data = b"".join(parts)
    except OSError as exc:
        raise translate(exc, path) from None
    finally:
        os.close(fd)
    return data
