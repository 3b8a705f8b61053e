"""May this exporter read other users' /proc/PID/maps? Probed once, at start.

/proc/PID/maps needs ptrace read access (ptrace_may_access with
PTRACE_MODE_READ_FSCREDS, fs/proc/base.c): the same user and a dumpable
process, or CAP_SYS_PTRACE. status and statm do not, so without it the exporter
still counts every process but not its map areas. Reads /proc/PID/stat and
status of up to PROBES processes, one byte of their maps, and the exporter's own
/proc/self/status (CapEff: include/uapi/linux/capability.h numbers the bits).
"""

import os
from typing import NamedTuple

from exporter.procfs import ProcfsError, read_file
from exporter.procfs.paths import Roots, list_pids
from exporter.procfs.stat import read_stat
from exporter.procfs.status import parse_status, read_status

CAP_SYS_PTRACE = 19
CAP_PERFMON = 38
CAP_BPF = 39
PROBES = 16  # other users' processes tried: one alone may be special (a sandbox's init)


class Probe(NamedTuple):
    readable: int  # other users' processes whose maps could be read
    denied: list[tuple[int, int]]  # (pid, uid) of those refused


def probe_maps_access(roots: Roots) -> Probe | None:
    """Try the maps of up to PROBES live user-space processes of other users, or
    None when there is none to try."""
    me = os.geteuid()
    readable, denied = 0, []
    for pid in list_pids(roots):
        if readable + len(denied) >= PROBES:
            break
        try:
            stat = read_stat(roots, pid)
            if stat.is_kernel_thread or stat.is_zombie:
                continue  # no mm: their maps read empty for anyone
            uid = read_status(roots, pid).uid
        except ProcfsError:
            continue
        if uid is None or uid == me:
            continue
        try:
            fd = os.open(roots.pid(pid, "maps"), os.O_RDONLY | os.O_CLOEXEC)
            try:
                os.read(fd, 1)
            finally:
                os.close(fd)
        except PermissionError:
            denied.append((pid, uid))
            continue
        except OSError:
            continue  # exited meanwhile: try the next one
        readable += 1
    return Probe(readable, denied) if readable or denied else None


def effective_capabilities() -> int:
    """Our own effective set: the real /proc/self, not --path.procfs (this is about
    the running exporter, not the node it reads); 0 if it cannot be read."""
    try:
        return parse_status(read_file("/proc/self/status")).hex_mask(b"CapEff") or 0
    except ProcfsError:
        return 0


def has_capability(cap: int) -> bool:
    return bool(effective_capabilities() >> cap & 1)


def is_undumpable(roots: Roots, pid: int) -> bool:
    """Whether a process of another uid than root is not dumpable: the kernel then
    makes the files of its /proc/PID root's (task_dump_owner in fs/proc/base.c; on
    6.18 the files, not the directory), and its maps refuse every reader without
    CAP_SYS_PTRACE, its own user included. A root process that is not dumpable
    cannot be told apart this way: False."""
    try:
        owner = os.stat(roots.pid(pid, "stat")).st_uid
        uid = read_status(roots, pid).uid
    except (OSError, ProcfsError):
        return False
    return owner == 0 and uid not in (None, 0)
