"""Hugepage pools: /sys/kernel/mm/hugepages/hugepages-<N>kB/ and per NUMA node.

Documentation/admin-guide/mm/hugetlbpage.rst. Node-wide each size has
nr_hugepages, free_hugepages, resv_hugepages and surplus_hugepages; per node
(/sys/devices/system/node/node<K>/hugepages/hugepages-<N>kB/) nr, free and
surplus. Pages usable by a new mapping = free - reserved.
"""

import os
from dataclasses import dataclass

from exporter.procfs import ReadFailed, read_file, translate
from exporter.procfs.paths import Roots
from exporter.procfs.sysctl import parse_int


@dataclass(frozen=True)
class HugePool:
    pagesize_bytes: int
    total: int
    free: int
    reserved: int = 0
    surplus: int = 0
    numa_node: int | None = None


def parse_size_dir(name: str) -> int | None:
    """``hugepages-2048kB`` -> 2097152; anything else -> None."""
    if not (name.startswith("hugepages-") and name.endswith("kB")):
        return None
    digits = name[len("hugepages-") : -2]
    return int(digits) * 1024 if digits.isdigit() and len(digits) <= 20 else None


def _read_counts(directory: str, names: tuple[str, ...]) -> list[int]:
    return [parse_int(read_file(os.path.join(directory, n)), n) for n in names]


def _pools(base: str, numa_node: int | None) -> list[HugePool]:
    try:
        entries = sorted(os.listdir(base))
    except FileNotFoundError:
        return []  # no hugetlb support (CONFIG_HUGETLBFS=n), or a NUMA node without pools
    except OSError as exc:
        raise translate(exc, base) from None
    pools = []
    for entry in entries:
        size = parse_size_dir(entry)
        if size is None:
            continue
        d = os.path.join(base, entry)
        if numa_node is None:
            total, free, resv, surplus = _read_counts(
                d, ("nr_hugepages", "free_hugepages", "resv_hugepages", "surplus_hugepages")
            )
            pools.append(HugePool(size, total, free, resv, surplus))
        else:
            total, free, surplus = _read_counts(d, ("nr_hugepages", "free_hugepages", "surplus_hugepages"))
            pools.append(HugePool(size, total, free, 0, surplus, numa_node))
    return sorted(pools, key=lambda p: p.pagesize_bytes)


def _require_sysfs(roots: Roots) -> None:
    """No hugepages directory means no hugetlb support only on a real sysfs: a wrong
    --path.sysfs, or one the exporter cannot read, must not pass for that."""
    mm = roots.sys("kernel", "mm")
    if not os.path.isdir(mm):
        raise ReadFailed(f"{mm}: not found: sysfs unreadable at {roots.sysfs}")


def read_pools(roots: Roots) -> list[HugePool]:
    """Node-wide pools, one per page size, smallest first; [] without hugetlb support."""
    _require_sysfs(roots)
    return _pools(roots.sys("kernel", "mm", "hugepages"), None)


def read_numa_pools(roots: Roots) -> list[HugePool]:
    """Per NUMA node pools, ordered by node then page size."""
    _require_sysfs(roots)
    base = roots.sys("devices", "system", "node")
    try:
        nodes = sorted(int(n[4:]) for n in os.listdir(base) if n.startswith("node") and n[4:].isdigit())
    except FileNotFoundError:
        return []  # a kernel without NUMA (CONFIG_NUMA=n)
    except OSError as exc:
        raise translate(exc, base) from None
    pools: list[HugePool] = []
    for node in nodes:
        pools.extend(_pools(os.path.join(base, f"node{node}", "hugepages"), node))
    return pools

