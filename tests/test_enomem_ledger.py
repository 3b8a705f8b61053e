"""exporter/enomem_ledger.py: group totals of ENOMEM failures never fall, whatever members do.

Pure: samples and the source's retired failures are built here, as a source hands them over.
"""

from exporter.bpf.enomem import ProcessFailures
from exporter.enomem_ledger import EnomemLedger

MMAP, MUNMAP = ("mmap", "rlimit_data"), ("munmap", "map_count")


def sample(pid: int, group: str, counts: dict, start: int = 100) -> tuple:
    """What the pass hands the ledger for a live watched process."""
    return ((pid, start), group, counts)


def gone(pid: int, counts: dict, start: int = 100, comm: str = "") -> ProcessFailures:
    return ProcessFailures(pid, start, comm or f"p{pid}", counts)


def never(_failures):
    raise AssertionError("not asked: the ledger saw this process alive")


def test_live_members_sum_and_a_member_without_failures_leaves_no_state():
    ledger = EnomemLedger()
    totals = ledger.record([sample(1, "a", {MMAP: 2}), sample(2, "a", {MMAP: 1, MUNMAP: 1})], [], never)
    assert totals == {"a": {MMAP: 3, MUNMAP: 1}}
    assert set(ledger._members) == {(1, 100), (2, 100)}


def test_an_exited_member_keeps_its_failures_in_its_group():
    ledger = EnomemLedger()
    ledger.record([sample(1, "a", {MMAP: 2}), sample(2, "a", {MMAP: 1})], [], never)
    # pid 1 failed once more, then exited between the passes: the source hands over its final counts.
    totals = ledger.record([sample(2, "a", {MMAP: 1})], [gone(1, {MMAP: 3})], never)
    assert totals == {"a": {MMAP: 4}}
    assert ledger.record([], [gone(2, {MMAP: 1})], never) == {"a": {MMAP: 4}}  # the last one too
    assert ledger.record([], [], never) == {"a": {MMAP: 4}}  # and it stays


def test_a_member_that_moves_group_leaves_what_it_had_and_brings_only_what_comes_after():
    ledger = EnomemLedger()
    ledger.record([sample(1, "before", {MMAP: 2})], [], never)
    totals = ledger.record([sample(1, "after", {MMAP: 2})], [], never)  # renamed itself: another group
    assert totals == {"before": {MMAP: 2}}
    totals = ledger.record([sample(1, "after", {MMAP: 5})], [], never)
    assert totals == {"before": {MMAP: 2}, "after": {MMAP: 3}}
    assert ledger.record([], [gone(1, {MMAP: 6})], never) == {"before": {MMAP: 2}, "after": {MMAP: 4}}


def test_a_process_that_failed_and_exited_between_two_passes_is_matched_by_its_comm():
    ledger = EnomemLedger()
    asked = []

    def group_of(f):
        asked.append(f.comm)
        return "workers" if f.comm == "worker" else None

    totals = ledger.record([], [gone(7, {MMAP: 1}, comm="worker"), gone(8, {MMAP: 9}, comm="unwatched")], group_of)
    assert totals == {"workers": {MMAP: 1}} and asked == ["worker", "unwatched"]


def test_a_member_that_failed_and_exited_between_two_passes_goes_to_the_group_asked_for():
    """The pass asks the matcher, which remembers the groups of the processes that went."""
    ledger = EnomemLedger()
    assert ledger.record([], [gone(3, {MUNMAP: 1})], lambda f: "workers") == {"workers": {MUNMAP: 1}}


def test_a_reused_pid_is_a_new_process():
    ledger = EnomemLedger()
    ledger.record([sample(1, "a", {MMAP: 2}, start=100)], [], never)
    totals = ledger.record([sample(1, "a", {MMAP: 1}, start=200)], [gone(1, {MMAP: 2}, start=100)], never)
    assert totals == {"a": {MMAP: 3}}


def test_totals_never_fall_over_a_long_random_history():
    import random

    rng = random.Random(4242)
    ledger, alive, last = EnomemLedger(), {}, {}
    for step in range(300):
        retired = []
        for identity in list(alive):
            if rng.random() < 0.1:
                counts = alive.pop(identity)[1]
                if counts:  # the kernel's map holds only processes that failed
                    retired.append(gone(identity[0], counts, start=identity[1]))
        if rng.random() < 0.5:
            alive[(rng.randrange(1, 50), step)] = (rng.choice("xyz"), {})
        for identity, (group, counts) in list(alive.items()):
            if rng.random() < 0.3:
                counts = {**counts, MMAP: counts.get(MMAP, 0) + 1}
            if rng.random() < 0.05:
                group = rng.choice("xyz")  # renamed
            alive[identity] = (group, counts)
        samples = [sample(i[0], g, c, start=i[1]) for i, (g, c) in alive.items() if c]
        totals = ledger.record(samples, retired, never)
        for group, cells in last.items():
            for cell, n in cells.items():
                assert totals.get(group, {}).get(cell, 0) >= n, (step, group)
        last = totals
