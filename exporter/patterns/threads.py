"""Thread stacks against the process's thread count (/proc/PID/stat num_threads).

A thread stack pattern is a stack and its guard per thread. The main thread
runs on ``[stack]``, so a process of N threads has N - 1 such stacks while
they live. glibc keeps the stacks of exited threads mapped until they are
joined (or, once detached threads exit, in its cache of up to 40 MiB of
stacks for reuse: nptl's stack_cache_maxsize), so more stacks than threads
means threads that exited without pthread_join, not a pool too big.
"""

import re

from exporter.patterns import Pattern
from exporter.patterns.labels import parse_size_label

STACK_CACHE = 40 << 20
_SIZES = re.compile(r"\d+(?:TiB|GiB|MiB|KiB|B)")


def stack_bytes(label: str) -> int:
    """Stack plus guard of one thread, from a thread_stacks label ("8MiB rw-p + 4KiB guard")."""
    return sum(parse_size_label(s) for s in _SIZES.findall(label))


def cached_stacks(label: str) -> int:
    each = stack_bytes(label)
    return STACK_CACHE // each if each else 0


def exited(stacks: int, threads: int, label: str) -> int:
    """Stacks beyond the live threads' and glibc's cache: threads never joined."""
    return max(0, stacks - max(threads - 1, 0) - cached_stacks(label))


def check(patterns: tuple[Pattern, ...], threads: int | None) -> tuple[Pattern, ...]:
    """The patterns with each thread_stacks entry that holds more stacks than the
    process has threads (beyond the cache) named exited_thread_stacks."""
    if threads is None:
        return patterns
    return tuple(p._replace(pattern="exited_thread_stacks")
                 if p.pattern == "thread_stacks" and exited(p.areas // 2, threads, p.label) else p
                 for p in patterns)
