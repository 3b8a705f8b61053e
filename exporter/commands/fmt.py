"""Output for people: human sizes, aligned columns, colour only on a terminal.

Shared by the diagnosis commands (top, diff, check). Reads no file; knows
nothing of /proc. Colour follows https://no-color.org: ``NO_COLOR`` set to
anything non-empty turns it off, and so does a stdout that is not a terminal
(a pipe, a file, a test), so scripts never see escape codes.
"""

import os
import re
import sys
from typing import Callable, Sequence

_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB")


def human_bytes(n: float | None) -> str:
    """1536 -> '1.5 KiB'; binary units, one decimal; None -> '-'."""
    if n is None:
        return "-"
    if abs(n) < 1024:
        return f"{int(n)} B"
    value = float(n)
    for unit in _UNITS:
        value /= 1024
        if abs(value) < 1024 or unit == _UNITS[-1]:
            return f"{value:.1f} {unit}"
    raise AssertionError("unreachable")


def signed_bytes(n: int) -> str:
    """A change in size: '+2.0 MiB', '-4.0 KiB', '0 B'."""
    return ("+" if n > 0 else "-" if n < 0 else "") + human_bytes(abs(n))


def page_size(n: int) -> str:
    """A hugepage size, exact: 2097152 -> '2 MiB', 1073741824 -> '1 GiB'."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale and n % scale == 0:
            return f"{n // scale} {unit}"
    return f"{n} B"


def signed(n: int) -> str:
    return f"+{n}" if n > 0 else str(n)


def percent(ratio: float | None) -> str:
    return "-" if ratio is None else f"{ratio * 100:.1f}%"


def duration(seconds: float) -> str:
    """A span for people: '45s', '4m 16s', '3h 02m', '2d 05h'."""
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60:02d}m"
    return f"{s // 86400}d {s % 86400 // 3600:02d}h"


def use_colour(mode: str = "auto", stream=None) -> bool:
    """'always', 'never', or 'auto': only on a terminal, and not when NO_COLOR is set."""
    if mode == "always":
        return True
    if mode == "never":
        return False
    stream = stream or sys.stdout
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or fake stream
        return False


class Style:
    """ANSI styles that are no-ops when colour is off."""

    _CODES = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "cyan": "36"}

    def __init__(self, enabled: bool):
        self.enabled = enabled

    def __getattr__(self, name: str) -> Callable[[str], str]:
        code = self._CODES.get(name)
        if code is None:
            raise AttributeError(name)
        if not self.enabled:
            return lambda text: text
        return lambda text: f"\x1b[{code}m{text}\x1b[0m" if text else text


# A cell is plain text, or (text, style function) to colour it after padding,
# so escape codes never count towards a column's width.
Cell = str | tuple[str, Callable[[str], str]]


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """Control characters as \\xNN: a comm or a path is chosen by the process, and an
    ESC sequence must not reach the operator's terminal (ps escapes them too)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def table(headers: Sequence[str], rows: Sequence[Sequence[Cell]], right: Sequence[bool],
          style: Style | None = None, indent: str = "") -> list[str]:
    """Aligned columns, two spaces apart; *right* says which columns are numbers.

    The last column is not padded (no trailing blanks), so put a long free
    text column, such as a path, last.
    """
    rows = [[printable(c) if isinstance(c, str) else (printable(c[0]), c[1]) for c in row] for row in rows]
    plain = [[c if isinstance(c, str) else c[0] for c in row] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in plain]) for i, h in enumerate(headers)]
    bold = style.bold if style else (lambda t: t)

    def line(cells: Sequence[Cell], header: bool = False) -> str:
        out = []
        last = len(cells) - 1
        for i, cell in enumerate(cells):
            text, paint = (cell, None) if isinstance(cell, str) else cell
            pad = " " * (widths[i] - len(text))
            if header:
                paint = bold
            shown = paint(text) if paint else text  # colour the text, not the padding
            if right[i]:
                out.append(pad + shown)
            else:
                out.append(shown if i == last else shown + pad)
        return (indent + "  ".join(out)).rstrip()

    return [line(headers, header=True)] + [line(r) for r in rows]
