"""A pass's results -> the immutable Snapshot: group aggregates and what the daemon keeps.

Group aggregates cover every watched process, exported or not. The daemon's
Snapshot keeps only the exported processes (memory on big nodes); a pass asked
for everyone (the CLI views) keeps every watched one.
"""

from exporter.node import NodeFacts
from exporter.policy import PassResult
from exporter.snapshot import GroupSample, ProcessSample, Snapshot


def aggregate_groups(samples: list[ProcessSample],
                     enomem: dict[str, dict] | None = None) -> tuple[GroupSample, ...]:
    """Per group: members, the busiest member's map areas, and sums over members.

    A figure a member lacks (maps unreadable, a field an old kernel lacks) adds
    nothing to the sums; the member is still counted in ``processes``. *enomem*
    is the ledger's failures per group (None: the source counts none).
    """
    acc: dict[str, list[int]] = {}
    for s in samples:
        a = acc.get(s.group)
        if a is None:
            a = acc[s.group] = [0, 0, 0, 0, 0, 0]
        areas = s.map_areas or 0
        a[0] += 1
        if areas > a[1]:
            a[1] = areas
        a[2] += areas
        a[3] += s.virtual_bytes or 0
        a[4] += s.resident_bytes or 0
        a[5] += s.hugetlb_bytes or 0
    # A group whose members have all exited keeps its ENOMEM failures (a counter must not
    # vanish and come back lower): it stays, with no members, while the ledger has them.
    for name in enomem or ():
        acc.setdefault(name, [0, 0, 0, 0, 0, 0])
    return tuple(GroupSample(name, processes=a[0], map_areas_max=a[1], map_areas_sum=a[2], virtual_bytes=a[3],
                             resident_bytes=a[4], hugetlb_bytes=a[5],
                             enomem=None if enomem is None else enomem.get(name, {}))
                 for name, a in sorted(acc.items()))


def build_snapshot(result: PassResult, node: NodeFacts, *, everyone: bool, timestamp: float, duration: float,
                   errors_total: dict[str, int], sequence: int, source, group_enomem: dict | None = None) -> Snapshot:
    samples = result.samples
    counts = source.counts_enomem
    return Snapshot(
        timestamp=timestamp,
        duration_seconds=duration,
        max_map_count=node.max_map_count,
        pools=node.pools,
        numa_pools=node.numa_pools,
        processes=tuple(samples) if everyone else tuple(s for s in samples if s.exported),
        groups=aggregate_groups(samples, group_enomem),
        watched=len(samples),
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
