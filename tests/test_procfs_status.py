"""exporter.procfs.status: /proc/PID/status (proc(5)), every field by name.

Memory fields (``%8lu kB``) come in bytes: VmSize is top's VIRT, VmRSS its RES,
RssFile + RssShmem its SHR; HugetlbPages is hugetlbfs memory. RssFile/RssShmem
came in 4.5 and HugetlbPages in 4.4: on an older kernel they are None, never 0.
Kernel threads and zombies have no Vm lines. Any other field is read by name,
with or without a unit: Threads, Uid's four numbers, CapEff's mask, State's text.
A malformed value is an error when it is read, naming the field.
"""

import os

import pytest

from exporter.procfs import ParseError, Vanished
from exporter.procfs.paths import Roots
from exporter.procfs.status import parse_status, read_status

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
ROOTS = Roots(os.path.join(FIXTURES, "proc"), os.path.join(FIXTURES, "sys"))
KB = 1024


def status(*lines: str, name: str = "app") -> bytes:
    """A status file: Name first, as the kernel writes it, then *lines*."""
    return ("\n".join([f"Name:\t{name}", "Umask:\t0022", "State:\tS (sleeping)", *lines]) + "\n").encode()


def kb(key: str, value: int) -> str:
    return f"{key}:\t{value:8d} kB"  # "%8lu kB", tab after the colon


# --- the fixture tree -------------------------------------------------------------------------

FIXTURE_STATUS = {
    # pid: (virtual, resident, rss_file, rss_shmem, hugetlb, data) in kB, uid
    1: (167428, 13208, 8548, 0, 0, 17796, 0),
    2: (None, None, None, None, None, None, 0),  # kernel thread: no Vm lines
    100: (103452, 5268, 4056, 0, 0, 1320, 1000),
    200: (None, None, None, None, None, None, 1000),  # zombie: no Vm lines
    300: (4456012, 398720, None, None, None, 4315800, 999),  # 3.10 kernel
    400: (129692, 96480, 3376, 92000, 0, 8532, 1000),
    500: (2159600, 1120000, 12000, 5000, 1056768, 30000, 0),
    600: (8244, 2048, 1920, 0, 0, 360, 0),
    700: (8244, 2048, 1920, 0, 0, 360, 0),
    701: (8244, 2048, 1920, 0, 0, 360, 0),
    800: (8244, 2048, 1920, 0, 0, 360, 1000),
}


FIELDS = ("virtual", "resident", "rss_file", "rss_shmem", "hugetlb", "data", "uid")


def _bytes(v):
    return None if v is None else v * KB


def fields_of(st) -> dict:
    """The memory figures and uid, as attributes give them."""
    return {name: getattr(st, name) for name in FIELDS}


@pytest.mark.parametrize("pid", sorted(FIXTURE_STATUS))
def test_read_status_fixture(pid):
    virtual, resident, rss_file, rss_shmem, hugetlb, data, uid = FIXTURE_STATUS[pid]
    assert fields_of(read_status(ROOTS, pid)) == dict(
        virtual=_bytes(virtual), resident=_bytes(resident), rss_file=_bytes(rss_file), rss_shmem=_bytes(rss_shmem),
        hugetlb=_bytes(hugetlb), data=_bytes(data), uid=uid)


@pytest.mark.parametrize("pid, shared", [(1, 8548 * KB), (400, (3376 + 92000) * KB), (300, None), (2, None)])
def test_shared_is_tops_shr(pid, shared):
    assert read_status(ROOTS, pid).shared == shared


def test_vanished_pid():
    with pytest.raises(Vanished):
        read_status(ROOTS, 999)


# --- hand-made files ------------------------------------------------------------------------

CASES = [
    # (id, data, expected fields)
    ("all six and Uid",
     status("Uid:\t1000\t1001\t1002\t1003", kb("VmSize", 100), kb("VmRSS", 50), kb("RssFile", 20),
            kb("RssShmem", 5), kb("VmData", 30), kb("HugetlbPages", 2048)),
     dict(virtual=100 * KB, resident=50 * KB, rss_file=20 * KB, rss_shmem=5 * KB, data=30 * KB,
          hugetlb=2048 * KB, uid=1001)),  # the effective uid, the second of four
    ("order does not matter", status(kb("HugetlbPages", 4), kb("VmRSS", 3), kb("VmSize", 9)),
     dict(virtual=9 * KB, resident=3 * KB, hugetlb=4 * KB)),
    ("kernel thread: no memory lines", status("Uid:\t0\t0\t0\t0", "Kthread:\t1", "Threads:\t1"), dict(uid=0)),
    ("4.4: HugetlbPages but no RssFile/RssShmem", status(kb("VmSize", 10), kb("VmRSS", 4), kb("HugetlbPages", 0)),
     dict(virtual=10 * KB, resident=4 * KB, hugetlb=0)),
    ("values wider than the column", status(kb("VmSize", 123456789012)), dict(virtual=123456789012 * KB)),
    ("zero", status(kb("VmRSS", 0)), dict(resident=0)),
    ("similar keys are not ours", status(kb("VmPeak", 7), kb("VmHWM", 7), kb("RssAnon", 7), kb("VmSwap", 7),
                                         kb("VmStk", 7), kb("VmLib", 7)), dict()),
    ("a comm that looks like a key", status(kb("VmSize", 1), name="VmRSS: 99 kB"), dict(virtual=1 * KB)),
    ("no final newline", status(kb("VmSize", 5)).rstrip(b"\n"), dict(virtual=5 * KB)),
    ("truncated after a complete line", status(kb("VmSize", 5), "VmR"), dict(virtual=5 * KB)),
]


@pytest.mark.parametrize("data, fields", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_parse_status(data, fields):
    assert fields_of(parse_status(data)) == dict(dict.fromkeys(FIELDS), **fields)


def test_any_field_with_or_without_a_unit():
    """The generic lookups: a new field needs no change to the parser."""
    st = read_status(ROOTS, 400)
    assert st.threads == st.number(b"Threads") == 4
    assert st.text(b"State") == "S (sleeping)"
    assert st.numbers(b"Uid") == [1000, 1000, 1000, 1000]
    assert st.kb_bytes(b"VmHWM") == 96480 * KB
    assert st.hex_mask(b"CapEff") == 0
    assert st.raw(b"NoSuchField") is None and st.number(b"NoSuchField") is None
    assert parse_status(status("Threads:\t12")).threads == 12
    assert parse_status(status("CapEff:\t0000000000080000")).hex_mask(b"CapEff") == 1 << 19
    assert parse_status(status("NSpid:\t4242\t7")).numbers(b"NSpid") == [4242, 7]


def test_the_first_line_is_a_field_too():
    assert parse_status(b"Name:\tcat\nUmask:\t0022\n").text(b"Name") == "cat"


def test_shared_with_one_of_the_two_fields():
    assert parse_status(status(kb("RssFile", 3))).shared == 3 * KB
    assert parse_status(status(kb("RssShmem", 4))).shared == 4 * KB
    assert parse_status(status(kb("RssFile", 0), kb("RssShmem", 0))).shared == 0


ERRORS = [
    # (id, data, the field read, the key the message must name)
    ("value cut before the unit", status(kb("VmSize", 5), "VmRSS:\t    1234"), "resident", "VmRSS"),
    ("value cut after the colon", status("VmSize:"), "virtual", "VmSize"),
    ("not a number", status("VmRSS:\t    12x4 kB"), "resident", "VmRSS"),
    ("another unit", status("HugetlbPages:\t       4 MB"), "hugetlb", "HugetlbPages"),
    ("negative", status("RssFile:\t      -4 kB"), "rss_file", "RssFile"),
    ("Uid with a non-numeric effective id", status("Uid:\t0\tx\t0\t0"), "uid", "Uid"),
    ("Uid with three ids", status("Uid:\t0\t0\t0"), "uid", "Uid"),
    ("Threads not a number", status("Threads:\tmany"), "threads", "Threads"),
]


@pytest.mark.parametrize("data, attr, key", [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS])
def test_parse_errors_name_the_field(data, attr, key):
    st = parse_status(data)  # parsing is lazy: the error comes with the value
    with pytest.raises(ParseError, match=key) as err:
        getattr(st, attr)
    assert err.value.what == "status"
