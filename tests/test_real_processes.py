"""The exporter against real processes with a known number of map areas.

Each workload (helpers/workload.c) is static once it says "ready", so the
exporter's figures must equal what the kernel shows at the same moment.
"""

import functools
import os
import resource
import uuid

import psutil
import pytest

from helpers.exporter import Exporter, by_pid, value
from helpers.host import host_lock, read_int, sysfs_value
from helpers.workload import Workload as AnyWorkload
from helpers.workload import kernel_map_areas, unique_comm

COMM = unique_comm("realproc")
# Only this module's workloads: other tests may run theirs at the same time.
Workload = functools.partial(AnyWorkload, comm=COMM)
CONFIG = f"""
process_names:
  - name: "wl"
    comm: [{COMM}]
per_process:
  top_n: 20
  min_limit_ratio: 0.5
"""


@pytest.fixture(scope="module")
def exporter():
    with Exporter(CONFIG) as e:
        yield e


def status_kb(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def kinds(metrics, pid) -> dict[str, float]:
    return {s.labels["kind"]: s.value for s in by_pid(metrics["vma_process_map_areas_by_kind"], pid)}


def test_map_areas_equal_kernel_count_and_alternating_areas_are_exact(exporter):
    n = 10_000
    with Workload("areas", 1) as base, Workload("areas", n) as wl:
        m = exporter.scrape()
        assert value(m["vma_process_map_areas"], wl.pid) == kernel_map_areas(wl.pid)
        assert value(m["vma_process_map_areas"], base.pid) == kernel_map_areas(base.pid)
        # The same binary with 1 and with n alternating pages (each set between two
        # PROT_NONE guards): the difference is exactly n - 1 anonymous areas.
        grown, plain = kinds(m, wl.pid), kinds(m, base.pid)
        assert grown["anon"] - plain["anon"] == n - 1
        assert {k: v for k, v in grown.items() if k != "anon"} == {k: v for k, v in plain.items() if k != "anon"}
        assert sum(grown.values()) == value(m["vma_process_map_areas"], wl.pid), "kinds must partition the areas"


def test_one_shm_object_mapped_many_times_is_the_top_object(exporter):
    n = 10_000
    name = f"/vma-test-{uuid.uuid4().hex[:8]}"
    with Workload("shm", name, n) as wl:
        m = exporter.scrape()
        top = by_pid(m["vma_process_top_object_map_areas"], wl.pid)
        assert [(s.labels["object"], s.value) for s in top] == [(f"/dev/shm{name}", n)]
        assert kinds(m, wl.pid)["shm"] == n
        assert value(m["vma_process_map_areas"], wl.pid) == kernel_map_areas(wl.pid)


def test_memory_figures_are_tops_virt_res_shr(exporter):
    with Workload("shm", f"/vma-test-{uuid.uuid4().hex[:8]}", 100) as wl:
        m = exporter.scrape()
        assert value(m["vma_process_virtual_bytes"], wl.pid) == status_kb(wl.pid, "VmSize")
        assert value(m["vma_process_resident_bytes"], wl.pid) == status_kb(wl.pid, "VmRSS")
        shr = status_kb(wl.pid, "RssFile") + status_kb(wl.pid, "RssShmem")
        assert value(m["vma_process_shared_bytes"], wl.pid) == shr
        assert value(m["vma_process_hugetlb_bytes"], wl.pid) == 0
        assert value(m["vma_process_start_time_seconds"], wl.pid) == pytest.approx(
            psutil.Process(wl.pid).create_time(), abs=0.02)


def test_rlimits_are_exported_and_unlimited_is_inf(exporter):
    def limit():
        resource.setrlimit(resource.RLIMIT_DATA, (1 << 30, resource.RLIM_INFINITY))
        resource.setrlimit(resource.RLIMIT_AS, (8 << 30, 8 << 30))

    def unlimit():
        resource.setrlimit(resource.RLIMIT_DATA, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
        resource.setrlimit(resource.RLIMIT_AS, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))

    with Workload("areas", 1, preexec_fn=limit) as limited, Workload("areas", 1, preexec_fn=unlimit) as free:
        m = exporter.scrape()
        assert value(m["vma_process_rlimit_data_bytes"], limited.pid) == 1 << 30
        assert value(m["vma_process_rlimit_as_bytes"], limited.pid) == 8 << 30
        assert value(m["vma_process_rlimit_data_bytes"], free.pid) == float("inf")
        assert value(m["vma_process_rlimit_as_bytes"], free.pid) == float("inf")


@pytest.mark.host
def test_node_limit_is_max_map_count(exporter):
    with open("/proc/sys/vm/max_map_count") as f:
        limit = int(f.read())
    assert exporter.scrape()["vma_node_map_areas_limit"][0].value == limit


def test_group_aggregates_cover_every_member_beyond_the_per_process_bound():
    config = CONFIG.replace("top_n: 20", "top_n: 1")
    with Exporter(config) as e, Workload("areas", 3000) as big, Workload("areas", 10) as small:
        m = e.scrape()
        assert [int(s.labels["pid"]) for s in m["vma_process_map_areas"]] == [big.pid], "top 1 only"
        assert m["vma_group_processes"][0].value == 2
        assert m["vma_group_map_areas_max"][0].value == kernel_map_areas(big.pid)
        assert m["vma_group_map_areas"][0].value == kernel_map_areas(big.pid) + kernel_map_areas(small.pid)
        assert m["vma_exporter_processes_exported"][0].value == 1
        assert m["vma_exporter_processes_watched"][0].value == 2


@pytest.mark.host
def test_processes_near_the_limit_are_exported_beyond_top_n():
    with open("/proc/sys/vm/max_map_count") as f:
        limit = int(f.read())
    # Ratio chosen so that only the big workload is past it; top_n 0 exports nothing else.
    config = CONFIG.replace("top_n: 20", "top_n: 0").replace("0.5", str(2000 / limit))
    with Exporter(config) as e, Workload("areas", 3000) as big, Workload("areas", 10):
        m = e.scrape()
        assert [int(s.labels["pid"]) for s in m["vma_process_map_areas"]] == [big.pid]


def test_no_command_line_in_any_label():
    secret = uuid.uuid4().hex
    # A rule that reads argv (cmdline regex) still never puts argv in a label.
    config = CONFIG.replace(f"comm: [{COMM}]", f"comm: [{COMM}]\n    cmdline: ['--password=']")
    with Exporter(config) as e, Workload("areas", 1, f"--password={secret}") as wl:
        text = e.text()
        assert f'pid="{wl.pid}"' in text
        assert secret not in text


def test_kernel_threads_are_not_reported():
    with Exporter(None) as e:  # embedded default: every process, grouped by comm
        m = e.scrape()
    kthreads = {p.pid for p in psutil.process_iter() if _is_kthread(p.pid)}
    reported = {int(s.labels["pid"]) for s in m["vma_process_map_areas"]}
    assert kthreads, "this machine should have kernel threads"
    assert not reported & kthreads


def _is_kthread(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            fields = f.read().rsplit(b")", 1)[1].split()
    except OSError:
        return False
    return bool(int(fields[6]) & 0x00200000)


def test_unreadable_maps_are_counted_as_permission_errors_not_fatal():
    try:
        open("/proc/1/maps", "rb").close()
        pytest.skip("PID 1's maps are readable here; the permission case needs an unreadable process")
    except PermissionError:
        pass
    with Exporter(None) as e:
        m = e.scrape()
    errors = {s.labels["reason"]: s.value for s in m["vma_exporter_read_errors_total"]}
    assert errors["permission"] >= 1
    assert m["vma_exporter_processes_scanned"][0].value > 1


HUGE_2M = "/sys/kernel/mm/hugepages/hugepages-2048kB"


@pytest.fixture
def two_hugepages():
    """Reserve 4 more 2 MiB hugepages under the host lock; restore the old pool size afterwards."""
    if not os.path.isdir(HUGE_2M):
        pytest.skip("no 2 MiB hugepage pool on this kernel")
    path = os.path.join(HUGE_2M, "nr_hugepages")
    with host_lock():
        old = read_int(path)
        with sysfs_value(path, old + 4) as got:
            if got < old + 4:
                pytest.skip(f"could reserve only {got - old} of 4 hugepages (memory fragmented)")
            yield old + 4


@pytest.mark.root
@pytest.mark.host
def test_hugetlb_pages_are_reported_for_process_and_pool(exporter, two_hugepages):
    with Workload("hugetlb", 2) as wl:
        m = exporter.scrape()
        assert value(m["vma_process_hugetlb_bytes"], wl.pid) == 2 * 2 * 1024 * 1024
        assert kinds(m, wl.pid)["hugetlb"] == 1
        pools = {s.labels["pagesize_bytes"]: s.value for s in m["vma_node_hugepages"]}
        free = {s.labels["pagesize_bytes"]: s.value for s in m["vma_node_hugepages_free"]}
        assert pools["2097152"] == two_hugepages
        assert free["2097152"] == int(open(os.path.join(HUGE_2M, "free_hugepages")).read())
        numa = [s for s in m["vma_node_numa_hugepages"] if s.labels["pagesize_bytes"] == "2097152"]
        assert sum(s.value for s in numa) == two_hugepages
