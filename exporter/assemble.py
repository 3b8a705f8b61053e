"""A pass's results -> the immutable Snapshot: group aggregates and what the daemon keeps.

Group aggregates cover every watched process, exported or not. The daemon's
Snapshot keeps only the exported processes (memory on big nodes); a pass asked
for everyone (the CLI views) keeps every watched one.
"""

from exporter.node import NodeFacts
from exporter.policy import PassResult
from exporter.snapshot import GroupSample, Snapshot


def aggregate_groups(result: PassResult, enomem: dict[str, dict] | None = None) -> tuple[GroupSample, ...]:
    """Per group, from the pass's tallies: members, the busiest member's map areas, and sums
    over members (a figure a member lacks adds nothing; the member is still counted).
    *enomem* is the ledger's failures per group (None: the source counts none)."""
    tallies = dict(result.tallies)
    # A group whose members have all exited keeps its ENOMEM failures (a counter must not
    # vanish and come back lower): it stays, with no members, while the ledger has them.
    for name in enomem or ():
        tallies.setdefault(name, [0, 0, 0, 0, 0, 0])
    return tuple(GroupSample(name, processes=a[0], map_areas_max=a[1], map_areas_sum=a[2], virtual_bytes=a[3],
                             resident_bytes=a[4], hugetlb_bytes=a[5],
                             enomem=None if enomem is None else enomem.get(name, {}))
                 for name, a in sorted(tallies.items()))


def build_snapshot(result: PassResult, node: NodeFacts, *, everyone: bool, timestamp: float, duration: float,
                   errors_total: dict[str, int], sequence: int, source, group_enomem: dict | None = None) -> Snapshot:
    counts = source.counts_enomem
    return Snapshot(
        timestamp=timestamp,
        duration_seconds=duration,
        max_map_count=node.max_map_count,
        pools=node.pools,
        numa_pools=node.numa_pools,
        processes=tuple(result.samples),
        groups=aggregate_groups(result, group_enomem),
        watched=result.watched,
        scanned=result.scanned,
        read_errors_total=dict(errors_total),
        read_errors=dict(result.errors),
        complete=result.complete,
        sequence=sequence,
        node_read_success=dict(node.read_success),
        source=source.name,
        node_enomem=dict(source.node_failures) if counts else None,
        enomem_overflows=dict(source.overflows) if counts else None,
    )
