"""Anonymous areas' shapes into patterns: reservations carved into pages,
pieces left by munmap, thread stacks, malloc arenas.

Input: the tally of shape keys (exporter/procfs/maps_shapes.py: size,
protections, the previous anonymous area's protections, contiguous or not).
Kernel facts behind the rules: two adjacent anonymous areas with the same
protections merge into one (vma_merge), so what keeps areas apart is a hole
between them or a change of protections. glibc allocates a thread's stack
and its guard in one mmap and mprotects the guard, so a thread is a ---p
guard directly below an rw-p stack (allocate_stack in nptl/allocatestack.c).
A malloc arena's heap is a 64 MiB region aligned to 64 MiB, rw-p as far as
it has grown and ---p above (new_heap in malloc/arena.c). Work is once per
distinct key.
"""

from collections import defaultdict

from exporter.patterns import Candidate
from exporter.patterns.labels import size_label
from exporter.procfs.maps_shapes import decode

HEAP = 64 << 20  # HEAP_MAX_SIZE on 64-bit: 2 * DEFAULT_MMAP_THRESHOLD_MAX
STACK_MIN = 16 << 10  # PTHREAD_STACK_MIN
GUARD_MAX = 1 << 20  # guards are a page or a few (pthread_attr_setguardsize)
PAIRED = 1000  # keys considered for pairing: a pattern's keys are among the busiest


def candidates(counts: dict[int, int]) -> list[Candidate]:
    rem = {k: n for k, n in counts.items() if n > 0}
    shapes = {k: decode(k) for k in rem}
    found: list[Candidate] = []
    found += _arenas(rem, shapes)
    found += _pairs(rem, shapes)
    found += _leftovers(rem, shapes)
    return found


def _take(rem: dict[int, int], key: int, n: int) -> int:
    n = min(n, rem.get(key, 0))
    if n:
        rem[key] -= n
    return n


def _arenas(rem, shapes) -> list[Candidate]:
    """A ---p area right after an rw-p one, the two making 64 MiB: one heap each."""
    rw_by_size = defaultdict(list)
    for k, s in shapes.items():
        if s.perms == "rw-p":
            rw_by_size[s.size].append(k)
    areas, keys = 0, set()
    for k, s in shapes.items():
        if not (s.perms == "---p" and s.prev_perms == "rw-p" and s.contiguous and s.size < HEAP):
            continue
        parts = rw_by_size.get(HEAP - s.size)
        if not parts:
            continue
        heaps = _take(rem, k, rem[k])
        areas += heaps
        keys.add(k)
        for p in sorted(parts, key=lambda p: -rem[p]):
            got = _take(rem, p, heaps)
            areas += got
            heaps -= got
            if got:
                keys.add(p)
    return [Candidate("malloc_arenas", f"{size_label(HEAP)} heaps rw-p + ---p", areas, frozenset(keys))] if areas else []


def _pairs(rem, shapes) -> list[Candidate]:
    """Contiguous areas whose protections alternate: carved reservations and thread stacks."""
    by_link = defaultdict(list)  # (perms, prev perms) of contiguous keys
    busiest = sorted((k for k in rem if shapes[k].contiguous and shapes[k].perms != shapes[k].prev_perms),
                     key=lambda k: (-rem[k], k))[:PAIRED]
    for k in busiest:
        by_link[(shapes[k].perms, shapes[k].prev_perms)].append(k)
    merged: dict[tuple[str, str], list] = {}
    for k in busiest:
        partners = [p for p in by_link[(shapes[k].prev_perms, shapes[k].perms)] if rem[p] and p != k]
        if not rem[k] or not partners:
            continue
        p = max(partners, key=lambda p: (rem[p], -p))
        # The stack-like side (rw-p, bigger) first.
        a, b = sorted((k, p), key=lambda x: (shapes[x].perms != "rw-p", -shapes[x].size, x))
        sa, sb = shapes[a], shapes[b]
        if sa.perms == "rw-p" and sb.perms == "---p" and STACK_MIN <= sa.size and sb.size <= GUARD_MAX \
                and sa.size > sb.size:
            entry = ("thread_stacks", f"{size_label(sa.size)} {sa.perms} + {size_label(sb.size)} guard")
            areas, keys = _stacks(rem, shapes, a, b)
        else:
            label = (f"{size_label(sa.size)} {sa.perms}/{sb.perms}" if sa.size == sb.size
                     else f"{size_label(sa.size)} {sa.perms}/{size_label(sb.size)} {sb.perms}")
            entry = ("anon_shape", label + " alternating")
            areas, keys = _alternating(rem, k, p)
        old = merged.setdefault(entry, [0, set()])
        old[0] += areas
        old[1] |= keys
    return [Candidate(pattern, label, areas, frozenset(keys)) for (pattern, label), (areas, keys) in merged.items()]


def _stacks(rem, shapes, stack: int, guard: int) -> tuple[int, set]:
    """Each stack with one guard: the guard right after the previous stack, or (the
    first of a run) a guard that follows something else."""
    stacks = _take(rem, stack, rem[stack])
    guards = _take(rem, guard, stacks)
    keys = {stack, guard}
    size = shapes[guard].size
    for g in [g for g, t in shapes.items() if t.perms == "---p" and t.size == size and not t.contiguous]:
        if guards >= stacks:
            break
        got = _take(rem, g, stacks - guards)
        if got:
            guards += got
            keys.add(g)
    return stacks + guards, keys


def _alternating(rem, k: int, p: int) -> tuple[int, set]:
    """A run's two sides differ by one area at most; the busier side may share its
    shape with another pattern (a thread's guard is a 4 KiB ---p page after rw-p
    too), so it gives only as many as pair up."""
    c1, c2 = rem[k], rem[p]
    return _take(rem, k, min(c1, c2 + 1)) + _take(rem, p, min(c2, c1 + 1)), {k, p}


def _leftovers(rem, shapes) -> list[Candidate]:
    """What is left, by size and protections: pieces with holes between them, or other areas."""
    groups: dict[str, list] = {}
    for k, n in rem.items():
        if not n:
            continue
        s = shapes[k]
        holes = not s.contiguous and s.prev_perms == s.perms
        label = f"{size_label(s.size)} {s.perms} " + ("pieces with holes" if holes else "areas")
        g = groups.setdefault(label, [0, set()])
        g[0] += n
        g[1].add(k)
    return [Candidate("anon_shape", label, n, frozenset(keys)) for label, (n, keys) in groups.items()]
