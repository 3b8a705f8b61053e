"""Parse one pass of the task iterator: fixed binary records, pure over bytes.

tasks.bpf.c writes one record per process, then an END record, laid out as
exporter/bpf/records.h says (host byte order, no padding). This module turns
them into ``ProcessRecord``s with procfs's units: bytes, clock ticks, +Inf for
an unlimited rlimit, None for a figure this kernel does not keep. Truncated or
foreign bytes raise ``RecordError`` naming the offset: a pass with no END was
cut short and is never taken as the whole node.
"""

import math
import struct
from typing import NamedTuple

VERSION = 1
KIND_PROCESS, KIND_END = 0x56505243, 0x56454E44

FEAT_RSS_PERCPU, FEAT_RSS_ATOMIC, FEAT_SEQ_COUNT, FEAT_SEQ_INT, FEAT_HUGETLB, FEAT_RSS_APPROX = (
    1 << 0, 1 << 1, 1 << 2, 1 << 3, 1 << 4, 1 << 5)
PROC_VIA_THREAD, PROC_NO_MM = 1 << 0, 1 << 1

# kind, tgid, start ns, comm, threads, euid, map_count, flags, total_vm, data_vm,
# rss_file, rss_anon, rss_shmem, swap_ents, hugetlb, rlim_data, rlim_as, mm_seq, via_tid
PROCESS = struct.Struct("=IIQ16sIIII9QII")
# kind, version, end_size, process_size, features, reader_tgid, reader_pidns_level, cpus_summed
END = struct.Struct("=8I")
RLIM_INFINITY = (1 << 64) - 1


class RecordError(ValueError):
    """The bytes are not a complete pass in the layout this module knows."""


class End(NamedTuple):
    """What the pass says about the kernel and its reader."""

    features: int
    reader_tgid: int  # the reader's pid in the root PID namespace
    reader_pidns_level: int  # 0: the reader is in the root (host) PID namespace
    cpus_summed: int  # CPUs whose per-CPU RSS deltas were added (0 before 6.2)

    @property
    def has_mm_seq(self) -> bool:
        return bool(self.features & (FEAT_SEQ_COUNT | FEAT_SEQ_INT))


class ProcessRecord(NamedTuple):
    """One process as the kernel keeps it; memory figures None with no address space found."""

    pid: int
    starttime_ticks: int  # /proc/PID/stat field 22: (pid, starttime_ticks) is its identity
    comm: str
    threads: int
    euid: int
    map_areas: int | None  # mm->map_count: lines of /proc/PID/maps less [vsyscall]
    virtual_bytes: int | None  # VIRT: VmSize
    resident_bytes: int | None  # RES: statm resident (RssFile + RssAnon + RssShmem)
    shared_bytes: int | None  # SHR as top shows it: statm shared (RssFile + RssShmem)
    data_bytes: int | None  # VmData
    hugetlb_bytes: int | None  # HugetlbPages; None where the kernel has no hugetlb
    swap_bytes: int | None  # VmSwap
    rlimit_data: float  # soft RLIMIT_DATA in bytes, +Inf when unlimited
    rlimit_as: float  # soft RLIMIT_AS
    mm_seq: int | None  # mm->mm_lock_seq; None where the kernel has none
    via_tid: int  # the live thread read for a leader that exited (0: the leader itself)

    @property
    def identity(self) -> tuple[int, int]:
        return (self.pid, self.starttime_ticks)


class Pass(NamedTuple):
    end: End
    processes: tuple[ProcessRecord, ...]


def _limit(v: int) -> float:
    return math.inf if v == RLIM_INFINITY else float(v)


# What a pass needs of every process, read in C from each record, the other fields skipped:
# tgid, start ns, comm, map_count, flags, total_vm, rss_file, rss_anon, rss_shmem, hugetlb.
BRIEF = struct.Struct("=4xIQ16s8xIIQ8xQQQ8xQ16x8x")
WHOLE = struct.Struct(f"{PROCESS.size}s")  # a record as it came, the key of the last pass's briefs


class Brief(NamedTuple):
    """A process as the pass ranks and sums it; record_of() gives its whole record."""

    pid: int
    starttime_ticks: int
    comm: str
    map_areas: int
    virtual_bytes: int
    resident_bytes: int | None
    hugetlb_bytes: int | None
    raw: bytes  # the record as the kernel wrote it

    @property
    def identity(self) -> tuple[int, int]:
        return (self.pid, self.starttime_ticks)


NO_MM = object()  # what a record without an address space (a real zombie) briefs to: nothing


class Briefs(NamedTuple):
    end: End
    processes: list[Brief]  # every process with an address space
    known: dict  # each record's bytes -> its Brief (or NO_MM), for the next pass to reuse
    units: tuple[int, int] = (0, 0)  # (page size, clock ticks) the briefs were made with


def _checked(data: bytes) -> tuple[End, memoryview]:
    """The END of a whole pass and the records before it, or RecordError."""
    if len(data) < END.size:
        raise RecordError(f"{len(data)} bytes: too short for the END record")
    stop = len(data) - END.size
    kind, version, esize, psize, features, tgid, level, cpus = END.unpack_from(data, stop)
    if kind != KIND_END:
        raise RecordError(f"offset {stop}: no END record (kind {kind:#x}): the pass was cut short")
    if (version, esize, psize) != (VERSION, END.size, PROCESS.size):
        raise RecordError(f"END: version {version}, sizes {esize}/{psize}; this reader knows version {VERSION}, "
                          f"sizes {END.size}/{PROCESS.size} (object and parser differ)")
    if stop % PROCESS.size:
        raise RecordError(f"{stop} bytes of process records: not a multiple of {PROCESS.size}")
    body = memoryview(data)[:stop]
    kinds = body.cast("I")[::PROCESS.size // 4].tolist()  # every record's first field, read in C
    if set(kinds) - {KIND_PROCESS}:
        i = next(i for i, kind in enumerate(kinds) if kind != KIND_PROCESS)
        raise RecordError(f"offset {i * PROCESS.size}: kind {kinds[i]:#x}, expected a process record")
    return End(features, tgid, level, cpus), body


def parse(data: bytes, page_size: int, clk_tck: int) -> Pass:
    """Parse a whole pass (the concatenated reads of one iterator instance)."""
    end, body = _checked(data)
    return Pass(end, tuple(_records(body, end, page_size, 1_000_000_000 // clk_tck)))


def parse_brief(data: bytes, page_size: int, clk_tck: int, last: Briefs | None = None) -> Briefs:
    """A whole pass as the collection pass reads it: of each process with an address space
    only what it ranks and sums (a third of the fields); the rest stays in its bytes.

    A record byte for byte the same as one of *last* (the pass before, on the same
    kernel) is that process unchanged: the same identity, comm, counters and mm_lock_seq.
    It gets the same Brief, not unpacked again (given the same page size and clock ticks).
    Most processes of a node are quiet between two scrapes; on 10,000 this is most of the
    pass's own Python."""
    end, body = _checked(data)
    has_rss = bool(end.features & (FEAT_RSS_PERCPU | FEAT_RSS_ATOMIC | FEAT_RSS_APPROX))
    has_huge = bool(end.features & FEAT_HUGETLB)
    npt, page, new, brief, unpack = 1_000_000_000 // clk_tck, page_size, tuple.__new__, Brief, BRIEF.unpack
    same = last is not None and last.end == end and last.units == (page_size, clk_tck)
    seen = last.known if same else {}
    comms: dict[bytes, str] = {}
    known: dict = {}
    out = []
    for (raw,) in WHOLE.iter_unpack(body):
        b = seen.get(raw)
        if b is None:
            pid, start_ns, comm, map_count, flags, total_vm, rss_file, rss_anon, rss_shmem, huge = unpack(raw)
            if flags & PROC_NO_MM:
                b = NO_MM
            else:
                name = comms.get(comm)
                if name is None:
                    name = comms[comm] = comm.split(b"\0", 1)[0].decode("utf-8", "replace")
                b = new(brief, (pid, start_ns // npt, name, map_count, total_vm * page,
                                (rss_file + rss_anon + rss_shmem) * page if has_rss else None,
                                huge * page if has_huge else None, raw))
        known[raw] = b
        if b is not NO_MM:
            out.append(b)
    return Briefs(end, out, known, (page_size, clk_tck))


def record_of(end: End, brief: Brief, page_size: int, clk_tck: int) -> ProcessRecord:
    """The whole record of a process of a pass that ended with *end*."""
    return _records(memoryview(brief.raw), end, page_size, 1_000_000_000 // clk_tck)[0]


def _records(body: memoryview, end: End, page: int, ns_per_tick: int) -> list[ProcessRecord]:
    """Runs once per process per scrape: kept lean (one tuple built straight into
    a ProcessRecord, each distinct comm decoded once)."""
    features = end.features
    has_rss = bool(features & (FEAT_RSS_PERCPU | FEAT_RSS_ATOMIC | FEAT_RSS_APPROX))
    has_huge = bool(features & FEAT_HUGETLB)
    has_seq = end.has_mm_seq
    inf, unlimited, new, record = math.inf, RLIM_INFINITY, tuple.__new__, ProcessRecord
    comms: dict[bytes, str] = {}
    out = []
    for (_, pid, start_ns, comm, threads, euid, map_count, flags, total_vm, data_vm, rss_file, rss_anon,
         rss_shmem, swap, huge, rlim_data, rlim_as, seq, via) in PROCESS.iter_unpack(body):
        name = comms.get(comm)
        if name is None:
            name = comms[comm] = comm.split(b"\0", 1)[0].decode("utf-8", "replace")
        rlim_data = inf if rlim_data == unlimited else float(rlim_data)
        rlim_as = inf if rlim_as == unlimited else float(rlim_as)
        if flags & PROC_NO_MM:
            out.append(new(record, (pid, start_ns // ns_per_tick, name, threads, euid, None, None, None, None, None,
                                    None, None, rlim_data, rlim_as, None, 0)))
            continue
        shared = (rss_file + rss_shmem) * page
        out.append(new(record, (
            pid, start_ns // ns_per_tick, name, threads, euid, map_count, total_vm * page,
            shared + rss_anon * page if has_rss else None, shared if has_rss else None, data_vm * page,
            huge * page if has_huge else None, swap * page if has_rss else None, rlim_data, rlim_as,
            seq if has_seq else None, via if flags & PROC_VIA_THREAD else 0)))
    return out
