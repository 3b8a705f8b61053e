"""The iterator's binary records: the pure parser over fixture bytes, and its layout against C.

The fixtures are built field by field here, in records.h's layout; the layout
itself is checked against the C compiler's (offsetof of every field of
records.h, compiled with the system compiler), so the parser and the BPF
objects can only agree.
"""

import ctypes
import math
import os
import re
import shutil
import struct
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from exporter.bpf import enomem, records
from exporter.bpf.records import RecordError, parse

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGE, TCK = 4096, 100
FEAT_ALL = records.FEAT_RSS_PERCPU | records.FEAT_SEQ_COUNT | records.FEAT_HUGETLB
INF = records.RLIM_INFINITY


def end(features=FEAT_ALL, version=records.VERSION, kind=records.KIND_END, sizes=None, level=0, tgid=4242):
    es, ps = sizes or (records.END.size, records.PROCESS.size)
    return records.END.pack(kind, version, es, ps, features, tgid, level, 2)


def process(pid=100, start_ns=123_456_789_000, comm=b"nginx", threads=3, euid=33, map_count=57, flags=0,
            total_vm=2560, data_vm=300, rss=(200, 50, 10, 0), huge=512, rlim_data=INF, rlim_as=INF, seq=8, via=0,
            kind=records.KIND_PROCESS):
    rss_file, rss_anon, rss_shmem, swap = rss
    return records.PROCESS.pack(kind, pid, start_ns, comm, threads, euid, map_count, flags, total_vm, data_vm,
                                rss_file, rss_anon, rss_shmem, swap, huge, rlim_data, rlim_as, seq, via)


def test_a_pass_in_procfs_units():
    data = process() + process(pid=7, comm=b"x" * 16, rlim_data=64 << 20, rlim_as=1 << 30) + end()
    p = parse(data, PAGE, TCK)
    assert p.end == records.End(FEAT_ALL, 4242, 0, 2)
    first, second = p.processes
    assert first == records.ProcessRecord(
        pid=100, starttime_ticks=12_345, comm="nginx", threads=3, euid=33, map_areas=57,
        virtual_bytes=2560 * PAGE, resident_bytes=260 * PAGE, shared_bytes=210 * PAGE, data_bytes=300 * PAGE,
        hugetlb_bytes=512 * PAGE, swap_bytes=0, rlimit_data=math.inf, rlimit_as=math.inf, mm_seq=8, via_tid=0)
    assert first.identity == (100, 12_345)
    assert second.comm == "x" * 16, "a comm of 16 bytes has no NUL"
    assert (second.rlimit_data, second.rlimit_as) == (64 << 20, 1 << 30)


def test_start_time_in_the_ticks_of_stat_field_22():
    """nsec_to_clock_t(): nanoseconds over NSEC_PER_SEC / USER_HZ, rounded down."""
    p = parse(process(start_ns=10_999_999) + end(), PAGE, TCK)
    assert p.processes[0].starttime_ticks == 1
    p = parse(process(start_ns=10_999_999) + end(), PAGE, 1000)
    assert p.processes[0].starttime_ticks == 10


def test_a_leader_read_through_a_live_thread():
    p = parse(process(flags=records.PROC_VIA_THREAD, via=101) + end(), PAGE, TCK)
    assert p.processes[0].via_tid == 101 and p.processes[0].map_areas == 57


def test_no_address_space_found_gives_no_figures():
    p = parse(process(flags=records.PROC_NO_MM, map_count=0) + end(), PAGE, TCK)
    rec = p.processes[0]
    assert rec.pid == 100 and rec.threads == 3
    assert rec.map_areas is None and rec.virtual_bytes is None and rec.resident_bytes is None
    assert rec.mm_seq is None


def test_a_kernel_without_hugetlb_or_lock_sequence_leaves_them_out():
    p = parse(process() + end(features=records.FEAT_RSS_ATOMIC), PAGE, TCK)
    rec = p.processes[0]
    assert rec.hugetlb_bytes is None and rec.mm_seq is None and not p.end.has_mm_seq
    assert rec.resident_bytes == 260 * PAGE
    p = parse(process() + end(features=records.FEAT_SEQ_INT), PAGE, TCK)
    assert p.processes[0].resident_bytes is None, "no RSS layout found: no RSS, not 0"
    assert p.processes[0].mm_seq == 8


def test_an_empty_node_is_a_pass():
    p = parse(end(), PAGE, TCK)
    assert p.processes == ()


def test_briefs_are_the_records_fields_the_pass_ranks_and_sums():
    data = process() + process(pid=5, flags=records.PROC_NO_MM) + process(pid=7, comm=b"x" * 16, seq=9) + end()
    briefs = records.parse_brief(data, PAGE, TCK)
    whole = [r for r in parse(data, PAGE, TCK).processes if r.map_areas is not None]
    assert [b.pid for b in briefs.processes] == [100, 7], "no brief without an address space"
    for b, rec in zip(briefs.processes, whole):
        assert (b.pid, b.starttime_ticks, b.comm, b.map_areas, b.virtual_bytes, b.resident_bytes,
                b.hugetlb_bytes) == (rec.pid, rec.starttime_ticks, rec.comm, rec.map_areas, rec.virtual_bytes,
                                     rec.resident_bytes, rec.hugetlb_bytes)
        assert records.record_of(briefs.end, b, PAGE, TCK) == rec


def test_an_unchanged_record_keeps_its_brief_and_a_changed_one_is_read_again():
    quiet, busy = process(pid=1), process(pid=2, rss=(200, 50, 10, 0))
    first = records.parse_brief(quiet + busy + end(), PAGE, TCK)
    moved = process(pid=2, rss=(200, 51, 10, 0))  # one anonymous page more
    second = records.parse_brief(quiet + moved + end(), PAGE, TCK, first)
    assert second.processes[0] is first.processes[0], "byte for byte the same record: the same brief"
    assert second.processes[1] is not first.processes[1]
    assert second.processes[1].resident_bytes == first.processes[1].resident_bytes + PAGE
    assert set(second.known) == {quiet, moved}, "what is gone from the pass is forgotten"
    relocked = records.parse_brief(quiet + process(pid=2, rss=(200, 51, 10, 0), seq=10) + end(), PAGE, TCK, second)
    assert relocked.processes[1] is not second.processes[1], "mm_lock_seq moved: its whole record is new"


def test_briefs_made_with_other_units_are_not_reused():
    data = process() + end()
    first = records.parse_brief(data, PAGE, TCK)
    second = records.parse_brief(data, PAGE * 4, TCK, first)
    assert second.processes[0] is not first.processes[0]
    assert second.processes[0].virtual_bytes == 4 * first.processes[0].virtual_bytes


def test_briefs_of_a_pass_with_another_end_are_not_reused():
    data = process() + end(features=records.FEAT_RSS_ATOMIC)
    first = records.parse_brief(data, PAGE, TCK)
    second = records.parse_brief(process() + end(features=records.FEAT_SEQ_INT), PAGE, TCK, first)
    assert second.processes[0] is not first.processes[0]
    assert second.processes[0].resident_bytes is None, "read with the features of its own pass"


@pytest.mark.parametrize("data, message", [
    (b"", "too short"),
    (process() + end(kind=0x1234), "no END record"),
    (process() + end(version=2), "object and parser differ"),
    (process() + end(sizes=(32, 136)), "object and parser differ"),
    (end() + process(), "no END record"),
    (process() + end()[:-1], "no END record"),
    (process()[:-8] + end(), "not a multiple of 128"),
    (process() + process(kind=7) + end(), "offset 128: kind 0x7"),
])
def test_bad_bytes_are_refused_with_the_reason(data, message):
    with pytest.raises(RecordError, match=message):
        parse(data, PAGE, TCK)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_raise_only_record_error(data):
    try:
        parse(data, PAGE, TCK)
    except RecordError:
        pass


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(min_size=records.PROCESS.size, max_size=records.PROCESS.size), max_size=4))
def test_any_record_bodies_before_end_parse_or_are_refused(bodies):
    data = b"".join(bodies) + end()
    try:
        p = parse(data, PAGE, TCK)
    except RecordError:
        with pytest.raises(RecordError):
            records.parse_brief(data, PAGE, TCK)
        return
    assert len(p.processes) == len(bodies)
    briefs = records.parse_brief(data, PAGE, TCK)
    assert [b.pid for b in briefs.processes] == [r.pid for r in p.processes if r.map_areas is not None]
    assert records.parse_brief(data, PAGE, TCK, briefs).processes == briefs.processes


# --- the layout against the C compiler's ---------------------------------------------------

FIELDS = {  # struct: (python struct or ctypes type, field names in order)
    "vma_rec_end": ("=8I", ["kind", "version", "end_size", "process_size", "features", "reader_tgid",
                            "reader_pidns_level", "cpus_summed"]),
    "vma_rec_process": ("=IIQ16sIIII9QII", [
        "kind", "tgid", "start_boottime_ns", "comm", "threads", "euid", "map_count", "flags", "total_vm", "data_vm",
        "rss_file", "rss_anon", "rss_shmem", "swap_ents", "hugetlb_pages", "rlim_data", "rlim_as", "mm_seq",
        "via_tid"]),
    "vma_tasks_config": ("=4I", ["nr_cpus", "rlimit_data_index", "rlimit_as_index", "pad"]),
}


def struct_offsets(fmt: str) -> list[int]:
    """Byte offset of each field of a struct format ('16s' is one field, '9Q' nine)."""
    offsets, pos = [], 0
    for count, code in re.findall(r"(\d*)([a-zA-Z])", fmt[1:]):
        n = int(count or 1)
        size = struct.calcsize("=" + code)
        if code == "s":
            offsets.append(pos)
            pos += n
        else:
            offsets.extend(pos + i * size for i in range(n))
            pos += n * size
    return offsets


@pytest.fixture(scope="module")
def c_layout(tmp_path_factory) -> dict[str, int]:
    """offsetof() and sizeof() of records.h, as gcc lays it out: {"struct.field": offset, "struct": size}."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler (scripts/test.sh installs gcc)")
    lines = ['#include <linux/types.h>', '#include <stddef.h>', '#include <stdio.h>', '#include "records.h"',
             "int main(void) {"]
    ctypes_structs = {"enomem_key": enomem.Key, "enomem_value": enomem.Value}
    for name, (_, fields) in FIELDS.items():
        lines.append(f'printf("{name} %zu\\n", sizeof(struct {name}));')
        lines += [f'printf("{name}.{f} %zu\\n", offsetof(struct {name}, {f}));' for f in fields]
    for name, ct in ctypes_structs.items():
        lines.append(f'printf("{name} %zu\\n", sizeof(struct {name}));')
        for f, *_ in ct._fields_:
            lines.append(f'printf("{name}.{f} %zu\\n", offsetof(struct {name}, {f}));')
    lines.append("return 0; }")
    d = tmp_path_factory.mktemp("layout")
    (d / "layout.c").write_text("\n".join(lines))
    subprocess.run([cc, "-I", os.path.join(REPO, "exporter", "bpf"), "-o", str(d / "layout"), str(d / "layout.c")],
                   check=True)
    out = subprocess.run([str(d / "layout")], capture_output=True, text=True, check=True).stdout
    return {k: int(v) for k, v in (line.split() for line in out.splitlines())}


@pytest.mark.parametrize("name", list(FIELDS))
def test_python_formats_match_records_h(c_layout, name):
    fmt, fields = FIELDS[name]
    assert struct.calcsize(fmt) == c_layout[name]
    assert struct_offsets(fmt) == [c_layout[f"{name}.{f}"] for f in fields]


def test_parser_formats_are_the_checked_ones():
    assert records.END.format == FIELDS["vma_rec_end"][0]
    assert records.PROCESS.format == FIELDS["vma_rec_process"][0]


@pytest.mark.parametrize("ct, name", [(enomem.Key, "enomem_key"), (enomem.Value, "enomem_value")])
def test_map_key_and_value_types_match_records_h(c_layout, ct, name):
    assert ctypes.sizeof(ct) == c_layout[name]
    for f, *_ in ct._fields_:
        assert getattr(ct, f).offset == c_layout[f"{name}.{f}"], f


def test_names_follow_the_enums_of_records_h():
    with open(os.path.join(REPO, "exporter", "bpf", "records.h")) as f:
        text = f.read()
    syscalls = re.search(r"enum vma_syscall \{([^}]*)\}", text)[1]
    causes = re.search(r"enum vma_cause \{([^}]*)\}", text)[1]
    overflows = re.search(r"enum vma_overflow \{([^}]*)\}", text, re.S)[1]
    assert [s.strip()[4:].lower() for s in syscalls.split(",")][:-1] == list(enomem.SYSCALLS)
    assert [s.strip()[6:].lower() for s in causes.split(",")][:-1] == list(enomem.CAUSES)
    names = re.findall(r"OVF_(\w+),", overflows)
    assert [n.lower() for n in names] == list(enomem.OVERFLOWS)
