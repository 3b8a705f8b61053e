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


def list_pid_inodes(roots: Roots) -> list[tuple[int, int]]:
    """(pid, inode number) of each numeric entry of the procfs root, by pid.

    The inode number comes with the listing (getdents' d_ino; procfs fills it by
    instantiating the entry, fs/proc/base.c proc_fill_cache), so it costs nothing
    more. A /proc/PID inode holds its struct pid for life and takes a fresh number
    (get_next_ino) when made: the same number in two listings is the same process;
    a different one is a new process under a reused pid, or the same process whose
    dentry the kernel dropped. A fixture tree's directories have stable numbers.

    A procfs root that cannot be listed fails the whole pass (ReadFailed): there
    is nothing to report, and an empty node must not pass for a quiet one.
    """
    try:
        with os.scandir(roots.procfs) as entries:
            found = [(int(e.name), e.inode()) for e in entries if e.name.isdigit()]
    except OSError as exc:
        raise ReadFailed(f"{roots.procfs}: cannot list processes: {exc.strerror or exc}") from None
    found.sort()
    return found


def list_pids(roots: Roots) -> list[int]:
    """Numeric entries of the procfs root: the thread-group leaders (processes), by pid."""
    return [pid for pid, _ in list_pid_inodes(roots)]


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
