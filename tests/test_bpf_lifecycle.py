"""No leaks across reloads: open and close both BPF objects many times, in one process.

After the last close, this process's open file descriptors must be what they
were before the first open, and none of the BPF programs, maps and links the
kernel lists (bpftool) may be one made since (maps are freed after an RCU
grace period, so that is polled); while open, there must be more of each (so
the check can fail). The kernel lists are host-wide: the host lock keeps other
runs' BPF tests out.
"""

import json
import os
import shutil
import subprocess
import time

import pytest
from helpers.tracefs import tracefs_mounted

from exporter.bpf.enomem import EnomemCounter
from exporter.bpf.tasks import TaskIterator

pytestmark = pytest.mark.root
ROUNDS = 10


def open_fds() -> set[int]:
    return {int(fd) for fd in os.listdir("/proc/self/fd")}


def kernel_objects() -> dict[str, set[int]]:
    bpftool = shutil.which("bpftool") or "/usr/sbin/bpftool"
    if not os.access(bpftool, os.X_OK):
        pytest.skip("bpftool is not installed (scripts/test.sh installs it)")
    out = {}
    for kind in ("prog", "map", "link"):
        listing = subprocess.run([bpftool, "-j", kind, "list"], capture_output=True, text=True, check=True).stdout
        out[kind] = {o["id"] for o in json.loads(listing or "[]")}
    return out


def created_since(before: dict[str, set[int]]) -> dict[str, set[int]]:
    """Objects newer than any in *before*: the kernel numbers each kind from an increasing id."""
    now = kernel_objects()
    return {kind: {i for i in ids if i > max(before[kind], default=0)} for kind, ids in now.items()}


def test_reopening_leaks_no_fd_program_map_or_link(workload_bin):
    with tracefs_mounted():  # holds the host lock too
        fds, kernel = open_fds(), kernel_objects()
        for i in range(ROUNDS):
            with TaskIterator() as tasks, EnomemCounter() as enomem:
                assert tasks.read().processes
                enomem.read()
                if i == 0:
                    during = created_since(kernel)
                    assert len(open_fds()) > len(fds)
                    # one iterator program and twelve tracepoint programs, their maps and links
                    assert len(during["prog"]) >= 13 and during["map"] and during["link"]
        assert open_fds() == fds
        # The kernel frees a map after an RCU grace period, from a workqueue: poll.
        deadline = time.monotonic() + 30
        left = created_since(kernel)
        while any(left.values()):
            assert time.monotonic() < deadline, f"left in the kernel after close: {left}"
            time.sleep(0.05)
            left = created_since(kernel)
