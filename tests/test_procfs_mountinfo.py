"""exporter.procfs.mountinfo: hugetlbfs mount points from /proc/PID/mountinfo (proc(5)).

Fields: mount ID, parent ID, major:minor, root, mount point, options, optional
fields (zero or more), "-", filesystem type, source, super options. The kernel
escapes space, tab, newline and backslash in paths as \\040, \\011, \\012, \\134.
"""

import os

import pytest

from exporter.procfs import Vanished
from exporter.procfs.mountinfo import parse_hugetlbfs_mounts, read_hugetlbfs_mounts
from exporter.procfs.paths import Roots

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
ROOTS = Roots(os.path.join(FIXTURES, "proc"), os.path.join(FIXTURES, "sys"))


def mount(point: bytes, fstype: bytes = b"hugetlbfs", optional: bytes = b"shared:22", source: bytes = b"hugetlbfs",
          root: bytes = b"/") -> bytes:
    opt = optional + b" " if optional else b""
    return b"41 24 0:47 %s %s rw,relatime %s- %s %s rw,pagesize=2M\n" % (root, point, opt, fstype, source)


def test_read_fixture():
    assert read_hugetlbfs_mounts(ROOTS) == ["/dev/hugepages", "/mnt/huge 1G"]


def test_reads_pid_1_by_default_and_any_pid_on_request():
    with pytest.raises(Vanished):
        read_hugetlbfs_mounts(ROOTS, pid=100)  # the fixture has mountinfo for pid 1 only


CASES = [
    # data, mount points
    pytest.param(b"", [], id="empty"),
    pytest.param(mount(b"/dev/hugepages", optional=b""), ["/dev/hugepages"], id="no optional fields"),
    pytest.param(mount(b"/dev/hugepages", optional=b"master:1"), ["/dev/hugepages"], id="one optional field"),
    pytest.param(mount(b"/hp", optional=b"shared:2 master:1 propagate_from:3 unbindable"), ["/hp"],
                 id="four optional fields"),
    pytest.param(mount(b"/hp", source=b"nodev"), ["/hp"], id="source 'nodev'"),
    pytest.param(mount(b"/srv/hp", root=b"/dpdk"), ["/srv/hp"], id="bind mount of a subdirectory"),
    pytest.param(mount(b"/dev/shm", fstype=b"tmpfs") + mount(b"/", fstype=b"ext4"), [], id="other filesystems"),
    pytest.param(mount(b"/fake", fstype=b"tmpfs", source=b"hugetlbfs"), [], id="'hugetlbfs' as source of a tmpfs"),
    pytest.param(mount(b"/srv/hugetlbfs", fstype=b"tmpfs"), [], id="'hugetlbfs' in the mount point of a tmpfs"),
    pytest.param(mount(b"/mnt/huge\\0401G"), ["/mnt/huge 1G"], id="escaped space"),
    pytest.param(mount(b"/a\\011b\\012c\\134d"), ["/a\tb\nc\\d"], id="escaped tab, newline, backslash"),
    pytest.param(mount(b"/mnt/a\\040-\\040b"), ["/mnt/a - b"], id="escaped ' - ' in the mount point"),
    pytest.param(mount("/mnt/h\u00fcge".encode()), ["/mnt/h\u00fcge"], id="UTF-8 without escapes"),
    pytest.param(mount(b"/b") + mount(b"/dev/shm", fstype=b"tmpfs") + mount(b"/a"), ["/b", "/a"],
                 id="several, in file order"),
    pytest.param(mount(b"/a") + mount(b"/b")[:40], ["/a"], id="a truncated last line is skipped"),
    pytest.param(mount(b"/a") + mount(b"/b")[: mount(b"/b").index(b" - ") + 3], ["/a"],
                 id="cut right after the separator"),
    pytest.param(b"\n\n" + mount(b"/a") + b"\n", ["/a"], id="blank lines"),
    pytest.param(mount(b"/a").rstrip(b"\n"), ["/a"], id="no final newline"),
    pytest.param(mount("/mnt/h\u00fcge\\040pages".encode()), ["/mnt/h\u00fcge pages"], id="UTF-8 and an escape"),
]


@pytest.mark.parametrize("data, points", CASES)
def test_parse_hugetlbfs_mounts(data, points):
    assert parse_hugetlbfs_mounts(data) == points
