"""exporter/patterns over maps texts: what holds a process's areas, table-driven.

Each case is a maps text written as the kernel writes it (tests/test_procfs_maps.py's
line()): the summary of the daemon path (maps.summarize, anonymous shapes tallied
in lanes of one big integer per chunk) must name the pattern with its label and
count; the same patterns must come out however the text is cut into chunks, and
from the commands' path over parsed areas (patterns/areas.py, one Python step per
area: an independent computation of the same tallies).
"""

import random

import pytest
from test_procfs_maps import line

from exporter.patterns import Pattern, advice, rank, threads
from exporter.patterns.areas import analyze, findings, shape_keys
from exporter.patterns.labels import parse_size_label, size_label
from exporter.patterns.names import directory_of, family_of
from exporter.procfs.maps import Classifier, parse_maps, summarize
from exporter.procfs.maps_areas import parse_areas
from exporter.procfs.maps_shapes import ShapeTally, decode, encode, tally

K, M = 1 << 10, 1 << 20
BASE = 0x7F0000000000
CLASSIFIER = Classifier(["/dev/hugepages"])


def process(*parts: bytes) -> bytes:
    """A small ordinary process around *parts*: its binary, heap, libc, ld.so, stack."""
    head = b"".join(line(b"/usr/bin/app", p, start=0x55D0C9A4E000 + i * 0x1000, inode=77)
                    for i, p in enumerate((b"r--p", b"r-xp", b"r--p", b"r--p", b"rw-p")))
    head += line(b"[heap]", b"rw-p", start=0x55D0CB000000, size=0x21000, dev=b"00:00", inode=0)
    libs = b"".join(line(name, p, start=0x7FF000000000 + (j * 5 + i) * 0x10000, size=0x10000, inode=10 + j)
                    for j, name in enumerate((b"/usr/lib/x86_64-linux-gnu/libc.so.6",
                                              b"/usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"))
                    for i, p in enumerate((b"r--p", b"r-xp", b"r--p", b"r--p", b"rw-p")))
    tail = line(b"[stack]", b"rw-p", start=0x7FFD00000000, size=0x21000, dev=b"00:00", inode=0)
    tail += line(b"[vsyscall]", b"--xp", start=0xFFFFFFFFFF600000)
    return head + b"".join(parts) + libs + tail


def anon(start: int, size: int, perms: bytes = b"rw-p") -> bytes:
    return line(b"", perms, start=start, size=size, dev=b"00:00", inode=0)


def carved(n: int, start: int = BASE, page: int = 4 * K) -> bytes:
    """A PROT_NONE reservation with every other page made rw-p: n + 1 areas, n of them
    following a neighbour of the other protection."""
    return b"".join(anon(start + i * page, page, b"rw-p" if i % 2 else b"---p") for i in range(n + 1))


def pieces(n: int, start: int = BASE) -> bytes:
    """What munmap of every other page of one mapping leaves: n pieces, holes between."""
    return b"".join(anon(start + 2 * i * 4 * K, 4 * K) for i in range(n))


def stacks(n: int, start: int = BASE, stack: int = 8 * M, guard: int = 4 * K) -> bytes:
    """n thread stacks as glibc lays them out: a ---p guard below each rw-p stack."""
    out = b""
    for i in range(n):
        at = start + i * (stack + guard)
        out += anon(at, guard, b"---p") + anon(at + guard, stack)
    return out


def heaps(n: int, used: int = 132 * K) -> bytes:
    """n glibc arena heaps: 64 MiB aligned, rw-p as far as grown, ---p to the end."""
    out = b""
    for i in range(n):
        at = 0x7E0000000000 + i * 64 * M * 2
        out += anon(at, used) + anon(at + used, 64 * M - used, b"---p")
    return out


def files(names: list[bytes], perms: bytes = b"rw-s", start: int = 0x7D0000000000) -> bytes:
    return b"".join(line(n, perms, start=start + i * 0x2000, inode=100 + i) for i, n in enumerate(names))


# (id, maps text, the expected first pattern, its areas)
CASES = [
    ("one shm object mapped many times", process(files([b"/dev/shm/ring"] * 1000)),
     ("object", "/dev/shm/ring"), 1000),
    ("DPDK: one file per hugepage", process(files([b"/dev/hugepages/rtemap_%d" % i for i in range(3061)])),
     ("family", "/dev/hugepages/rtemap_*"), 3061),
    ("a search index's segments", process(files([b"/var/lib/index/_%s.cfs" % format(i, "x").encode()
                                                 for i in range(3000)], b"r--s")),
     ("directory", "/var/lib/index/"), 3000),
    ("a reservation carved into 10,000 pages", process(carved(10_000)),
     ("anon_shape", "4KiB rw-p/---p alternating"), 10_000),
    ("carved with 64 KiB pages", process(carved(300, page=64 * K)),
     ("anon_shape", "64KiB rw-p/---p alternating"), 300),
    ("munmap in the middle: pieces and holes", process(pieces(5000)),
     ("anon_shape", "4KiB rw-p pieces with holes"), 4999),
    ("1000 thread stacks", process(stacks(1000)), ("thread_stacks", "8MiB rw-p + 4KiB guard"), 2000),
    ("small stacks with a bigger guard", process(stacks(200, stack=256 * K, guard=64 * K)),
     ("thread_stacks", "256KiB rw-p + 64KiB guard"), 400),
    ("glibc malloc arenas", process(heaps(16)), ("malloc_arenas", "64MiB heaps rw-p + ---p"), 32),
    ("one mmap per allocation", process(b"".join(anon(BASE + i * 0x30000, 0x21000) for i in range(500))),
     ("anon_shape", "132KiB rw-p pieces with holes"), 499),
    ("named anonymous areas", process(b"".join(line(b"[anon:pool]", b"rw-p", start=BASE + i * 0x2000, dev=b"00:00",
                                                    inode=0) for i in range(100))),
     ("anon_name", "[anon:pool]"), 100),
    ("an unlinked object keeps its name", process(files([b"/dev/shm/old (deleted)"] * 50)),
     ("object", "/dev/shm/old (deleted)"), 50),
]


@pytest.mark.parametrize("data, first, areas", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_summary_names_what_multiplies(data, first, areas):
    s = parse_maps(data, CLASSIFIER)
    assert s.patterns, "something multiplies"
    assert (s.patterns[0].pattern, s.patterns[0].label) == first
    assert s.patterns[0].areas == areas
    assert len(s.patterns) <= rank.TOP
    assert sum(p.areas for p in s.patterns) <= s.areas, "no area counted twice"


@pytest.mark.parametrize("data", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_patterns_do_not_depend_on_the_chunking(data):
    whole = parse_maps(data, CLASSIFIER)
    for size in (len(data), 256 * K, 4096, 4099, 49 * 3, 1000):
        chunks = [data[i:i + size] for i in range(0, len(data), size)]
        assert summarize(chunks, CLASSIFIER) == whole, f"chunks of {size}"


@pytest.mark.parametrize("data", [c[1] for c in CASES], ids=[c[0] for c in CASES])
def test_the_commands_path_finds_the_same_patterns(data):
    """Parsed areas, one Python step each: the same tallies, so the same list."""
    areas = parse_areas(data, CLASSIFIER)
    chosen = analyze(areas, rank.TOP, rank.MIN_SHARE)
    assert tuple(c.public() for c in chosen) == parse_maps(data, CLASSIFIER).patterns


def test_the_binary_is_never_listed_next_to_a_carved_reservation():
    """Issue 12: 10,022 areas, and the top object was the executable with 5."""
    s = parse_maps(process(carved(10_000)), CLASSIFIER)
    assert s.top_object_areas == 5  # what the top object says, unchanged
    assert [p.label for p in s.patterns] == ["4KiB rw-p/---p alternating"]


def test_an_ordinary_process_lists_nothing_that_multiplies():
    s = parse_maps(process(), CLASSIFIER)
    assert s.patterns == ()


def test_one_object_is_named_rather_than_its_directory():
    """1000 maps of one object and 9 other objects in /dev/shm: the object, not /dev/shm/."""
    data = process(files([b"/dev/shm/ring"] * 1000 + [b"/dev/shm/other-%d" % i for i in range(9)]))
    labels = [p.label for p in parse_maps(data, CLASSIFIER).patterns]
    assert labels == ["/dev/shm/ring"], "the directory holds the object: not listed again"


def test_a_family_is_named_rather_than_its_directory_and_never_twice():
    data = process(files([b"/dev/hugepages/rtemap_%d" % i for i in range(100)] + [b"/dev/hugepages/other"]))
    s = parse_maps(data, CLASSIFIER)
    assert [(p.pattern, p.label, p.areas) for p in s.patterns] == [("family", "/dev/hugepages/rtemap_*", 100)]


def test_two_patterns_in_one_process_are_both_listed_busiest_first():
    data = process(stacks(300), carved(2000, start=0x7A0000000000))
    s = parse_maps(data, CLASSIFIER)
    assert [(p.pattern, p.label, p.areas) for p in s.patterns] == [
        ("anon_shape", "4KiB rw-p/---p alternating", 2001),  # one more: a run's ends may differ by one
        ("thread_stacks", "8MiB rw-p + 4KiB guard", 600)]


def test_carved_pages_next_to_thread_stacks_are_told_apart():
    """Thread guards and carved ---p pages share a shape (4 KiB ---p after rw-p):
    the carved run takes its own, the stacks keep one guard each."""
    data = process(carved(4000), stacks(300, start=0x7B0000000000))
    got = {p.pattern: p.areas for p in parse_maps(data, CLASSIFIER).patterns}
    assert got == {"anon_shape": 4001, "thread_stacks": 600}


# --- the shape keys: the fast lanes and the slow path agree --------------------------------

def _random_maps(seed: int, n: int = 3000) -> bytes:
    rnd = random.Random(seed)
    out, at = [], 0x7F0000000000
    low = 0x400000  # 8-digit addresses take the slow path
    for i in range(n):
        r = rnd.random()
        size = 4 * K * rnd.choice((1, 1, 2, 16, 2048))
        if r < 0.05:
            out.append(anon(low, 4 * K, rnd.choice((b"rw-p", b"r--p"))))
            low += 4 * K * rnd.choice((1, 2))
            continue
        if r < 0.2:
            out.append(line(b"/usr/lib/x%d.so" % (i % 9), b"r-xp", start=at, size=size))
        else:
            out.append(anon(at, size, rnd.choice((b"rw-p", b"---p", b"r-xp", b"rw-s", b"r--p"))))
        at += size + 4 * K * rnd.choice((0, 0, 0, 1, 5))
    return b"".join(sorted(out, key=lambda ln: int(ln.split(b"-")[0], 16)))


def _fed(data: bytes, size: int) -> dict:
    """ShapeTally fed as maps.summarize feeds it, in chunks of *size*."""
    from exporter.procfs.maps import _NAME
    t, carry = ShapeTally(), b""
    for i in range(0, len(data), size):
        buf = carry + data[i:i + size]
        cut = buf.rfind(b"\n") + 1
        if cut:
            n, found = buf.count(b"\n", 0, cut), _NAME.findall(buf, 0, cut)
            if n > len(found):
                t.add_mixed(buf, cut) if found else t.add_pure(buf, cut, n)
        carry = buf[cut:]
    if carry:
        t.add_line(carry)
    return t.counts


@pytest.mark.parametrize("seed", range(6))
def test_fast_lanes_count_what_the_slow_path_counts(seed):
    data = _random_maps(seed) if seed else carved(20_000)
    reference = tally(data)  # record by record, through C-level map calls
    per_area = {}
    for k in shape_keys(parse_areas(data)):  # one Python step per area
        if k is not None:
            per_area[k] = per_area.get(k, 0) + 1
    assert reference == per_area
    for size in (len(data), 256 * K, 49 * 100, 4096, 777):
        assert _fed(data, size) == reference, f"chunks of {size}"


@pytest.mark.parametrize("size, perms, prev, contiguous", [
    (4 * K, b"rw-p", b"---p", True), (8 * M, b"rw-p", b"---p", True), (4 * K, b"---p", b"rw-p", False),
    (1 << 40, b"r-xs", b"rwxp", True), (64 * M - 132 * K, b"---p", b"rw-p", True)])
def test_encode_and_decode_are_inverses(size, perms, prev, contiguous):
    assert decode(encode(size, perms, prev, contiguous)) == (size, perms.decode(), prev.decode(), contiguous)


def test_garbage_never_raises_and_is_not_counted_as_a_shape():
    junk = b"zzzz-yyyy rw-p 00000000 00:00 0 \n" * 10 + b"\x00\xff" * 50 + b"\n"
    s = summarize([junk[:33], junk[33:]])
    assert s.areas == junk.count(b"\n")
    assert s.patterns == ()


# --- names, labels, threads, advice -------------------------------------------------------

@pytest.mark.parametrize("name, directory, family", [
    ("/dev/hugepages/rtemap_12", "/dev/hugepages/", "/dev/hugepages/rtemap_*"),
    ("/var/lib/index/_a.cfs", "/var/lib/index/", None),
    ("/var/lib/index/_1a2.cfs", "/var/lib/index/", "/var/lib/index/_*a*.cfs"),
    ("/dev/shm/ring (deleted)", "/dev/shm/", None),
    ("/data/seg-0001.idx (deleted)", "/data/", "/data/seg-*.idx"),
    ("/memfd:dpdk (deleted)", None, None),
    ("/SYSV00000000 (deleted)", None, None),
    ("/anon_hugepage (deleted)", None, None),
    ("[heap]", None, None),
])
def test_directory_and_family_of_a_name(name, directory, family):
    assert (directory_of(name), family_of(name)) == (directory, family)


@pytest.mark.parametrize("n, text", [(4096, "4KiB"), (8 << 20, "8MiB"), (8188 << 10, "8188KiB"),
                                     (1 << 30, "1GiB"), (3 << 40, "3TiB"), (100, "100B")])
def test_size_labels_are_exact(n, text):
    assert size_label(n) == text
    assert parse_size_label(text) == n


@pytest.mark.parametrize("stacks_, threads_, pattern", [
    (999, 1000, "thread_stacks"),  # a pool too big: every stack has its thread
    (1003, 1000, "thread_stacks"),  # within glibc's cache of 40 MiB of freed stacks (4 of 8 MiB)
    (1004, 1000, "exited_thread_stacks"),
    (30, 1, "exited_thread_stacks"),
])
def test_thread_stacks_are_checked_against_the_thread_count(stacks_, threads_, pattern):
    p = Pattern("thread_stacks", "8MiB rw-p + 4KiB guard", 2 * stacks_)
    assert threads.check((p,), threads_)[0].pattern == pattern
    assert threads.check((p,), None) == (p,), "no thread count: left as it is"


def test_every_pattern_has_advice():
    for _, data, (pattern, label), _n in CASES:
        means, todo = advice.advice(Pattern(pattern, label, 1))
        assert means and todo, pattern
    assert advice.kind_of(Pattern("directory", "/usr/lib/x86_64-linux-gnu/", 40)) == "libraries"


def test_findings_give_the_region_of_each_pattern():
    data = process(carved(1000), files([b"/dev/shm/ring"] * 100, start=0x7C0000000000))
    got = {f.pattern: f for f in findings(parse_areas(data, CLASSIFIER))}
    carve = got["anon_shape"]
    assert (carve.areas, carve.start, carve.end) == (1000, BASE + 4 * K, BASE + 1001 * 4 * K)
    assert carve.mapped == 1000 * 4 * K
    shm = got["object"]
    assert (shm.areas, shm.start, shm.end) == (100, 0x7C0000000000, 0x7C0000000000 + 99 * 0x2000 + 0x1000)
