"""ENOMEM from the memory-mapping syscalls, counted in the kernel as it happens.

    with EnomemCounter() as ec:       # attaches enomem.bpf.c to 12 syscall trace events
        counts = ec.read()            # every process with failures, live or exited
        ...                           # an iterator pass after the read tells which exited
        ec.forget(exited)             # then their counts are final: drop them
        ec.node_totals(), ec.overflows()

Per process the kernel keeps, under (tgid, the leader's start_boottime), one
counter per (syscall, cause) (records.h's struct enomem_value): a process that
exits keeps its counts until user space has read them, so group totals can stay
monotonic, and a reused pid never inherits them. The map is bounded
(``max_processes``); a failure that finds it full is still counted per node
and in ``overflows()["process_map_full"]``. Node totals never reset.

Causes (judged at the failure, see enomem.bpf.c): ``map_count`` (at
vm.max_map_count), ``rlimit_data``, ``rlimit_as``, ``memory`` (none of them).
"""

import ctypes
import os
import resource
import struct
from typing import Iterable, NamedTuple

from exporter.bpf import libbpf, requirements, tracepoints
from exporter.bpf.bpfobject import BpfObject, Source
from exporter.bpf.tasks import CLK_TCK, object_path

OBJECT = "enomem.bpf.o"
SYSCALLS = ("mmap", "munmap", "mprotect", "mremap", "brk", "shmat")  # enum vma_syscall
CAUSES = ("map_count", "rlimit_data", "rlimit_as", "memory")  # enum vma_cause
OVERFLOWS = ("process_map_full", "enter_map_full", "exit_unpaired")  # enum vma_overflow
_CONFIG = struct.Struct("=4I")  # struct enomem_config
_LIMITS = struct.Struct("=2I")  # struct enomem_limits
_CELLS = len(SYSCALLS) * len(CAUSES)


class Key(ctypes.Structure):  # struct enomem_key
    _fields_ = [("tgid", ctypes.c_uint32), ("pad", ctypes.c_uint32), ("start_boottime_ns", ctypes.c_uint64)]


class Value(ctypes.Structure):  # struct enomem_value
    _fields_ = [("count", ctypes.c_uint64 * _CELLS), ("comm", ctypes.c_char * 16)]


class Totals(ctypes.Structure):  # struct enomem_totals (.bss)
    _fields_ = [("node", ctypes.c_uint64 * _CELLS), ("overflow", ctypes.c_uint64 * len(OVERFLOWS))]


class ProcessFailures(NamedTuple):
    pid: int
    starttime_ticks: int  # as /proc/PID/stat field 22: (pid, starttime_ticks) is the identity
    comm: str
    counts: dict[tuple[str, str], int]  # (syscall, cause) -> failures, only those above 0

    @property
    def identity(self) -> tuple[int, int]:
        return (self.pid, self.starttime_ticks)


def cells(values) -> dict[tuple[str, str], int]:
    """The non-zero counters of a [syscall][cause] array."""
    n = len(CAUSES)
    return {(SYSCALLS[i // n], CAUSES[i % n]): v for i, v in enumerate(values) if v}


class EnomemCounter(Source):
    """enomem.bpf.c loaded and attached; the counts read and pruned from user space.

    *procfs* is where vm.max_map_count is read, *sysfs* where tracefs is looked
    for (``<sysfs>/kernel/tracing``: in a container, the host's /sys mount)."""

    def __init__(self, procfs: str = "/proc", sysfs: str = "/sys", btf_path: str = requirements.BTF_PATH,
                 library: str = libbpf.LIBRARY, max_processes: int = 4096):
        self.procfs = procfs
        requirements.check(btf_path, library)
        try:
            tracefs = tracepoints.find_tracefs(tracepoints.tracefs_candidates(sysfs))
        except tracepoints.TracefsUnavailable as exc:
            raise requirements.BpfUnavailable([str(exc)]) from None
        with open("/proc/self/status", "rb") as f:
            denied = requirements.syscall_denied(f.read(), tracepoints.NR_PERF_EVENT_OPEN, "perf_event_open")
        if denied:
            raise requirements.BpfUnavailable([denied])
        self._keys: dict[tuple[int, int], Key] = {}
        with self.opening(f"a kernel that loads and attaches {OBJECT}"):
            self._obj = BpfObject(libbpf.library(library), object_path(OBJECT), btf_path)
            self._obj.set_config(".rodata.config", _CONFIG.pack(
                resource.getpagesize().bit_length() - 1, resource.RLIMIT_DATA, resource.RLIMIT_AS, 0))
            self._obj.set_max_entries("failures", max_processes)
            self._obj.load()
            self._failures = self._obj.map_fd("failures")
            self.refresh_limits()
            for name in SYSCALLS:
                for phase in ("enter", "exit"):
                    fd = tracepoints.open_tracepoint(tracefs, "syscalls", f"sys_{phase}_{name}")
                    self._obj.attach_perf_event(f"{phase}_{name}", fd)

    def refresh_limits(self) -> int:
        """Write vm.max_map_count where the programs read it; returns it."""
        with open(os.path.join(self.procfs, "sys", "vm", "max_map_count"), "rb") as f:
            value = int(f.read())
        key, data = ctypes.c_uint32(0), ctypes.create_string_buffer(_LIMITS.pack(value, 0), _LIMITS.size)
        self._obj.update(self._obj.map_fd(".data.limits"), key, data)
        return value

    def read(self) -> list[ProcessFailures]:
        """Every process the map holds, live or exited (vm.max_map_count is refreshed first)."""
        self.refresh_limits()
        ns_per_tick = 1_000_000_000 // CLK_TCK
        out, keys = [], {}
        for key in self._obj.keys(self._failures, Key):
            value = Value()
            if not self._obj.lookup(self._failures, key, value):
                continue  # forgotten meanwhile
            p = ProcessFailures(key.tgid, key.start_boottime_ns // ns_per_tick,
                                value.comm.decode("utf-8", "replace"), cells(value.count))
            keys[p.identity] = key
            out.append(p)
        self._keys = keys
        return out

    def forget(self, identities: Iterable[tuple[int, int]]) -> int:
        """Drop the counts of exited processes, by the (pid, starttime_ticks) of the last read().

        Call it only for processes known to have exited after that read (absent
        from a task-iterator pass made after it): their counts can no longer
        move, so nothing is lost. Returns how many entries were removed."""
        removed = 0
        for identity in identities:
            key = self._keys.pop(identity, None)
            if key is not None and self._obj.delete(self._failures, key):
                removed += 1
        return removed

    def _totals(self) -> Totals:
        t = Totals()
        self._obj.lookup(self._obj.map_fd(".bss"), ctypes.c_uint32(0), t)
        return t

    def node_totals(self) -> dict[tuple[str, str], int]:
        """Failures on the node since open, by (syscall, cause); never reset."""
        return cells(self._totals().node)

    def overflows(self) -> dict[str, int]:
        """Failures counted per node only, or judged without their arguments (see records.h)."""
        return dict(zip(OVERFLOWS, self._totals().overflow))
