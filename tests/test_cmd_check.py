"""`vma-exporter check`: exit codes, exact verdicts over fixture nodes, and real
processes at and near the limit, at their RLIMIT_DATA, missing or unreadable.

A lowered limit comes from a fixture procfs whose sys/vm/max_map_count says
so and whose PID entry is a symlink to the real /proc/PID: the process is
real, and the node's sysctl is never touched (other tests run meanwhile).
"""

import json
import os
import resource
import shutil

import pytest
from helpers.cli import (
    FIXTURE,
    ROOTS,
    cli,
    golden,
    run_cli,
    skip_unless_pid1_maps_unreadable,
    unused_pid,
)
from helpers.patterns import pattern_process
from helpers.workload import Workload, kernel_map_areas

from exporter.cli import main
from exporter.commands.check import parse_size
from exporter.commands.checks_process import map_areas_result
from exporter.procfs import ParseError
from exporter.procfs.meminfo import parse_meminfo


def checks(out: str) -> dict[tuple[str, str], dict]:
    return {(c["scope"], c["check"]): c for c in json.loads(out)["checks"]}


@pytest.fixture
def node(tmp_path):
    """A writable copy of the fixture node: (roots flags, proc dir)."""
    shutil.copytree(FIXTURE, tmp_path / "cli", symlinks=True)
    proc = tmp_path / "cli" / "proc"
    return ["--path.procfs", str(proc), "--path.sysfs", str(tmp_path / "cli" / "sys")], proc


# --- exact output over the fixture node ---------------------------------------

def test_check_of_a_healthy_node_passes(capsys):
    code, out, _ = run_cli(capsys, "check", *ROOTS)
    assert code == 0
    golden("check-node.txt", out)


def test_check_of_processes_and_hugepage_pools_is_exact(capsys):
    code, out, _ = run_cli(capsys, "check", *ROOTS, "--pid", "4242", "--pid", "5150",
                           "--hugepages", "2M:600", "--hugepages", "1G:2", "--hugepages", "2M:504")
    assert code == 1, "the 2 MiB pool has 504 usable pages, not 600, and there is no 1 GiB page"
    golden("check-pids.txt", out)


def test_check_json_has_the_figures(capsys):
    code, out, _ = run_cli(capsys, "check", *ROOTS, "--pid", "4242", "--hugepages", "2M:600", "--json")
    assert code == 1
    got = checks(out)
    huge = got[("node", "hugepages 2 MiB")]
    assert huge["status"] == "FAIL"
    assert huge["data"] == {"pagesize_bytes": 2 << 20, "required": 600, "total": 1024, "free": 512,
                            "reserved": 8, "usable": 504}
    assert huge["fix"][0] == "echo 'vm.nr_hugepages = 1120' >> /etc/sysctl.d/99-vma.conf && sysctl --system"
    data = got[("pid 4242 (ingest worker)", "RLIMIT_DATA")]
    assert data["status"] == "WARN"
    assert data["data"] == {"used_bytes": 60 << 20, "limit_bytes": 64 << 20, "left_bytes": 4 << 20}
    assert got[("pid 4242 (ingest worker)", "map areas")]["data"] == \
        {"map_areas": 51, "max_map_count": 65530, "headroom": 65479}
    assert json.loads(out)["ok"] is False


def test_check_of_the_dpdk_node_fails_and_shows_the_persistent_fix(capsys, node):
    """Incident 004 (docs/incidents.md): DPDK could not map its hugepages on a node with max_map_count 3096."""
    roots, proc = node
    (proc / "sys" / "vm" / "max_map_count").write_text("3096\n")
    code, out, _ = run_cli(capsys, "check", *roots, "--hugepages", "2M:504")
    assert code == 1
    golden("check-dpdk.txt", out)
    assert "fix: echo 'vm.max_map_count = 65530' >> /etc/sysctl.d/99-vma.conf && sysctl --system" in out


def test_an_explicit_lower_minimum_passes_with_a_warning(capsys, node):
    roots, proc = node
    (proc / "sys" / "vm" / "max_map_count").write_text("3096\n")
    code, out, _ = run_cli(capsys, "check", *roots, "--min-max-map-count", "2000", "--json")
    assert code == 0
    result = checks(out)[("node", "vm.max_map_count")]
    assert result["status"] == "WARN" and "below the kernel default 65530" in result["figure"]


def test_a_higher_minimum_fails_a_stock_node(capsys):
    code, out, _ = run_cli(capsys, "check", *ROOTS, "--min-max-map-count", "262144")
    assert code == 1
    assert "FAIL   vm.max_map_count  65530 < 262144 (required)" in out
    assert "echo 'vm.max_map_count = 262144' >> /etc/sysctl.d/99-vma.conf" in out


@pytest.mark.parametrize("limit, status, words", [
    (50, "FAIL", "over the limit"),
    (51, "FAIL", "at the limit: munmap or mprotect of part of an area fails with ENOMEM"),
    (54, "FAIL", "within 3 of the limit: mremap that moves an area fails with ENOMEM; 3 splits"),
    (55, "WARN", "close to the limit: 4 more areas"),
    (57, "OK", "6 more areas before ENOMEM"),
])
def test_map_areas_verdict_at_each_distance_from_a_lowered_limit(capsys, node, limit, status, words):
    roots, proc = node
    (proc / "sys" / "vm" / "max_map_count").write_text(f"{limit}\n")
    code, out, _ = run_cli(capsys, "check", *roots, "--pid", "4242", "--min-max-map-count", "1", "--json")
    result = checks(out)[("pid 4242 (ingest worker)", "map areas")]
    assert result["status"] == status
    assert words in result["verdict"]
    assert code == (1 if status == "FAIL" else 0)


def test_map_areas_result_boundaries_follow_the_kernel():
    # mmap checks count > limit, a split count >= limit, mremap count >= limit - 3.
    assert [map_areas_result("p", n, 100, 0.9).status for n in (89, 90, 96, 97, 99, 100, 101)] == \
        ["OK", "WARN", "WARN", "FAIL", "FAIL", "FAIL", "FAIL"]


def test_strict_overcommit_without_headroom_fails_the_memory_check(capsys, node):
    roots, proc = node
    (proc / "sys" / "vm" / "overcommit_memory").write_text("2\n")
    meminfo = (proc / "meminfo").read_text().replace("Committed_AS:    7340032 kB", "Committed_AS:   10485760 kB")
    (proc / "meminfo").write_text(meminfo)
    code, out, _ = run_cli(capsys, "check", *roots, "--pid", "5150", "--json")
    assert code == 1
    result = checks(out)[("pid 5150 (l2fwd)", "memory available")]
    assert result["status"] == "FAIL"
    assert "Committed_AS is at CommitLimit" in result["verdict"]
    assert "commit headroom 0 B (strict overcommit)" in result["figure"]


def test_low_memory_available_warns_then_fails(capsys, node):
    roots, proc = node
    original = (proc / "meminfo").read_text()
    for available_kb, status in ((1048576, "WARN"), (102400, "FAIL")):
        (proc / "meminfo").write_text(original.replace("MemAvailable:    8388608 kB",
                                                       f"MemAvailable:    {available_kb} kB"))
        _, out, _ = run_cli(capsys, "check", *roots, "--pid", "5150", "--json")
        assert checks(out)[("pid 5150 (l2fwd)", "memory available")]["status"] == status


def test_kernel_threads_and_zombies_have_no_map_areas_to_check(capsys):
    code, out, _ = run_cli(capsys, "check", *ROOTS, "--pid", "2", "--pid", "6000")
    assert code == 1
    assert "pid 2 (kthreadd) is a kernel thread: it has no map areas" in out
    assert "pid 6000 (defunct) is a zombie" in out


@pytest.mark.parametrize("argv, message", [
    (["--hugepages", "2X:10"], "size '2X'"),
    (["--hugepages", "2M"], "want SIZE:COUNT"),
    (["--hugepages", "2M:lots"], "want SIZE:COUNT"),
    (["--pid", "abc"], "not a process id"),
    (["--pid", "-3"], "not a process id"),
])
def test_bad_usage_exits_2_with_the_reason(capsys, argv, message):
    with pytest.raises(SystemExit) as exc:
        main(["check", *ROOTS, *argv])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--min-max-map-count", "0"], ["--warn-ratio", "1.5"]])
def test_bad_values_exit_2(capsys, argv):
    code, _, err = run_cli(capsys, "check", *ROOTS, *argv)
    assert code == 2 and argv[0] in err


@pytest.mark.parametrize("text, size", [("2M", 2 << 20), ("2MB", 2 << 20), ("2MiB", 2 << 20), ("2048k", 2 << 20),
                                        ("2048kB", 2 << 20), ("1G", 1 << 30), ("1gib", 1 << 30), ("4096", 4096)])
def test_parse_size(text, size):
    assert parse_size(text) == size


def test_parse_meminfo_reads_the_lines_check_needs():
    with open(os.path.join(FIXTURE, "proc", "meminfo"), "rb") as f:
        mem = parse_meminfo(f.read())
    assert (mem.total, mem.available, mem.hugepage_size) == (16 << 30, 8 << 30, 2 << 20)
    assert mem.commit_headroom == (10485760 - 7340032) * 1024
    old_kernel = parse_meminfo(b"MemTotal:  1024 kB\nMemFree:  512 kB\n")
    assert old_kernel.available is None and old_kernel.commit_headroom is None
    with pytest.raises(ParseError, match="MemTotal"):
        parse_meminfo(b"MemFree:  512 kB\n")
    with pytest.raises(ParseError, match="MemAvailable"):
        parse_meminfo(b"MemTotal:  1024 kB\nMemAvailable: lots\n")


# --- real processes -------------------------------------------------------------

def lowered_node(tmp_path, pid: int, limit: int) -> list[str]:
    """A procfs whose max_map_count is *limit* and whose PID is the real process."""
    proc = tmp_path / "proc"
    (proc / "sys" / "vm").mkdir(parents=True)
    (proc / "sys" / "vm" / "max_map_count").write_text(f"{limit}\n")
    (proc / "sys" / "vm" / "overcommit_memory").write_text("0\n")
    shutil.copy(os.path.join(FIXTURE, "proc", "meminfo"), proc / "meminfo")
    os.symlink(f"/proc/{pid}", proc / str(pid))
    os.symlink("/proc/stat", proc / "stat")  # what makes a procfs one (cli.checked_roots)
    return ["--path.procfs", str(proc), "--min-max-map-count", "1"]


@pytest.mark.parametrize("extra, status, words", [
    (2, "FAIL", "within 3 of the limit: mremap"),
    (0, "FAIL", "at the limit"),
    (40, "WARN", "close to the limit: 40 more areas"),
])
def test_a_real_process_near_a_lowered_limit(tmp_path, extra, status, words):
    with Workload("areas", 500) as wl:
        count = kernel_map_areas(wl.pid)
        result = cli("check", "--pid", str(wl.pid), "--json", *lowered_node(tmp_path, wl.pid, count + extra))
    got = checks(result.stdout)[(f"pid {wl.pid} (workload)", "map areas")]
    assert got["data"] == {"map_areas": count, "max_map_count": count + extra, "headroom": extra}
    assert got["status"] == status and words in got["verdict"]
    assert result.returncode == (1 if status == "FAIL" else 0)


@pytest.mark.host
def test_a_real_process_whose_munmap_failed_is_reported_at_the_limit():
    """The workload unmaps pages until the kernel refuses: check must say so."""
    with Workload("at-limit") as wl:
        assert wl.detail.startswith("munmap-failed errno=12"), wl.detail  # ENOMEM, from the kernel itself
        result = cli("check", "--pid", str(wl.pid), "--json")
        with open("/proc/sys/vm/max_map_count") as f:
            limit = int(f.read())
    got = checks(result.stdout)[(f"pid {wl.pid} (workload)", "map areas")]
    assert got["data"]["map_areas"] == limit, "the split that failed needed one area past the limit"
    assert got["status"] == "FAIL" and got["verdict"].startswith("at the limit: munmap")
    assert result.returncode == 1


@pytest.mark.parametrize("extra, warn_ratio, status", [
    (0, "0.9", "FAIL"), (512 << 10, "0.9", "FAIL"),  # less than the next ordinary allocation (1 MiB) left
    (4 << 20, "0.01", "WARN"), (1 << 30, "0.9", "OK")])
def test_a_real_process_against_its_rlimit_data(extra, warn_ratio, status):
    with Workload("areas", 10) as wl:
        with open(f"/proc/{wl.pid}/status") as f:
            vmdata = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmData:"))
        limit = vmdata + extra
        resource.prlimit(wl.pid, resource.RLIMIT_DATA, (limit, resource.RLIM_INFINITY))
        result = cli("check", "--pid", str(wl.pid), "--json", "--warn-ratio", warn_ratio)
    got = checks(result.stdout)[(f"pid {wl.pid} (workload)", "RLIMIT_DATA")]
    assert got["data"] == {"used_bytes": vmdata, "limit_bytes": limit, "left_bytes": extra}
    assert got["status"] == status
    assert result.returncode == (1 if status == "FAIL" else 0)
    if status == "FAIL":
        assert "brk, malloc and every private writable mapping" in got["verdict"]


def test_a_process_whose_1mib_mmap_was_refused_under_rlimit_data_fails():
    """The third cause of incident 004 (docs/incidents.md): RLIMIT_DATA 64 MiB, and mmap of 1 MiB already says ENOMEM."""
    with pattern_process("rlimit-data", 64) as p:
        assert p.detail.startswith("refused errno=12"), p.detail  # the kernel refused it
        result = cli("check", "--pid", str(p.pid), "--json")
        text = cli("check", "--pid", str(p.pid)).stdout
    assert result.returncode == 1
    got = checks(result.stdout)[(f"pid {p.pid} (patterns)", "RLIMIT_DATA")]
    assert got["status"] == "FAIL"
    assert got["data"]["limit_bytes"] == 64 << 20 and 0 <= got["data"]["left_bytes"] < 1 << 20
    assert got["verdict"].startswith("RLIMIT_DATA has ") and "left, less than the next ordinary allocation" in got[
        "verdict"]
    assert f"prlimit --pid {p.pid} --data=" in got["fix"][0]
    assert "FAIL   RLIMIT_DATA" in text


def test_rlimit_as_fails_below_one_allocation_and_warns_below_an_arena():
    from exporter.commands.checks_process import rlimit_result
    mib = 1 << 20
    statuses = [rlimit_result("p", "RLIMIT_AS", "VmSize", 1000 * mib, (1000 + left) * mib, 0.99, "x").status
                for left in (0.5, 100, 1000)]
    assert statuses == ["FAIL", "WARN", "OK"]


def test_a_missing_pid_fails_with_a_clear_error():
    pid = unused_pid()
    result = cli("check", "--pid", str(pid))
    assert result.returncode == 1
    assert f"no process with pid {pid} (/proc/{pid} does not exist)" in result.stdout
    assert "Traceback" not in result.stderr


def test_an_unreadable_process_names_cap_sys_ptrace():
    skip_unless_pid1_maps_unreadable()
    result = cli("check", "--pid", "1", "--json")
    assert result.returncode == 1
    got = checks(result.stdout)
    areas = next(c for (scope, name), c in got.items() if scope.startswith("pid 1 ") and name == "map areas")
    assert areas["status"] == "ERROR"
    assert "cannot read /proc/1/maps: permission denied" in areas["verdict"] and "CAP_SYS_PTRACE" in areas["verdict"]
    # status and limits need no ptrace access: those checks still run.
    assert next(c for (scope, name), c in got.items() if scope.startswith("pid 1 ") and name == "RLIMIT_DATA")[
        "status"] in ("OK", "WARN", "FAIL")
