"""The procfs source: per-process facts from /proc, with the least the kernel must print.

For every process, on every pass:

- ``/proc/PID/stat``: identity (pid, start time), comm, threads, and whether it
  is a kernel thread (skipped) or a zombie (skipped, unless only its leader
  thread exited: then a live thread's files are read, below). Read again only
  when the process may have changed since the last pass (a new /proc inode,
  other statm bytes, or its turn every 5 passes: exporter/sources/known.py);
- ``/proc/PID/statm``: VIRT, RES and SHR exactly as top shows them (top reads
  statm), at about half the kernel's cost of status. Not stat's vsize and rss:
  that rss is the approximate per-CPU read of the RSS counters (get_mm_rss), off
  by hundreds of KB on this machine's 6.18, where statm sums them exactly;
- ``/proc/PID/status`` only while a hugepage pool has pages in use (otherwise no
  process can hold any, and HugetlbPages is 0 for all);
- ``/proc/PID/maps``: the count of map areas, for watched processes (map_areas).

Only for exported processes (deepen): maps' breakdown by kind and object,
``status`` (VmData, HugetlbPages), ``limits`` and, once per process lifetime,
``cgroup``. Nothing here decides who is watched or exported: that is
exporter/policy.py's job.
"""

import time
from typing import Iterator

from exporter.node import NodeFacts
from exporter.procfs import DeadlineExceeded, ProcfsError, Vanished
from exporter.procfs.cgroup import ContainerIdentity, read_cgroup
from exporter.procfs.cmdline import read_cmdline
from exporter.procfs.limits import read_limits
from exporter.procfs.maps import Classifier, MapsSummary, count_map_areas
from exporter.procfs.paths import Roots, list_pid_inodes, list_tids
from exporter.procfs.stat import CLK_TCK, ProcStat, read_stat
from exporter.procfs.statm import parse_statm, read_statm_bytes
from exporter.procfs.status import read_status
from exporter.snapshot import ProcessSample
from exporter.sources.breakdown import BreakdownCache
from exporter.sources.known import KnownProcesses


def live_thread(roots: Roots, pid: int, stat: ProcStat) -> int | None:
    """For a zombie thread-group leader, a thread of it still alive, or None.

    When main() calls pthread_exit while other threads run, /proc/PID/stat says
    Z and /proc/PID/maps and statm read empty, yet the process and all its map
    areas live on: every thread shares the one address space, so any live
    thread's maps and statm are the process's.
    """
    if stat.num_threads <= 1:
        return None
    return next((tid for tid in list_tids(roots, pid) if tid != pid), None)


class ProcfsSource:
    name = "procfs"
    counts_enomem = False  # procfs cannot see a failing syscall

    def __init__(self, roots: Roots):
        self.roots = roots
        self.breakdowns = BreakdownCache()
        self.known = KnownProcesses()
        # Pod identity per (pid, start): a process does not change container or pod, so
        # /proc/PID/cgroup is read once in its life, not every scrape.
        self._pods: dict[tuple[int, int], ContainerIdentity] = {}
        self._pods_seen: dict[tuple[int, int], ContainerIdentity] = {}

    def scan(self, node: NodeFacts, deadline: float | None) -> Iterator[ProcessSample | ProcfsError]:
        """Every user-space process: a sample, or the error that stopped reading it.

        stat is read only for processes the last pass did not see unchanged
        (exporter/sources/known.py); statm is read for every one, and parsed only
        when it changed. Raises DeadlineExceeded between processes once *deadline*
        has passed.
        """
        roots, known = self.roots, self.known
        boot = node.boot_time
        hugetlb_in_use = node.hugetlb_in_use
        monotonic = time.monotonic
        for pid, inode in list_pid_inodes(roots):
            if deadline is not None and monotonic() > deadline:
                raise DeadlineExceeded(f"after {roots.procfs}/{pid}")
            try:
                last = known.lookup(pid, inode)
                raw = None
                if last is not None:
                    if not last.statm:  # a kernel thread: no address space
                        known.keep(pid, last)
                        continue
                    raw = read_statm_bytes(roots, pid)
                    if raw == last.statm:
                        known.keep(pid, last)
                        stat, tid, (virtual, resident, shared) = last.stat, None, last.memory
                    else:
                        last = None
                if last is None:
                    stat = read_stat(roots, pid)
                    if stat.is_kernel_thread:
                        known.remember(pid, inode, b"", stat, (0, 0, 0))
                        continue
                    tid = None
                    if stat.is_zombie:
                        tid = live_thread(roots, pid, stat)
                        if tid is None:
                            continue  # a real zombie: its address space is gone
                        raw = None  # the leader's statm is all zeros: the live thread's is the process's
                    if raw is None:
                        raw = read_statm_bytes(roots, pid, tid)
                    virtual, resident, shared, _, _ = parse_statm(raw)
                    if tid is None:
                        known.remember(pid, inode, raw, stat, (virtual, resident, shared))
                hugetlb = read_status(roots, pid, tid).hugetlb if hugetlb_in_use else 0
            except ProcfsError as exc:
                yield exc
                continue
            ticks = stat.starttime_ticks
            yield ProcessSample(pid, ticks, boot + ticks / CLK_TCK if boot is not None else None, stat.comm,
                                stat.num_threads, virtual, resident, shared, hugetlb, tid=tid)

    def sample(self, found: ProcessSample) -> ProcessSample:
        """What scan() yields is already a sample."""
        return found

    def live_failures(self) -> dict:
        """ENOMEM counts of live processes: procfs sees none."""
        return {}

    def uid(self, sample: ProcessSample) -> int | None:
        """The effective uid (status), read only when a group template names the user."""
        return read_status(self.roots, sample.pid, sample.tid).uid

    def argv(self, sample: ProcessSample) -> list[str]:
        """The command line, read only when a group rule matches on it; never exported."""
        return read_cmdline(self.roots, sample.pid)

    def map_areas(self, sample: ProcessSample, breakdown: bool, classifier: Classifier,
                  deadline: float | None) -> tuple[int, MapsSummary | None]:
        """The count of map areas, and with *breakdown* the summary by kind and object."""
        if breakdown:
            summary = self.breakdowns.read(self.roots, sample.pid, sample.tid, sample.identity, classifier,
                                           deadline)
            areas = summary.areas
        else:
            areas, summary = count_map_areas(self.roots, sample.pid, sample.tid, deadline), None
        if areas == 0 and sample.virtual_bytes:
            raise Vanished(f"{sample.pid}: maps empty while statm has memory (exiting)")
        return areas, summary

    def deepen(self, sample: ProcessSample, classifier: Classifier,
               deadline: float | None) -> tuple[ProcessSample, ProcfsError | None]:
        """What only exported processes get: the breakdown (a second read of maps when
        the pass did not predict it), VmData and HugetlbPages, limits, pod identity.

        Returns the sample with what could be read, and the error that stopped the
        rest (the count is kept: kinds or limits are then left out).
        """
        roots, pid = self.roots, sample.pid
        try:
            if sample.breakdown is None:
                areas, breakdown = self.map_areas(sample, True, classifier, deadline)
                sample = sample._replace(map_areas=areas, breakdown=breakdown)
            # One step at a time: what was read before a failure is kept.
            status = read_status(roots, pid, sample.tid)
            # Threads from status, this pass's: stat may be the last pass's (sources/known.py),
            # and a thread can start on a cached stack without any change of memory.
            threads = status.threads
            sample = sample._replace(data_bytes=status.data, hugetlb_bytes=status.hugetlb,
                                     threads=sample.threads if threads is None else threads)
            sample = sample._replace(limits=read_limits(roots, pid))
            return self.with_pod(sample), None
        except ProcfsError as exc:  # DeadlineExceeded included: the pass sees it is late
            return sample, exc

    def with_pod(self, sample: ProcessSample) -> ProcessSample:
        """The sample with its container and pod, from /proc/PID/cgroup once in its life."""
        ident = self._pods.get(sample.identity)
        if ident is None:
            ident = read_cgroup(self.roots, sample.pid)
        self._pods_seen[sample.identity] = ident
        return sample._replace(container_id=ident.container_id, pod_uid=ident.pod_uid)

    def retired_failures(self) -> list:
        """ENOMEM counts of processes that exited since the last pass: procfs sees none."""
        return []

    def end_pass(self) -> None:
        self.breakdowns.end_pass()
        self.known.end_pass()
        self._pods, self._pods_seen = self._pods_seen, {}

    def close(self) -> None:
        """Nothing held between passes but caches (breakdowns, stat, pod identity)."""
