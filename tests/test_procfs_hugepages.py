"""exporter.procfs.hugepages: hugepage pools in sysfs (Documentation/admin-guide/mm/hugetlbpage.rst).

Node-wide: /sys/kernel/mm/hugepages/hugepages-<N>kB/{nr,free,resv,surplus}_hugepages.
Per NUMA node: /sys/devices/system/node/node<K>/hugepages/hugepages-<N>kB/
{nr,free,surplus}_hugepages (the kernel has no resv_hugepages per node).
"""

import os

import pytest

from exporter.procfs import ProcfsError
from exporter.procfs.hugepages import HugePool, parse_size_dir, read_numa_pools, read_pools
from exporter.procfs.paths import Roots

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
ROOTS = Roots(os.path.join(FIXTURES, "proc"), os.path.join(FIXTURES, "sys"))
MB2, GB1 = 2 * 1024 * 1024, 1024 * 1024 * 1024


def write_tree(root, files: dict[str, str]) -> Roots:
    for rel, text in files.items():
        path = os.path.join(str(root), "sys", rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
    os.makedirs(os.path.join(str(root), "sys", "kernel", "mm"), exist_ok=True)  # every sysfs has it
    return Roots(os.path.join(str(root), "proc"), os.path.join(str(root), "sys"))


def pool_files(base: str, size_kb: int, **counts: int) -> dict[str, str]:
    return {f"{base}/hugepages-{size_kb}kB/{name}_hugepages": f"{n}\n" for name, n in counts.items()}


def test_read_pools_fixture():
    assert read_pools(ROOTS) == [
        HugePool(pagesize_bytes=MB2, total=512, free=508, reserved=20, surplus=0),
        HugePool(pagesize_bytes=GB1, total=4, free=3, reserved=1, surplus=0),
    ]


def test_read_numa_pools_fixture():
    assert read_numa_pools(ROOTS) == [
        HugePool(pagesize_bytes=MB2, total=256, free=252, numa_node=0),
        HugePool(pagesize_bytes=GB1, total=2, free=1, numa_node=0),
        HugePool(pagesize_bytes=MB2, total=256, free=256, numa_node=1),
        HugePool(pagesize_bytes=GB1, total=2, free=2, numa_node=1),
    ]


def test_fixture_nodes_add_up_to_the_node_wide_pools():
    by_size = {}
    for p in read_numa_pools(ROOTS):
        t, f = by_size.get(p.pagesize_bytes, (0, 0))
        by_size[p.pagesize_bytes] = (t + p.total, f + p.free)
    assert by_size == {p.pagesize_bytes: (p.total, p.free) for p in read_pools(ROOTS)}


@pytest.mark.parametrize("name, size", [
    ("hugepages-2048kB", MB2),
    ("hugepages-1048576kB", GB1),
    ("hugepages-64kB", 64 * 1024),  # arm64 with 4k pages: contiguous-PTE size
    ("hugepages-32768kB", 32 * 1024 * 1024),
    ("hugepages-16777216kB", 16 * GB1),  # ppc64 16 GiB pages
    ("hugepages-2048KB", None),
    ("hugepages-kB", None),
    ("hugepages--2048kB", None),
    ("hugepages-2048", None),
    ("hugepages-2048kB.old", None),
    ("nr_hugepages", None),
    ("", None),
])
def test_parse_size_dir(name, size):
    assert parse_size_dir(name) == size


def test_no_hugetlb_support_means_no_pools(tmp_path):
    roots = write_tree(tmp_path, {})
    assert read_pools(roots) == []
    assert read_numa_pools(roots) == []


def test_a_root_that_is_not_a_sysfs_is_an_error_not_no_hugetlb(tmp_path):
    """--path.sysfs pointing at the wrong place must not read as "no hugetlb support"."""
    roots = Roots(str(tmp_path / "proc"), str(tmp_path / "nowhere"))
    for reader in (read_pools, read_numa_pools):
        with pytest.raises(ProcfsError, match="sysfs unreadable at .*nowhere"):
            reader(roots)


def test_nodes_without_hugepages_directories(tmp_path):
    roots = write_tree(tmp_path, {"devices/system/node/node0/cpulist": "0-3\n", "devices/system/node/online": "0\n"})
    assert read_numa_pools(roots) == []


def test_entries_that_are_not_pools_or_nodes_are_ignored(tmp_path):
    files = {}
    files.update(pool_files("kernel/mm/hugepages", 2048, nr=8, free=8, resv=0, surplus=1))
    files["kernel/mm/hugepages/README"] = "not a pool\n"
    files.update(pool_files("devices/system/node/node0/hugepages", 2048, nr=8, free=8, surplus=1))
    files["devices/system/node/node0/hugepages/hugepages-junk/nr_hugepages"] = "1\n"
    files["devices/system/node/nodeX/hugepages/hugepages-2048kB/nr_hugepages"] = "1\n"
    files["devices/system/node/has_memory"] = "0\n"
    roots = write_tree(tmp_path, files)
    assert read_pools(roots) == [HugePool(MB2, 8, 8, 0, 1)]
    assert read_numa_pools(roots) == [HugePool(MB2, 8, 8, 0, 1, numa_node=0)]


def test_nodes_sort_by_number_not_by_name(tmp_path):
    files = {}
    for node in (10, 2, 0):
        files.update(pool_files(f"devices/system/node/node{node}/hugepages", 2048, nr=node, free=0, surplus=0))
    roots = write_tree(tmp_path, files)
    assert [p.numa_node for p in read_numa_pools(roots)] == [0, 2, 10]
    assert [p.total for p in read_numa_pools(roots)] == [0, 2, 10]


def test_a_pool_missing_a_count_file_is_an_error(tmp_path):
    """The collector treats node facts that fail as absent; the reader must not invent a 0."""
    files = pool_files("kernel/mm/hugepages", 2048, nr=8, free=8, resv=0)  # no surplus_hugepages
    roots = write_tree(tmp_path, files)
    with pytest.raises(ProcfsError):
        read_pools(roots)


def test_a_count_that_is_not_a_number_names_the_file(tmp_path):
    files = pool_files("kernel/mm/hugepages", 2048, nr=8, free=8, resv=0, surplus=0)
    files["kernel/mm/hugepages/hugepages-2048kB/free_hugepages"] = "eight\n"
    roots = write_tree(tmp_path, files)
    with pytest.raises(ProcfsError, match="free_hugepages"):
        read_pools(roots)
