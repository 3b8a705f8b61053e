"""exporter.procfs.meminfo: /proc/meminfo and vm.overcommit_memory (proc(5),
Documentation/mm/overcommit-accounting.rst). Values in kB, returned in bytes."""

import os

import pytest

from exporter.procfs import ParseError
from exporter.procfs.meminfo import MemInfo, parse_meminfo, read_meminfo, read_overcommit_memory
from exporter.procfs.paths import Roots

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
ROOTS = Roots(os.path.join(FIXTURES, "proc"), os.path.join(FIXTURES, "sys"))
KB = 1024


def test_read_meminfo_fixture():
    mem = read_meminfo(ROOTS)
    assert mem == MemInfo(total=24684096 * KB, available=21333656 * KB, commit_limit=10244224 * KB,
                          committed=3061080 * KB, hugepage_size=2048 * KB)
    assert mem.commit_headroom == (10244224 - 3061080) * KB


def test_read_overcommit_memory_fixture():
    assert read_overcommit_memory(ROOTS) == 0


CASES = [
    # (id, data, MemInfo)
    ("3.13 and older: no MemAvailable", b"MemTotal:  1024 kB\nMemFree:  512 kB\n", MemInfo(total=1024 * KB)),
    ("no hugetlb: no Hugepagesize", b"MemTotal:  8 kB\nCommitLimit:  4 kB\nCommitted_AS:  5 kB\n",
     MemInfo(total=8 * KB, commit_limit=4 * KB, committed=5 * KB)),
    ("HugePages_* counts have no unit and are not ours",
     b"MemTotal:  8 kB\nHugePages_Total:     512\nHugePages_Free:      508\nHugepagesize:    1048576 kB\n",
     MemInfo(total=8 * KB, hugepage_size=1048576 * KB)),
    ("similar keys", b"MemTotal:  8 kB\nMemFree:  1 kB\nCommitLimitX:  2 kB\nHugetlb:  4 kB\n", MemInfo(total=8 * KB)),
]


@pytest.mark.parametrize("data, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_parse_meminfo(data, expected):
    assert parse_meminfo(data) == expected


def test_commit_headroom_may_be_negative_and_needs_both_lines():
    assert parse_meminfo(b"MemTotal: 8 kB\nCommitLimit: 4 kB\nCommitted_AS: 5 kB\n").commit_headroom == -KB
    assert parse_meminfo(b"MemTotal: 8 kB\nCommitLimit: 4 kB\n").commit_headroom is None


@pytest.mark.parametrize("data, words", [
    (b"", "no MemTotal"),
    (b"MemFree:  512 kB\n", "no MemTotal"),
    (b"MemTotal:  1024 kB\nMemAvailable: lots\n", "MemAvailable"),
    (b"MemTotal:  1024", "MemTotal"),  # cut before the unit
    (b"MemTotal:  1024 MB\n", "MemTotal"),
])
def test_parse_errors(data, words):
    with pytest.raises(ParseError, match=words) as err:
        parse_meminfo(data)
    assert err.value.what == "meminfo"
