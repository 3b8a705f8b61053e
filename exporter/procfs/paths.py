"""Every /proc and /sys path is built here from the configured roots.

Like node_exporter's ``--path.procfs``/``--path.sysfs``: the whole exporter can run
against a fixture tree or a host mounted at ``/host``.
"""

import os
from dataclasses import dataclass

from exporter.procfs import ReadFailed


@dataclass(frozen=True)
class Roots:
    procfs: str = "/proc"
    sysfs: str = "/sys"

    def proc(self, *parts: object) -> str:
        return os.path.join(self.procfs, *map(str, parts))

    def pid(self, pid: int, name: str, tid: int | None = None) -> str:
        """A process's file, or with *tid* one thread's view of it (``PID/task/TID/name``).

        A thread's maps, statm and status are its process's (all threads share one
        mm); they are read that way when the leader thread has exited.
        """
        # Called several times per process per scrape: a plain f-string, not os.path.join.
        if tid is None:
            return f"{self.procfs}/{pid}/{name}"
        return f"{self.procfs}/{pid}/task/{tid}/{name}"

    def sys(self, *parts: object) -> str:
        return os.path.join(self.sysfs, *map(str, parts))


def list_pids(roots: Roots) -> list[int]:
    """Numeric entries of the procfs root: the thread-group leaders (processes).

    A procfs root that cannot be listed fails the whole pass (ReadFailed): there
    is nothing to report, and an empty node must not pass for a quiet one.
    """
    try:
        names = os.listdir(roots.procfs)
    except OSError as exc:
        raise ReadFailed(f"{roots.procfs}: cannot list processes: {exc.strerror or exc}") from None
    return sorted(int(name) for name in names if name.isdigit())


def list_tids(roots: Roots, pid: int) -> list[int]:
    """The threads of a process (/proc/PID/task/), in the order the kernel lists them;
    empty when the process is gone."""
    try:
        return [int(name) for name in os.listdir(roots.pid(pid, "task")) if name.isdigit()]
    except OSError:
        return []


def procfs_problem(roots: Roots) -> str | None:
    """Why *roots.procfs* is not a procfs to read, or None. A procfs has /stat
    (the kernel's, or a fixture tree's) and can be listed."""
    path = roots.procfs
    if not os.path.isdir(path):
        return f"{path} does not exist or is not a directory"
    if not os.path.isfile(os.path.join(path, "stat")):
        return f"{path} is not a procfs mount (no {path}/stat)"
    try:
        os.listdir(path)
    except OSError as exc:
        return f"{path} cannot be listed: {exc.strerror or exc}"
    return None


def sysfs_problem(roots: Roots) -> str | None:
    """Why the hugepage pools cannot be read under *roots.sysfs*, or None. A sysfs
    has kernel/mm (the hugepages directory under it exists only with hugetlb support)."""
    mm = os.path.join(roots.sysfs, "kernel", "mm")
    if os.path.isdir(mm) and os.access(mm, os.R_OK | os.X_OK):
        return None
    return f"sysfs unreadable at {roots.sysfs} (no readable {mm})"
