"""The pass's policy: who is watched, who is exported, who gets the breakdown.

Knows no file and no source: a source (exporter/sources) gives each process's
facts; this decides what to ask it for.

- watched: the processes the targets config matches (exporter/targets), decided
  once per (pid, start time, comm);
- exported: per-process series are bounded to the top N by map areas node-wide,
  plus every process at or above a share of vm.max_map_count, so danger is never
  hidden by the bound (choose_exported);
- the breakdown (kinds, objects, patterns) is for exported processes only. Which
  ones those are is known only at the end of the pass, so the pass predicts them
  from the previous one (the biggest processes stay the biggest) and asks the
  source for their breakdown in the same read; a process that newly enters the
  exported set is read a second time (Source.deepen). In steady state none is.

Vanished or unreadable processes become counted outcomes, never exceptions: one
misbehaving process never fails a pass. The watched processes are kept as
columns (the source's sample, its group, its map areas): most of them are only
summed into their group and ranked, so only the exported ones become whole
samples. On a node of 10,000 processes that is most of the pass's own cost.
"""

import heapq
from dataclasses import dataclass, field

from exporter.node import NodeFacts
from exporter.procfs import DeadlineExceeded, Denied, ParseError, ProcfsError, Vanished
from exporter.procfs.maps import Classifier
from exporter.snapshot import READ_ERROR_REASONS, ProcessSample
from exporter.targets import Matcher, ProcessFacts
from exporter.targets.match import MISSING


def reason_of(exc: ProcfsError) -> str:
    """The `reason` label of vma_exporter_read_errors_total for a reader error."""
    if isinstance(exc, Vanished):
        return "vanished"
    if isinstance(exc, Denied):
        return "permission"
    if isinstance(exc, ParseError):
        return "parse"
    return "io"


@dataclass
class PassResult:
    watched: int  # processes a group rule matched
    # Per group, tallied in the pass: [members, max map areas, map areas, VIRT, RES, hugetlb].
    tallies: dict[str, list[int]]
    # Whole samples, most map areas first: the exported ones, or every watched one
    # (everyone=True, the CLI views). `exported` is set on those that get series.
    samples: list[ProcessSample]
    errors: dict[str, int]  # read errors of this pass, by reason
    scanned: int  # processes examined (kernel threads and real zombies excluded)
    complete: bool  # False when the deadline cut the pass short
    # (identity, group, ENOMEM counts) of the live watched processes that have failed.
    failing: list[tuple[tuple[int, int], str, dict]] = field(default_factory=list)


def choose_exported(areas: list[int | None], pids: list[int], top_n: int, min_ratio: float,
                    max_map_count: int | None) -> set[int]:
    """Indices of the top *top_n* by map areas (ties: the lower pid, as the indices are in
    pid order) and of every one at or above *min_ratio* of the limit; never one whose maps
    could not be read."""
    ranks = [a if a is not None else -1 for a in areas]
    chosen = {i for i in heapq.nlargest(top_n, range(len(ranks)), key=ranks.__getitem__) if ranks[i] >= 0}
    if max_map_count:
        threshold = min_ratio * max_map_count
        chosen.update(i for i, a in enumerate(ranks) if a >= threshold)
    return chosen


def ranked(indices, areas: list[int | None], pids: list[int]) -> list[int]:
    """Most map areas first; unreadable last; ties to the lower pid (a stable order)."""
    return sorted(indices, key=lambda i: (-(areas[i] if areas[i] is not None else -1), pids[i]))


class Policy:
    """Runs passes over a source; remembers who was exported, to predict the next pass."""

    def __init__(self, matcher: Matcher):
        self.matcher = matcher
        self.predicted: set[tuple[int, int]] = set()  # (pid, start) exported by the last pass

    def run(self, source, node: NodeFacts, deadline: float | None, everyone: bool = False) -> PassResult:
        """One pass. With *everyone* (the CLI views) every watched process gets its
        breakdown; the prediction is left as it was."""
        errors = dict.fromkeys(READ_ERROR_REASONS, 0)
        matcher, predicted = self.matcher, self.predicted
        cached, map_areas = matcher.cached, source.map_areas
        classifier = Classifier(node.hugetlb_mounts or ())
        found_: list[ProcessSample] = []
        groups: list[str] = []
        areas: list[int | None] = []
        breakdowns: dict[int, object] = {}
        tallies: dict[str, list[int]] = {}
        failing = []
        scanned, complete = 0, True
        try:
            for found in source.scan(node, deadline):
                scanned += 1
                if isinstance(found, ProcfsError):
                    errors[reason_of(found)] += 1
                    continue
                pid, start = found.pid, found.starttime_ticks
                try:
                    group = cached((pid, start, found.comm))
                    if group is MISSING:  # not seen before: match it (may read its cmdline or uid)
                        group = matcher.group_of(ProcessFacts(pid, start, found.comm,
                                                              lambda f=found: source.uid(f),
                                                              lambda f=found: source.argv(f)))
                    if group is None:
                        continue
                    try:
                        # A kernel-side source knows the count, and gives the exported their
                        # breakdown in deepen(); procfs reads maps once for both, predicted.
                        count, breakdown = found.map_areas, None
                        if count is None or everyone:
                            count, breakdown = map_areas(found, everyone or (pid, start) in predicted, classifier,
                                                         deadline)
                    except Denied:
                        errors["permission"] += 1  # still counted in its group, without map areas
                        count = breakdown = None
                except DeadlineExceeded:
                    raise
                except ProcfsError as exc:
                    errors[reason_of(exc)] += 1
                    continue
                if breakdown is not None:
                    breakdowns[len(found_)] = breakdown
                found_.append(found)
                groups.append(group)
                areas.append(count)
                # The group's figures, in the same loop: a figure a member lacks adds nothing.
                t = tallies.get(group)
                if t is None:
                    t = tallies[group] = [0, 0, 0, 0, 0, 0]
                t[0] += 1
                if count:
                    if count > t[1]:
                        t[1] = count
                    t[2] += count
                virtual, resident, hugetlb = found.virtual_bytes, found.resident_bytes, found.hugetlb_bytes
                if virtual:
                    t[3] += virtual
                if resident:
                    t[4] += resident
                if hugetlb:
                    t[5] += hugetlb
        except DeadlineExceeded:
            complete = False  # the process being read is left out: a partial count would understate it
        matcher.end_pass()
        failures = source.live_failures()
        if failures:  # rare: only then is an index of identities worth building
            index = {(f.pid, f.starttime_ticks): i for i, f in enumerate(found_)}
            failing = [(identity, groups[index[identity]], counts) for identity, counts in failures.items()
                       if identity in index]
        config = matcher.config
        pids = [f.pid for f in found_]
        exported = choose_exported(areas, pids, config.top_n, config.min_limit_ratio, node.max_map_count)
        samples = []
        for i in ranked(range(len(found_)) if everyone else exported, areas, pids):
            s = source.sample(found_[i])._replace(group=groups[i], map_areas=areas[i], breakdown=breakdowns.get(i),
                                                  exported=i in exported)
            if s.exported:
                s, error = source.deepen(s, classifier, deadline)
                if isinstance(error, DeadlineExceeded):
                    complete = False  # exported with its count; the rest is left out
                elif error is not None:
                    errors[reason_of(error)] += 1
            samples.append(s)
        if not everyone:
            self.predicted = {s.identity for s in samples if s.exported}
        source.end_pass()
        return PassResult(len(found_), tallies, samples, errors, scanned, complete, failing)
