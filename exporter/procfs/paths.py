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

    def pid(self, pid: int | str, name: str) -> str:
        """A process's file; *pid* may also be "PID/task/TID" (a thread's view of it)."""
        # Called several times per process per scrape: a plain f-string, not os.path.join.
        return f"{self.procfs}/{pid}/{name}"

    def sys(self, *parts: object) -> str:
        return os.path.join(self.sysfs, *map(str, parts))


def list_pids(roots: Roots) -> list[int]:
    """Numeric entries of the procfs root: the thread-group leaders (processes)."""
    return sorted(int(name) for name in os.listdir(roots.procfs) if name.isdigit())
