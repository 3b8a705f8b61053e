"""Sizes as pattern labels show them: exact, without spaces or decimals ("4KiB", "8188KiB")."""

import re

_UNITS = (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10))


def size_label(n: int) -> str:
    """The largest binary unit that divides *n* exactly: 4096 -> '4KiB', 8384512 -> '8188KiB'."""
    for unit, scale in _UNITS:
        if n >= scale and n % scale == 0:
            return f"{n // scale}{unit}"
    return f"{n}B"


_SIZE = re.compile(r"(\d+)(TiB|GiB|MiB|KiB|B)")


def parse_size_label(text: str) -> int:
    """The inverse of size_label for the first size in *text* (0 when there is none)."""
    m = _SIZE.search(text)
    if not m:
        return 0
    return int(m.group(1)) * dict(_UNITS).get(m.group(2), 1)
