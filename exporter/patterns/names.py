"""Names of mapped objects grouped by directory and by family.

A family is the names of one directory that differ only in their numbers:
``/dev/hugepages/rtemap_0`` ... ``rtemap_3060`` (DPDK: one file per hugepage)
are the family ``/dev/hugepages/rtemap_*``. A directory holds every object
whose path is in it, e.g. a search index's segment files. Work is once per
distinct name.

Only real paths group: memfd, SysV, ``/dev/zero`` and ``/anon_hugepage``
objects never had a directory, and ``[heap]``-style names are not objects.
"""

import re

DELETED = " (deleted)"
_NO_DIRECTORY = ("/memfd:", "/SYSV", "/anon_hugepage", "/dev/zero", "/[aio]", "/dmabuf:")
_DIGITS = re.compile(r"\d+")
_HAS_DIGIT = re.compile(r"\d")
MAX_GROUPS = 50_000  # groups kept before the smallest are dropped (bounds memory)


def groups_of(name: str) -> tuple[str, str | None] | None:
    """(directory, family) of a name; None for names that are not paths.

    '/dev/hugepages/rtemap_12' -> ('/dev/hugepages/', '/dev/hugepages/rtemap_*');
    '/var/lib/index/_a.cfs' -> ('/var/lib/index/', None): no number, no family.
    It runs for every distinct name of a process that maps tens of thousands of
    files: the path is split once, and a family made only when there is a digit.
    """
    path = name[: -len(DELETED)] if name.endswith(DELETED) else name  # an unlinked file stays in its group
    if not path.startswith("/") or path.startswith(_NO_DIRECTORY):
        return None
    cut = path.rfind("/") + 1
    base = path[cut:]
    return path[:cut], (path[:cut] + _DIGITS.sub("*", base) if _HAS_DIGIT.search(base) else None)


def directory_of(name: str) -> str | None:
    g = groups_of(name)
    return g[0] if g else None


def family_of(name: str) -> str | None:
    g = groups_of(name)
    return g[1] if g else None


class Group:
    """A directory's or family's areas, its distinct members, its busiest member's areas."""

    __slots__ = ("areas", "members", "top")

    def __init__(self):
        self.areas = self.members = self.top = 0


class NameGroups:
    """Directories and families with their areas, fed once per distinct object name."""

    def __init__(self):
        self.directories: dict[str, Group] = {}
        self.families: dict[str, Group] = {}

    def add(self, name: str, areas: int) -> None:
        g = groups_of(name)
        if g is not None:
            _count(self.directories, g[0], areas)
            if g[1] is not None:
                _count(self.families, g[1], areas)

    def bound(self) -> None:
        for groups in (self.directories, self.families):
            if len(groups) > MAX_GROUPS:
                keep = sorted(groups.items(), key=lambda kv: -kv[1].areas)[:1000]
                groups.clear()
                groups.update(keep)


def _count(groups: dict[str, Group], key: str, areas: int) -> None:
    g = groups.get(key)
    if g is None:
        g = groups[key] = Group()
    g.areas += areas
    g.members += 1
    if areas > g.top:
        g.top = areas


def family_directory(family: str) -> str:
    return family[: family.rfind("/") + 1]
