"""exporter.procfs.cmdline: /proc/PID/cmdline and the /proc/PID/exe link (proc(5)).

cmdline holds argv as NUL-terminated strings; it is empty for kernel threads and
zombies. Like prometheus/procfs (which process-exporter uses), trailing NULs are
stripped before splitting, so a process that rewrote its argv into one
space-separated string (setproctitle) gives one argument.
"""

import os

import pytest

from exporter.procfs import Vanished
from exporter.procfs.cmdline import parse_cmdline, read_cmdline, read_exe
from exporter.procfs.paths import Roots

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
ROOTS = Roots(os.path.join(FIXTURES, "proc"), os.path.join(FIXTURES, "sys"))


@pytest.mark.parametrize("pid, argv", [
    (1, ["/sbin/init", "splash"]),
    (2, []),  # kernel thread
    (100, ["(sd-pam)"]),
    (200, []),  # zombie
    (300, ["/usr/lib/jvm/java-1.8.0/jre/bin/java", "-Xmx4g", "-jar", "/opt/app/billing.jar", "--port", "8080"]),
    (500, ["/usr/bin/dpdk-testpmd", "-l", "0-3", "-n", "4", "--", "-i"]),
])
def test_read_cmdline_fixture(pid, argv):
    assert read_cmdline(ROOTS, pid) == argv


CASES = [
    # (id, data, argv)
    ("empty: kernel thread or zombie", b"", []),
    ("one argument", b"/bin/sh\0", ["/bin/sh"]),
    ("several", b"java\0-jar\0app.jar\0", ["java", "-jar", "app.jar"]),
    ("an empty argument inside", b"a\0\0b\0", ["a", "", "b"]),
    ("argument with spaces", b"sh\0-c\0echo a  b\0", ["sh", "-c", "echo a  b"]),
    ("setproctitle: one string, no NUL", b"nginx: worker process", ["nginx: worker process"]),
    ("setproctitle: padded with NULs", b"postgres: checkpointer\0\0\0\0\0", ["postgres: checkpointer"]),
    ("no final NUL (cut at the page)", b"a\0b", ["a", "b"]),
    ("argv[0] empty", b"\0", [""]),
    ("not UTF-8", b"caf\xe9\0", ["caf\ufffd"]),
    ("UTF-8", "h\u00fcgel\0".encode(), ["h\u00fcgel"]),
]


@pytest.mark.parametrize("data, argv", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_parse_cmdline(data, argv):
    assert parse_cmdline(data) == argv


@pytest.mark.parametrize("pid, target", [
    (1, "/usr/lib/systemd/systemd"),
    (100, "/usr/lib/systemd/systemd"),
    (300, "/usr/lib/jvm/java-1.8.0/jre/bin/java (deleted)"),  # replaced on disk while running: suffix kept
    (500, "/usr/bin/dpdk-testpmd"),
])
def test_read_exe_fixture(pid, target):
    assert read_exe(ROOTS, pid) == target


@pytest.mark.parametrize("pid", [2, 999])  # a kernel thread has no exe (ENOENT); 999 is gone
def test_read_exe_without_a_link_is_vanished(pid):
    with pytest.raises(Vanished):
        read_exe(ROOTS, pid)


def test_vanished_cmdline():
    with pytest.raises(Vanished):
        read_cmdline(ROOTS, 999)
