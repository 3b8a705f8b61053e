"""exporter.procfs.paths (Roots, list_pids) and the shared reader errors of exporter.procfs.

Every path is built from the configured roots, so the exporter runs against a
fixture tree; OS errors become Vanished (ENOENT, ESRCH), Denied (EACCES, EPERM)
or ReadFailed (anything else), decided in one place.
"""

import errno
import os
import tempfile

import pytest

from exporter.procfs import Denied, ProcfsError, ReadFailed, Vanished, read_file, translate
from exporter.procfs.paths import Roots, list_pids

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
ROOTS = Roots(os.path.join(FIXTURES, "proc"), os.path.join(FIXTURES, "sys"))


def test_default_roots_are_the_hosts():
    r = Roots()
    assert (r.procfs, r.sysfs) == ("/proc", "/sys")
    assert r.pid(42, "maps") == "/proc/42/maps"
    assert r.proc("sys", "vm", "max_map_count") == "/proc/sys/vm/max_map_count"
    assert r.sys("kernel", "mm", "hugepages") == "/sys/kernel/mm/hugepages"


def test_roots_for_a_host_mounted_elsewhere():
    r = Roots("/host/proc", "/host/sys")
    assert r.pid(1, "mountinfo") == "/host/proc/1/mountinfo"
    assert r.proc("stat") == "/host/proc/stat"
    assert r.sys("devices", "system", "node", "node0") == "/host/sys/devices/system/node/node0"


def test_list_pids_fixture():
    """Numeric entries only (README.md, stat, sys are not processes), sorted as numbers."""
    assert list_pids(ROOTS) == [1, 2, 100, 200, 300, 400, 500, 600, 700, 701, 800, 999]


def test_list_pids_of_the_real_proc_holds_this_process():
    assert os.getpid() in list_pids(Roots())


TRANSLATE = [
    (errno.ENOENT, Vanished),
    (errno.ESRCH, Vanished),  # reading maps of a process that exits mid-read
    (errno.EACCES, Denied),
    (errno.EPERM, Denied),
    (errno.EIO, ReadFailed),
    (errno.EISDIR, ReadFailed),
    (errno.EINVAL, ReadFailed),
]


@pytest.mark.parametrize("code, kind", TRANSLATE, ids=[errno.errorcode[c] for c, _ in TRANSLATE])
def test_translate(code, kind):
    exc = translate(OSError(code, os.strerror(code)), "/proc/42/maps")
    assert type(exc) is kind
    assert isinstance(exc, ProcfsError)
    assert "/proc/42/maps" in str(exc)


def test_read_file_reads_whole_file():
    path = ROOTS.pid(500, "status")
    with open(path, "rb") as f:
        assert read_file(path) == f.read()


def test_read_file_reads_a_file_larger_than_one_read_whole():
    path = ROOTS.pid(400, "maps")  # about 100 KiB: more than the first read
    with open(path, "rb") as f:
        whole = f.read()
    assert len(whole) > 64 * 1024
    assert read_file(path) == whole


@pytest.mark.parametrize("limit", [5, 64 * 1024 + 1])
def test_read_file_reads_at_most_limit_bytes(limit):
    path = ROOTS.pid(400, "maps")
    with open(path, "rb") as f:
        whole = f.read()
    assert read_file(path, limit=limit) == whole[:limit]


@pytest.mark.parametrize("path, kind", [
    (os.path.join(FIXTURES, "proc", "999", "stat"), Vanished),  # pid listed, files gone
    (os.path.join(FIXTURES, "proc", "12345", "stat"), Vanished),
    (os.path.join(FIXTURES, "proc", "1"), ReadFailed),  # a directory: EISDIR
])
def test_read_file_errors(path, kind):
    with pytest.raises(kind, match=os.path.basename(path)):
        read_file(path)


def _read_as_nobody(path: str) -> str:
    """Read *path* with read_file in a forked child that dropped to uid/gid 65534."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never return into pytest
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            try:
                read_file(path)
                result = "read"
            except ProcfsError as exc:
                result = type(exc).__name__
            os.write(w, result.encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        result = f.read().decode()
    os.waitpid(pid, 0)
    return result


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop to another user")
def test_permission_denied_is_denied_for_real(tmp_path):
    """maps needs ptrace read access: another user's process gives EACCES, a counted Denied."""
    assert _read_as_nobody("/proc/1/maps") == "Denied"
    assert _read_as_nobody("/proc/1/status") == "read"  # status needs no ptrace access
    private = tempfile.mkdtemp()
    try:
        os.chmod(private, 0o755)
        secret = os.path.join(private, "secret")
        with open(secret, "w") as f:
            f.write("x")
        os.chmod(secret, 0o600)
        assert _read_as_nobody(secret) == "Denied"
    finally:
        os.unlink(os.path.join(private, "secret"))
        os.rmdir(private)
