"""Hostile and broken input.

1. Every parser in exporter/procfs/ (found by walking the package, so a new one
   is covered the day it lands) is fed arbitrary bytes, truncated and spliced
   real files: it returns a result or raises ProcfsError, nothing else.
2. Properties with an oracle: maps summarized in any chunking equals the whole;
   maps, stat, status, limits and cmdline generated line by line read back.
3. A fixture tree with files that cannot be read (EACCES, EIO, EISDIR) and
   garbage still gives a full scrape with exact error counters.
4. A real process mapping a 4,000-byte path full of quotes, backslashes and
   newlines: the label is escaped and bounded, the exposition parses and lints.
"""

import ctypes
import glob
import importlib
import importlib.util
import inspect
import math
import os
import pkgutil
import re
import shutil
import stat as stat_mode
import subprocess
import sys
import tempfile
import textwrap
from collections import Counter

import pytest
import requests
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import exporter.procfs
from exporter.metrics import MAX_LABEL_CHARS
from exporter.procfs import ProcfsError
from exporter.procfs.cmdline import parse_cmdline
from exporter.procfs.limits import parse_limits
from exporter.procfs.maps import Classifier, parse_maps, summarize
from exporter.procfs.stat import parse_stat
from exporter.procfs.status import parse_status
from helpers.daemon import Daemon, one

HERE = os.path.dirname(os.path.abspath(__file__))
FIXTURE = os.path.join(HERE, "fixtures", "hostile")
# tests/fixtures/hostile/make.py writes the tree; its helpers and constants are the cases' source.
_spec = importlib.util.spec_from_file_location("hostile_fixture_make", os.path.join(FIXTURE, "make.py"))
hostile_tree = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hostile_tree)

HYPO = settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck), database=None)


# --- 1. every parser: a result or ProcfsError ---------------------------------------------

def discover_parsers() -> dict[str, callable]:
    """Every pure function of exporter.procfs.* that turns content into data."""
    found = {}
    for info in pkgutil.iter_modules(exporter.procfs.__path__):
        module = importlib.import_module(f"exporter.procfs.{info.name}")
        for name, fn in vars(module).items():
            if inspect.isfunction(fn) and fn.__module__ == module.__name__ and \
                    (name.startswith("parse") or name in ("summarize", "count_areas")):
                found[f"{info.name}.{name}"] = fn
    return found


PARSERS = discover_parsers()


def test_discovery_finds_the_parsers():
    # If a rename hid a parser from discovery, the property below would silently test less.
    for name in ("stat.parse_stat", "stat.parse_boot_time", "status.parse_status", "limits.parse_limits",
                 "maps.summarize", "maps.parse_maps", "mountinfo.parse_hugetlbfs_mounts",
                 "cmdline.parse_cmdline", "sysctl.parse_int", "hugepages.parse_size_dir"):
        assert name in PARSERS


def caller(fn):
    """Call *fn* with fuzzed content in its first parameter and sensible values in the rest."""
    params = list(inspect.signature(fn).parameters.values())
    first = str(params[0].annotation)
    rest = []
    for p in params[1:]:
        if p.default is not inspect.Parameter.empty:
            rest.append(Classifier(["/dev/hugepages"]) if "Classifier" in str(p.annotation) else p.default)
        else:
            rest.append(Classifier(["/dev/hugepages"]) if "Classifier" in str(p.annotation) else "fuzz")
    if "Iterable" in first:  # summarize, count_areas: chunks
        return lambda data: fn([data[: len(data) // 3], data[len(data) // 3:]], *rest)
    if first in ("<class 'str'>", "str"):
        return lambda data: fn(data.decode("utf-8", "surrogateescape"), *rest)
    return lambda data: fn(data, *rest)


def _samples() -> list[bytes]:
    """Real files of this machine and of the fixture trees, to truncate and splice."""
    out = []
    for path in ["/proc/self/" + n for n in ("stat", "status", "limits", "maps", "mountinfo", "cgroup", "cmdline")] \
            + ["/proc/meminfo", "/proc/stat", "/proc/sys/vm/max_map_count"] \
            + sorted(glob.glob(os.path.join(HERE, "fixtures", "*", "proc", "*", "*")))[:200]:
        try:
            with open(path, "rb") as f:
                out.append(f.read(1 << 16))
        except OSError:
            continue  # unreadable or a directory: hostile cases of their own, exercised below
    return [s for s in out if s]


SAMPLES = _samples()
TOKENS = [b"\n", b" ", b"  ", b"\t", b"(", b")", b") (", b":", b"\0", b"\\", b"\\012", b"\\040", b"\xff\xfe",
          b"kB", b" kB", b"unlimited", b"-", b"-1", b"+1", b"0x10", b"1_000", b"nan", b"inf", b"1e400",
          b"18446744073709551616", b"99999999999999999999999", b"[vsyscall]", b"/anon_hugepage (deleted)",
          b" (deleted)", b"hugetlbfs", b" - ", b"Uid:", b"VmSize:", b"Max data size", b"btime ", b"Limit"]


@st.composite
def hostile_bytes(draw) -> bytes:
    mode = draw(st.integers(0, 3))
    if mode == 0 or not SAMPLES:
        return draw(st.binary(max_size=600))
    data = draw(st.sampled_from(SAMPLES))
    if mode == 1:  # a short read
        return data[: draw(st.integers(0, len(data)))]
    for _ in range(draw(st.integers(1, 4))):  # splice tokens or random bytes in
        i = draw(st.integers(0, len(data)))
        j = draw(st.integers(i, min(len(data), i + 30)))
        data = data[:i] + draw(st.one_of(st.sampled_from(TOKENS), st.binary(max_size=12))) + data[j:]
    if mode == 3:  # lines reordered or doubled
        lines = data.split(b"\n")
        data = b"\n".join(draw(st.permutations(lines)) + draw(st.lists(st.sampled_from(lines), max_size=3)))
    return data


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_parser_returns_a_result_or_its_own_error(name):
    call = caller(PARSERS[name])

    @HYPO
    @given(hostile_bytes())
    @example(b"")
    @example(b"\n" * 100)
    @example(b"\xff" * 100)
    def check(data):
        try:
            call(data)
        except ProcfsError:
            pass  # the parser's own error: the caller counts it as reason="parse"

    check()


# Inputs no kernel writes but a corrupted or malicious tree can hold. Each must be a result or
# a ParseError. These found the bugs fixed in b2e7ef5 (int() past 4,300 digits, float() overflow,
# btime nan/inf, mountinfo read as Latin-1); they stay as regression tests.
HUGE = b"9" * 5000  # past Python's 4,300-digit limit on int(): ValueError
WIDE = b"9" * 400  # past float's range: OverflowError


def _limits(value: bytes) -> bytes:
    return b"Limit  Soft Limit  Hard Limit  Units\nMax data size  %s  unlimited  bytes\n" \
           b"Max address space  unlimited  unlimited  bytes\n" % value


@pytest.mark.parametrize("name, data", ids=lambda v: v if isinstance(v, str) else f"{len(v)}B", argvalues=[
    ("stat.parse_stat", b"1 (x) S " + b" ".join([HUGE] * 25)),
    ("sysctl.parse_int", HUGE),
    ("cmdline.parse_cmdline", HUGE + b"\0" + b"\xff" * 100),
    pytest.param("limits.parse_limits", _limits(WIDE)),
    pytest.param("status.parse_status", b"Name:\tx\nVmSize:\t" + HUGE + b" kB\n"),
    pytest.param("status.parse_status", b"Name:\tx\nUid:\t0\t" + HUGE + b"\t0\t0\n"),
    pytest.param("meminfo.parse_meminfo", b"MemTotal: " + HUGE + b" kB\n"),
    pytest.param("hugepages.parse_size_dir", b"hugepages-" + HUGE + b"kB"),
])
def test_huge_numbers(name, data):
    if name not in PARSERS:
        pytest.skip(f"{name} no longer exists")
    try:
        caller(PARSERS[name])(data)
    except ProcfsError:
        pass


@pytest.mark.parametrize("value", [b"nan", b"inf", b"1e400", HUGE], ids=["nan", "inf", "1e400", "5000-digits"])
def test_boot_time_is_a_finite_number_or_an_error(value):
    from exporter.procfs.stat import parse_boot_time
    try:
        assert math.isfinite(parse_boot_time(b"cpu 1 2\nbtime " + value + b"\n"))
    except ProcfsError:
        pass


def test_mountinfo_keeps_utf8_mount_points():
    from exporter.procfs.mountinfo import parse_hugetlbfs_mounts
    line = "40 22 0:38 / /mnt/hüge\\040pages rw - hugetlbfs none rw\n".encode()
    assert parse_hugetlbfs_mounts(line) == ["/mnt/hüge pages"]


# --- 2. properties with an oracle ----------------------------------------------------------

@HYPO
@given(data=st.one_of(st.sampled_from([s for s in SAMPLES if b"-" in s[:20]] or [b""]), hostile_bytes()),
       cuts=st.lists(st.integers(0, 1 << 16), max_size=8))
# Found by Hypothesis: a first chunk without a name once decided the name format alone.
@example(data=b"\nUid:20932 20932 1099 0 -1 4194304\nUid:20932 20932 1099 0 -1 0", cuts=[1])
def test_maps_in_any_chunking_equals_the_whole(data, cuts):
    points = sorted({min(c, len(data)) for c in cuts})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)])]
    whole = parse_maps(data, Classifier(["/dev/hugepages"]))
    assert summarize(chunks, Classifier(["/dev/hugepages"])) == whole
    lines = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
    assert lines - data.count(b"[vsyscall]") <= whole.areas <= lines
    assert all(v >= 0 for v in whole.by_kind.values()) and sum(whole.by_kind.values()) == whole.areas
    assert 0 <= whole.deleted <= whole.areas and 0 <= whole.top_object_areas <= whole.areas
    assert (whole.top_object is None) == (whole.top_object_areas == 0)


AREA_NAMES = {  # name -> kind, as proc(5) and the kernel write them
    b"": "anon", b"[heap]": "heap", b"[stack]": "stack", b"[vdso]": "special", b"[anon:jemalloc]": "anon",
    b"/usr/lib/libc.so.6": "file", b"/opt/app/lib (deleted)": "file", b"/path with  two spaces": "file",
    b"/dev/shm/ring": "shm", b"/memfd:buf (deleted)": "shm", b"/SYSV00000000 (deleted)": "shm",
    b"/anon_hugepage (deleted)": "hugetlb", b"/dev/hugepages/pool": "hugetlb", b"anon_inode:[perf_event]": "special",
}


@HYPO
@given(st.lists(st.sampled_from(sorted(AREA_NAMES)), max_size=60), st.booleans())
def test_generated_maps_read_back(names, vsyscall):
    data = b"".join(hostile_tree.maps_line(0x7f0000000000 + i * 0x2000, b"rw-p", n, 7 if n else 0)
                    for i, n in enumerate(names))
    if vsyscall:
        data += hostile_tree.maps_line(0xffffffffff600000, b"--xp", b"[vsyscall]")
    got = parse_maps(data, Classifier(["/dev/hugepages"]))
    assert got.areas == len(names)
    assert {k: v for k, v in got.by_kind.items() if v} == dict(Counter(AREA_NAMES[n] for n in names))
    objects = Counter(n for n in names if AREA_NAMES[n] in ("file", "shm", "hugetlb"))
    if objects:
        best = max(objects.values())
        assert got.top_object_areas == best
        assert got.top_object == min(n for n, c in objects.items() if c == best).decode()
    assert got.deleted == sum(1 for n in names if n == b"/opt/app/lib (deleted)")


@HYPO
@given(comm=st.binary(max_size=15).filter(lambda c: b"\0" not in c), start=st.integers(0, 2**64),
       flags=st.integers(0, 2**32), state=st.sampled_from([b"R", b"S", b"D", b"Z", b"I", b"X"]))
def test_stat_reads_back_any_comm(comm, start, flags, state):
    line = hostile_tree.stat(4242, comm, state, flags, start)
    got = parse_stat(line)
    assert (got.comm, got.starttime_ticks, got.flags, got.state) == \
           (comm.decode("utf-8", "replace"), start, flags, state.decode())


@HYPO
@given(values=st.fixed_dictionaries({}, optional={k: st.integers(0, 2**50) for k in
                                                   ("VmSize", "VmRSS", "RssFile", "RssShmem", "HugetlbPages")}),
       uid=st.integers(0, 2**32 - 1))
def test_status_reads_back(values, uid):
    lines = [b"Name:\tx", b"Uid:\t%d\t%d\t%d\t%d" % (uid, uid, uid, uid)]
    lines += [b"%s:\t%8d kB" % (k.encode(), v) for k, v in values.items()]
    got = parse_status(b"\n".join(lines) + b"\n")
    attrs = {"VmSize": "virtual", "VmRSS": "resident", "RssFile": "rss_file", "RssShmem": "rss_shmem",
             "HugetlbPages": "hugetlb"}
    assert got.uid == uid
    for key, attr in attrs.items():
        assert getattr(got, attr) == (values[key] * 1024 if key in values else None)


@HYPO
@given(data=st.one_of(st.just(None), st.integers(0, 2**63)), space=st.one_of(st.just(None), st.integers(0, 2**63)))
def test_limits_read_back(data, space):
    text = lambda v: b"unlimited" if v is None else b"%d" % v  # noqa: E731
    got = parse_limits(b"Limit                     Soft Limit           Hard Limit           Units     \n"
                       b"Max data size             %-20s unlimited            bytes     \n"
                       b"Max address space         %-20s unlimited            bytes     \n"
                       % (text(data), text(space)))
    assert got.data == (math.inf if data is None else float(data))
    assert got.address_space == (math.inf if space is None else float(space))


@HYPO
@given(st.lists(st.text(st.characters(blacklist_characters="\0", blacklist_categories=("Cs",))), min_size=1)
       .filter(lambda args: args[-1] != ""))
def test_cmdline_reads_back(args):
    assert parse_cmdline(b"\0".join(a.encode() for a in args) + b"\0") == args


# --- 3. a tree with unreadable files -------------------------------------------------------

UNREADABLE = ["101/maps", "102/status", "111/cgroup"]  # mode 000: EACCES without CAP_DAC_OVERRIDE
EIO = ["103/maps", "110/limits"]  # symlinks to /proc/self/mem: reading offset 0 is EIO from the kernel
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, PR_CAPBSET_DROP = 1, 2, 24


def drop_file_capabilities():
    """preexec_fn: root without the two capabilities that bypass file modes (kept after exec)."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


@pytest.fixture()
def broken_tree(tmp_path):
    root = tmp_path / "tree"
    shutil.copytree(FIXTURE, root, symlinks=True, ignore=shutil.ignore_patterns("*.py", "*.md", "__pycache__"))
    for rel in UNREADABLE:
        os.chmod(root / "proc" / rel, 0)
    for rel in EIO:
        os.symlink("/proc/self/mem", root / "proc" / rel)
    yield root
    for rel in UNREADABLE:
        os.chmod(root / "proc" / rel, stat_mode.S_IRUSR | stat_mode.S_IWUSR)


def test_unreadable_files_still_give_a_full_scrape(broken_tree):
    preexec = drop_file_capabilities if os.geteuid() == 0 else None
    with Daemon(f"--path.procfs={broken_tree / 'proc'}", f"--path.sysfs={broken_tree / 'sys'}",
                preexec_fn=preexec) as d:
        text = requests.get(d.url + "/metrics", timeout=60).text
        samples = d.metrics()
        log = d.log()
    expected = {"permission": 3, "io": 3, "parse": 2, "vanished": 1}
    for reason, n in expected.items():  # two scrapes: the totals count both
        assert one(samples, "vma_exporter_read_errors_total", reason=reason) == 2 * n, reason
    assert one(samples, "vma_exporter_processes_scanned") == 11  # not 107 (kthread), 108 (zombie)
    assert one(samples, "vma_exporter_processes_watched") == 5  # 1, 100, 101 (no maps), 110, 111
    exported = {s.labels["pid"] for s in samples["vma_process_map_areas"]}
    assert exported == {"1", "100", "110", "111"}
    assert one(samples, "vma_process_map_areas", pid="100") == 18
    assert not [s for s in samples.get("vma_process_rlimit_data_bytes", []) if s.labels["pid"] == "110"]
    assert one(samples, "vma_node_hugepages", pagesize_bytes="2097152") == 4
    assert one(samples, "vma_exporter_collection_complete") == 1
    # The hostile names: escaped on the wire, intact once parsed, bounded in length.
    evil = hostile_tree.EVIL_PATH.decode("utf-8", "backslashreplace")
    (top,) = [s for s in samples["vma_process_top_object_map_areas"] if s.labels["pid"] == "100"]
    assert top.value == 12 and len(top.labels["object"]) <= MAX_LABEL_CHARS
    assert top.labels["object"].startswith(evil[:60]) and '"' in top.labels["object"]
    assert top.labels["comm"] == hostile_tree.EVIL_COMM.decode()
    assert one(samples, "vma_group_processes", group=hostile_tree.EVIL_COMM.decode()) == 1
    assert all(len(line) < 2000 for line in text.splitlines())
    assert "level=error" not in log and "Traceback" not in log
    promtool_lint(text)


def promtool_lint(text: str) -> None:
    if shutil.which("promtool") is None:
        pytest.skip("promtool not installed (scripts/test.sh installs Debian's prometheus)")
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


# --- 4. a real process with an evil, long path -------------------------------------------------

MAPPER = textwrap.dedent("""\
    import mmap, os, sys
    with open("/proc/self/comm", "w") as f:
        f.write("vma-evil-path")
    dirs, name = sys.argv[1:-1], sys.argv[-1]
    fd = os.open(".", os.O_RDONLY)
    for d in dirs:  # openat one component at a time: the whole path is near PATH_MAX
        fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
    fd = os.open(name, os.O_RDWR, dir_fd=fd)
    keep = [mmap.mmap(fd, 4096) for _ in range(40)]  # same offset: 40 areas that never merge
    print("ready", flush=True)
    sys.stdin.read()
""")


def test_a_4k_path_with_newlines_and_quotes_does_not_break_the_exposition(tmp_path):
    base = tempfile.mkdtemp(prefix="vma-evil-")
    try:
        components = [f'd{i}"quo\\te\nline' + "x" * 180 for i in range(20)]  # ~4,000 bytes in all
        path = base
        for c in components:
            path = os.path.join(path, c)
        os.makedirs(path)
        with open(os.path.join(path, "f"), "wb") as f:
            f.write(b"\0" * 4096)
        full = os.path.join(path, "f")
        assert 3900 < len(full.encode()) < 4096
        proc = subprocess.Popen([sys.executable, "-c", MAPPER, *components, "f"], cwd=base,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout.readline().strip() == "ready"
            config = tmp_path / "targets.yml"
            config.write_text("process_names:\n  - name: evil\n    comm: [vma-evil-path]\n")
            with Daemon(f"--config.file={config}") as d:
                text = requests.get(d.url + "/metrics", timeout=60).text
                samples = d.metrics()
            (top,) = [s for s in samples["vma_process_top_object_map_areas"] if s.labels["pid"] == str(proc.pid)]
            assert top.value == 40
            label = top.labels["object"]
            kernel_form = full.replace("\n", "\\012")  # maps escapes a newline as \\012
            assert len(label) <= MAX_LABEL_CHARS
            assert label == kernel_form[: MAX_LABEL_CHARS - 3] + "..."
            assert '"quo\\te\\012line' in label  # a quote, a backslash and the escaped newline, intact
            assert all(len(line) < 2000 for line in text.splitlines())  # no raw newline split a sample
            promtool_lint(text)
        finally:
            proc.kill()
            proc.wait()
    finally:
        shutil.rmtree(base)


def test_hostile_fixture_tree_is_what_make_py_writes():
    # The checked-in files are the generator's output: the table in README.md describes them.
    for rel, data in hostile_tree.tree().items():
        with open(os.path.join(FIXTURE, rel), "rb") as f:
            assert f.read() == data, rel
    assert re.search(r"\| *111 *\|", open(os.path.join(FIXTURE, "README.md")).read())
