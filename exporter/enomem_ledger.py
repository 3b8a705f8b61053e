"""Group totals of ENOMEM failures that only go up, whatever the members do.

A group's failures are its members': the live ones' counts (the source attaches
them to each sample), plus what members that exited or moved to another group
had counted while they were in it. The kernel hands over an exited process's
final counts once (Source.retired_failures) and forgets it; a process that
renames itself may match another group. Either way its failures so far stay
with the group that had them, so vma_group_enomem_failures_total never falls
(a fall would read as a counter reset and invent failures in rate()).

State is bounded by the live processes that have failed plus one total per group.
"""

from collections import Counter

Cells = dict[tuple[str, str], int]
Identity = tuple[int, int]


class EnomemLedger:
    def __init__(self):
        self._settled: dict[str, Counter] = {}  # group -> failures of members that left it
        # identity -> (group, counts when it joined that group, counts last seen)
        self._members: dict[Identity, tuple[str, Cells, Cells]] = {}

    def record(self, failing: list[tuple[Identity, str, Cells]], retired: list,
               group_of_retired) -> dict[str, Cells]:
        """Fold one pass in; return every group's totals (groups without failures are absent).

        *failing* holds (identity, group, counts) of the live watched processes that have
        failed; *retired* the source's ProcessFailures of processes gone since the last pass;
        *group_of_retired(failures)* names the group of one the ledger did not follow (it
        had not failed while alive, or was never seen alive), or None.
        """
        members = self._members
        seen: dict[Identity, tuple[str, Cells, Cells]] = {}
        for identity, group, counts in failing:
            entry = members.get(identity)
            if entry is not None and entry[0] != group:  # moved: the old group keeps what it had
                self._settle(entry[0], entry[2], entry[1])
                entry = (group, dict(entry[2]), counts)  # the new group counts from here on
            elif entry is None:
                entry = (group, {}, counts)
            seen[identity] = (entry[0], entry[1], counts)
        for f in retired:
            entry = members.get(f.identity) or seen.pop(f.identity, None)
            if entry is not None:
                self._settle(entry[0], f.counts, entry[1])
                continue
            group = group_of_retired(f)
            if group is not None:
                self._settle(group, f.counts, {})
        self._members = seen
        totals: dict[str, Counter] = {g: Counter(c) for g, c in self._settled.items()}
        for group, baseline, counts in seen.values():
            t = totals.setdefault(group, Counter())
            for cell, n in counts.items():
                t[cell] += n - baseline.get(cell, 0)
        return {g: {cell: n for cell, n in sorted(t.items()) if n} for g, t in totals.items() if any(t.values())}

    def _settle(self, group: str, counts: Cells, baseline: Cells) -> None:
        t = self._settled.setdefault(group, Counter())
        for cell, n in counts.items():
            t[cell] += n - baseline.get(cell, 0)
