"""exporter/sources/known.py: /proc/PID/stat re-read only when the process may have changed.

On a copy of the fixture tree, where the files can be changed under the source's feet:
a process whose /proc inode and statm are unchanged keeps the last pass's stat until its
refresh turn; another inode (a reused pid) or other statm bytes (an exec, any change of
memory) are seen at once. On the real /proc: an exec is seen at the next pass, a process
that turns zombie leaves at the next pass, and quiet processes are not re-read.
"""

import os
import shutil
import subprocess
import sys

import pytest

from exporter.collect import Collector
from exporter.node import NodeReader
from exporter.procfs.paths import Roots
from exporter.sources.known import REFRESH, KnownProcesses
from exporter.sources.procfs import ProcfsSource
from exporter.targets.config import parse_config
from helpers.wait import until
from helpers.workload import unique_comm

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures")
PID = 300  # a plain process of the fixture tree (java)


@pytest.fixture
def tree(tmp_path):
    shutil.copytree(FIXTURE, tmp_path / "fx", symlinks=True)
    return tmp_path / "fx"


def samples(source, tree):
    """One pass of the source over the tree: {pid: sample}."""
    node = NodeReader(Roots(str(tree / "proc"), str(tree / "sys"))).read()
    found = {s.pid: s for s in source.scan(node, None) if not isinstance(s, Exception)}
    source.end_pass()
    return found


def rewrite_comm(tree, pid: int, comm: bytes) -> None:
    path = tree / "proc" / str(pid) / "stat"
    data = path.read_bytes()
    path.write_bytes(data[: data.index(b"(") + 1] + comm + data[data.rindex(b")"):])


def test_an_unchanged_process_keeps_its_stat_until_its_refresh_turn(tree):
    source = ProcfsSource(Roots(str(tree / "proc"), str(tree / "sys")))
    before = samples(source, tree)[PID].comm
    rewrite_comm(tree, PID, b"renamed")  # statm and the inode unchanged: as a prctl rename
    comms = [samples(source, tree)[PID].comm for _ in range(REFRESH)]
    assert comms[0] == before != "renamed", "stat was read again although nothing changed"
    assert "renamed" in comms, f"no refresh within {REFRESH} passes: {comms}"
    assert set(comms[comms.index("renamed"):]) == {"renamed"}, comms
    assert source.known.saved > 0


def test_a_new_inode_is_a_new_process_at_once(tree):
    source = ProcfsSource(Roots(str(tree / "proc"), str(tree / "sys")))
    first = samples(source, tree)[PID]
    # A reused pid: a new directory (a new inode) whose stat has another start time.
    d = tree / "proc" / str(PID)
    shutil.copytree(d, tree / "proc" / "new", symlinks=True)
    shutil.rmtree(d)
    os.rename(tree / "proc" / "new", d)
    stat = (d / "stat").read_bytes()
    fields = stat[stat.rindex(b")") + 2:].split(b" ")
    fields[19] = str(int(fields[19]) + 12345).encode()
    (d / "stat").write_bytes(stat[: stat.rindex(b")") + 2] + b" ".join(fields))
    second = samples(source, tree)[PID]
    assert second.starttime_ticks == first.starttime_ticks + 12345


def test_other_statm_bytes_mean_stat_is_read_again(tree):
    source = ProcfsSource(Roots(str(tree / "proc"), str(tree / "sys")))
    samples(source, tree)
    rewrite_comm(tree, PID, b"exec-d")
    statm = tree / "proc" / str(PID) / "statm"
    fields = statm.read_bytes().split(b" ")
    fields[0] = str(int(fields[0]) + 1).encode()  # one more page of VIRT
    statm.write_bytes(b" ".join(fields))
    again = samples(source, tree)[PID]
    assert (again.comm, again.virtual_bytes % os.sysconf("SC_PAGE_SIZE")) == ("exec-d", 0)


def test_the_cache_holds_only_the_processes_of_the_last_pass():
    known = KnownProcesses()
    known.remember(7, 1, b"1 1 1 1 0 1 0\n", None, (1, 1, 1))
    known.end_pass()
    assert known.lookup(7, 2) is None, "another inode must not match"
    known.end_pass()  # nobody looked pid 7 up: it is gone
    assert known.lookup(7, 1) is None


def watching(*comms):
    rules = ", ".join(f"{{name: {c}, comm: [{c}]}}" for c in comms)
    return Collector(Roots(), parse_config(f"process_names: [{rules}]", "test"))


def test_an_exec_is_seen_at_the_next_pass(tmp_path):
    wrapper, target = unique_comm("wrap"), unique_comm("exec")
    binary = tmp_path / target
    shutil.copy(shutil.which("sleep"), binary)
    script = ("import ctypes, os, sys\n"
              f"ctypes.CDLL(None).prctl(15, ctypes.c_char_p({wrapper!r}.encode()), 0, 0, 0)\n"
              "print('ready', flush=True); sys.stdin.readline()\n"
              f"os.execv({str(binary)!r}, [{str(binary)!r}, '60'])\n")
    collector = watching(wrapper, target)
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        collector.collect()
        assert [p.group for p in collector.collect().processes if p.pid == proc.pid] == [wrapper]
        proc.stdin.write("\n")
        proc.stdin.flush()
        until(lambda: open(f"/proc/{proc.pid}/comm").read().strip() == target, "the exec")
        assert [p.group for p in collector.collect().processes if p.pid == proc.pid] == [target]
    finally:
        proc.kill()
        proc.wait()


def test_a_process_that_turns_zombie_leaves_at_the_next_pass():
    comm = unique_comm("zombie")
    collector = watching(comm)
    proc = subprocess.Popen([sys.executable, "-c", "import ctypes, sys\n"
                             f"ctypes.CDLL(None).prctl(15, ctypes.c_char_p({comm!r}.encode()), 0, 0, 0)\n"
                             "print('ready', flush=True); sys.stdin.readline()"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        collector.collect()
        assert [p.pid for p in collector.collect().processes if p.group == comm] == [proc.pid]
        proc.stdin.write("\n")
        proc.stdin.flush()  # it exits; unreaped, it stays a zombie
        until(lambda: open(f"/proc/{proc.pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z", "the zombie")
        assert [p.pid for p in collector.collect().processes if p.group == comm] == []
    finally:
        proc.kill()
        proc.wait()


def test_quiet_processes_are_not_read_again():
    collector = watching(unique_comm("nobody"))
    collector.collect()
    collector.collect()
    known = collector.source.known
    # This machine's processes are mostly idle: most of them keep their stat.
    listed = len([n for n in os.listdir("/proc") if n.isdigit()])
    assert known.saved > listed // 2, (known.saved, listed)
