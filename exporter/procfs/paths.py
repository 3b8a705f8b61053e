"""Every /proc and /sys path is built here from the configured roots.

Like node_exporter's ``--path.procfs``/``--path.sysfs``: the whole exporter can run
against a fixture tree or a host mounted at ``/host``.
"""

import os
from dataclasses import dataclass


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
    """Numeric entries of the procfs root: the thread-group leaders (processes)."""
    return sorted(int(name) for name in os.listdir(roots.procfs) if name.isdigit())


def list_tids(roots: Roots, pid: int) -> list[int]:
    """The threads of a process (/proc/PID/task/), in the order the kernel lists them;
    empty when the process is gone."""
    try:
        return [int(name) for name in os.listdir(roots.pid(pid, "task")) if name.isdigit()]
    except OSError:
        return []
