"""/proc/PID/cmdline and /proc/PID/exe: what a process runs, for target matching.

proc(5). cmdline is NUL-separated (empty for kernel threads and zombies). It is
read only when a config matcher needs it and is never exported as a label: it
carries secrets.
"""

import os

from exporter.procfs import read_file, translate
from exporter.procfs.paths import Roots


def parse_cmdline(data: bytes) -> list[str]:
    if not data:
        return []
    return [arg.decode("utf-8", "replace") for arg in data.rstrip(b"\0").split(b"\0")]


def read_cmdline(roots: Roots, pid: int) -> list[str]:
    return parse_cmdline(read_file(roots.pid(pid, "cmdline")))


def read_exe(roots: Roots, pid: int) -> str:
    """Target of the exe link (`` (deleted)`` suffix kept); needs ptrace access."""
    path = roots.pid(pid, "exe")
    try:
        return os.readlink(path)
    except OSError as exc:
        raise translate(exc, path) from None
