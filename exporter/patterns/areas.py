"""Patterns over parsed areas, with where each lives: for ``explain`` and ``diff``.

The commands have the areas themselves (exporter/procfs/maps_areas.py), one
record each, so they can say more than the daemon: the address region a
pattern occupies. The tallies are built exactly as maps.summarize() builds
them (same names, same shape keys), so the patterns, their labels and counts
are the daemon's; only the regions are added.
"""

from collections import Counter
from typing import Iterable, NamedTuple

from exporter.patterns import Candidate, Pattern, rank
from exporter.patterns.names import NameGroups, directory_of, family_of
from exporter.patterns.shapes import candidates as shape_candidates
from exporter.procfs.maps_areas import Area
from exporter.procfs.maps_shapes import encode

OBJECT_KINDS = ("file", "shm", "hugetlb")  # as exporter/procfs/maps.py's candidates for the top object
SHAPED = ("anon_shape", "thread_stacks", "malloc_arenas")


class Finding(NamedTuple):
    """A pattern with the region of its areas."""

    pattern: str
    label: str
    areas: int
    start: int  # lowest address of its areas
    end: int  # highest end
    mapped: int  # bytes of its areas

    @property
    def span(self) -> int:
        return self.end - self.start

    def public(self) -> Pattern:
        return Pattern(self.pattern, self.label, self.areas)


def shape_keys(areas: Iterable[Area]) -> list[int | None]:
    """The shape key of each unnamed area (None for named ones), as maps_shapes tallies them."""
    out: list[int | None] = []
    prev_end, prev_perms = -1, b"---p"
    for a in areas:
        if a.name:
            out.append(None)
            continue
        perms = a.perms.encode()
        out.append(encode(a.size, perms, prev_perms, a.start == prev_end))
        prev_end, prev_perms = a.end, perms
    return out


def analyze(areas: list[Area], limit: int | None = 10, min_share: float = 0.01,
            keys: list[int | None] | None = None, min_areas: int = rank.MIN_AREAS) -> list[Candidate]:
    """The ranked patterns of *areas*; *keys* are their shape keys (shape_keys of
    the whole maps, so that a subset keeps each area's context)."""
    keys = shape_keys(areas) if keys is None else keys
    names = Counter(a.name for a in areas if a.name)
    kinds = {a.name: a.kind for a in areas if a.name}
    objects = {n: c for n, c in names.items() if kinds[n] in OBJECT_KINDS}
    anon_names = {n: c for n, c in names.items() if kinds[n] == "anon" and n.startswith("[anon:")}
    groups = NameGroups()
    for n, c in objects.items():
        groups.add(n, c)
    shapes = Counter(k for k in keys if k is not None)
    found = rank.name_candidates(objects, groups, anon_names, min_areas) + shape_candidates(shapes)
    return rank.choose(found, len(areas), limit, min_share, min_areas)


def _member(c: Candidate, a: Area, key: int | None) -> bool:
    if c.pattern in SHAPED:
        return key is not None and key in c.keys
    if not a.name:
        return False
    if c.pattern in ("object", "anon_name"):
        return a.name == c.label
    if c.pattern == "directory":
        return a.kind in OBJECT_KINDS and directory_of(a.name) == c.label
    if c.pattern == "family":
        return a.kind in OBJECT_KINDS and family_of(a.name) == c.label
    return False


def locate(areas: list[Area], chosen: list[Candidate], keys: list[int | None] | None = None) -> list[Finding]:
    """Each chosen pattern with the region of its areas (an area goes to the first that holds it)."""
    keys = shape_keys(areas) if keys is None else keys
    spans = [[None, None, 0] for _ in chosen]
    for a, key in zip(areas, keys):
        for i, c in enumerate(chosen):
            if _member(c, a, key):
                s = spans[i]
                s[0] = a.start if s[0] is None else min(s[0], a.start)
                s[1] = a.end if s[1] is None else max(s[1], a.end)
                s[2] += a.size
                break
    return [Finding(c.pattern, c.label, c.areas, s[0] or 0, s[1] or 0, s[2]) for c, s in zip(chosen, spans)]


def findings(areas: list[Area], limit: int | None = 10, min_share: float = 0.01) -> list[Finding]:
    keys = shape_keys(areas)
    return locate(areas, analyze(areas, limit, min_share, keys), keys)


def grouped(areas: list[Area], keys: list[int | None], min_areas: int = 2) -> list[Finding]:
    """Changed areas (with their keys in their own maps) by pattern, for ``diff``:
    every group of *min_areas* or more, busiest first."""
    return locate(areas, analyze(areas, None, 0.0, keys, min_areas), keys)
