"""Nothing fails silently: node files that cannot be read, a pass that fails, bad roots,
bad listen addresses, and large or odd inputs.

Each case runs the real daemon (or the real commands) over a copy of the fixture
tree with one thing broken, and checks the metric that says so, the log line that
says so once, and that everything else is still served.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
from collections import Counter

import pytest
import requests

from exporter.commands import COMMANDS
from exporter.procfs.maps import parse_maps, summarize
from exporter.procfs.maps_areas import parse_areas
from helpers.cli import cli, unused_pid
from helpers.daemon import Daemon, one

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")


@pytest.fixture()
def tree(tmp_path):
    """A copy of the fixture node (proc/ and sys/) to break one file of."""
    root = tmp_path / "node"
    for top in ("proc", "sys"):
        shutil.copytree(os.path.join(FIXTURES, top), root / top, symlinks=True,
                        ignore=shutil.ignore_patterns("*.md"))
    return root


def daemon(root, *flags: str, sysfs: str | None = None) -> Daemon:
    return Daemon(f"--path.procfs={root / 'proc'}", f"--path.sysfs={sysfs or root / 'sys'}", *flags)


def success(samples) -> dict[str, float]:
    return {s.labels["file"]: s.value for s in samples["vma_exporter_node_read_success"]}


# --- 1. node reads report themselves ------------------------------------------------------------

def test_every_node_file_reports_success_on_a_whole_node(tree):
    with daemon(tree) as d:
        assert success(d.metrics()) == dict.fromkeys(
            ("max_map_count", "stat", "hugepages", "numa_hugepages", "mountinfo"), 1)


def test_unreadable_max_map_count_is_reported_left_out_and_warned_once(tree):
    os.unlink(tree / "proc" / "sys" / "vm" / "max_map_count")
    with daemon(tree) as d:
        d.metrics()
        samples = d.metrics()
        log = d.log()
    assert success(samples)["max_map_count"] == 0
    assert "vma_node_map_areas_limit" not in samples  # missing, never a default that looks real
    assert one(samples, "vma_process_map_areas", pid="400") == 1022  # the rest is served
    warnings = [line for line in log.splitlines() if "max_map_count" in line and "level=warn" in line]
    assert len(warnings) == 1, log  # two scrapes, one warning
    assert str(tree / "proc" / "sys" / "vm" / "max_map_count") in warnings[0]


def test_no_boot_time_leaves_start_times_out_instead_of_counting_from_the_epoch(tree):
    (tree / "proc" / "stat").write_text("cpu  1 0 1 100 0 0 0 0 0 0\nprocesses 1000\n")  # no btime line
    with daemon(tree) as d:
        samples = d.metrics()
        log = d.log()
    assert success(samples)["stat"] == 0
    assert "vma_process_start_time_seconds" not in samples
    assert one(samples, "vma_process_map_areas", pid="400") == 1022
    assert "no valid btime line" in log


def test_an_unreadable_sysfs_is_said_at_start_and_not_taken_for_no_hugetlb(tree):
    with daemon(tree, sysfs="/nonexistent") as d:
        samples = d.metrics()
        log = d.log()
    assert success(samples)["hugepages"] == 0 and success(samples)["numa_hugepages"] == 0
    assert "vma_node_hugepages" not in samples and "vma_node_numa_hugepages" not in samples
    assert "sysfs unreadable at /nonexistent" in log
    assert one(samples, "vma_process_map_areas", pid="400") == 1022


def test_a_kernel_without_hugetlb_is_a_success_with_no_pools(tree):
    shutil.rmtree(tree / "sys" / "kernel" / "mm" / "hugepages")
    shutil.rmtree(tree / "sys" / "devices")
    with daemon(tree) as d:
        samples = d.metrics()
    assert success(samples)["hugepages"] == 1 and success(samples)["numa_hugepages"] == 1
    assert "vma_node_hugepages" not in samples


def test_missing_mountinfo_is_reported(tree):
    os.unlink(tree / "proc" / "1" / "mountinfo")
    with daemon(tree) as d:
        samples = d.metrics()
    assert success(samples)["mountinfo"] == 0
    # Without the mount points only MAP_HUGETLB areas (/anon_hugepage) are known as hugetlb;
    # the metric above says why the hugetlbfs files count as files now.
    assert one(samples, "vma_process_map_areas", pid="500") == 53
    assert one(samples, "vma_process_map_areas_by_kind", pid="500", kind="hugetlb") == 2  # /anon_hugepage only


def test_a_mountinfo_of_60000_lines_is_read_whole(tree):
    """Kubernetes nodes reach tens of thousands of mounts: a hugetlbfs mount after all of
    them still makes its files hugetlb, as with the short file."""
    path = tree / "proc" / "1" / "mountinfo"
    original = path.read_bytes()
    with daemon(tree) as d:
        before = one(d.metrics(), "vma_process_map_areas_by_kind", pid="500", kind="hugetlb")
    filler = b"".join(b"%d 27 0:%d / /var/lib/kubelet/pods/%08d/volumes/kubernetes.io~projected/token rw,relatime "
                      b"shared:%d - tmpfs tmpfs rw,size=1024k\n" % (100 + i, 100 + i, i, 100 + i)
                      for i in range(60_000))
    path.write_bytes(filler + original)  # the hugetlbfs lines come after 60,000 others
    assert path.stat().st_size > 8 << 20
    with daemon(tree) as d:
        samples = d.metrics()
    assert success(samples)["mountinfo"] == 1
    assert one(samples, "vma_process_map_areas_by_kind", pid="500", kind="hugetlb") == before == 5


# --- 2. a failed pass fails the scrapes that waited for it --------------------------------------

def test_a_failed_pass_answers_500_with_the_reason_and_the_next_scrape_tries_again(tree):
    proc = tree / "proc"
    with daemon(tree) as d:
        assert requests.get(d.url + "/metrics", timeout=60).status_code == 200
        proc.rename(tree / "gone")  # the whole procfs root disappears: nothing can be listed
        r = requests.get(d.url + "/metrics", timeout=60)
        (tree / "gone").rename(proc)
        again = requests.get(d.url + "/metrics", timeout=60)
        log = d.log()
    assert r.status_code == 500
    assert "collection failed" in r.text and "cannot list processes" in r.text and str(proc) in r.text
    assert again.status_code == 200 and "vma_process_map_areas" in again.text
    errors = [line for line in log.splitlines() if "level=error" in line]
    assert len(errors) == 1 and "cannot list processes" in errors[0], log
    assert "Traceback" not in log


# --- 3. one validation of the roots, for the daemon and every command -----------------------------

# The arguments that make each command run (a live pid is filled in). A command added to
# COMMANDS without a line here fails test_every_command_is_covered.
PID = "{pid}"
COMMAND_ARGS = {
    "top": [],
    "diff": [PID, "--interval", "0.1"],
    "snapshot": [PID],
    "check": ["--pid", PID],
    "explain": [PID],
}
BAD_FLAGS = {
    "top": [["-n", "0"], ["--watch", "soon"], ["--count", "-1"], ["--color", "pink"]],
    "diff": [["--interval", "-1"], ["--examples", "-2"], ["--limit", "0"], ["--to", "x.snap"]],
    "snapshot": [[]],  # no pid
    "check": [["--warn-ratio", "2"], ["--min-max-map-count", "0"], ["--hugepages", "2M"], ["--pid", "abc"]],
    "explain": [[], ["--pid", "abc"]],
}


def command_argv(name: str, pid: int) -> list[str]:
    return [name, *(str(pid) if a == PID else a for a in COMMAND_ARGS[name])]


def test_every_command_is_covered():
    assert set(COMMANDS) <= set(COMMAND_ARGS), "add the new command to COMMAND_ARGS and BAD_FLAGS"


@pytest.mark.parametrize("name", COMMANDS)
@pytest.mark.parametrize("procfs, message", [
    ("/nonexistent", "/nonexistent does not exist or is not a directory"),
    (FIXTURES, f"{FIXTURES} is not a procfs mount"),
    (os.path.join(FIXTURES, "proc", "README.md"), "is not a directory"),
], ids=["missing", "not a procfs", "a file"])
def test_a_bad_procfs_exits_2_naming_the_path(name, procfs, message):
    result = cli(*command_argv(name, os.getpid()), f"--path.procfs={procfs}", timeout=60)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "--path.procfs: " in result.stderr and message in result.stderr
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize("name", COMMANDS)
def test_an_unreadable_sysfs_is_said_not_fatal(name):
    helper = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    try:
        result = cli(*command_argv(name, helper.pid), "--path.sysfs=/nonexistent", timeout=60)
    finally:
        helper.communicate("")
    assert "sysfs unreadable at /nonexistent" in result.stdout + result.stderr
    assert result.returncode in (0, 1), result.stderr  # 1: a check failed, never usage or a crash
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize("name", [n for n in COMMANDS if PID in COMMAND_ARGS[n]])
@pytest.mark.parametrize("which", ["unused", "kernel thread", "zero", "text", "negative"])
def test_bad_pids(name, which):
    pid = {"unused": str(unused_pid()), "kernel thread": "2", "zero": "0", "text": "abc", "negative": "-5"}[which]
    argv = [pid if a == PID else a for a in COMMAND_ARGS[name]]
    result = cli(name, *argv, timeout=60)
    expected = 1 if which in ("unused", "kernel thread") else 2
    assert result.returncode == expected, (result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr
    if which == "unused":
        assert f"no process with pid {pid}" in result.stdout + result.stderr


@pytest.mark.parametrize("name, flags", [(n, f) for n in COMMANDS for f in BAD_FLAGS.get(n, [])])
def test_bad_flag_values_exit_2(name, flags):
    args = [str(os.getpid()) if a == PID else a for a in COMMAND_ARGS[name]] if flags != [] else []
    result = cli(name, *args, *flags, timeout=60)
    assert result.returncode == 2, (name, flags, result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr


# --- 4. listen addresses ----------------------------------------------------------------------------

@pytest.mark.parametrize("address", ["256.1.1.1:19979", "no-such-host.invalid:19979", "[::1:19979", "192.0.2.1:19979"])
def test_an_address_wrong_in_itself_exits_2_naming_it(address):
    result = cli("--web.listen-address", address, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "--web.listen-address" in result.stderr and address.split(":")[0].strip("[") in result.stderr
    assert "Traceback" not in result.stderr


def test_a_port_in_use_exits_1_with_its_message():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = cli("--web.listen-address", f"127.0.0.1:{port}", timeout=60)
    assert result.returncode == 1, result.stderr
    assert "Address already in use" in result.stderr and "Traceback" not in result.stderr



# --- 5. odd inputs: a maps file of a kernel before seq_pad -----------------------------------------

# Names after a single space, as kernels before 2.6.28 wrote them (procfs's own fixture
# 26234/maps is such a file), an anonymous area, [heap] and [stack].
OLD_MAPS = (b"00400000-00452000 r-xp 00000000 08:02 173521 /usr/bin/dbus-daemon\n"
            b"00651000-00652000 rw-p 00051000 08:02 173521 /usr/bin/dbus-daemon\n"
            b"00e03000-00e24000 rw-p 00000000 00:00 0 [heap]\n"
            b"7f4f4a3f1000-7f4f4a3f2000 rw-p 00000000 00:00 0 \n"
            b"7f4f4a400000-7f4f4a600000 rw-s 00000000 00:05 4242 /dev/shm/old ring\n"
            b"7ffd4ce41000-7ffd4ce62000 rw-p 00000000 00:00 0 [stack]\n")
OLD_KINDS = {"file": 2, "heap": 1, "anon": 1, "shm": 1, "stack": 1}


def test_a_single_space_maps_line_is_classified_the_same_on_every_path(tree, tmp_path):
    kinds = {k: n for k, n in parse_maps(OLD_MAPS).by_kind.items() if n}
    assert kinds == OLD_KINDS  # the summary of the metrics, top and check
    assert dict(Counter(a.kind for a in parse_areas(OLD_MAPS))) == OLD_KINDS  # diff, snapshot, explain
    for cut in range(1, len(OLD_MAPS)):  # however the file is chunked
        assert {k: n for k, n in summarize([OLD_MAPS[:cut], OLD_MAPS[cut:]]).by_kind.items() if n} == OLD_KINDS
    # The daemon over a node whose pid 600 has such a file.
    (tree / "proc" / "600" / "maps").write_bytes(OLD_MAPS)
    with daemon(tree) as d:
        samples = d.metrics()
    got = {s.labels["kind"]: s.value for s in samples["vma_process_map_areas_by_kind"] if s.labels["pid"] == "600"}
    assert {k: n for k, n in got.items() if n} == OLD_KINDS
    # diff between two saved copies: the shm object that appeared is named, not anonymous.
    before, after = tmp_path / "before.txt", tmp_path / "after.txt"
    before.write_bytes(OLD_MAPS.replace(b"/dev/shm/old ring\n", b"\n").replace(b"rw-s 00000000 00:05 4242 ",
                                                                               b"rw-s 00000000 00:05 4242"))
    after.write_bytes(OLD_MAPS)
    result = cli("diff", "--from", str(before), "--to", str(after), "--json", timeout=60)
    assert result.returncode == 0, result.stderr
    changes = {(c["kind"], c["object"]): c["delta"] for c in json.loads(result.stdout)["changes"]}
    assert changes.get(("shm", "/dev/shm/old ring"), 0) == 1, changes
