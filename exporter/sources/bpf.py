"""The BPF source: every process's figures from the kernel's own counters, in one pass.

A task iterator (exporter/bpf/tasks.py) gives, per process, what the procfs
source reads from stat, statm, status and limits, and the count of map areas
(mm->map_count), without the kernel printing one line of maps. Only what needs
the text of maps still comes from /proc: the breakdown by kind and object of
the exported processes, re-read only when the kernel says their mappings changed
(mm->mm_lock_seq moves with every write lock of the mmap lock), and their pod
identity (/proc/PID/cgroup, once per process). A group rule that needs a
command line still reads /proc/PID/cmdline.

ENOMEM as it happens (exporter/bpf/enomem.py): per live process, the failures
of mmap, munmap, mprotect, mremap, brk and shmat by cause; the counts of
processes that exited since the last pass are handed over once
(retired_failures) and then dropped from the kernel's bounded map.

Needs CAP_BPF and CAP_PERFMON (or CAP_SYS_ADMIN), BTF, libbpf.so.1, a seccomp
profile that lets bpf() and perf_event_open() through, tracefs and the host PID
namespace: opening raises BpfUnavailable naming every one that is missing.
"""

from types import MappingProxyType
from typing import Iterator

from exporter.bpf import records
from exporter.bpf.enomem import CAUSES, SYSCALLS, EnomemCounter, ProcessFailures
from exporter.bpf.tasks import CLK_TCK, PAGE_SIZE, TaskIterator
from exporter.node import NodeFacts
from exporter.procfs import ProcfsError
from exporter.procfs.limits import Limits
from exporter.procfs.maps import Classifier, MapsSummary, read_maps
from exporter.procfs.paths import Roots
from exporter.snapshot import ProcessSample
from exporter.sources.procfs import ProcfsSource


NO_FAILURES = MappingProxyType({})  # the ENOMEM counts of a process that has none (read-only, shared)


class BpfSource(ProcfsSource):
    name = "bpf"
    counts_enomem = True

    def __init__(self, roots: Roots, btf_path: str | None = None):
        super().__init__(roots)
        kwargs = {"btf_path": btf_path} if btf_path else {}
        self._tasks = TaskIterator(**kwargs)
        try:
            self._enomem = EnomemCounter(procfs=roots.procfs, sysfs=roots.sysfs, **kwargs)
        except BaseException:
            self._tasks.close()
            raise
        self._pass: records.Briefs | None = None
        self._counts: dict = {}
        self._boot: float | None = None
        self._retired: list[ProcessFailures] = []
        self.node_failures: dict[tuple[str, str], int] = {}
        self.overflows: dict[str, int] = {}

    def scan(self, node: NodeFacts, deadline: float | None) -> Iterator[records.Brief]:
        # Failures first, then the pass: a process absent from the pass exited after its
        # failures were read, so they are final and can be handed over and dropped.
        failures = self._enomem.read()
        p = records.parse_brief(self._tasks.read_raw(), PAGE_SIZE, CLK_TCK, self._pass)
        counts: dict = {}
        self._retired = []
        if failures:  # rare: only then is the set of live identities worth building
            live = {(b.pid, b.starttime_ticks) for b in p.processes}
            counts = {f.identity: f.counts for f in failures if f.identity in live}
            self._retired = [f for f in failures if f.identity not in live]
        self._enomem.forget(f.identity for f in self._retired)
        totals = self._enomem.node_totals()  # every pair, from 0: a first failure is an increase
        self.node_failures = {(s, c): totals.get((s, c), 0) for s in SYSCALLS for c in CAUSES}
        self.overflows = self._enomem.overflows()
        self._pass, self._counts, self._boot = p, counts, node.boot_time
        # Briefs of the records: the policy reads a brief's pid, starttime_ticks, comm,
        # map_areas, virtual_bytes, resident_bytes and hugetlb_bytes as a sample's, and only
        # the exported ones become samples (sample()), from their whole records. A process
        # without an address space (a real zombie) has no brief.
        return iter(p.processes)

    def record(self, brief: records.Brief) -> records.ProcessRecord:
        return records.record_of(self._pass.end, brief, PAGE_SIZE, CLK_TCK)

    def sample(self, brief: records.Brief) -> ProcessSample:
        """The whole sample of a process: VmData, the limits, the ENOMEM counts with it."""
        rec = self.record(brief)
        boot, ticks = self._boot, rec.starttime_ticks
        return ProcessSample(
            rec.pid, ticks, boot + ticks / CLK_TCK if boot is not None else None, rec.comm, rec.threads,
            rec.virtual_bytes, rec.resident_bytes, rec.shared_bytes, rec.hugetlb_bytes, map_areas=rec.map_areas,
            data_bytes=rec.data_bytes, limits=Limits(rec.rlimit_data, rec.rlimit_as), tid=rec.via_tid or None,
            source_state=rec, enomem=self._counts.get(rec.identity, NO_FAILURES))

    def live_failures(self) -> dict[tuple[int, int], dict]:
        """ENOMEM counts of the live processes that have failed, by identity."""
        return self._counts

    def _mark(self, rec: records.ProcessRecord) -> int | None:
        """The mark under which a breakdown stays valid: mm_lock_seq, unless the kernel has
        none or a writer holds the lock right now (an odd seqcount): then None, re-read."""
        seq = rec.mm_seq
        if seq is None or (seq & 1 and self._pass.end.features & records.FEAT_SEQ_COUNT):
            return None
        return seq

    def uid(self, brief: records.Brief) -> int | None:
        """The effective uid, from the pass (asked only by a {{.Username}} template)."""
        return self.record(brief).euid

    def map_areas(self, brief: records.Brief, breakdown: bool, classifier: Classifier,
                  deadline: float | None) -> tuple[int, MapsSummary | None]:
        """The kernel's count; with *breakdown*, maps' summary, re-read only when the
        mappings changed since it was made."""
        return brief.map_areas, self._breakdown(self.record(brief), classifier) if breakdown else None

    def _breakdown(self, rec: records.ProcessRecord, classifier: Classifier) -> MapsSummary:
        mark = self._mark(rec)
        summary = self.breakdowns.reuse(rec.identity, mark, classifier)
        if summary is None:
            summary = read_maps(self.roots, rec.pid, classifier, rec.via_tid or None)
            self.breakdowns.keep(rec.identity, mark, classifier, summary)
        return summary

    def deepen(self, sample: ProcessSample, classifier: Classifier,
               deadline: float | None) -> tuple[ProcessSample, ProcfsError | None]:
        """VmData and the limits came with the pass; the breakdown and the pod remain."""
        try:
            if sample.breakdown is None:
                sample = sample._replace(breakdown=self._breakdown(sample.source_state, classifier))
            return self.with_pod(sample), None
        except ProcfsError as exc:
            return sample, exc

    def retired_failures(self) -> list[ProcessFailures]:
        """ENOMEM counts of the processes that exited since the last pass, once each."""
        return self._retired

    def close(self) -> None:
        """Detach the tracepoints and free the iterator: no program, map, link or fd stays."""
        try:
            self._enomem.close()
        finally:
            self._tasks.close()
