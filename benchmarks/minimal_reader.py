"""The floor: a minimal reader of the same files the exporter reads.

Per process: stat, status and maps (maps in the same 256 KiB chunks, counting
newlines and nothing else); limits for the processes the exporter exports;
the node files once (max_map_count, btime, mountinfo, the hugepage pools). Whatever the exporter spends above this is its own cost.
"""

import os



def _read(path: str) -> bytes:
    """One os.read of 64 KiB: the cheapest way Python has to read a small proc file."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return b""
    try:
        return os.read(fd, 1 << 16)
    except OSError:
        return b""
    finally:
        os.close(fd)


def _count_lines(path: str) -> int:
    """os.read until EOF (the kernel gives a page per read()), counting newlines."""
    n = 0
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return 0
    try:
        while chunk := os.read(fd, 1 << 16):
            n += chunk.count(b"\n")
    except OSError:
        pass
    finally:
        os.close(fd)
    return n


def _sysfs_pools(sysfs: str) -> None:
    """The hugepage pool counters, node-wide and per NUMA node."""
    for base in [f"{sysfs}/kernel/mm/hugepages"] + [
        f"{sysfs}/devices/system/node/{n}/hugepages"
        for n in os.listdir(f"{sysfs}/devices/system/node") if n.startswith("node") and n[4:].isdigit()
    ]:
        for size in os.listdir(base) if os.path.isdir(base) else ():
            for name in ("nr_hugepages", "free_hugepages", "resv_hugepages", "surplus_hugepages"):
                _read(f"{base}/{size}/{name}")


def read_node(procfs: str = "/proc", limits_for: tuple[int, ...] = (), sysfs: str = "/sys") -> int:
    """Read everything once; return the total map lines (so the work is not optimised away)."""
    total = 0
    for name in os.listdir(procfs):
        if not name.isdigit():
            continue
        base = f"{procfs}/{name}"
        stat = _read(base + "/stat")
        if not stat:
            continue
        fields = stat.rsplit(b")", 1)[-1].split()
        if len(fields) > 6 and int(fields[6]) & 0x00200000:
            continue  # kernel thread: the exporter skips it after reading stat, too
        _read(base + "/status")
        total += _count_lines(base + "/maps")
    for pid in limits_for:
        _read(f"{procfs}/{pid}/limits")
    for path in (f"{procfs}/sys/vm/max_map_count", f"{procfs}/stat", f"{procfs}/1/mountinfo"):
        _read(path)
    _sysfs_pools(sysfs)
    return total
