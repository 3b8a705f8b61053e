"""exporter.procfs.limits: /proc/PID/limits (proc(5)), soft RLIMIT_DATA and RLIMIT_AS.

A header line, then one line per limit in fixed columns: name, soft, hard,
units. "unlimited" becomes +Inf (how Prometheus writes an absent ceiling).
"""

import math
import os

import pytest

from exporter.procfs import ParseError, Vanished
from exporter.procfs.limits import Limits, parse_limits, read_limits
from exporter.procfs.paths import Roots

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
ROOTS = Roots(os.path.join(FIXTURES, "proc"), os.path.join(FIXTURES, "sys"))
INF = math.inf

HEADER = "%-25s %-20s %-20s %-10s\n" % ("Limit", "Soft Limit", "Hard Limit", "Units")


def row(name: str, soft: str, hard: str = "unlimited", units: str = "bytes") -> str:
    return "%-25s %-20s %-20s %-10s\n" % (name, soft, hard, units)  # the kernel's columns


def limits(data: str = "unlimited", address: str = "unlimited", data_hard: str = "unlimited",
           address_hard: str = "unlimited") -> bytes:
    return (HEADER + row("Max cpu time", "unlimited", units="seconds") + row("Max data size", data, data_hard)
            + row("Max stack size", "8388608") + row("Max open files", "1024", "524288", "files")
            + row("Max address space", address, address_hard) + row("Max realtime timeout", "unlimited", units="us")
            ).encode()


@pytest.mark.parametrize("pid, data, address", [
    (1, INF, INF),
    (2, INF, INF),
    (300, INF, INF),
    (400, INF, INF),
    (500, 4294967296.0, 17179869184.0),  # 4 GiB and 16 GiB soft, unlimited hard
])
def test_read_limits_fixture(pid, data, address):
    assert read_limits(ROOTS, pid) == Limits(data=data, address_space=address)


def test_truncated_fixture_names_the_missing_line():
    with pytest.raises(ParseError, match="Max address space") as err:
        read_limits(ROOTS, 701)
    assert err.value.what == "limits"


def test_vanished_pid():
    with pytest.raises(Vanished):
        read_limits(ROOTS, 999)


CASES = [
    # (id, data, Limits)
    ("both unlimited", limits(), Limits(INF, INF)),
    ("soft limits are taken, not hard", limits("1048576", "2097152", "4194304", "8388608"),
     Limits(1048576.0, 2097152.0)),
    ("soft unlimited under a finite hard", limits(data="unlimited", data_hard="4096"), Limits(INF, INF)),
    ("zero", limits(data="0"), Limits(0.0, INF)),
    ("largest finite value", limits(address="18446744073709551614"), Limits(INF, 18446744073709551614.0)),
    ("lines in another order", (HEADER + row("Max address space", "7") + row("Max data size", "9")).encode(),
     Limits(9.0, 7.0)),
    ("no final newline", limits(address="5").rstrip(b"\n"), Limits(INF, 5.0)),
]


@pytest.mark.parametrize("data, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_parse_limits(data, expected):
    assert parse_limits(data) == expected


ERRORS = [
    # (id, data, words the message must hold)
    ("empty", b"", "header"),
    ("no header", limits()[len(HEADER):], "header"),
    ("missing Max data size", (HEADER + row("Max address space", "1")).encode(), "Max data size"),
    ("missing both", (HEADER + row("Max cpu time", "1", units="seconds")).encode(), "Max address space, Max data size"),
    ("cut inside a value", (HEADER + row("Max data size", "unlimited")[:32]).encode(), "not a number"),
    ("cut after the name", (HEADER + "Max data size").encode(), "truncated"),
    ("not a number", limits(data="lots"), "Max data size"),
]


@pytest.mark.parametrize("data, words", [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS])
def test_parse_errors(data, words):
    with pytest.raises(ParseError, match=words) as err:
        parse_limits(data)
    assert err.value.what == "limits"
