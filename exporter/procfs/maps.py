"""/proc/PID/maps: the kernel's count of map areas, by kind, the busiest object, and what multiplies.

proc(5). One line per map area (VMA)::

    start-end perms offset dev inode[ padding name]

The kernel counts every line except x86-64's ``[vsyscall]`` gate area, which is
not a VMA of the process (``mm->map_count`` does not include it).

Speed is the point here: a process can hold a million areas and the kernel
spends ~100 ns producing each line, so anything per line in Python would cost
more than the kernel does. The file is read in large chunks (never held whole)
and each chunk is handled by C-speed calls only: ``bytes.count`` for the line
count and one ``re.findall`` that returns just the *named* lines' names, which
a ``Counter`` tallies. Work per name happens once per *distinct* name.

Why the regex is exact: the kernel ends the fixed fields with a space and then
pads the name to a column with ``seq_pad(m, ' ')``, which writes at least one
more space; so a name always follows two spaces, and no fixed field ever holds
two spaces in a row (show_map_vma in fs/proc/task_mmu.c; since 3.x).
Anonymous lines end in ``"0 \\n"``: a single space.

What multiplies (MapsSummary.patterns) comes from the same read: the names
tallied here, grouped by directory and family once per distinct name, and the
anonymous lines' shapes, tallied per chunk by maps_shapes.py; exporter/patterns
ranks them.
"""

import os
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Iterator

from exporter.patterns import Pattern, rank
from exporter.patterns.names import NameGroups
from exporter.procfs import DeadlineExceeded, translate
from exporter.procfs.maps_shapes import ShapeTally
from exporter.procfs.paths import Roots

KINDS = ("anon", "heap", "stack", "file", "shm", "hugetlb", "special")

CHUNK = 256 * 1024  # bytes per read(): few syscalls, bounded memory
# Distinct names kept per process before the tally is folded; bounds memory on
# a process that maps hundreds of thousands of distinct files.
MAX_DISTINCT = 50_000

# The literal two-space prefix lets the regex engine skip through anonymous lines
# at memchr-like speed (3x faster than "  +(...)"); the rest of the padding stays
# in the match and is stripped once per distinct name in _finish.
_NAME = re.compile(rb"  ( *[^ \n][^\n]*)")
# Kernels before 2.6.28's seq_pad wrote the name after a single space (procfs's own fixture
# 26234/maps has such lines). The inode field follows the device's "major:minor", so a
# name after one space is ":MINOR INODE NAME". A kernel writes one format or the other,
# never both: the file's first line with a name decides (_name_format).
_SINGLE_SPACE_NAME = re.compile(rb":[0-9a-f]+ \d+ +([^ \n][^\n]*)")
_DELETED = b" (deleted)"
_OBJECT_KINDS = ("file", "shm", "hugetlb")  # kinds with a path: candidates for the top object
# Kernel pseudo files whose name starts with "/" but that never had one on disk:
# io_setup()'s ring (fs/aio.c) and dma-buf (dmabuffs_dname in drivers/dma-buf/dma-buf.c).
_PSEUDO_PREFIXES = (b"/[aio]", b"/dmabuf:")
_SHM_PREFIXES = (b"/dev/shm/", b"/SYSV", b"/memfd:", b"/dev/zero", b"[anon_shmem:")


@dataclass(frozen=True)
class MapsSummary:
    """The count, and (when ``detailed``) the breakdown by kind, the top object and the patterns."""

    areas: int
    by_kind: dict[str, int] = field(default_factory=dict)
    deleted: int = 0
    top_object: str | None = None
    top_object_areas: int = 0
    # What holds most of the areas, busiest first (exporter/patterns): at most rank.TOP.
    patterns: tuple[Pattern, ...] = ()

    @property
    def detailed(self) -> bool:
        return bool(self.by_kind)


class Classifier:
    """Kind of a named area; knows the node's hugetlbfs mount points.

    A MAP_HUGETLB anonymous area shows as ``/anon_hugepage (deleted)``; a file
    on hugetlbfs shows its path, so the mount points (read per collection from
    mountinfo) tell those apart from ordinary files.
    """

    def __init__(self, hugetlb_mounts: Iterable[str] = ()):
        self._huge = tuple(m.rstrip("/").encode() + b"/" for m in hugetlb_mounts if m)
        self.mounts = self._huge  # part of what a cached summary depends on
        self._cache: dict[bytes, tuple[str, bool, bool]] = {}

    def kind(self, name: bytes) -> str:
        return self.info(name)[0]

    def info(self, name: bytes) -> tuple[str, bool, bool]:
        """(kind, backed by a deleted file, is an object) for a name; cached."""
        info = self._cache.get(name)
        if info is None:
            kind = self._classify(name)
            info = (kind, is_deleted_file(name, kind), kind in _OBJECT_KINDS)
            if len(self._cache) > 20_000:  # names are mostly shared libraries; keep it small
                self._cache.clear()
            self._cache[name] = info
        return info

    def _classify(self, name: bytes) -> str:
        if name.startswith(b"["):
            if name == b"[heap]":
                return "heap"
            if name.startswith(b"[stack"):
                return "stack"
            if name.startswith(b"[anon_shmem:"):
                return "shm"
            if name.startswith(b"[anon:"):
                return "anon"
            return "special"  # [vdso], [vvar], [uprobes], ...
        if not name.startswith(b"/"):
            return "special"  # anon_inode:[perf_event], socket:[...], dmabuf: ...
        if name.startswith(_PSEUDO_PREFIXES):
            return "special"
        if name.startswith(b"/anon_hugepage") or (self._huge and name.startswith(self._huge)):
            return "hugetlb"
        if name.startswith(_SHM_PREFIXES):
            return "shm"
        return "file"


def is_deleted_file(name: bytes, kind: str) -> bool:
    """An area backed by a file unlinked from a filesystem (an old library, a
    removed /dev/shm object). memfd, SysV, /dev/zero and /anon_hugepage objects
    never had a name on disk and always read "(deleted)"; they are left out."""
    if not name.endswith(_DELETED):
        return False
    if kind == "file":
        return True
    if kind == "hugetlb":  # a hugetlbfs file unlinked while mapped (DPDK --huge-unlink)
        return not name.startswith(b"/anon_hugepage")
    return kind == "shm" and name.startswith(b"/dev/shm/")


def summarize(chunks: Iterable[bytes], classifier: Classifier | None = None,
              patterns: bool = True) -> MapsSummary:
    """Summarize maps content given as consecutive chunks of bytes (pure).

    With *patterns* (the default) the summary also says what holds most of
    the areas (exporter/patterns): the names are tallied anyway, and the
    anonymous lines' shapes are tallied per chunk by maps_shapes.
    """
    classifier = classifier or Classifier()
    lines = 0
    names: Counter[bytes] = Counter()
    folded: Counter[str] = Counter()  # kind counts of names folded out of `names`
    folded_deleted = 0
    shapes = ShapeTally() if patterns else None
    groups = NameGroups() if patterns else None
    carry = b""
    name_re = None  # decided by the first complete line with a name
    for chunk in chunks:
        buf = carry + chunk if carry else chunk
        cut = buf.rfind(b"\n") + 1
        if cut:
            n = buf.count(b"\n", 0, cut)
            if name_re is None:
                name_re = _name_format(buf, cut)
            found = (name_re or _NAME).findall(buf, 0, cut)  # undecided: no line has a name yet
            lines += n
            names.update(found)
            if shapes is not None and n > len(found):  # some lines are anonymous
                if found:
                    shapes.add_mixed(buf, cut)
                else:
                    shapes.add_pure(buf, cut, n)
        carry = buf[cut:]
        if len(names) > MAX_DISTINCT:
            folded_deleted += _fold(names, folded, classifier, groups)
    if carry:  # a last line without newline (truncated file): still an area
        lines += 1
        found = (name_re or _name_format(carry, len(carry)) or _NAME).findall(carry)
        names.update(found)
        if shapes is not None and not found:
            shapes.add_line(carry)
    return _finish(lines, names, folded, folded_deleted, classifier, shapes, groups)


def _name_format(buf: bytes, end: int) -> re.Pattern | None:
    """The regex that finds names in this file, decided by its first line with a name:
    the padded one, unless that line has its name after a single space (a kernel before
    seq_pad). None while no line up to *end* has a name: the decision waits for one, so
    that every chunking of a file decides as the whole file does."""
    padded = _NAME.search(buf, 0, end)
    single = _SINGLE_SPACE_NAME.search(buf, 0, end)
    if single is None:
        return _NAME if padded is not None else None
    if padded is None:
        return _SINGLE_SPACE_NAME
    # A padded line matches both; the first line with either decides.
    line_of = buf.rfind
    return _NAME if line_of(b"\n", 0, padded.start()) <= line_of(b"\n", 0, single.start()) else _SINGLE_SPACE_NAME


def _fold(names: Counter, folded: Counter, classifier: Classifier, groups: "NameGroups | None") -> int:
    """Move all but the busiest names into per-kind totals; return deleted areas moved."""
    names_ = _strip_padding(names)
    names.clear()
    names.update(names_)
    keep = dict(names.most_common(1000))
    if b"[vsyscall]" in names:  # never folded: _finish() must find it to leave it out of the count
        keep[b"[vsyscall]"] = names[b"[vsyscall]"]
    deleted = 0
    for name, n in names.items():
        if name not in keep:
            kind, is_deleted, is_object = classifier.info(name)
            folded[kind] += n
            deleted += n if is_deleted else 0
            if is_object and groups is not None:  # its directory and family keep its areas
                groups.add(_text(name), n)
    if groups is not None:
        groups.bound()
    names.clear()
    names.update(keep)
    return deleted


def _strip_padding(names: Counter) -> Counter:
    """Merge names that differ only in padding (short and long addresses pad differently)."""
    merged: Counter[bytes] = Counter()
    for name, n in names.items():
        merged[name.lstrip(b" ")] += n
    return merged


def _text(name: bytes) -> str:
    return name.decode("utf-8", "backslashreplace")


def _finish(lines, names, folded, deleted, classifier, shapes=None, groups=None) -> MapsSummary:
    names = _strip_padding(names)
    by_kind = dict.fromkeys(KINDS, 0)
    for kind, n in folded.items():
        by_kind[kind] += n
    vsyscall = names.pop(b"[vsyscall]", 0)
    areas = lines - vsyscall
    named = sum(folded.values()) + sum(names.values())
    top_name, top_n = None, 0
    info = classifier.info
    objects: dict[str, int] = {}
    anon_names: dict[str, int] = {}
    for name, n in names.items():  # once per distinct name, not per line
        kind, is_deleted, is_object = info(name)
        by_kind[kind] += n
        if is_deleted:
            deleted += n
        # Ties go to the smaller name so the label is stable from scrape to scrape.
        if is_object and (n > top_n or (n == top_n and name < top_name)):
            top_name, top_n = name, n
        if groups is not None:
            if is_object:
                text = _text(name)
                objects[text] = n
                groups.add(text, n)
            elif kind == "anon" and name.startswith(b"[anon:"):
                anon_names[_text(name)] = n
    by_kind["anon"] += areas - named
    found = ()
    if shapes is not None:
        found = rank.patterns(rank.analyze(areas, objects, groups, anon_names, shapes.counts))
    return MapsSummary(
        areas=areas,
        by_kind=by_kind,
        deleted=deleted,
        top_object=_text(top_name) if top_name else None,
        top_object_areas=top_n,
        patterns=found,
    )


def count_areas(chunks: Iterable[bytes]) -> int:
    """Only the kernel's count: lines less the [vsyscall] gate line (pure).

    The cheap path for processes that get no per-process series: two C calls
    per chunk. The gate area has the highest address, so it is the last line.
    """
    lines, tail = 0, b""
    for chunk in chunks:
        lines += chunk.count(b"\n")
        tail = chunk[-16:] if len(chunk) >= 16 else (tail + chunk)[-16:]
    if tail and not tail.endswith(b"\n"):
        lines += 1  # a truncated last line is still an area
    return lines - 1 if tail.rstrip(b"\n").endswith(b"[vsyscall]") else lines


def parse_maps(data: bytes, classifier: Classifier | None = None) -> MapsSummary:
    """Summarize a whole maps file given as bytes (pure; for tests and tools)."""
    return summarize((data,), classifier)


def iter_chunks(path: str, size: int = CHUNK, deadline: float | None = None) -> Iterator[bytes]:
    """Yield a file's content in chunks of *size*, translating OS errors for the caller.

    seq_file hands out at most one page per read() of /proc/PID/maps. The
    pages are gathered into chunks of about *size* bytes, so the parsing above
    runs once per chunk, not once per page. os.read rather than a buffered
    open(): a BufferedReader with a 256 KiB buffer cost more than reading the
    whole maps of a small process (50 us against 23 us here).
    Past *deadline* (time.monotonic()) it raises DeadlineExceeded between
    chunks: one process of a million areas must not overrun --collect.timeout.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise translate(exc, path) from None
    try:
        parts: list[bytes] = []
        held = 0
        while page := os.read(fd, 65536):
            parts.append(page)
            held += len(page)
            if held >= size:
                yield parts[0] if len(parts) == 1 else b"".join(parts)
                parts, held = [], 0
                if deadline is not None and time.monotonic() > deadline:
                    raise DeadlineExceeded(path)
        if parts:
            yield parts[0] if len(parts) == 1 else b"".join(parts)
    except OSError as exc:
        raise translate(exc, path) from None
    finally:
        os.close(fd)


def read_maps(roots: Roots, pid: int, classifier: Classifier | None = None, tid: int | None = None) -> MapsSummary:
    return summarize(iter_chunks(roots.pid(pid, "maps", tid)), classifier)


def count_map_areas(roots: Roots, pid: int, tid: int | None = None, deadline: float | None = None) -> int:
    """The kernel's count of a process's map areas, read with the least work per process.

    The path taken for every watched process on every scrape, so it is a plain
    read loop rather than iter_chunks' generator: newlines counted per read, the
    [vsyscall] gate line (the highest address) looked for at the end. Past
    *deadline* it raises DeadlineExceeded (checked every 16 reads).
    """
    path = roots.pid(pid, "maps", tid)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise translate(exc, path) from None
    lines = reads = 0
    prev = last = b""
    try:
        while chunk := os.read(fd, 65536):
            lines += chunk.count(b"\n")
            prev, last = last, chunk
            if deadline is not None:
                reads += 1
                if not reads & 15 and time.monotonic() > deadline:
                    raise DeadlineExceeded(path)
    except OSError as exc:
        raise translate(exc, path) from None
    finally:
        os.close(fd)
    tail = last[-16:] if len(last) >= 16 else (prev + last)[-16:]  # a regular file may end in a short read
    if tail and not tail.endswith(b"\n"):
        lines += 1  # a truncated last line is still an area
    return lines - 1 if tail.rstrip(b"\n").endswith(b"[vsyscall]") else lines


def read_map_count(roots: Roots, pid: int, deadline: float | None = None) -> MapsSummary:
    """The count alone, as a summary that is not ``detailed`` (for the commands)."""
    return MapsSummary(count_map_areas(roots, pid, deadline=deadline))
