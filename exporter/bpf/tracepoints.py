"""Open syscall trace events as perf events, for BPF programs to attach to.

A trace event is named by its numeric id, which only tracefs tells:
``<tracefs>/events/syscalls/sys_exit_mmap/id``. libbpf's own
bpf_program__attach_tracepoint() looks for tracefs at fixed paths of this
mount namespace; in a container the host's tracefs is under the host's /sys
mount (``--path.sysfs``), so the id is read here and the event opened with
perf_event_open(2), which needs CAP_PERFMON (or CAP_SYS_ADMIN).
"""

import ctypes
import os
import platform

# perf_event_open's number; the BPF source is built for these architectures' kernels.
NR_PERF_EVENT_OPEN = {"x86_64": 298, "aarch64": 241}
PERF_TYPE_TRACEPOINT = 2
PERF_FLAG_FD_CLOEXEC = 1 << 3
PERF_ATTR_SIZE_VER0 = 64  # type, size, config, ..., config1: all this needs


class PerfEventAttr(ctypes.Structure):
    """The first PERF_ATTR_SIZE_VER0 bytes of struct perf_event_attr (linux/perf_event.h)."""

    _fields_ = [
        ("type", ctypes.c_uint32),
        ("size", ctypes.c_uint32),
        ("config", ctypes.c_uint64),
        ("sample_period", ctypes.c_uint64),
        ("sample_type", ctypes.c_uint64),
        ("read_format", ctypes.c_uint64),
        ("flags", ctypes.c_uint64),
        ("wakeup_events", ctypes.c_uint32),
        ("bp_type", ctypes.c_uint32),
        ("config1", ctypes.c_uint64),
    ]


def tracefs_candidates(sysfs: str = "/sys") -> list[str]:
    """Where tracefs is mounted: its own mount point, or debugfs's old one."""
    return [os.path.join(sysfs, "kernel", "tracing"), os.path.join(sysfs, "kernel", "debug", "tracing")]


class TracefsUnavailable(Exception):
    """No tracefs with the syscall events can be read; the message says what to do."""


def find_tracefs(candidates: list[str]) -> str:
    """The first candidate that holds the syscall events; TracefsUnavailable naming why none does."""
    for path in candidates:
        if os.path.isdir(os.path.join(path, "events", "syscalls")):
            return path
    for path in candidates:
        if os.path.isdir(path) and not os.access(path, os.R_OK | os.X_OK):
            raise TracefsUnavailable(f"read access to tracefs at {path} (mode {os.stat(path).st_mode & 0o777:o}, "
                                     f"uid {os.stat(path).st_uid}'s: run as uid 0, keeping only the capabilities "
                                     f"the BPF source needs)")
    raise TracefsUnavailable(f"tracefs with the syscall trace events at {' or '.join(candidates)} (mount -t "
                             f"tracefs nodev /sys/kernel/tracing; a kernel with CONFIG_FTRACE_SYSCALLS=y)")


def event_id(tracefs: str, category: str, name: str) -> int:
    path = os.path.join(tracefs, "events", category, name, "id")
    with open(path, "rb") as f:
        return int(f.read())


def open_tracepoint(tracefs: str, category: str, name: str) -> int:
    """A perf event fd for one trace event, on all CPUs (a BPF program on a
    tracepoint runs wherever the event fires, whatever CPU its perf event names)."""
    nr = NR_PERF_EVENT_OPEN.get(platform.machine())
    if nr is None:
        raise OSError(0, f"perf_event_open: unsupported architecture {platform.machine()}")
    attr = PerfEventAttr(type=PERF_TYPE_TRACEPOINT, size=PERF_ATTR_SIZE_VER0,
                         config=event_id(tracefs, category, name))
    libc = ctypes.CDLL(None, use_errno=True)
    fd = libc.syscall(nr, ctypes.byref(attr), -1, 0, -1, PERF_FLAG_FD_CLOEXEC)
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"perf_event_open {category}:{name}: {os.strerror(err)}")
    return fd
