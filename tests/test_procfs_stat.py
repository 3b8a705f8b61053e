"""exporter.procfs.stat: /proc/PID/stat and the btime line of /proc/stat (proc(5)).

The comm (field 2) may hold spaces and parentheses, so the fields are split
after the *last* ')'. Fields used: 3 state, 4 ppid, 9 flags (PF_KTHREAD), 20
num_threads, 22 starttime.
"""

import os

import pytest

from exporter.procfs import ParseError, Vanished
from exporter.procfs.paths import Roots
from exporter.procfs.stat import PF_KTHREAD, ProcStat, parse_boot_time, parse_stat, read_boot_time, read_stat

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
ROOTS = Roots(os.path.join(FIXTURES, "proc"), os.path.join(FIXTURES, "sys"))


def stat_line(comm: bytes, state: bytes = b"S", ppid: int = 1, flags: int = 0x400000, threads: int = 1,
              start: int = 4242, pid: int = 42, fields: int = 52) -> bytes:
    """A /proc/PID/stat line with *fields* fields (52 since Linux 3.5)."""
    rest = [state, b"%d" % ppid, b"%d" % pid, b"%d" % pid, b"0", b"-1", b"%d" % flags]
    rest += [b"0"] * 10 + [b"%d" % threads, b"0", b"%d" % start]
    rest += [b"0"] * (fields - 2 - len(rest))
    return b"%d (%s) " % (pid, comm) + b" ".join(rest[: fields - 2]) + b"\n"


# --- the fixture tree -------------------------------------------------------------------------

FIXTURE_STAT = {
    # pid: comm, state, ppid, flags, threads, starttime, kernel thread, zombie
    1: ("systemd", "S", 0, 4194560, 1, 3, False, False),
    2: ("kthreadd", "S", 0, 2129984, 1, 11, True, False),
    100: ("(sd-pam) x)", "S", 1, 1077952832, 1, 2417, False, False),
    200: ("defunct-child", "Z", 100, 4227084, 1, 52811, False, True),
    300: ("java", "S", 1, 1077944576, 27, 998000, False, False),
    400: ("shm-leaker", "S", 1, 4194304, 4, 1203044, False, False),
    500: ("dpdk-testpmd", "R", 1, 4194368, 6, 1500000, False, False),
    600: ("trunc-maps", "S", 1, 4194304, 1, 1600000, False, False),
    701: ("trunc-limits", "S", 1, 4194304, 1, 1701000, False, False),
    800: ('a"b\\c\nd e', "S", 1, 4194304, 1, 1800000, False, False),  # raw newline in stat
}


@pytest.mark.parametrize("pid", sorted(FIXTURE_STAT))
def test_read_stat_fixture(pid):
    comm, state, ppid, flags, threads, start, kthread, zombie = FIXTURE_STAT[pid]
    st = read_stat(ROOTS, pid)
    assert st == ProcStat(comm=comm, state=state, ppid=ppid, flags=flags, num_threads=threads,
                          starttime_ticks=start)
    assert st.is_kernel_thread is kthread
    assert st.is_zombie is zombie


def test_truncated_fixture_is_a_parse_error_that_says_so():
    with pytest.raises(ParseError, match="truncated") as err:
        read_stat(ROOTS, 700)
    assert err.value.what == "stat"


def test_vanished_pid():
    with pytest.raises(Vanished):
        read_stat(ROOTS, 999)


# --- ugly comms and states ------------------------------------------------------------------

COMMS = [
    # (id, comm bytes as the kernel writes them, decoded comm)
    ("plain", b"nginx", "nginx"),
    ("spaces and parentheses", b"(sd-pam) x)", "(sd-pam) x)"),
    ("fake fields after a ')'", b"a) R 1 2 3 (b", "a) R 1 2 3 (b"),
    ("only a ')'", b")", ")"),
    ("empty", b"", ""),
    ("newline, not escaped in stat", b"evil\nname", "evil\nname"),
    ("15 bytes, the longest comm", b"chromium-browse", "chromium-browse"),
    ("kworker name longer than 15", b"kworker/0:1H-kblockd", "kworker/0:1H-kblockd"),
    ("not UTF-8", b"caf\xe9", "caf\ufffd"),
    ("UTF-8", "h\u00fcgel".encode(), "h\u00fcgel"),
]


@pytest.mark.parametrize("raw, comm", [c[1:] for c in COMMS], ids=[c[0] for c in COMMS])
def test_comm(raw, comm):
    st = parse_stat(stat_line(raw, state=b"R", ppid=7, flags=0x400100, threads=3, start=987654321))
    assert st == ProcStat(comm=comm, state="R", ppid=7, flags=0x400100, num_threads=3, starttime_ticks=987654321)


STATES = [
    # (state, flags, kernel thread, zombie)
    (b"S", 0x00400100, False, False),
    (b"R", 0x00400000, False, False),
    (b"D", 0x00400000, False, False),
    (b"T", 0x00400000, False, False),
    (b"Z", 0x0040010C, False, True),
    (b"X", 0x0040010C, False, True),
    (b"I", 0x04208060, True, False),  # idle kernel worker
    (b"S", PF_KTHREAD, True, False),
    (b"S", 0xFFFFFFFF, True, False),  # every flag set
    (b"S", 0xFFFFFFFF & ~PF_KTHREAD, False, False),
]


@pytest.mark.parametrize("state, flags, kthread, zombie", STATES)
def test_state_and_kernel_thread_flag(state, flags, kthread, zombie):
    st = parse_stat(stat_line(b"x", state=state, flags=flags))
    assert st.state == state.decode()
    assert st.flags == flags
    assert st.is_kernel_thread is kthread
    assert st.is_zombie is zombie


def test_pf_kthread_is_the_kernels_value():
    assert PF_KTHREAD == 0x00200000  # include/linux/sched.h


@pytest.mark.parametrize("fields", [22, 44, 52, 60])
def test_old_and_future_field_counts(fields):
    """Field 22 is the last one needed; kernels since 2.6 write more, later ones may add fields."""
    st = parse_stat(stat_line(b"x", start=31337, fields=fields))
    assert st.starttime_ticks == 31337


ERRORS = [
    # (id, data, words the message must hold)
    ("empty", b"", "comm"),
    ("no parentheses", b"42 nginx S 1 42 42 0 -1 0\n", "comm"),
    ("cut inside the comm", b"42 (ngi", "comm"),
    ("')' before '('", b"42 )x( S 1\n", "comm"),
    ("cut before field 22", stat_line(b"x", fields=21), "truncated"),
    ("cut right after the comm", b"42 (x) ", "truncated"),
    ("non-numeric ppid", stat_line(b"x").replace(b" S 1 ", b" S one ", 1), "non-numeric"),
    ("non-numeric start time", stat_line(b"x", start=4242).replace(b" 4242 ", b" 42x2 ", 1), "non-numeric"),
]


@pytest.mark.parametrize("data, words", [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS])
def test_parse_errors(data, words):
    with pytest.raises(ParseError, match=words) as err:
        parse_stat(data)
    assert err.value.what == "stat"
    assert str(err.value).startswith("stat: ")


# --- /proc/stat btime -----------------------------------------------------------------------

def test_read_boot_time_fixture():
    assert read_boot_time(ROOTS) == 1767225600.0


BTIME = [
    (b"btime 1767225600\n", 1767225600.0),
    (b"cpu  1 2 3\nintr 5\nbtime 12\nprocesses 3\n", 12.0),
    (b"btime 12", 12.0),  # no final newline
    (b"ctxt 5\nbtime  77 \n", 77.0),
]


@pytest.mark.parametrize("data, value", BTIME)
def test_boot_time(data, value):
    assert parse_boot_time(data) == value


@pytest.mark.parametrize("data", [b"", b"cpu 1 2 3\n", b"btime\n", b"btime x\n", b"xbtime 5\n", b"btimes 5\n"])
def test_boot_time_missing_or_bad(data):
    with pytest.raises(ParseError, match="btime"):
        parse_boot_time(data)
