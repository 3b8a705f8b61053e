"""exporter.procfs.cgroup read over the fixture tree (the parser's own table is tests/test_cgroup.py).

Pods and containers are named by the cgroup path: 400 is in a burstable pod
(systemd driver, cgroup v2), 500 in a guaranteed pod, 300 has cgroup v1 lines
only, the others are host processes.
"""

import os

import pytest

from exporter.procfs import Vanished
from exporter.procfs.cgroup import EMPTY, ContainerIdentity, read_cgroup
from exporter.procfs.paths import Roots

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
ROOTS = Roots(os.path.join(FIXTURES, "proc"), os.path.join(FIXTURES, "sys"))


@pytest.mark.parametrize("pid, identity", [
    (400, ContainerIdentity("4f" * 32, "0d1c2b3a-4f5e-6a7b-8c9d-0e1f2a3b4c5d")),
    (500, ContainerIdentity("ab" * 32, "7a9f0c1e-2b3d-4e5f-8a9b-c0d1e2f3a4b5")),
    (1, EMPTY),  # /init.scope
    (2, EMPTY),  # a kernel thread: "0::/"
    (100, EMPTY),  # user.slice
    (300, EMPTY),  # cgroup v1 lines, system.slice
    (600, EMPTY),
])
def test_read_cgroup_fixture(pid, identity):
    assert read_cgroup(ROOTS, pid) == identity


def test_vanished_pid():
    with pytest.raises(Vanished):
        read_cgroup(ROOTS, 999)
