"""/proc/PID/limits: RLIMIT_DATA and RLIMIT_AS (soft limits, in bytes).

proc(5). "unlimited" becomes +Inf, the way Prometheus writes an absent ceiling.
Both are one of ENOMEM's three causes (docs/incidents.md, 004).
"""

import math
from typing import NamedTuple

from exporter.procfs import ParseError, parse_u64, read_file
from exporter.procfs.paths import Roots

_WANTED = {b"Max data size": "data", b"Max address space": "address_space"}


class Limits(NamedTuple):
    """Soft limits in bytes. A NamedTuple: the BPF source makes one per process per scrape."""

    data: float = math.inf
    address_space: float = math.inf


def _value(raw: bytes, what: bytes) -> float:
    if raw == b"unlimited":
        return math.inf
    return float(parse_u64(raw, "limits", what.decode()))


def parse_limits(data: bytes) -> Limits:
    """Parse the bytes of /proc/PID/limits (a header line, then fixed columns)."""
    lines = data.split(b"\n")
    if not lines or not lines[0].startswith(b"Limit"):
        raise ParseError("limits", "missing header line")
    found: dict[str, float] = {}
    for line in lines[1:]:
        for prefix, name in _WANTED.items():
            if line.startswith(prefix):
                fields = line[len(prefix) :].split()
                if not fields:
                    raise ParseError("limits", f"{prefix.decode()}: no values (truncated?)")
                found[name] = _value(fields[0], prefix)
    if len(found) != len(_WANTED):
        missing = sorted(k.decode() for k, v in _WANTED.items() if v not in found)
        raise ParseError("limits", f"missing lines: {', '.join(missing)}")
    return Limits(**found)


def read_limits(roots: Roots, pid: int) -> Limits:
    return parse_limits(read_file(roots.pid(pid, "limits")))
