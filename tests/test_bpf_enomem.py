"""ENOMEM counted in the kernel as it happens, with its cause, on real failing processes.

Each workload (helpers/enomem.c, helpers/workload.c at-limit) makes exactly one
memory-mapping call fail for a known reason and reports its errno; the counters
must show that one failure under that (syscall, cause) for that process, and a
quiet process must not appear at all. The syscall trace events need tracefs:
mounted for the module if this machine has it unmounted, and unmounted again.
vm.max_map_count is lowered (then restored) so that the process of incident 001 (docs/incidents.md)
reaches the limit in a moment. Both under the host lock.
"""

import os

import pytest
from helpers.host import sysfs_value
from helpers.tracefs import tracefs_mounted
from helpers.workload import Workload

from exporter.bpf.enomem import SYSCALLS, EnomemCounter

pytestmark = pytest.mark.root
MAX_MAP_COUNT = "/proc/sys/vm/max_map_count"


@pytest.fixture(scope="module")
def tracefs():
    with tracefs_mounted() as path:
        yield path


@pytest.fixture(scope="module")
def counter(tracefs):
    with EnomemCounter() as ec:
        yield ec


def identity(pid: int) -> tuple[int, int]:
    with open(f"/proc/{pid}/stat", "rb") as f:
        stat = f.read()
    return (pid, int(stat[stat.rindex(b")") + 2:].split()[19]))


def failures_of(counter: EnomemCounter, who: tuple[int, int]) -> dict | None:
    found = [p for p in counter.read() if p.identity == who]
    assert len(found) <= 1
    return found[0].counts if found else None


def failing(mode: str) -> Workload:
    return Workload(mode, program="enomem")


def test_munmap_splits_at_the_limit_are_munmap_map_count(counter):
    """Incident 001 (docs/incidents.md): map many pages, munmap every other one until munmap fails."""
    with sysfs_value(MAX_MAP_COUNT, 3000):
        assert counter.refresh_limits() == 3000
        with Workload("at-limit") as w:
            assert "errno=12" in w.detail, w.detail
            counts = failures_of(counter, identity(w.pid))
        counter.refresh_limits()
    assert counts == {("munmap", "map_count"): 1}


def test_mmap_refused_by_a_small_rlimit_data_is_mmap_rlimit_data(counter, workload_bin):
    before = counter.node_totals().get(("mmap", "rlimit_data"), 0)
    with failing("mmap-rlimit-data") as w:
        assert w.detail == "errno=12"
        counts = failures_of(counter, identity(w.pid))
        found = next(p for p in counter.read() if p.pid == w.pid)
    assert counts == {("mmap", "rlimit_data"): 1}
    assert found.comm == "enomem"
    assert counter.node_totals()[("mmap", "rlimit_data")] >= before + 1


def test_a_quiet_process_is_not_counted(counter):
    with Workload("quiet", 2000, program="enomem") as w:
        assert w.detail == "errno=0"
        assert failures_of(counter, identity(w.pid)) is None


@pytest.mark.parametrize("mode, expected", [
    ("mprotect-rlimit-data", ("mprotect", "rlimit_data")),
    ("brk-rlimit-data", ("brk", "rlimit_data")),
    ("mremap-rlimit-as", ("mremap", "rlimit_as")),
    ("shmat-rlimit-as", ("shmat", "rlimit_as")),
    ("mmap-memory", ("mmap", "memory")),
])
def test_each_syscall_and_cause(counter, mode, expected):
    with failing(mode) as w:
        assert w.detail == "errno=12", f"{mode}: the call did not fail with ENOMEM ({w.detail})"
        assert failures_of(counter, identity(w.pid)) == {expected: 1}


def test_counts_of_an_exited_process_stay_until_forgotten(counter):
    with failing("mmap-rlimit-data") as w:
        who = identity(w.pid)
    assert not os.path.exists(f"/proc/{w.pid}/stat") or identity(w.pid) != who, "still running"
    assert failures_of(counter, who) == {("mmap", "rlimit_data"): 1}, "exited: the counts must survive"
    node = counter.node_totals()
    assert counter.forget([who]) == 1
    assert failures_of(counter, who) is None
    assert counter.node_totals() == node, "forgetting a process keeps the node totals"
    assert counter.forget([who]) == 0


def test_the_per_process_bound_counts_what_does_not_fit(tracefs):
    with EnomemCounter(max_processes=2) as small:
        pids = []
        for _ in range(3):
            with failing("mmap-rlimit-data") as w:
                assert w.detail == "errno=12"
                pids.append(w.pid)
        held = [p for p in small.read() if p.pid in pids]
        assert len(held) == 2
        assert small.overflows()["process_map_full"] >= 1
        assert small.node_totals()[("mmap", "rlimit_data")] >= 3, "every failure is counted per node"
        small.forget(p.identity for p in held)
        with failing("mmap-rlimit-data") as w:  # room again once the exited ones are forgotten
            assert failures_of(small, identity(w.pid)) == {("mmap", "rlimit_data"): 1}


# The argument positions enomem.bpf.c reads, by the names of the format files.
ENTER_FIELDS = {
    "mmap": ["addr", "len", "prot", "flags"],
    "munmap": ["addr", "len"],
    "mprotect": ["start", "len", "prot"],
    "mremap": ["addr", "old_len", "new_len", "flags"],
    "brk": ["brk"],
    "shmat": ["shmid", "shmaddr", "shmflg"],
}


def format_fields(tracefs: str, event: str) -> dict[str, tuple[int, int]]:
    with open(os.path.join(tracefs, "events", "syscalls", event, "format")) as f:
        text = f.read()
    out = {}
    for line in text.splitlines():
        if line.strip().startswith("field:"):
            parts = dict(p.strip().split(":", 1) for p in line.strip().split(";") if ":" in p)
            name = parts["field"].split()[-1]
            out[name] = (int(parts["offset"]), int(parts["size"]))
    return out


@pytest.mark.parametrize("syscall", SYSCALLS)
def test_trace_event_layouts_are_the_programs(tracefs, syscall):
    enter = format_fields(tracefs, f"sys_enter_{syscall}")
    for i, name in enumerate(ENTER_FIELDS[syscall]):
        assert enter[name] == (16 + 8 * i, 8), f"sys_enter_{syscall}.{name}"
    assert format_fields(tracefs, f"sys_exit_{syscall}")["ret"] == (16, 8)

