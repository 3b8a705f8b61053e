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
from dataclasses import dataclass, field

DELETED = " (deleted)"
_NO_DIRECTORY = ("/memfd:", "/SYSV", "/anon_hugepage", "/dev/zero", "/[aio]", "/dmabuf:")
_DIGITS = re.compile(r"\d+")
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


@dataclass
class Group:
    areas: int = 0
    members: int = 0  # distinct names
    top: int = 0  # areas of its busiest member


@dataclass
class NameGroups:
    """Directories and families with their areas, fed once per distinct object name."""

    directories: dict[str, Group] = field(default_factory=dict)
    families: dict[str, Group] = field(default_factory=dict)

    def add(self, name: str, areas: int) -> None:
        directory = directory_of(name)
        if directory is None:
            return
        _count(self.directories, directory, areas)
        family = family_of(name)
        if family is not None:
            _count(self.families, family, areas)

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
    g.top = max(g.top, areas)


def family_directory(family: str) -> str:
    return family[: family.rfind("/") + 1]
