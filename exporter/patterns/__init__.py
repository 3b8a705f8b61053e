"""What multiplies a process's map areas: patterns found in its maps, pure analysis.

Nothing here reads a file. exporter/procfs/maps.py tallies, in the one read of
/proc/PID/maps, how many areas each distinct name and each anonymous shape
holds (maps_shapes.py); these modules turn the tallies into a short ranked
list of what holds most of the areas, each with a label that stays the same
from scrape to scrape while the pattern lasts (sizes, protections, paths:
never an address):

  pattern        label, e.g.                        what it is
  object         /dev/shm/ring                      one object mapped many times
  family         /dev/hugepages/rtemap_*            numbered files, each mapped once or a few times
  directory      /var/lib/index/                    files of one directory, each mapped a few times
  anon_shape     4KiB rw-p/---p alternating         anonymous areas of one size and protections
  thread_stacks  8MiB rw-p + 4KiB guard             a stack and its guard page per thread
  malloc_arenas  64MiB heaps rw-p + ---p            glibc malloc arenas' heaps
  anon_name      [anon:dpdk-mempool]                anonymous areas the program named

names.py groups file names; shapes.py reads the anonymous shapes; rank.py
chooses and orders; threads.py checks thread stacks against the thread count;
areas.py finds where each pattern lives (for the commands); advice.py says
what each usually means and what to do.
"""

from typing import NamedTuple


class Pattern(NamedTuple):
    """One entry of a process's ranked list (MapsSummary.patterns)."""

    pattern: str  # object, family, directory, anon_shape, thread_stacks, malloc_arenas, anon_name
    label: str  # what: a path, a family, a shape; stable while the pattern lasts
    areas: int  # map areas it holds


PATTERNS = ("object", "family", "directory", "anon_shape", "thread_stacks", "exited_thread_stacks",
            "malloc_arenas", "anon_name")


class Candidate(NamedTuple):
    """A pattern before ranking, with what the commands need to find its areas."""

    pattern: str
    label: str
    areas: int
    keys: frozenset = frozenset()  # anonymous shape keys it holds (maps_shapes.encode)
    directory: str | None = None  # for an object or family: the directory it is in
    family: str | None = None  # for an object: its family

    def public(self) -> Pattern:
        return Pattern(self.pattern, self.label, self.areas)
