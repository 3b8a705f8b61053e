"""Group totals of ENOMEM failures that only go up, whatever the members do.

A group's failures are its members': the live ones' counts (the source attaches
them to each sample), plus what members that exited or moved to another group
had counted while they were in it. The kernel hands over an exited process's
final counts once (Source.retired_failures) and forgets it; a process that
renames itself may match another group. Either way its failures so far stay
with the group that had them, so vma_group_enomem_failures_total never falls
(a fall would read as a counter reset and invent failures in rate()).

State is bounded by the live processes (their groups, as of the last pass) plus
one total per group.
"""

from collections import Counter

from exporter.snapshot import ProcessSample

Cells = dict[tuple[str, str], int]


class EnomemLedger:
    def __init__(self):
        self._settled: dict[str, Counter] = {}  # group -> failures of members that left it
        # identity -> (group, counts when it joined that group, counts last seen)
        self._members: dict[tuple[int, int], tuple[str, Cells, Cells]] = {}
        # identity -> group of every watched process of the last pass: one that had not failed
        # then, and failed and exited before this pass, still goes to the group it was in.
        self._groups: dict[tuple[int, int], str] = {}

    def record(self, samples: list[ProcessSample], retired: list, group_of_retired) -> dict[str, Cells]:
        """Fold one pass in; return every group's totals (groups without failures are absent).

        *retired* are the source's ProcessFailures of processes gone since the last pass;
        *group_of_retired(failures)* names the group of one the ledger never saw alive
        (it started and failed between two passes), or None.
        """
        members, settled = self._members, self._settled
        seen: dict[tuple[int, int], tuple[str, Cells, Cells]] = {}
        for s in samples:
            counts = s.enomem
            if counts is None:
                continue
            entry = members.get(s.identity)
            if entry is not None and entry[0] != s.group:  # moved: the old group keeps what it had
                self._settle(entry[0], entry[2], entry[1])
                entry = None
            if entry is None:
                if not counts:
                    continue  # nothing failed yet: no state for it
                baseline = {} if s.identity not in members else dict(counts)
                entry = (s.group, baseline, counts)
            seen[s.identity] = (entry[0], entry[1], counts)
        for f in retired:
            entry = members.get(f.identity) or seen.pop(f.identity, None)
            if entry is not None:
                self._settle(entry[0], f.counts, entry[1])
                continue
            group = self._groups.get(f.identity)
            if group is None:
                group = group_of_retired(f)  # never seen alive: started and failed between two passes
            if group is not None:
                self._settle(group, f.counts, {})
        self._members = seen
        self._groups = {s.identity: s.group for s in samples}
        totals: dict[str, Counter] = {g: Counter(c) for g, c in settled.items()}
        for group, baseline, counts in seen.values():
            t = totals.setdefault(group, Counter())
            for cell, n in counts.items():
                t[cell] += n - baseline.get(cell, 0)
        return {g: {cell: n for cell, n in sorted(t.items()) if n} for g, t in totals.items() if any(t.values())}

    def _settle(self, group: str, counts: Cells, baseline: Cells) -> None:
        t = self._settled.setdefault(group, Counter())
        for cell, n in counts.items():
            t[cell] += n - baseline.get(cell, 0)
