"""exporter.procfs.maps over fixture files and hand-made lines.

/proc/PID/maps (proc(5)): ``start-end perms offset dev inode`` then, for a named
area, padding to column 73 and the name (show_map_vma in fs/proc/task_mmu.c).
The kernel's count of areas is the number of lines less x86-64's ``[vsyscall]``.
Every summary must be the same however the file is cut into chunks.
"""

import itertools
import os
from collections import Counter

import pytest

from exporter.procfs import Vanished
from exporter.procfs.maps import (
    KINDS, MAX_DISTINCT, Classifier, count_areas, iter_chunks, parse_maps, read_map_count, read_maps, summarize,
)
from exporter.procfs.maps_areas import parse_areas
from exporter.procfs.mountinfo import read_hugetlbfs_mounts
from exporter.procfs.paths import Roots

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
ROOTS = Roots(os.path.join(FIXTURES, "proc"), os.path.join(FIXTURES, "sys"))
HUGETLB_MOUNTS = read_hugetlbfs_mounts(ROOTS)  # /dev/hugepages and "/mnt/huge 1G"


def classifier() -> Classifier:
    return Classifier(HUGETLB_MOUNTS)


def line(name: bytes = b"", perms: bytes = b"r--p", start: int = 0x7F0000000000, size: int = 0x1000,
         offset: int = 0, dev: bytes = b"fd:01", inode: int = 1234) -> bytes:
    """One maps line as the kernel writes it: a named area's name starts at column 73,
    or right after two spaces when the fixed fields are longer than that."""
    head = b"%08x-%08x %s %08x %s %d " % (start, start + size, perms, offset, dev, inode)
    if name:
        head = head.ljust(72) + b" " + name
    return head + b"\n"


def kinds(**counts: int) -> dict[str, int]:
    out = dict.fromkeys(KINDS, 0)
    out.update(counts)
    return out


def maps_bytes(pid: int) -> bytes:
    with open(ROOTS.pid(pid, "maps"), "rb") as f:
        return f.read()


def oracle_count(data: bytes) -> int:
    """The kernel's count, the plain way: every line (a cut last one too) less [vsyscall]."""
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return sum(1 for ln in lines if not ln.endswith(b"  [vsyscall]"))


# --- the fixture tree, process by process ---------------------------------------------------------

# pid: (areas, by_kind, deleted, top object, its areas)
FIXTURE_MAPS = {
    1: (26, kinds(anon=2, heap=1, stack=1, file=20, special=2), 0,
        "/usr/lib/systemd/systemd", 5),  # four objects tie at 5: the smallest path wins
    2: (0, kinds(), 0, None, 0),  # kernel thread: empty maps
    100: (20, kinds(anon=1, heap=1, stack=1, file=15, special=2), 0, "/usr/lib/systemd/systemd", 5),
    200: (0, kinds(), 0, None, 0),  # zombie: empty maps
    300: (25, kinds(anon=5, heap=1, stack=3, file=15, special=1), 0,  # [stack:TID] of a 3.10 kernel
          "/usr/lib/jvm/java-1.8.0/jre/lib/amd64/server/libjvm.so", 4),
    400: (1022, kinds(anon=2, heap=1, stack=1, file=15, shm=1000, special=3), 0, "/dev/shm/ingest-buffer", 1000),
    500: (53, kinds(anon=6, heap=1, stack=1, file=22, shm=14, hugetlb=5, special=4), 13,
          "/dev/shm/stale-ring (deleted)", 8),
    600: (13, kinds(anon=1, heap=1, file=11), 0, "/usr/bin/sleep", 5),  # last line cut: still an area
    700: (8, kinds(stack=1, file=5, special=2), 0, "/usr/bin/sleep", 5),
    701: (9, kinds(heap=1, stack=1, file=5, special=2), 0, "/usr/bin/sleep", 5),
    800: (9, kinds(heap=1, stack=1, file=5, special=2), 0, "/opt/weird/bin/weird", 5),
}
PIDS = sorted(FIXTURE_MAPS)
SMALL_PIDS = [p for p in PIDS if p != 400]  # every split point of these is tried


def test_fixture_hugetlbfs_mounts_feed_the_classifier():
    assert HUGETLB_MOUNTS == ["/dev/hugepages", "/mnt/huge 1G"]


@pytest.mark.parametrize("pid", PIDS)
def test_read_maps_fixture(pid):
    areas, by_kind, deleted, top, top_areas = FIXTURE_MAPS[pid]
    s = read_maps(ROOTS, pid, classifier())
    assert (s.areas, s.by_kind, s.deleted, s.top_object, s.top_object_areas) == (
        areas, by_kind, deleted, top, top_areas)


@pytest.mark.parametrize("pid", PIDS)
def test_count_matches_the_plain_count(pid):
    data = maps_bytes(pid)
    expected = FIXTURE_MAPS[pid][0]
    assert oracle_count(data) == expected
    assert count_areas([data]) == expected
    assert read_map_count(ROOTS, pid).areas == expected
    assert not read_map_count(ROOTS, pid).detailed  # the cheap path has no breakdown


@pytest.mark.parametrize("pid", PIDS)
def test_kinds_partition_the_areas(pid):
    s = read_maps(ROOTS, pid, classifier())
    assert set(s.by_kind) == set(KINDS)
    assert sum(s.by_kind.values()) == s.areas
    assert 0 <= s.deleted <= s.areas


def test_hugetlbfs_files_are_files_without_the_mounts():
    """Without mountinfo, a hugetlbfs path looks like any file; /anon_hugepage is hugetlb anyway."""
    s = read_maps(ROOTS, 500, Classifier())
    assert s.by_kind["hugetlb"] == 2  # the two /anon_hugepage (deleted) areas
    assert s.by_kind["file"] == 22 + 3  # rtemap_0, rtemap_1 and "/mnt/huge 1G/rtemap_2"


def test_vanished_pid_raises_vanished():
    with pytest.raises(Vanished):
        read_maps(ROOTS, 999, classifier())
    with pytest.raises(Vanished):
        read_map_count(ROOTS, 999)


# --- chunking: the same summary wherever the cuts fall --------------------------------------------

@pytest.mark.parametrize("pid", SMALL_PIDS)
def test_every_two_chunk_split_gives_the_same_summary(pid):
    data = maps_bytes(pid)
    whole = parse_maps(data, classifier())
    for i in range(len(data) + 1):
        chunks = [data[:i], data[i:]]
        assert summarize(chunks, classifier()) == whole, f"split at byte {i}"
        assert count_areas(chunks) == whole.areas, f"split at byte {i}"


@pytest.mark.parametrize("size", [2, 3, 7, 16, 72, 73, 74, 75, 100, 4095, 4096, 65536])  # 1: see the pure test below
@pytest.mark.parametrize("pid", PIDS)
def test_reading_in_chunks_of_any_size_gives_the_same_summary(pid, size):
    path = ROOTS.pid(pid, "maps")
    whole = parse_maps(maps_bytes(pid), classifier())
    assert summarize(iter_chunks(path, size), classifier()) == whole
    assert count_areas(iter_chunks(path, size)) == whole.areas


# Lines that stress the name regex and the carry between chunks.
UGLY = b"".join([
    line(),  # anonymous: ends "0 \n", one space
    line(b"[heap]", b"rw-p"),
    line(b"/usr/lib/x86_64-linux-gnu/libc.so.6"),
    # fixed fields longer than the pad column: the name follows exactly two spaces
    b"ffffffffff600000-ffffffffff601000 rw-s 1234567890abcdef fd:01 18446744073709551615  /long/header\n",
    line(b"/opt/a  b/two  spaces.bin"),  # a name holding two spaces in a row
    line(b"/tmp/new\\012line"),  # seq_path escapes a newline in a path as \012
    line(b"/dev/shm/obj (deleted)", b"rw-s"),
    line(b"/dev/shm/obj (deleted)", b"rw-s"),
    line(b"/usr/lib/libold.so.1 (deleted)"),
    line(b"/anon_hugepage (deleted)", b"rw-p"),
    line(b"/dev/hugepages/rtemap_0", b"rw-s"),
    line(b"/mnt/huge 1G/rtemap_1", b"rw-s"),
    line(b"[anon:name with space]", b"rw-p"),
    line(b"anon_inode:[perf_event]", b"rw-s"),
    line(),
    line(b"[stack]", b"rw-p"),
    line(b"[vsyscall]", b"--xp", start=0xFFFFFFFFFF600000),
])
UGLY_SUMMARY = (16, kinds(anon=3, heap=1, stack=1, file=5, shm=2, hugetlb=3, special=1), 3, "/dev/shm/obj (deleted)", 2)


def test_ugly_lines_summary():
    s = parse_maps(UGLY, classifier())
    assert (s.areas, s.by_kind, s.deleted, s.top_object, s.top_object_areas) == UGLY_SUMMARY
    assert count_areas([UGLY]) == oracle_count(UGLY) == 16


def _awkward_offsets(data: bytes) -> list[int]:
    """Byte offsets where a cut hurts: around each newline, inside and after the padding,
    at the name, inside " (deleted)" and "[vsyscall]"."""
    points = set()
    pos = 0
    for ln in data.splitlines(keepends=True):
        end = pos + len(ln)
        points.update({pos, pos + 1, end - 2, end - 1, end})
        pad = ln.find(b"  ")
        if pad >= 0:
            name = len(ln) - len(ln[pad:].lstrip(b" "))
            points.update({pos + pad, pos + pad + 1, pos + name - 1, pos + name, pos + name + 1})
        for mark in (b" (deleted)", b"vsys", b"\\012"):
            at = ln.find(mark)
            if at >= 0:
                points.update({pos + at, pos + at + 1})
        pos = end
    return sorted(p for p in points if 0 <= p <= len(data))


def test_three_chunk_splits_at_every_pair_of_awkward_places():
    whole = parse_maps(UGLY, classifier())
    offsets = _awkward_offsets(UGLY)
    assert len(offsets) > 100  # the table above really has many awkward places
    for i, j in itertools.combinations(offsets, 2):
        chunks = [UGLY[:i], UGLY[i:j], UGLY[j:]]
        assert summarize(chunks, classifier()) == whole, f"cuts at {i} and {j}"
        assert count_areas(chunks) == whole.areas, f"cuts at {i} and {j}"


def test_one_byte_chunks_and_empty_chunks():
    whole = parse_maps(UGLY, classifier())
    bytewise = [UGLY[i:i + 1] for i in range(len(UGLY))]
    assert summarize(bytewise, classifier()) == whole
    with_empties = [b""] + list(itertools.chain.from_iterable((c, b"") for c in bytewise))
    assert summarize(with_empties, classifier()) == whole
    assert count_areas(with_empties) == whole.areas


# --- the ugly cases, one table ----------------------------------------------------------------

CASES = [
    # (id, maps bytes, areas)
    ("empty", b"", 0),
    ("only the vsyscall gate", line(b"[vsyscall]", b"--xp", start=0xFFFFFFFFFF600000), 0),
    ("one anonymous line", line(), 1),
    ("anonymous without the trailing newline", line()[:-1], 1),
    ("named line cut inside the padding", line(b"/usr/bin/x")[:60], 1),
    ("named line cut inside the name", line(b"/usr/bin/x")[:78], 1),
    ("vsyscall cut without its newline", line(b"[vsyscall]", b"--xp", start=0xFFFFFFFFFF600000)[:-1], 0),
    ("two areas then the gate", line() + line(b"[heap]") + line(b"[vsyscall]", start=0xFFFFFFFFFF600000), 2),
]


@pytest.mark.parametrize("data, areas", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_area_counts(data, areas):
    s = parse_maps(data, classifier())
    assert s.areas == areas
    assert sum(s.by_kind.values()) == areas
    assert count_areas([data]) == areas
    assert oracle_count(data) == areas


# (name, kind, counted as a deleted file, is the top object)
NAMES = [
    (b"[heap]", "heap", False, False),
    (b"[stack]", "stack", False, False),
    (b"[stack:3011]", "stack", False, False),  # thread stacks on kernels before 4.5
    (b"[vdso]", "special", False, False),
    (b"[vvar]", "special", False, False),
    (b"[vvar_vclock]", "special", False, False),
    (b"[uprobes]", "special", False, False),
    (b"[anon:dpdk-mempool]", "anon", False, False),  # PR_SET_VMA_ANON_NAME, 5.17+
    (b"[anon_shmem:ring]", "shm", False, True),  # named shared anonymous memory, 6.2+
    (b"anon_inode:[perf_event]", "special", False, False),
    (b"anon_inode:[io_uring]", "special", False, False),
    (b"socket:[123456]", "special", False, False),
    (b"/usr/lib/x86_64-linux-gnu/libc.so.6", "file", False, True),
    (b"/usr/lib/x86_64-linux-gnu/libold.so.1 (deleted)", "file", True, True),
    (b"/opt/app/data  with  spaces.bin", "file", False, True),
    (b"/tmp/new\\012line", "file", False, True),
    (b"/dev/shm/ingest-buffer", "shm", False, True),
    (b"/dev/shm/stale-ring (deleted)", "shm", True, True),  # unlinked from /dev/shm, still mapped
    (b"/memfd:dpdk-memseg (deleted)", "shm", False, True),  # memfd never had a name on disk
    (b"/SYSV00000000 (deleted)", "shm", False, True),
    (b"/dev/zero (deleted)", "shm", False, True),  # MAP_SHARED|MAP_ANONYMOUS
    (b"/anon_hugepage (deleted)", "hugetlb", False, True),  # MAP_HUGETLB
    (b"/dev/hugepages/rtemap_0", "hugetlb", False, True),  # a file on a hugetlbfs mount
    (b"/mnt/huge 1G/rtemap_2", "hugetlb", False, True),  # mount point with an escaped space
    (b"/mnt/huge 1Gx/not-hugetlbfs", "file", False, True),  # a sibling directory, not under the mount
    (b"/dev/hugepagesX/file", "file", False, True),
]


@pytest.mark.parametrize("name, kind, deleted, is_object", NAMES, ids=[n[0].decode() for n in NAMES])
def test_kind_of_each_name(name, kind, deleted, is_object):
    s = parse_maps(line(b"/usr/bin/app") + line(name, b"rw-s") + line(name, b"rw-s"), classifier())
    expected = kinds(file=1)
    expected[kind] += 2
    assert s.by_kind == expected
    assert s.deleted == (2 if deleted else 0)
    if is_object:
        assert (s.top_object, s.top_object_areas) == (name.decode(), 2)
    else:
        assert (s.top_object, s.top_object_areas) == ("/usr/bin/app", 1)


# Names the kernel writes for pseudo files that never had a name on disk. The module's own
# rule (is_deleted_file's docstring; the classifier's comment on "dmabuf:") says these are
# neither files nor deleted files. Found here; the fix belongs in exporter/procfs/maps.py.
PSEUDO = [
    pytest.param(b"/[aio] (deleted)", "special", 0),
    pytest.param(b"/dmabuf:", "special", 0),
    pytest.param(b"/dmabuf:gpu-frame", "special", 0),
]


@pytest.mark.parametrize("name, kind, deleted", PSEUDO)
def test_kernel_pseudo_files(name, kind, deleted):
    s = parse_maps(line(name, b"rw-s"), classifier())
    assert s.by_kind == kinds(**{kind: 1})
    assert s.deleted == deleted


def test_unlinked_hugetlbfs_file_is_a_deleted_file():
    s = parse_maps(line(b"/dev/hugepages/rtemap_7 (deleted)", b"rw-s"), classifier())
    assert s.by_kind == kinds(hugetlb=1)
    assert s.deleted == 1


def test_top_object_ties_go_to_the_smaller_name_whatever_the_order():
    a, b = b"/usr/lib/b.so", b"/usr/lib/a.so"
    for order in ([a, b, a, b], [b, a, b, a], [a, a, b, b]):
        s = parse_maps(b"".join(line(n) for n in order))
        assert (s.top_object, s.top_object_areas) == ("/usr/lib/a.so", 2)


def test_top_object_ignores_names_that_are_not_objects():
    data = line(b"/usr/bin/app") + line(b"[heap]") * 3 + line(b"[anon:x]") * 3 + line(b"[vdso]") * 3
    s = parse_maps(data)
    assert (s.top_object, s.top_object_areas) == ("/usr/bin/app", 1)


def test_top_object_of_undecodable_path_is_escaped():
    s = parse_maps(line(b"/data/caf\xe9.bin") * 2)
    assert (s.top_object, s.top_object_areas) == ("/data/caf\\xe9.bin", 2)


def test_short_and_long_addresses_pad_differently_but_name_one_object():
    """A 32-bit address pads the name further right than a 48-bit one: still one object."""
    data = line(b"/lib/ld.so", start=0x00400000) + line(b"/lib/ld.so", start=0x7F0000000000)
    assert data.splitlines()[0].index(b"/lib") == data.splitlines()[1].index(b"/lib")  # both at column 73
    long_head = b"ffffffffff600000-ffffffffff601000 r--p 1234567890abcdef fd:01 18446744073709551615  /lib/ld.so\n"
    s = parse_maps(data + long_head)
    assert (s.top_object, s.top_object_areas) == ("/lib/ld.so", 3)


# --- many distinct names: the tally is folded to bound memory --------------------------------

def _many_distinct(n: int, busy_every: int = 0) -> bytes:
    out = []
    for i in range(n):
        out.append(line(b"/data/shard-%06d.idx" % i, start=0x7F0000000000 + i * 0x1000, inode=i + 1))
        if busy_every and i % busy_every == 0:
            out.append(line(b"/dev/shm/hot", b"rw-s", start=0x600000000000 + i * 0x1000))
    return b"".join(out)


@pytest.fixture(scope="module")
def many_distinct() -> bytes:
    return _many_distinct(MAX_DISTINCT + 500, busy_every=97)


def test_folding_keeps_count_kinds_and_top_object(many_distinct):
    hot = (MAX_DISTINCT + 500 + 96) // 97
    areas = MAX_DISTINCT + 500 + hot
    for chunk in (len(many_distinct), 256 * 1024, 4096):
        chunks = [many_distinct[i:i + chunk] for i in range(0, len(many_distinct), chunk)]
        s = summarize(chunks, classifier())
        assert s.areas == areas == oracle_count(many_distinct)
        assert s.by_kind == kinds(file=MAX_DISTINCT + 500, shm=hot), f"chunk {chunk}"
        assert (s.top_object, s.top_object_areas) == ("/dev/shm/hot", hot), f"chunk {chunk}"
        # Folded names keep their family's areas: 50,500 files that differ only in a number.
        assert s.patterns == (("family", "/data/shard-*.idx", MAX_DISTINCT + 500),), f"chunk {chunk}"


def test_folding_still_leaves_out_the_vsyscall_gate():
    data = _many_distinct(MAX_DISTINCT + 1) + line(b"[vsyscall]", b"--xp", start=0xFFFFFFFFFF600000)
    s = parse_maps(data, classifier())
    assert s.areas == MAX_DISTINCT + 1 == count_areas([data])
    assert s.by_kind == kinds(file=MAX_DISTINCT + 1)


# --- the per-area parser (vma-exporter diff) agrees with the summary ---------------------------

@pytest.mark.parametrize("pid", PIDS)
def test_per_area_parser_agrees_with_the_summary(pid):
    data = maps_bytes(pid)
    whole = parse_maps(data, classifier())
    areas = parse_areas(data, classifier())
    assert len(areas) == whole.areas
    assert Counter(a.kind for a in areas) == Counter({k: n for k, n in whole.by_kind.items() if n})
    if whole.top_object:
        assert sum(1 for a in areas if a.name == whole.top_object) == whole.top_object_areas


def test_per_area_parser_agrees_on_the_ugly_lines():
    areas = parse_areas(UGLY, classifier())
    assert len(areas) == UGLY_SUMMARY[0]
    assert Counter(a.kind for a in areas) == Counter({k: n for k, n in UGLY_SUMMARY[1].items() if n})
    assert [a.name for a in areas if "spaces" in a.name] == ["/opt/a  b/two  spaces.bin"]
    assert [a.name for a in areas if a.inode == 18446744073709551615] == ["/long/header"]
