"""The collector: one pass over the node per scrape, shared by concurrent scrapes.

Owns what lives across passes: the source of per-process facts (exporter/sources),
the node files' reader (exporter/node.py), the policy with its match cache and
prediction (exporter/policy.py) and the cumulative error counts. A pass is
node files -> policy over the source -> Snapshot (exporter/assemble.py).
"""

import threading
import time

from exporter.assemble import build_snapshot
from exporter.enomem_ledger import EnomemLedger
from exporter.node import NodeReader
from exporter.policy import Policy
from exporter.procfs.paths import Roots
from exporter.singleflight import SingleFlight
from exporter.snapshot import READ_ERROR_REASONS, Snapshot
from exporter.sources.procfs import ProcfsSource
from exporter.targets import Config, Matcher, ProcessFacts


class Collector:
    """``collect()`` may be called from several threads; concurrent callers share
    one pass in flight and all get its Snapshot (or its exception)."""

    def __init__(self, roots: Roots, config: Config, timeout: float | None = None, source=None):
        self.roots = roots
        self.timeout = timeout
        self.source = source if source is not None else ProcfsSource(roots)
        self._node = NodeReader(roots)
        self._policy = Policy(Matcher(config))
        self._errors_total = dict.fromkeys(READ_ERROR_REASONS, 0)
        self._ledger = EnomemLedger()
        self._sequence = 0
        self._flight: SingleFlight[Snapshot] = SingleFlight()
        self._pass_lock = threading.Lock()  # passes never overlap: they share caches and totals

    @property
    def config(self) -> Config:
        return self._policy.matcher.config

    def set_config(self, config: Config) -> None:
        """Swap the targets config; the next pass uses it (match cache starts afresh)."""
        self._policy.matcher = Matcher(config)

    def collect(self, everyone: bool = False) -> Snapshot:
        """A Snapshot of the exported processes (the daemon's), or with *everyone* of
        every watched process, each with its breakdown (the CLI views)."""
        return self._flight.do(lambda: self._pass(everyone), key=everyone)

    def waiting(self, everyone: bool = False) -> int:
        """Callers waiting for the pass in flight (tests use it to line up concurrent scrapes)."""
        return self._flight.waiters(everyone)

    def _pass(self, everyone: bool) -> Snapshot:
        with self._pass_lock:
            start_wall, start = time.time(), time.monotonic()
            deadline = start + self.timeout if self.timeout else None
            node = self._node.read()
            source = self.source
            result = self._policy.run(source, node, deadline, everyone)
            for reason, n in result.errors.items():
                self._errors_total[reason] += n
            enomem = None
            if source.counts_enomem:
                enomem = self._ledger.record(result.failing, source.retired_failures(), self._group_of_gone)
            self._sequence += 1
            return build_snapshot(result, node, everyone=everyone, timestamp=start_wall,
                                  duration=time.monotonic() - start, errors_total=self._errors_total,
                                  sequence=self._sequence, source=source, group_enomem=enomem)

    def _group_of_gone(self, failures) -> str | None:
        """The group of a process that failed and exited before this pass: the one the last
        pass matched it to, or (started and gone between two passes) its comm's alone: its
        command line and uid went with it."""
        matcher = self._policy.matcher
        group = matcher.gone.get(failures.identity)
        if group is not None:
            return group
        return matcher.group_of(ProcessFacts(failures.pid, failures.starttime_ticks, failures.comm,
                                             lambda: None, lambda: []))

    def close(self) -> None:
        self.source.close()
