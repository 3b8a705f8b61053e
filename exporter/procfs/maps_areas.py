"""/proc/PID/maps, one record per area: for ``vma-exporter diff`` and ``snapshot``.

proc(5). maps.summarize() never builds a record per line: that is its speed.
diff needs the areas themselves, to say which appeared between two reads. It
runs once, on one process, when a person asks; still, that process may hold a
million.
"""

from typing import Iterable, Iterator, NamedTuple

from exporter.procfs import ParseError
from exporter.procfs.maps import Classifier


class Area(NamedTuple):
    """One map area: a line of maps, with its kind from the Classifier.

    A tuple rather than a frozen dataclass: 185 bytes an area instead of 324
    (measured on 65,530 areas), which counts at a million. Two areas are equal
    when every field is.
    """

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


def parse_area(line: bytes, classifier: Classifier, _names: dict | None = None,
               _words: dict | None = None) -> Area:
    """Parse one line of maps (without its newline).

    *_names* and *_words* are caches that iter_areas shares across lines:
    names, perms and devices repeat, so each is decoded (and classified) once
    and every area holds the same str.
    """
    names = {} if _names is None else _names
    words = {} if _words is None else _words
    # The five fixed fields are separated by single spaces; what follows the
    # fifth is the padding and the name (see the module docstring).
    fields = line.split(b" ", 5)
    try:
        start, end = fields[0].split(b"-")
        raw = fields[5].lstrip(b" ") if len(fields) == 6 else b""
        name_kind = names.get(raw)
        if name_kind is None:
            # An unnamed area is anonymous, as summarize() counts it.
            name_kind = names[raw] = (raw.decode("utf-8", "backslashreplace"),
                                      classifier.kind(raw) if raw else "anon")
        perms, dev = fields[1], fields[3]
        perms = words.get(perms) or words.setdefault(perms, perms.decode("ascii"))
        dev = words.get(dev) or words.setdefault(dev, dev.decode("ascii"))
        return Area(int(start, 16), int(end, 16), perms, int(fields[2], 16), dev, int(fields[4]), *name_kind)
    except (ValueError, IndexError, UnicodeDecodeError):
        raise ParseError("maps", f"not a maps line: {line[:120]!r}") from None


def iter_areas(chunks: Iterable[bytes], classifier: Classifier | None = None) -> Iterator[Area]:
    """Every area the kernel counts ([vsyscall] left out, as in summarize())."""
    classifier = classifier or Classifier()
    names: dict = {}
    words: dict = {}
    carry = b""
    for chunk in chunks:
        lines = (carry + chunk).split(b"\n")
        carry = lines.pop()
        for line in lines:
            if line and not line.endswith(b"[vsyscall]"):
                yield parse_area(line, classifier, names, words)
    if carry and not carry.endswith(b"[vsyscall]"):  # a last line without newline
        yield parse_area(carry, classifier, names, words)


def parse_areas(data: bytes, classifier: Classifier | None = None) -> list[Area]:
    """The areas of a whole maps file given as bytes (pure)."""
    return list(iter_areas((data,), classifier))
