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


def plain(name: str) -> str:
    """The path without the kernel's " (deleted)" mark: an unlinked file stays in its group."""
    return name[: -len(DELETED)] if name.endswith(DELETED) else name


def directory_of(name: str) -> str | None:
    """'/var/lib/index/_0.cfs' -> '/var/lib/index/'; None for names that are not paths."""
    path = plain(name)
    if not path.startswith("/") or path.startswith(_NO_DIRECTORY):
        return None
    return path[: path.rfind("/") + 1]


def family_of(name: str) -> str | None:
    """'/dev/hugepages/rtemap_12' -> '/dev/hugepages/rtemap_*'; None without a number."""
    directory = directory_of(name)
    if directory is None:
        return None
    base = plain(name)[len(directory):]
    family = _DIGITS.sub("*", base)
    return directory + family if family != base else None


class Group:
    """A directory's or family's areas, its distinct members, its busiest member's areas."""

    __slots__ = ("areas", "members", "top")

    def __init__(self):
        self.areas = self.members = self.top = 0


class NameGroups:
    """Directories and families with their areas, fed once per distinct object name.

    add() runs for every distinct name of a process that maps tens of thousands
    of files, so it splits the path once and builds a family only for a name
    with a digit in it."""

    def __init__(self):
        self.directories: dict[str, Group] = {}
        self.families: dict[str, Group] = {}

    def add(self, name: str, areas: int) -> None:
        path = name[: -len(DELETED)] if name.endswith(DELETED) else name
        if not path.startswith("/") or path.startswith(_NO_DIRECTORY):
            return
        cut = path.rfind("/") + 1
        _count(self.directories, path[:cut], areas)
        base = path[cut:]
        if _HAS_DIGIT.search(base):
            _count(self.families, path[:cut] + _DIGITS.sub("*", base), areas)

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
