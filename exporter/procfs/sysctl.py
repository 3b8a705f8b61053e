"""/proc/sys/vm/max_map_count: the per-process ceiling on map areas.

Documentation/admin-guide/sysctl/vm.rst. The kernel default is 65530
(DEFAULT_MAX_MAP_COUNT = USHRT_MAX - 5).
"""

from exporter.procfs import ParseError, read_file
from exporter.procfs.paths import Roots

KERNEL_DEFAULT_MAX_MAP_COUNT = 65530


def parse_int(data: bytes, what: str) -> int:
    try:
        return int(data.strip())
    except ValueError:
        raise ParseError(what, f"not an integer: {data[:40]!r}") from None


def read_max_map_count(roots: Roots) -> int:
    return parse_int(read_file(roots.proc("sys", "vm", "max_map_count")), "max_map_count")
