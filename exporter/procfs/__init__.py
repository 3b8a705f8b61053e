"""Readers of /proc and /sys: one module per kernel file.

Each module has a pure ``parse_*(data: bytes)`` function and a thin reader that
takes a :class:`~exporter.procfs.paths.Roots`. Nothing here knows metrics, config
or logging policy. Errors are the fixed types below; a vanished process surfaces
as :class:`Vanished` so the caller decides what that means.
"""

import errno


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


def translate(exc: OSError, path: str) -> ProcfsError:
    """Turn an OSError from reading *path* into the reader error it means.

    psutil does the same in one decorator (`_pslinux.wrap_exceptions`): one
    place decides what ENOENT/ESRCH and EACCES/EPERM mean for a process file.
    """
    if exc.errno in (errno.ENOENT, errno.ESRCH):
        return Vanished(path)
    if exc.errno in (errno.EACCES, errno.EPERM):
        return Denied(path)
    return ReadFailed(f"{path}: {exc.strerror or exc}")


def read_file(path: str, limit: int = 1 << 20) -> bytes:
    """Read a small /proc or /sys file whole, in one go (stat sizes lie).

    Unbuffered: a proc file is generated per read() call, and a second read
    past the first buffer would see a newer state of the process.
    """
    try:
        with open(path, "rb", buffering=0) as f:
            data = f.read(limit)
    except OSError as exc:
        raise translate(exc, path) from None
    return data
