"""``vma-exporter snapshot PID``: save a process's map areas for a later ``diff``.

Reads /proc/PID/stat (who it is), /proc/PID/maps (the areas, byte for byte),
/proc/sys/vm/max_map_count and /proc/1/mountinfo (where hugetlbfs is mounted,
so a hugetlbfs file is classified right when the file is read elsewhere).

The file is the maps file itself after one header line::

    # vma-exporter snapshot {"version": 1, "pid": 4242, "comm": "java", ...}
    55d0c9a4e000-55d0c9a50000 r--p 00000000 08:01 1316 /usr/bin/java
    ...

so ``diff -u`` and ``grep`` work on it, and a plain copy of the maps file
(``cat /proc/PID/maps > before.txt``, as people do today) is accepted by
``diff`` too, without the header's pid and time.
"""

import json
import os
import sys
import time
from dataclasses import dataclass, field

from exporter.commands.common import (
    CommandError,
    guarded,
    identify,
    pid_arg,
    read_maps_bytes,
    roots_of,
)
from exporter.procfs import ParseError, ProcfsError
from exporter.procfs.maps import Classifier
from exporter.procfs.maps_areas import Area, parse_areas
from exporter.procfs.mountinfo import read_hugetlbfs_mounts
from exporter.procfs.paths import Roots
from exporter.procfs.sysctl import read_max_map_count

MAGIC = b"# vma-exporter snapshot "
VERSION = 1


@dataclass(frozen=True)
class MapsSnapshot:
    """One read of a process's maps, with what is needed to compare it later."""

    data: bytes  # the maps file as the kernel wrote it
    source: str  # "pid 4242" or the path it was loaded from
    pid: int | None = None
    comm: str | None = None
    start_ticks: int | None = None  # with pid: the identity (pids are reused)
    time: float | None = None  # seconds since the epoch when it was read
    max_map_count: int | None = None
    hugetlb_mounts: tuple[str, ...] = field(default=())

    def areas(self) -> list[Area]:
        return parse_areas(self.data, Classifier(self.hugetlb_mounts))

    def header(self) -> dict:
        return {"version": VERSION, "pid": self.pid, "comm": self.comm, "start_ticks": self.start_ticks,
                "time": self.time, "max_map_count": self.max_map_count,
                "hugetlb_mounts": list(self.hugetlb_mounts)}

    def dumps(self) -> bytes:
        return MAGIC + json.dumps(self.header(), sort_keys=True).encode() + b"\n" + self.data


def _node_fact(reader, roots: Roots, default):
    try:
        return reader(roots)
    except (ProcfsError, OSError):
        return default  # a missing node fact leaves a field empty; the areas are what matters


def take(roots: Roots, pid: int) -> MapsSnapshot:
    """Read a live process's maps, checking it is the same process after the read."""
    before = identify(roots, pid)
    mounts = tuple(_node_fact(read_hugetlbfs_mounts, roots, []))
    limit = _node_fact(read_max_map_count, roots, None)
    now = time.time()
    data = read_maps_bytes(roots, pid)
    after = identify(roots, pid)
    if after.starttime_ticks != before.starttime_ticks:
        raise CommandError(f"pid {pid} exited and was reused while its maps were read")
    if not data:
        raise CommandError(f"pid {pid} ({before.comm}) has no map areas (exiting?)")
    return MapsSnapshot(data, f"pid {pid}", pid, before.comm, before.starttime_ticks, now, limit, mounts)


def loads(data: bytes, source: str) -> MapsSnapshot:
    """A snapshot file, or a plain copy of a maps file; validated line by line."""
    meta: dict = {}
    if data.startswith(MAGIC):
        line, _, data = data.partition(b"\n")
        try:
            meta = json.loads(line[len(MAGIC):])
        except ValueError as exc:
            raise CommandError(f"{source}: broken snapshot header: {exc}") from None
        if not isinstance(meta, dict) or meta.get("version") != VERSION:
            raise CommandError(f"{source}: snapshot version {meta.get('version') if isinstance(meta, dict) else '?'}"
                               f" is not {VERSION}; take it again with this vma-exporter")
    if not data.strip():
        raise CommandError(f"{source}: no map areas in the file (empty, or not a maps file)")
    snap = MapsSnapshot(
        data=data, source=source, pid=meta.get("pid"), comm=meta.get("comm"),
        start_ticks=meta.get("start_ticks"), time=meta.get("time"),
        max_map_count=meta.get("max_map_count"), hugetlb_mounts=tuple(meta.get("hugetlb_mounts") or ()))
    try:
        snap.areas()  # refuse anything that is not a maps file now, with its line
    except ParseError as exc:
        raise CommandError(f"{source}: not a snapshot or maps file: {exc}") from None
    return snap


def load(path: str) -> MapsSnapshot:
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise CommandError(f"cannot read {path}: {exc.strerror or exc}") from None
    return loads(data, path)


def register(subparsers, add_common) -> None:
    p = subparsers.add_parser(
        "snapshot", help="save a process's map areas to compare later with diff",
        description="Write the map areas of PID (its /proc/PID/maps, after a header line naming the "
                    "process and the time) to stdout or --output, for `vma-exporter diff --from FILE`.")
    add_common(p)  # cli gives subcommands SUPPRESS defaults: flags before the command stay
    p.add_argument("pid", type=pid_arg, metavar="PID")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")
    p.set_defaults(func=run)


@guarded("snapshot")
def run(args) -> int:
    snap = take(roots_of(args), args.pid)
    out = snap.dumps()
    if not args.output:
        sys.stdout.buffer.write(out)
        sys.stdout.buffer.flush()
        return 0
    tmp = f"{args.output}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(out)
        os.replace(tmp, args.output)  # never leave half a snapshot under the name
    except OSError as exc:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise CommandError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    return 0
