"""exporter.procfs.statm: /proc/PID/statm (proc(5)): VIRT, RES and SHR in pages.

size is VmSize, resident is VmRSS, shared is RssFile + RssShmem (since 4.5):
top's VIRT, RES and SHR, the figures top itself reads from this file.
"""

import os

import pytest

from exporter.procfs import ParseError, Vanished
from exporter.procfs.paths import Roots
from exporter.procfs.statm import PAGE_SIZE, Statm, parse_statm, read_statm
from exporter.procfs.status import read_status

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
ROOTS = Roots(os.path.join(FIXTURES, "proc"), os.path.join(FIXTURES, "sys"))


@pytest.mark.parametrize("pid", [1, 100, 400, 500, 600, 800])
def test_fixture_statm_agrees_with_status(pid):
    """The fixture tree is consistent: statm's pages are status's kB (the kernel's own counters)."""
    m, st = read_statm(ROOTS, pid), read_status(ROOTS, pid)
    assert (m.virtual, m.resident, m.shared) == (st.virtual, st.resident, st.shared)


def test_kernel_thread_and_zombie_are_all_zero():
    for pid in (2, 200):
        assert read_statm(ROOTS, pid) == Statm(0, 0, 0, 0, 0)


def test_the_running_process_agrees_with_its_status():
    """On the live kernel: sizes equal status's, read back to back (a Python process
    barely changes its RSS between the two reads; VIRT and SHR do not change)."""
    me = Roots()
    m, st = read_statm(me, os.getpid()), read_status(me, os.getpid())
    assert m.virtual == st.virtual
    assert abs(m.resident - st.resident) <= 64 * PAGE_SIZE
    assert abs(m.shared - st.shared) <= 64 * PAGE_SIZE


def test_parse_in_pages():
    assert parse_statm(b"10 4 2 1 0 3 0\n") == Statm(10 * PAGE_SIZE, 4 * PAGE_SIZE, 2 * PAGE_SIZE, PAGE_SIZE,
                                                        3 * PAGE_SIZE)
    assert parse_statm(b"10 4 2 1 0 3 0") == parse_statm(b"10 4 2 1 0 3 0\n")  # no final newline


@pytest.mark.parametrize("data", [b"", b"10 4 2\n", b"10 -4 2 1 0 3 0\n", b"10 4 2 1 0 x 0\n",
                                  b"1" * 21 + b" 4 2 1 0 3 0\n", b"10  4 2 1 0 3 0\n"],
                         ids=["empty", "truncated", "negative", "not a number", "too long", "two spaces"])
def test_malformed_is_a_parse_error(data):
    with pytest.raises(ParseError) as err:
        parse_statm(data)
    assert err.value.what == "statm"


def test_vanished_pid():
    with pytest.raises(Vanished):
        read_statm(ROOTS, 999)
