"""/proc/PID/maps one record per area, for ``vma-exporter diff``.

Same file and format as exporter/procfs/maps.py (whose module docstring gives
the line format) and the same Classifier for the kind. maps.summarize() never
builds a record per line: that is its speed. diff needs the areas themselves,
to say which appeared between two reads; it runs once, on one process, when a
person asks, so a record per line is fine here.

(Meant to sit at the end of procfs/maps.py; kept here while that file has
other work in progress, see the report of issue 5.)
"""

from dataclasses import dataclass
from typing import Iterable, Iterator

from exporter.procfs import ParseError
from exporter.procfs.maps import Classifier


@dataclass(frozen=True)
class Area:
    """One map area: a line of maps, with its kind from the Classifier."""

    start: int
    end: int
    perms: str  # e.g. "rw-p": read, write, exec, shared (s) or private (p)
    offset: int
    dev: str  # "major:minor" of the backing file, "00:00" when none
    inode: int
    name: str  # "" for an anonymous area; a deleted file keeps its " (deleted)"
    kind: str  # one of maps.KINDS

    @property
    def size(self) -> int:
        return self.end - self.start


def parse_area(line: bytes, classifier: Classifier) -> Area:
    """Parse one line of maps (without its newline)."""
    # The five fixed fields are separated by single spaces; what follows the
    # fifth is the padding and the name (see the module docstring).
    fields = line.split(b" ", 5)
    try:
        start, end = fields[0].split(b"-")
        name = fields[5].lstrip(b" ") if len(fields) == 6 else b""
        return Area(
            start=int(start, 16), end=int(end, 16), perms=fields[1].decode("ascii"),
            offset=int(fields[2], 16), dev=fields[3].decode("ascii"), inode=int(fields[4]),
            name=name.decode("utf-8", "backslashreplace"),
            # An unnamed area is anonymous, as summarize() counts it.
            kind=classifier.kind(name) if name else "anon",
        )
    except (ValueError, IndexError, UnicodeDecodeError):
        raise ParseError("maps", f"not a maps line: {line[:120]!r}") from None


def iter_areas(chunks: Iterable[bytes], classifier: Classifier | None = None) -> Iterator[Area]:
    """Every area the kernel counts ([vsyscall] left out, as in summarize())."""
    classifier = classifier or Classifier()
    carry = b""
    for chunk in chunks:
        lines = (carry + chunk).split(b"\n")
        carry = lines.pop()
        for line in lines:
            if line and not line.endswith(b"[vsyscall]"):
                yield parse_area(line, classifier)
    if carry and not carry.endswith(b"[vsyscall]"):  # a last line without newline
        yield parse_area(carry, classifier)


def parse_areas(data: bytes, classifier: Classifier | None = None) -> list[Area]:
    """The areas of a whole maps file given as bytes (pure)."""
    return list(iter_areas((data,), classifier))
