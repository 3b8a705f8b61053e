"""One pass over the node: /proc and /sys in, an immutable Snapshot out.

Reads, per process: stat (identity, comm, kernel thread?), status (memory, uid)
and maps (one streaming read, the dominant cost). Only the processes that get
per-process series need maps' breakdown (kinds, top object) and limits; which
ones those are is known only at the end of the pass, so the pass predicts them
from the previous collection (the biggest processes stay the biggest) and
parses their maps in the same read. A process that newly enters the exported
set has its maps read a second time; in steady state none does. Kernel threads and zombies
are skipped (they have no address space). A process that vanishes or cannot be
read becomes a counted outcome, never an exception: one misbehaving process
never fails a scrape.
"""

import logging
import os
import threading
import time

from exporter.procfs import DeadlineExceeded, Denied, ParseError, ProcfsError, Vanished
from exporter.procfs import cmdline as cmdline_file
from exporter.procfs.cgroup import read_cgroup
from exporter.procfs.hugepages import read_numa_pools, read_pools
from exporter.procfs.limits import read_limits
from exporter.detail_cache import DetailCache
from exporter.procfs.maps import Classifier, read_map_count
from exporter.procfs.mountinfo import read_hugetlbfs_mounts
from exporter.procfs.paths import Roots, list_pids
from exporter.procfs.stat import CLK_TCK, read_boot_time, read_stat
from exporter.procfs.status import read_status
from exporter.procfs.sysctl import read_max_map_count
from exporter.selection import aggregate_groups, choose_exported
from exporter.snapshot import READ_ERROR_REASONS, ProcessSample, Snapshot
from exporter.targets import Config, Matcher, ProcessFacts
from exporter.targets.match import MISSING

log = logging.getLogger(__name__)


def reason_of(exc: ProcfsError) -> str:
    if isinstance(exc, Vanished):
        return "vanished"
    if isinstance(exc, Denied):
        return "permission"
    if isinstance(exc, ParseError):
        return "parse"
    return "io"


class Collector:
    """Owns what lives across collections: the match cache and error totals.

    ``collect()`` may be called from several threads; concurrent callers share
    one in-flight pass and all get its Snapshot.
    """

    def __init__(self, roots: Roots, config: Config, timeout: float | None = None):
        self.roots = roots
        self.timeout = timeout
        self._matcher = Matcher(config)
        self._errors_total = dict.fromkeys(READ_ERROR_REASONS, 0)
        self._lock = threading.Lock()
        self._inflight: threading.Event | None = None
        self._last: Snapshot | None = None
        self._sequence = 0
        self._detailed: set[tuple[int, int]] = set()  # (pid, start) exported last time
        self._details = DetailCache()
        # The CLI views want every watched process in the Snapshot, each with its
        # breakdown; the daemon keeps only the exported ones (memory on big nodes).
        self.detail_all = False

    @property
    def config(self) -> Config:
        return self._matcher.config

    def set_config(self, config: Config) -> None:
        """Swap the targets config; the next pass uses it (match cache starts afresh)."""
        self._matcher = Matcher(config)

    def collect(self) -> Snapshot:
        with self._lock:
            event = self._inflight
            leader = event is None
            if leader:
                event = self._inflight = threading.Event()
        if not leader:
            event.wait()
            return self._last
        try:
            self._last = self._collect()
        finally:
            with self._lock:
                self._inflight = None
            event.set()
        return self._last

    def _collect(self) -> Snapshot:
        start_wall, start = time.time(), time.monotonic()
        deadline = start + self.timeout if self.timeout else None
        roots, matcher = self.roots, self._matcher
        errors = dict.fromkeys(READ_ERROR_REASONS, 0)
        boot = _node_fact(read_boot_time, roots, 0.0)
        classifier = Classifier(_node_fact(read_hugetlbfs_mounts, roots, []))
        samples: list[ProcessSample] = []
        live = set()
        scanned, complete = 0, True
        for pid in list_pids(roots):
            if deadline and time.monotonic() > deadline:
                complete = False
                break
            try:
                stat = read_stat(roots, pid)
                if stat.is_kernel_thread:
                    continue
                where = pid  # the files to read: the process's, or one of its live threads'
                if stat.is_zombie:
                    where = live_thread(roots, pid, stat)
                    if where is None:
                        continue  # a real zombie: no address space left
                scanned += 1
                status = read_status(roots, where)
                key = (pid, stat.starttime_ticks, stat.comm)
                live.add(key)
                group = matcher.cached(key)
                if group is MISSING:  # a process not seen before: match it (may read its cmdline)
                    group = matcher.group_of(ProcessFacts(pid, stat.starttime_ticks, stat.comm, status.uid,
                                                          lambda pid=pid: cmdline_file.read_cmdline(roots, pid)))
                if group is None:
                    continue
                maps = None
                try:
                    identity = (pid, stat.starttime_ticks)
                    if self.detail_all or identity in self._detailed:
                        maps = self._details.read(roots, where, identity, classifier, deadline)
                    else:
                        maps = read_map_count(roots, where, deadline)
                except Denied:
                    errors["permission"] += 1  # still counted in its group, without map areas
                if maps is not None and maps.areas == 0 and status.virtual:
                    raise Vanished(f"{pid}: maps empty while status has memory (exiting)")
            except DeadlineExceeded:
                complete = False  # this process is left out: a partial count would understate it
                break
            except ProcfsError as exc:
                errors[reason_of(exc)] += 1
                log.debug("pid %d: %s", pid, exc)
                continue
            samples.append(ProcessSample(
                pid=pid, starttime_ticks=stat.starttime_ticks,
                start_time_seconds=boot + stat.starttime_ticks / CLK_TCK,
                comm=stat.comm, group=group, status=status, maps=maps,
                via="" if where == pid else where,
            ))
        matcher.retain(live)
        max_map_count = _node_fact(read_max_map_count, roots, None)
        config = matcher.config
        samples = choose_exported(samples, config.top_n, config.min_limit_ratio, max_map_count)
        deepen = self._deepen
        samples = [deepen(s, errors, classifier, deadline) if s.exported else s for s in samples]
        complete = complete and not (deadline and time.monotonic() > deadline)
        self._detailed = {s.identity for s in samples if s.exported}
        self._details.end_collection()
        for reason, n in errors.items():
            self._errors_total[reason] += n
        self._sequence += 1
        return Snapshot(
            timestamp=start_wall,
            duration_seconds=time.monotonic() - start,
            max_map_count=max_map_count,
            pools=tuple(_node_fact(read_pools, roots, [])),
            numa_pools=tuple(_node_fact(read_numa_pools, roots, [])),
            processes=tuple(samples if self.detail_all else (s for s in samples if s.exported)),
            groups=aggregate_groups(samples),
            watched=len(samples),
            scanned=scanned,
            read_errors_total=dict(self._errors_total),
            read_errors=errors,
            complete=complete,
            sequence=self._sequence,
        )

    def _deepen(self, sample: ProcessSample, errors: dict[str, int], classifier,
                deadline: float | None) -> ProcessSample:
        """Per-process extras (breakdown, limits, pod identity), only for exported processes."""
        try:
            if not sample.maps.detailed:  # newly exported: not predicted, read maps again
                maps = self._details.read(self.roots, sample.via or sample.pid, sample.identity, classifier,
                                          deadline)
                if maps.areas == 0 and sample.status.virtual:
                    raise Vanished(f"{sample.pid}: maps empty on the second read (exited)")
                sample = sample._replace(maps=maps)
            sample = sample._replace(limits=read_limits(self.roots, sample.pid))
            ident = read_cgroup(self.roots, sample.pid)
            return sample._replace(container_id=ident.container_id, pod_uid=ident.pod_uid)
        except DeadlineExceeded:
            return sample  # exported with its count; the pass is marked incomplete
        except ProcfsError as exc:
            # Exported with what we have: the count was read; kinds and limits are left out.
            errors[reason_of(exc)] += 1
            return sample


def live_thread(roots: Roots, pid: int, stat) -> str | None:
    """For a zombie thread-group leader, "PID/task/TID" of a thread still alive.

    When main() calls pthread_exit while other threads run, /proc/PID/stat says
    Z and /proc/PID/maps and status read empty, yet the process and all its map
    areas live on: every thread shares the one address space, so any live
    thread's maps and status are the process's.
    """
    if stat.num_threads <= 1:
        return None
    try:
        tids = [t for t in os.listdir(roots.pid(pid, "task")) if t.isdigit() and int(t) != pid]
    except OSError:
        return None
    return f"{pid}/task/{tids[0]}" if tids else None


def _node_fact(reader, roots: Roots, default):
    """A node-level file: its absence (no hugetlb, old kernel) is not a process error."""
    try:
        return reader(roots)
    except (ProcfsError, OSError) as exc:
        log.debug("%s: %s", reader.__name__, exc)
        return default
