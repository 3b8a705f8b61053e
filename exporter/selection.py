"""Which processes get per-process series, and the group aggregates.

Per-process series are bounded: the top N by map areas node-wide, plus every
process at or above a share of ``vm.max_map_count`` (so danger is never hidden
by the bound). Group aggregates always cover every member.
"""

from exporter.snapshot import GroupSample, ProcessSample


def choose_exported(samples: list[ProcessSample], top_n: int, min_ratio: float,
                    max_map_count: int | None) -> list[ProcessSample]:
    """Return the samples most map areas first, with ``exported`` set."""
    # Unreadable map counts rank last; ties go to the lower pid for a stable order.
    ranked = sorted(samples, key=lambda s: (-(s.map_areas if s.map_areas is not None else -1), s.pid))
    threshold = min_ratio * max_map_count if max_map_count else None
    out = []
    for rank, s in enumerate(ranked):
        areas = s.map_areas
        exported = areas is not None and (
            rank < top_n or (threshold is not None and areas >= threshold))
        out.append(s._replace(exported=True) if exported else s)
    return out


def aggregate_groups(samples: list[ProcessSample]) -> tuple[GroupSample, ...]:
    acc: dict[str, list[int]] = {}
    for s in samples:
        a = acc.setdefault(s.group, [0, 0, 0, 0, 0, 0])
        areas = s.map_areas or 0
        a[0] += 1
        a[1] = max(a[1], areas)
        a[2] += areas
        a[3] += s.status.virtual or 0
        a[4] += s.status.resident or 0
        a[5] += s.status.hugetlb or 0
    return tuple(GroupSample(name, *vals) for name, vals in sorted(acc.items()))
