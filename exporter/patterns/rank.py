"""Choose and order what holds a process's areas: the short list the metrics,
``top`` and ``explain`` show.

Rules, each for a reason:

- a pattern holds at least MIN_AREAS areas: an ELF file maps 4 to 6 segments
  (the process's binary, libc), which is how a process looks, not what
  multiplies;
- a directory or a family is named only when no single member explains it
  (its busiest member holds less than half of its areas): one shm object
  mapped 1000 times is that object, not /dev/shm/;
- a pattern inside one already chosen (an object in its family, a family in
  its directory) is not chosen again: the list never counts areas twice;
- after the first, a pattern holds at least *min_share* of the process's
  areas, so next to a reservation carved into 10,000 pages the binary's 5
  areas are not listed;
- ties go to the pattern kind, then the smaller label: the order is stable.
"""

from exporter.patterns import Candidate, Pattern
from exporter.patterns.names import NameGroups, directory_of, family_directory, family_of
from exporter.patterns.shapes import candidates as shape_candidates

MIN_AREAS = 8
TOP = 3  # entries the daemon keeps per process
MIN_SHARE = 0.05
_ORDER = {p: i for i, p in enumerate(("object", "family", "directory", "thread_stacks", "malloc_arenas",
                                      "anon_shape", "anon_name"))}


def name_candidates(objects: dict[str, int], groups: NameGroups, anon_names: dict[str, int],
                    min_areas: int = MIN_AREAS) -> list[Candidate]:
    out = [Candidate("object", name, n, directory=directory_of(name), family=family_of(name))
           for name, n in objects.items() if n >= min_areas]
    out += [Candidate("anon_name", name, n) for name, n in anon_names.items() if n >= min_areas]
    top_family_in: dict[str, int] = {}
    for family, g in groups.families.items():
        d = family_directory(family)
        top_family_in[d] = max(top_family_in.get(d, 0), g.areas)
        if g.members >= 2 and g.areas >= min_areas and 2 * g.top < g.areas:
            out.append(Candidate("family", family, g.areas, directory=d))
    for d, g in groups.directories.items():
        top = max(g.top, top_family_in.get(d, 0))
        if g.members >= 2 and g.areas >= min_areas and 2 * top < g.areas:
            out.append(Candidate("directory", d, g.areas, directory=d))
    return out


def _nested(c: Candidate, chosen: Candidate) -> bool:
    """One holds the other's areas (an object in a family or directory, a family in a directory)."""
    for inner, outer in ((c, chosen), (chosen, c)):
        if outer.pattern == "directory" and inner.pattern in ("object", "family") and inner.directory == outer.label:
            return True
        if outer.pattern == "family" and inner.pattern == "object" and inner.family == outer.label:
            return True
    return False


def choose(found: list[Candidate], total: int, limit: int | None = TOP,
           min_share: float = MIN_SHARE, min_areas: int = MIN_AREAS) -> list[Candidate]:
    ordered = sorted((c for c in found if c.areas >= min_areas),
                     key=lambda c: (-c.areas, _ORDER.get(c.pattern, 99), c.label))
    chosen: list[Candidate] = []
    for c in ordered:
        if limit is not None and len(chosen) >= limit:
            break
        if chosen and c.areas < min_share * total:
            break  # sorted: every later one is smaller still
        if any(_nested(c, x) for x in chosen):
            continue
        chosen.append(c)
    return chosen


def analyze(total: int, objects: dict[str, int], groups: NameGroups, anon_names: dict[str, int],
            shapes: dict[int, int], limit: int | None = TOP, min_share: float = MIN_SHARE) -> list[Candidate]:
    """The ranked candidates of one process from its tallies."""
    return choose(name_candidates(objects, groups, anon_names) + shape_candidates(shapes), total, limit, min_share)


def patterns(chosen: list[Candidate]) -> tuple[Pattern, ...]:
    return tuple(c.public() for c in chosen)
