"""tracefs for the tests of the ENOMEM trace events: mounted if missing, unmounted after.

The syscall trace events are named by ids that only tracefs gives. This machine
boots without tracefs mounted; a test that needs it mounts it at
/sys/kernel/tracing under the host lock and unmounts it again, so the host is
left as it was (another run waits on the lock rather than losing the mount).
"""

import contextlib
import subprocess

from helpers.host import host_lock

from exporter.bpf import tracepoints

MOUNT_POINT = "/sys/kernel/tracing"


@contextlib.contextmanager
def tracefs_mounted():
    """Yield the tracefs path holding the syscall events, for as long as the block runs."""
    with host_lock():
        try:
            path = tracepoints.find_tracefs(tracepoints.tracefs_candidates())
        except tracepoints.TracefsUnavailable:
            path = None
        if path is not None:
            yield path
            return
        subprocess.run(["mount", "-t", "tracefs", "nodev", MOUNT_POINT], check=True)
        try:
            yield MOUNT_POINT
        finally:
            subprocess.run(["umount", MOUNT_POINT], check=True)
