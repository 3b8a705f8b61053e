"""exporter/exposition.py writes exactly what prometheus_client writes from the same
declarations, in the text format 0.0.4 and in OpenMetrics 1.0.0.

Over the fixture node (every kind of label, escapes, +Inf, missing figures), over a
Snapshot with ENOMEM counts, and over an empty one.
"""

import os

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as openmetrics_latest

from exporter.collect import Collector
from exporter.exposition import render
from exporter.metrics import _EMPTY, Context, ReloadState, SnapshotCollector
from exporter.procfs.paths import Roots
from exporter.snapshot import GroupSample
from exporter.targets import default_config

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


class Fixed:
    """A collector that always returns one Snapshot."""

    def __init__(self, snap):
        self.snap = snap

    def collect(self):
        return self.snap


def fixture_snapshot():
    c = Collector(Roots(os.path.join(FIXTURES, "proc"), os.path.join(FIXTURES, "sys")), default_config())
    c.collect()
    return c.collect()


def with_failures(snap):
    """The fixture node as the BPF source would show it: ENOMEM counts, overflows."""
    import dataclasses

    procs = tuple(p._replace(enomem={("munmap", "map_count"): 3, ("mmap", "memory"): 1} if i == 0 else {})
                  for i, p in enumerate(snap.processes))
    groups = tuple(dataclasses.replace(g, enomem={("mmap", "rlimit_data"): 2}) for g in snap.groups)
    node = {(s, c): 7 if (s, c) == ("brk", "memory") else 0 for s in ("mmap", "brk") for c in ("memory", "map_count")}
    return dataclasses.replace(snap, processes=procs, groups=groups, source="bpf", node_enomem=node,
                               enomem_overflows={"process_map_full": 1, "enter_map_full": 0, "exit_unpaired": 0})


@pytest.mark.parametrize("make", [fixture_snapshot, lambda: with_failures(fixture_snapshot()), lambda: _EMPTY],
                         ids=["fixture node", "with ENOMEM counts", "empty"])
@pytest.mark.parametrize("reload", [None, ReloadState(False, 1767225600.5)], ids=["no reload state", "reload"])
def test_render_equals_prometheus_client_in_both_formats(make, reload):
    snap = make()
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(Fixed(snap), reload_state=(lambda: reload) if reload else None))
    ctx = Context(snap, reload)
    assert render(ctx).decode() == generate_latest(registry).decode()
    assert render(ctx, openmetrics=True).decode() + "# EOF\n" == openmetrics_latest(registry).decode()


def test_a_group_without_members_keeps_its_counter_in_the_output():
    snap = fixture_snapshot()
    import dataclasses

    gone = GroupSample("gone", 0, 0, 0, 0, 0, 0, enomem={("mmap", "map_count"): 4})
    text = render(Context(dataclasses.replace(snap, groups=(*snap.groups, gone)), None)).decode()
    assert 'vma_group_enomem_failures_total{cause="map_count",group="gone",syscall="mmap"} 4.0' in text
    assert 'vma_group_processes{group="gone"} 0.0' in text


def with_process(snap, i, **changes):
    import dataclasses

    procs = list(snap.processes)
    procs[i] = procs[i]._replace(**changes)
    return dataclasses.replace(snap, processes=tuple(procs))


@pytest.mark.parametrize("openmetrics", [False, True], ids=["text", "openmetrics"])
def test_a_family_reused_from_the_last_render_is_what_a_fresh_render_writes(openmetrics):
    """The memo across renders of changing snapshots: a value moved, a process gone, labels
    changed, ENOMEM counts, nothing at all, the same again."""
    base = fixture_snapshot()
    first = base.processes[0]
    import dataclasses

    snaps = [base, base, with_process(base, 0, map_areas=first.map_areas + 1),
             dataclasses.replace(base, processes=base.processes[1:]), with_process(base, 0, comm="renamed"),
             with_failures(base), _EMPTY, base, with_failures(base)]
    memo: dict = {}
    for snap in snaps:
        ctx = Context(snap, None)
        assert render(ctx, openmetrics, memo) == render(ctx, openmetrics)
    assert memo, "families were kept for the next render"


def test_a_float_zero_is_written_with_its_sign_whatever_was_written_before():
    """-0.0 == 0.0: a family holding a float zero is formatted afresh, never reused."""
    base = fixture_snapshot()
    memo: dict = {}
    line = "vma_process_start_time_seconds{"
    plus = render(Context(with_process(base, 0, start_time_seconds=0.0), None), False, memo).decode()
    minus = render(Context(with_process(base, 0, start_time_seconds=-0.0), None), False, memo).decode()
    assert [s.rsplit(" ", 1)[1] for s in plus.splitlines() if s.startswith(line)][0] == "0.0"
    assert [s.rsplit(" ", 1)[1] for s in minus.splitlines() if s.startswith(line)][0] == "-0.0"


def test_a_zero_after_a_negative_zero_is_written_as_a_fresh_render_writes_it():
    """-0.0 == 0: a family last written with -0.0 is not kept to be matched by a later int 0."""
    base = fixture_snapshot()
    memo: dict = {}
    for value in (-0.0, 0, 0.0, -0.0, 0):
        ctx = Context(with_process(base, 0, start_time_seconds=value), None)
        assert render(ctx, False, memo) == render(ctx, False), value
