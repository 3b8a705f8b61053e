"""Every process's figures in one BPF task-iterator pass (tasks.bpf.c).

    with TaskIterator() as it:        # raises BpfUnavailable naming what is missing
        p = it.read()                 # a records.Pass: the processes, and what END says
        changed = MappingChanges()
        for rec in p.processes: ...   # changed.update(p) says whose maps to re-read

One pass costs the kernel a walk of its task list (task_struct, mm_struct,
signal_struct fields; no page-table walk, no mmap lock) and this process one
read() per 8 pages of records: no text is generated or parsed. Open once and
read many times; close() (or the with block) detaches and frees everything.
"""

import os
import resource
import struct
from importlib import resources

from exporter.bpf import libbpf, records, requirements
from exporter.bpf.bpfobject import BpfObject, Source

OBJECT = "tasks.bpf.o"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_SIZE = resource.getpagesize()
_CONFIG = struct.Struct("=4I")  # struct vma_tasks_config (records.h)


def object_path(name: str) -> str:
    """A committed object shipped as package data next to this module."""
    return str(resources.files("exporter.bpf").joinpath(name))


class TaskIterator(Source):
    """The loaded iterator; read() runs one pass over every task of the node."""

    def __init__(self, btf_path: str = requirements.BTF_PATH, library: str = libbpf.LIBRARY):
        requirements.check(btf_path, library)
        lib = libbpf.library(library)
        with self.opening(f"a kernel that loads {OBJECT}"):
            self._obj = BpfObject(lib, object_path(OBJECT), btf_path)
            self._obj.set_config(".rodata.config", _CONFIG.pack(
                max(1, lib.libbpf_num_possible_cpus()), resource.RLIMIT_DATA, resource.RLIMIT_AS, 0))
            self._obj.load()
            self._link_fd = self._obj.attach_iter("vma_tasks")
            first = self.read()
            requirements.check_pid_namespace(first.end.reader_pidns_level, first.end.reader_tgid)

    def read_raw(self) -> bytes:
        """The bytes of one pass: a fresh iterator instance read to its end."""
        fd = self._obj.iter_create(self._link_fd)
        try:
            chunks = []
            while True:
                chunk = os.read(fd, 1 << 16)  # the kernel fills at most 8 pages per read
                if not chunk:
                    return b"".join(chunks)
                chunks.append(chunk)
        finally:
            os.close(fd)

    def read(self) -> records.Pass:
        return records.parse(self.read_raw(), PAGE_SIZE, CLK_TCK)


class MappingChanges:
    """Which processes' mappings changed since the previous pass, by mm->mm_lock_seq.

    Every change to a process's map areas (mmap, munmap, mprotect, mremap, brk,
    stack growth) is made under its mmap write lock, and taking or dropping that
    lock moves mm_lock_seq (6.4+ with CONFIG_PER_VMA_LOCK; a seqcount since 6.14,
    odd while a writer holds it). So an unchanged value means unchanged areas; a
    changed one may also come from a write lock that changed nothing (khugepaged,
    prctl), which costs one needless re-read. One thing maps shows moves without
    the lock: " (deleted)" after a backing file is unlinked, so a breakdown kept
    by this test can miss a deletion until the next mapping change. Where the
    kernel has no sequence, every process counts as changed. Only the latest pass is remembered: the
    state is bounded by the live processes.
    """

    def __init__(self):
        self._last: dict[tuple[int, int], int] = {}

    def update(self, p: records.Pass) -> set[tuple[int, int]]:
        """The identities whose maps must be re-read after pass *p* (and remember *p*)."""
        odd_is_busy = bool(p.end.features & records.FEAT_SEQ_COUNT)
        last, now, changed = self._last, {}, set()
        for rec in p.processes:
            seq = rec.mm_seq
            if seq is None or (odd_is_busy and seq & 1) or last.get(rec.identity) != seq:
                changed.add(rec.identity)
            if seq is not None and not (odd_is_busy and seq & 1):
                now[rec.identity] = seq
        self._last = now
        return changed
